//! The simulator's checks over a run's history (as opposed to one state,
//! which `invariants` checks): epochs of actuation never go back (rule 2),
//! one vote per voter per term across restarts (rule 3), and in manual mode
//! each change of active site spends one operator command that moved the
//! role to that site (rule 6). Each check returns the breach it saw.

use std::collections::BTreeMap;

use super::invariants::Breach;
use crate::config::NodeId;
use crate::message::{Epoch, Term};

/// What the run has done so far, as far as the history checks need it.
#[derive(Debug, Default)]
pub(super) struct History {
    highest_actuation: Option<(Epoch, NodeId)>,
    votes_granted: BTreeMap<(NodeId, Term), NodeId>,
    last_active: Option<NodeId>,
    /// Operator moves not yet used, by the site they move the role to.
    approved_for: BTreeMap<NodeId, u32>,
}

impl History {
    /// Rule 2: `site` actuated under `epoch`.
    pub(super) fn actuated(&mut self, site: NodeId, epoch: Epoch) -> Option<Breach> {
        match self.highest_actuation {
            Some((high, by)) if epoch < high || (epoch == high && by != site) => Some(Breach {
                invariant: "epochs_increase",
                detail: format!("{site} actuated with {epoch:?} after {by} used {high:?}"),
            }),
            Some((high, _)) if epoch == high => None,
            _ => {
                self.highest_actuation = Some((epoch, site));
                None
            }
        }
    }

    /// Rule 3: `voter` granted `candidate` its vote in `term`.
    pub(super) fn vote_granted(&mut self, voter: NodeId, term: Term, candidate: NodeId) -> Option<Breach> {
        match self.votes_granted.insert((voter, term), candidate) {
            Some(earlier) if earlier != candidate => Some(Breach {
                invariant: "one_vote_per_term",
                detail: format!("{voter} voted for {earlier} and {candidate} in {term:?}"),
            }),
            _ => None,
        }
    }

    /// An operator command moved (or will move) the role to `target`.
    pub(super) fn approved(&mut self, target: NodeId) {
        *self.approved_for.entry(target).or_default() += 1;
    }

    /// Rule 6: `site` became active; `manual` says whether the cluster runs
    /// in manual mode.
    pub(super) fn became_active(&mut self, site: NodeId, manual: bool) -> Option<Breach> {
        let changed = self.last_active.is_some_and(|prev| prev != site);
        self.last_active = Some(site);
        if !changed || !manual {
            return None;
        }
        match self.approved_for.get_mut(&site) {
            Some(n) if *n > 0 => {
                *n -= 1;
                None
            }
            _ => Some(Breach {
                invariant: "manual_mode_needs_approval",
                detail: format!("{site} became active without approval"),
            }),
        }
    }
}
