//! `imapref shell` on a terminal: the binary runs in a pseudo-terminal (expectrl) against the in-process lab, or
//! against a tiny scripted server where the lab cannot do what a test needs (push a line while the user types,
//! stay silent). HOME and XDG_DATA_HOME point into a temporary directory, so nothing touches the real home.
//!
//! Every wait is an `expect` with a 10 s bound; there are no fixed sleeps.
//!
//! Most lines are typed one key at a time, each waiting for rustyline's echo (tests/support/pty.rs), as a person
//! types; `a_line_sent_in_one_write_is_read_whole` sends whole lines in one write, as a paste does.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use expectrl::{ControlCode, WaitStatus};
mod support;
use support::lab::TestLab;
use support::pty::{Pty, REDRAW_END, TIMEOUT};

const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

/// The shell in a pty, with a home of its own.
struct Shell {
    pty: Pty,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Shell {
    type Target = Pty;
    fn deref(&self) -> &Pty {
        &self.pty
    }
}

impl std::ops::DerefMut for Shell {
    fn deref_mut(&mut self) -> &mut Pty {
        &mut self.pty
    }
}

impl Shell {
    fn spawn(args: &[&str]) -> Shell {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imapref"));
        cmd.arg("--color")
            .arg("never")
            .arg("shell")
            .args(args)
            .arg("--history")
            .arg(dir.path().join("history"))
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env_remove("NO_COLOR")
            .env_remove("IMAPREF_PASSWORD");
        Shell {
            pty: Pty::spawn(cmd),
            dir,
        }
    }

    fn history_path(&self) -> PathBuf {
        self.dir.path().join("history")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn prompt_of(addr: SocketAddr) -> String {
    format!("{addr}> ")
}

fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_kb_walkthrough_typed_verbatim() {
    let lab = TestLab::start();
    let (front, home) = (lab.front(), lab.home());
    let mut sh = Shell::spawn(&[&front.to_string()]);
    sh.expect("(front.lab) ready");
    sh.expect("capabilities:");
    sh.prompt(&prompt_of(front));
    sh.type_line(&format!("? login {USER} {PASSWORD}"));
    sh.expect(&format!(
        "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}] LOGIN completed",
        home.port()
    ));
    sh.expect(&format!(
        "login referral (logged in here, but the mailboxes are there): {home} as {USER}; :follow goes there"
    ));
    sh.prompt(&prompt_of(front));
    sh.type_line("? Select Inbox");
    sh.expect("? NO There is no replica for that mailbox on this server.");
    sh.expect("holds no replica");
    sh.prompt(&prompt_of(front));
    sh.type_line(":explain");
    sh.expect("diagnosis:");
    sh.prompt(&prompt_of(front));
    sh.type_line("? logout");
    sh.expect("* BYE");
    sh.expect("? OK LOGOUT completed");
    sh.prompt(&format!("{front} (closed)> "));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );

    // The password was masked while typed and never printed; the history holds the redacted line only.
    assert!(!sh.seen.contains(PASSWORD), "{}", sh.seen);
    // The mask is a fixed `***`, whatever the password's length, with the cursor hidden while it is on the line.
    assert!(
        sh.seen.contains(&format!("? login {USER} ***")),
        "{}",
        sh.seen
    );
    assert!(
        !sh.seen.contains("****"),
        "the mask shows the length:\n{}",
        sh.seen
    );
    assert!(sh.seen.contains("\x1b[?25l"), "{}", sh.seen);
    assert!(sh.seen.contains("\x1b[?25h"), "{}", sh.seen);
    let history = read_file(&sh.history_path());
    assert!(
        history.contains(&format!("? login {USER} ***")),
        "{history}"
    );
    assert!(history.contains("? Select Inbox"), "{history}");
    assert!(!history.contains(PASSWORD), "{history}");
}

#[test]
fn follow_the_referral_and_come_back() {
    let lab = TestLab::start();
    let (front, home) = (lab.front(), lab.home());
    let mut sh = Shell::spawn(&[&front.to_string()]);
    sh.prompt(&prompt_of(front));
    sh.type_line(&format!("? login {USER} {PASSWORD}"));
    sh.expect("LOGIN completed");
    sh.prompt(&prompt_of(front));
    sh.type_line(":follow");
    sh.prompt(&format!(
        "Log in to {home} (the host you named) as {USER}, reusing the password you typed? [y/N] "
    ));
    sh.type_line("y");
    sh.expect("(home.lab) ready");
    sh.expect(&format!("LOGIN {USER} ***"));
    sh.expect("OK [CAPABILITY");
    sh.expect(&format!("now on {home}"));
    sh.prompt(&format!("{home} (2)> "));
    sh.type_line("a1 select inbox");
    sh.expect("* 3 EXISTS");
    sh.expect("a1 OK [READ-WRITE] SELECT completed");
    sh.prompt(&format!("{home} (2)> "));
    sh.type_line(":back");
    sh.expect("* BYE");
    sh.expect(&format!("back on {front} as {USER}"));
    sh.prompt(&prompt_of(front));
    sh.type_line("? Select Inbox");
    sh.expect("? NO There is no replica");
    sh.prompt(&prompt_of(front));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    sh.expect("* BYE");
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
    assert!(!sh.seen.contains(PASSWORD), "{}", sh.seen);
}

#[test]
fn login_asks_the_password_without_echo() {
    let lab = TestLab::start();
    let home = lab.home();
    let mut sh = Shell::spawn(&[&home.to_string()]);
    sh.prompt(&prompt_of(home));
    sh.type_line(&format!(":login {USER}"));
    sh.expect(&format!("Password for {USER} on {home}: "));
    sh.send_line(PASSWORD);
    sh.expect(&format!("LOGIN {USER} ***"));
    sh.expect("LOGIN completed");
    sh.prompt(&prompt_of(home));
    let transcript = sh.path("transcript.txt");
    sh.type_line(&format!(":transcript {}", transcript.display()));
    sh.expect("written to");
    sh.prompt(&prompt_of(home));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    sh.expect("LOGOUT completed");
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
    assert!(!sh.seen.contains(PASSWORD), "{}", sh.seen);
    let text = read_file(&transcript);
    assert!(text.contains(&format!("LOGIN {USER} ***")), "{text}");
    // Created readable by its owner only, as the history file.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&transcript).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the transcript file is {mode:o}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!read_file(&sh.history_path()).contains(PASSWORD));
}

#[test]
fn tab_completes_commands_and_mailboxes() {
    let lab = TestLab::start();
    let home = lab.home();
    let mut sh = Shell::spawn(&[&home.to_string()]);
    sh.prompt(&prompt_of(home));
    sh.type_text("? capa\t");
    sh.p.send("\r").unwrap();
    sh.expect("? OK CAPABILITY completed");
    sh.prompt(&prompt_of(home));
    sh.type_line(&format!("a1 login {USER} {PASSWORD}"));
    sh.expect("a1 OK");
    sh.prompt(&prompt_of(home));
    sh.type_line("a2 list \"\" *");
    sh.expect("a2 OK LIST completed");
    sh.prompt(&prompt_of(home));
    sh.type_text("a3 sel\t");
    sh.type_text(" Sen\t");
    sh.p.send("\r").unwrap();
    sh.expect("a3 OK");
    sh.prompt(&prompt_of(home));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
    // What the completions made of the lines reached the history.
    let history = read_file(&sh.history_path());
    assert!(history.contains("? CAPABILITY"), "{history}");
    assert!(history.contains("a3 SELECT \"Sent Items\""), "{history}");
}

#[test]
fn ctrl_c_cancels_the_line_and_ctrl_d_logs_out() {
    let lab = TestLab::start();
    let front = lab.front();
    let mut sh = Shell::spawn(&[&front.to_string()]);
    sh.prompt(&prompt_of(front));
    sh.type_text("a9 DELETE never-sent");
    sh.p.send(ControlCode::EndOfText).unwrap();
    sh.prompt(&prompt_of(front));
    sh.type_line("? noop");
    sh.expect("? OK NOOP completed");
    sh.prompt(&prompt_of(front));
    let transcript = sh.path("t.txt");
    sh.type_line(&format!(":transcript {}", transcript.display()));
    sh.expect("written to");
    sh.prompt(&prompt_of(front));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    sh.expect("* BYE");
    sh.expect("OK LOGOUT completed");
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
    let text = read_file(&transcript);
    assert!(text.contains("C: ? noop"), "{text}");
    assert!(!text.contains("never-sent"), "{text}");
}

/// A scripted server: greets, then for each command line received sends what `answer` says, and lets the test
/// push lines at any time.
struct TinyServer {
    addr: SocketAddr,
    push: mpsc::Sender<String>,
    received: mpsc::Receiver<String>,
}

impl TinyServer {
    /// `answer` gets a command line and returns the lines to send back (empty: stay silent).
    fn start(answer: fn(&str) -> Vec<String>) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (push, pushed) = mpsc::channel::<String>();
        let (got, received) = mpsc::channel::<String>();
        thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut writer = stream.try_clone().unwrap();
            writer
                .write_all(
                    b"* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS] tiny test server ready\r\n",
                )
                .unwrap();
            let pusher = stream.try_clone().unwrap();
            thread::spawn(move || {
                let mut pusher: TcpStream = pusher;
                for line in pushed {
                    if pusher.write_all(format!("{line}\r\n").as_bytes()).is_err() {
                        break;
                    }
                }
            });
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let _ = got.send(line.clone());
                for reply in answer(&line) {
                    if writer.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
                        return;
                    }
                }
            }
        });
        TinyServer {
            addr,
            push,
            received,
        }
    }
}

fn ok_to_everything(line: &str) -> Vec<String> {
    let tag = line.split(' ').next().unwrap_or("*");
    if line.to_ascii_uppercase().contains("LOGOUT") {
        return vec!["* BYE bye".into(), format!("{tag} OK LOGOUT completed")];
    }
    vec![format!("{tag} OK done")]
}

fn silent(line: &str) -> Vec<String> {
    if line.to_ascii_uppercase().contains("LOGOUT") {
        let tag = line.split(' ').next().unwrap_or("*");
        return vec![format!("{tag} OK LOGOUT completed")];
    }
    Vec::new()
}

#[test]
fn untagged_data_while_typing_keeps_the_line_intact() {
    let server = TinyServer::start(ok_to_everything);
    let mut sh = Shell::spawn(&[&server.addr.to_string()]);
    sh.expect("tiny test server ready");
    sh.prompt(&prompt_of(server.addr));
    sh.type_text("a1 sel");
    server.push.send("* 5 EXISTS".into()).unwrap();
    sh.expect("* 5 EXISTS");
    // The prompt and the partial line are drawn again below it.
    sh.expect(&format!("{}a1 sel", prompt_of(server.addr)));
    sh.expect(REDRAW_END);
    sh.type_line("ect inbox");
    sh.expect("a1 OK done");
    let got = server.received.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(got, "a1 select inbox");
    sh.prompt(&prompt_of(server.addr));
    server.push.send("* BYE idle for too long".into()).unwrap();
    sh.expect("* BYE idle for too long");
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
}

#[test]
fn a_second_ctrl_c_while_waiting_resets_the_connection() {
    let server = TinyServer::start(silent);
    let mut sh = Shell::spawn(&[&server.addr.to_string(), "--timeout", "30"]);
    sh.prompt(&prompt_of(server.addr));
    sh.type_line("a1 noop");
    assert_eq!(server.received.recv_timeout(TIMEOUT).unwrap(), "a1 noop");
    sh.p.send(ControlCode::EndOfText).unwrap();
    sh.expect("a1 is still waiting for the server; press Ctrl-C again to reset the connection");
    sh.p.send(ControlCode::EndOfText).unwrap();
    sh.expect(&format!("connection to {} reset", server.addr));
    sh.prompt(&format!("{} (closed)> ", server.addr));
    // The Ctrl-C signals may also reach rustyline's own handler, and the prompt may be drawn a second time right
    // away; a Ctrl-D sent between the two is lost with the terminal in cooked mode, so send another one when the
    // shell is still there.
    for _ in 0..3 {
        sh.p.send(ControlCode::EndOfTransmission).unwrap();
        if sh.exited_within(Duration::from_secs(2)) {
            break;
        }
    }
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
}

#[test]
fn a_line_sent_in_one_write_is_read_whole() {
    // A paste, type-ahead, or keys coalesced over a slow link reach the line editor in one read: the whole line is
    // taken at once, several lines included (docs/shell.md, "Pastes and type-ahead").
    let lab = TestLab::start();
    let front = lab.front();
    let mut sh = Shell::spawn(&[&front.to_string()]);
    sh.prompt(&prompt_of(front));
    sh.send_line("? noop");
    sh.expect("? OK NOOP completed");
    sh.prompt(&prompt_of(front));
    // Two lines in one write: both run, in order.
    sh.p.send("a1 noop\ra2 capability\r").unwrap();
    sh.expect("a1 OK NOOP completed");
    sh.expect("a2 OK CAPABILITY completed");
    sh.prompt(&prompt_of(front));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    assert_eq!(
        sh.exit_status(),
        WaitStatus::Exited(sh.p.get_process().pid(), 0)
    );
}

#[test]
fn a_password_the_server_echoes_is_masked_on_the_terminal() {
    let server =
        support::hostile::Hostile::start(support::hostile::Behaviour::LoginAnswer(format!(
        "* OK you sent {PASSWORD}\r\n{{tag}} NO [AUTHENTICATIONFAILED] {PASSWORD} is not right\r\n"
    )));
    let addr = server.addr();
    let mut sh = Shell::spawn(&[&addr]);
    sh.prompt(&format!("{addr}> "));
    sh.type_line(&format!("a1 login {USER} {PASSWORD}"));
    sh.expect("* OK you sent ***");
    sh.expect("a1 NO [AUTHENTICATIONFAILED] *** is not right");
    sh.prompt(&format!("{addr}> "));
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    sh.exit_status();
    assert!(!sh.seen.contains(PASSWORD), "{}", sh.seen);
}

/// The lines the shell printed from the last `from` on, escape sequences removed.
fn printed_lines(seen: &str, from: &str) -> Vec<String> {
    let start = seen.rfind(from).unwrap_or(0);
    let mut text = String::new();
    let mut chars = seen[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        text.push(c);
    }
    text.split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[test]
fn help_is_wrapped_to_the_terminals_width() {
    let lab = TestLab::start();
    let home = lab.home();
    let mut sh = Shell::spawn(&[&home.to_string()]);
    sh.prompt(&prompt_of(home));
    for cols in [50u16, 120] {
        sh.p.get_process_mut().set_window_size(cols, 40).unwrap();
        sh.type_line(":help");
        sh.expect("Passwords never reach the history file.");
        sh.prompt(&prompt_of(home));
        let lines = printed_lines(&sh.seen, "Shell commands:");
        let help: Vec<&String> = lines
            .iter()
            .skip_while(|l| !l.contains("Shell commands:"))
            .take_while(|l| !l.contains("> "))
            .collect();
        assert!(help.len() > 10, "{cols} columns: {help:#?}");
        for line in &help {
            assert!(
                line.chars().count() <= usize::from(cols),
                "{cols} columns: {line:?}\n{help:#?}"
            );
        }
        let beside = help
            .iter()
            .any(|l| l.starts_with("  :back") && l.contains("Log out"));
        assert_eq!(beside, cols == 120, "{cols} columns: {help:#?}");
    }
    sh.p.send(ControlCode::EndOfTransmission).unwrap();
    sh.exit_status();
}
