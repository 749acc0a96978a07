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
//! With a [`RunAs`] user (`hooks.run_as`) the program runs as that user,
//! with that user's group (or the one named) and no supplementary groups,
//! in `/`: the daemon sets them in the child between `fork` and `exec`,
//! which needs it to be root or to hold `CAP_SETUID` and `CAP_SETGID`.
//! Such a program cannot read the daemon's files (its admin token file, its
//! state) nor its `/proc/<pid>/environ` or memory. Without one it runs as
//! the daemon's user; the daemon makes itself non-dumpable at start
//! ([`hide_from_same_user`]), so even then its environment and memory are
//! closed to the program, but its files are not.
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
    /// The user to run it as, if not the daemon's.
    pub run_as: Option<&'a RunAs>,
}

/// The user (and group) programs run as: `hooks.run_as`, resolved when the
/// configuration is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// As written: `user` or `user:group`.
    pub name: String,
    /// The user's id.
    pub uid: u32,
    /// The group's id: the named group's, or the user's own group.
    pub gid: u32,
}

impl RunAs {
    /// Resolves `user` or `user:group` to ids, refusing a user or group that
    /// does not exist, root (the separation would be gone), and a daemon
    /// that could not switch to them (neither root nor holding `CAP_SETUID`
    /// and `CAP_SETGID`).
    pub fn resolve(spec: &str) -> Result<RunAs, String> {
        use nix::unistd::{Group, User};
        let (user_name, group_name) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user_name.is_empty() || group_name.is_some_and(str::is_empty) {
            return Err(format!("{spec:?}: write a user name, or user:group"));
        }
        let user = User::from_name(user_name)
            .map_err(|e| format!("{spec:?}: cannot look up user {user_name:?}: {e}"))?
            .ok_or_else(|| {
                format!("{spec:?}: there is no user {user_name:?} on this host; create it or name another")
            })?;
        let gid = match group_name {
            None => user.gid.as_raw(),
            Some(g) => Group::from_name(g)
                .map_err(|e| format!("{spec:?}: cannot look up group {g:?}: {e}"))?
                .ok_or_else(|| format!("{spec:?}: there is no group {g:?} on this host; create it or name another"))?
                .gid
                .as_raw(),
        };
        if user.uid.is_root() || gid == 0 {
            return Err(format!(
                "{spec:?} is root (user or group 0): programs would run with every privilege; name an unprivileged user"
            ));
        }
        let needed = rustix::thread::CapabilitySet::SETUID | rustix::thread::CapabilitySet::SETGID;
        let held = rustix::thread::capabilities(None).map_or(rustix::thread::CapabilitySet::empty(), |c| c.effective);
        if !held.contains(needed) {
            return Err(format!(
                "{spec:?}: this process can not switch users (it is not root and lacks CAP_SETUID and CAP_SETGID); \
                 give the daemon's unit AmbientCapabilities=CAP_SETUID CAP_SETGID (docs/security.md) or remove the key"
            ));
        }
        Ok(RunAs { name: spec.to_owned(), uid: user.uid.as_raw(), gid })
    }
}

/// Makes this process non-dumpable (as `ssh-agent` does): its
/// `/proc/<pid>/environ`, `mem` and the like are then closed to other
/// processes of the same user that lack `CAP_SYS_PTRACE` (hooks and command
/// checks, which run as the daemon's user unless `hooks.run_as` says
/// otherwise), and it leaves no core dump holding its secrets.
pub fn hide_from_same_user() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).map_err(Into::into)
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
    if let Some(user) = script.run_as {
        // The standard library calls setgroups(0, NULL), then setgid, then
        // setuid in the child: no supplementary group of the daemon's stays.
        command.uid(user.uid).gid(user.gid).current_dir("/");
    }
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
