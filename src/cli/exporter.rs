//! `imapref exporter --listen ADDR --config FILE`: reads and validates the module file ([`crate::exporter::config`]),
//! binds the listener (loopback unless `--allow-non-loopback`), prints where it listens, and serves
//! ([`crate::exporter::http`]) until SIGINT or SIGTERM. One line per probe goes to stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::exporter::{self, http, Config, Exporter, Options};

/// Arguments of `imapref exporter`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExporterArgs {
    /// The address to listen on; a port of 0 picks a free one (the address is printed).
    #[arg(long, default_value = exporter::DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// The TOML file of `[module.NAME]` tables (docs/exporter.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Allow --listen to take an address other than loopback (anyone who reaches it can make the exporter log in).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Probes that run at once; a scrape over the limit waits for a slot within its probe's time, else gets a 503.
    #[arg(long, default_value_t = exporter::DEFAULT_MAX_CONCURRENT, value_name = "N")]
    pub max_concurrent: usize,
    /// Seconds taken off Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) for the probe's bound.
    #[arg(long, default_value_t = exporter::DEFAULT_TIMEOUT_OFFSET, value_name = "SECONDS")]
    pub timeout_offset: f64,
    /// HTTP connections open at once; one over the limit is closed when accepted.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (idle keep-alive time included) before it is dropped.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub header_timeout: f64,
    /// Recent probes kept for the / page and /logs.
    #[arg(long, default_value_t = exporter::DEFAULT_HISTORY_LIMIT, value_name = "N")]
    pub history_limit: usize,
}

/// Reads and validates the config file.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let config =
        exporter::config::parse(&text, &base).with_context(|| path.display().to_string())?;
    config
        .validate(&super::check_settings::SETUP)
        .with_context(|| path.display().to_string())?;
    Ok(config)
}

/// Runs `imapref exporter`.
pub async fn run(args: ExporterArgs) -> anyhow::Result<i32> {
    let usage = |message: String| {
        eprintln!("imapref: {message}");
        Ok(crate::exit::UNKNOWN)
    };
    if !args.listen.ip().is_loopback() && !args.allow_non_loopback {
        return usage(format!(
            "--listen {}: not a loopback address; anyone who reaches the exporter can make it log in with the \
             modules' passwords, so give --allow-non-loopback to mean it",
            args.listen
        ));
    }
    if !(1..=4096).contains(&args.max_concurrent) {
        return usage(format!(
            "--max-concurrent {}: give 1 to 4096",
            args.max_concurrent
        ));
    }
    if !(args.timeout_offset >= 0.0 && args.timeout_offset < 60.0) {
        return usage(format!(
            "--timeout-offset {}: give seconds from 0 to below 60",
            args.timeout_offset
        ));
    }
    if !(1..=65_536).contains(&args.max_connections) {
        return usage(format!(
            "--max-connections {}: give 1 to 65536",
            args.max_connections
        ));
    }
    if !(args.header_timeout > 0.0 && args.header_timeout <= 3600.0) {
        return usage(format!(
            "--header-timeout {}: give seconds above 0 and at most 3600",
            args.header_timeout
        ));
    }
    if args.history_limit > 10_000 {
        return usage(format!(
            "--history-limit {}: at most 10000",
            args.history_limit
        ));
    }
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(err) => return usage(format!("{err:#}")),
    };
    // Reports on the pages are plain text.
    colored::control::set_override(false);
    let modules: Vec<String> = config.modules.keys().cloned().collect();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(err) => return usage(format!("--listen {}: cannot listen: {err}", args.listen)),
    };
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    let exporter = Arc::new(Exporter::new(
        config,
        super::check_settings::SETUP,
        Options {
            max_concurrent: args.max_concurrent,
            timeout_offset: args.timeout_offset,
            history_limit: args.history_limit,
        },
    ));
    let stop = super::stop_signals().context("cannot install the signal handlers")?;
    // The first line on stderr says where it listens (tests and scripts read it, as with `--listen 127.0.0.1:0`).
    eprintln!(
        "imapref exporter: listening on http://{local}/ with modules {}",
        modules.join(", ")
    );
    let log: http::Log = Arc::new(|line: &str| eprintln!("imapref exporter: {line}"));
    // Requests in progress may finish after the stop signal: the longest probe bound, and a second to answer.
    let grace = exporter
        .modules()
        .map(|m| m.spec.max_time.unwrap_or(crate::check::DEFAULT_MAX_TIME))
        .fold(0.0, f64::max);
    let limits = http::HttpLimits {
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs_f64(args.header_timeout),
        grace: Duration::from_secs_f64(grace + 1.0),
    };
    http::serve(
        listener,
        exporter,
        log,
        crate::render::exporter_page::PAGES,
        limits,
        stop,
    )
    .await
    .context("the HTTP server failed")?;
    eprintln!("imapref exporter: stopped");
    Ok(crate::exit::OK)
}
