//! Fuzz target `explain`: `imapref explain -` on an arbitrary log, through the library: [`explain_lines`], then the
//! human and JSON renderers.
//!
//! It must never panic; the JSON must be valid; the human output must hold no control character but LF and TAB
//! (terminal safety, issue 9): every server byte goes through `proto::display` first. Byte 0 picks how the log is
//! prefixed (`S: `/`C: ` or none), so both ways of pasting are covered.

#![no_main]

use imapref::explain::explain_lines;
use imapref::render::{human, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    colored::control::set_override(false);
    let text = String::from_utf8_lossy(rest);
    let lines: Vec<String> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| match (mode % 3, i % 2) {
            (1, 0) => format!("C: {l}"),
            (1, _) => format!("S: {l}"),
            _ => l.to_string(),
        })
        .collect();
    let explained = explain_lines(lines.iter().map(String::as_str));

    let mut out = Vec::new();
    human::explanations(&explained, &mut out).expect("writing to a Vec");
    let shown = String::from_utf8(out).expect("the human output is UTF-8");
    if let Some(c) = shown
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        panic!("raw control {c:?} in the human output: {shown:?}");
    }

    let mut out = Vec::new();
    json::write(&explained, &mut out).expect("writing to a Vec");
    serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
});
