//! A site deciding to run: the election timer, what holds it back, and
//! what it does with refusals and `TimeoutNow`.

use super::*;

#[test]
fn the_election_timer_waits_a_lease_plus_a_heartbeat_per_better_site_plus_jitter() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let t = Timers::default();
    let armed = |id: u8, seed: u64| {
        let cfg = ClusterConfig { members: members.clone(), timers: t.clone(), policy: Policy::default() };
        let n = Node::new(Arc::new(cfg), NodeId(id), DurableState::default(), Instant::from_millis(1000), seed)
            .expect("valid");
        n.deadlines.get(Timer::ElectionTimeout).map(|at| at.as_millis() - 1000)
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
fn a_candidate_refused_for_an_old_term_adopts_the_newer_one() {
    let (mut a, now, term) = campaigning_site_a();
    let stale = crate::message::VoteReply {
        term: Term(term.0 + 5),
        granted: false,
        refusal: Some(crate::Refusal::StaleTerm),
        lease_held_ms: 0,
        bound_ms: 0,
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
        let no =
            crate::message::VoteReply { term, granted: false, refusal: Some(refusal), lease_held_ms: 0, bound_ms: 0 };
        a.handle_message(now, NodeId(2), Message::PreVoteReply(no));
        let pending = a.status(now).pending_failover.expect("a proposal");
        assert_eq!((pending.target, pending.reason), (NodeId(0), reason));
    }
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
                    let yes = crate::message::VoteReply {
                        term: r.term,
                        granted: true,
                        refusal: None,
                        lease_held_ms: 0,
                        bound_ms: full_lease_ms(),
                    };
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
                        if let Action::RunPrePromote { epoch, .. } = action {
                            n.pre_promote_finished(now, epoch, false);
                            declined_at = Some(now);
                        }
                    }
                }
                Action::RunPrePromote { epoch, .. } => {
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
        Message::Heartbeat(Heartbeat {
            term: Term(0),
            lease: None,
            report,
            pause,
            proposal: None,
            maintenance: Default::default(),
        })
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
fn equal_priority_is_no_reason_to_wait() {
    let members = vec![Member::site("site-a", 1), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    let hb = heartbeat(Term(0), report());
    b.handle_message(at(10_000), NodeId(0), Message::Heartbeat(hb));
    assert!(runs_at(&mut b, at(10_000)));
}

#[test]
fn a_refusal_with_the_time_left_makes_the_candidate_ask_again_just_after_it() {
    let (mut a, now, term) = campaigning_site_a();
    let held = crate::message::VoteReply {
        term,
        granted: false,
        refusal: Some(crate::Refusal::LeaseHeld),
        lease_held_ms: 200,
        bound_ms: 0,
    };
    a.handle_message(now, NodeId(2), Message::PreVoteReply(held));
    let margin = Timers::default().drift_margin();
    let armed = a.deadlines.get(Timer::ElectionTimeout);
    assert_eq!(armed, Some(now + Duration::from_millis(200) + margin), "sooner than the retry it had armed");
    // A later figure does not push an earlier attempt back.
    a.handle_message(now, NodeId(2), Message::PreVoteReply(crate::message::VoteReply { lease_held_ms: 300, ..held }));
    assert_eq!(a.deadlines.get(Timer::ElectionTimeout), armed);
    // Nor does a tiny one make it ask in a tight loop.
    a.handle_message(now, NodeId(2), Message::PreVoteReply(crate::message::VoteReply { lease_held_ms: 1, ..held }));
    let floor = Timers::default().heartbeat_interval / 10;
    assert_eq!(a.deadlines.get(Timer::ElectionTimeout), Some(now + floor));
}
