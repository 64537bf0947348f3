//! Commands the client sends: tags, argument quoting and literals, AUTHENTICATE PLAIN, and redaction.
//!
//! This module owns the wire form of a command ([`Command::encode`] gives an [`Encoded`] split where the client must
//! wait for a `+` continuation), tag generation and validation ([`TagGenerator`], [`validate_tag`]), the SASL PLAIN
//! exchange ([`authenticate_plain`]), and the helpers the shell needs for raw lines a user types
//! ([`redact_raw_line`], [`line_has_tag`], [`COMMAND_NAMES`]).
//!
//! Every encoded piece has two forms: `wire`, the exact bytes to send, and `shown`, the same with every secret
//! replaced by `***`, for transcripts and screens. CR, LF and NUL are refused everywhere: a login name or password
//! holding one is always a mistake, and a line break in a command would let it smuggle a second command.

use base64::Engine as _;

use super::mutf7;
use crate::secret::{Secret, REDACTED};

/// Strings at least this long go as literals rather than quoted strings.
const QUOTED_MAX: usize = 1024;

/// Why a command cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// CR, LF or NUL in a tag, command name or argument.
    #[error("CR, LF and NUL cannot be sent in {what} (found byte 0x{byte:02X})")]
    ForbiddenByte {
        /// Which part of the command held it, e.g. "the password".
        what: String,
        /// The byte found.
        byte: u8,
    },
    /// A tag with characters a tag cannot have.
    #[error("`{0}` cannot be used as a tag: a tag is made of letters, digits and punctuation other than ( ) {{ \" \\ % * + and space")]
    BadTag(String),
    /// Something that has to be non-empty is empty.
    #[error("the {0} is empty")]
    Empty(String),
    /// A value sent as an atom has characters an atom cannot have.
    #[error("`{0}` cannot be sent as an atom (it has a space, ( ) {{ \" \\ or a non-ASCII character); send it as a string")]
    BadAtom(String),
}

/// Hands out tags `a1`, `a2`, ... (with the chosen prefix).
#[derive(Debug, Clone)]
pub struct TagGenerator {
    prefix: String,
    counter: u64,
}

impl TagGenerator {
    /// A generator whose tags are `prefix` followed by 1, 2, 3, ... The prefix is not checked here; a bad one is
    /// caught when a command is encoded ([`validate_tag`]).
    pub fn new(prefix: &str) -> Self {
        TagGenerator {
            prefix: prefix.to_owned(),
            counter: 0,
        }
    }

    /// The next tag.
    pub fn next_tag(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!("{}{}", self.prefix, self.counter)
    }
}

impl Default for TagGenerator {
    /// Prefix `a`, the one most IMAP examples use: `a1`, `a2`, ...
    fn default() -> Self {
        TagGenerator::new("a")
    }
}

/// Checks a tag: non-empty, made of RFC 3501 `ASTRING-CHAR`s other than `+`. `?` (the KB's tag) is valid.
pub fn validate_tag(tag: &str) -> Result<(), CommandError> {
    check_forbidden(tag, "the tag")?;
    if tag.is_empty() {
        return Err(CommandError::Empty("tag".into()));
    }
    if !tag.bytes().all(is_tag_char) {
        return Err(CommandError::BadTag(tag.to_owned()));
    }
    Ok(())
}

/// RFC 3501 `ATOM-CHAR`: any CHAR except `( ) { SP CTL % * " \ ]`.
fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// RFC 3501 `ASTRING-CHAR`: `ATOM-CHAR` or `]`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A tag character: `ASTRING-CHAR` except `+`.
fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// What [`Arg::Atom`] accepts: `ASTRING-CHAR` plus `%`, `*` and `[`...`]` parts, so that list patterns, sequence
/// sets (`1:*`) and sections (`BODY[TEXT]`) can be sent as they are. No space, `( ) { " \`, control or 8-bit byte.
fn is_loose_atom_char(b: u8) -> bool {
    is_astring_char(b) || matches!(b, b'%' | b'*')
}

/// Refuses CR, LF and NUL.
fn check_forbidden(s: &str, what: &str) -> Result<(), CommandError> {
    match s.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(byte) => Err(CommandError::ForbiddenByte {
            what: what.to_owned(),
            byte,
        }),
        None => Ok(()),
    }
}

/// One argument of a command.
#[derive(Clone, Debug)]
pub enum Arg {
    /// Sent as is after validation: a command keyword, a flag, `1:*`, `BODY[TEXT]`. A parenthesised list such as
    /// `(MESSAGES UNSEEN)` is not an atom: use [`Arg::Raw`].
    Atom(String),
    /// A string: an atom when every character is an `ASTRING-CHAR` (`/` is one, so `DOMname/UserN/AliasN` goes
    /// unquoted, as in the KB; `[` is the exception, it is quoted), else a quoted string when it is 7-bit and shorter than 1024 bytes, else a literal.
    /// The empty string and `NIL` are always quoted.
    Astring(String),
    /// A mailbox name in UTF-8: modified UTF-7 encoded, then sent as [`Arg::Astring`]. `INBOX` in any case is sent
    /// as `INBOX`.
    Mailbox(String),
    /// A password: sent like [`Arg::Astring`], shown as `***`.
    Secret(Secret),
    /// Sent verbatim: parenthesised lists, sequence sets, anything already in wire form. Still refused when it
    /// holds CR, LF or NUL.
    Raw(String),
}

/// A command to encode.
#[derive(Clone, Debug)]
pub struct Command {
    /// The tag.
    pub tag: String,
    /// The command name, e.g. `LOGIN`, or `UID FETCH` (words separated by single spaces).
    pub name: String,
    /// The arguments in order.
    pub args: Vec<Arg>,
}

/// The wire form, split where the client must wait for a `+` continuation (synchronizing literals and SASL steps).
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The pieces, in sending order.
    pub pieces: Vec<Piece>,
}

impl Encoded {
    /// Every piece's wire bytes, joined: what the server receives in the end.
    pub fn wire(&self) -> Vec<u8> {
        self.pieces
            .iter()
            .flat_map(|p| p.wire.iter().copied())
            .collect()
    }

    /// Every piece's shown bytes, joined: the whole command with secrets as `***`.
    pub fn shown(&self) -> Vec<u8> {
        self.pieces
            .iter()
            .flat_map(|p| p.shown.iter().copied())
            .collect()
    }
}

/// One stretch of bytes to send in one go.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The exact bytes to send (ends in CRLF).
    pub wire: Vec<u8>,
    /// The same with every secret replaced by `***`: for transcripts and screens.
    pub shown: Vec<u8>,
    /// After sending this piece, wait for `+` before sending the next.
    pub then_wait_continuation: bool,
}

/// How the server lets a client send literals (RFC 7888).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiteralMode {
    /// No LITERAL+ or LITERAL-: every literal is `{n}` and waits for the server's `+`.
    #[default]
    Synchronizing,
    /// LITERAL+: every literal may go as `{n+}`, without waiting.
    Plus,
    /// LITERAL-: only literals of at most [`LiteralMode::MINUS_MAX`] bytes may go as `{n+}`; larger ones wait.
    Minus,
}

impl LiteralMode {
    /// The largest non-synchronizing literal LITERAL- allows (RFC 7888 §4).
    pub const MINUS_MAX: u64 = 4096;

    /// The mode the capabilities allow (LITERAL+ wins over LITERAL-).
    pub fn from_capabilities<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> Self {
        let mut mode = LiteralMode::Synchronizing;
        for c in capabilities {
            if c.eq_ignore_ascii_case("LITERAL+") {
                return LiteralMode::Plus;
            }
            if c.eq_ignore_ascii_case("LITERAL-") {
                mode = LiteralMode::Minus;
            }
        }
        mode
    }

    /// True when a literal of `len` bytes may be sent as `{len+}`.
    pub fn non_sync(self, len: u64) -> bool {
        match self {
            LiteralMode::Synchronizing => false,
            LiteralMode::Plus => true,
            LiteralMode::Minus => len <= Self::MINUS_MAX,
        }
    }
}

impl From<bool> for LiteralMode {
    /// `true` is LITERAL+, `false` synchronizing.
    fn from(literal_plus: bool) -> Self {
        if literal_plus {
            LiteralMode::Plus
        } else {
            LiteralMode::Synchronizing
        }
    }
}

impl Piece {
    /// True when the piece carries a secret's bytes (its shown form masks something other than a literal's length).
    pub fn carries_secret(&self) -> bool {
        self.wire != self.shown
            && self
                .shown
                .windows(REDACTED.len())
                .enumerate()
                .any(|(i, w)| w == REDACTED.as_bytes() && (i == 0 || self.shown[i - 1] != b'{'))
    }
}

/// Builds pieces, keeping the wire and shown forms side by side.
#[derive(Default)]
struct Builder {
    pieces: Vec<Piece>,
    wire: Vec<u8>,
    shown: Vec<u8>,
}

impl Builder {
    fn push(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
        self.shown.extend_from_slice(bytes);
    }

    fn push_secret(&mut self, wire: &[u8]) {
        self.wire.extend_from_slice(wire);
        self.shown.extend_from_slice(REDACTED.as_bytes());
    }

    /// Ends the current piece (which must end in CRLF).
    fn cut(&mut self, wait: bool) {
        self.pieces.push(Piece {
            wire: std::mem::take(&mut self.wire),
            shown: std::mem::take(&mut self.shown),
            then_wait_continuation: wait,
        });
    }

    fn finish(mut self) -> Encoded {
        self.push(b"\r\n");
        self.cut(false);
        Encoded {
            pieces: self.pieces,
        }
    }

    /// Writes a string argument as an atom, a quoted string or a literal.
    fn astring(&mut self, value: &str, secret: bool, mode: LiteralMode) {
        let bytes = value.as_bytes();
        // '[' is an atom character, but servers read `[` ... `]` in an atom as a section (`BODY[TEXT]`), spaces
        // and all; a quoted string cannot be misread.
        let as_atom = !bytes.is_empty()
            && bytes.iter().all(|&b| is_astring_char(b) && b != b'[')
            && !value.eq_ignore_ascii_case("NIL");
        if as_atom {
            if secret {
                self.push_secret(bytes);
            } else {
                self.push(bytes);
            }
        } else if value.is_ascii() && bytes.len() < QUOTED_MAX {
            let quoted = quote(bytes);
            if secret {
                self.push_secret(&quoted);
            } else {
                self.push(&quoted);
            }
        } else {
            let literal_plus = mode.non_sync(bytes.len() as u64);
            let marker = if literal_plus {
                format!("{{{}+}}\r\n", bytes.len())
            } else {
                format!("{{{}}}\r\n", bytes.len())
            };
            if secret {
                // The length of a password is a secret too.
                self.wire.extend_from_slice(marker.as_bytes());
                self.shown.extend_from_slice(if literal_plus {
                    b"{***+}\r\n"
                } else {
                    b"{***}\r\n"
                });
            } else {
                self.push(marker.as_bytes());
            }
            if !literal_plus {
                self.cut(true);
            }
            if secret {
                self.push_secret(bytes);
            } else {
                self.push(bytes);
            }
        }
    }
}

impl Command {
    /// A command with no arguments yet.
    pub fn new(tag: impl Into<String>, name: &str) -> Self {
        Command {
            tag: tag.into(),
            name: name.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: Arg) -> Self {
        self.args.push(a);
        self
    }

    /// Encodes the command. With `literal_plus` (the server announced LITERAL+), literals are non-synchronizing
    /// (`{n+}`) and the command is one piece; without it, each literal ends a piece that waits for the server's `+`.
    pub fn encode(&self, literal_plus: bool) -> Result<Encoded, CommandError> {
        self.encode_with(LiteralMode::from(literal_plus))
    }

    /// Encodes the command for a server whose literal capabilities are `mode` (under LITERAL-, only literals of at
    /// most 4096 bytes go as `{n+}`).
    pub fn encode_with(&self, mode: LiteralMode) -> Result<Encoded, CommandError> {
        let literal_plus = mode;
        validate_tag(&self.tag)?;
        check_forbidden(&self.name, "the command name")?;
        if self.name.is_empty() {
            return Err(CommandError::Empty("command name".into()));
        }
        let name_ok = self
            .name
            .split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(is_atom_char));
        if !name_ok {
            return Err(CommandError::BadAtom(self.name.clone()));
        }

        let mut b = Builder::default();
        b.push(self.tag.as_bytes());
        b.push(b" ");
        b.push(self.name.as_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            b.push(b" ");
            let n = i + 1;
            match arg {
                Arg::Atom(a) => {
                    check_forbidden(a, &format!("argument {n}"))?;
                    if a.is_empty() {
                        return Err(CommandError::Empty(format!("atom in argument {n}")));
                    }
                    if !a.bytes().all(is_loose_atom_char) {
                        return Err(CommandError::BadAtom(a.clone()));
                    }
                    b.push(a.as_bytes());
                }
                Arg::Astring(s) => {
                    check_forbidden(s, &format!("argument {n}"))?;
                    b.astring(s, false, literal_plus);
                }
                Arg::Mailbox(m) => {
                    check_forbidden(m, "a mailbox name")?;
                    if m.eq_ignore_ascii_case("INBOX") {
                        b.push(b"INBOX");
                    } else {
                        b.astring(&mutf7::encode(m), false, literal_plus);
                    }
                }
                Arg::Secret(s) => {
                    check_forbidden(s.expose(), "the password")?;
                    b.astring(s.expose(), true, literal_plus);
                }
                Arg::Raw(r) => {
                    check_forbidden(r, &format!("argument {n}"))?;
                    b.push(r.as_bytes());
                }
            }
        }
        Ok(b.finish())
    }
}

/// An IMAP quoted string: `"` around the bytes, with `"` and `\` escaped. The caller checks that the bytes may be
/// quoted (7-bit, no CR, LF or NUL); the server side (the lab) uses it too.
pub fn quote(bytes: &[u8]) -> Vec<u8> {
    let mut quoted = Vec::with_capacity(bytes.len() + 2);
    quoted.push(b'"');
    for &b in bytes {
        if matches!(b, b'"' | b'\\') {
            quoted.push(b'\\');
        }
        quoted.push(b);
    }
    quoted.push(b'"');
    quoted
}

/// `AUTHENTICATE PLAIN` (RFC 4616) with `authzid NUL user NUL password`, base64-encoded.
///
/// With `sasl_ir` (the server announced SASL-IR) the response goes on the command line, one piece. Without it,
/// piece 1 is `tag AUTHENTICATE PLAIN` (then wait for `+`) and piece 2 is the base64 line. The shown form has `***`
/// for the base64, which contains the password.
pub fn authenticate_plain(
    tag: &str,
    authzid: &str,
    user: &str,
    password: &Secret,
    sasl_ir: bool,
) -> Result<Encoded, CommandError> {
    validate_tag(tag)?;
    check_forbidden(authzid, "the authorization identity")?;
    check_forbidden(user, "the user name")?;
    check_forbidden(password.expose(), "the password")?;
    let mut message = Vec::with_capacity(authzid.len() + user.len() + password.expose().len() + 2);
    message.extend_from_slice(authzid.as_bytes());
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.expose().as_bytes());
    let blob = base64::engine::general_purpose::STANDARD.encode(&message);

    let mut b = Builder::default();
    b.push(tag.as_bytes());
    b.push(b" AUTHENTICATE PLAIN");
    if sasl_ir {
        b.push(b" ");
    } else {
        b.push(b"\r\n");
        b.cut(true);
    }
    b.push_secret(blob.as_bytes());
    Ok(b.finish())
}

/// IMAP command names, upper case, for tab completion and for [`line_has_tag`].
pub const COMMAND_NAMES: &[&str] = &[
    "APPEND",
    "AUTHENTICATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "DELETEACL",
    "ENABLE",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GETACL",
    "GETMETADATA",
    "GETQUOTA",
    "GETQUOTAROOT",
    "ID",
    "IDLE",
    "LIST",
    "LISTRIGHTS",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "MYRIGHTS",
    "NAMESPACE",
    "NOOP",
    "RENAME",
    "RLIST",
    "RLSUB",
    "SEARCH",
    "SELECT",
    "SETACL",
    "SETMETADATA",
    "SETQUOTA",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UID",
    "UNSELECT",
    "UNSUBSCRIBE",
    "XLIST",
];

fn is_command_name(word: &str) -> bool {
    COMMAND_NAMES.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// Heuristic for the shell: true when the line's first word is a valid tag and its second a known command name.
///
/// `? login x y` and `a1 select inbox` are tagged; `login foo bar` is not (the shell adds a tag).
pub fn line_has_tag(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    match (words.next(), words.next()) {
        (Some(tag), Some(name)) => validate_tag(tag).is_ok() && is_command_name(name),
        _ => false,
    }
}

/// A word of a raw line: where it starts and ends (byte offsets).
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// Splits off the next argument of a raw line starting at `from`: an atom, a quoted string (with `\` escapes) or a
/// literal marker (with its data when the line carries it after a line break).
fn next_word(line: &str, from: usize) -> Option<Span> {
    let bytes = line.as_bytes();
    let mut start = from;
    while bytes.get(start).is_some_and(|b| matches!(b, b' ' | b'\t')) {
        start += 1;
    }
    let first = *bytes.get(start)?;
    if matches!(first, b'\r' | b'\n') {
        return None;
    }
    let mut end = start + 1;
    match first {
        b'"' => {
            while let Some(&b) = bytes.get(end) {
                end += 1;
                match b {
                    b'\\' => end += 1,
                    b'"' => break,
                    _ => {}
                }
            }
        }
        b'{' => {
            while bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_digit() || *b == b'+')
            {
                end += 1;
            }
            if bytes.get(end) == Some(&b'}') {
                let digits = line.get(start + 1..end).unwrap_or_default();
                let n: Option<usize> = digits.trim_end_matches('+').parse().ok();
                end += 1;
                let after = match bytes.get(end..) {
                    Some([b'\r', b'\n', ..]) => Some(end + 2),
                    Some([b'\n', ..]) => Some(end + 1),
                    _ => None,
                };
                if let (Some(n), Some(data)) = (n, after) {
                    end = data.saturating_add(n);
                }
            }
        }
        _ => {
            while bytes
                .get(end)
                .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                end += 1;
            }
        }
    }
    let end = end.min(bytes.len());
    // Never split a UTF-8 character; widen to the next boundary.
    let end = (end..=bytes.len())
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(bytes.len());
    Some(Span { start, end })
}

/// Replaces everything from `span.start` to the end of the line (keeping a final CRLF or LF) with `***`.
fn redact_from(line: &str, span: Span) -> String {
    let body_end = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .map_or(line.len(), str::len)
        .max(span.start);
    let mut out = String::with_capacity(line.len());
    out.push_str(line.get(..span.start).unwrap_or_default());
    out.push_str(REDACTED);
    if span.end <= body_end {
        out.push_str(line.get(body_end..).unwrap_or_default());
    }
    out
}

/// Where the secret starts in `line` read as `[tag] NAME args`, the command name being the word at `name`.
fn secret_as(line: &str, name: Span) -> Option<Span> {
    let word = line.get(name.start..name.end)?;
    // LOGIN user PASSWORD, AUTHENTICATE mechanism INITIAL-RESPONSE: the secret is the second argument.
    if !word.eq_ignore_ascii_case("LOGIN") && !word.eq_ignore_ascii_case("AUTHENTICATE") {
        return None;
    }
    let first_arg = next_word(line, name.end)?;
    next_word(line, first_arg.end)
}

/// Tries to redact `line` read as `[tag] NAME args`, the command name being the word at `name`.
fn redact_as(line: &str, name: Span) -> Option<String> {
    Some(redact_from(line, secret_as(line, name)?))
}

/// The byte offset where the secret of a raw `LOGIN` or `AUTHENTICATE` command starts (the password, or the initial
/// response), read the way [`redact_raw_line`] reads it; `None` when the line has no secret. The command may span
/// several lines joined by CRLF (literals with their data): everything from the offset on is secret.
pub fn secret_start(line: &str) -> Option<usize> {
    let first = next_word(line, 0)?;
    next_word(line, first.end)
        .and_then(|name| secret_as(line, name))
        .or_else(|| secret_as(line, first))
        .map(|span| span.start)
}

/// A raw line a user typed, with the password of `LOGIN` and the initial response of `AUTHENTICATE` replaced by
/// `***`; other lines come back unchanged. For history and transcripts.
///
/// Works with or without a tag (`? login DOMname/UserN/AliasN PASSword`, `login foo bar`), with atoms, quoted
/// strings and literal markers, in any case. Everything from the password to the end of the line is replaced, so
/// an unquoted password with a space in it does not leak its second half.
pub fn redact_raw_line(line: &str) -> String {
    let Some(first) = next_word(line, 0) else {
        return line.to_owned();
    };
    let tagged = next_word(line, first.end).and_then(|name| redact_as(line, name));
    tagged
        .or_else(|| redact_as(line, first))
        .unwrap_or_else(|| line.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::proto::client_command::{parse_command, Value};
    use proptest::prelude::*;

    fn one_piece(e: &Encoded) -> (String, String) {
        assert_eq!(e.pieces.len(), 1, "{e:?}");
        let p = &e.pieces[0];
        assert!(!p.then_wait_continuation);
        (
            String::from_utf8(p.wire.clone()).unwrap(),
            String::from_utf8(p.shown.clone()).unwrap(),
        )
    }

    fn login(user: &str, pass: &str) -> Command {
        Command::new("?", "LOGIN")
            .arg(Arg::Astring(user.into()))
            .arg(Arg::Secret(Secret::new(pass)))
    }

    #[test]
    fn tags() {
        let mut g = TagGenerator::default();
        assert_eq!(g.next_tag(), "a1");
        assert_eq!(g.next_tag(), "a2");
        let mut g = TagGenerator::new("imapref");
        assert_eq!(g.next_tag(), "imapref1");
        for good in ["?", "a1", "A001", "x]", "tag.with-dots_"] {
            assert_eq!(validate_tag(good), Ok(()), "{good}");
        }
        for bad in ["a+", "a b", "(", "a*", "a%", "\"", "a\\", "{1}", "é"] {
            assert_eq!(
                validate_tag(bad),
                Err(CommandError::BadTag(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(validate_tag(""), Err(CommandError::Empty("tag".into())));
        assert_eq!(
            validate_tag("a\r\n"),
            Err(CommandError::ForbiddenByte {
                what: "the tag".into(),
                byte: b'\r'
            })
        );
    }

    #[test]
    fn kb_login_goes_unquoted() {
        let e = login("DOMname/UserN/AliasN", "PASSword")
            .encode(false)
            .unwrap();
        let (wire, shown) = one_piece(&e);
        assert_eq!(wire, "? LOGIN DOMname/UserN/AliasN PASSword\r\n");
        assert_eq!(shown, "? LOGIN DOMname/UserN/AliasN ***\r\n");
    }

    #[test]
    fn quoting_rules() {
        let cases = [
            ("user", "user"),
            ("", "\"\""),
            ("NIL", "\"NIL\""),
            ("nil", "\"nil\""),
            ("pa ss", "\"pa ss\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("a%b", "\"a%b\""),
            ("a*", "\"a*\""),
            ("x]", "x]"),
            ("[", "\"[\""),
            ("a[b] c", "\"a[b] c\""),
            ("(x)", "\"(x)\""),
            ("{5}", "\"{5}\""),
            ("tab\there", "\"tab\there\""),
        ];
        for (value, expected) in cases {
            let e = Command::new("a", "X")
                .arg(Arg::Astring(value.into()))
                .encode(false)
                .unwrap();
            assert_eq!(one_piece(&e).0, format!("a X {expected}\r\n"), "{value:?}");
        }
    }

    #[test]
    fn long_and_8bit_strings_go_as_literals() {
        let e = Command::new("a", "LOGIN")
            .arg(Arg::Astring("jürgen".into()))
            .arg(Arg::Secret(Secret::new("pässword")))
            .encode(false)
            .unwrap();
        let wire: Vec<_> = e
            .pieces
            .iter()
            .map(|p| String::from_utf8(p.wire.clone()).unwrap())
            .collect();
        let shown: Vec<_> = e
            .pieces
            .iter()
            .map(|p| String::from_utf8(p.shown.clone()).unwrap())
            .collect();
        let waits: Vec<_> = e.pieces.iter().map(|p| p.then_wait_continuation).collect();
        assert_eq!(wire, ["a LOGIN {7}\r\n", "jürgen {9}\r\n", "pässword\r\n"]);
        assert_eq!(shown, ["a LOGIN {7}\r\n", "jürgen {***}\r\n", "***\r\n"]);
        assert_eq!(waits, [true, true, false]);

        let e = Command::new("a", "LOGIN")
            .arg(Arg::Astring("jürgen".into()))
            .arg(Arg::Secret(Secret::new("pässword")))
            .encode(true)
            .unwrap();
        let (wire, shown) = one_piece(&e);
        assert_eq!(wire, "a LOGIN {7+}\r\njürgen {9+}\r\npässword\r\n");
        assert_eq!(shown, "a LOGIN {7+}\r\njürgen {***+}\r\n***\r\n");

        let long = "x ".repeat(600);
        let e = Command::new("a", "X")
            .arg(Arg::Astring(long.clone()))
            .encode(true)
            .unwrap();
        assert_eq!(one_piece(&e).0, format!("a X {{1200+}}\r\n{long}\r\n"));
        let short = "x ".repeat(511);
        let e = Command::new("a", "X")
            .arg(Arg::Astring(short.clone()))
            .encode(true)
            .unwrap();
        assert_eq!(one_piece(&e).0, format!("a X \"{short}\"\r\n"));
    }

    #[test]
    fn mailboxes() {
        let encode = |m: &str| {
            let e = Command::new("a", "SELECT")
                .arg(Arg::Mailbox(m.into()))
                .encode(false)
                .unwrap();
            one_piece(&e).0
        };
        assert_eq!(encode("inbox"), "a SELECT INBOX\r\n");
        assert_eq!(encode("Inbox"), "a SELECT INBOX\r\n");
        assert_eq!(encode("Entwürfe"), "a SELECT Entw&APw-rfe\r\n");
        assert_eq!(
            encode("Public Folders/NoReplica"),
            "a SELECT \"Public Folders/NoReplica\"\r\n"
        );
        assert_eq!(encode("台北"), "a SELECT &U,BTFw-\r\n");
        assert_eq!(encode("nil"), "a SELECT \"nil\"\r\n");
    }

    #[test]
    fn atoms_and_raw() {
        let e = Command::new("a", "UID FETCH")
            .arg(Arg::Atom("1:*".into()))
            .arg(Arg::Raw(
                "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])".into(),
            ))
            .encode(false)
            .unwrap();
        assert_eq!(
            one_piece(&e).0,
            "a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
        );
        let e = Command::new("a", "STATUS")
            .arg(Arg::Mailbox("Public Folders/x".into()))
            .arg(Arg::Raw("(MESSAGES UNSEEN)".into()))
            .encode(false)
            .unwrap();
        assert_eq!(
            one_piece(&e).0,
            "a STATUS \"Public Folders/x\" (MESSAGES UNSEEN)\r\n"
        );
        let e = Command::new("a", "CAPABILITY").encode(false).unwrap();
        assert_eq!(one_piece(&e).0, "a CAPABILITY\r\n");
        let e = Command::new("a", "FETCH")
            .arg(Arg::Atom("BODY[TEXT]".into()))
            .encode(false)
            .unwrap();
        assert_eq!(one_piece(&e).0, "a FETCH BODY[TEXT]\r\n");

        for bad in ["(MESSAGES UNSEEN)", "a b", "x\"", "ü"] {
            let r = Command::new("a", "X")
                .arg(Arg::Atom(bad.into()))
                .encode(false);
            assert_eq!(r.unwrap_err(), CommandError::BadAtom(bad.into()), "{bad}");
        }
        let r = Command::new("a", "X")
            .arg(Arg::Atom(String::new()))
            .encode(false);
        assert!(matches!(r, Err(CommandError::Empty(_))));
        assert!(matches!(
            Command::new("a", "").encode(false),
            Err(CommandError::Empty(_))
        ));
        assert!(matches!(
            Command::new("a", "LOG IN(").encode(false),
            Err(CommandError::BadAtom(_))
        ));
        assert!(matches!(
            Command::new("a+", "NOOP").encode(false),
            Err(CommandError::BadTag(_))
        ));
    }

    #[test]
    fn cr_lf_nul_are_refused_everywhere() {
        let args = |s: &str| {
            vec![
                Arg::Atom(s.into()),
                Arg::Astring(s.into()),
                Arg::Mailbox(s.into()),
                Arg::Secret(Secret::new(s)),
                Arg::Raw(s.into()),
            ]
        };
        for bad in ["a\rb", "a\nb", "a\0b", "pass\r\na2 DELETE INBOX"] {
            for a in args(bad) {
                let r = Command::new("a", "X").arg(a.clone()).encode(true);
                assert!(
                    matches!(r, Err(CommandError::ForbiddenByte { .. })),
                    "{a:?} {bad:?}"
                );
            }
        }
        assert!(matches!(
            Command::new("a\n", "X").encode(true),
            Err(CommandError::ForbiddenByte { .. })
        ));
        assert!(matches!(
            Command::new("a", "X\r\n").encode(true),
            Err(CommandError::ForbiddenByte { .. })
        ));
        let err = login("user", "Xyzzy\n42").encode(false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CR, LF and NUL cannot be sent in the password (found byte 0x0A)"
        );
        // The password must not appear in the error.
        assert!(!format!("{err:?} {err}").contains("Xyzzy"));
    }

    #[test]
    fn authenticate_plain_with_and_without_sasl_ir() {
        let pass = Secret::new("PASSword");
        // base64("\0DOMname/UserN/AliasN\0PASSword")
        let blob = "AERPTW5hbWUvVXNlck4vQWxpYXNOAFBBU1N3b3Jk";
        let e = authenticate_plain("a", "", "DOMname/UserN/AliasN", &pass, true).unwrap();
        let (wire, shown) = one_piece(&e);
        assert_eq!(wire, format!("a AUTHENTICATE PLAIN {blob}\r\n"));
        assert_eq!(shown, "a AUTHENTICATE PLAIN ***\r\n");

        let e = authenticate_plain("a", "", "DOMname/UserN/AliasN", &pass, false).unwrap();
        assert_eq!(e.pieces.len(), 2);
        assert_eq!(e.pieces[0].wire, b"a AUTHENTICATE PLAIN\r\n");
        assert_eq!(e.pieces[0].shown, b"a AUTHENTICATE PLAIN\r\n");
        assert!(e.pieces[0].then_wait_continuation);
        assert_eq!(e.pieces[1].wire, format!("{blob}\r\n").as_bytes());
        assert_eq!(e.pieces[1].shown, b"***\r\n");
        assert!(!e.pieces[1].then_wait_continuation);

        let decoded = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap();
        assert_eq!(decoded, b"\0DOMname/UserN/AliasN\0PASSword");

        assert!(matches!(
            authenticate_plain("a", "", "us\0er", &pass, true),
            Err(CommandError::ForbiddenByte { .. })
        ));
        assert!(matches!(
            authenticate_plain("a", "", "user", &Secret::new("x\r"), true),
            Err(CommandError::ForbiddenByte { .. })
        ));
        assert!(matches!(
            authenticate_plain("", "", "u", &pass, true),
            Err(CommandError::Empty(_))
        ));
    }

    #[test]
    fn redaction() {
        let cases = [
            (
                "? login DOMname/UserN/AliasN PASSword",
                "? login DOMname/UserN/AliasN ***",
            ),
            (
                "? LOGIN DOMname/UserN/AliasN PASSword\r\n",
                "? LOGIN DOMname/UserN/AliasN ***\r\n",
            ),
            ("a1 LOGIN \"user\" \"pa ss\"", "a1 LOGIN \"user\" ***"),
            (
                "a1 LOGIN \"us er\" \"pa \\\" ss\"",
                "a1 LOGIN \"us er\" ***",
            ),
            ("a1 LOGIN user {8}", "a1 LOGIN user ***"),
            ("a1 LOGIN user {8}\r\nPASSword\r\n", "a1 LOGIN user ***\r\n"),
            (
                "a1 LOGIN {4}\r\nuser {8+}\r\nPASSword",
                "a1 LOGIN {4}\r\nuser ***",
            ),
            ("a1 login user pa ss", "a1 login user ***"),
            ("login foo bar", "login foo ***"),
            ("LOGIN foo bar\n", "LOGIN foo ***\n"),
            (
                "a AUTHENTICATE PLAIN AGZvbwBiYXI=",
                "a AUTHENTICATE PLAIN ***",
            ),
            (
                "a authenticate plain AGZvbwBiYXI=\r\n",
                "a authenticate plain ***\r\n",
            ),
            ("authenticate PLAIN AGZvbwBiYXI=", "authenticate PLAIN ***"),
            ("a AUTHENTICATE PLAIN", "a AUTHENTICATE PLAIN"),
            ("a LOGIN user", "a LOGIN user"),
            ("a1 select inbox", "a1 select inbox"),
            ("? Select Inbox", "? Select Inbox"),
            ("", ""),
            ("   ", "   "),
            ("a1 LOGIN jürgen pässword", "a1 LOGIN jürgen ***"),
        ];
        for (line, expected) in cases {
            assert_eq!(redact_raw_line(line), expected, "{line:?}");
        }
    }

    #[test]
    fn tagged_lines() {
        assert!(!line_has_tag("login foo bar"));
        assert!(line_has_tag("? login x y"));
        assert!(line_has_tag("a1 select inbox"));
        assert!(line_has_tag("a1 UID fetch 1:* FLAGS"));
        assert!(line_has_tag("A001 CAPABILITY"));
        assert!(!line_has_tag("capability"));
        assert!(!line_has_tag("a+ select inbox"));
        assert!(!line_has_tag(""));
        assert!(!line_has_tag("select inbox"));
        assert!(COMMAND_NAMES
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_uppercase())));
        for must in [
            "LOGIN",
            "RLIST",
            "RLSUB",
            "NAMESPACE",
            "GETQUOTAROOT",
            "UNSELECT",
            "STARTTLS",
        ] {
            assert!(COMMAND_NAMES.contains(&must), "{must}");
        }
    }

    #[test]
    fn encoded_lines_parse_back() {
        let e = login("DOMname/UserN/AliasN", "PASSword")
            .encode(false)
            .unwrap();
        let c = parse_command(&e.wire()).unwrap();
        assert_eq!(c.tag, "?");
        assert_eq!(c.name, "LOGIN");
        assert_eq!(
            c.args,
            vec![
                Value::Atom("DOMname/UserN/AliasN".into()),
                Value::Atom("PASSword".into())
            ]
        );
        assert_eq!(e.shown(), b"? LOGIN DOMname/UserN/AliasN ***\r\n");
    }

    fn string_without_line_breaks() -> impl Strategy<Value = String> {
        any::<String>().prop_map(|s| s.replace(['\r', '\n', '\0'], ""))
    }

    proptest! {
        #[test]
        fn astring_round_trips(s in string_without_line_breaks(), literal_plus in any::<bool>()) {
            let e = Command::new("a", "LOGIN").arg(Arg::Astring(s.clone())).arg(Arg::Secret(Secret::new(s.clone())))
                .encode(literal_plus).unwrap();
            let c = parse_command(&e.wire()).unwrap();
            prop_assert_eq!(c.args.len(), 2);
            prop_assert_eq!(c.args[0].as_bytes(), Some(s.as_bytes()));
            prop_assert_eq!(c.args[1].as_bytes(), Some(s.as_bytes()));
            // Every piece but the last waits for a continuation, and each ends in CRLF.
            let last = e.pieces.len() - 1;
            for (i, p) in e.pieces.iter().enumerate() {
                prop_assert_eq!(p.then_wait_continuation, i != last);
                prop_assert!(p.wire.ends_with(b"\r\n"));
                prop_assert!(p.shown.ends_with(b"\r\n"));
            }
            if literal_plus {
                prop_assert_eq!(e.pieces.len(), 1);
            }
        }

        #[test]
        fn astring_round_trips_printable(s in "[ -~]{0,40}") {
            let e = Command::new("a", "X").arg(Arg::Astring(s.clone())).encode(false).unwrap();
            prop_assert_eq!(e.pieces.len(), 1);
            let c = parse_command(&e.wire()).unwrap();
            prop_assert_eq!(c.args[0].as_bytes(), Some(s.as_bytes()));
        }

        #[test]
        fn mailbox_round_trips(s in string_without_line_breaks()) {
            let e = Command::new("a", "SELECT").arg(Arg::Mailbox(s.clone())).encode(true).unwrap();
            let c = parse_command(&e.wire()).unwrap();
            let wire = c.args[0].as_str_lossy().unwrap();
            let back = mutf7::decode(&wire).unwrap();
            if s.eq_ignore_ascii_case("INBOX") {
                prop_assert_eq!(back, "INBOX");
            } else {
                prop_assert_eq!(back, s);
            }
        }

        #[test]
        fn secrets_never_show(s in "[^\r\n\0]{1,40}", literal_plus in any::<bool>()) {
            let pass = format!("Zq{s}");
            let e = login("user", &pass).encode(literal_plus).unwrap();
            let shown = String::from_utf8_lossy(&e.shown()).into_owned();
            prop_assert!(!shown.contains(&pass), "{}", shown);
            let e = authenticate_plain("a", "", "user", &Secret::new(pass.clone()), literal_plus).unwrap();
            let shown = String::from_utf8_lossy(&e.shown()).into_owned();
            prop_assert!(!shown.contains(&pass), "{}", shown);
        }

        #[test]
        fn line_breaks_are_refused(a in "[^\r\n\0]{0,10}", bad in "[\r\n\0]", b in "[^\r\n\0]{0,10}") {
            let s = format!("{a}{bad}{b}");
            for arg in [Arg::Astring(s.clone()), Arg::Mailbox(s.clone()), Arg::Secret(Secret::new(s.clone())), Arg::Raw(s.clone()), Arg::Atom(s.clone())] {
                let r = Command::new("a", "X").arg(arg).encode(true);
                prop_assert!(matches!(r, Err(CommandError::ForbiddenByte { .. })), "{:?} was not refused", s);
            }
        }

        #[test]
        fn redaction_hides_login_passwords(pass in "[A-Za-z0-9!#$&'.,/:;<=>?@^_`|~-]{6,20}", tagged in any::<bool>()) {
            let line = if tagged { format!("? LOGIN user {pass}") } else { format!("login user {pass}") };
            let red = redact_raw_line(&line);
            prop_assert!(!red.contains(&pass), "{}", red);
        }

        #[test]
        fn redaction_never_panics(s in any::<String>()) {
            let _ = redact_raw_line(&s);
            let _ = line_has_tag(&s);
        }
    }
}
