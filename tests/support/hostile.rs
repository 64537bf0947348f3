//! A scripted hostile IMAP server for the hostile corpus (issue 9): in-process, on 127.0.0.1 with an ephemeral port,
//! one thread per connection, stopped (and every thread joined) when the [`Hostile`] value is dropped.
//!
//! Each [`Behaviour`] is one way a broken or malicious server treats a client: a greeting that never comes or drips,
//! endless lines and huge literals, malformed REFERRALs, referral chains and loops, plaintext after STARTTLS, floods of
//! untagged lines or continuation requests, an echoed password, ... Behaviours that need other servers (referrals,
//! chains) take their URLs as parameters. Everything the clients send is recorded, so a test can assert that a server
//! never received LOGIN or AUTHENTICATE ([`Hostile::got_credentials`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked reads, sleeps and the accept loop look at the stop flag.
const TICK: Duration = Duration::from_millis(25);
/// The longest line a hostile server reads from a client (clients send short commands).
const MAX_CLIENT_LINE: usize = 64 * 1024;
/// How long a behaviour that "never" does something keeps at it, so that a server thread always ends.
const FOREVER: Duration = Duration::from_secs(120);

/// The capabilities a hostile server advertises unless its behaviour says otherwise: no AUTH=PLAIN, so the probe
/// sends LOGIN.
pub const CAPS: &str = "IMAP4rev1 LOGIN-REFERRALS MAILBOX-REFERRALS";

/// One way of treating a client. See the module doc; the corpus test names each one.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Behaves well: greeting, LOGIN OK, SELECT OK, LOGOUT.
    Normal,
    /// Accepts and never sends a byte.
    SilentGreeting,
    /// Sends a greeting without its CRLF, then nothing.
    GreetingWithoutCrlf,
    /// Sends the greeting one byte every 0.5 s, forever.
    GreetingDrip,
    /// Sends HTTP instead of IMAP.
    GarbageGreeting,
    /// Sends a TLS record where the greeting should be.
    TlsRecordGreeting,
    /// A greeting that is `bytes` (then behaves well).
    Greeting(Vec<u8>),
    /// A 10 MB greeting line (with its CRLF).
    TenMegabyteLine,
    /// Announces a literal of `size` (as written, e.g. `9223372036854775808`) in the greeting.
    HugeLiteral(String),
    /// Answers LOGIN with a FETCH literal shorter than announced, then closes.
    ShortLiteralThenClose,
    /// Answers SELECT with `* 1 FETCH (BODY[] {1073741824}` and streams 1 GiB of data.
    GibFetchLiteral,
    /// Answers every command with OK, and `FETCH` with a 1 GiB literal: for the shell.
    ShellGibFetch,
    /// Answers LOGIN with the given line (`{tag}` replaced), then behaves well.
    LoginAnswer(String),
    /// Answers SELECT with the given lines (`{tag}` replaced), then behaves well.
    SelectAnswer(String),
    /// Answers SELECT with an EXISTS and a BYE, then resets.
    ByeMidSelect,
    /// Sends half a tagged answer to LOGIN, then resets the connection.
    ResetMidLine,
    /// Greets, then never reads again.
    NeverReads,
    /// Answers STARTTLS with OK and a plaintext line in the same packet.
    StarttlsInjectSamePacket,
    /// Answers STARTTLS with OK, then sends plaintext 0.3 s later instead of a TLS handshake.
    StarttlsInjectLater,
    /// Answers LOGIN with another tag, then stays silent.
    WrongTag,
    /// Sends `count` untagged `* OK` lines before the tagged OK of LOGIN.
    UntaggedFlood(usize),
    /// Sends `count` `* n EXISTS` lines during SELECT.
    ExistsFlood(usize),
    /// Answers LOGIN with `+ ` lines, forever.
    ContinuationFlood,
    /// After LOGIN, sends one whole untagged line every 0.5 s, forever.
    SlowDripAfterLogin,
    /// After LOGIN, sends a wrong-tag line every second, forever.
    WrongTagEverySecond,
    /// Accepts, greets after `delay`, then behaves well.
    LateGreeting(Duration),
    /// Answers CAPABILITY with `count` capabilities on one line.
    CapabilityFlood(usize),
    /// Serves TLS (implicit, port 993 style) with the given certificate chain and key PEM, then answers LOGIN with
    /// the given line.
    Tls {
        /// Certificate chain PEM.
        cert: String,
        /// PKCS#8 key PEM.
        key: String,
        /// The answer to LOGIN (`{tag}` replaced).
        login: String,
    },
    /// A PREAUTH greeting.
    Preauth,
}

/// A hostile server on 127.0.0.1.
pub struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// A bound port that plays nothing yet: for behaviours that name their own address or a peer's (a referral to
/// itself, A -> B -> A).
pub struct Bound {
    listener: TcpListener,
}

impl Bound {
    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Starts playing `behaviour` on this port.
    pub fn play(self, behaviour: Behaviour) -> Hostile {
        Hostile::serve(self.listener, behaviour)
    }
}

impl Hostile {
    /// Binds 127.0.0.1 on an ephemeral port, to start a behaviour that needs the port first.
    pub fn bind() -> Bound {
        Bound {
            listener: TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"),
        }
    }

    /// Starts a server playing `behaviour` on every connection.
    pub fn start(behaviour: Behaviour) -> Hostile {
        Hostile::bind().play(behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> Hostile {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, r, c) = (stop.clone(), received.clone(), connections.clone());
        let thread = std::thread::Builder::new()
            .name("hostile-accept".into())
            .spawn(move || accept_loop(listener, behaviour, s, r, c))
            .expect("spawn the accept thread");
        Hostile {
            addr,
            stop,
            received,
            connections,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `imap://user@127.0.0.1:PORT/`.
    pub fn url(&self, user: &str) -> String {
        format!("imap://{user}@{}/", self.addr)
    }

    /// Everything clients sent, all connections together.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// True when a client sent LOGIN or AUTHENTICATE (as a command word).
    pub fn got_credentials(&self) -> bool {
        let text = String::from_utf8_lossy(&self.received()).to_ascii_uppercase();
        text.lines().any(|l| {
            let mut w = l.split_ascii_whitespace();
            let (a, b) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            [a, b].iter().any(|x| *x == "LOGIN" || *x == "AUTHENTICATE")
        })
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    behaviour: Behaviour,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((socket, _)) => {
                connections.fetch_add(1, Ordering::SeqCst);
                let _ = socket.set_nonblocking(false);
                let _ = socket.set_read_timeout(Some(TICK));
                let _ = socket.set_nodelay(true);
                let conn = Conn {
                    socket: Some(socket),
                    tls: None,
                    buf: Vec::new(),
                    stop: stop.clone(),
                    received: received.clone(),
                };
                let b = behaviour.clone();
                if let Ok(w) = std::thread::Builder::new()
                    .name("hostile-conn".into())
                    .spawn(move || play(b, conn))
                {
                    workers.push(w);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// A command a client sent.
pub struct Cmd {
    /// Its tag.
    pub tag: String,
    /// Its name, upper-cased.
    pub name: String,
}

/// One accepted connection, with helpers for scripts.
pub struct Conn {
    socket: Option<TcpStream>,
    tls: Option<native_tls::TlsStream<TcpStream>>,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Conn {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Writes all of `bytes`; false when the client is gone or the server stops.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        if self.stopped() {
            return false;
        }
        let result = match (&mut self.tls, &mut self.socket) {
            (Some(t), _) => t.write_all(bytes).and_then(|()| t.flush()),
            (None, Some(s)) => s.write_all(bytes),
            _ => return false,
        };
        result.is_ok()
    }

    /// Sleeps, looking at the stop flag; false when the server stops.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(TICK.min(end.saturating_duration_since(Instant::now())));
        }
        !self.stopped()
    }

    fn read_some(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 4096];
        loop {
            if self.stopped() {
                return None;
            }
            let r = match (&mut self.tls, &mut self.socket) {
                (Some(t), _) => t.read(&mut chunk),
                (None, Some(s)) => s.read(&mut chunk),
                _ => return None,
            };
            match r {
                Ok(0) => return None,
                Ok(n) => {
                    if let Ok(mut log) = self.received.lock() {
                        log.extend_from_slice(&chunk[..n]);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Some(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// The next line a client sent (without CRLF), answering `+` to synchronizing literals and keeping their data on
    /// the line. `None` when the client is gone.
    pub fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            while !self.buf.contains(&b'\n') {
                if self.buf.len() > MAX_CLIENT_LINE {
                    return None;
                }
                self.read_some()?;
            }
            let at = self.buf.iter().position(|&b| b == b'\n')?;
            let mut piece: Vec<u8> = self.buf.drain(..=at).collect();
            while matches!(piece.last(), Some(b'\n' | b'\r')) {
                piece.pop();
            }
            // A literal marker at the end: its data follows.
            let literal = literal_size(&piece);
            line.extend_from_slice(&piece);
            match literal {
                Some((n, sync)) => {
                    if sync && !self.send(b"+ go ahead\r\n") {
                        return None;
                    }
                    while self.buf.len() < n {
                        self.read_some()?;
                    }
                    line.extend(self.buf.drain(..n));
                }
                None => return Some(String::from_utf8_lossy(&line).into_owned()),
            }
        }
    }

    /// The next command.
    pub fn command(&mut self) -> Option<Cmd> {
        let line = self.line()?;
        let mut w = line.split_ascii_whitespace();
        Some(Cmd {
            tag: w.next().unwrap_or("*").to_string(),
            name: w.next().unwrap_or("").to_ascii_uppercase(),
        })
    }

    /// Answers commands as a good server would until one named in `names` comes; returns it.
    pub fn until(&mut self, names: &[&str]) -> Option<Cmd> {
        loop {
            let cmd = self.command()?;
            if names.contains(&cmd.name.as_str()) {
                return Some(cmd);
            }
            if !self.answer(&cmd) {
                return None;
            }
        }
    }

    /// A good server's answer to one command; false when the connection should end.
    pub fn answer(&mut self, cmd: &Cmd) -> bool {
        let t = &cmd.tag;
        let reply = match cmd.name.as_str() {
            "CAPABILITY" => format!("* CAPABILITY {CAPS}\r\n{t} OK CAPABILITY completed\r\n"),
            "LOGIN" => format!("{t} OK LOGIN completed\r\n"),
            "AUTHENTICATE" => format!("{t} NO AUTHENTICATE is not offered here\r\n"),
            "SELECT" | "EXAMINE" => format!(
                "* FLAGS (\\Seen)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] x\r\n{t} OK [READ-WRITE] done\r\n"
            ),
            "LIST" | "RLIST" | "LSUB" | "RLSUB" => {
                format!("* LIST () \"/\" INBOX\r\n{t} OK LIST completed\r\n")
            }
            "LOGOUT" => {
                let _ = self.send(format!("* BYE bye\r\n{t} OK LOGOUT completed\r\n").as_bytes());
                return false;
            }
            "STARTTLS" => format!("{t} NO no TLS here\r\n"),
            "" => return true,
            _ => format!("{t} OK done\r\n"),
        };
        self.send(reply.as_bytes())
    }

    /// Answers everything as a good server would, until the client leaves.
    pub fn serve(&mut self) {
        while let Some(cmd) = self.command() {
            if !self.answer(&cmd) {
                return;
            }
        }
    }

    /// Greets as a good server would.
    pub fn greet(&mut self) -> bool {
        self.send(format!("* OK [CAPABILITY {CAPS}] hostile IMAP server ready\r\n").as_bytes())
    }

    /// Holds the connection open, doing nothing, until the server stops or [`FOREVER`] passes.
    pub fn hold(&self) {
        let _ = self.sleep(FOREVER);
    }

    /// Resets the connection (RST rather than FIN).
    pub fn reset(&mut self) {
        if let Some(s) = self.socket.take() {
            // SO_LINGER 0: close sends RST (std's set_linger is not stable yet).
            let s = socket2::Socket::from(s);
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
    }

    fn close(&mut self) {
        if let Some(s) = &self.socket {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn literal_size(line: &[u8]) -> Option<(usize, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let marker = &inner[open + 1..];
    let digits = marker.strip_suffix(b"+").unwrap_or(marker);
    let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n.min(MAX_CLIENT_LINE), digits.len() == marker.len()))
}

/// Streams `total` bytes of `x` in 64 KiB pieces; false when the client is gone.
fn stream(conn: &mut Conn, total: u64) -> bool {
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if !conn.send(&chunk[..n]) {
            return false;
        }
        left -= n as u64;
    }
    true
}

fn tagged(template: &str, tag: &str) -> String {
    template.replace("{tag}", tag)
}

fn play(behaviour: Behaviour, mut c: Conn) {
    use Behaviour as B;
    match behaviour {
        B::Normal => {
            if c.greet() {
                c.serve();
            }
        }
        B::SilentGreeting => c.hold(),
        B::GreetingWithoutCrlf => {
            c.send(b"* OK hostile IMAP server ready");
            c.hold();
        }
        B::GreetingDrip => {
            let greeting = b"* OK hostile IMAP server ready, one byte at a time ";
            for &b in greeting.iter().cycle() {
                if !c.send(&[b]) || !c.sleep(Duration::from_millis(500)) {
                    return;
                }
            }
        }
        B::GarbageGreeting => {
            c.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            c.hold();
        }
        B::TlsRecordGreeting => {
            c.send(b"\x16\x03\x01\x00\x2a\x02\x00\x00\x26\x03\x03");
            c.hold();
        }
        B::Greeting(bytes) => {
            if c.send(&bytes) {
                c.serve();
            }
        }
        B::TenMegabyteLine => {
            let mut line = b"* OK ".to_vec();
            line.resize(10 * 1024 * 1024, b'x');
            line.extend_from_slice(b"\r\n");
            if c.send(&line) {
                c.serve();
            }
        }
        B::HugeLiteral(size) => {
            if c.send(format!("* OK [CAPABILITY {CAPS}] {{{size}}}\r\n").as_bytes()) {
                let _ = stream(&mut c, 1024 * 1024);
                c.hold();
            }
        }
        B::ShortLiteralThenClose => {
            if c.greet() {
                if let Some(cmd) = c.until(&["LOGIN"]) {
                    c.send(b"* 1 FETCH (BODY[] {100}\r\nonly twenty bytes...");
                    let _ = cmd;
                    c.close();
                }
            }
        }
        B::GibFetchLiteral => {
            if c.greet() && c.until(&["SELECT", "EXAMINE"]).is_some() {
                c.send(b"* 1 FETCH (BODY[] {1073741824}\r\n");
                let _ = stream(&mut c, 1 << 30);
                c.hold();
            }
        }
        B::ShellGibFetch => {
            if !c.greet() {
                return;
            }
            while let Some(cmd) = c.command() {
                if cmd.name == "FETCH" || cmd.name == "UID" {
                    if !c.send(b"* 1 FETCH (BODY[] {1073741824}\r\n") || !stream(&mut c, 1 << 30) {
                        return;
                    }
                    c.send(format!(")\r\n{} OK FETCH completed\r\n", cmd.tag).as_bytes());
                } else if !c.answer(&cmd) {
                    return;
                }
            }
        }
        B::LoginAnswer(answer) => {
            if c.greet() {
                if let Some(cmd) = c.until(&["LOGIN"]) {
                    if c.send(tagged(&answer, &cmd.tag).as_bytes()) {
                        c.serve();
                    }
                }
            }
        }
        B::SelectAnswer(answer) => {
            if c.greet() {
                if let Some(cmd) = c.until(&["SELECT", "EXAMINE"]) {
                    if c.send(tagged(&answer, &cmd.tag).as_bytes()) {
                        c.serve();
                    }
                }
            }
        }
        B::ByeMidSelect => {
            if c.greet() && c.until(&["SELECT", "EXAMINE"]).is_some() {
                c.send(b"* FLAGS (\\Seen)\r\n* 3 EXISTS\r\n* BYE server shutting down\r\n");
                c.sleep(Duration::from_millis(50));
                c.reset();
            }
        }
        B::ResetMidLine => {
            if c.greet() {
                if let Some(cmd) = c.until(&["LOGIN"]) {
                    c.send(format!("{} OK LOG", cmd.tag).as_bytes());
                    c.sleep(Duration::from_millis(50));
                    c.reset();
                }
            }
        }
        B::NeverReads => {
            c.greet();
            c.hold();
        }
        B::StarttlsInjectSamePacket => {
            if c.send(format!("* OK [CAPABILITY {CAPS} STARTTLS] ready\r\n").as_bytes()) {
                if let Some(cmd) = c.until(&["STARTTLS"]) {
                    c.send(
                        format!("{} OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n", cmd.tag)
                            .as_bytes(),
                    );
                    c.hold();
                }
            }
        }
        B::StarttlsInjectLater => {
            if c.send(format!("* OK [CAPABILITY {CAPS} STARTTLS] ready\r\n").as_bytes()) {
                if let Some(cmd) = c.until(&["STARTTLS"]) {
                    c.send(format!("{} OK Begin TLS\r\n", cmd.tag).as_bytes());
                    c.sleep(Duration::from_millis(300));
                    c.send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] plaintext, not TLS\r\n");
                    c.hold();
                }
            }
        }
        B::WrongTag => {
            if c.greet() && c.until(&["LOGIN"]).is_some() {
                c.send(b"zz9 OK LOGIN completed\r\n");
                c.hold();
            }
        }
        B::UntaggedFlood(count) => {
            if c.greet() {
                if let Some(cmd) = c.until(&["LOGIN"]) {
                    let block = b"* OK still working on it\r\n".repeat(4096);
                    let mut sent = 0;
                    while sent < count {
                        if !c.send(&block) {
                            return;
                        }
                        sent += 4096;
                    }
                    if c.send(format!("{} OK LOGIN completed\r\n", cmd.tag).as_bytes()) {
                        c.serve();
                    }
                }
            }
        }
        B::ExistsFlood(count) => {
            if c.greet() {
                if let Some(cmd) = c.until(&["SELECT", "EXAMINE"]) {
                    let mut block = Vec::new();
                    for i in 0..count {
                        block.extend_from_slice(format!("* {} EXISTS\r\n", i + 1).as_bytes());
                        if block.len() > 256 * 1024 {
                            if !c.send(&block) {
                                return;
                            }
                            block.clear();
                        }
                    }
                    block.extend_from_slice(
                        format!("{} OK [READ-WRITE] done\r\n", cmd.tag).as_bytes(),
                    );
                    if c.send(&block) {
                        c.serve();
                    }
                }
            }
        }
        B::ContinuationFlood => {
            if c.greet() && c.until(&["LOGIN"]).is_some() {
                let block = b"+ more\r\n".repeat(8192);
                let end = Instant::now() + FOREVER;
                while Instant::now() < end && c.send(&block) {}
            }
        }
        B::SlowDripAfterLogin => {
            if c.greet() && c.until(&["LOGIN"]).is_some() {
                while c.send(b"* OK still thinking\r\n") && c.sleep(Duration::from_millis(500)) {}
            }
        }
        B::WrongTagEverySecond => {
            if c.greet() && c.until(&["LOGIN"]).is_some() {
                while c.send(b"zz1 OK not yours\r\n") && c.sleep(Duration::from_secs(1)) {}
            }
        }
        B::LateGreeting(delay) => {
            if c.sleep(delay) && c.greet() {
                c.serve();
            }
        }
        B::CapabilityFlood(count) => {
            let caps: String = (0..count).map(|i| format!(" X-CAP-{i}")).collect();
            if c.send(format!("* OK [CAPABILITY IMAP4rev1{caps}] ready\r\n").as_bytes()) {
                while let Some(cmd) = c.command() {
                    let reply = if cmd.name == "CAPABILITY" {
                        format!("* CAPABILITY IMAP4rev1{caps}\r\n{} OK done\r\n", cmd.tag)
                    } else {
                        if !c.answer(&cmd) {
                            return;
                        }
                        continue;
                    };
                    if !c.send(reply.as_bytes()) {
                        return;
                    }
                }
            }
        }
        B::Tls { cert, key, login } => {
            let Ok(identity) = native_tls::Identity::from_pkcs8(cert.as_bytes(), key.as_bytes())
            else {
                return;
            };
            let Ok(acceptor) = native_tls::TlsAcceptor::new(identity) else {
                return;
            };
            let Some(socket) = c.socket.take() else {
                return;
            };
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(tls) = acceptor.accept(socket) else {
                return;
            };
            let _ = tls.get_ref().set_read_timeout(Some(TICK));
            c.tls = Some(tls);
            if c.greet() {
                if let Some(cmd) = c.until(&["LOGIN"]) {
                    if c.send(tagged(&login, &cmd.tag).as_bytes()) {
                        c.serve();
                    }
                }
            }
        }
        B::Preauth => {
            if c.send(format!("* PREAUTH [CAPABILITY {CAPS}] logged in already\r\n").as_bytes()) {
                c.serve();
            }
        }
    }
}
