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
    let script = Script { command: &command, vars: &[], pass_env: &[], timeout: Duration::from_secs(2), run_as: None };
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
    let script =
        Script { command: &command, vars: &vars, pass_env: &pass, timeout: Duration::from_secs(30), run_as: None };
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

/// A directory others may enter, holding `secret` as a file only root can
/// read (mode 0640, root's group, as the admin token file is to the daemon's
/// user), and `out`, a file anyone may write.
fn closed_token_and_open_output(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let token = dir.join("token");
    std::fs::write(&token, "run-as-secret-77\n").expect("token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).expect("chmod token");
    let out = dir.join("out");
    std::fs::write(&out, "").expect("out");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).expect("chmod out");
    (token, out)
}

#[tokio::test]
async fn a_program_run_as_another_user_has_its_ids_no_other_groups_and_cannot_read_the_token_file() {
    assert!(rustix::process::geteuid().is_root(), "this test switches users: run it as root (CI does)");
    let user = RunAs::resolve("nobody").expect("nobody exists");
    let dir = tempfile::tempdir().expect("tempdir");
    let (token, out) = closed_token_and_open_output(dir.path());
    let command =
        format!("{{ id -u; id -g; id -G; pwd; cat {} || echo unreadable; }} > {} 2>&1", token.display(), out.display());
    let script =
        Script { command: &command, vars: &[], pass_env: &[], timeout: Duration::from_secs(30), run_as: Some(&user) };
    let status = run(script).await.expect("run");
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&out).expect("read out");
    let ids = format!("{}\n{}\n{}\n/\n", user.uid, user.gid, user.gid);
    assert!(text.starts_with(&ids), "want uid, gid, the one group and / first:\n{text}");
    assert!(!text.contains("run-as-secret-77"), "the program read the token file:\n{text}");
    assert!(text.contains("Permission denied") && text.ends_with("unreadable\n"), "{text}");

    // The same program as the daemon's user (root here) reads it: the test
    // can tell the difference.
    let script = Script { run_as: None, ..script };
    assert!(run(script).await.expect("run").success());
    assert!(std::fs::read_to_string(&out).expect("read out").contains("run-as-secret-77"));
}

#[test]
fn run_as_names_an_existing_unprivileged_user_and_group() {
    let with_group = RunAs::resolve("nobody:nogroup").expect("nobody:nogroup exists");
    assert_eq!((with_group.uid, with_group.gid, with_group.name.as_str()), (65534, 65534, "nobody:nogroup"));
    let cases = [
        ("no-such-user-failover", "there is no user \"no-such-user-failover\""),
        ("nobody:no-such-group-failover", "there is no group \"no-such-group-failover\""),
        ("root", "is root"),
        ("nobody:root", "is root"),
        ("", "write a user name"),
        ("nobody:", "write a user name"),
    ];
    for (spec, want) in cases {
        let err = RunAs::resolve(spec).expect_err(spec);
        assert!(err.contains(want), "{spec:?}: {err}");
    }
}

#[test]
fn the_daemon_can_make_itself_non_dumpable() {
    use rustix::process::{dumpable_behavior, DumpableBehavior};
    hide_from_same_user().expect("prctl");
    assert_eq!(dumpable_behavior().expect("prctl"), DumpableBehavior::NotDumpable);
}
