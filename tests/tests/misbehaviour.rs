//! Safety that does not depend on good behaviour, end to end: the real
//! binaries on 127.0.0.1 with configs that differ between nodes, and a
//! hostile client on the peer port. A prober samples both sites' `/active`
//! every 10 ms throughout each test and fails it on any sample where both
//! answer 200. Waits are conditions with generous deadlines.

use std::time::Duration;

use failover_proto::v1 as pb;
use failover_tests::cluster::{Spec, TestCluster, NODES};

const LONG: Duration = Duration::from_secs(30);

/// The measured failure this guards against: site-a's own file said
/// `lease = "6s"` while the others said 1500 ms; isolated, site-a kept
/// answering as active for seconds after site-b took over. Now its lease
/// lasts only as long as its voters promised.
#[tokio::test(flavor = "multi_thread")]
async fn a_site_whose_own_config_names_a_longer_lease_still_stops_before_the_other_starts() {
    let spec = Spec { edits: vec![("site-a", "lease = \"1500ms\"", "lease = \"6s\"")], ..Spec::default() };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let prober = c.prober();
    c.isolate("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    assert!(c.wait_for(LONG, |c| c.role("site-a").as_deref() != Some("active")).await);
    c.heal();
    assert!(c.wait_for(LONG, |c| c.active_seen_by("site-a").as_deref() == Some("site-b")).await);
    prober.stop().await.assert_never_two_active();
}

fn mismatches(c: &TestCluster, node: &str) -> Vec<(String, String)> {
    let status = c.status(node).unwrap_or_default();
    status["config_mismatches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["peer"].as_str().unwrap_or("").to_owned(), m["theirs"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_member_list_differs_is_refused_shown_and_taken_back_once_fixed() {
    // Only the witness's file gives site-b another priority.
    let spec = Spec { edits: vec![("witness", "priority = 1\n", "priority = 3\n")], ..Spec::default() };
    let mut c = TestCluster::start(spec).await;
    // The witness cannot confirm it: it hears nothing from either site.
    let site_a_active = c.wait_for(LONG, |c| c.role("site-a").as_deref() == Some("active")).await;
    assert!(site_a_active, "site-a never became active:\n{}", c.log_tail("site-a"));
    let prober = c.prober();
    let ours = c.status("site-a").and_then(|s| s["cluster_fingerprint"].as_str().map(str::to_owned));
    let witness = c.status("witness").and_then(|s| s["cluster_fingerprint"].as_str().map(str::to_owned));
    let (ours, witness) = (ours.expect("site-a's fingerprint"), witness.expect("the witness's fingerprint"));
    assert_ne!(ours, witness);
    assert!(c.wait_for(LONG, |c| mismatches(c, "site-a") == [("witness".into(), witness.clone())]).await);
    let both = [("site-a".to_owned(), ours.clone()), ("site-b".to_owned(), ours.clone())];
    assert!(c.wait_for(LONG, |c| mismatches(c, "witness") == both).await, "{:?}", mismatches(&c, "witness"));
    let out = c.ctl("site-a", &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CONFIG MISMATCH: witness's members, votes or priorities differ")
            && text.contains(&ours)
            && text.contains(&witness),
        "{text}"
    );
    let (_, metrics) = c.http_get("site-a", "/metrics").await.expect("metrics");
    assert!(metrics.contains("failover_peer_config_mismatch{peer=\"witness\"} 1"), "{metrics}");
    assert!(metrics.contains("failover_peer_config_mismatch{peer=\"site-b\"} 0"), "{metrics}");
    // The witness's messages are refused, so site-a sees it as away; the
    // two sites still agree and hold the majority.
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    let logged = c.log("site-a").matches("differ from this node's").count();
    assert_eq!(logged, 1, "logged once per change, not per message:\n{}", c.log_tail("site-a"));
    // The operator fixes the witness's file and restarts it.
    c.kill9("witness");
    let path = c.config_path("witness");
    let fixed = std::fs::read_to_string(&path).expect("config").replace("priority = 3\n", "priority = 1\n");
    std::fs::write(&path, fixed).expect("write config");
    c.spawn("witness");
    assert!(c.wait_for(LONG, |c| mismatches(c, "site-a").is_empty()).await, "{:?}", mismatches(&c, "site-a"));
    assert!(c.wait_for(LONG, |c| c.active_seen_by("witness").as_deref() == Some("site-a")).await);
    prober.stop().await.assert_never_two_active();
}

/// Every kind of message, each carrying `counter` wherever it has a term
/// or a version.
fn hostile_bodies(counter: u64, target: &str) -> Vec<pb::envelope::Body> {
    use pb::envelope::Body;
    let report = Some(pb::SiteReport { healthy: true, caught_up: true, sees_quorum: true });
    let request = pb::VoteRequest { term: counter, report, approved: true, handoff: true };
    let reply = pb::VoteReply { term: counter, granted: true, refusal: 0, lease_held_ms: 0, bound_ms: 3000 };
    let lease = pb::LeaseRenewal { seq: counter, cause: pb::ActivationCause::Forced as i32, cooldown_ms: counter };
    let pause = pb::PauseSetting { version: counter, by: target.to_owned(), paused: true };
    vec![
        Body::PreVote(request),
        Body::Vote(request),
        Body::PreVoteReply(reply),
        Body::VoteReply(reply),
        Body::Heartbeat(pb::Heartbeat {
            term: counter,
            lease: Some(lease),
            report,
            pause: Some(pause.clone()),
            proposal: None,
            maintenance: Some(pb::MaintenanceSetting {
                version: counter,
                by: target.to_owned(),
                sites: vec![target.to_owned()],
                notes: Vec::new(),
            }),
        }),
        Body::HeartbeatReply(pb::HeartbeatReply { term: counter, seq: 1, granted: true, bound_ms: 3000 }),
        Body::ReleaseLease(pb::ReleaseLease { term: counter, to: target.to_owned() }),
        Body::ReleaseAck(pb::ReleaseAck { term: counter }),
        Body::TimeoutNow(pb::TimeoutNow { term: counter }),
        Body::StateAnswer(pb::StateAnswer {
            term: counter,
            last_chosen: target.to_owned(),
            last_chosen_term: counter,
            pause: Some(pause),
            maintenance: None,
        }),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_client_sending_the_largest_terms_leaves_the_cluster_electing_normally() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let prober = c.prober();
    let epoch = c.epoch("site-b").expect("epoch");
    let max = failover_core::MAX_TERM;
    let mut refused = 0;
    for node in NODES {
        let addr = c.peer_address(node);
        let mut client = pb::peer_client::PeerClient::connect(format!("http://{addr}")).await.expect("connect");
        // Claiming to be each other member in turn, without TLS.
        for from in NODES.iter().filter(|&&n| n != node) {
            for counter in [u64::MAX, u64::MAX - 1, max + 1] {
                for body in hostile_bodies(counter, "site-b") {
                    let envelope = pb::Envelope {
                        from: (*from).to_owned(),
                        cluster: String::new(),
                        cluster_name: String::new(),
                        body: Some(body),
                    };
                    let answer = client.deliver(envelope).await;
                    let status = answer.expect_err("a counter beyond 2^48 must be refused");
                    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                    assert!(status.message().contains("2^48"), "{status:?}");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(refused, 3 * 2 * 3 * 10);
    for node in NODES {
        let term = c.status(node).and_then(|s| s["term"].as_u64()).expect("term");
        assert!(term < 1000, "{node} took a hostile term: {term}");
    }
    assert!(c.log("witness").contains("rejected a peer message"), "{}", c.log_tail("witness"));
    // Still electing normally: the active site dies, the other takes over.
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    assert!(c.epoch("site-b").expect("epoch") > epoch);
    prober.stop().await.assert_never_two_active();
}

/// A state directory restored to the wrong place: site-b's file, written
/// in cluster "test", read by a site-b configured for another cluster.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_of_another_cluster_stops_the_node_at_start_with_both_names() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let state = c.state_dir("site-b").join("state.json");
    assert!(c.wait_for(LONG, |_| std::fs::read_to_string(&state).is_ok_and(|t| t.contains("\"test\""))).await);
    c.kill9("site-b");
    let before = std::fs::read(&state).expect("site-b's state file");
    let path = c.config_path("site-b");
    let ours = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, ours.replace("name = \"test\"", "name = \"staging\"")).expect("write config");
    c.spawn("site-b");
    let exit = c.wait_exit("site-b", LONG).await.expect("site-b must stop by itself");
    assert!(!exit.success(), "{exit:?}");
    let log = c.log("site-b");
    assert!(log.contains("belongs to cluster \"test\", not \"staging\""), "{}", c.log_tail("site-b"));
    assert_eq!(std::fs::read(&state).expect("state file"), before, "a refused file must be left as it was");
    // Its own configuration back, it rejoins from the same file.
    std::fs::write(&path, ours).expect("write config");
    c.spawn("site-b");
    assert!(c.wait_for(LONG, |c| c.active_seen_by("site-b").as_deref() == Some("site-a")).await);
}

/// 2^48, the ceiling of terms and versions.
const CEILING: u64 = 1 << 48;

/// Runs `repair-ceiling` of `node`'s daemon on its config, with `--to` if
/// given.
fn repair_ceiling(c: &TestCluster, node: &str, to: Option<u64>) -> std::process::Output {
    let bin = if node == "witness" { "failover-witness" } else { "failover-controller" };
    let mut cmd = std::process::Command::new(failover_tests::cluster::bin_dir().join(bin));
    cmd.args(["repair-ceiling", "--config"]).arg(c.config_path(node));
    if let Some(to) = to {
        cmd.args(["--to", &to.to_string()]);
    }
    tokio::task::block_in_place(|| cmd.output()).expect("run repair-ceiling")
}

/// What one hostile message does to a cluster without peer TLS: every
/// node's state file at term 2^48 and the pause switch at version 2^48,
/// which survive restarts. With the cluster stopped, `repair-ceiling` (which
/// a running node refuses) shows the highest counter below the ceiling on
/// each node, sets the pinned ones to a value above all of them, and the
/// cluster elects again and its pause switch moves again.
#[tokio::test(flavor = "multi_thread")]
async fn counters_at_the_ceiling_are_repaired_with_the_cluster_stopped_and_elections_resume() {
    let mut c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let b_state = c.state_dir("site-b").join("state.json");
    assert!(c.wait_for(LONG, |_| b_state.exists()).await, "site-b wrote no state file");
    let running = repair_ceiling(&c, "site-b", Some(100));
    let err = String::from_utf8_lossy(&running.stderr);
    assert!(!running.status.success() && err.contains("held by another process"), "{err}");
    for n in NODES {
        let state = c.state_dir(n).join("state.json");
        assert!(c.wait_for(LONG, |_| state.exists()).await, "{n} wrote no state file");
        c.kill9(n);
    }
    for n in NODES {
        let path = c.state_dir(n).join("state.json");
        let mut state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("state file")).expect("json");
        state["term"] = CEILING.into();
        state["pause_version"] = CEILING.into();
        state["pause_by"] = "witness".into();
        state["paused"] = false.into();
        std::fs::write(&path, serde_json::to_vec(&state).expect("json")).expect("write state file");
    }
    // Shown at start, loudly.
    c.spawn("site-a");
    assert!(c.wait_for(LONG, |c| c.log("site-a").contains("at the ceiling")).await, "{}", c.log_tail("site-a"));
    c.kill9("site-a");

    let mut highest = 0;
    for n in NODES {
        let out = repair_ceiling(&c, n, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{n}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("term {CEILING}")) && text.contains("nothing changed"), "{n}: {text}");
        let figure = text
            .lines()
            .find_map(|l| l.strip_prefix("highest counter below the ceiling: "))
            .and_then(|f| f.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{n}: no highest counter in {text}"));
        highest = highest.max(figure);
    }
    let to = highest + 1;
    let below = repair_ceiling(&c, "site-b", Some(highest));
    assert!(!below.status.success(), "a value not above every counter must be refused");
    for n in NODES {
        let out = repair_ceiling(&c, n, Some(to));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{n}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("changed: term {CEILING} -> {to}")), "{n}: {text}");
        assert!(text.contains(&format!("changed: pause version {CEILING} -> {to}")), "{n}: {text}");
        let again = repair_ceiling(&c, n, Some(to + 1));
        assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to repair"), "{n}: repaired twice");
    }
    for n in NODES {
        c.spawn(n);
    }
    assert!(c.wait_active("site-a").await, "no election after the repair:\n{}", c.log_tail("site-a"));
    assert!(c.epoch("site-a").is_some_and(|e| e > to), "epoch {:?} not above {to}", c.epoch("site-a"));
    let paused = c.ctl("site-b", &["pause"]);
    assert!(paused.status.success(), "{}", String::from_utf8_lossy(&paused.stderr));
    for n in NODES {
        assert!(c.wait_for(LONG, |c| c.status(n).and_then(|s| s["paused"].as_bool()) == Some(true)).await, "{n}");
    }
}
