//! The typed report a probe produces: the target, each hop with its steps, the referral chain, the hosts that received
//! the password, the diagnoses and the verdict. It never prints; the renderers in [`crate::render`] do.
//!
//! The JSON form (`--json`) is this structure serialised; it is a contract documented in `docs/json.md`. Bump
//! [`REPORT_VERSION`] on any change that is not a pure addition.

use serde::Serialize;

use crate::explain::product::Product;
use crate::explain::ReferralExplanation;
use crate::proto::code::Code;
use crate::proto::response::Status;
use crate::session::transcript::Entry;
use crate::transport::{CertificateInfo, ConnectInfo, TlsMode};

use crate::follow::policy::Policy;

/// The version of the JSON report format.
pub const REPORT_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// `imapref X.Y.Z`.
    pub tool: String,
    /// What was probed.
    pub target: TargetReport,
    /// The referral policy in force.
    pub policy: Policy,
    /// Every connection made, in order.
    pub hops: Vec<Hop>,
    /// The servers in the order they were reached (`host:port`), for drawing A → B → C.
    pub chain: Vec<String>,
    /// Every server that received the password (`host:port`).
    pub password_sent_to: Vec<String>,
    /// What was found.
    pub diagnoses: Vec<Diagnosis>,
    /// The conclusion.
    pub verdict: Verdict,
    /// Milliseconds for the whole probe.
    pub total_ms: f64,
}

/// What was probed.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The target as typed.
    pub input: String,
    /// The first server, `host:port`.
    pub server: String,
    /// The host as typed, when it is an internationalised name (`server` holds its ASCII form, used for DNS and TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_unicode: Option<String>,
    /// The login name.
    pub user: String,
    /// The mailbox to open.
    pub mailbox: String,
    /// EXAMINE instead of SELECT.
    pub read_only: bool,
    /// The TLS mode of the first hop (later hops never go below it).
    pub tls_mode: TlsMode,
}

pub use crate::follow::HopReason;

/// A step's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// Went as it should.
    Ok,
    /// Worth a look.
    Warn,
    /// Failed.
    Fail,
    /// Information (a referral, a skipped step).
    Info,
}

/// One step of a hop, for the human report.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `connect`, `tls`, `greeting`, `capabilities`, `starttls`, `login`, `rlist`, `select`, `logout`.
    pub name: String,
    /// The mark.
    pub mark: Mark,
    /// Milliseconds the step took.
    pub ms: f64,
    /// The essentials, one line.
    pub detail: String,
}

/// A tagged command's result.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResult {
    /// The command as shown (password redacted), e.g. `a2 LOGIN DOMname/UserN/AliasN ***`.
    pub command: String,
    /// The completion's status.
    pub status: Status,
    /// The completion's code.
    pub code: Option<Code>,
    /// The completion's text.
    pub text: String,
    /// The completion line as received.
    pub line: String,
    /// The referral in the completion, decoded.
    pub referral: Option<ReferralExplanation>,
    /// Milliseconds from sending to completion.
    pub ms: f64,
}

/// What SELECT or EXAMINE told about the mailbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxState {
    /// Messages (EXISTS).
    pub exists: Option<u32>,
    /// Recent messages (RECENT).
    pub recent: Option<u32>,
    /// The first unseen message (UNSEEN code).
    pub unseen: Option<u32>,
    /// UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// UIDNEXT.
    pub uidnext: Option<u32>,
    /// READ-WRITE or READ-ONLY.
    pub access: Option<String>,
}

/// The greeting.
#[derive(Debug, Clone, Serialize)]
pub struct Greeting {
    /// The line, verbatim.
    pub line: String,
    /// OK, PREAUTH or BYE.
    pub status: Status,
    /// The product and version, when recognised.
    pub product: Option<Product>,
}

/// One connection.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    /// 1 for the first server.
    pub number: usize,
    /// `host:port`.
    pub server: String,
    /// Why this hop was made.
    pub reason: HopReason,
    /// The login name used here.
    pub user: String,
    /// The mailbox to open here.
    pub mailbox: String,
    /// The TLS mode used here.
    pub tls_mode: TlsMode,
    /// Whether the connection ended up encrypted.
    pub encrypted: bool,
    /// Resolution and connection details.
    pub connect: Option<ConnectInfo>,
    /// The server certificate, when TLS was used.
    pub certificate: Option<CertificateInfo>,
    /// The greeting.
    pub greeting: Option<Greeting>,
    /// The capabilities used for decisions (last known).
    pub capabilities: Vec<String>,
    /// Where they came from: `greeting`, `command`, `login`.
    pub capabilities_from: Option<String>,
    /// The login result.
    pub login: Option<CommandResult>,
    /// The RLIST result, when sent.
    pub rlist: Option<CommandResult>,
    /// The SELECT or EXAMINE result.
    pub select: Option<CommandResult>,
    /// The mailbox state after a successful SELECT.
    pub mailbox_state: Option<MailboxState>,
    /// Whether the password was sent to this server.
    pub password_sent: bool,
    /// Whether the login, SELECT and LOGOUT went in one write (pipelining, RFC 9051 §5.5).
    pub pipelined: bool,
    /// Whether LOGOUT was answered (false when a pipelined LOGOUT's answer was not awaited).
    pub logout_answered: bool,
    /// Commands that waited for the server after the greeting.
    pub round_trips: u32,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The failure that ended this hop, if any: `phase` and message.
    pub error: Option<HopError>,
    /// The redacted transcript.
    pub transcript: Vec<Entry>,
    /// Milliseconds for the hop.
    pub ms: f64,
}

impl Hop {
    /// A hop as it begins: what its plan says, nothing learned yet.
    pub fn begun(number: usize, plan: &crate::follow::HopPlan) -> Hop {
        Hop {
            number,
            server: plan.server(),
            reason: plan.reason.clone(),
            user: plan.user.clone(),
            mailbox: plan.mailbox.clone(),
            tls_mode: plan.tls_mode,
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
            password_sent: false,
            pipelined: false,
            logout_answered: false,
            round_trips: 0,
            steps: Vec::new(),
            error: None,
            transcript: Vec::new(),
            ms: 0.0,
        }
    }
}

/// What ended a hop early.
#[derive(Debug, Clone, Serialize)]
pub struct HopError {
    /// `connect`, `tls`, `timeout`, `protocol`, `closed`, `policy`, ...
    pub phase: String,
    /// What went wrong.
    pub message: String,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Information.
    Info,
    /// A warning.
    Warning,
    /// Critical.
    Critical,
    /// The probe could not tell.
    Unknown,
}

/// The stable identifier of a finding, serialized in kebab-case (`login-referral`, `no-replica`, ...). Every one is
/// documented in docs/json.md (a test holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosisId {
    /// LOGIN got OK or NO [REFERRAL].
    LoginReferral,
    /// The greeting was `* BYE [REFERRAL]`.
    GreetingReferral,
    /// SELECT/EXAMINE got NO [REFERRAL].
    MailboxReferral,
    /// "There is no replica for that mailbox on this server".
    NoReplica,
    /// The certificate expires within `--cert-warn-days`.
    CertificateExpiring,
    /// `--starttls=opportunistic` went on in plaintext.
    NoStarttls,
    /// LOGIN got NO without a referral.
    LoginRefused,
    /// LOGIN got BAD.
    LoginRejected,
    /// LOGINDISABLED without TLS.
    LoginDisabled,
    /// SELECT/EXAMINE failed without a referral.
    MailboxNotReached,
    /// The same host, port and user again.
    ReferralLoop,
    /// More than `--max-hops` referrals.
    TooManyHops,
    /// A referred server could not be used.
    ReferralUnreachable,
    /// A server named by a mailbox referral could not be used.
    MailboxReferralUnreachable,
    /// One replica could not be used; the next one was tried.
    ReplicaUnreachable,
    /// No URL of the referral can be followed.
    BadReferralUrl,
    /// The policy (or you) refused to send the password to the referred host.
    PolicyRefused,
    /// Handshake or certificate failure, STARTTLS refused, plaintext injected after STARTTLS.
    TlsFailure,
    /// STARTTLS required (or needed to keep the first hop's level) but not offered.
    TlsDowngradeRefused,
    /// A BYE greeting without a referral.
    ServerRefuses,
    /// The named server did not answer within `--timeout`.
    Timeout,
    /// The deadline for the whole run (`--max-time`) passed.
    Deadline,
    /// The named server could not be connected to.
    ConnectFailure,
    /// The named server closed the connection.
    ConnectionClosed,
    /// The named server's bytes are not IMAP, or break the protocol.
    Garbage,
    /// A bug in imapref.
    Internal,
    /// The person stopped the probe (Ctrl-C).
    Interrupted,
}

impl DiagnosisId {
    /// Every id, in the order docs/json.md lists them.
    pub const ALL: [DiagnosisId; 27] = [
        DiagnosisId::LoginReferral,
        DiagnosisId::GreetingReferral,
        DiagnosisId::MailboxReferral,
        DiagnosisId::NoReplica,
        DiagnosisId::CertificateExpiring,
        DiagnosisId::NoStarttls,
        DiagnosisId::LoginRefused,
        DiagnosisId::LoginRejected,
        DiagnosisId::LoginDisabled,
        DiagnosisId::MailboxNotReached,
        DiagnosisId::ReferralLoop,
        DiagnosisId::TooManyHops,
        DiagnosisId::ReferralUnreachable,
        DiagnosisId::MailboxReferralUnreachable,
        DiagnosisId::ReplicaUnreachable,
        DiagnosisId::BadReferralUrl,
        DiagnosisId::PolicyRefused,
        DiagnosisId::TlsFailure,
        DiagnosisId::TlsDowngradeRefused,
        DiagnosisId::ServerRefuses,
        DiagnosisId::Timeout,
        DiagnosisId::Deadline,
        DiagnosisId::ConnectFailure,
        DiagnosisId::ConnectionClosed,
        DiagnosisId::Garbage,
        DiagnosisId::Internal,
        DiagnosisId::Interrupted,
    ];

    /// The id as it appears in JSON.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for DiagnosisId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// A stable identifier, documented in docs/json.md.
    pub id: DiagnosisId,
    /// How bad it is.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to check or do next.
    pub next_step: Option<String>,
}

/// The conclusion.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `ok`, `warning`, `critical` or `unknown`.
    pub status: VerdictStatus,
    /// The process exit code ([`crate::exit`]).
    pub exit_code: i32,
    /// One sentence.
    pub summary: String,
    /// The next thing to check.
    pub next_step: String,
    /// Whether the mailbox was opened (after any referrals).
    pub mailbox_reached: bool,
    /// `host:port` where it was opened.
    pub reached_at: Option<String>,
}

/// The verdict's status, following the monitoring-plugins convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictStatus {
    /// Exit 0.
    Ok,
    /// Exit 1.
    Warning,
    /// Exit 2.
    Critical,
    /// Exit 3.
    Unknown,
}

impl VerdictStatus {
    /// The exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            VerdictStatus::Ok => crate::exit::OK,
            VerdictStatus::Warning => crate::exit::WARNING,
            VerdictStatus::Critical => crate::exit::CRITICAL,
            VerdictStatus::Unknown => crate::exit::UNKNOWN,
        }
    }
}

#[cfg(test)]
mod id_tests {
    use super::DiagnosisId;

    #[test]
    fn every_diagnosis_id_is_documented_in_the_json_contract() {
        let doc = include_str!("../../docs/json.md");
        for id in DiagnosisId::ALL {
            let name = id.as_str();
            assert!(!name.is_empty());
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/json.md does not list `{name}`"
            );
        }
        assert_eq!(DiagnosisId::NoReplica.as_str(), "no-replica");
        assert_eq!(
            DiagnosisId::MailboxReferralUnreachable.to_string(),
            "mailbox-referral-unreachable"
        );
    }
}
