//! The protocol loop: the one task that owns the core `Node`. It feeds the
//! node (peer messages, timers, health verdicts, hook results, operator
//! commands), then carries out what the node asks, in order: persist (and
//! fsync) before anything else, send, run hooks, record events. It decides
//! nothing itself: every decision belongs to the core, where it is
//! deterministic and model-checked, so this loop only feeds and drains.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use failover_core::{
    Action, ClusterConfig, Command, CommandError, Epoch, Event, Instant, LocalHealth, Message, Node, NodeId, Status,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::actuate::{Actuation, ActuatorReport};
use crate::clock;
use crate::health::HealthInput;
use crate::hooks::{self, HookKind, HookOutcome, HooksSection};
use crate::peer::Senders;
use crate::persist::StateFile;

/// How many events `/status` and `history` keep.
const EVENTS_KEPT: usize = 200;

/// One recorded event.
#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    /// Wall-clock time, for people (RFC 3339).
    pub at: String,
    /// The event, as text.
    pub event: String,
}

/// What the HTTP side reads. Written by the loop after every step.
#[derive(Debug)]
pub struct Snapshot {
    /// The node's status at the last step.
    pub status: Status,
    /// While `clock::now()` is before this, the node acts as active.
    pub active_until: Option<Instant>,
    /// Recent events, newest last.
    pub events: VecDeque<EventRecord>,
    /// Last outcome of each hook.
    pub hooks: Vec<HookOutcome>,
    /// State of each actuator.
    pub actuators: Vec<ActuatorReport>,
    /// The MongoDB replica set, if configured.
    pub mongodb: Option<crate::mongo::monitor::MongoReport>,
    /// The highest epoch of an active site this node has known since it
    /// started (kept while no site is active).
    pub last_known_epoch: Option<u64>,
}

/// State shared between the loop and the HTTP side.
pub type Shared = Arc<Mutex<Snapshot>>;

/// An operator command with the channel for its answer.
pub type CommandRequest = (Command, oneshot::Sender<Result<(), CommandError>>);

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
    /// Hooks to run (empty for a witness).
    pub hooks: HooksSection,
    /// What the HTTP side reads.
    pub shared: Shared,
    /// This site's actuators (none for a witness).
    pub actuation: Actuation,
    /// Liveness probes (the systemd watchdog), answered between steps.
    pub probes: mpsc::Receiver<crate::systemd::Probe>,
}

/// What the actuators are told after a step, once the snapshot they read
/// holds the new lease.
enum Traffic {
    Activate(u64, &'static str),
    Reassert(u64),
    Drain(u64, String),
    StandDown,
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

/// Converts a monotonic instant into wall-clock text, for people only.
pub fn wall(at: Instant) -> String {
    let (now, wall_now) = (clock::now(), std::time::SystemTime::now());
    let when = if at >= now {
        wall_now.checked_add(at.saturating_since(now))
    } else {
        wall_now.checked_sub(now.saturating_since(at))
    };
    humantime::format_rfc3339_millis(when.unwrap_or(std::time::SystemTime::UNIX_EPOCH)).to_string()
}

impl Runtime {
    /// A fresh snapshot for a node that has not stepped yet.
    pub fn initial_snapshot(node: &Node) -> Shared {
        let now = clock::now();
        Arc::new(Mutex::new(Snapshot {
            status: node.status(now),
            active_until: None,
            events: VecDeque::new(),
            hooks: Vec::new(),
            actuators: Vec::new(),
            mongodb: None,
            last_known_epoch: None,
        }))
    }

    /// Runs until every input channel is closed. Returns an error only when
    /// the state file cannot be written, after the retries of
    /// [`StateFile::store_retrying`]: the node must then stop (the daemon
    /// exits non-zero) rather than answer votes it has not persisted.
    pub async fn run(mut self) -> Result<(), crate::persist::PersistError> {
        let (hook_tx, mut hook_rx) = mpsc::channel::<(Epoch, bool)>(8);
        let mut health_open = true;
        self.apply_actions(&hook_tx)?;
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
                () = sleep => Wake::Timer,
            };
            let now = clock::now();
            match wake {
                Wake::Message(from, msg) => self.node.handle_message(now, from, msg),
                Wake::Command((cmd, reply)) => {
                    let result = self.node.command(now, cmd);
                    let _ = reply.send(result);
                }
                Wake::Health(input) => {
                    match input {
                        HealthInput::Checks(healthy) => self.local.healthy = healthy,
                        HealthInput::Data(caught_up) => self.local.caught_up = caught_up,
                    }
                    self.node.set_health(now, self.local);
                }
                Wake::Fenced(epoch) => self.node.fenced(now, Epoch(epoch)),
                Wake::HookDone(epoch, ok) => self.node.pre_promote_finished(now, epoch, ok),
                Wake::Timer => self.node.handle_timeout(now),
                Wake::Closed => return Ok(()),
            }
            self.node.handle_timeout(clock::now());
            self.apply_actions(&hook_tx)?;
        }
    }

    /// Runs `hook` for `epoch` in its own task; `why` is its
    /// `FAILOVER_REASON` and the site taking over, if any.
    fn spawn_hook(
        &self,
        hook: HookKind,
        epoch: Epoch,
        why: (&'static str, Option<NodeId>),
        done: Option<mpsc::Sender<(Epoch, bool)>>,
    ) {
        let command = self.hooks.command(hook).cloned();
        let name = |id: NodeId| self.cfg.member(id).map(|m| m.name.clone()).unwrap_or_default();
        let (reason, to) = why;
        let call = hooks::HookCall { hook, epoch: epoch.0, site: name(self.node.id()), reason, to: to.map(name) };
        let (timeout, pass_env, shared) = (self.hooks.timeout, self.hooks.pass_env.clone(), self.shared.clone());
        tokio::spawn(async move {
            let limits = hooks::HookLimits { timeout, pass_env: &pass_env };
            let outcome = match command {
                Some(cmd) => hooks::run(&cmd, call, limits).await,
                None => HookOutcome { hook, epoch: epoch.0, ok: true, detail: "not configured".into() },
            };
            let ok = outcome.ok;
            if let Ok(mut snap) = shared.lock() {
                snap.hooks.retain(|h| h.hook != hook);
                snap.hooks.push(outcome);
            }
            if let Some(done) = done {
                let _ = done.send((epoch, ok)).await;
            }
        });
    }

    fn apply_actions(&mut self, hook_tx: &mpsc::Sender<(Epoch, bool)>) -> Result<(), crate::persist::PersistError> {
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
                    self.spawn_hook(HookKind::PrePromote, epoch, (reason, None), Some(hook_tx.clone()))
                }
                Action::BecomeActive { epoch, cause } => {
                    tracing::info!(epoch = epoch.0, ?cause, "this site is now ACTIVE");
                    traffic.push(Traffic::Activate(epoch.0, hooks::activation_reason(cause)));
                    self.spawn_hook(HookKind::PostPromote, epoch, (hooks::activation_reason(cause), None), None);
                }
                Action::StepDown { epoch, reason } => {
                    tracing::warn!(epoch = epoch.0, ?reason, "this site stepped down");
                    traffic.push(Traffic::StandDown);
                    self.spawn_hook(HookKind::OnDemote, epoch, hooks::demotion_reason(reason), None);
                }
                Action::Actuate { epoch } => traffic.push(Traffic::Reassert(epoch.0)),
                Action::Drain { epoch, to } => {
                    let to = self.cfg.member(to).map_or_else(|| to.to_string(), |m| m.name.clone());
                    tracing::info!(epoch = epoch.0, %to, "draining before handoff");
                    traffic.push(Traffic::Drain(epoch.0, to));
                }
                Action::Event(e) => {
                    log_event(&self.cfg, &e);
                    events.push(e);
                }
            }
        }
        let now = clock::now();
        let status = self.node.status(now);
        if let Some(epoch) = status.epoch {
            self.actuation.observe_epoch(epoch.0);
        }
        let active_until = if self.node.is_active(now) {
            Some(status.lease_remaining.map_or(Instant::from_millis(u64::MAX), |r| now + r))
        } else {
            None
        };
        if let Ok(mut snap) = self.shared.lock() {
            for e in events {
                let text = describe(&self.cfg, &e);
                if let Some(log) = &self.event_log {
                    // Full queue (database away for long): the node's own
                    // history below still has it.
                    let _ = log.try_send(text.clone());
                }
                snap.events.push_back(EventRecord { at: wall(now), event: text });
                while snap.events.len() > EVENTS_KEPT {
                    snap.events.pop_front();
                }
            }
            snap.last_known_epoch = snap.last_known_epoch.max(status.epoch.map(|e| e.0));
            snap.status = status;
            snap.active_until = active_until;
        }
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

/// An event in words, with member names.
pub fn describe(cfg: &ClusterConfig, e: &Event) -> String {
    let n = |id: NodeId| cfg.member(id).map_or_else(|| id.to_string(), |m| m.name.clone());
    match *e {
        Event::ElectionStarted { term, approved, handoff } => {
            format!("election started in term {} (approved: {approved}, handoff: {handoff})", term.0)
        }
        Event::VoteRefused { by, term, refusal } => format!("{} refused a vote in term {}: {refusal:?}", n(by), term.0),
        Event::Elected { epoch, cause } => {
            format!("elected with epoch {} ({})", epoch.0, hooks::activation_reason(cause))
        }
        Event::BecameActive { epoch, cause } => {
            format!("became active with epoch {} ({})", epoch.0, hooks::activation_reason(cause))
        }
        Event::SteppedDown { epoch, reason } => {
            let why = match reason {
                failover_core::StepDownReason::Handoff { to, why } => format!("handing over to {} ({why:?})", n(to)),
                other => format!("{other:?}"),
            };
            format!("stepped down from epoch {}: {why}", epoch.0)
        }
        Event::ActiveSiteChanged { site, epoch, cause } => {
            format!("{} is active with epoch {} ({})", n(site), epoch.0, hooks::activation_reason(cause))
        }
        Event::FailoverProposed { target, reason } => {
            format!("failover to {} proposed, waiting for approval: {reason:?}", n(target))
        }
        Event::FailoverApproved { target } => format!("failover to {} approved", n(target)),
        Event::HandoffStarted { to, why } => format!("handing over to {}: {why:?}", n(to)),
        Event::SwitchoverScheduled { to, at } => format!("switchover to {} scheduled for {}", n(to), wall(at)),
        Event::SwitchoverCancelled => "scheduled switchover cancelled".into(),
        Event::Paused { by } => format!("paused (by {})", n(by)),
        Event::Resumed { by } => format!("resumed (by {})", n(by)),
        Event::ForcedPromotion { epoch } => format!("FORCED promotion with epoch {}", epoch.0),
        Event::UnhealthyWithoutSuccessor => "checks fail and no eligible site can take over".into(),
        Event::FenceAhead { epoch, stored } => format!(
            "ALARM: a target holds epoch {}, newer than this site's {} while it holds its lease: forged (or left by a \
             forced promotion); staying active and writing nothing over it",
            stored.0, epoch.0
        ),
    }
}

/// A proposal's reason in words.
pub fn describe_reason(r: failover_core::ProposalReason) -> &'static str {
    use failover_core::ProposalReason as R;
    match r {
        R::ManualMode => "manual mode: failovers wait for approval",
        R::TargetLagging => "the target's data lags beyond max_lag_on_failover",
        R::Cooldown => "within the cooldown after an automatic failover",
        R::ActiveUnhealthy => "the active site's health checks fail",
        R::Failback => "a higher-priority site is back (failback waits for approval in manual mode)",
        R::PromotionDeclined => "the elected site's pre_promote hook failed",
        R::Paused => "no site is active and automatic actions are paused: approve, or resume",
    }
}

fn log_event(cfg: &ClusterConfig, e: &Event) {
    let text = describe(cfg, e);
    match e {
        Event::VoteRefused { .. } | Event::ElectionStarted { .. } => tracing::debug!("{text}"),
        Event::SteppedDown { .. } | Event::ForcedPromotion { .. } | Event::UnhealthyWithoutSuccessor => {
            tracing::warn!("{text}")
        }
        Event::FenceAhead { .. } => tracing::error!("{text}"),
        _ => tracing::info!("{text}"),
    }
}
