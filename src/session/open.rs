//! Opening a connection the one way the probe and the shell share: connect (every address), implicit TLS, the
//! greeting, the capabilities (from the greeting's code, else one CAPABILITY), and STARTTLS when the mode asks for it
//! (with the capabilities asked again afterwards, as RFC 3501 requires).
//!
//! [`open`] never prints and never decides what a failure means: it returns an [`Opening`] that records each step with
//! its timing, what was learned, and the failure that stopped it, if any. A `* BYE` greeting ends the opening without
//! a failure; the caller reads the greeting (a `BYE [REFERRAL]` is a referral to follow).

use std::time::{Duration, Instant};

use thiserror::Error;

use super::{millis_since, Deadline, Session, SessionError, SessionOptions};
use crate::proto::command::Command;
use crate::proto::response::{Kind, Response, Status};
use crate::transport::{CertificateInfo, ConnectInfo, Endpoint, TlsMode, TlsOptions};

/// One step that went through.
#[derive(Debug, Clone)]
pub enum OpenStep {
    /// Connected (details in [`Opening::connect`]).
    Connected,
    /// Implicit TLS established.
    Tls(CertificateInfo),
    /// The greeting arrived (it is [`Opening::greeting`]).
    Greeting,
    /// The capabilities are known: from the greeting's code, or from a CAPABILITY command.
    Capabilities {
        /// True when the greeting carried them (no command was sent).
        from_greeting: bool,
        /// The capabilities as they stood after this step.
        capabilities: Vec<String>,
    },
    /// STARTTLS done.
    StartTls(CertificateInfo),
    /// `--starttls=opportunistic` and the server does not offer STARTTLS: going on in plaintext.
    StartTlsNotOffered,
}

impl OpenStep {
    /// The step's name in reports: `connect`, `tls`, `greeting`, `capabilities`, `starttls`.
    pub fn name(&self) -> &'static str {
        match self {
            OpenStep::Connected => "connect",
            OpenStep::Tls(_) => "tls",
            OpenStep::Greeting => "greeting",
            OpenStep::Capabilities { .. } => "capabilities",
            OpenStep::StartTls(_) | OpenStep::StartTlsNotOffered => "starttls",
        }
    }
}

/// Why opening stopped.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The network, TLS or the server's bytes failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The first line was not an IMAP greeting.
    #[error("the server did not greet like an IMAP server: `{0}` (is this the IMAP port?)")]
    NotImap(String),
    /// A plaintext connection to a port that speaks TLS (implicit TLS, as on 993).
    #[error("{}", crate::transport::sniff::IMPLICIT_TLS_HINT)]
    SpeaksTls,
    /// STARTTLS is required and the server does not advertise it.
    #[error(
        "the server does not advertise STARTTLS, and --starttls requires it (use --starttls=opportunistic to go on in \
         plaintext)"
    )]
    NoStartTls,
}

/// The failure that stopped an opening.
#[derive(Debug)]
pub struct OpenFailure {
    /// The step that failed: `connect`, `tls`, `greeting`, `capabilities` or `starttls`.
    pub step: &'static str,
    /// Milliseconds the failed step took.
    pub ms: f64,
    /// What went wrong.
    pub error: OpenError,
}

/// What [`open`] did.
#[derive(Debug)]
pub struct Opening {
    /// The session, unless the connect itself failed. The caller logs it out or closes it.
    pub session: Option<Session>,
    /// Resolution and connection details.
    pub connect: Option<ConnectInfo>,
    /// The steps that went through, in order, each with its milliseconds.
    pub steps: Vec<(OpenStep, f64)>,
    /// The greeting, once read.
    pub greeting: Option<Response>,
    /// The failure that stopped the opening, if any.
    pub failure: Option<OpenFailure>,
}

impl Opening {
    /// True when the greeting was `* BYE` (the server takes no connections).
    pub fn refused(&self) -> bool {
        self.greeting
            .as_ref()
            .is_some_and(|g| g.status() == Some(Status::Bye))
    }
}

/// Told of each step of an opening as it goes through: the step, its milliseconds, the connection details (with
/// [`OpenStep::Connected`]) and the greeting once read. The steps are also in [`Opening::steps`] at the end.
pub type OnStep<'a> =
    &'a mut (dyn FnMut(&OpenStep, f64, Option<&ConnectInfo>, Option<&Response>) + Send);

/// Opens a connection to `endpoint` in `mode`, every wait ending by `deadline`. See the module documentation.
pub async fn open(
    endpoint: &Endpoint,
    mode: TlsMode,
    tls: &TlsOptions,
    options: SessionOptions,
    deadline: Option<Deadline>,
) -> Opening {
    open_with(endpoint, mode, tls, options, deadline, &mut |_, _, _, _| {}).await
}

/// [`open`], telling `on_step` of each step as it goes through (the probe's progress on a terminal).
pub async fn open_with(
    endpoint: &Endpoint,
    mode: TlsMode,
    tls: &TlsOptions,
    options: SessionOptions,
    deadline: Option<Deadline>,
    on_step: OnStep<'_>,
) -> Opening {
    let mut opening = Opening {
        session: None,
        connect: None,
        steps: Vec::new(),
        greeting: None,
        failure: None,
    };
    let t = Instant::now();
    match Session::connect(endpoint, options, deadline).await {
        Ok((session, info)) => {
            let ms = millis_since(t);
            on_step(&OpenStep::Connected, ms, Some(&info), None);
            opening.session = Some(session);
            opening.connect = Some(info);
            opening.steps.push((OpenStep::Connected, ms));
        }
        Err(e) => {
            opening.failure = Some(OpenFailure {
                step: "connect",
                ms: millis_since(t),
                error: e.into(),
            });
            return opening;
        }
    }
    if let Err(failure) = steps(
        &mut opening,
        &endpoint.host,
        endpoint.port,
        mode,
        tls,
        on_step,
    )
    .await
    {
        opening.failure = Some(failure);
    }
    opening
}

/// Everything after the connect; `Err` is the step that failed.
async fn steps(
    opening: &mut Opening,
    host: &str,
    port: u16,
    mode: TlsMode,
    tls: &TlsOptions,
    on_step: OnStep<'_>,
) -> Result<(), OpenFailure> {
    let Opening {
        session: Some(session),
        steps,
        greeting: greeting_slot,
        ..
    } = opening
    else {
        return Ok(());
    };
    let mut went = |steps: &mut Vec<(OpenStep, f64)>,
                    greeting: Option<&Response>,
                    step: OpenStep,
                    t: Instant| {
        let ms = millis_since(t);
        on_step(&step, ms, None, greeting);
        steps.push((step, ms));
    };
    let fail = |step, t: Instant, error: OpenError| OpenFailure {
        step,
        ms: millis_since(t),
        error,
    };

    if mode == TlsMode::Implicit {
        let t = Instant::now();
        let cert = session
            .start_tls(host, tls)
            .await
            .map_err(|e| fail("tls", t, e.into()))?;
        went(steps, None, OpenStep::Tls(cert), t);
    }

    let t = Instant::now();
    let greeting = if mode == TlsMode::Implicit {
        session.read_greeting().await.map_err(OpenError::from)
    } else {
        greeting_or_tls_hint(session, host, port).await
    }
    .map_err(|e| fail("greeting", t, e))?;
    let is_greeting = matches!(greeting.kind, Kind::Greeting { .. });
    let line = greeting.first_line();
    let bye = greeting.status() == Some(Status::Bye);
    *greeting_slot = Some(greeting);
    if !is_greeting {
        return Err(fail("greeting", t, OpenError::NotImap(line)));
    }
    went(steps, greeting_slot.as_ref(), OpenStep::Greeting, t);
    if bye {
        return Ok(());
    }

    let t = Instant::now();
    let from_greeting = session.capabilities().is_some();
    if !from_greeting {
        ask_capabilities(session)
            .await
            .map_err(|e| fail("capabilities", t, e.into()))?;
    }
    went(
        steps,
        greeting_slot.as_ref(),
        OpenStep::Capabilities {
            from_greeting,
            capabilities: known(session),
        },
        t,
    );

    if mode.uses_starttls() {
        let t = Instant::now();
        if session.has_capability("STARTTLS") {
            let (_, cert) = session
                .starttls(host, tls)
                .await
                .map_err(|e| fail("starttls", t, e.into()))?;
            went(steps, greeting_slot.as_ref(), OpenStep::StartTls(cert), t);
            let t = Instant::now();
            ask_capabilities(session)
                .await
                .map_err(|e| fail("capabilities", t, e.into()))?;
            went(
                steps,
                greeting_slot.as_ref(),
                OpenStep::Capabilities {
                    from_greeting: false,
                    capabilities: known(session),
                },
                t,
            );
        } else if mode == TlsMode::StartTls {
            return Err(fail("starttls", t, OpenError::NoStartTls));
        } else {
            went(
                steps,
                greeting_slot.as_ref(),
                OpenStep::StartTlsNotOffered,
                t,
            );
        }
    }
    Ok(())
}

/// How long a plaintext greeting may take before imapref checks whether the port speaks TLS instead. Default 1 s:
/// real servers greet within milliseconds; an implicit-TLS port sends nothing until it gets a ClientHello.
const TLS_SNIFF_AFTER: Duration = Duration::from_secs(1);

/// Reads a plaintext greeting. When none has come after [`TLS_SNIFF_AFTER`], a TLS handshake on a second connection
/// tells whether the port speaks implicit TLS; bytes of a TLS record where a greeting should be say the same.
async fn greeting_or_tls_hint(
    session: &mut Session,
    host: &str,
    port: u16,
) -> Result<Response, OpenError> {
    let first = tokio::time::timeout(TLS_SNIFF_AFTER, session.read_greeting()).await;
    let result = match first {
        Ok(r) => r,
        Err(_) => {
            let endpoint = Endpoint::new(host, port);
            if crate::transport::speaks_tls(&endpoint, TLS_SNIFF_AFTER)
                .await
                .speaks_tls()
            {
                return Err(OpenError::SpeaksTls);
            }
            session.read_greeting().await
        }
    };
    match result {
        Ok(g) if crate::transport::is_tls_record(&g.raw.bytes) => Err(OpenError::SpeaksTls),
        Ok(g) => Ok(g),
        Err(e) => Err(e.into()),
    }
}

async fn ask_capabilities(session: &mut Session) -> Result<(), SessionError> {
    let tag = session.next_tag();
    session
        .run(&Command::new(tag, "CAPABILITY"))
        .await
        .map(|_| ())
}

fn known(session: &Session) -> Vec<String> {
    session
        .capabilities()
        .map(<[String]>::to_vec)
        .unwrap_or_default()
}
