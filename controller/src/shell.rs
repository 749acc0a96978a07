//! Programs the operator configures (hooks, command checks): run through
//! `sh -c` in a process group of their own, with a clean environment, and
//! killed as a whole group when their time limit runs out.
//!
//! The environment holds exactly: `PATH` (the daemon's, or
//! [`DEFAULT_PATH`] if the daemon has none), the `FAILOVER_*` variables the
//! caller sets, and each variable named in the caller's `pass_env` that the
//! daemon's environment has. Nothing else of the daemon's environment (its
//! admin token, a MongoDB URI...) reaches the program.
//!
//! On timeout the group gets `SIGKILL`, so children and grandchildren the
//! program started die with it (unless they left the group themselves, e.g.
//! with `setsid`), and the shell is reaped before [`run`] returns. A
//! program that exits by itself is reaped; background processes it leaves
//! behind are not touched.

use std::ffi::OsString;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::process::{Child, Command};

/// `PATH` for programs when the daemon has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `PATH` programs run with: the daemon's, or [`DEFAULT_PATH`].
pub fn program_path() -> OsString {
    std::env::var_os("PATH").filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PATH.into())
}

/// How long to wait for a killed shell to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// One program to run.
#[derive(Clone, Copy, Debug)]
pub struct Script<'a> {
    /// The `sh -c` command line.
    pub command: &'a str,
    /// `FAILOVER_*` variables set for it.
    pub vars: &'a [(&'static str, String)],
    /// Names of variables passed from the daemon's environment.
    pub pass_env: &'a [String],
    /// Time limit of the run.
    pub timeout: Duration,
}

/// Why a program did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// `sh` could not be started.
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    /// Waiting for it failed.
    #[error("could not wait: {0}")]
    Wait(std::io::Error),
    /// It ran out of time; its process group was killed.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// The environment a program gets, as (name, value) pairs.
pub fn environment(script: &Script<'_>) -> Vec<(OsString, OsString)> {
    let path = program_path();
    let mut env = vec![(OsString::from("PATH"), path)];
    for name in script.pass_env {
        if let Some(value) = std::env::var_os(name) {
            env.push((name.into(), value));
        }
    }
    env.extend(script.vars.iter().map(|(name, value)| (OsString::from(name), OsString::from(value))));
    env
}

/// Runs `script` and returns its exit status, or why it has none.
pub async fn run(script: Script<'_>) -> Result<ExitStatus, ScriptError> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script.command).env_clear().envs(environment(&script)).process_group(0).kill_on_drop(true);
    let child = command.spawn().map_err(ScriptError::Spawn)?;
    let mut group = Group::new(child);
    match tokio::time::timeout(script.timeout, group.child.wait()).await {
        Ok(Ok(status)) => {
            group.reaped = true;
            Ok(status)
        }
        Ok(Err(e)) => Err(ScriptError::Wait(e)),
        Err(_) => {
            group.kill();
            if let Ok(Ok(_)) = tokio::time::timeout(REAP_LIMIT, group.child.wait()).await {
                group.reaped = true;
            }
            Err(ScriptError::TimedOut(script.timeout))
        }
    }
}

/// A running shell and its process group. Until the shell is reaped its
/// pid cannot be reused, so killing the group cannot hit anything else;
/// dropping it unreaped (the caller's task cancelled) kills the group too.
struct Group {
    child: Child,
    id: Option<Pid>,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Self {
        let id = child.id().and_then(|id| i32::try_from(id).ok()).and_then(Pid::from_raw);
        Group { child, id, reaped: false }
    }

    fn kill(&mut self) {
        if let Some(id) = self.id {
            if let Err(e) = kill_process_group(id, Signal::KILL) {
                tracing::warn!(group = id.as_raw_nonzero().get(), error = %e, "could not kill process group");
            }
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
