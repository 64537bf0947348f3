//! The command line: clap definitions (the one source for help text), validation into settings, and the hand-off to
//! the library. Errors get their context here (anyhow) and become a message and an exit code ([`crate::exit`]).
//!
//! - [`probe`]: `imapref probe` — arguments to [`ProbeSettings`](crate::probe::ProbeSettings);
//! - [`password`]: where the password comes from (prompt, env, file, stdin), never the command line;
//! - [`check`]: `imapref check FILE`;
//! - [`exporter`]: `imapref exporter`, the Prometheus exporter;
//! - [`explain`]: `imapref explain`;
//! - [`lab`]: `imapref lab` and `imapref demo`;
//! - [`shell`]: `imapref shell`;
//! - [`proxy`]: `imapref proxy`;
//! - [`man`]: `imapref man` (one page, or every page with `--dir`).

pub mod check;
pub mod check_settings;
pub mod explain;
pub mod exporter;
pub mod lab;
pub mod man;
pub mod netrc;
pub mod password;
pub mod probe;
pub mod proxy;
pub mod shell;

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::exit;
use crate::render::ColorChoice;

/// The help heading of the options every subcommand takes; shown after the subcommand's own options.
pub const GLOBAL_HEADING: &str = "Global options";

/// Diagnose IMAP4 referrals: where a user's mailbox really is, and why they cannot reach it.
#[derive(Debug, Parser)]
#[command(name = "imapref", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour the output: auto (a terminal and no NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, help_heading = GLOBAL_HEADING, display_order = 1000)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk through KB Q217388 against a server: connect, TLS, banner, capabilities, LOGIN, follow referrals, SELECT,
    /// diagnose, LOGOUT.
    Probe(probe::ProbeArgs),
    /// Run many probes from a TOML check file, concurrently, with JSON, Nagios, OpenMetrics and JUnit output.
    Check(check::CheckArgs),
    /// Serve probes to Prometheus: /probe?target=HOST:PORT&module=NAME runs one probe with a module's check keys and
    /// answers with its metrics, as blackbox_exporter does.
    Exporter(exporter::ExporterArgs),
    /// Say what server lines mean: kind, code, decoded referrals, known NO texts.
    Explain(explain::ExplainArgs),
    /// An interactive IMAP shell: the KB's telnet session with line editing, history, hidden passwords and referral
    /// awareness. Reads commands from stdin when it is not a terminal.
    Shell(shell::ShellArgs),
    /// A front end for clients that do not follow referrals: log users in upstream, follow the referral to their
    /// home server, then relay the session.
    Proxy(proxy::ProxyArgs),
    /// Run the built-in lab: servers that play KB Q217388's Exchange 5.5 servers on loopback.
    Lab(lab::LabArgs),
    /// Start the lab in-process and walk through the KB's case against it.
    Demo(lab::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output, or write every page with --dir.
    Man(man::ManArgs),
}

/// Parses the arguments, runs the subcommand and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::UNKNOWN,
            };
            let _ = err.print();
            return code;
        }
    };
    cli.color.apply();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("imapref: cannot start the async runtime: {err}");
            return exit::UNKNOWN;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Probe(args) => probe::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Exporter(args) => exporter::run(args).await,
            Command::Explain(args) => explain::run(args),
            Command::Shell(args) => shell::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::Lab(args) => lab::run_lab(args).await,
            Command::Demo(args) => lab::run_demo(args).await,
            Command::Completions { shell } => {
                write_stdout(|out| {
                    clap_complete::generate(
                        shell,
                        &mut <Cli as clap::CommandFactory>::command(),
                        "imapref",
                        out,
                    );
                    Ok(())
                })?;
                Ok(exit::OK)
            }
            Command::Man(args) => man::run(args),
        }
    });
    // The runtime may hold tasks blocked on stdin; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return exit::OK;
            }
            eprintln!("imapref: {err:#}");
            exit::UNKNOWN
        }
    }
}

/// A broken pipe (`imapref ... | head`) counts as success.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes to stdout, treating a broken pipe as done.
pub fn write_stdout(
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match render(&mut lock).and_then(|()| lock.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Refuses CR, LF and NUL in a value the user typed, naming the option.
pub fn refuse_control(what: &str, value: &str) -> anyhow::Result<()> {
    if let Some(c) = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        anyhow::bail!(
            "{what} contains {}: CR, LF and NUL cannot be sent in an IMAP command",
            match c {
                '\r' => "a carriage return (CR)",
                '\n' => "a line feed (LF)",
                _ => "a NUL byte",
            }
        );
    }
    Ok(())
}

/// Installs the handlers for Ctrl-C (SIGINT) and, on Unix, SIGTERM now, and returns a future that resolves at the
/// first of them. Installed before a server says it is ready, so a signal right after that can never kill the process
/// unannounced (an `async fn` would install them only when first polled).
pub fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Checks `--max-time`, `--max-hops` and `--max-alternatives`, shared by `probe` and `shell`.
pub fn check_run_limits(
    max_time: f64,
    max_hops: usize,
    max_alternatives: usize,
) -> anyhow::Result<()> {
    if !(max_time > 0.0 && max_time <= 86_400.0) {
        anyhow::bail!("--max-time {max_time}: give a number of seconds above 0 and at most 86400");
    }
    if max_hops > 100 {
        anyhow::bail!("--max-hops {max_hops}: at most 100");
    }
    if !(1..=100).contains(&max_alternatives) {
        anyhow::bail!("--max-alternatives {max_alternatives}: from 1 to 100");
    }
    Ok(())
}
