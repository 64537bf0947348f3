//! `imapref check FILE` against the in-process lab: every output format checked by what reads it (xmllint with the
//! Jenkins JUnit schema, Python's prometheus_client OpenMetrics parser, the monitoring-plugins perfdata grammar), the
//! worst exit code, a bad check that names its line while the others still run, the per-check time bound, the
//! atomic metrics file, the topology graph of the lab scenarios, and no password anywhere.
//!
//! The tools are installed by scripts/test.sh and .ci/run; a test fails (never skips) when one is missing.

mod support;
use support::lab::start;
use support::run::Run;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use imapref::lab::{Lab, Scenario};
use serde_json::Value;

const PASSWORD: &str = "PASSword";
const USER: &str = "DOMname/UserN/AliasN";
const MAILBOX: &str = "Public Folders/Announcements";

/// Runs `imapref check FILE ARGS...` off the async runtime, with the lab password in `LAB_PW`.
async fn check(file: PathBuf, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::cargo_bin("imapref")
            .expect("the imapref binary")
            .arg("check")
            .arg(&file)
            .args(&args)
            .env("LAB_PW", PASSWORD)
            .env("NO_COLOR", "1")
            .output()
            .expect("imapref runs");
        let run = Run::from(out);
        assert!(
            !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
            "the password leaked:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run
    })
    .await
    .expect("join")
}

fn addr(lab: &Lab, role: &str) -> String {
    lab.server(role)
        .unwrap_or_else(|| panic!("no {role}"))
        .plain
        .to_string()
}

/// The labs of the mixed file: kb, loop, replicas, mailbox-referral.
struct Labs {
    kb: Lab,
    looping: Lab,
    replicas: Lab,
    mailbox: Lab,
}

impl Labs {
    async fn start() -> Labs {
        Labs {
            kb: start(Scenario::Kb).await,
            looping: start(Scenario::Loop).await,
            replicas: start(Scenario::Replicas).await,
            mailbox: start(Scenario::MailboxReferral).await,
        }
    }

    async fn stop(self) {
        self.kb.shutdown().await;
        self.looping.shutdown().await;
        self.replicas.shutdown().await;
        self.mailbox.shutdown().await;
    }

    /// Five checks: kb (OK, home and hops expected), loop (CRITICAL), replicas (OK after a dead replica),
    /// mailbox-referral (OK), and one with a misspelt key (UNKNOWN, bad check) on line `bad_line`.
    fn file(&self, dir: &Path) -> (PathBuf, usize) {
        let text = format!(
            r#"# imapref check file for the tests
[defaults]
login = "{USER}"
password_env = "LAB_PW"
timeout = 5

[[check]]
name = "kb user"
target = "{kb}"
expect_home = "{home}"
expect_hops = 1

[[check]]
name = "pingpong"
target = "{looping}"

[[check]]
name = "replicas"
target = "{replicas}"
mailbox = "{MAILBOX}"
expect_hops = 1

[[check]]
name = "public folder"
target = "{mailbox}"
mailbox = "{MAILBOX}"

[[check]]
name = "typo"
target = "{kb}"
expcet = "reached"
"#,
            kb = addr(&self.kb, "front"),
            home = addr(&self.kb, "home"),
            looping = addr(&self.looping, "front"),
            replicas = addr(&self.replicas, "front"),
            mailbox = addr(&self.mailbox, "front"),
        );
        let bad_line = text
            .lines()
            .position(|l| l.starts_with("expcet"))
            .expect("the typo line")
            + 1;
        let path = dir.join("checks.toml");
        std::fs::write(&path, text).expect("write the check file");
        (path, bad_line)
    }
}

fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worst_check_sets_the_exit_code_and_a_bad_check_names_its_line() {
    let labs = Labs::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, bad_line) = labs.file(dir.path());
    let run = check(file.clone(), &["--format", "json"]).await;
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr));
    assert_eq!(doc["version"], 1);
    assert_eq!(
        statuses(&doc),
        [
            ("kb user", "ok"),
            ("pingpong", "critical"),
            ("replicas", "ok"),
            ("public folder", "ok"),
            ("typo", "unknown"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{}",
        run.stdout
    );
    // UNKNOWN (the bad check) is the worst, as probe ranks its findings.
    assert_eq!(run.code, 3);
    assert_eq!(doc["summary"]["exit_code"], 3);
    let typo = &doc["checks"][4];
    assert_eq!(typo["kind"], "bad-check");
    let message = typo["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("line {bad_line}")) && message.contains("`expcet`"),
        "{message}"
    );
    let pingpong = &doc["checks"][1];
    assert!(pingpong["diagnoses"]
        .as_array()
        .expect("ids")
        .iter()
        .any(|d| d == "referral-loop"));
    assert_eq!(doc["checks"][0]["referral_hops"], 1);
    assert_eq!(
        doc["checks"][2]["referral_hops"], 1,
        "the dead replica is not a hop"
    );
    assert_eq!(
        doc["checks"][0]["report"]["verdict"]["mailbox_reached"],
        true
    );

    // Without the bad check the worst is the loop: CRITICAL, 2. The human table says so too.
    let text = std::fs::read_to_string(&file).expect("read");
    let good = text
        .split("[[check]]\nname = \"typo\"")
        .next()
        .expect("head");
    std::fs::write(&file, good).expect("write");
    let run = check(file, &[]).await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("4 checks: 3 ok, 0 warning, 1 critical, 0 unknown; worst CRITICAL (exit 2)"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("CRITICAL") && l.contains("pingpong")));
    labs.stop().await;
}

/// One perfdata item of the monitoring-plugins guidelines: `'label'=value[UOM];[warn];[crit];[min];[max]`, the label
/// quoted and without `'` or `=`, numbers in `[-0-9.]`, a UOM from the list, at most five fields.
fn assert_perfdata_item(item: &str) {
    let (label, rest) = item
        .strip_prefix('\'')
        .and_then(|s| s.split_once("'="))
        .unwrap_or_else(|| panic!("label not quoted: {item}"));
    assert!(
        !label.is_empty() && !label.contains('\'') && !label.contains('='),
        "{item}"
    );
    let fields: Vec<&str> = rest.split(';').collect();
    assert!((1..=5).contains(&fields.len()), "too many fields: {item}");
    let value = fields[0];
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
    let uom = &value[digits.len()..];
    assert!(
        !digits.is_empty()
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-'),
        "value: {item}"
    );
    assert!(
        ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom),
        "UOM `{uom}`: {item}"
    );
    for range in &fields[1..] {
        // Ranges: [@][start:][end], with ~ for minus infinity; numbers in [-0-9.].
        assert!(
            range
                .chars()
                .all(|c| c.is_ascii_digit() || ".-:~@".contains(c)),
            "threshold `{range}`: {item}"
        );
    }
}

/// Checks a plugin's output against the guidelines and returns the status word of its first line.
fn assert_plugin_output(stdout: &str, code: i32) -> String {
    let first = stdout.lines().next().expect("a first line");
    let (text, perf) = first.split_once(" | ").expect("a perfdata part");
    let (service_status, _) = text.split_once(" - ").expect("SERVICE STATUS - text");
    let (service, status) = service_status.split_once(' ').expect("service and status");
    assert_eq!(service, "IMAPREF");
    let expected_code = match status {
        "OK" => 0,
        "WARNING" => 1,
        "CRITICAL" => 2,
        "UNKNOWN" => 3,
        other => panic!("status `{other}`"),
    };
    assert_eq!(
        code, expected_code,
        "exit code and status word agree: {first}"
    );
    assert!(!text.contains('|'));
    // Labels may contain spaces inside their quotes: split on `' ` boundaries only after a value.
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in perf.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c)
            }
            ' ' if !quoted => {
                if !current.is_empty() {
                    items.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    assert!(!items.is_empty(), "{first}");
    for item in &items {
        assert_perfdata_item(item);
    }
    for line in stdout.lines().skip(1) {
        assert!(
            !line.contains('|'),
            "long text carries no perfdata here: {line}"
        );
    }
    status.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn nagios_output_follows_the_plugin_guidelines() {
    let labs = Labs::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = labs.file(dir.path());
    let run = check(file, &["--format", "nagios"]).await;
    assert_eq!(assert_plugin_output(&run.stdout, run.code), "UNKNOWN");
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(
        first.contains(" - 2 of 5 checks failed: pingpong (DOMname/UserN/AliasN@"),
        "{first}"
    );
    assert!(first.contains("'kb user_time'="), "{first}");
    assert!(first.contains("'kb user_hops'=1;;;0"), "{first}");
    assert_eq!(
        run.stdout.lines().count(),
        6,
        "a line per check:\n{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("\nCRITICAL pingpong: The referrals loop"));

    // `imapref probe --format nagios`: one status line plus perfdata, for Nagios or Icinga.
    let target = addr(&labs.kb, "front");
    let probe = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("imapref")
            .expect("bin")
            .args([
                "probe",
                &target,
                USER,
                "--password-env",
                "LAB_PW",
                "--format",
                "nagios",
            ])
            .env("LAB_PW", PASSWORD)
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert_eq!(
        assert_plugin_output(&stdout, probe.status.code().unwrap_or(-1)),
        "OK"
    );
    assert!(stdout.contains("'hops'=1;;;0"), "{stdout}");
    labs.stop().await;
}

/// Parses OpenMetrics text with prometheus_client's parser and returns `[[name, labels, value], ...]`.
fn parse_openmetrics(text: &str) -> Vec<(String, Value, f64)> {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    assert family.type == "gauge", family
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Process::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed (scripts/test.sh installs prometheus_client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejected the text (or prometheus_client is missing):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON rows");
    rows.into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_string(),
                r[1].clone(),
                r[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn openmetrics_parse_with_a_real_parser_and_the_metrics_file_is_written_atomically() {
    let labs = Labs::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = labs.file(dir.path());
    let metrics = dir.path().join("textfile").join("imapref.prom");
    std::fs::create_dir_all(metrics.parent().expect("parent")).expect("mkdir");
    std::fs::write(&metrics, "old\n").expect("an old file to replace");
    let run = check(
        file,
        &[
            "--format",
            "openmetrics",
            "--metrics",
            metrics.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert!(run.stdout.ends_with("# EOF\n"), "{}", run.stdout);
    let samples = parse_openmetrics(&run.stdout);
    let value = |name: &str, check: &str| {
        samples
            .iter()
            .find(|(n, labels, _)| n == name && labels["check"] == check)
            .map(|(_, _, v)| *v)
    };
    assert_eq!(value("imapref_check_success", "kb user"), Some(1.0));
    assert_eq!(value("imapref_check_success", "pingpong"), Some(0.0));
    assert_eq!(value("imapref_check_status", "pingpong"), Some(2.0));
    assert_eq!(value("imapref_referral_hops", "kb user"), Some(1.0));
    assert!(value("imapref_check_duration_seconds", "replicas").is_some_and(|v| v > 0.0));
    let kb = samples
        .iter()
        .find(|(n, l, _)| n == "imapref_check_success" && l["check"] == "kb user")
        .expect("kb sample");
    assert_eq!(kb.1["login"], USER);
    assert_eq!(kb.1["target"], addr(&labs.kb, "front"));
    // The file holds the same text, and no temporary file is left beside it.
    let written = std::fs::read_to_string(&metrics).expect("metrics file");
    assert!(written.ends_with("# EOF\n"));
    parse_openmetrics(&written);
    // `imapref probe --format openmetrics`: the same families for one probe.
    let target = addr(&labs.kb, "front");
    let probe = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("imapref")
            .expect("bin")
            .args([
                "probe",
                &target,
                USER,
                "--password-env",
                "LAB_PW",
                "--format",
                "openmetrics",
            ])
            .env("LAB_PW", PASSWORD)
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let one = parse_openmetrics(&String::from_utf8_lossy(&probe.stdout));
    assert!(
        one.iter()
            .any(|(n, l, v)| n == "imapref_referral_hops" && l["login"] == USER && *v == 1.0),
        "{one:?}"
    );
    assert!(one
        .iter()
        .any(|(n, _, v)| n == "imapref_check_success" && *v == 1.0));
    let names: Vec<String> = std::fs::read_dir(metrics.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["imapref.prom"]);
    labs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_is_valid_against_the_jenkins_schema() {
    let labs = Labs::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = labs.file(dir.path());
    let junit = dir.path().join("report.xml");
    let run = check(file, &["--junit", junit.to_str().expect("utf-8")]).await;
    assert_eq!(run.code, 3);
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit-10.xsd");
    let out = Process::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&junit)
        .output()
        .expect("xmllint is installed (scripts/test.sh installs libxml2-utils)");
    assert!(
        out.status.success(),
        "not valid against junit-10.xsd:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&junit).expect("read");
    assert!(!xml.contains(PASSWORD));
    assert!(
        xml.contains(r#"tests="5" failures="1" errors="1""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 5);
    assert!(
        xml.contains(r#"<failure message="The referrals loop"#),
        "{xml}"
    );
    assert!(xml.contains(r#"type="referral-loop""#), "{xml}");
    assert!(xml.contains("<error message=\"bad check: line"), "{xml}");
    // system-out holds the human report.
    assert!(xml.contains("password sent to:"), "{xml}");
    labs.stop().await;
}

/// `(from, to, colour, style)` of every edge, and the label of every node, from the DOT file.
type DotEdge = (String, String, String, String);

fn dot_graph(dot: &str) -> (Vec<String>, Vec<DotEdge>) {
    let mut labels = std::collections::HashMap::new();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let attr = |line: &str, key: &str| {
        line.split(&format!("{key}="))
            .nth(1)
            .map(|rest| {
                rest.trim_start_matches('"')
                    .split(['"', ',', ']'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    for line in dot.lines().map(str::trim) {
        if let Some((from, rest)) = line.split_once(" -> ") {
            let to = rest.split(' ').next().unwrap_or("");
            edges.push((
                labels.get(from).cloned().unwrap_or_default(),
                labels.get(to).cloned().unwrap_or_default(),
                attr(line, "color"),
                attr(line, "style"),
            ));
        } else if line.starts_with('n') && line.contains("[shape=box") {
            let id = line.split(' ').next().unwrap_or("").to_string();
            let label = attr(line, "label");
            let server = label.split(' ').next().unwrap_or("").to_string();
            labels.insert(id, server.clone());
            nodes.push(label);
        }
    }
    (nodes, edges)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_graph_of_the_lab_scenarios_has_the_right_nodes_and_edges() {
    let labs = Labs::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = labs.file(dir.path());
    let dot = dir.path().join("topology.dot");
    check(file.clone(), &["--graph", dot.to_str().expect("utf-8")]).await;
    let (nodes, edges) = dot_graph(&std::fs::read_to_string(&dot).expect("dot"));
    let kb = addr(&labs.kb, "front");
    let home = addr(&labs.kb, "home");
    let a = addr(&labs.looping, "front");
    let b = addr(&labs.looping, "loop-b");
    let rfront = addr(&labs.replicas, "front");
    let pub1 = addr(&labs.replicas, "pub1");
    let closed = labs
        .replicas
        .closed_port()
        .expect("closed port")
        .to_string();
    let mfront = addr(&labs.mailbox, "front");
    let mpub = addr(&labs.mailbox, "pub");
    let edge = |f: &str, t: &str, c: &str, s: &str| {
        (f.to_string(), t.to_string(), c.to_string(), s.to_string())
    };
    let mut expected = vec![
        edge(&kb, &home, "blue", ""),
        edge(&a, &b, "blue", ""),
        edge(&b, &a, "red", ""),
        edge(&rfront, &closed, "gray", "dashed"),
        edge(&rfront, &pub1, "green", ""),
        edge(&mfront, &mpub, "green", ""),
    ];
    let mut got = edges.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "{nodes:?}");
    // Servers are nodes; the homes are marked; the bad check (no report) adds nothing.
    assert_eq!(nodes.len(), 9, "{nodes:?}");
    for home in [&home, &pub1, &mpub] {
        assert!(nodes.contains(&format!("{home} (mailbox)")), "{nodes:?}");
    }

    // SVG drawn in-process, and a self-contained HTML page.
    let svg = dir.path().join("topology.svg");
    check(file.clone(), &["--graph", svg.to_str().expect("utf-8")]).await;
    let svg = std::fs::read_to_string(&svg).expect("svg");
    assert!(svg.contains("<svg"), "{svg}");
    for server in [&kb, &home, &a, &b, &pub1] {
        assert!(svg.contains(server.as_str()), "{server} drawn");
    }
    let html = dir.path().join("topology.html");
    check(file, &["--graph", html.to_str().expect("utf-8")]).await;
    let html = std::fs::read_to_string(&html).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    for fetch in ["src=", "@import", "<link", "<script"] {
        assert!(!html.contains(fetch), "the page fetches nothing ({fetch})");
    }
    for link in html.split("url(").skip(1) {
        assert!(
            link.starts_with('#'),
            "only references inside the page: {}",
            &link[..link.len().min(40)]
        );
    }
    for link in html.split("href=\"").skip(1) {
        assert!(
            link.starts_with('#'),
            "only links inside the page: {}",
            &link[..link.len().min(40)]
        );
    }
    labs.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_past_its_max_time_is_unknown_and_ask_is_refused() {
    // A server that accepts and never greets: only the per-check bound can end the probe.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let kb = start(Scenario::Kb).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("slow.toml");
    std::fs::write(
        &file,
        format!(
            "[defaults]\nlogin = \"{USER}\"\npassword_env = \"LAB_PW\"\n\n[[check]]\nname = \"silent\"\ntarget = \"{silent_addr}\"\ntimeout = 30\nmax_time = 1\n\n[[check]]\nname = \"asks\"\ntarget = \"{}\"\nfollow = \"ask\"\n",
            addr(&kb, "front")
        ),
    )
    .expect("write");
    let started = std::time::Instant::now();
    let run = check(file, &["--format", "json"]).await;
    assert!(started.elapsed().as_secs() < 20, "bounded by max_time");
    assert_eq!(run.code, 3);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["checks"][0]["kind"], "timed-out");
    assert_eq!(doc["checks"][0]["status"], "unknown");
    assert!(doc["checks"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("max_time = 1 s"));
    assert_eq!(doc["checks"][1]["kind"], "bad-check");
    assert!(doc["checks"][1]["message"]
        .as_str()
        .unwrap_or("")
        .contains("follow = \"ask\""));
    holder.abort();
    kb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_top_level_key_spoils_the_file_and_names_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[defaults]\ntimeout = 5\n\n[[checks]]\ntarget = \"x\"\n",
    )
    .expect("write");
    let run = check(file.clone(), &[]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("line 4"), "{}", run.stderr);
    assert!(run.stderr.contains("checks"), "{}", run.stderr);
    let run = check(file, &["--format", "nagios"]).await;
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.starts_with("IMAPREF UNKNOWN - "),
        "{}",
        run.stdout
    );
}
