//! Fuzz target `imap_url`: [`ImapUrl::parse`] on arbitrary text.
//!
//! It must never panic, and whenever a URL parses, its canonical form ([`std::fmt::Display`]) must parse back to the
//! same value and print the same again (display is a fixed point). The same text also goes through
//! [`ReferralUrl::parse`] and a whole `[REFERRAL ...]` code, the way a server line would carry it.

#![no_main]

use imapref::proto::code::{Code, ReferralUrl};
use imapref::proto::url::ImapUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = ImapUrl::parse(text) {
        let shown = url.to_string();
        let again = ImapUrl::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} parsed, but its display {shown:?} does not: {e}"));
        assert_eq!(again, url, "{text:?} -> {shown:?} does not round-trip");
        assert_eq!(again.to_string(), shown, "display is not a fixed point");
        // These must not panic on a parsed URL.
        let _ = url.authority();
        let _ = url.login_user("original");
    }

    let referral = ReferralUrl::parse(text);
    assert_eq!(referral.raw, text);
    assert!(referral.url.is_some() != referral.error.is_some());

    let code = Code::parse(&format!("REFERRAL {text}"));
    let _ = code.meaning();
    let _ = code.referral_urls();
});
