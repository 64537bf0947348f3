//! `imapref probe` against servers that misbehave on purpose — endless lines, huge literals, silence, resets, garbage,
//! plaintext injected after STARTTLS — or behave unusually (PREAUTH, BAD to LOGIN, no answer to LOGOUT), and against
//! bad input from the user. Each gets a clear message and a defined
//! exit code, never a panic or a hang.

mod support;

use std::process::Output;

use assert_cmd::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::scripted::{scripted, serve};

async fn probe(target: &str, extra: &[&str]) -> (Output, Duration) {
    let target = target.to_string();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .args([
                "probe",
                &target,
                "user",
                "--password-env",
                "HOSTILE_PW",
                "--json",
            ])
            .args(&extra)
            .env("HOSTILE_PW", "Hostile-Secret-9")
            .write_stdin("")
            .output()
            .expect("runs");
        (out, started.elapsed())
    })
    .await
    .expect("join")
}

fn verdict(out: &Output) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Hostile-Secret-9"));
    doc
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_line_is_cut_off() {
    let (addr, server) = serve(|mut s| async move {
        let chunk = vec![b'x'; 64 * 1024];
        // 8 MiB without a line end: far past the 256 KiB line limit.
        for _ in 0..128 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (out, _) = probe(&addr, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    let doc = verdict(&out);
    assert_eq!(doc["hops"][0]["error"]["phase"], "greeting");
    assert!(
        doc["verdict"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("longer than"),
        "{doc}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_literal_announcement_is_refused() {
    let (addr, server) = serve(|mut s| async move {
        let _ = s.write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n").await;
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"* 1 FETCH (BODY[] {99999999999}\r\n").await;
        let _ = s.read(&mut buf).await;
    })
    .await;
    let (out, _) = probe(&addr, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    let doc = verdict(&out);
    assert!(
        doc["verdict"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("literal"),
        "{doc}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_times_out() {
    let (addr, server) = serve(|mut s| async move {
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let (out, took) = probe(&addr, &["--timeout", "0.5"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        took < Duration::from_secs(10),
        "bounded by --timeout, took {took:?}"
    );
    let doc = verdict(&out);
    assert!(
        doc["diagnoses"]
            .as_array()
            .expect("diagnoses")
            .iter()
            .any(|d| d["id"] == "timeout"),
        "{doc}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_after_the_greeting_is_reported() {
    let (addr, server) = serve(|mut s| async move {
        let _ = s.write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n").await;
        // Closing with the client's command unread makes the kernel send a reset (RST), not a FIN.
        let _ = s.readable().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
    })
    .await;
    let (out, _) = probe(&addr, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    let doc = verdict(&out);
    assert_eq!(doc["hops"][0]["error"]["phase"], "login");
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_instead_of_a_greeting() {
    let (addr, server) = serve(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let (out, _) = probe(&addr, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    let doc = verdict(&out);
    assert!(
        doc["diagnoses"]
            .as_array()
            .expect("diagnoses")
            .iter()
            .any(|d| d["id"] == "garbage"),
        "{doc}"
    );
    assert_eq!(doc["hops"][0]["password_sent"], false);
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_injected_after_starttls_is_refused() {
    let (addr, server) = serve(|mut s| async move {
        let _ = s.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n").await;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let tag = String::from_utf8_lossy(&buf[..n]).split(' ').next().unwrap_or("a1").to_string();
        // The OK and an injected line in one segment, before any handshake.
        let reply = format!("{tag} OK Begin TLS negotiation now\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n");
        let _ = s.write_all(reply.as_bytes()).await;
        let _ = s.read(&mut buf).await;
    })
    .await;
    let (out, _) = probe(&addr, &["--starttls"]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc = verdict(&out);
    assert!(
        doc["verdict"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("CVE-2011-0411"),
        "{doc}"
    );
    assert_eq!(doc["hops"][0]["password_sent"], false);
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_required_but_not_offered() {
    let (addr, server) = serve(|mut s| async move {
        let _ = s
            .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            .await;
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
    })
    .await;
    let (out, _) = probe(&addr, &["--starttls"]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc = verdict(&out);
    assert_eq!(
        doc["hops"][0]["password_sent"], false,
        "no password in plaintext when TLS was asked for"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn preauth_is_reported_and_no_password_is_sent() {
    let (addr, server) = scripted(
        "* PREAUTH [CAPABILITY IMAP4rev1] Logged in as you\r\n",
        |name| match name {
            "SELECT" => Some("* 2 EXISTS\r\n{tag} OK [READ-WRITE] done\r\n"),
            "LOGOUT" => Some("* BYE bye\r\n{tag} OK done\r\n"),
            _ => Some("{tag} BAD unexpected\r\n"),
        },
    )
    .await;
    let (out, _) = probe(&addr, &[]).await;
    let doc = verdict(&out);
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["hops"][0]["greeting"]["status"], "PREAUTH");
    assert!(doc["hops"][0]["login"].is_null());
    assert_eq!(doc["hops"][0]["password_sent"], false);
    assert_eq!(doc["hops"][0]["mailbox_state"]["exists"], 2);
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_to_login_is_critical() {
    let (addr, server) = scripted("* OK [CAPABILITY IMAP4rev1] ready\r\n", |name| match name {
        "LOGIN" => Some("{tag} BAD Command syntax error\r\n"),
        "LOGOUT" => Some("{tag} OK done\r\n"),
        _ => None,
    })
    .await;
    let (out, _) = probe(&addr, &[]).await;
    let doc = verdict(&out);
    assert_eq!(out.status.code(), Some(2), "{doc}");
    assert_eq!(doc["hops"][0]["login"]["status"], "BAD");
    assert!(
        doc["diagnoses"]
            .as_array()
            .expect("diagnoses")
            .iter()
            .any(|d| d["id"] == "login-rejected"),
        "{doc}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_logout_does_not_hold_the_verdict() {
    let (addr, server) = scripted("* OK [CAPABILITY IMAP4rev1] ready\r\n", |name| match name {
        "LOGIN" => Some("{tag} OK [CAPABILITY IMAP4rev1] in\r\n"),
        "SELECT" => Some("* 1 EXISTS\r\n{tag} OK [READ-WRITE] done\r\n"),
        _ => None,
    })
    .await;
    let (out, _) = probe(&addr, &["--timeout", "30"]).await;
    let doc = verdict(&out);
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["hops"][0]["logout_answered"], false);
    // The wait for LOGOUT's answer is bounded by its own short limit, not by --timeout.
    assert!(
        doc["hops"][0]["ms"].as_f64().unwrap_or(f64::MAX) < 30_000.0,
        "{doc}"
    );
    server.abort();
}

#[test]
fn nothing_listening_is_unknown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .args([
            "probe",
            &format!("127.0.0.1:{port}"),
            "user",
            "--password-env",
            "HOSTILE_PW",
            "--json",
        ])
        .env("HOSTILE_PW", "x")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["hops"][0]["error"]["phase"], "connect");
}

fn usage(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::cargo_bin("imapref").expect("the imapref binary");
    cmd.args(args).write_stdin("");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

#[test]
fn bad_user_input_is_a_usage_error_with_exit_3() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["probe", "127.0.0.1:1", "user\r\nx", "--password-env", "PW"],
            "CR",
        ),
        (
            &[
                "probe",
                "127.0.0.1:1",
                "user",
                "--password-env",
                "PW",
                "--mailbox",
                "IN\nBOX",
            ],
            "LF",
        ),
        (
            &["probe", "127.0.0.1:0", "user", "--password-env", "PW"],
            "not a port",
        ),
        (
            &["probe", "imap://@/", "user", "--password-env", "PW"],
            "IMAP URL",
        ),
        (
            &["probe", "127.0.0.1:1", "--password-env", "PW"],
            "no login name",
        ),
        (
            &[
                "probe",
                "127.0.0.1:1",
                "user",
                "--password-env",
                "UNSET_VAR_FOR_TEST",
            ],
            "not set",
        ),
        (&["probe", "127.0.0.1:1", "user"], "no password"),
        (
            &[
                "probe",
                "127.0.0.1:1",
                "user",
                "--password-env",
                "PW",
                "--timeout",
                "0",
            ],
            "--timeout",
        ),
        (
            &["probe", "127.0.0.1:1", "user", "--frobnicate"],
            "unexpected argument",
        ),
    ];
    for (args, needle) in cases {
        let out = usage(args, &[("PW", "secret")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: `{needle}` not in {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn a_password_with_a_line_feed_is_refused() {
    let out = usage(
        &["probe", "127.0.0.1:1", "user", "--password-env", "PW"],
        &[("PW", "pass\nword")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line feed"));
}

#[test]
fn usage_errors_are_json_in_json_mode() {
    let out = usage(
        &[
            "probe",
            "host:99999",
            "user",
            "--password-env",
            "PW",
            "--json",
        ],
        &[("PW", "x")],
    );
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["error"]["phase"], "usage");
    assert_eq!(doc["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_internationalised_host_is_shown_in_both_forms_and_never_panics() {
    // .invalid never resolves: the probe ends with a connect failure, naming the host both ways.
    let out = tokio::task::spawn_blocking(|| {
        assert_cmd::Command::cargo_bin("imapref")
            .expect("binary")
            .args([
                "probe",
                "mail.bücher.invalid",
                "u",
                "--password-env",
                "PW",
                "--timeout",
                "2",
                "--json",
            ])
            .env("PW", "x")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["target"]["server"], "mail.xn--bcher-kva.invalid:143");
    assert_eq!(doc["target"]["host_unicode"], "mail.bücher.invalid");
}

/// A server that answers LOGIN with `login_answer`, SELECT at once, and LOGOUT only after `logout_delay`.
async fn slow_logout_server(
    login_answer: String,
    logout_delay: Duration,
) -> (String, tokio::task::JoinHandle<()>) {
    serve(move |mut s| async move {
        let _ = s
            .write_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ LOGIN-REFERRALS] ready\r\n")
            .await;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                let mut words = line.split(' ');
                let tag = words.next().unwrap_or("*").to_string();
                let reply = match words.next().unwrap_or("").to_ascii_uppercase().as_str() {
                    "LOGIN" => login_answer.replace("{tag}", &tag),
                    "SELECT" => format!("* 1 EXISTS\r\n{tag} OK [READ-WRITE] done\r\n"),
                    "LOGOUT" => {
                        tokio::time::sleep(logout_delay).await;
                        format!("* BYE bye\r\n{tag} OK bye\r\n")
                    }
                    _ => format!("{tag} BAD what\r\n"),
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_logout_delays_neither_the_next_hop_nor_the_report() {
    let delay = Duration::from_secs(3);
    let (home, home_server) = slow_logout_server(
        "{tag} OK [CAPABILITY IMAP4rev1 LITERAL+] in\r\n".into(),
        delay,
    )
    .await;
    let (front, front_server) = slow_logout_server(
        format!("{{tag}} NO [REFERRAL imap://user@{home}/] go there\r\n"),
        delay,
    )
    .await;
    let (out, took) = probe(&front, &["--timeout", "10"]).await;
    let doc = verdict(&out);
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["hops"].as_array().map(Vec::len), Some(2), "{doc}");
    assert!(
        doc["total_ms"].as_f64().unwrap_or(f64::MAX) < 2_000.0,
        "neither LOGOUT's 3 s is in the report's time: {doc}"
    );
    assert!(
        took < delay,
        "the process does not wait for LOGOUT either: {took:?}"
    );
    home_server.abort();
    front_server.abort();
}
