//! Role-change hooks: shell commands run with the epoch, site and reason in
//! their environment, each with a time limit ([`crate::shell`]: a clean
//! environment, and the whole process group killed on timeout). Their outcome is logged and
//! kept for `/status`. A hook never blocks the protocol loop: it runs in its
//! own task and reports back.

use std::time::Duration;

use serde::Serialize;

use crate::shell::{self, Script};

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

/// Where and how hooks run.
#[derive(Clone, Copy, Debug)]
pub struct HookLimits<'a> {
    /// Time limit of each hook.
    pub timeout: Duration,
    /// Variables passed from the daemon's environment.
    pub pass_env: &'a [String],
}

/// Runs `command` through `sh -c` with `FAILOVER_EPOCH`, `FAILOVER_SITE`,
/// `FAILOVER_REASON` and `FAILOVER_HOOK` set, killing its process group
/// after the time limit.
pub async fn run(
    hook: &'static str,
    command: &str,
    epoch: u64,
    site: &str,
    reason: &str,
    limits: HookLimits<'_>,
) -> HookOutcome {
    let vars = [
        ("FAILOVER_EPOCH", epoch.to_string()),
        ("FAILOVER_SITE", site.to_owned()),
        ("FAILOVER_REASON", reason.to_owned()),
        ("FAILOVER_HOOK", hook.to_owned()),
    ];
    let script = Script { command, vars: &vars, pass_env: limits.pass_env, timeout: limits.timeout };
    let (ok, detail) = match shell::run(script).await {
        Ok(status) if status.success() => (true, "exit 0".to_string()),
        Ok(status) => (false, format!("failed: {status}")),
        Err(e) => (false, e.to_string()),
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

    fn limits(timeout: Duration) -> HookLimits<'static> {
        HookLimits { timeout, pass_env: &[] }
    }

    #[tokio::test]
    async fn outcome_reports_exit_status_environment_and_timeout() {
        let t = limits(Duration::from_secs(10));
        assert!(
            run("pre_promote", "test \"$FAILOVER_EPOCH\" = 7 && test \"$FAILOVER_SITE\" = a", 7, "a", "x", t).await.ok
        );
        let failed = run("pre_promote", "exit 3", 7, "a", "x", t).await;
        assert!(!failed.ok);
        assert!(failed.detail.contains('3'), "{}", failed.detail);
        let slow = run("on_demote", "sleep 5", 7, "a", "x", limits(Duration::from_millis(100))).await;
        assert!(!slow.ok && slow.detail.contains("timed out"), "{}", slow.detail);
    }

    #[tokio::test]
    async fn a_timed_out_hook_takes_its_background_children_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let command = crate::shell::tests::command_with_background_child(dir.path());
        let outcome = run("post_promote", &command, 7, "a", "x", limits(Duration::from_secs(2))).await;
        assert!(!outcome.ok && outcome.detail.contains("timed out"), "{}", outcome.detail);
        crate::shell::tests::assert_group_gone(dir.path()).await;
    }

    #[tokio::test]
    async fn a_hook_sees_path_its_failover_variables_and_pass_env_only() {
        // Unique names: no other test reads them.
        std::env::set_var("HOOK_TEST_ADMIN_TOKEN", "hook-secret");
        std::env::set_var("HOOK_TEST_LANG", "C.UTF-8");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let pass = ["HOOK_TEST_LANG".to_string()];
        let limits = HookLimits { timeout: Duration::from_secs(30), pass_env: &pass };
        let outcome = run("on_demote", &format!("env > {}", out.display()), 9, "site-b", "handoff", limits).await;
        assert!(outcome.ok, "{}", outcome.detail);
        let env = crate::shell::tests::read_env(&out);
        let expected = [
            ("FAILOVER_EPOCH", "9"),
            ("FAILOVER_SITE", "site-b"),
            ("FAILOVER_REASON", "handoff"),
            ("FAILOVER_HOOK", "on_demote"),
            ("HOOK_TEST_LANG", "C.UTF-8"),
        ];
        for (name, value) in expected {
            assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}: {env:?}");
        }
        assert!(env.get("PATH").is_some_and(|p| !p.is_empty()), "no PATH: {env:?}");
        assert!(!env.values().any(|v| v.contains("hook-secret")), "the daemon's secret leaked: {env:?}");
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| k.as_str() != "PATH" && !expected.iter().any(|(n, _)| n == k))
            .filter(|k| !crate::shell::tests::SHELL_OWN.contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "variables the hook must not see: {extra:?}");
    }
}
