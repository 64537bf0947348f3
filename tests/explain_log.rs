//! `imapref explain` on whole logs, through the binary: client lines with or without `C: ` have their secrets masked
//! (text and JSON), lines are linked (the "no replica" advice names the server the login referral named), Exchange
//! 5.5's `DOMAIN/user/alias` is broken down, empty input says so, and server text cannot reach the terminal raw.

use assert_cmd::Command;
use serde_json::Value;

/// A KB Q217388 session pasted as it comes from telnet: no `C:`/`S:` prefixes.
const KB_SESSION: &str = "\
* OK Microsoft Exchange IMAP4rev1 server version 5.5.2448.8 (reedlm4.reedlm4.com) ready
? login DOMname/UserN/AliasN PASSword
? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@reedlm1.reedlm1.com] LOGIN completed
? select inbox
? NO There is no replica for that mailbox on this server.
a3 LOGIN jdoe hunter2
a4 LOGIN \"jdoe\" \"quoted secret\"
a5 LOGIN jdoe {11}
+ Ready for literal data
literal-pw!
a5 NO [AUTHENTICATIONFAILED] Authentication failed.
a6 AUTHENTICATE PLAIN
+
AGpkb2UAc2FzbC1zZWNyZXQ=
a6 OK done
";

const SECRETS: &[&str] = &[
    "PASSword",
    "hunter2",
    "quoted secret",
    "literal-pw!",
    "AGpkb2UAc2FzbC1zZWNyZXQ",
];

fn explain_stdin(input: &str, json: bool) -> std::process::Output {
    let mut cmd = Command::cargo_bin("imapref").expect("the imapref binary");
    cmd.arg("explain");
    if json {
        cmd.arg("--json");
    }
    cmd.arg("-")
        .write_stdin(input.to_string())
        .output()
        .expect("runs")
}

#[test]
fn a_pasted_session_shows_no_secret_in_text_or_json() {
    for json in [false, true] {
        let out = explain_stdin(KB_SESSION, json);
        assert_eq!(out.status.code(), Some(0));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in SECRETS {
            assert!(!all.contains(secret), "json={json}: {secret} in {all}");
        }
        assert!(all.contains("? login DOMname/UserN/AliasN ***"), "{all}");
        assert!(all.contains("a3 LOGIN jdoe ***"), "{all}");
    }
}

#[test]
fn the_no_replica_advice_names_the_referred_server() {
    let out = explain_stdin(KB_SESSION, false);
    let text = String::from_utf8_lossy(&out.stdout);
    let block = text
        .split("\n\n")
        .find(|b| b.starts_with("? NO There is no replica"))
        .unwrap_or_else(|| panic!("no block for the no-replica line: {text}"));
    assert!(
        block.contains("Line 3 referred this login to reedlm1.reedlm1.com:143"),
        "{block}"
    );

    let out = explain_stdin(KB_SESSION, true);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let next = doc[4]["next_step"].as_str().unwrap_or_default();
    assert!(next.contains("reedlm1.reedlm1.com:143"), "{doc}");
}

#[test]
fn the_exchange_login_form_is_broken_down() {
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .args([
            "explain",
            "? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Exchange 5.5 form: NT domain redmond, domain user reedl, Exchange alias imapf"
        ),
        "{text}"
    );
    assert!(
        text.contains("why:") && text.contains("NT domain account"),
        "{text}"
    );

    let out = explain_stdin("C: ? login DOMname/UserN/AliasN PASSword\n", true);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc[0]["exchange_user"]["nt_domain"], "DOMname");
    assert_eq!(doc[0]["exchange_user"]["domain_user"], "UserN");
    assert_eq!(doc[0]["exchange_user"]["alias"], "AliasN");
}

#[test]
fn empty_input_says_there_was_nothing_to_explain() {
    let out = Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .args(["explain", ""])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Nothing to explain"),
        "{out:?}"
    );
    let out = explain_stdin("", false);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Nothing to explain"));
    let out = explain_stdin("\n# only a comment\n", true);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON"),
        Value::Array(vec![])
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Nothing to explain"));
}

#[test]
fn server_text_reaches_the_terminal_escaped_and_json_exact() {
    let line = "* OK x\r\x1b[2K  ok    greeting   forged line\x07\x08\0 \x1b]0;title\x07";
    let out = explain_stdin(&format!("{line}\n"), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text
            .bytes()
            .any(|b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f),
        "{text:?}"
    );
    assert!(
        text.contains(
            "* OK x\\r\\x1b[2K  ok    greeting   forged line\\x07\\x08\\x00 \\x1b]0;title\\x07"
        ),
        "{text}"
    );

    let out = explain_stdin(&format!("{line}\n"), true);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc[0]["line"], line);
}
