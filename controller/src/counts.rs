//! Running totals since the process started: elections, role changes,
//! activations by cause, handoffs, step-downs, actuator passes and the
//! lease left at each renewal ([`crate::lease_margin`]). The protocol loop
//! counts each step's role change, events and renewal, the actuators count
//! their passes, both through [`crate::snapshot`]; `/metrics` shows them as
//! the `_total` counters and the margin histogram (a restart starts them at
//! 0 again, which Prometheus reads as a counter reset).
//!
//! Plain data: it only adds up what it is told, and must never decide
//! anything from the totals. Label values are the words `FAILOVER_REASON`
//! and `/status` already use ([`crate::hooks`]).

use std::collections::BTreeMap;

use failover_core::{Event, RoleName};

use crate::hooks;
use crate::lease_margin::Margins;

/// What became of one actuator pass, as the `outcome` label says it.
pub mod outcome {
    /// The target is at the goal.
    pub const CONVERGED: &str = "converged";
    /// The pass changed the target and waits for it to act on the change.
    pub const IN_PROGRESS: &str = "in_progress";
    /// The pass failed (it is retried with backoff).
    pub const FAILED: &str = "failed";
    /// The pass stopped because this site's lease ran out before a write.
    pub const LEASE_LOST: &str = "lease_lost";
    /// Observe mode: the pass found something to change and left it.
    pub const OBSERVE: &str = "observe";
}

/// The totals, each by its label value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Elections this node started (pre-votes that went no further are not
    /// elections).
    pub elections_started: u64,
    /// Elections this node won.
    pub elections_won: u64,
    /// Changes of this node's role, by the role it took.
    pub role_changes: BTreeMap<&'static str, u64>,
    /// Times this site took the active role, by cause.
    pub activations: BTreeMap<&'static str, u64>,
    /// Handoffs this (active) site started, by what started them.
    pub handoffs: BTreeMap<&'static str, u64>,
    /// Times this site stopped acting as active, by reason.
    pub step_downs: BTreeMap<&'static str, u64>,
    /// Actuator passes that ended, by (actuator, outcome).
    pub actuator_passes: BTreeMap<(String, String), u64>,
    /// The lease left at each renewal of this site's lease.
    pub lease_renewals: Margins,
}

fn zeros(words: impl Iterator<Item = &'static str>) -> BTreeMap<&'static str, u64> {
    words.map(|w| (w, 0)).collect()
}

fn add<K: Ord>(totals: &mut BTreeMap<K, u64>, key: K) {
    let total = totals.entry(key).or_default();
    *total = total.saturating_add(1);
}

/// Every role a site can take.
const SITE_ROLES: [RoleName; 6] = [
    RoleName::Active,
    RoleName::Promoting,
    RoleName::Resuming,
    RoleName::HandingOff,
    RoleName::Candidate,
    RoleName::Standby,
];

impl Counts {
    /// Totals of 0 under every label value a site can count (an actuator's
    /// only once it has one): a counter that exists from the start lets
    /// Prometheus see its first increase.
    pub fn new() -> Counts {
        Counts {
            role_changes: zeros(SITE_ROLES.into_iter().map(RoleName::as_str)),
            activations: zeros(hooks::ACTIVATION_CAUSES.into_iter().map(hooks::activation_reason)),
            handoffs: zeros(hooks::HANDOFF_REASONS.into_iter().map(hooks::handoff_reason)),
            step_downs: zeros(hooks::step_down_reasons().map(|r| hooks::demotion_reason(r).0)),
            ..Counts::default()
        }
    }

    /// Counts one protocol step: the role it left and the role it ended in
    /// (a change when they differ), and the events it raised.
    pub fn count_step(&mut self, before: RoleName, after: RoleName, events: &[Event]) {
        if before != after {
            add(&mut self.role_changes, after.as_str());
        }
        for event in events {
            match *event {
                Event::ElectionStarted { .. } => self.elections_started = self.elections_started.saturating_add(1),
                Event::Elected { .. } => self.elections_won = self.elections_won.saturating_add(1),
                Event::BecameActive { cause, .. } => add(&mut self.activations, hooks::activation_reason(cause)),
                Event::HandoffStarted { why, .. } => add(&mut self.handoffs, hooks::handoff_reason(why)),
                Event::SteppedDown { reason, .. } => add(&mut self.step_downs, hooks::demotion_reason(reason).0),
                _ => {}
            }
        }
    }

    /// Counts one finished pass of the actuator named `actuator`; `outcome`
    /// is one of [`outcome`]'s words (any word is counted under its own
    /// label).
    pub fn count_pass(&mut self, actuator: &str, outcome: &str) {
        add(&mut self.actuator_passes, (actuator.to_owned(), outcome.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failover_core::{ActivationCause, Epoch, HandoffReason, NodeId, StepDownReason, Term};

    #[test]
    fn a_role_change_is_counted_under_the_new_role_and_no_change_is_not() {
        let mut counts = Counts::default();
        counts.count_step(RoleName::Standby, RoleName::Standby, &[]);
        assert_eq!(counts, Counts::default());
        counts.count_step(RoleName::Standby, RoleName::Candidate, &[]);
        counts.count_step(RoleName::Candidate, RoleName::Active, &[]);
        counts.count_step(RoleName::Active, RoleName::Standby, &[]);
        counts.count_step(RoleName::Standby, RoleName::Candidate, &[]);
        let expected: BTreeMap<&str, u64> = [("candidate", 2), ("active", 1), ("standby", 1)].into();
        assert_eq!(counts.role_changes, expected);
    }

    #[test]
    fn events_are_counted_under_the_words_of_failover_reason() {
        let mut counts = Counts::default();
        let epoch = Epoch(3);
        let to = NodeId(1);
        counts.count_step(
            RoleName::Standby,
            RoleName::Standby,
            &[
                Event::ElectionStarted { term: Term(3), approved: false, handoff: false },
                Event::Elected { epoch, cause: ActivationCause::AutomaticFailover },
                Event::BecameActive { epoch, cause: ActivationCause::AutomaticFailover },
                Event::BecameActive { epoch, cause: ActivationCause::Handoff },
                Event::HandoffStarted { to, why: HandoffReason::Switchover },
                Event::SteppedDown { epoch, reason: StepDownReason::Handoff { to, why: HandoffReason::Switchover } },
                Event::SteppedDown { epoch, reason: StepDownReason::LeaseExpired },
                Event::Paused { by: to },
            ],
        );
        assert_eq!((counts.elections_started, counts.elections_won), (1, 1));
        assert_eq!(counts.activations, [("automatic_failover", 1), ("handoff", 1)].into());
        assert_eq!(counts.handoffs, [("switchover", 1)].into());
        assert_eq!(counts.step_downs, [("lease_expired", 1), ("switchover", 1)].into());
        assert!(counts.role_changes.is_empty());
    }

    #[test]
    fn every_label_a_site_can_count_starts_at_zero() {
        let counts = Counts::new();
        let keys = |m: &BTreeMap<&'static str, u64>| {
            assert!(m.values().all(|&v| v == 0));
            m.keys().copied().collect::<Vec<_>>()
        };
        let roles = ["active", "candidate", "handing_off", "promoting", "resuming", "standby"];
        assert_eq!(keys(&counts.role_changes), roles);
        let causes = ["approved_failover", "automatic_failover", "forced", "handoff", "reclaim"];
        assert_eq!(keys(&counts.activations), causes);
        let handoffs = ["approved_failover", "failback", "promotion_declined", "shutdown", "switchover", "unhealthy"];
        assert_eq!(keys(&counts.handoffs), handoffs);
        let mut step_downs = handoffs.to_vec();
        step_downs.extend(["fenced", "higher_term", "lease_expired"]);
        step_downs.sort_unstable();
        assert_eq!(keys(&counts.step_downs), step_downs);
        assert!(counts.actuator_passes.is_empty());
        assert_eq!((counts.elections_started, counts.elections_won), (0, 0));
    }

    #[test]
    fn passes_are_counted_by_actuator_and_outcome() {
        let mut counts = Counts::default();
        counts.count_pass("dns", outcome::CONVERGED);
        counts.count_pass("dns", outcome::CONVERGED);
        counts.count_pass("dns", outcome::FAILED);
        counts.count_pass("lb", "observe");
        let key = |a: &str, o: &str| (a.to_owned(), o.to_owned());
        let expected = [(key("dns", "converged"), 2), (key("dns", "failed"), 1), (key("lb", "observe"), 1)].into();
        assert_eq!(counts.actuator_passes, expected);
    }
}
