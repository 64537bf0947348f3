//! Small scripted IMAP servers on loopback, for tests that need one precise server behaviour (the wider corpus of
//! hostile behaviours is [`super::hostile`]).
//!
//! - [`serve`]: one connection, any async script on the socket;
//! - [`scripted`]: a greeting, then each command answered by its name;
//! - [`line_server`]: a thread server that answers whole commands (literals included, checking that the client
//!   waited for `+`) and reports every line it received.
//!
//! Each binds 127.0.0.1 on an ephemeral port and serves one connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-connection server on loopback that runs `script` on the accepted socket. Returns its `host:port` and the
/// task (abort it to stop the server early).
pub async fn serve<F, Fut>(script: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = tokio::spawn(async move {
        if let Ok((socket, _)) = listener.accept().await {
            script(socket).await;
        }
    });
    (addr, handle)
}

/// A scripted server: greets with `greeting`, then answers each command by its name (upper-cased) with `answer`,
/// which returns the lines to send (`{tag}` replaced); `None` stays silent.
pub async fn scripted(
    greeting: &'static str,
    answer: fn(&str) -> Option<&'static str>,
) -> (String, tokio::task::JoinHandle<()>) {
    serve(move |mut s| async move {
        let _ = s.write_all(greeting.as_bytes()).await;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                let mut words = line.split(' ');
                let tag = words.next().unwrap_or("*");
                let name = words.next().unwrap_or("").to_ascii_uppercase();
                if let Some(reply) = answer(&name) {
                    let _ = s.write_all(reply.replace("{tag}", tag).as_bytes()).await;
                }
            }
        }
    })
    .await
}

/// A thread server that greets with `* OK [CAPABILITY IMAP4rev1] tiny server ready`, then gives each whole command
/// (its literals included) to `answer`, which returns the lines to send back (`None`: close the connection; a
/// `* BYE` line: close after it). A line ending with `{n}` gets `+ Ready` (after noting whether the client sent
/// more before it, as `(early data: true)`), then the n bytes are read. Every line and literal received is sent on
/// the returned channel.
pub fn line_server(
    answer: fn(&str) -> Option<Vec<String>>,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (got, received) = mpsc::channel();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        if writer
            .write_all(b"* OK [CAPABILITY IMAP4rev1] tiny server ready\r\n")
            .is_err()
        {
            return;
        }
        let mut reader = BufReader::new(stream);
        // The command so far: a command with literals spans several lines.
        let mut command = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_string();
            command.push_str(&line);
            if let Some(n) = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                // The client must wait for `+` before sending the literal.
                let early = !reader.buffer().is_empty();
                let _ = got.send(format!("{line} (early data: {early})"));
                if writer.write_all(b"+ Ready for literal data\r\n").is_err() {
                    return;
                }
                let mut data = vec![0; n];
                if reader.read_exact(&mut data).is_err() {
                    return;
                }
                let data = String::from_utf8_lossy(&data).into_owned();
                command.push_str(&data);
                let _ = got.send(data);
                continue;
            }
            let _ = got.send(line);
            match answer(&std::mem::take(&mut command)) {
                Some(replies) => {
                    for r in &replies {
                        if writer.write_all(format!("{r}\r\n").as_bytes()).is_err() {
                            return;
                        }
                    }
                    // A server that says BYE closes the connection.
                    if replies.iter().any(|r| r.starts_with("* BYE")) {
                        return;
                    }
                }
                None => return,
            }
        }
    });
    (addr, received)
}
