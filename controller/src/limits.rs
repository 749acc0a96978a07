//! The resources a node allows its network servers, in one place: the
//! process's open-files limit (raised from soft to hard at start), the
//! connection caps of the HTTP and gRPC servers sized below it, and the
//! timeouts that keep idle or slow connections from holding descriptors.
//!
//! Every accepted connection costs one descriptor. The caps leave
//! [`RESERVED_FILES`] descriptors for everything else, so connections alone
//! can never exhaust the limit, and a connection that sends nothing is
//! closed after [`FIRST_BYTE_WITHIN`], so idle connections cannot keep a
//! cap full for longer than that: a fresh request is served within seconds
//! whatever number of idle connections is held open against a port.
//!
//! No one source can hold a whole cap ([`crate::slots`]): on the HTTP port
//! a source holds at most one [`HTTP_SOURCE_SHARE`]th of the connections,
//! kept-alive ones included, so a load balancer's check finds a free one
//! whatever one host keeps open; on the peer port each member's address
//! has [`PEER_CONNECTIONS_PER_MEMBER`] connections of its own that no
//! stranger can take, and any other source holds at most
//! [`PEER_CONNECTIONS_PER_SOURCE`].

use std::time::Duration;

use std::net::IpAddr;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::slots::SlotPolicy;

/// Descriptors kept out of the connection caps: the state file, logs, the
/// two listening sockets, connections to peers, actuator targets, health
/// check targets and MongoDB, hooks' pipes, and the runtime's own.
pub const RESERVED_FILES: u64 = 128;

/// Most HTTP connections open at once, whatever the open-files limit.
pub const HTTP_CONNECTIONS_MAX: usize = 4096;

/// Most gRPC connections open at once, whatever the open-files limit. A
/// cluster has a handful of members, each with one connection to every
/// other; the rest of the room is for reconnections.
pub const PEER_CONNECTIONS_MAX: usize = 256;

/// HTTP: one source (an IPv4 address or an IPv6 /64) holds at most this
/// fraction of the HTTP connections (256 of 4,096): a load balancer, a
/// TLS proxy or an operator's host needs a handful, and a host that opens
/// all it can leaves the rest to everyone else.
pub const HTTP_SOURCE_SHARE: usize = 16;

/// gRPC: connections of its own for each member's peer address, which
/// no other source can take. A member keeps one connection to each other
/// member; the rest covers reconnections and members sharing a host.
pub const PEER_CONNECTIONS_PER_MEMBER: usize = 16;

/// gRPC: connections one source that is not a member (or a member beyond
/// its own) holds at most.
pub const PEER_CONNECTIONS_PER_SOURCE: usize = 16;

/// A connection that has not sent its first byte by then is closed, before
/// any server sees it. Load balancers, `failoverctl` and peers all send at
/// once.
pub const FIRST_BYTE_WITHIN: Duration = Duration::from_secs(3);

/// HTTP: the whole request head must arrive within this, counted from the
/// moment the server waits for it, on a new connection and on a kept-alive
/// one alike; a kept-alive connection idle for longer is closed.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP: a request not answered by then gets 503. The longest handler,
/// forwarding an admin call, gives up after 10 s on its own.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// HTTP: requests handled at once, over all connections, `/active`,
/// `/standby`, `/readyz` and `/healthz` not counted; more wait for a slot (each slot is freed within
/// [`HTTP_REQUEST_TIMEOUT`]).
pub const HTTP_CONCURRENT_REQUESTS: usize = 64;

/// HTTP: largest request head and buffered body, in bytes.
pub const HTTP_MAX_BUFFER: usize = 64 * 1024;

/// HTTP: largest request body (admin calls' JSON; no other route reads
/// one): a larger one gets 413 Payload Too Large, unread.
pub const HTTP_MAX_BODY: usize = 64 * 1024;

/// HTTP: how long open connections may take to finish at shutdown.
pub const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// gRPC: a call not answered by then is cancelled. Delivering a message
/// only queues it, so this is far above any real call.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// gRPC: calls handled at once on one connection.
pub const PEER_CALLS_PER_CONNECTION: usize = 32;

/// gRPC: HTTP/2 streams a client may open at once on one connection.
pub const PEER_STREAMS_PER_CONNECTION: u32 = 64;

/// gRPC: an HTTP/2 ping is sent on a connection quiet for this long...
pub const PEER_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// ...and the connection is closed when the ping is not answered in this.
pub const PEER_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// gRPC with mutual TLS: the TLS handshake must finish within this.
pub const PEER_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Peer connections whose TLS handshake is done, waiting for the gRPC
/// server to take them.
pub const PEER_HANDSHAKES_QUEUED: usize = 64;

/// A client of the HTTP port with TLS must finish its handshake within this.
pub const HTTP_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Soft limit assumed when the hard one is unlimited (Linux refuses an
/// unlimited soft limit on open files).
const UNLIMITED_OPEN_FILES: u64 = 1 << 20;

/// The open-files limit in force after [`raise_open_files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit before raising it.
    pub was: u64,
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (None: unlimited).
    pub hard: Option<u64>,
}

/// Raises the soft open-files limit to the hard one (a soft limit of 1024,
/// the usual default, is too few for a server) and returns both. When the
/// kernel refuses, the soft limit stays as it was and is what the caps are
/// sized for.
pub fn raise_open_files() -> OpenFiles {
    let before = getrlimit(Resource::Nofile);
    let was = before.current.unwrap_or(UNLIMITED_OPEN_FILES);
    let target = before.maximum.unwrap_or(UNLIMITED_OPEN_FILES);
    if target > was {
        let raised = Rlimit { current: Some(target), maximum: before.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(soft = was, hard = target, error = %e, "could not raise the open-files limit");
        }
    }
    let after = getrlimit(Resource::Nofile);
    OpenFiles { was, soft: after.current.unwrap_or(UNLIMITED_OPEN_FILES), hard: after.maximum }
}

/// How many connections each server keeps open at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// HTTP connections.
    pub http: usize,
    /// gRPC (peer) connections.
    pub peer: usize,
}

impl ConnectionCaps {
    /// Caps for a process that may hold `open_files` descriptors: beyond
    /// [`RESERVED_FILES`], half of the rest for HTTP and a quarter for gRPC
    /// (the last quarter covers connections accepted only to be closed at
    /// once), each within its maximum and at least one.
    pub fn for_open_files(open_files: u64) -> ConnectionCaps {
        let room = usize::try_from(open_files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
        ConnectionCaps {
            http: (room / 2).clamp(1, HTTP_CONNECTIONS_MAX),
            peer: (room / 4).clamp(1, PEER_CONNECTIONS_MAX),
        }
    }
}

impl ConnectionCaps {
    /// How the HTTP slots are shared out: no reserved addresses, each
    /// source at most [`HTTP_SOURCE_SHARE`]th of them (at least one).
    pub fn http_slots(&self) -> SlotPolicy {
        SlotPolicy::shared(self.http, (self.http / HTTP_SOURCE_SHARE).max(1))
    }

    /// How the peer slots are shared out: each of the `members`' addresses
    /// (the unspecified one left out) has [`PEER_CONNECTIONS_PER_MEMBER`]
    /// of its own, fewer if that would reserve more than half the cap; any
    /// source holds at most [`PEER_CONNECTIONS_PER_SOURCE`] of the rest.
    pub fn peer_slots(&self, members: impl IntoIterator<Item = IpAddr>) -> SlotPolicy {
        let mut reserved: Vec<IpAddr> = members.into_iter().filter(|ip| !ip.is_unspecified()).collect();
        reserved.sort_unstable();
        reserved.dedup();
        let per_reserved = PEER_CONNECTIONS_PER_MEMBER.min(self.peer / 2 / reserved.len().max(1));
        SlotPolicy { total: self.peer, per_source: PEER_CONNECTIONS_PER_SOURCE, reserved, per_reserved }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_the_reserve_and_room_for_refusals_below_the_limit() {
        for limit in [512, 1024, 4096, 65_536, 1 << 20] {
            let caps = ConnectionCaps::for_open_files(limit);
            let used = (caps.http + caps.peer) as u64 + RESERVED_FILES;
            assert!(used < limit, "limit {limit}: caps {caps:?} use {used}");
        }
        assert_eq!(ConnectionCaps::for_open_files(1024), ConnectionCaps { http: 448, peer: 224 });
        assert_eq!(
            ConnectionCaps::for_open_files(65_536),
            ConnectionCaps { http: HTTP_CONNECTIONS_MAX, peer: PEER_CONNECTIONS_MAX }
        );
    }

    #[test]
    fn a_limit_below_the_reserve_still_admits_a_connection() {
        assert_eq!(ConnectionCaps::for_open_files(16), ConnectionCaps { http: 1, peer: 1 });
    }

    #[test]
    fn one_http_source_holds_a_sixteenth_of_the_slots() {
        assert_eq!(ConnectionCaps::for_open_files(65_536).http_slots().per_source, 256);
        assert_eq!(ConnectionCaps::for_open_files(1024).http_slots().per_source, 28);
        assert_eq!(ConnectionCaps::for_open_files(16).http_slots().per_source, 1);
    }

    #[test]
    fn each_member_address_has_peer_slots_of_its_own_within_half_the_cap() {
        let members: Vec<IpAddr> = ["127.0.10.1", "127.0.10.2", "127.0.10.2", "0.0.0.0"]
            .iter()
            .map(|a| a.parse().expect("an address"))
            .collect();
        let policy = ConnectionCaps::for_open_files(65_536).peer_slots(members.clone());
        assert_eq!(policy.reserved.len(), 2, "{policy:?}");
        assert_eq!(policy.per_reserved, PEER_CONNECTIONS_PER_MEMBER);
        assert_eq!(policy.shared_pool(), PEER_CONNECTIONS_MAX - 2 * PEER_CONNECTIONS_PER_MEMBER);
        let small = ConnectionCaps { http: 8, peer: 8 }.peer_slots(members);
        assert_eq!(small.per_reserved, 2);
        assert_eq!(small.shared_pool(), 4);
    }
}
