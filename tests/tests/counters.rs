//! What operators graph and alert on, read from the real binaries: the
//! `_total` counters of `/metrics` move as docs/operations.md says when the
//! active site is lost and when an operator switches back, and a cluster
//! whose certificates expire within 30 days says so in `/metrics`,
//! `/status`, `failoverctl status` and its log, until renewed certificates
//! are put in use by a reload. The active site counts each renewal of its
//! lease in the margin histogram; a standby counts none.

use std::time::Duration;

use failover_tests::cluster::{bin_dir, Spec, TestCluster};
use failover_tests::http_stub::{HookEndpoint, HookReply};
use failover_tests::metrics_text::sample;

const LONG: Duration = Duration::from_secs(30);
const DAY: i64 = 86_400;

/// `node`'s `/metrics` text.
async fn metrics(c: &TestCluster, node: &str) -> String {
    let (code, body) = c.http_get(node, "/metrics").await.expect("metrics answer");
    assert_eq!(code, 200, "{body}");
    body
}

/// `node`'s `/metrics` text over HTTPS, trusting the cluster CA.
fn https_metrics(c: &TestCluster, node: &str) -> String {
    let url = format!("https://{}/metrics", c.http_address(node));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(c.certs_dir().join("ca.pem"))
        .arg(&url)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{url}: {}", String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

/// [`sample`], which must be there.
fn value(text: &str, series: &str) -> i64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

fn converged(c: &TestCluster, node: &str) -> bool {
    c.status_doc(node).is_some_and(|s| s.actuators.iter().all(|a| a.state.as_str() == "converged"))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const STARTED: &str = "failover_elections_started_total";
const WON: &str = "failover_elections_won_total";
const BECAME_ACTIVE: &str = "failover_role_changes_total{role=\"active\"}";
const PASSES: &str = "failover_actuator_passes_total{actuator=\"hook\",outcome=\"converged\"}";
const RENEWALS: &str = "failover_lease_renewal_margin_seconds_count";
const NEAR_MISSES: &str = "failover_lease_near_misses_total";

fn activations(cause: &str) -> String {
    format!("failover_activations_total{{cause=\"{cause}\"}}")
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_as_documented_when_the_active_site_is_lost_and_switched_back() {
    let hook = HookEndpoint::start(HookReply::Ok).await;
    let section = format!("[[actuators.webhook]]\nname = \"hook\"\nurl = \"{}\"\n", hook.url);
    let spec = Spec { extra: vec![("site-a", section.clone()), ("site-b", section)], ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    assert!(c.wait_for(LONG, |c| converged(c, "site-a")).await, "{:?}", c.status("site-a"));

    // The first active site: one election won, taken as a reclaim, and its
    // actuator converged.
    let a = metrics(&c, "site-a").await;
    assert_eq!(value(&a, WON), 1, "{a}");
    assert!(value(&a, STARTED) >= 1, "{a}");
    assert_eq!(value(&a, BECAME_ACTIVE), 1, "{a}");
    assert_eq!(value(&a, &activations("reclaim")), 1, "{a}");
    assert_eq!(value(&a, &activations("automatic_failover")), 0, "{a}");
    assert!(value(&a, PASSES) >= 1, "{a}");
    // Its lease is renewed every heartbeat, and each renewal is counted.
    // How many were near misses depends on the machine's load: only that
    // the counter is there is checked.
    let renewals = value(&a, RENEWALS);
    assert!(renewals >= 1, "{a}");
    assert!(sample(&a, NEAR_MISSES).is_some(), "{a}");
    let a = wait_for_sample(&c, "site-a", RENEWALS, |n| n > renewals).await;
    assert!(value(&a, RENEWALS) > renewals, "no renewal counted after {renewals}:\n{a}");

    // A standby: never active, and its actuator runs no pass.
    let before = metrics(&c, "site-b").await;
    assert_eq!(value(&before, WON), 0, "{before}");
    assert_eq!(value(&before, BECAME_ACTIVE), 0, "{before}");
    assert_eq!(value(&before, &activations("automatic_failover")), 0, "{before}");
    assert_eq!(sample(&before, PASSES), None, "{before}");
    assert_eq!(value(&before, RENEWALS), 0, "{before}");
    assert_eq!(value(&before, NEAR_MISSES), 0, "{before}");

    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "no failover:\n{}", c.log_tail("site-b"));
    assert!(c.wait_for(LONG, |c| converged(c, "site-b")).await, "{:?}", c.status("site-b"));
    let after = metrics(&c, "site-b").await;
    assert!(value(&after, STARTED) > value(&before, STARTED), "{after}");
    assert_eq!(value(&after, WON), 1, "{after}");
    assert_eq!(value(&after, BECAME_ACTIVE), 1, "{after}");
    assert_eq!(value(&after, &activations("automatic_failover")), 1, "{after}");
    assert_eq!(value(&after, &activations("reclaim")), 0, "{after}");
    assert!(value(&after, PASSES) >= 1, "{after}");
    assert_eq!(value(&after, "failover_handoffs_total{reason=\"switchover\"}"), 0, "{after}");
    // The witness never takes a role but its own.
    let w = metrics(&c, "witness").await;
    assert_eq!(value(&w, BECAME_ACTIVE), 0, "{w}");

    // site-a comes back (its counters start again from 0) and an operator
    // switches back to it: a handoff on both sides.
    c.spawn("site-a");
    let back = c
        .wait_for(LONG, |c| {
            let out = c.ctl("site-b", &["switchover", "--to", "site-a"]);
            out.status.success()
        })
        .await;
    assert!(back, "switchover refused:\n{}", c.log_tail("site-b"));
    assert!(c.wait_active("site-a").await, "no switchover:\n{}", c.log_tail("site-a"));
    let a = metrics(&c, "site-a").await;
    assert_eq!(value(&a, &activations("handoff")), 1, "{a}");
    assert_eq!(value(&a, &activations("reclaim")), 0, "{a}");
    let stepped_down = "failover_step_downs_total{reason=\"switchover\"}";
    let b = wait_for_sample(&c, "site-b", stepped_down, |n| n == 1).await;
    assert_eq!(value(&b, stepped_down), 1, "{b}");
    assert_eq!(value(&b, "failover_handoffs_total{reason=\"switchover\"}"), 1, "{b}");
    assert_eq!(value(&b, &activations("handoff")), 0, "{b}");
}

/// `node`'s `/metrics` once `series` reads a value that is `wanted`, or
/// after [`LONG`].
async fn wait_for_sample(c: &TestCluster, node: &str, series: &str, wanted: impl Fn(i64) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let text = metrics(c, node).await;
        if sample(&text, series).is_some_and(&wanted) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_expiring_within_30_days_are_shown_until_renewed_ones_are_reloaded() {
    let spec = Spec { tls: true, https: true, cert_days: Some(20), ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let certs = c.certs_dir();
    let node_pem = certs.join("site-a.pem").display().to_string();
    let ca_pem = certs.join("ca.pem").display().to_string();

    // /status: the node certificate, as peer and HTTP certificate, with a
    // warning naming the file, its key and when; the CA (ten years) none.
    let doc = c.status_doc("site-a").expect("status");
    let shown: Vec<(&str, &str)> = doc.certificates.iter().map(|c| (c.certificate.as_str(), c.file.as_str())).collect();
    assert_eq!(
        shown,
        [
            ("peer", node_pem.as_str()),
            ("ca", ca_pem.as_str()),
            ("http", node_pem.as_str()),
            ("http_ca", ca_pem.as_str())
        ]
    );
    for cert in &doc.certificates {
        let left = cert.expires_in_s;
        if cert.certificate.ends_with("ca") {
            assert!(left > 3000 * DAY && cert.warning.is_none(), "{cert:?}");
        } else {
            assert!(left > 18 * DAY && left <= 20 * DAY, "{cert:?}");
            let warning = cert.warning.as_deref().expect("a warning within 30 days");
            let expected = format!(
                "{} certificate {node_pem} ({}) expires at {}, in ",
                cert.certificate, cert.key, cert.expires_at
            );
            assert!(warning.starts_with(&expected) && warning.contains(" days: renew it"), "{warning}");
        }
    }

    // failoverctl status says it in words.
    let out = c.ctl("site-a", &["status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let line = format!("CERTIFICATE: site-a's peer certificate {node_pem} (tls.cert_file) expires at ");
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains(&format!("CERTIFICATE: site-a's http certificate {node_pem} (admin.tls_cert_file)")),
        "{text}"
    );
    assert!(!text.contains("ca certificate"), "{text}");

    // /metrics: seconds left, below 30 days for the node certificate.
    let m = https_metrics(&c, "site-a");
    let gauge = |which: &str, file: &str| {
        format!("failover_certificate_expiry_seconds{{certificate=\"{which}\",file=\"{file}\"}}")
    };
    let peer_left = value(&m, &gauge("peer", &node_pem));
    assert!(peer_left > 18 * DAY && peer_left < 30 * DAY, "{m}");
    assert!(value(&m, &gauge("ca", &ca_pem)) > 3000 * DAY, "{m}");

    // And the log, at start.
    assert!(c.log("site-a").contains(&format!("peer certificate {node_pem} (tls.cert_file) expires at")));

    // Renewed from the same CA for two years, put in place under the same
    // names and reloaded: the warning is gone, the gauge follows.
    let renewed = c.dir.path().join("renewed");
    let out = std::process::Command::new(bin_dir().join("failoverctl"))
        .args(["certs", "issue", "--nodes", "site-a", "--http-name", "site-a=127.0.0.1", "--ca-dir"])
        .arg(&certs)
        .arg("--out")
        .arg(&renewed)
        .output()
        .expect("certs issue");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["site-a.pem", "site-a.key"] {
        std::fs::copy(renewed.join(file), certs.join(file)).expect("put the renewed file in place");
    }
    let out = c.ctl("site-a", &["reload", "--node", "site-a"]);
    assert!(out.status.success(), "reload: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let doc = c.status_doc("site-a").expect("status");
    assert!(doc.certificates.iter().all(|c| c.warning.is_none() && c.expires_in_s > 700 * DAY), "{doc:?}");
    let text = stdout(&c.ctl("site-a", &["status"]));
    assert!(!text.contains("CERTIFICATE:"), "{text}");
    let m = https_metrics(&c, "site-a");
    assert!(value(&m, &gauge("peer", &node_pem)) > 700 * DAY, "{m}");
}
