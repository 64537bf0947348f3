//! `imapref proxy` in front of the built-in lab and of small scripted servers: the KB's `OK [REFERRAL]` followed to
//! home, a mailbox referral passed to the client unchanged and logged, the TLS floor, the referral policy and
//! `--allow-host`, and the limits before login (idle time, connections, line length).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use imapref::lab::users::{KB_USER, LAB_PASSWORD};
use imapref::lab::{LabConfig, Scenario};
use support::dovecot::RawImap;
use support::lab::TestLab;
use support::proxy::ProxyProcess;

fn lab(scenario: Scenario) -> TestLab {
    TestLab::with(LabConfig {
        scenario,
        ..LabConfig::default()
    })
}

fn upstream(addr: SocketAddr) -> String {
    addr.to_string()
}

#[test]
fn the_kbs_ok_referral_is_followed_to_home() {
    let lab = lab(Scenario::Kb);
    let up = upstream(lab.front());
    let proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut imap = RawImap::connect(proxy.addr);
    let login = imap.login("a", KB_USER, LAB_PASSWORD);
    // Home's own completion, with its capabilities, under the client's tag.
    assert_eq!(
        login,
        "a OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS MAILBOX-REFERRALS] LOGIN completed"
    );
    // The front would say "There is no replica"; home has the INBOX.
    let select = imap.command("b", "SELECT INBOX");
    assert_eq!(
        select.last().map(String::as_str),
        Some("b OK [READ-WRITE] SELECT completed")
    );
    assert!(select.iter().any(|l| l == "* 3 EXISTS"), "{select:?}");
    imap.command("c", "LOGOUT");
    let s = &proxy.sessions(1)[0];
    assert_eq!(
        s["hops"],
        serde_json::json!([lab.front().to_string(), lab.home().to_string()])
    );
    assert_eq!(s["home"], lab.home().to_string());
    assert!(!proxy.all_output().contains(LAB_PASSWORD));
}

#[test]
fn a_mailbox_referral_reaches_the_client_unchanged_and_is_logged() {
    let lab = lab(Scenario::MailboxReferral);
    let up = upstream(lab.front());
    let proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut imap = RawImap::connect(proxy.addr);
    assert!(imap.login("a", KB_USER, LAB_PASSWORD).starts_with("a OK"));
    imap.command("b", "RLIST \"\" *");
    let select = imap.tagged("c", "SELECT \"Public Folders/Announcements\"");
    let url = format!(
        "imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}/Public%20Folders/Announcements",
        lab.lab
            .as_ref()
            .and_then(|l| l.server("pub"))
            .expect("the public-folder server")
            .plain
            .port()
    );
    assert_eq!(select, format!("c NO [REFERRAL {url}] Remote mailbox."));
    imap.command("d", "LOGOUT");
    let s = &proxy.sessions(1)[0];
    assert_eq!(s["outcome"], "relayed");
    assert_eq!(s["mailbox_referrals"], serde_json::json!([url]));
    assert_eq!(s["hops"], serde_json::json!([lab.front().to_string()]));
}

#[test]
fn referrals_never_go_below_the_upstreams_tls() {
    let lab = lab(Scenario::TlsDowngrade);
    let up = upstream(lab.front());
    let ca = lab
        .lab
        .as_ref()
        .expect("running")
        .ca_file()
        .display()
        .to_string();
    let proxy = ProxyProcess::start(&["--upstream", &up, "--upstream-starttls", "--ca-file", &ca]);
    let mut imap = RawImap::connect(proxy.addr);
    let plainhome = lab
        .lab
        .as_ref()
        .and_then(|l| l.server("plainhome"))
        .expect("plainhome")
        .plain;
    assert_eq!(
        imap.login("a", KB_USER, LAB_PASSWORD),
        format!(
            "a NO [UNAVAILABLE] home server {plainhome} does not offer STARTTLS, and the proxy never logs in below \
             the upstream's TLS"
        )
    );
    drop(imap);
    assert_eq!(proxy.sessions(1)[0]["outcome"], "unavailable");
}

/// A server that greets and answers every LOGIN with `NO [REFERRAL imap://<user>@<to>/]`.
fn referring_server(to: &'static str) -> SocketAddr {
    scripted_server(move |tag| format!("{tag} NO [REFERRAL imap://bob@{to}/] Elsewhere"))
}

/// A server that greets and answers every LOGIN line with `login(tag)`, anything else with OK.
fn scripted_server(login: impl Fn(&str) -> String + Send + Sync + Copy + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut out = stream;
                let _ = out.write_all(b"* OK [CAPABILITY IMAP4rev1] scripted\r\n");
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    let tag = line.split(' ').next().unwrap_or("*").to_string();
                    let answer = if line.to_ascii_uppercase().contains(" LOGIN ") {
                        format!("{}\r\n", login(&tag))
                    } else {
                        format!("{tag} OK done\r\n")
                    };
                    let _ = out.write_all(answer.as_bytes());
                    line.clear();
                }
            });
        }
    });
    addr
}

#[test]
fn an_upstream_that_greets_with_preauth_logs_no_one_in() {
    // PREAUTH logs in whoever connects: relaying it would let any client in with any name and password.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut out = stream;
            let _ = out
                .write_all(b"* PREAUTH [CAPABILITY IMAP4rev1] logged in as the proxy's host\r\n");
            thread::sleep(Duration::from_millis(500));
        }
    });
    let up = upstream(addr);
    let proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut imap = RawImap::connect(proxy.addr);
    let answer = imap.login("a", "anyone", "any-password");
    assert!(
        answer.starts_with("a NO [UNAVAILABLE] ") && answer.contains("greets with PREAUTH"),
        "{answer}"
    );
    // Still not logged in: a mailbox command is refused before login.
    let select = imap.tagged("b", "SELECT INBOX");
    assert!(
        select.starts_with("b BAD") || select.starts_with("b NO"),
        "{select}"
    );
    drop(imap);
    let sessions = proxy.sessions(1);
    assert_ne!(sessions[0]["outcome"], "relayed", "{sessions:?}");
}

#[test]
fn a_referral_outside_the_policy_is_refused_unless_allowed() {
    let server = referring_server("192.0.2.7:143");
    let up = upstream(server);
    let proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut imap = RawImap::connect(proxy.addr);
    assert_eq!(
        imap.login("a", "bob", "pw-never-logged"),
        "a NO [UNAVAILABLE] The proxy does not follow the referral to 192.0.2.7:143: that host is not allowed"
    );
    drop(imap);
    assert_eq!(proxy.sessions(1)[0]["outcome"], "policy");
    drop(proxy);

    // Allowed by a glob: the proxy goes there (and, with nothing answering on that test address, gives up in time).
    let proxy = ProxyProcess::start(&[
        "--upstream",
        &up,
        "--allow-host",
        "192.0.2.*",
        "--timeout",
        "1",
    ]);
    let mut imap = RawImap::connect(proxy.addr);
    let started = Instant::now();
    let answer = imap.login("a", "bob", "pw-never-logged");
    assert!(
        answer.starts_with("a NO [UNAVAILABLE] home server 192.0.2.7:143 "),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(imap);
    let s = &proxy.sessions(1)[0];
    assert_eq!(s["hops"], serde_json::json!([up, "192.0.2.7:143"]));
    assert!(!proxy.all_output().contains("pw-never-logged"));
}

#[test]
fn limits_before_login() {
    let lab = lab(Scenario::Kb);
    let up = upstream(lab.front());
    let proxy = ProxyProcess::start(&[
        "--upstream",
        &up,
        "--login-timeout",
        "1",
        "--max-connections",
        "1",
    ]);
    // Idle before login: BYE after the login timeout.
    let mut idle = RawImap::connect(proxy.addr);
    // Only one connection at a time: the second is told so.
    let second = RawImap::connect(proxy.addr);
    assert_eq!(
        second.greeting,
        "* BYE Too many connections to the proxy; try again later"
    );
    let started = Instant::now();
    assert_eq!(idle.read_line(), "* BYE Autologout; idle for too long");
    assert!(started.elapsed() < Duration::from_secs(3));
    let sessions = proxy.sessions(2);
    let outcomes: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["outcome"].as_str())
        .collect();
    assert!(outcomes.contains(&"too-many-connections"), "{outcomes:?}");
    assert!(outcomes.contains(&"idle-before-login"), "{outcomes:?}");

    // Bytes dripped one at a time keep no connection past five times the login timeout.
    let mut drip = RawImap::connect(proxy.addr);
    let started = Instant::now();
    let dripping = thread::spawn({
        let mut stream = drip.try_clone_stream();
        move || {
            for _ in 0..40 {
                if stream.write_all(b"x").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(300));
            }
        }
    });
    assert_eq!(drip.read_line(), "* BYE Autologout; no login in time");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4500) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let _ = dripping.join();
    let sessions = proxy.sessions(3);
    assert_eq!(sessions[2]["outcome"], "idle-before-login", "{sessions:?}");

    // A line longer than the limit: BAD and close.
    let mut long = RawImap::connect(proxy.addr);
    long.write_line(&format!("a LOGIN {} x", "u".repeat(70 * 1024)));
    assert_eq!(
        long.read_line(),
        "* BAD Command line longer than 65536 bytes"
    );
    assert_eq!(proxy.sessions(4)[3]["outcome"], "client-error");
}

#[test]
fn the_text_log_is_one_line_per_session() {
    let lab = lab(Scenario::Kb);
    let up = upstream(lab.front());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("imapref"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--upstream", &up])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    // Lines come through a thread, so that every wait below is bounded.
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let (lines_tx, lines) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || lines.recv_timeout(Duration::from_secs(10));
    let first = next_line();
    let addr: Option<SocketAddr> = first
        .as_deref()
        .ok()
        .and_then(|l| l.strip_prefix("imapref proxy listening on "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|a| a.parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no listening line: {first:?}");
    };
    let mut imap = RawImap::connect(addr);
    let login = imap.login("a", KB_USER, LAB_PASSWORD);
    imap.command("b", "LOGOUT");
    let line = next_line().unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(login.starts_with("a OK"), "{login}");
    assert!(line.starts_with("session client=127.0.0.1:"), "{line}");
    assert!(
        line.contains(" login=DOMname/UserN/AliasN outcome=relayed "),
        "{line}"
    );
    assert!(line.contains(&format!(" home={} ", lab.home())), "{line}");
    assert!(!line.contains(LAB_PASSWORD));
}

#[test]
fn sigterm_closes_the_open_sessions_each_with_its_log_line() {
    let lab = lab(Scenario::Kb);
    let up = upstream(lab.front());
    let mut proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut relayed = RawImap::connect(proxy.addr);
    assert!(relayed
        .login("a", KB_USER, LAB_PASSWORD)
        .starts_with("a OK"));
    let waiting = RawImap::connect(proxy.addr);
    assert_eq!(proxy.terminate(), Some(0));
    let sessions = proxy.sessions(2);
    assert!(
        sessions.iter().all(|s| s["outcome"] == "shutdown"),
        "{sessions:?}"
    );
    assert!(sessions.iter().any(|s| s["login"] == KB_USER));
    drop(waiting);
}

#[test]
fn a_password_the_upstream_echoes_reaches_the_client_but_not_the_log() {
    let server =
        scripted_server(|tag| format!("{tag} NO Bad credentials: {tag} LOGIN bob Echo-Pw-77"));
    let up = upstream(server);
    let proxy = ProxyProcess::start(&["--upstream", &up]);
    let mut imap = RawImap::connect(proxy.addr);
    // The upstream's NO passes through as it is (the client knows its password).
    let answer = imap.login("a", "bob", "Echo-Pw-77");
    assert!(answer.starts_with("a NO Bad credentials: "), "{answer}");
    drop(imap);
    let s = &proxy.sessions(1)[0];
    assert_eq!(s["outcome"], "refused");
    assert!(s["detail"].as_str().unwrap_or("").contains("***"), "{s}");
    assert!(
        !proxy.all_output().contains("Echo-Pw-77"),
        "{}",
        proxy.all_output()
    );
}

#[test]
fn literals_continuations_and_commands_pipelined_after_login() {
    let lab = lab(Scenario::Kb);
    let up = upstream(lab.front());
    let proxy = ProxyProcess::start(&["--upstream", &up]);

    // A synchronizing literal gets its `+`; LITERAL+ needs none.
    let mut imap = RawImap::connect(proxy.addr);
    imap.write_line(&format!("a LOGIN {{{}}}", KB_USER.len()));
    assert_eq!(imap.read_line(), "+ Ready for literal data");
    imap.write_line(&format!(
        "{KB_USER} {{{}+}}\r\n{LAB_PASSWORD}",
        LAB_PASSWORD.len()
    ));
    assert!(imap.read_line().starts_with("a OK [CAPABILITY "));
    imap.command("b", "LOGOUT");

    // AUTHENTICATE PLAIN with a continuation, not SASL-IR.
    let mut imap = RawImap::connect(proxy.addr);
    imap.write_line("a AUTHENTICATE PLAIN");
    assert_eq!(imap.read_line(), "+ ");
    let blob =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{KB_USER}\0{LAB_PASSWORD}"));
    imap.write_line(&blob);
    assert_eq!(
        imap.read_line(),
        "a OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS MAILBOX-REFERRALS] AUTHENTICATE completed"
    );
    imap.command("b", "LOGOUT");

    // LOGIN and SELECT in one write: SELECT goes to the home server after the login.
    let mut imap = RawImap::connect(proxy.addr);
    imap.write_line(&format!(
        "a LOGIN {KB_USER} {LAB_PASSWORD}\r\nb SELECT INBOX"
    ));
    assert!(imap.read_line().starts_with("a OK [CAPABILITY "));
    let mut lines = Vec::new();
    loop {
        let line = imap.read_line();
        let done = line.starts_with("b ");
        lines.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        lines.last().map(String::as_str),
        Some("b OK [READ-WRITE] SELECT completed"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "* 3 EXISTS"), "{lines:?}");
    imap.command("c", "LOGOUT");
    assert!(!proxy.all_output().contains(LAB_PASSWORD));
}

#[test]
fn bad_settings_are_refused_with_a_clear_error() {
    let run = |args: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("imapref"))
            .arg("proxy")
            .args(args)
            .output()
            .expect("runs")
    };
    let out = run(&["--listen", "0.0.0.0:0", "--upstream", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"),
        "{out:?}"
    );
    let out = run(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--require-tls",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-cert"),
        "{out:?}"
    );
    let out = run(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--idle-timeout",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--idle-timeout 0"),
        "{out:?}"
    );
}

/// Logs in as the KB user through a proxy in front of `scenario`'s front server; the tagged answer and the log record.
fn login_through(scenario: Scenario, extra: &[&str]) -> (String, serde_json::Value, TestLab) {
    let lab = lab(scenario);
    let up = upstream(lab.front());
    let mut args = vec!["--upstream", up.as_str()];
    args.extend_from_slice(extra);
    let proxy = ProxyProcess::start(&args);
    let mut imap = RawImap::connect(proxy.addr);
    let answer = imap.login("a", KB_USER, LAB_PASSWORD);
    drop(imap);
    let record = proxy.sessions(1)[0].clone();
    assert!(!proxy.all_output().contains(LAB_PASSWORD));
    (answer, record, lab)
}

#[test]
fn every_login_referral_of_the_lab() {
    // NO [REFERRAL] and BYE [REFERRAL] greetings are followed like the KB's OK [REFERRAL].
    for scenario in [Scenario::LoginNo, Scenario::ByeGreeting] {
        let (answer, record, lab) = login_through(scenario, &[]);
        assert!(
            answer.starts_with("a OK [CAPABILITY "),
            "{scenario:?}: {answer}"
        );
        assert_eq!(
            record["home"],
            lab.home().to_string(),
            "{scenario:?}: {record}"
        );
    }
    let (answer, record, lab) = login_through(Scenario::Loop, &[]);
    assert!(
        answer.starts_with("a NO [UNAVAILABLE] The referrals loop: "),
        "{answer}"
    );
    assert_eq!(record["outcome"], "loop");
    drop(lab);
    let (answer, record, lab) = login_through(Scenario::LongChain, &[]);
    assert!(
        answer.starts_with("a NO [UNAVAILABLE] More than 10 referrals: "),
        "{answer}"
    );
    assert_eq!(record["outcome"], "too-many-hops");
    assert_eq!(record["hops"].as_array().map(Vec::len), Some(11));
    drop(lab);
    // --max-hops 11 lets the chain through.
    let (answer, record, lab) = login_through(Scenario::LongChain, &["--max-hops", "11"]);
    assert!(answer.starts_with("a OK"), "{answer}");
    assert_eq!(record["hops"].as_array().map(Vec::len), Some(12));
    drop(lab);
    let (answer, record, lab) = login_through(Scenario::ClosedPort, &[]);
    let closed = lab
        .lab
        .as_ref()
        .and_then(|l| l.closed_port())
        .expect("closed port");
    assert_eq!(
        answer,
        format!("a NO [UNAVAILABLE] home server {closed} refused the connection")
    );
    assert_eq!(record["outcome"], "unavailable");
    let (answer, record, _lab) = login_through(Scenario::WrongPassword, &[]);
    assert!(
        answer.starts_with("a OK"),
        "{answer}: the right password still works"
    );
    assert_eq!(record["outcome"], "relayed");
}
