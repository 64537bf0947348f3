//! The hostile corpus (issue 9, item 9): the real `imapref` binary against every behaviour of the scripted hostile
//! server in `tests/support/hostile.rs`. Each test asserts what a monitoring system relies on:
//!
//! - the exit code (docs/exit-codes.md);
//! - the time bound: at most the run's deadline ([`MAX_TIME_SECS`]) plus one second;
//! - the peak memory of the child (`VmHWM` from `/proc/<pid>/status`, polled while it runs): at most 32 MiB;
//! - no password in any output: stdout and stderr of a human run and of a `--json` run (the password, its quoted,
//!   percent-encoded and base64 forms: [`imapref::secret::Redactor::finds`]);
//! - no raw control bytes in the human output (terminal safety);
//! - for referrals that must not be followed, that the second server never received LOGIN or AUTHENTICATE.
//!
//! Each run gets `--timeout 2 --max-time 8`: the bound on each wait and the deadline for the whole run.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imapref::secret::{Redactor, Secret};
use support::hostile::{Behaviour, Hostile};

/// The user every run logs in as.
const USER: &str = "victim";
/// The password every run uses; it must never appear in any output.
const PASSWORD: &str = "Hostile-S3cret-pw";
/// The per-wait timeout every run gets.
const TIMEOUT: &str = "2";
/// The deadline for a whole run, in seconds. The time bound asserted is this plus one second.
const MAX_TIME_SECS: u64 = 8;
/// Pass `--max-time MAX_TIME_SECS` to the binary: switch on when the engine brings the flag (issue 9, item 1).
const PASS_MAX_TIME: bool = true;
/// The most memory a run may take (peak resident set, VmHWM).
const MAX_PEAK_KIB: u64 = 32 * 1024;
/// How much of each output stream is kept for the assertions (the rest is counted and dropped).
const KEEP_OUTPUT: usize = 4 * 1024 * 1024;
/// A run still going this long after its time bound is killed, so that even an ignored test ends.
const KILL_AFTER_BOUND: Duration = Duration::from_secs(10);

/// What one run of the binary did.
struct Run {
    label: String,
    code: Option<i32>,
    took: Duration,
    peak_kib: u64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    killed: bool,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "[{}] exit {:?} after {:.1} s, peak {} KiB{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.label,
            self.code,
            self.took.as_secs_f64(),
            self.peak_kib,
            if self.killed { ", KILLED" } else { "" },
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(4000)]),
            String::from_utf8_lossy(&self.stderr[..self.stderr.len().min(4000)])
        )
    }
}

fn time_bound() -> Duration {
    Duration::from_secs(MAX_TIME_SECS + 1)
}

/// Reads a stream to its end, keeping the first [`KEEP_OUTPUT`] bytes.
fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = KEEP_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    })
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Runs `imapref ARGS` with `stdin`, polling its peak memory until it ends (or is killed past the bound).
fn run(label: &str, args: &[String], stdin: &[u8]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("imapref"))
        .args(args)
        .env("HOSTILE_PW", PASSWORD)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imapref");
    let pid = child.id();
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut peak = 0;
    let mut killed = false;
    let code = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) => {}
            Err(e) => panic!("waiting for imapref: {e}"),
        }
        if started.elapsed() > time_bound() + KILL_AFTER_BOUND {
            let _ = child.kill();
            killed = true;
            break child.wait().ok().and_then(|s| s.code());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let _ = writer.join();
    Run {
        label: label.to_string(),
        code,
        took,
        peak_kib: peak,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        killed,
    }
}

fn common_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--password-env".into(),
        "HOSTILE_PW".into(),
        "--timeout".into(),
        TIMEOUT.into(),
    ];
    if PASS_MAX_TIME {
        args.push("--max-time".into());
        args.push(MAX_TIME_SECS.to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `imapref probe TARGET victim ...`, as text and as JSON at the same time (each its own connection).
fn probe(target: &str, extra: &[&str]) -> (Run, Run) {
    let mut base = vec!["probe".to_string(), target.to_string(), USER.to_string()];
    base.extend(common_args(extra));
    let mut json = base.clone();
    json.push("--json".into());
    let json_run = std::thread::spawn(move || run("json", &json, b""));
    let human = run("human", &base, b"");
    (human, json_run.join().expect("the JSON run"))
}

fn redactor() -> Redactor {
    Redactor::new(&Secret::new(PASSWORD)).with_login(USER)
}

/// The raw control bytes a terminal would act on: C0 but LF and TAB, DEL, and C1 (U+0080 to U+009F as UTF-8).
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.char_indices()
        .filter(|(_, c)| c.is_control() && *c != '\n' && *c != '\t')
        .take(5)
        .map(|(i, c)| format!("{c:?} at {i}"))
        .collect()
}

/// The assertions every run shares; `codes` are the exit codes allowed.
fn assert_safe(run: &Run, codes: &[i32], human: bool) {
    let t = run.text();
    assert!(!run.killed, "killed past the time bound: {t}");
    assert!(
        run.code.is_some_and(|c| codes.contains(&c)),
        "exit code {:?}, wanted one of {codes:?}: {t}",
        run.code
    );
    assert!(
        run.took <= time_bound(),
        "took {:.1} s, bound {:?}: {t}",
        run.took.as_secs_f64(),
        time_bound()
    );
    assert!(
        run.peak_kib <= MAX_PEAK_KIB,
        "peak {} KiB > {MAX_PEAK_KIB} KiB: {t}",
        run.peak_kib
    );
    let r = redactor();
    assert!(!r.finds(&run.stdout), "the password is in stdout: {t}");
    assert!(!r.finds(&run.stderr), "the password is in stderr: {t}");
    assert!(
        !run.stderr.windows(8).any(|w| w == b"panicked"),
        "a panic: {t}"
    );
    if human {
        let bad = raw_controls(&run.stdout);
        assert!(
            bad.is_empty(),
            "raw control bytes in the human stdout {bad:?}: {t}"
        );
        let bad = raw_controls(&run.stderr);
        assert!(
            bad.is_empty(),
            "raw control bytes in the human stderr {bad:?}: {t}"
        );
    } else {
        let doc: Result<serde_json::Value, _> = serde_json::from_slice(&run.stdout);
        assert!(
            doc.is_ok(),
            "the JSON run did not print one JSON document: {t}"
        );
    }
}

/// Probes `server` and asserts the shared properties for both runs; returns the JSON document.
fn check(server: &Hostile, extra: &[&str], codes: &[i32]) -> serde_json::Value {
    let (human, json) = probe(&server.addr(), extra);
    if std::env::var_os("HOSTILE_SHOW").is_some() {
        eprintln!("{}\n{}", human.text(), json.text());
    }
    assert_safe(&human, codes, true);
    assert_safe(&json, codes, false);
    serde_json::from_slice(&json.stdout).unwrap_or_default()
}

/// A LOGIN answered with `line`.
fn login_answer(line: &str) -> Hostile {
    Hostile::start(Behaviour::LoginAnswer(format!("{line}\r\n")))
}

fn next_step(doc: &serde_json::Value) -> String {
    doc["verdict"]["next_step"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn summary(doc: &serde_json::Value) -> String {
    doc["verdict"]["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---- a control: a well-behaved server ----

#[test]
fn a_well_behaved_server_is_ok() {
    let s = Hostile::start(Behaviour::Normal);
    let doc = check(&s, &[], &[0]);
    assert_eq!(doc["verdict"]["status"], "ok", "{doc}");
    assert!(s.got_credentials());
}

#[test]
fn preauth_sends_no_password() {
    let s = Hostile::start(Behaviour::Preauth);
    check(&s, &[], &[0]);
    assert!(!s.got_credentials());
}

// ---- greeting ----

#[test]
fn greeting_never_comes() {
    let s = Hostile::start(Behaviour::SilentGreeting);
    let doc = check(&s, &[], &[3]);
    assert_eq!(doc["hops"][0]["error"]["phase"], "greeting", "{doc}");
    assert!(!s.got_credentials());
}

#[test]
fn greeting_without_crlf() {
    let s = Hostile::start(Behaviour::GreetingWithoutCrlf);
    check(&s, &[], &[3]);
    assert!(!s.got_credentials());
}

#[test]
fn greeting_one_byte_every_half_second() {
    let s = Hostile::start(Behaviour::GreetingDrip);
    check(&s, &[], &[3]);
}

#[test]
fn greeting_one_byte_every_half_second_with_starttls() {
    let s = Hostile::start(Behaviour::GreetingDrip);
    check(&s, &["--starttls"], &[3]);
}

#[test]
fn garbage_instead_of_a_greeting() {
    let s = Hostile::start(Behaviour::GarbageGreeting);
    check(&s, &[], &[3]);
}

#[test]
fn a_tls_record_instead_of_a_greeting() {
    let s = Hostile::start(Behaviour::TlsRecordGreeting);
    check(&s, &[], &[3]);
}

#[test]
fn a_greeting_that_forges_a_report_line() {
    let s = Hostile::start(Behaviour::Greeting(
        b"* OK x\r\x1b[2K  ok    greeting   forged line\r\n".to_vec(),
    ));
    let (human, json) = probe(&s.addr(), &[]);
    assert_safe(&human, &[0], true);
    assert_safe(&json, &[0], false);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("  ok    greeting   forged line")),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_default();
    assert!(
        doc.to_string().contains("\\u001b[2K"),
        "JSON keeps the exact text: {doc}"
    );
}

#[test]
fn a_greeting_with_an_osc_title_bel_backspace_and_nul() {
    let s = Hostile::start(Behaviour::Greeting(
        b"* OK \x1b]0;owned\x07 \x08\x08\x08\x00 \x9b2J ready\r\n".to_vec(),
    ));
    check(&s, &[], &[0]);
}

#[test]
fn a_greeting_with_invalid_utf8() {
    let s = Hostile::start(Behaviour::Greeting(
        b"* OK [CAPABILITY IMAP4rev1] caf\xe9 \xff\xfe\xc3 ready\r\n".to_vec(),
    ));
    check(&s, &[], &[0]);
}

#[test]
fn a_late_greeting_within_the_timeout() {
    let s = Hostile::start(Behaviour::LateGreeting(Duration::from_millis(1200)));
    check(&s, &[], &[0]);
}

// ---- framing ----

#[test]
fn a_ten_megabyte_line() {
    let s = Hostile::start(Behaviour::TenMegabyteLine);
    let doc = check(&s, &[], &[3]);
    assert!(summary(&doc).contains("longer than"), "{doc}");
}

#[test]
fn a_literal_of_two_to_the_63_bytes() {
    let s = Hostile::start(Behaviour::HugeLiteral("9223372036854775808".into()));
    let doc = check(&s, &[], &[3]);
    assert!(summary(&doc).contains("literal"), "{doc}");
}

#[test]
fn a_literal_size_past_u64() {
    let s = Hostile::start(Behaviour::HugeLiteral("18446744073709551616".into()));
    let doc = check(&s, &[], &[3]);
    // All digits: a number, only too large to count (it was once called "not a number").
    let text = summary(&doc);
    assert!(
        text.contains("literal of 18446744073709551616 bytes, a size too large to count"),
        "{doc}"
    );
    assert!(!text.contains("not a number"), "{doc}");
}

#[test]
fn a_literal_shorter_than_announced_then_a_close() {
    let s = Hostile::start(Behaviour::ShortLiteralThenClose);
    check(&s, &[], &[3]);
}

#[test]
fn a_one_gib_fetch_literal_in_the_probe() {
    let s = Hostile::start(Behaviour::GibFetchLiteral);
    check(&s, &[], &[3]);
}

#[test]
fn a_one_gib_fetch_literal_in_the_shell() {
    // Today the shell gives up after --timeout on a command still streaming its literal, and its peak memory moves
    // between 16 and 39 MiB from run to run (the printer's queue of 64 KiB pieces).
    let s = Hostile::start(Behaviour::ShellGibFetch);
    let mut args = vec!["shell".to_string(), s.addr()];
    args.extend(common_args(&[]));
    let input =
        format!("a1 LOGIN {USER} {PASSWORD}\na2 SELECT INBOX\na3 FETCH 1 BODY[]\na4 LOGOUT\n");
    let r = run("shell", &args, input.as_bytes());
    if std::env::var_os("HOSTILE_SHOW").is_some() {
        eprintln!("{}", r.text());
    }
    // The shell takes the password as typed and shows it masked; what matters is time, memory and no echo.
    assert_safe(&r, &[0, 1, 2], true);
}

#[test]
fn nul_and_invalid_utf8_in_a_login_answer() {
    let s = login_answer("{tag} NO [ALERT] nul \x00 and \x7f del");
    check(&s, &[], &[2]);
}

#[test]
fn an_unknown_response_code() {
    let s = login_answer("{tag} NO [XYZZY-PLUGH 42 (a b)] nope");
    check(&s, &[], &[2]);
}

#[test]
fn a_capability_line_of_100000_capabilities() {
    // About 1.2 MB on one line: past the 256 KiB line limit.
    let s = Hostile::start(Behaviour::CapabilityFlood(100_000));
    let doc = check(&s, &[], &[3]);
    // The line is well formed, CRLF and all, only too long: no claim that it has no line end, and no advice that
    // this is not an IMAP server.
    let text = summary(&doc);
    assert!(text.contains("a line longer than 262144 bytes"), "{doc}");
    assert!(!text.contains("without a line end"), "{doc}");
    assert!(
        next_step(&doc).contains("limits are in docs/security.md"),
        "{doc}"
    );
}

// ---- malformed REFERRAL ----

/// `[REFERRAL]` with no URL is named as such (it was once "a code imapref does not know"), and the advice is not
/// about the password.
fn assert_referral_without_url(doc: &serde_json::Value) {
    let text = summary(doc);
    assert!(text.contains("REFERRAL with no URL"), "{doc}");
    assert!(!text.contains("does not know"), "{doc}");
    let next = next_step(doc);
    assert!(next.contains("without saying where"), "{doc}");
    assert!(!next.contains("password"), "{doc}");
}

#[test]
fn referral_empty() {
    let s = login_answer("{tag} NO [REFERRAL] go elsewhere");
    let doc = check(&s, &[], &[2]);
    assert_referral_without_url(&doc);
}

#[test]
fn referral_with_no_url() {
    let s = login_answer("{tag} NO [REFERRAL ] go elsewhere");
    let doc = check(&s, &[], &[2]);
    assert_referral_without_url(&doc);
}

#[test]
fn referral_without_its_closing_bracket() {
    let other = Hostile::start(Behaviour::Normal);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL {} go elsewhere",
        other.url(USER)
    ));
    check(&s, &[], &[2]);
}

#[test]
fn referral_with_an_http_scheme() {
    let s = login_answer("{tag} NO [REFERRAL http://127.0.0.1:1/] go elsewhere");
    check(&s, &[], &[2]);
}

#[test]
fn referral_with_an_empty_host() {
    let s = login_answer("{tag} NO [REFERRAL imap://victim@/] go elsewhere");
    check(&s, &[], &[2]);
}

#[test]
fn referral_to_port_0() {
    let s = login_answer("{tag} NO [REFERRAL imap://victim@127.0.0.1:0/] go elsewhere");
    check(&s, &[], &[2]);
}

#[test]
fn referral_to_port_70000() {
    let s = login_answer("{tag} NO [REFERRAL imap://victim@127.0.0.1:70000/] go elsewhere");
    check(&s, &[], &[2]);
}

#[test]
fn referral_with_a_raw_at() {
    let other = Hostile::start(Behaviour::Normal);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL imap://vic@tim@127.0.0.1:{}/] go elsewhere",
        other.port()
    ));
    // The last `@` ends the user info, as in the url crate: the user is `vic@tim`, on a trusted (loopback) host.
    let doc = check(&s, &[], &[0]);
    assert_eq!(doc["hops"][1]["user"], "vic@tim", "{doc}");
}

#[test]
fn referral_with_a_64_kb_url() {
    let host = "a".repeat(64 * 1024);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL imap://victim@{host}/] go elsewhere"
    ));
    check(&s, &[], &[2]);
}

#[test]
fn referral_with_crlf_in_the_user() {
    let other = Hostile::start(Behaviour::Normal);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL imap://victim%0D%0Aa9%20LOGIN%20x%20y@127.0.0.1:{}/] go elsewhere",
        other.port()
    ));
    check(&s, &[], &[2]);
    assert!(
        !other.got_credentials(),
        "{:?}",
        String::from_utf8_lossy(&other.received())
    );
}

#[test]
fn referral_with_crlf_in_the_mailbox() {
    let other = Hostile::start(Behaviour::Normal);
    let s = Hostile::start(Behaviour::SelectAnswer(format!(
        "{{tag}} NO [REFERRAL imap://;AUTH=*@127.0.0.1:{}/INBOX%0D%0Aa9%20DELETE%20INBOX] Remote mailbox.\r\n",
        other.port()
    )));
    check(&s, &[], &[2]);
    let seen = String::from_utf8_lossy(&other.received()).to_ascii_uppercase();
    assert!(!seen.contains("DELETE"), "{seen}");
}

// ---- chains ----

fn refer_to(port: u16) -> Behaviour {
    Behaviour::LoginAnswer(format!(
        "{{tag}} NO [REFERRAL imap://victim@127.0.0.1:{port}/] go there\r\n"
    ))
}

#[test]
fn a_referral_to_itself() {
    let bound = Hostile::bind();
    let port = bound.port();
    let a = bound.play(refer_to(port));
    let doc = check(&a, &[], &[2]);
    assert!(summary(&doc).to_ascii_lowercase().contains("loop"), "{doc}");
}

#[test]
fn a_referral_loop_a_b_a() {
    let (a, b) = (Hostile::bind(), Hostile::bind());
    let (port_a, port_b) = (a.port(), b.port());
    let a = a.play(refer_to(port_b));
    let _b = b.play(refer_to(port_a));
    let doc = check(&a, &[], &[2]);
    assert!(summary(&doc).to_ascii_lowercase().contains("loop"), "{doc}");
}

#[test]
fn an_eleven_hop_chain() {
    // The last server behaves; each one before refers to the next: 11 referrals, one more than --max-hops' 10.
    let mut servers = vec![Hostile::start(Behaviour::Normal)];
    for _ in 0..11 {
        let next = servers.last().map(|s| s.url(USER)).unwrap_or_default();
        servers.push(login_answer(&format!("{{tag}} NO [REFERRAL {next}] go on")));
    }
    let first = servers.last().expect("a chain");
    let doc = check(first, &[], &[2]);
    assert!(
        !servers[0].got_credentials(),
        "the 12th server got the password: {doc}"
    );
}

// ---- unsafe referrals ----

#[test]
fn a_referral_from_tls_to_plaintext() {
    let plain = Hostile::start(Behaviour::Normal);
    let certs = imapref::transport::lab_cert::generate(&["127.0.0.1"], 30).expect("certificates");
    let tls = Hostile::start(Behaviour::Tls {
        cert: format!("{}{}", certs.server_cert_pem, certs.ca_pem),
        key: certs.server_key_pem.clone(),
        login: format!("{{tag}} NO [REFERRAL {}] go there\r\n", plain.url(USER)),
    });
    let ca = tempfile::NamedTempFile::new().expect("a CA file");
    std::fs::write(ca.path(), &certs.ca_pem).expect("write the CA");
    let ca_path = ca.path().to_string_lossy().to_string();
    check(&tls, &["--tls", "--ca-file", &ca_path], &[2]);
    assert!(
        tls.got_credentials(),
        "the TLS server should have had the login"
    );
    assert!(
        !plain.got_credentials(),
        "the password went to a plaintext server"
    );
}

#[test]
fn a_self_signed_certificate() {
    let certs = imapref::transport::lab_cert::generate(&["127.0.0.1"], 30).expect("certificates");
    let tls = Hostile::start(Behaviour::Tls {
        cert: certs.server_cert_pem.clone(),
        key: certs.server_key_pem.clone(),
        login: "{tag} OK LOGIN completed\r\n".into(),
    });
    check(&tls, &["--tls"], &[2]);
    assert!(!tls.got_credentials());
}

/// A TLS server with `certs`, probed with `--tls --ca-file` of their CA, so that only the server certificate can be
/// at fault; returns the JSON report after the shared assertions (exit 2, and no LOGIN reached the server).
fn check_tls_refused(certs: &imapref::transport::lab_cert::LabCertificates) -> serde_json::Value {
    let tls = Hostile::start(Behaviour::Tls {
        cert: certs.server_cert_pem.clone(),
        key: certs.server_key_pem.clone(),
        login: "{tag} OK LOGIN completed\r\n".into(),
    });
    let ca = tempfile::NamedTempFile::new().expect("a CA file");
    std::fs::write(ca.path(), &certs.ca_pem).expect("write the CA");
    let ca_path = ca.path().to_string_lossy().to_string();
    let doc = check(&tls, &["--tls", "--ca-file", &ca_path], &[2]);
    assert!(!tls.got_credentials(), "{doc}");
    doc
}

#[test]
fn an_expired_certificate() {
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let certs = imapref::transport::lab_cert::generate_with_validity(
        &["127.0.0.1"],
        now - day * 30,
        now - day,
    )
    .expect("certificates");
    let doc = check_tls_refused(&certs);
    assert!(summary(&doc).contains("expired"), "{doc}");
}

#[test]
fn a_certificate_for_another_host() {
    let certs =
        imapref::transport::lab_cert::generate(&["mail.example.com"], 30).expect("certificates");
    let doc = check_tls_refused(&certs);
    let text = summary(&doc);
    assert!(
        text.contains("127.0.0.1 is not among the names it is for: mail.example.com"),
        "{doc}"
    );
}

#[test]
fn a_host_outside_the_policy_gets_no_credentials() {
    let other = Hostile::start(Behaviour::Normal);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL {}] go there",
        other.url(USER)
    ));
    check(&s, &["--follow", "never"], &[2]);
    assert!(!other.got_credentials());
    assert_eq!(other.connections(), 0);
}

#[test]
fn a_host_the_allow_list_does_not_name_gets_no_credentials_without_a_terminal() {
    let other = Hostile::start(Behaviour::Normal);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL {}] go there",
        other.url(USER)
    ));
    check(&s, &["--follow", "ask"], &[2]);
    assert!(!other.got_credentials());
}

// ---- broken servers ----

#[test]
fn bye_in_the_middle_of_select() {
    let s = Hostile::start(Behaviour::ByeMidSelect);
    check(&s, &[], &[3]);
}

#[test]
fn a_reset_in_the_middle_of_a_line() {
    let s = Hostile::start(Behaviour::ResetMidLine);
    check(&s, &[], &[3]);
}

#[test]
fn a_server_that_never_reads() {
    let s = Hostile::start(Behaviour::NeverReads);
    check(&s, &[], &[3]);
}

#[test]
fn plaintext_after_the_starttls_ok_in_the_same_packet() {
    let s = Hostile::start(Behaviour::StarttlsInjectSamePacket);
    check(&s, &["--starttls"], &[2]);
    assert!(!s.got_credentials());
}

#[test]
fn plaintext_after_the_starttls_ok_later() {
    let s = Hostile::start(Behaviour::StarttlsInjectLater);
    check(&s, &["--starttls"], &[2]);
    assert!(!s.got_credentials());
}

#[test]
fn a_wrong_tag() {
    let s = Hostile::start(Behaviour::WrongTag);
    check(&s, &[], &[3]);
}

#[test]
fn bye_with_a_referral_as_the_greeting() {
    let other = Hostile::start(Behaviour::Normal);
    let s = Hostile::start(Behaviour::Greeting(
        format!("* BYE [REFERRAL {}] go there\r\n", other.url(USER)).into_bytes(),
    ));
    check(&s, &[], &[0]);
    assert!(other.got_credentials());
}

#[test]
fn a_login_referral_to_a_server_that_never_greets() {
    let silent = Hostile::start(Behaviour::SilentGreeting);
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL {}] go there",
        silent.url(USER)
    ));
    check(&s, &[], &[2]);
    assert!(!silent.got_credentials());
}

#[test]
fn one_million_untagged_lines() {
    let s = Hostile::start(Behaviour::UntaggedFlood(1_000_000));
    check(&s, &[], &[0, 2, 3]);
}

#[test]
fn two_million_exists_during_select() {
    let s = Hostile::start(Behaviour::ExistsFlood(2_000_000));
    check(&s, &[], &[0, 2, 3]);
}

#[test]
fn a_continuation_flood_after_login() {
    let s = Hostile::start(Behaviour::ContinuationFlood);
    check(&s, &[], &[2, 3]);
}

#[test]
fn a_slow_drip_of_lines_after_login() {
    let s = Hostile::start(Behaviour::SlowDripAfterLogin);
    check(&s, &[], &[2, 3]);
}

#[test]
fn a_wrong_tag_line_every_second() {
    let s = Hostile::start(Behaviour::WrongTagEverySecond);
    check(&s, &[], &[2, 3]);
}

#[test]
fn a_login_referral_with_60_alternatives_to_silent_servers() {
    let silent: Vec<Hostile> = (0..60)
        .map(|_| Hostile::start(Behaviour::SilentGreeting))
        .collect();
    let urls: Vec<String> = silent.iter().map(|s| s.url(USER)).collect();
    let s = login_answer(&format!(
        "{{tag}} NO [REFERRAL {}] go there",
        urls.join(" ")
    ));
    check(&s, &[], &[2]);
    let tried = silent.iter().filter(|s| s.connections() > 0).count();
    assert!(tried <= 10, "{tried} alternatives tried");
}

#[test]
fn a_mailbox_referral_with_60_replicas_on_silent_servers() {
    let silent: Vec<Hostile> = (0..60)
        .map(|_| Hostile::start(Behaviour::SilentGreeting))
        .collect();
    let urls: Vec<String> = silent.iter().map(|s| s.url(USER)).collect();
    let s = Hostile::start(Behaviour::SelectAnswer(format!(
        "{{tag}} NO [REFERRAL {}] Remote mailbox.\r\n",
        urls.join(" ")
    )));
    check(&s, &[], &[2]);
    let tried = silent.iter().filter(|s| s.connections() > 0).count();
    assert!(tried <= 10, "{tried} alternatives tried");
}

#[test]
fn the_password_echoed_in_a_no() {
    let s = login_answer(&format!(
        "{{tag}} NO Bad credentials: a1 LOGIN {USER} {PASSWORD}"
    ));
    check(&s, &[], &[2]);
}

#[test]
fn the_authenticate_plain_blob_echoed_in_a_no() {
    // The base64 of `\0victim\0password`, as AUTHENTICATE PLAIN sends it: every report masks it whole.
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let s = login_answer(&format!("{{tag}} NO Bad credentials: {blob}"));
    let doc = check(&s, &[], &[2]);
    assert!(!doc.to_string().contains(&blob), "{doc}");
}
