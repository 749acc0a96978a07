//! The elected site: lease renewal and expiry, actuation, hook results,
//! switchover, drain and handoff, failback and the unhealthy handover.

use super::*;

#[test]
fn only_a_granted_reply_in_the_leaders_own_term_renews_its_lease() {
    use crate::message::HeartbeatReply;
    let (mut a, now, term) = active_site_a();
    let later = now + Duration::from_millis(1000);
    let round = renewal_round(&mut a, later);
    let before = lease_end(&a, later);
    let w = NodeId(2);
    for (t, granted) in [(term, false), (Term(term.0 - 1), true)] {
        a.handle_message(
            later,
            w,
            Message::HeartbeatReply(HeartbeatReply { term: t, seq: round.seq, granted, bound_ms: full_lease_ms() }),
        );
        assert_eq!(lease_end(&a, later), before, "renewed by {t:?} granted={granted}");
        assert_eq!(a.durable().term, term, "a reply from an older term moved the term");
    }
    a.handle_message(
        later,
        w,
        Message::HeartbeatReply(HeartbeatReply { term, seq: round.seq, granted: true, bound_ms: full_lease_ms() }),
    );
    let t = Timers::default();
    assert_eq!(lease_end(&a, later), later + t.lease_duration - t.drift_margin());
    a.handle_message(
        later,
        w,
        Message::HeartbeatReply(HeartbeatReply { term: Term(term.0 + 1), seq: 0, granted: false, bound_ms: 0 }),
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
    let hb = heartbeat(term, report());
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
    for (report, refusal) in [
        (
            SiteReport { healthy: false, ..report() },
            CommandError::TargetNotEligible { target: b, why: "its health checks fail" },
        ),
        (SiteReport { caught_up: false, ..report() }, CommandError::TargetLagging { target: b }),
        (
            SiteReport { sees_quorum: false, ..report() },
            CommandError::TargetNotEligible { target: b, why: "it cannot reach a majority" },
        ),
    ] {
        let (mut a, now, term) = active_site_a();
        let hb = heartbeat(term, report);
        a.handle_message(now, b, Message::Heartbeat(hb));
        let refused = Err(refusal);
        let shown = a.status(now).peers.iter().find(|p| p.id == b).map(|p| p.switchover_target);
        assert_eq!(shown, Some(refused), "the status says what the command would answer");
        assert_eq!(a.command(now, switch(b, None)), refused);
    }
    let (mut a, now, term) = active_site_a();
    assert!(matches!(a.command(now, switch(b, None)), Err(CommandError::TargetNotEligible { .. })), "never heard");
    assert_eq!(a.command(now, switch(w, None)), Err(CommandError::NotElectable(w)));
    assert_eq!(a.command(now, Command::CancelSwitchover), Err(CommandError::NothingScheduled));
    let hb = heartbeat(term, report());
    a.handle_message(now, b, Message::Heartbeat(hb));
    let shown = |a: &Node, id| a.status(now).peers.iter().find(|p| p.id == id).map(|p| p.switchover_target);
    assert_eq!(shown(&a, b), Some(Ok(())));
    assert_eq!(shown(&a, w), Some(Err(CommandError::NotElectable(w))));
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
    let hb = heartbeat(term, report());
    a.handle_message(now, b, Message::Heartbeat(hb));
    let due = now + Duration::from_millis(200);
    a.command(now, Command::Switchover { to: Some(b), at: Some(due) }).expect("scheduled");
    a.handle_timeout(due - Duration::from_millis(1));
    assert_eq!(a.status(due).role, RoleName::Active);
    a.handle_timeout(due);
    assert_eq!(a.status(due).role, RoleName::HandingOff, "the switchover ran at its time");
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
fn a_declined_promotion_hands_over_in_automatic_mode_and_proposes_in_manual_mode() {
    use crate::config::FailoverMode;
    for mode in [FailoverMode::Automatic, FailoverMode::Manual] {
        let (mut a, now, term) = active_site_a();
        let b = NodeId(1);
        let hb = heartbeat(term, report());
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
            (now + Duration::from_millis(2000), VoterSet::default()),
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
    let b = NodeId(1);
    // Approving a named site with nothing pending is the same switchover.
    for command in [crate::Command::Switchover { to: Some(b), at: None }, crate::Command::Approve { to: Some(b) }] {
        let (mut a, now, term) = active_site_a();
        let mut cfg = a.config().clone();
        cfg.timers.drain = Duration::from_millis(500);
        a.cfg = Arc::new(cfg);
        let hb = heartbeat(term, report());
        a.handle_message(now, b, Message::Heartbeat(hb));
        a.command(now, command).expect("accepted");
        let actions = drain(&mut a);
        assert!(actions.iter().any(|x| matches!(x, Action::Drain { to, .. } if *to == b)), "{command:?}");
        let why = actions.iter().find_map(|x| match x {
            Action::Event(crate::Event::HandoffStarted { why, .. }) => Some(*why),
            _ => None,
        });
        assert_eq!(why, Some(crate::HandoffReason::Switchover), "{command:?}");
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
    if let RoleState::Leader(l) = &mut a.role {
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
    a.install_leadership(now, epoch, crate::ActivationCause::Reclaim, (until, VoterSet::default()), false);
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
        if let RoleState::Leader(l) = &mut a.role {
            l.cause = cause;
        }
        a.cooldown_until = Some(now + Duration::from_millis(cooldown_left_ms));
        a.set_health(now, LocalHealth { healthy: false, caught_up: true });
        let events = run_leader(&mut a, now + Duration::from_millis(1500), Some(report()));
        assert_eq!(handoffs(&events).is_empty(), held, "{cause:?} with {cooldown_left_ms} ms of cooldown left");
    }
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

#[test]
fn a_newer_fence_under_a_valid_lease_is_an_alarm_raised_once_per_value_and_never_moves_the_term() {
    use crate::Epoch;
    let alarms =
        |n: &mut Node| drain(n).iter().filter(|x| matches!(x, Action::Event(crate::Event::FenceAhead { .. }))).count();
    let (mut a, now, term) = active_site_a();
    let epoch = a.status(now).epoch.expect("epoch");
    a.fenced(now, epoch);
    assert_eq!(alarms(&mut a), 0, "its own epoch is no alarm");
    let newer = Epoch(epoch.0 + 5);
    a.fenced(now, newer);
    a.fenced(now, newer);
    a.fenced(now, Epoch(epoch.0 + 1));
    assert_eq!(alarms(&mut a), 1, "once per value, and an older one adds nothing");
    assert!(a.is_active(now), "a fence does not depose a site that holds its lease");
    assert_eq!(a.durable().term, term, "a target never moves the term");
    a.fenced(now, Epoch(epoch.0 + 6));
    assert_eq!(alarms(&mut a), 1, "a newer value is a new alarm");
    let after = lease_end(&a, now);
    a.fenced(after, Epoch(epoch.0 + 9));
    assert_eq!(alarms(&mut a), 0, "a site past its lease is not active: nothing to weigh");
}

#[test]
fn a_site_promoted_by_force_steps_down_when_a_target_holds_a_newer_epoch() {
    let mut n = node(vec![Member::site("site-a", 1), Member::witness("witness")], 0);
    drain(&mut n);
    let now = at(LEASE_MS);
    n.command(now, crate::Command::ForcePromote).expect("forced");
    let epoch = drain(&mut n)
        .into_iter()
        .find_map(|x| match x {
            Action::RunPrePromote { epoch, .. } => Some(epoch),
            _ => None,
        })
        .expect("pre_promote");
    n.pre_promote_finished(now, epoch, true);
    assert!(n.is_active(now));
    n.fenced(now, epoch);
    assert!(n.is_active(now), "its own epoch");
    let newer = crate::Epoch(epoch.0 + 1);
    n.fenced(now, newer);
    assert!(!n.is_active(now));
    let stepped = drain(&mut n)
        .into_iter()
        .any(|x| matches!(x, Action::StepDown { reason: crate::StepDownReason::Fenced { by }, .. } if by == newer));
    assert!(stepped, "stepped down, fenced by the newer epoch");
}

#[test]
fn an_elected_site_hearing_another_renew_in_its_own_term_neither_binds_nor_follows() {
    // Two elected sites in one term happen only after a forced promotion.
    let (mut a, now, term) = active_site_a();
    drain(&mut a);
    a.handle_message(now, NodeId(1), lease_heartbeat(term.0, 0, PauseSetting::default()));
    assert!(a.is_active(now), "it followed the other site");
    assert_eq!(heartbeat_replies(&mut a), vec![(term.0, false)]);
}

#[test]
fn a_persisted_schedule_without_a_role_to_resume_is_cancelled_at_start_with_the_reason() {
    use crate::{Event, ScheduledSwitchover, SwitchoverCancelReason};
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let cfg = Arc::new(ClusterConfig { members, timers: Timers::default(), policy: Policy::default() });
    let scheduled = Some(ScheduledSwitchover { to: NodeId(1), at: at(50_000) });
    // No role (`led` absent), or one left by a term that has passed.
    let led = crate::Led { term: Term(2), cause: crate::ActivationCause::Reclaim, resumes: 0 };
    for led in [None, Some(led)] {
        let state =
            DurableState { term: Term(3), voted_for: Some(NodeId(0)), scheduled, led, ..DurableState::default() };
        let mut a = Node::new(cfg.clone(), NodeId(0), state, at(1000), 1).expect("starts");
        let actions = drain(&mut a);
        let why = SwitchoverCancelReason::NotResumedAfterRestart;
        assert!(
            actions.contains(&Action::Event(Event::SwitchoverCancelled { to: NodeId(1), reason: why })),
            "{actions:?}"
        );
        assert!(actions.iter().any(|x| matches!(x, Action::Persist(d) if d.scheduled.is_none())), "{actions:?}");
        assert_eq!(a.status(at(1000)).scheduled_switchover, None);
        assert_eq!(a.next_deadline().map(|(_, t)| t == Timer::SwitchoverDue), Some(false));
    }
}
