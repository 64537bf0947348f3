//! What the shell does with each line, the same with a person at a terminal and with a script on stdin: IMAP lines
//! go to the current connection and wait for their completion; `:` lines run here. The engine keeps the stack of
//! connections (`:follow` pushes, `:back` pops; the earlier ones stay open), the password typed for `:login` (to
//! reuse on `:follow`, after asking), the host named first (for the referral policy) and the exit status.
//!
//! It runs on the line loop's own thread and blocks on the async runtime for each wait; every wait is bounded.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::connection::{self, ConnState, Connection, Continuation, Reply, Request, Shared};
use super::local::{self, LocalCommand};
use super::{Flow, ShellSettings, Ui};
use crate::exit;
use crate::explain::{explain_line, explain_response, ReferralKind};
use crate::follow::classify;
use crate::follow::policy::Policy;
use crate::follow::{tls_floor, Decision, Follower, HopPlan, HopReason, Refusal};
use crate::probe::target::{authority, Target};
use crate::proto::response::Status;
use crate::secret::Secret;
use crate::transport::TlsMode;

/// Added to `--timeout` for the line loop's own bound on a reply, so that the connection's timeout (which reports
/// what happened) normally fires first.
const MARGIN: Duration = Duration::from_secs(5);
/// How long quitting waits for each LOGOUT. Default 6 s: the connection's own LOGOUT wait is 5 s.
const LOGOUT_BOUND: Duration = Duration::from_secs(6);

/// SIGINT while the line loop waits (on a terminal, Ctrl-C outside line editing is a signal).
///
/// rustyline has a SIGINT handler of its own, which tokio's chains to: every Ctrl-C seen here also leaves a note for
/// rustyline, and a later `readline` returns `Interrupted` at once. `seen` counts them, so that the line loop can take
/// those `Interrupted` for what they are.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
    seen: usize,
}

impl Interrupts {
    fn new(rt: &Handle, enabled: bool) -> Self {
        #[cfg(unix)]
        {
            let signal = enabled
                .then(|| {
                    rt.block_on(async {
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                            .ok()
                    })
                })
                .flatten();
            Interrupts { signal, seen: 0 }
        }
        #[cfg(not(unix))]
        {
            let _ = (rt, enabled);
            Interrupts { seen: 0 }
        }
    }

    /// Waits for the next Ctrl-C (forever when there is no terminal).
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            s.recv().await;
            self.seen += 1;
            return;
        }
        std::future::pending::<()>().await;
    }

    /// Forgets a Ctrl-C pressed while nothing waited (at a password prompt, say).
    fn drain(&mut self, rt: &Handle) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            let drained = rt.block_on(async {
                let mut drained = 0;
                loop {
                    tokio::select! {
                        biased;
                        _ = s.recv() => drained += 1,
                        () = std::future::ready(()) => break,
                    }
                }
                drained
            });
            self.seen += drained;
        }
        #[cfg(not(unix))]
        let _ = rt;
    }
}

/// How one alternative of `:follow` went.
enum Followed {
    /// Opened (and logged in, when there was a password).
    Done,
    /// The server could not be opened: the next alternative may be tried.
    Unreachable,
    /// Refused or declined: nothing more is tried.
    Stopped,
}

/// The shell's state between lines.
pub struct Engine {
    rt: Handle,
    shared: Arc<Shared>,
    settings: ShellSettings,
    stack: Vec<Connection>,
    /// The hop each connection of the stack was opened for, in the same order.
    plans: Vec<HopPlan>,
    /// The referral follower of the current chain (from the last `:connect`).
    follower: Option<Follower>,
    /// Every connection opened, in order: id, label, state (for `:transcript`).
    opened: Vec<(usize, String, Arc<Mutex<ConnState>>)>,
    /// Connections closed by `:back` or `:connect`, kept so their transcripts stay reachable.
    closed: Vec<Connection>,
    named_host: Option<String>,
    password: Option<Secret>,
    user: Option<String>,
    next_id: usize,
    status: Option<i32>,
    sticky_failure: bool,
    interrupts: Interrupts,
}

impl Engine {
    /// A shell with no connection yet.
    pub fn new(rt: Handle, shared: Arc<Shared>, settings: ShellSettings) -> Self {
        let interrupts = Interrupts::new(&rt, shared.interactive);
        Engine {
            rt,
            shared,
            password: settings.password.clone(),
            user: settings.user.clone(),
            settings,
            stack: Vec::new(),
            plans: Vec::new(),
            follower: None,
            opened: Vec::new(),
            closed: Vec::new(),
            named_host: None,
            next_id: 1,
            status: None,
            sticky_failure: false,
            interrupts,
        }
    }

    /// What the output goes through.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn current(&self) -> Option<&Connection> {
        self.stack.last()
    }

    fn set_status(&mut self, code: i32) {
        self.status = Some(code);
    }

    /// The exit status for a script: that of the last command (0 OK, 1 NO, 2 BAD, BYE, a lost connection or a line
    /// that could not be sent), or 2 when a line was refused anywhere.
    pub fn exit_status(&self) -> i32 {
        if self.sticky_failure {
            return exit::CRITICAL;
        }
        self.status.unwrap_or(exit::OK)
    }

    /// Marks the run as failed whatever comes after (a line with NUL, input that ended inside a command).
    pub fn fail(&mut self, message: &str) {
        self.shared.warn_blocking(message);
        self.sticky_failure = true;
        self.set_status(exit::CRITICAL);
    }

    /// Why the next line continues a command, if it does.
    pub fn continuation(&self) -> Option<Continuation> {
        self.current()
            .and_then(|c| c.with_state(|s| s.continuation.clone()))
    }

    /// True while the current connection waits for a completion or for the rest of a command.
    pub fn in_flight(&self) -> Option<String> {
        self.current().and_then(|c| {
            c.with_state(|s| {
                if s.continuation.is_some() || !s.pending.is_empty() {
                    Some(
                        s.pending
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "the command".into()),
                    )
                } else {
                    None
                }
            })
        })
    }

    /// The prompt: `host:port> `, with the depth after `:follow`, `...> ` inside a command.
    pub fn prompt(&self) -> String {
        let Some(c) = self.current() else {
            return "imapref> ".into();
        };
        let depth = if self.stack.len() > 1 {
            format!(" ({})", self.stack.len())
        } else {
            String::new()
        };
        let (alive, cont) = c.with_state(|s| (s.alive, s.continuation.clone()));
        let label = c.label();
        match (alive, cont) {
            (false, _) => format!("{label}{depth} (closed)> "),
            (true, Some(Continuation::Literal { remaining, .. })) if remaining > 0 => {
                format!("{label}{depth} {{{remaining} bytes}}> ")
            }
            (true, Some(_)) => format!("{label}{depth} ...> "),
            (true, None) => format!("{label}{depth}> "),
        }
    }

    /// Runs one line: a `:` command here, anything else on the current connection.
    pub fn execute(&mut self, line: &[u8], ui: &mut dyn Ui) -> Flow {
        let text = String::from_utf8_lossy(line).into_owned();
        if self.continuation().is_none() && local::is_local(&text) {
            return match local::parse(&text) {
                Ok(command) => self.local(command, ui),
                Err(e) => {
                    self.shared.warn_blocking(&e.to_string());
                    self.set_status(exit::CRITICAL);
                    Flow::Continue
                }
            };
        }
        self.imap_line(line);
        Flow::Continue
    }

    fn imap_line(&mut self, line: &[u8]) {
        self.interrupts.drain(&self.rt);
        let Some(conn) = self.current() else {
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                self.shared
                    .warn_blocking("not connected: :connect HOST[:PORT] opens a connection");
                self.set_status(exit::CRITICAL);
            }
            return;
        };
        let (reply, rx) = oneshot::channel();
        if !conn.request_blocking(Request::Line {
            line: line.to_vec(),
            reply,
        }) {
            self.shared.warn_blocking("the connection is gone");
            self.set_status(exit::CRITICAL);
            return;
        }
        let reply = self.wait(rx, self.shared.timeout + MARGIN);
        self.after(reply);
    }

    /// Waits for a reply; on a terminal, a first Ctrl-C says the command still waits, a second one resets the
    /// connection.
    /// The caller drains old interrupts before sending the request, so that a Ctrl-C pressed after the request
    /// left is never lost.
    fn wait(&mut self, rx: oneshot::Receiver<Reply>, bound: Duration) -> Reply {
        let conn = self.stack.last();
        let interrupts = &mut self.interrupts;
        let shared = &self.shared;
        self.rt.block_on(async {
            let mut rx = rx;
            let backstop = tokio::time::sleep(bound);
            tokio::pin!(backstop);
            let mut armed = false;
            loop {
                tokio::select! {
                    r = &mut rx => {
                        return r.unwrap_or(Reply::Lost {
                            message: "the connection's task ended".into(),
                            shown: false,
                        });
                    }
                    () = interrupts.recv() => {
                        let Some(conn) = conn else { continue };
                        if armed {
                            conn.reset();
                        } else {
                            armed = true;
                            let waiting = conn.with_state(|s| s.pending.first().cloned())
                                .unwrap_or_else(|| "the command".into());
                            shared.note(&format!(
                                "{waiting} is still waiting for the server; press Ctrl-C again to reset the connection"
                            )).await;
                        }
                    }
                    () = &mut backstop => {
                        return Reply::TimedOut { tag: String::new() };
                    }
                }
            }
        })
    }

    /// Turns a reply into the exit status and a message.
    fn after(&mut self, reply: Reply) -> Option<Status> {
        match reply {
            Reply::Done { completion } => {
                let status = completion.status().unwrap_or(Status::Bad);
                self.set_status(match status {
                    Status::Ok | Status::Preauth => exit::OK,
                    Status::No => exit::WARNING,
                    Status::Bad | Status::Bye => exit::CRITICAL,
                });
                Some(status)
            }
            Reply::More | Reply::Nothing => None,
            Reply::NotSent { message } => {
                self.fail(&message);
                None
            }
            Reply::TimedOut { tag } => {
                let secs = self.shared.timeout.as_secs_f64();
                let what = if tag.is_empty() {
                    "the command".to_string()
                } else {
                    format!("`{tag}`")
                };
                if self.shared.interactive {
                    self.shared.warn_blocking(&format!(
                        "no answer to {what} within {secs} s (--timeout); it may still come. Ctrl-C twice resets \
                         the connection"
                    ));
                } else {
                    self.shared.warn_blocking(&format!(
                        "no answer to {what} within {secs} s (--timeout); closing the connection"
                    ));
                    if let Some(c) = self.current() {
                        c.reset();
                    }
                }
                self.set_status(exit::CRITICAL);
                None
            }
            Reply::Lost { message, shown } => {
                if !shown {
                    self.shared.warn_blocking(&message);
                }
                self.set_status(exit::CRITICAL);
                None
            }
        }
    }

    /// Connects to the target given on the command line, if any.
    pub fn start(&mut self) {
        if let Some(target) = self.settings.target.clone() {
            self.connect(&target, None);
        }
    }

    fn local(&mut self, command: LocalCommand, ui: &mut dyn Ui) -> Flow {
        match command {
            LocalCommand::Connect { target, tls } => {
                self.connect(&target, tls);
            }
            LocalCommand::StartTls => self.starttls(),
            LocalCommand::Login { user } => self.login(user, ui),
            LocalCommand::Follow { yes } => self.follow(yes, ui),
            LocalCommand::Back => self.back(),
            LocalCommand::Explain { line } => self.explain(line.as_deref()),
            LocalCommand::Transcript { path } => self.transcript(&path),
            LocalCommand::Raw(on) => {
                let on = on.unwrap_or(!self.shared.raw.load(Ordering::Relaxed));
                self.shared.raw.store(on, Ordering::Relaxed);
                self.shared.note_blocking(if on {
                    "raw on: the bytes on the wire, escaped (C: sent, S: received; passwords as ***)"
                } else {
                    "raw off"
                });
            }
            LocalCommand::Help => self
                .shared
                .say_blocking(local::help_text(local::help_width()).trim_end()),
            LocalCommand::Quit => {
                self.quit();
                return Flow::Quit;
            }
        }
        Flow::Continue
    }

    /// Opens a connection, closing the open ones. Returns true on success.
    fn connect(&mut self, input: &str, tls: Option<TlsMode>) -> bool {
        let target = match Target::parse(input) {
            Ok(t) => t,
            Err(e) => {
                self.shared.warn_blocking(&format!("target `{input}`: {e}"));
                self.set_status(exit::CRITICAL);
                return false;
            }
        };
        let mode = tls.unwrap_or(self.settings.tls_mode);
        let port = target.port.unwrap_or(mode.default_port());
        if let Some(user) = &target.user {
            self.user = Some(user.clone());
        }
        self.close_all();
        self.named_host.get_or_insert_with(|| target.host.clone());
        match self.open(&target.host, port, mode) {
            Some(conn) => {
                let plan = HopPlan {
                    host: target.host.clone(),
                    port,
                    user: self.user.clone().unwrap_or_default(),
                    mailbox: target.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
                    reason: HopReason::Start,
                    tls_mode: mode,
                    url_wants_plain: false,
                };
                let mut follower = Follower::new(self.policy(), self.settings.follow_limits);
                follower.record(&plan, conn.with_state(|s| s.tls));
                self.follower = Some(follower);
                self.plans = vec![plan];
                self.stack.push(conn);
                self.set_status(exit::OK);
                true
            }
            None => false,
        }
    }

    /// The referral policy: `--follow`, `--max-hops`, `--allow-host`, and the host named first.
    fn policy(&self) -> Policy {
        Policy {
            mode: self.settings.follow,
            max_hops: self.settings.max_hops,
            allow_hosts: self.settings.allow_hosts.clone(),
            named_host: self.named_host.clone().unwrap_or_default(),
            interactive: self.shared.interactive,
        }
    }

    /// Opens one connection and registers it (not on the stack yet).
    fn open(&mut self, host: &str, port: u16, mode: TlsMode) -> Option<Connection> {
        let id = self.next_id;
        self.next_id += 1;
        let previous = self.shared.current.swap(id, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        let tls = self.settings.tls.clone();
        // Connect, TLS, greeting, CAPABILITY and STARTTLS: the session's own deadline (--max-time) ends them; this
        // backstop only catches a bug.
        let bound = self.shared.max_time + MARGIN;
        self.interrupts.drain(&self.rt);
        let interrupts = &mut self.interrupts;
        let opened = self.rt.block_on(async {
            tokio::select! {
                r = tokio::time::timeout(bound, connection::open(id, host, port, mode, &tls, shared)) => Some(r),
                () = interrupts.recv() => None,
            }
        });
        let label = authority(host, port);
        let failure = match opened {
            Some(Ok(Ok(opened))) => {
                let conn = opened.connection;
                self.opened.push((id, label, Arc::clone(&conn.state)));
                return Some(conn);
            }
            Some(Ok(Err(e))) => format!("cannot open {label}: {e}"),
            Some(Err(_)) => format!(
                "cannot open {label}: no answer within {} s",
                bound.as_secs()
            ),
            None => format!("connecting to {label} cancelled"),
        };
        self.shared.current.store(previous, Ordering::Relaxed);
        self.shared.warn_blocking(&failure);
        self.set_status(exit::CRITICAL);
        None
    }

    /// Logs out of `conn` and waits (bounded) for it to close.
    fn logout(&mut self, conn: &Connection, quiet: bool) {
        let alive = conn.with_state(|s| s.alive);
        if !alive {
            return;
        }
        let (reply, rx) = oneshot::channel();
        if conn.request_blocking(Request::Logout { quiet, reply }) {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(LOGOUT_BOUND, rx).await });
        }
    }

    fn close_all(&mut self) {
        self.plans.clear();
        self.follower = None;
        while let Some(conn) = self.stack.pop() {
            let current = self.stack.is_empty();
            self.logout(&conn, !current);
            self.closed.push(conn);
        }
    }

    /// Logs out of every connection (the current one showing the server's answer).
    pub fn quit(&mut self) {
        let mut first = true;
        while let Some(conn) = self.stack.pop() {
            self.shared.current.store(conn.id, Ordering::Relaxed);
            self.logout(&conn, !first);
            first = false;
            self.closed.push(conn);
        }
    }

    /// Logs out of every connection without showing the answers (the end of a script).
    pub fn quit_quietly(&mut self) {
        while let Some(conn) = self.stack.pop() {
            self.logout(&conn, true);
            self.closed.push(conn);
        }
    }

    /// How many Ctrl-C were taken as signals since the last call: rustyline saw them too, and its next `readline`
    /// returns `Interrupted` at once (once for all of them, or once each when they reach it apart).
    pub fn take_interrupts_seen(&mut self) -> usize {
        std::mem::take(&mut self.interrupts.seen)
    }

    /// Drops the current connection without LOGOUT.
    pub fn reset_current(&mut self) {
        if let Some(c) = self.current() {
            c.reset();
        }
    }

    fn require_current(&mut self) -> Option<usize> {
        match self.current() {
            Some(c) if c.with_state(|s| s.alive) => Some(self.stack.len() - 1),
            Some(c) => {
                let label = c.label();
                self.shared.warn_blocking(&format!(
                    "the connection to {label} is closed; :connect opens a new one, :back returns to an earlier one"
                ));
                self.set_status(exit::CRITICAL);
                None
            }
            None => {
                self.shared
                    .warn_blocking("not connected: :connect HOST[:PORT] opens a connection");
                self.set_status(exit::CRITICAL);
                None
            }
        }
    }

    fn starttls(&mut self) {
        let Some(i) = self.require_current() else {
            return;
        };
        let conn = &self.stack[i];
        let (reply, rx) = oneshot::channel();
        let sent = conn.request_blocking(Request::StartTls {
            host: conn.host.clone(),
            tls: self.settings.tls.clone(),
            reply,
        });
        let bound = self.shared.timeout * 3 + MARGIN;
        let result = if sent {
            self.rt
                .block_on(async { tokio::time::timeout(bound, rx).await })
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        match result {
            Some(Ok(_)) => self.set_status(exit::OK),
            Some(Err(message)) => {
                self.shared.warn_blocking(&message);
                self.set_status(exit::CRITICAL);
            }
            None => {
                self.shared.warn_blocking("STARTTLS did not finish");
                self.set_status(exit::CRITICAL);
            }
        }
    }

    /// Sends LOGIN (or AUTHENTICATE PLAIN) on the current connection; remembers the password when it is accepted or
    /// referred. Returns the completion's status.
    fn send_login(&mut self, user: &str, password: &Secret, plain: bool) -> Option<Status> {
        self.interrupts.drain(&self.rt);
        let conn = self.current()?;
        let (reply, rx) = oneshot::channel();
        if !conn.request_blocking(Request::Login {
            user: user.to_string(),
            password: password.clone(),
            plain,
            reply,
        }) {
            return None;
        }
        let reply = self.wait(rx, self.shared.timeout * 2 + MARGIN);
        let accepted = matches!(&reply, Reply::Done { completion } if classify::login(completion).credentials_accepted());
        let status = self.after(reply);
        if accepted {
            self.password = Some(password.clone());
            self.user = Some(user.to_string());
        }
        status
    }

    fn login(&mut self, user: Option<String>, ui: &mut dyn Ui) {
        let Some(i) = self.require_current() else {
            return;
        };
        let conn = &self.stack[i];
        let known = conn.with_state(|s| s.login.as_ref().map(|(u, _)| u.clone()));
        let Some(user) = user.or_else(|| self.user.clone()).or(known) else {
            self.shared
                .warn_blocking(":login needs the login name: :login DOMname/UserN/AliasN");
            self.set_status(exit::CRITICAL);
            return;
        };
        let (tls, disabled) =
            conn.with_state(|s| (s.tls, classify::login_disabled(&s.capabilities, s.tls)));
        if disabled {
            self.shared.warn_blocking(
                "the server advertises LOGINDISABLED: it refuses LOGIN in plaintext; :starttls first",
            );
            self.set_status(exit::CRITICAL);
            return;
        }
        let label = conn.label();
        let password = match self.settings.password.clone() {
            Some(p) => p,
            None => match ui.password(&format!("Password for {user} on {label}: ")) {
                Ok(p) => p,
                Err(why) => {
                    self.shared.warn_blocking(&why);
                    self.set_status(exit::CRITICAL);
                    return;
                }
            },
        };
        if !tls {
            self.shared.note_blocking(
                "the connection is not encrypted: the password crosses the network in clear text",
            );
        }
        self.send_login(&user, &password, false);
    }

    fn follow(&mut self, yes: bool, ui: &mut dyn Ui) {
        let Some(conn) = self.current() else {
            self.shared
                .warn_blocking("not connected: there is no referral to follow");
            self.set_status(exit::CRITICAL);
            return;
        };
        let (referral, login, tls) =
            conn.with_state(|s| (s.last_referral.clone(), s.login.clone(), s.tls));
        let Some(referral) = referral else {
            self.shared.warn_blocking(&format!(
                "no referral seen on {}: :follow follows the last REFERRAL code the server sent",
                conn.label()
            ));
            self.set_status(exit::CRITICAL);
            return;
        };
        let urls = referral
            .code()
            .and_then(|c| c.referral_urls())
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let kind = explain_response(&referral)
            .referral
            .map_or(ReferralKind::Login, |r| r.kind);
        let conn_mode = conn.mode;
        let current_user = login
            .as_ref()
            .map(|(u, _)| u.clone())
            .or_else(|| self.user.clone())
            .unwrap_or_default();
        let password = login.map(|(_, p)| p).or_else(|| self.password.clone());
        let (Some(follower), Some(from)) = (self.follower.as_mut(), self.plans.last()) else {
            return;
        };
        // Never below the current connection's protection (a STARTTLS typed by hand raises it).
        follower.raise_floor(tls_floor(conn_mode, tls));
        // The user logged in here, for loop detection: a LOGIN typed by hand names it only now.
        follower.set_current_user(&current_user);
        let from = HopPlan {
            user: current_user,
            ..from.clone()
        };
        let alternatives = match follower.alternatives(&from, kind, &urls) {
            Ok(a) => a,
            Err(refusal) => {
                follower.cancel_referral();
                self.refuse(&refusal);
                return;
            }
        };
        if alternatives.offered > alternatives.plans.len() {
            self.shared.note_blocking(&format!(
                "the referral names {} servers; trying the first {} in order (--max-alternatives)",
                alternatives.offered,
                alternatives.plans.len()
            ));
        }
        let count = alternatives.plans.len();
        for (i, plan) in alternatives.plans.into_iter().enumerate() {
            let last = i + 1 == count;
            match self.follow_to(&plan, password.clone(), yes, ui) {
                Followed::Done => return,
                Followed::Unreachable if !last => {
                    self.shared.note_blocking(&format!(
                        "{} could not be opened; trying the next server the referral names",
                        plan.server()
                    ));
                }
                Followed::Unreachable | Followed::Stopped => {
                    if let Some(f) = self.follower.as_mut() {
                        f.cancel_referral();
                    }
                    return;
                }
            }
        }
    }

    /// Says why a referral is not followed.
    fn refuse(&mut self, refusal: &Refusal) {
        let text = match refusal {
            Refusal::Loop { chain } => format!(
                "not following: the referrals loop: {} (same host, port and user again). :back returns",
                chain.join(" → ")
            ),
            Refusal::TooManyHops { max, chain } => format!(
                "not following: more than {max} referrals (--max-hops): {}. RFC 2221 says a client must not go further \
                 without asking. :back returns",
                chain.join(" → ")
            ),
            Refusal::Policy { server, reason, .. } => {
                format!("not following the referral to {server}: {reason}")
            }
            Refusal::Declined { .. } => "not followed".into(),
            Refusal::BadUrl { errors } => {
                format!("the referral cannot be followed: {}", errors.join("; "))
            }
        };
        if matches!(refusal, Refusal::Declined { .. }) {
            self.shared.note_blocking(&text);
            return;
        }
        self.shared.warn_blocking(&text);
        self.set_status(exit::CRITICAL);
    }

    /// One alternative of a referral: the follower's decision, consent, open, log in.
    fn follow_to(
        &mut self,
        plan: &HopPlan,
        password: Option<Secret>,
        yes: bool,
        ui: &mut dyn Ui,
    ) -> Followed {
        let Some(follower) = self.follower.as_ref() else {
            return Followed::Stopped;
        };
        let place = plan.server();
        let logs_in = !plan.user.is_empty() && password.is_some();
        let decision = follower.decide(plan);
        let question = match decision {
            Decision::Refuse(refusal) => {
                self.refuse(&refusal);
                return Followed::Stopped;
            }
            Decision::Go(why) => format!(
                "Log in to {place} ({}) as {}, reusing the password you typed?",
                why.unwrap_or_default(),
                plan.user
            ),
            Decision::Ask(question) => {
                format!(
                    "{question} Log in to {place} as {}, reusing your password?",
                    plan.user
                )
            }
        };
        if logs_in {
            let agreed = yes || !self.shared.interactive || ui.confirm(&question);
            if let Err(refusal) = follower.consent(plan, agreed) {
                self.refuse(&refusal);
                return Followed::Stopped;
            }
        }
        let Some(new) = self.open(&plan.host, plan.port, plan.tls_mode) else {
            return Followed::Unreachable;
        };
        let encrypted = new.with_state(|s| s.tls);
        if let Some(f) = self.follower.as_mut() {
            f.record(plan, encrypted);
        }
        self.plans.push(plan.clone());
        self.stack.push(new);
        self.set_status(exit::OK);
        match password {
            Some(password) if !plan.user.is_empty() => {
                self.send_login(&plan.user, &password, plan.url_wants_plain);
            }
            _ => self.shared.note_blocking(
                "no password to reuse (nothing was typed for :login or a LOGIN line): :login USER to log in here",
            ),
        }
        let back = self.stack.len() - 1;
        let mut note = format!(
            "now on {place}; :back returns to the previous connection ({back} open behind)"
        );
        if matches!(plan.reason, HopReason::MailboxReferral { .. }) {
            note.push_str(&format!("; the referral names mailbox {}", plan.mailbox));
        }
        self.shared.note_blocking(&note);
        Followed::Done
    }

    fn back(&mut self) {
        if self.stack.len() < 2 {
            self.shared
                .warn_blocking("no previous connection: :back returns after :follow");
            self.set_status(exit::CRITICAL);
            return;
        }
        if let Some(conn) = self.stack.pop() {
            self.logout(&conn, false);
            self.closed.push(conn);
        }
        self.plans.pop();
        if let Some(f) = self.follower.as_mut() {
            f.back();
        }
        if let Some(conn) = self.current() {
            self.shared.current.store(conn.id, Ordering::Relaxed);
            let (alive, user) =
                conn.with_state(|s| (s.alive, s.login.as_ref().map(|(u, _)| u.clone())));
            let mut note = format!("back on {}", conn.label());
            if let Some(u) = user {
                note.push_str(&format!(" as {u}"));
            }
            if !alive {
                note.push_str(" (closed by the server meanwhile)");
            }
            self.shared.note_blocking(&note);
        }
        self.set_status(exit::OK);
    }

    fn explain(&mut self, line: Option<&str>) {
        let explanation = match line {
            Some(l) => explain_line(l.trim(), false),
            None => {
                let last = self
                    .current()
                    .and_then(|c| c.with_state(|s| s.last_status.clone()));
                match last {
                    Some(r) => explain_response(&r),
                    None => {
                        self.shared
                            .warn_blocking("nothing to explain yet: no response received");
                        return;
                    }
                }
            }
        };
        let mut out = Vec::new();
        if crate::render::human::explanations(&[explanation], &mut out).is_ok() {
            self.shared
                .say_blocking(String::from_utf8_lossy(&out).trim_end());
        }
    }

    fn transcript(&mut self, path: &std::path::Path) {
        let mut text = String::new();
        let opened = self.opened.clone();
        for (id, label, state) in &opened {
            let kept = state
                .lock()
                .map(|s| s.final_transcript.clone())
                .unwrap_or_default();
            let body = match kept {
                Some(t) => t,
                None => {
                    let conn = self
                        .stack
                        .iter()
                        .chain(self.closed.iter())
                        .find(|c| c.id == *id);
                    let (reply, rx) = oneshot::channel();
                    match conn {
                        Some(c) if c.request_blocking(Request::Transcript { reply }) => self
                            .rt
                            .block_on(async { tokio::time::timeout(self.shared.timeout, rx).await })
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or_default(),
                        _ => String::new(),
                    }
                }
            };
            text.push_str(&format!("-- connection {id}: {label}\n"));
            text.push_str(&body);
        }
        match write_private(path, &text) {
            Ok(()) => self.shared.note_blocking(&format!(
                "transcript of {} connection{} written to {} (passwords as ***)",
                opened.len(),
                if opened.len() == 1 { "" } else { "s" },
                path.display()
            )),
            Err(e) => {
                self.shared
                    .warn_blocking(&format!("cannot write {}: {e}", path.display()));
                self.set_status(exit::CRITICAL);
            }
        }
    }
}

/// Writes `text` to `path`, readable and writable by the owner only (0600, as the history file): a transcript holds
/// what the servers said about the user's mailboxes. A file that was already there is truncated and gets 0600 too.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_transcript_file_is_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.txt");
        super::write_private(&new, "C: a1 NOOP\n").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&new), 0o600);
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "C: a1 NOOP\n");
        // A file that was there, readable by all: truncated and made the owner's only.
        let old = dir.path().join("old.txt");
        std::fs::write(&old, "a longer text than the new one\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&old, "short\n").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "short\n");
    }
}
