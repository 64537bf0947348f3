//! The listening side: one accept loop, a slot per open connection (`--max-connections`; more get `* BYE` and are
//! closed at once), one task per client, and shutdown (stop accepting, end the sessions, each with its log line).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::conn;
use super::record::{Outcome, SessionRecord};
use super::shared::Shared;
use crate::session::millis_since;

/// How long sessions get to log their line when the proxy stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// What a connection over `--max-connections` gets before it is closed.
const TOO_MANY: &[u8] = b"* BYE Too many connections to the proxy; try again later\r\n";

/// Accepts until `stop` turns true (or its sender goes away), then aborts the sessions.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let for_sessions = stop.clone();
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    match Arc::clone(&shared.slots).try_acquire_owned() {
                        Ok(permit) => {
                            let mut stop = for_sessions.clone();
                            sessions.spawn(async move {
                                let started = Instant::now();
                                let mut record = SessionRecord::new(peer.to_string());
                                let cut_short = tokio::select! {
                                    () = conn::serve(socket, &shared, &mut record) => false,
                                    () = stopped(&mut stop) => true,
                                };
                                if cut_short {
                                    record.outcome = Outcome::Shutdown;
                                    record.detail = Some("the proxy was stopped".into());
                                }
                                record.total_ms = millis_since(started);
                                // The slot is free before the line says the session ended.
                                drop(permit);
                                shared.log.session(&record);
                            });
                        }
                        Err(_) => {
                            // Over the limit: the BYE goes in one write that does not wait (a new socket's buffer
                            // holds it) and the socket is closed at once, so a flood of connections holds nothing.
                            let _ = socket.try_write(TOO_MANY);
                            drop(socket);
                            let mut record = SessionRecord::new(peer.to_string());
                            record.outcome = Outcome::TooManyConnections;
                            shared.log.session(&record);
                        }
                    }
                }
                // Out of file descriptors or similar: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    // Every session sees the stop, closes its sockets and logs its line; stragglers are aborted.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.shutdown().await;
}

/// Resolves once the proxy is told to stop (or the proxy is gone); the guard is dropped before returning.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
