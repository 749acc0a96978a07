//! MongoDB coordination through the real `mongodb` driver against the
//! MongoDB *test server* (`failover_tests::mongo_test_server`): a
//! wire-protocol stand-in, not MongoDB, since no MongoDB server can be
//! installed where these tests run. The real binaries run as a three-node
//! cluster whose sites map members of the test replica set.
//!
//! Waits are conditions with generous deadlines; nothing is timed.

use std::time::Duration;

use failover_controller::mongo::store::{Claim, MongoStore, StoreError};
use failover_tests::cluster::{assert_configs_refused, Spec, TestCluster, MINIMAL_SITE_A};
use failover_tests::mongo_test_server::{as_number, Fault, Member, TestReplicaSet};
use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;

const LONG: Duration = Duration::from_secs(60);

fn number(d: &Document, key: &str) -> f64 {
    d.get(key).and_then(as_number).unwrap_or_else(|| panic!("{key} is not a number: {d}"))
}

/// `[mongodb]` for a site, with short grace and catch-up periods: member
/// i of `rs` sits beside `sites[i]`.
fn mongodb_section(rs: &TestReplicaSet, sites: &[&str], extra: &str) -> String {
    let settings = format!(
        "priority_takeover_grace = \"1s\"\nstep_down_catch_up = \"1s\"\nmax_lag_on_failover = \"10s\"\n{extra}"
    );
    rs.controller_section(sites, &settings)
}

async fn cluster_with(rs: &TestReplicaSet, sites: &[&str], extra: &str) -> TestCluster {
    let section = mongodb_section(rs, sites, extra);
    let spec =
        Spec { extra: vec![("site-a", section.clone()), ("site-b", section)], drain: Some("1s"), ..Spec::default() };
    TestCluster::start(spec).await
}

/// This node's view of member `host` in `/status`.
fn member_view(c: &TestCluster, node: &str, host: &str) -> Option<serde_json::Value> {
    let status = c.status(node)?;
    status["mongodb"]["view"]["members"].as_array()?.iter().find(|m| m["host"] == host).cloned()
}

fn mongodb_actuator(c: &TestCluster, node: &str) -> Option<serde_json::Value> {
    c.status(node)?["actuators"].as_array()?.iter().find(|a| a["name"] == "mongodb").cloned()
}

fn pss() -> [Member; 3] {
    [Member::Data { priority: 1.0 }, Member::Data { priority: 1.0 }, Member::Data { priority: 1.0 }]
}

#[tokio::test]
async fn the_driver_reads_and_writes_through_the_test_server_and_sees_its_faults() {
    let rs = TestReplicaSet::start(
        "rs0",
        &[Member::Data { priority: 2.0 }, Member::Data { priority: 1.0 }, Member::Arbiter],
    )
    .await
    .expect("test server starts");
    let mut options = ClientOptions::parse(rs.uri()).await.expect("uri");
    options.server_selection_timeout = Some(Duration::from_secs(2));
    let client = mongodb::Client::with_options(options).expect("client");
    let coll = client.database("app").collection::<Document>("things");
    coll.insert_one(doc! { "_id": 1, "n": 1 }).await.expect("insert");
    let dup = coll.insert_one(doc! { "_id": 1 }).await.expect_err("duplicate _id");
    assert!(dup.to_string().contains("11000"), "{dup}");
    coll.update_one(doc! { "_id": 1, "n": { "$lt": 5 } }, doc! { "$inc": { "n": 4 } }).await.expect("update");
    let found = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("found");
    assert_eq!(found, doc! { "_id": 1, "n": 5 });
    let admin = client.database("admin");
    let status = admin.run_command(doc! { "replSetGetStatus": 1 }).await.expect("status");
    let states: Vec<&str> = status
        .get_array("members")
        .unwrap()
        .iter()
        .map(|m| m.as_document().unwrap().get_str("stateStr").unwrap())
        .collect();
    assert_eq!(states, ["PRIMARY", "SECONDARY", "ARBITER"]);
    // Majority writes stop when the only secondary is down (a PSA set).
    rs.set_up(1, false);
    let majority = client.database("app").collection_with_options::<Document>(
        "things",
        mongodb::options::CollectionOptions::builder()
            .write_concern(mongodb::options::WriteConcern::majority())
            .build(),
    );
    let err = majority.insert_one(doc! { "_id": 2 }).await.expect_err("no majority");
    assert!(err.to_string().contains("WriteConcernFailed"), "{err}");
    rs.set_up(1, true);
    // The driver retries a read once after a lost connection; a second
    // loss reaches the caller as an error, and the next call works.
    rs.fail_next("find", Fault::CloseConnection);
    assert!(coll.find_one(doc! {}).await.is_ok(), "one lost connection is retried");
    rs.fail_next("find", Fault::CloseConnection);
    rs.fail_next("find", Fault::CloseConnection);
    assert!(coll.find_one(doc! {}).await.is_err(), "two lost connections are an error");
    assert!(coll.find_one(doc! { "_id": 1 }).await.expect("find again").is_some());
    // Operators the test server does not know are refused, not ignored.
    let err = coll.find_one(doc! { "x": { "$regex": "a" } }).await.expect_err("unsupported");
    assert!(err.to_string().contains("does not support"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_primary_follows_the_active_site_through_switchover_and_failover() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    rs.with(|set| {
        let members = set.config.get_array_mut("members").expect("members");
        let a = members[0].as_document_mut().expect("member");
        a.insert("tags", doc! { "dc": "east" });
    });
    let (a, b, w) = (rs.hosts()[0].clone(), rs.hosts()[1].clone(), rs.hosts()[2].clone());
    let mut c = cluster_with(&rs, &["site-a", "site-b", "witness"], "").await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await, "primary never moved to site-a");
    assert!(c.wait_for(LONG, |c| mongodb_actuator(c, "site-a").is_some_and(|a| a["state"] == "converged")).await);
    let config = rs.member_config(0);
    assert_eq!(number(&config, "priority"), 10.0);
    assert_eq!(config.get_document("tags").expect("tags kept"), &doc! { "dc": "east" });
    assert_eq!(number(&rs.member_config(2), "priority"), 1.0, "the witness's member is a standby");
    // Every site shows the set.
    assert!(c.wait_for(LONG, |c| member_view(c, "site-b", &a).is_some_and(|m| m["state"] == "PRIMARY")).await);
    assert_eq!(member_view(&c, "site-b", &b).expect("b")["site"], "site-b");
    assert_eq!(member_view(&c, "site-b", &w).expect("w")["site"], "witness");

    // Planned switchover: the old site moves priorities and steps its
    // primary down before handing over (MongoDB's priority takeover is off
    // here, so only the step-down can move it).
    rs.set_priority_takeover(false);
    let out = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-b").await, "site-b never became active");
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(1)).await, "primary never moved to site-b");
    assert!(!rs.commands("replSetStepDown").is_empty(), "the old primary was stepped down");
    let (ca, cb) = (rs.member_config(0), rs.member_config(1));
    assert_eq!((number(&ca, "priority"), number(&cb, "priority")), (1.0, 10.0));
    assert_eq!(ca.get_document("tags").expect("tags kept"), &doc! { "dc": "east" });

    // Unplanned failover: site-b's controller dies (its MongoDB member does
    // not); site-a takes over and MongoDB's priority takeover follows.
    rs.set_priority_takeover(true);
    c.kill9("site-b");
    assert!(c.wait_active("site-a").await, "site-a never took over");
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await, "primary never came back to site-a");
    assert_eq!(number(&rs.member_config(0), "priority"), 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_mongodb_elected_elsewhere_is_stepped_down_after_the_grace() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let c = cluster_with(&rs, &["site-a", "site-b", "witness"], "").await;
    assert!(c.wait_active("site-a").await);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await);
    // MongoDB's own election puts the primary on the witness's member and
    // its priority takeover does not happen: the controller corrects it.
    rs.set_priority_takeover(false);
    let before = rs.commands("replSetStepDown").len();
    rs.force_primary(2);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await, "primary not corrected:\n{}", c.log_tail("site-a"));
    let step_downs = rs.commands("replSetStepDown");
    assert!(step_downs.len() > before);
    assert_eq!(step_downs.last().expect("one").0, 2, "stepDown went to the misplaced primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_target_blocks_automatic_failover_until_approved() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let mut c = cluster_with(&rs, &["site-a", "site-b", "witness"], "").await;
    assert!(c.wait_active("site-a").await);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await);
    rs.set_lag(1, Duration::from_secs(60));
    assert!(
        c.wait_for(LONG, |c| c.status("site-b").is_some_and(|s| s["mongodb"]["caught_up"] == false)).await,
        "site-b never saw its lag"
    );
    let why =
        c.status("site-b").expect("status")["mongodb"]["not_caught_up_because"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("lags 60"), "{why}");
    let out = c.ctl("site-b", &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("site-b is NOT eligible for automatic failover") && text.contains("lags 60"), "{text}");
    let (_, metrics) = c.http_get("site-b", "/metrics").await.expect("metrics");
    assert!(metrics.contains("failover_mongodb_caught_up{set=\"rs0\"} 0"), "{metrics}");
    let b = &rs.hosts()[1];
    assert!(
        metrics.lines().any(|l| l.starts_with("failover_mongodb_member_lag_milliseconds")
            && l.contains(b.as_str())
            && l.contains("site=\"site-b\"")),
        "{metrics}"
    );
    c.kill9("site-a");
    assert!(
        c.wait_for(LONG, |c| c
            .status("site-b")
            .is_some_and(|s| s["pending_failover"]["reason"].as_str().is_some_and(|r| r.contains("lag"))))
            .await,
        "no pending proposal on site-b:\n{}",
        c.log_tail("site-b")
    );
    assert_ne!(c.role("site-b").as_deref(), Some("active"), "site-b took over with lagging data");
    let out = c.ctl("site-b", &["approve"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-b").await, "approved failover did not happen");
    // The lagging member cannot catch up within the step-down's catch-up
    // period: the actuator says so, and converges once the lag is gone.
    assert!(
        c.wait_for(LONG, |c| mongodb_actuator(c, "site-b")
            .is_some_and(|a| a["state"] == "failed" || a["state"] == "pending"))
            .await
    );
    rs.set_lag(1, Duration::ZERO);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(1)).await, "primary never moved to site-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_state_store_keeps_claims_in_epoch_order_and_a_newer_one_under_a_lease_is_an_alarm() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let c = cluster_with(&rs, &["site-a", "site-b", "witness"], "state_store = \"mongodb\"\ndatabase = \"ops\"").await;
    assert!(c.wait_active("site-a").await);
    let epoch = c.epoch("site-a").expect("epoch");
    let stored = |rs: &TestReplicaSet| rs.documents("ops.cluster").first().cloned();
    assert!(
        c.wait_for(LONG, |_| stored(&rs)
            .is_some_and(|d| d.get_i64("epoch") == Ok(epoch as i64) && d.get_str("active_site") == Ok("site-a")))
            .await,
        "epoch {epoch} never stored: {:?}",
        stored(&rs)
    );
    // The claim and the node's own events are appended to the history.
    let events = |rs: &TestReplicaSet| rs.documents("ops.events");
    assert!(
        c.wait_for(LONG, |_| events(&rs)
            .iter()
            .any(|e| e.get_str("event").is_ok_and(|t| t.contains(&format!("active with epoch {epoch}")))))
            .await,
        "no event appended: {:?}",
        events(&rs)
    );
    assert!(events(&rs).iter().any(|e| e.get_str("node") == Ok("site-b")), "site-b's events are missing");
    let claims = rs.commands("update");
    assert!(claims
        .iter()
        .all(|(_, cmd)| cmd.get_document("writeConcern").is_ok_and(|w| w.get_str("w") == Ok("majority"))));
    // A newer claim appears in the store while site-a holds its lease, so
    // no site can have won it: forged (or a forced promotion). site-a stays
    // active, raises the alarm and writes nothing over it.
    let newer = epoch as i64 + 5;
    rs.put("ops.cluster", doc! { "_id": "cluster", "epoch": newer, "active_site": "site-b", "state": "active" });
    let fence_ahead = |c: &TestCluster| c.status("site-a").and_then(|s| s["fence_ahead"].as_i64());
    assert!(
        c.wait_for(LONG, |c| fence_ahead(c) == Some(newer)).await,
        "no alarm for the newer claim:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(c.role("site-a").as_deref(), Some("active"), "the stored claim deposed the active site");
    assert_eq!(stored(&rs).and_then(|d| d.get_i64("epoch").ok()), Some(newer), "written over");
    // The operator puts the record right; site-a keeps it current again.
    rs.put(
        "ops.cluster",
        doc! { "_id": "cluster", "epoch": epoch as i64, "active_site": "site-a", "state": "unknown" },
    );
    assert!(
        c.wait_for(LONG, |_| stored(&rs)
            .is_some_and(|d| d.get_i64("epoch") == Ok(epoch as i64) && d.get_str("state") == Ok("active")))
            .await,
        "site-a never took the corrected record back: {:?}",
        stored(&rs)
    );
    assert!(c.wait_for(LONG, |c| fence_ahead(c).is_none()).await, "the alarm outlived the correction");
    // An epoch stored as a string (a quoted mongosh write) is not read as
    // 0: it is the alarm, naming what was found and the fix, and nothing is
    // written over it until the operator stores a number again.
    let as_text = doc! { "_id": "cluster", "epoch": epoch.to_string(), "active_site": "site-a", "state": "unknown" };
    rs.put("ops.cluster", as_text);
    let unreadable = |c: &TestCluster| -> Vec<String> {
        c.status("site-a")
            .and_then(|s| s["fence_unreadable"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        c.wait_for(LONG, |c| unreadable(c).len() == 1).await,
        "no alarm for a string epoch:\n{}",
        c.log_tail("site-a")
    );
    let alarm = unreadable(&c).join("");
    assert!(alarm.contains("(a string)") && alarm.contains(&format!("NumberLong({epoch})")), "{alarm}");
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
    assert_eq!(stored(&rs).and_then(|d| d.get_str("state").ok().map(str::to_owned)).as_deref(), Some("unknown"));
    // What mongosh writes for {epoch: N} is a double: read as that number.
    let as_double = doc! { "_id": "cluster", "epoch": epoch as f64, "active_site": "site-a", "state": "unknown" };
    rs.put("ops.cluster", as_double);
    assert!(
        c.wait_for(LONG, |c| unreadable(c).is_empty()
            && stored(&rs).is_some_and(|d| d.get_str("state") == Ok("active")))
            .await,
        "a double epoch was not taken as the number: {:?} {:?}",
        unreadable(&c),
        stored(&rs)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_going_away_mid_operation_is_reported_and_survived() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let c = cluster_with(&rs, &["site-a", "site-b", "witness"], "").await;
    assert!(c.wait_active("site-a").await);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await);
    // The reconfig of a switchover loses its connection, then hangs.
    rs.fail_next("replSetReconfig", Fault::CloseConnection);
    rs.fail_next("replSetReconfig", Fault::Hang(Duration::from_secs(3)));
    let out = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-b").await, "the switchover waited on MongoDB");
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(1)).await, "primary never moved:\n{}", c.log_tail("site-b"));
    // Every member unreachable: reported in status, the site stays active.
    let epoch = c.epoch("site-b");
    for i in 0..3 {
        rs.set_up(i, false);
    }
    assert!(
        c.wait_for(LONG, |c| c.status("site-b").is_some_and(|s| s["mongodb"]["error"].is_string())).await,
        "the lost replica set is not reported"
    );
    assert_eq!(c.role("site-b").as_deref(), Some("active"));
    assert_eq!(c.epoch("site-b"), epoch);
    for i in 0..3 {
        rs.set_up(i, true);
    }
    assert!(c.wait_for(LONG, |c| c.status("site-b").is_some_and(|s| s["mongodb"]["error"].is_null())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_psa_set_that_loses_a_data_member_is_mitigated_and_restored() {
    let rs = TestReplicaSet::start(
        "rs0",
        &[Member::Data { priority: 1.0 }, Member::Data { priority: 1.0 }, Member::Arbiter],
    )
    .await
    .expect("test server starts");
    let b = rs.hosts()[1].clone();
    let c = cluster_with(&rs, &["site-a", "site-b", "witness"], "psa_mitigation = true\npsa_grace = \"1s\"").await;
    assert!(c.wait_active("site-a").await);
    assert!(c.wait_for(LONG, |_| rs.primary() == Some(0)).await);
    assert!(c.wait_for(LONG, |c| c.status("site-a").is_some_and(|s| s["mongodb"]["view"]["shape"] == "PSA")).await);
    assert_eq!(c.status("site-a").expect("status")["mongodb"]["view"]["majority_needs_every_data_member"], true);
    rs.set_up(1, false);
    assert!(!rs.with(|s| s.majority_writes_possible()));
    assert!(
        c.wait_for(LONG, |_| number(&rs.member_config(1), "votes") == 0.0).await,
        "the lost member kept its vote:\n{}",
        c.log_tail("site-a")
    );
    assert_eq!(number(&rs.member_config(1), "priority"), 0.0);
    assert!(rs.with(|s| s.majority_writes_possible()), "majority writes are back");
    assert!(c.wait_for(LONG, |c| member_view(c, "site-a", &b).is_some_and(|m| m["votes"] == 0)).await);
    rs.set_up(1, true);
    assert!(c.wait_for(LONG, |_| number(&rs.member_config(1), "votes") == 1.0).await, "the vote never came back");
    assert_eq!(number(&rs.member_config(1), "priority"), 1.0);
    assert_eq!(c.role("site-a").as_deref(), Some("active"));
}

#[test]
fn mongodb_config_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!(
        "{MINIMAL_SITE_A}[mongodb]\nuri = \"mongodb://127.0.0.1:1/?replicaSet=rs0\"\n\
         [[mongodb.members]]\nhost = \"127.0.0.1:1\"\nsite = \"site-a\"\n"
    );
    let cases = [
        ("not a connection string", base.replace("mongodb://127.0.0.1:1/", "postgres://x/"), "mongodb.uri"),
        ("unknown site", base.replace("site = \"site-a\"", "site = \"site-z\""), "mongodb.members[0].site"),
        ("host without a port", base.replace("host = \"127.0.0.1:1\"", "host = \"db\""), "mongodb.members[0].host"),
        ("unknown store", base.replace("[mongodb]\n", "[mongodb]\nstate_store = \"etcd\"\n"), "mongodb.state_store"),
        (
            "priorities upside down",
            base.replace("[mongodb]\n", "[mongodb]\nactive_priority = 1\nstandby_priority = 5\n"),
            "mongodb.active_priority",
        ),
        ("unknown key", base.replace("[mongodb]\n", "[mongodb]\nmax_lag = \"3s\"\n"), "max_lag"),
    ];
    assert_configs_refused("failover-controller", dir.path(), &cases);
    // The witness has no [mongodb] of its own.
    let witness = base.replace("name = \"site-a\"\nstate_dir", "name = \"witness\"\nstate_dir");
    assert_configs_refused("failover-witness", dir.path(), &[("witness with [mongodb]", witness, "remove [mongodb]")]);
    // And a good one passes, naming the actuator.
    let path = dir.path().join("good.toml");
    std::fs::write(&path, &base).expect("write");
    let out = std::process::Command::new(failover_tests::cluster::bin_dir().join("failover-controller"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("actuators: mongodb"));
}

fn claim(epoch: u64, site: &str, paused: bool) -> Claim {
    Claim { paused, ..Claim::active(epoch, site, "test") }
}

#[tokio::test]
async fn the_compare_and_set_refuses_an_older_epoch_and_keeps_the_record_current() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let client = mongodb::Client::with_uri_str(rs.uri()).await.expect("client");
    let store = MongoStore::new(&client, "ops", Duration::from_secs(2));
    let stored = store.claim(&claim(7, "site-b", false)).await.expect("first claim");
    assert_eq!((stored.epoch, stored.site.as_str()), (7, "site-b"));
    // Re-asserting the same claim is not a new claim (one event only), but
    // the record follows the pause switch.
    store.claim(&claim(7, "site-b", true)).await.expect("re-assert");
    let record = rs.documents("ops.cluster");
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].get_bool("paused"), Ok(true));
    assert_eq!(rs.documents("ops.events").len(), 1);
    // An older epoch loses the compare-and-set and is told who holds it.
    match store.claim(&claim(5, "site-a", false)).await {
        Err(StoreError::Fenced { stored: 7, ref site, ours: 5 }) if site == "site-b" => {}
        other => panic!("an older epoch was not fenced: {other:?}"),
    }
    assert_eq!(rs.documents("ops.cluster")[0].get_i64("epoch"), Ok(7));
    // A newer one wins and changes the document.
    store.claim(&claim(9, "site-a", false)).await.expect("newer claim");
    let record = rs.documents("ops.cluster");
    assert_eq!((record[0].get_i64("epoch"), record[0].get_str("active_site")), (Ok(9), Ok("site-a")));
    assert_eq!(rs.documents("ops.events").len(), 2);
    // Without a majority the claim is reported, not taken as made.
    rs.set_up(1, false);
    rs.set_up(2, false);
    let err = store.claim(&claim(11, "site-a", false)).await.expect_err("no majority");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authentication_failures_are_reported_and_the_site_can_still_be_approved() {
    let rs = TestReplicaSet::start("rs0", &pss()).await.expect("test server starts");
    let section =
        mongodb_section(&rs, &["site-a", "site-b", "witness"], "").replace("mongodb://", "mongodb://app:wrong@");
    let spec = Spec { extra: vec![("site-a", section.clone()), ("site-b", section)], ..Spec::default() };
    let c = TestCluster::start(spec).await;
    assert!(
        c.wait_for(LONG, |c| c
            .status("site-a")
            .is_some_and(|s| s["mongodb"]["error"].as_str().is_some_and(|e| e.contains("authentication failed"))))
            .await,
        "authentication failure not reported:\n{}",
        c.log_tail("site-a")
    );
    // Data that cannot be read is not known to be caught up: no site
    // takes over on its own, and the operator can still decide.
    assert!(c.wait_for(LONG, |c| c.status("site-a").is_some_and(|s| s["pending_failover"].is_object())).await);
    assert_eq!(c.role("site-a").as_deref(), Some("standby"));
    let out = c.ctl("site-a", &["approve"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.wait_active("site-a").await, "the approved site never became active");
}
