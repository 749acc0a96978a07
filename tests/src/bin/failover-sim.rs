//! `failover-sim`: runs the real protocol core through seeded chaos in
//! virtual time and checks every invariant after every step.
//!
//! ```text
//! failover-sim --seeds 10000 [--seed-start 0] [--duration-ms 120000] [--threads N]
//! failover-sim --seeds 1 --seed-start 4242 --trace     # replay one seed
//! ```
//! Prints one summary line starting `seeds=N violations=V`, with failover
//! time p50/p99 in virtual milliseconds; exits non-zero on any violation.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::Parser;
use failover_core::sim::chaos::{self, ChaosOptions, ChaosReport};

#[derive(Parser, Debug)]
#[command(name = "failover-sim", about = "Deterministic chaos simulation of the failover protocol")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed_start: u64,
    /// Virtual milliseconds of faults per seed (a final heal follows).
    #[arg(long, default_value_t = 120_000)]
    duration_ms: u64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print every injected fault of each seed (use with one seed to replay).
    #[arg(long)]
    trace: bool,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ChaosOptions { duration_ms: args.duration_ms, trace: args.trace };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicU64::new(args.seed_start);
    let end = args.seed_start.saturating_add(args.seeds);
    let reports: Mutex<Vec<ChaosReport>> = Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let report = chaos::run(seed, &options);
                if let Ok(mut all) = reports.lock() {
                    all.push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.seed);
    let mut failover: Vec<u64> = reports.iter().flat_map(|r| r.failover_ms.iter().copied()).collect();
    failover.sort_unstable();
    let failing: Vec<&ChaosReport> = reports.iter().filter(|r| !r.violations.is_empty()).collect();
    for r in &reports {
        if args.trace {
            println!("seed {} ({})", r.seed, r.shape);
            for line in &r.trace {
                println!("  {line}");
            }
        }
    }
    for r in &failing {
        for v in r.violations.iter().take(3) {
            eprintln!("seed {} ({}): {} at {} ms: {}", r.seed, r.shape, v.invariant, v.at_ms, v.detail);
        }
        eprintln!(
            "  replay: cargo run --release -p failover-tests --bin failover-sim -- --seeds 1 --seed-start {} --duration-ms {} --trace",
            r.seed, args.duration_ms
        );
    }
    let violations: usize = failing.iter().map(|r| r.violations.len()).sum();
    println!(
        "seeds={} violations={} failing_seeds={} failovers={} failover_ms_p50={} failover_ms_p99={} failover_ms_max={} steps={} wall_s={:.1}",
        reports.len(),
        violations,
        failing.len(),
        failover.len(),
        percentile(&failover, 50.0),
        percentile(&failover, 99.0),
        failover.last().copied().unwrap_or(0),
        reports.iter().map(|r| r.steps).sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
