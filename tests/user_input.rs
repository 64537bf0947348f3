//! What a user types never panics the binary: internationalised host names (issue 9, item 10) and odd targets get a
//! clear message and a defined exit code. DNS is not reachable in the test environment, so an IDN host ends in
//! "could not resolve" for its ASCII (IDNA) form, which is what the test checks: the form that went to DNS.

use assert_cmd::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("imapref")
        .expect("the imapref binary")
        .args(args)
        .env("USER_INPUT_PW", "User-Input-Secret")
        .write_stdin("")
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("runs")
}

fn no_panic(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_internationalised_host_goes_to_dns_in_its_ascii_form() {
    let out = run(&[
        "probe",
        "mail.bücher.de",
        "user",
        "--password-env",
        "USER_INPUT_PW",
        "--timeout",
        "1",
    ]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mail.xn--bcher-kva.de"), "{text}");

    let out = run(&["shell", "mail.bücher.de", "--timeout", "1"]);
    no_panic(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mail.xn--bcher-kva.de"),
        "{out:?}"
    );
}

#[test]
fn odd_targets_are_refused_without_a_panic() {
    for target in [
        "ü",
        "abcdeéf",
        "imap:/é",
        "ímap://x",
        "[ü]:143",
        "[]",
        "imap://;AUTH=@h/",
        "imap://h/;UID=1",
        "host:70000",
        "xn--.de",
    ] {
        let out = run(&[
            "probe",
            target,
            "user",
            "--password-env",
            "USER_INPUT_PW",
            "--timeout",
            "1",
        ]);
        no_panic(&out);
        assert!(
            matches!(out.status.code(), Some(2..=3)),
            "{target}: {out:?}"
        );
    }
}
