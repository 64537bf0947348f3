//! The check run for people and for programs: a summary table ([`table`]) and one JSON document ([`json`]).
//!
//! The JSON document is a contract documented in `docs/check.md`: `version` ([`CHECK_VERSION`]), `tool`, `summary`
//! (counts, worst `status` and `exit_code`), and `checks`, each with its name, target, login, line, kind, status,
//! exit code, message, problems, diagnosis ids, seconds, referral hops, certificate days left, and the probe's full
//! `report` (the `imapref probe --json` document, or null for a timeout or a bad check).

use std::io::{self, Write};

use colored::Colorize;
use serde::Serialize;

use crate::check::{Outcome, Summary};
use crate::probe::report::VerdictStatus;

/// The version of the check JSON document.
pub const CHECK_VERSION: u32 = 1;

/// The status word, upper case, as Nagios writes it.
pub fn status_word(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Ok => "OK",
        VerdictStatus::Warning => "WARNING",
        VerdictStatus::Critical => "CRITICAL",
        VerdictStatus::Unknown => "UNKNOWN",
    }
}

fn coloured(status: VerdictStatus) -> String {
    let word = format!("{:<8}", status_word(status));
    match status {
        VerdictStatus::Ok => word.green().to_string(),
        VerdictStatus::Warning => word.yellow().to_string(),
        VerdictStatus::Critical => word.red().bold().to_string(),
        VerdictStatus::Unknown => word.magenta().to_string(),
    }
}

/// Cuts `text` to `width` characters, with an ellipsis.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// The summary table: one row per check (status, seconds, referral hops, name, message), then the counts.
pub fn table(outcomes: &[Outcome], summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let name_width = outcomes
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    writeln!(
        out,
        "{:<8}  {:>8}  {:>4}  {:<name_width$}  RESULT",
        "STATUS", "SECONDS", "HOPS", "NAME"
    )?;
    for o in outcomes {
        writeln!(
            out,
            "{}  {:>8.3}  {:>4}  {:<name_width$}  {}",
            coloured(o.status),
            o.seconds,
            o.referral_hops,
            fit(&o.name, name_width),
            o.message
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} checks: {} ok, {} warning, {} critical, {} unknown; worst {} (exit {})",
        summary.total,
        summary.ok,
        summary.warning,
        summary.critical,
        summary.unknown,
        status_word(summary.status),
        summary.exit_code
    )
}

/// The JSON document of a check run.
#[derive(Debug, Serialize)]
pub struct CheckDocument<'a> {
    /// [`CHECK_VERSION`].
    pub version: u32,
    /// `imapref X.Y.Z`.
    pub tool: String,
    /// Counts and the worst status.
    pub summary: &'a Summary,
    /// One entry per check, in file order.
    pub checks: &'a [Outcome],
}

/// Writes the JSON document.
pub fn json(outcomes: &[Outcome], summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    super::json::write(
        &CheckDocument {
            version: CHECK_VERSION,
            tool: format!("imapref {}", env!("CARGO_PKG_VERSION")),
            summary,
            checks: outcomes,
        },
        out,
    )
}
