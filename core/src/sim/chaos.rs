//! Seeded chaos runs over [`SimCluster`]: random partitions (one-way and
//! both ways), crashes (also between two actions of one batch) and
//! restarts (some after the state file was lost), lossy, duplicating, slow or instant links, clocks drifting at
//! the configured bound in the worst pairing (the likely leader slow and
//! the voters fast) or the reverse or at random, health and lag flaps,
//! failing hooks, targets that report a newer epoch (so an active site
//! meets a higher term), a member sending counters beyond the bound or a
//! cooldown that never ends, and an operator who switches over, pauses and
//! approves. Clusters: two sites and a witness; three sites and two
//! witnesses; with a priority-0 site that votes or does not. Everything is
//! drawn from one seed, so a failing seed replays exactly.

use std::time::Duration;

use super::{SimCluster, Violation};
use crate::command::{Command, CommandError};
use crate::config::{ClusterConfig, FailbackPolicy, FailoverMode, Member, NodeId, Policy, Timers};
use crate::message::{
    ActivationCause, Epoch, Heartbeat, LeaseRenewal, MaintenanceSetting, Message, PauseSetting, SiteReport, Term,
    VoteRequest, MAX_TERM,
};
use crate::node::LocalHealth;
use crate::rng::Jitter;

/// Knobs of a chaos run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosOptions {
    /// Virtual time of faults, before the final heal.
    pub duration_ms: u64,
    /// Keep a log of every fault injected (for replaying a seed).
    pub trace: bool,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions { duration_ms: 120_000, trace: false }
    }
}

/// What one seed did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// Invariant breaches (empty on success).
    pub violations: Vec<Violation>,
    /// For each kill of the active site that was followed by an automatic
    /// failover: virtual ms from the kill to the next site acting as active.
    pub failover_ms: Vec<u64>,
    /// Faults injected, as readable lines (only with `trace`).
    pub trace: Vec<String>,
    /// A short description of the cluster the seed drew.
    pub shape: String,
    /// Simulation steps (deliveries and timer firings) processed.
    pub steps: u64,
}

/// Production-like timers: heartbeat 1 s, lease 3 s.
pub fn production_timers() -> Timers {
    Timers {
        failback_delay: Duration::from_millis(10_000),
        failover_cooldown: Duration::from_millis(30_000),
        ..Timers::default()
    }
}

struct Run {
    sim: SimCluster,
    rng: Jitter,
    report: ChaosReport,
    trace: bool,
    /// Pending repairs: (virtual ms, what).
    repairs: Vec<(u64, Repair)>,
    /// A kill of the active site waiting for the next active site:
    /// (kill time, approvals at kill time).
    failover_since: Option<(u64, u32)>,
    approvals: u32,
    /// Members' config files name different leases, and a restart may
    /// bring a new one (a rolling change).
    mixed_leases: bool,
}

/// A lease for one member's own config file, when the run mixes them.
fn draw_lease(rng: &mut Jitter) -> Duration {
    Duration::from_millis([2_000, 3_000, 6_000][usize::try_from(rng.up_to(2)).unwrap_or(0)])
}

#[derive(Clone, Copy, Debug)]
enum Repair {
    Restart(NodeId),
    Heal(NodeId, NodeId),
    Healthy(NodeId),
    HookOk(NodeId),
    Resume,
    EndMaintenance(NodeId),
}

/// Runs one seed.
pub fn run(seed: u64, options: &ChaosOptions) -> ChaosReport {
    let mut rng = Jitter::new(seed);
    let manual = rng.up_to(3) == 0;
    let failback = if rng.up_to(1) == 0 { FailbackPolicy::Automatic } else { FailbackPolicy::Manual };
    let members = cluster_shape(rng.up_to(5));
    let mut timers = production_timers();
    if rng.up_to(1) == 0 {
        timers.drain = Duration::from_millis(500);
    }
    if rng.up_to(2) == 0 {
        timers.max_drift_ppm = 20_000;
    }
    let mode = if manual { FailoverMode::Manual } else { FailoverMode::Automatic };
    let cfg = ClusterConfig { members, timers, policy: Policy { failover_mode: mode, failback } };
    let bound = i64::from(cfg.timers.max_drift_ppm);
    let pairing = rng.up_to(2);
    let shape = format!(
        "{}, {mode:?} failover, {failback:?} failback, drift bound {bound} ppm {}",
        cfg.members.iter().map(|m| format!("{}:{}/{}", m.name, m.priority(), m.votes)).collect::<Vec<_>>().join(" "),
        ["random", "leader slow voters fast", "leader fast voters slow"][usize::try_from(pairing).unwrap_or(0)]
    );
    let mut sim = match SimCluster::new(cfg, rng.next_u64()) {
        Ok(sim) => sim,
        Err(e) => {
            let violation = Violation { at_ms: 0, invariant: "config", detail: e.to_string() };
            return ChaosReport { seed, violations: vec![violation], shape, ..ChaosReport::default() };
        }
    };
    let ids: Vec<NodeId> = sim.config().ids().collect();
    // Site-a, the highest priority, is the usual leader.
    for &id in &ids {
        let drift = match pairing {
            0 => i64::try_from(rng.up_to(2 * bound.unsigned_abs())).unwrap_or(0) - bound,
            1 if id == NodeId(0) => -bound,
            1 => bound,
            _ if id == NodeId(0) => bound,
            _ => -bound,
        };
        sim.set_drift_ppm(id, drift);
    }
    // One run in three gives each member its own lease, as config files
    // that drifted apart would: safety must not depend on them agreeing.
    let mixed_leases = rng.up_to(2) == 0;
    let mut shape = shape;
    if mixed_leases {
        let mut leases = Vec::new();
        for &id in &ids {
            let lease = draw_lease(&mut rng);
            leases.push(format!("{}", lease.as_millis()));
            sim.set_node_lease(id, lease);
            sim.crash(id);
            sim.restart(id);
        }
        shape.push_str(&format!(", leases {} ms", leases.join("/")));
    }
    let (loss, dup, min_delay, max_delay) = (rng.up_to(50), rng.up_to(20), rng.up_to(1), 5 + rng.up_to(200));
    sim.all_links(|l| {
        l.loss_per_mille = u32::try_from(loss).unwrap_or(0);
        l.dup_per_mille = u32::try_from(dup).unwrap_or(0);
        l.min_delay_ms = min_delay;
        l.max_delay_ms = max_delay;
    });
    sim.hook_delay_ms = rng.up_to(100);
    let mut run = Run {
        sim,
        rng,
        report: ChaosReport { seed, shape, ..ChaosReport::default() },
        trace: options.trace,
        repairs: Vec::new(),
        failover_since: None,
        approvals: 0,
        mixed_leases,
    };
    run.faults(options.duration_ms);
    run.heal_and_check_liveness();
    if run.trace {
        for id in run.sim.config().ids() {
            for (at, event) in run.sim.events(id) {
                run.report.trace.push(format!("{at:>7} ms  {id}: {event:?}"));
            }
        }
        run.report.trace.sort();
    }
    run.report.violations = run.sim.violations().to_vec();
    run.report.steps = run.sim.steps();
    run.report
}

/// The members of one of the cluster shapes a seed may draw.
fn cluster_shape(draw: u64) -> Vec<Member> {
    let mut members = match draw {
        0 => vec![
            Member::site("site-a", 3),
            Member::site("site-b", 2),
            Member::site("site-c", 1),
            Member::witness("witness-1"),
            Member::witness("witness-2"),
        ],
        // A priority-0 site without a vote, then one with a vote.
        1 | 2 => vec![
            Member::site("site-a", 2),
            Member::site("site-b", 1),
            Member::site("site-c", 0),
            Member::witness("witness-1"),
            Member::witness("witness-2"),
        ],
        _ => vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
    };
    if draw == 1 {
        members[2].votes = 0;
        members.pop();
    }
    members
}

impl Run {
    fn log(&mut self, what: impl FnOnce() -> String) {
        if self.trace {
            let line = format!("{:>7} ms  {}", self.sim.now_ms(), what());
            self.report.trace.push(line);
        }
    }

    fn pick(&mut self, ids: &[NodeId]) -> NodeId {
        let i = usize::try_from(self.rng.up_to(ids.len() as u64 - 1)).unwrap_or(0);
        ids[i]
    }

    /// Lets time pass to `until`, applying due repairs and timing failovers.
    fn advance(&mut self, until: u64) {
        let mut guard = 0;
        while self.sim.now_ms() < until && guard < 100_000 {
            guard += 1;
            let next_repair = self.repairs.iter().map(|(t, _)| *t).min().unwrap_or(u64::MAX).min(until);
            if let Some((since, approvals)) = self.failover_since {
                let start = self.sim.now_ms();
                let found = self.sim.run_until(next_repair - start.min(next_repair), |s| s.active().is_some());
                if found {
                    if self.approvals == approvals {
                        self.report.failover_ms.push(self.sim.now_ms() - since);
                    }
                    self.failover_since = None;
                }
                if self.sim.now_ms() < next_repair {
                    continue;
                }
            } else {
                self.sim.run_for(next_repair - self.sim.now_ms());
            }
            let now = self.sim.now_ms();
            let due: Vec<Repair> = self.repairs.iter().filter(|(t, _)| *t <= now).map(|(_, r)| *r).collect();
            self.repairs.retain(|(t, _)| *t > now);
            for r in due {
                self.repair(r);
            }
        }
    }

    fn repair(&mut self, r: Repair) {
        self.log(|| format!("repair {r:?}"));
        match r {
            Repair::Restart(id) => {
                if self.mixed_leases && self.rng.up_to(2) == 0 {
                    let lease = draw_lease(&mut self.rng);
                    self.log(|| format!("{id} restarts with a {} ms lease", lease.as_millis()));
                    self.sim.set_node_lease(id, lease);
                }
                if self.rng.up_to(7) == 0 && self.sim.lose_state(id) {
                    self.log(|| format!("{id} lost its state file"));
                }
                self.sim.restart(id);
            }
            Repair::Heal(a, b) => {
                self.sim.link_mut(a, b).cut = false;
                self.sim.link_mut(b, a).cut = false;
            }
            Repair::Healthy(id) => self.sim.set_health(id, LocalHealth::GOOD),
            Repair::HookOk(id) => self.sim.set_hook_fails(id, false),
            Repair::Resume => {
                let any = self.sim.config().ids().find(|&id| self.sim.is_up(id));
                if let Some(id) = any {
                    let _ = self.sim.command(id, Command::Resume);
                }
            }
            Repair::EndMaintenance(site) => {
                let any = self.sim.config().ids().find(|&id| self.sim.is_up(id));
                if let Some(id) = any {
                    let _ = self.sim.command(id, Command::Maintenance { site, on: false });
                }
            }
        }
    }

    fn faults(&mut self, duration_ms: u64) {
        let ids: Vec<NodeId> = self.sim.config().ids().collect();
        let max_down = if ids.len() > 3 { 2 } else { 1 };
        let mut budget = 10_000;
        while self.sim.now_ms() < duration_ms && budget > 0 {
            budget -= 1;
            let gap = 1000 + self.rng.up_to(7000);
            let target = self.sim.now_ms() + gap;
            self.advance(target);
            // A failover is timed only when the kill was the only fault.
            self.failover_since = None;
            let victim = self.pick(&ids);
            let hold = 1000 + self.rng.up_to(14_000);
            let until = self.sim.now_ms() + hold;
            match self.rng.up_to(11) {
                0 | 1 => {
                    let down = ids.iter().filter(|&&i| !self.sim.is_up(i)).count();
                    // Kill the active site most of the time: that is what the
                    // failover clock measures.
                    let victim = match self.sim.active() {
                        Some(active) if self.rng.up_to(3) > 0 => active,
                        _ => victim,
                    };
                    if down < max_down && self.sim.is_up(victim) {
                        // Within the cooldown a second failover rightly
                        // waits for approval: not a failover to time.
                        let cooldown = crate::time::millis(self.sim.config().timers.failover_cooldown);
                        let settled =
                            self.sim.activations().last().is_some_and(|(at, _, _)| at + cooldown < self.sim.now_ms());
                        let automatic = self.sim.config().policy.failover_mode == FailoverMode::Automatic;
                        if self.sim.active() == Some(victim) && self.repairs.is_empty() && settled && automatic {
                            self.failover_since = Some((self.sim.now_ms(), self.approvals));
                        }
                        if self.failover_since.is_none() && self.rng.up_to(1) == 0 {
                            // Wherever the next few actions put it: between
                            // a persist and a send, between two sends...
                            let after = u32::try_from(self.rng.up_to(5)).unwrap_or(0);
                            self.log(|| format!("kill -9 {victim} after {after} more actions"));
                            self.sim.crash_after_actions(victim, after);
                        } else {
                            self.log(|| format!("kill -9 {victim}"));
                            self.sim.crash(victim);
                        }
                        self.repairs.push((until, Repair::Restart(victim)));
                    }
                }
                2 => {
                    let other = self.pick(&ids);
                    if other != victim {
                        let one_way = self.rng.up_to(1) == 0;
                        self.log(|| format!("cut {victim} -> {other}{}", if one_way { "" } else { " (both ways)" }));
                        self.sim.cut_one_way(victim, other);
                        if !one_way {
                            self.sim.cut_one_way(other, victim);
                        }
                        self.repairs.push((until, Repair::Heal(victim, other)));
                    }
                }
                3 => {
                    self.log(|| format!("isolate {victim}"));
                    for &other in &ids {
                        if other != victim {
                            self.sim.cut(victim, other);
                            self.repairs.push((until, Repair::Heal(victim, other)));
                        }
                    }
                }
                4 => {
                    let lagging = self.rng.up_to(1) == 0;
                    let health = LocalHealth { healthy: lagging, caught_up: !lagging };
                    self.log(|| format!("{victim} health {health:?}"));
                    self.sim.set_health(victim, health);
                    self.repairs.push((until, Repair::Healthy(victim)));
                }
                5 => {
                    self.log(|| format!("{victim} pre_promote fails"));
                    self.sim.set_hook_fails(victim, true);
                    self.repairs.push((until, Repair::HookOk(victim)));
                }
                6 => {
                    let to = self.pick(&ids);
                    let at = self.pick(&ids);
                    // Now, or scheduled a few seconds ahead (kept across a
                    // restart in place of the active site).
                    let when = match self.rng.up_to(1) {
                        0 => None,
                        _ => Some(crate::time::Instant::from_millis(self.sim.now_ms() + 500 + self.rng.up_to(5000))),
                    };
                    self.log(|| format!("operator: switchover --to {to} via {at} at {when:?}"));
                    self.operator(at, Command::Switchover { to: Some(to), at: when });
                }
                7 if self.rng.up_to(1) == 0 => {
                    self.log(|| format!("operator: pause via {victim}, resume later"));
                    if self.sim.command(victim, Command::Pause).is_ok() {
                        self.repairs.push((self.sim.now_ms() + 1000 + self.rng.up_to(4000), Repair::Resume));
                    }
                }
                7 => {
                    let site = self.pick(&ids);
                    self.log(|| format!("operator: maintenance on {site} via {victim}, off later"));
                    if self.sim.command(victim, Command::Maintenance { site, on: true }).is_ok() {
                        let at = self.sim.now_ms() + 1000 + self.rng.up_to(8000);
                        self.repairs.push((at, Repair::EndMaintenance(site)));
                    }
                }
                9 => {
                    // A target reports an epoch newer than the active
                    // site's: it meets a higher term.
                    let active = self.sim.active();
                    if let Some((site, epoch)) = active.and_then(|a| Some((a, self.sim.status(a)?.epoch?))) {
                        let newer = Epoch(epoch.0 + 1 + self.rng.up_to(2));
                        self.log(|| format!("{site} fenced by {newer:?}"));
                        self.sim.fenced(site, newer);
                    }
                }
                10 => {
                    let to = self.pick(&ids);
                    let message = self.hostile_message();
                    self.log(|| format!("{victim} sends {to} {message:?}"));
                    if victim != to {
                        self.sim.inject(victim, to, message);
                    }
                }
                _ => self.approve_pending(),
            }
        }
    }

    /// A message with counters no honest node sends: beyond the bound, or a
    /// cooldown that would never end.
    fn hostile_message(&mut self) -> Message {
        let report = SiteReport { healthy: true, caught_up: true, sees_quorum: true };
        let huge = if self.rng.up_to(1) == 0 { u64::MAX } else { MAX_TERM + 1 };
        let renewal = LeaseRenewal { seq: 1, cause: ActivationCause::Reclaim, cooldown_ms: u64::MAX };
        let heartbeat = |term, pause, lease| Heartbeat {
            term,
            lease,
            report,
            pause,
            proposal: None,
            maintenance: MaintenanceSetting::default(),
        };
        match self.rng.up_to(4) {
            0 => Message::Vote(VoteRequest { term: Term(huge), report, approved: true, handoff: true }),
            1 => Message::Heartbeat(heartbeat(Term(huge), PauseSetting::default(), Some(renewal))),
            2 => Message::Heartbeat(heartbeat(Term(0), PauseSetting { version: huge, by: 0, paused: true }, None)),
            3 => {
                let maintenance = MaintenanceSetting { version: huge, by: 0, sites: u16::MAX };
                Message::Heartbeat(Heartbeat { maintenance, ..heartbeat(Term(0), PauseSetting::default(), None) })
            }
            _ => Message::TimeoutNow { term: Term(huge) },
        }
    }

    /// Sends a command like `failoverctl` would: to one node, following the
    /// node it names when refused with a forward.
    fn operator(&mut self, at: NodeId, command: Command) {
        let mut node = at;
        for _ in 0..3 {
            if !self.sim.is_up(node) {
                return;
            }
            match self.sim.command(node, command) {
                Ok(()) => {
                    self.approvals += 1;
                    return;
                }
                Err(CommandError::NotActive { active: Some(next) })
                | Err(CommandError::HeldElsewhere { target: next }) => node = next,
                Err(_) => return,
            }
        }
    }

    fn approve_pending(&mut self) {
        let ids: Vec<NodeId> = self.sim.config().ids().collect();
        let pending = ids.iter().find_map(|&id| self.sim.status(id).and_then(|s| s.pending_failover));
        if let Some(p) = pending {
            self.log(|| format!("operator: approve ({p:?})"));
            self.operator(p.target, Command::Approve { to: None });
        }
    }

    /// After the faults: everything repaired, every node up and healthy. An
    /// operator approves what waits for approval. Some site must then become
    /// active within a minute.
    fn heal_and_check_liveness(&mut self) {
        self.failover_since = None;
        let ids: Vec<NodeId> = self.sim.config().ids().collect();
        self.repairs.clear();
        self.sim.heal_all();
        for &id in &ids {
            self.sim.cancel_crash(id);
            self.sim.restart(id);
            self.sim.set_health(id, LocalHealth::GOOD);
            self.sim.set_hook_fails(id, false);
        }
        self.log(|| "healed everything".to_string());
        for _ in 0..12 {
            if self.sim.run_until(5000, |s| s.active().is_some()) {
                return;
            }
            // Like an operator: resume if still paused, approve what waits.
            if ids.iter().any(|&i| self.sim.status(i).is_some_and(|s| s.paused)) {
                self.repair(Repair::Resume);
            }
            // And end every maintenance.
            for &site in &ids {
                if ids.iter().any(|&i| self.sim.status(i).is_some_and(|s| s.maintenance.contains(site))) {
                    self.repair(Repair::EndMaintenance(site));
                }
            }
            self.approve_pending();
        }
        let roles: Vec<String> = ids
            .iter()
            .filter_map(|&i| self.sim.status(i))
            .map(|s| format!("{}: {} term {} paused {}", s.node, s.role.as_str(), s.term.0, s.paused))
            .collect();
        let detail = format!("no active site 60 s after healing ({})", roles.join("; "));
        self.sim.violation("liveness_after_heal", detail);
    }
}
