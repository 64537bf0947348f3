//! The one way out for everything the shell prints, from the connection tasks and the line loop alike.
//!
//! A dedicated thread owns the sink: on a terminal, rustyline's `ExternalPrinter`, so that a line arriving while the
//! user types (an `EXISTS`, a `BYE` on idle timeout) is printed above the prompt without corrupting it; otherwise
//! stdout and stderr. The channel is bounded, so a fast server streaming a big literal waits for the terminal instead
//! of filling memory. [`Printer::flush`] waits until everything sent so far is out, so that a prompt never comes
//! before the answer it follows.
//!
//! As a last guard, whatever goes to a terminal passes [`crate::proto::display::terminal_bytes`]: line ends, TABs and
//! imapref's own colours are kept, every other control is escaped. Output to a pipe or a file keeps the exact bytes.

use std::io::{IsTerminal, Write};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

/// Messages waiting for the printer thread. Default 256: enough to absorb a burst of untagged data, small enough
/// that a streamed literal is held back by a slow terminal.
const QUEUE: usize = 256;

/// Which stream a message belongs to (both go to the terminal in interactive mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Server data and the answers of local commands.
    Out,
    /// The shell's own notes, warnings and errors.
    Err,
}

enum Msg {
    Write(Stream, Vec<u8>),
    Flush(std_mpsc::SyncSender<()>),
}

/// Where the printer thread writes.
pub enum Sink {
    /// Above the prompt, through rustyline.
    Terminal(Box<dyn rustyline::ExternalPrinter + Send>),
    /// Stdout and stderr (piped mode, or no terminal support).
    Std,
}

/// A handle to the printer thread; cheap to clone.
#[derive(Clone)]
pub struct Printer {
    tx: mpsc::Sender<Msg>,
}

impl Printer {
    /// Starts the printer thread.
    pub fn start(sink: Sink) -> std::io::Result<(Printer, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("imapref-shell-printer".into())
            .spawn(move || run(sink, rx))?;
        Ok((Printer { tx }, thread))
    }

    /// Prints `text` (a line end is added when missing), waiting for room in the queue.
    pub async fn print(&self, stream: Stream, text: impl Into<Vec<u8>>) {
        let _ = self
            .tx
            .send(Msg::Write(stream, with_newline(text.into())))
            .await;
    }

    /// [`Printer::print`] from a thread outside the async runtime.
    pub fn print_blocking(&self, stream: Stream, text: impl Into<Vec<u8>>) {
        let _ = self
            .tx
            .blocking_send(Msg::Write(stream, with_newline(text.into())));
    }

    /// Prints bytes as they are (no line end added): pieces of a streamed literal.
    pub async fn print_raw(&self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            let _ = self.tx.send(Msg::Write(Stream::Out, bytes)).await;
        }
    }

    /// Waits (at most `wait`) until everything sent before is written. From a thread outside the async runtime.
    pub fn flush(&self, wait: Duration) {
        let (done, seen) = std_mpsc::sync_channel(1);
        if self.tx.blocking_send(Msg::Flush(done)).is_ok() {
            let _ = seen.recv_timeout(wait);
        }
    }
}

fn with_newline(mut text: Vec<u8>) -> Vec<u8> {
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    text
}

/// The bytes as they are for a pipe or a file; made safe for a terminal.
fn for_stream(bytes: &[u8], terminal: bool) -> std::borrow::Cow<'_, [u8]> {
    if terminal {
        crate::proto::display::terminal_bytes(bytes)
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

fn run(mut sink: Sink, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.blocking_recv() {
        // Gather what is already waiting, so that a burst is one redraw of the prompt.
        let mut batch = vec![first];
        while batch.len() < QUEUE {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let mut order: Vec<(Stream, Vec<u8>)> = Vec::new();
        for m in batch {
            match m {
                Msg::Write(stream, bytes) => match order.last_mut() {
                    Some((s, b)) if *s == stream => b.extend_from_slice(&bytes),
                    _ => order.push((stream, bytes)),
                },
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        match &mut sink {
            Sink::Terminal(printer) => {
                let all: Vec<u8> = order.into_iter().flat_map(|(_, b)| b).collect();
                if !all.is_empty() {
                    let safe = crate::proto::display::terminal_bytes(&all);
                    let _ = printer.print(String::from_utf8_lossy(&safe).into_owned());
                }
            }
            Sink::Std => {
                for (stream, bytes) in order {
                    // A closed stdout (`| head`) is not an error worth reporting.
                    let _ = match stream {
                        Stream::Out => {
                            let mut o = std::io::stdout().lock();
                            let safe = for_stream(&bytes, o.is_terminal());
                            o.write_all(&safe).and_then(|()| o.flush())
                        }
                        Stream::Err => {
                            let mut e = std::io::stderr().lock();
                            let safe = for_stream(&bytes, e.is_terminal());
                            e.write_all(&safe).and_then(|()| e.flush())
                        }
                    };
                }
            }
        }
        for ack in acks {
            let _ = ack.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_escapes_and_a_pipe_the_exact_bytes() {
        let server = b"* OK x\r\x1b[2K  ok    greeting   forged line\x07\n";
        assert_eq!(&*for_stream(server, false), &server[..]);
        assert_eq!(
            &*for_stream(server, true),
            &b"* OK x\\r\\x1b[2K  ok    greeting   forged line\\x07\n"[..]
        );
        let ours = b"\x1b[33ma1 NO nope\x1b[0m\n";
        assert_eq!(&*for_stream(ours, true), &ours[..]);
    }
}
