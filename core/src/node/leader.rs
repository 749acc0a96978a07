//! The elected site: lease renewal, promotion, handoff, failback and the
//! unhealthy-active handover.

use super::{Node, Phase, Promise, RoleState, Round, Timer, VoterSet};
use crate::action::{Action, Event, HandoffReason, StepDownReason, SwitchoverCancelReason};
use crate::command::CommandError;
use crate::config::{FailbackPolicy, FailoverMode, NodeId};
use crate::message::{ActivationCause, Epoch, HeartbeatReply, LeaseRenewal, Message, ProposalReason};
use crate::time::Instant;

impl Node {
    /// Opens a renewal round when elected and returns what the heartbeat
    /// carries for it. The leader's own vote counts at once.
    pub(super) fn start_renewal_round(&mut self, now: Instant) -> Option<LeaseRenewal> {
        let lease = self.cfg.timers.lease_duration;
        let is_voter = self.is_voter();
        let id = self.id;
        let RoleState::Leader(l) = &mut self.role else { return None };
        let seq = l.next_seq;
        l.next_seq += 1;
        l.rounds.retain(|r| now.saturating_since(r.sent) < lease);
        let mut acks = VoterSet::default();
        if is_voter {
            acks.insert(id);
        }
        l.rounds.push(Round { seq, sent: now, acks, bound: lease });
        let cause = l.cause;
        if is_voter {
            self.bind_to(now, id);
        }
        self.extend_lease(seq);
        let cooldown = match self.cooldown_until {
            Some(until) if cause == ActivationCause::AutomaticFailover => until.saturating_since(now),
            _ => std::time::Duration::ZERO,
        };
        Some(LeaseRenewal { seq, cause, cooldown_ms: crate::time::millis(cooldown) })
    }

    pub(super) fn on_heartbeat_reply(&mut self, now: Instant, from: NodeId, r: HeartbeatReply) {
        if r.term > self.durable.term {
            self.adopt_term(now, r.term);
            return;
        }
        if r.term != self.durable.term || !r.granted {
            return;
        }
        let promised = self.granted_for(r.bound_ms);
        let RoleState::Leader(l) = &mut self.role else { return };
        if let Some(round) = l.rounds.iter_mut().find(|x| x.seq == r.seq) {
            round.acks.insert(from);
            round.bound = round.bound.min(promised);
            self.extend_lease(r.seq);
        }
        self.finish_resume(now);
    }

    /// When round `seq` has a majority, the lease runs to the shortest
    /// binding its acknowledgements promised, counted from when the round
    /// was sent, less the drift margin: every voter that acknowledged
    /// received it later and is bound that long on its own clock, whatever
    /// lease its own config names.
    fn extend_lease(&mut self, seq: u64) {
        let quorum = self.cfg.quorum();
        let RoleState::Leader(l) = &mut self.role else { return };
        let Some(round) = l.rounds.iter().find(|x| x.seq == seq) else { return };
        if l.forced || round.acks.votes(&self.cfg) < quorum {
            return;
        }
        let until = round.sent + round.bound - self.cfg.timers.drift_margin_for(round.bound);
        if until >= l.lease_until {
            // Equal: a late acknowledgement of the round that set it.
            l.backers = round.acks;
        }
        if until > l.lease_until {
            l.lease_until = until;
            self.deadlines.set(Timer::LeaseExpires, until);
        }
    }

    pub(super) fn on_lease_timer(&mut self, now: Instant) {
        if let RoleState::Leader(l) = &self.role {
            if l.forced {
                return;
            }
            if now >= l.lease_until {
                self.lose_leadership(now, StepDownReason::LeaseExpired);
            } else {
                let until = l.lease_until;
                self.deadlines.set(Timer::LeaseExpires, until);
            }
        }
    }

    /// Leaves the elected role. Emits `StepDown` if it was acting as active.
    pub(super) fn lose_leadership(&mut self, now: Instant, reason: StepDownReason) {
        let RoleState::Leader(l) = &self.role else { return };
        let epoch = l.epoch;
        let was_active = matches!(l.phase, Phase::Active | Phase::Draining { .. });
        let was_resuming = l.phase == Phase::Resuming;
        if was_resuming {
            // Persisted by `become_follower` (`led` is still set).
            self.drop_schedule(SwitchoverCancelReason::NotResumedAfterRestart);
        }
        self.become_follower(now);
        if was_resuming {
            self.event(Event::ResumeAbandoned { epoch, reason });
        }
        if was_active {
            self.emit(Action::StepDown { epoch, reason });
            self.event(Event::SteppedDown { epoch, reason });
        }
    }

    /// The driver ran `pre_promote` for `epoch`; `ok` is its outcome.
    pub fn pre_promote_finished(&mut self, now: Instant, epoch: Epoch, ok: bool) {
        let now = self.advance(now);
        let RoleState::Leader(l) = &mut self.role else { return };
        if l.epoch != epoch || l.phase != Phase::Promoting {
            return;
        }
        if !ok {
            self.declined_until = Some(now + self.cfg.timers.declined_backoff);
            match self.best_target(now, 1) {
                Some(to) if self.cfg.policy.failover_mode == FailoverMode::Automatic => {
                    self.release_to(now, to, HandoffReason::PromotionDeclined)
                }
                Some(to) => {
                    self.lose_leadership(now, StepDownReason::PromotionDeclined);
                    self.raise_proposal(now, to, ProposalReason::PromotionDeclined);
                }
                None => self.lose_leadership(now, StepDownReason::PromotionDeclined),
            }
            self.event(Event::SteppedDown { epoch, reason: StepDownReason::PromotionDeclined });
            return;
        }
        if !l.forced && now >= l.lease_until {
            self.lose_leadership(now, StepDownReason::LeaseExpired);
            return;
        }
        l.phase = Phase::Active;
        let cause = l.cause;
        if !l.forced && Epoch::from(self.durable.term) == epoch {
            // Before it first acts: a restart may then resume the role.
            self.durable.led = Some(crate::durable::Led { term: self.durable.term, cause, resumes: 0 });
            self.persist();
        }
        self.emit(Action::BecomeActive { epoch, cause });
        self.event(Event::BecameActive { epoch, cause });
        self.emit(Action::Actuate { epoch });
        self.deadlines.set(Timer::ActuationDue, now + self.cfg.timers.actuation_interval);
    }

    /// Restart in place, at start: the persisted `led` says this site won
    /// the current term and never gave the role up. It takes the elected
    /// role back in the same term and epoch, but with no lease at all
    /// (`lease_until` is now): only a renewal round sent by this process and
    /// acknowledged by a majority makes it act ([`Node::finish_resume`]),
    /// exactly as for a lease renewal, so what the voters promised bounds
    /// the new lease and a voter that has moved on (a newer term, a grant to
    /// another site) refuses. If no majority renews within one lease it
    /// gives up and stands by like any restarted node.
    pub(super) fn resume(&mut self, now: Instant, led: crate::durable::Led) {
        let epoch = Epoch::from(led.term);
        // Written before the first round leaves (rounds of this process are
        // numbered from it).
        let resumes = led.resumes + 1;
        self.durable.led = Some(crate::durable::Led { resumes, ..led });
        self.persist();
        self.install_role(now, epoch, led.cause, super::Phase::Resuming, (now, VoterSet::default()), false);
        if let RoleState::Leader(l) = &mut self.role {
            l.next_seq = (u64::from(resumes) << 48) + 1;
        }
        // Give up unless renewed within one lease.
        self.deadlines.set(Timer::LeaseExpires, now + self.cfg.timers.lease_duration);
        self.deadlines.set(Timer::HeartbeatDue, now);
        self.event(Event::ResumeStarted { epoch });
        if let Some(s) = self.durable.scheduled {
            self.deadlines.set(Timer::SwitchoverDue, s.at.max(now));
        }
    }

    /// A resuming site whose fresh lease a majority has renewed acts again,
    /// under its old epoch. Its promote hooks ran in the process before the
    /// restart, so none runs again; actuators re-assert what they already
    /// hold.
    pub(super) fn finish_resume(&mut self, now: Instant) {
        let RoleState::Leader(l) = &mut self.role else { return };
        if l.phase != Phase::Resuming || now >= l.lease_until {
            return;
        }
        l.phase = Phase::Active;
        let (epoch, cause) = (l.epoch, l.cause);
        self.emit(Action::ResumeActive { epoch, cause });
        self.event(Event::ActiveRoleResumed { epoch });
        self.emit(Action::Actuate { epoch });
        self.deadlines.set(Timer::ActuationDue, now + self.cfg.timers.actuation_interval);
        // The switchover the process before the restart scheduled.
        if let Some(s) = self.durable.scheduled {
            self.deadlines.set(Timer::SwitchoverDue, s.at.max(now));
        }
    }

    pub(super) fn on_actuation_timer(&mut self, now: Instant) {
        if let Some(epoch) = self.active_epoch(now) {
            self.emit(Action::Actuate { epoch });
            self.deadlines.set(Timer::ActuationDue, now + self.cfg.timers.actuation_interval);
        }
    }

    /// The best site to hand over to: healthy, caught up, in touch with a
    /// majority, heard from within one lease, priority at least `min_priority`
    /// (and above 0), not in maintenance; highest priority first, then
    /// lowest id.
    pub(super) fn best_target(&self, now: Instant, min_priority: u16) -> Option<NodeId> {
        self.cfg
            .ids()
            .filter(|&d| d != self.id && self.cfg.priority(d) >= min_priority.max(1))
            .filter(|&d| !self.in_maintenance(d))
            .filter(|&d| self.recently_seen(now, d))
            .filter(|&d| self.peers[d.index()].report.is_some_and(|r| r.healthy && r.caught_up && r.sees_quorum))
            .max_by_key(|&d| (self.cfg.priority(d), std::cmp::Reverse(d)))
    }

    /// Automatic decisions of the active site, once per heartbeat: hand over
    /// when its own checks fail (rule 5), fail back to a better site (rule 4).
    pub(super) fn leader_checks(&mut self, now: Instant) {
        let RoleState::Leader(l) = &self.role else { return };
        if l.phase != Phase::Active || self.durable.pause.paused {
            return;
        }
        let in_cooldown = l.cause == ActivationCause::AutomaticFailover && self.cooldown_until.is_some_and(|c| now < c);
        let unhealthy_reported = l.unhealthy_reported;
        if !self.report(now).healthy {
            match self.best_target(now, 1) {
                Some(to) if self.cfg.policy.failover_mode == FailoverMode::Automatic && !in_cooldown => {
                    self.begin_handoff(now, to, HandoffReason::Unhealthy);
                }
                Some(to) => self.raise_proposal(now, to, ProposalReason::ActiveUnhealthy),
                None if !unhealthy_reported => {
                    if let RoleState::Leader(l) = &mut self.role {
                        l.unhealthy_reported = true;
                    }
                    self.event(Event::UnhealthyWithoutSuccessor);
                }
                None => {}
            }
            return;
        }
        if self.proposal.is_some_and(|p| p.reason == ProposalReason::ActiveUnhealthy) {
            self.proposal = None;
        }
        let failback = self.cfg.policy.failback == FailbackPolicy::Automatic;
        let better = if failback { self.best_target(now, self.cfg.priority(self.id) + 1) } else { None };
        let delay = self.cfg.timers.failback_delay;
        if better.is_none() && self.proposal.is_some_and(|p| p.reason == ProposalReason::Failback) {
            self.proposal = None;
        }
        let RoleState::Leader(l) = &mut self.role else { return };
        l.unhealthy_reported = false;
        match (better, l.better_since) {
            (Some(to), Some((seen, since))) if seen == to => {
                if now.saturating_since(since) < delay {
                } else if self.cfg.policy.failover_mode == FailoverMode::Manual {
                    // Rule 6: in manual mode nothing moves on its own.
                    self.raise_proposal(now, to, ProposalReason::Failback);
                } else {
                    self.begin_handoff(now, to, HandoffReason::Failback);
                }
            }
            (Some(to), _) => l.better_since = Some((to, now)),
            (None, _) => l.better_since = None,
        }
    }

    /// Starts a graceful handoff to `to`: drain first when the drain time is
    /// set and the move is planned, then release the lease.
    pub(super) fn begin_handoff(&mut self, now: Instant, to: NodeId, why: HandoffReason) {
        let drain = self.cfg.timers.drain;
        let planned = matches!(why, HandoffReason::Switchover | HandoffReason::Shutdown | HandoffReason::Failback);
        self.event(Event::HandoffStarted { to, why });
        let RoleState::Leader(l) = &mut self.role else { return };
        if l.phase == Phase::Active && planned && !drain.is_zero() {
            l.phase = Phase::Draining { to, why };
            let epoch = l.epoch;
            self.emit(Action::Drain { epoch, to });
            self.deadlines.set(Timer::DrainComplete, now + drain);
            return;
        }
        self.release_to(now, to, why);
    }

    pub(super) fn on_drain_complete(&mut self, now: Instant) {
        if let RoleState::Leader(l) = &self.role {
            if let Phase::Draining { to, why } = l.phase {
                self.release_to(now, to, why);
            }
        }
    }

    /// Steps down first, then asks the voters to move their grants to `to`.
    /// Once a majority has, `to` is told to run (TimeoutNow). The old site is
    /// no longer active from the first line, so no wait for lease expiry is
    /// needed.
    pub(super) fn release_to(&mut self, now: Instant, to: NodeId, why: HandoffReason) {
        let RoleState::Leader(l) = &self.role else { return };
        let epoch = l.epoch;
        let was_active = matches!(l.phase, Phase::Active | Phase::Draining { .. });
        let reason = StepDownReason::Handoff { to, why };
        let mut acks = VoterSet::default();
        if self.is_voter() {
            acks.insert(self.id);
            if let Some(p) = self.promise {
                self.promise = Some(Promise { holder: Some(to), until: p.until });
            }
        }
        self.become_follower(now);
        self.role = RoleState::HandingOff { to, acks };
        self.deadlines.clear(Timer::ElectionTimeout);
        self.deadlines.set(Timer::HandoffAbandoned, now + self.cfg.timers.lease_duration);
        if was_active {
            self.emit(Action::StepDown { epoch, reason });
            self.event(Event::SteppedDown { epoch, reason });
        }
        self.send_to_voters(Message::ReleaseLease { term: self.durable.term, to });
        self.check_release_quorum(now);
    }

    pub(super) fn on_release_ack(&mut self, now: Instant, from: NodeId, term: crate::Term) {
        if term != self.durable.term {
            return;
        }
        if let RoleState::HandingOff { acks, .. } = &mut self.role {
            acks.insert(from);
            self.check_release_quorum(now);
        }
    }

    fn check_release_quorum(&mut self, now: Instant) {
        let RoleState::HandingOff { to, acks } = self.role else { return };
        if acks.votes(&self.cfg) >= self.cfg.quorum() {
            self.send(to, Message::TimeoutNow { term: self.durable.term });
            self.become_follower(now);
        }
    }

    /// A scheduled switchover is due: hand over, or drop it saying why.
    /// A site restarted in place that does not act yet keeps it until it
    /// does ([`Node::finish_resume`] arms it again); a target this process
    /// has not heard from yet (it has just started) is waited for, up to
    /// one lease past the due time.
    pub(super) fn on_switchover_due(&mut self, now: Instant) {
        let Some(s) = self.durable.scheduled else { return };
        if matches!(&self.role, RoleState::Leader(l) if l.phase == Phase::Resuming) {
            return;
        }
        let unheard = self.peers.get(s.to.index()).is_some_and(|p| p.report.is_none());
        if unheard && now < s.at + self.cfg.timers.lease_duration && self.is_active(now) {
            self.deadlines.set(Timer::SwitchoverDue, now + self.cfg.timers.heartbeat_interval);
            return;
        }
        let verdict = if self.is_active(now) { self.check_target(now, s.to) } else { Err(CommandError::Busy) };
        match verdict {
            Ok(()) => {
                self.durable.scheduled = None;
                self.persist();
                self.begin_handoff(now, s.to, HandoffReason::Switchover);
            }
            Err(e) => {
                let reason = if self.is_active(now) {
                    SwitchoverCancelReason::TargetIneligible(e)
                } else {
                    SwitchoverCancelReason::NotActive
                };
                self.drop_schedule(reason);
                self.persist();
            }
        }
    }
}
