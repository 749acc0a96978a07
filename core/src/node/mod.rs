//! One member's protocol state machine: [`Node`].
//!
//! Inputs: [`Node::handle_message`], [`Node::handle_timeout`],
//! [`Node::set_health`], [`Node::pre_promote_finished`], [`Node::command`],
//! each with the current monotonic time. Outputs: [`Node::poll_action`]
//! (see [`crate::action`] for the order contract) and
//! [`Node::next_deadline`], the next time the node wants `handle_timeout`.
//!
//! The code is split by job: `election` (pre-votes, votes, the voter's
//! promise), `leader` (lease renewal, handoff, failback and health
//! handover), `operator` (commands), `report` (the status snapshot and the
//! node's report about itself), `inspect` (the view the invariant checks
//! use), `recovery` (a node that lost its state catches up before it
//! votes), and this module (state and timers).

mod election;
mod inspect;
mod leader;
mod operator;
mod recovery;
mod report;

pub use inspect::{Binding, Inspection, LeaseView};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::action::{Action, Event, HandoffReason, StepDownReason, SwitchoverCancelReason};
use crate::config::{ClusterConfig, NodeId};
use crate::durable::DurableState;
use crate::message::{ActivationCause, Epoch, Heartbeat, Message, ProposalNotice, ProposalReason, SiteReport};
use crate::rng::Jitter;
use crate::status::PendingFailover;
use crate::time::{millis, Instant};

/// What the driver reports about the local site's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalHealth {
    /// The site's own checks pass.
    pub healthy: bool,
    /// Its data lag is within `max_lag_on_failover` (true when no bound is
    /// configured).
    pub caught_up: bool,
}

impl LocalHealth {
    /// Healthy and caught up.
    pub const GOOD: LocalHealth = LocalHealth { healthy: true, caught_up: true };
}

/// The node's timers, each a named deadline. At most one deadline per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The lease runs out unless a majority renewed it.
    LeaseExpires,
    /// Send heartbeats (and renew the lease when active).
    HeartbeatDue,
    /// No word from an active site for long enough: consider an election.
    ElectionTimeout,
    /// Re-assert the actuators (convergence).
    ActuationDue,
    /// A planned switchover's drain is over: hand over.
    DrainComplete,
    /// A scheduled switchover is due.
    SwitchoverDue,
    /// A handoff that did not gather a majority in time is given up.
    HandoffAbandoned,
    /// Grants made under a longer lease before a restart have run out: the
    /// node's `bound_ms` can come down to its configured lease.
    QuietPeriodEnds,
}

/// Timers in the order they fire when due together: safety first.
const TIMERS: [Timer; 8] = [
    Timer::LeaseExpires,
    Timer::HeartbeatDue,
    Timer::ElectionTimeout,
    Timer::ActuationDue,
    Timer::DrainComplete,
    Timer::SwitchoverDue,
    Timer::HandoffAbandoned,
    Timer::QuietPeriodEnds,
];

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Deadlines([Option<Instant>; TIMERS.len()]);

impl Deadlines {
    fn slot(t: Timer) -> usize {
        TIMERS.iter().position(|&k| k == t).unwrap_or(0)
    }
    fn set(&mut self, t: Timer, at: Instant) {
        self.0[Self::slot(t)] = Some(at);
    }
    fn clear(&mut self, t: Timer) {
        self.0[Self::slot(t)] = None;
    }
    fn get(&self, t: Timer) -> Option<Instant> {
        self.0[Self::slot(t)]
    }
}

/// A set of members, as a bitmask (at most 16 members).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct VoterSet(u16);

impl VoterSet {
    fn insert(&mut self, id: NodeId) {
        self.0 |= 1 << id.0;
    }
    fn contains(self, id: NodeId) -> bool {
        self.0 & (1 << id.0) != 0
    }
    fn votes(self, cfg: &ClusterConfig) -> u32 {
        cfg.ids().filter(|&id| self.contains(id)).map(|id| cfg.votes(id)).sum()
    }
}

/// A voter's binding: until `until` on its own clock it grants votes and
/// lease renewals to `holder` only. `holder: None` is the quiet period after
/// a restart, when the node cannot know whom it had bound itself to.
///
/// Invariant (rule 1): a voter never grants a vote to a site other than
/// `holder` while `now < until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Promise {
    holder: Option<NodeId>,
    until: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// Elected; waiting for `pre_promote`.
    Promoting,
    /// Acting as active.
    Active,
    /// Still active, draining traffic before a handoff to `to`.
    Draining { to: NodeId, why: HandoffReason },
    /// Restarted in place: the site won this term before the restart
    /// (`DurableState::led`) and does not act until a majority has renewed
    /// a fresh lease (the old process's lease died with it).
    Resuming,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Round {
    seq: u64,
    sent: Instant,
    acks: VoterSet,
    /// The shortest binding any of `acks` promised (and never more than
    /// this node's own lease).
    bound: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Leadership {
    epoch: Epoch,
    cause: ActivationCause,
    phase: Phase,
    /// On this node's clock; the lease is valid while `now < lease_until`.
    lease_until: Instant,
    /// The voters whose grants set `lease_until`: the election's votes, or
    /// the acknowledgements of the renewal round that last extended it.
    backers: VoterSet,
    /// Forced promotion: active without a majority until a higher term.
    forced: bool,
    next_seq: u64,
    /// Renewal rounds younger than one lease.
    rounds: Vec<Round>,
    /// A better site and since when it has looked healthy (failback).
    better_since: Option<(NodeId, Instant)>,
    unhealthy_reported: bool,
    /// The newest epoch a target held beyond this site's own (alarmed once).
    fence_ahead: Option<Epoch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleState {
    Follower,
    PreCandidate {
        term: crate::Term,
        grants: VoterSet,
        approved: bool,
    },
    Candidate {
        term: crate::Term,
        grants: VoterSet,
        /// The shortest binding any of `grants` promised (and never more
        /// than this node's own lease).
        bound: Duration,
        started: Instant,
        approved: bool,
        handoff: bool,
        previous: Option<NodeId>,
    },
    Leader(Leadership),
    /// Stepped down; moving the voters' grants to `to`.
    HandingOff {
        to: NodeId,
        acks: VoterSet,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct PeerView {
    last_seen: Option<Instant>,
    report: Option<SiteReport>,
    /// A proposal the peer holds, with when it was raised on our clock.
    proposal: Option<(ProposalNotice, Instant)>,
    /// When its last heartbeat arrived.
    last_heartbeat: Option<Instant>,
    /// The pause switch its last heartbeat carried: what it has persisted.
    pause: crate::PauseSetting,
    /// The maintenance setting its last heartbeat carried.
    maintenance: crate::MaintenanceSetting,
}

/// The active site as a follower knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct LeaderView {
    site: NodeId,
    epoch: Epoch,
    last_contact: Instant,
}

/// The protocol state of one member (site or witness).
///
/// It never blocks, never reads a clock and never touches the network:
/// every input carries `now`, every decision leaves as an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    cfg: Arc<ClusterConfig>,
    id: NodeId,
    durable: DurableState,
    /// Latest time seen; inputs with an earlier time are treated as now.
    now: Instant,
    health: LocalHealth,
    jitter: Jitter,
    promise: Option<Promise>,
    role: RoleState,
    leader: Option<LeaderView>,
    peers: Vec<PeerView>,
    proposal: Option<PendingFailover>,
    approved: bool,
    cooldown_until: Option<Instant>,
    declined_until: Option<Instant>,
    deadlines: Deadlines,
    actions: VecDeque<Action>,
    /// While `durable.recovering`: what the other members said so far.
    catch_up: recovery::CatchUp,
}

/// Why a node could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error("invalid cluster configuration: {0}")]
    Config(#[from] crate::ConfigError),
    /// The node id is not a member.
    #[error("{0} is not a member of the configured cluster")]
    UnknownNode(NodeId),
    /// The persisted state says grants bind for longer than any lease.
    #[error(
        "the persisted state says this node's grants bind it for {bound_ms} ms, more than the {max} ms any lease \
         may last: it is corrupt; restore it from a backup",
        max = crate::durable::MAX_BOUND_MS
    )]
    BoundOutOfRange {
        /// The figure found.
        bound_ms: u64,
    },
    /// The persisted state holds a counter no cluster can reach.
    #[error(
        "the persisted state holds term {term}, pause version {version} or maintenance version \
         {maintenance_version}, beyond the largest a cluster reaches ({max}): it is corrupt; restore it from a backup",
        max = crate::message::MAX_TERM
    )]
    CounterOutOfRange {
        /// The term found.
        term: u64,
        /// The pause version found.
        version: u64,
        /// The maintenance version found.
        maintenance_version: u64,
    },
}

impl Node {
    /// A node starting (or restarting) at `now` from `durable`, its jitter
    /// fixed by `seed`.
    ///
    /// A restarted voter cannot know whom it had bound itself to, so it
    /// grants nothing for one lease after start (the quiet period), or for
    /// the longer lease it last granted under (`durable.bound_ms`).
    pub fn new(
        cfg: Arc<ClusterConfig>,
        id: NodeId,
        durable: DurableState,
        now: Instant,
        seed: u64,
    ) -> Result<Node, StartError> {
        cfg.validate()?;
        if cfg.member(id).is_none() {
            return Err(StartError::UnknownNode(id));
        }
        let (term, version, maintenance_version) = (durable.term.0, durable.pause.version, durable.maintenance.version);
        if [term, version, maintenance_version].into_iter().any(|c| c > crate::message::MAX_TERM) {
            return Err(StartError::CounterOutOfRange { term, version, maintenance_version });
        }
        if durable.bound_ms > crate::durable::MAX_BOUND_MS {
            return Err(StartError::BoundOutOfRange { bound_ms: durable.bound_ms });
        }
        let lease = cfg.timers.lease_duration;
        let quiet = lease.max(Duration::from_millis(durable.bound_ms));
        // Restart in place: this site won `durable.term` and had not given
        // the role up. Nobody else can win that term, so it may ask for its
        // lease again in it, and act once a majority has renewed it.
        let resume = durable.led.filter(|led| {
            led.term == durable.term && durable.voted_for == Some(id) && cfg.priority(id) > 0 && led.resumes < u16::MAX
        });
        let mut node = Node {
            peers: vec![PeerView::default(); cfg.members.len()],
            cfg,
            id,
            durable,
            now,
            health: LocalHealth::GOOD,
            jitter: Jitter::new(seed),
            promise: Some(Promise { holder: None, until: now + quiet }),
            role: RoleState::Follower,
            leader: None,
            proposal: None,
            approved: false,
            cooldown_until: None,
            declined_until: None,
            deadlines: Deadlines::default(),
            actions: VecDeque::new(),
            catch_up: recovery::CatchUp::default(),
        };
        node.deadlines.set(Timer::HeartbeatDue, now);
        node.arm_election_after_contact(now);
        match resume {
            Some(led) => node.resume(now, led),
            None if node.durable.led.is_some() => {
                // Left by a term that has passed: no role to resume.
                node.durable.led = None;
                node.drop_schedule(SwitchoverCancelReason::NotResumedAfterRestart);
                node.persist();
            }
            None => {
                if node.drop_schedule(SwitchoverCancelReason::NotResumedAfterRestart) {
                    node.persist();
                }
            }
        }
        if quiet > lease {
            node.deadlines.set(Timer::QuietPeriodEnds, now + quiet);
        } else if node.durable.bound_ms != millis(lease) {
            // Written before any grant under the new, longer lease leaves.
            node.durable.bound_ms = millis(lease);
            node.persist();
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The cluster configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The state that must survive a restart (as last emitted in a Persist).
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// The next action for the driver, in order. See [`crate::action`].
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the node next needs [`Node::handle_timeout`], and why.
    pub fn next_deadline(&self) -> Option<(Instant, Timer)> {
        TIMERS.iter().filter_map(|&t| self.deadlines.get(t).map(|at| (at, t))).min()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        for t in TIMERS {
            if self.deadlines.get(t).is_some_and(|at| at <= now) {
                self.deadlines.clear(t);
                self.fire(now, t);
            }
        }
    }

    /// A message from `from`. Messages from unknown members or from itself,
    /// and messages that carry a counter beyond [`crate::message::MAX_TERM`],
    /// are ignored (drivers reject them before they get here).
    pub fn handle_message(&mut self, now: Instant, from: NodeId, message: Message) {
        let now = self.advance(now);
        if from == self.id || self.cfg.member(from).is_none() || !message.within_bounds() {
            return;
        }
        self.peers[from.index()].last_seen = Some(now);
        match message {
            Message::PreVote(req) => self.on_pre_vote(now, from, req),
            Message::PreVoteReply(r) => self.on_pre_vote_reply(now, from, r),
            Message::Vote(req) => self.on_vote(now, from, req),
            Message::VoteReply(r) => self.on_vote_reply(now, from, r),
            Message::Heartbeat(hb) => self.on_heartbeat(now, from, hb),
            Message::HeartbeatReply(r) => self.on_heartbeat_reply(now, from, r),
            Message::ReleaseLease { term, to } => self.on_release(now, from, term, to),
            Message::ReleaseAck { term } => self.on_release_ack(now, from, term),
            Message::TimeoutNow { term } => self.on_timeout_now(now, from, term),
            Message::StateQuery => self.on_state_query(from),
            Message::StateAnswer(a) => self.on_state_answer(now, from, a),
        }
    }

    /// The local site's checks changed (or were re-run).
    pub fn set_health(&mut self, now: Instant, health: LocalHealth) {
        self.advance(now);
        self.health = health;
    }

    /// An external target that checks epochs (a DNS fence record, an
    /// HAProxy variable, the MongoDB state store) holds `stored`, newer
    /// than this site's epoch, so the target refused the write.
    ///
    /// A fence is evidence, not an order: whoever can write the target can
    /// write any number there. While this site's lease is valid no newer
    /// site can have been elected (its voters are bound to this site, and
    /// every quorum includes one of them), so a newer epoch is forged, or
    /// left by a forced promotion. The site stays active, writes nothing
    /// over it (the target's compare-and-set refuses), and raises the alarm
    /// once per value ([`Event::FenceAhead`]; the driver shows the alarm for
    /// as long as a target refuses its writes).
    /// Terms come only from peers, never from a target, so a forged fence
    /// cannot push the term to its end. A site promoted by force holds no
    /// lease to weigh the evidence against: it steps down.
    pub fn fenced(&mut self, now: Instant, stored: Epoch) {
        let now = self.advance(now);
        if stored.0 > crate::message::MAX_TERM || !self.is_active(now) {
            return;
        }
        let RoleState::Leader(l) = &mut self.role else { return };
        if l.epoch >= stored || l.fence_ahead.is_some_and(|seen| seen >= stored) {
            return;
        }
        if l.forced {
            self.lose_leadership(now, StepDownReason::Fenced { by: stored });
            return;
        }
        l.fence_ahead = Some(stored);
        let epoch = l.epoch;
        self.event(Event::FenceAhead { epoch, stored });
    }

    /// Whether this node acts as active at `now`: it won, its `pre_promote`
    /// passed, and its lease (renewed by a majority) has not run out.
    ///
    /// Invariant (rule 1): at most one node in the cluster answers true at
    /// any instant, given clocks whose rates differ by at most
    /// `max_drift_ppm`. Forced promotion is the one, explicit, exception.
    pub fn is_active(&self, now: Instant) -> bool {
        match &self.role {
            RoleState::Leader(l) => {
                matches!(l.phase, Phase::Active | Phase::Draining { .. }) && (l.forced || now < l.lease_until)
            }
            _ => false,
        }
    }

    /// The epoch this node acts under when active.
    pub fn active_epoch(&self, now: Instant) -> Option<Epoch> {
        match &self.role {
            RoleState::Leader(l) if self.is_active(now) => Some(l.epoch),
            _ => None,
        }
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::LeaseExpires => self.on_lease_timer(now),
            Timer::HeartbeatDue => {
                self.deadlines.set(Timer::HeartbeatDue, now + self.cfg.timers.heartbeat_interval);
                self.send_heartbeats(now);
                self.finish_resume(now);
                self.leader_checks(now);
            }
            Timer::ElectionTimeout => self.consider_election(now),
            Timer::ActuationDue => self.on_actuation_timer(now),
            Timer::DrainComplete => self.on_drain_complete(now),
            Timer::SwitchoverDue => self.on_switchover_due(now),
            Timer::HandoffAbandoned => {
                if matches!(self.role, RoleState::HandingOff { .. }) {
                    self.become_follower(now);
                }
            }
            Timer::QuietPeriodEnds => {
                self.durable.bound_ms = millis(self.cfg.timers.lease_duration);
                self.persist();
            }
        }
    }

    fn emit(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn event(&mut self, event: Event) {
        self.emit(Action::Event(event));
    }

    fn persist(&mut self) {
        self.emit(Action::Persist(self.durable));
    }

    /// How long a grant binds its voter: what the grant says, or, from a
    /// build that does not say (0: no grant from this build binds for less
    /// than a lease), this node's own lease, as such builds counted it.
    fn granted_for(&self, bound_ms: u64) -> Duration {
        match bound_ms {
            0 => self.cfg.timers.lease_duration,
            ms => Duration::from_millis(ms),
        }
    }

    /// Binds this voter to `holder` for one lease from `now`, never ending a
    /// binding sooner than it already runs (the quiet period after a restart
    /// can outlast the configured lease). Returns how long the binding now
    /// runs, in milliseconds, for the grant to carry.
    fn bind_to(&mut self, now: Instant, holder: NodeId) -> u64 {
        let until = (now + self.cfg.timers.lease_duration).max(self.promise.map_or(now, |p| p.until));
        self.promise = Some(Promise { holder: Some(holder), until });
        millis(until.saturating_since(now))
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.emit(Action::Send { to, message });
    }

    /// Sends `message` to every other member that has a vote.
    fn send_to_voters(&mut self, message: Message) {
        let ids: Vec<NodeId> = self.cfg.ids().filter(|&i| i != self.id && self.cfg.votes(i) > 0).collect();
        for to in ids {
            self.send(to, message);
        }
    }

    fn is_witness(&self) -> bool {
        matches!(self.cfg.member(self.id).map(|m| m.kind), Some(crate::MemberKind::Witness))
    }

    fn can_be_active(&self) -> bool {
        self.cfg.priority(self.id) > 0
    }

    fn in_maintenance(&self, site: NodeId) -> bool {
        self.durable.maintenance.contains(site)
    }

    fn is_voter(&self) -> bool {
        self.cfg.votes(self.id) > 0
    }

    fn jitter(&mut self) -> Duration {
        Duration::from_millis(self.jitter.up_to(millis(self.cfg.timers.election_jitter)))
    }

    /// After word from an active site (or at start): wait one lease, plus one
    /// heartbeat per better-ranked site other than that active one, plus
    /// jitter, before an election. Voters' grants run out about one lease
    /// after the same heartbeat, so the best remaining site asks first.
    fn arm_election_after_contact(&mut self, now: Instant) {
        if !self.can_be_active() {
            return;
        }
        let t = &self.cfg.timers;
        let lost = self.leader.map(|v| v.site);
        let rank_delay = t.heartbeat_interval * self.cfg.election_rank(self.id, lost);
        let at = now + t.lease_duration + rank_delay + self.jitter();
        self.deadlines.set(Timer::ElectionTimeout, at);
    }

    /// After an attempt: try again in half a heartbeat, plus jitter. A voter
    /// whose grant had not quite run out says yes a moment later; pre-votes
    /// are cheap and disturb nobody.
    fn arm_election_retry(&mut self, now: Instant) {
        if !self.can_be_active() {
            return;
        }
        let at = now + self.cfg.timers.heartbeat_interval / 2 + self.jitter();
        self.deadlines.set(Timer::ElectionTimeout, at);
    }

    /// A voter refused because its grant to another site still runs for
    /// `held_ms`: ask again just after it ends on that voter's clock (plus
    /// the drift margin for ours), if that is sooner than the retry already
    /// armed. A voter whose last heartbeat from the old site came later than
    /// ours otherwise costs a whole retry period. Never sooner than a tenth
    /// of a heartbeat, whatever a peer claims, so a wrong figure cannot make
    /// this node ask in a tight loop.
    fn arm_election_when_grant_ends(&mut self, now: Instant, held_ms: u64) {
        if held_ms == 0 || !self.can_be_active() {
            return;
        }
        let t = &self.cfg.timers;
        let wait = (Duration::from_millis(held_ms) + t.drift_margin()).max(t.heartbeat_interval / 10);
        if self.deadlines.get(Timer::ElectionTimeout).is_none_or(|armed| now + wait < armed) {
            self.deadlines.set(Timer::ElectionTimeout, now + wait);
        }
    }

    /// Heartbeat to every other member; a renewal round when elected.
    fn send_heartbeats(&mut self, now: Instant) {
        let lease = self.start_renewal_round(now);
        let proposal = self.proposal.map(|p| ProposalNotice {
            target: p.target,
            reason: p.reason,
            age_ms: millis(now.saturating_since(p.since)),
        });
        let hb = Heartbeat {
            term: self.durable.term,
            lease,
            report: self.report(now),
            pause: self.durable.pause,
            proposal,
            maintenance: self.durable.maintenance,
        };
        let ids: Vec<NodeId> = self.cfg.ids().filter(|&i| i != self.id).collect();
        for to in ids {
            self.send(to, Message::Heartbeat(hb));
        }
        self.send_state_queries();
    }

    /// Drops the scheduled switchover, if any, saying why; the caller
    /// persists. Returns whether there was one.
    fn drop_schedule(&mut self, reason: SwitchoverCancelReason) -> bool {
        self.deadlines.clear(Timer::SwitchoverDue);
        let Some(s) = self.durable.scheduled.take() else { return false };
        self.event(Event::SwitchoverCancelled { to: s.to, reason });
        true
    }

    fn raise_proposal(&mut self, now: Instant, target: NodeId, reason: ProposalReason) {
        if self.proposal.is_some_and(|p| p.target == target && p.reason == reason) {
            return;
        }
        self.proposal = Some(PendingFailover { target, reason, since: now });
        self.event(Event::FailoverProposed { target, reason });
    }

    fn become_follower(&mut self, now: Instant) {
        self.role = RoleState::Follower;
        for t in [
            Timer::LeaseExpires,
            Timer::ActuationDue,
            Timer::DrainComplete,
            Timer::SwitchoverDue,
            Timer::HandoffAbandoned,
        ] {
            self.deadlines.clear(t);
        }
        let dropped = self.drop_schedule(SwitchoverCancelReason::LostRole);
        if self.leader.is_some_and(|v| v.site == self.id) {
            self.leader = None;
        }
        if self.durable.led.is_some() || dropped {
            // On disk before anything that follows (a release, a vote for
            // another site) leaves: a restart must not take back a role
            // this site gave up.
            self.durable.led = None;
            self.persist();
        }
        self.arm_election_after_contact(now);
    }
}

#[cfg(test)]
mod tests;
