//! The outcome classifier: what a greeting, a LOGIN/AUTHENTICATE completion or a SELECT/EXAMINE completion means for
//! the walk, as an enum. The probe, the shell and the proxy all ask here; none decides "logged in, or referred?" itself.
//!
//! | response                                   | outcome                                |
//! |--------------------------------------------|----------------------------------------|
//! | `* OK` / `* PREAUTH` greeting              | [`Greeting::Ready`] / [`Greeting::Preauth`] |
//! | `* BYE [REFERRAL url]` greeting            | [`Greeting::Referred`]                 |
//! | `* BYE` greeting                           | [`Greeting::Refuses`]                  |
//! | `a OK` to LOGIN                            | [`Login::LoggedIn`]                    |
//! | `a OK [REFERRAL url]` to LOGIN (the KB)    | [`Login::LoggedInReferred`]            |
//! | `a NO [REFERRAL url]`, `* BYE [REFERRAL]`  | [`Login::Referred`]                    |
//! | `a NO` / `a BAD` to LOGIN                  | [`Login::Refused`], with its RFC 5530 code |
//! | `a OK` to SELECT                           | [`Select::Opened`]                     |
//! | `a NO [REFERRAL url]` to SELECT (RFC 2193) | [`Select::Referred`]                   |
//! | `a NO There is no replica ...`             | [`Select::NoReplica`]                  |
//! | any other `NO`/`BAD` to SELECT             | [`Select::NotOpened`]                  |

use crate::explain::known_text::{self, KnownText, NO_REPLICA};
use crate::proto::code::{Code, ReferralUrl};
use crate::proto::response::{Kind, Response, Status};

/// What a greeting means.
#[derive(Debug, Clone, PartialEq)]
pub enum Greeting {
    /// `* OK`: log in next.
    Ready,
    /// `* PREAUTH`: already authenticated; no password is sent.
    Preauth,
    /// `* BYE [REFERRAL ...]`: this server takes no connections and sends clients elsewhere.
    Referred(Vec<ReferralUrl>),
    /// `* BYE` without a referral: it takes no connections.
    Refuses {
        /// The BYE's text.
        text: String,
    },
    /// Not an IMAP greeting at all.
    NotImap,
}

/// What a LOGIN or AUTHENTICATE completion means.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    /// Logged in here.
    LoggedIn,
    /// Logged in, but the user's home is elsewhere (`OK [REFERRAL]`, RFC 2221; KB Q217388's case).
    LoggedInReferred(Vec<ReferralUrl>),
    /// Not logged in; try the referred server (`NO [REFERRAL]`, or `BYE [REFERRAL]`).
    Referred(Vec<ReferralUrl>),
    /// Refused: `NO` (or `BAD` when `rejected`) without a referral.
    Refused {
        /// The response code (RFC 5530's AUTHENTICATIONFAILED, UNAVAILABLE, CONTACTADMIN, ...).
        code: Option<Code>,
        /// `BAD`: the command itself was not understood.
        rejected: bool,
        /// A server text imapref knows.
        known: Option<KnownText>,
    },
}

impl Login {
    /// True when the server accepted the credentials (logged in, or referred with them: the password is worth
    /// reusing at the referred server).
    pub fn credentials_accepted(&self) -> bool {
        !matches!(self, Login::Refused { .. })
    }
}

/// What a SELECT or EXAMINE completion means.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// The mailbox is open.
    Opened,
    /// The mailbox is on another server (`NO [REFERRAL]`, RFC 2193); several URLs are replicas.
    Referred(Vec<ReferralUrl>),
    /// "There is no replica for that mailbox on this server" (Exchange 5.5, KB Q217388).
    NoReplica,
    /// Not opened for another reason.
    NotOpened {
        /// The response code.
        code: Option<Code>,
        /// A server text imapref knows.
        known: Option<KnownText>,
    },
}

/// The referral URLs of a response, if it carries a REFERRAL code.
fn referral(response: &Response) -> Option<Vec<ReferralUrl>> {
    response
        .code()
        .and_then(Code::referral_urls)
        .map(<[_]>::to_vec)
}

/// Classifies a greeting.
pub fn greeting(response: &Response) -> Greeting {
    let Kind::Greeting { status, text, .. } = &response.kind else {
        return Greeting::NotImap;
    };
    match status {
        Status::Preauth => Greeting::Preauth,
        Status::Bye => match referral(response) {
            Some(urls) => Greeting::Referred(urls),
            None => Greeting::Refuses { text: text.clone() },
        },
        _ => Greeting::Ready,
    }
}

/// Classifies the completion of LOGIN or AUTHENTICATE (or an untagged `BYE [REFERRAL]` that ended it).
pub fn login(response: &Response) -> Login {
    let status = response.status().unwrap_or(Status::Bad);
    match (status, referral(response)) {
        (Status::Ok, Some(urls)) => Login::LoggedInReferred(urls),
        (Status::Ok | Status::Preauth, None) => Login::LoggedIn,
        (Status::No | Status::Bye, Some(urls)) => Login::Referred(urls),
        (status, _) => Login::Refused {
            code: response.code().cloned(),
            rejected: status == Status::Bad,
            known: response.text().and_then(known_text::recognise),
        },
    }
}

/// Classifies the completion of SELECT or EXAMINE.
pub fn select(response: &Response) -> Select {
    let status = response.status().unwrap_or(Status::Bad);
    if status == Status::Ok {
        return Select::Opened;
    }
    if let (Status::No, Some(urls)) = (status, referral(response)) {
        return Select::Referred(urls);
    }
    let known = response.text().and_then(known_text::recognise);
    if known.is_some_and(|k| k.id == NO_REPLICA.id) {
        return Select::NoReplica;
    }
    Select::NotOpened {
        code: response.code().cloned(),
        known,
    }
}

/// True when the server refuses LOGIN on this connection: it advertises LOGINDISABLED and the connection is not
/// encrypted.
pub fn login_disabled<'a>(
    capabilities: impl IntoIterator<Item = &'a String>,
    encrypted: bool,
) -> bool {
    !encrypted
        && capabilities
            .into_iter()
            .any(|c| c.eq_ignore_ascii_case("LOGINDISABLED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Response {
        Response::parse_line(format!("{text}\r\n").as_bytes())
    }

    fn greet(text: &str) -> Response {
        Response::parse_greeting(crate::proto::response::raw_from_line(
            format!("{text}\r\n").as_bytes(),
        ))
    }

    #[test]
    fn greetings() {
        assert_eq!(greeting(&greet("* OK ready")), Greeting::Ready);
        assert_eq!(greeting(&greet("* PREAUTH hello")), Greeting::Preauth);
        assert!(matches!(
            greeting(&greet("* BYE [REFERRAL imap://h2/] go away")),
            Greeting::Referred(urls) if urls.len() == 1 && urls[0].raw == "imap://h2/"
        ));
        assert_eq!(
            greeting(&greet("* BYE too busy")),
            Greeting::Refuses {
                text: "too busy".into()
            }
        );
        assert_eq!(greeting(&greet("SSH-2.0-OpenSSH_9.2")), Greeting::NotImap);
    }

    #[test]
    fn logins_the_kb_way_and_the_rfc_way() {
        assert_eq!(login(&line("a1 OK LOGIN completed")), Login::LoggedIn);
        let kb = login(&line(
            "? OK [REFERRAL imap://redmond%2Freedl%2Fimapf;AUTH=*@reedlm1.reedlm1.com] LOGIN completed",
        ));
        assert!(matches!(&kb, Login::LoggedInReferred(urls) if urls[0].url.is_some()));
        assert!(kb.credentials_accepted());
        let dovecot = login(&line(
            "a1 NO [REFERRAL imap://referred;AUTH=PLAIN@127.0.0.1:1143/] Try this server instead.",
        ));
        assert!(matches!(&dovecot, Login::Referred(urls) if urls.len() == 1));
        assert!(dovecot.credentials_accepted());
        assert!(matches!(
            login(&line("* BYE [REFERRAL imap://h2/] moved")),
            Login::Referred(_)
        ));
    }

    #[test]
    fn refusals_keep_their_code() {
        let refused = login(&line("a1 NO [AUTHENTICATIONFAILED] Authentication failed."));
        assert!(matches!(
            &refused,
            Login::Refused {
                code: Some(Code::AuthenticationFailed),
                rejected: false,
                known: Some(k),
            } if k.id == "authentication-failed"
        ));
        assert!(!refused.credentials_accepted());
        assert!(matches!(
            login(&line("a1 BAD syntax")),
            Login::Refused {
                rejected: true,
                code: None,
                ..
            }
        ));
        assert!(matches!(
            login(&line("a1 NO [UNAVAILABLE] try later")),
            Login::Refused {
                code: Some(Code::Unavailable),
                ..
            }
        ));
    }

    #[test]
    fn selects() {
        assert_eq!(select(&line("a2 OK [READ-WRITE] done")), Select::Opened);
        assert!(matches!(
            select(&line("a2 NO [REFERRAL imap://;AUTH=*@h2/INBOX imap://;AUTH=*@h3/INBOX] Remote mailbox")),
            Select::Referred(urls) if urls.len() == 2
        ));
        assert_eq!(
            select(&line(
                "? NO There is no replica for that mailbox on this server."
            )),
            Select::NoReplica
        );
        assert!(matches!(
            select(&line("a2 NO [NONEXISTENT] no such mailbox")),
            Select::NotOpened {
                code: Some(Code::Nonexistent),
                ..
            }
        ));
        assert!(matches!(
            select(&line("a2 BAD what")),
            Select::NotOpened { code: None, .. }
        ));
    }

    #[test]
    fn login_disabled_only_in_plaintext() {
        let caps = vec!["IMAP4rev1".to_string(), "logindisabled".to_string()];
        assert!(login_disabled(&caps, false));
        assert!(!login_disabled(&caps, true));
        assert!(!login_disabled(&vec!["IMAP4rev1".to_string()], false));
    }
}
