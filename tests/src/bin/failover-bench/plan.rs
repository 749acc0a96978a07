//! What a run covers: the systems, timer sets, scenarios, trial counts and
//! soaks chosen on the command line, checked and in the order they run.
//!
//! It only decides what to run; it must never run anything.

use std::time::Duration;

use anyhow::bail;

use crate::lab::System;
use crate::scenario::Scenario;
use crate::timers::TimerSet;

/// The names given, parsed; the error names the unknown one.
fn parse_names<T>(
    names: &[String],
    parse: impl Fn(&str) -> Option<T>,
    unknown: impl Fn(&str) -> String,
) -> anyhow::Result<Vec<T>> {
    names.iter().map(|n| parse(n).ok_or_else(|| anyhow::anyhow!(unknown(n)))).collect()
}

/// What a run covers, parsed from the command line.
pub struct Chosen {
    pub systems: Vec<System>,
    pub timers: Vec<TimerSet>,
    /// Empty: every scenario.
    pub scenarios: Vec<Scenario>,
    pub soak: Option<Duration>,
    /// Trials per scenario at the default and at the fast timer set.
    pub trials: [usize; 2],
    pub resume: bool,
    /// Soak our system at [`TimerSet::SWEEP`] too.
    pub soak_sweep: bool,
}

impl Chosen {
    pub fn trials(&self, timers: TimerSet) -> usize {
        self.trials[usize::from(timers == TimerSet::Fast)]
    }

    /// The scenarios of `system` to run.
    pub fn scenarios(&self, system: System) -> impl Iterator<Item = Scenario> + '_ {
        Scenario::ALL
            .into_iter()
            .filter(move |s| s.runs_on(system) && (self.scenarios.is_empty() || self.scenarios.contains(s)))
    }

    /// Every (system, timer set) chosen, in the order they run.
    pub fn combos(&self) -> impl Iterator<Item = (System, TimerSet)> + '_ {
        self.systems.iter().flat_map(|&s| self.timers.iter().map(move |&t| (s, t)))
    }

    pub fn parse(
        systems: &[String],
        timers: &[String],
        scenarios: &[String],
        soak_minutes: f64,
    ) -> anyhow::Result<Chosen> {
        if !(0.0..=24.0 * 60.0).contains(&soak_minutes) {
            bail!("--soak-minutes {soak_minutes}: give 0 (no soak) up to 1440");
        }
        Ok(Chosen {
            systems: parse_names(systems, System::from_name, |n| {
                format!("unknown system {n:?}: use failover, keepalived and/or etcd")
            })?,
            timers: parse_names(
                timers,
                |n| TimerSet::ALL.into_iter().find(|t| t.name() == n),
                |n| format!("unknown timer set {n:?}: use default and/or fast"),
            )?,
            scenarios: parse_names(scenarios, Scenario::from_name, |n| {
                format!("unknown scenario {n:?}; known: {:?}", Scenario::ALL.map(Scenario::name))
            })?,
            soak: (soak_minutes > 0.0).then(|| Duration::from_secs_f64(soak_minutes * 60.0)),
            trials: [0, 0],
            resume: false,
            soak_sweep: false,
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect()
    }

    #[test]
    fn a_plan_names_what_it_does_not_know_and_runs_every_system_at_every_set() {
        let plan = Chosen::parse(&names("failover,etcd"), &names("default,fast"), &names(""), 1.5).unwrap();
        let combos: Vec<_> = plan.combos().collect();
        assert_eq!(combos.len(), 4);
        assert_eq!(combos[1], (System::Failover, TimerSet::Fast));
        assert_eq!(plan.soak, Some(Duration::from_secs(90)));
        assert!(plan.scenarios(System::Keepalived).all(|s| s.runs_on(System::Keepalived)));
        let err = |s, t, c, m| Chosen::parse(&names(s), &names(t), &names(c), m).err().unwrap().to_string();
        assert!(err("zookeeper", "fast", "", 0.0).contains("unknown system \"zookeeper\""));
        // The sweep's leases are for soaks only, never a trial timer set.
        assert!(err("failover", "lease-100ms", "", 0.0).contains("unknown timer set \"lease-100ms\""));
        assert!(err("failover", "fast", "kill-all", 0.0).contains("unknown scenario \"kill-all\""));
        assert!(err("failover", "fast", "", -1.0).contains("--soak-minutes -1"));
    }
}
