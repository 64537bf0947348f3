//! Tests of the real-Dovecot lab itself (`tests/support/dovecot.rs`): it starts, front answers each user
//! with the exact lines Dovecot 2.3.19 sends (referrals, proxying, refusals), home serves the referred
//! users' INBOXes, TLS uses the lab's CA, labs run side by side, and dropping a lab leaves nothing running.
//!
//! These tests need Debian's `dovecot-imapd` (scripts/test.sh installs it); without it they fail, never skip.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::dovecot::*;

/// The greeting Debian's Dovecot 2.3.19 sends with TLS configured (the same line as in the captured fixtures).
const GREETING: &str = concat!(
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN ",
    "AUTH=LOGIN] Dovecot (Debian) ready."
);

fn login_on(addr: SocketAddr, user: &str, password: &str) -> String {
    RawImap::connect(addr).login("a", user, password)
}

fn assert_line(actual: &str, expected: &str, lab: &DovecotLab) {
    assert_eq!(actual, expected, "\n{}", lab.logs());
}

/// LOGIN, SELECT INBOX and FETCH the subject of message 1 on `addr`; asserts the INBOX holds what the lab wrote.
fn assert_inbox(addr: SocketAddr, user: &str, instance: &str, lab: &DovecotLab) {
    let mut imap = RawImap::connect(addr);
    let login = imap.login("a", user, PASSWORD);
    assert!(
        login.starts_with("a OK [CAPABILITY IMAP4rev1 ") && login.ends_with("] Logged in"),
        "{user} on {instance}: {login}\n{}",
        lab.logs()
    );
    let select = imap.command("s", "SELECT INBOX");
    let exists = format!("* {INBOX_MESSAGES} EXISTS");
    assert!(
        select.contains(&exists),
        "{user} on {instance}: {select:?}\n{}",
        lab.logs()
    );
    let tagged = select.last().expect("tagged line");
    assert!(
        tagged.starts_with("s OK [READ-WRITE] Select completed"),
        "{tagged}"
    );
    let fetch = imap.command("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let subject = format!("Subject: {}", welcome_subject(instance, user));
    assert!(
        fetch.iter().any(|l| l.contains(&subject)),
        "{user} on {instance}: {fetch:?}"
    );
    assert!(imap
        .tagged("z", "LOGOUT")
        .starts_with("z OK Logout completed"));
}

#[test]
fn both_instances_greet_like_debian_dovecot() {
    let lab = DovecotLab::start();
    for addr in [lab.front, lab.home] {
        let imap = RawImap::connect(addr);
        if lab.ca_file.is_some() {
            assert_line(&imap.greeting, GREETING, &lab);
        } else {
            assert_line(&imap.greeting, &GREETING.replace(" STARTTLS", ""), &lab);
        }
    }
    assert_ne!(lab.front, lab.home);
    assert!(lab.front.ip().is_loopback() && lab.home.ip().is_loopback());
}

#[test]
fn front_refers_nologin_users_to_home() {
    let lab = DovecotLab::start();
    let home = lab.home.port();
    let cases = [
        (
            "referred",
            format!("a NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:{home}/] Try this server instead."),
        ),
        (
            KB_USER,
            format!("a NO [REFERRAL imap://{KB_USER_IN_URL};AUTH=PLAIN@127.0.0.1:{home}/] Try this server instead."),
        ),
        (
            "renamed",
            format!("a NO [REFERRAL imap://homeuser;AUTH=PLAIN@127.0.0.1:{home}/] Try this server instead."),
        ),
        (
            "moved",
            format!("a NO [REFERRAL imap://moved;AUTH=PLAIN@127.0.0.1:{home}/] {MOVED_REASON}"),
        ),
        (
            "port143",
            "a NO [REFERRAL imap://port143;AUTH=PLAIN@127.0.0.1/] Try this server instead.".to_string(),
        ),
        (
            "hostref",
            format!("a NO [REFERRAL imap://hostref;AUTH=PLAIN@localhost:{home}/] Try this server instead."),
        ),
    ];
    for (user, expected) in &cases {
        assert_line(&login_on(lab.front, user, PASSWORD), expected, &lab);
    }
}

#[test]
fn a_referral_leaves_the_connection_open_and_unauthenticated() {
    let lab = DovecotLab::start();
    let mut imap = RawImap::connect(lab.front);
    let referral = imap.login("?", KB_USER, PASSWORD);
    assert!(referral.starts_with("? NO [REFERRAL "), "{referral}");
    // Still not authenticated: SELECT is not allowed, but another LOGIN is.
    assert_line(
        &imap.tagged("s", "SELECT INBOX"),
        "s BAD Error in IMAP command received by server.",
        &lab,
    );
    let again = imap.login("b", "local", PASSWORD);
    assert!(again.starts_with("b OK [CAPABILITY "), "{again}");
}

#[test]
fn front_proxies_the_proxied_user_to_home() {
    let lab = DovecotLab::start();
    assert_inbox(lab.front, "proxied", "home", &lab);
    assert!(
        lab.wait_for_log("proxy(proxied,127.0.0.1:", Duration::from_secs(5)),
        "front did not log the proxying:\n{}",
        lab.logs()
    );
}

#[test]
fn stillhere_logs_in_on_front_because_2_3_19_ignores_host_without_nologin() {
    // Dovecot's source has "OK [REFERRAL ...] Logged in, but you should use this server instead." for a passdb
    // host without nologin, but 2.3.19's login process only looks at host when nologin or proxy is set, so the
    // user simply logs in on front.
    let lab = DovecotLab::start();
    let answer = login_on(lab.front, "stillhere", PASSWORD);
    assert!(
        answer.starts_with("a OK [CAPABILITY IMAP4rev1 ")
            && answer.ends_with("] Logged in")
            && !answer.contains("[REFERRAL"),
        "{answer}"
    );
    assert_inbox(lab.front, "stillhere", "front", &lab);
}

#[test]
fn local_user_reads_its_inbox_on_front() {
    let lab = DovecotLab::start();
    assert_inbox(lab.front, "local", "front", &lab);
}

#[test]
fn refused_logins_get_contactadmin_or_authenticationfailed_quickly() {
    let lab = DovecotLab::start();
    assert_line(
        &login_on(lab.front, "disabled", PASSWORD),
        &format!("a NO [CONTACTADMIN] {DISABLED_REASON}"),
        &lab,
    );
    assert_line(
        &login_on(lab.front, "blocked", PASSWORD),
        "a NO [CONTACTADMIN] Login disabled for this user",
        &lab,
    );
    // Failed logins: the same answer for a wrong password and an unknown user, each well under Dovecot's
    // default 2 s delay, and no growing per-IP penalty for several failures from one IP and one connection.
    let attempts: [&[(&str, &str)]; 3] = [
        &[("local", "wrong"), ("nosuchuser", PASSWORD)],
        &[("referred", "wrong")],
        &[(KB_USER, "Dove-Secret-41")],
    ];
    std::thread::scope(|scope| {
        for logins in attempts {
            let lab = &lab;
            scope.spawn(move || {
                let mut imap = RawImap::connect(lab.front);
                for (i, (user, password)) in logins.iter().enumerate() {
                    let tag = format!("f{i}");
                    let started = Instant::now();
                    let answer = imap.login(&tag, user, password);
                    let took = started.elapsed();
                    assert_line(
                        &answer,
                        &format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed."),
                        lab,
                    );
                    assert!(took < Duration::from_millis(1500), "{user}: took {took:?}");
                }
            });
        }
    });
}

#[test]
fn home_serves_every_referred_user() {
    let lab = DovecotLab::start();
    for user in HOME_USERS {
        assert_inbox(lab.home, user, "home", &lab);
    }
    // Home has no referrals of its own.
    let answer = login_on(lab.home, "local", PASSWORD);
    assert_line(
        &answer,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.",
        &lab,
    );
}

#[test]
fn tls_endpoints_present_the_lab_certificate() {
    let lab = DovecotLab::start();
    let ca_file = lab
        .ca_file
        .clone()
        .expect("openssl is installed here (dovecot-core depends on it), so the lab must have TLS");
    let ca_pem = std::fs::read(&ca_file).expect("read the lab CA");
    let ca = native_tls::Certificate::from_pem(&ca_pem).expect("parse the lab CA");
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(ca)
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .build()
        .expect("TLS connector");

    // Implicit TLS on front.
    let addr = lab.front_tls.expect("front has an imaps port with TLS on");
    let mut tls = BufReader::new(tls_handshake(&connector, "localhost", || {
        let tcp = TcpStream::connect(addr).expect("connect imaps");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        tcp
    }));
    let mut greeting = String::new();
    tls.read_line(&mut greeting).expect("imaps greeting");
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 ")
            && !greeting.contains("STARTTLS")
            && greeting.ends_with("Dovecot (Debian) ready.\r\n"),
        "{greeting:?}"
    );
    tls.get_mut()
        .write_all(format!("a LOGIN local {PASSWORD}\r\n").as_bytes())
        .expect("send LOGIN");
    let mut answer = String::new();
    tls.read_line(&mut answer).expect("LOGIN answer");
    assert!(answer.starts_with("a OK [CAPABILITY "), "{answer:?}");

    // STARTTLS on both plain ports; the certificate names localhost and 127.0.0.1.
    for (addr, name) in [(lab.front, "localhost"), (lab.home, "127.0.0.1")] {
        let mut tls = BufReader::new(tls_handshake(&connector, name, || {
            let mut imap = RawImap::connect(addr);
            assert_line(
                &imap.tagged("t", "STARTTLS"),
                "t OK Begin TLS negotiation now.",
                &lab,
            );
            imap.into_stream()
        }));
        tls.get_mut()
            .write_all(b"c CAPABILITY\r\n")
            .expect("send CAPABILITY");
        let mut line = String::new();
        tls.read_line(&mut line).expect("CAPABILITY");
        assert!(
            line.starts_with("* CAPABILITY IMAP4rev1 ") && !line.contains("STARTTLS"),
            "{line:?}"
        );
    }
}

/// A TLS handshake as `name` over the stream `connect` opens. A handshake whose socket read was interrupted
/// (EINTR: a read with a timeout fails so when the process is paused and resumed, which a busy sandbox does)
/// starts over on a new connection; any other failure panics.
fn tls_handshake(
    connector: &native_tls::TlsConnector,
    name: &str,
    mut connect: impl FnMut() -> TcpStream,
) -> native_tls::TlsStream<TcpStream> {
    let mut attempt = 1;
    loop {
        match connector.connect(name, connect()) {
            Ok(stream) => return stream,
            Err(e) if attempt < 3 && e.to_string().contains("os error 4") => attempt += 1,
            Err(e) => panic!("TLS handshake as {name}: {e}"),
        }
    }
}

#[test]
fn two_labs_run_side_by_side() {
    let first = DovecotLab::start();
    let second = DovecotLab::start();
    let ports = [first.front, first.home, second.front, second.home];
    for (i, a) in ports.iter().enumerate() {
        for b in &ports[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_ne!(first.dir(), second.dir());
    for lab in [&first, &second] {
        let expected = format!(
            "a NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:{}/] Try this server instead.",
            lab.home.port()
        );
        assert_line(&login_on(lab.front, "referred", PASSWORD), &expected, lab);
    }
    drop(first);
    // The second lab is untouched by the first one's shutdown.
    assert_inbox(second.home, "referred", "home", &second);
}

#[test]
fn dropping_the_lab_stops_every_dovecot_process() {
    let lab = DovecotLab::start();
    // Make front run more processes than at start-up: a proxied session, a local session and a referral.
    let mut proxied = RawImap::connect(lab.front);
    assert!(proxied.login("a", "proxied", PASSWORD).starts_with("a OK "));
    let mut local = RawImap::connect(lab.front);
    assert!(local.login("a", "local", PASSWORD).starts_with("a OK "));
    assert!(login_on(lab.front, "referred", PASSWORD).starts_with("a NO [REFERRAL "));

    let groups = lab.master_pids();
    for pgid in groups {
        let running = processes_in_group(pgid);
        assert!(
            running.iter().any(|p| p.pid == pgid && p.name == "dovecot"),
            "master {pgid} not found: {running:?}"
        );
    }
    let mut addrs = vec![lab.front, lab.home];
    addrs.extend(lab.front_tls);
    let dir = lab.dir().to_path_buf();

    let started = Instant::now();
    drop(lab);
    let took = started.elapsed();

    for pgid in groups {
        let running: Vec<_> = processes_in_group(pgid)
            .into_iter()
            .filter(|p| p.state != 'Z')
            .collect();
        assert!(
            running.is_empty(),
            "still running in process group {pgid}: {running:?}"
        );
        // A zombie (a child that died after its master) is gone once PID 1 reaps it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !processes_in_group(pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = processes_in_group(pgid);
        assert!(left.is_empty(), "left in process group {pgid}: {left:?}");
        assert!(!std::path::Path::new(&format!("/proc/{pgid}")).exists());
    }
    for addr in addrs {
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "something still listens on {addr}"
        );
    }
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    // The sessions opened before the drop were ended by the server (at most a BYE, then end of stream).
    for session in [proxied, local] {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut session.into_stream(), &mut rest)
            .expect("read to the end of a session cut by the shutdown");
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.is_empty() || rest.starts_with("* BYE "), "{rest:?}");
    }
}
