//! `imapref shell` without a terminal: lines from stdin run in order, stdout gets exactly the server's lines, and the
//! exit status is that of the last command (0 OK, 1 NO, 2 BAD, BYE, a lost connection or a timeout). Against the
//! in-process lab, tiny scripted servers, and a real Dovecot (`support::dovecot`).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use imapref::lab::LabConfig;

const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

use support::lab::TestLab;
use support::run::{shows, Run};
use support::scripted::line_server;

/// The home server of a running test lab.
fn home_of(lab: &TestLab) -> SocketAddr {
    lab.lab.as_ref().unwrap().server("home").unwrap().plain
}

/// Runs `imapref shell ARGS` with `input` on stdin (a pipe, so the shell runs as a script).
fn shell(args: &[&str], input: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("imapref")
        .unwrap()
        .arg("shell")
        .args(args)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("NO_COLOR")
        .timeout(Duration::from_secs(60))
        .write_stdin(input)
        .output()
        .unwrap();
    let run = Run::from(out);
    assert!(
        !home.path().join("data").exists(),
        "a piped shell keeps no history"
    );
    run
}

#[test]
fn the_kb_walkthrough_ending_with_logout_exits_0_with_exactly_the_server_lines() {
    let lab = TestLab::with(LabConfig::default());
    let input = format!("? login {USER} {PASSWORD}\n? Select Inbox\n? logout\n");
    let run = shell(&[&lab.front().to_string()], &input);
    assert_eq!(run.code, 0, "{}", shows(&run));
    let expected = format!(
        "* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (front.lab) ready\n\
         ? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}] LOGIN completed\n\
         ? NO There is no replica for that mailbox on this server.\n\
         * BYE Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 signing off\n\
         ? OK LOGOUT completed\n",
        home_of(&lab).port()
    );
    assert_eq!(run.stdout, expected, "{}", shows(&run));
    // The shell's notes go to stderr: the referral decoded, no colour anywhere.
    assert!(
        run.stderr.contains(&format!(
            "login referral (logged in here, but the mailboxes are there): {} as {USER}",
            home_of(&lab)
        )),
        "{}",
        shows(&run)
    );
    assert!(!run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'));
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[test]
fn the_kb_walkthrough_ending_with_select_exits_1() {
    let lab = TestLab::with(LabConfig::default());
    let input = format!("# KB Q217388, step 4 to 6\n\n? login {USER} {PASSWORD}\n? Select Inbox\n");
    let run = shell(&[&lab.front().to_string()], &input);
    assert_eq!(run.code, 1, "{}", shows(&run));
    assert!(run
        .stdout
        .ends_with("? NO There is no replica for that mailbox on this server.\n"));
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[test]
fn bad_exits_2() {
    let lab = TestLab::with(LabConfig::default());
    let run = shell(&[&lab.front().to_string()], "? noop\nbogus command\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(run.stdout.contains(" BAD "), "{}", shows(&run));
    // The last command decides: BAD then OK is 0.
    let run = shell(&[&lab.front().to_string()], "bogus command\n? noop\n");
    assert_eq!(run.code, 0, "{}", shows(&run));
}

#[test]
fn follow_and_select_on_home_in_a_script() {
    let lab = TestLab::with(LabConfig::default());
    let input = format!(
        "? login {USER} {PASSWORD}\n:follow\na1 select inbox\n:back\n? Select Inbox\n:follow\na1 examine inbox\n"
    );
    let run = shell(&[&lab.front().to_string()], &input);
    assert_eq!(run.code, 0, "{}", shows(&run));
    assert!(run.stdout.contains("* 3 EXISTS\n"), "{}", shows(&run));
    assert!(
        run.stdout.contains("? NO There is no replica"),
        "{}",
        shows(&run)
    );
    assert!(run.stdout.contains("a1 OK [READ-ONLY]"), "{}", shows(&run));
    assert!(
        run.stderr.contains(&format!("LOGIN {USER} ***")),
        "{}",
        shows(&run)
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[test]
fn login_takes_the_password_from_the_environment() {
    let lab = TestLab::with(LabConfig::default());
    let home = Command::cargo_bin("imapref")
        .unwrap()
        .args([
            "shell",
            &home_of(&lab).to_string(),
            "--password-env",
            "SHELL_TEST_PW",
        ])
        .env("SHELL_TEST_PW", PASSWORD)
        .env("HOME", "/nonexistent")
        .write_stdin(format!(
            ":login {USER}\na1 select INBOX\n:transcript /dev/stdout\n"
        ))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&home.stdout);
    let stderr = String::from_utf8_lossy(&home.stderr);
    assert_eq!(home.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("* 3 EXISTS"), "{stdout}");
    assert!(
        stdout.contains(&format!("C: a1 LOGIN {USER} ***")),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // Without a password source there is no one to ask.
    let run = shell(&[&home_of(&lab).to_string()], &format!(":login {USER}\n"));
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(run.stderr.contains("--password-env"), "{}", shows(&run));
}

#[test]
fn literals_and_8bit_arguments_are_sent_correctly() {
    let lab = TestLab::with(LabConfig::default());
    // A literal typed by hand, its data on the next lines; then an 8-bit mailbox name, sent as a literal.
    let input = format!("a1 LOGIN {{20}}\n{USER} {{8}}\n{PASSWORD}\n:raw on\na2 select Entwürfe\n");
    let run = shell(&[&home_of(&lab).to_string()], &input);
    assert_eq!(run.code, 1, "{}", shows(&run));
    assert!(run.stdout.contains("a1 OK"), "{}", shows(&run));
    // The home server has LITERAL+: no waiting, `{n+}`.
    assert!(
        run.stdout
            .contains("C: a2 select {9+}\\r\\n\nC: Entw\\xC3\\xBCrfe\\r\\n"),
        "{}",
        shows(&run)
    );
    assert!(!run.stdout.contains(PASSWORD));
}

#[test]
fn control_bytes_are_refused_and_fail_the_run() {
    let lab = TestLab::with(LabConfig::default());
    let run = shell(&[&lab.front().to_string()], "? login x\0y\n? noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(
        run.stderr.contains("line 1: the line holds a NUL byte"),
        "{}",
        shows(&run)
    );
    assert!(
        run.stdout.contains("? OK NOOP completed"),
        "{}",
        shows(&run)
    );
    let run = shell(&[&lab.front().to_string()], "? noop\x1b[2J\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(!run.stdout.contains("NOOP completed"), "{}", shows(&run));
}

#[test]
fn no_connection_exits_2() {
    let run = shell(&[], "? noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(run.stderr.contains("not connected"), "{}", shows(&run));
    // A target nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = shell(&[&closed.to_string()], "? noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(run.stderr.contains("cannot open"), "{}", shows(&run));
}

#[test]
fn a_bad_target_is_a_usage_error() {
    let run = shell(&["host:99999"], "");
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(run.stderr.contains("99999"), "{}", shows(&run));
}

#[test]
fn a_lost_connection_exits_2() {
    // Closes the connection at the first command, without a word.
    let (addr, _) = line_server(|_| None);
    let run = shell(&[&addr.to_string()], "a1 noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(run.stderr.contains("connection lost"), "{}", shows(&run));

    // BYE and close: the command never completes.
    let (addr, _) = line_server(|_| Some(vec!["* BYE shutting down".into()]));
    let run = shell(&[&addr.to_string()], "a1 noop\na2 noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(
        run.stdout.contains("* BYE shutting down"),
        "{}",
        shows(&run)
    );
}

#[test]
fn silence_is_a_timeout_and_exits_2() {
    let (addr, _) = line_server(|_| Some(Vec::new()));
    let started = std::time::Instant::now();
    let run = shell(&[&addr.to_string(), "--timeout", "1"], "a1 noop\n");
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(
        run.stderr.contains("no answer to `a1` within 1 s"),
        "{}",
        shows(&run)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn synchronizing_literals_wait_for_the_continuation() {
    fn answer(line: &str) -> Option<Vec<String>> {
        let tag = line.split(' ').next().unwrap_or("*");
        Some(vec![format!("{tag} OK done")])
    }
    let (addr, received) = line_server(answer);
    let run = shell(&[&addr.to_string()], "a1 LOGIN jürgen pässword\n");
    assert_eq!(run.code, 0, "{}", shows(&run));
    let got: Vec<String> = received.try_iter().take(5).collect();
    assert_eq!(
        got,
        [
            "a1 LOGIN {7} (early data: false)",
            "jürgen",
            " {9} (early data: false)",
            "pässword",
            "",
        ],
        "{}",
        shows(&run)
    );
    assert!(
        run.stdout.contains("+ Ready for literal data"),
        "{}",
        shows(&run)
    );
    assert!(!run.stdout.contains("pässword") && !run.stderr.contains("pässword"));
}

#[test]
fn connect_starttls_and_follow_at_the_same_level() {
    let lab = TestLab::with(LabConfig::default());
    let ca = lab.lab.as_ref().unwrap().ca_file().to_path_buf();
    let input = format!(
        ":connect {}\n:starttls\n? login {USER} {PASSWORD}\n:follow\na1 select inbox\n",
        lab.front()
    );
    let run = shell(&["--ca-file", &ca.to_string_lossy()], &input);
    assert_eq!(run.code, 0, "{}", shows(&run));
    // STARTTLS on front by hand, then on home by :follow, which never goes below the first hop's protection.
    assert_eq!(run.stderr.matches("TLS: CN=").count(), 2, "{}", shows(&run));
    assert!(run.stdout.contains("* 3 EXISTS"), "{}", shows(&run));
}

#[test]
fn big_literals_are_streamed_and_binary_ones_summarised() {
    fn answer(line: &str) -> Option<Vec<String>> {
        let tag = line.split(' ').next().unwrap_or("*").to_string();
        if line.contains("BODY[1]") {
            let data: String = (0..2_000_000u32)
                .map(|i| char::from((i % 32) as u8))
                .collect();
            let data = data.replace(['\r', '\n'], "\0");
            return Some(vec![
                format!("* 1 FETCH (BODY[1] {{{}}}", data.len()),
                format!("{data})"),
                format!("{tag} OK FETCH completed"),
            ]);
        }
        if line.contains("BODY[2]") {
            let text = "a line of text\r\n".repeat(100_000);
            return Some(vec![
                format!("* 2 FETCH (BODY[2] {{{}}}", text.len()),
                format!("{text})"),
                format!("{tag} OK FETCH completed"),
            ]);
        }
        Some(vec![format!("{tag} OK done")])
    }
    let (addr, _) = line_server(answer);
    let run = shell(
        &[&addr.to_string()],
        "a1 FETCH 1 BODY[1]\na2 FETCH 2 BODY[2]\n",
    );
    assert_eq!(run.code, 0, "{}", shows(&run));
    assert!(
        run.stdout
            .contains("* 1 FETCH (BODY[1] {2000000}\n)\na1 OK FETCH completed\n"),
        "{}",
        &run.stdout[..run.stdout.len().min(300)]
    );
    assert!(
        run.stderr
            .contains("(1.9 MiB (2000000 bytes) of binary data, not shown)"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains('\0'));
    assert_eq!(run.stdout.matches("a line of text\n").count(), 100_000);
    assert!(run
        .stdout
        .contains("* 2 FETCH (BODY[2] {1600000}\na line of text\n"));
    assert!(
        run.stdout
            .ends_with("a line of text\n)\na2 OK FETCH completed\n"),
        "{}",
        &run.stdout[run.stdout.len() - 200..]
    );
}

#[test]
fn a_bye_referral_greeting_can_be_followed() {
    let lab = TestLab::with(LabConfig {
        scenario: imapref::lab::Scenario::ByeGreeting,
        ..LabConfig::default()
    });
    // The password comes first on stdin, the commands after it.
    let input = format!("{PASSWORD}\n:follow\na1 select inbox\n");
    let run = shell(
        &[&lab.front().to_string(), "--user", USER, "--password-stdin"],
        &input,
    );
    assert_eq!(run.code, 0, "{}", shows(&run));
    assert!(
        run.stdout.starts_with("* BYE [REFERRAL imap://"),
        "{}",
        shows(&run)
    );
    assert!(
        run.stderr.contains("login referral (not logged in here)"),
        "{}",
        shows(&run)
    );
    assert!(run.stdout.contains("* 3 EXISTS"), "{}", shows(&run));
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

mod dovecot {
    use super::*;
    use crate::support::dovecot::{DovecotLab, ReferTo, PASSWORD, PINGPONG_USER};
    use imapref::lab::Scenario;

    #[test]
    fn a_referral_loop_between_two_dovecots_is_refused_and_named() {
        // front refers pingpong to home, and home refers it back to front.
        let lab = DovecotLab::start();
        let input = format!("a1 LOGIN {PINGPONG_USER} {PASSWORD}\n:follow\n:follow\n");
        let run = shell(&[&lab.front.to_string()], &input);
        let (front, home) = (lab.front.to_string(), lab.home.to_string());
        assert_eq!(run.code, 2, "{}\n{}", shows(&run), lab.logs());
        assert!(
            run.stderr.contains(&format!("now on {home}")),
            "the first follow goes to home: {}",
            shows(&run)
        );
        let refusal = format!(
            "not following: the referrals loop: {front} → {home} → {front} (same host, port and user again)"
        );
        assert!(run.stderr.contains(&refusal), "{}", shows(&run));
        assert_eq!(
            run.stderr.matches("now on ").count(),
            1,
            "the second :follow opens nothing: {}",
            shows(&run)
        );
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    }

    /// A (Dovecot front) refers the KB user to the lab's `mailbox-referral` front, which, like Cyrus, refers a
    /// mailbox only after RLIST, with an empty user (`imap://;AUTH=*@pub/...`).
    fn dovecot_then_cyrus_like() -> (TestLab, DovecotLab, String) {
        let cyrus = TestLab::with(LabConfig {
            scenario: Scenario::MailboxReferral,
            ..LabConfig::default()
        });
        let lab = DovecotLab::start_referring(Some(ReferTo {
            user: USER.into(),
            password: super::PASSWORD.into(),
            to: cyrus.front(),
        }));
        let input = format!(
            "a1 LOGIN {USER} {}\n:follow\na2 RLIST \"\" \"Public Folders/*\"\na3 SELECT \"Public Folders/Announcements\"\n:follow\na4 SELECT \"Public Folders/Announcements\"\n",
            super::PASSWORD
        );
        (cyrus, lab, input)
    }

    #[test]
    fn max_hops_1_stops_the_second_hop() {
        let (cyrus, lab, input) = dovecot_then_cyrus_like();
        let run = shell(&[&lab.front.to_string(), "--max-hops", "1"], &input);
        // The last command, a4, gets the server's NO again: exit 1, as for any NO.
        assert_eq!(run.code, 1, "{}\n{}", shows(&run), lab.logs());
        assert!(
            run.stderr.contains(&format!("now on {}", cyrus.front())),
            "{}",
            shows(&run)
        );
        assert!(
            run.stderr
                .contains("not following: more than 1 referrals (--max-hops)"),
            "{}",
            shows(&run)
        );
        assert_eq!(run.stderr.matches("now on ").count(), 1, "{}", shows(&run));
    }

    #[test]
    fn dovecot_then_a_cyrus_like_mailbox_referral_with_an_empty_user_reaches_the_mailbox() {
        let (cyrus, lab, input) = dovecot_then_cyrus_like();
        let run = shell(&[&lab.front.to_string()], &input);
        assert_eq!(run.code, 0, "{}\n{}", shows(&run), lab.logs());
        let publ = cyrus.lab.as_ref().unwrap().server("pub").unwrap().plain;
        assert!(
            run.stdout.contains("a3 NO [REFERRAL imap://"),
            "the mailbox referral: {}",
            shows(&run)
        );
        assert!(
            run.stderr.contains(&format!("now on {publ}")),
            "{}",
            shows(&run)
        );
        assert!(run.stdout.contains("* 2 EXISTS"), "{}", shows(&run));
        assert!(run.stdout.contains("a4 OK"), "{}", shows(&run));
        assert!(!run.stdout.contains(super::PASSWORD) && !run.stderr.contains(super::PASSWORD));
    }

    #[test]
    fn local_user_selects_inbox_and_logs_out() {
        let lab = DovecotLab::start();
        let input = format!("a1 LOGIN local {PASSWORD}\na2 SELECT INBOX\na3 LOGOUT\n");
        let run = shell(&[&lab.front.to_string()], &input);
        assert_eq!(run.code, 0, "{}\n{}", shows(&run), lab.logs());
        assert!(run.stdout.contains(" EXISTS\n"), "{}", shows(&run));
        assert!(run.stdout.contains("a2 OK"), "{}", shows(&run));
        assert!(run.stdout.contains("a3 OK"), "{}", shows(&run));
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    }

    #[test]
    fn referred_user_gets_no_referral_and_exits_1() {
        let lab = DovecotLab::start();
        let input = format!("a1 LOGIN referred {PASSWORD}\n");
        let run = shell(&[&lab.front.to_string()], &input);
        assert_eq!(run.code, 1, "{}\n{}", shows(&run), lab.logs());
        let expected = format!(
            "a1 NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:{}/] Try this server instead.\n",
            lab.home.port()
        );
        assert!(run.stdout.contains(&expected), "{}", shows(&run));
        assert!(
            run.stderr.contains("login referral (not logged in here)"),
            "{}",
            shows(&run)
        );
    }

    #[test]
    fn referred_user_follows_to_home_with_authenticate_plain() {
        let lab = DovecotLab::start();
        let input = format!("a1 LOGIN referred {PASSWORD}\n:follow\na2 SELECT INBOX\n");
        let run = shell(&[&lab.front.to_string()], &input);
        assert_eq!(run.code, 0, "{}\n{}", shows(&run), lab.logs());
        assert!(
            run.stderr.contains("AUTHENTICATE PLAIN ***"),
            "{}",
            shows(&run)
        );
        assert!(run.stdout.contains("* 1 EXISTS"), "{}", shows(&run));
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    }
}

#[test]
fn a_greeting_dripped_byte_by_byte_is_cut_off_by_max_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        for b in b"* OK a greeting that never ends".iter().cycle().take(40) {
            if socket.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(250));
        }
    });
    let started = std::time::Instant::now();
    let run = shell(
        &[&addr.to_string(), "--timeout", "5", "--max-time", "2"],
        "a1 NOOP\n",
    );
    let took = started.elapsed();
    assert_eq!(run.code, 2, "{}", shows(&run));
    assert!(
        took < Duration::from_secs(4),
        "took {took:?}: {}",
        shows(&run)
    );
    assert!(run.stderr.contains("--max-time"), "{}", shows(&run));
    server.join().unwrap();
}

#[test]
fn a_server_that_echoes_the_password_has_it_masked() {
    // The server repeats the password in an untagged line, in its NO text and in the AUTHENTICATE PLAIN form's
    // base64 (issue 9): the shell shows each as ***.
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let server = support::hostile::Hostile::start(support::hostile::Behaviour::LoginAnswer(format!(
        "* OK you sent {PASSWORD} (as {blob})\r\n{{tag}} NO [AUTHENTICATIONFAILED] {PASSWORD} is not right\r\n"
    )));
    let addr = server.addr();
    // A LOGIN typed whole.
    let run = shell(&[&addr], &format!("a1 login {USER} {PASSWORD}\n"));
    assert_eq!(run.code, 1, "{}", shows(&run));
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "{}",
        shows(&run)
    );
    assert!(!run.stdout.contains(&blob), "{}", shows(&run));
    assert!(
        run.stdout.contains("* OK you sent *** (as ***)"),
        "{}",
        shows(&run)
    );
    assert!(
        run.stdout
            .contains("a1 NO [AUTHENTICATIONFAILED] *** is not right"),
        "{}",
        shows(&run)
    );
    // :login with the password from the environment.
    let server = support::hostile::Hostile::start(support::hostile::Behaviour::LoginAnswer(
        format!("{{tag}} NO {PASSWORD}? no\r\n"),
    ));
    let out = Command::cargo_bin("imapref")
        .unwrap()
        .args(["shell", &server.addr(), "--password-env", "ECHO_PW"])
        .env("ECHO_PW", PASSWORD)
        .env("HOME", "/nonexistent")
        .write_stdin(format!(":login {USER}\n"))
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("NO ***? no"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
}
