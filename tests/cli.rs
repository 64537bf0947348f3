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

/// `imapref lab --port-base N` serves in the foreground on consecutive ports until Ctrl-C (SIGINT), then closes them.
#[cfg(unix)]
#[test]
fn lab_serves_in_the_foreground_until_ctrl_c() {
    lab_stops_on("INT");
}

/// SIGTERM (a service manager, `kill`) stops the lab as SIGINT does: stop message, ports closed, CA file removed,
/// exit 0.
#[cfg(unix)]
#[test]
fn lab_stops_cleanly_on_sigterm() {
    lab_stops_on("TERM");
}

/// Starts `imapref lab --port-base N`, checks it serves, sends it `SIG<signal>` and checks that it stopped cleanly.
#[cfg(unix)]
fn lab_stops_on(signal: &str) {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    use std::process::{Command as Std, Stdio};

    // A base with two free ports after it (front plain and TLS); retried, since another process may take them.
    for _ in 0..5 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        if base > 65_000 {
            continue;
        }
        let mut child = Std::new(env!("CARGO_BIN_EXE_imapref"))
            .args(["--color", "never", "lab", "--port-base", &base.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the lab");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            banner.push_str(&line);
            if line.starts_with("serving;") {
                break;
            }
            line.clear();
        }
        if !banner.contains("serving;") {
            let _ = child.wait();
            continue; // a port of the range was taken: try another base
        }
        assert!(
            banner.contains(&format!(
                "front  plain 127.0.0.1:{base}  tls 127.0.0.1:{}",
                base + 1
            )),
            "{banner}"
        );
        let ca = banner
            .lines()
            .find_map(|l| {
                l.split_once("for --ca-file): ")
                    .map(|(_, p)| p.trim().to_string())
            })
            .expect("the banner names the CA file");
        assert!(
            std::path::Path::new(&ca).is_file(),
            "the CA file {ca} exists while the lab runs"
        );
        let mut front = TcpStream::connect(("127.0.0.1", base)).expect("the front port answers");
        let mut greeting = [0u8; 80];
        let n = front.read(&mut greeting).expect("greeting");
        assert!(String::from_utf8_lossy(&greeting[..n])
            .starts_with("* OK Microsoft Exchange IMAP4rev1"));
        drop(front);
        let killed = Std::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = child.wait().expect("the lab exits");
        assert_eq!(status.code(), Some(0));
        let mut rest = String::new();
        out.read_to_string(&mut rest).expect("rest of stdout");
        assert!(rest.contains("lab stopped after 1 connection(s)"), "{rest}");
        assert!(
            !std::path::Path::new(&ca).exists(),
            "the CA file {ca} is removed after SIG{signal}"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", base)).is_err(),
            "the port is closed after SIG{signal}"
        );
        return;
    }
    panic!("no free port range for the lab after 5 tries");
}

/// The subcommands of the clap definition (so a new subcommand is covered without editing these tests).
fn subcommands() -> Vec<clap::Command> {
    use clap::CommandFactory;
    imapref::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect()
}

/// Every subcommand's `--help` opens with its purpose, then its own options; the global options (`--color`) come
/// last, under their own heading.
#[test]
fn subcommand_help_puts_global_options_last() {
    let subs = subcommands();
    assert!(subs.len() >= 7, "{} subcommands", subs.len());
    for sub in subs {
        let name = sub.get_name().to_string();
        for flag in ["-h", "--help"] {
            let out = imapref().args([name.as_str(), flag]).output().expect("run");
            assert_eq!(out.status.code(), Some(0), "{name} {flag}");
            let help = String::from_utf8(out.stdout).expect("utf-8");
            let about = sub
                .get_about()
                .expect("every subcommand has an about")
                .to_string();
            let first_words: String = about
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                help.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(&first_words),
                "{name} {flag} opens with its purpose:\n{help}"
            );
            let options = help
                .find("\nOptions:")
                .unwrap_or_else(|| panic!("{name} {flag}: Options:\n{help}"));
            let global = help
                .find("\nGlobal options:")
                .unwrap_or_else(|| panic!("{name} {flag}: a Global options heading\n{help}"));
            assert!(
                options < global,
                "{name} {flag}: own options before the global ones\n{help}"
            );
            let color = help.find("--color").expect("--color is shown");
            assert!(
                color > global,
                "{name} {flag}: --color under Global options\n{help}"
            );
            assert_eq!(
                help.matches("--color").count(),
                1 + help[..global].matches("--color").count(),
                "{name} {flag}: --color only once, at the end\n{help}"
            );
            for arg in sub
                .get_arguments()
                .filter(|a| !a.is_positional() && !a.is_hide_set())
            {
                if let Some(long) = arg.get_long() {
                    let at = help
                        .find(&format!("--{long}"))
                        .unwrap_or_else(|| panic!("{name} {flag}: --{long} is shown\n{help}"));
                    assert!(
                        at < global,
                        "{name} {flag}: --{long} before the global options\n{help}"
                    );
                }
            }
        }
    }
}

/// Roff to plain text, enough to find option names and help sentences in a page.
fn unroff(page: &str) -> String {
    page.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\(aq", "'")
        .replace("\\*(Aq", "'")
}

/// `imapref man --dir DIR` writes imapref.1 and one imapref-SUBCOMMAND.1 per subcommand, each naming and describing
/// that subcommand's options.
#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    imapref()
        .args(["man", "--dir"])
        .arg(&pages)
        .assert()
        .code(0)
        .stdout(contains("imapref-probe.1"));
    let top = std::fs::read_to_string(pages.join("imapref.1")).expect("imapref.1");
    assert!(top.contains(".TH imapref 1"), "{top}");
    for sub in subcommands() {
        let name = sub.get_name();
        let file = pages.join(format!("imapref-{name}.1"));
        let page =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            page.contains(&format!(".TH imapref-{name} 1")),
            "{}",
            file.display()
        );
        let text = unroff(&page);
        assert!(
            unroff(&top).contains(&format!("imapref-{name}(1)")),
            "imapref.1 refers to imapref-{name}(1)"
        );
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(
                    text.matches(&format!("--{long}")).count() >= 2,
                    "imapref-{name}.1 names --{long} in the synopsis and the options"
                );
            }
            if let Some(help) = arg.get_help() {
                let help = help.to_string();
                let start: String = help.chars().take(30).collect();
                assert!(
                    text.contains(&start),
                    "imapref-{name}.1 describes {:?}: {start}",
                    arg.get_id()
                );
            }
        }
    }
    let count = std::fs::read_dir(&pages).expect("dir").count();
    assert_eq!(
        count,
        1 + subcommands().len(),
        "one page per subcommand and the top page"
    );
}

/// Splits a README command line the way sh would for these simple cases: words, single quotes, a trailing `#`
/// comment, leading `VAR=value` assignments.
fn sh_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// README's "A first look" says how to put `imapref` on PATH before using it by name, and every `imapref` command it
/// shows parses with today's options (PORT filled in).
#[test]
fn readme_first_look_works_as_given() {
    use clap::Parser;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## A first look")
        .nth(1)
        .expect("a first look")
        .split("\n## ")
        .next()
        .expect("the section");
    assert!(section.contains("cargo install --path ."), "{section}");
    assert!(
        section.contains("export PATH=$PWD/target/release:$PATH"),
        "{section}"
    );
    let install = section.find("export PATH=").expect("PATH");
    let mut commands = 0;
    for block in section.split("```sh\n").skip(1) {
        let block = block.split("```").next().expect("a code block");
        for line in block.lines() {
            let words: Vec<String> = sh_words(line)
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .map(|w| w.replace("PORT", "143"))
                .collect();
            if words.first().map(String::as_str) != Some("imapref") {
                continue;
            }
            assert!(
                section.find(line).expect("the line") > install,
                "`{line}` comes after the PATH instructions"
            );
            if let Err(err) = imapref::cli::Cli::try_parse_from(&words) {
                panic!("README's `{line}` does not parse: {err}");
            }
            commands += 1;
        }
    }
    assert!(commands >= 5, "{commands} imapref commands in A first look");
}

#[test]
fn run_limits_are_checked_the_same_for_probe_and_shell() {
    for (args, flag) in [
        (&["--max-time", "0"][..], "--max-time 0"),
        (&["--max-hops", "101"][..], "--max-hops 101"),
        (&["--max-alternatives", "0"][..], "--max-alternatives 0"),
    ] {
        for sub in ["probe", "shell"] {
            let out = assert_cmd::Command::cargo_bin("imapref")
                .expect("binary")
                .args([sub, "127.0.0.1:1"])
                .args(if sub == "probe" {
                    &["u", "--password-env", "PW"][..]
                } else {
                    &[][..]
                })
                .args(args)
                .env("PW", "x")
                .write_stdin("")
                .output()
                .expect("runs");
            assert_eq!(out.status.code(), Some(3), "{sub} {flag}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(flag),
                "{sub}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
