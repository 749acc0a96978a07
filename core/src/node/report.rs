//! What a node says: the `status` snapshot every endpoint shows, and the
//! report it sends about itself in heartbeats and vote requests.

use super::{Node, Phase, RoleState};
use crate::config::NodeId;
use crate::message::SiteReport;
use crate::status::{PeerStatus, PendingFailover, RoleName, Status};
use crate::time::Instant;

impl Node {
    /// A snapshot for `/status`.
    pub fn status(&self, now: Instant) -> Status {
        let now = now.max(self.now);
        let lease = self.cfg.timers.lease_duration;
        let role = match &self.role {
            _ if self.is_witness() => RoleName::Witness,
            _ if self.is_active(now) => RoleName::Active,
            RoleState::Leader(l) if l.phase == Phase::Promoting => RoleName::Promoting,
            RoleState::Leader(l) if l.phase == Phase::Resuming => RoleName::Resuming,
            RoleState::HandingOff { .. } => RoleName::HandingOff,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => RoleName::Candidate,
            _ => RoleName::Standby,
        };
        let (active_site, epoch) = match (&self.role, self.leader) {
            (RoleState::Leader(l), _) if self.is_active(now) => (Some(self.id), Some(l.epoch)),
            (_, Some(v)) if v.site != self.id && now.saturating_since(v.last_contact) < lease => {
                (Some(v.site), Some(v.epoch))
            }
            _ => (None, None),
        };
        let remote = self
            .peers
            .iter()
            .filter(|p| p.last_heartbeat.is_some_and(|h| now.saturating_since(h) < lease))
            .filter_map(|p| p.proposal)
            .max_by_key(|(_, since)| *since)
            .map(|(n, since)| PendingFailover { target: n.target, reason: n.reason, since });
        let lease_remaining = match &self.role {
            RoleState::Leader(l) if !l.forced => Some(l.lease_until.saturating_since(now)),
            _ => None,
        };
        let peers = self
            .cfg
            .ids()
            .filter(|&id| id != self.id)
            .map(|id| {
                let p = &self.peers[id.index()];
                PeerStatus {
                    id,
                    reachable: self.recently_seen(now, id),
                    last_seen_ago: p.last_seen.map(|s| now.saturating_since(s)),
                    report: p.report,
                    switchover_target: self.check_target(now, id),
                    pause_agrees: p.last_heartbeat.is_some() && p.pause == self.durable.pause,
                    maintenance_agrees: p.last_heartbeat.is_some() && p.maintenance == self.durable.maintenance,
                }
            })
            .collect();
        Status {
            node: self.id,
            role,
            active_site,
            epoch,
            term: self.durable.term,
            mode: self.cfg.policy.failover_mode,
            paused: self.durable.pause.paused,
            maintenance: self.durable.maintenance,
            pending_failover: self.proposal.or(remote),
            lease_remaining,
            local: self.report(now),
            peers,
            scheduled_switchover: self.durable.scheduled.map(|s| (s.to, s.at)),
            recovering: self.not_yet_heard(),
        }
    }

    pub(super) fn recently_seen(&self, now: Instant, id: NodeId) -> bool {
        id == self.id
            || self.peers[id.index()]
                .last_seen
                .is_some_and(|s| now.saturating_since(s) < self.cfg.timers.lease_duration)
    }

    /// What this node says about itself in heartbeats and vote requests.
    pub(super) fn report(&self, now: Instant) -> SiteReport {
        let votes_seen: u32 =
            self.cfg.ids().filter(|&id| self.recently_seen(now, id)).map(|id| self.cfg.votes(id)).sum();
        let sees_quorum = votes_seen >= self.cfg.quorum();
        if self.is_witness() {
            return SiteReport { healthy: true, caught_up: true, sees_quorum };
        }
        // A site that declined its promotion, or lost its state and has not
        // caught up, could not take over: no one should pick it.
        let declined = self.declined_until.is_some_and(|d| now < d) || self.is_recovering();
        SiteReport { healthy: self.health.healthy && !declined, caught_up: self.health.caught_up, sees_quorum }
    }
}
