//! The upstream side of a login: log in to the upstream with the client's credentials through the engine
//! ([`crate::session::open`], [`crate::session::Session::login`]), classify the answer
//! ([`crate::follow::classify::login`]) and follow every login referral through the [`Follower`] (the policy, loops,
//! the hop budget, the TLS floor) until a server logs the user in. The KB's `OK [REFERRAL]` (logged in, but the
//! mailboxes are elsewhere) is followed too.
//!
//! The result is the home server's connection, handed over for the relay with the answer the client gets (the home
//! server's tagged OK with its capabilities), or a [`Failed`] with the tagged NO the client gets.

use std::time::Duration;

use crate::explain::ReferralKind;
use crate::follow::classify;
use crate::follow::policy::Policy;
use crate::follow::{Decision, FollowLimits, Follower, HopPlan, HopReason, Refusal};
use crate::proto::code::{Code, ReferralUrl};
use crate::proto::command::Command;
use crate::secret::Secret;
use crate::session::open::{open, OpenError, OpenFailure, Opening};
use crate::session::{Deadline, Outcome as CommandOutcome, Session, SessionError, SessionOptions};
use crate::transport::{Endpoint, TlsMode, TlsOptions, Transport, TransportError};

use super::record::Outcome;

/// Where and how the proxy logs in.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The upstream server (the one that may refer).
    pub endpoint: Endpoint,
    /// Plain, STARTTLS (required) or implicit TLS; referrals are followed at this level or above.
    pub mode: TlsMode,
    /// Trust (`--ca-file`).
    pub tls: TlsOptions,
    /// The referral policy: the upstream's host and domain, `--allow-host`, `--max-hops`; never interactive.
    pub policy: Policy,
    /// How many URLs of one REFERRAL are tried.
    pub follow: FollowLimits,
    /// The bound on each connect, read, write and handshake towards the servers.
    pub session: SessionOptions,
    /// The bound on the whole login, every hop included.
    pub max_time: Duration,
}

/// The home server, logged in.
#[derive(Debug)]
pub struct Home {
    /// Its connection, for the relay.
    pub transport: Transport,
    /// Its bytes already read after the login's completion, to relay first.
    pub unread: Vec<u8>,
    /// What the client gets after its own tag: `OK [CAPABILITY ...] text`.
    pub answer: String,
    /// `host:port`.
    pub server: String,
}

/// Why no server logged the user in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The kind of failure, for the log.
    pub outcome: Outcome,
    /// What the client gets after its own tag: `NO [...] text`.
    pub answer: String,
}

/// What a login gave.
#[derive(Debug)]
pub struct LoginResult {
    /// The servers connected to, in order.
    pub hops: Vec<String>,
    /// The home server, or why there is none.
    pub result: Result<Home, Failed>,
}

/// How one hop ended.
enum HopEnd {
    /// Logged in here.
    Home(Home),
    /// Referred (`NO [REFERRAL]`, `OK [REFERRAL]`, `BYE [REFERRAL]`): follow these URLs.
    Follow(Vec<ReferralUrl>),
    /// The server could not be used at all (the next alternative of a referral may be tried).
    Unreachable(Failed),
    /// The server answered, and the answer ends the login.
    Failed(Failed),
}

/// Logs `user` in: the upstream first, then every login referral the policy allows. `plain` asks for AUTHENTICATE
/// PLAIN (the client used it) instead of LOGIN; a referral URL with `AUTH=PLAIN` asks for it too.
pub async fn login(
    settings: &UpstreamSettings,
    user: &str,
    password: &Secret,
    plain: bool,
) -> LoginResult {
    let deadline = Deadline::after(settings.max_time);
    let mut follower = Follower::new(settings.policy.clone(), settings.follow);
    let mut alternatives = vec![HopPlan {
        host: settings.endpoint.host.clone(),
        port: settings.endpoint.port,
        user: user.to_string(),
        mailbox: "INBOX".into(),
        reason: HopReason::Start,
        tls_mode: settings.mode,
        url_wants_plain: false,
    }];
    let mut hops = Vec::new();
    let mut last_unreachable = None;
    let result = loop {
        if alternatives.is_empty() {
            break Err(last_unreachable.unwrap_or_else(|| Failed {
                outcome: Outcome::Unavailable,
                answer: "NO [UNAVAILABLE] No server to log in to".into(),
            }));
        }
        let plan = alternatives.remove(0);
        match follower.decide(&plan) {
            Decision::Go(_) => {}
            Decision::Ask(_) => {
                break Err(refusal(&Refusal::Policy {
                    server: plan.server(),
                    host: plan.host.clone(),
                    reason: "the proxy asks no one".into(),
                    never: false,
                }))
            }
            Decision::Refuse(r) => break Err(refusal(&r)),
        }
        hops.push(plan.server());
        let (end, encrypted) = hop(&plan, settings, password, plain, deadline).await;
        follower.record(&plan, encrypted);
        match end {
            HopEnd::Home(home) => break Ok(home),
            HopEnd::Failed(failed) => break Err(failed),
            HopEnd::Unreachable(failed) => last_unreachable = Some(failed),
            HopEnd::Follow(urls) => {
                match follower.alternatives(&plan, ReferralKind::Login, &urls) {
                    Ok(next) => {
                        alternatives = next.plans;
                        last_unreachable = None;
                    }
                    Err(r) => break Err(refusal(&r)),
                }
            }
        }
    };
    LoginResult { hops, result }
}

/// The tagged NO for a referral the follower refuses.
fn refusal(refusal: &Refusal) -> Failed {
    let (outcome, answer) = match refusal {
        Refusal::Loop { chain } => (
            Outcome::Loop,
            format!(
                "NO [UNAVAILABLE] The referrals loop: {}; the proxy stops here",
                chain.join(" -> ")
            ),
        ),
        Refusal::TooManyHops { max, chain } => (
            Outcome::TooManyHops,
            format!(
                "NO [UNAVAILABLE] More than {max} referrals: {}",
                chain.join(" -> ")
            ),
        ),
        Refusal::Policy { server, .. } | Refusal::Declined { server, .. } => (
            Outcome::Policy,
            format!(
                "NO [UNAVAILABLE] The proxy does not follow the referral to {server}: that host is not allowed"
            ),
        ),
        Refusal::BadUrl { errors } => (
            Outcome::Unavailable,
            format!(
                "NO [UNAVAILABLE] The referral cannot be followed: {}",
                errors.join("; ")
            ),
        ),
    };
    Failed {
        outcome,
        answer: one_line(answer),
    }
}

/// A text safe to put on one IMAP line.
fn one_line(text: String) -> String {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ")
    } else {
        text
    }
}

/// How a server is named in the client's NO: the upstream, or the home server a referral named.
fn role(plan: &HopPlan) -> &'static str {
    if plan.reason == HopReason::Start {
        "upstream server"
    } else {
        "home server"
    }
}

/// Why a server could not be used, in a few words.
fn session_trouble(error: &SessionError) -> String {
    match error {
        SessionError::Transport(TransportError::Connect { reason, .. })
            if reason.contains("refused") =>
        {
            "refused the connection".into()
        }
        SessionError::Transport(e @ TransportError::Tls { .. }) => format!("failed TLS: {e}"),
        SessionError::Deadline { .. } => "did not answer in time".into(),
        e if e.is_timeout() => format!("did not answer in time ({e})"),
        e => format!("could not be used: {e}"),
    }
}

fn unavailable(plan: &HopPlan, why: &str) -> Failed {
    Failed {
        outcome: Outcome::Unavailable,
        answer: one_line(format!(
            "NO [UNAVAILABLE] {} {} {why}",
            role(plan),
            plan.server()
        )),
    }
}

fn open_trouble(plan: &HopPlan, failure: &OpenFailure) -> String {
    match &failure.error {
        OpenError::Session(e) => session_trouble(e),
        OpenError::NotImap(_) => "does not speak IMAP".into(),
        // --upstream-tls helps only for the upstream: a referred server's TLS comes from its referral's level.
        OpenError::SpeaksTls if plan.reason == HopReason::Start => {
            "speaks implicit TLS on that port (use --upstream-tls)".into()
        }
        OpenError::SpeaksTls => {
            "speaks implicit TLS on the port its referral names, without TLS asked for".into()
        }
        OpenError::NoStartTls => {
            "does not offer STARTTLS, and the proxy never logs in below the upstream's TLS".into()
        }
    }
}

/// The completion's line after its tag (`NO [AUTHENTICATIONFAILED] Authentication failed.`).
fn after_tag(outcome: &CommandOutcome) -> String {
    let line = outcome.completion.first_line();
    match line.split_once(' ') {
        Some((_, rest)) => rest.to_string(),
        None => line,
    }
}

/// One hop: open, greeting, login, and what the answer means; the bool is whether the connection was encrypted.
async fn hop(
    plan: &HopPlan,
    settings: &UpstreamSettings,
    password: &Secret,
    plain: bool,
    deadline: Deadline,
) -> (HopEnd, bool) {
    let endpoint = Endpoint::new(plan.host.clone(), plan.port);
    let Opening {
        session,
        greeting,
        failure,
        ..
    } = open(
        &endpoint,
        plan.tls_mode,
        &settings.tls,
        settings.session,
        Some(deadline),
    )
    .await;
    let Some(mut session) = session else {
        let why = failure.as_ref().map_or_else(
            || "could not be reached".to_string(),
            |f| open_trouble(plan, f),
        );
        return (HopEnd::Unreachable(unavailable(plan, &why)), false);
    };
    let encrypted = session.is_tls();
    if let Some(failure) = failure {
        session.close().await;
        return (
            HopEnd::Unreachable(unavailable(plan, &open_trouble(plan, &failure))),
            encrypted,
        );
    }
    let Some(greeting) = greeting else {
        session.close().await;
        return (
            HopEnd::Unreachable(unavailable(plan, "sent no greeting")),
            encrypted,
        );
    };
    match classify::greeting(&greeting) {
        classify::Greeting::Referred(urls) => {
            session.close().await;
            return (HopEnd::Follow(urls), encrypted);
        }
        classify::Greeting::Refuses { text } => {
            session.close().await;
            let why = format!("takes no connections: {text}");
            return (HopEnd::Failed(unavailable(plan, &why)), encrypted);
        }
        classify::Greeting::NotImap => {
            session.close().await;
            return (
                HopEnd::Unreachable(unavailable(plan, "does not speak IMAP")),
                encrypted,
            );
        }
        classify::Greeting::Preauth => {
            // The server logs in whoever connects, as whatever it grants the proxy's host: relaying would let any
            // client in with any name and password, so the proxy refuses (its credentials could not be checked).
            session.close().await;
            let why = "greets with PREAUTH (it logs in every connection without a password), so the proxy cannot \
                       check the client's credentials there";
            return (HopEnd::Failed(unavailable(plan, why)), encrypted);
        }
        classify::Greeting::Ready => {}
    }
    if classify::login_disabled(session.capabilities().unwrap_or_default(), encrypted) {
        session.close().await;
        let failed = Failed {
            outcome: Outcome::Unavailable,
            answer: format!(
                "NO [PRIVACYREQUIRED] {} {} refuses LOGIN without TLS",
                role(plan),
                plan.server()
            ),
        };
        return (HopEnd::Failed(failed), encrypted);
    }
    let plain = plain || plan.url_wants_plain;
    let outcome = match session.login(&plan.user, password, plain).await {
        Ok(outcome) => outcome,
        Err(e) => {
            session.close().await;
            return (
                HopEnd::Failed(unavailable(plan, &session_trouble(&e))),
                encrypted,
            );
        }
    };
    let end = match classify::login(&outcome.completion) {
        classify::Login::LoggedIn => match logged_in(session, &outcome, plan.server()).await {
            Ok(home) => HopEnd::Home(home),
            Err(e) => HopEnd::Failed(unavailable(plan, &session_trouble(&e))),
        },
        classify::Login::LoggedInReferred(urls) | classify::Login::Referred(urls) => {
            log_out_in_background(session);
            HopEnd::Follow(urls)
        }
        classify::Login::Refused { .. } => {
            log_out_in_background(session);
            HopEnd::Failed(Failed {
                outcome: Outcome::Refused,
                answer: one_line(after_tag(&outcome)),
            })
        }
    };
    (end, encrypted)
}

/// LOGOUT on a connection that is done with, without making the client wait for its answer.
fn log_out_in_background(mut session: Session) {
    tokio::spawn(async move {
        session.logout().await;
    });
}

/// The home server logged the user in: the answer for the client (the completion as it is when it carries the
/// capabilities, else OK with the capabilities asked for now), and the connection for the relay.
async fn logged_in(
    mut session: Session,
    outcome: &CommandOutcome,
    server: String,
) -> Result<Home, SessionError> {
    let answer = match outcome.code() {
        Some(Code::Capability(_)) => after_tag(outcome),
        _ => {
            session.forget_capabilities();
            let tag = session.next_tag();
            session.run(&Command::new(tag, "CAPABILITY")).await?;
            let caps = session.capabilities().unwrap_or_default().join(" ");
            let text = outcome.text();
            let text = if text.is_empty() { "Logged in" } else { text };
            format!("OK [CAPABILITY {caps}] {text}")
        }
    };
    let (transport, unread) = session.into_transport().ok_or(SessionError::NotConnected)?;
    Ok(Home {
        transport,
        unread,
        answer: one_line(answer),
        server,
    })
}
