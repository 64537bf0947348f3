//! Helpers shared by the transport tests: loopback listeners, a port nobody listens on, a CA file on disk.

use std::io::Write;

use tokio::net::TcpListener;

/// A listener on 127.0.0.1 with a port chosen by the system.
pub(crate) async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

/// A 127.0.0.1 port that was just free: bound, then released.
pub(crate) async fn closed_port() -> u16 {
    let (listener, port) = listener().await;
    drop(listener);
    port
}

/// `pem` written to a temporary file, removed when the returned value is dropped.
pub(crate) fn write_ca_file(pem: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(pem.as_bytes()).expect("write CA file");
    file
}
