//! The lab's sockets: one accept loop per listener, and the driver that runs a [`Connection`] over a socket: framing
//! with small limits, `+` continuations for synchronizing literals, the STARTTLS upgrade, the idle timeout, the
//! connection limit and shutdown, and the per-connection [`ConnectionRecord`] with its round-trip count.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::server::{Connection, Reply, ServerSpec};
use crate::serve::{Incoming, Input, InputLimits, CONTINUE};

/// Limits that keep one client (or many) from making the lab use unbounded memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection that sends nothing for this long gets `* BYE Autologout; idle for too long`. Default 60 s:
    /// long enough to type the KB's commands by hand, short enough that forgotten sessions go away.
    pub idle_timeout: Duration,
    /// The TLS handshake (implicit TLS or after STARTTLS) must finish within this. Default 10 s.
    pub handshake_timeout: Duration,
    /// Connections open at once across the whole lab; more get `* BYE` and are closed. Default 1024: far above
    /// what a probe or a load test needs, low enough to stay under the usual 1024+ file-descriptor limit.
    pub max_connections: usize,
    /// The longest command line. Default 64 KiB: real commands are far shorter.
    pub max_line: usize,
    /// The largest literal a client may send (a password, a mailbox name). Default 64 KiB; bigger gets `* BAD` and
    /// the connection is closed.
    pub max_literal: usize,
    /// Replies are written once this many bytes are waiting, so a client that pipelines many FETCHes in one read
    /// cannot make the lab buffer all the answers. Default 64 KiB.
    pub write_chunk: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_line: 64 * 1024,
            max_literal: 64 * 1024,
            write_chunk: 64 * 1024,
        }
    }
}

/// How long connections get to say BYE when the lab shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How long closing a connection (TLS close_notify, FIN) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How many connection records [`Shared::connections`] keeps: the newest, so that a lab left running for days does
/// not grow.
pub const RECORDS_KEPT: usize = 1024;

/// One connection as the lab saw it, for tests that count round trips (see [`Lab::connections`](super::Lab::connections)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The server's role (`front`, `home`, ...).
    pub role: String,
    /// True when it arrived on the implicit-TLS listener.
    pub implicit_tls: bool,
    /// Round trips as the client sees them, counted on the server side: the number of times the server, having
    /// read new input it was waiting for, answered. The greeting is not one; bytes the client pipelined in one write
    /// and the server read at once get one answer, so one round trip; the `+` continuation of a synchronizing
    /// literal is one; the TLS handshake's own round trips (implicit TLS, after STARTTLS) are not counted; a BYE
    /// sent on an idle timeout or at shutdown is not an answer.
    pub round_trips: u32,
    /// True once the connection has ended.
    pub closed: bool,
}

/// The live counters behind a [`ConnectionRecord`].
#[derive(Debug)]
pub(crate) struct ConnectionCounters {
    role: String,
    implicit_tls: bool,
    round_trips: AtomicU32,
    closed: AtomicBool,
}

impl ConnectionCounters {
    fn record(&self) -> ConnectionRecord {
        ConnectionRecord {
            role: self.role.clone(),
            implicit_tls: self.implicit_tls,
            round_trips: self.round_trips.load(Ordering::SeqCst),
            closed: self.closed.load(Ordering::SeqCst),
        }
    }
}

/// Marks the connection closed however its task ends (also when aborted).
struct ClosedOnDrop(Arc<ConnectionCounters>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
    }
}

/// What every accept loop shares.
pub(crate) struct Shared {
    /// Connections accepted so far, on every listener.
    pub connections_served: AtomicU64,
    /// The newest [`RECORDS_KEPT`] connections, in the order they were accepted.
    pub connections: Mutex<VecDeque<Arc<ConnectionCounters>>>,
    /// One permit per open connection.
    pub slots: Arc<Semaphore>,
    /// The limits.
    pub limits: ConnectionLimits,
    /// The TLS side, for implicit TLS and STARTTLS.
    pub acceptor: tokio_native_tls::TlsAcceptor,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connections_served", &self.connections_served)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A new connection's counters, kept in the record list.
    fn register(&self, role: &str, implicit_tls: bool) -> Arc<ConnectionCounters> {
        let counters = Arc::new(ConnectionCounters {
            role: role.to_string(),
            implicit_tls,
            round_trips: AtomicU32::new(0),
            closed: AtomicBool::new(false),
        });
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if connections.len() >= RECORDS_KEPT {
            connections.pop_front();
        }
        connections.push_back(Arc::clone(&counters));
        counters
    }

    /// A snapshot of the kept connection records, oldest first.
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|counters| counters.record())
            .collect()
    }
}

/// Accepts connections on `listener` until `stop` turns true (or its sender goes away), then gives open
/// connections [`SHUTDOWN_GRACE`] to say BYE and aborts the rest. Dropping (aborting) this task aborts every
/// connection it spawned.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    spec: Arc<ServerSpec>,
    implicit_tls: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let for_connections = stop.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    shared.connections_served.fetch_add(1, Ordering::Relaxed);
                    let counters = shared.register(&spec.plan.role, implicit_tls);
                    let permit = Arc::clone(&shared.slots).try_acquire_owned();
                    let spec = Arc::clone(&spec);
                    let shared = Arc::clone(&shared);
                    let stop = for_connections.clone();
                    connections.spawn(async move {
                        let closed = ClosedOnDrop(counters);
                        match permit {
                            Ok(_permit) => serve(socket, &spec, implicit_tls, &shared, &closed.0, stop).await,
                            Err(_) => refuse(socket, &shared.limits).await,
                        }
                    });
                }
                // Out of file descriptors or similar: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let _ = timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

/// Resolves once the lab is told to stop (or the lab is gone). The watch guard is dropped before returning, so
/// nothing holds it across an await.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Too many connections: say so and close.
async fn refuse(mut socket: TcpStream, limits: &ConnectionLimits) {
    let _ = timeout(
        limits.handshake_timeout,
        socket.write_all(b"* BYE Too many connections to the imapref lab; try again later\r\n"),
    )
    .await;
    let _ = timeout(CLOSE_TIMEOUT, socket.shutdown()).await;
}

/// How a run over one stream ended.
enum Ending {
    /// The connection is over.
    Closed,
    /// STARTTLS was accepted: run the handshake on the same socket.
    StartTls,
}

/// One connection, from greeting to close.
async fn serve(
    socket: TcpStream,
    spec: &ServerSpec,
    implicit_tls: bool,
    shared: &Shared,
    counters: &ConnectionCounters,
    mut stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let round_trips = &counters.round_trips;
    let limits = &shared.limits;
    let mut connection = Connection::new(spec, implicit_tls);
    if implicit_tls {
        let Ok(Ok(mut tls)) =
            timeout(limits.handshake_timeout, shared.acceptor.accept(socket)).await
        else {
            return;
        };
        let _ = drive(
            &mut tls,
            &mut connection,
            true,
            limits,
            round_trips,
            &mut stop,
        )
        .await;
        let _ = timeout(CLOSE_TIMEOUT, tls.shutdown()).await;
        return;
    }
    let mut socket = socket;
    match drive(
        &mut socket,
        &mut connection,
        true,
        limits,
        round_trips,
        &mut stop,
    )
    .await
    {
        Ok(Ending::StartTls) => {
            let Ok(Ok(mut tls)) =
                timeout(limits.handshake_timeout, shared.acceptor.accept(socket)).await
            else {
                return;
            };
            connection.tls_started();
            let _ = drive(
                &mut tls,
                &mut connection,
                false,
                limits,
                round_trips,
                &mut stop,
            )
            .await;
            let _ = timeout(CLOSE_TIMEOUT, tls.shutdown()).await;
        }
        Ok(Ending::Closed) | Err(_) => {
            let _ = timeout(CLOSE_TIMEOUT, socket.shutdown()).await;
        }
    }
}

/// Appends the data of `replies` to `out`; the ending if one of them ends this stream.
fn collect(replies: Vec<Reply>, out: &mut Vec<u8>) -> Option<Ending> {
    for reply in replies {
        match reply {
            Reply::Data(bytes) => out.extend_from_slice(&bytes),
            Reply::StartTls => return Some(Ending::StartTls),
            Reply::Close => return Some(Ending::Closed),
        }
    }
    None
}

/// Whether the server is answering input it was waiting for, and the connection's round-trip count.
struct Answering<'a> {
    /// True from a read of new input until the first write after it.
    fresh_input: bool,
    round_trips: &'a AtomicU32,
}

impl Answering<'_> {
    /// Called before bytes are written: the first write after new input is one round trip.
    fn answered(&mut self) {
        if std::mem::take(&mut self.fresh_input) {
            self.round_trips.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Writes `out` (within the idle timeout) and clears it. With `answering`, a write that answers fresh input
/// counts a round trip (counted before the write, so a client that has read the answer sees it counted).
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    limits: &ConnectionLimits,
    answering: Option<&mut Answering<'_>>,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if let Some(answering) = answering {
        answering.answered();
    }
    let write = async {
        stream.write_all(out).await?;
        stream.flush().await
    };
    match timeout(limits.idle_timeout, write).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timed out",
            ))
        }
    }
    out.clear();
    Ok(())
}

/// Runs `connection` over `stream` until it closes or asks for STARTTLS. With `greet`, sends the greeting first.
/// A fresh framer is used for every stream, so bytes pipelined after STARTTLS are discarded.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    connection: &mut Connection<'_>,
    greet: bool,
    limits: &ConnectionLimits,
    round_trips: &AtomicU32,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<Ending> {
    let mut answering = Answering {
        fresh_input: false,
        round_trips,
    };
    let mut input = Input::new(InputLimits {
        max_line: limits.max_line,
        max_literal: limits.max_literal,
    });
    let mut out = Vec::new();
    if greet {
        if let Some(ending) = collect(connection.greeting(), &mut out) {
            flush(stream, &mut out, limits, None).await?;
            return Ok(ending);
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        loop {
            let replies = match input.next_incoming() {
                None => break,
                Some(Incoming::Continue) => {
                    out.extend_from_slice(CONTINUE);
                    continue;
                }
                Some(Incoming::Command(bytes)) => connection.handle_input(&bytes),
                Some(Incoming::Invalid(reason)) => connection.input_error(&reason),
            };
            if let Some(ending) = collect(replies, &mut out) {
                flush(stream, &mut out, limits, Some(&mut answering)).await?;
                return Ok(ending);
            }
            if out.len() >= limits.write_chunk {
                flush(stream, &mut out, limits, Some(&mut answering)).await?;
            }
        }
        flush(stream, &mut out, limits, Some(&mut answering)).await?;
        let read = tokio::select! {
            read = timeout(limits.idle_timeout, stream.read(&mut buf)) => read,
            () = stopped(stop) => {
                collect(connection.shutting_down(), &mut out);
                flush(stream, &mut out, limits, None).await?;
                return Ok(Ending::Closed);
            }
        };
        match read {
            Err(_) => {
                collect(connection.idle_timeout(), &mut out);
                flush(stream, &mut out, limits, None).await?;
                return Ok(Ending::Closed);
            }
            Ok(Ok(0)) => return Ok(Ending::Closed),
            Ok(Ok(n)) => {
                answering.fresh_input = true;
                input.feed(buf.get(..n).unwrap_or_default());
            }
            Ok(Err(error)) => return Err(error),
        }
    }
}
