//! `imapref probe` and TLS, against the built-in lab: the negotiated protocol, cipher and fingerprint in the JSON
//! report, the presented certificate shown when verification fails, and a `--ca-file` that cannot be used, with TLS
//! (a usage error that says what is wrong with the file) and without (a warning).

mod support;
use support::run::Run;

use assert_cmd::Command;
use imapref::lab::{Lab, LabConfig, Scenario};
use serde_json::Value;

const USER: &str = "DOMname/UserN/AliasN";

async fn lab() -> Lab {
    Lab::start(LabConfig {
        scenario: Scenario::Kb,
        ..LabConfig::default()
    })
    .await
    .expect("the lab starts")
}

/// `imapref probe TARGET USER --password-env ... ARGS`, off the async runtime.
async fn probe(target: String, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .arg("probe")
            .arg(&target)
            .arg(USER)
            .args(["--password-env", "IMAPREF_TEST_PASSWORD", "--timeout", "5"])
            .args(&args)
            .env("IMAPREF_TEST_PASSWORD", "PASSword")
            .env("NO_COLOR", "1")
            .output()
            .expect("imapref runs");
        Run::from(out)
    })
    .await
    .expect("join")
}

fn is_fingerprint(text: &str) -> bool {
    let pairs: Vec<&str> = text.split(':').collect();
    pairs.len() == 32
        && pairs.iter().all(|pair| {
            pair.len() == 2
                && pair
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_certificate_has_protocol_cipher_and_fingerprint() {
    let lab = lab().await;
    let ca = lab.ca_file().display().to_string();
    let home = lab.server("home").expect("home").clone();

    for (target, mode) in [
        (home.tls.expect("implicit TLS").to_string(), "--tls"),
        (home.plain.to_string(), "--starttls"),
    ] {
        let run = probe(target, &["--json", mode, "--ca-file", &ca]).await;
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
        let cert = &doc["hops"][0]["certificate"];
        assert!(
            cert["protocol"]
                .as_str()
                .is_some_and(|p| p.starts_with("TLSv1.")),
            "{mode}: {cert}"
        );
        assert!(
            cert["cipher"].as_str().is_some_and(|c| !c.is_empty()),
            "{mode}: {cert}"
        );
        assert!(
            cert["sha256"].as_str().is_some_and(is_fingerprint),
            "{mode}: {cert}"
        );
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_does_not_verify_is_shown() {
    let lab = lab().await;
    let tls = lab.server("home").expect("home").tls.expect("implicit TLS");

    // The lab's CA is not in the system trust store.
    let run = probe(tls.to_string(), &["--tls"]).await;

    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(out.contains("certificate verify failed"), "{out}");
    assert!(out.contains("is not in the system trust store"), "{out}");
    assert!(out.contains("the server presented CN="), "{out}");
    assert!(out.contains("issued by CN=imapref lab CA"), "{out}");
    assert!(out.contains("names localhost, 127.0.0.1"), "{out}");
    assert!(out.contains("SHA-256 "), "{out}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_ca_file_with_tls_is_a_usage_error_naming_the_problem() {
    let lab = lab().await;
    let tls = lab.server("home").expect("home").tls.expect("implicit TLS");
    let dir = tempfile::tempdir().expect("temporary directory");
    let key_only = dir.path().join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let missing = dir.path().join("missing.pem");

    let run = probe(
        tls.to_string(),
        &["--tls", "--ca-file", &missing.display().to_string()],
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "imapref: --ca-file: cannot use CA file {}: no such file",
            missing.display()
        )
    );

    let run = probe(
        tls.to_string(),
        &["--tls", "--ca-file", &key_only.display().to_string()],
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "it holds no certificate (-----BEGIN CERTIFICATE-----), only a PRIVATE KEY block"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("host name"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("error:"),
        "no raw OpenSSL chain: {}",
        run.stderr
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_ca_file_without_tls_is_a_warning() {
    let lab = lab().await;
    let home = lab.server("home").expect("home").plain;
    let missing = "/nonexistent/imapref-ca.pem";

    let run = probe(home.to_string(), &["--ca-file", missing]).await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "imapref: warning: --ca-file is not used without --tls or --starttls, and cannot use CA file \
             /nonexistent/imapref-ca.pem: no such file"
        ),
        "{}",
        run.stderr
    );
    lab.shutdown().await;
}
