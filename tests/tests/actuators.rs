//! Actuator tests against real BIND9 (`named`) and real HAProxy, both
//! installed by `scripts/setup.sh`: the real binaries as a three-node cluster point
//! DNS and HAProxy at whichever site is active, through election, failover
//! and switchover; the fence holds against a deposed site; broken targets
//! are reported and never hold up the election; targets changed behind the
//! cluster's back are put right. Waits are conditions with generous
//! deadlines; nothing is timed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use failover_controller::actuate::dns::{fence_text, DnsActuator, DnsSection};
use failover_controller::actuate::ActuateError;
use failover_tests::cluster::{assert_configs_refused, free_port, Spec, TestCluster, MINIMAL_SITE_A};
use failover_tests::haproxy::Haproxy;
use failover_tests::http_client::{HttpClient, HttpError};
use failover_tests::http_stub::{app, HookEndpoint, HookReply};
use failover_tests::named::Named;

const LONG: Duration = Duration::from_secs(60);

/// Each site's service address in DNS.
const ADDRESS: [(&str, &str); 2] = [("site-a", "127.0.0.10"), ("site-b", "127.0.0.20")];

fn address(site: &str) -> &'static str {
    ADDRESS.iter().find(|(s, _)| *s == site).map(|(_, a)| *a).expect("site address")
}

/// The actuator report named `name` in `node`'s status.
fn actuator(c: &TestCluster, node: &str, name: &str) -> Option<serde_json::Value> {
    let status = c.status(node)?;
    status["actuators"].as_array()?.iter().find(|a| a["name"] == name).cloned()
}

fn actuator_state(c: &TestCluster, node: &str, name: &str) -> String {
    actuator(c, node, name).and_then(|a| a["state"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// True when `named` answers `site`'s address for both names and the fence
/// holds `epoch` of `site`.
fn dns_points_at(named: &Named, site: &str, epoch: u64) -> bool {
    named.dig("app", "A") == [address(site)]
        && named.dig("www", "A") == [address(site)]
        && named.dig("_failover", "TXT") == [fence_text(epoch, site)]
}

/// A client loop through HAProxy's frontend, one request at a time on a new
/// connection, until told to stop (or two minutes, or 200 000 requests,
/// whichever comes first).
struct ClientLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClientLoop {
    fn start(frontend: std::net::SocketAddr) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, o, f) = (stop.clone(), ok.clone(), failures.clone());
        let task = tokio::spawn(async move {
            // A new connection each time (the client keeps none), so every
            // request is balanced afresh (as many clients would be).
            let client = HttpClient::new();
            let url = format!("http://{frontend}/");
            let deadline = Instant::now() + Duration::from_secs(120);
            for _ in 0..200_000 {
                if s.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                match client.get(&url, Duration::from_secs(10)).await {
                    Ok(r) if r.status == 200 => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => f.lock().expect("failures").push(format!("HTTP {}", r.status)),
                    Err(HttpError::TimedOut(_)) => f.lock().expect("failures").push("timed out".into()),
                    Err(e) => f.lock().expect("failures").push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        ClientLoop { stop, ok, failures, task }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let failures = self.failures.lock().expect("failures").clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

fn site_actuators(site: &str, named: &Named, haproxy: &Haproxy) -> String {
    // site-a reaches HAProxy over TCP, site-b over the unix socket.
    let api = if site == "site-a" { haproxy.api.to_string() } else { haproxy.socket().display().to_string() };
    format!(
        "[actuators]\naddresses = [\"{}\"]\n\n{}{}",
        address(site),
        named.actuator_section(&named.secret),
        haproxy.actuator_section(&api)
    )
}

/// Both sites' `[actuators]`, pointing at `named` and `haproxy`.
fn both_sites_actuating(named: &Named, haproxy: &Haproxy) -> Vec<(&'static str, String)> {
    ["site-a", "site-b"].iter().map(|&site| (site, site_actuators(site, named, haproxy))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_and_haproxy_follow_the_active_site_and_the_fence_holds() {
    let named = Named::start();
    let (app_a, app_b) = (app("site-a").await, app("site-b").await);
    let mut haproxy = Haproxy::start(&[("site-a", app_a), ("site-b", app_b)], &[]);
    let spec = Spec { drain: Some("1s"), extra: both_sites_actuating(&named, &haproxy), ..Spec::default() };
    let mut c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));

    // Election: DNS and HAProxy point at site-a, with its epoch.
    let first = c.epoch("site-a").expect("epoch");
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-a", first)).await,
        "DNS never pointed at site-a: {:?} {:?}\n{}",
        named.dig("app", "A"),
        named.dig("_failover", "TXT"),
        c.log_tail("site-a")
    );
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-a")).await, "HAProxy: {:?}", haproxy.states());
    assert!(
        c.wait_for(LONG, |c| actuator_state(c, "site-a", "dns") == "converged"
            && actuator_state(c, "site-a", "haproxy") == "converged")
            .await,
        "{:?}",
        c.status("site-a").map(|s| s["actuators"].clone())
    );
    let dns = actuator(&c, "site-a", "dns").expect("dns report");
    assert!(dns["propagation_ms"].as_u64().is_some(), "propagation time reported: {dns}");
    // The standby site has its actuators idle.
    assert_eq!(actuator_state(&c, "site-b", "dns"), "idle");

    // Failover: kill -9 of site-a.
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    let second = c.epoch("site-b").expect("epoch");
    assert!(second > first);
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-b", second)).await,
        "DNS never pointed at site-b: {:?} {:?}\n{}",
        named.dig("app", "A"),
        named.dig("_failover", "TXT"),
        c.log_tail("site-b")
    );
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-b")).await, "HAProxy: {:?}", haproxy.states());

    // The deposed site-a, with its old epoch and the fence it last wrote,
    // tries to take DNS back: named itself refuses the update.
    let section: DnsSection = toml_section(&named.actuator_section(&named.secret));
    let deposed = DnsActuator::build(&section, "site-a", &[address("site-a").parse().expect("ip")]).expect("build");
    let refusal = deposed.write(&[fence_text(first, "site-a")], first).await;
    match &refusal {
        Err(ActuateError::Refused { detail, .. }) => {
            assert!(detail.contains("RR Set does not exist"), "refused for the prerequisite: {detail}")
        }
        other => panic!("named accepted a stale update: {other:?}"),
    }
    assert!(dns_points_at(&named, "site-b", second), "DNS unchanged after the stale update");

    // Planned switchover back to site-a, with a client loop through HAProxy.
    c.spawn("site-a");
    assert!(
        c.wait_for(LONG, |c| c.role("site-a").as_deref() == Some("standby")
            && c.status("site-b").is_some_and(|s| s["sites"]
                .as_array()
                .is_some_and(|v| v.iter().any(|p| p["id"] == "site-a" && p["reachable"] == true))))
            .await,
        "site-a did not rejoin:\n{}",
        c.log_tail("site-a")
    );
    let client = ClientLoop::start(haproxy.frontend);
    assert!(c.wait_for(LONG, |_| client.ok.load(Ordering::Relaxed) > 20).await, "client loop never got through");
    let out = c.ctl("site-b", &["switchover", "--to", "site-a"]);
    assert!(out.status.success(), "switchover refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-a").await, "switchover never completed:\n{}", c.log_tail("site-b"));
    let third = c.epoch("site-a").expect("epoch");
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-a")).await, "HAProxy: {:?}", haproxy.states());
    let before_stop = client.ok.load(Ordering::Relaxed);
    assert!(
        c.wait_for(LONG, |_| client.ok.load(Ordering::Relaxed) > before_stop + 20).await,
        "client loop stalled after the switchover"
    );
    let (served, failed) = client.finish().await;
    assert!(failed.is_empty(), "{} of {} requests failed during the switchover: {failed:?}", failed.len(), served);
    assert!(c.wait_for(LONG, |_| dns_points_at(&named, "site-a", third)).await, "DNS after switchover");
    assert!(c.log_tail("site-b").contains("draining before handoff"), "site-b drained first");

    // Convergence: a record edited by hand is put back, and so is an
    // HAProxy restarted with site-a in maintenance; the role never moves.
    named.nsupdate("update delete app.example.test A\nupdate add app.example.test 60 A 192.0.2.66");
    assert_eq!(named.dig("app", "A"), ["192.0.2.66"], "the hand edit landed");
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-a", third)).await,
        "hand-edited record not corrected: {:?}",
        named.dig("app", "A")
    );
    haproxy.restart(&["site-a"]);
    assert!(!haproxy.only_ready("site-a"), "HAProxy restarted with site-a in maintenance");
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-a")).await, "HAProxy not corrected: {:?}", haproxy.states());
    // Each change it made is in site-a's log, with the epoch (the pass
    // that set the server ready may still be writing the epoch variable).
    let change = format!("set app/site-a from maint to ready actuator=haproxy epoch={third}");
    let epoch_written = format!("set proc.failover_epoch from unset to {third}");
    let logged = |c: &TestCluster| c.log("site-a").contains(&change) && c.log("site-a").contains(&epoch_written);
    assert!(
        c.wait_for(LONG, logged).await,
        "no {change:?} and {epoch_written:?} in site-a's log:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(c.epoch("site-a"), Some(third), "no change of role");
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
}

/// `node`'s report of actuator `name`: its state, `would_change` and passes.
fn observed(c: &TestCluster, node: &str, name: &str) -> (String, Vec<String>, u64) {
    let report = actuator(c, node, name).unwrap_or_default();
    let changes = report["would_change"]
        .as_array()
        .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    (report["state"].as_str().unwrap_or_default().to_owned(), changes, report["passes"].as_u64().unwrap_or(0))
}

/// Adopting failover beside existing tooling: with `actuation = "observe"`
/// the active site reads DNS and HAProxy on every pass, reports in
/// `/status`, `/metrics` and its log what it would change, and changes
/// nothing (named still answers the old record after several passes;
/// HAProxy keeps the other site's server ready). A reload to `act` then
/// points both at the active site, with the same epoch.
#[tokio::test(flavor = "multi_thread")]
async fn observe_mode_reports_what_it_would_change_and_changes_nothing_until_a_reload_to_act() {
    let named = Named::start();
    let (app_a, app_b) = (app("site-a").await, app("site-b").await);
    // What the existing tooling set up: app.example.test at 192.0.2.99,
    // HAProxy serving site-b with site-a in maintenance.
    let haproxy = Haproxy::start(&[("site-a", app_a), ("site-b", app_b)], &["site-a"]);
    let observing = |site| {
        site_actuators(site, &named, &haproxy).replacen("[actuators]\n", "[actuators]\nactuation = \"observe\"\n", 1)
    };
    let spec =
        Spec { extra: vec![("site-a", observing("site-a")), ("site-b", observing("site-b"))], ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let epoch = c.epoch("site-a").expect("epoch");
    let several = |c: &TestCluster| {
        ["dns", "haproxy"].iter().all(|a| {
            let (state, _, passes) = observed(c, "site-a", a);
            state == "would_change" && passes >= 3
        })
    };
    assert!(
        c.wait_for(LONG, several).await,
        "no three observed passes: {:?}\n{}",
        c.status("site-a").map(|s| s["actuators"].clone()),
        c.log_tail("site-a")
    );
    let (_, dns, _) = observed(&c, "site-a", "dns");
    let fence = fence_text(epoch, "site-a");
    for change in [
        "would update app.example.test. A 192.0.2.99 -> 127.0.0.10".to_owned(),
        "would update www.example.test. A (none) -> 127.0.0.10".to_owned(),
        format!("would update _failover.example.test. TXT (none) -> \"{fence}\""),
    ] {
        assert!(dns.contains(&change), "{change:?} not in {dns:?}");
    }
    let (_, lb, _) = observed(&c, "site-a", "haproxy");
    for change in ["would set app/site-a maint -> ready", "would set app/site-b ready -> maint"] {
        assert!(lb.iter().any(|c| c == change), "{change:?} not in {lb:?}");
    }
    assert!(lb.iter().any(|c| c.starts_with("would set proc.failover_epoch unset -> ")), "{lb:?}");
    // Nothing changed, as a real DNS query and HAProxy's runtime API show.
    assert_eq!(named.dig("app", "A"), ["192.0.2.99"]);
    assert!(named.dig("www", "A").is_empty() && named.dig("_failover", "TXT").is_empty());
    assert!(haproxy.only_ready("site-b"), "HAProxy changed: {:?}", haproxy.states());
    assert_eq!(
        haproxy.command("experimental-mode on; get var proc.failover_epoch").map(|a| a.contains("not found")),
        Some(true)
    );
    // The log says exactly what it would change, and the metrics say the
    // actuators observe and would change something.
    let logged = "would update app.example.test. A 192.0.2.99 -> 127.0.0.10 (observe mode: not changed)";
    assert!(c.log("site-a").contains(logged), "{logged:?} not logged:\n{}", c.log_tail("site-a"));
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    for line in [
        "failover_actuator_observe{actuator=\"dns\",kind=\"dns\"} 1",
        "failover_actuator_state{actuator=\"haproxy\",state=\"would_change\"} 1",
    ] {
        assert!(metrics.contains(line), "{line:?} not in /metrics");
    }

    // Switching to act is a reload: the same epoch, and the next passes
    // point DNS and HAProxy at site-a.
    let path = c.config_path("site-a");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, text.replace("actuation = \"observe\"", "actuation = \"act\"")).expect("write config");
    assert!(c.signal("site-a", "HUP"), "SIGHUP not delivered");
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-a", epoch) && haproxy.only_ready("site-a")).await,
        "not acted on after the reload: {:?} {:?}\n{}",
        named.dig("app", "A"),
        haproxy.states(),
        c.log_tail("site-a")
    );
    let acting = |c: &TestCluster| {
        ["dns", "haproxy"].iter().all(|a| {
            let report = actuator(c, "site-a", a).unwrap_or_default();
            report["actuation"] == "act"
                && report["state"] == "converged"
                && report["would_change"] == serde_json::json!([])
        })
    };
    assert!(c.wait_for(LONG, acting).await, "{:?}", c.status("site-a").map(|s| s["actuators"].clone()));
    assert_eq!(c.epoch("site-a"), Some(epoch), "the reload moved the role");
}

fn fence_ahead(c: &TestCluster, node: &str) -> Option<u64> {
    c.status(node)?["fence_ahead"].as_u64()
}

/// Anyone with the TSIG key or the HAProxy socket can write any epoch into
/// the fence. A forged newer one must not depose a site that holds its
/// lease: it stays active, raises the alarm, writes nothing over it, and
/// the cluster fails over normally (from its own terms) afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_dns_fence_or_haproxy_epoch_raises_the_alarm_and_deposes_nobody() {
    let named = Named::start();
    let (app_a, app_b) = (app("site-a").await, app("site-b").await);
    let haproxy = Haproxy::start(&[("site-a", app_a), ("site-b", app_b)], &[]);
    let spec = Spec { extra: both_sites_actuating(&named, &haproxy), ..Spec::default() };
    let mut c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let first = c.epoch("site-a").expect("epoch");
    assert!(c.wait_for(LONG, |_| dns_points_at(&named, "site-a", first)).await, "DNS never pointed at site-a");
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-a")).await, "HAProxy: {:?}", haproxy.states());
    let prober = c.prober();

    let forged_dns = first + 99;
    named.nsupdate(&format!(
        "update delete _failover.example.test TXT\nupdate add _failover.example.test 60 TXT \"{}\"",
        fence_text(forged_dns, "site-b")
    ));
    assert!(
        c.wait_for(LONG, |c| fence_ahead(c, "site-a") == Some(forged_dns)).await,
        "no alarm for the forged DNS fence: {:?}\n{}",
        c.status("site-a").map(|s| s["actuators"].clone()),
        c.log_tail("site-a")
    );
    let forged_haproxy = first + 500;
    let answer = haproxy.command(&format!("experimental-mode on; set var proc.failover_epoch int({forged_haproxy})"));
    assert_eq!(answer.as_deref().map(str::trim), Some(""), "HAProxy took the forged epoch");
    assert!(
        c.wait_for(LONG, |c| fence_ahead(c, "site-a") == Some(forged_haproxy)).await,
        "no alarm for the forged HAProxy epoch:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(c.role("site-a").as_deref(), Some("active"), "a forged fence deposed the active site");
    assert_eq!(c.epoch("site-a"), Some(first));
    assert_eq!(named.dig("_failover", "TXT"), [fence_text(forged_dns, "site-b")], "written over");
    let out = c.ctl("site-a", &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("FENCE ALARM"), "{}", String::from_utf8_lossy(&out.stdout));
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    assert!(metrics.contains(&format!("failover_fence_ahead_epoch {forged_haproxy}")), "{metrics}");
    assert!(c.log("site-a").contains("ALARM: a target holds epoch"), "{}", c.log_tail("site-a"));
    for node in ["site-a", "site-b", "witness"] {
        let term = c.status(node).and_then(|s| s["term"].as_u64()).expect("term");
        assert!(term < forged_dns, "{node} took its term from a target: {term}");
    }

    // Failover goes on from the cluster's own terms; the operator corrects
    // the targets and the new active site takes them over.
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    let second = c.epoch("site-b").expect("epoch");
    assert!(second > first && second < forged_dns, "epoch {second}");
    named.nsupdate("update delete _failover.example.test TXT");
    let answer = haproxy.command(&format!("experimental-mode on; set var proc.failover_epoch int({second})"));
    assert_eq!(answer.as_deref().map(str::trim), Some(""));
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-b", second) && haproxy.only_ready("site-b")).await,
        "site-b never took the corrected targets: {:?} {:?}\n{}",
        named.dig("_failover", "TXT"),
        haproxy.states(),
        c.log_tail("site-b")
    );
    assert!(
        c.wait_for(LONG, |c| fence_ahead(c, "site-b").is_none()).await,
        "the alarm outlived the correction: {:?}",
        fence_ahead(&c, "site-b")
    );
    prober.stop().await.assert_never_two_active();
}

/// The actuators of `node` that `/status` lists as holding a fence value
/// the cluster never writes.
fn fence_unreadable(c: &TestCluster, node: &str) -> Vec<String> {
    c.status(node)
        .and_then(|s| s["fence_unreadable"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A fence value the cluster never writes (a DNS epoch past 2^64, an
/// HAProxy variable at int(-1)) is the fence alarm, not a bad answer or a
/// number: the site stays active and writes nothing over it, and once an
/// operator writes a proper value the actuators go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_fence_value_the_cluster_never_writes_is_the_alarm_until_an_operator_writes_a_proper_one() {
    let named = Named::start();
    let (app_a, app_b) = (app("site-a").await, app("site-b").await);
    let haproxy = Haproxy::start(&[("site-a", app_a), ("site-b", app_b)], &[]);
    let spec = Spec { extra: both_sites_actuating(&named, &haproxy), ..Spec::default() };
    let c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let first = c.epoch("site-a").expect("epoch");
    assert!(c.wait_for(LONG, |_| dns_points_at(&named, "site-a", first)).await, "DNS never pointed at site-a");
    assert!(c.wait_for(LONG, |_| haproxy.only_ready("site-a")).await, "HAProxy: {:?}", haproxy.states());

    let past_u64 = "epoch=18446744073709551617 site=site-b";
    named.nsupdate(&format!(
        "update delete _failover.example.test TXT\nupdate add _failover.example.test 60 TXT \"{past_u64}\""
    ));
    let answer = haproxy.command("experimental-mode on; set var proc.failover_epoch int(-1)");
    assert_eq!(answer.as_deref().map(str::trim), Some(""), "HAProxy took int(-1)");
    assert!(
        c.wait_for(LONG, |c| fence_unreadable(c, "site-a").len() == 2).await,
        "no alarm for both targets: {:?}\n{}",
        c.status("site-a").map(|s| s["actuators"].clone()),
        c.log_tail("site-a")
    );
    let alarms = fence_unreadable(&c, "site-a").join("\n");
    assert!(alarms.contains("18446744073709551617") && alarms.contains("\"-1\""), "what was found: {alarms}");
    assert!(alarms.contains("nsupdate") && alarms.contains(&format!("int({first})")), "the fix: {alarms}");
    assert_eq!(c.role("site-a").as_deref(), Some("active"), "a malformed fence deposed the active site");
    assert_eq!(c.epoch("site-a"), Some(first));
    assert_eq!(named.dig("_failover", "TXT"), [past_u64.to_owned()], "written over");
    let out = c.ctl("site-a", &["status"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.matches("FENCE ALARM").count() >= 2, "{shown}");
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    assert!(metrics.contains("failover_fence_unreadable 2"), "{metrics}");
    assert!(c.log("site-a").contains("ALARM: fenced:"), "{}", c.log_tail("site-a"));

    // The operator writes proper values; the next passes go through.
    named.nsupdate(&format!(
        "update delete _failover.example.test TXT\nupdate add _failover.example.test 60 TXT \"{}\"",
        fence_text(first, "site-a")
    ));
    let answer = haproxy.command(&format!("experimental-mode on; set var proc.failover_epoch int({first})"));
    assert_eq!(answer.as_deref().map(str::trim), Some(""));
    assert!(
        c.wait_for(LONG, |c| fence_unreadable(c, "site-a").is_empty()
            && c.status("site-a").is_some_and(|s| s["actuators"]
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["state"] == "converged"))))
            .await,
        "the alarm outlived the correction: {:?}",
        c.status("site-a").map(|s| s["actuators"].clone())
    );
    assert!(dns_points_at(&named, "site-a", first) && haproxy.only_ready("site-a"));
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_targets_are_reported_and_never_hold_up_the_election() {
    let named = Named::start();
    let failing = HookEndpoint::start(HookReply::Fail).await;
    let hanging = HookEndpoint::start(HookReply::Hang).await;
    let working = HookEndpoint::start(HookReply::Ok).await;
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong_key = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk=";
    let mut broken = format!("[actuators]\naddresses = [\"{}\"]\n\n", address("site-a"));
    broken.push_str(&named.actuator_section(wrong_key).replace("name = \"dns\"", "name = \"dns-wrong-key\""));
    broken.push_str(
        &named
            .actuator_section(&named.secret)
            .replace("name = \"dns\"", "name = \"dns-unreachable\"")
            .replace(&named.addr.to_string(), &closed.to_string()),
    );
    broken.push_str(&format!(
        "[[actuators.haproxy]]\nname = \"haproxy-unreachable\"\naddress = \"{}\"\nbackends = [\"app\"]\n\
         servers = {{ \"site-a\" = \"a\", \"site-b\" = \"b\" }}\n\n",
        dir.path().join("no-such.sock").display()
    ));
    for (name, hook) in [("hook-failing", &failing), ("hook-hanging", &hanging), ("hook-working", &working)] {
        broken.push_str(&format!(
            "[[actuators.webhook]]\nname = \"{name}\"\nurl = \"{}\"\ntimeout = \"1s\"\n\
             headers = {{ \"Authorization\" = \"Bearer test\" }}\n\n",
            hook.url
        ));
    }
    let spec = Spec { extra: vec![("site-a", broken)], ..Spec::default() };
    let c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "the election was held up:\n{}", c.log_tail("site-a"));
    let epoch = c.epoch("site-a").expect("epoch");

    let expect = [
        ("dns-wrong-key", "TSIG"),
        ("dns-unreachable", "cannot reach DNS server"),
        ("haproxy-unreachable", "cannot reach HAProxy runtime API"),
        ("hook-failing", "HTTP 500"),
        ("hook-hanging", "timed out"),
    ];
    for (name, cause) in expect {
        assert!(
            c.wait_for(LONG, |c| actuator(c, "site-a", name)
                .is_some_and(|a| a["state"] == "failed" && a["detail"].as_str().is_some_and(|d| d.contains(cause))))
                .await,
            "{name} not reported failed with {cause:?}: {:?}",
            actuator(&c, "site-a", name)
        );
        let log = c.log_tail("site-a");
        assert!(
            log.lines().any(|l| l.contains("actuator did not converge") && l.contains(name) && l.contains(cause)),
            "no log line for {name} with {cause:?}:\n{log}"
        );
    }
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    assert!(
        metrics.contains("failover_actuator_state{actuator=\"hook-failing\",state=\"failed\"} 1"),
        "metrics show the failure:\n{metrics}"
    );
    assert!(
        c.wait_for(LONG, |c| actuator_state(c, "site-a", "hook-working") == "converged").await,
        "{:?}",
        actuator(&c, "site-a", "hook-working")
    );

    // The working webhook got one call for this epoch, with the templated
    // body, and re-assertion passes do not repeat it.
    let first_pass = actuator(&c, "site-a", "hook-working").expect("report")["last_converged_at"].clone();
    assert!(
        c.wait_for(LONG, |c| actuator(c, "site-a", "hook-working")
            .is_some_and(|a| a["last_converged_at"] != first_pass))
            .await,
        "no re-assertion pass"
    );
    let calls = working.calls();
    assert_eq!(calls.len(), 1, "idempotent by epoch: {calls:?}");
    assert_eq!(calls[0].body["site"], "site-a");
    assert_eq!(calls[0].body["epoch"], epoch);
    assert_eq!(calls[0].body["state"], "active");
    assert_eq!(calls[0].body["addresses"][0], address("site-a"));
    assert_eq!(calls[0].key, format!("site-a-{epoch}-active"));

    // Still active, same epoch: nothing of this touched the election.
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    assert_eq!(c.epoch("site-a"), Some(epoch));
    assert!(c.http_get("site-a", "/active").await.is_some_and(|(code, _)| code == 200));
}

fn toml_section(text: &str) -> DnsSection {
    let body = text.trim_start().strip_prefix("[[actuators.dns]]").expect("a dns section");
    config::Config::builder()
        .add_source(config::File::from_str(body, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("a valid dns section")
}

fn doc_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/actuators.md")).expect("read doc")
}

/// The code blocks of `docs/actuators.md` that follow `<!-- file: NAME -->`.
fn doc_files() -> Vec<(String, String)> {
    let doc = doc_text();
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("<!-- file: ") {
        rest = &rest[at + "<!-- file: ".len()..];
        let (name, after) = rest.split_once(" -->").expect("comment closes");
        let body = after.trim_start().split_once('\n').expect("fence line").1;
        let (block, tail) = body.split_once("\n```").expect("block closes");
        out.push((name.to_owned(), format!("{block}\n")));
        rest = tail;
    }
    out
}

#[test]
fn the_configuration_examples_in_the_docs_pass_their_own_checkers() {
    let files = doc_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["named.conf", "db.example.com", "named-try.conf", "site-a.toml", "haproxy.cfg", "haproxy-pull.cfg"]
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // The key file tsig-keygen writes, as the named.conf example includes it.
    let keygen = std::process::Command::new("tsig-keygen").args(["-a", "hmac-sha256", "failover-key"]).output();
    let keygen = keygen.expect("tsig-keygen (bind9) is installed by scripts/setup.sh");
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    std::fs::write(dir.path().join("failover-key.conf"), &keygen.stdout).expect("key file");
    // The operations guide's one-liner takes the secret out of it.
    let extract = "sed -n 's/.*secret \"\\(.*\\)\";.*/\\1/p' failover-key.conf > tsig.secret";
    assert!(
        doc_text().contains(&extract.replace("failover-key.conf", "/etc/bind/failover-key.conf")),
        "the documented one-liner changed: update this test"
    );
    let sh = std::process::Command::new("sh").arg("-c").arg(extract).current_dir(dir.path()).status();
    assert!(sh.is_ok_and(|s| s.success()));
    let secret = std::fs::read_to_string(dir.path().join("tsig.secret")).expect("secret");
    assert_eq!(secret.trim().len(), 44, "a base64 SHA-256 key: {secret:?}");
    for (name, text) in &files {
        // Paths under /etc/failover/ and /etc/bind/ move to a scratch
        // directory.
        let scratch = format!("{}/", dir.path().display());
        let text = text
            .replace("/etc/failover/", &scratch)
            .replace("/etc/bind/", &scratch)
            .replace("/tmp/failover-bind/", &scratch)
            .replace("/tmp/failover-bind", &dir.path().display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write example");
        let (program, args): (std::path::PathBuf, Vec<&str>) = match name.as_str() {
            "named.conf" | "named-try.conf" => ("named-checkconf".into(), vec![]),
            "db.example.com" => ("named-checkzone".into(), vec!["example.com"]),
            n if n.ends_with(".cfg") => ("haproxy".into(), vec!["-c", "-f"]),
            _ => {
                std::fs::write(dir.path().join("admin.token"), "doc-example-token\n").expect("token");
                let certs = std::process::Command::new(failover_tests::cluster::bin_dir().join("failoverctl"))
                    .args(["certs", "init", "--nodes", "site-a,site-b,witness", "--out"])
                    .arg(dir.path().join("tls"))
                    .output()
                    .expect("certs init");
                assert!(certs.status.success(), "certs init: {}", String::from_utf8_lossy(&certs.stderr));

                (failover_tests::cluster::bin_dir().join("failover-controller"), vec!["check-config", "--config"])
            }
        };
        let out = std::process::Command::new(&program).args(&args).arg(&path).output().expect("run checker");
        assert!(
            out.status.success(),
            "{name} from docs/actuators.md fails {}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if name == "site-a.toml" {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(said.contains("actuators: public-dns, edge-lb, cloud-lb"), "{said}");
        }
    }
    standalone_named_answers_and_takes_signed_updates(dir.path(), &secret);
}

/// The standalone `named-try.conf` of docs/actuators.md (written into
/// `dir` with the key and zone files beside it) runs as the doc says,
/// serves the zone and takes an update signed with the key. Its port is
/// the documented 5300 when it is free, another free one otherwise.
fn standalone_named_answers_and_takes_signed_updates(dir: &std::path::Path, secret: &str) {
    use std::process::{Command, Stdio};
    let port = if std::net::TcpListener::bind("127.0.0.1:5300").is_ok() { 5300 } else { free_port() };
    let conf = std::fs::read_to_string(dir.join("named-try.conf")).expect("named-try.conf");
    std::fs::write(dir.join("named-try.conf"), conf.replace("port 5300", &format!("port {port}"))).expect("write");
    let log = std::fs::File::create(dir.join("named-try.log")).expect("log");
    let mut named = Command::new("named")
        .args(["-g", "-4", "-n", "1", "-c"])
        .arg(dir.join("named-try.conf"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start named");
    let dig = |name: &str| {
        let out = Command::new("dig")
            .args(["+short", "+time=2", "+tries=1", "-p", &port.to_string(), "@127.0.0.1", name, "A"])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while dig("www.example.com") != "192.0.2.10" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let answered = dig("www.example.com");
    let update = format!(
        "server 127.0.0.1 {port}\nzone example.com\nupdate delete www.example.com A\n\
         update add www.example.com 60 A 192.0.2.20\nsend\n"
    );
    let mut child = Command::new("nsupdate")
        .args(["-y", &format!("hmac-sha256:failover-key:{}", secret.trim())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsupdate");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(update.as_bytes()).expect("write nsupdate script");
    }
    let nsupdate = child.wait_with_output().expect("nsupdate");
    let updated = dig("www.example.com");
    let _ = named.kill();
    let _ = named.wait();
    let log = std::fs::read_to_string(dir.join("named-try.log")).unwrap_or_default();
    assert_eq!(answered, "192.0.2.10", "the standalone named never answered:\n{log}");
    assert!(nsupdate.status.success(), "signed update refused: {}", String::from_utf8_lossy(&nsupdate.stderr));
    assert_eq!(updated, "192.0.2.20", "the update did not take:\n{log}");
}

#[test]
fn actuator_config_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("{MINIMAL_SITE_A}[actuators]\naddresses = [\"192.0.2.1\"]\n");
    let dns = "[[actuators.dns]]\nserver = \"127.0.0.1:53\"\nzone = \"example.test\"\nnames = [\"app.example.test\"]\n\
        tsig_key_name = \"k\"\ntsig_secret = \"c2VjcmV0\"\n";
    let haproxy = "[[actuators.haproxy]]\naddress = \"127.0.0.1:9999\"\nbackends = [\"app\"]\n\
        servers = { \"site-a\" = \"a\", \"site-b\" = \"b\" }\n";
    let hook = "[[actuators.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\n";
    let cases: [(&str, String, &str); 10] = [
        (
            "no TSIG secret",
            format!("{base}{}", dns.replace("tsig_secret = \"c2VjcmV0\"\n", "")),
            "actuators.dns[0].tsig_secret_file",
        ),
        (
            "name outside the zone",
            format!("{base}{}", dns.replace("app.example.test", "app.other.test")),
            "actuators.dns[0].names",
        ),
        ("bad TSIG algorithm", format!("{base}{dns}tsig_algorithm = \"hmac-md5\"\n"), "hmac-sha256"),
        (
            "this site has no server",
            format!("{base}{}", haproxy.replace("\"site-a\" = \"a\", ", "")),
            "actuators.haproxy[0].servers",
        ),
        ("unknown site", format!("{base}{}", haproxy.replace("site-b", "site-z")), "\"site-z\" is not a site"),
        (
            "bad HAProxy address",
            format!("{base}{}", haproxy.replace("127.0.0.1:9999", "nowhere")),
            "actuators.haproxy[0].address",
        ),
        (
            "bad webhook URL",
            format!("{base}{}", hook.replace("http://127.0.0.1:9/hook", "ftp://x")),
            "actuators.webhook[0].url",
        ),
        ("two with one name", format!("{base}{hook}{hook}"), "two actuators are named"),
        (
            "bad global actuation",
            format!("{base}actuation = \"observing\"\n{hook}"),
            "actuators.actuation: unknown value `observing`",
        ),
        (
            "bad actuation of one actuator",
            format!("{base}{hook}actuation = \"dry-run\"\n"),
            "actuators.webhook[0].actuation: unknown value `dry-run`, expected `act` or `observe`",
        ),
    ];
    assert_configs_refused("failover-controller", dir.path(), &cases);
    // A witness never touches traffic.
    let witness = format!("{base}{hook}").replace("name = \"site-a\"\nstate_dir", "name = \"witness\"\nstate_dir");
    assert_configs_refused(
        "failover-witness",
        dir.path(),
        &[("witness with actuators", witness, "remove [actuators]")],
    );
}

/// A wrong TSIG secret or key name is reported as what `named` said of it
/// (BADSIG, BADKEY), not as a signature the client could not verify.
#[tokio::test]
async fn a_key_named_refuses_is_reported_with_the_servers_reason() {
    let named = Named::start();
    let wrong_secret = "d3Jvbmcgc2VjcmV0IGZvciB0aGUga2V5IGhlcmU=";
    let cases = [
        (named.actuator_section(wrong_secret), "BADSIG"),
        (named.actuator_section(&named.secret).replace(failover_tests::named::KEY_NAME, "no-such-key"), "BADKEY"),
    ];
    for (section, said) in cases {
        let dns = DnsActuator::build(&toml_section(&section), "site-a", &[address("site-a").parse().expect("ip")])
            .expect("build");
        match dns.write(&[], 1).await {
            Err(ActuateError::Refused { detail, .. }) => {
                assert!(detail.contains(&format!("the server answered {said}")), "{said}: {detail}");
                assert!(!detail.contains("file an issue"), "{said}: {detail}");
            }
            other => panic!("{said}: named accepted an update signed with a key it refuses: {other:?}"),
        }
    }
    assert!(named.dig("app", "A").iter().all(|a| a != address("site-a")), "an update went through");
}

/// One DNS answer: the service name's addresses and the fence's text.
type DnsAnswer = (Vec<String>, Vec<String>);

/// Every distinct DNS answer seen, from a thread that asks `named` every
/// 50 ms until told to stop (or 3,000 times).
struct DnsWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<DnsAnswer>>>,
    thread: std::thread::JoinHandle<()>,
}

impl DnsWatch {
    fn start(named: &Arc<Named>) -> DnsWatch {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (named, flag, record) = (Arc::clone(named), Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            for _ in 0..3_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let answer = (named.dig("app", "A"), named.dig("_failover", "TXT"));
                let mut seen = record.lock().expect("watch lock");
                if !seen.contains(&answer) {
                    seen.push(answer);
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        DnsWatch { stop, seen, thread }
    }

    fn finish(self) -> Vec<DnsAnswer> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let seen = self.seen.lock().expect("watch lock").clone();
        seen
    }
}

/// Each site with a DNS actuator against `named` and a 3 s lease, as in
/// production (the restart has that long to come back).
fn restart_spec(named: &Named) -> Spec {
    let dns = |site| {
        (site, format!("[actuators]\naddresses = [\"{}\"]\n\n{}", address(site), named.actuator_section(&named.secret)))
    };
    let lease = |node| (node, "lease = \"1500ms\"", "lease = \"3s\"");
    Spec {
        extra: vec![dns("site-a"), dns("site-b")],
        edits: vec![lease("site-a"), lease("site-b"), lease("witness")],
        ..Spec::default()
    }
}

/// Restart in place: kill -9 of the active site's daemon, started again
/// 100 ms later as systemd would: the same site answers `/active` again
/// under the same epoch, the other site never answers 200, and DNS never
/// changes. A second process on the same state directory is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_active_daemon_restarted_at_once_keeps_the_role_and_dns_never_moves() {
    let named = Arc::new(Named::start());
    let mut c = TestCluster::start(restart_spec(&named)).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let epoch = c.epoch("site-a").expect("epoch");
    assert!(
        c.wait_for(LONG, |_| dns_points_at(&named, "site-a", epoch)).await,
        "DNS never pointed at site-a: {:?}",
        named.dig("app", "A")
    );
    let watch = DnsWatch::start(&named);
    let prober = c.prober();
    c.kill9("site-a");
    // The fault's schedule (systemd's RestartSec), not a wait for a condition.
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.spawn("site-a");
    assert!(
        c.wait_for(LONG, |c| c.role("site-a").as_deref() == Some("active")).await,
        "site-a did not take its role back:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(c.epoch("site-a"), Some(epoch), "the epoch moved: an election happened");
    assert!(c.log("site-a").contains("active again with epoch"), "no resume event:\n{}", c.log_tail("site-a"));
    assert!(
        c.wait_for(LONG, |c| actuator_state(c, "site-a", "dns") == "converged").await,
        "{:?}",
        actuator(&c, "site-a", "dns")
    );

    // Two processes of one node never run at once.
    let second = std::process::Command::new(failover_tests::cluster::bin_dir().join("failover-controller"))
        .args(["run", "--config"])
        .arg(c.config_path("site-a"))
        .output()
        .expect("run a second site-a");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second process of site-a started:\n{said}");
    assert!(said.contains("held by another process (pid "), "the refusal does not name the holder:\n{said}");
    assert_eq!(c.role("site-a").as_deref(), Some("active"), "the refused process disturbed the first");

    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);
    let seen = watch.finish();
    let only = (vec![address("site-a").to_owned()], vec![fence_text(epoch, "site-a")]);
    assert_eq!(seen, vec![only], "DNS changed across the restart");
}

/// A restart after the lease ran out and another site was elected: the
/// restarted site gives its old role up and follows; never two active.
#[tokio::test(flavor = "multi_thread")]
async fn an_active_daemon_restarted_after_a_failover_stands_by() {
    let named = Arc::new(Named::start());
    let mut c = TestCluster::start(restart_spec(&named)).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let first = c.epoch("site-a").expect("epoch");
    let prober = c.prober();
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    let second = c.epoch("site-b").expect("epoch");
    assert!(second > first);
    assert!(c.wait_for(LONG, |_| dns_points_at(&named, "site-b", second)).await, "DNS never followed");
    c.spawn("site-a");
    assert!(
        c.wait_for(LONG, |c| c.role("site-a").as_deref() == Some("standby")
            && c.active_seen_by("site-a").as_deref() == Some("site-b"))
            .await,
        "site-a did not stand by:\n{}",
        c.log_tail("site-a")
    );
    assert!(
        c.log("site-a").contains("restart in place with epoch"),
        "no event says it gave up:\n{}",
        c.log_tail("site-a")
    );
    assert!(dns_points_at(&named, "site-b", second), "the restarted site-a wrote DNS");
    prober.stop().await.assert_never_two_active();
}
