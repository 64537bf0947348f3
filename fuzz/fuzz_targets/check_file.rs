//! Fuzz target `check_file`: [`check::spec::parse`], the parser of `imapref check`'s TOML file, on arbitrary text.
//!
//! It must never panic, and what it gives must be usable: every line it names (of an error or of a check) is a line
//! of the file, every accepted check passes its own validation and has a target, and every check, good or bad, has
//! a name to show.

#![no_main]

use imapref::check::spec::{self, FileError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.matches('\n').count() + 1;
    match spec::parse(&text) {
        Err(FileError::Toml { line, message }) => {
            assert!((1..=lines).contains(&line), "error line {line} of {lines}: {message}");
        }
        Err(_) => {}
        Ok(file) => {
            assert!(!file.checks.is_empty(), "a file with no check was accepted");
            for (i, entry) in file.checks.iter().enumerate() {
                assert_eq!(entry.index, i + 1);
                assert!((1..=lines).contains(&entry.line), "check line {} of {lines}", entry.line);
                assert!(!entry.display_name().is_empty());
                match &entry.spec {
                    Ok(check) => {
                        assert!(check.target.is_some(), "check #{} accepted without a target", entry.index);
                        assert_eq!(check.validate(), Ok(()), "check #{} accepted but invalid", entry.index);
                    }
                    Err(err) => assert!((1..=lines).contains(&err.line), "spec error line {} of {lines}", err.line),
                }
            }
        }
    }
});
