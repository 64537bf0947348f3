//! Exit codes: one contract, following the monitoring-plugins convention (Nagios, Icinga, Sensu).
//!
//! Documented for users in `docs/exit-codes.md`; change both together.

/// The mailbox was reached, after any referrals (probe); the last command got OK (piped shell); the lines were explained.
pub const OK: i32 = 0;
/// Warning: the mailbox was reached, but something needs attention (a certificate expiring within `--cert-warn-days`,
/// a referral that had to be followed). In the piped shell: the last command got NO.
pub const WARNING: i32 = 1;
/// Critical: the login was refused, there is no replica, a mailbox referral could not be followed, a referral loop, a
/// TLS failure, or the policy refused to follow. In the piped shell: the last command got BAD or BYE, or the connection
/// was lost.
pub const CRITICAL: i32 = 2;
/// Unknown: a usage error, a DNS or connect failure, a timeout, or garbage from the server.
pub const UNKNOWN: i32 = 3;
/// Interrupted: the person pressed Ctrl-C (SIGINT) during a probe; what it learned so far was printed (128 + 2, as
/// shells report a process ended by SIGINT).
pub const INTERRUPTED: i32 = 130;
