//! The proxy benchmark of issue 12: the latency `imapref proxy` adds to a session on loopback, and sessions per
//! second through it.
//!
//! A session is what a mail client does first: connect, greeting, `LOGIN`, `SELECT INBOX`, `FETCH 1` (the subject),
//! `LOGOUT`, each command waiting for its answer. It runs against:
//!
//! - a real Dovecot pair (tests/support/dovecot.rs): home directly (`homeuser`); through the proxy with home as the
//!   upstream (the proxy's own cost, no referral); through the proxy with front as the upstream (`referred`: front
//!   answers `NO [REFERRAL]`, the proxy follows to home: what a client that cannot follow referrals gets);
//! - the built-in lab (KB scenario): home directly; the proxy to home; the proxy to front (the KB's `OK [REFERRAL]`).
//!
//! Latency: `PROXY_BENCH_ROUNDS` sessions one after another per case, interleaved, as median and 90th percentile.
//! Throughput: `PROXY_BENCH_CONCURRENCY` clients in a loop for `PROXY_BENCH_SECONDS`, as sessions per second. The
//! proxy runs in-process on a runtime of its own (2 worker threads, as the binary), logging to a sink.
//!
//! ```text
//! cargo bench --bench proxy                                   # 200 rounds, 16 clients, 5 s
//! PROXY_BENCH_ROUNDS=500 PROXY_BENCH_CONCURRENCY=40 cargo bench --bench proxy
//! ```
//!
//! Needs dovecot-imapd (scripts/test.sh installs it); it fails, never skips, without it.

#[path = "../tests/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use dovecot::{DovecotLab, PASSWORD};
use imapref::follow::policy::{FollowMode, Policy};
use imapref::lab::{Lab, LabConfig};
use imapref::proxy::{Proxy, ProxyConfig, ProxyLimits, UpstreamSettings};
use imapref::render::proxy::{LogFormat, LogSink};
use imapref::session::SessionOptions;
use imapref::transport::{Endpoint, TlsMode, TlsOptions};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One IMAP session as a client does it; `Err` names the step that failed.
async fn session(addr: SocketAddr, user: &str, password: &str) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line)
        .await
        .map_err(|e| format!("greeting: {e}"))?;
    if !line.starts_with("* OK") {
        return Err(format!("greeting: {line}"));
    }
    for (tag, command) in [
        ("a", format!("LOGIN \"{user}\" \"{password}\"")),
        ("b", "SELECT INBOX".to_string()),
        (
            "c",
            "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])".to_string(),
        ),
        ("d", "LOGOUT".to_string()),
    ] {
        write
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .map_err(|e| format!("{tag}: {e}"))?;
        let prefix = format!("{tag} ");
        loop {
            line.clear();
            let n = read
                .read_line(&mut line)
                .await
                .map_err(|e| format!("{tag}: {e}"))?;
            if n == 0 {
                return Err(format!("{tag}: closed"));
            }
            if line.starts_with(&prefix) {
                if !line[prefix.len()..].starts_with("OK") {
                    return Err(format!("{tag}: {}", line.trim_end()));
                }
                break;
            }
        }
    }
    Ok(())
}

struct Case {
    name: String,
    addr: SocketAddr,
    user: String,
    password: String,
    times: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn proxy_config(upstream: SocketAddr) -> ProxyConfig {
    ProxyConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        allow_non_loopback: false,
        upstream: UpstreamSettings {
            endpoint: Endpoint::new(upstream.ip().to_string(), upstream.port()),
            mode: TlsMode::Plain,
            tls: TlsOptions::default(),
            policy: Policy {
                mode: FollowMode::Auto,
                max_hops: 10,
                allow_hosts: Vec::new(),
                named_host: upstream.ip().to_string(),
                interactive: false,
            },
            follow: Default::default(),
            session: SessionOptions::default(),
            max_time: Duration::from_secs(30),
        },
        client_tls: None,
        require_tls: false,
        limits: ProxyLimits {
            max_connections: 1024,
            ..ProxyLimits::default()
        },
    }
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("proxy: run with `cargo bench --bench proxy`");
        return;
    }
    let rounds = env_number("PROXY_BENCH_ROUNDS", 200).max(1);
    let concurrency = env_number("PROXY_BENCH_CONCURRENCY", 16).max(1);
    let seconds = env_number("PROXY_BENCH_SECONDS", 5).max(1);

    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let proxies = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let dovecot = DovecotLab::start();
    let lab = servers
        .block_on(Lab::start(LabConfig::default()))
        .expect("the lab starts");
    let lab_front = lab.front().plain;
    let lab_home = lab.server("home").expect("home").plain;
    let start = |upstream| {
        proxies
            .block_on(Proxy::start(
                proxy_config(upstream),
                Box::new(LogSink::new(Box::new(std::io::sink()), LogFormat::Json)),
            ))
            .expect("the proxy starts")
    };
    let p_dovecot_home = start(dovecot.home);
    let p_dovecot_front = start(dovecot.front);
    let p_lab_home = start(lab_home);
    let p_lab_front = start(lab_front);
    let kb = imapref::lab::users::KB_USER;
    let kb_pw = imapref::lab::users::LAB_PASSWORD;
    let case = |name: &str, addr, user: &str, password: &str| Case {
        name: name.into(),
        addr,
        user: user.into(),
        password: password.into(),
        times: Vec::new(),
    };
    let mut cases = vec![
        case("dovecot: home directly", dovecot.home, "homeuser", PASSWORD),
        case(
            "dovecot: proxy -> home",
            p_dovecot_home.local_addr(),
            "homeuser",
            PASSWORD,
        ),
        case(
            "dovecot: proxy -> front -> home (NO [REFERRAL])",
            p_dovecot_front.local_addr(),
            "referred",
            PASSWORD,
        ),
        case("lab: home directly", lab_home, kb, kb_pw),
        case("lab: proxy -> home", p_lab_home.local_addr(), kb, kb_pw),
        case(
            "lab: proxy -> front -> home (OK [REFERRAL])",
            p_lab_front.local_addr(),
            kb,
            kb_pw,
        ),
    ];

    // Warm-up, then interleaved rounds.
    for c in &cases {
        clients
            .block_on(session(c.addr, &c.user, &c.password))
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
    for _ in 0..rounds {
        for c in cases.iter_mut() {
            let t = Instant::now();
            clients
                .block_on(session(c.addr, &c.user, &c.password))
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            c.times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!("latency: {rounds} sequential sessions per case (connect, LOGIN, SELECT, FETCH, LOGOUT), loopback");
    println!("{:<52} {:>10} {:>10}", "case", "median ms", "p90 ms");
    let mut medians = Vec::new();
    for c in cases.iter_mut() {
        c.times.sort_by(f64::total_cmp);
        let median = percentile(&c.times, 0.5);
        medians.push(median);
        println!(
            "{:<52} {:>10.3} {:>10.3}",
            c.name,
            median,
            percentile(&c.times, 0.9)
        );
    }
    println!(
        "added by the proxy (median): dovecot {:+.3} ms without a referral, {:+.3} ms with one; \
         lab {:+.3} ms without, {:+.3} ms with",
        medians[1] - medians[0],
        medians[2] - medians[0],
        medians[4] - medians[3],
        medians[5] - medians[3]
    );

    println!();
    println!("throughput: {concurrency} concurrent clients for {seconds} s per case");
    println!("{:<52} {:>12} {:>8}", "case", "sessions/s", "errors");
    for c in &cases {
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        clients.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
                let (addr, user, password) = (c.addr, c.user.clone(), c.password.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match session(addr, &user, &password).await {
                            Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }));
            }
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                let _ = t.await;
            }
        });
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{:<52} {:>12.0} {:>8}",
            c.name,
            done.load(Ordering::Relaxed) as f64 / elapsed,
            errors.load(Ordering::Relaxed)
        );
    }
    for p in [p_dovecot_home, p_dovecot_front, p_lab_home, p_lab_front] {
        proxies.block_on(p.shutdown());
    }
    servers.block_on(lab.shutdown());
}
