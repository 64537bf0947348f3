//! The server certificate as a diagnostic shows it ([`CertificateInfo`]): subject, issuer, DNS and IP SANs, validity
//! in RFC 3339 UTC, days left, SHA-256 fingerprint, the session's protocol and cipher, and whether it was verified
//! ([`Verification`]). Parsed from DER with x509-parser.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::extensions::GeneralName;

/// The details of the certificate the server presented during the TLS handshake.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateInfo {
    /// The subject's distinguished name, e.g. `CN=mail.example.com, O=Example`.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The DNS names and IP addresses in the subject alternative name extension, in certificate order.
    pub sans: Vec<String>,
    /// Start of validity, RFC 3339 UTC (`2025-01-31T12:00:00Z`).
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days from now until `not_after`; negative once the certificate has expired.
    pub days_left: i64,
    /// Whether the chain and host name were checked.
    pub verification: Verification,
    /// The SHA-256 fingerprint of the DER certificate, as colon-separated upper-case hex pairs (the form
    /// `openssl x509 -fingerprint -sha256` prints).
    pub sha256: String,
    /// The negotiated protocol, e.g. `TLSv1.3`; `None` when the handshake stopped before it was agreed.
    pub protocol: Option<String>,
    /// The negotiated cipher suite in OpenSSL's naming, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    /// How long the TLS handshake took, in milliseconds.
    pub handshake_ms: f64,
}

impl CertificateInfo {
    /// One line for people: subject, issuer, expiry, days left and whether it was verified.
    pub fn summary(&self) -> String {
        let checked = match &self.verification {
            Verification::Verified => "verified".to_string(),
            Verification::NotChecked { reason } => format!("NOT verified ({reason})"),
            Verification::Failed { reason } => format!("verification FAILED ({reason})"),
        };
        let session = match (&self.protocol, &self.cipher) {
            (Some(protocol), Some(cipher)) => format!(", {protocol} {cipher}"),
            (Some(protocol), None) => format!(", {protocol}"),
            _ => String::new(),
        };
        format!(
            "{} issued by {}, expires {} ({} days), {checked}{session}",
            self.subject, self.issuer, self.not_after, self.days_left
        )
    }

    /// The certificate as a failed verification shows it: subject, issuer, names, validity and fingerprint.
    pub fn presented(&self) -> String {
        let names = if self.sans.is_empty() {
            "no subject alternative names".to_string()
        } else {
            format!("names {}", self.sans.join(", "))
        };
        format!(
            "{} issued by {}, {names}, valid {} to {}, SHA-256 {}",
            self.subject, self.issuer, self.not_before, self.not_after, self.sha256
        )
    }

    /// True once `not_after` has passed.
    pub fn is_expired(&self) -> bool {
        self.days_left < 0
    }

    /// True when one of the SANs names `host`: an exact match (ignoring case), an IP address match, or a wildcard
    /// `*.example.com` covering exactly one leftmost label. Useful to explain a failure seen with `--insecure`.
    pub fn names_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.sans.iter().any(|san| san.parse::<IpAddr>() == Ok(ip));
        }
        self.sans.iter().any(|san| {
            let san = san.trim_end_matches('.');
            if san.eq_ignore_ascii_case(host) {
                return true;
            }
            match (san.strip_prefix("*."), host.split_once('.')) {
                (Some(suffix), Some((label, rest))) => {
                    !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
                }
                _ => false,
            }
        })
    }
}

/// Whether the certificate chain and host name were verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Verification {
    /// The chain leads to a trusted root and the certificate names the host. (A certificate that fails
    /// verification never gets here: the handshake fails with [`TransportError::Tls`](super::TransportError::Tls).)
    Verified,
    /// Verification was switched off.
    NotChecked {
        /// Why, e.g. "--insecure: certificate chain and host name were not verified".
        reason: String,
    },
    /// The certificate did not verify and the handshake was stopped; only a
    /// [`TransportError::Tls`](super::TransportError::Tls) carries a certificate in this state.
    Failed {
        /// OpenSSL's verify result, e.g. "certificate has expired", "hostname mismatch".
        reason: String,
    },
}

/// Parses a DER certificate into [`CertificateInfo`], with `days_left` counted from `now`.
pub(crate) fn parse_der(
    der: &[u8],
    verification: Verification,
    handshake_ms: f64,
    now: SystemTime,
) -> Result<CertificateInfo, String> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|error| error.to_string())?;
    let not_before = certificate.validity().not_before.timestamp();
    let not_after = certificate.validity().not_after.timestamp();
    let sans = match certificate.subject_alternative_name() {
        Ok(Some(extension)) => extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_string()),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(error) => return Err(format!("bad subject alternative name extension: {error}")),
    };
    Ok(CertificateInfo {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        sans,
        not_before: rfc3339_utc(not_before),
        not_after: rfc3339_utc(not_after),
        days_left: (not_after - unix_seconds(now)).div_euclid(86_400),
        verification,
        sha256: sha256_fingerprint(der),
        protocol: None,
        cipher: None,
        handshake_ms,
    })
}

/// `AB:CD:...`: SHA-256 of `der` as upper-case hex pairs.
fn sha256_fingerprint(der: &[u8]) -> String {
    match openssl::hash::hash(openssl::hash::MessageDigest::sha256(), der) {
        Ok(digest) => digest
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        Err(error) => format!("(not computed: {error})"),
    }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) SAN; anything else is malformed and skipped.
fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

/// Seconds since the Unix epoch, negative before it.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |secs| -secs),
    }
}

/// A Unix timestamp as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let seconds = timestamp.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::lab_cert;
    use std::time::Duration;

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn a_lab_certificate_parses_with_its_sans_and_validity() {
        let lab =
            lab_cert::generate(&["localhost", "127.0.0.1", "::1"], 30).expect("lab certificates");
        let der = first_der(&lab.server_cert_pem);
        let now = SystemTime::now();

        let info = parse_der(&der, Verification::Verified, 1.5, now).expect("parses");

        assert_eq!(info.sans, vec!["localhost", "127.0.0.1", "::1"]);
        assert_eq!(info.subject, "CN=localhost");
        assert!(info.issuer.contains("imapref lab CA"), "{}", info.issuer);
        assert!(
            info.days_left == 29 || info.days_left == 30,
            "{}",
            info.days_left
        );
        assert!(!info.is_expired());
        assert!(
            info.not_after.ends_with('Z') && info.not_after.len() == 20,
            "{}",
            info.not_after
        );
        assert_eq!(info.protocol, None);
        assert!(info.names_host("LOCALHOST"));
        assert!(info.names_host("::1"));
        assert!(!info.names_host("mail.example.com"));

        let later = parse_der(
            &der,
            Verification::Verified,
            1.5,
            now + Duration::from_secs(40 * 86_400),
        )
        .expect("parses");
        assert!(later.is_expired());
        assert!(
            later.days_left == -11 || later.days_left == -10,
            "{}",
            later.days_left
        );
    }

    #[test]
    fn fingerprints_are_sha256_in_colon_hex() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        let info = CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            sans: vec!["*.example.com".into()],
            not_before: String::new(),
            not_after: String::new(),
            days_left: 1,
            verification: Verification::Verified,
            sha256: String::new(),
            protocol: None,
            cipher: None,
            handshake_ms: 0.0,
        };
        assert!(info.names_host("imap.example.com"));
        assert!(!info.names_host("example.com"));
        assert!(!info.names_host("a.b.example.com"));
    }

    #[test]
    fn verification_serialises_with_a_result_tag() {
        let verified = serde_json::to_string(&Verification::Verified).expect("serialises");
        assert_eq!(verified, r#"{"result":"verified"}"#);
        let skipped = serde_json::to_string(&Verification::NotChecked {
            reason: "--insecure".into(),
        })
        .expect("serialises");
        assert_eq!(skipped, r#"{"result":"not-checked","reason":"--insecure"}"#);
    }

    fn first_der(pem: &str) -> Vec<u8> {
        x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
            .next()
            .expect("one PEM block")
            .expect("valid PEM")
            .contents
    }
}
