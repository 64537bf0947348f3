//! The transcript of a connection: every line sent (`C:`) and received (`S:`), with secrets already replaced by `***`.
//!
//! Redaction happens before a line is stored, so no renderer, file or JSON document can leak a password from here. Memory
//! is bounded: each entry keeps at most [`MAX_ENTRY_BYTES`] bytes, and the transcript keeps its first [`HEAD_ENTRIES`]
//! and its last [`TAIL_ENTRIES`] entries. What falls in between is counted, and [`Transcript::entries`] says so in a
//! note where it was left out, so the end of a flooded connection (the tagged OK, SELECT, LOGOUT) is never lost.

use std::collections::VecDeque;

use serde::Serialize;

/// The most bytes of one response kept in a transcript entry; the rest is summarised.
pub const MAX_ENTRY_BYTES: usize = 4096;
/// The first entries kept. Default 5,000: a whole ordinary session, greeting to LOGOUT, fits many times over.
pub const HEAD_ENTRIES: usize = 5_000;
/// The last entries kept once the head is full. Default 1,000: enough to show how a flood ended.
pub const TAIL_ENTRIES: usize = 1_000;

/// Who sent a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The client (imapref).
    Client,
    /// The server.
    Server,
    /// A note from imapref (TLS started, connection closed, ...).
    Note,
}

/// One transcript entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Who sent it.
    pub direction: Direction,
    /// Milliseconds since the connection started.
    pub at_ms: f64,
    /// The text, redacted, without the final line end.
    pub text: String,
}

/// A redacted transcript.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Transcript {
    head: Vec<Entry>,
    tail: VecDeque<Entry>,
    dropped: usize,
}

impl Transcript {
    fn push(&mut self, entry: Entry) {
        if self.head.len() < HEAD_ENTRIES {
            self.head.push(entry);
            return;
        }
        if self.tail.len() == TAIL_ENTRIES {
            self.tail.pop_front();
            self.dropped += 1;
        }
        self.tail.push_back(entry);
    }

    /// Records bytes sent or received. The bytes must already be redacted.
    pub fn record(&mut self, direction: Direction, at_ms: f64, bytes: &[u8]) {
        let shown = &bytes[..bytes.len().min(MAX_ENTRY_BYTES)];
        let mut text = String::from_utf8_lossy(shown)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if bytes.len() > MAX_ENTRY_BYTES {
            text.push_str(&format!(
                " ... ({} more bytes not shown)",
                bytes.len() - MAX_ENTRY_BYTES
            ));
        }
        for line in text.split('\n') {
            self.push(Entry {
                direction,
                at_ms,
                text: line.trim_end_matches('\r').to_string(),
            });
        }
    }

    /// Records a note.
    pub fn note(&mut self, at_ms: f64, text: impl Into<String>) {
        self.push(Entry {
            direction: Direction::Note,
            at_ms,
            text: text.into(),
        });
    }

    /// The entries, in order: the head, a note saying how many were left out (when any were), and the tail.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = self.head.clone();
        if self.dropped > 0 {
            let at_ms = self.tail.front().map_or(0.0, |e| e.at_ms);
            out.push(Entry {
                direction: Direction::Note,
                at_ms,
                text: format!(
                    "... {} transcript entries left out here (the first {HEAD_ENTRIES} and the last {TAIL_ENTRIES} are kept)",
                    self.dropped
                ),
            });
        }
        out.extend(self.tail.iter().cloned());
        out
    }

    /// The last entry from `direction`, if any.
    pub fn last(&self, direction: Direction) -> Option<&Entry> {
        self.tail
            .iter()
            .rev()
            .chain(self.head.iter().rev())
            .find(|e| e.direction == direction)
    }

    /// How many entries were left out between the head and the tail.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The transcript as `C: ` / `S: ` / `*: ` lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries() {
            let prefix = match e.direction {
                Direction::Client => "C: ",
                Direction::Server => "S: ",
                Direction::Note => "-- ",
            };
            out.push_str(prefix);
            out.push_str(&e.text);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_entries_are_cut_and_lines_split() {
        let mut t = Transcript::default();
        t.record(Direction::Server, 1.0, b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n");
        assert_eq!(t.entries().len(), 2);
        t.record(Direction::Server, 2.0, &vec![b'x'; MAX_ENTRY_BYTES + 10]);
        assert!(t
            .entries()
            .last()
            .is_some_and(|e| e.text.ends_with("(10 more bytes not shown)")));
        assert!(t.to_text().starts_with("S: * 1 FETCH"));
    }

    #[test]
    fn a_flood_keeps_the_head_and_the_tail_and_says_how_much_was_left_out() {
        let mut t = Transcript::default();
        t.record(Direction::Client, 0.0, b"a1 SELECT INBOX\r\n");
        for _ in 0..(HEAD_ENTRIES + TAIL_ENTRIES + 500) {
            t.record(Direction::Server, 1.0, b"* OK flood\r\n");
        }
        t.record(Direction::Server, 2.0, b"a1 OK done\r\n");
        t.record(Direction::Client, 3.0, b"a2 LOGOUT\r\n");
        let entries = t.entries();
        assert_eq!(entries[0].text, "a1 SELECT INBOX");
        assert_eq!(t.dropped(), 503);
        assert_eq!(entries.len(), HEAD_ENTRIES + 1 + TAIL_ENTRIES);
        assert!(entries[HEAD_ENTRIES]
            .text
            .starts_with("... 503 transcript entries left out here"));
        assert_eq!(entries[entries.len() - 2].text, "a1 OK done");
        assert_eq!(entries[entries.len() - 1].text, "a2 LOGOUT");
    }
}
