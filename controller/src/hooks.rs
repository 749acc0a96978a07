//! Role-change hooks: shell commands run with the epoch, site and reason in
//! their environment, each with a time limit. Their outcome is logged and
//! kept for `/status`. A hook never blocks the protocol loop: it runs in its
//! own task and reports back.

use std::time::Duration;

use serde::Serialize;
use tokio::process::Command;

/// The last run of one hook.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HookOutcome {
    /// `pre_promote`, `post_promote` or `on_demote`.
    pub hook: &'static str,
    /// The epoch it ran for.
    pub epoch: u64,
    /// Whether it exited 0 within its time limit.
    pub ok: bool,
    /// Exit status, timeout or spawn error.
    pub detail: String,
}

/// Runs `command` through `sh -c` with `FAILOVER_EPOCH`, `FAILOVER_SITE`
/// and `FAILOVER_REASON` set, killing it after `timeout`.
pub async fn run(
    hook: &'static str,
    command: &str,
    epoch: u64,
    site: &str,
    reason: &str,
    timeout: Duration,
) -> HookOutcome {
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("FAILOVER_EPOCH", epoch.to_string())
        .env("FAILOVER_SITE", site)
        .env("FAILOVER_REASON", reason)
        .env("FAILOVER_HOOK", hook)
        .kill_on_drop(true)
        .spawn();
    let (ok, detail) = match child {
        Err(e) => (false, format!("could not start: {e}")),
        Ok(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => (true, "exit 0".to_string()),
            Ok(Ok(status)) => (false, format!("failed: {status}")),
            Ok(Err(e)) => (false, format!("could not wait: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                (false, format!("timed out after {timeout:?}"))
            }
        },
    };
    if ok {
        tracing::info!(hook, epoch, %detail, "hook finished");
    } else {
        tracing::warn!(hook, epoch, %detail, "hook failed");
    }
    HookOutcome { hook, epoch, ok, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outcome_reports_exit_status_environment_and_timeout() {
        let t = Duration::from_secs(10);
        assert!(
            run("pre_promote", "test \"$FAILOVER_EPOCH\" = 7 && test \"$FAILOVER_SITE\" = a", 7, "a", "x", t).await.ok
        );
        let failed = run("pre_promote", "exit 3", 7, "a", "x", t).await;
        assert!(!failed.ok);
        assert!(failed.detail.contains('3'), "{}", failed.detail);
        let slow = run("on_demote", "sleep 5", 7, "a", "x", Duration::from_millis(100)).await;
        assert!(!slow.ok && slow.detail.contains("timed out"), "{}", slow.detail);
    }
}
