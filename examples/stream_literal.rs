//! Streams a 1 GiB FETCH literal through the [`Framer`] and reports the time, the throughput and the peak memory.
//!
//! The server side is generated on the fly, 64 KiB per read (the session's read size), and never held:
//!
//! ```text
//! * 1 FETCH (BODY[] {1073741824}\r\n
//! <1 GiB of data>
//! )\r\na1 OK FETCH completed\r\n
//! ```
//!
//! The framer runs with its default limits, so a literal above `max_inline_literal` (1 MiB) is handed out as
//! [`Frame::LiteralData`] pieces. The example checks that exactly the announced bytes come out, in order, that both
//! responses parse, and that the peak resident set size (`VmHWM` in `/proc/self/status`) stays under 64 MiB. It exits
//! with status 1 when a check fails.
//!
//! ```text
//! cargo run --release --example stream_literal            # 1 GiB
//! cargo run --release --example stream_literal -- 4096    # another size, in bytes
//! ```

use std::process::ExitCode;
use std::time::Instant;

use imapref::proto::framing::{Frame, Framer};
use imapref::proto::response::{Kind, Response, Status};

/// The literal's size unless one is given on the command line.
const DEFAULT_SIZE: u64 = 1024 * 1024 * 1024;

/// Bytes per read, as the session reads them.
const READ: usize = 64 * 1024;

/// The highest peak RSS accepted.
const MAX_PEAK_RSS: u64 = 64 * 1024 * 1024;

/// The literal's data repeats this many bytes (a prime, so that it never lines up with the read size).
const PERIOD: usize = 251;

/// The literal's byte at `offset`.
fn data_byte(offset: u64) -> u8 {
    u8::try_from(offset % PERIOD as u64).expect("less than 251")
}

/// The server's side of the connection: the stream, produced one read at a time.
struct Server {
    head: Vec<u8>,
    size: u64,
    tail: &'static [u8],
    /// How far the stream has been read.
    pos: u64,
    /// `READ + PERIOD` bytes of the data's pattern: any read's worth of data is one slice of it.
    pattern: Vec<u8>,
}

impl Server {
    fn new(size: u64) -> Self {
        let pattern = (0..(READ + PERIOD) as u64).map(data_byte).collect();
        Server {
            head: format!("* 1 FETCH (BODY[] {{{size}}}\r\n").into_bytes(),
            size,
            tail: b")\r\na1 OK FETCH completed\r\n",
            pos: 0,
            pattern,
        }
    }

    fn len(&self) -> u64 {
        self.head.len() as u64 + self.size + self.tail.len() as u64
    }

    /// Fills `buf` with the next read (at most `READ` bytes); 0 at the end of the stream.
    fn read(&mut self, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        while buf.len() < READ && self.pos < self.len() {
            let head = self.head.len() as u64;
            let want = READ - buf.len();
            if self.pos < head {
                let start = usize::try_from(self.pos).expect("inside the head");
                let end = self.head.len().min(start + want);
                buf.extend_from_slice(&self.head[start..end]);
                self.pos += (end - start) as u64;
            } else if self.pos < head + self.size {
                let offset = self.pos - head;
                let n = usize::try_from((self.size - offset).min(want as u64)).expect("one read");
                let from = usize::try_from(offset % PERIOD as u64).expect("less than 251");
                buf.extend_from_slice(&self.pattern[from..from + n]);
                self.pos += n as u64;
            } else {
                let start = usize::try_from(self.pos - head - self.size).expect("inside the tail");
                let end = self.tail.len().min(start + want);
                buf.extend_from_slice(&self.tail[start..end]);
                self.pos += (end - start) as u64;
            }
        }
        buf.len()
    }
}

/// `VmHWM` (peak resident set size) of this process, in bytes; `None` where `/proc` does not say.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn main() -> ExitCode {
    let size = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => DEFAULT_SIZE,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("stream_literal: the size must be a number of bytes: {e}");
            return ExitCode::from(2);
        }
    };
    match run(size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stream_literal: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(size: u64) -> Result<(), String> {
    let mut server = Server::new(size);
    let total = server.len();
    let mut framer = Framer::default();
    let mut buf = Vec::with_capacity(READ);
    let mut literal_bytes = 0u64;
    let mut data_frames = 0u64;
    let mut responses = Vec::new();

    let started = Instant::now();
    while server.read(&mut buf) > 0 {
        framer.feed(&buf);
        while let Some(frame) = framer.next_frame().map_err(|e| e.to_string())? {
            match frame {
                Frame::LiteralAnnounced { len, streamed, .. } => {
                    if len != size {
                        return Err(format!("announced {len} bytes, expected {size}"));
                    }
                    if streamed != (size > framer.limits().max_inline_literal as u64) {
                        return Err(format!("a literal of {size} bytes streamed: {streamed}"));
                    }
                }
                Frame::LiteralData(data) => {
                    // Spot-check the order: the first and last byte of every piece.
                    let first = data.first().copied();
                    let last = data.last().copied();
                    let end = literal_bytes + data.len() as u64;
                    if first != Some(data_byte(literal_bytes)) || last != Some(data_byte(end - 1)) {
                        return Err(format!("literal data out of order at byte {literal_bytes}"));
                    }
                    literal_bytes = end;
                    data_frames += 1;
                }
                Frame::Response(raw) => responses.push(Response::parse(raw)),
            }
        }
    }
    let elapsed = started.elapsed();
    let peak = peak_rss();

    // The checks.
    let streamed = size > framer.limits().max_inline_literal as u64;
    let expected_streamed = if streamed { size } else { 0 };
    if literal_bytes != expected_streamed {
        return Err(format!(
            "{literal_bytes} bytes of literal data came out, expected {expected_streamed}"
        ));
    }
    if !framer.is_idle() {
        return Err(format!(
            "{} bytes left in the framer at the end",
            framer.buffered() + framer.partial().len()
        ));
    }
    let [fetch, ok] = responses.as_slice() else {
        return Err(format!("{} responses, expected 2", responses.len()));
    };
    if fetch.kind != (Kind::Fetch { seq: 1 }) || fetch.raw.has_streamed_literal() != streamed {
        return Err(format!("the FETCH parsed as {:?}", fetch.kind));
    }
    if ok.tag() != Some("a1") || ok.status() != Some(Status::Ok) {
        return Err(format!("the completion parsed as {:?}", ok.kind));
    }

    let seconds = elapsed.as_secs_f64();
    let mb = total as f64 / 1e6;
    println!(
        "stream_literal: a literal of {size} bytes, {total} bytes in all, in {READ}-byte reads"
    );
    println!(
        "stream_literal: {literal_bytes} bytes of LiteralData in {data_frames} frames; both responses parse"
    );
    println!(
        "stream_literal: {seconds:.3} s, {:.0} MB/s ({:.0} MiB/s)",
        mb / seconds,
        total as f64 / (1024.0 * 1024.0) / seconds
    );
    match peak {
        Some(peak) => {
            println!(
                "stream_literal: peak RSS (VmHWM) {:.1} MiB, limit {} MiB",
                peak as f64 / (1024.0 * 1024.0),
                MAX_PEAK_RSS / (1024 * 1024)
            );
            if peak > MAX_PEAK_RSS {
                return Err(format!(
                    "peak RSS {peak} bytes is above {MAX_PEAK_RSS}: the literal was held, not streamed"
                ));
            }
        }
        None => println!("stream_literal: peak RSS unknown (no VmHWM in /proc/self/status)"),
    }
    Ok(())
}
