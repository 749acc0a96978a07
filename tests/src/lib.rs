//! `failover-tests`: harnesses that exercise the real system from outside:
//! the `failover-sim` runner over the core's deterministic simulator, and
//! end-to-end tests that start the real binaries. It must
//! never be a dependency of a shipped crate.
//!
//! Pieces for the end-to-end tests:
//! - [`proxy`]: a fault-injecting TCP proxy (latency, refused connections,
//!   one-way and full cuts, heal) to put between real processes on
//!   127.0.0.1, since this machine has no `netem`.
//! - [`prober`]: a split-brain prober that samples every site's "active"
//!   endpoint at once, each interval, and reports any round where more than
//!   one answered 200.
//! - [`cluster`]: the real binaries as a three-node cluster, every peer
//!   link through its own proxy.
//! - [`named`] and [`haproxy`]: real BIND9 and HAProxy processes for the
//!   actuator tests; [`http_stub`]: test application and webhook servers.
//! - [`flood`]: connection floods from one loopback source address
//!   (refreshing keep-alive clients, a stream of silent connections).
//! - [`http_client`]: the one HTTP client of the tests and the benchmark;
//!   [`status`]: the one place that reads a node's `/status` document.
//! - [`metrics_text`]: reading a node's `/metrics` text.
//! - [`netns`]: network namespaces for the `failover-bench` benchmark.
//! - [`mongo_test_server`]: a MongoDB *test server* (a wire-protocol
//!   stand-in, not MongoDB) that the real `mongodb` driver talks to.
//! - [`moto`]: moto, an AWS emulator, as a real process (Route 53).
//! - [`secantus`]: SecantusDB, an independent MongoDB-wire-compatible
//!   server, as a real process.
//! - [`venv`]: where the tests' Python virtualenvs are.

pub mod cluster;
pub mod flood;
pub mod haproxy;
pub mod http_client;
pub mod http_stub;
pub mod metrics_text;
pub mod mongo_test_server;
pub mod moto;
pub mod named;
pub mod netns;
pub mod prober;
pub mod proxy;
pub mod secantus;
pub mod status;
pub mod venv;
