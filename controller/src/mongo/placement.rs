//! Where the primary should be, as replica set config changes: pure
//! functions from the current config and view to the next config to
//! install, so the rules are unit-tested without a server.
//!
//! Only *managed* members are ever touched: data members mapped to a site
//! in `[mongodb.members]`. Of those, only `priority` (and, with the PSA
//! mitigation, `votes`) change; every other field of every member, and
//! every unmapped member, is carried over as it was. Each call changes at
//! most one member's votes, as MongoDB requires of a non-force reconfig.

use std::time::Duration;

use mongodb::bson::{Bson, Document};

use super::number;
use super::view::ReplicaSetView;

/// The priorities the controller gives managed members.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Priorities {
    /// Members of the site that should hold the primary.
    pub active: f64,
    /// Every other managed member that votes.
    pub standby: f64,
}

/// What a config change is for, in words for status and logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The config to install (version already raised).
    pub config: Document,
    /// What changes.
    pub detail: String,
}

/// A lost member to take out of the vote (PSA mitigation), or a returned
/// one to give its vote back: at most one per change.
#[derive(Clone, Debug, PartialEq)]
pub enum VoteChange {
    /// `host` is down: votes 0, priority 0.
    Remove(String),
    /// `host` is back and caught up: votes 1.
    Restore(String),
}

/// Picks the PSA mitigation step, if any: with `enabled`, a managed voting
/// data member down for at least `grace` (per `down_for`) in a set where
/// one lost data member stops majority writes is removed from the vote; a
/// managed member at votes 0 that is up and within `max_lag` gets its vote
/// back once the set no longer depends on it.
pub fn vote_change(
    view: &ReplicaSetView,
    enabled: bool,
    grace: Duration,
    max_lag: Duration,
    down_for: impl Fn(&str) -> Option<Duration>,
) -> Option<VoteChange> {
    if !enabled {
        return None;
    }
    let managed = view.members.iter().filter(|m| m.site.is_some() && !m.arbiter);
    for m in managed.clone() {
        let caught_up = m.lag_ms.is_some_and(|l| u128::from(l) <= max_lag.as_millis());
        if m.votes == Some(0) && m.is_usable_data_member() && caught_up {
            return Some(VoteChange::Restore(m.host.clone()));
        }
    }
    if !view.majority_needs_every_data_member || view.majority_writes_available {
        return None;
    }
    managed
        .filter(|m| m.votes_now() && !m.healthy && view.primary.as_deref() != Some(m.host.as_str()))
        .find(|m| down_for(&m.host).is_some_and(|d| d >= grace))
        .map(|m| VoteChange::Remove(m.host.clone()))
}

/// The next config, or `None` if `config` already has what is wanted:
/// managed voting members of `target_site` at `priorities.active`, the
/// other managed voting members at `priorities.standby`, and `votes` as
/// `vote` says.
pub fn next_config(
    config: &Document,
    view: &ReplicaSetView,
    target_site: &str,
    priorities: Priorities,
    vote: Option<&VoteChange>,
) -> Option<Change> {
    let members = config.get_array("members").ok()?;
    let mut changed = Vec::new();
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let Some(doc) = m.as_document() else {
            out.push(m.clone());
            continue;
        };
        let host = doc.get_str("host").unwrap_or_default();
        let seen = view.members.iter().find(|v| v.host == host);
        let Some(site) = seen.and_then(|v| v.site.as_deref()) else {
            out.push(m.clone());
            continue;
        };
        if doc.get_bool("arbiterOnly").unwrap_or(false) {
            out.push(m.clone());
            continue;
        }
        let mut doc = doc.clone();
        let mut votes = number(&doc, "votes", 1.0);
        match vote {
            Some(VoteChange::Remove(h)) if h == host => votes = 0.0,
            Some(VoteChange::Restore(h)) if h == host => votes = 1.0,
            _ => {}
        }
        let priority = if votes == 0.0 {
            0.0
        } else if site == target_site {
            priorities.active
        } else {
            priorities.standby
        };
        let (old_p, old_v) = (number(&doc, "priority", 1.0), number(&doc, "votes", 1.0));
        if old_p != priority || old_v != votes {
            doc.insert("priority", priority);
            doc.insert("votes", votes as i32);
            changed.push(format!("{host} ({site}) priority {old_p}→{priority}, votes {old_v}→{votes}"));
        }
        out.push(Bson::Document(doc));
    }
    if changed.is_empty() {
        return None;
    }
    let mut next = config.clone();
    next.insert("members", out);
    let version = number(config, "version", 1.0) as i64 + 1;
    next.insert("version", version as i32);
    // The server sets `term` itself; sending it back is refused by some
    // versions of replSetReconfig.
    next.remove("term");
    Some(Change { config: next, detail: changed.join("; ") })
}

#[cfg(test)]
mod tests {
    use super::super::view::MemberView;
    use super::*;
    use mongodb::bson::doc;

    fn member(host: &str, site: Option<&str>, arbiter: bool, healthy: bool, votes: i64) -> MemberView {
        MemberView {
            host: host.into(),
            site: site.map(Into::into),
            state: if !healthy {
                "(not reachable/healthy)".into()
            } else if arbiter {
                "ARBITER".into()
            } else {
                "SECONDARY".into()
            },
            healthy,
            arbiter,
            priority: Some(1.0),
            votes: Some(votes),
            lag_ms: (healthy && !arbiter).then_some(0),
        }
    }

    fn view(members: Vec<MemberView>, needs_every: bool, writes: bool) -> ReplicaSetView {
        ReplicaSetView {
            set: "rs0".into(),
            config_version: Some(3),
            primary: None,
            primary_site: None,
            shape: String::new(),
            majority_needs_every_data_member: needs_every,
            majority_writes_available: writes,
            members,
            configured_not_in_set: Default::default(),
            reference_optime_ms: None,
        }
    }

    fn config() -> Document {
        doc! { "_id": "rs0", "version": 3, "term": 7_i64, "settings": { "chainingAllowed": false }, "members": [
            { "_id": 0, "host": "a:1", "priority": 10.0, "votes": 1, "tags": { "dc": "east" }, "hidden": false },
            { "_id": 1, "host": "b:1", "priority": 1.0, "votes": 1, "tags": { "dc": "west" }, "secondaryDelaySecs": 0_i64 },
            { "_id": 2, "host": "c:1", "arbiterOnly": true, "priority": 0.0, "votes": 1 },
            { "_id": 3, "host": "x:1", "priority": 0.0, "votes": 0, "hidden": true },
        ] }
    }

    const P: Priorities = Priorities { active: 10.0, standby: 1.0 };

    #[test]
    fn moving_to_site_b_changes_only_the_two_priorities_and_the_version() {
        let v = view(
            vec![
                member("a:1", Some("site-a"), false, true, 1),
                member("b:1", Some("site-b"), false, true, 1),
                member("c:1", Some("witness"), true, true, 1),
                member("x:1", None, false, true, 0),
            ],
            false,
            true,
        );
        assert_eq!(next_config(&config(), &v, "site-a", P, None), None, "already in place");
        let change = next_config(&config(), &v, "site-b", P, None).expect("a change");
        let mut want = config();
        want.insert("version", 4);
        want.remove("term");
        let m = want.get_array_mut("members").unwrap();
        m[0].as_document_mut().unwrap().insert("priority", 1.0);
        m[0].as_document_mut().unwrap().insert("votes", 1);
        m[1].as_document_mut().unwrap().insert("priority", 10.0);
        m[1].as_document_mut().unwrap().insert("votes", 1);
        assert_eq!(change.config, want);
        assert!(change.detail.contains("b:1 (site-b) priority 1→10"), "{}", change.detail);
    }

    #[test]
    fn psa_mitigation_removes_the_lost_member_after_the_grace_then_restores_it() {
        let lost = view(
            vec![
                member("a:1", Some("site-a"), false, false, 1),
                member("b:1", Some("site-b"), false, true, 1),
                member("c:1", Some("witness"), true, true, 1),
            ],
            true,
            false,
        );
        let grace = Duration::from_secs(30);
        let lag = Duration::from_secs(10);
        assert_eq!(vote_change(&lost, false, grace, lag, |_| Some(grace)), None, "off unless enabled");
        assert_eq!(vote_change(&lost, true, grace, lag, |_| Some(grace / 2)), None, "within the grace");
        let step = vote_change(&lost, true, grace, lag, |_| Some(grace)).expect("a step");
        assert_eq!(step, VoteChange::Remove("a:1".into()));
        let change = next_config(&config(), &lost, "site-b", P, Some(&step)).unwrap();
        let a = change.config.get_array("members").unwrap()[0].as_document().unwrap().clone();
        assert_eq!((a.get_f64("priority").unwrap(), a.get_i32("votes").unwrap()), (0.0, 0));
        assert_eq!(a.get_document("tags").unwrap(), &doc! { "dc": "east" });

        let back = view(
            vec![
                member("a:1", Some("site-a"), false, true, 0),
                member("b:1", Some("site-b"), false, true, 1),
                member("c:1", Some("witness"), true, true, 1),
            ],
            false,
            true,
        );
        let step = vote_change(&back, true, grace, lag, |_| None).expect("a step");
        assert_eq!(step, VoteChange::Restore("a:1".into()));
        let change = next_config(&change.config, &back, "site-b", P, Some(&step)).unwrap();
        let a = change.config.get_array("members").unwrap()[0].as_document().unwrap().clone();
        assert_eq!((a.get_f64("priority").unwrap(), a.get_i32("votes").unwrap()), (1.0, 1));
    }
}
