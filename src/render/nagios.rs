//! The Nagios / Icinga plugin output, following the monitoring-plugins development guidelines: a first line
//! `SERVICE STATUS - text | perfdata`, further lines of long text, and exit codes 0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN ([`crate::exit`]).
//!
//! Perfdata is a space-separated list of `'label'=value[UOM];[warn];[crit];[min];[max]`: labels are always quoted
//! and have `'` and `=` replaced by `_` (Icinga's rule: labels must not contain them), values use a `.` decimal point,
//! times are in seconds (`s`), counts have no unit, trailing empty fields are dropped. The text never contains `|`,
//! which would start the perfdata.

use std::io::{self, Write};

use crate::check::{referral_hops, Outcome, Summary};
use crate::probe::report::{Report, VerdictStatus};

use super::check::status_word;

/// The service name on the first line.
pub const SERVICE: &str = "IMAPREF";

/// A perfdata label: quoted, with `'` and `=` replaced.
pub fn label(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '\'' | '=' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("'{clean}'")
}

/// Text for the status part: no `|` (it would start the perfdata) and no line breaks.
pub fn text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '/',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// A number as perfdata writes it: `.` decimal point, at most 6 decimals, no trailing zeros.
fn number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// One perfdata item, with trailing empty fields dropped.
fn item(
    label_text: &str,
    value: String,
    uom: &str,
    warn: Option<String>,
    crit: Option<String>,
    min: Option<String>,
) -> String {
    let mut fields = vec![
        format!("{}={value}{uom}", label(label_text)),
        warn.unwrap_or_default(),
        crit.unwrap_or_default(),
        min.unwrap_or_default(),
    ];
    while fields.len() > 1 && fields.last().is_some_and(String::is_empty) {
        fields.pop();
    }
    fields.join(";")
}

/// The perfdata of one check: `<prefix>time` in seconds (warn `max_seconds`, crit `max_time`, min 0),
/// `<prefix>hops` (min 0), and `<prefix>cert_days` (warn `cert_min_days`, crit 0) when a certificate was seen.
pub fn perfdata(prefix: &str, o: &Outcome) -> Vec<String> {
    let mut items = vec![
        item(
            &format!("{prefix}time"),
            number(o.seconds),
            "s",
            o.warn_seconds.map(number),
            Some(number(o.max_time_seconds)),
            Some("0".into()),
        ),
        item(
            &format!("{prefix}hops"),
            o.referral_hops.to_string(),
            "",
            None,
            None,
            Some("0".into()),
        ),
    ];
    if let Some(days) = o.cert_days_left {
        items.push(item(
            &format!("{prefix}cert_days"),
            days.to_string(),
            "",
            Some(format!("{}:", o.cert_min_days)),
            Some("0:".into()),
            None,
        ));
    }
    items
}

/// A check run: the first line names the failing checks and carries every check's perfdata; then one line per
/// check, `STATUS name: message`.
pub fn check(outcomes: &[Outcome], summary: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != VerdictStatus::Ok)
        .collect();
    let head = if failed.is_empty() {
        format!("{} of {} checks passed", summary.total, summary.total)
    } else {
        let names: Vec<String> = failed
            .iter()
            .map(|o| format!("{} ({}@{})", o.name, o.login, o.target))
            .collect();
        let verb = if summary.critical + summary.unknown == 0 {
            "warned"
        } else {
            "failed"
        };
        format!(
            "{} of {} checks {verb}: {}",
            failed.len(),
            summary.total,
            names.join(", ")
        )
    };
    let perf: Vec<String> = outcomes
        .iter()
        .flat_map(|o| perfdata(&format!("{}_", o.name), o))
        .collect();
    writeln!(
        out,
        "{SERVICE} {} - {} | {}",
        status_word(summary.status),
        text(&head),
        perf.join(" ")
    )?;
    for o in outcomes {
        writeln!(
            out,
            "{} {}: {}",
            status_word(o.status),
            text(&o.name),
            text(&o.message)
        )?;
    }
    Ok(())
}

/// One probe (`imapref probe --format nagios`): `IMAPREF STATUS - summary | 'time'=..s;;;0 'hops'=N;;;0
/// ['cert_days'=N;W:;0:]`, then the next step. `cert_warn_days` is the warning threshold for the certificate.
pub fn probe(report: &Report, cert_warn_days: i64, out: &mut dyn Write) -> io::Result<()> {
    let v = &report.verdict;
    let seconds = report.total_ms / 1000.0;
    let mut perf = vec![
        item("time", number(seconds), "s", None, None, Some("0".into())),
        item(
            "hops",
            referral_hops(report).to_string(),
            "",
            None,
            None,
            Some("0".into()),
        ),
    ];
    if let Some(days) = report
        .hops
        .iter()
        .filter_map(|h| h.certificate.as_ref())
        .map(|c| c.days_left)
        .min()
    {
        perf.push(item(
            "cert_days",
            days.to_string(),
            "",
            Some(format!("{cert_warn_days}:")),
            Some("0:".into()),
            None,
        ));
    }
    writeln!(
        out,
        "{SERVICE} {} - {} | {}",
        status_word(v.status),
        text(&v.summary),
        perf.join(" ")
    )?;
    if !v.next_step.is_empty() {
        writeln!(out, "{}", text(&v.next_step))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_quoted_and_lose_quotes_and_equals() {
        assert_eq!(label("kb user_time"), "'kb user_time'");
        assert_eq!(label("it's=x"), "'it_s_x'");
    }

    #[test]
    fn numbers_use_a_point_and_no_trailing_zeros() {
        assert_eq!(number(0.0120), "0.012");
        assert_eq!(number(30.0), "30");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn trailing_empty_fields_are_dropped() {
        assert_eq!(
            item("hops", "1".into(), "", None, None, Some("0".into())),
            "'hops'=1;;;0"
        );
        assert_eq!(item("x", "1".into(), "", None, None, None), "'x'=1");
    }

    #[test]
    fn the_text_never_starts_perfdata() {
        assert_eq!(text("a | b\nc"), "a / b c");
    }
}
