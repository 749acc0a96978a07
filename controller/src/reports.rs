//! The reports a node publishes about itself: what each actuator, hook and
//! the MongoDB monitor last did, and the recent protocol events. They are
//! plain data, stored in [`crate::snapshot`] and shown in `/status`,
//! `/metrics` and `/history`; they serialize to exactly the JSON those
//! endpoints have always carried and deserialize back for `failoverctl`.
//!
//! This module must never reach into a component or the protocol loop: it
//! sits on the bottom floor, and components import it, never the reverse.

use serde::{Deserialize, Serialize};

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

/// One recorded protocol event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Wall-clock time, for people (RFC 3339).
    pub at: String,
    /// The event, as text.
    pub event: String,
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
}

impl ActuatorState {
    /// Every state, for metrics.
    pub const ALL: [ActuatorState; 4] =
        [ActuatorState::Idle, ActuatorState::Pending, ActuatorState::Converged, ActuatorState::Failed];

    /// Its name in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActuatorState::Idle => "idle",
            ActuatorState::Pending => "pending",
            ActuatorState::Converged => "converged",
            ActuatorState::Failed => "failed",
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
}

impl ActuatorReport {
    /// The report of an actuator that has not been asked to do anything.
    pub fn idle(name: &str, kind: &str) -> Self {
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
