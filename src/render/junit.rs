//! JUnit XML for a check run, valid against the Jenkins xUnit plugin's `junit-10.xsd` (what Jenkins and GitLab's
//! `artifacts:reports:junit` read): `<testsuites>` holding one `<testsuite name="imapref check">` with one
//! `<testcase>` per check.
//!
//! - A CRITICAL check has a `<failure>` whose `message` is the diagnosis (the check's one-sentence result);
//! - an UNKNOWN one (a timeout, a bad check, a DNS or connect failure) has an `<error>`;
//! - OK and WARNING pass (a warning's text is in its `<system-out>`);
//! - `<system-out>` holds the human report of the probe (transcripts are not included; the password never is).

use std::io::{self, Write};

use crate::check::{Outcome, Summary};
use crate::probe::report::VerdictStatus;

use super::check::status_word;

/// Text escaped for XML content and attributes; characters XML 1.0 cannot carry become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text without ANSI colour sequences (`ESC [ ... letter`), which the human report has when colour is on.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Seconds as the schema's SUREFIRE_TIME wants them: digits, a point, digits.
fn seconds(v: f64) -> String {
    format!("{:.3}", v.max(0.0))
}

/// Writes the document. `timestamp` is the run's start, ISO 8601 (`2026-12-01T21:34:00`), or empty to leave it out.
pub fn write(
    outcomes: &[Outcome],
    summary: &Summary,
    timestamp: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let total: f64 = outcomes.iter().map(|o| o.seconds).fold(0.0, f64::max);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="imapref check" tests="{}" failures="{}" errors="{}" time="{}">"#,
        summary.total,
        summary.critical,
        summary.unknown,
        seconds(total)
    )?;
    let stamp = if timestamp.is_empty() {
        String::new()
    } else {
        format!(r#" timestamp="{}""#, escape(timestamp))
    };
    writeln!(
        out,
        r#"  <testsuite name="imapref check" tests="{}" failures="{}" errors="{}" skipped="0" time="{}"{stamp}>"#,
        summary.total,
        summary.critical,
        summary.unknown,
        seconds(total)
    )?;
    for o in outcomes {
        writeln!(
            out,
            r#"    <testcase name="{}" classname="imapref.check.{}" time="{}">"#,
            escape(&o.name),
            escape(&o.target),
            seconds(o.seconds)
        )?;
        let kind = o
            .diagnoses
            .last()
            .cloned()
            .unwrap_or_else(|| format!("{:?}", o.kind).to_ascii_lowercase());
        match o.status {
            VerdictStatus::Critical => writeln!(
                out,
                r#"      <failure message="{}" type="{}">{}</failure>"#,
                escape(&o.message),
                escape(&kind),
                escape(&o.problems.join("\n"))
            )?,
            VerdictStatus::Unknown => writeln!(
                out,
                r#"      <error message="{}" type="{}">{}</error>"#,
                escape(&o.message),
                escape(&kind),
                escape(&o.problems.join("\n"))
            )?,
            VerdictStatus::Ok | VerdictStatus::Warning => {}
        }
        let mut report = Vec::new();
        writeln!(
            report,
            "{} {} ({}@{}, line {}): {}",
            status_word(o.status),
            o.name,
            o.login,
            o.target,
            o.line,
            o.message
        )?;
        if let Some(r) = &o.report {
            writeln!(report)?;
            super::human::report(r, false, &mut report)?;
        }
        writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&strip_ansi(&String::from_utf8_lossy(&report)))
        )?;
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b & \"c\"\u{1b}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }

    #[test]
    fn colour_is_stripped() {
        assert_eq!(strip_ansi("\u{1b}[1;31mred\u{1b}[0m ok"), "red ok");
    }

    #[test]
    fn times_fit_the_schema_pattern() {
        assert_eq!(seconds(0.0123), "0.012");
        assert_eq!(seconds(-1.0), "0.000");
    }
}
