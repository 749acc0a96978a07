//! Regression tests, one per bug the chaos simulator or the model checker found, each named after
//! what it reproduces. They run the real core on the simulator.

use std::time::Duration;

use failover_core::sim::SimCluster;
use failover_core::{
    ClusterConfig, Command, Event, FailbackPolicy, FailoverMode, HeartbeatReply, LocalHealth, Member, Message, NodeId,
    Policy, ProposalReason, Timers,
};

const LEASE_MS: u64 = 1000;
const DEADLINE_MS: u64 = 30_000;

fn cluster(policy: Policy) -> SimCluster {
    let timers = Timers {
        heartbeat_interval: Duration::from_millis(200),
        lease_duration: Duration::from_millis(LEASE_MS),
        election_jitter: Duration::from_millis(100),
        failback_delay: Duration::from_millis(2000),
        failover_cooldown: Duration::from_millis(20_000),
        ..Timers::default()
    };
    let cfg = ClusterConfig {
        members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
        timers,
        policy,
    };
    let mut sim = SimCluster::new(cfg, 99).expect("valid config");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()));
    sim
}

fn ids(sim: &SimCluster) -> (NodeId, NodeId, NodeId) {
    (sim.id("site-a"), sim.id("site-b"), sim.id("witness"))
}

/// A site whose term fell behind while it was cut off kept asking for
/// pre-votes in an old term; the others deferred to it (higher priority),
/// so nobody was ever elected. Refusals and status heartbeats now carry the
/// current term.
#[test]
fn stale_higher_priority_site_catches_up_on_terms_instead_of_blocking_elections() {
    let mut sim = cluster(Policy::default());
    let (a, b, w) = ids(&sim);
    sim.isolate(a);
    // While site-a is away, site-b takes over and the term moves on twice.
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    sim.crash(b);
    sim.run_for(3 * LEASE_MS);
    sim.restart(b);
    sim.heal_all();
    assert!(sim.run_until(DEADLINE_MS, |s| s.active().is_some()), "no site elected after healing");
    assert!(sim.status(a).expect("up").term >= sim.status(w).expect("up").term);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// In manual mode a site whose own record said it could reclaim was refused
/// by voters that knew better, and nobody raised a proposal: the operator
/// had nothing to approve. A refusal an operator can lift is now a proposal.
#[test]
fn manual_mode_refusal_becomes_an_approvable_proposal() {
    let mut sim = cluster(Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Manual });
    let (a, b, _) = ids(&sim);
    // Site-a is cut off; the operator approves site-b, which takes over.
    // Site-a never hears of it and still believes it was chosen last.
    sim.isolate(a);
    sim.run_for(5 * LEASE_MS);
    sim.command(b, Command::Approve { to: Some(b) }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    // Site-b dies; site-a returns and tries to reclaim. The witness knows
    // site-b was chosen after it and refuses: that needs an operator.
    sim.crash(b);
    sim.heal_all();
    sim.run_for(5 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![]);
    let pending = sim.status(a).and_then(|s| s.pending_failover).expect("a proposal to approve");
    assert_eq!((pending.target, pending.reason), (a, ProposalReason::ManualMode));
    sim.command(a, Command::Approve { to: None }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// In manual mode a failed pre_promote hook handed the role to the next
/// site by itself. It now proposes that move and waits.
#[test]
fn manual_mode_declined_promotion_waits_for_approval() {
    let mut sim = cluster(Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Manual });
    let (a, b, _) = ids(&sim);
    sim.set_hook_fails(a, true);
    sim.crash(a);
    sim.run_for(LEASE_MS);
    // Restarted while nothing it sends arrives, site-a cannot take its role
    // back in place (no majority renews it) and gives up; healed, it is
    // elected again and its pre_promote hook runs, and fails.
    sim.cut_one_way(a, b);
    sim.cut_one_way(a, sim.id("witness"));
    sim.restart(a);
    sim.run_for(2 * LEASE_MS);
    sim.heal_all();
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active_sites(), vec![], "nothing may move on its own in manual mode");
    let pending = sim.status(a).and_then(|s| s.pending_failover).expect("a proposal");
    assert_eq!(pending.target, b);
    let declined = Event::FailoverProposed { target: b, reason: ProposalReason::PromotionDeclined };
    assert!(sim.events(a).iter().any(|(_, e)| *e == declined), "not proposed: {:?}", sim.events(a));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// In manual mode automatic failback moved the role by itself. It is now a
/// proposal.
#[test]
fn manual_mode_failback_is_proposed_not_done() {
    let mut sim = cluster(Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Automatic });
    let (a, b, _) = ids(&sim);
    sim.command(a, Command::Switchover { to: Some(b), at: None }).expect("accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    sim.run_for(10 * LEASE_MS);
    assert_eq!(sim.active(), Some(b));
    let pending = sim.status(b).and_then(|s| s.pending_failover).expect("a failback proposal");
    assert_eq!((pending.target, pending.reason), (a, ProposalReason::Failback));
    sim.command(b, Command::Approve { to: None }).expect("approve accepted");
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(a)));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A node restarted after an automatic failover started its own cooldown
/// from when it first heard of the new active site, so it blocked a later
/// failover longer than configured. The active site now sends what is left.
#[test]
fn restarted_node_uses_the_active_sites_cooldown_not_its_own() {
    let mut sim = cluster(Policy::default());
    let (a, b, _) = ids(&sim);
    sim.crash(a);
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)));
    // Site-a comes back only after the cooldown is almost over.
    sim.run_for(18_000);
    sim.restart(a);
    sim.run_for(3 * LEASE_MS);
    // The cooldown has passed for site-b, so its loss is an automatic
    // failover again, with no proposal.
    sim.crash(b);
    // Virtual time: an unblocked failover takes about one lease; a stale
    // cooldown would hold it for another 17 s.
    assert!(sim.run_until(8 * LEASE_MS, |s| s.active() == Some(a)), "failover blocked by a stale cooldown");
    assert!(sim.status(a).and_then(|s| s.pending_failover).is_none());
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// The unhealthy-active handover must not flap: once healthy again, the
/// proposal it raised disappears.
#[test]
fn unhealthy_active_proposal_clears_when_health_returns() {
    let mut sim = cluster(Policy { failover_mode: FailoverMode::Manual, failback: FailbackPolicy::Manual });
    let (a, _, _) = ids(&sim);
    sim.set_health(a, LocalHealth { healthy: false, caught_up: true });
    sim.run_for(2 * LEASE_MS);
    assert!(sim.status(a).and_then(|s| s.pending_failover).is_some());
    sim.set_health(a, LocalHealth::GOOD);
    sim.run_for(2 * LEASE_MS);
    assert_eq!(sim.status(a).and_then(|s| s.pending_failover), None);
    assert_eq!(sim.active(), Some(a));
    assert_eq!(sim.activations().len(), 1, "nothing moved while the site was unhealthy");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// The benchmark's isolation trials: a heartbeat reached the witness after
/// the standby had stopped hearing the active site, so the witness's grant
/// outlived the standby's first attempt, and the standby guessed when to ask
/// again (half a heartbeat plus jitter, repeatedly). A `LeaseHeld` refusal
/// now says how long the grant still runs, and the standby asks again as
/// soon as it has run out.
#[test]
fn standby_asks_again_when_the_refusing_voters_grant_runs_out() {
    let mut sim = cluster(Policy::default());
    let (a, b, _) = ids(&sim);
    assert_eq!(sim.active(), Some(a));
    // Site-b stops hearing site-a two heartbeats (400 ms) before site-a is cut off
    // from everyone; the witness keeps renewing site-a's lease until then.
    sim.cut_one_way(a, b);
    sim.run_for(400);
    sim.isolate(a);
    let cut_off_at = sim.now_ms();
    assert!(sim.run_until(DEADLINE_MS, |s| s.active() == Some(b)), "site-b never took over");
    let (became_active_at, _, _) = *sim.activations().last().expect("an activation");
    // The witness's last grant to site-a was made before `cut_off_at` and
    // lasts one lease. After it: the refusal's way back (the simulator
    // delays a message 1 to 5 ms), the drift margin (3 ms for this lease),
    // then a pre-vote and a vote, there and back. Guessing instead would
    // add up to half a heartbeat plus jitter after the grant ran out.
    let deadline = cut_off_at + LEASE_MS + 5 + 3 + 4 * 5;
    assert!(became_active_at <= deadline, "site-b active at {became_active_at} ms, after {deadline} ms");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Found by the model checker: a restarted active site numbered its renewal
/// rounds from 1 again, so a reply to a round of the process before the
/// restart (late, or duplicated) was counted for the new process's round of
/// the same number, and a promise made before that round was sent backed
/// its lease. Each process now numbers its rounds from a count persisted
/// with the role (`Led::resumes`).
#[test]
fn a_reply_to_a_round_of_the_process_before_a_restart_is_not_counted() {
    let mut sim = cluster(Policy::default());
    let (a, b, _) = ids(&sim);
    let term = sim.status(a).expect("up").term;
    // Nothing passes between the restarted site-a and the others: what
    // they promised the old process runs out one lease after its last
    // round, and nothing the new process sends reaches them.
    sim.isolate(a);
    sim.crash(a);
    sim.restart(a);
    // Late answers to the old process's rounds, one heartbeat apart, with
    // every number the new process's first rounds could carry.
    for seq in 1..=5 {
        sim.run_for(200);
        let reply = HeartbeatReply { term, seq, granted: true, bound_ms: LEASE_MS };
        sim.inject(b, a, Message::HeartbeatReply(reply));
    }
    sim.run_for(3 * LEASE_MS);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(sim.resumptions().is_empty(), "site-a resumed on promises made to its previous process");
}
