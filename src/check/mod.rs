//! `imapref check FILE`: many probes from a TOML file ([`spec`]), run concurrently in one process as tokio tasks, each
//! judged against its expectations ([`evaluate`]).
//!
//! The CLI turns each [`spec::CheckSpec`] into [`ProbeSettings`] and a password (the same validation as `imapref
//! probe`) and hands the runner a list of [`Prepared`] checks; [`run_all`] runs at most `jobs` at once, bounds each by
//! its own `max_time` and returns one [`Outcome`] per check, in file order. A check that could not be prepared is an
//! [`Outcome`] too (UNKNOWN, "bad check"), so one bad check never stops the others. Nothing here prints; the renderers
//! in [`crate::render`] turn the outcomes into a table, JSON, Nagios, OpenMetrics, JUnit or a graph.

pub mod settings;
pub mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::probe::report::{DiagnosisId, HopReason, Report, VerdictStatus};
use crate::probe::{self, ProbeSettings};
use crate::secret::Secret;
use spec::{CheckSpec, Expect};

/// The default for `--jobs`: enough to hide network latency, few enough for a small server's connection limit.
pub const DEFAULT_JOBS: usize = 64;

/// The default per-check bound (`--max-time`), in seconds: three times the default read timeout.
pub const DEFAULT_MAX_TIME: f64 = 30.0;

/// One check, ready to run (or not).
#[derive(Debug)]
pub struct Prepared {
    /// The check's name.
    pub name: String,
    /// The target as written.
    pub target: String,
    /// The login name as written.
    pub login: String,
    /// 1-based line of the check in the file.
    pub line: usize,
    /// What the check expects, and how long it may take.
    pub spec: CheckSpec,
    /// The settings and password, or why the check cannot run.
    pub setup: Result<(ProbeSettings, Secret), String>,
    /// The hard bound on the whole check.
    pub max_time: Duration,
}

/// What kind of outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// The probe ran to its end and was judged.
    Ran,
    /// The probe did not finish within `max_time`.
    TimedOut,
    /// The check could not be run (a bad key, a missing password, a bad target).
    BadCheck,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The check's name.
    pub name: String,
    /// The target as written.
    pub target: String,
    /// The login name as written.
    pub login: String,
    /// 1-based line of the check in the file.
    pub line: usize,
    /// Ran, timed out, or a bad check.
    pub kind: OutcomeKind,
    /// The check's status.
    pub status: VerdictStatus,
    /// Its exit code ([`crate::exit`]).
    pub exit_code: i32,
    /// One sentence: what was found, or why the check failed.
    pub message: String,
    /// Unmet expectations and other findings, one sentence each.
    pub problems: Vec<String>,
    /// Diagnosis ids from the probe (`login-referral`, `referral-loop`, ...).
    pub diagnoses: Vec<String>,
    /// Seconds the check took.
    pub seconds: f64,
    /// Referrals followed to reach the mailbox (dead replicas not counted).
    pub referral_hops: usize,
    /// The fewest days left of any certificate seen on the way.
    pub cert_days_left: Option<i64>,
    /// The earliest certificate expiry (`not_after`, RFC 3339) seen on the way.
    pub cert_not_after: Option<String>,
    /// The `max_seconds` threshold, for perfdata.
    pub warn_seconds: Option<f64>,
    /// The `max_time` bound in seconds, for perfdata.
    pub max_time_seconds: f64,
    /// The `cert_min_days` threshold in force.
    pub cert_min_days: i64,
    /// The probe's report, when it ran to its end.
    pub report: Option<Report>,
}

impl Outcome {
    /// True for OK and WARNING: the expectations were met.
    pub fn passed(&self) -> bool {
        matches!(self.status, VerdictStatus::Ok | VerdictStatus::Warning)
    }
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks.
    pub total: usize,
    /// OK.
    pub ok: usize,
    /// WARNING.
    pub warning: usize,
    /// CRITICAL.
    pub critical: usize,
    /// UNKNOWN (timeouts and bad checks included).
    pub unknown: usize,
    /// The worst status.
    pub status: VerdictStatus,
    /// The worst exit code: the highest of the checks' (0 OK < 1 WARNING < 2 CRITICAL < 3 UNKNOWN), as `probe` ranks
    /// its findings.
    pub exit_code: i32,
}

/// Counts the outcomes and finds the worst.
pub fn summarize(outcomes: &[Outcome]) -> Summary {
    let mut s = Summary {
        total: outcomes.len(),
        ok: 0,
        warning: 0,
        critical: 0,
        unknown: 0,
        status: VerdictStatus::Ok,
        exit_code: crate::exit::OK,
    };
    for o in outcomes {
        match o.status {
            VerdictStatus::Ok => s.ok += 1,
            VerdictStatus::Warning => s.warning += 1,
            VerdictStatus::Critical => s.critical += 1,
            VerdictStatus::Unknown => s.unknown += 1,
        }
        if o.exit_code > s.exit_code {
            s.exit_code = o.exit_code;
            s.status = o.status;
        }
    }
    s
}

/// Status from an exit code.
fn status_of(code: i32) -> VerdictStatus {
    match code {
        0 => VerdictStatus::Ok,
        1 => VerdictStatus::Warning,
        2 => VerdictStatus::Critical,
        _ => VerdictStatus::Unknown,
    }
}

/// Referrals followed to reach the last hop: every hop after the first, less the dead replicas (a hop that failed
/// and was not the last one tried).
pub fn referral_hops(report: &Report) -> usize {
    let last = report.hops.len().saturating_sub(1);
    report
        .hops
        .iter()
        .enumerate()
        .filter(|(i, hop)| hop.reason != HopReason::Start && (hop.error.is_none() || *i == last))
        .count()
}

/// Whether any server answered with a referral.
fn saw_referral(report: &Report) -> bool {
    report.hops.len() > 1
        || report.hops.iter().any(|h| {
            h.login.as_ref().is_some_and(|c| c.referral.is_some())
                || h.select.as_ref().is_some_and(|c| c.referral.is_some())
                || h.greeting
                    .as_ref()
                    .is_some_and(|g| g.line.to_ascii_uppercase().contains("[REFERRAL"))
        })
        || report
            .diagnoses
            .iter()
            .any(|d| d.id.as_str().contains("referral") && d.id != DiagnosisId::BadReferralUrl)
}

/// The worst code so far and the unmet expectations.
struct Judge {
    code: i32,
    problems: Vec<String>,
}

impl Judge {
    fn raise(&mut self, code: i32, why: String) {
        self.code = self.code.max(code);
        self.problems.push(why);
    }
}

/// Judges a finished probe against the check's expectations.
pub fn evaluate(prepared: &Prepared, report: Report, seconds: f64) -> Outcome {
    let spec = &prepared.spec;
    let expect = spec.expect.unwrap_or_default();
    let cert_min_days = spec.cert_min_days.unwrap_or(14);
    let hops = referral_hops(&report);
    let earliest = report
        .hops
        .iter()
        .filter_map(|h| h.certificate.as_ref())
        .min_by_key(|c| c.days_left);
    let mut j = Judge {
        code: crate::exit::OK,
        problems: Vec::new(),
    };
    let verdict = &report.verdict;
    let mut message = verdict.summary.clone();
    match expect {
        Expect::Reached => {
            if verdict.exit_code != crate::exit::OK {
                j.code = j.code.max(verdict.exit_code);
            }
            if verdict.mailbox_reached {
                if let Some(home) = &spec.expect_home {
                    let at = verdict.reached_at.clone().unwrap_or_default();
                    if !at.eq_ignore_ascii_case(home) {
                        j.raise(
                            crate::exit::CRITICAL,
                            format!("reached on {at}, expected on {home} (expect_home)"),
                        );
                    }
                }
                if let Some(want) = spec.expect_hops {
                    if hops != want {
                        j.raise(
                            crate::exit::CRITICAL,
                            format!(
                                "{hops} referral{} followed, expected {want} (expect_hops)",
                                if hops == 1 { "" } else { "s" }
                            ),
                        );
                    }
                }
            }
        }
        Expect::Referred => {
            if saw_referral(&report) {
                message = format!("referred as expected: {}", verdict.summary);
                if let Some(want) = spec.expect_hops {
                    if hops != want {
                        j.raise(
                            crate::exit::CRITICAL,
                            format!("{hops} referrals followed, expected {want} (expect_hops)"),
                        );
                    }
                }
            } else if verdict.status == VerdictStatus::Unknown {
                j.code = j.code.max(crate::exit::UNKNOWN);
            } else {
                j.raise(
                    crate::exit::CRITICAL,
                    "no referral was given (expect = \"referred\")".into(),
                );
            }
        }
        Expect::Refused => {
            if verdict.mailbox_reached {
                j.raise(
                    crate::exit::CRITICAL,
                    format!(
                        "the mailbox was reached on {} (expect = \"refused\")",
                        verdict.reached_at.clone().unwrap_or_default()
                    ),
                );
            } else if verdict.status == VerdictStatus::Unknown {
                j.code = j.code.max(crate::exit::UNKNOWN);
            } else {
                message = format!("refused as expected: {}", verdict.summary);
            }
        }
    }
    if let Some(cert) = earliest {
        if cert.days_left < 0 {
            j.raise(
                crate::exit::CRITICAL,
                format!(
                    "a certificate expired {} days ago ({})",
                    -cert.days_left, cert.not_after
                ),
            );
        } else if cert.days_left < cert_min_days {
            j.raise(
                crate::exit::WARNING,
                format!(
                    "a certificate expires in {} days (cert_min_days = {cert_min_days})",
                    cert.days_left
                ),
            );
        }
    }
    if let Some(limit) = spec.max_seconds {
        if seconds > limit {
            j.raise(
                crate::exit::WARNING,
                format!("took {seconds:.3} s, more than max_seconds = {limit}"),
            );
        }
    }
    let Judge { code, problems } = j;
    let status = status_of(code);
    if !problems.is_empty() && matches!(expect, Expect::Reached) && verdict.exit_code == 0 {
        message = problems.join("; ");
    } else if !problems.is_empty() {
        message = format!("{}; {}", problems.join("; "), message);
    }
    Outcome {
        name: prepared.name.clone(),
        target: prepared.target.clone(),
        login: prepared.login.clone(),
        line: prepared.line,
        kind: OutcomeKind::Ran,
        status,
        exit_code: status.exit_code(),
        message,
        problems,
        diagnoses: report.diagnoses.iter().map(|d| d.id.as_str()).collect(),
        seconds,
        referral_hops: hops,
        cert_days_left: earliest.map(|c| c.days_left),
        cert_not_after: earliest.map(|c| c.not_after.clone()),
        warn_seconds: spec.max_seconds,
        max_time_seconds: prepared.max_time.as_secs_f64(),
        cert_min_days,
        report: Some(report),
    }
}

/// An outcome without a report: a timeout or a bad check, UNKNOWN.
fn unknown(prepared: &Prepared, kind: OutcomeKind, message: String, seconds: f64) -> Outcome {
    Outcome {
        name: prepared.name.clone(),
        target: prepared.target.clone(),
        login: prepared.login.clone(),
        line: prepared.line,
        kind,
        status: VerdictStatus::Unknown,
        exit_code: crate::exit::UNKNOWN,
        problems: vec![message.clone()],
        message,
        diagnoses: Vec::new(),
        seconds,
        referral_hops: 0,
        cert_days_left: None,
        cert_not_after: None,
        warn_seconds: prepared.spec.max_seconds,
        max_time_seconds: prepared.max_time.as_secs_f64(),
        cert_min_days: prepared.spec.cert_min_days.unwrap_or(14),
        report: None,
    }
}

/// Runs one prepared check to its outcome.
pub async fn run_one(prepared: &Prepared) -> Outcome {
    let (settings, password) = match &prepared.setup {
        Ok(setup) => setup,
        Err(why) => {
            return unknown(
                prepared,
                OutcomeKind::BadCheck,
                format!("bad check: {why}"),
                0.0,
            )
        }
    };
    let started = Instant::now();
    // The probe's own deadline (max_time) stops it and says where; this bound is only a backstop.
    let backstop = prepared.max_time + Duration::from_secs(1);
    match tokio::time::timeout(backstop, probe::run(settings, password)).await {
        Ok(report) => match report
            .diagnoses
            .iter()
            .find(|d| d.id == DiagnosisId::Deadline)
        {
            // The probe stopped itself at max_time: a timed-out check, with where the probe was.
            Some(d) => unknown(
                prepared,
                OutcomeKind::TimedOut,
                format!(
                    "did not finish within max_time = {} s: {}",
                    prepared.max_time.as_secs_f64(),
                    d.message
                ),
                started.elapsed().as_secs_f64(),
            ),
            None => evaluate(prepared, report, started.elapsed().as_secs_f64()),
        },
        Err(_) => unknown(
            prepared,
            OutcomeKind::TimedOut,
            format!(
                "did not finish within max_time = {} s (the probe was stopped)",
                prepared.max_time.as_secs_f64()
            ),
            started.elapsed().as_secs_f64(),
        ),
    }
}

/// Called once per finished check (from the task that ran it), for a progress bar.
pub type Progress = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// Runs every check, at most `jobs` at once, and returns the outcomes in the order given. Must run inside a tokio
/// runtime. A task that panics becomes an UNKNOWN outcome rather than taking the others down.
pub async fn run_all(checks: Vec<Prepared>, jobs: usize, progress: Progress) -> Vec<Outcome> {
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    let mut handles = Vec::with_capacity(checks.len());
    let mut fallbacks = Vec::with_capacity(checks.len());
    for prepared in checks {
        fallbacks.push((
            prepared.name.clone(),
            prepared.target.clone(),
            prepared.login.clone(),
            prepared.line,
            prepared.max_time,
        ));
        let permits = Arc::clone(&permits);
        let progress = Arc::clone(&progress);
        handles.push(tokio::spawn(async move {
            let outcome = match permits.acquire_owned().await {
                Ok(_permit) => run_one(&prepared).await,
                Err(_) => unknown(
                    &prepared,
                    OutcomeKind::BadCheck,
                    "the runner was closed".into(),
                    0.0,
                ),
            };
            progress(&outcome);
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(handles.len());
    for (handle, (name, target, login, line, max_time)) in handles.into_iter().zip(fallbacks) {
        match handle.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => {
                let prepared = Prepared {
                    name,
                    target,
                    login,
                    line,
                    spec: CheckSpec::default(),
                    setup: Err(String::new()),
                    max_time,
                };
                outcomes.push(unknown(
                    &prepared,
                    OutcomeKind::BadCheck,
                    format!("the check's task failed: {err}"),
                    0.0,
                ));
            }
        }
    }
    outcomes
}

/// One probe's report as an outcome (for `imapref probe --format openmetrics`): named `login@target`, judged as a
/// check that expects the mailbox to be reached, with `cert_warn_days` as its certificate threshold.
pub fn outcome_of_probe(report: &Report, cert_warn_days: i64) -> Outcome {
    let prepared = Prepared {
        name: format!("{}@{}", report.target.user, report.target.input),
        target: report.target.input.clone(),
        login: report.target.user.clone(),
        line: 0,
        spec: CheckSpec {
            cert_min_days: Some(cert_warn_days),
            ..CheckSpec::default()
        },
        setup: Err(String::new()),
        max_time: Duration::ZERO,
    };
    evaluate(&prepared, report.clone(), report.total_ms / 1000.0)
}
