//! Node-to-node transport over tonic gRPC: a `Peer` server that decodes and
//! validates each envelope before handing it to the protocol loop, and one
//! sender task per peer with a bounded queue. Sending never blocks the
//! protocol: when a peer is slow or away its queue fills and new messages
//! are dropped, which the protocol tolerates like any other loss.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_core::{ClusterConfig, Message, NodeId};
use failover_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::wire;

/// Per-peer queue length; beyond it messages are dropped.
const QUEUE: usize = 64;

/// What the transport hands to the protocol loop.
pub type Inbound = mpsc::Sender<(NodeId, Message)>;

struct PeerService {
    cfg: Arc<ClusterConfig>,
    me: NodeId,
    inbound: Inbound,
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn deliver(&self, request: Request<pb::Envelope>) -> Result<Response<pb::Ack>, Status> {
        let (from, message) = wire::decode(&self.cfg, request.into_inner()).map_err(|e| {
            tracing::warn!(error = %e, "rejected a peer message");
            Status::invalid_argument(e.to_string())
        })?;
        if from == self.me {
            return Err(Status::invalid_argument("message claims to come from this node"));
        }
        // Full queue: drop, as a lossy network would.
        let _ = self.inbound.try_send((from, message));
        Ok(Response::new(pb::Ack {}))
    }
}

/// Serves the `Peer` gRPC service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: Arc<ClusterConfig>,
    me: NodeId,
    inbound: Inbound,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let service = pb::peer_server::PeerServer::new(PeerService { cfg, me, inbound });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder().add_service(service).serve_with_incoming_shutdown(incoming, shutdown).await
}

/// Outgoing side: one queue and task per peer.
pub struct Senders {
    cfg: Arc<ClusterConfig>,
    me: NodeId,
    queues: HashMap<NodeId, mpsc::Sender<pb::Envelope>>,
}

impl Senders {
    /// Starts a sender task for each peer address. `rpc_timeout` bounds each
    /// call so a hung peer cannot hold its queue forever.
    pub fn start(
        cfg: Arc<ClusterConfig>,
        me: NodeId,
        peers: Vec<(NodeId, SocketAddr)>,
        rpc_timeout: Duration,
    ) -> Result<Senders, tonic::transport::Error> {
        let mut queues = HashMap::new();
        for (id, addr) in peers {
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .connect_timeout(rpc_timeout)
                .timeout(rpc_timeout)
                .tcp_nodelay(true);
            let channel = endpoint.connect_lazy();
            let (tx, mut rx) = mpsc::channel::<pb::Envelope>(QUEUE);
            tokio::spawn(async move {
                let mut client = pb::peer_client::PeerClient::new(channel);
                let mut failing = false;
                while let Some(env) = rx.recv().await {
                    match client.deliver(env).await {
                        Ok(_) if failing => {
                            failing = false;
                            tracing::info!(peer = %addr, "peer reachable again");
                        }
                        Ok(_) => {}
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(peer = %addr, error = %e.message(), "peer unreachable");
                        }
                        Err(_) => {}
                    }
                }
            });
            queues.insert(id, tx);
        }
        Ok(Senders { cfg, me, queues })
    }

    /// Queues `message` for `to`; drops it if the queue is full.
    pub fn send(&self, to: NodeId, message: Message) {
        if let Some(q) = self.queues.get(&to) {
            let _ = q.try_send(wire::encode(&self.cfg, self.me, message));
        }
    }
}
