//! Messages between nodes, as the core sees them. The gRPC schema in
//! `failover-proto` carries the same fields; drivers convert at the edge and
//! reject what does not fit before it reaches the core.

use crate::config::NodeId;

/// A Raft-style election term. Terms only grow; a node persists its term and
/// its vote in that term before it answers anyone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

/// The largest term, epoch, pause or maintenance version a node accepts or reaches.
/// Terms grow by one per election: at one election a second, 2^48 lasts
/// nearly nine million years, so anything larger is corrupt or hostile
/// input. A node ignores a message or a fence that carries more, and refuses
/// to start from a state that holds more, so no counter can wrap or be
/// pushed to its end.
pub const MAX_TERM: u64 = 1 << 48;

/// The fencing token carried by every external action. An active site's
/// epoch is the term in which it won, so epochs of successive active sites
/// strictly increase (terms do, and each term has at most one winner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl Term {
    /// The term after this one; `None` past [`MAX_TERM`] (then the node no
    /// longer runs for election: a second vote in one term is never an
    /// option).
    pub fn next(self) -> Option<Term> {
        Some(Term(self.0 + 1)).filter(|t| t.0 <= MAX_TERM)
    }
}

impl From<Term> for Epoch {
    fn from(t: Term) -> Epoch {
        Epoch(t.0)
    }
}

/// What a site says about itself; the witness always reports healthy and
/// caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteReport {
    /// Its own health checks pass.
    pub healthy: bool,
    /// Its data lag is within `max_lag_on_failover`.
    pub caught_up: bool,
    /// It has heard from a majority of votes (itself included) within one
    /// lease, so it could win an election.
    pub sees_quorum: bool,
}

/// How a site came to be active; followers use it for the failover cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActivationCause {
    /// The first active site, or the last active site claiming its role again.
    Reclaim,
    /// An unplanned failover that nobody approved.
    AutomaticFailover,
    /// An unplanned failover an operator approved.
    ApprovedFailover,
    /// A graceful handoff: switchover, failback, shutdown or unhealthy active.
    Handoff,
    /// Disaster recovery without a majority, forced by an operator.
    Forced,
}

/// Why an unplanned failover waits for an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProposalReason {
    /// The cluster runs in manual (operator-approved) mode.
    ManualMode,
    /// The target's data lags beyond `max_lag_on_failover`.
    TargetLagging,
    /// An automatic failover happened within the cooldown.
    Cooldown,
    /// The active site's checks fail and it cannot hand over by itself.
    ActiveUnhealthy,
    /// A higher-priority site is back; manual mode holds the failback.
    Failback,
    /// The elected site's `pre_promote` hook failed; manual mode holds the
    /// move to the next site.
    PromotionDeclined,
    /// Automatic actions are paused and no site is active.
    Paused,
    /// The site that would take over is in maintenance: nothing moves (and
    /// no approval moves it) until its maintenance ends or a forced
    /// promotion.
    TargetInMaintenance,
}

/// An unplanned failover waiting for approval, as carried in heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalNotice {
    /// The site that would become active.
    pub target: NodeId,
    /// Why it waits.
    pub reason: ProposalReason,
    /// Milliseconds since the sender raised it.
    pub age_ms: u64,
}

/// The cluster-wide pause switch: a last-writer-wins register ordered by
/// `(version, by)`, so every node converges on the same value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PauseSetting {
    /// Bumped by each pause or resume.
    pub version: u64,
    /// The node that set it (breaks ties between concurrent changes).
    pub by: u8,
    /// Whether automatic actions are suspended.
    pub paused: bool,
}

/// The sites in maintenance, cluster-wide: a last-writer-wins register
/// ordered by `(version, by)` like [`PauseSetting`], so every node converges
/// on the same value. A site in maintenance is no target of an unplanned
/// failover, an approved one or a switchover (a forced promotion still
/// works, and a handoff already under way is not undone).
///
/// The register holds the whole set: an operator's change to one site is
/// made on the set the node that carries it out knows. Two changes to
/// different sites made at once through different nodes can therefore lose
/// one of them; `failoverctl maintenance` waits until every node it reaches
/// holds the site as asked, so a lost change is reported, never silent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaintenanceSetting {
    /// Bumped by each change.
    pub version: u64,
    /// The node that made the last change (breaks ties between concurrent
    /// changes).
    pub by: u8,
    /// The sites in maintenance, one bit per member id.
    pub sites: u16,
}

impl MaintenanceSetting {
    /// Whether `site` is in maintenance.
    pub fn contains(self, site: NodeId) -> bool {
        site.index() < 16 && self.sites & (1 << site.index()) != 0
    }

    /// The set with `site` in maintenance (`on`) or out of it.
    pub fn with(self, site: NodeId, on: bool) -> u16 {
        if site.index() >= 16 {
            return self.sites;
        }
        let bit = 1u16 << site.index();
        if on {
            self.sites | bit
        } else {
            self.sites & !bit
        }
    }
}

/// A request for a vote, or for a pre-vote (which changes no state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoteRequest {
    /// The term the candidate runs in (for a pre-vote: the term it would use).
    pub term: Term,
    /// The candidate's own report.
    pub report: SiteReport,
    /// An operator approved this failover.
    pub approved: bool,
    /// The previous active site handed over to this candidate.
    pub handoff: bool,
}

/// Why a voter said no. Carried for status and logs only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// The request's term is older than the voter's.
    StaleTerm,
    /// The voter already voted for another candidate in this term.
    AlreadyVoted,
    /// The voter's grant to another site (or from before its restart) has
    /// not expired on its clock.
    LeaseHeld,
    /// The candidate is a witness or has priority 0.
    NotElectable,
    /// The candidate reports failing checks.
    CandidateUnhealthy,
    /// The candidate's data lags and nobody approved.
    CandidateLagging,
    /// Manual mode and nobody approved.
    NeedsApproval,
    /// The cluster is paused.
    Paused,
    /// Within the cooldown after an automatic failover.
    Cooldown,
    /// The voter knows a healthy site with higher priority.
    BetterCandidate,
    /// The candidate is in maintenance: no unplanned or approved vote.
    InMaintenance,
    /// The voter lost its state and has not yet heard the cluster's term
    /// and last chosen site from the others: it may have voted in this
    /// term before.
    Recovering,
}

/// The answer to a vote or pre-vote request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoteReply {
    /// For a vote: the voter's term after handling the request. For a
    /// pre-vote: the term that was asked about, or the voter's own (higher)
    /// term when refused as stale.
    pub term: Term,
    /// Whether the vote is granted.
    pub granted: bool,
    /// Why not, if not.
    pub refusal: Option<Refusal>,
    /// With [`Refusal::LeaseHeld`]: milliseconds left of the voter's grant
    /// on its own clock (0 otherwise), so the candidate asks again when it
    /// runs out instead of guessing.
    pub lease_held_ms: u64,
    /// With a granted vote: for how many milliseconds from receiving the
    /// request the voter binds itself to the candidate, on its own clock (0
    /// otherwise). The candidate's lease is bounded by what its voters
    /// promised, so nodes whose configured leases differ stay safe.
    pub bound_ms: u64,
}

/// A lease renewal round, present only in the active site's heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseRenewal {
    /// Round number, acknowledged by [`HeartbeatReply::seq`].
    pub seq: u64,
    /// How the sender became active.
    pub cause: ActivationCause,
    /// Milliseconds left of the cooldown that the sender's automatic
    /// failover started (0 if none), so a node that joins later agrees.
    pub cooldown_ms: u64,
}

/// Sent by every node to every other one each heartbeat interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Heartbeat {
    /// The sender's term.
    pub term: Term,
    /// Present when the sender is the elected site renewing its lease.
    pub lease: Option<LeaseRenewal>,
    /// The sender's own report.
    pub report: SiteReport,
    /// The sender's view of the pause switch.
    pub pause: PauseSetting,
    /// A failover the sender proposes and holds for approval.
    pub proposal: Option<ProposalNotice>,
    /// The sender's view of the sites in maintenance.
    pub maintenance: MaintenanceSetting,
}

/// A voter's answer to a lease renewal round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeartbeatReply {
    /// The voter's term.
    pub term: Term,
    /// The round answered.
    pub seq: u64,
    /// True when the voter binds itself to the sender for one more lease.
    pub granted: bool,
    /// When granted: for how many milliseconds from receiving the heartbeat
    /// the voter binds itself, on its own clock (0 otherwise).
    pub bound_ms: u64,
}

impl Message {
    /// Whether every term and version the message carries is at most
    /// [`MAX_TERM`]. A node ignores a message that is not.
    pub fn within_bounds(&self) -> bool {
        let (term, version) = match *self {
            Message::PreVote(r) | Message::Vote(r) => (r.term, 0),
            Message::PreVoteReply(r) | Message::VoteReply(r) => (r.term, 0),
            Message::Heartbeat(h) => (h.term, h.pause.version.max(h.maintenance.version)),
            Message::HeartbeatReply(r) => (r.term, 0),
            Message::ReleaseLease { term, .. } | Message::ReleaseAck { term } | Message::TimeoutNow { term } => {
                (term, 0)
            }
            Message::StateQuery => (Term(0), 0),
            Message::StateAnswer(a) => {
                let chosen = a.last_chosen.map_or(0, |c| c.term.0);
                (a.term.max(Term(chosen)), a.pause.version.max(a.maintenance.version))
            }
        };
        term.0 <= MAX_TERM && version <= MAX_TERM
    }
}

/// A member's answer to a [`Message::StateQuery`]: what it holds on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateAnswer {
    /// Its term.
    pub term: Term,
    /// The site it knows as chosen last, and in which term.
    pub last_chosen: Option<crate::durable::Chosen>,
    /// Its view of the pause switch.
    pub pause: PauseSetting,
    /// Its view of the sites in maintenance.
    pub maintenance: MaintenanceSetting,
}

/// Everything one node can send another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Message {
    /// "Would you vote for me in this term?" Changes no state.
    PreVote(VoteRequest),
    /// Answer to a pre-vote.
    PreVoteReply(VoteReply),
    /// "Vote for me in this term." Persisted before it is answered.
    Vote(VoteRequest),
    /// Answer to a vote.
    VoteReply(VoteReply),
    /// Periodic status, and lease renewal from the active site.
    Heartbeat(Heartbeat),
    /// Answer to a lease renewal.
    HeartbeatReply(HeartbeatReply),
    /// Handoff, step 1: the old active site, already stepped down, asks the
    /// voters to move their grant to `to`.
    ReleaseLease {
        /// The old active site's term.
        term: Term,
        /// The site that takes over.
        to: NodeId,
    },
    /// A voter moved its grant as asked.
    ReleaseAck {
        /// The term of the release.
        term: Term,
    },
    /// Handoff, step 2: the target starts its election now.
    TimeoutNow {
        /// The old active site's term.
        term: Term,
    },
    /// "What do you hold?", from a node that lost its state. Only an answer
    /// to a query sent after the loss counts: it was written after every
    /// vote the node may have forgotten.
    StateQuery,
    /// The answer to a [`Message::StateQuery`]. A node that is itself
    /// recovering does not answer.
    StateAnswer(StateAnswer),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_contains_no_member_past_the_sixteen_bits() {
        let all = MaintenanceSetting { version: 1, by: 0, sites: u16::MAX };
        assert!(all.contains(NodeId(15)));
        assert!(!all.contains(NodeId(16)));
        assert!(!all.contains(NodeId(200)));
    }

    #[test]
    fn maintenance_with_a_site_already_in_keeps_it_in() {
        let setting = MaintenanceSetting { version: 1, by: 0, sites: 0b101 };
        assert_eq!(setting.with(NodeId(2), true), 0b101);
        assert_eq!(setting.with(NodeId(1), true), 0b111);
        assert_eq!(setting.with(NodeId(2), false), 0b001);
        assert_eq!(setting.with(NodeId(16), true), 0b101);
    }
}
