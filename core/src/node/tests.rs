//! Unit tests of one node driven by hand: what it reports in `status`, when
//! it counts as active, and the hygiene of what it sends and accepts. The
//! protocol scenarios (`tests/rules.rs`) pass by these edges.

use std::sync::Arc;
use std::time::Duration;

use super::{LocalHealth, Node};
use crate::action::Action;
use crate::config::{ClusterConfig, Member, NodeId, Policy, Timers};
use crate::durable::DurableState;
use crate::message::{Heartbeat, Message, PauseSetting, SiteReport, Term, VoteRequest};
use crate::status::RoleName;
use crate::time::Instant;

const LEASE_MS: u64 = 3000;

fn node(members: Vec<Member>, id: u8) -> Node {
    let cfg = ClusterConfig { members, timers: Timers::default(), policy: Policy::default() };
    Node::new(Arc::new(cfg), NodeId(id), DurableState::default(), Instant::from_millis(0), 7).expect("valid")
}

fn drain(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

/// A one-site cluster elects itself; returns the node, active, and the time.
fn lone_active_site() -> (Node, Instant) {
    let mut n = node(vec![Member::site("site-a", 1)], 0);
    for _ in 0..20 {
        let (at, _) = n.next_deadline().expect("a timer");
        n.handle_timeout(at);
        for action in drain(&mut n) {
            if let Action::RunPrePromote { epoch } = action {
                n.pre_promote_finished(at, epoch, true);
            }
        }
        if n.is_active(at) {
            drain(&mut n);
            return (n, at);
        }
    }
    panic!("a lone site never elected itself");
}

fn report() -> SiteReport {
    SiteReport { healthy: true, caught_up: true, sees_quorum: true }
}

#[test]
fn an_active_site_is_active_until_its_lease_ends_and_says_so() {
    let (n, now) = lone_active_site();
    let status = n.status(now);
    let epoch = status.epoch.expect("an epoch");
    assert_eq!((status.role, status.active_site), (RoleName::Active, Some(NodeId(0))));
    assert_eq!(n.active_epoch(now), Some(epoch));
    let remaining = status.lease_remaining.expect("a lease");
    assert!(remaining > Duration::ZERO && remaining <= Duration::from_millis(LEASE_MS), "{remaining:?}");
    let end = now + remaining;
    assert!(n.is_active(end - Duration::from_millis(1)));
    assert!(!n.is_active(end), "the lease end is not part of the lease");
    assert_eq!(n.active_epoch(end), None);
    let later = n.status(end);
    assert_eq!((later.role, later.active_site, later.epoch), (RoleName::Standby, None, None));
}

#[test]
fn status_reports_a_followed_site_only_within_a_lease_and_peers_with_their_age() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members.clone(), 1);
    let now = Instant::from_millis(100);
    let renewal = crate::message::LeaseRenewal { seq: 1, cause: crate::ActivationCause::Reclaim, cooldown_ms: 0 };
    let hb = Heartbeat {
        term: Term(4),
        lease: Some(renewal),
        report: report(),
        pause: PauseSetting::default(),
        proposal: None,
    };
    b.handle_message(now, NodeId(0), Message::Heartbeat(hb));
    let status = b.status(now + Duration::from_millis(10));
    assert_eq!((status.role, status.active_site, status.term), (RoleName::Standby, Some(NodeId(0)), Term(4)));
    assert_eq!(status.epoch.map(|e| e.0), Some(4));
    assert_eq!(status.lease_remaining, None, "a follower holds no lease");
    assert_eq!(status.peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![NodeId(0), NodeId(2)]);
    let a = &status.peers[0];
    assert!(a.reachable);
    assert_eq!((a.last_seen_ago, a.report), (Some(Duration::from_millis(10)), Some(report())));
    assert_eq!((status.peers[1].reachable, status.peers[1].last_seen_ago), (false, None));
    // One lease after the heartbeat the active site is no longer known.
    let stale = b.status(now + Duration::from_millis(LEASE_MS));
    assert_eq!((stale.active_site, stale.epoch), (None, None));
    assert!(!stale.peers[0].reachable);
    // A witness always says so, whatever it follows.
    let mut w = node(members, 2);
    w.handle_message(now, NodeId(0), Message::Heartbeat(hb));
    let status = w.status(now);
    assert_eq!((status.role, status.active_site), (RoleName::Witness, Some(NodeId(0))));
}

#[test]
fn status_names_a_candidate_and_a_site_handing_over() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut a = node(members, 0);
    let (at, _) = a.next_deadline().expect("timers");
    let mut now = at;
    for _ in 0..20 {
        if a.status(now).role == RoleName::Candidate {
            break;
        }
        now = a.next_deadline().expect("timers").0;
        a.handle_timeout(now);
        drain(&mut a);
    }
    assert_eq!(a.status(now).role, RoleName::Candidate, "site-a never asked for votes");

    let cfg = ClusterConfig {
        members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
        timers: Timers::default(),
        policy: Policy::default(),
    };
    let mut sim = crate::sim::SimCluster::new(cfg, 5).expect("valid");
    sim.hook_delay_ms = 50;
    let (a, b) = (NodeId(0), NodeId(1));
    let role = |sim: &crate::sim::SimCluster, id| sim.status(id).map(|s| s.role);
    assert!(sim.run_until(30_000, |s| role(s, a) == Some(RoleName::Promoting)), "site-a never promoted");
    assert!(sim.run_until(30_000, |s| s.active() == Some(a)));
    sim.command(a, crate::Command::Switchover { to: Some(b), at: None }).expect("accepted");
    assert_eq!(role(&sim, a), Some(RoleName::HandingOff));
    assert!(sim.run_until(30_000, |s| s.active() == Some(b)));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn messages_from_itself_or_from_no_member_are_ignored() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut w = node(members, 2);
    drain(&mut w);
    let req = VoteRequest { term: Term(9), report: report(), approved: false, handoff: false };
    for from in [NodeId(2), NodeId(3), NodeId(200)] {
        w.handle_message(Instant::from_millis(5000), from, Message::Vote(req));
        assert_eq!(drain(&mut w), vec![], "a vote request from {from} was answered");
    }
    assert_eq!(w.durable().term, Term(0));
}

#[test]
fn requests_go_to_voters_only_and_a_member_without_a_vote_never_answers_one() {
    let mut b = Member::site("site-b", 1);
    b.votes = 0;
    let members = vec![Member::site("site-a", 2), b, Member::witness("witness")];
    let mut a = node(members.clone(), 0);
    let mut asked = Vec::new();
    for _ in 0..20 {
        let (at, _) = a.next_deadline().expect("timers");
        a.handle_timeout(at);
        for action in drain(&mut a) {
            if let Action::Send { to, message: Message::PreVote(_) | Message::Vote(_) } = action {
                asked.push(to);
            }
        }
        if !asked.is_empty() {
            break;
        }
    }
    assert_eq!(asked, vec![NodeId(2)], "only the witness votes besides site-a");
    let mut b = node(members, 1);
    b.set_health(Instant::from_millis(0), LocalHealth::GOOD);
    drain(&mut b);
    let req = VoteRequest { term: Term(1), report: report(), approved: false, handoff: false };
    b.handle_message(Instant::from_millis(5000), NodeId(0), Message::PreVote(req));
    b.handle_message(Instant::from_millis(5000), NodeId(0), Message::Vote(req));
    let answers: Vec<Action> = drain(&mut b).into_iter().filter(|a| matches!(a, Action::Send { .. })).collect();
    assert_eq!(answers, vec![], "a member without a vote answered a vote request");
}

#[test]
fn the_election_timer_waits_a_lease_plus_a_heartbeat_per_better_site_plus_jitter() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let t = Timers::default();
    let armed = |id: u8, seed: u64| {
        let cfg = ClusterConfig { members: members.clone(), timers: t.clone(), policy: Policy::default() };
        let n = Node::new(Arc::new(cfg), NodeId(id), DurableState::default(), Instant::from_millis(1000), seed)
            .expect("valid");
        n.deadlines.get(super::Timer::ElectionTimeout).map(|at| at.as_millis() - 1000)
    };
    let (lease, hb, jitter) = (3000, 1000, 300);
    let b: Vec<u64> = (0..20).map(|seed| armed(1, seed).expect("armed")).collect();
    assert!(b.iter().all(|&d| (lease + hb..=lease + hb + jitter).contains(&d)), "{b:?}");
    assert!(b.iter().any(|&d| d != b[0]), "no jitter: {b:?}");
    let a = armed(0, 1).expect("armed");
    assert!((lease..=lease + jitter).contains(&a), "{a}");
    assert_eq!(armed(2, 1), None, "a witness never runs");
}

#[test]
fn a_site_whose_promotion_failed_reports_unhealthy_for_the_backoff() {
    let mut n2 = node(vec![Member::site("site-a", 1)], 0);
    let mut declined_at = None;
    for _ in 0..20 {
        let (at, _) = n2.next_deadline().expect("a timer");
        n2.handle_timeout(at);
        for action in drain(&mut n2) {
            if let Action::RunPrePromote { epoch } = action {
                n2.pre_promote_finished(at, epoch, false);
                declined_at = Some(at);
            }
        }
        if declined_at.is_some() {
            break;
        }
    }
    let at = declined_at.expect("an election");
    let backoff = Timers::default().declined_backoff;
    assert!(!n2.status(at).local.healthy);
    assert!(!n2.status(at + backoff - Duration::from_millis(1)).local.healthy);
    assert!(n2.status(at + backoff).local.healthy, "healthy again once the backoff is over");
    let (mut n, now) = lone_active_site();
    assert!(n.status(now).local.healthy);
    n.set_health(now, LocalHealth { healthy: false, caught_up: true });
    assert!(!n.status(now).local.healthy);
}

/// The witness of a two-site cluster, past its quiet period.
fn witness() -> Node {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut w = node(members, 2);
    drain(&mut w);
    w
}

fn vote(term: u64) -> Message {
    Message::Vote(VoteRequest { term: Term(term), report: report(), approved: false, handoff: false })
}

/// The answer `n` sent to a vote or pre-vote: (granted, refusal).
fn answer(n: &mut Node) -> Option<(bool, Option<crate::Refusal>)> {
    drain(n).into_iter().find_map(|a| match a {
        Action::Send { message: Message::VoteReply(r) | Message::PreVoteReply(r), .. } => Some((r.granted, r.refusal)),
        _ => None,
    })
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn lease_heartbeat(term: u64, cooldown_ms: u64, pause: PauseSetting) -> Message {
    let renewal = crate::message::LeaseRenewal { seq: 1, cause: crate::ActivationCause::Reclaim, cooldown_ms };
    Message::Heartbeat(Heartbeat { term: Term(term), lease: Some(renewal), report: report(), pause, proposal: None })
}

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
    let status =
        Heartbeat { term: Term(0), lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
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

/// Site-a asking for votes (pre-vote or vote) in its next term.
fn campaigning_site_a() -> (Node, Instant, Term) {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut a = node(members, 0);
    for _ in 0..20 {
        let (now, _) = a.next_deadline().expect("timers");
        a.handle_timeout(now);
        drain(&mut a);
        if a.status(now).role == RoleName::Candidate {
            let term = a.durable().term.next();
            return (a, now, term);
        }
    }
    panic!("site-a never asked for votes");
}

#[test]
fn a_candidate_refused_for_an_old_term_adopts_the_newer_one() {
    let (mut a, now, term) = campaigning_site_a();
    let stale = crate::message::VoteReply {
        term: Term(term.0 + 5),
        granted: false,
        refusal: Some(crate::Refusal::StaleTerm),
        lease_held_ms: 0,
    };
    a.handle_message(now, NodeId(2), Message::PreVoteReply(stale));
    assert_eq!(a.durable().term, Term(term.0 + 5));
    assert_eq!(a.status(now).role, RoleName::Standby);
    a.handle_message(now, NodeId(2), Message::VoteReply(crate::message::VoteReply { term: Term(term.0 + 9), ..stale }));
    assert_eq!(a.durable().term, Term(term.0 + 9), "a vote reply's newer term is adopted too");
}

#[test]
fn refusals_an_operator_can_lift_become_proposals() {
    use crate::message::ProposalReason;
    for (refusal, reason) in [
        (crate::Refusal::Cooldown, ProposalReason::Cooldown),
        (crate::Refusal::CandidateLagging, ProposalReason::TargetLagging),
        (crate::Refusal::NeedsApproval, ProposalReason::ManualMode),
    ] {
        let (mut a, now, term) = campaigning_site_a();
        let no = crate::message::VoteReply { term, granted: false, refusal: Some(refusal), lease_held_ms: 0 };
        a.handle_message(now, NodeId(2), Message::PreVoteReply(no));
        let pending = a.status(now).pending_failover.expect("a proposal");
        assert_eq!((pending.target, pending.reason), (NodeId(0), reason));
    }
}

/// Whether `n`, asked to consider an election at `now`, asks for votes.
fn runs_at(n: &mut Node, now: Instant) -> bool {
    drain(n);
    n.consider_election(now);
    drain(n).iter().any(|a| matches!(a, Action::Send { message: Message::PreVote(_) | Message::Vote(_), .. }))
}

#[test]
fn a_site_does_not_run_while_it_follows_a_live_leader_or_its_checks_fail() {
    let mut b = Member::site("site-b", 1);
    b.votes = 0;
    let members = vec![Member::site("site-a", 2), b, Member::witness("witness")];
    let mut b = node(members, 1);
    b.handle_message(at(10_000), NodeId(0), lease_heartbeat(5, 0, PauseSetting::default()));
    assert!(!runs_at(&mut b, at(10_000 + LEASE_MS - 1)), "ran while the active site's lease may run");
    b.set_health(at(10_000 + LEASE_MS), LocalHealth { healthy: false, caught_up: true });
    assert!(!runs_at(&mut b, at(10_000 + LEASE_MS)), "ran with failing checks");
    b.set_health(at(10_000 + LEASE_MS), LocalHealth::GOOD);
    assert!(runs_at(&mut b, at(10_000 + LEASE_MS)), "did not run once the active site was gone");
}

#[test]
fn a_site_that_declined_promotion_stays_out_for_the_backoff() {
    let mut n = node(vec![Member::site("site-a", 1), Member::witness("witness")], 0);
    let mut declined_at = None;
    for _ in 0..40 {
        let (now, _) = n.next_deadline().expect("timers");
        n.handle_timeout(now);
        // The witness grants whatever is asked.
        for action in drain(&mut n) {
            match action {
                Action::Send { to, message: Message::PreVote(r) } => {
                    let yes =
                        crate::message::VoteReply { term: r.term, granted: true, refusal: None, lease_held_ms: 0 };
                    n.handle_message(now, to, Message::PreVoteReply(yes));
                    for action in drain(&mut n) {
                        if let Action::Send { to, message: Message::Vote(r) } = action {
                            n.handle_message(
                                now,
                                to,
                                Message::VoteReply(crate::message::VoteReply { term: r.term, ..yes }),
                            );
                        }
                    }
                    for action in drain(&mut n) {
                        if let Action::RunPrePromote { epoch } = action {
                            n.pre_promote_finished(now, epoch, false);
                            declined_at = Some(now);
                        }
                    }
                }
                Action::RunPrePromote { epoch } => {
                    n.pre_promote_finished(now, epoch, false);
                    declined_at = Some(now);
                }
                _ => {}
            }
        }
        if declined_at.is_some() {
            break;
        }
    }
    let declined = declined_at.expect("an election");
    let backoff = Timers::default().declined_backoff;
    let after_promises = declined + backoff;
    assert!(!runs_at(&mut n, after_promises - Duration::from_millis(1)));
    assert!(runs_at(&mut n, after_promises));
    assert!(runs_at(&mut n, after_promises + Duration::from_millis(1000)), "kept out after the backoff");
}

#[test]
fn a_site_does_not_run_while_bound_paused_or_outranked() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let (a, w) = (NodeId(0), NodeId(2));
    // Bound by its vote for site-a (no active site known yet).
    let mut b = node(members.clone(), 1);
    b.handle_message(at(10_000), a, vote(5));
    assert!(!runs_at(&mut b, at(10_000 + LEASE_MS - 1)), "ran while bound to site-a");
    assert!(runs_at(&mut b, at(10_000 + LEASE_MS)), "did not run once free");

    let status = |report, paused| {
        let pause = PauseSetting { version: 1, by: 2, paused };
        Message::Heartbeat(Heartbeat { term: Term(0), lease: None, report, pause, proposal: None })
    };
    let alone = SiteReport { sees_quorum: false, ..report() };
    let mut b = node(members.clone(), 1);
    b.handle_message(at(10_000), w, status(report(), true));
    assert!(!runs_at(&mut b, at(10_000)), "ran while paused");
    let mut b = node(members, 1);
    b.handle_message(at(10_000), a, status(report(), false));
    assert!(!runs_at(&mut b, at(10_000)), "ran while a better site can win");
    b.handle_message(at(10_001), a, status(alone, false));
    assert!(runs_at(&mut b, at(10_001)), "a better site that cannot win is no reason to wait");
}

/// The heartbeat replies `n` sent: (term, granted).
fn heartbeat_replies(n: &mut Node) -> Vec<(u64, bool)> {
    drain(n)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { message: Message::HeartbeatReply(r), .. } => Some((r.term.0, r.granted)),
            _ => None,
        })
        .collect()
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
fn timeout_now_starts_an_election_only_in_the_senders_term() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    b.handle_message(at(10_000), NodeId(0), lease_heartbeat(5, 0, PauseSetting::default()));
    drain(&mut b);
    b.handle_message(at(10_100), NodeId(0), Message::TimeoutNow { term: Term(4) });
    assert!(!drain(&mut b).iter().any(|a| matches!(a, Action::Send { message: Message::Vote(_), .. })));
    b.handle_message(at(10_100), NodeId(0), Message::ReleaseLease { term: Term(5), to: NodeId(1) });
    drain(&mut b);
    b.handle_message(at(10_200), NodeId(0), Message::TimeoutNow { term: Term(5) });
    let votes: Vec<Action> =
        drain(&mut b).into_iter().filter(|a| matches!(a, Action::Send { message: Message::Vote(_), .. })).collect();
    assert_eq!(votes.len(), 2, "site-b asks both voters at once, without a pre-vote");
    assert_eq!(b.durable().term, Term(6));
}

/// A three-member cluster's site-a, elected and active: (node, now, term).
fn active_site_a() -> (Node, Instant, Term) {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut a = node(members, 0);
    for _ in 0..40 {
        let (now, _) = a.next_deadline().expect("timers");
        a.handle_timeout(now);
        let mut queue: std::collections::VecDeque<Action> = drain(&mut a).into();
        while let Some(action) = queue.pop_front() {
            let reply = match action {
                Action::Send { to, message: Message::PreVote(r) } => Some((to, Message::PreVoteReply(yes(r.term)))),
                Action::Send { to, message: Message::Vote(r) } => Some((to, Message::VoteReply(yes(r.term)))),
                Action::RunPrePromote { epoch } => {
                    a.pre_promote_finished(now, epoch, true);
                    None
                }
                _ => None,
            };
            if let Some((from, message)) = reply {
                a.handle_message(now, from, message);
            }
            queue.extend(drain(&mut a));
        }
        if a.is_active(now) {
            let term = a.durable().term;
            return (a, now, term);
        }
    }
    panic!("site-a was never elected");
}

fn yes(term: Term) -> crate::message::VoteReply {
    crate::message::VoteReply { term, granted: true, refusal: None, lease_held_ms: 0 }
}

fn lease_end(n: &Node, now: Instant) -> Instant {
    now + n.status(now).lease_remaining.expect("a lease")
}

/// Runs `n`'s heartbeat at `now` and returns the renewal round it opened.
fn renewal_round(n: &mut Node, now: Instant) -> crate::message::LeaseRenewal {
    n.deadlines.set(super::Timer::HeartbeatDue, now);
    n.handle_timeout(now);
    drain(n)
        .into_iter()
        .find_map(|a| match a {
            Action::Send { message: Message::Heartbeat(Heartbeat { lease: Some(r), .. }), .. } => Some(r),
            _ => None,
        })
        .expect("a renewal round")
}

#[test]
fn only_a_granted_reply_in_the_leaders_own_term_renews_its_lease() {
    use crate::message::HeartbeatReply;
    let (mut a, now, term) = active_site_a();
    let later = now + Duration::from_millis(1000);
    let round = renewal_round(&mut a, later);
    let before = lease_end(&a, later);
    let w = NodeId(2);
    for (t, granted) in [(term, false), (Term(term.0 - 1), true)] {
        a.handle_message(later, w, Message::HeartbeatReply(HeartbeatReply { term: t, seq: round.seq, granted }));
        assert_eq!(lease_end(&a, later), before, "renewed by {t:?} granted={granted}");
        assert_eq!(a.durable().term, term, "a reply from an older term moved the term");
    }
    a.handle_message(later, w, Message::HeartbeatReply(HeartbeatReply { term, seq: round.seq, granted: true }));
    let t = Timers::default();
    assert_eq!(lease_end(&a, later), later + t.lease_duration - t.drift_margin());
    a.handle_message(
        later,
        w,
        Message::HeartbeatReply(HeartbeatReply { term: Term(term.0 + 1), seq: 0, granted: false }),
    );
    assert!(!a.is_active(later), "a newer term deposes the leader");
}

#[test]
fn a_renewal_carries_a_cooldown_only_after_an_automatic_failover() {
    let (mut a, now, _) = active_site_a();
    assert_eq!(
        renewal_round(&mut a, now + Duration::from_millis(1000)).cooldown_ms,
        0,
        "a first election is no failover"
    );
}

#[test]
fn a_handoff_tells_the_target_to_run_only_once_a_majority_moved() {
    let (mut a, now, term) = active_site_a();
    let (b, w) = (NodeId(1), NodeId(2));
    let t = now + Duration::from_millis(500);
    // site-b must look able to take over.
    let hb = Heartbeat { term, lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
    a.handle_message(t, b, Message::Heartbeat(hb));
    a.command(t, crate::Command::Switchover { to: Some(b), at: None }).expect("accepted");
    let told =
        |a: &mut Node| drain(a).iter().any(|x| matches!(x, Action::Send { message: Message::TimeoutNow { .. }, .. }));
    assert!(!told(&mut a), "told to run before any voter moved its grant");
    assert_eq!(a.status(t).role, RoleName::HandingOff);
    a.handle_message(t, w, Message::ReleaseAck { term: Term(term.0 - 1) });
    assert!(!told(&mut a), "an old acknowledgement counted");
    a.handle_message(t, w, Message::ReleaseAck { term });
    assert!(told(&mut a), "a majority (site-a and the witness) moved");
}

#[test]
fn a_switchover_goes_only_to_a_site_that_could_take_over_and_waits_for_its_time() {
    use crate::command::{Command, CommandError};
    let (b, w) = (NodeId(1), NodeId(2));
    let switch = |to, at| Command::Switchover { to: Some(to), at };
    for (report, why) in [
        (SiteReport { healthy: false, ..report() }, "its health checks fail"),
        (SiteReport { caught_up: false, ..report() }, "its data lags beyond max_lag_on_failover"),
        (SiteReport { sees_quorum: false, ..report() }, "it cannot reach a majority"),
    ] {
        let (mut a, now, term) = active_site_a();
        let hb = Heartbeat { term, lease: None, report, pause: PauseSetting::default(), proposal: None };
        a.handle_message(now, b, Message::Heartbeat(hb));
        assert_eq!(a.command(now, switch(b, None)), Err(CommandError::TargetNotEligible { target: b, why }));
    }
    let (mut a, now, term) = active_site_a();
    assert!(matches!(a.command(now, switch(b, None)), Err(CommandError::TargetNotEligible { .. })), "never heard");
    assert_eq!(a.command(now, switch(w, None)), Err(CommandError::NotElectable(w)));
    assert_eq!(a.command(now, Command::CancelSwitchover), Err(CommandError::NothingScheduled));
    let hb = Heartbeat { term, lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
    a.handle_message(now, b, Message::Heartbeat(hb));
    // A time now or past is now; a later one waits.
    let later = now + Duration::from_millis(500);
    a.command(now, switch(b, Some(later))).expect("scheduled");
    assert_eq!(a.status(now).scheduled_switchover, Some((b, later)));
    assert_eq!(a.status(now).role, RoleName::Active);
    a.command(now, Command::CancelSwitchover).expect("cancelled");
    assert_eq!(a.status(now).scheduled_switchover, None);
    a.command(now, switch(b, Some(now))).expect("accepted");
    assert_eq!(a.status(now).role, RoleName::HandingOff, "a time that has come is not scheduled");
    assert_eq!(a.command(now, Command::CancelSwitchover), Err(CommandError::NotActive { active: None }));
}

#[test]
fn a_scheduled_switchover_runs_at_its_time_only_if_still_active() {
    use crate::command::Command;
    let b = NodeId(1);
    let (mut a, now, term) = active_site_a();
    let hb = Heartbeat { term, lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
    a.handle_message(now, b, Message::Heartbeat(hb));
    let due = now + Duration::from_millis(200);
    a.command(now, Command::Switchover { to: Some(b), at: Some(due) }).expect("scheduled");
    a.handle_timeout(due - Duration::from_millis(1));
    assert_eq!(a.status(due).role, RoleName::Active);
    a.handle_timeout(due);
    assert_eq!(a.status(due).role, RoleName::HandingOff, "the switchover ran at its time");
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
fn an_elected_site_whose_lease_is_not_renewed_steps_down_when_it_ends() {
    let (mut a, now, _) = active_site_a();
    let end = lease_end(&a, now);
    assert_eq!(a.next_deadline().map(|(t, _)| t <= end), Some(true));
    let mut stepped_down = false;
    for _ in 0..40 {
        let (t, _) = a.next_deadline().expect("timers");
        if t > end {
            break;
        }
        a.handle_timeout(t);
        for action in drain(&mut a) {
            stepped_down |= matches!(action, Action::StepDown { reason: crate::StepDownReason::LeaseExpired, .. });
        }
    }
    assert!(stepped_down, "no step-down when the lease ran out");
    assert_eq!(a.status(end).role, RoleName::Standby);
}

#[test]
fn an_active_site_reasserts_its_actuators_every_interval() {
    let (mut n, now) = lone_active_site();
    let interval = Timers::default().actuation_interval;
    let mut passes = Vec::new();
    let mut t = now;
    while t < now + interval * 3 {
        t = n.next_deadline().expect("timers").0;
        n.handle_timeout(t);
        passes.extend(drain(&mut n).into_iter().filter(|a| matches!(a, Action::Actuate { .. })).map(|_| t));
    }
    assert_eq!(passes, vec![now + interval, now + interval * 2, now + interval * 3]);
}

#[test]
fn a_candidate_is_bound_to_itself_and_refuses_a_rival() {
    let (mut a, now, term) = campaigning_site_a();
    a.handle_message(now, NodeId(2), Message::PreVoteReply(yes(term)));
    drain(&mut a);
    assert_eq!(a.durable().voted_for, Some(NodeId(0)));
    let rival = VoteRequest { term: Term(term.0 + 1), report: report(), approved: false, handoff: false };
    a.handle_message(now + Duration::from_millis(100), NodeId(1), Message::Vote(rival));
    assert_eq!(answer(&mut a), Some((false, Some(crate::Refusal::LeaseHeld))));
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

#[test]
fn equal_priority_is_no_reason_to_wait() {
    let members = vec![Member::site("site-a", 1), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    let hb = Heartbeat { term: Term(0), lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
    b.handle_message(at(10_000), NodeId(0), Message::Heartbeat(hb));
    assert!(runs_at(&mut b, at(10_000)));
}

#[test]
fn a_declined_promotion_hands_over_in_automatic_mode_and_proposes_in_manual_mode() {
    use crate::config::FailoverMode;
    for mode in [FailoverMode::Automatic, FailoverMode::Manual] {
        let (mut a, now, term) = active_site_a();
        let b = NodeId(1);
        let hb = Heartbeat { term, lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
        a.handle_message(now, b, Message::Heartbeat(hb));
        // Elected again (a new epoch), and this time the hook fails.
        let mut cfg = a.config().clone();
        cfg.policy.failover_mode = mode;
        a.cfg = Arc::new(cfg);
        let epoch = crate::Epoch(term.0 + 1);
        a.install_leadership(
            now,
            epoch,
            crate::ActivationCause::Reclaim,
            (now + Duration::from_millis(2000), super::VoterSet::default()),
            false,
        );
        drain(&mut a);
        a.pre_promote_finished(now, epoch, false);
        let actions = drain(&mut a);
        let handed_over = actions
            .iter()
            .any(|x| matches!(x, Action::Send { message: Message::ReleaseLease { to, .. }, .. } if *to == b));
        let proposal = a.status(now).pending_failover.map(|p| (p.target, p.reason));
        match mode {
            FailoverMode::Automatic => assert!(handed_over && proposal.is_none(), "{actions:?}"),
            FailoverMode::Manual => {
                assert!(!handed_over);
                assert_eq!(proposal, Some((b, crate::message::ProposalReason::PromotionDeclined)));
            }
        }
    }
}

#[test]
fn a_planned_switchover_drains_for_the_drain_time_first() {
    let (mut a, now, term) = active_site_a();
    let b = NodeId(1);
    let mut cfg = a.config().clone();
    cfg.timers.drain = Duration::from_millis(500);
    a.cfg = Arc::new(cfg);
    let hb = Heartbeat { term, lease: None, report: report(), pause: PauseSetting::default(), proposal: None };
    a.handle_message(now, b, Message::Heartbeat(hb));
    a.command(now, crate::Command::Switchover { to: Some(b), at: None }).expect("accepted");
    assert!(drain(&mut a).iter().any(|x| matches!(x, Action::Drain { to, .. } if *to == b)));
    assert!(a.is_active(now), "still active while it drains");
    assert_eq!(
        a.command(now, crate::Command::Switchover { to: Some(b), at: None }),
        Err(crate::CommandError::Busy),
        "a second switchover while draining"
    );
    a.handle_timeout(now + Duration::from_millis(499));
    assert!(a.is_active(now + Duration::from_millis(499)));
    a.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(a.status(now + Duration::from_millis(500)).role, RoleName::HandingOff);
}

#[test]
fn a_forced_site_shows_no_lease_and_a_proposal_is_raised_once() {
    let mut n = node(vec![Member::site("site-a", 1), Member::witness("witness")], 0);
    drain(&mut n);
    n.command(at(LEASE_MS), crate::Command::ForcePromote).expect("forced");
    let status = n.status(at(LEASE_MS));
    assert_eq!(status.lease_remaining, None, "a forced site holds no lease");
    let (mut a, now, _) = active_site_a();
    let reason = crate::message::ProposalReason::ManualMode;
    a.raise_proposal(now, NodeId(1), reason);
    a.raise_proposal(now, NodeId(1), reason);
    let raised =
        drain(&mut a).iter().filter(|x| matches!(x, Action::Event(crate::Event::FailoverProposed { .. }))).count();
    assert_eq!(raised, 1);
    a.raise_proposal(now, NodeId(1), crate::message::ProposalReason::Cooldown);
    a.raise_proposal(now, NodeId(0), crate::message::ProposalReason::Cooldown);
    let raised =
        drain(&mut a).iter().filter(|x| matches!(x, Action::Event(crate::Event::FailoverProposed { .. }))).count();
    assert_eq!(raised, 2, "a new reason or target is a new proposal");
}

#[test]
fn a_refusal_with_the_time_left_makes_the_candidate_ask_again_just_after_it() {
    let (mut a, now, term) = campaigning_site_a();
    let held = crate::message::VoteReply {
        term,
        granted: false,
        refusal: Some(crate::Refusal::LeaseHeld),
        lease_held_ms: 200,
    };
    a.handle_message(now, NodeId(2), Message::PreVoteReply(held));
    let margin = Timers::default().drift_margin();
    let armed = a.deadlines.get(super::Timer::ElectionTimeout);
    assert_eq!(armed, Some(now + Duration::from_millis(200) + margin), "sooner than the retry it had armed");
    // A later figure does not push an earlier attempt back.
    a.handle_message(now, NodeId(2), Message::PreVoteReply(crate::message::VoteReply { lease_held_ms: 300, ..held }));
    assert_eq!(a.deadlines.get(super::Timer::ElectionTimeout), armed);
    // Nor does a tiny one make it ask in a tight loop.
    a.handle_message(now, NodeId(2), Message::PreVoteReply(crate::message::VoteReply { lease_held_ms: 1, ..held }));
    let floor = Timers::default().heartbeat_interval / 10;
    assert_eq!(a.deadlines.get(super::Timer::ElectionTimeout), Some(now + floor));
}

/// Runs `a`'s timers up to `until`, with site-b sending a status heartbeat
/// (`report`) before each and the witness acknowledging every renewal.
/// Returns the events, with when they happened.
fn run_leader(a: &mut Node, until: Instant, b_report: Option<SiteReport>) -> Vec<(Instant, crate::Event)> {
    use crate::message::HeartbeatReply;
    let mut events = Vec::new();
    for _ in 0..1000 {
        let (t, _) = a.next_deadline().expect("timers");
        if t > until {
            break;
        }
        if let Some(report) = b_report {
            let term = a.durable().term;
            let hb = Heartbeat { term, lease: None, report, pause: PauseSetting::default(), proposal: None };
            a.handle_message(t, NodeId(1), Message::Heartbeat(hb));
        }
        a.handle_timeout(t);
        for action in drain(a) {
            match action {
                Action::Send { to, message: Message::Heartbeat(Heartbeat { term, lease: Some(r), .. }) }
                    if to == NodeId(2) =>
                {
                    a.handle_message(
                        t,
                        to,
                        Message::HeartbeatReply(HeartbeatReply { term, seq: r.seq, granted: true }),
                    );
                }
                Action::Event(e) => events.push((t, e)),
                _ => {}
            }
        }
        events.extend(drain(a).into_iter().filter_map(|x| match x {
            Action::Event(e) => Some((t, e)),
            _ => None,
        }));
    }
    events
}

fn handoffs(events: &[(Instant, crate::Event)]) -> Vec<(Instant, crate::HandoffReason)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            crate::Event::HandoffStarted { why, .. } => Some((*t, *why)),
            _ => None,
        })
        .collect()
}

#[test]
fn failback_waits_exactly_the_failback_delay_and_only_when_automatic() {
    use crate::config::{FailbackPolicy, FailoverMode};
    for (failback, mode) in [
        (FailbackPolicy::Automatic, FailoverMode::Automatic),
        (FailbackPolicy::Automatic, FailoverMode::Manual),
        (FailbackPolicy::Manual, FailoverMode::Automatic),
    ] {
        let (mut a, now, _) = active_site_a();
        // Site-b becomes the better site: priority 3 against site-a's 2.
        let mut cfg = a.config().clone();
        cfg.members[1].kind = crate::MemberKind::Site { priority: 3 };
        cfg.policy = Policy { failover_mode: mode, failback };
        a.cfg = Arc::new(cfg);
        let first = a.next_deadline().expect("timers").0;
        let delay = Timers::default().failback_delay;
        let events = run_leader(&mut a, now + delay * 2, Some(report()));
        let proposal = a.status(now).pending_failover.map(|p| p.reason);
        match (failback, mode) {
            (FailbackPolicy::Automatic, FailoverMode::Automatic) => {
                assert_eq!(handoffs(&events), vec![(first + delay, crate::HandoffReason::Failback)]);
            }
            (FailbackPolicy::Automatic, FailoverMode::Manual) => {
                assert_eq!(handoffs(&events), vec![]);
                assert_eq!(proposal, Some(crate::message::ProposalReason::Failback));
            }
            _ => assert_eq!((handoffs(&events), proposal), (vec![], None)),
        }
    }
}

#[test]
fn an_unhealthy_active_site_hands_over_proposes_in_cooldown_and_reports_having_no_successor_once() {
    let (mut a, now, _) = active_site_a();
    a.set_health(now, LocalHealth { healthy: false, caught_up: true });
    let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
    assert_eq!(
        handoffs(&events).iter().map(|(_, why)| *why).collect::<Vec<_>>(),
        vec![crate::HandoffReason::Unhealthy]
    );

    // Within the cooldown of an automatic failover: a proposal instead.
    let (mut a, now, _) = active_site_a();
    if let super::RoleState::Leader(l) = &mut a.role {
        l.cause = crate::ActivationCause::AutomaticFailover;
    }
    a.cooldown_until = Some(now + Duration::from_millis(60_000));
    a.set_health(now, LocalHealth { healthy: false, caught_up: true });
    let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
    assert_eq!(handoffs(&events), vec![]);
    let pending = a.status(now).pending_failover.map(|p| (p.target, p.reason));
    assert_eq!(pending, Some((NodeId(1), crate::message::ProposalReason::ActiveUnhealthy)));
    // Healthy again: the proposal goes away.
    a.set_health(now, LocalHealth::GOOD);
    run_leader(&mut a, now + Duration::from_millis(2500), Some(report()));
    assert_eq!(a.status(now).pending_failover, None);

    // No site to hand over to: said once, not at every heartbeat.
    let (mut a, now, _) = active_site_a();
    a.set_health(now, LocalHealth { healthy: false, caught_up: true });
    let events = run_leader(&mut a, now + Duration::from_millis(2500), Some(SiteReport { healthy: false, ..report() }));
    let said = events.iter().filter(|(_, e)| matches!(e, crate::Event::UnhealthyWithoutSuccessor)).count();
    assert_eq!(said, 1);
}

#[test]
fn only_the_current_hook_result_promotes_and_only_once() {
    let (mut a, now, term) = active_site_a();
    let epoch = crate::Epoch(term.0 + 1);
    let until = now + Duration::from_millis(2000);
    a.install_leadership(now, epoch, crate::ActivationCause::Reclaim, (until, super::VoterSet::default()), false);
    drain(&mut a);
    a.pre_promote_finished(now, crate::Epoch(term.0), true);
    assert_eq!(a.status(now).role, RoleName::Promoting, "an older epoch's hook result promoted");
    a.pre_promote_finished(now, epoch, true);
    assert_eq!(a.status(now).role, RoleName::Active);
    drain(&mut a);
    a.pre_promote_finished(now, epoch, true);
    assert_eq!(drain(&mut a), vec![], "a repeated hook result acts again");
}

#[test]
fn a_priority_zero_site_is_never_a_handover_target_and_a_paused_site_does_not_move() {
    let mut zero = Member::site("site-b", 0);
    zero.votes = 1;
    let (mut a, now, _) = active_site_a();
    let mut cfg = a.config().clone();
    cfg.members[1] = zero;
    a.cfg = Arc::new(cfg);
    a.set_health(now, LocalHealth { healthy: false, caught_up: true });
    let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
    assert_eq!(handoffs(&events), vec![]);
    assert!(events.iter().any(|(_, e)| matches!(e, crate::Event::UnhealthyWithoutSuccessor)));

    let (mut a, now, _) = active_site_a();
    a.command(now, crate::Command::Pause).expect("paused");
    a.set_health(now, LocalHealth { healthy: false, caught_up: true });
    let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
    assert_eq!(handoffs(&events), vec![], "a paused cluster moves nothing by itself");
    assert_eq!(a.status(now).pending_failover, None);
}

#[test]
fn the_cooldown_holds_an_unhealthy_handover_only_after_an_automatic_failover_and_only_while_it_runs() {
    for (cause, cooldown_left_ms, held) in [
        (crate::ActivationCause::AutomaticFailover, 0, false),
        (crate::ActivationCause::Reclaim, 60_000, false),
        (crate::ActivationCause::AutomaticFailover, 60_000, true),
    ] {
        let (mut a, now, _) = active_site_a();
        if let super::RoleState::Leader(l) = &mut a.role {
            l.cause = cause;
        }
        a.cooldown_until = Some(now + Duration::from_millis(cooldown_left_ms));
        a.set_health(now, LocalHealth { healthy: false, caught_up: true });
        let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
        assert_eq!(handoffs(&events).is_empty(), held, "{cause:?} with {cooldown_left_ms} ms of cooldown left");
    }
}

#[test]
fn a_follower_reports_a_new_active_site_once() {
    let changes = |w: &mut Node| {
        drain(w).iter().filter(|x| matches!(x, Action::Event(crate::Event::ActiveSiteChanged { .. }))).count()
    };
    let mut w = witness();
    w.handle_message(at(10_000), NodeId(0), lease_heartbeat(5, 0, PauseSetting::default()));
    assert_eq!(changes(&mut w), 1);
    w.handle_message(at(11_000), NodeId(0), lease_heartbeat(5, 0, PauseSetting::default()));
    assert_eq!(changes(&mut w), 0, "the same site and epoch again");
    w.handle_message(at(12_000), NodeId(0), lease_heartbeat(6, 0, PauseSetting::default()));
    assert_eq!(changes(&mut w), 1, "a new epoch");
    w.handle_message(at(20_000), NodeId(1), lease_heartbeat(6, 0, PauseSetting::default()));
    assert_eq!(changes(&mut w), 1, "a new site");
}

#[test]
fn failback_goes_only_to_a_higher_priority_and_its_proposal_goes_when_that_site_does() {
    use crate::config::{FailbackPolicy, FailoverMode};
    // Site-b's priority 2 equals site-a's: no failback, however long.
    let (mut a, now, _) = active_site_a();
    let mut cfg = a.config().clone();
    cfg.members[1].kind = crate::MemberKind::Site { priority: 2 };
    cfg.policy.failback = FailbackPolicy::Automatic;
    a.cfg = Arc::new(cfg);
    let delay = Timers::default().failback_delay;
    assert_eq!(handoffs(&run_leader(&mut a, now + delay * 2, Some(report()))), vec![]);
    // Manual mode: the failback proposal is withdrawn once site-b is no
    // longer fit to take over.
    let (mut a, now, _) = active_site_a();
    let mut cfg = a.config().clone();
    cfg.members[1].kind = crate::MemberKind::Site { priority: 3 };
    cfg.policy = Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Automatic };
    a.cfg = Arc::new(cfg);
    run_leader(&mut a, now + delay * 2, Some(report()));
    assert!(a.status(now).pending_failover.is_some());
    run_leader(&mut a, now + delay * 2 + Duration::from_millis(2000), Some(SiteReport { healthy: false, ..report() }));
    assert_eq!(a.status(now).pending_failover, None);
}
