//! The sans-IO protocol core. Nothing here imports tokio or `std::net`: these modules take bytes and give values.
//!
//! - [`framing`]: split a byte stream into complete responses (literals, bare LF, limits, streaming of big literals);
//! - [`response`]: typed responses that keep their exact bytes;
//! - [`code`]: response codes, REFERRAL among them;
//! - [`url`]: IMAP URLs (RFC 5092, and the RFC 2192 forms servers still send);
//! - [`command`]: tags, argument quoting and literals, AUTHENTICATE PLAIN, redaction for transcripts;
//! - [`client_command`]: the server's side: parse a command a client sent;
//! - [`mutf7`]: modified UTF-7 mailbox names;
//! - [`display`]: terminal safety, the one function every server byte passes before it is shown.

pub mod client_command;
pub mod code;
pub mod command;
pub mod display;
pub mod framing;
pub mod mutf7;
pub mod response;
pub mod url;
