//! What a server line means: its kind, its code, a decoded referral, the known NO texts, and what a client should do
//! next. Pure: it takes parsed responses and gives an [`Explanation`] that the renderers show as text or JSON.
//!
//! - [`known_text`]: the NO texts met next to referrals ("There is no replica for that mailbox on this server", ...);
//! - [`product`]: the server product and version named by a greeting.

pub mod known_text;
pub mod product;

use serde::Serialize;

use crate::proto::code::{Code, ReferralUrl};
use crate::proto::command::{line_has_tag, secret_start};
use crate::proto::response::{raw_from_line, Kind, Response, Status};
use crate::proto::url::UrlAuth;
use crate::secret::REDACTED;
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

/// A login name of Exchange 5.5's form `DOMAIN/user/alias` (or with `\\`), broken down. See [`EXCHANGE_FORM_WHY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeUser {
    /// The Windows NT domain that holds the account (`redmond`).
    pub nt_domain: String,
    /// The NT account (domain user) that authenticates (`reedl`).
    pub domain_user: String,
    /// The Exchange alias: which mailbox that account opens (`imapf`).
    pub alias: String,
}

/// Why Exchange 5.5 wants the three-part login name.
pub const EXCHANGE_FORM_WHY: &str = "Exchange 5.5 checks the password against a Windows NT domain account, and one NT \
     account may own several mailboxes: the NT domain and the domain user say who logs in, the alias says which mailbox \
     is opened. Without the alias (or with the wrong domain) the login fails or lands on the wrong mailbox.";

impl ExchangeUser {
    /// Breaks down `DOMAIN/user/alias` (or `DOMAIN\\user\\alias`): three non-empty parts. Anything else is `None`.
    pub fn parse(user: &str) -> Option<ExchangeUser> {
        let sep = if user.contains('/') { '/' } else { '\\' };
        let mut parts = user.split(sep);
        let (Some(d), Some(u), Some(a), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if [d, u, a]
            .iter()
            .any(|p| p.trim().is_empty() || p.contains(['/', '\\']))
        {
            return None;
        }
        Some(ExchangeUser {
            nt_domain: d.to_string(),
            domain_user: u.to_string(),
            alias: a.to_string(),
        })
    }
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
    /// The login name of a client LOGIN, or the user of the first referral URL, broken down, when it has Exchange
    /// 5.5's `DOMAIN/user/alias` form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_user: Option<ExchangeUser>,
    /// What to do next, when earlier lines of the same log tell more than this line alone (the "no replica" line after a
    /// login referral names the server that referral pointed to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

/// Explains a sequence of lines, such as a server log or a transcript. `S: ` and `C: ` prefixes are understood; empty
/// lines and `#` comments are skipped. The first server line that is an untagged OK, PREAUTH or BYE is taken as the
/// greeting.
///
/// Client lines are recognised with or without `C: ` (`a3 LOGIN jdoe hunter2`, the KB's `? login DOMname/UserN/AliasN
/// PASSword`, `AUTHENTICATE PLAIN ...`) and explained as commands with their secrets replaced by `***`: the password
/// of LOGIN (quoted, or a literal on the lines that follow), the initial response of AUTHENTICATE and every SASL line
/// the client sends after it, until the command's tagged completion.
///
/// Lines are linked: the "no replica" line after a login referral gets advice naming the server that referral named.
pub fn explain_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Explanation> {
    let mut log = LogReader::default();
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(log.explain(line, out.len() + 1));
    }
    out
}

/// What reading a log has learnt so far.
#[derive(Default)]
struct LogReader {
    seen_server_line: bool,
    /// The client command so far (lines joined by CRLF) when its last line ended in a literal marker.
    pending: Option<String>,
    /// The client sent AUTHENTICATE: its next lines are SASL responses, until the tagged completion.
    sasl: bool,
    /// The tag of the client command still being sent (literal data or SASL lines to come).
    open_tag: String,
    /// The client waits for a `+` continuation request (a synchronizing literal, or a SASL step): a `+` line is the
    /// server's only then; otherwise it is the client's data (a password may start with `+`).
    expect_plus: bool,
    /// The last login referral: (its number among the explained lines, where it points, the user it names).
    referral: Option<(usize, String, Option<String>)>,
}

impl LogReader {
    fn explain(&mut self, line: &str, number: usize) -> Explanation {
        if let Some(command) = line.strip_prefix("C: ").or_else(|| line.strip_prefix("C:")) {
            return self.client(command);
        }
        if let Some(server) = line.strip_prefix("S: ").or_else(|| line.strip_prefix("S:")) {
            return self.server(server, number);
        }
        let continuing = self.sasl || self.pending.is_some();
        if continuing {
            if self.expect_plus && line.starts_with('+') {
                self.expect_plus = false;
                return self.server(line, number);
            }
            // A SASL response is one base64 word: a tagged command with another tag means the exchange ended in a
            // part of the log that is not here. Literal data, though, may look like anything.
            let new_command = self.pending.is_none()
                && is_client_command(line)
                && line.split_ascii_whitespace().next() != Some(self.open_tag.as_str());
            if new_command {
                self.sasl = false;
                return self.client(line);
            }
            if !ends_open_command(line, &self.open_tag) {
                return self.client(line);
            }
        } else if is_client_command(line) {
            return self.client(line);
        }
        self.server(line, number)
    }

    fn server(&mut self, line: &str, number: usize) -> Explanation {
        let mut e = explain_line(line, !self.seen_server_line);
        self.seen_server_line = true;
        if e.tag.is_some() && e.status.is_some() {
            // A tagged completion ends the command: no more literal data or SASL lines from the client.
            self.sasl = false;
            self.pending = None;
        }
        if let Some(r) = &e.referral {
            if r.kind == ReferralKind::Login {
                if let Some(t) = r.targets.first().filter(|t| t.error.is_none()) {
                    let place = match (&t.host, t.port) {
                        (Some(h), Some(p)) => crate::transport::Endpoint::new(h, p).to_string(),
                        _ => t.raw.clone(),
                    };
                    self.referral = Some((number, place, t.user.clone()));
                }
            }
        }
        if let (Some(d), Some((at, place, user))) = (&e.diagnosis, &self.referral) {
            if d.id == known_text::NO_REPLICA.id {
                let as_user = user
                    .as_deref()
                    .map(|u| format!(" as {u}"))
                    .unwrap_or_default();
                e.next_step = Some(format!(
                    "Line {at} referred this login to {place}: that is the user's home server. Log out here, log in \
                     on {place}{as_user} and select the mailbox there (imapref probe follows the referral)."
                ));
            }
        }
        e
    }

    fn client(&mut self, line: &str) -> Explanation {
        if self.sasl {
            self.expect_plus = true;
            let shown = if line.trim() == "*" { "*" } else { REDACTED };
            return client_explanation(
                shown,
                "client continuation",
                if shown == "*" {
                    "The client cancels the authentication exchange.".into()
                } else {
                    "The client's SASL response to the server's challenge (hidden: it carries the credentials).".into()
                },
            );
        }
        let (joined, from) = match self.pending.take() {
            Some(before) => {
                let from = before.len() + 2;
                (format!("{before}\r\n{line}"), from)
            }
            None => (line.to_string(), 0),
        };
        let shown = match secret_start(&joined) {
            Some(at) if at <= from => REDACTED.to_string(),
            Some(at) => format!("{}{REDACTED}", joined.get(from..at).unwrap_or_default()),
            None => line.to_string(),
        };
        self.expect_plus = false;
        if let Some(sync) = literal_marker(line) {
            self.pending = Some(joined.clone());
            self.expect_plus = sync;
        }
        if from == 0 {
            self.open_tag = line
                .split_ascii_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
        let mut words = command_words(&joined);
        let first = words.next().unwrap_or_default();
        let (name, args): (String, Vec<&str>) = if is_secret_command(first) {
            (first.to_ascii_uppercase(), words.collect())
        } else {
            let name = words.next().unwrap_or_default().to_ascii_uppercase();
            (name, words.collect())
        };
        if from > 0 {
            return client_explanation(
                &shown,
                "client continuation",
                format!(
                    "More of the client's {name} command (literal data; a password is hidden)."
                ),
            );
        }
        if name == "AUTHENTICATE" {
            self.sasl = true;
            self.expect_plus = true;
        }
        let mut e =
            client_explanation(&shown, "client command", format!("The client sent {name}."));
        if !is_secret_command(first) {
            e.tag = Some(first.to_string());
        }
        if name == "LOGIN" {
            e.exchange_user = args.first().and_then(|u| ExchangeUser::parse(&unquote(u)));
        }
        e
    }
}

/// The words of a client command, with a literal's data (after its CRLF) as one word.
fn command_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\r', '\n'])
        .flat_map(str::split_ascii_whitespace)
        .filter(|w| !w.starts_with('{'))
}

fn unquote(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => word.to_string(),
    }
}

fn is_secret_command(word: &str) -> bool {
    word.eq_ignore_ascii_case("LOGIN") || word.eq_ignore_ascii_case("AUTHENTICATE")
}

/// A client command as pasted without `C: `: a tag and a command name (`a3 LOGIN ...`, `? login ...`), or LOGIN or
/// AUTHENTICATE with no tag.
fn is_client_command(line: &str) -> bool {
    let first = line.split_ascii_whitespace().next().unwrap_or_default();
    line_has_tag(line) || is_secret_command(first)
}

/// The tagged completion (its tag and a status word) of a client command still being sent. Anything else but an
/// awaited `+` is the client's: literal data (a password may start with `*` or `+`, or hold `OK`), or a SASL response
/// (`*` cancels).
fn ends_open_command(line: &str, tag: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    first == tag
        && words.next().is_some_and(|w| {
            ["OK", "NO", "BAD", "BYE"]
                .iter()
                .any(|s| w.eq_ignore_ascii_case(s))
        })
}

/// When a line ends in `{N}` or `{N+}` (the client sends literal data on the next line): whether the literal is
/// synchronizing (the client first waits for `+`).
fn literal_marker(line: &str) -> Option<bool> {
    let inner = line.trim_end().strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let marker = &inner[open + 1..];
    let digits = marker.trim_end_matches(['+', '-']);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits.len() == marker.len())
}

fn client_explanation(shown: &str, kind: &str, summary: String) -> Explanation {
    Explanation {
        line: shown.to_string(),
        kind: kind.into(),
        tag: None,
        status: None,
        summary,
        code: None,
        code_meaning: None,
        referral: None,
        diagnosis: None,
        product: None,
        exchange_user: None,
        next_step: None,
    }
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
        exchange_user: None,
        next_step: None,
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
            format!(
                "The mailbox holds {}.",
                crate::words::count(*count, "message", "messages")
            ),
        ),
        Kind::Recent { count } => (
            "recent data",
            if *count == 1 {
                "1 message is recent.".to_string()
            } else {
                format!("{count} messages are recent.")
            },
        ),
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
    e.exchange_user = e.referral.as_ref().and_then(|r| {
        r.targets
            .iter()
            .find_map(|t| t.user.as_deref().and_then(ExchangeUser::parse))
    });
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

    fn shown(lines: &[&str]) -> Vec<String> {
        explain_lines(lines.iter().copied())
            .into_iter()
            .map(|e| e.line)
            .collect()
    }

    #[test]
    fn client_lines_without_a_prefix_are_recognised_and_masked() {
        let e = explain_lines([
            "a3 LOGIN jdoe hunter2",
            "? login DOMname/UserN/AliasN PASSword",
        ]);
        assert_eq!(e[0].line, "a3 LOGIN jdoe ***");
        assert_eq!(
            (e[0].kind.as_str(), e[0].tag.as_deref()),
            ("client command", Some("a3"))
        );
        assert_eq!(e[1].line, "? login DOMname/UserN/AliasN ***");
        assert_eq!(
            shown(&["C:a1 LOGIN \"jdoe\" \"hun \\\"ter2\"", "LOGIN jdoe hunter2"]),
            ["a1 LOGIN \"jdoe\" ***", "LOGIN jdoe ***"]
        );
        // A server line is still a server line.
        let e = explain_lines(["* OK IMAP4rev1 ready", "a3 NO LOGIN failed"]);
        assert_eq!(e[1].kind, "tagged completion");
    }

    #[test]
    fn literal_passwords_are_masked_on_the_lines_that_carry_them() {
        let log = [
            "a1 LOGIN {4}",
            "+ Ready for literal data",
            "jdoe {9}",
            "+ Ready",
            "+hunter2*",
            "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
            "a2 LOGIN jdoe {7+}",
            "* OK hunter2",
            "a2 OK done",
        ];
        let e = explain_lines(log);
        let lines: Vec<&str> = e.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "a1 LOGIN {4}",
                "+ Ready for literal data",
                "jdoe ***",
                "+ Ready",
                "***",
                "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
                "a2 LOGIN jdoe ***",
                "***",
                "a2 OK done"
            ]
        );
        assert_eq!(e[4].kind, "client continuation");
        assert_eq!(e[5].kind, "tagged completion");
    }

    #[test]
    fn authenticate_and_its_continuation_lines_are_masked() {
        let e = explain_lines([
            "C: a1 AUTHENTICATE PLAIN",
            "S: +",
            "C: AGpkb2UAaHVudGVyMg==",
            "S: a1 OK done",
            "a2 AUTHENTICATE PLAIN AGpkb2UAaHVudGVyMg==",
            "a3 authenticate CRAM-MD5",
            "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw",
            "+ more",
            "*",
            "a3 BAD cancelled",
            "a4 SELECT INBOX",
        ]);
        let lines: Vec<&str> = e.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "a1 AUTHENTICATE PLAIN",
                "+",
                "***",
                "a1 OK done",
                "a2 AUTHENTICATE PLAIN ***",
                "a3 authenticate CRAM-MD5",
                "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
                "***",
                "+ more",
                "*",
                "a3 BAD cancelled",
                "a4 SELECT INBOX"
            ]
        );
        assert_eq!(e[1].kind, "continuation");
        assert_eq!(e[2].kind, "client continuation");
        assert!(e[9].summary.contains("cancels"), "{}", e[9].summary);
        assert_eq!(e[11].kind, "client command");
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert!(
            !json.contains("AGpkb2UAaHVudGVyMg") && !json.contains("dGltIGI5"),
            "{json}"
        );
    }

    #[test]
    fn the_no_replica_line_names_the_server_the_login_referral_named() {
        let e = explain_lines([
            "* OK Microsoft Exchange IMAP4rev1 server version 5.5.2448.8 (reedlm4) ready",
            "? login redmond/reedl/imapf PASSword",
            "? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
            "? select inbox",
            "? NO There is no replica for that mailbox on this server.",
        ]);
        assert_eq!(e[1].line, "? login redmond/reedl/imapf ***");
        let next = e[4].next_step.as_deref().unwrap_or_default();
        assert!(
            next.contains("Line 3") && next.contains("reedlm1.reedlm1.com:143"),
            "{next}"
        );
        assert!(next.contains("as redmond/reedl/imapf"), "{next}");
        // Alone, the line has only the general advice.
        let alone = explain_lines(["? NO There is no replica for that mailbox on this server."]);
        assert_eq!(alone[0].next_step, None);
    }

    #[test]
    fn the_exchange_form_is_broken_down() {
        let e = explain_lines([
            "? login redmond/reedl/imapf PASSword",
            "? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
        ]);
        let want = Some(ExchangeUser {
            nt_domain: "redmond".into(),
            domain_user: "reedl".into(),
            alias: "imapf".into(),
        });
        assert_eq!(e[0].exchange_user, want);
        assert_eq!(e[1].exchange_user, want);
        assert_eq!(
            ExchangeUser::parse("DOM\\user\\alias").map(|x| x.alias),
            Some("alias".into())
        );
        for not in ["jdoe", "a/b", "a//c", "/b/c", "a/b/c/d", "a/b\\c/d"] {
            assert_eq!(ExchangeUser::parse(not), None, "{not}");
        }
        let e = explain_lines(["a1 LOGIN jdoe pw"]);
        assert_eq!(e[0].exchange_user, None);
    }

    #[test]
    fn nothing_is_explained_from_nothing() {
        assert!(explain_lines(["", "  ", "# a comment"]).is_empty());
    }
}
