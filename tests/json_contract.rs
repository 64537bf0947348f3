//! The JSON report is a contract (docs/json.md): these are the fields a consumer may rely on, checked against a real
//! probe of the built-in lab. A field added here must be added to the docs; one removed bumps the version.

use assert_cmd::Command;
use std::collections::BTreeSet;

use imapref::lab::{Lab, LabConfig};
use serde_json::Value;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_has_the_documented_fields() {
    let lab = Lab::start(LabConfig::default()).await.expect("lab");
    let target = lab.front().plain.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .args([
                "probe",
                &target,
                "DOMname/UserN/AliasN",
                "--password-env",
                "PW",
                "--json",
            ])
            .env("PW", "PASSword")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    lab.shutdown().await;
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["version"], imapref::probe::report::REPORT_VERSION);
    assert_eq!(
        keys(&doc),
        set(&[
            "version",
            "tool",
            "target",
            "policy",
            "hops",
            "chain",
            "password_sent_to",
            "diagnoses",
            "verdict",
            "total_ms"
        ])
    );
    assert_eq!(
        keys(&doc["target"]),
        set(&[
            "input",
            "server",
            "user",
            "mailbox",
            "read_only",
            "tls_mode"
        ])
    );
    assert_eq!(
        keys(&doc["policy"]),
        set(&["mode", "max_hops", "allow_hosts", "named_host"])
    );
    assert_eq!(
        keys(&doc["verdict"]),
        set(&[
            "status",
            "exit_code",
            "summary",
            "next_step",
            "mailbox_reached",
            "reached_at"
        ])
    );
    let hop = &doc["hops"][0];
    assert_eq!(
        keys(hop),
        set(&[
            "number",
            "server",
            "reason",
            "user",
            "mailbox",
            "tls_mode",
            "encrypted",
            "connect",
            "certificate",
            "greeting",
            "capabilities",
            "capabilities_from",
            "login",
            "rlist",
            "select",
            "mailbox_state",
            "password_sent",
            "pipelined",
            "logout_answered",
            "round_trips",
            "steps",
            "error",
            "transcript",
            "ms",
        ])
    );
    assert_eq!(
        keys(&hop["login"]),
        set(&["command", "status", "code", "text", "line", "referral", "ms"])
    );
    assert_eq!(
        keys(&hop["login"]["referral"]),
        set(&["kind", "logged_in", "targets", "next_step"])
    );
    assert_eq!(
        keys(&hop["login"]["referral"]["targets"][0]),
        set(&[
            "raw",
            "user",
            "mechanism",
            "host",
            "port",
            "mailbox",
            "error"
        ])
    );
    assert_eq!(
        keys(&hop["steps"][0]),
        set(&["name", "mark", "ms", "detail"])
    );
    assert_eq!(
        keys(&hop["transcript"][0]),
        set(&["direction", "at_ms", "text"])
    );
    assert_eq!(
        keys(&doc["diagnoses"][0]),
        set(&["id", "severity", "message", "next_step"])
    );
    assert_eq!(
        keys(&doc["hops"][1]["mailbox_state"]),
        set(&[
            "exists",
            "recent",
            "unseen",
            "uidvalidity",
            "uidnext",
            "access"
        ])
    );
}
