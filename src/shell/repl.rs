//! The shell on a terminal: a rustyline loop.
//!
//! - Output from the connections goes through rustyline's `ExternalPrinter`, so a line that arrives while the user
//!   types is printed above the prompt and the line being typed stays intact.
//! - Tab completes ([`completion`](mod@super::completion)); the password of a LOGIN line is drawn as `*` while typed.
//! - History is stored only in redacted form ([`history`](mod@super::history)); the password never reaches the file.
//! - Ctrl-C cancels the line being typed. While a command waits for its completion, a first Ctrl-C says so and a
//!   second one resets the connection. Ctrl-D logs out (showing the server's BYE and OK) and leaves with status 0.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;
use tokio::runtime::Handle;

use super::completion::{Mailboxes, ShellHelper, SHOW_CURSOR};
use super::connection::Shared;
use super::engine::Engine;
use super::history::{self, LineKind, MAX_ENTRIES};
use super::printer::{Printer, Sink};
use super::{Flow, ShellSettings, Ui};
use crate::secret::Secret;

/// How long the prompt waits for output still on its way. Default 500 ms: output normally takes microseconds; the
/// bound only matters if the terminal is stuck.
const FLUSH_WAIT: Duration = Duration::from_millis(500);

type ShellEditor = Editor<ShellHelper, DefaultHistory>;

/// Asks on the terminal: passwords without echo, questions through the line editor.
struct Terminal<'a> {
    editor: &'a mut ShellEditor,
    printer: &'a Printer,
}

impl Ui for Terminal<'_> {
    fn password(&mut self, prompt: &str) -> Result<Secret, String> {
        self.printer.flush(FLUSH_WAIT);
        match rpassword::prompt_password(prompt) {
            Ok(p) if p.is_empty() => Err("no password typed; nothing sent".into()),
            Ok(p) if p.contains(['\r', '\n', '\0']) => Err(
                "the password holds CR, LF or NUL, which IMAP cannot carry; nothing sent".into(),
            ),
            Ok(p) => Ok(Secret::new(p)),
            Err(e) => Err(format!("cannot read the password from the terminal: {e}")),
        }
    }

    fn confirm(&mut self, question: &str) -> bool {
        self.printer.flush(FLUSH_WAIT);
        match self.editor.readline(&format!("{question} [y/N] ")) {
            Ok(answer) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
            Err(_) => false,
        }
    }
}

/// Saves new history entries; a failure is reported once, then history is kept in memory only.
struct HistoryFile {
    path: Option<PathBuf>,
}

impl HistoryFile {
    fn add(&mut self, editor: &mut ShellEditor, entry: String, shared: &Shared) {
        if editor.add_history_entry(entry).is_err() {
            return;
        }
        if let Some(path) = &self.path {
            if let Err(e) = editor.append_history(path) {
                shared.warn_blocking(&format!(
                    "cannot save the history to {}: {e}; history is kept in memory only",
                    path.display()
                ));
                self.path = None;
            }
        }
    }
}

/// Runs the REPL until Ctrl-D or `:quit`; returns the exit code (0).
pub fn run(rt: Handle, settings: ShellSettings) -> anyhow::Result<i32> {
    let stdout_tty = std::io::stdout().is_terminal();
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(MAX_ENTRIES)?
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        // The password mask is drawn by the highlighter, which rustyline only uses with colour on.
        .color_mode(if stdout_tty {
            ColorMode::Forced
        } else {
            ColorMode::Disabled
        })
        .build();
    let mailboxes: Mailboxes = Arc::default();
    let mut editor: ShellEditor = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper::new(Arc::clone(&mailboxes))));
    let mut history = HistoryFile {
        path: settings.history.clone(),
    };
    if let Some(path) = &history.path {
        if let Err(e) = history::prepare(path) {
            eprintln!(
                "imapref: cannot create the history directory for {}: {e}; history is kept in memory only",
                path.display()
            );
            history.path = None;
        } else if path.exists() {
            let _ = editor.load_history(path);
        }
    }
    let sink = match editor.create_external_printer() {
        Ok(p) => Sink::Terminal(Box::new(p)),
        Err(_) => Sink::Std,
    };
    let (printer, _thread) = Printer::start(sink)?;
    let color = settings.color && stdout_tty;
    let shared = Arc::new(Shared {
        printer: printer.clone(),
        color,
        interactive: true,
        raw: AtomicBool::new(false),
        current: AtomicUsize::new(0),
        mailboxes,
        timeout: settings.timeout,
        max_time: settings.max_time,
    });
    shared.note_blocking(&format!(
        "imapref shell {} — :help lists the shell's commands; Ctrl-D logs out and leaves",
        env!("CARGO_PKG_VERSION")
    ));
    let mut engine = Engine::new(rt, Arc::clone(&shared), settings);
    engine.start();

    let mut warned = false;
    let mut owed = 0usize;
    loop {
        printer.flush(FLUSH_WAIT);
        let continuation = engine.continuation();
        if let Some(helper) = editor.helper_mut() {
            helper.set_mask_all(continuation.as_ref().is_some_and(|c| c.is_secret()));
        }
        // A Ctrl-C taken as a signal while a command waited may reach rustyline's own SIGINT handler too: a readline
        // then returns Interrupted at once. Such an Interrupted is owed, not typed, and is taken for what it is.
        owed += engine.take_interrupts_seen();
        let swallowing = owed > 0;
        let prompt = engine.prompt();
        let read = editor.readline(&prompt);
        if editor.helper().is_some_and(ShellHelper::take_hidden_cursor) {
            // The mask hid the cursor while a secret was on the line.
            let mut out = std::io::stdout();
            let _ = out.write_all(SHOW_CURSOR.as_bytes());
            let _ = out.flush();
        }
        match read {
            Ok(line) => {
                warned = false;
                owed = 0;
                let kind = match &continuation {
                    Some(c) if c.is_secret() => LineKind::SecretContinuation,
                    Some(_) => LineKind::Continuation,
                    None => LineKind::Command,
                };
                if let Some(entry) = history::entry_for(&line, kind) {
                    history.add(&mut editor, entry, &shared);
                }
                let mut ui = Terminal {
                    editor: &mut editor,
                    printer: &printer,
                };
                if engine.execute(line.as_bytes(), &mut ui) == Flow::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) if swallowing => owed -= 1,
            Err(ReadlineError::Interrupted) => match engine.in_flight() {
                Some(waiting) if warned => {
                    warned = false;
                    shared.note_blocking(&format!(
                        "resetting the connection ({waiting} was still waiting)"
                    ));
                    engine.reset_current();
                    printer.flush(FLUSH_WAIT);
                }
                Some(waiting) => {
                    warned = true;
                    shared.note_blocking(&format!(
                        "{waiting} is still waiting for the server; press Ctrl-C again to reset the connection"
                    ));
                }
                None => warned = false,
            },
            Err(ReadlineError::Eof) => {
                engine.quit();
                break;
            }
            Err(e) => {
                shared.warn_blocking(&format!("cannot read the terminal: {e}"));
                engine.quit();
                break;
            }
        }
    }
    printer.flush(Duration::from_secs(2));
    Ok(crate::exit::OK)
}
