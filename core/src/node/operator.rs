//! Operator commands. Each either acts here or names the node that can.

use super::{Node, Phase, RoleState, Timer, VoterSet};
use crate::action::{Event, HandoffReason, SwitchoverCancelReason};
use crate::command::{Command, CommandError};
use crate::config::NodeId;
use crate::durable::ScheduledSwitchover;
use crate::message::{ActivationCause, Epoch, MaintenanceSetting, PauseSetting};
use crate::time::Instant;

impl Node {
    /// Carries out an operator command, or says why not (and where to send
    /// it instead).
    pub fn command(&mut self, now: Instant, command: Command) -> Result<(), CommandError> {
        let now = self.advance(now);
        match command {
            Command::Switchover { to, at } => self.switchover(now, to, at),
            Command::CancelSwitchover => {
                // The schedule lives on the active site.
                if !matches!(self.role, RoleState::Leader(_)) {
                    return Err(CommandError::NotActive { active: self.known_active(now) });
                }
                if !self.drop_schedule(SwitchoverCancelReason::Operator) {
                    return Err(CommandError::NothingScheduled);
                }
                self.persist();
                Ok(())
            }
            Command::Approve { to } => self.approve(now, to),
            Command::ForcePromote => self.force_promote(now),
            Command::Maintenance { site, on } => self.set_maintenance(now, site, on),
            Command::Pause => self.set_pause(true),
            Command::Resume => self.set_pause(false),
            Command::Shutdown => {
                // Paused, nothing moves on its own: not even a planned
                // stop, whose process may be back (restart in place).
                if self.durable.pause.paused {
                    return Ok(());
                }
                if let RoleState::Leader(l) = &self.role {
                    if matches!(l.phase, Phase::Active | Phase::Promoting) {
                        match self.best_target(now, 1) {
                            Some(to) => self.begin_handoff(now, to, HandoffReason::Shutdown),
                            None => self.lose_leadership(now, crate::StepDownReason::ShutdownWithoutSuccessor),
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn known_active(&self, now: Instant) -> Option<NodeId> {
        self.status(now).active_site
    }

    /// Checks that `to` could take over now.
    pub(super) fn check_target(&self, now: Instant, to: NodeId) -> Result<(), CommandError> {
        if to == self.id {
            return Err(CommandError::AlreadyActive(to));
        }
        if self.cfg.priority(to) == 0 {
            return Err(CommandError::NotElectable(to));
        }
        if self.in_maintenance(to) {
            return Err(CommandError::TargetInMaintenance { target: to });
        }
        if !self.recently_seen(now, to) {
            return Err(CommandError::TargetNotEligible { target: to, why: "not heard from within one lease" });
        }
        match self.peers[to.index()].report {
            Some(r) if !r.healthy => Err(CommandError::TargetNotEligible { target: to, why: "its health checks fail" }),
            Some(r) if !r.caught_up => Err(CommandError::TargetLagging { target: to }),
            Some(r) if !r.sees_quorum => {
                Err(CommandError::TargetNotEligible { target: to, why: "it cannot reach a majority" })
            }
            Some(_) => Ok(()),
            None => Err(CommandError::TargetNotEligible { target: to, why: "no report from it yet" }),
        }
    }

    fn require_active(&self, now: Instant) -> Result<(), CommandError> {
        match &self.role {
            RoleState::Leader(l) if self.is_active(now) && l.phase == Phase::Active => Ok(()),
            RoleState::Leader(_) | RoleState::HandingOff { .. } | RoleState::Candidate { .. } => {
                Err(CommandError::Busy)
            }
            _ => Err(CommandError::NotActive { active: self.known_active(now) }),
        }
    }

    fn switchover(&mut self, now: Instant, to: Option<NodeId>, at: Option<Instant>) -> Result<(), CommandError> {
        self.require_active(now)?;
        let to = match to {
            Some(t) => {
                self.check_target(now, t)?;
                t
            }
            None => self.best_target(now, 1).ok_or(CommandError::NoEligibleTarget)?,
        };
        // A new switchover replaces the one scheduled.
        let replaced = self.drop_schedule(SwitchoverCancelReason::Replaced);
        match at {
            Some(at) if at > now => {
                // On disk before it is acknowledged: a restart in place
                // carries it out.
                self.durable.scheduled = Some(ScheduledSwitchover { to, at });
                self.persist();
                self.deadlines.set(Timer::SwitchoverDue, at);
                self.event(Event::SwitchoverScheduled { to, at });
            }
            _ => {
                if replaced {
                    self.persist();
                }
                self.begin_handoff(now, to, HandoffReason::Switchover)
            }
        }
        Ok(())
    }

    fn approve(&mut self, now: Instant, to: Option<NodeId>) -> Result<(), CommandError> {
        // The active site carries approvals that move its own role.
        if self.require_active(now).is_ok() {
            let target = match (to, self.proposal) {
                // Nothing to approve: naming a site is a planned switchover
                // to it, drain included.
                (Some(t), None) => return self.switchover(now, Some(t), None),
                (Some(t), Some(_)) => t,
                (None, Some(p)) => p.target,
                (None, None) => return Err(CommandError::NothingToApprove),
            };
            self.check_target(now, target)?;
            self.event(Event::FailoverApproved { target });
            self.proposal = None;
            self.begin_handoff(now, target, HandoffReason::Approved);
            return Ok(());
        }
        let target = to
            .or(self.proposal.map(|p| p.target))
            .or(self.status(now).pending_failover.map(|p| p.target))
            .ok_or(CommandError::NothingToApprove)?;
        if let Some(active) = self.known_active(now) {
            return Err(CommandError::HeldElsewhere { target: active });
        }
        if self.in_maintenance(target) {
            return Err(CommandError::TargetInMaintenance { target });
        }
        if target != self.id {
            return Err(CommandError::HeldElsewhere { target });
        }
        if self.cfg.priority(self.id) == 0 {
            return Err(CommandError::NotElectable(self.id));
        }
        if !self.health.healthy {
            return Err(CommandError::Unhealthy);
        }
        if !matches!(self.role, RoleState::Follower | RoleState::PreCandidate { .. }) {
            return Err(CommandError::Busy);
        }
        self.approved = true;
        self.proposal = None;
        self.event(Event::FailoverApproved { target });
        self.deadlines.set(Timer::ElectionTimeout, now);
        Ok(())
    }

    /// Disaster recovery: become active in a new term without a majority.
    /// Refused while this node still honours a grant to another site, so at
    /// least this node's own knowledge of a live lease is respected.
    fn force_promote(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.is_witness() {
            return Err(CommandError::Witness);
        }
        if self.cfg.priority(self.id) == 0 {
            return Err(CommandError::NotElectable(self.id));
        }
        if matches!(self.role, RoleState::Leader(_)) {
            return Err(CommandError::AlreadyActive(self.id));
        }
        // Its term is unknown: a promotion would act under an epoch the
        // cluster has long passed.
        if self.is_recovering() {
            return Err(CommandError::Recovering);
        }
        if let Some(p) = self.promise {
            if now < p.until && p.holder != Some(self.id) {
                return Err(CommandError::LeaseMayBeHeld {
                    holder: p.holder,
                    remaining: p.until.saturating_since(now),
                });
            }
        }
        let term = self.durable.term.next().ok_or(CommandError::TermsExhausted)?;
        self.durable.term = term;
        self.durable.voted_for = Some(self.id);
        self.note_chosen(self.id, term);
        self.persist();
        let epoch = Epoch::from(term);
        self.event(Event::ForcedPromotion { epoch });
        self.install_leadership(now, epoch, ActivationCause::Forced, (now, VoterSet::default()), true);
        Ok(())
    }

    /// Puts `site` in maintenance or takes it out. Refused for the active
    /// site as known here (the one it follows, or the one last chosen, or
    /// this site while it holds the role in any phase): moving the role is
    /// a switchover, to be asked for first.
    fn set_maintenance(&mut self, now: Instant, site: NodeId, on: bool) -> Result<(), CommandError> {
        if self.cfg.priority(site) == 0 {
            return Err(CommandError::NotElectable(site));
        }
        let holds_role = site == self.id && matches!(self.role, RoleState::Leader(_) | RoleState::HandingOff { .. });
        let last_chosen = self.durable.last_chosen.map(|c| c.site);
        if on && (holds_role || self.known_active(now) == Some(site) || last_chosen == Some(site)) {
            return Err(CommandError::MaintenanceOfActive { site });
        }
        let current = self.durable.maintenance;
        let version = (current.version + 1).min(crate::message::MAX_TERM);
        let setting = MaintenanceSetting { version, by: self.id.0, sites: current.with(site, on) };
        self.install_maintenance(now, setting);
        Ok(())
    }

    fn set_pause(&mut self, paused: bool) -> Result<(), CommandError> {
        let current = self.durable.pause;
        let version = (current.version + 1).min(crate::message::MAX_TERM);
        self.durable.pause = PauseSetting { version, by: self.id.0, paused };
        self.persist();
        self.event(if paused { Event::Paused { by: self.id } } else { Event::Resumed { by: self.id } });
        Ok(())
    }
}
