//! One trial of a scenario: from a steady cluster, through the fault, to
//! the numbers the watchers saw: how long until another site answered
//! 200 on `/active` (and which one), DNS and HAProxy followed, any split
//! brain, and for a restart in place whether the site took its role back.
//!
//! A trial must never leave a fault in place: it heals and restarts what
//! it broke before it returns its numbers.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::lab::{Lab, System};
use crate::scenario::{Scenario, RESTART_DELAY};
use crate::shape::host_addr;
use crate::watch::{answering, is_answering, ms, Answers, Shared};

/// Longest wait for any one condition.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// The measurements of one trial.
#[derive(Clone, Debug, Default)]
pub struct Trial {
    /// The first site other than the active one to answer 200 on /active
    /// after the fault, if any did.
    pub new_site: Option<&'static str>,
    /// Fault to the new site answering 200 on /active.
    pub failover_ms: Option<f64>,
    /// Fault to DNS answering the new site.
    pub dns_ms: Option<f64>,
    /// Fault to HAProxy with only the new site ready.
    pub haproxy_ms: Option<f64>,
    /// Longest stretch with two or more sites answering 200.
    pub split_brain_ms: f64,
    /// Client requests through HAProxy that failed during the trial.
    pub client_failures: usize,
    /// Whether the active site changed (for a restart: whether another
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
        lab.shape
            .voters()
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
    // The site a cut or a switchover aims at: the best of the others.
    let peer = lab.shape.sites().iter().copied().find(|s| *s != old).context("a lab with one site")?;
    let epoch_before = lab.status(old).and_then(|s| s.epoch());
    let t0 = Instant::now();
    let expect_move = scenario.should_move(lab.system);
    match scenario {
        Scenario::KillActive | Scenario::FiveKillActive => lab.kill9(old),
        Scenario::KillActiveSite => lab.kill_site(old),
        Scenario::KillRestartActive => lab.kill_and_restart(old, RESTART_DELAY)?,
        Scenario::IsolateActive | Scenario::FiveIsolateActive => lab.isolate(old)?,
        Scenario::CutAB => lab.cut(old, peer)?,
        Scenario::KillWitness => lab.kill9("witness"),
        Scenario::KillWitnessThenActive => {
            lab.kill9("witness");
            std::thread::sleep(Duration::from_secs(2));
            lab.kill_site(old);
        }
        Scenario::FiveLoseTwoVoters => {
            for &witness in lab.shape.witnesses() {
                lab.kill9(witness);
            }
        }
        Scenario::PlannedSwitchover => {
            let code = lab.switchover(old, peer);
            if code != Some(200) {
                bail!("switchover refused: {code:?}");
            }
        }
    }
    if scenario.restarts() {
        return restart_trial(lab, seen, t0, old, epoch_before);
    }
    // Another site answering 200 is the event, whether or not the old one
    // still does (that is split brain, measured apart).
    if expect_move {
        let what = format!("another site than {old} to become active ({})", scenario.name());
        let new = || seen.lock().ok().and_then(|s| s.other_active(old));
        wait_until(&what, PATIENCE, || new().is_some())?;
        if let Some(new) = new().filter(|_| lab.system == System::Failover) {
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
    let t = measure(seen, t0, end, old)?;
    restore(lab)?;
    Ok(t)
}

/// The rest of a restart trial, the daemon of `old` killed at `t0` and
/// already started again: waits until it answers 200 again (or another
/// site does), watches on, and adds the restart's own figures.
fn restart_trial(
    lab: &mut Lab,
    seen: &Shared,
    t0: Instant,
    old: &'static str,
    epoch_before: Option<u64>,
) -> anyhow::Result<Trial> {
    // Either end is the event: the restarted site back, or (a move)
    // another one active. Neither within the patience is a result too.
    let _ = wait_until(&format!("{old} to answer 200 again"), PATIENCE, || {
        seen.lock().is_ok_and(|s| came_back(&s.active, &s.stalls, t0, old).is_some() || s.other_active(old).is_some())
    });
    // Watch on for as long as the scenarios where nothing should move (a
    // resume that fails gives up within one lease, and the other site
    // takes over a lease later), and at least two seconds after the event.
    let (after_move, no_move) = lab.timers.watch_windows();
    let until = (t0 + no_move).max(Instant::now() + after_move);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let end = Instant::now();
    let mut t = measure(seen, t0, end, old)?;
    let (back, traffic_moved, active_at_end) = {
        let s = seen.lock().map_err(|_| anyhow::anyhow!("a watcher panicked"))?;
        let old_addr = host_addr(old).to_string();
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
/// stopping: the first change after `t0` in which it does not answer (or
/// the last change before `t0`, if that one does not and the prober did not
/// stall across `t0`), then the first after that in which it does. If no
/// round after `t0` saw it down, and the prober stalled across `t0`
/// (`stalls`, as in [`crate::watch::Seen`]), the first round after the
/// stall, if it saw the site answer: the outage fell in the stall.
pub fn came_back(
    active: &[(Instant, Answers)],
    stalls: &[(Instant, Instant)],
    t0: Instant,
    site: &str,
) -> Option<Back> {
    let answers = |(_, a): &(Instant, Answers)| is_answering(a, site);
    let stall = stalls.iter().find(|(from, to)| *from <= t0 && *to > t0);
    // A round is timed by its start: one that began just before the fault
    // and saw the site gone records the outage before `t0`. The site
    // answered before the fault, so being down in the last change at or
    // before `t0` is that, unless that round was a stall.
    let down_at_fault = stall.is_none() && active.iter().rev().find(|c| c.0 <= t0).is_some_and(|c| !answers(c));
    let mut after = active.iter().filter(|c| c.0 > t0);
    if down_at_fault || after.by_ref().find(|c| !answers(c)).is_some() {
        return after.find(|c| answers(c)).map(|c| Back { at: c.0, seen_down: true });
    }
    let &(_, resumed) = stall?;
    let state_then = active.iter().rev().find(|c| c.0 <= resumed)?;
    answers(state_then).then_some(Back { at: resumed, seen_down: false })
}

/// Heals every partition and starts every daemon a trial left stopped.
pub fn restore(lab: &mut Lab) -> anyhow::Result<()> {
    lab.heal()?;
    for host in lab.daemons() {
        if !lab.is_running(host) {
            lab.start(host)?;
        }
    }
    Ok(())
}

/// Reads the trial's numbers from what the watchers saw after `t0`, when
/// `old` was the active site: the new site is the first other one seen
/// answering 200 after `t0`.
fn measure(seen: &Shared, t0: Instant, end: Instant, old: &str) -> anyhow::Result<Trial> {
    let s = seen.lock().map_err(|_| anyhow::anyhow!("a watcher panicked"))?;
    let mut t = Trial::default();
    // State at t0 and each change after it.
    let before = s.active.iter().rev().find(|(at, _)| *at <= t0).map_or(Answers::default(), |&(_, a)| a);
    let mut changes: Vec<(Instant, Answers)> = vec![(t0, before)];
    changes.extend(s.active.iter().filter(|(at, _)| *at > t0 && *at <= end).copied());
    for (i, &(at, answers)) in changes.iter().enumerate() {
        if t.new_site.is_none() && at > t0 {
            t.new_site = answering(&answers).find(|site| *site != old);
            t.failover_ms = t.new_site.map(|_| ms(at - t0));
        }
        if answering(&answers).count() > 1 {
            let until = changes.get(i + 1).map_or(end, |c| c.0);
            t.split_brain_ms = t.split_brain_ms.max(ms(until - at));
        }
    }
    t.moved = t.new_site.is_some();
    if let Some(new) = t.new_site {
        let new_addr = host_addr(new).to_string();
        let in_trial = |at: &Instant| *at > t0 && *at <= end;
        t.dns_ms = s.dns.iter().find(|(at, v)| in_trial(at) && *v == new_addr).map(|(at, _)| ms(*at - t0));
        t.haproxy_ms = s.haproxy.iter().find(|(at, v)| in_trial(at) && v == new).map(|(at, _)| ms(*at - t0));
    }
    t.client_failures = s.client_failures.iter().filter(|at| **at > t0 && **at <= end).count();
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::watch::Seen;

    /// A change in which site-a and site-b answer as given (no site-c).
    fn ab(at: Instant, a: bool, b: bool) -> (Instant, Answers) {
        (at, [a, b, false])
    }

    #[test]
    fn came_back_needs_the_site_seen_down_after_the_fault_then_up() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let seen = |ms: u64| Some(Back { at: at(ms), seen_down: true });
        let before = ab(t0 - Duration::from_millis(500), true, false);
        // Down at 10 ms, back at 700 ms; site-b never answered.
        let back = [before, ab(at(10), false, false), ab(at(700), true, false)];
        assert_eq!(came_back(&back, &[], t0, "site-a"), seen(700));
        assert_eq!(came_back(&back, &[], t0, "site-b"), None);
        // Never seen down after the fault, and the prober did not stall:
        // no restart seen, no gap.
        assert_eq!(came_back(&[before], &[], t0, "site-a"), None);
        // Down and still down.
        assert_eq!(came_back(&[before, ab(at(10), false, false)], &[], t0, "site-a"), None);
        // Seen down by a round that started 1 ms before the fault.
        let early = [before, ab(t0 - Duration::from_millis(1), false, false), ab(at(115), true, false)];
        assert_eq!(came_back(&early, &[], t0, "site-a"), seen(115));
        // The other site took over, then this one came back.
        let moved = [before, ab(at(10), false, false), ab(at(3000), false, true), ab(at(9000), true, false)];
        assert_eq!(came_back(&moved, &[], t0, "site-a"), seen(9000));
    }

    #[test]
    fn an_outage_inside_a_stall_of_the_prober_is_bounded_by_the_stall() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let early = t0 - Duration::from_millis(5);
        let before = ab(t0 - Duration::from_millis(500), true, false);
        let stall = [(early, at(180))];
        let bound = Some(Back { at: at(180), seen_down: false });
        // Nothing changed: the round after the stall saw it answer.
        assert_eq!(came_back(&[before], &stall, t0, "site-a"), bound);
        // The round that started before the fault saw it down.
        assert_eq!(
            came_back(&[before, ab(early, false, false), ab(at(180), true, false)], &stall, t0, "site-a"),
            bound
        );
        // A stall that ended before the fault bounds nothing.
        assert_eq!(came_back(&[before], &[(at(0) - Duration::from_millis(300), early)], t0, "site-a"), None);
        // After the stall the site did not answer: not back.
        assert_eq!(came_back(&[before, ab(early, false, false)], &stall, t0, "site-a"), None);
        // Seen down after the fault: the stall does not matter.
        let seen = [before, ab(at(190), false, false), ab(at(400), true, false)];
        assert_eq!(came_back(&seen, &stall, t0, "site-a"), Some(Back { at: at(400), seen_down: true }));
    }

    #[test]
    fn on_five_voters_the_new_site_is_whichever_other_site_answers_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let seen: Shared = Arc::new(Mutex::new(Seen::default()));
        {
            let mut s = seen.lock().unwrap();
            // site-b active; killed at t0; site-c answers at 800 ms, site-a
            // too from 850 to 900 ms (split brain), then site-a alone.
            s.active = vec![
                (t0 - Duration::from_millis(500), [false, true, false]),
                (at(10), [false, false, false]),
                (at(800), [false, false, true]),
                (at(850), [true, false, true]),
                (at(900), [true, false, false]),
            ];
            s.dns = vec![(at(5), "198.18.0.2".into()), (at(820), "198.18.0.4".into())];
            s.haproxy = vec![(at(5), "site-b".into()), (at(830), "site-c".into())];
        }
        let t = measure(&seen, t0, at(2000), "site-b").unwrap();
        assert_eq!((t.new_site, t.moved), (Some("site-c"), true));
        assert_eq!((t.failover_ms, t.dns_ms, t.haproxy_ms), (Some(800.0), Some(820.0), Some(830.0)));
        assert!((t.split_brain_ms - 50.0).abs() < 1e-6, "{}", t.split_brain_ms);
        // Seen from site-c's side, the first other site is site-a, and the
        // split brain is the same.
        let from_c = measure(&seen, t0, at(2000), "site-c").unwrap();
        assert_eq!((from_c.new_site, from_c.failover_ms), (Some("site-a"), Some(850.0)));
        // Watched only until 700 ms: nothing moved, no service figure.
        let early = measure(&seen, t0, at(700), "site-b").unwrap();
        assert_eq!((early.new_site, early.moved, early.dns_ms, early.split_brain_ms), (None, false, None, 0.0));
        // site-c, active, came back after its own outage.
        let outage = [(at(0), [false, false, true]), (at(50), [false; 3]), (at(600), [false, false, true])];
        assert_eq!(came_back(&outage, &[], at(1), "site-c"), Some(Back { at: at(600), seen_down: true }));
    }
}
