//! The command line itself: help, version, completions and the man page come from one clap definition; usage errors
//! exit 3 (unknown), as the monitoring-plugins convention says.

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn imapref() -> Command {
    Command::cargo_bin("imapref").expect("the imapref binary")
}

#[test]
fn help_and_version_exit_0() {
    imapref()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(contains("probe"))
        .stdout(contains("explain"));
    imapref()
        .args(["probe", "--help"])
        .assert()
        .code(0)
        .stdout(contains("--password-env"))
        .stdout(contains("--follow"));
    imapref()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_subcommand_exits_3() {
    imapref()
        .arg("frobnicate")
        .assert()
        .code(3)
        .stderr(contains("unrecognized subcommand"));
}

#[test]
fn completions_and_man_page_are_generated() {
    imapref()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .stdout(contains("_imapref()"));
    imapref()
        .args(["completions", "zsh"])
        .assert()
        .code(0)
        .stdout(contains("#compdef imapref"));
    imapref()
        .arg("man")
        .assert()
        .code(0)
        .stdout(contains(".TH imapref 1"));
}

#[test]
fn lab_list_names_every_scenario() {
    let out = imapref()
        .args(["lab", "--list"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    for name in imapref::lab::scenarios().iter().map(|s| s.name) {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    imapref()
        .args(["lab", "--scenario", "nope"])
        .assert()
        .code(3)
        .stderr(contains("kb"));
    imapref()
        .args(["lab", "--bind", "0.0.0.0", "--port-base", "1"])
        .assert()
        .code(3)
        .stderr(contains("loopback"));
}

#[test]
fn demo_walks_through_the_kb_and_exits_0() {
    imapref()
        .args(["--color", "never", "demo"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(0)
        .stdout(contains(
            "There is no replica for that mailbox on this server.",
        ))
        .stdout(contains("LOGIN completed"))
        .stdout(contains("3 messages"))
        .stdout(contains("OK: `INBOX` of DOMname/UserN/AliasN"))
        .stdout(predicates::str::contains("PASSword").not());
}
