//! The replica set monitor: reads the set every `poll_interval` on every
//! site, publishes the view for `/status` and `/metrics`, and tells the
//! protocol loop whether this site's data is caught up (rule 5). It never
//! blocks the loop: the loop only ever sees the last verdict.
//!
//! A site whose data cannot be judged (the set unreadable from here, no
//! data member of this site up, lag unknown) is *not* caught up: an
//! unplanned failover to it then needs an operator's approval, and status
//! says why.

use std::time::Duration;

use backon::BackoffBuilder;
use serde::Serialize;
use tokio::sync::mpsc;

use super::view::ReplicaSetView;
use super::MongoLink;
use crate::clock;
use crate::health::HealthInput;
use crate::runtime::{wall, Shared};

/// What `/status` shows of MongoDB.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MongoReport {
    /// `embedded` or `mongodb`.
    pub state_store: &'static str,
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

fn publish(shared: &Shared, f: impl FnOnce(&mut MongoReport)) {
    if let Ok(mut snap) = shared.lock() {
        let report = snap.mongodb.get_or_insert_with(MongoReport::default);
        f(report);
    }
}

/// Starts the monitor for site `me`.
pub fn spawn(link: MongoLink, me: String, shared: Shared, verdicts: mpsc::Sender<HealthInput>) {
    let store = link.state_store.name();
    publish(&shared, |r| {
        r.state_store = store;
        r.not_caught_up_because = Some("the replica set has not been read yet".into());
    });
    tokio::spawn(async move {
        let retry = backon::ExponentialBuilder::default()
            .with_min_delay(link.section.poll_interval)
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times();
        let mut backoff = retry.build();
        let mut reference = None;
        let mut failures = 0u32;
        let mut last_verdict = None;
        let mut placement_warned = false;
        let max_lag = link.section.max_lag_on_failover;
        loop {
            let (verdict, delay) = match link.read_view(reference).await {
                Ok(super::Reading { view, config }) => {
                    let disabled = config.err().map(|missing| missing.to_string());
                    if disabled.is_some() && !placement_warned {
                        tracing::warn!(why = disabled.as_deref().unwrap_or_default(), "MongoDB placement disabled");
                    }
                    placement_warned = disabled.is_some();
                    failures = 0;
                    backoff = retry.build();
                    reference = view.reference_optime_ms.or(reference);
                    let verdict = view.site_caught_up(&me, max_lag);
                    publish(&shared, |r| {
                        r.view = Some(view);
                        r.error = None;
                        r.placement_disabled = disabled;
                        r.updated_at = Some(wall(clock::now()));
                        r.consecutive_failures = 0;
                    });
                    (verdict, link.section.poll_interval)
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, "cannot read the MongoDB replica set");
                    }
                    // Shown in `/status`: never the connection string.
                    let e = link.scrub(&e);
                    let error = e.clone();
                    publish(&shared, |r| {
                        r.error = Some(error);
                        r.consecutive_failures = failures;
                    });
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    (Err(format!("the replica set cannot be read from this site: {e}")), delay)
                }
            };
            let caught_up = verdict.is_ok();
            publish(&shared, |r| {
                r.caught_up = caught_up;
                r.not_caught_up_because = verdict.as_ref().err().cloned();
            });
            if last_verdict != Some(caught_up) {
                match &verdict {
                    Ok(()) => tracing::info!("this site's data is caught up: eligible for automatic failover"),
                    Err(why) => {
                        tracing::warn!(why = %why, "this site's data is not caught up: automatic failover to it needs approval")
                    }
                }
                if verdicts.send(HealthInput::Data(caught_up)).await.is_err() {
                    return;
                }
                last_verdict = Some(caught_up);
            }
            tokio::time::sleep(delay).await;
        }
    });
}
