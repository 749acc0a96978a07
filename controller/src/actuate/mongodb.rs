//! The `mongodb` actuator: on the active site it checks the state store's
//! fence, applies the PSA mitigation when it is due, claims the epoch in the
//! state store, then keeps the primary beside the active site (priorities
//! by `replSetReconfig`, a misplaced primary stepped down after the grace);
//! while draining it hands the primary over to the target. Every write
//! waits for nothing but its own time limit and checks the lease first.
//! In observe mode it reads the same, still claims the epoch in the state
//! store (the cluster's own record, which the fence needs), and only
//! reports the reconfigurations and step-downs it would make.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};

use super::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
use crate::actuation_mode::ActuationMode;
use crate::describe;
use crate::mongo::answer::CommandRefusal;
use crate::mongo::placement::{self, Priorities, VoteChange};
use crate::mongo::store::{Claim, StoreError};
use crate::mongo::view::ReplicaSetView;
use crate::mongo::{describe_error, MongoLink, Reading};

/// The primary-follows-the-active-site actuator (with the state store
/// claim and the PSA mitigation, in that order of dependence).
#[derive(Clone, Debug)]
pub struct MongoActuator {
    /// `act`, or `observe`: read the target, report, change nothing.
    pub actuation: ActuationMode,
    /// Its name in status.
    pub name: String,
    /// The replica set.
    pub link: MongoLink,
    me: String,
    /// Member names by index, to name sites in the stored record.
    names: Vec<String>,
    /// Since when the primary has been somewhere other than wanted.
    misplaced_since: Arc<Mutex<Option<Instant>>>,
    /// Since when each member has been seen down.
    down_since: Arc<Mutex<BTreeMap<String, Instant>>>,
}

fn unreachable(what: &str, detail: String) -> ActuateError {
    ActuateError::Unreachable { target: format!("MongoDB ({what})"), detail }
}

impl MongoActuator {
    /// The actuator of site `me` in a cluster of members `names`.
    pub fn new(link: MongoLink, me: &str, names: Vec<String>) -> Self {
        MongoActuator {
            actuation: ActuationMode::Act,
            name: "mongodb".into(),
            link,
            me: me.to_owned(),
            names,
            misplaced_since: Arc::default(),
            down_since: Arc::default(),
        }
    }

    /// Upper bound on one pass.
    pub fn pass_limit(&self) -> Duration {
        self.link.section.timeout * 8 + self.link.section.step_down_catch_up
    }

    fn note_down(&self, view: &ReplicaSetView) {
        let now = Instant::now();
        if let Ok(mut down) = self.down_since.lock() {
            for m in &view.members {
                if m.healthy {
                    down.remove(&m.host);
                } else {
                    down.entry(m.host.clone()).or_insert(now);
                }
            }
        }
    }

    fn down_for(&self, host: &str) -> Option<Duration> {
        self.down_since.lock().ok()?.get(host).map(Instant::elapsed)
    }

    /// Brings MongoDB to `goal`: fence check, PSA mitigation, epoch claim,
    /// priorities, then the primary's place.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        let converged = |detail: String| Outcome::Converged(Applied { detail, propagation: None });
        let (epoch, target, state) = match goal {
            Goal::Standby => return Ok(converged("standby".into())),
            Goal::Active { epoch, .. } => (*epoch, self.me.clone(), "active"),
            Goal::Draining { epoch, to } => (*epoch, to.clone(), "draining"),
        };
        let s = &self.link.section;
        let store = self.link.store().await.map_err(|e| unreachable("state store", e))?;
        store.check_fence(epoch).await.map_err(store_error)?;
        let Reading { view, config } = self.link.read_view(None).await.map_err(|e| unreachable("replica set", e))?;
        self.note_down(&view);
        let mut done = Vec::new();
        // Without the config (a server that does not implement
        // replSetGetConfig) there is no PSA mitigation and no placement;
        // the claim still goes through.
        let vote = match &config {
            Ok(_) => placement::vote_change(&view, s.psa_mitigation, s.psa_grace, s.max_lag_on_failover, |h| {
                self.down_for(h)
            }),
            Err(_) => None,
        };
        let observing = self.actuation == ActuationMode::Observe;
        // Observe mode: what the replica set config and the primary would
        // be changed to (the claim is still made: see docs/mongodb.md).
        let mut would = Vec::new();
        if let (Ok(config), Some(VoteChange::Remove(_))) = (&config, &vote) {
            if observing {
                would.extend(self.would_reconfig(config, &view, &target, vote.as_ref()));
            } else {
                // The mitigation first: until it is in, majority writes (the
                // claim among them) cannot succeed.
                done.push(self.reconfig(config, &view, &target, vote.as_ref(), lease).await?);
                return Ok(Outcome::InProgress(format!("{}; reading the set again", done.join("; "))));
            }
        }
        if observing {
            done.push(match (&view.primary, &view.primary_site) {
                (Some(primary), Some(site)) => format!("primary {primary} is on {site}"),
                (Some(primary), None) => format!("primary {primary} is on no site"),
                (None, _) => "the replica set has no primary".into(),
            });
        }
        let reason = match goal {
            Goal::Active { reason, .. } => reason.clone(),
            _ => format!("handing over to {target}"),
        };
        let claim = self.claim(epoch, state, reason, lease);
        lease.check()?;
        if let Some(stored) = store.claim(&claim).await.map_err(store_error)? {
            done.push(format!("state store holds epoch {} of {}", stored.epoch, stored.site));
        }
        let config = match config {
            Ok(c) => c,
            Err(missing) if !s.primary_follows => {
                done.push(format!("{missing}; primary_follows is off"));
                return Ok(finish(&done, would));
            }
            Err(missing) => {
                done.push(format!(
                    "{missing}; set primary_follows = false to use this server for the state store only"
                ));
                return Err(ActuateError::Refused { target: "MongoDB".into(), detail: done.join("; ") });
            }
        };
        if !s.primary_follows {
            done.push("primary_follows is off".into());
            return Ok(finish(&done, would));
        }
        if observing {
            would.extend(self.would_reconfig(&config, &view, &target, vote.as_ref()));
            if view.primary.is_some() && view.primary_site.as_deref() != Some(target.as_str()) {
                would.push(format!(
                    "would step the primary down, after {} for MongoDB's priority takeover unless draining, \
                     for a member of {target} to take over",
                    humantime::format_duration(s.priority_takeover_grace)
                ));
            }
            return Ok(finish(&done, would));
        }
        if placement::next_config(&config, &view, &target, self.priorities(), vote.as_ref()).is_some() {
            done.push(self.reconfig(&config, &view, &target, vote.as_ref(), lease).await?);
            done.push("waiting for MongoDB to move the primary".into());
            return Ok(Outcome::InProgress(done.join("; ")));
        }
        Ok(match self.place_primary(&view, &target, matches!(goal, Goal::Draining { .. }), lease).await? {
            Outcome::Converged(placed) => {
                done.push(placed.detail);
                converged(done.join("; "))
            }
            Outcome::InProgress(waiting) => {
                done.push(waiting);
                Outcome::InProgress(done.join("; "))
            }
            observed @ Outcome::WouldChange { .. } => observed,
        })
    }

    /// The record to store, with mode, pause and pending approval as the
    /// protocol has them now.
    fn claim(&self, epoch: u64, state: &str, cause: String, lease: &LeaseGuard) -> Claim {
        let name = |id: failover_core::NodeId| self.names.get(id.index()).cloned().unwrap_or_else(|| id.to_string());
        let (mode, paused, pending) = lease.0.read(|published| {
            let st = &published.status;
            let mode = match st.mode {
                failover_core::FailoverMode::Automatic => "automatic",
                failover_core::FailoverMode::Manual => "manual",
            };
            let data = |id| published.mongodb.as_ref()?.why_not_caught_up(&name(id));
            let pending = st
                .pending_failover
                .map(|p| format!("to {}: {}", name(p.target), describe::proposal(p.reason, p.target, &data)));
            (mode.to_owned(), st.paused, pending)
        });
        Claim { epoch, site: self.me.clone(), state: state.into(), cause, mode, paused, pending }
    }

    /// Observe mode: the reconfiguration `reconfig` would make, in words.
    fn would_reconfig(
        &self,
        config: &Document,
        view: &ReplicaSetView,
        target: &str,
        vote: Option<&VoteChange>,
    ) -> Option<String> {
        placement::next_config(config, view, target, self.priorities(), vote)
            .map(|change| format!("would reconfigure the replica set: {}", change.detail))
    }

    fn priorities(&self) -> Priorities {
        Priorities { active: self.link.section.active_priority, standby: self.link.section.standby_priority }
    }

    async fn reconfig(
        &self,
        config: &Document,
        view: &ReplicaSetView,
        target: &str,
        vote: Option<&VoteChange>,
        lease: &LeaseGuard,
    ) -> Result<String, ActuateError> {
        let Some(change) = placement::next_config(config, view, target, self.priorities(), vote) else {
            return Ok("replica set config already in place".into());
        };
        if view.primary.is_none() {
            return Err(ActuateError::NotConverged("no primary to run replSetReconfig on".into()));
        }
        lease.check()?;
        let timeout_ms = i64::try_from(self.link.section.timeout.as_millis()).unwrap_or(i64::MAX);
        self.link
            .admin(doc! { "replSetReconfig": change.config, "maxTimeMS": timeout_ms }, false)
            .await
            .map_err(|e| refused("replSetReconfig", &e))?;
        tracing::info!(change = %change.detail, "replica set reconfigured");
        Ok(format!("reconfigured: {}", change.detail))
    }

    /// The last step: is the primary where it should be, and if not, is it
    /// time to step it down?
    async fn place_primary(
        &self,
        view: &ReplicaSetView,
        target: &str,
        draining: bool,
        lease: &LeaseGuard,
    ) -> Result<Outcome, ActuateError> {
        let at = view.primary.as_deref();
        if view.primary_site.as_deref() == Some(target) {
            if let Ok(mut m) = self.misplaced_since.lock() {
                *m = None;
            }
            let detail = format!("primary {} is on {target}", at.unwrap_or("?"));
            return Ok(Outcome::Converged(Applied { detail, propagation: None }));
        }
        let Some(primary) = at else {
            return Err(ActuateError::NotConverged("the replica set has no primary".into()));
        };
        if view.site_caught_up(target, self.link.section.max_lag_on_failover).is_err()
            && view.members.iter().all(|m| m.site.as_deref() != Some(target) || !m.is_usable_data_member())
        {
            return Err(ActuateError::NotConverged(format!("no member of {target} can become primary")));
        }
        let since = {
            let mut m = self.misplaced_since.lock().map_err(|_| ActuateError::NotConverged("lock".into()))?;
            *m.get_or_insert_with(Instant::now)
        };
        let grace = self.link.section.priority_takeover_grace;
        if !draining && since.elapsed() < grace {
            return Ok(Outcome::InProgress(format!(
                "primary {primary} is not on {target}; waiting up to {} for MongoDB's priority takeover",
                humantime::format_duration(grace)
            )));
        }
        lease.check()?;
        self.link.step_down().await.map_err(|r| match r {
            CommandRefusal::NoAnswer { detail, .. } => unreachable("replSetStepDown", detail),
            r => ActuateError::Refused { target: "MongoDB".into(), detail: r.to_string() },
        })?;
        tracing::info!(%primary, %target, "stepped the MongoDB primary down");
        if let Ok(mut m) = self.misplaced_since.lock() {
            *m = None;
        }
        Ok(Outcome::InProgress(format!("stepped primary {primary} down; waiting for {target} to take over")))
    }
}

/// The end of a pass that changed nothing: what it found (`done`), or,
/// in observe mode, what it would have changed.
fn finish(done: &[String], would: Vec<String>) -> Outcome {
    let read = done.join("; ");
    if would.is_empty() {
        Outcome::Converged(Applied { detail: read, propagation: None })
    } else {
        Outcome::WouldChange { read, changes: would }
    }
}

fn refused(what: &str, e: &mongodb::error::Error) -> ActuateError {
    ActuateError::Refused { target: format!("MongoDB {what}"), detail: describe_error(e) }
}

fn store_error(e: StoreError) -> ActuateError {
    match e {
        StoreError::Fenced { stored, .. } => ActuateError::Fenced { by: Some(stored), detail: e.to_string() },
        StoreError::Unavailable(d) => unreachable("state store", d),
        StoreError::NotDurable(_) => ActuateError::NotConverged(e.to_string()),
        StoreError::Unreadable { problem, ours } => {
            let fix = format!(
                "set it to this site's epoch by hand, as an int64: db.cluster.updateOne({{_id: \"cluster\"}}, \
                 {{$set: {{epoch: NumberLong({ours})}}}}) in the state store's database"
            );
            crate::actuate::fence::unreadable("the MongoDB state store's cluster record", &problem, &fix)
        }
    }
}
