//! The probe: KB Q217388's telnet walkthrough as one command. Connect, TLS, banner, capabilities, LOGIN, detect and
//! decode referrals, follow them under the [`policy`], SELECT, diagnose, LOGOUT — and produce a typed [`report::Report`].
//!
//! - [`target`]: what the user typed as the target;
//! - [`hop`]: one connection's walkthrough, a short sequence of steps over the driver and the classifier;
//! - [`report`]: the report types (the JSON contract);
//! - [`verdict`]: the conclusion and exit code.
//!
//! Which hop comes next, and whether the password may go there, is the [`Follower`]'s to decide. The probe never
//! prints and never asks: [`Probe::advance`] hands back [`Progress::Ask`] when a referral needs consent, and the
//! caller answers with [`Probe::answer`] (the CLI asks on the terminal; `check` and [`run`] refuse). So a probe is a
//! `Send` future that can be spawned on tokio.
//!
//! A caller that shows the walkthrough as it goes (the CLI on a terminal) gets an [`Event`] for each hop begun and
//! each step done ([`Probe::with_events`]); the steps' details are already masked. A probe stopped half-way (Ctrl-C:
//! the caller drops the [`Probe::advance`] future) still gives the report of what it learned: [`Probe::interrupt`].

pub mod hop;
pub mod report;
pub mod target;
pub mod verdict;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::explain::ReferralKind;
use crate::follow::policy::Policy;
pub use crate::follow::HopPlan;
use crate::follow::{Alternatives, Decision, FollowLimits, Follower, HopReason, Refusal};
use crate::proto::code::ReferralUrl;
use crate::secret::{Redactor, Secret};
use crate::session::{Deadline, SessionOptions};
use crate::transport::{TlsMode, TlsOptions};
use report::{
    Diagnosis, DiagnosisId, Hop, HopError, Report, Severity, Step, TargetReport, Verdict,
    VerdictStatus, REPORT_VERSION,
};
use target::authority;

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// LOGIN, unless a referral URL names `AUTH=PLAIN`.
    #[default]
    Login,
    /// AUTHENTICATE PLAIN (with SASL-IR when advertised).
    Plain,
}

/// Everything a probe needs, validated.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The target as the user typed it.
    pub target_input: String,
    /// The first server's host.
    pub host: String,
    /// The first server's port.
    pub port: u16,
    /// The login name, sent as typed (`DOMname/UserN/AliasN` goes as an atom).
    pub user: String,
    /// The mailbox to open. Default INBOX.
    pub mailbox: String,
    /// EXAMINE instead of SELECT.
    pub read_only: bool,
    /// The first hop's TLS mode; later hops never go below it.
    pub tls_mode: TlsMode,
    /// CA file and `--insecure`.
    pub tls: TlsOptions,
    /// LOGIN or AUTHENTICATE PLAIN.
    pub auth: AuthChoice,
    /// The referral policy.
    pub policy: Policy,
    /// Timeouts and limits.
    pub session: SessionOptions,
    /// Warn when the certificate expires within this many days. Default 14.
    pub cert_warn_days: i64,
    /// The deadline for the whole probe (`--max-time`). Default 30 s: far above a probe's few round trips, low enough
    /// for a monitoring check.
    pub max_time: Option<Duration>,
    /// Referral follower limits (how many alternatives of one REFERRAL are tried).
    pub follow: FollowLimits,
    /// Send the login, SELECT and LOGOUT in one write when nothing in the login waits for the server. Default true:
    /// Dovecot and Cyrus answer pipelined commands correctly; `--no-pipelining` sends them one at a time.
    pub pipelining: bool,
}

/// What the probe did in one [`Probe::advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A hop ended; its record is the last of [`Probe::report`]'s hops.
    Hop,
    /// A referral needs the person's consent: answer with [`Probe::answer`].
    Ask {
        /// The question to put.
        question: String,
    },
    /// The probe is over: [`Probe::finish`] gives the report.
    Done,
}

/// What a probe tells as it goes ([`Probe::with_events`]).
#[derive(Debug, Clone)]
pub enum Event {
    /// A hop begins: a connection to `server`.
    HopStarted {
        /// 1, 2, ...
        number: usize,
        /// `host:port`.
        server: String,
        /// The login name used there.
        user: String,
        /// Why this server.
        reason: HopReason,
    },
    /// A step of the current hop is done (its detail masked); it is also in the hop's record at the end.
    Step(Step),
}

/// What the walk of the current hop shares with the probe: the steps done so far (for [`Probe::interrupt`]) and the
/// events for a caller that shows them.
pub struct Tap {
    events: Option<UnboundedSender<Event>>,
    redactor: Redactor,
    steps: Mutex<Vec<Step>>,
    login_sent: AtomicBool,
}

impl Tap {
    fn new(password: &Secret, user: &str) -> Tap {
        Tap {
            events: None,
            redactor: Redactor::new(password).with_login(user),
            steps: Mutex::new(Vec::new()),
            login_sent: AtomicBool::new(false),
        }
    }

    fn begin(&self, event: Event) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.clear();
        }
        self.login_sent.store(false, Ordering::Relaxed);
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// A step of the current hop is done.
    pub fn step(&self, step: &Step) {
        let mut step = step.clone();
        self.redactor.redact_in_place(&mut step.detail);
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(step.clone());
        }
        if let Some(tx) = &self.events {
            let _ = tx.send(Event::Step(step));
        }
    }

    /// The login (with the password) is about to be written to the current hop's server.
    pub fn login_sent(&self) {
        self.login_sent.store(true, Ordering::Relaxed);
    }
}

/// What a hop leads to.
#[derive(Debug, Clone)]
pub enum Next {
    /// Nothing more to do (reached, or stopped).
    Done,
    /// Follow these referral URLs (alternatives, most preferred first).
    Follow {
        /// Login or mailbox referral.
        kind: ReferralKind,
        /// The URLs.
        urls: Vec<ReferralUrl>,
    },
}

/// A probe in progress. See the module documentation.
pub struct Probe<'a> {
    settings: &'a ProbeSettings,
    password: &'a Secret,
    follower: Follower,
    report: Report,
    started: Instant,
    deadline: Option<Deadline>,
    /// The hops still to try: the alternatives of the last referral, most preferred first.
    alternatives: Vec<HopPlan>,
    /// The next alternative already has the person's consent.
    consented: bool,
    /// Waiting for [`Probe::answer`].
    asking: bool,
    stop: Option<Diagnosis>,
    reached_at: Option<String>,
    done: bool,
    tap: Tap,
    /// The hop under way: its plan, number and start.
    current: Option<(HopPlan, usize, Instant)>,
}

impl<'a> Probe<'a> {
    /// Masks the password in every form, the AUTHENTICATE PLAIN blobs of every login name used included.
    fn redactor(&self) -> Redactor {
        std::iter::once(self.settings.user.as_str())
            .chain(self.report.hops.iter().map(|h| h.user.as_str()))
            .fold(Redactor::new(self.password), Redactor::with_login)
    }

    /// A probe of `settings`, not started yet.
    pub fn new(settings: &'a ProbeSettings, password: &'a Secret) -> Self {
        let report = Report {
            version: REPORT_VERSION,
            tool: format!("imapref {}", env!("CARGO_PKG_VERSION")),
            target: TargetReport {
                input: settings.target_input.clone(),
                server: authority(&settings.host, settings.port),
                host_unicode: target::Target::parse(&settings.target_input)
                    .ok()
                    .and_then(|t| t.host_unicode),
                user: settings.user.clone(),
                mailbox: settings.mailbox.clone(),
                read_only: settings.read_only,
                tls_mode: settings.tls_mode,
            },
            policy: settings.policy.clone(),
            hops: Vec::new(),
            chain: Vec::new(),
            password_sent_to: Vec::new(),
            diagnoses: Vec::new(),
            verdict: verdict::placeholder(),
            total_ms: 0.0,
        };
        Probe {
            settings,
            password,
            follower: Follower::new(settings.policy.clone(), settings.follow),
            report,
            started: Instant::now(),
            deadline: settings.max_time.map(Deadline::after),
            alternatives: vec![HopPlan {
                host: settings.host.clone(),
                port: settings.port,
                user: settings.user.clone(),
                mailbox: settings.mailbox.clone(),
                reason: HopReason::Start,
                tls_mode: settings.tls_mode,
                url_wants_plain: false,
            }],
            consented: false,
            asking: false,
            stop: None,
            reached_at: None,
            done: false,
            tap: Tap::new(password, &settings.user),
            current: None,
        }
    }

    /// Sends an [`Event`] for each hop begun and each step done to `events`.
    pub fn with_events(mut self, events: UnboundedSender<Event>) -> Self {
        self.tap.events = Some(events);
        self
    }

    /// The report so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Runs the next hop, or says why it cannot yet.
    pub async fn advance(&mut self) -> Progress {
        if self.done || self.asking {
            return if self.done {
                Progress::Done
            } else {
                Progress::Ask {
                    question: String::new(),
                }
            };
        }
        let Some(plan) = self.alternatives.first().cloned() else {
            return self.end();
        };
        if !std::mem::take(&mut self.consented) {
            match self.follower.decide(&plan) {
                Decision::Go(_) => {}
                Decision::Ask(question) => {
                    self.asking = true;
                    return Progress::Ask { question };
                }
                Decision::Refuse(refusal) => {
                    self.stop = Some(refusal_diagnosis(&refusal, &self.settings.policy));
                    return self.end();
                }
            }
        }
        if let Some(d) = self.deadline_passed() {
            self.stop = Some(d);
            return self.end();
        }
        self.alternatives.remove(0);
        let number = self.report.hops.len() + 1;
        self.tap.begin(Event::HopStarted {
            number,
            server: plan.server(),
            user: plan.user.clone(),
            reason: plan.reason.clone(),
        });
        self.current = Some((plan.clone(), number, Instant::now()));
        let result = hop::run(
            &plan,
            self.settings,
            self.password,
            number,
            self.deadline,
            &self.tap,
        )
        .await;
        self.current = None;
        self.follower.record(&plan, result.hop.encrypted);
        if result.hop.password_sent {
            self.report.password_sent_to.push(plan.server());
        }
        self.report.diagnoses.extend(result.diagnoses);
        self.report.hops.push(result.hop);
        if let Some(failure) = result.failure {
            if result.unreachable && !self.alternatives.is_empty() {
                // A replica that cannot be reached: note it, and try the next one.
                self.report.diagnoses.push(Diagnosis {
                    id: DiagnosisId::ReplicaUnreachable,
                    severity: Severity::Info,
                    message: format!(
                        "{} (a replica); the next alternative of the referral was tried.",
                        failure.message.trim_end_matches('.')
                    ),
                    next_step: Some(
                        "Bring that replica back, or drop it from the referral.".into(),
                    ),
                });
                return Progress::Hop;
            }
            self.report.chain.push(plan.server());
            self.stop = Some(failure);
            self.done_now();
            return Progress::Hop;
        }
        self.report.chain.push(plan.server());
        if result.reached {
            self.reached_at = Some(plan.server());
        }
        match result.next {
            Next::Done => self.done_now(),
            Next::Follow { kind, urls } => match self.follower.alternatives(&plan, kind, &urls) {
                Ok(alternatives) => {
                    note_alternatives(&mut self.report, &alternatives);
                    self.alternatives = alternatives.plans;
                }
                Err(refusal) => {
                    self.stop = Some(refusal_diagnosis(&refusal, &self.settings.policy));
                    self.done_now();
                }
            },
        }
        Progress::Hop
    }

    /// The person's answer to [`Progress::Ask`].
    pub fn answer(&mut self, yes: bool) {
        if !std::mem::take(&mut self.asking) {
            return;
        }
        let Some(plan) = self.alternatives.first() else {
            return;
        };
        match self.follower.consent(plan, yes) {
            Ok(()) => self.consented = true,
            Err(refusal) => {
                self.stop = Some(refusal_diagnosis(&refusal, &self.settings.policy));
                self.done_now();
            }
        }
    }

    fn deadline_passed(&self) -> Option<Diagnosis> {
        let d = self.deadline?;
        (Instant::now() >= d.at).then(|| Diagnosis {
            id: DiagnosisId::Deadline,
            severity: Severity::Unknown,
            message: format!(
                "The deadline for the whole probe ({}, --max-time) passed before the next hop.",
                crate::transport::human_duration(d.limit)
            ),
            next_step: Some(
                "Raise --max-time, or find out why the servers answer so slowly (-v).".into(),
            ),
        })
    }

    fn done_now(&mut self) {
        self.alternatives.clear();
        self.done = true;
    }

    fn end(&mut self) -> Progress {
        self.done_now();
        Progress::Done
    }

    /// The finished report, with its verdict. The password's bytes are masked in every text of it, wherever a
    /// server echoed them.
    pub fn finish(mut self) -> Report {
        if let Some(d) = self.stop.take() {
            self.report.diagnoses.push(d);
        }
        self.report.verdict = verdict::decide(&self.report, self.reached_at.take(), self.settings);
        self.report.total_ms = crate::session::millis_since(self.started);
        let redactor = self.redactor();
        redact(&mut self.report, &redactor);
        self.report
    }
}

impl Probe<'_> {
    /// The report of a probe stopped by the person (Ctrl-C) after the caller dropped the [`Probe::advance`] future:
    /// the hops done, the hop under way with the steps it had done, a finding saying where it stopped, and a verdict
    /// of [`crate::exit::INTERRUPTED`] (130). A hop whose login was under way counts its server among those that may
    /// have received the password.
    pub fn interrupt(mut self) -> Report {
        let during = self.current.take().map(|(plan, number, started)| {
            let steps = self.tap.steps.lock().map(|s| s.clone()).unwrap_or_default();
            let login_sent = self.tap.login_sent.load(Ordering::Relaxed);
            (plan, number, steps, login_sent, started)
        });
        let message = match &during {
            Some((plan, number, steps, ..)) => format!(
                "Interrupted (Ctrl-C) during hop {number} to {}, {}.",
                plan.server(),
                match steps.last() {
                    Some(step) => format!("after the {} step", step.name),
                    None => "before it connected".into(),
                }
            ),
            None if self.report.hops.is_empty() => {
                "Interrupted (Ctrl-C) before the first hop.".into()
            }
            None => format!("Interrupted (Ctrl-C) after hop {}.", self.report.hops.len()),
        };
        if let Some((plan, number, steps, login_sent, started)) = during {
            let ms = crate::session::millis_since(started);
            if login_sent {
                self.report.password_sent_to.push(plan.server());
            }
            self.report.chain.push(plan.server());
            self.report.hops.push(Hop {
                password_sent: login_sent,
                steps,
                error: Some(HopError {
                    phase: INTERRUPTED_PHASE.into(),
                    message: message.clone(),
                }),
                ms,
                ..Hop::begun(number, &plan)
            });
        }
        let next_step =
            "Rerun to see the walkthrough to its end; --timeout and --max-time bound every wait.";
        self.report.diagnoses.push(Diagnosis {
            id: DiagnosisId::Interrupted,
            severity: Severity::Unknown,
            message: message.clone(),
            next_step: Some(next_step.into()),
        });
        self.stop = None;
        let reached_at = self.reached_at.take();
        self.report.verdict = Verdict {
            status: VerdictStatus::Unknown,
            exit_code: crate::exit::INTERRUPTED,
            summary: message,
            next_step: next_step.into(),
            mailbox_reached: reached_at.is_some(),
            reached_at,
        };
        self.report.total_ms = crate::session::millis_since(self.started);
        let redactor = self.redactor();
        redact(&mut self.report, &redactor);
        self.report
    }
}

/// The phase of the error of a hop that Ctrl-C stopped.
pub const INTERRUPTED_PHASE: &str = "interrupted";

/// Masks the password in every text of a report that can hold server bytes.
fn redact(report: &mut Report, r: &Redactor) {
    for hop in &mut report.hops {
        for step in &mut hop.steps {
            r.redact_in_place(&mut step.detail);
        }
        if let Some(g) = hop.greeting.as_mut() {
            r.redact_in_place(&mut g.line);
        }
        for c in [&mut hop.login, &mut hop.rlist, &mut hop.select]
            .into_iter()
            .flatten()
        {
            r.redact_in_place(&mut c.text);
            r.redact_in_place(&mut c.line);
            r.redact_in_place(&mut c.command);
        }
        for e in &mut hop.transcript {
            r.redact_in_place(&mut e.text);
        }
        if let Some(e) = hop.error.as_mut() {
            r.redact_in_place(&mut e.message);
        }
    }
    for d in &mut report.diagnoses {
        r.redact_in_place(&mut d.message);
        if let Some(n) = d.next_step.as_mut() {
            r.redact_in_place(n);
        }
    }
    r.redact_in_place(&mut report.verdict.summary);
    r.redact_in_place(&mut report.verdict.next_step);
}

/// Runs a probe to the end with no one to ask (a referral that needs consent is refused) and returns its report.
/// Never panics and never hangs: every wait is bounded. The future is `Send`, so probes can be spawned on tokio.
pub async fn run(settings: &ProbeSettings, password: &Secret) -> Report {
    let mut probe = Probe::new(settings, password);
    loop {
        match probe.advance().await {
            Progress::Hop => {}
            Progress::Ask { .. } => probe.answer(false),
            Progress::Done => return probe.finish(),
        }
    }
}

/// A referral with several URLs: say how many were offered and how many will be tried.
fn note_alternatives(report: &mut Report, alternatives: &Alternatives) {
    if alternatives.offered <= 1 {
        return;
    }
    let Some(d) = report.diagnoses.iter_mut().rev().find(|d| {
        matches!(
            d.id,
            DiagnosisId::LoginReferral
                | DiagnosisId::MailboxReferral
                | DiagnosisId::GreetingReferral
        )
    }) else {
        return;
    };
    d.message.push_str(&format!(
        " 1 referral with {} alternatives; up to {} are tried, in order.",
        alternatives.offered,
        alternatives.plans.len()
    ));
}

/// `advice` as a sentence: capitalised, with a full stop.
fn sentence(advice: &str) -> String {
    let mut chars = advice.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The finding that reports a refusal to follow; its next step comes from the policy in force.
pub fn refusal_diagnosis(refusal: &Refusal, policy: &Policy) -> Diagnosis {
    let critical = |id, message: String, next: String| Diagnosis {
        id,
        severity: Severity::Critical,
        message,
        next_step: Some(next),
    };
    match refusal {
        Refusal::Loop { chain } => critical(
            DiagnosisId::ReferralLoop,
            format!(
                "The referrals loop: {} (same host, port and user again).",
                chain.join(" → ")
            ),
            "Fix the referral configuration: one of these servers must accept the user.".into(),
        ),
        Refusal::TooManyHops { max, chain } => critical(
            DiagnosisId::TooManyHops,
            format!(
                "More than {max} referrals (--max-hops); RFC 2221 says a client must not go further without asking: {}",
                chain.join(" → ")
            ),
            "Shorten the chain so the first server refers straight to the home server, or raise --max-hops.".into(),
        ),
        Refusal::Policy {
            server,
            host,
            reason,
            ..
        } => critical(
            DiagnosisId::PolicyRefused,
            format!("Did not follow the referral to {server}: {reason}."),
            sentence(&policy.advice(host, false)),
        ),
        Refusal::Declined { server, host } => critical(
            DiagnosisId::PolicyRefused,
            format!("You declined to send the password to {server}."),
            sentence(&policy.advice(host, true)),
        ),
        Refusal::BadUrl { errors } => critical(
            DiagnosisId::BadReferralUrl,
            format!("The referral cannot be followed: {}", errors.join("; ")),
            "Fix the URL in the server's referral configuration.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_can_be_spawned_on_tokio() {
        fn is_send<T: Send>(_: &T) {}
        let settings = ProbeSettings {
            target_input: "127.0.0.1:1".into(),
            host: "127.0.0.1".into(),
            port: 1,
            user: "u".into(),
            mailbox: "INBOX".into(),
            read_only: false,
            tls_mode: TlsMode::Plain,
            tls: TlsOptions {
                ca_file: None,
                insecure: false,
            },
            auth: AuthChoice::Login,
            policy: Policy {
                mode: crate::follow::policy::FollowMode::Auto,
                max_hops: 10,
                allow_hosts: Vec::new(),
                named_host: "127.0.0.1".into(),
                interactive: false,
            },
            session: SessionOptions::default(),
            cert_warn_days: 14,
            max_time: Some(Duration::from_secs(30)),
            follow: FollowLimits::default(),
            pipelining: true,
        };
        let password = Secret::new("pw");
        is_send(&run(&settings, &password));
    }
}
