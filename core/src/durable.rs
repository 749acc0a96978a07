//! The state a node must keep across restarts.
//!
//! Rule 3 (docs/protocol.md): a voter persists its term and vote before it answers,
//! so a restart never lets it vote twice in one term. The core emits
//! [`crate::Action::Persist`] ahead of every message that depends on it; the
//! driver writes and fsyncs it before going on.

use crate::config::NodeId;
use crate::message::{PauseSetting, Term};

/// The site most recently chosen as active, as far as this node knows: the
/// site it voted for or followed in the highest term. Manual mode lets only
/// this site (re)claim the active role without approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chosen {
    /// The site.
    pub site: NodeId,
    /// The term in which it was chosen.
    pub term: Term,
}

/// Everything a node writes to disk. A fresh node starts from `default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DurableState {
    /// The highest term this node has seen.
    pub term: Term,
    /// Whom it voted for in `term`, if anyone.
    pub voted_for: Option<NodeId>,
    /// The site last chosen as active, as known here.
    pub last_chosen: Option<Chosen>,
    /// The pause switch.
    pub pause: PauseSetting,
    /// How long, in milliseconds, this node's grants may still bind it: its
    /// configured lease, or a longer one it granted under before a restart
    /// until those grants have run out. A restart waits this long before
    /// granting anything (the quiet period), so shortening the lease in the
    /// config can never cut short a promise made under the old one.
    pub bound_ms: u64,
}

/// The longest `bound_ms` a node accepts from its state file: a day, far
/// beyond any sane lease. More is corrupt and would keep the node from ever
/// granting a vote.
pub const MAX_BOUND_MS: u64 = 24 * 60 * 60 * 1000;
