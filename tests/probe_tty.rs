//! `imapref probe` on a terminal (a pseudo-terminal, expectrl) against the in-process lab and scripted servers: the
//! password prompt names the server and does not echo, `--follow=ask` asks before sending the password to a referred
//! host and obeys the answer, colour follows `--color` and `NO_COLOR`, each step shows as it completes, and Ctrl-C
//! prints what was learned so far and exits 130.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;
use support::lab::TestLab;
use support::pty::Pty;

const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

/// The probe in a pty.
struct Probe;

impl Probe {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Pty {
        Pty::imapref(args, env)
    }
}

#[test]
fn the_password_prompt_does_not_echo_and_ask_follows_on_yes() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let mut probe = Probe::spawn(
        &["--color", "never", "probe", &front, USER, "--follow", "ask"],
        &[],
    );
    probe.expect(&format!("Password for DOMname/UserN/AliasN on {front}: "));
    probe.send_line(PASSWORD);
    probe.expect("send the password there? [y/N]");
    probe.send_line("y");
    probe.expect("OK: `INBOX` of DOMname/UserN/AliasN");
    assert_eq!(probe.exit_code(), 0, "{}", probe.seen);
    assert!(
        !probe.seen.contains(PASSWORD),
        "the password was echoed:\n{}",
        probe.seen
    );
}

#[test]
fn ask_refuses_on_no_and_sends_nothing_further() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let mut probe = Probe::spawn(
        &[
            "--color",
            "never",
            "probe",
            &front,
            USER,
            "--follow",
            "ask",
            "--password-env",
            "PW",
        ],
        &[("PW", PASSWORD)],
    );
    probe.expect("send the password there? [y/N]");
    probe.send_line("n");
    probe.expect("password sent to:");
    probe.expect("CRITICAL: You declined to send the password to");
    assert_eq!(probe.exit_code(), 2, "{}", probe.seen);
    // Only the first server got it.
    let sent = probe
        .seen
        .lines()
        .find(|l| l.starts_with("password sent to:"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(sent.matches("127.0.0.1:").count(), 1, "{sent}");
}

#[test]
fn colour_on_a_terminal_unless_no_color_or_never() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let args = ["probe", front.as_str(), USER, "--password-env", "PW"];
    let mut coloured = Probe::spawn(&args, &[("PW", PASSWORD)]);
    assert_eq!(coloured.exit_code(), 0, "{}", coloured.seen);
    assert!(
        coloured.seen.contains("\x1b["),
        "auto colours on a terminal:\n{}",
        coloured.seen
    );

    let mut no_color = Probe::spawn(&args, &[("PW", PASSWORD), ("NO_COLOR", "1")]);
    assert_eq!(no_color.exit_code(), 0);
    assert!(
        !no_color.seen.contains("\x1b["),
        "NO_COLOR is honoured:\n{}",
        no_color.seen
    );

    let never: Vec<&str> = ["--color", "never"].into_iter().chain(args).collect();
    let mut never = Probe::spawn(&never, &[("PW", PASSWORD)]);
    assert_eq!(never.exit_code(), 0);
    assert!(
        !never.seen.contains("\x1b["),
        "--color never:\n{}",
        never.seen
    );
}

use std::time::{Duration, Instant};

use expectrl::ControlCode;
use support::hostile::{Behaviour, Hostile};

#[test]
fn on_a_terminal_each_step_shows_as_it_completes() {
    // A server that accepts and never greets: the hop and its connect step show at once, the verdict only when the
    // greeting's wait (--timeout 4) is over.
    let server = Hostile::start(Behaviour::SilentGreeting);
    let addr = server.addr();
    let started = Instant::now();
    let mut probe = Probe::spawn(
        &[
            "--color",
            "never",
            "probe",
            &addr,
            USER,
            "--password-env",
            "PW",
            "--timeout",
            "4",
        ],
        &[("PW", PASSWORD)],
    );
    probe.expect(&format!("imapref probe {addr} as {USER}"));
    probe.expect(&format!("hop 1  {addr}  as {USER}  (the server you named)"));
    probe.expect("ok    connect");
    let connect_shown = started.elapsed();
    probe.expect("fail  greeting");
    probe.expect("UNKNOWN:");
    let ended = started.elapsed();
    assert_eq!(probe.exit_code(), 3, "{}", probe.seen);
    assert!(
        connect_shown < Duration::from_secs(2),
        "the connect step took {connect_shown:?} to show"
    );
    assert!(
        ended >= Duration::from_secs(4) && ended - connect_shown >= Duration::from_secs(3),
        "the connect step ({connect_shown:?}) was not shown well before the end ({ended:?})\n{}",
        probe.seen
    );
    // Written once: the live report is the whole report, not followed by a second copy.
    assert_eq!(probe.seen.matches("hop 1").count(), 1, "{}", probe.seen);
    assert_eq!(probe.seen.matches("password sent to:").count(), 1);
}

#[test]
fn the_live_report_is_the_report_written_at_the_end() {
    // The lab's referral walk, on a terminal and through a pipe: the same lines but for the timings.
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let args = [
        "--color",
        "never",
        "probe",
        front.as_str(),
        USER,
        "--password-env",
        "PW",
    ];
    let mut live = Probe::spawn(&args, &[("PW", PASSWORD)]);
    assert_eq!(live.exit_code(), 0, "{}", live.seen);
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_imapref"))
        .args(args)
        .env("PW", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(0));
    let without_timings = |text: &str| -> Vec<String> {
        text.replace("\r\n", "\n")
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| {
                        !w.chars().next().is_some_and(|c| c.is_ascii_digit())
                            && *w != "ms"
                            && *w != "ms,"
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|l| !l.starts_with('('))
            .collect()
    };
    assert_eq!(
        without_timings(&live.seen),
        without_timings(&String::from_utf8_lossy(&piped.stdout))
    );
}

#[test]
fn ctrl_c_prints_what_was_learned_and_exits_130() {
    let server = Hostile::start(Behaviour::SilentGreeting);
    let addr = server.addr();
    let mut probe = Probe::spawn(
        &[
            "--color",
            "never",
            "probe",
            &addr,
            USER,
            "--password-env",
            "PW",
            "--timeout",
            "30",
        ],
        &[("PW", PASSWORD)],
    );
    probe.expect("ok    connect");
    let pressed = Instant::now();
    probe.p.send(ControlCode::EndOfText).unwrap();
    probe.expect("interrupted (Ctrl-C) after");
    probe.expect("password sent to: nobody");
    probe.expect(&format!(
        "UNKNOWN: Interrupted (Ctrl-C) during hop 1 to {addr}, after the connect step."
    ));
    probe.expect("exit code 130)");
    assert_eq!(probe.exit_code(), 130, "{}", probe.seen);
    assert!(pressed.elapsed() < Duration::from_secs(5));
}

#[test]
fn ctrl_c_during_the_login_names_the_server_that_got_the_password() {
    // LOGIN is answered with another tag, then nothing: the probe waits for its answer when Ctrl-C comes.
    let server = Hostile::start(Behaviour::WrongTag);
    let addr = server.addr();
    let mut probe = Probe::spawn(
        &[
            "--color",
            "never",
            "probe",
            &addr,
            USER,
            "--password-env",
            "PW",
            "--timeout",
            "30",
            "--json",
        ],
        &[("PW", PASSWORD)],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.got_credentials() {
        assert!(Instant::now() < deadline, "the server never got LOGIN");
        std::thread::sleep(Duration::from_millis(20));
    }
    probe.p.send(ControlCode::EndOfText).unwrap();
    assert_eq!(probe.exit_code(), 130, "{}", probe.seen);
    // JSON stays one document, written at the end.
    let start = probe.seen.find('{').expect("a JSON document");
    let doc: serde_json::Value =
        serde_json::from_str(probe.seen[start..].trim()).expect("one JSON document");
    assert_eq!(doc["verdict"]["exit_code"], 130);
    assert_eq!(doc["verdict"]["status"], "unknown");
    assert_eq!(doc["password_sent_to"], serde_json::json!([addr]));
    let hop = &doc["hops"][0];
    assert_eq!(hop["error"]["phase"], "interrupted");
    assert_eq!(hop["password_sent"], true);
    let ids: Vec<&str> = doc["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids.last(), Some(&"interrupted"));
    assert!(!probe.seen.contains(PASSWORD));
}

#[test]
fn ctrl_c_at_the_password_prompt_puts_echo_back_and_exits_130() {
    let server = Hostile::start(Behaviour::Normal);
    let addr = server.addr();
    // The pty starts with echo off; a terminal has it on: `stty echo` first, as a shell would leave it.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "stty echo && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_imapref"),
        "--color",
        "never",
        "probe",
        &addr,
        USER,
    ])
    .env_remove("NO_COLOR");
    let mut probe = support::pty::Pty::spawn(cmd);
    probe.expect(&format!("Password for {USER} on {addr}: "));
    assert!(
        !probe.p.get_process().get_echo().unwrap(),
        "the prompt turns echo off"
    );
    probe.p.send(ControlCode::EndOfText).unwrap();
    probe.expect("interrupted at the password prompt; nothing was sent");
    assert_eq!(probe.exit_code(), 130, "{}", probe.seen);
    assert!(
        probe.p.get_process().get_echo().unwrap(),
        "echo was left off after Ctrl-C"
    );
    assert_eq!(server.connections(), 0, "nothing was sent");
}

#[test]
fn ctrl_c_at_a_referral_question_reports_the_hops_done() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let mut probe = Probe::spawn(
        &[
            "--color",
            "never",
            "probe",
            &front,
            USER,
            "--follow",
            "ask",
            "--password-env",
            "PW",
        ],
        &[("PW", PASSWORD)],
    );
    probe.expect("send the password there? [y/N]");
    probe.p.send(ControlCode::EndOfText).unwrap();
    probe.expect(&format!("password sent to: {front}"));
    probe.expect("UNKNOWN: Interrupted (Ctrl-C) after hop 1.");
    assert_eq!(probe.exit_code(), 130, "{}", probe.seen);
    // Hop 1 is whole: its steps, referral and round trips.
    assert!(
        probe.seen.contains("referral: 127.0.0.1:"),
        "{}",
        probe.seen
    );
    assert!(!probe.seen.contains("hop 2"), "{}", probe.seen);
}
