//! Where the password comes from: a prompt that does not echo on a terminal, or `--password-env VAR`,
//! `--password-file FILE`, `--password-stdin` for scripts, or a netrc file (`--netrc`, `--netrc-file FILE`, which
//! may give the login name too). Never the command line (it would show in `ps` and in shell history).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::netrc;
use crate::secret::Secret;

/// The password options shared by `probe` and `shell`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["password_file", "password_stdin"])]
    pub password_env: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Read the login name and password from ~/.netrc (`machine HOST login USER password PW`, or `default`), as curl
    /// does; refused when others may read the file.
    #[arg(long, conflicts_with_all = ["password_env", "password_file", "password_stdin"])]
    pub netrc: bool,
    /// As --netrc, from this file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["password_env", "password_file", "password_stdin"])]
    pub netrc_file: Option<PathBuf>,
}

impl PasswordArgs {
    /// True when a script-friendly source was given.
    pub fn given(&self) -> bool {
        self.password_env.is_some()
            || self.password_file.is_some()
            || self.password_stdin
            || self.netrc_path().is_some()
    }

    /// The netrc file to read, when `--netrc` or `--netrc-file` was given (`--netrc-file` wins).
    fn netrc_path(&self) -> Option<PathBuf> {
        match (&self.netrc_file, self.netrc) {
            (Some(path), _) => Some(path.clone()),
            (None, true) => Some(netrc::default_path().unwrap_or_else(|| PathBuf::from(".netrc"))),
            (None, false) => None,
        }
    }

    /// The netrc entry for `host` and `user` (any login when `None`), when a netrc file was asked for; an error
    /// when it cannot be used or has no entry that fits.
    pub fn netrc_entry(
        &self,
        host: &str,
        user: Option<&str>,
    ) -> anyhow::Result<Option<netrc::Entry>> {
        let Some(path) = self.netrc_path() else {
            return Ok(None);
        };
        let entries = netrc::load(&path)?;
        let Some(entry) = netrc::lookup(&entries, host, user) else {
            bail!(
                "netrc file {} has no entry for {host}{} (nor a `default` entry that fits)",
                path.display(),
                user.map(|u| format!(" with login {u}")).unwrap_or_default()
            );
        };
        if entry.password.is_none() {
            bail!(
                "netrc file {}: the entry for {host} has no password",
                path.display()
            );
        }
        Ok(Some(entry.clone()))
    }

    /// The login name (if the entry has one) and the password a netrc file gives for `host` and `user` (any login
    /// when `None`), when a netrc file was asked for: the file is read once for both.
    pub fn netrc_credentials(
        &self,
        host: &str,
        user: Option<&str>,
    ) -> anyhow::Result<Option<(Option<String>, Secret)>> {
        let Some(entry) = self.netrc_entry(host, user)? else {
            return Ok(None);
        };
        let password = entry.password.unwrap_or_default();
        super::refuse_control("the password (netrc)", password.expose())?;
        Ok(Some((entry.login, password)))
    }

    /// Reads the password for `user` on `host`: from the netrc file when one was asked for, else as [`Self::read`].
    pub fn read_for(&self, prompt: &str, host: &str, user: &str) -> anyhow::Result<Secret> {
        match self.netrc_credentials(host, Some(user))? {
            Some((_, password)) => Ok(password),
            None => self.read(prompt),
        }
    }

    /// Reads the password; prompts without echo on a terminal when no source was given.
    pub fn read(&self, prompt: &str) -> anyhow::Result<Secret> {
        let value = if let Some(var) = &self.password_env {
            std::env::var(var).with_context(|| {
                format!("--password-env {var}: the variable is not set (or not UTF-8)")
            })?
        } else if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--password-file {}: cannot read it", path.display()))?;
            first_line(&text).to_string()
        } else if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("--password-stdin: cannot read standard input")?;
            first_line(&line).to_string()
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(prompt)
                .context("cannot read the password from the terminal")?
        } else {
            bail!(
                "no password: standard input is not a terminal, so give one with --password-env VAR, \
                 --password-file FILE or --password-stdin"
            );
        };
        super::refuse_control("the password", &value)?;
        Ok(Secret::new(value))
    }
}

/// The terminal's mode on standard input, saved before a prompt that turns echo off, so that Ctrl-C can put it back.
pub struct TerminalMode {
    #[cfg(unix)]
    saved: Option<rustix::termios::Termios>,
}

impl TerminalMode {
    /// Saves the mode (nothing when standard input is not a terminal).
    pub fn save() -> TerminalMode {
        TerminalMode {
            #[cfg(unix)]
            saved: rustix::termios::tcgetattr(std::io::stdin()).ok(),
        }
    }

    /// Puts the saved mode back (echo on again after an interrupted prompt).
    pub fn restore(&self) {
        #[cfg(unix)]
        if let Some(mode) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                mode,
            );
        }
    }
}

/// The prompt for a password: `Password for jdoe on 127.0.0.1:143: `, `... on [::1]:143: ` for IPv6.
pub fn prompt(user: &str, host: &str, port: u16) -> String {
    format!(
        "Password for {user} on {}: ",
        crate::probe::target::authority(host, port)
    )
}

fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or_default();
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_port_and_brackets_ipv6() {
        assert_eq!(
            prompt("jdoe", "127.0.0.1", 143),
            "Password for jdoe on 127.0.0.1:143: "
        );
        assert_eq!(
            prompt("jdoe", "::1", 993),
            "Password for jdoe on [::1]:993: "
        );
        assert_eq!(
            prompt("DOM/u/a", "mail.example", 143),
            "Password for DOM/u/a on mail.example:143: "
        );
    }

    #[test]
    fn first_line_strips_the_line_end_only() {
        assert_eq!(first_line("pa ss\r\nnext"), "pa ss");
        assert_eq!(first_line("pass\n"), "pass");
        assert_eq!(first_line(" pass "), " pass ");
    }
}
