use failover_core::{FailoverMode, SiteReport, Term};

use super::*;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

/// Site `b` in `role`, knowing `active` as the active site.
fn b(role: RoleName, active: Option<NodeId>) -> Status {
    Status {
        node: B,
        role,
        active_site: active,
        epoch: None,
        term: Term(1),
        mode: FailoverMode::Automatic,
        paused: false,
        maintenance: Default::default(),
        pending_failover: None,
        lease_remaining: None,
        local: SiteReport { healthy: true, caught_up: true, sees_quorum: true },
        peers: Vec::new(),
        scheduled_switchover: None,
        recovering: None,
    }
}

/// The hooks due over a run of steps, without events.
fn run(steps: &[(RoleName, Option<NodeId>)]) -> Vec<Vec<Due>> {
    let mut t = Triggers::new();
    steps.iter().map(|&(role, active)| t.after_step(&b(role, active), &[])).collect()
}

const S: RoleName = RoleName::Standby;

#[test]
fn on_standby_runs_at_start_once_the_active_site_is_known_and_once_only() {
    let due = run(&[(S, None), (S, None), (S, Some(A)), (S, Some(A)), (S, Some(C)), (S, None), (S, Some(A))]);
    let standby = Due::Standby { active: A, from: None };
    assert_eq!(due, [vec![], vec![], vec![standby], vec![], vec![], vec![], vec![]]);
    // Known from the first step.
    assert_eq!(run(&[(S, Some(A))]), [vec![standby]]);
}

#[test]
fn on_standby_runs_after_each_other_role_naming_it() {
    for from in [RoleName::Active, RoleName::HandingOff, RoleName::Promoting, RoleName::Resuming, RoleName::Candidate] {
        let due = run(&[(S, Some(A)), (from, Some(A)), (from, Some(B)), (S, Some(A)), (S, Some(A))]);
        let expected = [
            vec![Due::Standby { active: A, from: None }],
            vec![],
            vec![],
            vec![Due::Standby { active: A, from: Some(from) }],
            vec![],
        ];
        assert_eq!(due, expected, "{from:?}");
    }
    // The role it came from is kept while it waits to know the active site.
    let due = run(&[(RoleName::Active, Some(B)), (S, None), (S, Some(C))]);
    assert_eq!(due, [vec![], vec![], vec![Due::Standby { active: C, from: Some(RoleName::Active) }]]);
}

#[test]
fn on_standby_never_runs_for_itself_for_another_role_or_for_a_witness() {
    // A standby that still names itself active (its own lease just ended).
    assert_eq!(run(&[(S, Some(B)), (S, Some(B))]), [vec![], vec![]]);
    assert_eq!(run(&[(S, Some(B)), (S, Some(A))]), [vec![], vec![Due::Standby { active: A, from: None }]]);
    assert_eq!(run(&[(RoleName::Candidate, Some(A)), (RoleName::Active, Some(B))]), [vec![], vec![]]);
    assert_eq!(run(&[(RoleName::Witness, Some(A)), (RoleName::Witness, Some(C))]), [vec![], vec![]]);
    // Left before it knew the active site: nothing from the earlier stint.
    let due = run(&[(S, None), (RoleName::Candidate, None), (RoleName::Active, Some(B))]);
    assert_eq!(due, [vec![], vec![], vec![]]);
}

#[test]
fn on_pending_runs_for_each_proposal_this_node_raised_in_order() {
    let mut t = Triggers::new();
    let events = [
        Event::Paused { by: A },
        Event::FailoverProposed { target: B, reason: ProposalReason::ManualMode },
        Event::FailoverProposed { target: C, reason: ProposalReason::TargetLagging },
    ];
    let due = t.after_step(&b(RoleName::Candidate, None), &events);
    let expected = [
        Due::Pending { target: B, reason: ProposalReason::ManualMode },
        Due::Pending { target: C, reason: ProposalReason::TargetLagging },
    ];
    assert_eq!(due, expected);
    assert_eq!(t.after_step(&b(RoleName::Candidate, None), &[Event::Paused { by: A }]), []);
    // With on_standby in the same step, the proposal comes first.
    let due = t.after_step(&b(S, Some(A)), &events[1..2]);
    assert_eq!(due, [expected[0], Due::Standby { active: A, from: Some(RoleName::Candidate) }]);
}

#[test]
fn on_fault_runs_only_when_passing_checks_start_failing() {
    assert_eq!(Triggers::checks(true, false), Some(Due::Fault));
    for (was, now) in [(true, true), (false, false), (false, true)] {
        assert_eq!(Triggers::checks(was, now), None, "{was} -> {now}");
    }
}
