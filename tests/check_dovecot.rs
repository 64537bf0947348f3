//! `imapref check` over a file that mixes targets in the built-in lab and in a real Dovecot (started by the test on
//! loopback, see tests/support/dovecot.rs): each check gets the right status, and the exit code is the worst one.

mod support;

use assert_cmd::Command;
use imapref::lab::{Lab, LabConfig, Scenario};
use serde_json::Value;
use support::dovecot::{DovecotLab, KB_USER, PASSWORD};

const LAB_PASSWORD: &str = "PASSword";
const LAB_USER: &str = "DOMname/UserN/AliasN";

fn run_check(file: &std::path::Path) -> (i32, Value, String) {
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .arg("check")
        .arg(file)
        .args(["--format", "json"])
        .env("LAB_PW", LAB_PASSWORD)
        .env("DOVE_PW", PASSWORD)
        .env("WRONG_PW", "not-the-password")
        .output()
        .expect("imapref runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the Dovecot password leaked"
    );
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), doc, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_mixing_lab_and_dovecot_targets_exits_with_the_worst_status() {
    let dovecot = tokio::task::spawn_blocking(DovecotLab::start)
        .await
        .expect("join");
    let kb = Lab::start(LabConfig {
        scenario: Scenario::Kb,
        ..LabConfig::default()
    })
    .await
    .expect("lab");
    let looping = Lab::start(LabConfig {
        scenario: Scenario::Loop,
        ..LabConfig::default()
    })
    .await
    .expect("lab");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mixed.toml");
    let head = format!(
        r#"[defaults]
timeout = 10

[[check]]
name = "lab kb"
target = "{kb}"
login = "{LAB_USER}"
password_env = "LAB_PW"
expect_hops = 1

[[check]]
name = "dovecot referred"
target = "{front}"
login = "{KB_USER}"
password_env = "DOVE_PW"
expect_home = "{home}"
expect_hops = 1

[[check]]
name = "dovecot wrong password"
target = "{front}"
login = "{KB_USER}"
password_env = "WRONG_PW"
expect = "refused"
"#,
        kb = kb.front().plain,
        front = dovecot.front,
        home = dovecot.home,
    );
    std::fs::write(&file, &head).expect("write");
    let (code, doc, stdout) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || run_check(&file)
    })
    .await
    .expect("join");
    let status = |i: usize| {
        doc["checks"][i]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        (status(0), status(1), status(2)),
        ("ok".into(), "ok".into(), "ok".into()),
        "{stdout}\n{}",
        dovecot.logs()
    );
    assert_eq!(code, 0);

    // Add a Dovecot check that must fail (expect the wrong password to work) and the lab's loop: CRITICAL, 2.
    let more = format!(
        r#"
[[check]]
name = "dovecot bad login expected to work"
target = "{front}"
login = "{KB_USER}"
password_env = "WRONG_PW"

[[check]]
name = "lab loop"
target = "{looping}"
login = "{LAB_USER}"
password_env = "LAB_PW"
"#,
        front = dovecot.front,
        looping = looping.front().plain,
    );
    std::fs::write(&file, format!("{head}{more}")).expect("write");
    let (code, doc, stdout) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || run_check(&file)
    })
    .await
    .expect("join");
    let status = |i: usize| {
        doc["checks"][i]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(status(3), "critical", "{stdout}");
    assert_eq!(status(4), "critical", "{stdout}");
    assert_eq!(code, 2, "{stdout}");
    assert_eq!(doc["summary"]["critical"], 2);

    // And a Dovecot check with no password in its variable: UNKNOWN, 3, the worst.
    let unknown = format!(
        "\n[[check]]\nname = \"no password\"\ntarget = \"{}\"\nlogin = \"x\"\npassword_env = \"IMAPREF_TEST_UNSET_VARIABLE\"\n",
        dovecot.front
    );
    std::fs::write(&file, format!("{head}{more}{unknown}")).expect("write");
    let (code, doc, _) = tokio::task::spawn_blocking(move || run_check(&file))
        .await
        .expect("join");
    assert_eq!(doc["checks"][5]["kind"], "bad-check");
    assert_eq!(code, 3);
    kb.shutdown().await;
    looping.shutdown().await;
    drop(dovecot);
}
