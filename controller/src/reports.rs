//! The reports a node publishes about itself: what each actuator, hook and
//! the MongoDB monitor last did, and the recent protocol events. They are
//! plain data, stored in [`crate::snapshot`] and shown in `/status`,
//! `/metrics` and `/history`; they serialize to exactly the JSON those
//! endpoints have always carried and deserialize back for `failoverctl`.
//!
//! This module must never reach into a component or the protocol loop: it
//! sits on the bottom floor, and components import it, never the reverse.

use serde::{Deserialize, Serialize};

use crate::actuation_mode::ActuationMode;
use crate::hooks::HookOutcome;
use crate::mongo::view::ReplicaSetView;

/// What the last reload of the configuration file did (see
/// `crate::reload`), as `/status` and `failoverctl reload` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Wall-clock time of the attempt.
    pub at: String,
    /// Whether the new file is now in effect.
    pub applied: bool,
    /// The keys whose values changed (applied, or the reason it was refused).
    pub changed: Vec<String>,
    /// Why it was refused: every problem, each naming its key.
    pub problems: Vec<String>,
    /// Reloads applied since the process started.
    pub applied_total: u64,
    /// Reloads refused since the process started.
    pub refused_total: u64,
}

/// One recorded event: a protocol event, or an admin call ([`AdminCall`]).
/// `node` and `seq` are its identity: each node numbers its own events
/// 1, 2, 3... across restarts (its history file keeps the count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Wall-clock time, for people (RFC 3339).
    pub at: String,
    /// The event, as text.
    pub event: String,
    /// The node that recorded it.
    #[serde(default)]
    pub node: String,
    /// Its number among that node's events.
    #[serde(default)]
    pub seq: u64,
    /// Wall-clock time in milliseconds since the Unix epoch: the order in
    /// which a history merged from several nodes is shown.
    #[serde(default)]
    pub at_unix_ms: u64,
    /// Who asked what, when it is an admin call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminCall>,
}

/// An admin call as the audit history keeps it, accepted or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCall {
    /// The operator whose token it carried; `unknown` without a valid one,
    /// `anonymous` on a node that needs no token.
    pub operator: String,
    /// The caller's socket address.
    pub source: String,
    /// The command (`switchover`, `pause`, `whoami`...).
    pub command: String,
    /// The site or node it named, if any.
    pub target: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// What came of it, in words.
    pub result: String,
}

/// The `/history` answer: one node's events, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDoc {
    /// The node that answered.
    #[serde(default)]
    pub node: String,
    /// Its events, oldest first.
    pub events: Vec<EventRecord>,
}

/// The operator of a call with no valid token.
pub const UNKNOWN_OPERATOR: &str = "unknown";

/// The events of several nodes' histories as one: each event once (by its
/// node and number), newest first (by wall-clock time, then node and
/// number, so equal times keep a stable order).
pub fn merge_histories(histories: impl IntoIterator<Item = Vec<EventRecord>>) -> Vec<EventRecord> {
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<EventRecord> =
        histories.into_iter().flatten().filter(|e| seen.insert((e.node.clone(), e.seq))).collect();
    all.sort_by(|a, b| (b.at_unix_ms, &b.node, b.seq).cmp(&(a.at_unix_ms, &a.node, a.seq)));
    all
}

/// Where an actuator stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActuatorState {
    /// This site is standby: the actuator does nothing.
    Idle,
    /// A pass is under way and has not converged yet.
    Pending,
    /// The last pass brought the target to the goal.
    Converged,
    /// The last pass failed; it is retried with backoff.
    Failed,
    /// Observe mode: the last pass found something to change and changed
    /// nothing (`would_change` in the report says what).
    WouldChange,
}

impl ActuatorState {
    /// Every state, for metrics.
    pub const ALL: [ActuatorState; 5] = [
        ActuatorState::Idle,
        ActuatorState::Pending,
        ActuatorState::Converged,
        ActuatorState::Failed,
        ActuatorState::WouldChange,
    ];

    /// Its name in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActuatorState::Idle => "idle",
            ActuatorState::Pending => "pending",
            ActuatorState::Converged => "converged",
            ActuatorState::Failed => "failed",
            ActuatorState::WouldChange => "would_change",
        }
    }
}

/// One actuator's state, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActuatorReport {
    /// Unique name.
    pub name: String,
    /// `dns`, `haproxy`, `webhook` or `mongodb`.
    pub kind: String,
    /// Where it stands.
    pub state: ActuatorState,
    /// `active`, `draining` or `standby`.
    pub goal: String,
    /// Epoch of the goal.
    pub epoch: Option<u64>,
    /// What happened last, or the error.
    pub detail: String,
    /// Failed passes since the last success.
    pub consecutive_failures: u32,
    /// When it last converged (RFC 3339).
    pub last_converged_at: Option<String>,
    /// How long the last converged pass took.
    pub converge_ms: Option<u64>,
    /// DNS: how long the last update took to show on every verify server.
    pub propagation_ms: Option<u64>,
    /// The epoch the target holds that refused the last pass (newer than
    /// this site's, or its own under another site's name): an alarm while
    /// this site is active, cleared by the next pass that goes through.
    pub fenced_by: Option<u64>,
    /// Whether the last pass was refused because the target holds a fence
    /// value this cluster never writes (malformed, or past 2^48; `detail`
    /// says what): an alarm while this site is active, cleared by the next
    /// pass that goes through.
    #[serde(default)]
    pub fence_unreadable: bool,
    /// `act`, or `observe`: the actuator reads its target and reports what
    /// it would change without changing it.
    #[serde(default)]
    pub actuation: ActuationMode,
    /// Observe mode: each change the last pass would have made, in words
    /// (`would update app.example.com. A 192.0.2.1 -> 192.0.2.2`); empty
    /// when it found nothing to change.
    #[serde(default)]
    pub would_change: Vec<String>,
    /// Passes that ran to an end (converged, waiting, failed or observed)
    /// since the actuator was started.
    #[serde(default)]
    pub passes: u64,
}

impl ActuatorReport {
    /// The report of an actuator that has not been asked to do anything.
    pub fn idle(name: &str, kind: &str, actuation: ActuationMode) -> Self {
        ActuatorReport {
            name: name.to_owned(),
            kind: kind.to_owned(),
            state: ActuatorState::Idle,
            goal: "standby".into(),
            epoch: None,
            detail: "standby: not touching traffic".into(),
            consecutive_failures: 0,
            last_converged_at: None,
            converge_ms: None,
            propagation_ms: None,
            fenced_by: None,
            fence_unreadable: false,
            actuation,
            would_change: Vec::new(),
            passes: 0,
        }
    }
}

/// The last outcome of one hook, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReport {
    /// `pre_promote`, `post_promote` or `on_demote`.
    pub hook: String,
    /// The epoch it ran for.
    pub epoch: u64,
    /// Whether it exited 0 within its time limit.
    pub ok: bool,
    /// Exit status, timeout or spawn error.
    pub detail: String,
}

impl From<HookOutcome> for HookReport {
    fn from(o: HookOutcome) -> Self {
        HookReport { hook: o.hook.name().to_owned(), epoch: o.epoch, ok: o.ok, detail: o.detail }
    }
}

/// What `/status` shows of MongoDB.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MongoReport {
    /// `embedded` or `mongodb`.
    pub state_store: String,
    /// The last view read, if any.
    pub view: Option<ReplicaSetView>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
    /// Why the primary is not placed (a server that lacks a command the
    /// placement needs), if so; the view, the data-lag gate and the state
    /// store keep working.
    pub placement_disabled: Option<String>,
    /// When the set was last read successfully (RFC 3339).
    pub updated_at: Option<String>,
    /// Whether this site may take over automatically as far as data goes.
    pub caught_up: bool,
    /// Why not, if not.
    pub not_caught_up_because: Option<String>,
    /// Reads that failed in a row.
    pub consecutive_failures: u32,
    /// The configured `max_lag_on_failover`, in milliseconds, that the
    /// verdicts are made against.
    #[serde(default)]
    pub max_lag_on_failover_ms: u64,
}

impl MongoReport {
    /// Why `site`'s data is not caught up in the last view read (no data
    /// member mapped to it, none up, how far behind), or `None` if it is
    /// or nothing was read.
    pub fn why_not_caught_up(&self, site: &str) -> Option<String> {
        let max_lag = std::time::Duration::from_millis(self.max_lag_on_failover_ms);
        self.view.as_ref()?.site_caught_up(site, max_lag).err()
    }
}

/// What one check looks like now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckState {
    /// Its name.
    pub name: String,
    /// Healthy after rise/fall.
    pub healthy: bool,
    /// The last run's result.
    pub last: String,
    /// Added by a reload and not yet counted in the site's verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
    /// Which task reports it (a reload starts a new one); internal, not
    /// part of the document (it reads back as 0).
    #[serde(skip)]
    pub generation: u64,
}

/// A certificate file this node uses, and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateReport {
    /// Which one: `peer`, `ca`, `http` or `http_ca`.
    pub certificate: &'static str,
    /// The setting that names the file (`tls.cert_file`, ...).
    pub key: &'static str,
    /// The file.
    pub file: String,
    /// The earliest end of validity of the certificates the file holds, in
    /// seconds since the Unix epoch.
    pub not_after_unix: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(node: &str, seq: u64, at_unix_ms: u64) -> EventRecord {
        EventRecord {
            at: String::new(),
            event: format!("{node}#{seq}"),
            node: node.into(),
            seq,
            at_unix_ms,
            admin: None,
        }
    }

    fn ids(events: &[EventRecord]) -> Vec<String> {
        events.iter().map(|e| e.event.clone()).collect()
    }

    #[test]
    fn histories_merge_newest_first_with_each_event_once() {
        let a = vec![event("site-a", 1, 100), event("site-a", 2, 300), event("site-a", 3, 500)];
        let b = vec![event("site-b", 1, 200), event("site-b", 2, 500)];
        // The same node read twice (two endpoints) adds nothing.
        let merged = merge_histories([a.clone(), b, a]);
        assert_eq!(ids(&merged), ["site-b#2", "site-a#3", "site-a#2", "site-b#1", "site-a#1"]);
    }

    #[test]
    fn the_same_number_on_two_nodes_is_two_events_and_equal_times_keep_a_stable_order() {
        let merged = merge_histories([vec![event("w", 7, 10)], vec![event("site-a", 7, 10), event("site-a", 6, 10)]]);
        assert_eq!(ids(&merged), ["w#7", "site-a#7", "site-a#6"]);
        assert!(merge_histories(Vec::<Vec<EventRecord>>::new()).is_empty());
    }
}
