//! MongoDB replica set coordination, through the official `mongodb` driver:
//! the replica set view (members, states, lag) in status and metrics, the
//! data-lag gate on automatic failover, the primary following the active
//! site, the PSA mitigation, and the optional MongoDB state store.
//!
//! Invariants enforced here:
//! - the election never waits on MongoDB: the monitor runs in its own task
//!   and hands the protocol loop only a cached verdict ("this site's data is
//!   caught up"), and every MongoDB write runs in the actuator's task with a
//!   time limit;
//! - nothing is written unless this site holds its lease at that moment,
//!   and with the MongoDB store nothing is written once the stored epoch is
//!   newer than ours (that is fencing, and the site steps down);
//! - a replica set config change touches only managed members (data members
//!   mapped to a site), only their `priority` and `votes`, and carries every
//!   other setting over unchanged ([`placement`]).

pub mod answer;
pub mod monitor;
pub mod placement;
pub mod store;
pub mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, ConnectionString, ReadPreference, SelectionCriteria};
use mongodb::Client;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::settings::{BadSetting, Choice};
use answer::CommandRefusal;
use store::StateStore;
use view::ReplicaSetView;

/// `[mongodb]`: the replica set that holds the application's data.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoSection {
    /// `act` or `observe` (default: `[actuators].actuation`, else `act`).
    #[serde(default)]
    pub actuation: Option<Choice<crate::actuation_mode::ActuationMode>>,
    /// Connection string (`mongodb://` or `mongodb+srv://`) naming the
    /// replica set; better given as `FAILOVER_MONGODB__URI` or in
    /// `uri_file` when it holds a password.
    #[serde(default)]
    pub uri: Option<String>,
    /// File holding the connection string.
    #[serde(default)]
    pub uri_file: Option<PathBuf>,
    /// Which data member belongs to which site.
    pub members: Vec<MemberMapping>,
    /// Where the claim of the active site is kept.
    #[serde(default = "default_store")]
    pub state_store: Choice<StateStoreKind>,
    /// Database of the MongoDB state store.
    #[serde(default = "default_database")]
    pub database: String,
    /// A site whose data lags more is not eligible for automatic failover.
    #[serde(with = "humantime_serde", default = "default_max_lag")]
    pub max_lag_on_failover: Duration,
    /// How often the replica set is read.
    #[serde(with = "humantime_serde", default = "default_poll")]
    pub poll_interval: Duration,
    /// Time limit of one MongoDB operation (server selection included).
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Move the primary to the active site (default true).
    #[serde(default = "yes")]
    pub primary_follows: bool,
    /// Priority of the active site's members.
    #[serde(default = "default_active_priority")]
    pub active_priority: f64,
    /// Priority of the other sites' members.
    #[serde(default = "default_standby_priority")]
    pub standby_priority: f64,
    /// How long MongoDB's own priority takeover gets before the controller
    /// steps the misplaced primary down itself.
    #[serde(with = "humantime_serde", default = "default_takeover_grace")]
    pub priority_takeover_grace: Duration,
    /// `secondaryCatchUpPeriodSecs` of a step-down.
    #[serde(with = "humantime_serde", default = "default_catch_up")]
    pub step_down_catch_up: Duration,
    /// Apply MongoDB's mitigation for a lost data member in a set where
    /// that stops majority writes (votes 0, priority 0), and undo it when
    /// the member is back.
    #[serde(default)]
    pub psa_mitigation: bool,
    /// How long a data member must be down before the mitigation.
    #[serde(with = "humantime_serde", default = "default_psa_grace")]
    pub psa_grace: Duration,
}

/// `[[mongodb.members]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberMapping {
    /// `host:port` exactly as in the replica set config.
    pub host: String,
    /// The member (site or witness) it sits beside.
    pub site: String,
}

fn default_store() -> Choice<StateStoreKind> {
    StateStoreKind::Embedded.into()
}

/// `mongodb.state_store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateStoreKind {
    /// Only in each node's state file.
    Embedded,
    /// Also in a MongoDB collection, compared and set by epoch.
    Mongodb,
}

impl StateStoreKind {
    /// Its name in the configuration and in `/status`.
    pub fn name(self) -> &'static str {
        match self {
            StateStoreKind::Embedded => "embedded",
            StateStoreKind::Mongodb => "mongodb",
        }
    }
}
fn default_database() -> String {
    "failover".into()
}
fn default_max_lag() -> Duration {
    Duration::from_secs(10)
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn yes() -> bool {
    true
}
fn default_active_priority() -> f64 {
    10.0
}
fn default_standby_priority() -> f64 {
    1.0
}
fn default_takeover_grace() -> Duration {
    Duration::from_secs(15)
}
fn default_catch_up() -> Duration {
    Duration::from_secs(10)
}
fn default_psa_grace() -> Duration {
    Duration::from_secs(30)
}

/// The checked `[mongodb]` settings and the (lazily connected) client.
#[derive(Clone)]
pub struct MongoLink {
    /// The settings.
    pub section: MongoSection,
    /// Where the claim of the active site is kept.
    pub state_store: StateStoreKind,
    /// Host → site.
    pub sites: BTreeMap<String, String>,
    uri: String,
    /// The URI and its password: hidden from any error text shown.
    secrets: Vec<String>,
    client: Arc<OnceCell<Client>>,
}

impl std::fmt::Debug for MongoLink {
    // The URI may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoLink").field("sites", &self.sites).finish_non_exhaustive()
    }
}

impl MongoLink {
    /// Checks `section` against the cluster's member names; errors name the
    /// key (relative to `mongodb.`) and what is wrong.
    pub fn build(section: &MongoSection, members: &[String]) -> Result<MongoLink, BadSetting> {
        let uri = match (&section.uri, &section.uri_file) {
            (Some(u), None) => u.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| BadSetting::new("uri_file", format!("{}: {e}", f.display())))?
                .trim()
                .to_owned(),
            _ => return Err(BadSetting::new("uri", "give exactly one of uri and uri_file")),
        };
        let parsed = ConnectionString::parse(&uri)
            .map_err(|e| BadSetting::new("uri", format!("not a MongoDB connection string: {e}")))?;
        let mut secrets = vec![uri.clone()];
        secrets.extend(parsed.credential.and_then(|c| c.password));
        let state_store = section.state_store.checked().map_err(|p| BadSetting::new("state_store", p))?;
        if section.database.is_empty() || section.database.contains(['/', '.', ' ', '$']) {
            return Err(BadSetting::new("database", format!("{:?} is not a usable database name", section.database)));
        }
        if section.members.is_empty() {
            return Err(BadSetting::new("members", "map at least one data member to a site"));
        }
        let mut sites = BTreeMap::new();
        for (i, m) in section.members.iter().enumerate() {
            if !members.contains(&m.site) {
                return Err(BadSetting::new(
                    format!("members[{i}].site"),
                    format!("{:?} is not a member of the cluster", m.site),
                ));
            }
            if !m.host.contains(':') {
                return Err(BadSetting::new(
                    format!("members[{i}].host"),
                    format!("{:?}: write host:port as in the replica set config", m.host),
                ));
            }
            if sites.insert(m.host.clone(), m.site.clone()).is_some() {
                return Err(BadSetting::new(format!("members[{i}].host"), format!("{} is mapped twice", m.host)));
            }
        }
        let p = (section.standby_priority, section.active_priority);
        if !(p.0 > 0.0 && p.0 < p.1 && p.1 <= 1000.0) {
            return Err(BadSetting::new(
                "active_priority",
                format!("need 0 < standby_priority ({}) < active_priority ({}) <= 1000", p.0, p.1),
            ));
        }
        for (key, d) in [("poll_interval", section.poll_interval), ("timeout", section.timeout)] {
            if d < Duration::from_millis(100) {
                return Err(BadSetting::new(key, "must be at least 100ms"));
            }
        }
        if section.max_lag_on_failover.is_zero() {
            return Err(BadSetting::new("max_lag_on_failover", "must be above zero"));
        }
        Ok(MongoLink { section: section.clone(), state_store, sites, uri, secrets, client: Arc::new(OnceCell::new()) })
    }

    /// `text` without the connection string or its password, for
    /// anything shown outside the daemon's log.
    pub fn scrub(&self, text: &str) -> String {
        crate::redact::scrub(text, &self.secrets)
    }

    /// The client, created on first use (resolving `mongodb+srv://` then).
    pub async fn client(&self) -> Result<Client, String> {
        let timeout = self.section.timeout;
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.uri).await.map_err(|e| describe_error(&e))?;
                options.server_selection_timeout = Some(timeout);
                options.connect_timeout = Some(timeout);
                options.heartbeat_freq = Some(self.section.poll_interval.max(Duration::from_millis(500)));
                options.app_name = Some("failover".into());
                Client::with_options(options).map_err(|e| describe_error(&e))
            })
            .await
            .cloned()
    }

    /// Runs an admin command on the primary, or, with `anywhere`, on the
    /// primary if there is one and else on any member.
    pub async fn admin(&self, command: Document, anywhere: bool) -> Result<Document, mongodb::error::Error> {
        let client = self.client().await.map_err(mongodb::error::Error::custom)?;
        let admin = client.database("admin");
        let mut run = admin.run_command(command);
        if anywhere {
            run = run.selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::PrimaryPreferred {
                options: None,
            }));
        }
        tokio::time::timeout(self.section.timeout * 2, run)
            .await
            .unwrap_or_else(|_| Err(mongodb::error::Error::custom("timed out")))
    }

    /// Reads the replica set as it is now. A server that does not
    /// implement `replSetGetConfig` still gives a view, from its status.
    pub async fn read_view(&self, last_reference: Option<i64>) -> Result<Reading, String> {
        let status = self.admin(doc! { "replSetGetStatus": 1 }, true).await.map_err(|e| describe_error(&e))?;
        let config = match self.admin(doc! { "replSetGetConfig": 1 }, true).await {
            Ok(c) => Ok(c.get_document("config").map_err(|_| "replSetGetConfig gave no config".to_owned())?.clone()),
            Err(e) => match answer::from_driver("replSetGetConfig", &e) {
                missing @ CommandRefusal::NotImplemented { .. } => Err(missing),
                _ => return Err(describe_error(&e)),
            },
        };
        let view =
            view::build(&status, config.as_ref().ok(), &self.sites, last_reference).map_err(|e| e.to_string())?;
        Ok(Reading { view, config })
    }

    /// Steps the primary down as a switchover does: `replSetStepDown` for
    /// ten seconds longer than the catch-up period (at least 1 s, sent as
    /// `secondaryCatchUpPeriodSecs`), never forced, so the primary stays
    /// unless a secondary has caught up. The old primary may not stand
    /// again for that long: long enough not to win straight back, short
    /// enough not to block a failback to it soon after. A primary that
    /// steps down may close the connection the command came on: that
    /// counts as done, and the next reading shows where the primary went.
    pub async fn step_down(&self) -> Result<(), CommandRefusal> {
        let catch_up = self.section.step_down_catch_up.as_secs().max(1);
        let freeze = i64::try_from(catch_up + 10).unwrap_or(i64::MAX);
        let catch_up = i64::try_from(catch_up).unwrap_or(i64::MAX);
        match self.admin(doc! { "replSetStepDown": freeze, "secondaryCatchUpPeriodSecs": catch_up }, false).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Io(_)) => Ok(()),
            Err(e) => Err(answer::from_driver("replSetStepDown", &e)),
        }
    }

    /// The state store these settings select.
    pub async fn store(&self) -> Result<StateStore, String> {
        if self.state_store == StateStoreKind::Mongodb {
            let client = self.client().await?;
            Ok(StateStore::Mongo(store::MongoStore::new(&client, &self.section.database, self.section.timeout)))
        } else {
            Ok(StateStore::Embedded)
        }
    }
}

/// One reading of the replica set.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The set as seen now.
    pub view: ReplicaSetView,
    /// The config document, or why the server gave none.
    pub config: Result<Document, CommandRefusal>,
}

/// A numeric field of a MongoDB document, whatever BSON number type it
/// was written as (MongoDB writes priorities as doubles, votes as ints).
pub(crate) fn number(d: &Document, key: &str, default: f64) -> f64 {
    match d.get(key) {
        Some(mongodb::bson::Bson::Int32(i)) => f64::from(*i),
        Some(mongodb::bson::Bson::Int64(i)) => *i as f64,
        Some(mongodb::bson::Bson::Double(f)) => *f,
        _ => default,
    }
}

/// A driver error in words: what failed and the server's code name.
pub fn describe_error(e: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Authentication { message, .. } => format!("authentication failed: {message}"),
        // The driver appends its whole topology (every server, with its
        // last error) to the message: the log has it; shown, the first
        // sentence says it.
        ErrorKind::ServerSelection { message, .. } => {
            format!("no suitable member reachable: {}", without_topology(message))
        }
        ErrorKind::Io(io) => format!("connection: {io}"),
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!("write concern not satisfied: {} ({}): {}", w.code_name, w.code, w.message)
        }
        ErrorKind::Write(WriteFailure::WriteError(w)) => format!("write refused ({}): {}", w.code, w.message),
        _ => e.to_string(),
    }
}

/// A server selection message without the topology the driver appends.
fn without_topology(message: &str) -> &str {
    message.split(" Topology: ").next().unwrap_or(message).trim_end_matches(['.', ',', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_selection_error_is_shown_without_the_driver_s_topology() {
        let message = "Server selection timeout: No available servers. Topology: { Type: ReplicaSetNoPrimary, Set \
                       Name: rs0, Servers: [ { Address: 127.0.0.1:27017, Type: Unknown, Error: Kind: I/O error: \
                       Connection refused (os error 111), labels: {} } ] }";
        assert_eq!(without_topology(message), "Server selection timeout: No available servers");
        assert_eq!(without_topology("no servers."), "no servers");
    }

    #[test]
    fn text_shown_never_carries_the_connection_string_or_its_password() {
        let uri = "mongodb://app:pw-9f3e@127.0.0.1:27017/?replicaSet=rs0";
        let section: MongoSection = serde_json::from_value(serde_json::json!({
            "uri": uri,
            "members": [{ "host": "127.0.0.1:27017", "site": "a" }],
        }))
        .expect("section");
        let link = MongoLink::build(&section, &["a".into()]).expect("link");
        let text = link.scrub(&format!("no suitable member reachable: {uri} (password pw-9f3e)"));
        assert!(!text.contains("pw-9f3e") && !text.contains("mongodb://"), "{text}");
        assert!(text.starts_with("no suitable member reachable: "), "{text}");
    }
}
