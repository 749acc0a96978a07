//! The MongoDB coordination against SecantusDB, an independent
//! MongoDB-wire-compatible server (not MongoDB), through the real `mongodb`
//! driver: the controller's own state store, step-down and replica set
//! view as a library, and a real cluster whose state store it backs. The
//! server runs as a real process on a loopback port with its own data
//! directory (`failover_tests::secantus`); without its virtualenv these
//! tests fail, saying how to install it.
//!
//! SecantusDB is a one-member replica set without `replSetGetConfig` and
//! `replSetReconfig`, so placement is disabled against it and says so.
//! Waits are conditions with generous deadlines; nothing is timed.

use std::time::{Duration, Instant};

use failover_controller::mongo::answer::CommandRefusal;
use failover_controller::mongo::store::{Claim, MongoStore, StoreError};
use failover_controller::mongo::{MongoLink, MongoSection};
use failover_tests::cluster::{assert_configs_refused, Spec, TestCluster, MINIMAL_SITE_A};
use failover_tests::secantus::Secantus;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, CollectionOptions, ReadConcern};

const LONG: Duration = Duration::from_secs(60);
const SITES: [&str; 3] = ["site-a", "site-b", "witness"];

/// The controller's link to `uri`, with the server's member beside
/// site-a and the MongoDB state store in database `ops`.
fn link(uri: &str, server: &Secantus) -> MongoLink {
    let section: MongoSection = serde_json::from_value(serde_json::json!({
        "uri": uri,
        "members": [{ "host": server.host(), "site": "site-a" }],
        "state_store": "mongodb",
        "database": "ops",
        "timeout": "2s",
        "step_down_catch_up": "1s",
    }))
    .expect("section");
    MongoLink::build(&section, &SITES.map(String::from)).expect("link")
}

async fn store(link: &MongoLink) -> MongoStore {
    MongoStore::new(&link.client().await.expect("client"), "ops", Duration::from_secs(2))
}

fn claim(epoch: u64, site: &str) -> Claim {
    Claim::active(epoch, site, "test")
}

/// Every document of `ops.<name>`, read with `readConcern: "majority"`
/// through a client of its own, in insertion order.
async fn read_back(server: &Secantus, name: &str) -> Vec<Document> {
    let mut options = ClientOptions::parse(server.uri()).await.expect("uri");
    options.server_selection_timeout = Some(Duration::from_secs(5));
    let client = mongodb::Client::with_options(options).expect("client");
    let majority = CollectionOptions::builder().read_concern(ReadConcern::majority()).build();
    let coll = client.database("ops").collection_with_options::<Document>(name, majority);
    let Ok(mut cursor) = coll.find(doc! {}).sort(doc! { "_id": 1 }).await else { return Vec::new() };
    let mut docs = Vec::new();
    while cursor.advance().await.unwrap_or(false) {
        docs.extend(cursor.deserialize_current().ok());
    }
    docs
}

async fn record(server: &Secantus) -> Option<Document> {
    read_back(server, "cluster").await.into_iter().next()
}

/// Polls `cond` every 200 ms until it holds or `LONG` passes.
async fn eventually<F: std::future::Future<Output = bool>>(mut cond: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cond().await
}

#[tokio::test]
async fn the_state_store_claims_fences_and_keeps_the_record_current_on_secantusdb() {
    let server = Secantus::start();
    let store = store(&link(&server.uri(), &server)).await;
    assert!(store.check_fence(1).await.expect("empty store").is_none());
    let first = store.claim(&claim(7, "site-b")).await.expect("first claim");
    assert_eq!((first.epoch, first.site.as_str(), first.state.as_str()), (7, "site-b", "active"));
    // Re-asserting the epoch is no new claim, but mode, pause and pending
    // follow what the protocol has now.
    let current = Claim {
        mode: "manual".into(),
        paused: true,
        pending: Some("to site-a: not reachable".into()),
        ..claim(7, "site-b")
    };
    store.claim(&current).await.expect("re-assert");
    let r = record(&server).await.expect("record");
    assert_eq!((r.get_str("mode"), r.get_bool("paused")), (Ok("manual"), Ok(true)), "{r}");
    assert_eq!(r.get_str("pending"), Ok("to site-a: not reachable"), "{r}");
    assert_eq!(read_back(&server, "events").await.len(), 1, "a re-assertion appended an event");
    // An older epoch loses the compare-and-set and learns who holds it.
    match store.claim(&claim(5, "site-a")).await {
        Err(StoreError::Fenced { stored: 7, ref site, ours: 5 }) if site == "site-b" => {}
        other => panic!("an older epoch was not fenced: {other:?}"),
    }
    assert!(matches!(store.check_fence(6).await, Err(StoreError::Fenced { stored: 7, .. })));
    assert_eq!(record(&server).await.and_then(|r| r.get_i64("epoch").ok()), Some(7), "written over");
    // A newer one wins and replaces the whole record.
    store.claim(&claim(9, "site-a")).await.expect("newer claim");
    let r = record(&server).await.expect("record");
    assert_eq!((r.get_i64("epoch"), r.get_str("active_site"), r.get_bool("paused")), (Ok(9), Ok("site-a"), Ok(false)));
    assert!(matches!(r.get("pending"), Some(Bson::Null)), "{r}");
    // The event log is appended to, in order, and read back.
    store.append("site-b", "paused by the operator").await.expect("append");
    let events: Vec<(String, String)> = read_back(&server, "events")
        .await
        .iter()
        .map(|e| (e.get_str("node").unwrap_or("").to_owned(), e.get_str("event").unwrap_or("").to_owned()))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[0].1.starts_with("site-b active with epoch 7"), "{events:?}");
    assert!(events[1].1.starts_with("site-a active with epoch 9"), "{events:?}");
    assert_eq!(events[2], ("site-b".to_owned(), "paused by the operator".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_controllers_claiming_at_once_on_secantusdb_leave_exactly_one_winner() {
    let server = Secantus::start();
    let (a, b) = (store(&link(&server.uri(), &server)).await, store(&link(&server.uri(), &server)).await);
    for round in 1..=10u64 {
        let epoch = round * 2;
        let (ca, cb) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move { ca.claim(&claim(epoch, "site-a")).await });
        let tb = tokio::spawn(async move { cb.claim(&claim(epoch, "site-b")).await });
        let results = [("site-a", ta.await.expect("task")), ("site-b", tb.await.expect("task"))];
        let winners: Vec<&str> = results.iter().filter(|(_, r)| r.is_ok()).map(|(s, _)| *s).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = results.iter().find(|(_, r)| r.is_err()).expect("a loser");
        assert!(
            matches!(&loser.1, Err(StoreError::Fenced { stored, site, .. }) if *stored == epoch && site == winners[0]),
            "round {round}: the loser was not told who won: {results:?}"
        );
        let r = record(&server).await.expect("record");
        assert_eq!((r.get_i64("epoch"), r.get_str("active_site")), (Ok(epoch as i64), Ok(winners[0])));
    }
    assert_eq!(read_back(&server, "events").await.len(), 10, "one event per won claim");
}

#[tokio::test]
async fn a_restarted_secantusdb_keeps_the_record_and_the_fence() {
    let mut server = Secantus::start();
    let store = store(&link(&server.uri(), &server)).await;
    store.claim(&claim(4, "site-a")).await.expect("claim");
    server.stop();
    // While it is down the claim is reported, never taken as made.
    match store.claim(&claim(5, "site-a")).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("claiming the epoch"), "{why}"),
        other => panic!("a claim without a server: {other:?}"),
    }
    server.restart();
    // The same client reconnects; the stored epoch still fences.
    let st = &store;
    assert!(
        eventually(|| async move { matches!(st.check_fence(3).await, Err(StoreError::Fenced { stored: 4, .. })) })
            .await,
        "the record did not survive a restart:\n{}",
        server.log()
    );
    store.claim(&claim(5, "site-a")).await.expect("claim after the restart");
    // kill -9 keeps what was committed (the server syncs on commit).
    server.kill();
    server.restart();
    assert!(
        eventually(|| async move { matches!(st.check_fence(4).await, Err(StoreError::Fenced { stored: 5, .. })) })
            .await,
        "the record did not survive kill -9:\n{}",
        server.log()
    );
    assert_eq!(read_back(&server, "events").await.len(), 2);
}

#[tokio::test]
async fn the_switchover_step_down_against_secantusdb_is_refused_with_a_clear_report() {
    let server = Secantus::start();
    let link = link(&server.direct_uri(), &server);
    let store = store(&link).await;
    // As a switchover sends it (catch-up period, not forced): a one-member
    // set has no secondary to catch up, so the primary stays.
    match link.step_down().await {
        Err(r @ CommandRefusal::NoCaughtUpSecondary { code: 262, .. }) => {
            assert!(r.to_string().contains("no electable secondary caught up"), "{r}");
        }
        other => panic!("step-down of a lone primary: {other:?}"),
    }
    store.claim(&claim(1, "site-a")).await.expect("still primary after the refused step-down");
    // Forced (as an operator may), the server turns secondary for the
    // period: writes fail, and a step-down there is told it is not primary.
    let admin = link.client().await.expect("client").database("admin");
    admin.run_command(doc! { "replSetStepDown": 20, "force": true }).await.expect("forced step-down");
    match store.claim(&claim(2, "site-a")).await {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("10107"), "{why}"),
        other => panic!("a claim on a secondary: {other:?}"),
    }
    match link.step_down().await {
        Err(r @ CommandRefusal::NotPrimary { code: 10107, .. }) => {
            assert!(r.to_string().contains("not the primary"), "{r}")
        }
        other => panic!("step-down of a secondary: {other:?}"),
    }
    // After the period it is primary again and the claim goes through.
    let st = &store;
    assert!(
        eventually(|| async move { st.claim(&claim(2, "site-a")).await.is_ok() }).await,
        "writes never came back:\n{}",
        server.log()
    );
}

#[tokio::test]
async fn a_server_without_replsetgetconfig_gives_a_view_and_says_placement_is_disabled() {
    let server = Secantus::start();
    let link = link(&server.uri(), &server);
    let reading = link.read_view(None).await.expect("the set is read");
    match &reading.config {
        Err(missing @ CommandRefusal::NotImplemented { .. }) => assert!(
            missing.to_string().starts_with("the server does not implement replSetGetConfig: placement disabled"),
            "{missing}"
        ),
        other => panic!("replSetGetConfig: {other:?}"),
    }
    let view = &reading.view;
    assert_eq!((view.set.as_str(), view.primary.as_deref()), ("secantus", Some(server.host().as_str())));
    assert_eq!(view.members.len(), 1);
    let m = &view.members[0];
    assert_eq!((m.state.as_str(), m.site.as_deref(), m.lag_ms), ("PRIMARY", Some("site-a"), Some(0)));
    assert_eq!((m.priority, m.votes), (None, None), "priority and votes are unknown without the config");
    assert!(view.site_caught_up("site-a", Duration::from_secs(10)).is_ok());
    let why = view.site_caught_up("site-b", Duration::from_secs(10)).expect_err("site-b has no member");
    assert!(why.contains("no data member"), "{why}");
    // The reconfiguration placement would send is missing too.
    let err = link.admin(doc! { "replSetReconfig": { "_id": "secantus", "version": 2, "members": [] } }, false).await;
    let refusal = failover_controller::mongo::answer::from_driver("replSetReconfig", &err.expect_err("reconfig"));
    assert!(refusal.is_not_implemented(), "{refusal:?}");
}

#[test]
fn a_mongodb_section_without_members_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{MINIMAL_SITE_A}[mongodb]\nuri = \"mongodb://127.0.0.1:1/?replicaSet=secantus\"\nstate_store = \"mongodb\"\n"
    );
    assert_configs_refused("failover-controller", dir.path(), &[("no [[mongodb.members]]", text, "members")]);
}

/// Waits until site-a's `mongodb` actuator is in `state` with `words` in
/// its detail.
async fn actuator_reaches(c: &TestCluster, state: &str, words: &str) {
    let seen =
        |c: &TestCluster| c.status("site-a")?["actuators"].as_array()?.iter().find(|a| a["name"] == "mongodb").cloned();
    let reached =
        |a: &serde_json::Value| a["state"] == state && a["detail"].as_str().is_some_and(|d| d.contains(words));
    assert!(
        c.wait_for(LONG, |c| seen(c).is_some_and(|a| reached(&a))).await,
        "the mongodb actuator is not {state} with {words:?}: {:?}",
        seen(c)
    );
}

/// A `[[mongodb.members]]` host that the set does not have (a name other
/// than the set's own for its member).
const NOT_IN_SET: &str = "db-b.invalid:27017";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secantusdb_backs_a_clusters_state_store_and_its_loss_leaves_the_site_active() {
    let mut server = Secantus::start();
    let section = format!(
        "[mongodb]\nuri = \"{}\"\nstate_store = \"mongodb\"\ndatabase = \"ops\"\nprimary_follows = false\n\
         poll_interval = \"200ms\"\ntimeout = \"1s\"\n\n[[mongodb.members]]\nhost = \"{}\"\nsite = \"site-a\"\n\n\
         [[mongodb.members]]\nhost = \"{NOT_IN_SET}\"\nsite = \"site-b\"\n",
        server.uri(),
        server.host()
    );
    // No periodic reassertion within the test: what the actuator reports
    // after the server dies comes from the pass the lost set itself starts.
    let rarely = |node| (node, "actuation_interval = \"2s\"", "actuation_interval = \"1h\"");
    let spec = Spec {
        extra: vec![("site-a", section.clone()), ("site-b", section)],
        edits: vec![rarely("site-a"), rarely("site-b"), rarely("witness")],
        ..Spec::default()
    };
    let c = TestCluster::start_with_site_a_active(spec).await;
    let epoch = c.epoch("site-a").expect("epoch") as i64;
    let stored = |r: &Option<Document>| r.as_ref().and_then(|d| d.get_i64("epoch").ok());
    let s = &server;
    assert!(eventually(|| async move { stored(&record(s).await) == Some(epoch) }).await, "epoch {epoch} not stored");
    // The view works without replSetGetConfig and says what is disabled.
    let placement = |c: &TestCluster| c.status("site-a").map(|s| s["mongodb"]["placement_disabled"].clone());
    assert!(
        c.wait_for(LONG, |c| placement(c)
            .and_then(|p| p.as_str().map(str::to_owned))
            .is_some_and(|p| p.starts_with("the server does not implement replSetGetConfig: placement disabled")))
            .await,
        "placement not reported disabled: {:?}",
        placement(&c)
    );
    let status = c.status("site-a").expect("status");
    assert_eq!(status["mongodb"]["view"]["members"][0]["state"], "PRIMARY", "{}", status["mongodb"]);
    assert_eq!(status["mongodb"]["caught_up"], true, "{}", status["mongodb"]);
    actuator_reaches(&c, "converged", "placement disabled").await;
    // Site-b's only configured member is not in the set: a switchover to
    // it is refused with that cause in words (not "lags"), and the status
    // names the host and the hosts the set has.
    let missing = format!(
        "no data member of the replica set is mapped to site-b: configured member {NOT_IN_SET} of site-b is not in \
         the set (the set has {})",
        server.host()
    );
    let refused = c.ctl("site-a", &["switchover", "--to", "site-b"]);
    let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(!refused.status.success() && said.contains(&format!("site-b is not eligible: {missing}")), "{said}");
    let shown = c.ctl("site-a", &["status"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&format!("CONFIG: configured member {NOT_IN_SET} of site-b is not in the set")), "{shown}");
    assert!(shown.contains("read at "), "{shown}");
    // The pause reaches the record.
    assert!(c.ctl("site-a", &["pause"]).status.success());
    assert!(
        eventually(|| async move { record(s).await.is_some_and(|r| r.get_bool("paused") == Ok(true)) }).await,
        "{:?}",
        record(&server).await
    );
    let events = read_back(&server, "events").await;
    let claimed = format!("site-a active with epoch {epoch}");
    assert!(events.iter().any(|e| e.get_str("event").is_ok_and(|t| t.starts_with(&claimed))), "{events:?}");
    // The same log through failoverctl, as a table and as JSON; the
    // witness keeps no store and says so.
    let shown = c.ctl("site-a", &["history", "--store"]);
    let table = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && table.contains("event log of the MongoDB state store (database ops"), "{table}");
    assert!(table.lines().any(|l| l.contains(" site-a ") && l.contains(&claimed)), "{table}");
    let shown = c.ctl("site-a", &["history", "--store", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("history --store --json parses");
    let listed = doc["events"].as_array().cloned().unwrap_or_default();
    assert!(listed
        .iter()
        .any(|e| e["node"] == "site-a" && e["event"].as_str().is_some_and(|t| t.starts_with(&claimed))));
    assert!(listed.len() >= events.len().min(200), "{} of {} events listed", listed.len(), events.len());
    let witness = c.ctl("witness", &["history", "--store"]);
    let said = String::from_utf8_lossy(&witness.stderr);
    assert!(!witness.status.success() && said.contains("witness keeps no event log in MongoDB"), "{said}");
    // The server dies while site-a is active: reported, and site-a stays
    // active (its lease, not the store, makes it active). The actuator does
    // not go on saying "converged": losing the set starts a pass at once.
    server.kill();
    assert!(
        c.wait_for(LONG, |c| c.status("site-a").is_some_and(|s| s["mongodb"]["error"].is_string())).await,
        "the lost server is not reported"
    );
    actuator_reaches(&c, "failed", "cannot reach MongoDB (state store)").await;
    assert_eq!((c.role("site-a").as_deref(), c.epoch("site-a")), (Some("active"), Some(epoch as u64)));
    assert_ne!(c.role("site-b").as_deref(), Some("active"));
    // Back with its data: the record is still there and kept current.
    server.restart();
    actuator_reaches(&c, "converged", "placement disabled").await;
    assert_eq!(stored(&record(&server).await), Some(epoch));
    assert!(c.ctl("site-a", &["resume"]).status.success());
    let s = &server;
    assert!(
        eventually(|| async move { record(s).await.is_some_and(|r| r.get_bool("paused") == Ok(false)) }).await,
        "the resume never reached the record: {:?}",
        record(&server).await
    );
    assert!(c.wait_for(LONG, |c| c.status("site-a").is_some_and(|s| s["mongodb"]["error"].is_null())).await);
}
