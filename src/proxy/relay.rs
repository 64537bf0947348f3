//! After the login: the bytes of both directions, relayed as they are, with back-pressure (each direction writes
//! what it read before it reads again, through a 16 KiB buffer) and an idle timeout (no byte either way for that
//! long ends the session). The home server's side is watched through the crate's framer, only to log mailbox
//! referrals (`NO [REFERRAL ...]`, RFC 2193), which pass to the client unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proto::code::Code;
use crate::proto::framing::{Frame, Framer, FramerLimits};
use crate::proto::response::{Response, Status};
use crate::transport::Transport;

use super::record::MAX_MAILBOX_REFERRALS;

/// Bytes read at a time in each direction.
const CHUNK: usize = 16 * 1024;

/// How long the other direction may still run once one side has closed (the client's last bytes, a BYE).
const DRAIN: Duration = Duration::from_secs(2);

/// What a relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Bytes from the client to the home server.
    pub up: u64,
    /// Bytes from the home server to the client.
    pub down: u64,
    /// The URLs of the mailbox referrals the home server sent (the first [`MAX_MAILBOX_REFERRALS`]).
    pub mailbox_referrals: Vec<String>,
    /// True when the session ended because nothing moved for the idle time.
    pub idle: bool,
}

/// Watches the home server's responses for mailbox referrals. Its framer streams large literals, so its memory is
/// bounded; if the stream cannot be framed (a compressed stream after COMPRESS), it stops watching.
struct Watch {
    framer: Option<Framer>,
    referrals: Vec<String>,
}

impl Watch {
    fn new() -> Self {
        Watch {
            // Literals are streamed past (never held), and one response's lines may hold 1 MiB: a session's watch
            // costs little whatever the home server sends; past that it stops watching, and the relay goes on.
            framer: Some(Framer::new(FramerLimits {
                max_inline_literal: 0,
                max_response: 1024 * 1024,
                ..FramerLimits::default()
            })),
            referrals: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let Some(framer) = self.framer.as_mut() else {
            return;
        };
        framer.feed(bytes);
        loop {
            match framer.next_frame() {
                Ok(None) => return,
                Ok(Some(Frame::Response(raw))) => {
                    let response = Response::parse(raw);
                    if response.status() == Some(Status::No) && response.tag().is_some() {
                        if let Some(Code::Referral(urls)) = response.code() {
                            for url in urls {
                                if self.referrals.len() < MAX_MAILBOX_REFERRALS {
                                    self.referrals.push(url.raw.clone());
                                }
                            }
                        }
                    }
                }
                Ok(Some(_)) => {}
                Err(_) => {
                    self.framer = None;
                    return;
                }
            }
        }
    }
}

/// Copies `from` to `to` until the end of `from`, then shuts `to` down; counts bytes and marks activity; `watch`
/// sees every byte.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut from: R,
    mut to: W,
    count: &AtomicU64,
    last: &Mutex<Instant>,
    mut watch: Option<&mut Watch>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = tokio::time::timeout(DRAIN, to.shutdown()).await;
            return Ok(());
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if let Some(w) = watch.as_deref_mut() {
            w.feed(chunk);
        }
        to.write_all(chunk).await?;
        to.flush().await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        *last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }
}

/// Relays `client` and `home` until one side closes or nothing moves for `idle`. `home_unread` (the home server's
/// bytes read during the login) goes to the client first, `client_unread` (commands the client pipelined after its
/// login) to the home server first.
pub async fn relay(
    client: Transport,
    home: Transport,
    client_unread: Vec<u8>,
    home_unread: Vec<u8>,
    idle: Duration,
) -> Relayed {
    let (client_read, mut client_write) = tokio::io::split(client);
    let (home_read, mut home_write) = tokio::io::split(home);
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let last = Mutex::new(Instant::now());
    let mut watch = Watch::new();
    let mut relayed = Relayed::default();

    let head = async {
        if !client_unread.is_empty() {
            home_write.write_all(&client_unread).await?;
            up.fetch_add(client_unread.len() as u64, Ordering::Relaxed);
        }
        if !home_unread.is_empty() {
            watch.feed(&home_unread);
            client_write.write_all(&home_unread).await?;
            client_write.flush().await?;
            down.fetch_add(home_unread.len() as u64, Ordering::Relaxed);
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(idle, head).await {
        Err(_) => relayed.idle = true,
        Ok(Err(_)) => {}
        Ok(Ok(())) => {
            let idle_timer = async {
                loop {
                    let since = last
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .elapsed();
                    if since >= idle {
                        return;
                    }
                    tokio::time::sleep(idle - since).await;
                }
            };
            let upward = pump(client_read, home_write, &up, &last, None);
            let downward = pump(home_read, client_write, &down, &last, Some(&mut watch));
            tokio::pin!(upward, downward, idle_timer);
            tokio::select! {
                _ = &mut upward => {
                    // The client closed its side: the home server got the end of stream; its last bytes (a BYE)
                    // still go to the client, briefly.
                    let _ = tokio::time::timeout(DRAIN, &mut downward).await;
                }
                // The home server closed (after LOGOUT, or its own autologout): so did the client's side.
                _ = &mut downward => {}
                () = &mut idle_timer => relayed.idle = true,
            }
        }
    }
    relayed.up = up.load(Ordering::Relaxed);
    relayed.down = down.load(Ordering::Relaxed);
    relayed.mailbox_referrals = watch.referrals;
    relayed
}
