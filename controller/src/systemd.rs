//! systemd integration for `Type=notify` units: `READY=1` once the node
//! listens, `WATCHDOG=1` only while the protocol loop answers a probe (a
//! stuck loop gets the process restarted by systemd), `STATUS=` with the
//! role and active site for `systemctl status`, `RELOADING=1` (with
//! `MONOTONIC_USEC`) then `READY=1` around a reload, and `STOPPING=1` at
//! shutdown. Without `NOTIFY_SOCKET` (not started by systemd) every call
//! does nothing.

use std::sync::Arc;
use std::time::Duration;

use failover_core::ClusterConfig;

use sd_notify::NotifyState;
use tokio::sync::{mpsc, oneshot};

use crate::member_name;
use crate::snapshot::NodeSnapshot;

/// A liveness probe: the protocol loop answers it between two steps.
pub type Probe = oneshot::Sender<()>;

fn status_line(cfg: &ClusterConfig, snapshot: &NodeSnapshot) -> String {
    let st = snapshot.status();
    let active = st.active_site.map_or_else(|| "none".to_owned(), |a| member_name::of(cfg, a));
    format!("{}; active site: {active}; epoch {}", st.role.as_str(), st.epoch.map_or(0, |e| e.0))
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the node is up.
pub fn ready(cfg: &ClusterConfig, snapshot: &NodeSnapshot) {
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(cfg, snapshot))]);
}

/// Tells systemd the node reloads its configuration (`READY=1` follows,
/// through [`ready`], once it is done, applied or not).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading the configuration")];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    notify(&states);
}

/// Tells systemd the node is stopping (handing over first).
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping: handing over if active")]);
}

/// When the unit sets `WatchdogSec=`, pings systemd at half that interval,
/// each time only after the protocol loop answered a probe in time.
pub fn spawn_watchdog(probes: mpsc::Sender<Probe>, cfg: Arc<ClusterConfig>, snapshot: NodeSnapshot) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let every = interval / 2;
    tracing::info!(?interval, "systemd watchdog enabled");
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let (tx, rx) = oneshot::channel();
            if probes.send(tx).await.is_err() {
                return;
            }
            match tokio::time::timeout(every.max(Duration::from_millis(100)), rx).await {
                Ok(Ok(())) => notify(&[NotifyState::Watchdog, NotifyState::Status(&status_line(&cfg, &snapshot))]),
                _ => tracing::error!("the protocol loop did not answer the watchdog probe; not pinging systemd"),
            }
        }
    });
}
