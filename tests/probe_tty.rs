//! `imapref probe` on a terminal (a pseudo-terminal, expectrl) against the in-process lab: the password prompt does not
//! echo, `--follow=ask` asks before sending the password to a referred host and obeys the answer, and colour follows
//! `--color` and `NO_COLOR`.
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
