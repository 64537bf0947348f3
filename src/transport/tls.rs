//! TLS on an open TCP connection, client and server side: options ([`TlsOptions`]), the extra trust roots from a CA
//! file, the handshake bounded by a timeout, the peer certificate's details, and OpenSSL's error strings tidied into
//! something a mail administrator can read.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

use super::certificate::{parse_der, CertificateInfo, Verification};
use super::error::{describe_io_error, millis, phase, TransportError};

/// How to check the server's certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted root certificates, PEM (several may be concatenated) or a single DER certificate, on top of the
    /// system's trust store. Default `None`: the system's trust store only, as a mail client would use.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and any host name (`--insecure`). Default `false`: a diagnostic should see exactly
    /// what a careful client sees. The certificate's details are still reported, marked "not checked".
    pub insecure: bool,
}

/// Why a certificate was not checked, as [`Verification::NotChecked`] reports it.
pub const INSECURE_REASON: &str =
    "--insecure: the certificate chain and host name were not verified";

/// The client handshake: SNI and host name check against `host`, bounded by `timeout`. Returns the TLS stream and the
/// server certificate's details.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, CertificateInfo), TransportError> {
    let connector = connector(options)?;
    let host = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);

    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, connector.connect(host, tcp)).await {
        Err(_) => {
            return Err(TransportError::Timeout {
                phase: phase::TLS_HANDSHAKE,
                after: timeout,
            })
        }
        Ok(Err(error)) => {
            return Err(TransportError::Tls {
                reason: tidy_tls_error(&error.to_string()),
            })
        }
        Ok(Ok(stream)) => stream,
    };
    let handshake_ms = millis(started.elapsed());

    let der = peer_certificate_der(&stream)?;
    let verification = if options.insecure {
        Verification::NotChecked {
            reason: INSECURE_REASON.into(),
        }
    } else {
        Verification::Verified
    };
    let info =
        parse_der(&der, verification, handshake_ms, SystemTime::now()).map_err(|reason| {
            TransportError::Tls {
                reason: format!("cannot parse the server certificate: {reason}"),
            }
        })?;
    Ok((stream, info))
}

/// The DER bytes of the certificate the server presented.
fn peer_certificate_der(stream: &TlsStream<TcpStream>) -> Result<Vec<u8>, TransportError> {
    let unreadable = |error: native_tls::Error| TransportError::Tls {
        reason: format!("cannot read the server certificate: {error}"),
    };
    match stream.get_ref().peer_certificate().map_err(unreadable)? {
        Some(certificate) => certificate.to_der().map_err(unreadable),
        None => Err(TransportError::Tls {
            reason: "the server presented no certificate".into(),
        }),
    }
}

/// The server handshake with `acceptor`, bounded by `timeout`.
pub(crate) async fn accept(
    tcp: TcpStream,
    acceptor: &tokio_native_tls::TlsAcceptor,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TransportError> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Err(_) => Err(TransportError::Timeout {
            phase: phase::TLS_HANDSHAKE,
            after: timeout,
        }),
        Ok(Err(error)) => Err(TransportError::Tls {
            reason: tidy_tls_error(&error.to_string()),
        }),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// A connector that trusts the system roots plus `options.ca_file`, or anything when `options.insecure`.
fn connector(options: &TlsOptions) -> Result<tokio_native_tls::TlsConnector, TransportError> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = &options.ca_file {
        for certificate in load_ca_file(path)? {
            builder.add_root_certificate(certificate);
        }
    }
    if options.insecure {
        builder.danger_accept_invalid_certs(true);
        builder.danger_accept_invalid_hostnames(true);
    }
    let connector = builder.build().map_err(|error| TransportError::Tls {
        reason: format!("cannot set up the TLS client: {error}"),
    })?;
    Ok(tokio_native_tls::TlsConnector::from(connector))
}

/// Every certificate in a PEM file (or the one certificate in a DER file).
fn load_ca_file(path: &Path) -> Result<Vec<native_tls::Certificate>, TransportError> {
    let ca_error = |reason: String| TransportError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    // A CA file is small and read once per connection; blocking the runtime for it is harmless.
    let bytes = std::fs::read(path).map_err(|error| ca_error(describe_io_error(&error)))?;
    if bytes.windows(11).any(|window| window == b"-----BEGIN ") {
        let certificates = native_tls::Certificate::stack_from_pem(&bytes)
            .map_err(|error| ca_error(format!("not valid PEM certificates: {error}")))?;
        if certificates.is_empty() {
            return Err(ca_error(
                "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        return Ok(certificates);
    }
    native_tls::Certificate::from_der(&bytes)
        .map(|certificate| vec![certificate])
        .map_err(|error| ca_error(format!("neither PEM nor a DER certificate: {error}")))
}

/// OpenSSL's error text made readable: `error:0A000086:SSL routines:tls_post_process_server_certificate:certificate
/// verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)` becomes `certificate verify failed:
/// self-signed certificate`. Common cases get a hint; text in another shape is kept as it is.
pub(crate) fn tidy_tls_error(message: &str) -> String {
    let message = message.trim();
    let tidied = if message.starts_with("error:") {
        // A verify result, when there is one, is appended as " (reason)" after the error stack.
        let (stack, verify) = match message.rfind(" (") {
            Some(open) if message.ends_with(')') => (
                &message[..open],
                Some(&message[open + 2..message.len() - 1]),
            ),
            _ => (message, None),
        };
        let mut reasons: Vec<&str> = Vec::new();
        for entry in stack
            .split("error:")
            .filter(|entry| !entry.trim().is_empty())
        {
            // code:library:function:reason:file:line:data
            let reason = entry.split(':').nth(3).map(str::trim).unwrap_or("");
            if !reason.is_empty() && !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        if reasons.is_empty() {
            message.to_string()
        } else {
            let mut tidied = reasons.join("; ");
            if let Some(verify) = verify {
                tidied.push_str(": ");
                tidied.push_str(verify);
            }
            tidied
        }
    } else {
        message.to_string()
    };

    let lower = tidied.to_ascii_lowercase();
    if lower.contains("wrong version number") || lower.contains("packet length too long") {
        format!("{tidied} (the server did not answer with TLS: is this a plaintext port that needs STARTTLS?)")
    } else if lower.contains("unexpected eof") {
        format!("{tidied} (the server closed the connection during the handshake)")
    } else {
        tidied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_support::{listener, write_ca_file};
    use crate::transport::{lab_cert, tls_acceptor, Endpoint, Transport};
    use std::time::Duration as StdDuration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: StdDuration = StdDuration::from_secs(5);

    /// A one-shot implicit-TLS server on 127.0.0.1: handshake, send a greeting, wait for the client to hang up.
    /// Returns its port and a handle whose result says whether the server's handshake succeeded.
    async fn tls_server(
        lab: &lab_cert::LabCertificates,
    ) -> (u16, tokio::task::JoinHandle<Result<(), String>>) {
        let acceptor = tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes(),
        )
        .expect("acceptor");
        let (listener, port) = listener().await;
        let handle = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|error| error.to_string())?;
            let mut tls = acceptor
                .accept(tcp)
                .await
                .map_err(|error| error.to_string())?;
            tls.write_all(b"* OK lab ready\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
            Ok(())
        });
        (port, handle)
    }

    async fn client(
        port: u16,
        host: &str,
        options: &TlsOptions,
    ) -> Result<(Transport, CertificateInfo), TransportError> {
        let (transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        transport.upgrade_tls(host, options).await
    }

    #[tokio::test]
    async fn verifies_with_the_lab_ca() {
        let lab =
            lab_cert::generate(&["localhost", "127.0.0.1", "::1"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let (mut transport, info) = client(port, "localhost", &options)
            .await
            .expect("handshake verifies");

        assert!(transport.is_tls());
        assert_eq!(info.verification, Verification::Verified);
        assert_eq!(info.sans, vec!["localhost", "127.0.0.1", "::1"]);
        assert!(
            info.days_left == 29 || info.days_left == 30,
            "{}",
            info.days_left
        );
        assert!(info.handshake_ms > 0.0);
        let mut buf = [0u8; 64];
        let n = transport.read_some(&mut buf).await.expect("greeting");
        assert_eq!(&buf[..n], b"* OK lab ready\r\n");
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn verifies_an_ip_literal_against_ip_sans() {
        let lab = lab_cert::generate(&["localhost", "127.0.0.1"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let (transport, info) = client(port, "127.0.0.1", &options)
            .await
            .expect("IP SAN verifies");

        assert_eq!(info.verification, Verification::Verified);
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn fails_to_verify_without_the_ca() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let (port, server) = tls_server(&lab).await;

        let error = client(port, "localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("an unknown CA does not verify");

        assert!(error.is_tls(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("TLS handshake failed: certificate verify failed"),
            "{text}"
        );
        assert!(
            !text.contains("statem"),
            "OpenSSL's file names are tidied away: {text}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_wrong_host_name_fails_to_verify() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let error = client(port, "imap.example.com", &options)
            .await
            .map(|_| ())
            .expect_err("the certificate does not name the host");

        let text = error.to_string();
        assert!(
            text.contains("verify failed") && text.to_lowercase().contains("hostname mismatch"),
            "{text}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn insecure_reports_not_checked() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: None,
            insecure: true,
        };

        let (transport, info) = client(port, "imap.example.com", &options)
            .await
            .expect("insecure accepts");

        assert_eq!(
            info.verification,
            Verification::NotChecked {
                reason: INSECURE_REASON.into()
            }
        );
        assert_eq!(info.subject, "CN=localhost");
        assert!(!info.names_host("imap.example.com"));
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn an_expired_certificate_fails_with_a_clear_reason() {
        let now = SystemTime::now();
        let lab = lab_cert::generate_with_validity(
            &["localhost"],
            now - StdDuration::from_secs(30 * 86_400),
            now - StdDuration::from_secs(2 * 86_400),
        )
        .expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let error = client(port, "localhost", &options)
            .await
            .map(|_| ())
            .expect_err("expired");

        assert_eq!(
            error.to_string(),
            "TLS handshake failed: certificate verify failed: certificate has expired"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn an_expired_certificate_is_reported_with_insecure() {
        let now = SystemTime::now();
        let lab = lab_cert::generate_with_validity(
            &["localhost"],
            now - StdDuration::from_secs(30 * 86_400),
            now - StdDuration::from_secs(2 * 86_400),
        )
        .expect("lab certificates");
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: None,
            insecure: true,
        };

        let (transport, info) = client(port, "localhost", &options)
            .await
            .expect("insecure accepts");

        assert!(info.is_expired());
        assert!(
            info.days_left == -3 || info.days_left == -2,
            "{}",
            info.days_left
        );
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn a_plaintext_server_is_not_tls() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"* OK plaintext IMAP here\r\n").await;
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
            }
        });

        let error = client(port, "localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("not TLS");

        assert!(error.is_tls(), "{error:?}");
        assert!(error.to_string().contains("STARTTLS"), "{error}");
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_silent_server_times_out_the_handshake() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(StdDuration::from_secs(2)).await;
            drop(accepted);
        });
        let (mut transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        transport.set_timeout(StdDuration::from_millis(200));

        let error = transport
            .upgrade_tls("localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("no handshake");

        assert!(
            matches!(
                error,
                TransportError::Timeout {
                    phase: phase::TLS_HANDSHAKE,
                    ..
                }
            ),
            "{error:?}"
        );
        server.abort();
        let _ = server.await;
    }

    #[tokio::test]
    async fn starttls_upgrades_after_a_plaintext_exchange() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let acceptor = tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes(),
        )
        .expect("acceptor");
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|error| error.to_string())?;
            let mut plain = Transport::from_tcp(tcp, TIMEOUT);
            plain
                .write_all(b"* OK ready\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut buf = [0u8; 64];
            let n = plain
                .read_some(&mut buf)
                .await
                .map_err(|error| error.to_string())?;
            if &buf[..n] != b"a STARTTLS\r\n" {
                return Err(format!("unexpected command {:?}", &buf[..n]));
            }
            plain
                .write_all(b"a OK begin TLS now\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut tls = plain
                .accept_tls(&acceptor)
                .await
                .map_err(|error| error.to_string())?;
            let n = tls
                .read_some(&mut buf)
                .await
                .map_err(|error| error.to_string())?;
            tls.write_all(&buf[..n])
                .await
                .map_err(|error| error.to_string())?;
            tls.close().await;
            Ok::<(), String>(())
        });

        let (mut transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        let mut buf = [0u8; 64];
        let n = transport.read_some(&mut buf).await.expect("greeting");
        assert_eq!(&buf[..n], b"* OK ready\r\n");
        transport
            .write_all(b"a STARTTLS\r\n")
            .await
            .expect("send STARTTLS");
        let n = transport.read_some(&mut buf).await.expect("tagged OK");
        assert_eq!(&buf[..n], b"a OK begin TLS now\r\n");
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };
        let (mut tls, info) = transport
            .upgrade_tls("localhost", &options)
            .await
            .expect("upgrade");
        assert_eq!(info.verification, Verification::Verified);
        tls.write_all(b"b NOOP\r\n").await.expect("send over TLS");
        let n = tls.read_some(&mut buf).await.expect("echo over TLS");
        assert_eq!(&buf[..n], b"b NOOP\r\n");

        let again = tls
            .upgrade_tls("localhost", &options)
            .await
            .map(|_| ())
            .expect_err("already TLS");
        assert!(matches!(again, TransportError::AlreadyTls), "{again:?}");
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_a_setup_error() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        let options = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/imapref-ca.pem")),
            insecure: false,
        };

        let error = client(port, "localhost", &options)
            .await
            .map(|_| ())
            .expect_err("no CA file");

        assert!(matches!(error, TransportError::CaFile { .. }), "{error:?}");
        assert_eq!(error.phase(), phase::SETUP);
        let _ = server.await;
    }

    #[test]
    fn a_ca_file_may_hold_several_certificates() {
        let first = lab_cert::generate(&["a.example"], 1).expect("lab certificates");
        let second = lab_cert::generate(&["b.example"], 1).expect("lab certificates");
        let file = write_ca_file(&format!("# two lab CAs\n{}{}", first.ca_pem, second.ca_pem));
        assert_eq!(load_ca_file(file.path()).expect("loads").len(), 2);

        let empty = write_ca_file("no certificates here\n");
        let error = load_ca_file(empty.path())
            .map(|found| found.len())
            .expect_err("nothing to load");
        assert!(matches!(error, TransportError::CaFile { .. }), "{error:?}");
    }

    #[test]
    fn openssl_messages_are_tidied() {
        assert_eq!(
            tidy_tls_error(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:\
                 ../ssl/statem/statem_clnt.c:1889: (self-signed certificate)"
            ),
            "certificate verify failed: self-signed certificate"
        );
        assert_eq!(
            tidy_tls_error("error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:"),
            "wrong version number (the server did not answer with TLS: is this a plaintext port that needs STARTTLS?)"
        );
        assert_eq!(
            tidy_tls_error("unexpected EOF"),
            "unexpected EOF (the server closed the connection during the handshake)"
        );
        assert_eq!(
            tidy_tls_error("Connection reset by peer (os error 104)"),
            "Connection reset by peer (os error 104)"
        );
    }
}
