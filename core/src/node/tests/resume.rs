//! Restart in place, one node driven by hand: what the restarted process
//! records, how it numbers its rounds, and that it acts again only once.

use std::sync::Arc;

use super::*;
use crate::command::Command;
use crate::message::HeartbeatReply;

/// Site-a active, then its process restarted 100 ms later from its disk.
fn restarted_site_a() -> (Node, Instant, Term) {
    let (a, now, term) = active_site_a();
    let later = now + Duration::from_millis(100);
    let cfg = Arc::new(a.config().clone());
    let mut restarted = Node::new(cfg, NodeId(0), *a.durable(), later, 9).expect("restarts");
    drain(&mut restarted);
    (restarted, later, term)
}

#[test]
fn a_restarted_active_site_records_one_more_resume_and_numbers_its_rounds_from_it() {
    let (a, _, _) = active_site_a();
    assert_eq!(a.durable().led.map(|l| l.resumes), Some(0), "the role is recorded before it first acts");
    let (mut b, now, term) = restarted_site_a();
    assert_eq!(b.durable().led.map(|l| (l.term, l.resumes)), Some((term, 1)));
    assert_eq!(b.status(now).role, RoleName::Resuming);
    let first = renewal_round(&mut b, now);
    assert_eq!(first.seq, (1 << 48) + 1, "rounds of the first resumed process start at 1 << 48");
    // A second restart moves the numbering on again.
    let cfg = Arc::new(b.config().clone());
    let mut c = Node::new(cfg, NodeId(0), *b.durable(), now + Duration::from_millis(50), 3).expect("restarts");
    drain(&mut c);
    assert_eq!(c.durable().led.map(|l| l.resumes), Some(2));
    assert_eq!(renewal_round(&mut c, now + Duration::from_millis(50)).seq, (2 << 48) + 1);
}

#[test]
fn a_resumed_site_actuates_once_and_then_every_actuation_interval() {
    let (mut a, now, term) = restarted_site_a();
    let round = renewal_round(&mut a, now);
    let reply = HeartbeatReply { term, seq: round.seq, granted: true, bound_ms: full_lease_ms() };
    a.handle_message(now, NodeId(2), Message::HeartbeatReply(reply));
    let actions = drain(&mut a);
    assert!(actions.iter().any(|x| matches!(x, Action::ResumeActive { .. })), "{actions:?}");
    assert_eq!(actions.iter().filter(|x| matches!(x, Action::Actuate { .. })).count(), 1, "{actions:?}");
    assert!(a.is_active(now));
    let soon = now + Duration::from_millis(10);
    a.handle_timeout(soon);
    let again = drain(&mut a);
    assert!(!again.iter().any(|x| matches!(x, Action::Actuate { .. })), "actuated again at once: {again:?}");
    let interval = Timers::default().actuation_interval;
    assert_eq!(a.deadlines.get(Timer::ActuationDue), Some(now + interval));
}

#[test]
fn a_forced_promotion_is_never_recorded_for_a_restart_to_resume() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    drain(&mut b);
    let after_quiet = at(full_lease_ms() + 1);
    b.command(after_quiet, Command::ForcePromote).expect("forced");
    let epoch = drain(&mut b)
        .into_iter()
        .find_map(|x| match x {
            Action::RunPrePromote { epoch, .. } => Some(epoch),
            _ => None,
        })
        .expect("promoting");
    b.pre_promote_finished(after_quiet, epoch, true);
    assert!(b.is_active(after_quiet), "forced active");
    assert_eq!(b.durable().led, None, "a forced role must not be taken back by a restart");
}
