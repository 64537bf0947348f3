//! The latency benchmark of issue 10: how many round trips and how much wall time a probe costs, against curl and
//! Python's imaplib, through a delay proxy on loopback (this kernel has no netem), with a real Dovecot.
//!
//! It starts its own Dovecot lab (tests/support/dovecot.rs: "front" refers users to "home"), one delay proxy in front
//! of each instance, and measures, interleaved (one run of each tool per round) and as medians:
//!
//! - the direct probe (LOGIN, SELECT INBOX, LOGOUT) on home through its proxy: `imapref probe`, curl
//!   (`imap://…/INBOX?ALL`: curl selects a mailbox only to search or fetch in it) and Python imaplib;
//! - the referral path: `imapref probe` on front (which answers LOGIN with a referral to home), through front's proxy,
//!   then home's (front's passdb is pointed at home's proxy);
//! - STARTTLS on loopback, no proxy: `imapref probe --starttls` against curl `--ssl-reqd`;
//! - the direct and referral probes again against a second pair in Dovecot's high-performance mode (login
//!   processes reused, `imap` processes started ahead: no fork per login), the "hp" rows, which tell imapref's
//!   round trips from Dovecot's own work per login;
//! - the size of the release binary.
//!
//! The proxy delays every chunk by half the RTT in each direction, and waits half the RTT before it connects to the
//! server (the SYN's trip), so that connect + greeting costs one RTT, as it does on a real network. It counts round
//! trips as a client sees them: the connect and greeting is one, and then one for every time the server answers after
//! new client bytes reached it.
//!
//! ```text
//! cargo bench --bench latency                     # 50 ms RTT, 15 rounds
//! LATENCY_RTT_MS=100 LATENCY_ROUNDS=25 cargo bench --bench latency
//! LATENCY_KEEP_SSL_ENV=1 cargo bench --bench latency   # keep SSL_CERT_FILE/SSL_CERT_DIR for the clients
//! ```
//!
//! Needs dovecot-imapd, curl and python3 (scripts/test.sh installs Dovecot); it fails, never skips, without them.

#[path = "../tests/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use dovecot::{DovecotLab, PASSWORD};

/// The user whose mailbox is on home, with a plain login.
const HOME_USER: &str = "homeuser";
/// The user front refers to home (`NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:<home>/]`).
const REFERRED_USER: &str = "referred";

/// Targets from issue 10.
const DIRECT_MAX_RTT: f64 = 2.5;
const DIRECT_MAX_VS_CURL: f64 = 0.55;
const REFERRAL_MAX_RTT: f64 = 4.5;
const STARTTLS_MAX_VS_CURL: f64 = 1.2;
const BINARY_MAX_BYTES: u64 = 12 * 1024 * 1024;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful either: run only under bench.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("latency: run with `cargo bench --bench latency`");
        return;
    }
    let rtt = Duration::from_millis(env_number("LATENCY_RTT_MS", 50));
    let rounds = env_number("LATENCY_ROUNDS", 15).max(1);
    require_tool("curl", &["--version"]);
    require_tool("python3", &["--version"]);
    let imapref = env!("CARGO_BIN_EXE_imapref");

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let lab = DovecotLab::start();
    let ca = lab
        .ca_file
        .clone()
        .expect("the Dovecot lab has TLS (the openssl command is installed)");
    let home_proxy = runtime.block_on(Proxy::start(lab.home, rtt / 2));
    let front_proxy = runtime.block_on(Proxy::start(lab.front, rtt / 2));
    point_referrals_at(&lab, home_proxy.addr);

    // The same pair in Dovecot's high-performance mode (no fork per login), to tell imapref's round trips from
    // Dovecot's own login work.
    let tuned = DovecotLab::start_high_performance();
    let tuned_home_proxy = runtime.block_on(Proxy::start(tuned.home, rtt / 2));
    let tuned_front_proxy = runtime.block_on(Proxy::start(tuned.front, rtt / 2));
    point_referrals_at(&tuned, tuned_home_proxy.addr);
    let tuned_home = tuned_home_proxy.addr.to_string();
    let tuned_front = tuned_front_proxy.addr.to_string();

    let home = home_proxy.addr.to_string();
    let front = front_proxy.addr.to_string();
    let home_direct = lab.home.to_string();
    let ca = ca.display().to_string();
    let curl_url = |target: &str| format!("imap://{target}/INBOX?ALL");
    let direct_curl_url = curl_url(&home);
    let starttls_curl_url = curl_url(&home_direct);
    let curl_user = format!("{HOME_USER}:{PASSWORD}");
    let imaplib = format!(
        "import imaplib, os\n\
         m = imaplib.IMAP4('127.0.0.1', {port})\n\
         m.login('{HOME_USER}', os.environ['BENCH_PASSWORD'])\n\
         typ, _ = m.select('INBOX')\n\
         assert typ == 'OK', typ\n\
         m.logout()\n",
        port = home_proxy.addr.port()
    );

    let cases: Vec<Case> = vec![
        Case::new(
            "direct",
            "imapref",
            Some(&home_proxy),
            probe(imapref, &home, HOME_USER, &[]),
        ),
        Case::new(
            "direct",
            "curl",
            Some(&home_proxy),
            command("curl", &["-sS", "-u", &curl_user, &direct_curl_url]),
        ),
        Case::new(
            "direct",
            "imaplib",
            Some(&home_proxy),
            command("python3", &["-c", &imaplib]),
        ),
        Case::new(
            "referral",
            "imapref",
            None,
            probe(imapref, &front, REFERRED_USER, &[]),
        ),
        Case::new(
            "starttls",
            "imapref",
            None,
            probe(
                imapref,
                &home_direct,
                HOME_USER,
                &[
                    "--starttls",
                    "--ca-file",
                    &ca,
                    "--cert-warn-days",
                    "0",
                    "--json",
                ],
            ),
        ),
        Case::new(
            "starttls",
            "curl",
            None,
            command(
                "curl",
                &[
                    "-sS",
                    "--ssl-reqd",
                    "--cacert",
                    &ca,
                    "-u",
                    &curl_user,
                    &starttls_curl_url,
                ],
            ),
        ),
        Case::new(
            "direct, hp",
            "imapref",
            Some(&tuned_home_proxy),
            probe(imapref, &tuned_home, HOME_USER, &[]),
        ),
        Case::new(
            "referral, hp",
            "imapref",
            None,
            probe(imapref, &tuned_front, REFERRED_USER, &[]),
        ),
    ];

    println!(
        "latency: Dovecot on loopback, delay proxy RTT {} ms, {rounds} interleaved rounds, medians",
        rtt.as_millis()
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut trips: Vec<Vec<u32>> = vec![Vec::new(); cases.len()];
    let mut starttls_steps: Vec<Duration> = Vec::new();
    let mut handshakes: Vec<Duration> = Vec::new();
    for _ in 0..rounds {
        for (index, case) in cases.iter().enumerate() {
            let proxies: Vec<&Proxy> = match case.scenario {
                "referral" => vec![&front_proxy, &home_proxy],
                "referral, hp" => vec![&tuned_front_proxy, &tuned_home_proxy],
                _ => case.proxy.into_iter().collect(),
            };
            proxies.iter().for_each(|proxy| proxy.reset());
            let (took, stdout) = case.run();
            times[index].push(took);
            if case.scenario == "starttls" && case.client == "imapref" {
                let (step, handshake) = starttls_step(&stdout);
                starttls_steps.push(step);
                handshakes.push(handshake);
            }
            // A proxy sees the end of a connection half an RTT after the client has gone.
            std::thread::sleep(rtt);
            trips[index].push(proxies.iter().map(|proxy| proxy.round_trips()).sum());
        }
    }

    let median_ms = |index: usize| median(&times[index]).as_secs_f64() * 1000.0;
    let rtt_ms = rtt.as_secs_f64() * 1000.0;
    println!();
    println!(
        "| {:<12} | {:<8} | {:>9} | {:>7} | {:>11} | {:>5} |",
        "path", "client", "median ms", "in RTT", "round trips", "floor"
    );
    println!("|--------------|----------|-----------|---------|-------------|-------|");
    for (index, case) in cases.iter().enumerate() {
        let floor = match case.scenario {
            "direct" | "direct, hp" => "2",
            "referral" | "referral, hp" => "4",
            _ => "",
        };
        let (in_rtt, counted) = if case.scenario == "starttls" {
            ("".to_string(), "".to_string())
        } else {
            (
                format!("{:.2}", median_ms(index) / rtt_ms),
                format!("{}", median_u32(&trips[index])),
            )
        };
        println!(
            "| {:<12} | {:<8} | {:>9.1} | {:>7} | {:>11} | {:>5} |",
            case.scenario,
            case.client,
            median_ms(index),
            in_rtt,
            counted,
            floor
        );
    }

    println!();
    println!(
        "imapref's starttls step (STARTTLS, its OK, the handshake): {:.1} ms; the TLS handshake alone: {:.1} ms",
        median(&starttls_steps).as_secs_f64() * 1000.0,
        median(&handshakes).as_secs_f64() * 1000.0
    );
    if keep_ssl_env() {
        if std::env::var_os("SSL_CERT_FILE").is_some() {
            println!(
                "note: SSL_CERT_FILE is set, so OpenSSL parses that whole file for imapref (curl --cacert does not)"
            );
        }
    } else {
        println!(
            "note: the clients ran without SSL_CERT_FILE and SSL_CERT_DIR (cargo sets them for what it runs); \
             LATENCY_KEEP_SSL_ENV=1 keeps them"
        );
    }

    let size = std::fs::metadata(imapref).map(|m| m.len()).unwrap_or(0);
    let direct = median_ms(0);
    let direct_rtt = direct / rtt_ms;
    let versus_curl = direct / median_ms(1);
    let referral_rtt = median_ms(3) / rtt_ms;
    let starttls = median_ms(4) / median_ms(5);
    let tuned_direct_rtt = median_ms(6) / rtt_ms;
    let tuned_referral_rtt = median_ms(7) / rtt_ms;
    println!();
    println!("targets (issue 10):");
    verdict(
        "direct probe",
        format!("{direct_rtt:.2} RTT (target ≤ {DIRECT_MAX_RTT})"),
        direct_rtt <= DIRECT_MAX_RTT,
    );
    verdict(
        "direct probe against curl",
        format!("{versus_curl:.2}× (target ≤ {DIRECT_MAX_VS_CURL}×)"),
        versus_curl <= DIRECT_MAX_VS_CURL,
    );
    verdict(
        "referral probe",
        format!("{referral_rtt:.2} RTT (target ≤ {REFERRAL_MAX_RTT})"),
        referral_rtt <= REFERRAL_MAX_RTT,
    );
    println!(
        "  (Dovecot in high-performance mode, \"hp\" rows: direct {tuned_direct_rtt:.2} RTT, referral \
         {tuned_referral_rtt:.2} RTT; the difference is Dovecot's own work per login)"
    );
    verdict(
        "STARTTLS on loopback against curl",
        format!("{starttls:.2}× (target ≤ {STARTTLS_MAX_VS_CURL}×)"),
        starttls <= STARTTLS_MAX_VS_CURL,
    );
    verdict(
        "release binary",
        format!(
            "{size} bytes = {:.1} MiB, {imapref} (target ≤ {} MiB)",
            size as f64 / 1_048_576.0,
            BINARY_MAX_BYTES / 1_048_576
        ),
        size <= BINARY_MAX_BYTES,
    );
    drop(lab);
    drop(tuned);
}

/// Whether the clients keep `SSL_CERT_FILE` and `SSL_CERT_DIR`. Cargo (through openssl-probe) sets both for every
/// process it runs, this benchmark included, so by default they are removed, as in a shell that does not set them.
fn keep_ssl_env() -> bool {
    std::env::var_os("LATENCY_KEEP_SSL_ENV").is_some()
}

/// The `starttls` step's time and the handshake's, from `imapref probe --json`.
fn starttls_step(json: &[u8]) -> (Duration, Duration) {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("imapref's JSON report");
    let hop = &doc["hops"][0];
    let step = hop["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["name"] == "starttls"))
        .and_then(|step| step["ms"].as_f64())
        .expect("a starttls step with ms");
    let handshake = hop["certificate"]["handshake_ms"]
        .as_f64()
        .expect("handshake_ms");
    (
        Duration::from_secs_f64(step / 1000.0),
        Duration::from_secs_f64(handshake / 1000.0),
    )
}

fn verdict(what: &str, figure: String, met: bool) {
    let mark = if met { "met    " } else { "NOT met" };
    println!("  {mark}  {what}: {figure}");
}

/// A number from the environment, or `default`.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

fn require_tool(program: &str, args: &[&str]) {
    let found = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "latency: {program} is needed (apt-get install {program})"
    );
}

/// Points front's referrals (`port=<home>` in its passwd-file) at home's proxy. Dovecot re-reads a passwd-file
/// whose modification time has changed, so the next login sees it.
fn point_referrals_at(lab: &DovecotLab, home_proxy: SocketAddr) {
    let users = lab.dir().join("front").join("users");
    let text = std::fs::read_to_string(&users).expect("front's users file");
    let from = format!("port={}", lab.home.port());
    assert!(text.contains(&from), "front's users refer to home: {text}");
    let to = format!("port={}", home_proxy.port());
    // A later mtime than the one Dovecot saw at start, even on a coarse clock.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&users, text.replace(&from, &to)).expect("rewrite front's users");
}

/// One client on one path.
struct Case<'a> {
    scenario: &'static str,
    client: &'static str,
    proxy: Option<&'a Proxy>,
    command: Command,
}

impl<'a> Case<'a> {
    fn new(
        scenario: &'static str,
        client: &'static str,
        proxy: Option<&'a Proxy>,
        command: Command,
    ) -> Self {
        Case {
            scenario,
            client,
            proxy,
            command,
        }
    }

    /// Runs the client once and returns its wall time and standard output; panics (with its output) when it fails.
    fn run(&self) -> (Duration, Vec<u8>) {
        let mut command = Command::new(self.command.get_program());
        command.args(self.command.get_args());
        if !keep_ssl_env() {
            command
                .env_remove("SSL_CERT_FILE")
                .env_remove("SSL_CERT_DIR");
        }
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let started = Instant::now();
        let out = command.output().expect("the client runs");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{} {}: {}\n{}\n{}",
            self.scenario,
            self.client,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (took, out.stdout)
    }
}

fn probe(imapref: &str, target: &str, user: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(imapref);
    command
        .args(["probe", target, user, "--password-env", "BENCH_PASSWORD"])
        .args(extra)
        .env("BENCH_PASSWORD", PASSWORD)
        .env("NO_COLOR", "1");
    command
}

fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).env("BENCH_PASSWORD", PASSWORD);
    command
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn median_u32(values: &[u32]) -> u32 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// A TCP proxy on 127.0.0.1 that delays both directions by `one_way` and counts round trips.
struct Proxy {
    addr: SocketAddr,
    trips: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, one_way: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let trips = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&trips);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(relay(client, upstream, one_way, counter));
            }
        });
        Proxy { addr, trips, task }
    }

    fn reset(&self) {
        self.trips.store(0, Ordering::SeqCst);
    }

    fn round_trips(&self) -> u32 {
        self.trips.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One proxied connection: the connect and greeting count one round trip, then every server answer to new client
/// bytes counts one.
async fn relay(client: TcpStream, upstream: SocketAddr, one_way: Duration, trips: Arc<AtomicU32>) {
    let _ = client.set_nodelay(true);
    tokio::time::sleep(one_way).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    trips.fetch_add(1, Ordering::SeqCst);
    let fresh = Arc::new(AtomicBool::new(false));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upward = pump(client_read, server_write, one_way, {
        let fresh = Arc::clone(&fresh);
        move || fresh.store(true, Ordering::SeqCst)
    });
    let downward = pump(server_read, client_write, one_way, move || {
        if fresh.swap(false, Ordering::SeqCst) {
            trips.fetch_add(1, Ordering::SeqCst);
        }
    });
    let _ = tokio::join!(upward, downward);
}

/// Copies `from` to `to`, each chunk delivered `delay` after it was read; `on_chunk` runs as each chunk is read.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    on_chunk: impl Fn() + Send + 'static,
) {
    let (send, mut receive) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = receive.recv().await {
            tokio::time::sleep_until(due).await;
            if bytes.is_empty() {
                break;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let due = tokio::time::Instant::now() + delay;
        if n == 0 {
            let _ = send.send((due, Vec::new()));
            break;
        }
        on_chunk();
        if send.send((due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(send);
    let _ = writer.await;
}
