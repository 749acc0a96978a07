//! The `/status` document as a type: what a node says about itself and the
//! cluster. The node serializes it; `failoverctl` and the test harness
//! deserialize it, so a renamed or retyped field is a compile error on
//! both sides rather than a silent `-`. Field order, names, nesting and the
//! choice between `null` and an absent key are the wire format and must
//! stay as they are (the key order is the order of the fields here). A key
//! missing from an older node's answer reads as none or empty.
//!
//! It only describes the document: it must never read the node's state
//! (`crate::http_status` builds it) nor decide anything from it.

use serde::{Deserialize, Serialize};

use crate::agreement::Mismatch;
use crate::reports::CheckState;
use crate::reports::{ActuatorReport, EventRecord, HookReport, MongoReport, ReloadReport};

/// The `/status` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// The answering node's name.
    pub node: String,
    /// Its role (`active` only while its lease is valid at the moment of
    /// the answer).
    pub role: String,
    /// The active site as this node knows it.
    pub active_site: Option<String>,
    /// The active site's epoch.
    pub epoch: Option<u64>,
    /// The highest epoch of an active site this node has known since it
    /// started.
    pub last_known_epoch: Option<u64>,
    /// The election term.
    pub term: u64,
    /// Set while this node recovers a lost state file: the members it has
    /// not heard from yet. It votes only once every other electable site
    /// and members with a majority of votes have told it the cluster's term
    /// and last chosen site. None otherwise (and from a build that does not
    /// know it).
    #[serde(default)]
    pub recovering: Option<Vec<String>>,
    /// `automatic` or `manual`.
    pub mode: String,
    /// Whether automatic actions are paused cluster-wide.
    pub paused: bool,
    /// The sites in maintenance, in config order, each with who put it
    /// there, when and why (empty from a build that does not know it).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceDoc>,
    /// A failover waiting for an operator's approval.
    pub pending_failover: Option<PendingFailoverDoc>,
    /// What is left of this node's lease, while it is active.
    pub lease_remaining_ms: Option<u64>,
    /// The newest epoch a target holds that this active site was not
    /// elected with (an alarm).
    pub fence_ahead: Option<u64>,
    /// While active: each actuator whose target holds a fence value this
    /// cluster never writes, with what it holds (an alarm; empty from a
    /// build that does not know it).
    #[serde(default)]
    pub fence_unreadable: Vec<String>,
    /// This node's fingerprint of the shared config.
    #[serde(default)]
    pub cluster_fingerprint: String,
    /// This node's cluster name (`cluster.name`); empty from a build that
    /// did not show it.
    #[serde(default)]
    pub cluster_name: String,
    /// `mutual_tls` or `none`.
    #[serde(default)]
    pub peer_authentication: String,
    /// Peers of another cluster, or whose shared config differs from this
    /// node's, and peers whose builds do not say.
    #[serde(default)]
    pub config_mismatches: Vec<Mismatch>,
    /// The protocol's timers (always given; none only from a node of a
    /// build that did not show them).
    pub timers: Option<TimersDoc>,
    /// A switchover scheduled on this (active) node.
    pub scheduled_switchover: Option<ScheduledSwitchoverDoc>,
    /// The last outcome of each hook.
    #[serde(default)]
    pub hooks: Vec<HookReport>,
    /// This node's actuators.
    #[serde(default)]
    pub actuators: Vec<ActuatorReport>,
    /// The MongoDB replica set, if configured.
    pub mongodb: Option<MongoReport>,
    /// Every member, in config order.
    #[serde(default)]
    pub sites: Vec<SiteDoc>,
    /// The newest events, newest first.
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// The last reload of the configuration file, if any since start.
    #[serde(default)]
    pub reload: Option<ReloadReport>,
    /// The certificate files this node uses and when each expires (empty
    /// without TLS, and from a build that does not know it).
    #[serde(default)]
    pub certificates: Vec<CertificateDoc>,
}

impl StatusDoc {
    /// The member named `name`, if the document lists it.
    pub fn site(&self, name: &str) -> Option<&SiteDoc> {
        self.sites.iter().find(|s| s.id == name)
    }
}

/// A certificate file in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateDoc {
    /// `peer`, `ca`, `http` or `http_ca`.
    pub certificate: String,
    /// The setting that names the file (`tls.cert_file`, ...).
    pub key: String,
    /// The file.
    pub file: String,
    /// When it expires (RFC 3339; the earliest end of the certificates it
    /// holds).
    pub expires_at: String,
    /// Seconds left until then (negative once it has expired).
    pub expires_in_s: i64,
    /// Set when it expires within 30 days or has expired: which
    /// certificate, which file, when, and what to do.
    pub warning: Option<String>,
}

/// A failover waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFailoverDoc {
    /// The site it would make active.
    pub target: String,
    /// Why it waits, in words.
    pub reason: String,
    /// Since when (RFC 3339).
    pub since: String,
}

/// A site in maintenance: no failover, approved failover or switchover
/// goes to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceDoc {
    /// The site.
    pub site: String,
    /// The node that carried the command out (none when its note has not
    /// reached the answering node).
    pub by: Option<String>,
    /// When (RFC 3339, that node's wall clock).
    pub since: Option<String>,
    /// The operator's reason (empty when none was given).
    pub reason: Option<String>,
}

/// The protocol's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimersDoc {
    /// Between heartbeats.
    pub heartbeat_ms: u64,
    /// A lease's length.
    pub lease_ms: u64,
}

/// A scheduled switchover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSwitchoverDoc {
    /// The site it makes active.
    pub to: String,
    /// How long until it starts.
    pub in_ms: u64,
    /// When it starts (RFC 3339, to the second).
    pub at: String,
}

/// One member as the answering node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDoc {
    /// Its name.
    pub id: String,
    /// `site` or `witness`.
    pub kind: String,
    /// Its priority (0 for a witness).
    pub priority: u16,
    /// Whether its health checks pass (unknown for a peer never heard).
    pub healthy: Option<bool>,
    /// Whether its data is caught up (unknown for a peer never heard).
    pub caught_up: Option<bool>,
    /// Whether the answering node hears it (always, for itself).
    pub reachable: bool,
    /// How long ago it was last heard (0 for itself).
    pub last_seen_ms: Option<u64>,
    /// Its health checks: the answering node's own only, `null` for peers.
    pub checks: Option<Vec<CheckState>>,
    /// For peers only: whether a switchover to it would be accepted now.
    #[serde(flatten)]
    pub switchover: Option<SwitchoverVerdict>,
    /// For peers only: whether its last heartbeat carried the answering
    /// node's pause switch (it holds the latest pause or resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_agrees: Option<bool>,
    /// Whether the site is in maintenance (as the answering node knows).
    #[serde(default)]
    pub in_maintenance: bool,
    /// For peers only: whether its last heartbeat carried the answering
    /// node's maintenance setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_agrees: Option<bool>,
    /// Its HTTP address.
    pub http_address: Option<String>,
    /// For peers only, when its peer address is a name that did not
    /// resolve the last time this node tried (`peer-address NAME:PORT does
    /// not resolve: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_problem: Option<String>,
}

/// Whether a switchover to a peer would be accepted now (absent from the
/// answering node's own entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchoverVerdict {
    /// It would.
    pub switchover_target: bool,
    /// Why not, when not.
    pub switchover_refused_because: Option<String>,
}
