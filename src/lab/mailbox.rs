//! The lab's sample mail store: the mailboxes and messages a lab server holds, and the lookups SELECT, STATUS, LIST and
//! FETCH need (mailbox by name, LIST pattern matching, a message's header, text and envelope).
//!
//! The store is read-only and shared by every connection to a server. A connection that reads a message sets its
//! `\Seen` flag in its own copy of the flags only (see [`super::server`]), so every new connection starts from the
//! same mailbox: 3 messages in INBOX, the first seen, the other two unseen.

use std::fmt::Write as _;

/// The hierarchy delimiter of every lab mailbox name.
pub const DELIMITER: char = '/';

/// A mail address, as an ENVELOPE shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The display name, if any.
    pub name: Option<&'static str>,
    /// The local part.
    pub mailbox: &'static str,
    /// The domain.
    pub host: &'static str,
}

impl Address {
    /// As a header shows it: `"Name" <local@host>` or `<local@host>`.
    fn header_form(&self) -> String {
        match self.name {
            Some(name) => format!("\"{name}\" <{}@{}>", self.mailbox, self.host),
            None => format!("<{}@{}>", self.mailbox, self.host),
        }
    }
}

/// One sample message: a single text/plain part in US-ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message's UID.
    pub uid: u32,
    /// True when the message starts out `\Seen`.
    pub seen: bool,
    /// `INTERNALDATE`, in IMAP's `dd-Mon-yyyy hh:mm:ss +zzzz` form.
    pub internal_date: &'static str,
    /// The `Date:` header (RFC 5322 form).
    pub date: &'static str,
    /// `From:`.
    pub from: Address,
    /// `To:`.
    pub to: Address,
    /// `Subject:`.
    pub subject: &'static str,
    /// `Message-ID:`, angle brackets included.
    pub message_id: &'static str,
    /// The body, lines separated by CRLF.
    pub body: &'static str,
}

impl Message {
    /// The header, CRLF line ends and the blank line that ends it included (`BODY[HEADER]`).
    pub fn header(&self) -> String {
        let mut header = String::new();
        let fields = [
            ("Date", self.date.to_string()),
            ("From", self.from.header_form()),
            ("To", self.to.header_form()),
            ("Subject", self.subject.to_string()),
            ("Message-ID", self.message_id.to_string()),
            ("MIME-Version", "1.0".to_string()),
            ("Content-Type", "text/plain; charset=us-ascii".to_string()),
            ("Content-Transfer-Encoding", "7bit".to_string()),
            ("X-Mailer", "Internet Mail Service (5.5.1960.3)".to_string()),
        ];
        for (name, value) in fields {
            // Writing to a String cannot fail.
            let _ = write!(header, "{name}: {value}\r\n");
        }
        header.push_str("\r\n");
        header
    }

    /// The header lines whose field name is (or, with `not`, is not) one of `names` (case-insensitive), then the
    /// blank line: `BODY[HEADER.FIELDS (...)]` and `BODY[HEADER.FIELDS.NOT (...)]`.
    pub fn header_fields(&self, names: &[String], not: bool) -> String {
        let header = self.header();
        let mut out = String::new();
        for line in header.split_inclusive("\r\n") {
            let Some((name, _)) = line.split_once(':') else {
                continue;
            };
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            if listed != not {
                out.push_str(line);
            }
        }
        out.push_str("\r\n");
        out
    }

    /// The body (`BODY[TEXT]`, `BODY[1]`).
    pub fn text(&self) -> &'static str {
        self.body
    }

    /// The whole message (`BODY[]`, `RFC822`).
    pub fn full(&self) -> String {
        let mut all = self.header();
        all.push_str(self.body);
        all
    }

    /// `RFC822.SIZE`: the size of the whole message in bytes.
    pub fn size(&self) -> usize {
        self.header().len() + self.body.len()
    }

    /// The number of lines in the body, for BODYSTRUCTURE.
    pub fn body_lines(&self) -> usize {
        self.body.matches("\r\n").count()
    }
}

/// One mailbox of a server's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The name, UTF-8, `/`-separated (modified UTF-7 is only for the wire).
    pub name: &'static str,
    /// False for a hierarchy-only name (`\Noselect`), such as "Public Folders".
    pub selectable: bool,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The messages, in sequence order.
    pub messages: Vec<Message>,
}

impl Mailbox {
    fn new(name: &'static str, uidvalidity: u32, messages: Vec<Message>) -> Self {
        Mailbox {
            name,
            selectable: true,
            uidvalidity,
            messages,
        }
    }

    fn hierarchy(name: &'static str) -> Self {
        Mailbox {
            name,
            selectable: false,
            uidvalidity: 1,
            messages: Vec::new(),
        }
    }

    /// UIDNEXT: one more than the highest UID ever given.
    pub fn uidnext(&self) -> u32 {
        self.messages.iter().map(|m| m.uid).max().unwrap_or(0) + 1
    }

    /// The LIST attributes of this mailbox.
    pub fn attributes(&self) -> &'static str {
        if self.selectable {
            ""
        } else {
            "\\Noselect"
        }
    }
}

/// What a name refers to on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A mailbox held here.
    Local(&'a Mailbox),
    /// A mailbox this server knows of but that lives on another server (mailbox referral).
    Remote(&'static str),
    /// No such mailbox.
    Missing,
}

/// A server's mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailStore {
    /// The mailboxes held here, in LIST order.
    pub mailboxes: Vec<Mailbox>,
    /// Mailboxes that live on another server: shown by RLIST and RLSUB with `\Remote`, answered with a referral.
    pub remote: Vec<&'static str>,
}

/// One line of a LIST, LSUB, RLIST or RLSUB answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The attributes, e.g. `\Noselect` or `\Remote`, space-separated (may be empty).
    pub attributes: &'static str,
    /// The mailbox name, UTF-8.
    pub name: &'static str,
}

impl MailStore {
    /// The user's home store: INBOX (3 messages, 1 seen), Sent Items, Deleted Items, Public Folders/Announcements.
    pub fn home() -> Self {
        MailStore {
            mailboxes: vec![
                Mailbox::new("INBOX", 917_222_400, inbox_messages()),
                Mailbox::new("Sent Items", 917_222_401, vec![sent_message()]),
                Mailbox::new("Deleted Items", 917_222_402, Vec::new()),
                Mailbox::hierarchy("Public Folders"),
                Mailbox::new(
                    "Public Folders/Announcements",
                    917_222_403,
                    announcements(1),
                ),
            ],
            remote: Vec::new(),
        }
    }

    /// The home store without its public folder, which lives elsewhere: the front server of the mailbox-referral
    /// scenarios.
    pub fn without_public_folder(remote: &'static str) -> Self {
        let mut store = MailStore::home();
        store.mailboxes.retain(|m| m.name != remote);
        store.remote.push(remote);
        store
    }

    /// A public-folder server's store: an empty INBOX and "Public Folders/Announcements" with two messages.
    /// Replicas differ in UIDVALIDITY, as RFC 2193 says they may.
    pub fn public_folders(uidvalidity: u32) -> Self {
        MailStore {
            mailboxes: vec![
                Mailbox::new("INBOX", uidvalidity.wrapping_sub(1).max(1), Vec::new()),
                Mailbox::hierarchy("Public Folders"),
                Mailbox::new(
                    "Public Folders/Announcements",
                    uidvalidity,
                    announcements(2),
                ),
            ],
            remote: Vec::new(),
        }
    }

    /// What `name` (UTF-8, already decoded from modified UTF-7) refers to. `INBOX` is case-insensitive.
    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        let wanted = canonical(name);
        if let Some(mailbox) = self.mailboxes.iter().find(|m| m.name == wanted) {
            return Lookup::Local(mailbox);
        }
        if let Some(remote) = self.remote.iter().find(|r| **r == wanted) {
            return Lookup::Remote(remote);
        }
        Lookup::Missing
    }

    /// The index of a local mailbox.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.mailboxes.iter().position(|m| m.name == name)
    }

    /// The entries a LIST-like command shows for `reference` and `pattern` (UTF-8). With `remote`, mailboxes held
    /// elsewhere are shown too, flagged `\Remote` (RLIST, RLSUB, `LIST (REMOTE)`). Every mailbox counts as subscribed.
    pub fn list(&self, reference: &str, pattern: &str, remote: bool) -> Vec<ListEntry> {
        let full_pattern = format!("{reference}{pattern}");
        let local = self.mailboxes.iter().map(|m| ListEntry {
            attributes: m.attributes(),
            name: m.name,
        });
        let remote_entries = self.remote.iter().filter(|_| remote).map(|name| ListEntry {
            attributes: "\\Remote",
            name,
        });
        local
            .chain(remote_entries)
            .filter(|entry| matches_pattern(&full_pattern, entry.name))
            .collect()
    }
}

/// `INBOX` in any case is `INBOX`; every other name is case-sensitive.
fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

/// LIST wildcards: `*` matches anything, `%` anything but the delimiter. `INBOX` matches in any case.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = if name == "INBOX" {
        pattern.chars().map(|c| c.to_ascii_uppercase()).collect()
    } else {
        pattern.chars().collect()
    };
    let name: Vec<char> = name.chars().collect();
    wildcard(&pattern, &name)
}

/// Wildcard match over (pattern, name) positions, without recursion: `reachable[i]` says the pattern so far can
/// consume the first `i` characters of the name.
fn wildcard(pattern: &[char], name: &[char]) -> bool {
    let n_len = name.len();
    let mut reachable = vec![false; n_len + 1];
    reachable[0] = true;
    for &pc in pattern {
        let mut next = vec![false; n_len + 1];
        match pc {
            '*' | '%' => {
                let mut carry = false;
                for (i, slot) in next.iter_mut().enumerate() {
                    carry = carry || reachable[i];
                    *slot = carry;
                    if pc == '%' && name.get(i) == Some(&DELIMITER) {
                        carry = false;
                    }
                }
            }
            c => {
                for (i, &nc) in name.iter().enumerate() {
                    if reachable[i] && nc == c {
                        next[i + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[n_len]
}

const LAB_HOST: &str = "lab.example";

fn user() -> Address {
    Address {
        name: Some("AliasN"),
        mailbox: "AliasN",
        host: LAB_HOST,
    }
}

fn inbox_messages() -> Vec<Message> {
    vec![
        Message {
            uid: 1,
            seen: true,
            internal_date: "15-Mar-1999 08:30:00 -0800",
            date: "Mon, 15 Mar 1999 08:30:00 -0800",
            from: Address {
                name: Some("Exchange Administrator"),
                mailbox: "administrator",
                host: LAB_HOST,
            },
            to: user(),
            subject: "Welcome to home.lab",
            message_id: "<19990315083000.0001@home.lab.example>",
            body: "Your mailbox now lives on home.lab.\r\n\
                   IMAP clients that follow login referrals find it by themselves;\r\n\
                   others have to be pointed at home.lab directly.\r\n",
        },
        Message {
            uid: 2,
            seen: false,
            internal_date: "16-Mar-1999 10:05:00 -0800",
            date: "Tue, 16 Mar 1999 10:05:00 -0800",
            from: Address {
                name: Some("Help Desk"),
                mailbox: "helpdesk",
                host: LAB_HOST,
            },
            to: user(),
            subject: "Re: Outlook Express cannot open my Inbox",
            message_id: "<19990316100500.0002@home.lab.example>",
            body: "Outlook Express does not follow IMAP referrals (KB Q217388).\r\n\
                   front.lab logs you in and refers you here, but your client stays on front.lab,\r\n\
                   which answers \"There is no replica for that mailbox on this server.\"\r\n\
                   Please set your IMAP server to home.lab.\r\n",
        },
        Message {
            uid: 3,
            seen: false,
            internal_date: "17-Mar-1999 23:15:00 -0800",
            date: "Wed, 17 Mar 1999 23:15:00 -0800",
            from: Address {
                name: Some("Directory Service"),
                mailbox: "dirsync",
                host: LAB_HOST,
            },
            to: user(),
            subject: "Directory replication between front.lab and home.lab",
            message_id: "<19990317231500.0003@home.lab.example>",
            body: "Directory replication between front.lab and home.lab completed.\r\n\
                   Automatic referrals work only between replicated servers.\r\n",
        },
    ]
}

fn sent_message() -> Message {
    Message {
        uid: 1,
        seen: true,
        internal_date: "16-Mar-1999 09:41:00 -0800",
        date: "Tue, 16 Mar 1999 09:41:00 -0800",
        from: user(),
        to: Address {
            name: Some("Help Desk"),
            mailbox: "helpdesk",
            host: LAB_HOST,
        },
        subject: "Outlook Express cannot open my Inbox",
        message_id: "<19990316094100.0001@home.lab.example>",
        body: "When I open my Inbox I get:\r\n\
               NO There is no replica for that mailbox on this server.\r\n",
    }
}

/// The first `count` (1 or 2) announcements.
fn announcements(count: usize) -> Vec<Message> {
    let all = [
        Message {
            uid: 1,
            seen: false,
            internal_date: "12-Mar-1999 17:00:00 -0800",
            date: "Fri, 12 Mar 1999 17:00:00 -0800",
            from: Address {
                name: Some("Exchange Administrator"),
                mailbox: "administrator",
                host: LAB_HOST,
            },
            to: Address {
                name: Some("Everyone"),
                mailbox: "everyone",
                host: LAB_HOST,
            },
            subject: "Exchange Server 5.5 upgrade this weekend",
            message_id: "<19990312170000.0001@pub.lab.example>",
            body: "All servers move to Exchange Server 5.5 this weekend.\r\n",
        },
        Message {
            uid: 2,
            seen: false,
            internal_date: "18-Mar-1999 08:00:00 -0800",
            date: "Thu, 18 Mar 1999 08:00:00 -0800",
            from: Address {
                name: Some("Exchange Administrator"),
                mailbox: "administrator",
                host: LAB_HOST,
            },
            to: Address {
                name: Some("Everyone"),
                mailbox: "everyone",
                host: LAB_HOST,
            },
            subject: "Public folders now live on pub.lab",
            message_id: "<19990318080000.0002@pub.lab.example>",
            body: "Public folders moved to pub.lab. Clients that support mailbox referrals\r\n\
                   (RFC 2193) are sent there; others should use RLIST to see where they are.\r\n",
        },
    ];
    all.into_iter().take(count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_inbox_has_three_messages_one_seen() {
        let store = MailStore::home();
        let Lookup::Local(inbox) = store.lookup("inbox") else {
            panic!("INBOX is local");
        };
        assert_eq!(inbox.messages.len(), 3);
        assert_eq!(inbox.messages.iter().filter(|m| m.seen).count(), 1);
        assert_eq!(inbox.uidnext(), 4);
        for m in &inbox.messages {
            assert_eq!(m.full().len(), m.size());
            assert!(m.header().ends_with("\r\n\r\n"));
            assert!(m.body.ends_with("\r\n"));
            assert!(
                !m.body.contains("\r\n ") && !m.body.contains("\n "),
                "no stray indentation"
            );
        }
    }

    #[test]
    fn header_fields_filter() {
        let store = MailStore::home();
        let Lookup::Local(inbox) = store.lookup("INBOX") else {
            panic!("INBOX is local");
        };
        let m = &inbox.messages[0];
        let only = m.header_fields(&["subject".into(), "FROM".into()], false);
        assert_eq!(
            only,
            "From: \"Exchange Administrator\" <administrator@lab.example>\r\nSubject: Welcome to home.lab\r\n\r\n"
        );
        let not = m.header_fields(&["Subject".into()], true);
        assert!(!not.contains("Subject:") && not.contains("Message-ID:"));
    }

    #[test]
    fn patterns() {
        assert!(matches_pattern("*", "Public Folders/Announcements"));
        assert!(!matches_pattern("%", "Public Folders/Announcements"));
        assert!(matches_pattern("%", "Public Folders"));
        assert!(matches_pattern(
            "Public Folders/%",
            "Public Folders/Announcements"
        ));
        assert!(matches_pattern("inbox", "INBOX"));
        assert!(matches_pattern("IN*", "INBOX"));
        assert!(!matches_pattern("", "INBOX"));
        assert!(matches_pattern("*Items", "Sent Items"));
    }

    #[test]
    fn remote_mailboxes_only_with_remote() {
        let store = MailStore::without_public_folder("Public Folders/Announcements");
        assert_eq!(
            store.lookup("Public Folders/Announcements"),
            Lookup::Remote("Public Folders/Announcements")
        );
        assert!(store
            .list("", "*", false)
            .iter()
            .all(|e| e.attributes != "\\Remote"));
        let remote = store.list("", "*", true);
        assert!(remote
            .iter()
            .any(|e| e.name == "Public Folders/Announcements" && e.attributes == "\\Remote"));
    }
}
