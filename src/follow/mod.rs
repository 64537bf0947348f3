//! Referral following with no I/O: the [`policy`] (to which hosts the password may go), the [`classify`]er (what a
//! greeting, login or select outcome means), and the [`Follower`], which turns a REFERRAL into the next hop or a typed
//! [`Refusal`]. The probe, the shell and the proxy all follow through it; none keeps a visited set or a hop count of
//! its own.
//!
//! The follower holds:
//! - the policy (trusted set, `--allow-host`, `--follow never|ask|auto`);
//! - the chain of hops made, and loop detection (the same host, port and user again);
//! - the hop budget (`--max-hops`; RFC 2221 says a client must not go past 10 without asking);
//! - the TLS floor: never below the first hop's level;
//! - replicas in order, most preferred first, as alternatives to fall back through;
//! - the URL's user rules (an empty user keeps the login name, RFC 5092 §3.2);
//! - a cap on how many alternatives of one REFERRAL are tried ([`FollowLimits::max_alternatives`]).
//!
//! Consent is an outcome, not a callback: [`Follower::decide`] answers [`Decision::Ask`] and the caller resolves it
//! (a terminal question in the probe and the shell, a refusal in `check` and the proxy).

pub mod classify;
pub mod policy;

use serde::Serialize;

use crate::explain::ReferralKind;
use crate::proto::code::ReferralUrl;
use crate::transport::{Endpoint, TlsMode};
use policy::Policy;

/// Why a hop was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum HopReason {
    /// The server the user named.
    Start,
    /// A login referral (OK or NO [REFERRAL] on LOGIN, or a BYE greeting).
    LoginReferral {
        /// The URL followed.
        url: String,
    },
    /// A mailbox referral (NO [REFERRAL] on SELECT/EXAMINE).
    MailboxReferral {
        /// The URL followed.
        url: String,
    },
}

/// One planned connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopPlan {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Mailbox to open.
    pub mailbox: String,
    /// Why.
    pub reason: HopReason,
    /// TLS mode.
    pub tls_mode: TlsMode,
    /// The referral URL asked for AUTHENTICATE PLAIN.
    pub url_wants_plain: bool,
}

impl HopPlan {
    /// `host:port`, with IPv6 brackets.
    pub fn server(&self) -> String {
        Endpoint::new(self.host.clone(), self.port).to_string()
    }

    /// What makes two hops the same for loop detection: host (any case), port and user.
    fn key(&self) -> (String, u16, String) {
        (self.host.to_ascii_lowercase(), self.port, self.user.clone())
    }
}

/// The follower's limits beside the policy's hop budget ([`Policy::max_hops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowLimits {
    /// The most URLs of one REFERRAL tried (replicas are alternatives). Default 10: real servers name one to three;
    /// a referral with sixty silent servers would cost sixty timeouts.
    pub max_alternatives: usize,
}

impl Default for FollowLimits {
    fn default() -> Self {
        FollowLimits {
            max_alternatives: 10,
        }
    }
}

/// Why a referral is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The same host, port and user again.
    Loop {
        /// The chain, ending with the repeated server.
        chain: Vec<String>,
    },
    /// More than [`Policy::max_hops`] referrals.
    TooManyHops {
        /// The limit.
        max: usize,
        /// The chain, ending with the server not followed.
        chain: Vec<String>,
    },
    /// The policy does not trust the host.
    Policy {
        /// `host:port`.
        server: String,
        /// The host.
        host: String,
        /// Why, and how to allow it.
        reason: String,
        /// `--follow=never`: nothing is followed, whatever the host.
        never: bool,
    },
    /// The person declined.
    Declined {
        /// `host:port`.
        server: String,
        /// The host.
        host: String,
    },
    /// No URL of the referral can be followed.
    BadUrl {
        /// Each URL with why it cannot be followed.
        errors: Vec<String>,
    },
}

/// What to do with a planned hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go; the reason names the rule that trusts the host (`None` for the first hop).
    Go(Option<String>),
    /// Ask the person first.
    Ask(String),
    /// Do not go.
    Refuse(Refusal),
}

/// The URLs of one REFERRAL as hops to try in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternatives {
    /// The plans, most preferred first, at most [`FollowLimits::max_alternatives`].
    pub plans: Vec<HopPlan>,
    /// How many URLs the referral named.
    pub offered: usize,
    /// URLs that could not be turned into a hop, with why.
    pub unusable: Vec<String>,
}

/// The referral follower. See the module documentation.
#[derive(Debug, Clone)]
pub struct Follower {
    policy: Policy,
    limits: FollowLimits,
    /// The hops made, in order (the shell pops on `:back`).
    chain: Vec<HopPlan>,
    /// Every hop tried, for loop detection (dead replicas included).
    tried: Vec<(String, u16, String)>,
    referrals_followed: usize,
    tls_floor: Option<TlsMode>,
}

impl Follower {
    /// A follower under `policy`.
    pub fn new(policy: Policy, limits: FollowLimits) -> Self {
        Follower {
            policy,
            limits,
            chain: Vec::new(),
            tried: Vec::new(),
            referrals_followed: 0,
            tls_floor: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Records a hop that was made (connected or not); the first one sets the TLS floor from whether it was
    /// encrypted.
    pub fn record(&mut self, plan: &HopPlan, encrypted: bool) {
        if self.tls_floor.is_none() {
            self.tls_floor = Some(tls_floor(plan.tls_mode, encrypted));
        }
        self.tried.push(plan.key());
        self.chain.push(plan.clone());
    }

    /// Forgets the last hop (the shell's `:back`): it may be followed to again.
    pub fn back(&mut self) {
        if let Some(plan) = self.chain.pop() {
            let key = plan.key();
            if let Some(i) = self.tried.iter().rposition(|k| *k == key) {
                self.tried.remove(i);
            }
            self.referrals_followed = self.referrals_followed.saturating_sub(1);
        }
    }

    /// The user the current hop logged in as, once known (the shell learns it from a LOGIN line typed by hand).
    pub fn set_current_user(&mut self, user: &str) {
        let Some(last) = self.chain.last_mut() else {
            return;
        };
        let old = last.key();
        last.user = user.to_string();
        let new = last.key();
        if let Some(k) = self.tried.iter_mut().rev().find(|k| **k == old) {
            *k = new;
        }
    }

    /// Takes back a referral that was not followed after all (the shell's `:follow` refused or cancelled), so it does
    /// not count against the hop budget.
    pub fn cancel_referral(&mut self) {
        self.referrals_followed = self.referrals_followed.saturating_sub(1);
    }

    /// The hops made, as `host:port`.
    pub fn chain(&self) -> Vec<String> {
        self.chain.iter().map(HopPlan::server).collect()
    }

    /// The mode every later hop uses: never below the first hop's level.
    pub fn tls_floor(&self) -> Option<TlsMode> {
        self.tls_floor
    }

    /// Raises the floor when the current connection became encrypted later (STARTTLS typed in the shell).
    pub fn raise_floor(&mut self, mode: TlsMode) {
        let strength = |m: TlsMode| match m {
            TlsMode::Plain => 0,
            TlsMode::StartTlsOpportunistic => 1,
            TlsMode::StartTls | TlsMode::Implicit => 2,
        };
        if self.tls_floor.is_none_or(|f| strength(mode) > strength(f)) {
            self.tls_floor = Some(mode);
        }
    }

    /// Turns a REFERRAL read on `from` into hops to try, in order. Counts one referral against the hop budget.
    pub fn alternatives(
        &mut self,
        from: &HopPlan,
        kind: ReferralKind,
        urls: &[ReferralUrl],
    ) -> Result<Alternatives, Refusal> {
        self.referrals_followed += 1;
        let mode = self.tls_floor.unwrap_or(from.tls_mode);
        let mut plans = Vec::new();
        let mut unusable = Vec::new();
        for referral in urls {
            let Some(url) = &referral.url else {
                unusable.push(format!(
                    "{} ({})",
                    referral.raw,
                    referral.error.clone().unwrap_or_default()
                ));
                continue;
            };
            if plans.len() == self.limits.max_alternatives {
                continue;
            }
            let mailbox = match kind {
                ReferralKind::Mailbox => {
                    url.mailbox.clone().unwrap_or_else(|| from.mailbox.clone())
                }
                ReferralKind::Login => url
                    .mailbox
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| from.mailbox.clone()),
            };
            let reason = match kind {
                ReferralKind::Login => HopReason::LoginReferral {
                    url: referral.raw.clone(),
                },
                ReferralKind::Mailbox => HopReason::MailboxReferral {
                    url: referral.raw.clone(),
                },
            };
            plans.push(HopPlan {
                host: url.host.clone(),
                port: url.port.unwrap_or(mode.default_port()),
                user: url.login_user(&from.user).to_string(),
                mailbox,
                reason,
                tls_mode: mode,
                url_wants_plain: url.wants_plain(),
            });
        }
        if plans.is_empty() {
            if unusable.is_empty() {
                unusable.push("the REFERRAL code names no URL".into());
            }
            return Err(Refusal::BadUrl { errors: unusable });
        }
        Ok(Alternatives {
            plans,
            offered: urls.len(),
            unusable,
        })
    }

    /// Decides about one planned hop: loop, hop budget, then the policy. The first hop always goes.
    pub fn decide(&self, plan: &HopPlan) -> Decision {
        if plan.reason == HopReason::Start {
            return Decision::Go(None);
        }
        let chain = || {
            let mut c = self.chain();
            c.push(plan.server());
            c
        };
        if self.tried.contains(&plan.key()) {
            return Decision::Refuse(Refusal::Loop { chain: chain() });
        }
        if self.referrals_followed > self.policy.max_hops {
            return Decision::Refuse(Refusal::TooManyHops {
                max: self.policy.max_hops,
                chain: chain(),
            });
        }
        match self.policy.decide(&plan.host) {
            policy::Decision::Follow(why) => Decision::Go(Some(why)),
            policy::Decision::Ask(question) => Decision::Ask(question),
            policy::Decision::Refuse(reason) => Decision::Refuse(Refusal::Policy {
                server: plan.server(),
                host: plan.host.clone(),
                reason,
                never: self.policy.mode == policy::FollowMode::Never,
            }),
        }
    }

    /// The answer to [`Decision::Ask`]: `Ok` to go, else the refusal to report.
    pub fn consent(&self, plan: &HopPlan, yes: bool) -> Result<(), Refusal> {
        if yes {
            Ok(())
        } else {
            Err(Refusal::Declined {
                server: plan.server(),
                host: plan.host.clone(),
            })
        }
    }
}

/// The TLS mode for every hop after the first: never below the first connection's level. An encrypted connection is
/// followed with implicit TLS when it used implicit TLS, and with required STARTTLS otherwise (opportunistic STARTTLS
/// that did get TLS, or a STARTTLS done by hand in the shell); a plaintext connection keeps its mode.
pub fn tls_floor(mode: TlsMode, encrypted: bool) -> TlsMode {
    match (encrypted, mode) {
        (true, TlsMode::Implicit) => TlsMode::Implicit,
        (true, _) => TlsMode::StartTls,
        (false, mode) => mode,
    }
}

#[cfg(test)]
mod tests;
