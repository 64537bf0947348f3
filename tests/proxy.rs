//! `imapref proxy` against the real Dovecot pair the tests start (tests/support/dovecot.rs: front refers users to
//! home with `NO [REFERRAL]`), with the clients the issue names: curl and Python's imaplib, which do not follow
//! referrals, log in through the proxy, SELECT INBOX and FETCH a message that only the home server has. Also: a user
//! local to front stays there; a wrong password gets Dovecot's NO; a loop gets a clean NO; a home server that refuses
//! the connection; 40 concurrent sessions; STARTTLS towards the client and towards the upstream; the log never holds
//! the password.

mod support;

use std::net::TcpListener;
use std::thread;

use serde_json::Value;
use support::dovecot::{
    welcome_subject, DovecotLab, RawImap, ReferTo, KB_USER, PASSWORD, PINGPONG_USER,
};
use support::proxy::{curl, imaplib_session, ProxyProcess};

/// Starts a proxy in front of Dovecot's front server (plain).
fn proxy_for(dovecot: &DovecotLab, extra: &[&str]) -> ProxyProcess {
    let upstream = dovecot.front.to_string();
    let mut args = vec!["--upstream", upstream.as_str()];
    args.extend_from_slice(extra);
    ProxyProcess::start(&args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_password(proxy: &ProxyProcess) {
    let log = proxy.all_output();
    assert!(
        !log.contains(PASSWORD),
        "the password is in the proxy's log:\n{log}"
    );
}

fn session_of<'a>(sessions: &'a [Value], login: &str) -> &'a Value {
    sessions
        .iter()
        .find(|s| s["login"] == login)
        .unwrap_or_else(|| panic!("no session of {login}: {sessions:?}"))
}

#[test]
fn curl_and_imaplib_reach_a_referred_users_mailbox_on_home() {
    let dovecot = DovecotLab::start();
    let proxy = proxy_for(&dovecot, &[]);
    let url = format!("imap://127.0.0.1:{}/INBOX;MAILINDEX=1", proxy.port());

    // curl: AUTHENTICATE PLAIN (SASL-IR), SELECT INBOX, FETCH 1 BODY[].
    let out = curl(&["--user", &format!("referred:{PASSWORD}"), &url]);
    assert!(out.status.success(), "{}", text(&out));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains(&format!("Subject: {}", welcome_subject("home", "referred"))),
        "{}",
        text(&out)
    );

    // imaplib: LOGIN with the KB-style name, SELECT INBOX, FETCH.
    let out = imaplib_session(proxy.port(), KB_USER, PASSWORD, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("login=OK\n"), "{}", text(&out));
    assert!(stdout.contains("select=OK 1\n"), "{}", text(&out));
    assert!(
        stdout.contains(&format!(
            "subject=Subject: {}",
            welcome_subject("home", KB_USER)
        )),
        "{}",
        text(&out)
    );

    let sessions = proxy.sessions(2);
    for login in ["referred", KB_USER] {
        let s = session_of(&sessions, login);
        assert_eq!(s["outcome"], "relayed", "{s}");
        assert_eq!(
            s["hops"],
            serde_json::json!([dovecot.front.to_string(), dovecot.home.to_string()]),
            "{s}"
        );
        assert_eq!(s["home"], dovecot.home.to_string(), "{s}");
        assert!(s["bytes_down"].as_u64().unwrap_or(0) > 100, "{s}");
        assert!(
            s["login_ms"].as_f64().is_some() && s["total_ms"].as_f64().is_some(),
            "{s}"
        );
    }
    // Home logged both in; front never had their mailboxes.
    assert!(
        dovecot.home_log().contains("referred"),
        "{}",
        dovecot.logs()
    );
    assert_no_password(&proxy);
}

#[test]
fn a_user_local_to_front_stays_on_front_and_failures_get_a_clean_no() {
    let dovecot = DovecotLab::start();
    let proxy = proxy_for(&dovecot, &[]);

    let out = imaplib_session(proxy.port(), "local", PASSWORD, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains(&format!(
            "subject=Subject: {}",
            welcome_subject("front", "local")
        )),
        "{}",
        text(&out)
    );

    // A wrong password: Dovecot's NO, passed through with the client's tag.
    let mut imap = RawImap::connect(proxy.addr);
    assert!(
        imap.greeting
            .starts_with("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN]"),
        "{}",
        imap.greeting
    );
    assert_eq!(
        imap.login("w1", "referred", "not-the-password"),
        "w1 NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    // The referral loop front -> home -> front.
    let line = imap.login("w2", PINGPONG_USER, PASSWORD);
    assert_eq!(
        line,
        format!(
            "w2 NO [UNAVAILABLE] The referrals loop: {} -> {} -> {}; the proxy stops here",
            dovecot.front, dovecot.home, dovecot.front
        )
    );
    // Before login, only the pre-login commands are served.
    assert!(imap
        .tagged("w3", "SELECT INBOX")
        .starts_with("w3 BAD Log in first"));
    let id = imap.command("w4", "ID NIL");
    assert!(
        id[0].starts_with("* ID (\"name\" \"imapref proxy\""),
        "{id:?}"
    );
    assert_eq!(imap.tagged("w5", "NOOP"), "w5 OK NOOP completed");
    let logout = imap.command("w6", "LOGOUT");
    assert_eq!(
        logout.last().map(String::as_str),
        Some("w6 OK LOGOUT completed")
    );

    let sessions = proxy.sessions(2);
    let local = session_of(&sessions, "local");
    assert_eq!(local["outcome"], "relayed");
    assert_eq!(
        local["hops"],
        serde_json::json!([dovecot.front.to_string()])
    );
    assert_eq!(local["home"], dovecot.front.to_string());
    let failed = session_of(&sessions, PINGPONG_USER);
    assert_eq!(failed["outcome"], "loop", "{failed}");
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_no_password(&proxy);
}

#[test]
fn a_home_server_that_refuses_the_connection_gets_unavailable() {
    // A port that was free a moment ago and has nothing listening now.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dovecot = DovecotLab::start_referring(Some(ReferTo {
        user: "gone".into(),
        password: PASSWORD.into(),
        to: closed,
    }));
    let proxy = proxy_for(&dovecot, &[]);
    let mut imap = RawImap::connect(proxy.addr);
    assert_eq!(
        imap.login("a", "gone", PASSWORD),
        format!("a NO [UNAVAILABLE] home server {closed} refused the connection")
    );
    drop(imap);
    let sessions = proxy.sessions(1);
    assert_eq!(sessions[0]["outcome"], "unavailable", "{:?}", sessions);
    assert_no_password(&proxy);
}

#[test]
fn forty_concurrent_sessions_all_reach_home() {
    let dovecot = DovecotLab::start();
    let proxy = proxy_for(&dovecot, &[]);
    let addr = proxy.addr;
    let workers: Vec<_> = (0..40)
        .map(|i| {
            thread::spawn(move || {
                let user = if i % 2 == 0 { "referred" } else { KB_USER };
                let mut imap = RawImap::connect(addr);
                let login = imap.login("a", user, PASSWORD);
                assert!(login.starts_with("a OK [CAPABILITY "), "{i}: {login}");
                let select = imap.command("b", "SELECT INBOX");
                assert!(select.iter().any(|l| l == "* 1 EXISTS"), "{i}: {select:?}");
                let fetch = imap.command("c", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
                let subject = welcome_subject("home", user);
                assert!(fetch.iter().any(|l| l.contains(&subject)), "{i}: {fetch:?}");
                let logout = imap.command("d", "LOGOUT");
                assert!(
                    logout.iter().any(|l| l.starts_with("d OK")),
                    "{i}: {logout:?}"
                );
            })
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        w.join().unwrap_or_else(|_| panic!("session {i} failed"));
    }
    let sessions = proxy.sessions(40);
    assert_eq!(sessions.len(), 40);
    assert!(
        sessions
            .iter()
            .all(|s| s["outcome"] == "relayed" && s["home"] == dovecot.home.to_string()),
        "{sessions:?}"
    );
    assert_no_password(&proxy);
}

#[test]
fn starttls_towards_the_client_and_towards_the_upstream() {
    let dovecot = DovecotLab::start();
    let dovecot_ca = dovecot
        .ca_file
        .clone()
        .expect("the Dovecot lab has TLS (openssl is installed with dovecot-core)");
    // The proxy's own certificate, from a CA of the test's.
    let certs = imapref::transport::lab_cert::generate(&["localhost", "127.0.0.1"], 30)
        .expect("certificates");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("proxy.pem");
    let key = dir.path().join("proxy.key");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&cert, &certs.server_cert_pem).expect("write cert");
    std::fs::write(&key, &certs.server_key_pem).expect("write key");
    std::fs::write(&ca, &certs.ca_pem).expect("write ca");
    let upstream = dovecot.front.to_string();
    let dovecot_ca = dovecot_ca.display().to_string();
    let cert_arg = cert.display().to_string();
    let key_arg = key.display().to_string();
    let proxy = ProxyProcess::start(&[
        "--upstream",
        &upstream,
        "--upstream-starttls",
        "--ca-file",
        &dovecot_ca,
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
        "--require-tls",
    ]);

    // Before STARTTLS: LOGINDISABLED, and LOGIN is refused.
    let mut imap = RawImap::connect(proxy.addr);
    assert!(
        imap.greeting.contains("STARTTLS LOGINDISABLED]") && !imap.greeting.contains("AUTH=PLAIN"),
        "{}",
        imap.greeting
    );
    assert!(imap
        .login("a", "referred", PASSWORD)
        .starts_with("a NO [PRIVACYREQUIRED]"));
    drop(imap);

    // curl: STARTTLS required, the proxy's CA trusted.
    let url = format!("imap://127.0.0.1:{}/INBOX;MAILINDEX=1", proxy.port());
    let ca_arg = ca.display().to_string();
    let out = curl(&[
        "--ssl-reqd",
        "--cacert",
        &ca_arg,
        "--user",
        &format!("referred:{PASSWORD}"),
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        proxy.all_output()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("Subject: {}", welcome_subject("home", "referred"))),
        "{}",
        text(&out)
    );

    // imaplib: starttls() with the proxy's CA.
    let out = imaplib_session(proxy.port(), KB_USER, PASSWORD, Some(&ca));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "subject=Subject: {}",
            welcome_subject("home", KB_USER)
        )),
        "{}",
        text(&out)
    );

    let sessions = proxy.sessions(3);
    for login in ["referred", KB_USER] {
        let s = sessions
            .iter()
            .find(|s| s["login"] == login && s["outcome"] == "relayed")
            .unwrap_or_else(|| panic!("no relayed session of {login}: {sessions:?}"));
        assert_eq!(s["client_tls"], true, "{s}");
        assert_eq!(s["home_tls"], true, "{s}");
        assert_eq!(s["home"], dovecot.home.to_string(), "{s}");
    }
    assert_no_password(&proxy);
}
