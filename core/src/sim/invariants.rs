//! The protocol's safety invariants as pure checks over a snapshot of the
//! cluster, shared by the simulator and the model checker.
//!
//! A check that sees only the outcome ("no two active sites") passes a
//! broken mechanism whenever the run happens not to hit the bad timing. So
//! besides the outcome these check the mechanism that guarantees it, at
//! every step, in true time (the harness owns the only true clock):
//! - [`PROMISES_OUTLAST_LEASE`]: every voter whose grant an active site
//!   counts stays bound to it (or to nobody) until that lease has ended in
//!   true time, whatever the two clocks' drift;
//! - [`LEASE_BACKED_BY_MAJORITY`]: those voters hold a majority of votes;
//! - [`ACTIVE_ONLY_WITHIN_LEASE`]: a site does not act at or after the end
//!   of its lease on its own clock;
//! - [`ACTIVE_ONLY_IN_OWN_TERM`]: a site that has adopted a higher term
//!   (another election happened) no longer acts;
//! - [`ONLY_ELECTABLE_SITES_CAMPAIGN`]: a witness or a priority-0 site never
//!   asks for votes, is never elected and never hands over;
//! - [`PERSISTED_BEFORE_SENT`]: a message never carries a term or a vote
//!   that is not yet on the sender's disk;
//! - [`SITE_IN_MAINTENANCE_NEVER_ELECTED`]: no voter grants an unplanned or
//!   approved vote (or pre-vote) to a site its disk holds in maintenance,
//!   and such a site never asks for one ([`check_grant`], [`check_send`]).
//!   It is checked at each grant rather than on the outcome: a site elected
//!   by votes granted before the voters heard of its maintenance was
//!   elected correctly, and a handoff or a forced promotion may make a site
//!   in maintenance active by design;
//! - [`LOST_STATE_NEVER_VOTES`]: a node whose disk says it lost its state
//!   and has not caught up neither grants nor asks for a vote or pre-vote
//!   ([`check_grant`], [`check_send`]).

use super::clock::DriftClock;
use crate::config::{ClusterConfig, NodeId};
use crate::durable::DurableState;
use crate::message::{Message, Term, VoteReply, VoteRequest};
use crate::node::{Binding, Node};
use crate::time::Instant;

/// Rule 1: no two sites act as active at one instant (forced promotion, an
/// explicit operator override, excepted).
pub const AT_MOST_ONE_ACTIVE: &str = "at_most_one_active";
/// Rules 1 and 8: grants outlast the lease they back, in true time.
pub const PROMISES_OUTLAST_LEASE: &str = "promises_outlast_lease";
/// Rule 1: a lease rests on a majority of votes.
pub const LEASE_BACKED_BY_MAJORITY: &str = "lease_backed_by_majority";
/// Rule 1: the end of a lease is not part of it.
pub const ACTIVE_ONLY_WITHIN_LEASE: &str = "active_only_within_lease";
/// Rule 2: an active site acts in the term it won, never after a newer one.
pub const ACTIVE_ONLY_IN_OWN_TERM: &str = "active_only_in_own_term";
/// Rule 4: priority 0 and witnesses never run.
pub const ONLY_ELECTABLE_SITES_CAMPAIGN: &str = "only_electable_sites_campaign";
/// Rule 3: persist before send.
pub const PERSISTED_BEFORE_SENT: &str = "persisted_before_sent";

/// Maintenance: a site in maintenance is never elected by an unplanned or
/// approved election (handoffs and forced promotion excepted).
pub const SITE_IN_MAINTENANCE_NEVER_ELECTED: &str = "site_in_maintenance_never_elected";

/// Rule 3 after a lost state file: a node that may have forgotten its vote
/// votes only once it has caught up with the cluster's term.
pub const LOST_STATE_NEVER_VOTES: &str = "lost_state_never_votes";

/// Every invariant [`check_state`], [`check_send`] and [`check_grant`] can
/// report.
pub const ALL: [&str; 9] = [
    AT_MOST_ONE_ACTIVE,
    PROMISES_OUTLAST_LEASE,
    LEASE_BACKED_BY_MAJORITY,
    ACTIVE_ONLY_WITHIN_LEASE,
    ACTIVE_ONLY_IN_OWN_TERM,
    ONLY_ELECTABLE_SITES_CAMPAIGN,
    PERSISTED_BEFORE_SENT,
    SITE_IN_MAINTENANCE_NEVER_ELECTED,
    LOST_STATE_NEVER_VOTES,
];

/// A broken invariant and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The invariant's name (one of [`ALL`]).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

fn breach(invariant: &'static str, detail: String) -> Breach {
    Breach { invariant, detail }
}

/// One member as the harness sees it at an instant.
#[derive(Clone, Copy, Debug)]
pub struct MemberView<'a> {
    /// The member.
    pub id: NodeId,
    /// Its process, while it runs.
    pub node: Option<&'a Node>,
    /// While it is down: the binding it held when it crashed. A crashed
    /// voter grants nothing, so that binding still holds until it restarts.
    pub binding_while_down: Option<Binding>,
    /// Its clock.
    pub clock: DriftClock,
}

impl MemberView<'_> {
    fn local(&self, real: u64) -> Instant {
        Instant::from_millis(self.clock.local_at(real))
    }

    fn binding(&self) -> Option<Binding> {
        match self.node {
            Some(node) => node.inspect().binding,
            None => self.binding_while_down,
        }
    }
}

/// Checks every state invariant at true time `real`. `members` holds every
/// member, in id order.
pub fn check_state(cfg: &ClusterConfig, real: u64, members: &[MemberView<'_>]) -> Vec<Breach> {
    let mut found = Vec::new();
    let active: Vec<&MemberView<'_>> =
        members.iter().filter(|m| m.node.is_some_and(|n| n.is_active(m.local(real)))).collect();
    let forced = active.iter().any(|m| m.node.and_then(|n| n.inspect().lease).is_some_and(|l| l.forced));
    if active.len() > 1 && !forced {
        let ids: Vec<NodeId> = active.iter().map(|m| m.id).collect();
        found.push(breach(AT_MOST_ONE_ACTIVE, format!("{ids:?} all act as active")));
    }
    for m in members {
        let Some(node) = m.node else { continue };
        let seen = node.inspect();
        if cfg.priority(m.id) == 0 && (seen.campaigning || seen.lease.is_some()) {
            found
                .push(breach(ONLY_ELECTABLE_SITES_CAMPAIGN, format!("{} (priority 0) campaigns or was elected", m.id)));
        }
        let Some(lease) = seen.lease.filter(|l| !l.forced) else { continue };
        if node.is_active(lease.until) {
            found.push(breach(ACTIVE_ONLY_WITHIN_LEASE, format!("{} acts at its lease end {}", m.id, lease.until)));
        }
        let local = m.local(real);
        if !node.is_active(local) {
            continue;
        }
        if node.durable().term != Term(lease.epoch.0) {
            let term = node.durable().term;
            found.push(breach(ACTIVE_ONLY_IN_OWN_TERM, format!("{} acts in {:?} at {term:?}", m.id, lease.epoch)));
        }
        let backers: Vec<&MemberView<'_>> = members.iter().filter(|v| lease.backed_by(v.id)).collect();
        let votes: u32 = backers.iter().map(|v| cfg.votes(v.id)).sum();
        if votes < cfg.quorum() {
            let ids: Vec<NodeId> = backers.iter().map(|v| v.id).collect();
            found.push(breach(LEASE_BACKED_BY_MAJORITY, format!("{}'s lease rests on {ids:?} only", m.id)));
        }
        let lease_end = m.clock.real_for(lease.until.as_millis(), real);
        for v in backers {
            let holds = v
                .binding()
                .filter(|b| b.excludes_all_but(m.id))
                .map(|b| v.clock.real_for(b.until.as_millis(), real))
                .filter(|&end| end >= lease_end);
            if holds.is_none() {
                found.push(breach(
                    PROMISES_OUTLAST_LEASE,
                    format!(
                        "{}'s lease runs to {lease_end} ms true time; backer {} is bound by {:?} ({} ppm vs {} ppm)",
                        m.id,
                        v.id,
                        v.binding().map(|b| (b.holder, v.clock.real_for(b.until.as_millis(), real))),
                        m.clock.drift_ppm,
                        v.clock.drift_ppm,
                    ),
                ));
            }
        }
    }
    found
}

/// Checks a message at the moment `from` sends it, against what is on
/// `from`'s disk at that moment.
pub fn check_send(
    cfg: &ClusterConfig,
    from: NodeId,
    disk: &DurableState,
    to: NodeId,
    message: &Message,
) -> Option<Breach> {
    if matches!(message, Message::PreVote(_) | Message::Vote(_)) && cfg.priority(from) == 0 {
        return Some(breach(ONLY_ELECTABLE_SITES_CAMPAIGN, format!("{from} (priority 0) asks for votes")));
    }
    if matches!(message, Message::PreVote(_) | Message::Vote(_)) && disk.recovering {
        return Some(breach(
            LOST_STATE_NEVER_VOTES,
            format!("{from} asks for votes while its disk says it has not caught up: {message:?}"),
        ));
    }
    if let Message::PreVote(r) | Message::Vote(r) = message {
        if !r.handoff && disk.maintenance.contains(from) {
            return Some(breach(
                SITE_IN_MAINTENANCE_NEVER_ELECTED,
                format!("{from} asks for an unplanned vote while its disk holds it in maintenance: {message:?}"),
            ));
        }
    }
    // Terms a message carries as the sender's own; pre-votes and their
    // replies carry a term nobody has adopted yet.
    let own_term = match *message {
        Message::Vote(r) => Some(r.term),
        Message::VoteReply(r) => Some(r.term),
        Message::Heartbeat(h) => Some(h.term),
        Message::HeartbeatReply(r) => Some(r.term),
        Message::ReleaseLease { term, .. } | Message::ReleaseAck { term } | Message::TimeoutNow { term } => Some(term),
        Message::StateAnswer(a) => Some(a.term),
        Message::PreVote(_) | Message::PreVoteReply(_) | Message::StateQuery => None,
    };
    if own_term.is_some_and(|t| t > disk.term) {
        return Some(breach(
            PERSISTED_BEFORE_SENT,
            format!("{from} sent {message:?} to {to} with {:?} on disk", disk.term),
        ));
    }
    let vote_for = match *message {
        Message::Vote(r) => Some((r.term, from)),
        Message::VoteReply(r) if r.granted => Some((r.term, to)),
        _ => None,
    };
    match vote_for {
        Some((term, candidate)) if disk.term == term && disk.voted_for != Some(candidate) => Some(breach(
            PERSISTED_BEFORE_SENT,
            format!("{from} sent a vote for {candidate} in {term:?} with {:?} on disk", disk.voted_for),
        )),
        _ => None,
    }
}

/// Checks a voter's answer to a vote or pre-vote `request` from
/// `candidate`, at the moment the voter sends it, against the voter's disk.
pub fn check_grant(
    voter: NodeId,
    disk: &DurableState,
    candidate: NodeId,
    request: &VoteRequest,
    reply: &VoteReply,
) -> Option<Breach> {
    if reply.granted && disk.recovering {
        return Some(breach(
            LOST_STATE_NEVER_VOTES,
            format!("{voter} granted {candidate} {request:?} while its disk says it has not caught up"),
        ));
    }
    (reply.granted && !request.handoff && disk.maintenance.contains(candidate)).then(|| {
        breach(
            SITE_IN_MAINTENANCE_NEVER_ELECTED,
            format!("{voter} granted {candidate} {request:?} while its disk holds {candidate} in maintenance"),
        )
    })
}
