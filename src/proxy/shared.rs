//! What every session of one proxy shares: its persona, TLS acceptor, upstream and policy, limits, log and
//! connection slots. The listener builds it once; each connection reads it.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::record::RecordSink;
use super::upstream::UpstreamSettings;
use super::ProxyLimits;
use crate::serve::{InputLimits, Persona};

/// What every session shares.
pub struct Shared {
    /// What the proxy says about itself before login.
    pub persona: Persona,
    /// STARTTLS towards clients.
    pub acceptor: Option<tokio_native_tls::TlsAcceptor>,
    /// The upstream and the policy.
    pub upstream: UpstreamSettings,
    /// The limits.
    pub limits: ProxyLimits,
    /// The limits on the client's input before login.
    pub input: InputLimits,
    /// The session log.
    pub log: Box<dyn RecordSink>,
    /// One permit per open client connection.
    pub slots: Arc<Semaphore>,
}
