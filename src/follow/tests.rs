//! The follower's rules, one by one: loops, the hop budget, the TLS floor, replicas and their cap, the URL's user, the
//! policy and consent.

use super::policy::{FollowMode, Policy};
use super::*;

fn policy(named: &str) -> Policy {
    Policy {
        mode: FollowMode::Auto,
        max_hops: 10,
        allow_hosts: Vec::new(),
        named_host: named.into(),
        interactive: false,
    }
}

fn start(host: &str, port: u16, mode: TlsMode) -> HopPlan {
    HopPlan {
        host: host.into(),
        port,
        user: "DOMname/UserN/AliasN".into(),
        mailbox: "INBOX".into(),
        reason: HopReason::Start,
        tls_mode: mode,
        url_wants_plain: false,
    }
}

fn urls(list: &[&str]) -> Vec<ReferralUrl> {
    list.iter().map(|u| ReferralUrl::parse(u)).collect()
}

#[test]
fn a_login_referral_becomes_the_next_hop_with_the_urls_user() {
    let first = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    assert_eq!(f.decide(&first), Decision::Go(None));
    f.record(&first, false);
    let alts = f
        .alternatives(
            &first,
            ReferralKind::Login,
            &urls(&["imap://redmond%2Freedl%2Fimapf;AUTH=*@127.0.0.1:1431/"]),
        )
        .expect("followable");
    assert_eq!(alts.offered, 1);
    let next = &alts.plans[0];
    assert_eq!(next.server(), "127.0.0.1:1431");
    assert_eq!(next.user, "redmond/reedl/imapf");
    assert_eq!(next.mailbox, "INBOX");
    assert!(!next.url_wants_plain);
    assert_eq!(
        next.reason,
        HopReason::LoginReferral {
            url: "imap://redmond%2Freedl%2Fimapf;AUTH=*@127.0.0.1:1431/".into()
        }
    );
    assert_eq!(
        f.decide(next),
        Decision::Go(Some("the host you named".into()))
    );
    let other_loopback = HopPlan {
        host: "127.0.0.2".into(),
        ..next.clone()
    };
    assert_eq!(
        f.decide(&other_loopback),
        Decision::Go(Some("loopback, like the host you named".into()))
    );
}

#[test]
fn an_empty_user_keeps_the_login_name_and_a_mailbox_referral_names_its_mailbox() {
    let first = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&first, false);
    let alts = f
        .alternatives(
            &first,
            ReferralKind::Mailbox,
            &urls(&["imap://;AUTH=*@127.0.0.1:1432/Shared%20Folder"]),
        )
        .expect("followable");
    assert_eq!(alts.plans[0].user, "DOMname/UserN/AliasN");
    assert_eq!(alts.plans[0].mailbox, "Shared Folder");
    assert!(matches!(
        alts.plans[0].reason,
        HopReason::MailboxReferral { .. }
    ));
    let plain = f
        .alternatives(
            &first,
            ReferralKind::Login,
            &urls(&["imap://referred;AUTH=PLAIN@127.0.0.1:1433/"]),
        )
        .expect("followable");
    assert!(plain.plans[0].url_wants_plain);
    assert_eq!(
        plain.plans[0].mailbox, "INBOX",
        "a login referral's empty mailbox keeps ours"
    );
}

#[test]
fn a_loop_is_refused_with_the_chain() {
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    let b = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://pingpong@127.0.0.1:1431/"]),
        )
        .expect("b")
        .plans
        .remove(0);
    assert!(matches!(f.decide(&b), Decision::Go(_)));
    f.record(&b, false);
    let back_to_a = f
        .alternatives(
            &b,
            ReferralKind::Login,
            &urls(&["imap://DOMname%2FUserN%2FAliasN@127.0.0.1:1430/"]),
        )
        .expect("a again")
        .plans
        .remove(0);
    assert_eq!(
        f.decide(&back_to_a),
        Decision::Refuse(Refusal::Loop {
            chain: vec![
                "127.0.0.1:1430".into(),
                "127.0.0.1:1431".into(),
                "127.0.0.1:1430".into()
            ]
        })
    );
    // The same server with another user is no loop; the host's case does not matter.
    let other_user = HopPlan {
        user: "someone-else".into(),
        ..back_to_a.clone()
    };
    assert!(matches!(f.decide(&other_user), Decision::Go(_)));
    let upper = HopPlan {
        host: "LOCALHOST".into(),
        ..b.clone()
    };
    let lower = HopPlan {
        host: "localhost".into(),
        ..b.clone()
    };
    f.record(&upper, false);
    assert!(matches!(
        f.decide(&lower),
        Decision::Refuse(Refusal::Loop { .. })
    ));
}

#[test]
fn back_forgets_the_last_hop_so_it_may_be_followed_again() {
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    let b = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1431/"]),
        )
        .expect("b")
        .plans
        .remove(0);
    f.record(&b, false);
    assert_eq!(f.chain().len(), 2);
    f.back();
    assert_eq!(f.chain(), ["127.0.0.1:1430"]);
    let again = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1431/"]),
        )
        .expect("b again")
        .plans
        .remove(0);
    assert!(matches!(f.decide(&again), Decision::Go(_)));
}

#[test]
fn the_hop_budget_counts_referrals() {
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let one_hop = Policy {
        max_hops: 1,
        ..policy("127.0.0.1")
    };
    let mut f = Follower::new(one_hop, FollowLimits::default());
    f.record(&a, false);
    let b = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1431/"]),
        )
        .expect("b")
        .plans
        .remove(0);
    assert!(
        matches!(f.decide(&b), Decision::Go(_)),
        "one referral is within --max-hops 1"
    );
    f.record(&b, false);
    let c = f
        .alternatives(
            &b,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1432/"]),
        )
        .expect("c")
        .plans
        .remove(0);
    assert_eq!(
        f.decide(&c),
        Decision::Refuse(Refusal::TooManyHops {
            max: 1,
            chain: vec![
                "127.0.0.1:1430".into(),
                "127.0.0.1:1431".into(),
                "127.0.0.1:1432".into()
            ]
        })
    );
}

#[test]
fn later_hops_never_go_below_the_first_hops_tls() {
    for (mode, encrypted, floor) in [
        (TlsMode::Implicit, true, TlsMode::Implicit),
        (TlsMode::StartTls, true, TlsMode::StartTls),
        (TlsMode::StartTlsOpportunistic, true, TlsMode::StartTls),
        (
            TlsMode::StartTlsOpportunistic,
            false,
            TlsMode::StartTlsOpportunistic,
        ),
        (TlsMode::Plain, true, TlsMode::StartTls),
        (TlsMode::Plain, false, TlsMode::Plain),
    ] {
        assert_eq!(
            tls_floor(mode, encrypted),
            floor,
            "{mode:?} encrypted={encrypted}"
        );
        let a = start("imap.example.com", 993, mode);
        let mut f = Follower::new(policy("imap.example.com"), FollowLimits::default());
        f.record(&a, encrypted);
        let next = f
            .alternatives(
                &a,
                ReferralKind::Login,
                &urls(&["imap://u@home.example.com/"]),
            )
            .expect("next")
            .plans
            .remove(0);
        assert_eq!(next.tls_mode, floor);
        assert_eq!(
            next.port,
            floor.default_port(),
            "no port in the URL: the floor's port"
        );
    }
    let mut f = Follower::new(policy("h"), FollowLimits::default());
    f.record(&start("h", 143, TlsMode::Plain), false);
    f.raise_floor(TlsMode::StartTls);
    assert_eq!(f.tls_floor(), Some(TlsMode::StartTls));
    f.raise_floor(TlsMode::Plain);
    assert_eq!(
        f.tls_floor(),
        Some(TlsMode::StartTls),
        "a floor never goes down"
    );
}

#[test]
fn replicas_are_alternatives_in_order_and_capped() {
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    let many: Vec<String> = (0..60)
        .map(|i| format!("imap://;AUTH=*@127.0.0.1:{}/INBOX", 2000 + i))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let alts = f
        .alternatives(&a, ReferralKind::Mailbox, &urls(&many))
        .expect("followable");
    assert_eq!(alts.offered, 60);
    assert_eq!(alts.plans.len(), 10);
    assert_eq!(alts.plans[0].port, 2000);
    assert_eq!(alts.plans[9].port, 2009);
}

#[test]
fn unusable_urls_are_skipped_and_none_usable_is_a_refusal() {
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    let alts = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["http://127.0.0.1/", "imap://u@127.0.0.1:1431/"]),
        )
        .expect("one usable");
    assert_eq!(alts.plans.len(), 1);
    assert_eq!(alts.unusable.len(), 1);
    assert!(
        alts.unusable[0].starts_with("http://127.0.0.1/ ("),
        "{:?}",
        alts.unusable
    );
    let Err(Refusal::BadUrl { errors }) =
        f.alternatives(&a, ReferralKind::Login, &urls(&["http://x/"]))
    else {
        panic!("nothing usable")
    };
    assert_eq!(errors.len(), 1);
    let Err(Refusal::BadUrl { errors }) = f.alternatives(&a, ReferralKind::Login, &[]) else {
        panic!("no URL at all")
    };
    assert_eq!(errors, ["the REFERRAL code names no URL"]);
}

#[test]
fn the_policy_refuses_untrusted_hosts_and_consent_is_the_callers() {
    let a = start("imap.example.com", 143, TlsMode::StartTls);
    let mut f = Follower::new(policy("imap.example.com"), FollowLimits::default());
    f.record(&a, true);
    let evil = f
        .alternatives(&a, ReferralKind::Login, &urls(&["imap://u@evil.org/"]))
        .expect("plan")
        .plans
        .remove(0);
    let Decision::Refuse(Refusal::Policy { host, never, .. }) = f.decide(&evil) else {
        panic!("refused")
    };
    assert_eq!(host, "evil.org");
    assert!(!never);
    let interactive = Follower::new(
        Policy {
            interactive: true,
            ..policy("imap.example.com")
        },
        FollowLimits::default(),
    );
    assert!(matches!(interactive.decide(&evil), Decision::Ask(_)));
    assert_eq!(interactive.consent(&evil, true), Ok(()));
    assert_eq!(
        interactive.consent(&evil, false),
        Err(Refusal::Declined {
            server: "evil.org:143".into(),
            host: "evil.org".into()
        })
    );
    let never = Follower::new(
        Policy {
            mode: FollowMode::Never,
            ..policy("imap.example.com")
        },
        FollowLimits::default(),
    );
    assert!(matches!(
        never.decide(&evil),
        Decision::Refuse(Refusal::Policy { never: true, .. })
    ));
}

#[test]
fn the_current_user_learned_later_counts_for_loops() {
    let a = HopPlan {
        user: String::new(),
        ..start("127.0.0.1", 1430, TlsMode::Plain)
    };
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    f.set_current_user("pingpong");
    let from = HopPlan {
        user: "pingpong".into(),
        ..a
    };
    let b = f
        .alternatives(
            &from,
            ReferralKind::Login,
            &urls(&["imap://pingpong@127.0.0.1:1431/"]),
        )
        .expect("b")
        .plans
        .remove(0);
    f.record(&b, false);
    let again = f
        .alternatives(
            &b,
            ReferralKind::Login,
            &urls(&["imap://pingpong@127.0.0.1:1430/"]),
        )
        .expect("a")
        .plans
        .remove(0);
    assert!(matches!(
        f.decide(&again),
        Decision::Refuse(Refusal::Loop { .. })
    ));
}

#[test]
fn a_cancelled_referral_does_not_count_against_the_budget() {
    let one_hop = Policy {
        max_hops: 1,
        ..policy("127.0.0.1")
    };
    let a = start("127.0.0.1", 1430, TlsMode::Plain);
    let mut f = Follower::new(one_hop, FollowLimits::default());
    f.record(&a, false);
    let refer = urls(&["imap://u@127.0.0.1:1431/"]);
    let _ = f
        .alternatives(&a, ReferralKind::Login, &refer)
        .expect("first");
    f.cancel_referral();
    let b = f
        .alternatives(&a, ReferralKind::Login, &refer)
        .expect("again")
        .plans
        .remove(0);
    assert!(
        matches!(f.decide(&b), Decision::Go(_)),
        "the cancelled one is not counted"
    );
}

#[test]
fn raising_the_floor_to_an_equal_level_keeps_it() {
    let mut f = Follower::new(policy("h"), FollowLimits::default());
    f.record(&start("h", 143, TlsMode::StartTls), true);
    f.raise_floor(TlsMode::Implicit);
    assert_eq!(
        f.tls_floor(),
        Some(TlsMode::StartTls),
        "STARTTLS and implicit TLS protect alike"
    );
}

#[test]
fn a_login_referral_with_an_empty_mailbox_keeps_ours_and_a_named_one_is_used() {
    let a = HopPlan {
        mailbox: "Sent".into(),
        ..start("127.0.0.1", 1430, TlsMode::Plain)
    };
    let mut f = Follower::new(policy("127.0.0.1"), FollowLimits::default());
    f.record(&a, false);
    let named = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1431/Archive"]),
        )
        .expect("named")
        .plans
        .remove(0);
    assert_eq!(named.mailbox, "Archive");
    let empty = f
        .alternatives(
            &a,
            ReferralKind::Login,
            &urls(&["imap://u@127.0.0.1:1431/"]),
        )
        .expect("empty")
        .plans
        .remove(0);
    assert_eq!(empty.mailbox, "Sent");
}
