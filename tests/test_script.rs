//! `scripts/test.sh` on a machine without Dovecot: on a workstation (stdin a terminal, CI not set) it asks before
//! installing, and a "no" prints the commands and exits 1; in CI or without a terminal it installs as before.
//!
//! The script runs with PATH limited to a directory of stand-ins (apt-get, sudo and cargo record their arguments
//! and exit 0) followed by /usr/bin and /bin, and with `IMAPREF_TEST_SH_ROOT` pointing its /usr/sbin paths into a
//! temporary directory: nothing is installed, nothing outside the temporary directory is written.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::WaitStatus;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test.sh");

/// A temporary root with stand-ins for apt-get, sudo and cargo, and no Dovecot.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
        let log = dir.path().join("log");
        for name in ["apt-get", "cargo"] {
            let path = bin.join(name);
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >> '{}'\n[ -e '{}' ] && echo \"{name} sees policy-rc.d\" >> '{}'\nexit 0\n",
                    log.display(),
                    dir.path().join("usr/sbin/policy-rc.d").display(),
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let sudo = bin.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\nexec \"$@\"\n").unwrap();
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    fn command(&self, ci: bool) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(SCRIPT)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()),
            )
            .env("HOME", self.dir.path())
            .env("TERM", "xterm")
            .env("IMAPREF_TEST_SH_ROOT", self.dir.path());
        if ci {
            cmd.env("CI", "true");
        }
        cmd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn policy(&self) -> PathBuf {
        self.dir.path().join("usr/sbin/policy-rc.d")
    }
}

fn spawn(cmd: Command) -> expectrl::Session {
    let mut p = expectrl::Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p
}

fn assert_installed(fake: &Fake) {
    let log = fake.log();
    assert!(log.contains("apt-get update -qq"), "{log}");
    assert!(
        log.contains("apt-get install -y -qq --no-install-recommends dovecot-imapd"),
        "{log}"
    );
    assert!(
        log.contains("apt-get sees policy-rc.d"),
        "policy-rc.d is in place while apt-get runs: {log}"
    );
    assert!(!fake.policy().exists(), "policy-rc.d is removed afterwards");
    assert!(log.contains("cargo test --locked"), "{log}");
}

fn exit_code(p: &mut expectrl::Session) -> Option<i32> {
    p.expect(expectrl::Eof).unwrap();
    match p.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => Some(code),
        _ => None,
    }
}

/// On a terminal without CI, test.sh shows the commands and asks; "no" runs nothing and exits 1.
#[test]
fn on_a_workstation_no_means_nothing_is_installed() {
    assert!(Path::new(SCRIPT).is_file());
    let fake = Fake::new();
    let mut p = spawn(fake.command(false));
    p.expect("apt-get install -y -qq --no-install-recommends dovecot-imapd")
        .unwrap();
    p.expect("run these now? [y/N] ").unwrap();
    p.send_line("n").unwrap();
    p.expect("not installing; run the commands above yourself")
        .unwrap();
    assert_eq!(exit_code(&mut p), Some(1));
    assert_eq!(fake.log(), "", "nothing ran");
    assert!(!fake.policy().exists());
}

/// On a terminal without CI, "y" installs and then runs the tests.
#[test]
fn on_a_workstation_yes_installs() {
    let fake = Fake::new();
    let mut p = spawn(fake.command(false));
    p.expect("run these now? [y/N] ").unwrap();
    p.send_line("y").unwrap();
    assert_eq!(exit_code(&mut p), Some(0));
    assert_installed(&fake);
}

/// With CI set, test.sh installs without asking, even on a terminal.
#[test]
fn in_ci_it_installs_without_asking() {
    let fake = Fake::new();
    let mut p = spawn(fake.command(true));
    p.expect("test.sh: installing dovecot-imapd").unwrap();
    assert_eq!(exit_code(&mut p), Some(0));
    assert_installed(&fake);
}

/// Without a terminal (and without CI), test.sh installs without asking, as before.
#[test]
fn without_a_terminal_it_installs_without_asking() {
    let fake = Fake::new();
    let out = fake.command(false).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("[y/N]"), "{stderr}");
    assert!(
        stderr.contains("test.sh: installing dovecot-imapd"),
        "{stderr}"
    );
    assert_installed(&fake);
}
