use std::collections::BTreeMap;
use std::path::Path;

use super::*;

/// Whether process `pid` has ended: gone, or a zombie waiting for a reaper
/// that is not this test.
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits (at most 30 s, 3000 looks) until process `pid` has ended.
pub(crate) async fn wait_until_ended(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for _ in 0..3000 {
        if ended(pid) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ended(pid)
}

/// The pid a program wrote to `file`.
pub(crate) fn read_pid(file: &Path) -> u32 {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {text:?}: {e}", file.display()))
}

/// A command line that records its shell's pid in `dir/shell.pid`, starts
/// a background child that would live 60 s and records its pid in
/// `dir/child.pid`, then waits.
pub(crate) fn command_with_background_child(dir: &Path) -> String {
    let d = dir.display();
    format!("echo $$ > {d}/shell.pid; sleep 60 & echo $! > {d}/child.pid; sleep 60")
}

/// Asserts that the shell that wrote `dir/shell.pid` is reaped and its
/// background child ends.
pub(crate) async fn assert_group_gone(dir: &Path) {
    let shell = read_pid(&dir.join("shell.pid"));
    assert!(!Path::new(&format!("/proc/{shell}")).exists(), "the shell {shell} was not reaped");
    let child = read_pid(&dir.join("child.pid"));
    assert!(wait_until_ended(child).await, "the background child {child} outlived its shell's timeout");
}

#[tokio::test]
async fn a_timed_out_program_is_killed_with_its_children_and_reaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let command = command_with_background_child(dir.path());
    let script = Script { command: &command, vars: &[], pass_env: &[], timeout: Duration::from_secs(2) };
    let result = run(script).await;
    assert!(matches!(result, Err(ScriptError::TimedOut(_))), "{result:?}");
    assert_group_gone(dir.path()).await;
}

/// The variables in an `env` listing.
pub(crate) fn read_env(file: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Variables `sh` itself may add to what it was given.
pub(crate) const SHELL_OWN: [&str; 4] = ["PWD", "OLDPWD", "SHLVL", "_"];

#[tokio::test]
async fn a_program_sees_path_its_variables_and_passed_ones_only() {
    // Unique names: no other test reads them.
    std::env::set_var("SHELL_TEST_SECRET_TOKEN", "hunter2");
    std::env::set_var("SHELL_TEST_PASSED", "visible");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("env");
    let command = format!("env > {}", out.display());
    let vars = [("FAILOVER_EPOCH", "7".to_string())];
    let pass = ["SHELL_TEST_PASSED".to_string(), "SHELL_TEST_UNSET_ANYWHERE".to_string()];
    let script = Script { command: &command, vars: &vars, pass_env: &pass, timeout: Duration::from_secs(30) };
    let status = run(script).await.expect("run");
    assert!(status.success(), "{status}");
    let env = read_env(&out);
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref(), "{env:?}");
    assert_eq!(env.get("FAILOVER_EPOCH").map(String::as_str), Some("7"), "{env:?}");
    assert_eq!(env.get("SHELL_TEST_PASSED").map(String::as_str), Some("visible"), "{env:?}");
    assert!(!env.values().any(|v| v.contains("hunter2")), "the daemon's secret leaked: {env:?}");
    let expected = ["PATH", "FAILOVER_EPOCH", "SHELL_TEST_PASSED"];
    let extra: Vec<&String> =
        env.keys().filter(|k| !expected.contains(&k.as_str()) && !SHELL_OWN.contains(&k.as_str())).collect();
    assert!(extra.is_empty(), "variables the program must not see: {extra:?}");
}
