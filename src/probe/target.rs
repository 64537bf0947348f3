//! What the user asked to probe: `host`, `host:port`, `[v6addr]:port`, or an IMAP URL whose user and mailbox fill in
//! the defaults. Pure parsing; shared by the probe and the shell.
//!
//! Nothing here can panic on what a user types (a fuzz target, `fuzz/fuzz_targets/target.rs`, holds it to that). An
//! internationalised host name (`mail.bücher.de`) is converted to its ASCII form (`mail.xn--bcher-kva.de`) with IDNA,
//! as the `url` crate does (UTS #46): that form goes to DNS and TLS, and the form as typed is kept for display.

use serde::Serialize;
use thiserror::Error;

use crate::proto::url::ImapUrl;
use crate::transport::Endpoint;

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The host name or IP address (IPv6 without brackets), in its ASCII form: what DNS and TLS are given.
    pub host: String,
    /// The host as typed, when it differs from [`Target::host`]: an internationalised name (`mail.bücher.de`, whose
    /// `host` is `mail.xn--bcher-kva.de`). Reports show both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_unicode: Option<String>,
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
    /// Characters no host name or IP address can have (spaces, controls, `/`, `@`, ...), or a malformed IPv6 address.
    #[error("`{0}` is not a host name or IP address: a host name is made of letters, digits, `-`, `.`, `_` and `~`")]
    BadHost(String),
    /// An internationalised host name that IDNA cannot convert to ASCII.
    #[error("`{host}` is not a valid internationalised host name: {reason}")]
    BadIdn {
        /// The host as typed.
        host: String,
        /// Why IDNA refused it.
        reason: String,
    },
}

impl Target {
    /// Parses a target as typed by the user.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(TargetError::Empty);
        }
        // `get`, not slicing: byte 7 may fall inside a character (`mail.bücher.de`).
        if input
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("imap://"))
        {
            let url = ImapUrl::parse(input).map_err(|e| TargetError::Url(e.to_string()))?;
            let (host, host_unicode) = ascii_host(&url.host)?;
            return Ok(Target {
                host,
                host_unicode,
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
            // An IPv6 address, with an optional zone (`fe80::1%eth0`).
            if !is_ipv6(host) {
                return Err(TargetError::BadHost(input.into()));
            }
            return Ok(Target {
                host: host.to_string(),
                host_unicode: None,
                port,
                user: None,
                mailbox: None,
            });
        }
        // A bare IPv6 address has several colons and no port.
        let (host, port) = match input.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                if !is_ipv6(input) {
                    return Err(TargetError::BadHost(input.into()));
                }
                return Ok(Target {
                    host: input.to_string(),
                    host_unicode: None,
                    port: None,
                    user: None,
                    mailbox: None,
                });
            }
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (input, None),
        };
        if host.is_empty() {
            return Err(TargetError::Empty);
        }
        let host_char = |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') || !c.is_ascii()
        };
        if !host.chars().all(host_char) || host.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(TargetError::BadHost(host.into()));
        }
        let (host, host_unicode) = ascii_host(host)?;
        Ok(Target {
            host,
            host_unicode,
            port,
            user: None,
            mailbox: None,
        })
    }

    /// `host:port` with brackets around IPv6 addresses (the ASCII form).
    pub fn authority(&self, default_port: u16) -> String {
        authority(&self.host, self.port.unwrap_or(default_port))
    }

    /// The host for a reader: `mail.bücher.de (mail.xn--bcher-kva.de)` for an internationalised name, else the host.
    pub fn host_for_display(&self) -> String {
        match &self.host_unicode {
            Some(typed) => format!("{typed} ({})", self.host),
            None => self.host.clone(),
        }
    }
}

/// An IPv6 address, with an optional zone of ASCII letters, digits, `-`, `.` and `_` (`fe80::1%eth0`).
fn is_ipv6(text: &str) -> bool {
    let (address, zone) = match text.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (text, None),
    };
    address.parse::<std::net::Ipv6Addr>().is_ok()
        && zone.is_none_or(|z| {
            !z.is_empty()
                && z.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        })
}

/// The ASCII form of a host, and the form as typed when that differs. ASCII hosts (names, IPv4, IPv6) are kept as
/// they are; a name with non-ASCII characters goes through IDNA (UTS #46, as the `url` crate applies it).
fn ascii_host(host: &str) -> Result<(String, Option<String>), TargetError> {
    if host.is_ascii() {
        return Ok((host.to_string(), None));
    }
    let bad = |reason: String| TargetError::BadIdn {
        host: host.to_string(),
        reason,
    };
    match url::Host::parse(host) {
        // IDNA maps some characters to ASCII punctuation (a fullwidth `；` becomes `;`): the result must still be a
        // host name.
        Ok(url::Host::Domain(ascii))
            if !ascii.is_empty()
                && ascii
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')) =>
        {
            Ok((ascii, Some(host.to_string())))
        }
        Ok(url::Host::Domain(ascii)) => Err(bad(format!(
            "its ASCII form `{}` holds characters a host name cannot have",
            ascii.escape_default()
        ))),
        Ok(other) => Ok((other.to_string(), Some(host.to_string()))),
        Err(e) => Err(bad(e.to_string())),
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

    #[test]
    fn internationalised_host_names_do_not_panic_and_get_their_ascii_form() {
        let t = Target::parse("mail.bücher.de").expect("an IDN host");
        assert_eq!(t.host, "mail.xn--bcher-kva.de");
        assert_eq!(t.host_unicode.as_deref(), Some("mail.bücher.de"));
        assert_eq!(
            t.host_for_display(),
            "mail.bücher.de (mail.xn--bcher-kva.de)"
        );
        assert_eq!(t.authority(143), "mail.xn--bcher-kva.de:143");
        let t = Target::parse("MAIL.Bücher.de:993").expect("an IDN host and port");
        assert_eq!(
            (t.host.as_str(), t.port),
            ("mail.xn--bcher-kva.de", Some(993))
        );
        let t = Target::parse("imap://jdoe@bücher.de/INBOX").expect("an IDN URL");
        assert_eq!(t.host, "xn--bcher-kva.de");
        assert_eq!(t.user.as_deref(), Some("jdoe"));
        let t = Target::parse("日本語.jp").expect("a CJK name");
        assert_eq!(t.host, "xn--wgv71a119e.jp");
        // Short inputs whose 7th byte is inside a character.
        for input in ["ü", "abcdeéf", "imap:/é", "ímap://x", "[ü]", "ü:143"] {
            let _ = Target::parse(input);
        }
        assert_eq!(
            Target::parse("mail.example.com").map(|t| t.host_unicode),
            Ok(None)
        );
    }

    #[test]
    fn names_idna_cannot_convert_are_refused() {
        // Found by the `target` fuzz target: a URL with another scheme once passed as a bare IPv6 address.
        for bad in [
            "iiap://DOM%2Fuser%2Falias@host:143/INBOX",
            "a:b:c",
            "user@host",
            "host/INBOX",
            "h%st",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(TargetError::BadHost(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Target::parse("a\u{fffd}b.de"),
            Err(TargetError::BadIdn { .. })
        ));
        assert!(matches!(
            Target::parse("[]:143"),
            Err(TargetError::BadHost(_))
        ));
        assert!(matches!(
            Target::parse("[ü]:143"),
            Err(TargetError::BadHost(_))
        ));
        assert!(matches!(
            Target::parse("[not-v6]"),
            Err(TargetError::BadHost(_))
        ));
        // Found by the `target` fuzz target: IDNA maps the fullwidth semicolon to `;`.
        assert!(matches!(
            Target::parse("b\u{ff1b}"),
            Err(TargetError::BadIdn { .. })
        ));
        // Found by the `target` fuzz target: a zone holding non-ASCII characters.
        for bad in [
            "[::0%\u{fffd}%%.d]",
            "[::1%]",
            "::1%",
            "::1%a b",
            "[fe80::1%eth0/x]",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(TargetError::BadHost(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Target::parse("fe80::1%eth0").map(|t| t.host),
            Ok("fe80::1%eth0".into())
        );
        assert_eq!(
            Target::parse("[fe80::1%eth0]:143").map(|t| t.host),
            Ok("fe80::1%eth0".into())
        );
    }

    proptest::proptest! {
        #[test]
        fn any_input_gives_a_target_or_an_error(input in "\\PC{0,40}|(?s:.{0,12})|imap://\\PC{0,30}") {
            if let Ok(t) = Target::parse(&input) {
                proptest::prop_assert!(t.host.is_ascii() && !t.host.is_empty(), "{t:?}");
            }
        }
    }
}
