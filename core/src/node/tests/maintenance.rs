//! Per-site maintenance as one node applies it, and the durable scheduled
//! switchover's wait for a target it has not heard from.

use super::*;
use crate::action::{Event, SwitchoverCancelReason};
use crate::command::{Command, CommandError};
use crate::durable::ScheduledSwitchover;
use crate::message::ProposalReason;

fn pending(n: &Node, now: Instant) -> Option<(NodeId, ProposalReason)> {
    n.status(now).pending_failover.map(|p| (p.target, p.reason))
}

fn maintenance(n: &mut Node, now: Instant, site: u8, on: bool) {
    n.command(now, Command::Maintenance { site: NodeId(site), on }).expect("maintenance accepted");
}

/// The witness's status heartbeat, carrying `sites` as the sites in
/// maintenance (as an operator set them through it).
fn witness_says_in_maintenance(n: &mut Node, now: Instant, sites: u16) {
    let hb = Heartbeat {
        term: n.durable().term,
        lease: None,
        report: report(),
        pause: PauseSetting::default(),
        proposal: None,
        maintenance: crate::MaintenanceSetting { version: 1, by: 2, sites },
    };
    n.handle_message(now, NodeId(2), Message::Heartbeat(hb));
}

#[test]
fn a_site_refused_as_in_maintenance_proposes_itself_until_maintenance_changes_without_it() {
    let (mut a, now, term) = campaigning_site_a();
    let no = crate::message::VoteReply {
        term,
        granted: false,
        refusal: Some(crate::Refusal::InMaintenance),
        lease_held_ms: 0,
        bound_ms: 0,
    };
    a.handle_message(now, NodeId(2), Message::PreVoteReply(no));
    assert_eq!(pending(&a, now), Some((NodeId(0), ProposalReason::TargetInMaintenance)));
    // A setting that leaves site-a out: the reason is gone, so is the proposal.
    maintenance(&mut a, now, 0, false);
    assert_eq!(pending(&a, now), None);
}

#[test]
fn a_site_asking_for_pre_votes_stops_when_put_in_maintenance() {
    let (mut a, now, _) = campaigning_site_a();
    assert!(matches!(a.role, RoleState::PreCandidate { .. }));
    witness_says_in_maintenance(&mut a, now, 0b001);
    assert_eq!(a.status(now).role, RoleName::Standby);
    assert_eq!(pending(&a, now), Some((NodeId(0), ProposalReason::TargetInMaintenance)));
}

#[test]
fn a_site_asking_for_votes_unasked_stops_when_put_in_maintenance() {
    let (mut a, now, term) = campaigning_site_a();
    a.handle_message(now, NodeId(2), Message::PreVoteReply(yes(term)));
    assert!(matches!(a.role, RoleState::Candidate { handoff: false, .. }));
    witness_says_in_maintenance(&mut a, now, 0b001);
    assert_eq!(a.status(now).role, RoleName::Standby);
    assert_eq!(pending(&a, now), Some((NodeId(0), ProposalReason::TargetInMaintenance)));
}

#[test]
fn a_campaign_goes_on_when_another_site_is_put_in_maintenance() {
    let (mut a, now, _) = campaigning_site_a();
    witness_says_in_maintenance(&mut a, now, 0b010);
    assert!(matches!(a.role, RoleState::PreCandidate { .. }));
    assert_eq!(pending(&a, now), None);
}

#[test]
fn the_last_chosen_active_site_cannot_be_put_in_maintenance_after_it_went_silent() {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    b.handle_message(at(100), NodeId(0), lease_heartbeat(1, 0, PauseSetting::default()));
    let silent = at(100 + LEASE_MS + 1000);
    assert_eq!(b.status(silent).active_site, None, "site-a not heard from for over a lease");
    let refused = b.command(silent, Command::Maintenance { site: NodeId(0), on: true });
    assert_eq!(refused, Err(CommandError::MaintenanceOfActive { site: NodeId(0) }));
}

#[test]
fn a_site_giving_up_the_role_clears_its_led_record() {
    let (mut a, now, term) = active_site_a();
    assert!(a.durable().led.is_some());
    assert!(a.durable().scheduled.is_none());
    a.handle_message(now, NodeId(1), lease_heartbeat(term.0 + 1, 0, PauseSetting::default()));
    assert_eq!(a.status(now).role, RoleName::Standby);
    assert_eq!(a.durable().led, None);
}

fn cancelled(n: &mut Node) -> Vec<SwitchoverCancelReason> {
    drain(n)
        .into_iter()
        .filter_map(|a| match a {
            Action::Event(Event::SwitchoverCancelled { reason, .. }) => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_due_switchover_waits_for_an_unheard_target_a_heartbeat_at_a_time_for_one_lease() {
    let (mut a, now, _) = active_site_a();
    assert!(a.peers[1].report.is_none(), "site-b not heard from since the start");
    let t = Timers::default();
    let due = |at| Some(ScheduledSwitchover { to: NodeId(1), at });

    a.durable.scheduled = due(now);
    a.on_switchover_due(now);
    assert_eq!(cancelled(&mut a), vec![]);
    assert_eq!(a.durable().scheduled, due(now));
    assert_eq!(a.deadlines.get(Timer::SwitchoverDue), Some(now + t.heartbeat_interval));

    let almost_a_lease_ago = now - t.lease_duration + std::time::Duration::from_millis(1);
    a.durable.scheduled = due(almost_a_lease_ago);
    a.on_switchover_due(now);
    assert_eq!(cancelled(&mut a), vec![]);
    assert_eq!(a.durable().scheduled, due(almost_a_lease_ago));

    a.durable.scheduled = due(now - t.lease_duration);
    a.on_switchover_due(now);
    let why = CommandError::TargetNotEligible { target: NodeId(1), why: "no report from it yet" };
    assert_eq!(cancelled(&mut a), vec![SwitchoverCancelReason::TargetIneligible(why)]);
    assert_eq!(a.durable().scheduled, None);
}

/// Site-b, following site-a, told by it to take over: (site-b, now).
fn site_b_taking_over() -> (Node, Instant) {
    let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
    let mut b = node(members, 1);
    b.handle_message(at(100), NodeId(0), lease_heartbeat(1, 0, PauseSetting::default()));
    b.handle_message(at(200), NodeId(0), Message::TimeoutNow { term: Term(1) });
    assert!(matches!(b.role, RoleState::Candidate { handoff: true, .. }));
    (b, at(200))
}

#[test]
fn the_site_handing_over_cannot_be_put_in_maintenance_at_its_target() {
    let (mut b, now) = site_b_taking_over();
    assert_eq!(b.status(now).active_site, Some(NodeId(0)), "site-a still known as active");
    let refused = b.command(now, Command::Maintenance { site: NodeId(0), on: true });
    assert_eq!(refused, Err(CommandError::MaintenanceOfActive { site: NodeId(0) }));
}

#[test]
fn a_handoff_under_way_goes_on_when_its_target_is_put_in_maintenance() {
    let (mut b, now) = site_b_taking_over();
    witness_says_in_maintenance(&mut b, now, 0b010);
    assert!(matches!(b.role, RoleState::Candidate { handoff: true, .. }));
    assert_eq!(pending(&b, now), None);
}
