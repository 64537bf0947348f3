//! `imapref proxy`: the front end KB Q217388 promised, for clients that do not follow referrals (Outlook Express,
//! curl, Python's imaplib). It greets the client itself, takes its credentials before login, logs in upstream through
//! the engine, follows login referrals under the referral policy until a server logs the user in, answers the client
//! with that home server's tagged OK and capabilities, and from then on relays the bytes both ways.
//!
//! ```text
//!  client ──TCP/STARTTLS──▶ front (pre-login machine) ──credentials──▶ upstream (engine + follower)
//!     ▲                                                                  │ LOGIN, NO [REFERRAL] → next hop …
//!     └────────── tagged OK [CAPABILITY …] of the home server ◀──────────┘ home server logged in
//!  client ◀══════════════ relay (bytes both ways, idle timeout, mailbox referrals logged) ══════════════▶ home
//! ```
//!
//! - [`listener`]: the listening socket (loopback unless allowed), the connection limit, shutdown;
//! - [`shared`]: what every session shares (persona, TLS acceptor, upstream, limits, log, slots);
//! - [`conn`]: one client from accept to its log line;
//! - [`front`]: the client's side before login, over the shared machine [`crate::serve::PreLogin`];
//! - [`upstream`]: the login upstream and the referral walk, through [`crate::session`] and [`crate::follow`];
//! - [`relay`]: the bytes after login, and the mailbox referrals seen;
//! - [`record`]: the session's log record and [`RecordSink`], where records go (the binary gives
//!   [`crate::render::proxy::LogSink`], which writes them).
//!
//! The password is a [`Secret`](crate::secret::Secret): it goes to the upstream and to the hosts the policy allows,
//! and nowhere else; it is never logged.

pub mod conn;
pub mod front;
pub mod listener;
pub mod record;
pub mod relay;
pub mod shared;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::{InputLimits, Persona};
use crate::transport::TlsMode;
pub use record::{Listening, RecordSink};
pub use record::{Outcome, SessionRecord};
pub use upstream::UpstreamSettings;

/// Limits that keep clients from making the proxy use unbounded memory, connections or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Client connections open at once; more get `* BYE` and are closed. Default 256: a migration's worth of
    /// clients, far below the usual 1024 file descriptors (each session holds two sockets).
    pub max_connections: usize,
    /// Before login, a client that sends nothing for this long gets `* BYE Autologout`. Default 60 s: enough to type
    /// a LOGIN by hand.
    pub login_idle: Duration,
    /// From connect to login, however the client spends it (retries, STARTTLS, bytes dripped one at a time to
    /// hold a slot): past this it gets `* BYE` too. Default 5 min (five times `login_idle`; the CLI keeps that ratio).
    pub login_total: Duration,
    /// After login, a session in which no byte moves either way for this long is closed. Default 31 min: above the
    /// 30 minutes RFC 3501 gives an idle client (and IDLE's 29-minute re-issue).
    pub relay_idle: Duration,
    /// The longest command line before login. Default 64 KiB.
    pub max_line: usize,
    /// The largest literal before login (a user name, a password). Default 64 KiB.
    pub max_literal: usize,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            max_connections: 256,
            login_idle: Duration::from_secs(60),
            login_total: Duration::from_secs(300),
            relay_idle: Duration::from_secs(31 * 60),
            max_line: 64 * 1024,
            max_literal: 64 * 1024,
        }
    }
}

impl ProxyLimits {
    fn input(&self) -> InputLimits {
        InputLimits {
            max_line: self.max_line,
            max_literal: self.max_literal,
        }
    }
}

/// How to run a proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where to listen; loopback unless [`ProxyConfig::allow_non_loopback`].
    pub listen: SocketAddr,
    /// Allow a listening address that is not loopback.
    pub allow_non_loopback: bool,
    /// The upstream and the referral policy.
    pub upstream: UpstreamSettings,
    /// The certificate chain (PEM) and PKCS#8 key (PEM) for STARTTLS towards clients; `None`: no STARTTLS.
    pub client_tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Refuse LOGIN and AUTHENTICATE before STARTTLS (advertise LOGINDISABLED). Needs `client_tls`.
    pub require_tls: bool,
    /// The limits.
    pub limits: ProxyLimits,
}

/// Why the proxy cannot start.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The listening address is not loopback and that was not allowed.
    #[error(
        "{0} is not a loopback address: the proxy takes passwords, so it listens on loopback unless \
         --allow-non-loopback is given"
    )]
    NotLoopback(SocketAddr),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The certificate or key cannot be used.
    #[error("cannot use the proxy's TLS certificate: {0}")]
    Tls(String),
    /// `--require-tls` without a certificate.
    #[error("--require-tls needs --tls-cert and --tls-key: clients could never log in")]
    RequireTlsWithoutCert,
}

/// The persona the proxy shows before login.
fn persona(starttls: bool, require_tls: bool) -> Persona {
    Persona {
        capabilities: front::CAPABILITIES.map(String::from).to_vec(),
        after_login: front::CAPABILITIES.map(String::from).to_vec(),
        starttls,
        require_tls,
        id: format!(
            "(\"name\" \"imapref proxy\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        ),
        logout_text: "imapref proxy signing off".into(),
        invalid_state: "BAD Command not allowed now".into(),
    }
}

/// A running proxy. Dropping it stops accepting and aborts the sessions; prefer [`Proxy::shutdown`].
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Binds and starts accepting; writes the `listening` line to `log`.
    pub async fn start(config: ProxyConfig, log: Box<dyn RecordSink>) -> Result<Proxy, ProxyError> {
        if !config.listen.ip().is_loopback() && !config.allow_non_loopback {
            return Err(ProxyError::NotLoopback(config.listen));
        }
        if config.require_tls && config.client_tls.is_none() {
            return Err(ProxyError::RequireTlsWithoutCert);
        }
        let acceptor = match &config.client_tls {
            Some((cert, key)) => Some(
                crate::transport::tls_acceptor(cert, key)
                    .map_err(|e| ProxyError::Tls(e.to_string()))?,
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ProxyError::Bind {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ProxyError::Bind {
            addr: config.listen,
            reason: e.to_string(),
        })?;
        crate::transport::prewarm(&config.upstream.tls);
        log.listening(&Listening {
            listen: addr.to_string(),
            upstream: config.upstream.endpoint.to_string(),
            upstream_tls: match config.upstream.mode {
                TlsMode::Implicit => "tls",
                TlsMode::StartTls | TlsMode::StartTlsOpportunistic => "starttls",
                TlsMode::Plain => "plain",
            }
            .into(),
            starttls: acceptor.is_some(),
        });
        let shared = Arc::new(shared::Shared {
            persona: persona(acceptor.is_some(), config.require_tls),
            acceptor,
            upstream: config.upstream,
            limits: config.limits,
            input: config.limits.input(),
            log,
            slots: Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections)),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(listener::accept_loop(listener, shared, stopped));
        Ok(Proxy {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends every session, and waits until the port is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
