//! One server connection of the shell: a tokio task that owns the [`Session`], and the handle the line loop talks to.
//!
//! [`open`] connects, does implicit TLS, reads and shows the greeting, learns the capabilities (CAPABILITY when the
//! greeting carried none), does STARTTLS when asked, and spawns the task. The task loops on `tokio::select!` between
//! requests from the line loop ([`Request`]) and [`Session::next_event`], so untagged data that arrives while the
//! user types (an `EXISTS`, a `BYE` on idle timeout) is shown at once. While idle the read timeout is long; while a
//! command runs, every wait is bounded by the shell's `--timeout`.
//!
//! Everything the server sends is shown as it arrives, through the [`Printer`]: on a terminal, coloured and with a
//! one-line decode under a REFERRAL; without one, the server's lines exactly (notes go to stderr). A streamed big
//! literal is shown piece by piece, or summarised as its size when it is binary, and never held in memory.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::completion::Mailboxes;
use super::line::{plan_continuation, plan_line, plan_response_line, OpenCommand, Planned};
use super::output::{self, Paint};
use super::printer::{Printer, Stream};
use crate::client::Event;
use crate::follow::classify;
use crate::probe::target::authority;
use crate::proto::command::Command;
use crate::proto::response::{Kind, Response};
use crate::secret::{Redactor, Secret};
use crate::session::open::{OpenError, OpenStep, Opening};
use crate::session::{self, Session, SessionError, SessionOptions};
use crate::transport::{CertificateInfo, Endpoint, TlsMode, TlsOptions};

/// The read timeout while no command is waiting. Default 24 h: an idle shell waits for the server as long as the
/// server keeps the connection; the server's own idle timeout (a `BYE`) ends it first.
const IDLE_READ: Duration = Duration::from_secs(24 * 3600);
/// How long LOGOUT waits for its answer at most. Default 5 s: the answer is a courtesy.
const LOGOUT_WAIT: Duration = Duration::from_secs(5);

/// What every connection of one shell shares with the line loop.
pub struct Shared {
    /// The output.
    pub printer: Printer,
    /// Colour on (a terminal, and neither `--color never` nor `NO_COLOR`).
    pub color: bool,
    /// A person at a terminal (prompt, colour, notes on the terminal) rather than a script (server lines on stdout,
    /// notes on stderr).
    pub interactive: bool,
    /// `:raw on`: show the wire bytes, escaped.
    pub raw: AtomicBool,
    /// The id of the connection the user talks to; output of the others is labelled.
    pub current: AtomicUsize,
    /// Mailbox names learned from LIST, LSUB, RLIST and RLSUB, for completion.
    pub mailboxes: Mailboxes,
    /// The bound on every wait for a command's answer (`--timeout`).
    pub timeout: Duration,
    /// The bound on opening a connection, all steps together (`--max-time`).
    pub max_time: Duration,
}

impl Shared {
    /// A note from the shell: on the terminal (dimmed), or on stderr without one.
    pub async fn note(&self, text: &str) {
        self.printer
            .print(Stream::Err, output::paint(text, Paint::Dim, self.color))
            .await;
    }

    /// [`Shared::note`] from outside the async runtime.
    pub fn note_blocking(&self, text: &str) {
        self.printer
            .print_blocking(Stream::Err, output::paint(text, Paint::Dim, self.color));
    }

    /// A warning or error: red on the terminal, stderr without one.
    pub fn warn_blocking(&self, text: &str) {
        self.printer
            .print_blocking(Stream::Err, output::paint(text, Paint::Red, self.color));
    }

    /// Output the user asked for (help, explanations): stdout.
    pub fn say_blocking(&self, text: &str) {
        self.printer.print_blocking(Stream::Out, text.to_string());
    }
}

/// What the line loop can see of a connection; the task keeps it up to date.
#[derive(Debug, Default)]
pub struct ConnState {
    /// The connection is open.
    pub alive: bool,
    /// It is TLS-protected.
    pub tls: bool,
    /// The last capabilities learned.
    pub capabilities: Vec<String>,
    /// The last status response (greeting, OK, NO, BAD, BYE), for `:explain`.
    pub last_status: Option<Response>,
    /// The last response with a REFERRAL code, for `:follow`.
    pub last_referral: Option<Response>,
    /// The user name and password of the last LOGIN or AUTHENTICATE that was accepted or referred.
    pub login: Option<(String, Secret)>,
    /// Tags sent and not yet completed.
    pub pending: Vec<String>,
    /// The command goes on in the next typed line (a literal, or the server's `+`).
    pub continuation: Option<Continuation>,
    /// The transcript, kept when the connection ends.
    pub final_transcript: Option<String>,
}

/// Why the next typed line belongs to a command already sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// A literal's data, or the rest of the command after a literal.
    Literal {
        /// The data belongs to a password or an AUTHENTICATE step.
        secret: bool,
        /// Bytes of the literal still to type.
        remaining: u64,
    },
    /// The server sent `+` (IDLE waits for DONE, AUTHENTICATE for the next step).
    Server {
        /// The line is a secret (an AUTHENTICATE step).
        secret: bool,
    },
}

impl Continuation {
    /// True when the next line must not be shown or stored.
    pub fn is_secret(&self) -> bool {
        match self {
            Continuation::Literal { secret, .. } | Continuation::Server { secret } => *secret,
        }
    }
}

/// How a request ended.
#[derive(Debug)]
pub enum Reply {
    /// The tagged completion arrived.
    Done {
        /// It.
        completion: Response,
    },
    /// The command goes on: the next typed line is its continuation ([`ConnState::continuation`]).
    More,
    /// Nothing was sent: the line was blank.
    Nothing,
    /// Nothing was sent: the line cannot be sent.
    NotSent {
        /// Why.
        message: String,
    },
    /// No completion within the timeout; the command may still complete later.
    TimedOut {
        /// The tag waited for.
        tag: String,
    },
    /// The connection is gone (closed by the server, a network error, or reset).
    Lost {
        /// What happened.
        message: String,
        /// The connection already said so (its output shows when it happened).
        shown: bool,
    },
}

/// What the line loop asks a connection to do.
pub enum Request {
    /// Send a typed line (a new command, or the continuation of one).
    Line {
        /// The line, without its line end.
        line: Vec<u8>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Reply>,
    },
    /// LOGIN (or AUTHENTICATE PLAIN) with a password that is shown as `***`.
    Login {
        /// The login name.
        user: String,
        /// The password.
        password: Secret,
        /// AUTHENTICATE PLAIN instead of LOGIN (the referral URL asked for `;AUTH=PLAIN`).
        plain: bool,
        /// Where the outcome goes.
        reply: oneshot::Sender<Reply>,
    },
    /// STARTTLS on this connection.
    StartTls {
        /// The host name the certificate must name.
        host: String,
        /// CA file and `--insecure`.
        tls: TlsOptions,
        /// The certificate, or why it failed.
        reply: oneshot::Sender<Result<CertificateInfo, String>>,
    },
    /// LOGOUT and close.
    Logout {
        /// Do not show the answer (a connection in the background).
        quiet: bool,
        /// Answered once the connection is closed.
        reply: oneshot::Sender<()>,
    },
    /// The transcript so far.
    Transcript {
        /// The `C:`/`S:` text, passwords as `***`.
        reply: oneshot::Sender<String>,
    },
}

/// The line loop's handle on a connection.
pub struct Connection {
    /// A number unique within the shell.
    pub id: usize,
    /// The host connected to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The TLS mode it was opened with.
    pub mode: TlsMode,
    /// What the task shares.
    pub state: Arc<Mutex<ConnState>>,
    tx: mpsc::Sender<Request>,
    reset: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Connection {
    /// `host:port`.
    pub fn label(&self) -> String {
        authority(&self.host, self.port)
    }

    /// Sends a request; `false` when the task is gone.
    pub async fn request(&self, request: Request) -> bool {
        self.tx.send(request).await.is_ok()
    }

    /// [`Connection::request`] from outside the async runtime.
    pub fn request_blocking(&self, request: Request) -> bool {
        self.tx.blocking_send(request).is_ok()
    }

    /// Drops the connection at once, without LOGOUT (the second Ctrl-C while a command waits).
    pub fn reset(&self) {
        self.reset.notify_one();
    }

    /// A copy of the shared state, taken under the lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&ConnState) -> T) -> T {
        match self.state.lock() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The task ends by itself when the request channel closes; a reset also ends a wait it may be in.
        if !self.task.is_finished() {
            self.reset.notify_one();
        }
    }
}

/// What [`open`] gives.
pub struct Opened {
    /// The handle.
    pub connection: Connection,
    /// The greeting.
    pub greeting: Response,
}

/// Connects, greets, learns capabilities, does TLS as `mode` asks, shows all that, and spawns the task.
pub async fn open(
    id: usize,
    host: &str,
    port: u16,
    mode: TlsMode,
    tls: &TlsOptions,
    shared: Arc<Shared>,
) -> Result<Opened, OpenError> {
    let endpoint = Endpoint::new(host, port);
    let options = SessionOptions {
        timeout: shared.timeout,
        ..SessionOptions::default()
    };
    // The same opening as the probe's; the shell shows each step as a note.
    let deadline = session::Deadline::after(shared.max_time);
    let opening = session::open::open(&endpoint, mode, tls, options, Some(deadline)).await;
    let refused = opening.refused();
    let Opening {
        session,
        connect,
        steps,
        greeting,
        failure,
    } = opening;
    if let Some(info) = &connect {
        shared
            .note(&format!(
                "connected to {} ({})",
                info.endpoint, info.connected_to
            ))
            .await;
    }
    let mut printing = Printing::new(id, authority(host, port), Arc::clone(&shared));
    for (step, _) in &steps {
        match step {
            OpenStep::Tls(cert) => shared.note(&certificate_note(cert)).await,
            OpenStep::Greeting => {
                if let Some(greeting) = &greeting {
                    printing.response(greeting).await;
                    for line in output::greeting_notes(greeting) {
                        shared.note(&line).await;
                    }
                }
            }
            OpenStep::StartTls(cert) => {
                shared.note("STARTTLS: TLS established").await;
                shared.note(&certificate_note(cert)).await;
            }
            OpenStep::StartTlsNotOffered => {
                shared
                    .note("the server does not offer STARTTLS; going on in plaintext (--starttls=opportunistic)")
                    .await;
            }
            OpenStep::Connected | OpenStep::Capabilities { .. } => {}
        }
    }
    let mut session = match (session, failure) {
        (Some(mut session), None) => {
            // The opening's deadline is over; each command has its own bound from here on.
            session.set_deadline(None);
            session
        }
        (session, failure) => {
            if let Some(mut session) = session {
                session.close().await;
            }
            return Err(failure.map_or(OpenError::Session(SessionError::NotConnected), |f| f.error));
        }
    };
    if refused {
        // The server takes no connections (a BYE [REFERRAL] greeting sends the client elsewhere).
        session.close().await;
    } else {
        let caps = session
            .capabilities()
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        shared.note(&output::capability_summary(&caps)).await;
    }
    let Some(greeting) = greeting else {
        return Err(OpenError::Session(SessionError::NotConnected));
    };
    let state = ConnState {
        alive: session.is_connected(),
        tls: session.is_tls(),
        capabilities: session
            .capabilities()
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        last_status: Some(greeting.clone()),
        last_referral: greeting
            .code()
            .and_then(|c| c.referral_urls())
            .map(|_| greeting.clone()),
        ..ConnState::default()
    };
    let state = Arc::new(Mutex::new(state));
    let (tx, rx) = mpsc::channel(4);
    let reset = Arc::new(Notify::new());
    let task = Task {
        session,
        rx,
        reset: Arc::clone(&reset),
        state: Arc::clone(&state),
        printing,
        open: None,
        answering: None,
        pending_login: None,
        logging_out: false,
    };
    let task = tokio::spawn(task.serve());
    Ok(Opened {
        connection: Connection {
            id,
            host: host.to_string(),
            port,
            mode,
            state,
            tx,
            reset,
            task,
        },
        greeting,
    })
}

/// A certificate in one line.
pub fn certificate_note(cert: &CertificateInfo) -> String {
    format!("TLS: {}", cert.summary())
}

/// How this connection's output is shown.
struct Printing {
    id: usize,
    label: String,
    shared: Arc<Shared>,
    /// Bytes of the current response already shown (a streamed literal shows its head first).
    shown_upto: usize,
    /// The streamed literal being shown.
    literal: Option<LiteralShow>,
    /// Show nothing (a connection logging out in the background).
    quiet: bool,
    /// The passwords sent on this connection (LOGIN typed whole, `:login`, `:follow`): masked as `***` wherever the
    /// server echoes them back (a NO text, an untagged line, a literal).
    redactors: Vec<Redactor>,
}

struct LiteralShow {
    total: u64,
    remaining: u64,
    binary: Option<bool>,
    ends_with_newline: bool,
}

impl Printing {
    fn new(id: usize, label: String, shared: Arc<Shared>) -> Self {
        Printing {
            id,
            label,
            shared,
            shown_upto: 0,
            literal: None,
            quiet: false,
            redactors: Vec::new(),
        }
    }

    /// Masks `password` (and the AUTHENTICATE PLAIN forms with `user`) in everything shown from now on.
    fn mask_password(&mut self, user: &str, password: &Secret) {
        if password.is_empty() {
            return;
        }
        let r = Redactor::new(password).with_login(user);
        self.redactors.push(r);
    }

    /// `bytes` with every known password masked.
    fn masked<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for r in &self.redactors {
            if let Cow::Owned(m) = r.redact_bytes(&out) {
                out = Cow::Owned(m);
            }
        }
        out
    }

    /// `text` with every known password masked.
    fn masked_text(&self, text: String) -> String {
        self.redactors
            .iter()
            .fold(text, |t, r| r.redact(&t).into_owned())
    }

    fn raw(&self) -> bool {
        self.shared.raw.load(Ordering::Relaxed)
    }

    /// A prefix for the output of a connection the user is not talking to.
    fn prefix(&self) -> String {
        if self.shared.current.load(Ordering::Relaxed) == self.id {
            String::new()
        } else {
            format!("[{}] ", self.label)
        }
    }

    async fn out(&self, text: String) {
        if self.quiet {
            return;
        }
        let prefix = self.prefix();
        let text = if prefix.is_empty() {
            text
        } else {
            text.lines()
                .map(|l| format!("{prefix}{l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        self.shared.printer.print(Stream::Out, text).await;
    }

    async fn out_bytes(&self, bytes: Vec<u8>) {
        if !self.quiet {
            self.shared.printer.print(Stream::Out, bytes).await;
        }
    }

    async fn note(&self, text: &str) {
        if !self.quiet {
            let prefix = self.prefix();
            self.shared.note(&format!("{prefix}{text}")).await;
        }
    }

    /// What was sent, for `:raw on` (the shown form: passwords as `***`).
    async fn sent(&self, shown: &[u8]) {
        if self.raw() {
            self.out(output::escape_wire("C: ", shown).trim_end().to_string())
                .await;
        }
    }

    /// A complete response (the part not shown yet, when a literal was streamed).
    async fn response(&mut self, response: &Response) {
        let from = self.shown_upto.min(response.raw.bytes.len());
        self.shown_upto = 0;
        let masked = self.masked(&response.raw.bytes[from..]);
        let echoed = matches!(masked, Cow::Owned(_));
        let rest = masked.into_owned();
        if self.raw() {
            self.out(output::escape_wire("S: ", &rest).trim_end().to_string())
                .await;
            return;
        }
        if self.shared.interactive {
            let text = if from == 0 && !echoed {
                output::response_text(response, self.shared.color)
            } else {
                // A streamed literal's tail, or a line that echoes a password: shown plain, masked.
                output::sanitize(&String::from_utf8_lossy(&rest))
                    .trim_end()
                    .replace("\r\n", "\n")
            };
            self.out(text).await;
        } else {
            self.out_bytes(plain_lines(&rest)).await;
        }
        for line in output::referral_lines(response) {
            let line = self.masked_text(line);
            self.note_painted(&line, Paint::Cyan).await;
        }
        if let Some(hint) = output::known_text_hint(response) {
            let hint = self.masked_text(hint);
            self.note_painted(&hint, Paint::Cyan).await;
        }
    }

    async fn note_painted(&self, text: &str, paint: Paint) {
        if self.quiet {
            return;
        }
        let prefix = self.prefix();
        let text = output::paint(&format!("{prefix}{text}"), paint, self.shared.color);
        self.shared.printer.print(Stream::Err, text).await;
    }

    async fn literal_start(&mut self, head: &[u8], len: u64) {
        let from = self.shown_upto.min(head.len());
        let part = self.masked(&head[from..]).into_owned();
        let part = &part[..];
        self.shown_upto = head.len();
        if self.raw() {
            self.out(output::escape_wire("S: ", part).trim_end().to_string())
                .await;
        } else if self.shared.interactive {
            self.out(
                output::sanitize(&String::from_utf8_lossy(part))
                    .trim_end()
                    .replace("\r\n", "\n"),
            )
            .await;
        } else {
            self.out_bytes(plain_lines(part)).await;
        }
        self.literal = Some(LiteralShow {
            total: len,
            remaining: len,
            binary: None,
            ends_with_newline: true,
        });
    }

    async fn literal_data(&mut self, data: Vec<u8>) {
        let raw = self.raw();
        let interactive = self.shared.interactive;
        let Some(lit) = self.literal.as_mut() else {
            return;
        };
        lit.remaining = lit.remaining.saturating_sub(data.len() as u64);
        let binary = *lit.binary.get_or_insert_with(|| output::is_binary(&data));
        let done = lit.remaining == 0;
        let total = lit.total;
        if !data.is_empty() {
            lit.ends_with_newline = data.ends_with(b"\n");
        }
        let ends_with_newline = lit.ends_with_newline;
        if done {
            self.literal = None;
        }
        if self.quiet {
            return;
        }
        // A password split between two pieces of a streamed literal is not seen whole here (each piece is at least
        // the socket's read size, so this takes a server that streams it byte by byte).
        let data = self.masked(&data).into_owned();
        if raw {
            let text = output::escape_wire("S: ", &data);
            self.shared.printer.print_raw(text.into_bytes()).await;
        } else if !binary {
            let bytes = if interactive {
                output::sanitize_keep_lines(&String::from_utf8_lossy(&data)).into_bytes()
            } else {
                strip_cr(&data)
            };
            self.shared.printer.print_raw(bytes).await;
            if done && !ends_with_newline {
                self.shared.printer.print_raw(b"\n".to_vec()).await;
            }
        } else if done {
            let summary = format!("({} of binary data, not shown)", output::size_words(total));
            self.note(&summary).await;
        }
    }
}

/// Server bytes for a script: exactly as sent, each CRLF as LF.
fn plain_lines(bytes: &[u8]) -> Vec<u8> {
    let mut out = strip_cr(bytes);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn strip_cr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// How a wait for the server ended.
enum Waited {
    Continuation,
    Completed(Response),
    TimedOut,
    Lost(String),
}

struct Task {
    session: Session,
    rx: mpsc::Receiver<Request>,
    reset: Arc<Notify>,
    state: Arc<Mutex<ConnState>>,
    printing: Printing,
    /// A command whose next line is literal data or more arguments.
    open: Option<OpenCommand>,
    /// A command the server asked to go on with `+`: its tag, and whether the next line is secret.
    answering: Option<(String, bool)>,
    /// The credentials of the LOGIN or AUTHENTICATE in flight, stored once it is accepted or referred.
    pending_login: Option<(String, (String, Secret))>,
    /// LOGOUT was sent: the server closing the connection is expected.
    logging_out: bool,
}

impl Task {
    fn update(&self, f: impl FnOnce(&mut ConnState)) {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn set_continuation(&self) {
        let c = match (&self.open, &self.answering) {
            (Some(open), _) => Some(Continuation::Literal {
                secret: open.is_secret(),
                remaining: open.literal_remaining,
            }),
            (None, Some((_, secret))) => Some(Continuation::Server { secret: *secret }),
            (None, None) => None,
        };
        self.update(|s| s.continuation = c);
    }

    async fn serve(mut self) {
        loop {
            let alive = self.session.is_connected();
            self.session.set_timeout(IDLE_READ);
            tokio::select! {
                request = self.rx.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => break,
                },
                event = self.session.next_event(), if alive => match event {
                    Ok(event) => {
                        self.show(event).await;
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => self.lost(&e).await,
                },
                () = self.reset.notified() => self.do_reset().await,
            }
        }
        // The shell is leaving: close without a word.
        self.session.close().await;
        self.finish();
    }

    fn finish(&self) {
        let transcript = self.session.transcript().to_text();
        self.update(|s| {
            s.alive = false;
            s.final_transcript = Some(transcript);
            s.continuation = None;
            s.pending.clear();
        });
    }

    async fn lost(&mut self, e: &SessionError) {
        if !self.logging_out {
            self.printing
                .note_painted(&format!("connection lost: {e}"), Paint::Red)
                .await;
        }
        self.session.close().await;
        self.open = None;
        self.answering = None;
        self.finish();
    }

    async fn do_reset(&mut self) {
        if self.session.is_connected() {
            self.session.note("connection reset by the user");
            self.session.close().await;
            self.printing
                .note_painted(
                    &format!("connection to {} reset", self.printing.label),
                    Paint::Red,
                )
                .await;
        }
        self.open = None;
        self.answering = None;
        self.finish();
        self.update(|s| s.pending.clear());
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Line { line, reply } => {
                let r = self.line(&line).await;
                let _ = reply.send(r);
            }
            Request::Login {
                user,
                password,
                plain,
                reply,
            } => {
                let r = self.login(user, password, plain).await;
                let _ = reply.send(r);
            }
            Request::StartTls { host, tls, reply } => {
                let r = self.starttls(&host, &tls).await;
                let _ = reply.send(r);
            }
            Request::Logout { quiet, reply } => {
                self.logout(quiet).await;
                let _ = reply.send(());
            }
            Request::Transcript { reply } => {
                let text = self.session.transcript().to_text();
                let _ = reply.send(text);
            }
        }
    }

    async fn line(&mut self, line: &[u8]) -> Reply {
        if !self.session.is_connected() {
            return Reply::Lost {
                message: "not connected (:connect opens a connection)".into(),
                shown: false,
            };
        }
        let literal_plus = self.session.client().literal_mode();
        let continuing = self.open.is_some() || self.answering.is_some();
        let planned = if let Some(open) = self.open.take() {
            match plan_continuation(line, &open, literal_plus) {
                Ok(p) => p,
                Err(e) => {
                    self.open = Some(open);
                    return Reply::NotSent {
                        message: e.to_string(),
                    };
                }
            }
        } else if let Some((tag, secret)) = self.answering.take() {
            match plan_response_line(line, &tag, secret) {
                Ok(p) => p,
                Err(e) => {
                    self.answering = Some((tag, secret));
                    return Reply::NotSent {
                        message: e.to_string(),
                    };
                }
            }
        } else {
            let session = &mut self.session;
            match plan_line(line, literal_plus, || session.next_tag()) {
                Ok(Some(p)) => p,
                Ok(None) => return Reply::Nothing,
                Err(e) => {
                    return Reply::NotSent {
                        message: e.to_string(),
                    }
                }
            }
        };
        self.run(planned, continuing).await
    }

    async fn login(&mut self, user: String, password: Secret, plain: bool) -> Reply {
        if !self.session.is_connected() {
            return Reply::Lost {
                message: "not connected".into(),
                shown: false,
            };
        }
        let (tag, encoded) = match self
            .session
            .client_mut()
            .encode_login(&user, &password, plain)
        {
            Ok(e) => e,
            Err(e) => {
                return Reply::NotSent {
                    message: e.to_string(),
                }
            }
        };
        self.printing
            .note(String::from_utf8_lossy(&encoded.shown()).trim_end())
            .await;
        let planned = Planned {
            tag,
            name: if plain { "AUTHENTICATE" } else { "LOGIN" }.into(),
            encoded,
            open: None,
            login: Some((user, password)),
            generated_tag: true,
        };
        self.run(planned, false).await
    }

    /// Hands the planned pieces to the engine (which holds each piece back until the server's `+` where a literal or
    /// SASL step needs it), then waits for the completion, or for a `+` that the user must answer.
    async fn run(&mut self, planned: Planned, continuing: bool) -> Reply {
        let timeout = self.printing.shared.timeout;
        self.session.set_timeout(timeout);
        let deadline = Instant::now() + timeout;
        let tag = planned.tag.clone();
        if planned.name == "LOGOUT" {
            // The server closes the connection after its answer; that is no loss.
            self.logging_out = true;
        }
        if let Some(login) = planned.login.clone() {
            self.printing.mask_password(&login.0, &login.1);
            self.pending_login = Some((tag.clone(), login));
        }
        self.update(|s| {
            if !s.pending.contains(&tag) {
                s.pending.push(tag.clone());
            }
        });
        let ends_waiting = planned
            .encoded
            .pieces
            .last()
            .is_some_and(|p| p.then_wait_continuation);
        for piece in &planned.encoded.pieces {
            self.printing.sent(&piece.shown).await;
        }
        let sent = if continuing && self.session.client().is_in_flight(&tag) {
            self.session.continue_command(&tag, planned.encoded).await
        } else {
            self.session
                .send_encoded(&tag, planned.encoded)
                .await
                .map(|_| ())
        };
        if let Err(e) = sent {
            if let SessionError::Command(_) | SessionError::Protocol(_) = e {
                return Reply::NotSent {
                    message: e.to_string(),
                };
            }
            let message = e.to_string();
            self.lost(&e).await;
            return Reply::Lost {
                message,
                shown: true,
            };
        }
        if ends_waiting {
            // The typed line ended in a synchronizing literal: the rest is typed once the server says `+`.
            match self.wait(&tag, deadline, true).await {
                Waited::Continuation => {}
                other => return self.ended(other, &tag).await,
            }
        }
        if let Some(open) = planned.open {
            self.open = Some(open);
            self.set_continuation();
            return Reply::More;
        }
        self.set_continuation();
        match self.wait(&tag, deadline, false).await {
            Waited::Completed(completion) if planned.name == "LOGOUT" => {
                // After LOGOUT the server closes the connection; close our side at once.
                self.session.close().await;
                self.finish();
                Reply::Done { completion }
            }
            Waited::Continuation => {
                let secret = planned.name == "AUTHENTICATE"
                    || self.pending_login.as_ref().is_some_and(|(t, _)| *t == tag);
                self.answering = Some((tag, secret));
                self.set_continuation();
                Reply::More
            }
            other => self.ended(other, &tag).await,
        }
    }

    async fn ended(&mut self, waited: Waited, tag: &str) -> Reply {
        self.open = None;
        self.answering = None;
        self.set_continuation();
        match waited {
            Waited::Completed(completion) => Reply::Done { completion },
            Waited::TimedOut => Reply::TimedOut {
                tag: tag.to_string(),
            },
            Waited::Lost(message) => Reply::Lost {
                message,
                shown: true,
            },
            Waited::Continuation => Reply::More,
        }
    }

    /// Shows engine events until `tag` completes, the server asks `tag` to go on (`+` that the user answers; with
    /// `any_continuation`, any `+` for `tag`), the deadline passes, or the connection is reset or lost.
    async fn wait(&mut self, tag: &str, deadline: Instant, any_continuation: bool) -> Waited {
        loop {
            let event = tokio::select! {
                e = tokio::time::timeout_at(deadline, self.session.next_event()) => e,
                () = self.reset.notified() => {
                    self.do_reset().await;
                    return Waited::Lost("reset by you".into());
                }
            };
            let event = match event {
                Err(_) => return Waited::TimedOut,
                Ok(Err(e)) if e.is_timeout() => return Waited::TimedOut,
                Ok(Err(e)) => {
                    let message = e.to_string();
                    self.lost(&e).await;
                    return Waited::Lost(message);
                }
                Ok(Ok(event)) => event,
            };
            let verdict = match &event {
                Event::Completed(c) if c.tag == tag => Some(Waited::Completed(c.response.clone())),
                Event::Continuation {
                    command, answered, ..
                } if command.as_deref() == Some(tag) && (any_continuation || !answered) => {
                    Some(Waited::Continuation)
                }
                _ => None,
            };
            self.show(event).await;
            if let Some(v) = verdict {
                return v;
            }
        }
    }

    /// Shows an event and learns from it: the one place the shell renders what the engine hands out.
    async fn show(&mut self, event: Event) {
        match event {
            Event::Greeting(response)
            | Event::Untagged { response, .. }
            | Event::Continuation { response, .. }
            | Event::StrayTagged(response) => {
                self.printing.response(&response).await;
                self.learn(&response);
            }
            Event::Completed(c) => {
                self.printing.response(&c.response).await;
                self.learn(&c.response);
            }
            Event::LiteralStart { head, len, .. } => self.printing.literal_start(&head, len).await,
            Event::LiteralData { data, .. } => self.printing.literal_data(data).await,
        }
    }

    fn learn(&mut self, response: &Response) {
        if let Kind::List {
            mailbox,
            mailbox_wire,
            ..
        } = &response.kind
        {
            if let Ok(mut m) = self.printing.shared.mailboxes.lock() {
                if m.len() < 10_000 {
                    m.insert(mailbox_wire.clone(), mailbox.clone());
                }
            }
        }
        let caps = self.session.capabilities().map(<[String]>::to_vec);
        let tls = self.session.is_tls();
        let is_status = response.status().is_some();
        let referral = response.code().and_then(|c| c.referral_urls()).is_some();
        let completed_login = match (&self.pending_login, response.tag()) {
            (Some((t, _)), Some(tag)) if t == tag => {
                let accepted = classify::login(response).credentials_accepted();
                let creds = self.pending_login.take().map(|(_, c)| c);
                if accepted {
                    creds
                } else {
                    None
                }
            }
            _ => None,
        };
        let tag = response.tag().map(str::to_string);
        self.update(|s| {
            if let Some(caps) = caps {
                s.capabilities = caps;
            }
            s.tls = tls;
            if is_status {
                s.last_status = Some(response.clone());
            }
            if referral {
                s.last_referral = Some(response.clone());
            }
            if let Some(creds) = completed_login {
                s.login = Some(creds);
            }
            if let Some(tag) = tag {
                s.pending.retain(|t| *t != tag);
            }
        });
    }

    async fn starttls(&mut self, host: &str, tls: &TlsOptions) -> Result<CertificateInfo, String> {
        if !self.session.is_connected() {
            return Err("not connected".into());
        }
        if self.session.is_tls() {
            return Err("the connection is already encrypted".into());
        }
        self.session.set_timeout(self.printing.shared.timeout);
        match self.session.starttls(host, tls).await {
            Ok((outcome, cert)) => {
                for r in outcome.untagged.iter() {
                    self.printing.response(r).await;
                }
                self.printing.response(&outcome.completion).await;
                self.printing.note(&certificate_note(&cert)).await;
                let tag = self.session.next_tag();
                match self.session.run(&Command::new(tag, "CAPABILITY")).await {
                    Ok(_) => {
                        let caps = self
                            .session
                            .capabilities()
                            .map(<[String]>::to_vec)
                            .unwrap_or_default();
                        self.printing.note(&output::capability_summary(&caps)).await;
                        self.update(|s| {
                            s.capabilities = caps;
                            s.tls = true;
                        });
                    }
                    Err(e) => {
                        let message = e.to_string();
                        self.lost(&e).await;
                        return Err(message);
                    }
                }
                Ok(cert)
            }
            Err(SessionError::StartTlsRefused(line)) => {
                Err(format!("the server refused STARTTLS: {line}"))
            }
            Err(e) => {
                let message = e.to_string();
                self.lost(&e).await;
                Err(message)
            }
        }
    }

    async fn logout(&mut self, quiet: bool) {
        if !self.session.is_connected() {
            self.finish();
            return;
        }
        self.printing.quiet = quiet;
        self.logging_out = true;
        self.session.set_timeout(LOGOUT_WAIT);
        let tag = self.session.next_tag();
        let deadline = Instant::now() + LOGOUT_WAIT;
        let command = Command::new(tag.clone(), "LOGOUT");
        if let Ok(encoded) = command.encode(false) {
            self.printing.sent(&encoded.shown()).await;
            if self.session.send_encoded(&tag, encoded).await.is_ok() {
                if let Waited::TimedOut = self.wait(&tag, deadline, false).await {
                    self.printing
                        .note("LOGOUT not answered in time; closing")
                        .await;
                }
            }
        }
        self.session.close().await;
        self.finish();
    }
}
