//! The built-in lab: IMAP servers on loopback that play KB Q217388's Exchange 5.5 servers, and the other referral
//! situations imapref diagnoses, so that `imapref probe` and `imapref shell` can be tried without a real server.
//!
//! [`Lab::start`] starts the servers of one [`Scenario`] (a front server, the user's home server, public-folder
//! servers, ...), each with a plain listener (STARTTLS) and, by default, an implicit-TLS listener, all bound to a
//! loopback address. TLS uses a throw-away CA made at start; its certificate is written to [`Lab::ca_file`] for
//! `imapref probe --ca-file`. The users and their (published) passwords are [`users::USERS`].
//!
//! - [`scenario`]: the scenarios and the servers each one starts;
//! - `server`: one connection's state machine, sans I/O;
//! - `net`: accept loops, the socket driver, STARTTLS, timeouts, limits;
//! - `mailbox` and `fetch`: the sample mail and FETCH;
//! - [`users`]: users and passwords;
//! - `banner`: the start banner and `imapref lab` in the foreground.
//!
//! The lab is the crate's own protocol core used from the server's side: [`crate::proto::framing`] frames the
//! client's bytes, [`crate::proto::client_command`] parses its commands, [`crate::proto::url`] writes the referral
//! URLs.

mod banner;
mod fetch;
mod mailbox;
mod net;
pub mod scenario;
mod server;
pub mod users;
mod wire;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

pub use banner::{run_foreground, write_banner};
pub use net::{ConnectionLimits, ConnectionRecord};
pub use scenario::{Scenario, ScenarioInfo};
pub use users::LabUser;

use scenario::Target;
use server::{Endpoint, ServerSpec};

/// Every scenario, in the order `imapref lab --list` shows them.
pub fn scenarios() -> &'static [ScenarioInfo] {
    scenario::all()
}

/// Why the lab cannot start.
#[derive(thiserror::Error, Debug)]
pub enum LabError {
    /// A listener could not be bound (port in use, address not local, port out of range).
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address that was tried.
        addr: SocketAddr,
        /// Why, e.g. "Address already in use (os error 98)".
        reason: String,
    },
    /// The bind address is not loopback and non-loopback binding was not allowed.
    #[error(
        "{0} is not a loopback address: the lab's passwords are published, so it only listens on loopback \
         unless non-loopback binding is allowed explicitly"
    )]
    NotLoopback(IpAddr),
    /// The lab CA, the server certificate or the TLS acceptor could not be made.
    #[error("cannot set up the lab's TLS: {0}")]
    Tls(String),
    /// No scenario has this name.
    #[error("unknown lab scenario `{name}`; valid scenarios: {valid}")]
    UnknownScenario {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// Writing the CA file, writing the banner, or waiting for Ctrl-C failed.
    #[error("lab I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// How to start the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// Which scenario to play. Default [`Scenario::Kb`], the KB's walkthrough.
    pub scenario: Scenario,
    /// The address every listener binds to, and the host in every referral URL. Default 127.0.0.1.
    pub bind: IpAddr,
    /// `None`: ephemeral ports (the default; nothing can clash). `Some(n)`: consecutive ports from `n`, in a fixed
    /// order: for each server of the scenario in order, its plain port, then its TLS port (if it has one), and the
    /// closed port last (for the scenarios that use one).
    pub port_base: Option<u16>,
    /// Allow a bind address that is not loopback. Default false: the passwords are published.
    pub allow_non_loopback: bool,
    /// Start implicit-TLS listeners too. Default true. STARTTLS on the plain listeners works either way.
    pub tls: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            scenario: Scenario::Kb,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_base: None,
            allow_non_loopback: false,
            tls: true,
        }
    }
}

/// One running lab server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabServer {
    /// Its role in the scenario (`front`, `home`, `pub`, `hop3`, ...); its greeting says `(<role>.lab)`.
    pub role: String,
    /// The plain listener (STARTTLS, when the server offers it).
    pub plain: SocketAddr,
    /// The implicit-TLS listener, if it has one.
    pub tls: Option<SocketAddr>,
    /// What the server does in this scenario, in a few words.
    pub note: String,
}

/// The lab CA's PEM file, removed when dropped.
#[derive(Debug)]
struct CaFile(PathBuf);

impl CaFile {
    /// Writes `pem` to a new file in the temporary directory (created exclusively, so nothing is overwritten).
    fn create(pem: &str) -> std::io::Result<CaFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "imapref-lab-ca-{}-{n}-{nanos:09}.pem",
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(pem.as_bytes())?;
                    file.sync_all()?;
                    return Ok(CaFile(path));
                }
                Err(error)
                    if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 =>
                {
                    attempt += 1
                }
                Err(error) => return Err(error),
            }
        }
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running lab. Dropping it stops every server (prefer [`Lab::shutdown`], which waits until the ports are closed).
#[derive(Debug)]
pub struct Lab {
    scenario: Scenario,
    bind: IpAddr,
    servers: Vec<LabServer>,
    closed_port: Option<SocketAddr>,
    ca: CaFile,
    counters: Arc<net::Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The next address to bind: port 0 (ephemeral), or the next consecutive port.
fn next_addr(bind: IpAddr, next_port: &mut Option<u32>) -> Result<SocketAddr, LabError> {
    match next_port {
        None => Ok(SocketAddr::new(bind, 0)),
        Some(port) => {
            let addr = SocketAddr::new(bind, u16::try_from(*port).unwrap_or(0));
            if *port > u32::from(u16::MAX) || *port == 0 {
                return Err(LabError::Bind {
                    addr,
                    reason: format!("port {port} is out of range (the scenario needs more ports above the base)"),
                });
            }
            *port += 1;
            Ok(addr)
        }
    }
}

async fn bind_listener(bind: IpAddr, next_port: &mut Option<u32>) -> Result<TcpListener, LabError> {
    let addr = next_addr(bind, next_port)?;
    TcpListener::bind(addr)
        .await
        .map_err(|error| LabError::Bind {
            addr,
            reason: error.to_string(),
        })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, LabError> {
    Ok(listener.local_addr()?)
}

/// The names the lab's server certificate is valid for.
fn certificate_names(bind: IpAddr) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let bind = bind.to_string();
    if !names.contains(&bind) {
        names.push(bind);
    }
    names
}

impl Lab {
    /// Starts the scenario's servers with the default [`ConnectionLimits`]: binds every listener, makes the CA and
    /// the CA file, spawns the accept loops, and returns once clients can connect. Must run inside a tokio runtime.
    pub async fn start(config: LabConfig) -> Result<Lab, LabError> {
        Lab::start_with_limits(config, ConnectionLimits::default()).await
    }

    /// [`Lab::start`] with other limits (a short idle timeout in tests, for example).
    pub async fn start_with_limits(
        config: LabConfig,
        limits: ConnectionLimits,
    ) -> Result<Lab, LabError> {
        if !config.bind.is_loopback() && !config.allow_non_loopback {
            return Err(LabError::NotLoopback(config.bind));
        }

        let names = certificate_names(config.bind);
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let certificates = crate::transport::lab_cert::generate(&name_refs, 30)
            .map_err(|e| LabError::Tls(e.to_string()))?;
        let acceptor = crate::transport::acceptor::tls_acceptor(
            certificates.server_cert_pem.as_bytes(),
            certificates.server_key_pem.as_bytes(),
        )
        .map_err(|e| LabError::Tls(e.to_string()))?;

        // Bind everything first, so that referrals can point anywhere in the scenario.
        let plans = scenario::plan(config.scenario);
        let needs_closed_port = scenario::uses_closed_port(&plans);
        let mut next_port = config.port_base.map(u32::from);
        let mut bound = Vec::with_capacity(plans.len());
        let mut endpoints: HashMap<String, Endpoint> = HashMap::new();
        for plan in plans {
            let plain = bind_listener(config.bind, &mut next_port).await?;
            let tls = if config.tls && plan.tls_listener {
                Some(bind_listener(config.bind, &mut next_port).await?)
            } else {
                None
            };
            let endpoint = Endpoint {
                role: plan.role.clone(),
                plain: local_addr(&plain)?,
                tls: tls.as_ref().map(local_addr).transpose()?,
            };
            endpoints.insert(plan.role.clone(), endpoint);
            bound.push((plan, plain, tls));
        }
        let closed_port = if needs_closed_port {
            // Bound and released at once: nothing listens there afterwards.
            let addr = next_addr(config.bind, &mut next_port)?;
            let probe = std::net::TcpListener::bind(addr).map_err(|error| LabError::Bind {
                addr,
                reason: error.to_string(),
            })?;
            let addr = probe.local_addr()?;
            drop(probe);
            Some(addr)
        } else {
            None
        };

        let ca = CaFile::create(&certificates.ca_pem)?;
        let shared = Arc::new(net::Shared {
            connections_served: AtomicU64::new(0),
            connections: std::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            acceptor,
        });
        let (stop, stop_rx) = watch::channel(false);

        let mut servers = Vec::with_capacity(bound.len());
        let mut tasks = Vec::new();
        for (plan, plain, tls) in bound {
            let resolved = plan.resolve(|target| match target {
                Target::Server(role) => endpoints.get(role).cloned().ok_or_else(|| {
                    LabError::Io(std::io::Error::other(format!(
                        "scenario refers to unknown server {role}"
                    )))
                }),
                Target::ClosedPort => closed_port
                    .map(|addr| Endpoint {
                        role: "closed port".to_string(),
                        plain: addr,
                        tls: None,
                    })
                    .ok_or_else(|| {
                        LabError::Io(std::io::Error::other("no closed port was reserved"))
                    }),
            })?;
            servers.push(LabServer {
                role: resolved.role.clone(),
                plain: local_addr(&plain)?,
                tls: tls.as_ref().map(local_addr).transpose()?,
                note: resolved.note.clone(),
            });
            let spec = Arc::new(ServerSpec::new(resolved, config.bind));
            tasks.push(tokio::spawn(net::accept_loop(
                plain,
                Arc::clone(&spec),
                false,
                Arc::clone(&shared),
                stop_rx.clone(),
            )));
            if let Some(tls) = tls {
                tasks.push(tokio::spawn(net::accept_loop(
                    tls,
                    spec,
                    true,
                    Arc::clone(&shared),
                    stop_rx.clone(),
                )));
            }
        }

        Ok(Lab {
            scenario: config.scenario,
            bind: config.bind,
            servers,
            closed_port,
            ca,
            counters: shared,
            stop,
            tasks,
        })
    }

    /// Every server, front first, in port order.
    pub fn servers(&self) -> &[LabServer] {
        &self.servers
    }

    /// The server with this role.
    pub fn server(&self, role: &str) -> Option<&LabServer> {
        self.servers.iter().find(|s| s.role == role)
    }

    /// The server a user starts from (always the first).
    pub fn front(&self) -> &LabServer {
        // A lab always has a front server: every scenario's plan starts with one, and start() fails otherwise.
        &self.servers[0]
    }

    /// The port nothing listens on, for the scenarios whose referrals point at one (closed-port, replicas).
    pub fn closed_port(&self) -> Option<SocketAddr> {
        self.closed_port
    }

    /// The address every server listens on.
    pub fn bind(&self) -> IpAddr {
        self.bind
    }

    /// The lab CA's certificate (PEM), for `--ca-file`. The file is removed when the lab stops.
    pub fn ca_file(&self) -> &Path {
        &self.ca.0
    }

    /// The scenario being played.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// The users every server knows, with their fixed passwords.
    pub fn users(&self) -> &'static [LabUser] {
        users::USERS
    }

    /// Connections accepted so far, on every listener.
    pub fn connections_served(&self) -> u64 {
        self.counters.connections_served.load(Ordering::Relaxed)
    }

    /// The connections accepted so far (the newest 1024), oldest first, each with its server, whether it came over
    /// implicit TLS, whether it has ended, and its round trips as the client saw them
    /// ([`ConnectionRecord::round_trips`]). Counts are updated before each answer is written, so once a client has
    /// read an answer, the round trip is counted.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.counters.records()
    }

    /// Stops accepting, tells open connections `* BYE` (waiting a moment for them), and returns once every
    /// listener is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults() {
        let config = LabConfig::default();
        assert_eq!(config.scenario, Scenario::Kb);
        assert!(config.bind.is_loopback());
        assert!(config.tls && !config.allow_non_loopback && config.port_base.is_none());
    }

    #[test]
    fn consecutive_ports_stop_at_the_top() {
        let bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut next = Some(65_535u32);
        assert_eq!(
            next_addr(bind, &mut next).expect("last port").port(),
            65_535
        );
        assert!(matches!(
            next_addr(bind, &mut next),
            Err(LabError::Bind { .. })
        ));
        let mut ephemeral = None;
        assert_eq!(
            next_addr(bind, &mut ephemeral).expect("ephemeral").port(),
            0
        );
    }

    #[test]
    fn certificate_names_include_the_bind_address() {
        assert_eq!(
            certificate_names(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ["localhost", "127.0.0.1", "::1"]
        );
        assert!(
            certificate_names("127.0.0.2".parse().expect("ip")).contains(&"127.0.0.2".to_string())
        );
    }

    #[test]
    fn ca_file_is_removed_on_drop() {
        let ca = CaFile::create("PEM").expect("created");
        let path = ca.0.clone();
        assert_eq!(std::fs::read_to_string(&path).expect("readable"), "PEM");
        drop(ca);
        assert!(!path.exists());
    }
}
