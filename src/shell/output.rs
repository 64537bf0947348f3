//! How the shell shows what the server says: status lines coloured by outcome (OK green, NO yellow, BAD and BYE
//! red), a REFERRAL code highlighted with a one-line decode under it, the greeting's product and capability
//! summary, wire bytes escaped for `:raw on`, and streamed literals shown or summarised.
//!
//! Pure: every function takes values and returns text. Colour is a parameter (ANSI SGR codes when true), decided
//! once by the caller from `--color`, `NO_COLOR` and whether the output is a terminal.

use crate::explain::{explain_response, known_text, product, ReferralKind, ReferralTarget};
use crate::probe::target::authority;
use crate::proto::display;
use crate::proto::response::{Kind, Response, Status};

/// An SGR colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// Green (OK).
    Green,
    /// Yellow (NO).
    Yellow,
    /// Red (BAD, BYE, errors).
    Red,
    /// Bold cyan (a REFERRAL code).
    Referral,
    /// Cyan (decodes, notes worth seeing).
    Cyan,
    /// Dim (the shell's own remarks).
    Dim,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Red => "31",
            Paint::Referral => "1;36",
            Paint::Cyan => "36",
            Paint::Dim => "2",
        }
    }
}

/// Wraps `text` in the colour when `color` is on.
pub fn paint(text: &str, paint: Paint, color: bool) -> String {
    if color && !text.is_empty() {
        format!("\x1b[{}m{text}\x1b[0m", paint.code())
    } else {
        text.to_string()
    }
}

/// The colour of a status response: OK green (tagged only), NO yellow, BAD and BYE red.
pub fn status_paint(response: &Response) -> Option<Paint> {
    match (&response.kind, response.status()?) {
        (_, Status::No) => Some(Paint::Yellow),
        (_, Status::Bad | Status::Bye) => Some(Paint::Red),
        (Kind::Status { tag: Some(_), .. }, Status::Ok) => Some(Paint::Green),
        _ => None,
    }
}

/// Makes server text safe for a terminal: the project's one escaping function,
/// [`crate::proto::display::escape_controls`] (controls other than TAB become `\x1b`, `\r`, ...), so that a server
/// cannot move the cursor, erase a line or change colours.
pub fn sanitize(text: &str) -> String {
    display::escape_controls(text).into_owned()
}

/// [`sanitize`] for text that spans lines: CRLF and LF stay line ends (as LF), other controls are escaped.
pub fn sanitize_keep_lines(text: &str) -> String {
    display::escape_keep_lines(text).into_owned()
}

/// The response as the server sent it, one line per line (line ends dropped), sanitised; the status line coloured
/// and a REFERRAL code highlighted.
pub fn response_text(response: &Response, color: bool) -> String {
    let mut lines: Vec<String> = response
        .raw
        .bytes
        .split(|&b| b == b'\n')
        .map(|l| display::escape_bytes(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect();
    if lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if let Some(first) = lines.first_mut() {
        *first = paint_status_line(first, status_paint(response), color);
    }
    lines.join("\n")
}

/// Colours a status line, with the `[REFERRAL ...]` part (if any) highlighted.
fn paint_status_line(line: &str, p: Option<Paint>, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let plain = |text: &str| match p {
        Some(p) => paint(text, p, true),
        None => text.to_string(),
    };
    let upper = line.to_ascii_uppercase();
    match upper.find("[REFERRAL") {
        Some(start) => {
            let end = line[start..]
                .find(']')
                .map_or(line.len(), |e| start + e + 1);
            format!(
                "{}{}{}",
                plain(&line[..start]),
                paint(&line[start..end], Paint::Referral, true),
                plain(&line[end..])
            )
        }
        None => plain(line),
    }
}

/// One referral target in a few words: `127.0.0.1:1144 as DOMname/UserN/AliasN, mailbox INBOX`.
pub fn target_words(t: &ReferralTarget) -> String {
    sanitize(&target_words_raw(t))
}

fn target_words_raw(t: &ReferralTarget) -> String {
    if let Some(err) = &t.error {
        return format!("{} (cannot be followed: {err})", t.raw);
    }
    let place = match (&t.host, t.port) {
        (Some(h), Some(p)) => authority(h, p),
        _ => t.raw.clone(),
    };
    let user = t.user.as_deref().map_or_else(
        || "as the same login name".to_string(),
        |u| format!("as {u}"),
    );
    let mech = match t.mechanism.as_deref() {
        Some(m) if m != "*" => format!(" (AUTH={m})"),
        _ => String::new(),
    };
    let mailbox = t
        .mailbox
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(|m| format!(", mailbox {m}"))
        .unwrap_or_default();
    format!("{place} {user}{mech}{mailbox}")
}

/// The one-line decode shown under a response with a REFERRAL code (one line per URL), or nothing.
pub fn referral_lines(response: &Response) -> Vec<String> {
    let Some(r) = explain_response(response).referral else {
        return Vec::new();
    };
    let kind = match (r.kind, r.logged_in) {
        (ReferralKind::Login, Some(true)) => {
            "login referral (logged in here, but the mailboxes are there)"
        }
        (ReferralKind::Login, _) => "login referral (not logged in here)",
        (ReferralKind::Mailbox, _) => "mailbox referral",
    };
    let many = r.targets.len() > 1;
    r.targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let which = if many {
                format!(" {}", i + 1)
            } else {
                String::new()
            };
            format!("  ↳ {kind}{which}: {}; :follow goes there", target_words(t))
        })
        .collect()
}

/// A short hint under a NO whose text imapref recognises (Exchange's "no replica", Cyrus's "Server(s)
/// unavailable", ...): the first sentence of its meaning.
pub fn known_text_hint(response: &Response) -> Option<String> {
    if response.code().and_then(|c| c.referral_urls()).is_some() {
        return None;
    }
    let known = known_text::recognise(response.text()?)?;
    let first = known
        .meaning
        .split_inclusive(". ")
        .next()
        .unwrap_or(known.meaning)
        .trim_end();
    Some(format!("  ↳ {} (:explain for more)", sanitize(first)))
}

/// The lines under a greeting: the product, and the capability summary when the greeting carried them.
pub fn greeting_notes(greeting: &Response) -> Vec<String> {
    let mut out = Vec::new();
    if let Kind::Greeting { text, .. } = &greeting.kind {
        if let Some(p) = product::recognise(text) {
            out.push(format!(
                "  server: {}{}",
                sanitize(&p.name),
                p.version
                    .map(|v| format!(" {}", sanitize(&v)))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// The notable capabilities, the way the probe reports them: `12 capabilities; notable: LOGIN-REFERRALS
/// STARTTLS AUTH=PLAIN`.
pub fn capability_summary(caps: &[String]) -> String {
    format!(
        "  capabilities: {}",
        sanitize(&crate::explain::capability_line(caps).replacen(" capabilities;", ";", 1))
    )
}

/// Bytes on the wire, escaped for `:raw on`: one `prefix`ed line per line, printable ASCII as is, CR and LF as
/// `\r` `\n`, backslash as `\\`, everything else as `\xNN`.
pub fn escape_wire(prefix: &str, bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for &b in bytes {
        match b {
            b'\n' => {
                line.push_str("\\n");
                out.push_str(prefix);
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            b'\r' => line.push_str("\\r"),
            b'\t' => line.push_str("\\t"),
            b'\\' => line.push_str("\\\\"),
            0x20..=0x7e => line.push(b as char),
            _ => line.push_str(&format!("\\x{b:02X}")),
        }
    }
    if !line.is_empty() {
        out.push_str(prefix);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// True when data would garble a terminal: a NUL, control bytes other than CR, LF, TAB, or bytes that are not
/// UTF-8 (a piece may end inside a character, so a cut at the very end is allowed).
pub fn is_binary(data: &[u8]) -> bool {
    if data
        .iter()
        .any(|&b| b == 0 || (b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t')) || b == 0x7f)
    {
        return true;
    }
    match std::str::from_utf8(data) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}

/// A size in words: `512 bytes`, `1.5 MiB`.
pub fn size_words(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} bytes")
    } else if f < KIB * KIB {
        format!("{:.1} KiB ({n} bytes)", f / KIB)
    } else {
        format!("{:.1} MiB ({n} bytes)", f / KIB / KIB)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::proto::response::raw_from_line;

    fn resp(line: &str) -> Response {
        Response::parse_line(line.as_bytes())
    }

    #[test]
    fn status_colours() {
        let ok = resp("a1 OK done");
        assert_eq!(response_text(&ok, false), "a1 OK done");
        assert_eq!(response_text(&ok, true), "\x1b[32ma1 OK done\x1b[0m");
        assert_eq!(
            response_text(
                &resp("? NO There is no replica for that mailbox on this server."),
                true
            ),
            "\x1b[33m? NO There is no replica for that mailbox on this server.\x1b[0m"
        );
        assert!(response_text(&resp("a1 BAD what"), true).starts_with("\x1b[31m"));
        assert!(response_text(&resp("* BYE idle for too long"), true).starts_with("\x1b[31m"));
        assert_eq!(response_text(&resp("* 5 EXISTS"), true), "* 5 EXISTS");
        assert_eq!(
            response_text(&resp("* OK [UIDNEXT 4] x"), true),
            "* OK [UIDNEXT 4] x"
        );
    }

    #[test]
    fn referral_code_is_highlighted_and_decoded() {
        let line = "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:40002] LOGIN completed";
        let r = resp(line);
        assert_eq!(response_text(&r, false), line);
        assert_eq!(
            response_text(&r, true),
            "\x1b[32m? OK \x1b[0m\x1b[1;36m[REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:40002]\x1b[0m\
             \x1b[32m LOGIN completed\x1b[0m"
        );
        let lines = referral_lines(&r);
        assert_eq!(
            lines,
            ["  ↳ login referral (logged in here, but the mailboxes are there): 127.0.0.1:40002 as \
              DOMname/UserN/AliasN; :follow goes there"]
        );

        let r = resp(
            "a NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:1144/] Try this server instead.",
        );
        assert_eq!(
            referral_lines(&r),
            ["  ↳ login referral (not logged in here): 127.0.0.1:1144 as referred (AUTH=PLAIN); :follow goes there"]
        );
        let r =
            resp("a2 NO [REFERRAL imap://;AUTH=*@cyrus2.example.com/user.peter] Remote mailbox.");
        assert_eq!(
            referral_lines(&r),
            ["  ↳ mailbox referral: cyrus2.example.com:143 as the same login name, mailbox user.peter; :follow goes there"]
        );
        let r = resp("a2 NO [REFERRAL imap://a/x imap://b/x] Remote mailbox.");
        assert_eq!(referral_lines(&r).len(), 2);
        assert!(referral_lines(&resp("a1 OK fine")).is_empty());
        let r = resp("a1 NO [REFERRAL http://x/] nope");
        assert!(
            referral_lines(&r)[0].contains("cannot be followed"),
            "{:?}",
            referral_lines(&r)
        );
    }

    #[test]
    fn the_no_replica_text_gets_a_hint() {
        let hint = known_text_hint(&resp(
            "? NO There is no replica for that mailbox on this server.",
        ))
        .unwrap();
        assert!(hint.contains("holds no replica"), "{hint}");
        assert!(hint.ends_with("(:explain for more)"));
        assert!(known_text_hint(&resp("a1 NO other")).is_none());
    }

    #[test]
    fn greeting_and_capabilities() {
        let g = Response::parse_greeting(raw_from_line(
            b"* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (reedlm4.com) ready",
        ));
        assert_eq!(
            greeting_notes(&g),
            ["  server: Microsoft Exchange 5.5 5.5.1960.6"]
        );
        let caps: Vec<String> = [
            "IMAP4rev1",
            "LOGIN-REFERRALS",
            "STARTTLS",
            "AUTH=PLAIN",
            "IDLE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            capability_summary(&caps),
            "  capabilities: 5; notable: LOGIN-REFERRALS STARTTLS AUTH=PLAIN"
        );
        assert_eq!(capability_summary(&[]), "  capabilities: 0; notable: none");
    }

    #[test]
    fn terminal_escapes_from_the_server_are_defused() {
        let r = resp("* OK \x1b[2J cleared");
        assert_eq!(response_text(&r, false), "* OK \\x1b[2J cleared");
        let r = resp("* OK x\r\x1b[2K  ok    greeting   forged line");
        assert_eq!(
            response_text(&r, false),
            "* OK x\\r\\x1b[2K  ok    greeting   forged line"
        );
        let r = Response::parse_line(b"* OK \x1b]0;title\x07 \x08\0 bad \xff");
        assert_eq!(
            response_text(&r, false),
            "* OK \\x1b]0;title\\x07 \\x08\\x00 bad \\xff"
        );
        let r = resp("a NO [REFERRAL imap://ev%1B%5B2Kil@h/] x");
        assert_eq!(
            referral_lines(&r),
            ["  ↳ login referral (not logged in here): h:143 as ev\\x1b[2Kil; :follow goes there"]
        );
        assert_eq!(sanitize("tab\there"), "tab\there");
        assert_eq!(sanitize_keep_lines("a\r\nb\x07\nc"), "a\nb\\x07\nc");
    }

    #[test]
    fn multi_line_responses_keep_their_lines() {
        let raw = crate::proto::framing::RawResponse {
            bytes: b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n".to_vec(),
            literals: Vec::new(),
        };
        let r = Response::parse(raw);
        assert_eq!(response_text(&r, false), "* 1 FETCH (BODY[] {5}\nab\nc)");
    }

    #[test]
    fn wire_escapes() {
        assert_eq!(
            escape_wire("C: ", b"a1 LOGIN user ***\r\n"),
            "C: a1 LOGIN user ***\\r\\n\n"
        );
        assert_eq!(
            escape_wire("S: ", b"* OK caf\xc3\xa9\r\n* 1 EXISTS\r\n"),
            "S: * OK caf\\xC3\\xA9\\r\\n\nS: * 1 EXISTS\\r\\n\n"
        );
        assert_eq!(escape_wire("S: ", b"x\\y\0"), "S: x\\\\y\\x00\n");
    }

    #[test]
    fn binary_detection() {
        assert!(!is_binary(b"Subject: hi\r\n\r\nhello\tthere"));
        assert!(!is_binary("grüße".as_bytes()));
        assert!(!is_binary(&"grüße".as_bytes()[..3]));
        assert!(is_binary(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(is_binary(b"\xff\xfe abc"));
        assert_eq!(size_words(100), "100 bytes");
        assert_eq!(size_words(2048), "2.0 KiB (2048 bytes)");
    }
}
