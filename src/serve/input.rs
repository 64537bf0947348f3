//! The client's bytes as complete commands: [`Input`] frames them with the crate's framer
//! ([`crate::proto::framing`]), inlines literals up to a limit, asks for the `+` continuation of a synchronizing
//! literal, and turns what cannot be framed into the text of a `* BAD`.

use crate::proto::framing::{Frame, FrameError, Framer, FramerLimits};

/// The continuation request a server sends before a synchronizing literal.
pub const CONTINUE: &[u8] = b"+ Ready for literal data\r\n";

/// What a client may make a server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// The longest command line.
    pub max_line: usize,
    /// The largest literal a client may send (a password, a mailbox name).
    pub max_literal: usize,
}

/// One thing the client's bytes gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete command (literals inline), or a line that answers an AUTHENTICATE continuation.
    Command(Vec<u8>),
    /// A synchronizing literal was announced: write [`CONTINUE`].
    Continue,
    /// The input cannot be framed (over a limit): the text of the `* BAD`; the connection should close.
    Invalid(String),
}

/// The framer of one client stream (make a new one after STARTTLS, so that bytes pipelined before the handshake are
/// dropped).
#[derive(Debug)]
pub struct Input {
    framer: Framer,
}

impl Input {
    /// A framer under `limits`: literals up to `max_literal` are held inline, larger ones are refused.
    pub fn new(limits: InputLimits) -> Self {
        let max_literal = u64::try_from(limits.max_literal).unwrap_or(u64::MAX);
        Input {
            framer: Framer::new(FramerLimits {
                max_line: limits.max_line,
                max_literal,
                max_inline_literal: limits.max_literal,
                max_response: limits
                    .max_line
                    .saturating_add(limits.max_literal.saturating_mul(2)),
            }),
        }
    }

    /// Hands over bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Hands the stream over to a byte relay: every byte read and not yet given out as a command, in stream order.
    pub fn take_unframed(&mut self) -> Vec<u8> {
        self.framer.take_unframed()
    }

    /// The next thing the input gives, or `None` when more bytes are needed.
    pub fn next_incoming(&mut self) -> Option<Incoming> {
        loop {
            return match self.framer.next_frame() {
                Ok(None) => None,
                Ok(Some(Frame::LiteralAnnounced {
                    non_sync, streamed, ..
                })) => {
                    if streamed {
                        Some(Incoming::Invalid("Literal too large".into()))
                    } else if non_sync {
                        continue;
                    } else {
                        Some(Incoming::Continue)
                    }
                }
                Ok(Some(Frame::LiteralData(_))) => {
                    Some(Incoming::Invalid("Literal too large".into()))
                }
                Ok(Some(Frame::Response(raw))) => Some(Incoming::Command(raw.bytes)),
                Err(error) => Some(Incoming::Invalid(frame_error_text(&error))),
            };
        }
    }
}

/// Why the client's bytes cannot be framed, as a `* BAD` text.
pub fn frame_error_text(error: &FrameError) -> String {
    match error {
        FrameError::LineTooLong { limit } => format!("Command line longer than {limit} bytes"),
        FrameError::LiteralTooLarge { limit, .. } => format!("Literal larger than {limit} bytes"),
        FrameError::ResponseTooLarge { limit } => format!("Command larger than {limit} bytes"),
        FrameError::BadLiteralSize(_) => "Invalid literal size".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Input {
        Input::new(InputLimits {
            max_line: 100,
            max_literal: 10,
        })
    }

    #[test]
    fn commands_continuations_and_limits() {
        let mut i = input();
        i.feed(b"a NOOP\r\nb LOGIN {3}\r\n");
        assert_eq!(
            i.next_incoming(),
            Some(Incoming::Command(b"a NOOP\r\n".to_vec()))
        );
        assert_eq!(i.next_incoming(), Some(Incoming::Continue));
        assert_eq!(i.next_incoming(), None);
        i.feed(b"bob {2+}\r\npw\r\n");
        assert_eq!(
            i.next_incoming(),
            Some(Incoming::Command(
                b"b LOGIN {3}\r\nbob {2+}\r\npw\r\n".to_vec()
            ))
        );
        let mut i = input();
        i.feed(b"c LOGIN {11}\r\n");
        assert_eq!(
            i.next_incoming(),
            Some(Incoming::Invalid("Literal larger than 10 bytes".into()))
        );
        let mut i = input();
        i.feed(&[b'x'; 200]);
        assert_eq!(
            i.next_incoming(),
            Some(Incoming::Invalid(
                "Command line longer than 100 bytes".into()
            ))
        );
    }
}
