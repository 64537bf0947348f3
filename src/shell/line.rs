//! Typed lines to wire pieces: what the shell sends for a line the user typed, as in telnet, but correct.
//!
//! A line that starts with a tag (`? login DOMname/UserN/AliasN PASSword`, `a1 select inbox`; see
//! [`line_has_tag`]) is sent as typed; a line without one gets a fresh tag in front (`login x y` becomes
//! `a2 login x y`). Everything ASCII goes out byte for byte. Two things are changed, because telnet would get them
//! wrong:
//!
//! - an argument with 8-bit bytes (an atom or a quoted string) cannot be sent as typed in IMAP4rev1; it becomes a
//!   literal, `{n}` (wait for the server's `+`) or `{n+}` when the server advertises LITERAL+;
//! - a literal the user typed, `{n}` or `{n+}`, is rewritten to the form the server accepts, and the shell waits
//!   for `+` where it must. Its data either follows the marker on the same line (`a1 LOGIN {4}user {8}PASSword`)
//!   or, when the marker ends the line, comes on the next lines ([`OpenCommand`]); there the line end counts as
//!   two bytes of the literal, as on the wire.
//!
//! NUL and other control bytes are refused ([`LineError::Control`]): a line holding one is never sent.
//!
//! Every piece has a `shown` form for transcripts and screens: from the password of a LOGIN or the initial
//! response of an AUTHENTICATE to the end of the command, the bytes are `***`, and a secret literal's size is
//! `{***}`. This module is pure: it takes bytes and gives [`Planned`] pieces.

use thiserror::Error;

use crate::proto::command::{line_has_tag, Encoded, LiteralMode, Piece};
use crate::secret::{Secret, REDACTED};

/// Why a typed line cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    /// A NUL or another control byte (CR and LF cannot occur: lines are split at them).
    #[error(
        "the line holds {} at byte {position}: IMAP commands cannot carry NUL or control characters, so the line \
         was not sent",
        describe_control(*.byte)
    )]
    Control {
        /// The byte.
        byte: u8,
        /// Its offset in the line (0-based).
        position: usize,
    },
    /// An inline literal announces more bytes than the line holds after it.
    #[error(
        "the literal {{{announced}}} announces {announced} bytes but only {available} follow on this line; end the \
         line with the marker to type the data on the next lines"
    )]
    ShortLiteral {
        /// The announced size.
        announced: u64,
        /// The bytes left on the line.
        available: usize,
    },
    /// A literal size that is not a number IMAP allows.
    #[error("the literal size `{0}` is not a number from 0 to 4294967295")]
    BadLiteralSize(String),
}

fn describe_control(byte: u8) -> String {
    match byte {
        0 => "a NUL byte (0x00)".to_string(),
        0x1b => "an escape character (0x1B)".to_string(),
        0x7f => "a DEL character (0x7F)".to_string(),
        b => format!("the control character 0x{b:02X}"),
    }
}

/// A command whose end has not been typed yet: a literal announced at the end of a line, or data after a literal
/// that ended exactly at a line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCommand {
    /// The command's tag.
    pub tag: String,
    /// The command name, upper case (`LOGIN`, `APPEND`, ...).
    pub name: String,
    /// Bytes of the literal still to come; 0 when the literal is complete and the command goes on after it.
    pub literal_remaining: u64,
    /// The number of top-level arguments begun so far (the open literal is the last of them).
    pub args: usize,
}

impl OpenCommand {
    /// True when what comes next belongs to a secret (LOGIN's password, AUTHENTICATE's initial response).
    pub fn is_secret(&self) -> bool {
        secret_arg(&self.name, self.args.max(1))
    }
}

/// A line ready to send.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The tag of the command the pieces belong to.
    pub tag: String,
    /// The command name, upper case (`UID FETCH` is `UID`); empty for a bare tag.
    pub name: String,
    /// The pieces: each is sent in one write; after one with `then_wait_continuation`, wait for `+`.
    pub encoded: Encoded,
    /// `Some` when the command goes on in the next line (the line ended inside or right after a literal).
    pub open: Option<OpenCommand>,
    /// The user name and password of a LOGIN typed whole on this line, to reuse for `:follow`.
    pub login: Option<(String, Secret)>,
    /// True when the shell made the tag up.
    pub generated_tag: bool,
}

/// Checks a line for bytes IMAP cannot carry. TAB is allowed; other C0 controls and DEL are not.
pub fn check_control(line: &[u8]) -> Result<(), LineError> {
    match line
        .iter()
        .position(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        Some(position) => Err(LineError::Control {
            byte: line[position],
            position,
        }),
        None => Ok(()),
    }
}

/// True when the argument at `index` (1-based) of command `name` is a secret, and so is everything after it.
fn secret_arg(name: &str, index: usize) -> bool {
    (name.eq_ignore_ascii_case("LOGIN") || name.eq_ignore_ascii_case("AUTHENTICATE")) && index >= 2
}

/// Builds pieces with their shown forms.
struct Builder {
    pieces: Vec<Piece>,
    wire: Vec<u8>,
    shown: Vec<u8>,
    /// `***` was already written to `shown` in this stretch of secret bytes.
    starred: bool,
}

impl Builder {
    fn new() -> Self {
        Builder {
            pieces: Vec::new(),
            wire: Vec::new(),
            shown: Vec::new(),
            starred: false,
        }
    }

    fn push(&mut self, bytes: &[u8], secret: bool) {
        if bytes.is_empty() {
            return;
        }
        self.wire.extend_from_slice(bytes);
        if secret {
            if !self.starred {
                self.shown.extend_from_slice(REDACTED.as_bytes());
                self.starred = true;
            }
        } else {
            self.shown.extend_from_slice(bytes);
            self.starred = false;
        }
    }

    /// A literal marker and its line end; a synchronizing one ends the piece, which then waits for `+`.
    fn marker(&mut self, len: u64, non_sync: bool, secret: bool) {
        let plus = if non_sync { "+" } else { "" };
        let marker = format!("{{{len}{plus}}}\r\n");
        self.wire.extend_from_slice(marker.as_bytes());
        if secret {
            self.shown
                .extend_from_slice(format!("{{{REDACTED}{plus}}}\r\n").as_bytes());
        } else {
            self.shown.extend_from_slice(marker.as_bytes());
        }
        self.starred = false;
        if !non_sync {
            self.cut(true);
        }
    }

    fn cut(&mut self, wait: bool) {
        if self.wire.is_empty() {
            return;
        }
        self.pieces.push(Piece {
            wire: std::mem::take(&mut self.wire),
            shown: std::mem::take(&mut self.shown),
            then_wait_continuation: wait,
        });
        self.starred = false;
    }

    /// Ends the command with CRLF.
    fn finish(mut self) -> Encoded {
        self.wire.extend_from_slice(b"\r\n");
        self.shown.extend_from_slice(b"\r\n");
        self.cut(false);
        Encoded {
            pieces: self.pieces,
        }
    }

    /// Leaves the command open (the line ended with a literal marker, or right after a literal's data).
    fn leave_open(mut self) -> Encoded {
        self.cut(false);
        Encoded {
            pieces: self.pieces,
        }
    }
}

/// The argument values of a LOGIN, gathered while tokenizing.
#[derive(Default)]
struct LoginArgs {
    values: Vec<Option<Vec<u8>>>,
}

/// Walks the arguments of a command, converting what must be converted.
struct Walker<'a> {
    line: &'a [u8],
    pos: usize,
    name: String,
    args: usize,
    depth: usize,
    literal: LiteralMode,
    secret: bool,
    login: LoginArgs,
}

enum WalkEnd {
    /// The line ended; the command is complete.
    Complete,
    /// The line ended with a literal marker: `n` bytes to come on the next lines.
    OpenLiteral(u64),
}

impl<'a> Walker<'a> {
    fn is_secret_now(&mut self) -> bool {
        if !self.secret && self.depth == 0 && secret_arg(&self.name, self.args) {
            self.secret = true;
        }
        self.secret
    }

    /// Starts a new top-level argument when not inside parentheses.
    fn begin_arg(&mut self) {
        if self.depth == 0 {
            self.args += 1;
        }
    }

    fn note_value(&mut self, value: Option<Vec<u8>>) {
        if self.depth == 0 && self.name == "LOGIN" && self.login.values.len() < self.args {
            self.login.values.push(value);
        }
    }

    fn walk(&mut self, b: &mut Builder) -> Result<WalkEnd, LineError> {
        let line = self.line;
        while self.pos < line.len() {
            let c = line[self.pos];
            match c {
                b' ' | b'\t' => {
                    let secret = self.secret;
                    b.push(&line[self.pos..=self.pos], secret);
                    self.pos += 1;
                }
                b'(' => {
                    self.begin_arg();
                    let secret = self.is_secret_now();
                    self.note_value(None);
                    self.depth += 1;
                    b.push(b"(", secret);
                    self.pos += 1;
                }
                b')' => {
                    self.depth = self.depth.saturating_sub(1);
                    let secret = self.secret;
                    b.push(b")", secret);
                    self.pos += 1;
                }
                b'"' => {
                    self.begin_arg();
                    let secret = self.is_secret_now();
                    let end = quoted_end(line, self.pos);
                    let token = &line[self.pos..end];
                    let value = unescape_quoted(token);
                    if token.is_ascii() {
                        b.push(token, secret);
                    } else {
                        let data = value.clone().unwrap_or_else(|| token.to_vec());
                        b.marker(
                            data.len() as u64,
                            self.literal.non_sync(data.len() as u64),
                            secret,
                        );
                        b.push(&data, secret);
                    }
                    self.note_value(value);
                    self.pos = end;
                }
                b'{' if literal_marker(line, self.pos).is_some() => {
                    let (len, end) = match literal_marker(line, self.pos) {
                        Some(marker) => marker?,
                        None => (0, self.pos + 1),
                    };
                    self.begin_arg();
                    let secret = self.is_secret_now();
                    b.marker(len, self.literal.non_sync(len), secret);
                    let rest = line.len() - end;
                    if rest == 0 {
                        self.pos = end;
                        return Ok(WalkEnd::OpenLiteral(len));
                    }
                    let n = usize::try_from(len).unwrap_or(usize::MAX);
                    if n > rest {
                        return Err(LineError::ShortLiteral {
                            announced: len,
                            available: rest,
                        });
                    }
                    let data = &line[end..end + n];
                    b.push(data, secret);
                    self.note_value(Some(data.to_vec()));
                    self.pos = end + n;
                }
                _ => {
                    self.begin_arg();
                    let secret = self.is_secret_now();
                    let end = atom_end(line, self.pos);
                    let token = &line[self.pos..end];
                    if token.is_ascii() {
                        b.push(token, secret);
                    } else {
                        b.marker(
                            token.len() as u64,
                            self.literal.non_sync(token.len() as u64),
                            secret,
                        );
                        b.push(token, secret);
                    }
                    self.note_value(Some(token.to_vec()));
                    self.pos = end;
                }
            }
        }
        Ok(WalkEnd::Complete)
    }
}

/// Where a quoted string starting at `start` (the `"`) ends: after its closing quote, or at the end of the line.
fn quoted_end(line: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    line.len()
}

/// The content of a quoted string, unescaped; `None` when it is not closed.
fn unescape_quoted(token: &[u8]) -> Option<Vec<u8>> {
    let inner = token.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &c in inner {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Where an atom starting at `start` ends: at a space, a tab or a parenthesis outside `[...]` (so that
/// `BODY.PEEK[HEADER.FIELDS (SUBJECT)]` is one token).
fn atom_end(line: &[u8], start: usize) -> usize {
    let mut brackets = 0usize;
    let mut i = start;
    while i < line.len() {
        match line[i] {
            b'[' => brackets += 1,
            b']' => brackets = brackets.saturating_sub(1),
            b' ' | b'\t' | b'(' | b')' if brackets == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    line.len()
}

/// A literal marker `{n}` or `{n+}` at `start`: `Some(Ok((n, end)))` with `end` just after the `}`.
fn literal_marker(line: &[u8], start: usize) -> Option<Result<(u64, usize), LineError>> {
    let rest = line.get(start + 1..)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut end = start + 1 + digits;
    if line.get(end) == Some(&b'+') {
        end += 1;
    }
    if line.get(end) != Some(&b'}') {
        return None;
    }
    let text = String::from_utf8_lossy(&line[start + 1..start + 1 + digits]).into_owned();
    Some(match text.parse::<u64>() {
        Ok(n) if n <= u64::from(u32::MAX) => Ok((n, end + 1)),
        _ => Err(LineError::BadLiteralSize(text)),
    })
}

/// Removes one line end (CRLF or LF) the input may still carry.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Plans a new command from a typed line. `next_tag` is called only when the line has no tag; `literal` is what the
/// server's capabilities allow (under LITERAL-, only literals of at most 4096 bytes go as `{n+}`). `Ok(None)` for a blank line.
pub fn plan_line(
    line: &[u8],
    literal: LiteralMode,
    next_tag: impl FnOnce() -> String,
) -> Result<Option<Planned>, LineError> {
    let line = trim_line_end(line);
    check_control(line)?;
    if line.iter().all(|b| matches!(b, b' ' | b'\t')) {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(line);
    let mut b = Builder::new();
    let (tag, generated, rest_start) = if line_has_tag(&text) {
        let start = line
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t'))
            .unwrap_or(0);
        let end = start
            + line[start..]
                .iter()
                .position(|c| matches!(c, b' ' | b'\t'))
                .unwrap_or(line.len() - start);
        b.push(&line[start..end], false);
        (
            String::from_utf8_lossy(&line[start..end]).into_owned(),
            false,
            end,
        )
    } else {
        let tag = next_tag();
        b.push(tag.as_bytes(), false);
        b.push(b" ", false);
        let start = line
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t'))
            .unwrap_or(0);
        (tag, true, start)
    };
    // The command name: the first word after the tag, copied as typed.
    let mut pos = rest_start;
    while pos < line.len() && matches!(line[pos], b' ' | b'\t') {
        pos += 1;
    }
    b.push(&line[rest_start..pos], false);
    let name_end = atom_end(line, pos);
    let name_bytes = &line[pos..name_end];
    let name = String::from_utf8_lossy(name_bytes).to_ascii_uppercase();
    if name_bytes.is_ascii() {
        b.push(name_bytes, false);
    } else {
        // Not a command any server knows; sent as a literal so that the server can at least answer BAD.
        b.marker(
            name_bytes.len() as u64,
            literal.non_sync(name_bytes.len() as u64),
            false,
        );
        b.push(name_bytes, false);
    }
    let mut walker = Walker {
        line,
        pos: name_end,
        name: name.clone(),
        args: 0,
        depth: 0,
        literal,
        secret: false,
        login: LoginArgs::default(),
    };
    let end = walker.walk(&mut b)?;
    Ok(Some(finish_plan(b, walker, end, tag, name, generated)))
}

fn finish_plan(
    b: Builder,
    walker: Walker<'_>,
    end: WalkEnd,
    tag: String,
    name: String,
    generated: bool,
) -> Planned {
    let login = match (&end, walker.login.values.as_slice()) {
        (WalkEnd::Complete, [Some(user), Some(pass), ..]) if walker.name == "LOGIN" => Some((
            String::from_utf8_lossy(user).into_owned(),
            Secret::new(String::from_utf8_lossy(pass).into_owned()),
        )),
        _ => None,
    };
    let (encoded, open) = match end {
        WalkEnd::Complete => (b.finish(), None),
        WalkEnd::OpenLiteral(n) => (
            b.leave_open(),
            Some(OpenCommand {
                tag: tag.clone(),
                name: name.clone(),
                literal_remaining: n,
                args: walker.args,
            }),
        ),
    };
    Planned {
        tag,
        name,
        encoded,
        open,
        login,
        generated_tag: generated,
    }
}

/// Plans the next line of an [`OpenCommand`]: first the rest of its literal (the line end counts as two bytes when
/// the literal goes on past it), then more arguments, as in [`plan_line`].
pub fn plan_continuation(
    line: &[u8],
    open: &OpenCommand,
    literal: LiteralMode,
) -> Result<Planned, LineError> {
    let line = trim_line_end(line);
    check_control(line)?;
    let mut b = Builder::new();
    let secret_literal = secret_arg(&open.name, open.args);
    let remaining = usize::try_from(open.literal_remaining).unwrap_or(usize::MAX);
    let mut start = 0;
    if remaining > 0 {
        if line.len() < remaining {
            // The literal goes on past this line: the line and its end are literal data.
            let mut data = line.to_vec();
            data.extend_from_slice(b"\r\n");
            data.truncate(remaining);
            b.push(&data, secret_literal);
            let left = remaining - data.len();
            return Ok(Planned {
                tag: open.tag.clone(),
                name: open.name.clone(),
                encoded: b.leave_open(),
                open: Some(OpenCommand {
                    literal_remaining: left as u64,
                    ..open.clone()
                }),
                login: None,
                generated_tag: false,
            });
        }
        b.push(&line[..remaining], secret_literal);
        start = remaining;
    }
    let mut walker = Walker {
        line,
        pos: start,
        name: open.name.clone(),
        args: open.args,
        depth: 0,
        literal,
        secret: secret_literal,
        login: LoginArgs::default(),
    };
    let end = walker.walk(&mut b)?;
    Ok(finish_plan(
        b,
        walker,
        end,
        open.tag.clone(),
        open.name.clone(),
        false,
    ))
}

/// Plans a line that answers a server's `+` (an IDLE's `DONE`, an AUTHENTICATE step): sent as typed with CRLF.
/// `secret` hides it in the shown form (every AUTHENTICATE step carries credentials).
pub fn plan_response_line(line: &[u8], tag: &str, secret: bool) -> Result<Planned, LineError> {
    let line = trim_line_end(line);
    check_control(line)?;
    let mut b = Builder::new();
    b.push(line, secret);
    Ok(Planned {
        tag: tag.to_string(),
        name: String::new(),
        encoded: b.finish(),
        open: None,
        login: None,
        generated_tag: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn tags() -> impl FnOnce() -> String {
        || "a7".to_string()
    }

    fn plan(line: &str, literal_plus: bool) -> Planned {
        plan_line(line.as_bytes(), literal_plus.into(), tags())
            .unwrap()
            .unwrap()
    }

    fn pieces(p: &Planned) -> Vec<(String, String, bool)> {
        p.encoded
            .pieces
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.wire).into_owned(),
                    String::from_utf8_lossy(&p.shown).into_owned(),
                    p.then_wait_continuation,
                )
            })
            .collect()
    }

    #[test]
    fn the_kb_lines_go_as_typed() {
        let p = plan("? login DOMname/UserN/AliasN PASSword", false);
        assert_eq!(p.tag, "?");
        assert_eq!(p.name, "LOGIN");
        assert!(!p.generated_tag);
        assert_eq!(
            pieces(&p),
            [(
                "? login DOMname/UserN/AliasN PASSword\r\n".into(),
                "? login DOMname/UserN/AliasN ***\r\n".into(),
                false
            )]
        );
        let (user, pass) = p.login.unwrap();
        assert_eq!(user, "DOMname/UserN/AliasN");
        assert_eq!(pass.expose(), "PASSword");

        let p = plan("? Select Inbox", false);
        assert_eq!(pieces(&p)[0].0, "? Select Inbox\r\n");
        assert_eq!(pieces(&p)[0].1, "? Select Inbox\r\n");
        assert!(p.login.is_none());
        assert_eq!(plan("? logout", true).encoded.wire(), b"? logout\r\n");
    }

    #[test]
    fn untagged_lines_get_a_tag() {
        let p = plan("login x y", false);
        assert_eq!(p.tag, "a7");
        assert!(p.generated_tag);
        assert_eq!(p.encoded.wire(), b"a7 login x y\r\n");
        assert_eq!(p.encoded.shown(), b"a7 login x ***\r\n");
        let p = plan("  capability", false);
        assert_eq!(p.encoded.wire(), b"a7 capability\r\n");
        assert_eq!(p.name, "CAPABILITY");
    }

    #[test]
    fn blank_lines_send_nothing() {
        assert!(plan_line(b"", false.into(), tags()).unwrap().is_none());
        assert!(plan_line(b"  \t ", false.into(), tags()).unwrap().is_none());
        assert!(plan_line(b"\r\n", false.into(), tags()).unwrap().is_none());
    }

    #[test]
    fn crlf_from_a_file_is_dropped() {
        let p = plan("a1 NOOP\r", false);
        assert_eq!(p.encoded.wire(), b"a1 NOOP\r\n");
    }

    #[test]
    fn control_bytes_are_refused() {
        let err = plan_line(b"a1 LOGIN us\0er x", false.into(), tags()).unwrap_err();
        assert_eq!(
            err,
            LineError::Control {
                byte: 0,
                position: 11
            }
        );
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(matches!(
            plan_line(b"a1 select \x1b[31m", false.into(), tags()),
            Err(LineError::Control { byte: 0x1b, .. })
        ));
        assert!(plan_line(b"a1\tnoop", false.into(), tags()).is_ok());
    }

    #[test]
    fn eight_bit_arguments_become_literals() {
        let p = plan("a1 LOGIN jürgen pässword", false);
        assert_eq!(
            pieces(&p),
            [
                ("a1 LOGIN {7}\r\n".into(), "a1 LOGIN {7}\r\n".into(), true),
                ("jürgen {9}\r\n".into(), "jürgen {***}\r\n".into(), true),
                ("pässword\r\n".into(), "***\r\n".into(), false),
            ]
        );
        let (user, pass) = p.login.unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("jürgen", "pässword"));

        let p = plan("a1 LOGIN jürgen pässword", true);
        assert_eq!(
            pieces(&p),
            [(
                "a1 LOGIN {7+}\r\njürgen {9+}\r\npässword\r\n".into(),
                "a1 LOGIN {7+}\r\njürgen {***+}\r\n***\r\n".into(),
                false
            )]
        );

        let p = plan("a1 SEARCH SUBJECT \"grüße \\\"x\\\"\"", true);
        assert_eq!(
            String::from_utf8(p.encoded.wire()).unwrap(),
            "a1 SEARCH SUBJECT {11+}\r\ngrüße \"x\"\r\n"
        );
    }

    #[test]
    fn ascii_is_sent_byte_for_byte() {
        for line in [
            "a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
            "a2 STATUS \"Public Folders/x\" (MESSAGES UNSEEN)",
            "a3 LIST \"\" *",
            "a4 select \"unterminated",
            "a5 append INBOX (\\Seen) {x}",
        ] {
            let p = plan(line, false);
            assert_eq!(
                String::from_utf8(p.encoded.wire()).unwrap(),
                format!("{line}\r\n")
            );
            assert_eq!(p.encoded.pieces.len(), 1, "{line}");
        }
    }

    #[test]
    fn inline_literals_are_split_where_the_server_answers() {
        let p = plan("a1 LOGIN {4}user {8}PASSword", false);
        assert_eq!(
            pieces(&p),
            [
                ("a1 LOGIN {4}\r\n".into(), "a1 LOGIN {4}\r\n".into(), true),
                ("user {8}\r\n".into(), "user {***}\r\n".into(), true),
                ("PASSword\r\n".into(), "***\r\n".into(), false),
            ]
        );
        assert_eq!(p.login.unwrap().1.expose(), "PASSword");
        // {n+} typed for a server without LITERAL+ is made synchronizing, and the other way round.
        let p = plan("a1 CREATE {3+}abc", false);
        assert_eq!(pieces(&p)[0].0, "a1 CREATE {3}\r\n");
        assert!(pieces(&p)[0].2);
        let p = plan("a1 CREATE {3}abc", true);
        assert_eq!(
            pieces(&p),
            [(
                "a1 CREATE {3+}\r\nabc\r\n".into(),
                "a1 CREATE {3+}\r\nabc\r\n".into(),
                false
            )]
        );
        assert_eq!(
            plan_line(b"a1 CREATE {9}abc", false.into(), tags()).unwrap_err(),
            LineError::ShortLiteral {
                announced: 9,
                available: 3
            }
        );
        assert!(matches!(
            plan_line(b"a1 CREATE {99999999999}x", false.into(), tags()),
            Err(LineError::BadLiteralSize(_))
        ));
    }

    #[test]
    fn literal_minus_sends_only_small_literals_without_waiting() {
        // RFC 7888: under LITERAL-, a non-synchronizing literal may carry at most 4096 bytes.
        let small = format!("a1 CREATE {{4096+}}{}", "x".repeat(4096));
        let p = plan_line(small.as_bytes(), LiteralMode::Minus, tags())
            .unwrap()
            .unwrap();
        assert!(pieces(&p)[0].0.starts_with("a1 CREATE {4096+}\r\n"));
        assert_eq!(pieces(&p).len(), 1, "one piece, no wait");
        let big = format!("a1 CREATE {{4097+}}{}", "x".repeat(4097));
        let p = plan_line(big.as_bytes(), LiteralMode::Minus, tags())
            .unwrap()
            .unwrap();
        assert_eq!(pieces(&p)[0].0, "a1 CREATE {4097}\r\n");
        assert!(pieces(&p)[0].2, "waits for the server's +");
    }

    #[test]
    fn a_marker_at_the_end_leaves_the_command_open() {
        let p = plan("a1 LOGIN {4}", false);
        assert_eq!(
            pieces(&p),
            [("a1 LOGIN {4}\r\n".into(), "a1 LOGIN {4}\r\n".into(), true)]
        );
        let open = p.open.unwrap();
        assert_eq!(open.literal_remaining, 4);
        assert_eq!(open.args, 1);
        assert!(!open.is_secret());
        assert!(p.login.is_none());

        // The user name, then the password announced at the end of the line.
        let p = plan_continuation(b"user {8}", &open, false.into()).unwrap();
        assert_eq!(
            pieces(&p),
            [("user {8}\r\n".into(), "user {***}\r\n".into(), true)]
        );
        let open = p.open.unwrap();
        assert_eq!((open.literal_remaining, open.args), (8, 2));
        assert!(open.is_secret());
        let p = plan_continuation(b"PASSword", &open, false.into()).unwrap();
        assert_eq!(
            pieces(&p),
            [("PASSword\r\n".into(), "***\r\n".into(), false)]
        );
        assert!(p.open.is_none());
    }

    #[test]
    fn a_literal_can_span_lines() {
        let p = plan("a1 APPEND INBOX {20}", true);
        assert_eq!(pieces(&p)[0].0, "a1 APPEND INBOX {20+}\r\n");
        assert!(!pieces(&p)[0].2);
        let open = p.open.unwrap();
        let p = plan_continuation(b"Subject: hi", &open, true.into()).unwrap();
        assert_eq!(p.encoded.wire(), b"Subject: hi\r\n");
        let open = p.open.unwrap();
        assert_eq!(open.literal_remaining, 7);
        let p = plan_continuation(b"", &open, true.into()).unwrap();
        assert_eq!(p.encoded.wire(), b"\r\n");
        let open = p.open.unwrap();
        assert_eq!(open.literal_remaining, 5);
        let p = plan_continuation(b"hello", &open, true.into()).unwrap();
        assert_eq!(p.encoded.wire(), b"hello\r\n");
        assert!(p.open.is_none());
        // A literal that ends with the line's CR: the command goes on in the next line.
        let open = OpenCommand {
            tag: "a1".into(),
            name: "APPEND".into(),
            literal_remaining: 4,
            args: 2,
        };
        let p = plan_continuation(b"abc", &open, true.into()).unwrap();
        assert_eq!(p.encoded.wire(), b"abc\r");
        assert_eq!(p.open.unwrap().literal_remaining, 0);
    }

    #[test]
    fn server_continuations_are_sent_raw() {
        let p = plan_response_line(b"DONE", "a4", false).unwrap();
        assert_eq!(p.encoded.wire(), b"DONE\r\n");
        assert_eq!(p.encoded.shown(), b"DONE\r\n");
        let p = plan_response_line(b"AGZvbwBiYXI=", "a4", true).unwrap();
        assert_eq!(p.encoded.wire(), b"AGZvbwBiYXI=\r\n");
        assert_eq!(p.encoded.shown(), b"***\r\n");
        assert!(plan_response_line(b"x\x01", "a4", false).is_err());
    }

    #[test]
    fn authenticate_initial_responses_are_hidden() {
        let p = plan("a1 AUTHENTICATE PLAIN AGZvbwBiYXI=", false);
        assert_eq!(p.encoded.shown(), b"a1 AUTHENTICATE PLAIN ***\r\n");
        let p = plan("a1 authenticate plain", false);
        assert_eq!(p.encoded.shown(), b"a1 authenticate plain\r\n");
    }

    #[test]
    fn passwords_never_show_whatever_their_form() {
        for line in [
            "a1 LOGIN user PASSword",
            "a1 LOGIN user \"PASSword\"",
            "a1 LOGIN user PASS word",
            "a1 LOGIN \"us er\" {8}PASSword",
            "LOGIN user PASSword",
            "a1 LOGIN user (PASSword)",
            "a1 LOGIN user PASSwörd",
        ] {
            let p = plan(line, false);
            let shown = String::from_utf8_lossy(&p.encoded.shown()).into_owned();
            assert!(!shown.contains("PASS"), "{line}: {shown}");
            assert!(String::from_utf8_lossy(&p.encoded.wire()).contains("PASS"));
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for line in [
            "{",
            "{}",
            "{5",
            "a1 {",
            "a1 x {3}",
            "((((",
            "))))",
            "\"",
            "a1 LOGIN",
            "a1 LOGIN \"",
            "[[[",
            "a1 ]]] [",
            "é",
            "a1 é",
            "{0}",
            "a1 LOGIN {0}",
        ] {
            let _ = plan_line(line.as_bytes(), false.into(), tags());
            let _ = plan_line(line.as_bytes(), true.into(), tags());
        }
        let p = plan("a1 LOGIN {0}", false);
        assert_eq!(p.open.unwrap().literal_remaining, 0);
    }
}
