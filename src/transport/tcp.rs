//! TCP: resolve a host name, try every address it resolves to in order until one connects, and record each attempt
//! ([`ConnectInfo`], [`AddressAttempt`]) so the report can say "::1 refused, 127.0.0.1 answered".

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::endpoint::Endpoint;
use super::error::{describe_io_error, human_duration, millis, phase, TransportError};

/// What happened while connecting: the addresses tried, the one that answered, and how long it took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectInfo {
    /// The endpoint as given, `host:port` or `[v6]:port`.
    pub endpoint: String,
    /// Every address tried, in order; the last one is the one that connected.
    pub addresses_tried: Vec<AddressAttempt>,
    /// The address that answered, `ip:port` (`[v6]:port` for IPv6).
    pub connected_to: String,
    /// Time spent resolving the name, in milliseconds.
    pub resolve_ms: f64,
    /// Time from the first connect attempt to the established connection (failed attempts included), in
    /// milliseconds.
    pub connect_ms: f64,
}

/// One TCP connect attempt to one resolved address.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AddressAttempt {
    /// The address tried, `ip:port` (`[v6]:port` for IPv6).
    pub address: String,
    /// [`AddressAttempt::CONNECTED`], or why the attempt failed ("connection refused", "timed out after 5 s").
    pub outcome: String,
    /// How long the attempt took, in milliseconds.
    pub ms: f64,
}

impl AddressAttempt {
    /// The `outcome` of the attempt that succeeded.
    pub const CONNECTED: &'static str = "connected";

    /// True when this attempt connected.
    pub fn connected(&self) -> bool {
        self.outcome == Self::CONNECTED
    }
}

/// One attempt, plus whether it failed by timing out (which decides the error reported when all of them fail).
struct Attempt {
    record: AddressAttempt,
    timed_out: bool,
}

/// Resolves `endpoint` and connects to the first address that accepts, each step bounded by `timeout`.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<(TcpStream, ConnectInfo), TransportError> {
    let resolve_started = Instant::now();
    let addresses = resolve(endpoint, timeout).await?;
    let resolve_ms = millis(resolve_started.elapsed());

    let connect_started = Instant::now();
    let (stream, attempts) = connect_addresses(&endpoint.to_string(), &addresses, timeout).await?;
    let connect_ms = millis(connect_started.elapsed());

    let connected_to = attempts
        .last()
        .map(|attempt| attempt.address.clone())
        .unwrap_or_default();
    let info = ConnectInfo {
        endpoint: endpoint.to_string(),
        addresses_tried: attempts,
        connected_to,
        resolve_ms,
        connect_ms,
    };
    Ok((stream, info))
}

/// Looks `endpoint.host` up (IP literals need no lookup), keeping the resolver's order and dropping duplicates.
async fn resolve(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, TransportError> {
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    let found = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => {
            return Err(TransportError::Timeout {
                phase: phase::RESOLVE,
                after: timeout,
            })
        }
        Ok(Err(error)) => {
            return Err(TransportError::Resolve {
                host: endpoint.host.clone(),
                reason: error.to_string(),
            })
        }
        Ok(Ok(found)) => found,
    };
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for address in found {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err(TransportError::NoAddress {
            host: endpoint.host.clone(),
        });
    }
    Ok(addresses)
}

/// Tries each address in order, each attempt bounded by `timeout`, and returns the first connection with the record
/// of every attempt made (the last one connected).
pub(crate) async fn connect_addresses(
    endpoint: &str,
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, Vec<AddressAttempt>), TransportError> {
    let mut attempts = Vec::with_capacity(addresses.len());
    for address in addresses {
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
        let ms = millis(started.elapsed());
        let (outcome, timed_out, stream) = match result {
            Ok(Ok(stream)) => (AddressAttempt::CONNECTED.to_string(), false, Some(stream)),
            Ok(Err(error)) => (describe_io_error(&error), false, None),
            Err(_) => (
                format!("timed out after {}", human_duration(timeout)),
                true,
                None,
            ),
        };
        attempts.push(Attempt {
            record: AddressAttempt {
                address: address.to_string(),
                outcome,
                ms,
            },
            timed_out,
        });
        if let Some(stream) = stream {
            // Commands are small and interactive; do not let Nagle hold them back. Failing to set it is harmless.
            let _ = stream.set_nodelay(true);
            return Ok((
                stream,
                attempts.into_iter().map(|attempt| attempt.record).collect(),
            ));
        }
    }
    Err(all_failed(endpoint, &attempts, timeout))
}

/// The error for a connect where no attempt succeeded: a timeout when every attempt timed out, otherwise a
/// [`TransportError::Connect`] summarising each attempt.
fn all_failed(endpoint: &str, attempts: &[Attempt], timeout: Duration) -> TransportError {
    if !attempts.is_empty() && attempts.iter().all(|attempt| attempt.timed_out) {
        return TransportError::Timeout {
            phase: phase::CONNECT,
            after: timeout,
        };
    }
    let reason = match attempts {
        [only] if only.record.address == endpoint => only.record.outcome.clone(),
        _ => attempts
            .iter()
            .map(|attempt| format!("{}: {}", attempt.record.address, attempt.record.outcome))
            .collect::<Vec<_>>()
            .join("; "),
    };
    TransportError::Connect {
        endpoint: endpoint.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_support::{closed_port, listener};

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn connects_to_a_local_listener() {
        let (listener, port) = listener().await;
        let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });

        let (_stream, info) = connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("connects to the listener");

        assert_eq!(info.endpoint, format!("127.0.0.1:{port}"));
        assert_eq!(info.connected_to, format!("127.0.0.1:{port}"));
        assert_eq!(info.addresses_tried.len(), 1);
        assert!(info.addresses_tried[0].connected());
        assert!(info.resolve_ms >= 0.0 && info.connect_ms >= 0.0);
        assert!(accept.await.expect("accept task").is_ok());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_quick_connect_error() {
        let port = closed_port().await;
        let started = Instant::now();

        let error = connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect_err("nothing listens");

        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        match &error {
            TransportError::Connect { endpoint, reason } => {
                assert_eq!(endpoint, &format!("127.0.0.1:{port}"));
                assert_eq!(reason, "connection refused");
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!("could not connect to 127.0.0.1:{port}: connection refused")
        );
        assert_eq!(error.phase(), phase::CONNECT);
    }

    #[tokio::test]
    async fn every_address_is_tried_until_one_connects() {
        // Two addresses for one name, the first with nothing listening: the shape of "localhost" resolving to ::1
        // and 127.0.0.1 with a server on IPv4 only, without depending on the machine's /etc/hosts.
        let dead = closed_port().await;
        let (listener, port) = listener().await;
        let addresses: Vec<SocketAddr> = vec![
            SocketAddr::from(([127, 0, 0, 1], dead)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ];
        let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });

        let (_stream, attempts) = connect_addresses("mail.example:143", &addresses, TIMEOUT)
            .await
            .expect("the second address connects");

        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].address, format!("127.0.0.1:{dead}"));
        assert_eq!(attempts[0].outcome, "connection refused");
        assert_eq!(attempts[1].address, format!("127.0.0.1:{port}"));
        assert!(attempts[1].connected());
        assert!(accept.await.expect("accept task").is_ok());
    }

    #[tokio::test]
    async fn localhost_connects_whatever_it_resolves_to() {
        let (listener, port) = listener().await;
        let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });

        let (_stream, info) = connect(&Endpoint::new("localhost", port), TIMEOUT)
            .await
            .expect("localhost reaches 127.0.0.1");

        // Whether or not localhost also resolves to ::1 here, every address before the last one failed and is
        // recorded, and the last one is 127.0.0.1.
        let (last, before) = info
            .addresses_tried
            .split_last()
            .expect("at least one attempt");
        assert!(last.connected());
        assert_eq!(info.connected_to, format!("127.0.0.1:{port}"));
        assert!(before.iter().all(|attempt| !attempt.connected()));
        assert!(accept.await.expect("accept task").is_ok());
    }

    #[tokio::test]
    async fn every_failed_attempt_is_summarised() {
        let first = closed_port().await;
        let second = closed_port().await;
        let addresses: Vec<SocketAddr> = vec![
            SocketAddr::from(([127, 0, 0, 1], first)),
            SocketAddr::from(([127, 0, 0, 1], second)),
        ];

        let error = connect_addresses("mail.example:143", &addresses, TIMEOUT)
            .await
            .expect_err("nothing listens");

        assert_eq!(
            error.to_string(),
            format!(
                "could not connect to mail.example:143: 127.0.0.1:{first}: connection refused; \
                 127.0.0.1:{second}: connection refused"
            )
        );
    }

    #[test]
    fn all_attempts_timing_out_is_a_connect_timeout() {
        let attempt = |address: &str, timed_out: bool| Attempt {
            record: AddressAttempt {
                address: address.into(),
                outcome: if timed_out {
                    "timed out after 5 s".into()
                } else {
                    "network unreachable".into()
                },
                ms: 1.0,
            },
            timed_out,
        };
        let all = [
            attempt("192.0.2.1:143", true),
            attempt("[2001:db8::1]:143", true),
        ];
        let error = all_failed("mail.example:143", &all, TIMEOUT);
        assert!(error.is_timeout());
        assert_eq!(error.phase(), phase::CONNECT);

        let mixed = [
            attempt("192.0.2.1:143", true),
            attempt("[2001:db8::1]:143", false),
        ];
        let error = all_failed("mail.example:143", &mixed, TIMEOUT);
        assert_eq!(
            error.to_string(),
            "could not connect to mail.example:143: 192.0.2.1:143: timed out after 5 s; \
             [2001:db8::1]:143: network unreachable"
        );
    }

    #[tokio::test]
    async fn an_unknown_name_is_a_resolve_error() {
        let error = connect(
            &Endpoint::new("no-such-host.invalid", 143),
            Duration::from_secs(3),
        )
        .await
        .expect_err(".invalid never resolves");
        // Without a working resolver the lookup may time out instead; both are resolve-phase failures.
        assert_eq!(error.phase(), phase::RESOLVE, "{error:?}");
    }
}
