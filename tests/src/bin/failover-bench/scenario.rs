//! The scenarios: what fault each one injects, whether the active site
//! should move under it, and one trial of it from a steady cluster to the
//! numbers the watchers saw.
//!
//! Whether a scenario should move the active site is decided here, by
//! [`Scenario::should_move`], and nowhere else: the trial's waits and the
//! strict check both ask it. A trial must never leave a fault in place: it
//! heals and restarts what it broke before it returns its numbers.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::lab::{Lab, System};
use crate::watch::{ms, Shared};

/// Longest wait for any one condition.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// How long a killed daemon stays down before it is started again in
/// `kill-restart-active` (systemd's `RestartSec=100ms`).
pub const RESTART_DELAY: Duration = Duration::from_millis(100);

/// One fault (or operator action) at `t0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// kill -9 of the active site's daemon.
    KillActive,
    /// kill -9 of everything the active site runs: for etcd, the elector
    /// and the site's etcd member (only etcd runs it: everywhere else it is
    /// `KillActive`).
    KillActiveSite,
    /// kill -9 of the active site's daemon, started again
    /// [`RESTART_DELAY`] after it (and anything it ran) exited, with the
    /// same config and state directory.
    KillRestartActive,
    /// The active site's host drops every packet from its peers, and they
    /// drop its packets.
    IsolateActive,
    /// The two sites drop each other's packets; the witness sees both.
    CutAB,
    /// kill -9 of the witness.
    KillWitness,
    /// kill -9 of the witness, then of the active site 2 s later.
    KillWitnessThenActive,
    /// `POST /admin/switchover` to the other site.
    PlannedSwitchover,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 8] = [
        Scenario::KillActive,
        Scenario::KillActiveSite,
        Scenario::KillRestartActive,
        Scenario::IsolateActive,
        Scenario::CutAB,
        Scenario::KillWitness,
        Scenario::KillWitnessThenActive,
        Scenario::PlannedSwitchover,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillActive => "kill-active",
            Scenario::KillActiveSite => "kill-active-site",
            Scenario::KillRestartActive => "kill-restart-active",
            Scenario::IsolateActive => "isolate-active",
            Scenario::CutAB => "cut-a-b",
            Scenario::KillWitness => "kill-witness",
            Scenario::KillWitnessThenActive => "kill-witness-then-active",
            Scenario::PlannedSwitchover => "planned-switchover",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether `system` runs this scenario (keepalived has no witness and
    /// no switchover; only an etcd site runs more than one daemon).
    pub fn runs_on(self, system: System) -> bool {
        match system {
            System::Failover => self != Scenario::KillActiveSite,
            System::Etcd => true,
            System::Keepalived => matches!(
                self,
                Scenario::KillActive | Scenario::KillRestartActive | Scenario::IsolateActive | Scenario::CutAB
            ),
        }
    }

    /// Whether the active site should move to the other one: when a
    /// majority is left and the active site is lost or asked to move.
    /// keepalived has no majority, so a cut moves it too (both hold the VIP).
    /// A restarted etcd elector starts a new session, whose campaign queues
    /// behind the other site's, so a restart moves etcd.
    pub fn should_move(self, system: System) -> bool {
        match self {
            Scenario::KillActive | Scenario::KillActiveSite | Scenario::IsolateActive | Scenario::PlannedSwitchover => {
                true
            }
            Scenario::CutAB => system == System::Keepalived,
            Scenario::KillWitness | Scenario::KillWitnessThenActive => false,
            Scenario::KillRestartActive => system != System::Failover,
        }
    }

    /// Whether the active site's daemon is restarted within the trial and
    /// should take its role back (restart in place).
    pub fn restarts(self) -> bool {
        self == Scenario::KillRestartActive
    }
}

impl serde::Serialize for Scenario {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Scenario {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::report::by_name(d, "scenario", Scenario::from_name)
    }
}

/// The measurements of one trial.
#[derive(Clone, Debug, Default)]
pub struct Trial {
    /// Fault to the new site answering 200 on /active.
    pub failover_ms: Option<f64>,
    /// Fault to DNS answering the new site.
    pub dns_ms: Option<f64>,
    /// Fault to HAProxy with only the new site ready.
    pub haproxy_ms: Option<f64>,
    /// Longest stretch with both sites answering 200.
    pub split_brain_ms: f64,
    /// Client requests through HAProxy that failed during the trial.
    pub client_failures: usize,
    /// Whether the active site changed (for a restart: whether the other
    /// site answered 200 at any point).
    pub moved: bool,
    /// What a restart scenario measures besides; `None` in the others.
    pub restart: Option<Restart>,
}

/// The measurements of one trial of a restart scenario.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restart {
    /// Fault to the restarted site answering 200 on /active again, if it
    /// did within the trial.
    pub gap_ms: Option<f64>,
    /// Whether the prober stalled across the whole outage, so that
    /// `gap_ms` is an upper bound (the first round after the fault).
    pub outage_unseen: bool,
    /// Whether DNS answered another address than the restarted site's, or
    /// HAProxy had anything but that site ready, at any point. A lookup
    /// that failed is the watcher's failure, not an answer, and is not
    /// counted.
    pub traffic_moved: bool,
    /// The active site's epoch just before the fault, from its `/status`.
    pub epoch_before: Option<u64>,
    /// The active site's epoch at the end of the trial, from the `/status`
    /// of the site the prober last saw active.
    pub epoch_after: Option<u64>,
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if cond() {
        Ok(())
    } else {
        bail!("timed out after {within:?} waiting for {what}")
    }
}

/// Waits until exactly one site is active, every member is back, and (for
/// our system) DNS and HAProxy point at it; returns the active site.
pub fn settle(lab: &Lab, seen: &Shared) -> anyhow::Result<&'static str> {
    // Steady state: one lease and a heartbeat past the last restart.
    let steady = lab.last_start + lab.timers.steady_after_start();
    std::thread::sleep(steady.saturating_duration_since(Instant::now()));
    let active_now = || seen.lock().ok().and_then(|s| s.active_site());
    wait_until("one active site", PATIENCE, || active_now().is_some())?;
    let active = active_now().context("no active site")?;
    if lab.system == System::Keepalived {
        // keepalived preempts: wait until the higher priority holds the VIP.
        wait_until("site-a to hold the VIP", PATIENCE, || active_now() == Some("site-a"))?;
        std::thread::sleep(Duration::from_secs(3));
        return Ok("site-a");
    }
    if lab.system == System::Etcd {
        // Every member serves and each elector holds a session, so the
        // standby campaigns.
        wait_until("every etcd member healthy and both electors in session", PATIENCE, || lab.etcd_steady())?;
        return active_now().context("no active site once etcd was steady");
    }
    // Every link carries traffic again, both ways: each node heard from
    // every other within the last heartbeat and a half. Right after a heal
    // a connection attempt made during the partition may still be waiting
    // on a lost SYN; a fault then is a second fault, not this scenario.
    wait_until("every member to hear every other", PATIENCE, || {
        ["site-a", "site-b", "witness"]
            .iter()
            .all(|host| lab.status(host).is_some_and(|s| s.heard_from_everyone_within(lab.timers.heard_within())))
    })?;
    wait_until("DNS and HAProxy to point at the active site", PATIENCE, || {
        seen.lock().is_ok_and(|s| s.services_point_at(active))
    })?;
    Ok(active)
}

/// Runs one trial of `scenario`; returns its numbers.
pub fn trial(lab: &mut Lab, seen: &Shared, scenario: Scenario) -> anyhow::Result<Trial> {
    let old = settle(lab, seen)?;
    let new: &'static str = if old == "site-a" { "site-b" } else { "site-a" };
    let epoch_before = lab.status(old).and_then(|s| s.epoch());
    let t0 = Instant::now();
    let expect_move = scenario.should_move(lab.system);
    match scenario {
        Scenario::KillActive => lab.kill9(old),
        Scenario::KillActiveSite => lab.kill_site(old),
        Scenario::KillRestartActive => lab.kill_and_restart(old, RESTART_DELAY)?,
        Scenario::IsolateActive => lab.isolate(old)?,
        Scenario::CutAB => lab.cut(old, new)?,
        Scenario::KillWitness => lab.kill9("witness"),
        Scenario::KillWitnessThenActive => {
            lab.kill9("witness");
            std::thread::sleep(Duration::from_secs(2));
            lab.kill_site(old);
        }
        Scenario::PlannedSwitchover => {
            let code = lab.switchover(old, new);
            if code != Some(200) {
                bail!("switchover refused: {code:?}");
            }
        }
    }
    if scenario.restarts() {
        return restart_trial(lab, seen, t0, old, new, epoch_before);
    }
    // The new site answering 200 is the event, whether or not the old one
    // still does (that is split brain, measured apart).
    if expect_move {
        let what = format!("{new} to become active ({})", scenario.name());
        wait_until(&what, PATIENCE, || seen.lock().is_ok_and(|s| s.answers_active(new)))?;
        if lab.system == System::Failover {
            let _ = wait_until("DNS and HAProxy to follow", PATIENCE, || {
                seen.lock().is_ok_and(|s| s.services_point_at(new))
            });
        }
    }
    // Watch a further two leases (and, where nothing should move, that long
    // in all) for any split brain or late move.
    let (after_move, no_move) = lab.timers.watch_windows();
    std::thread::sleep(if expect_move { after_move } else { no_move });
    let end = Instant::now();
    let t = measure(seen, t0, end, old, new)?;
    restore(lab)?;
    Ok(t)
}

/// The rest of a restart trial, the daemon of `old` killed at `t0` and
/// already started again: waits until it answers 200 again (or the other
/// site does), watches on, and adds the restart's own figures.
fn restart_trial(
    lab: &mut Lab,
    seen: &Shared,
    t0: Instant,
    old: &'static str,
    new: &'static str,
    epoch_before: Option<u64>,
) -> anyhow::Result<Trial> {
    // Either end is the event: the restarted site back, or (a move) the
    // other one active. Neither within the patience is a result too.
    let _ = wait_until(&format!("{old} to answer 200 again"), PATIENCE, || {
        seen.lock().is_ok_and(|s| came_back(&s.active, &s.stalls, t0, old).is_some() || s.answers_active(new))
    });
    // Watch on for as long as the scenarios where nothing should move (a
    // resume that fails gives up within one lease, and the other site
    // takes over a lease later), and at least two seconds after the event.
    let (after_move, no_move) = lab.timers.watch_windows();
    let until = (t0 + no_move).max(Instant::now() + after_move);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let end = Instant::now();
    let mut t = measure(seen, t0, end, old, new)?;
    let (back, traffic_moved, active_at_end) = {
        let s = seen.lock().map_err(|_| anyhow::anyhow!("a watcher panicked"))?;
        let old_addr = crate::lab::site_addr(old).to_string();
        let in_trial = |at: &Instant| *at > t0 && *at <= end;
        let dns_moved = s.dns.iter().any(|(at, v)| in_trial(at) && !v.is_empty() && *v != old_addr);
        let haproxy_moved = s.haproxy.iter().any(|(at, v)| in_trial(at) && v != old);
        let back = came_back(&s.active, &s.stalls, t0, old).filter(|b| b.at <= end);
        (back, dns_moved || haproxy_moved, s.active_site())
    };
    let epoch_after = active_at_end.and_then(|site| lab.status(site)).and_then(|s| s.epoch());
    t.restart = Some(Restart {
        gap_ms: back.map(|b| ms(b.at - t0)),
        outage_unseen: back.is_some_and(|b| !b.seen_down),
        traffic_moved,
        epoch_before,
        epoch_after,
    });
    restore(lab)?;
    Ok(t)
}

/// When a site killed at a fault answered 200 again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Back {
    pub at: Instant,
    /// Whether a round of the prober saw it down; if not, the prober
    /// stalled across the whole outage and `at` is the start of the first
    /// round after the fault, an upper bound.
    pub seen_down: bool,
}

/// When `site`, answering 200 before `t0`, answered 200 again after
/// stopping: the first change after `t0` in which it does not answer, then
/// the first after that in which it does. If no round after `t0` saw it
/// down, and the prober stalled across `t0` (`stalls`, as in
/// [`crate::watch::Seen`]), the first round after the stall, if it saw the
/// site answer: the outage fell in the stall.
pub fn came_back(
    active: &[(Instant, bool, bool)],
    stalls: &[(Instant, Instant)],
    t0: Instant,
    site: &str,
) -> Option<Back> {
    let answers = |&(_, a, b): &(Instant, bool, bool)| if site == "site-a" { a } else { b };
    let mut after = active.iter().filter(|c| c.0 > t0);
    if after.by_ref().find(|c| !answers(c)).is_some() {
        return after.find(|c| answers(c)).map(|c| Back { at: c.0, seen_down: true });
    }
    let &(_, resumed) = stalls.iter().find(|(from, to)| *from <= t0 && *to > t0)?;
    let state_then = active.iter().rev().find(|c| c.0 <= resumed)?;
    answers(state_then).then_some(Back { at: resumed, seen_down: false })
}

/// Heals every partition and starts every daemon a trial left stopped.
pub fn restore(lab: &mut Lab) -> anyhow::Result<()> {
    lab.heal()?;
    for host in lab.system.daemons() {
        if !lab.is_running(host) {
            lab.start(host)?;
        }
    }
    Ok(())
}

/// Reads the trial's numbers from what the watchers saw after `t0`.
fn measure(seen: &Shared, t0: Instant, end: Instant, old: &str, new: &str) -> anyhow::Result<Trial> {
    let s = seen.lock().map_err(|_| anyhow::anyhow!("a watcher panicked"))?;
    let want_new = |a: bool, b: bool| if new == "site-a" { a } else { b };
    let mut t = Trial::default();
    // State at t0 and each change after it.
    let before = s.active.iter().rev().find(|(at, _, _)| *at <= t0).map(|&(_, a, b)| (a, b)).unwrap_or((false, false));
    let mut changes: Vec<(Instant, bool, bool)> = vec![(t0, before.0, before.1)];
    changes.extend(s.active.iter().filter(|(at, _, _)| *at > t0 && *at <= end).copied());
    for (i, &(at, a, b)) in changes.iter().enumerate() {
        if want_new(a, b) && t.failover_ms.is_none() && (at > t0 || before != (a, b)) {
            t.failover_ms = Some(ms(at - t0));
        }
        if a && b {
            let until = changes.get(i + 1).map_or(end, |c| c.0);
            t.split_brain_ms = t.split_brain_ms.max(ms(until - at));
        }
    }
    t.moved = t.failover_ms.is_some() && old != new;
    let new_addr = crate::lab::site_addr(new).to_string();
    t.dns_ms = s.dns.iter().find(|(at, v)| *at > t0 && *at <= end && *v == new_addr).map(|(at, _)| ms(*at - t0));
    t.haproxy_ms = s.haproxy.iter().find(|(at, v)| *at > t0 && *at <= end && v == new).map(|(at, _)| ms(*at - t0));
    t.client_failures = s.client_failures.iter().filter(|at| **at > t0 && **at <= end).count();
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("kill-everything"), None);
    }

    #[test]
    fn our_system_moves_only_when_a_majority_is_left_and_the_active_site_is_lost_or_asked() {
        let moving: Vec<&str> = Scenario::ALL
            .into_iter()
            .filter(|s| s.runs_on(System::Failover) && s.should_move(System::Failover))
            .map(Scenario::name)
            .collect();
        assert_eq!(moving, ["kill-active", "isolate-active", "planned-switchover"]);
        assert!(Scenario::CutAB.should_move(System::Keepalived));
        assert!(Scenario::KillRestartActive.should_move(System::Keepalived));
        let on_keepalived: Vec<&str> =
            Scenario::ALL.into_iter().filter(|s| s.runs_on(System::Keepalived)).map(Scenario::name).collect();
        assert_eq!(on_keepalived, ["kill-active", "kill-restart-active", "isolate-active", "cut-a-b"]);
        assert!(!Scenario::KillActiveSite.runs_on(System::Failover));
        let etcd_moving: Vec<&str> =
            Scenario::ALL.into_iter().filter(|s| s.should_move(System::Etcd)).map(Scenario::name).collect();
        assert_eq!(
            etcd_moving,
            ["kill-active", "kill-active-site", "kill-restart-active", "isolate-active", "planned-switchover"]
        );
        assert!(Scenario::ALL.into_iter().all(|s| s.runs_on(System::Etcd)));
        let restarting: Vec<&str> = Scenario::ALL.into_iter().filter(|s| s.restarts()).map(Scenario::name).collect();
        assert_eq!(restarting, ["kill-restart-active"]);
    }

    #[test]
    fn came_back_needs_the_site_seen_down_after_the_fault_then_up() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let seen = |ms: u64| Some(Back { at: at(ms), seen_down: true });
        let before = (t0 - Duration::from_millis(500), true, false);
        // Down at 10 ms, back at 700 ms; site-b never answered.
        let back = [before, (at(10), false, false), (at(700), true, false)];
        assert_eq!(came_back(&back, &[], t0, "site-a"), seen(700));
        assert_eq!(came_back(&back, &[], t0, "site-b"), None);
        // Never seen down after the fault, and the prober did not stall:
        // no restart seen, no gap.
        assert_eq!(came_back(&[before], &[], t0, "site-a"), None);
        // Down and still down.
        assert_eq!(came_back(&[before, (at(10), false, false)], &[], t0, "site-a"), None);
        // The other site took over, then this one came back.
        let moved = [before, (at(10), false, false), (at(3000), false, true), (at(9000), true, false)];
        assert_eq!(came_back(&moved, &[], t0, "site-a"), seen(9000));
    }

    #[test]
    fn an_outage_inside_a_stall_of_the_prober_is_bounded_by_the_stall() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let early = t0 - Duration::from_millis(5);
        let before = (t0 - Duration::from_millis(500), true, false);
        let stall = [(early, at(180))];
        let bound = Some(Back { at: at(180), seen_down: false });
        // Nothing changed: the round after the stall saw it answer.
        assert_eq!(came_back(&[before], &stall, t0, "site-a"), bound);
        // The round that started before the fault saw it down.
        assert_eq!(came_back(&[before, (early, false, false), (at(180), true, false)], &stall, t0, "site-a"), bound);
        // A stall that ended before the fault bounds nothing.
        assert_eq!(came_back(&[before], &[(at(0) - Duration::from_millis(300), early)], t0, "site-a"), None);
        // After the stall the site did not answer: not back.
        assert_eq!(came_back(&[before, (early, false, false)], &stall, t0, "site-a"), None);
        // Seen down after the fault: the stall does not matter.
        let seen = [before, (at(190), false, false), (at(400), true, false)];
        assert_eq!(came_back(&seen, &stall, t0, "site-a"), Some(Back { at: at(400), seen_down: true }));
    }
}
