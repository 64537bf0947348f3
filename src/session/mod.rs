//! One client connection: send a command, gather its responses until the tagged completion, keep a redacted
//! transcript and count round trips. Used by the probe and the shell alike.
//!
//! The session puts the sans-IO core ([`crate::proto`]) on top of a [`Transport`]: it feeds what the transport reads
//! into the [`Framer`], parses what comes out, and encodes commands (literals and SASL steps wait for the server's `+`,
//! unless LITERAL+ allows otherwise). Every wait is bounded by the transport's timeout.
//!
//! - [`open`]: connect, TLS, greeting, capabilities and STARTTLS, the way the probe and the shell both open;
//! - [`transcript`]: the redacted `C:`/`S:` record of the connection.

pub mod open;
pub mod transcript;

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::proto::code::Code;
use crate::proto::command::{authenticate_plain, Command, CommandError, Encoded, TagGenerator};
use crate::proto::framing::{Frame, FrameError, Framer, FramerLimits};
use crate::proto::response::{Kind, Response, Status};
use crate::secret::Secret;
use crate::transport::{
    CertificateInfo, ConnectInfo, Endpoint, TlsOptions, Transport, TransportError,
};
use transcript::{Direction, Transcript};

/// How a session behaves. The defaults suit a diagnostic client.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// The bound on every connect, read, write and handshake. Default 10 s: slow servers answer within a second or two;
    /// ten covers a loaded one without leaving a script hanging.
    pub timeout: Duration,
    /// Framing limits (line length, literal sizes).
    pub limits: FramerLimits,
    /// How long LOGOUT waits for its answer before the connection is simply closed. Default 2 s: the answer is a
    /// courtesy, not information.
    pub logout_wait: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            timeout: Duration::from_secs(10),
            limits: FramerLimits::default(),
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
    /// The session was used after its connection was closed.
    #[error("the connection is closed")]
    NotConnected,
}

impl SessionError {
    /// True when a wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SessionError::Transport(e) if e.is_timeout())
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

/// What the session hands out while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete response.
    Response(Response),
    /// A literal too large to hold starts; `head` is the response so far.
    LiteralStart {
        /// The response up to and including the literal's announcement.
        head: Vec<u8>,
        /// The literal's size.
        len: u64,
    },
    /// A piece of that literal.
    LiteralData(Vec<u8>),
}

/// The responses to one command.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The tag used.
    pub tag: String,
    /// Untagged responses and continuations received while the command ran.
    pub untagged: Vec<Response>,
    /// The tagged completion.
    pub completion: Response,
    /// Milliseconds from sending to the completion.
    pub ms: f64,
}

impl Outcome {
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

/// A client connection.
pub struct Session {
    transport: Option<Transport>,
    framer: Framer,
    tags: TagGenerator,
    transcript: Transcript,
    started: Instant,
    round_trips: u32,
    capabilities: Option<Vec<String>>,
    buf: Vec<u8>,
    last_bye: Option<String>,
    options: SessionOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connected", &self.transport.is_some())
            .field("tls", &self.is_tls())
            .field("round_trips", &self.round_trips)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

impl Session {
    /// Connects to `endpoint` (plain TCP; call [`Session::start_tls`] for implicit TLS).
    pub async fn connect(
        endpoint: &Endpoint,
        options: SessionOptions,
    ) -> Result<(Session, ConnectInfo), SessionError> {
        let (transport, info) = Transport::connect(endpoint, options.timeout).await?;
        let mut session = Session::new(transport, options);
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
            framer: Framer::new(options.limits),
            tags: TagGenerator::default(),
            transcript: Transcript::default(),
            started: Instant::now(),
            round_trips: 0,
            capabilities: None,
            buf: vec![0; READ_CHUNK],
            last_bye: None,
            options,
        }
    }

    /// Milliseconds since the session started.
    pub fn elapsed_ms(&self) -> f64 {
        millis_since(self.started)
    }

    /// The redacted transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Adds a note to the transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        let at = self.elapsed_ms();
        self.transcript.note(at, text);
    }

    /// Commands that had to wait for the server (each wait is one round trip).
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// The capabilities last learned (from a greeting code, a CAPABILITY response, or a completion's code).
    pub fn capabilities(&self) -> Option<&[String]> {
        self.capabilities.as_deref()
    }

    /// True when the last known capabilities include `name` (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .as_ref()
            .is_some_and(|caps| caps.iter().any(|c| c.eq_ignore_ascii_case(name)))
    }

    /// Forgets the capabilities (after STARTTLS or login they may change).
    pub fn forget_capabilities(&mut self) {
        self.capabilities = None;
    }

    /// True while the connection is open and TLS-protected.
    pub fn is_tls(&self) -> bool {
        self.transport.as_ref().is_some_and(Transport::is_tls)
    }

    /// True while the connection is open.
    pub fn is_connected(&self) -> bool {
        self.transport.is_some()
    }

    /// Changes the bound on every wait (the shell sets a long one while idle).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
        if let Some(t) = self.transport.as_mut() {
            t.set_timeout(timeout);
        }
    }

    /// A fresh tag.
    pub fn next_tag(&mut self) -> String {
        self.tags.next_tag()
    }

    /// Upgrades to TLS right away (implicit TLS, before the greeting).
    pub async fn start_tls(
        &mut self,
        host: &str,
        tls: &TlsOptions,
    ) -> Result<CertificateInfo, SessionError> {
        let transport = self.transport.take().ok_or(SessionError::NotConnected)?;
        let (transport, cert) = transport.upgrade_tls(host, tls).await?;
        self.transport = Some(transport);
        self.note("TLS established");
        Ok(cert)
    }

    /// Reads the greeting.
    pub async fn read_greeting(&mut self) -> Result<Response, SessionError> {
        let raw = loop {
            match self.next_frame().await? {
                Frame::Response(raw) => break raw,
                _ => continue,
            }
        };
        let response = Response::parse_greeting(raw);
        self.learn(&response);
        Ok(response)
    }

    /// The next event from the server, waiting at most the timeout.
    pub async fn next_event(&mut self) -> Result<Event, SessionError> {
        match self.next_frame().await? {
            Frame::Response(raw) => {
                let response = Response::parse(raw);
                self.learn(&response);
                Ok(Event::Response(response))
            }
            Frame::LiteralAnnounced {
                len,
                streamed: true,
                ..
            } => Ok(Event::LiteralStart {
                head: self.framer.partial().to_vec(),
                len,
            }),
            Frame::LiteralAnnounced { .. } => Box::pin(self.next_event()).await,
            Frame::LiteralData(data) => Ok(Event::LiteralData(data)),
        }
    }

    /// The next complete response, skipping streamed literal data.
    pub async fn next_response(&mut self) -> Result<Response, SessionError> {
        loop {
            if let Event::Response(r) = self.next_event().await? {
                return Ok(r);
            }
        }
    }

    async fn next_frame(&mut self) -> Result<Frame, SessionError> {
        loop {
            if let Some(frame) = self.framer.next_frame()? {
                let at = self.elapsed_ms();
                match &frame {
                    Frame::Response(raw) => {
                        self.transcript.record(Direction::Server, at, &raw.bytes)
                    }
                    Frame::LiteralAnnounced {
                        len,
                        streamed: true,
                        ..
                    } => {
                        self.transcript
                            .record(Direction::Server, at, self.framer.partial());
                        self.transcript.note(
                            at,
                            format!("({len} bytes of literal data, streamed, not kept)"),
                        );
                    }
                    _ => {}
                }
                return Ok(frame);
            }
            let transport = self.transport.as_mut().ok_or(SessionError::NotConnected)?;
            let read = transport.read_some(&mut self.buf).await;
            match read {
                Ok(0) | Err(TransportError::Closed) => {
                    self.transport = None;
                    self.note("the server closed the connection");
                    return Err(SessionError::ClosedByServer {
                        bye: self.last_bye.clone(),
                    });
                }
                Ok(n) => self.framer.feed(&self.buf[..n]),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Remembers capabilities and BYE texts from a response.
    fn learn(&mut self, response: &Response) {
        match &response.kind {
            Kind::Capability { capabilities } => self.capabilities = Some(capabilities.clone()),
            Kind::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            }
            | Kind::Greeting {
                status: Status::Bye,
                text,
                ..
            } => {
                self.last_bye = Some(text.clone());
            }
            _ => {}
        }
        if let Some(Code::Capability(caps)) = response.code() {
            self.capabilities = Some(caps.clone());
        }
    }

    /// Writes bytes, recording `shown` (the redacted form) in the transcript.
    pub async fn send_raw(&mut self, wire: &[u8], shown: &[u8]) -> Result<(), SessionError> {
        let at = self.elapsed_ms();
        self.transcript.record(Direction::Client, at, shown);
        let transport = self.transport.as_mut().ok_or(SessionError::NotConnected)?;
        transport.write_all(wire).await?;
        Ok(())
    }

    /// Runs one command: sends it (waiting for `+` where a literal or SASL step needs it), gathers its responses, and
    /// returns at its tagged completion.
    pub async fn run(&mut self, command: &Command) -> Result<Outcome, SessionError> {
        let encoded = command.encode(self.has_capability("LITERAL+"))?;
        self.run_encoded(&command.tag, &encoded).await
    }

    /// AUTHENTICATE PLAIN, with SASL-IR when the server advertises it.
    pub async fn authenticate_plain(
        &mut self,
        user: &str,
        password: &Secret,
    ) -> Result<Outcome, SessionError> {
        let tag = self.next_tag();
        let encoded = authenticate_plain(&tag, "", user, password, self.has_capability("SASL-IR"))?;
        self.run_encoded(&tag, &encoded).await
    }

    /// Sends encoded pieces and gathers the responses up to `tag`'s completion.
    pub async fn run_encoded(
        &mut self,
        tag: &str,
        encoded: &Encoded,
    ) -> Result<Outcome, SessionError> {
        let sent = Instant::now();
        let mut untagged = Vec::new();
        // Each wait for the server is one round trip: one per continuation, one for the completion.
        for piece in &encoded.pieces {
            self.send_raw(&piece.wire, &piece.shown).await?;
            if piece.then_wait_continuation {
                self.round_trips += 1;
                loop {
                    let response = self.next_response().await?;
                    if response.is_continuation() {
                        untagged.push(response);
                        break;
                    }
                    if response.tag() == Some(tag) {
                        return Ok(finish(tag, untagged, response, sent));
                    }
                    untagged.push(response);
                }
            }
        }
        self.round_trips += 1;
        loop {
            let response = self.next_response().await?;
            if response.tag() == Some(tag) {
                return Ok(finish(tag, untagged, response, sent));
            }
            untagged.push(response);
        }
    }

    /// Sends several commands in one write and gathers each one's responses: one round trip for all. Commands that
    /// need a continuation (synchronizing literals) are run one after another instead.
    pub async fn run_pipelined(
        &mut self,
        commands: &[Command],
    ) -> Result<Vec<Outcome>, SessionError> {
        let literal_plus = self.has_capability("LITERAL+");
        let encoded: Vec<Encoded> = commands
            .iter()
            .map(|c| c.encode(literal_plus))
            .collect::<Result<_, _>>()?;
        if encoded
            .iter()
            .any(|e| e.pieces.iter().any(|p| p.then_wait_continuation))
        {
            let mut outcomes = Vec::new();
            for (command, enc) in commands.iter().zip(&encoded) {
                outcomes.push(self.run_encoded(&command.tag, enc).await?);
            }
            return Ok(outcomes);
        }
        let mut wire = Vec::new();
        let mut shown = Vec::new();
        for piece in encoded.iter().flat_map(|e| &e.pieces) {
            wire.extend_from_slice(&piece.wire);
            shown.extend_from_slice(&piece.shown);
        }
        let sent = Instant::now();
        self.send_raw(&wire, &shown).await?;
        self.round_trips += 1;
        let mut outcomes = Vec::new();
        let mut untagged = Vec::new();
        for command in commands {
            loop {
                let response = self.next_response().await?;
                if response.tag() == Some(command.tag.as_str()) {
                    outcomes.push(finish(
                        &command.tag,
                        std::mem::take(&mut untagged),
                        response,
                        sent,
                    ));
                    break;
                }
                untagged.push(response);
            }
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
        let injected = self.framer.buffered();
        if injected > 0 {
            return Err(SessionError::PlaintextInjection(injected));
        }
        let cert = self.start_tls(host, tls).await?;
        self.forget_capabilities();
        Ok((outcome, cert))
    }

    /// LOGOUT, waiting at most [`SessionOptions::logout_wait`] for the answer, then closes the connection. Never fails:
    /// the connection is closed whatever the server does. Returns true when the server answered.
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

    /// Closes the connection without LOGOUT.
    pub async fn close(&mut self) {
        if let Some(transport) = self.transport.take() {
            transport.close().await;
        }
    }
}

fn finish(tag: &str, untagged: Vec<Response>, completion: Response, sent: Instant) -> Outcome {
    Outcome {
        tag: tag.to_string(),
        untagged,
        completion,
        ms: millis_since(sent),
    }
}

/// Milliseconds since `since`, to the microsecond: the unit of every timing in reports.
pub fn millis_since(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}
