//! Rules for `[hooks]` and `[[checks]]`: time limits and intervals that the
//! timers can use, and the environment variables passed to their programs.

use std::time::Duration;

use super::{CheckSection, HooksSection};

/// The longest hook time limit, check interval or check time limit.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The first key of `[hooks]` that breaks a rule, and the problem.
pub(super) fn check_hooks(hooks: &HooksSection) -> Result<(), (String, String)> {
    duration(hooks.timeout).map_err(|p| ("hooks.timeout".to_owned(), p))?;
    pass_env(&hooks.pass_env).map_err(|p| ("hooks.pass_env".to_owned(), p))
}

/// The first key of `[[checks]]` that breaks a rule, and the problem.
pub(super) fn check_checks(checks: &[CheckSection]) -> Result<(), (String, String)> {
    for (i, check) in checks.iter().enumerate() {
        let key = |field: &str| format!("checks[{i}].{field}");
        if !matches!(check.kind.as_str(), "http" | "tcp" | "command") {
            return Err((key("kind"), "use \"http\", \"tcp\" or \"command\"".into()));
        }
        if check.rise == 0 || check.fall == 0 {
            return Err((format!("checks[{i}]"), "rise and fall must be at least 1".into()));
        }
        duration(check.interval).map_err(|p| (key("interval"), p))?;
        duration(check.timeout).map_err(|p| (key("timeout"), p))?;
        if !check.pass_env.is_empty() && check.kind != "command" {
            return Err((key("pass_env"), "only a command check runs a program; remove the key".into()));
        }
        pass_env(&check.pass_env).map_err(|p| (key("pass_env"), p))?;
    }
    Ok(())
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
