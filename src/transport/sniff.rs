//! Telling a TLS port from a plaintext one, for the hint "this port speaks TLS (implicit TLS, as on 993): use --tls".
//!
//! An implicit-TLS server sends nothing until it gets a ClientHello, so a plaintext probe of such a port waits for a
//! greeting that never comes. Two checks answer the question:
//! - [`is_tls_record`]: the bytes that arrived where a greeting should be start like a TLS record (`0x16 0x03 ..`,
//!   or an alert `0x15 0x03 ..`);
//! - [`speaks_tls`]: a TLS handshake on a second connection to the same endpoint, bounded by a timeout, says whether
//!   the port answers TLS. The certificate is not checked: the question is only which protocol the port speaks.

use std::time::{Duration, Instant};

use super::endpoint::Endpoint;
use super::error::TransportError;
use super::stream::Transport;
use super::tls::TlsOptions;

/// What [`speaks_tls`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProbe {
    /// The port completed a TLS handshake, or answered the ClientHello with a TLS alert.
    SpeaksTls {
        /// The negotiated protocol (`TLSv1.3`), when the handshake completed.
        protocol: Option<String>,
    },
    /// The port answered, but not with TLS (a plaintext greeting, a hang-up, silence until the timeout).
    NotTls {
        /// What happened instead, in words.
        reason: String,
    },
    /// The second connection could not be opened.
    Unreachable {
        /// The connect error.
        reason: String,
    },
}

impl TlsProbe {
    /// True for [`TlsProbe::SpeaksTls`].
    pub fn speaks_tls(&self) -> bool {
        matches!(self, TlsProbe::SpeaksTls { .. })
    }
}

/// True when `bytes` start like a TLS record: content type handshake (`0x16`) or alert (`0x15`), then protocol
/// major version 3 and a minor version 0 to 4 (SSL 3.0 to TLS 1.3 record versions). Needs the first 3 bytes; an
/// IMAP greeting starts with `* `, so no greeting is mistaken for one.
pub fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// The hint to show when [`is_tls_record`] or [`speaks_tls`] says yes during a plaintext probe.
pub const IMPLICIT_TLS_HINT: &str = "this port speaks TLS (implicit TLS, as on 993): use --tls";

/// Opens a second connection to `endpoint` and tries a TLS handshake on it (no certificate check), all bounded by
/// `timeout` (connect and handshake together). The connection is closed before returning.
pub async fn speaks_tls(endpoint: &Endpoint, timeout: Duration) -> TlsProbe {
    let started = Instant::now();
    let transport = match Transport::connect(endpoint, timeout).await {
        Ok((transport, _)) => transport,
        Err(error) => {
            return TlsProbe::Unreachable {
                reason: error.to_string(),
            }
        }
    };
    let mut transport = transport;
    transport.set_timeout(
        timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1)),
    );
    let options = TlsOptions {
        ca_file: None,
        insecure: true,
    };
    match transport.upgrade_tls(&endpoint.host, &options).await {
        Ok((tls, info)) => {
            tls.close().await;
            TlsProbe::SpeaksTls {
                protocol: info.protocol,
            }
        }
        // An alert in answer to our ClientHello is TLS too (e.g. no shared cipher, a client certificate required).
        Err(TransportError::Tls { reason, .. }) if reason.contains("alert") => {
            TlsProbe::SpeaksTls { protocol: None }
        }
        Err(error) => TlsProbe::NotTls {
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_support::listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn tls_records_are_told_from_greetings() {
        // A TLS 1.2/1.3 ServerHello record header, an alert, an SSL 3.0 record.
        assert!(is_tls_record(&[0x16, 0x03, 0x03, 0x00, 0x7a]));
        assert!(is_tls_record(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]));
        assert!(is_tls_record(&[0x16, 0x03, 0x00]));
        assert!(!is_tls_record(b"* OK IMAP4rev1 ready\r\n"));
        assert!(!is_tls_record(&[0x16, 0x03]), "too short to tell");
        assert!(!is_tls_record(&[0x16, 0x02, 0x00]));
        assert!(
            !is_tls_record(&[0x17, 0x03, 0x03]),
            "application data is not a first record"
        );
        assert!(!is_tls_record(b""));
    }

    #[tokio::test]
    async fn a_plaintext_port_is_not_tls() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"* OK plaintext IMAP\r\n").await;
                let mut buf = [0u8; 512];
                let _ = tcp.read(&mut buf).await;
            }
        });

        let found = speaks_tls(&Endpoint::new("127.0.0.1", port), Duration::from_secs(2)).await;

        assert!(matches!(found, TlsProbe::NotTls { .. }), "{found:?}");
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_silent_port_is_not_tls_within_the_timeout() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(accepted);
        });
        let started = Instant::now();

        let found = speaks_tls(
            &Endpoint::new("127.0.0.1", port),
            Duration::from_millis(300),
        )
        .await;

        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        match found {
            TlsProbe::NotTls { reason } => assert!(reason.contains("timed out"), "{reason}"),
            other => panic!("{other:?}"),
        }
        server.abort();
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = crate::transport::test_support::closed_port().await;
        let found = speaks_tls(&Endpoint::new("127.0.0.1", port), Duration::from_secs(2)).await;
        assert!(matches!(found, TlsProbe::Unreachable { .. }), "{found:?}");
    }
}
