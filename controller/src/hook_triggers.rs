//! When `on_standby`, `on_pending` and `on_fault` are due, decided from what
//! the core already says (its status after each step, its events, the
//! health verdicts the loop feeds it). Pure: the protocol loop keeps a
//! [`Triggers`], asks it after each step and on each health verdict, and
//! runs what it answers ([`crate::hooks`]).
//!
//! - `on_standby`: once per stint as standby, as soon as the site knows an
//!   active site other than itself: at the daemon's start, or after the site
//!   left another role (active, handing off, promoting, resuming, candidate).
//!   A change of active site while the site stays standby does not run it
//!   again.
//! - `on_pending`: each time this node raises a failover proposal (the core's
//!   `FailoverProposed` event, emitted again only when the proposal's target
//!   or reason changes), on the node that raised it.
//! - `on_fault`: the local checks' verdict goes from passing to failing.

use failover_core::{Event, NodeId, ProposalReason, RoleName, Status};

/// A hook that is due, with what its environment says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// `on_standby`: the site now follows `active`; `from` is the role it
    /// left (`None`: the daemon's start).
    Standby {
        /// The active site it follows.
        active: NodeId,
        /// The role it left, or `None` at the daemon's start.
        from: Option<RoleName>,
    },
    /// `on_pending`: this node raised a proposal to move the active role to
    /// `target`.
    Pending {
        /// The site that would become active.
        target: NodeId,
        /// Why it waits.
        reason: ProposalReason,
    },
    /// `on_fault`: the local checks went from passing to failing.
    Fault,
}

/// What the loop remembers between steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Triggers {
    /// The role at the last step (`None` before the first).
    role: Option<RoleName>,
    /// The stint as standby that has not run `on_standby` yet: the role it
    /// came from (`None` inside: the daemon's start). `None` outside: it ran,
    /// or the site is not standby.
    standby_pending: Option<Option<RoleName>>,
}

impl Triggers {
    /// A site that has not stepped yet.
    pub fn new() -> Self {
        Triggers::default()
    }

    /// The hooks due after a step whose status and events these are, in
    /// the order to run them.
    pub fn after_step(&mut self, status: &Status, events: &[Event]) -> Vec<Due> {
        let mut due: Vec<Due> = events
            .iter()
            .filter_map(|e| match *e {
                Event::FailoverProposed { target, reason } => Some(Due::Pending { target, reason }),
                _ => None,
            })
            .collect();
        if status.role == RoleName::Standby {
            if self.role != Some(RoleName::Standby) {
                self.standby_pending = Some(self.role);
            }
        } else {
            self.standby_pending = None;
        }
        self.role = Some(status.role);
        if let (Some(from), Some(active)) = (self.standby_pending, status.active_site) {
            if active != status.node {
                self.standby_pending = None;
                due.push(Due::Standby { active, from });
            }
        }
        due
    }

    /// `on_fault` when the local checks' verdict goes from `was` (passing
    /// or not) to `now`.
    pub fn checks(was: bool, now: bool) -> Option<Due> {
        (was && !now).then_some(Due::Fault)
    }
}

#[cfg(test)]
mod tests;
