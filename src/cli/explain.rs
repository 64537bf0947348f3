//! `imapref explain LINE...` and `imapref explain -` (lines from stdin, such as a server log).

use std::io::{BufRead, Read};

use anyhow::Context;

use super::write_stdout;
use crate::explain::explain_lines;
use crate::render::{human, json};

/// Arguments of `imapref explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// Server lines (quote each one), or `-` to read lines from standard input. `S: ` and `C: ` prefixes are understood.
    #[arg(required = true, value_name = "LINE")]
    pub lines: Vec<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The most bytes of one stdin line kept; longer lines are cut (they are explained from their start).
const MAX_STDIN_LINE: usize = 64 * 1024;

/// Runs `imapref explain`.
pub fn run(args: ExplainArgs) -> anyhow::Result<i32> {
    let lines: Vec<String> = if args.lines == ["-"] {
        read_stdin_lines()?
    } else {
        args.lines
            .iter()
            .flat_map(|l| l.split('\n').map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let explanations = explain_lines(lines.iter().map(String::as_str));
    if explanations.is_empty() && args.json {
        // The JSON stays a document (an empty list); the note goes to standard error.
        eprintln!("{}", human::NOTHING_TO_EXPLAIN);
    }
    write_stdout(|out| {
        if args.json {
            json::write(&explanations, out)
        } else {
            human::explanations(&explanations, out)
        }
    })?;
    Ok(crate::exit::OK)
}

fn read_stdin_lines() -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_STDIN_LINE as u64)
            .read_until(b'\n', &mut buf)
            .context("reading standard input")?;
        if n == 0 {
            break;
        }
        if !buf.ends_with(b"\n") && n == MAX_STDIN_LINE {
            skip_rest_of_line(&mut reader)?;
        }
        lines.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Ok(lines)
}

/// Skips to the next line feed without holding the skipped bytes.
fn skip_rest_of_line(reader: &mut impl BufRead) -> anyhow::Result<()> {
    loop {
        let available = reader.fill_buf().context("reading standard input")?;
        if available.is_empty() {
            return Ok(());
        }
        match memchr::memchr(b'\n', available) {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}
