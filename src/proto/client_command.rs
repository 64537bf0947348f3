//! The server's side of commands: parse one complete command a client sent, literals inlined.
//!
//! This module owns [`parse_command`], its result [`ClientCommand`] made of generic [`Value`]s, and
//! [`ClientCommandError`]. It is used by the built-in lab server and by tests that check what the client encoder
//! puts on the wire. It knows no command's grammar: arguments are atoms, quoted strings, literals, parenthesised
//! lists and `NIL`, which is enough for every command imapref sends or the lab answers.
//!
//! Atoms are read generously, the way real servers read them: `/`, `?`, `*`, `%`, `.`, `:` and `]` are atom
//! characters, and a `[` opens a section that runs to its `]` with spaces and parentheses inside, so that
//! `BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>` is one atom.

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom (or any other unquoted word: sequence sets, `BODY[...]` sections, flags), as sent.
    Atom(String),
    /// A quoted string, with `\"` and `\\` unescaped.
    Quoted(Vec<u8>),
    /// The bytes of a literal (`{n}` or `{n+}`).
    Literal(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Value>),
    /// The atom `NIL`, in any case.
    Nil,
}

impl Value {
    /// The bytes of a string value (atom, quoted or literal); `None` for a list or `NIL`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(a) => Some(a.as_bytes()),
            Value::Quoted(b) | Value::Literal(b) => Some(b),
            Value::List(_) | Value::Nil => None,
        }
    }

    /// The string value as text, invalid UTF-8 replaced by U+FFFD; `None` for a list or `NIL`.
    pub fn as_str_lossy(&self) -> Option<String> {
        self.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A command as a client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCommand {
    /// The tag, as sent (`?` is fine).
    pub tag: String,
    /// The command name, upper-cased. For `UID FETCH` this is `UID` and the first argument is `Atom("FETCH")`.
    pub name: String,
    /// The arguments in order.
    pub args: Vec<Value>,
}

/// Why a command cannot be parsed. The messages are meant for a `BAD` reply and for a transcript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCommandError {
    /// Nothing but a line break (or nothing at all).
    #[error("empty command line")]
    Empty,
    /// The line starts with a space: no tag.
    #[error("missing tag")]
    MissingTag,
    /// The tag has characters a tag cannot have.
    #[error("`{0}` is not a valid tag (a tag is made of atom characters other than `+`)")]
    BadTag(String),
    /// A tag but no command name.
    #[error("missing command")]
    MissingCommand,
    /// The command name has characters an atom cannot have.
    #[error("`{0}` is not a valid command name")]
    BadCommand(String),
    /// A quoted string with no closing `"`.
    #[error("unterminated quoted string")]
    UnterminatedQuoted,
    /// A quoted string with CR, LF or NUL inside.
    #[error("a quoted string cannot contain CR, LF or NUL; send it as a literal")]
    ForbiddenInQuoted,
    /// `{...}` that is not `{n}` or `{n+}`, or not followed by a line break.
    #[error("`{0}` is not a literal announcement (`{{n}}` or `{{n+}}` at the end of a line)")]
    BadLiteral(String),
    /// Fewer bytes follow a literal announcement than it announced.
    #[error("literal announces {announced} bytes but {available} follow")]
    LiteralTooShort {
        /// The `n` of `{n}`.
        announced: usize,
        /// The bytes that actually follow.
        available: usize,
    },
    /// A `(` with no matching `)`.
    #[error("unterminated parenthesised list")]
    UnterminatedList,
    /// Lists nested deeper than any real command needs.
    #[error("parenthesised lists nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// A `)` with no `(`.
    #[error("unexpected `)`")]
    UnexpectedCloseParen,
    /// An atom with 8-bit bytes, or a byte that may not appear where it does.
    #[error("unexpected byte 0x{byte:02X} at offset {offset}")]
    UnexpectedByte {
        /// The byte.
        byte: u8,
        /// Where it is, counting from 0 at the start of the command.
        offset: usize,
    },
    /// Something follows the end of the command line.
    #[error("text after the end of the command line")]
    TrailingData,
}

/// Parses one complete command.
///
/// `bytes` holds the line(s) with literals inlined exactly as they came on the wire (`{n}\r\n` or `{n+}\r\n`
/// followed by `n` bytes); the final CRLF or LF is optional.
pub fn parse_command(bytes: &[u8]) -> Result<ClientCommand, ClientCommandError> {
    let mut p = Parser { bytes, pos: 0 };
    if p.at_end_of_line() {
        return Err(ClientCommandError::Empty);
    }

    let tag_bytes = p.take_while(|b| !matches!(b, b' ' | b'\r' | b'\n'));
    if tag_bytes.is_empty() {
        return Err(ClientCommandError::MissingTag);
    }
    let tag = String::from_utf8_lossy(tag_bytes).into_owned();
    if !tag_bytes.iter().all(|&b| is_tag_byte(b)) {
        return Err(ClientCommandError::BadTag(tag));
    }

    p.skip_spaces();
    let name_bytes = p.take_while(|b| !matches!(b, b' ' | b'\r' | b'\n'));
    if name_bytes.is_empty() {
        return Err(ClientCommandError::MissingCommand);
    }
    let name = String::from_utf8_lossy(name_bytes).into_owned();
    if !name_bytes.iter().all(|&b| is_atom_byte(b)) {
        return Err(ClientCommandError::BadCommand(name));
    }
    let name = name.to_ascii_uppercase();

    let mut args = Vec::new();
    loop {
        let had_space = p.skip_spaces();
        if p.at_end_of_line() {
            p.finish_line()?;
            break;
        }
        if !had_space {
            return Err(p.unexpected());
        }
        args.push(p.value(0)?);
    }
    Ok(ClientCommand { tag, name, args })
}

/// The tag of a command line, when it has one that looks valid: for a `BAD` reply to a line that did not parse.
pub fn guess_tag(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .iter()
        .position(|b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    let tag = bytes.get(..end)?;
    if tag.is_empty() || !tag.iter().all(|&b| is_tag_byte(b)) {
        return None;
    }
    Some(String::from_utf8_lossy(tag).into_owned())
}

/// RFC 3501 `ATOM-CHAR`, plus `]`, `%` and `*`, which servers accept in command atoms (sequence sets, sections,
/// list patterns).
fn is_atom_byte(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\')
}

/// RFC 3501 tag: `ASTRING-CHAR` except `+`.
fn is_tag_byte(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b'%' | b'*' | b'+')
}

/// Nesting limit for lists, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    /// Skips spaces; true when there was at least one.
    fn skip_spaces(&mut self) -> bool {
        !self.take_while(|b| b == b' ').is_empty()
    }

    /// At the end of input, or at the CRLF / LF that ends the line.
    fn at_end_of_line(&self) -> bool {
        matches!(self.rest(), [] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r'])
    }

    /// Consumes the final line break and checks nothing follows.
    fn finish_line(&mut self) -> Result<(), ClientCommandError> {
        let rest = self.rest();
        let after = match rest {
            [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] | [b'\r', tail @ ..] => tail,
            other => other,
        };
        if after.is_empty() {
            self.pos = self.bytes.len();
            Ok(())
        } else {
            Err(ClientCommandError::TrailingData)
        }
    }

    fn unexpected(&self) -> ClientCommandError {
        match self.peek() {
            Some(b')') => ClientCommandError::UnexpectedCloseParen,
            Some(byte) => ClientCommandError::UnexpectedByte {
                byte,
                offset: self.pos,
            },
            None => ClientCommandError::TrailingData,
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ClientCommandError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'(') => self.list(depth),
            Some(b')') => Err(ClientCommandError::UnexpectedCloseParen),
            _ => self.atom(),
        }
    }

    fn quoted(&mut self) -> Result<Value, ClientCommandError> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ClientCommandError::UnterminatedQuoted),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Value::Quoted(out));
                }
                Some(b'\r' | b'\n') if self.at_end_of_line() && self.ends_input_after_break() => {
                    return Err(ClientCommandError::UnterminatedQuoted)
                }
                Some(b'\r' | b'\n' | 0) => return Err(ClientCommandError::ForbiddenInQuoted),
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(ClientCommandError::UnterminatedQuoted),
                        Some(b'\r' | b'\n' | 0) => {
                            return Err(ClientCommandError::ForbiddenInQuoted)
                        }
                        // RFC 3501 only defines \" and \\; any other escaped byte is kept as that byte.
                        Some(b) => {
                            out.push(b);
                            self.pos += 1;
                        }
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// True when the line break at the current position is the last thing in the input.
    fn ends_input_after_break(&self) -> bool {
        matches!(self.rest(), [b'\r', b'\n'] | [b'\n'] | [b'\r'])
    }

    fn literal(&mut self) -> Result<Value, ClientCommandError> {
        let start = self.pos;
        let close = self
            .rest()
            .iter()
            .position(|&b| b == b'}')
            .filter(|&i| i <= 24);
        let Some(close) = close else {
            let shown = self.rest().iter().take(24).copied().collect::<Vec<u8>>();
            return Err(ClientCommandError::BadLiteral(
                String::from_utf8_lossy(&shown).into_owned(),
            ));
        };
        let marker = self.bytes.get(start..start + close + 1).unwrap_or_default();
        let bad = || ClientCommandError::BadLiteral(String::from_utf8_lossy(marker).into_owned());
        let inner = marker
            .get(1..marker.len().saturating_sub(1))
            .unwrap_or_default();
        let digits = inner.strip_suffix(b"+").unwrap_or(inner);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let announced: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)?;
        self.pos = start + close + 1;
        match self.rest() {
            [b'\r', b'\n', ..] => self.pos += 2,
            [b'\n', ..] => self.pos += 1,
            _ => return Err(bad()),
        }
        let available = self.rest().len();
        let data = self
            .rest()
            .get(..announced)
            .ok_or(ClientCommandError::LiteralTooShort {
                announced,
                available,
            })?;
        self.pos += announced;
        Ok(Value::Literal(data.to_vec()))
    }

    fn list(&mut self, depth: usize) -> Result<Value, ClientCommandError> {
        if depth >= MAX_DEPTH {
            return Err(ClientCommandError::TooDeep);
        }
        self.pos += 1; // '('
        let mut items = Vec::new();
        loop {
            let had_space = self.skip_spaces();
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                None | Some(b'\r' | b'\n') => return Err(ClientCommandError::UnterminatedList),
                Some(_) if !items.is_empty() && !had_space => return Err(self.unexpected()),
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    /// True when a `]` follows the current position before the end of the line.
    fn closes_on_this_line(&self) -> bool {
        self.rest()
            .iter()
            .take_while(|&&b| !matches!(b, b'\r' | b'\n'))
            .any(|&b| b == b']')
    }

    /// An atom: up to a space, a parenthesis or a line break; a `[` section runs to its `]` whatever it holds.
    fn atom(&mut self) -> Result<Value, ClientCommandError> {
        let start = self.pos;
        let mut brackets = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'\r' | b'\n' => break,
                // A '[' opens a section only when a ']' closes it on this line.
                b'[' if brackets > 0 || self.closes_on_this_line() => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b' ' | b'(' | b')' if brackets == 0 => break,
                b' ' | b'(' | b')' => {}
                _ if !(0x20..0x7f).contains(&b) => {
                    return Err(ClientCommandError::UnexpectedByte {
                        byte: b,
                        offset: self.pos,
                    })
                }
                _ => {}
            }
            self.pos += 1;
        }
        let bytes = self.bytes.get(start..self.pos).unwrap_or_default();
        if bytes.is_empty() {
            return Err(self.unexpected());
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        if text.eq_ignore_ascii_case("NIL") {
            Ok(Value::Nil)
        } else {
            Ok(Value::Atom(text))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn atom(s: &str) -> Value {
        Value::Atom(s.to_owned())
    }

    fn parse(s: &str) -> ClientCommand {
        parse_command(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn kb_login_with_question_mark_tag() {
        let c = parse("? login DOMname/UserN/AliasN PASSword");
        assert_eq!(c.tag, "?");
        assert_eq!(c.name, "LOGIN");
        assert_eq!(c.args, vec![atom("DOMname/UserN/AliasN"), atom("PASSword")]);
        assert_eq!(parse("? login DOMname/UserN/AliasN PASSword\r\n"), c);
        assert_eq!(parse("? login DOMname/UserN/AliasN PASSword\n"), c);
    }

    #[test]
    fn kb_select() {
        let c = parse("? Select Inbox\r\n");
        assert_eq!((c.tag.as_str(), c.name.as_str()), ("?", "SELECT"));
        assert_eq!(c.args, vec![atom("Inbox")]);
    }

    #[test]
    fn literals_synchronizing_and_non_synchronizing() {
        let c = parse("a LOGIN {5}\r\nhello {3+}\r\npwd\r\n");
        assert_eq!(
            c.args,
            vec![
                Value::Literal(b"hello".to_vec()),
                Value::Literal(b"pwd".to_vec())
            ]
        );
        assert_eq!(parse("a LOGIN {5}\r\nhello {3+}\r\npwd"), c);
        // A literal may hold CR LF and 8-bit bytes; bare LF after the announcement is accepted.
        let c = parse_command(b"a LOGIN {4}\n\r\n\xC3\xBC {0}\r\n\r\n").unwrap();
        assert_eq!(
            c.args,
            vec![
                Value::Literal(b"\r\n\xC3\xBC".to_vec()),
                Value::Literal(Vec::new())
            ]
        );
    }

    #[test]
    fn fetch_with_sections_and_sequence_sets() {
        let c = parse("a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        assert_eq!(c.name, "FETCH");
        assert_eq!(
            c.args,
            vec![
                atom("1:*"),
                Value::List(vec![
                    atom("FLAGS"),
                    atom("BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
                ])
            ]
        );
        // A '[' with no ']' on the line is an ordinary atom character.
        let c = parse("a LOGIN [ x");
        assert_eq!(c.args, vec![atom("["), atom("x")]);
        let c = parse("a fetch 1,3:5 BODY[]<0.100>");
        assert_eq!(c.args, vec![atom("1,3:5"), atom("BODY[]<0.100>")]);
    }

    #[test]
    fn uid_fetch() {
        let c = parse("a5 uid fetch 1:* FLAGS");
        assert_eq!(c.name, "UID");
        assert_eq!(c.args, vec![atom("fetch"), atom("1:*"), atom("FLAGS")]);
    }

    #[test]
    fn status_with_quoted_mailbox_and_list() {
        let c = parse("a STATUS \"Public Folders/x\" (MESSAGES UNSEEN)");
        assert_eq!(
            c.args,
            vec![
                Value::Quoted(b"Public Folders/x".to_vec()),
                Value::List(vec![atom("MESSAGES"), atom("UNSEEN")])
            ]
        );
    }

    #[test]
    fn quoted_escapes_and_nil() {
        let c = parse(r#"a LOGIN "pa \"ss\" \\ x" "" nil NIL"#);
        assert_eq!(
            c.args,
            vec![
                Value::Quoted(br#"pa "ss" \ x"#.to_vec()),
                Value::Quoted(Vec::new()),
                Value::Nil,
                Value::Nil
            ]
        );
        assert_eq!(c.args[0].as_str_lossy().as_deref(), Some(r#"pa "ss" \ x"#));
        assert_eq!(c.args[2].as_bytes(), None);
    }

    #[test]
    fn nested_lists_and_list_patterns() {
        let c = parse(r#"a LIST "" *"#);
        assert_eq!(c.args, vec![Value::Quoted(Vec::new()), atom("*")]);
        let c = parse("a X (a (b (c)) ()) %");
        assert_eq!(
            c.args,
            vec![
                Value::List(vec![
                    atom("a"),
                    Value::List(vec![atom("b"), Value::List(vec![atom("c")])]),
                    Value::List(vec![])
                ]),
                atom("%")
            ]
        );
    }

    #[test]
    fn no_arguments() {
        let c = parse("a1 CAPABILITY\r\n");
        assert_eq!(c.name, "CAPABILITY");
        assert!(c.args.is_empty());
        assert_eq!(parse("a1 noop").name, "NOOP");
    }

    #[test]
    fn errors() {
        use ClientCommandError as E;
        let err = |s: &str| parse_command(s.as_bytes()).unwrap_err();
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("\r\n"), E::Empty);
        assert_eq!(err(" LOGIN a b"), E::MissingTag);
        assert_eq!(err("a"), E::MissingCommand);
        assert_eq!(err("a \r\n"), E::MissingCommand);
        assert_eq!(err("a+ NOOP"), E::BadTag("a+".into()));
        assert_eq!(err("a(b NOOP"), E::BadTag("a(b".into()));
        assert_eq!(err("a LOG\"IN"), E::BadCommand("LOG\"IN".into()));
        assert_eq!(err("a LOGIN \"user"), E::UnterminatedQuoted);
        assert_eq!(err("a LOGIN \"user\r\n"), E::UnterminatedQuoted);
        assert_eq!(err("a LOGIN \"us\rer\" x"), E::ForbiddenInQuoted);
        assert_eq!(
            err("a LOGIN {5}\r\nabc"),
            E::LiteralTooShort {
                announced: 5,
                available: 3
            }
        );
        assert_eq!(
            err("a LOGIN {99999999999999999999999}\r\nabc"),
            E::BadLiteral("{99999999999999999999999}".into())
        );
        assert_eq!(err("a LOGIN {5} x"), E::BadLiteral("{5}".into()));
        assert_eq!(err("a LOGIN {x}\r\n"), E::BadLiteral("{x}".into()));
        assert_eq!(err("a LOGIN {5"), E::BadLiteral("{5".into()));
        assert_eq!(err("a STATUS x (MESSAGES"), E::UnterminatedList);
        assert_eq!(err("a STATUS x MESSAGES)"), E::UnexpectedCloseParen);
        assert_eq!(err("a NOOP\r\nb NOOP\r\n"), E::TrailingData);
        assert_eq!(
            err("a LOGIN j\u{fc}rgen x"),
            E::UnexpectedByte {
                byte: 0xC3,
                offset: 9
            }
        );
        assert_eq!(
            err("a LOGIN \"x\"y"),
            E::UnexpectedByte {
                byte: b'y',
                offset: 11
            }
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            ClientCommandError::LiteralTooShort {
                announced: 5,
                available: 3
            }
            .to_string(),
            "literal announces 5 bytes but 3 follow"
        );
        assert_eq!(ClientCommandError::MissingTag.to_string(), "missing tag");
        assert_eq!(
            ClientCommandError::BadLiteral("{x}".into()).to_string(),
            "`{x}` is not a literal announcement (`{n}` or `{n+}` at the end of a line)"
        );
    }

    #[test]
    fn guessing_the_tag_of_a_bad_line() {
        assert_eq!(guess_tag(b"a7 LOGIN \"x").as_deref(), Some("a7"));
        assert_eq!(guess_tag(b"?\r\n").as_deref(), Some("?"));
        assert_eq!(guess_tag(b" LOGIN"), None);
        assert_eq!(guess_tag(b"a+ x"), None);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let line = format!("a X {}", "(".repeat(10_000));
        assert_eq!(
            parse_command(line.as_bytes()),
            Err(ClientCommandError::TooDeep)
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&bytes);
            let _ = guess_tag(&bytes);
        }

        #[test]
        fn never_panics_on_command_like_input(s in "[a?] [A-Z]{1,6}( [a-z\"{}()\\[\\]0-9+\\\\ \r\n]{0,20}){0,4}") {
            let _ = parse_command(s.as_bytes());
        }
    }
}
