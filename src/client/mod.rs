//! The client side of one IMAP connection as a state machine with no I/O, in the manner of imap-next's client: the
//! caller [`send`](Client::send)s commands and gets their tags, hands the server's bytes to [`feed`](Client::feed),
//! takes typed [`Event`]s from [`next_event`](Client::next_event), and writes what
//! [`take_output`](Client::take_output) gives to the socket. Nothing here reads a socket, sleeps or knows the time
//! except through [`Client::set_clock`].
//!
//! It owns:
//! - the framer (every response keeps its raw bytes; big literals are streamed, never held);
//! - the commands in flight, in order, so several may be pipelined (RFC 9051 §5.5); untagged data belongs to the oldest
//!   command in flight, and every event says which command it belongs to;
//! - the literal rules: a synchronizing literal (and a SASL step) waits for the server's `+`; LITERAL+ sends `{n+}`; under
//!   LITERAL- only literals of at most 4096 bytes go non-synchronizing;
//! - the capabilities last learned (greeting code, CAPABILITY, completion code), the last BYE text, round trips;
//! - the redacted transcript ([`transcript`]);
//! - every limit on what a server can make it hold ([`ClientLimits`]).
//!
//! The one async driver ([`crate::session`]) runs it over a transport.

pub mod gathered;
pub mod transcript;

use std::collections::VecDeque;

use thiserror::Error;

use crate::proto::code::Code;
use crate::proto::command::{
    authenticate_plain, Arg, Command, CommandError, Encoded, LiteralMode, Piece, TagGenerator,
};
use crate::proto::framing::{Frame, FrameError, Framer, FramerLimits};
use crate::proto::response::{Kind, Response, Status};
use crate::secret::{Redactor, Secret};
pub use gathered::Gathered;
use transcript::{Direction, Transcript};

/// A command's tag.
pub type Tag = String;

/// What a server can make the client hold. The defaults suit a diagnostic client: far above what a real server
/// sends, low enough that a hostile one costs a few MiB at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// The framer's limits: line length, literal sizes, one response's bytes.
    pub framer: FramerLimits,
    /// Untagged responses of one command kept from its start. Default 256: a SELECT sends about ten, a LIST of a big
    /// account a few hundred; more is shown as a count.
    pub keep_first: usize,
    /// Untagged responses of one command kept from its end once the first are kept. Default 64: the last EXISTS and
    /// how a flood ended.
    pub keep_last: usize,
    /// Continuation requests (`+`) accepted that no literal or SASL step asked for, per command (and while nothing is
    /// in flight). Default 16: IDLE needs one, a SASL exchange a few; a server that sends `+` forever is broken.
    pub max_unrequested_continuations: usize,
    /// Bytes that may wait to be written (commands queued behind a synchronizing literal, or not yet taken by the
    /// driver). Default 1 MiB: a command is a few hundred bytes; the shell's biggest typed literal fits.
    pub max_pending_output: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            framer: FramerLimits::default(),
            keep_first: 256,
            keep_last: 64,
            max_unrequested_continuations: 16,
            max_pending_output: 1024 * 1024,
        }
    }
}

/// Why the connection cannot go on. After an error the machine stays failed; the driver closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The server's bytes cannot be framed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The command cannot be encoded.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The server sent more continuation requests than anything asked for.
    #[error(
        "the server sent {count} continuation requests (`+`) that no literal or SASL step asked for (limit: \
         max_unrequested_continuations)"
    )]
    ContinuationFlood {
        /// How many were counted.
        count: usize,
    },
    /// Too many bytes wait to be written.
    #[error("more than {limit} bytes wait to be sent (limit: max_pending_output)")]
    OutputFull {
        /// The limit.
        limit: usize,
    },
    /// A piece was added to a command that is not in flight.
    #[error("no command with tag {0} is in flight")]
    UnknownTag(String),
    /// The machine failed earlier.
    #[error("the connection failed earlier: {0}")]
    Failed(String),
}

/// A command's tagged completion and what it gathered.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The tag.
    pub tag: Tag,
    /// The tagged response.
    pub response: Response,
    /// The untagged responses and continuations that arrived while it was the oldest command in flight.
    pub untagged: Gathered,
}

impl Completion {
    /// The completion's status (BAD when it has none).
    pub fn status(&self) -> Status {
        self.response.status().unwrap_or(Status::Bad)
    }

    /// True when the command succeeded.
    pub fn is_ok(&self) -> bool {
        self.status() == Status::Ok
    }

    /// The completion's code.
    pub fn code(&self) -> Option<&Code> {
        self.response.code()
    }

    /// The completion's text.
    pub fn text(&self) -> &str {
        self.response.text().unwrap_or_default()
    }
}

/// What the machine hands out.
#[derive(Debug, Clone)]
pub enum Event {
    /// The server's greeting (the first response of the connection).
    Greeting(Response),
    /// An untagged response; `command` is the command it belongs to (the oldest in flight), if any.
    Untagged {
        /// The response.
        response: Response,
        /// The command in flight it belongs to.
        command: Option<Tag>,
    },
    /// A continuation request (`+`).
    Continuation {
        /// The response.
        response: Response,
        /// The command it answers: the one waiting to send its next piece, else the newest in flight.
        command: Option<Tag>,
        /// True when the machine answered it itself by releasing the command's next piece (a literal's data, a SASL
        /// response); false when the caller must answer (IDLE, a typed AUTHENTICATE step, a literal still being
        /// typed: then `command` waited for it and the caller's next piece goes at once).
        answered: bool,
    },
    /// A literal too large to hold starts; `head` is its response up to the announcement.
    LiteralStart {
        /// The response so far, up to and including `{n}`.
        head: Vec<u8>,
        /// The literal's size.
        len: u64,
        /// The command it belongs to.
        command: Option<Tag>,
    },
    /// A piece of that literal.
    LiteralData {
        /// The bytes.
        data: Vec<u8>,
        /// The command it belongs to.
        command: Option<Tag>,
    },
    /// A command completed.
    Completed(Completion),
    /// A tagged response whose tag is not in flight (a server bug, or an answer to something never sent).
    StrayTagged(Response),
}

/// A command sent and not yet completed.
#[derive(Debug)]
struct InFlight {
    tag: Tag,
    gathered: Gathered,
    unrequested_continuations: usize,
}

/// A piece waiting to be written.
#[derive(Debug)]
struct Queued {
    tag: Tag,
    piece: Piece,
}

/// The state machine. See the module documentation.
#[derive(Debug)]
pub struct Client {
    limits: ClientLimits,
    framer: Framer,
    tags: TagGenerator,
    transcript: Transcript,
    now_ms: f64,
    greeted: bool,
    in_flight: Vec<InFlight>,
    /// Pieces not yet handed to the driver, in order.
    queue: VecDeque<Queued>,
    /// The command whose last piece sent waits for the server's `+`.
    stalled: Option<Tag>,
    /// Bytes ready for the driver to write.
    output: Vec<u8>,
    /// A piece carrying a secret is in the output, not yet taken.
    secret_in_output: bool,
    /// Bytes of a secret were handed to the driver to write.
    secret_written: bool,
    /// Masks the secrets this machine was given (a server may echo one back) in what the server's lines put in the
    /// transcript.
    redactors: Vec<Redactor>,
    /// `+` received while nothing was in flight.
    idle_continuations: usize,
    capabilities: Option<Vec<String>>,
    last_bye: Option<String>,
    round_trips: u32,
    /// Output was written and nothing has answered it yet.
    awaiting_answer: bool,
    failed: Option<String>,
}

impl Client {
    /// A machine for a new connection (the greeting comes first).
    pub fn new(limits: ClientLimits) -> Self {
        Client {
            limits,
            framer: Framer::new(limits.framer),
            tags: TagGenerator::default(),
            transcript: Transcript::default(),
            now_ms: 0.0,
            greeted: false,
            in_flight: Vec::new(),
            queue: VecDeque::new(),
            stalled: None,
            output: Vec::new(),
            idle_continuations: 0,
            secret_in_output: false,
            secret_written: false,
            redactors: Vec::new(),
            capabilities: None,
            last_bye: None,
            round_trips: 0,
            awaiting_answer: false,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ClientLimits {
        self.limits
    }

    /// Sets the time (milliseconds since the connection started) stamped on transcript entries from now on.
    pub fn set_clock(&mut self, now_ms: f64) {
        self.now_ms = now_ms;
    }

    /// A fresh tag.
    pub fn next_tag(&mut self) -> Tag {
        self.tags.next_tag()
    }

    /// The literal rules the last known capabilities allow.
    pub fn literal_mode(&self) -> LiteralMode {
        LiteralMode::from_capabilities(self.capabilities.iter().flatten().map(String::as_str))
    }

    /// Encodes `command` under the server's literal rules and queues it. Returns its tag.
    pub fn send(&mut self, command: &Command) -> Result<Tag, ClientError> {
        let encoded = command.encode_with(self.literal_mode())?;
        for arg in &command.args {
            if let Arg::Secret(secret) = arg {
                self.mask(Redactor::new(secret));
            }
        }
        self.send_encoded(&command.tag, encoded)
    }

    /// Queues an already encoded command (AUTHENTICATE PLAIN, a line the shell planned) under `tag`.
    pub fn send_encoded(&mut self, tag: &str, encoded: Encoded) -> Result<Tag, ClientError> {
        self.check_failed()?;
        self.check_room(&encoded)?;
        self.in_flight.push(InFlight {
            tag: tag.to_string(),
            gathered: Gathered::new(self.limits.keep_first, self.limits.keep_last),
            unrequested_continuations: 0,
        });
        self.enqueue(tag, encoded);
        Ok(tag.to_string())
    }

    /// LOGIN, or AUTHENTICATE PLAIN (with SASL-IR when the server advertises it), encoded under a fresh tag: the one
    /// place a login is built.
    pub fn encode_login(
        &mut self,
        user: &str,
        password: &Secret,
        plain: bool,
    ) -> Result<(Tag, Encoded), ClientError> {
        let tag = self.next_tag();
        self.mask(Redactor::new(password).with_login(user));
        let encoded = if plain {
            authenticate_plain(&tag, "", user, password, self.has_capability("SASL-IR"))?
        } else {
            Command::new(tag.clone(), "LOGIN")
                .arg(Arg::Astring(user.to_string()))
                .arg(Arg::Secret(password.clone()))
                .encode_with(self.literal_mode())?
        };
        Ok((tag, encoded))
    }

    /// Builds and queues a login (see [`Client::encode_login`]). Returns its tag.
    pub fn login(
        &mut self,
        user: &str,
        password: &Secret,
        plain: bool,
    ) -> Result<Tag, ClientError> {
        let (tag, encoded) = self.encode_login(user, password, plain)?;
        self.send_encoded(&tag, encoded)
    }

    /// Masks `redactor`'s secret wherever a server line shows it in the transcript from now on.
    pub fn mask(&mut self, redactor: Redactor) {
        self.redactors.push(redactor);
    }

    /// The server's bytes as the transcript may keep them: with every known secret masked.
    fn record_server(&mut self, at: f64, bytes: &[u8]) {
        let mut shown = std::borrow::Cow::Borrowed(bytes);
        for redactor in &self.redactors {
            if let std::borrow::Cow::Owned(masked) = redactor.redact_bytes(&shown) {
                shown = std::borrow::Cow::Owned(masked);
            }
        }
        self.transcript.record(Direction::Server, at, &shown);
    }

    /// True once bytes of a password (or a SASL response) were handed out to be written.
    pub fn secret_written(&self) -> bool {
        self.secret_written
    }

    /// Adds pieces to a command in flight (the shell's literal typed over several lines, an AUTHENTICATE step).
    pub fn continue_command(&mut self, tag: &str, encoded: Encoded) -> Result<(), ClientError> {
        self.check_failed()?;
        if !self.in_flight.iter().any(|c| c.tag == tag) {
            return Err(ClientError::UnknownTag(tag.to_string()));
        }
        self.check_room(&encoded)?;
        self.enqueue(tag, encoded);
        Ok(())
    }

    fn check_room(&self, encoded: &Encoded) -> Result<(), ClientError> {
        let queued: usize = self.queue.iter().map(|q| q.piece.wire.len()).sum();
        let adding: usize = encoded.pieces.iter().map(|p| p.wire.len()).sum();
        if self.output.len() + queued + adding > self.limits.max_pending_output {
            return Err(ClientError::OutputFull {
                limit: self.limits.max_pending_output,
            });
        }
        Ok(())
    }

    fn enqueue(&mut self, tag: &str, encoded: Encoded) {
        for piece in encoded.pieces {
            self.queue.push_back(Queued {
                tag: tag.to_string(),
                piece,
            });
        }
        self.pump();
    }

    /// Moves queued pieces to the output until one must wait for `+`.
    fn pump(&mut self) {
        while self.stalled.is_none() {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            self.transcript
                .record(Direction::Client, self.now_ms, &q.piece.shown);
            self.output.extend_from_slice(&q.piece.wire);
            self.secret_in_output |= q.piece.carries_secret();
            if q.piece.then_wait_continuation {
                self.stalled = Some(q.tag);
            }
        }
    }

    /// True when bytes wait to be written.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The bytes to write now. Writing them starts a round trip unless one is already open.
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = std::mem::take(&mut self.output);
        self.secret_written |= std::mem::take(&mut self.secret_in_output);
        if !out.is_empty() && !self.awaiting_answer {
            self.awaiting_answer = true;
            self.round_trips += 1;
        }
        out
    }

    /// Hands the machine bytes read from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Bytes fed and not yet framed (after a STARTTLS OK there must be none: they could be injected).
    pub fn buffered_input(&self) -> usize {
        self.framer.buffered()
    }

    /// After the TLS handshake that followed a STARTTLS OK: a new framer, capabilities forgotten (RFC 3501 §6.2.1).
    pub fn restart_after_tls(&mut self) {
        self.framer = Framer::new(self.limits.framer);
        self.capabilities = None;
        self.note("TLS established");
    }

    /// The next event, or `Ok(None)` when more input is needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        self.check_failed()?;
        let frame = match self.framer.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.fail(e.into())),
        };
        let at = self.now_ms;
        match frame {
            Frame::Response(raw) => {
                self.record_server(at, &raw.bytes);
                if !self.greeted {
                    self.greeted = true;
                    let response = Response::parse_greeting(raw);
                    self.learn(&response);
                    return Ok(Some(Event::Greeting(response)));
                }
                let response = Response::parse(raw);
                self.learn(&response);
                self.route(response).map(Some)
            }
            Frame::LiteralAnnounced {
                len,
                streamed: true,
                ..
            } => {
                let head = self.framer.partial().to_vec();
                self.record_server(at, &head);
                self.transcript.note(
                    at,
                    format!("({len} bytes of literal data, streamed, not kept)"),
                );
                Ok(Some(Event::LiteralStart {
                    head,
                    len,
                    command: self.oldest(),
                }))
            }
            Frame::LiteralAnnounced { .. } => self.next_event(),
            Frame::LiteralData(data) => Ok(Some(Event::LiteralData {
                data,
                command: self.oldest(),
            })),
        }
    }

    fn oldest(&self) -> Option<Tag> {
        self.in_flight.first().map(|c| c.tag.clone())
    }

    /// Decides what a response after the greeting is.
    fn route(&mut self, response: Response) -> Result<Event, ClientError> {
        if response.is_continuation() {
            self.awaiting_answer = false;
            if let Some(tag) = self.stalled.take() {
                let released = self.queue.front().is_some_and(|q| q.tag == tag);
                self.pump();
                return Ok(Event::Continuation {
                    response,
                    command: Some(tag),
                    answered: released,
                });
            }
            let limit = self.limits.max_unrequested_continuations;
            let count = match self.in_flight.last_mut() {
                Some(c) => {
                    c.unrequested_continuations += 1;
                    c.unrequested_continuations
                }
                None => {
                    self.idle_continuations += 1;
                    self.idle_continuations
                }
            };
            if count > limit {
                return Err(self.fail(ClientError::ContinuationFlood { count }));
            }
            return Ok(Event::Continuation {
                response,
                command: self.in_flight.last().map(|c| c.tag.clone()),
                answered: false,
            });
        }
        if let Some(tag) = response.tag().map(str::to_string) {
            let Some(i) = self.in_flight.iter().position(|c| c.tag == tag) else {
                return Ok(Event::StrayTagged(response));
            };
            self.awaiting_answer = false;
            let done = self.in_flight.remove(i);
            if self.stalled.as_deref() == Some(tag.as_str()) {
                // The server refused the literal (or the SASL step): what was queued behind it goes nowhere.
                self.stalled = None;
            }
            self.queue.retain(|q| q.tag != tag);
            self.pump();
            return Ok(Event::Completed(Completion {
                tag,
                response,
                untagged: done.gathered,
            }));
        }
        let command = self.oldest();
        if let Some(c) = self.in_flight.first_mut() {
            c.gathered.push(response.clone());
        }
        Ok(Event::Untagged { response, command })
    }

    /// Remembers capabilities and BYE texts.
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
            } => self.last_bye = Some(text.clone()),
            _ => {}
        }
        if let Some(Code::Capability(caps)) = response.code() {
            self.capabilities = Some(caps.clone());
        }
    }

    fn check_failed(&self) -> Result<(), ClientError> {
        match &self.failed {
            Some(why) => Err(ClientError::Failed(why.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: ClientError) -> ClientError {
        self.failed = Some(error.to_string());
        error
    }

    /// Tags in flight, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = &str> {
        self.in_flight.iter().map(|c| c.tag.as_str())
    }

    /// True when `tag` is in flight.
    pub fn is_in_flight(&self, tag: &str) -> bool {
        self.in_flight.iter().any(|c| c.tag == tag)
    }

    /// The command waiting for the server's `+` before its next piece, if any.
    pub fn waiting_for_continuation(&self) -> Option<&str> {
        self.stalled.as_deref()
    }

    /// Forgets a command without its completion (the shell gave up on it); its queued pieces are dropped.
    pub fn abandon(&mut self, tag: &str) {
        self.in_flight.retain(|c| c.tag != tag);
        self.queue.retain(|q| q.tag != tag);
        if self.stalled.as_deref() == Some(tag) {
            self.stalled = None;
            self.pump();
        }
    }

    /// The capabilities last learned.
    pub fn capabilities(&self) -> Option<&[String]> {
        self.capabilities.as_deref()
    }

    /// True when the last known capabilities include `name` (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .flatten()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Forgets the capabilities (after login they may change).
    pub fn forget_capabilities(&mut self) {
        self.capabilities = None;
    }

    /// The text of the last BYE, if any.
    pub fn last_bye(&self) -> Option<&str> {
        self.last_bye.as_deref()
    }

    /// Writes that waited for an answer so far.
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// The greeting has arrived.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// The redacted transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Adds a note to the transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        self.transcript.note(self.now_ms, text);
    }

    /// A streamed literal is being passed on: the server is in the middle of a response.
    pub fn framer_partial(&self) -> &[u8] {
        self.framer.partial()
    }
}

#[cfg(test)]
mod tests;
