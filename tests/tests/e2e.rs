//! End-to-end tests: the real `failover-controller`, `failover-witness` and
//! `failoverctl` binaries as separate processes on 127.0.0.1, talking real
//! gRPC through fault-injecting proxies. A prober samples both sites'
//! `/active` every 10 ms throughout each test and fails it on any sample
//! where both answer 200. Waits are conditions with generous deadlines.

use std::time::Duration;

use failover_tests::cluster::{assert_configs_refused, bin_dir, into_closed_pipe, Spec, TestCluster, NODES};

const LONG: Duration = Duration::from_secs(30);

fn ok(out: &std::process::Output) -> bool {
    out.status.success()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wall-clock time `secs` from now, as `failoverctl switchover --at` takes it.
fn soon(secs: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_of_the_active_site_fails_over_to_the_other() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    c.assert_kill9_of_site_a_fails_over_to_site_b().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn isolated_active_site_stops_before_the_other_starts() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    c.isolate("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    assert!(c.wait_for(LONG, |c| c.role("site-a").as_deref() != Some("active")).await);
    // Heal: site-a must follow site-b, never grant or claim twice.
    c.heal();
    assert!(c.wait_for(LONG, |c| c.active_seen_by("site-a").as_deref() == Some("site-b")).await);
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_between_sites_with_witness_seeing_both_changes_nothing() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-a");
    c.cut("site-a", "site-b");
    // Five leases: any flap would show in the prober or change the epoch.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    assert_eq!(c.epoch("site-a"), epoch, "the active site changed or flapped");
    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn witness_down_changes_nothing() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-a");
    c.kill9("witness");
    tokio::time::sleep(Duration::from_millis(7500)).await;
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    assert_eq!(c.epoch("site-a"), epoch);
    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn planned_switchover_both_ways_through_any_node() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    // Sent to the witness: forwarded to the active site.
    let out = c.ctl("witness", &["switchover", "--to", "site-b"]);
    assert!(ok(&out), "switchover refused: {}", stderr(&out));
    assert_eq!(stdout(&out), "switchover to site-b started (by site-a)\n");
    assert!(c.wait_active("site-b").await);
    let out = c.ctl("site-a", &["switchover", "--to", "site-a"]);
    assert!(ok(&out), "switchover back refused: {}", stderr(&out));
    assert!(c.wait_active("site-a").await);
    prober.stop().await.assert_never_two_active();
}

/// The number logged after `field` on the line saying the start-up code
/// was unmapped (human or JSON log).
fn logged_kib(log: &str, field: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("start-up code unmapped"))?;
    let after = &line[line.find(field)? + field.len()..];
    let digits: String = after.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_daemon_unmaps_code_after_start_up_and_after_a_switchover() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let unmapped = |c: &TestCluster| NODES.iter().all(|n| logged_kib(&c.log(n), "resident_kib_after").is_some());
    assert!(c.wait_for(LONG, unmapped).await, "no daemon said it unmapped its code:\n{}", c.log_tail("witness"));
    for node in NODES {
        let log = c.log(node);
        let (before, after) = (logged_kib(&log, "resident_kib_before"), logged_kib(&log, "resident_kib_after"));
        assert!(matches!((before, after), (Some(b), Some(a)) if a < b), "{node}: before {before:?}, after {after:?}");
    }
    // Code not run since (a switchover's) is mapped again as it runs.
    let out = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(ok(&out), "switchover refused: {}", stderr(&out));
    assert!(c.wait_active("site-b").await, "switchover never completed:\n{}", c.log_tail("site-a"));
    // Once the change has settled (a minute), each node unmaps the code it
    // ran, and runs on.
    let settled =
        |c: &TestCluster| NODES.iter().all(|n| c.log(n).contains("code run by the last role change unmapped"));
    assert!(
        c.wait_for(Duration::from_secs(180), settled).await,
        "a node did not unmap after the switchover:\n{}",
        c.log_tail("site-a")
    );
    assert!(c.wait_active("site-b").await, "site-b lost its role:\n{}", c.log_tail("site-b"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_mode_fails_over_only_after_approve() {
    let mut c = TestCluster::start_with_site_a_active(Spec { manual: true, ..Spec::default() }).await;
    let prober = c.prober();
    c.kill9("site-a");
    let proposed = c
        .wait_for(LONG, |c| {
            c.status("witness").and_then(|s| s.get("pending_failover").cloned()).is_some_and(|p| !p.is_null())
        })
        .await;
    assert!(proposed, "no pending failover reported");
    assert_ne!(c.role("site-b").as_deref(), Some("active"), "site-b moved without approval");
    let out = c.ctl("witness", &["approve"]);
    assert!(ok(&out), "approve refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("approved the failover to site-b"), "{}", stdout(&out));
    assert!(c.wait_active("site-b").await);
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_holds_failover_until_resume() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let out = c.ctl("site-b", &["pause"]);
    assert!(ok(&out), "pause refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("paused automatic actions cluster-wide"), "{}", stdout(&out));
    assert!(c.wait_for(LONG, |c| c.status("site-b").and_then(|s| s["paused"].as_bool()) == Some(true)).await);
    assert!(c.wait_for(LONG, |c| c.status("site-a").and_then(|s| s["paused"].as_bool()) == Some(true)).await);
    let out = c.ctl("site-b", &["pause"]);
    assert!(ok(&out), "second pause refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("paused automatic actions cluster-wide (already paused)"), "{}", stdout(&out));
    let prober = c.prober();
    c.kill9("site-a");
    // Over three leases and more, site-b must never answer 200.
    tokio::time::sleep(Duration::from_secs(5)).await;
    prober.snapshot().assert_only_active(&[c.active_url("site-a")]);
    let out = c.ctl("site-b", &["resume"]);
    assert!(ok(&out), "resume refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("resumed automatic actions cluster-wide"), "{}", stdout(&out));
    assert!(c.wait_active("site-b").await);
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_answers_once_every_node_holds_it_so_the_active_site_may_die_the_next_moment() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    // Taken by the active site, which dies the moment failoverctl returns:
    // site-b and the witness must hold the pause already.
    let out = c.ctl("site-a", &["pause"]);
    c.kill9("site-a");
    assert!(ok(&out), "pause refused: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "paused automatic actions cluster-wide (by site-a)");
    let waits = |c: &TestCluster| {
        c.status("site-b").is_some_and(|s| s["pending_failover"]["target"] == "site-b" && s["paused"] == true)
    };
    assert!(c.wait_for(LONG, waits).await, "no pending failover:\n{}", c.log_tail("site-b"));
    // The history is the cluster's: site-a's own election is in it.
    let history = stdout(&c.ctl("site-b", &["history"]));
    let ran = history.lines().any(|l| l.contains(" site-b#") && l.contains("elected"));
    assert!(!ran, "site-b ran for election while paused:\n{history}");
    prober.snapshot().assert_only_active(&[c.active_url("site-a")]);
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_in_maintenance_takes_nothing_over_until_it_ends_and_the_setting_survives_restarts() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let out = c.ctl("site-b", &["maintenance", "on", "--site", "site-a"]);
    assert!(!ok(&out), "maintenance of the active site accepted");
    assert!(stderr(&out).contains("failoverctl switchover --to site-b"), "{}", stderr(&out));
    let out = c.ctl("site-a", &["maintenance", "on", "--site", "site-b", "--reason", "two\nlines"]);
    assert!(!ok(&out), "a reason with a newline accepted");
    assert!(stderr(&out).contains("control character"), "{}", stderr(&out));
    let out = c.ctl("witness", &["maintenance", "on", "--site", "site-b", "--reason", "kernel update"]);
    assert!(ok(&out), "maintenance refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("site-b is in maintenance"), "{}", stdout(&out));

    // Every node restarts from its state file: the setting and its note
    // come back with them.
    for n in NODES {
        c.kill9(n);
    }
    for n in ["witness", "site-b", "site-a"] {
        c.spawn(n);
    }
    assert!(c.wait_active("site-a").await, "site-a did not come back:\n{}", c.log_tail("site-a"));
    let noted = |c: &TestCluster, node| {
        c.status_doc(node).is_some_and(|d| {
            d.maintenance.iter().any(|m| {
                m.site == "site-b"
                    && m.by.as_deref() == Some("witness")
                    && m.reason.as_deref() == Some("kernel update")
                    && m.since.as_deref().is_some_and(|t| humantime::parse_rfc3339(t).is_ok())
            })
        })
    };
    for node in NODES {
        assert!(c.wait_for(LONG, |c| noted(c, node)).await, "{node} lost the setting:\n{:?}", c.status(node));
    }
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    assert!(metrics.contains("failover_site_maintenance{site=\"site-b\"} 1"), "{metrics}");
    assert!(metrics.contains("failover_site_maintenance{site=\"site-a\"} 0"), "{metrics}");
    let status = stdout(&c.ctl("site-b", &["status"]));
    assert!(status.contains("MAINTENANCE: site-b (by witness, since "), "{status}");
    assert!(status.contains("kernel update"), "{status}");
    let out = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(!ok(&out), "a switchover to a site in maintenance accepted");
    assert!(stderr(&out).contains("in maintenance"), "{}", stderr(&out));

    // The active site dies: nothing moves, the proposal says why, approval
    // is refused with that reason.
    let prober = c.prober();
    c.kill9("site-a");
    let waits = |c: &TestCluster| {
        c.status_doc("site-b")
            .and_then(|d| d.pending_failover)
            .is_some_and(|p| p.target == "site-b" && p.reason.starts_with("the target is in maintenance"))
    };
    assert!(c.wait_for(LONG, waits).await, "no pending failover:\n{}", c.log_tail("site-b"));
    let out = c.ctl("site-b", &["approve"]);
    assert!(!ok(&out), "approval of a failover to a site in maintenance accepted");
    assert!(stderr(&out).contains("site-b is in maintenance"), "{}", stderr(&out));
    // The witness shows the proposal once site-b's next heartbeat carries it.
    let says_how = |c: &TestCluster| stdout(&c.ctl("witness", &["status"])).contains("maintenance off --site site-b");
    assert!(c.wait_for(LONG, says_how).await, "{}", stdout(&c.ctl("witness", &["status"])));
    // Over three leases and more, site-b must never answer 200.
    tokio::time::sleep(Duration::from_secs(5)).await;
    prober.snapshot().assert_only_active(&[c.active_url("site-a")]);

    // Maintenance ends: the failover proceeds.
    let out = c.ctl("witness", &["maintenance", "off", "--site", "site-b"]);
    assert!(ok(&out), "maintenance off refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("maintenance of site-b ended"), "{}", stdout(&out));
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_reachable_holds_until_the_active_site_hears_the_restarted_witness() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let out = c.ctl("site-a", &["wait", "--reachable", "witness", "--timeout", "20s"]);
    assert!(ok(&out), "{}", stderr(&out));
    c.kill9("witness");
    let out = c.ctl("site-a", &["wait", "--reachable", "witness", "--timeout", "5s"]);
    assert!(!ok(&out), "a dead witness counted as reachable");
    assert!(stderr(&out).contains("the active site site-a does not hear witness"), "{}", stderr(&out));
    c.spawn("witness");
    let out = c.ctl("site-a", &["wait", "--reachable", "witness", "--timeout", "30s"]);
    assert!(ok(&out), "{}", stderr(&out));
    let out = c.ctl("site-a", &["wait", "--reachable", "nobody", "--timeout", "1s"]);
    assert!(stderr(&out).contains("nobody is not a member"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_restarts_from_persisted_state() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-a").expect("epoch");
    for n in ["site-a", "site-b", "witness"] {
        c.kill9(n);
    }
    for n in ["witness", "site-b", "site-a"] {
        c.spawn(n);
    }
    assert!(c.wait_active("site-a").await, "site-a did not come back:\n{}", c.log_tail("site-a"));
    // Its state file says it won the current term: it takes the role back
    // in place, in that term (a node that had lost its file could not).
    assert_eq!(c.epoch("site-a"), Some(epoch), "the role did not resume from disk");
    assert!(c.log("site-a").contains("active again with epoch"), "not a restart in place:\n{}", c.log_tail("site-a"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_pre_promote_hook_makes_site_a_decline() {
    let c = TestCluster::start(Spec { site_a_pre_promote: Some("exit 1".into()), ..Spec::default() }).await;
    let prober = c.prober();
    assert!(c.wait_active("site-b").await, "site-b should be active:\n{}", c.log_tail("site-a"));
    let hooks = c.status("site-a").map(|s| s["hooks"].to_string()).unwrap_or_default();
    assert!(hooks.contains("pre_promote") && hooks.contains("false"), "hook outcome not shown: {hooks}");
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_the_active_site_hands_over_first_with_on_stop_hand_over() {
    let hand_over = ("site-a", "state_dir = ", "on_stop = \"hand_over\"\nstate_dir = ");
    let mut c = TestCluster::start_with_site_a_active(Spec { edits: vec![hand_over], ..Spec::default() }).await;
    let prober = c.prober();
    assert!(c.sigterm("site-a"), "site-a did not exit cleanly:\n{}", c.log_tail("site-a"));
    assert!(c.wait_active("site-b").await);
    let history = c.ctl("site-b", &["history"]);
    assert!(String::from_utf8_lossy(&history.stdout).contains("(handoff)"), "not a handoff");
    prober.stop().await.assert_never_two_active();
}

/// The default (`node.on_stop = "keep_role"`), and `hand_over` while the
/// cluster is paused: a stop and start of the active site's daemon (as
/// `systemctl restart` does) keeps the role and the epoch; the other site
/// never answers 200.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_of_the_active_daemon_keeps_the_role_by_default_and_while_paused() {
    // A lease of 3 s, as in production: the time a restart has to come back.
    let mut edits: Vec<_> = NODES.iter().map(|&n| (n, "lease = \"1500ms\"", "lease = \"3s\"")).collect();
    edits.push(("site-b", "state_dir = ", "on_stop = \"hand_over\"\nstate_dir = "));
    // Health checks that take a while to pass after a start: the restarted
    // site must not hand over before they have run.
    for site in ["site-a", "site-b"] {
        edits.push((site, "interval = \"100ms\"", "interval = \"400ms\""));
        edits.push((site, "rise = 1", "rise = 3"));
    }
    let spec = Spec { edits, file_health_checks: true, ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    let epoch = c.epoch("site-a").expect("epoch");
    let prober = c.prober();
    assert!(c.sigterm("site-a"), "site-a did not exit cleanly:\n{}", c.log_tail("site-a"));
    assert!(c.log("site-a").contains("keeping the active role"), "{}", c.log_tail("site-a"));
    c.spawn("site-a");
    assert!(
        c.wait_for(Duration::from_secs(30), |c| c.role("site-a").as_deref() == Some("active")).await,
        "site-a did not take its role back:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(c.epoch("site-a"), Some(epoch), "the role moved");
    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);

    // Site-b stops by handing over; paused, nothing moves, even so.
    let out = c.ctl("site-a", &["wait", "--ready", "site-b"]);
    assert!(out.status.success(), "site-b never ready: {}", String::from_utf8_lossy(&out.stderr));
    let out = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(out.status.success(), "switchover refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-b").await, "switchover never completed:\n{}", c.log_tail("site-a"));
    let epoch = c.epoch("site-b").expect("epoch");
    let out = c.ctl("site-b", &["pause"]);
    assert!(out.status.success(), "pause refused: {}", String::from_utf8_lossy(&out.stderr));
    let prober = c.prober();
    assert!(c.sigterm("site-b"), "site-b did not exit cleanly:\n{}", c.log_tail("site-b"));
    c.spawn("site-b");
    assert!(
        c.wait_for(Duration::from_secs(30), |c| c.role("site-b").as_deref() == Some("active")).await,
        "site-b did not take its role back:\n{}",
        c.log_tail("site-b")
    );
    assert_eq!(c.epoch("site-b"), Some(epoch), "a stop while paused moved the role");
    prober.stop().await.assert_only_active(&[c.active_url("site-b")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_switchover_survives_a_kill9_and_restart_of_the_active_daemon() {
    // A lease of 3 s, as in production: the time a restart has to come back.
    let edits = NODES.iter().map(|&n| (n, "lease = \"1500ms\"", "lease = \"3s\"")).collect();
    let mut c = TestCluster::start_with_site_a_active(Spec { edits, ..Spec::default() }).await;
    let epoch = c.epoch("site-a").expect("epoch");
    let out = c.ctl("site-a", &["wait", "--ready", "site-b"]);
    assert!(ok(&out), "site-b never ready: {}", stderr(&out));
    let at = soon(10);
    let out = c.ctl("site-a", &["switchover", "--to", "site-b", "--at", &at]);
    assert!(ok(&out), "switchover refused: {}", stderr(&out));
    let prober = c.prober();
    c.kill9("site-a");
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.spawn("site-a");
    let resumed_with_schedule = |c: &TestCluster| {
        c.status_doc("site-a").is_some_and(|d| {
            d.role == "active" && d.scheduled_switchover.as_ref().is_some_and(|s| s.to == "site-b" && s.at == at)
        })
    };
    assert!(
        c.wait_for(LONG, resumed_with_schedule).await,
        "site-a did not come back active with its schedule:\n{:?}\n{}\n{}",
        c.status("site-a"),
        stdout(&c.ctl("site-a", &["history"])),
        c.log_tail("site-a")
    );
    assert_eq!(c.epoch("site-a"), Some(epoch), "the role moved at the restart");
    assert!(c.wait_active("site-b").await, "the scheduled switchover never happened:\n{}", c.log_tail("site-a"));
    assert!(c.epoch("site-b").expect("epoch") > epoch);
    let history = stdout(&c.ctl("site-a", &["history"]));
    assert!(history.contains("handing over to site-b: Switchover"), "{history}");
    assert!(!history.contains("cancelled"), "{history}");
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn unhealthy_active_site_hands_over() {
    let c = TestCluster::start_with_site_a_active(Spec { file_health_checks: true, ..Spec::default() }).await;
    let prober = c.prober();
    c.set_unhealthy("site-a", true);
    assert!(c.wait_active("site-b").await, "no handover:\n{}", c.log_tail("site-a"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_calls_without_a_valid_token_are_refused() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    for token in [None, Some("wrong")] {
        let out = c.ctl_with_token("site-a", token, &["pause"]);
        assert!(!ok(&out));
        assert!(stderr(&out).contains("token"), "unclear refusal: {}", stderr(&out));
    }
    assert_eq!(c.status("site-a").and_then(|s| s["paused"].as_bool()), Some(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_bad_tokens_get_401_then_429_logged_by_source_in_few_lines_and_never_hold_back_the_good_token() {
    // A short window, so that the test sees it pass; the default is a minute.
    let spec = Spec { edits: vec![("site-a", "[admin]\n", "[admin]\nrefusal_window = \"20s\"\n")], ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        let (code, _) = c.http_post("site-a", "/admin/pause", Some("wrong"), "{}").await.expect("site-a answers");
        codes.push(code);
    }
    assert_eq!(codes, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429], "answers to ten bad tokens");
    let (code, body) = c.http_post("site-a", "/admin/pause", None, "{}").await.expect("site-a answers");
    assert_eq!(code, 429, "no token at all is a bad call too: {body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    // Within the window the good token from the same address goes through.
    let (code, body) = c.http_post("site-a", "/admin/pause", Some(&c.token), "{}").await.expect("site-a answers");
    assert_eq!(code, 200, "the good token after ten bad ones: {body}");
    assert!(c.wait_for(LONG, |c| c.status("site-a").and_then(|s| s["paused"].as_bool()) == Some(true)).await);
    // It did not clear the record of the bad ones.
    let (code, body) = c.http_post("site-a", "/admin/resume", Some("wrong"), "{}").await.expect("site-a answers");
    assert_eq!(code, 429, "{body}");
    let refused = |c: &TestCluster| {
        c.log("site-a").lines().filter(|l| l.contains("admin call refused")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(c.wait_for(LONG, |c| !refused(c).is_empty()).await, "no refusal logged:\n{}", c.log_tail("site-a"));
    let lines = refused(&c);
    assert!(lines.iter().all(|l| l.contains("127.0.0.1:")), "a line without the source: {lines:?}");
    // Twelve refusals; one line per 10 s, so at most a few whatever the pace.
    assert!(lines.len() <= 3, "{} lines for 12 refusals: {lines:?}", lines.len());
    assert_eq!(c.status("site-a").and_then(|s| s["paused"].as_bool()), Some(true));
    // Once the window has passed, a bad token gets 401 again.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut last = (0, String::new());
    while std::time::Instant::now() < deadline {
        last = c.http_post("site-a", "/admin/resume", Some("wrong"), "{}").await.expect("site-a answers");
        if last.0 != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(last.0, 401, "a bad token after the window: {}", last.1);
    assert_eq!(c.status("site-a").and_then(|s| s["paused"].as_bool()), Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_does_not_forward_a_token_over_http_but_names_the_active_site_which_failoverctl_calls() {
    let spec =
        Spec { edits: vec![("witness", "[admin]\n", "[admin]\nforward_token_over_http = true\n")], ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let site_a = c.http_address("site-a").to_string();
    let scheduled = |c: &TestCluster| c.status("site-a").is_some_and(|s| s["scheduled_switchover"].is_object());
    // Only the active site schedules a switchover. site-b keeps the
    // default: it does not send the token on.
    let switchover = serde_json::json!({ "to": "site-b", "at": soon(3600) }).to_string();
    let (code, body) =
        c.http_post("site-b", "/admin/switchover", Some(&c.token), &switchover).await.expect("site-b answers");
    assert_eq!(code, 421, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["carried_out_by"]["node"], "site-a", "{body}");
    assert_eq!(v["carried_out_by"]["http_address"], site_a.as_str(), "{body}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("forward_token_over_http")), "{body}");
    assert!(!scheduled(&c), "site-b forwarded it");
    // failoverctl, given site-b only, calls site-a itself.
    let out = c.ctl("site-b", &["switchover", "--to", "site-b", "--at", &soon(3600)]);
    assert!(ok(&out), "switchover through site-b: {}", stderr(&out));
    assert!(stderr(&out).contains("calling site-a"), "{}", stderr(&out));
    assert!(scheduled(&c), "failoverctl did not reach site-a");
    // The witness is allowed to forward: it does, and answers 200 itself.
    let (code, body) =
        c.http_post("witness", "/admin/cancel-switchover", Some(&c.token), "{}").await.expect("witness answers");
    assert_eq!(code, 200, "{body}");
    assert!(!scheduled(&c), "the cancel forwarded by the witness did not reach site-a");
    // Both peer links run without TLS here, and say so.
    assert_eq!(c.status("site-a").map(|s| s["peer_authentication"].clone()), Some("none".into()));
    let out = c.ctl("site-a", &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PEERS UNAUTHENTICATED"), "{out:?}");
    assert!(c.log("site-a").contains("PEERS UNAUTHENTICATED"), "no warning at start");
}

#[test]
fn bad_config_files_give_a_clear_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = "[node]\nname = \"site-a\"\nstate_dir = \"/tmp/x\"\n[admin]\nallow_without_token = true\n\
        [cluster]\nname = \"test\"\nallow_unauthenticated_peers = true\nheartbeat_interval = \"100ms\"\nlease = \"1s\"\n\
        [[members]]\nname = \"site-a\"\nkind = \"site\"\npriority = 2\npeer_address = \"127.0.0.1:1\"\nhttp_address = \"127.0.0.1:2\"\n\
        [[members]]\nname = \"witness\"\nkind = \"witness\"\npeer_address = \"127.0.0.1:3\"\nhttp_address = \"127.0.0.1:4\"\n";
    let tls = "[tls]\nca_file = \"/nonexistent/ca.pem\"\ncert_file = \"/nonexistent/a.pem\"\nkey_file = \"/nonexistent/a.key\"\n";
    let check = "[[checks]]\nname = \"c\"\nkind = \"command\"\ntarget = \"true\"\n";
    let haproxy = "[actuators]\n[[actuators.haproxy]]\naddress = \"127.0.0.1:9\"\nbackends = [\"app\"]\n\
        servers = { \"site-a\" = \"a\" }\n";
    let cases: [(&str, String, &str); 17] = [
        (
            "no [tls] and no opt-in to unauthenticated peers",
            good.replace("allow_unauthenticated_peers = true\n", ""),
            "vote and grant leases as any member",
        ),
        (
            "no [tls]: the error says how to fix it",
            good.replace("allow_unauthenticated_peers = true\n", ""),
            "failoverctl certs init",
        ),
        ("unreadable TLS file", format!("{good}{tls}"), "tls.ca_file"),
        ("unknown site id", good.replace("name = \"site-a\"\nstate_dir", "name = \"site-z\"\nstate_dir"), "node.name"),
        ("duplicate ids", good.replace("name = \"witness\"", "name = \"site-a\""), "used twice"),
        ("priority out of range", good.replace("priority = 2", "priority = 5000"), "priority"),
        (
            "lease shorter than two heartbeats",
            good.replace("lease = \"1s\"", "lease = \"150ms\""),
            "twice the heartbeat",
        ),
        (
            "unreadable token file",
            good.replace("allow_without_token = true", "token_file = \"/nonexistent/token\""),
            "admin.token_file",
        ),
        ("no token at all", good.replace("allow_without_token = true", ""), "admin token"),
        ("not TOML", "this is [not toml".to_string(), "line 1"),
        ("check interval 0s", format!("{good}{check}interval = \"0s\"\n"), "checks[0].interval"),
        ("check timeout 0s", format!("{good}{check}timeout = \"0s\"\n"), "checks[0].timeout"),
        ("hook timeout 0s", format!("{good}[hooks]\ntimeout = \"0s\"\n"), "hooks.timeout"),
        (
            "member name with a space",
            good.replace("name = \"site-a\"\nkind", "name = \"site a\"\nkind"),
            "members[0].name",
        ),
        ("duplicate http_address", good.replace("127.0.0.1:4", "127.0.0.1:2"), "members[1].http_address"),
        ("unspecified peer_address", good.replace("127.0.0.1:3", "0.0.0.0:3"), "members[1].peer_address"),
        (
            "command in epoch_variable",
            format!("{good}{haproxy}epoch_variable = \"proc.x; shutdown sessions\"\n"),
            "actuators.haproxy[0].epoch_variable",
        ),
    ];
    assert_configs_refused("failover-controller", dir.path(), &cases);
    // The witness reads the same file rules.
    let witness = good.replace("name = \"site-a\"\nstate_dir", "name = \"witness\"\nstate_dir");
    let witness_cases = [
        (
            "member name with a space",
            witness.replace("name = \"site-a\"\nkind", "name = \"site a\"\nkind"),
            "members[0].name",
        ),
        ("duplicate http_address", witness.replace("127.0.0.1:4", "127.0.0.1:2"), "members[1].http_address"),
        (
            "no [tls] and no opt-in to unauthenticated peers",
            witness.replace("allow_unauthenticated_peers = true\n", ""),
            "cluster.allow_unauthenticated_peers = true",
        ),
    ];
    assert_configs_refused("failover-witness", dir.path(), &witness_cases);
    // Every hook is a site's: the witness refuses each, naming its key.
    let keys = ["pre_promote", "post_promote", "on_demote", "on_standby", "on_pending", "on_fault"];
    let hook_cases: Vec<(&str, String, String)> = keys
        .iter()
        .map(|key| (*key, format!("{witness}[hooks]\n{key} = \"true\"\n"), format!("remove hooks.{key}")))
        .collect();
    let hook_cases: Vec<(&str, String, &str)> =
        hook_cases.iter().map(|(what, text, expect)| (*what, text.clone(), expect.as_str())).collect();
    assert_configs_refused("failover-witness", dir.path(), &hook_cases);
    let bin = bin_dir().join("failover-controller");
    std::fs::write(dir.path().join("good.toml"), good).expect("write");
    let out = std::process::Command::new(&bin)
        .args(["check-config", "--config"])
        .arg(dir.path().join("good.toml"))
        .output()
        .expect("run");
    assert!(out.status.success(), "good config refused: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_switchover_moves_at_its_time_and_can_be_cancelled() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    // A time ten minutes past (a time-zone slip, say) is refused, not run now.
    let past = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(600));
    let out = c.ctl("site-b", &["switchover", "--to", "site-b", "--at", &past.to_string()]);
    assert!(!ok(&out), "a past time was accepted");
    assert!(stderr(&out).contains("in the past") && stderr(&out).contains("leave out --at"), "{}", stderr(&out));
    assert!(c.status("site-a").is_some_and(|s| s["scheduled_switchover"].is_null() && s["role"] == "active"));
    // Scheduled far ahead, then cancelled: nothing moves.
    let at = soon(3600);
    let out = c.ctl("site-b", &["switchover", "--to", "site-b", "--at", &at]);
    assert!(ok(&out), "schedule refused: {}", stderr(&out));
    // Shown as the time given (converted through the node's monotonic
    // clock, so to within a second).
    let near_at = |text: &str| {
        let (shown, given) = (humantime::parse_rfc3339_weak(text), humantime::parse_rfc3339_weak(&at));
        let (Ok(shown), Ok(given)) = (shown, given) else { return false };
        let gap = shown.duration_since(given).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
        gap <= Duration::from_secs(1)
    };
    let shown = c.status("site-a").and_then(|s| s["scheduled_switchover"]["at"].as_str().map(str::to_owned));
    assert!(shown.as_deref().is_some_and(near_at), "{shown:?} is not {at}");
    let history = String::from_utf8_lossy(&c.ctl("site-a", &["history"]).stdout).into_owned();
    let logged = history.split("switchover to site-b scheduled for ").nth(1).and_then(|r| r.split_whitespace().next());
    assert!(logged.is_some_and(near_at), "{history}");
    assert!(stdout(&out).starts_with(&format!("switchover to site-b scheduled for {at}")), "{}", stdout(&out));
    assert!(c.status("site-a").is_some_and(|s| !s["scheduled_switchover"].is_null()));
    // The active site's status shows it; so does another node's when the
    // active site is among the endpoints; else it says where to look.
    let shown = stdout(&c.ctl("site-a", &["status"]));
    assert!(shown.contains(&format!("SCHEDULED SWITCHOVER to site-b at {at} (in ")), "{shown}");
    assert!(shown.contains("CAUGHT-UP"), "{shown}");
    let address = c.http_address("site-a");
    let shown = stdout(&c.ctl("site-b", &["-e", &address.to_string(), "status"]));
    assert!(shown.contains("answered by: site-b"), "{shown}");
    assert!(shown.contains(&format!("SCHEDULED SWITCHOVER to site-b at {at} (in ")), "{shown}");
    let shown = stdout(&c.ctl("site-b", &["status"]));
    assert!(
        shown.contains(&format!(
            "unknown; site-b is not the active site, and only site-a knows whether one is due (failoverctl -e {address}"
        )),
        "{shown}"
    );
    let out = c.ctl("site-b", &["switchover", "--cancel"]);
    assert!(ok(&out), "cancel refused: {}", stderr(&out));
    assert!(stdout(&out).starts_with("cancelled the scheduled switchover to site-b"), "{}", stdout(&out));
    assert!(c.status("site-a").is_some_and(|s| s["scheduled_switchover"].is_null()));
    // Scheduled two seconds ahead: it happens by itself.
    let out = c.ctl("site-b", &["switchover", "--to", "site-b", "--at", &soon(2)]);
    assert!(ok(&out), "schedule refused: {}", stderr(&out));
    assert!(c.wait_active("site-b").await);
    prober.stop().await.assert_never_two_active();
}

async fn metrics(c: &TestCluster, node: &str) -> String {
    let (code, body) = c.http_get(node, "/metrics").await.expect("metrics answer");
    assert_eq!(code, 200);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_prometheus_text_and_tell_who_is_active() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let status = c.status("site-a").expect("status");
    assert_eq!(status["node"], "site-a");
    assert_eq!(status["timers"]["lease_ms"], 1500);
    let a = metrics(&c, "site-a").await;
    assert!(a.contains("failover_active 1"), "{a}");
    assert!(a.contains("# EOF"), "not OpenMetrics text: {a}");
    let b = metrics(&c, "site-b").await;
    assert!(b.contains("failover_active 0"), "{b}");
    assert!(b.contains("failover_peer_reachable{peer=\"site-a\"} 1"), "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forced_failover_recovers_when_no_majority_is_left() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-b").expect("epoch");
    c.kill9("witness");
    c.kill9("site-a");
    // Alone, site-b can never be elected: not once over more than two leases.
    tokio::time::sleep(Duration::from_secs(4)).await;
    prober.snapshot().assert_only_active(&[c.active_url("site-a")]);
    // Without --force the CLI refuses; with it (and --yes) the site takes
    // over once its own grant to site-a has run out.
    let out = c.ctl("site-b", &["failover", "--to", "site-b", "--yes"]);
    assert!(!ok(&out) && stderr(&out).contains("--force"), "{}", stderr(&out));
    // Meanwhile no site is active: site-b's status says so, with the last
    // epoch it knew, and what the unreachable peers last said is unknown.
    assert!(c.wait_for(LONG, |c| c.status("site-b").is_some_and(|s| s["active_site"].is_null())).await);
    let shown = stdout(&c.ctl("site-b", &["status"]));
    assert!(shown.starts_with(&format!("active: none   epoch: - (last known {epoch})")), "{shown}");
    let site_a = shown.lines().find(|l| l.starts_with("site-a ")).unwrap_or_default();
    assert!(site_a.contains("unknown"), "{shown}");
    let mut said = String::new();
    let forced = c
        .wait_for(LONG, |c| {
            let out = c.ctl("site-b", &["failover", "--to", "site-b", "--force", "--yes"]);
            said = stdout(&out);
            ok(&out)
        })
        .await;
    assert!(forced, "forced failover refused:\n{}", c.log_tail("site-b"));
    assert_eq!(said, "forced site-b active without a majority (by site-b)\n");
    assert!(c.wait_active("site-b").await);
    assert!(c.epoch("site-b").expect("epoch") > epoch, "the forced epoch must fence the old site");
    let history = c.ctl("site-b", &["history"]);
    assert!(String::from_utf8_lossy(&history.stdout).contains("FORCED"), "not recorded");
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_cluster_elects_and_fails_over() {
    let mut c = TestCluster::start_with_site_a_active(Spec { tls: true, ..Spec::default() }).await;
    assert_eq!(c.status("site-a").map(|s| s["peer_authentication"].clone()), Some("mutual_tls".into()));
    assert!(!c.log("site-a").contains("PEERS UNAUTHENTICATED"), "warned with TLS on");
    let prober = c.prober();
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "no failover over TLS:\n{}", c.log_tail("site-b"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_an_unknown_node_is_refused() {
    use failover_proto::v1 as pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

    let c = TestCluster::start_with_site_a_active(Spec { tls: true, ..Spec::default() }).await;
    let read = |f: &str| std::fs::read(c.certs_dir().join(f)).expect("cert file");
    // A client with a valid certificate from the cluster CA, issued for
    // "intruder", which is not a member.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("intruder.pem"), read("intruder.key")))
        .domain_name("witness");
    let channel = Endpoint::from_shared(format!("https://{}", c.peer_address("witness")))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("TLS handshake with the cluster CA");
    let mut client = pb::peer_client::PeerClient::new(channel);
    let vote = |from: &str| pb::Envelope {
        from: from.into(),
        cluster: String::new(),
        cluster_name: String::new(),
        body: Some(pb::envelope::Body::Vote(pb::VoteRequest {
            term: 1000,
            report: Some(pb::SiteReport { healthy: true, caught_up: true, sees_quorum: true }),
            approved: true,
            handoff: true,
        })),
    };
    // Claiming to be a member: refused, the certificate does not name it.
    let err = client.deliver(vote("site-b")).await.expect_err("impersonation accepted");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    // Speaking as itself: refused, it is not a configured member.
    let err = client.deliver(vote("intruder")).await.expect_err("unknown node accepted");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    // The cluster is undisturbed.
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    assert!(c.status("witness").and_then(|s| s["term"].as_u64()).is_some_and(|t| t < 1000));
}

/// A node that does not know the active site (restarted while cut off)
/// cannot forward an admin command; failoverctl then tries its next
/// endpoint instead of giving up (the README walkthrough once hit this
/// right after restarting site-a).
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_command_moves_on_from_a_node_that_does_not_know_the_active_site() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    // A switchover scheduled an hour ahead: only the active site can
    // cancel it.
    let out = c.ctl("site-a", &["switchover", "--to", "site-b", "--at", &soon(3600)]);
    assert!(ok(&out), "{}", stderr(&out));
    c.kill9("site-b");
    c.isolate("site-b");
    c.spawn("site-b");
    assert!(
        c.wait_for(Duration::from_secs(30), |c| c.status("site-b").is_some_and(|s| s["active_site"].is_null())).await,
        "the restarted, isolated site-b never answered"
    );
    let ctl = |endpoints: &[&str], args: &[&str]| {
        let list: Vec<String> = endpoints.iter().map(|n| format!("http://{}", c.http_address(n))).collect();
        let mut cmd = std::process::Command::new(bin_dir().join("failoverctl"));
        cmd.arg("--endpoint").arg(list.join(",")).args(args).env("FAILOVERCTL_TOKEN", &c.token);
        tokio::task::block_in_place(|| cmd.output()).expect("run failoverctl")
    };
    // Alone, site-b can only say it does not know.
    let out = ctl(&["site-b"], &["switchover", "--cancel"]);
    assert!(!ok(&out));
    assert!(stderr(&out).contains("not the active site; active: none"), "{}", stderr(&out));
    assert!(c.status("site-a").is_some_and(|s| s["scheduled_switchover"].is_object()));
    // With site-a as the next endpoint, the command goes through.
    let out = ctl(&["site-b", "site-a"], &["switchover", "--cancel"]);
    assert!(ok(&out), "{}", stderr(&out));
    assert!(c.status("site-a").is_some_and(|s| s["scheduled_switchover"].is_null()));
}

/// `wait --ready` right after a standby restarts must not return before a
/// switchover to it would be accepted: the runbook's next line is that
/// switchover. Each round restarts the standby and switches over to it at
/// once, so the active site's view of it is as fresh as it can be.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_standby_is_ready_exactly_when_a_switchover_to_it_is_accepted() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    for (standby, active) in [("site-b", "site-a"), ("site-a", "site-b"), ("site-b", "site-a")] {
        c.kill9(standby);
        c.spawn(standby);
        let ready = c.ctl(active, &["wait", "--ready", standby, "--timeout", "60s"]);
        assert!(ok(&ready), "{standby} never ready: {}", stderr(&ready));
        let out = c.ctl(active, &["switchover", "--to", standby]);
        assert!(ok(&out), "ready, yet the switchover to {standby} was refused: {}", stderr(&out));
        assert!(c.wait_active(standby).await, "{standby} did not take over:\n{}", c.log_tail(standby));
    }
    prober.stop().await.assert_never_two_active();
}

/// What each documented hook variable holds, as the hooks of a real cluster
/// see it: a site's first election, a switchover and a failover.
#[tokio::test(flavor = "multi_thread")]
async fn hooks_see_the_documented_reasons_and_the_site_names() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().display().to_string();
    let hooks = |site: &str| {
        let record = |hook: &str| format!("env > {dir}/{site}.{hook}.$FAILOVER_EPOCH");
        format!(
            "[hooks]\npre_promote = {:?}\npost_promote = {:?}\non_demote = {:?}\ntimeout = \"5s\"\n",
            record("pre_promote"),
            record("post_promote"),
            record("on_demote")
        )
    };
    let spec = Spec { extra: vec![("site-a", hooks("site-a")), ("site-b", hooks("site-b"))], ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    let first = c.epoch("site-a").expect("epoch");
    let ready = c.ctl("site-a", &["wait", "--ready", "site-b"]);
    assert!(ok(&ready), "{}", stderr(&ready));
    assert!(ok(&c.ctl("site-a", &["switchover", "--to", "site-b"])));
    assert!(c.wait_active("site-b").await);
    let second = c.epoch("site-b").expect("epoch");
    // Site-a has heard site-b as active (so site-b is the last site chosen
    // that it knows) before site-b dies: its election is then a failover,
    // not a reclaim of its own role.
    let heard = c.wait_for(LONG, |c| c.status("site-a").is_some_and(|s| s["active_site"] == "site-b")).await;
    assert!(heard, "site-a never heard site-b as active: {:?}", c.status("site-a"));
    c.kill9("site-b");
    assert!(c.wait_active("site-a").await);
    let third = c.epoch("site-a").expect("epoch");
    let env = |site: &str, hook: &str, epoch: u64| {
        let path = out.path().join(format!("{site}.{hook}.{epoch}"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let var = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned).unwrap_or_default()
        };
        [var("FAILOVER_HOOK"), var("FAILOVER_SITE"), var("FAILOVER_EPOCH"), var("FAILOVER_REASON"), var("FAILOVER_TO")]
    };
    let expect = |hook: &str, site: &str, epoch: u64, reason: &str, to: &str| {
        [hook.to_owned(), site.to_owned(), epoch.to_string(), reason.to_owned(), to.to_owned()]
    };
    let cases = [
        (("site-a", "pre_promote", first), expect("pre_promote", "site-a", first, "reclaim", "")),
        (("site-a", "post_promote", first), expect("post_promote", "site-a", first, "reclaim", "")),
        (("site-a", "on_demote", first), expect("on_demote", "site-a", first, "switchover", "site-b")),
        (("site-b", "pre_promote", second), expect("pre_promote", "site-b", second, "handoff", "")),
        (("site-b", "post_promote", second), expect("post_promote", "site-b", second, "handoff", "")),
        (("site-a", "post_promote", third), expect("post_promote", "site-a", third, "automatic_failover", "")),
    ];
    for ((site, hook, epoch), expected) in cases {
        let seen = c.wait_for(LONG, |_| env(site, hook, epoch) == expected).await;
        assert!(seen, "{site} {hook} at epoch {epoch}: {:?}, not {expected:?}", env(site, hook, epoch));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_views_wait_through_the_witness_closed_pipes_token_files_and_plain_logs() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    // wait --active asked of the witness alone: it names site-a, and site-a
    // (at its http_address in the witness's /status) agrees.
    let out = c.ctl("witness", &["wait", "--active", "site-a", "--timeout", "30s"]);
    assert!(ok(&out), "{}", stderr(&out));
    let out = c.ctl("witness", &["wait", "--active", "site-b", "--timeout", "1s"]);
    assert!(!ok(&out));
    assert!(stderr(&out).contains("witness sees site-a as the active site"), "{}", stderr(&out));

    // Output into a pipe closed by its reader: no panic.
    for args in [&["status"][..], &["history"], &["status", "--json"]] {
        let out = into_closed_pipe(c.ctl_command("site-a", None, args));
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
        assert_ne!(out.status.code(), Some(101), "{args:?}: {}", stderr(&out));
    }

    // The token from a file, given by flag or environment.
    let file = c.dir.path().join("token");
    std::fs::write(&file, format!("  {}\n", c.token)).expect("write token file");
    let file_arg = file.display().to_string();
    let out = c.ctl_with_token("site-b", None, &["--token-file", &file_arg, "pause"]);
    assert!(ok(&out), "{}", stderr(&out));
    let mut cmd = c.ctl_command("site-b", None, &["resume"]);
    let out = cmd.env("FAILOVERCTL_TOKEN_FILE", &file).output().expect("run failoverctl");
    assert!(ok(&out), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("resumed"), "{}", stdout(&out));

    // The daemons' stderr is a file here: plain text, no colour codes.
    for node in NODES {
        let log = c.log(node);
        assert!(log.contains("INFO"), "{node} logged nothing:\n{log}");
        assert!(!log.contains('\u{1b}'), "{node}'s log has terminal escape codes:\n{}", c.log_tail(node));
    }

    // Restarted alone, site-a has heard from no one: "never", no active
    // site and no epoch.
    for node in NODES {
        c.kill9(node);
    }
    c.spawn("site-a");
    assert!(c.wait_for(LONG, |c| c.status("site-a").is_some()).await, "{}", c.log_tail("site-a"));
    let shown = stdout(&c.ctl("site-a", &["status"]));
    assert!(shown.starts_with("active: none   epoch: -   term:"), "{shown}");
    for peer in ["site-b", "witness"] {
        let row = shown.lines().find(|l| l.starts_with(&format!("{peer} "))).unwrap_or_default();
        assert!(row.ends_with(" never"), "{shown}");
    }
}

/// Live reload on the active site: SIGHUP with a file whose health checks,
/// hooks, actuator target, admin token and log level changed applies them
/// all, with `/active` answering 200 in every sample and the epoch
/// unchanged; a broken file and a restart-only change are refused, naming
/// the problem and the key, and the node keeps running on what it had.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_of_the_active_site_applies_checks_hooks_actuators_and_token_and_moves_nothing() {
    use failover_tests::http_stub::{HookEndpoint, HookReply};
    let (before, after) = (HookEndpoint::start(HookReply::Ok).await, HookEndpoint::start(HookReply::Ok).await);
    let webhook = |url: &str| format!("[actuators]\n\n[[actuators.webhook]]\nname = \"traffic\"\nurl = \"{url}\"\n\n");
    let spec = Spec { file_health_checks: true, extra: vec![("site-a", webhook(&before.url))], ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let epoch = c.epoch("site-a").expect("epoch");
    let called = |hook: &HookEndpoint| hook.calls().iter().any(|call| call.body["epoch"] == epoch);
    assert!(c.wait_for(LONG, |_| called(&before)).await, "the first webhook was never called");
    let path = c.config_path("site-a");
    let original = std::fs::read_to_string(&path).expect("config");
    let demoted = c.state_dir("site-a").with_extension("demoted");
    let standing_by = c.state_dir("site-a").with_extension("standby");
    let reloaded = original
        .replace(&before.url, &after.url)
        .replace("token = \"e2e-test-token\"", "token = \"reloaded-token\"")
        .replace("state_dir = ", "log_level = \"debug\"\nstate_dir = ")
        + &format!(
        "[hooks]\non_demote = \"touch {}\"\non_standby = \"touch {}\"\n\n[[checks]]\nname = \"added\"\nkind = \"command\"\ntarget = \"true\"\n\
         interval = \"100ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\n\n",
        demoted.display(),
        standing_by.display()
    );
    std::fs::write(&path, &reloaded).expect("write config");
    let prober = failover_tests::prober::Prober::start(c.active_urls(), Duration::from_millis(10));
    assert!(c.signal("site-a", "HUP"), "SIGHUP not delivered");
    let applied = |c: &TestCluster| c.status_doc("site-a").and_then(|s| s.reload).is_some_and(|r| r.applied);
    assert!(c.wait_for(LONG, applied).await, "not reloaded:\n{}", c.log_tail("site-a"));
    let report = c.status_doc("site-a").and_then(|s| s.reload).expect("a reload report");
    for key in ["actuators.webhook[0].url", "admin.token", "checks", "hooks", "node.log_level"] {
        assert!(report.changed.iter().any(|k| k.starts_with(key)), "{key} not applied: {report:?}");
    }
    // The moved actuator points the new target at this site, same epoch;
    // the old target hears nothing more.
    assert!(c.wait_for(LONG, |_| called(&after)).await, "the reloaded webhook was never called");
    let calls = after.calls();
    assert!(calls.iter().all(|call| call.body["epoch"] == epoch && call.body["site"] == "site-a"), "{calls:?}");
    let old_calls = before.calls().len();
    // The added check joins the verdict once it has one; the site stays healthy.
    let counted = |c: &TestCluster| {
        c.status("site-a").is_some_and(|s| {
            s["sites"][0]["checks"].as_array().is_some_and(|checks| {
                checks.len() == 2 && checks.iter().all(|k| k["healthy"] == true && k.get("joining").is_none())
            })
        })
    };
    assert!(c.wait_for(LONG, counted).await, "the added check never counted: {:?}", c.status("site-a"));
    // The old token is refused, the new one accepted.
    let old = c.http_post("site-a", "/admin/cancel-switchover", Some("e2e-test-token"), "{}").await;
    assert_eq!(old.map(|(code, _)| code), Some(401), "the old token still works");
    let new = c.http_post("site-a", "/admin/cancel-switchover", Some("reloaded-token"), "{}").await;
    assert!(new.as_ref().is_some_and(|(code, _)| *code != 401), "the new token is refused: {new:?}");
    assert!(c.log("site-a").contains("DEBUG"), "the log level did not change:\n{}", c.log_tail("site-a"));

    // A broken file: refused, the node runs on.
    std::fs::write(&path, reloaded.replace("[cluster]", "[cluster\n")).expect("write config");
    assert!(c.signal("site-a", "HUP"), "SIGHUP not delivered");
    let refused = |c: &TestCluster| c.status_doc("site-a").and_then(|s| s.reload).is_some_and(|r| r.refused_total == 1);
    assert!(c.wait_for(LONG, refused).await, "the broken file was not refused:\n{}", c.log_tail("site-a"));
    let report = c.status_doc("site-a").and_then(|s| s.reload).expect("a reload report");
    assert!(!report.applied && !report.problems.is_empty(), "{report:?}");
    let out = c.ctl_with_token("site-a", Some("reloaded-token"), &["reload", "--node", "site-a"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("keeps running its previous file"), "{said}");

    // A restart-only key: refused, naming it.
    std::fs::write(&path, reloaded.replace("lease = \"1500ms\"", "lease = \"2s\"")).expect("write config");
    let out = c.ctl_with_token("site-a", Some("reloaded-token"), &["reload", "--node", "site-a"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("cluster.lease: changed"), "{said}");

    prober.stop().await.assert_always_active(&c.active_url("site-a"));
    assert_eq!(c.epoch("site-a"), Some(epoch), "the role moved");
    assert_eq!(before.calls().len(), old_calls, "the replaced actuator still called its old target");

    // The reloaded hook runs: a switchover demotes site-a.
    std::fs::write(&path, &reloaded).expect("write config");
    let out = c.ctl_with_token("site-a", Some("reloaded-token"), &["switchover", "--to", "site-b"]);
    assert!(out.status.success(), "switchover refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_for(LONG, |_| demoted.exists()).await, "the reloaded on_demote hook did not run");
    assert!(c.wait_for(LONG, |_| standing_by.exists()).await, "the reloaded on_standby hook did not run");
}

/// A site of another cluster (same members, same everything but
/// `cluster.name`) is refused and shown as such, and never counted: with the
/// active site killed it cannot be elected by this cluster's witness.
#[tokio::test(flavor = "multi_thread")]
async fn a_site_of_another_cluster_is_refused_shown_and_never_counted() {
    let staging = ("site-b", "name = \"test\"", "name = \"staging\"");
    let mut c = TestCluster::start_with_site_a_active(Spec { edits: vec![staging], ..Spec::default() }).await;
    let shown = |c: &TestCluster| {
        c.status_doc("site-a").is_some_and(|d| {
            d.config_mismatches.iter().any(|m| m.peer == "site-b" && m.cluster == "staging" && m.refused)
        })
    };
    assert!(c.wait_for(LONG, shown).await, "site-a does not show site-b as another cluster: {:?}", c.status("site-a"));
    let text = stdout(&c.ctl("site-a", &["status"]));
    assert!(text.contains("ANOTHER CLUSTER"), "{text}");
    let prober = c.prober();
    c.kill9("site-a");
    // Three leases and more: long past the point where site-b would have
    // been elected had the witness counted it.
    let witness_lost_a = |c: &TestCluster| c.status_doc("witness").is_some_and(|d| d.active_site.is_none());
    assert!(c.wait_for(LONG, witness_lost_a).await, "the witness still follows the dead site-a");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);
    assert_eq!(c.status_doc("witness").and_then(|d| d.active_site), None, "the witness follows a stranger");
}

/// A switchover scheduled at the far end of time is refused with the
/// limit, and `/status` answers throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_far_future_switchover_is_refused_and_status_keeps_answering() {
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let out = c.ctl("site-a", &["wait", "--ready", "site-b"]);
    assert!(ok(&out), "site-b never ready: {}", stderr(&out));
    for at in ["9999-12-31T23:59:59.6Z", "9999-12-31T23:59:59Z"] {
        let out = c.ctl("site-a", &["switchover", "--to", "site-b", "--at", at]);
        assert!(!ok(&out), "{at} was accepted");
        assert!(stderr(&out).contains("365 days"), "{at}: the limit is not named: {}", stderr(&out));
        let body = format!("{{\"to\":\"site-b\",\"at\":\"{at}\"}}");
        let answer = c.http_post("site-a", "/admin/switchover", Some("e2e-test-token"), &body).await;
        assert_eq!(answer.as_ref().map(|(code, _)| *code), Some(400), "{answer:?}");
        let status = c.http_get("site-a", "/status").await;
        assert_eq!(status.map(|(code, _)| code), Some(200), "/status stopped answering");
    }
    assert_eq!(c.status_doc("site-a").map(|d| d.scheduled_switchover.is_none()), Some(true));
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
}
