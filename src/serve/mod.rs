//! The server side of IMAP, sans I/O: what the built-in lab and the proxy share when they face a client.
//!
//! - [`reply`]: what the I/O side has to do next ([`Reply`]: bytes to write, a TLS handshake, a close);
//! - [`input`]: the client's bytes framed into complete commands, with `+` continuations for synchronizing
//!   literals and the limits on lines and literals ([`Input`]);
//! - [`prelogin`]: the not-authenticated state ([`PreLogin`]): CAPABILITY, NOOP, ID, STARTTLS, LOGOUT, LOGIN and
//!   AUTHENTICATE PLAIN (SASL-IR or a `+` continuation), LOGINDISABLED before TLS; it hands the caller the
//!   [`Credentials`] and every other command, and the caller decides.
//!
//! The lab's server ([`crate::lab`]) answers the credentials from its user table and serves the mailbox commands
//! itself; the proxy ([`crate::proxy`]) answers them by logging in upstream. Neither does its own parsing of LOGIN or
//! AUTHENTICATE.

pub mod input;
pub mod prelogin;
pub mod reply;

pub use input::{Incoming, Input, InputLimits, CONTINUE};
pub use prelogin::{Credentials, Mechanism, Persona, PreLogin, Step};
pub use reply::{line, Reply};
