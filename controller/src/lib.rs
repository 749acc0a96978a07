//! `failover-controller`: the site controller daemon that feeds
//! `failover-core` from the outside world (gRPC, timers, health checks) and
//! carries out its actions (persistence, DNS, load balancer, MongoDB, hooks).
//!
//! It must never decide anything the protocol decides: every choice of role,
//! vote or epoch comes from the core. The daemon itself lands with issue 3;
//! this crate currently only fixes its place in the workspace.
