//! `imapref exporter` as Prometheus meets it: the built binary listening on a loopback port it picks, scraped over
//! HTTP, its answers parsed with Python's prometheus_client (the Prometheus text parser and the OpenMetrics parser),
//! probing the in-process lab and a real Dovecot; and a real Prometheus (Debian's `prometheus`) scraping it with
//! blackbox-style relabelling and answering a query for `probe_success`.
//!
//! Every answer and the exporter's log are checked for the password. The tools (python3 with prometheus_client,
//! prometheus, dovecot) are installed by scripts/test.sh and .ci/run; a test fails, never skips, when one is missing.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use imapref::lab::{LabConfig, Scenario};
use serde_json::Value;
use support::dovecot::{self, DovecotLab, KB_USER};
use support::http::{self, Response};
use support::lab::TestLab;

const LAB_PASSWORD: &str = "PASSword";
const LAB_USER: &str = "DOMname/UserN/AliasN";
const HTTP_TIMEOUT: Duration = Duration::from_secs(40);

fn lab(scenario: Scenario) -> TestLab {
    TestLab::with(LabConfig {
        scenario,
        ..LabConfig::default()
    })
}

/// A running `imapref exporter`, killed when dropped.
struct Exporter {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// Runs `imapref exporter` with `args` and the config `text`; returns its exit code and stderr when it stops by
/// itself within 20 s (a refused start), or panics.
fn refused_start(text: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("exporter.toml");
    std::fs::write(&config, text).expect("write");
    let out = Command::new(assert_cmd::cargo::cargo_bin("imapref"))
        .arg("exporter")
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("LAB_PW", LAB_PASSWORD)
        .env_remove("IMAPREF_TEST_UNSET")
        .stdin(Stdio::null())
        .output()
        .expect("imapref runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Exporter {
    /// Starts the exporter on `127.0.0.1:0` with the config `text` (written to a temporary directory) and `args`.
    fn start(text: &str, args: &[&str]) -> Exporter {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("exporter.toml");
        std::fs::write(&config, text).expect("write");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("imapref"))
            .arg("exporter")
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .args(args)
            .env("LAB_PW", LAB_PASSWORD)
            .env("DOVE_PW", dovecot::PASSWORD)
            .env("WRONG_PW", "not-the-password")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("imapref exporter starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("imapref exporter: listening on http://") {
                    let addr = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("an address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the exporter did not say where it listens: {}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        Exporter {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let response = http::get(self.addr, path, headers, HTTP_TIMEOUT);
        assert_no_password(&response.body, path);
        response
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The log has no password; call at the end of each test (after its last scrape).
    fn assert_clean_log(&self) {
        // The log thread may lag a moment behind the last answer.
        std::thread::sleep(Duration::from_millis(100));
        assert_no_password(&self.log(), "the exporter's log");
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_no_password(text: &str, what: &str) {
    for password in [LAB_PASSWORD, dovecot::PASSWORD, "not-the-password"] {
        assert!(!text.contains(password), "{what} shows a password:\n{text}");
    }
}

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    family_type: String,
}

/// Parses exposition text with prometheus_client: `om` for the OpenMetrics parser, else the Prometheus text parser.
fn parse(text: &str, om: bool) -> Vec<Sample> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as prom
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == "om" else prom
out = []
for family in parse(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value, family.type])
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, if om { "om" } else { "prom" }])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed (scripts/test.sh installs prometheus_client)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(
        out.status.success(),
        "prometheus_client refused the text ({}):\n{text}\n{}",
        if om { "OpenMetrics" } else { "Prometheus text" },
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    rows.into_iter()
        .map(|row| Sample {
            name: row[0].as_str().unwrap_or_default().to_string(),
            labels: row[1]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            value: row[2].as_f64().unwrap_or(f64::NAN),
            family_type: row[3].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} appears twice: {found:?}"
    );
    found.first().map(|s| s.value)
}

fn probe_path(target: &str, module: &str) -> String {
    format!("/probe?target={target}&module={module}")
}

/// Scrapes `/probe` in the Prometheus text format and parses it.
fn scrape(exporter: &Exporter, target: &str, module: &str) -> Vec<Sample> {
    let r = exporter.get(&probe_path(target, module), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&r.body, false)
}

fn lab_module(name: &str, extra: &str) -> String {
    format!(
        "[module.{name}]\nlogin = \"{LAB_USER}\"\npassword_env = \"LAB_PW\"\ntimeout = 5\n{extra}\n"
    )
}

/// A port on loopback where nothing listens.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

#[test]
fn a_referred_target_succeeds_with_its_hops_home_server_steps_and_certificate_expiry() {
    let kb = lab(Scenario::Kb);
    let lab_ref = kb.lab.as_ref().expect("running");
    let front_tls = lab_ref.front().tls.expect("a TLS port");
    let home = kb.home().to_string();
    let home_tls = lab_ref
        .server("home")
        .and_then(|s| s.tls)
        .expect("home TLS")
        .to_string();
    let config = format!(
        "{}{}",
        lab_module("kb", &format!("expect_home = \"{home}\"\nexpect_hops = 1")),
        lab_module(
            "kb_tls",
            &format!(
                "tls = \"tls\"\nca_file = \"{}\"",
                lab_ref.ca_file().display()
            )
        )
    );
    let exporter = Exporter::start(&config, &[]);

    let samples = scrape(&exporter, &kb.front().to_string(), "kb");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(value(&samples, "imap_referral_hops", &[]), Some(1.0));
    assert_eq!(value(&samples, "imap_login_referred", &[]), Some(1.0));
    assert_eq!(value(&samples, "imap_probe_status", &[]), Some(0.0));
    assert_eq!(
        value(&samples, "imap_home_server_info", &[("server", &home)]),
        Some(1.0),
        "{samples:?}"
    );
    let duration = value(&samples, "probe_duration_seconds", &[]).expect("a duration");
    assert!(duration > 0.0 && duration < 5.0, "{duration}");
    for step in ["connect", "greeting", "login", "select"] {
        let s = value(&samples, "imap_step_duration_seconds", &[("step", step)])
            .unwrap_or_else(|| panic!("no {step} step: {samples:?}"));
        assert!((0.0..duration).contains(&s), "{step}: {s} of {duration}");
    }
    assert_eq!(
        value(&samples, "probe_ssl_earliest_cert_expiry", &[]),
        None,
        "no certificate without TLS"
    );

    // OpenMetrics when Accept asks for it, with the TLS module: the lab certificate's expiry.
    let r = exporter.get(
        &probe_path(&front_tls.to_string(), "kb_tls"),
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    let samples = parse(&r.body, true);
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(
        value(&samples, "imap_home_server_info", &[("server", &home_tls)]),
        Some(1.0)
    );
    assert!(samples
        .iter()
        .any(|s| s.name == "imap_home_server_info" && s.family_type == "info"));
    let expiry = value(&samples, "probe_ssl_earliest_cert_expiry", &[]).expect("an expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        expiry > now && expiry < now + 400.0 * 86_400.0,
        "{expiry} vs now {now}"
    );
    exporter.assert_clean_log();
}

#[test]
fn refused_and_unexpected_targets_fail_and_the_counters_say_so() {
    let looping = lab(Scenario::Loop);
    let chain = lab(Scenario::LoginNo);
    let config = format!(
        "{}{}",
        lab_module("plain", ""),
        lab_module("refused", "expect = \"refused\"")
    );
    let exporter = Exporter::start(&config, &[]);

    // Nothing listens: probe_success 0.
    let samples = scrape(&exporter, &closed_port().to_string(), "plain");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(0.0),
        "{samples:?}"
    );
    // A referral loop: the probe runs to its end, fails, and says it was referred.
    let samples = scrape(&exporter, &looping.front().to_string(), "plain");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(0.0),
        "{samples:?}"
    );
    assert_eq!(value(&samples, "imap_login_referred", &[]), Some(1.0));
    assert_eq!(value(&samples, "imap_probe_status", &[]), Some(2.0));
    // NO [REFERRAL] at LOGIN, followed to home: one hop, and a module expecting a refusal fails on it.
    let samples = scrape(&exporter, &chain.front().to_string(), "plain");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(1.0),
        "{samples:?}"
    );
    assert_eq!(value(&samples, "imap_referral_hops", &[]), Some(1.0));
    let samples = scrape(&exporter, &chain.front().to_string(), "refused");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(0.0),
        "{samples:?}"
    );

    let r = exporter.get("/metrics", &[]);
    assert_eq!(r.status, 200);
    let m = parse(&r.body, false);
    let count = |name: &str, module: &str| value(&m, name, &[("module", module)]);
    assert_eq!(
        count("imapref_exporter_probes_total", "plain"),
        Some(3.0),
        "{m:?}"
    );
    assert_eq!(
        count("imapref_exporter_probe_failures_total", "plain"),
        Some(2.0)
    );
    assert_eq!(count("imapref_exporter_probes_total", "refused"), Some(1.0));
    assert_eq!(
        count("imapref_exporter_probe_failures_total", "refused"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "imapref_exporter_probes_in_flight", &[]),
        Some(0.0)
    );
    exporter.assert_clean_log();
}

#[test]
fn bad_scrapes_get_a_400_with_the_reason_and_are_counted() {
    let kb = lab(Scenario::Kb);
    let exporter = Exporter::start(&lab_module("kb", ""), &[]);
    let front = kb.front().to_string();
    for (path, headers, needle) in [
        (
            probe_path(&front, "nope"),
            vec![],
            "unknown module `nope`; the modules are: kb",
        ),
        (
            "/probe?module=kb".to_string(),
            vec![],
            "target parameter is missing",
        ),
        (
            "/probe?target=&module=kb".to_string(),
            vec![],
            "target parameter is missing",
        ),
        (
            format!("/probe?target={front}"),
            vec![],
            "module parameter is missing",
        ),
        (
            probe_path("bad%20host", "kb"),
            vec![],
            "bad target `bad host`",
        ),
        (
            probe_path(&front, "kb"),
            vec![("X-Prometheus-Scrape-Timeout-Seconds", "soon")],
            "bad X-Prometheus-Scrape-Timeout-Seconds header",
        ),
    ] {
        let r = exporter.get(&path, &headers);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path}: {}", r.body);
    }
    assert_eq!(exporter.get("/logs?id=x", &[]).status, 400);
    assert_eq!(exporter.get("/logs?id=1", &[]).status, 404, "no probe ran");
    assert_eq!(exporter.get("/nothing", &[]).status, 404);

    let m = parse(&exporter.get("/metrics", &[]).body, false);
    assert_eq!(
        value(&m, "imapref_exporter_module_unknown_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "imapref_exporter_bad_requests_total", &[]),
        Some(6.0)
    );
    assert_eq!(
        value(&m, "imapref_exporter_probes_total", &[("module", "kb")]),
        Some(0.0)
    );
    exporter.assert_clean_log();
}

#[test]
fn a_password_file_removed_after_startup_gets_a_500_naming_the_file_not_the_password() {
    let kb = lab(Scenario::Kb);
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("lab.pw");
    std::fs::write(&pw, format!("{LAB_PASSWORD}\n")).expect("write");
    let exporter = Exporter::start(
        &format!(
            "[module.kb]\nlogin = \"{LAB_USER}\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
        &[],
    );
    let front = kb.front().to_string();
    assert_eq!(
        value(&scrape(&exporter, &front, "kb"), "probe_success", &[]),
        Some(1.0)
    );
    std::fs::remove_file(&pw).expect("remove");
    let r = exporter.get(&probe_path(&front, "kb"), &[]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("module `kb`") && r.body.contains("lab.pw"),
        "{}",
        r.body
    );
    exporter.assert_clean_log();
}

#[test]
fn the_page_lists_the_modules_and_recent_probes_with_their_reports() {
    let kb = lab(Scenario::Kb);
    let config = format!(
        "{}[module.\"<b>odd</b>\"]\nlogin = \"x\"\npassword_env = \"LAB_PW\"\n",
        lab_module("kb", "")
    );
    let exporter = Exporter::start(&config, &["--history-limit", "2"]);
    let front = kb.front().to_string();
    for _ in 0..3 {
        assert_eq!(
            value(&scrape(&exporter, &front, "kb"), "probe_success", &[]),
            Some(1.0)
        );
    }
    let page = exporter.get("/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("<td>kb</td>"), "{}", page.body);
    assert!(
        page.body.contains("&lt;b&gt;odd&lt;/b&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<b>odd"), "{}", page.body);
    assert!(page.body.contains(&format!("<td>{front}</td>")));
    // Three probes, two kept: ids 2 and 3, newest first.
    let three = page.body.find("logs?id=3").expect("probe 3 listed");
    let two = page.body.find("logs?id=2").expect("probe 2 listed");
    assert!(three < two, "newest first");
    assert!(!page.body.contains("logs?id=1\""), "probe 1 was dropped");
    assert_eq!(exporter.get("/logs?id=1", &[]).status, 404);

    let report = exporter.get("/logs?id=3", &[]);
    assert_eq!(report.status, 200);
    for needle in [
        "Probe 3 of",
        "hop 2",
        "C: a2 LOGIN DOMname/UserN/AliasN ***",
        "probe_success 1",
        "password_env = \"LAB_PW\"",
    ] {
        assert!(report.body.contains(needle), "{needle}: {}", report.body);
    }
    // debug=true answers with the same report instead of the metrics.
    let debug = exporter.get(&format!("{}&debug=true", probe_path(&front, "kb")), &[]);
    assert!(debug.body.contains("Probe 4 of"), "{}", debug.body);
    assert!(debug.body.contains("Metrics that were returned"));
    exporter.assert_clean_log();
}

#[test]
fn the_scrape_timeout_bounds_the_probe_and_probes_over_the_limit_get_a_503() {
    // Accepts connections (the kernel's backlog) but never greets: a probe of it runs until its bound.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = silent.local_addr().expect("addr").to_string();
    let config = format!(
        "[module.slow]\nlogin = \"{LAB_USER}\"\npassword_env = \"LAB_PW\"\ntimeout = 20\nmax_time = 30\n"
    );
    let exporter = Arc::new(Exporter::start(&config, &["--max-concurrent", "1"]));

    let first = std::thread::spawn({
        let exporter = Arc::clone(&exporter);
        let target = target.clone();
        move || {
            let started = Instant::now();
            let r = exporter.get(
                &probe_path(&target, "slow"),
                &[("X-Prometheus-Scrape-Timeout-Seconds", "6")],
            );
            (r, started.elapsed())
        }
    });
    // Wait until the first probe holds the one slot.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // A plain look at the text (no parser), to be quick: the first probe has only its time bound.
        let body = exporter.get("/metrics", &[]).body;
        if body.contains("\nimapref_exporter_probes_in_flight 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the first probe never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let busy = exporter.get(
        &probe_path(&target, "slow"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1")],
    );
    let waited = started.elapsed();
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert!(busy.body.contains("--max-concurrent"), "{}", busy.body);
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "a busy scrape waits its probe's time (1 s less the 0.5 s offset), then gives up: {waited:?}"
    );

    let (r, took) = first.join().expect("the first scrape");
    assert_eq!(r.status, 200, "{}", r.body);
    let samples = parse(&r.body, false);
    assert_eq!(value(&samples, "probe_success", &[]), Some(0.0));
    let duration = value(&samples, "probe_duration_seconds", &[]).expect("duration");
    // Upper bounds with room for a loaded 2-core CI machine; max_time (30 s) and timeout (20 s) are far above them.
    assert!(
        (5.3..6.5).contains(&duration),
        "bounded by the scrape timeout (6 s) less the offset (0.5 s), not by max_time: {duration}"
    );
    assert!(
        took < Duration::from_secs(7),
        "answered about when the scrape timeout ends, not at max_time: {took:?}"
    );

    let m = parse(&exporter.get("/metrics", &[]).body, false);
    assert_eq!(
        value(&m, "imapref_exporter_probes_busy_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "imapref_exporter_probes_in_flight", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "imapref_exporter_probe_failures_total",
            &[("module", "slow")]
        ),
        Some(1.0)
    );
    exporter.assert_clean_log();
    drop(silent);
}

/// Reads from `stream` until the server closes it; panics after `within`.
fn closed_within(stream: &mut std::net::TcpStream, within: Duration) -> Duration {
    use std::io::Read;
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("the connection is still open after {within:?}: {e}"),
        }
    }
}

#[test]
fn slow_clients_are_dropped_and_connections_are_limited() {
    let kb = lab(Scenario::Kb);
    let exporter = Exporter::start(
        &lab_module("kb", ""),
        &["--header-timeout", "1", "--max-connections", "2"],
    );
    // A client that sends half a request and waits: dropped after the header timeout.
    let mut slow = std::net::TcpStream::connect(exporter.addr).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    let mut idle = std::net::TcpStream::connect(exporter.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    // Two connections are open: a third is closed at once, without an answer.
    let mut third = std::net::TcpStream::connect(exporter.addr).expect("connect");
    third
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok();
    let took = closed_within(&mut third, Duration::from_secs(5));
    assert!(
        took < Duration::from_millis(900),
        "over the limit: closed at once, {took:?}"
    );
    let took = closed_within(&mut slow, Duration::from_secs(5));
    assert!(
        (Duration::from_millis(500)..Duration::from_millis(2500)).contains(&took),
        "half a request: dropped after --header-timeout 1, {took:?}"
    );
    closed_within(&mut idle, Duration::from_secs(5));
    // Slots free again: scrapes work.
    let samples = scrape(&exporter, &kb.front().to_string(), "kb");
    assert_eq!(value(&samples, "probe_success", &[]), Some(1.0));
    exporter.assert_clean_log();
}

/// The exporter's exit code, once it has exited; fails when it still runs `limit` after `since` (its SIGTERM).
fn exit_code_within(exporter: &mut Exporter, since: Instant, limit: Duration) -> Option<i32> {
    loop {
        if let Some(status) = exporter.child.try_wait().expect("wait") {
            return status.code();
        }
        assert!(
            since.elapsed() < limit,
            "still running {limit:?} after SIGTERM:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_the_exporter_with_exit_0_even_with_an_idle_connection_open() {
    let mut exporter = Exporter::start(&lab_module("kb", ""), &[]);
    let mut idle = std::net::TcpStream::connect(exporter.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill")
        .args(["-TERM", &exporter.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let code = exit_code_within(&mut exporter, Instant::now(), Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", exporter.log());
    closed_within(&mut idle, Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        exporter.log().contains("imapref exporter: stopped"),
        "{}",
        exporter.log()
    );
}

#[test]
fn sigterm_lets_a_probe_in_progress_answer_then_exits_0() {
    // docs/exporter.md: SIGTERM lets the probes in progress finish (at most the longest max_time and a second).
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = silent.local_addr().expect("addr").to_string();
    let config = format!(
        "[module.slow]\nlogin = \"{LAB_USER}\"\npassword_env = \"LAB_PW\"\ntimeout = 20\nmax_time = 2\n"
    );
    let mut exporter = Exporter::start(&config, &[]);
    let addr = exporter.addr;
    let scrape = std::thread::spawn({
        let path = probe_path(&target, "slow");
        move || http::get(addr, &path, &[], HTTP_TIMEOUT)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exporter
        .get("/metrics", &[])
        .body
        .contains("\nimapref_exporter_probes_in_flight 1\n")
    {
        assert!(Instant::now() < deadline, "the probe never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &exporter.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let stopped = Instant::now();
    let answer = scrape.join().expect("the scrape");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_no_password(&answer.body, "/probe");
    let samples = parse(&answer.body, false);
    assert_eq!(value(&samples, "probe_success", &[]), Some(0.0));
    let code = exit_code_within(&mut exporter, stopped, Duration::from_secs(6));
    assert_eq!(code, Some(0), "{}", exporter.log());
}

#[test]
fn a_bad_config_or_a_non_loopback_address_stops_the_exporter_at_startup() {
    let (code, err) = refused_start(
        "[module.kb]\nlogin = \"u\"\npassword_env = \"LAB_PW\"\n\n[module.typo]\nlogin = \"u\"\nexpcet = \"reached\"\n",
        &["--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("line 5: module `typo`: unknown key `expcet`"),
        "{err}"
    );
    let (code, err) = refused_start(
        "[module.kb]\nlogin = \"u\"\ntarget = \"127.0.0.1:143\"\npassword_env = \"LAB_PW\"\n",
        &["--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 3);
    assert!(err.contains("`target` is not a module key"), "{err}");
    let (code, err) = refused_start(
        "[module.kb]\nlogin = \"u\"\npassword_env = \"IMAPREF_TEST_UNSET\"\n",
        &["--listen", "127.0.0.1:0"],
    );
    assert_eq!(code, 3);
    assert!(err.contains("IMAPREF_TEST_UNSET"), "{err}");
    let (code, err) = refused_start(
        "[module.kb]\nlogin = \"u\"\npassword_env = \"LAB_PW\"\n",
        &["--listen", "0.0.0.0:0"],
    );
    assert_eq!(code, 3);
    assert!(err.contains("--allow-non-loopback"), "{err}");
    assert_no_password(&err, "stderr");
}

#[test]
fn a_real_dovecot_referral_is_followed_and_a_wrong_password_fails() {
    let dovecot = DovecotLab::start();
    let config = format!(
        "[module.dove]\nlogin = \"{KB_USER}\"\npassword_env = \"DOVE_PW\"\nexpect_home = \"{home}\"\nexpect_hops = 1\n\n\
         [module.wrong]\nlogin = \"{KB_USER}\"\npassword_env = \"WRONG_PW\"\n",
        home = dovecot.home
    );
    let exporter = Exporter::start(&config, &[]);
    let samples = scrape(&exporter, &dovecot.front.to_string(), "dove");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(1.0),
        "{samples:?}\n{}",
        dovecot.logs()
    );
    assert_eq!(value(&samples, "imap_referral_hops", &[]), Some(1.0));
    assert_eq!(value(&samples, "imap_login_referred", &[]), Some(1.0));
    assert_eq!(
        value(
            &samples,
            "imap_home_server_info",
            &[("server", &dovecot.home.to_string())]
        ),
        Some(1.0)
    );
    let samples = scrape(&exporter, &dovecot.front.to_string(), "wrong");
    assert_eq!(
        value(&samples, "probe_success", &[]),
        Some(0.0),
        "{samples:?}"
    );
    assert_eq!(value(&samples, "imap_login_referred", &[]), Some(0.0));
    exporter.assert_clean_log();
    assert_no_password(&dovecot.logs(), "Dovecot's logs");
}

/// A running Prometheus, killed when dropped; its data directory is a temporary one.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("prometheus");
        if p.is_file() {
            return p;
        }
    }
    let p = PathBuf::from("/usr/bin/prometheus");
    assert!(
        p.is_file(),
        "Debian's `prometheus` is not installed: scripts/test.sh and .ci/run install it (apt-get install prometheus)"
    );
    p
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let binary = prometheus_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write");
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The instant vector of `query`, or `None` while Prometheus is not answering.
    fn query(&mut self, query: &str) -> Option<Vec<Value>> {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
        if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_err() {
            return None;
        }
        let r = http::get(
            self.addr,
            &format!("/api/v1/query?query={query}"),
            &[],
            Duration::from_secs(10),
        );
        if r.status != 200 {
            return None;
        }
        let doc: Value = serde_json::from_str(&r.body).ok()?;
        doc["data"]["result"].as_array().cloned()
    }
}

#[test]
fn a_real_prometheus_scrapes_the_exporter_with_relabelling_and_reads_probe_success() {
    let kb = lab(Scenario::Kb);
    let home = kb.home().to_string();
    let front = kb.front().to_string();
    let exporter = Exporter::start(&lab_module("kb", "expect_hops = 1"), &[]);
    let mut prometheus = Prometheus::start(&format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: imap
    metrics_path: /probe
    params:
      module: [kb]
    static_configs:
      - targets: ["{front}", "{closed}"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: "{exporter}"
  - job_name: imapref_exporter
    static_configs:
      - targets: ["{exporter}"]
"#,
        closed = closed_port(),
        exporter = exporter.addr,
    ));

    let deadline = Instant::now() + Duration::from_secs(90);
    let results = loop {
        if let Some(result) = prometheus.query("probe_success") {
            if result.len() == 2 {
                break result;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has no probe_success for both targets after 90 s:\n{}\nexporter:\n{}",
            prometheus.log(),
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let by_instance: BTreeMap<String, String> = results
        .iter()
        .map(|r| {
            (
                r["metric"]["instance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        by_instance.get(&front).map(String::as_str),
        Some("1"),
        "{results:?}"
    );
    assert_eq!(by_instance.len(), 2, "{results:?}");
    assert!(
        by_instance.values().any(|v| v == "0"),
        "the closed port fails: {results:?}"
    );
    for r in &results {
        assert_eq!(r["metric"]["job"], "imap");
    }
    let hops = prometheus
        .query("imap_referral_hops")
        .expect("Prometheus answers");
    assert!(
        hops.iter()
            .any(|r| r["metric"]["instance"] == front.as_str() && r["value"][1] == "1"),
        "{hops:?}"
    );
    let info = prometheus
        .query("imap_home_server_info")
        .expect("Prometheus answers");
    assert!(
        info.iter().any(|r| r["metric"]["server"] == home.as_str()),
        "{info:?}"
    );
    // The exporter's own metrics, scraped as a second job.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probes = prometheus
            .query("imapref_exporter_probes_total")
            .unwrap_or_default();
        if probes.iter().any(|r| r["metric"]["module"] == "kb") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no imapref_exporter_probes_total: {probes:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    exporter.assert_clean_log();
}

/// The ```yaml blocks of docs/exporter.md, in order: the scrape configuration, then the alert rules.
fn doc_yaml_blocks() -> Vec<String> {
    let doc = include_str!("../docs/exporter.md");
    doc.split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_string())
        .collect()
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let binary = prometheus_binary().with_file_name("promtool");
    let out = Command::new(&binary)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (Debian's prometheus ships it): {e}",
                binary.display()
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_documented_scrape_config_is_valid_and_the_alert_rules_fire_when_they_should() {
    let blocks = doc_yaml_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "docs/exporter.md: a scrape config and the rules"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("prometheus.yml"), &blocks[0]).expect("write");
    std::fs::write(dir.path().join("rules.yml"), &blocks[1]).expect("write");
    promtool(&["check", "config", "prometheus.yml"], dir.path());
    promtool(&["check", "rules", "rules.yml"], dir.path());
    // Synthetic series: the mailbox of instance `a` moves from h1 to h2 at minute 10, one more referral away, and the
    // probe starts failing at the same time; the certificate has 10 days left.
    let cert = 10 * 86_400;
    let tests = format!(
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'probe_success{{job="imap_referrals",instance="a"}}'
        values: '1x9 0x30'
      - series: 'imap_referral_hops{{job="imap_referrals",instance="a"}}'
        values: '1x9 2x30'
      - series: 'imap_home_server_info{{job="imap_referrals",instance="a",server="h1:143"}}'
        values: '1x9'
      - series: 'imap_home_server_info{{job="imap_referrals",instance="a",server="h2:143"}}'
        values: '_x10 1x30'
      - series: 'probe_ssl_earliest_cert_expiry{{job="imap_referrals",instance="a"}}'
        values: '{cert}x130'
    alert_rule_test:
      - eval_time: 5m
        alertname: ImapProbeFailed
        exp_alerts: []
      - eval_time: 5m
        alertname: ImapReferralHopsChanged
        exp_alerts: []
      - eval_time: 5m
        alertname: ImapHomeServerChanged
        exp_alerts: []
      - eval_time: 20m
        alertname: ImapProbeFailed
        exp_alerts:
          - exp_labels: {{job: imap_referrals, instance: a}}
            exp_annotations:
              summary: "IMAP probe of a fails"
              description: "See the exporter's page (/) for the report of the last probes."
      - eval_time: 20m
        alertname: ImapReferralHopsChanged
        exp_alerts:
          - exp_labels: {{job: imap_referrals, instance: a}}
            exp_annotations:
              summary: "a: the referral hop count changed 1 times in 30 minutes"
      - eval_time: 20m
        alertname: ImapHomeServerChanged
        exp_alerts:
          - exp_labels: {{instance: a}}
            exp_annotations:
              summary: "a: the mailbox is now opened on a different server"
      - eval_time: 90m
        alertname: ImapHomeServerChanged
        exp_alerts: []
      - eval_time: 90m
        alertname: ImapCertificateExpiresSoon
        exp_alerts:
          - exp_labels: {{job: imap_referrals, instance: a}}
            exp_annotations:
              summary: "a: a certificate on the referral path expires within 14 days"
"#
    );
    std::fs::write(dir.path().join("tests.yml"), tests).expect("write");
    let out = promtool(&["test", "rules", "tests.yml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");
}
