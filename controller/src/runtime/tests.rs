//! The protocol loop in process: a one-site cluster (so it elects itself
//! without any peer), its state file in a temporary directory, no network.

use std::sync::Arc;
use std::time::Duration;

use failover_core::{ClusterConfig, DurableState, LocalHealth, Member, MemberKind, Node, NodeId, Timers};
use tokio::sync::mpsc;

use super::Runtime;
use crate::actuate::Actuation;
use crate::agreement::Agreement;
use crate::clock;
use crate::peer::Senders;
use crate::persist::{Owner, PersistError, StateFile};
use crate::snapshot::NodeSnapshot;

/// A cluster of one site that holds the only vote, with short timers.
fn one_site() -> Arc<ClusterConfig> {
    let timers = Timers {
        heartbeat_interval: Duration::from_millis(50),
        lease_duration: Duration::from_millis(300),
        election_jitter: Duration::from_millis(10),
        ..Timers::default()
    };
    Arc::new(ClusterConfig {
        members: vec![Member { name: "a".into(), kind: MemberKind::Site { priority: 1 }, votes: 1 }],
        timers,
        policy: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_state_write_stops_the_node_before_it_takes_the_lease() {
    let cfg = one_site();
    let dir = tempfile::tempdir().unwrap();
    let owner = Owner { cluster: "test".into(), node: "a".into(), config_fingerprint: "f".into() };
    let state = StateFile::open(dir.path(), vec!["a".into()], owner).unwrap();
    // The temporary file's name taken by a directory: every write fails.
    std::fs::create_dir(state.path().with_extension("json.tmp")).unwrap();
    let mut node = Node::new(cfg.clone(), NodeId(0), DurableState::default(), clock::now(), 1).unwrap();
    let local = LocalHealth { healthy: true, caught_up: true };
    node.set_health(clock::now(), local);
    let snapshot = NodeSnapshot::new(node.status(clock::now()));
    let agreement = Arc::new(Agreement::new(&cfg));
    let senders = Senders::start(cfg.clone(), NodeId(0), Vec::new(), Duration::from_millis(100), None, agreement);
    // Every input stays open (the senders held here), so the loop can only
    // end by stopping on the failed write.
    let (_inbound, inbound) = mpsc::channel(1);
    let (_commands, commands) = mpsc::channel(1);
    let (_health, health) = mpsc::channel(1);
    let (_fenced_tx, fenced) = mpsc::channel(1);
    let (_probes, probes) = mpsc::channel(1);
    let (fenced_by, _fenced_rx) = mpsc::channel(1);
    let runtime = Runtime {
        node,
        cfg,
        state,
        senders: senders.unwrap(),
        inbound,
        commands,
        health,
        local,
        fenced,
        event_log: None,
        hooks: Default::default(),
        snapshot: snapshot.clone(),
        actuation: Actuation::start(Vec::new(), snapshot.clone(), fenced_by),
        probes,
    };
    let stopped = runtime.run().await;
    assert!(matches!(stopped, Err(PersistError::Io { .. })), "{stopped:?}");
    assert!(!snapshot.lease_valid_now(), "the node took a lease it never persisted");
    assert_eq!(snapshot.status().epoch, None);
}
