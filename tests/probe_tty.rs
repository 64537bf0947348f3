//! `imapref probe` on a terminal (a pseudo-terminal, expectrl) against the in-process lab: the password prompt does not
//! echo, `--follow=ask` asks before sending the password to a referred host and obeys the answer, and colour follows
//! `--color` and `NO_COLOR`.
#![cfg(unix)]

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use expectrl::{Eof, WaitStatus};
use imapref::lab::{Lab, LabConfig};

const TIMEOUT: Duration = Duration::from_secs(10);
const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

/// The lab on a runtime of its own (the test thread blocks in expect).
struct TestLab {
    rt: tokio::runtime::Runtime,
    lab: Option<Lab>,
}

impl TestLab {
    fn start() -> TestLab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let lab = rt
            .block_on(Lab::start(LabConfig::default()))
            .expect("the lab starts");
        TestLab { rt, lab: Some(lab) }
    }

    fn front(&self) -> String {
        self.lab.as_ref().expect("lab").front().plain.to_string()
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            self.rt.block_on(lab.shutdown());
        }
    }
}

/// The probe in a pty; everything it printed is kept.
struct Probe {
    p: expectrl::Session,
    seen: String,
}

impl Probe {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Probe {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imapref"));
        cmd.args(args).env("TERM", "xterm").env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
        p.set_expect_timeout(Some(TIMEOUT));
        Probe {
            p,
            seen: String::new(),
        }
    }

    #[track_caller]
    fn expect(&mut self, needle: &str) {
        match self.p.expect(needle) {
            Ok(found) => {
                self.seen.push_str(&String::from_utf8_lossy(found.before()));
                for m in found.matches() {
                    self.seen.push_str(&String::from_utf8_lossy(m));
                }
            }
            Err(e) => panic!(
                "`{needle}` did not come ({e})\n--- output so far ---\n{}",
                self.seen
            ),
        }
    }

    /// Waits for the end of output and returns the exit code.
    #[track_caller]
    fn exit_code(&mut self) -> i32 {
        if let Ok(found) = self.p.expect(Eof) {
            self.seen.push_str(&String::from_utf8_lossy(found.before()));
            for m in found.matches() {
                self.seen.push_str(&String::from_utf8_lossy(m));
            }
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.p.get_process().status().expect("status") {
                WaitStatus::Exited(_, code) => return code,
                WaitStatus::StillAlive if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                other => panic!("the probe did not exit normally: {other:?}\n{}", self.seen),
            }
        }
    }
}

#[test]
fn the_password_prompt_does_not_echo_and_ask_follows_on_yes() {
    let lab = TestLab::start();
    let front = lab.front();
    let mut probe = Probe::spawn(
        &["--color", "never", "probe", &front, USER, "--follow", "ask"],
        &[],
    );
    probe.expect("Password for DOMname/UserN/AliasN");
    probe.p.send_line(PASSWORD).expect("type the password");
    probe.expect("send the password there? [y/N]");
    probe.p.send_line("y").expect("answer");
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
    let front = lab.front();
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
    probe.p.send_line("n").expect("answer");
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
    let front = lab.front();
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
