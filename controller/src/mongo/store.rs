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

    async fn read(&self) -> Result<Option<Stored>, StoreError> {
        let found = self
            .cluster
            .find_one(doc! { "_id": RECORD_ID })
            .await
            .map_err(|e| unavailable("reading the cluster record", &e))?;
        Ok(found.map(|d| Stored {
            epoch: d.get_i64("epoch").ok().and_then(|e| u64::try_from(e).ok()).unwrap_or(0),
            site: d.get_str("active_site").unwrap_or_default().to_owned(),
            state: d.get_str("state").unwrap_or_default().to_owned(),
        }))
    }

    async fn check_fence(&self, epoch: u64) -> Result<Option<Stored>, StoreError> {
        let stored = self.read().await?;
        match stored {
            Some(s) if s.epoch > epoch => Err(StoreError::Fenced { stored: s.epoch, site: s.site, ours: epoch }),
            other => Ok(other),
        }
    }

    async fn claim(&self, claim: &Claim) -> Result<Stored, StoreError> {
        let epoch = i64::try_from(claim.epoch).map_err(|_| StoreError::Unavailable("epoch out of range".into()))?;
        let record = doc! {
            "epoch": epoch,
            "active_site": &claim.site,
            "state": &claim.state,
            "cause": &claim.cause,
            "mode": &claim.mode,
            "paused": claim.paused,
            "pending": claim.pending.clone(),
            "claimed_at": DateTime::now(),
        };
        let current = self.read().await?;
        let filter = match &current {
            Some(s) if s.epoch > claim.epoch => {
                return Err(StoreError::Fenced { stored: s.epoch, site: s.site.clone(), ours: claim.epoch })
            }
            // Already claimed as it is: a re-assertion writes nothing.
            Some(s) if s.epoch == claim.epoch && s.site == claim.site && s.state == claim.state => None,
            // This site's own record changes state (active → draining).
            Some(s) if s.epoch == claim.epoch => {
                Some((doc! { "_id": RECORD_ID, "epoch": epoch, "active_site": &claim.site }, false))
            }
            // Compare-and-set: only a record with an older epoch is
            // replaced; with none at all the upsert inserts one, and a
            // concurrent insert loses on the unique _id.
            _ => Some((doc! { "_id": RECORD_ID, "epoch": { "$lt": epoch } }, true)),
        };
        if let Some((filter, upsert)) = filter {
            match self.cluster.update_one(filter, doc! { "$set": record }).upsert(upsert).await {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(unavailable("claiming the epoch", &e)),
            }
            let event = doc! {
                "at": DateTime::now(), "site": &claim.site, "epoch": epoch,
                "event": format!("{} {} with epoch {} ({})", claim.site, claim.state, claim.epoch, claim.cause),
            };
            self.events.insert_one(event).await.map_err(|e| unavailable("appending the event", &e))?;
        }
        match self.read().await? {
            Some(s) if s.epoch == claim.epoch && s.site == claim.site && s.state == claim.state => Ok(s),
            Some(s) if s.epoch >= claim.epoch => {
                Err(StoreError::Fenced { stored: s.epoch, site: s.site, ours: claim.epoch })
            }
            _ => Err(StoreError::NotDurable(claim.epoch)),
        }
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
