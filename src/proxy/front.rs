//! The client's side before login: the greeting with its CAPABILITY code, then the shared server-side machine
//! ([`crate::serve::PreLogin`]) over the client's connection: CAPABILITY, NOOP, ID, STARTTLS (the TLS handshake with
//! `--tls-cert`), LOGOUT, LOGIN and AUTHENTICATE PLAIN, until the client gives credentials. Every wait is bounded by the
//! pre-login idle time; lines and literals by the limits.

use std::time::Duration;

use crate::serve::{
    line, Credentials, Incoming, Input, InputLimits, PreLogin, Reply, Step, CONTINUE,
};
use crate::transport::{Transport, TransportError};

use super::record::Outcome;

/// The capabilities the proxy offers before login (STARTTLS, LOGINDISABLED and AUTH=PLAIN are added as the
/// connection's state says).
pub const CAPABILITIES: [&str; 3] = ["IMAP4rev1", "LITERAL+", "SASL-IR"];

/// The greeting's text after its capability code.
pub const GREETING: &str = "imapref proxy ready";

/// How a pre-login wait ended.
#[derive(Debug)]
pub enum Wait {
    /// The client gave credentials: log in upstream and answer with [`Front::answer`].
    Credentials(Credentials),
    /// The connection is over.
    Ended(Outcome, Option<String>),
}

/// One client before login.
pub struct Front<'a> {
    transport: Option<Transport>,
    pre: PreLogin<'a>,
    input: Input,
    limits: InputLimits,
    acceptor: Option<&'a tokio_native_tls::TlsAcceptor>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Front<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("transport", &self.transport)
            .field("pre", &self.pre)
            .finish_non_exhaustive()
    }
}

impl<'a> Front<'a> {
    /// A client connection whose every read and write waits at most `idle` (the transport's timeout).
    pub fn new(
        mut transport: Transport,
        pre: PreLogin<'a>,
        acceptor: Option<&'a tokio_native_tls::TlsAcceptor>,
        limits: InputLimits,
        idle: Duration,
    ) -> Self {
        transport.set_timeout(idle);
        Front {
            transport: Some(transport),
            pre,
            input: Input::new(limits),
            limits,
            acceptor,
            out: Vec::new(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// True once the client's connection is encrypted.
    pub fn tls_active(&self) -> bool {
        self.pre.tls_active()
    }

    /// `* OK [CAPABILITY ...] imapref proxy ready`.
    pub async fn greet(&mut self) -> Result<(), TransportError> {
        self.push(&line(format!(
            "* OK [CAPABILITY {}] {GREETING}",
            self.pre.capabilities()
        )));
        self.flush().await
    }

    /// Writes one line to the client (the answer to its login).
    pub async fn answer(&mut self, text: &str) -> Result<(), TransportError> {
        self.push(&line(text));
        self.flush().await
    }

    /// Says BYE and closes.
    pub async fn bye(mut self, text: &str) {
        self.push(&line(format!("* BYE {text}")));
        let _ = self.flush().await;
        if let Some(t) = self.transport.take() {
            t.close().await;
        }
    }

    /// The connection, and the client's bytes read after its login command (pipelined commands for the home server).
    pub fn into_parts(mut self) -> Option<(Transport, Vec<u8>)> {
        let unread = self.input.take_unframed();
        self.transport.take().map(|t| (t, unread))
    }

    fn push(&mut self, reply: &Reply) {
        if let Reply::Data(bytes) = reply {
            self.out.extend_from_slice(bytes);
        }
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let transport = self.transport.as_mut().ok_or(TransportError::Closed)?;
        let result = transport.write_all(&self.out).await;
        self.out.clear();
        result
    }

    async fn close(&mut self) {
        let _ = self.flush().await;
        if let Some(t) = self.transport.take() {
            t.close().await;
        }
    }

    /// Serves the client until it gives credentials or the connection ends.
    pub async fn next_credentials(&mut self) -> Wait {
        loop {
            while let Some(incoming) = self.input.next_incoming() {
                match incoming {
                    Incoming::Continue => self.out.extend_from_slice(CONTINUE),
                    Incoming::Invalid(reason) => {
                        self.push(&line(format!("* BAD {reason}")));
                        self.close().await;
                        return Wait::Ended(Outcome::ClientError, Some(reason));
                    }
                    Incoming::Command(bytes) => match self.pre.handle_input(&bytes) {
                        Step::Credentials(credentials) => {
                            if let Err(e) = self.flush().await {
                                return Wait::Ended(Outcome::NoLogin, Some(e.to_string()));
                            }
                            return Wait::Credentials(credentials);
                        }
                        Step::Command(command) => self.push(&line(format!(
                            "{} BAD Log in first: before login the proxy serves CAPABILITY, NOOP, ID, STARTTLS, \
                             LOGOUT, LOGIN and AUTHENTICATE",
                            command.tag
                        ))),
                        Step::Replies(replies) => {
                            for reply in replies {
                                match reply {
                                    Reply::Data(bytes) => self.out.extend_from_slice(&bytes),
                                    Reply::Close => {
                                        self.close().await;
                                        return Wait::Ended(Outcome::NoLogin, None);
                                    }
                                    Reply::StartTls => {
                                        if let Err(why) = self.start_tls().await {
                                            return Wait::Ended(Outcome::ClientError, Some(why));
                                        }
                                    }
                                }
                            }
                        }
                    },
                }
            }
            if let Err(e) = self.flush().await {
                return Wait::Ended(Outcome::NoLogin, Some(e.to_string()));
            }
            let Some(transport) = self.transport.as_mut() else {
                return Wait::Ended(Outcome::NoLogin, None);
            };
            match transport.read_some(&mut self.buf).await {
                Ok(0) | Err(TransportError::Closed) => return Wait::Ended(Outcome::NoLogin, None),
                Ok(n) => self.input.feed(self.buf.get(..n).unwrap_or_default()),
                Err(e) if e.is_timeout() => {
                    self.push(&line("* BYE Autologout; idle for too long"));
                    self.close().await;
                    return Wait::Ended(Outcome::IdleBeforeLogin, None);
                }
                Err(e) => return Wait::Ended(Outcome::NoLogin, Some(e.to_string())),
            }
        }
    }

    /// The TLS handshake after `OK Begin TLS negotiation now`; what the client pipelined before it is dropped.
    async fn start_tls(&mut self) -> Result<(), String> {
        self.flush().await.map_err(|e| e.to_string())?;
        let (Some(transport), Some(acceptor)) = (self.transport.take(), self.acceptor) else {
            return Err("STARTTLS without a certificate".into());
        };
        let transport = transport
            .accept_tls(acceptor)
            .await
            .map_err(|e| format!("TLS with the client failed: {e}"))?;
        self.transport = Some(transport);
        self.pre.tls_started();
        self.input = Input::new(self.limits);
        Ok(())
    }
}
