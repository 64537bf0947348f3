//! The proxy's log: one line per client session ([`SessionRecord`]), as text for a person or as JSON lines (one
//! object per line) for a log pipeline, and the line that says where the proxy listens. The JSON object is the record
//! itself with `"event": "session"`; the text line is `key=value` pairs, values with spaces quoted.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::proxy::record::{Listening, RecordSink, SessionRecord};

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one line per session.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    event: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

fn quoted(value: &str) -> String {
    if !value.is_empty()
        && !value.contains([' ', '"', '=', '\\'])
        && !value.contains(char::is_control)
    {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The start line.
pub fn write_listening(out: &mut dyn Write, l: &Listening, format: LogFormat) -> io::Result<()> {
    match format {
        LogFormat::Json => {
            serde_json::to_writer(
                &mut *out,
                &Event {
                    event: "listening",
                    body: l,
                },
            )?;
            writeln!(out)
        }
        LogFormat::Text => writeln!(
            out,
            "imapref proxy listening on {} upstream={} upstream_tls={} starttls={}",
            l.listen,
            quoted(&l.upstream),
            l.upstream_tls,
            if l.starttls { "yes" } else { "no" }
        ),
    }
}

/// One session's line.
pub fn write_record(out: &mut dyn Write, r: &SessionRecord, format: LogFormat) -> io::Result<()> {
    match format {
        LogFormat::Json => {
            serde_json::to_writer(
                &mut *out,
                &Event {
                    event: "session",
                    body: r,
                },
            )?;
            writeln!(out)
        }
        LogFormat::Text => {
            let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
            write!(
                out,
                "session client={} login={} outcome={} hops={} home={} client_tls={} home_tls={} attempts={} \
                 login_ms={} relay_ms={} total_ms={:.1} bytes_up={} bytes_down={}",
                r.client,
                r.login.as_deref().map_or_else(|| "-".to_string(), quoted),
                r.outcome.as_str(),
                if r.hops.is_empty() {
                    "-".to_string()
                } else {
                    quoted(&r.hops.join(","))
                },
                r.home.as_deref().map_or_else(|| "-".to_string(), quoted),
                if r.client_tls { "yes" } else { "no" },
                if r.home_tls { "yes" } else { "no" },
                r.attempts,
                ms(r.login_ms),
                ms(r.relay_ms),
                r.total_ms,
                r.bytes_up,
                r.bytes_down,
            )?;
            if !r.mailbox_referrals.is_empty() {
                write!(
                    out,
                    " mailbox_referrals={}",
                    quoted(&r.mailbox_referrals.join(" "))
                )?;
            }
            if let Some(detail) = &r.detail {
                write!(out, " detail={}", quoted(detail))?;
            }
            writeln!(out)
        }
    }
}

/// Where the session lines go, and how they look. Each line is written whole, under a lock.
pub struct LogSink {
    out: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// Lines in `format` to `out`.
    pub fn new(out: Box<dyn Write + Send>, format: LogFormat) -> Self {
        LogSink {
            out: Mutex::new(out),
            format,
        }
    }

    fn with<F: FnOnce(&mut dyn Write, LogFormat) -> std::io::Result<()>>(&self, f: F) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A log that cannot be written must not stop the proxy.
        let _ = f(&mut **out, self.format).and_then(|()| out.flush());
    }
}

impl RecordSink for LogSink {
    fn session(&self, record: &SessionRecord) {
        self.with(|out, format| write_record(out, record, format));
    }

    fn listening(&self, listening: &Listening) {
        self.with(|out, format| write_listening(out, listening, format));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::record::Outcome;

    fn record() -> SessionRecord {
        SessionRecord {
            login: Some("DOM/user x".into()),
            attempts: 1,
            hops: vec!["127.0.0.1:143".into(), "127.0.0.1:1143".into()],
            home: Some("127.0.0.1:1143".into()),
            outcome: Outcome::Relayed,
            login_ms: Some(12.25),
            relay_ms: Some(30.0),
            total_ms: 45.0,
            bytes_up: 10,
            bytes_down: 200,
            detail: Some("said \"hi\"".into()),
            ..SessionRecord::new("127.0.0.1:5000".into())
        }
    }

    #[test]
    fn text_line() {
        let mut out = Vec::new();
        write_record(&mut out, &record(), LogFormat::Text).expect("writes");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "session client=127.0.0.1:5000 login=\"DOM/user x\" outcome=relayed hops=127.0.0.1:143,127.0.0.1:1143 \
             home=127.0.0.1:1143 client_tls=no home_tls=no attempts=1 login_ms=12.2 relay_ms=30.0 total_ms=45.0 \
             bytes_up=10 bytes_down=200 detail=\"said \\\"hi\\\"\"\n"
        );
    }

    #[test]
    fn json_line() {
        let mut out = Vec::new();
        write_record(&mut out, &record(), LogFormat::Json).expect("writes");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["event"], "session");
        assert_eq!(v["outcome"], "relayed");
        assert_eq!(v["hops"][1], "127.0.0.1:1143");
        assert_eq!(v["login_ms"], 12.25);
    }
}
