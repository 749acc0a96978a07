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

/// The loop of the one site, its state in `dir`, and the senders of its
/// inputs: while they are held the loop runs; dropped, it ends.
struct OneSite {
    runtime: Runtime,
    snapshot: NodeSnapshot,
    inputs: Inputs,
}

/// The senders of the loop's inputs.
type Inputs = (
    mpsc::Sender<(NodeId, failover_core::Message)>,
    mpsc::Sender<crate::command_channel::CommandRequest>,
    mpsc::Sender<crate::health::HealthInput>,
    mpsc::Sender<u64>,
    mpsc::Sender<crate::systemd::Probe>,
    mpsc::Receiver<u64>,
);

fn one_site_loop(state: StateFile) -> OneSite {
    let cfg = one_site();
    let mut node = Node::new(cfg.clone(), NodeId(0), DurableState::default(), clock::now(), 1).unwrap();
    let local = LocalHealth { healthy: true, caught_up: true };
    node.set_health(clock::now(), local);
    let snapshot = NodeSnapshot::new(node.status(clock::now()));
    let agreement = Arc::new(Agreement::new(&cfg, "test"));
    let senders = Senders::start(
        cfg.clone(),
        NodeId(0),
        Vec::new(),
        Duration::from_millis(100),
        None,
        agreement,
        Default::default(),
    );
    let (inbound_tx, inbound) = mpsc::channel(1);
    let (commands_tx, commands) = mpsc::channel(1);
    let (health_tx, health) = mpsc::channel(1);
    let (fenced_tx, fenced) = mpsc::channel(1);
    let (probes_tx, probes) = mpsc::channel(1);
    let (fenced_by, fenced_rx) = mpsc::channel(1);
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
        history: crate::event_history::History::in_memory("site-a"),
        hooks: Default::default(),
        hook_updates: mpsc::channel(1).1,
        snapshot: snapshot.clone(),
        actuation: Actuation::start(Vec::new(), snapshot.clone(), fenced_by),
        probes,
        recorded: None,
    };
    OneSite { runtime, snapshot, inputs: (inbound_tx, commands_tx, health_tx, fenced_tx, probes_tx, fenced_rx) }
}

fn owner() -> Owner {
    Owner { cluster: "test".into(), node: "a".into(), config_fingerprint: "f".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_state_write_stops_the_node_before_it_takes_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::open(dir.path(), vec!["a".into()], owner()).unwrap();
    // The temporary file's name taken by a directory: every write fails.
    std::fs::create_dir(state.path().with_extension("json.tmp")).unwrap();
    // Every input stays open (its sender held), so the loop can only end
    // by stopping on the failed write.
    let OneSite { runtime, snapshot, inputs: _inputs } = one_site_loop(state);
    let stopped = runtime.run().await;
    assert!(matches!(stopped, Err(PersistError::Io { .. })), "{stopped:?}");
    assert!(!snapshot.lease_valid_now(), "the node took a lease it never persisted");
    assert_eq!(snapshot.status().epoch, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actuators_are_told_to_activate_only_once_the_snapshot_holds_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::open(dir.path(), vec!["a".into()], owner()).unwrap();
    let OneSite { mut runtime, snapshot, inputs } = one_site_loop(state);
    // What the published snapshot said at the moment each goal was set.
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let published = snapshot.clone();
    runtime.actuation.observe_goals(move |goal| {
        let _ = seen_tx.send((goal.clone(), published.lease_valid_now()));
    });
    let running = tokio::spawn(runtime.run());
    let first = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await;
    let (goal, lease_held) = first.expect("the site never became active").expect("observer dropped");
    assert!(matches!(goal, crate::actuate::Goal::Active { epoch: 1, .. }), "{goal:?}");
    assert!(lease_held, "the actuators were told before the snapshot held the lease");
    drop(inputs);
    let stopped = tokio::time::timeout(Duration::from_secs(30), running).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the loop did not end when its inputs closed: {stopped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_renewal_of_the_active_sites_lease_is_counted_with_the_lease_it_had_left() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::open(dir.path(), vec!["a".into()], owner()).unwrap();
    let OneSite { runtime, snapshot, inputs } = one_site_loop(state);
    let running = tokio::spawn(runtime.run());
    // The only vote is its own: each heartbeat renews the lease at once.
    let renewed = |n| snapshot.read(|p| p.counts.lease_renewals.count() >= n);
    for _ in 0..300 {
        if renewed(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed(3), "the lease was not renewed three times: {:?}", snapshot.read(|p| p.counts.clone()));
    let margins = snapshot.read(|p| p.counts.lease_renewals.clone());
    // No margin beyond the lease (300 ms), which is in the sixth bucket.
    assert_eq!(margins.buckets[6..].iter().sum::<u64>(), 0, "{margins:?}");
    assert!(margins.sum <= Duration::from_millis(300) * margins.count() as u32, "{margins:?}");
    drop(inputs);
    let stopped = tokio::time::timeout(Duration::from_secs(30), running).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the loop did not end when its inputs closed: {stopped:?}");
}
