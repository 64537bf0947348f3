//! The probe: KB Q217388's telnet walkthrough as one command. Connect, TLS, banner, capabilities, LOGIN, detect and
//! decode referrals, follow them under the [`policy`], SELECT, diagnose, LOGOUT — and produce a typed [`report::Report`].
//!
//! - [`target`]: what the user typed as the target;
//! - [`policy`]: to which hosts the password may go;
//! - [`hop`]: one connection's walkthrough;
//! - [`report`]: the report types (the JSON contract);
//! - [`verdict`]: the conclusion and exit code.
//!
//! The probe never prints. It asks the person only through [`Confirm`], which the CLI implements on a terminal.

pub mod hop;
pub mod policy;
pub mod report;
pub mod target;
pub mod verdict;

use std::collections::HashSet;
use std::time::Instant;

use crate::explain::ReferralKind;
use crate::proto::code::ReferralUrl;
use crate::secret::Secret;
use crate::session::SessionOptions;
use crate::transport::{TlsMode, TlsOptions};
use policy::{Decision, Policy};
use report::{Diagnosis, HopReason, Report, Severity, TargetReport, REPORT_VERSION};
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
}

/// Asks the person a yes/no question (the CLI does it on the terminal).
pub trait Confirm: Send {
    /// Returns true when the person agrees.
    fn confirm(&mut self, question: &str) -> bool;
}

/// No one to ask: every question is answered no.
pub struct NoOneToAsk;

impl Confirm for NoOneToAsk {
    fn confirm(&mut self, _question: &str) -> bool {
        false
    }
}

/// One planned connection.
#[derive(Debug, Clone)]
pub struct HopPlan {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Mailbox to open.
    pub mailbox: String,
    /// Why.
    pub reason: HopReason,
    /// TLS mode.
    pub tls_mode: TlsMode,
    /// The referral URL asked for AUTHENTICATE PLAIN.
    pub url_wants_plain: bool,
}

impl HopPlan {
    /// `host:port`.
    pub fn server(&self) -> String {
        authority(&self.host, self.port)
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

/// Runs a probe to the end with no one to ask (a referral that needs consent is refused) and returns its report.
/// Never panics and never hangs: every wait is bounded. The future is `Send`, so probes can be spawned on tokio.
pub async fn run(settings: &ProbeSettings, password: &Secret) -> Report {
    run_with_confirm(settings, password, &mut NoOneToAsk).await
}

/// Runs a probe to the end, asking `confirm` before a referral that needs consent, and returns its report.
pub async fn run_with_confirm(
    settings: &ProbeSettings,
    password: &Secret,
    confirm: &mut dyn Confirm,
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        version: REPORT_VERSION,
        tool: format!("imapref {}", env!("CARGO_PKG_VERSION")),
        target: TargetReport {
            input: settings.target_input.clone(),
            server: authority(&settings.host, settings.port),
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
    let mut plans = vec![HopPlan {
        host: settings.host.clone(),
        port: settings.port,
        user: settings.user.clone(),
        mailbox: settings.mailbox.clone(),
        reason: HopReason::Start,
        tls_mode: settings.tls_mode,
        url_wants_plain: false,
    }];
    let mut visited: HashSet<(String, u16, String)> = HashSet::new();
    let mut referrals_followed = 0usize;
    let mut follow_mode = settings.tls_mode;
    let mut stop: Option<Diagnosis> = None;
    let mut reached_at = None;

    'hops: while !plans.is_empty() {
        let alternatives = std::mem::take(&mut plans);
        let last_alternative = alternatives.len() - 1;
        for (i, plan) in alternatives.into_iter().enumerate() {
            if plan.reason != HopReason::Start {
                if let Some(refusal) = check_before_following(
                    settings,
                    &plan,
                    &visited,
                    referrals_followed,
                    &report,
                    confirm,
                ) {
                    stop = Some(refusal);
                    break 'hops;
                }
            }
            visited.insert(loop_key(&plan));
            let result = hop::run(&plan, settings, password, report.hops.len() + 1).await;
            report.chain.push(plan.server());
            if result.hop.password_sent {
                report.password_sent_to.push(plan.server());
            }
            if report.hops.is_empty() {
                follow_mode = follow_tls_mode(settings.tls_mode, result.hop.encrypted);
            }
            report.diagnoses.extend(result.diagnoses);
            report.hops.push(result.hop);
            if result.reached {
                reached_at = Some(plan.server());
            }
            if let Some(failure) = result.failure {
                // A replica that cannot be reached: try the next one.
                if result.unreachable && i < last_alternative {
                    report.diagnoses.push(failure);
                    continue;
                }
                stop = Some(failure);
                break 'hops;
            }
            if let Next::Follow { kind, urls } = result.next {
                referrals_followed += 1;
                match plans_from_referral(&plan, kind, &urls, follow_mode) {
                    Ok(next) => plans = next,
                    Err(d) => {
                        stop = Some(d);
                        break 'hops;
                    }
                }
            }
            break;
        }
    }
    if let Some(d) = stop {
        report.diagnoses.push(d);
    }
    report.verdict = verdict::decide(&report, reached_at, settings);
    report.total_ms = crate::session::millis_since(started);
    report
}

fn loop_key(plan: &HopPlan) -> (String, u16, String) {
    (plan.host.to_ascii_lowercase(), plan.port, plan.user.clone())
}

/// Loop, hop-limit and policy checks before following a referral. `Some` is the reason to stop.
fn check_before_following(
    settings: &ProbeSettings,
    plan: &HopPlan,
    visited: &HashSet<(String, u16, String)>,
    referrals_followed: usize,
    report: &Report,
    confirm: &mut dyn Confirm,
) -> Option<Diagnosis> {
    let chain = || {
        let mut c = report.chain.clone();
        c.push(plan.server());
        c.join(" → ")
    };
    if visited.contains(&loop_key(plan)) {
        return Some(Diagnosis {
            id: "referral-loop".into(),
            severity: Severity::Critical,
            message: format!(
                "The referrals loop: {} (same host, port and user again).",
                chain()
            ),
            next_step: Some(
                "Fix the referral configuration: one of these servers must accept the user.".into(),
            ),
        });
    }
    if referrals_followed > settings.policy.max_hops {
        return Some(Diagnosis {
            id: "too-many-hops".into(),
            severity: Severity::Critical,
            message: format!(
                "More than {} referrals (--max-hops); RFC 2221 says a client must not go further without asking: {}",
                settings.policy.max_hops,
                chain()
            ),
            next_step: Some("Shorten the chain so the first server refers straight to the home server, or raise --max-hops.".into()),
        });
    }
    match settings.policy.decide(&plan.host) {
        Decision::Follow(_) => None,
        Decision::Ask(question) => {
            if confirm.confirm(&question) {
                None
            } else {
                Some(Diagnosis {
                    id: "policy-refused".into(),
                    severity: Severity::Critical,
                    message: format!("You declined to send the password to {}.", plan.server()),
                    next_step: Some(format!(
                        "Rerun with --allow-host {} to follow this referral.",
                        plan.host
                    )),
                })
            }
        }
        Decision::Refuse(reason) => Some(Diagnosis {
            id: "policy-refused".into(),
            severity: Severity::Critical,
            message: format!(
                "Did not follow the referral to {}: {reason}.",
                plan.server()
            ),
            next_step: Some(format!(
                "Rerun with --allow-host {} if you trust that server.",
                plan.host
            )),
        }),
    }
}

/// The TLS mode for the next hop: never below the current connection's level. An encrypted connection is followed
/// with implicit TLS when it used implicit TLS, and with required STARTTLS otherwise (opportunistic STARTTLS that did
/// get TLS, or a STARTTLS done by hand in the shell); a plaintext connection keeps its mode.
pub fn follow_tls_mode(current: TlsMode, encrypted: bool) -> TlsMode {
    match (encrypted, current) {
        (true, TlsMode::Implicit) => TlsMode::Implicit,
        (true, _) => TlsMode::StartTls,
        (false, mode) => mode,
    }
}

/// The next hop's plans: one per URL (replicas are alternatives, most preferred first).
fn plans_from_referral(
    from: &HopPlan,
    kind: ReferralKind,
    urls: &[ReferralUrl],
    tls_mode: TlsMode,
) -> Result<Vec<HopPlan>, Diagnosis> {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for referral in urls {
        let Some(url) = &referral.url else {
            errors.push(format!(
                "{} ({})",
                referral.raw,
                referral.error.clone().unwrap_or_default()
            ));
            continue;
        };
        let port = url.port.unwrap_or(tls_mode.default_port());
        let mailbox = match kind {
            ReferralKind::Mailbox => url.mailbox.clone().unwrap_or_else(|| from.mailbox.clone()),
            ReferralKind::Login => url
                .mailbox
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| from.mailbox.clone()),
        };
        let reason = match kind {
            ReferralKind::Login => HopReason::LoginReferral {
                url: referral.raw.clone(),
            },
            ReferralKind::Mailbox => HopReason::MailboxReferral {
                url: referral.raw.clone(),
            },
        };
        plans.push(HopPlan {
            host: url.host.clone(),
            port,
            user: url.login_user(&from.user).to_string(),
            mailbox,
            reason,
            tls_mode,
            url_wants_plain: url.wants_plain(),
        });
    }
    if plans.is_empty() {
        return Err(Diagnosis {
            id: "bad-referral-url".into(),
            severity: Severity::Critical,
            message: format!("The referral cannot be followed: {}", errors.join("; ")),
            next_step: Some("Fix the URL in the server's referral configuration.".into()),
        });
    }
    Ok(plans)
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
                mode: policy::FollowMode::Auto,
                max_hops: 10,
                allow_hosts: Vec::new(),
                named_host: "127.0.0.1".into(),
                interactive: false,
            },
            session: SessionOptions::default(),
            cert_warn_days: 14,
        };
        let password = Secret::new("pw");
        is_send(&run(&settings, &password));
    }

    #[test]
    fn following_never_drops_below_the_current_tls_level() {
        assert_eq!(follow_tls_mode(TlsMode::Implicit, true), TlsMode::Implicit);
        assert_eq!(follow_tls_mode(TlsMode::StartTls, true), TlsMode::StartTls);
        assert_eq!(
            follow_tls_mode(TlsMode::StartTlsOpportunistic, true),
            TlsMode::StartTls
        );
        assert_eq!(
            follow_tls_mode(TlsMode::Plain, true),
            TlsMode::StartTls,
            "STARTTLS typed in the shell"
        );
        assert_eq!(
            follow_tls_mode(TlsMode::StartTlsOpportunistic, false),
            TlsMode::StartTlsOpportunistic
        );
        assert_eq!(follow_tls_mode(TlsMode::Plain, false), TlsMode::Plain);
    }
}
