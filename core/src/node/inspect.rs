//! A read-only view of the safety mechanism inside a node, for the
//! harnesses that check the protocol's invariants from outside (the
//! simulator and the model checker). Drivers must not decide anything from
//! it: [`Node::is_active`] and [`Node::status`] are their interface.

use super::{Node, RoleState, VoterSet};
use crate::config::NodeId;
use crate::message::Epoch;
use crate::time::Instant;

/// A voter's binding: until `until` on its own clock it grants votes and
/// lease renewals to `holder` only (`None`: to nobody, the quiet period
/// after a restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The site it is bound to, if any.
    pub holder: Option<NodeId>,
    /// When the binding ends, on the voter's clock.
    pub until: Instant,
}

impl Binding {
    /// Whether this binding keeps the voter from granting anything to a
    /// site other than `site`.
    pub fn excludes_all_but(&self, site: NodeId) -> bool {
        self.holder.is_none_or(|h| h == site)
    }
}

/// The lease an elected site holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseView {
    /// The epoch it was elected in.
    pub epoch: Epoch,
    /// When the lease ends, on the holder's clock (exclusive).
    pub until: Instant,
    /// Forced promotion: no lease, active until a higher term.
    pub forced: bool,
    backers: VoterSet,
}

impl LeaseView {
    /// Whether `voter`'s grant is counted towards the lease's current end:
    /// a vote in the election, or an acknowledgement of the renewal round
    /// that set `until`.
    pub fn backed_by(&self, voter: NodeId) -> bool {
        self.backers.contains(voter)
    }
}

/// What a harness needs to check the mechanism, not only the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inspection {
    /// The voter's binding, if it has one.
    pub binding: Option<Binding>,
    /// The lease, while the node is elected (any phase).
    pub lease: Option<LeaseView>,
    /// Asking for pre-votes or votes, or handing its role over.
    pub campaigning: bool,
}

impl Node {
    /// The node's safety-relevant internals. See the module docs.
    pub fn inspect(&self) -> Inspection {
        let lease = match &self.role {
            RoleState::Leader(l) => {
                Some(LeaseView { epoch: l.epoch, until: l.lease_until, forced: l.forced, backers: l.backers })
            }
            _ => None,
        };
        let binding = self.promise.map(|p| Binding { holder: p.holder, until: p.until });
        let campaigning = matches!(
            self.role,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } | RoleState::HandingOff { .. }
        );
        Inspection { binding, lease, campaigning }
    }
}
