//! The built-in lab, tested from outside with an independent raw IMAP client (tokio sockets, tokio-native-tls with
//! the lab CA as the only root): the KB walkthrough line for line, every scenario's defining lines, STARTTLS and
//! implicit TLS, literals, 200 concurrent connections, port bases, the loopback rule and shutdown.

mod support;
use support::lab::start;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use imapref::lab::{self, ConnectionLimits, Lab, LabConfig, LabError, Scenario};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(5);
const KB_USER: &str = "DOMname/UserN/AliasN";
const GREETING_FRONT: &str =
    "* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (front.lab) ready";

/// A raw IMAP client: send lines, read responses (literals included) with a timeout on every step.
struct Imap<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Imap<S> {
    fn new(stream: S) -> Self {
        Imap {
            stream: BufReader::new(stream),
        }
    }

    /// One response: a line, plus any literals it announces and the lines after them. CRLF removed at the end.
    /// Empty at end of stream.
    async fn response(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = timeout(STEP, self.stream.read_until(b'\n', &mut line))
                .await
                .expect("server answered in time")
                .expect("read");
            all.extend_from_slice(&line);
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim_end_matches("\r\n");
            let literal = trimmed
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            match literal {
                Some(len) => {
                    let mut data = vec![0; len];
                    timeout(STEP, self.stream.read_exact(&mut data))
                        .await
                        .expect("literal in time")
                        .expect("literal");
                    all.extend_from_slice(&data);
                }
                None => break,
            }
        }
        let text = String::from_utf8_lossy(&all).into_owned();
        text.strip_suffix("\r\n").unwrap_or(&text).to_string()
    }

    async fn send(&mut self, bytes: &str) {
        let stream = self.stream.get_mut();
        timeout(STEP, async {
            stream.write_all(bytes.as_bytes()).await?;
            stream.flush().await
        })
        .await
        .expect("write in time")
        .expect("write");
    }

    /// Sends `line` (a tagged command without CRLF) and returns every response up to and including the tagged one.
    async fn run(&mut self, line: &str) -> Vec<String> {
        let tag = line.split(' ').next().expect("tag").to_string();
        self.send(&format!("{line}\r\n")).await;
        let mut responses = Vec::new();
        loop {
            let response = self.response().await;
            assert!(
                !response.is_empty(),
                "connection closed before the tagged reply to {line:?}: {responses:?}"
            );
            let done = response.starts_with(&format!("{tag} "));
            responses.push(response);
            if done {
                return responses;
            }
        }
    }

    /// The tagged reply only.
    async fn tagged(&mut self, line: &str) -> String {
        self.run(line).await.pop().expect("tagged reply")
    }

    /// True when the server closed the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            timeout(STEP, self.stream.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

async fn connect(addr: SocketAddr) -> Imap<TcpStream> {
    let stream = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    Imap::new(stream)
}

async fn tls_connector(lab: &Lab) -> tokio_native_tls::TlsConnector {
    let pem = std::fs::read(lab.ca_file()).expect("CA file readable");
    let ca = native_tls::Certificate::from_pem(&pem).expect("CA PEM");
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(ca)
        .disable_built_in_roots(true)
        .build()
        .expect("connector");
    tokio_native_tls::TlsConnector::from(connector)
}

async fn connect_tls(lab: &Lab, addr: SocketAddr) -> Imap<tokio_native_tls::TlsStream<TcpStream>> {
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let tls = timeout(STEP, tls_connector(lab).await.connect("localhost", tcp))
        .await
        .expect("handshake in time")
        .expect("handshake verifies against the lab CA");
    Imap::new(tls)
}

fn port(addr: SocketAddr) -> u16 {
    addr.port()
}

/// The URLs inside `[REFERRAL ...]`.
fn referral_urls(line: &str) -> Vec<String> {
    let start = line.find("[REFERRAL ").expect("a REFERRAL code") + "[REFERRAL ".len();
    let end = start + line[start..].find(']').expect("closing ]");
    line[start..end].split(' ').map(str::to_string).collect()
}

/// The port of an `imap://...@host:port[/...]` URL.
fn url_port(url: &str) -> u16 {
    let after_at = &url[url.rfind('@').expect("@") + 1..];
    let hostport = after_at.split('/').next().expect("host");
    hostport
        .rsplit_once(':')
        .expect("port")
        .1
        .parse()
        .expect("numeric port")
}

#[tokio::test(flavor = "multi_thread")]
async fn kb_walkthrough_line_for_line() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut front = connect(lab.front().plain).await;
    assert_eq!(front.response().await, GREETING_FRONT);
    front
        .send("? login DOMname/UserN/AliasN PASSword\r\n")
        .await;
    assert_eq!(
        front.response().await,
        format!(
            "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}] LOGIN completed",
            port(home)
        )
    );
    front.send("? Select Inbox\r\n").await;
    assert_eq!(
        front.response().await,
        "? NO There is no replica for that mailbox on this server."
    );
    front.send("? logout\r\n").await;
    assert!(front.response().await.starts_with("* BYE "));
    assert!(front.response().await.starts_with("? OK "));
    assert!(front.closed().await);

    let mut home = connect(home).await;
    assert_eq!(
        home.response().await,
        "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS STARTTLS AUTH=PLAIN] \
         Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (home.lab) ready"
    );
    let login = home.tagged("? login DOMname/UserN/AliasN PASSword").await;
    assert!(login.starts_with("? OK [CAPABILITY "), "{login}");
    assert!(
        login.contains("MAILBOX-REFERRALS") && !login.contains("REFERRAL imap"),
        "{login}"
    );
    let select = home.run("? Select Inbox").await;
    for expected in [
        "* 3 EXISTS",
        "* 0 RECENT",
        "* OK [UNSEEN 2] Is the first unseen message",
        "* OK [UIDNEXT 4] The next unique identifier value",
        "? OK [READ-WRITE] SELECT completed",
    ] {
        assert!(
            select.iter().any(|l| l == expected),
            "{expected} missing from {select:?}"
        );
    }
    assert!(select.iter().any(|l| l.starts_with("* FLAGS (")));
    assert!(select
        .iter()
        .any(|l| l.starts_with("* OK [PERMANENTFLAGS (")));
    assert!(select.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")));
    let fetch = home
        .run("? fetch 2 (FLAGS ENVELOPE BODY.PEEK[] RFC822.SIZE)")
        .await;
    assert!(
        fetch[0].starts_with("* 2 FETCH (FLAGS () ENVELOPE (\"Tue, 16 Mar 1999"),
        "{fetch:?}"
    );
    assert!(
        fetch[0].contains("Subject: Re: Outlook Express cannot open my Inbox\r\n"),
        "{fetch:?}"
    );
    assert!(
        fetch[0].contains("There is no replica for that mailbox"),
        "{fetch:?}"
    );
    let uid = home.run("? UID FETCH 1:* FLAGS").await;
    assert_eq!(uid.len(), 4, "{uid:?}");
    assert!(
        uid[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen))"),
        "{uid:?}"
    );
    let list = home.run("? LIST \"\" *").await;
    for name in [
        "INBOX",
        "Sent Items",
        "Deleted Items",
        "Public Folders/Announcements",
    ] {
        assert!(
            list.iter().any(|l| l.ends_with(&format!("\"{name}\""))),
            "{name} missing: {list:?}"
        );
    }
    assert_eq!(home.tagged("? CLOSE").await, "? OK CLOSE completed");
    assert_eq!(home.tagged("? logout").await, "? OK LOGOUT completed");
    assert!(lab.connections_served() >= 2);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_imaplib_sees_the_referral() {
    // python3 is part of what the tests need (scripts/test.sh): without it this test fails, it does not skip.
    let version = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .expect("python3 is needed by this test");
    assert!(version.status.success(), "python3 --version failed");
    let lab = start(Scenario::Kb).await;
    let front = lab.front().plain.port();
    let home = lab.server("home").expect("home").plain.port();
    let script = r#"
import imaplib, sys
front, home = int(sys.argv[1]), int(sys.argv[2])
m = imaplib.IMAP4("127.0.0.1", front)
print("caps", " ".join(m.capabilities))
typ, data = m.login("DOMname/UserN/AliasN", "PASSword")
print("login", typ, data[0].decode())
typ, data = m.select("Inbox")
print("select", typ, data[0].decode())
m.logout()
m = imaplib.IMAP4("127.0.0.1", front)
try:
    m.login("DOMname/UserN/AliasN", "wrong")
    print("wrong", "accepted")
except imaplib.IMAP4.error as e:
    print("wrong", str(e))
m.logout()
m = imaplib.IMAP4("127.0.0.1", home)
m.login("DOMname/UserN/AliasN", "PASSword")
typ, data = m.select("INBOX")
print("home", typ, data[0].decode())
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("subjects", len([d for d in data if isinstance(d, tuple)]))
m.logout()
"#;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(front.to_string())
            .arg(home.to_string())
            .output()
    })
    .await
    .expect("joined")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed: {stdout}\n{stderr}");
    assert!(
        stdout.contains("caps IMAP4REV1 LITERAL+ SASL-IR LOGIN-REFERRALS STARTTLS AUTH=PLAIN"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "login OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{home}] LOGIN completed"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("select NO There is no replica for that mailbox on this server."),
        "{stdout}"
    );
    assert!(
        stdout.contains("[AUTHENTICATIONFAILED]") && !stdout.contains("wrong accepted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("home OK 3") && stdout.contains("subjects 3"),
        "{stdout}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_gets_no_referral() {
    let lab = start(Scenario::WrongPassword).await;
    assert_eq!(lab.scenario(), Scenario::WrongPassword);
    for addr in [lab.front().plain, lab.server("home").expect("home").plain] {
        let mut c = connect(addr).await;
        c.response().await;
        let reply = c.tagged("? login DOMname/UserN/AliasN password").await;
        assert_eq!(reply, "? NO [AUTHENTICATIONFAILED] Authentication failed.");
        let reply = c.tagged("a LOGIN nosuchuser PASSword").await;
        assert_eq!(reply, "a NO [AUTHENTICATIONFAILED] Authentication failed.");
        assert_eq!(
            c.tagged("b SELECT INBOX").await,
            "b BAD Command received in Invalid state."
        );
    }
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    assert!(c
        .tagged("c LOGIN public PASSword")
        .await
        .starts_with("c OK [REFERRAL imap://public;AUTH=*@"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_no_refers_without_logging_in() {
    let lab = start(Scenario::LoginNo).await;
    let home = lab.server("home").expect("home").plain;
    let mut c = connect(lab.front().plain).await;
    assert_eq!(c.response().await, GREETING_FRONT);
    let reply = c.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
    assert_eq!(
        reply,
        format!(
            "a NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}/] Try this server instead.",
            home.port()
        )
    );
    assert_eq!(
        c.tagged("b SELECT INBOX").await,
        "b BAD Command received in Invalid state."
    );
    let mut h = connect(home).await;
    h.response().await;
    assert!(h
        .tagged("a LOGIN DOMname/UserN/AliasN PASSword")
        .await
        .starts_with("a OK "));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bye_greeting_refers_and_closes() {
    let lab = start(Scenario::ByeGreeting).await;
    let home = lab.server("home").expect("home").plain;
    let mut c = connect(lab.front().plain).await;
    assert_eq!(
        c.response().await,
        format!(
            "* BYE [REFERRAL imap://;AUTH=*@127.0.0.1:{}/] Server not accepting connections.  Try home.lab",
            home.port()
        )
    );
    assert!(c.closed().await);
    let mut h = connect(home).await;
    assert!(h.response().await.starts_with("* OK [CAPABILITY "));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mailbox_referral_needs_rlist_first() {
    let lab = start(Scenario::MailboxReferral).await;
    let info = lab.scenario().info();
    assert_eq!(info.mailbox, Some("Public Folders/Announcements"));
    let publ = lab.server("pub").expect("pub").plain;
    let mut c = connect(lab.front().plain).await;
    assert_eq!(c.response().await, GREETING_FRONT);
    assert_eq!(
        c.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await,
        "a OK LOGIN completed"
    );
    let caps = c.run("b CAPABILITY").await;
    assert_eq!(
        caps[0],
        "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS MAILBOX-REFERRALS"
    );
    assert_eq!(
        c.tagged("c SELECT \"Public Folders/Announcements\"").await,
        "c NO Server(s) unavailable to complete operation"
    );
    let list = c.run("d LIST \"\" *").await;
    assert!(
        !list.iter().any(|l| l.contains("Announcements")),
        "{list:?}"
    );
    let rlist = c.run("e RLIST \"\" *").await;
    assert!(
        rlist.contains(&"* LIST (\\Remote) \"/\" \"Public Folders/Announcements\"".to_string()),
        "{rlist:?}"
    );
    let reply = c.tagged("f SELECT \"Public Folders/Announcements\"").await;
    assert_eq!(
        reply,
        format!(
            "f NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}/Public%20Folders/Announcements] \
             Remote mailbox.",
            publ.port()
        )
    );
    assert!(c
        .run("g SELECT INBOX")
        .await
        .contains(&"* 3 EXISTS".to_string()));

    let mut p = connect(publ).await;
    assert_eq!(
        p.response().await,
        "* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (pub.lab) ready"
    );
    p.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
    let select = p.run("b SELECT \"Public Folders/Announcements\"").await;
    assert!(select.contains(&"* 2 EXISTS".to_string()), "{select:?}");
    assert_eq!(
        select.last().expect("tagged"),
        "b OK [READ-WRITE] SELECT completed"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_in_order_first_one_closed() {
    let lab = start(Scenario::Replicas).await;
    let closed = lab.closed_port().expect("closed port");
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    c.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
    c.run("b LIST (REMOTE) \"\" \"Public Folders/*\"").await;
    let reply = c.tagged("c SELECT \"Public Folders/Announcements\"").await;
    assert!(
        reply.starts_with("c NO [REFERRAL ") && reply.ends_with("] Remote mailbox."),
        "{reply}"
    );
    let urls = referral_urls(&reply);
    let ports: Vec<u16> = urls.iter().map(|u| url_port(u)).collect();
    assert_eq!(
        ports,
        vec![
            closed.port(),
            lab.server("pub1").expect("pub1").plain.port(),
            lab.server("pub2").expect("pub2").plain.port()
        ]
    );
    assert!(
        urls.iter()
            .all(|u| u.ends_with("/Public%20Folders/Announcements")),
        "{urls:?}"
    );
    assert!(
        TcpStream::connect(closed).await.is_err(),
        "nothing listens on the closed port"
    );
    for role in ["pub1", "pub2"] {
        let mut p = connect(lab.server(role).expect("replica").plain).await;
        p.response().await;
        p.tagged("a LOGIN public PASSword").await;
        let select = p.run("b EXAMINE \"Public Folders/Announcements\"").await;
        assert_eq!(
            select.last().expect("tagged"),
            "b OK [READ-ONLY] EXAMINE completed"
        );
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loop_refers_back_to_front() {
    let lab = start(Scenario::Loop).await;
    let front = lab.front().plain;
    let back = lab.server("loop-b").expect("loop-b").plain;
    let mut c = connect(front).await;
    c.response().await;
    let reply = c.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
    assert!(reply.starts_with("a NO [REFERRAL "), "{reply}");
    assert_eq!(url_port(&referral_urls(&reply)[0]), back.port());
    let mut b = connect(back).await;
    assert!(b.response().await.contains("(loop-b.lab) ready"));
    let reply = b.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
    assert_eq!(url_port(&referral_urls(&reply)[0]), front.port());
    assert!(referral_urls(&reply)[0].starts_with("imap://DOMname%2FUserN%2FAliasN;AUTH=*@"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn long_chain_has_twelve_servers_and_the_last_accepts() {
    let lab = start(Scenario::LongChain).await;
    assert_eq!(lab.servers().len(), 12);
    let mut addr = lab.front().plain;
    let mut referrals = 0;
    loop {
        let mut c = connect(addr).await;
        c.response().await;
        let reply = c.tagged("a LOGIN DOMname/UserN/AliasN PASSword").await;
        if reply.starts_with("a OK") {
            break;
        }
        assert!(reply.starts_with("a NO [REFERRAL "), "{reply}");
        referrals += 1;
        let next = url_port(&referral_urls(&reply)[0]);
        addr = SocketAddr::new(addr.ip(), next);
        assert!(referrals <= 11, "too many referrals");
    }
    assert_eq!(referrals, 11);
    assert_eq!(addr, lab.server("hop11").expect("hop11").plain);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_port_referral_is_refused() {
    let lab = start(Scenario::ClosedPort).await;
    assert_eq!(lab.servers().len(), 1);
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    let reply = c.tagged("? login DOMname/UserN/AliasN PASSword").await;
    assert!(
        reply.starts_with("? OK [REFERRAL ") && reply.ends_with("] LOGIN completed"),
        "{reply}"
    );
    let port = url_port(&referral_urls(&reply)[0]);
    assert_eq!(Some(port), lab.closed_port().map(|a| a.port()));
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await;
    assert!(refused.is_err(), "connection to the closed port must fail");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_downgrade_target_offers_no_tls() {
    let lab = start(Scenario::TlsDowngrade).await;
    assert!(lab.scenario().info().probe_tls);
    let plainhome = lab.server("plainhome").expect("plainhome");
    assert_eq!(plainhome.tls, None);
    let front_tls = lab.front().tls.expect("front has a TLS port");
    let mut c = connect_tls(&lab, front_tls).await;
    assert_eq!(c.response().await, GREETING_FRONT);
    let caps = c.run("a CAPABILITY").await;
    assert!(!caps[0].contains("STARTTLS"), "{caps:?}");
    let reply = c.tagged("b LOGIN DOMname/UserN/AliasN PASSword").await;
    assert_eq!(url_port(&referral_urls(&reply)[0]), plainhome.plain.port());

    let mut p = connect(plainhome.plain).await;
    p.response().await;
    let caps = p.run("a CAPABILITY").await;
    assert_eq!(
        caps[0],
        "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS AUTH=PLAIN"
    );
    assert_eq!(p.tagged("b STARTTLS").await, "b BAD Unknown command");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_discards_pipelined_bytes_and_implicit_tls_refers_to_tls() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home");
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    let caps = c.run("a CAPABILITY").await;
    assert!(caps[0].contains(" STARTTLS "), "{caps:?}");
    // The NOOP pipelined after STARTTLS is plaintext injected before the handshake: it must be ignored.
    c.send("s STARTTLS\r\nx NOOP\r\n").await;
    assert_eq!(c.response().await, "s OK Begin TLS negotiation now");
    let tcp = c.stream.into_inner();
    let tls = timeout(STEP, tls_connector(&lab).await.connect("localhost", tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let mut c = Imap::new(tls);
    let caps = c.run("b CAPABILITY").await;
    assert_eq!(
        caps[0],
        "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS AUTH=PLAIN"
    );
    assert_eq!(caps.len(), 2, "no answer to the pipelined NOOP: {caps:?}");
    assert_eq!(c.tagged("c STARTTLS").await, "c BAD TLS is already active");
    let reply = c.tagged("d LOGIN DOMname/UserN/AliasN PASSword").await;
    assert_eq!(
        url_port(&referral_urls(&reply)[0]),
        home.plain.port(),
        "STARTTLS clients go to plain ports"
    );

    let mut t = connect_tls(&lab, lab.front().tls.expect("tls")).await;
    assert_eq!(t.response().await, GREETING_FRONT);
    let reply = t.tagged("? login DOMname/UserN/AliasN PASSword").await;
    assert_eq!(
        reply,
        format!(
            "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:{}] LOGIN completed",
            home.tls.expect("home tls").port()
        )
    );
    let mut h = connect_tls(&lab, home.tls.expect("home tls")).await;
    let greeting = h.response().await;
    assert!(
        greeting.starts_with(
            "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS AUTH=PLAIN] "
        ),
        "{greeting}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn literals_sync_and_non_sync() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut c = connect(home).await;
    c.response().await;
    c.send("a LOGIN {20}\r\n").await;
    assert!(c.response().await.starts_with("+ "));
    c.send("DOMname/UserN/AliasN {8}\r\n").await;
    assert!(c.response().await.starts_with("+ "));
    c.send("PASSword\r\n").await;
    assert!(c.response().await.starts_with("a OK [CAPABILITY "));

    let mut c = connect(home).await;
    c.response().await;
    c.send("b LOGIN {20+}\r\nDOMname/UserN/AliasN {8+}\r\nPASSword\r\n")
        .await;
    let reply = c.response().await;
    assert!(
        reply.starts_with("b OK "),
        "no continuation for LITERAL+: {reply}"
    );

    let mut c = connect(home).await;
    c.response().await;
    c.send("c LOGIN {100000}\r\n").await;
    assert!(c.response().await.starts_with("* BAD "));
    assert!(c.closed().await);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticate_plain_over_the_socket() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    // base64("\0DOMname/UserN/AliasN\0PASSword")
    let creds = "AERPTW5hbWUvVXNlck4vQWxpYXNOAFBBU1N3b3Jk";
    let mut c = connect(home).await;
    c.response().await;
    c.send("a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.response().await, "+ ");
    c.send(&format!("{creds}\r\n")).await;
    assert!(c.response().await.starts_with("a OK [CAPABILITY "));
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    let reply = c.tagged(&format!("b AUTHENTICATE PLAIN {creds}")).await;
    assert!(
        reply.starts_with("b OK [REFERRAL ") && reply.ends_with("] AUTHENTICATE completed"),
        "{reply}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_connections() {
    let lab = start(Scenario::Kb).await;
    let home = lab.server("home").expect("home").plain;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        tasks.spawn(async move {
            let mut c = connect(home).await;
            c.response().await;
            let login = c.tagged(&format!("a{n} LOGIN {KB_USER} PASSword")).await;
            assert!(login.starts_with(&format!("a{n} OK")), "{login}");
            let select = c.run(&format!("b{n} SELECT INBOX")).await;
            assert!(select.contains(&"* 3 EXISTS".to_string()));
            assert!(c
                .tagged(&format!("c{n} LOGOUT"))
                .await
                .starts_with(&format!("c{n} OK")));
        });
    }
    timeout(Duration::from_secs(30), async {
        while let Some(result) = tasks.join_next().await {
            result.expect("connection task succeeded");
        }
    })
    .await
    .expect("200 connections complete");
    assert_eq!(lab.connections_served(), 200);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn port_base_gives_consecutive_ports() {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .subsec_nanos();
    let mut last_error = None;
    for _ in 0..8 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 20_000 + (seed % 20_000) as u16;
        let config = LabConfig {
            scenario: Scenario::ClosedPort,
            port_base: Some(base),
            ..LabConfig::default()
        };
        match Lab::start(config).await {
            Ok(lab) => {
                let front = lab.front();
                assert_eq!(front.plain.port(), base);
                assert_eq!(front.tls.expect("tls").port(), base + 1);
                assert_eq!(lab.closed_port().expect("closed").port(), base + 2);
                lab.shutdown().await;
                let config = LabConfig {
                    port_base: Some(base),
                    ..LabConfig::default()
                };
                // The same base again, now with the kb scenario: front plain, front tls, home plain, home tls.
                let lab = Lab::start(config)
                    .await
                    .expect("the same ports, free again after shutdown");
                let ports: Vec<u16> = lab
                    .servers()
                    .iter()
                    .flat_map(|s| [Some(s.plain.port()), s.tls.map(|t| t.port())])
                    .flatten()
                    .collect();
                assert_eq!(ports, vec![base, base + 1, base + 2, base + 3]);
                lab.shutdown().await;
                return;
            }
            Err(error @ LabError::Bind { .. }) => last_error = Some(error),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    panic!("no free port base found: {last_error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_loopback_bind_is_refused() {
    let config = LabConfig {
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ..LabConfig::default()
    };
    match Lab::start(config).await {
        Err(LabError::NotLoopback(ip)) => assert_eq!(ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        other => panic!("expected NotLoopback, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_ports_and_says_bye() {
    let lab = start(Scenario::Kb).await;
    let addrs: Vec<SocketAddr> = lab
        .servers()
        .iter()
        .flat_map(|s| [Some(s.plain), s.tls])
        .flatten()
        .collect();
    let ca = lab.ca_file().to_path_buf();
    assert!(ca.exists());
    let mut open = connect(lab.front().plain).await;
    open.response().await;
    lab.shutdown().await;
    assert_eq!(open.response().await, "* BYE imapref lab shutting down");
    assert!(open.closed().await);
    for addr in addrs {
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts"
        );
    }
    assert!(!ca.exists(), "CA file removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_lab_stops_it() {
    let lab = start(Scenario::Kb).await;
    let addr = lab.front().plain;
    drop(lab);
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener is closed soon after drop");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_logged_out() {
    let limits = ConnectionLimits {
        idle_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let lab = Lab::start_with_limits(LabConfig::default(), limits)
        .await
        .expect("lab");
    let mut c = connect(lab.front().plain).await;
    c.response().await;
    assert_eq!(c.response().await, "* BYE Autologout; idle for too long");
    assert!(c.closed().await);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_limit_says_bye() {
    let limits = ConnectionLimits {
        max_connections: 1,
        ..ConnectionLimits::default()
    };
    let lab = Lab::start_with_limits(LabConfig::default(), limits)
        .await
        .expect("lab");
    let mut first = connect(lab.front().plain).await;
    assert_eq!(first.response().await, GREETING_FRONT);
    let mut second = connect(lab.front().plain).await;
    assert!(second
        .response()
        .await
        .starts_with("* BYE Too many connections"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_starts_with_only_its_servers() {
    let expected: &[(&str, &[&str])] = &[
        ("kb", &["front", "home"]),
        ("login-no", &["front", "home"]),
        ("bye-greeting", &["front", "home"]),
        ("mailbox-referral", &["front", "pub"]),
        ("replicas", &["front", "pub1", "pub2"]),
        ("loop", &["front", "loop-b"]),
        ("closed-port", &["front"]),
        ("tls-downgrade", &["front", "plainhome"]),
        ("wrong-password", &["front", "home"]),
    ];
    assert_eq!(lab::scenarios().len(), 10);
    for (name, roles) in expected {
        let scenario: Scenario = name.parse().expect("scenario name");
        let lab = Lab::start(LabConfig {
            scenario,
            tls: false,
            ..LabConfig::default()
        })
        .await
        .expect("starts");
        let got: Vec<&str> = lab.servers().iter().map(|s| s.role.as_str()).collect();
        assert_eq!(&got, roles, "{name}");
        assert!(
            lab.servers().iter().all(|s| s.tls.is_none()),
            "tls: false starts no TLS listener"
        );
        lab.shutdown().await;
    }
    let err = "no-such".parse::<Scenario>().expect_err("unknown");
    assert!(matches!(err, LabError::UnknownScenario { .. }));
    assert!(err.to_string().contains("mailbox-referral"));
}

#[tokio::test(flavor = "multi_thread")]
async fn banner_lists_everything_needed() {
    let lab = start(Scenario::MailboxReferral).await;
    let mut out = Vec::new();
    lab::write_banner(&lab, &mut out).expect("banner");
    let banner = String::from_utf8(out).expect("utf-8");
    for needle in [
        "scenario mailbox-referral".to_string(),
        lab.front().plain.to_string(),
        lab.front().tls.expect("tls").to_string(),
        lab.server("pub").expect("pub").plain.to_string(),
        lab.ca_file().display().to_string(),
        "DOMname/UserN/AliasN  PASSword".to_string(),
        "export IMAPREF_PASSWORD=PASSword".to_string(),
        format!(
            "imapref probe {} DOMname/UserN/AliasN --password-env IMAPREF_PASSWORD --mailbox \"Public Folders/Announcements\"",
            lab.front().plain
        ),
        format!("--tls --ca-file {}", lab.ca_file().display()),
        format!("imapref shell {}", lab.front().plain),
    ] {
        assert!(banner.contains(&needle), "banner lacks {needle:?}:\n{banner}");
    }
    lab.shutdown().await;
}
