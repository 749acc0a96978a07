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
use tokio::sync::{mpsc, watch};

use super::MongoLink;
use crate::clock;
use crate::health::HealthInput;
use crate::snapshot::NodeSnapshot;

/// Starts the monitor for site `me`, reading the set through the latest
/// link in `links` (a reload replaces it; the next read uses the new one).
/// It ends when the protocol loop stops listening.
pub fn spawn(
    mut links: watch::Receiver<MongoLink>,
    me: String,
    snapshot: NodeSnapshot,
    verdicts: mpsc::Sender<HealthInput>,
) -> tokio::task::JoinHandle<()> {
    let store = links.borrow().state_store.name();
    snapshot.publish_mongo(|r| {
        r.state_store = store.into();
        r.not_caught_up_because = Some("the replica set has not been read yet".into());
    });
    tokio::spawn(async move {
        let retry = |link: &MongoLink| {
            backon::ExponentialBuilder::default()
                .with_min_delay(link.section.poll_interval)
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
        };
        let mut link = links.borrow_and_update().clone();
        let mut backoff = retry(&link).build();
        let mut reference = None;
        let mut failures = 0u32;
        let mut last_verdict = None;
        let mut placement_warned = false;
        let mut missing_warned = 0;
        loop {
            if links.has_changed().unwrap_or(false) {
                link = links.borrow_and_update().clone();
                backoff = retry(&link).build();
            }
            let max_lag = link.section.max_lag_on_failover;
            let (verdict, delay) = match link.read_view(reference).await {
                Ok(super::Reading { view, config }) => {
                    let disabled = config.err().map(|missing| missing.to_string());
                    if disabled.is_some() && !placement_warned {
                        tracing::warn!(why = disabled.as_deref().unwrap_or_default(), "MongoDB placement disabled");
                    }
                    placement_warned = disabled.is_some();
                    let typos = view.configured_not_in_set(None);
                    if typos.len() > missing_warned {
                        tracing::warn!(members = ?typos, "[[mongodb.members]] names hosts the replica set does not have");
                    }
                    missing_warned = typos.len();
                    failures = 0;
                    backoff = retry(&link).build();
                    reference = view.reference_optime_ms.or(reference);
                    let verdict = view.site_caught_up(&me, max_lag);
                    snapshot.publish_mongo(|r| {
                        r.view = Some(view);
                        r.error = None;
                        r.placement_disabled = disabled;
                        r.updated_at = Some(clock::wall(clock::now()));
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
                    snapshot.publish_mongo(|r| {
                        r.error = Some(error);
                        r.consecutive_failures = failures;
                    });
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    // The error itself is in the report once, beside this.
                    (Err("the replica set cannot be read from this site".to_owned()), delay)
                }
            };
            let caught_up = verdict.is_ok();
            snapshot.publish_mongo(|r| {
                r.caught_up = caught_up;
                r.not_caught_up_because = verdict.as_ref().err().cloned();
                r.max_lag_on_failover_ms = u64::try_from(max_lag.as_millis()).unwrap_or(u64::MAX);
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
    })
}
