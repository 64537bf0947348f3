//! What one command gathered: its untagged responses, bounded. The first [`ClientLimits::keep_first`] and the last
//! [`ClientLimits::keep_last`] are kept, the ones in between are counted, so a server that sends a million `* OK`
//! lines before its completion costs a few hundred responses of memory, and the last `* 3 EXISTS` of a SELECT is still
//! there.
//!
//! [`ClientLimits::keep_first`]: super::ClientLimits::keep_first
//! [`ClientLimits::keep_last`]: super::ClientLimits::keep_last

use std::collections::VecDeque;

use crate::proto::response::Response;

/// The untagged responses of one command: head, tail, and how many were dropped between them.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    head: Vec<Response>,
    tail: VecDeque<Response>,
    dropped: usize,
    keep_first: usize,
    keep_last: usize,
}

impl Gathered {
    /// An empty record that keeps `keep_first` responses, then the last `keep_last`.
    pub fn new(keep_first: usize, keep_last: usize) -> Self {
        Gathered {
            keep_first,
            keep_last,
            ..Gathered::default()
        }
    }

    /// Adds a response.
    pub fn push(&mut self, response: Response) {
        if self.head.len() < self.keep_first {
            self.head.push(response);
            return;
        }
        if self.keep_last == 0 {
            self.dropped += 1;
            return;
        }
        if self.tail.len() == self.keep_last {
            self.tail.pop_front();
            self.dropped += 1;
        }
        self.tail.push_back(response);
    }

    /// The kept responses in order: the head, then the tail.
    pub fn iter(&self) -> impl Iterator<Item = &Response> {
        self.head.iter().chain(self.tail.iter())
    }

    /// How many responses arrived in all, kept or not.
    pub fn total(&self) -> usize {
        self.head.len() + self.tail.len() + self.dropped
    }

    /// How many were dropped between the head and the tail.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// True when nothing arrived.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::response::Response;

    fn line(n: usize) -> Response {
        Response::parse_line(format!("* {n} EXISTS\r\n").as_bytes())
    }

    #[test]
    fn keeps_the_first_and_the_last_and_counts_the_rest() {
        let mut g = Gathered::new(2, 3);
        for n in 0..10 {
            g.push(line(n));
        }
        let kept: Vec<String> = g.iter().map(Response::first_line).collect();
        assert_eq!(
            kept,
            [
                "* 0 EXISTS",
                "* 1 EXISTS",
                "* 7 EXISTS",
                "* 8 EXISTS",
                "* 9 EXISTS"
            ]
        );
        assert_eq!(g.total(), 10);
        assert_eq!(g.dropped(), 5);
    }

    #[test]
    fn under_the_limits_nothing_is_dropped() {
        let mut g = Gathered::new(4, 4);
        for n in 0..6 {
            g.push(line(n));
        }
        assert_eq!(g.iter().count(), 6);
        assert_eq!(g.dropped(), 0);
        assert!(!g.is_empty());
        assert!(Gathered::new(1, 1).is_empty());
    }
}
