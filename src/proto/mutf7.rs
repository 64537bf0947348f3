//! Modified UTF-7 (RFC 3501 section 5.1.3): how IMAP4rev1 puts non-ASCII mailbox names on the wire.
//!
//! Printable US-ASCII (0x20 to 0x7E) stands for itself, except `&`, which is written `&-`. Every other character
//! goes, as UTF-16 big-endian, into a base64 run that starts with `&` and ends with `-`. The base64 alphabet uses
//! `,` instead of `/` and has no padding. This module owns [`encode`] and [`decode`], nothing else.
//!
//! [`decode`] is tolerant where tolerance cannot hide a mistake: a raw non-ASCII character (sent by a server that
//! speaks UTF-8 mailbox names) is kept as it is, and printable ASCII inside a base64 run is accepted. It refuses
//! what cannot be decoded: bad base64, a run with no closing `-`, and UTF-16 that is not well formed.

use base64::alphabet::IMAP_MUTF7;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// The base64 engine of RFC 3501: `,` for `/`, no padding written and none accepted.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Why a modified UTF-7 mailbox name cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mutf7Error {
    /// A `&` opened a base64 run that never ends with `-`.
    #[error(
        "the mailbox name `{0}` has a `&` with no closing `-`, so it is not valid modified UTF-7"
    )]
    Unterminated(String),
    /// The text between `&` and `-` is not modified base64.
    #[error("`&{0}-` in the mailbox name is not valid modified base64 (RFC 3501 section 5.1.3)")]
    BadBase64(String),
    /// The base64 run decodes to an odd number of bytes, or to UTF-16 with an unpaired surrogate.
    #[error("`&{0}-` in the mailbox name does not decode to valid UTF-16")]
    BadUtf16(String),
}

/// True for the characters that modified UTF-7 writes as themselves (`&` aside).
fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes a mailbox name (UTF-8) into modified UTF-7 for the wire.
///
/// Never fails: every Unicode string has an encoding. `"Entwürfe"` becomes `"Entw&APw-rfe"`, `"&"` becomes `"&-"`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Writes the pending UTF-16 units as one `&...-` run.
fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    out.push_str(&ENGINE.encode(bytes));
    out.push('-');
    pending.clear();
}

/// Decodes a modified UTF-7 mailbox name from the wire into UTF-8.
///
/// `"&-"` is `&`, `"&U,BTFw-"` is `台北`. Raw non-ASCII characters are kept as they are (some servers send UTF-8).
pub fn decode(wire: &str) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let after = rest.get(amp + 1..).unwrap_or_default();
        let Some(dash) = after.find('-') else {
            return Err(Mutf7Error::Unterminated(wire.to_owned()));
        };
        let run = after.get(..dash).unwrap_or_default();
        if run.is_empty() {
            out.push('&');
        } else {
            out.push_str(&decode_run(run)?);
        }
        rest = after.get(dash + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

/// Decodes the base64 between `&` and `-`.
fn decode_run(run: &str) -> Result<String, Mutf7Error> {
    let bytes = ENGINE
        .decode(run)
        .map_err(|_| Mutf7Error::BadBase64(run.to_owned()))?;
    if bytes.len() % 2 != 0 {
        return Err(Mutf7Error::BadUtf16(run.to_owned()));
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => 0,
        })
        .collect();
    String::from_utf16(&units).map_err(|_| Mutf7Error::BadUtf16(run.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The known answers of the brief and RFC 3501.
    const KNOWN: &[(&str, &str)] = &[
        ("", ""),
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("a&b", "a&-b"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("台北", "&U,BTFw-"),
        ("~peter/mail/日本語/台北", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"),
        ("Public Folders/NoReplica", "Public Folders/NoReplica"),
        ("\u{1F600}", "&2D3eAA-"),
    ];

    #[test]
    fn encodes_known_answers() {
        for (name, wire) in KNOWN {
            assert_eq!(encode(name), *wire, "encoding {name:?}");
        }
    }

    #[test]
    fn decodes_known_answers() {
        for (name, wire) in KNOWN {
            assert_eq!(decode(wire).as_deref(), Ok(*name), "decoding {wire:?}");
        }
    }

    #[test]
    fn control_characters_are_encoded() {
        assert_eq!(encode("a\tb"), "a&AAk-b");
        assert_eq!(decode("a&AAk-b").as_deref(), Ok("a\tb"));
    }

    #[test]
    fn unterminated_run_is_an_error() {
        assert_eq!(
            decode("Entw&APwrfe"),
            Err(Mutf7Error::Unterminated("Entw&APwrfe".into()))
        );
        assert!(decode("&").is_err());
    }

    #[test]
    fn bad_base64_is_an_error() {
        assert_eq!(decode("&A*w-"), Err(Mutf7Error::BadBase64("A*w".into())));
        // A single base64 character cannot carry a byte.
        assert!(matches!(decode("&A-"), Err(Mutf7Error::BadBase64(_))));
        // Padding is not part of modified UTF-7.
        assert!(matches!(decode("&APw=-"), Err(Mutf7Error::BadBase64(_))));
    }

    #[test]
    fn bad_utf16_is_an_error() {
        // One byte only.
        assert_eq!(decode("&AA-"), Err(Mutf7Error::BadUtf16("AA".into())));
        // A lone high surrogate (U+D83D).
        assert_eq!(decode("&2D0-"), Err(Mutf7Error::BadUtf16("2D0".into())));
    }

    #[test]
    fn raw_utf8_is_kept() {
        assert_eq!(decode("Entwürfe").as_deref(), Ok("Entwürfe"));
    }

    proptest! {
        #[test]
        fn decode_undoes_encode(s in any::<String>()) {
            let wire = encode(&s);
            prop_assert!(wire.chars().all(is_direct), "wire form {:?} is not printable ASCII", wire);
            prop_assert_eq!(decode(&wire), Ok(s));
        }

        #[test]
        fn decode_never_panics(s in any::<String>()) {
            let _ = decode(&s);
        }
    }
}
