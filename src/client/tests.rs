//! Replay tests for the client machine, with no socket: `C:`/`S:` transcripts (RFC 3501's examples, KB Q217388's
//! Exchange lines, a session captured from the real Dovecot the tests start) are fed through [`Client`], and the events
//! it gives and the bytes it asks to write are asserted.

use super::*;
use crate::proto::command::{Arg, Piece};
use crate::secret::Secret;

/// Replays a transcript. `C:` lines are sent as typed (a line that ends in `{n}` waits for `+`, and the next `C:`
/// line continues the same command); `S:` lines are fed. Returns one line per event and per write.
fn replay(client: &mut Client, script: &str) -> Vec<String> {
    let mut log = Vec::new();
    let mut open: Option<String> = None;
    for line in script
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
    {
        if let Some(c) = line.strip_prefix("C: ") {
            let waits = c.ends_with('}') && !c.ends_with("+}");
            let piece = Piece {
                wire: format!("{c}\r\n").into_bytes(),
                shown: format!("{c}\r\n").into_bytes(),
                then_wait_continuation: waits,
            };
            let encoded = Encoded {
                pieces: vec![piece],
            };
            match open.take() {
                Some(tag) => {
                    client.continue_command(&tag, encoded).expect("continue");
                    if waits {
                        open = Some(tag);
                    }
                }
                None => {
                    let tag = c.split(' ').next().unwrap_or_default().to_string();
                    client.send_encoded(&tag, encoded).expect("send");
                    if waits || c.ends_with("+}") {
                        open = Some(tag);
                    }
                }
            }
            drain_output(client, &mut log);
        } else if let Some(s) = line.strip_prefix("S: ") {
            client.feed(format!("{s}\r\n").as_bytes());
            drain(client, &mut log);
            drain_output(client, &mut log);
        } else {
            panic!("not a transcript line: {line}");
        }
    }
    log
}

fn drain_output(client: &mut Client, log: &mut Vec<String>) {
    let out = client.take_output();
    if !out.is_empty() {
        log.push(format!(
            "write {}",
            String::from_utf8_lossy(&out)
                .trim_end()
                .replace("\r\n", " | ")
        ));
    }
}

fn drain(client: &mut Client, log: &mut Vec<String>) {
    while let Some(event) = client.next_event().expect("event") {
        log.push(describe(&event));
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Greeting(r) => format!("greeting {}", r.first_line()),
        Event::Untagged { response, command } => {
            format!(
                "untagged({}) {}",
                command.as_deref().unwrap_or("-"),
                response.first_line()
            )
        }
        Event::Continuation {
            command, answered, ..
        } => format!(
            "continuation({}) {}",
            command.as_deref().unwrap_or("-"),
            if *answered {
                "answered"
            } else {
                "for the caller"
            }
        ),
        Event::LiteralStart { len, command, .. } => {
            format!("literal({}) {len} bytes", command.as_deref().unwrap_or("-"))
        }
        Event::LiteralData { data, command } => {
            format!("data({}) {}", command.as_deref().unwrap_or("-"), data.len())
        }
        Event::Completed(c) => format!(
            "completed {} {} ({} untagged)",
            c.tag,
            c.response.first_line(),
            c.untagged.total()
        ),
        Event::StrayTagged(r) => format!("stray {}", r.first_line()),
    }
}

fn client() -> Client {
    Client::new(ClientLimits::default())
}

#[test]
fn rfc_3501_sample_session() {
    let mut c = client();
    let log = replay(
        &mut c,
        r"
        S: * OK IMAP4rev1 Service Ready
        C: a001 login mrc secret
        S: a001 OK LOGIN completed
        C: a002 select inbox
        S: * 18 EXISTS
        S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
        S: * 2 RECENT
        S: * OK [UNSEEN 17] Message 17 is the first unseen message
        S: * OK [UIDVALIDITY 3857529045] UIDs valid
        S: a002 OK [READ-WRITE] SELECT completed
        C: a006 logout
        S: * BYE IMAP4rev1 server terminating connection
        S: a006 OK LOGOUT completed
        ",
    );
    assert_eq!(
        log,
        [
            "greeting * OK IMAP4rev1 Service Ready",
            "write a001 login mrc secret",
            "completed a001 a001 OK LOGIN completed (0 untagged)",
            "write a002 select inbox",
            "untagged(a002) * 18 EXISTS",
            r"untagged(a002) * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)",
            "untagged(a002) * 2 RECENT",
            "untagged(a002) * OK [UNSEEN 17] Message 17 is the first unseen message",
            "untagged(a002) * OK [UIDVALIDITY 3857529045] UIDs valid",
            "completed a002 a002 OK [READ-WRITE] SELECT completed (5 untagged)",
            "write a006 logout",
            "untagged(a006) * BYE IMAP4rev1 server terminating connection",
            "completed a006 a006 OK LOGOUT completed (1 untagged)",
        ]
    );
    assert_eq!(c.round_trips(), 3);
    assert_eq!(
        c.last_bye(),
        Some("IMAP4rev1 server terminating connection")
    );
    assert_eq!(c.in_flight().count(), 0);
}

#[test]
fn rfc_3501_synchronizing_literal_waits_for_the_continuation() {
    // RFC 3501 §6.3.11 (APPEND), shortened: the data goes only after `+`.
    let mut c = client();
    let log = replay(
        &mut c,
        r"
        S: * OK ready
        C: A003 APPEND saved-messages (\Seen) {12}
        S: + Ready for literal data
        C: Hello world!
        S: A003 OK APPEND completed
        ",
    );
    assert_eq!(
        log,
        [
            "greeting * OK ready",
            r"write A003 APPEND saved-messages (\Seen) {12}",
            "continuation(A003) for the caller",
            "write Hello world!",
            "completed A003 A003 OK APPEND completed (0 untagged)",
        ]
    );
    assert_eq!(c.round_trips(), 2);
}

#[test]
fn the_kb_exchange_walkthrough() {
    // KB Q217388's session, as the administrator typed it over telnet.
    let mut c = client();
    let log = replay(
        &mut c,
        "
        S: * OK Microsoft Exchange IMAP4rev1 server version 5.5.2448.8 (reedlm2) ready
        C: ? login DOMname/UserN/AliasN PASSword
        S: ? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed
        C: ? Select Inbox
        S: ? NO There is no replica for that mailbox on this server.
        ",
    );
    assert_eq!(log.len(), 5);
    assert!(log[2].starts_with("completed ? ? OK [REFERRAL imap://redmond%2Freedl%2Fimapf"));
    assert_eq!(
        log[4],
        "completed ? ? NO There is no replica for that mailbox on this server. (0 untagged)"
    );
}

#[test]
fn pipelined_commands_go_in_one_write_and_untagged_data_belongs_to_the_oldest() {
    let mut c = client();
    c.feed(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n");
    assert!(matches!(c.next_event(), Ok(Some(Event::Greeting(_)))));
    for (tag, name) in [("a1", "NOOP"), ("a2", "CHECK"), ("a3", "LOGOUT")] {
        c.send(&Command::new(tag, name)).expect("send");
    }
    assert_eq!(
        c.take_output(),
        b"a1 NOOP\r\na2 CHECK\r\na3 LOGOUT\r\n".to_vec(),
        "one write"
    );
    c.feed(b"* 1 EXISTS\r\na1 OK done\r\n* 2 EXISTS\r\na2 OK done\r\n* BYE bye\r\na3 OK done\r\n");
    let mut log = Vec::new();
    drain(&mut c, &mut log);
    assert_eq!(
        log,
        [
            "untagged(a1) * 1 EXISTS",
            "completed a1 a1 OK done (1 untagged)",
            "untagged(a2) * 2 EXISTS",
            "completed a2 a2 OK done (1 untagged)",
            "untagged(a3) * BYE bye",
            "completed a3 a3 OK done (1 untagged)",
        ]
    );
    assert_eq!(c.round_trips(), 1, "three commands, one round trip");
}

#[test]
fn commands_behind_a_synchronizing_literal_wait_with_it() {
    let mut c = client();
    c.feed(b"* OK ready\r\n");
    let _ = c.next_event();
    // An 8-bit password cannot be quoted: it goes as a literal, which waits for `+` without LITERAL+.
    let login = Command::new("a1", "LOGIN")
        .arg(Arg::Astring("jdoe".into()))
        .arg(Arg::Secret(Secret::new("pässword")));
    c.send(&login).expect("login");
    c.send(&Command::new("a2", "SELECT").arg(Arg::Mailbox("INBOX".into())))
        .expect("select");
    assert_eq!(c.take_output(), b"a1 LOGIN jdoe {9}\r\n".to_vec());
    assert_eq!(c.waiting_for_continuation(), Some("a1"));
    assert!(!c.has_output(), "SELECT waits behind the literal");
    c.feed(b"+ go on\r\n");
    let event = c.next_event().expect("event");
    assert!(matches!(
        event,
        Some(Event::Continuation { answered: true, ref command, .. }) if command.as_deref() == Some("a1")
    ));
    assert_eq!(
        c.take_output(),
        "pässword\r\na2 SELECT INBOX\r\n".as_bytes().to_vec()
    );
    // The transcript shows the password as ***.
    assert!(!c.transcript().to_text().contains("pässword"));
}

#[test]
fn a_refused_literal_drops_the_rest_of_its_command_only() {
    let mut c = client();
    c.feed(b"* OK ready\r\n");
    let _ = c.next_event();
    let login = Command::new("a1", "LOGIN")
        .arg(Arg::Astring("jdoe".into()))
        .arg(Arg::Secret(Secret::new("pässword")));
    c.send(&login).expect("login");
    c.send(&Command::new("a2", "NOOP")).expect("noop");
    let _ = c.take_output();
    c.feed(b"a1 NO no literals today\r\n");
    assert!(matches!(c.next_event(), Ok(Some(Event::Completed(_)))));
    assert_eq!(
        c.take_output(),
        b"a2 NOOP\r\n".to_vec(),
        "the password never goes"
    );
}

#[test]
fn literal_minus_sends_small_literals_without_waiting_and_big_ones_with() {
    let mut c = client();
    c.feed(b"* OK [CAPABILITY IMAP4rev1 LITERAL-] ready\r\n");
    let _ = c.next_event();
    assert_eq!(c.literal_mode(), LiteralMode::Minus);
    let small = "ü".repeat(10);
    c.send(&Command::new("a1", "SELECT").arg(Arg::Astring(small)))
        .expect("small");
    let out = c.take_output();
    assert!(out.starts_with(b"a1 SELECT {20+}\r\n"), "{out:?}");
    assert_eq!(c.waiting_for_continuation(), None);
    let big = "ü".repeat(3000); // 6000 bytes: over LITERAL-'s 4096
    c.send(&Command::new("a2", "SELECT").arg(Arg::Astring(big)))
        .expect("big");
    assert_eq!(c.take_output(), b"a2 SELECT {6000}\r\n".to_vec());
    assert_eq!(c.waiting_for_continuation(), Some("a2"));
}

#[test]
fn a_flood_of_untagged_responses_is_counted_not_kept() {
    let limits = ClientLimits::default();
    let mut c = Client::new(limits);
    c.feed(b"* OK ready\r\n");
    let _ = c.next_event();
    c.send(&Command::new("a1", "NOOP")).expect("send");
    let _ = c.take_output();
    let flood = "* OK flood\r\n".repeat(100_000);
    c.feed(flood.as_bytes());
    c.feed(b"* 7 EXISTS\r\na1 OK done\r\n");
    let mut completion = None;
    while let Some(e) = c.next_event().expect("event") {
        if let Event::Completed(done) = e {
            completion = Some(done);
        }
    }
    let done = completion.expect("completed");
    assert_eq!(done.untagged.total(), 100_001);
    assert_eq!(
        done.untagged.iter().count(),
        limits.keep_first + limits.keep_last
    );
    assert_eq!(
        done.untagged.iter().last().map(Response::first_line),
        Some("* 7 EXISTS".to_string()),
        "the last EXISTS is kept"
    );
}

#[test]
fn a_flood_of_continuation_requests_is_a_protocol_error() {
    let mut c = client();
    c.feed(b"* OK ready\r\n");
    let _ = c.next_event();
    c.send(&Command::new("a1", "LOGIN").arg(Arg::Astring("u".into())))
        .expect("send");
    let _ = c.take_output();
    c.feed("+ \r\n".repeat(100).as_bytes());
    let mut seen = 0;
    let error = loop {
        match c.next_event() {
            Ok(Some(_)) => seen += 1,
            Ok(None) => panic!("no error after {seen} continuations"),
            Err(e) => break e,
        }
    };
    assert_eq!(seen, ClientLimits::default().max_unrequested_continuations);
    assert!(matches!(
        error,
        ClientError::ContinuationFlood { count: 17 }
    ));
    assert!(c.next_event().is_err(), "the machine stays failed");
}

#[test]
fn a_tag_that_was_never_sent_is_a_stray() {
    let mut c = client();
    let log = replay(
        &mut c,
        "
        S: * OK ready
        C: a1 NOOP
        S: zz9 OK done
        ",
    );
    assert_eq!(log[2], "stray zz9 OK done");
    assert!(c.is_in_flight("a1"));
}

#[test]
fn a_streamed_literal_belongs_to_its_command_and_is_not_held() {
    let limits = ClientLimits {
        framer: FramerLimits {
            max_inline_literal: 16,
            ..FramerLimits::default()
        },
        ..ClientLimits::default()
    };
    let mut c = Client::new(limits);
    c.feed(b"* OK ready\r\n");
    let _ = c.next_event();
    c.send(&Command::new("a1", "FETCH").arg(Arg::Raw("1 BODY[]".into())))
        .expect("send");
    let _ = c.take_output();
    c.feed(b"* 1 FETCH (BODY[] {100}\r\n");
    c.feed(&[b'x'; 100]);
    c.feed(b")\r\na1 OK done\r\n");
    let mut log = Vec::new();
    drain(&mut c, &mut log);
    assert_eq!(log[0], "literal(a1) 100 bytes");
    assert!(log.iter().any(|l| l.starts_with("data(a1)")));
    assert_eq!(
        log.last().map(String::as_str),
        Some("completed a1 a1 OK done (1 untagged)")
    );
}

#[test]
fn capabilities_are_learned_and_forgotten_after_tls() {
    let mut c = client();
    c.feed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n");
    let _ = c.next_event();
    assert!(c.has_capability("logindisabled"));
    c.send(&Command::new("a1", "STARTTLS")).expect("send");
    let _ = c.take_output();
    c.feed(b"a1 OK begin TLS\r\n");
    let _ = c.next_event();
    assert_eq!(c.buffered_input(), 0);
    c.restart_after_tls();
    assert_eq!(c.capabilities(), None);
    c.send(&Command::new("a2", "CAPABILITY")).expect("send");
    let _ = c.take_output();
    c.feed(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\na2 OK done\r\n");
    while c.next_event().expect("event").is_some() {}
    assert!(c.has_capability("SASL-IR"));
    assert!(!c.has_capability("LOGINDISABLED"));
}

#[test]
fn too_much_waiting_output_is_refused() {
    let limits = ClientLimits {
        max_pending_output: 64,
        ..ClientLimits::default()
    };
    let mut c = Client::new(limits);
    let long = "x".repeat(100);
    let e = c
        .send(&Command::new("a1", "SELECT").arg(Arg::Astring(long)))
        .expect_err("too big");
    assert_eq!(e, ClientError::OutputFull { limit: 64 });
}

#[test]
fn a_dovecot_session_captured_from_the_real_server() {
    // Captured from Dovecot 2.3.19 as the tests start it (tests/support/dovecot.rs): a referred user, then a local one.
    let text = include_str!("../../tests/fixtures/dovecot-session.txt");
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut log = Vec::new();
    let mut c = client();
    for connection in body.split("--\n") {
        c = client();
        log.extend(replay(&mut c, connection));
    }
    let completions: Vec<&String> = log.iter().filter(|l| l.starts_with("completed")).collect();
    assert!(
        completions
            .iter()
            .any(|l| l.contains("NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:")),
        "{log:#?}"
    );
    assert!(
        completions
            .iter()
            .any(|l| l == &"completed b2 b2 OK [READ-WRITE] Select completed (0.004 + 0.000 + 0.003 secs). (7 untagged)"),
        "{log:#?}"
    );
    assert_eq!(c.in_flight().count(), 0);
    assert_eq!(c.round_trips(), 3);
}

#[test]
fn a_password_the_server_echoes_back_is_masked_in_the_transcript() {
    // Found by the client_machine fuzz target: server text that happens to hold the password went into the
    // transcript verbatim, and the transcript is what `-v`, JSON and `:transcript` show.
    let mut c = client();
    c.feed(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n");
    drain(&mut c, &mut Vec::new());
    let password = Secret::new("S3cret-pw");
    c.login("victim", &password, false).expect("login");
    let select = Command::new("a2", "SELECT").arg(Arg::Mailbox("INBOX".into()));
    c.send(&select).expect("select");
    let mut log = Vec::new();
    drain_output(&mut c, &mut log);
    c.feed(
        b"* BAD you sent S3cret-pw\r\na1 NO [AUTHENTICATIONFAILED] a1 LOGIN victim S3cret-pw\r\n",
    );
    drain(&mut c, &mut log);
    let text = c.transcript().to_text();
    assert!(!text.contains("S3cret-pw"), "{text}");
    assert!(text.contains("a1 LOGIN victim ***"), "{text}");
    // A secret argument of any command counts too.
    let mut c = client();
    c.feed(b"* OK ready\r\n");
    drain(&mut c, &mut Vec::new());
    let login = Command::new("b1", "LOGIN")
        .arg(Arg::Astring("u".into()))
        .arg(Arg::Secret(Secret::new("hunter22")));
    c.send(&login).expect("login");
    c.feed(b"b1 NO hunter22 is wrong\r\n");
    drain(&mut c, &mut Vec::new());
    assert!(!c.transcript().to_text().contains("hunter22"));
}
