//! The report: per (system, timer set, scenario) figures over the trials,
//! the soaks, the daemons' resources, the machine and the command, written as
//! `results.json`, `results.md` and the `failover-times.svg` chart.
//!
//! It only describes what was measured and must never measure anything
//! itself. The JSON keys come out sorted (every struct's fields are in
//! alphabetical order), as the committed results are.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::lab::System;
use crate::scenario::Scenario;
use crate::soak::SoakResult;
use crate::timers::{TimerDescription, TimerSet};
use crate::trial::{Restart, Trial};

/// Everything a run wrote. A resumed run (`--resume`) reads it back and
/// adds what is missing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    /// The commit measured (`-dirty` with uncommitted changes), when the
    /// run started in a git checkout.
    #[serde(default)]
    pub commit: Option<String>,
    pub machine: Machine,
    /// Load → node → usage.
    pub resources: BTreeMap<String, BTreeMap<String, Usage>>,
    /// The runs that resumed this one: when each started, its command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<String>,
    pub results: Vec<ScenarioResult>,
    #[serde(default)]
    pub soaks: Vec<SoakResult>,
    pub started: String,
    /// Every timer set, each system's knobs in it (constants: not read back).
    #[serde(skip_deserializing, default = "all_timers")]
    pub timers: Vec<TimerDescription>,
}

fn all_timers() -> Vec<TimerDescription> {
    TimerSet::ALL.into_iter().chain(TimerSet::SWEEP).map(TimerSet::describe).collect()
}

/// Reads back a value written by its name (a system, scenario or timer
/// set); the error names the unknown one.
pub fn by_name<'de, D: serde::Deserializer<'de>, T>(
    d: D,
    what: &str,
    from_name: impl Fn(&str) -> Option<T>,
) -> Result<T, D::Error> {
    let name = String::deserialize(d)?;
    from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown {what} {name:?}")))
}

/// Where the run ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: Option<String>,
    pub kernel: String,
    pub memory: Option<String>,
}

/// A daemon's CPU and memory under one load.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Usage {
    /// Percent of one core, to two decimals.
    pub cpu_percent: f64,
    /// The part of the RSS the daemon allocated itself (the rest is the
    /// binary's code and the libraries, clean and shared).
    #[serde(default)]
    pub rss_anon_kib: u64,
    pub rss_kib: u64,
}

/// One (system, timer set, scenario): its trials' figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub client_failures: usize,
    pub completed: usize,
    pub dns_ms: Summary,
    pub failover_ms: Summary,
    pub haproxy_ms: Summary,
    pub moved: usize,
    /// A restart scenario's own figures (absent in the others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartResult>,
    pub scenario: Scenario,
    pub split_brain_ms: Summary,
    pub system: System,
    pub timers: TimerSet,
    pub trials: usize,
    pub trials_with_split_brain: usize,
}

/// A restart scenario's figures over its trials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestartResult {
    /// Trials in which the epoch at the end differed from the one before
    /// the fault (one of them unknown counts as a difference).
    pub epoch_changed: usize,
    /// Trials in which the epoch before or after was unknown (always, for
    /// keepalived, which has none).
    pub epoch_unknown: usize,
    /// Trials in which the restarted site did not answer 200 again.
    pub not_back: usize,
    /// Trials in which the prober stalled across the whole outage: their
    /// restart gap is an upper bound.
    pub outage_unseen: usize,
    /// Fault to the restarted site answering 200 again.
    pub restart_gap_ms: Summary,
    /// Trials in which DNS or HAProxy pointed anywhere else.
    pub traffic_moved: usize,
}

impl RestartResult {
    fn of(got: &[Restart]) -> RestartResult {
        RestartResult {
            epoch_changed: got.iter().filter(|r| r.epoch_before != r.epoch_after).count(),
            epoch_unknown: got.iter().filter(|r| r.epoch_before.is_none() || r.epoch_after.is_none()).count(),
            not_back: got.iter().filter(|r| r.gap_ms.is_none()).count(),
            outage_unseen: got.iter().filter(|r| r.outage_unseen).count(),
            restart_gap_ms: Summary::of(&got.iter().filter_map(|r| r.gap_ms).collect::<Vec<_>>()),
            traffic_moved: got.iter().filter(|r| r.traffic_moved).count(),
        }
    }
}

impl ScenarioResult {
    /// The figures of `trials` planned trials, of which `got` completed.
    pub fn of(system: System, timers: TimerSet, scenario: Scenario, trials: usize, got: &[Trial]) -> ScenarioResult {
        let pick = |f: fn(&Trial) -> Option<f64>| got.iter().filter_map(f).collect::<Vec<f64>>();
        ScenarioResult {
            system,
            timers,
            scenario,
            trials,
            completed: got.len(),
            moved: got.iter().filter(|t| t.moved).count(),
            restart: scenario
                .restarts()
                .then(|| RestartResult::of(&got.iter().filter_map(|t| t.restart.clone()).collect::<Vec<_>>())),
            failover_ms: Summary::of(&pick(|t| t.failover_ms)),
            dns_ms: Summary::of(&pick(|t| t.dns_ms)),
            haproxy_ms: Summary::of(&pick(|t| t.haproxy_ms)),
            split_brain_ms: Summary::of(&got.iter().map(|t| t.split_brain_ms).collect::<Vec<_>>()),
            trials_with_split_brain: got.iter().filter(|t| t.split_brain_ms > 0.0).count(),
            client_failures: got.iter().map(|t| t.client_failures).sum(),
        }
    }
}

/// Milliseconds over the trials: every value, sorted, and p50/p99/max
/// rounded to a tenth.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub max: Option<f64>,
    pub n: usize,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub values: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let round = |x: Option<f64>| x.map(|x| (x * 10.0).round() / 10.0);
        Summary {
            n: v.len(),
            p50: round(percentile(&v, 50.0)),
            p99: round(percentile(&v, 99.0)),
            max: round(v.last().copied()),
            values: v,
        }
    }
}

impl Report {
    /// A report of nothing yet, for `command` started at `started`.
    pub fn new(command: String, started: String) -> Report {
        Report {
            command,
            commit: commit(),
            machine: machine(),
            resources: BTreeMap::new(),
            resumed: Vec::new(),
            results: Vec::new(),
            soaks: Vec::new(),
            started,
            timers: all_timers(),
        }
    }

    /// Writes results.json, results.md and the chart with what is done so
    /// far, each table in (system, timer set, scenario) order whatever
    /// order the runs took.
    pub fn write(&mut self, out: &Path) -> anyhow::Result<()> {
        self.results.sort_by_key(|r| (r.system, r.timers, r.scenario));
        self.soaks.sort_by_key(|s| (s.system, s.timers));
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("results.json"), serde_json::to_string_pretty(self)? + "\n")?;
        std::fs::write(out.join("results.md"), crate::tables::markdown(self))?;
        std::fs::write(out.join("failover-times.svg"), crate::tables::chart(self))?;
        Ok(())
    }

    /// What our system must always do, whatever the timing: finish every
    /// trial, never show two active sites, move exactly when its scenario
    /// says it should, lose no request in a planned switchover; and in a
    /// soak, never show two active sites (a false failover is a figure,
    /// not a broken promise: it says the lease is too short for the load).
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.results.iter().filter(|r| r.system == System::Failover) {
            let scenario = format!("{} ({} timers)", r.scenario.name(), r.timers.name());
            if r.completed != r.trials {
                out.push(format!("{scenario}: {} of {} trials completed", r.completed, r.trials));
            }
            if r.trials_with_split_brain != 0 {
                out.push(format!(
                    "{scenario}: two sites answered 200 at once (max {} ms)",
                    json_number(r.split_brain_ms.max)
                ));
            }
            let expected = if r.scenario.should_move(r.system) { r.completed } else { 0 };
            if r.moved != expected {
                out.push(format!("{scenario}: moved in {} trials, expected {expected}", r.moved));
            }
            if r.scenario == Scenario::PlannedSwitchover && r.client_failures != 0 {
                out.push(format!("{scenario}: {} client requests failed", r.client_failures));
            }
            if let Some(x) = &r.restart {
                if x.not_back != 0 {
                    out.push(format!(
                        "{scenario}: the restarted site did not take its role back in {} trials",
                        x.not_back
                    ));
                }
                if x.traffic_moved != 0 {
                    out.push(format!("{scenario}: DNS or HAProxy pointed elsewhere in {} trials", x.traffic_moved));
                }
                if x.epoch_changed != 0 {
                    out.push(format!("{scenario}: the epoch changed in {} trials", x.epoch_changed));
                }
                if x.epoch_unknown != 0 {
                    out.push(format!("{scenario}: the epoch was not read in {} trials", x.epoch_unknown));
                }
            }
        }
        // Two active sites is a broken promise at any lease; a soak at a
        // swept lease that could not even settle is a finding, not one.
        for s in self.soaks.iter().filter(|s| s.system == System::Failover) {
            if s.trials_with_split_brain != 0 {
                out.push(format!("soak ({} timers): two sites answered 200 at once", s.timers.name()));
            }
            if !s.completed && TimerSet::ALL.contains(&s.timers) {
                out.push(format!("soak ({} timers): did not complete", s.timers.name()));
            }
        }
        out
    }
}

/// A number as JSON writes it (`null` for none).
pub fn json_number(x: impl Into<serde_json::Value>) -> String {
    x.into().to_string()
}

/// The checkout's commit, `-dirty` if anything tracked was changed.
pub fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = read("/proc/meminfo").lines().next().map(str::to_owned);
    Machine { cpu, cores, memory, kernel: read("/proc/sys/kernel/osrelease").trim().to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(failover_ms: Option<f64>, split_brain_ms: f64) -> Trial {
        Trial { failover_ms, split_brain_ms, moved: failover_ms.is_some(), ..Trial::default() }
    }

    #[test]
    fn summary_keeps_every_value_and_rounds_the_percentiles() {
        let s = Summary::of(&[3.0, 1.04, 2.0]);
        assert_eq!((s.n, s.p50, s.p99, s.max), (3, Some(2.0), Some(3.0), Some(3.0)));
        assert_eq!(s.values, [1.04, 2.0, 3.0]);
        let none = Summary::of(&[]);
        assert_eq!((none.n, none.p50, none.max), (0, None, None));
    }

    #[test]
    fn json_keys_are_sorted_as_in_the_committed_results() {
        let mut report = Report::new("cmd".into(), "now".into());
        report.results.push(ScenarioResult::of(
            System::Failover,
            TimerSet::Default,
            Scenario::KillActive,
            1,
            &[trial(Some(1.0), 0.0)],
        ));
        let json = serde_json::to_string(&report).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json, serde_json::to_string(&value).unwrap(), "keys out of order");
        assert!(json.contains("\"scenario\":\"kill-active\",\"split_brain_ms\""), "{json}");
        assert!(json.contains("\"system\":\"failover\""), "{json}");
    }

    #[test]
    fn a_report_reads_back_as_written_for_a_resumed_run() {
        let mut report = Report::new("cmd".into(), "now".into());
        report.results.push(ScenarioResult::of(System::Etcd, TimerSet::Fast, Scenario::CutAB, 2, &[trial(None, 0.0)]));
        report.soaks.push(SoakResult::failed(
            System::Keepalived,
            TimerSet::Default,
            std::time::Duration::from_secs(60),
        ));
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let wrong = json.replace("\"system\":\"etcd\"", "\"system\":\"zookeeper\"");
        let err = serde_json::from_str::<Report>(&wrong).unwrap_err().to_string();
        assert!(err.contains("unknown system \"zookeeper\""), "{err}");
    }

    #[test]
    fn a_soak_breaks_a_promise_with_two_active_sites_or_unfinished_at_a_trial_timer_set() {
        let minute = std::time::Duration::from_secs(60);
        let mut report = Report::new("cmd".into(), "now".into());
        report.soaks.push(SoakResult::failed(System::Failover, TimerSet::Lease100, minute));
        report.soaks.push(SoakResult::failed(System::Etcd, TimerSet::Fast, minute));
        assert!(report.violations().is_empty(), "{:?}", report.violations());
        let mut split = SoakResult::failed(System::Failover, TimerSet::Lease200, minute);
        split.trials_with_split_brain = 1;
        report.soaks.push(split);
        report.soaks.push(SoakResult::failed(System::Failover, TimerSet::Fast, minute));
        assert_eq!(
            report.violations(),
            ["soak (lease-200ms timers): two sites answered 200 at once", "soak (fast timers): did not complete"]
        );
    }

    #[test]
    fn violations_follow_each_scenarios_expected_move() {
        let mut report = Report::new("cmd".into(), "now".into());
        let moved = [trial(Some(900.0), 0.0)];
        report.results.push(ScenarioResult::of(System::Failover, TimerSet::Default, Scenario::KillActive, 1, &moved));
        assert!(report.violations().is_empty(), "{:?}", report.violations());
        report.results.push(ScenarioResult::of(System::Failover, TimerSet::Default, Scenario::CutAB, 1, &moved));
        report.results.push(ScenarioResult::of(
            System::Keepalived,
            TimerSet::Default,
            Scenario::CutAB,
            1,
            &[trial(None, 5.0)],
        ));
        report.results.push(ScenarioResult::of(
            System::Failover,
            TimerSet::Default,
            Scenario::KillWitness,
            2,
            &[trial(None, 12.5)],
        ));
        assert_eq!(
            report.violations(),
            [
                "cut-a-b (default timers): moved in 1 trials, expected 0",
                "kill-witness (default timers): 1 of 2 trials completed",
                "kill-witness (default timers): two sites answered 200 at once (max 12.5 ms)",
            ]
        );
    }

    #[test]
    fn a_restart_must_keep_the_site_its_epoch_and_the_traffic() {
        let kept = Restart {
            gap_ms: Some(700.0),
            outage_unseen: false,
            traffic_moved: false,
            epoch_before: Some(4),
            epoch_after: Some(4),
        };
        let restart = |r: Restart, moved: bool| Trial { moved, restart: Some(r), ..Trial::default() };
        let of = |got: &[Trial]| {
            ScenarioResult::of(System::Failover, TimerSet::Default, Scenario::KillRestartActive, got.len(), got)
        };
        let mut report = Report::new("cmd".into(), "now".into());
        report.results.push(of(&[restart(kept.clone(), false)]));
        assert!(report.violations().is_empty(), "{:?}", report.violations());
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.contains("\"restart\":{\"epoch_changed\":0,\"epoch_unknown\":0,\"not_back\":0,\"outage_unseen\":0,\"restart_gap_ms\""),
            "{json}"
        );
        report.results = vec![of(&[
            restart(Restart { epoch_after: Some(5), ..kept.clone() }, true),
            restart(Restart { gap_ms: None, traffic_moved: true, ..kept.clone() }, false),
            restart(Restart { epoch_before: None, epoch_after: None, ..kept.clone() }, false),
        ])];
        assert_eq!(
            report.violations(),
            [
                "kill-restart-active (default timers): moved in 1 trials, expected 0",
                "kill-restart-active (default timers): the restarted site did not take its role back in 1 trials",
                "kill-restart-active (default timers): DNS or HAProxy pointed elsewhere in 1 trials",
                "kill-restart-active (default timers): the epoch changed in 1 trials",
                "kill-restart-active (default timers): the epoch was not read in 1 trials",
            ]
        );
        // keepalived is reported, never held to our promises.
        report.results = vec![ScenarioResult::of(
            System::Keepalived,
            TimerSet::Default,
            Scenario::KillRestartActive,
            1,
            &[restart(kept, true)],
        )];
        assert!(report.violations().is_empty());
        // Other scenarios carry no restart figures at all.
        let other =
            ScenarioResult::of(System::Failover, TimerSet::Default, Scenario::KillActive, 1, &[trial(Some(1.0), 0.0)]);
        assert!(other.restart.is_none());
        assert!(!serde_json::to_string(&other).unwrap().contains("restart"));
    }
}
