//! Snapshot tests of what a user reads: the human report and the JSON report of `imapref probe` against every lab
//! scenario, with `-v` transcripts. Timings and the lab's ephemeral ports (shown as `<server name>`) are redacted, so
//! any other change in wording, layout, fields or findings shows up as a snapshot diff (`tests/snapshots/`).

use assert_cmd::Command;
use imapref::lab::{Lab, LabConfig, Scenario};
use serde_json::Value;

const PASSWORD: &str = "PASSword";
const USER: &str = "DOMname/UserN/AliasN";

/// Each scenario with the probe's extra arguments.
const CASES: &[(Scenario, &str, &[&str])] = &[
    (Scenario::Kb, "kb", &[]),
    (Scenario::LoginNo, "login-no", &[]),
    (Scenario::ByeGreeting, "bye-greeting", &[]),
    (
        Scenario::MailboxReferral,
        "mailbox-referral",
        &["--mailbox", "Public Folders/Announcements"],
    ),
    (
        Scenario::Replicas,
        "replicas",
        &["--mailbox", "Public Folders/Announcements"],
    ),
    (Scenario::Loop, "loop", &[]),
    (Scenario::LongChain, "long-chain", &[]),
    (Scenario::ClosedPort, "closed-port", &[]),
    (Scenario::TlsDowngrade, "tls-downgrade", &[]),
    (Scenario::WrongPassword, "wrong-password", &[]),
];

/// Replaces every lab port by `<name>` (the closed port by `<closed>`): only where the digits stand alone.
fn name_ports(text: &str, lab: &Lab) -> String {
    let mut ports: Vec<(String, String)> = Vec::new();
    for s in lab.servers() {
        ports.push((s.plain.port().to_string(), format!("<{}>", s.role)));
        if let Some(tls) = s.tls {
            ports.push((tls.port().to_string(), format!("<{}-tls>", s.role)));
        }
    }
    if let Some(closed) = lab.closed_port() {
        ports.push((closed.port().to_string(), "<closed>".into()));
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let end = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |n| i + n);
            let digits = &text[i..end];
            match ports.iter().find(|(p, _)| p == digits) {
                Some((_, name)) => out.push_str(name),
                None => out.push_str(digits),
            }
            i = end;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `12.3 ms` and `(3 ms, exit code 0)` become `# ms`.
fn redact_times(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut fixed = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let next_is_ms = words
                .get(i + 1)
                .is_some_and(|n| *n == "ms" || n.starts_with("ms,") || n.starts_with("ms)"));
            let number = w.trim_start_matches('(');
            if next_is_ms
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                fixed.push(if w.starts_with('(') { "(#" } else { "#" });
            } else {
                fixed.push(w);
            }
        }
        // The renderer right-aligns times, so the spaces before one depend on its digits.
        let mut line = fixed.join(" ");
        while line.contains("  #") {
            line = line.replace("  #", " #");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Sets every timing field of the JSON report to 0.
fn zero_timings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if (key == "ms" || key.ends_with("_ms")) && v.is_number() {
                    *v = Value::from(0);
                } else {
                    zero_timings(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(zero_timings),
        _ => {}
    }
}

fn probe(target: &str, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .arg("probe")
        .arg(target)
        .arg(USER)
        .args(["--password-env", "IMAPREF_TEST_PASSWORD", "--timeout", "5"])
        .args(args)
        .env("IMAPREF_TEST_PASSWORD", PASSWORD)
        .env("NO_COLOR", "1")
        .output()
        .expect("imapref runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(PASSWORD), "the password leaked:\n{stdout}");
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn every_lab_scenario_renders_as_before() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (scenario, name, args) in CASES {
        let lab = rt
            .block_on(Lab::start(LabConfig {
                scenario: *scenario,
                tls: false,
                ..LabConfig::default()
            }))
            .expect("the lab starts");
        let target = lab.front().plain.to_string();

        let (code, human) = probe(&target, &[args, &["-v"][..]].concat());
        let human = format!("exit {code}\n{}", redact_times(&name_ports(&human, &lab)));
        insta::assert_snapshot!(format!("{name}-human"), human);

        let (code, json) = probe(&target, &[args, &["--json", "-v"][..]].concat());
        let mut doc: Value = serde_json::from_str(&json).expect("JSON");
        zero_timings(&mut doc);
        let pretty = serde_json::to_string_pretty(&doc).expect("pretty");
        let json = format!("exit {code}\n{}", name_ports(&pretty, &lab));
        insta::assert_snapshot!(format!("{name}-json"), json);

        rt.block_on(lab.shutdown());
    }
}

#[test]
fn the_redactions_keep_everything_but_ports_and_times() {
    assert_eq!(
        redact_times(
            "  ok    connect           0.6 ms  127.0.0.1:1 (1 address tried)\n(3 ms, exit code 0)"
        ),
        "  ok    connect # ms  127.0.0.1:1 (1 address tried)\n(# ms, exit code 0)\n"
    );
    assert_eq!(
        redact_times("3 round trips, 1.2 ms"),
        "3 round trips, # ms\n"
    );
    let mut v: Value =
        serde_json::json!({"ms": 1.5, "steps": [{"ms": 2, "name": "x"}], "total_ms": 9, "port": 3});
    zero_timings(&mut v);
    assert_eq!(
        v,
        serde_json::json!({"ms": 0, "steps": [{"ms": 0, "name": "x"}], "total_ms": 0, "port": 3})
    );
}
