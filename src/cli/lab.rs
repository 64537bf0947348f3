//! `imapref lab` (the built-in servers, in the foreground until Ctrl-C) and `imapref demo` (the lab in-process, with
//! KB Q217388's walkthrough probed and narrated against it).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;

use super::write_stdout;
use crate::follow::policy::{FollowMode, Policy};
use crate::lab::{self, Lab, LabConfig, Scenario};
use crate::probe::report::{Hop, Report};
use crate::probe::{self, AuthChoice, ProbeSettings};
use crate::render::human;
use crate::secret::Secret;
use crate::session::SessionOptions;
use crate::transport::{TlsMode, TlsOptions};

/// Arguments of `imapref lab`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// The scenario to play (see --list).
    #[arg(long, default_value = "kb", value_name = "NAME")]
    pub scenario: String,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Take consecutive ports from N (default: ports the system picks).
    #[arg(long, value_name = "N")]
    pub port_base: Option<u16>,
    /// The address to listen on; loopback only unless --allow-non-loopback.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: IpAddr,
    /// Allow --bind to take an address other than loopback (the lab's passwords are public).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Do not start implicit-TLS listeners (STARTTLS stays available).
    #[arg(long)]
    pub no_tls: bool,
}

/// Arguments of `imapref demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Add the full transcript of every connection.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Runs `imapref lab`.
pub async fn run_lab(args: LabArgs) -> anyhow::Result<i32> {
    if args.list {
        write_stdout(|out| {
            for info in lab::scenarios() {
                writeln!(out, "{:<18} {}", info.name, info.description)?;
            }
            Ok(())
        })?;
        return Ok(crate::exit::OK);
    }
    let scenario: Scenario = match args.scenario.parse() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("imapref: --scenario: {err}");
            return Ok(crate::exit::UNKNOWN);
        }
    };
    let config = LabConfig {
        scenario,
        bind: args.bind,
        port_base: args.port_base,
        allow_non_loopback: args.allow_non_loopback,
        tls: !args.no_tls,
    };
    let mut stdout = std::io::stdout();
    lab::run_foreground(config, &mut stdout)
        .await
        .context("the lab failed")?;
    Ok(crate::exit::OK)
}

/// Runs `imapref demo`.
pub async fn run_demo(args: DemoArgs) -> anyhow::Result<i32> {
    let lab = Lab::start(LabConfig::default())
        .await
        .context("cannot start the lab")?;
    let front = lab.front().plain;
    let home = lab
        .server("home")
        .map(|s| s.plain.to_string())
        .unwrap_or_default();
    let settings = ProbeSettings {
        target_input: front.to_string(),
        host: front.ip().to_string(),
        port: front.port(),
        user: lab::users::KB_USER.to_string(),
        mailbox: "INBOX".into(),
        read_only: false,
        tls_mode: TlsMode::Plain,
        tls: TlsOptions::default(),
        auth: AuthChoice::Login,
        policy: Policy {
            mode: FollowMode::Auto,
            max_hops: 10,
            allow_hosts: Vec::new(),
            named_host: front.ip().to_string(),
            interactive: false,
        },
        session: SessionOptions {
            timeout: Duration::from_secs(10),
            ..SessionOptions::default()
        },
        cert_warn_days: 14,
        max_time: Some(Duration::from_secs(30)),
        follow: crate::follow::FollowLimits::default(),
        pipelining: true,
    };
    let password = Secret::new(lab::users::LAB_PASSWORD);
    let report = probe::run(&settings, &password).await;
    lab.shutdown().await;
    write_stdout(|out| {
        writeln!(
            out,
            "KB Q217388 replayed on loopback: the lab plays two Exchange 5.5 servers."
        )?;
        writeln!(
            out,
            "  front (not the user's home): {front}    home: {home}"
        )?;
        writeln!(
            out,
            "  user {}, the KB's password (shown as ***)",
            lab::users::KB_USER
        )?;
        writeln!(out)?;
        narrate(&report, out)?;
        writeln!(out)?;
        writeln!(
            out,
            "The probe's report (what `imapref probe {front} {}` prints):",
            lab::users::KB_USER
        )?;
        writeln!(out)?;
        human::report(&report, args.verbose, out)
    })?;
    Ok(report.verdict.exit_code)
}

/// The walkthrough, told step by step from the report.
fn narrate(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut n = 0;
    let mut say =
        |out: &mut dyn std::io::Write, title: &str, body: String| -> std::io::Result<()> {
            n += 1;
            writeln!(out, "{n}. {title}")?;
            for line in body.lines() {
                writeln!(out, "   {line}")?;
            }
            Ok(())
        };
    let Some(first) = report.hops.first() else {
        return writeln!(out, "The probe made no connection.");
    };
    say(
        out,
        &format!(
            "Connect to {} (the KB's `telnet <SECOND> 143`). The banner:",
            first.server
        ),
        banner(first),
    )?;
    if let Some(login) = &first.login {
        say(
            out,
            &format!(
                "Log in as the KB types it: `? login {} ***`. The server answers:",
                first.user
            ),
            login.line.clone(),
        )?;
        if let Some(r) = &login.referral {
            say(
                out,
                "That is a login referral (RFC 2221). Decoded:",
                referral_text(r),
            )?;
        }
    }
    if let Some(select) = &first.select {
        let mut body = select.line.clone();
        if let Some(d) = report
            .diagnoses
            .iter()
            .find(|d| d.id == crate::probe::report::DiagnosisId::NoReplica)
        {
            body.push('\n');
            body.push_str(&d.message);
        }
        say(
            out,
            "`Select Inbox` on the same server, as the KB's step 6 does:",
            body,
        )?;
    }
    for hop in report.hops.iter().skip(1) {
        let mut body = format!("banner: {}", banner(hop));
        if let Some(login) = &hop.login {
            body.push_str(&format!("\nlogin as {}: {}", hop.user, login.line));
        }
        if let Some(select) = &hop.select {
            body.push_str(&format!("\nselect {}: {}", hop.mailbox, select.line));
        }
        if let Some(state) = &hop.mailbox_state {
            body.push_str(&format!(
                "\n{}, first unseen #{}, UIDVALIDITY {}",
                crate::words::count(state.exists.unwrap_or_default(), "message", "messages"),
                state.unseen.map_or("-".into(), |u| u.to_string()),
                state.uidvalidity.map_or("-".into(), |u| u.to_string())
            ));
        }
        say(
            out,
            &format!(
                "Follow the referral to the home server {} and try again:",
                hop.server
            ),
            body,
        )?;
    }
    say(
        out,
        "Verdict:",
        format!("{}\n{}", report.verdict.summary, report.verdict.next_step),
    )
}

fn banner(hop: &Hop) -> String {
    hop.greeting
        .as_ref()
        .map_or_else(|| "(no greeting)".to_string(), |g| g.line.clone())
}

fn referral_text(r: &crate::explain::ReferralExplanation) -> String {
    let mut lines = Vec::new();
    for t in &r.targets {
        lines.push(format!("url {}", t.raw));
        lines.push(format!(
            "user {}, mechanism {}, host {}, port {}",
            t.user.as_deref().unwrap_or("(the same)"),
            t.mechanism.as_deref().unwrap_or("*"),
            t.host.as_deref().unwrap_or("?"),
            t.port.map_or("?".into(), |p| p.to_string())
        ));
    }
    lines.push(r.next_step.clone());
    lines.join("\n")
}
