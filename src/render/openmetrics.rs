//! OpenMetrics text exposition (the format Prometheus and node_exporter's textfile collector read) for a check run or
//! one probe: one gauge family per metric, each sample labelled with the check's `check`, `target` and `login`, and
//! the text ends with `# EOF`.
//!
//! | metric | meaning |
//! |---|---|
//! | `imapref_check_success` | 1 when the check passed (OK or WARNING), else 0 |
//! | `imapref_check_status` | the exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN |
//! | `imapref_check_duration_seconds` | how long the check took |
//! | `imapref_referral_hops` | referrals followed to reach the mailbox (dead replicas not counted) |
//! | `imapref_certificate_expiry_timestamp_seconds` | the earliest `not_after` on the way, Unix time (TLS only) |
//!
//! Label values escape `\`, `"` and line feeds as the format says.

use std::io::{self, Write};

use crate::check::Outcome;

/// A label value, escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as OpenMetrics writes it.
pub fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".into()
    }
}

/// Seconds since 1970 for an RFC 3339 UTC time such as `2026-12-01T21:34:00Z` (what
/// [`CertificateInfo::not_after`](crate::transport::CertificateInfo) holds); `None` when it does not parse.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
    let s = rfc3339.trim().strip_suffix('Z').unwrap_or(rfc3339.trim());
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next()?.split('.').next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    value: fn(&Outcome) -> Option<String>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "imapref_check_success",
        help: "Whether the check passed (OK or WARNING).",
        unit: None,
        value: |o| Some(if o.passed() { "1" } else { "0" }.into()),
    },
    Family {
        name: "imapref_check_status",
        help: "The check's exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        unit: None,
        value: |o| Some(o.exit_code.to_string()),
    },
    Family {
        name: "imapref_check_duration_seconds",
        help: "How long the check took.",
        unit: Some("seconds"),
        value: |o| Some(number(o.seconds)),
    },
    Family {
        name: "imapref_referral_hops",
        help: "Referrals followed to reach the mailbox.",
        unit: None,
        value: |o| o.report.as_ref().map(|_| o.referral_hops.to_string()),
    },
    Family {
        name: "imapref_certificate_expiry_timestamp_seconds",
        help: "The earliest certificate expiry seen on the way, in Unix time.",
        unit: Some("seconds"),
        value: |o| {
            o.cert_not_after
                .as_deref()
                .and_then(unix_seconds)
                .map(|t| t.to_string())
        },
    },
];

/// Writes every family for the outcomes, then `# EOF`.
pub fn write(outcomes: &[Outcome], out: &mut dyn Write) -> io::Result<()> {
    for family in FAMILIES {
        writeln!(out, "# TYPE {} gauge", family.name)?;
        if let Some(unit) = family.unit {
            writeln!(out, "# UNIT {} {unit}", family.name)?;
        }
        writeln!(out, "# HELP {} {}", family.name, family.help)?;
        for o in outcomes {
            if let Some(value) = (family.value)(o) {
                writeln!(
                    out,
                    "{}{{check=\"{}\",target=\"{}\",login=\"{}\"}} {value}",
                    family.name,
                    escape(&o.name),
                    escape(&o.target),
                    escape(&o.login)
                )?;
            }
        }
    }
    writeln!(out, "# EOF")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_seconds("2026-12-01T21:34:00Z"), Some(1_796_160_840));
        assert_eq!(unix_seconds("garbage"), None);
    }
}
