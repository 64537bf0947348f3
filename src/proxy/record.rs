//! [`SessionRecord`]: one client session as the proxy logs it (one line per session, text or JSON, through
//! [`crate::render::proxy`]). It holds the login name but never the password; texts that came from a server pass
//! through the [`Redactor`](crate::secret::Redactor) before they are stored here.

use serde::Serialize;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The home server logged the user in; the session was relayed until one side closed.
    Relayed,
    /// The upstream refused the credentials (its NO, passed through to the client).
    Refused,
    /// No server could be used: refused connection, timeout, TLS failure, a server that takes no connections.
    Unavailable,
    /// The referrals loop (the same host, port and user again).
    Loop,
    /// More referrals than `--max-hops`.
    TooManyHops,
    /// A referral to a host outside the policy (`--allow-host`, the upstream's domain).
    Policy,
    /// The client logged out, or left, before logging in.
    NoLogin,
    /// The client sent nothing for the pre-login idle time.
    IdleBeforeLogin,
    /// The client's input could not be framed (over a limit), or TLS with the client failed.
    ClientError,
    /// Too many connections were open (`--max-connections`).
    TooManyConnections,
    /// The proxy was shutting down.
    Shutdown,
}

impl Outcome {
    /// The name in logs: `relayed`, `refused`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Relayed => "relayed",
            Outcome::Refused => "refused",
            Outcome::Unavailable => "unavailable",
            Outcome::Loop => "loop",
            Outcome::TooManyHops => "too-many-hops",
            Outcome::Policy => "policy",
            Outcome::NoLogin => "no-login",
            Outcome::IdleBeforeLogin => "idle-before-login",
            Outcome::ClientError => "client-error",
            Outcome::TooManyConnections => "too-many-connections",
            Outcome::Shutdown => "shutdown",
        }
    }
}

/// One session, logged when it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRecord {
    /// The client's address (`ip:port`).
    pub client: String,
    /// The login name the client gave (the last attempt), if it gave one.
    pub login: Option<String>,
    /// Login attempts the client made.
    pub attempts: u32,
    /// True when the client's connection was encrypted (STARTTLS) by the time it logged in or left.
    pub client_tls: bool,
    /// The servers connected to for the last login, in order (`host:port`): the upstream first, then each referral.
    pub hops: Vec<String>,
    /// The server that logged the user in and whose session was relayed.
    pub home: Option<String>,
    /// True when the connection to the home server was encrypted.
    pub home_tls: bool,
    /// How the session ended.
    pub outcome: Outcome,
    /// What went wrong, or what the client was told (the NO's text), in a few words.
    pub detail: Option<String>,
    /// Mailbox referrals (`NO [REFERRAL ...]` from the home server after login), passed to the client unchanged: the
    /// first URLs seen, at most [`MAX_MAILBOX_REFERRALS`].
    pub mailbox_referrals: Vec<String>,
    /// Milliseconds from the client's credentials to the answer the proxy sent it (the upstream login and every hop).
    pub login_ms: Option<f64>,
    /// Milliseconds the relay ran.
    pub relay_ms: Option<f64>,
    /// Milliseconds from accept to close.
    pub total_ms: f64,
    /// Bytes relayed from the client to the home server.
    pub bytes_up: u64,
    /// Bytes relayed from the home server to the client.
    pub bytes_down: u64,
}

/// The most mailbox referrals one record keeps.
pub const MAX_MAILBOX_REFERRALS: usize = 16;

impl SessionRecord {
    /// A record for a client that just connected.
    pub fn new(client: String) -> Self {
        SessionRecord {
            client,
            login: None,
            attempts: 0,
            client_tls: false,
            hops: Vec::new(),
            home: None,
            home_tls: false,
            outcome: Outcome::NoLogin,
            detail: None,
            mailbox_referrals: Vec::new(),
            login_ms: None,
            relay_ms: None,
            total_ms: 0.0,
            bytes_up: 0,
            bytes_down: 0,
        }
    }
}

/// Where the proxy listens, and what it proxies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listening {
    /// The bound address (`ip:port`).
    pub listen: String,
    /// The upstream (`host:port`).
    pub upstream: String,
    /// `plain`, `starttls` or `tls`, towards the upstream.
    pub upstream_tls: String,
    /// True when STARTTLS is offered to clients.
    pub starttls: bool,
}

/// Where the proxy's log goes: one call per line. The binary gives one that renders ([`crate::render::proxy::LogSink`]),
/// so the proxy itself never formats or prints.
pub trait RecordSink: Send + Sync {
    /// One session has ended.
    fn session(&self, record: &SessionRecord);
    /// The proxy listens.
    fn listening(&self, listening: &Listening);
}
