//! What anyone can read without a token (`/status`, `/actuators`,
//! `/actuators/active`, `/history`, `/metrics`) names failing checks,
//! webhooks and hooks, but never shows their command lines, URL
//! credentials, URL paths or query strings, or header values; the daemon's
//! own log keeps the detail. Waits are conditions with generous deadlines.

use std::time::Duration;

use failover_tests::cluster::{free_port, Spec, TestCluster};
use failover_tests::http_stub::{HookEndpoint, HookReply};

const LONG: Duration = Duration::from_secs(60);

/// Strings that must appear in no unauthenticated answer.
const SECRETS: [&str; 6] = [
    "check-token-5f1e",     // in the command health check's command line
    "hook-user:",           // userinfo of a webhook URL
    "hook-password-77aa",   // userinfo of a webhook URL
    "T0SECRET/B0SECRET",    // Slack-style path of a webhook URL
    "query-token-91c3",     // query string of a webhook URL
    "header-bearer-c0ffee", // a webhook header's value
];

const PUBLIC_PATHS: [&str; 5] = ["/status", "/actuators", "/actuators/active", "/history", "/metrics"];

/// The failed report of actuator `name` in `node`'s `/actuators`.
fn failed_actuator(c: &TestCluster, node: &str, name: &str) -> bool {
    c.status(node).and_then(|s| s["actuators"].as_array().cloned()).is_some_and(|list| {
        list.iter()
            .any(|a| a["name"] == name && a["state"] == "failed" && a["consecutive_failures"].as_u64() >= Some(1))
    })
}

/// The check named `name` in `node`'s status has run and failed.
fn failed_check(c: &TestCluster, node: &str, name: &str) -> bool {
    c.status(node).and_then(|s| s["sites"].as_array().cloned()).is_some_and(|sites| {
        sites
            .iter()
            .filter_map(|s| s["checks"].as_array())
            .flatten()
            .any(|ch| ch["name"] == name && ch["last"].as_str().is_some_and(|l| l != "not run yet" && l != "ok"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_outputs_name_failures_without_their_secrets_and_the_log_keeps_them() {
    // site-b: a command check that fails, with a token in its command line
    // (site-b stays standby, so site-a can still become active).
    let check = "[[checks]]\nname = \"disk-probe\"\nkind = \"command\"\n\
                 target = \"exit 3 # --token check-token-5f1e\"\n\
                 interval = \"200ms\"\ntimeout = \"5s\"\nrise = 1\nfall = 1\n\n"
        .to_owned();
    // site-a: two webhooks that fail, one at a closed port and one at a stub
    // answering 500, both with credentials, a secret path or query and a
    // secret header; and a post_promote hook that fails.
    let failing = HookEndpoint::start(HookReply::Fail).await;
    let stub = failing.url.strip_prefix("http://").expect("stub url");
    let closed = free_port();
    let hooks = format!(
        "[hooks]\npost_promote = \"exit 4 # check-token-5f1e\"\ntimeout = \"5s\"\n\n\
         [actuators]\naddresses = [\"127.0.0.10\"]\n\n\
         [[actuators.webhook]]\nname = \"slack-closed\"\n\
         url = \"https://hook-user:hook-password-77aa@127.0.0.1:{closed}/services/T0SECRET/B0SECRET\"\n\
         timeout = \"1s\"\nheaders = {{ \"Authorization\" = \"Bearer header-bearer-c0ffee\" }}\n\n\
         [[actuators.webhook]]\nname = \"stub-500\"\n\
         url = \"http://hook-user:hook-password-77aa@{stub}?token=query-token-91c3\"\n\
         timeout = \"1s\"\nheaders = {{ \"Authorization\" = \"Bearer header-bearer-c0ffee\" }}\n\n"
    );
    let spec = Spec { extra: vec![("site-a", hooks), ("site-b", check)], ..Spec::default() };
    let c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a did not become active:\n{}", c.log_tail("site-a"));
    assert!(
        c.wait_for(LONG, |c| failed_actuator(c, "site-a", "slack-closed")
            && failed_actuator(c, "site-a", "stub-500")
            && failed_check(c, "site-b", "disk-probe")
            && c.status("site-a").is_some_and(|s| s["hooks"].to_string().contains("post_promote")))
            .await,
        "the failures were not all reported: {:?} {:?}",
        c.status("site-a"),
        c.status("site-b")
    );
    assert!(!failing.calls().is_empty(), "the stub was never called");

    for node in ["site-a", "site-b", "witness"] {
        for path in PUBLIC_PATHS {
            let (_, body) = c.http_get(node, path).await.unwrap_or_else(|| panic!("GET {path} on {node}"));
            for secret in SECRETS {
                assert!(!body.contains(secret), "{secret:?} in {path} of {node}:\n{body}");
            }
        }
    }

    // What is shown: the names, hosts only, status codes and exit codes.
    let (_, a) = c.http_get("site-a", "/actuators").await.expect("/actuators");
    for shown in ["slack-closed", "stub-500", &format!("https://127.0.0.1:{closed}/…"), "HTTP 500"] {
        assert!(a.contains(shown), "{shown:?} not in /actuators:\n{a}");
    }
    let (_, b) = c.http_get("site-b", "/status").await.expect("/status");
    assert!(b.contains("disk-probe") && b.contains("exit status: 3"), "the check is not named in /status:\n{b}");
    let (_, a) = c.http_get("site-a", "/status").await.expect("/status");
    assert!(a.contains("post_promote") && a.contains("exit status: 4"), "the hook is not named in /status:\n{a}");

    // The daemon's own log keeps the detail.
    let log_a = c.log("site-a");
    for detail in ["T0SECRET/B0SECRET", "query-token-91c3"] {
        assert!(log_a.contains(detail), "{detail:?} not in site-a's log:\n{}", c.log_tail("site-a"));
    }
    assert!(c.log("site-b").contains("check-token-5f1e"), "the command line is not in site-b's log");
}

/// A hook run as another user (`hooks.run_as = "nobody"`) cannot read the
/// admin token: neither from the daemon's environment, where
/// `FAILOVER_ADMIN__TOKEN` holds it (`/proc/$PPID/environ`), nor from the
/// token file, mode 0640 as deploy/ installs it. The hook runs (it records
/// its user) and writes what it could read where anyone may write.
#[tokio::test(flavor = "multi_thread")]
async fn a_hook_run_as_another_user_cannot_read_the_admin_token() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let token_file = scratch.path().join("admin-token");
    let out = scratch.path().join("hook-saw");
    // The harness's token, so that failoverctl still works.
    let token = "e2e-test-token";
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o640)).expect("chmod token");
    std::fs::write(&out, "").expect("out");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).expect("chmod out");
    let hook = format!(
        "{{ id -u; cat /proc/$PPID/environ; cat {}; echo hook-ran; }} >> {} 2>&1",
        token_file.display(),
        out.display()
    );
    let spec = Spec {
        extra: vec![("site-a", format!("[hooks]\npost_promote = {hook:?}\nrun_as = \"nobody\"\ntimeout = \"10s\"\n"))],
        owned_edits: vec![(
            "site-a",
            format!("[admin]\ntoken = \"{token}\"\n"),
            format!("[admin]\ntoken_file = \"{}\"\n", token_file.display()),
        )],
        env: vec![("site-a", "FAILOVER_ADMIN__TOKEN", token.to_owned())],
        ..Spec::default()
    };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let ran = c.wait_for(LONG, |_| std::fs::read_to_string(&out).is_ok_and(|t| t.contains("hook-ran"))).await;
    let saw = std::fs::read_to_string(&out).expect("read what the hook saw");
    assert!(ran, "post_promote never finished; it wrote {saw:?}\n{}", c.log_tail("site-a"));
    assert!(saw.starts_with("65534\n"), "the hook did not run as nobody: {saw:?}");
    assert!(!saw.contains(token), "the hook read the admin token: {saw:?}");
    assert_eq!(saw.matches("Permission denied").count(), 2, "both reads should be refused: {saw:?}");
    // The daemon itself still has it: an authenticated call works.
    let paused = c.ctl("site-a", &["pause"]);
    assert!(paused.status.success(), "{}", String::from_utf8_lossy(&paused.stderr));
}

/// Without `hooks.run_as` a hook runs as the daemon's own user. The daemon
/// makes itself non-dumpable, so even then the hook cannot read the
/// daemon's environment, where `FAILOVER_ADMIN__TOKEN` holds the token
/// (`/proc/$PPID/environ`). site-a's daemon runs as `nobody` here: the test
/// runs as root, and root may read any process.
#[tokio::test(flavor = "multi_thread")]
async fn a_hook_of_the_daemons_own_user_cannot_read_the_daemons_environment() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = scratch.path().join("hook-saw");
    std::fs::write(&out, "").expect("out");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).expect("chmod out");
    let token = "e2e-test-token";
    let hook = format!(
        "{{ id -u; stat -c %u /proc/$PPID/status; cat /proc/$PPID/environ; echo hook-ran; }} >> {} 2>&1",
        out.display()
    );
    let spec = Spec {
        extra: vec![("site-a", format!("[hooks]\npost_promote = {hook:?}\ntimeout = \"10s\"\n"))],
        env: vec![("site-a", "FAILOVER_ADMIN__TOKEN", token.to_owned())],
        daemon_user: Some(("site-a", 65534, 65534)),
        ..Spec::default()
    };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let ran = c.wait_for(LONG, |_| std::fs::read_to_string(&out).is_ok_and(|t| t.contains("hook-ran"))).await;
    let saw = std::fs::read_to_string(&out).expect("read what the hook saw");
    assert!(ran, "post_promote never finished; it wrote {saw:?}\n{}", c.log_tail("site-a"));
    // The hook ran as the daemon's user; the daemon's /proc entries belong
    // to root, as they do for a non-dumpable process.
    assert!(saw.starts_with("65534\n0\n"), "not the daemon's user, or the daemon is dumpable: {saw:?}");
    assert!(!saw.contains(token), "the hook read the daemon's environment: {saw:?}");
    assert!(saw.contains("Permission denied"), "{saw:?}");
}
