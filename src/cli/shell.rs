//! `imapref shell [TARGET]`: arguments, their validation into [`ShellSettings`], and the hand-off to the interactive
//! shell ([`crate::shell`]). Argument errors exit 3 (unknown), like the probe's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::password::PasswordArgs;
use super::probe::{FollowArg, TlsArgs};
use super::refuse_control;
use crate::follow::policy::FollowMode;
use crate::follow::FollowLimits;
use crate::probe::target::Target;
use crate::shell::{self, history, ShellSettings};

/// Arguments of `imapref shell`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShellArgs {
    /// `host`, `host:port`, `[v6addr]:port` or an IMAP URL; without it, use `:connect` inside the shell.
    pub target: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    /// The login name for `:login` without one (`DOMname/UserN/AliasN` for Exchange 5.5).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    /// The history file (default: `history` in the platform data directory, e.g.
    /// ~/.local/share/imapref/history). Passwords are removed before a line is stored.
    #[arg(long, value_name = "FILE", conflicts_with = "no_history")]
    pub history: Option<PathBuf>,
    /// Keep no history file.
    #[arg(long)]
    pub no_history: bool,
    /// Seconds to wait for a command's completion, and for any connect, read or handshake.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Trust this host for `:follow` besides the host you named, loopback and its domain (`*` matches any
    /// characters; repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub allow_host: Vec<String>,
    /// Seconds for opening a connection, all its steps together (connect, TLS, greeting, capabilities, STARTTLS).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub max_time: f64,
    /// How `:follow` treats referrals: auto follows trusted hosts (and asks about others on a terminal), ask asks every
    /// time, never refuses.
    #[arg(long, value_enum, default_value_t = FollowArg::Auto)]
    pub follow: FollowArg,
    /// The most referrals `:follow` goes from the first connection (RFC 2221 says 10).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_hops: usize,
    /// The most URLs of one REFERRAL `:follow` tries (replicas, in order).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_alternatives: usize,
}

/// Validates the arguments into settings; reads a password given by `--password-env`, `--password-file` or
/// `--password-stdin` (the first line of stdin; the commands follow it).
pub fn settings(args: &ShellArgs) -> anyhow::Result<ShellSettings> {
    let target = match &args.target {
        Some(t) => Some(Target::parse(t).with_context(|| format!("target `{t}`"))?),
        None => None,
    };
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout {}: give a number of seconds above 0 and at most 3600",
            args.timeout
        );
    }
    super::check_run_limits(args.max_time, args.max_hops, args.max_alternatives)?;
    let mut user = args
        .user
        .clone()
        .or_else(|| target.as_ref().and_then(|t| t.user.clone()));
    let password = if args.password.netrc || args.password.netrc_file.is_some() {
        // The netrc entry of the target's host gives the password, and the login name when none was named.
        let Some(target) = &target else {
            bail!("--netrc needs a target: the netrc entry is looked up by its host");
        };
        let Some((login, password)) = args
            .password
            .netrc_credentials(&target.host, user.as_deref())?
        else {
            bail!("--netrc: no netrc file to read");
        };
        if user.is_none() {
            user = login;
        }
        Some(password)
    } else if args.password.given() {
        Some(args.password.read("")?)
    } else {
        None
    };
    if let Some(u) = &user {
        refuse_control("the login name (--user)", u)?;
    }
    let history = if args.no_history {
        None
    } else {
        args.history.clone().or_else(history::default_path)
    };
    Ok(ShellSettings {
        target: args.target.clone(),
        tls_mode: args.tls.mode(),
        tls: args.tls.options(),
        user,
        password,
        history,
        timeout: Duration::from_secs_f64(args.timeout),
        allow_hosts: args.allow_host.clone(),
        follow: match args.follow {
            FollowArg::Auto => FollowMode::Auto,
            FollowArg::Ask => FollowMode::Ask,
            FollowArg::Never => FollowMode::Never,
        },
        max_time: Duration::from_secs_f64(args.max_time),
        max_hops: args.max_hops,
        follow_limits: FollowLimits {
            max_alternatives: args.max_alternatives,
        },
        color: colored::control::SHOULD_COLORIZE.should_colorize(),
    })
}

/// Runs `imapref shell`.
pub async fn run(args: ShellArgs) -> anyhow::Result<i32> {
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("imapref: {err:#}");
            return Ok(crate::exit::UNKNOWN);
        }
    };
    if settings.tls_mode != crate::transport::TlsMode::Plain {
        // Build the TLS context (trust store, --ca-file) while the connection opens.
        crate::transport::prewarm(&settings.tls);
    }
    shell::run(settings).await
}
