//! Fuzz target `target`: [`Target::parse`], the parser of what a user types as the probe's or the shell's target
//! (`host`, `host:port`, `[v6]:port`, `imap://...`), on arbitrary text.
//!
//! It must never panic (issue 9: `mail.bücher.de` once did), and what it accepts must be usable: the host is ASCII
//! and not empty (IDNA applied), and `host:port` written back by [`Target::authority`] parses to the same host and
//! port.

#![no_main]

use imapref::probe::target::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(target) = Target::parse(&text) else {
        return;
    };
    assert!(!target.host.is_empty(), "{text:?} gave an empty host");
    assert!(target.host.is_ascii(), "{text:?} gave a non-ASCII host {:?}", target.host);
    let shown = target.host_for_display();
    assert!(shown.contains(&target.host));
    let authority = target.authority(143);
    let again = Target::parse(&authority)
        .unwrap_or_else(|e| panic!("{text:?} parsed, but its authority {authority:?} does not: {e}"));
    assert_eq!(again.host, target.host, "{text:?} -> {authority:?}");
    assert_eq!(again.port.unwrap_or(143), target.port.unwrap_or(143), "{text:?} -> {authority:?}");
});
