//! Node-to-node transport over tonic gRPC: a `Peer` server that decodes and
//! validates each envelope before handing it to the protocol loop, and one
//! sender task per peer with a bounded queue. Sending never blocks the
//! protocol: when a peer is slow or away its queue fills and new messages
//! are dropped, which the protocol tolerates like any other loss. With
//! mutual TLS every node proves its name with a certificate from the
//! cluster CA, and a message is accepted only from the name it was issued for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use failover_core::{ClusterConfig, Message, NodeId};
use failover_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::agreement::Agreement;
use crate::peer_tls::TlsFiles;
use crate::wire;

/// Metadata key of a refusal for a differing config: the refuser's
/// cluster fingerprint, so the sender can show both.
const FINGERPRINT_KEY: &str = "failover-cluster";

/// Per-peer queue length; beyond it messages are dropped.
const QUEUE: usize = 64;

/// What the transport hands to the protocol loop.
pub type Inbound = mpsc::Sender<(NodeId, Message)>;

/// Where accepted messages go, and what they are checked against.
pub struct Receiver {
    /// The cluster, to decode names.
    pub cfg: Arc<ClusterConfig>,
    /// This node: a message claiming to come from it is refused.
    pub me: NodeId,
    /// The protocol loop.
    pub inbound: Inbound,
    /// Messages from a peer whose config differs are refused.
    pub agreement: Arc<Agreement>,
}

struct PeerService {
    receiver: Receiver,
    /// With mutual TLS: the sender named in a message must be a name its
    /// client certificate was issued for.
    tls: bool,
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn deliver(&self, request: Request<pb::Envelope>) -> Result<Response<pb::Ack>, Status> {
        if self.tls {
            let names: Vec<String> = request
                .peer_certs()
                .and_then(|certs| certs.first().map(|c| crate::certs::dns_names(c.as_ref())))
                .unwrap_or_default();
            let claimed = &request.get_ref().from;
            if !names.iter().any(|n| n == claimed) {
                tracing::warn!(claimed = %claimed, certificate = ?names, "refused a peer whose certificate does not name it");
                return Err(Status::permission_denied(format!(
                    "certificate issued for {names:?} cannot speak for {claimed:?}"
                )));
            }
        }
        let envelope = request.into_inner();
        let cluster = envelope.cluster.clone();
        if !crate::agreement::well_formed(&cluster) {
            return Err(Status::invalid_argument("field cluster: not a cluster fingerprint (16 hex digits)"));
        }
        let (from, message) = wire::decode(&self.receiver.cfg, envelope).map_err(|e| {
            tracing::warn!(error = %e, "rejected a peer message");
            Status::invalid_argument(e.to_string())
        })?;
        if from == self.receiver.me {
            return Err(Status::invalid_argument("message claims to come from this node"));
        }
        if !self.receiver.agreement.observe(from, &cluster) {
            let ours = self.receiver.agreement.ours();
            let mut status = Status::failed_precondition(format!(
                "cluster config differs: this node's members, votes and priorities have fingerprint {ours}, the \
                 message's {cluster}"
            ));
            if let Ok(value) = ours.parse() {
                status.metadata_mut().insert(FINGERPRINT_KEY, value);
            }
            return Err(status);
        }
        // Full queue: drop, as a lossy network would.
        let _ = self.receiver.inbound.try_send((from, message));
        Ok(Response::new(pb::Ack {}))
    }
}

/// Serves the `Peer` gRPC service on `listener` until `shutdown` resolves,
/// with connections admitted as `admission` says and the per-connection
/// limits and timeouts of [`crate::limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    admission: crate::listen::Admission,
    receiver: Receiver,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    use crate::limits;
    let service = pb::peer_server::PeerServer::new(PeerService { receiver, tls: tls.is_some() });
    let mut admitted = crate::listen::admit(listener, admission, "grpc");
    let incoming =
        futures_util::stream::poll_fn(move |cx| admitted.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>)));
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(limits::PEER_CALLS_PER_CONNECTION)
        .timeout(limits::PEER_REQUEST_TIMEOUT)
        .max_concurrent_streams(limits::PEER_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(limits::PEER_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(limits::PEER_KEEPALIVE_TIMEOUT));
    if let Some(t) = &tls {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&t.cert, &t.key))
            .client_ca_root(Certificate::from_pem(&t.ca))
            .timeout(limits::PEER_TLS_HANDSHAKE_TIMEOUT);
        builder = builder.tls_config(config)?;
    }
    builder.add_service(service).serve_with_incoming_shutdown(incoming, shutdown).await
}

/// Outgoing side: one queue and task per peer.
pub struct Senders {
    cfg: Arc<ClusterConfig>,
    me: NodeId,
    agreement: Arc<Agreement>,
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
        tls: Option<&TlsFiles>,
        agreement: Arc<Agreement>,
    ) -> Result<Senders, tonic::transport::Error> {
        let mut queues = HashMap::new();
        for (id, addr) in peers {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))?
                .connect_timeout(rpc_timeout)
                .timeout(rpc_timeout)
                .tcp_nodelay(true);
            if let Some(t) = tls {
                // The peer's certificate must be issued for its member name.
                let name = cfg.member(id).map(|m| m.name.clone()).unwrap_or_default();
                let config = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&t.ca))
                    .identity(Identity::from_pem(&t.cert, &t.key))
                    .domain_name(name);
                endpoint = endpoint.tls_config(config)?;
            }
            let (tx, mut rx) = mpsc::channel::<pb::Envelope>(QUEUE);
            let agreement = agreement.clone();
            tokio::spawn(async move {
                let mut client = pb::peer_client::PeerClient::new(endpoint.connect_lazy());
                let mut failing = false;
                while let Some(env) = rx.recv().await {
                    match client.deliver(env).await {
                        Ok(_) if failing => {
                            failing = false;
                            tracing::info!(peer = %addr, "peer reachable again");
                        }
                        Ok(_) => {}
                        // Refused for a differing config: the link works.
                        Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                            let theirs = e.metadata().get(FINGERPRINT_KEY).and_then(|v| v.to_str().ok());
                            if let Some(theirs) = theirs.filter(|t| crate::agreement::well_formed(t)) {
                                agreement.observe(id, theirs);
                            }
                        }
                        Err(e) => {
                            if !failing {
                                failing = true;
                                tracing::warn!(peer = %addr, error = %e.message(), "peer unreachable");
                            }
                            // What queued up meanwhile is stale (the protocol
                            // sends afresh), and a connection whose packets
                            // were lost may sit in TCP retransmission backoff
                            // for seconds after the network heals: drop both,
                            // so the next message goes at once on a new one.
                            while rx.try_recv().is_ok() {}
                            client = pb::peer_client::PeerClient::new(endpoint.connect_lazy());
                        }
                    }
                }
            });
            queues.insert(id, tx);
        }
        Ok(Senders { cfg, me, agreement, queues })
    }

    /// Queues `message` for `to`; drops it if the queue is full.
    pub fn send(&self, to: NodeId, message: Message) {
        if let Some(q) = self.queues.get(&to) {
            let _ = q.try_send(wire::encode(&self.cfg, self.agreement.ours(), self.me, message));
        }
    }
}
