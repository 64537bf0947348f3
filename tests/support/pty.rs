//! The binary in a pseudo-terminal (expectrl), for the tests of what needs a terminal: the shell's line editor, the
//! probe's prompt, progress, colour and Ctrl-C. Everything the program printed is kept in [`Pty::seen`], so a failed
//! wait shows the output so far. Every wait is bounded by [`TIMEOUT`]; there are no fixed sleeps.
//!
//! Lines for a line editor are typed one key at a time, each waiting for its echo ([`Pty::type_text`]), so a test
//! knows the editor has read a key before it sends the next. The echo of a key is either the character itself or a
//! redraw of the line, which rustyline wraps in a synchronized update (`ESC[?2026h` ... `ESC[?2026l`).

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use expectrl::{Eof, NBytes, WaitStatus};

/// The bound of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The end of a redraw of the line by rustyline.
pub const REDRAW_END: &str = "\x1b[?2026l";

/// A program running in a pseudo-terminal.
pub struct Pty {
    /// The session (send keys, signals, resize).
    pub p: expectrl::Session,
    /// Everything read from the terminal so far.
    pub seen: String,
    exit: Option<WaitStatus>,
}

impl Pty {
    /// Spawns `cmd` in a pseudo-terminal, with `TERM=xterm`.
    pub fn spawn(mut cmd: Command) -> Pty {
        cmd.env("TERM", "xterm");
        let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
        p.set_expect_timeout(Some(TIMEOUT));
        Pty {
            p,
            seen: String::new(),
            exit: None,
        }
    }

    /// Spawns the imapref binary with `args`, `NO_COLOR` unset and then `env` set.
    pub fn imapref(args: &[&str], env: &[(&str, &str)]) -> Pty {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imapref"));
        cmd.args(args).env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Pty::spawn(cmd)
    }

    /// Waits for `needle`; panics with the output so far when it does not come within [`TIMEOUT`].
    #[track_caller]
    pub fn expect(&mut self, needle: &str) {
        match self.p.expect(needle) {
            Ok(found) => {
                self.seen.push_str(&String::from_utf8_lossy(found.before()));
                for m in found.matches() {
                    self.seen.push_str(&String::from_utf8_lossy(m));
                }
            }
            Err(e) => {
                let mut rest = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = self.p.try_read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    rest.extend_from_slice(&buf[..n]);
                }
                panic!(
                    "expected {needle:?}: {e}\n--- output so far ---\n{}\n--- not matched ---\n{}",
                    self.seen,
                    String::from_utf8_lossy(&rest)
                )
            }
        }
    }

    /// The prompt, and the end of the redraw that shows it.
    #[track_caller]
    pub fn prompt(&mut self, prompt: &str) {
        self.expect(prompt);
        self.expect(REDRAW_END);
    }

    /// Types `text` one key at a time, waiting for each key's echo.
    #[track_caller]
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.p.send(c.to_string()).expect("send a key");
            let found = match self.p.expect(NBytes(1)) {
                Ok(found) => found,
                Err(e) => panic!(
                    "no echo for {c:?}: {e}\n--- output so far ---\n{}",
                    self.seen
                ),
            };
            let first = found
                .matches()
                .next()
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            self.seen.push_str(&String::from_utf8_lossy(&first));
            if first == b"\x1b" {
                self.expect(REDRAW_END);
            }
        }
    }

    /// Types a line and presses Enter.
    #[track_caller]
    pub fn type_line(&mut self, line: &str) {
        self.type_text(line);
        self.p.send("\r").expect("send Enter");
    }

    /// Sends a line in one write (to a prompt in cooked mode, or to a line editor that reads bursts).
    pub fn send_line(&mut self, line: &str) {
        self.p.send_line(line).expect("send a line");
    }

    /// True when the program exits within `wait` (its status is kept for [`Pty::exit_status`]).
    pub fn exited_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.p.get_process().status() {
                Ok(WaitStatus::StillAlive) => thread::sleep(Duration::from_millis(20)),
                Ok(status) => {
                    self.exit = Some(status);
                    return true;
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// Reads to the end of output, then waits for the exit status.
    #[track_caller]
    pub fn exit_status(&mut self) -> WaitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        if let Ok(found) = self.p.expect(Eof) {
            self.seen.push_str(&String::from_utf8_lossy(found.before()));
            for m in found.matches() {
                self.seen.push_str(&String::from_utf8_lossy(m));
            }
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.p.get_process().status().expect("status");
            if !matches!(status, WaitStatus::StillAlive) {
                self.exit = Some(status);
                return status;
            }
            if Instant::now() > deadline {
                panic!("the program did not exit\n--- output ---\n{}", self.seen);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit code; panics when the program was killed by a signal.
    #[track_caller]
    pub fn exit_code(&mut self) -> i32 {
        match self.exit_status() {
            WaitStatus::Exited(_, code) => code,
            other => panic!(
                "the program did not exit normally: {other:?}\n{}",
                self.seen
            ),
        }
    }
}
