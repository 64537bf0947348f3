//! Response codes: the bracketed `[CODE args]` after OK, NO, BAD, BYE and PREAUTH.
//!
//! REFERRAL (RFC 2221, RFC 2193) is decoded exactly, with each URL kept verbatim beside its parse. The RFC 3501 codes,
//! the RFC 5530 codes and the ones seen next to referrals get their own variants; any other code is kept verbatim in
//! [`Code::Other`]. A known code whose argument does not parse (`UIDVALIDITY abc`) is kept verbatim too, never dropped.

use serde::Serialize;

use super::url::ImapUrl;

/// One URL of a REFERRAL code: the text as sent, and its parse or the reason it cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralUrl {
    /// The URL exactly as the server sent it.
    pub raw: String,
    /// The decoded URL, when it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<ImapUrl>,
    /// Why the URL cannot be followed, when it does not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReferralUrl {
    /// Parses one URL, keeping the raw text whatever happens.
    pub fn parse(raw: &str) -> Self {
        match ImapUrl::parse(raw) {
            Ok(url) => ReferralUrl {
                raw: raw.to_string(),
                url: Some(url),
                error: None,
            },
            Err(err) => ReferralUrl {
                raw: raw.to_string(),
                url: None,
                error: Some(err.to_string()),
            },
        }
    }
}

/// A response code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", content = "value", rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Code {
    /// `REFERRAL url *(SP url)`: a login referral (RFC 2221, one URL) or a mailbox referral (RFC 2193, replicas in order
    /// of preference).
    Referral(Vec<ReferralUrl>),
    /// `CAPABILITY ...`: the capabilities, so the client need not ask.
    Capability(Vec<String>),
    /// `ALERT`: the text must be shown to the user.
    Alert,
    /// `PARSE`: the server could not parse a message's headers.
    Parse,
    /// `READ-ONLY`: the mailbox was selected read-only.
    ReadOnly,
    /// `READ-WRITE`: the mailbox was selected read-write.
    ReadWrite,
    /// `TRYCREATE`: the target mailbox does not exist but could be created.
    #[serde(rename = "TRYCREATE")]
    TryCreate,
    /// `UIDVALIDITY n`.
    #[serde(rename = "UIDVALIDITY")]
    UidValidity(u32),
    /// `UIDNEXT n`.
    #[serde(rename = "UIDNEXT")]
    UidNext(u32),
    /// `UNSEEN n`: the first unseen message.
    Unseen(u32),
    /// `PERMANENTFLAGS (...)`.
    #[serde(rename = "PERMANENTFLAGS")]
    PermanentFlags(Vec<String>),
    /// `BADCHARSET [(...)]`.
    #[serde(rename = "BADCHARSET")]
    BadCharset(Vec<String>),
    /// `CLOSED` (RFC 7162): the previous mailbox was closed.
    Closed,
    /// RFC 5530 `UNAVAILABLE`: a subsystem is down; try later.
    Unavailable,
    /// RFC 5530 `AUTHENTICATIONFAILED`: wrong name or password.
    #[serde(rename = "AUTHENTICATIONFAILED")]
    AuthenticationFailed,
    /// RFC 5530 `AUTHORIZATIONFAILED`: authenticated, but may not act as that user.
    #[serde(rename = "AUTHORIZATIONFAILED")]
    AuthorizationFailed,
    /// RFC 5530 `EXPIRED`: the credentials have expired.
    Expired,
    /// RFC 5530 `PRIVACYREQUIRED`: use TLS first.
    #[serde(rename = "PRIVACYREQUIRED")]
    PrivacyRequired,
    /// RFC 5530 `CONTACTADMIN`: the account needs an administrator.
    #[serde(rename = "CONTACTADMIN")]
    ContactAdmin,
    /// RFC 5530 `NOPERM`: no access to that mailbox.
    #[serde(rename = "NOPERM")]
    NoPerm,
    /// RFC 5530 `INUSE`: someone else holds the mailbox.
    #[serde(rename = "INUSE")]
    InUse,
    /// RFC 5530 `EXPUNGEISSUED`.
    #[serde(rename = "EXPUNGEISSUED")]
    ExpungeIssued,
    /// RFC 5530 `CORRUPTION`.
    Corruption,
    /// RFC 5530 `SERVERBUG`.
    #[serde(rename = "SERVERBUG")]
    ServerBug,
    /// RFC 5530 `CLIENTBUG`.
    #[serde(rename = "CLIENTBUG")]
    ClientBug,
    /// RFC 5530 `CANNOT`: the operation violates an invariant of the server.
    Cannot,
    /// RFC 5530 `LIMIT`: a server limit was hit.
    Limit,
    /// RFC 5530 `OVERQUOTA`.
    #[serde(rename = "OVERQUOTA")]
    OverQuota,
    /// RFC 5530 `ALREADYEXISTS`.
    #[serde(rename = "ALREADYEXISTS")]
    AlreadyExists,
    /// RFC 5530 `NONEXISTENT`: no such mailbox.
    Nonexistent,
    /// Any other code, or a known one whose argument did not parse, kept verbatim.
    Other {
        /// The code's name as sent.
        name: String,
        /// Its argument as sent, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        args: Option<String>,
    },
}

impl Code {
    /// Parses the text between `[` and `]`.
    pub fn parse(inside: &str) -> Code {
        let inside = inside.trim_matches(' ');
        let (name, args) = match inside.split_once(' ') {
            Some((n, a)) => (n, Some(a.trim_start_matches(' '))),
            None => (inside, None),
        };
        let upper = name.to_ascii_uppercase();
        let number = || args.and_then(|a| a.trim().parse::<u32>().ok());
        let parsed = match (upper.as_str(), args) {
            ("REFERRAL", Some(a)) => {
                let urls: Vec<ReferralUrl> =
                    a.split_ascii_whitespace().map(ReferralUrl::parse).collect();
                (!urls.is_empty()).then_some(Code::Referral(urls))
            }
            ("CAPABILITY", Some(a)) => Some(Code::Capability(words(a))),
            ("ALERT", _) => Some(Code::Alert),
            ("PARSE", _) => Some(Code::Parse),
            ("READ-ONLY", _) => Some(Code::ReadOnly),
            ("READ-WRITE", _) => Some(Code::ReadWrite),
            ("TRYCREATE", _) => Some(Code::TryCreate),
            ("UIDVALIDITY", _) => number().map(Code::UidValidity),
            ("UIDNEXT", _) => number().map(Code::UidNext),
            ("UNSEEN", _) => number().map(Code::Unseen),
            ("PERMANENTFLAGS", Some(a)) => Some(Code::PermanentFlags(paren_words(a))),
            ("BADCHARSET", a) => Some(Code::BadCharset(a.map(paren_words).unwrap_or_default())),
            ("CLOSED", _) => Some(Code::Closed),
            ("UNAVAILABLE", _) => Some(Code::Unavailable),
            ("AUTHENTICATIONFAILED", _) => Some(Code::AuthenticationFailed),
            ("AUTHORIZATIONFAILED", _) => Some(Code::AuthorizationFailed),
            ("EXPIRED", _) => Some(Code::Expired),
            ("PRIVACYREQUIRED", _) => Some(Code::PrivacyRequired),
            ("CONTACTADMIN", _) => Some(Code::ContactAdmin),
            ("NOPERM", _) => Some(Code::NoPerm),
            ("INUSE", _) => Some(Code::InUse),
            ("EXPUNGEISSUED", _) => Some(Code::ExpungeIssued),
            ("CORRUPTION", _) => Some(Code::Corruption),
            ("SERVERBUG", _) => Some(Code::ServerBug),
            ("CLIENTBUG", _) => Some(Code::ClientBug),
            ("CANNOT", _) => Some(Code::Cannot),
            ("LIMIT", _) => Some(Code::Limit),
            ("OVERQUOTA", _) => Some(Code::OverQuota),
            ("ALREADYEXISTS", _) => Some(Code::AlreadyExists),
            ("NONEXISTENT", _) => Some(Code::Nonexistent),
            _ => None,
        };
        parsed.unwrap_or_else(|| Code::Other {
            name: name.to_string(),
            args: args.map(str::to_string),
        })
    }

    /// The code's name as it appears on the wire (upper case for known codes).
    pub fn name(&self) -> &str {
        match self {
            Code::Referral(_) => "REFERRAL",
            Code::Capability(_) => "CAPABILITY",
            Code::Alert => "ALERT",
            Code::Parse => "PARSE",
            Code::ReadOnly => "READ-ONLY",
            Code::ReadWrite => "READ-WRITE",
            Code::TryCreate => "TRYCREATE",
            Code::UidValidity(_) => "UIDVALIDITY",
            Code::UidNext(_) => "UIDNEXT",
            Code::Unseen(_) => "UNSEEN",
            Code::PermanentFlags(_) => "PERMANENTFLAGS",
            Code::BadCharset(_) => "BADCHARSET",
            Code::Closed => "CLOSED",
            Code::Unavailable => "UNAVAILABLE",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
            Code::Expired => "EXPIRED",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ContactAdmin => "CONTACTADMIN",
            Code::NoPerm => "NOPERM",
            Code::InUse => "INUSE",
            Code::ExpungeIssued => "EXPUNGEISSUED",
            Code::Corruption => "CORRUPTION",
            Code::ServerBug => "SERVERBUG",
            Code::ClientBug => "CLIENTBUG",
            Code::Cannot => "CANNOT",
            Code::Limit => "LIMIT",
            Code::OverQuota => "OVERQUOTA",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::Nonexistent => "NONEXISTENT",
            Code::Other { name, .. } => name,
        }
    }

    /// What the code means, in one sentence for an administrator.
    pub fn meaning(&self) -> String {
        match self {
            Code::Referral(urls) if urls.len() > 1 => {
                format!("a referral to {} servers, most preferred first", urls.len())
            }
            Code::Referral(_) => "a referral: the server points the client at another IMAP server".into(),
            Code::Capability(caps) => format!("the server's {} capabilities, sent so the client need not ask", caps.len()),
            Code::Alert => "an alert the client must show to the user".into(),
            Code::Parse => "the server could not parse the headers or MIME structure of a message".into(),
            Code::ReadOnly => "the mailbox is open read-only".into(),
            Code::ReadWrite => "the mailbox is open read-write".into(),
            Code::TryCreate => "the target mailbox does not exist, but creating it may work".into(),
            Code::UidValidity(n) => format!("UIDVALIDITY is {n}: cached UIDs are valid while it stays the same"),
            Code::UidNext(n) => format!("the next message will get UID {n}"),
            Code::Unseen(n) => format!("message {n} is the first unseen one"),
            Code::PermanentFlags(f) => format!("flags the client can change permanently: {}", f.join(" ")),
            Code::BadCharset(_) => "the search used a character set the server does not support".into(),
            Code::Closed => "the previously selected mailbox is now closed".into(),
            Code::Unavailable => "a server subsystem is temporarily unavailable; try again later (RFC 5530)".into(),
            Code::AuthenticationFailed => {
                "authentication failed: wrong user name or password, or the account cannot log in here (RFC 5530)".into()
            }
            Code::AuthorizationFailed => "authenticated, but not allowed to act as that user (RFC 5530)".into(),
            Code::Expired => "the password or account has expired (RFC 5530)".into(),
            Code::PrivacyRequired => "the server requires TLS before this command (RFC 5530)".into(),
            Code::ContactAdmin => "the account needs an administrator's attention (RFC 5530)".into(),
            Code::NoPerm => "the user has no permission for that mailbox (RFC 5530)".into(),
            Code::InUse => "the mailbox is in use by another session (RFC 5530)".into(),
            Code::ExpungeIssued => "some requested messages were expunged (RFC 5530)".into(),
            Code::Corruption => "the server found corrupted data (RFC 5530)".into(),
            Code::ServerBug => "the server hit an internal bug (RFC 5530)".into(),
            Code::ClientBug => "the server thinks the client misbehaved (RFC 5530)".into(),
            Code::Cannot => "the operation can never succeed on this server (RFC 5530)".into(),
            Code::Limit => "a server limit was reached (RFC 5530)".into(),
            Code::OverQuota => "the user is over quota (RFC 5530)".into(),
            Code::AlreadyExists => "the mailbox already exists (RFC 5530)".into(),
            Code::Nonexistent => "the mailbox does not exist (RFC 5530)".into(),
            Code::Other { .. } if self.is_referral_without_url() => "REFERRAL with no URL: the server says the \
                 user belongs elsewhere but names no server (RFC 2221 and 2193 want at least one IMAP URL)"
                .into(),
            Code::Other { name, .. } => format!("{name}: a code imapref does not know; shown verbatim"),
        }
    }

    /// True for `[REFERRAL]` with nothing after it: a referral that names no server.
    pub fn is_referral_without_url(&self) -> bool {
        matches!(self, Code::Other { name, args } if name.eq_ignore_ascii_case("REFERRAL")
            && args.as_deref().is_none_or(|a| a.trim().is_empty()))
    }

    /// The referral URLs when this is a REFERRAL code.
    pub fn referral_urls(&self) -> Option<&[ReferralUrl]> {
        match self {
            Code::Referral(urls) => Some(urls),
            _ => None,
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_string).collect()
}

fn paren_words(text: &str) -> Vec<String> {
    words(text.trim().trim_start_matches('(').trim_end_matches(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_in_any_case_with_several_urls() {
        let code = Code::parse(
            "referral IMAP://user;AUTH=*@SERVER2/REMOTE IMAP://user;AUTH=*@SERVER3/REMOTE",
        );
        let urls = code.referral_urls().expect("a referral");
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[1].raw, "IMAP://user;AUTH=*@SERVER3/REMOTE");
        assert!(urls.iter().all(|u| u.url.is_some()));
    }

    #[test]
    fn referral_with_a_bad_url_keeps_it_with_a_reason() {
        let code = Code::parse("REFERRAL http://example.com/");
        let urls = code.referral_urls().expect("a referral");
        assert!(urls[0].url.is_none());
        assert!(urls[0].error.is_some());
        assert_eq!(urls[0].raw, "http://example.com/");
    }

    #[test]
    fn numbers_and_lists() {
        assert_eq!(
            Code::parse("UIDVALIDITY 1200000001"),
            Code::UidValidity(1_200_000_001)
        );
        assert_eq!(
            Code::parse("PERMANENTFLAGS (\\Answered \\Seen \\*)"),
            Code::PermanentFlags(vec!["\\Answered".into(), "\\Seen".into(), "\\*".into()])
        );
        assert_eq!(Code::parse("READ-WRITE"), Code::ReadWrite);
        assert_eq!(
            Code::parse("AUTHENTICATIONFAILED"),
            Code::AuthenticationFailed
        );
        assert_eq!(Code::parse("nonexistent"), Code::Nonexistent);
    }

    #[test]
    fn unknown_and_malformed_codes_are_kept_verbatim() {
        assert_eq!(
            Code::parse("MAILBOXID (xdh10l0bepybux8uy49inemu)"),
            Code::Other {
                name: "MAILBOXID".into(),
                args: Some("(xdh10l0bepybux8uy49inemu)".into())
            }
        );
        assert_eq!(
            Code::parse("UIDVALIDITY abc"),
            Code::Other {
                name: "UIDVALIDITY".into(),
                args: Some("abc".into())
            }
        );
        assert_eq!(
            Code::parse("REFERRAL"),
            Code::Other {
                name: "REFERRAL".into(),
                args: None
            }
        );
    }

    /// Every code imapref knows, as sent and as parsed: RFC 3501/9051, RFC 7162's CLOSED and all 17 of RFC 5530.
    fn every_known_code() -> Vec<(&'static str, Code)> {
        vec![
            ("ALERT", Code::Alert),
            ("PARSE", Code::Parse),
            ("READ-ONLY", Code::ReadOnly),
            ("READ-WRITE", Code::ReadWrite),
            ("TRYCREATE", Code::TryCreate),
            ("UIDVALIDITY 7", Code::UidValidity(7)),
            ("UIDNEXT 8", Code::UidNext(8)),
            ("UNSEEN 9", Code::Unseen(9)),
            (
                "PERMANENTFLAGS (\\Seen)",
                Code::PermanentFlags(vec!["\\Seen".into()]),
            ),
            ("BADCHARSET (UTF-8)", Code::BadCharset(vec!["UTF-8".into()])),
            ("BADCHARSET", Code::BadCharset(vec![])),
            (
                "CAPABILITY IMAP4rev1 IDLE",
                Code::Capability(vec!["IMAP4rev1".into(), "IDLE".into()]),
            ),
            ("CLOSED", Code::Closed),
            // RFC 5530, section 3, in its order.
            ("UNAVAILABLE", Code::Unavailable),
            ("AUTHENTICATIONFAILED", Code::AuthenticationFailed),
            ("AUTHORIZATIONFAILED", Code::AuthorizationFailed),
            ("EXPIRED", Code::Expired),
            ("PRIVACYREQUIRED", Code::PrivacyRequired),
            ("CONTACTADMIN", Code::ContactAdmin),
            ("NOPERM", Code::NoPerm),
            ("INUSE", Code::InUse),
            ("EXPUNGEISSUED", Code::ExpungeIssued),
            ("CORRUPTION", Code::Corruption),
            ("SERVERBUG", Code::ServerBug),
            ("CLIENTBUG", Code::ClientBug),
            ("CANNOT", Code::Cannot),
            ("LIMIT", Code::Limit),
            ("OVERQUOTA", Code::OverQuota),
            ("ALREADYEXISTS", Code::AlreadyExists),
            ("NONEXISTENT", Code::Nonexistent),
        ]
    }

    #[test]
    fn every_rfc_5530_code_and_every_base_code_is_parsed() {
        let all = every_known_code();
        let rfc5530 = all
            .iter()
            .filter(|(_, c)| c.meaning().contains("(RFC 5530)"))
            .count();
        assert_eq!(rfc5530, 17, "RFC 5530 defines 17 codes");
        let mut meanings = std::collections::HashSet::new();
        for (text, want) in &all {
            let name = text.split(' ').next().unwrap_or_default();
            assert_eq!(&Code::parse(text), want, "{text}");
            assert_eq!(
                &Code::parse(&text.to_ascii_lowercase()).name(),
                &name,
                "{text} in lower case"
            );
            assert_eq!(
                &Code::parse(&format!("  {text}  ")),
                want,
                "{text} with spaces around"
            );
            assert_eq!(want.name(), name, "{text}");
            let meaning = want.meaning();
            assert!(!meaning.contains("does not know"), "{text}: {meaning}");
            if !text.starts_with("BADCHARSET (") {
                assert!(
                    meanings.insert(meaning.clone()),
                    "{text}: the same meaning as another code: {meaning}"
                );
            }
        }
        assert_eq!(Code::parse("REFERRAL imap://h/").name(), "REFERRAL");
    }

    #[test]
    fn meanings_carry_their_numbers_and_counts() {
        assert!(Code::UidValidity(41).meaning().contains("41"));
        assert!(Code::UidNext(42).meaning().contains("UID 42"));
        assert!(Code::Unseen(43).meaning().contains("43"));
        assert!(Code::PermanentFlags(vec!["\\Seen".into(), "\\*".into()])
            .meaning()
            .ends_with("\\Seen \\*"));
        assert!(Code::Capability(vec!["A".into(), "B".into()])
            .meaning()
            .contains(" 2 "));
        let two = Code::parse("REFERRAL imap://a/ imap://b/");
        assert!(two.meaning().contains("2 servers"), "{}", two.meaning());
        let one = Code::parse("REFERRAL imap://a/");
        assert!(
            one.meaning().starts_with("a referral:"),
            "{}",
            one.meaning()
        );
        let other = Code::parse("X-FOO bar");
        assert_eq!(other.name(), "X-FOO");
        assert!(other
            .meaning()
            .starts_with("X-FOO: a code imapref does not know"));
        assert_eq!(Code::Alert.referral_urls(), None);
    }

    #[test]
    fn arguments_and_their_absence() {
        // A number code without its number, or with a bad one, is kept verbatim.
        for text in ["UIDNEXT", "UNSEEN x", "UIDVALIDITY 99999999999"] {
            assert!(matches!(Code::parse(text), Code::Other { .. }), "{text}");
        }
        assert!(matches!(Code::parse("CAPABILITY"), Code::Other { .. }));
        assert!(matches!(Code::parse("PERMANENTFLAGS"), Code::Other { .. }));
        // Several spaces between the name and its argument.
        assert_eq!(Code::parse("UIDNEXT    12"), Code::UidNext(12));
        assert_eq!(
            Code::parse("REFERRAL   imap://a/    imap://b/")
                .referral_urls()
                .map(<[_]>::len),
            Some(2)
        );
        assert_eq!(
            Code::parse("X-FOO   bar"),
            Code::Other {
                name: "X-FOO".into(),
                args: Some("bar".into())
            }
        );
        let r = ReferralUrl::parse("imap://u@h/");
        assert!(r.url.is_some() && r.error.is_none());
    }

    #[test]
    fn a_referral_with_no_url_is_named_as_such() {
        for inside in ["REFERRAL", "referral ", "REFERRAL   "] {
            let code = Code::parse(inside);
            assert!(code.is_referral_without_url(), "{inside:?}");
            assert!(
                code.meaning().starts_with("REFERRAL with no URL"),
                "{inside:?}"
            );
            assert_eq!(code.referral_urls(), None);
        }
        assert!(!Code::parse("REFERRAL imap://h/").is_referral_without_url());
        assert!(!Code::parse("XYZZY").is_referral_without_url());
        assert!(Code::parse("XYZZY").meaning().contains("does not know"));
    }
}
