//! The shell without a terminal: `imapref shell host:143 < walkthrough.txt` is a scripted check.
//!
//! Lines are read from stdin and run in order; each IMAP line waits for its tagged completion (or the server's `+`)
//! before the next is sent. Stdout gets exactly the server's lines, without prompts, colour or `S:` prefixes (CRLF as
//! LF); the shell's notes, decodes and errors go to stderr. Local `:` commands work; `:login USER` takes the password
//! from `--password-env`, `--password-file` or `--password-stdin`. Blank lines and lines starting with `#` are
//! skipped. A line holding NUL or another control byte is not sent: its error is printed and the exit status is 2
//! whatever follows.
//!
//! The exit status is that of the last command: 0 for OK, 1 for NO, 2 for BAD, BYE, a lost connection or a timeout.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use super::connection::Shared;
use super::engine::Engine;
use super::printer::{Printer, Sink};
use super::{Flow, ShellSettings, Ui};
use crate::exit;
use crate::secret::Secret;

/// The longest line read from stdin. Default 1 MiB: far above any IMAP command line; a longer one is refused rather
/// than held.
const MAX_LINE: usize = 1024 * 1024;

/// No one to ask.
struct Script;

impl Ui for Script {
    fn password(&mut self, _prompt: &str) -> Result<Secret, String> {
        Err(
            "no password: standard input is not a terminal, so give one with --password-env VAR, \
             --password-file FILE or --password-stdin"
                .into(),
        )
    }

    fn confirm(&mut self, _question: &str) -> bool {
        false
    }
}

/// Reads one line (without its line end) into `buf`, at most [`MAX_LINE`] bytes; `Ok(false)` at the end of input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                None
            } else {
                Some(too_long)
            });
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() <= MAX_LINE {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
        }
        let used = done.unwrap_or(available.len());
        input.consume(used);
        if done.is_some() {
            if buf.ends_with(b"\r") {
                buf.pop();
            }
            return Ok(Some(too_long));
        }
    }
}

/// Runs the lines of stdin; returns the exit code.
pub fn run(rt: Handle, settings: ShellSettings) -> anyhow::Result<i32> {
    colored::control::set_override(false);
    let (printer, _thread) = Printer::start(Sink::Std)?;
    let shared = Arc::new(Shared {
        printer: printer.clone(),
        color: false,
        interactive: false,
        raw: AtomicBool::new(false),
        current: AtomicUsize::new(0),
        mailboxes: Arc::default(),
        timeout: settings.timeout,
        max_time: settings.max_time,
    });
    let mut engine = Engine::new(rt, shared, settings);
    engine.start();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        let too_long = match read_line(&mut input, &mut buf) {
            Ok(Some(too_long)) => too_long,
            Ok(None) => break,
            Err(e) => {
                engine.fail(&format!("cannot read standard input: {e}"));
                break;
            }
        };
        number += 1;
        if too_long {
            engine.fail(&format!(
                "line {number}: longer than {MAX_LINE} bytes; not sent"
            ));
            continue;
        }
        let continuing = engine.continuation().is_some();
        let trimmed = buf.trim_ascii_start();
        if !continuing && (trimmed.is_empty() || trimmed.starts_with(b"#")) {
            continue;
        }
        if let Err(e) = super::line::check_control(&buf) {
            engine.fail(&format!("line {number}: {e}"));
            continue;
        }
        if engine.execute(&buf, &mut Script) == Flow::Quit {
            break;
        }
    }
    if engine.continuation().is_some() {
        engine.fail(
            "the input ended inside a command (a literal or the server's `+` waited for more)",
        );
    }
    let code = engine.exit_status();
    engine.quit_quietly();
    printer.flush(Duration::from_secs(2));
    Ok(code.clamp(exit::OK, exit::UNKNOWN))
}
