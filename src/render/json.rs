//! The JSON renderer: a value serialised as one pretty-printed document followed by a newline.
//!
//! The probe report's format is a contract: `version` (see
//! [`REPORT_VERSION`](crate::probe::report::REPORT_VERSION)), `target`, `policy`, `hops` (each with `connect`,
//! `certificate`, `greeting`, `capabilities`, `login`, `rlist`, `select`, `mailbox_state`, `round_trips`, `steps`,
//! `transcript`), `chain`, `password_sent_to`, `diagnoses`, `verdict` and `total_ms`. `docs/json.md` documents every
//! field with an example. Passwords never appear: transcripts are redacted before they are stored.

use std::io::{self, Write};

use serde::Serialize;

/// Writes `value` as pretty JSON and a newline.
pub fn write<T: Serialize>(value: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// The shape of an error in JSON mode: `{"version":1,"error":{"phase":..,"message":..},"exit_code":..}`.
#[derive(Debug, Serialize)]
pub struct ErrorDocument<'a> {
    /// The report format version.
    pub version: u32,
    /// What failed.
    pub error: ErrorBody<'a>,
    /// The exit code.
    pub exit_code: i32,
}

/// The error itself.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// `usage`, `input`, ...
    pub phase: &'a str,
    /// The message.
    pub message: &'a str,
}
