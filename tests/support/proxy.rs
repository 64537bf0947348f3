//! `imapref proxy` as a child process for tests: started on `127.0.0.1:0` with `--log json`, its address read from
//! the first log line (`"event":"listening"`), every later line collected by a thread. Dropping it kills the child.
//! Also the two clients the issue names, which must be installed (tests fail, never skip, without them): curl and
//! Python's imaplib.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `imapref proxy`.
pub struct ProxyProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl ProxyProcess {
    /// Starts `imapref proxy --listen 127.0.0.1:0 --log json ARGS...` and waits (10 s at most) for its listening line.
    pub fn start(args: &[&str]) -> ProxyProcess {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("imapref"))
            .args(["proxy", "--listen", "127.0.0.1:0", "--log", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("imapref proxy starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("log lock").push(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let errors = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            errors.lock().expect("stderr lock").push_str(&text);
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let first = stdout.lock().expect("log lock").first().cloned();
            if let Some(first) = first {
                let v: Value = serde_json::from_str(&first)
                    .unwrap_or_else(|e| panic!("first log line is not JSON ({e}): {first}"));
                assert_eq!(v["event"], "listening", "{first}");
                break v["listen"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("no address in {first}"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "imapref proxy exited ({status}): {}",
                    stderr.lock().expect("stderr lock")
                );
            }
            assert!(Instant::now() < deadline, "imapref proxy did not start");
            thread::sleep(Duration::from_millis(20));
        };
        ProxyProcess {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    /// Sends SIGTERM and waits (10 s at most) for the exit; the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "imapref proxy did not stop on SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything it wrote so far, standard output then standard error.
    pub fn all_output(&self) -> String {
        let mut text = self.stdout.lock().expect("log lock").join("\n");
        text.push('\n');
        text.push_str(&self.stderr.lock().expect("stderr lock"));
        text
    }

    /// Waits (10 s at most) until `n` session lines are logged, and returns them all.
    pub fn sessions(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sessions: Vec<Value> = self
                .stdout
                .lock()
                .expect("log lock")
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["event"] == "session")
                .collect();
            if sessions.len() >= n {
                return sessions;
            }
            assert!(
                Instant::now() < deadline,
                "{} session lines logged, {n} expected:\n{}",
                sessions.len(),
                self.all_output()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl; panics when curl is not installed.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl must be installed for the proxy tests: {e}"))
}

/// Runs a Python 3 script with `args`; panics when python3 is not installed.
pub fn python(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 must be installed for the proxy tests: {e}"))
}

/// Python's imaplib through the proxy: optional STARTTLS (trusting `ca`), LOGIN, SELECT INBOX, FETCH 1's subject,
/// LOGOUT; prints `select=<status> <count>` and `subject=<header>` lines.
pub const IMAPLIB_SESSION: &str = r#"
import imaplib, ssl, sys
port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port)
if ca:
    m.starttls(ssl.create_default_context(cafile=ca))
typ, data = m.login(user, password)
print("login=" + typ)
typ, data = m.select("INBOX")
print("select=%s %s" % (typ, data[0].decode()))
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("subject=" + data[0][1].decode().strip())
m.logout()
"#;

/// Runs [`IMAPLIB_SESSION`]; `ca` empty for no STARTTLS.
pub fn imaplib_session(port: u16, user: &str, password: &str, ca: Option<&Path>) -> Output {
    let port = port.to_string();
    let ca = ca.map(|p| p.display().to_string()).unwrap_or_default();
    python(IMAPLIB_SESSION, &[&port, user, password, &ca])
}
