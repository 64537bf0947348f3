//! Certificates for the built-in lab and for tests: a fresh throw-away CA and a server certificate it signed
//! (ECDSA P-256, PKCS#8 key), generated with rcgen. Never meant for a real server.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::error::TransportError;

const DAY: Duration = Duration::from_secs(86_400);

/// The common name of every lab CA, so a certificate from the lab is easy to recognise in a report.
pub const LAB_CA_NAME: &str = "imapref lab CA";

/// A lab CA and a server certificate signed by it, all PEM.
///
/// `Debug` hides the private key.
#[derive(Clone)]
pub struct LabCertificates {
    /// The CA certificate: give it to the client as `--ca-file` ([`TlsOptions::ca_file`](super::TlsOptions)).
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate, for [`tls_acceptor`](super::tls_acceptor).
    pub server_cert_pem: String,
    /// The server's private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub server_key_pem: String,
}

impl fmt::Debug for LabCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabCertificates")
            .field("ca_pem", &self.ca_pem)
            .field("server_cert_pem", &self.server_cert_pem)
            .field("server_key_pem", &crate::secret::REDACTED)
            .finish()
    }
}

/// A fresh CA and a server certificate for `names` (DNS names and IP addresses, e.g.
/// `["localhost", "127.0.0.1", "::1"]`; the first is also the subject's CN), valid from one day ago until `days`
/// days from now.
pub fn generate(names: &[&str], days: u32) -> Result<LabCertificates, TransportError> {
    let now = SystemTime::now();
    let not_before = shift(now, DAY, false)?;
    let not_after = shift(now, DAY * days, true)?;
    generate_with_validity(names, not_before, not_after)
}

/// Like [`generate`], with an explicit validity window for the server certificate: in the past for an expired
/// certificate, a few days ahead for one about to expire, in the future for one not yet valid. The CA itself is
/// always valid now (and over the whole window), so a verification failure is about the server certificate alone.
pub fn generate_with_validity(
    names: &[&str],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<LabCertificates, TransportError> {
    let Some(first) = names.first() else {
        return Err(TransportError::Certificate {
            reason: "a lab certificate needs at least one host name or address".into(),
        });
    };
    let now = SystemTime::now();

    let ca_key = KeyPair::generate().map_err(rcgen_error)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name(LAB_CA_NAME);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before.min(shift(now, DAY, false)?).into();
    ca_params.not_after = not_after.max(shift(now, DAY, true)?).into();
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(rcgen_error)?;
    let owned: Vec<String> = names.iter().map(|name| (*name).to_string()).collect();
    let mut server_params = CertificateParams::new(owned).map_err(rcgen_error)?;
    server_params.distinguished_name = name(first);
    server_params.is_ca = IsCa::ExplicitNoCa;
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    server_params.not_before = not_before.into();
    server_params.not_after = not_after.into();
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(rcgen_error)?;

    let ca_pem = ca_cert.pem();
    Ok(LabCertificates {
        server_cert_pem: format!("{}{}", server_cert.pem(), ca_pem),
        ca_pem,
        server_key_pem: server_key.serialize_pem(),
    })
}

/// A distinguished name with only a common name.
fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// `time` moved forward (`later`) or back by `by`, or an error instead of the overflow panic.
fn shift(time: SystemTime, by: Duration, later: bool) -> Result<SystemTime, TransportError> {
    let shifted = if later {
        time.checked_add(by)
    } else {
        time.checked_sub(by)
    };
    shifted.ok_or_else(|| TransportError::Certificate {
        reason: format!(
            "a validity of {} days is out of range",
            by.as_secs() / DAY.as_secs()
        ),
    })
}

fn rcgen_error(error: rcgen::Error) -> TransportError {
    TransportError::Certificate {
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_chain_and_a_pkcs8_key() {
        let lab = generate(&["localhost", "127.0.0.1"], 10).expect("generates");
        assert_eq!(lab.ca_pem.matches("BEGIN CERTIFICATE").count(), 1);
        assert_eq!(lab.server_cert_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(lab.server_cert_pem.ends_with(&lab.ca_pem));
        assert!(lab
            .server_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{lab:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn needs_a_name() {
        let error = generate(&[], 10).expect_err("no names");
        assert!(
            error.to_string().contains("at least one host name"),
            "{error}"
        );
    }
}
