//! Fuzz target `client_command`: the server's command parser and the client's encoder against each other.
//!
//! - [`parse_command`] (and [`guess_tag`]) on arbitrary bytes never panic.
//! - Arbitrary strings encoded by [`Command::encode`] as [`Arg::Astring`], [`Arg::Secret`] or [`Arg::Mailbox`] either
//!   fail because they hold CR, LF or NUL, or the wire bytes parse back with [`parse_command`] to the same tag, the
//!   same command name and arguments holding exactly the same bytes (for a mailbox: its modified UTF-7 form, which
//!   decodes back to the name). With and without LITERAL+.
//!
//! Input layout: byte 0 picks LITERAL+ and the kinds of the arguments; the rest is split at 0xFF (which UTF-8 never
//! holds) into at most four strings, read lossily as UTF-8.

#![no_main]

use imapref::proto::client_command::{guess_tag, parse_command};
use imapref::proto::command::{Arg, Command, CommandError};
use imapref::proto::mutf7;
use imapref::secret::Secret;
use libfuzzer_sys::fuzz_target;

fn forbidden(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary bytes: never a panic.
    let _ = parse_command(data);
    let _ = guess_tag(data);

    // 2. Encode, then parse back.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let literal_plus = flags & 1 != 0;
    let strings: Vec<String> = rest
        .split(|&b| b == 0xff)
        .take(4)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();

    let mut command = Command::new("a1", "LOGIN");
    let mut expected: Vec<Vec<u8>> = Vec::new();
    for (i, s) in strings.iter().enumerate() {
        let kind = (flags >> (1 + 2 * i)) & 0x03;
        let arg = match kind {
            0 | 3 => {
                expected.push(s.as_bytes().to_vec());
                Arg::Astring(s.clone())
            }
            1 => {
                expected.push(s.as_bytes().to_vec());
                Arg::Secret(Secret::new(s.clone()))
            }
            _ => {
                let wire = if s.eq_ignore_ascii_case("INBOX") {
                    "INBOX".to_owned()
                } else {
                    mutf7::encode(s)
                };
                if !forbidden(s) && !s.eq_ignore_ascii_case("INBOX") {
                    let back = mutf7::decode(&wire).unwrap_or_else(|e| {
                        panic!("mUTF-7 of {s:?} is {wire:?}, which does not decode: {e}")
                    });
                    assert_eq!(&back, s, "mUTF-7 round trip");
                }
                expected.push(wire.into_bytes());
                Arg::Mailbox(s.clone())
            }
        };
        command = command.arg(arg);
    }

    let encoded = match command.encode(literal_plus) {
        Ok(encoded) => encoded,
        Err(CommandError::ForbiddenByte { byte, .. }) => {
            assert!(matches!(byte, b'\r' | b'\n' | 0));
            assert!(
                strings.iter().any(|s| forbidden(s)),
                "refused without CR, LF or NUL"
            );
            return;
        }
        Err(other) => panic!("encoding {strings:?} failed: {other}"),
    };
    assert!(
        !strings.iter().any(|s| forbidden(s)),
        "CR, LF or NUL was encoded"
    );

    let wire = encoded.wire();
    let parsed = parse_command(&wire).unwrap_or_else(|e| {
        panic!(
            "{strings:?} encoded as {:?} does not parse: {e}",
            String::from_utf8_lossy(&wire)
        )
    });
    assert_eq!(parsed.tag, "a1");
    assert_eq!(parsed.name, "LOGIN");
    assert_eq!(parsed.args.len(), expected.len(), "argument count");
    for (value, want) in parsed.args.iter().zip(&expected) {
        assert_eq!(
            value.as_bytes(),
            Some(&want[..]),
            "{strings:?} encoded as {:?}",
            String::from_utf8_lossy(&wire)
        );
    }
    // Synchronizing literals split the command; LITERAL+ never does.
    if literal_plus {
        assert_eq!(encoded.pieces.len(), 1);
    }
    assert!(encoded.pieces.iter().all(|p| p.wire.ends_with(b"\r\n")));
});
