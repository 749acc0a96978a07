//! The voter's side: one vote per term, the promise and its end, better
//! sites, pause and cooldown, lease heartbeats, releases.

use super::*;

#[test]
fn a_voter_grants_one_vote_per_term_even_after_its_promise_ends() {
    use crate::Refusal::{AlreadyVoted, StaleTerm};
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    w.handle_message(at(10_000), a, vote(5));
    assert_eq!(answer(&mut w), Some((true, None)));
    w.handle_message(at(10_000 + LEASE_MS + 1), b, vote(5));
    assert_eq!(answer(&mut w), Some((false, Some(AlreadyVoted))), "a second vote in term 5");
    w.handle_message(at(20_000), b, vote(4));
    assert_eq!(answer(&mut w), Some((false, Some(StaleTerm))));
    w.handle_message(at(20_000), a, vote(5));
    assert_eq!(answer(&mut w), Some((true, None)), "asking again for the same vote is answered the same");
}

#[test]
fn a_voter_is_free_exactly_when_its_promise_ends() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    w.handle_message(at(10_000), a, lease_heartbeat(5, 0, PauseSetting::default()));
    drain(&mut w);
    w.handle_message(at(10_000 + LEASE_MS - 1), b, vote(6));
    assert_eq!(answer(&mut w), Some((false, Some(crate::Refusal::LeaseHeld))));
    w.handle_message(at(10_000 + LEASE_MS), b, vote(7));
    assert_eq!(answer(&mut w), Some((true, None)), "the promise ran out at its end");
}

#[test]
fn a_voter_prefers_a_better_site_that_can_win() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    let status = heartbeat(Term(0), report());
    w.handle_message(at(10_000), a, Message::Heartbeat(status));
    w.handle_message(at(10_000), b, vote(1));
    assert_eq!(answer(&mut w), Some((false, Some(crate::Refusal::BetterCandidate))));
    // A better site that cannot reach a majority is no reason to refuse.
    let alone = Heartbeat { report: SiteReport { sees_quorum: false, ..report() }, ..status };
    w.handle_message(at(10_100), a, Message::Heartbeat(alone));
    w.handle_message(at(10_100), b, vote(1));
    assert_eq!(answer(&mut w), Some((true, None)));
}

#[test]
fn pause_and_cooldown_refuse_every_site_but_the_last_chosen() {
    use crate::Refusal::{Cooldown, Paused};
    let (a, b) = (NodeId(0), NodeId(1));
    let pause = PauseSetting { version: 1, by: 0, paused: true };
    let mut w = witness();
    w.handle_message(at(10_000), a, lease_heartbeat(5, 0, pause));
    drain(&mut w);
    let free = 10_000 + LEASE_MS;
    w.handle_message(at(free), b, vote(6));
    assert_eq!(answer(&mut w), Some((false, Some(Paused))));
    w.handle_message(at(free), a, vote(6));
    assert_eq!(answer(&mut w), Some((true, None)), "the last chosen site may reclaim while paused");

    let mut w = witness();
    w.handle_message(at(10_000), a, lease_heartbeat(5, 20_000, PauseSetting::default()));
    drain(&mut w);
    w.handle_message(at(10_000 + 20_000 - 1), b, vote(6));
    assert_eq!(answer(&mut w), Some((false, Some(Cooldown))));
    w.handle_message(at(10_000 + 20_000), b, vote(7));
    assert_eq!(answer(&mut w), Some((true, None)), "the cooldown is over at its end");
}

#[test]
fn a_lease_heartbeat_binds_a_voter_in_its_term_and_keeps_its_vote() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    w.handle_message(at(10_000), a, vote(5));
    drain(&mut w);
    w.handle_message(at(10_100), a, lease_heartbeat(5, 0, PauseSetting::default()));
    assert_eq!(heartbeat_replies(&mut w), vec![(5, true)]);
    assert_eq!((w.durable().term, w.durable().voted_for), (Term(5), Some(a)), "the vote in term 5 stays");
    w.handle_message(at(10_200), b, lease_heartbeat(4, 0, PauseSetting::default()));
    assert_eq!(heartbeat_replies(&mut w), vec![(5, false)], "an older term is refused");
    assert_eq!(w.status(at(10_200)).active_site, Some(a));
    w.handle_message(at(10_300), b, lease_heartbeat(6, 0, PauseSetting::default()));
    assert_eq!(heartbeat_replies(&mut w), vec![(6, true)], "a newer term is followed");
    assert_eq!((w.durable().term, w.status(at(10_300)).active_site), (Term(6), Some(b)));
}

#[test]
fn a_release_moves_only_a_grant_its_sender_holds() {
    let (a, b) = (NodeId(0), NodeId(1));
    let acks = |n: &mut Node| {
        drain(n).iter().filter(|a| matches!(a, Action::Send { message: Message::ReleaseAck { .. }, .. })).count()
    };
    let mut w = witness();
    w.handle_message(at(10_000), b, lease_heartbeat(6, 0, PauseSetting::default()));
    drain(&mut w);
    // Site-a cannot give away what site-b holds.
    w.handle_message(at(10_100), a, Message::ReleaseLease { term: Term(7), to: a });
    assert_eq!(acks(&mut w), 0);
    w.handle_message(at(10_200), a, vote(8));
    assert_eq!(answer(&mut w), Some((false, Some(crate::Refusal::LeaseHeld))));
    // An old release changes nothing either.
    w.handle_message(at(10_300), b, Message::ReleaseLease { term: Term(5), to: a });
    assert_eq!(acks(&mut w), 0);
    // The holder moves its grant: acknowledged, and site-a may now be elected.
    w.handle_message(at(10_400), b, Message::ReleaseLease { term: Term(8), to: a });
    assert_eq!(acks(&mut w), 1);
    assert_eq!(w.status(at(10_400)).active_site, None, "the releasing site is no longer followed");
    w.handle_message(
        at(10_500),
        a,
        Message::Vote(VoteRequest { term: Term(9), report: report(), approved: false, handoff: true }),
    );
    assert_eq!(answer(&mut w), Some((true, None)));
}

#[test]
fn a_release_in_the_voters_own_term_keeps_its_vote_and_only_the_sender_is_forgotten() {
    let (a, b) = (NodeId(0), NodeId(1));
    let mut w = witness();
    w.handle_message(at(10_000), b, vote(6));
    w.handle_message(at(10_050), b, lease_heartbeat(6, 0, PauseSetting::default()));
    drain(&mut w);
    w.handle_message(at(10_100), a, Message::ReleaseLease { term: Term(6), to: a });
    assert_eq!(w.status(at(10_100)).active_site, Some(b), "site-a cannot make the voter forget site-b");
    w.handle_message(at(10_200), b, Message::ReleaseLease { term: Term(6), to: a });
    assert_eq!((w.durable().term, w.durable().voted_for), (Term(6), Some(b)), "the vote in term 6 stays");
    w.handle_message(at(10_300), b, Message::ReleaseLease { term: Term(7), to: a });
    assert_eq!(w.durable().term, Term(7), "a newer term is adopted");
}

#[test]
fn status_heartbeats_spread_newer_terms_to_all_but_an_elected_site() {
    let status = Message::Heartbeat(Heartbeat {
        term: Term(9),
        lease: None,
        report: report(),
        pause: PauseSetting::default(),
        proposal: Some(crate::message::ProposalNotice {
            target: NodeId(1),
            reason: crate::message::ProposalReason::ManualMode,
            age_ms: 400,
        }),
        maintenance: Default::default(),
    });
    let mut w = witness();
    w.handle_message(at(10_000), NodeId(1), status);
    assert_eq!(w.durable().term, Term(9));
    let pending = w.status(at(10_000)).pending_failover.expect("the proposal it carries");
    assert_eq!(pending.since, at(10_000 - 400), "raised 400 ms before it arrived");
    let (mut a, now, term) = active_site_a();
    a.handle_message(now, NodeId(1), status);
    assert_eq!(a.durable().term, term, "a status heartbeat does not depose an elected site");
    assert!(a.is_active(now));
}
