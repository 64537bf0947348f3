//! One hop of a probe: connect, TLS, greeting, capabilities, STARTTLS, login, RLIST, SELECT, LOGOUT — each step timed
//! and recorded, failures turned into diagnoses. LOGOUT is sent on every connection that was opened, after failures too.

use std::time::Instant;

use crate::explain::known_text::{self, NO_REPLICA};
use crate::explain::{explain_response, product, ReferralKind};
use crate::follow::classify;
use crate::proto::code::{Code, ReferralUrl};
use crate::proto::command::{Arg, Command};
use crate::proto::response::{Kind, Response, Status};
use crate::secret::Secret;
use crate::session::open::{open_with, OpenError, OpenFailure, OpenStep, Opening};
use crate::session::transcript::Direction;
use crate::session::{Deadline, Outcome, Session, SessionError};
use crate::transport::{CertificateInfo, Endpoint, TlsMode};

use super::report::{
    CommandResult, Diagnosis, DiagnosisId, Greeting, Hop, HopError, HopReason, MailboxState, Mark,
    Severity, Step,
};
use super::{AuthChoice, HopPlan, Next, ProbeSettings, Tap};

/// What one hop gave.
#[derive(Debug)]
pub struct HopRun {
    /// The hop's record.
    pub hop: Hop,
    /// Findings along the way.
    pub diagnoses: Vec<Diagnosis>,
    /// The failure that ended the probe here, if any.
    pub failure: Option<Diagnosis>,
    /// The server could not be reached at all (a replica's alternative may be tried).
    pub unreachable: bool,
    /// The mailbox was opened here.
    pub reached: bool,
    /// What to do next.
    pub next: Next,
}

struct Walk<'a> {
    plan: &'a HopPlan,
    settings: &'a ProbeSettings,
    /// Told of each step as it is done.
    tap: &'a Tap,
    deadline: Option<Deadline>,
    /// The SELECT batch sent in the same write as the login (pipelining), not yet awaited.
    pipelined: Option<Batch>,
    hop: Hop,
    diagnoses: Vec<Diagnosis>,
    reached: bool,
    unreachable: bool,
}

/// The commands that open the mailbox, sent together: CAPABILITY (when the capabilities after login are not known),
/// RLIST (where the server refers mailboxes only after it), then SELECT or EXAMINE.
struct Batch {
    tags: Vec<String>,
    asked_caps: bool,
    rlist_sent: bool,
    sent: Instant,
}

/// Where the walk goes after the login.
enum AfterLogin {
    /// Not logged in here: follow the referral.
    Follow(Next),
    /// Logged in (or PREAUTH); `referral` is a login referral to follow after the SELECT (`OK [REFERRAL]`).
    Here {
        /// The URLs of `OK [REFERRAL]`.
        referral: Option<Vec<ReferralUrl>>,
    },
}

fn internal(phase: &'static str, what: &str) -> Stop {
    stop(
        phase,
        DiagnosisId::Internal,
        Severity::Unknown,
        format!("imapref bug: {what}"),
        "Report this bug.",
    )
}

/// Ends a walk early: the finding and the phase.
struct Stop {
    diagnosis: Diagnosis,
    phase: &'static str,
}

fn stop(
    phase: &'static str,
    id: DiagnosisId,
    severity: Severity,
    message: String,
    next_step: impl Into<String>,
) -> Stop {
    Stop {
        diagnosis: Diagnosis {
            id,
            severity,
            message,
            next_step: Some(next_step.into()),
        },
        phase,
    }
}

/// Runs one hop, every wait ending by `deadline`.
pub async fn run(
    plan: &HopPlan,
    settings: &ProbeSettings,
    password: &Secret,
    number: usize,
    deadline: Option<Deadline>,
    tap: &Tap,
) -> HopRun {
    let started = Instant::now();
    let mut walk = Walk {
        plan,
        settings,
        tap,
        deadline,
        pipelined: None,
        hop: Hop::begun(number, plan),
        diagnoses: Vec::new(),
        reached: false,
        unreachable: false,
    };
    let mut session = None;
    let result = walk.walk(&mut session, password).await;
    let mut failure = None;
    let next = match result {
        Ok(next) => next,
        Err(mut s) => {
            if s.diagnosis.id == DiagnosisId::Deadline {
                let last = session.as_ref().and_then(|s| {
                    s.transcript()
                        .last(Direction::Server)
                        .map(|e| e.text.clone())
                });
                s.diagnosis.message.push_str(&match last {
                    Some(line) => format!(" Received so far, last: `{line}`."),
                    None => " Nothing was received from it.".into(),
                });
            }
            walk.hop.error = Some(HopError {
                phase: s.phase.into(),
                message: s.diagnosis.message.clone(),
            });
            failure = Some(s.diagnosis);
            Next::Done
        }
    };
    if let Some(mut session) = session {
        let background = if walk.hop.pipelined && session.is_connected() {
            // The mailbox is known: LOGOUT goes now and finishes in the background, so it never delays the next
            // hop or the report. It is in the transcript; its answer is not awaited, so it is no round trip of the
            // hop's. The write itself goes now, so the server gets LOGOUT even if the process ends.
            let trips = session.round_trips();
            let logout = Command::new(session.next_tag(), "LOGOUT");
            let queued = session.queue(&logout);
            let written = session.flush().await;
            walk.step(
                "logout",
                Mark::Info,
                Instant::now(),
                "LOGOUT sent; its answer is not awaited".into(),
            );
            Some((trips, queued, written))
        } else {
            // LOGOUT only where the server greeted: a silent server would cost another wait for nothing.
            if session.is_connected() && session.client().greeted() {
                let t = Instant::now();
                let answered = session.logout().await;
                walk.hop.logout_answered = answered;
                walk.step(
                    "logout",
                    if answered { Mark::Ok } else { Mark::Info },
                    t,
                    if answered {
                        "LOGOUT answered".into()
                    } else {
                        "closed without an answer to LOGOUT".into()
                    },
                );
            }
            session.close().await;
            None
        };
        walk.hop.round_trips = background
            .as_ref()
            .map_or_else(|| session.round_trips(), |(trips, ..)| *trips);
        walk.hop.password_sent = session.credential_written();
        walk.hop.transcript = session.transcript().entries();
        walk.hop.encrypted = walk.hop.encrypted || session.is_tls();
        if let Some((_, queued, written)) = background {
            let wait = settings.session.logout_wait;
            tokio::spawn(async move {
                if let (Ok(tag), Ok(())) = (queued, written) {
                    let _ = tokio::time::timeout(wait, session.wait_for(&tag)).await;
                }
                session.close().await;
            });
        }
    }
    walk.hop.ms = ms(started);
    HopRun {
        hop: walk.hop,
        diagnoses: walk.diagnoses,
        failure,
        unreachable: walk.unreachable,
        reached: walk.reached,
        next,
    }
}

use crate::session::millis_since as ms;

/// What to do about `[REFERRAL]` with no URL.
const REFERRAL_NOWHERE_NEXT: &str =
    "The server refers the user without saying where: ask its administrator which \
     server holds the mailbox, then probe that server.";

impl Walk<'_> {
    fn step(&mut self, name: &str, mark: Mark, since: Instant, detail: String) {
        self.step_ms(name, mark, ms(since), detail);
    }

    fn step_ms(&mut self, name: &str, mark: Mark, ms: f64, detail: String) {
        let step = Step {
            name: name.into(),
            mark,
            ms,
            detail,
        };
        self.tap.step(&step);
        self.hop.steps.push(step);
    }

    /// Records one step of the opening (connect, TLS, greeting, capabilities, STARTTLS) with its details.
    fn record_open_step(&mut self, step: OpenStep, ms: f64, greeting: Option<&Response>) {
        let name = step.name();
        match step {
            OpenStep::Connected => {
                let detail = self.hop.connect.as_ref().map_or_else(String::new, |info| {
                    let tried = info.addresses_tried.len();
                    format!(
                        "{} ({} address{} tried)",
                        info.connected_to,
                        tried,
                        if tried == 1 { "" } else { "es" }
                    )
                });
                self.step_ms(name, Mark::Ok, ms, detail);
            }
            OpenStep::Tls(cert) | OpenStep::StartTls(cert) => self.certificate(name, ms, cert),
            OpenStep::Greeting => {
                let Some(Kind::Greeting { status, code, text }) = greeting.map(|g| &g.kind) else {
                    return;
                };
                let named = product::recognise(text);
                let product_note = named
                    .as_ref()
                    .map_or_else(String::new, |p| match &p.version {
                        Some(v) => format!(" [{} {v}]", p.name),
                        None => format!(" [{}]", p.name),
                    });
                let line = greeting.map(Response::first_line).unwrap_or_default();
                let (mark, detail) = match (status, code) {
                    (Status::Bye, Some(Code::Referral(_))) => (
                        Mark::Info,
                        format!("BYE [REFERRAL]: this server takes no connections{product_note}"),
                    ),
                    (Status::Bye, _) => (Mark::Fail, line.clone()),
                    (Status::Preauth, _) => (
                        Mark::Info,
                        format!("PREAUTH: already authenticated{product_note}"),
                    ),
                    _ => (Mark::Ok, format!("{line}{product_note}")),
                };
                self.hop.greeting = Some(Greeting {
                    line,
                    status: *status,
                    product: named,
                });
                self.step_ms(name, mark, ms, detail);
            }
            OpenStep::Capabilities {
                from_greeting: true,
                ..
            } => {
                self.hop.capabilities_from = Some("greeting".into());
            }
            OpenStep::Capabilities { capabilities, .. } => {
                self.hop.capabilities_from = Some("command".into());
                self.step_ms(
                    name,
                    Mark::Ok,
                    ms,
                    crate::explain::capability_line(&capabilities),
                );
            }
            OpenStep::StartTlsNotOffered => {
                self.step_ms(
                    name,
                    Mark::Warn,
                    ms,
                    "not offered; going on in plaintext (--starttls=opportunistic)".into(),
                );
                self.diagnoses.push(Diagnosis {
                    id: DiagnosisId::NoStarttls,
                    severity: Severity::Warning,
                    message: format!(
                        "{} does not offer STARTTLS; the password went in plaintext.",
                        self.plan.server()
                    ),
                    next_step: Some("Enable TLS on the server.".into()),
                });
            }
        }
    }

    /// Turns the failure that stopped the opening into a stop.
    fn open_failure(&mut self, failure: OpenFailure) -> Stop {
        let OpenFailure { step, ms, error } = failure;
        let server = self.plan.server();
        match error {
            OpenError::Session(e) => {
                self.unreachable = step == "connect";
                self.session_failure(step, ms, e)
            }
            OpenError::NotImap(line) => {
                self.step_ms(step, Mark::Fail, ms, line.clone());
                stop(
                    step,
                    DiagnosisId::Garbage,
                    Severity::Unknown,
                    format!("{server} did not greet like an IMAP server: `{line}`"),
                    "Check the port: this does not look like an IMAP server.",
                )
            }
            OpenError::SpeaksTls => {
                self.step_ms(step, Mark::Fail, ms, OpenError::SpeaksTls.to_string());
                stop(
                    step,
                    DiagnosisId::Garbage,
                    Severity::Unknown,
                    format!(
                        "{server} sent no greeting in plaintext: {}.",
                        crate::transport::sniff::IMPLICIT_TLS_HINT
                    ),
                    if self.first_hop() {
                        format!(
                            "Rerun with --tls on the same port: imapref probe --tls {server} ..."
                        )
                    } else {
                        "The referral names a port that speaks implicit TLS in an imap:// URL (plaintext or STARTTLS): \
                         make it name the server's STARTTLS port (usually 143)."
                            .into()
                    },
                )
            }
            OpenError::NoStartTls => {
                self.step_ms(
                    step,
                    Mark::Fail,
                    ms,
                    "the server does not advertise STARTTLS".into(),
                );
                let (message, next) = if self.first_hop() {
                    (
                        format!("{server} does not offer STARTTLS (--starttls)."),
                        "Enable TLS on that server; use --starttls=opportunistic only if plaintext is acceptable.",
                    )
                } else {
                    (
                        format!(
                            "The referred server {server} does not offer STARTTLS; following would drop below the \
                             first hop's TLS."
                        ),
                        "Enable STARTTLS on the referred server: imapref never sends the password with less protection \
                         than the first hop had.",
                    )
                };
                stop(
                    step,
                    DiagnosisId::TlsDowngradeRefused,
                    Severity::Critical,
                    message,
                    next,
                )
            }
        }
    }

    fn first_hop(&self) -> bool {
        self.plan.reason == HopReason::Start
    }

    /// Turns a session error into a stop, with the severity the exit-code contract gives it.
    fn session_failure(&mut self, step: &'static str, ms: f64, err: SessionError) -> Stop {
        self.step_ms(step, Mark::Fail, ms, err.to_string());
        let server = self.plan.server();
        if let SessionError::Deadline { limit } = &err {
            return stop(
                step,
                DiagnosisId::Deadline,
                Severity::Unknown,
                format!(
                    "The deadline for the whole probe ({}, --max-time) passed during `{step}` on {server}.",
                    crate::transport::human_duration(*limit)
                ),
                "Raise --max-time, or find out why the server answers so slowly (-v shows the transcript).",
            );
        }
        let referral_target = !self.first_hop();
        if err.is_tls() {
            let next = tls_advice(&err, referral_target, self.plan.tls_mode);
            return stop(
                "tls",
                DiagnosisId::TlsFailure,
                Severity::Critical,
                format!("TLS with {server} failed: {err}"),
                next,
            );
        }
        if referral_target {
            let id = if matches!(self.plan.reason, HopReason::MailboxReferral { .. }) {
                DiagnosisId::MailboxReferralUnreachable
            } else {
                DiagnosisId::ReferralUnreachable
            };
            return stop(
                step,
                id,
                Severity::Critical,
                format!("The referred server {server} could not be used: {err}"),
                "Check that the referred server is up and that the referral names the right host and port.",
            );
        }
        let (id, next) = match &err {
            SessionError::WrongTag { .. } => (
                DiagnosisId::Garbage,
                "The server answers with tags it was never sent: it is broken, or something sits between.",
            ),
            e if e.is_timeout() => (
                DiagnosisId::Timeout,
                "Check the host and port, and any firewall; raise --timeout for a slow server.",
            ),
            SessionError::Frame(_) => (
                DiagnosisId::Garbage,
                "The server sent more than imapref reads at once (the limits are in docs/security.md): a broken or \
                 hostile server, or not an IMAP server at all; tell its administrator, or check the port.",
            ),
            SessionError::Protocol(_) => (
                DiagnosisId::Garbage,
                "The server broke the IMAP protocol: it is broken or hostile; tell its administrator.",
            ),
            SessionError::ClosedByServer { .. } => (
                DiagnosisId::ConnectionClosed,
                "Check the server's logs for why it closed the connection.",
            ),
            _ => (
                DiagnosisId::ConnectFailure,
                "Check the host name, the port and that the server is running.",
            ),
        };
        stop(
            step,
            id,
            Severity::Unknown,
            format!("{server}: {err}"),
            next,
        )
    }

    /// The walk: open, then what the greeting says, then login, then the mailbox.
    async fn walk(&mut self, slot: &mut Option<Session>, password: &Secret) -> Result<Next, Stop> {
        let greeting = self.open(slot).await?;
        let Some(session) = slot.as_mut() else {
            return Err(internal("connect", "no session after opening"));
        };
        let login_referral = match classify::greeting(&greeting) {
            classify::Greeting::Referred(urls) => return Ok(self.greeting_referral(urls)),
            classify::Greeting::Refuses { text } => {
                return Err(stop(
                    "greeting",
                    DiagnosisId::ServerRefuses,
                    Severity::Critical,
                    format!("{} refuses connections: {text}", self.plan.server()),
                    "Check the server's state and logs.",
                ))
            }
            classify::Greeting::NotImap => {
                return Err(internal("greeting", "no greeting after opening"))
            }
            classify::Greeting::Preauth => None,
            classify::Greeting::Ready => match self.login(session, password).await? {
                AfterLogin::Follow(next) => return Ok(next),
                AfterLogin::Here { referral } => referral,
            },
        };
        self.mailbox(session, login_referral).await
    }

    /// Steps 1-5: connect, implicit TLS, greeting, capabilities, STARTTLS; the opening the shell shares.
    async fn open(&mut self, slot: &mut Option<Session>) -> Result<Response, Stop> {
        let endpoint = Endpoint::new(self.plan.host.clone(), self.plan.port);
        let settings = self.settings;
        let (mode, deadline) = (self.plan.tls_mode, self.deadline);
        // Each step is recorded as it goes through, so a caller showing progress sees it at once.
        let Opening {
            session,
            connect,
            greeting,
            failure,
            ..
        } = open_with(
            &endpoint,
            mode,
            &settings.tls,
            settings.session,
            deadline,
            &mut |step, ms, connect, greeting| {
                if let Some(info) = connect {
                    self.hop.connect = Some(info.clone());
                }
                self.record_open_step(step.clone(), ms, greeting);
            },
        )
        .await;
        *slot = session;
        self.hop.connect = connect;
        if let Some(failure) = failure {
            return Err(self.open_failure(failure));
        }
        let (Some(session), Some(greeting)) = (slot.as_ref(), greeting) else {
            return Err(internal("connect", "no session after opening"));
        };
        if let Some(caps) = session.capabilities() {
            self.hop.capabilities = caps.to_vec();
        }
        Ok(greeting)
    }

    /// `* BYE [REFERRAL]`: the server sends clients elsewhere before they log in.
    fn greeting_referral(&mut self, urls: Vec<ReferralUrl>) -> Next {
        self.diagnoses.push(Diagnosis {
            id: DiagnosisId::GreetingReferral,
            severity: Severity::Info,
            message: format!(
                "{} refuses connections and refers clients to {}.",
                self.plan.server(),
                urls.first().map_or("", |u| u.raw.as_str())
            ),
            next_step: Some("Point clients at the referred server.".into()),
        });
        Next::Follow {
            kind: ReferralKind::Login,
            urls,
        }
    }

    /// Step 6: LOGIN (or AUTHENTICATE PLAIN), and what its completion means.
    async fn login(
        &mut self,
        session: &mut Session,
        password: &Secret,
    ) -> Result<AfterLogin, Stop> {
        let plan = self.plan;
        let encrypted = session.is_tls();
        if classify::login_disabled(session.capabilities().unwrap_or_default(), encrypted) {
            return Err(stop(
                "login",
                DiagnosisId::LoginDisabled,
                Severity::Critical,
                format!(
                    "{} refuses LOGIN without TLS (LOGINDISABLED).",
                    plan.server()
                ),
                login_disabled_advice(plan.tls_mode),
            ));
        }
        let t = Instant::now();
        let plain = self.settings.auth == AuthChoice::Plain || plan.url_wants_plain;
        // From here the password may be on its way (what a Ctrl-C report says).
        self.tap.login_sent();
        let result = if self.settings.pipelining {
            self.login_pipelined(session, password, plain).await
        } else {
            session.login(&plan.user, password, plain).await
        };
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                // The credential went out only if the command was written.
                self.hop.password_sent = session.credential_written();
                return Err(self.session_failure("login", ms(t), e));
            }
        };
        self.hop.password_sent = true;
        let shown = if plain {
            format!("{} AUTHENTICATE PLAIN ***", outcome.tag)
        } else {
            format!("{} LOGIN {} ***", outcome.tag, plan.user)
        };
        let result = command_result(&shown, &outcome);
        let referral = result.referral.clone();
        self.hop.login = Some(result);
        let after = match classify::login(&outcome.completion) {
            classify::Login::LoggedInReferred(urls) => {
                let target = urls.first().map_or(String::new(), |u| u.raw.clone());
                self.step(
                    "login",
                    Mark::Info,
                    t,
                    format!("logged in, but the user's home is elsewhere: OK [REFERRAL {target}]"),
                );
                self.diagnoses.push(Diagnosis {
                    id: DiagnosisId::LoginReferral,
                    severity: Severity::Info,
                    message: format!(
                        "{} logged the user in but names their home server: {} (OK [REFERRAL], RFC 2221).",
                        plan.server(),
                        describe_target(referral.as_ref())
                    ),
                    next_step: Some("Clients that do not follow referrals must be pointed at the home server.".into()),
                });
                AfterLogin::Here {
                    referral: Some(urls),
                }
            }
            classify::Login::Referred(urls) => {
                let target = urls.first().map_or(String::new(), |u| u.raw.clone());
                self.step(
                    "login",
                    Mark::Info,
                    t,
                    format!("not logged in; referred: NO [REFERRAL {target}]"),
                );
                self.diagnoses.push(Diagnosis {
                    id: DiagnosisId::LoginReferral,
                    severity: Severity::Info,
                    message: format!(
                        "{} does not serve this user and refers them to {} (NO [REFERRAL], RFC 2221).",
                        plan.server(),
                        describe_target(referral.as_ref())
                    ),
                    next_step: Some("Point the user's client at the referred server, or make the first one proxy.".into()),
                });
                return Ok(AfterLogin::Follow(Next::Follow {
                    kind: ReferralKind::Login,
                    urls,
                }));
            }
            classify::Login::LoggedIn => {
                self.step(
                    "login",
                    Mark::Ok,
                    t,
                    format!("{} {}", outcome.tag, outcome.text()),
                );
                AfterLogin::Here { referral: None }
            }
            classify::Login::Refused {
                code,
                rejected,
                known,
            } => {
                let line = outcome.completion.first_line();
                self.step("login", Mark::Fail, t, line.clone());
                let nowhere = code.as_ref().is_some_and(Code::is_referral_without_url);
                let code_note = code
                    .map(|c| format!(" {}", c.meaning()))
                    .unwrap_or_default();
                return Err(stop(
                    "login",
                    if rejected {
                        DiagnosisId::LoginRejected
                    } else {
                        DiagnosisId::LoginRefused
                    },
                    Severity::Critical,
                    format!("{} refused the login: `{line}`.{code_note}", plan.server()),
                    match known {
                        Some(k) => k.next_step,
                        None if nowhere => REFERRAL_NOWHERE_NEXT,
                        None => "Check the login name's form and the password.",
                    },
                ));
            }
        };
        // Post-login capabilities: from the completion's code when given; otherwise asked with the SELECT below.
        if matches!(outcome.code(), Some(Code::Capability(_))) {
            self.capabilities(session, "login");
        } else {
            session.forget_capabilities();
        }
        Ok(after)
    }

    /// The login, and behind it in the same write the SELECT batch, when nothing in the login waits for a
    /// continuation (no synchronizing literal, no SASL step). Dovecot and Cyrus keep pipelined input across their
    /// login hand-off; after a referral answer the SELECT's BAD is expected and ignored.
    async fn login_pipelined(
        &mut self,
        session: &mut Session,
        password: &Secret,
        plain: bool,
    ) -> Result<Outcome, SessionError> {
        let (tag, encoded) = session
            .client_mut()
            .encode_login(&self.plan.user, password, plain)?;
        if encoded.pieces.iter().any(|p| p.then_wait_continuation) {
            return session.run_encoded(&tag, &encoded).await;
        }
        session.queue_encoded(&tag, encoded)?;
        let (commands, asked_caps, rlist_sent) = self.select_commands(session, true);
        let mut tags = Vec::new();
        for command in &commands {
            tags.push(session.queue(command)?);
        }
        session.flush().await?;
        self.hop.pipelined = true;
        self.pipelined = Some(Batch {
            tags,
            asked_caps,
            rlist_sent,
            sent: Instant::now(),
        });
        session.wait_for(&tag).await
    }

    /// The commands that open the mailbox: CAPABILITY when the capabilities after login are unknown (always, when
    /// sent before the login's answer), RLIST when the server announces mailbox referrals, then SELECT or EXAMINE.
    fn select_commands(
        &self,
        session: &mut Session,
        before_login_answer: bool,
    ) -> (Vec<Command>, bool, bool) {
        let mailbox = self.plan.mailbox.clone();
        let verb = if self.settings.read_only {
            "EXAMINE"
        } else {
            "SELECT"
        };
        // Before the login's answer the capabilities after login are unknown, but asking for them in the same write
        // would make every login wait for a CAPABILITY answer; they come with most logins' OK, and are asked for
        // below only when the SELECT fails and they matter.
        let asked_caps = !before_login_answer && session.capabilities().is_none();
        let rlist_sent = session.has_capability("MAILBOX-REFERRALS");
        let mut commands = Vec::new();
        if asked_caps {
            commands.push(Command::new(session.next_tag(), "CAPABILITY"));
        }
        if rlist_sent {
            commands.push(rlist(session.next_tag(), &mailbox));
        }
        commands.push(Command::new(session.next_tag(), verb).arg(Arg::Mailbox(mailbox)));
        (commands, asked_caps, rlist_sent)
    }

    /// Step 7: SELECT or EXAMINE, and what its completion means (a login referral is followed after it).
    async fn mailbox(
        &mut self,
        session: &mut Session,
        login_referral: Option<Vec<ReferralUrl>>,
    ) -> Result<Next, Stop> {
        let plan = self.plan;
        let outcome = self.select(session).await?;
        let follow_login = |urls| Next::Follow {
            kind: ReferralKind::Login,
            urls,
        };
        let line = outcome.completion.first_line();
        match classify::select(&outcome.completion) {
            classify::Select::Opened => {
                self.reached = true;
                Ok(Next::Done)
            }
            classify::Select::Referred(urls) => {
                self.diagnoses.push(Diagnosis {
                    id: DiagnosisId::MailboxReferral,
                    severity: Severity::Info,
                    message: format!(
                        "`{}` lives on another server: {} (NO [REFERRAL], RFC 2193{}).",
                        plan.mailbox,
                        describe_target(self.hop.select.as_ref().and_then(|s| s.referral.as_ref())),
                        if urls.len() > 1 {
                            format!(", {} replicas", urls.len())
                        } else {
                            String::new()
                        }
                    ),
                    next_step: None,
                });
                Ok(Next::Follow {
                    kind: ReferralKind::Mailbox,
                    urls,
                })
            }
            classify::Select::NoReplica => {
                let message = match &login_referral {
                    Some(urls) => format!(
                        "{}: `{line}` — the user is logged in on a server that holds no replica of `{}`. Its login \
                         referral named the home server ({}); imapref follows it next.",
                        plan.server(),
                        plan.mailbox,
                        urls.first().map_or("", |u| u.raw.as_str())
                    ),
                    None => format!(
                        "{}: `{line}` — the user is logged in on a server that holds no replica of `{}`, because the \
                         servers do not replicate their directory or the client did not follow a login referral.",
                        plan.server(),
                        plan.mailbox
                    ),
                };
                self.diagnoses.push(Diagnosis {
                    id: DiagnosisId::NoReplica,
                    severity: if login_referral.is_some() {
                        Severity::Info
                    } else {
                        Severity::Critical
                    },
                    message,
                    next_step: Some(NO_REPLICA.next_step.into()),
                });
                match login_referral {
                    Some(urls) => Ok(follow_login(urls)),
                    None => Err(stop(
                        "select",
                        DiagnosisId::MailboxNotReached,
                        Severity::Critical,
                        format!(
                            "`{}` could not be opened on {}: no replica.",
                            plan.mailbox,
                            plan.server()
                        ),
                        NO_REPLICA.next_step,
                    )),
                }
            }
            // The mailbox is not here for another reason; a login referral still names the home server.
            classify::Select::NotOpened { .. } if login_referral.is_some() => {
                Ok(follow_login(login_referral.unwrap_or_default()))
            }
            classify::Select::NotOpened { code, known } => {
                let nowhere = code.as_ref().is_some_and(Code::is_referral_without_url);
                let code_note = code
                    .map(|c| format!(" {}", c.meaning()))
                    .unwrap_or_default();
                Err(stop(
                    "select",
                    DiagnosisId::MailboxNotReached,
                    Severity::Critical,
                    format!(
                        "`{}` could not be opened on {}: `{line}`.{code_note}",
                        plan.mailbox,
                        plan.server()
                    ),
                    match known {
                        Some(k) => k.next_step,
                        None if nowhere => REFERRAL_NOWHERE_NEXT,
                        None => "Check the mailbox name (LIST shows them) and the user's rights.",
                    },
                ))
            }
        }
    }

    fn capabilities(&mut self, session: &Session, from: &str) {
        let caps = session
            .capabilities()
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        self.hop.capabilities = caps;
        self.hop.capabilities_from = Some(from.into());
    }

    fn certificate(&mut self, step: &str, ms: f64, cert: CertificateInfo) {
        self.hop.encrypted = true;
        let warn_days = self.settings.cert_warn_days;
        let mark = if cert.days_left < warn_days {
            Mark::Warn
        } else {
            Mark::Ok
        };
        let detail = cert.summary();
        if cert.days_left < warn_days {
            self.diagnoses.push(Diagnosis {
                id: DiagnosisId::CertificateExpiring,
                severity: Severity::Warning,
                message: format!(
                    "{}'s certificate expires in {} days ({}).",
                    self.plan.server(),
                    cert.days_left,
                    cert.not_after
                ),
                next_step: Some("Renew the certificate.".into()),
            });
        }
        self.step_ms(step, mark, ms, detail);
        self.hop.certificate = Some(cert);
    }

    /// SELECT or EXAMINE, pipelined behind CAPABILITY (when the post-login capabilities are unknown) and RLIST (when
    /// mailbox referrals are advertised): one round trip in the common case. When the capabilities come back with
    /// MAILBOX-REFERRALS and the mailbox was refused, RLIST + SELECT are sent once more, as Cyrus refers only clients
    /// that have sent RLIST.
    async fn select(&mut self, session: &mut Session) -> Result<Outcome, Stop> {
        let mailbox = self.plan.mailbox.clone();
        let verb = if self.settings.read_only {
            "EXAMINE"
        } else {
            "SELECT"
        };
        let t;
        let (mut outcomes, asked_caps, mut rlist_sent) = match self.pipelined.take() {
            Some(batch) => {
                t = batch.sent;
                let mut outcomes = Vec::new();
                for tag in &batch.tags {
                    match session.wait_for(tag).await {
                        Ok(o) => outcomes.push(o),
                        Err(e) => return Err(self.session_failure("select", ms(t), e)),
                    }
                }
                (outcomes, batch.asked_caps, batch.rlist_sent)
            }
            None => {
                t = Instant::now();
                let (commands, asked_caps, rlist_sent) = self.select_commands(session, false);
                match session.run_pipelined(&commands).await {
                    Ok(o) => (o, asked_caps, rlist_sent),
                    Err(e) => return Err(self.session_failure("select", ms(t), e)),
                }
            }
        };
        if asked_caps && self.hop.capabilities_from.as_deref() != Some("login") {
            self.capabilities(session, "command");
        }
        if asked_caps {
            // The CAPABILITY answer is not part of what the SELECT batch returns below.
            outcomes.remove(0);
        }
        let failed_plainly = outcomes
            .last()
            .is_some_and(|o| o.status() == Status::No && o.code().is_none())
            && outcomes
                .last()
                .and_then(|o| o.completion.text())
                .and_then(known_text::recognise)
                .is_none_or(|k| k.id != NO_REPLICA.id);
        if !rlist_sent && failed_plainly && session.capabilities().is_none() {
            // Pipelined without CAPABILITY, and the login's OK named none: whether RLIST would help depends on them.
            let tag = session.next_tag();
            if let Err(e) = session.run(&Command::new(tag, "CAPABILITY")).await {
                return Err(self.session_failure("select", ms(t), e));
            }
            self.capabilities(session, "command");
        }
        let retry = !rlist_sent && session.has_capability("MAILBOX-REFERRALS") && failed_plainly;
        if retry {
            rlist_sent = true;
            let again = [
                rlist(session.next_tag(), &mailbox),
                Command::new(session.next_tag(), verb).arg(Arg::Mailbox(mailbox.clone())),
            ];
            outcomes = match session.run_pipelined(&again).await {
                Ok(o) => o,
                Err(e) => return Err(self.session_failure("select", ms(t), e)),
            };
        }
        let Some(outcome) = outcomes.pop() else {
            return Err(stop(
                "select",
                DiagnosisId::Internal,
                Severity::Unknown,
                "no SELECT outcome".into(),
                "Report this bug.",
            ));
        };
        if rlist_sent {
            if let Some(r) = outcomes.pop() {
                let remote = r.untagged.iter().filter(|u| matches!(&u.kind, Kind::List { attributes, .. } if attributes.iter().any(|a| a.eq_ignore_ascii_case("\\Remote")))).count();
                self.hop.rlist = Some(command_result(
                    &format!("{} RLIST \"\" {mailbox}", r.tag),
                    &r,
                ));
                self.step(
                    "rlist",
                    if r.is_ok() { Mark::Ok } else { Mark::Info },
                    t,
                    format!(
                        "{}, {remote} remote",
                        crate::words::count(r.untagged.total() as u64, "entry", "entries")
                    ),
                );
            }
        }
        let shown = format!("{} {verb} {mailbox}", outcome.tag);
        self.hop.select = Some(command_result(&shown, &outcome));
        if outcome.is_ok() {
            let state = mailbox_state(&outcome);
            let detail = format!(
                "{}: {}, {} recent{}{}",
                mailbox,
                state
                    .exists
                    .map_or("? messages".into(), |n| crate::words::count(
                        n, "message", "messages"
                    )),
                state.recent.map_or("?".into(), |n| n.to_string()),
                state
                    .unseen
                    .map(|n| format!(", first unseen #{n}"))
                    .unwrap_or_default(),
                state
                    .uidvalidity
                    .map(|n| format!(", UIDVALIDITY {n}"))
                    .unwrap_or_default(),
            );
            self.step(&verb.to_ascii_lowercase(), Mark::Ok, t, detail);
            self.hop.mailbox_state = Some(state);
        } else {
            let mark = if matches!(outcome.code(), Some(Code::Referral(_))) {
                Mark::Info
            } else {
                Mark::Fail
            };
            self.step(
                &verb.to_ascii_lowercase(),
                mark,
                t,
                outcome.completion.first_line(),
            );
        }
        Ok(outcome)
    }
}

/// The next step after a TLS failure: a certificate that did not verify, a handshake that failed in the mode used, a
/// referred server below the first one's level, STARTTLS refused or tampered with.
fn tls_advice(err: &SessionError, referral_target: bool, mode: TlsMode) -> String {
    if let SessionError::Transport(t) = err {
        if t.presented_certificate().is_some() {
            return "Trust the certificate's CA with --ca-file FILE if it is a private CA, or fix the server's \
                    certificate (--insecure skips the check, and the report says so)."
                .into();
        }
    }
    if referral_target && mode != TlsMode::Plain {
        return "The referred server must offer the same TLS as the first one; imapref never drops to a lower level."
            .into();
    }
    match (err, mode) {
        (SessionError::StartTlsRefused(_), _) => {
            "The server refused STARTTLS: check its TLS setup, or use --tls on its implicit-TLS port (usually 993)."
                .into()
        }
        (SessionError::PlaintextInjection(_), _) => {
            "Something between imapref and the server injected plaintext into STARTTLS: check the network path.".into()
        }
        (_, TlsMode::Implicit) => {
            "Check that this port speaks implicit TLS (usually 993); for STARTTLS (usually 143), use --starttls \
             instead of --tls."
                .into()
        }
        _ => "Check the server's TLS setup; for implicit TLS (usually 993), use --tls instead of --starttls.".into(),
    }
}

/// The next step when the server refuses LOGIN in plaintext (LOGINDISABLED), by the TLS mode that was used.
fn login_disabled_advice(mode: TlsMode) -> &'static str {
    match mode {
        // Opportunistic STARTTLS went on in plaintext: the server does not offer STARTTLS.
        TlsMode::StartTlsOpportunistic => {
            "The server offers no STARTTLS and refuses LOGIN in plaintext: use --tls on its implicit-TLS port \
             (usually 993)."
        }
        _ => "Use --starttls, or --tls on the server's implicit-TLS port (usually 993).",
    }
}

fn rlist(tag: String, mailbox: &str) -> Command {
    Command::new(tag, "RLIST")
        .arg(Arg::Astring(String::new()))
        .arg(Arg::Mailbox(mailbox.to_string()))
}

fn command_result(shown: &str, outcome: &Outcome) -> CommandResult {
    let explanation = explain_response(&outcome.completion);
    CommandResult {
        command: shown.to_string(),
        status: outcome.status(),
        code: outcome.code().cloned(),
        text: outcome.text().to_string(),
        line: outcome.completion.first_line(),
        referral: explanation.referral,
        ms: outcome.ms,
    }
}

fn mailbox_state(outcome: &Outcome) -> MailboxState {
    let mut state = MailboxState::default();
    let codes = outcome
        .untagged
        .iter()
        .chain(std::iter::once(&outcome.completion))
        .filter_map(Response::code);
    for code in codes {
        match code {
            Code::Unseen(n) => state.unseen = Some(*n),
            Code::UidValidity(n) => state.uidvalidity = Some(*n),
            Code::UidNext(n) => state.uidnext = Some(*n),
            Code::ReadOnly => state.access = Some("READ-ONLY".into()),
            Code::ReadWrite => state.access = Some("READ-WRITE".into()),
            _ => {}
        }
    }
    for response in outcome.untagged.iter() {
        match response.kind {
            Kind::Exists { count } => state.exists = Some(count),
            Kind::Recent { count } => state.recent = Some(count),
            _ => {}
        }
    }
    state
}

fn describe_target(referral: Option<&crate::explain::ReferralExplanation>) -> String {
    let Some(t) = referral.and_then(|r| r.targets.first()) else {
        return "an unreadable URL".into();
    };
    match (&t.host, t.port) {
        (Some(h), Some(p)) => {
            let user = t
                .user
                .as_deref()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default();
            format!("{}{user}", super::target::authority(h, p))
        }
        _ => format!("{} ({})", t.raw, t.error.clone().unwrap_or_default()),
    }
}
