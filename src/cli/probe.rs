//! `imapref probe TARGET [USER]`: the arguments, their validation into [`ProbeSettings`], and the hand-off to the probe
//! and a renderer. Argument errors exit 3 (unknown), as the monitoring-plugins convention says.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::password::PasswordArgs;
use super::{refuse_control, write_stdout};
use crate::follow::policy::{FollowMode, Policy};
use crate::follow::FollowLimits;
use crate::probe::target::Target;
use crate::probe::{self, AuthChoice, Probe, ProbeSettings, Progress};
use crate::render::{human, json};
use crate::session::SessionOptions;
use crate::transport::{check_ca_file, TlsMode, TlsOptions};

/// `--starttls` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartTlsArg {
    /// Fail when the server does not advertise STARTTLS.
    Required,
    /// Go on in plaintext (with a warning) when it does not.
    Opportunistic,
}

/// `--auth` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthArg {
    /// LOGIN (AUTHENTICATE PLAIN when a referral URL asks for it).
    Login,
    /// AUTHENTICATE PLAIN, with SASL-IR when advertised.
    Plain,
}

/// `--follow` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FollowArg {
    /// Follow referrals to trusted hosts; ask about others on a terminal; refuse without one.
    Auto,
    /// Ask before every referral (refuse without a terminal).
    Ask,
    /// Report referrals without following them.
    Never,
}

/// `--format` values of `imapref probe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeFormat {
    /// The human report.
    Human,
    /// One JSON document.
    Json,
    /// One Nagios/Icinga status line with perfdata, for a one-off check.
    Nagios,
    /// OpenMetrics text, ending with `# EOF`.
    Openmetrics,
}

/// TLS options shared by `probe` and `shell`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Implicit TLS (default port 993).
    #[arg(long, conflicts_with = "starttls")]
    pub tls: bool,
    /// STARTTLS before login; `--starttls=opportunistic` goes on in plaintext when it is not offered.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "required", value_name = "MODE")]
    pub starttls: Option<StartTlsArg>,
    /// Trust the CA certificates in this PEM file (the lab prints its CA file's path).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (the report says so).
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        match (self.tls, self.starttls) {
            (true, _) => TlsMode::Implicit,
            (false, Some(StartTlsArg::Required)) => TlsMode::StartTls,
            (false, Some(StartTlsArg::Opportunistic)) => TlsMode::StartTlsOpportunistic,
            (false, None) => TlsMode::Plain,
        }
    }

    /// The TLS options.
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        }
    }
}

/// Arguments of `imapref probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// `host`, `host:port`, `[v6addr]:port`, or an IMAP URL such as `imap://DOM%2Fuser%2Falias@host:143/INBOX`.
    pub target: String,
    /// The login name, sent as typed: `DOMname/UserN/AliasN` for Exchange 5.5. Optional when the URL names the user.
    pub user: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    /// LOGIN or AUTHENTICATE PLAIN.
    #[arg(long, value_enum, default_value_t = AuthArg::Login)]
    pub auth: AuthArg,
    /// The mailbox to open (default INBOX, or the URL's mailbox).
    #[arg(long, value_name = "NAME")]
    pub mailbox: Option<String>,
    /// EXAMINE instead of SELECT.
    #[arg(long)]
    pub read_only: bool,
    /// How to follow referrals.
    #[arg(long, value_enum, default_value_t = FollowArg::Auto)]
    pub follow: FollowArg,
    /// Trust this host for referrals (`*` matches any characters; repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub allow_host: Vec<String>,
    /// The most referrals to follow (RFC 2221 says 10).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_hops: usize,
    /// The most URLs of one REFERRAL to try (replicas are tried in order).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_alternatives: usize,
    /// Send LOGIN, SELECT and LOGOUT one at a time instead of in one write.
    #[arg(long)]
    pub no_pipelining: bool,
    /// Seconds to wait for any single connect, read or handshake.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Seconds for the whole probe, every hop included; past it the probe stops and reports what it had.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub max_time: f64,
    /// Warn when the certificate expires within this many days.
    #[arg(long, default_value_t = 14, value_name = "DAYS")]
    pub cert_warn_days: i64,
    /// One JSON document instead of the human report (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// What to write: `human`, `json`, `nagios` (a status line with perfdata) or `openmetrics`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ProbeFormat>,
    /// Add the full transcript (`C:`/`S:`, password shown as ***).
    #[arg(short, long)]
    pub verbose: bool,
}

/// Validates the arguments into settings (no password yet).
pub fn settings(args: &ProbeArgs, interactive: bool) -> anyhow::Result<ProbeSettings> {
    let target =
        Target::parse(&args.target).with_context(|| format!("target `{}`", args.target))?;
    let user = match (&args.user, &target.user) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u.clone(),
        (None, None) => bail!(
            "no login name: give it after the target (imapref probe HOST DOMname/UserN/AliasN)"
        ),
    };
    refuse_control("the login name", &user)?;
    if user.is_empty() {
        bail!("the login name is empty");
    }
    let mailbox = args
        .mailbox
        .clone()
        .or(target.mailbox.clone())
        .unwrap_or_else(|| "INBOX".into());
    refuse_control("--mailbox", &mailbox)?;
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout {}: give a number of seconds above 0 and at most 3600",
            args.timeout
        );
    }
    super::check_run_limits(args.max_time, args.max_hops, args.max_alternatives)?;
    let tls_mode = args.tls.mode();
    if let (Some(path), true) = (&args.tls.ca_file, tls_mode != TlsMode::Plain) {
        check_ca_file(path).map_err(|err| anyhow::anyhow!("--ca-file: {err}"))?;
    }
    let port = target.port.unwrap_or(tls_mode.default_port());
    Ok(ProbeSettings {
        target_input: args.target.clone(),
        host: target.host.clone(),
        port,
        user,
        mailbox,
        read_only: args.read_only,
        tls_mode,
        tls: args.tls.options(),
        auth: match args.auth {
            AuthArg::Login => AuthChoice::Login,
            AuthArg::Plain => AuthChoice::Plain,
        },
        policy: Policy {
            mode: match args.follow {
                FollowArg::Auto => FollowMode::Auto,
                FollowArg::Ask => FollowMode::Ask,
                FollowArg::Never => FollowMode::Never,
            },
            max_hops: args.max_hops,
            allow_hosts: args.allow_host.clone(),
            named_host: target.host,
            interactive,
        },
        session: SessionOptions {
            timeout: Duration::from_secs_f64(args.timeout),
            ..SessionOptions::default()
        },
        cert_warn_days: args.cert_warn_days,
        max_time: Some(Duration::from_secs_f64(args.max_time)),
        follow: FollowLimits {
            max_alternatives: args.max_alternatives,
        },
        pipelining: !args.no_pipelining,
    })
}

/// The warning for a `--ca-file` that cannot be used on a probe without TLS, where it would otherwise be ignored
/// in silence. (With TLS, [`settings`] refuses such a file.)
pub fn ca_file_warning(tls: &TlsArgs) -> Option<String> {
    let path = tls.ca_file.as_ref()?;
    if tls.mode() != TlsMode::Plain {
        return None;
    }
    check_ca_file(path)
        .err()
        .map(|err| format!("warning: --ca-file is not used without --tls or --starttls, and {err}"))
}

/// Asks on the terminal (stderr for the question, stdin for the answer).
fn ask_on_terminal(question: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// How the probe is run and shown.
struct Run<'a> {
    settings: &'a ProbeSettings,
    password: &'a crate::secret::Secret,
    /// Put the referral questions to the person on the terminal (else they are refused).
    interactive: bool,
    /// Write the human report as the probe goes (stdout is a terminal and the format is human).
    live: bool,
    verbose: bool,
}

/// Runs the probe: asks its questions on the terminal when interactive, writes the human report as it goes when
/// live, and stops at Ctrl-C with the report of what was learned so far (its verdict says so, exit code 130). The
/// flag says whether the report was written (live); if not, the caller writes it.
async fn run_probe(run: &Run<'_>) -> anyhow::Result<(probe::report::Report, bool)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut probe = Probe::new(run.settings, run.password).with_events(tx);
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut live = if run.live {
        Some(human::Live::start(
            &probe.report().target,
            run.verbose,
            &mut lock,
        )?)
    } else {
        None
    };
    let show = |live: &mut Option<human::Live<'_>>, event: &probe::Event| match live {
        Some(l) => l.event(event),
        None => Ok(()),
    };
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        let progress = {
            let advance = probe.advance();
            tokio::pin!(advance);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut interrupt => break None,
                    Some(event) = rx.recv() => show(&mut live, &event)?,
                    progress = &mut advance => break Some(progress),
                }
            }
        };
        while let Ok(event) = rx.try_recv() {
            show(&mut live, &event)?;
        }
        match progress {
            None => {
                let report = probe.interrupt();
                if let Some(l) = live.as_mut() {
                    l.interrupted()?;
                }
                if let (Some(l), Some(hop)) = (live.as_mut(), report.hops.last()) {
                    if hop
                        .error
                        .as_ref()
                        .is_some_and(|e| e.phase == probe::INTERRUPTED_PHASE)
                    {
                        l.hop_done(hop)?;
                    }
                }
                return finish(live, report);
            }
            Some(Progress::Hop) => {
                if let (Some(l), Some(hop)) = (live.as_mut(), probe.report().hops.last()) {
                    l.hop_done(hop)?;
                }
            }
            Some(Progress::Ask { question }) if run.interactive => {
                let ask = tokio::task::spawn_blocking(move || ask_on_terminal(&question));
                tokio::select! {
                    biased;
                    _ = &mut interrupt => {
                        // The question's line was left open.
                        eprintln!();
                        return finish(live, probe.interrupt());
                    }
                    yes = ask => probe.answer(yes.unwrap_or(false)),
                }
            }
            Some(Progress::Ask { .. }) => probe.answer(false),
            Some(Progress::Done) => return finish(live, probe.finish()),
        }
    }
}

/// Ends a live report with its summary.
fn finish(
    live: Option<human::Live<'_>>,
    report: probe::report::Report,
) -> anyhow::Result<(probe::report::Report, bool)> {
    let written = live.is_some();
    if let Some(l) = live {
        l.finish(&report)?;
    }
    Ok((report, written))
}

/// Runs `imapref probe`.
pub async fn run(args: ProbeArgs) -> anyhow::Result<i32> {
    let interactive = !args.password.password_stdin
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let mut args = args;
    // With no user named, the netrc file's entry for the host gives the login name, and its password with it (the
    // file is read once).
    let mut from_netrc = None;
    if args.user.is_none() && args.password.given() {
        let credentials = Target::parse(&args.target)
            .ok()
            .filter(|t| t.user.is_none())
            .map(|t| args.password.netrc_credentials(&t.host, None))
            .transpose();
        match credentials {
            Ok(found) => {
                if let Some((login, password)) = found.flatten() {
                    args.user = login;
                    from_netrc = Some(password);
                }
            }
            Err(err) => {
                return usage_error(args.json || args.format == Some(ProbeFormat::Json), &err)
            }
        }
    }
    let settings = match settings(&args, interactive) {
        Ok(s) => s,
        Err(err) => return usage_error(args.json || args.format == Some(ProbeFormat::Json), &err),
    };
    if let Some(warning) = ca_file_warning(&args.tls) {
        eprintln!("imapref: {warning}");
    }
    if settings.tls_mode != TlsMode::Plain {
        // The trust store and CA file load in the background, during the password prompt, connect and greeting.
        crate::transport::prewarm(&settings.tls);
    }
    let password = if let Some(password) = from_netrc {
        password
    } else {
        let prompt = super::password::prompt(&settings.user, &settings.host, settings.port);
        // The prompt reads in a thread of its own, so that Ctrl-C can end it: the terminal's mode (echo off during the
        // prompt) is put back and the probe exits 130 without having sent anything.
        let terminal = super::password::TerminalMode::save();
        let (source, host, user) = (
            args.password.clone(),
            settings.host.clone(),
            settings.user.clone(),
        );
        let reading = tokio::task::spawn_blocking(move || source.read_for(&prompt, &host, &user));
        let read = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                terminal.restore();
                eprintln!();
                eprintln!("imapref: interrupted at the password prompt; nothing was sent");
                return Ok(crate::exit::INTERRUPTED);
            }
            read = reading => read.unwrap_or_else(|e| Err(anyhow::anyhow!("the password prompt failed: {e}"))),
        };
        match read {
            Ok(p) => p,
            Err(err) => {
                return usage_error(args.json || args.format == Some(ProbeFormat::Json), &err)
            }
        }
    };
    let json_mode = args.json || args.format == Some(ProbeFormat::Json);
    let human_format = !json_mode && matches!(args.format, None | Some(ProbeFormat::Human));
    let run = Run {
        settings: &settings,
        password: &password,
        interactive,
        live: human_format && std::io::stdout().is_terminal(),
        verbose: args.verbose,
    };
    let (report, written) = match run_probe(&run).await {
        Ok(done) => done,
        // The terminal went away (a broken pipe): nothing more can be shown.
        Err(e) if super::is_broken_pipe(&e) => return Ok(crate::exit::OK),
        Err(e) => return Err(e),
    };
    let report = &report;
    if written {
        return Ok(report.verdict.exit_code);
    }
    let cert_warn_days = args.cert_warn_days;
    write_stdout(|out| match (args.json, args.format) {
        (true, _) | (_, Some(ProbeFormat::Json)) => json::write(report, out),
        (_, Some(ProbeFormat::Nagios)) => crate::render::nagios::probe(report, cert_warn_days, out),
        (_, Some(ProbeFormat::Openmetrics)) => crate::render::openmetrics::write(
            &[crate::check::outcome_of_probe(report, cert_warn_days)],
            out,
        ),
        _ => human::report(report, args.verbose, out),
    })?;
    Ok(report.verdict.exit_code)
}

/// Prints a usage or input error (as JSON in JSON mode) and returns exit code 3.
pub fn usage_error(json_mode: bool, err: &anyhow::Error) -> anyhow::Result<i32> {
    let message = format!("{err:#}");
    if json_mode {
        let doc = json::ErrorDocument {
            version: crate::probe::report::REPORT_VERSION,
            error: json::ErrorBody {
                phase: "usage",
                message: &message,
            },
            exit_code: crate::exit::UNKNOWN,
        };
        write_stdout(|out| json::write(&doc, out))?;
    } else {
        eprintln!("imapref: {message}");
    }
    Ok(crate::exit::UNKNOWN)
}
