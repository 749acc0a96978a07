//! Builds the `/status` document ([`StatusDoc`]) from what the node has
//! published, its health checks and its view of the config's agreement,
//! with member names and times for people. It only reads what it is given:
//! it must never take a lock, call the network or judge the lease against
//! anything but the `now` it is handed.

use std::time::SystemTime;

use failover_core::{ClusterConfig, FailoverMode, Instant, MemberKind, RoleName};

use crate::agreement::Mismatch;
use crate::cert_expiry;
use crate::describe;
use crate::host_port::HostPort;
use crate::maintenance_notes::Notes;
use crate::member_name::of as name;
use crate::reports::CheckState;
use crate::snapshot::Published;
use crate::status_doc::{
    CertificateDoc, MaintenanceDoc, PendingFailoverDoc, ScheduledSwitchoverDoc, SiteDoc, StatusDoc, SwitchoverVerdict,
    TimersDoc,
};
use crate::unresolved::Unresolved;

/// How many of the newest events `/status` carries.
const EVENTS_SHOWN: usize = 20;

/// Everything the document is built from.
pub struct StatusInputs<'a> {
    /// The cluster.
    pub cfg: &'a ClusterConfig,
    /// HTTP address of every member, by id.
    pub http_addresses: &'a [HostPort],
    /// Which peers' addresses do not resolve.
    pub unresolved: &'a Unresolved,
    /// What the node published.
    pub published: &'a Published,
    /// This node's health checks.
    pub checks: Vec<CheckState>,
    /// This node's fingerprint of the shared config.
    pub fingerprint: &'a str,
    /// This node's cluster name.
    pub cluster_name: &'a str,
    /// Peers of another cluster or whose shared config differs, and peers
    /// that do not say.
    pub mismatches: Vec<Mismatch>,
    /// `mutual_tls` or `none`.
    pub peer_authentication: &'a str,
    /// The protocol clock now.
    pub now: Instant,
    /// The wall clock now (for times shown to people only).
    pub wall_now: SystemTime,
    /// Who put each site in maintenance, when and why.
    pub maintenance_notes: Notes,
}

/// `at` on the protocol clock as wall-clock text (RFC 3339, milliseconds).
fn wall(inputs: &StatusInputs, at: Instant) -> String {
    crate::clock::wall_from(at, inputs.now, inputs.wall_now)
}

/// The `/status` document.
pub fn build(inputs: StatusInputs) -> StatusDoc {
    let (cfg, published, now) = (inputs.cfg, inputs.published, inputs.now);
    let st = &published.status;
    let active_now = published.lease.valid_at(now);
    let role = match st.role {
        RoleName::Active if !active_now => "standby",
        r => r.as_str(),
    };
    let lease_remaining_ms = if active_now { st.lease_remaining.map(|r| r.as_millis() as u64) } else { None };
    let fence_ahead = if active_now { published.actuators.iter().filter_map(|a| a.fenced_by).max() } else { None };
    let fence_unreadable = published
        .actuators
        .iter()
        .filter(|a| active_now && a.fence_unreadable)
        .map(|a| format!("{}: {}", a.name, a.detail))
        .collect();
    let scheduled_switchover = st.scheduled_switchover.map(|(to, at)| ScheduledSwitchoverDoc {
        to: name(cfg, to),
        in_ms: at.saturating_since(now).as_millis() as u64,
        // To the nearest second: the operator's time comes back as given.
        // Total: a time no date can show comes back as a text saying so.
        at: crate::clock::wall_seconds_from(at, now, inputs.wall_now),
    });
    StatusDoc {
        node: name(cfg, st.node),
        role: role.to_owned(),
        active_site: st.active_site.map(|a| name(cfg, a)),
        epoch: st.epoch.map(|e| e.0),
        last_known_epoch: published.last_known_epoch,
        term: st.term.0,
        recovering: st.recovering.as_ref().map(|ids| ids.iter().map(|&id| name(cfg, id)).collect()),
        mode: match st.mode {
            FailoverMode::Automatic => "automatic",
            FailoverMode::Manual => "manual",
        }
        .to_owned(),
        paused: st.paused,
        maintenance: cfg
            .ids()
            .filter(|&s| st.maintenance.contains(s))
            .map(|s| {
                let note = inputs.maintenance_notes.site(s);
                MaintenanceDoc {
                    site: name(cfg, s),
                    by: note.map(|n| name(cfg, n.by)),
                    since: note.map(|n| crate::clock::wall_from_unix_ms(n.since_unix_ms)),
                    reason: note.map(|n| n.reason.clone()),
                }
            })
            .collect(),
        pending_failover: st.pending_failover.map(|p| PendingFailoverDoc {
            target: name(cfg, p.target),
            reason: describe::proposal(p.reason, p.target, &describe::data_cause_of(cfg, published.mongodb.as_ref())),
            since: wall(&inputs, p.since),
        }),
        lease_remaining_ms,
        fence_ahead,
        fence_unreadable,
        cluster_fingerprint: inputs.fingerprint.to_owned(),
        cluster_name: inputs.cluster_name.to_owned(),
        peer_authentication: inputs.peer_authentication.to_owned(),
        config_mismatches: inputs.mismatches.clone(),
        timers: Some(TimersDoc {
            heartbeat_ms: cfg.timers.heartbeat_interval.as_millis() as u64,
            lease_ms: cfg.timers.lease_duration.as_millis() as u64,
        }),
        scheduled_switchover,
        hooks: published.hooks.clone(),
        actuators: published.actuators.clone(),
        mongodb: published.mongodb.clone(),
        sites: sites(&inputs),
        events: published.events.iter().rev().take(EVENTS_SHOWN).cloned().collect(),
        reload: published.reload.clone(),
        certificates: published
            .certificates
            .iter()
            .map(|c| CertificateDoc {
                certificate: c.certificate.to_owned(),
                key: c.key.to_owned(),
                file: c.file.clone(),
                expires_at: cert_expiry::expires_at(c),
                expires_in_s: cert_expiry::seconds_left(c, inputs.wall_now),
                warning: cert_expiry::warning(c, inputs.wall_now),
            })
            .collect(),
    }
}

/// Every member this node can say something about, in config order.
fn sites(inputs: &StatusInputs) -> Vec<SiteDoc> {
    let (cfg, st) = (inputs.cfg, &inputs.published.status);
    let data = describe::data_cause_of(cfg, inputs.published.mongodb.as_ref());
    let mut sites = Vec::new();
    for id in cfg.ids() {
        let http_address = inputs.http_addresses.get(id.index()).map(ToString::to_string);
        let kind = match cfg.member(id).map(|m| m.kind) {
            Some(MemberKind::Witness) => "witness",
            _ => "site",
        };
        let (id_name, kind, priority) = (name(cfg, id), kind.to_owned(), cfg.priority(id));
        if id == st.node {
            sites.push(SiteDoc {
                id: id_name,
                kind,
                priority,
                healthy: Some(st.local.healthy),
                caught_up: Some(st.local.caught_up),
                reachable: true,
                last_seen_ms: Some(0),
                checks: Some(inputs.checks.clone()),
                switchover: None,
                pause_agrees: None,
                in_maintenance: st.maintenance.contains(id),
                maintenance_agrees: None,
                http_address,
                address_problem: None,
            });
        } else if let Some(p) = st.peers.iter().find(|p| p.id == id) {
            sites.push(SiteDoc {
                id: id_name,
                kind,
                priority,
                healthy: p.report.map(|r| r.healthy),
                caught_up: p.report.map(|r| r.caught_up),
                reachable: p.reachable,
                last_seen_ms: p.last_seen_ago.map(|d| d.as_millis() as u64),
                checks: None,
                switchover: Some(SwitchoverVerdict {
                    switchover_target: p.switchover_target.is_ok(),
                    switchover_refused_because: p.switchover_target.err().map(|e| describe::refusal(cfg, &e, &data)),
                }),
                pause_agrees: Some(p.pause_agrees),
                in_maintenance: st.maintenance.contains(id),
                maintenance_agrees: Some(p.maintenance_agrees),
                http_address,
                address_problem: inputs.unresolved.problem(&name(cfg, id)),
            });
        }
    }
    sites
}

#[cfg(test)]
mod tests;
