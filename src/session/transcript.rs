//! The transcript of a connection: every line sent (`C:`) and received (`S:`), with secrets already replaced by `***`.
//!
//! Redaction happens before a line is stored, so no renderer, file or JSON document can leak a password from here. Memory
//! is bounded: each entry keeps at most [`MAX_ENTRY_BYTES`] bytes, and the transcript at most [`MAX_ENTRIES`] entries.

use serde::Serialize;

/// The most bytes of one response kept in a transcript entry; the rest is summarised.
pub const MAX_ENTRY_BYTES: usize = 4096;
/// The most entries kept; later ones are counted, not stored.
pub const MAX_ENTRIES: usize = 10_000;

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
    entries: Vec<Entry>,
    dropped: usize,
}

impl Transcript {
    /// Records bytes sent or received. The bytes must already be redacted.
    pub fn record(&mut self, direction: Direction, at_ms: f64, bytes: &[u8]) {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return;
        }
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
            self.entries.push(Entry {
                direction,
                at_ms,
                text: line.trim_end_matches('\r').to_string(),
            });
        }
    }

    /// Records a note.
    pub fn note(&mut self, at_ms: f64, text: impl Into<String>) {
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(Entry {
                direction: Direction::Note,
                at_ms,
                text: text.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries were not stored because the transcript was full.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The transcript as `C: ` / `S: ` / `*: ` lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
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
}
