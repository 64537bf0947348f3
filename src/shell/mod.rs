//! `imapref shell`: KB Q217388's telnet session done right. Raw IMAP as typed (`? login DOMname/UserN/AliasN
//! PASSword` works verbatim), with line editing, completion, a history that never holds a password, responses
//! coloured and referrals decoded as they arrive, and local `:` commands to connect, log in without echo, follow a
//! referral under the probe's policy, go back, explain, and save the transcript.
//!
//! On a terminal it is a REPL ([`repl`]); with stdin not a terminal it runs the lines in order as a script
//! ([`piped`]) and exits with the status of the last command (0 OK, 1 NO, 2 BAD, BYE or a lost connection).
//!
//! - [`engine`]: what a line does, the same in both modes; the connection stack for `:follow` and `:back`;
//! - [`connection`]: the task that owns one [`Session`](crate::session::Session) and shows what arrives;
//! - [`line`](mod@line): typed lines to wire pieces (tags, literals, redaction);
//! - [`local`]: parsing the `:` commands;
//! - [`output`]: formatting responses (colour, referral decode, wire escapes);
//! - [`completion`]: tab completion and the password mask;
//! - [`history`]: where the history lives and what may be stored;
//! - [`printer`]: the one way out for all output.

pub mod completion;
pub mod connection;
pub mod engine;
pub mod history;
pub mod line;
pub mod local;
pub mod output;
pub mod piped;
pub mod printer;
pub mod repl;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;
use crate::transport::{TlsMode, TlsOptions};

/// Everything the shell needs, validated by the CLI.
#[derive(Debug, Clone)]
pub struct ShellSettings {
    /// What to connect to at start (`host`, `host:port`, `[v6]:port` or an IMAP URL); `None`: `:connect` later.
    pub target: Option<String>,
    /// The TLS mode for `TARGET` and `:connect` without a TLS option. `:follow` never goes below the current one.
    pub tls_mode: TlsMode,
    /// CA file and `--insecure`.
    pub tls: TlsOptions,
    /// The login name for `:login` without one (`--user`, or the target URL's user).
    pub user: Option<String>,
    /// A password given with `--password-env`, `--password-file` or `--password-stdin`; `None`: ask without echo.
    pub password: Option<Secret>,
    /// The history file; `None` keeps no history (`--no-history`).
    pub history: Option<PathBuf>,
    /// The bound on every wait for a command's completion (and each connect, read and handshake). Default 10 s.
    pub timeout: Duration,
    /// Hosts trusted for `:follow` besides the named host, loopback and its domain (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// `--follow`: how `:follow` treats referrals (auto: trusted hosts; ask: always ask; never: refuse).
    pub follow: crate::follow::policy::FollowMode,
    /// `--max-time`: the bound on opening a connection (connect, TLS, greeting, capabilities, STARTTLS together).
    pub max_time: Duration,
    /// `--max-hops`: the most referrals followed from the first connection.
    pub max_hops: usize,
    /// How many URLs of one REFERRAL `:follow` tries in order.
    pub follow_limits: crate::follow::FollowLimits,
    /// Colour (resolved from `--color` and `NO_COLOR`); ignored without a terminal.
    pub color: bool,
}

/// Whether the line loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Leave (`:quit`).
    Quit,
}

/// How the engine asks the person something.
pub trait Ui {
    /// A password, without echo. `Err` says why there is none (no terminal, cancelled).
    fn password(&mut self, prompt: &str) -> Result<Secret, String>;
    /// A yes/no question; no means no.
    fn confirm(&mut self, question: &str) -> bool;
}

/// Runs the shell: a REPL when stdin is a terminal, a script otherwise. Returns the exit code.
pub async fn run(settings: ShellSettings) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Handle::current();
    let interactive = std::io::stdin().is_terminal();
    let (done, wait) = tokio::sync::oneshot::channel();
    // The line loop blocks (on the terminal, or on stdin), so it gets a thread of its own.
    std::thread::Builder::new()
        .name("imapref-shell".into())
        .spawn(move || {
            let code = if interactive {
                repl::run(rt, settings)
            } else {
                piped::run(rt, settings)
            };
            let _ = done.send(code);
        })?;
    wait.await?
}
