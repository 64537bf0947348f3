//! Fuzz target `framing_parse`: arbitrary server bytes through the [`Framer`], [`Response::parse`] and
//! [`explain_response`].
//!
//! The first two input bytes choose the chunk sizes and the (small) limits; the rest is the stream. The target checks
//! what must hold for any input:
//!
//! - nothing panics (framer, parser, explainer, JSON serialisation of the explanation);
//! - no byte is lost or invented: every response, with its streamed literal data put back at its literal's start,
//!   is exactly the next stretch of the input, and every consumed byte is in a response, in the response in progress
//!   ([`Framer::partial`]) or in streamed data of that response;
//! - memory stays bounded: whenever the framer wants more input, at most `max_line` bytes wait unframed and at most
//!   `max_response` bytes are held for the response in progress;
//! - every held literal's span lies inside its response's bytes, a streamed one is not there, and the number of
//!   `LiteralData` bytes of a response is the sum of its streamed literals' sizes;
//! - parsing keeps the raw bytes, and the explanation's line is the response's first line;
//! - chunking does not matter: the stream fed whole and in the chosen chunks (byte by byte for a seed of 0) gives the
//!   same responses, the same streamed bytes, the same error (if any) and the same state at the end.

#![no_main]

use imapref::explain::explain_response;
use imapref::proto::framing::{Frame, FrameError, Framer, FramerLimits, RawResponse};
use imapref::proto::response::Response;
use libfuzzer_sys::fuzz_target;

/// Everything one run of the framer produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// The responses, in order.
    responses: Vec<RawResponse>,
    /// All `LiteralData` bytes, concatenated.
    streamed: Vec<u8>,
    /// The error that stopped the framer, if one did.
    error: Option<FrameError>,
    /// [`Framer::partial`] at the end.
    partial: Vec<u8>,
    /// [`Framer::buffered`] at the end; `None` after an error, since feeding stops there (at a point that depends on
    /// the chunking).
    buffered: Option<usize>,
}

/// Limits from one byte: small enough that every limit is reached by a few KiB of input.
fn limits(byte: u8) -> FramerLimits {
    if byte == 0xff {
        return FramerLimits::default();
    }
    FramerLimits {
        max_line: 8 + usize::from(byte & 0x0f) * 24,
        max_inline_literal: usize::from((byte >> 4) & 0x03) * 12,
        max_literal: if byte & 0x40 != 0 { 4096 } else { 300 },
        max_response: if byte & 0x80 != 0 { 2048 } else { 200 },
    }
}

/// Feeds `input` in pieces of the given sizes (cycled), draining the framer after each, and checks the
/// no-byte-lost invariants on the way.
fn run(limits: FramerLimits, input: &[u8], sizes: &[usize]) -> Outcome {
    let mut framer = Framer::new(limits);
    let mut responses = Vec::new();
    let mut streamed = Vec::new();
    // The input rebuilt from complete responses, streamed data put back in place.
    let mut rebuilt: Vec<u8> = Vec::new();
    // LiteralData bytes of the response in progress.
    let mut pending: Vec<u8> = Vec::new();
    let mut error = None;
    let mut fed = 0usize;
    let mut size = sizes.iter().cycle();

    'feeding: while fed < input.len() {
        let n = size
            .next()
            .copied()
            .unwrap_or(input.len())
            .clamp(1, input.len() - fed);
        framer.feed(&input[fed..fed + n]);
        fed += n;
        loop {
            match framer.next_frame() {
                Ok(None) => {
                    // Bounded memory: what waits is at most one unfinished line, what is held at most one response.
                    assert!(
                        framer.buffered() <= limits.max_line,
                        "more than a line buffered"
                    );
                    assert!(framer.partial().len() <= limits.max_response);
                    break;
                }
                Ok(Some(Frame::LiteralAnnounced {
                    len, streamed: s, ..
                })) => {
                    assert!(
                        s == (len > limits.max_inline_literal as u64),
                        "streamed must mean larger than max_inline_literal"
                    );
                    assert!(len <= limits.max_literal);
                }
                Ok(Some(Frame::LiteralData(data))) => {
                    assert!(!data.is_empty(), "an empty LiteralData frame");
                    pending.extend_from_slice(&data);
                    streamed.extend_from_slice(&data);
                }
                Ok(Some(Frame::Response(raw))) => {
                    check_response(&raw, &pending, limits);
                    rebuilt.extend_from_slice(&with_streamed_data(&raw, &pending));
                    pending.clear();
                    responses.push(raw);
                }
                Err(err) => {
                    // The framer stays failed.
                    assert_eq!(framer.next_frame(), Err(err.clone()));
                    error = Some(err);
                    break 'feeding;
                }
            }
        }
    }

    // No byte lost or invented.
    let consumed = fed - framer.buffered();
    assert_eq!(
        rebuilt.len() + framer.partial().len() + pending.len(),
        consumed,
        "consumed bytes are not all accounted for"
    );
    assert_eq!(
        &rebuilt[..],
        &input[..rebuilt.len()],
        "responses differ from the input"
    );
    if pending.is_empty() {
        let partial = framer.partial();
        assert_eq!(
            partial,
            &input[rebuilt.len()..rebuilt.len() + partial.len()]
        );
    }

    Outcome {
        responses,
        streamed,
        partial: framer.partial().to_vec(),
        buffered: if error.is_none() {
            Some(framer.buffered())
        } else {
            None
        },
        error,
    }
}

/// Structural checks on one framed response; `pending` is the streamed data handed out for it.
fn check_response(raw: &RawResponse, pending: &[u8], limits: FramerLimits) {
    assert!(
        raw.bytes.ends_with(b"\n"),
        "a response must end with a line feed"
    );
    assert!(raw.bytes.len() <= limits.max_response);
    let mut streamed_total = 0u64;
    let mut last_start = 0usize;
    for literal in &raw.literals {
        assert!(literal.start >= last_start, "literals out of order");
        assert!(literal.start > 0 && raw.bytes[literal.start - 1] == b'\n');
        last_start = literal.start;
        if literal.streamed {
            assert!(literal.data(raw).is_none());
            streamed_total += literal.len;
        } else {
            let data = literal
                .data(raw)
                .expect("a held literal lies inside the response");
            assert_eq!(data.len() as u64, literal.len);
        }
    }
    assert_eq!(
        streamed_total,
        pending.len() as u64,
        "streamed bytes do not match the literals"
    );
    assert_eq!(
        raw.has_streamed_literal(),
        raw.literals.iter().any(|l| l.streamed)
    );
    assert!(!raw.first_line().contains(&b'\n'));
}

/// The response's bytes with each streamed literal's data put back where it came.
fn with_streamed_data(raw: &RawResponse, mut pending: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.bytes.len() + pending.len());
    let mut from = 0usize;
    for literal in raw.literals.iter().filter(|l| l.streamed) {
        out.extend_from_slice(&raw.bytes[from..literal.start]);
        let n = usize::try_from(literal.len).expect("streamed literal fits in memory here");
        let (data, rest) = pending.split_at(n);
        out.extend_from_slice(data);
        pending = rest;
        from = literal.start;
    }
    out.extend_from_slice(&raw.bytes[from..]);
    out
}

/// Parses and explains every response; the first one as a greeting.
fn parse_all(responses: &[RawResponse]) {
    for (i, raw) in responses.iter().enumerate() {
        let response = if i == 0 {
            Response::parse_greeting(raw.clone())
        } else {
            Response::parse(raw.clone())
        };
        assert_eq!(&response.raw, raw, "parsing must keep the raw bytes");
        let explanation = explain_response(&response);
        assert_eq!(explanation.line, response.first_line());
        serde_json::to_string(&explanation).expect("an explanation serialises to JSON");
        // The other reading of the first response must not panic either.
        if i == 0 {
            let _ = explain_response(&Response::parse(raw.clone()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [chunk_seed, limit_byte, input @ ..] = data else {
        return;
    };
    let limits = limits(*limit_byte);
    // Chunk sizes from the seed, cycled: 1..=16, 1..=16 and 1..=256. A seed of 0 feeds byte by byte.
    let sizes = [
        usize::from(chunk_seed & 0x0f) + 1,
        usize::from(chunk_seed >> 4) + 1,
        usize::from(*chunk_seed) + 1,
    ];

    let whole = run(limits, input, &[input.len()]);
    parse_all(&whole.responses);

    let chunked = run(limits, input, &sizes);
    assert_eq!(whole, chunked, "chunking changed the result");
});
