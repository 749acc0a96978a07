//! Unit tests of one node driven by hand, message by message and timer by
//! timer: the edges the protocol scenarios (`tests/rules.rs`) and the
//! simulator pass by, most found by mutation testing. This module holds
//! the helpers; the tests are split by role.

use std::sync::Arc;
use std::time::Duration;

use super::{LocalHealth, Node, RoleState, Timer, VoterSet};
use crate::action::Action;
use crate::config::{ClusterConfig, Member, NodeId, Policy, Timers};
use crate::durable::DurableState;
use crate::message::{Heartbeat, Message, PauseSetting, SiteReport, Term, VoteRequest};
use crate::status::RoleName;
use crate::time::Instant;

mod bounds;
mod candidate;
mod counters;
mod leader;
mod maintenance;
mod recovery;
mod reports;
mod resume;
mod voter;

const LEASE_MS: u64 = 3000;

fn node(members: Vec<Member>, id: u8) -> Node {
    let cfg = ClusterConfig { members, timers: Timers::default(), policy: Policy::default() };
    Node::new(Arc::new(cfg), NodeId(id), DurableState::default(), Instant::from_millis(0), 7).expect("valid")
}

fn drain(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

/// A one-site cluster elects itself; returns the node, active, and the time.
fn lone_active_site() -> (Node, Instant) {
    let mut n = node(vec![Member::site("site-a", 1)], 0);
    for _ in 0..20 {
        let (at, _) = n.next_deadline().expect("a timer");
        n.handle_timeout(at);
        for action in drain(&mut n) {
            if let Action::RunPrePromote { epoch, .. } = action {
                n.pre_promote_finished(at, epoch, true);
            }
        }
        if n.is_active(at) {
            drain(&mut n);
            return (n, at);
        }
    }
    panic!("a lone site never elected itself");
}

fn report() -> SiteReport {
    SiteReport { healthy: true, caught_up: true, sees_quorum: true }
}

/// A site's heartbeat in `term` with `report`: no lease, no pause, no
/// proposal, no maintenance.
fn heartbeat(term: Term, report: SiteReport) -> Heartbeat {
    Heartbeat {
        term,
        lease: None,
        report,
        pause: PauseSetting::default(),
        proposal: None,
        maintenance: Default::default(),
    }
}

/// The witness of a two-site cluster, past its quiet period.
fn witness() -> Node {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut w = node(members, 2);
    drain(&mut w);
    w
}

fn vote(term: u64) -> Message {
    Message::Vote(VoteRequest { term: Term(term), report: report(), approved: false, handoff: false })
}

/// The answer `n` sent to a vote or pre-vote: (granted, refusal).
fn answer(n: &mut Node) -> Option<(bool, Option<crate::Refusal>)> {
    drain(n).into_iter().find_map(|a| match a {
        Action::Send { message: Message::VoteReply(r) | Message::PreVoteReply(r), .. } => Some((r.granted, r.refusal)),
        _ => None,
    })
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn lease_heartbeat(term: u64, cooldown_ms: u64, pause: PauseSetting) -> Message {
    let renewal = crate::message::LeaseRenewal { seq: 1, cause: crate::ActivationCause::Reclaim, cooldown_ms };
    Message::Heartbeat(Heartbeat {
        term: Term(term),
        lease: Some(renewal),
        report: report(),
        pause,
        proposal: None,
        maintenance: Default::default(),
    })
}

/// Site-a asking for votes (pre-vote or vote) in its next term.
fn campaigning_site_a() -> (Node, Instant, Term) {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut a = node(members, 0);
    for _ in 0..20 {
        let (now, _) = a.next_deadline().expect("timers");
        a.handle_timeout(now);
        drain(&mut a);
        if a.status(now).role == RoleName::Candidate {
            let term = a.durable().term.next().expect("far from the last term");
            return (a, now, term);
        }
    }
    panic!("site-a never asked for votes");
}

/// Whether `n`, asked to consider an election at `now`, asks for votes.
fn runs_at(n: &mut Node, now: Instant) -> bool {
    drain(n);
    n.consider_election(now);
    drain(n).iter().any(|a| matches!(a, Action::Send { message: Message::PreVote(_) | Message::Vote(_), .. }))
}

/// The heartbeat replies `n` sent: (term, granted).
fn heartbeat_replies(n: &mut Node) -> Vec<(u64, bool)> {
    drain(n)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { message: Message::HeartbeatReply(r), .. } => Some((r.term.0, r.granted)),
            _ => None,
        })
        .collect()
}

/// A three-member cluster's site-a, elected and active: (node, now, term).
fn active_site_a() -> (Node, Instant, Term) {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut a = node(members, 0);
    for _ in 0..40 {
        let (now, _) = a.next_deadline().expect("timers");
        a.handle_timeout(now);
        let mut queue: std::collections::VecDeque<Action> = drain(&mut a).into();
        while let Some(action) = queue.pop_front() {
            let reply = match action {
                Action::Send { to, message: Message::PreVote(r) } => Some((to, Message::PreVoteReply(yes(r.term)))),
                Action::Send { to, message: Message::Vote(r) } => Some((to, Message::VoteReply(yes(r.term)))),
                Action::RunPrePromote { epoch, .. } => {
                    a.pre_promote_finished(now, epoch, true);
                    None
                }
                _ => None,
            };
            if let Some((from, message)) = reply {
                a.handle_message(now, from, message);
            }
            queue.extend(drain(&mut a));
        }
        if a.is_active(now) {
            let term = a.durable().term;
            return (a, now, term);
        }
    }
    panic!("site-a was never elected");
}

/// A grant's binding under the test config's lease.
fn full_lease_ms() -> u64 {
    crate::time::millis(Timers::default().lease_duration)
}

fn yes(term: Term) -> crate::message::VoteReply {
    crate::message::VoteReply { term, granted: true, refusal: None, lease_held_ms: 0, bound_ms: full_lease_ms() }
}

fn lease_end(n: &Node, now: Instant) -> Instant {
    now + n.status(now).lease_remaining.expect("a lease")
}

/// Runs `n`'s heartbeat at `now` and returns the renewal round it opened.
fn renewal_round(n: &mut Node, now: Instant) -> crate::message::LeaseRenewal {
    n.deadlines.set(Timer::HeartbeatDue, now);
    n.handle_timeout(now);
    drain(n)
        .into_iter()
        .find_map(|a| match a {
            Action::Send { message: Message::Heartbeat(Heartbeat { lease: Some(r), .. }), .. } => Some(r),
            _ => None,
        })
        .expect("a renewal round")
}

/// Runs `a`'s timers up to `until`, with site-b sending a status heartbeat
/// (`report`) before each and the witness acknowledging every renewal.
/// Returns the events, with when they happened.
fn run_leader(a: &mut Node, until: Instant, b_report: Option<SiteReport>) -> Vec<(Instant, crate::Event)> {
    use crate::message::HeartbeatReply;
    let mut events = Vec::new();
    for _ in 0..1000 {
        let (t, _) = a.next_deadline().expect("timers");
        if t > until {
            break;
        }
        if let Some(report) = b_report {
            let term = a.durable().term;
            let hb = heartbeat(term, report);
            a.handle_message(t, NodeId(1), Message::Heartbeat(hb));
        }
        a.handle_timeout(t);
        for action in drain(a) {
            match action {
                Action::Send { to, message: Message::Heartbeat(Heartbeat { term, lease: Some(r), .. }) }
                    if to == NodeId(2) =>
                {
                    a.handle_message(
                        t,
                        to,
                        Message::HeartbeatReply(HeartbeatReply {
                            term,
                            seq: r.seq,
                            granted: true,
                            bound_ms: full_lease_ms(),
                        }),
                    );
                }
                Action::Event(e) => events.push((t, e)),
                _ => {}
            }
        }
        events.extend(drain(a).into_iter().filter_map(|x| match x {
            Action::Event(e) => Some((t, e)),
            _ => None,
        }));
    }
    events
}

fn handoffs(events: &[(Instant, crate::Event)]) -> Vec<(Instant, crate::HandoffReason)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            crate::Event::HandoffStarted { why, .. } => Some((*t, *why)),
            _ => None,
        })
        .collect()
}
