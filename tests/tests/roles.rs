//! What each role answers on `/standby` and `/readyz`, and the hooks that
//! follow a site's role and health (`on_standby`, `on_pending`, `on_fault`),
//! on the real binaries on 127.0.0.1. Waits are conditions with generous
//! deadlines.

use std::path::Path;
use std::time::{Duration, Instant};

use failover_tests::cluster::{Spec, TestCluster};

const LONG: Duration = Duration::from_secs(30);

fn ok(out: &std::process::Output) -> bool {
    out.status.success()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits (up to [`LONG`]) until `node` answers `path` with `code` and a body
/// holding `body`; the last answer otherwise.
async fn answers(c: &TestCluster, node: &str, path: &str, code: u16, body: &str) -> Result<(), Option<(u16, String)>> {
    let deadline = Instant::now() + LONG;
    let mut last = None;
    while Instant::now() < deadline {
        last = c.http_get(node, path).await;
        if last.as_ref().is_some_and(|(got, text)| *got == code && text.contains(body)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// Asserts that `node` comes to answer `path` with `code` and `body`.
async fn assert_answers(c: &TestCluster, node: &str, path: &str, code: u16, body: &str) {
    if let Err(last) = answers(c, node, path, code, body).await {
        panic!("{node} {path}: expected {code} {body:?}, last answer {last:?}\n{}", c.log_tail(node));
    }
}

/// Each role's answers: the active site is ready and no standby; a healthy
/// standby is both; the witness is ready and never a standby; a standby in
/// maintenance or with failing checks is ready but no standby; a standby
/// that hears no majority and no active site is neither.
#[tokio::test(flavor = "multi_thread")]
async fn standby_and_readyz_answer_as_documented_in_each_role() {
    let spec = Spec { file_health_checks: true, ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    assert_answers(&c, "site-a", "/standby", 503, "not standby: this site is active, not standby").await;
    assert_answers(&c, "site-a", "/readyz", 200, "ready").await;
    assert_answers(&c, "site-b", "/standby", 200, "standby").await;
    assert_answers(&c, "site-b", "/readyz", 200, "ready").await;
    assert_answers(&c, "witness", "/standby", 503, "not standby: a witness serves no traffic").await;
    assert_answers(&c, "witness", "/readyz", 200, "ready").await;

    let out = c.ctl("witness", &["maintenance", "on", "--site", "site-b", "--reason", "kernel update"]);
    assert!(ok(&out), "maintenance refused: {}", stderr(&out));
    assert_answers(&c, "site-b", "/standby", 503, "not standby: this site is in maintenance").await;
    assert_answers(&c, "site-b", "/readyz", 200, "ready").await;
    let out = c.ctl("witness", &["maintenance", "off", "--site", "site-b"]);
    assert!(ok(&out), "maintenance off refused: {}", stderr(&out));
    assert_answers(&c, "site-b", "/standby", 200, "standby").await;

    c.set_unhealthy("site-b", true);
    assert_answers(&c, "site-b", "/standby", 503, "not standby: this site is unhealthy").await;
    assert_answers(&c, "site-b", "/readyz", 200, "ready").await;
    c.set_unhealthy("site-b", false);
    assert_answers(&c, "site-b", "/standby", 200, "standby").await;

    // Without the witness and site-a, site-b hears one vote of three and
    // no active site: neither ready nor a standby to send traffic to.
    c.kill9("witness");
    c.kill9("site-a");
    assert_answers(&c, "site-b", "/readyz", 503, "not ready: hears from fewer than a majority of votes").await;
    assert_answers(&c, "site-b", "/standby", 503, "not standby: ").await;
    // The witness back: site-b wins the election; active, it is ready and
    // no standby.
    c.spawn("witness");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    assert_answers(&c, "site-b", "/readyz", 200, "ready").await;
    assert_answers(&c, "site-b", "/standby", 503, "not standby: this site is active, not standby").await;
}

/// The environment each of `on_standby`, `on_pending` and `on_fault` ran
/// with on `site` for `epoch`, as written by the hook (empty if it never
/// ran): hook, site, epoch, reason, `FAILOVER_TO`, `FAILOVER_ACTIVE`.
fn seen(dir: &Path, site: &str, hook: &str, epoch: u64) -> [String; 6] {
    let text = std::fs::read_to_string(dir.join(format!("{site}.{hook}.{epoch}"))).unwrap_or_default();
    let var = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned).unwrap_or_default()
    };
    ["FAILOVER_HOOK", "FAILOVER_SITE", "FAILOVER_EPOCH", "FAILOVER_REASON", "FAILOVER_TO", "FAILOVER_ACTIVE"].map(var)
}

/// Asserts that `hook` comes to have run on `site` for `epoch` with
/// `expected` (as [`seen`] reads it).
async fn assert_ran(c: &TestCluster, dir: &Path, (site, hook, epoch): (&str, &str, u64), expected: [String; 6]) {
    let ran = c.wait_for(LONG, |_| seen(dir, site, hook, epoch) == expected).await;
    assert!(ran, "{site} {hook} at epoch {epoch}: {:?}, not {expected:?}", seen(dir, site, hook, epoch));
}

fn expect(hook: &str, site: &str, epoch: u64, reason: &str, to: &str, active: &str) -> [String; 6] {
    [hook, site, &epoch.to_string(), reason, to, active].map(str::to_owned)
}

/// A manual-mode cluster: site-b runs `on_standby` at start; site-a runs it
/// after a switchover hands its role to site-b; site-a's checks failing
/// run its `on_fault`; with site-b killed, site-a raises the proposal to
/// take over and runs `on_pending`. Each with the documented environment.
#[tokio::test(flavor = "multi_thread")]
async fn on_standby_on_pending_and_on_fault_run_with_the_documented_environment() {
    let out = tempfile::tempdir().expect("tempdir");
    let shown = out.path().display().to_string();
    let hooks = |site: &str| {
        let record = |hook: &str| format!("env > {shown}/{site}.{hook}.$FAILOVER_EPOCH");
        format!(
            "[hooks]\non_standby = {:?}\non_pending = {:?}\non_fault = {:?}\ntimeout = \"5s\"\n",
            record("on_standby"),
            record("on_pending"),
            record("on_fault")
        )
    };
    let spec = Spec {
        manual: true,
        file_health_checks: true,
        extra: vec![("site-a", hooks("site-a")), ("site-b", hooks("site-b"))],
        ..Spec::default()
    };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    let first = c.epoch("site-a").expect("epoch");
    let dir = out.path();
    let at_start = expect("on_standby", "site-b", first, "start", "", "site-a");
    assert_ran(&c, dir, ("site-b", "on_standby", first), at_start).await;

    let ready = c.ctl("site-a", &["wait", "--ready", "site-b", "--timeout", "60s"]);
    assert!(ok(&ready), "{}", stderr(&ready));
    let moved = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(ok(&moved), "switchover refused: {}", stderr(&moved));
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    let second = c.epoch("site-b").expect("epoch");
    let handed_over = expect("on_standby", "site-a", second, "handing_off", "", "site-b");
    assert_ran(&c, dir, ("site-a", "on_standby", second), handed_over).await;

    let ready = |c: &TestCluster| c.ctl("site-b", &["wait", "--ready", "site-a", "--timeout", "60s"]);
    let waited = ready(&c);
    assert!(ok(&waited), "site-a never ready: {}", stderr(&waited));
    c.set_unhealthy("site-a", true);
    let fault = expect("on_fault", "site-a", second, "checks_failed", "", "site-b");
    assert_ran(&c, dir, ("site-a", "on_fault", second), fault).await;
    c.set_unhealthy("site-a", false);
    let waited = ready(&c);
    assert!(ok(&waited), "site-a never ready again: {}", stderr(&waited));

    // The proposal is raised on site-a, which would take over; site-b's
    // lease has run out by then, so no site is active (FAILOVER_ACTIVE
    // unset) and the epoch is the last one site-a knew.
    c.kill9("site-b");
    let pending = expect("on_pending", "site-a", second, "manual_mode", "site-a", "");
    assert_ran(&c, dir, ("site-a", "on_pending", second), pending).await;
    assert_ne!(c.role("site-a").as_deref(), Some("active"), "site-a moved without approval");
}
