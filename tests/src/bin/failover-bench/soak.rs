//! The soak: a steady cluster left alone for some minutes while stress-ng
//! loads every core and every link between the hosts drops a share of its
//! packets (and, where the kernel has `sch_netem`, delays them with
//! jitter). Nothing should move; the soak counts what did, and how close
//! each system came (its near-misses: renewals that landed with under a
//! third of the lease left).
//!
//! The prober is spared by the loss rules, as by every fault. A soak must
//! leave nothing behind: the load stops at its own timeout, and the rules
//! and qdiscs go when it returns, whatever happened.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use failover_tests::metrics_text::family_sum;
use serde::{Deserialize, Serialize};

use crate::lab::{Lab, System};
use crate::shape::{host_addr, Shape, PROBE};
use crate::timers::TimerSet;
use crate::watch::{answering, ms, only_one, Answers, Shared, Watchers};

/// Share of packets each link drops, in percent.
pub const LOSS_PERCENT: u32 = 3;
/// The delay and jitter netem adds, where it can (`delay 5ms 5ms`).
const NETEM: [&str; 3] = ["delay", "5ms", "5ms"];

/// What one soak saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakResult {
    /// Whether it ran its whole length.
    pub completed: bool,
    /// What loaded the cores.
    pub cpu_load: String,
    /// Jitter added by netem, or why there was none.
    pub jitter: String,
    /// The longest stretch with no site answering 200, in ms.
    pub longest_without_active_ms: f64,
    pub loss_percent: u32,
    pub minutes: f64,
    /// Renewals that landed with under a third of the lease left, over both
    /// sites (keepalived has no lease: none).
    pub near_misses: Option<u64>,
    /// Changes in which sites answered 200, as the prober saw them.
    pub prober_changes: usize,
    /// Renewals over both sites (none for keepalived).
    pub renewals: Option<u64>,
    /// Role changes the sites themselves counted (for keepalived, the
    /// prober's changes of the site holding the VIP).
    pub role_changes: u64,
    pub split_brain_ms: f64,
    pub system: System,
    pub timers: TimerSet,
    /// 1 if two sites answered 200 at once at any point, else 0.
    pub trials_with_split_brain: usize,
}

impl SoakResult {
    /// A soak that could not run or finish: nothing measured.
    pub fn failed(system: System, timers: TimerSet, length: Duration) -> SoakResult {
        SoakResult {
            completed: false,
            cpu_load: String::new(),
            jitter: String::new(),
            longest_without_active_ms: 0.0,
            loss_percent: LOSS_PERCENT,
            minutes: length.as_secs_f64() / 60.0,
            near_misses: None,
            prober_changes: 0,
            renewals: None,
            role_changes: 0,
            split_brain_ms: 0.0,
            system,
            timers,
            trials_with_split_brain: 0,
        }
    }
}

/// A JSON object's unsigned field, as the etcd elector's `/stats` writes it.
fn json_u64(text: &str, key: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(text).ok()?.get(key)?.as_u64()
}

/// (role changes, renewals, near-misses) the two sites report now.
fn counters(lab: &Lab) -> Option<(u64, u64, u64)> {
    let mut total = (0, 0, 0);
    for site in lab.shape.sites() {
        let base = format!("http://{}", SocketAddr::from((host_addr(site), 8400)));
        let (roles, renewals, near) = match lab.system {
            System::Failover => {
                let m = lab.get_ok(&format!("{base}/metrics"))?;
                (
                    family_sum(&m, "failover_role_changes_total")?,
                    family_sum(&m, "failover_lease_renewal_margin_seconds_count")?,
                    family_sum(&m, "failover_lease_near_misses_total")?,
                )
            }
            System::Etcd => {
                let s = lab.get_ok(&format!("{base}/stats"))?;
                (json_u64(&s, "elected")? as f64, json_u64(&s, "renewals")? as f64, json_u64(&s, "near_misses")? as f64)
            }
            System::Keepalived => return None,
        };
        total = (total.0 + roles as u64, total.1 + renewals as u64, total.2 + near as u64);
    }
    Some(total)
}

/// Puts the loss (and jitter) on every host's link; returns what jitter
/// was added, or why none.
fn degrade(lab: &Lab) -> anyhow::Result<String> {
    let probability = format!("{:.2}", f64::from(LOSS_PERCENT) / 100.0);
    let probe = PROBE.to_string();
    let mut jitter = format!("netem {}", NETEM.join(" "));
    for host in lab.hosts_but_prober() {
        lab.net.iptables(
            host,
            &[
                "-I",
                "INPUT",
                "-i",
                "eth0",
                "!",
                "-s",
                &probe,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &probability,
                "-j",
                "DROP",
            ],
        )?;
        let ns = lab.net.ns(host);
        let mut args = vec!["-n", &ns, "qdisc", "add", "dev", "eth0", "root", "netem"];
        args.extend(NETEM);
        if let Err(e) = failover_tests::netns::sh("tc", &args) {
            // Typically "Specified qdisc kind is unknown": no sch_netem.
            let why = e.to_string();
            jitter = format!("none (tc netem: {})", why.rsplit(": ").next().unwrap_or(&why).trim());
        }
    }
    Ok(jitter)
}

/// Takes the loss and jitter off again.
fn restore_links(lab: &Lab) {
    let _ = lab.heal();
    for host in lab.hosts_but_prober() {
        let _ = failover_tests::netns::sh("tc", &["-n", &lab.net.ns(host), "qdisc", "del", "dev", "eth0", "root"]);
    }
}

/// stress-ng on every core for `length` (and a little more), stopping by
/// its own timeout.
struct Load(Child);

/// How stress-ng is run, as the report states it (`{timeout}` filled in).
const LOAD_ARGS: [&str; 3] = ["--cpu", "0", "--quiet"];

impl Load {
    fn start(length: Duration) -> anyhow::Result<Load> {
        let timeout = format!("{}s", length.as_secs() + 10);
        let child = Command::new("stress-ng")
            .args(LOAD_ARGS)
            .args(["--timeout", &timeout])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting stress-ng (scripts/setup.sh installs it)")?;
        Ok(Load(child))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Soaks one lab per (system, timer set), all at once, for `length`:
/// every cluster settles, then one stress-ng loads every core and each
/// cluster's links lose packets for the same stretch, so every system
/// meets the same load at the same time. Logs go under `logs/soak`.
pub fn soak_all(combos: &[(System, TimerSet)], bins: &Path, logs: &Path, length: Duration) -> Vec<SoakResult> {
    if combos.is_empty() {
        return Vec::new();
    }
    let settled = Barrier::new(combos.len() + 1);
    let loaded = Barrier::new(combos.len() + 1);
    let cpu_load = OnceLock::new();
    std::thread::scope(|scope| {
        let soakers: Vec<_> = combos
            .iter()
            .enumerate()
            .map(|(i, &(system, timers))| {
                let (settled, loaded, cpu_load) = (&settled, &loaded, &cpu_load);
                scope.spawn(move || {
                    let prepared = prepare(i, system, timers, bins, &logs.join("soak"), length);
                    settled.wait();
                    loaded.wait();
                    let load = cpu_load.get().cloned().unwrap_or_default();
                    match prepared {
                        Ok(p) => p.soak(length, load),
                        Err(e) => Err(e),
                    }
                    .unwrap_or_else(|e| {
                        eprintln!("{} soak ({} timers): {e:#}", system.name(), timers.name());
                        SoakResult::failed(system, timers, length)
                    })
                })
            })
            .collect();
        settled.wait();
        let load = Load::start(length);
        let _ = cpu_load.set(match &load {
            Ok(_) => format!("stress-ng {} --timeout {}s", LOAD_ARGS.join(" "), length.as_secs() + 10),
            Err(e) => format!("none ({e:#})"),
        });
        loaded.wait();
        let results = soakers
            .into_iter()
            .zip(combos)
            .map(|(h, &(system, timers))| h.join().unwrap_or_else(|_| SoakResult::failed(system, timers, length)))
            .collect();
        drop(load);
        results
    })
}

/// A settled lab, its watchers, and what it reported before the soak.
struct Prepared {
    lab: Lab,
    seen: Shared,
    _watchers: Watchers,
    active: &'static str,
    before: Option<(u64, u64, u64)>,
}

/// The `i`th soak's lab, created, watched from its prober's namespace
/// (this thread enters it) and settled.
fn prepare(
    i: usize,
    system: System,
    timers: TimerSet,
    bins: &Path,
    logs: &Path,
    length: Duration,
) -> anyhow::Result<Prepared> {
    let lab = Lab::create(system, timers, Shape::ThreeVoters, bins, logs, &format!("s{i}"))?;
    lab.net.enter("probe").context("entering the prober's namespace")?;
    let seen: Shared = Arc::default();
    let cap = length + Duration::from_secs(600);
    let watchers = Watchers::start(&seen, lab.shape.sites(), system == System::Failover, cap);
    let active = crate::trial::settle(&lab, &seen)?;
    let before = counters(&lab);
    Ok(Prepared { lab, seen, _watchers: watchers, active, before })
}

impl Prepared {
    /// Puts loss on the links for `length` (the load already runs), then
    /// reads what moved.
    fn soak(self, length: Duration, cpu_load: String) -> anyhow::Result<SoakResult> {
        let lab = &self.lab;
        let degraded = degrade(lab);
        let t0 = Instant::now();
        let jitter = match degraded {
            Ok(j) => j,
            Err(e) => {
                restore_links(lab);
                return Err(e.context("putting loss on the links"));
            }
        };
        eprintln!(
            "{} soak ({} timers): {} min under {cpu_load}, {LOSS_PERCENT}% loss, jitter {jitter}",
            lab.system.name(),
            lab.timers.name(),
            length.as_secs_f64() / 60.0
        );
        std::thread::sleep(length);
        let end = Instant::now();
        restore_links(lab);
        let after = counters(lab);
        let s = self.seen.lock().map_err(|_| anyhow::anyhow!("a watcher panicked"))?;
        let changes: Vec<(Instant, Answers)> = s.active.iter().filter(|c| c.0 > t0 && c.0 <= end).copied().collect();
        let (mut split, mut without, mut moves) = (0f64, 0f64, 0u64);
        let spans =
            changes.iter().enumerate().map(|(i, &(at, now))| (at, now, changes.get(i + 1).map_or(end, |c| c.0)));
        for (at, now, until) in spans {
            let long = ms(until - at);
            match answering(&now).count() {
                0 => without = without.max(long),
                1 => {}
                _ => split = split.max(long),
            }
        }
        let mut holder = Some(self.active);
        for (_, answers) in &changes {
            let now = only_one(answers);
            if now.is_some() && now != holder {
                moves += 1;
                holder = now;
            }
        }
        let delta = |f: fn(&(u64, u64, u64)) -> u64| Some(f(&after?).saturating_sub(f(&self.before?)));
        Ok(SoakResult {
            completed: true,
            cpu_load,
            jitter,
            longest_without_active_ms: (without * 10.0).round() / 10.0,
            loss_percent: LOSS_PERCENT,
            minutes: length.as_secs_f64() / 60.0,
            near_misses: delta(|c| c.2),
            prober_changes: changes.len(),
            renewals: delta(|c| c.1),
            role_changes: if lab.system == System::Keepalived { moves } else { delta(|c| c.0).unwrap_or(moves) },
            split_brain_ms: (split * 10.0).round() / 10.0,
            system: lab.system,
            timers: lab.timers,
            trials_with_split_brain: usize::from(split > 0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_u64_reads_the_electors_stats() {
        assert_eq!(json_u64("{\"near_misses\":4,\"renewals\":10}", "near_misses"), Some(4));
        assert_eq!(json_u64("not json", "near_misses"), None);
    }
}
