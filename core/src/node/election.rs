//! Elections: pre-votes, votes, and the voter's promise.
//!
//! Safety rests on two rules enforced here:
//! - a voter grants at most one vote per term, and persists it before the
//!   reply leaves (`on_vote`: `Persist` is queued before `Send`);
//! - a voter never grants a vote to a site other than the holder of its
//!   promise until that promise has expired on its own clock
//!   (`grant_check`), and every grant (vote or lease renewal) binds it for
//!   one full lease from the moment it received the request.

use super::{LeaderView, Node, Promise, RoleState, Timer, VoterSet};
use crate::action::{Action, Event, StepDownReason};
use crate::config::{FailoverMode, NodeId};
use crate::durable::Chosen;
use crate::message::{
    ActivationCause, Epoch, Heartbeat, HeartbeatReply, LeaseRenewal, Message, ProposalReason, Refusal, Term, VoteReply,
    VoteRequest,
};
use crate::time::{millis, Instant};

impl Node {
    /// Would this voter grant `candidate` a vote for `req` now? Term and
    /// "already voted" are checked by the callers; everything else here.
    pub(super) fn grant_check(&self, now: Instant, candidate: NodeId, req: &VoteRequest) -> Result<(), Refusal> {
        if self.cfg.priority(candidate) == 0 {
            return Err(Refusal::NotElectable);
        }
        // Rule 1: the grant this voter made must have run out first.
        if let Some(p) = self.promise {
            if now < p.until && p.holder != Some(candidate) {
                return Err(Refusal::LeaseHeld);
            }
        }
        if !req.report.healthy {
            return Err(Refusal::CandidateUnhealthy);
        }
        // Maintenance: no unplanned or approved failover to the site. A
        // handoff was checked by the active site that started it.
        if !req.handoff && self.in_maintenance(candidate) {
            return Err(Refusal::InMaintenance);
        }
        if req.handoff || req.approved {
            return Ok(());
        }
        // From here on: an unplanned failover nobody approved.
        if !req.report.caught_up {
            return Err(Refusal::CandidateLagging);
        }
        let chosen = self.durable.last_chosen.map(|c| c.site);
        let reclaim = chosen.is_none() || chosen == Some(candidate);
        if self.durable.pause.paused && !reclaim {
            return Err(Refusal::Paused);
        }
        // Rule 6: in manual mode only the last chosen site moves by itself.
        if self.cfg.policy.failover_mode == FailoverMode::Manual && !reclaim {
            return Err(Refusal::NeedsApproval);
        }
        // Rule 7.
        if self.cooldown_until.is_some_and(|c| now < c) && !reclaim {
            return Err(Refusal::Cooldown);
        }
        // Rule 4: among eligible sites the highest priority wins.
        if self.better_site_than(now, candidate).is_some() {
            return Err(Refusal::BetterCandidate);
        }
        Ok(())
    }

    /// A site with higher priority than `candidate` that looks able to win:
    /// healthy, caught up, heard from within one lease, in touch with a
    /// majority (this node included, when it is that site) and not in
    /// maintenance.
    pub(super) fn better_site_than(&self, now: Instant, candidate: NodeId) -> Option<NodeId> {
        let floor = self.cfg.priority(candidate);
        let better = self.cfg.ids().filter(|&d| d != candidate && self.cfg.priority(d) > floor);
        better.filter(|&d| !self.in_maintenance(d)).find(|&d| {
            let report = if d == self.id { Some(self.report(now)) } else { self.peers[d.index()].report };
            self.recently_seen(now, d) && report.is_some_and(|r| r.healthy && r.caught_up && r.sees_quorum)
        })
    }

    pub(super) fn on_pre_vote(&mut self, now: Instant, from: NodeId, req: VoteRequest) {
        if !self.is_voter() {
            return;
        }
        let verdict = if req.term <= self.durable.term {
            Err(Refusal::StaleTerm)
        } else if self.is_recovering() {
            Err(Refusal::Recovering)
        } else {
            self.grant_check(now, from, &req)
        };
        // A stale candidate learns the current term from the refusal, so it
        // catches up instead of asking about an old term forever.
        let term = if verdict == Err(Refusal::StaleTerm) { self.durable.term } else { req.term };
        let reply = self.vote_reply(now, term, verdict);
        self.send(from, Message::PreVoteReply(reply));
    }

    pub(super) fn on_vote(&mut self, now: Instant, from: NodeId, req: VoteRequest) {
        if !self.is_voter() {
            return;
        }
        if req.term > self.durable.term {
            self.adopt_term(now, req.term);
        }
        let verdict = if req.term < self.durable.term {
            Err(Refusal::StaleTerm)
        } else if self.is_recovering() {
            Err(Refusal::Recovering)
        } else if self.durable.voted_for.is_some_and(|v| v != from) {
            Err(Refusal::AlreadyVoted)
        } else {
            self.grant_check(now, from, &req)
        };
        let mut bound_ms = 0;
        if verdict.is_ok() {
            self.durable.voted_for = Some(from);
            self.note_chosen(from, req.term);
            self.persist();
            bound_ms = self.bind_to(now, from);
        }
        let reply = VoteReply { bound_ms, ..self.vote_reply(now, self.durable.term, verdict) };
        self.send(from, Message::VoteReply(reply));
    }

    fn vote_reply(&self, now: Instant, term: Term, verdict: Result<(), Refusal>) -> VoteReply {
        let lease_held_ms = match (verdict, self.promise) {
            (Err(Refusal::LeaseHeld), Some(p)) => millis(p.until.saturating_since(now)),
            _ => 0,
        };
        VoteReply { term, granted: verdict.is_ok(), refusal: verdict.err(), lease_held_ms, bound_ms: 0 }
    }

    pub(super) fn on_pre_vote_reply(&mut self, now: Instant, from: NodeId, r: VoteReply) {
        let RoleState::PreCandidate { term, grants, approved } = &mut self.role else { return };
        if r.refusal == Some(Refusal::StaleTerm) && r.term >= *term {
            self.adopt_term(now, r.term);
            return;
        }
        if r.term != *term {
            return;
        }
        if !r.granted {
            let term = *term;
            self.on_refusal(now, from, term, r);
            return;
        }
        grants.insert(from);
        if grants.votes(&self.cfg) >= self.cfg.quorum() {
            let approved = *approved;
            self.start_election(now, approved, false);
        }
    }

    pub(super) fn on_vote_reply(&mut self, now: Instant, from: NodeId, r: VoteReply) {
        if r.term > self.durable.term {
            self.adopt_term(now, r.term);
            return;
        }
        let promised = self.granted_for(r.bound_ms);
        let RoleState::Candidate { term, grants, bound, .. } = &mut self.role else { return };
        if r.term != *term {
            return;
        }
        if !r.granted {
            let term = *term;
            self.on_refusal(now, from, term, r);
            return;
        }
        grants.insert(from);
        *bound = (*bound).min(promised);
        if grants.votes(&self.cfg) >= self.cfg.quorum() {
            self.win(now);
        }
    }

    /// A voter said no. When the reason is one an operator can lift, the
    /// failover becomes a proposal here, so it is visible and approvable
    /// even when this node's own view said it could go ahead.
    fn on_refusal(&mut self, now: Instant, by: NodeId, term: Term, reply: VoteReply) {
        let Some(refusal) = reply.refusal else { return };
        self.event(Event::VoteRefused { by, term, refusal });
        let reason = match refusal {
            Refusal::LeaseHeld => return self.arm_election_when_grant_ends(now, reply.lease_held_ms),
            Refusal::NeedsApproval => ProposalReason::ManualMode,
            Refusal::Cooldown => ProposalReason::Cooldown,
            Refusal::CandidateLagging => ProposalReason::TargetLagging,
            // The voter knows this site is in maintenance before it does.
            Refusal::InMaintenance => ProposalReason::TargetInMaintenance,
            _ => return,
        };
        self.raise_proposal(now, self.id, reason);
    }

    /// A higher term was seen: adopt it, forget the vote, leave any role.
    pub(super) fn adopt_term(&mut self, now: Instant, term: Term) {
        self.durable.term = term;
        self.durable.voted_for = None;
        self.persist();
        match self.role {
            RoleState::Leader(_) => self.lose_leadership(now, StepDownReason::HigherTerm),
            RoleState::Follower => {}
            _ => self.become_follower(now),
        }
    }

    /// Remember the site chosen in `term` if it is the newest choice known.
    pub(super) fn note_chosen(&mut self, site: NodeId, term: Term) {
        if self.durable.last_chosen.is_none_or(|c| c.term <= term) {
            self.durable.last_chosen = Some(Chosen { site, term });
        }
    }

    /// The election timer fired: decide whether to run, wait, or propose.
    pub(super) fn consider_election(&mut self, now: Instant) {
        self.arm_election_retry(now);
        if !self.can_be_active() || matches!(self.role, RoleState::Leader(_) | RoleState::HandingOff { .. }) {
            return;
        }
        let lease = self.cfg.timers.lease_duration;
        if self.leader.is_some_and(|v| v.site != self.id && now.saturating_since(v.last_contact) < lease) {
            return;
        }
        if self.declined_until.is_some_and(|d| now < d) || !self.health.healthy {
            return;
        }
        if self.promise.is_some_and(|p| now < p.until && p.holder != Some(self.id)) {
            return;
        }
        // In maintenance, this site would take over: say so, so the operator
        // sees why nothing moves. No approval lifts it.
        if self.in_maintenance(self.id) {
            if self.better_site_than(now, self.id).is_none() {
                self.raise_proposal(now, self.id, ProposalReason::TargetInMaintenance);
            }
            return;
        }
        if !self.approved {
            if self.better_site_than(now, self.id).is_some() {
                return;
            }
            let chosen = self.durable.last_chosen.map(|c| c.site);
            let reclaim = chosen.is_none() || chosen == Some(self.id);
            // Paused, no site is active and this is the one that would take
            // over: say so, so the operator sees it and can approve.
            let waits_for = if self.durable.pause.paused {
                Some(ProposalReason::Paused)
            } else if self.cfg.policy.failover_mode == FailoverMode::Manual && !reclaim {
                Some(ProposalReason::ManualMode)
            } else if self.cooldown_until.is_some_and(|c| now < c) && !reclaim {
                Some(ProposalReason::Cooldown)
            } else if !self.health.caught_up {
                Some(ProposalReason::TargetLagging)
            } else {
                None
            };
            if let Some(reason) = waits_for {
                self.raise_proposal(now, self.id, reason);
                return;
            }
        }
        let approved = self.approved;
        self.start_pre_vote(now, approved);
    }

    fn vote_request(&self, now: Instant, term: Term, approved: bool, handoff: bool) -> VoteRequest {
        VoteRequest { term, report: self.report(now), approved, handoff }
    }

    /// Pre-vote: ask whether a majority would vote, without touching terms,
    /// so a site that was cut off cannot disrupt a healthy active site.
    pub(super) fn start_pre_vote(&mut self, now: Instant, approved: bool) {
        let Some(term) = self.durable.term.next() else { return };
        let req = self.vote_request(now, term, approved, false);
        let mut grants = VoterSet::default();
        if self.is_voter() {
            if self.grant_check(now, self.id, &req).is_err() {
                return;
            }
            grants.insert(self.id);
        }
        self.role = RoleState::PreCandidate { term, grants, approved };
        self.send_to_voters(Message::PreVote(req));
        if grants.votes(&self.cfg) >= self.cfg.quorum() {
            self.start_election(now, approved, false);
        }
    }

    /// Real election in the next term; the node votes for itself first.
    pub(super) fn start_election(&mut self, now: Instant, approved: bool, handoff: bool) {
        let previous = self.durable.last_chosen.map(|c| c.site);
        let Some(term) = self.durable.term.next() else { return };
        self.durable.term = term;
        self.durable.voted_for = Some(self.id);
        self.note_chosen(self.id, term);
        self.persist();
        let mut grants = VoterSet::default();
        if self.is_voter() {
            grants.insert(self.id);
            self.bind_to(now, self.id);
        }
        let bound = self.cfg.timers.lease_duration;
        self.role = RoleState::Candidate { term, grants, bound, started: now, approved, handoff, previous };
        self.event(Event::ElectionStarted { term, approved, handoff });
        let req = self.vote_request(now, term, approved, handoff);
        self.send_to_voters(Message::Vote(req));
        self.arm_election_retry(now);
        if grants.votes(&self.cfg) >= self.cfg.quorum() {
            self.win(now);
        }
    }

    /// A heartbeat from any member: note its report, proposal and pause
    /// switch; when it renews a lease, follow it and bind to it.
    pub(super) fn on_heartbeat(&mut self, now: Instant, from: NodeId, hb: Heartbeat) {
        let peer = &mut self.peers[from.index()];
        peer.report = Some(hb.report);
        peer.last_heartbeat = Some(now);
        peer.pause = hb.pause;
        peer.maintenance = hb.maintenance;
        peer.proposal = hb.proposal.map(|n| (n, now - std::time::Duration::from_millis(n.age_ms)));
        self.adopt_pause(hb.pause);
        self.adopt_maintenance(now, hb.maintenance);
        let Some(renewal) = hb.lease else {
            // Terms spread through status heartbeats too, except to an
            // elected site: only lease traffic and votes may depose it.
            if hb.term > self.durable.term && !matches!(self.role, RoleState::Leader(_)) {
                self.adopt_term(now, hb.term);
            }
            return;
        };
        if hb.term < self.durable.term {
            if self.is_voter() {
                let reply = HeartbeatReply { term: self.durable.term, seq: renewal.seq, granted: false, bound_ms: 0 };
                self.send(from, Message::HeartbeatReply(reply));
            }
            return;
        }
        if hb.term > self.durable.term {
            self.adopt_term(now, hb.term);
        }
        match self.role {
            // Two elected sites in one term happen only after a forced
            // promotion; neither binds to the other.
            RoleState::Leader(_) => {
                if self.is_voter() {
                    let reply =
                        HeartbeatReply { term: self.durable.term, seq: renewal.seq, granted: false, bound_ms: 0 };
                    self.send(from, Message::HeartbeatReply(reply));
                }
                return;
            }
            RoleState::Follower => {}
            _ => self.become_follower(now),
        }
        self.follow(now, from, hb.term, renewal);
        if self.is_voter() {
            // A node that lost its state does not know the cluster's term:
            // the site asking may have been elected in a term others have
            // long left (a restart in place of a site cut off since), and a
            // renewal from it would let that site act again under its old
            // epoch.
            let granted = !self.is_recovering();
            let bound_ms = if granted { self.bind_to(now, from) } else { 0 };
            let reply = HeartbeatReply { term: self.durable.term, seq: renewal.seq, granted, bound_ms };
            self.send(from, Message::HeartbeatReply(reply));
        }
    }

    fn follow(&mut self, now: Instant, site: NodeId, term: Term, renewal: LeaseRenewal) {
        let cause = renewal.cause;
        let epoch = Epoch::from(term);
        let is_new = self.leader.is_none_or(|v| v.site != site || v.epoch != epoch);
        self.leader = Some(LeaderView { site, epoch, last_contact: now });
        if self.durable.last_chosen != Some(Chosen { site, term }) {
            self.note_chosen(site, term);
            self.persist();
        }
        if is_new {
            self.event(Event::ActiveSiteChanged { site, epoch, cause });
        }
        // Rule 7, as the active site counts it.
        // What the active site says is left, never more than this node's own
        // cooldown: a bad figure cannot hold failover back for longer.
        let left = std::time::Duration::from_millis(renewal.cooldown_ms).min(self.cfg.timers.failover_cooldown);
        self.cooldown_until = Some(now + left);
        self.proposal = None;
        self.approved = false;
        self.arm_election_after_contact(now);
    }

    pub(super) fn adopt_pause(&mut self, pause: crate::PauseSetting) {
        if pause <= self.durable.pause {
            return;
        }
        self.durable.pause = pause;
        self.persist();
        let by = NodeId(pause.by);
        self.event(if pause.paused { Event::Paused { by } } else { Event::Resumed { by } });
    }

    pub(super) fn adopt_maintenance(&mut self, now: Instant, setting: crate::MaintenanceSetting) {
        if setting <= self.durable.maintenance {
            return;
        }
        self.install_maintenance(now, setting);
    }

    /// Takes `setting` as the sites in maintenance: persists it, records
    /// each site that changed, and, when this site is now in maintenance,
    /// stops any unplanned or approved campaign of its own.
    pub(super) fn install_maintenance(&mut self, now: Instant, setting: crate::MaintenanceSetting) {
        let before = self.durable.maintenance;
        self.durable.maintenance = setting;
        self.persist();
        let by = NodeId(setting.by);
        let changed: Vec<NodeId> = self.cfg.ids().filter(|&s| before.contains(s) != setting.contains(s)).collect();
        for site in changed {
            self.event(Event::MaintenanceChanged { site, on: setting.contains(site), by });
        }
        if !self.in_maintenance(self.id) {
            if self.proposal.is_some_and(|p| p.reason == ProposalReason::TargetInMaintenance) {
                self.proposal = None;
            }
            return;
        }
        self.approved = false;
        let campaigning = match self.role {
            RoleState::PreCandidate { .. } => true,
            RoleState::Candidate { handoff, .. } => !handoff,
            _ => false,
        };
        if campaigning {
            // It was the site to take over: say why it no longer does.
            self.become_follower(now);
            self.raise_proposal(now, self.id, ProposalReason::TargetInMaintenance);
        }
    }

    /// Handoff step 1, at a voter: move the grant from the old active site to
    /// the target, then acknowledge.
    pub(super) fn on_release(&mut self, now: Instant, from: NodeId, term: Term, to: NodeId) {
        if term < self.durable.term || !self.is_voter() || self.is_recovering() {
            return;
        }
        if term > self.durable.term {
            self.adopt_term(now, term);
        }
        if self.leader.is_some_and(|v| v.site == from) {
            self.leader = None;
        }
        if self.transfer_promise(now, from, to) {
            self.send(from, Message::ReleaseAck { term });
        }
    }

    /// Moves a live grant held by `from` to `to`, keeping its expiry. Returns
    /// false when this voter is bound to a third site.
    fn transfer_promise(&mut self, now: Instant, from: NodeId, to: NodeId) -> bool {
        match self.promise {
            Some(p) if now < p.until && p.holder == Some(from) => {
                self.promise = Some(Promise { holder: Some(to), until: p.until });
                true
            }
            Some(p) if now < p.until => p.holder == Some(to),
            _ => true,
        }
    }

    /// Handoff step 2, at the target: run at once, without a pre-vote.
    pub(super) fn on_timeout_now(&mut self, now: Instant, from: NodeId, term: Term) {
        if term != self.durable.term || !self.can_be_active() || !matches!(self.role, RoleState::Follower) {
            return;
        }
        self.transfer_promise(now, from, self.id);
        let Some(next) = term.next() else { return };
        let req = self.vote_request(now, next, false, true);
        if self.grant_check(now, self.id, &req).is_ok() {
            self.start_election(now, false, true);
        }
    }

    /// Won the election: hold the lease the votes gave, run `pre_promote`.
    ///
    /// The lease starts when the vote requests left, which is before any
    /// voter received one (and began its promise), lasts the shortest
    /// binding a granting voter promised, and gives up the drift margin, so
    /// it ends before any voter's promise does.
    fn win(&mut self, now: Instant) {
        let RoleState::Candidate { term, grants, bound, started, approved, handoff, previous } = self.role else {
            return;
        };
        let cause = if handoff {
            ActivationCause::Handoff
        } else if approved {
            ActivationCause::ApprovedFailover
        } else if previous.is_none() || previous == Some(self.id) {
            ActivationCause::Reclaim
        } else {
            ActivationCause::AutomaticFailover
        };
        let lease_until = started + bound - self.cfg.timers.drift_margin_for(bound);
        self.install_leadership(now, Epoch::from(term), cause, (lease_until, grants), false);
        self.event(Event::Elected { epoch: Epoch::from(term), cause });
    }

    pub(super) fn install_leadership(
        &mut self,
        now: Instant,
        epoch: Epoch,
        cause: ActivationCause,
        lease: (Instant, VoterSet),
        forced: bool,
    ) {
        self.install_role(now, epoch, cause, super::Phase::Promoting, lease, forced);
        self.emit(Action::RunPrePromote { epoch, cause });
        self.deadlines.set(Timer::HeartbeatDue, now + self.cfg.timers.heartbeat_interval);
        self.send_heartbeats(now);
    }

    /// Takes the elected role in `phase`: elected now, or resumed after a
    /// restart in place (`Node::resume`). A cooldown starts again with it.
    pub(super) fn install_role(
        &mut self,
        now: Instant,
        epoch: Epoch,
        cause: ActivationCause,
        phase: super::Phase,
        (lease_until, backers): (Instant, VoterSet),
        forced: bool,
    ) {
        self.role = RoleState::Leader(super::Leadership {
            epoch,
            cause,
            phase,
            lease_until,
            backers,
            forced,
            next_seq: 1,
            rounds: Vec::new(),
            better_since: None,
            unhealthy_reported: false,
            fence_ahead: None,
        });
        self.leader = Some(LeaderView { site: self.id, epoch, last_contact: now });
        self.proposal = None;
        self.approved = false;
        self.deadlines.clear(Timer::ElectionTimeout);
        if cause == ActivationCause::AutomaticFailover {
            self.cooldown_until = Some(now + self.cfg.timers.failover_cooldown);
        }
        if !forced {
            self.deadlines.set(Timer::LeaseExpires, lease_until);
        }
    }
}
