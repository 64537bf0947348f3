//! imapref: diagnose IMAP4 referrals.
//!
//! The crate is layered so that data flows one way: bytes → framer → client machine events → classifier → follower →
//! report → renderer (docs/architecture.md draws it and says where each limit lives).
//!
//! | module        | owns                                                                                  | does I/O |
//! |---------------|---------------------------------------------------------------------------------------|----------|
//! | [`proto`]     | framing, typed responses and codes, commands and quoting, modified UTF-7, IMAP URLs     | no       |
//! | [`client`]    | one client connection as a state machine: send → tag, feed bytes, events, limits       | no       |
//! | [`follow`]    | the outcome classifier and the referral follower: policy, loops, hops, TLS floor        | no       |
//! | [`explain`]   | what a server line means: kind, code, referral decode, known NO texts                  | no       |
//! | [`transport`] | TCP connect (every address), implicit TLS, STARTTLS upgrade, timeouts, certificates    | yes      |
//! | [`session`]   | the one async driver: the client machine over a transport, every wait bounded          | yes      |
//! | [`probe`]     | the KB walkthrough as a short sequence over the driver; the typed report and verdict   | via session |
//! | [`check`]     | many probes from a TOML file, concurrently; expectations and the worst status          | via probe |
//! | [`exporter`]  | the Prometheus exporter: modules of check keys, /probe, /metrics, /, limits; HTTP       | yes, via check |
//! | [`render`]    | human (also live), JSON, Nagios, OpenMetrics, JUnit, graph, exporter pages, proxy log: only to a `Write` | no |
//! | [`serve`]     | the server side before login: input framing, CAPABILITY … LOGIN, AUTHENTICATE PLAIN     | no       |
//! | [`lab`]       | the built-in IMAP server that plays KB Q217388's Exchange 5.5 servers on loopback      | yes      |
//! | [`proxy`]     | a front end for clients that do not follow referrals: log in upstream, follow, relay  | yes      |
//! | [`shell`]     | the interactive REPL: lines to the driver, engine events to the screen                 | via session |
//! | [`cli`]       | clap definitions, validated settings (check keys too), subcommand wiring, netrc       | yes      |
//!
//! Secrets have their own type ([`secret::Secret`]) and exit codes are one contract ([`exit`]).

pub mod check;
pub mod cli;
pub mod client;
pub mod exit;
pub mod explain;
pub mod exporter;
pub mod follow;
pub mod lab;
pub mod probe;
pub mod proto;
pub mod proxy;
pub mod render;
pub mod secret;
pub mod serve;
pub mod session;
pub mod shell;
pub mod transport;
pub mod words;
