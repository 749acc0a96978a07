//! Exhaustive model checking of the real protocol core with stateright.
//!
//! The model holds real `failover_core::Node`s for 2 sites and a witness and
//! explores every interleaving, within bounds, of:
//! - message delivery in any order, at any later time (reordering, delay);
//! - message loss (any subset of messages: this covers every partition,
//!   one-way or both ways) and duplication;
//! - crashes, and restarts from the state the node last persisted;
//! - abstract time: it jumps to the next deadline any node asked for, so
//!   leases, elections and heartbeats expire in every order relative to the
//!   messages in flight;
//! - `pre_promote` hooks that finish late;
//! - operator switchover (automatic model) and approval (manual model).
//!
//! The network is an unordered multiset without implicit duplication: each
//! in-flight message is delivered, dropped or explicitly duplicated by an
//! action, so duplication is bounded and visible in traces. One abstraction
//! keeps the state space finite: status heartbeats (those without a lease
//! renewal, which bind nobody and only feed reports) are delivered at once.
//! Every vote, pre-vote, lease renewal, reply and handoff message can be
//! lost, delayed, reordered or duplicated. The simulator loses and delays
//! status heartbeats too.
//!
//! All nodes share one clock here; clock drift is exercised by the
//! simulator (`rule8_*` scenario and `failover-sim`).

use std::sync::Arc;
use std::time::Duration;

use failover_core::{
    Action, ActivationCause, ClusterConfig, Command, DurableState, Epoch, FailbackPolicy, FailoverMode, Instant,
    Member, Message, Node, NodeId, Policy, Term, Timers,
};
use stateright::{Checker, Model, Property};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct World {
    time: u64,
    /// When the explored part began (after the prelude).
    start: u64,
    nodes: Vec<Option<Node>>,
    disks: Vec<DurableState>,
    /// In-flight messages with their send time, kept sorted so equal
    /// multisets hash equally.
    network: Vec<(u64, NodeId, NodeId, Message)>,
    hooks: Vec<(NodeId, Epoch)>,
    /// A node cut off from every other one (a full partition).
    isolated: Option<NodeId>,
    crashes: u8,
    drops: u8,
    dups: u8,
    commands: u8,
    // History, for the properties.
    votes: Vec<(NodeId, Term, NodeId)>,
    activations: Vec<(NodeId, Epoch, ActivationCause)>,
    approvals_since_change: u8,
    double_vote: bool,
    epoch_regressed: bool,
    unapproved_change: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    Deliver(usize),
    Duplicate(usize),
    Drop(usize),
    Tick,
    HookDone(usize),
    Crash(NodeId),
    Restart(NodeId),
    Switchover,
    Approve(NodeId),
}

struct FailoverModel {
    cfg: Arc<ClusterConfig>,
    max_time: u64,
    max_crashes: u8,
    max_drops: u8,
    max_dups: u8,
    max_commands: u8,
    max_in_flight: usize,
    max_delay: u64,
}

impl FailoverModel {
    fn new(mode: FailoverMode) -> Self {
        let timers = Timers {
            heartbeat_interval: Duration::from_millis(2),
            lease_duration: Duration::from_millis(4),
            election_jitter: Duration::ZERO,
            max_drift_ppm: 0,
            actuation_interval: Duration::from_millis(1000),
            failback_delay: Duration::from_millis(1000),
            failover_cooldown: Duration::ZERO,
            drain: Duration::ZERO,
            declined_backoff: Duration::from_millis(1000),
        };
        let cfg = ClusterConfig {
            members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
            timers,
            policy: Policy { failover_mode: mode, failback: FailbackPolicy::Manual },
        };
        let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        FailoverModel {
            cfg: Arc::new(cfg),
            max_time: env("MODEL_MAX_TIME", 4),
            max_crashes: env("MODEL_MAX_CRASHES", 1) as u8,
            max_drops: env("MODEL_MAX_DROPS", 1) as u8,
            max_dups: env("MODEL_MAX_DUPS", 1) as u8,
            max_commands: 1,
            max_in_flight: env("MODEL_MAX_IN_FLIGHT", 4) as usize,
            max_delay: env("MODEL_MAX_DELAY", 2),
        }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.cfg.ids().collect()
    }

    /// Runs a node input and carries out its actions like a driver would.
    fn drive(&self, w: &mut World, id: NodeId, input: &mut dyn FnMut(&mut Node, Instant)) {
        let now = Instant::from_millis(w.time);
        let Some(node) = w.nodes[id.index()].as_mut() else { return };
        input(node, now);
        let mut actions = Vec::new();
        while let Some(a) = node.poll_action() {
            actions.push(a);
        }
        for a in actions {
            match a {
                Action::Persist(d) => w.disks[id.index()] = d,
                // Status heartbeats carry no lease and bind nobody: they
                // arrive at once (handling one never sends anything).
                // Cut off, or nobody listening (a crashed process refuses
                // the connection). Messages already in flight when a node
                // crashes stay in flight and may reach its next incarnation.
                Action::Send { to, .. }
                    if w.isolated.is_some_and(|i| i == id || i == to) || w.nodes[to.index()].is_none() => {}
                Action::Send { to, message: Message::Heartbeat(hb) } if hb.lease.is_none() => {
                    self.drive(w, to, &mut |n, now| n.handle_message(now, id, Message::Heartbeat(hb)));
                }
                Action::Send { to, message } => {
                    if let Message::VoteReply(r) = message {
                        if r.granted {
                            record_vote(w, id, r.term, to);
                        }
                    }
                    w.network.push((w.time, id, to, message));
                }
                Action::RunPrePromote { epoch } => w.hooks.push((id, epoch)),
                Action::BecomeActive { epoch, cause } => {
                    if let Some(&(prev, _, _)) = w.activations.last() {
                        if prev != id {
                            if self.cfg.policy.failover_mode == FailoverMode::Manual && w.approvals_since_change == 0 {
                                w.unapproved_change = true;
                            }
                            w.approvals_since_change = 0;
                        }
                    }
                    note_epoch(w, id, epoch);
                    w.activations.push((id, epoch, cause));
                }
                Action::Actuate { epoch } | Action::Drain { epoch, .. } => note_epoch(w, id, epoch),
                Action::StepDown { .. } | Action::Event(_) => {}
            }
        }
        w.network.sort();
        w.hooks.sort();
    }

    /// Delivers everything in order and lets time pass until `done`.
    fn run_calm(&self, w: &mut World, done: impl Fn(&World) -> bool) {
        for _ in 0..10_000 {
            if done(w) && w.network.is_empty() && w.hooks.is_empty() {
                return;
            }
            let step = if !w.network.is_empty() {
                Step::Deliver(0)
            } else if !w.hooks.is_empty() {
                Step::HookDone(0)
            } else {
                Step::Tick
            };
            match self.next_state(w, step) {
                Some(next) => *w = next,
                None => return,
            }
        }
    }

    fn next_deadline(&self, w: &World) -> Option<u64> {
        w.nodes.iter().flatten().filter_map(|n| n.next_deadline()).map(|(at, _)| at.as_millis()).min()
    }
}

fn record_vote(w: &mut World, voter: NodeId, term: Term, candidate: NodeId) {
    if w.votes.iter().any(|&(v, t, c)| v == voter && t == term && c != candidate) {
        w.double_vote = true;
    }
    if !w.votes.contains(&(voter, term, candidate)) {
        w.votes.push((voter, term, candidate));
        w.votes.sort();
    }
}

/// Epochs of actuation never go back; a different site needs a higher one.
fn note_epoch(w: &mut World, site: NodeId, epoch: Epoch) {
    if let Some(&(last_site, last_epoch, _)) = w.activations.last() {
        if epoch < last_epoch || (epoch == last_epoch && site != last_site) {
            w.epoch_regressed = true;
        }
    }
}

fn active_sites(w: &World) -> usize {
    let now = Instant::from_millis(w.time);
    w.nodes.iter().flatten().filter(|n| n.is_active(now)).count()
}

impl Model for FailoverModel {
    type State = World;
    type Action = Step;

    fn init_states(&self) -> Vec<World> {
        let nodes = self
            .ids()
            .into_iter()
            .map(|id| Node::new(self.cfg.clone(), id, DurableState::default(), Instant::from_millis(0), 0).ok())
            .collect();
        let mut w = World {
            time: 0,
            start: 0,
            nodes,
            disks: vec![DurableState::default(); self.cfg.members.len()],
            network: Vec::new(),
            hooks: Vec::new(),
            isolated: None,
            crashes: 0,
            drops: 0,
            dups: 0,
            commands: 0,
            votes: Vec::new(),
            activations: Vec::new(),
            approvals_since_change: 0,
            double_vote: false,
            epoch_regressed: false,
            unapproved_change: false,
        };
        // Prelude, not explored: a calm start in which site-a is elected and
        // active, every message delivered in order. Each scenario then puts
        // one fault in and runs calmly to just before the protocol must
        // react; the exploration starts there, so its bounds are spent on
        // the interleavings that matter, not on the way to them.
        self.run_calm(&mut w, |w| active_sites(w) == 1);
        let a = NodeId(0);
        let lease = self.cfg.timers.lease_duration.as_millis() as u64;
        let heartbeat = self.cfg.timers.heartbeat_interval.as_millis() as u64;
        let mut starts = vec![w.clone()];
        // The active site is killed; the others are one heartbeat away from
        // their bindings running out.
        let mut killed = w.clone();
        killed.nodes[a.index()] = None;
        killed.crashes = self.max_crashes;
        let until = killed.time + lease - heartbeat;
        self.run_calm(&mut killed, |w| w.time >= until);
        starts.push(killed.clone());
        // The active site is cut off from both peers, likewise.
        let mut cut = w.clone();
        cut.isolated = Some(a);
        self.run_calm(&mut cut, |w| w.time >= until);
        starts.push(cut);
        // Site-b, the lower priority, is active (after a switchover): now no
        // voter's priority preference protects it, only the bindings do.
        if let Some(mut b_active) = self.next_state(&w, Step::Switchover) {
            self.run_calm(&mut b_active, |w| w.activations.last().is_some_and(|(s, _, _)| *s == NodeId(1)));
            b_active.commands = 0;
            starts.push(b_active);
        }
        match self.cfg.policy.failover_mode {
            // An operator asks for a switchover.
            FailoverMode::Automatic => {
                let mut switch = w.clone();
                self.next_state(&w, Step::Switchover).into_iter().for_each(|s| switch = s);
                starts.push(switch);
            }
            // The failover after the kill is proposed and waits.
            FailoverMode::Manual => {
                let mut proposed = killed;
                let now = |w: &World| Instant::from_millis(w.time);
                self.run_calm(&mut proposed, |w| {
                    w.nodes.iter().flatten().any(|n| n.status(now(w)).pending_failover.is_some())
                });
                starts.push(proposed);
            }
        }
        for s in &mut starts {
            s.start = s.time;
        }
        starts
    }

    fn actions(&self, w: &World, out: &mut Vec<Step>) {
        for i in 0..w.network.len() {
            out.push(Step::Deliver(i));
            if w.drops < self.max_drops {
                out.push(Step::Drop(i));
            }
            if w.dups < self.max_dups {
                out.push(Step::Duplicate(i));
            }
        }
        for i in 0..w.hooks.len() {
            out.push(Step::HookDone(i));
        }
        // Time may pass only while no message in flight would exceed the
        // delay bound: older ones must be delivered or dropped first.
        if let Some(t) = self.next_deadline(w) {
            let oldest = w.network.iter().map(|m| m.0).min().unwrap_or(t);
            if t <= w.start + self.max_time && t <= oldest + self.max_delay {
                out.push(Step::Tick);
            }
        }
        for id in self.ids() {
            match &w.nodes[id.index()] {
                Some(_) if w.crashes < self.max_crashes => out.push(Step::Crash(id)),
                None => out.push(Step::Restart(id)),
                _ => {}
            }
        }
        if w.commands < self.max_commands {
            match self.cfg.policy.failover_mode {
                FailoverMode::Automatic if active_sites(w) == 1 => out.push(Step::Switchover),
                FailoverMode::Manual => {
                    let now = Instant::from_millis(w.time);
                    for (i, node) in w.nodes.iter().enumerate() {
                        if node.as_ref().and_then(|n| n.status(now).pending_failover).is_some() {
                            out.push(Step::Approve(NodeId(i as u8)));
                        }
                    }
                }
                FailoverMode::Automatic => {}
            }
        }
    }

    fn next_state(&self, last: &World, step: Step) -> Option<World> {
        let mut w = last.clone();
        match step {
            Step::Deliver(i) | Step::Duplicate(i) => {
                let (_, from, to, msg) = if matches!(step, Step::Deliver(_)) {
                    w.network.remove(i)
                } else {
                    w.dups += 1;
                    w.network[i]
                };
                self.drive(&mut w, to, &mut |n, now| n.handle_message(now, from, msg));
            }
            Step::Drop(i) => {
                w.network.remove(i);
                w.drops += 1;
            }
            Step::HookDone(i) => {
                let (id, epoch) = w.hooks.remove(i);
                self.drive(&mut w, id, &mut |n, now| n.pre_promote_finished(now, epoch, true));
            }
            Step::Tick => {
                w.time = self.next_deadline(&w)?;
                for id in self.ids() {
                    self.drive(&mut w, id, &mut |n, now| n.handle_timeout(now));
                }
            }
            Step::Crash(id) => {
                w.nodes[id.index()] = None;
                w.hooks.retain(|(h, _)| *h != id);
                w.crashes += 1;
            }
            Step::Restart(id) => {
                let node = Node::new(self.cfg.clone(), id, w.disks[id.index()], Instant::from_millis(w.time), 0);
                w.nodes[id.index()] = node.ok();
                self.drive(&mut w, id, &mut |_, _| {});
            }
            Step::Switchover => {
                w.commands += 1;
                let now = Instant::from_millis(w.time);
                let active =
                    self.ids().into_iter().find(|id| w.nodes[id.index()].as_ref().is_some_and(|n| n.is_active(now)))?;
                let other = self.ids().into_iter().find(|&id| id != active && self.cfg.priority(id) > 0)?;
                let mut accepted = false;
                self.drive(&mut w, active, &mut |n, now| {
                    accepted = n.command(now, Command::Switchover { to: Some(other), at: None }).is_ok()
                });
                if accepted {
                    w.approvals_since_change += 1;
                }
            }
            Step::Approve(id) => {
                w.commands += 1;
                let mut accepted = false;
                self.drive(&mut w, id, &mut |n, now| accepted = n.command(now, Command::Approve { to: None }).is_ok());
                if accepted {
                    w.approvals_since_change += 1;
                }
            }
        }
        Some(w)
    }

    fn within_boundary(&self, w: &World) -> bool {
        w.time <= w.start + self.max_time && w.network.len() <= self.max_in_flight
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            // Rule 1. Forced promotion is not among the model's actions.
            Property::always("at_most_one_valid_lease", |_, w: &World| active_sites(w) <= 1),
            // Rule 2.
            Property::always("actuation_epochs_strictly_increase", |_, w: &World| !w.epoch_regressed),
            // Rule 3.
            Property::always("one_vote_per_term", |_, w: &World| !w.double_vote),
            // Rule 6.
            Property::always("manual_mode_changes_only_with_approval", |_, w: &World| !w.unapproved_change),
            // The checks above are not vacuous: these states are reachable.
            Property::sometimes("failover_happens", |_, w: &World| {
                w.activations.iter().any(|(_, _, c)| *c == ActivationCause::AutomaticFailover)
            }),
            Property::sometimes("handoff_completes", |_, w: &World| {
                w.activations.iter().any(|(_, _, c)| *c == ActivationCause::Handoff)
            }),
            Property::sometimes("approved_failover_happens", |_, w: &World| {
                w.activations.iter().any(|(_, _, c)| *c == ActivationCause::ApprovedFailover)
            }),
        ]
    }
}

/// Explores every interleaving to `depth` steps from each scenario start
/// (breadth-first, one thread, so the count is exact and repeatable) and
/// asserts the safety properties. Returns the checker for further checks.
fn check(mode: FailoverMode, default_depth: usize) -> impl Checker<FailoverModel> {
    let depth = std::env::var("MODEL_DEPTH").ok().and_then(|v| v.parse().ok()).unwrap_or(default_depth);
    let started = std::time::Instant::now();
    let checker = FailoverModel::new(mode).checker().threads(1).target_max_depth(depth).spawn_bfs().join();
    println!(
        "model {mode:?}: explored {} unique states, every interleaving to depth {depth}, in {:.1?}",
        checker.unique_state_count(),
        started.elapsed()
    );
    for (name, path) in checker.discoveries() {
        println!("  {name}: {:?}", path.into_actions());
    }
    checker.assert_no_discovery("at_most_one_valid_lease");
    checker.assert_no_discovery("actuation_epochs_strictly_increase");
    checker.assert_no_discovery("one_vote_per_term");
    checker.assert_no_discovery("manual_mode_changes_only_with_approval");
    checker
}

/// The path the checker reports for a sometimes-property (it fails the test
/// if the property was never reached: the safety checks would be vacuous).
fn discovered(checker: &impl Checker<FailoverModel>, property: &'static str) -> Vec<Step> {
    match checker.discovery(property) {
        Some(path) => path.into_actions(),
        None => panic!("{property} is never reached: the safety checks would be vacuous"),
    }
}

#[test]
fn automatic_mode_is_safe_under_loss_reordering_duplication_and_crashes() {
    let checker = check(FailoverMode::Automatic, 12);
    // Reachability: the always-properties are not vacuous.
    discovered(&checker, "handoff_completes");
    // Pinned trace: the failover path the checker reports (one thread, so
    // it is the same every run). Site-a is killed and restarted at once;
    // while it sits out its quiet period (it cannot know whom it had bound
    // itself to, so it grants nothing), site-b's election timer fires, it
    // wins the pre-vote and the vote from the witness, and it becomes
    // active when its hook returns.
    let failover = discovered(&checker, "failover_happens");
    let a = NodeId(0);
    assert_eq!(
        failover,
        vec![
            Step::Crash(a),
            Step::Tick,
            Step::Restart(a),
            Step::Tick,
            Step::Tick,
            Step::Deliver(1),
            Step::Deliver(1),
            Step::Deliver(2),
            Step::Deliver(2),
            Step::HookDone(0)
        ],
        "the discovered failover trace changed"
    );
    // Pinned size: any change to the protocol's behaviour changes it; check
    // the new number is explained before updating it.
    if std::env::var("MODEL_DEPTH").is_err() {
        assert_eq!(checker.unique_state_count(), 3_617_197, "explored state count changed");
    }
}

#[test]
fn manual_mode_is_safe_and_changes_only_with_approval() {
    let checker = check(FailoverMode::Manual, 14);
    discovered(&checker, "approved_failover_happens");
    assert!(checker.discovery("failover_happens").is_none(), "an automatic failover happened in manual mode");
    if std::env::var("MODEL_DEPTH").is_err() {
        assert_eq!(checker.unique_state_count(), 965_296, "explored state count changed");
    }
}
