//! What a server line means: its kind, its code, a decoded referral, the known NO texts, and what a client should do
//! next. Pure: it takes parsed responses and gives an [`Explanation`] that the renderers show as text or JSON.
//!
//! - [`known_text`]: the NO texts met next to referrals ("There is no replica for that mailbox on this server", ...);
//! - [`product`]: the server product and version named by a greeting.

pub mod known_text;
pub mod product;

use serde::Serialize;

use crate::proto::code::{Code, ReferralUrl};
use crate::proto::command::redact_raw_line;
use crate::proto::response::{raw_from_line, Kind, Response, Status};
use crate::proto::url::UrlAuth;
use known_text::KnownText;
use product::Product;

/// Whether a referral is about logging in (RFC 2221) or about one mailbox (RFC 2193).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferralKind {
    /// RFC 2221: sent on LOGIN or AUTHENTICATE, or in a BYE greeting; the user's home server is elsewhere.
    Login,
    /// RFC 2193: sent on SELECT, EXAMINE, STATUS, ...; that mailbox lives elsewhere.
    Mailbox,
}

/// One referral URL, decoded for a reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralTarget {
    /// The URL as sent.
    pub raw: String,
    /// The decoded user; `None` when the URL names none, which means "keep the name you logged in with".
    pub user: Option<String>,
    /// `*` (any mechanism), a mechanism name, or `None` when the URL names none (which also means any).
    pub mechanism: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The port (143 when the URL names none).
    pub port: Option<u16>,
    /// The decoded mailbox, if any.
    pub mailbox: Option<String>,
    /// Why the URL cannot be followed, when it does not parse.
    pub error: Option<String>,
}

impl ReferralTarget {
    /// Decodes one URL of a REFERRAL code.
    pub fn from_url(url: &ReferralUrl) -> Self {
        match &url.url {
            Some(parsed) => ReferralTarget {
                raw: url.raw.clone(),
                user: parsed.user.clone().filter(|u| !u.is_empty()),
                mechanism: parsed.auth.as_ref().map(|a| match a {
                    UrlAuth::Any => "*".to_string(),
                    UrlAuth::Mechanism(m) => m.clone(),
                }),
                host: Some(parsed.host.clone()),
                port: Some(parsed.port_or_default()),
                mailbox: parsed.mailbox.clone(),
                error: None,
            },
            None => ReferralTarget {
                raw: url.raw.clone(),
                user: None,
                mechanism: None,
                host: None,
                port: None,
                mailbox: None,
                error: url.error.clone(),
            },
        }
    }
}

/// What a REFERRAL code says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralExplanation {
    /// Login or mailbox referral.
    pub kind: ReferralKind,
    /// Whether the client is logged in after this line: `Some(true)` for `OK [REFERRAL]`, `Some(false)` for a NO on
    /// login or a BYE greeting, `None` for a mailbox referral (it depends on the earlier login).
    pub logged_in: Option<bool>,
    /// The URLs, most preferred first.
    pub targets: Vec<ReferralTarget>,
    /// What a client should do next.
    pub next_step: String,
}

/// The explanation of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The line as given (a client line has its password replaced by `***`).
    pub line: String,
    /// The line's kind, e.g. `greeting`, `tagged completion`, `untagged status`, `capability data`.
    pub kind: String,
    /// The tag of a tagged completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The status word, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// What the line says, in one sentence.
    pub summary: String,
    /// The response code's name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the code means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_meaning: Option<String>,
    /// The referral, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralExplanation>,
    /// A recognised server text (such as "no replica").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<KnownText>,
    /// The server product, for a greeting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
}

/// Explains a sequence of lines, such as a server log or a transcript. `S: ` and `C: ` prefixes are understood (client
/// lines are explained as commands, with passwords redacted); empty lines and `#` comments are skipped. The first server
/// line that is an untagged OK, PREAUTH or BYE is taken as the greeting.
pub fn explain_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Explanation> {
    let mut seen_server_line = false;
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(command) = line.strip_prefix("C: ") {
            out.push(explain_client_line(command));
            continue;
        }
        let server = line.strip_prefix("S: ").unwrap_or(line);
        out.push(explain_line(server, !seen_server_line));
        seen_server_line = true;
    }
    out
}

/// Explains one server line. `first` says whether it is the first line of the connection (a greeting).
pub fn explain_line(line: &str, first: bool) -> Explanation {
    let raw = raw_from_line(line.as_bytes());
    let response = Response::parse(raw.clone());
    let greeting = looks_like_greeting(&response, first);
    let response = if greeting {
        Response::parse_greeting(raw)
    } else {
        response
    };
    explain_response(&response)
}

/// Explains a parsed response.
pub fn explain_response(response: &Response) -> Explanation {
    let mut e = Explanation {
        line: response.first_line(),
        kind: String::new(),
        tag: response.tag().map(str::to_string),
        status: response.status(),
        summary: String::new(),
        code: response.code().map(|c| c.name().to_string()),
        code_meaning: response.code().map(Code::meaning),
        referral: None,
        diagnosis: response.text().and_then(known_text::recognise),
        product: None,
    };
    let (kind, summary) = match &response.kind {
        Kind::Greeting { status, text, .. } => {
            e.product = product::recognise(text);
            let named = e.product.as_ref().map(|p| match &p.version {
                Some(v) => format!(" ({} {v})", p.name),
                None => format!(" ({})", p.name),
            });
            let named = named.unwrap_or_default();
            let summary = match status {
                Status::Ok => format!("The server's greeting{named}: it is ready for LOGIN."),
                Status::Preauth => format!(
                    "The server's greeting{named}: the connection is already authenticated."
                ),
                _ => format!(
                    "The server's greeting{named}: it refuses the connection and will close it."
                ),
            };
            ("greeting", summary)
        }
        Kind::Status {
            tag: Some(tag),
            status,
            text,
            ..
        } => {
            let s = match status {
                Status::Ok => format!("The command tagged `{tag}` succeeded: {text}"),
                Status::No => format!("The command tagged `{tag}` failed: {text}"),
                _ => format!(
                    "The server rejected the command tagged `{tag}` as a protocol error: {text}"
                ),
            };
            ("tagged completion", s)
        }
        Kind::Status {
            tag: None,
            status,
            text,
            ..
        } => {
            let s = match status {
                Status::Bye => format!("The server is closing the connection: {text}"),
                Status::Ok => format!("Information from the server: {text}"),
                Status::No => format!("A warning from the server: {text}"),
                _ => format!("The server reports a protocol error: {text}"),
            };
            ("untagged status", s)
        }
        Kind::Capability { capabilities } => ("capability data", capability_summary(capabilities)),
        Kind::List {
            list,
            mailbox,
            attributes,
            ..
        } => {
            let remote = attributes
                .iter()
                .any(|a| a.eq_ignore_ascii_case("\\Remote"));
            let s = format!(
                "A {} entry for mailbox `{mailbox}`{}.",
                if *list == crate::proto::response::ListKind::List {
                    "LIST"
                } else {
                    "LSUB"
                },
                if remote {
                    ", which lives on another server (\\Remote)"
                } else {
                    ""
                }
            );
            ("list data", s)
        }
        Kind::Flags { flags } => (
            "flags data",
            format!("The flags the mailbox uses: {}.", flags.join(" ")),
        ),
        Kind::Exists { count } => (
            "exists data",
            format!("The mailbox holds {count} messages."),
        ),
        Kind::Recent { count } => ("recent data", format!("{count} messages are recent.")),
        Kind::Expunge { seq } => ("expunge data", format!("Message {seq} was expunged.")),
        Kind::Fetch { seq } => ("fetch data", format!("Data about message {seq}.")),
        Kind::Data { name } => ("untagged data", format!("Untagged {name} data.")),
        Kind::Continuation { .. } => (
            "continuation",
            "The server waits for the client to go on (a literal or a SASL step).".into(),
        ),
        Kind::Unparsed { reason } => (
            "unparsed",
            format!("Not an IMAP response imapref understands: {reason}."),
        ),
    };
    e.kind = kind.to_string();
    e.summary = summary;
    e.referral = explain_referral(response);
    e
}

/// The capabilities that matter for referrals and logins: LOGIN-REFERRALS, MAILBOX-REFERRALS, STARTTLS,
/// LOGINDISABLED and the AUTH= mechanisms, in the server's order.
pub fn notable_capabilities(capabilities: &[String]) -> Vec<&str> {
    capabilities
        .iter()
        .map(String::as_str)
        .filter(|c| {
            let u = c.to_ascii_uppercase();
            matches!(
                u.as_str(),
                "LOGIN-REFERRALS" | "MAILBOX-REFERRALS" | "STARTTLS" | "LOGINDISABLED"
            ) || u.starts_with("AUTH=")
        })
        .collect()
}

/// `12 capabilities; notable: LOGIN-REFERRALS STARTTLS AUTH=PLAIN`, as the probe and the shell show them.
pub fn capability_line(capabilities: &[String]) -> String {
    let notable = notable_capabilities(capabilities);
    format!(
        "{} capabilities; notable: {}",
        capabilities.len(),
        if notable.is_empty() {
            "none".to_string()
        } else {
            notable.join(" ")
        }
    )
}

fn capability_summary(capabilities: &[String]) -> String {
    let notes: Vec<String> = notable_capabilities(capabilities)
        .into_iter()
        .map(|cap| match cap.to_ascii_uppercase().as_str() {
            "LOGIN-REFERRALS" => "login referrals (RFC 2221)".to_string(),
            "MAILBOX-REFERRALS" => "mailbox referrals (RFC 2193)".to_string(),
            "LOGINDISABLED" => "LOGIN disabled until TLS".to_string(),
            _ => cap.to_string(),
        })
        .collect();
    format!(
        "The server's capabilities; notable: {}.",
        if notes.is_empty() {
            "none".into()
        } else {
            notes.join(", ")
        }
    )
}

/// Whether a line is a greeting: the first line of a connection, or one that reads like one.
fn looks_like_greeting(response: &Response, first: bool) -> bool {
    let Kind::Status {
        tag: None,
        status,
        code,
        text,
    } = &response.kind
    else {
        return false;
    };
    match status {
        Status::Preauth => true,
        Status::Bye => first || matches!(code, Some(Code::Referral(_))),
        Status::Ok => {
            let lower = text.to_ascii_lowercase();
            matches!(code, None | Some(Code::Capability(_)))
                && (first || lower.contains("ready") || lower.contains("imap4"))
        }
        _ => false,
    }
}

/// Classifies and decodes a REFERRAL code from the line alone.
fn explain_referral(response: &Response) -> Option<ReferralExplanation> {
    let urls = response.code()?.referral_urls()?;
    let targets: Vec<ReferralTarget> = urls.iter().map(ReferralTarget::from_url).collect();
    // A NO [REFERRAL] naming a mailbox (or several replicas) is a mailbox referral; one to a bare server is a login one.
    let names_mailbox = targets.iter().any(|t| t.mailbox.is_some());
    let where_to = urls.first().map_or_else(String::new, |u| {
        u.url
            .as_ref()
            .map_or_else(|| u.raw.clone(), |url| url.authority())
    });
    let (kind, logged_in, next_step) = match (&response.kind, response.status()) {
        (Kind::Greeting { .. }, _) | (Kind::Status { tag: None, .. }, Some(Status::Bye)) => (
            ReferralKind::Login,
            Some(false),
            format!("This server takes no connections: connect to {where_to} instead and log in there."),
        ),
        (_, Some(Status::Ok)) => (
            ReferralKind::Login,
            Some(true),
            format!(
                "The user is logged in here, but their own mailboxes (the INBOX) are on {where_to}. SELECT INBOX here \
                 will fail (Exchange 5.5: \"There is no replica for that mailbox on this server.\"): log out and log \
                 in on {where_to}."
            ),
        ),
        (_, Some(Status::No)) if targets.len() > 1 || names_mailbox => (
            ReferralKind::Mailbox,
            None,
            format!(
                "That mailbox lives on another server: open {where_to} and select it there{}.",
                if targets.len() > 1 { ", or try the other replicas in order" } else { "" }
            ),
        ),
        _ => (
            ReferralKind::Login,
            Some(false),
            format!("Not logged in: this server does not serve the user. Log in on {where_to} instead."),
        ),
    };
    Some(ReferralExplanation {
        kind,
        logged_in,
        targets,
        next_step,
    })
}

fn explain_client_line(line: &str) -> Explanation {
    let shown = redact_raw_line(line);
    let mut words = shown.split_ascii_whitespace();
    let tag = words.next().unwrap_or_default().to_string();
    let name = words.next().unwrap_or_default().to_ascii_uppercase();
    Explanation {
        line: shown.clone(),
        kind: "client command".into(),
        tag: Some(tag),
        status: None,
        summary: format!("The client sent {name}."),
        code: None,
        code_meaning: None,
        referral: None,
        diagnosis: None,
        product: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_login_referral() {
        let e = explain_line("? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed", false);
        assert_eq!(e.kind, "tagged completion");
        let r = e.referral.expect("a referral");
        assert_eq!(r.kind, ReferralKind::Login);
        assert_eq!(r.logged_in, Some(true));
        assert_eq!(r.targets[0].user.as_deref(), Some("redmond/reedl/imapf"));
        assert_eq!(r.targets[0].mechanism.as_deref(), Some("*"));
        assert_eq!(r.targets[0].host.as_deref(), Some("reedlm1.reedlm1.com"));
        assert_eq!(r.targets[0].port, Some(143));
        assert!(r.next_step.contains("reedlm1.reedlm1.com:143"));
    }

    #[test]
    fn dovecot_and_cyrus_referrals() {
        let e = explain_line(
            "a NO [REFERRAL imap://user1;AUTH=PLAIN@127.0.0.2:14300/] Try this server instead.",
            false,
        );
        let r = e.referral.expect("a referral");
        assert_eq!((r.kind, r.logged_in), (ReferralKind::Login, Some(false)));
        assert_eq!(e.diagnosis.map(|d| d.id), Some("moved-user"));
        let e = explain_line(
            "s2 NO [REFERRAL imap://;AUTH=*@127.0.0.2:14300/INBOX] Remote mailbox.",
            false,
        );
        let r = e.referral.expect("a referral");
        assert_eq!(r.kind, ReferralKind::Mailbox);
        assert_eq!(r.targets[0].user, None);
        assert_eq!(r.targets[0].mailbox.as_deref(), Some("INBOX"));
    }

    #[test]
    fn no_replica_is_diagnosed() {
        let e = explain_line(
            "? NO There is no replica for that mailbox on this server.",
            false,
        );
        assert_eq!(e.diagnosis.map(|d| d.id), Some("no-replica"));
        assert!(e.referral.is_none());
    }

    #[test]
    fn client_lines_are_redacted() {
        let e = explain_lines(["C: ? login DOMname/UserN/AliasN PASSword"]);
        assert!(!e[0].line.contains("PASSword"), "{}", e[0].line);
    }

    #[test]
    fn an_ipv6_referral_target_is_written_with_brackets() {
        let e = explain_line(
            "a NO [REFERRAL imap://u@[::1]:1143/] Try this server instead.",
            false,
        );
        let r = e.referral.expect("a referral");
        assert!(r.next_step.contains("[::1]:1143"), "{}", r.next_step);
    }
}
