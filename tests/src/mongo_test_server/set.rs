//! The simulated replica set behind every member's listener: the config
//! document, which members are up, how far each lags, who is primary, the
//! stored collections, and the elections the test server performs.
//!
//! Simplifications, each chosen so the controller's behaviour, not the
//! test server's, is what tests observe: data is shared by all members (a
//! lagging member reports an old optime, but reads see the newest data);
//! elections happen at once when something changes; a member "catches up"
//! during a step-down when its lag is within the catch-up period.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};

/// A command error, as a real server reports it (`ok: 0`).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    pub code: i32,
    pub code_name: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        CommandError { code, code_name, message: message.into() }
    }

    pub fn not_primary(host: &str) -> Self {
        CommandError::new(10107, "NotWritablePrimary", format!("{host} is not the primary"))
    }
}

/// A member's runtime state (its settings live in the config document).
#[derive(Debug, Clone)]
pub struct MemberState {
    pub host: String,
    pub up: bool,
    /// How far its applied optime is behind the primary's.
    pub lag: Duration,
    /// After a step-down it may not be elected until then.
    pub frozen_until: Option<std::time::Instant>,
}

/// The whole set.
#[derive(Debug)]
pub struct ReplicaSet {
    pub name: String,
    pub config: Document,
    pub members: Vec<MemberState>,
    pub primary: Option<usize>,
    pub term: i64,
    /// MongoDB's priority takeover: a caught-up member with a higher
    /// priority than the primary's replaces it. Tests turn it off to see
    /// the controller correct the primary itself.
    pub priority_takeover: bool,
    /// Wall-clock milliseconds of the newest write (the primary's optime).
    pub last_write_ms: i64,
    pub write_count: u32,
    /// Documents by namespace (`db.collection`), shared by all members.
    pub collections: BTreeMap<String, Vec<Document>>,
    /// Every command received, by member index, oldest first.
    pub log: Vec<(usize, Document)>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A member's setting from the config document.
fn setting<'a>(config: &'a Document, host: &str) -> Option<&'a Document> {
    config.get_array("members").ok()?.iter().filter_map(Bson::as_document).find(|m| m.get_str("host") == Ok(host))
}

/// A numeric field, whatever BSON width it was written with.
pub(super) fn number(d: &Document, key: &str, default: f64) -> f64 {
    d.get(key).and_then(super::query::as_number).unwrap_or(default)
}

impl ReplicaSet {
    /// A set whose members are `hosts` with their config entries; the
    /// highest-priority data member starts as primary.
    pub fn new(name: &str, members: Vec<Document>) -> Self {
        let hosts: Vec<String> = members.iter().filter_map(|m| m.get_str("host").ok().map(str::to_owned)).collect();
        let config = doc! {
            "_id": name,
            "version": 1,
            "term": 1_i64,
            "protocolVersion": 1_i64,
            "writeConcernMajorityJournalDefault": true,
            "members": members,
            "settings": {
                "chainingAllowed": true,
                "heartbeatIntervalMillis": 2000,
                "electionTimeoutMillis": 10000,
                "catchUpTimeoutMillis": -1,
                "replicaSetId": ObjectId::new(),
            },
        };
        let mut set = ReplicaSet {
            name: name.to_owned(),
            config,
            members: hosts
                .into_iter()
                .map(|host| MemberState { host, up: true, lag: Duration::ZERO, frozen_until: None })
                .collect(),
            primary: None,
            term: 0,
            priority_takeover: true,
            last_write_ms: now_ms(),
            write_count: 0,
            collections: BTreeMap::new(),
            log: Vec::new(),
        };
        set.elect();
        set
    }

    pub fn member_config(&self, i: usize) -> Document {
        setting(&self.config, &self.members[i].host).cloned().unwrap_or_default()
    }

    pub fn is_arbiter(&self, i: usize) -> bool {
        self.member_config(i).get_bool("arbiterOnly").unwrap_or(false)
    }

    pub fn priority(&self, i: usize) -> f64 {
        let c = self.member_config(i);
        if c.get_bool("arbiterOnly").unwrap_or(false) {
            0.0
        } else {
            number(&c, "priority", 1.0)
        }
    }

    pub fn votes(&self, i: usize) -> i64 {
        number(&self.member_config(i), "votes", 1.0) as i64
    }

    pub fn version(&self) -> i64 {
        number(&self.config, "version", 1.0) as i64
    }

    fn voting_total(&self) -> i64 {
        (0..self.members.len()).map(|i| self.votes(i)).sum()
    }

    /// Whether the members that are up hold a majority of the votes.
    pub fn has_majority(&self) -> bool {
        let up: i64 = (0..self.members.len()).filter(|&i| self.members[i].up).map(|i| self.votes(i)).sum();
        up * 2 > self.voting_total()
    }

    /// Whether `w: "majority"` can be acknowledged now. As in MongoDB, the
    /// write majority is the lesser of a majority of all votes and the
    /// number of voting data members (arbiters acknowledge no writes).
    pub fn majority_writes_possible(&self) -> bool {
        let voting_data: Vec<usize> =
            (0..self.members.len()).filter(|&i| !self.is_arbiter(i) && self.votes(i) > 0).collect();
        let needed = (self.voting_total() / 2 + 1).min(voting_data.len() as i64);
        let up = voting_data.iter().filter(|&&i| self.members[i].up).count() as i64;
        self.primary.is_some() && up >= needed
    }

    fn electable(&self, i: usize, now: std::time::Instant) -> bool {
        let m = &self.members[i];
        m.up && !self.is_arbiter(i)
            && self.priority(i) > 0.0
            && self.votes(i) > 0
            && m.frozen_until.is_none_or(|f| now >= f)
    }

    fn make_primary(&mut self, i: usize) {
        self.term += 1;
        self.primary = Some(i);
        self.members[i].lag = Duration::ZERO;
        self.config.insert("term", self.term);
    }

    /// MongoDB's election, done at once: without a majority there is no
    /// primary; without a usable primary the electable member with the
    /// highest priority (then the least lag) wins; with one, a caught-up
    /// member of higher priority takes over if priority takeover is on.
    pub fn elect(&mut self) {
        let now = std::time::Instant::now();
        if !self.has_majority() {
            self.primary = None;
            return;
        }
        let best = (0..self.members.len()).filter(|&i| self.electable(i, now)).max_by(|&a, &b| {
            self.priority(a)
                .total_cmp(&self.priority(b))
                .then(self.members[b].lag.cmp(&self.members[a].lag))
                .then(b.cmp(&a))
        });
        match (self.primary, best) {
            (Some(p), Some(b)) if self.electable(p, now) => {
                let caught_up = self.members[b].lag <= Duration::from_secs(2);
                if b != p && self.priority_takeover && caught_up && self.priority(b) > self.priority(p) {
                    self.make_primary(b);
                }
            }
            (_, Some(b)) => self.make_primary(b),
            (_, None) => self.primary = None,
        }
    }

    /// A write at the primary: the set's optime moves on.
    pub fn record_write(&mut self) {
        self.last_write_ms = now_ms().max(self.last_write_ms);
        self.write_count += 1;
    }

    /// Applied optime of member `i`, in wall-clock ms, if it has one.
    pub fn optime_ms(&self, i: usize) -> Option<i64> {
        if self.is_arbiter(i) || !self.members[i].up {
            return None;
        }
        Some(self.last_write_ms - self.members[i].lag.as_millis() as i64)
    }

    pub fn election_id(&self) -> ObjectId {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        bytes[4..].copy_from_slice(&self.term.to_be_bytes());
        ObjectId::from_bytes(bytes)
    }

    /// Validates and installs a new config (`replSetReconfig`).
    pub fn reconfig(&mut self, at: usize, new: Document, force: bool) -> Result<(), CommandError> {
        let incompatible = |m: String| CommandError::new(103, "NewReplicaSetConfigurationIncompatible", m);
        if !force && self.primary != Some(at) {
            return Err(CommandError::not_primary(&self.members[at].host));
        }
        if new.get_str("_id") != Ok(self.name.as_str()) {
            return Err(incompatible(format!("the config's _id must be {:?}", self.name)));
        }
        let version = number(&new, "version", 0.0) as i64;
        if version <= self.version() {
            return Err(incompatible(format!("version {version} is not above the current {}", self.version())));
        }
        let members = new
            .get_array("members")
            .map_err(|_| CommandError::new(93, "InvalidReplicaSetConfig", "no members array"))?;
        let mut hosts = Vec::new();
        for m in members {
            let m = m
                .as_document()
                .ok_or_else(|| CommandError::new(93, "InvalidReplicaSetConfig", "a member is not a document"))?;
            let host = m
                .get_str("host")
                .map_err(|_| CommandError::new(93, "InvalidReplicaSetConfig", "a member has no host"))?;
            if !self.members.iter().any(|s| s.host == host) {
                return Err(incompatible(format!("the test server has no member {host}")));
            }
            let (p, v) = (number(m, "priority", 1.0), number(m, "votes", 1.0));
            if !(0.0..=1000.0).contains(&p) || !(v == 0.0 || v == 1.0) || (p > 0.0 && v == 0.0) {
                return Err(CommandError::new(
                    93,
                    "InvalidReplicaSetConfig",
                    format!("{host}: priority {p} with votes {v}"),
                ));
            }
            hosts.push(host.to_owned());
        }
        if hosts.len() != self.members.len() {
            return Err(incompatible("the test server cannot add or remove members".into()));
        }
        let changed_votes = self.members.iter().enumerate().filter(|(i, s)| {
            let old = self.votes(*i);
            let new_votes = setting(&new, &s.host).map_or(1.0, |m| number(m, "votes", 1.0)) as i64;
            old != new_votes
        });
        if !force && changed_votes.count() > 1 {
            return Err(incompatible("a non-force reconfig may change the votes of at most one member".into()));
        }
        let mut new = new;
        new.insert("term", self.term);
        self.config = new;
        if !self.has_majority() && !force {
            return Err(CommandError::new(
                74,
                "NodeNotFound",
                "not enough voting members of the new config are up to commit it",
            ));
        }
        self.elect();
        Ok(())
    }

    /// `replSetStepDown` at member `at`.
    pub fn step_down(
        &mut self,
        at: usize,
        freeze: Duration,
        catch_up: Duration,
        force: bool,
    ) -> Result<(), CommandError> {
        if self.primary != Some(at) {
            return Err(CommandError::not_primary(&self.members[at].host));
        }
        let now = std::time::Instant::now();
        let ready =
            (0..self.members.len()).any(|i| i != at && self.electable(i, now) && self.members[i].lag <= catch_up);
        if !ready && !force {
            return Err(CommandError::new(262, "ExceededTimeLimit", "No electable secondaries caught up"));
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != at && m.lag <= catch_up {
                m.lag = Duration::ZERO;
            }
        }
        self.members[at].frozen_until = Some(now + freeze);
        self.primary = None;
        self.elect();
        Ok(())
    }

    /// The `hello` answer of member `i`.
    pub fn hello(&self, i: usize, connection_id: i64) -> Document {
        let host = &self.members[i].host;
        let entries = |pred: &dyn Fn(usize) -> bool| -> Vec<Bson> {
            (0..self.members.len()).filter(|&j| pred(j)).map(|j| Bson::String(self.members[j].host.clone())).collect()
        };
        let hidden = |j: usize| self.member_config(j).get_bool("hidden").unwrap_or(false);
        let is_primary = self.primary == Some(i);
        let mut reply = doc! {
            "helloOk": true,
            "isWritablePrimary": is_primary,
            "ismaster": is_primary,
            "secondary": !is_primary && !self.is_arbiter(i),
            "setName": &self.name,
            "setVersion": self.version() as i32,
            "hosts": entries(&|j| !self.is_arbiter(j) && !hidden(j) && self.priority(j) > 0.0),
            "passives": entries(&|j| !self.is_arbiter(j) && !hidden(j) && self.priority(j) == 0.0),
            "arbiters": entries(&|j| self.is_arbiter(j)),
            "me": host,
            "maxBsonObjectSize": 16_777_216,
            "maxMessageSizeBytes": super::wire::MAX_MESSAGE_BYTES,
            "maxWriteBatchSize": 100_000,
            "localTime": DateTime::now(),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": connection_id,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": false,
            "ok": 1.0,
        };
        if self.is_arbiter(i) {
            reply.insert("arbiterOnly", true);
        }
        if let Some(p) = self.primary {
            reply.insert("primary", &self.members[p].host);
        }
        if is_primary {
            reply.insert("electionId", self.election_id());
        }
        if let Some(ms) = self.optime_ms(i) {
            reply.insert("lastWrite", doc! { "lastWriteDate": DateTime::from_millis(ms) });
        }
        reply
    }

    /// The `replSetGetStatus` answer of member `i`.
    pub fn status(&self, i: usize) -> Document {
        let members: Vec<Bson> = (0..self.members.len())
            .map(|j| {
                let m = &self.members[j];
                let (state, state_str) = match () {
                    () if !m.up => (8, "(not reachable/healthy)"),
                    () if self.is_arbiter(j) => (7, "ARBITER"),
                    () if self.primary == Some(j) => (1, "PRIMARY"),
                    () => (2, "SECONDARY"),
                };
                let optime = self.optime_ms(j).unwrap_or(0);
                let mut entry = doc! {
                    "_id": self.member_config(j).get("_id").cloned().unwrap_or(Bson::Int32(j as i32)),
                    "name": &m.host,
                    "health": if m.up { 1.0 } else { 0.0 },
                    "state": state,
                    "stateStr": state_str,
                    "configVersion": self.version() as i32,
                    "configTerm": self.term,
                };
                if !self.is_arbiter(j) {
                    entry.insert(
                        "optime",
                        doc! {
                            "ts": mongodb::bson::Timestamp { time: (optime / 1000) as u32, increment: self.write_count },
                            "t": if m.up { self.term } else { -1 },
                        },
                    );
                    entry.insert("optimeDate", DateTime::from_millis(optime));
                }
                if j == i {
                    entry.insert("self", true);
                }
                Bson::Document(entry)
            })
            .collect();
        let my_state = if self.primary == Some(i) {
            1
        } else if self.is_arbiter(i) {
            7
        } else {
            2
        };
        doc! {
            "set": &self.name,
            "date": DateTime::now(),
            "myState": my_state,
            "term": self.term,
            "heartbeatIntervalMillis": 2000_i64,
            "members": members,
            "ok": 1.0,
        }
    }
}
