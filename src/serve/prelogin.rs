//! The not-authenticated state of a server connection, sans I/O: [`PreLogin`] serves CAPABILITY, NOOP, ID,
//! STARTTLS and LOGOUT itself, parses LOGIN and AUTHENTICATE PLAIN (with SASL-IR, or a `+` continuation and the
//! client's base64 line) into [`Credentials`] for the caller to check, and hands every other command back.
//!
//! What the server says about itself (its capabilities, its ID, its texts) is a [`Persona`]. With
//! [`Persona::require_tls`], LOGIN and AUTHENTICATE are refused until TLS is active, and the capabilities say
//! LOGINDISABLED instead of AUTH=PLAIN (RFC 3501 §6.2.3, RFC 9051 §7.2.2).

use base64::Engine as _;

use super::reply::{line, Reply};
use crate::proto::client_command::{guess_tag, parse_command, ClientCommand, Value};
use crate::secret::Secret;

/// What a server says about itself before login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    /// The capabilities before login, in order, without STARTTLS, LOGINDISABLED and AUTH=PLAIN (added as the
    /// connection's state says).
    pub capabilities: Vec<String>,
    /// What CAPABILITY answers once logged in.
    pub after_login: Vec<String>,
    /// STARTTLS is offered (while TLS is not active yet).
    pub starttls: bool,
    /// LOGIN and AUTHENTICATE only over TLS.
    pub require_tls: bool,
    /// The body of the `* ID` response: a parenthesised list of field names and values.
    pub id: String,
    /// The text of the `* BYE` sent before `OK LOGOUT completed`.
    pub logout_text: String,
    /// The answer (status and text) to a command not allowed in the current state.
    pub invalid_state: String,
}

/// How the credentials came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `LOGIN user password`.
    Login,
    /// `AUTHENTICATE PLAIN` (RFC 4616).
    Plain,
}

impl Mechanism {
    /// The command name, for the completion text (`LOGIN completed`).
    pub fn command(self) -> &'static str {
        match self {
            Mechanism::Login => "LOGIN",
            Mechanism::Plain => "AUTHENTICATE",
        }
    }
}

/// A password as a secret if it is UTF-8, else an empty one: replacing the bad bytes would send a different password.
fn utf8_secret(password: &[u8]) -> Secret {
    Secret::new(std::str::from_utf8(password).unwrap_or_default())
}

/// A client's credentials, for the caller to check. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The tag of the command that carried them.
    pub tag: String,
    /// LOGIN or AUTHENTICATE PLAIN.
    pub mechanism: Mechanism,
    /// The login name as sent (empty for a PLAIN message that is not `authzid NUL authcid NUL passwd`).
    pub user: Vec<u8>,
    /// The password; empty when it was not UTF-8 (it could be passed on only changed, so no one can use it).
    pub password: Secret,
}

/// What the caller does with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these replies; nothing else to do.
    Replies(Vec<Reply>),
    /// Check these credentials, answer with the command's tag, and call [`PreLogin::logged_in`] on success.
    Credentials(Credentials),
    /// A command the pre-login machine does not serve: the caller answers it.
    Command(ClientCommand),
}

/// The pre-login machine of one connection. See the module documentation.
#[derive(Debug)]
pub struct PreLogin<'a> {
    persona: &'a Persona,
    tls_active: bool,
    authenticated: bool,
    logged_out: bool,
    pending_auth: Option<String>,
}

impl<'a> PreLogin<'a> {
    /// A connection that is already encrypted (`tls_active`: implicit TLS) or not.
    pub fn new(persona: &'a Persona, tls_active: bool) -> Self {
        PreLogin {
            persona,
            tls_active,
            authenticated: false,
            logged_out: false,
            pending_auth: None,
        }
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
    }

    /// True once TLS is active.
    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// The credentials were accepted: the connection is authenticated.
    pub fn logged_in(&mut self) {
        self.authenticated = true;
    }

    /// True once LOGOUT was answered.
    pub fn is_logged_out(&self) -> bool {
        self.logged_out
    }

    /// True when LOGIN and AUTHENTICATE are refused on this connection (require_tls, and no TLS yet).
    pub fn login_disabled(&self) -> bool {
        self.persona.require_tls && !self.tls_active
    }

    fn offers_starttls(&self) -> bool {
        self.persona.starttls && !self.tls_active
    }

    /// The capabilities in the current state, space-separated.
    pub fn capabilities(&self) -> String {
        if self.authenticated {
            return self.persona.after_login.join(" ");
        }
        let mut caps: Vec<&str> = self
            .persona
            .capabilities
            .iter()
            .map(String::as_str)
            .collect();
        if self.offers_starttls() {
            caps.push("STARTTLS");
        }
        if self.login_disabled() {
            caps.push("LOGINDISABLED");
        } else {
            caps.push("AUTH=PLAIN");
        }
        caps.join(" ")
    }

    /// One complete framed command (literals inline), or the client's answer to an AUTHENTICATE continuation.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Step {
        if let Some(tag) = self.pending_auth.take() {
            return self.sasl_response(&tag, bytes);
        }
        match parse_command(bytes) {
            Ok(command) => self.handle(command),
            Err(error) => Step::Replies(vec![match guess_tag(bytes) {
                Some(tag) => line(format!("{tag} BAD {error}")),
                None => line(format!("* BAD {error}")),
            }]),
        }
    }

    /// One parsed command.
    pub fn handle(&mut self, command: ClientCommand) -> Step {
        let tag = command.tag.as_str();
        let replies = match command.name.as_str() {
            "CAPABILITY" => vec![
                line(format!("* CAPABILITY {}", self.capabilities())),
                line(format!("{tag} OK CAPABILITY completed")),
            ],
            "NOOP" => vec![line(format!("{tag} OK NOOP completed"))],
            "LOGOUT" => {
                self.logged_out = true;
                vec![
                    line(format!("* BYE {}", self.persona.logout_text)),
                    line(format!("{tag} OK LOGOUT completed")),
                    Reply::Close,
                ]
            }
            "ID" => vec![
                line(format!("* ID {}", self.persona.id)),
                line(format!("{tag} OK ID completed")),
            ],
            "STARTTLS" => self.starttls(tag),
            "LOGIN" => return self.login(tag, &command.args),
            "AUTHENTICATE" => return self.authenticate(tag, &command.args),
            _ => return Step::Command(command),
        };
        Step::Replies(replies)
    }

    fn invalid_state(&self, tag: &str) -> Step {
        Step::Replies(vec![line(format!("{tag} {}", self.persona.invalid_state))])
    }

    fn starttls(&mut self, tag: &str) -> Vec<Reply> {
        if !self.persona.starttls {
            return vec![line(format!("{tag} BAD Unknown command"))];
        }
        if self.tls_active {
            return vec![line(format!("{tag} BAD TLS is already active"))];
        }
        if self.authenticated {
            return vec![line(format!("{tag} {}", self.persona.invalid_state))];
        }
        vec![
            line(format!("{tag} OK Begin TLS negotiation now")),
            Reply::StartTls,
        ]
    }

    fn privacy_required(tag: &str) -> Step {
        Step::Replies(vec![line(format!(
            "{tag} NO [PRIVACYREQUIRED] Use STARTTLS first: logging in is disabled without TLS"
        ))])
    }

    fn login(&mut self, tag: &str, args: &[Value]) -> Step {
        if self.authenticated {
            return self.invalid_state(tag);
        }
        let bad = || {
            Step::Replies(vec![line(format!(
                "{tag} BAD LOGIN needs a user name and a password"
            ))])
        };
        let [user, password] = args else {
            return bad();
        };
        let (Some(user), Some(password)) = (user.as_bytes(), password.as_bytes()) else {
            return bad();
        };
        if self.login_disabled() {
            return Self::privacy_required(tag);
        }
        Step::Credentials(Credentials {
            tag: tag.to_string(),
            mechanism: Mechanism::Login,
            user: user.to_vec(),
            password: utf8_secret(password),
        })
    }

    fn authenticate(&mut self, tag: &str, args: &[Value]) -> Step {
        if self.authenticated {
            return self.invalid_state(tag);
        }
        let (mechanism, initial) = match args {
            [Value::Atom(m)] => (m, None),
            [Value::Atom(m), Value::Atom(ir)] => (m, Some(ir.as_str())),
            _ => {
                return Step::Replies(vec![line(format!(
                    "{tag} BAD AUTHENTICATE needs a mechanism name"
                ))])
            }
        };
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Step::Replies(vec![line(format!(
                "{tag} NO Unsupported authentication mechanism"
            ))]);
        }
        if self.login_disabled() {
            return Self::privacy_required(tag);
        }
        match initial {
            // SASL-IR: `=` is an empty initial response.
            Some("=") => Self::sasl_plain(tag, b""),
            Some(ir) => self.sasl_response(tag, ir.as_bytes()),
            None => {
                self.pending_auth = Some(tag.to_string());
                Step::Replies(vec![line("+ ")])
            }
        }
    }

    /// The base64 line that answers the `+` continuation (or the SASL-IR initial response).
    fn sasl_response(&mut self, tag: &str, bytes: &[u8]) -> Step {
        let text = crate::proto::framing::trim_line_end(bytes);
        if text == b"*" {
            return Step::Replies(vec![line(format!("{tag} BAD AUTHENTICATE cancelled"))]);
        }
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(decoded) => Self::sasl_plain(tag, &decoded),
            Err(_) => Step::Replies(vec![line(format!(
                "{tag} BAD Invalid base64 in the AUTHENTICATE response"
            ))]),
        }
    }

    /// RFC 4616: `authzid NUL authcid NUL passwd`; the authzid must be empty or the authcid. Anything else gives
    /// empty credentials, which no user table accepts.
    fn sasl_plain(tag: &str, message: &[u8]) -> Step {
        let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
        let (user, password) = match parts.as_slice() {
            [authz, user, password] if authz.is_empty() || authz.eq_ignore_ascii_case(user) => {
                (user.to_vec(), utf8_secret(password))
            }
            _ => (Vec::new(), Secret::new("")),
        };
        Step::Credentials(Credentials {
            tag: tag.to_string(),
            mechanism: Mechanism::Plain,
            user,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persona(require_tls: bool) -> Persona {
        Persona {
            capabilities: vec!["IMAP4rev1".into(), "SASL-IR".into()],
            after_login: vec!["IMAP4rev1".into()],
            starttls: true,
            require_tls,
            id: "(\"name\" \"test\")".into(),
            logout_text: "bye".into(),
            invalid_state: "BAD Not now".into(),
        }
    }

    fn text(step: Step) -> String {
        match step {
            Step::Replies(replies) => replies
                .into_iter()
                .map(|r| match r {
                    Reply::Data(b) => String::from_utf8_lossy(&b).into_owned(),
                    Reply::StartTls => "<starttls>".into(),
                    Reply::Close => "<close>".into(),
                })
                .collect(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn serves_the_pre_login_commands() {
        let p = persona(false);
        let mut m = PreLogin::new(&p, false);
        assert_eq!(
            text(m.handle_input(b"a CAPABILITY\r\n")),
            "* CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN\r\na OK CAPABILITY completed\r\n"
        );
        assert_eq!(
            text(m.handle_input(b"b NOOP\r\n")),
            "b OK NOOP completed\r\n"
        );
        assert_eq!(
            text(m.handle_input(b"c ID NIL\r\n")),
            "* ID (\"name\" \"test\")\r\nc OK ID completed\r\n"
        );
        assert!(
            matches!(m.handle_input(b"d SELECT INBOX\r\n"), Step::Command(c) if c.name == "SELECT")
        );
        assert_eq!(
            text(m.handle_input(b"e STARTTLS\r\n")),
            "e OK Begin TLS negotiation now\r\n<starttls>"
        );
        m.tls_started();
        assert!(!m.capabilities().contains("STARTTLS"));
        assert_eq!(
            text(m.handle_input(b"f LOGOUT\r\n")),
            "* BYE bye\r\nf OK LOGOUT completed\r\n<close>"
        );
        assert!(m.is_logged_out());
        assert!(text(m.handle_input(b"\r\n")).starts_with("* BAD "));
    }

    #[test]
    fn login_and_plain_give_credentials_without_showing_the_password() {
        let p = persona(false);
        let mut m = PreLogin::new(&p, false);
        let Step::Credentials(c) = m.handle_input(b"a LOGIN bob {6}\r\nS3cr\"t\r\n") else {
            panic!("credentials expected");
        };
        assert_eq!((c.tag.as_str(), c.user.as_slice()), ("a", &b"bob"[..]));
        assert_eq!(c.password.expose(), "S3cr\"t");
        assert!(!format!("{c:?}").contains("S3cr"));
        let blob = base64::engine::general_purpose::STANDARD.encode(b"\0bob\0pw");
        let Step::Credentials(c) =
            m.handle_input(format!("b AUTHENTICATE PLAIN {blob}\r\n").as_bytes())
        else {
            panic!("credentials expected");
        };
        assert_eq!((c.mechanism, c.password.expose()), (Mechanism::Plain, "pw"));
        assert_eq!(text(m.handle_input(b"c AUTHENTICATE PLAIN\r\n")), "+ \r\n");
        let Step::Credentials(c) = m.handle_input(format!("{blob}\r\n").as_bytes()) else {
            panic!("credentials expected");
        };
        assert_eq!(c.tag, "c");
        m.logged_in();
        assert_eq!(
            text(m.handle_input(b"d LOGIN a b\r\n")),
            "d BAD Not now\r\n"
        );
        assert_eq!(m.capabilities(), "IMAP4rev1");
    }

    #[test]
    fn a_password_that_is_not_utf8_is_given_empty_not_changed() {
        // Replacing the bad bytes (as once done) would pass a different password on to the upstream.
        let p = persona(false);
        let mut m = PreLogin::new(&p, false);
        let Step::Credentials(c) = m.handle_input(b"a LOGIN bob {4}\r\npw\xe9!\r\n") else {
            panic!("credentials expected");
        };
        assert!(c.password.is_empty());
        let blob = base64::engine::general_purpose::STANDARD.encode(b"\0bob\0pw\xe9!");
        let Step::Credentials(c) =
            m.handle_input(format!("b AUTHENTICATE PLAIN {blob}\r\n").as_bytes())
        else {
            panic!("credentials expected");
        };
        assert!(c.password.is_empty());
    }

    #[test]
    fn require_tls_disables_login_until_starttls() {
        let p = persona(true);
        let mut m = PreLogin::new(&p, false);
        assert_eq!(m.capabilities(), "IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED");
        assert!(text(m.handle_input(b"a LOGIN bob pw\r\n")).starts_with("a NO [PRIVACYREQUIRED]"));
        assert!(text(m.handle_input(b"b AUTHENTICATE PLAIN =\r\n"))
            .starts_with("b NO [PRIVACYREQUIRED]"));
        m.tls_started();
        assert_eq!(m.capabilities(), "IMAP4rev1 SASL-IR AUTH=PLAIN");
        assert!(matches!(
            m.handle_input(b"c LOGIN bob pw\r\n"),
            Step::Credentials(_)
        ));
    }
}
