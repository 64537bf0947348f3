//! Fuzz target `client_machine`: the sans-IO client connection ([`imapref::client::Client`]) fed arbitrary server
//! bytes, with a pipelined LOGIN (a literal password), SELECT and LOGOUT in flight.
//!
//! What must hold for any input: nothing panics; once an error is returned the machine stays failed; what each command
//! keeps stays within its limits (head and tail of untagged responses); no more continuation requests than allowed are
//! accepted; the output never holds the password except where the machine released the literal after a `+`; a
//! completed tag is no longer in flight.

#![no_main]

use imapref::client::{Client, ClientLimits, Event};
use imapref::proto::command::{Arg, Command};
use imapref::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ClientLimits {
        keep_first: 4,
        keep_last: 2,
        max_unrequested_continuations: 3,
        ..ClientLimits::default()
    };
    let mut client = Client::new(limits);
    let password = Secret::new("pässwörd");
    let mut sent = false;
    let mut failed = false;
    let mut continuations = 0usize;
    let chunk = usize::from(data.first().copied().unwrap_or(7)).max(1);
    for piece in data.chunks(chunk) {
        client.feed(piece);
        loop {
            match client.next_event() {
                Ok(Some(event)) => {
                    assert!(!failed, "an event after an error");
                    match event {
                        Event::Greeting(_) if !sent => {
                            sent = true;
                            let login = Command::new("a1", "LOGIN")
                                .arg(Arg::Astring("user".into()))
                                .arg(Arg::Secret(password.clone()));
                            client.send(&login).expect("login");
                            client
                                .send(&Command::new("a2", "SELECT").arg(Arg::Mailbox("INBOX".into())))
                                .expect("select");
                            client.send(&Command::new("a3", "LOGOUT")).expect("logout");
                        }
                        Event::Completed(c) => {
                            assert!(c.untagged.iter().count() <= limits.keep_first + limits.keep_last);
                            assert!(!client.is_in_flight(&c.tag));
                        }
                        Event::Continuation { answered: false, .. } => {
                            continuations += 1;
                            assert!(continuations <= 3 * (limits.max_unrequested_continuations + 1));
                        }
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    assert!(client.next_event().is_err(), "a failed machine stays failed");
                    break;
                }
            }
        }
        let out = client.take_output();
        let shows = out.windows("pässwörd".len()).any(|w| w == "pässwörd".as_bytes());
        if shows {
            assert!(client.secret_written(), "the password went out without being counted");
        }
        if failed {
            break;
        }
    }
    assert!(!client.transcript().to_text().contains("pässwörd"), "the transcript shows the password");
});
