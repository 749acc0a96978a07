//! The actuators' tasks: one per actuator, owned by [`ActuatorSet`], each
//! running passes towards the goal the protocol loop sets, retrying with
//! backoff, and cancelling (and waiting for) a pass whose goal changed or
//! whose actuator a reload replaced.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use tokio::sync::watch;

use super::{ActuateError, Actuator, Desired, FencedBy, Goal, LeaseGuard, Outcome};
use crate::clock;
use crate::counts::outcome;
use crate::reports::{ActuatorReport, ActuatorState};
use crate::snapshot::NodeSnapshot;

/// Least and most time between retries of a failed pass.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How soon a pass that is waiting for the target to act looks again.
const PROGRESS_RECHECK: Duration = Duration::from_millis(500);

/// The result of one pass, as its task ends.
type PassResult = Result<Result<Outcome, ActuateError>, tokio::time::error::Elapsed>;

/// The actuators running now, behind one handle: a reload replaces them
/// all at once, and never lets an old actuator's pass overlap a new one's.
#[derive(Clone)]
pub struct ActuatorSet {
    goals: watch::Receiver<Desired>,
    snapshot: NodeSnapshot,
    fenced: FencedBy,
    drivers: Arc<tokio::sync::Mutex<Vec<Driver>>>,
}

/// One actuator's task and the switch that stops it (dropping the switch
/// stops it too: the task ends with its handle).
struct Driver {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ActuatorSet {
    /// Stops every running actuator (a pass in flight is cancelled, and
    /// has ended when this returns), then starts `actuators` towards the
    /// current goal. A report whose actuator keeps its name and kind is
    /// carried over.
    pub async fn replace(&self, actuators: Vec<Actuator>) {
        let mut drivers = self.drivers.lock().await;
        for driver in drivers.drain(..) {
            let _ = driver.stop.send(());
            let _ = driver.task.await;
        }
        *drivers = self.launch(actuators);
    }

    /// Starts `actuators` towards the goal in `goals`.
    pub(super) fn start(
        actuators: Vec<Actuator>,
        goals: watch::Receiver<Desired>,
        snapshot: NodeSnapshot,
        fenced: FencedBy,
    ) -> ActuatorSet {
        let mut set = ActuatorSet { goals, snapshot, fenced, drivers: Arc::default() };
        set.drivers = Arc::new(tokio::sync::Mutex::new(set.launch(actuators)));
        set
    }

    /// One task per actuator, each with a report (carried over when an
    /// actuator of the same name and kind had one).
    fn launch(&self, actuators: Vec<Actuator>) -> Vec<Driver> {
        let before = self.snapshot.actuators();
        self.snapshot.set_actuators(
            actuators
                .iter()
                .map(|a| {
                    let kept = before.iter().find(|r| r.name == a.name() && r.kind == a.kind());
                    let mut report =
                        kept.cloned().unwrap_or_else(|| ActuatorReport::idle(a.name(), a.kind(), a.actuation()));
                    report.actuation = a.actuation();
                    report
                })
                .collect(),
        );
        let mut drivers = Vec::new();
        for actuator in actuators {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let (goals, snapshot, fenced) = (self.goals.clone(), self.snapshot.clone(), self.fenced.clone());
            let task = tokio::spawn(async move {
                let mut pass = None;
                tokio::select! {
                    () = drive(actuator, goals, snapshot, fenced, &mut pass) => {}
                    _ = stopped => {}
                }
                if let Some(pass) = pass {
                    pass.abort();
                    let _ = pass.await;
                }
            });
            drivers.push(Driver { stop, task });
        }
        drivers
    }
}

/// One actuator's task: runs a pass for each new goal or pass number,
/// retries failures with exponential backoff, cancels a pass whose goal
/// changed, and stops when the sender is gone. The pass in flight is kept
/// in `pass`, for whoever stops this task to cancel and wait for.
async fn drive(
    actuator: Actuator,
    mut desired: watch::Receiver<Desired>,
    snapshot: NodeSnapshot,
    fenced: FencedBy,
    pass: &mut Option<tokio::task::JoinHandle<PassResult>>,
) {
    let lease = LeaseGuard(snapshot.clone());
    let name = actuator.name().to_owned();
    let retry = backon::ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN)
        .with_max_delay(RETRY_MAX)
        .with_jitter()
        .without_max_times();
    let mut backoff = retry.build();
    let mut failures = 0u32;
    // The unreadable fence last logged as an alarm, so that it is logged
    // once per value found, not once per retry.
    let mut unreadable_alarm: Option<String> = None;
    // The changes an observing actuator last logged, so that the same
    // changes are logged once, not once per pass.
    let mut logged_changes: Vec<String> = Vec::new();
    loop {
        let want = desired.borrow_and_update().clone();
        let Some(epoch) = want.goal.epoch() else {
            failures = 0;
            backoff = retry.build();
            snapshot.report_actuator(&name, |r| {
                r.state = ActuatorState::Idle;
                r.goal = "standby".into();
                r.detail = "standby: not touching traffic".into();
            });
            if desired.changed().await.is_err() {
                return;
            }
            continue;
        };
        snapshot.report_actuator(&name, |r| {
            if r.epoch != Some(epoch) || r.goal != want.goal.state_name() {
                r.state = ActuatorState::Pending;
                r.detail = format!("applying {} for epoch {epoch}", want.goal.state_name());
            }
            r.goal = want.goal.state_name().into();
            r.epoch = Some(epoch);
        });
        let started = std::time::Instant::now();
        let limit = actuator.pass_limit();
        let running = pass.insert({
            let (actuator, goal, lease) = (actuator.clone(), want.goal.clone(), lease.clone());
            tokio::spawn(async move { tokio::time::timeout(limit, actuator.apply(&goal, &lease)).await })
        });
        let finished = run_pass(running, &mut desired, &want.goal).await;
        *pass = None;
        let Some(result) = finished else {
            // The goal changed (or the site stopped): start over at once.
            continue;
        };
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(ActuateError::TimedOut { what: "actuation pass".into(), after: limit }),
        };
        snapshot.report_actuator(&name, |r| {
            r.passes += 1;
            r.would_change.clear();
        });
        match result {
            Ok(Outcome::WouldChange { read, changes }) => {
                snapshot.count_pass(&name, outcome::OBSERVE);
                if changes != logged_changes {
                    for change in &changes {
                        tracing::info!(actuator = %name, epoch, actuation = "observe", "{change} (observe mode: not changed)");
                    }
                    logged_changes = changes.clone();
                }
                failures = 0;
                backoff = retry.build();
                unreadable_alarm = None;
                snapshot.report_actuator(&name, |r| {
                    r.state = ActuatorState::WouldChange;
                    r.detail = format!("observe mode, nothing changed: {}; read {read}", changes.join("; "));
                    r.would_change = changes;
                    r.consecutive_failures = 0;
                    r.fenced_by = None;
                    r.fence_unreadable = false;
                });
                if desired.changed().await.is_err() {
                    return;
                }
            }
            Ok(Outcome::InProgress(waiting)) => {
                snapshot.count_pass(&name, outcome::IN_PROGRESS);
                tracing::info!(actuator = %name, epoch, "{waiting}");
                snapshot.report_actuator(&name, |r| {
                    r.state = ActuatorState::Pending;
                    r.detail = waiting;
                });
                tokio::select! {
                    () = tokio::time::sleep(PROGRESS_RECHECK) => {}
                    changed = desired.changed() => if changed.is_err() { return },
                }
            }
            Ok(Outcome::Converged(applied)) => {
                snapshot.count_pass(&name, outcome::CONVERGED);
                let took = started.elapsed();
                if failures > 0 || applied.propagation.is_some() {
                    tracing::info!(actuator = %name, epoch, took_ms = took.as_millis() as u64, "{}", applied.detail);
                } else {
                    tracing::debug!(actuator = %name, epoch, "{}", applied.detail);
                }
                failures = 0;
                backoff = retry.build();
                unreadable_alarm = None;
                logged_changes.clear();
                snapshot.report_actuator(&name, |r| {
                    r.state = ActuatorState::Converged;
                    r.detail = applied.detail;
                    r.consecutive_failures = 0;
                    r.last_converged_at = Some(clock::wall(clock::now()));
                    r.converge_ms = Some(took.as_millis() as u64);
                    r.fenced_by = None;
                    r.fence_unreadable = false;
                    if let Some(p) = applied.propagation {
                        r.propagation_ms = Some(p.as_millis() as u64);
                    }
                });
                if desired.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                let delay = backoff.next().unwrap_or(RETRY_MAX);
                tracing::warn!(actuator = %name, epoch, error = %e, retry_in_ms = delay.as_millis() as u64, "actuator did not converge");
                if let ActuateError::Fenced { by: Some(newer), .. } = e {
                    if newer > epoch {
                        let _ = fenced.try_send(newer);
                    }
                }
                let lost = matches!(e, ActuateError::LeaseLost);
                snapshot.count_pass(&name, if lost { outcome::LEASE_LOST } else { outcome::FAILED });
                let fenced_by = match e {
                    ActuateError::Fenced { by, .. } => by,
                    _ => None,
                };
                let unreadable = matches!(e, ActuateError::Fenced { by: None, .. });
                let shown = actuator.shown(&e);
                if unreadable && unreadable_alarm.as_ref() != Some(&shown) {
                    // Once per value found, as the core raises a newer epoch.
                    tracing::error!(actuator = %name, epoch, "ALARM: {shown}");
                }
                unreadable_alarm = unreadable.then(|| shown.clone());
                snapshot.report_actuator(&name, |r| {
                    r.state = if lost { ActuatorState::Pending } else { ActuatorState::Failed };
                    r.fenced_by = fenced_by;
                    r.fence_unreadable = unreadable;
                    r.detail = shown;
                    r.consecutive_failures = failures;
                });
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    changed = desired.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

/// Waits for a pass to finish. Pass-number bumps for the same goal let it
/// run on; a different goal aborts it and gives `None`.
async fn run_pass(
    pass: &mut tokio::task::JoinHandle<PassResult>,
    desired: &mut watch::Receiver<Desired>,
    goal: &Goal,
) -> Option<PassResult> {
    let mut open = true;
    loop {
        tokio::select! {
            joined = &mut *pass => {
                return Some(joined.unwrap_or_else(|e| Ok(Err(ActuateError::NotConverged(format!("pass panicked: {e}"))))));
            }
            changed = desired.changed(), if open => {
                if changed.is_err() {
                    open = false;
                } else if desired.borrow().goal != *goal {
                    pass.abort();
                    let _ = (&mut *pass).await;
                    return None;
                }
            }
        }
    }
}
