//! Helpers shared by imapref's integration tests.
//!
//! Each test binary pulls this in with `mod support;` and uses only part of it, hence the `dead_code`
//! allowance below.
#![allow(dead_code)]

pub mod dovecot;
pub mod hostile;
pub mod http;
pub mod lab;
pub mod proxy;
#[cfg(unix)]
pub mod pty;
pub mod run;
pub mod scripted;
