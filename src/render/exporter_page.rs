//! The exporter's pages for people: `/` ([`index`]), a small HTML page listing the modules and the recent probes, as
//! blackbox_exporter's page does, and `/logs?id=N` or `/probe?...&debug=true` ([`debug`]), one probe's report in
//! plain text with the metrics it returned and its module's keys. Every value from a scrape (target, module) is
//! escaped; nothing here holds a password (reports are redacted and the keys name only the password's source).

use std::io::{self, Write};

use super::exposition;
use crate::exporter::{Exporter, Format, Pages};
use crate::exporter::{Module, Record};

/// Text escaped for HTML.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(unix: f64) -> String {
    let secs = unix.max(0.0) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
.ok{color:#060}.fail{color:#a00}code{font-size:90%}";

/// The `/` page.
pub fn index<'a>(
    modules: impl Iterator<Item = &'a Module>,
    recent: &[std::sync::Arc<Record>],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(
        out,
        "<html><head><meta charset=\"utf-8\"><title>imapref exporter</title><style>{STYLE}</style></head><body>"
    )?;
    writeln!(out, "<h1>imapref exporter</h1>")?;
    writeln!(
        out,
        "<p>Probes IMAP referrals for Prometheus: <code>/probe?target=HOST:PORT&amp;module=NAME</code>. \
         <a href=\"metrics\">The exporter's own metrics</a>.</p>"
    )?;
    writeln!(out, "<h2>Modules</h2>")?;
    writeln!(
        out,
        "<table><tr><th>Module</th><th>Login</th><th>TLS</th><th>Mailbox</th><th>Follow</th><th>Expect</th>\
         <th>Max time (s)</th></tr>"
    )?;
    for m in modules {
        let s = &m.spec;
        let show = |v: Option<String>| html(&v.unwrap_or_else(|| "-".into()));
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&m.name),
            show(s.login.clone()),
            show(s.tls.map(|t| format!("{t:?}").to_ascii_lowercase())),
            show(s.mailbox.clone()),
            show(s.follow.map(|f| format!("{f:?}").to_ascii_lowercase())),
            show(s.expect.map(|e| format!("{e:?}").to_ascii_lowercase())),
            show(s.max_time.map(|t| t.to_string())),
        )?;
    }
    writeln!(out, "</table>")?;
    writeln!(out, "<h2>Recent probes</h2>")?;
    if recent.is_empty() {
        writeln!(out, "<p>None yet.</p>")?;
    } else {
        writeln!(
            out,
            "<table><tr><th>Started (UTC)</th><th>Module</th><th>Target</th><th>Result</th><th>Seconds</th>\
             <th>Hops</th><th>Home server</th><th>Message</th><th>Report</th></tr>"
        )?;
        for r in recent {
            let o = &r.outcome;
            let (class, result) = if r.success() {
                ("ok", "Success")
            } else {
                ("fail", "Failure")
            };
            let home = o
                .report
                .as_ref()
                .and_then(|rep| rep.verdict.reached_at.clone())
                .unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{result}</td><td>{:.3}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td><a href=\"logs?id={}\">Report</a></td></tr>",
                utc(r.started_unix),
                html(&r.module),
                html(&r.target),
                o.seconds,
                o.referral_hops,
                html(&home),
                html(&o.message),
                r.id
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")
}

/// One probe in plain text: its report (with the redacted transcript), the metrics it returned, its module's keys.
pub fn debug(record: &Record, out: &mut dyn Write) -> io::Result<()> {
    let o = &record.outcome;
    writeln!(
        out,
        "Probe {} of {} with module {} at {} UTC, allowed {:.3} s: {}",
        record.id,
        record.target,
        record.module,
        utc(record.started_unix),
        record.budget_seconds,
        if record.success() {
            "success"
        } else {
            "failure"
        }
    )?;
    writeln!(out, "{}", o.message)?;
    for p in &o.problems {
        if *p != o.message {
            writeln!(out, "- {p}")?;
        }
    }
    writeln!(out, "\nReport:\n")?;
    match &o.report {
        Some(report) => super::human::report(report, true, out)?,
        None => writeln!(out, "(no report: the probe did not run to its end)")?,
    }
    writeln!(out, "\nMetrics that were returned:\n")?;
    exposition::probe(o, Format::Prometheus, out)?;
    writeln!(out, "\nModule configuration:\n")?;
    let keys = toml::to_string(&record.spec).unwrap_or_else(|e| format!("(cannot show: {e})\n"));
    write!(out, "{keys}")
}

/// The `/` page of `exporter`.
fn index_of(
    exporter: &Exporter,
    recent: &[std::sync::Arc<Record>],
    out: &mut dyn Write,
) -> io::Result<()> {
    index(exporter.modules(), recent, out)
}

/// The exporter's answers, as these renderers write them.
pub const PAGES: Pages = Pages {
    probe: exposition::probe,
    exporter: exposition::exporter,
    index: index_of,
    debug,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_values_are_escaped() {
        assert_eq!(
            html("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn unix_seconds_become_utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_868_800.0), "2000-03-01 00:00:00");
        assert_eq!(utc(1_796_160_840.0), "2026-12-01 21:34:00");
    }
}
