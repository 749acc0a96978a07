//! The shared state store: where the cluster record (active site, epoch,
//! mode, pause, pending approval) and the event history live, behind one
//! interface with two backends.
//!
//! - `embedded` (the default) needs nothing external: the voters keep the
//!   record in their persisted protocol state and exchange it in
//!   heartbeats; a claim is the election itself, so there is nothing more
//!   to write.
//! - `mongodb` keeps the same record in the configured database. The
//!   cluster document changes only by compare-and-set on the epoch with
//!   `w: "majority"`, and every claim is read back with `readConcern:
//!   "majority"`; events are appended, never rewritten. A compare-and-set
//!   that finds a newer epoch is fencing: [`StoreError::Fenced`], and the
//!   site that lost steps down.

use std::time::Duration;

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::{Acknowledgment, CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Client, Collection};
use serde::Serialize;

use crate::actuate::fence::{self, FenceValueError};

/// The record a site claims when it becomes (or stays) active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The fencing epoch.
    pub epoch: u64,
    /// The site claiming.
    pub site: String,
    /// `active` or `draining`.
    pub state: String,
    /// Why it became active.
    pub cause: String,
    /// `automatic` or `manual`.
    pub mode: String,
    /// Whether automatic actions are paused.
    pub paused: bool,
    /// The failover waiting for approval, in words, if any.
    pub pending: Option<String>,
}

impl Claim {
    /// An `active` claim of `site` in automatic mode, not paused, with no
    /// failover pending.
    pub fn active(epoch: u64, site: &str, cause: &str) -> Claim {
        Claim {
            epoch,
            site: site.into(),
            state: "active".into(),
            cause: cause.into(),
            mode: "automatic".into(),
            paused: false,
            pending: None,
        }
    }
}

/// The cluster record as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// Highest epoch claimed.
    pub epoch: u64,
    /// The site that claimed it.
    pub site: String,
    /// `active` or `draining`.
    pub state: String,
}

/// Why the store did not take a claim.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A newer epoch is stored: another site has taken over.
    #[error("the stored cluster record holds epoch {stored} of {site}, newer than ours ({ours})")]
    Fenced {
        /// The stored epoch.
        stored: u64,
        /// The site that stored it.
        site: String,
        /// Ours.
        ours: u64,
    },
    /// The store could not be used.
    #[error("{0}")]
    Unavailable(String),
    /// The stored record's epoch is not one this cluster writes (a string,
    /// a negative or fractional number, past 2^48, or missing).
    #[error("the stored cluster record's epoch: {problem}")]
    Unreadable {
        /// What is wrong with it.
        problem: crate::actuate::fence::FenceValueError,
        /// Ours.
        ours: u64,
    },
    /// The write went through but reading it back with majority read
    /// concern does not show it.
    #[error("the claim of epoch {0} is not visible with readConcern majority yet")]
    NotDurable(u64),
}

/// One backend or the other.
#[derive(Clone)]
pub enum StateStore {
    /// The voters' own persisted state.
    Embedded,
    /// A MongoDB database.
    Mongo(MongoStore),
}

impl StateStore {
    /// `embedded` or `mongodb`.
    pub fn kind(&self) -> &'static str {
        match self {
            StateStore::Embedded => "embedded",
            StateStore::Mongo(_) => "mongodb",
        }
    }

    /// Refuses, without writing, if a newer epoch is stored.
    pub async fn check_fence(&self, epoch: u64) -> Result<Option<Stored>, StoreError> {
        match self {
            StateStore::Embedded => Ok(None),
            StateStore::Mongo(m) => m.check_fence(epoch).await,
        }
    }

    /// Records `claim`: a no-op for the embedded store (the election was
    /// the claim), a compare-and-set plus majority read-back for MongoDB.
    pub async fn claim(&self, claim: &Claim) -> Result<Option<Stored>, StoreError> {
        match self {
            StateStore::Embedded => Ok(None),
            StateStore::Mongo(m) => m.claim(claim).await.map(Some),
        }
    }
}

/// The MongoDB backend.
#[derive(Clone)]
pub struct MongoStore {
    cluster: Collection<Document>,
    events: Collection<Document>,
}

const RECORD_ID: &str = "cluster";

fn unavailable(what: &str, e: &mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {}", super::describe_error(e)))
}

impl MongoStore {
    /// The store in database `db` of `client`; writes wait at most
    /// `timeout` for a majority.
    pub fn new(client: &Client, db: &str, timeout: Duration) -> Self {
        let wc = WriteConcern::builder().w(Acknowledgment::Majority).w_timeout(timeout).journal(true).build();
        let options = CollectionOptions::builder().write_concern(wc).read_concern(ReadConcern::majority()).build();
        let db = client.database(db);
        MongoStore {
            cluster: db.collection_with_options("cluster", options.clone()),
            events: db.collection_with_options("events", options),
        }
    }

    /// The cluster record, if there is one; `ours` names our epoch in an
    /// [`StoreError::Unreadable`].
    async fn read(&self, ours: u64) -> Result<Option<Stored>, StoreError> {
        let found = self
            .cluster
            .find_one(doc! { "_id": RECORD_ID })
            .await
            .map_err(|e| unavailable("reading the cluster record", &e))?;
        let Some(d) = found else { return Ok(None) };
        Ok(Some(Stored {
            epoch: stored_epoch(&d).map_err(|problem| StoreError::Unreadable { problem, ours })?,
            site: d.get_str("active_site").unwrap_or_default().to_owned(),
            state: d.get_str("state").unwrap_or_default().to_owned(),
        }))
    }

    /// `Fenced` if a newer epoch is stored, `Unreadable` if the stored one
    /// is not an epoch; writes nothing.
    pub async fn check_fence(&self, epoch: u64) -> Result<Option<Stored>, StoreError> {
        let stored = self.read(epoch).await?;
        match stored {
            Some(s) if s.epoch > epoch => Err(StoreError::Fenced { stored: s.epoch, site: s.site, ours: epoch }),
            other => Ok(other),
        }
    }

    /// Compare-and-set of `claim` on the epoch, `w: "majority"`, read back
    /// with `readConcern: "majority"`; a new epoch appends an event.
    pub async fn claim(&self, claim: &Claim) -> Result<Stored, StoreError> {
        let epoch = i64::try_from(claim.epoch).map_err(|_| StoreError::Unavailable("epoch out of range".into()))?;
        let current = doc! {
            "state": &claim.state,
            "mode": &claim.mode,
            "paused": claim.paused,
            "pending": claim.pending.clone(),
        };
        let mut record = doc! {
            "epoch": epoch,
            "active_site": &claim.site,
            "cause": &claim.cause,
            "claimed_at": DateTime::now(),
        };
        record.extend(current.clone());
        // Compare-and-set: only a record with an older epoch is replaced;
        // with none at all the upsert inserts one. A stored epoch at or
        // above ours makes the upsert collide with the existing _id.
        let cas = self
            .cluster
            .update_one(doc! { "_id": RECORD_ID, "epoch": { "$lt": epoch } }, doc! { "$set": record })
            .upsert(true)
            .await;
        let claimed_now = match cas {
            Ok(r) => r.matched_count > 0 || r.upserted_id.is_some(),
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(unavailable("claiming the epoch", &e)),
        };
        if !claimed_now {
            // Our own epoch already: keep state, mode, pause and pending
            // current (a no-op when nothing changed). Matches nothing if
            // another site's epoch is stored.
            let own = doc! { "_id": RECORD_ID, "epoch": epoch, "active_site": &claim.site };
            self.cluster
                .update_one(own, doc! { "$set": current })
                .await
                .map_err(|e| unavailable("updating the record", &e))?;
        }
        let stored = match self.read(claim.epoch).await? {
            Some(s) if s.epoch == claim.epoch && s.site == claim.site && s.state == claim.state => s,
            Some(s) if s.epoch >= claim.epoch => {
                return Err(StoreError::Fenced { stored: s.epoch, site: s.site, ours: claim.epoch })
            }
            _ => return Err(StoreError::NotDurable(claim.epoch)),
        };
        if claimed_now {
            let event = format!("{} {} with epoch {} ({})", claim.site, claim.state, claim.epoch, claim.cause);
            self.append(&claim.site, &event).await?;
        }
        Ok(stored)
    }

    /// Appends one event (never rewritten).
    pub async fn append(&self, node: &str, event: &str) -> Result<(), StoreError> {
        let doc = doc! { "at": DateTime::now(), "node": node, "event": event };
        self.events.insert_one(doc).await.map(|_| ()).map_err(|e| unavailable("appending an event", &e))
    }

    /// The newest `limit` events of the log, newest first. A document
    /// that is not one the nodes wrote (a field missing or of another
    /// type) is shown with what it lacks, never skipped in silence.
    pub async fn newest_events(&self, limit: u16) -> Result<Vec<StoredEvent>, StoreError> {
        use futures_util::TryStreamExt;
        let cursor = self
            .events
            .find(doc! {})
            .sort(doc! { "at": -1, "_id": -1 })
            .limit(i64::from(limit))
            .await
            .map_err(|e| unavailable("reading the event log", &e))?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(|e| unavailable("reading the event log", &e))?;
        Ok(docs.iter().map(StoredEvent::from_document).collect())
    }
}

/// One event of the MongoDB state store's log (`<database>.events`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    /// When it was written (RFC 3339).
    pub at: String,
    /// The node it happened on.
    pub node: String,
    /// What happened, in words.
    pub event: String,
}

impl StoredEvent {
    fn from_document(d: &Document) -> StoredEvent {
        let text = |key: &str| d.get_str(key).map(str::to_owned).unwrap_or_else(|_| format!("(no {key})"));
        let at = match d.get_datetime("at") {
            Ok(at) => at.try_to_rfc3339_string().unwrap_or_else(|_| at.timestamp_millis().to_string()),
            Err(_) => "(no at)".to_owned(),
        };
        StoredEvent { at, node: text("node"), event: text("event") }
    }
}

/// The newest `limit` events of the store's log, read with the link's
/// settings now.
pub async fn read_event_log(link: &super::MongoLink, limit: u16) -> Result<Vec<StoredEvent>, StoreError> {
    let client = link.client().await.map_err(StoreError::Unavailable)?;
    MongoStore::new(&client, &link.section.database, link.section.timeout).newest_events(limit).await
}

/// Appends every event of this node to the MongoDB store's `events`, in
/// order, from a bounded queue: an event that cannot be written after a few
/// tries with backoff is dropped with a warning (the node's own history
/// still has it), so a lost database never holds up the protocol loop.
pub fn spawn_event_log(
    links: tokio::sync::watch::Receiver<super::MongoLink>,
    node: String,
) -> tokio::sync::mpsc::Sender<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    tokio::spawn(async move {
        use backon::Retryable;
        while let Some(event) = rx.recv().await {
            let backoff = backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(5);
            let link = links.borrow().clone();
            let append = || async {
                // The client is made on first use (a mongodb+srv:// name
                // is resolved then), never at start-up.
                let client = link.client().await.map_err(StoreError::Unavailable)?;
                let store = MongoStore::new(&client, &link.section.database, link.section.timeout);
                store.append(&node, &event).await
            };
            if let Err(e) = append.retry(backoff).await {
                tracing::warn!(error = %e, %event, "event not recorded in the MongoDB state store");
            }
        }
    });
    tx
}

/// The epoch of a stored cluster record. The store writes an int64; an
/// int32, or a double holding a whole number, is read as that number (what
/// mongosh writes for `{epoch: 7}` is a double, and the compare-and-set
/// compares numbers of any type). Anything else (a string, a negative,
/// fractional or non-finite number, a value past 2^48, no epoch at all) is
/// not an epoch: the fence alarm, until someone writes a proper one.
pub fn stored_epoch(record: &Document) -> Result<u64, FenceValueError> {
    use mongodb::bson::Bson;
    let malformed = |found: String| FenceValueError::Malformed { found };
    let whole = |v: i64, kind: &str| match u64::try_from(v) {
        Ok(v) => fence::within_range(v, || format!("{v} ({kind})")),
        Err(_) => Err(malformed(format!("{v} ({kind}, negative)"))),
    };
    match record.get("epoch") {
        Some(Bson::Int64(v)) => whole(*v, "int64"),
        Some(Bson::Int32(v)) => whole(i64::from(*v), "int32"),
        Some(Bson::Double(d)) if d.is_finite() && d.fract() == 0.0 && *d >= 0.0 => {
            // Whole and not negative: exact up to 2^53, and anything past
            // 2^48 is out of range whatever its rounding.
            if *d > fence::MAX_EPOCH as f64 {
                Err(FenceValueError::OutOfRange { found: format!("{d} (double)") })
            } else {
                Ok(*d as u64)
            }
        }
        Some(Bson::Double(d)) => Err(malformed(format!("{d} (double, not a whole number of zero or more)"))),
        Some(Bson::String(text)) => Err(malformed(format!("{text:?} (a string)"))),
        Some(other) => Err(malformed(format!("{other} ({:?})", other.element_type()))),
        None => Err(malformed("no epoch field".into())),
    }
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, Bson, Document};

    use super::stored_epoch;
    use crate::actuate::fence::FenceValueError::{self, Malformed, OutOfRange};

    /// Whether a refusal is the one expected.
    type Expected = fn(&FenceValueError) -> bool;

    fn record(epoch: impl Into<Bson>) -> Document {
        doc! { "_id": "cluster", "epoch": epoch.into(), "active_site": "site-a", "state": "active" }
    }

    #[test]
    fn a_stored_epoch_reads_as_a_whole_number_of_any_numeric_type_or_is_the_alarm() {
        let max = 1i64 << 48;
        let accepted: Vec<(Bson, u64)> = vec![
            (Bson::Int64(7), 7),
            (Bson::Int64(0), 0),
            (Bson::Int64(max), 1 << 48),
            (Bson::Int32(7), 7),
            (Bson::Int32(i32::MAX), i32::MAX as u64),
            (Bson::Double(7.0), 7),
            (Bson::Double(-0.0), 0),
            (Bson::Double(max as f64), 1 << 48),
        ];
        for (epoch, value) in accepted {
            assert_eq!(stored_epoch(&record(epoch.clone())), Ok(value), "{epoch:?}");
        }
        let refused: Vec<(Bson, Expected)> = vec![
            (Bson::Int64(max + 1), |e| matches!(e, OutOfRange { .. })),
            (Bson::Int64(i64::MAX), |e| matches!(e, OutOfRange { .. })),
            (Bson::Double((max + 1) as f64), |e| matches!(e, OutOfRange { .. })),
            (Bson::Double(18446744073709551617.0), |e| matches!(e, OutOfRange { .. })),
            (Bson::Double(1e300), |e| matches!(e, OutOfRange { .. })),
            (Bson::Int64(-1), |e| matches!(e, Malformed { found } if found.contains("negative"))),
            (Bson::Int32(-1), |e| matches!(e, Malformed { found } if found.contains("int32"))),
            (Bson::Double(-1.0), |e| matches!(e, Malformed { .. })),
            (Bson::Double(7.5), |e| matches!(e, Malformed { found } if found.contains("7.5"))),
            (Bson::Double(f64::NAN), |e| matches!(e, Malformed { .. })),
            (Bson::Double(f64::INFINITY), |e| matches!(e, Malformed { .. })),
            (Bson::String("7".into()), |e| matches!(e, Malformed { found } if found.contains("string"))),
            (Bson::String("+7".into()), |e| matches!(e, Malformed { .. })),
            (Bson::Boolean(true), |e| matches!(e, Malformed { .. })),
            (Bson::Null, |e| matches!(e, Malformed { .. })),
        ];
        for (epoch, expected) in refused {
            match stored_epoch(&record(epoch.clone())) {
                Err(e) if expected(&e) => {}
                other => panic!("{epoch:?}: {other:?}"),
            }
        }
        let without = doc! { "_id": "cluster", "active_site": "site-a" };
        assert!(matches!(stored_epoch(&without), Err(Malformed { found }) if found.contains("no epoch")));
    }
}
