//! The human renderer: a probe report as one line per step (mark, timing, essentials), the referral chain drawn as
//! hops (A → B → C), the findings, and a verdict sentence naming the next thing to check; explanations of server lines.
//! Colour comes from `colored`, switched on or off once at the edge.
//!
//! Every string that can hold server bytes or decoded URL parts (server names from referrals, users, mailboxes, step
//! details, findings, the verdict, transcripts, explained lines) goes through [`safe`] (that is,
//! [`crate::proto::display::escape_controls`]) before it is written, so a server cannot move the cursor or forge a line.

use std::io::{self, Write};

use colored::Colorize;

use std::borrow::Cow;

use crate::explain::{ExchangeUser, Explanation, ReferralKind, EXCHANGE_FORM_WHY};
use crate::probe::report::{
    Hop, HopReason, Mark, Report, Severity, Step, TargetReport, VerdictStatus,
};
use crate::probe::Event;
use crate::session::transcript::Direction;

/// The one gate between untrusted text and the human output.
fn safe(text: &str) -> Cow<'_, str> {
    crate::proto::display::escape_controls(text)
}

/// Renders a probe report. `verbose` adds each hop's transcript (`C:`/`S:` lines, passwords already `***`).
pub fn report(report: &Report, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    header(&report.target, out)?;
    for hop in &report.hops {
        hop_header(hop.number, &hop.server, &hop.user, &hop.reason, out)?;
        for step in &hop.steps {
            step_line(step, out)?;
        }
        hop_footer(hop, verbose, out)?;
    }
    summary(report, out)
}

/// A probe report written as the probe goes (on a terminal): the header at once, each hop's line when it begins,
/// each step when it is done, the rest of the hop when it ends, the findings and verdict at the end. The output is
/// the same as [`report`]'s; each piece is flushed as it is written.
pub struct Live<'w> {
    out: &'w mut dyn Write,
    verbose: bool,
}

impl<'w> Live<'w> {
    /// Writes the header line of the probe of `target`.
    pub fn start(target: &TargetReport, verbose: bool, out: &'w mut dyn Write) -> io::Result<Self> {
        header(target, out)?;
        out.flush()?;
        Ok(Live { out, verbose })
    }

    /// Writes what the probe just told.
    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::HopStarted {
                number,
                server,
                user,
                reason,
            } => hop_header(*number, server, user, reason, self.out)?,
            Event::Step(step) => step_line(step, self.out)?,
        }
        self.out.flush()
    }

    /// Ends the line the terminal echoed Ctrl-C on (`^C`), so what follows starts on a line of its own.
    pub fn interrupted(&mut self) -> io::Result<()> {
        writeln!(self.out)
    }

    /// Writes the end of a hop (its referral lines, round trips, transcript with `-v`).
    pub fn hop_done(&mut self, hop: &Hop) -> io::Result<()> {
        hop_footer(hop, self.verbose, self.out)?;
        self.out.flush()
    }

    /// Writes the chain, the findings and the verdict of the finished report.
    pub fn finish(self, report: &Report) -> io::Result<()> {
        summary(report, self.out)?;
        self.out.flush()
    }
}

fn header(t: &TargetReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{} {}{} as {}, mailbox {}{} ({})",
        "imapref probe".bold(),
        safe(&t.server),
        t.host_unicode
            .as_deref()
            .map(|h| format!(" ({})", safe(h)))
            .unwrap_or_default(),
        safe(&t.user),
        safe(&t.mailbox),
        if t.read_only { " (read-only)" } else { "" },
        t.tls_mode
    )
}

fn summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    if report.chain.len() > 1 {
        writeln!(
            out,
            "{:<18}{}",
            "referral chain:",
            safe(&report.chain.join(" → "))
        )?;
    }
    let sent = if report.password_sent_to.is_empty() {
        "nobody".to_string()
    } else {
        safe(&report.password_sent_to.join(", ")).into_owned()
    };
    writeln!(out, "{:<18}{}", "password sent to:", sent)?;
    if !report.diagnoses.is_empty() {
        writeln!(out, "findings:")?;
        for d in &report.diagnoses {
            let label = match d.severity {
                Severity::Info => "info".cyan(),
                Severity::Warning => "warning".yellow(),
                Severity::Critical => "critical".red(),
                Severity::Unknown => "unknown".magenta(),
            };
            writeln!(out, "  {:<9} {}", label, safe(&d.message))?;
        }
    }
    writeln!(out)?;
    let v = &report.verdict;
    let word = match v.status {
        VerdictStatus::Ok => "OK".green().bold(),
        VerdictStatus::Warning => "WARNING".yellow().bold(),
        VerdictStatus::Critical => "CRITICAL".red().bold(),
        VerdictStatus::Unknown => "UNKNOWN".magenta().bold(),
    };
    writeln!(out, "{word}: {}", safe(&v.summary))?;
    if !v.next_step.is_empty() {
        writeln!(out, "{} {}", "next:".bold(), safe(&v.next_step))?;
    }
    writeln!(
        out,
        "({:.0} ms, exit code {})",
        report.total_ms, v.exit_code
    )
}

fn hop_header(
    number: usize,
    server: &str,
    user: &str,
    reason: &HopReason,
    out: &mut dyn Write,
) -> io::Result<()> {
    let why = match reason {
        HopReason::Start => "the server you named".to_string(),
        HopReason::LoginReferral { url } => format!("login referral {}", safe(url)),
        HopReason::MailboxReferral { url } => format!("mailbox referral {}", safe(url)),
    };
    writeln!(out)?;
    writeln!(
        out,
        "{} {}  {}  as {}  ({why})",
        "hop".bold(),
        number.to_string().bold(),
        safe(server).bold(),
        safe(user)
    )
}

fn step_line(step: &Step, out: &mut dyn Write) -> io::Result<()> {
    let mark = match step.mark {
        Mark::Ok => "ok  ".green(),
        Mark::Warn => "warn".yellow(),
        Mark::Fail => "fail".red(),
        Mark::Info => "info".cyan(),
    };
    writeln!(
        out,
        "  {mark}  {:<12} {:>8.1} ms  {}",
        safe(&step.name),
        step.ms,
        safe(&step.detail)
    )
}

fn hop_footer(hop: &Hop, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    if let Some(referral) = hop.login.as_ref().and_then(|l| l.referral.as_ref()) {
        for target in &referral.targets {
            writeln!(out, "        referral: {}", safe(&decode_line(target)))?;
        }
    }
    if let Some(referral) = hop.select.as_ref().and_then(|s| s.referral.as_ref()) {
        for (i, target) in referral.targets.iter().enumerate() {
            writeln!(
                out,
                "        replica {}: {}",
                i + 1,
                safe(&decode_line(target))
            )?;
        }
    }
    if hop
        .error
        .as_ref()
        .is_some_and(|e| e.phase == crate::probe::INTERRUPTED_PHASE)
    {
        writeln!(
            out,
            "        {} after {:.1} ms",
            "interrupted (Ctrl-C)".magenta(),
            hop.ms
        )?;
    } else {
        writeln!(
            out,
            "        {} after the greeting, {:.1} ms",
            crate::words::count(hop.round_trips, "round trip", "round trips"),
            hop.ms
        )?;
    }
    if verbose && !hop.transcript.is_empty() {
        writeln!(out, "        transcript:")?;
        for e in &hop.transcript {
            let prefix = match e.direction {
                Direction::Client => "C:".blue(),
                Direction::Server => "S:".normal(),
                Direction::Note => "--".dimmed(),
            };
            writeln!(out, "        {prefix} {}", safe(&e.text))?;
        }
    }
    Ok(())
}

fn decode_line(t: &crate::explain::ReferralTarget) -> String {
    if let Some(err) = &t.error {
        return format!("{} — cannot be followed: {err}", t.raw);
    }
    let user = t
        .user
        .as_deref()
        .map_or("(same login name)".to_string(), |u| format!("user {u}"));
    let mech = t
        .mechanism
        .as_deref()
        .map_or(String::new(), |m| format!(", AUTH={m}"));
    let host = match (&t.host, t.port) {
        (Some(h), Some(p)) => crate::probe::target::authority(h, p),
        _ => String::new(),
    };
    let mailbox = t
        .mailbox
        .as_deref()
        .map(|m| format!(", mailbox {m}"))
        .unwrap_or_default();
    format!("{host}, {user}{mech}{mailbox}")
}

/// What is said when the input held no line to explain.
pub const NOTHING_TO_EXPLAIN: &str = "Nothing to explain: no server or client line was given (empty lines and # \
     comments are skipped). Give a line, e.g. imapref explain '? NO There is no replica for that mailbox on this \
     server.', or - to read a log from standard input.";

fn exchange_words(x: &ExchangeUser) -> String {
    format!(
        "Exchange 5.5 form: NT domain {}, domain user {}, Exchange alias {}",
        safe(&x.nt_domain),
        safe(&x.domain_user),
        safe(&x.alias)
    )
}

/// Renders explanations of server lines, one block per line.
pub fn explanations(list: &[Explanation], out: &mut dyn Write) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(out, "{NOTHING_TO_EXPLAIN}");
    }
    for (i, e) in list.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", safe(&e.line).bold())?;
        writeln!(out, "  kind:      {}", safe(&e.kind))?;
        if let (Some(code), Some(meaning)) = (&e.code, &e.code_meaning) {
            writeln!(
                out,
                "  code:      {} — {}",
                safe(code).yellow(),
                safe(meaning)
            )?;
        }
        writeln!(out, "  meaning:   {}", safe(&e.summary))?;
        if let Some(x) = &e.exchange_user {
            writeln!(out, "  login:     {}", exchange_words(x))?;
        }
        if let Some(p) = &e.product {
            writeln!(
                out,
                "  server:    {}{}",
                safe(&p.name),
                p.version
                    .as_deref()
                    .map(|v| format!(" {}", safe(v)))
                    .unwrap_or_default()
            )?;
        }
        if let Some(r) = &e.referral {
            let kind = match r.kind {
                ReferralKind::Login => "login referral (RFC 2221)",
                ReferralKind::Mailbox => "mailbox referral (RFC 2193)",
            };
            writeln!(out, "  referral:  {}", kind.cyan())?;
            let logged_in = match r.logged_in {
                Some(true) => "yes: the user is logged in on this server",
                Some(false) => "no",
                None => "unchanged by this line (a mailbox referral comes after login)",
            };
            writeln!(out, "  logged in: {logged_in}")?;
            for (n, t) in r.targets.iter().enumerate() {
                let label = if r.targets.len() > 1 {
                    format!("url {}:", n + 1)
                } else {
                    "url:".into()
                };
                writeln!(out, "  {label:<10} {}", safe(&t.raw))?;
                if let Some(err) = &t.error {
                    writeln!(out, "             cannot be followed: {}", safe(err))?;
                    continue;
                }
                let user = t
                    .user
                    .as_deref()
                    .map_or("(none: keep the login name already used)".into(), |u| {
                        u.to_string()
                    });
                writeln!(out, "             user {}", safe(&user))?;
                let mech = match t.mechanism.as_deref() {
                    None | Some("*") => "any the server offers".to_string(),
                    Some(m) => m.to_string(),
                };
                writeln!(out, "             mechanism {}", safe(&mech))?;
                if let (Some(h), Some(p)) = (&t.host, t.port) {
                    writeln!(out, "             host {}, port {p}", safe(h))?;
                }
                if let Some(m) = &t.mailbox {
                    writeln!(out, "             mailbox {}", safe(m))?;
                }
            }
            writeln!(out, "  next:      {}", safe(&r.next_step))?;
        }
        if let Some(d) = &e.diagnosis {
            writeln!(out, "  diagnosis: {}", safe(d.meaning))?;
            if e.referral.is_none() {
                let next = e.next_step.as_deref().unwrap_or(d.next_step);
                writeln!(out, "  next:      {}", safe(next))?;
            }
        }
        if e.exchange_user.is_some() {
            writeln!(out, "  why:       {EXCHANGE_FORM_WHY}")?;
        }
    }
    Ok(())
}
