//! What `/standby` and `/readyz` answer, decided from the core's status as
//! of the protocol loop's last step (it steps at least every heartbeat) and,
//! for the active site, the lease judged against the clock now. Pure
//! functions: the HTTP handlers only read the snapshot and say the verdict.
//!
//! - `/standby`: this site may take read traffic from a load balancer: a
//!   standby (not the active site, not in an election or a handoff) whose
//!   checks pass, whose data is caught up, that is not in maintenance, and
//!   that has heard from the active site within one lease. A witness never.
//! - `/readyz`: this node can serve its role: it is not recovering a lost
//!   state, it hears from a majority of votes (itself included) within one
//!   lease, and it knows the active site or is it (with its lease valid
//!   now). The configuration and the state file were read before the
//!   endpoint listened, so a node that answers has both.

use failover_core::{ClusterConfig, MemberKind, RoleName, Status};

use crate::member_name::of as name;

/// Why this node is not a standby a load balancer may send traffic to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotStandby {
    /// The node is a witness.
    #[error("a witness serves no traffic")]
    Witness,
    /// The site is active, or in an election, a promotion or a handoff.
    #[error("this site is {0}, not standby")]
    Role(&'static str),
    /// The site is in maintenance.
    #[error("this site is in maintenance")]
    Maintenance,
    /// The site's own verdict is unhealthy.
    #[error("this site is unhealthy (a health check fails, or it declined a promotion moments ago)")]
    Unhealthy,
    /// The site's data lags.
    #[error("this site's data lags beyond max_lag_on_failover")]
    Lagging,
    /// No site is known to be active.
    #[error("no active site is known")]
    NoActiveSite,
    /// The active site has not been heard from within one lease.
    #[error("{0}, the active site, has not been heard from within one lease")]
    ActiveNotHeard(String),
}

/// Why this node is not ready to serve its role.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The node lost its state and waits to hear the cluster's from these.
    #[error("recovering a lost state: waiting to hear from {}", .0.join(", "))]
    Recovering(Vec<String>),
    /// Fewer than a majority of votes heard within one lease.
    #[error("hears from fewer than a majority of votes within one lease")]
    NoMajority,
    /// No site is known to be active.
    #[error("no active site is known")]
    NoActiveSite,
    /// This site was active at the last step, but its lease has ended.
    #[error("this site's lease has ended")]
    LeaseEnded,
}

/// The `/standby` verdict of the node whose status this is.
pub fn standby(cfg: &ClusterConfig, status: &Status) -> Result<(), NotStandby> {
    let me = status.node;
    if cfg.member(me).is_none_or(|m| m.kind == MemberKind::Witness) {
        return Err(NotStandby::Witness);
    }
    if status.role != RoleName::Standby {
        return Err(NotStandby::Role(status.role.as_str()));
    }
    if status.maintenance.contains(me) {
        return Err(NotStandby::Maintenance);
    }
    if !status.local.healthy {
        return Err(NotStandby::Unhealthy);
    }
    if !status.local.caught_up {
        return Err(NotStandby::Lagging);
    }
    let active = match status.active_site {
        Some(active) if active != me => active,
        _ => return Err(NotStandby::NoActiveSite),
    };
    if !status.peers.iter().any(|p| p.id == active && p.reachable) {
        return Err(NotStandby::ActiveNotHeard(name(cfg, active)));
    }
    Ok(())
}

/// The `/readyz` verdict of the node whose status this is;
/// `lease_valid_now` is whether its lease is valid at the clock now.
pub fn readiness(cfg: &ClusterConfig, status: &Status, lease_valid_now: bool) -> Result<(), NotReady> {
    if let Some(waiting) = &status.recovering {
        return Err(NotReady::Recovering(waiting.iter().map(|&id| name(cfg, id)).collect()));
    }
    if !status.local.sees_quorum {
        return Err(NotReady::NoMajority);
    }
    match status.active_site {
        None => Err(NotReady::NoActiveSite),
        Some(active) if active == status.node && !lease_valid_now => Err(NotReady::LeaseEnded),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
