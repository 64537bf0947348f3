//! What the user asked to probe: `host`, `host:port`, `[v6addr]:port`, or an IMAP URL whose user and mailbox fill in
//! the defaults. Pure parsing; shared by the probe and the shell.

use serde::Serialize;
use thiserror::Error;

use crate::proto::url::ImapUrl;
use crate::transport::Endpoint;

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port, when the user gave one.
    pub port: Option<u16>,
    /// The user named by an IMAP URL target.
    pub user: Option<String>,
    /// The mailbox named by an IMAP URL target.
    pub mailbox: Option<String>,
}

/// Why a target cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// Nothing was given.
    #[error("the target is empty; give host, host:port, [v6]:port or an imap:// URL")]
    Empty,
    /// The port is not a number from 1 to 65535.
    #[error("`{0}` is not a port (1-65535)")]
    BadPort(String),
    /// A bracketed IPv6 address is not closed.
    #[error("`{0}`: an IPv6 address in [ ] is not closed")]
    UnclosedBracket(String),
    /// The IMAP URL does not parse.
    #[error("the IMAP URL cannot be used: {0}")]
    Url(String),
    /// Whitespace or control characters in the host.
    #[error("`{0}` is not a host name: it holds spaces or control characters")]
    BadHost(String),
}

impl Target {
    /// Parses a target as typed by the user.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(TargetError::Empty);
        }
        if input.len() > 7 && input[..7].eq_ignore_ascii_case("imap://") {
            let url = ImapUrl::parse(input).map_err(|e| TargetError::Url(e.to_string()))?;
            return Ok(Target {
                host: url.host.clone(),
                port: url.port,
                user: url.user.clone().filter(|u| !u.is_empty()),
                mailbox: url.mailbox.clone(),
            });
        }
        if let Some(rest) = input.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| TargetError::UnclosedBracket(input.into()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None if after.is_empty() => None,
                None => return Err(TargetError::BadPort(after.into())),
            };
            return Ok(Target {
                host: host.to_string(),
                port,
                user: None,
                mailbox: None,
            });
        }
        // A bare IPv6 address has several colons and no port.
        let (host, port) = match input.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => (input, None),
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (input, None),
        };
        if host.is_empty() {
            return Err(TargetError::Empty);
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TargetError::BadHost(host.into()));
        }
        Ok(Target {
            host: host.to_string(),
            port,
            user: None,
            mailbox: None,
        })
    }

    /// `host:port` with brackets around IPv6 addresses.
    pub fn authority(&self, default_port: u16) -> String {
        authority(&self.host, self.port.unwrap_or(default_port))
    }
}

/// `host:port`, with brackets around an IPv6 address (the transport's [`Endpoint`] form).
pub fn authority(host: &str, port: u16) -> String {
    Endpoint::new(host, port).to_string()
}

fn parse_port(text: &str) -> Result<u16, TargetError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(TargetError::BadPort(text.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            Target::parse("mail.example.com").map(|t| (t.host, t.port)),
            Ok(("mail.example.com".into(), None))
        );
        assert_eq!(Target::parse("host:143").map(|t| t.port), Ok(Some(143)));
        assert_eq!(
            Target::parse("[::1]:1143").map(|t| (t.host, t.port)),
            Ok(("::1".into(), Some(1143)))
        );
        assert_eq!(
            Target::parse("::1").map(|t| (t.host, t.port)),
            Ok(("::1".into(), None))
        );
        let t = Target::parse("imap://DOM%2Fuser%2Falias@host:143/INBOX").expect("url");
        assert_eq!(t.user.as_deref(), Some("DOM/user/alias"));
        assert_eq!(t.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(t.port, Some(143));
    }

    #[test]
    fn errors() {
        assert_eq!(Target::parse(""), Err(TargetError::Empty));
        assert_eq!(
            Target::parse("host:0"),
            Err(TargetError::BadPort("0".into()))
        );
        assert_eq!(
            Target::parse("host:99999"),
            Err(TargetError::BadPort("99999".into()))
        );
        assert!(matches!(
            Target::parse("[::1:143"),
            Err(TargetError::UnclosedBracket(_))
        ));
        assert!(matches!(
            Target::parse("http://x/"),
            Err(TargetError::BadPort(_))
        ));
        assert!(matches!(
            Target::parse("ho st"),
            Err(TargetError::BadHost(_))
        ));
        assert!(matches!(
            Target::parse("imap://@/"),
            Err(TargetError::Url(_))
        ));
        assert_eq!(
            Target::parse("[::1]:143").map(|t| t.authority(143)),
            Ok("[::1]:143".into())
        );
    }
}
