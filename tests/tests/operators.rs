//! Named operators and the audit history, end to end: the real binaries on
//! 127.0.0.1, every node with two named operators (alice, and auditor with
//! a read-only token) beside the shared token. Calls by each, accepted and
//! refused, are made to different nodes; every node is then restarted, and
//! `failoverctl history` (table and `--json`) names the operator of each,
//! merged from all three nodes, each event once, newest first. Waits are
//! conditions with generous deadlines.

use std::collections::HashSet;
use std::process::Output;
use std::time::Duration;

use failover_tests::cluster::{Spec, TestCluster, NODES};

const ALICE: &str = "alice-token-0123456789";
const AUDITOR: &str = "auditor-token-0123456789";

fn ok(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn refused(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} was let through: {}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// The admin calls of a `history --json` document: (operator, command,
/// node, HTTP status), newest first.
fn admin_calls(doc: &serde_json::Value) -> Vec<(String, String, String, u64)> {
    let events = doc["events"].as_array().expect("events is an array");
    events
        .iter()
        .filter(|e| e.get("admin").is_some())
        .map(|e| {
            let text = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
            (
                text(&e["admin"]["operator"]),
                text(&e["admin"]["command"]),
                text(&e["node"]),
                e["admin"]["status"].as_u64().expect("status"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_call_is_in_the_history_with_its_operator_across_the_cluster_and_a_restart() {
    let tokens = tempfile::tempdir().expect("tempdir");
    let (alice, auditor) = (tokens.path().join("alice.token"), tokens.path().join("auditor.token"));
    std::fs::write(&alice, format!("{ALICE}\n")).expect("write a token");
    std::fs::write(&auditor, AUDITOR).expect("write a token");
    let operators = format!(
        "[[admin.tokens]]\nname = \"alice\"\ntoken_file = {:?}\n\n\
         [[admin.tokens]]\nname = \"auditor\"\ntoken_file = {:?}\nread_only = true\n\n",
        alice.display(),
        auditor.display()
    );
    let spec = Spec { extra: NODES.iter().map(|n| (*n, operators.clone())).collect(), ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;

    // Accepted: alice pauses and resumes on the active site, the auditor
    // and the shared token ask who they are on the others.
    ok("alice's pause", &c.ctl_with_token("site-a", Some(ALICE), &["pause"]));
    ok("alice's resume", &c.ctl_with_token("site-a", Some(ALICE), &["resume"]));
    let who = ok("the auditor's whoami", &c.ctl_with_token("site-b", Some(AUDITOR), &["whoami"]));
    assert!(who.contains("operator auditor (read-only)"), "{who}");
    let who = ok("the shared token's whoami", &c.ctl("witness", &["whoami"]));
    assert!(who.contains("operator admin (read-write)"), "{who}");
    // Refused: the read-only token's pause (403, naming why), and a bad token.
    let why = refused("the auditor's pause", &c.ctl_with_token("site-a", Some(AUDITOR), &["pause"]));
    assert!(why.contains("\"auditor\" has a read-only token"), "{why}");
    let why = refused("a bad token's resume", &c.ctl_with_token("site-b", Some("guess"), &["resume"]));
    assert!(why.contains("valid token"), "{why}");

    // Every node restarted; the cluster comes back.
    for node in NODES {
        assert!(c.sigterm(node), "{node} did not stop cleanly:\n{}", c.log_tail(node));
    }
    for node in NODES {
        c.spawn(node);
    }
    let back = c.wait_for(Duration::from_secs(60), |c| NODES.iter().all(|n| c.status(n).is_some())).await;
    assert!(back, "not every node answers after the restart:\n{}", c.log_tail("site-a"));

    // From one endpoint, the whole cluster's history.
    let table = ok("history", &c.ctl_with_token("witness", None, &["history"]));
    for (operator, what) in [
        ("alice", "admin pause by alice"),
        ("alice", "admin resume by alice"),
        ("auditor", "admin whoami by auditor"),
        ("auditor", "admin pause by auditor"),
        ("admin", "admin whoami by admin"),
        ("unknown", "admin resume by unknown"),
    ] {
        let lines: Vec<&str> = table.lines().filter(|l| l.contains(what)).collect();
        assert_eq!(lines.len(), 1, "{what}: once in\n{table}");
        assert!(lines[0].split_whitespace().any(|w| w == operator), "{what}: operator column {operator}: {}", lines[0]);
    }
    assert!(table.contains("403: operator \"auditor\" has a read-only token"), "{table}");

    let out = c.ctl_with_token("site-b", None, &["history", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ok("history --json", &out)).expect("history --json is JSON");
    let mut nodes: Vec<&str> = doc["nodes"].as_array().expect("nodes").iter().filter_map(|n| n.as_str()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["site-a", "site-b", "witness"], "{doc}");
    let events = doc["events"].as_array().expect("events");
    // Each event once, newest first.
    let ids: HashSet<(String, u64)> =
        events.iter().map(|e| (e["node"].as_str().unwrap_or("").to_owned(), e["seq"].as_u64().unwrap_or(0))).collect();
    assert_eq!(ids.len(), events.len(), "an event twice: {doc}");
    let times: Vec<u64> = events.iter().map(|e| e["at_unix_ms"].as_u64().expect("at_unix_ms")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first: {times:?}");
    // The six calls, in the order they were made, newest first.
    let s = |t: &str| t.to_owned();
    let expected = vec![
        (s("unknown"), s("resume"), s("site-b"), 401),
        (s("auditor"), s("pause"), s("site-a"), 403),
        (s("admin"), s("whoami"), s("witness"), 200),
        (s("auditor"), s("whoami"), s("site-b"), 200),
        (s("alice"), s("resume"), s("site-a"), 200),
        (s("alice"), s("pause"), s("site-a"), 200),
    ];
    assert_eq!(admin_calls(&doc), expected, "{doc}");
    // The source of each is the caller's address.
    assert!(events.iter().filter_map(|e| e["admin"]["source"].as_str()).all(|s| s.starts_with("127.0.0.1:")), "{doc}");
}
