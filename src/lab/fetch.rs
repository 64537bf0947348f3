//! FETCH and UID FETCH for the lab: sequence sets, fetch items (`FLAGS`, `UID`, `RFC822.SIZE`, `INTERNALDATE`,
//! `ENVELOPE`, `BODY`, `BODYSTRUCTURE`, `BODY[...]` and `BODY.PEEK[...]` with partials, `RFC822*`, the `ALL`, `FAST`
//! and `FULL` macros) and the untagged `FETCH` responses, bodies as literals.

use super::mailbox::{Address, Message};
use super::wire;
use crate::proto::client_command::Value;

/// A sequence set (`1`, `2:4`, `3,5:*`); `*` is resolved when testing membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(Vec<(Option<u32>, Option<u32>)>);

impl SequenceSet {
    /// Parses a sequence set; `None` when it is not one.
    pub fn parse(text: &str) -> Option<SequenceSet> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let (lo, hi) = match part.split_once(':') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => {
                    let n = number(part)?;
                    (n, n)
                }
            };
            ranges.push((lo, hi));
        }
        Some(SequenceSet(ranges))
    }

    /// True when `n` is in the set, `*` standing for `star` (the highest number in use).
    pub fn contains(&self, n: u32, star: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            let a = a.unwrap_or(star);
            let b = b.unwrap_or(star);
            (a.min(b)..=a.max(b)).contains(&n)
        })
    }

    /// The highest explicit number in the set (for range checks on message sequence numbers).
    pub fn max_explicit(&self) -> u32 {
        self.0
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .flatten()
            .max()
            .unwrap_or(0)
    }
}

/// `*` is `None`; a number must be 1 or more.
fn number(text: &str) -> Option<Option<u32>> {
    if text == "*" {
        return Some(None);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.parse::<u32>() {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(Some(n)),
    }
}

/// Which part of a message a `BODY[...]` item asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// `BODY[]`: the whole message.
    Full,
    /// `BODY[HEADER]`.
    Header,
    /// `BODY[TEXT]` or `BODY[1]` (the only part of a single-part message).
    Text,
    /// `BODY[HEADER.FIELDS (...)]` or, with `not`, `BODY[HEADER.FIELDS.NOT (...)]`.
    HeaderFields {
        /// `.NOT`.
        not: bool,
        /// The field names, upper-cased.
        fields: Vec<String>,
    },
}

/// One fetch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `FLAGS`.
    Flags,
    /// `UID`.
    Uid,
    /// `RFC822.SIZE`.
    Size,
    /// `INTERNALDATE`.
    InternalDate,
    /// `ENVELOPE`.
    Envelope,
    /// `BODY` (no section): the body structure without extension data.
    Body,
    /// `BODYSTRUCTURE`.
    BodyStructure,
    /// `BODY[...]` or `BODY.PEEK[...]`, possibly with `<offset.length>`.
    Section {
        /// The part asked for.
        section: Section,
        /// The section text to echo in the response, e.g. `HEADER.FIELDS (SUBJECT)`.
        label: String,
        /// `BODY.PEEK`: do not set `\Seen`.
        peek: bool,
        /// `<offset.length>`.
        partial: Option<(usize, usize)>,
    },
    /// `RFC822`: the whole message; sets `\Seen`.
    Rfc822,
    /// `RFC822.HEADER`.
    Rfc822Header,
    /// `RFC822.TEXT`: sets `\Seen`.
    Rfc822Text,
}

impl Item {
    /// True when fetching this item marks the message `\Seen`.
    fn sets_seen(&self) -> bool {
        matches!(
            self,
            Item::Rfc822 | Item::Rfc822Text | Item::Section { peek: false, .. }
        )
    }
}

/// Parses the fetch items of a FETCH command: one item or macro, or a parenthesised list of items.
pub fn parse_items(value: &Value) -> Result<Vec<Item>, String> {
    match value {
        Value::List(values) => {
            if values.is_empty() {
                return Err("empty list of fetch items".into());
            }
            values
                .iter()
                .map(|v| match v {
                    Value::Atom(a) => parse_item(a),
                    _ => Err("fetch items are atoms".into()),
                })
                .collect()
        }
        Value::Atom(a) => match a.to_ascii_uppercase().as_str() {
            "ALL" => Ok(vec![
                Item::Flags,
                Item::InternalDate,
                Item::Size,
                Item::Envelope,
            ]),
            "FAST" => Ok(vec![Item::Flags, Item::InternalDate, Item::Size]),
            "FULL" => Ok(vec![
                Item::Flags,
                Item::InternalDate,
                Item::Size,
                Item::Envelope,
                Item::Body,
            ]),
            _ => parse_item(a).map(|item| vec![item]),
        },
        _ => Err("fetch items are atoms".into()),
    }
}

fn parse_item(atom: &str) -> Result<Item, String> {
    let upper = atom.to_ascii_uppercase();
    let simple = match upper.as_str() {
        "FLAGS" => Some(Item::Flags),
        "UID" => Some(Item::Uid),
        "RFC822.SIZE" => Some(Item::Size),
        "INTERNALDATE" => Some(Item::InternalDate),
        "ENVELOPE" => Some(Item::Envelope),
        "BODY" => Some(Item::Body),
        "BODYSTRUCTURE" => Some(Item::BodyStructure),
        "RFC822" => Some(Item::Rfc822),
        "RFC822.HEADER" => Some(Item::Rfc822Header),
        "RFC822.TEXT" => Some(Item::Rfc822Text),
        _ => None,
    };
    if let Some(item) = simple {
        return Ok(item);
    }
    let bad = || format!("unknown fetch item {atom}");
    let (peek, rest) = if let Some(rest) = upper.strip_prefix("BODY.PEEK[") {
        (true, rest)
    } else if let Some(rest) = upper.strip_prefix("BODY[") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let (label, after) = rest.split_once(']').ok_or_else(bad)?;
    let partial = if after.is_empty() {
        None
    } else {
        let inner = after
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .ok_or_else(bad)?;
        let (offset, length) = inner.split_once('.').ok_or_else(bad)?;
        let offset = offset.parse::<usize>().map_err(|_| bad())?;
        let length = length.parse::<usize>().map_err(|_| bad())?;
        Some((offset, length))
    };
    let section = parse_section(label).ok_or_else(bad)?;
    Ok(Item::Section {
        section,
        label: normalise_label(label),
        peek,
        partial,
    })
}

fn parse_section(label: &str) -> Option<Section> {
    match label {
        "" => return Some(Section::Full),
        "HEADER" => return Some(Section::Header),
        "TEXT" | "1" => return Some(Section::Text),
        _ => {}
    }
    let (not, list) = if let Some(list) = label.strip_prefix("HEADER.FIELDS.NOT") {
        (true, list)
    } else {
        (false, label.strip_prefix("HEADER.FIELDS")?)
    };
    let inner = list.trim().strip_prefix('(')?.strip_suffix(')')?;
    let fields: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
    if fields.is_empty() {
        return None;
    }
    Some(Section::HeaderFields { not, fields })
}

/// `HEADER.FIELDS  (A  B)` echoed as `HEADER.FIELDS (A B)`.
fn normalise_label(label: &str) -> String {
    match label.split_once('(') {
        Some((head, list)) => {
            let fields: Vec<&str> = list.trim_end_matches(')').split_whitespace().collect();
            format!("{} ({})", head.trim_end(), fields.join(" "))
        }
        None => label.to_string(),
    }
}

/// The `FLAGS` list of a message.
pub fn flags(seen: bool) -> &'static str {
    if seen {
        "(\\Seen)"
    } else {
        "()"
    }
}

/// One untagged `* n FETCH (...)` response for message `seq`, CRLF included.
///
/// `seen` is the connection's view of the message's `\Seen` flag; it is set when an item reads the body and the
/// mailbox is not `read_only`, and then `FLAGS` is added to the response if it was not asked for (RFC 3501 6.4.5).
/// A `UID FETCH` (`uid_fetch`) always returns `UID`.
pub fn render(
    seq: usize,
    message: &Message,
    seen: &mut bool,
    items: &[Item],
    uid_fetch: bool,
    read_only: bool,
) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut flags_sent = false;
    if uid_fetch && !items.contains(&Item::Uid) {
        parts.push(format!("UID {}", message.uid).into_bytes());
    }
    let newly_seen = !*seen && !read_only && items.iter().any(Item::sets_seen);
    if newly_seen {
        *seen = true;
    }
    for item in items {
        let mut out = Vec::new();
        match item {
            Item::Flags => {
                flags_sent = true;
                out.extend_from_slice(format!("FLAGS {}", flags(*seen)).as_bytes());
            }
            Item::Uid => out.extend_from_slice(format!("UID {}", message.uid).as_bytes()),
            Item::Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", message.size()).as_bytes())
            }
            Item::InternalDate => {
                out.extend_from_slice(
                    format!("INTERNALDATE \"{}\"", message.internal_date).as_bytes(),
                );
            }
            Item::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                envelope(&mut out, message);
            }
            Item::Body => {
                out.extend_from_slice(b"BODY ");
                body_structure(&mut out, message, false);
            }
            Item::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                body_structure(&mut out, message, true);
            }
            Item::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                wire::literal(&mut out, message.full().as_bytes());
            }
            Item::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                wire::literal(&mut out, message.header().as_bytes());
            }
            Item::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                wire::literal(&mut out, message.text().as_bytes());
            }
            Item::Section {
                section,
                label,
                partial,
                ..
            } => {
                let data = match section {
                    Section::Full => message.full(),
                    Section::Header => message.header(),
                    Section::Text => message.text().to_string(),
                    Section::HeaderFields { not, fields } => message.header_fields(fields, *not),
                };
                let bytes = data.as_bytes();
                match partial {
                    None => {
                        out.extend_from_slice(format!("BODY[{label}] ").as_bytes());
                        wire::literal(&mut out, bytes);
                    }
                    Some((offset, length)) => {
                        let start = (*offset).min(bytes.len());
                        let end = start.saturating_add(*length).min(bytes.len());
                        out.extend_from_slice(format!("BODY[{label}]<{offset}> ").as_bytes());
                        wire::literal(&mut out, &bytes[start..end]);
                    }
                }
            }
        }
        parts.push(out);
    }
    if newly_seen && !flags_sent {
        parts.push(format!("FLAGS {}", flags(*seen)).into_bytes());
    }
    let mut line = format!("* {seq} FETCH (").into_bytes();
    line.extend_from_slice(&parts.join(&b' '));
    line.extend_from_slice(b")\r\n");
    line
}

/// `ENVELOPE`: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id.
fn envelope(out: &mut Vec<u8>, message: &Message) {
    out.push(b'(');
    wire::nstring(out, Some(message.date));
    out.push(b' ');
    wire::nstring(out, Some(message.subject));
    for address in [&message.from, &message.from, &message.from, &message.to] {
        out.push(b' ');
        address_list(out, address);
    }
    out.extend_from_slice(b" NIL NIL NIL ");
    wire::nstring(out, Some(message.message_id));
    out.push(b')');
}

fn address_list(out: &mut Vec<u8>, address: &Address) {
    out.extend_from_slice(b"((");
    wire::nstring(out, address.name);
    out.extend_from_slice(b" NIL ");
    wire::nstring(out, Some(address.mailbox));
    out.push(b' ');
    wire::nstring(out, Some(address.host));
    out.extend_from_slice(b"))");
}

/// A single text/plain US-ASCII part; `extended` adds the BODYSTRUCTURE extension data (md5, disposition, language).
fn body_structure(out: &mut Vec<u8>, message: &Message, extended: bool) {
    out.extend_from_slice(
        format!(
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {} {}",
            message.text().len(),
            message.body_lines()
        )
        .as_bytes(),
    );
    if extended {
        out.extend_from_slice(b" NIL NIL NIL");
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::mailbox::{Lookup, MailStore};

    fn first_message() -> Message {
        let store = MailStore::home();
        let Lookup::Local(inbox) = store.lookup("INBOX") else {
            panic!("INBOX");
        };
        inbox.messages[1].clone()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn sequence_sets() {
        let set = SequenceSet::parse("1,3:*").expect("set");
        assert!(set.contains(1, 5) && !set.contains(2, 5) && set.contains(5, 5));
        assert!(SequenceSet::parse("5:2").expect("set").contains(3, 9));
        assert_eq!(SequenceSet::parse("0"), None);
        assert_eq!(SequenceSet::parse("a"), None);
        assert_eq!(SequenceSet::parse("1,"), None);
        assert_eq!(SequenceSet::parse("2,7:*").expect("set").max_explicit(), 7);
    }

    #[test]
    fn items_and_macros() {
        let items = parse_items(&Value::Atom("fast".into())).expect("fast");
        assert_eq!(items, vec![Item::Flags, Item::InternalDate, Item::Size]);
        let items = parse_items(&Value::Atom(
            "BODY.PEEK[HEADER.FIELDS (subject FROM)]<0.10>".into(),
        ))
        .expect("peek");
        assert_eq!(
            items,
            vec![Item::Section {
                section: Section::HeaderFields {
                    not: false,
                    fields: vec!["SUBJECT".into(), "FROM".into()]
                },
                label: "HEADER.FIELDS (SUBJECT FROM)".into(),
                peek: true,
                partial: Some((0, 10)),
            }]
        );
        assert!(parse_items(&Value::Atom("BODY[MIME.X]".into())).is_err());
        assert!(parse_items(&Value::List(vec![])).is_err());
    }

    #[test]
    fn body_fetch_sets_seen_and_reports_flags() {
        let message = first_message();
        let mut seen = false;
        let items = parse_items(&Value::List(vec![Value::Atom("BODY[]".into())])).expect("items");
        let out = text(&render(2, &message, &mut seen, &items, true, false));
        assert!(seen);
        assert!(out.starts_with("* 2 FETCH (UID 2 BODY[] {"), "{out}");
        assert!(out.ends_with(" FLAGS (\\Seen))\r\n"), "{out}");
        assert!(
            out.contains(&format!("{{{}}}\r\nDate: ", message.size())),
            "{out}"
        );
    }

    #[test]
    fn peek_and_read_only_do_not_set_seen() {
        let message = first_message();
        let mut seen = false;
        let items = parse_items(&Value::Atom("BODY.PEEK[TEXT]<0.7>".into())).expect("items");
        let out = text(&render(2, &message, &mut seen, &items, false, false));
        assert_eq!(out, "* 2 FETCH (BODY[TEXT]<0> {7}\r\nOutlook)\r\n");
        let items = parse_items(&Value::Atom("RFC822".into())).expect("items");
        render(2, &message, &mut seen, &items, false, true);
        assert!(!seen);
    }

    #[test]
    fn envelope_shape() {
        let message = first_message();
        let mut seen = false;
        let out = text(&render(
            2,
            &message,
            &mut seen,
            &[Item::Envelope],
            false,
            false,
        ));
        assert_eq!(
            out,
            "* 2 FETCH (ENVELOPE (\"Tue, 16 Mar 1999 10:05:00 -0800\" \"Re: Outlook Express cannot open my Inbox\" \
             ((\"Help Desk\" NIL \"helpdesk\" \"lab.example\")) ((\"Help Desk\" NIL \"helpdesk\" \"lab.example\")) \
             ((\"Help Desk\" NIL \"helpdesk\" \"lab.example\")) ((\"AliasN\" NIL \"AliasN\" \"lab.example\")) \
             NIL NIL NIL \"<19990316100500.0002@home.lab.example>\"))\r\n"
        );
    }
}
