//! The transport's one error type, [`TransportError`]: every variant says which phase failed (resolve, connect, TLS,
//! read, write) in words a mail administrator understands, and helpers turn raw `std::io::Error`s into those variants.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::certificate::CertificateInfo;

/// The names of the phases a [`TransportError::Timeout`] can report, and that [`TransportError::phase`] returns.
///
/// They are plain strings so that renderers and the JSON report can show them as they are.
pub mod phase {
    /// Looking the host name up in DNS (or `/etc/hosts`).
    pub const RESOLVE: &str = "resolve";
    /// Opening the TCP connection.
    pub const CONNECT: &str = "connect";
    /// The TLS handshake (implicit TLS or after STARTTLS).
    pub const TLS_HANDSHAKE: &str = "tls handshake";
    /// Waiting for bytes from the server.
    pub const READ: &str = "read";
    /// Sending bytes to the server.
    pub const WRITE: &str = "write";
    /// The established connection as a whole: it was closed or reset under us, or failed in another way.
    pub const CONNECTION: &str = "connection";
    /// Preparing TLS locally (reading the CA file, building keys): nothing was sent yet.
    pub const SETUP: &str = "setup";
}

/// Why the transport could not resolve, connect, secure, read or write.
///
/// The `Display` text is meant to be shown to a mail administrator as it is. Use [`TransportError::phase`] to group
/// errors, [`TransportError::is_tls`] and [`TransportError::is_timeout`] to pick an exit code.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host name could not be looked up.
    #[error("could not resolve {host}: {reason}")]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// The resolver's answer, e.g. "Name or service not known".
        reason: String,
    },

    /// The name resolved, but to no address at all.
    #[error("{host} resolved to no addresses")]
    NoAddress {
        /// The name that was looked up.
        host: String,
    },

    /// Every address the name resolved to refused or failed the TCP connection.
    #[error("could not connect to {endpoint}: {reason}")]
    Connect {
        /// `host:port` as the user gave it.
        endpoint: String,
        /// Every attempt summarised, e.g. `127.0.0.1:143: connection refused; [::1]:143: network unreachable`.
        reason: String,
    },

    /// A phase took longer than the timeout. When every connect attempt timed out this is reported with phase
    /// `"connect"` rather than as [`TransportError::Connect`].
    #[error("timed out after {} during {phase}", human_duration(*.after))]
    Timeout {
        /// One of the names in [`phase`]: `"resolve"`, `"connect"`, `"tls handshake"`, `"read"` or `"write"`.
        phase: &'static str,
        /// The timeout that expired.
        after: Duration,
    },

    /// The TLS handshake failed: the certificate did not verify, the server does not speak TLS on this port, the
    /// versions or ciphers do not match, or the server hung up during the handshake.
    #[error("TLS handshake failed: {reason}{}", presented(.certificate.as_deref()))]
    Tls {
        /// What OpenSSL (or the platform TLS library) said, tidied, e.g.
        /// "certificate verify failed: self-signed certificate", with a clause on what that means for this
        /// certificate when it is a common case.
        reason: String,
        /// The certificate the server presented, when the handshake failed because it did not verify (its
        /// [`verification`](CertificateInfo::verification) is [`Verification::Failed`](super::Verification::Failed)).
        /// The `Display` text describes it after the reason.
        certificate: Option<Box<CertificateInfo>>,
    },

    /// The CA file given with `--ca-file` could not be read or holds no usable certificate.
    #[error("cannot use CA file {}: {reason}", .path.display())]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },

    /// A certificate or private key could not be generated or loaded (the lab server's side).
    #[error("cannot prepare the TLS certificate: {reason}")]
    Certificate {
        /// What went wrong.
        reason: String,
    },

    /// TLS was requested on a connection that is already encrypted (for example STARTTLS after implicit TLS).
    #[error("the connection is already using TLS")]
    AlreadyTls,

    /// The server closed the connection while we were waiting for it (without a clean end of stream).
    #[error("the server closed the connection")]
    Closed,

    /// The connection was reset or aborted (a TCP RST, a broken pipe).
    #[error("the connection was reset: {reason}")]
    Reset {
        /// What the operating system said, e.g. "connection reset by peer".
        reason: String,
    },

    /// Any other network I/O error.
    #[error("network I/O error: {0}")]
    Io(#[from] io::Error),
}

impl TransportError {
    /// True when the TLS handshake failed because of the server's TLS (certificate, protocol, hang-up during the
    /// handshake). A handshake that merely took too long is a timeout instead ([`TransportError::is_timeout`]); a bad
    /// local CA file is not a TLS failure of the server.
    pub fn is_tls(&self) -> bool {
        matches!(self, TransportError::Tls { .. })
    }

    /// The certificate the server presented when the handshake failed because it did not verify: for the report's
    /// certificate section, so that the subject, issuer, names, validity and fingerprint are shown with the failure.
    pub fn presented_certificate(&self) -> Option<&CertificateInfo> {
        match self {
            TransportError::Tls { certificate, .. } => certificate.as_deref(),
            _ => None,
        }
    }

    /// True when any phase timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, TransportError::Timeout { .. })
    }

    /// The phase that failed, one of the names in [`phase`].
    pub fn phase(&self) -> &'static str {
        match self {
            TransportError::Resolve { .. } | TransportError::NoAddress { .. } => phase::RESOLVE,
            TransportError::Connect { .. } => phase::CONNECT,
            TransportError::Timeout { phase, .. } => phase,
            TransportError::Tls { .. } | TransportError::AlreadyTls => phase::TLS_HANDSHAKE,
            TransportError::CaFile { .. } | TransportError::Certificate { .. } => phase::SETUP,
            TransportError::Closed | TransportError::Reset { .. } | TransportError::Io(_) => {
                phase::CONNECTION
            }
        }
    }

    /// Turns an I/O error met while reading or writing into the variant an administrator should see: a reset or a
    /// broken pipe becomes [`TransportError::Reset`], an unexpected end of stream [`TransportError::Closed`].
    pub(crate) fn from_stream_io(error: io::Error) -> TransportError {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => TransportError::Reset {
                reason: describe_io_error(&error),
            },
            io::ErrorKind::UnexpectedEof => TransportError::Closed,
            // OpenSSL 3 reports a peer that vanished without close_notify as an SSL error, not as an EOF.
            _ if error
                .to_string()
                .to_ascii_lowercase()
                .contains("unexpected eof") =>
            {
                TransportError::Closed
            }
            _ => TransportError::Io(error),
        }
    }
}

/// A short lowercase description of an I/O error for attempt summaries: "connection refused", "network unreachable",
/// or the operating system's own text.
pub(crate) fn describe_io_error(error: &io::Error) -> String {
    let known = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::BrokenPipe => "broken pipe (the server had already closed the connection)",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::PermissionDenied => "permission denied (a local firewall?)",
        _ => return error.to_string(),
    };
    known.to_string()
}

/// A duration the way a person writes it: "200 ms", "5 s", "1.5 s".
pub(crate) fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis % 1000 == 0 {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Milliseconds as a float with microsecond precision, for timings in the report.
/// The text after a TLS failure's reason: the presented certificate, when there is one.
fn presented(certificate: Option<&CertificateInfo>) -> String {
    match certificate {
        Some(info) => format!("; the server presented {}", info.presented()),
        None => String::new(),
    }
}

pub(crate) fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_phase() {
        let timeout = TransportError::Timeout {
            phase: phase::READ,
            after: Duration::from_millis(200),
        };
        assert_eq!(timeout.to_string(), "timed out after 200 ms during read");
        assert!(timeout.is_timeout());
        assert!(!timeout.is_tls());
        assert_eq!(timeout.phase(), "read");

        let tls = TransportError::Tls {
            reason: "certificate verify failed: self-signed certificate".into(),
            certificate: None,
        };
        assert_eq!(
            tls.to_string(),
            "TLS handshake failed: certificate verify failed: self-signed certificate"
        );
        assert!(tls.is_tls());
        assert_eq!(tls.phase(), phase::TLS_HANDSHAKE);

        let ca = TransportError::CaFile {
            path: PathBuf::from("/tmp/ca.pem"),
            reason: "no such file".into(),
        };
        assert_eq!(
            ca.to_string(),
            "cannot use CA file /tmp/ca.pem: no such file"
        );
        assert!(!ca.is_tls());
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_millis(200)), "200 ms");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn stream_errors_become_reset_or_closed() {
        let reset = TransportError::from_stream_io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(matches!(reset, TransportError::Reset { .. }), "{reset:?}");
        let eof = TransportError::from_stream_io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(eof, TransportError::Closed), "{eof:?}");
        let ssl = TransportError::from_stream_io(io::Error::other(
            "error:0A000126:SSL routines::unexpected eof while reading",
        ));
        assert!(matches!(ssl, TransportError::Closed), "{ssl:?}");
        let other = TransportError::from_stream_io(io::Error::other("weird"));
        assert!(matches!(other, TransportError::Io(_)), "{other:?}");
    }
}
