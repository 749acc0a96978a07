//! What the core asks its driver to do.
//!
//! # Contract
//! The driver drains [`crate::Node::poll_action`] after every input and
//! carries the actions out **in the order given**:
//! - [`Action::Persist`] must be written and fsynced before any later action
//!   of the same batch is carried out (a vote may not leave the process
//!   before it is on disk);
//! - [`Action::Send`] may be lost, delayed, duplicated or reordered by the
//!   network; the protocol tolerates all of it;
//! - role actions ([`Action::RunPrePromote`], [`Action::BecomeActive`],
//!   [`Action::ResumeActive`],
//!   [`Action::Actuate`], [`Action::Drain`], [`Action::StepDown`]) carry the
//!   epoch that fences them; the driver passes it to every external target.
//!
//! Whether the node acts as active *right now* is never inferred from these
//! actions: ask [`crate::Node::is_active`] with the current time, which also
//! checks that the lease has not run out.

use crate::config::NodeId;
use crate::durable::DurableState;
use crate::message::{ActivationCause, Epoch, Message, ProposalReason, Refusal, Term};
use crate::time::Instant;

/// Why a site stopped acting as active.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepDownReason {
    /// Its lease could not be renewed by a majority in time.
    LeaseExpired,
    /// It saw a higher term: another site was elected.
    HigherTerm,
    /// It hands over to another site.
    Handoff {
        /// The site taking over.
        to: NodeId,
        /// What started the handoff.
        why: HandoffReason,
    },
    /// Its `pre_promote` hook failed.
    PromotionDeclined,
    /// The process is shutting down and no eligible site can take over.
    ShutdownWithoutSuccessor,
    /// A target that checks epochs holds a newer one and this site, promoted
    /// by force, holds no lease to weigh it against (`Node::fenced`).
    Fenced {
        /// The newer epoch it holds.
        by: Epoch,
    },
}

/// What started a graceful handoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandoffReason {
    /// An operator's switchover, immediate or scheduled.
    Switchover,
    /// Automatic failback to a higher-priority site.
    Failback,
    /// The active site's own checks fail.
    Unhealthy,
    /// The process is shutting down (SIGTERM).
    Shutdown,
    /// The `pre_promote` hook failed.
    PromotionDeclined,
    /// An operator approved a proposed failover.
    Approved,
}

/// Why a scheduled switchover was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SwitchoverCancelReason {
    /// An operator cancelled it.
    Operator,
    /// An operator asked for another switchover, which replaced it.
    Replaced,
    /// This site stopped holding the active role before it was due (a
    /// newer term, its lease ran out, a handoff, a step-down).
    LostRole,
    /// When it was due, this site was not acting as active.
    NotActive,
    /// When it was due, the target could not take over (why).
    TargetIneligible(crate::command::CommandError),
    /// The process restarted and did not take the active role back in
    /// place, so the schedule it had persisted cannot be carried out.
    NotResumedAfterRestart,
}

/// Something worth a line in the log and in the event history.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// This site asked for votes.
    ElectionStarted { term: Term, approved: bool, handoff: bool },
    /// This site's pre-vote or vote was refused by a voter.
    VoteRefused { by: NodeId, term: Term, refusal: Refusal },
    /// This site won an election and holds the lease.
    Elected { epoch: Epoch, cause: ActivationCause },
    /// This site now acts as active.
    BecameActive { epoch: Epoch, cause: ActivationCause },
    /// This site stopped acting as active.
    SteppedDown { epoch: Epoch, reason: StepDownReason },
    /// This site restarted while it held the active role in `epoch`'s term,
    /// and asks a majority to renew its lease (restart in place).
    ResumeStarted { epoch: Epoch },
    /// After a restart in place, a majority renewed this site's lease: it
    /// acts as active again under the same epoch.
    ActiveRoleResumed { epoch: Epoch },
    /// The restart in place did not get its lease renewed (`reason`): the
    /// site stands by, and an ordinary election follows.
    ResumeAbandoned { epoch: Epoch, reason: StepDownReason },
    /// Another site was seen acting as active with a new epoch.
    ActiveSiteChanged { site: NodeId, epoch: Epoch, cause: ActivationCause },
    /// A failover was proposed and waits for approval.
    FailoverProposed { target: NodeId, reason: ProposalReason },
    /// An operator approved a failover to this site.
    FailoverApproved { target: NodeId },
    /// A handoff began.
    HandoffStarted { to: NodeId, why: HandoffReason },
    /// A switchover was scheduled for a later time on this node's clock.
    SwitchoverScheduled { to: NodeId, at: Instant },
    /// A scheduled switchover to `to` was dropped without being carried
    /// out, and why. Every dropped schedule says so with this event.
    SwitchoverCancelled { to: NodeId, reason: SwitchoverCancelReason },
    /// Automatic actions were suspended (by the node named).
    Paused { by: NodeId },
    /// Automatic actions were resumed (by the node named).
    Resumed { by: NodeId },
    /// `site` was put in maintenance (`on`) or taken out of it, by the node
    /// named.
    MaintenanceChanged { site: NodeId, on: bool, by: NodeId },
    /// An operator forced this site active without a majority.
    ForcedPromotion { epoch: Epoch },
    /// The active site's checks fail and no eligible site can take over.
    UnhealthyWithoutSuccessor,
    /// This node, which had lost its state, heard the cluster's term and
    /// last chosen site from the others and votes again from the next term.
    StateRecovered { term: Term, last_chosen: Option<crate::durable::Chosen> },
    /// A target holds `stored`, newer than this active site's `epoch`,
    /// while its lease is valid: forged, or left by a forced promotion. The
    /// site stays active and writes nothing over it.
    FenceAhead { epoch: Epoch, stored: Epoch },
}

/// One thing for the driver to do. See the module docs for the contract.
// Variant fields are named for what they hold; each variant's doc says the rest.
#[allow(missing_docs)]
#[must_use = "actions must be carried out in order; see failover_core::action"]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Write and fsync this state before carrying out anything after it.
    Persist(DurableState),
    /// Send a message to a peer.
    Send { to: NodeId, message: Message },
    /// Run the `pre_promote` hook, then call
    /// [`crate::Node::pre_promote_finished`] with its outcome; `cause` is
    /// how the site was elected.
    RunPrePromote { epoch: Epoch, cause: ActivationCause },
    /// Take the active role: run `post_promote`, start actuating.
    BecomeActive { epoch: Epoch, cause: ActivationCause },
    /// Act as active again after a restart in place, under the epoch the
    /// site held before it: start actuating (targets already hold this
    /// epoch, so nothing moves). The promote hooks ran before the restart
    /// and are not run again.
    ResumeActive { epoch: Epoch, cause: ActivationCause },
    /// Point traffic here with this epoch (repeated: convergence).
    Actuate { epoch: Epoch },
    /// Drain traffic away from this site towards `to`, the site it is about
    /// to hand over to, before a planned handoff. The site still holds its
    /// lease while it drains; periodic [`Action::Actuate`] passes that follow
    /// keep the drain in place.
    Drain { epoch: Epoch, to: NodeId },
    /// Stop acting as active; run `on_demote`.
    StepDown { epoch: Epoch, reason: StepDownReason },
    /// Record an event.
    Event(Event),
}
