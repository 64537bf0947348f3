//! A real Dovecot lab for integration tests: two instances of Debian's `dovecot` (2.3.19 from
//! `dovecot-imapd`), "front" and "home", on loopback ephemeral ports.
//!
//! Every lab lives in its own temporary directory: configuration, passwd-file users, maildirs, TLS files,
//! `base_dir`, `state_dir` and logs. Nothing is read from or written to `/etc`, systemd is not involved, and
//! each `dovecot -F` master runs in a process group of its own, so several labs can run side by side (tests
//! inside one binary run in parallel). Dropping a [`DovecotLab`] sends SIGTERM to both process groups, waits
//! for the masters, and kills whatever is left.
//!
//! Every user has the password [`PASSWORD`]. Front's passdb, and what Dovecot 2.3.19 answers to
//! `a LOGIN <user> <PASSWORD>` on front (`<home>` is the home instance's port):
//!
//! | user | passdb extra fields | LOGIN answer |
//! | --- | --- | --- |
//! | `referred` | `nologin=y host=127.0.0.1 port=<home>` | `a NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:<home>/] Try this server instead.` |
//! | [`KB_USER`] | same | `a NO [REFERRAL imap://DOMname%2fUser1%2fAlias1;AUTH=PLAIN@127.0.0.1:<home>/] Try this server instead.` |
//! | `renamed` | same + `user=homeuser` | `a NO [REFERRAL imap://homeuser;AUTH=PLAIN@127.0.0.1:<home>/] Try this server instead.` |
//! | `moved` | same + `reason=`[`MOVED_REASON`] | `a NO [REFERRAL imap://moved;AUTH=PLAIN@127.0.0.1:<home>/] Your mailbox has moved, use the referred server.` |
//! | `port143` | `nologin=y host=127.0.0.1` (no port) | `a NO [REFERRAL imap://port143;AUTH=PLAIN@127.0.0.1/] Try this server instead.` |
//! | `hostref` | `nologin=y host=localhost port=<home>` | `a NO [REFERRAL imap://hostref;AUTH=PLAIN@localhost:<home>/] Try this server instead.` |
//! | `proxied` | `proxy=y host=127.0.0.1 port=<home>` | `a OK [CAPABILITY ...] Logged in` (front proxies to home's INBOX) |
//! | `stillhere` | `host=127.0.0.1 port=<home>`, no `nologin`, no `proxy` | `a OK [CAPABILITY ...] Logged in` on front: 2.3.19 sends no referral here |
//! | `local` | none (mailbox on front) | `a OK [CAPABILITY ...] Logged in` |
//! | `disabled` | `nologin=y reason=`[`DISABLED_REASON`] | `a NO [CONTACTADMIN] Account disabled on this server.` |
//! | `blocked` | `nologin=y` | `a NO [CONTACTADMIN] Login disabled for this user` |
//! | [`PINGPONG_USER`] | `nologin=y host=127.0.0.1 port=<home>`; home refers it back to front the same way | a referral loop, front → home → front |
//! | [`ReferTo`]'s user | `nologin=y host=<its host> port=<its port>`, with its own password | a referral to a server of the test's (the built-in lab) |
//! | any, wrong password | | `a NO [AUTHENTICATIONFAILED] Authentication failed.` (after about 0.5 s) |
//!
//! Home knows [`HOME_USERS`], all with plain logins. Each INBOX (home's users, and front's `local` and
//! `stillhere`) holds [`INBOX_MESSAGES`] message whose subject is [`welcome_subject`].
//!
//! When the `openssl` command is there (Debian's dovecot-core depends on it), the lab makes its own CA and a
//! server certificate for `localhost` and `127.0.0.1`: both instances then offer STARTTLS, front also has an
//! implicit-TLS port ([`DovecotLab::front_tls`]), and [`DovecotLab::ca_file`] is the CA to trust.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The one password of every user on both instances.
pub const PASSWORD: &str = "Dove-Secret-42";
/// The KB Q217388 style login name (`NTdomain/userID/alias`), known to front (referred) and home.
pub const KB_USER: &str = "DOMname/User1/Alias1";
/// [`KB_USER`] as Dovecot writes it in a referral URL (lower-case hex).
pub const KB_USER_IN_URL: &str = "DOMname%2fUser1%2fAlias1";
/// The `reason=` of front's user `moved`: Dovecot sends it as the text of the referral.
pub const MOVED_REASON: &str = "Your mailbox has moved, use the referred server.";
/// The `reason=` of front's user `disabled` (nologin without host).
pub const DISABLED_REASON: &str = "Account disabled on this server.";
/// Users that home accepts (all with [`PASSWORD`]); each has an INBOX with [`INBOX_MESSAGES`] message.
pub const HOME_USERS: [&str; 6] = [
    "referred",
    KB_USER,
    "homeuser",
    "moved",
    "proxied",
    "stillhere",
];
/// Referred from front to home, and from home back to front: a loop.
pub const PINGPONG_USER: &str = "pingpong";
/// An extra front user that Dovecot refers to a server of the test's own, with its own password (so that the server
/// it is referred to accepts the same credentials).
#[derive(Debug, Clone)]
pub struct ReferTo {
    /// The login name.
    pub user: String,
    /// Its password on front (and at the referred server).
    pub password: String,
    /// Where front refers it.
    pub to: SocketAddr,
}
/// Users whose mailbox is on front.
pub const FRONT_MAILBOX_USERS: [&str; 2] = ["local", "stillhere"];
/// Messages in every INBOX the lab creates.
pub const INBOX_MESSAGES: usize = 1;
/// How long [`DovecotLab::start`] waits for each instance's greeting.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Read and write timeout of [`RawImap`].
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const TERM_REPEAT: Duration = Duration::from_millis(300);
const ORPHAN_REAP_TIMEOUT: Duration = Duration::from_secs(2);
const START_ATTEMPTS: usize = 3;
const MOVED_REASON_ENV: &str = "IMAPREF_LAB_MOVED_REASON";
const DISABLED_REASON_ENV: &str = "IMAPREF_LAB_DISABLED_REASON";
const NOT_INSTALLED: &str = "Dovecot is not installed (no /usr/sbin/dovecot, no dovecot on PATH): \
     run scripts/test.sh, which installs dovecot-imapd";

/// The subject of the one message in `user`'s INBOX on `instance` (`"front"` or `"home"`).
pub fn welcome_subject(instance: &str, user: &str) -> String {
    format!("Welcome to the {instance} server, {user}")
}

/// Where Debian's `dovecot` binary is, if it is installed.
pub fn dovecot_binary() -> Option<PathBuf> {
    find_program("dovecot")
}

/// Two running Dovecot instances and their temporary directory; see the module documentation.
pub struct DovecotLab {
    /// Front's plain IMAP port (STARTTLS offered when [`Self::ca_file`] is set).
    pub front: SocketAddr,
    /// Front's implicit-TLS (imaps) port, when TLS is configured.
    pub front_tls: Option<SocketAddr>,
    /// Home's plain IMAP port, the target of front's referrals and proxying.
    pub home: SocketAddr,
    /// The PEM file of the lab's own CA, which signed both instances' certificate (`localhost`, `127.0.0.1`).
    pub ca_file: Option<PathBuf>,
    front_instance: Instance,
    home_instance: Instance,
    // Declared last, so the directory is removed only after both instances are stopped.
    dir: tempfile::TempDir,
}

impl DovecotLab {
    /// Starts front and home and waits until both greet. Panics when Dovecot is not installed (never skips),
    /// or when an instance does not come up within [`START_TIMEOUT`] (with its log in the message).
    pub fn start() -> DovecotLab {
        Self::start_referring(None)
    }

    /// [`DovecotLab::start`], with front referring one more user to a server of the test's.
    pub fn start_referring(extra: Option<ReferTo>) -> DovecotLab {
        Self::start_with(extra, false)
    }

    /// [`DovecotLab::start`] in Dovecot's "high-performance mode", as busy production servers run it: login
    /// processes serve many connections (`service_count = 0`) and `imap` processes are started ahead
    /// (`process_min_avail`), so a login costs no fork. The latency benchmark measures both configurations.
    pub fn start_high_performance() -> DovecotLab {
        Self::start_with(None, true)
    }

    fn start_with(extra: Option<ReferTo>, high_performance: bool) -> DovecotLab {
        let binary = dovecot_binary().unwrap_or_else(|| panic!("{NOT_INSTALLED}"));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match try_start(&binary, extra.as_ref(), high_performance) {
                Ok(lab) => return lab,
                // Another process took one of the ephemeral ports between picking and binding: pick again.
                Err(StartError::PortTaken(why)) => failures.push(why),
                Err(StartError::Fatal(why)) => panic!("{why}"),
            }
        }
        panic!(
            "Dovecot lab: no free ports after {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        )
    }

    /// The lab's temporary directory (`front/`, `home/`, `tls/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Front's log (Dovecot's log file, then what the master wrote to stdout/stderr).
    pub fn front_log(&self) -> String {
        self.front_instance.log()
    }

    /// Home's log (Dovecot's log file, then what the master wrote to stdout/stderr).
    pub fn home_log(&self) -> String {
        self.home_instance.log()
    }

    /// Both logs, labelled, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "--- front log ---\n{}--- home log ---\n{}",
            self.front_log(),
            self.home_log()
        )
    }

    /// Waits up to `timeout` until `needle` shows in either log (Dovecot writes its log through a separate
    /// process, so a line can come a little after the IMAP answer); `false` when it never does.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.front_log().contains(needle) || self.home_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PIDs of the front and home masters; each is also the ID of the process group holding all of that
    /// instance's processes (see [`processes_in_group`]).
    pub fn master_pids(&self) -> [u32; 2] {
        [self.front_instance.pgid, self.home_instance.pgid]
    }
}

impl Drop for DovecotLab {
    fn drop(&mut self) {
        // Signal both first so they shut down in parallel, then wait for each.
        self.front_instance.terminate();
        self.home_instance.terminate();
        self.front_instance.stop();
        self.home_instance.stop();
    }
}

/// One process of a process group, as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupProcess {
    /// Process ID.
    pub pid: u32,
    /// State letter from `/proc/PID/stat` (`R`, `S`, `Z` for a zombie, ...).
    pub state: char,
    /// Command name (`dovecot`, `imap-login`, `auth`, ...).
    pub name: String,
}

/// All processes whose process group is `pgid`, zombies included.
pub fn processes_in_group(pgid: u32) -> Vec<GroupProcess> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let _ppid = rest.next();
        if rest.next().and_then(|s| s.parse::<u32>().ok()) == Some(pgid) {
            found.push(GroupProcess {
                pid,
                state,
                name: stat[open + 1..close].to_string(),
            });
        }
    }
    found
}

/// A minimal IMAP client over a plain TCP stream for asserting exact server lines.
pub struct RawImap {
    reader: BufReader<TcpStream>,
    /// The server's greeting line (without CRLF).
    pub greeting: String,
}

impl RawImap {
    /// Connects and reads the greeting; panics on failure. Reads and writes time out after [`IO_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> RawImap {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set write timeout");
        let mut imap = RawImap {
            reader: BufReader::new(stream),
            greeting: String::new(),
        };
        imap.greeting = imap.read_line();
        imap
    }

    /// Sends `line` followed by CRLF.
    pub fn write_line(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| stream.flush())
            .unwrap_or_else(|e| panic!("send {line:?}: {e}"));
    }

    /// Reads one response line without its CRLF. A literal (`{n}` at the end of a line) is read and kept in
    /// the line as it came, and the line goes on after it. Panics when the server closes the connection.
    pub fn read_line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut chunk = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut chunk)
                .unwrap_or_else(|e| panic!("read from IMAP server: {e} (so far: {out:?})"));
            assert!(
                n > 0,
                "IMAP server closed the connection (so far: {:?})",
                String::from_utf8_lossy(&out)
            );
            if chunk.ends_with(b"\n") {
                chunk.pop();
                if chunk.ends_with(b"\r") {
                    chunk.pop();
                }
            }
            let literal = literal_size(&chunk);
            out.extend_from_slice(&chunk);
            match literal {
                Some(size) => {
                    out.extend_from_slice(b"\r\n");
                    let mut body = vec![0; size];
                    self.reader
                        .read_exact(&mut body)
                        .unwrap_or_else(|e| panic!("read {size}-byte literal: {e}"));
                    out.extend_from_slice(&body);
                }
                None => return String::from_utf8_lossy(&out).into_owned(),
            }
        }
    }

    /// Sends `tag command` and returns every line up to and including the tagged one.
    pub fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.write_line(&format!("{tag} {command}"));
        let prefix = format!("{tag} ");
        let mut lines = Vec::new();
        loop {
            let line = self.read_line();
            let done = line.starts_with(&prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Sends `tag command` and returns only the tagged line.
    pub fn tagged(&mut self, tag: &str, command: &str) -> String {
        self.command(tag, command)
            .pop()
            .expect("command() returns at least the tagged line")
    }

    /// `tag LOGIN user password`, with the user name sent as an atom (as the KB does) and the tagged line back.
    pub fn login(&mut self, tag: &str, user: &str, password: &str) -> String {
        self.tagged(tag, &format!("LOGIN {user} {password}"))
    }

    /// The underlying stream, e.g. to start TLS after `STARTTLS` (nothing may be buffered by then).
    pub fn into_stream(self) -> TcpStream {
        assert!(
            self.reader.buffer().is_empty(),
            "unread data after the last response"
        );
        self.reader.into_inner()
    }
}

/// `Some(n)` when an IMAP line ends with a literal announcement `{n}` or `{n+}`.
fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let line = line.strip_suffix(b"+").unwrap_or(line);
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

enum StartError {
    PortTaken(String),
    Fatal(String),
}

/// Who the Dovecot processes run as, and who owns the mail.
struct RunAs {
    root: bool,
    /// For default_internal_user / default_login_user when not root.
    user: String,
    /// For default_internal_group when not root.
    group: String,
    mail_uid: u32,
    mail_gid: u32,
}

struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// What one instance's configuration needs.
struct Spec<'a> {
    name: &'static str,
    dir: PathBuf,
    imap_port: u16,
    /// 0: no imaps listener.
    imaps_port: u16,
    tls: Option<&'a Tls>,
    run_as: &'a RunAs,
    /// Dovecot's high-performance mode (see [`DovecotLab::start_high_performance`]).
    high_performance: bool,
}

fn try_start(
    binary: &Path,
    extra: Option<&ReferTo>,
    high_performance: bool,
) -> Result<DovecotLab, StartError> {
    let dir = lab_tempdir();
    let run_as = run_as(dir.path());
    if run_as.root {
        // Dovecot's unprivileged processes (auth, imap as the mail user) must reach the files inside.
        set_mode(dir.path(), 0o755);
    }
    let tls = make_tls(dir.path());
    let [home_port, front_port, front_tls_port] = free_ports();
    let front_tls_port = if tls.is_some() { front_tls_port } else { 0 };

    let home = Spec {
        high_performance,
        name: "home",
        dir: dir.path().join("home"),
        imap_port: home_port,
        imaps_port: 0,
        tls: tls.as_ref(),
        run_as: &run_as,
    };
    let front = Spec {
        high_performance,
        name: "front",
        dir: dir.path().join("front"),
        imap_port: front_port,
        imaps_port: front_tls_port,
        tls: tls.as_ref(),
        run_as: &run_as,
    };
    write_instance(&home, &home_users(&home, front_port));
    let mut front_passwd = front_users(&front, home_port);
    if let Some(r) = extra {
        front_passwd.push_str(&format!(
            "{}:{{PLAIN}}{}::::::nologin=y host={} port={}\n",
            r.user,
            r.password,
            r.to.ip(),
            r.to.port()
        ));
    }
    write_instance(&front, &front_passwd);

    // Both masters start at once; each Instance kills its process group if anything below panics or fails.
    let mut home_instance = Instance::spawn(binary, &home)?;
    let mut front_instance = Instance::spawn(binary, &front)?;
    let deadline = Instant::now() + START_TIMEOUT;
    home_instance.wait_ready(loopback(home_port), deadline)?;
    front_instance.wait_ready(loopback(front_port), deadline)?;

    Ok(DovecotLab {
        front: loopback(front_port),
        front_tls: (front_tls_port != 0).then(|| loopback(front_tls_port)),
        home: loopback(home_port),
        ca_file: tls.map(|t| t.ca),
        front_instance,
        home_instance,
        dir,
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A fresh temporary directory with a short path: Dovecot's UNIX sockets live under it (108-byte limit).
fn lab_tempdir() -> tempfile::TempDir {
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 40 {
        base = PathBuf::from("/tmp");
    }
    tempfile::Builder::new()
        .prefix("imapref-dovecot-")
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("create a temporary directory in {}: {e}", base.display()))
}

/// Three distinct free loopback ports (bound at once, then released for Dovecot to take).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    [
        port(&listeners[0]),
        port(&listeners[1]),
        port(&listeners[2]),
    ]
}

fn run_as(probe: &Path) -> RunAs {
    let meta = fs::metadata(probe).expect("stat the lab directory");
    if meta.uid() == 0 {
        // As root, keep Debian's defaults (dovecot / dovenull) and let the mail belong to the dovecot user:
        // Dovecot refuses UID 0 for mail.
        let uid = id_number(&["-u", "dovecot"]);
        let gid = id_number(&["-g", "dovecot"]);
        RunAs {
            root: true,
            user: "dovecot".into(),
            group: "dovecot".into(),
            mail_uid: uid,
            mail_gid: gid,
        }
    } else {
        // Not root: every Dovecot process runs as the current user.
        RunAs {
            root: false,
            user: id_text(&["-un"]),
            group: id_text(&["-gn"]),
            mail_uid: meta.uid(),
            mail_gid: meta.gid(),
        }
    }
}

fn id_text(args: &[&str]) -> String {
    let out = Command::new("id")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run id {args:?}: {e}"));
    assert!(
        out.status.success(),
        "id {args:?} failed ({}): {} (is dovecot-imapd installed? run scripts/test.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn id_number(args: &[&str]) -> u32 {
    let text = id_text(args);
    text.parse()
        .unwrap_or_else(|e| panic!("id {args:?} printed {text:?}: {e}"))
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A CA and a server certificate (EC P-256, SAN `localhost` and `127.0.0.1`) made with the `openssl` command;
/// `None` (TLS off) when there is no `openssl`.
fn make_tls(lab: &Path) -> Option<Tls> {
    let openssl = find_program("openssl")?;
    let dir = lab.join("tls");
    fs::create_dir_all(&dir).expect("create tls directory");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "7",
            "-subj",
            "/CN=imapref Dovecot lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[
        &["req", "-new"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    fs::write(
        dir.join("server.ext"),
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n",
    )
    .expect("write server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "2",
        "-days",
        "7",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    Some(Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    })
}

/// One passwd-file line: `user:{PLAIN}password:uid:gid:gecos:home:shell:extra fields`. UID and GID stay
/// empty (`mail_uid` / `mail_gid` apply); `home` is empty for users who never log in here.
fn passwd_line(user: &str, home: Option<&Path>, extra: &str) -> String {
    let home = home.map(|h| h.display().to_string()).unwrap_or_default();
    format!("{user}:{{PLAIN}}{PASSWORD}::::{home}::{extra}\n")
}

fn front_users(spec: &Spec, home_port: u16) -> String {
    let at_home = format!("host=127.0.0.1 port={home_port}");
    let mut users = String::new();
    for (user, extra) in [
        ("referred", format!("nologin=y {at_home}")),
        (KB_USER, format!("nologin=y {at_home}")),
        ("renamed", format!("nologin=y {at_home} user=homeuser")),
        // passwd-file splits extra fields at spaces: the reason comes from the environment instead.
        (
            "moved",
            format!("nologin=y {at_home} reason=%{{env:{MOVED_REASON_ENV}}}"),
        ),
        ("port143", "nologin=y host=127.0.0.1".to_string()),
        (
            "hostref",
            format!("nologin=y host=localhost port={home_port}"),
        ),
        ("proxied", format!("proxy=y {at_home}")),
        (
            "disabled",
            format!("nologin=y reason=%{{env:{DISABLED_REASON_ENV}}}"),
        ),
        ("blocked", "nologin=y".to_string()),
        (PINGPONG_USER, format!("nologin=y {at_home}")),
    ] {
        users.push_str(&passwd_line(user, None, &extra));
    }
    let stillhere = write_mailbox(spec, "stillhere");
    users.push_str(&passwd_line("stillhere", Some(&stillhere), &at_home));
    let local = write_mailbox(spec, "local");
    users.push_str(&passwd_line("local", Some(&local), ""));
    users
}

fn home_users(spec: &Spec, front_port: u16) -> String {
    let mut users: String = HOME_USERS
        .iter()
        .map(|user| passwd_line(user, Some(&write_mailbox(spec, user)), ""))
        .collect();
    users.push_str(&passwd_line(
        PINGPONG_USER,
        None,
        &format!("nologin=y host=127.0.0.1 port={front_port}"),
    ));
    users
}

/// Creates `user`'s home with `Maildir/` holding one new message; returns the home directory.
fn write_mailbox(spec: &Spec, user: &str) -> PathBuf {
    // User names may hold '/' (the KB form): the directory name keeps only safe characters.
    let safe: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let home = spec.dir.join("mail").join(safe);
    let maildir = home.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("create maildir");
    }
    let message = format!(
        "From: imapref lab <lab@imapref.test>\n\
         To: {user} <user@imapref.test>\n\
         Subject: {subject}\n\
         Date: Wed, 01 Jan 2025 00:00:00 +0000\n\
         Message-ID: <welcome.{name}@imapref.test>\n\
         \n\
         This INBOX lives on the {name} Dovecot of the imapref test lab.\n",
        subject = welcome_subject(spec.name, user),
        name = spec.name,
    );
    fs::write(
        maildir.join("new").join("1735689600.M1P1.imapref-lab"),
        message,
    )
    .expect("write message");
    home
}

fn write_instance(spec: &Spec, users: &str) {
    fs::create_dir_all(&spec.dir).expect("create instance directory");
    fs::write(spec.dir.join("users"), users).expect("write users");
    fs::write(spec.dir.join("dovecot.conf"), dovecot_conf(spec)).expect("write dovecot.conf");
    if spec.run_as.root {
        chown_tree(
            &spec.dir.join("mail"),
            spec.run_as.mail_uid,
            spec.run_as.mail_gid,
        );
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() {
        for entry in fs::read_dir(path).expect("read mail directory") {
            chown_tree(&entry.expect("directory entry").path(), uid, gid);
        }
    }
}

fn dovecot_conf(spec: &Spec) -> String {
    let dir = spec.dir.display();
    let run_as = spec.run_as;
    let ssl = match spec.tls {
        Some(tls) => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\n",
            tls.cert.display(),
            tls.key.display()
        ),
        None => "ssl = no\n".to_string(),
    };
    let (identity, unprivileged) = if run_as.root {
        (String::new(), String::new())
    } else {
        let services: String = [
            "imap-login",
            "imap-urlauth-login",
            "anvil",
            "ipc",
            "old-stats",
            "aggregator",
            "director",
        ]
        .iter()
        .map(|service| format!("service {service} {{\n  chroot =\n}}\n"))
        .collect();
        (
            format!(
                "default_internal_user = {user}\ndefault_internal_group = {group}\n\
                 default_login_user = {user}\n",
                user = run_as.user,
                group = run_as.group
            ),
            format!(
                "# Not root: every process runs as the current user, and chroot needs root.\n\
                 service auth-worker {{\n  user = $default_internal_user\n}}\n{services}"
            ),
        )
    };
    format!(
        "# Dovecot lab instance \"{name}\", written by tests/support/dovecot.rs; nothing comes from /etc.\n\
         protocols = imap\n\
         listen = 127.0.0.1\n\
         base_dir = {dir}/run\n\
         state_dir = {dir}/state\n\
         instance_name = imapref-lab-{name}\n\
         log_path = {dir}/dovecot.log\n\
         info_log_path = {dir}/dovecot.log\n\
         debug_log_path = {dir}/dovecot.log\n\
         import_environment = TZ {MOVED_REASON_ENV} {DISABLED_REASON_ENV}\n\
         {identity}\
         first_valid_uid = {uid}\n\
         first_valid_gid = {gid}\n\
         mail_uid = {uid}\n\
         mail_gid = {gid}\n\
         mail_location = maildir:~/Maildir\n\
         disable_plaintext_auth = no\n\
         auth_mechanisms = plain login\n\
         # Keep user names as typed: '/' allowed (KB form), no lower-casing.\n\
         auth_username_chars =\n\
         auth_username_format = %u\n\
         auth_failure_delay = 0\n\
         auth_verbose = yes\n\
         {ssl}\
         passdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
         service imap-login {{\n\
         {login_tuning}\
         \x20 inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n\
         \x20 inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n\
         }}\n\
         # mode 0: no anvil-auth-penalty socket, so auth adds no growing per-IP delay after failed logins.\n\
         service anvil {{\n\
         \x20 unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n\
         }}\n\
         {imap_tuning}\
         {unprivileged}",
        login_tuning = if spec.high_performance {
            "  service_count = 0\n  process_min_avail = 1\n"
        } else {
            ""
        },
        imap_tuning = if spec.high_performance {
            "service imap {\n  process_min_avail = 2\n}\n"
        } else {
            ""
        },
        name = spec.name,
        uid = run_as.mail_uid,
        gid = run_as.mail_gid,
        imap = spec.imap_port,
        imaps = spec.imaps_port,
    )
}

/// One `dovecot -F` master, leader of its own process group.
struct Instance {
    name: &'static str,
    dir: PathBuf,
    child: Child,
    pgid: u32,
    /// SIGTERM sent to the group.
    terminated: bool,
    /// The master has been waited for: from then on its PID (and group ID) may belong to someone else.
    reaped: bool,
    stopped: bool,
}

impl Instance {
    fn spawn(binary: &Path, spec: &Spec) -> Result<Instance, StartError> {
        let output = fs::File::create(spec.dir.join("stderr.log")).expect("create stderr.log");
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(spec.dir.join("dovecot.conf"))
            .env(MOVED_REASON_ENV, MOVED_REASON)
            .env(DISABLED_REASON_ENV, DISABLED_REASON)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone stderr.log handle"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .map_err(|e| StartError::Fatal(format!("start {}: {e}", binary.display())))?;
        Ok(Instance {
            name: spec.name,
            dir: spec.dir.clone(),
            pgid: child.id(),
            child,
            terminated: false,
            reaped: false,
            stopped: false,
        })
    }

    /// Waits for the master's pid file (written after its listeners are bound) and then a `* OK` greeting.
    fn wait_ready(&mut self, addr: SocketAddr, deadline: Instant) -> Result<(), StartError> {
        let pid_file = self.dir.join("run").join("master.pid");
        loop {
            if let Some(status) = self.child.try_wait().expect("poll dovecot master") {
                self.reaped = true;
                let log = self.log();
                let why = format!(
                    "Dovecot {} ({addr}) exited during start-up ({status}):\n{log}",
                    self.name
                );
                return Err(if log.contains("Address already in use") {
                    StartError::PortTaken(why)
                } else {
                    StartError::Fatal(why)
                });
            }
            if pid_file.exists() {
                if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    stream
                        .set_read_timeout(Some(left.max(Duration::from_millis(100))))
                        .expect("set read timeout");
                    let mut greeting = String::new();
                    let read = BufReader::new(stream).read_line(&mut greeting);
                    if read.is_ok() && greeting.starts_with("* OK") {
                        return Ok(());
                    }
                    return Err(StartError::Fatal(format!(
                        "Dovecot {} ({addr}) did not greet with * OK ({read:?}, {greeting:?}):\n{}",
                        self.name,
                        self.log()
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(StartError::Fatal(format!(
                    "Dovecot {} ({addr}) did not greet within {START_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        let read = |file: &str| fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        format!("{}{}", read("dovecot.log"), read("stderr.log"))
    }

    /// Sends `signal` to the whole process group. Only while the master is not reaped: until then its PID,
    /// and so the group ID, cannot be reused by an unrelated process.
    fn signal_group(&self, signal: &str) {
        signal_pids(signal, &[format!("-{}", self.pgid)]);
    }

    /// SIGTERM to every process of the instance at once: each exits at once, and the master reaps them.
    fn terminate(&mut self) {
        if !self.reaped && !self.terminated {
            self.terminated = true;
            self.signal_group("TERM");
        }
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if !self.reaped {
            self.terminate();
            let started = Instant::now();
            let mut resent = started;
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                        // A signal that hits a child between fork and exec is lost, and the master then waits
                        // for that child forever: say it again.
                        if resent.elapsed() >= TERM_REPEAT {
                            resent = Instant::now();
                            self.signal_group("TERM");
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    _ => {
                        self.signal_group("KILL");
                        let _ = self.child.wait();
                        break;
                    }
                }
            }
            self.reaped = true;
        }
        // A child that outlived the master would be left to init: kill it by PID (the group ID may be gone).
        let left: Vec<String> = processes_in_group(self.pgid)
            .into_iter()
            .filter(|p| p.state != 'Z')
            .map(|p| p.pid.to_string())
            .collect();
        if !left.is_empty() {
            signal_pids("KILL", &left);
        }
        // Children that died after the master are zombies until PID 1 reaps them (at once under a usual init,
        // up to a second in some sandboxes): wait a little, so no process of the group is visible after stop.
        let deadline = Instant::now() + ORPHAN_REAP_TIMEOUT;
        while !processes_in_group(self.pgid).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kill -s SIGNAL -- TARGETS` through `/bin/sh` (the shell's builtin; no libc binding needed).
fn signal_pids(signal: &str, targets: &[String]) {
    let script = format!("kill -s {signal} -- {} 2>/dev/null", targets.join(" "));
    let _ = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .status();
}
