//! Route 53 actuator: one hosted zone, changed with `ChangeResourceRecordSets`
//! batches fenced by a TXT record (see [`batch`] for why a batch is a
//! compare-and-set on the fence), signed with SigV4.
//!
//! Each pass reads the fencing record and the service names' record sets
//! (`ListResourceRecordSets`); a fence holding a newer epoch (or this
//! epoch of another site) is the fence alarm, and nothing is written over
//! it. When everything is already in place the pass writes nothing.
//! Otherwise, the lease checked just before, it sends the fenced batch and
//! follows the change with `GetChange` until Route 53 reports it `INSYNC`
//! (every Route 53 authoritative server has it); until then the pass is
//! [`Outcome::InProgress`], and a change still `PENDING` after
//! `sync_timeout` fails the pass. A batch Route 53 refuses is followed by a
//! read of the fence: if another site's newer epoch is there, the fence
//! alarm is raised with it.
//!
//! AWS error messages can name the account, users and roles: what
//! `/status` shows goes through [`crate::redact::aws_identifiers`]; the
//! daemon's log keeps the whole message.

pub mod api;
pub mod batch;
pub mod credentials;

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::api::{Api, ApiError, ChangeInfo};
use self::batch::{RecordSet, SERVICE_TYPES};
use self::credentials::{Credentials, Environment};
use super::{fence, observe};
use super::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
use crate::actuation_mode::ActuationMode;
use crate::settings::BadSetting;

/// Route 53's endpoint in the AWS partition.
pub const DEFAULT_ENDPOINT: &str = "https://route53.amazonaws.com";

/// `[[actuators.route53]]`: service names and a fencing record in one
/// hosted zone.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53Section {
    /// `act` or `observe` (default: `[actuators].actuation`, else `act`).
    #[serde(default)]
    pub actuation: Option<crate::settings::Choice<ActuationMode>>,
    /// Name in status and metrics (default `route53:<hosted_zone_id>`).
    pub name: Option<String>,
    /// The hosted zone's id, e.g. `Z0123456789ABCDEFGHIJ`.
    pub hosted_zone_id: String,
    /// Service names in the zone that must point at the active site.
    pub names: Vec<String>,
    /// Point the names at this target with a CNAME instead of A/AAAA.
    pub cname: Option<String>,
    /// This site's addresses for these names (default: `[actuators].addresses`).
    pub addresses: Option<Vec<IpAddr>>,
    /// TTL of the records written.
    #[serde(with = "humantime_serde", default = "default_ttl")]
    pub ttl: Duration,
    /// Name of the fencing TXT record, in the zone, not one of `names`.
    pub fence_name: String,
    /// Profile of the shared credentials and config files (default
    /// `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Region requests are signed for (Route 53 is global: `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint override, `http(s)://host[:port]`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Time limit of each request.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// How long a change may stay `PENDING` before the pass fails.
    #[serde(with = "humantime_serde", default = "default_sync_timeout")]
    pub sync_timeout: Duration,
}

fn default_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_sync_timeout() -> Duration {
    Duration::from_secs(120)
}

/// What the service names point at: addresses, or a CNAME's target
/// (fully qualified, lowercase).
type Pointing = super::pointing::Pointing<String>;

/// A change sent and not yet `INSYNC`.
#[derive(Clone, Debug)]
struct Pending {
    epoch: u64,
    id: String,
    sent: Instant,
}

/// A configured, checked Route 53 actuator.
#[derive(Clone, Debug)]
pub struct Route53Actuator {
    /// `act`, or `observe`: read the target, report, change nothing.
    pub actuation: ActuationMode,
    /// Unique name.
    pub name: String,
    zone: String,
    names: Vec<String>,
    pointing: Pointing,
    ttl: u32,
    fence: String,
    profile: Option<String>,
    env: Environment,
    site: String,
    api: Api,
    /// Time limit of each request.
    pub timeout: Duration,
    /// Time limit of a change's `PENDING` state.
    pub sync_timeout: Duration,
    pending: Arc<Mutex<Option<Pending>>>,
}

/// `text` as a fully qualified, lowercase DNS name, or why not.
fn dns_name(text: &str) -> Result<String, String> {
    let name = hickory_proto::rr::Name::from_str(text).map_err(|e| format!("{text:?} is not a DNS name: {e}"))?;
    if name.num_labels() == 0 {
        return Err(format!("{text:?} is the root, not a name in a zone"));
    }
    let ascii = name.to_ascii();
    if let Some(c) = ascii.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!(
            "{text:?} holds {c:?}: Route 53 lists such characters (a wildcard's `*` too) as octal escapes, which \
             this actuator does not compare; use a name of letters, digits, '-' and '_'"
        ));
    }
    Ok(api::normal_name(&ascii))
}

impl Route53Actuator {
    /// Checks a section for site `me`, with credentials from this
    /// process's environment; errors name the key (relative to the
    /// section) and the problem.
    pub fn build(s: &Route53Section, me: &str, site_addresses: &[IpAddr]) -> Result<Self, BadSetting> {
        Self::build_with(s, me, site_addresses, Environment::of_process())
    }

    /// [`Self::build`] with the environment given.
    pub fn build_with(
        s: &Route53Section,
        me: &str,
        site_addresses: &[IpAddr],
        env: Environment,
    ) -> Result<Self, BadSetting> {
        let err = |k: &str, p: String| BadSetting::new(k, p);
        let zone = s.hosted_zone_id.trim();
        let zone = zone.strip_prefix("/hostedzone/").unwrap_or(zone);
        if zone.is_empty() || !zone.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err(
                "hosted_zone_id",
                format!("{:?} is not a hosted zone id (like Z0123456789ABC)", s.hosted_zone_id),
            ));
        }
        if s.names.is_empty() {
            return Err(err("names", "list at least one service name".into()));
        }
        let mut names = Vec::new();
        for n in &s.names {
            let name = dns_name(n).map_err(|p| err("names", p))?;
            if names.contains(&name) {
                return Err(err("names", format!("{name} is listed twice")));
            }
            names.push(name);
        }
        let pointing =
            super::pointing::from_section(s.cname.as_deref(), s.addresses.as_deref(), site_addresses, dns_name)?;
        let fence = dns_name(&s.fence_name).map_err(|p| err("fence_name", p))?;
        if names.contains(&fence) {
            return Err(err("fence_name", format!("{fence} is one of the names; use a name of its own")));
        }
        let ttl = u32::try_from(s.ttl.as_secs())
            .ok()
            .filter(|t| *t <= 2_147_483_647)
            .ok_or_else(|| err("ttl", "too large".into()))?;
        if s.timeout.is_zero() {
            return Err(err("timeout", "must be above zero".into()));
        }
        if s.sync_timeout.is_zero() {
            return Err(err("sync_timeout", "must be above zero".into()));
        }
        if s.region.is_empty() || !s.region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(err("region", format!("{:?} is not a region name (like us-east-1)", s.region)));
        }
        let endpoint =
            reqwest::Url::parse(&s.endpoint).map_err(|e| err("endpoint", format!("{:?}: {e}", s.endpoint)))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(err("endpoint", "use an http:// or https:// URL with a host".into()));
        }
        if endpoint.path() != "/" || endpoint.query().is_some() || !endpoint.username().is_empty() {
            return Err(err("endpoint", "give the scheme, host and port only (no path, query or user)".into()));
        }
        if let Some(p) = &s.profile {
            if p.is_empty() || p.contains(['[', ']']) || p.trim() != p {
                return Err(err("profile", format!("{p:?} is not a profile name")));
            }
        }
        // Credentials are looked up again on every pass (a helper may
        // rotate them); none at all is a setting to fix now.
        if let Err(e) = credentials::resolve(&env, s.profile.as_deref()) {
            return Err(err("profile", e.to_string()));
        }
        let client = reqwest::Client::builder()
            .timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| err("endpoint", format!("cannot build an HTTP client: {e}")))?;
        let api = Api::new(endpoint, s.region.clone(), zone.to_owned(), client, s.timeout);
        Ok(Route53Actuator {
            actuation: ActuationMode::Act,
            name: s.name.clone().unwrap_or_else(|| format!("route53:{zone}")),
            zone: zone.to_owned(),
            names,
            pointing,
            ttl,
            fence,
            profile: s.profile.clone(),
            env,
            site: me.to_owned(),
            api,
            timeout: s.timeout,
            sync_timeout: s.sync_timeout,
            pending: Arc::default(),
        })
    }

    /// Upper bound on one pass: a read per name and the fence, a change,
    /// a status read, a fence read-back.
    pub fn pass_limit(&self) -> Duration {
        self.timeout * (self.names.len() as u32 + 5)
    }

    /// The fencing record's name (fully qualified, lowercase).
    pub fn fence_name(&self) -> &str {
        &self.fence
    }

    /// The record sets this site wants at its names.
    pub fn wanted(&self) -> Vec<RecordSet> {
        let mut out = Vec::new();
        for name in &self.names {
            let set = |rtype: &str, values: Vec<String>| RecordSet {
                name: name.clone(),
                rtype: rtype.into(),
                ttl: self.ttl,
                values,
            };
            match &self.pointing {
                Pointing::Cname(target) => out.push(set("CNAME", vec![target.clone()])),
                Pointing::Addresses(addresses) => {
                    let v4: Vec<String> = addresses.iter().filter(|a| a.is_ipv4()).map(ToString::to_string).collect();
                    let v6: Vec<String> = addresses.iter().filter(|a| a.is_ipv6()).map(ToString::to_string).collect();
                    for (rtype, mut values) in [("A", v4), ("AAAA", v6)] {
                        if !values.is_empty() {
                            values.sort();
                            out.push(set(rtype, values));
                        }
                    }
                }
            }
        }
        out
    }

    /// The fencing record set this site writes for `epoch`.
    pub fn fence_set(&self, epoch: u64) -> RecordSet {
        RecordSet {
            name: self.fence.clone(),
            rtype: "TXT".into(),
            ttl: self.ttl,
            values: vec![batch::txt_value(&batch::fence_text(epoch, &self.site))],
        }
    }

    fn credentials(&self) -> Result<Credentials, ActuateError> {
        credentials::resolve(&self.env, self.profile.as_deref())
            .map_err(|e| ActuateError::Refused { target: self.target(), detail: format!("profile: {e}") })
    }

    fn target(&self) -> String {
        format!("Route 53 zone {}", self.zone)
    }

    /// An API error as an actuation error whose text names the setting
    /// most likely at fault.
    fn failed(&self, what: &str, creds: &Credentials, e: ApiError) -> ActuateError {
        let target = self.target();
        match e {
            ApiError::TimedOut(after) => ActuateError::TimedOut { what: format!("{what} ({target})"), after },
            ApiError::Transport(detail) => {
                ActuateError::Unreachable { target, detail: format!("endpoint: {what}: {detail}") }
            }
            ApiError::BadAnswer(detail) => ActuateError::BadAnswer { target, detail: format!("{what}: {detail}") },
            ApiError::Signing(detail) => ActuateError::Refused { target, detail: format!("profile: {what}: {detail}") },
            ApiError::Aws { ref code, .. } => {
                let key = match code.as_str() {
                    "NoSuchHostedZone" => format!("hosted_zone_id {}", self.zone),
                    "InvalidChangeBatch" | "InvalidInput" => "names/fence_name".into(),
                    "NoSuchChange" => "the change id Route 53 gave".into(),
                    "Throttling" | "ThrottlingException" | "PriorRequestNotComplete" | "ServiceUnavailable" => {
                        "Route 53's request rate".into()
                    }
                    // InvalidClientTokenId, SignatureDoesNotMatch,
                    // AccessDenied, ExpiredToken and the like.
                    _ => format!("profile (credentials from {})", creds.source),
                };
                ActuateError::Refused { target, detail: format!("{what}: {key}: {e}") }
            }
        }
    }

    /// Reads the fence: its TXT record sets (one at most on Route 53).
    async fn read_fence(&self, creds: &Credentials) -> Result<Vec<RecordSet>, ActuateError> {
        let sets = self
            .api
            .record_sets_at(creds, &self.fence)
            .await
            .map_err(|e| self.failed("reading the fence", creds, e))?;
        Ok(sets.into_iter().filter(|s| s.rtype == "TXT").collect())
    }

    /// Observe mode: what a pass that read `found` service record sets and
    /// the fence `fence_read` would change (`wanted` and the fence of
    /// `epoch`), sorted as `apply` sorts them.
    fn would_change(&self, found: &[RecordSet], wanted: &[RecordSet], fence_read: &[RecordSet], epoch: u64) -> Outcome {
        let at = |sets: &[RecordSet], name: &str| -> (Vec<observe::Rr>, Vec<u32>) {
            let here: Vec<&RecordSet> = sets.iter().filter(|s| s.name == name).collect();
            let records = here.iter().flat_map(|s| s.values.iter().map(|v| (s.rtype.clone(), v.clone()))).collect();
            (records, here.iter().map(|s| s.ttl).collect())
        };
        let fence = [self.fence_set(epoch)];
        let (mut read, mut changes) = (Vec::new(), Vec::new());
        for (name, sets, want) in
            self.names.iter().map(|n| (n, found, wanted)).chain(std::iter::once((&self.fence, fence_read, &fence[..])))
        {
            let ((before, ttl_before), (after, ttl_after)) = (at(sets, name), at(want, name));
            if before != after {
                changes.push(observe::would_update(name, &before, &after));
            } else if ttl_before != ttl_after {
                changes.push(format!("would update {name} TTL {ttl_before:?} -> {ttl_after:?}"));
            }
            read.push(observe::read_at(name, &before));
        }
        Outcome::WouldChange { read: format!("hosted zone {}: {}", self.zone, read.join("; ")), changes }
    }

    /// `Err(Fenced)` if `read` holds a newer epoch than `epoch` (or
    /// `epoch` of another site), or a value this cluster never writes.
    fn check_fence(&self, read: &[RecordSet], epoch: u64) -> Result<(), ActuateError> {
        for value in read.iter().flat_map(|set| &set.values) {
            let parsed = batch::txt_text(value)
                .ok_or_else(|| fence::FenceValueError::Malformed { found: value.clone() })
                .and_then(crate::actuate::dns::parse_fence);
            let (held, site) = parsed.map_err(|problem| {
                let fix = format!(
                    "replace the record set by hand (e.g. aws route53 change-resource-record-sets: UPSERT {} TXT \
                     {} \"\\\"{}\\\"\")",
                    self.fence,
                    self.ttl,
                    batch::fence_text(epoch, &self.site)
                );
                fence::unreadable(&format!("the fencing record {}", self.fence), &problem, &fix)
            })?;
            if held > epoch || (held == epoch && site != self.site) {
                return Err(ActuateError::Fenced {
                    by: Some(held),
                    detail: format!(
                        "{} holds epoch {held} of site {site}, newer than this site's epoch {epoch}",
                        self.fence
                    ),
                });
            }
        }
        Ok(())
    }

    /// Follows the change in flight, if there is one for `epoch`:
    /// `Some(outcome)` while it is `PENDING`, `None` (and the time it took)
    /// once it is `INSYNC` or there is none.
    async fn follow(&self, creds: &Credentials, epoch: u64) -> Result<Result<Option<Duration>, Outcome>, ActuateError> {
        let pending = self.pending.lock().map(|p| p.clone()).unwrap_or(None);
        let Some(p) = pending.filter(|p| p.epoch == epoch) else {
            self.set_pending(None);
            return Ok(Ok(None));
        };
        let info = self.api.get_change(creds, &p.id).await.map_err(|e| self.failed("GetChange", creds, e))?;
        if info.status == "INSYNC" {
            self.set_pending(None);
            return Ok(Ok(Some(p.sent.elapsed())));
        }
        // Kept: every later pass follows it again and fails the same way
        // until it is INSYNC, rather than reading the records it wrote and
        // calling them converged while they may not have reached every
        // Route 53 server.
        if p.sent.elapsed() > self.sync_timeout {
            return Err(ActuateError::TimedOut {
                what: format!("change {} reaching INSYNC (sync_timeout)", p.id),
                after: self.sync_timeout,
            });
        }
        Ok(Err(Outcome::InProgress(format!(
            "change {} is {} for {} ms; waiting for INSYNC",
            p.id,
            info.status,
            p.sent.elapsed().as_millis()
        ))))
    }

    fn set_pending(&self, pending: Option<Pending>) {
        if let Ok(mut slot) = self.pending.lock() {
            *slot = pending;
        }
    }

    /// Sends the fenced batch built from what was read, for `epoch`. A
    /// batch Route 53 refuses is followed by a read of the fence: another
    /// site's newer epoch there is `Fenced`.
    pub async fn write(
        &self,
        creds: &Credentials,
        fence_read: &[RecordSet],
        services_read: &[RecordSet],
        epoch: u64,
    ) -> Result<ChangeInfo, ActuateError> {
        let changes = batch::plan(fence_read, self.fence_set(epoch), services_read, &self.wanted());
        let comment = format!("failover: site {} epoch {epoch}", self.site);
        match self.api.change(creds, batch::to_xml(&changes, &comment)).await {
            Ok(info) => Ok(info),
            Err(e) if e.code() == Some("InvalidChangeBatch") || e.code() == Some("InvalidInput") => {
                let now = self.read_fence(creds).await?;
                self.check_fence(&now, epoch)?;
                Err(self.failed("ChangeResourceRecordSets", creds, e))
            }
            Err(e) => Err(self.failed("ChangeResourceRecordSets", creds, e)),
        }
    }

    /// One pass: follow a change in flight, read, fence-check, write if
    /// anything differs, follow the change.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        // While draining, the names keep pointing here: only the site that
        // takes over knows its own addresses, and it writes them next.
        let Some(epoch) = goal.epoch() else {
            self.set_pending(None);
            return Ok(Outcome::Converged(Applied { detail: "standby".into(), propagation: None }));
        };
        let creds = self.credentials()?;
        let synced = match self.follow(&creds, epoch).await? {
            Ok(synced) => synced,
            Err(waiting) => return Ok(waiting),
        };
        let fence_read = self.read_fence(&creds).await?;
        self.check_fence(&fence_read, epoch)?;
        let mut services = Vec::new();
        for name in &self.names {
            let sets =
                self.api.record_sets_at(&creds, name).await.map_err(|e| self.failed("reading the names", &creds, e))?;
            services.extend(sets.into_iter().filter(|s| SERVICE_TYPES.contains(&s.rtype.as_str())));
        }
        let mut wanted = self.wanted();
        let mut found = services.clone();
        for sets in [&mut wanted, &mut found] {
            for s in sets.iter_mut() {
                s.values.sort();
            }
            sets.sort_by(|a, b| (&a.name, &a.rtype).cmp(&(&b.name, &b.rtype)));
        }
        let fence_in_place = fence_read == [self.fence_set(epoch)];
        if fence_in_place && found == wanted {
            return Ok(Outcome::Converged(Applied {
                detail: match synced {
                    Some(took) => format!(
                        "updated {} name(s) and fence to epoch {epoch}; INSYNC after {} ms",
                        self.names.len(),
                        took.as_millis()
                    ),
                    None => format!("{} name(s) already point here; fence epoch {epoch}", self.names.len()),
                },
                propagation: synced,
            }));
        }
        if self.actuation == ActuationMode::Observe {
            return Ok(self.would_change(&found, &wanted, &fence_read, epoch));
        }
        lease.check()?;
        let sent = Instant::now();
        let info = self.write(&creds, &fence_read, &services, epoch).await?;
        if info.status == "INSYNC" {
            let took = sent.elapsed();
            return Ok(Outcome::Converged(Applied {
                detail: format!(
                    "updated {} name(s) and fence to epoch {epoch}; change {} INSYNC after {} ms",
                    self.names.len(),
                    info.id,
                    took.as_millis()
                ),
                propagation: Some(took),
            }));
        }
        self.set_pending(Some(Pending { epoch, id: info.id.clone(), sent }));
        Ok(Outcome::InProgress(format!("change {} sent for epoch {epoch}; waiting for INSYNC", info.id)))
    }
}

#[cfg(test)]
mod tests;
