//! `imapref check FILE`: reads the check file ([`crate::check::spec`]), turns each check into probe settings with the
//! same validation as `imapref probe` ([`crate::check::settings`]), runs them all concurrently
//! ([`crate::check::run_all`]) with a progress bar on a terminal, writes the requested files (atomically for
//! `--metrics`) and the chosen format to stdout, and exits with the worst check's code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::write_stdout;
use crate::check::spec;
use crate::check::{self, Outcome, Prepared, Summary};
use crate::render::graph::{GraphFormat, Topology};
use crate::render::{self, json, junit, nagios, openmetrics};

/// What `imapref check` writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CheckFormat {
    /// A summary table.
    #[default]
    Human,
    /// One JSON document (docs/check.md).
    Json,
    /// A Nagios/Icinga status line with perfdata, then one line per check.
    Nagios,
    /// OpenMetrics text, ending with `# EOF`.
    Openmetrics,
    /// JUnit XML.
    Junit,
}

/// Arguments of `imapref check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The TOML check file (docs/check.md).
    pub file: PathBuf,
    /// How many checks run at once.
    #[arg(long, short = 'j', default_value_t = check::DEFAULT_JOBS, value_name = "N")]
    pub jobs: usize,
    /// The bound on each check, in seconds, unless it sets `max_time`; a check past it is UNKNOWN.
    #[arg(long, default_value_t = check::DEFAULT_MAX_TIME, value_name = "SECONDS")]
    pub max_time: f64,
    /// What to write to stdout.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
    /// Also write JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write OpenMetrics text to this file, atomically (for node_exporter's textfile collector).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Also write the JSON document to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the referral topology to this file: `.dot`, `.svg` or `.html`.
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,
}

/// Turns one entry of the file into a runnable check (or a bad one, which still gets an outcome).
fn prepare(entry: &spec::Entry, base: &Path, max_time: f64) -> Prepared {
    let name = entry.display_name();
    let (spec, setup) = match &entry.spec {
        Err(err) => (entry.written.clone(), Err(err.to_string())),
        Ok(spec) => {
            let setup = check::settings::setup(spec, base, max_time)
                .map_err(|e| format!("line {}: {e}", entry.line));
            (spec.clone(), setup)
        }
    };
    let seconds = spec.max_time.unwrap_or(max_time);
    Prepared {
        name,
        target: spec.target.clone().unwrap_or_default(),
        login: spec.login.clone().unwrap_or_default(),
        line: entry.line,
        max_time: Duration::from_secs_f64(seconds),
        spec,
        setup,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{file_name}.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{}: cannot create a temporary file in {}",
                        path.display(),
                        dir.display()
                    )
                })
            }
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write it", path.display()));
    }
    Ok(())
}

type Renderer = fn(&[Outcome], &Summary, &mut dyn Write) -> std::io::Result<()>;

fn junit_now(outcomes: &[Outcome], summary: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    junit::write(outcomes, summary, "", out)
}

fn metrics(outcomes: &[Outcome], _: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    openmetrics::write(outcomes, out)
}

fn renderer(format: CheckFormat) -> Renderer {
    match format {
        CheckFormat::Human => render::check::table,
        CheckFormat::Json => render::check::json,
        CheckFormat::Nagios => nagios::check,
        CheckFormat::Openmetrics => metrics,
        CheckFormat::Junit => junit_now,
    }
}

fn rendered(render: Renderer, outcomes: &[Outcome], summary: &Summary) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    render(outcomes, summary, &mut buf)?;
    Ok(buf)
}

/// A file-level error in the chosen format, exit 3.
fn file_error(format: CheckFormat, message: &str) -> anyhow::Result<i32> {
    match format {
        CheckFormat::Json => {
            let doc = json::ErrorDocument {
                version: render::check::CHECK_VERSION,
                error: json::ErrorBody {
                    phase: "usage",
                    message,
                },
                exit_code: crate::exit::UNKNOWN,
            };
            write_stdout(|out| json::write(&doc, out))?;
        }
        CheckFormat::Nagios => {
            write_stdout(|out| {
                writeln!(
                    out,
                    "{} UNKNOWN - {}",
                    nagios::SERVICE,
                    nagios::text(message)
                )
            })?;
        }
        _ => eprintln!("imapref: {message}"),
    }
    Ok(crate::exit::UNKNOWN)
}

/// Runs `imapref check`.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    if !(1..=4096).contains(&args.jobs) {
        return file_error(
            args.format,
            &format!("--jobs {}: give 1 to 4096", args.jobs),
        );
    }
    if !(args.max_time > 0.0 && args.max_time <= 3600.0) {
        return file_error(
            args.format,
            &format!(
                "--max-time {}: give seconds above 0 and at most 3600",
                args.max_time
            ),
        );
    }
    let graph_format = match &args.graph {
        Some(path) => match GraphFormat::from_path(path) {
            Some(f) => Some((path.clone(), f)),
            None => {
                return file_error(
                    args.format,
                    &format!(
                        "--graph {}: the name must end in .dot, .svg or .html",
                        path.display()
                    ),
                )
            }
        },
        None => None,
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            return file_error(
                args.format,
                &format!("{}: cannot read it: {e}", args.file.display()),
            )
        }
    };
    let file = match spec::parse(&text) {
        Ok(f) => f,
        Err(e) => return file_error(args.format, &format!("{}: {e}", args.file.display())),
    };
    let base = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let prepared: Vec<Prepared> = file
        .checks
        .iter()
        .map(|entry| prepare(entry, &base, args.max_time))
        .collect();

    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(prepared.len() as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} checks  {per_sec}  {elapsed}  {msg}",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let progress_bar = bar.clone();
    let progress: check::Progress = Arc::new(move |outcome: &Outcome| {
        if let Some(bar) = &progress_bar {
            bar.set_message(outcome.name.clone());
            bar.inc(1);
        }
    });
    let outcomes = check::run_all(prepared, args.jobs, progress).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = check::summarize(&outcomes);

    // Files get no colour, whatever the terminal.
    let colour = colored::control::SHOULD_COLORIZE.should_colorize();
    colored::control::set_override(false);
    let files = (|| {
        if let Some(path) = &args.json {
            std::fs::write(path, rendered(render::check::json, &outcomes, &summary)?)
                .with_context(|| format!("--json {}: cannot write it", path.display()))?;
        }
        if let Some(path) = &args.junit {
            std::fs::write(path, rendered(junit_now, &outcomes, &summary)?)
                .with_context(|| format!("--junit {}: cannot write it", path.display()))?;
        }
        if let Some(path) = &args.metrics {
            write_atomically(path, &rendered(metrics, &outcomes, &summary)?)
                .with_context(|| format!("--metrics {}", path.display()))?;
        }
        if let Some((path, format)) = &graph_format {
            let mut buf = Vec::new();
            format.write(&Topology::from_outcomes(&outcomes), &mut buf)?;
            std::fs::write(path, buf)
                .with_context(|| format!("--graph {}: cannot write it", path.display()))?;
        }
        Ok::<(), anyhow::Error>(())
    })();
    colored::control::set_override(colour && args.format == CheckFormat::Human);
    write_stdout(|out| renderer(args.format)(&outcomes, &summary, out))?;
    if let Err(err) = files {
        eprintln!("imapref: {err:#}");
        return Ok(summary.exit_code.max(crate::exit::UNKNOWN));
    }
    Ok(summary.exit_code)
}
