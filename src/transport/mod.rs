//! The transport layer: sockets, TLS, the STARTTLS upgrade and timeouts. It moves bytes only; it never parses IMAP.
//!
//! A session connects with [`Transport::connect`] (every resolved address is tried in order and recorded in
//! [`ConnectInfo`]), then, for implicit TLS or after the server's OK to STARTTLS, calls [`Transport::upgrade_tls`],
//! which returns the server's [`CertificateInfo`]. The TLS client context (trust store, CA file) is built once per
//! process per [`TlsOptions`]; [`prewarm`] starts building it in the background, so that it is ready when the
//! handshake starts. Every read, write and handshake is bounded by the transport's
//! timeout, and every failure is a [`TransportError`] naming the phase that failed.
//!
//! - [`endpoint`] says where to connect ([`Endpoint`]) and how to secure it ([`TlsMode`]);
//! - [`tcp`] resolves, tries every address, and records each attempt;
//! - [`tls`] does the handshake, loads trust roots from a CA file, and makes OpenSSL's messages readable;
//! - [`certificate`] holds the peer certificate's details;
//! - [`sniff`] tells a TLS port from a plaintext one (for "use --tls" when a plaintext probe meets implicit TLS);
//! - [`stream`] holds [`Transport`] itself;
//! - [`error`] holds [`TransportError`];
//! - [`acceptor`] and [`lab_cert`] are the server side, for the built-in lab and for tests.

pub mod acceptor;
pub mod certificate;
pub mod endpoint;
pub mod error;
pub mod lab_cert;
pub mod sniff;
pub mod stream;
pub mod tcp;
pub mod tls;

#[cfg(test)]
mod test_support;

pub use acceptor::tls_acceptor;
pub use certificate::{CertificateInfo, Verification};
pub use endpoint::{Endpoint, TlsMode};
pub(crate) use error::human_duration;
pub use error::{phase, TransportError};
pub use lab_cert::LabCertificates;
pub use sniff::{is_tls_record, speaks_tls, TlsProbe};
pub use stream::Transport;
pub use tcp::{AddressAttempt, ConnectInfo};
pub use tls::{check_ca_file, prewarm, TlsClient, TlsOptions};
