use failover_core::{FailoverMode, Member, MemberKind, NodeId, PeerStatus, SiteReport, Status, Term, Timers};

use super::*;

/// Sites `a` and `b`, and witness `w`.
fn cluster() -> ClusterConfig {
    let site = |name: &str, priority| Member { name: name.into(), kind: MemberKind::Site { priority }, votes: 1 };
    ClusterConfig {
        members: vec![site("a", 2), site("b", 1), Member::witness("w")],
        timers: Timers::default(),
        policy: Default::default(),
    }
}

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const W: NodeId = NodeId(2);

fn peer(id: NodeId, reachable: bool) -> PeerStatus {
    PeerStatus {
        id,
        reachable,
        last_seen_ago: None,
        report: None,
        switchover_target: Ok(()),
        pause_agrees: true,
        maintenance_agrees: true,
    }
}

/// Site `b`, a healthy, caught-up standby that hears site `a`, the active
/// site, and the witness: everything `/standby` and `/readyz` ask for.
fn standby_b() -> Status {
    Status {
        node: B,
        role: RoleName::Standby,
        active_site: Some(A),
        epoch: Some(failover_core::Epoch(3)),
        term: Term(3),
        mode: FailoverMode::Automatic,
        paused: false,
        maintenance: Default::default(),
        pending_failover: None,
        lease_remaining: None,
        local: SiteReport { healthy: true, caught_up: true, sees_quorum: true },
        peers: vec![peer(A, true), peer(W, true)],
        scheduled_switchover: None,
        recovering: None,
    }
}

/// Site `a`, active with its lease.
fn active_a() -> Status {
    Status { node: A, role: RoleName::Active, peers: vec![peer(B, true), peer(W, true)], ..standby_b() }
}

/// The witness, hearing both sites.
fn witness() -> Status {
    Status { node: W, role: RoleName::Witness, peers: vec![peer(A, true), peer(B, true)], ..standby_b() }
}

#[test]
fn a_healthy_caught_up_standby_that_hears_the_active_site_takes_traffic() {
    assert_eq!(standby(&cluster(), &standby_b()), Ok(()));
}

#[test]
fn each_missing_condition_is_the_reason_given() {
    let cfg = cluster();
    let with = |change: &dyn Fn(&mut Status)| {
        let mut s = standby_b();
        change(&mut s);
        standby(&cfg, &s)
    };
    assert_eq!(standby(&cfg, &witness()), Err(NotStandby::Witness));
    assert_eq!(standby(&cfg, &active_a()), Err(NotStandby::Role("active")));
    for role in [RoleName::Candidate, RoleName::Promoting, RoleName::Resuming, RoleName::HandingOff] {
        assert_eq!(with(&|s| s.role = role), Err(NotStandby::Role(role.as_str())), "{role:?}");
    }
    let in_maintenance = |s: &mut Status| s.maintenance.sites = 1 << B.index();
    assert_eq!(with(&in_maintenance), Err(NotStandby::Maintenance));
    // Another site in maintenance is not this one's concern.
    assert_eq!(with(&|s| s.maintenance.sites = 1 << W.index()), Ok(()));
    assert_eq!(with(&|s| s.local.healthy = false), Err(NotStandby::Unhealthy));
    assert_eq!(with(&|s| s.local.caught_up = false), Err(NotStandby::Lagging));
    assert_eq!(with(&|s| s.active_site = None), Err(NotStandby::NoActiveSite));
    // A status naming this site active is no standby's.
    assert_eq!(with(&|s| s.active_site = Some(B)), Err(NotStandby::NoActiveSite));
    assert_eq!(with(&|s| s.peers[0].reachable = false), Err(NotStandby::ActiveNotHeard("a".into())));
    assert_eq!(with(&|s| s.peers.retain(|p| p.id != A)), Err(NotStandby::ActiveNotHeard("a".into())));
    // The witness out of reach does not matter to a standby.
    assert_eq!(with(&|s| s.peers[1].reachable = false), Ok(()));
    // The standby need not see a majority itself: the active site's lease is its business.
    assert_eq!(with(&|s| s.local.sees_quorum = false), Ok(()));
}

#[test]
fn the_first_failing_condition_is_named_in_order() {
    let mut s = standby_b();
    s.maintenance.sites = 1 << B.index();
    s.local.healthy = false;
    s.active_site = None;
    assert_eq!(standby(&cluster(), &s), Err(NotStandby::Maintenance));
    s.maintenance = Default::default();
    assert_eq!(standby(&cluster(), &s), Err(NotStandby::Unhealthy));
}

#[test]
fn every_role_is_ready_when_it_hears_a_majority_and_knows_the_active_site() {
    let cfg = cluster();
    assert_eq!(readiness(&cfg, &standby_b(), false), Ok(()));
    assert_eq!(readiness(&cfg, &witness(), false), Ok(()));
    assert_eq!(readiness(&cfg, &active_a(), true), Ok(()));
    // A standby in maintenance, unhealthy or lagging is still ready: it
    // serves its role, which is to vote and follow.
    let mut s = standby_b();
    s.local = SiteReport { healthy: false, caught_up: false, sees_quorum: true };
    s.maintenance.sites = 1 << B.index();
    assert_eq!(readiness(&cfg, &s, false), Ok(()));
}

#[test]
fn not_ready_says_why() {
    let cfg = cluster();
    let mut recovering = standby_b();
    recovering.recovering = Some(vec![A, W]);
    let said = readiness(&cfg, &recovering, false);
    assert_eq!(said, Err(NotReady::Recovering(vec!["a".into(), "w".into()])));
    assert_eq!(
        said.err().map(|e| e.to_string()).as_deref(),
        Some("recovering a lost state: waiting to hear from a, w")
    );
    let alone = Status { local: SiteReport { sees_quorum: false, ..standby_b().local }, ..standby_b() };
    assert_eq!(readiness(&cfg, &alone, false), Err(NotReady::NoMajority));
    let lost = Status { active_site: None, ..witness() };
    assert_eq!(readiness(&cfg, &lost, false), Err(NotReady::NoActiveSite));
    assert_eq!(readiness(&cfg, &active_a(), false), Err(NotReady::LeaseEnded));
    // Another site's lease is not judged here.
    assert_eq!(readiness(&cfg, &standby_b(), true), Ok(()));
}

#[test]
fn the_reasons_read_as_documented() {
    let said: Vec<String> = [
        NotStandby::Witness,
        NotStandby::Role("candidate"),
        NotStandby::Maintenance,
        NotStandby::ActiveNotHeard("site-a".into()),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        said,
        [
            "a witness serves no traffic",
            "this site is candidate, not standby",
            "this site is in maintenance",
            "site-a, the active site, has not been heard from within one lease",
        ]
    );
}
