//! `imapref probe` against a real Dovecot, started by the test on loopback with its own configuration (see
//! tests/support/dovecot.rs): a front whose passdb refers users (`nologin` + `host`) or proxies them (`proxy=y`), and a
//! home server. The probe must follow Dovecot's `NO [REFERRAL imap://user;AUTH=PLAIN@host:port/]` and select the INBOX;
//! proxied users are reached directly; the password appears nowhere.

mod support;

use assert_cmd::Command;

use serde_json::Value;
use support::dovecot::{DovecotLab, INBOX_MESSAGES, KB_USER, PASSWORD};

struct Run {
    code: i32,
    stdout: String,
    doc: Value,
}

fn probe(target: &str, user: &str, password: &str, extra: &[&str]) -> Run {
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .args([
            "probe",
            target,
            user,
            "--password-env",
            "DOVECOT_TEST_PW",
            "--json",
            "--timeout",
            "10",
        ])
        .args(extra)
        .env("DOVECOT_TEST_PW", password)
        .output()
        .expect("imapref runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the password leaked:\n{stdout}\n{stderr}"
    );
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        doc,
    }
}

fn assert_referred_and_reached(dovecot: &DovecotLab, user: &str, home_user: &str) {
    let run = probe(&dovecot.front.to_string(), user, PASSWORD, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, dovecot.logs());
    let hops = run.doc["hops"].as_array().expect("hops");
    assert_eq!(hops.len(), 2, "{}", run.stdout);
    let login = &hops[0]["login"];
    assert_eq!(login["status"], "NO");
    assert_eq!(login["referral"]["kind"], "login");
    assert_eq!(login["referral"]["logged_in"], false);
    assert_eq!(login["referral"]["targets"][0]["user"], home_user);
    assert_eq!(login["referral"]["targets"][0]["mechanism"], "PLAIN");
    assert_eq!(hops[0]["greeting"]["product"]["name"], "Dovecot");
    assert_eq!(
        hops[1]["server"].as_str(),
        Some(dovecot.home.to_string().as_str())
    );
    assert_eq!(hops[1]["user"], home_user);
    // The URL asked for AUTH=PLAIN, so the home hop authenticated with it.
    assert!(hops[1]["login"]["command"]
        .as_str()
        .unwrap_or("")
        .contains("AUTHENTICATE PLAIN ***"));
    assert_eq!(hops[1]["select"]["status"], "OK");
    assert_eq!(hops[1]["mailbox_state"]["exists"], INBOX_MESSAGES);
    assert_eq!(run.doc["verdict"]["status"], "ok");
    assert_eq!(
        run.doc["password_sent_to"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn dovecot_login_referral_is_followed_to_the_home_inbox() {
    let dovecot = DovecotLab::start();
    assert_referred_and_reached(&dovecot, "referred", "referred");
}

#[test]
fn dovecot_referral_for_the_kb_login_name_decodes_lower_case_hex() {
    let dovecot = DovecotLab::start();
    assert_referred_and_reached(&dovecot, KB_USER, KB_USER);
}

#[test]
fn dovecot_referral_to_another_user_name_logs_in_as_that_user() {
    let dovecot = DovecotLab::start();
    assert_referred_and_reached(&dovecot, "renamed", "homeuser");
}

#[test]
fn dovecot_proxied_user_is_reached_directly() {
    let dovecot = DovecotLab::start();
    let run = probe(&dovecot.front.to_string(), "proxied", PASSWORD, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, dovecot.logs());
    assert_eq!(run.doc["hops"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        run.doc["hops"][0]["mailbox_state"]["exists"],
        INBOX_MESSAGES
    );
    assert!(run.doc["diagnoses"]
        .as_array()
        .is_some_and(|d| d.iter().all(|d| d["id"] != "login-referral")));
}

#[test]
fn dovecot_direct_probe_takes_one_round_trip_pipelined_and_three_without() {
    let dovecot = DovecotLab::start();
    // Dovecot keeps pipelined input across its login hand-off: LOGIN and SELECT in one write.
    let run = probe(&dovecot.home.to_string(), "referred", PASSWORD, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.doc["hops"][0]["pipelined"], true);
    assert_eq!(
        run.doc["hops"][0]["round_trips"].as_u64(),
        Some(1),
        "{}",
        run.stdout
    );
    assert_eq!(run.doc["hops"][0]["select"]["status"], "OK");
    let run = probe(
        &dovecot.home.to_string(),
        "referred",
        PASSWORD,
        &["--no-pipelining"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let hop = &run.doc["hops"][0];
    assert_eq!(
        hop["capabilities_from"], "login",
        "Dovecot sends its capabilities with the login OK"
    );
    assert_eq!(
        hop["round_trips"].as_u64(),
        Some(3),
        "LOGIN, SELECT, LOGOUT: {}",
        hop["round_trips"]
    );
}

#[test]
fn dovecot_wrong_password_is_critical_without_a_referral() {
    let dovecot = DovecotLab::start();
    let run = probe(
        &dovecot.front.to_string(),
        "referred",
        "wrong-password",
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(
        run.doc["hops"][0]["login"]["code"]["code"],
        "AUTHENTICATIONFAILED"
    );
    assert!(run.doc["hops"][0]["login"]["referral"].is_null());
}

#[test]
fn dovecot_starttls_with_the_test_ca() {
    let dovecot = DovecotLab::start();
    let Some(ca) = dovecot.ca_file.clone() else {
        panic!("the Dovecot harness generates a CA when openssl is present; it is missing here");
    };
    let ca = ca.display().to_string();
    let run = probe(
        &dovecot.front.to_string(),
        "referred",
        PASSWORD,
        &["--starttls", "--ca-file", &ca, "--cert-warn-days", "1"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, dovecot.logs());
    for hop in run.doc["hops"].as_array().expect("hops") {
        assert_eq!(hop["encrypted"], true, "every hop under TLS: {hop}");
        assert_eq!(hop["certificate"]["verification"]["result"], "verified");
    }
}
