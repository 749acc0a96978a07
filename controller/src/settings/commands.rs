//! Rules for `[hooks]` and `[[checks]]`: time limits and intervals that the
//! timers can use, the environment variables passed to their programs, and
//! programs that `sh` would find. A hook whose program is missing fails only
//! when it runs: a `pre_promote` that cannot be found declines every
//! promotion of its site, which in manual mode can leave no site active.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::BadSetting;
use crate::health::{Check, CheckKind, CheckSection};
use crate::hooks::{HookKind, HooksSection};
use crate::shell::RunAs;

/// The longest hook time limit, check interval or check time limit.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The first key of `[hooks]` that breaks a rule, and the problem; else
/// the user of `hooks.run_as`, resolved.
pub(super) fn check_hooks(hooks: &HooksSection) -> Result<Option<RunAs>, BadSetting> {
    duration(hooks.timeout).map_err(|p| BadSetting::new("hooks.timeout", p))?;
    for hook in HookKind::ALL {
        if let Some(command) = hooks.command(hook) {
            program_found(command).map_err(|p| BadSetting::new(format!("hooks.{}", hook.name()), p))?;
        }
    }
    pass_env(&hooks.pass_env).map_err(|p| BadSetting::new("hooks.pass_env", p))?;
    hooks.run_as.as_deref().map(RunAs::resolve).transpose().map_err(|p| BadSetting::new("hooks.run_as", p))
}

/// The checks of `[[checks]]`, or the first key that breaks a rule; command
/// checks run as `run_as`.
pub(super) fn check_checks(checks: &[CheckSection], run_as: Option<&RunAs>) -> Result<Vec<Check>, BadSetting> {
    let mut checked = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        let bad = |field: &str, problem: String| BadSetting::new(format!("checks[{i}].{field}"), problem);
        let kind = check.kind.checked().map_err(|p| bad("kind", p))?;
        if check.rise == 0 || check.fall == 0 {
            return Err(BadSetting::new(format!("checks[{i}]"), "rise and fall must be at least 1"));
        }
        duration(check.interval).map_err(|p| bad("interval", p))?;
        duration(check.timeout).map_err(|p| bad("timeout", p))?;
        if !check.pass_env.is_empty() && kind != CheckKind::Command {
            return Err(bad("pass_env", "only a command check runs a program; remove the key".into()));
        }
        pass_env(&check.pass_env).map_err(|p| bad("pass_env", p))?;
        if kind == CheckKind::Command {
            program_found(&check.target).map_err(|p| bad("target", p))?;
        }
        let run_as = run_as.filter(|_| kind == CheckKind::Command).cloned();
        checked.push(Check { kind, section: check.clone(), run_as });
    }
    Ok(checked)
}

/// Words `sh` runs itself, and words that open a compound command (whose
/// programs come later and are not checked).
const SHELL_OWN: &[&str] = &[
    "!", ".", ":", "[", "alias", "break", "case", "cd", "command", "continue", "echo", "eval", "exec", "exit",
    "export", "false", "for", "getopts", "hash", "if", "kill", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "test", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
    "{", "(",
];

/// The program a command line starts with, when it is a plain word (not a
/// variable assignment, a shell word, or something quoted or expanded), is
/// an executable file: at its path when it has a `/`, otherwise in the
/// `PATH` hooks and checks run with.
fn program_found(command: &str) -> Result<(), String> {
    let Some(words) = shlex::split(command) else {
        return Err(format!("{command:?}: unbalanced quotes"));
    };
    let Some(program) = words.iter().find(|w| !w.contains('=')) else { return Ok(()) };
    let plain = program.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+'));
    if !plain || SHELL_OWN.contains(&program.as_str()) || command.trim_start().starts_with(['(', '{']) {
        return Ok(());
    }
    let executable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = Path::new(program);
        return match path.metadata() {
            Err(e) => Err(format!("{program}: {e}; sh would fail with 'not found' (exit 127) when it runs")),
            Ok(_) if !executable(path) => Err(format!("{program} is not an executable file")),
            Ok(_) => Ok(()),
        };
    }
    let path = crate::shell::program_path();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(program))) {
        return Ok(());
    }
    Err(format!(
        "{program}: no executable of that name in PATH ({}); sh would fail with 'not found' (exit 127) when it runs",
        path.to_string_lossy()
    ))
}

pub(super) fn duration(d: Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err("must be above zero".into());
    }
    if d > MAX_DURATION {
        return Err(format!("{} is more than the limit of 1 day", humantime::format_duration(d)));
    }
    Ok(())
}

/// Names of variables to pass from the daemon's environment: plain names,
/// and none of `FAILOVER_*` (set by the daemon for the program, or the
/// daemon's own configuration, secrets included).
fn pass_env(names: &[String]) -> Result<(), String> {
    for name in names {
        let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(format!(
                "{name:?} is not a variable name (letters, digits and '_', not starting with a digit)"
            ));
        }
        if name.starts_with("FAILOVER_") {
            return Err(format!("{name:?}: FAILOVER_* variables are set by the daemon or configure it; not passed"));
        }
    }
    Ok(())
}
