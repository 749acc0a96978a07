//! Local health checks: HTTP (status and optional body match), TCP connect,
//! and command (exit status), each with interval, timeout, rise and fall.
//! A check starts unhealthy until it has passed `rise` times in a row.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, Mutex};

use crate::settings::CheckSection;

/// What one check looks like now.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CheckState {
    /// Its name.
    pub name: String,
    /// Healthy after rise/fall.
    pub healthy: bool,
    /// The last run's result.
    pub last: String,
}

/// Every check's state, shared with `/status`.
pub type Checks = Arc<Mutex<Vec<CheckState>>>;

/// A change of this site's health, for the protocol loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthInput {
    /// Whether every local check passes.
    Checks(bool),
    /// Whether this site's data is caught up (the MongoDB monitor).
    Data(bool),
}

async fn run_once(check: &CheckSection, client: &reqwest::Client) -> Result<(), String> {
    let t = check.timeout;
    match check.kind.as_str() {
        "tcp" => match tokio::time::timeout(t, tokio::net::TcpStream::connect(&check.target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("connect {}: {e}", check.target)),
            Err(_) => Err(format!("connect {}: timed out", check.target)),
        },
        "http" => {
            let resp =
                client.get(&check.target).timeout(t).send().await.map_err(|e| format!("GET {}: {e}", check.target))?;
            let want = check.expect_status.unwrap_or(200);
            if resp.status().as_u16() != want {
                return Err(format!("GET {}: status {} (want {want})", check.target, resp.status().as_u16()));
            }
            if let Some(needle) = &check.body_contains {
                let body = resp.text().await.map_err(|e| format!("GET {}: body: {e}", check.target))?;
                if !body.contains(needle.as_str()) {
                    return Err(format!("GET {}: body lacks {needle:?}", check.target));
                }
            }
            Ok(())
        }
        _ => {
            let child = tokio::process::Command::new("sh").arg("-c").arg(&check.target).kill_on_drop(true).status();
            match tokio::time::timeout(t, child).await {
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(format!("{}: {s}", check.target)),
                Ok(Err(e)) => Err(format!("{}: {e}", check.target)),
                Err(_) => Err(format!("{}: timed out", check.target)),
            }
        }
    }
}

/// Starts every check; sends the overall verdict (all healthy) on `verdicts`
/// whenever it may have changed. With no checks the site is healthy.
pub fn spawn(checks: Vec<CheckSection>, verdicts: mpsc::Sender<HealthInput>) -> Checks {
    let states: Checks = Arc::new(Mutex::new(
        checks
            .iter()
            .map(|c| CheckState { name: c.name.clone(), healthy: false, last: "not run yet".into() })
            .collect(),
    ));
    if checks.is_empty() {
        let _ = verdicts.try_send(HealthInput::Checks(true));
        return states;
    }
    let client = reqwest::Client::new();
    for (i, check) in checks.into_iter().enumerate() {
        let (states, verdicts, client) = (states.clone(), verdicts.clone(), client.clone());
        tokio::spawn(async move {
            let (mut passes, mut fails) = (0u32, 0u32);
            let mut tick = tokio::time::interval(check.interval);
            loop {
                tick.tick().await;
                let result = run_once(&check, &client).await;
                let mut all = states.lock().await;
                let Some(state) = all.get_mut(i) else { return };
                match &result {
                    Ok(()) => {
                        passes += 1;
                        fails = 0;
                        state.last = "ok".into();
                        if passes >= check.rise && !state.healthy {
                            state.healthy = true;
                            tracing::info!(check = %check.name, "health check passes");
                        }
                    }
                    Err(e) => {
                        fails += 1;
                        passes = 0;
                        state.last = e.clone();
                        if fails >= check.fall && state.healthy {
                            state.healthy = false;
                            tracing::warn!(check = %check.name, error = %e, "health check fails");
                        }
                    }
                }
                let healthy = all.iter().all(|s| s.healthy);
                drop(all);
                if verdicts.send(HealthInput::Checks(healthy)).await.is_err() {
                    return;
                }
            }
        });
    }
    states
}
