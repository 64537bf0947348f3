//! IMAP URLs (RFC 5092, and the RFC 2192 forms servers still send): the address inside a `[REFERRAL ...]` code.
//!
//! ```text
//! imap://[enc-user][;AUTH=(*|mech)]@host[:port][/enc-mailbox[;UIDVALIDITY=n][/;UID=n[/;SECTION=s][/;PARTIAL=o.l]]][?search]
//! ```
//!
//! This module owns [`ImapUrl`] (parse and canonical display) and [`UrlError`]. It is written by hand rather than
//! on top of the `url` crate, because that crate re-encodes `;` and so loses `;AUTH=`; `url` is only used to check
//! IPv6 literals.
//!
//! Parsing is tolerant of what real servers send: an upper-case scheme (`IMAP://`, the RFC examples), lower-case
//! percent-encoding (`%2f`, Dovecot), no `/` after the host (Exchange 5.5), an empty user (`;AUTH=*@`, Cyrus), and
//! raw characters that should have been percent-encoded but cannot be mistaken for anything else.

use std::fmt;

/// Default IMAP port (RFC 3501), used when a URL names none.
pub const DEFAULT_PORT: u16 = 143;

/// An IMAP URL, decoded.
///
/// `user` and `mailbox` are percent-decoded UTF-8. A `+` is a literal plus sign, never a space (RFC 5092): a
/// server that form-encodes the user name (Zimbra writes `+` for a space) is sending a different name, and the
/// referral will be followed with the `+` in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImapUrl {
    /// The user name, percent-decoded. `None`: the URL has no user part at all. `Some("")`: an empty user, as in
    /// Cyrus's `imap://;AUTH=*@host/INBOX`, meaning "keep the name you logged in with".
    pub user: Option<String>,
    /// The `;AUTH=` part; `None` when there is none.
    pub auth: Option<UrlAuth>,
    /// The host as written (case preserved); an IPv6 literal is stored without its brackets.
    pub host: String,
    /// The port, only when the URL names one explicitly.
    pub port: Option<u16>,
    /// The mailbox, percent-decoded UTF-8 (not modified UTF-7). `None` when there is no path, or the path is `/` only.
    pub mailbox: Option<String>,
    /// The `;UIDVALIDITY=` of the mailbox, when given.
    pub uidvalidity: Option<u32>,
    /// Everything after the mailbox part (`/;UID=...`, `?search`), verbatim.
    pub rest: Option<String>,
    /// True when a `/` follows the host and port (always so when there is a mailbox): `imap://h/` rather than
    /// `imap://h`. RFC 2192 required the slash; Exchange 5.5 before SP3 did not send it. Informational only.
    pub had_trailing_slash: bool,
}

/// The `;AUTH=` part of an IMAP URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum UrlAuth {
    /// `;AUTH=*`: any mechanism the server offers.
    Any,
    /// `;AUTH=MECH`: that SASL mechanism (or `LOGIN` for the LOGIN command), upper-cased, e.g. `"PLAIN"`, `"GSSAPI"`.
    Mechanism(String),
}

/// Why a URL cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum UrlError {
    /// The URL names another scheme (`http://`, `pop://`).
    #[error("scheme `{scheme}` is not imap, so the referral cannot be followed by an IMAP client")]
    NotImap {
        /// The scheme as written.
        scheme: String,
    },
    /// There is no `scheme://` at the start.
    #[error("the referral does not start with `imap://`, so it names no server to go to")]
    MissingScheme,
    /// `imap://` with no host after it.
    #[error("the URL names no host, so there is no server to go to")]
    EmptyHost,
    /// The port is not a number from 1 to 65535.
    #[error("port `{0}` is not a number from 1 to 65535, so there is no server to connect to")]
    BadPort(String),
    /// A `%` is not followed by two hexadecimal digits.
    #[error(
        "`{0}` has a `%` that is not followed by two hexadecimal digits, so it cannot be decoded"
    )]
    BadPercentEncoding(String),
    /// The percent-decoded user name or mailbox is not UTF-8.
    #[error("the percent-decoded user name or mailbox is not UTF-8 (RFC 5092 requires UTF-8)")]
    NotUtf8,
    /// `;UIDVALIDITY=` is not a number from 1 to 4294967295.
    #[error("UIDVALIDITY `{0}` is not a number from 1 to 4294967295")]
    BadUidValidity(String),
    /// The host is neither a host name nor an IP address.
    #[error("`{0}` is not a host name or IP address, so there is no server to connect to")]
    BadHost(String),
    /// `;AUTH=` is followed by neither `*` nor a mechanism name.
    #[error(
        "`;AUTH={0}` names no authentication mechanism (expected `*` or a name such as PLAIN)"
    )]
    BadAuth(String),
}

impl ImapUrl {
    /// Parses an IMAP URL. The scheme is case-insensitive (`IMAP://` is fine); surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Result<ImapUrl, UrlError> {
        let s = s.trim();
        let (scheme, after_scheme) = split_scheme(s)?;
        if !scheme.eq_ignore_ascii_case("imap") {
            // "host:143" is a host and port, not a scheme.
            if after_scheme.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(UrlError::MissingScheme);
            }
            return Err(UrlError::NotImap {
                scheme: scheme.to_owned(),
            });
        }
        let Some(body) = after_scheme.strip_prefix("//") else {
            return Err(UrlError::MissingScheme);
        };

        // The authority runs to the first '/' or '?'; the user info ends at its last '@'.
        let auth_end = body.find(['/', '?']).unwrap_or(body.len());
        let (authority, path) = body.split_at(auth_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (
                Some(authority.get(..at).unwrap_or_default()),
                authority.get(at + 1..).unwrap_or_default(),
            ),
            None => (None, authority),
        };

        let (user, auth) = match userinfo {
            None => (None, None),
            Some(info) => parse_userinfo(info)?,
        };
        let (host, port) = parse_hostport(hostport)?;
        let path = parse_path(path)?;

        Ok(ImapUrl {
            user,
            auth,
            host,
            port,
            mailbox: path.mailbox,
            uidvalidity: path.uidvalidity,
            rest: path.rest,
            had_trailing_slash: path.slash,
        })
    }

    /// The port to connect to: the explicit one, or 143.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// True when the host is an IPv6 literal.
    pub fn host_is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// `host:port` (or `[v6]:port`) with the effective port, for display and for connecting.
    pub fn authority(&self) -> String {
        if self.host_is_ipv6() {
            format!("[{}]:{}", self.host, self.port_or_default())
        } else {
            format!("{}:{}", self.host, self.port_or_default())
        }
    }

    /// The name to log in with at the referred server: the URL's user, or `original` (the name used so far) when
    /// the URL has no user or an empty one.
    pub fn login_user<'a>(&'a self, original: &'a str) -> &'a str {
        match self.user.as_deref() {
            Some(u) if !u.is_empty() => u,
            _ => original,
        }
    }

    /// True when the URL asks for `;AUTH=PLAIN`.
    pub fn wants_plain(&self) -> bool {
        matches!(&self.auth, Some(UrlAuth::Mechanism(m)) if m == "PLAIN")
    }
}

/// Canonical RFC 5092 form: lower-case `imap://`, user and mailbox percent-encoded with upper-case hex.
///
/// A URL with an `auth` but no `user` is written with an empty user (`imap://;AUTH=*@host`), which parses back with
/// `user == Some("")`.
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("imap://")?;
        if self.user.is_some() || self.auth.is_some() {
            if let Some(user) = &self.user {
                f.write_str(&percent_encode(user, is_achar))?;
            }
            match &self.auth {
                None => {}
                Some(UrlAuth::Any) => f.write_str(";AUTH=*")?,
                Some(UrlAuth::Mechanism(m)) => {
                    write!(f, ";AUTH={}", percent_encode(m, is_achar))?;
                }
            }
            f.write_str("@")?;
        }
        if self.host_is_ipv6() {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if self.had_trailing_slash || self.mailbox.is_some() || self.uidvalidity.is_some() {
            f.write_str("/")?;
        }
        if let Some(mailbox) = &self.mailbox {
            let encoded = percent_encode(mailbox, is_bchar);
            // A raw '/' just before ";UID=..." would be read back as part of that tail ("INBOX/;UID=20"), so a mailbox
            // ending in '/' followed by a ';' tail writes that last '/' encoded.
            let tail_starts_with_semicolon = self.uidvalidity.is_none()
                && self.rest.as_deref().is_some_and(|r| r.starts_with(';'));
            match encoded.strip_suffix('/') {
                Some(head) if tail_starts_with_semicolon => write!(f, "{head}%2F")?,
                _ => f.write_str(&encoded)?,
            }
        }
        if let Some(v) = self.uidvalidity {
            write!(f, ";UIDVALIDITY={v}")?;
        }
        if let Some(rest) = &self.rest {
            f.write_str(rest)?;
        }
        Ok(())
    }
}

/// Splits `scheme:rest`, checking the scheme's characters (RFC 3986).
fn split_scheme(s: &str) -> Result<(&str, &str), UrlError> {
    let colon = s.find(':').ok_or(UrlError::MissingScheme)?;
    let scheme = s.get(..colon).unwrap_or_default();
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return Err(UrlError::MissingScheme);
    }
    Ok((scheme, s.get(colon + 1..).unwrap_or_default()))
}

/// Splits the user info into the user and `;AUTH=`.
fn parse_userinfo(info: &str) -> Result<(Option<String>, Option<UrlAuth>), UrlError> {
    let Some(pos) = find_ascii_ci(info, ";AUTH=") else {
        return Ok((Some(percent_decode(info)?), None));
    };
    let user = percent_decode(info.get(..pos).unwrap_or_default())?;
    let mech_text = info.get(pos + ";AUTH=".len()..).unwrap_or_default();
    let mech = percent_decode(mech_text)?.to_ascii_uppercase();
    // `*` is never percent-encoded in a well-formed URL, but `%2A` cannot mean anything else.
    let auth = if mech == "*" {
        UrlAuth::Any
    } else {
        let valid = !mech.is_empty()
            && mech
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(UrlError::BadAuth(mech_text.to_owned()));
        }
        UrlAuth::Mechanism(mech)
    };
    Ok((Some(user), Some(auth)))
}

/// Parses `host[:port]` or `[v6][:port]`.
fn parse_hostport(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    if hostport.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    let (host, port_text) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let close = bracketed
            .find(']')
            .ok_or_else(|| UrlError::BadHost(hostport.to_owned()))?;
        let inner = bracketed.get(..close).unwrap_or_default();
        let after = bracketed.get(close + 1..).unwrap_or_default();
        if inner.is_empty() {
            return Err(UrlError::EmptyHost);
        }
        let is_v6 = matches!(
            url::Host::parse(&format!("[{inner}]")),
            Ok(url::Host::Ipv6(_))
        );
        if !is_v6 {
            return Err(UrlError::BadHost(format!("[{inner}]")));
        }
        let port_text = if after.is_empty() {
            None
        } else {
            Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlError::BadHost(hostport.to_owned()))?,
            )
        };
        (inner, port_text)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    if !hostport.starts_with('[') && !is_reg_name(host) {
        return Err(UrlError::BadHost(host.to_owned()));
    }
    let port = match port_text {
        // RFC 3986 allows an empty port after ':', meaning the default.
        None | Some("") => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok((host.to_owned(), port))
}

/// A host name or IPv4 address as written: letters (any script, for names written in Unicode), digits, `-._~`.
fn is_reg_name(host: &str) -> bool {
    host.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// A port from 1 to 65535, digits only.
fn parse_port(p: &str) -> Result<u16, UrlError> {
    let bad = || UrlError::BadPort(p.to_owned());
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

/// The parts after the authority.
struct PathParts {
    slash: bool,
    mailbox: Option<String>,
    uidvalidity: Option<u32>,
    rest: Option<String>,
}

/// Parses `[/enc-mailbox[;UIDVALIDITY=n][rest]]` or `?search`.
fn parse_path(path: &str) -> Result<PathParts, UrlError> {
    let Some(body) = path.strip_prefix('/') else {
        return Ok(PathParts {
            slash: false,
            mailbox: None,
            uidvalidity: None,
            rest: non_empty(path),
        });
    };
    // In a well-formed URL, ';' and '?' are percent-encoded inside the mailbox, so the first raw one ends it.
    let stop = body.find([';', '?']).unwrap_or(body.len());
    let after_stop = body.get(stop..).unwrap_or_default();
    let mut uidvalidity = None;
    let (mailbox_text, rest) =
        if let Some(value_and_rest) = strip_prefix_ci(after_stop, ";UIDVALIDITY=") {
            let value_end = value_and_rest
                .find(['/', '?', ';'])
                .unwrap_or(value_and_rest.len());
            let value = value_and_rest.get(..value_end).unwrap_or_default();
            uidvalidity = Some(parse_uidvalidity(value)?);
            (
                body.get(..stop).unwrap_or_default(),
                value_and_rest.get(value_end..).unwrap_or_default(),
            )
        } else if after_stop.starts_with(';') && stop > 0 && body.get(stop - 1..stop) == Some("/") {
            // "INBOX/;UID=20": the '/' belongs to the "/;UID=" part.
            (
                body.get(..stop - 1).unwrap_or_default(),
                body.get(stop - 1..).unwrap_or_default(),
            )
        } else {
            (body.get(..stop).unwrap_or_default(), after_stop)
        };
    let mailbox = percent_decode(mailbox_text)?;
    Ok(PathParts {
        slash: true,
        mailbox: if mailbox.is_empty() {
            None
        } else {
            Some(mailbox)
        },
        uidvalidity,
        rest: non_empty(rest),
    })
}

/// A UIDVALIDITY: digits only, 1 to 4294967295.
fn parse_uidvalidity(value: &str) -> Result<u32, UrlError> {
    let bad = || UrlError::BadUidValidity(value.to_owned());
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match value.parse::<u32>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

fn non_empty(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s.to_owned())
    }
}

/// Byte position of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| {
        h.get(i..i + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(n))
    })
}

/// `s` without the ASCII prefix `prefix`, ignoring ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Decodes `%XX` (upper- or lower-case hex) and checks that the result is UTF-8. `+` stays `+`.
fn percent_decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex_value(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex_value(*c));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                _ => return Err(UrlError::BadPercentEncoding(s.to_owned())),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::NotUtf8)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 5092 `achar` (unencoded): unreserved, `! $ ' ( ) * + ,`, `&`, `=`.
fn is_achar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'&'
                | b'='
        )
}

/// RFC 5092 `bchar` (unencoded): `achar`, `:`, `@`, `/`.
fn is_bchar(b: u8) -> bool {
    is_achar(b) || matches!(b, b':' | b'@' | b'/')
}

/// Percent-encodes every byte outside `keep`, with upper-case hex.
fn percent_encode(s: &str, keep: fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/server-lines.txt");

    /// Every URL inside a `[REFERRAL ...]` code of the fixture, with its line.
    fn fixture_urls() -> Vec<(&'static str, &'static str)> {
        let mut urls = Vec::new();
        for line in FIXTURE.lines().filter_map(|l| l.strip_prefix("S: ")) {
            let Some(start) = line.find("[REFERRAL ") else {
                continue;
            };
            let inside = &line[start + "[REFERRAL ".len()..];
            let inside = &inside[..inside.find(']').expect("referral code is closed")];
            for url in inside.split_whitespace() {
                urls.push((line, url));
            }
        }
        urls
    }

    fn url(
        user: Option<&str>,
        auth: Option<UrlAuth>,
        host: &str,
        port: Option<u16>,
        mailbox: Option<&str>,
        slash: bool,
    ) -> ImapUrl {
        ImapUrl {
            user: user.map(str::to_owned),
            auth,
            host: host.to_owned(),
            port,
            mailbox: mailbox.map(str::to_owned),
            uidvalidity: None,
            rest: None,
            had_trailing_slash: slash,
        }
    }

    fn mech(m: &str) -> Option<UrlAuth> {
        Some(UrlAuth::Mechanism(m.to_owned()))
    }

    #[test]
    fn every_fixture_referral_parses() {
        let urls = fixture_urls();
        assert!(
            urls.len() >= 21,
            "the fixture has 21 REFERRAL URLs, found {}",
            urls.len()
        );
        for (line, u) in urls {
            let parsed = ImapUrl::parse(u).unwrap_or_else(|e| panic!("{u} in {line:?}: {e}"));
            // The canonical form parses back to the same value.
            assert_eq!(
                ImapUrl::parse(&parsed.to_string()),
                Ok(parsed.clone()),
                "{u}"
            );
        }
    }

    #[test]
    fn fixture_referrals_decode_as_expected() {
        let any = Some(UrlAuth::Any);
        let cases = [
            (
                "imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com",
                url(
                    Some("redmond/reedl/imapf"),
                    any.clone(),
                    "reedlm1.reedlm1.com",
                    None,
                    None,
                    false,
                ),
            ),
            (
                "imap://peter;AUTH=*@hostname/INBOX",
                url(
                    Some("peter"),
                    any.clone(),
                    "hostname",
                    None,
                    Some("INBOX"),
                    true,
                ),
            ),
            (
                "imap://DOMname%2fUser1%2fAlias1;AUTH=PLAIN@127.0.0.2:14300/",
                url(
                    Some("DOMname/User1/Alias1"),
                    mech("PLAIN"),
                    "127.0.0.2",
                    Some(14300),
                    None,
                    true,
                ),
            ),
            (
                "imap://user1;AUTH=PLAIN@127.0.0.2:14300/",
                url(
                    Some("user1"),
                    mech("PLAIN"),
                    "127.0.0.2",
                    Some(14300),
                    None,
                    true,
                ),
            ),
            (
                "imap://port143ref;AUTH=PLAIN@127.0.0.2/",
                url(
                    Some("port143ref"),
                    mech("PLAIN"),
                    "127.0.0.2",
                    None,
                    None,
                    true,
                ),
            ),
            (
                "imap://hostref;AUTH=PLAIN@localhost:14301/",
                url(
                    Some("hostref"),
                    mech("PLAIN"),
                    "localhost",
                    Some(14301),
                    None,
                    true,
                ),
            ),
            (
                "imap://;AUTH=*@127.0.0.2:14300/Public%20Folders/NoReplica",
                url(
                    Some(""),
                    any.clone(),
                    "127.0.0.2",
                    Some(14300),
                    Some("Public Folders/NoReplica"),
                    true,
                ),
            ),
            (
                "imap://;AUTH=*@127.0.0.2:14300/INBOX",
                url(
                    Some(""),
                    any.clone(),
                    "127.0.0.2",
                    Some(14300),
                    Some("INBOX"),
                    true,
                ),
            ),
            (
                "IMAP://user;AUTH=*@SERVER2/REMOTE",
                url(
                    Some("user"),
                    any.clone(),
                    "SERVER2",
                    None,
                    Some("REMOTE"),
                    true,
                ),
            ),
            (
                "IMAP://user;AUTH=*@SERVER2/",
                url(Some("user"), any.clone(), "SERVER2", None, None, true),
            ),
            (
                "IMAP://MIKE@SERVER2/",
                url(Some("MIKE"), None, "SERVER2", None, None, true),
            ),
            (
                "IMAP://user;AUTH=GSSAPI@SERVER2/",
                url(Some("user"), mech("GSSAPI"), "SERVER2", None, None, true),
            ),
        ];
        for (text, expected) in cases {
            assert!(
                fixture_urls().iter().any(|(_, u)| *u == text),
                "{text} is in the fixture"
            );
            assert_eq!(ImapUrl::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn kb_url_helpers() {
        let u =
            ImapUrl::parse("imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com").unwrap();
        assert_eq!(u.port_or_default(), 143);
        assert_eq!(u.authority(), "reedlm1.reedlm1.com:143");
        assert_eq!(u.login_user("redmond/reedl/imapf2"), "redmond/reedl/imapf");
        assert!(!u.wants_plain());
        assert!(!u.host_is_ipv6());
        assert_eq!(
            u.to_string(),
            "imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com"
        );
    }

    #[test]
    fn empty_user_keeps_the_original_login() {
        let u = ImapUrl::parse("imap://;AUTH=*@127.0.0.2:14300/INBOX").unwrap();
        assert_eq!(u.login_user("DOMname/UserN/AliasN"), "DOMname/UserN/AliasN");
        let u = ImapUrl::parse("imap://host/INBOX").unwrap();
        assert_eq!(u.user, None);
        assert_eq!(u.login_user("me"), "me");
    }

    #[test]
    fn dovecot_lower_case_hex_is_canonicalised() {
        let u =
            ImapUrl::parse("imap://DOMname%2fUser1%2fAlias1;AUTH=PLAIN@127.0.0.2:14300/").unwrap();
        assert!(u.wants_plain());
        assert_eq!(u.authority(), "127.0.0.2:14300");
        assert_eq!(
            u.to_string(),
            "imap://DOMname%2FUser1%2FAlias1;AUTH=PLAIN@127.0.0.2:14300/"
        );
    }

    #[test]
    fn auth_is_case_insensitive_and_upper_cased() {
        let u = ImapUrl::parse("imap://bob;auth=plain@h").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.auth, mech("PLAIN"));
        assert_eq!(u.to_string(), "imap://bob;AUTH=PLAIN@h");
        let u = ImapUrl::parse("imap://bob;Auth=*@h").unwrap();
        assert_eq!(u.auth, Some(UrlAuth::Any));
        let u = ImapUrl::parse("imap://bob;AUTH=%2a@h").unwrap();
        assert_eq!(u.auth, Some(UrlAuth::Any));
        assert_eq!(u.to_string(), "imap://bob;AUTH=*@h");
    }

    #[test]
    fn ipv6_hosts() {
        let u = ImapUrl::parse("imap://u@[::1]:1443/INBOX").unwrap();
        assert_eq!(u.host, "::1");
        assert!(u.host_is_ipv6());
        assert_eq!(u.port, Some(1443));
        assert_eq!(u.authority(), "[::1]:1443");
        assert_eq!(u.to_string(), "imap://u@[::1]:1443/INBOX");
        let u = ImapUrl::parse("imap://[2001:DB8::2]").unwrap();
        assert_eq!(u.host, "2001:DB8::2");
        assert_eq!(u.authority(), "[2001:DB8::2]:143");
        assert_eq!(
            ImapUrl::parse("imap://[::1"),
            Err(UrlError::BadHost("[::1".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://[nope]/"),
            Err(UrlError::BadHost("[nope]".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://[::1]x/"),
            Err(UrlError::BadHost("[::1]x".into()))
        );
        assert_eq!(ImapUrl::parse("imap://[]/"), Err(UrlError::EmptyHost));
    }

    #[test]
    fn no_slash_after_host() {
        let u = ImapUrl::parse("imap://h").unwrap();
        assert!(!u.had_trailing_slash);
        assert_eq!(u.mailbox, None);
        assert_eq!(u.to_string(), "imap://h");
        let u = ImapUrl::parse("imap://h/").unwrap();
        assert!(u.had_trailing_slash);
        assert_eq!(u.to_string(), "imap://h/");
    }

    #[test]
    fn uidvalidity_uid_and_search() {
        let u = ImapUrl::parse("imap://h/INBOX;UIDVALIDITY=785799047/;UID=113330/;SECTION=1.5")
            .unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(u.uidvalidity, Some(785799047));
        assert_eq!(u.rest.as_deref(), Some("/;UID=113330/;SECTION=1.5"));
        assert_eq!(
            u.to_string(),
            "imap://h/INBOX;UIDVALIDITY=785799047/;UID=113330/;SECTION=1.5"
        );

        let u = ImapUrl::parse("imap://h/gray-council;uidvalidity=20?SUBJECT%20shadows").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("gray-council"));
        assert_eq!(u.uidvalidity, Some(20));
        assert_eq!(u.rest.as_deref(), Some("?SUBJECT%20shadows"));

        let u = ImapUrl::parse("imap://h/INBOX/;UID=20").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(u.rest.as_deref(), Some("/;UID=20"));
        assert_eq!(u.to_string(), "imap://h/INBOX/;UID=20");

        let u = ImapUrl::parse("imap://h/?SUBJECT%20x").unwrap();
        assert_eq!(u.mailbox, None);
        assert!(u.had_trailing_slash);
        assert_eq!(u.rest.as_deref(), Some("?SUBJECT%20x"));

        let u = ImapUrl::parse("imap://h?x").unwrap();
        assert!(!u.had_trailing_slash);
        assert_eq!(u.rest.as_deref(), Some("?x"));
        assert_eq!(u.to_string(), "imap://h?x");

        for bad in ["0", "", "x", "4294967296", "12abc"] {
            assert_eq!(
                ImapUrl::parse(&format!("imap://h/INBOX;UIDVALIDITY={bad}")),
                Err(UrlError::BadUidValidity(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn plus_is_not_a_space() {
        let u = ImapUrl::parse("imap://first+last;AUTH=*@zimbra.example/").unwrap();
        assert_eq!(u.user.as_deref(), Some("first+last"));
    }

    #[test]
    fn user_may_hold_an_at_sign() {
        let u = ImapUrl::parse("imap://bob%40example.com@h/").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob@example.com"));
        // Tolerated raw: the last '@' of the authority ends the user.
        let u = ImapUrl::parse("imap://bob@example.com@h/").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob@example.com"));
        assert_eq!(u.host, "h");
        assert_eq!(u.to_string(), "imap://bob%40example.com@h/");
    }

    #[test]
    fn display_escapes_user_and_mailbox() {
        let u = url(
            Some("a/b:c@d;e?f#g%h i+j"),
            None,
            "h",
            None,
            Some("Public Folders/x;y?z#%"),
            true,
        );
        assert_eq!(
            u.to_string(),
            "imap://a%2Fb%3Ac%40d%3Be%3Ff%23g%25h%20i+j@h/Public%20Folders/x%3By%3Fz%23%25"
        );
        assert_eq!(ImapUrl::parse(&u.to_string()), Ok(u));
        let u = url(Some("Jürgen"), None, "h", None, Some("Entwürfe"), true);
        assert_eq!(u.to_string(), "imap://J%C3%BCrgen@h/Entw%C3%BCrfe");
    }

    #[test]
    fn empty_host_is_refused() {
        for s in [
            "imap://user@/INBOX",
            "imap://",
            "imap:///INBOX",
            "imap://:143/",
            "imap://u;AUTH=*@",
        ] {
            assert_eq!(ImapUrl::parse(s), Err(UrlError::EmptyHost), "{s}");
        }
    }

    #[test]
    fn bad_ports_are_refused() {
        for p in ["x", "0", "65536", "99999999999", "-1", "+1", "14 3"] {
            assert_eq!(
                ImapUrl::parse(&format!("imap://h:{p}/")),
                Err(UrlError::BadPort(p.into())),
                "{p}"
            );
        }
        assert_eq!(
            ImapUrl::parse("imap://h:65535/").map(|u| u.port),
            Ok(Some(65535))
        );
        assert_eq!(ImapUrl::parse("imap://h:/").map(|u| u.port), Ok(None));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(
            ImapUrl::parse("http://example.com/"),
            Err(UrlError::NotImap {
                scheme: "http".into()
            })
        );
        assert_eq!(
            ImapUrl::parse("pop://u@h"),
            Err(UrlError::NotImap {
                scheme: "pop".into()
            })
        );
        assert_eq!(
            ImapUrl::parse("reedlm1.reedlm1.com"),
            Err(UrlError::MissingScheme)
        );
        assert_eq!(ImapUrl::parse("//h/"), Err(UrlError::MissingScheme));
        assert_eq!(ImapUrl::parse("imap:h"), Err(UrlError::MissingScheme));
        assert_eq!(ImapUrl::parse(""), Err(UrlError::MissingScheme));
        assert_eq!(
            ImapUrl::parse("reedlm1.com:143"),
            Err(UrlError::MissingScheme)
        );
    }

    #[test]
    fn bad_encoding_is_refused() {
        assert_eq!(
            ImapUrl::parse("imap://a%2@h/"),
            Err(UrlError::BadPercentEncoding("a%2".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://h/IN%zzBOX"),
            Err(UrlError::BadPercentEncoding("IN%zzBOX".into()))
        );
        assert_eq!(ImapUrl::parse("imap://%FF@h/"), Err(UrlError::NotUtf8));
        assert_eq!(ImapUrl::parse("imap://h/%C3"), Err(UrlError::NotUtf8));
    }

    #[test]
    fn bad_hosts_and_auth_are_refused() {
        assert_eq!(
            ImapUrl::parse("imap://ho st/"),
            Err(UrlError::BadHost("ho st".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://h%41/"),
            Err(UrlError::BadHost("h%41".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://u;AUTH=@h/"),
            Err(UrlError::BadAuth("".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://u;AUTH=PL AIN@h/"),
            Err(UrlError::BadAuth("PL AIN".into()))
        );
    }

    #[test]
    fn error_messages_say_why() {
        assert_eq!(
            UrlError::NotImap {
                scheme: "http".into()
            }
            .to_string(),
            "scheme `http` is not imap, so the referral cannot be followed by an IMAP client"
        );
        assert!(UrlError::BadPort("0".into())
            .to_string()
            .contains("1 to 65535"));
    }

    fn dns_name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?){0,3}"
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            dns_name(),
            any::<u128>().prop_map(|n| core::net::Ipv6Addr::from(n).to_string()),
            any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        ]
    }

    fn auth() -> impl Strategy<Value = Option<UrlAuth>> {
        prop_oneof![
            Just(None),
            Just(Some(UrlAuth::Any)),
            "[A-Z][A-Z0-9_-]{0,19}".prop_map(|m| Some(UrlAuth::Mechanism(m))),
        ]
    }

    fn imap_url() -> impl Strategy<Value = ImapUrl> {
        (
            proptest::option::of(any::<String>()),
            auth(),
            host(),
            proptest::option::of(1..=65535u16),
            proptest::option::of(any::<String>().prop_filter("non-empty", |s| !s.is_empty())),
            proptest::option::of(1..=u32::MAX),
            any::<bool>(),
            proptest::option::of(prop_oneof![
                Just("/;UID=20".to_owned()),
                Just("/;UID=20/;SECTION=1.2".to_owned()),
                Just("?SUBJECT%20shadows".to_owned()),
            ]),
        )
            .prop_map(
                |(user, auth, host, port, mailbox, uidvalidity, slash, rest)| {
                    // An auth with no user is written (and parsed back) as an empty user.
                    let user = if auth.is_some() {
                        Some(user.unwrap_or_default())
                    } else {
                        user
                    };
                    let uidvalidity = mailbox.as_ref().and(uidvalidity);
                    let rest = mailbox.as_ref().and(rest);
                    ImapUrl {
                        had_trailing_slash: slash || mailbox.is_some(),
                        user,
                        auth,
                        host,
                        port,
                        mailbox,
                        uidvalidity,
                        rest,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn parse_undoes_display(u in imap_url()) {
            let text = u.to_string();
            prop_assert_eq!(ImapUrl::parse(&text), Ok(u), "{}", text);
        }

        #[test]
        fn display_is_ascii(u in imap_url()) {
            let text = u.to_string();
            prop_assert!(text.is_ascii() || !u.host.is_ascii(), "{}", text);
            prop_assert!(!text.contains(' '), "{}", text);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = ImapUrl::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_url_like_input(s in "(imap|IMAP)://[a-z;=*%@:/\\[\\]0-9A-F?.]{0,30}") {
            let _ = ImapUrl::parse(&s);
        }
    }

    /// Found by the imap_url fuzz target: a mailbox ending in '/' before a ';' tail did not round-trip.
    #[test]
    fn mailbox_ending_in_slash_before_a_semicolon_round_trips() {
        for s in ["imap://r/%2f;", "imap://h/INBOX%2F;x"] {
            let url = ImapUrl::parse(s).unwrap();
            assert_eq!(ImapUrl::parse(&url.to_string()).unwrap(), url, "{s}");
        }
    }

    // Pins for what decides where a password goes (issue 8, item 6: mutation testing).

    /// A URL with only a host, for building the exact cases below.
    fn bare(host: &str) -> ImapUrl {
        ImapUrl::parse(&format!("imap://{host}")).unwrap()
    }

    #[test]
    fn display_writes_the_slash_before_a_mailbox_even_without_a_trailing_slash() {
        // Survivor of scripts/mutants.sh: `||` turned into `&&` in the slash condition went unnoticed.
        let mut u = bare("h");
        assert!(!u.had_trailing_slash);
        u.mailbox = Some("INBOX".into());
        assert_eq!(u.to_string(), "imap://h/INBOX");
        let mut u = bare("h");
        u.uidvalidity = Some(7);
        assert_eq!(u.to_string(), "imap://h/;UIDVALIDITY=7");
        assert_eq!(bare("h").to_string(), "imap://h");
    }

    #[test]
    fn display_encodes_a_mailbox_s_last_slash_only_before_a_semicolon_tail() {
        // Survivors of scripts/mutants.sh: the `%2F` rule applied without a `;` tail, or despite a UIDVALIDITY.
        let mut u = bare("h");
        u.mailbox = Some("a/".into());
        assert_eq!(u.to_string(), "imap://h/a/");
        u.uidvalidity = Some(5);
        u.rest = Some(";UID=1".into());
        assert_eq!(u.to_string(), "imap://h/a/;UIDVALIDITY=5;UID=1");
        u.uidvalidity = None;
        assert_eq!(u.to_string(), "imap://h/a%2F;UID=1");
        let back = ImapUrl::parse(&u.to_string()).unwrap();
        assert_eq!(
            (back.mailbox, back.rest),
            (u.mailbox.clone(), u.rest.clone())
        );
        u.rest = Some("?x".into());
        assert_eq!(u.to_string(), "imap://h/a/?x");
    }

    #[test]
    fn a_scheme_must_start_with_a_letter() {
        // Survivor of scripts/mutants.sh: `&&` turned into `||` in split_scheme accepted `1map` as a scheme.
        assert_eq!(ImapUrl::parse("1map://h/"), Err(UrlError::MissingScheme));
        assert_eq!(ImapUrl::parse("i_map://h/"), Err(UrlError::MissingScheme));
        assert!(matches!(
            ImapUrl::parse("x-1.y+z://h/"),
            Err(UrlError::NotImap { .. })
        ));
    }

    #[test]
    fn a_tail_right_after_the_host_slash_has_no_mailbox_and_does_not_panic() {
        // `stop` is 0 here: the guard `stop > 0` keeps `stop - 1` from underflowing in a debug build.
        let u = ImapUrl::parse("imap://h/;UID=1").unwrap();
        assert_eq!(
            (u.mailbox.as_deref(), u.rest.as_deref()),
            (None, Some(";UID=1"))
        );
        assert!(u.had_trailing_slash);
        let u = ImapUrl::parse("imap://h/?SUBJECT%20x").unwrap();
        assert_eq!(
            (u.mailbox.as_deref(), u.rest.as_deref()),
            (None, Some("?SUBJECT%20x"))
        );
        let u = ImapUrl::parse("imap://h/A/;UID=2").unwrap();
        assert_eq!(
            (u.mailbox.as_deref(), u.rest.as_deref()),
            (Some("A"), Some("/;UID=2"))
        );
        let u = ImapUrl::parse("imap://h/A;UID=2").unwrap();
        assert_eq!(
            (u.mailbox.as_deref(), u.rest.as_deref()),
            (Some("A"), Some(";UID=2"))
        );
    }

    #[test]
    fn an_empty_auth_is_refused_not_taken_as_the_user() {
        for bad in [
            "imap://;AUTH=@h/",
            "imap://u;AUTH=@h/",
            "imap://;auth=@h/",
            "imap://u;AUTH=a%20b@h/",
        ] {
            assert!(
                matches!(ImapUrl::parse(bad), Err(UrlError::BadAuth(_))),
                "{bad}: {:?}",
                ImapUrl::parse(bad)
            );
        }
        let u = ImapUrl::parse("imap://;AUTH=*@h/").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.auth.clone()),
            (Some(""), Some(UrlAuth::Any))
        );
        let u = ImapUrl::parse("imap://u;AUTH=%2A@h/").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.auth.clone()),
            (Some("u"), Some(UrlAuth::Any))
        );
        let u = ImapUrl::parse("imap://u;Auth=x-oauth2.v_1@h/").unwrap();
        assert_eq!(u.auth, Some(UrlAuth::Mechanism("X-OAUTH2.V_1".into())));
        let u = ImapUrl::parse("imap://u%3BAUTH%3Dx@h/").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.auth.clone()),
            (Some("u;AUTH=x"), None)
        );
    }

    #[test]
    fn uidvalidity_bounds() {
        assert_eq!(
            ImapUrl::parse("imap://h/A;UIDVALIDITY=1")
                .unwrap()
                .uidvalidity,
            Some(1)
        );
        assert_eq!(
            ImapUrl::parse("imap://h/A;UIDVALIDITY=4294967295")
                .unwrap()
                .uidvalidity,
            Some(u32::MAX)
        );
        for bad in ["0", "4294967296", "", "+1", "1a"] {
            let url = format!("imap://h/A;UIDVALIDITY={bad}");
            assert!(
                matches!(ImapUrl::parse(&url), Err(UrlError::BadUidValidity(_))),
                "{url}"
            );
        }
    }
}
