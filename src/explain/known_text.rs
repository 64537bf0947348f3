//! The NO texts administrators meet next to referrals, and what each one means.
//!
//! Servers put their reason in free text as often as in a code: Exchange 5.5's "There is no replica for that mailbox on
//! this server." is the KB's whole point, and Cyrus's "Server(s) unavailable to complete operation" means the client has
//! not shown it understands mailbox referrals. Matching is by case-insensitive substring.

use serde::Serialize;

/// A recognised server text, with its meaning and the next thing to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownText {
    /// A stable identifier, used in JSON (`no-replica`, ...).
    pub id: &'static str,
    /// What the server is saying, for an administrator.
    pub meaning: &'static str,
    /// What to check or do next.
    pub next_step: &'static str,
}

/// Exchange 5.5's text when the mailbox is not on this server (KB Q217388).
pub const NO_REPLICA: KnownText = KnownText {
    id: "no-replica",
    meaning: "The user is logged in on a server that holds no replica of this mailbox. Exchange 5.5 says this after \
              `OK [REFERRAL]` on LOGIN: the user's home server is elsewhere, because the servers do not replicate \
              their directory to each other, or because the client did not follow the login referral.",
    next_step: "Log in on the home server named by the login referral (imapref probe follows it), and check that the \
                Exchange servers replicate their directory.",
};

const KNOWN: &[(&str, KnownText)] = &[
    ("no replica for that mailbox", NO_REPLICA),
    (
        "server(s) unavailable to complete operation",
        KnownText {
            id: "referrals-not-enabled",
            meaning: "Cyrus keeps this mailbox on another backend, but only refers clients that have shown they \
                      understand mailbox referrals.",
            next_step: "Send RLIST (or LIST (REMOTE)) before SELECT; imapref probe does this when the server \
                        advertises MAILBOX-REFERRALS.",
        },
    ),
    (
        "remote mailbox",
        KnownText {
            id: "remote-mailbox",
            meaning: "The mailbox lives on another server (RFC 2193 mailbox referral).",
            next_step: "Open the referred server and select the mailbox there.",
        },
    ),
    (
        "try this server instead",
        KnownText {
            id: "moved-user",
            meaning: "The server knows the user but does not serve them: their mailbox lives on the referred server \
                      (Dovecot's passdb `host` with `nologin`).",
            next_step: "Log in on the referred server, or configure the front server to proxy (Dovecot `proxy=y`).",
        },
    ),
    (
        "you should use this server instead",
        KnownText {
            id: "logged-in-elsewhere-home",
            meaning: "Logged in here, but the user's own mailboxes are on the referred server.",
            next_step: "Follow the referral to reach the INBOX.",
        },
    ),
    (
        "mailbox has moved",
        KnownText {
            id: "moved-user",
            meaning: "The user's mailbox was moved to the referred server.",
            next_step: "Log in on the referred server and update the client's settings.",
        },
    ),
    (
        "authentication failed",
        KnownText {
            id: "authentication-failed",
            meaning: "The user name or password is wrong, or the account may not log in here. A server must not \
                      refer a user whose authentication failed, so no referral comes with this.",
            next_step: "Check the login name's form (Exchange 5.5 wants DOMAIN/user/alias) and the password.",
        },
    ),
    (
        "account disabled",
        KnownText {
            id: "account-disabled",
            meaning: "The account exists but is disabled on this server.",
            next_step: "Ask the mail administrator to enable the account, or find the server that serves it.",
        },
    ),
    (
        "doesn't exist",
        KnownText {
            id: "no-such-mailbox",
            meaning: "There is no mailbox by that name on this server.",
            next_step: "List the mailboxes (LIST \"\" *, or RLIST for remote ones) and check the name and hierarchy \
                        delimiter.",
        },
    ),
    (
        "plaintext authentication disallowed",
        KnownText {
            id: "plaintext-disallowed",
            meaning: "The server refuses passwords over an unencrypted connection.",
            next_step: "Use --starttls or --tls.",
        },
    ),
    (
        "permission denied",
        KnownText {
            id: "no-permission",
            meaning: "The user may not access that mailbox.",
            next_step: "Check the mailbox's access rights (ACL) for this user.",
        },
    ),
];

/// Recognises a server text.
pub fn recognise(text: &str) -> Option<KnownText> {
    let lower = text.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, known)| *known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kb_text_and_its_kin() {
        assert_eq!(
            recognise("There is no replica for that mailbox on this server.").map(|k| k.id),
            Some("no-replica")
        );
        assert_eq!(
            recognise("Server(s) unavailable to complete operation").map(|k| k.id),
            Some("referrals-not-enabled")
        );
        assert_eq!(
            recognise("Authentication failed.").map(|k| k.id),
            Some("authentication-failed")
        );
        assert_eq!(
            recognise("Mailbox doesn't exist: Public Folders/Gone (0.001 + 0.000 secs).")
                .map(|k| k.id),
            Some("no-such-mailbox")
        );
        assert_eq!(recognise("LOGIN completed"), None);
    }
}
