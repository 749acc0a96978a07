//! Operator commands and why the core may refuse them.
//!
//! A command sent to a node that cannot carry it out is refused with an error
//! that names the node that can ([`CommandError::NotActive`],
//! [`CommandError::HeldElsewhere`]), so the driver can forward it.

use std::time::Duration;

use crate::config::NodeId;
use crate::time::Instant;

/// An operator command.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Planned switchover to `to` (or the best eligible site), now or at a
    /// time on this node's monotonic clock. Only the active site carries it.
    Switchover { to: Option<NodeId>, at: Option<Instant> },
    /// Cancel a scheduled switchover.
    CancelSwitchover,
    /// Approve the pending failover (or a failover to `to`).
    Approve { to: Option<NodeId> },
    /// Disaster recovery: become active without a majority. Unsafe by
    /// design; refused while this node's own grant to another site lasts.
    ForcePromote,
    /// Suspend automatic actions cluster-wide.
    Pause,
    /// Resume automatic actions.
    Resume,
    /// Put `site` in maintenance (`on`) or take it out, cluster-wide. Any
    /// node carries it out; refused for the active site.
    Maintenance { site: NodeId, on: bool },
    /// The process is about to exit: hand over first if active.
    Shutdown,
}

/// Why a command was refused.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CommandError {
    /// Only the active site can do this; `active` is the one known here.
    #[error("this node is not the active site (active: {active:?}); send it to the active site")]
    NotActive { active: Option<NodeId> },
    /// The proposal (or target) belongs to another node.
    #[error("the failover to approve is carried out by {target}; send it there")]
    HeldElsewhere { target: NodeId },
    /// Nothing waits for approval here.
    #[error("no failover is pending approval and no site was named")]
    NothingToApprove,
    /// The named node is not a site that can become active.
    #[error("{0} cannot become active (a witness, priority 0, or unknown)")]
    NotElectable(NodeId),
    /// The target is this node's own active role.
    #[error("{0} is already the active site")]
    AlreadyActive(NodeId),
    /// The target is unreachable, unhealthy or cannot reach a majority.
    #[error("{target} is not eligible: {why}")]
    TargetNotEligible { target: NodeId, why: &'static str },
    /// The target reports its data not caught up (lagging beyond
    /// `max_lag_on_failover`, or no data member of its own up): the driver,
    /// which reads the data store, can say which.
    #[error("{target} is not eligible: its data is not caught up (max_lag_on_failover)")]
    TargetLagging { target: NodeId },
    /// No eligible site to hand over to.
    #[error("no eligible site to hand over to")]
    NoEligibleTarget,
    /// A handoff or election is already under way.
    #[error("a change of active site is already under way")]
    Busy,
    /// This node's checks fail.
    #[error("this site's own health checks fail")]
    Unhealthy,
    /// Forced promotion while this node still honours another site's lease.
    #[error("{holder:?} may still hold a lease for {remaining:?}; wait, or recover the majority")]
    LeaseMayBeHeld { holder: Option<NodeId>, remaining: Duration },
    /// This node lost its state and has not caught up with the cluster.
    #[error(
        "this node lost its state file and has not yet heard the cluster's term from the other members; it cannot \
         be promoted until it has"
    )]
    Recovering,
    /// A witness cannot do this.
    #[error("a witness cannot take this command")]
    Witness,
    /// There is no scheduled switchover.
    #[error("no switchover is scheduled")]
    NothingScheduled,
    /// Maintenance was asked for the active site: move the role first.
    #[error("{site} is the active site; switch over to another site first, then put it in maintenance")]
    MaintenanceOfActive { site: NodeId },
    /// The target is in maintenance.
    #[error("{target} is in maintenance; end its maintenance first, or promote it by force")]
    TargetInMaintenance { target: NodeId },
    /// The term has reached its largest value; no election can follow.
    #[error("this node's term has reached its largest value; its state is corrupt: restore it from a backup")]
    TermsExhausted,
}
