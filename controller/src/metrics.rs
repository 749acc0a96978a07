//! Prometheus metrics through `prometheus-client` (OpenMetrics text), set
//! from the protocol status each time `/metrics` is scraped.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use failover_core::{ClusterConfig, NodeId, Status};

use crate::actuation_mode::ActuationMode;
use crate::agreement::Mismatch;
use crate::counts::Counts;
use crate::lease_margin::{Margins, BUCKETS_MS};
use crate::reports::{ActuatorReport, ActuatorState, CertificateReport, MongoReport};
use crate::slots::{ConnectionSlots, Refusal, Refused};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Label naming a peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// Member name.
    pub peer: String,
}

/// Label naming a site.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabel {
    /// Member name.
    pub site: String,
}

/// Labels naming an actuator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActuatorLabel {
    /// Actuator name.
    pub actuator: String,
    /// `dns`, `haproxy` or `webhook`.
    pub kind: String,
}

/// Labels naming an actuator and one of its states.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActuatorStateLabel {
    /// Actuator name.
    pub actuator: String,
    /// `idle`, `pending`, `converged`, `failed` or `would_change`.
    pub state: String,
}

/// Label naming what became of a reload of the configuration file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabel {
    /// `applied` or `refused`.
    pub result: String,
}

/// Labels naming a listening port and why a connection to it was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabel {
    /// `http` or `peer`.
    pub port: String,
    /// `cap` (every slot taken) or `per_source` (the source held its share).
    pub reason: String,
}

/// Label naming a MongoDB replica set (empty until it was read once).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MongoSetLabel {
    /// The set's name.
    pub set: String,
}

/// Labels naming a MongoDB replica set member.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MongoMemberLabel {
    /// `host:port`.
    pub member: String,
    /// The site it is mapped to (empty if none).
    pub site: String,
}

/// Label naming the role a node took.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// `active`, `standby`, `candidate`, ... (as `/status` says it).
    pub role: String,
}

/// Label naming what made this site active.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    /// `reclaim`, `automatic_failover`, `approved_failover`, `handoff` or
    /// `forced`.
    pub cause: String,
}

/// Label naming why a handoff started or a site stepped down.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// As `FAILOVER_REASON` of `on_demote` says it.
    pub reason: String,
}

/// Labels naming an actuator and what became of one of its passes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabel {
    /// Actuator name.
    pub actuator: String,
    /// `converged`, `in_progress`, `failed` or `lease_lost`.
    pub outcome: String,
}

/// Labels naming a certificate file in use.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabel {
    /// `peer`, `ca`, `http` or `http_ca`.
    pub certificate: String,
    /// The file.
    pub file: String,
}

/// A counter whose total is kept elsewhere and copied in at each scrape.
type Total = Counter<u64, AtomicU64>;

/// The histogram of lease renewal margins, whose totals are kept elsewhere
/// ([`Counts::lease_renewals`]) and copied in at each scrape; clones share
/// them.
#[derive(Clone, Debug, Default)]
struct MarginHistogram(Arc<Mutex<Margins>>);

impl MarginHistogram {
    fn set(&self, margins: &Margins) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone_from(margins);
    }
}

impl EncodeMetric for MarginHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let margins = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let bounds = BUCKETS_MS.iter().map(|&ms| ms as f64 / 1000.0).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(margins.buckets).collect();
        encoder.encode_histogram::<NoLabelSet>(margins.sum.as_secs_f64(), margins.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Every metric this node exports.
pub struct Metrics {
    registry: Registry,
    active: Gauge,
    term: Gauge<u64, AtomicU64>,
    epoch: Gauge<u64, AtomicU64>,
    paused: Gauge,
    recovering: Gauge,
    site_maintenance: Family<SiteLabel, Gauge>,
    pending: Gauge,
    healthy: Gauge,
    lease_remaining: Gauge,
    lease_duration: Gauge,
    fence_ahead: Gauge<u64, AtomicU64>,
    fence_unreadable: Gauge,
    reachable: Family<PeerLabel, Gauge>,
    config_mismatch: Family<PeerLabel, Gauge>,
    actuator_state: Family<ActuatorStateLabel, Gauge>,
    actuator_failures: Family<ActuatorLabel, Gauge>,
    actuator_observe: Family<ActuatorLabel, Gauge>,
    actuator_converge: Family<ActuatorLabel, Gauge>,
    actuator_propagation: Family<ActuatorLabel, Gauge>,
    mongo_reachable: Family<MongoSetLabel, Gauge>,
    mongo_caught_up: Family<MongoSetLabel, Gauge>,
    mongo_majority: Family<MongoSetLabel, Gauge>,
    mongo_healthy: Family<MongoMemberLabel, Gauge>,
    mongo_primary: Family<MongoMemberLabel, Gauge>,
    mongo_lag: Family<MongoMemberLabel, Gauge>,
    config_reloads: Family<ReloadLabel, Counter<u64, AtomicU64>>,
    connections_refused: Family<RefusedLabel, Counter<u64, AtomicU64>>,
    elections_started: Total,
    elections_won: Total,
    role_changes: Family<RoleLabel, Total>,
    activations: Family<CauseLabel, Total>,
    handoffs: Family<ReasonLabel, Total>,
    step_downs: Family<ReasonLabel, Total>,
    actuator_passes: Family<PassLabel, Total>,
    lease_renewal_margin: MarginHistogram,
    lease_near_misses: Total,
    certificate_expiry: Family<CertificateLabel, Gauge>,
    /// The listening ports whose refusals are counted, by name.
    ports: Vec<(&'static str, ConnectionSlots)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("failover");
        let m = Metrics {
            active: Gauge::default(),
            term: Gauge::default(),
            epoch: Gauge::default(),
            paused: Gauge::default(),
            recovering: Gauge::default(),
            site_maintenance: Family::default(),
            pending: Gauge::default(),
            healthy: Gauge::default(),
            lease_remaining: Gauge::default(),
            lease_duration: Gauge::default(),
            fence_ahead: Gauge::default(),
            fence_unreadable: Gauge::default(),
            reachable: Family::default(),
            config_mismatch: Family::default(),
            actuator_state: Family::default(),
            actuator_failures: Family::default(),
            actuator_observe: Family::default(),
            actuator_converge: Family::default(),
            actuator_propagation: Family::default(),
            mongo_reachable: Family::default(),
            mongo_caught_up: Family::default(),
            mongo_majority: Family::default(),
            mongo_healthy: Family::default(),
            mongo_primary: Family::default(),
            mongo_lag: Family::default(),
            config_reloads: Family::default(),
            connections_refused: Family::default(),
            elections_started: Total::default(),
            elections_won: Total::default(),
            role_changes: Family::default(),
            activations: Family::default(),
            handoffs: Family::default(),
            step_downs: Family::default(),
            actuator_passes: Family::default(),
            lease_renewal_margin: MarginHistogram::default(),
            lease_near_misses: Total::default(),
            certificate_expiry: Family::default(),
            ports: Vec::new(),
            registry: Registry::default(),
        };
        registry.register("active", "1 while this site holds a valid lease and acts as active", m.active.clone());
        registry.register("term", "current election term", m.term.clone());
        registry.register("epoch", "epoch of the active site as known here", m.epoch.clone());
        registry.register("paused", "1 while automatic actions are paused", m.paused.clone());
        registry.register(
            "state_recovering",
            "1 while this node, having lost its state file, waits to catch up with the cluster before it votes",
            m.recovering.clone(),
        );
        registry.register(
            "site_maintenance",
            "1 while the site is in maintenance (no failover or switchover goes to it), else 0",
            m.site_maintenance.clone(),
        );
        registry.register("pending_failover", "1 while a failover waits for approval", m.pending.clone());
        registry.register("local_healthy", "1 while this site's own checks pass", m.healthy.clone());
        registry.register("lease_remaining_milliseconds", "lease left on this site", m.lease_remaining.clone());
        registry.register("lease_duration_milliseconds", "configured lease length", m.lease_duration.clone());
        registry.register(
            "fence_ahead_epoch",
            "while active: an epoch a target holds beyond this site's own (forged, or a forced promotion), else 0",
            m.fence_ahead.clone(),
        );
        registry.register(
            "fence_unreadable",
            "while active: the actuators whose target holds a fence value the cluster never writes (malformed, or past 2^48)",
            m.fence_unreadable.clone(),
        );
        registry.register("peer_reachable", "1 if the peer was heard from within one lease", m.reachable.clone());
        registry.register(
            "peer_config_mismatch",
            "1 while the peer is a node of another cluster, or its members, votes or priorities differ from this node's (messages both ways refused)",
            m.config_mismatch.clone(),
        );
        registry.register(
            "actuator_state",
            "1 for the state each actuator is in (idle, pending, converged, failed, would_change: observe mode found something to change)",
            m.actuator_state.clone(),
        );
        registry.register(
            "actuator_observe",
            "1 while the actuator is in observe mode: it reads its target and changes nothing",
            m.actuator_observe.clone(),
        );
        registry.register(
            "actuator_consecutive_failures",
            "failed passes of the actuator since it last converged",
            m.actuator_failures.clone(),
        );
        registry.register(
            "actuator_converge_milliseconds",
            "duration of the actuator's last converged pass",
            m.actuator_converge.clone(),
        );
        registry.register(
            "actuator_propagation_milliseconds",
            "DNS: time from the last update until every verify server answered it",
            m.actuator_propagation.clone(),
        );
        registry.register(
            "mongodb_reachable",
            "1 if the last read of the MongoDB replica set from this site succeeded",
            m.mongo_reachable.clone(),
        );
        registry.register(
            "mongodb_caught_up",
            "1 if this site's data is within max_lag_on_failover (eligible for automatic failover)",
            m.mongo_caught_up.clone(),
        );
        registry.register(
            "mongodb_majority_writes_available",
            "1 if w:majority writes can be acknowledged now",
            m.mongo_majority.clone(),
        );
        registry.register("mongodb_member_healthy", "MongoDB's health of each member", m.mongo_healthy.clone());
        registry.register("mongodb_member_primary", "1 for the member that is primary", m.mongo_primary.clone());
        registry.register(
            "mongodb_member_lag_milliseconds",
            "how far each data member's applied optime is behind the primary's",
            m.mongo_lag.clone(),
        );
        registry.register(
            "config_reloads",
            "reloads of the configuration file since start, applied or refused (the node keeps the old file)",
            m.config_reloads.clone(),
        );
        registry.register(
            "connections_refused",
            "connections closed at accept since start, by port (http, peer) and reason (cap: no free slot; per_source: the source held its share)",
            m.connections_refused.clone(),
        );
        registry.register("elections_started", "elections this node started since start", m.elections_started.clone());
        registry.register("elections_won", "elections this node won since start", m.elections_won.clone());
        registry.register(
            "role_changes",
            "changes of this node's role since start, by the role it took (active, standby, candidate, promoting, handing_off, resuming)",
            m.role_changes.clone(),
        );
        registry.register(
            "activations",
            "times this site took the active role since start, by cause (reclaim, automatic_failover, approved_failover, handoff, forced)",
            m.activations.clone(),
        );
        registry.register(
            "handoffs",
            "handoffs this active site started since start, by reason (switchover, failback, unhealthy, shutdown, promotion_declined, approved_failover)",
            m.handoffs.clone(),
        );
        registry.register(
            "step_downs",
            "times this site stopped acting as active since start, by reason (lease_expired, higher_term, a handoff's reason, ...)",
            m.step_downs.clone(),
        );
        registry.register(
            "actuator_passes",
            "actuator passes that ended since start, by actuator and outcome (converged, in_progress, failed, lease_lost)",
            m.actuator_passes.clone(),
        );
        registry.register(
            "lease_renewal_margin_seconds",
            "lease this active site had left at each renewal of its lease that a majority acknowledged (about two thirds of the lease when healthy)",
            m.lease_renewal_margin.clone(),
        );
        registry.register(
            "lease_near_misses",
            "renewals of this active site's lease that took effect with less than one third of the lease left (a renewal round lost or late)",
            m.lease_near_misses.clone(),
        );
        registry.register(
            "certificate_expiry_seconds",
            "seconds until the certificate file in use expires (negative once it has), by which one (peer, ca, http, http_ca) and file",
            m.certificate_expiry.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts the refusals of these listening ports, each by its name.
    pub fn with_ports(self, ports: Vec<(&'static str, ConnectionSlots)>) -> Metrics {
        Metrics { ports, ..self }
    }

    /// Sets the refused-connection counters from the ports' slots.
    pub fn observe_connections(&self) {
        for (port, slots) in &self.ports {
            let Refused { full, source_share } = slots.refused();
            for (refusal, total) in [(Refusal::Full, full), (Refusal::SourceShare, source_share)] {
                let label = RefusedLabel { port: (*port).to_owned(), reason: refusal.label().to_owned() };
                self.connections_refused
                    .get_or_create(&label)
                    .inner()
                    .store(total, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Sets the reload counters from the last report.
    pub fn observe_reloads(&self, report: Option<&crate::reports::ReloadReport>) {
        let (applied, refused) = report.map_or((0, 0), |r| (r.applied_total, r.refused_total));
        for (result, total) in [("applied", applied), ("refused", refused)] {
            let label = ReloadLabel { result: result.to_owned() };
            self.config_reloads.get_or_create(&label).inner().store(total, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Sets every gauge from `status`.
    pub fn observe(&self, cfg: &ClusterConfig, status: &Status, active: bool) {
        self.active.set(i64::from(active));
        self.term.set(status.term.0);
        self.epoch.set(status.epoch.map_or(0, |e| e.0));
        self.paused.set(i64::from(status.paused));
        self.recovering.set(i64::from(status.recovering.is_some()));
        for site in cfg.ids().filter(|&id| cfg.priority(id) > 0) {
            let name = cfg.member(site).map(|m| m.name.clone()).unwrap_or_default();
            self.site_maintenance
                .get_or_create(&SiteLabel { site: name })
                .set(i64::from(status.maintenance.contains(site)));
        }
        self.pending.set(i64::from(status.pending_failover.is_some()));
        self.healthy.set(i64::from(status.local.healthy));
        let lease = if active { status.lease_remaining.map_or(0, |d| d.as_millis() as i64) } else { 0 };
        self.lease_remaining.set(lease);
        self.lease_duration.set(cfg.timers.lease_duration.as_millis() as i64);
        for p in &status.peers {
            let peer = cfg.member(p.id).map(|m| m.name.clone()).unwrap_or_default();
            self.reachable.get_or_create(&PeerLabel { peer }).set(i64::from(p.reachable));
        }
    }

    /// Sets the `_total` counters from the running totals.
    pub fn observe_counts(&self, counts: &Counts) {
        let set = |counter: &Total, total: u64| counter.inner().store(total, std::sync::atomic::Ordering::Relaxed);
        set(&self.elections_started, counts.elections_started);
        set(&self.elections_won, counts.elections_won);
        for (&role, &total) in &counts.role_changes {
            set(&self.role_changes.get_or_create(&RoleLabel { role: role.to_owned() }), total);
        }
        for (&cause, &total) in &counts.activations {
            set(&self.activations.get_or_create(&CauseLabel { cause: cause.to_owned() }), total);
        }
        for (family, totals) in [(&self.handoffs, &counts.handoffs), (&self.step_downs, &counts.step_downs)] {
            for (&reason, &total) in totals {
                set(&family.get_or_create(&ReasonLabel { reason: reason.to_owned() }), total);
            }
        }
        for ((actuator, outcome), &total) in &counts.actuator_passes {
            let label = PassLabel { actuator: actuator.clone(), outcome: outcome.clone() };
            set(&self.actuator_passes.get_or_create(&label), total);
        }
        self.lease_renewal_margin.set(&counts.lease_renewals);
        set(&self.lease_near_misses, counts.lease_renewals.near_misses);
    }

    /// Sets the certificate expiry gauge of each certificate in use at
    /// `now` (the files a reload replaced are dropped).
    pub fn observe_certificates(&self, certificates: &[CertificateReport], now: std::time::SystemTime) {
        self.certificate_expiry.clear();
        for c in certificates {
            let label = CertificateLabel { certificate: c.certificate.to_owned(), file: c.file.clone() };
            self.certificate_expiry.get_or_create(&label).set(crate::cert_expiry::seconds_left(c, now));
        }
    }

    /// Sets the config agreement gauge of every peer.
    pub fn observe_agreement(&self, cfg: &ClusterConfig, me: NodeId, mismatches: &[Mismatch]) {
        for m in cfg.ids().filter(|&id| id != me).filter_map(|id| cfg.member(id)) {
            let differs = mismatches.iter().any(|x| x.peer == m.name && x.refused);
            self.config_mismatch.get_or_create(&PeerLabel { peer: m.name.clone() }).set(i64::from(differs));
        }
    }

    /// Sets the actuator gauges from their reports.
    pub fn observe_actuators(&self, reports: &[ActuatorReport]) {
        // Passes of a site that is not active are not fenced: standby passes
        // write nothing, so this is 0 there.
        self.fence_ahead.set(reports.iter().filter_map(|r| r.fenced_by).max().unwrap_or(0));
        self.fence_unreadable.set(reports.iter().filter(|r| r.fence_unreadable).count() as i64);
        for r in reports {
            for state in ActuatorState::ALL {
                let label = ActuatorStateLabel { actuator: r.name.clone(), state: state.as_str().into() };
                self.actuator_state.get_or_create(&label).set(i64::from(r.state == state));
            }
            let label = ActuatorLabel { actuator: r.name.clone(), kind: r.kind.clone() };
            self.actuator_failures.get_or_create(&label).set(i64::from(r.consecutive_failures));
            self.actuator_observe.get_or_create(&label).set(i64::from(r.actuation == ActuationMode::Observe));
            if let Some(ms) = r.converge_ms {
                self.actuator_converge.get_or_create(&label).set(ms as i64);
            }
            if let Some(ms) = r.propagation_ms {
                self.actuator_propagation.get_or_create(&label).set(ms as i64);
            }
        }
    }

    /// Sets the MongoDB gauges from the monitor's report.
    pub fn observe_mongodb(&self, report: &MongoReport) {
        let set = MongoSetLabel { set: report.view.as_ref().map(|v| v.set.clone()).unwrap_or_default() };
        let reachable = report.error.is_none() && report.view.is_some();
        self.mongo_reachable.get_or_create(&set).set(i64::from(reachable));
        self.mongo_caught_up.get_or_create(&set).set(i64::from(report.caught_up));
        let Some(view) = &report.view else { return };
        self.mongo_majority.get_or_create(&set).set(i64::from(view.majority_writes_available));
        for m in &view.members {
            let label = MongoMemberLabel { member: m.host.clone(), site: m.site.clone().unwrap_or_default() };
            self.mongo_healthy.get_or_create(&label).set(i64::from(m.healthy));
            self.mongo_primary.get_or_create(&label).set(i64::from(m.state == "PRIMARY"));
            match m.lag_ms {
                Some(lag) => {
                    self.mongo_lag.get_or_create(&label).set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
                // Unknown now (down, or an arbiter): no stale figure.
                None => {
                    self.mongo_lag.remove(&label);
                }
            }
        }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotPolicy;

    #[test]
    fn refused_connections_are_counted_by_port_and_reason() {
        let http = ConnectionSlots::new(&SlotPolicy::shared(1, 1));
        let from = std::net::IpAddr::from([192, 0, 2, 1]);
        let _held = http.admit(from).expect("a free slot");
        for _ in 0..2 {
            assert!(http.admit(from).is_err());
        }
        assert!(http.admit([192, 0, 2, 2].into()).is_err());
        let metrics = Metrics::default().with_ports(vec![("http", http)]);
        metrics.observe_connections();
        let text = metrics.encode();
        for line in [
            "failover_connections_refused_total{port=\"http\",reason=\"per_source\"} 2",
            "failover_connections_refused_total{port=\"http\",reason=\"cap\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    #[test]
    fn running_totals_are_the_documented_total_counters() {
        use failover_core::{ActivationCause, Epoch, Event, RoleName, Term};
        let mut counts = Counts::new();
        let events = [
            Event::ElectionStarted { term: Term(2), approved: false, handoff: false },
            Event::Elected { epoch: Epoch(2), cause: ActivationCause::AutomaticFailover },
            Event::BecameActive { epoch: Epoch(2), cause: ActivationCause::AutomaticFailover },
        ];
        counts.count_step(RoleName::Standby, RoleName::Active, &events);
        counts.count_pass("dns", crate::counts::outcome::CONVERGED);
        for ms in [40, 2_000] {
            let margin = std::time::Duration::from_millis(ms);
            counts.lease_renewals.record(crate::lease_margin::Renewal { margin, near_miss: ms < 1_000 });
        }
        let metrics = Metrics::default();
        metrics.observe_counts(&counts);
        let text = metrics.encode();
        for line in [
            "failover_elections_started_total 1",
            "failover_elections_won_total 1",
            "failover_role_changes_total{role=\"active\"} 1",
            "failover_activations_total{cause=\"automatic_failover\"} 1",
            "failover_actuator_passes_total{actuator=\"dns\",outcome=\"converged\"} 1",
            "failover_handoffs_total{reason=\"switchover\"} 0",
            "failover_step_downs_total{reason=\"lease_expired\"} 0",
            "failover_lease_renewal_margin_seconds_count 2",
            "failover_lease_renewal_margin_seconds_sum 2.04",
            "failover_lease_renewal_margin_seconds_bucket{le=\"0.025\"} 0",
            "failover_lease_renewal_margin_seconds_bucket{le=\"0.05\"} 1",
            "failover_lease_renewal_margin_seconds_bucket{le=\"2.0\"} 2",
            "failover_lease_renewal_margin_seconds_bucket{le=\"+Inf\"} 2",
            "failover_lease_near_misses_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    #[test]
    fn the_certificate_gauge_shows_only_the_files_in_use() {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let cert = |file: &str, not_after_unix| CertificateReport {
            certificate: "peer",
            key: "tls.cert_file",
            file: file.into(),
            not_after_unix,
        };
        let metrics = Metrics::default();
        metrics.observe_certificates(&[cert("/old.pem", 1_000_100)], now);
        metrics.observe_certificates(&[cert("/new.pem", 999_000)], now);
        let text = metrics.encode();
        let line = "failover_certificate_expiry_seconds{certificate=\"peer\",file=\"/new.pem\"} -1000";
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        assert!(!text.contains("/old.pem"), "a replaced file is still shown:\n{text}");
    }
}
