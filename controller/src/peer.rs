//! Node-to-node transport over tonic gRPC: a `Peer` server that decodes and
//! validates each envelope before handing it to the protocol loop, and one
//! sender task per peer with a bounded queue. Sending never blocks the
//! protocol: when a peer is slow or away its queue fills and new messages
//! are dropped, which the protocol tolerates like any other loss. With
//! mutual TLS every node proves its name with a certificate from the
//! cluster CA, and a message is accepted only from the name it was issued for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use failover_core::{ClusterConfig, Message, NodeId};
use failover_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::agreement::Agreement;
use crate::host_port::HostPort;
use crate::maintenance_notes::Notebook;
use crate::peer_tls::{LiveTls, TlsFiles};
use crate::unresolved::Unresolved;
use crate::wire;

/// Metadata key of a refusal for a differing config or cluster: the
/// refuser's cluster fingerprint, so the sender can show both.
const FINGERPRINT_KEY: &str = "failover-cluster";

/// Metadata key of such a refusal: the refuser's cluster name (absent from
/// a build that does not send it).
const CLUSTER_NAME_KEY: &str = "failover-cluster-name";

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
    /// Messages from a peer of another cluster, or whose config differs,
    /// are refused.
    pub agreement: Arc<Agreement>,
    /// Where the maintenance notes a heartbeat carries go.
    pub notes: Arc<Notebook>,
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
        let cluster_name = envelope.cluster_name.clone();
        if !crate::agreement::well_formed_name(&cluster_name) {
            return Err(Status::invalid_argument("field cluster_name: not a cluster name"));
        }
        let notes = wire::maintenance_notes(&self.receiver.cfg, &envelope);
        let (from, message) = wire::decode(&self.receiver.cfg, envelope).map_err(|e| {
            tracing::warn!(error = %e, "rejected a peer message");
            Status::invalid_argument(e.to_string())
        })?;
        if from == self.receiver.me {
            return Err(Status::invalid_argument("message claims to come from this node"));
        }
        // Checked on every message: the cluster name first (a node of
        // another cluster is refused even when its members are the same),
        // then the fingerprint. A message without a name (an older build)
        // is judged on its fingerprint alone.
        let agreement = &self.receiver.agreement;
        if let Err(refused) = agreement.observe(from, &cluster, &cluster_name) {
            let mut status = Status::failed_precondition(refused.to_string());
            if let Ok(value) = agreement.ours().parse() {
                status.metadata_mut().insert(FINGERPRINT_KEY, value);
            }
            if let Ok(value) = agreement.cluster().parse() {
                status.metadata_mut().insert(CLUSTER_NAME_KEY, value);
            }
            return Err(status);
        }
        if let Some(notes) = notes {
            self.receiver.notes.offer(notes);
        }
        // Full queue: drop, as a lossy network would.
        let _ = self.receiver.inbound.try_send((from, message));
        Ok(Response::new(pb::Ack {}))
    }
}

/// Serves the `Peer` gRPC service on `listener` until `shutdown` resolves,
/// with connections admitted as `admission` says and the per-connection
/// limits and timeouts of [`crate::limits`]. With TLS, each admitted
/// connection completes its handshake within
/// [`limits::PEER_TLS_HANDSHAKE_TIMEOUT`](crate::limits::PEER_TLS_HANDSHAKE_TIMEOUT),
/// with the files of the latest reload.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admission: crate::listen::Admission,
    receiver: Receiver,
    tls: Option<LiveTls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    use crate::limits;
    let service = pb::peer_server::PeerServer::new(PeerService { receiver, tls: tls.is_some() });
    let mut admitted = crate::listen::admit(listener, admission, "grpc");
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(limits::PEER_CALLS_PER_CONNECTION)
        .timeout(limits::PEER_REQUEST_TIMEOUT)
        .max_concurrent_streams(limits::PEER_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(limits::PEER_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(limits::PEER_KEEPALIVE_TIMEOUT));
    let router = builder.add_service(service);
    let Some(tls) = tls else {
        let incoming =
            futures_util::stream::poll_fn(move |cx| admitted.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>)));
        return router.serve_with_incoming_shutdown(incoming, shutdown).await;
    };
    let (handshaken, mut ready) = mpsc::channel(limits::PEER_HANDSHAKES_QUEUED);
    tokio::spawn(async move {
        let mut acceptor = None;
        let mut tls = tls;
        while let Some(conn) = admitted.recv().await {
            if acceptor.is_none() || tls.has_changed().unwrap_or(false) {
                match tls.borrow_and_update().server_config() {
                    Ok(config) => acceptor = Some(tokio_rustls::TlsAcceptor::from(config)),
                    Err(e) => tracing::error!(error = %e, "peer TLS files unusable; keeping the previous ones"),
                }
            }
            let (Some(acceptor), handshaken) = (acceptor.clone(), handshaken.clone()) else { continue };
            tokio::spawn(async move {
                let remote = conn.peer_addr();
                match tokio::time::timeout(limits::PEER_TLS_HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                    Ok(Ok(stream)) => {
                        let _ = handshaken.send(stream).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, ?remote, "peer TLS handshake failed"),
                    Err(_) => tracing::debug!(?remote, "peer TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = futures_util::stream::poll_fn(move |cx| ready.poll_recv(cx).map(|c| c.map(Ok::<_, std::io::Error>)));
    router.serve_with_incoming_shutdown(incoming, shutdown).await
}

/// How a sender reaches one peer: scheme and, with TLS, this node's
/// certificate and the CA of the files in use, the peer's certificate
/// required to name the peer (its member name, whatever its address). A
/// host name in `addr` is resolved by the system resolver at each new
/// connection, never kept.
fn peer_endpoint(
    addr: &HostPort,
    name: String,
    rpc_timeout: Duration,
    tls: Option<&TlsFiles>,
) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))?
        .connect_timeout(rpc_timeout)
        .timeout(rpc_timeout)
        .tcp_nodelay(true);
    match tls {
        None => Ok(endpoint),
        Some(t) => endpoint.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&t.ca))
                .identity(Identity::from_pem(&t.cert, &t.key))
                .domain_name(name),
        ),
    }
}

/// How a sender keeps `/status` told whether its peer's name resolves.
struct Resolution {
    member: String,
    unresolved: Unresolved,
    /// Bounds each lookup, so a resolver that does not answer holds the
    /// sender no longer than a call would.
    timeout: Duration,
}

impl Resolution {
    /// After a failed call: resolves a name again (an IP literal needs
    /// nothing) and records and logs the outcome when it changed.
    async fn check(&self, addr: &HostPort) {
        if addr.ip_literal().is_some() {
            return;
        }
        let outcome = match tokio::time::timeout(self.timeout, addr.resolve()).await {
            Ok(outcome) => outcome.map(drop),
            Err(_) => Err(crate::host_port::Unresolvable {
                address: addr.clone(),
                detail: format!("no answer from the resolver within {:?}", self.timeout),
            }),
        };
        if self.unresolved.record(&self.member, outcome.as_ref().map(|_| ())) {
            match outcome {
                Err(e) => tracing::warn!(peer = %self.member, "peer-address {e}"),
                Ok(()) => tracing::info!(peer = %self.member, address = %addr, "peer-address resolves again"),
            }
        }
    }

    /// After a call that went through: the name resolved.
    fn reached(&self, addr: &HostPort) {
        if addr.ip_literal().is_none() && self.unresolved.record(&self.member, Ok(())) {
            tracing::info!(peer = %self.member, address = %addr, "peer-address resolves again");
        }
    }
}

/// Outgoing side: one queue and task per peer.
pub struct Senders {
    cfg: Arc<ClusterConfig>,
    me: NodeId,
    agreement: Arc<Agreement>,
    queues: HashMap<NodeId, mpsc::Sender<pb::Envelope>>,
    notes: Arc<Notebook>,
}

impl Senders {
    /// Starts a sender task for each peer address. `rpc_timeout` bounds each
    /// call so a hung peer cannot hold its queue forever. After a failed
    /// call to a peer whose address is a name, the name is resolved again
    /// and the outcome recorded in `unresolved` (and logged when it changes).
    pub fn start(
        cfg: Arc<ClusterConfig>,
        me: NodeId,
        peers: Vec<(NodeId, HostPort)>,
        rpc_timeout: Duration,
        tls: Option<LiveTls>,
        agreement: Arc<Agreement>,
        unresolved: Unresolved,
    ) -> Result<Senders, tonic::transport::Error> {
        let mut queues = HashMap::new();
        for (id, addr) in peers {
            // The peer's certificate must be issued for its member name.
            let name = cfg.member(id).map(|m| m.name.clone()).unwrap_or_default();
            let mut tls = tls.clone();
            let files = tls.as_mut().map(|t| t.borrow_and_update().clone());
            let mut endpoint = peer_endpoint(&addr, name.clone(), rpc_timeout, files.as_ref())?;
            let (tx, mut rx) = mpsc::channel::<pb::Envelope>(QUEUE);
            let agreement = agreement.clone();
            let resolution = Resolution { member: name.clone(), unresolved: unresolved.clone(), timeout: rpc_timeout };
            tokio::spawn(async move {
                let mut client = pb::peer_client::PeerClient::new(endpoint.connect_lazy());
                let mut failing = false;
                while let Some(env) = rx.recv().await {
                    // New TLS files from a reload: a new connection with them.
                    if let Some(t) = tls.as_mut().filter(|t| t.has_changed().unwrap_or(false)) {
                        let files = t.borrow_and_update().clone();
                        match peer_endpoint(&addr, name.clone(), rpc_timeout, Some(&files)) {
                            Ok(e) => {
                                endpoint = e;
                                client = pb::peer_client::PeerClient::new(endpoint.connect_lazy());
                            }
                            Err(e) => tracing::error!(peer = %addr, error = %e, "new peer TLS files unusable"),
                        }
                    }
                    match client.deliver(env).await {
                        Ok(_) if failing => {
                            failing = false;
                            resolution.reached(&addr);
                            tracing::info!(peer = %addr, "peer reachable again");
                        }
                        // Also clears a failure seen at start, before any call.
                        Ok(_) => resolution.reached(&addr),
                        // Refused for another cluster or a differing config:
                        // the link works.
                        Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                            let said = |key| e.metadata().get(key).and_then(|v| v.to_str().ok());
                            let theirs = said(FINGERPRINT_KEY).filter(|t| crate::agreement::well_formed(t));
                            let name = said(CLUSTER_NAME_KEY).unwrap_or_default();
                            if let Some(theirs) = theirs.filter(|_| crate::agreement::well_formed_name(name)) {
                                let _ = agreement.observe(id, theirs, name);
                            }
                        }
                        Err(e) => {
                            if !failing {
                                failing = true;
                                tracing::warn!(peer = %addr, error = %e.message(), "peer unreachable");
                            }
                            resolution.check(&addr).await;
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
        Ok(Senders { cfg, me, agreement, queues, notes: Arc::default() })
    }

    /// Heartbeats carry the maintenance notes of `notes` beside the setting
    /// they explain.
    pub fn with_notes(self, notes: Arc<Notebook>) -> Senders {
        Senders { notes, ..self }
    }

    /// Queues `message` for `to`; drops it if the queue is full.
    pub fn send(&self, to: NodeId, message: Message) {
        if let Some(q) = self.queues.get(&to) {
            let mut envelope =
                wire::encode(&self.cfg, self.agreement.ours(), self.agreement.cluster(), self.me, message);
            if matches!(message, Message::Heartbeat(_)) {
                wire::attach_notes(&self.cfg, &mut envelope, &self.notes.current());
            }
            let _ = q.try_send(envelope);
        }
    }
}

#[cfg(test)]
mod tests {
    use failover_core::{Member, Policy, Term, Timers};
    use pb::peer_server::Peer as _;

    use super::*;
    use crate::agreement::Mismatch;

    /// Site `site-a`'s peer service in cluster `prod`, the loop's inbox and
    /// its agreement.
    fn site_a() -> (PeerService, mpsc::Receiver<(NodeId, Message)>, Arc<Agreement>) {
        let members = vec![Member::site("site-a", 2), Member::site("site-b", 1), Member::witness("witness")];
        let cfg = Arc::new(ClusterConfig { members, timers: Timers::default(), policy: Policy::default() });
        let agreement = Arc::new(Agreement::new(&cfg, "prod"));
        let (inbound, inbox) = mpsc::channel(8);
        let receiver = Receiver { cfg, me: NodeId(0), inbound, agreement: agreement.clone(), notes: Arc::default() };
        (PeerService { receiver, tls: false }, inbox, agreement)
    }

    /// A message from site-b of the cluster named `cluster_name`, with the
    /// fingerprint `fingerprint`.
    fn from_site_b(service: &PeerService, fingerprint: &str, cluster_name: &str) -> Request<pb::Envelope> {
        let message = Message::ReleaseAck { term: Term(1) };
        Request::new(wire::encode(&service.receiver.cfg, fingerprint, cluster_name, NodeId(1), message))
    }

    fn mismatch(theirs: &str, cluster: &str, refused: bool) -> Mismatch {
        Mismatch { peer: "site-b".into(), theirs: theirs.into(), cluster: cluster.into(), refused }
    }

    #[tokio::test]
    async fn a_message_from_a_node_of_another_cluster_is_refused_naming_both_clusters() {
        let (service, mut inbox, agreement) = site_a();
        let ours = agreement.ours().to_owned();
        // Same CA, same member names, same fingerprint: only the name differs.
        let refused = service.deliver(from_site_b(&service, &ours, "staging")).await.expect_err("accepted");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        let text = refused.message();
        assert!(
            text.contains("another cluster") && text.contains("\"prod\"") && text.contains("\"staging\""),
            "{text}"
        );
        let said = |key| refused.metadata().get(key).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(said(CLUSTER_NAME_KEY).as_deref(), Some("prod"), "the sender is told this node's cluster");
        assert_eq!(said(FINGERPRINT_KEY).as_deref(), Some(ours.as_str()));
        assert!(inbox.try_recv().is_err(), "the message reached the loop");
        assert_eq!(agreement.mismatches(), vec![mismatch(&ours, "staging", true)]);

        // From this cluster it is accepted, and the mismatch is gone.
        service.deliver(from_site_b(&service, &ours, "prod")).await.expect("refused from this cluster");
        assert_eq!(inbox.try_recv().ok(), Some((NodeId(1), Message::ReleaseAck { term: Term(1) })));
        assert!(agreement.mismatches().is_empty());
    }

    #[tokio::test]
    async fn an_older_build_without_the_name_is_accepted_on_its_fingerprint_alone() {
        let (service, mut inbox, agreement) = site_a();
        let ours = agreement.ours().to_owned();
        service.deliver(from_site_b(&service, &ours, "")).await.expect("an older build was refused");
        assert!(inbox.try_recv().is_ok());
        assert_eq!(agreement.mismatches(), vec![mismatch(&ours, "", false)], "listed as unverified");
        let refused = service.deliver(from_site_b(&service, "0123456789abcdef", "")).await.expect_err("accepted");
        assert!(refused.message().contains("cluster config differs"), "{refused:?}");
        assert!(inbox.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_cluster_name_that_is_not_a_name_is_refused_before_it_is_shown() {
        let (service, mut inbox, agreement) = site_a();
        let ours = agreement.ours().to_owned();
        let refused =
            service.deliver(from_site_b(&service, &ours, "prod\nforged log line")).await.expect_err("accepted");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(inbox.try_recv().is_err());
        assert!(agreement.mismatches().is_empty(), "a malformed name was recorded");
    }
}
