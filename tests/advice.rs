//! The `next:` advice of a probe, checked against what it names: each rerun the advice describes is run, and must get
//! further (follow the referral, or reach the mailbox). Against the in-process lab and scripted servers; a referral
//! to a host that is not trusted is refused before any connection, so its host need not exist.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::time::Duration;

use assert_cmd::Command;
use support::hostile::{Behaviour, Hostile};
use support::lab::TestLab;

const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

/// Runs `imapref probe ARGS --json` without a terminal; the exit code and the report.
fn probe(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::cargo_bin("imapref")
        .unwrap()
        .arg("probe")
        .args(args)
        .args(["--password-env", "PW", "--json", "--timeout", "3"])
        .env("PW", PASSWORD)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn next_step(doc: &serde_json::Value) -> String {
    doc["verdict"]["next_step"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `base` (ending with `--follow MODE`) rerun with the options a piece of advice names (`--follow=auto`, which
/// replaces the mode, and `--allow-host HOST`).
fn rerun(base: &[&str], advice: &str) -> Vec<String> {
    let flags = flags_of(advice);
    let mut args: Vec<String> = base.iter().map(|a| a.to_string()).collect();
    if flags.iter().any(|f| f.starts_with("--follow=")) {
        args.truncate(args.len() - 2);
    }
    args.extend(flags);
    args
}

/// The options a piece of advice names (`--follow=auto`, `--allow-host HOST`), as arguments.
fn flags_of(advice: &str) -> Vec<String> {
    let words: Vec<&str> = advice
        .split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',']))
        .collect();
    let mut flags = Vec::new();
    for (i, w) in words.iter().enumerate() {
        // `instead of --follow=never` names the option to drop, not one to add.
        let dropped = i > 0 && matches!(words[i - 1], "of" | "without");
        if w.starts_with("--follow=") && !dropped {
            flags.push(w.to_string());
        }
        if *w == "--allow-host" {
            flags.push("--allow-host".into());
            flags.push(words[i + 1].to_string());
        }
    }
    flags
}

#[test]
fn follow_never_is_told_to_rerun_with_follow_auto_not_allow_host() {
    // The KB's case: the front refers to the home server, on loopback like the front (trusted).
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let (code, doc) = probe(&[&front, USER, "--follow", "never"]);
    assert_eq!(code, 2);
    let advice = next_step(&doc);
    assert_eq!(
        advice,
        "Rerun with --follow=auto instead of --follow=never to follow it."
    );
    // Following the advice reaches the mailbox.
    let args = rerun(&[&front, USER, "--follow", "never"], &advice);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, doc) = probe(&args);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_referral_to_an_untrusted_host_names_the_flags_that_follow_it() {
    // The server refers the user to a host outside the trusted set; the probe refuses before connecting there. Each
    // mode's advice is followed, and the rerun then follows the referral (and fails to reach that host, which does
    // not exist: a different finding, not the policy's).
    let server = Hostile::start(Behaviour::LoginAnswer(
        "{tag} NO [REFERRAL imap://victim@mail.other.invalid/] go there".into(),
    ));
    let addr = server.addr();
    for (mode, expected) in [
        (
            "auto",
            "Rerun with --allow-host mail.other.invalid if you trust that server, or run it on a terminal to be asked.",
        ),
        (
            "ask",
            "Run it on a terminal to be asked, or rerun with --follow=auto --allow-host mail.other.invalid.",
        ),
        (
            "never",
            "Rerun with --follow=auto --allow-host mail.other.invalid instead of --follow=never to follow it.",
        ),
    ] {
        let (code, doc) = probe(&[&addr, USER, "--follow", mode]);
        assert_eq!(code, 2, "{doc:#}");
        let advice = next_step(&doc);
        assert_eq!(advice, expected, "--follow {mode}");
        let ids: Vec<&str> = doc["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        assert!(ids.contains(&"policy-refused"), "{ids:?}");

        let args = rerun(&[&addr, USER, "--follow", mode], &advice);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, doc) = probe(&args);
        let ids: Vec<&str> = doc["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["id"].as_str())
            .collect();
        assert!(
            !ids.contains(&"policy-refused") && ids.contains(&"referral-unreachable"),
            "--follow {mode} with {args:?}: the referral was still not followed: {ids:?}"
        );
    }
}

#[test]
fn a_plaintext_probe_of_a_tls_port_is_told_to_use_tls_on_the_same_port() {
    let lab = TestLab::start();
    let imaps = lab
        .lab
        .as_ref()
        .unwrap()
        .front()
        .tls
        .expect("the lab has an IMAPS port")
        .to_string();
    let (code, doc) = probe(&[&imaps, USER]);
    assert_eq!(code, 3, "{doc:#}");
    let advice = next_step(&doc);
    assert_eq!(
        advice,
        format!("Rerun with --tls on the same port: imapref probe --tls {imaps} ...")
    );
    // As told: the lab's certificate is signed by its own CA, which the system does not trust; the advice names
    // --ca-file (not the TLS mode, which is right)...
    let (code, doc) = probe(&["--tls", &imaps, USER]);
    assert_eq!(code, 2, "{doc:#}");
    let advice = next_step(&doc);
    assert!(
        advice.starts_with("Trust the certificate's CA with --ca-file FILE")
            && !advice.contains("--starttls"),
        "{advice}"
    );
    // ... and with the lab's CA file it reaches the mailbox.
    let ca = lab
        .lab
        .as_ref()
        .unwrap()
        .ca_file()
        .to_string_lossy()
        .into_owned();
    let (code, doc) = probe(&["--tls", &imaps, USER, "--ca-file", &ca]);
    assert_eq!(code, 0, "{doc:#}");
}
