//! The deployment kit works as shipped: the systemd units pass
//! `systemd-analyze verify`, every example config passes `check-config`
//! (with certificates made by `failoverctl certs init`), the compose demo's
//! BIND9 and HAProxy files pass their own checkers, the alert rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`),
//! every metric the rules and the Grafana dashboard use is one a running
//! node exports, and `failoverctl` prints its man page and completions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use failover_tests::cluster::{bin_dir, Spec, TestCluster};
use failover_tests::http_stub::{HookEndpoint, HookReply};
use failover_tests::mongo_test_server::{Member, TestReplicaSet};
use failover_tests::named::Named;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], path: &Path) -> Output {
    Command::new(program.as_ref())
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", program.as_ref()))
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies `file` into `dir` with every `/etc/failover/` path moved into `dir`.
fn localized(file: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("read example");
    let out = dir.join(file.file_name().expect("file name"));
    std::fs::write(&out, text.replace("/etc/failover/", &format!("{}/", dir.display()))).expect("write");
    out
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bins = bin_dir();
    for unit in ["failover-controller.service", "failover-witness.service"] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(unit)).expect("read unit");
        // The binaries are where the build put them, not yet installed.
        let text = text.replace("/usr/local/bin/", &format!("{}/", bins.display()));
        let path = dir.path().join(unit);
        std::fs::write(&path, text).expect("write unit");
        let out = run("systemd-analyze", &["verify", "--man=no"], &path);
        assert_ok(&out, &format!("systemd-analyze verify {unit}"));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains(unit), "warnings about {unit}: {said}");
    }
}

#[test]
fn example_configs_pass_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin_dir().join("failoverctl"))
        .args(["certs", "init", "--nodes", "site-a,site-b,witness", "--out"])
        .arg(dir.path().join("tls"))
        .output()
        .expect("certs init");
    assert_ok(&out, "failoverctl certs init");
    std::fs::write(dir.path().join("admin.token"), "example-token\n").expect("token");
    std::fs::write(dir.path().join("tsig.secret"), "9mSKd6eDzg2GqPBvdxHjlKqFiEoVLhq1p4JpHaz35kU=\n").expect("secret");
    // The hooks the examples name, as the operator installs them.
    std::fs::create_dir(dir.path().join("hooks")).expect("hooks dir");
    for hook in ["pre-promote", "post-promote", "on-demote"] {
        let path = dir.path().join("hooks").join(hook);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("hook");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let examples = repo().join("deploy/examples/three-sites");
    for (file, daemon, expect) in [
        ("site-a.toml", "failover-controller", "site-a as site; actuators: public-dns, lb-region-a"),
        ("site-b.toml", "failover-controller", "site-b as site; actuators: public-dns, lb-region-b"),
        ("witness.toml", "failover-witness", "witness as witness; actuators: none"),
    ] {
        let out =
            run(bin_dir().join(daemon), &["check-config", "--config"], &localized(&examples.join(file), dir.path()));
        assert_ok(&out, &format!("three-sites/{file}"));
        assert!(String::from_utf8_lossy(&out.stdout).contains(expect), "{file}: {out:?}");
    }
    let compose = repo().join("deploy/compose");
    for (file, daemon) in [
        ("site-a.toml", "failover-controller"),
        ("site-b.toml", "failover-controller"),
        ("witness.toml", "failover-witness"),
    ] {
        let path = localized(&compose.join(file), dir.path());
        let out = Command::new(bin_dir().join(daemon))
            .args(["check-config", "--config"])
            .arg(&path)
            .env("FAILOVER_ADMIN__TOKEN", "demo-token-change-me")
            .output()
            .expect("check-config");
        assert_ok(&out, &format!("compose/{file}"));
    }
    assert_ok(&run("named-checkconf", &[], &compose.join("named.conf")), "compose/named.conf");
    assert_ok(&run("haproxy", &["-c", "-f"], &compose.join("haproxy.cfg")), "compose/haproxy.cfg");
}

/// Every `failover_…` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("failover_") && w.len() > "failover_".len())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let rules = repo().join("deploy/monitoring/alerts.yml");
    assert_ok(&run("promtool", &["check", "rules"], &rules), "promtool check rules");

    // A node with a DNS actuator, a webhook and a MongoDB replica set (the
    // test server), so every family has samples.
    let hook = HookEndpoint::start(HookReply::Ok).await;
    let named = Named::start();
    let rs = TestReplicaSet::start(
        "rs0",
        &[Member::Data { priority: 1.0 }, Member::Data { priority: 1.0 }, Member::Arbiter],
    )
    .await
    .expect("MongoDB test server");
    let section = format!(
        "[actuators]\naddresses = [\"127.0.0.10\"]\n{}[[actuators.webhook]]\nname = \"hook\"\nurl = \"{}\"\n{}",
        named.actuator_section(&named.secret),
        hook.url,
        rs.controller_section(&["site-a", "site-b", "witness"], "")
    );
    // With mutual TLS, so the certificate expiry gauge has samples.
    let c = TestCluster::start(Spec { extra: vec![("site-a", section)], tls: true, ..Spec::default() }).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let converged = c
        .wait_for(Duration::from_secs(60), |c| {
            c.status("site-a")
                .is_some_and(|s| s["actuators"].as_array().is_some_and(|a| a.iter().all(|x| x["state"] == "converged")))
        })
        .await;
    assert!(converged, "actuators did not converge: {:?}", c.status("site-a").map(|s| s["actuators"].clone()));
    let (_, exported) = c.http_get("site-a", "/metrics").await.expect("metrics");
    // Every family the node registers, with or without samples yet; a
    // counter's samples are named with `_total`.
    let exported: Vec<String> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .flat_map(|l| match l.split_once(' ') {
            Some((name, "counter")) => vec![name.to_owned(), format!("{name}_total")],
            Some((name, _)) => vec![name.to_owned()],
            None => Vec::new(),
        })
        .collect();
    for file in ["deploy/monitoring/alerts.yml", "deploy/monitoring/grafana-dashboard.json"] {
        let text = std::fs::read_to_string(repo().join(file)).expect("read");
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no metric");
        for name in used {
            assert!(exported.contains(&name), "{file} uses {name}, which no node exports: {exported:?}");
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/monitoring/grafana-dashboard.json")).expect("read"),
    )
    .expect("dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 5));
}

/// The alert rules' own tests: each new rule has a case that fires it.
#[test]
fn alert_rules_pass_their_promtool_tests() {
    let tests = repo().join("deploy/monitoring/alerts.test.yml");
    let out = run("promtool", &["test", "rules"], &tests);
    assert_ok(&out, "promtool test rules");
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"), "{out:?}");
    let cases = std::fs::read_to_string(&tests).expect("read the rule tests");
    for alert in [
        "FailoverCertificateExpiresSoon",
        "FailoverCertificateExpiresVerySoon",
        "FailoverUnplannedFailover",
        "FailoverLeaseNearMisses",
    ] {
        assert!(cases.contains(&format!("alertname: {alert}")), "no promtool case fires {alert}");
    }
}

#[test]
fn failoverctl_prints_its_man_page_and_completions() {
    let ctl = bin_dir().join("failoverctl");
    let man = Command::new(&ctl).arg("man").output().expect("failoverctl man");
    assert_ok(&man, "failoverctl man");
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH failoverctl"), "{man}");
    for sub in ["switchover", "approve", "status", "certs"] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef failoverctl"), ("fish", "complete -c failoverctl")]
    {
        let out = Command::new(&ctl).args(["completions", shell]).output().expect("completions");
        assert_ok(&out, shell);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker) && text.contains("switchover"), "{shell} completion: {text}");
    }
    let bad = Command::new(&ctl).args(["completions", "cmd.exe"]).output().expect("completions");
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("cmd.exe"));
}
