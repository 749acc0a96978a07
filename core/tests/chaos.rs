//! A short chaos run on every `cargo test`: seeded runs of the simulator
//! (see `failover_core::sim::chaos`) must break no invariant. The
//! `failover-sim` binary runs thousands of seeds; this keeps a quick net in
//! the core's own test suite, where mutation testing looks.

use failover_core::sim::chaos::{self, ChaosOptions};

#[test]
fn seeded_chaos_breaks_no_invariant() {
    let seeds: u64 = std::env::var("CHAOS_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let options = ChaosOptions { duration_ms: 60_000, trace: false };
    let mut failing = Vec::new();
    for seed in 0..seeds {
        let report = chaos::run(seed, &options);
        if let Some(v) = report.violations.first() {
            failing.push(format!("seed {seed} ({}): {} at {} ms: {}", report.shape, v.invariant, v.at_ms, v.detail));
        }
    }
    assert!(failing.is_empty(), "{} of {seeds} seeds broke an invariant:\n{}", failing.len(), failing.join("\n"));
}
