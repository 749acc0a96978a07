//! A read-only view of one node, for `/status`, `/active` and the simulator.

use std::time::Duration;

use crate::command::CommandError;
use crate::config::{FailoverMode, NodeId};
use crate::message::{Epoch, ProposalReason, SiteReport, Term};
use crate::time::Instant;

/// The role a node reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoleName {
    /// Holds a valid lease and acts as active.
    Active,
    /// Won an election; waits for `pre_promote` before acting.
    Promoting,
    /// Restarted in place; waits for a majority to renew its lease before
    /// it acts as active again.
    Resuming,
    /// Hands its role to another site.
    HandingOff,
    /// Asks for votes.
    Candidate,
    /// A site that is not active.
    Standby,
    /// A witness: votes only.
    Witness,
}

impl RoleName {
    /// Lower-case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Active => "active",
            RoleName::Promoting => "promoting",
            RoleName::Resuming => "resuming",
            RoleName::HandingOff => "handing_off",
            RoleName::Candidate => "candidate",
            RoleName::Standby => "standby",
            RoleName::Witness => "witness",
        }
    }
}

/// A failover waiting for approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PendingFailover {
    /// The site that would become active.
    pub target: NodeId,
    /// Why it waits.
    pub reason: ProposalReason,
    /// When it was raised, on this node's clock.
    pub since: Instant,
}

/// What this node knows of another member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerStatus {
    /// The member.
    pub id: NodeId,
    /// Heard from within one lease.
    pub reachable: bool,
    /// Time since it was last heard from.
    pub last_seen_ago: Option<Duration>,
    /// Its last report.
    pub report: Option<SiteReport>,
    /// Whether a switchover to it would be accepted now, by the same check
    /// the switchover command makes; the error says why not.
    pub switchover_target: Result<(), CommandError>,
    /// Its last heartbeat carried this node's own pause switch (the same
    /// pause or resume): it has persisted it and acts on it. A `pause` is
    /// cluster-wide only once every member that could run for election
    /// agrees, which is what `failoverctl pause` waits for.
    pub pause_agrees: bool,
    /// Its last heartbeat carried this node's own maintenance setting.
    pub maintenance_agrees: bool,
}

/// A snapshot of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub node: NodeId,
    /// Its role.
    pub role: RoleName,
    /// The active site as known here (itself when active).
    pub active_site: Option<NodeId>,
    /// The active site's epoch as known here.
    pub epoch: Option<Epoch>,
    /// The current term.
    pub term: Term,
    /// Automatic or manual failover.
    pub mode: FailoverMode,
    /// Whether automatic actions are suspended.
    pub paused: bool,
    /// The sites in maintenance, as known here.
    pub maintenance: crate::message::MaintenanceSetting,
    /// A failover waiting for approval, here or reported by a peer.
    pub pending_failover: Option<PendingFailover>,
    /// Remaining lease, when this node holds one.
    pub lease_remaining: Option<Duration>,
    /// This node's own report.
    pub local: SiteReport,
    /// Every other member.
    pub peers: Vec<PeerStatus>,
    /// A scheduled switchover: target and due time on this node's clock.
    pub scheduled_switchover: Option<(NodeId, Instant)>,
    /// Set while this node recovers a lost state: the members it has not
    /// heard from yet (every other site that can be elected, and members
    /// with a majority of votes, must answer before it votes).
    pub recovering: Option<Vec<NodeId>>,
}

#[cfg(test)]
mod tests {
    use super::RoleName;

    #[test]
    fn role_names_are_the_lower_case_words_json_and_metrics_use() {
        let names = [
            (RoleName::Active, "active"),
            (RoleName::Promoting, "promoting"),
            (RoleName::Resuming, "resuming"),
            (RoleName::HandingOff, "handing_off"),
            (RoleName::Candidate, "candidate"),
            (RoleName::Standby, "standby"),
            (RoleName::Witness, "witness"),
        ];
        for (role, name) in names {
            assert_eq!(role.as_str(), name);
        }
        assert_eq!(crate::Instant::from_millis(42).to_string(), "t=42ms");
    }
}
