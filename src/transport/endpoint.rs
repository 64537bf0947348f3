//! Where to connect ([`Endpoint`]) and how to secure the connection ([`TlsMode`]).

use std::fmt;
use std::net::IpAddr;

/// A host and a port to connect to.
///
/// `host` is a DNS name or an IP literal; an IPv6 literal is stored without brackets (`::1`, not `[::1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// DNS name or IP address; IPv6 without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint for `host` and `port`. Brackets around an IPv6 literal (`[::1]`) are removed.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let host = match host
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            Some(inner) => inner.to_string(),
            None => host,
        };
        Endpoint { host, port }
    }

    /// True when `host` is an IP address rather than a name (TLS then checks the certificate's IP SANs).
    pub fn is_ip_literal(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

impl fmt::Display for Endpoint {
    /// `host:port`, or `[v6]:port` for an IPv6 literal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How a connection is secured.
///
/// The variants are listed from least to most protected at the moment the first IMAP byte is read, but the type
/// deliberately has no `Ord`: ask the question you mean with [`TlsMode::is_encrypted_from_start`],
/// [`TlsMode::uses_starttls`] or [`TlsMode::requires_tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No TLS at all: everything, passwords included, crosses the network in clear text.
    Plain,
    /// TLS from the first byte (port 993 style, "IMAPS").
    Implicit,
    /// Plaintext greeting, then STARTTLS; a server that does not offer or accept it is an error.
    StartTls,
    /// STARTTLS when the server offers it, plaintext otherwise.
    StartTlsOpportunistic,
}

impl TlsMode {
    /// True only for [`TlsMode::Implicit`]: the TLS handshake happens right after the TCP connect.
    pub fn is_encrypted_from_start(self) -> bool {
        matches!(self, TlsMode::Implicit)
    }

    /// True for the two STARTTLS modes: the session sends STARTTLS, then calls
    /// [`Transport::upgrade_tls`](super::Transport::upgrade_tls).
    pub fn uses_starttls(self) -> bool {
        matches!(self, TlsMode::StartTls | TlsMode::StartTlsOpportunistic)
    }

    /// True when the connection must end up encrypted or fail ([`TlsMode::Implicit`], [`TlsMode::StartTls`]).
    pub fn requires_tls(self) -> bool {
        matches!(self, TlsMode::Implicit | TlsMode::StartTls)
    }

    /// The usual port for this mode: 993 for implicit TLS, 143 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 993,
            TlsMode::Plain | TlsMode::StartTls | TlsMode::StartTlsOpportunistic => 143,
        }
    }

    /// The name used in JSON and messages: `plain`, `implicit`, `start-tls`, `start-tls-opportunistic`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Plain => "plain",
            TlsMode::Implicit => "implicit",
            TlsMode::StartTls => "start-tls",
            TlsMode::StartTlsOpportunistic => "start-tls-opportunistic",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_display_like_addresses() {
        assert_eq!(
            Endpoint::new("mail.example.com", 143).to_string(),
            "mail.example.com:143"
        );
        assert_eq!(Endpoint::new("192.0.2.7", 993).to_string(), "192.0.2.7:993");
        assert_eq!(Endpoint::new("::1", 143).to_string(), "[::1]:143");
        assert_eq!(Endpoint::new("[2001:db8::1]", 143).host, "2001:db8::1");
        assert!(Endpoint::new("::1", 143).is_ip_literal());
        assert!(!Endpoint::new("localhost", 143).is_ip_literal());
    }

    #[test]
    fn tls_mode_names_match_json() {
        for mode in [
            TlsMode::Plain,
            TlsMode::Implicit,
            TlsMode::StartTls,
            TlsMode::StartTlsOpportunistic,
        ] {
            let json = serde_json::to_string(&mode).expect("a unit variant serialises");
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
        }
        assert!(TlsMode::Implicit.is_encrypted_from_start());
        assert!(!TlsMode::StartTls.is_encrypted_from_start());
        assert!(TlsMode::StartTlsOpportunistic.uses_starttls());
        assert!(!TlsMode::StartTlsOpportunistic.requires_tls());
        assert_eq!(TlsMode::Implicit.default_port(), 993);
    }
}
