//! The contract between the actuation driver and each actuator: the goal
//! a pass works towards, what a pass did, why it did not converge, and the
//! lease guard every write asks first. It only defines these; it must never
//! touch a target nor decide when a pass runs.

use std::time::Duration;

use crate::snapshot::NodeSnapshot;

/// What this site wants of traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Goal {
    /// Not active: touch nothing.
    Standby,
    /// Active: traffic to this site.
    Active {
        /// The epoch that fences every write.
        epoch: u64,
        /// Why this site became active, for webhooks and logs.
        reason: String,
    },
    /// Active but handing over to `to`: new traffic to `to`, this site
    /// finishes what it has.
    Draining {
        /// The epoch that fences every write.
        epoch: u64,
        /// Name of the site taking over.
        to: String,
    },
}

impl Goal {
    /// The fencing epoch, if the goal writes anything.
    pub fn epoch(&self) -> Option<u64> {
        match self {
            Goal::Standby => None,
            Goal::Active { epoch, .. } | Goal::Draining { epoch, .. } => Some(*epoch),
        }
    }

    /// `active`, `draining` or `standby`.
    pub fn state_name(&self) -> &'static str {
        match self {
            Goal::Standby => "standby",
            Goal::Active { .. } => "active",
            Goal::Draining { .. } => "draining",
        }
    }
}

/// What a successful pass did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// In words, for status.
    pub detail: String,
    /// DNS: time from the update until every verify server answered it.
    pub propagation: Option<Duration>,
}

/// What a pass that did not fail achieved.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The target is at the goal.
    Converged(Applied),
    /// The pass changed the target and waits for it to act on the change
    /// (a replica set electing the primary it was asked for, say): not a
    /// failure, so it counts as none and the driver looks again soon. What
    /// it waits for, in words.
    InProgress(String),
    /// Observe mode: the pass read the target (`read`, in words) and found
    /// `changes` to make, which it did not make.
    WouldChange {
        /// What the pass read, in words.
        read: String,
        /// Each change it would have made, in words.
        changes: Vec<String>,
    },
}

impl Outcome {
    /// `converged`, `in_progress` or `observe` (a pass that found nothing
    /// to change is `converged` in either mode): the outcome label of a
    /// pass in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Converged(_) => "converged",
            Outcome::InProgress(_) => "in_progress",
            Outcome::WouldChange { .. } => "observe",
        }
    }
}

/// Why a pass did not converge.
#[derive(Debug, thiserror::Error)]
pub enum ActuateError {
    /// The target holds a newer epoch than this site's: written by a site
    /// promoted by force, or forged (an elected site's lease rules out a
    /// newer election). Nothing is written over it; the alarm is raised.
    #[error("fenced: {detail}")]
    Fenced {
        /// The newer epoch, when the target says which.
        by: Option<u64>,
        /// What the target holds.
        detail: String,
    },
    /// The lease ran out before a write.
    #[error("this site no longer holds its lease; not touching traffic")]
    LeaseLost,
    /// The target could not be reached.
    #[error("cannot reach {target}: {detail}")]
    Unreachable {
        /// The target.
        target: String,
        /// The cause.
        detail: String,
    },
    /// The target answered with a refusal.
    #[error("{target} refused: {detail}")]
    Refused {
        /// The target.
        target: String,
        /// What it said.
        detail: String,
    },
    /// The target's answer could not be understood.
    #[error("{target} gave an answer that cannot be used: {detail}")]
    BadAnswer {
        /// The target.
        target: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The pass or one of its steps ran out of time.
    #[error("{what} timed out after {after:?}")]
    TimedOut {
        /// The step.
        what: String,
        /// Its time limit.
        after: Duration,
    },
    /// The write went through but the target still does not show it when
    /// the pass ends (a verify server with old data, a server state not
    /// taken): a failure, retried with backoff. A change the target is
    /// still acting on is [`Outcome::InProgress`] instead.
    #[error("not converged: {0}")]
    NotConverged(String),
}

/// Answers, against the clock now, whether this site holds its lease.
#[derive(Clone)]
pub struct LeaseGuard(pub NodeSnapshot);

impl LeaseGuard {
    /// True while the lease is valid.
    pub fn holds(&self) -> bool {
        self.0.lease_valid_now()
    }

    /// `Err(LeaseLost)` unless the lease is valid: call before each write.
    pub fn check(&self) -> Result<(), ActuateError> {
        if self.holds() {
            Ok(())
        } else {
            Err(ActuateError::LeaseLost)
        }
    }
}
