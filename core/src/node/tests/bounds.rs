//! Leases bounded by what the voters promised, whatever each node's own
//! config says, and a quiet period that outlasts a lease shortened across a
//! restart.

use super::*;
use crate::message::{HeartbeatReply, VoteReply};
use crate::StartError;

const SHORT_MS: u64 = 1000;

/// The binding `n`'s last vote or heartbeat answer carried.
fn bound_sent(n: &mut Node) -> Option<u64> {
    drain(n).into_iter().find_map(|a| match a {
        Action::Send { message: Message::VoteReply(r), .. } => Some(r.bound_ms),
        Action::Send { message: Message::HeartbeatReply(r), .. } => Some(r.bound_ms),
        _ => None,
    })
}

fn three() -> Vec<Member> {
    vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")]
}

/// A node of `three()` restarted at `at(0)` from a state whose grants bound
/// it for `bound_ms`.
fn restarted(id: u8, bound_ms: u64) -> Result<Node, StartError> {
    let cfg = ClusterConfig { members: three(), timers: Timers::default(), policy: Policy::default() };
    let durable = DurableState { bound_ms, ..DurableState::default() };
    Node::new(Arc::new(cfg), NodeId(id), durable, at(0), 7)
}

fn persisted_bounds(n: &mut Node) -> Vec<u64> {
    drain(n)
        .into_iter()
        .filter_map(|a| match a {
            Action::Persist(d) => Some(d.bound_ms),
            _ => None,
        })
        .collect()
}

#[test]
fn grants_say_how_long_they_bind_the_voter_and_refusals_bind_nothing() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    w.handle_message(at(10_000), a, vote(5));
    assert_eq!(bound_sent(&mut w), Some(LEASE_MS));
    w.handle_message(at(10_000), b, vote(5));
    assert_eq!(bound_sent(&mut w), Some(0), "a refused vote binds nothing");
    w.handle_message(at(10_500), a, lease_heartbeat(5, 0, PauseSetting::default()));
    assert_eq!(bound_sent(&mut w), Some(LEASE_MS));
    w.handle_message(at(10_600), a, lease_heartbeat(4, 0, PauseSetting::default()));
    assert_eq!(bound_sent(&mut w), Some(0), "a refused renewal binds nothing");
}

#[test]
fn an_elected_sites_lease_is_the_shortest_binding_its_votes_promised() {
    let (mut a, now, term) = campaigning_site_a();
    let w = NodeId(2);
    a.handle_message(now, w, Message::PreVoteReply(yes(term)));
    drain(&mut a);
    let short = VoteReply { bound_ms: SHORT_MS, ..yes(term) };
    a.handle_message(now, w, Message::VoteReply(short));
    assert_eq!(a.status(now).role, RoleName::Promoting);
    let t = Timers::default();
    let bound = Duration::from_millis(SHORT_MS);
    assert_eq!(lease_end(&a, now), now + bound - t.drift_margin_for(bound));
}

#[test]
fn a_renewal_lasts_the_shortest_binding_acknowledged_and_never_more_than_the_own_lease() {
    let (mut a, now, term) = active_site_a();
    let t = Timers::default();
    let later = now + Duration::from_millis(2500);
    let round = renewal_round(&mut a, later);
    let reply = |bound_ms| Message::HeartbeatReply(HeartbeatReply { term, seq: round.seq, granted: true, bound_ms });
    a.handle_message(later, NodeId(2), reply(10 * LEASE_MS));
    assert_eq!(lease_end(&a, later), later + t.lease_duration - t.drift_margin(), "capped by its own lease");
    let later = later + Duration::from_millis(1000);
    let round = renewal_round(&mut a, later);
    let reply = |bound_ms| Message::HeartbeatReply(HeartbeatReply { term, seq: round.seq, granted: true, bound_ms });
    let before = lease_end(&a, later);
    a.handle_message(later, NodeId(2), reply(SHORT_MS));
    assert_eq!(lease_end(&a, later), before, "a short binding does not extend a longer lease");
    let later = later + Duration::from_millis(1100);
    let round = renewal_round(&mut a, later);
    let reply = |bound_ms| Message::HeartbeatReply(HeartbeatReply { term, seq: round.seq, granted: true, bound_ms });
    a.handle_message(later, NodeId(2), reply(SHORT_MS));
    let bound = Duration::from_millis(SHORT_MS);
    assert_eq!(lease_end(&a, later), later + bound - t.drift_margin_for(bound));
    a.handle_message(later, NodeId(1), reply(LEASE_MS));
    assert_eq!(lease_end(&a, later), later + bound - t.drift_margin_for(bound), "a round counts its shortest");
}

#[test]
fn a_fresh_node_records_its_lease_before_anything_else() {
    let mut w = restarted(2, 0).expect("starts");
    assert_eq!(w.poll_action(), Some(Action::Persist(DurableState { bound_ms: LEASE_MS, ..DurableState::default() })));
    let mut w = restarted(2, LEASE_MS).expect("starts");
    assert_eq!(persisted_bounds(&mut w), Vec::<u64>::new(), "nothing to record");
}

#[test]
fn a_restart_under_a_shorter_lease_stays_quiet_as_long_as_the_old_one() {
    let (a, b) = (NodeId(0), NodeId(1));
    let old = 2 * LEASE_MS;
    let mut w = restarted(2, old).expect("starts");
    assert_eq!(persisted_bounds(&mut w), Vec::<u64>::new(), "the old binding is kept until it has run out");
    // A renewal in the quiet period binds to the active site, but never for
    // less than the quiet period still runs.
    w.handle_message(at(1000), a, lease_heartbeat(5, 0, PauseSetting::default()));
    assert_eq!(bound_sent(&mut w), Some(old - 1000));
    w.handle_message(at(old - 1), b, vote(6));
    assert_eq!(answer(&mut w), Some((false, Some(crate::Refusal::LeaseHeld))));
    assert_eq!(w.deadlines.get(Timer::QuietPeriodEnds), Some(at(old)));
    w.handle_timeout(at(old));
    assert_eq!(persisted_bounds(&mut w), vec![LEASE_MS], "then it comes down to the configured lease");
    w.handle_message(at(old), b, vote(7));
    assert_eq!(answer(&mut w), Some((true, None)));
}

#[test]
fn a_recorded_binding_beyond_a_day_is_refused_at_start() {
    let day_ms = 24 * 3_600_000;
    assert!(restarted(2, day_ms).is_ok());
    assert_eq!(restarted(2, day_ms + 1).err(), Some(StartError::BoundOutOfRange { bound_ms: day_ms + 1 }));
}

#[test]
fn a_grant_that_does_not_say_how_long_it_binds_counts_as_one_own_lease() {
    // Builds from before grants carried their binding send 0.
    let (mut a, now, term) = campaigning_site_a();
    let w = NodeId(2);
    a.handle_message(now, w, Message::PreVoteReply(yes(term)));
    drain(&mut a);
    a.handle_message(now, w, Message::VoteReply(VoteReply { bound_ms: 0, ..yes(term) }));
    let t = Timers::default();
    assert_eq!(lease_end(&a, now), now + t.lease_duration - t.drift_margin());
    let (mut a, now, term) = active_site_a();
    let later = now + Duration::from_millis(2500);
    let round = renewal_round(&mut a, later);
    let ack = HeartbeatReply { term, seq: round.seq, granted: true, bound_ms: 0 };
    a.handle_message(later, w, Message::HeartbeatReply(ack));
    assert_eq!(lease_end(&a, later), later + t.lease_duration - t.drift_margin());
}
