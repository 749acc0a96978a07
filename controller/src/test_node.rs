//! A two-member cluster (site `a`, witness `w`) and a core node for it, for
//! unit tests that need a real `Status` or `Node`. Test-only: it must never
//! be compiled into the daemon.

use std::sync::Arc;

use failover_core::{ClusterConfig, Instant, Member, MemberKind, Node, NodeId, Timers};

/// The cluster: site `a` (priority 2) and witness `w`.
pub fn cluster() -> ClusterConfig {
    ClusterConfig {
        members: vec![
            Member { name: "a".into(), kind: MemberKind::Site { priority: 2 }, votes: 1 },
            Member { name: "w".into(), kind: MemberKind::Witness, votes: 1 },
        ],
        timers: Timers::default(),
        policy: Default::default(),
    }
}

/// Site `a`'s node, started at time zero with no persisted state.
pub fn node() -> Node {
    match Node::new(Arc::new(cluster()), NodeId(0), Default::default(), Instant::from_millis(0), 1) {
        Ok(node) => node,
        Err(e) => panic!("the test cluster is valid: {e:?}"),
    }
}
