//! What the replica set looks like, from `replSetGetStatus` and
//! `replSetGetConfig`: each member's site, state, health, lag and settings,
//! the primary, and the shape of the set. Pure functions over the two
//! documents, so every rule here is unit-tested without a server.
//!
//! A server without `replSetGetConfig` still gives a view from the status
//! alone: states, health, lag and the primary are known; priorities and
//! votes are not (shown as none), and the set's shape and write majority
//! are worked out as if every member had one vote.

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::bson::{Bson, Document};
use serde::{Deserialize, Serialize};

use super::number;

/// One member as seen now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// `host:port` as in the replica set config.
    pub host: String,
    /// The site it belongs to (`[mongodb.members]`), if mapped.
    pub site: Option<String>,
    /// MongoDB's `stateStr`: PRIMARY, SECONDARY, ARBITER, ...
    pub state: String,
    /// MongoDB's `health`.
    pub healthy: bool,
    /// Holds no data.
    pub arbiter: bool,
    /// Its `priority` in the config (none without the config).
    pub priority: Option<f64>,
    /// Its `votes` in the config (none without the config).
    pub votes: Option<i64>,
    /// Milliseconds its applied optime is behind the reference optime
    /// (the primary's, or the newest one known); none for arbiters and
    /// unreachable members.
    pub lag_ms: Option<u64>,
}

impl MemberView {
    /// A data member that is up and replicating (or primary).
    pub fn is_usable_data_member(&self) -> bool {
        !self.arbiter && self.healthy && matches!(self.state.as_str(), "PRIMARY" | "SECONDARY")
    }

    /// Whether it votes (every member does when the config is unknown).
    pub fn votes_now(&self) -> bool {
        self.votes.is_none_or(|v| v > 0)
    }
}

/// The replica set as seen now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSetView {
    /// The set's name.
    pub set: String,
    /// Config `version` (none when the server gave no config).
    pub config_version: Option<i64>,
    /// Host of the primary, if there is one.
    pub primary: Option<String>,
    /// Site of the primary, if it is mapped.
    pub primary_site: Option<String>,
    /// Shape by votes: `P` and one `S` per other voting data member, one
    /// `A` per voting arbiter (`PSS`, `PSA`, ...).
    pub shape: String,
    /// Losing one voting data member stops `w: "majority"` writes (as in
    /// a primary-secondary-arbiter set).
    pub majority_needs_every_data_member: bool,
    /// `w: "majority"` writes can be acknowledged now.
    pub majority_writes_available: bool,
    /// Every member, in config order.
    pub members: Vec<MemberView>,
    /// Hosts of `[[mongodb.members]]` that the set does not have (a typo,
    /// or a name other than the set's own), with their sites.
    #[serde(default)]
    pub configured_not_in_set: BTreeMap<String, String>,
    /// The optime lag is measured against (wall-clock ms).
    #[serde(skip)]
    pub reference_optime_ms: Option<i64>,
}

/// Why a view could not be built from the server's answers.
#[derive(Debug, thiserror::Error)]
#[error("unusable replica set status: {0}")]
pub struct ViewError(pub String);

fn member_docs<'a>(doc: &'a Document, key: &str) -> Result<Vec<&'a Document>, ViewError> {
    let list = doc.get_array("members").map_err(|_| ViewError(format!("{key} has no members array")))?;
    list.iter()
        .map(|m| m.as_document().ok_or_else(|| ViewError(format!("{key}: a member is not a document"))))
        .collect()
}

/// Builds the view. `sites` maps hosts to site names; `last_reference` is
/// the reference optime of the previous view, so that lag stays measured
/// against the lost primary's last known position while there is none.
/// Without `config` (a server that does not implement `replSetGetConfig`)
/// the view comes from the status alone.
pub fn build(
    status: &Document,
    config: Option<&Document>,
    sites: &BTreeMap<String, String>,
    last_reference: Option<i64>,
) -> Result<ReplicaSetView, ViewError> {
    let set = match config {
        Some(c) => c.get_str("_id").map_err(|_| ViewError("config has no _id".into()))?,
        None => status.get_str("set").map_err(|_| ViewError("status has no set name".into()))?,
    }
    .to_owned();
    let settings: Option<BTreeMap<&str, &Document>> = match config {
        Some(c) => {
            Some(member_docs(c, "config")?.into_iter().filter_map(|m| m.get_str("host").ok().map(|h| (h, m))).collect())
        }
        None => None,
    };
    let mut members = Vec::new();
    for m in member_docs(status, "status")? {
        let host = m.get_str("name").map_err(|_| ViewError("a status member has no name".into()))?;
        let setting = match &settings {
            Some(s) => match s.get(host) {
                Some(setting) => Some(*setting),
                None => return Err(ViewError(format!("{host} is in the status but not in the config"))),
            },
            None => None,
        };
        let arbiter = match setting {
            Some(s) => s.get_bool("arbiterOnly").unwrap_or(false),
            None => m.get_str("stateStr") == Ok("ARBITER"),
        };
        let healthy = number(m, "health", 0.0) >= 1.0;
        let optime = match m.get("optimeDate") {
            Some(Bson::DateTime(d)) if healthy && !arbiter && d.timestamp_millis() > 0 => Some(d.timestamp_millis()),
            _ => None,
        };
        let state = m.get_str("stateStr").unwrap_or("UNKNOWN").to_owned();
        members.push((
            MemberView {
                host: host.to_owned(),
                site: sites.get(host).cloned(),
                state,
                healthy,
                arbiter,
                priority: setting.map(|s| if arbiter { 0.0 } else { number(s, "priority", 1.0) }),
                votes: setting.map(|s| number(s, "votes", 1.0) as i64),
                lag_ms: None,
            },
            optime,
        ));
    }
    let primary_optime = members.iter().find(|(m, _)| m.state == "PRIMARY").and_then(|(_, o)| *o);
    let newest = members.iter().filter_map(|(_, o)| *o).max();
    let reference = primary_optime.or_else(|| newest.max(last_reference));
    let out: Vec<MemberView> = members
        .into_iter()
        .map(|(m, optime)| MemberView {
            lag_ms: optime.zip(reference).map(|(o, r)| u64::try_from(r - o).unwrap_or(0)),
            ..m
        })
        .collect();
    let primary = out.iter().find(|m| m.state == "PRIMARY");
    let voting_data = out.iter().filter(|m| !m.arbiter && m.votes_now()).count();
    let voting_arbiters = out.iter().filter(|m| m.arbiter && m.votes_now()).count();
    let votes: i64 = out.iter().map(|m| m.votes.unwrap_or(1)).sum();
    // MongoDB: the write majority is the lesser of a majority of all votes
    // and the number of voting data members.
    let write_majority = usize::try_from(votes / 2 + 1).unwrap_or(usize::MAX).min(voting_data);
    let voting_data_up = out.iter().filter(|m| !m.arbiter && m.votes_now() && m.is_usable_data_member()).count();
    let configured_not_in_set = sites
        .iter()
        .filter(|(host, _)| !out.iter().any(|m| &m.host == *host))
        .map(|(h, s)| (h.clone(), s.clone()))
        .collect();
    Ok(ReplicaSetView {
        set,
        configured_not_in_set,
        config_version: config.map(|c| number(c, "version", 0.0) as i64),
        primary: primary.map(|m| m.host.clone()),
        primary_site: primary.and_then(|m| m.site.clone()),
        shape: format!("P{}{}", "S".repeat(voting_data.saturating_sub(1)), "A".repeat(voting_arbiters)),
        majority_needs_every_data_member: voting_data > 1 && voting_data - 1 < write_majority,
        majority_writes_available: primary.is_some() && voting_data_up >= write_majority,
        reference_optime_ms: reference,
        members: out,
    })
}

impl ReplicaSetView {
    /// Each configured member the set does not have (of `site` only, if
    /// given), in words that name the hosts the set has, as
    /// `rs.status().members[].name` gives them.
    pub fn configured_not_in_set(&self, site: Option<&str>) -> Vec<String> {
        let has: Vec<&str> = self.members.iter().map(|m| m.host.as_str()).collect();
        self.configured_not_in_set
            .iter()
            .filter(|(_, s)| site.is_none_or(|site| site == *s))
            .map(|(host, s)| {
                format!("configured member {host} of {s} is not in the set (the set has {})", has.join(", "))
            })
            .collect()
    }

    /// Rule 5 for data: `site` may take over automatically only if one of
    /// its data members is up and lags at most `max_lag`. `Err` says why
    /// not, for status.
    pub fn site_caught_up(&self, site: &str, max_lag: Duration) -> Result<(), String> {
        let mine: Vec<&MemberView> = self.members.iter().filter(|m| m.site.as_deref() == Some(site)).collect();
        if mine.iter().all(|m| m.arbiter) {
            let why = format!("no data member of the replica set is mapped to {site}");
            let typos = self.configured_not_in_set(Some(site));
            return Err(if typos.is_empty() { why } else { format!("{why}: {}", typos.join("; ")) });
        }
        let usable: Vec<&&MemberView> = mine.iter().filter(|m| m.is_usable_data_member()).collect();
        if usable.is_empty() {
            return Err(format!("no data member of {site} is up and replicating"));
        }
        let best = usable.iter().filter_map(|m| m.lag_ms).min();
        match best {
            Some(lag) if u128::from(lag) <= max_lag.as_millis() => Ok(()),
            Some(lag) => Err(format!(
                "{site}'s data lags {:.1} s behind the primary (max_lag_on_failover {})",
                lag as f64 / 1000.0,
                humantime::format_duration(max_lag)
            )),
            None => Err(format!("the lag of {site}'s data members is unknown")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, DateTime};

    fn config(arbiter: bool) -> Document {
        doc! { "_id": "rs0", "version": 4, "members": [
            { "_id": 0, "host": "a:27017", "priority": 10.0, "votes": 1 },
            { "_id": 1, "host": "b:27017", "priority": 1.0, "votes": 1 },
            { "_id": 2, "host": "c:27017", "arbiterOnly": arbiter, "priority": if arbiter { 0.0 } else { 1.0 }, "votes": 1 },
        ] }
    }

    fn member(host: &str, state: &str, health: f64, optime_ms: i64) -> Document {
        doc! { "name": host, "stateStr": state, "health": health, "optimeDate": DateTime::from_millis(optime_ms) }
    }

    fn sites() -> BTreeMap<String, String> {
        [("a:27017", "site-a"), ("b:27017", "site-b"), ("c:27017", "witness")]
            .into_iter()
            .map(|(h, s)| (h.to_owned(), s.to_owned()))
            .collect()
    }

    #[test]
    fn lag_is_measured_against_the_primary_and_gates_the_site() {
        let status = doc! { "members": [
            member("a:27017", "PRIMARY", 1.0, 100_000),
            member("b:27017", "SECONDARY", 1.0, 88_000),
            member("c:27017", "SECONDARY", 1.0, 99_500),
        ] };
        let v = build(&status, Some(&config(false)), &sites(), None).unwrap();
        assert_eq!((v.primary.as_deref(), v.primary_site.as_deref()), (Some("a:27017"), Some("site-a")));
        assert_eq!(v.members[1].lag_ms, Some(12_000));
        assert_eq!(v.shape, "PSS");
        assert!(!v.majority_needs_every_data_member);
        assert!(v.site_caught_up("site-a", Duration::from_secs(10)).is_ok());
        let why = v.site_caught_up("site-b", Duration::from_secs(10)).unwrap_err();
        assert!(why.contains("12.0 s"), "{why}");
        assert!(v.site_caught_up("site-b", Duration::from_secs(15)).is_ok());
    }

    /// A `[[mongodb.members]]` host the set does not have is named, with
    /// the hosts the set does have, both in the list `/status` shows and in
    /// the reason the site is not caught up.
    #[test]
    fn a_configured_member_the_set_lacks_is_named_with_the_hosts_it_has() {
        let status = doc! { "set": "rs0", "members": [
            member("a:27017", "PRIMARY", 1.0, 100_000),
            member("b:27017", "SECONDARY", 1.0, 100_000),
            member("c:27017", "SECONDARY", 1.0, 100_000),
        ] };
        let mut mapped = sites();
        mapped.remove("b:27017");
        mapped.insert("b.example:27017".into(), "site-b".into());
        let v = build(&status, None, &mapped, None).unwrap();
        let expected = "configured member b.example:27017 of site-b is not in the set (the set has a:27017, b:27017, \
                        c:27017)";
        assert_eq!(v.configured_not_in_set(None), vec![expected.to_owned()]);
        assert!(v.configured_not_in_set(Some("site-a")).is_empty());
        let why = v.site_caught_up("site-b", Duration::from_secs(10)).unwrap_err();
        assert_eq!(why, format!("no data member of the replica set is mapped to site-b: {expected}"));
        let unmapped = build(&status, None, &sites().into_iter().filter(|(_, s)| s != "site-b").collect(), None);
        let why = unmapped.unwrap().site_caught_up("site-b", Duration::from_secs(10)).unwrap_err();
        assert_eq!(why, "no data member of the replica set is mapped to site-b");
        assert!(v.site_caught_up("site-a", Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn without_a_primary_lag_stays_measured_against_the_last_known_primary() {
        let status = doc! { "members": [
            member("a:27017", "(not reachable/healthy)", 0.0, 0),
            member("b:27017", "SECONDARY", 1.0, 88_000),
            member("c:27017", "ARBITER", 1.0, 0),
        ] };
        let v = build(&status, Some(&config(true)), &sites(), Some(100_000)).unwrap();
        assert_eq!(v.primary, None);
        assert_eq!(v.members[1].lag_ms, Some(12_000));
        assert_eq!(v.members[0].lag_ms, None);
        assert_eq!(v.shape, "PSA");
        assert!(v.majority_needs_every_data_member);
        assert!(!v.majority_writes_available);
        assert!(v.site_caught_up("site-a", Duration::from_secs(10)).unwrap_err().contains("up and replicating"));
        assert!(v.site_caught_up("witness", Duration::from_secs(10)).unwrap_err().contains("no data member"));
    }

    #[test]
    fn a_psa_set_with_the_lost_member_at_votes_zero_can_write_majority_again() {
        let mut cfg = config(true);
        let members = cfg.get_array_mut("members").unwrap();
        let a = members[0].as_document_mut().unwrap();
        a.insert("votes", 0);
        a.insert("priority", 0.0);
        let status = doc! { "members": [
            member("a:27017", "(not reachable/healthy)", 0.0, 0),
            member("b:27017", "PRIMARY", 1.0, 100_000),
            member("c:27017", "ARBITER", 1.0, 0),
        ] };
        let v = build(&status, Some(&cfg), &sites(), None).unwrap();
        assert_eq!(v.shape, "PA");
        assert!(v.majority_writes_available);
    }

    #[test]
    fn a_status_member_missing_from_the_config_is_an_error() {
        let status = doc! { "members": [ member("z:1", "PRIMARY", 1.0, 1) ] };
        let err = build(&status, Some(&config(false)), &sites(), None).unwrap_err();
        assert!(err.to_string().contains("z:1"), "{err}");
    }

    #[test]
    fn without_the_config_the_status_alone_gives_states_lag_and_the_primary() {
        let mut status = doc! { "set": "one", "members": [
            member("a:27017", "PRIMARY", 1.0, 100_000),
            member("b:27017", "SECONDARY", 1.0, 97_000),
            member("c:27017", "ARBITER", 1.0, 0),
        ] };
        let v = build(&status, None, &sites(), None).unwrap();
        assert_eq!((v.set.as_str(), v.config_version, v.primary_site.as_deref()), ("one", None, Some("site-a")));
        assert_eq!(v.members[1].lag_ms, Some(3_000));
        assert!(v.members[2].arbiter);
        assert!(v.members.iter().all(|m| m.priority.is_none() && m.votes.is_none()));
        assert_eq!(v.shape, "PSA");
        assert!(v.site_caught_up("site-b", Duration::from_secs(10)).is_ok());
        status.remove("set");
        assert!(build(&status, None, &sites(), None).unwrap_err().to_string().contains("set name"));
    }
}
