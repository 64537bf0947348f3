//! How the lab's server writes values on the wire: strings as quoted strings or literals, `NIL`, mailbox names in
//! modified UTF-7. The reading side is [`crate::proto::client_command`].

use crate::proto::{command, mutf7};

/// An IMAP `string`: quoted when it is short 7-bit text without CR, LF or NUL, a literal otherwise.
pub fn string(out: &mut Vec<u8>, value: &[u8]) {
    let quotable = value.len() <= 1024
        && value
            .iter()
            .all(|&b| b.is_ascii() && !matches!(b, b'\r' | b'\n' | 0));
    if quotable {
        out.extend_from_slice(&command::quote(value));
    } else {
        literal(out, value);
    }
}

/// An IMAP literal: `{n}` CRLF and the bytes.
pub fn literal(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
}

/// An `nstring`: `NIL` for `None`.
pub fn nstring(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => string(out, v.as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name (UTF-8) as it goes on the wire: modified UTF-7, then quoted.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    string(out, mutf7::encode(name).as_bytes());
}

/// A mailbox name as a client sent it (modified UTF-7), decoded to UTF-8; `None` when it is not valid modified
/// UTF-7 (the bytes are then used as they are only if they are plain ASCII).
pub fn decode_mailbox(wire: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(wire).ok()?;
    mutf7::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(value: &[u8]) -> String {
        let mut out = Vec::new();
        string(&mut out, value);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn quotes_or_literals() {
        assert_eq!(s(b"Sent Items"), "\"Sent Items\"");
        assert_eq!(s(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s(b"two\r\nlines"), "{10}\r\ntwo\r\nlines");
    }

    #[test]
    fn mailbox_names_are_modified_utf7() {
        let mut out = Vec::new();
        mailbox(&mut out, "Entw\u{fc}rfe");
        assert_eq!(out, b"\"Entw&APw-rfe\"");
        assert_eq!(
            decode_mailbox(b"Entw&APw-rfe").as_deref(),
            Some("Entw\u{fc}rfe")
        );
        assert_eq!(decode_mailbox(b"&bad").as_deref(), None);
    }
}
