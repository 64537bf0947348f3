//! `imapref probe` against the built-in lab: every scenario gives the right verdict, exit code and diagnosis, and the
//! password appears in no output. The lab runs in-process on ephemeral loopback ports; the probe is the real binary.

mod support;
use support::lab::start;
use support::run::Run;

use assert_cmd::Command;

use imapref::lab::{Lab, Scenario};
use serde_json::Value;

const PASSWORD: &str = "PASSword";
const USER: &str = "DOMname/UserN/AliasN";

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    fn diagnosis_ids(&self) -> Vec<String> {
        self.json()["diagnoses"]
            .as_array()
            .expect("diagnoses")
            .iter()
            .map(|d| d["id"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// No output of any kind carries the password.
    fn assert_no_password(&self) {
        assert!(
            !self.stdout.contains(PASSWORD),
            "password in stdout:\n{}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(PASSWORD),
            "password in stderr:\n{}",
            self.stderr
        );
    }
}

/// Runs `imapref probe TARGET USER ARGS... --password-env` with the given password, off the async runtime.
async fn probe_with(target: String, password: &str, args: &[&str]) -> Run {
    let password = password.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .arg("probe")
            .arg(&target)
            .arg(USER)
            .args(["--password-env", "IMAPREF_TEST_PASSWORD", "--timeout", "5"])
            .args(&args)
            .env("IMAPREF_TEST_PASSWORD", password)
            .env("NO_COLOR", "1")
            .output()
            .expect("imapref runs");
        Run::from(out)
    })
    .await
    .expect("join")
}

async fn probe(target: String, args: &[&str]) -> Run {
    probe_with(target, PASSWORD, args).await
}

fn front(lab: &Lab) -> String {
    lab.front().plain.to_string()
}

fn server(lab: &Lab, role: &str) -> String {
    lab.server(role)
        .unwrap_or_else(|| panic!("no {role} server"))
        .plain
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn kb_follows_the_login_referral_past_no_replica_to_the_home_server() {
    let lab = start(Scenario::Kb).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["version"], 1);
    let hops = doc["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 2);
    // Hop 1: the KB's lines.
    assert!(hops[0]["greeting"]["line"]
        .as_str()
        .unwrap_or("")
        .contains("Microsoft Exchange IMAP4rev1 server version 5.5.1960.6"));
    assert_eq!(
        hops[0]["greeting"]["product"]["name"],
        "Microsoft Exchange 5.5"
    );
    assert_eq!(hops[0]["login"]["status"], "OK");
    assert_eq!(hops[0]["login"]["referral"]["kind"], "login");
    assert_eq!(hops[0]["login"]["referral"]["logged_in"], true);
    assert_eq!(hops[0]["login"]["referral"]["targets"][0]["user"], USER);
    assert_eq!(
        hops[0]["select"]["text"],
        "There is no replica for that mailbox on this server."
    );
    // Hop 2: the home server, with the INBOX.
    assert_eq!(
        hops[1]["server"].as_str(),
        Some(server(&lab, "home").as_str())
    );
    assert_eq!(hops[1]["reason"]["type"], "login-referral");
    assert_eq!(hops[1]["select"]["status"], "OK");
    assert_eq!(hops[1]["mailbox_state"]["exists"], 3);
    assert_eq!(doc["verdict"]["status"], "ok");
    assert_eq!(
        doc["verdict"]["reached_at"].as_str(),
        Some(server(&lab, "home").as_str())
    );
    assert_eq!(doc["chain"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["password_sent_to"].as_array().map(Vec::len), Some(2));
    let ids = run.diagnosis_ids();
    assert!(
        ids.contains(&"login-referral".to_string()) && ids.contains(&"no-replica".to_string()),
        "{ids:?}"
    );
    // Pipelined: the login and SELECT went in one write on every hop; LOGOUT goes last and is not awaited.
    assert!(
        hops.iter().all(|h| h["pipelined"] == true),
        "{}",
        run.stdout
    );
    assert!(hops
        .iter()
        .all(|h| h["transcript"].as_array().is_some_and(|t| t
            .iter()
            .any(|e| e["text"].as_str().is_some_and(|x| x.ends_with(" LOGOUT"))))));
    run.assert_no_password();
    // One at a time, every hop is logged out and its answer awaited.
    let run = probe(front(&lab), &["--json", "--no-pipelining"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    let hops = doc["hops"].as_array().expect("hops");
    assert!(hops.iter().all(|h| h["pipelined"] == false));
    assert!(hops.iter().all(|h| h["logout_answered"] == true));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kb_human_report_and_verbose_transcript_hide_the_password() {
    let lab = start(Scenario::Kb).await;
    let run = probe(front(&lab), &["-v"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("referral chain:"), "{}", run.stdout);
    assert!(run.stdout.contains(" → "), "the chain is drawn as hops");
    assert!(run
        .stdout
        .contains("There is no replica for that mailbox on this server."));
    assert!(
        run.stdout.contains(&format!("C: a2 LOGIN {USER} ***")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.starts_with("imapref probe"));
    assert!(
        run.stdout.contains("OK: `INBOX`"),
        "a verdict sentence: {}",
        run.stdout
    );
    run.assert_no_password();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_probe_of_the_home_server_needs_one_round_trip_pipelined_and_three_without() {
    let lab = start(Scenario::Kb).await;
    let run = probe(server(&lab, "home"), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["hops"][0]["capabilities_from"], "login");
    let trips = doc["hops"][0]["round_trips"].as_u64().expect("round trips");
    assert_eq!(
        trips, 1,
        "LOGIN and SELECT in one write after the greeting took {trips} round trips"
    );
    let run = probe(server(&lab, "home"), &["--json", "--no-pipelining"]).await;
    let trips = run.json()["hops"][0]["round_trips"]
        .as_u64()
        .expect("round trips");
    assert_eq!(
        trips, 3,
        "LOGIN, SELECT, LOGOUT one at a time took {trips} round trips"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_no_referral_is_followed() {
    let lab = start(Scenario::LoginNo).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["hops"][0]["login"]["status"], "NO");
    assert_eq!(doc["hops"][0]["login"]["referral"]["logged_in"], false);
    assert!(
        doc["hops"][0]["select"].is_null(),
        "no SELECT where not logged in"
    );
    assert_eq!(doc["hops"][1]["mailbox_state"]["exists"], 3);
    run.assert_no_password();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bye_greeting_referral_is_followed_without_sending_the_password_to_front() {
    let lab = start(Scenario::ByeGreeting).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["hops"][0]["greeting"]["status"], "BYE");
    assert_eq!(doc["hops"][0]["password_sent"], false);
    assert_eq!(
        doc["password_sent_to"],
        serde_json::json!([server(&lab, "home")])
    );
    assert!(run
        .diagnosis_ids()
        .contains(&"greeting-referral".to_string()));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mailbox_referral_needs_rlist_and_is_followed_to_the_public_server() {
    let lab = start(Scenario::MailboxReferral).await;
    let run = probe(
        front(&lab),
        &["--json", "--mailbox", "Public Folders/Announcements"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    let hops = doc["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 2);
    assert_eq!(
        hops[0]["rlist"]["status"], "OK",
        "RLIST was sent before SELECT"
    );
    assert_eq!(hops[0]["select"]["referral"]["kind"], "mailbox");
    assert_eq!(hops[1]["reason"]["type"], "mailbox-referral");
    assert_eq!(hops[1]["mailbox"], "Public Folders/Announcements");
    assert_eq!(hops[1]["select"]["status"], "OK");
    assert!(run
        .diagnosis_ids()
        .contains(&"mailbox-referral".to_string()));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_are_tried_in_order_past_a_dead_one() {
    let lab = start(Scenario::Replicas).await;
    let run = probe(
        front(&lab),
        &["--json", "--mailbox", "Public Folders/Announcements"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    let hops = doc["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 3, "front, the dead replica, the first live one");
    assert_eq!(
        hops[0]["select"]["referral"]["targets"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(hops[1]["error"]["phase"], "connect");
    assert_eq!(hops[2]["select"]["status"], "OK");
    assert_eq!(doc["verdict"]["reached_at"], hops[2]["server"]);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_referral_loop_is_detected_and_reported_with_its_chain() {
    let lab = start(Scenario::Loop).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    let doc = run.json();
    assert!(run.diagnosis_ids().contains(&"referral-loop".to_string()));
    assert_eq!(doc["hops"].as_array().map(Vec::len), Some(2));
    let summary = doc["verdict"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(&front(&lab)) && summary.contains(" → "),
        "{summary}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_longer_than_max_hops_is_stopped() {
    let lab = start(Scenario::LongChain).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.diagnosis_ids().contains(&"too-many-hops".to_string()));
    let hops = run.json()["hops"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(hops, 11, "the first server and ten referrals");
    // Raising the limit reaches the end of the chain.
    let run = probe(front(&lab), &["--json", "--max-hops", "12"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["hops"].as_array().map(Vec::len), Some(12));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_referral_to_a_closed_port_is_critical() {
    let lab = start(Scenario::ClosedPort).await;
    let run = probe(front(&lab), &["--json"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.diagnosis_ids()
            .contains(&"referral-unreachable".to_string()),
        "{:?}",
        run.diagnosis_ids()
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_never_dropped_when_following_a_referral() {
    let lab = start(Scenario::TlsDowngrade).await;
    let ca = lab.ca_file().display().to_string();
    let tls_port = lab.front().tls.expect("front has implicit TLS").to_string();
    // Implicit TLS on the first hop: the plaintext-only referred server fails the handshake.
    let run = probe(tls_port, &["--json", "--tls", "--ca-file", &ca]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(
        doc["hops"][0]["certificate"]["verification"]["result"],
        "verified"
    );
    assert_eq!(doc["hops"][1]["error"]["phase"], "tls");
    assert_eq!(doc["hops"][1]["password_sent"], false);
    // STARTTLS on the first hop: the referred server does not offer it, so imapref stops.
    let run = probe(front(&lab), &["--json", "--starttls", "--ca-file", &ca]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.diagnosis_ids()
            .contains(&"tls-downgrade-refused".to_string()),
        "{:?}",
        run.diagnosis_ids()
    );
    assert_eq!(
        run.json()["password_sent_to"].as_array().map(Vec::len),
        Some(1)
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_refused_without_a_referral() {
    let lab = start(Scenario::WrongPassword).await;
    let run = probe_with(front(&lab), "not-the-password", &["--json"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    let doc = run.json();
    assert_eq!(
        doc["hops"][0]["login"]["code"]["code"],
        "AUTHENTICATIONFAILED"
    );
    assert!(doc["hops"][0]["login"]["referral"].is_null());
    assert_eq!(doc["hops"].as_array().map(Vec::len), Some(1));
    assert!(run.diagnosis_ids().contains(&"login-refused".to_string()));
    assert!(!run.stdout.contains("not-the-password"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_never_reports_the_referral_and_stops() {
    let lab = start(Scenario::LoginNo).await;
    let run = probe(front(&lab), &["--json", "--follow", "never"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.diagnosis_ids().contains(&"policy-refused".to_string()));
    assert_eq!(
        run.json()["password_sent_to"].as_array().map(Vec::len),
        Some(1)
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_implicit_tls_report_the_certificate() {
    let lab = start(Scenario::Kb).await;
    let ca = lab.ca_file().display().to_string();
    let home = lab.server("home").expect("home");
    let run = probe(
        home.plain.to_string(),
        &["--json", "--starttls", "--ca-file", &ca],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let cert = &run.json()["hops"][0]["certificate"];
    assert_eq!(cert["verification"]["result"], "verified");
    assert!(
        cert["sans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|n| n == "127.0.0.1")),
        "{cert}"
    );
    assert!(cert["days_left"].as_i64().unwrap_or(0) > 0);
    let tls = home.tls.expect("home has implicit TLS").to_string();
    let run = probe(tls.clone(), &["--json", "--tls", "--ca-file", &ca]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Without the CA the certificate does not verify: a TLS failure, critical.
    let run = probe(tls.clone(), &["--json", "--tls"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.diagnosis_ids().contains(&"tls-failure".to_string()));
    // Within --cert-warn-days: a warning.
    let run = probe(
        tls,
        &[
            "--json",
            "--tls",
            "--ca-file",
            &ca,
            "--cert-warn-days",
            "100000",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run
        .diagnosis_ids()
        .contains(&"certificate-expiring".to_string()));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticate_plain_works_and_is_redacted() {
    let lab = start(Scenario::Kb).await;
    let run = probe(server(&lab, "home"), &["--json", "--auth", "plain", "-v"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let doc = run.json();
    assert!(doc["hops"][0]["login"]["command"]
        .as_str()
        .unwrap_or("")
        .contains("AUTHENTICATE PLAIN ***"));
    // base64 of "\0DOMname/UserN/AliasN\0PASSword" must not appear either.
    assert!(!run
        .stdout
        .contains("AERPTW5hbWUvVXNlck4vQWxpYXNOAFBBU1N3b3Jk"));
    run.assert_no_password();
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn examine_with_read_only() {
    let lab = start(Scenario::Kb).await;
    let run = probe(server(&lab, "home"), &["--json", "--read-only"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.json()["hops"][0]["mailbox_state"]["access"],
        "READ-ONLY"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn password_from_a_file_or_stdin() {
    let lab = start(Scenario::Kb).await;
    let home = server(&lab, "home");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pw");
    std::fs::write(&file, format!("{PASSWORD}\n")).expect("write");
    let file = file.display().to_string();
    let (by_file, by_stdin) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str], stdin: &str| {
            Command::cargo_bin("imapref")
                .expect("the imapref binary")
                .args(["probe", &home, USER, "--json"])
                .args(args)
                .write_stdin(stdin)
                .output()
                .expect("imapref runs")
        };
        (
            run(&["--password-file", &file], ""),
            run(&["--password-stdin"], &format!("{PASSWORD}\r\nignored\n")),
        )
    })
    .await
    .expect("join");
    for out in [by_file, by_stdin] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(!stdout.contains(PASSWORD));
    }
    lab.shutdown().await;
}
