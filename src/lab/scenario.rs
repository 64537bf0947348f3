//! The lab's scenarios: what each one shows ([`ScenarioInfo`], [`all`]) and which servers it starts and how they
//! behave (the crate-internal [`plan`]).
//!
//! A plan names its referral targets by role ([`Target::Server`]) or as [`Target::ClosedPort`]; [`super::Lab::start`]
//! binds every listener first and then resolves the targets to ports, so that a referral can point at any server in
//! the scenario, the front itself included (the loop).

use std::fmt;
use std::str::FromStr;

use super::LabError;

/// A lab scenario, selected by its kebab-case name (`imapref lab --scenario NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scenario {
    /// KB Q217388 as written: `OK [REFERRAL]` to LOGIN on front, then "no replica" on SELECT; home serves the mail.
    #[default]
    Kb,
    /// RFC 2221's other form: `NO [REFERRAL]` to LOGIN (not logged in).
    LoginNo,
    /// A `* BYE [REFERRAL]` greeting: front takes no connections at all.
    ByeGreeting,
    /// RFC 2193 mailbox referral for one public folder, sent only after RLIST (as Cyrus does).
    MailboxReferral,
    /// A mailbox referral with three replica URLs, the first to a closed port.
    Replicas,
    /// Two servers that refer LOGIN to each other forever.
    Loop,
    /// Eleven login referrals in a row, more than the default `--max-hops` of 10.
    LongChain,
    /// A login referral to a port where nothing listens.
    ClosedPort,
    /// A referral from a TLS server to a server that offers no TLS at all.
    TlsDowngrade,
    /// The kb servers, to show that a wrong password gets `NO [AUTHENTICATIONFAILED]` and never a referral.
    WrongPassword,
}

/// What a scenario is for, as `imapref lab --list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioInfo {
    /// The scenario.
    pub scenario: Scenario,
    /// Its name on the command line.
    pub name: &'static str,
    /// One line saying what it shows.
    pub description: &'static str,
    /// The `--mailbox` a probe should use, when the scenario is about one mailbox.
    pub mailbox: Option<&'static str>,
    /// True when the probe should start over TLS (the front's implicit-TLS port, `--tls`) to see the point.
    pub probe_tls: bool,
    /// What `imapref probe` should find, in a few words.
    pub expect: &'static str,
}

/// The mailbox the mailbox-referral scenarios refer.
pub const REMOTE_MAILBOX: &str = "Public Folders/Announcements";

/// How many `hopN` servers the long chain has after front (front + 11 hops = 12 servers).
pub const LONG_CHAIN_HOPS: usize = 11;

const INFOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        scenario: Scenario::Kb,
        name: "kb",
        description: "KB Q217388: front answers LOGIN with OK [REFERRAL] to home, then SELECT gets \"no replica\"",
        mailbox: None,
        probe_tls: false,
        expect: "a login referral (OK form) followed to home, where INBOX has 3 messages",
    },
    ScenarioInfo {
        scenario: Scenario::LoginNo,
        name: "login-no",
        description: "front answers LOGIN with NO [REFERRAL] (RFC 2221, not logged in); home accepts",
        mailbox: None,
        probe_tls: false,
        expect: "a login referral (NO form) followed to home",
    },
    ScenarioInfo {
        scenario: Scenario::ByeGreeting,
        name: "bye-greeting",
        description: "front greets with * BYE [REFERRAL] and closes; home accepts",
        mailbox: None,
        probe_tls: false,
        expect: "a greeting referral followed to home",
    },
    ScenarioInfo {
        scenario: Scenario::MailboxReferral,
        name: "mailbox-referral",
        description: "front refers SELECT of a public folder to pub with NO [REFERRAL], but only after RLIST (like Cyrus)",
        mailbox: Some(REMOTE_MAILBOX),
        probe_tls: false,
        expect: "a mailbox referral (after RLIST) followed to pub",
    },
    ScenarioInfo {
        scenario: Scenario::Replicas,
        name: "replicas",
        description: "a mailbox referral with 3 replica URLs: a closed port first, then pub1 and pub2",
        mailbox: Some(REMOTE_MAILBOX),
        probe_tls: false,
        expect: "the first replica refuses the connection, the second (pub1) serves the folder",
    },
    ScenarioInfo {
        scenario: Scenario::Loop,
        name: "loop",
        description: "front refers LOGIN to loop-b, which refers it back to front: a referral loop",
        mailbox: None,
        probe_tls: false,
        expect: "a referral loop detected",
    },
    ScenarioInfo {
        scenario: Scenario::LongChain,
        name: "long-chain",
        description: "11 login referrals in a row (front, hop1 .. hop11; hop11 accepts): more than --max-hops 10",
        mailbox: None,
        probe_tls: false,
        expect: "the hop limit reached before hop11",
    },
    ScenarioInfo {
        scenario: Scenario::ClosedPort,
        name: "closed-port",
        description: "front answers LOGIN with OK [REFERRAL] to a port on 127.0.0.1 where nothing listens",
        mailbox: None,
        probe_tls: false,
        expect: "the referred server refuses the connection",
    },
    ScenarioInfo {
        scenario: Scenario::TlsDowngrade,
        name: "tls-downgrade",
        description: "front (TLS) refers LOGIN to plainhome, which has no TLS port and offers no STARTTLS",
        mailbox: None,
        probe_tls: true,
        expect: "a probe that started with TLS refuses to follow without TLS",
    },
    ScenarioInfo {
        scenario: Scenario::WrongPassword,
        name: "wrong-password",
        description: "the kb servers; any password but PASSword gets NO [AUTHENTICATIONFAILED], never a referral",
        mailbox: None,
        probe_tls: false,
        expect: "an authentication failure and no referral (try --password-env with a wrong password)",
    },
];

/// Every scenario, in the order `imapref lab --list` shows them.
pub fn all() -> &'static [ScenarioInfo] {
    INFOS
}

impl Scenario {
    /// This scenario's description.
    pub fn info(self) -> &'static ScenarioInfo {
        INFOS
            .iter()
            .find(|info| info.scenario == self)
            .unwrap_or(&INFOS[0])
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The valid names, comma-separated, for error messages.
    pub fn valid_names() -> String {
        INFOS.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = LabError;

    /// By kebab-case name, ignoring ASCII case; `_` is accepted for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        INFOS
            .iter()
            .find(|info| info.name == wanted)
            .map(|info| info.scenario)
            .ok_or_else(|| LabError::UnknownScenario {
                name: s.to_string(),
                valid: Scenario::valid_names(),
            })
    }
}

/// Where a referral points, before the listeners are bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The server with this role.
    Server(String),
    /// The lab's closed port: bound once and released, so nothing listens there.
    ClosedPort,
}

/// How a server greets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Greeting<T> {
    /// Exchange 5.5's `* OK Microsoft Exchange IMAP4rev1 server version 5.5.1960.6 (<role>.lab) ready`.
    Exchange,
    /// The same with `[CAPABILITY ...]` in front of the text, as modern servers do.
    WithCapability,
    /// `* BYE [REFERRAL imap://;AUTH=*@host:port/] ...` and close.
    ByeReferral(T),
}

/// How a server answers a LOGIN or AUTHENTICATE with the right password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login<T> {
    /// `OK LOGIN completed`.
    Accept,
    /// `OK [REFERRAL url] LOGIN completed` (KB Q217388, Exchange 5.5's form, no `/` after the port): logged in here,
    /// but every SELECT gets "There is no replica for that mailbox on this server."
    OkReferral(T),
    /// `NO [REFERRAL url/] Try this server instead.` (RFC 2221, Dovecot's text): not logged in.
    NoReferral(T),
}

/// Which sample store a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// The user's mailboxes ([`super::mailbox::MailStore::home`]).
    Home,
    /// Nothing: a server that only refers (SELECT gets "no replica").
    Empty,
    /// The home store, with the public folder held remotely.
    FrontWithRemote,
    /// A public-folder server, with this UIDVALIDITY for the folder.
    Public(u32),
}

/// One server of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerPlan<T> {
    /// The role, e.g. `front`; the greeting says `(<role>.lab)`.
    pub role: String,
    /// What the server does, for the start banner.
    pub note: String,
    /// Its greeting.
    pub greeting: Greeting<T>,
    /// Its answer to a good LOGIN.
    pub login: Login<T>,
    /// It offers STARTTLS on its plain listener.
    pub starttls: bool,
    /// It has an implicit-TLS listener (when the lab starts them at all).
    pub tls_listener: bool,
    /// It reports its capabilities in the greeting and in the LOGIN OK, as modern servers do (home).
    pub capability_codes: bool,
    /// Its mailboxes.
    pub store: Store,
    /// The servers that hold [`REMOTE_MAILBOX`] (most preferred first), when this server refers it.
    pub mailbox_referral: Vec<T>,
}

impl<T> ServerPlan<T> {
    fn new(role: &str, note: &str, store: Store) -> Self {
        ServerPlan {
            role: role.to_string(),
            note: note.to_string(),
            greeting: Greeting::Exchange,
            login: Login::Accept,
            starttls: true,
            tls_listener: true,
            capability_codes: false,
            store,
            mailbox_referral: Vec::new(),
        }
    }

    /// The same plan with every target resolved by `resolve`.
    pub fn resolve<U, E>(
        self,
        mut resolve: impl FnMut(&T) -> Result<U, E>,
    ) -> Result<ServerPlan<U>, E> {
        let greeting = match &self.greeting {
            Greeting::Exchange => Greeting::Exchange,
            Greeting::WithCapability => Greeting::WithCapability,
            Greeting::ByeReferral(t) => Greeting::ByeReferral(resolve(t)?),
        };
        let login = match &self.login {
            Login::Accept => Login::Accept,
            Login::OkReferral(t) => Login::OkReferral(resolve(t)?),
            Login::NoReferral(t) => Login::NoReferral(resolve(t)?),
        };
        let mailbox_referral = self
            .mailbox_referral
            .iter()
            .map(&mut resolve)
            .collect::<Result<Vec<U>, E>>()?;
        Ok(ServerPlan {
            role: self.role,
            note: self.note,
            greeting,
            login,
            starttls: self.starttls,
            tls_listener: self.tls_listener,
            capability_codes: self.capability_codes,
            store: self.store,
            mailbox_referral,
        })
    }
}

fn server(role: &str) -> Target {
    Target::Server(role.to_string())
}

fn home() -> ServerPlan<Target> {
    let mut home = ServerPlan::new(
        "home",
        "the user's home server: accepts the login and serves INBOX (3 messages), Sent Items, Deleted Items, \
         Public Folders/Announcements; greets with its capabilities",
        Store::Home,
    );
    home.greeting = Greeting::WithCapability;
    home.capability_codes = true;
    home
}

/// The servers of a scenario, front first, in port order.
pub(crate) fn plan(scenario: Scenario) -> Vec<ServerPlan<Target>> {
    match scenario {
        Scenario::Kb | Scenario::WrongPassword => {
            let mut front = ServerPlan::new(
                "front",
                "LOGIN: OK [REFERRAL] to home (KB Q217388); then SELECT: NO There is no replica for that mailbox on \
                 this server.",
                Store::Empty,
            );
            front.login = Login::OkReferral(server("home"));
            vec![front, home()]
        }
        Scenario::LoginNo => {
            let mut front = ServerPlan::new(
                "front",
                "LOGIN: NO [REFERRAL] to home (RFC 2221): not logged in",
                Store::Empty,
            );
            front.login = Login::NoReferral(server("home"));
            vec![front, home()]
        }
        Scenario::ByeGreeting => {
            let mut front = ServerPlan::new(
                "front",
                "greets with * BYE [REFERRAL] to home and closes",
                Store::Empty,
            );
            front.greeting = Greeting::ByeReferral(server("home"));
            vec![front, home()]
        }
        Scenario::MailboxReferral => {
            let mut front = ServerPlan::new(
                "front",
                "accepts the login and holds INBOX; SELECT of Public Folders/Announcements: NO [REFERRAL] to pub \
                 after RLIST, NO Server(s) unavailable before",
                Store::FrontWithRemote,
            );
            front.mailbox_referral = vec![server("pub")];
            let publ = ServerPlan::new(
                "pub",
                "the public-folder server: holds Public Folders/Announcements (2 messages)",
                Store::Public(917_300_001),
            );
            vec![front, publ]
        }
        Scenario::Replicas => {
            let mut front = ServerPlan::new(
                "front",
                "accepts the login and holds INBOX; SELECT of Public Folders/Announcements (after RLIST): \
                 NO [REFERRAL] with 3 replicas: closed port, pub1, pub2",
                Store::FrontWithRemote,
            );
            front.mailbox_referral = vec![Target::ClosedPort, server("pub1"), server("pub2")];
            let pub1 = ServerPlan::new(
                "pub1",
                "replica 2 of Public Folders/Announcements",
                Store::Public(917_300_001),
            );
            let pub2 = ServerPlan::new(
                "pub2",
                "replica 3 of Public Folders/Announcements (another UIDVALIDITY)",
                Store::Public(917_300_002),
            );
            vec![front, pub1, pub2]
        }
        Scenario::Loop => {
            let mut front =
                ServerPlan::new("front", "LOGIN: NO [REFERRAL] to loop-b", Store::Empty);
            front.login = Login::NoReferral(server("loop-b"));
            let mut back =
                ServerPlan::new("loop-b", "LOGIN: NO [REFERRAL] back to front", Store::Empty);
            back.login = Login::NoReferral(server("front"));
            vec![front, back]
        }
        Scenario::LongChain => {
            let mut servers = Vec::with_capacity(LONG_CHAIN_HOPS + 1);
            let mut front = ServerPlan::new("front", "LOGIN: NO [REFERRAL] to hop1", Store::Empty);
            front.login = Login::NoReferral(server("hop1"));
            servers.push(front);
            for n in 1..=LONG_CHAIN_HOPS {
                let role = format!("hop{n}");
                let mut hop = if n == LONG_CHAIN_HOPS {
                    ServerPlan::new(
                        &role,
                        "the end of the chain: accepts the login, holds INBOX",
                        Store::Home,
                    )
                } else {
                    let next = format!("hop{}", n + 1);
                    let mut hop = ServerPlan::new(
                        &role,
                        &format!("LOGIN: NO [REFERRAL] to {next}"),
                        Store::Empty,
                    );
                    hop.login = Login::NoReferral(Target::Server(next));
                    hop
                };
                hop.role = role;
                servers.push(hop);
            }
            servers
        }
        Scenario::ClosedPort => {
            let mut front = ServerPlan::new(
                "front",
                "LOGIN: OK [REFERRAL] to the closed port; then SELECT: no replica",
                Store::Empty,
            );
            front.login = Login::OkReferral(Target::ClosedPort);
            vec![front]
        }
        Scenario::TlsDowngrade => {
            let mut front = ServerPlan::new(
                "front",
                "implicit TLS and STARTTLS; LOGIN: NO [REFERRAL] to plainhome, which has no TLS",
                Store::Empty,
            );
            front.login = Login::NoReferral(server("plainhome"));
            let mut plainhome = ServerPlan::new(
                "plainhome",
                "plain text only: no TLS port, no STARTTLS; accepts the login, holds INBOX",
                Store::Home,
            );
            plainhome.starttls = false;
            plainhome.tls_listener = false;
            vec![front, plainhome]
        }
    }
}

/// True when some referral of the plan points at the closed port.
pub(crate) fn uses_closed_port(plan: &[ServerPlan<Target>]) -> bool {
    plan.iter().any(|server| {
        let targets = [
            match &server.greeting {
                Greeting::ByeReferral(t) => Some(t),
                _ => None,
            },
            match &server.login {
                Login::OkReferral(t) | Login::NoReferral(t) => Some(t),
                Login::Accept => None,
            },
        ];
        targets
            .into_iter()
            .flatten()
            .chain(&server.mailbox_referral)
            .any(|t| *t == Target::ClosedPort)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for info in all() {
            assert_eq!(
                info.name.parse::<Scenario>().expect("parses"),
                info.scenario
            );
            assert_eq!(info.scenario.to_string(), info.name);
            assert_eq!(info.scenario.info(), info);
        }
        assert_eq!(all().len(), 10);
        assert_eq!(
            "LOGIN_NO".parse::<Scenario>().expect("parses"),
            Scenario::LoginNo
        );
        assert_eq!(Scenario::default(), Scenario::Kb);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = "nope".parse::<Scenario>().expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("nope")
                && text.contains("kb, login-no")
                && text.contains("wrong-password"),
            "{text}"
        );
    }

    #[test]
    fn every_target_names_a_server_of_the_scenario() {
        for info in all() {
            let servers = plan(info.scenario);
            assert_eq!(servers[0].role, "front", "{}", info.name);
            let roles: Vec<&str> = servers.iter().map(|s| s.role.as_str()).collect();
            for s in servers.clone() {
                s.resolve(|t| match t {
                    Target::Server(role) if roles.contains(&role.as_str()) => Ok(()),
                    Target::ClosedPort => Ok(()),
                    Target::Server(role) => Err(format!("{}: unknown role {role}", info.name)),
                })
                .expect("targets resolve");
            }
        }
        assert_eq!(plan(Scenario::LongChain).len(), LONG_CHAIN_HOPS + 1);
        assert!(uses_closed_port(&plan(Scenario::ClosedPort)));
        assert!(uses_closed_port(&plan(Scenario::Replicas)));
        assert!(!uses_closed_port(&plan(Scenario::Kb)));
    }
}
