//! The conclusion of a probe: one sentence, the next thing to check, and the exit code (monitoring-plugins
//! convention, see [`crate::exit`]).
//!
//! - Reached the mailbox (after any referrals): OK, or WARNING when a finding is a warning (a certificate that expires
//!   soon, STARTTLS missing in opportunistic mode, "no replica" seen before following the login referral).
//! - Not reached: the severity of the finding that stopped the probe — CRITICAL for refusals, no replica, referral
//!   problems, loops, TLS and policy; UNKNOWN for DNS, connect, timeout, garbage and the deadline on the first server,
//!   unless a critical finding was already made.

use super::report::{Report, Severity, Verdict, VerdictStatus};
use super::ProbeSettings;
use crate::follow::HopReason;

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
            let front = &report.target.server;
            // `imapref proxy` follows login referrals; mailbox referrals it passes on unchanged.
            let login_referred = report
                .hops
                .iter()
                .any(|h| matches!(h.reason, HopReason::LoginReferral { .. }));
            if login_referred {
                format!(
                    "Clients that do not follow referrals (Outlook Express, curl, imaplib) will fail at {front}: point \
                     them at {server}, make {front} proxy (Dovecot proxy=y), or put `imapref proxy --listen 127.0.0.1:1143 --upstream {front}` \
                     in front of it (docs/proxy.md)."
                )
            } else {
                format!(
                    "Clients that do not follow referrals (Outlook Express, curl, imaplib) will fail at {front}: point \
                     them at {server}, or make {front} proxy (Dovecot proxy=y)."
                )
            }
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
    // An unknown stopper (a deadline, say) after a critical finding is still critical: that finding stands.
    let critical_found = report
        .diagnoses
        .iter()
        .any(|d| d.severity == Severity::Critical);
    let (status, summary, next_step) = match stopper {
        Some(d) => (
            if d.severity == Severity::Unknown && !critical_found {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::policy::{FollowMode, Policy};
    use crate::follow::{FollowLimits, HopReason};
    use crate::probe::report::{Diagnosis, DiagnosisId, Hop, TargetReport, REPORT_VERSION};
    use crate::probe::AuthChoice;
    use crate::session::SessionOptions;
    use crate::transport::{TlsMode, TlsOptions};

    fn settings() -> ProbeSettings {
        ProbeSettings {
            target_input: "front:143".into(),
            host: "front".into(),
            port: 143,
            user: "jdoe".into(),
            mailbox: "INBOX".into(),
            read_only: false,
            tls_mode: TlsMode::Plain,
            tls: TlsOptions {
                ca_file: None,
                insecure: false,
            },
            auth: AuthChoice::Login,
            policy: policy(),
            session: SessionOptions::default(),
            cert_warn_days: 14,
            max_time: None,
            follow: FollowLimits::default(),
            pipelining: true,
        }
    }

    fn policy() -> Policy {
        Policy {
            mode: FollowMode::Auto,
            max_hops: 10,
            allow_hosts: Vec::new(),
            named_host: "front".into(),
            interactive: false,
        }
    }

    fn hop(server: &str, user: &str, mailbox: &str) -> Hop {
        Hop {
            number: 1,
            server: server.into(),
            reason: HopReason::Start,
            user: user.into(),
            mailbox: mailbox.into(),
            tls_mode: TlsMode::Plain,
            encrypted: false,
            connect: None,
            certificate: None,
            greeting: None,
            capabilities: Vec::new(),
            capabilities_from: None,
            login: None,
            rlist: None,
            select: None,
            mailbox_state: None,
            password_sent: true,
            pipelined: false,
            logout_answered: true,
            round_trips: 3,
            steps: Vec::new(),
            error: None,
            transcript: Vec::new(),
            ms: 1.0,
        }
    }

    fn report(chain: &[&str], diagnoses: Vec<Diagnosis>) -> Report {
        Report {
            version: REPORT_VERSION,
            tool: "imapref test".into(),
            target: TargetReport {
                input: "front:143".into(),
                server: "front:143".into(),
                host_unicode: None,
                user: "jdoe".into(),
                mailbox: "INBOX".into(),
                read_only: false,
                tls_mode: TlsMode::Plain,
            },
            policy: policy(),
            hops: chain.iter().map(|s| hop(s, "jdoe", "INBOX")).collect(),
            chain: chain.iter().map(|s| s.to_string()).collect(),
            password_sent_to: Vec::new(),
            diagnoses,
            verdict: placeholder(),
            total_ms: 1.0,
        }
    }

    fn finding(
        id: DiagnosisId,
        severity: Severity,
        message: &str,
        next: Option<&str>,
    ) -> Diagnosis {
        Diagnosis {
            id,
            severity,
            message: message.into(),
            next_step: next.map(str::to_string),
        }
    }

    #[test]
    fn opened_directly_is_ok_with_nothing_to_fix() {
        let v = decide(
            &report(&["front:143"], Vec::new()),
            Some("front:143".into()),
            &settings(),
        );
        assert_eq!(v.status, VerdictStatus::Ok);
        assert_eq!(v.exit_code, 0);
        assert_eq!(
            v.summary,
            "`INBOX` of jdoe is on front:143: opened directly."
        );
        assert_eq!(
            v.next_step,
            "Nothing to fix: the mailbox is where the client looks for it."
        );
        assert!(v.mailbox_reached);
        assert_eq!(v.reached_at.as_deref(), Some("front:143"));
    }

    #[test]
    fn reached_after_referrals_advises_about_clients_that_do_not_follow() {
        let r = report(&["front:143", "home:143"], Vec::new());
        let v = decide(&r, Some("home:143".into()), &settings());
        assert_eq!(v.status, VerdictStatus::Ok);
        assert_eq!(
            v.summary,
            "`INBOX` of jdoe is on home:143, reached after 1 referral from front:143."
        );
        assert!(
            v.next_step
                .starts_with("Clients that do not follow referrals"),
            "{}",
            v.next_step
        );
        assert!(
            v.next_step.contains("point them at home:143"),
            "{}",
            v.next_step
        );
        let r = report(&["front:143", "mid:143", "home:143"], Vec::new());
        let v = decide(&r, Some("home:143".into()), &settings());
        assert!(v.summary.contains("after 2 referrals"), "{}", v.summary);
    }

    #[test]
    fn info_findings_leave_a_reached_mailbox_ok() {
        let r = report(
            &["front:143", "home:143"],
            vec![finding(
                DiagnosisId::LoginReferral,
                Severity::Info,
                "referred",
                None,
            )],
        );
        let v = decide(&r, Some("home:143".into()), &settings());
        assert_eq!(v.status, VerdictStatus::Ok);
        assert_eq!(v.exit_code, 0);
    }

    #[test]
    fn a_warning_makes_a_reached_mailbox_a_warning_with_its_advice() {
        let r = report(
            &["front:143"],
            vec![
                finding(DiagnosisId::LoginReferral, Severity::Info, "referred", None),
                finding(
                    DiagnosisId::CertificateExpiring,
                    Severity::Warning,
                    "expires",
                    Some("Renew it."),
                ),
            ],
        );
        let v = decide(&r, Some("front:143".into()), &settings());
        assert_eq!(v.status, VerdictStatus::Warning);
        assert_eq!(v.exit_code, 1);
        assert_eq!(v.next_step, "Renew it.");
        let r = report(
            &["front:143"],
            vec![finding(
                DiagnosisId::NoStarttls,
                Severity::Warning,
                "no TLS",
                None,
            )],
        );
        assert_eq!(
            decide(&r, Some("front:143".into()), &settings()).next_step,
            "no TLS"
        );
    }

    #[test]
    fn not_reached_takes_the_last_stopping_finding() {
        let r = report(
            &["front:143"],
            vec![
                finding(
                    DiagnosisId::LoginReferral,
                    Severity::Info,
                    "info",
                    Some("x"),
                ),
                finding(
                    DiagnosisId::ReferralLoop,
                    Severity::Critical,
                    "loop",
                    Some("fix it"),
                ),
            ],
        );
        let v = decide(&r, None, &settings());
        assert_eq!(v.status, VerdictStatus::Critical);
        assert_eq!(v.exit_code, 2);
        assert_eq!(
            (v.summary.as_str(), v.next_step.as_str()),
            ("loop", "fix it")
        );
        assert!(!v.mailbox_reached);
        assert_eq!(v.reached_at, None);
        let r = report(
            &["front:143"],
            vec![finding(
                DiagnosisId::Timeout,
                Severity::Unknown,
                "silent",
                Some("check"),
            )],
        );
        let v = decide(&r, None, &settings());
        assert_eq!(v.status, VerdictStatus::Unknown);
        assert_eq!(v.exit_code, 3);
    }

    #[test]
    fn a_deadline_after_a_critical_finding_is_critical() {
        let r = report(
            &["front:143"],
            vec![
                finding(
                    DiagnosisId::NoReplica,
                    Severity::Critical,
                    "no replica",
                    Some("a"),
                ),
                finding(
                    DiagnosisId::Deadline,
                    Severity::Unknown,
                    "deadline",
                    Some("b"),
                ),
            ],
        );
        let v = decide(&r, None, &settings());
        assert_eq!(v.status, VerdictStatus::Critical);
        assert_eq!(v.summary, "deadline");
    }

    #[test]
    fn no_finding_at_all_is_critical_with_a_pointer_to_the_transcript() {
        let v = decide(&report(&["front:143"], Vec::new()), None, &settings());
        assert_eq!(v.status, VerdictStatus::Critical);
        assert_eq!(v.summary, "`INBOX` was not reached.");
        assert_eq!(
            v.next_step,
            "Read the transcript (-v) for what the server said."
        );
    }

    #[test]
    fn a_login_referral_reached_suggests_imapref_proxy_and_a_mailbox_referral_does_not() {
        let mut r = report(&["front:143", "home:143"], Vec::new());
        r.hops[1].reason = HopReason::LoginReferral {
            url: "imap://jdoe@home:143/".into(),
        };
        let v = decide(&r, Some("home:143".into()), &settings());
        assert_eq!(v.status, VerdictStatus::Ok);
        assert!(
            v.next_step
                .contains("or put `imapref proxy --listen 127.0.0.1:1143 --upstream front:143` in front of it"),
            "{}",
            v.next_step
        );
        // imapref proxy passes mailbox referrals on unchanged: no use advising it there.
        r.hops[1].reason = HopReason::MailboxReferral {
            url: "imap://home:143/INBOX".into(),
        };
        let v = decide(&r, Some("home:143".into()), &settings());
        assert!(!v.next_step.contains("imapref proxy"), "{}", v.next_step);
        assert!(
            v.next_step.contains("point them at home:143"),
            "{}",
            v.next_step
        );
    }
}
