//! `--netrc` and `--netrc-file`: the probe and the shell take the login name and password from a netrc file, as curl
//! reads it, against the in-process lab; a file that its group or others may read is refused with exit 3 (a usage
//! error), saying why.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use support::lab::TestLab;
use support::run::{shows, Run};

const USER: &str = "DOMname/UserN/AliasN";
const PASSWORD: &str = "PASSword";

/// Writes a netrc file with `text` and `mode` in `dir`.
fn netrc(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn imapref(args: &[&str], home: &Path, stdin: &str) -> Run {
    let out = Command::cargo_bin("imapref")
        .unwrap()
        .args(["--color", "never"])
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .timeout(Duration::from_secs(60))
        .write_stdin(stdin)
        .output()
        .unwrap();
    let run = Run::from(out);
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password was shown:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

#[test]
fn the_probe_takes_login_and_password_from_the_netrc_file() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = netrc(
        dir.path(),
        "netrc",
        &format!(
            "# the lab\nmachine example.invalid login someone password else\n\
             machine 127.0.0.1\n    login {USER}\n    password {PASSWORD}\n"
        ),
        0o600,
    );
    // The login name comes from the file too.
    let run = imapref(
        &["probe", &front, "--netrc-file", file.to_str().unwrap()],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 0, "{}", shows(&run));
    assert!(
        run.stdout.contains(&format!("OK: `INBOX` of {USER} is on")),
        "{}",
        shows(&run)
    );
    // With the user named, the entry with that login is the one used.
    let run = imapref(
        &[
            "probe",
            &front,
            USER,
            "--netrc-file",
            file.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 0, "{}", shows(&run));
}

#[test]
fn netrc_reads_dot_netrc_in_the_home_directory_and_its_default_entry() {
    let lab = TestLab::start();
    let home = lab.home().to_string();
    let dir = tempfile::tempdir().unwrap();
    netrc(
        dir.path(),
        ".netrc",
        &format!("machine mail.example login x password y\ndefault login {USER} password \"{PASSWORD}\"\n"),
        0o600,
    );
    let run = imapref(&["probe", &home, "--netrc"], dir.path(), "");
    assert_eq!(run.code, 0, "{}", shows(&run));
}

#[test]
fn a_netrc_file_others_can_read_is_refused_with_the_reason() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = netrc(
        dir.path(),
        "netrc",
        &format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
        0o644,
    );
    let run = imapref(
        &[
            "probe",
            &front,
            USER,
            "--netrc-file",
            file.to_str().unwrap(),
        ],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(
        run.stderr
            .contains("is readable by its group and others (mode 0644)")
            && run.stderr.contains("chmod 600"),
        "{}",
        shows(&run)
    );
    // Nothing was sent to the server: no report at all.
    assert!(run.stdout.is_empty(), "{}", shows(&run));
    // The same in JSON mode: a usage error document.
    let run = imapref(
        &[
            "probe",
            &front,
            USER,
            "--netrc-file",
            file.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 3);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["error"]["phase"], "usage");
    // The shell refuses it too.
    let run = imapref(
        &["shell", &front, "--netrc-file", file.to_str().unwrap()],
        dir.path(),
        "? noop\n",
    );
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(run.stderr.contains("chmod 600"), "{}", shows(&run));
}

#[test]
fn no_entry_for_the_host_or_a_broken_file_is_a_usage_error() {
    let lab = TestLab::start();
    let front = lab.front().to_string();
    let dir = tempfile::tempdir().unwrap();
    let other = netrc(
        dir.path(),
        "other",
        "machine mail.example login u password p\n",
        0o600,
    );
    let run = imapref(
        &[
            "probe",
            &front,
            USER,
            "--netrc-file",
            other.to_str().unwrap(),
        ],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(
        run.stderr
            .contains("has no entry for 127.0.0.1 with login DOMname/UserN/AliasN"),
        "{}",
        shows(&run)
    );
    let broken = netrc(dir.path(), "broken", "machine 127.0.0.1 user u\n", 0o600);
    let run = imapref(
        &[
            "probe",
            &front,
            USER,
            "--netrc-file",
            broken.to_str().unwrap(),
        ],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(
        run.stderr
            .contains("a word that is not a netrc keyword (machine, default, login, password, account, macdef) comes after the value of `machine`"),
        "{}",
        shows(&run)
    );
    // --netrc with no ~/.netrc.
    let run = imapref(&["probe", &front, USER, "--netrc"], dir.path(), "");
    assert_eq!(run.code, 3, "{}", shows(&run));
    assert!(
        run.stderr.contains(".netrc: cannot read it"),
        "{}",
        shows(&run)
    );
    // --netrc and another password source do not go together.
    let run = imapref(
        &["probe", &front, USER, "--netrc", "--password-env", "X"],
        dir.path(),
        "",
    );
    assert_eq!(run.code, 3, "{}", shows(&run));
}

#[test]
fn the_shell_logs_in_with_the_netrc_entry() {
    let lab = TestLab::start();
    let home = lab.home().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = netrc(
        dir.path(),
        "netrc",
        &format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
        0o400,
    );
    // `:login` with no name: the netrc entry's login and password.
    let run = imapref(
        &["shell", &home, "--netrc-file", file.to_str().unwrap()],
        dir.path(),
        ":login\na1 select INBOX\n",
    );
    assert_eq!(run.code, 0, "{}", shows(&run));
    assert!(run.stdout.contains("* 3 EXISTS"), "{}", shows(&run));
}
