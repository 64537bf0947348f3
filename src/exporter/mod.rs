//! `imapref exporter`: a Prometheus exporter in blackbox_exporter's multi-target pattern. Prometheus scrapes
//! `/probe?target=HOST:PORT&module=NAME`; the exporter runs one probe of that target with that module's check keys
//! ([`config`]) and answers with its metrics ([`crate::render::exposition`]).
//!
//! [`Exporter`] is the state the HTTP layer ([`http`]) shares between requests: the modules, the probe limit (a
//! semaphore), the counters behind `/metrics`, and the recent probes that `/` lists. [`Exporter::probe`] is the whole
//! of one scrape: find the module, bound the probe ([`budget`]), wait for a permit, run it through
//! [`crate::check::run_one`] (so a module's expectations judge it exactly as a `[[check]]` would), and record it.
//! Nothing here prints; the CLI logs one line per probe from the returned [`Record`].

pub mod config;
pub mod http;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use crate::check::spec::CheckSpec;
use crate::check::{self, CheckSetup, Outcome, Prepared};
use crate::probe::target::Target;
pub use config::{Config, ConfigError, Module};

/// The default `--listen` address: loopback, port 9143.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9143";
/// The default `--max-concurrent`: probes run at once; a scrape over it waits (see [`Exporter::probe`]).
pub const DEFAULT_MAX_CONCURRENT: usize = 16;
/// The default `--timeout-offset`, in seconds: taken off Prometheus's scrape timeout so the answer arrives in time
/// (blackbox_exporter's default too).
pub const DEFAULT_TIMEOUT_OFFSET: f64 = 0.5;
/// The default `--history-limit`: recent probes kept for `/` and `/logs`.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;
/// The header Prometheus sends with its scrape timeout.
pub const SCRAPE_TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// How the exporter runs, besides its modules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Probes at once.
    pub max_concurrent: usize,
    /// Seconds taken off the scrape timeout header.
    pub timeout_offset: f64,
    /// Recent probes kept.
    pub history_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            timeout_offset: DEFAULT_TIMEOUT_OFFSET,
            history_limit: DEFAULT_HISTORY_LIMIT,
        }
    }
}

/// Which text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else the Prometheus text format (as client_golang negotiates).
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.to_ascii_lowercase()
                    .contains("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of the answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Writes the `/` page of an exporter with its recent probes.
pub type IndexPage = fn(&Exporter, &[Arc<Record>], &mut dyn std::io::Write) -> std::io::Result<()>;

/// How the exporter's answers are written. The binary gives render's ([`crate::render::exporter_page::PAGES`]), so
/// that the exporter never imports its renderers.
#[derive(Clone, Copy)]
pub struct Pages {
    /// A probe's metrics.
    pub probe: fn(&Outcome, Format, &mut dyn std::io::Write) -> std::io::Result<()>,
    /// The exporter's own metrics.
    pub exporter: fn(&Snapshot, Format, &mut dyn std::io::Write) -> std::io::Result<()>,
    /// The `/` page: the modules and the recent probes.
    pub index: IndexPage,
    /// One probe's report (`/logs?id=N`, `&debug=true`).
    pub debug: fn(&Record, &mut dyn std::io::Write) -> std::io::Result<()>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

/// Why a scrape gets no probe (the HTTP layer picks the status code: [`ProbeError::status`]).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// No `target` parameter, or an empty one.
    #[error("target parameter is missing")]
    MissingTarget,
    /// No `module` parameter.
    #[error("module parameter is missing; the modules are: {0}")]
    MissingModule(String),
    /// A module the file does not have.
    #[error("unknown module `{module}`; the modules are: {known}")]
    UnknownModule {
        /// What was asked for.
        module: String,
        /// The modules there are.
        known: String,
    },
    /// A target that does not parse, or that the module's settings refuse.
    #[error("bad target `{target}`: {message}")]
    BadTarget {
        /// The target as given.
        target: String,
        /// Why.
        message: String,
    },
    /// The scrape timeout header is not a number of seconds.
    #[error("bad {SCRAPE_TIMEOUT_HEADER} header `{0}`: give a number of seconds above 0")]
    BadTimeoutHeader(String),
    /// Every probe slot stayed taken for the whole of the probe's time.
    #[error("{0} probes are running (--max-concurrent) and none finished within the probe's time; try again later")]
    Busy(usize),
    /// The module's password could not be read (the message names its source, never the password).
    #[error("module `{module}`: {message}")]
    Password {
        /// The module.
        module: String,
        /// Why.
        message: String,
    },
}

impl ProbeError {
    /// The HTTP status: 400 for what the scrape asked wrongly, 503 when busy, 500 for the exporter's own trouble.
    pub fn status(&self) -> u16 {
        match self {
            ProbeError::Busy(_) => 503,
            ProbeError::Password { .. } => 500,
            _ => 400,
        }
    }
}

/// One finished probe.
#[derive(Debug, Clone)]
pub struct Record {
    /// Increasing from 1 for the exporter's lifetime; `/logs?id=N`.
    pub id: u64,
    /// The module.
    pub module: String,
    /// The target as given.
    pub target: String,
    /// When it started, Unix seconds.
    pub started_unix: f64,
    /// The seconds it was allowed.
    pub budget_seconds: f64,
    /// The module's keys with the target (for the debug page; the password's source, never the password).
    pub spec: CheckSpec,
    /// The judged result, with the probe's report when it ran to its end.
    pub outcome: Outcome,
}

impl Record {
    /// `probe_success`.
    pub fn success(&self) -> bool {
        self.outcome.passed()
    }
}

/// The counters behind `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    probes: BTreeMap<String, AtomicU64>,
    failures: BTreeMap<String, AtomicU64>,
    in_flight: AtomicU64,
    busy: AtomicU64,
    unknown_module: AtomicU64,
    bad_requests: AtomicU64,
}

/// A copy of the counters, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Probes run, by module.
    pub probes: Vec<(String, u64)>,
    /// Probes that failed (`probe_success` 0), by module.
    pub failures: Vec<(String, u64)>,
    /// Probes running now.
    pub in_flight: u64,
    /// Scrapes answered 503 (no probe slot in time).
    pub busy: u64,
    /// Scrapes naming an unknown module.
    pub unknown_module: u64,
    /// Scrapes answered 400 (unknown module included).
    pub bad_requests: u64,
}

/// Decrements the in-flight gauge however the probe ends (a scrape that hangs up drops the probe).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The seconds one probe may take: the module's `max_time` (default [`check::DEFAULT_MAX_TIME`]), or the scrape
/// timeout less `offset` when that is smaller. When the offset would leave nothing, 90 % of the scrape timeout is
/// used, so the answer still has a tenth of it to reach Prometheus.
pub fn budget(module_max_time: Option<f64>, scrape_timeout: Option<f64>, offset: f64) -> f64 {
    let module = module_max_time.unwrap_or(check::DEFAULT_MAX_TIME);
    match scrape_timeout {
        None => module,
        Some(scrape) => {
            let left = scrape - offset;
            let scrape = if left > 0.0 { left } else { scrape * 0.9 };
            module.min(scrape)
        }
    }
}

/// Reads the scrape timeout header's value.
pub fn parse_scrape_timeout(value: &str) -> Result<f64, ProbeError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(ProbeError::BadTimeoutHeader(
            value.chars().take(64).collect(),
        )),
    }
}

/// The shared state of a running exporter.
#[derive(Debug)]
pub struct Exporter {
    config: Config,
    /// How a module's keys become probe settings and a password.
    setup: CheckSetup,
    options: Options,
    permits: Semaphore,
    counters: Counters,
    history: Mutex<VecDeque<Arc<Record>>>,
    next_id: AtomicU64,
}

impl Exporter {
    /// An exporter for a config validated with `setup`.
    pub fn new(config: Config, setup: CheckSetup, options: Options) -> Exporter {
        let counters = Counters {
            probes: config
                .modules
                .keys()
                .map(|k| (k.clone(), AtomicU64::new(0)))
                .collect(),
            failures: config
                .modules
                .keys()
                .map(|k| (k.clone(), AtomicU64::new(0)))
                .collect(),
            ..Counters::default()
        };
        Exporter {
            permits: Semaphore::new(options.max_concurrent.max(1)),
            config,
            setup,
            options,
            counters,
            history: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The modules.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.config.modules.values()
    }

    /// The options.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The recent probes, newest first.
    pub fn recent(&self) -> Vec<Arc<Record>> {
        match self.history.lock() {
            Ok(h) => h.iter().rev().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// One recent probe by id.
    pub fn record(&self, id: u64) -> Option<Arc<Record>> {
        self.history
            .lock()
            .ok()?
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let read = |m: &BTreeMap<String, AtomicU64>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
                .collect()
        };
        Snapshot {
            probes: read(&self.counters.probes),
            failures: read(&self.counters.failures),
            in_flight: self.counters.in_flight.load(Ordering::Relaxed),
            busy: self.counters.busy.load(Ordering::Relaxed),
            unknown_module: self.counters.unknown_module.load(Ordering::Relaxed),
            bad_requests: self.counters.bad_requests.load(Ordering::Relaxed),
        }
    }

    fn known(&self) -> String {
        self.config
            .modules
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Counts a refused scrape and returns its error.
    fn refuse(&self, err: ProbeError) -> ProbeError {
        match err {
            ProbeError::Busy(_) => self.counters.busy.fetch_add(1, Ordering::Relaxed),
            ProbeError::Password { .. } => 0,
            ProbeError::UnknownModule { .. } => {
                self.counters.unknown_module.fetch_add(1, Ordering::Relaxed);
                self.counters.bad_requests.fetch_add(1, Ordering::Relaxed)
            }
            _ => self.counters.bad_requests.fetch_add(1, Ordering::Relaxed),
        };
        err
    }

    /// One scrape of `/probe`: `module` and `target` as given, and the scrape timeout header's value if any.
    ///
    /// Over `--max-concurrent`, the scrape waits for a slot, at most for the probe's whole budget; the probe then
    /// gets what is left of it, and a scrape that got no slot in time is [`ProbeError::Busy`] (503).
    pub async fn probe(
        &self,
        module: Option<&str>,
        target: Option<&str>,
        scrape_timeout: Option<&str>,
    ) -> Result<Arc<Record>, ProbeError> {
        let start = Instant::now();
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let target = match target.map(str::trim) {
            Some(t) if !t.is_empty() => t,
            _ => return Err(self.refuse(ProbeError::MissingTarget)),
        };
        let Some(module_name) = module else {
            return Err(self.refuse(ProbeError::MissingModule(self.known())));
        };
        let Some(module) = self.config.modules.get(module_name) else {
            return Err(self.refuse(ProbeError::UnknownModule {
                module: module_name.chars().take(100).collect(),
                known: self.known(),
            }));
        };
        let scrape = match scrape_timeout {
            Some(v) => Some(parse_scrape_timeout(v).map_err(|e| self.refuse(e))?),
            None => None,
        };
        let bad_target = |message: String| ProbeError::BadTarget {
            target: target.chars().take(200).collect(),
            message,
        };
        if let Err(err) = Target::parse(target) {
            return Err(self.refuse(bad_target(err.to_string())));
        }
        let seconds = budget(module.spec.max_time, scrape, self.options.timeout_offset);
        let spec = module.spec_for(target);
        let settings = (self.setup.probe_settings)(&spec, &self.config.base, seconds)
            .map_err(|m| self.refuse(bad_target(m)))?;
        let password = (self.setup.password)(&spec, &self.config.base).map_err(|message| {
            self.refuse(ProbeError::Password {
                module: module.name.clone(),
                message,
            })
        })?;

        let allowed = Duration::from_secs_f64(seconds);
        let Ok(Ok(_permit)) = tokio::time::timeout(allowed, self.permits.acquire()).await else {
            return Err(self.refuse(ProbeError::Busy(self.options.max_concurrent)));
        };
        let left = allowed.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(self.refuse(ProbeError::Busy(self.options.max_concurrent)));
        }
        let mut settings = settings;
        settings.max_time = Some(left);
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(&self.counters.in_flight);
        let prepared = Prepared {
            name: format!("{}@{target}", module.name),
            target: target.to_string(),
            login: spec.login.clone().unwrap_or_default(),
            line: module.line,
            spec: CheckSpec {
                max_time: Some(left.as_secs_f64()),
                ..spec.clone()
            },
            setup: Ok((settings, password)),
            max_time: left,
        };
        let mut outcome = check::run_one(&prepared).await;
        drop(guard);
        // The time the scrape waited for a slot counts, as Prometheus sees it.
        outcome.seconds = start.elapsed().as_secs_f64();

        let record = Arc::new(Record {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            module: module.name.clone(),
            target: target.to_string(),
            started_unix,
            budget_seconds: seconds,
            spec,
            outcome,
        });
        if let Some(n) = self.counters.probes.get(&module.name) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if !record.success() {
            if let Some(n) = self.counters.failures.get(&module.name) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut history) = self.history.lock() {
            history.push_back(Arc::clone(&record));
            while history.len() > self.options.history_limit {
                history.pop_front();
            }
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_smaller_of_max_time_and_the_scrape_timeout_less_the_offset() {
        assert_eq!(budget(None, None, 0.5), check::DEFAULT_MAX_TIME);
        assert_eq!(budget(Some(5.0), None, 0.5), 5.0);
        assert_eq!(budget(Some(30.0), Some(10.0), 0.5), 9.5);
        assert_eq!(budget(Some(3.0), Some(10.0), 0.5), 3.0);
        assert_eq!(
            budget(Some(30.0), Some(0.4), 0.5),
            0.4 * 0.9,
            "an offset past the timeout is not taken; a tenth is kept for the answer"
        );
    }

    #[test]
    fn the_scrape_timeout_header_must_be_positive_seconds() {
        assert_eq!(parse_scrape_timeout("10"), Ok(10.0));
        assert_eq!(parse_scrape_timeout(" 2.5 "), Ok(2.5));
        for bad in ["", "ten", "0", "-1", "NaN", "inf"] {
            assert!(parse_scrape_timeout(bad).is_err(), "{bad}");
        }
    }
}
