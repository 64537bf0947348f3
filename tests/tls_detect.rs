//! Telling implicit TLS from plaintext against the built-in lab: its IMAPS port speaks TLS, its plaintext port does
//! not, and the first bytes of its TLS answer are recognised as a TLS record where a greeting should be.

use std::time::{Duration, Instant};

use imapref::lab::{Lab, LabConfig};
use imapref::transport::{is_tls_record, speaks_tls, Endpoint, TlsProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn lab() -> Lab {
    Lab::start(LabConfig::default()).await.expect("lab starts")
}

#[tokio::test]
async fn the_lab_imaps_port_speaks_tls_and_its_plaintext_port_does_not() {
    let lab = lab().await;
    let front = lab.front().clone();
    let imaps = front.tls.expect("the lab has an IMAPS port");
    let started = Instant::now();

    let found = speaks_tls(
        &Endpoint::new(imaps.ip().to_string(), imaps.port()),
        Duration::from_secs(2),
    )
    .await;

    assert!(found.speaks_tls(), "{found:?}");
    assert!(
        matches!(found, TlsProbe::SpeaksTls { protocol: Some(ref p) } if p.starts_with("TLSv1.")),
        "{found:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let plain = speaks_tls(
        &Endpoint::new(front.plain.ip().to_string(), front.plain.port()),
        Duration::from_secs(2),
    )
    .await;
    assert!(matches!(plain, TlsProbe::NotTls { .. }), "{plain:?}");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_tls_answer_is_recognised_where_a_greeting_should_be() {
    let lab = lab().await;
    let imaps = lab.front().tls.expect("IMAPS port");
    let plain = lab.front().plain;

    // The plaintext port greets with "* OK", which is not a TLS record.
    let mut tcp = TcpStream::connect(plain).await.expect("connect");
    let mut greeting = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut greeting))
        .await
        .expect("greeting in time")
        .expect("read");
    assert!(!is_tls_record(&greeting[..n]), "{:?}", &greeting[..n]);
    drop(tcp);

    // The IMAPS port says nothing first; it answers a ClientHello with a TLS record (a ServerHello or an alert).
    let mut tcp = TcpStream::connect(imaps).await.expect("connect");
    let silent = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut greeting)).await;
    assert!(
        silent.is_err(),
        "an implicit-TLS port sends nothing first: {silent:?}"
    );
    tcp.write_all(CLIENT_HELLO).await.expect("send ClientHello");
    let mut answer = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    assert!(is_tls_record(&answer), "{answer:?}");
    drop(tcp);
    lab.shutdown().await;
}

/// A minimal TLS 1.2 ClientHello (two ECDHE AES-128-GCM cipher suites; extensions only for the groups,
/// point formats and signature algorithms), so the server answers with a ServerHello or an alert record.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x49, // record: handshake, TLS 1.0 record version, length 73
    0x01, 0x00, 0x00, 0x45, // ClientHello, length 69
    0x03, 0x03, // TLS 1.2
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
    0x1f, // random
    0x00, // no session id
    0x00, 0x04, 0xc0, 0x2f, 0xc0,
    0x2b, // cipher suites: ECDHE-RSA-AES128-GCM, ECDHE-ECDSA-AES128-GCM
    0x01, 0x00, // compression: null
    0x00, 0x18, // extensions, 24 bytes
    0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported groups: secp256r1
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec point formats: uncompressed
    0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01, // signature algorithms
];

#[tokio::test(flavor = "multi_thread")]
async fn a_plaintext_probe_of_an_implicit_tls_port_says_use_tls_within_seconds() {
    let lab = lab().await;
    let imaps = lab.front().tls.expect("front has implicit TLS").to_string();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("imapref")
            .expect("binary")
            .args([
                "probe",
                &imaps,
                "DOMname/UserN/AliasN",
                "--password-env",
                "PW",
                "--timeout",
                "10",
            ])
            .env("PW", "PASSword")
            .env("NO_COLOR", "1")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("this port speaks TLS (implicit TLS, as on 993): use --tls"),
        "{stdout}"
    );
    assert!(
        took < Duration::from_secs(4),
        "took {took:?}, not the 10 s timeout"
    );
    assert!(!stdout.contains("PASSword"));
    lab.shutdown().await;
}
