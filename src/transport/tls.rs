//! TLS on an open TCP connection, client and server side: options ([`TlsOptions`]), the client context built once
//! per process ([`client`], [`prewarm`]), the extra trust roots from a CA file ([`check_ca_file`]), the handshake
//! bounded by a timeout, the peer certificate's details (also when verification fails), and OpenSSL's error strings
//! tidied into something a mail administrator can read.
//!
//! The client side uses OpenSSL directly (the `openssl` and `tokio-openssl` crates), not native-tls: native-tls
//! exposes neither the negotiated protocol and cipher nor the certificate of a handshake that failed, and its
//! connector parses the whole system bundle (`/etc/ssl/certs/ca-certificates.crt`, about 140 certificates) twice
//! per connector: `SslConnector::builder` calls `set_default_verify_paths`, then native-tls loads the file that
//! `openssl-probe` found once more. Here the system roots come from OpenSSL's hashed certificate directory
//! (`OPENSSLDIR/certs`, on Debian `/etc/ssl/certs`, which `update-ca-certificates` fills from the same
//! certificates as the bundle): OpenSSL reads only the root a chain needs, when it needs it. Where that directory
//! has no hash links, or `SSL_CERT_FILE`/`SSL_CERT_DIR` is set, OpenSSL's default paths are loaded instead, once per
//! context. The server side (the lab) stays on native-tls ([`tls_acceptor`](super::tls_acceptor)).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslRef, SslVerifyMode,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509VerifyResult, X509};
use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

use super::certificate::{parse_der, CertificateInfo, Verification};
use super::error::{millis, phase, TransportError};

/// The client's TLS stream.
pub(crate) type ClientStream = tokio_openssl::SslStream<TcpStream>;

/// How to check the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Extra trusted root certificates, PEM (several may be concatenated) or a single DER certificate, on top of the
    /// system's trust store. Default `None`: the system's trust store only, as a mail client would use.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and any host name (`--insecure`). Default `false`: a diagnostic should see exactly
    /// what a careful client sees. The certificate's details are still reported, marked "not checked".
    pub insecure: bool,
}

/// Why a certificate was not checked, as [`Verification::NotChecked`] reports it.
pub const INSECURE_REASON: &str =
    "--insecure: the certificate chain and host name were not verified";

/// A TLS client context for one set of [`TlsOptions`]: the system trust store and the CA file already loaded.
/// Cheap to clone (OpenSSL reference-counts the context). Get one with [`client`].
#[derive(Clone)]
pub struct TlsClient {
    context: SslContext,
    insecure: bool,
    /// Which build this is: the same number means the same context, loaded once.
    build: u64,
}

impl TlsClient {
    /// A number that identifies this context: two clients with the same number share one loaded trust store.
    pub fn build_id(&self) -> u64 {
        self.build
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("insecure", &self.insecure)
            .field("build", &self.build)
            .finish()
    }
}

/// One cell per set of options; a failed build is not kept, so a CA file fixed in the meantime is read again.
type Cell = Arc<tokio::sync::OnceCell<TlsClient>>;

static CLIENTS: LazyLock<Mutex<HashMap<TlsOptions, Cell>>> = LazyLock::new(Mutex::default);
static BUILDS: AtomicU64 = AtomicU64::new(0);

/// Starts building the TLS client context for `options` in the background (on tokio's blocking pool), so that the
/// system trust store and the CA file are loaded while the TCP connect and the greeting are under way. Returns at
/// once. A later [`client`] (and so [`Transport::upgrade_tls`](super::Transport::upgrade_tls)) with equal options
/// waits for this build instead of starting another. Errors are not reported here: the handshake reports them.
/// Outside a tokio runtime this does nothing.
pub fn prewarm(options: &TlsOptions) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let options = options.clone();
        runtime.spawn(async move {
            let _ = client(&options).await;
        });
    }
}

/// The TLS client context for `options`, built once per process and shared afterwards (also by [`prewarm`]).
/// The build (trust store, CA file) runs on tokio's blocking pool. Fails with [`TransportError::CaFile`] when the CA
/// file cannot be used.
pub async fn client(options: &TlsOptions) -> Result<TlsClient, TransportError> {
    let cell = {
        let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(clients.entry(options.clone()).or_default())
    };
    cell.get_or_try_init(|| async {
        let options = options.clone();
        tokio::task::spawn_blocking(move || build_client(&options))
            .await
            .map_err(|error| TransportError::Tls {
                reason: format!("the TLS setup task failed: {error}"),
                certificate: None,
            })?
    })
    .await
    .cloned()
}

/// The cipher list of `openssl::ssl::SslConnector` (taken from Python's): OpenSSL's default without the weak ones.
const CIPHERS: &str = "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

/// Builds a context: the CA file first (a bad one fails before anything else), then the system roots. Set up as
/// `openssl::ssl::SslConnector::builder` does it, except for how the system roots are found ([`system_roots`]).
fn build_client(options: &TlsOptions) -> Result<TlsClient, TransportError> {
    let extra = match &options.ca_file {
        Some(path) => load_ca_file(path)?,
        None => Vec::new(),
    };
    let setup = |error: openssl::error::ErrorStack| TransportError::Tls {
        reason: format!("cannot set up the TLS client: {error}"),
        certificate: None,
    };
    let mut builder = SslContextBuilder::new(SslMethod::tls_client()).map_err(setup)?;
    let mut ssl_options =
        SslOptions::ALL | SslOptions::NO_COMPRESSION | SslOptions::NO_SSLV2 | SslOptions::NO_SSLV3;
    ssl_options &= !SslOptions::DONT_INSERT_EMPTY_FRAGMENTS;
    builder.set_options(ssl_options);
    builder.set_mode(
        SslMode::AUTO_RETRY
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::RELEASE_BUFFERS,
    );
    builder.set_cipher_list(CIPHERS).map_err(setup)?;
    builder.set_verify(SslVerifyMode::PEER);
    if !options.insecure {
        system_roots(&mut builder).map_err(setup)?;
    }
    for certificate in extra {
        // A certificate already in the store is reported as a duplicate; that is harmless.
        let _ = builder.cert_store_mut().add_cert(certificate);
    }
    Ok(TlsClient {
        context: builder.build(),
        insecure: options.insecure,
        build: BUILDS.fetch_add(1, Ordering::Relaxed) + 1,
    })
}

/// Where the system's trusted roots come from, with OpenSSL's own rules (`SSL_CERT_FILE` and `SSL_CERT_DIR` first,
/// else `OPENSSLDIR/cert.pem` and `OPENSSLDIR/certs`), but cheaper: a hashed directory is looked up lazily (one root
/// per chain, when the chain needs it), and the bundle file is skipped when no `SSL_CERT_FILE` is set and the
/// directory has hash links (on Debian both are made by `update-ca-certificates` from the same certificates).
/// A bundle file that is used is parsed in full, once per context: OpenSSL 3 takes about 0.2 ms per certificate,
/// 25-40 ms for Debian's 144 roots, which [`prewarm`] moves off the critical path.
fn system_roots(builder: &mut SslContextBuilder) -> Result<(), openssl::error::ErrorStack> {
    let env_file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let env_dirs: Option<Vec<PathBuf>> =
        std::env::var_os("SSL_CERT_DIR").map(|dirs| std::env::split_paths(&dirs).collect());
    let default_dir = openssl_certs_dir();
    let dirs = env_dirs.unwrap_or_else(|| default_dir.iter().cloned().collect());
    let hashed = dirs.iter().any(|dir| has_hash_links(dir));
    let file = match env_file {
        Some(file) => Some(file),
        None if hashed => None,
        None => default_dir
            .as_ref()
            .and_then(|dir| dir.parent().map(|parent| parent.join("cert.pem"))),
    };
    if let Some(file) = file.filter(|file| file.is_file()) {
        if builder.load_verify_locations(Some(&file), None).is_err() {
            // Damaged: let OpenSSL load what it can, as it would by default.
            return builder.set_default_verify_paths();
        }
    }
    for dir in dirs.iter().filter(|dir| dir.is_dir()) {
        builder.load_verify_locations(None, Some(dir))?;
    }
    Ok(())
}

/// `OPENSSLDIR/certs`, from `OPENSSLDIR: "/usr/lib/ssl"` as the library reports it.
fn openssl_certs_dir() -> Option<PathBuf> {
    let reported = openssl::version::dir();
    let dir = reported
        .strip_prefix("OPENSSLDIR:")
        .unwrap_or(reported)
        .trim()
        .trim_matches('"');
    (!dir.is_empty()).then(|| Path::new(dir).join("certs"))
}

/// True when `dir` holds at least one `XXXXXXXX.N` subject-hash link, as `c_rehash`/`openssl rehash` make them.
fn has_hash_links(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match name.split_once('.') {
            Some((hash, n)) => {
                hash.len() == 8
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        }
    })
}

/// The client handshake: SNI and host name check against `host`, bounded by `timeout`. Returns the TLS stream and the
/// server certificate's details, with the negotiated protocol and cipher. When verification fails, the error carries
/// the certificate that was presented.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    options: &TlsOptions,
    timeout: Duration,
) -> Result<(ClientStream, CertificateInfo), TransportError> {
    let client = client(options).await?;
    let host = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    let setup = |error: openssl::error::ErrorStack| TransportError::Tls {
        reason: format!("cannot set up the TLS connection: {error}"),
        certificate: None,
    };
    let mut ssl = Ssl::new(&client.context).map_err(setup)?;
    let ip = host.parse::<std::net::IpAddr>().ok();
    if ip.is_none() {
        // SNI carries names only (RFC 6066).
        ssl.set_hostname(host).map_err(setup)?;
    }
    if client.insecure {
        ssl.set_verify(SslVerifyMode::NONE);
    } else {
        let param = ssl.param_mut();
        param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
        match ip {
            Some(ip) => param.set_ip(ip).map_err(setup)?,
            None => param.set_host(host).map_err(setup)?,
        }
    }
    let mut stream = ClientStream::new(ssl, tcp).map_err(setup)?;

    let started = Instant::now();
    match tokio::time::timeout(timeout, Pin::new(&mut stream).connect()).await {
        Err(_) => {
            return Err(TransportError::Timeout {
                phase: phase::TLS_HANDSHAKE,
                after: timeout,
            })
        }
        Ok(Err(error)) => return Err(handshake_failure(stream.ssl(), host, &error, started)),
        Ok(Ok(())) => {}
    }
    let handshake_ms = millis(started.elapsed());

    let verification = if client.insecure {
        Verification::NotChecked {
            reason: INSECURE_REASON.into(),
        }
    } else {
        Verification::Verified
    };
    let Some(certificate) = presented_certificate(stream.ssl()) else {
        return Err(TransportError::Tls {
            reason: "the server presented no certificate".into(),
            certificate: None,
        });
    };
    let info = describe(stream.ssl(), &certificate, verification, handshake_ms)?;
    Ok((stream, info))
}

/// The leaf certificate the server sent. During a failed handshake OpenSSL has not yet stored it as the peer
/// certificate, but the chain it received is there, leaf first.
fn presented_certificate(ssl: &SslRef) -> Option<X509> {
    ssl.peer_certificate().or_else(|| {
        ssl.peer_cert_chain()
            .and_then(|chain| chain.iter().next().map(|leaf| leaf.to_owned()))
    })
}

/// A certificate's details with the session's protocol and cipher.
fn describe(
    ssl: &SslRef,
    certificate: &X509,
    verification: Verification,
    handshake_ms: f64,
) -> Result<CertificateInfo, TransportError> {
    let unreadable = |reason: String| TransportError::Tls {
        reason: format!("cannot parse the server certificate: {reason}"),
        certificate: None,
    };
    let der = certificate
        .to_der()
        .map_err(|error| unreadable(error.to_string()))?;
    let mut info =
        parse_der(&der, verification, handshake_ms, SystemTime::now()).map_err(unreadable)?;
    let version = ssl.version_str();
    if version != "unknown" {
        info.protocol = Some(version.to_string());
    }
    info.cipher = ssl.current_cipher().map(|cipher| cipher.name().to_string());
    Ok(info)
}

/// The error for a handshake that failed: why, in words, and the certificate the server presented, if it did.
fn handshake_failure(
    ssl: &SslRef,
    host: &str,
    error: &openssl::ssl::Error,
    started: Instant,
) -> TransportError {
    let verify = ssl.verify_result();
    if verify == X509VerifyResult::OK {
        return TransportError::Tls {
            reason: tidy_tls_error(&error.to_string()),
            certificate: None,
        };
    }
    let why = verify.error_string();
    let certificate = presented_certificate(ssl).and_then(|certificate| {
        describe(
            ssl,
            &certificate,
            Verification::Failed {
                reason: why.to_string(),
            },
            millis(started.elapsed()),
        )
        .ok()
    });
    let mut reason = format!("certificate verify failed: {why}");
    if let Some(info) = &certificate {
        if let Some(explanation) = explain_verify_failure(verify.as_raw(), host, info) {
            reason.push_str(&format!(" ({explanation})"));
        }
    }
    TransportError::Tls {
        reason,
        certificate: certificate.map(Box::new),
    }
}

/// What a verify error means for this certificate, in one clause, for the common cases.
fn explain_verify_failure(code: i32, host: &str, info: &CertificateInfo) -> Option<String> {
    match code {
        openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH | openssl_sys::X509_V_ERR_IP_ADDRESS_MISMATCH => {
            let names = if info.sans.is_empty() {
                format!("no subject alternative name, subject {}", info.subject)
            } else {
                info.sans.join(", ")
            };
            Some(format!("{host} is not among the names it is for: {names}"))
        }
        openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED => {
            Some(format!("it was valid until {}", info.not_after))
        }
        openssl_sys::X509_V_ERR_CERT_NOT_YET_VALID => {
            Some(format!("it is valid only from {}", info.not_before))
        }
        openssl_sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | openssl_sys::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | openssl_sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | openssl_sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT => Some(format!(
            "its issuer {} is not in the system trust store; a private CA is trusted with --ca-file",
            info.issuer
        )),
        _ => None,
    }
}

/// The server handshake with `acceptor`, bounded by `timeout`.
pub(crate) async fn accept(
    tcp: TcpStream,
    acceptor: &tokio_native_tls::TlsAcceptor,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TransportError> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Err(_) => Err(TransportError::Timeout {
            phase: phase::TLS_HANDSHAKE,
            after: timeout,
        }),
        Ok(Err(error)) => Err(TransportError::Tls {
            reason: tidy_tls_error(&error.to_string()),
            certificate: None,
        }),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// Checks a CA file as `--ca-file` would use it, without connecting: returns how many certificates it holds, or a
/// [`TransportError::CaFile`] saying what is wrong with the file (missing, unreadable, empty, a key instead of a
/// certificate, damaged PEM, not a certificate at all). The CLI calls it before a probe, also when no TLS is used.
pub fn check_ca_file(path: &Path) -> Result<usize, TransportError> {
    load_ca_file(path).map(|certificates| certificates.len())
}

/// Every certificate in a PEM file (or the one certificate in a DER file).
fn load_ca_file(path: &Path) -> Result<Vec<X509>, TransportError> {
    let ca_error = |reason: String| TransportError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|error| ca_error(describe_file_error(&error)))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ca_error("the file is empty".into()));
    }
    let labels = pem_labels(&bytes);
    if !labels.is_empty() {
        if !labels.iter().any(|label| label == "CERTIFICATE") {
            return Err(ca_error(format!(
                "it holds no certificate (-----BEGIN CERTIFICATE-----), only {}",
                labels
                    .iter()
                    .map(|label| format!("a {label} block"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let certificates = X509::stack_from_pem(&bytes).map_err(|error| {
            ca_error(format!(
                "a PEM certificate in it is damaged ({})",
                tidy_tls_error(&error.to_string())
            ))
        })?;
        if certificates.is_empty() {
            return Err(ca_error(
                "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        return Ok(certificates);
    }
    X509::from_der(&bytes)
        .map(|certificate| vec![certificate])
        .map_err(|_| {
            ca_error(
                "it is neither PEM (no -----BEGIN CERTIFICATE----- line) nor a DER certificate"
                    .into(),
            )
        })
}

/// The labels of the PEM blocks in `bytes`, in order: `CERTIFICATE`, `PRIVATE KEY`, ...
fn pem_labels(bytes: &[u8]) -> Vec<String> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut labels = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(BEGIN.len()).position(|window| window == BEGIN) {
        rest = &rest[at + BEGIN.len()..];
        let end = rest
            .windows(5)
            .position(|window| window == b"-----")
            .unwrap_or(rest.len());
        labels.push(String::from_utf8_lossy(&rest[..end]).trim().to_string());
        rest = &rest[end..];
    }
    labels
}

/// A file error in words; unlike a socket's "permission denied", this one is about file modes.
fn describe_file_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied (cannot read the file)".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory, not a file".into(),
        _ => error.to_string(),
    }
}

/// OpenSSL's error text made readable: `error:0A000086:SSL routines:tls_post_process_server_certificate:certificate
/// verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)` becomes `certificate verify failed:
/// self-signed certificate`. Common cases get a hint; text in another shape is kept as it is.
pub(crate) fn tidy_tls_error(message: &str) -> String {
    let message = message.trim();
    let tidied = if message.starts_with("error:") {
        // A verify result, when there is one, is appended as " (reason)" after the error stack.
        let (stack, verify) = match message.rfind(" (") {
            Some(open) if message.ends_with(')') => (
                &message[..open],
                Some(&message[open + 2..message.len() - 1]),
            ),
            _ => (message, None),
        };
        let mut reasons: Vec<&str> = Vec::new();
        for entry in stack
            .split("error:")
            .filter(|entry| !entry.trim().is_empty())
        {
            // code:library:function:reason:file:line:data
            let reason = entry.split(':').nth(3).map(str::trim).unwrap_or("");
            if !reason.is_empty() && !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        if reasons.is_empty() {
            message.to_string()
        } else {
            let mut tidied = reasons.join("; ");
            if let Some(verify) = verify {
                tidied.push_str(": ");
                tidied.push_str(verify);
            }
            tidied
        }
    } else {
        message.to_string()
    };

    let lower = tidied.to_ascii_lowercase();
    if lower.contains("wrong version number") || lower.contains("packet length too long") {
        format!("{tidied} (the server did not answer with TLS: is this a plaintext port that needs STARTTLS?)")
    } else if lower.contains("unexpected eof") {
        format!("{tidied} (the server closed the connection during the handshake)")
    } else {
        tidied
    }
}

#[cfg(test)]
mod tests {
    use super::client as tls_client;
    use super::*;
    use crate::transport::test_support::{listener, write_ca_file};
    use crate::transport::{lab_cert, tls_acceptor, Endpoint, Transport};
    use std::time::Duration as StdDuration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: StdDuration = StdDuration::from_secs(5);

    /// A one-shot implicit-TLS server on 127.0.0.1: handshake, send a greeting, wait for the client to hang up.
    /// Returns its port and a handle whose result says whether the server's handshake succeeded.
    async fn tls_server(
        lab: &lab_cert::LabCertificates,
    ) -> (u16, tokio::task::JoinHandle<Result<(), String>>) {
        let acceptor = tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes(),
        )
        .expect("acceptor");
        let (listener, port) = listener().await;
        let handle = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|error| error.to_string())?;
            let mut tls = acceptor
                .accept(tcp)
                .await
                .map_err(|error| error.to_string())?;
            tls.write_all(b"* OK lab ready\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
            Ok(())
        });
        (port, handle)
    }

    async fn client(
        port: u16,
        host: &str,
        options: &TlsOptions,
    ) -> Result<(Transport, CertificateInfo), TransportError> {
        let (transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        transport.upgrade_tls(host, options).await
    }

    #[tokio::test]
    async fn verifies_with_the_lab_ca() {
        let lab =
            lab_cert::generate(&["localhost", "127.0.0.1", "::1"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let (mut transport, info) = client(port, "localhost", &options)
            .await
            .expect("handshake verifies");

        assert!(transport.is_tls());
        assert_eq!(info.verification, Verification::Verified);
        assert_eq!(info.sans, vec!["localhost", "127.0.0.1", "::1"]);
        assert!(
            info.days_left == 29 || info.days_left == 30,
            "{}",
            info.days_left
        );
        assert!(info.handshake_ms > 0.0);
        // The lab's native-tls acceptor settles on TLS 1.2 with OpenSSL 3; either is fine here.
        assert!(
            matches!(info.protocol.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
            "{:?}",
            info.protocol
        );
        assert!(
            info.cipher
                .as_deref()
                .is_some_and(|cipher| !cipher.is_empty() && cipher != "(NONE)"),
            "{:?}",
            info.cipher
        );
        assert_eq!(info.sha256, fingerprint_of(&lab.server_cert_pem));
        let mut buf = [0u8; 64];
        let n = transport.read_some(&mut buf).await.expect("greeting");
        assert_eq!(&buf[..n], b"* OK lab ready\r\n");
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn verifies_an_ip_literal_against_ip_sans() {
        let lab = lab_cert::generate(&["localhost", "127.0.0.1"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let (transport, info) = client(port, "127.0.0.1", &options)
            .await
            .expect("IP SAN verifies");

        assert_eq!(info.verification, Verification::Verified);
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn fails_to_verify_without_the_ca() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let (port, server) = tls_server(&lab).await;

        let error = client(port, "localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("an unknown CA does not verify");

        assert!(error.is_tls(), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("TLS handshake failed: certificate verify failed"),
            "{text}"
        );
        assert!(
            !text.contains("statem"),
            "OpenSSL's file names are tidied away: {text}"
        );
        assert!(
            text.contains(
                "is not in the system trust store; a private CA is trusted with --ca-file"
            ),
            "{text}"
        );
        let presented = error.presented_certificate().expect("certificate shown");
        assert_eq!(presented.subject, "CN=localhost");
        assert!(
            presented.issuer.contains("imapref lab CA"),
            "{}",
            presented.issuer
        );
        assert_eq!(presented.sha256, fingerprint_of(&lab.server_cert_pem));
        assert!(text.contains(&presented.sha256), "{text}");
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_wrong_host_name_fails_to_verify() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let error = client(port, "imap.example.com", &options)
            .await
            .map(|_| ())
            .expect_err("the certificate does not name the host");

        let text = error.to_string();
        assert!(
            text.starts_with(
                "TLS handshake failed: certificate verify failed: hostname mismatch \
                 (imap.example.com is not among the names it is for: localhost); \
                 the server presented CN=localhost issued by "
            ),
            "{text}"
        );
        let presented = error.presented_certificate().expect("certificate shown");
        assert_eq!(presented.sans, vec!["localhost"]);
        let _ = server.await;
    }

    #[tokio::test]
    async fn insecure_reports_not_checked() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: None,
            insecure: true,
        };

        let (transport, info) = client(port, "imap.example.com", &options)
            .await
            .expect("insecure accepts");

        assert_eq!(
            info.verification,
            Verification::NotChecked {
                reason: INSECURE_REASON.into()
            }
        );
        assert_eq!(info.subject, "CN=localhost");
        assert!(!info.names_host("imap.example.com"));
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn an_expired_certificate_fails_with_a_clear_reason() {
        let now = SystemTime::now();
        let lab = lab_cert::generate_with_validity(
            &["localhost"],
            now - StdDuration::from_secs(30 * 86_400),
            now - StdDuration::from_secs(2 * 86_400),
        )
        .expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };

        let error = client(port, "localhost", &options)
            .await
            .map(|_| ())
            .expect_err("expired");

        let text = error.to_string();
        assert!(
            text.starts_with(
                "TLS handshake failed: certificate verify failed: certificate has expired (it was valid until "
            ),
            "{text}"
        );
        let presented = error
            .presented_certificate()
            .expect("the expired certificate is shown");
        assert!(presented.is_expired());
        assert_eq!(
            presented.verification,
            Verification::Failed {
                reason: "certificate has expired".into()
            }
        );
        assert!(
            text.contains(&format!(
                "valid {} to {}",
                presented.not_before, presented.not_after
            )),
            "{text}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn an_expired_certificate_is_reported_with_insecure() {
        let now = SystemTime::now();
        let lab = lab_cert::generate_with_validity(
            &["localhost"],
            now - StdDuration::from_secs(30 * 86_400),
            now - StdDuration::from_secs(2 * 86_400),
        )
        .expect("lab certificates");
        let (port, server) = tls_server(&lab).await;
        let options = TlsOptions {
            ca_file: None,
            insecure: true,
        };

        let (transport, info) = client(port, "localhost", &options)
            .await
            .expect("insecure accepts");

        assert!(info.is_expired());
        assert!(
            info.days_left == -3 || info.days_left == -2,
            "{}",
            info.days_left
        );
        transport.close().await;
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn a_plaintext_server_is_not_tls() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"* OK plaintext IMAP here\r\n").await;
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
            }
        });

        let error = client(port, "localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("not TLS");

        assert!(error.is_tls(), "{error:?}");
        assert!(error.to_string().contains("STARTTLS"), "{error}");
        let _ = server.await;
    }

    #[tokio::test]
    async fn a_silent_server_times_out_the_handshake() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(StdDuration::from_secs(2)).await;
            drop(accepted);
        });
        let (mut transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        transport.set_timeout(StdDuration::from_millis(200));

        let error = transport
            .upgrade_tls("localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("no handshake");

        assert!(
            matches!(
                error,
                TransportError::Timeout {
                    phase: phase::TLS_HANDSHAKE,
                    ..
                }
            ),
            "{error:?}"
        );
        server.abort();
        let _ = server.await;
    }

    #[tokio::test]
    async fn starttls_upgrades_after_a_plaintext_exchange() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let acceptor = tls_acceptor(
            lab.server_cert_pem.as_bytes(),
            lab.server_key_pem.as_bytes(),
        )
        .expect("acceptor");
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|error| error.to_string())?;
            let mut plain = Transport::from_tcp(tcp, TIMEOUT);
            plain
                .write_all(b"* OK ready\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut buf = [0u8; 64];
            let n = plain
                .read_some(&mut buf)
                .await
                .map_err(|error| error.to_string())?;
            if &buf[..n] != b"a STARTTLS\r\n" {
                return Err(format!("unexpected command {:?}", &buf[..n]));
            }
            plain
                .write_all(b"a OK begin TLS now\r\n")
                .await
                .map_err(|error| error.to_string())?;
            let mut tls = plain
                .accept_tls(&acceptor)
                .await
                .map_err(|error| error.to_string())?;
            let n = tls
                .read_some(&mut buf)
                .await
                .map_err(|error| error.to_string())?;
            tls.write_all(&buf[..n])
                .await
                .map_err(|error| error.to_string())?;
            tls.close().await;
            Ok::<(), String>(())
        });

        let (mut transport, _) = Transport::connect(&Endpoint::new("127.0.0.1", port), TIMEOUT)
            .await
            .expect("tcp connect");
        let mut buf = [0u8; 64];
        let n = transport.read_some(&mut buf).await.expect("greeting");
        assert_eq!(&buf[..n], b"* OK ready\r\n");
        transport
            .write_all(b"a STARTTLS\r\n")
            .await
            .expect("send STARTTLS");
        let n = transport.read_some(&mut buf).await.expect("tagged OK");
        assert_eq!(&buf[..n], b"a OK begin TLS now\r\n");
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };
        let (mut tls, info) = transport
            .upgrade_tls("localhost", &options)
            .await
            .expect("upgrade");
        assert_eq!(info.verification, Verification::Verified);
        tls.write_all(b"b NOOP\r\n").await.expect("send over TLS");
        let n = tls.read_some(&mut buf).await.expect("echo over TLS");
        assert_eq!(&buf[..n], b"b NOOP\r\n");

        let again = tls
            .upgrade_tls("localhost", &options)
            .await
            .map(|_| ())
            .expect_err("already TLS");
        assert!(matches!(again, TransportError::AlreadyTls), "{again:?}");
        assert_eq!(server.await.expect("server task"), Ok(()));
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_a_setup_error() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        let options = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/imapref-ca.pem")),
            insecure: false,
        };

        let error = client(port, "localhost", &options)
            .await
            .map(|_| ())
            .expect_err("no CA file");

        assert!(matches!(error, TransportError::CaFile { .. }), "{error:?}");
        assert_eq!(error.phase(), phase::SETUP);
        let _ = server.await;
    }

    /// The SHA-256 fingerprint of the first certificate in `pem`, as `openssl x509 -fingerprint -sha256` would
    /// print it, computed here from the DER bytes.
    fn fingerprint_of(pem: &str) -> String {
        let certificate = X509::from_pem(pem.as_bytes()).expect("PEM certificate");
        let digest = certificate
            .digest(openssl::hash::MessageDigest::sha256())
            .expect("digest");
        digest
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    #[tokio::test]
    async fn a_self_signed_certificate_is_shown_when_it_fails() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let certificate = params.self_signed(&key).expect("self-signed");
        let acceptor = tls_acceptor(certificate.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect("acceptor");
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });

        let error = client(port, "localhost", &TlsOptions::default())
            .await
            .map(|_| ())
            .expect_err("self-signed does not verify");

        let text = error.to_string();
        assert!(
            text.starts_with(
                "TLS handshake failed: certificate verify failed: self-signed certificate ("
            ),
            "{text}"
        );
        let presented = error.presented_certificate().expect("certificate shown");
        assert_eq!(presented.subject, presented.issuer);
        assert_eq!(presented.sha256, fingerprint_of(&certificate.pem()));
        let _ = server.await;
    }

    #[tokio::test]
    async fn the_client_context_is_built_once_per_set_of_options() {
        let lab = lab_cert::generate(&["localhost"], 30).expect("lab certificates");
        let ca = write_ca_file(&lab.ca_pem);
        let options = TlsOptions {
            ca_file: Some(ca.path().to_path_buf()),
            insecure: false,
        };
        prewarm(&options);
        let first = tls_client(&options).await.expect("builds");
        let second = tls_client(&options).await.expect("cached");
        assert_eq!(first.build_id(), second.build_id());

        // Two handshakes later, still the same context.
        for _ in 0..2 {
            let (port, server) = tls_server(&lab).await;
            let (transport, _) = client(port, "localhost", &options).await.expect("verifies");
            transport.close().await;
            assert_eq!(server.await.expect("server task"), Ok(()));
        }
        assert_eq!(
            tls_client(&options).await.expect("cached").build_id(),
            first.build_id()
        );

        let insecure = TlsOptions {
            insecure: true,
            ..options.clone()
        };
        assert_ne!(
            tls_client(&insecure).await.expect("builds").build_id(),
            first.build_id()
        );
    }

    #[tokio::test]
    async fn a_ca_file_fixed_after_a_failure_is_read_again() {
        let file = write_ca_file("not a certificate\n");
        let options = TlsOptions {
            ca_file: Some(file.path().to_path_buf()),
            insecure: false,
        };
        let error = tls_client(&options).await.expect_err("bad file");
        assert!(matches!(error, TransportError::CaFile { .. }), "{error:?}");
        let lab = lab_cert::generate(&["localhost"], 1).expect("lab certificates");
        std::fs::write(file.path(), &lab.ca_pem).expect("rewrite");
        tls_client(&options).await.expect("the fixed file loads");
    }

    #[test]
    fn a_bad_ca_file_says_what_is_wrong_with_it() {
        let reason = |path: &Path| match check_ca_file(path) {
            Err(TransportError::CaFile { reason, .. }) => reason,
            other => panic!("not a CA file error: {other:?}"),
        };
        let lab = lab_cert::generate(&["localhost"], 1).expect("lab certificates");

        assert_eq!(
            reason(Path::new("/nonexistent/imapref-ca.pem")),
            "no such file"
        );
        assert_eq!(reason(write_ca_file("").path()), "the file is empty");
        assert_eq!(
            reason(write_ca_file(&lab.server_key_pem).path()),
            "it holds no certificate (-----BEGIN CERTIFICATE-----), only a PRIVATE KEY block"
        );
        assert_eq!(
            reason(write_ca_file("hello, I am a text file\n").path()),
            "it is neither PEM (no -----BEGIN CERTIFICATE----- line) nor a DER certificate"
        );
        let damaged = lab.ca_pem.replacen('M', "!", 3);
        assert!(
            reason(write_ca_file(&damaged).path())
                .starts_with("a PEM certificate in it is damaged"),
            "{}",
            reason(write_ca_file(&damaged).path())
        );
        let directory = tempfile::tempdir().expect("temporary directory");
        assert_eq!(reason(directory.path()), "it is a directory, not a file");

        assert_eq!(
            check_ca_file(write_ca_file(&lab.ca_pem).path()).expect("good"),
            1
        );
        let error = check_ca_file(Path::new("/nonexistent/imapref-ca.pem")).expect_err("missing");
        assert_eq!(
            error.to_string(),
            "cannot use CA file /nonexistent/imapref-ca.pem: no such file"
        );
    }

    #[test]
    fn hash_links_are_recognised() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("ca-certificates.crt"), "bundle").expect("write");
        std::fs::write(dir.path().join("README.0"), "not a hash").expect("write");
        assert!(!has_hash_links(dir.path()));
        std::fs::write(dir.path().join("9d04f354.0"), "a root").expect("write");
        assert!(has_hash_links(dir.path()));
        assert!(!has_hash_links(&dir.path().join("missing")));
        assert!(openssl_certs_dir().is_some_and(|dir| dir.ends_with("certs")));
    }

    #[test]
    fn a_ca_file_may_hold_several_certificates() {
        let first = lab_cert::generate(&["a.example"], 1).expect("lab certificates");
        let second = lab_cert::generate(&["b.example"], 1).expect("lab certificates");
        let file = write_ca_file(&format!("# two lab CAs\n{}{}", first.ca_pem, second.ca_pem));
        assert_eq!(load_ca_file(file.path()).expect("loads").len(), 2);

        let empty = write_ca_file("no certificates here\n");
        let error = load_ca_file(empty.path())
            .map(|found| found.len())
            .expect_err("nothing to load");
        assert!(matches!(error, TransportError::CaFile { .. }), "{error:?}");
    }

    #[test]
    fn openssl_messages_are_tidied() {
        assert_eq!(
            tidy_tls_error(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:\
                 ../ssl/statem/statem_clnt.c:1889: (self-signed certificate)"
            ),
            "certificate verify failed: self-signed certificate"
        );
        assert_eq!(
            tidy_tls_error("error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:"),
            "wrong version number (the server did not answer with TLS: is this a plaintext port that needs STARTTLS?)"
        );
        assert_eq!(
            tidy_tls_error("unexpected EOF"),
            "unexpected EOF (the server closed the connection during the handshake)"
        );
        assert_eq!(
            tidy_tls_error("Connection reset by peer (os error 104)"),
            "Connection reset by peer (os error 104)"
        );
    }
}
