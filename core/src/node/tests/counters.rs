//! No input can push a counter to its end: messages, fences and persisted
//! state beyond `MAX_TERM` are refused, and the last term is never used twice.

use super::*;
use crate::message::{HeartbeatReply, VoteReply, MAX_TERM};

#[test]
fn the_term_after_the_last_one_does_not_exist() {
    assert_eq!(Term(MAX_TERM - 1).next(), Some(Term(MAX_TERM)));
    assert_eq!(Term(MAX_TERM).next(), None);
}

#[test]
fn messages_with_counters_beyond_the_bound_are_ignored_entirely() {
    let huge = [MAX_TERM + 1, u64::MAX];
    for t in huge {
        let term = Term(t);
        let req = VoteRequest { term, report: report(), approved: true, handoff: true };
        let reply =
            VoteReply { term, granted: false, refusal: Some(crate::Refusal::StaleTerm), lease_held_ms: 0, bound_ms: 0 };
        let pause = PauseSetting { version: t, by: 0, paused: true };
        let messages = [
            Message::PreVote(req),
            Message::Vote(req),
            Message::PreVoteReply(reply),
            Message::VoteReply(reply),
            lease_heartbeat(t, 0, PauseSetting::default()),
            lease_heartbeat(1, 0, pause),
            Message::HeartbeatReply(HeartbeatReply { term, seq: 1, granted: true, bound_ms: full_lease_ms() }),
            Message::ReleaseLease { term, to: NodeId(1) },
            Message::ReleaseAck { term },
            Message::TimeoutNow { term },
        ];
        for message in messages {
            let mut w = witness();
            let before = *w.durable();
            w.handle_message(at(10_000), NodeId(0), message);
            assert_eq!(drain(&mut w), vec![], "{message:?} was answered");
            assert_eq!(*w.durable(), before, "{message:?} changed the state");
            assert_eq!(w.status(at(10_000)).peers[0].last_seen_ago, None, "{message:?} counted as a sign of life");
        }
    }
    // The bound itself is a valid term.
    let mut w = witness();
    w.handle_message(at(10_000), NodeId(0), vote(MAX_TERM));
    assert_eq!(answer(&mut w), Some((true, None)));
    assert_eq!(w.durable().term, Term(MAX_TERM));
}

#[test]
fn a_node_at_the_last_term_never_runs_again() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let cfg = ClusterConfig { members, timers: Timers::default(), policy: Policy::default() };
    let last = DurableState { term: Term(MAX_TERM), ..DurableState::default() };
    let mut a = Node::new(Arc::new(cfg), NodeId(0), last, at(0), 1).expect("the bound itself is valid");
    assert!(!runs_at(&mut a, at(10_000)));
    assert_eq!(a.command(at(10_000), crate::Command::ForcePromote), Err(crate::CommandError::TermsExhausted));
    a.handle_message(at(10_000), NodeId(1), Message::TimeoutNow { term: Term(MAX_TERM) });
    assert!(!drain(&mut a).iter().any(|x| matches!(x, Action::Send { message: Message::Vote(_), .. })));
    assert_eq!(a.durable().term, Term(MAX_TERM));
}

#[test]
fn a_persisted_state_beyond_the_bound_is_refused_at_start() {
    let cfg = Arc::new(ClusterConfig {
        members: vec![Member::site("site-a", 1)],
        timers: Timers::default(),
        policy: Policy::default(),
    });
    let corrupt = [
        DurableState { term: Term(MAX_TERM + 1), ..DurableState::default() },
        DurableState { pause: PauseSetting { version: u64::MAX, by: 0, paused: true }, ..DurableState::default() },
    ];
    for state in corrupt {
        let err = Node::new(cfg.clone(), NodeId(0), state, at(0), 1).expect_err("refused");
        assert!(matches!(err, super::super::StartError::CounterOutOfRange { .. }));
        assert!(err.to_string().contains("restore it from a backup"), "{err}");
    }
}

#[test]
fn a_fence_beyond_the_bound_changes_nothing_and_pause_versions_stop_at_it() {
    let (mut a, now, term) = active_site_a();
    a.fenced(now, crate::Epoch(u64::MAX));
    a.fenced(now, crate::Epoch(MAX_TERM + 1));
    assert!(a.is_active(now));
    assert_eq!(a.durable().term, term);
    let alarmed = |n: &mut Node| drain(n).iter().any(|x| matches!(x, Action::Event(crate::Event::FenceAhead { .. })));
    assert!(!alarmed(&mut a));
    a.fenced(now, crate::Epoch(MAX_TERM));
    assert!(alarmed(&mut a), "the bound itself is a real epoch");
    assert_eq!(a.durable().term, term, "and still never a term");

    let mut w = witness();
    w.handle_message(
        at(10_000),
        NodeId(0),
        lease_heartbeat(1, 0, PauseSetting { version: MAX_TERM, by: 0, paused: true }),
    );
    drain(&mut w);
    w.command(at(10_000), crate::Command::Resume).expect("accepted");
    assert_eq!(w.durable().pause.version, MAX_TERM);
}

#[test]
fn a_cooldown_figure_from_a_peer_is_capped_by_the_own_cooldown() {
    let mut w = witness();
    w.handle_message(at(10_000), NodeId(0), lease_heartbeat(5, u64::MAX, PauseSetting::default()));
    drain(&mut w);
    let own = Timers::default().failover_cooldown;
    let after = at(10_000) + own;
    w.handle_message(after, NodeId(1), vote(6));
    assert_eq!(answer(&mut w), Some((true, None)), "held back beyond the configured cooldown");
}

#[test]
fn a_maintenance_version_beyond_the_bound_is_ignored_or_refused_at_start_and_versions_stop_at_it() {
    for version in [MAX_TERM + 1, u64::MAX] {
        let setting = crate::MaintenanceSetting { version, by: 0, sites: 0b10 };
        let hb = Heartbeat {
            term: Term(1),
            lease: None,
            report: report(),
            pause: PauseSetting::default(),
            proposal: None,
            maintenance: setting,
        };
        let mut w = witness();
        let before = *w.durable();
        w.handle_message(at(10_000), NodeId(0), Message::Heartbeat(hb));
        assert_eq!(*w.durable(), before, "a setting beyond the bound pinned the register");
        let cfg = Arc::new(ClusterConfig {
            members: vec![Member::site("site-a", 1)],
            timers: Timers::default(),
            policy: Policy::default(),
        });
        let state = DurableState { maintenance: setting, ..DurableState::default() };
        let err = Node::new(cfg, NodeId(0), state, at(0), 1).expect_err("refused");
        assert!(
            matches!(err, super::super::StartError::CounterOutOfRange { maintenance_version, .. } if maintenance_version == version)
        );
    }
    let mut w = witness();
    let last = crate::MaintenanceSetting { version: MAX_TERM, by: 0, sites: 0b10 };
    let hb = Heartbeat {
        term: Term(1),
        lease: None,
        report: report(),
        pause: PauseSetting::default(),
        proposal: None,
        maintenance: last,
    };
    w.handle_message(at(10_000), NodeId(0), Message::Heartbeat(hb));
    assert_eq!(w.durable().maintenance, last, "the bound itself is a valid version");
    w.command(at(10_000), crate::Command::Maintenance { site: NodeId(1), on: false }).expect("accepted");
    assert_eq!(w.durable().maintenance.version, MAX_TERM);
    assert!(!w.durable().maintenance.contains(NodeId(1)));
}
