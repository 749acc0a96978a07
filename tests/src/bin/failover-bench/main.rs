//! `failover-bench`: failover time, switchover time and split-brain
//! exposure of the real binaries, side by side with keepalived and with a
//! leader election on etcd, at two timer sets, and false failovers in a
//! soak under load and loss, on a network of namespaces this process
//! creates (and deletes when done).
//!
//! Each host (site-a, site-b, witness, a services host with BIND9 and
//! HAProxy, and the prober) gets its own network namespace with one veth
//! into a bridge; the benchmark itself moves into the prober's namespace,
//! so every request it makes goes to an address inside those namespaces.
//! Faults are kill -9 and iptables rules inside a host's namespace (which
//! spare the prober, so it keeps seeing every site). One set of scenarios,
//! `five-kill-active`, `five-isolate-active` and `five-lose-two-voters`
//! (our system only), runs on a lab of its own with five voters: site-c
//! (the lowest priority) and witness-2 besides. Every loop is bounded
//! in count and time. Must run as root with `ip`, `iptables`, `named`,
//! `haproxy`, `keepalived`, `etcd` and `stress-ng` installed, and the
//! `etcd-elector` binary built beside this one.
//!
//! The pieces: [`plan`] (what a run covers), [`timers`] (the two timer
//! sets and the soak sweep), [`shape`] (three voters or five: hosts,
//! addresses, priorities), [`configs`] (what each daemon starts with),
//! [`lab`] (hosts, daemons, faults), [`watch`] (what the prober and the
//! service watchers saw), [`scenario`] (each fault and what it should
//! do), [`trial`] (one trial of it), [`soak`] (load and loss, nothing
//! should move), [`resources`] (CPU and memory), [`report`] and
//! [`tables`] (the figures and how they are written), [`helpers`] (the
//! small servers this binary runs as inside the namespaces).

mod configs;
mod helpers;
mod lab;
mod plan;
mod report;
mod resources;
mod scenario;
mod shape;
mod soak;
mod tables;
mod timers;
mod trial;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use failover_tests::netns;

use crate::lab::{Lab, System};
use crate::plan::Chosen;
use crate::report::{Report, ScenarioResult};
use crate::resources::Sample;
use crate::scenario::Scenario;
use crate::shape::Shape;
use crate::timers::TimerSet;
use crate::watch::{Shared, Watchers};

#[derive(Parser)]
#[command(name = "failover-bench", about = "Failover benchmark and chaos harness (needs root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every scenario for each system and write the report.
    Run {
        /// Trials per scenario and system at the default timer set.
        #[arg(long, default_value_t = 30)]
        trials: usize,
        /// Trials per scenario and system at the fast timer set (default:
        /// as many as --trials).
        #[arg(long)]
        fast_trials: Option<usize>,
        /// Read the report already in --out and run only what it lacks (a
        /// scenario with fewer trials than asked, a soak not yet run), so a
        /// run of many hours can be split.
        #[arg(long)]
        resume: bool,
        /// Where results.json, README tables and the chart go.
        #[arg(long, default_value = "docs/benchmarks")]
        out: PathBuf,
        /// Systems to run: failover, keepalived, etcd.
        #[arg(long, value_delimiter = ',', default_value = "failover,keepalived,etcd")]
        systems: Vec<String>,
        /// Timer sets to run each system at: default, fast.
        #[arg(long, value_delimiter = ',', default_value = "default,fast")]
        timers: Vec<String>,
        /// Minutes of soak (load and loss, nothing should move), every
        /// system at every timer set at once, after the trials; 0 for none.
        #[arg(long, default_value_t = 0.0)]
        soak_minutes: f64,
        /// Also soak our system at leases of 400, 300, 200 and 100 ms (in
        /// the same minutes), to find the shortest that loses no role.
        #[arg(long)]
        soak_sweep: bool,
        /// Scenarios to run (default: all of them).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Directory of our daemons, failover-controller and
        /// failover-witness (default: next to this one; the build to
        /// measure is `cargo build --profile dist`, in target/dist). The etcd
        /// elector is always taken from next to this one.
        #[arg(long)]
        bins: Option<PathBuf>,
        /// Exit non-zero unless our system completed every trial, never
        /// showed two active sites, moved exactly when it should, lost no
        /// client request in planned switchovers, and, restarted in place,
        /// took its role back under the same epoch with DNS and HAProxy
        /// untouched (for CI).
        #[arg(long)]
        strict: bool,
    },
    /// (internal) A stand-in application: answers 200 with its name.
    #[command(hide = true)]
    App {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        name: String,
    },
    /// (internal) For keepalived: answers /active with 200 while the VIP is
    /// assigned in this namespace, 503 otherwise.
    #[command(hide = true)]
    VipAgent {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        vip: Ipv4Addr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::App { listen, name } => helpers::app(listen, name),
        Cmd::VipAgent { listen, vip } => helpers::vip_agent(listen, vip),
        Cmd::Run {
            trials,
            fast_trials,
            resume,
            out,
            systems,
            timers,
            soak_minutes,
            soak_sweep,
            scenarios,
            bins,
            strict,
        } => {
            let chosen = Chosen::parse(&systems, &timers, &scenarios, soak_minutes);
            chosen.and_then(|mut c| {
                c.trials = [trials, fast_trials.unwrap_or(trials)];
                c.resume = resume;
                c.soak_sweep = soak_sweep && c.systems.contains(&System::Failover);
                run(&out, &c, bins, strict)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the binaries under test (and this one, which the helpers run)
/// into `out/logs/bin`: a rebuild during a long run must not change what
/// is measured. Returns that directory.
fn freeze_binaries(bins: Option<PathBuf>, out: &Path, systems: &[System]) -> anyhow::Result<PathBuf> {
    let own = std::env::current_exe()?.parent().context("binary directory")?.to_path_buf();
    let ours = bins.unwrap_or_else(|| own.clone());
    let daemon = "cargo build --profile dist --bins and --bins target/dist, or cargo build --release --bins";
    let mut needed = vec![(ours.join("failover-controller"), daemon), (ours.join("failover-witness"), daemon)];
    if systems.contains(&System::Etcd) {
        needed.push((
            own.join("etcd-elector"),
            "cargo build --release --manifest-path bench/etcd-elector/Cargo.toml --target-dir target",
        ));
    }
    for (path, build) in &needed {
        if !path.exists() {
            bail!("{} is missing: {build}", path.display());
        }
    }
    let frozen = out.join("logs").join("bin");
    std::fs::create_dir_all(&frozen)?;
    let frozen = std::fs::canonicalize(&frozen)?;
    for (from, _) in needed {
        let name = from.file_name().context("binary name")?;
        std::fs::copy(&from, frozen.join(name)).with_context(|| format!("copying {}", from.display()))?;
    }
    let me = std::env::current_exe()?;
    std::fs::copy(&me, frozen.join("failover-bench")).with_context(|| format!("copying {}", me.display()))?;
    Ok(frozen)
}

/// The report in `out` to go on with, or a new one.
fn report_to_continue(out: &Path, resume: bool) -> anyhow::Result<Report> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let path = out.join("results.json");
    if !resume || !path.exists() {
        return Ok(Report::new(command, started));
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a report this benchmark wrote: run without --resume", path.display()))?;
    let commit = crate::report::commit().unwrap_or_else(|| "an unknown commit".into());
    report.resumed.push(format!("{started}, {commit}: {command}"));
    Ok(report)
}

fn run(out: &Path, chosen: &Chosen, bins: Option<PathBuf>, strict: bool) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("needs root (network namespaces and iptables)");
    }
    netns::remove_stale("fbn");
    let bins = freeze_binaries(bins, out, &chosen.systems)?;
    let mut report = report_to_continue(out, chosen.resume)?;
    for (system, timers) in chosen.combos() {
        let trials = chosen.trials(timers);
        let done = |report: &Report, scenario: Scenario| {
            report
                .results
                .iter()
                .any(|r| (r.system, r.timers, r.scenario) == (system, timers, scenario) && r.trials >= trials)
        };
        for shape in Shape::ALL {
            let todo: Vec<Scenario> =
                chosen.scenarios(system).filter(|s| s.shape() == shape && !done(&report, *s)).collect();
            if trials > 0 && !todo.is_empty() {
                run_on_lab(&mut report, out, &bins, (system, timers, shape), &todo, trials)?;
            }
        }
    }
    if let Some(length) = chosen.soak {
        eprintln!("== soaks: every system at every timer set at once, {} min", length.as_secs_f64() / 60.0);
        let minutes = length.as_secs_f64() / 60.0;
        let soaked = |r: &Report, (system, timers)| {
            r.soaks.iter().any(|s| (s.system, s.timers) == (system, timers) && s.completed && s.minutes >= minutes)
        };
        let sweep = TimerSet::SWEEP.into_iter().filter(|_| chosen.soak_sweep).map(|t| (System::Failover, t));
        let todo: Vec<_> = chosen.combos().chain(sweep).filter(|&c| !soaked(&report, c)).collect();
        for s in soak::soak_all(&todo, &bins, &out.join("logs"), length) {
            eprintln!("{s:?}");
            report.soaks.retain(|r| (r.system, r.timers) != (s.system, s.timers));
            report.soaks.push(s);
        }
    }
    report.write(out)?;
    eprintln!("wrote {}/results.json, results.md and failover-times.svg", out.display());
    let problems = if strict { report.violations() } else { Vec::new() };
    if !problems.is_empty() {
        bail!("the failover system broke its promises:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// Runs `todo`, scenarios of one shape, `trials` times each for `system`
/// at `timers` on one new lab of that shape, putting each scenario's
/// figures in `report` (written to `out` after each).
fn run_on_lab(
    report: &mut Report,
    out: &Path,
    bins: &Path,
    (system, timers, shape): (System, TimerSet, Shape),
    todo: &[Scenario],
    trials: usize,
) -> anyhow::Result<()> {
    eprintln!("== {} at {} timers, {}", system.name(), timers.name(), shape.name().replace('-', " "));
    let mut lab = Lab::create(system, timers, shape, bins, &out.join("logs"), "")?;
    // From here on this thread (and threads it starts) is the prober,
    // inside the prober's namespace.
    lab.net.enter("probe").context("entering the prober's namespace")?;
    let seen: Shared = Arc::default();
    let services = system == System::Failover;
    let cap = Duration::from_secs(6 * 3600);
    let mut watchers = Watchers::start(&seen, shape.sites(), services, cap);
    trial::settle(&lab, &seen).context("the cluster never settled")?;
    if system == System::Failover && shape == Shape::ThreeVoters {
        // Idle: heartbeats only, the watchers stopped meanwhile.
        drop(watchers);
        std::thread::sleep(Duration::from_millis(500));
        let window = Duration::from_secs(10);
        let before = Sample::take(&lab);
        std::thread::sleep(window);
        report
            .resources
            .insert(format!("idle (heartbeats only), {} timers", timers.name()), before.usage_since(&lab, window));
        watchers = Watchers::start(&seen, shape.sites(), services, cap);
    }
    for &scenario in todo {
        let busy_before = (system == System::Failover && scenario == Scenario::PlannedSwitchover)
            .then(|| (Sample::take(&lab), Instant::now()));
        let got = run_trials(&mut lab, &seen, scenario, trials);
        if let Some((before, t_start)) = busy_before {
            report.resources.insert(
                format!(
                    "busy (planned switchovers back to back, client loop, 100 Hz prober), {} timers",
                    timers.name()
                ),
                before.usage_since(&lab, t_start.elapsed()),
            );
        }
        report.results.retain(|r| (r.system, r.timers, r.scenario) != (system, timers, scenario));
        report.results.push(ScenarioResult::of(system, timers, scenario, trials, &got));
        report.write(out)?;
    }

    drop(watchers);
    let rounds = seen.lock().map(|s| s.rounds).unwrap_or(0);
    eprintln!("{}: {rounds} prober rounds", system.name());
    Ok(())
}

/// Runs `trials` trials of `scenario`, logging each; the completed ones.
fn run_trials(lab: &mut Lab, seen: &Shared, scenario: Scenario, trials: usize) -> Vec<trial::Trial> {
    let (system, name) = (format!("{} ({} timers)", lab.system.name(), lab.timers.name()), scenario.name());
    let mut got = Vec::new();
    for i in 0..trials {
        match trial::trial(lab, seen, scenario) {
            Ok(t) => {
                eprintln!(
                    "{system} {name} #{i}: to {}, failover {:?} ms, dns {:?}, haproxy {:?}, split {} ms, client failures {}",
                    t.new_site.unwrap_or("none"),
                    t.failover_ms.map(|x| x.round()),
                    t.dns_ms.map(|x| x.round()),
                    t.haproxy_ms.map(|x| x.round()),
                    t.split_brain_ms.round(),
                    t.client_failures
                );
                if let Some(r) = &t.restart {
                    eprintln!(
                        "{system} {name} #{i}: restart gap {:?} ms{}, traffic moved {}, epoch {:?} -> {:?}",
                        r.gap_ms.map(|x| x.round()),
                        if r.outage_unseen { " (at most: the prober stalled across the outage)" } else { "" },
                        r.traffic_moved,
                        r.epoch_before,
                        r.epoch_after
                    );
                }
                got.push(t);
            }
            Err(e) => {
                eprintln!("{system} {name} #{i}: {e:#}");
                if let Err(e) = trial::restore(lab) {
                    eprintln!("{system} {name} #{i}: restoring: {e:#}");
                }
            }
        }
    }
    got
}
