//! A node whose state file is gone, against the real binaries: it is never
//! taken for a new node. It votes only once the members that may hold its
//! forgotten vote have told it the cluster's term and last chosen site,
//! while `init`, the explicit first start, makes a new node at once.

use std::time::Duration;

use failover_tests::cluster::{bin_dir, Spec, TestCluster};

/// Generous: the machines are shared and slow at times.
const LONG: Duration = Duration::from_secs(60);

fn events(c: &TestCluster, node: &str) -> Vec<String> {
    c.status_doc(node).map(|d| d.events.into_iter().map(|e| e.event).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_witness_without_its_state_file_votes_only_once_it_has_caught_up() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-a").expect("site-a's epoch");
    // Every node started through `init`: none is recovering.
    for node in ["site-a", "site-b", "witness"] {
        let doc = c.status_doc(node).expect("status");
        assert_eq!(doc.recovering, None, "{node} recovering after init");
    }
    // The witness stops; `init` on it is refused: it has run, so it keeps
    // its file.
    c.kill9("witness");
    let again = std::process::Command::new(bin_dir().join("failover-witness"))
        .args(["init", "--config"])
        .arg(c.config_path("witness"))
        .output()
        .expect("run init");
    assert!(!again.status.success(), "init overwrote a state file");
    assert!(String::from_utf8_lossy(&again.stderr).contains("a state file is already there"), "{again:?}");

    // Then it loses its disk, and the active site dies.
    std::fs::remove_file(c.state_dir("witness").join("state.json")).expect("remove the witness's state file");
    c.kill9("site-a");
    c.spawn("witness");

    // Site-b, the only site left, asks the witness for its vote; the
    // witness, which may have voted in any term it had seen, refuses until
    // site-a, for which it may have voted, has answered too.
    let refused =
        |c: &TestCluster| events(c, "site-b").iter().any(|e| e.contains("witness refused") && e.contains("Recovering"));
    assert!(
        c.wait_for(LONG, refused).await,
        "site-b was never refused by the recovering witness:\n{}",
        c.log_tail("site-b")
    );
    let witness = c.status_doc("witness").expect("witness status");
    assert_eq!(witness.recovering, Some(vec!["site-a".to_owned()]), "it waits for site-a only");
    assert_ne!(c.role("site-b").as_deref(), Some("active"), "site-b was elected by a vote the witness may have cast");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.state_dir("witness").join("state.json")).expect("state file"))
            .expect("json");
    assert_eq!(on_disk["recovering"], true, "a restart before it caught up would forget that it has to");
    assert!(c.log("witness").contains("lost its state file"), "no warning at start:\n{}", c.log_tail("witness"));

    // Site-a comes back (its own file intact): it takes its role back in
    // place, its lease renewed by site-b (the witness grants nothing while
    // recovering, renewals included); and its answer ends the witness's
    // recovery.
    c.spawn("site-a");
    let caught_up = |c: &TestCluster| c.status_doc("witness").is_some_and(|d| d.recovering.is_none());
    assert!(c.wait_for(LONG, caught_up).await, "the witness never caught up:\n{}", c.log_tail("witness"));
    assert!(
        events(&c, "witness")
            .iter()
            .any(|e| e.contains("caught up after losing its state file") && e.contains("site-a")),
        "{:?}",
        events(&c, "witness")
    );
    assert!(c.wait_active("site-a").await, "site-a never took its role back:\n{}", c.log_tail("site-a"));
    assert_eq!(c.epoch("site-a"), Some(epoch), "nothing moved: the same epoch");
    let witness = c.status_doc("witness").expect("witness status");
    assert!(witness.term >= epoch, "the witness took the cluster's term: {}", witness.term);
    prober.stop().await.assert_only_active(&[c.active_url("site-a")]);
}
