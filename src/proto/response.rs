//! Typed responses. Each [`Response`] keeps the exact bytes it came from; a line that does not parse becomes
//! [`Kind::Unparsed`], carrying the reason, never an error that loses the line.
//!
//! The parser is tolerant of what real servers send: any letter case for status words and codes, no space after `]`
//! (RFC 2193's own example), `NO` with no text, 8-bit text, bare LF, and any atom as a tag (the KB's `?`).

use serde::Serialize;

use super::code::Code;
use super::framing::RawResponse;
use super::mutf7;

/// A status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Success.
    Ok,
    /// Failure of the command; the connection goes on.
    No,
    /// Protocol error in the command.
    Bad,
    /// The server is closing the connection.
    Bye,
    /// Greeting only: already authenticated.
    Preauth,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        match word.to_ascii_uppercase().as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            "BYE" => Some(Status::Bye),
            "PREAUTH" => Some(Status::Preauth),
            _ => None,
        }
    }

    /// The word as IMAP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::Preauth => "PREAUTH",
        }
    }
}

/// LIST or LSUB (what RLIST and RLSUB return too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ListKind {
    /// `* LIST`.
    List,
    /// `* LSUB`.
    Lsub,
}

/// What a response is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// The server's first line: OK, PREAUTH or BYE.
    Greeting {
        /// OK, PREAUTH or BYE.
        status: Status,
        /// Its response code (CAPABILITY, or REFERRAL on a BYE).
        code: Option<Code>,
        /// The human-readable text.
        text: String,
    },
    /// A tagged completion or an untagged OK, NO, BAD or BYE.
    Status {
        /// The tag, or `None` for `*`.
        tag: Option<String>,
        /// The status word.
        status: Status,
        /// The response code, if any.
        code: Option<Code>,
        /// The human-readable text (may be empty).
        text: String,
    },
    /// `* CAPABILITY ...`.
    Capability {
        /// The capabilities as sent.
        capabilities: Vec<String>,
    },
    /// `* LIST` or `* LSUB`.
    List {
        /// LIST or LSUB.
        list: ListKind,
        /// Name attributes such as `\Noselect` or `\Remote`.
        attributes: Vec<String>,
        /// The hierarchy delimiter, `None` for NIL.
        delimiter: Option<String>,
        /// The mailbox name decoded from modified UTF-7 (the wire form when it is not valid mUTF-7).
        mailbox: String,
        /// The mailbox name as sent.
        mailbox_wire: String,
    },
    /// `* FLAGS (...)`.
    Flags {
        /// The flags.
        flags: Vec<String>,
    },
    /// `* n EXISTS`.
    Exists {
        /// The number of messages.
        count: u32,
    },
    /// `* n RECENT`.
    Recent {
        /// The number of recent messages.
        count: u32,
    },
    /// `* n EXPUNGE`.
    Expunge {
        /// The expunged message's sequence number.
        seq: u32,
    },
    /// `* n FETCH (...)`; the data stays raw in [`Response::raw`].
    Fetch {
        /// The message's sequence number.
        seq: u32,
    },
    /// Any other untagged data (NAMESPACE, STATUS, SEARCH, ID, ENABLED, ...), kept raw.
    Data {
        /// The data's name, upper-cased (for `* 3 FOO` it is `FOO`).
        name: String,
    },
    /// A `+` continuation request.
    Continuation {
        /// Its code, if any.
        code: Option<Code>,
        /// Its text (base64 in a SASL exchange).
        text: String,
    },
    /// A line that is not IMAP as imapref understands it.
    Unparsed {
        /// Why it did not parse.
        reason: String,
    },
}

/// A response: its exact bytes and what they mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The bytes as received (see [`RawResponse::bytes`] for streamed literals).
    pub raw: RawResponse,
    /// What the response is.
    pub kind: Kind,
}

impl Response {
    /// Parses a framed response that is not the greeting.
    pub fn parse(raw: RawResponse) -> Response {
        let kind = parse_kind(&raw);
        Response { raw, kind }
    }

    /// Parses the server's first response: an untagged OK, PREAUTH or BYE becomes a [`Kind::Greeting`].
    pub fn parse_greeting(raw: RawResponse) -> Response {
        let mut response = Response::parse(raw);
        if let Kind::Status {
            tag: None,
            status: status @ (Status::Ok | Status::Preauth | Status::Bye),
            code,
            text,
        } = response.kind
        {
            response.kind = Kind::Greeting { status, code, text };
        }
        response
    }

    /// Parses one line given as text (for `explain` and tests); a missing line end is fine.
    pub fn parse_line(line: &[u8]) -> Response {
        Response::parse(raw_from_line(line))
    }

    /// The first line without its line ending, lossily as text.
    pub fn first_line(&self) -> String {
        String::from_utf8_lossy(self.raw.first_line()).into_owned()
    }

    /// The tag of a tagged completion.
    pub fn tag(&self) -> Option<&str> {
        match &self.kind {
            Kind::Status { tag: Some(tag), .. } => Some(tag),
            _ => None,
        }
    }

    /// The status word of a greeting or status response.
    pub fn status(&self) -> Option<Status> {
        match &self.kind {
            Kind::Greeting { status, .. } | Kind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The response code of a greeting, status or continuation.
    pub fn code(&self) -> Option<&Code> {
        match &self.kind {
            Kind::Greeting { code, .. }
            | Kind::Status { code, .. }
            | Kind::Continuation { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// The human-readable text of a greeting, status or continuation.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Greeting { text, .. }
            | Kind::Status { text, .. }
            | Kind::Continuation { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for a `+` continuation request.
    pub fn is_continuation(&self) -> bool {
        matches!(self.kind, Kind::Continuation { .. })
    }
}

/// Wraps one line (with or without its line end) as a [`RawResponse`] without literals.
pub fn raw_from_line(line: &[u8]) -> RawResponse {
    let mut bytes = line.to_vec();
    if !bytes.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    RawResponse {
        bytes,
        literals: Vec::new(),
    }
}

fn unparsed(reason: impl Into<String>) -> Kind {
    Kind::Unparsed {
        reason: reason.into(),
    }
}

fn parse_kind(raw: &RawResponse) -> Kind {
    let line = String::from_utf8_lossy(raw.first_line()).into_owned();
    if line.trim().is_empty() {
        return unparsed("an empty line");
    }
    if let Some(rest) = line.strip_prefix('+') {
        let (code, text) = split_code(rest.strip_prefix(' ').unwrap_or(rest));
        return Kind::Continuation { code, text };
    }
    let (first, rest) = split_word(&line);
    if first == "*" {
        return parse_untagged(rest, raw);
    }
    let tag = first;
    if tag
        .bytes()
        .any(|b| b.is_ascii_control() || matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b'+'))
    {
        return unparsed(format!("`{tag}` is not a valid tag"));
    }
    let (word, text) = split_word(rest);
    match Status::parse(word) {
        Some(status @ (Status::Ok | Status::No | Status::Bad)) => {
            let (code, text) = split_code(text);
            Kind::Status {
                tag: Some(tag.to_string()),
                status,
                code,
                text,
            }
        }
        Some(other) => unparsed(format!(
            "a tagged {} is not allowed; only OK, NO and BAD complete a command",
            other.as_str()
        )),
        None if word.is_empty() => unparsed("a tag with nothing after it"),
        None => unparsed(format!("`{word}` after tag `{tag}` is not OK, NO or BAD")),
    }
}

fn parse_untagged(rest: &str, raw: &RawResponse) -> Kind {
    let (word, after) = split_word(rest);
    if let Some(status) = Status::parse(word) {
        let (code, text) = split_code(after);
        return Kind::Status {
            tag: None,
            status,
            code,
            text,
        };
    }
    let upper = word.to_ascii_uppercase();
    match upper.as_str() {
        "" => unparsed("`*` with nothing after it"),
        "CAPABILITY" => Kind::Capability {
            capabilities: after.split_ascii_whitespace().map(str::to_string).collect(),
        },
        "FLAGS" => Kind::Flags {
            flags: paren_list(after).unwrap_or_default(),
        },
        "LIST" | "LSUB" => {
            let list = if upper == "LIST" {
                ListKind::List
            } else {
                ListKind::Lsub
            };
            parse_list(list, raw).unwrap_or_else(|reason| {
                unparsed(format!("a {upper} response that does not parse: {reason}"))
            })
        }
        _ if word.bytes().all(|b| b.is_ascii_digit()) => {
            let Ok(n) = word.parse::<u32>() else {
                return unparsed(format!("the number {word} is too large"));
            };
            let (name, _) = split_word(after);
            match name.to_ascii_uppercase().as_str() {
                "EXISTS" => Kind::Exists { count: n },
                "RECENT" => Kind::Recent { count: n },
                "EXPUNGE" => Kind::Expunge { seq: n },
                "FETCH" => Kind::Fetch { seq: n },
                "" => unparsed(format!("`* {n}` with nothing after it")),
                other => Kind::Data {
                    name: other.to_string(),
                },
            }
        }
        _ => Kind::Data { name: upper },
    }
}

/// Splits at the first space; the rest has that one space removed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(' ') {
        Some((word, rest)) => (word, rest),
        None => (text, ""),
    }
}

/// `[CODE args] text`, `[CODE args]text` or `text`.
fn split_code(text: &str) -> (Option<Code>, String) {
    if let Some(inner) = text.strip_prefix('[') {
        if let Some(close) = code_end(inner) {
            let code = Code::parse(&inner[..close]);
            let after = &inner[close + 1..];
            return (
                Some(code),
                after.strip_prefix(' ').unwrap_or(after).to_string(),
            );
        }
    }
    (None, text.to_string())
}

/// Where the code that `inner` starts with ends (the index of its `]`). RFC 3501 says a code's argument holds no `]`,
/// but a REFERRAL to an IPv6 host does (`imap://u@[::1]:143/`), so brackets inside the code are matched in pairs.
/// When they do not pair up, the first `]` ends the code, as the RFC reads.
fn code_end(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in inner.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' if depth == 0 => return Some(i),
            b']' => depth -= 1,
            _ => {}
        }
    }
    inner.find(']')
}

fn paren_list(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split_ascii_whitespace().map(str::to_string).collect())
}

/// Parses `(attrs) delim mailbox` from the whole response, literals included.
fn parse_list(list: ListKind, raw: &RawResponse) -> Result<Kind, String> {
    let bytes = &raw.bytes;
    let mut cur = Cursor { bytes, pos: 0 };
    // Skip "* LIST ".
    for _ in 0..2 {
        cur.skip_until(b' ').ok_or("it ends early")?;
        cur.pos += 1;
    }
    if cur.peek() != Some(b'(') {
        return Err("the attributes are not in parentheses".into());
    }
    let close = cur.find(b')').ok_or("the attribute list is not closed")?;
    let attributes = String::from_utf8_lossy(&bytes[cur.pos + 1..close])
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    cur.pos = close + 1;
    cur.expect_space()?;
    let delimiter = cur
        .string(raw)?
        .map(|d| String::from_utf8_lossy(&d).into_owned());
    cur.expect_space()?;
    let wire = cur.string(raw)?.ok_or("the mailbox name is NIL")?;
    let mailbox_wire = String::from_utf8_lossy(&wire).into_owned();
    let mailbox = mutf7::decode(&mailbox_wire).unwrap_or_else(|_| mailbox_wire.clone());
    Ok(Kind::List {
        list,
        attributes,
        delimiter,
        mailbox,
        mailbox_wire,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn find(&self, byte: u8) -> Option<usize> {
        memchr::memchr(byte, self.bytes.get(self.pos..)?).map(|i| self.pos + i)
    }

    fn skip_until(&mut self, byte: u8) -> Option<()> {
        self.pos = self.find(byte)?;
        Some(())
    }

    fn expect_space(&mut self) -> Result<(), String> {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            Ok(())
        } else {
            Err("a space is missing".into())
        }
    }

    /// An atom, quoted string, literal or NIL (`None`).
    fn string(&mut self, raw: &RawResponse) -> Result<Option<Vec<u8>>, String> {
        match self.peek() {
            Some(b'"') => {
                let mut out = Vec::new();
                self.pos += 1;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.pos += 1;
                            return Ok(Some(out));
                        }
                        Some(b'\\') => {
                            out.push(
                                *self
                                    .bytes
                                    .get(self.pos + 1)
                                    .ok_or("the quoted string is not closed")?,
                            );
                            self.pos += 2;
                        }
                        Some(b'\r' | b'\n') | None => {
                            return Err("the quoted string is not closed".into())
                        }
                        Some(b) => {
                            out.push(b);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some(b'{') => {
                let literal = raw
                    .literals
                    .iter()
                    .find(|l| l.start > self.pos)
                    .ok_or("a literal is announced but missing")?;
                let data = literal
                    .data(raw)
                    .ok_or("the literal was too large to hold")?
                    .to_vec();
                self.pos = literal.start + data.len();
                Ok(Some(data))
            }
            Some(_) => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b' ' | b'\r' | b'\n' | b'(' | b')') {
                        break;
                    }
                    self.pos += 1;
                }
                let atom = &self.bytes[start..self.pos];
                if atom.eq_ignore_ascii_case(b"NIL") {
                    Ok(None)
                } else if atom.is_empty() {
                    Err("a name is missing".into())
                } else {
                    Ok(Some(atom.to_vec()))
                }
            }
            None => Err("it ends early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framing::{Frame, Framer};

    fn parse(line: &str) -> Kind {
        Response::parse_line(line.as_bytes()).kind
    }

    #[test]
    fn the_kb_lines() {
        let greeting = Response::parse_greeting(raw_from_line(
            b"* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (reedlm4.com) ready",
        ));
        assert!(matches!(
            greeting.kind,
            Kind::Greeting {
                status: Status::Ok,
                code: None,
                ..
            }
        ));
        let login = Response::parse_line(
            b"? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
        );
        assert_eq!(login.tag(), Some("?"));
        assert_eq!(login.status(), Some(Status::Ok));
        assert_eq!(login.text(), Some("LOGIN completed"));
        let urls = login
            .code()
            .and_then(Code::referral_urls)
            .expect("a referral");
        assert_eq!(
            urls[0].url.as_ref().map(|u| u.host.as_str()),
            Some("reedlm1.reedlm1.com")
        );
        let select =
            Response::parse_line(b"? NO There is no replica for that mailbox on this server.");
        assert_eq!(select.status(), Some(Status::No));
        assert_eq!(select.code(), None);
    }

    #[test]
    fn no_space_after_the_code_and_upper_case_scheme() {
        let r = Response::parse_line(
            b"A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER2/REMOTE]Remote Mailbox",
        );
        assert_eq!(r.text(), Some("Remote Mailbox"));
        let url = r
            .code()
            .and_then(Code::referral_urls)
            .and_then(|u| u[0].url.clone())
            .expect("parsed");
        assert_eq!(url.host, "SERVER2");
        assert_eq!(url.mailbox.as_deref(), Some("REMOTE"));
    }

    #[test]
    fn bye_referral_greeting() {
        let r = Response::parse_greeting(raw_from_line(
            b"* BYE [REFERRAL IMAP://user;AUTH=*@SERVER2/] Server not accepting connections.  Try SERVER2",
        ));
        assert!(matches!(
            r.kind,
            Kind::Greeting {
                status: Status::Bye,
                code: Some(Code::Referral(_)),
                ..
            }
        ));
    }

    #[test]
    fn no_with_no_text_and_lower_case_status() {
        assert!(
            matches!(parse("a1 NO"), Kind::Status { status: Status::No, ref text, .. } if text.is_empty())
        );
        assert!(matches!(
            parse("a1 ok done"),
            Kind::Status {
                status: Status::Ok,
                ..
            }
        ));
    }

    #[test]
    fn untagged_data() {
        assert_eq!(parse("* 23 EXISTS"), Kind::Exists { count: 23 });
        assert_eq!(parse("* 5 RECENT"), Kind::Recent { count: 5 });
        assert_eq!(parse("* 1 FETCH (FLAGS (\\Seen))"), Kind::Fetch { seq: 1 });
        assert_eq!(
            parse("* FLAGS (\\Answered \\Seen)"),
            Kind::Flags {
                flags: vec!["\\Answered".into(), "\\Seen".into()]
            }
        );
        assert_eq!(
            parse("* CAPABILITY IMAP4rev1 LOGIN-REFERRALS"),
            Kind::Capability {
                capabilities: vec!["IMAP4rev1".into(), "LOGIN-REFERRALS".into()]
            }
        );
        assert_eq!(
            parse("* NAMESPACE ((\"\" \"/\")) NIL NIL"),
            Kind::Data {
                name: "NAMESPACE".into()
            }
        );
    }

    #[test]
    fn list_with_quoted_atom_and_literal_names() {
        assert_eq!(
            parse(r#"* LIST (\HasNoChildren) "/" "Public Folders/Entw&APw-rfe""#),
            Kind::List {
                list: ListKind::List,
                attributes: vec!["\\HasNoChildren".into()],
                delimiter: Some("/".into()),
                mailbox: "Public Folders/Entwürfe".into(),
                mailbox_wire: "Public Folders/Entw&APw-rfe".into(),
            }
        );
        assert!(
            matches!(parse("* LSUB () NIL INBOX"), Kind::List { list: ListKind::Lsub, delimiter: None, ref mailbox, .. } if mailbox == "INBOX")
        );
        let mut framer = Framer::default();
        framer.feed(b"* LIST (\\Remote) \"/\" {7}\r\nA \"b\" c\r\n");
        let mut response = None;
        while let Ok(Some(frame)) = framer.next_frame() {
            if let Frame::Response(r) = frame {
                response = Some(Response::parse(r));
            }
        }
        let response = response.expect("framed");
        assert!(matches!(response.kind, Kind::List { ref mailbox, .. } if mailbox == "A \"b\" c"));
    }

    #[test]
    fn garbage_is_a_value_with_a_reason() {
        for line in [
            "",
            "*",
            "a1",
            "a1 HELLO there",
            "a1 PREAUTH x",
            "(bad tag OK",
            "* 99999999999 EXISTS",
        ] {
            let r = Response::parse_line(line.as_bytes());
            assert!(
                matches!(r.kind, Kind::Unparsed { .. }),
                "{line:?} gave {:?}",
                r.kind
            );
            assert!(r.raw.bytes.starts_with(line.as_bytes()));
        }
    }

    #[test]
    fn continuation() {
        assert_eq!(
            parse("+ Ready"),
            Kind::Continuation {
                code: None,
                text: "Ready".into()
            }
        );
        assert_eq!(
            parse("+"),
            Kind::Continuation {
                code: None,
                text: String::new()
            }
        );
        assert!(matches!(
            parse("+ [ALERT] x"),
            Kind::Continuation {
                code: Some(Code::Alert),
                ..
            }
        ));
    }

    #[test]
    fn a_referral_to_an_ipv6_host_keeps_its_brackets() {
        let r = Response::parse_line(
            b"a NO [REFERRAL imap://u@[2001:db8::1]:1143/] Try this server instead.",
        );
        assert_eq!(r.text(), Some("Try this server instead."));
        let url = r
            .code()
            .and_then(Code::referral_urls)
            .and_then(|u| u[0].url.clone())
            .expect("parsed");
        assert_eq!((url.host.as_str(), url.port), ("2001:db8::1", Some(1143)));
        // An unpaired '[' inside a code still ends at the first ']'.
        let r = Response::parse_line(b"* OK [X-ODD a[b] text");
        assert_eq!(r.text(), Some("text"));
    }
}
