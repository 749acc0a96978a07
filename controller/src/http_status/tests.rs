//! The typed document against the `json!` builder it replaced: the old
//! builder is kept here, verbatim but for reading its inputs from
//! [`StatusInputs`], as the reference for the wire format.

use std::time::{Duration, SystemTime};

use failover_core::{
    CommandError, Epoch, FailoverMode, Instant, NodeId, PeerStatus, PendingFailover, ProposalReason, RoleName,
    SiteReport, Term,
};
use serde_json::json;

use super::*;
use crate::reports::{ActuatorReport, CertificateReport, EventRecord, HookReport, MongoReport};
use crate::snapshot::{Lease, NodeSnapshot};

/// Today's `/status` as the `json!` builder wrote it.
fn reference(inputs: &StatusInputs) -> serde_json::Value {
    let snap = inputs.published;
    let st = &snap.status;
    let now = inputs.now;
    let active_now = snap.lease.valid_at(now);
    let role = match st.role {
        RoleName::Active if !active_now => "standby",
        r => r.as_str(),
    };
    let cfg = inputs.cfg;
    let mut sites = Vec::new();
    for id in cfg.ids() {
        let http_address = inputs.http_addresses.get(id.index()).map(ToString::to_string);
        let member = cfg.member(id);
        let kind = match member.map(|m| m.kind) {
            Some(MemberKind::Witness) => "witness",
            _ => "site",
        };
        if id == st.node {
            sites.push(json!({
                "id": name(cfg, id), "kind": kind, "priority": cfg.priority(id),
                "healthy": st.local.healthy, "caught_up": st.local.caught_up,
                "reachable": true, "last_seen_ms": 0, "checks": inputs.checks,
                "in_maintenance": st.maintenance.contains(id), "http_address": http_address,
            }));
        } else if let Some(p) = st.peers.iter().find(|p| p.id == id) {
            sites.push(json!({
                "id": name(cfg, id), "kind": kind, "priority": cfg.priority(id),
                "healthy": p.report.map(|r| r.healthy), "caught_up": p.report.map(|r| r.caught_up),
                "reachable": p.reachable, "last_seen_ms": p.last_seen_ago.map(|d| d.as_millis() as u64),
                "checks": null,
                "switchover_target": p.switchover_target.is_ok(),
                "switchover_refused_because": p.switchover_target.err().map(|e| describe::refusal(cfg, &e, &describe::no_data_cause)),
                "pause_agrees": p.pause_agrees,
                "in_maintenance": st.maintenance.contains(id),
                "maintenance_agrees": p.maintenance_agrees,
                "http_address": http_address,
            }));
        }
    }
    let lease_remaining = if active_now { st.lease_remaining.map(|r| r.as_millis() as u64) } else { None };
    json!({
        "node": name(cfg, st.node),
        "role": role,
        "active_site": st.active_site.map(|a| name(cfg, a)),
        "epoch": st.epoch.map(|e| e.0),
        "last_known_epoch": snap.last_known_epoch,
        "term": st.term.0,
        "recovering": st.recovering.as_ref().map(|ids| ids.iter().map(|&id| name(cfg, id)).collect::<Vec<_>>()),
        "mode": match st.mode { FailoverMode::Automatic => "automatic", FailoverMode::Manual => "manual" },
        "paused": st.paused,
        "maintenance": cfg.ids().filter(|&id| st.maintenance.contains(id)).map(|id| {
            let note = inputs.maintenance_notes.site(id);
            json!({
                "site": name(cfg, id),
                "by": note.map(|n| name(cfg, n.by)),
                "since": note.map(|n| humantime::format_rfc3339_millis(
                    SystemTime::UNIX_EPOCH + Duration::from_millis(n.since_unix_ms)).to_string()),
                "reason": note.map(|n| n.reason.clone()),
            })
        }).collect::<Vec<_>>(),
        "pending_failover": st.pending_failover.map(|p| json!({
            "target": name(cfg, p.target),
            "reason": describe::proposal_reason(p.reason),
            "since": wall(inputs, p.since),
        })),
        "lease_remaining_ms": lease_remaining,
        "fence_ahead": if active_now { snap.actuators.iter().filter_map(|a| a.fenced_by).max() } else { None },
        "fence_unreadable": snap.actuators.iter().filter(|a| active_now && a.fence_unreadable)
            .map(|a| format!("{}: {}", a.name, a.detail)).collect::<Vec<_>>(),
        "cluster_fingerprint": inputs.fingerprint,
        "cluster_name": inputs.cluster_name,
        "peer_authentication": inputs.peer_authentication,
        "config_mismatches": inputs.mismatches,
        "timers": {
            "heartbeat_ms": cfg.timers.heartbeat_interval.as_millis() as u64,
            "lease_ms": cfg.timers.lease_duration.as_millis() as u64,
        },
        "scheduled_switchover": st.scheduled_switchover.map(|(to, at)| json!({
            "to": name(cfg, to),
            "in_ms": at.saturating_since(now).as_millis() as u64,
            "at": humantime::format_rfc3339_seconds(
                inputs.wall_now + at.saturating_since(now) + Duration::from_millis(500)
            )
            .to_string(),
        })),
        "hooks": snap.hooks,
        "actuators": snap.actuators,
        "mongodb": snap.mongodb,
        "sites": sites,
        "events": snap.events.iter().rev().take(20).collect::<Vec<_>>(),
        "reload": snap.reload,
        "certificates": snap.certificates.iter().map(|c| json!({
            "certificate": c.certificate,
            "key": c.key,
            "file": c.file,
            "expires_at": humantime::format_rfc3339_millis(
                SystemTime::UNIX_EPOCH + Duration::from_secs(c.not_after_unix as u64)).to_string(),
            "expires_in_s": c.not_after_unix - 1_790_000_000,
            "warning": crate::cert_expiry::warning(c, inputs.wall_now),
        })).collect::<Vec<_>>(),
    })
}

/// Site `b` in maintenance, put there by `a` with a reason.
fn notes() -> Notes {
    let note = crate::maintenance_notes::SiteNote {
        site: NodeId(1),
        by: NodeId(0),
        reason: "kernel update".into(),
        since_unix_ms: 1_790_000_000_123,
    };
    Notes { version: 3, by: 0, sites: vec![note] }
}

/// A published state: the test cluster's site `a`, changed by `change`.
fn published(change: impl FnOnce(&mut Published)) -> Published {
    let snapshot = NodeSnapshot::new(crate::test_node::node().status(Instant::from_millis(0)));
    let mut published = snapshot.read(Clone::clone);
    change(&mut published);
    published
}

/// Compares the typed document with the reference, as JSON text (so the
/// key order counts too), and checks it reads back as itself.
fn assert_same(published: &Published, checks: Vec<CheckState>, mismatches: Vec<Mismatch>) {
    let cfg = crate::test_node::cluster();
    let addresses: Vec<HostPort> = vec!["127.0.0.1:8080".parse().unwrap(), "localhost:8081".parse().unwrap()];
    let unresolved = Unresolved::default();
    let inputs = |checks: Vec<CheckState>, mismatches: Vec<Mismatch>| StatusInputs {
        cfg: &cfg,
        http_addresses: &addresses,
        unresolved: &unresolved,
        published,
        checks,
        fingerprint: "f1ngerprint",
        cluster_name: "prod",
        mismatches,
        peer_authentication: "mutual_tls",
        now: Instant::from_millis(50_000),
        wall_now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
        maintenance_notes: notes(),
    };
    let want = reference(&inputs(checks.clone(), mismatches.clone()));
    let doc = build(inputs(checks, mismatches));
    let got = serde_json::to_value(&doc).unwrap();
    assert_eq!(serde_json::to_string_pretty(&got).unwrap(), serde_json::to_string_pretty(&want).unwrap());
    let back: StatusDoc = serde_json::from_value(got).unwrap();
    assert_eq!(back, doc);
    // Only a certificate with fewer than 30 days left carries a warning.
    let warned: Vec<&str> = doc.certificates.iter().filter(|c| c.warning.is_some()).map(|c| c.file.as_str()).collect();
    let soon = published.certificates.iter().filter(|c| c.not_after_unix < 1_790_000_000 + 30 * 86_400);
    assert_eq!(warned, soon.map(|c| c.file.as_str()).collect::<Vec<_>>());
}

#[test]
fn a_fresh_node_is_the_same_document() {
    assert_same(&published(|_| {}), Vec::new(), Vec::new());
}

#[test]
fn an_active_node_with_reports_is_the_same_document() {
    let p = published(|p| {
        p.status.role = RoleName::Active;
        p.status.active_site = Some(NodeId(0));
        p.status.epoch = Some(Epoch(7));
        p.status.term = Term(9);
        p.status.lease_remaining = Some(Duration::from_millis(1500));
        p.status.scheduled_switchover = Some((NodeId(1), Instant::from_millis(62_250)));
        p.lease = Lease::until(Some(Instant::from_millis(51_500)));
        p.last_known_epoch = Some(7);
        p.hooks = vec![HookReport { hook: "post_promote".into(), epoch: 7, ok: true, detail: "exit 0".into() }];
        let mut dns = ActuatorReport::idle("dns-1", "dns", crate::actuation_mode::ActuationMode::Act);
        dns.fenced_by = Some(9);
        dns.last_converged_at = Some("2026-11-27T00:00:00.000Z".into());
        let mut haproxy = ActuatorReport::idle("lb", "haproxy", crate::actuation_mode::ActuationMode::Act);
        haproxy.fence_unreadable = true;
        haproxy.detail = "fenced: HAProxy 127.0.0.1:9999 variable proc.failover_epoch holds ...".into();
        p.actuators =
            vec![dns, haproxy, ActuatorReport::idle("hook", "webhook", crate::actuation_mode::ActuationMode::Act)];
        p.mongodb = Some(MongoReport { state_store: "embedded".into(), ..MongoReport::default() });
        p.events = (0..25)
            .map(|i| EventRecord {
                at: format!("t{i}"),
                event: format!("e{i}"),
                node: "site-a".into(),
                seq: i,
                at_unix_ms: i,
                admin: None,
            })
            .collect();
        let certificate = |certificate, key, file: &str, days: i64| CertificateReport {
            certificate,
            key,
            file: file.into(),
            not_after_unix: 1_790_000_000 + days * 86_400,
        };
        p.certificates = vec![
            certificate("peer", "tls.cert_file", "/tls/a.pem", 10),
            certificate("ca", "tls.ca_file", "/tls/ca.pem", 3000),
        ];
    });
    let checks =
        vec![CheckState { name: "http".into(), healthy: true, last: "ok".into(), joining: false, generation: 0 }];
    assert_same(&p, checks, Vec::new());
}

#[test]
fn a_standby_with_peers_and_a_pending_failover_is_the_same_document() {
    let peer = |switchover_target| PeerStatus {
        id: NodeId(1),
        reachable: false,
        last_seen_ago: Some(Duration::from_millis(2300)),
        report: Some(SiteReport { healthy: true, caught_up: false, sees_quorum: true }),
        switchover_target,
        pause_agrees: false,
        maintenance_agrees: true,
    };
    for verdict in [Ok(()), Err(CommandError::NotElectable(NodeId(1)))] {
        let p = published(|p| {
            p.status.mode = FailoverMode::Manual;
            p.status.paused = true;
            p.status.maintenance = failover_core::MaintenanceSetting { version: 3, by: 0, sites: 0b10 };
            p.status.active_site = Some(NodeId(1));
            p.status.pending_failover = Some(PendingFailover {
                target: NodeId(0),
                reason: ProposalReason::TargetLagging,
                since: Instant::from_millis(40_000),
            });
            p.status.peers = vec![peer(verdict)];
            // A lease that ended: shown as standby, without lease or alarm.
            p.status.role = RoleName::Active;
            p.lease = Lease::until(Some(Instant::from_millis(49_999)));
        });
        let mismatches = vec![
            Mismatch { peer: "w".into(), theirs: String::new(), cluster: String::new(), refused: false },
            Mismatch { peer: "b".into(), theirs: "f1ngerprint".into(), cluster: "staging".into(), refused: true },
        ];
        assert_same(&p, Vec::new(), mismatches);
    }
}

/// The witness `w`, never heard from.
fn unheard_peer() -> PeerStatus {
    PeerStatus {
        id: NodeId(1),
        reachable: false,
        last_seen_ago: None,
        report: None,
        switchover_target: Ok(()),
        pause_agrees: true,
        maintenance_agrees: false,
    }
}

#[test]
fn an_unheard_peer_has_unknown_health() {
    let p = published(|p| p.status.peers = vec![unheard_peer()]);
    assert_same(&p, Vec::new(), Vec::new());
}

#[test]
fn a_peer_whose_address_does_not_resolve_says_so_and_the_node_itself_never_does() {
    let cfg = crate::test_node::cluster();
    let p = published(|p| p.status.peers = vec![unheard_peer()]);
    let unresolved = Unresolved::default();
    let failure = crate::host_port::Unresolvable {
        address: "w.invalid:7000".parse().expect("address"),
        detail: "Name or service not known".into(),
    };
    for member in ["a", "w"] {
        unresolved.record(member, Err(&failure));
    }
    let doc = build(StatusInputs {
        cfg: &cfg,
        http_addresses: &[],
        unresolved: &unresolved,
        published: &p,
        checks: Vec::new(),
        fingerprint: "f1ngerprint",
        cluster_name: "prod",
        mismatches: Vec::new(),
        peer_authentication: "none",
        now: Instant::from_millis(0),
        wall_now: SystemTime::UNIX_EPOCH,
        maintenance_notes: Notes::default(),
    });
    let problem = |id: &str| doc.sites.iter().find(|s| s.id == id).map(|s| s.address_problem.clone());
    let shown = "peer-address w.invalid:7000 does not resolve: Name or service not known";
    assert_eq!(problem("w"), Some(Some(shown.to_owned())));
    assert_eq!(problem("a"), Some(None), "the node's own entry");
    let json = serde_json::to_value(&doc).expect("json");
    assert_eq!(json["sites"][1]["address_problem"], shown);
    assert!(json["sites"][0].get("address_problem").is_none(), "absent when there is none: {json}");
}

/// The schedule that took the status page down: 9999-12-31T23:59:59.6Z,
/// which rounds to the nearest second into the year 10000. The document is
/// still built, and says the time cannot be shown; so for the ends of the
/// protocol clock under any wall clock.
#[test]
fn a_time_no_date_can_show_still_builds_the_document() {
    let cfg = crate::test_node::cluster();
    let last = SystemTime::UNIX_EPOCH + Duration::from_secs(crate::clock::LAST_SHOWN_SECS);
    let now = Instant::from_millis(50_000);
    let edges = [0, 1, 49_999, 50_000, 60_599, 60_600, i64::MAX as u64, u64::MAX];
    let walls = [SystemTime::UNIX_EPOCH, last - Duration::from_secs(10), last + Duration::from_secs(1)];
    for wall_now in walls {
        for at in edges.map(Instant::from_millis) {
            let p = published(|p| {
                p.status.scheduled_switchover = Some((NodeId(1), at));
                p.status.pending_failover =
                    Some(PendingFailover { target: NodeId(1), reason: ProposalReason::ManualMode, since: at });
            });
            let inputs = StatusInputs {
                cfg: &cfg,
                http_addresses: &[],
                unresolved: &Unresolved::default(),
                published: &p,
                checks: Vec::new(),
                fingerprint: "f1ngerprint",
                cluster_name: "prod",
                mismatches: Vec::new(),
                peer_authentication: "none",
                now,
                wall_now,
                maintenance_notes: Notes::default(),
            };
            let doc = build(inputs);
            let shown = doc.scheduled_switchover.map(|s| s.at).unwrap_or_default();
            let since = doc.pending_failover.map(|p| p.since).unwrap_or_default();
            for text in [&shown, &since] {
                assert!(
                    humantime::parse_rfc3339(text).is_ok() || text.starts_with("(no date: "),
                    "{wall_now:?} {at}: {text:?}"
                );
            }
        }
    }
    let p = published(|p| p.status.scheduled_switchover = Some((NodeId(1), now + Duration::from_millis(10_600))));
    let doc = build(StatusInputs {
        cfg: &cfg,
        http_addresses: &[],
        unresolved: &Unresolved::default(),
        published: &p,
        checks: Vec::new(),
        fingerprint: "f1ngerprint",
        cluster_name: "prod",
        mismatches: Vec::new(),
        peer_authentication: "none",
        now,
        wall_now: last - Duration::from_secs(10),
        maintenance_notes: Notes::default(),
    });
    let shown = doc.scheduled_switchover.map(|s| s.at).unwrap_or_default();
    assert!(shown.starts_with("(no date: ") && shown.contains("9999-12-31T23:59:59Z"), "{shown}");
}
