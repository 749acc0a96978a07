//! Opt-in: the MongoDB coordination against a real replica set. It is
//! ignored by default, since no MongoDB server can be installed on the
//! machines CI runs on (the other MongoDB tests use the test server), and
//! runs with `--ignored` when `MONGODB_URI` and `MONGODB_MEMBERS` are set
//! (for the set in `deploy/mongodb/`, see `docs/mongodb.md`); the test
//! command does that by itself when both are set. Run without them it fails
//! rather than pass without having looked.
//!
//! `MONGODB_MEMBERS` maps members to sites: `host:port=site,...`, with one
//! data member for site-a and one for site-b. The real binaries run as a
//! three-node cluster with the MongoDB state store in database
//! `failover_test`, which the suite drops first.

use std::time::Duration;

use failover_tests::cluster::{Spec, TestCluster};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{CollectionOptions, ReadConcern};

const LONG: Duration = Duration::from_secs(120);

fn primary(status: &Document) -> Option<String> {
    status.get_array("members").ok()?.iter().filter_map(Bson::as_document).find_map(|m| {
        (m.get_str("stateStr") == Ok("PRIMARY")).then(|| m.get_str("name").ok().map(str::to_owned)).flatten()
    })
}

/// A member's config without what the controller manages.
fn unmanaged(config: &Document) -> Vec<Document> {
    let members = config.get_array("members").cloned().unwrap_or_default();
    members
        .iter()
        .filter_map(Bson::as_document)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "priority" | "votes"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a real replica set: MONGODB_URI and MONGODB_MEMBERS"]
async fn the_primary_and_the_state_store_follow_switchovers_on_a_real_replica_set() {
    let (Ok(uri), Ok(members)) = (std::env::var("MONGODB_URI"), std::env::var("MONGODB_MEMBERS")) else {
        panic!(
            "MONGODB_URI and MONGODB_MEMBERS are not set; start a real replica set with deploy/mongodb/ \
             and set them as docs/mongodb.md shows"
        );
    };
    let mapping: Vec<(String, String)> = members
        .split(',')
        .filter_map(|pair| pair.split_once('=').map(|(h, s)| (h.trim().to_owned(), s.trim().to_owned())))
        .collect();
    let host_of =
        |site: &str| mapping.iter().find(|(_, s)| s == site).map(|(h, _)| h.clone()).expect("a member per site");
    let (host_a, host_b) = (host_of("site-a"), host_of("site-b"));

    let client = mongodb::Client::with_uri_str(&uri).await.expect("client");
    client.database("failover_test").drop().await.expect("drop failover_test");
    let admin = client.database("admin");
    let status = || async { admin.run_command(doc! { "replSetGetStatus": 1 }).await.ok() };
    let config = || async {
        admin
            .run_command(doc! { "replSetGetConfig": 1 })
            .await
            .ok()
            .and_then(|r| r.get_document("config").ok().cloned())
    };
    let before = config().await.expect("replSetGetConfig");

    let mut section = format!(
        "[mongodb]\nuri = {uri:?}\nstate_store = \"mongodb\"\ndatabase = \"failover_test\"\npoll_interval = \"500ms\"\n\
         timeout = \"5s\"\npriority_takeover_grace = \"10s\"\nstep_down_catch_up = \"5s\"\n\n"
    );
    for (host, site) in &mapping {
        section.push_str(&format!("[[mongodb.members]]\nhost = \"{host}\"\nsite = \"{site}\"\n\n"));
    }
    let spec =
        Spec { extra: vec![("site-a", section.clone()), ("site-b", section)], drain: Some("10s"), ..Spec::default() };
    let c = TestCluster::start(spec).await;

    for (site, host) in [("site-a", &host_a), ("site-b", &host_b), ("site-a", &host_a)] {
        if c.role(site).as_deref() != Some("active") {
            let from = if site == "site-a" { "site-b" } else { "site-a" };
            let out = c.ctl(from, &["switchover", "--to", site]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(c.wait_active(site).await, "{site} never became active:\n{}", c.log_tail(site));
        let mut placed = false;
        for _ in 0..(LONG.as_millis() / 500) {
            if status().await.as_ref().and_then(primary).as_deref() == Some(host.as_str()) {
                placed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(placed, "the primary never moved to {host} ({site}):\n{}", c.log_tail(site));
        let epoch = c.epoch(site).expect("epoch") as i64;
        let record = client.database("failover_test").collection_with_options::<Document>(
            "cluster",
            CollectionOptions::builder().read_concern(ReadConcern::majority()).build(),
        );
        let mut stored = None;
        for _ in 0..(LONG.as_millis() / 500) {
            stored = record.find_one(doc! { "_id": "cluster" }).await.ok().flatten();
            if stored.as_ref().is_some_and(|d| d.get_i64("epoch") == Ok(epoch) && d.get_str("active_site") == Ok(site))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            stored.as_ref().is_some_and(|d| d.get_i64("epoch") == Ok(epoch)),
            "epoch {epoch} of {site} not stored: {stored:?}"
        );
    }
    let after = config().await.expect("replSetGetConfig");
    assert_eq!(unmanaged(&after), unmanaged(&before), "a reconfig changed more than priority and votes");
    assert_eq!(after.get_document("settings").ok(), before.get_document("settings").ok());
}
