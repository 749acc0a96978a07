//! `failover-tests`: harnesses that exercise the real system from outside:
//! the `failover-sim` runner over the core's deterministic simulator, and
//! (from issue 3 on) end-to-end tests that start the real binaries. It must
//! never be a dependency of a shipped crate.
