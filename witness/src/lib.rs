//! `failover-witness`: the neutral third vote. It runs `failover-core` as a
//! voter that can never become active, and must never touch traffic, run
//! hooks or actuators. The daemon lands with issue 3; this crate currently
//! only fixes its place in the workspace.
