//! The referral-following policy: to which hosts imapref may send the password without asking.
//!
//! RFC 5092 (sections 3.2 and 10) and RFC 2221 warn that a referral can be used to catch passwords. imapref's trusted
//! set is:
//! - the host the user named on the command line;
//! - loopback (`localhost`, 127.0.0.0/8, `::1`), but only when the named host is itself loopback: on a shared host, a
//!   referral from a real server to `imap://victim@127.0.0.89:PORT/` would hand the password to whatever listens there;
//! - hosts in the named host's domain (for `imap1.example.com`, any `*.example.com`);
//! - hosts matching an `--allow-host PATTERN` (`*` matches any run of characters; case-insensitive).
//!
//! With `--follow=auto` a trusted host is followed, another is asked about on a terminal and refused without one.
//! `--follow=ask` asks for every hop on a terminal (refusing without one); `--follow=never` follows nothing.

use std::net::IpAddr;

use serde::Serialize;

/// How referrals are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowMode {
    /// Follow to trusted hosts; ask about others on a terminal, refuse without one.
    #[default]
    Auto,
    /// Ask before every hop (refuse without a terminal).
    Ask,
    /// Never follow; report the referral only.
    Never,
}

/// The policy in force.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// The mode.
    pub mode: FollowMode,
    /// The most referrals followed in one probe (RFC 2221 says a client must not go past 10 without asking).
    pub max_hops: usize,
    /// `--allow-host` patterns.
    pub allow_hosts: Vec<String>,
    /// The host the user named.
    pub named_host: String,
    /// Whether a person can be asked (a terminal on stdin and stderr).
    #[serde(skip)]
    pub interactive: bool,
}

/// What the policy says about one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Follow; the reason names the rule that trusts the host.
    Follow(String),
    /// Ask the person first.
    Ask(String),
    /// Do not follow; the reason says how to allow it.
    Refuse(String),
}

impl Policy {
    /// Decides about sending the password to `host`.
    pub fn decide(&self, host: &str) -> Decision {
        if self.mode == FollowMode::Never {
            return Decision::Refuse("--follow=never: referrals are reported, not followed".into());
        }
        let trusted = self.trust_reason(host);
        let how_to_allow = self.advice(host, false);
        match (self.mode, trusted, self.interactive) {
            (FollowMode::Auto, Some(reason), _) => Decision::Follow(reason),
            (_, _, true) => Decision::Ask(format!("{host} is not a host you named; send the password there?")),
            (FollowMode::Ask, Some(_), false) => {
                Decision::Refuse(format!("--follow=ask needs a terminal to ask on; {how_to_allow}"))
            }
            (_, _, false) => {
                Decision::Refuse(format!("{host} is not in the trusted set and there is no terminal to ask on; {how_to_allow}"))
            }
        }
    }

    /// How to rerun so that a referral to `host` that this policy refused (or that the person declined, when
    /// `declined`) is followed: each flag it names changes [`Policy::decide`]'s answer, and no flag that does not
    /// (`--allow-host` does not override `--follow=never`, nor stop `--follow=ask` from asking). Lower case, no full
    /// stop; tests check each case against `decide`.
    pub fn advice(&self, host: &str, declined: bool) -> String {
        let allow = if self.trust_reason(host).is_some() {
            String::new()
        } else {
            format!(" --allow-host {host}")
        };
        match (self.mode, declined) {
            (FollowMode::Never, _) => {
                format!("rerun with --follow=auto{allow} instead of --follow=never to follow it")
            }
            (FollowMode::Ask, true) => format!(
                "rerun and answer y to follow it, or rerun with --follow=auto{allow} to follow it without being asked"
            ),
            (FollowMode::Ask, false) => {
                format!("run it on a terminal to be asked, or rerun with --follow=auto{allow}")
            }
            (FollowMode::Auto, true) => {
                format!("rerun with --allow-host {host} to follow it without being asked")
            }
            (FollowMode::Auto, false) => format!(
                "rerun with --allow-host {host} if you trust that server, or run it on a terminal to be asked"
            ),
        }
    }

    /// Why `host` is trusted, or `None`.
    pub fn trust_reason(&self, host: &str) -> Option<String> {
        let host_l = host.trim_end_matches('.').to_ascii_lowercase();
        let named = self.named_host.trim_end_matches('.').to_ascii_lowercase();
        if host_l == named {
            return Some("the host you named".into());
        }
        if is_loopback(&host_l) && is_loopback(&named) {
            return Some("loopback, like the host you named".into());
        }
        if let Some(domain) = parent_domain(&named) {
            if host_l.ends_with(&format!(".{domain}")) {
                return Some(format!("in the named host's domain ({domain})"));
            }
        }
        self.allow_hosts
            .iter()
            .find(|p| glob_match(&p.to_ascii_lowercase(), &host_l))
            .map(|p| format!("--allow-host {p}"))
    }
}

/// True for `localhost`, `*.localhost` and loopback addresses.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `imap1.example.com` → `example.com`; nothing for IP addresses or names with fewer than three labels (the domain of
/// `example.com` would be a public suffix).
fn parent_domain(host: &str) -> Option<String> {
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    (labels.len() >= 3).then(|| labels[1..].join("."))
}

/// `*` matches any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: FollowMode, interactive: bool) -> Policy {
        Policy {
            mode,
            max_hops: 10,
            allow_hosts: vec!["*.partner.net".into()],
            named_host: "imap1.example.com".into(),
            interactive,
        }
    }

    #[test]
    fn trusted_set() {
        let p = policy(FollowMode::Auto, false);
        assert!(matches!(p.decide("IMAP1.example.com"), Decision::Follow(_)));
        assert!(
            matches!(p.decide("127.0.0.89"), Decision::Refuse(_)),
            "loopback is not trusted when a real server was named"
        );
        assert!(matches!(p.decide("localhost"), Decision::Refuse(_)));
        assert!(matches!(p.decide("imap2.example.com"), Decision::Follow(_)));
        assert!(matches!(p.decide("mx.partner.net"), Decision::Follow(_)));
        assert!(matches!(
            p.decide("evil.example.com.attacker.org"),
            Decision::Refuse(_)
        ));
        assert!(matches!(p.decide("partner.net"), Decision::Refuse(_)));
    }

    #[test]
    fn loopback_is_trusted_when_the_named_host_is_loopback() {
        for named in ["127.0.0.1", "localhost", "::1", "imap.localhost", "[::1]"] {
            let p = Policy {
                named_host: named.into(),
                allow_hosts: Vec::new(),
                ..policy(FollowMode::Auto, false)
            };
            for host in [
                "127.0.0.2",
                "::1",
                "localhost",
                "x.localhost",
                "127.255.0.1",
            ] {
                assert_eq!(
                    p.trust_reason(host).as_deref(),
                    if host.eq_ignore_ascii_case(named) {
                        Some("the host you named")
                    } else {
                        Some("loopback, like the host you named")
                    },
                    "{host} from {named}"
                );
            }
            assert_eq!(p.trust_reason("10.0.0.1"), None);
            assert_eq!(p.trust_reason("notlocalhost"), None);
            assert_eq!(p.trust_reason("localhost.evil.org"), None);
        }
    }

    #[test]
    fn a_pattern_without_a_star_matches_that_host_only() {
        let p = Policy {
            allow_hosts: vec!["mail.partner.net".into()],
            ..policy(FollowMode::Auto, false)
        };
        assert_eq!(
            p.trust_reason("MAIL.partner.net").as_deref(),
            Some("--allow-host mail.partner.net")
        );
        assert_eq!(p.trust_reason("other.partner.net"), None);
        assert_eq!(p.trust_reason("evil.org"), None);
        assert!(glob_match("exact.host", "exact.host"));
        assert!(!glob_match("exact.host", "exact.hosts"));
        assert!(!glob_match("exact.host", "other"));
    }

    #[test]
    fn patterns_with_several_stars() {
        assert!(glob_match("*.mail.*.example.com", "a.mail.eu.example.com"));
        assert!(!glob_match("*.mail.*.example.com", "a.mail.example.com"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXcYYb"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*a*", "bab"));
        assert!(!glob_match("*a*", "bbb"));
        assert!(glob_match("mx*", "mx"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "prefix and suffix may not overlap"
        );
        assert!(
            !glob_match("x*ab*ab*y", "xabQy"),
            "one `ab` cannot match two parts"
        );
        assert!(glob_match("x*ab*ab*y", "xabQaby"));
    }

    #[test]
    fn the_domain_rule_needs_three_labels_and_no_address() {
        let p = Policy {
            named_host: "example.com".into(),
            allow_hosts: Vec::new(),
            ..policy(FollowMode::Auto, false)
        };
        assert_eq!(
            p.trust_reason("evil.com"),
            None,
            "example.com's domain would be com"
        );
        assert_eq!(
            parent_domain("imap1.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(parent_domain("192.168.1.1"), None);
        assert_eq!(parent_domain("example.com"), None);
    }

    #[test]
    fn never_says_nothing_is_followed_and_ask_without_terminal_says_why() {
        let Decision::Refuse(reason) = policy(FollowMode::Never, false).decide("imap1.example.com")
        else {
            panic!("never refuses")
        };
        assert!(reason.contains("--follow=never"), "{reason}");
        assert!(
            !reason.contains("--allow-host"),
            "--allow-host does not override never: {reason}"
        );
        let Decision::Refuse(reason) = policy(FollowMode::Ask, false).decide("imap2.example.com")
        else {
            panic!("ask without a terminal refuses")
        };
        assert!(reason.contains("terminal"), "{reason}");
        assert!(
            reason.contains("rerun with --follow=auto") && !reason.contains("--allow-host"),
            "ask names how to follow without a terminal, and imap2 is trusted already: {reason}"
        );
        let Decision::Refuse(reason) = policy(FollowMode::Ask, false).decide("other.org") else {
            panic!("ask without a terminal refuses")
        };
        assert!(
            reason.contains("--follow=auto --allow-host other.org"),
            "{reason}"
        );
        let Decision::Ask(question) = policy(FollowMode::Auto, true).decide("other.org") else {
            panic!("asks")
        };
        assert!(question.contains("other.org"), "{question}");
        let Decision::Follow(why) = policy(FollowMode::Auto, false).decide("imap2.example.com")
        else {
            panic!("follows")
        };
        assert_eq!(why, "in the named host's domain (example.com)");
    }

    /// The policy a rerun with the flags `advice` names would have (`--follow=X`, `--allow-host H`).
    fn rerun_with(p: &Policy, advice: &str) -> Policy {
        let mut p = p.clone();
        let words: Vec<&str> = advice.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            match *w {
                "--follow=auto" => p.mode = FollowMode::Auto,
                "--follow=ask" => p.mode = FollowMode::Ask,
                "--allow-host" => p.allow_hosts.push(words[i + 1].to_string()),
                _ => {}
            }
        }
        p
    }

    #[test]
    fn every_advice_works_when_followed() {
        // Every mode, a trusted and an untrusted host, with and without a terminal: wherever the policy refuses, or
        // the person declines, the advice's flags make the rerun follow (with no terminal), or ask (when it says to
        // run on a terminal or answer y).
        for mode in [FollowMode::Auto, FollowMode::Ask, FollowMode::Never] {
            for host in ["imap2.example.com", "other.org"] {
                for interactive in [false, true] {
                    let p = policy(mode, interactive);
                    let advice = match p.decide(host) {
                        Decision::Follow(_) => continue,
                        Decision::Ask(_) => p.advice(host, true),
                        Decision::Refuse(reason) => {
                            let advice = p.advice(host, false);
                            assert!(
                                reason.contains(&advice) || mode == FollowMode::Never,
                                "{reason}"
                            );
                            advice
                        }
                    };
                    let case = format!("{mode:?} {host} interactive={interactive}: {advice}");
                    let rerun = Policy {
                        interactive: false,
                        ..rerun_with(&p, &advice)
                    };
                    assert!(
                        matches!(rerun.decide(host), Decision::Follow(_)),
                        "the flags of the advice do not make it follow: {case}"
                    );
                    if advice.contains("terminal") || advice.contains("answer y") {
                        let on_terminal = Policy {
                            interactive: true,
                            ..p.clone()
                        };
                        assert!(
                            matches!(on_terminal.decide(host), Decision::Ask(_)),
                            "on a terminal it would not ask: {case}"
                        );
                    }
                    // Only the flags that change the answer: no --allow-host for a trusted host, none with never.
                    if p.trust_reason(host).is_some() {
                        assert!(!advice.contains("--allow-host"), "{case}");
                    }
                    if mode != FollowMode::Auto {
                        assert!(advice.contains("--follow=auto"), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn refusal_says_how_to_allow() {
        let Decision::Refuse(reason) = policy(FollowMode::Auto, false).decide("other.org") else {
            panic!("must refuse")
        };
        assert!(reason.contains("--allow-host other.org"), "{reason}");
    }

    #[test]
    fn modes() {
        assert!(matches!(
            policy(FollowMode::Auto, true).decide("other.org"),
            Decision::Ask(_)
        ));
        assert!(matches!(
            policy(FollowMode::Ask, true).decide("127.0.0.1"),
            Decision::Ask(_)
        ));
        assert!(matches!(
            policy(FollowMode::Ask, false).decide("127.0.0.1"),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            policy(FollowMode::Never, true).decide("127.0.0.1"),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("mail*.example.com", "mail2.example.com"));
        assert!(!glob_match("mail*.example.com", "mail2.example.org"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*a", "a"));
    }
}
