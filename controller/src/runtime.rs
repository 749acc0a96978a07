//! The protocol loop: the one task that owns the core `Node`. It feeds the
//! node (peer messages, timers, health verdicts, hook results, operator
//! commands), then carries out what the node asks, in order: persist (and
//! fsync) before anything else, send, run hooks, record events. It decides
//! nothing itself: every decision belongs to the core, where it is
//! deterministic and model-checked, so this loop only feeds and drains
//! (when the hooks that follow the core's status are due is
//! [`crate::hook_triggers`]'s to say, from what the core reports).

use std::sync::Arc;

use failover_core::{Action, ClusterConfig, Epoch, Event, Instant, LocalHealth, Message, Node, NodeId};
use tokio::sync::mpsc;

use crate::actuate::Actuation;
use crate::command_channel::CommandRequest;
use crate::health::HealthInput;
use crate::hook_triggers::{Due, Triggers};
use crate::hooks::{self, HookKind, HookOutcome, HooksSection};
use crate::peer::Senders;
use crate::persist::StateFile;
use crate::snapshot::{Lease, NodeSnapshot, Step};
use crate::{clock, describe, lease_margin, member_name};

/// Everything the loop needs.
pub struct Runtime {
    /// The node.
    pub node: Node,
    /// The cluster.
    pub cfg: Arc<ClusterConfig>,
    /// Durable state.
    pub state: StateFile,
    /// Outgoing messages.
    pub senders: Senders,
    /// Incoming messages.
    pub inbound: mpsc::Receiver<(NodeId, Message)>,
    /// Operator commands.
    pub commands: mpsc::Receiver<CommandRequest>,
    /// Health verdicts.
    pub health: mpsc::Receiver<HealthInput>,
    /// This site's health as last reported.
    pub local: LocalHealth,
    /// Newer epochs that actuation targets hold.
    pub fenced: mpsc::Receiver<u64>,
    /// Events for the MongoDB state store, if it is the store.
    pub event_log: Option<mpsc::Sender<String>>,
    /// The node's event history (numbers the events, keeps them on disk).
    pub history: crate::event_history::History,
    /// Hooks to run (empty for a witness).
    pub hooks: HooksSection,
    /// New hooks from a reload, for the hooks that start from then on.
    pub hook_updates: mpsc::Receiver<HooksSection>,
    /// What the node publishes (read by HTTP, actuators, systemd).
    pub snapshot: NodeSnapshot,
    /// This site's actuators (none for a witness).
    pub actuation: Actuation,
    /// Liveness probes (the systemd watchdog), answered between steps.
    pub probes: mpsc::Receiver<crate::systemd::Probe>,
    /// Mode, pause and pending approval as the active site's actuators
    /// last saw them: the MongoDB state store's record carries them, so a
    /// change starts a pass rather than waiting for the next reassertion.
    pub recorded: Option<Recorded>,
}

/// What the state store's record shows besides the claim itself.
pub type Recorded = (failover_core::FailoverMode, bool, Option<(NodeId, failover_core::ProposalReason)>);

/// What the actuators are told after a step, once the snapshot they read
/// holds the new lease.
enum Traffic {
    Activate(u64, &'static str),
    Reassert(u64),
    Drain(u64, String),
    StandDown,
}

/// Why a hook runs: its `FAILOVER_REASON`, the site for `FAILOVER_TO` and
/// the active site for `FAILOVER_ACTIVE`.
struct Why {
    reason: &'static str,
    to: Option<NodeId>,
    active: Option<NodeId>,
}

impl Why {
    /// A promote or demote hook: no `FAILOVER_ACTIVE`.
    fn role((reason, to): (&'static str, Option<NodeId>)) -> Self {
        Why { reason, to, active: None }
    }
}

enum Wake {
    Message(NodeId, Message),
    Command(CommandRequest),
    Health(HealthInput),
    Fenced(u64),
    HookDone(Epoch, bool),
    Timer,
    Closed,
}

impl Runtime {
    /// Runs until every input channel is closed. Returns an error only when
    /// the state file cannot be written, after the retries of
    /// [`StateFile::store_retrying`]: the node must then stop (the daemon
    /// exits non-zero) rather than answer votes it has not persisted.
    pub async fn run(mut self) -> Result<(), crate::persist::PersistError> {
        let (hook_tx, mut hook_rx) = mpsc::channel::<(Epoch, bool)>(8);
        let mut health_open = true;
        let mut triggers = Triggers::new();
        self.apply_actions(&hook_tx, &mut triggers, clock::now())?;
        loop {
            let deadline = self.node.next_deadline().map(|(at, _)| at);
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait = at.saturating_since(clock::now());
                        tokio::time::sleep(wait).await
                    }
                    None => std::future::pending().await,
                }
            };
            let wake = tokio::select! {
                m = self.inbound.recv() => m.map_or(Wake::Closed, |(from, msg)| Wake::Message(from, msg)),
                c = self.commands.recv() => c.map_or(Wake::Closed, Wake::Command),
                h = self.health.recv(), if health_open => match h {
                    Some(v) => Wake::Health(v),
                    None => { health_open = false; continue; }
                },
                Some((epoch, ok)) = hook_rx.recv() => Wake::HookDone(epoch, ok),
                Some(epoch) = self.fenced.recv() => Wake::Fenced(epoch),
                Some(probe) = self.probes.recv() => {
                    let _ = probe.send(());
                    continue;
                }
                Some(hooks) = self.hook_updates.recv() => {
                    self.hooks = hooks;
                    continue;
                }
                () = sleep => Wake::Timer,
            };
            let now = clock::now();
            let mut answer = None;
            match wake {
                Wake::Message(from, msg) => self.node.handle_message(now, from, msg),
                Wake::Command((cmd, reply)) => {
                    let result = self.node.command(now, cmd);
                    answer = Some((reply, result));
                }
                Wake::Health(input) => {
                    match input {
                        HealthInput::Checks(healthy) => {
                            if let Some(due) = Triggers::checks(self.local.healthy, healthy) {
                                self.spawn_due(due);
                            }
                            self.local.healthy = healthy;
                        }
                        HealthInput::Data(caught_up) => {
                            // The replica set changed under an active site
                            // (unreadable, or readable again): its actuators
                            // look now rather than at the next reassertion,
                            // so the MongoDB actuator's report keeps up with
                            // what `/status` says of the set.
                            if caught_up != self.local.caught_up && self.node.is_active(now) {
                                if let Some(epoch) = self.node.status(now).epoch {
                                    self.actuation.reassert(epoch.0);
                                }
                            }
                            self.local.caught_up = caught_up;
                        }
                    }
                    self.node.set_health(now, self.local);
                }
                Wake::Fenced(epoch) => self.node.fenced(now, Epoch(epoch)),
                Wake::HookDone(epoch, ok) => self.node.pre_promote_finished(now, epoch, ok),
                Wake::Timer => self.node.handle_timeout(now),
                Wake::Closed => return Ok(()),
            }
            self.node.handle_timeout(clock::now());
            self.apply_actions(&hook_tx, &mut triggers, now)?;
            // Answered only now: what the command changed is on disk, so a
            // crash right after the answer keeps it (a scheduled switchover,
            // a pause).
            if let Some((reply, result)) = answer.take() {
                let _ = reply.send(result);
            }
        }
    }

    /// Runs a hook that [`Triggers`] found due, with the active site this
    /// node knows now and its epoch (else the last epoch this node knew
    /// since it started, else 0).
    fn spawn_due(&self, due: Due) {
        let status = self.node.status(clock::now());
        let last_known = self.snapshot.read(|p| p.last_known_epoch);
        let epoch = Epoch(status.epoch.map(|e| e.0).or(last_known).unwrap_or(0));
        let active = status.active_site;
        let (hook, why) = match due {
            Due::Standby { active, from } => {
                (HookKind::OnStandby, Why { reason: hooks::standby_reason(from), to: None, active: Some(active) })
            }
            Due::Pending { target, reason } => {
                (HookKind::OnPending, Why { reason: hooks::proposal_reason(reason), to: Some(target), active })
            }
            Due::Fault => (HookKind::OnFault, Why { reason: hooks::FAULT_REASON, to: None, active }),
        };
        self.spawn_hook(hook, epoch, why, None);
    }

    /// Runs `hook` for `epoch` in its own task; `why` is its
    /// `FAILOVER_REASON`, the site taking over and the active site, if any.
    fn spawn_hook(&self, hook: HookKind, epoch: Epoch, why: Why, done: Option<mpsc::Sender<(Epoch, bool)>>) {
        let command = self.hooks.command(hook).cloned();
        let name = |id: NodeId| member_name::of(&self.cfg, id);
        let Why { reason, to, active } = why;
        let call = hooks::HookCall {
            hook,
            epoch: epoch.0,
            site: name(self.node.id()),
            reason,
            to: to.map(name),
            active: active.map(name),
        };
        let (timeout, pass_env, snapshot) = (self.hooks.timeout, self.hooks.pass_env.clone(), self.snapshot.clone());
        let run_as = self.hooks.run_as_user.clone();
        tokio::spawn(async move {
            let limits = hooks::HookLimits { timeout, pass_env: &pass_env, run_as: run_as.as_ref() };
            let outcome = match command {
                Some(cmd) => hooks::run(&cmd, call, limits).await,
                None => HookOutcome { hook, epoch: epoch.0, ok: true, detail: "not configured".into() },
            };
            let ok = outcome.ok;
            snapshot.report_hook(outcome.into());
            if let Some(done) = done {
                let _ = done.send((epoch, ok)).await;
            }
        });
    }

    /// Carries out what the step made at `stepped_at` asked, then publishes
    /// it.
    fn apply_actions(
        &mut self,
        hook_tx: &mpsc::Sender<(Epoch, bool)>,
        triggers: &mut Triggers,
        stepped_at: Instant,
    ) -> Result<(), crate::persist::PersistError> {
        let mut events = Vec::new();
        let mut traffic = Vec::new();
        while let Some(action) = self.node.poll_action() {
            match action {
                Action::Persist(state) => {
                    // Rule 3: on disk before anything that follows leaves.
                    // A write still failing after its retries stops the node:
                    // it must not answer votes it has not persisted.
                    if let Err(e) = tokio::task::block_in_place(|| self.state.store_retrying(&state)) {
                        tracing::error!(
                            path = %self.state.path().display(),
                            error = %e,
                            attempts = crate::persist::STORE_ATTEMPTS,
                            "cannot write the state file: stopping this node"
                        );
                        return Err(e);
                    }
                }
                Action::Send { to, message } => self.senders.send(to, message),
                Action::RunPrePromote { epoch, cause } => {
                    let reason = hooks::activation_reason(cause);
                    self.spawn_hook(HookKind::PrePromote, epoch, Why::role((reason, None)), Some(hook_tx.clone()))
                }
                Action::BecomeActive { epoch, cause } => {
                    tracing::info!(epoch = epoch.0, ?cause, "this site is now ACTIVE");
                    traffic.push(Traffic::Activate(epoch.0, hooks::activation_reason(cause)));
                    let why = Why::role((hooks::activation_reason(cause), None));
                    self.spawn_hook(HookKind::PostPromote, epoch, why, None);
                }
                Action::ResumeActive { epoch, cause } => {
                    // The promote hooks ran for this epoch before the
                    // restart; the targets already hold it.
                    tracing::info!(epoch = epoch.0, ?cause, "this site is ACTIVE again (restart in place)");
                    traffic.push(Traffic::Activate(epoch.0, "restart_in_place"));
                }
                Action::StepDown { epoch, reason } => {
                    tracing::warn!(epoch = epoch.0, ?reason, "this site stepped down");
                    traffic.push(Traffic::StandDown);
                    self.spawn_hook(HookKind::OnDemote, epoch, Why::role(hooks::demotion_reason(reason)), None);
                }
                Action::Actuate { epoch } => traffic.push(Traffic::Reassert(epoch.0)),
                Action::Drain { epoch, to } => {
                    let to = member_name::of(&self.cfg, to);
                    tracing::info!(epoch = epoch.0, %to, "draining before handoff");
                    traffic.push(Traffic::Drain(epoch.0, to));
                }
                Action::Event(e) => events.push(e),
            }
        }
        // The notes that explain the maintenance setting follow it: the
        // setting is on disk first (the core's Persist above); the notes,
        // which only explain it, are written as soon as they match it.
        let notes = self.state.notebook();
        if notes.settle(self.node.durable().maintenance, self.node.id()) {
            let durable = *self.node.durable();
            if let Err(e) = tokio::task::block_in_place(|| self.state.store_retrying(&durable)) {
                tracing::error!(path = %self.state.path().display(), error = %e, "cannot write the state file: stopping this node");
                return Err(e);
            }
        }
        let now = clock::now();
        let status = self.node.status(now);
        for due in triggers.after_step(&status, &events) {
            self.spawn_due(due);
        }
        if let Some(epoch) = status.epoch {
            self.actuation.observe_epoch(epoch.0);
        }
        let recorded = (status.mode, status.paused, status.pending_failover.map(|p| (p.target, p.reason)));
        if self.recorded.replace(recorded).is_some_and(|before| before != recorded) && self.node.is_active(now) {
            if let Some(epoch) = status.epoch {
                traffic.push(Traffic::Reassert(epoch.0));
            }
        }
        let active_until = if self.node.is_active(now) {
            Some(status.lease_remaining.map_or(Instant::from_millis(u64::MAX), |r| now + r))
        } else {
            None
        };
        // The lease end the last step published is the one this step
        // started from: only steps move it.
        let active_before = self.snapshot.read(|p| p.lease.end());
        let lease = self.cfg.timers.lease_duration;
        if let Some(renewal) = lease_margin::renewal(active_before, active_until, stepped_at, lease) {
            self.snapshot.count_renewal(renewal);
        }
        let mongo = self.snapshot.read(|p| p.mongodb.clone());
        let data = describe::data_cause_of(&self.cfg, mongo.as_ref());
        let records = events
            .iter()
            .map(|e| {
                let text = describe::event(&self.cfg, e, &data);
                log_event(e, &text);
                if let Some(log) = &self.event_log {
                    // Full queue (database away for long): the node's own
                    // history still has it.
                    let _ = log.try_send(text.clone());
                }
                self.history.record(text, None)
            })
            .collect();
        self.snapshot.publish_step(Step { status, lease: Lease::until(active_until), events: records, raised: events });
        // Only now, with the lease in the snapshot the actuators read.
        for t in traffic {
            match t {
                Traffic::Activate(epoch, cause) => self.actuation.activate(epoch, cause),
                Traffic::Reassert(epoch) => self.actuation.reassert(epoch),
                Traffic::Drain(epoch, to) => self.actuation.drain(epoch, to),
                Traffic::StandDown => self.actuation.stand_down(),
            }
        }
        Ok(())
    }
}

fn log_event(e: &Event, text: &str) {
    match e {
        Event::VoteRefused { .. } | Event::ElectionStarted { .. } => tracing::debug!("{text}"),
        Event::SteppedDown { .. } | Event::ForcedPromotion { .. } | Event::UnhealthyWithoutSuccessor => {
            tracing::warn!("{text}")
        }
        Event::FenceAhead { .. } => tracing::error!("{text}"),
        _ => tracing::info!("{text}"),
    }
}

#[cfg(test)]
mod tests;
