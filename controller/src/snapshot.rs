//! The node's published state: the core's status after the last step, the
//! lease end that makes this site active, the reports of its hooks,
//! actuators and MongoDB monitor, its running totals and the certificates
//! it uses. The protocol loop publishes into it after every step;
//! `/status`, `/active`, `/metrics`, the actuators' lease checks and systemd
//! read from it. [`NodeSnapshot`] is the only way in: a small typed handle
//! whose methods each take the lock once, briefly.
//!
//! It must never decide anything, and must never hand out its lock: a
//! caller gets values (clones) or runs a short closure, so no lock can be
//! held across an await or leak into a component.
//!
//! The lock is a `std::sync::Mutex`, not tokio's: every critical section is
//! a few field reads or writes with no await inside, callers include
//! synchronous code (the lease guard before each write, systemd, metrics),
//! and a blocking lock held for microseconds is cheaper than an async one.
//!
//! Poisoning is decided once, in [`NodeSnapshot::lock`]: the data is taken
//! back and used. A panic while the lock is held can only come from a bug
//! in a report's update closure; every write here replaces whole fields, so
//! the worst left behind is one stale report, never a torn lease (the lease
//! end is a single value, and it expires by the clock on its own). Refusing
//! every later read instead would turn one bad report into a node that
//! cannot show its status or hold its lease.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use failover_core::{Event, Instant, RoleName, Status};

use crate::clock;
use crate::counts::Counts;
use crate::lease_margin::Renewal;
use crate::reports::{ActuatorReport, CertificateReport, EventRecord, HookReport, MongoReport};

/// How many events `/status` shows from (the history keeps more:
/// [`crate::event_history`]).
pub const EVENTS_KEPT: usize = 200;

/// The lease authority: while the clock is before `until`, this site acts
/// as active. Only [`NodeSnapshot::publish_step`] writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    until: Option<Instant>,
}

impl Lease {
    /// A lease that ends at `until` (none: not active).
    pub fn until(until: Option<Instant>) -> Self {
        Lease { until }
    }

    /// Whether the lease is valid at `now`.
    pub fn valid_at(self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// When it ends (none: not active).
    pub fn end(self) -> Option<Instant> {
        self.until
    }
}

/// Everything the node publishes, as read in one go.
#[derive(Clone, Debug)]
pub struct Published {
    /// The node's status at the last step.
    pub status: Status,
    /// The lease as of the last step.
    pub lease: Lease,
    /// Recent events, newest last.
    pub events: VecDeque<EventRecord>,
    /// Last outcome of each hook.
    pub hooks: Vec<HookReport>,
    /// State of each actuator.
    pub actuators: Vec<ActuatorReport>,
    /// State of each health check.
    pub checks: Vec<crate::reports::CheckState>,
    /// The MongoDB replica set, if configured.
    pub mongodb: Option<MongoReport>,
    /// The highest epoch of an active site this node has known since it
    /// started (kept while no site is active).
    pub last_known_epoch: Option<u64>,
    /// The last reload of the configuration file.
    pub reload: Option<crate::reports::ReloadReport>,
    /// Running totals since start, for the `_total` counters.
    pub counts: Counts,
    /// The certificates in use and when each expires.
    pub certificates: Vec<CertificateReport>,
}

impl Published {
    /// Adds `events`, dropping the oldest beyond [`EVENTS_KEPT`].
    fn keep_events(&mut self, events: impl IntoIterator<Item = EventRecord>) {
        self.events.extend(events);
        let excess = self.events.len().saturating_sub(EVENTS_KEPT);
        self.events.drain(..excess);
    }
}

/// What one protocol step publishes.
#[derive(Debug)]
pub struct Step {
    /// The node's status after the step.
    pub status: Status,
    /// The lease after the step.
    pub lease: Lease,
    /// The events of the step, oldest first, as recorded.
    pub events: Vec<EventRecord>,
    /// The same events as the core raised them, for the counters.
    pub raised: Vec<Event>,
}

/// The handle to the node's published state; clones share it.
#[derive(Clone, Debug)]
pub struct NodeSnapshot {
    inner: Arc<Mutex<Published>>,
}

impl NodeSnapshot {
    /// A snapshot for a node that has not stepped yet: no lease, no reports.
    pub fn new(status: Status) -> Self {
        let published = Published {
            status,
            lease: Lease::default(),
            events: VecDeque::new(),
            hooks: Vec::new(),
            actuators: Vec::new(),
            checks: Vec::new(),
            mongodb: None,
            last_known_epoch: None,
            reload: None,
            counts: Counts::new(),
            certificates: Vec::new(),
        };
        NodeSnapshot { inner: Arc::new(Mutex::new(published)) }
    }

    /// The one place the lock is taken (see the module documentation for
    /// why a poisoned lock is recovered).
    fn lock(&self) -> MutexGuard<'_, Published> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this site holds its lease, judged against the clock now (not
    /// when the loop last ran: a stalled loop can never stretch the lease).
    pub fn lease_valid_now(&self) -> bool {
        let lease = self.lock().lease;
        lease.valid_at(clock::now())
    }

    /// Publishes a step: its status, its lease and its events (the oldest
    /// dropped beyond [`EVENTS_KEPT`]), and counts its role change and events.
    pub fn publish_step(&self, step: Step) {
        let mut p = self.lock();
        let before = p.status.role;
        p.counts.count_step(before, step.status.role, &step.raised);
        p.keep_events(step.events);
        p.last_known_epoch = p.last_known_epoch.max(step.status.epoch.map(|e| e.0));
        p.status = step.status;
        p.lease = step.lease;
    }

    /// Publishes one event recorded outside a protocol step (an admin
    /// call), as [`NodeSnapshot::publish_step`] publishes a step's.
    pub fn publish_event(&self, event: EventRecord) {
        self.lock().keep_events([event]);
    }

    /// Records a hook's outcome, replacing that hook's previous one.
    pub fn report_hook(&self, outcome: HookReport) {
        let mut p = self.lock();
        p.hooks.retain(|h| h.hook != outcome.hook);
        p.hooks.push(outcome);
    }

    /// Sets the list of this site's actuators (at start and at a reload).
    pub fn set_actuators(&self, reports: Vec<ActuatorReport>) {
        self.lock().actuators = reports;
    }

    /// Updates the report of the actuator named `name`; nothing if there is
    /// none (a late report of an actuator a reload removed).
    pub fn report_actuator(&self, name: &str, update: impl FnOnce(&mut ActuatorReport)) {
        if let Some(r) = self.lock().actuators.iter_mut().find(|r| r.name == name) {
            update(r);
        }
    }

    /// Updates the health checks' states through `update`, which must be
    /// short, and gives back what it returns.
    pub fn update_checks<R>(&self, update: impl FnOnce(&mut Vec<crate::reports::CheckState>) -> R) -> R {
        update(&mut self.lock().checks)
    }

    /// Updates the MongoDB report, creating it first if need be.
    pub fn publish_mongo(&self, update: impl FnOnce(&mut MongoReport)) {
        update(self.lock().mongodb.get_or_insert_with(MongoReport::default));
    }

    /// Counts one finished pass of the actuator named `actuator`.
    pub fn count_pass(&self, actuator: &str, outcome: &str) {
        self.lock().counts.count_pass(actuator, outcome);
    }

    /// Counts one renewal of this site's lease.
    pub fn count_renewal(&self, renewal: Renewal) {
        self.lock().counts.lease_renewals.record(renewal);
    }

    /// Sets the certificates in use (at start and after each applied reload).
    pub fn set_certificates(&self, certificates: Vec<CertificateReport>) {
        self.lock().certificates = certificates;
    }

    /// Records what a reload of the configuration file did.
    pub fn publish_reload(&self, report: crate::reports::ReloadReport) {
        self.lock().reload = Some(report);
    }

    /// Reads the published state through `read`, which must be short.
    pub fn read<R>(&self, read: impl FnOnce(&Published) -> R) -> R {
        read(&self.lock())
    }

    /// The node's status at the last step.
    pub fn status(&self) -> Status {
        self.lock().status.clone()
    }

    /// The actuators' reports.
    pub fn actuators(&self) -> Vec<ActuatorReport> {
        self.lock().actuators.clone()
    }

    /// Whether this node still acts as active or is handing over: what a
    /// graceful shutdown waits out.
    pub fn active_or_handing_over(&self) -> bool {
        let p = self.lock();
        p.lease.valid_at(clock::now()) || p.status.role == RoleName::HandingOff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status() -> Status {
        crate::test_node::node().status(Instant::from_millis(0))
    }

    fn event(n: usize) -> EventRecord {
        EventRecord { at: String::new(), event: n.to_string(), node: String::new(), seq: 0, at_unix_ms: 0, admin: None }
    }

    #[test]
    fn the_lease_is_judged_against_the_clock_now() {
        let snap = NodeSnapshot::new(status());
        assert!(!snap.lease_valid_now());
        let lease = Lease::until(Some(clock::now() + Duration::from_secs(60)));
        snap.publish_step(Step { status: status(), lease, events: Vec::new(), raised: Vec::new() });
        assert!(snap.lease_valid_now());
        let ended = Lease::until(Some(clock::now()));
        snap.publish_step(Step { status: status(), lease: ended, events: Vec::new(), raised: Vec::new() });
        assert!(!snap.lease_valid_now());
    }

    #[test]
    fn only_the_newest_events_are_kept() {
        let snap = NodeSnapshot::new(status());
        let events = (0..EVENTS_KEPT + 5).map(event).collect();
        snap.publish_step(Step { status: status(), lease: Lease::default(), events, raised: Vec::new() });
        let kept: Vec<EventRecord> = snap.read(|p| p.events.iter().cloned().collect());
        assert_eq!(kept.len(), EVENTS_KEPT);
        assert_eq!(kept.first(), Some(&event(5)));
        assert_eq!(kept.last(), Some(&event(EVENTS_KEPT + 4)));
    }

    #[test]
    fn a_hook_report_replaces_that_hooks_last_one() {
        let snap = NodeSnapshot::new(status());
        let report = |hook: &str, ok| HookReport { hook: hook.into(), epoch: 1, ok, detail: String::new() };
        snap.report_hook(report("pre_promote", false));
        snap.report_hook(report("on_demote", true));
        snap.report_hook(report("pre_promote", true));
        let hooks = snap.read(|p| p.hooks.clone());
        assert_eq!(hooks, vec![report("on_demote", true), report("pre_promote", true)]);
    }

    #[test]
    fn a_poisoned_lock_keeps_serving_the_last_state() {
        let snap = NodeSnapshot::new(status());
        snap.set_actuators(vec![ActuatorReport::idle("dns", "dns", crate::actuation_mode::ActuationMode::Act)]);
        let poisoner = snap.clone();
        let panicked = std::thread::spawn(move || {
            poisoner.report_actuator("dns", |r| {
                r.detail = "half".into();
                panic!("a bug in a report update");
            })
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(snap.actuators()[0].detail, "half");
        let lease = Lease::until(Some(clock::now() + Duration::from_secs(60)));
        snap.publish_step(Step { status: status(), lease, events: Vec::new(), raised: Vec::new() });
        assert!(snap.lease_valid_now());
    }
}
