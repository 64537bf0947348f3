//! The one async driver: runs the sans-IO client machine ([`crate::client::Client`]) over a [`Transport`]. It is the
//! only client code that awaits. It writes what the machine gives, reads what the server sends into the machine, and
//! bounds every wait by the smaller of the per-wait timeout ([`SessionOptions::timeout`]) and the time left before
//! the run's deadline ([`Session::set_deadline`]). The probe and the shell both stand on it.
//!
//! - [`open`]: connect, TLS, greeting, capabilities and STARTTLS, the way the probe and the shell both open.
//!
//! The transcript, the capabilities, round trips and every limit on what a server can make us hold live in the machine.

pub mod open;

/// The redacted transcript, kept by the client machine.
pub use crate::client::transcript;

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::client::{Client, ClientError, ClientLimits, Completion, Event, Gathered, Tag};
use crate::proto::code::Code;
use crate::proto::command::{Command, CommandError, Encoded};
use crate::proto::framing::FrameError;
use crate::proto::response::{Response, Status};
use crate::secret::Secret;
use crate::transport::{
    CertificateInfo, ConnectInfo, Endpoint, TlsOptions, Transport, TransportError,
};
use transcript::Transcript;

/// How a session behaves. The defaults suit a diagnostic client.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// The bound on every single connect, read, write and handshake. Default 10 s: slow servers answer within a second
    /// or two; ten covers a loaded one without leaving a script hanging.
    pub timeout: Duration,
    /// What a server can make the client hold (line length, literal sizes, responses kept per command, ...).
    pub limits: ClientLimits,
    /// How long LOGOUT waits for its answer before the connection is simply closed. Default 2 s: the answer is a
    /// courtesy, not information.
    pub logout_wait: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            timeout: Duration::from_secs(10),
            limits: ClientLimits::default(),
            logout_wait: Duration::from_secs(2),
        }
    }
}

/// Why a session failed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The network or TLS failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server's bytes cannot be framed (an endless line, a huge literal).
    #[error("the server's data cannot be read as IMAP: {0}")]
    Frame(#[from] FrameError),
    /// The server broke the protocol in a way the client machine refuses (a flood of continuation requests).
    #[error("the server broke the protocol: {0}")]
    Protocol(ClientError),
    /// The command cannot be encoded (CR, LF or NUL in an argument, a bad tag).
    #[error("cannot send the command: {0}")]
    Command(#[from] CommandError),
    /// The server closed the connection while a response was awaited.
    #[error("the server closed the connection{}", .bye.as_ref().map(|b| format!(" ({b})")).unwrap_or_default())]
    ClosedByServer {
        /// The text of the BYE it sent first, if any.
        bye: Option<String>,
    },
    /// The server answered STARTTLS with something other than OK.
    #[error("the server refused STARTTLS: {0}")]
    StartTlsRefused(String),
    /// The server sent bytes after its STARTTLS OK and before the handshake.
    #[error(
        "the server sent {0} bytes of plaintext after its STARTTLS OK, before the TLS handshake; they could be injected \
         by an attacker (the CVE-2011-0411 class of bug), so imapref stops here"
    )]
    PlaintextInjection(usize),
    /// No completion came for `sent`, but the server sent a completion with a tag that was never sent.
    #[error(
        "no answer to {sent} within {}; the server answered with the tag `{got}`, which imapref never sent",
        crate::transport::human_duration(*.after)
    )]
    WrongTag {
        /// The tag waited for.
        sent: String,
        /// The tag the server used.
        got: String,
        /// How long the wait was.
        after: Duration,
    },
    /// The run's deadline passed.
    #[error("the deadline for the whole run ({}, --max-time) passed", crate::transport::human_duration(*.limit))]
    Deadline {
        /// The deadline's length, from the run's start.
        limit: Duration,
    },
    /// The session was used after its connection was closed.
    #[error("the connection is closed")]
    NotConnected,
}

impl From<ClientError> for SessionError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Frame(f) => SessionError::Frame(f),
            ClientError::Command(c) => SessionError::Command(c),
            other => SessionError::Protocol(other),
        }
    }
}

impl SessionError {
    /// True when a single wait timed out (not the run's deadline).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SessionError::Transport(e) if e.is_timeout())
            || matches!(self, SessionError::WrongTag { .. })
    }

    /// True when the run's deadline passed.
    pub fn is_deadline(&self) -> bool {
        matches!(self, SessionError::Deadline { .. })
    }

    /// True for TLS failures, including STARTTLS problems.
    pub fn is_tls(&self) -> bool {
        match self {
            SessionError::Transport(e) => e.is_tls(),
            SessionError::StartTlsRefused(_) | SessionError::PlaintextInjection(_) => true,
            _ => false,
        }
    }
}

/// The deadline of a whole run: when it passes, and how long it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When it passes.
    pub at: Instant,
    /// Its length from the run's start (for messages).
    pub limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Self {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    /// The bound on one wait: the smaller of `timeout` and the time left; `Err` once the deadline has passed.
    pub fn bound(deadline: Option<Deadline>, timeout: Duration) -> Result<Duration, SessionError> {
        let Some(d) = deadline else {
            return Ok(timeout);
        };
        let left = d.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SessionError::Deadline { limit: d.limit });
        }
        Ok(timeout.min(left))
    }
}

/// A command's completion with its time, as the driver hands it out.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The tag used.
    pub tag: String,
    /// Untagged responses and continuations received while the command ran (bounded: head and tail).
    pub untagged: Gathered,
    /// The tagged completion.
    pub completion: Response,
    /// Milliseconds from writing the command to its completion.
    pub ms: f64,
}

impl Outcome {
    fn from_completion(c: Completion, ms: f64) -> Self {
        Outcome {
            tag: c.tag,
            untagged: c.untagged,
            completion: c.response,
            ms,
        }
    }

    /// The completion's status.
    pub fn status(&self) -> Status {
        self.completion.status().unwrap_or(Status::Bad)
    }

    /// True when the command succeeded.
    pub fn is_ok(&self) -> bool {
        self.status() == Status::Ok
    }

    /// The completion's code.
    pub fn code(&self) -> Option<&Code> {
        self.completion.code()
    }

    /// The completion's text.
    pub fn text(&self) -> &str {
        self.completion.text().unwrap_or_default()
    }
}

/// A client connection: the machine and its transport.
pub struct Session {
    transport: Option<Transport>,
    client: Client,
    started: Instant,
    buf: Vec<u8>,
    options: SessionOptions,
    deadline: Option<Deadline>,
    /// Completions that arrived while another command was awaited, with their times.
    completed: Vec<(Completion, f64)>,
    /// When each command in flight was written.
    written: Vec<(Tag, Instant)>,
    /// The last tagged response whose tag was not in flight.
    stray: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connected", &self.transport.is_some())
            .field("tls", &self.is_tls())
            .field("round_trips", &self.client.round_trips())
            .field("capabilities", &self.client.capabilities())
            .finish_non_exhaustive()
    }
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

impl Session {
    /// Connects to `endpoint` (plain TCP; call [`Session::start_tls`] for implicit TLS), within `deadline`.
    pub async fn connect(
        endpoint: &Endpoint,
        options: SessionOptions,
        deadline: Option<Deadline>,
    ) -> Result<(Session, ConnectInfo), SessionError> {
        let bound = Deadline::bound(deadline, options.timeout)?;
        let connected = Transport::connect(endpoint, bound).await;
        let (transport, info) = match connected {
            Err(e) if e.is_timeout() && bound < options.timeout => {
                return Err(Deadline::bound(deadline, options.timeout)
                    .err()
                    .unwrap_or(SessionError::Transport(e)))
            }
            other => other?,
        };
        let mut session = Session::new(transport, options);
        session.deadline = deadline;
        session.note(format!(
            "connected to {} ({})",
            info.endpoint, info.connected_to
        ));
        Ok((session, info))
    }

    /// Wraps a connected transport.
    pub fn new(transport: Transport, options: SessionOptions) -> Session {
        Session {
            transport: Some(transport),
            client: Client::new(options.limits),
            started: Instant::now(),
            buf: vec![0; READ_CHUNK],
            options,
            deadline: None,
            completed: Vec::new(),
            written: Vec::new(),
            stray: None,
        }
    }

    /// Sets (or clears) the deadline of the whole run; every later wait ends by then.
    pub fn set_deadline(&mut self, deadline: Option<Deadline>) {
        self.deadline = deadline;
    }

    /// The client machine (capabilities, commands in flight, the literal rules).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client machine, to build commands under its rules (tags, literal mode, SASL-IR).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Milliseconds since the session started.
    pub fn elapsed_ms(&self) -> f64 {
        millis_since(self.started)
    }

    /// The redacted transcript so far.
    pub fn transcript(&self) -> &Transcript {
        self.client.transcript()
    }

    /// Adds a note to the transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        self.client.set_clock(self.elapsed_ms());
        self.client.note(text);
    }

    /// Writes that waited for the server (each is one round trip).
    pub fn round_trips(&self) -> u32 {
        self.client.round_trips()
    }

    /// The capabilities last learned (from a greeting code, a CAPABILITY response, or a completion's code).
    pub fn capabilities(&self) -> Option<&[String]> {
        self.client.capabilities()
    }

    /// True when the last known capabilities include `name` (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.client.has_capability(name)
    }

    /// Forgets the capabilities (after login they may change).
    pub fn forget_capabilities(&mut self) {
        self.client.forget_capabilities();
    }

    /// True while the connection is open and TLS-protected.
    pub fn is_tls(&self) -> bool {
        self.transport.as_ref().is_some_and(Transport::is_tls)
    }

    /// True while the connection is open.
    pub fn is_connected(&self) -> bool {
        self.transport.is_some()
    }

    /// Changes the bound on every single wait (the shell sets a long one while idle).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
    }

    /// A fresh tag.
    pub fn next_tag(&mut self) -> String {
        self.client.next_tag()
    }

    /// The bound on the next wait, and whether the deadline (not the timeout) is what binds it.
    fn bound(&self) -> Result<(Duration, bool), SessionError> {
        let bound = Deadline::bound(self.deadline, self.options.timeout)?;
        Ok((bound, bound < self.options.timeout))
    }

    /// A timeout that the deadline caused becomes [`SessionError::Deadline`].
    fn deadline_error(&self, e: TransportError, by_deadline: bool) -> SessionError {
        match self.deadline {
            Some(d) if by_deadline && e.is_timeout() => SessionError::Deadline { limit: d.limit },
            _ => SessionError::Transport(e),
        }
    }

    /// Upgrades to TLS right away (implicit TLS before the greeting, or after a STARTTLS OK).
    pub async fn start_tls(
        &mut self,
        host: &str,
        tls: &TlsOptions,
    ) -> Result<CertificateInfo, SessionError> {
        let (bound, by_deadline) = self.bound()?;
        let mut transport = self.transport.take().ok_or(SessionError::NotConnected)?;
        transport.set_timeout(bound);
        match transport.upgrade_tls(host, tls).await {
            Ok((transport, cert)) => {
                self.transport = Some(transport);
                Ok(cert)
            }
            Err(e) => Err(self.deadline_error(e, by_deadline)),
        }
    }

    /// Writes whatever the machine has to send.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.client.has_output() {
            return Ok(());
        }
        let (bound, by_deadline) = self.bound()?;
        let out = self.client.take_output();
        let transport = self.transport.as_mut().ok_or(SessionError::NotConnected)?;
        transport.set_timeout(bound);
        if let Err(e) = transport.write_all(&out).await {
            return Err(self.deadline_error(e, by_deadline));
        }
        Ok(())
    }

    /// The next event from the machine, writing what it has to send first and reading as needed; each read waits at
    /// most the timeout and never past the deadline.
    pub async fn next_event(&mut self) -> Result<Event, SessionError> {
        loop {
            self.flush().await?;
            self.client.set_clock(self.elapsed_ms());
            if let Some(event) = self.client.next_event()? {
                return Ok(event);
            }
            let (bound, by_deadline) = self.bound()?;
            let transport = self.transport.as_mut().ok_or(SessionError::NotConnected)?;
            transport.set_timeout(bound);
            match transport.read_some(&mut self.buf).await {
                Ok(0) | Err(TransportError::Closed) => {
                    self.transport = None;
                    self.note("the server closed the connection");
                    return Err(SessionError::ClosedByServer {
                        bye: self.client.last_bye().map(str::to_string),
                    });
                }
                Ok(n) => self.client.feed(&self.buf[..n]),
                Err(e) => return Err(self.deadline_error(e, by_deadline)),
            }
        }
    }

    /// Reads the greeting.
    pub async fn read_greeting(&mut self) -> Result<Response, SessionError> {
        loop {
            if let Event::Greeting(g) = self.next_event().await? {
                return Ok(g);
            }
        }
    }

    /// Queues a command under the server's literal rules and writes what can go now. Returns its tag.
    pub async fn send(&mut self, command: &Command) -> Result<Tag, SessionError> {
        let tag = self.client.send(command)?;
        self.written.push((tag.clone(), Instant::now()));
        self.flush().await?;
        Ok(tag)
    }

    /// Queues an encoded command (AUTHENTICATE, a planned shell line) and writes what can go now.
    pub async fn send_encoded(&mut self, tag: &str, encoded: Encoded) -> Result<Tag, SessionError> {
        let tag = self.client.send_encoded(tag, encoded)?;
        self.written.push((tag.clone(), Instant::now()));
        self.flush().await?;
        Ok(tag)
    }

    /// Queues a command without writing it yet (pipelining: [`Session::flush`] writes everything queued at once).
    pub fn queue(&mut self, command: &Command) -> Result<Tag, SessionError> {
        let tag = self.client.send(command)?;
        self.written.push((tag.clone(), Instant::now()));
        Ok(tag)
    }

    /// Queues an encoded command without writing it yet.
    pub fn queue_encoded(&mut self, tag: &str, encoded: Encoded) -> Result<Tag, SessionError> {
        let tag = self.client.send_encoded(tag, encoded)?;
        self.written.push((tag.clone(), Instant::now()));
        Ok(tag)
    }

    /// `tag`'s completion if it can be had from what was already read, without waiting for the server.
    pub fn take_completion(&mut self, tag: &str) -> Option<Outcome> {
        if let Some(outcome) = self.stashed(tag) {
            return Some(outcome);
        }
        self.client.set_clock(self.elapsed_ms());
        while let Ok(Some(event)) = self.client.next_event() {
            if let Event::Completed(c) = event {
                if let Some(outcome) = self.completed(c, tag) {
                    return Some(outcome);
                }
            }
        }
        None
    }

    /// Adds pieces to a command in flight and writes what can go now.
    pub async fn continue_command(
        &mut self,
        tag: &str,
        encoded: Encoded,
    ) -> Result<(), SessionError> {
        self.client.continue_command(tag, encoded)?;
        self.flush().await
    }

    /// Forgets a command whose completion will not be awaited.
    pub fn abandon(&mut self, tag: &str) {
        self.client.abandon(tag);
        self.written.retain(|(t, _)| t != tag);
    }

    /// The milliseconds since `tag` was written, forgetting it.
    fn took(&mut self, tag: &str) -> f64 {
        match self.written.iter().position(|(t, _)| t == tag) {
            Some(i) => millis_since(self.written.remove(i).1),
            None => 0.0,
        }
    }

    /// Notes a completion that arrived: `Some` when it is `tag`'s, else kept for whoever waits for it.
    pub fn completed(&mut self, completion: Completion, tag: &str) -> Option<Outcome> {
        let ms = self.took(&completion.tag);
        if completion.tag == tag {
            return Some(Outcome::from_completion(completion, ms));
        }
        self.completed.push((completion, ms));
        None
    }

    /// `tag`'s completion if it arrived while another command was awaited.
    fn stashed(&mut self, tag: &str) -> Option<Outcome> {
        let i = self.completed.iter().position(|(c, _)| c.tag == tag)?;
        let (c, ms) = self.completed.remove(i);
        Some(Outcome::from_completion(c, ms))
    }

    /// Notes a tagged response whose tag was never sent (the wait's error names it).
    pub fn stray(&mut self, response: &Response) {
        self.stray = response.tag().map(str::to_string);
    }

    /// Waits for `tag`'s completion: the one place a command's end is awaited. Untagged data and other commands'
    /// completions that arrive meanwhile are gathered or kept.
    pub async fn wait_for(&mut self, tag: &str) -> Result<Outcome, SessionError> {
        if let Some(outcome) = self.stashed(tag) {
            return Ok(outcome);
        }
        loop {
            let event = match self.next_event().await {
                Ok(e) => e,
                Err(SessionError::Transport(e)) if e.is_timeout() && self.stray.is_some() => {
                    return Err(SessionError::WrongTag {
                        sent: tag.to_string(),
                        got: self.stray.take().unwrap_or_default(),
                        after: self.options.timeout,
                    })
                }
                Err(e) => return Err(e),
            };
            match event {
                Event::Completed(c) => {
                    if let Some(outcome) = self.completed(c, tag) {
                        return Ok(outcome);
                    }
                }
                Event::StrayTagged(r) => self.stray(&r),
                _ => {}
            }
        }
    }

    /// Runs one command: sends it (the machine waits for `+` where a literal or SASL step needs it), and returns at
    /// its tagged completion.
    pub async fn run(&mut self, command: &Command) -> Result<Outcome, SessionError> {
        let tag = self.send(command).await?;
        self.wait_for(&tag).await
    }

    /// Runs an encoded command to its completion.
    pub async fn run_encoded(
        &mut self,
        tag: &str,
        encoded: &Encoded,
    ) -> Result<Outcome, SessionError> {
        let tag = self.send_encoded(tag, encoded.clone()).await?;
        self.wait_for(&tag).await
    }

    /// LOGIN, or AUTHENTICATE PLAIN (SASL-IR when advertised), to its completion.
    pub async fn login(
        &mut self,
        user: &str,
        password: &Secret,
        plain: bool,
    ) -> Result<Outcome, SessionError> {
        let (tag, encoded) = self.client.encode_login(user, password, plain)?;
        self.run_encoded(&tag, &encoded).await
    }

    /// True once bytes of the password were written to this connection (or handed to the socket to write).
    pub fn credential_written(&self) -> bool {
        self.client.secret_written()
    }

    /// Sends several commands in one write and gathers each one's outcome: one round trip for all when no
    /// synchronizing literal is needed (the machine holds later commands back behind one that waits for `+`).
    pub async fn run_pipelined(
        &mut self,
        commands: &[Command],
    ) -> Result<Vec<Outcome>, SessionError> {
        let mut tags = Vec::new();
        for command in commands {
            tags.push(self.client.send(command)?);
            self.written.push((command.tag.clone(), Instant::now()));
        }
        self.flush().await?;
        let mut outcomes = Vec::new();
        for tag in &tags {
            outcomes.push(self.wait_for(tag).await?);
        }
        Ok(outcomes)
    }

    /// STARTTLS: sends the command, checks that nothing was pipelined after the OK, and upgrades the connection.
    /// Capabilities are forgotten, as RFC 3501 requires.
    pub async fn starttls(
        &mut self,
        host: &str,
        tls: &TlsOptions,
    ) -> Result<(Outcome, CertificateInfo), SessionError> {
        let tag = self.next_tag();
        let outcome = self.run(&Command::new(tag, "STARTTLS")).await?;
        if !outcome.is_ok() {
            return Err(SessionError::StartTlsRefused(
                outcome.completion.first_line(),
            ));
        }
        let injected = self.client.buffered_input();
        if injected > 0 {
            return Err(SessionError::PlaintextInjection(injected));
        }
        let cert = self.start_tls(host, tls).await?;
        self.client.set_clock(self.elapsed_ms());
        self.client.restart_after_tls();
        Ok((outcome, cert))
    }

    /// LOGOUT, waiting at most [`SessionOptions::logout_wait`] for the answer (and never past the deadline), then
    /// closes the connection. Never fails: the connection is closed whatever the server does. Returns true when the
    /// server answered.
    pub async fn logout(&mut self) -> bool {
        if self.transport.is_none() {
            return false;
        }
        let wait = self.options.logout_wait.min(self.options.timeout);
        let tag = self.next_tag();
        let command = Command::new(tag, "LOGOUT");
        let answered = tokio::time::timeout(wait, self.run(&command))
            .await
            .is_ok_and(|r| r.is_ok());
        if !answered {
            self.note("LOGOUT not answered in time; closing");
        }
        self.close().await;
        answered
    }

    /// Ends the session and hands over its connection, with the server's bytes already read and not yet turned into
    /// events (in stream order), for a byte relay (the proxy, once the home server has logged the user in). `None`
    /// when the connection is closed.
    pub fn into_transport(mut self) -> Option<(Transport, Vec<u8>)> {
        let unread = self.client.take_unread();
        self.transport.take().map(|t| (t, unread))
    }

    /// Closes the connection without LOGOUT.
    pub async fn close(&mut self) {
        if let Some(transport) = self.transport.take() {
            transport.close().await;
        }
    }
}

/// Milliseconds since `since`, to the microsecond: the unit of every timing in reports.
pub fn millis_since(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}
