//! The state a node must keep across restarts.
//!
//! Rule 3 (docs/protocol.md): a voter persists its term and vote before it answers,
//! so a restart never lets it vote twice in one term. The core emits
//! [`crate::Action::Persist`] ahead of every message that depends on it; the
//! driver writes and fsyncs it before going on.

use crate::config::NodeId;
use crate::message::{ActivationCause, MaintenanceSetting, PauseSetting, Term};

/// The site most recently chosen as active, as far as this node knows: the
/// site it voted for or followed in the highest term. Manual mode lets only
/// this site (re)claim the active role without approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chosen {
    /// The site.
    pub site: NodeId,
    /// The term in which it was chosen.
    pub term: Term,
}

/// The term this site won and acts as active in, written before it first
/// acts (before [`crate::Action::BecomeActive`]) and cleared, on disk,
/// before it stops holding that role by its own choice (a handoff sends no
/// release before the clearing is written).
///
/// It is what lets a restarted process take its role back without an
/// election (restart in place): in `term` no other site can have been
/// elected, because this site won it and every voter votes once per term.
/// It never makes the restarted process active by itself: the lease the old
/// process held is gone with it, and the new one acts only once a majority
/// has renewed a fresh lease in `term` (see `Node::new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Led {
    /// The term won; the epoch the site acts under is this term.
    pub term: Term,
    /// How the site became active (followers count the cooldown from it).
    pub cause: ActivationCause,
    /// How many times a restarted process has resumed this role. Each
    /// process numbers its renewal rounds from `resumes << 48`, so a reply
    /// to a round of an earlier process (still in flight, or duplicated)
    /// can never be counted for a round of this one: it would carry a
    /// promise made before this process's round was sent.
    pub resumes: u16,
}

/// Everything a node writes to disk. A node of a new cluster starts from
/// `default()`; one that lost its state from [`DurableState::lost`].
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
    /// The term this site won and still acts as active in, if any.
    pub led: Option<Led>,
    /// The sites in maintenance.
    pub maintenance: MaintenanceSetting,
    /// A switchover this (active) site has scheduled, written before it is
    /// acknowledged, so a restart in place carries it out when due.
    pub scheduled: Option<ScheduledSwitchover>,
    /// The node lost this state (it started without it in a cluster that
    /// had already run) and has not caught up yet. It may have voted in any
    /// term it had seen and forgot the site chosen last, so until it has
    /// heard both from the others it grants no vote or pre-vote and runs
    /// for nothing (see `core/src/node/recovery.rs`). Kept on disk so a
    /// restart before it caught up does not forget that it has to.
    pub recovering: bool,
}

/// A scheduled switchover as the active site holds it.
///
/// `at` is on this node's monotonic clock, like every time the core sees.
/// A driver whose monotonic clock does not survive what a restart may span
/// (a reboot) stores it in another form and converts it back on load: the
/// controller stores the wall-clock time the operator gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScheduledSwitchover {
    /// The site to hand over to.
    pub to: NodeId,
    /// When, on this node's clock.
    pub at: crate::time::Instant,
}

/// The longest `bound_ms` a node accepts from its state file: a day, far
/// beyond any sane lease. More is corrupt and would keep the node from ever
/// granting a vote.
pub const MAX_BOUND_MS: u64 = 24 * 60 * 60 * 1000;

impl DurableState {
    /// The state of a node that lost what it had written: nothing known,
    /// and [`DurableState::recovering`] set.
    pub fn lost() -> DurableState {
        DurableState { recovering: true, ..DurableState::default() }
    }
}
