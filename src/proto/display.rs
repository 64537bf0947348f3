//! Terminal safety: the one place that turns text from a server (or a decoded URL part, or a pasted log) into text
//! that is safe to show on a terminal or to write into the human report.
//!
//! A server is untrusted. Its greeting, its NO texts and the user names in its referral URLs may hold ESC sequences
//! (cursor moves, "erase line", OSC window titles), BEL, backspace, a bare CR or NUL, and with them forge or erase
//! report lines: `* OK x\r\x1b[2K  ok    greeting   forged line` would overwrite the real greeting line. Everything
//! shown passes through [`escape_controls`] (one line) or [`escape_keep_lines`] (text that spans lines) first:
//!
//! - C0 controls and DEL become `\xNN` (`\x1b`, `\x07`, `\x00`, `\x7f`); CR, LF and TAB have short forms `\r`, `\n`,
//!   `\t` where they cannot be kept;
//! - TAB is kept as it is in running text (it cannot move the cursor backwards or forge a line);
//! - C1 controls (U+0080 to U+009F, of which U+009B is a second CSI) and the Unicode characters that reorder or break
//!   lines (bidi overrides and isolates, U+2028, U+2029) become `\u{9b}`;
//! - bytes that are not UTF-8 become `\xNN` (via [`escape_bytes`]); valid UTF-8 text (`grüße`, `日本`) is kept.
//!
//! JSON output does not use this: it keeps the exact text, which serde escapes as JSON.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach a terminal as it is (TAB and LF are decided by the caller).
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Bidi marks, embeddings, overrides and isolates; line and paragraph separators; the BOM.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn escape_with(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) && !keep(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of text made safe to show: every control (CR and LF too) is escaped, TAB is kept.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_with(text, |c| c == '\t')
}

/// Text that spans lines made safe to show: CRLF and LF stay line ends (as LF), every other control is escaped, TAB
/// is kept.
pub fn escape_keep_lines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return escape_with(text, |c| c == '\t' || c == '\n');
    }
    let joined = text.replace("\r\n", "\n");
    Cow::Owned(escape_with(&joined, |c| c == '\t' || c == '\n').into_owned())
}

/// Bytes from the wire made safe to show on one line: valid UTF-8 as in [`escape_controls`], each byte that is not
/// part of valid UTF-8 as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return escape_controls(text);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape_controls(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// True when `text` holds nothing [`escape_controls`] would change (TAB aside): for tests and assertions.
pub fn is_safe_line(text: &str) -> bool {
    !text.chars().any(|c| is_unsafe(c) && c != '\t')
}

/// The SGR sequences imapref itself writes to colour its output (see `shell::output::Paint` and `colored`'s codes for
/// bold, red, green, yellow, cyan, magenta, blue and dim). Only these survive [`terminal_bytes`].
const OWN_SGR: &[&[u8]] = &[
    b"\x1b[0m",
    b"\x1b[1m",
    b"\x1b[2m",
    b"\x1b[31m",
    b"\x1b[32m",
    b"\x1b[33m",
    b"\x1b[34m",
    b"\x1b[35m",
    b"\x1b[36m",
    b"\x1b[1;31m",
    b"\x1b[1;32m",
    b"\x1b[1;33m",
    b"\x1b[1;35m",
    b"\x1b[1;36m",
];

/// Output already composed for a terminal (lines, imapref's own colours) made safe as a whole, as a last guard: LF,
/// CRLF and TAB are kept, imapref's own colour sequences ([`OWN_SGR`]) are kept, every other control and every byte
/// that is not UTF-8 is escaped. A server can at most change a colour to one imapref uses; it cannot move the cursor,
/// erase a line or set a title.
pub fn terminal_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let clean = std::str::from_utf8(bytes).is_ok_and(|t| {
        !t.chars()
            .any(|c| is_unsafe(c) && !matches!(c, '\t' | '\n' | '\r' | '\x1b'))
    }) && !bytes.contains(&b'\x1b')
        && !has_bare_cr(bytes);
    if clean {
        return Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        let text = chunk.valid();
        let mut i = 0;
        while let Some(c) = text[i..].chars().next() {
            let rest = &text.as_bytes()[i..];
            if c == '\x1b' {
                if let Some(sgr) = OWN_SGR.iter().find(|s| rest.starts_with(s)) {
                    out.push_str(&text[i..i + sgr.len()]);
                    i += sgr.len();
                    continue;
                }
            }
            if c == '\r' && rest.get(1) == Some(&b'\n') {
                out.push('\r');
            } else if is_unsafe(c) && !matches!(c, '\t' | '\n') {
                push_escape(&mut out, c);
            } else {
                out.push(c);
            }
            i += c.len_utf8();
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out.into_bytes())
}

fn has_bare_cr(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_forged_greeting_stays_on_its_line() {
        let shown = escape_controls("* OK x\r\x1b[2K  ok    greeting   forged line");
        assert_eq!(shown, "* OK x\\r\\x1b[2K  ok    greeting   forged line");
        assert!(!shown.contains('\r') && !shown.contains('\x1b'));
    }

    #[test]
    fn title_bell_backspace_nul_and_del_are_escaped() {
        assert_eq!(
            escape_controls("\x1b]0;pwned\x07 a\x08b\0c\x7f"),
            "\\x1b]0;pwned\\x07 a\\x08b\\x00c\\x7f"
        );
        assert_eq!(escape_controls("line\nbreak"), "line\\nbreak");
        assert_eq!(escape_controls("tab\tkept"), "tab\tkept");
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(escape_controls("a\u{9b}2Jb"), "a\\u{9b}2Jb");
        assert_eq!(escape_controls("x\u{85}y"), "x\\u{85}y");
        assert_eq!(
            escape_controls("evil\u{202e}txt.exe"),
            "evil\\u{202e}txt.exe"
        );
        assert_eq!(escape_controls("a\u{2028}b"), "a\\u{2028}b");
    }

    #[test]
    fn text_is_kept_and_borrowed_when_safe() {
        for ok in [
            "grüße aus Köln",
            "日本語",
            "imap://DOM%2Fuser@h/",
            "* OK ready",
            "",
        ] {
            assert!(
                matches!(escape_controls(ok), Cow::Borrowed(s) if s == ok),
                "{ok}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_escaped_by_byte() {
        assert_eq!(
            escape_bytes(b"caf\xc3\xa9 \xff\xfe\x1b"),
            "café \\xff\\xfe\\x1b"
        );
        assert_eq!(escape_bytes(b"cut \xc3"), "cut \\xc3");
        assert_eq!(escape_bytes(b"plain"), "plain");
    }

    #[test]
    fn lines_are_kept_where_asked() {
        assert_eq!(escape_keep_lines("a\r\nb\x07\nc\rd"), "a\nb\\x07\nc\\rd");
    }

    #[test]
    fn terminal_bytes_keeps_own_colours_only() {
        let ours = b"\x1b[32ma1 OK done\x1b[0m\r\nnext\tline\n";
        assert_eq!(&*terminal_bytes(ours), &ours[..]);
        assert_eq!(
            &*terminal_bytes(b"\x1b[2K\x1b]0;t\x07x\ry\xff\n"),
            &b"\\x1b[2K\\x1b]0;t\\x07x\\ry\\xff\n"[..]
        );
        assert_eq!(&*terminal_bytes(b"\x1b[8mhidden"), &b"\\x1b[8mhidden"[..]);
    }

    proptest! {
        #[test]
        fn nothing_unsafe_survives(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let shown = escape_bytes(&bytes);
            prop_assert!(is_safe_line(&shown), "{shown:?}");
            let text = String::from_utf8_lossy(&bytes);
            let lines = escape_keep_lines(&text);
            prop_assert!(lines.split('\n').all(is_safe_line), "{lines:?}");
            let term = terminal_bytes(&bytes);
            let term = String::from_utf8_lossy(&term);
            for (i, _) in term.match_indices('\x1b') {
                prop_assert!(OWN_SGR.iter().any(|s| term.as_bytes()[i..].starts_with(s)), "{term:?}");
            }
            prop_assert!(!term.chars().any(|c| is_unsafe(c) && !matches!(c, '\t' | '\n' | '\r' | '\x1b')), "{term:?}");
        }

        #[test]
        fn safe_text_is_unchanged(text in "[^\\p{Cc}\\p{Cf}\u{2028}\u{2029}]{0,60}") {
            prop_assert_eq!(escape_controls(&text), text.as_str());
        }
    }
}
