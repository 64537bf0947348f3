//! `imapref proxy`: arguments to a [`crate::proxy::ProxyConfig`], then the proxy in the foreground
//! until Ctrl-C or SIGTERM, one log line per session on standard output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::follow::policy::{FollowMode, Policy};
use crate::follow::FollowLimits;
use crate::probe::target::Target;
use crate::proxy::{Proxy, ProxyConfig, ProxyLimits, UpstreamSettings};
use crate::render::proxy::{LogFormat, LogSink};
use crate::session::SessionOptions;
use crate::transport::{Endpoint, TlsMode, TlsOptions};

/// Arguments of `imapref proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Where to listen for clients (`127.0.0.1:1143`; port 0 picks one, shown in the first log line).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// The server to log users in to (the one that refers): `host:port`.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: String,
    /// Implicit TLS to the upstream (port 993 style); referrals are followed with TLS too.
    #[arg(long, conflicts_with = "upstream_starttls")]
    pub upstream_tls: bool,
    /// STARTTLS to the upstream, required; referrals are followed with STARTTLS (never below).
    #[arg(long)]
    pub upstream_starttls: bool,
    /// Trust the CA certificates in this PEM file (towards the upstream and the servers it refers to).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Also follow referrals to hosts matching this pattern (`*` matches any run of characters); repeatable. The
    /// upstream's host and domain are always allowed.
    #[arg(long = "allow-host", value_name = "GLOB")]
    pub allow_host: Vec<String>,
    /// The certificate chain (PEM) for STARTTLS towards clients.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PKCS#8 PEM, `BEGIN PRIVATE KEY`) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse LOGIN and AUTHENTICATE before STARTTLS (advertise LOGINDISABLED); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub require_tls: bool,
    /// The most referrals followed for one login.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_hops: usize,
    /// Client connections open at once; more are told BYE.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Seconds without a byte either way after which a logged-in session is closed.
    #[arg(long, default_value_t = 1860.0, value_name = "S")]
    pub idle_timeout: f64,
    /// Seconds a client may stay silent before it logs in (and five times that from connect to login).
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub login_timeout: f64,
    /// Seconds each connect, read, write and handshake towards the servers may take.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub timeout: f64,
    /// The log's format: text (key=value) or json (JSON lines).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log: LogFormat,
    /// Allow --listen to take an address other than loopback.
    #[arg(long)]
    pub allow_non_loopback: bool,
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value > 0.0 && value <= 86_400.0 * 7.0) {
        anyhow::bail!("{name} {value}: give a number of seconds above 0 and at most 604800");
    }
    Ok(Duration::from_secs_f64(value))
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The validated configuration.
pub fn config(args: &ProxyArgs) -> anyhow::Result<ProxyConfig> {
    let mode = if args.upstream_tls {
        TlsMode::Implicit
    } else if args.upstream_starttls {
        TlsMode::StartTls
    } else {
        TlsMode::Plain
    };
    let target = Target::parse(&args.upstream).map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
    if target.user.is_some() || target.mailbox.is_some() {
        anyhow::bail!("--upstream {}: give host:port only", args.upstream);
    }
    let port = target.port.unwrap_or(mode.default_port());
    if args.max_hops > 100 {
        anyhow::bail!("--max-hops {}: at most 100", args.max_hops);
    }
    if !(1..=100_000).contains(&args.max_connections) {
        anyhow::bail!(
            "--max-connections {}: from 1 to 100000",
            args.max_connections
        );
    }
    if let Some(path) = &args.ca_file {
        crate::transport::check_ca_file(path).map_err(|e| anyhow::anyhow!("--ca-file: {e}"))?;
    }
    let timeout = seconds("--timeout", args.timeout)?;
    let login_timeout = seconds("--login-timeout", args.login_timeout)?;
    let client_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((read(cert, "--tls-cert")?, read(key, "--tls-key")?)),
        _ => None,
    };
    Ok(ProxyConfig {
        listen: args.listen,
        allow_non_loopback: args.allow_non_loopback,
        upstream: UpstreamSettings {
            endpoint: Endpoint::new(target.host.clone(), port),
            mode,
            tls: TlsOptions {
                ca_file: args.ca_file.clone(),
                insecure: false,
            },
            policy: Policy {
                mode: FollowMode::Auto,
                max_hops: args.max_hops,
                allow_hosts: args.allow_host.clone(),
                named_host: target.host,
                interactive: false,
            },
            follow: FollowLimits::default(),
            session: SessionOptions {
                timeout,
                ..SessionOptions::default()
            },
            max_time: timeout.saturating_mul(3),
        },
        client_tls,
        require_tls: args.require_tls,
        limits: ProxyLimits {
            max_connections: args.max_connections,
            login_idle: login_timeout,
            login_total: login_timeout.saturating_mul(5),
            relay_idle: seconds("--idle-timeout", args.idle_timeout)?,
            ..ProxyLimits::default()
        },
    })
}

/// Runs `imapref proxy` until Ctrl-C or SIGTERM.
pub async fn run(args: ProxyArgs) -> anyhow::Result<i32> {
    let config = config(&args)?;
    let stop = super::stop_signals()?;
    let log = Box::new(LogSink::new(Box::new(std::io::stdout()), args.log));
    let proxy = Proxy::start(config, log).await?;
    stop.await;
    proxy.shutdown().await;
    Ok(crate::exit::OK)
}
