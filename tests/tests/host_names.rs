//! End-to-end: members named by host name. Every address in every node's
//! file is `localhost:PORT`, resolved by the system resolver when a node
//! connects; each node binds its own ports on 127.0.0.1 through its listen
//! addresses, so the test does not depend on what else `localhost` may
//! resolve to. A name that does not resolve is a warning at check-config
//! and shows in `/status` and the log of the node that cannot reach it;
//! once the name is added to the hosts file, the next connection uses it,
//! without an edit or a restart.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use failover_tests::cluster::{bin_dir, Spec, TestCluster};

const LONG: Duration = Duration::from_secs(30);

fn named() -> Spec {
    Spec { host_names: true, ..Spec::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_addressed_by_host_names_elects_a_site_and_fails_over_when_it_is_killed() {
    let mut c = TestCluster::start_with_site_a_active(named()).await;
    let text = std::fs::read_to_string(c.config_path("site-b")).expect("config");
    assert!(text.contains("\npeer_address = \"localhost:") && !text.contains("\npeer_address = \"127."), "{text}");
    c.assert_kill9_of_site_a_fails_over_to_site_b().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_name_that_does_not_resolve_is_a_check_config_warning_and_shown_in_status_and_log() {
    let mut c = TestCluster::start_with_site_a_active(named()).await;
    // site-b's file names the witness by a name that never resolves
    // (`.invalid`, RFC 6761); the others are untouched.
    c.kill9("site-b");
    let path = c.config_path("site-b");
    let text = std::fs::read_to_string(&path).expect("config");
    let witness = "name = \"witness\"\nkind = \"witness\"\npeer_address = \"localhost:";
    assert!(text.contains(witness), "{text}");
    let edited = text.replace(witness, "name = \"witness\"\nkind = \"witness\"\npeer_address = \"witness.invalid:");
    std::fs::write(&path, &edited).expect("write config");

    let out = Command::new(bin_dir().join("failover-controller"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check-config refused a name that does not resolve: {stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("members[2] (witness).peer_address: witness.invalid:")
            && stderr.contains(" does not resolve: "),
        "{stderr}"
    );

    c.spawn("site-b");
    let shown = c
        .wait_for(LONG, |c| {
            let Some(status) = c.status_doc("site-b") else { return false };
            status.sites.iter().any(|s| {
                s.id == "witness"
                    && s.address_problem.as_deref().is_some_and(|p| {
                        p.starts_with("peer-address witness.invalid:") && p.contains(" does not resolve: ")
                    })
            })
        })
        .await;
    assert!(shown, "site-b's /status does not say the witness's name does not resolve:\n{:?}", c.status("site-b"));
    assert!(c.log("site-b").contains("peer-address witness.invalid:"), "{}", c.log_tail("site-b"));
    let out = c.ctl("site-b", &["status"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("UNRESOLVED: site-b cannot reach witness: peer-address witness.invalid:"), "{shown}");
    // The other peer resolves: nothing shown for it.
    let status = c.status_doc("site-b").expect("status");
    assert!(status.sites.iter().filter(|s| s.id != "witness").all(|s| s.address_problem.is_none()), "{status:?}");
    // site-a still holds the role through the witness.
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_name_added_to_the_hosts_file_is_used_at_the_next_connection_without_a_restart() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let hosts: PathBuf = scratch.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("hosts file");
    // site-b names the witness witness.test, which its hosts file does not
    // have yet; the others use localhost.
    let witness = "name = \"witness\"\nkind = \"witness\"\npeer_address = \"localhost:";
    let renamed = "name = \"witness\"\nkind = \"witness\"\npeer_address = \"witness.test:";
    let spec = Spec { hosts_file: Some(hosts.clone()), edits: vec![("site-b", witness, renamed)], ..named() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let problem = |c: &TestCluster| {
        c.status_doc("site-b")
            .and_then(|s| s.sites.into_iter().find(|s| s.id == "witness"))
            .and_then(|s| s.address_problem)
    };
    let heard_from_b = |c: &TestCluster| {
        c.status_doc("witness").and_then(|s| s.sites.into_iter().find(|s| s.id == "site-b")).map(|s| s.reachable)
    };
    assert!(
        c.wait_for(LONG, |c| problem(c).is_some_and(|p| p.starts_with("peer-address witness.test:"))).await,
        "site-b does not say witness.test does not resolve: {:?}",
        c.status("site-b")
    );
    assert_eq!(heard_from_b(&c), Some(false), "the witness hears site-b through a name that does not resolve");

    // The same file, rewritten in place: what a DNS change does.
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 witness.test\n").expect("hosts file");
    assert!(
        c.wait_for(LONG, |c| heard_from_b(c) == Some(true) && problem(c).is_none()).await,
        "site-b did not reach the witness once its name resolved: {:?}\n{}",
        c.status("site-b"),
        c.log_tail("site-b")
    );
    assert!(c.log("site-b").contains("peer-address resolves again"), "{}", c.log_tail("site-b"));
}
