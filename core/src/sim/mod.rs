//! A deterministic simulator: N real [`Node`]s on a simulated network, in
//! virtual time, with every protocol invariant checked after every step.
//!
//! It is a test harness shipped inside the core (like quinn-proto's test
//! utilities) so that the core's scenario tests, the `failover-sim` chaos
//! runner and anyone debugging a seed share one implementation. It does no
//! I/O either: the network is a priority queue, the clocks are arithmetic.
//!
//! Faults: messages lost, duplicated and delayed (per-link knobs), links cut
//! one way or both, nodes crashed and restarted from what they last
//! persisted, clocks that run fast or slow within `max_drift_ppm`, health
//! flaps, slow or failing `pre_promote` hooks, operator commands.
//!
//! Crash points: a node can be killed between any two of the actions it
//! asked for ([`SimCluster::crash_after_actions`]), exactly where a real
//! driver can die while it carries them out one by one.
//!
//! Invariants checked after every step and at every action (a breach is
//! recorded as a [`Violation`], never a panic, so a runner can report the
//! seed):
//! - the outcome and mechanism checks of [`invariants`]: at most one active
//!   site, promises that outlast the lease in true time, leases backed by a
//!   majority, no acting at or after the lease end or after a newer term,
//!   only electable sites campaign, nothing sent before it is persisted;
//! - `epochs_increase`: every actuation carries an epoch at least as high as
//!   any before it, and a new site always a strictly higher one;
//! - `one_vote_per_term`: no voter grants two candidates in one term, across
//!   restarts;
//! - `manual_mode_needs_approval`: in manual mode the active site changes
//!   only after an operator approved or switched over.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::action::{Action, Event};
use crate::command::{Command, CommandError};
use crate::config::{ClusterConfig, FailoverMode, NodeId};
use crate::durable::DurableState;
use crate::message::{Epoch, Message};
use crate::node::{Binding, LocalHealth, Node};
use crate::rng::Jitter;
use crate::status::Status;
use crate::time::Instant;

/// A broken invariant, with the virtual time it was seen at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual milliseconds since the start of the run.
    pub at_ms: u64,
    /// The invariant's name.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

/// Network behaviour of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFaults {
    /// The link delivers nothing.
    pub cut: bool,
    /// Chance in 1000 that a message is lost.
    pub loss_per_mille: u32,
    /// Chance in 1000 that a message is delivered twice.
    pub dup_per_mille: u32,
    /// Smallest one-way delay, virtual ms.
    pub min_delay_ms: u64,
    /// Largest one-way delay, virtual ms (messages may overtake each other).
    pub max_delay_ms: u64,
}

impl Default for LinkFaults {
    fn default() -> Self {
        LinkFaults { cut: false, loss_per_mille: 0, dup_per_mille: 0, min_delay_ms: 1, max_delay_ms: 5 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Deliver { from: NodeId, to: NodeId, message: Message },
    HookDone { node: NodeId, incarnation: u32, epoch: Epoch },
}

/// One simulated machine: its clock, its disk, and (while up) its process.
#[derive(Clone, Debug)]
struct Machine {
    node: Option<Node>,
    disk: DurableState,
    incarnation: u32,
    health: LocalHealth,
    hook_fails: bool,
    events: Vec<(u64, Event)>,
    clock: DriftClock,
    /// While down: the binding it held when it crashed.
    binding_at_crash: Option<Binding>,
    /// Crash after carrying out this many more actions.
    crash_after_actions: Option<u32>,
    /// What this member's own config file says; it takes a changed one at
    /// its next start. Members, votes and priorities are the cluster's.
    cfg: Arc<ClusterConfig>,
}

/// A cluster of real nodes in virtual time. Every method that lets time
/// pass checks every invariant after every step.
pub struct SimCluster {
    cfg: Arc<ClusterConfig>,
    now_ms: u64,
    machines: Vec<Machine>,
    /// Violations are recorded up to this many; a run that breaks an
    /// invariant once usually breaks it at every later step too.
    max_violations: usize,
    links: Vec<Vec<LinkFaults>>,
    /// In-flight messages and hook completions, by (due time, sequence).
    queue: BTreeMap<(u64, u64), Pending>,
    seq: u64,
    rng: Jitter,
    /// `pre_promote` takes this long, virtual ms.
    pub hook_delay_ms: u64,
    violations: Vec<Violation>,
    history: History,
    became_active: Vec<(u64, NodeId, Epoch)>,
    resumed: Vec<(u64, NodeId, Epoch)>,
    steps: u64,
    /// While a node handles a vote or pre-vote request: the candidate and
    /// its request, so the answer can be checked against it.
    answering: Option<(NodeId, crate::message::VoteRequest)>,
}

impl SimCluster {
    /// A cluster where every member starts fresh at virtual time 0, all clocks
    /// exact, all links fast and reliable. `seed` fixes everything random.
    pub fn new(cfg: ClusterConfig, seed: u64) -> Result<SimCluster, crate::StartError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let n = cfg.members.len();
        let mut sim = SimCluster {
            machines: Vec::with_capacity(n),
            links: vec![vec![LinkFaults::default(); n]; n],
            queue: BTreeMap::new(),
            seq: 0,
            rng: Jitter::new(seed),
            hook_delay_ms: 10,
            now_ms: 0,
            violations: Vec::new(),
            max_violations: 1000,
            history: History::default(),
            became_active: Vec::new(),
            resumed: Vec::new(),
            steps: 0,
            answering: None,
            cfg,
        };
        for id in sim.cfg.ids().collect::<Vec<_>>() {
            let seed = sim.rng.next_u64();
            let node = Node::new(sim.cfg.clone(), id, DurableState::default(), Instant::from_millis(0), seed)?;
            sim.machines.push(Machine {
                node: Some(node),
                disk: DurableState::default(),
                incarnation: 0,
                health: LocalHealth::GOOD,
                hook_fails: false,
                events: Vec::new(),
                clock: DriftClock::default(),
                binding_at_crash: None,
                crash_after_actions: None,
                cfg: sim.cfg.clone(),
            });
        }
        for id in sim.cfg.ids().collect::<Vec<_>>() {
            sim.drain(id);
        }
        Ok(sim)
    }

    /// The cluster configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// Virtual milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The id of the member called `name`. Panics on an unknown name: test
    /// code names its own members.
    pub fn id(&self, name: &str) -> NodeId {
        match self.cfg.id_of(name) {
            Some(id) => id,
            None => panic!("no member named {name}"),
        }
    }

    /// Steps processed so far (message deliveries and timer firings).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Invariant breaches seen so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Every activation so far: (virtual ms, site, epoch).
    pub fn activations(&self) -> &[(u64, NodeId, Epoch)] {
        &self.became_active
    }

    /// Every restart in place that made a site act again: (virtual ms,
    /// site, epoch). Not among [`SimCluster::activations`]: no election.
    pub fn resumptions(&self) -> &[(u64, NodeId, Epoch)] {
        &self.resumed
    }

    /// Events one member reported, with virtual ms.
    pub fn events(&self, id: NodeId) -> &[(u64, Event)] {
        &self.machines[id.index()].events
    }

    /// Gives `id` its own lease, as an operator editing one node's config
    /// file would; it takes effect when `id` next starts.
    pub fn set_node_lease(&mut self, id: NodeId, lease: std::time::Duration) {
        let mut cfg = ClusterConfig::clone(&self.cfg);
        cfg.timers.lease_duration = lease;
        self.machines[id.index()].cfg = Arc::new(cfg);
    }

    /// Makes `id`'s clock run fast (positive) or slow (negative).
    pub fn set_drift_ppm(&mut self, id: NodeId, ppm: i64) {
        self.machines[id.index()].clock = DriftClock { drift_ppm: ppm };
    }

    /// Network behaviour from `from` to `to`.
    pub fn link_mut(&mut self, from: NodeId, to: NodeId) -> &mut LinkFaults {
        &mut self.links[from.index()][to.index()]
    }

    /// Applies `f` to every directed link.
    pub fn all_links(&mut self, f: impl Fn(&mut LinkFaults)) {
        self.links.iter_mut().flatten().for_each(f);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.links[a.index()][b.index()].cut = true;
        self.links[b.index()][a.index()].cut = true;
    }

    /// Cuts only messages from `from` to `to`.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.links[from.index()][to.index()].cut = true;
    }

    /// Cuts `id` off from every other member.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.cfg.ids().collect::<Vec<_>>() {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Restores every link.
    pub fn heal_all(&mut self) {
        self.all_links(|l| l.cut = false);
    }

    /// Whether `id`'s process runs.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.machines[id.index()].node.is_some()
    }

    /// Kills `id`'s process (kill -9): volatile state is lost, the disk stays.
    pub fn crash(&mut self, id: NodeId) {
        let m = &mut self.machines[id.index()];
        if let Some(node) = m.node.take() {
            m.binding_at_crash = node.inspect().binding;
        }
        m.crash_after_actions = None;
    }

    /// Loses `id`'s state file while it is down: it restarts recovering
    /// ([`DurableState::lost`]). Refused (false) while it is up, while
    /// another member has not caught up after a loss of its own (two
    /// members that lost their state each wait for the other's answer, and
    /// only an operator can decide how to go on from there), and while its
    /// grants may still bind it for longer than the lease its config now
    /// names (its lease was shortened within the last lease: the lost file
    /// held how long it must wait, and nothing else does; a known gap,
    /// listed in docs/security.md).
    pub fn lose_state(&mut self, id: NodeId) -> bool {
        let another_recovering = self.machines.iter().any(|m| m.disk.recovering);
        let m = &mut self.machines[id.index()];
        let lease_ms = crate::time::millis(m.cfg.timers.lease_duration);
        if m.node.is_some() || another_recovering || m.disk.bound_ms > lease_ms {
            return false;
        }
        m.disk = DurableState::lost();
        true
    }

    /// Kills `id`'s process once it has carried out `actions` more of the
    /// actions its node asks for (0: before the next one), wherever that
    /// falls: between a persist and a send, between two sends...
    pub fn crash_after_actions(&mut self, id: NodeId, actions: u32) {
        if self.is_up(id) {
            self.machines[id.index()].crash_after_actions = Some(actions);
        }
    }

    /// Calls off a crash armed by [`SimCluster::crash_after_actions`] that
    /// has not happened yet.
    pub fn cancel_crash(&mut self, id: NodeId) {
        self.machines[id.index()].crash_after_actions = None;
    }

    /// Starts `id` again from what it last persisted.
    pub fn restart(&mut self, id: NodeId) {
        let local = self.local_now(id);
        let seed = self.rng.next_u64();
        let m = &mut self.machines[id.index()];
        if m.node.is_some() {
            return;
        }
        m.incarnation += 1;
        m.binding_at_crash = None;
        match Node::new(m.cfg.clone(), id, m.disk, local, seed) {
            Ok(mut node) => {
                node.set_health(local, m.health);
                m.node = Some(node);
            }
            Err(e) => self.violation("restart", format!("{id} could not restart: {e}")),
        }
        self.drain(id);
    }

    /// Sets `id`'s local health as its checks would report it.
    pub fn set_health(&mut self, id: NodeId, health: LocalHealth) {
        let local = self.local_now(id);
        let m = &mut self.machines[id.index()];
        m.health = health;
        if let Some(node) = m.node.as_mut() {
            node.set_health(local, health);
        }
    }

    /// Makes `id`'s `pre_promote` hook fail (or pass again).
    pub fn set_hook_fails(&mut self, id: NodeId, fails: bool) {
        self.machines[id.index()].hook_fails = fails;
    }

    /// An operator command sent to `id`. An accepted approval, switchover
    /// or shutdown authorises one move of the active role, for the manual-mode
    /// invariant, to the site it names or the one it starts moving to.
    pub fn command(&mut self, id: NodeId, command: Command) -> Result<(), CommandError> {
        let local = self.local_now(id);
        let m = &mut self.machines[id.index()];
        let before = m.events.len();
        let Some(node) = m.node.as_mut() else {
            return Err(CommandError::NotActive { active: None });
        };
        let result = node.command(local, command);
        self.drain(id);
        if result.is_ok() {
            let named = match command {
                Command::Switchover { to, .. } | Command::Approve { to } => to,
                _ => None,
            };
            let started = self.machines[id.index()].events[before..].iter().find_map(|(_, e)| match *e {
                Event::FailoverApproved { target } => Some(target),
                Event::HandoffStarted { to, .. } => Some(to),
                _ => None,
            });
            if let Some(target) = named.or(started) {
                self.history.approved(target);
            }
        }
        self.check_invariants();
        result
    }

    /// Delivers `message` to `to` now, as if `from` had sent it: a peer that
    /// misbehaves, or a forged message the transport let through.
    pub fn inject(&mut self, from: NodeId, to: NodeId, message: Message) {
        self.schedule(self.now_ms, Pending::Deliver { from, to, message });
    }

    /// A target that checks epochs tells `id` it holds `stored`
    /// ([`Node::fenced`]).
    pub fn fenced(&mut self, id: NodeId, stored: Epoch) {
        let local = self.local_now(id);
        if let Some(node) = self.machines[id.index()].node.as_mut() {
            node.fenced(local, stored);
        }
        self.drain(id);
        self.check_invariants();
    }

    /// `id`'s status at the current virtual time, if it is up.
    pub fn status(&self, id: NodeId) -> Option<Status> {
        let local = self.local_now(id);
        self.machines[id.index()].node.as_ref().map(|n| n.status(local))
    }

    /// Members that act as active right now.
    pub fn active_sites(&self) -> Vec<NodeId> {
        self.cfg
            .ids()
            .filter(|&id| {
                let local = self.local_now(id);
                self.machines[id.index()].node.as_ref().is_some_and(|n| n.is_active(local))
            })
            .collect()
    }

    /// The single active site, if exactly one.
    pub fn active(&self) -> Option<NodeId> {
        match self.active_sites().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// Lets `ms` virtual milliseconds pass.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while self.step_before(end) {}
        self.now_ms = end;
        self.check_invariants();
    }

    /// Lets time pass until `done` holds (checked after every step) or
    /// `max_ms` have passed. Returns whether `done` held.
    pub fn run_until(&mut self, max_ms: u64, mut done: impl FnMut(&SimCluster) -> bool) -> bool {
        let end = self.now_ms + max_ms;
        loop {
            if done(self) {
                return true;
            }
            if !self.step_before(end) {
                self.now_ms = end;
                self.check_invariants();
                return done(self);
            }
        }
    }

    /// Processes the next event due at or before `end`; false if none.
    fn step_before(&mut self, end: u64) -> bool {
        let next_msg = self.queue.keys().next().map(|&(t, _)| t);
        let next_timer = self
            .cfg
            .ids()
            .filter_map(|id| {
                let m = &self.machines[id.index()];
                let at = m.node.as_ref()?.next_deadline()?.0;
                Some((m.clock.real_for(at.as_millis(), self.now_ms), id))
            })
            .min();
        let t_msg = next_msg.unwrap_or(u64::MAX);
        let t_timer = next_timer.map_or(u64::MAX, |(t, _)| t);
        let t = t_msg.min(t_timer);
        if t > end {
            return false;
        }
        self.now_ms = self.now_ms.max(t);
        self.steps += 1;
        if t_timer <= t_msg {
            if let Some((_, id)) = next_timer {
                let local = self.local_now(id);
                if let Some(node) = self.machines[id.index()].node.as_mut() {
                    node.handle_timeout(local);
                }
                self.drain(id);
            }
        } else if let Some((_, pending)) = self.queue.pop_first() {
            self.deliver(pending);
        }
        self.check_invariants();
        true
    }

    fn deliver(&mut self, pending: Pending) {
        match pending {
            Pending::Deliver { from, to, message } => {
                let local = self.local_now(to);
                if let Some(node) = self.machines[to.index()].node.as_mut() {
                    node.handle_message(local, from, message);
                    if let Message::PreVote(r) | Message::Vote(r) = message {
                        self.answering = Some((from, r));
                    }
                    self.drain(to);
                    self.answering = None;
                }
            }
            Pending::HookDone { node: id, incarnation, epoch } => {
                let local = self.local_now(id);
                let m = &mut self.machines[id.index()];
                if m.incarnation != incarnation {
                    return;
                }
                let ok = !m.hook_fails;
                if let Some(node) = m.node.as_mut() {
                    node.pre_promote_finished(local, epoch, ok);
                    self.drain(id);
                }
            }
        }
    }

    /// Carries out everything `id` asked for, one action at a time and in
    /// order, as a driver would, crashing between two when asked to.
    fn drain(&mut self, id: NodeId) {
        loop {
            let m = &mut self.machines[id.index()];
            let Some(action) = m.node.as_mut().and_then(Node::poll_action) else {
                return;
            };
            match m.crash_after_actions {
                Some(0) => {
                    self.crash(id);
                    return;
                }
                Some(n) => m.crash_after_actions = Some(n - 1),
                None => {}
            }
            match action {
                Action::Persist(state) => self.machines[id.index()].disk = state,
                Action::Send { to, message } => {
                    let disk = self.machines[id.index()].disk;
                    let found = invariants::check_send(&self.cfg, id, &disk, to, &message);
                    self.record(found);
                    if let (Some((candidate, request)), Message::PreVoteReply(reply) | Message::VoteReply(reply)) =
                        (self.answering, message)
                    {
                        let found = invariants::check_grant(id, &disk, candidate, &request, &reply);
                        self.record(found);
                    }
                    self.transmit(id, to, message)
                }
                Action::RunPrePromote { epoch, .. } => {
                    let incarnation = self.machines[id.index()].incarnation;
                    self.schedule(self.now_ms + self.hook_delay_ms, Pending::HookDone { node: id, incarnation, epoch });
                }
                Action::BecomeActive { epoch, .. } => {
                    self.became_active.push((self.now_ms, id, epoch));
                    let manual = self.cfg.policy.failover_mode == FailoverMode::Manual;
                    let found = [self.history.became_active(id, manual), self.history.actuated(id, epoch)];
                    self.record(found.into_iter().flatten());
                }
                Action::ResumeActive { epoch, .. } => {
                    self.resumed.push((self.now_ms, id, epoch));
                    let manual = self.cfg.policy.failover_mode == FailoverMode::Manual;
                    let found = [self.history.became_active(id, manual), self.history.actuated(id, epoch)];
                    self.record(found.into_iter().flatten());
                }
                Action::Actuate { epoch } | Action::Drain { epoch, .. } => {
                    let found = self.history.actuated(id, epoch);
                    self.record(found);
                }
                Action::StepDown { .. } => {}
                Action::Event(e) => self.machines[id.index()].events.push((self.now_ms, e)),
            }
        }
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, message: Message) {
        if let Message::VoteReply(r) = message {
            if r.granted {
                let found = self.history.vote_granted(from, r.term, to);
                self.record(found);
            }
        }
        let link = self.links[from.index()][to.index()];
        if link.cut || self.roll(link.loss_per_mille) {
            return;
        }
        let copies = if self.roll(link.dup_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let spread = link.max_delay_ms.saturating_sub(link.min_delay_ms);
            let delay = link.min_delay_ms + self.rng.up_to(spread);
            self.schedule(self.now_ms + delay, Pending::Deliver { from, to, message });
        }
    }

    fn roll(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.up_to(999) < u64::from(per_mille)
    }

    fn schedule(&mut self, at: u64, pending: Pending) {
        self.seq += 1;
        self.queue.insert((at, self.seq), pending);
    }

    /// `id`'s clock at the current virtual time.
    fn local_now(&self, id: NodeId) -> Instant {
        Instant::from_millis(self.machines[id.index()].clock.local_at(self.now_ms))
    }

    fn record(&mut self, found: impl IntoIterator<Item = invariants::Breach>) {
        for b in found {
            self.violation(b.invariant, b.detail);
        }
    }

    fn violation(&mut self, invariant: &'static str, detail: String) {
        if self.violations.len() < self.max_violations {
            self.violations.push(Violation { at_ms: self.now_ms, invariant, detail });
        }
    }

    /// The state invariants of [`invariants`], at the current true time.
    fn check_invariants(&mut self) {
        let views: Vec<invariants::MemberView<'_>> = self
            .cfg
            .ids()
            .map(|id| {
                let m = &self.machines[id.index()];
                invariants::MemberView {
                    id,
                    node: m.node.as_ref(),
                    binding_while_down: m.binding_at_crash,
                    clock: m.clock,
                }
            })
            .collect();
        let found = invariants::check_state(&self.cfg, self.now_ms, &views);
        self.record(found);
    }
}

pub mod chaos;
pub mod clock;
mod history;
pub mod invariants;

use clock::DriftClock;
use history::History;
