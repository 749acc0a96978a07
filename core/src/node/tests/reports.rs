//! What one node reports (`status`, events) and the hygiene of what it
//! sends and accepts.

use super::*;

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
        maintenance: Default::default(),
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
fn a_site_whose_promotion_failed_reports_unhealthy_for_the_backoff() {
    let mut n2 = node(vec![Member::site("site-a", 1)], 0);
    let mut declined_at = None;
    for _ in 0..20 {
        let (at, _) = n2.next_deadline().expect("a timer");
        n2.handle_timeout(at);
        for action in drain(&mut n2) {
            if let Action::RunPrePromote { epoch, .. } = action {
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
fn a_peers_proposal_is_shown_for_one_lease_after_its_last_heartbeat() {
    let proposal = crate::message::ProposalNotice {
        target: NodeId(1),
        reason: crate::message::ProposalReason::ManualMode,
        age_ms: 0,
    };
    let hb = Heartbeat {
        term: Term(0),
        lease: None,
        report: report(),
        pause: PauseSetting::default(),
        proposal: Some(proposal),
        maintenance: Default::default(),
    };
    let mut w = witness();
    w.handle_message(at(10_000), NodeId(1), Message::Heartbeat(hb));
    assert!(w.status(at(10_000 + LEASE_MS - 1)).pending_failover.is_some());
    assert_eq!(w.status(at(10_000 + LEASE_MS)).pending_failover, None, "shown after its sender went quiet");
}
