//! The server side of TLS, for the built-in lab and for tests: a [`tokio_native_tls::TlsAcceptor`] from a PEM
//! certificate chain and a PKCS#8 private key.

use super::error::TransportError;

/// A TLS acceptor from a PEM certificate chain (server certificate first, then intermediates or the CA) and a
/// PKCS#8 private key PEM (`-----BEGIN PRIVATE KEY-----`), as [`lab_cert::generate`](super::lab_cert::generate)
/// produces them.
pub fn tls_acceptor(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<tokio_native_tls::TlsAcceptor, TransportError> {
    let identity = native_tls::Identity::from_pkcs8(cert_chain_pem, key_pem).map_err(|error| {
        TransportError::Certificate {
            reason: format!("the certificate chain or PKCS#8 key is not usable: {error}"),
        }
    })?;
    let acceptor =
        native_tls::TlsAcceptor::new(identity).map_err(|error| TransportError::Certificate {
            reason: format!("cannot set up the TLS server: {error}"),
        })?;
    Ok(tokio_native_tls::TlsAcceptor::from(acceptor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::lab_cert;

    #[test]
    fn accepts_a_lab_certificate() {
        let lab = lab_cert::generate(&["localhost"], 1).expect("lab certificates");
        assert!(tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn rejects_a_key_that_is_not_pem() {
        let lab = lab_cert::generate(&["localhost"], 1).expect("lab certificates");
        let error =
            tls_acceptor(lab.server_cert_pem.as_bytes(), b"not a key").expect_err("bad key");
        assert!(
            matches!(error, TransportError::Certificate { .. }),
            "{error:?}"
        );
    }
}
