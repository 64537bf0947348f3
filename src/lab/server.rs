//! One lab server's protocol side: a per-connection state machine (not authenticated, authenticated, selected,
//! logout) that takes complete commands and returns the bytes to write. It does no I/O, so every reply can be tested
//! without a socket; [`super::net`] runs it over TCP and TLS.
//!
//! The machine answers like the Exchange 5.5 server KB Q217388 shows, with the behaviour of its scenario
//! ([`ServerSpec`]): which greeting, how a good LOGIN is answered (accepted, `OK [REFERRAL]`, `NO [REFERRAL]`), and
//! which mailboxes are local, remote (mailbox referral) or missing.

use std::net::IpAddr;
use std::net::SocketAddr;

use super::fetch::{self, SequenceSet};
use super::mailbox::{Lookup, MailStore, Mailbox, DELIMITER};
use super::scenario::{Greeting, Login, ServerPlan, Store, REMOTE_MAILBOX};
use super::users::{self, LabUser};
use super::wire;
use crate::proto::client_command::{ClientCommand, Value};
use crate::serve::{line, Persona, PreLogin, Step};

use crate::proto::url::{ImapUrl, UrlAuth};
pub use crate::serve::Reply;

/// The software and version every lab server claims, as in the KB's banner.
pub const SERVER_VERSION: &str = "Microsoft Exchange IMAP4rev1 server version 5.5.1960.6";

/// Exchange 5.5's answer to SELECT on a server that holds no replica of the mailbox (KB Q217388).
pub const NO_REPLICA: &str = "There is no replica for that mailbox on this server.";

/// Cyrus's answer to a command on a remote mailbox from a client that has not shown it understands referrals.
pub const UNAVAILABLE: &str = "Server(s) unavailable to complete operation";

/// The answer to a wrong user name or password (RFC 5530 code).
pub const AUTH_FAILED: &str = "NO [AUTHENTICATIONFAILED] Authentication failed.";

/// Exchange's answer to a command that is not allowed in the current state.
pub const INVALID_STATE: &str = "BAD Command received in Invalid state.";

/// After this many failed logins on one connection the server says BYE.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// Where a referral target listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The target's role (`home`), or `closed port`.
    pub role: String,
    /// The plain (STARTTLS) port.
    pub plain: SocketAddr,
    /// The implicit-TLS port, if the target has one.
    pub tls: Option<SocketAddr>,
}

impl Endpoint {
    /// The port a client that arrived over implicit TLS (`tls`) or in plain text is referred to: the same kind when
    /// the target has it, else the plain port.
    pub fn port_for(&self, tls: bool) -> u16 {
        match (tls, self.tls) {
            (true, Some(addr)) => addr.port(),
            _ => self.plain.port(),
        }
    }
}

/// A server's resolved behaviour, shared by all its connections.
#[derive(Debug)]
pub struct ServerSpec {
    /// The scenario's plan for this server, targets resolved to endpoints.
    pub plan: ServerPlan<Endpoint>,
    /// Its mailboxes.
    pub store: MailStore,
    /// The host written in referral URLs (the lab's bind address).
    pub host: IpAddr,
    /// What the server says about itself before login (capabilities, ID, texts).
    pub persona: Persona,
}

impl ServerSpec {
    /// Builds the store the plan names.
    pub fn new(plan: ServerPlan<Endpoint>, host: IpAddr) -> Self {
        let store = match plan.store {
            Store::Home => MailStore::home(),
            Store::Empty => MailStore::default(),
            Store::FrontWithRemote => MailStore::without_public_folder(REMOTE_MAILBOX),
            Store::Public(uidvalidity) => MailStore::public_folders(uidvalidity),
        };
        let persona = persona(&plan);
        ServerSpec {
            plan,
            store,
            host,
            persona,
        }
    }

    /// A referral URL to `target`. `user` is `""` for "the name you logged in with" (Cyrus's form).
    fn url(
        &self,
        user: &str,
        target: &Endpoint,
        tls: bool,
        mailbox: Option<&str>,
        slash: bool,
    ) -> String {
        ImapUrl {
            user: Some(user.to_string()),
            auth: Some(UrlAuth::Any),
            host: self.host.to_string(),
            port: Some(target.port_for(tls)),
            mailbox: mailbox.map(str::to_string),
            uidvalidity: None,
            rest: None,
            had_trailing_slash: slash,
        }
        .to_string()
    }
}

/// An Exchange 5.5 server of the lab, as the shared pre-login machine shows it.
fn persona(plan: &ServerPlan<Endpoint>) -> Persona {
    let base = ["IMAP4rev1", "LITERAL+", "SASL-IR", "LOGIN-REFERRALS"].map(String::from);
    let mut after_login = base.to_vec();
    after_login.push("MAILBOX-REFERRALS".into());
    Persona {
        capabilities: base.to_vec(),
        after_login,
        starttls: plan.starttls,
        require_tls: false,
        id: format!(
            "(\"name\" \"Microsoft Exchange IMAP4rev1 server\" \"version\" \"5.5.1960.6\" \
             \"vendor\" \"imapref lab\" \"host\" \"{}.lab\")",
            plan.role
        ),
        logout_text: format!("{SERVER_VERSION} signing off"),
        invalid_state: INVALID_STATE.to_string(),
    }
}

/// The protocol state of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Before LOGIN.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected(Selection),
    /// LOGOUT was sent, or the server said BYE.
    Logout,
}

/// The selected mailbox, with this connection's view of its `\Seen` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Index into the store's mailboxes.
    pub mailbox: usize,
    /// EXAMINE: nothing may change.
    pub read_only: bool,
    /// `\Seen` per message, in sequence order.
    pub seen: Vec<bool>,
}

/// One connection's state machine.
#[derive(Debug)]
pub struct Connection<'a> {
    spec: &'a ServerSpec,
    arrived_tls: bool,
    /// The not-authenticated commands (CAPABILITY, NOOP, ID, STARTTLS, LOGOUT, LOGIN, AUTHENTICATE).
    pre: PreLogin<'a>,
    state: State,
    user: Option<&'static LabUser>,
    remote_aware: bool,
    failed_logins: u32,
}

impl<'a> Connection<'a> {
    /// A connection that arrived on the implicit-TLS listener (`arrived_tls`) or the plain one.
    pub fn new(spec: &'a ServerSpec, arrived_tls: bool) -> Self {
        Connection {
            spec,
            arrived_tls,
            pre: PreLogin::new(&spec.persona, arrived_tls),
            state: State::NotAuthenticated,
            user: None,
            remote_aware: false,
            failed_logins: 0,
        }
    }

    /// The current state.
    #[cfg(test)]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The greeting.
    pub fn greeting(&mut self) -> Vec<Reply> {
        let role = &self.spec.plan.role;
        match &self.spec.plan.greeting {
            Greeting::Exchange => vec![line(format!("* OK {SERVER_VERSION} ({role}.lab) ready"))],
            Greeting::WithCapability => vec![line(format!(
                "* OK [CAPABILITY {}] {SERVER_VERSION} ({role}.lab) ready",
                self.capabilities()
            ))],
            Greeting::ByeReferral(target) => {
                self.state = State::Logout;
                let url = self.spec.url("", target, self.arrived_tls, None, true);
                vec![
                    line(format!(
                        "* BYE [REFERRAL {url}] Server not accepting connections.  Try {}.lab",
                        target.role
                    )),
                    Reply::Close,
                ]
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.pre.tls_started();
    }

    /// The client was idle too long.
    pub fn idle_timeout(&mut self) -> Vec<Reply> {
        self.state = State::Logout;
        vec![line("* BYE Autologout; idle for too long"), Reply::Close]
    }

    /// The lab is shutting down.
    pub fn shutting_down(&mut self) -> Vec<Reply> {
        self.state = State::Logout;
        vec![line("* BYE imapref lab shutting down"), Reply::Close]
    }

    /// The client's input cannot be framed (a line or literal over the limits).
    pub fn input_error(&mut self, reason: &str) -> Vec<Reply> {
        self.state = State::Logout;
        vec![line(format!("* BAD {reason}")), Reply::Close]
    }

    /// The capabilities in the current state.
    pub fn capabilities(&self) -> String {
        self.pre.capabilities()
    }

    /// One complete framed command (literals inline), or the client's answer to an AUTHENTICATE continuation.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Vec<Reply> {
        let step = self.pre.handle_input(bytes);
        self.step(step)
    }

    /// What the pre-login machine left to the lab: the credentials to check, or a command it does not serve.
    fn step(&mut self, step: Step) -> Vec<Reply> {
        match step {
            Step::Replies(replies) => {
                if self.pre.is_logged_out() {
                    self.state = State::Logout;
                }
                replies
            }
            Step::Credentials(c) => self.credentials(
                &c.tag,
                c.mechanism.command(),
                &c.user,
                c.password.expose().as_bytes(),
            ),
            Step::Command(command) => self.serve(command),
        }
    }

    /// A command after the pre-login machine: the mailbox commands.
    fn serve(&mut self, command: ClientCommand) -> Vec<Reply> {
        let ClientCommand { tag, name, args } = command;
        let tag = tag.as_str();
        match name.as_str() {
            "CHECK" | "EXPUNGE" => {
                if self.is_selected() {
                    vec![line(format!("{tag} OK {name} completed"))]
                } else {
                    vec![line(format!("{tag} {INVALID_STATE}"))]
                }
            }
            "SELECT" | "EXAMINE" => self.select(tag, &name, &args),
            "LIST" | "LSUB" | "RLIST" | "RLSUB" => self.list(tag, &name, &args),
            "STATUS" => self.status(tag, &args),
            "FETCH" => self.fetch(tag, &args, false),
            "UID" => match args.split_first() {
                Some((Value::Atom(sub), rest)) if sub.eq_ignore_ascii_case("FETCH") => {
                    self.fetch(tag, rest, true)
                }
                _ => vec![line(format!("{tag} BAD Unknown command"))],
            },
            "CLOSE" | "UNSELECT" => {
                if !self.is_selected() {
                    return vec![line(format!("{tag} {INVALID_STATE}"))];
                }
                self.state = State::Authenticated;
                vec![line(format!("{tag} OK {name} completed"))]
            }
            "CREATE" | "DELETE" | "RENAME" | "SUBSCRIBE" | "UNSUBSCRIBE" | "APPEND" | "STORE"
            | "COPY" => {
                if self.is_authenticated() {
                    vec![line(format!(
                        "{tag} NO [CANNOT] The lab's mail store is read-only"
                    ))]
                } else {
                    vec![line(format!("{tag} {INVALID_STATE}"))]
                }
            }
            _ => vec![line(format!("{tag} BAD Unknown command"))],
        }
    }

    fn is_selected(&self) -> bool {
        matches!(self.state, State::Selected(_))
    }

    fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated | State::Selected(_))
    }

    /// Checks the credentials and answers as the scenario says. A wrong password never gets a referral.
    fn credentials(
        &mut self,
        tag: &str,
        command: &str,
        user: &[u8],
        password: &[u8],
    ) -> Vec<Reply> {
        let Some(user) = users::authenticate(user, password) else {
            self.failed_logins += 1;
            let mut replies = vec![line(format!("{tag} {AUTH_FAILED}"))];
            if self.failed_logins >= MAX_FAILED_LOGINS {
                self.state = State::Logout;
                replies.push(line("* BYE Too many failed logins"));
                replies.push(Reply::Close);
            }
            return replies;
        };
        match &self.spec.plan.login {
            Login::Accept => {
                self.user = Some(user);
                self.state = State::Authenticated;
                self.pre.logged_in();
                if self.spec.plan.capability_codes {
                    vec![line(format!(
                        "{tag} OK [CAPABILITY {}] {command} completed",
                        self.capabilities()
                    ))]
                } else {
                    vec![line(format!("{tag} OK {command} completed"))]
                }
            }
            Login::OkReferral(target) => {
                self.user = Some(user);
                self.state = State::Authenticated;
                self.pre.logged_in();
                let url = self
                    .spec
                    .url(user.login, target, self.arrived_tls, None, false);
                vec![line(format!(
                    "{tag} OK [REFERRAL {url}] {command} completed"
                ))]
            }
            Login::NoReferral(target) => {
                let url = self
                    .spec
                    .url(user.login, target, self.arrived_tls, None, true);
                vec![line(format!(
                    "{tag} NO [REFERRAL {url}] Try this server instead."
                ))]
            }
        }
    }

    /// The mailbox name argument, decoded from modified UTF-7.
    fn mailbox_arg(value: &Value) -> Option<String> {
        let bytes = value.as_bytes()?;
        wire::decode_mailbox(bytes).or_else(|| String::from_utf8(bytes.to_vec()).ok())
    }

    /// The answer to a command on a mailbox that is not local: no replica, a referral, or unavailable.
    fn not_here(&self, tag: &str, lookup: Lookup<'_>) -> Option<Reply> {
        if self.spec.plan.store == Store::Empty {
            return Some(line(format!("{tag} NO {NO_REPLICA}")));
        }
        match lookup {
            Lookup::Local(_) => None,
            Lookup::Missing => Some(line(format!(
                "{tag} NO [NONEXISTENT] Mailbox does not exist"
            ))),
            Lookup::Remote(name) => {
                if !self.remote_aware || self.spec.plan.mailbox_referral.is_empty() {
                    return Some(line(format!("{tag} NO {UNAVAILABLE}")));
                }
                let user = self.user.map_or("", |u| u.login);
                let urls: Vec<String> = self
                    .spec
                    .plan
                    .mailbox_referral
                    .iter()
                    .map(|target| {
                        self.spec
                            .url(user, target, self.arrived_tls, Some(name), true)
                    })
                    .collect();
                Some(line(format!(
                    "{tag} NO [REFERRAL {}] Remote mailbox.",
                    urls.join(" ")
                )))
            }
        }
    }

    fn select(&mut self, tag: &str, name: &str, args: &[Value]) -> Vec<Reply> {
        if !self.is_authenticated() {
            return vec![line(format!("{tag} {INVALID_STATE}"))];
        }
        let [arg] = args else {
            return vec![line(format!("{tag} BAD {name} needs a mailbox name"))];
        };
        let Some(mailbox_name) = Self::mailbox_arg(arg) else {
            return vec![line(format!("{tag} BAD {name} needs a mailbox name"))];
        };
        // A failed SELECT closes the mailbox selected before (RFC 3501 6.3.1).
        self.state = State::Authenticated;
        let lookup = self.spec.store.lookup(&mailbox_name);
        if let Some(reply) = self.not_here(tag, lookup) {
            return vec![reply];
        }
        let Lookup::Local(mailbox) = lookup else {
            return vec![line(format!(
                "{tag} NO [NONEXISTENT] Mailbox does not exist"
            ))];
        };
        if !mailbox.selectable {
            return vec![line(format!(
                "{tag} NO [CANNOT] {} cannot be selected",
                mailbox.name
            ))];
        }
        let Some(index) = self.spec.store.index_of(mailbox.name) else {
            return vec![line(format!(
                "{tag} NO [NONEXISTENT] Mailbox does not exist"
            ))];
        };
        let read_only = name == "EXAMINE";
        let seen: Vec<bool> = mailbox.messages.iter().map(|m| m.seen).collect();
        let mut replies = vec![
            line("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
            if read_only {
                line("* OK [PERMANENTFLAGS ()] No permanent flags permitted")
            } else {
                line("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] Permanent flags")
            },
            line(format!("* {} EXISTS", mailbox.messages.len())),
            line("* 0 RECENT"),
        ];
        if let Some(first) = seen.iter().position(|s| !s) {
            replies.push(line(format!(
                "* OK [UNSEEN {}] Is the first unseen message",
                first + 1
            )));
        }
        replies.push(line(format!(
            "* OK [UIDVALIDITY {}] UIDVALIDITY value",
            mailbox.uidvalidity
        )));
        replies.push(line(format!(
            "* OK [UIDNEXT {}] The next unique identifier value",
            mailbox.uidnext()
        )));
        replies.push(if read_only {
            line(format!("{tag} OK [READ-ONLY] EXAMINE completed"))
        } else {
            line(format!("{tag} OK [READ-WRITE] SELECT completed"))
        });
        self.state = State::Selected(Selection {
            mailbox: index,
            read_only,
            seen,
        });
        replies
    }

    fn list(&mut self, tag: &str, name: &str, args: &[Value]) -> Vec<Reply> {
        if !self.is_authenticated() {
            return vec![line(format!("{tag} {INVALID_STATE}"))];
        }
        let mut remote = name.starts_with('R');
        let args = match args.split_first() {
            // LIST-EXTENDED selection options: only REMOTE is understood.
            Some((Value::List(options), rest)) if name == "LIST" => {
                for option in options {
                    match option {
                        Value::Atom(o) if o.eq_ignore_ascii_case("REMOTE") => remote = true,
                        _ => {
                            return vec![line(format!(
                                "{tag} BAD Unsupported LIST selection option"
                            ))]
                        }
                    }
                }
                rest
            }
            _ => args,
        };
        let [reference, pattern] = args else {
            return vec![line(format!(
                "{tag} BAD {name} needs a reference and a mailbox pattern"
            ))];
        };
        let (Some(reference), Some(pattern)) =
            (Self::mailbox_arg(reference), Self::mailbox_arg(pattern))
        else {
            return vec![line(format!(
                "{tag} BAD {name} needs a reference and a mailbox pattern"
            ))];
        };
        if remote {
            // The client has shown it understands referrals (RFC 2193; Cyrus's rule).
            self.remote_aware = true;
        }
        let kind = if name.ends_with("LSUB") {
            "LSUB"
        } else {
            "LIST"
        };
        let mut replies = Vec::new();
        if pattern.is_empty() && kind == "LIST" {
            replies.push(line(format!("* LIST (\\Noselect) \"{DELIMITER}\" \"\"")));
        } else {
            for entry in self.spec.store.list(&reference, &pattern, remote) {
                let mut out =
                    format!("* {kind} ({}) \"{DELIMITER}\" ", entry.attributes).into_bytes();
                wire::mailbox(&mut out, entry.name);
                out.extend_from_slice(b"\r\n");
                replies.push(Reply::Data(out));
            }
        }
        replies.push(line(format!("{tag} OK {name} completed")));
        replies
    }

    fn status(&mut self, tag: &str, args: &[Value]) -> Vec<Reply> {
        if !self.is_authenticated() {
            return vec![line(format!("{tag} {INVALID_STATE}"))];
        }
        let bad = || {
            vec![line(format!(
                "{tag} BAD STATUS needs a mailbox name and a list of items"
            ))]
        };
        let [mailbox_arg, Value::List(items)] = args else {
            return bad();
        };
        let Some(mailbox_name) = Self::mailbox_arg(mailbox_arg) else {
            return bad();
        };
        let lookup = self.spec.store.lookup(&mailbox_name);
        if let Some(reply) = self.not_here(tag, lookup) {
            return vec![reply];
        }
        let Lookup::Local(mailbox) = lookup else {
            return bad();
        };
        if !mailbox.selectable {
            return vec![line(format!(
                "{tag} NO [CANNOT] {} cannot be selected",
                mailbox.name
            ))];
        }
        let mut values = Vec::new();
        for item in items {
            let Some(item) = item.as_str_lossy() else {
                return bad();
            };
            let item = item.to_ascii_uppercase();
            let value = match item.as_str() {
                "MESSAGES" => mailbox.messages.len() as u64,
                "RECENT" => 0,
                "UIDNEXT" => u64::from(mailbox.uidnext()),
                "UIDVALIDITY" => u64::from(mailbox.uidvalidity),
                "UNSEEN" => self.unseen(mailbox) as u64,
                _ => return vec![line(format!("{tag} BAD Unknown STATUS item {item}"))],
            };
            values.push(format!("{item} {value}"));
        }
        let mut out = b"* STATUS ".to_vec();
        wire::mailbox(&mut out, mailbox.name);
        out.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        vec![Reply::Data(out), line(format!("{tag} OK STATUS completed"))]
    }

    /// Unseen messages, as this connection sees them when the mailbox is selected.
    fn unseen(&self, mailbox: &Mailbox) -> usize {
        if let State::Selected(selection) = &self.state {
            if self
                .spec
                .store
                .mailboxes
                .get(selection.mailbox)
                .map(|m| m.name)
                == Some(mailbox.name)
            {
                return selection.seen.iter().filter(|s| !**s).count();
            }
        }
        mailbox.messages.iter().filter(|m| !m.seen).count()
    }

    fn fetch(&mut self, tag: &str, args: &[Value], uid: bool) -> Vec<Reply> {
        let command = if uid { "UID FETCH" } else { "FETCH" };
        let spec = self.spec;
        let State::Selected(selection) = &mut self.state else {
            return vec![line(format!("{tag} {INVALID_STATE}"))];
        };
        let [Value::Atom(set), items] = args else {
            return vec![line(format!(
                "{tag} BAD {command} needs a sequence set and fetch items"
            ))];
        };
        let Some(set) = SequenceSet::parse(set) else {
            return vec![line(format!("{tag} BAD Invalid sequence set {set}"))];
        };
        let items = match fetch::parse_items(items) {
            Ok(items) => items,
            Err(reason) => return vec![line(format!("{tag} BAD {reason}"))],
        };
        let Some(mailbox) = spec.store.mailboxes.get(selection.mailbox) else {
            return vec![line(format!("{tag} NO Mailbox is gone"))];
        };
        let count = mailbox.messages.len();
        if !uid && count > 0 && set.max_explicit() as usize > count {
            return vec![line(format!("{tag} BAD Invalid message sequence number"))];
        }
        let star = if uid {
            mailbox.messages.iter().map(|m| m.uid).max().unwrap_or(0)
        } else {
            u32::try_from(count).unwrap_or(u32::MAX)
        };
        let mut out = Vec::new();
        for (index, message) in mailbox.messages.iter().enumerate() {
            let seq = index + 1;
            let key = if uid {
                message.uid
            } else {
                u32::try_from(seq).unwrap_or(u32::MAX)
            };
            if !set.contains(key, star) {
                continue;
            }
            let Some(seen) = selection.seen.get_mut(index) else {
                continue;
            };
            out.extend(fetch::render(
                seq,
                message,
                seen,
                &items,
                uid,
                selection.read_only,
            ));
        }
        out.extend_from_slice(format!("{tag} OK {command} completed\r\n").as_bytes());
        vec![Reply::Data(out)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::scenario::{plan, Scenario, Target};
    use base64::Engine as _;
    use std::net::Ipv4Addr;

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn endpoint(role: &str, plain: u16, tls: Option<u16>) -> Endpoint {
        Endpoint {
            role: role.to_string(),
            plain: SocketAddr::new(HOST, plain),
            tls: tls.map(|p| SocketAddr::new(HOST, p)),
        }
    }

    /// The scenario's server `index`, every server at plain port 1000 + 10 n and (if it has one) TLS port
    /// 1001 + 10 n, the closed port at 999.
    fn spec(scenario: Scenario, index: usize) -> ServerSpec {
        let servers = plan(scenario);
        let roles: Vec<(String, bool)> = servers
            .iter()
            .map(|s| (s.role.clone(), s.tls_listener))
            .collect();
        let chosen = servers.into_iter().nth(index).expect("server");
        let resolved = chosen
            .resolve(|t| -> Result<Endpoint, ()> {
                Ok(match t {
                    Target::ClosedPort => endpoint("closed port", 999, None),
                    Target::Server(role) => {
                        let n = roles.iter().position(|(r, _)| r == role).expect("role");
                        let tls = roles[n].1.then_some(1001 + 10 * n as u16);
                        endpoint(role, 1000 + 10 * n as u16, tls)
                    }
                })
            })
            .expect("resolves");
        ServerSpec::new(resolved, HOST)
    }

    fn run(conn: &mut Connection<'_>, input: &str) -> String {
        let mut text = String::new();
        for reply in conn.handle_input(input.as_bytes()) {
            match reply {
                Reply::Data(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Reply::StartTls => text.push_str("<starttls>"),
                Reply::Close => text.push_str("<close>"),
            }
        }
        text
    }

    fn greet(conn: &mut Connection<'_>) -> String {
        let mut text = String::new();
        for reply in conn.greeting() {
            match reply {
                Reply::Data(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Reply::StartTls => text.push_str("<starttls>"),
                Reply::Close => text.push_str("<close>"),
            }
        }
        text
    }

    #[test]
    fn kb_front_walkthrough() {
        let spec = spec(Scenario::Kb, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            greet(&mut c),
            "* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (front.lab) ready\r\n"
        );
        assert_eq!(
            run(&mut c, "? login DOMname/UserN/AliasN PASSword\r\n"),
            "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010] LOGIN completed\r\n"
        );
        assert_eq!(
            run(&mut c, "? Select Inbox\r\n"),
            "? NO There is no replica for that mailbox on this server.\r\n"
        );
        assert_eq!(
            run(&mut c, "? logout\r\n"),
            "* BYE Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 signing off\r\n? OK LOGOUT completed\r\n<close>"
        );
    }

    #[test]
    fn tls_arrivals_are_referred_to_tls_ports() {
        let spec = spec(Scenario::Kb, 0);
        let mut c = Connection::new(&spec, true);
        assert!(
            run(&mut c, "a LOGIN DOMname/UserN/AliasN PASSword\r\n").contains("@127.0.0.1:1011]")
        );
        let spec = self::spec(Scenario::TlsDowngrade, 0);
        let mut c = Connection::new(&spec, true);
        assert_eq!(
            run(&mut c, "a LOGIN DOMname/UserN/AliasN PASSword\r\n"),
            "a NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010/] Try this server instead.\r\n"
        );
    }

    #[test]
    fn wrong_password_never_refers() {
        let spec = spec(Scenario::Kb, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "a LOGIN DOMname/UserN/AliasN password\r\n"),
            "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
        assert_eq!(
            run(&mut c, "b LOGIN nobody PASSword\r\n"),
            "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
        assert_eq!(c.state(), &State::NotAuthenticated);
        for _ in 2..MAX_FAILED_LOGINS - 1 {
            run(&mut c, "c LOGIN x y\r\n");
        }
        assert!(run(&mut c, "d LOGIN x y\r\n").ends_with("* BYE Too many failed logins\r\n<close>"));
    }

    #[test]
    fn home_greets_and_logs_in_with_capabilities() {
        let spec = spec(Scenario::Kb, 1);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            greet(&mut c),
            "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS STARTTLS AUTH=PLAIN] \
             Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (home.lab) ready\r\n"
        );
        assert_eq!(
            run(&mut c, "a LOGIN \"DOMname/UserN/AliasN\" {8}\r\nPASSword\r\n"),
            "a OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS MAILBOX-REFERRALS] LOGIN completed\r\n"
        );
        let select = run(&mut c, "b SELECT INBOX\r\n");
        assert_eq!(
            select,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] Permanent flags\r\n\
             * 3 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 2] Is the first unseen message\r\n\
             * OK [UIDVALIDITY 917222400] UIDVALIDITY value\r\n\
             * OK [UIDNEXT 4] The next unique identifier value\r\n\
             b OK [READ-WRITE] SELECT completed\r\n"
        );
        let fetch = run(&mut c, "c FETCH 1:* (FLAGS UID)\r\n");
        assert_eq!(
            fetch,
            "* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n* 2 FETCH (FLAGS () UID 2)\r\n* 3 FETCH (FLAGS () UID 3)\r\n\
             c OK FETCH completed\r\n"
        );
        assert!(run(&mut c, "d FETCH 2 BODY[TEXT]\r\n").contains("FLAGS (\\Seen)"));
        assert!(run(&mut c, "e STATUS INBOX (UNSEEN MESSAGES)\r\n")
            .starts_with("* STATUS \"INBOX\" (UNSEEN 1 MESSAGES 3)"));
        assert_eq!(
            run(&mut c, "f FETCH 4 FLAGS\r\n"),
            "f BAD Invalid message sequence number\r\n"
        );
        assert!(run(&mut c, "g UID FETCH 3 FLAGS\r\n").starts_with("* 3 FETCH (UID 3 FLAGS ())"));
        assert_eq!(run(&mut c, "h CLOSE\r\n"), "h OK CLOSE completed\r\n");
        assert_eq!(
            run(&mut c, "i FETCH 1 FLAGS\r\n"),
            "i BAD Command received in Invalid state.\r\n"
        );
        let examine = run(&mut c, "j EXAMINE \"Sent Items\"\r\n");
        assert!(
            examine.contains("* 1 EXISTS")
                && examine.ends_with("j OK [READ-ONLY] EXAMINE completed\r\n")
        );
        assert!(!examine.contains("UNSEEN"));
    }

    #[test]
    fn capabilities_by_state() {
        let spec = spec(Scenario::Kb, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            c.capabilities(),
            "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS STARTTLS AUTH=PLAIN"
        );
        assert_eq!(
            run(&mut c, "s STARTTLS\r\n"),
            "s OK Begin TLS negotiation now\r\n<starttls>"
        );
        c.tls_started();
        assert_eq!(
            c.capabilities(),
            "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS AUTH=PLAIN"
        );
        assert_eq!(
            run(&mut c, "s STARTTLS\r\n"),
            "s BAD TLS is already active\r\n"
        );
        let c2 = Connection::new(&spec, true);
        assert!(!c2.capabilities().contains("STARTTLS"));
        let plainhome = self::spec(Scenario::TlsDowngrade, 1);
        let mut c3 = Connection::new(&plainhome, false);
        assert!(!c3.capabilities().contains("STARTTLS"));
        assert_eq!(run(&mut c3, "s STARTTLS\r\n"), "s BAD Unknown command\r\n");
    }

    #[test]
    fn state_errors_and_unknown_commands() {
        let spec = spec(Scenario::Kb, 1);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "a SELECT INBOX\r\n"),
            "a BAD Command received in Invalid state.\r\n"
        );
        assert_eq!(run(&mut c, "b FROB\r\n"), "b BAD Unknown command\r\n");
        assert!(run(&mut c, "c LOGIN \"unterminated\r\n").starts_with("c BAD "));
        assert!(run(&mut c, "\r\n").starts_with("* BAD "));
        run(&mut c, "d LOGIN public PASSword\r\n");
        assert_eq!(
            run(&mut c, "e LOGIN public PASSword\r\n"),
            "e BAD Command received in Invalid state.\r\n"
        );
        assert_eq!(
            run(&mut c, "f STARTTLS\r\n"),
            "f BAD Command received in Invalid state.\r\n"
        );
        assert_eq!(
            run(&mut c, "g SELECT Nowhere\r\n"),
            "g NO [NONEXISTENT] Mailbox does not exist\r\n"
        );
        assert!(run(&mut c, "h ID NIL\r\n").contains("\"host\" \"home.lab\""));
    }

    #[test]
    fn authenticate_plain_with_and_without_initial_response() {
        let spec = spec(Scenario::Kb, 0);
        let ok = "OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010] AUTHENTICATE completed";
        let creds =
            base64::engine::general_purpose::STANDARD.encode(b"\0DOMname/UserN/AliasN\0PASSword");
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, &format!("a AUTHENTICATE PLAIN {creds}\r\n")),
            format!("a {ok}\r\n")
        );
        let mut c = Connection::new(&spec, false);
        assert_eq!(run(&mut c, "a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
        assert_eq!(run(&mut c, &format!("{creds}\r\n")), format!("a {ok}\r\n"));
        let mut c = Connection::new(&spec, false);
        run(&mut c, "a AUTHENTICATE PLAIN\r\n");
        assert_eq!(run(&mut c, "*\r\n"), "a BAD AUTHENTICATE cancelled\r\n");
        assert_eq!(
            run(&mut c, "b AUTHENTICATE CRAM-MD5\r\n"),
            "b NO Unsupported authentication mechanism\r\n"
        );
        let wrong =
            base64::engine::general_purpose::STANDARD.encode(b"\0DOMname/UserN/AliasN\0nope");
        assert_eq!(
            run(&mut c, &format!("c AUTHENTICATE PLAIN {wrong}\r\n")),
            "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
        assert_eq!(
            run(&mut c, "d AUTHENTICATE PLAIN =\r\n"),
            "d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
    }

    #[test]
    fn login_no_and_bye_greeting() {
        let spec = spec(Scenario::LoginNo, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "a LOGIN DOMname/UserN/AliasN PASSword\r\n"),
            "a NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010/] Try this server instead.\r\n"
        );
        assert_eq!(c.state(), &State::NotAuthenticated);
        let spec = self::spec(Scenario::ByeGreeting, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            greet(&mut c),
            "* BYE [REFERRAL imap://;AUTH=*@127.0.0.1:1010/] Server not accepting connections.  \
             Try home.lab\r\n<close>"
        );
    }

    #[test]
    fn mailbox_referral_needs_rlist_first() {
        let spec = spec(Scenario::MailboxReferral, 0);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "a LOGIN DOMname/UserN/AliasN PASSword\r\n"),
            "a OK LOGIN completed\r\n"
        );
        assert!(c.capabilities().contains("MAILBOX-REFERRALS"));
        assert_eq!(
            run(&mut c, "b SELECT \"Public Folders/Announcements\"\r\n"),
            "b NO Server(s) unavailable to complete operation\r\n"
        );
        let list = run(&mut c, "c LIST \"\" *\r\n");
        assert!(!list.contains("Announcements"), "{list}");
        let rlist = run(&mut c, "d RLIST \"\" *\r\n");
        assert!(
            rlist.contains("* LIST (\\Remote) \"/\" \"Public Folders/Announcements\"\r\n"),
            "{rlist}"
        );
        assert!(rlist.contains("* LIST () \"/\" \"INBOX\"\r\n"), "{rlist}");
        assert_eq!(
            run(&mut c, "e SELECT \"Public Folders/Announcements\"\r\n"),
            "e NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010/Public%20Folders/Announcements] \
             Remote mailbox.\r\n"
        );
        assert!(run(&mut c, "f SELECT INBOX\r\n").contains("* 3 EXISTS"));

        let mut c = Connection::new(&spec, false);
        run(&mut c, "a LOGIN public PASSword\r\n");
        assert!(run(&mut c, "b LIST (REMOTE) \"\" \"Public Folders/*\"\r\n").contains("\\Remote"));
        assert!(run(
            &mut c,
            "c STATUS \"Public Folders/Announcements\" (MESSAGES)\r\n"
        )
        .starts_with(
            "c NO [REFERRAL imap://public;AUTH=*@127.0.0.1:1010/Public%20Folders/Announcements]"
        ));
        assert!(run(&mut c, "d RLSUB \"\" *\r\n")
            .contains("* LSUB (\\Remote) \"/\" \"Public Folders/Announcements\""));
    }

    #[test]
    fn replicas_in_order() {
        let spec = spec(Scenario::Replicas, 0);
        let mut c = Connection::new(&spec, false);
        run(&mut c, "a LOGIN DOMname/UserN/AliasN PASSword\r\n");
        run(&mut c, "b RLIST \"\" *\r\n");
        assert_eq!(
            run(&mut c, "c EXAMINE \"Public Folders/Announcements\"\r\n"),
            "c NO [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:999/Public%20Folders/Announcements \
             imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1010/Public%20Folders/Announcements \
             imap://DOMname%2FUserN%2FAliasN;AUTH=*@127.0.0.1:1020/Public%20Folders/Announcements] Remote mailbox.\r\n"
        );
    }

    #[test]
    fn ipv6_urls_are_bracketed() {
        let host: IpAddr = "::1".parse().expect("v6");
        let mut plan = plan(Scenario::Kb).into_iter().next().expect("front");
        plan.login = Login::OkReferral(Target::Server("home".into()));
        let resolved = plan
            .resolve(|_| -> Result<Endpoint, ()> {
                Ok(Endpoint {
                    role: "home".into(),
                    plain: SocketAddr::new(host, 1143),
                    tls: Some(SocketAddr::new(host, 1993)),
                })
            })
            .expect("resolves");
        let spec = ServerSpec::new(resolved, host);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "? login DOMname/UserN/AliasN PASSword\r\n"),
            "? OK [REFERRAL imap://DOMname%2FUserN%2FAliasN;AUTH=*@[::1]:1143] LOGIN completed\r\n"
        );
    }

    #[test]
    fn unimplemented_and_read_only_commands() {
        let spec = spec(Scenario::Kb, 1);
        let mut c = Connection::new(&spec, false);
        assert_eq!(
            run(&mut c, "a CREATE x\r\n"),
            "a BAD Command received in Invalid state.\r\n"
        );
        assert_eq!(
            run(&mut c, "b CHECK\r\n"),
            "b BAD Command received in Invalid state.\r\n"
        );
        run(&mut c, "c LOGIN public PASSword\r\n");
        assert_eq!(
            run(&mut c, "d CREATE x\r\n"),
            "d NO [CANNOT] The lab's mail store is read-only\r\n"
        );
        assert_eq!(run(&mut c, "e SEARCH ALL\r\n"), "e BAD Unknown command\r\n");
        assert_eq!(
            run(&mut c, "f UID STORE 1 +FLAGS (\\Seen)\r\n"),
            "f BAD Unknown command\r\n"
        );
        run(&mut c, "g SELECT INBOX\r\n");
        assert_eq!(run(&mut c, "h UNSELECT\r\n"), "h OK UNSELECT completed\r\n");
        assert_eq!(run(&mut c, "i NOOP\r\n"), "i OK NOOP completed\r\n");
    }

    #[test]
    fn list_details() {
        let spec = spec(Scenario::Kb, 1);
        let mut c = Connection::new(&spec, false);
        run(&mut c, "a LOGIN public PASSword\r\n");
        assert_eq!(
            run(&mut c, "b LIST \"\" \"\"\r\n"),
            "* LIST (\\Noselect) \"/\" \"\"\r\nb OK LIST completed\r\n"
        );
        assert_eq!(
            run(&mut c, "c LIST \"\" %\r\n"),
            "* LIST () \"/\" \"INBOX\"\r\n* LIST () \"/\" \"Sent Items\"\r\n* LIST () \"/\" \"Deleted Items\"\r\n\
             * LIST (\\Noselect) \"/\" \"Public Folders\"\r\nc OK LIST completed\r\n"
        );
        assert_eq!(
            run(&mut c, "d LIST \"Public Folders/\" %\r\n"),
            "* LIST () \"/\" \"Public Folders/Announcements\"\r\nd OK LIST completed\r\n"
        );
        assert_eq!(
            run(&mut c, "e SELECT \"Public Folders\"\r\n"),
            "e NO [CANNOT] Public Folders cannot be selected\r\n"
        );
    }
}
