//! Traffic actuation: while this site is active its actuators point traffic
//! at it (DNS by RFC 2136 updates or Route 53 change batches, HAProxy
//! through its runtime API, webhooks for anything else), and keep re-asserting that state on every pass the
//! core asks for (rule 9: convergence, not edges).
//!
//! Invariants enforced here:
//! - nothing is written unless this site holds its lease at that moment
//!   ([`LeaseGuard`] is asked before every write, against the clock now);
//! - a goal for an epoch older than the highest epoch this site has seen is
//!   refused ([`Actuation::activate`]), and each target that can check the
//!   epoch does so itself (DNS: prerequisite on the fencing TXT record;
//!   Route 53: the fencing TXT record deleted exactly as read in the same
//!   atomic batch; HAProxy: the epoch kept in a process variable);
//! - a standby site touches nothing: on step-down every pass in flight is
//!   cancelled;
//! - one actuator's failure or hang never blocks another, nor the protocol
//!   loop: each runs in its own task with a time limit per pass, and its
//!   state is reported in `/status` and `/metrics`;
//! - an actuator in observe mode ([`observe`]) reads its target as in `act`
//!   mode and writes nothing: where it would write, its pass reports the
//!   change instead.

mod contract;
pub mod dns;
mod driver;
pub mod fence;
pub mod haproxy;
pub mod mongodb;
pub mod observe;
pub mod pointing;
pub mod route53;
pub mod signed_query;
pub mod webhook;

use std::net::IpAddr;
use std::time::Duration;

use failover_core::ClusterConfig;
use serde::Deserialize;
use tokio::sync::watch;

pub use contract::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
pub use driver::ActuatorSet;

use crate::actuation_mode::ActuationMode;
use crate::settings::{BadSetting, Choice};
use crate::snapshot::NodeSnapshot;

/// `[actuators]`: what this site does to traffic while it is active.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActuatorsSection {
    /// `act` (default) or `observe`: every actuator of this site (the
    /// MongoDB one too) reads its target and reports what it would change
    /// without changing it, unless its own `actuation` key says otherwise.
    #[serde(default)]
    pub actuation: Option<Choice<ActuationMode>>,
    /// This site's service addresses: the A/AAAA data of DNS records (unless
    /// a DNS actuator names its own) and `addresses` in webhook bodies.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// DNS zones updated by RFC 2136 with TSIG.
    #[serde(default)]
    pub dns: Vec<dns::DnsSection>,
    /// Route 53 hosted zones changed by fenced change batches.
    #[serde(default)]
    pub route53: Vec<route53::Route53Section>,
    /// HAProxy instances driven through their runtime API.
    #[serde(default)]
    pub haproxy: Vec<haproxy::HaproxySection>,
    /// HTTP endpoints called with a JSON body.
    #[serde(default)]
    pub webhook: Vec<webhook::WebhookSection>,
}

/// A goal and the pass number: each pass the core asks for bumps it.
#[derive(Clone, Debug)]
struct Desired {
    goal: Goal,
    pass: u64,
}

/// One actuator of this site.
#[derive(Clone, Debug)]
pub enum Actuator {
    /// RFC 2136 updates of one zone.
    Dns(dns::DnsActuator),
    /// Fenced change batches to one Route 53 hosted zone.
    Route53(route53::Route53Actuator),
    /// One HAProxy instance.
    Haproxy(haproxy::HaproxyActuator),
    /// One webhook endpoint.
    Webhook(webhook::WebhookActuator),
    /// The MongoDB replica set: state store claim, primary placement.
    Mongodb(mongodb::MongoActuator),
}

impl Actuator {
    /// Its unique name.
    pub fn name(&self) -> &str {
        match self {
            Actuator::Dns(a) => &a.name,
            Actuator::Route53(a) => &a.name,
            Actuator::Haproxy(a) => &a.name,
            Actuator::Webhook(a) => &a.name,
            Actuator::Mongodb(a) => &a.name,
        }
    }

    /// `act` or `observe`.
    pub fn actuation(&self) -> ActuationMode {
        match self {
            Actuator::Dns(a) => a.actuation,
            Actuator::Route53(a) => a.actuation,
            Actuator::Haproxy(a) => a.actuation,
            Actuator::Webhook(a) => a.actuation,
            Actuator::Mongodb(a) => a.actuation,
        }
    }

    /// `dns`, `route53`, `haproxy`, `webhook` or `mongodb`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actuator::Dns(_) => "dns",
            Actuator::Route53(_) => "route53",
            Actuator::Haproxy(_) => "haproxy",
            Actuator::Webhook(_) => "webhook",
            Actuator::Mongodb(_) => "mongodb",
        }
    }

    /// An error as `/status` shows it: each actuator keeps secrets out of
    /// its errors' text, and the MongoDB one also hides its connection
    /// string, should the driver ever echo it; the Route 53 one leaves out
    /// the account ids and ARNs that AWS error messages carry.
    pub fn shown(&self, e: &ActuateError) -> String {
        match self {
            Actuator::Mongodb(a) => a.link.scrub(&e.to_string()),
            Actuator::Route53(_) => crate::redact::aws_identifiers(&e.to_string()),
            _ => e.to_string(),
        }
    }

    /// The same actuator in mode `mode`.
    pub fn with_actuation(mut self, mode: ActuationMode) -> Self {
        match &mut self {
            Actuator::Dns(a) => a.actuation = mode,
            Actuator::Route53(a) => a.actuation = mode,
            Actuator::Haproxy(a) => a.actuation = mode,
            Actuator::Webhook(a) => a.actuation = mode,
            Actuator::Mongodb(a) => a.actuation = mode,
        }
        self
    }

    /// Upper bound on one pass (each step has its own, shorter, limit).
    fn pass_limit(&self) -> Duration {
        match self {
            Actuator::Dns(a) => a.timeout * 4 + a.propagation_timeout,
            Actuator::Route53(a) => a.pass_limit(),
            Actuator::Haproxy(a) => a.timeout * 8,
            Actuator::Webhook(a) => a.timeout + Duration::from_secs(1),
            Actuator::Mongodb(a) => a.pass_limit(),
        }
    }

    /// Brings the target to `goal`, or says why not.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        match self {
            Actuator::Dns(a) => a.apply(goal, lease).await,
            Actuator::Route53(a) => a.apply(goal, lease).await,
            Actuator::Haproxy(a) => a.apply(goal, lease).await,
            Actuator::Webhook(a) => a.apply(goal, lease).await,
            Actuator::Mongodb(a) => a.apply(goal, lease).await,
        }
    }
}

/// Builds every configured actuator for site `me`, or names the key that
/// is wrong (relative to `actuators.`) and why.
pub fn build(section: &ActuatorsSection, me: &str, cluster: &ClusterConfig) -> Result<Vec<Actuator>, BadSetting> {
    let global = observe::global(section.actuation.as_ref())?;
    // Builds one actuator and sets its mode; errors name the key under `at`.
    let each = |at: String, own: Option<&Choice<ActuationMode>>, built: Result<Actuator, BadSetting>| {
        let mode = observe::resolve(global, own).map_err(|e| e.under(&at))?;
        built.map(|a| a.with_actuation(mode)).map_err(|e| e.under(&at))
    };
    let mut out = Vec::new();
    for (i, s) in section.dns.iter().enumerate() {
        let a = dns::DnsActuator::build(s, me, &section.addresses).map(Actuator::Dns);
        out.push(each(format!("dns[{i}]"), s.actuation.as_ref(), a)?);
    }
    for (i, s) in section.route53.iter().enumerate() {
        let a = route53::Route53Actuator::build(s, me, &section.addresses).map(Actuator::Route53);
        out.push(each(format!("route53[{i}]"), s.actuation.as_ref(), a)?);
    }
    for (i, s) in section.haproxy.iter().enumerate() {
        let a = haproxy::HaproxyActuator::build(s, me, cluster).map(Actuator::Haproxy);
        out.push(each(format!("haproxy[{i}]"), s.actuation.as_ref(), a)?);
    }
    for (i, s) in section.webhook.iter().enumerate() {
        let a = webhook::WebhookActuator::build(s, me, &section.addresses).map(Actuator::Webhook);
        out.push(each(format!("webhook[{i}]"), s.actuation.as_ref(), a)?);
    }
    for (i, a) in out.iter().enumerate() {
        if out[..i].iter().any(|b| b.name() == a.name()) {
            let problem = format!("two actuators are named {:?}; give each a unique name", a.name());
            return Err(BadSetting::new("name", problem));
        }
    }
    Ok(out)
}

/// The actuators of this site and the goal they work towards.
pub struct Actuation {
    desired: watch::Sender<Desired>,
    highest_seen: u64,
    running: ActuatorSet,
    /// Told each goal the moment it is set, in the caller's task: lets an
    /// in-process test check what held when the loop set it.
    #[cfg(test)]
    observer: Option<GoalObserver>,
}

/// What an in-process test is told of each goal set.
#[cfg(test)]
type GoalObserver = Box<dyn Fn(&Goal) + Send>;

/// Where actuators report a target that holds a newer epoch. The protocol
/// loop tells the core (`Node::fenced`): an elected site keeps its role,
/// writes nothing over the fence and raises the fence alarm; only a site
/// promoted by force, which has no lease to weigh the evidence against,
/// steps down.
pub type FencedBy = tokio::sync::mpsc::Sender<u64>;

impl Actuation {
    /// Starts one task per actuator. They report into `snapshot`, ask it
    /// whether the lease is held, and send newer epochs that targets hold
    /// to `fenced`.
    pub fn start(actuators: Vec<Actuator>, snapshot: NodeSnapshot, fenced: FencedBy) -> Self {
        let (desired, goals) = watch::channel(Desired { goal: Goal::Standby, pass: 0 });
        let running = ActuatorSet::start(actuators, goals, snapshot, fenced);
        Actuation {
            desired,
            highest_seen: 0,
            running,
            #[cfg(test)]
            observer: None,
        }
    }

    /// The handle through which a reload replaces the actuators.
    pub fn running(&self) -> ActuatorSet {
        self.running.clone()
    }

    /// Calls `observer` with every goal set from now on.
    #[cfg(test)]
    pub(crate) fn observe_goals(&mut self, observer: impl Fn(&Goal) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Sets the goal (a new pass even when it is the same).
    fn set(&mut self, goal: Option<Goal>) {
        self.desired.send_modify(|d| {
            if let Some(goal) = goal {
                d.goal = goal;
            }
            d.pass += 1;
        });
        #[cfg(test)]
        if let Some(observer) = &self.observer {
            observer(&self.desired.borrow().goal);
        }
    }

    /// Notes an epoch seen anywhere (own or another site's).
    pub fn observe_epoch(&mut self, epoch: u64) {
        self.highest_seen = self.highest_seen.max(epoch);
    }

    /// This site became active with `epoch`.
    pub fn activate(&mut self, epoch: u64, reason: &str) {
        if epoch < self.highest_seen {
            tracing::warn!(epoch, highest = self.highest_seen, "refusing to actuate for an epoch older than one seen");
            return self.stand_down();
        }
        self.highest_seen = epoch;
        self.set(Some(Goal::Active { epoch, reason: reason.to_owned() }));
    }

    /// The core asks for a pass with `epoch`: re-assert the current goal
    /// (a drain stays a drain).
    pub fn reassert(&mut self, epoch: u64) {
        let current = self.desired.borrow().goal.clone();
        match current {
            Goal::Draining { epoch: e, .. } | Goal::Active { epoch: e, .. } if e == epoch => self.set(None),
            _ => self.activate(epoch, "reassert"),
        }
    }

    /// This site drains towards `to` before handing over.
    pub fn drain(&mut self, epoch: u64, to: String) {
        if epoch < self.highest_seen {
            return self.stand_down();
        }
        self.set(Some(Goal::Draining { epoch, to }));
    }

    /// This site is no longer active: stop touching traffic at once.
    pub fn stand_down(&mut self) {
        self.desired.send_if_modified(|d| {
            let changed = d.goal != Goal::Standby;
            d.goal = Goal::Standby;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use failover_core::Instant;

    fn snapshot() -> NodeSnapshot {
        NodeSnapshot::new(crate::test_node::node().status(Instant::from_millis(0)))
    }

    #[tokio::test]
    async fn an_epoch_older_than_one_seen_is_never_actuated() {
        let mut act = Actuation::start(Vec::new(), snapshot(), tokio::sync::mpsc::channel(1).0);
        act.observe_epoch(7);
        act.activate(5, "elected");
        assert_eq!(act.desired.borrow().goal, Goal::Standby);
        act.drain(6, "b".into());
        assert_eq!(act.desired.borrow().goal, Goal::Standby);
        act.activate(7, "elected");
        assert_eq!(act.desired.borrow().goal, Goal::Active { epoch: 7, reason: "elected".into() });
    }

    #[tokio::test]
    async fn a_reassert_keeps_a_drain_and_bumps_the_pass() {
        let mut act = Actuation::start(Vec::new(), snapshot(), tokio::sync::mpsc::channel(1).0);
        act.activate(3, "elected");
        act.drain(3, "b".into());
        let before = act.desired.borrow().pass;
        act.reassert(3);
        assert_eq!(act.desired.borrow().goal, Goal::Draining { epoch: 3, to: "b".into() });
        assert_eq!(act.desired.borrow().pass, before + 1);
        act.stand_down();
        assert_eq!(act.desired.borrow().goal, Goal::Standby);
    }

    /// A snapshot whose lease runs ten minutes from now.
    fn leased_snapshot() -> NodeSnapshot {
        let snap = snapshot();
        let lease = crate::snapshot::Lease::until(Some(clock::now() + Duration::from_secs(600)));
        let step = crate::snapshot::Step { status: snap.status(), lease, events: Vec::new(), raised: Vec::new() };
        snap.publish_step(step);
        snap
    }

    fn webhook(name: &str, url: &str) -> Actuator {
        let section: webhook::WebhookSection =
            toml::from_str(&format!("name = \"{name}\"\nurl = \"{url}\"\ntimeout = \"60s\"")).expect("section");
        Actuator::Webhook(webhook::WebhookActuator::build(&section, "a", &[]).expect("build"))
    }

    #[tokio::test]
    async fn a_replaced_actuator_s_pass_in_flight_has_ended_before_the_new_ones_start() {
        use tokio::io::AsyncReadExt;
        // A target that takes the request and never answers: the pass
        // hangs there (its own limit is a minute away).
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", target.local_addr().expect("address"));
        let snap = leased_snapshot();
        let mut act = Actuation::start(vec![webhook("old", &url)], snap.clone(), tokio::sync::mpsc::channel(1).0);
        act.activate(1, "elected");
        let (mut held, _) = tokio::time::timeout(Duration::from_secs(30), target.accept())
            .await
            .expect("the old actuator's pass reached its target")
            .expect("accept");
        act.running().replace(vec![webhook("new", &url)]).await;
        // The old pass was cancelled, not left running: its connection is
        // closed by the time the replacement is in place.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), held.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(_))), "the old pass still holds its request open: {closed:?}");
        let names: Vec<String> = snap.actuators().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["new"]);
        // The new actuator works towards the goal in force.
        let (_, _) = tokio::time::timeout(Duration::from_secs(30), target.accept())
            .await
            .expect("the new actuator's pass reached its target")
            .expect("accept");
        assert_eq!(snap.actuators()[0].epoch, Some(1));
    }

    #[test]
    fn the_global_mode_applies_to_every_actuator_that_does_not_set_its_own() {
        let text = "actuation = \"observe\"\n\
            [[webhook]]\nname = \"inherits\"\nurl = \"http://127.0.0.1:9/a\"\n\
            [[webhook]]\nname = \"acts\"\nurl = \"http://127.0.0.1:9/b\"\nactuation = \"act\"\n";
        let section: ActuatorsSection = toml::from_str(text).expect("section");
        let built = build(&section, "a", &crate::test_node::cluster()).expect("built");
        let modes: Vec<(&str, ActuationMode)> = built.iter().map(|a| (a.name(), a.actuation())).collect();
        assert_eq!(modes, [("inherits", ActuationMode::Observe), ("acts", ActuationMode::Act)]);
        let acting: ActuatorsSection = toml::from_str(&text.replacen("observe", "act", 1)).expect("section");
        let built = build(&acting, "a", &crate::test_node::cluster()).expect("built");
        assert!(built.iter().all(|a| a.actuation() == ActuationMode::Act));
    }

    #[test]
    fn a_bad_mode_names_its_key_globally_and_per_actuator() {
        let hook = "[[webhook]]\nurl = \"http://127.0.0.1:9/a\"\n";
        for (text, key) in [
            (format!("actuation = \"dry-run\"\n{hook}"), "actuation"),
            (format!("{hook}actuation = \"observing\"\n"), "webhook[0].actuation"),
        ] {
            let section: ActuatorsSection = toml::from_str(&text).expect("section");
            let e = build(&section, "a", &crate::test_node::cluster()).expect_err("refused");
            assert_eq!(e.key, key);
            assert!(e.problem.contains("`observe`"), "{}", e.problem);
        }
    }

    #[tokio::test]
    async fn an_observing_webhook_reports_the_call_it_would_make_and_makes_none() {
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", target.local_addr().expect("address"));
        let snap = leased_snapshot();
        let hook = webhook("hook", &url).with_actuation(ActuationMode::Observe);
        let mut act = Actuation::start(vec![hook], snap.clone(), tokio::sync::mpsc::channel(1).0);
        act.activate(4, "elected");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while snap.actuators()[0].passes < 3 {
            assert!(std::time::Instant::now() < deadline, "no three passes: {:?}", snap.actuators());
            act.reassert(4);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let report = snap.actuators().remove(0);
        assert_eq!(report.state, crate::reports::ActuatorState::WouldChange);
        assert_eq!(report.actuation, ActuationMode::Observe);
        assert_eq!(report.would_change.len(), 1, "{report:?}");
        let said = &report.would_change[0];
        assert!(said.starts_with("would call POST http://127.0.0.1:") && said.contains("epoch 4 (active)"), "{said}");
        // Nothing ever connected to the endpoint: the kernel would hold a
        // connection made, and a non-blocking accept would take it now.
        let target = target.into_std().expect("std listener");
        let connected = target.accept().map(|(_, from)| from);
        assert!(
            matches!(&connected, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the observing webhook called its endpoint: {connected:?}"
        );
    }

    #[test]
    fn the_lease_guard_refuses_without_a_lease() {
        let guard = LeaseGuard(snapshot());
        assert!(matches!(guard.check(), Err(ActuateError::LeaseLost)));
        let lease = crate::snapshot::Lease::until(Some(clock::now() + Duration::from_secs(60)));
        let status = guard.0.status();
        guard.0.publish_step(crate::snapshot::Step { status, lease, events: Vec::new(), raised: Vec::new() });
        assert!(guard.check().is_ok());
    }
}
