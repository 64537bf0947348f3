//! What `imapref lab` prints: the start banner (scenario, servers and ports, CA file, users and passwords, commands
//! ready to paste), and the foreground run that serves until Ctrl-C.

use std::io::Write;

use super::scenario::REMOTE_MAILBOX;
use super::users::{KB_USER, LAB_PASSWORD};
use super::{Lab, LabConfig, LabError};

/// The environment variable the suggested commands read the password from.
const PASSWORD_ENV: &str = "IMAPREF_PASSWORD";

/// Writes the start banner: scenario, servers and ports, CA file path, users and passwords, and imapref commands
/// ready to paste (plain, `--tls --ca-file`, `--starttls`, the shell, telnet).
pub fn write_banner(lab: &Lab, out: &mut dyn Write) -> std::io::Result<()> {
    let info = lab.scenario().info();
    writeln!(
        out,
        "imapref lab: scenario {} ({})",
        info.name, info.description
    )?;
    writeln!(out)?;
    writeln!(out, "servers (greeting names <role>.lab):")?;
    let width = lab
        .servers()
        .iter()
        .map(|s| s.role.len())
        .max()
        .unwrap_or(5);
    for server in lab.servers() {
        let tls = server
            .tls
            .map_or_else(|| "no TLS port".to_string(), |addr| format!("tls {addr}"));
        writeln!(
            out,
            "  {:width$}  plain {}  {}",
            server.role, server.plain, tls
        )?;
        writeln!(out, "  {:width$}  {}", "", server.note)?;
    }
    if let Some(closed) = lab.closed_port() {
        writeln!(
            out,
            "  {:width$}  {closed}  (nothing listens there)",
            "closed"
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "CA file (the lab's throw-away CA, for --ca-file): {}",
        lab.ca_file().display()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "users (fixed lab passwords, published on purpose; loopback only):"
    )?;
    let user_width = lab.users().iter().map(|u| u.login.len()).max().unwrap_or(8);
    for user in lab.users() {
        writeln!(
            out,
            "  {:user_width$}  {}  {}",
            user.login, user.password, user.note
        )?;
    }
    writeln!(out)?;
    writeln!(out, "expect: {}", info.expect)?;
    writeln!(out, "try:")?;
    for command in try_commands(lab) {
        writeln!(out, "  {command}")?;
    }
    Ok(())
}

/// The commands the banner suggests, in order, ready to paste.
fn try_commands(lab: &Lab) -> Vec<String> {
    let info = lab.scenario().info();
    let front = lab.front();
    let ca = lab.ca_file().display().to_string();
    let mailbox = info
        .mailbox
        .map(|m| format!(" --mailbox \"{m}\""))
        .unwrap_or_default();
    let password = if info.scenario == super::Scenario::WrongPassword {
        "wrong-password"
    } else {
        LAB_PASSWORD
    };
    let mut commands = vec![format!("export {PASSWORD_ENV}={password}")];
    let plain = format!(
        "imapref probe {} {KB_USER} --password-env {PASSWORD_ENV}{mailbox}",
        front.plain
    );
    let tls = front
        .tls
        .map(|addr| format!("imapref probe {addr} {KB_USER} --password-env {PASSWORD_ENV}{mailbox} --tls --ca-file {ca}"));
    match (info.probe_tls, tls) {
        (true, Some(tls)) => {
            commands.push(tls);
            commands.push(plain);
        }
        (_, tls) => {
            commands.push(plain);
            commands.extend(tls);
        }
    }
    commands.push(format!(
        "imapref probe {} {KB_USER} --password-env {PASSWORD_ENV}{mailbox} --starttls --ca-file {ca}",
        front.plain
    ));
    commands.push(format!("imapref shell {}", front.plain));
    let host = front.plain.ip();
    let kb_line = if info.mailbox.is_some() {
        format!("? login {KB_USER} {LAB_PASSWORD} / ? rlist \"\" * / ? select \"{REMOTE_MAILBOX}\"")
    } else {
        format!("? login {KB_USER} {LAB_PASSWORD} / ? select Inbox / ? logout")
    };
    commands.push(format!(
        "telnet {host} {}   (then type: {kb_line})",
        front.plain.port()
    ));
    commands
}

/// `imapref lab` in the foreground: starts the lab, writes the banner to `out`, serves until Ctrl-C (SIGINT) or, on
/// Unix, SIGTERM (a service manager, `kill`), then shuts down (ports closed, CA file removed) and says so. Both
/// signals end the same way, so the caller exits 0 after either.
pub async fn run_foreground(
    config: LabConfig,
    out: &mut (dyn Write + Send),
) -> Result<(), LabError> {
    let lab = Lab::start(config).await?;
    // The handler is in place before "serving;" is printed: a Ctrl-C right after it must not kill the process.
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    write_banner(&lab, out)?;
    writeln!(out)?;
    writeln!(out, "serving; press Ctrl-C to stop")?;
    out.flush()?;
    #[cfg(unix)]
    let waited: std::io::Result<()> = {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    };
    #[cfg(not(unix))]
    let waited = tokio::signal::ctrl_c().await;
    let served = lab.connections_served();
    lab.shutdown().await;
    writeln!(
        out,
        "lab stopped after {served} connection(s); ports closed, CA file removed"
    )?;
    out.flush()?;
    waited?;
    Ok(())
}
