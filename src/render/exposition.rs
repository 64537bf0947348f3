//! The exporter's metrics in the two text formats Prometheus reads: the Prometheus text format 0.0.4 (the default) and
//! OpenMetrics 1.0.0 (when the scrape's `Accept` header asks for `application/openmetrics-text`), for one probe
//! ([`probe`], the answer to `/probe`) and for the exporter itself ([`exporter`], the answer to `/metrics`).
//!
//! Where a meaning matches one of blackbox_exporter's metrics the name is its name (`probe_success`,
//! `probe_duration_seconds`, `probe_ssl_earliest_cert_expiry`), so that its dashboards and alert rules carry over; the
//! IMAP-only metrics start with `imap_`. docs/exporter.md has the table.
//!
//! The two formats differ in the family names of counters (`x` in OpenMetrics, `x_total` in 0.0.4) and info metrics
//! (`x` with type `info` in OpenMetrics, a gauge `x_info` in 0.0.4), in `# UNIT`, and in the final `# EOF`.

use std::io::{self, Write};

use super::openmetrics::{escape, number, unix_seconds};
use crate::check::Outcome;
use crate::exporter::{Format, Snapshot};
use crate::probe::report::DiagnosisId;

/// A metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Info,
}

/// One family with its samples.
struct Family {
    /// The OpenMetrics family name (no `_total` or `_info`).
    name: &'static str,
    kind: Kind,
    help: &'static str,
    unit: Option<&'static str>,
    samples: Vec<(Vec<(&'static str, String)>, String)>,
}

impl Family {
    fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            unit: None,
            samples: Vec::new(),
        }
    }

    fn unit(mut self, unit: &'static str) -> Family {
        self.unit = Some(unit);
        self
    }

    fn sample(mut self, labels: Vec<(&'static str, String)>, value: String) -> Family {
        self.samples.push((labels, value));
        self
    }

    fn suffix(&self) -> &'static str {
        match self.kind {
            Kind::Gauge => "",
            Kind::Counter => "_total",
            Kind::Info => "_info",
        }
    }

    fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let sample_name = format!("{}{}", self.name, self.suffix());
        match format {
            Format::Prometheus => {
                let kind = match self.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge | Kind::Info => "gauge",
                };
                writeln!(out, "# HELP {sample_name} {}", self.help)?;
                writeln!(out, "# TYPE {sample_name} {kind}")?;
            }
            Format::OpenMetrics => {
                let kind = match self.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                    Kind::Info => "info",
                };
                writeln!(out, "# TYPE {} {kind}", self.name)?;
                if let Some(unit) = self.unit {
                    writeln!(out, "# UNIT {} {unit}", self.name)?;
                }
                writeln!(out, "# HELP {} {}", self.name, self.help)?;
            }
        }
        for (labels, value) in &self.samples {
            if labels.is_empty() {
                writeln!(out, "{sample_name} {value}")?;
            } else {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                writeln!(out, "{sample_name}{{{}}} {value}", labels.join(","))?;
            }
        }
        Ok(())
    }
}

fn write_all(families: &[Family], format: Format, out: &mut dyn Write) -> io::Result<()> {
    for family in families {
        family.write(format, out)?;
    }
    if format == Format::OpenMetrics {
        writeln!(out, "# EOF")?;
    }
    Ok(())
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

/// The families of one probe.
fn probe_families(outcome: &Outcome) -> Vec<Family> {
    let mut families = vec![
        Family::new(
            "probe_success",
            Kind::Gauge,
            "Whether the probe succeeded: the module's expectations were met (OK or WARNING).",
        )
        .sample(vec![], flag(outcome.passed())),
        Family::new(
            "probe_duration_seconds",
            Kind::Gauge,
            "Returns how long the probe took to complete in seconds.",
        )
        .unit("seconds")
        .sample(vec![], number(outcome.seconds)),
        Family::new(
            "imap_probe_status",
            Kind::Gauge,
            "The probe's status as an exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        )
        .sample(vec![], outcome.exit_code.to_string()),
    ];
    if let Some(report) = &outcome.report {
        families.push(
            Family::new(
                "imap_referral_hops",
                Kind::Gauge,
                "Referrals followed to reach the mailbox (dead replicas not counted).",
            )
            .sample(vec![], outcome.referral_hops.to_string()),
        );
        let referred = report
            .diagnoses
            .iter()
            .any(|d| d.id == DiagnosisId::LoginReferral);
        families.push(
            Family::new(
                "imap_login_referred",
                Kind::Gauge,
                "Whether a LOGIN was answered with a REFERRAL (RFC 2221).",
            )
            .sample(vec![], flag(referred)),
        );
        // Steps of every hop, summed by name in the order they first ran (as blackbox_exporter sums the phases of
        // an HTTP probe over its redirects).
        let mut steps: Vec<(String, f64)> = Vec::new();
        for step in report.hops.iter().flat_map(|h| h.steps.iter()) {
            match steps.iter_mut().find(|(name, _)| *name == step.name) {
                Some((_, ms)) => *ms += step.ms,
                None => steps.push((step.name.clone(), step.ms)),
            }
        }
        let mut family = Family::new(
            "imap_step_duration_seconds",
            Kind::Gauge,
            "Seconds of each step of the probe, summed over its hops.",
        )
        .unit("seconds");
        for (name, ms) in steps {
            // Microsecond resolution, as the report measures; no float noise in the text.
            family = family.sample(vec![("step", name)], format!("{:.6}", ms / 1000.0));
        }
        families.push(family);
        if let Some(home) = &report.verdict.reached_at {
            families.push(
                Family::new(
                    "imap_home_server",
                    Kind::Info,
                    "The server (host:port) where the mailbox was opened.",
                )
                .sample(vec![("server", home.clone())], "1".into()),
            );
        }
    }
    if let Some(expiry) = outcome.cert_not_after.as_deref().and_then(unix_seconds) {
        families.push(
            Family::new(
                "probe_ssl_earliest_cert_expiry",
                Kind::Gauge,
                "Returns last SSL chain expiry in unixtime.",
            )
            .sample(vec![], expiry.to_string()),
        );
    }
    families
}

/// The metrics of one probe: the answer to `/probe`.
pub fn probe(outcome: &Outcome, format: Format, out: &mut dyn Write) -> io::Result<()> {
    write_all(&probe_families(outcome), format, out)
}

/// The exporter's own metrics: the answer to `/metrics`.
pub fn exporter(snapshot: &Snapshot, format: Format, out: &mut dyn Write) -> io::Result<()> {
    let by_module = |name, help, values: &[(String, u64)]| {
        values
            .iter()
            .fold(Family::new(name, Kind::Counter, help), |f, (m, n)| {
                f.sample(vec![("module", m.clone())], n.to_string())
            })
    };
    let families = vec![
        Family::new(
            "imapref_exporter_build",
            Kind::Info,
            "The version of imapref that runs the exporter.",
        )
        .sample(
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            "1".into(),
        ),
        by_module(
            "imapref_exporter_probes",
            "Probes run, by module.",
            &snapshot.probes,
        ),
        by_module(
            "imapref_exporter_probe_failures",
            "Probes that failed (probe_success 0), by module.",
            &snapshot.failures,
        ),
        Family::new(
            "imapref_exporter_probes_in_flight",
            Kind::Gauge,
            "Probes running now.",
        )
        .sample(vec![], snapshot.in_flight.to_string()),
        Family::new(
            "imapref_exporter_probes_busy",
            Kind::Counter,
            "Scrapes answered 503 because no probe slot came free in time (--max-concurrent).",
        )
        .sample(vec![], snapshot.busy.to_string()),
        Family::new(
            "imapref_exporter_module_unknown",
            Kind::Counter,
            "Scrapes that named a module the config does not have.",
        )
        .sample(vec![], snapshot.unknown_module.to_string()),
        Family::new(
            "imapref_exporter_bad_requests",
            Kind::Counter,
            "Scrapes answered 400 (unknown modules included).",
        )
        .sample(vec![], snapshot.bad_requests.to_string()),
    ];
    write_all(&families, format, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_chosen_only_when_accept_names_it() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn counters_and_info_are_named_per_format() {
        let snapshot = Snapshot {
            probes: vec![("kb".into(), 3)],
            failures: vec![("kb".into(), 1)],
            in_flight: 0,
            busy: 0,
            unknown_module: 2,
            bad_requests: 2,
        };
        let mut om = Vec::new();
        exporter(&snapshot, Format::OpenMetrics, &mut om).expect("writes");
        let om = String::from_utf8(om).expect("utf-8");
        assert!(
            om.contains("# TYPE imapref_exporter_probes counter\n"),
            "{om}"
        );
        assert!(
            om.contains("imapref_exporter_probes_total{module=\"kb\"} 3\n"),
            "{om}"
        );
        assert!(om.contains("# TYPE imapref_exporter_build info\n"), "{om}");
        assert!(om.ends_with("# EOF\n"));
        let mut text = Vec::new();
        exporter(&snapshot, Format::Prometheus, &mut text).expect("writes");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(
            text.contains("# TYPE imapref_exporter_probes_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE imapref_exporter_build_info gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
