//! The conclusion of a probe: one sentence, the next thing to check, and the exit code (monitoring-plugins
//! convention, see [`crate::exit`]).
//!
//! - Reached the mailbox (after any referrals): OK, or WARNING when a finding is a warning (a certificate that expires
//!   soon, STARTTLS missing in opportunistic mode, "no replica" seen before following the login referral).
//! - Not reached: the severity of the finding that stopped the probe — CRITICAL for refusals, no replica, referral
//!   problems, loops, TLS and policy; UNKNOWN for DNS, connect, timeout and garbage on the first server.

use super::report::{Report, Severity, Verdict, VerdictStatus};
use super::ProbeSettings;

/// A verdict to fill the report with until the real one is decided.
pub fn placeholder() -> Verdict {
    Verdict {
        status: VerdictStatus::Unknown,
        exit_code: crate::exit::UNKNOWN,
        summary: String::new(),
        next_step: String::new(),
        mailbox_reached: false,
        reached_at: None,
    }
}

/// Decides the verdict from the hops and diagnoses.
pub fn decide(report: &Report, reached_at: Option<String>, settings: &ProbeSettings) -> Verdict {
    // Referrals followed: the chain of servers used (a dead replica is a hop, not a referral).
    let referrals = report.chain.len().saturating_sub(1);
    if let Some(server) = reached_at {
        let warned = report
            .diagnoses
            .iter()
            .any(|d| d.severity == Severity::Warning);
        let status = if warned {
            VerdictStatus::Warning
        } else {
            VerdictStatus::Ok
        };
        let last_user = report
            .hops
            .last()
            .map_or(settings.user.as_str(), |h| h.user.as_str());
        let last_mailbox = report
            .hops
            .last()
            .map_or(settings.mailbox.as_str(), |h| h.mailbox.as_str());
        let summary = if referrals == 0 {
            format!("`{last_mailbox}` of {last_user} is on {server}: opened directly.")
        } else {
            format!(
                "`{last_mailbox}` of {last_user} is on {server}, reached after {referrals} referral{} from {}.",
                if referrals == 1 { "" } else { "s" },
                report.target.server
            )
        };
        let next_step = if let Some(d) = report
            .diagnoses
            .iter()
            .find(|d| d.severity == Severity::Warning)
        {
            d.next_step.clone().unwrap_or_else(|| d.message.clone())
        } else if referrals > 0 {
            format!(
                "Clients that do not follow referrals (Outlook Express, curl, imaplib) will fail at {}: point them at \
                 {server}, or make {} proxy (Dovecot proxy=y).",
                report.target.server, report.target.server
            )
        } else {
            "Nothing to fix: the mailbox is where the client looks for it.".into()
        };
        return Verdict {
            status,
            exit_code: status.exit_code(),
            summary,
            next_step,
            mailbox_reached: true,
            reached_at: Some(server),
        };
    }
    // Not reached: the last critical or unknown finding is what stopped the probe.
    let stopper = report
        .diagnoses
        .iter()
        .rev()
        .find(|d| d.severity >= Severity::Critical);
    let (status, summary, next_step) = match stopper {
        Some(d) => (
            if d.severity == Severity::Unknown {
                VerdictStatus::Unknown
            } else {
                VerdictStatus::Critical
            },
            d.message.clone(),
            d.next_step.clone().unwrap_or_default(),
        ),
        None => (
            VerdictStatus::Critical,
            format!("`{}` was not reached.", settings.mailbox),
            "Read the transcript (-v) for what the server said.".into(),
        ),
    };
    Verdict {
        status,
        exit_code: status.exit_code(),
        summary,
        next_step,
        mailbox_reached: false,
        reached_at: None,
    }
}
