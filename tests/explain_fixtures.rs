//! Walks `tests/fixtures/server-lines.txt` (lines real servers send: Exchange, Dovecot, Cyrus, the RFCs' examples):
//! every line must parse, and `imapref explain` must give the right meaning for each — through the library and through
//! the binary, as text and as JSON.

use assert_cmd::Command;
use imapref::explain::{explain_line, Explanation, ReferralKind};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/server-lines.txt");

fn server_lines() -> Vec<&'static str> {
    FIXTURE
        .lines()
        .filter_map(|l| l.strip_prefix("S: "))
        .collect()
}

/// (login or mailbox, logged in, user, host, port, mailbox) of a referral's first URL.
type Referral = (
    ReferralKind,
    Option<bool>,
    Option<&'static str>,
    &'static str,
    u16,
    Option<&'static str>,
);

/// What a line must be explained as.
struct Expect {
    prefix: &'static str,
    kind: &'static str,
    code: Option<&'static str>,
    referral: Option<Referral>,
    diagnosis: Option<&'static str>,
}

const fn e(prefix: &'static str, kind: &'static str, code: Option<&'static str>) -> Expect {
    Expect {
        prefix,
        kind,
        code,
        referral: None,
        diagnosis: None,
    }
}

fn expectations() -> Vec<Expect> {
    use ReferralKind::{Login, Mailbox};
    vec![
        e(
            "* OK Microsoft Exchange IMAP4rev1 server version 5.5",
            "greeting",
            None,
        ),
        Expect {
            referral: Some((
                Login,
                Some(true),
                Some("redmond/reedl/imapf"),
                "reedlm1.reedlm1.com",
                143,
                None,
            )),
            ..e(
                "? OK [REFERRAL imap://redmond",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            diagnosis: Some("no-replica"),
            ..e("? NO There is no replica", "tagged completion", None)
        },
        e("* OK Microsoft Exchange Server 2003", "greeting", None),
        Expect {
            referral: Some((Mailbox, None, Some("peter"), "hostname", 143, Some("INBOX"))),
            diagnosis: Some("no-replica"),
            ..e(
                "a2 NO [REFERRAL imap://peter",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        e(
            "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS",
            "greeting",
            Some("CAPABILITY"),
        ),
        Expect {
            referral: Some((
                Login,
                Some(false),
                Some("DOMname/User1/Alias1"),
                "127.0.0.2",
                14300,
                None,
            )),
            diagnosis: Some("moved-user"),
            ..e(
                "? NO [REFERRAL imap://DOMname%2fUser1",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("user1"), "127.0.0.2", 14300, None)),
            diagnosis: Some("moved-user"),
            ..e(
                "a NO [REFERRAL imap://user1;",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((
                Login,
                Some(false),
                Some("DOMname/User3/Alias3"),
                "127.0.0.2",
                14300,
                None,
            )),
            diagnosis: Some("moved-user"),
            ..e(
                "a NO [REFERRAL imap://DOMname%2fUser3",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("kbno"), "127.0.0.2", 14300, None)),
            diagnosis: Some("moved-user"),
            ..e(
                "a NO [REFERRAL imap://kbno",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((
                Login,
                Some(false),
                Some("port143ref"),
                "127.0.0.2",
                143,
                None,
            )),
            diagnosis: Some("moved-user"),
            ..e(
                "a NO [REFERRAL imap://port143ref",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((
                Login,
                Some(false),
                Some("hostref"),
                "localhost",
                14301,
                None,
            )),
            diagnosis: Some("moved-user"),
            ..e(
                "a NO [REFERRAL imap://hostref",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            diagnosis: Some("authentication-failed"),
            ..e(
                "a NO [AUTHENTICATIONFAILED]",
                "tagged completion",
                Some("AUTHENTICATIONFAILED"),
            )
        },
        Expect {
            diagnosis: Some("account-disabled"),
            ..e(
                "a NO [CONTACTADMIN]",
                "tagged completion",
                Some("CONTACTADMIN"),
            )
        },
        Expect {
            diagnosis: Some("no-permission"),
            ..e("s1 NO [NOPERM]", "tagged completion", Some("NOPERM"))
        },
        Expect {
            diagnosis: Some("no-such-mailbox"),
            ..e("s2 NO Mailbox doesn't exist", "tagged completion", None)
        },
        e("s OK [READ-WRITE]", "tagged completion", Some("READ-WRITE")),
        e(
            "* OK [PERMANENTFLAGS",
            "untagged status",
            Some("PERMANENTFLAGS"),
        ),
        e(
            "* OK [UIDVALIDITY 1200000001]",
            "untagged status",
            Some("UIDVALIDITY"),
        ),
        e("* NAMESPACE", "untagged data", None),
        e("* 1 FETCH", "fetch data", None),
        Expect {
            referral: Some((Login, Some(true), Some("user"), "host", 143, None)),
            diagnosis: Some("logged-in-elsewhere-home"),
            ..e(
                "a OK [REFERRAL imap://user;AUTH=PLAIN@host/]",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        e(
            "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE",
            "greeting",
            Some("CAPABILITY"),
        ),
        Expect {
            diagnosis: Some("referrals-not-enabled"),
            ..e("s1 NO Server(s) unavailable", "tagged completion", None)
        },
        Expect {
            referral: Some((
                Mailbox,
                None,
                None,
                "127.0.0.2",
                14300,
                Some("Public Folders/NoReplica"),
            )),
            diagnosis: Some("remote-mailbox"),
            ..e(
                "s2 NO [REFERRAL imap://;AUTH=*@127.0.0.2:14300/Public",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Mailbox, None, None, "127.0.0.2", 14300, Some("INBOX"))),
            diagnosis: Some("remote-mailbox"),
            ..e(
                "s2 NO [REFERRAL imap://;AUTH=*@127.0.0.2:14300/INBOX",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        e("* OK [MAILBOXID", "untagged status", Some("MAILBOXID")),
        Expect {
            referral: Some((Mailbox, None, Some("user"), "SERVER2", 143, Some("REMOTE"))),
            diagnosis: Some("remote-mailbox"),
            ..e(
                "A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER2/REMOTE]Remote",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Mailbox, None, Some("user"), "SERVER2", 143, Some("REMOTE"))),
            diagnosis: Some("remote-mailbox"),
            ..e(
                "A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER2/REMOTE IMAP",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Mailbox, None, Some("user"), "SERVER1", 143, Some("FOO"))),
            ..e(
                "A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER1/FOO",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("user"), "SERVER2", 143, None)),
            ..e(
                "A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER2/] Remote Server",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("MIKE"), "SERVER2", 143, None)),
            ..e(
                "A001 NO [REFERRAL IMAP://MIKE@SERVER2/]",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(true), Some("MATTHEW"), "SERVER2", 143, None)),
            ..e(
                "A001 OK [REFERRAL IMAP://MATTHEW@SERVER2/]",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("user"), "SERVER2", 143, None)),
            ..e(
                "A001 NO [REFERRAL IMAP://user;AUTH=GSSAPI@SERVER2/]",
                "tagged completion",
                Some("REFERRAL"),
            )
        },
        Expect {
            referral: Some((Login, Some(false), Some("user"), "SERVER2", 143, None)),
            ..e(
                "* BYE [REFERRAL IMAP://user;AUTH=*@SERVER2/]",
                "greeting",
                Some("REFERRAL"),
            )
        },
    ]
}

fn check(line: &str, got: &Explanation, want: &Expect) {
    assert_eq!(got.kind, want.kind, "kind of {line}");
    assert_eq!(got.code.as_deref(), want.code, "code of {line}");
    assert_eq!(
        got.diagnosis.map(|d| d.id),
        want.diagnosis,
        "diagnosis of {line}"
    );
    match (&got.referral, &want.referral) {
        (None, None) => {}
        (Some(r), Some((kind, logged_in, user, host, port, mailbox))) => {
            assert_eq!(r.kind, *kind, "referral kind of {line}");
            assert_eq!(r.logged_in, *logged_in, "logged in after {line}");
            let t = &r.targets[0];
            assert_eq!(t.error, None, "URL error in {line}");
            assert_eq!(t.user.as_deref(), *user, "user of {line}");
            assert_eq!(t.host.as_deref(), Some(*host), "host of {line}");
            assert_eq!(t.port, Some(*port), "port of {line}");
            assert_eq!(t.mailbox.as_deref(), *mailbox, "mailbox of {line}");
            assert!(!r.next_step.is_empty());
        }
        (got, want) => panic!("referral of {line}: got {got:?}, want {}", want.is_some()),
    }
}

#[test]
fn every_fixture_line_parses_and_means_what_it_should() {
    let lines = server_lines();
    let expectations = expectations();
    assert_eq!(
        lines.len(),
        expectations.len(),
        "one expectation per fixture line"
    );
    for (line, want) in lines.iter().zip(&expectations) {
        assert!(
            line.starts_with(want.prefix),
            "fixture order: `{line}` vs `{}`",
            want.prefix
        );
        let got = explain_line(line, false);
        assert_ne!(got.kind, "unparsed", "{line}: {}", got.summary);
        check(line, &got, want);
    }
}

#[test]
fn several_replicas_keep_their_order() {
    let line = server_lines()
        .into_iter()
        .find(|l| l.contains("SERVER3"))
        .expect("the RFC 2193 replica example");
    let got = explain_line(line, false);
    let hosts: Vec<_> = got
        .referral
        .expect("referral")
        .targets
        .iter()
        .filter_map(|t| t.host.clone())
        .collect();
    assert_eq!(hosts, ["SERVER2", "SERVER3"]);
}

#[test]
fn the_binary_explains_the_fixture_file_from_stdin_as_json() {
    let out = Command::cargo_bin("imapref")
        .expect("binary")
        .args(["explain", "--json", "-"])
        .write_stdin(FIXTURE)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("JSON");
    let list = doc.as_array().expect("an array");
    assert_eq!(
        list.len(),
        server_lines().len(),
        "comments skipped, every S: line explained"
    );
    assert_eq!(list[0]["kind"], "greeting");
    assert_eq!(list[0]["product"]["name"], "Microsoft Exchange 5.5");
    assert_eq!(list[1]["referral"]["kind"], "login");
    assert_eq!(list[1]["referral"]["logged_in"], true);
    assert_eq!(
        list[1]["referral"]["targets"][0]["user"],
        "redmond/reedl/imapf"
    );
    assert_eq!(list[2]["diagnosis"]["id"], "no-replica");
}

#[test]
fn the_binary_explains_the_kb_lines_as_text() {
    Command::cargo_bin("imapref")
        .expect("binary")
        .args([
            "--color=never",
            "explain",
            "? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
            "? NO There is no replica for that mailbox on this server.",
        ])
        .assert()
        .success()
        .stdout(predicates::str::contains("login referral (RFC 2221)"))
        .stdout(predicates::str::contains("user redmond/reedl/imapf"))
        .stdout(predicates::str::contains("host reedlm1.reedlm1.com, port 143"))
        .stdout(predicates::str::contains("logged in: yes"))
        .stdout(predicates::str::contains("no replica of this mailbox"));
}

#[test]
fn garbage_and_endless_input_are_explained_not_fatal() {
    let mut input = String::from("\u{1}\u{2} garbage\nA1 FROB x\n");
    input.push_str(&"x".repeat(200_000));
    input.push('\n');
    let out = Command::cargo_bin("imapref")
        .expect("binary")
        .args(["explain", "--json", "-"])
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("JSON");
    let kinds: Vec<_> = doc
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, ["unparsed", "unparsed", "unparsed"]);
}
