//! Exhaustive model checking of the real protocol core with stateright.
//!
//! The model holds real `failover_core::Node`s for 2 sites and a witness and
//! explores every interleaving, within bounds, of:
//! - message delivery in any order, at any later time (reordering, delay);
//! - message loss (any subset of messages: this covers every partition,
//!   one-way or both ways) and duplication;
//! - crashes at any point: between two steps, and between any two of the
//!   actions a node asked for in one step (the driver carries them out one
//!   by one), and restarts from the state the node last persisted, or,
//!   for the witness once per run, from nothing: its state file lost, so
//!   it restarts recovering and must catch up before it votes;
//! - links cut from the start of a scenario (a site isolated, the two
//!   sites cut from each other while the witness sees both);
//! - abstract time: it jumps to the next deadline any node asked for, so
//!   leases, elections and heartbeats expire in every order relative to the
//!   messages in flight;
//! - drift at the configured bound in the worst pairing: both sites' clocks
//!   run slow (their leases look longer) and the witness's runs fast (its
//!   promises look shorter), with realistic timer ratios (heartbeat 100 ms,
//!   lease 300 ms, drift bound 2%, so the margin is 13 ms and a missing one
//!   shows as whole milliseconds);
//! - `pre_promote` hooks that finish late;
//! - operator switchover (automatic model) and approval (manual model);
//! - maintenance: with site-a killed, site-b is put in maintenance at the
//!   witness at any point of the exploration (before anything reacts, while
//!   site-b asks for votes, after it won).
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
//! Every state is checked against the shared invariants of
//! `failover_core::sim::invariants` (one property per invariant: the
//! mechanism, not only the outcome) and the model's own history checks.

use std::sync::Arc;
use std::time::Duration;

use failover_core::sim::clock::DriftClock;
use failover_core::sim::invariants::{self, MemberView};
use failover_core::{
    Action, ActivationCause, Binding, ClusterConfig, Command, DurableState, Epoch, Event, FailbackPolicy, FailoverMode,
    Instant, Member, Message, Node, NodeId, Policy, ProposalReason, Term, Timers, VoteRequest,
};
use stateright::{Checker, Model, Property};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct World {
    time: u64,
    /// When the explored part began (after the prelude).
    start: u64,
    /// Activations that happened in the prelude (not explored).
    prelude_activations: usize,
    nodes: Vec<Option<Node>>,
    disks: Vec<DurableState>,
    /// For a crashed node: the binding it held when it crashed.
    down_bindings: Vec<Option<Binding>>,
    /// In-flight messages with their send time, kept sorted so equal
    /// multisets hash equally.
    network: Vec<(u64, NodeId, NodeId, Message)>,
    hooks: Vec<(NodeId, Epoch)>,
    /// Directed links that deliver nothing.
    cut: Vec<(NodeId, NodeId)>,
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
    /// A node died between two actions of one step.
    crashed_midway: bool,
    /// A restarted site took its role back without an election.
    resumed: bool,
    /// A node restarted without its state file (at most once per run).
    state_lost: bool,
    /// A node that lost its state caught up with the cluster.
    recovered: bool,
    /// The maintenance scenario: the command putting site-b in maintenance
    /// at the witness has yet to be given.
    maintenance_pending: bool,
    /// While a node handles a vote or pre-vote request: the candidate and
    /// its request, to check the answer against (empty between steps).
    answering: Option<(NodeId, VoteRequest)>,
    /// The first invariant of `failover_core::sim::invariants` broken.
    breach: Option<&'static str>,
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
    /// The node restarts without its state file.
    RestartLost(NodeId),
    Switchover,
    Approve(NodeId),
    /// The operator puts site-b in maintenance at the witness.
    Maintenance,
    /// `step`, during which `node` dies after carrying out `after` of the
    /// actions it asked for (at least one, fewer than all).
    CrashMidway {
        step: Box<Step>,
        node: NodeId,
        after: u8,
    },
}

/// Most actions one input produces that a crash may fall between.
const MAX_CRASH_POINT: u8 = 6;

struct FailoverModel {
    cfg: Arc<ClusterConfig>,
    clocks: Vec<DriftClock>,
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
            heartbeat_interval: Duration::from_millis(HEARTBEAT_MS),
            lease_duration: Duration::from_millis(LEASE_MS),
            election_jitter: Duration::ZERO,
            max_drift_ppm: DRIFT_BOUND_PPM as u32,
            actuation_interval: Duration::from_millis(100_000),
            failback_delay: Duration::from_millis(100_000),
            failover_cooldown: Duration::ZERO,
            drain: Duration::ZERO,
            declined_backoff: Duration::from_millis(100_000),
        };
        let cfg = ClusterConfig {
            members: vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")],
            timers,
            policy: Policy { failover_mode: mode, failback: FailbackPolicy::Manual },
        };
        let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        // Worst pairing at the bound: the sites (the leaders) slow, the
        // witness (the voter every lease needs) fast.
        let clocks = cfg
            .members
            .iter()
            .map(|m| DriftClock { drift_ppm: if m.priority() > 0 { -DRIFT_BOUND_PPM } else { DRIFT_BOUND_PPM } })
            .collect();
        FailoverModel {
            cfg: Arc::new(cfg),
            clocks,
            max_time: env("MODEL_MAX_TIME", LEASE_MS),
            max_crashes: env("MODEL_MAX_CRASHES", 1) as u8,
            max_drops: env("MODEL_MAX_DROPS", 1) as u8,
            max_dups: env("MODEL_MAX_DUPS", 1) as u8,
            max_commands: 1,
            max_in_flight: env("MODEL_MAX_IN_FLIGHT", 4) as usize,
            max_delay: env("MODEL_MAX_DELAY", HEARTBEAT_MS),
        }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.cfg.ids().collect()
    }

    fn local(&self, w: &World, id: NodeId) -> Instant {
        Instant::from_millis(self.clocks[id.index()].local_at(w.time))
    }

    /// Runs a node input and carries out its actions one by one, like a
    /// driver would. With `crash_after`, the node dies once it has carried
    /// out that many; returns false when it asked for no more than that (the
    /// crash point does not exist).
    fn drive(
        &self,
        w: &mut World,
        id: NodeId,
        input: &mut dyn FnMut(&mut Node, Instant),
        crash_after: Option<usize>,
    ) -> bool {
        let now = self.local(w, id);
        let Some(node) = w.nodes[id.index()].as_mut() else { return crash_after.is_none() };
        input(node, now);
        let mut actions = Vec::new();
        while let Some(a) = node.poll_action() {
            actions.push(a);
        }
        if let Some(after) = crash_after {
            if actions.len() <= after {
                return false;
            }
            actions.truncate(after);
        }
        for a in actions {
            match a {
                Action::Persist(d) => w.disks[id.index()] = d,
                // Status heartbeats carry no lease and bind nobody: they
                // arrive at once (handling one never sends anything).
                // Cut off, or nobody listening (a crashed process refuses
                // the connection). Messages already in flight when a node
                // crashes stay in flight and may reach its next incarnation.
                Action::Send { to, message } => {
                    let breach = invariants::check_send(&self.cfg, id, &w.disks[id.index()], to, &message);
                    w.breach = w.breach.or(breach.map(|b| b.invariant));
                    if let (Some((candidate, request)), Message::PreVoteReply(reply) | Message::VoteReply(reply)) =
                        (w.answering, message)
                    {
                        let disk = &w.disks[id.index()];
                        let breach = invariants::check_grant(id, disk, candidate, &request, &reply);
                        w.breach = w.breach.or(breach.map(|b| b.invariant));
                    }
                    self.transmit(w, id, to, message);
                }
                Action::RunPrePromote { epoch, .. } => w.hooks.push((id, epoch)),
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
                // Restart in place: the same site under the same epoch, or
                // the epoch check flags it.
                Action::ResumeActive { epoch, .. } => {
                    note_epoch(w, id, epoch);
                    w.resumed = true;
                }
                Action::Actuate { epoch } | Action::Drain { epoch, .. } => note_epoch(w, id, epoch),
                Action::Event(Event::StateRecovered { .. }) => w.recovered = true,
                Action::StepDown { .. } | Action::Event(_) => {}
            }
        }
        if crash_after.is_some() {
            self.crash(w, id);
        }
        w.network.sort();
        w.hooks.sort();
        true
    }

    fn transmit(&self, w: &mut World, from: NodeId, to: NodeId, message: Message) {
        if let Message::VoteReply(r) = message {
            if r.granted {
                record_vote(w, from, r.term, to);
            }
        }
        // Cut off, or nobody listening (a crashed process refuses the
        // connection). Messages already in flight when a node crashes stay
        // in flight and may reach its next incarnation.
        if w.cut.contains(&(from, to)) || w.nodes[to.index()].is_none() {
            return;
        }
        match message {
            // Status heartbeats carry no lease and bind nobody: they arrive
            // at once (handling one never sends anything).
            Message::Heartbeat(hb) if hb.lease.is_none() => {
                self.drive(w, to, &mut |n, now| n.handle_message(now, from, message), None);
            }
            _ => w.network.push((w.time, from, to, message)),
        }
    }

    fn crash(&self, w: &mut World, id: NodeId) {
        if let Some(node) = w.nodes[id.index()].take() {
            w.down_bindings[id.index()] = node.inspect().binding;
        }
        w.hooks.retain(|(h, _)| *h != id);
        w.crashes += 1;
    }

    /// The shared invariants, on the state just reached.
    fn check_invariants(&self, w: &mut World) {
        if w.breach.is_some() {
            return;
        }
        let views: Vec<MemberView<'_>> = self
            .ids()
            .into_iter()
            .map(|id| MemberView {
                id,
                node: w.nodes[id.index()].as_ref(),
                binding_while_down: w.down_bindings[id.index()],
                clock: self.clocks[id.index()],
            })
            .collect();
        let breach = invariants::check_state(&self.cfg, w.time, &views).first().map(|b| b.invariant);
        w.breach = breach;
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

    /// The true time of the next deadline any node asked for.
    fn next_deadline(&self, w: &World) -> Option<u64> {
        self.ids()
            .into_iter()
            .filter_map(|id| {
                let at = w.nodes[id.index()].as_ref()?.next_deadline()?.0;
                Some(self.clocks[id.index()].real_for(at.as_millis(), w.time))
            })
            .min()
    }

    /// Nodes whose timers fire at true time `t`.
    fn due_at(&self, w: &World, t: u64) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|&id| {
                let local = self.clocks[id.index()].local_at(t);
                w.nodes[id.index()]
                    .as_ref()
                    .and_then(|n| n.next_deadline())
                    .is_some_and(|(at, _)| at.as_millis() <= local)
            })
            .collect()
    }

    /// The node that handles `step`'s input, for a crash midway.
    fn handler(&self, w: &World, step: &Step) -> Vec<NodeId> {
        match *step {
            Step::Deliver(i) => vec![w.network[i].2],
            Step::HookDone(i) => vec![w.hooks[i].0],
            Step::Tick => self.next_deadline(w).map(|t| self.due_at(w, t)).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Applies `step`; with `crash`, `(node, after)` dies midway.
    fn apply(&self, w: &mut World, step: &Step, crash: Option<(NodeId, usize)>) -> Option<()> {
        let crash_for = |id: NodeId| crash.filter(|(n, _)| *n == id).map(|(_, after)| after);
        let mut happened = true;
        match *step {
            Step::Deliver(i) | Step::Duplicate(i) => {
                let (_, from, to, msg) = if matches!(step, Step::Deliver(_)) {
                    w.network.remove(i)
                } else {
                    w.dups += 1;
                    w.network[i]
                };
                if let Message::PreVote(r) | Message::Vote(r) = msg {
                    w.answering = Some((from, r));
                }
                happened = self.drive(w, to, &mut |n, now| n.handle_message(now, from, msg), crash_for(to));
                w.answering = None;
            }
            Step::Drop(i) => {
                w.network.remove(i);
                w.drops += 1;
            }
            Step::HookDone(i) => {
                let (id, epoch) = w.hooks.remove(i);
                happened = self.drive(w, id, &mut |n, now| n.pre_promote_finished(now, epoch, true), crash_for(id));
            }
            Step::Tick => {
                w.time = self.next_deadline(w)?;
                for id in self.ids() {
                    happened &= self.drive(w, id, &mut |n, now| n.handle_timeout(now), crash_for(id));
                }
            }
            Step::Crash(id) => self.crash(w, id),
            Step::Restart(id) | Step::RestartLost(id) => {
                if matches!(step, Step::RestartLost(_)) {
                    w.disks[id.index()] = DurableState::lost();
                    w.state_lost = true;
                }
                let node = Node::new(self.cfg.clone(), id, w.disks[id.index()], self.local(w, id), 0);
                w.nodes[id.index()] = node.ok();
                w.down_bindings[id.index()] = None;
                self.drive(w, id, &mut |_, _| {}, None);
            }
            Step::Switchover => {
                w.commands += 1;
                let active = self.ids().into_iter().find(|&id| {
                    let now = self.local(w, id);
                    w.nodes[id.index()].as_ref().is_some_and(|n| n.is_active(now))
                })?;
                let other = self.ids().into_iter().find(|&id| id != active && self.cfg.priority(id) > 0)?;
                let mut accepted = false;
                let command = Command::Switchover { to: Some(other), at: None };
                self.drive(w, active, &mut |n, now| accepted = n.command(now, command).is_ok(), None);
                if accepted {
                    w.approvals_since_change += 1;
                }
            }
            Step::Approve(id) => {
                w.commands += 1;
                let mut accepted = false;
                let approve = Command::Approve { to: None };
                self.drive(w, id, &mut |n, now| accepted = n.command(now, approve).is_ok(), None);
                if accepted {
                    w.approvals_since_change += 1;
                }
            }
            Step::Maintenance => {
                w.maintenance_pending = false;
                let command = Command::Maintenance { site: NodeId(1), on: true };
                self.drive(
                    w,
                    NodeId(2),
                    &mut |n, now| {
                        // Refused once site-b is known as active: nothing changes then.
                        let _ = n.command(now, command);
                    },
                    None,
                );
            }
            Step::CrashMidway { ref step, node, after } => {
                w.crashed_midway = true;
                return self.apply(w, step, Some((node, usize::from(after))));
            }
        }
        happened.then_some(())
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

fn active_sites(m: &FailoverModel, w: &World) -> usize {
    m.ids().into_iter().filter(|&id| w.nodes[id.index()].as_ref().is_some_and(|n| n.is_active(m.local(w, id)))).count()
}

/// A failover is pending approval on some node.
fn proposal_pending(m: &FailoverModel, w: &World) -> bool {
    m.ids()
        .into_iter()
        .any(|id| w.nodes[id.index()].as_ref().is_some_and(|n| n.status(m.local(w, id)).pending_failover.is_some()))
}

/// A failover waits on some node because its target is in maintenance.
fn maintenance_holds_back_failover(m: &FailoverModel, w: &World) -> bool {
    m.ids().into_iter().any(|id| {
        w.nodes[id.index()].as_ref().is_some_and(|n| {
            n.status(m.local(w, id)).pending_failover.is_some_and(|p| p.reason == ProposalReason::TargetInMaintenance)
        })
    })
}

/// A site became active for `cause` in the explored part (not the prelude).
fn explored_activation(w: &World, cause: ActivationCause) -> bool {
    w.activations[w.prelude_activations..].iter().any(|(_, _, c)| *c == cause)
}

const HEARTBEAT_MS: u64 = 100;
const LEASE_MS: u64 = 300;
const DRIFT_BOUND_PPM: i64 = 20_000;

impl Model for FailoverModel {
    type State = World;
    type Action = Step;

    fn init_states(&self) -> Vec<World> {
        let nodes = self
            .ids()
            .into_iter()
            .map(|id| Node::new(self.cfg.clone(), id, DurableState::default(), Instant::from_millis(0), 0).ok())
            .collect();
        let n = self.cfg.members.len();
        let mut w = World {
            time: 0,
            start: 0,
            prelude_activations: 0,
            nodes,
            disks: vec![DurableState::default(); n],
            down_bindings: vec![None; n],
            network: Vec::new(),
            hooks: Vec::new(),
            cut: Vec::new(),
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
            crashed_midway: false,
            resumed: false,
            state_lost: false,
            recovered: false,
            maintenance_pending: false,
            answering: None,
            breach: None,
        };
        // Prelude, not explored: a calm start in which site-a is elected and
        // active, every message delivered in order. Each scenario then puts
        // one fault in and runs calmly to just before the protocol must
        // react; the exploration starts there, so its bounds are spent on
        // the interleavings that matter, not on the way to them.
        self.run_calm(&mut w, |w| active_sites(self, w) == 1);
        let (a, b, witness) = (NodeId(0), NodeId(1), NodeId(2));
        let mut starts = vec![w.clone()];
        // The others are one heartbeat away from their bindings running out.
        let until = w.time + LEASE_MS - HEARTBEAT_MS;
        // The active site is killed.
        let mut killed = w.clone();
        killed.nodes[a.index()] = None;
        killed.crashes = self.max_crashes;
        self.run_calm(&mut killed, |w| w.time >= until);
        starts.push(killed.clone());
        // Maintenance: site-a is killed as above, and the operator puts
        // site-b, the only successor, in maintenance at the witness at any
        // point of the exploration.
        let mut maintenance = killed.clone();
        maintenance.maintenance_pending = true;
        // The active site is cut off from both peers.
        let mut isolated = w.clone();
        isolated.cut = vec![(a, b), (b, a), (a, witness), (witness, a)];
        self.run_calm(&mut isolated, |w| w.time >= until);
        starts.push(isolated);
        // Site-b, the lower priority, is active (after a switchover): now no
        // voter's priority preference protects it, only the bindings do.
        if let Some(mut b_active) = self.next_state(&w, Step::Switchover) {
            self.run_calm(&mut b_active, |w| w.activations.last().is_some_and(|(s, _, _)| *s == b));
            b_active.commands = 0;
            starts.push(b_active.clone());
            // And the two sites lose each other while the witness sees both:
            // site-a, the better site, stops hearing site-b and runs, while
            // the witness still renews site-b's lease.
            let mut sites_cut = b_active;
            sites_cut.cut = vec![(a, b), (b, a)];
            let until = sites_cut.time + LEASE_MS - HEARTBEAT_MS;
            self.run_calm(&mut sites_cut, |w| w.time >= until);
            starts.push(sites_cut);
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
                self.run_calm(&mut proposed, |w| proposal_pending(self, w));
                starts.push(proposed);
            }
        }
        starts.push(maintenance);
        for s in &mut starts {
            s.start = s.time;
            s.prelude_activations = s.activations.len();
        }
        starts
    }

    fn actions(&self, w: &World, out: &mut Vec<Step>) {
        let mut inputs = Vec::new();
        for i in 0..w.network.len() {
            inputs.push(Step::Deliver(i));
            if w.drops < self.max_drops {
                out.push(Step::Drop(i));
            }
            if w.dups < self.max_dups {
                out.push(Step::Duplicate(i));
            }
        }
        for i in 0..w.hooks.len() {
            inputs.push(Step::HookDone(i));
        }
        // Time may pass only while no message in flight would exceed the
        // delay bound: older ones must be delivered or dropped first.
        if let Some(t) = self.next_deadline(w) {
            let oldest = w.network.iter().map(|m| m.0).min().unwrap_or(t);
            if t <= w.start + self.max_time && t <= oldest + self.max_delay {
                inputs.push(Step::Tick);
            }
        }
        if w.crashes < self.max_crashes {
            for step in &inputs {
                for node in self.handler(w, step) {
                    for after in 1..MAX_CRASH_POINT {
                        out.push(Step::CrashMidway { step: Box::new(step.clone()), node, after });
                    }
                }
            }
        }
        out.extend(inputs);
        for id in self.ids() {
            match &w.nodes[id.index()] {
                Some(_) if w.crashes < self.max_crashes => out.push(Step::Crash(id)),
                None => {
                    out.push(Step::Restart(id));
                    // The witness's state is the one whose loss matters most
                    // (it decides every two-site election); losing a site's
                    // too would multiply the states without a new kind of
                    // interleaving.
                    if !w.state_lost && id == NodeId(2) {
                        out.push(Step::RestartLost(id));
                    }
                }
                _ => {}
            }
        }
        if w.maintenance_pending {
            out.push(Step::Maintenance);
        }
        if w.commands < self.max_commands {
            match self.cfg.policy.failover_mode {
                FailoverMode::Automatic if active_sites(self, w) == 1 => out.push(Step::Switchover),
                FailoverMode::Manual => {
                    for id in self.ids() {
                        let now = self.local(w, id);
                        if w.nodes[id.index()].as_ref().and_then(|n| n.status(now).pending_failover).is_some() {
                            out.push(Step::Approve(id));
                        }
                    }
                }
                FailoverMode::Automatic => {}
            }
        }
    }

    fn next_state(&self, last: &World, step: Step) -> Option<World> {
        let mut w = last.clone();
        self.apply(&mut w, &step, None)?;
        self.check_invariants(&mut w);
        Some(w)
    }

    fn within_boundary(&self, w: &World) -> bool {
        w.time <= w.start + self.max_time && w.network.len() <= self.max_in_flight
    }

    fn properties(&self) -> Vec<Property<Self>> {
        // One property per shared invariant, named after it.
        macro_rules! never_breached {
            ($name:path) => {
                Property::always($name, |_, w: &World| w.breach != Some($name))
            };
        }
        vec![
            // Rule 1. Forced promotion is not among the model's actions.
            never_breached!(invariants::AT_MOST_ONE_ACTIVE),
            never_breached!(invariants::PROMISES_OUTLAST_LEASE),
            never_breached!(invariants::LEASE_BACKED_BY_MAJORITY),
            never_breached!(invariants::ACTIVE_ONLY_WITHIN_LEASE),
            never_breached!(invariants::ACTIVE_ONLY_IN_OWN_TERM),
            never_breached!(invariants::ONLY_ELECTABLE_SITES_CAMPAIGN),
            never_breached!(invariants::PERSISTED_BEFORE_SENT),
            never_breached!(invariants::SITE_IN_MAINTENANCE_NEVER_ELECTED),
            never_breached!(invariants::LOST_STATE_NEVER_VOTES),
            // Rule 2.
            Property::always("actuation_epochs_strictly_increase", |_, w: &World| !w.epoch_regressed),
            // Rule 3.
            Property::always("one_vote_per_term", |_, w: &World| !w.double_vote),
            // Rule 6.
            Property::always("manual_mode_changes_only_with_approval", |_, w: &World| !w.unapproved_change),
            // The checks above are not vacuous: these states are reachable.
            Property::sometimes("failover_happens", |_, w: &World| {
                explored_activation(w, ActivationCause::AutomaticFailover)
            }),
            Property::sometimes("handoff_completes", |_, w: &World| explored_activation(w, ActivationCause::Handoff)),
            Property::sometimes("approved_failover_happens", |_, w: &World| {
                explored_activation(w, ActivationCause::ApprovedFailover)
            }),
            Property::sometimes("crash_between_actions_happens", |_, w: &World| w.crashed_midway),
            Property::sometimes("restart_in_place_happens", |_, w: &World| w.resumed),
            Property::sometimes("lost_state_caught_up", |_, w: &World| w.recovered),
            // Maintenance was in force when the protocol had to react: the
            // failover to site-b waits for its maintenance to end.
            Property::sometimes("maintenance_holds_back_failover", |m: &FailoverModel, w: &World| {
                maintenance_holds_back_failover(m, w)
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
    let history = ["actuation_epochs_strictly_increase", "one_vote_per_term", "manual_mode_changes_only_with_approval"];
    for property in invariants::ALL.into_iter().chain(history) {
        checker.assert_no_discovery(property);
    }
    checker
}

/// Held by each test for as long as it runs: an exploration and its
/// checker hold about 10 GB, and the test harness would run both at once.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let _turn = one_at_a_time();
    let checker = check(FailoverMode::Automatic, 11);
    // Reachability: the always-properties are not vacuous.
    discovered(&checker, "handoff_completes");
    discovered(&checker, "crash_between_actions_happens");
    discovered(&checker, "lost_state_caught_up");
    // Pinned trace: the failover path the checker reports (one thread, so
    // it is the same every run). From the scenario where site-a was killed:
    // heartbeats pass, site-b's election timer fires, it wins the pre-vote
    // (one copy duplicated on the way) and the vote from the witness, and it
    // becomes active when its hook returns. (A site-a restarted within that
    // time takes its role back in place instead, so no shorter failover
    // path starts with its restart.)
    let failover = discovered(&checker, "failover_happens");
    assert_eq!(
        failover,
        vec![
            Step::Tick,
            Step::Tick,
            Step::Tick,
            Step::Tick,
            Step::Deliver(1),
            Step::Duplicate(1),
            Step::Deliver(1),
            Step::Deliver(2),
            Step::HookDone(0)
        ],
        "the discovered failover trace changed"
    );
    // Pinned trace of a restart in place, from the calm start: site-a's
    // process dies and is back at once, it waits (no lease) until its first
    // renewal round leaves and a majority acknowledges it, then acts again.
    let a = NodeId(0);
    let resumed = discovered(&checker, "restart_in_place_happens");
    assert_eq!(
        resumed,
        vec![
            Step::Crash(a),
            Step::Restart(a),
            Step::Tick,
            Step::Tick,
            Step::Deliver(0),
            Step::Deliver(0),
            Step::Tick,
            Step::Tick,
            Step::Deliver(1)
        ],
        "the discovered restart in place changed"
    );
    // Pinned size: it detects change (any change to the protocol's
    // behaviour changes it), it is not a safety check (the properties are);
    // explain the new number before updating it. (3,142,217 before a
    // restarted active site could take its role back in place: states in
    // which it resumes, and renewal rounds of its new process, were added.
    // 3,282,700 before maintenance: the maintenance scenario was added, a
    // copy of the one where site-a was killed in which the command putting
    // site-b in maintenance can come at any step; most of its states are
    // new, since every node's state holds the setting once it has heard.
    // 3,368,437 before a lost state file: a crashed witness may restart
    // recovering, once per run, and its state queries and answers
    // interleave with everything else.)
    if std::env::var("MODEL_DEPTH").is_err() {
        assert_eq!(checker.unique_state_count(), 3_970_650, "explored state count changed");
    }
    discovered(&checker, "maintenance_holds_back_failover");
}

#[test]
fn manual_mode_is_safe_and_changes_only_with_approval() {
    let _turn = one_at_a_time();
    let checker = check(FailoverMode::Manual, 14);
    discovered(&checker, "approved_failover_happens");
    assert!(checker.discovery("failover_happens").is_none(), "an automatic failover happened in manual mode");
    discovered(&checker, "restart_in_place_happens");
    // 1,491,030 before restart in place: in the scenario where site-a was
    // killed and the failover waits for approval, a restarted site-a used
    // to sit out its quiet period; it now takes its role back and renews,
    // and those renewal rounds interleave with everything else.
    // 2,637,216 before maintenance: the maintenance scenario (see the
    // automatic test) was added; here it also explores approvals, refused
    // for the site in maintenance.
    // 3,324,765 before a lost state file (see the automatic test).
    if std::env::var("MODEL_DEPTH").is_err() {
        assert_eq!(checker.unique_state_count(), 4_295_869, "explored state count changed");
    }
    discovered(&checker, "lost_state_caught_up");
    discovered(&checker, "maintenance_holds_back_failover");
}
