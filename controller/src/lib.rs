//! `failover-controller`: the site controller daemon (and, through
//! [`daemon`], the witness daemon) that feeds `failover-core` from the
//! outside world and carries out its actions: it persists the core's
//! durable state before any message leaves, speaks gRPC to peers, runs
//! health checks and hooks, points traffic at the active site through its
//! actuators (DNS, HAProxy, webhooks), keeps the MongoDB replica set's
//! primary beside the active site and reports its data lag, and serves
//! `/status`, `/active`, `/metrics` and the admin API that `failoverctl`
//! uses.
//!
//! It must never decide anything the protocol decides: every choice of role,
//! vote or epoch comes from the core. It must never report a site active
//! from a stale view: `/active` compares the lease end with the clock at the
//! moment of the request. Protocol time is `CLOCK_BOOTTIME`; wall time is
//! used only to show times to people and to read an operator's `--at`.
//!
//! The modules form floors; a module names only modules on its own floor or
//! below (`scripts/check-module-graph.py` checks it; docs/architecture.md
//! says who owns what):
//! - bottom: [`snapshot`] (the node's published state behind one handle),
//!   [`reports`], [`status_doc`], [`clock`], [`describe`], [`member_name`],
//!   [`command_channel`], [`counts`], [`lease_margin`];
//! - components: [`actuate`], [`mongo`], [`health`], [`hooks`], [`peer`],
//!   [`persist`], [`http`] and [`http_status`], [`metrics`], [`systemd`],
//!   [`agreement`], [`admin_auth`], [`event_history`], [`settings`] and the rest; each
//!   publishes through the snapshot and never names the protocol loop;
//! - [`runtime`]: the protocol loop, which feeds the core and drives the
//!   components;
//! - [`daemon`] and the binaries: wire it all up (only they name
//!   [`runtime`]).

pub mod actuate;
pub mod actuation_mode;
pub mod admin_auth;
pub mod agreement;
pub mod build;
pub mod cert_expiry;
pub mod certs;
pub mod clock;
pub mod code_trim;
pub mod command_channel;
pub mod counts;
pub mod daemon;
pub mod describe;
pub mod event_history;
pub mod health;
pub mod hook_triggers;
pub mod hooks;
pub mod host_port;
pub mod http;
pub mod http_server;
pub mod http_status;
pub mod http_tls;
pub mod lease_margin;
pub mod limits;
pub mod listen;
pub mod logging;
pub mod maintenance_notes;
pub mod member_name;
pub mod metrics;
pub mod mongo;
pub mod peer;
pub mod peer_tls;
pub mod persist;
pub mod redact;
pub mod reload;
pub mod repair;
pub mod reports;
pub mod runtime;
pub mod serving;
pub mod settings;
pub mod shell;
pub mod slots;
pub mod snapshot;
pub mod status_doc;
pub mod systemd;
#[cfg(test)]
mod test_node;
pub mod unresolved;
pub mod wire;

/// Makes ring the process's TLS crypto provider. rustls picks one by itself
/// only when exactly one is compiled in, and a build that also links
/// another (a dependency's default) would then fail at the first TLS
/// handshake; every binary calls this first.
pub fn install_crypto_provider() {
    // An error means one is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
