//! One scenario per protocol rule (`docs/protocol.md`), on the deterministic
//! simulator with real nodes. Each reads as: the cluster, what happens, what
//! must (and must not) follow. Every run also checks all invariants after
//! every step (`SimCluster::violations`).

use std::time::Duration;

use failover_core::sim::SimCluster;
use failover_core::{
    ClusterConfig, Command, CommandError, Epoch, Event, FailbackPolicy, FailoverMode, HandoffReason, Instant,
    LocalHealth, Member, NodeId, Policy, ProposalReason, RoleName, StepDownReason, SwitchoverCancelReason, Timers,
};

const HEARTBEAT_MS: u64 = 200;
const LEASE_MS: u64 = 1000;
/// Generous bound for anything that should take a few leases.
const DEADLINE_MS: u64 = 30_000;

fn timers() -> Timers {
    Timers {
        heartbeat_interval: Duration::from_millis(HEARTBEAT_MS),
        lease_duration: Duration::from_millis(LEASE_MS),
        election_jitter: Duration::from_millis(100),
        max_drift_ppm: 1000,
        actuation_interval: Duration::from_millis(2000),
        failback_delay: Duration::from_millis(3000),
        failover_cooldown: Duration::from_millis(60_000),
        drain: Duration::ZERO,
        declined_backoff: Duration::from_millis(5000),
    }
}

fn cluster_with(policy: Policy, seed: u64) -> SimCluster {
    let cfg = ClusterConfig {
        members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
        timers: timers(),
        policy,
    };
    SimCluster::new(cfg, seed).expect("valid config")
}

/// Three sites (priorities 3, 2, 1) and two witnesses: five voters.
fn three_sites_two_witnesses() -> ClusterConfig {
    ClusterConfig {
        members: vec![
            Member::site("site-a", 3),
            Member::site("site-b", 2),
            Member::site("site-c", 1),
            Member::witness("witness-1"),
            Member::witness("witness-2"),
        ],
        timers: timers(),
        policy: Policy::default(),
    }
}

fn cluster() -> SimCluster {
    cluster_with(Policy::default(), 1)
}

/// Starts the cluster and waits for the first active site.
fn started(mut sim: SimCluster) -> SimCluster {
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()), "no site became active");
    sim
}

fn assert_clean(sim: &SimCluster) {
    assert!(sim.violations().is_empty(), "invariants broken: {:#?}", sim.violations());
}

fn ids(sim: &SimCluster) -> (NodeId, NodeId, NodeId) {
    (sim.id("site-a"), sim.id("site-b"), sim.id("witness"))
}

#[test]
fn rule4_highest_priority_site_becomes_active_at_start() {
    let sim = started(cluster());
    let (a, _, _) = ids(&sim);
    assert_eq!(sim.active(), Some(a));
    assert_clean(&sim);
}

/// A killed process cannot overlap anyone, but a frozen one (SIGSTOP, a
/// long GC pause, a suspended VM) still believes in its lease when it wakes:
/// the new site must start only after that lease has run out.
#[test]
fn rule1_killed_active_site_is_replaced_only_after_its_lease_ran_out() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    let remaining = sim.status(a).and_then(|s| s.lease_remaining).expect("a lease");
    // All clocks are exact here, so site-a's clock reads true time.
    let lease_end = sim.now_ms() + u64::try_from(remaining.as_millis()).expect("small");
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b did not take over");
    let (b_active_at, _, _) = *sim.activations().last().expect("an activation");
    assert!(b_active_at >= lease_end, "site-b active at {b_active_at} ms, site-a's lease ran to {lease_end} ms");
    assert_clean(&sim);
}

#[test]
fn rule1_isolated_active_site_stops_before_the_other_starts() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.isolate(a);
    // The invariant checker would record any instant with both active.
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b did not take over");
    let a_stepped_down = sim.events(a).iter().any(|(_, e)| matches!(e, Event::SteppedDown { .. }));
    assert!(a_stepped_down, "the isolated site never stepped down");
    assert_clean(&sim);
}

#[test]
fn rule1_cut_between_sites_with_witness_seeing_both_changes_nothing() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.cut(a, b);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active(), Some(a));
    assert_eq!(sim.activations().len(), 1, "the active site changed or flapped: {:?}", sim.activations());
    assert_clean(&sim);
}

#[test]
fn rule1_witness_down_changes_nothing() {
    let mut sim = started(cluster());
    let (a, _, w) = ids(&sim);
    sim.crash(w);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active(), Some(a));
    assert_eq!(sim.activations().len(), 1);
    assert_clean(&sim);
}

#[test]
fn rule1_isolated_site_coming_back_does_not_disrupt_the_active_one() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.isolate(b);
    sim.run_for(10 * LEASE_MS);
    sim.heal_all();
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active(), Some(a));
    assert_eq!(sim.activations().len(), 1, "pre-vote should keep site-b from deposing site-a");
    assert_clean(&sim);
}

#[test]
fn rule2_every_new_active_site_gets_a_higher_epoch() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    sim.restart(a);
    sim.run_for(3 * LEASE_MS);
    sim.command(b, Command::Switchover { to: Some(a), at: None }).expect("switchover accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    let epochs: Vec<u64> = sim.activations().iter().map(|(_, _, e)| e.0).collect();
    assert_eq!(epochs.len(), 3);
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "epochs not increasing: {epochs:?}");
    assert_clean(&sim);
}

/// An active site that meets a higher term steps down: someone may have
/// been elected in it. Here an operator forced site-b active (disaster
/// recovery) while site-a, cut off from site-b only, still renewed its
/// lease through the witness; when the link returns, site-a hears of the
/// newer term and must stop acting at once.
#[test]
fn rule2_active_site_that_meets_a_higher_term_steps_down() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.isolate(b);
    sim.run_for(3 * LEASE_MS);
    sim.command(b, Command::ForcePromote).expect("forced");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active_sites().contains(&b)));
    assert!(sim.active_sites().contains(&a), "site-a still renews through the witness");
    sim.heal_all();
    sim.cut(a, w);
    assert!(
        sim.run_until(DEADLINE_MS, |s| s.active_sites() == vec![b]),
        "site-a still acts after meeting the higher term"
    );
    // The invariants first: acting on after adopting a newer term is what
    // `active_only_in_own_term` names.
    assert_clean(&sim);
    assert!(sim
        .events(a)
        .iter()
        .any(|(_, e)| matches!(e, Event::SteppedDown { reason: StepDownReason::HigherTerm, .. })));
}

/// A target that checks epochs (a DNS fence record, an HAProxy variable,
/// the MongoDB state store) holds a newer epoch than the active site's.
/// While the site's lease is valid no newer site can exist, so the value is
/// forged: the site stays active, raises the alarm and moves no term;
/// elections and failover go on as before.
#[test]
fn rule2_a_newer_fence_does_not_depose_a_site_holding_its_lease_nor_move_any_term() {
    let mut sim = started(cluster());
    let a = sim.active().expect("active");
    let (epoch, term) = sim.status(a).map(|s| (s.epoch, s.term)).expect("up");
    let epoch = epoch.expect("epoch");
    let forged = Epoch(epoch.0 + 1_000_000);
    sim.fenced(a, forged);
    sim.run_for(5_000);
    assert_eq!(sim.active(), Some(a), "a forged fence deposed the active site");
    assert!(sim.events(a).iter().any(|(_, e)| matches!(e, Event::FenceAhead { stored, .. } if *stored == forged)));
    for id in sim.config().ids() {
        assert!(sim.status(id).expect("up").term <= term, "{id} moved past {term:?}");
    }
    // Failover still works, from the same terms.
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some_and(|x| x != a)));
    let next = sim.active().and_then(|x| sim.status(x)?.epoch).expect("epoch");
    assert!(next.0 < forged.0, "the next epoch {next:?} came from the target");
    assert_clean(&sim);
}

#[test]
fn rule3_a_voter_restarted_mid_election_does_not_vote_twice() {
    // Restart every member repeatedly while they elect; the checker records
    // any voter granting two candidates in one term.
    let mut sim = cluster();
    let (a, b, w) = ids(&sim);
    for round in 0..20u64 {
        sim.run_for(300 + round * 37);
        let victim = [a, b, w][(round % 3) as usize];
        sim.crash(victim);
        sim.run_for(150);
        sim.restart(victim);
    }
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()));
    assert_clean(&sim);
}

#[test]
fn rule3_full_cluster_restart_resumes_from_persisted_state() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    let term_before = sim.status(w).expect("witness up").term;
    for id in [a, b, w] {
        sim.crash(id);
    }
    sim.run_for(LEASE_MS);
    for id in [w, b, a] {
        sim.restart(id);
    }
    // Site-a won the current term and never gave the role up: it takes it
    // back in that term (restart in place), once a majority renews.
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert_eq!(sim.status(w).expect("witness up").term, term_before);
    assert_eq!(sim.resumptions().len(), 1, "site-a did not resume its role");
    assert_clean(&sim);
}

#[test]
fn rule4_priority_zero_site_never_becomes_active() {
    // With a vote its own grant check refuses it; without one nothing local
    // does, so the node itself must never run.
    for votes in [1, 0] {
        let mut zero = Member::site("site-b", 0);
        zero.votes = votes;
        let cfg = ClusterConfig {
            members: vec![Member::site("site-a", 1), zero, Member::witness("witness"), Member::witness("witness-2")],
            timers: timers(),
            policy: Policy::default(),
        };
        let mut sim = started(SimCluster::new(cfg, 3).expect("valid"));
        let (a, b) = (sim.id("site-a"), sim.id("site-b"));
        sim.crash(a);
        sim.run_for(10 * LEASE_MS);
        assert_eq!(sim.active_sites(), vec![]);
        assert!(sim.activations().iter().all(|(_, s, _)| *s != b));
        assert_clean(&sim);
    }
}

#[test]
fn rule4_witness_never_becomes_active_even_when_both_sites_die() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.crash(a);
    sim.crash(b);
    sim.run_for(10 * LEASE_MS);
    assert!(sim.activations().iter().all(|(_, s, _)| *s != w));
    assert_eq!(sim.active_sites(), vec![]);
    assert_eq!(sim.command(w, Command::ForcePromote), Err(CommandError::Witness));
    assert_clean(&sim);
}

#[test]
fn rule4_returning_better_site_takes_over_only_with_automatic_failback() {
    for (failback, expect_a) in [(FailbackPolicy::Automatic, true), (FailbackPolicy::Manual, false)] {
        let mut sim = started(cluster_with(Policy { failover_mode: FailoverMode::Automatic, failback }, 5));
        let (a, b, _) = ids(&sim);
        sim.crash(a);
        assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
        sim.restart(a);
        sim.run_for(10_000);
        let expected = if expect_a { a } else { b };
        assert_eq!(sim.active(), Some(expected), "failback {failback:?}");
        if expect_a {
            let handoff = sim.events(b).iter().any(|(_, e)| matches!(e, Event::HandoffStarted { .. }));
            assert!(handoff, "failback must go through a handoff");
        }
        assert_clean(&sim);
    }
}

#[test]
fn rule5_unhealthy_site_is_not_elected_and_unhealthy_active_hands_over() {
    let mut sim = cluster();
    let (a, b, _) = ids(&sim);
    sim.set_health(a, LocalHealth { healthy: false, caught_up: true });
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()));
    assert_eq!(sim.active(), Some(b), "an unhealthy site must not be elected");
    sim.set_health(a, LocalHealth::GOOD);
    sim.set_health(b, LocalHealth { healthy: false, caught_up: true });
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)), "unhealthy active site did not hand over");
    assert_clean(&sim);
}

#[test]
fn rule5_lagging_site_needs_approval_to_take_over() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.set_health(b, LocalHealth { healthy: true, caught_up: false });
    sim.crash(a);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    let pending = sim.status(b).and_then(|s| s.pending_failover).expect("a pending proposal");
    assert_eq!((pending.target, pending.reason), (b, ProposalReason::TargetLagging));
    sim.command(b, Command::Approve { to: None }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert_clean(&sim);
}

#[test]
fn rule6_manual_mode_holds_a_failover_until_approved() {
    let policy = Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Manual };
    let mut sim = started(cluster_with(policy, 7));
    let (a, b, w) = ids(&sim);
    sim.crash(a);
    sim.run_for(20 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![], "nothing may move on its own in manual mode");
    let pending = sim.status(w).and_then(|s| s.pending_failover).expect("the witness reports the proposal");
    assert_eq!((pending.target, pending.reason), (b, ProposalReason::ManualMode));
    // Approve through the witness: it names the node that carries it out.
    assert_eq!(sim.command(w, Command::Approve { to: None }), Err(CommandError::HeldElsewhere { target: b }));
    sim.command(b, Command::Approve { to: None }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert_clean(&sim);
}

#[test]
fn rule6_manual_mode_lets_the_last_active_site_reclaim_after_restart() {
    let policy = Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Manual };
    let mut sim = started(cluster_with(policy, 8));
    let (a, _, _) = ids(&sim);
    sim.crash(a);
    sim.run_for(3 * LEASE_MS);
    sim.restart(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert_clean(&sim);
}

#[test]
fn rule7_second_automatic_failover_within_cooldown_needs_approval() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    sim.restart(a);
    sim.run_for(3 * LEASE_MS);
    sim.crash(b);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![], "a second automatic failover inside the cooldown");
    let pending = sim.status(a).and_then(|s| s.pending_failover).expect("a pending proposal");
    assert_eq!((pending.target, pending.reason), (a, ProposalReason::Cooldown));
    sim.command(a, Command::Approve { to: None }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert_clean(&sim);
}

#[test]
fn rule8_clock_drift_within_the_bound_never_gives_two_active_sites() {
    for seed in 0..20 {
        let mut sim = cluster_with(Policy::default(), seed);
        let (a, b, w) = ids(&sim);
        // The active site's clock runs slow (its lease looks longer), the
        // voters' run fast (their promises look shorter): the worst case.
        sim.set_drift_ppm(a, -1000);
        sim.set_drift_ppm(b, 1000);
        sim.set_drift_ppm(w, 1000);
        let mut sim = started(sim);
        // Instant links: no delivery delay hides a missing margin.
        sim.all_links(|l| {
            l.min_delay_ms = 0;
            l.max_delay_ms = 1;
        });
        sim.isolate(a);
        assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
        assert_clean(&sim);
    }
}

#[test]
fn planned_switchover_moves_without_waiting_for_a_lease() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.run_for(2 * LEASE_MS);
    let start = sim.now_ms();
    sim.command(a, Command::Switchover { to: Some(b), at: None }).expect("accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    // Far less than a lease: the handoff needs no expiry wait.
    assert!(sim.now_ms() - start < LEASE_MS, "switchover took {} ms", sim.now_ms() - start);
    assert_clean(&sim);
}

#[test]
fn switchover_sent_to_a_standby_names_the_active_site() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    assert_eq!(
        sim.command(b, Command::Switchover { to: Some(b), at: None }),
        Err(CommandError::NotActive { active: Some(a) })
    );
    sim.run_for(2 * LEASE_MS);
    assert_eq!(sim.active(), Some(a), "a refused switchover moved nothing");
    assert_eq!(sim.activations().len(), 1);
    assert_clean(&sim);
}

#[test]
fn pause_stops_automatic_failover_until_resume() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.command(w, Command::Pause).expect("pause accepted");
    sim.run_for(2 * LEASE_MS);
    assert!(sim.status(a).expect("up").paused, "the pause reaches every node");
    sim.crash(a);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    sim.command(b, Command::Resume).expect("resume accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert_clean(&sim);
}

#[test]
fn a_pause_is_shown_as_agreed_by_a_peer_only_once_its_heartbeat_carries_it() {
    let agrees = |s: &SimCluster, at, peer| {
        s.status(at).and_then(|st| st.peers.iter().find(|p| p.id == peer).map(|p| p.pause_agrees))
    };
    let sim = cluster();
    let (a, b, w) = ids(&sim);
    assert_eq!(agrees(&sim, a, b), Some(false), "never heard from: nothing to agree with");
    let mut sim = started(sim);
    assert_eq!(agrees(&sim, a, b), Some(true), "the same (never used) switch everywhere");
    sim.command(a, Command::Pause).expect("pause accepted");
    assert_eq!(agrees(&sim, a, b), Some(false), "site-b has not heard of it yet");
    assert_eq!(agrees(&sim, a, w), Some(false), "nor has the witness");
    assert!(sim.run_until(DEADLINE_MS, |s| agrees(s, a, b) == Some(true) && agrees(s, a, w) == Some(true)));
    assert!(sim.status(b).expect("up").paused && sim.status(w).expect("up").paused);
    // Once every node has echoed it, the active site may die at once:
    // nothing moves by itself.
    sim.crash(a);
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    assert_clean(&sim);
}

#[test]
fn a_dead_active_site_while_paused_is_a_pending_failover_that_approve_carries_out() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.command(w, Command::Pause).expect("pause accepted");
    sim.run_for(2 * LEASE_MS);
    sim.crash(a);
    let pending = |s: &SimCluster, n| s.status(n).and_then(|st| st.pending_failover).map(|p| (p.target, p.reason));
    assert!(sim.run_until(DEADLINE_MS, |s| pending(s, w) == Some((b, ProposalReason::Paused))));
    assert_eq!(pending(&sim, b), Some((b, ProposalReason::Paused)), "site-b says what it waits for");
    assert_eq!(sim.active_sites(), vec![], "paused: nothing moves by itself");
    sim.command(w, Command::Approve { to: None }).expect_err("the witness names site-b, which carries it out");
    sim.command(b, Command::Approve { to: None }).expect("approved where it is pending");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert!(sim.status(b).expect("up").paused, "still paused afterwards");
    assert_eq!(pending(&sim, w), None);
    assert_clean(&sim);
}

#[test]
fn failed_pre_promote_hook_makes_the_site_decline() {
    let mut sim = cluster();
    let (a, b, _) = ids(&sim);
    sim.set_hook_fails(a, true);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()));
    assert_eq!(sim.active(), Some(b));
    assert!(sim.activations().iter().all(|(_, s, _)| *s != a));
    assert_clean(&sim);
}

#[test]
fn forced_promotion_is_refused_while_a_lease_may_be_live_then_fences_by_epoch() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.isolate(b);
    sim.run_for(100);
    assert!(matches!(sim.command(b, Command::ForcePromote), Err(CommandError::LeaseMayBeHeld { .. })));
    // Disaster: site-a and the witness are gone for good.
    sim.crash(a);
    sim.crash(w);
    sim.run_for(3 * LEASE_MS);
    sim.command(b, Command::ForcePromote).expect("forced");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    let epochs: Vec<u64> = sim.activations().iter().map(|(_, _, e)| e.0).collect();
    assert!(epochs[1] > epochs[0]);
    assert_clean(&sim);
}

#[test]
fn three_sites_and_two_witnesses_elect_and_fail_over() {
    let cfg = three_sites_two_witnesses();
    let mut sim = started(SimCluster::new(cfg, 11).expect("valid"));
    let (a, b) = (sim.id("site-a"), sim.id("site-b"));
    assert_eq!(sim.active(), Some(a));
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "the next priority must win");
    assert_clean(&sim);
}

/// Rule 11: an active site whose process restarts within its lease keeps
/// the role and its epoch, with no election; the restarted process does not
/// act before a majority has renewed a fresh lease.
#[test]
fn rule11_active_site_restarted_within_its_lease_keeps_role_and_epoch() {
    let mut sim = started(cluster());
    let (a, _, w) = ids(&sim);
    let epoch = sim.status(a).and_then(|s| s.epoch).expect("an epoch");
    let term = sim.status(w).expect("witness up").term;
    let activations = sim.activations().to_vec();
    sim.crash(a);
    sim.run_for(100);
    sim.restart(a);
    let restarted = sim.status(a).expect("site-a up");
    assert_eq!(restarted.role, RoleName::Resuming, "restarted with a lease it never renewed");
    assert!(!sim.active_sites().contains(&a));
    assert!(sim.run_until(DEADLINE_MS, |s| !s.resumptions().is_empty()), "site-a did not resume");
    assert_eq!(sim.resumptions().iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), vec![(a, epoch)]);
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active(), Some(a));
    assert_eq!(sim.status(a).and_then(|s| s.epoch), Some(epoch));
    assert_eq!(sim.activations(), &activations[..], "an election happened");
    assert_eq!(sim.status(w).expect("witness up").term, term, "the term moved");
    assert_clean(&sim);
}

#[test]
fn rule11_active_site_restarted_after_another_was_elected_stands_by() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b did not take over");
    sim.restart(a);
    sim.run_for(5 * LEASE_MS);
    assert!(sim.resumptions().is_empty(), "site-a resumed a role another site holds");
    assert_eq!(sim.active(), Some(b));
    let gave_up = sim.events(a).iter().any(|(_, e)| matches!(e, Event::ResumeAbandoned { .. }));
    assert!(gave_up, "no event says the restart in place was given up: {:?}", sim.events(a));
    assert_clean(&sim);
}

#[test]
fn rule11_restarted_active_site_cut_off_gives_up_and_the_other_takes_over() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.crash(a);
    sim.isolate(a);
    sim.run_for(50);
    sim.restart(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b did not take over");
    assert!(sim.resumptions().is_empty());
    sim.heal_all();
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active(), Some(b));
    assert_clean(&sim);
}

#[test]
fn rule11_a_site_that_handed_over_does_not_take_the_role_back_after_a_restart() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    sim.command(a, Command::Switchover { to: Some(b), at: None }).expect("switchover");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    sim.crash(a);
    sim.restart(a);
    assert_ne!(sim.status(a).map(|s| s.role), Some(RoleName::Resuming));
    sim.run_for(5 * LEASE_MS);
    assert!(sim.resumptions().is_empty());
    assert_eq!(sim.active(), Some(b));
    assert_clean(&sim);
}

#[test]
fn rule11_a_planned_stop_while_paused_keeps_the_role() {
    let mut sim = started(cluster());
    let (a, _, _) = ids(&sim);
    sim.command(a, Command::Pause).expect("pause");
    sim.run_for(2 * HEARTBEAT_MS);
    sim.command(a, Command::Shutdown).expect("shutdown");
    assert_eq!(sim.active(), Some(a), "a stop while paused moved the role");
    sim.crash(a);
    sim.run_for(200);
    sim.restart(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert_eq!(sim.resumptions().len(), 1);
    assert_clean(&sim);
}

/// Maintenance of one site, as the operator sees it once every node holds
/// the setting: whether the given peer echoes `at`'s maintenance setting.
fn maintenance_agrees(s: &SimCluster, at: NodeId, peer: NodeId) -> bool {
    s.status(at).and_then(|st| st.peers.iter().find(|p| p.id == peer).map(|p| p.maintenance_agrees)) == Some(true)
}

fn in_maintenance(s: &SimCluster, at: NodeId, site: NodeId) -> Option<bool> {
    s.status(at).map(|st| st.maintenance.contains(site))
}

/// A site in maintenance is no target of an unplanned failover: the active
/// site dies, the only successor is in maintenance, nothing moves and the
/// pending proposal says why; approval is refused with that reason; the
/// setting survives a restart of every node; once maintenance ends, the
/// failover proceeds.
#[test]
fn a_site_in_maintenance_is_no_failover_target_until_its_maintenance_ends() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.command(w, Command::Maintenance { site: b, on: true }).expect("maintenance of a standby accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| maintenance_agrees(s, w, a) && maintenance_agrees(s, w, b)));
    for id in [b, w] {
        sim.crash(id);
        sim.restart(id);
        assert_eq!(in_maintenance(&sim, id, b), Some(true), "read back from {id}'s disk");
    }
    sim.run_for(2 * LEASE_MS);
    assert_eq!(sim.active(), Some(a), "maintenance of a standby moves nothing");
    sim.crash(a);
    let pending = |s: &SimCluster, n| s.status(n).and_then(|st| st.pending_failover).map(|p| (p.target, p.reason));
    assert!(sim.run_until(DEADLINE_MS, |s| pending(s, w) == Some((b, ProposalReason::TargetInMaintenance))));
    assert_eq!(pending(&sim, b), Some((b, ProposalReason::TargetInMaintenance)), "site-b says what it waits for");
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![], "nothing moves to a site in maintenance");
    for at in [w, b] {
        assert_eq!(
            sim.command(at, Command::Approve { to: None }),
            Err(CommandError::TargetInMaintenance { target: b }),
            "approval at {at} is refused with the reason"
        );
        assert_eq!(
            sim.command(at, Command::Approve { to: Some(b) }),
            Err(CommandError::TargetInMaintenance { target: b })
        );
    }
    sim.run_for(2 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    sim.command(w, Command::Maintenance { site: b, on: false }).expect("maintenance ends");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "the failover proceeds");
    assert_eq!(pending(&sim, w), None);
    assert!(sim
        .events(b)
        .iter()
        .any(|(_, e)| matches!(e, Event::MaintenanceChanged { site, on: false, by } if *site == b && *by == w)));
    assert_clean(&sim);
}

#[test]
fn maintenance_of_the_active_site_is_refused_and_no_switchover_goes_to_a_site_in_maintenance() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    for at in [a, b, w] {
        assert_eq!(
            sim.command(at, Command::Maintenance { site: a, on: true }),
            Err(CommandError::MaintenanceOfActive { site: a }),
            "refused at {at}"
        );
    }
    assert_eq!(sim.command(w, Command::Maintenance { site: w, on: true }), Err(CommandError::NotElectable(w)));
    sim.command(a, Command::Maintenance { site: b, on: true }).expect("accepted at the active site");
    sim.run_for(2 * LEASE_MS);
    let refusal = Err(CommandError::TargetInMaintenance { target: b });
    assert_eq!(sim.command(a, Command::Switchover { to: Some(b), at: None }), refusal);
    assert_eq!(sim.command(a, Command::Switchover { to: None, at: None }), Err(CommandError::NoEligibleTarget));
    assert_eq!(sim.command(a, Command::Approve { to: Some(b) }), refusal);
    let shown = sim.status(a).and_then(|st| st.peers.iter().find(|p| p.id == b).map(|p| p.switchover_target));
    assert_eq!(shown, Some(refusal), "the status says why site-b is no switchover target");
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active(), Some(a));
    sim.command(b, Command::Maintenance { site: b, on: false }).expect("ended at the site itself");
    sim.run_for(2 * LEASE_MS);
    sim.command(a, Command::Switchover { to: Some(b), at: None }).expect("a switchover once it ends");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert_clean(&sim);
}

#[test]
fn the_next_site_takes_over_when_the_better_successor_is_in_maintenance() {
    let cfg = three_sites_two_witnesses();
    let mut sim = started(SimCluster::new(cfg, 12).expect("valid"));
    let (a, b, c) = (sim.id("site-a"), sim.id("site-b"), sim.id("site-c"));
    assert_eq!(sim.active(), Some(a));
    sim.command(c, Command::Maintenance { site: b, on: true }).expect("accepted");
    sim.run_for(2 * LEASE_MS);
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(c)), "site-b in maintenance: site-c takes over");
    assert!(sim.activations().iter().all(|(_, s, _)| *s != b));
    assert_clean(&sim);
}

#[test]
fn a_forced_promotion_of_a_site_in_maintenance_still_works() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.command(w, Command::Maintenance { site: b, on: true }).expect("accepted");
    sim.run_for(2 * LEASE_MS);
    sim.crash(a);
    sim.crash(w);
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    sim.command(b, Command::ForcePromote).expect("disaster recovery ignores maintenance");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    assert_clean(&sim);
}

/// The race: site-b already asks for votes when the witness learns it is
/// in maintenance. The witness refuses what it has not yet granted, site-b
/// hears of its maintenance with the next heartbeat and stops, and nothing
/// moves.
#[test]
fn maintenance_set_while_the_successor_campaigns_stops_the_campaign() {
    let mut sim = started(cluster());
    let (a, b, w) = ids(&sim);
    sim.crash(a);
    let campaigning = |s: &SimCluster| s.status(b).is_some_and(|st| st.role == RoleName::Candidate);
    assert!(sim.run_until(DEADLINE_MS, campaigning), "site-b never ran");
    sim.command(w, Command::Maintenance { site: b, on: true }).expect("accepted while site-b campaigns");
    sim.run_for(10 * LEASE_MS);
    assert_clean(&sim);
    let pending = sim.status(w).and_then(|st| st.pending_failover).map(|p| (p.target, p.reason));
    assert_eq!(pending, Some((b, ProposalReason::TargetInMaintenance)));
    assert_eq!(sim.active_sites(), vec![]);
    assert!(sim.activations().iter().all(|(_, s, _)| *s != b), "site-b was elected while in maintenance");
}

/// Site-b as a switchover target, as site-a judges it.
fn ready(s: &SimCluster, at: NodeId, target: NodeId) -> bool {
    s.status(at).and_then(|st| st.peers.iter().find(|p| p.id == target).map(|p| p.switchover_target.is_ok()))
        == Some(true)
}

fn cancelled(sim: &SimCluster, at: NodeId) -> Vec<(NodeId, SwitchoverCancelReason)> {
    sim.events(at)
        .iter()
        .filter_map(|(_, e)| match *e {
            Event::SwitchoverCancelled { to, reason } => Some((to, reason)),
            _ => None,
        })
        .collect()
}

/// A scheduled switchover is written to disk: the active site's process
/// restarts in place before it is due, takes its role back, and hands over
/// when it is due, as if nothing had happened.
#[test]
fn a_scheduled_switchover_survives_a_restart_in_place_of_the_active_site() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    assert!(sim.run_until(DEADLINE_MS, |s| ready(s, a, b)));
    let due = Instant::from_millis(sim.now_ms() + 5 * LEASE_MS);
    sim.command(a, Command::Switchover { to: Some(b), at: Some(due) }).expect("scheduled");
    sim.crash(a);
    sim.run_for(100);
    sim.restart(a);
    let restarted = sim.status(a).expect("site-a up");
    assert_eq!(restarted.scheduled_switchover, Some((b, due)), "the schedule came back from disk");
    assert!(sim.run_until(DEADLINE_MS, |s| !s.resumptions().is_empty()), "site-a did not resume");
    assert_eq!(sim.active(), Some(a), "handed over before it was due");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "the switchover never happened");
    let handed_over = sim.events(a).iter().find_map(|(t, e)| match e {
        Event::HandoffStarted { to, why: HandoffReason::Switchover } if *to == b => Some(*t),
        _ => None,
    });
    assert!(handed_over.is_some_and(|t| t >= due.as_millis()), "handed over at {handed_over:?}, due at {due}");
    assert_eq!(cancelled(&sim, a), vec![]);
    assert_eq!(sim.status(a).and_then(|s| s.scheduled_switchover), None);
    assert_clean(&sim);
}

/// A schedule whose site did not take its role back after a restart is
/// dropped at start, with the reason.
#[test]
fn a_schedule_that_cannot_be_resumed_is_cancelled_at_start_with_the_reason() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    assert!(sim.run_until(DEADLINE_MS, |s| ready(s, a, b)));
    let due = Instant::from_millis(sim.now_ms() + 60 * LEASE_MS);
    sim.command(a, Command::Switchover { to: Some(b), at: Some(due) }).expect("scheduled");
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b did not take over");
    sim.restart(a);
    // It cannot know at start that another site was elected meanwhile: it
    // tries to take its role back, learns of the newer term, and drops the
    // schedule then.
    assert!(sim.run_until(DEADLINE_MS, |s| !cancelled(s, a).is_empty()));
    assert_eq!(cancelled(&sim, a), vec![(b, SwitchoverCancelReason::NotResumedAfterRestart)]);
    assert_eq!(sim.status(a).and_then(|s| s.scheduled_switchover), None);
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active(), Some(b));
    assert_clean(&sim);
}

/// Every way a schedule is dropped says why: an operator's cancel, a new
/// switchover, a lost role, a target that cannot take over when due.
#[test]
fn every_dropped_schedule_says_why() {
    let mut sim = started(cluster());
    let (a, b, _) = ids(&sim);
    assert!(sim.run_until(DEADLINE_MS, |s| ready(s, a, b)));
    let later = |s: &SimCluster| Some(Instant::from_millis(s.now_ms() + 5 * LEASE_MS));
    sim.command(a, Command::Switchover { to: Some(b), at: later(&sim) }).expect("scheduled");
    sim.command(a, Command::CancelSwitchover).expect("cancelled");
    assert_eq!(sim.command(a, Command::CancelSwitchover), Err(CommandError::NothingScheduled));
    sim.command(a, Command::Switchover { to: Some(b), at: later(&sim) }).expect("scheduled");
    sim.command(a, Command::Switchover { to: Some(b), at: later(&sim) }).expect("scheduled again");
    sim.crash(b);
    sim.run_for(6 * LEASE_MS);
    let e = CommandError::TargetNotEligible { target: b, why: "not heard from within one lease" };
    let want = vec![
        (b, SwitchoverCancelReason::Operator),
        (b, SwitchoverCancelReason::Replaced),
        (b, SwitchoverCancelReason::TargetIneligible(e)),
    ];
    assert_eq!(cancelled(&sim, a), want);
    sim.restart(b);
    assert!(sim.run_until(DEADLINE_MS, |s| ready(s, a, b)));
    sim.command(a, Command::Switchover { to: Some(b), at: later(&sim) }).expect("scheduled");
    sim.isolate(a);
    sim.run_for(3 * LEASE_MS);
    assert_eq!(cancelled(&sim, a).last(), Some(&(b, SwitchoverCancelReason::LostRole)));
    assert_clean(&sim);
}
