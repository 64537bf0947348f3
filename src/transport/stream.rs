//! [`Transport`]: one connected byte stream, plaintext or TLS, with a timeout on every read, write and handshake.
//! It moves bytes only; the session layer decides what they mean and when to upgrade.

use std::net::SocketAddr;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

use super::certificate::CertificateInfo;
use super::endpoint::Endpoint;
use super::error::{phase, TransportError};
use super::tcp::{self, ConnectInfo};
use super::tls::{self, TlsOptions};

/// How long [`Transport::close`] waits for the TLS close_notify and the TCP shutdown before giving up.
pub const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

/// A connected byte stream, plain or TLS, with a timeout on every read and write.
pub struct Transport {
    stream: Stream,
    timeout: Duration,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
}

/// The socket, before or after TLS: the client side uses OpenSSL directly, the server side (the lab) native-tls.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Client(Box<tls::ClientStream>),
}

impl Transport {
    /// Resolves `endpoint` (`tokio::net::lookup_host`) and tries every address in order until one connects, each
    /// attempt bounded by `timeout`; the resolve is bounded by `timeout` too. Every attempt is recorded in the
    /// returned [`ConnectInfo`]. The transport keeps `timeout` for later reads, writes and handshakes.
    pub async fn connect(
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<(Transport, ConnectInfo), TransportError> {
        let (tcp, info) = tcp::connect(endpoint, timeout).await?;
        Ok((Transport::from_tcp(tcp, timeout), info))
    }

    /// Wraps a TCP connection that is already open, such as one the lab server accepted.
    pub fn from_tcp(stream: TcpStream, timeout: Duration) -> Transport {
        Transport {
            peer: stream.peer_addr().ok(),
            local: stream.local_addr().ok(),
            stream: Stream::Plain(stream),
            timeout,
        }
    }

    /// The client TLS handshake: right after connect for implicit TLS (port 993 style), or after the server's OK to
    /// STARTTLS. SNI and the host name check use `host` (for an IP literal the certificate's IP SANs are checked);
    /// `options.ca_file` adds trusted roots; `options.insecure` accepts any certificate and host name.
    ///
    /// Returns the encrypted transport and the server certificate's details. Fails with [`TransportError::Tls`]
    /// carrying the TLS library's reason (e.g. "certificate verify failed: self-signed certificate") when the
    /// handshake or the verification fails, with [`TransportError::Timeout`] after the transport's timeout, and with
    /// [`TransportError::AlreadyTls`] on a connection that is already encrypted.
    pub async fn upgrade_tls(
        self,
        host: &str,
        options: &TlsOptions,
    ) -> Result<(Transport, CertificateInfo), TransportError> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(TransportError::AlreadyTls);
        };
        let (stream, info) = tls::connect(tcp, host, options, self.timeout).await?;
        let transport = Transport {
            stream: Stream::Client(Box::new(stream)),
            ..self
        };
        Ok((transport, info))
    }

    /// The server TLS handshake with `acceptor` (see [`tls_acceptor`](super::tls_acceptor)), bounded by the timeout:
    /// for the lab server's implicit TLS, or after it answered OK to STARTTLS.
    pub async fn accept_tls(
        self,
        acceptor: &tokio_native_tls::TlsAcceptor,
    ) -> Result<Transport, TransportError> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(TransportError::AlreadyTls);
        };
        let stream = tls::accept(tcp, acceptor, self.timeout).await?;
        Ok(Transport {
            stream: Stream::Tls(Box::new(stream)),
            ..self
        })
    }

    /// True once the TLS handshake has completed.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_) | Stream::Client(_))
    }

    /// Reads whatever is available into `buf` (at most `buf.len()` bytes), waiting at most the timeout.
    /// `Ok(0)` means the peer closed the connection (or `buf` is empty). A reset gives [`TransportError::Reset`],
    /// silence [`TransportError::Timeout`] with phase `"read"`. A TLS peer that drops the TCP connection without a
    /// close_notify gives `Ok(0)` or [`TransportError::Closed`], depending on the TLS library; treat both as "the
    /// server hung up".
    pub async fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let timeout = self.timeout;
        let read = async {
            match &mut self.stream {
                Stream::Plain(stream) => stream.read(buf).await,
                Stream::Tls(stream) => stream.read(buf).await,
                Stream::Client(stream) => stream.read(buf).await,
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Err(_) => Err(TransportError::Timeout {
                phase: phase::READ,
                after: timeout,
            }),
            Ok(result) => result.map_err(TransportError::from_stream_io),
        }
    }

    /// Writes all of `bytes` and flushes, bounded by the timeout.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let timeout = self.timeout;
        let write = async {
            match &mut self.stream {
                Stream::Plain(stream) => write_and_flush(stream, bytes).await,
                Stream::Tls(stream) => write_and_flush(stream.as_mut(), bytes).await,
                Stream::Client(stream) => write_and_flush(stream.as_mut(), bytes).await,
            }
        };
        match tokio::time::timeout(timeout, write).await {
            Err(_) => Err(TransportError::Timeout {
                phase: phase::WRITE,
                after: timeout,
            }),
            Ok(result) => result.map_err(TransportError::from_stream_io),
        }
    }

    /// Changes the timeout for the following reads, writes and handshakes.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The timeout applied to each read, write and handshake.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Best-effort close: sends TLS close_notify (when encrypted) and shuts the write side down, waiting at most
    /// [`CLOSE_TIMEOUT`]. Never fails: the connection is dropped either way.
    pub async fn close(mut self) {
        let shutdown = async {
            match &mut self.stream {
                Stream::Plain(stream) => stream.shutdown().await,
                Stream::Tls(stream) => {
                    // close_notify first, then the TCP FIN, so the server sees an orderly end.
                    let notified = stream.shutdown().await;
                    let _ = stream.get_mut().get_mut().get_mut().shutdown().await;
                    notified
                }
                Stream::Client(stream) => {
                    let notified = stream.shutdown().await;
                    let _ = stream.get_mut().shutdown().await;
                    notified
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, shutdown).await;
    }

    /// The server's address (`ip:port`), when the socket knew it at connect time.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Our own address for this connection (`ip:port`), when the socket knew it at connect time.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.is_tls())
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The stream without the transport's timeouts, for a byte relay that bounds its own waits (the proxy).
impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

/// The stream without the transport's timeouts, for a byte relay that bounds its own waits (the proxy).
impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

async fn write_and_flush<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    bytes: &[u8],
) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_support::listener;
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn bytes_go_both_ways() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|error| error.to_string())?;
            let mut server = Transport::from_tcp(tcp, TIMEOUT);
            server
                .write_all(b"* OK hello\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut buf = [0u8; 64];
            let n = server
                .read_some(&mut buf)
                .await
                .map_err(|error| error.to_string())?;
            Ok::<Vec<u8>, String>(buf[..n].to_vec())
        });

        let (mut client, info) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");
        assert!(!client.is_tls());
        assert_eq!(
            client.peer_addr().map(|peer| peer.to_string()),
            Some(info.connected_to.clone())
        );
        assert_eq!(client.timeout(), TIMEOUT);
        let mut buf = [0u8; 64];
        let n = client.read_some(&mut buf).await.expect("greeting");
        assert_eq!(&buf[..n], b"* OK hello\r\n");
        client.write_all(b"a LOGOUT\r\n").await.expect("writes");
        assert_eq!(
            server.await.expect("server task"),
            Ok(b"a LOGOUT\r\n".to_vec())
        );

        // The server has gone: a clean end of stream.
        assert_eq!(client.read_some(&mut buf).await.expect("clean close"), 0);
        client.close().await;
    }

    #[tokio::test]
    async fn a_silent_server_times_out_the_read() {
        let (listener, port) = listener().await;
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let accepted = listener.accept().await;
            let _ = released.await;
            drop(accepted);
        });
        let (mut client, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");
        client.set_timeout(Duration::from_millis(200));
        let started = Instant::now();

        let mut buf = [0u8; 16];
        let error = client
            .read_some(&mut buf)
            .await
            .expect_err("nothing to read");

        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(error.to_string(), "timed out after 200 ms during read");
        let _ = release.send(());
        let _ = server.await;
        client.close().await;
    }

    #[tokio::test]
    async fn a_reset_mid_read_is_a_reset_not_a_hang() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = tcp.set_zero_linger();
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(tcp);
            }
        });
        let (mut client, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");

        let mut buf = [0u8; 16];
        let result = client.read_some(&mut buf).await;

        assert!(
            matches!(result, Err(TransportError::Reset { .. })),
            "{result:?}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_close_mid_read_ends_the_stream_not_a_hang() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"* OK partial").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let (mut client, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");

        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        loop {
            let n = client.read_some(&mut buf).await.expect("clean close");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"* OK partial");
        let _ = server.await;
    }

    #[tokio::test]
    async fn tls_peer_vanishing_without_close_notify_is_closed() {
        let lab =
            crate::transport::lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let acceptor = crate::transport::tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes(),
        )
        .expect("acceptor");
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"* OK ").await;
                    // Drop the TCP socket under the TLS session: no close_notify.
                    let _ = tls.get_mut().get_mut().get_mut().shutdown().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let (client, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");
        let options = TlsOptions {
            ca_file: None,
            insecure: true,
        };
        let (mut client, _) = client
            .upgrade_tls("localhost", &options)
            .await
            .expect("handshake");

        let mut buf = [0u8; 64];
        let n = client.read_some(&mut buf).await.expect("first bytes");
        assert_eq!(&buf[..n], b"* OK ");
        let result = client.read_some(&mut buf).await;

        // OpenSSL 3 reports the missing close_notify; older libraries report a clean end of stream.
        assert!(
            matches!(result, Err(TransportError::Closed) | Ok(0)),
            "{result:?}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn writing_to_a_reset_connection_fails_quickly() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_zero_linger();
                drop(tcp);
            }
        });
        let (mut client, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects");
        let _ = server.await;
        tokio::time::sleep(Duration::from_millis(50)).await;

        // The first write may still be accepted by the kernel; a later one must fail.
        let mut result = Ok(());
        for _ in 0..10 {
            result = client.write_all(b"a NOOP\r\n").await;
            if result.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            matches!(result, Err(TransportError::Reset { .. })),
            "{result:?}"
        );
    }
}
