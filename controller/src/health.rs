//! Local health checks: HTTP (status and optional body match), TCP connect,
//! and command (exit status, run as [`crate::shell`] describes), each with
//! interval, timeout, rise and fall.
//! A check starts unhealthy until it has passed `rise` times in a row.
//!
//! The checks run as tasks owned by [`HealthChecks`], which a reload
//! replaces: a check whose definition is unchanged keeps running with its
//! state; a new or changed one starts over and stays out of the site's
//! verdict until it has reached one of its own (`rise` passes or `fall`
//! failures), so a reload never hands the role over on its own. Each task
//! reports under its check's name and its own generation, so a late report
//! of a replaced task never lands on its successor.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::redact;
use crate::settings::Choice;
use crate::shell::{self, Script};
use crate::snapshot::NodeSnapshot;

/// `[[checks]]`: one local health check, as written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// Name shown in status.
    pub name: String,
    /// What kind of check it is.
    pub kind: Choice<CheckKind>,
    /// URL (http), address (tcp) or shell command (command).
    pub target: String,
    /// Expected HTTP status (http only; default 200).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Substring the HTTP body must contain (http only).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// How often it runs (above zero, at most
    /// [`crate::settings::MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_check_interval")]
    pub interval: Duration,
    /// Time limit of one run (above zero, at most
    /// [`crate::settings::MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_check_timeout")]
    pub timeout: Duration,
    /// Variables of the daemon's environment passed on to the command
    /// (command checks only; see [`crate::shell`]).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Consecutive passes to count as healthy.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures to count as unhealthy.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_check_timeout() -> Duration {
    Duration::from_millis(500)
}

fn default_rise() -> u32 {
    2
}

fn default_fall() -> u32 {
    3
}

/// `checks[i].kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP GET of `target`, which must answer the expected status.
    Http,
    /// A TCP connection to `target`.
    Tcp,
    /// A shell command that must exit 0.
    Command,
}

/// A checked `[[checks]]` entry, ready to run.
#[derive(Clone, Debug)]
pub struct Check {
    /// Its kind, one of the accepted ones.
    pub kind: CheckKind,
    /// The rest of its settings.
    pub section: CheckSection,
    /// The user a command check runs as (`hooks.run_as`), if not the
    /// daemon's.
    pub run_as: Option<crate::shell::RunAs>,
}

pub use crate::reports::CheckState;

/// A change of this site's health, for the protocol loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthInput {
    /// Whether every local check passes.
    Checks(bool),
    /// Whether this site's data is caught up (the MongoDB monitor).
    Data(bool),
}

/// Why one run of a check failed: what anyone may see, and the whole story
/// for the daemon's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    /// For `/status`: the kind of check, a host at most, an exit or HTTP
    /// status, a short error kind ([`crate::redact`]).
    pub shown: String,
    /// For the log only: may hold the command line or the full URL.
    pub logged: String,
}

impl CheckFailure {
    fn same(text: String) -> Self {
        CheckFailure { shown: text.clone(), logged: text }
    }
}

async fn run_once(check: &Check, client: &reqwest::Client) -> Result<(), CheckFailure> {
    let (kind, run_as, check) = (check.kind, check.run_as.as_ref(), &check.section);
    let t = check.timeout;
    match kind {
        CheckKind::Tcp => match tokio::time::timeout(t, tokio::net::TcpStream::connect(&check.target)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(CheckFailure::same(format!("connect {}: {e}", check.target))),
            Err(_) => Err(CheckFailure::same(format!("connect {}: timed out", check.target))),
        },
        CheckKind::Http => {
            let shown = format!("GET {}", redact::url_text_for_display(&check.target));
            let fail = |what: String| CheckFailure {
                shown: format!("{shown}: {what}"),
                logged: format!("GET {}: {what}", check.target),
            };
            let resp = client.get(&check.target).timeout(t).send().await.map_err(|e| fail(redact::http_error(e)))?;
            let want = check.expect_status.unwrap_or(200);
            if resp.status().as_u16() != want {
                return Err(fail(format!("status {} (want {want})", resp.status().as_u16())));
            }
            if let Some(needle) = &check.body_contains {
                let body = resp.text().await.map_err(|e| fail(format!("body: {}", redact::http_error(e))))?;
                if !body.contains(needle.as_str()) {
                    return Err(CheckFailure {
                        shown: format!("{shown}: the body lacks the expected text"),
                        logged: format!("GET {}: body lacks {needle:?}", check.target),
                    });
                }
            }
            Ok(())
        }
        CheckKind::Command => {
            let script = Script { command: &check.target, vars: &[], pass_env: &check.pass_env, timeout: t, run_as };
            let what = match shell::run(script).await {
                Ok(s) if s.success() => return Ok(()),
                Ok(s) => format!("failed: {s}"),
                Err(e) => e.to_string(),
            };
            Err(CheckFailure { shown: format!("command {what}"), logged: format!("command {:?} {what}", check.target) })
        }
    }
}

/// The site's verdict: every counted check healthy (a site with no checks
/// is healthy).
pub fn verdict(states: &[CheckState]) -> bool {
    states.iter().filter(|s| !s.joining).all(|s| s.healthy)
}

/// One running check and its task, aborted when it is dropped.
struct Running {
    check: Check,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running checks and their shared state.
pub struct HealthChecks {
    /// Where every check's state is kept, for `/status` and the verdict.
    snapshot: NodeSnapshot,
    verdicts: mpsc::Sender<HealthInput>,
    /// Made when the first check starts: a client loads the system's root
    /// certificates, memory that a node without checks (every witness)
    /// need not hold.
    client: std::sync::OnceLock<reqwest::Client>,
    running: std::sync::Mutex<Vec<Running>>,
    generations: std::sync::atomic::AtomicU64,
}

impl HealthChecks {
    /// Starts every check; the verdict (all healthy) goes to `verdicts`
    /// whenever it may have changed. With no checks the site is healthy.
    /// With `joining` every check stays out of the verdict until it has one
    /// of its own, as after a reload (a site that restarted in place keeps
    /// its role until a check actually fails); otherwise the site counts as
    /// unhealthy until each check has passed `rise` times.
    pub fn start(
        checks: Vec<Check>,
        joining: bool,
        snapshot: NodeSnapshot,
        verdicts: mpsc::Sender<HealthInput>,
    ) -> HealthChecks {
        let health = HealthChecks {
            snapshot,
            verdicts,
            client: std::sync::OnceLock::new(),
            running: std::sync::Mutex::new(Vec::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
        };
        // The states are published before any task can look for its own:
        // a task that finds none takes itself for one a reload replaced.
        let running: Vec<Running> = health.snapshot.update_checks(|published| {
            published.clear();
            checks.into_iter().map(|c| health.launch(c, joining, published)).collect()
        });
        if running.is_empty() {
            let _ = health.verdicts.try_send(HealthInput::Checks(true));
        }
        if let Ok(mut held) = health.running.lock() {
            *held = running;
        }
        health
    }

    /// Runs `checks` from now on: unchanged ones keep their task and state,
    /// the others start over as joining, the rest are stopped.
    pub async fn replace(&self, checks: Vec<Check>) {
        let healthy = {
            let Ok(mut running) = self.running.lock() else { return };
            // The states are held while tasks are swapped, so no task
            // reports in between.
            self.snapshot.update_checks(|states| {
                let mut new_states = Vec::new();
                let mut kept = Vec::new();
                for check in checks {
                    match running.iter().position(|r| r.check.section == check.section) {
                        Some(i) => {
                            let r = running.swap_remove(i);
                            if let Some(state) = states.iter().find(|s| s.name == r.check.section.name) {
                                new_states.push(state.clone());
                            }
                            kept.push(r);
                        }
                        None => kept.push(self.launch(check, true, &mut new_states)),
                    }
                }
                // Dropping them aborts the tasks of checks removed or changed.
                *running = kept;
                *states = new_states;
                verdict(states)
            })
        };
        let _ = self.verdicts.send(HealthInput::Checks(healthy)).await;
    }

    /// Starts one check's task, its state pushed onto `states`.
    fn launch(&self, check: Check, joining: bool, states: &mut Vec<CheckState>) -> Running {
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let name = check.section.name.clone();
        states.push(CheckState { name: name.clone(), healthy: false, last: "not run yet".into(), joining, generation });
        let (snapshot, verdicts, client) =
            (self.snapshot.clone(), self.verdicts.clone(), self.client.get_or_init(reqwest::Client::new).clone());
        let task_check = check.clone();
        let task = tokio::spawn(async move {
            let check = task_check;
            let (mut passes, mut fails) = (0u32, 0u32);
            let mut tick = tokio::time::interval(check.section.interval);
            // The failure last written to the log, so a check that keeps
            // failing the same way logs it once.
            let mut logged: Option<String> = None;
            loop {
                tick.tick().await;
                let result = run_once(&check, &client).await;
                let healthy = snapshot.update_checks(|all| {
                    let state = all.iter_mut().find(|s| s.name == name && s.generation == generation)?;
                    match &result {
                        Ok(()) => {
                            passes += 1;
                            fails = 0;
                            logged = None;
                            state.last = "ok".into();
                            if passes >= check.section.rise && !state.healthy {
                                state.healthy = true;
                                tracing::info!(check = %check.section.name, "health check passes");
                            }
                        }
                        Err(e) => {
                            fails += 1;
                            passes = 0;
                            state.last = e.shown.clone();
                            if logged.as_ref() != Some(&e.logged) {
                                tracing::warn!(check = %check.section.name, error = %e.logged, "health check run failed");
                                logged = Some(e.logged.clone());
                            }
                            if fails >= check.section.fall && state.healthy {
                                state.healthy = false;
                                tracing::warn!(check = %check.section.name, "health check fails");
                            }
                        }
                    }
                    if passes >= check.section.rise || fails >= check.section.fall {
                        state.joining = false;
                    }
                    Some(verdict(all))
                });
                // Replaced by a reload: this task is done.
                let Some(healthy) = healthy else { return };
                if verdicts.send(HealthInput::Checks(healthy)).await.is_err() {
                    return;
                }
            }
        });
        Running { check, task }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_check(target: String, timeout: Duration, pass_env: Vec<String>) -> Check {
        let section = CheckSection {
            name: "test".into(),
            kind: CheckKind::Command.into(),
            target,
            expect_status: None,
            body_contains: None,
            interval: Duration::from_secs(1),
            timeout,
            rise: 1,
            fall: 1,
            pass_env,
        };
        Check { kind: CheckKind::Command, section, run_as: None }
    }

    #[tokio::test]
    async fn a_failed_check_shows_no_command_line_nor_url_secrets_but_logs_them() {
        let check = command_check("exit 3 # token=cmd-secret-42".into(), Duration::from_secs(30), Vec::new());
        let failure = run_once(&check, &reqwest::Client::new()).await.unwrap_err();
        assert!(!failure.shown.contains("cmd-secret-42") && failure.shown.contains('3'), "{failure:?}");
        assert!(failure.logged.contains("cmd-secret-42"), "{failure:?}");

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut check = command_check(
            format!("http://probe:pw-secret-7@127.0.0.1:{port}/health/path-secret-9?key=q-secret-5"),
            Duration::from_secs(30),
            Vec::new(),
        );
        check.kind = CheckKind::Http;
        let failure = run_once(&check, &reqwest::Client::new()).await.unwrap_err();
        for secret in ["pw-secret-7", "path-secret-9", "q-secret-5", "probe:"] {
            assert!(!failure.shown.contains(secret), "{secret}: {failure:?}");
        }
        assert!(failure.shown.starts_with(&format!("GET http://127.0.0.1:{port}/…: ")), "{failure:?}");
        assert!(failure.logged.contains("path-secret-9"), "{failure:?}");
    }

    #[tokio::test]
    async fn a_timed_out_command_check_takes_its_background_children_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let command = crate::shell::tests::command_with_background_child(dir.path());
        let check = command_check(command, Duration::from_secs(2), Vec::new());
        let result = run_once(&check, &reqwest::Client::new()).await;
        assert!(result.as_ref().is_err_and(|e| e.shown.contains("timed out")), "{result:?}");
        crate::shell::tests::assert_group_gone(dir.path()).await;
    }

    #[tokio::test]
    async fn a_command_check_sees_path_and_pass_env_but_not_the_daemons_secrets() {
        // Unique names: no other test reads them.
        std::env::set_var("CHECK_TEST_MONGODB_URI", "mongodb://user:check-secret@db");
        std::env::set_var("CHECK_TEST_HOME", "/home/check");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let check =
            command_check(format!("env > {}", out.display()), Duration::from_secs(30), vec!["CHECK_TEST_HOME".into()]);
        let result = run_once(&check, &reqwest::Client::new()).await;
        assert_eq!(result, Ok(()));
        let env = crate::shell::tests::read_env(&out);
        assert_eq!(env.get("CHECK_TEST_HOME").map(String::as_str), Some("/home/check"), "{env:?}");
        assert!(env.get("PATH").is_some_and(|p| !p.is_empty()), "no PATH: {env:?}");
        assert!(!env.values().any(|v| v.contains("check-secret")), "the daemon's secret leaked: {env:?}");
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| !["PATH", "CHECK_TEST_HOME"].contains(&k.as_str()))
            .filter(|k| !crate::shell::tests::SHELL_OWN.contains(&k.as_str()))
            .collect();
        assert!(extra.is_empty(), "variables the check must not see: {extra:?}");
    }
}
