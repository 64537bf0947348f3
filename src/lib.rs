//! imapref: diagnose IMAP4 referrals.
//!
//! The crate is layered the way a network diagnostic tool should be:
//!
//! | module        | owns                                                                                  | does I/O |
//! |---------------|---------------------------------------------------------------------------------------|----------|
//! | [`proto`]     | framing, typed responses and codes, commands and quoting, modified UTF-7, IMAP URLs     | no       |
//! | [`explain`]   | what a server line means: kind, code, referral decode, known NO texts                  | no       |
//! | [`transport`] | TCP connect (every address), implicit TLS, STARTTLS upgrade, timeouts, certificates    | yes      |
//! | [`session`]   | one client connection: send a command, gather its responses, a redacted transcript     | yes      |
//! | [`probe`]     | the KB walkthrough: steps, referral policy and following, diagnoses, a typed report    | yes      |
//! | [`check`]     | many probes from a TOML file, concurrently; expectations and the worst status          | yes      |
//! | [`render`]    | human, JSON, Nagios, OpenMetrics, JUnit and graph renderers; they only write to a `Write` | no     |
//! | [`lab`]       | the built-in IMAP server that plays KB Q217388's Exchange 5.5 servers on loopback      | yes      |
//! | [`shell`]     | the interactive REPL                                                                   | yes      |
//! | [`cli`]       | clap definitions, validated settings, subcommand wiring                                | yes      |
//!
//! Secrets have their own type ([`secret::Secret`]) and exit codes are one contract ([`exit`]).

pub mod check;
pub mod cli;
pub mod exit;
pub mod explain;
pub mod lab;
pub mod probe;
pub mod proto;
pub mod render;
pub mod secret;
pub mod session;
pub mod shell;
pub mod transport;
