//! Criterion benchmarks of the sans-IO protocol core: framing and parsing a realistic server stream, parsing the
//! fixture's IMAP URLs, and explaining the fixture's server lines.
//!
//! The stream is generated deterministically (no I/O, no randomness between runs): a greeting, a SELECT's output,
//! a FETCH of 200 messages with header and body literals (a few hundred bytes and a few KiB), a LIST of 300 mailboxes
//! (some with modified UTF-7 names), and every server line of `tests/fixtures/server-lines.txt`. It is fed to a
//! [`Framer`] with the default limits in 64 KiB pieces, as the session reads it, and every response is parsed.
//!
//! Before measuring, the benchmark prints the size of each workload (`stream: bytes=N responses=R`, `urls: N`,
//! `lines: N`), so that `scripts/bench.sh` can turn criterion's time per iteration into MB/s and responses/s. Run with `cargo bench --bench framing`; figures and
//! commands are in docs/performance.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use imapref::explain::explain_line;
use imapref::proto::framing::{literal_announcement, trim_line_end, Frame, Framer};
use imapref::proto::response::Response;
use imapref::proto::url::ImapUrl;

/// The fixture of real server lines, one per `S: ` line.
const FIXTURE: &str = include_str!("../tests/fixtures/server-lines.txt");

/// How much the session reads from the socket at a time.
const CHUNK: usize = 64 * 1024;

/// Messages in the FETCH.
const MESSAGES: u32 = 200;

/// Mailboxes in the LIST.
const MAILBOXES: u32 = 300;

/// A small deterministic generator (xorshift64*), so that every run benchmarks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `low..high`.
    fn range(&mut self, low: usize, high: usize) -> usize {
        let span = u64::try_from(high - low).expect("a small span");
        low + usize::try_from(self.next() % span).expect("a small number")
    }

    /// Text of exactly `len` bytes: words, with CRLF every 60 to 76 bytes, like a mail body.
    fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "the",
            "referral",
            "mailbox",
            "server",
            "public",
            "folder",
            "replica",
            "Exchange",
            "login",
            "message",
            "IMAP4rev1",
            "meeting",
            "tomorrow",
            "report",
            "attached",
            "and",
        ];
        let mut out = Vec::with_capacity(len + 80);
        let mut line = 0;
        while out.len() < len {
            let word = WORDS[self.range(0, WORDS.len())];
            out.extend_from_slice(word.as_bytes());
            line += word.len();
            if line > self.range(60, 77) {
                out.extend_from_slice(b"\r\n");
                line = 0;
            } else {
                out.push(b' ');
                line += 1;
            }
        }
        out.truncate(len);
        out
    }
}

/// The fixture's server lines, without the `S: ` prefix.
fn fixture_lines() -> Vec<&'static str> {
    FIXTURE
        .lines()
        .filter_map(|l| l.strip_prefix("S: "))
        .collect()
}

/// Every IMAP URL in the fixture (the words of REFERRAL codes).
fn fixture_urls() -> Vec<&'static str> {
    fixture_lines()
        .into_iter()
        .flat_map(|line| line.split([' ', '[', ']']))
        .filter(|word| word.len() > 7 && word[..7].eq_ignore_ascii_case("imap://"))
        .collect()
}

/// Appends one line with CRLF.
fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a literal announcement and its data.
fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

/// The mixed stream, and the number of responses in it.
fn mixed_stream() -> (Vec<u8>, usize) {
    let mut rng = Rng(0x1ad5_4b7e_2193_2221);
    let mut out = Vec::new();
    let mut responses = 0;

    line(&mut out, "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS MAILBOX-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.");
    responses += 1;

    // SELECT INBOX.
    for text in [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Junk \\*)] Flags permitted.",
        "* 200 EXISTS",
        "* 3 RECENT",
        "* OK [UNSEEN 12] First unseen.",
        "* OK [UIDVALIDITY 1200000001] UIDs valid",
        "* OK [UIDNEXT 4711] Predicted next UID",
        "a2 OK [READ-WRITE] Select completed (0.002 + 0.000 + 0.001 secs).",
    ] {
        line(&mut out, text);
        responses += 1;
    }

    // FETCH 1:200 (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[TEXT]).
    for seq in 1..=MESSAGES {
        let mut header = format!(
            "Return-Path: <sender{seq}@example.com>\r\nFrom: Sender {seq} <sender{seq}@example.com>\r\n\
             To: user1@example.com\r\nSubject: Referral report {seq}\r\n\
             Date: Tue, 4 Mar 2025 10:{:02}:00 +0100\r\nMessage-ID: <{seq}.{}@example.com>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Note: ",
            seq % 60,
            rng.next()
        )
        .into_bytes();
        let note = rng.range(20, 200);
        header.extend(rng.text(note));
        header.extend_from_slice(b"\r\n\r\n");
        let body_len = rng.range(2 * 1024, 6 * 1024);
        let body = rng.text(body_len);
        out.extend_from_slice(
            format!(
                "* {seq} FETCH (UID {} FLAGS (\\Seen) RFC822.SIZE {} BODY[HEADER] ",
                4000 + seq,
                header.len() + body.len()
            )
            .as_bytes(),
        );
        literal(&mut out, &header);
        out.extend_from_slice(b" BODY[TEXT] ");
        literal(&mut out, &body);
        out.extend_from_slice(b")\r\n");
        responses += 1;
    }
    line(
        &mut out,
        "a3 OK Fetch completed (0.010 + 0.000 + 0.009 secs).",
    );
    responses += 1;

    // LIST "" "*".
    const PARENTS: &[&str] = &[
        "Archive",
        "Projects",
        "Public Folders",
        "Entw&APw-rfe",
        "&U,BTFw-",
        "Gel&APY-schte Elemente",
    ];
    for n in 0..MAILBOXES {
        let parent = PARENTS[usize::try_from(n).expect("small") % PARENTS.len()];
        let text = match n % 4 {
            0 => format!("* LIST (\\HasNoChildren) \"/\" \"{parent}/Folder {n}\""),
            1 => format!(
                "* LIST (\\HasNoChildren \\Marked) \"/\" {}/F{n}",
                parent.replace(' ', "_")
            ),
            2 => format!("* LIST (\\HasChildren) \"/\" \"{parent}/&ZeVnLIqe-{n}\""),
            _ => format!("* LIST (\\Noselect \\HasChildren) \".\" \"{parent}.Sub{n}\""),
        };
        line(&mut out, &text);
        responses += 1;
    }
    line(&mut out, "a4 OK List completed (0.001 + 0.000 secs).");
    responses += 1;

    // The fixture's real server lines; a line that announces a literal gets its data.
    for text in fixture_lines() {
        line(&mut out, text);
        if let Ok(Some((n, _))) = literal_announcement(trim_line_end(text.as_bytes())) {
            let n = usize::try_from(n).expect("a small literal");
            out.extend(rng.text(n));
            out.extend_from_slice(b")\r\n");
        }
        responses += 1;
    }

    (out, responses)
}

/// Frames `stream` in 64 KiB pieces and parses every response; returns how many there were.
fn frame_and_parse(stream: &[u8]) -> usize {
    let mut framer = Framer::default();
    let mut count = 0;
    for piece in stream.chunks(CHUNK) {
        framer.feed(piece);
        while let Some(frame) = framer.next_frame().expect("the stream frames") {
            if let Frame::Response(raw) = frame {
                let response = if count == 0 {
                    Response::parse_greeting(raw)
                } else {
                    Response::parse(raw)
                };
                black_box(&response);
                count += 1;
            }
        }
    }
    count
}

/// Frames `stream` in 64 KiB pieces without parsing; returns how many responses there were.
fn frame_only(stream: &[u8]) -> usize {
    let mut framer = Framer::default();
    let mut count = 0;
    for piece in stream.chunks(CHUNK) {
        framer.feed(piece);
        while let Some(frame) = framer.next_frame().expect("the stream frames") {
            if let Frame::Response(raw) = frame {
                black_box(&raw);
                count += 1;
            }
        }
    }
    count
}

fn bench_framing(c: &mut Criterion) {
    let (stream, responses) = mixed_stream();
    assert_eq!(
        frame_and_parse(&stream),
        responses,
        "the generated stream frames into the responses it was built from"
    );
    println!("stream: bytes={} responses={responses}", stream.len());

    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes(
        u64::try_from(stream.len()).expect("a small stream"),
    ));
    group.bench_function("mixed_stream_frame_and_parse", |b| {
        b.iter(|| frame_and_parse(black_box(&stream)))
    });
    group.bench_function("mixed_stream_frame_only", |b| {
        b.iter(|| frame_only(black_box(&stream)))
    });
    group.finish();
}

fn bench_url(c: &mut Criterion) {
    let urls = fixture_urls();
    assert!(
        urls.iter().all(|u| ImapUrl::parse(u).is_ok()),
        "every fixture URL parses"
    );
    println!("urls: {}", urls.len());
    let mut group = c.benchmark_group("url");
    group.throughput(Throughput::Elements(
        u64::try_from(urls.len()).expect("a few URLs"),
    ));
    group.bench_function("parse_fixture_urls", |b| {
        b.iter(|| {
            for url in &urls {
                black_box(ImapUrl::parse(black_box(url)).ok());
            }
        })
    });
    group.finish();
}

fn bench_explain(c: &mut Criterion) {
    let lines = fixture_lines();
    println!("lines: {}", lines.len());
    let mut group = c.benchmark_group("explain");
    group.throughput(Throughput::Elements(
        u64::try_from(lines.len()).expect("a few lines"),
    ));
    group.bench_function("explain_fixture_lines", |b| {
        b.iter(|| {
            for (i, line) in lines.iter().enumerate() {
                black_box(explain_line(black_box(line), i == 0));
            }
        })
    });
    group.finish();
}

// What `criterion_group!` and `criterion_main!` would write, by hand so that no undocumented `pub fn` is generated.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_framing(&mut criterion);
    bench_url(&mut criterion);
    bench_explain(&mut criterion);
    criterion.final_summary();
}
