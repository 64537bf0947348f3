//! Round trips counted on the lab's side ([`Lab::connections`]): a raw client checks what counts as one (a command
//! answered, a pipelined batch, a literal's `+`, STARTTLS), and `imapref probe` is held to exact counts per lab
//! scenario, which must also agree with the round trips its own JSON report claims per hop.

mod support;
use support::lab::start;

use std::net::SocketAddr;
use std::time::Duration;

use assert_cmd::Command;
use imapref::lab::{ConnectionRecord, Lab, Scenario};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(5);

/// A raw plaintext client that reads until a line starting with `until` arrives.
struct Raw {
    tcp: TcpStream,
    seen: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let tcp = timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut raw = Raw {
            tcp,
            seen: Vec::new(),
        };
        raw.until("* ").await;
        raw
    }

    async fn send(&mut self, bytes: &str) {
        self.tcp.write_all(bytes.as_bytes()).await.expect("write");
    }

    /// Reads until a line that starts with `prefix` has arrived in full.
    async fn until(&mut self, prefix: &str) {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if text
                .split_inclusive("\r\n")
                .any(|line| line.ends_with("\r\n") && line.starts_with(prefix))
            {
                self.seen.clear();
                return;
            }
            let n = timeout(STEP, self.tcp.read(&mut buf))
                .await
                .expect("answer in time")
                .expect("read");
            assert!(n > 0, "closed before {prefix:?}: {text}");
            self.seen.extend_from_slice(&buf[..n]);
        }
    }
}

/// The records of the lab's connections to `role`, waiting (briefly) until they have all ended.
async fn ended(lab: &Lab) -> Vec<ConnectionRecord> {
    for _ in 0..100 {
        let records = lab.connections();
        if records.iter().all(|record| record.closed) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connections still open: {:?}", lab.connections());
}

#[tokio::test]
async fn one_command_at_a_time_is_one_round_trip_each() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut raw = Raw::connect(home).await;
    raw.send("a LOGIN DOMname/UserN/AliasN PASSword\r\n").await;
    raw.until("a ").await;
    raw.send("b SELECT INBOX\r\n").await;
    raw.until("b ").await;
    raw.send("c LOGOUT\r\n").await;
    raw.until("c ").await;

    let records = ended(&lab).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].role, "home");
    assert!(!records[0].implicit_tls);
    assert_eq!(records[0].round_trips, 3, "{records:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_pipelined_batch_is_one_round_trip() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut raw = Raw::connect(home).await;
    raw.send("a LOGIN DOMname/UserN/AliasN PASSword\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
        .await;
    raw.until("c ").await;

    let records = ended(&lab).await;
    assert_eq!(records[0].round_trips, 1, "{records:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_synchronizing_literal_costs_a_round_trip_and_the_greeting_none() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut raw = Raw::connect(home).await;
    raw.send("a LOGIN {20}\r\n").await;
    raw.until("+ ").await;
    raw.send("DOMname/UserN/AliasN PASSword\r\n").await;
    raw.until("a ").await;
    raw.send("b LOGOUT\r\n").await;
    raw.until("b ").await;

    let records = ended(&lab).await;
    assert_eq!(
        records[0].round_trips, 3,
        "+, LOGIN's OK, LOGOUT: {records:?}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_has_no_round_trips() {
    let lab = start(Scenario::Kb).await;
    let raw = Raw::connect(lab.front().plain).await;
    drop(raw);
    let records = ended(&lab).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].role, "front");
    assert_eq!(records[0].round_trips, 0, "the greeting is not one");
    lab.shutdown().await;
}

/// `imapref probe TARGET USER --json ARGS`, off the runtime; the JSON report.
async fn probe(target: String, user: &str, args: &[&str]) -> Value {
    let user = user.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .arg("probe")
            .arg(&target)
            .arg(&user)
            .args([
                "--json",
                "--password-env",
                "IMAPREF_TEST_PASSWORD",
                "--timeout",
                "5",
            ])
            .args(&args)
            .env("IMAPREF_TEST_PASSWORD", "PASSword")
            .output()
            .expect("imapref runs");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    })
    .await
    .expect("join")
}

/// Runs the probe against `scenario` and returns, per lab connection in order, the server's role, the round trips
/// the lab counted, and the round trips the report claims for the hop on that connection. (Hops that could not
/// connect have no lab connection and are left out.)
async fn probe_counts(scenario: Scenario, tls: bool, args: &[&str]) -> Vec<(String, u32, u64)> {
    let lab = start(scenario).await;
    let ca = lab.ca_file().display().to_string();
    let target = if tls {
        lab.front().tls.expect("implicit TLS").to_string()
    } else {
        lab.front().plain.to_string()
    };
    let mut all: Vec<&str> = args.to_vec();
    if tls {
        all.extend(["--tls", "--ca-file", &ca]);
    }
    let doc = probe(target, "DOMname/UserN/AliasN", &all).await;
    let records = ended(&lab).await;
    let hops = doc["hops"].as_array().expect("hops");
    let reported: Vec<u64> = hops
        .iter()
        .filter(|hop| hop["error"]["phase"] != "connect")
        .map(|hop| hop["round_trips"].as_u64().expect("round_trips"))
        .collect();
    assert_eq!(
        reported.len(),
        records.len(),
        "{scenario:?}: one lab connection per hop that connected: {records:?}\n{doc}"
    );
    lab.shutdown().await;
    records
        .iter()
        .zip(reported)
        .map(|(record, reported)| (record.role.clone(), record.round_trips, reported))
        .collect()
}

/// A scenario, whether the probe uses implicit TLS, its extra arguments, and per lab connection: the server, the
/// round trips the lab counted, the round trips the report claims.
type Case = (
    Scenario,
    bool,
    &'static [&'static str],
    Vec<(&'static str, u32, u64)>,
);

/// The counts with pipelining, per lab connection: the server, the round trips the lab counted, the round trips the
/// report claims. The report counts the waits a hop made; the lab also answers the LOGOUT that goes, unawaited, once
/// the mailbox is known, so it counts one more on every hop that logged in. Two other differences stay: after a
/// `* BYE` greeting the report counts 1 where the server answered nothing, and a TLS handshake against a plaintext
/// port is answered (the lab's `* BAD` to the ClientHello) but not reported. `kb` front: CAPABILITY, then LOGIN and
/// SELECT in one write; home greets with its capabilities, so LOGIN and SELECT are its one round trip.
#[tokio::test(flavor = "multi_thread")]
async fn probe_round_trips_per_scenario() {
    let mailbox: &[&str] = &["--mailbox", "Public Folders/Announcements"];
    let cases: Vec<Case> = vec![
        (
            Scenario::Kb,
            false,
            &[],
            vec![("front", 3, 2), ("home", 2, 1)],
        ),
        (
            Scenario::Kb,
            true,
            &[],
            vec![("front", 3, 2), ("home", 2, 1)],
        ),
        (
            Scenario::LoginNo,
            false,
            &[],
            vec![("front", 3, 2), ("home", 2, 1)],
        ),
        (
            Scenario::ByeGreeting,
            false,
            &[],
            vec![("front", 0, 1), ("home", 2, 1)],
        ),
        (
            Scenario::MailboxReferral,
            false,
            mailbox,
            vec![("front", 5, 4), ("pub", 3, 2)],
        ),
        (
            Scenario::Replicas,
            false,
            mailbox,
            vec![("front", 5, 4), ("pub1", 3, 2)],
        ),
        (
            Scenario::Loop,
            false,
            &[],
            vec![("front", 3, 2), ("loop-b", 3, 2)],
        ),
        (Scenario::ClosedPort, false, &[], vec![("front", 3, 2)]),
        (
            Scenario::TlsDowngrade,
            true,
            &[],
            vec![("front", 3, 2), ("plainhome", 1, 0)],
        ),
        (
            Scenario::TlsDowngrade,
            false,
            &["--starttls"],
            vec![("front", 2, 2)],
        ),
    ];
    for (scenario, tls, args, expected) in cases {
        let expected: Vec<(String, u32, u64)> = expected
            .into_iter()
            .map(|(role, lab, reported)| (role.to_string(), lab, reported))
            .collect();
        assert_eq!(
            probe_counts(scenario, tls, args).await,
            expected,
            "{scenario:?}, tls {tls}, {args:?}"
        );
    }

    // The first server and ten referrals (then --max-hops stops the chain): CAPABILITY, then LOGIN and SELECT in
    // one write on each, and the unawaited LOGOUT the lab answers.
    let chain = probe_counts(Scenario::LongChain, false, &[]).await;
    assert_eq!(chain.len(), 11, "{chain:?}");
    assert!(
        chain
            .iter()
            .all(|(_, lab, reported)| *lab == 3 && *reported == 2),
        "{chain:?}"
    );
}
