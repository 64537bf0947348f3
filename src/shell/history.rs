//! The shell's line history: where the file lives, and what of a line may be stored.
//!
//! The file is `history` in the platform data directory (`$XDG_DATA_HOME/imapref/history` on Linux,
//! `~/Library/Application Support/imapref/history` on macOS), or `--history FILE`; `--no-history` keeps none.
//! A line is stored only after [`entry_for`] has removed its secrets: the password of a LOGIN and the initial
//! response of an AUTHENTICATE become `***` ([`redact_raw_line`]), and a line typed as the data of a secret literal
//! or as an AUTHENTICATE step is not stored at all. So a password typed in a raw LOGIN line never reaches the file.

use std::path::{Path, PathBuf};

use crate::proto::command::redact_raw_line;

/// The most lines kept in the file. Default 1000: a few weeks of diagnosing, small enough to read.
pub const MAX_ENTRIES: usize = 1000;

/// The default history file: `history` in the platform data directory, if there is a home to put it in.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "imapref").map(|d| d.data_dir().join("history"))
}

/// What kind of line was typed, for deciding what to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A new command or a `:` command.
    Command,
    /// The data of a literal or a reply to the server's `+` that belongs to a secret (LOGIN's password,
    /// an AUTHENTICATE step): never stored.
    SecretContinuation,
    /// Other continuation data (an APPEND's message, IDLE's DONE): stored as typed.
    Continuation,
}

/// The history entry for a typed line, or `None` when nothing of it may be stored (blank lines, secret
/// continuations, lines with control characters).
pub fn entry_for(line: &str, kind: LineKind) -> Option<String> {
    if kind == LineKind::SecretContinuation || line.trim().is_empty() {
        return None;
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    Some(redact_raw_line(line))
}

/// Makes sure the history file's directory exists.
pub fn prepare(path: &Path) -> Result<(), std::io::Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_before_storing() {
        assert_eq!(
            entry_for("? login DOMname/UserN/AliasN PASSword", LineKind::Command).unwrap(),
            "? login DOMname/UserN/AliasN ***"
        );
        assert_eq!(
            entry_for("login foo PASSword", LineKind::Command).unwrap(),
            "login foo ***"
        );
        assert_eq!(
            entry_for("a1 AUTHENTICATE PLAIN AGZvbwBiYXI=", LineKind::Command).unwrap(),
            "a1 AUTHENTICATE PLAIN ***"
        );
        assert_eq!(
            entry_for("a1 LOGIN {4}user {8}PASSword", LineKind::Command).unwrap(),
            "a1 LOGIN {4}***"
        );
        assert_eq!(
            entry_for("? Select Inbox", LineKind::Command).unwrap(),
            "? Select Inbox"
        );
        assert_eq!(
            entry_for(":login DOMname/UserN/AliasN", LineKind::Command).unwrap(),
            ":login DOMname/UserN/AliasN"
        );
    }

    #[test]
    fn secret_continuations_and_junk_are_not_stored() {
        assert_eq!(entry_for("PASSword", LineKind::SecretContinuation), None);
        assert_eq!(entry_for("DONE", LineKind::Continuation).unwrap(), "DONE");
        assert_eq!(entry_for("   ", LineKind::Command), None);
        assert_eq!(entry_for("a1 x\u{1b}[2J", LineKind::Command), None);
    }

    #[test]
    fn default_path_is_in_the_data_dir() {
        if let Some(p) = default_path() {
            assert!(p.ends_with("history"), "{}", p.display());
            assert!(p.to_string_lossy().contains("imapref"), "{}", p.display());
        }
    }

    #[test]
    fn prepare_makes_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/history");
        prepare(&path).unwrap();
        assert!(path.parent().unwrap().is_dir());
    }
}
