//! DNS actuator: RFC 2136 dynamic updates signed with TSIG, built with the
//! Hickory DNS crates.
//!
//! One update per pass and zone replaces the service names' A/AAAA (or
//! CNAME) records with this site's and rewrites the fencing TXT record
//! (`epoch=N site=S`). The update carries a prerequisite that the fencing
//! record still holds exactly what this pass read, so the primary server
//! itself refuses an update from a site that read an older state (a
//! compare-and-set); a pass never writes when the record holds a newer
//! epoch. After writing, every verify server is asked (with
//! `hickory-resolver`, no cache) until it answers the new data, and the
//! time this took is reported. A pass that finds everything in place writes
//! nothing.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsHandle, DnsMultiplexer};
use hickory_net::NetError;
use hickory_proto::op::{DnsRequest, Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use serde::Deserialize;

use crate::host_port::HostPort;

use super::fence::{self, FenceValueError};
use super::observe;
use super::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
use crate::actuation_mode::ActuationMode;

mod verify;

/// `[[actuators.dns]]`: one zone on one primary server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// `act` or `observe` (default: `[actuators].actuation`, else `act`).
    #[serde(default)]
    pub actuation: Option<crate::settings::Choice<ActuationMode>>,
    /// Name in status and metrics (default `dns:<zone>`).
    pub name: Option<String>,
    /// The primary server that accepts updates, `host:port` (TCP is used;
    /// a name is resolved at each pass, its first address used).
    pub server: HostPort,
    /// The zone, e.g. `example.com.`.
    pub zone: String,
    /// Service names in the zone that must point at the active site.
    pub names: Vec<String>,
    /// Point the names at this target with a CNAME instead of A/AAAA.
    pub cname: Option<String>,
    /// This site's addresses for these names (default: `[actuators].addresses`).
    pub addresses: Option<Vec<IpAddr>>,
    /// TTL of the records written.
    #[serde(with = "humantime_serde", default = "default_ttl")]
    pub ttl: Duration,
    /// Name of the fencing TXT record (default `_failover.<zone>`).
    pub fence_name: Option<String>,
    /// TSIG key name, as in the server's `key` statement.
    pub tsig_key_name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub tsig_algorithm: String,
    /// The TSIG secret (base64); better `tsig_secret_file`.
    pub tsig_secret: Option<String>,
    /// File holding the TSIG secret (base64).
    pub tsig_secret_file: Option<PathBuf>,
    /// Authoritative servers that must answer the new data before the pass
    /// counts as converged (default: `server`), `host:port` each; a name is
    /// resolved at each pass, and every address it has must answer.
    #[serde(default)]
    pub verify_servers: Vec<HostPort>,
    /// Time limit of each request.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// How long the verify servers may take to answer the new data.
    #[serde(with = "humantime_serde", default = "default_propagation")]
    pub propagation_timeout: Duration,
}

fn default_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_algorithm() -> String {
    "hmac-sha256".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_propagation() -> Duration {
    Duration::from_secs(30)
}

/// What the service names point at.
pub type Pointing = super::pointing::Pointing<Name>;

/// A configured, checked DNS actuator.
#[derive(Clone)]
pub struct DnsActuator {
    /// `act`, or `observe`: read the target, report, change nothing.
    pub actuation: ActuationMode,
    /// Unique name.
    pub name: String,
    server: HostPort,
    zone: Name,
    names: Vec<Name>,
    pointing: Pointing,
    ttl: u32,
    fence: Name,
    signer: TSigner,
    verify: Vec<HostPort>,
    site: String,
    /// Time limit of each request.
    pub timeout: Duration,
    /// Time limit of the propagation check.
    pub propagation_timeout: Duration,
}

impl std::fmt::Debug for DnsActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsActuator")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("names", &self.names)
            .field("key", self.signer.signer_name())
            .finish_non_exhaustive()
    }
}

fn fqdn(text: &str) -> Result<Name, String> {
    let mut name = Name::from_str(text).map_err(|e| format!("{text:?} is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A TSIG signer from a key name, algorithm name and base64 secret.
pub fn signer(key_name: &str, algorithm: &str, secret_base64: &str) -> Result<TSigner, String> {
    let algorithm = match algorithm {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        other => return Err(format!("{other:?}: use \"hmac-sha256\", \"hmac-sha384\" or \"hmac-sha512\"")),
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret_base64.trim())
        .map_err(|e| format!("the TSIG secret is not base64: {e}"))?;
    if key.is_empty() {
        return Err("the TSIG secret is empty".into());
    }
    TSigner::new(key, algorithm, fqdn(key_name)?, 300).map_err(|e| e.to_string())
}

/// The text of the fencing record for `epoch` held by `site`.
pub fn fence_text(epoch: u64, site: &str) -> String {
    format!("epoch={epoch} site={site}")
}

/// Reads `epoch=N site=S` back, strictly: exactly the text
/// [`fence_text`] writes (one space, the epoch as
/// [`fence::parse_epoch`] reads it, a site name without spaces).
pub fn parse_fence(text: &str) -> Result<(u64, String), FenceValueError> {
    let malformed = || FenceValueError::Malformed { found: format!("{text:?}") };
    let (epoch, site) = text
        .strip_prefix("epoch=")
        .and_then(|rest| rest.split_once(" site="))
        .filter(|(_, site)| !site.is_empty() && !site.contains(char::is_whitespace) && !site.contains('='))
        .ok_or_else(malformed)?;
    let epoch = fence::parse_epoch(epoch).map_err(|e| match e {
        FenceValueError::Malformed { .. } => malformed(),
        FenceValueError::OutOfRange { found } => {
            FenceValueError::OutOfRange { found: format!("epoch {found} in {text:?}") }
        }
    })?;
    Ok((epoch, site.to_owned()))
}

fn txt_strings(data: &RData) -> Option<String> {
    match data {
        RData::TXT(txt) => Some(txt.txt_data.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()),
        _ => None,
    }
}

impl DnsActuator {
    /// Checks a section for site `me`; errors name the key (relative to the
    /// section) and the problem.
    pub fn build(s: &DnsSection, me: &str, site_addresses: &[IpAddr]) -> Result<Self, crate::settings::BadSetting> {
        let err = |k: &str, p: String| crate::settings::BadSetting::new(k, p);
        let zone = fqdn(&s.zone).map_err(|p| err("zone", p))?;
        if s.names.is_empty() {
            return Err(err("names", "list at least one service name".into()));
        }
        let mut names = Vec::new();
        for n in &s.names {
            let name = fqdn(n).map_err(|p| err("names", p))?;
            if !zone.zone_of(&name) {
                return Err(err("names", format!("{name} is not in zone {zone}")));
            }
            names.push(name);
        }
        let pointing = super::pointing::from_section(s.cname.as_deref(), s.addresses.as_deref(), site_addresses, fqdn)?;
        let fence = match &s.fence_name {
            Some(f) => fqdn(f).map_err(|p| err("fence_name", p))?,
            None => Name::from_str("_failover")
                .and_then(|l| l.append_domain(&zone))
                .map_err(|e| err("zone", e.to_string()))?,
        };
        if !zone.zone_of(&fence) || names.contains(&fence) {
            return Err(err("fence_name", format!("{fence} must be in zone {zone} and not one of the names")));
        }
        let secret = match (&s.tsig_secret, &s.tsig_secret_file) {
            (Some(_), Some(_)) => {
                return Err(err("tsig_secret", "set tsig_secret or tsig_secret_file, not both".into()))
            }
            (Some(t), None) => t.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| err("tsig_secret_file", format!("cannot read {}: {e}", path.display())))?,
            (None, None) => return Err(err("tsig_secret_file", "a TSIG secret is required".into())),
        };
        let signer = signer(&s.tsig_key_name, &s.tsig_algorithm, &secret).map_err(|p| err("tsig_secret", p))?;
        let ttl = u32::try_from(s.ttl.as_secs()).map_err(|_| err("ttl", "too large".into()))?;
        if s.timeout.is_zero() {
            return Err(err("timeout", "must be above zero".into()));
        }
        Ok(DnsActuator {
            actuation: ActuationMode::Act,
            name: s.name.clone().unwrap_or_else(|| format!("dns:{zone}")),
            server: s.server.clone(),
            zone,
            names,
            pointing,
            ttl,
            fence,
            signer,
            verify: if s.verify_servers.is_empty() { vec![s.server.clone()] } else { s.verify_servers.clone() },
            site: me.to_owned(),
            timeout: s.timeout,
            propagation_timeout: s.propagation_timeout,
        })
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> ActuateError {
        ActuateError::Unreachable { target: format!("DNS server {}", self.server), detail: detail.to_string() }
    }

    /// The primary's address now: its name resolved afresh (the first
    /// address it has), or its IP literal.
    async fn server_address(&self) -> Result<SocketAddr, ActuateError> {
        match tokio::time::timeout(self.timeout, self.server.resolve()).await {
            Ok(Ok(found)) => Ok(found[0]),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Err(_) => Err(self.unreachable(format!("{} did not resolve within {:?}", self.server, self.timeout))),
        }
    }

    async fn client(&self) -> Result<Client<TokioRuntimeProvider>, ActuateError> {
        let server = self.server_address().await?;
        let (connect, handle) = TcpClientStream::new(server, None, Some(self.timeout), TokioRuntimeProvider::default());
        let stream = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(self.unreachable(e)),
            Err(_) => return Err(self.unreachable(format!("no connection within {:?}", self.timeout))),
        };
        let mux = DnsMultiplexer::new(stream, handle).with_timeout(self.timeout).with_signer(self.signer.clone());
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(mux);
        tokio::spawn(background);
        Ok(client)
    }

    async fn exchange(&self, client: &Client<TokioRuntimeProvider>, message: Message) -> Result<Message, ActuateError> {
        let signed = message.metadata.op_code == OpCode::Update;
        let mut responses = client.send(DnsRequest::from(message));
        match tokio::time::timeout(self.timeout, responses.next()).await {
            Err(_) => {
                Err(ActuateError::TimedOut { what: format!("DNS request to {}", self.server), after: self.timeout })
            }
            Ok(None) => Err(self.unreachable("the connection closed without an answer")),
            // A server that rejects the key answers unsigned (BADKEY or
            // BADSIG), which fails verification here before the answer can
            // be read: a signed query of the zone's SOA learns which.
            Ok(Some(Err(e))) if signed && !matches!(e, NetError::Io(_) | NetError::Timeout) => {
                use super::signed_query::{query, SignedQueryError};
                let server = self.server_address().await?;
                let why = match query(server, &self.signer, &self.zone, RecordType::SOA, self.timeout).await {
                    Err(SignedQueryError::Unverified { detail, .. }) => detail,
                    _ => format!("the server most likely rejected the key (wrong name, secret or algorithm?): {e}"),
                };
                Err(ActuateError::Refused {
                    target: format!("DNS server {}", self.server),
                    detail: format!(
                        "TSIG: the answer to the signed update is not signed with key {}: {why}",
                        self.signer.signer_name()
                    ),
                })
            }
            Ok(Some(Err(e))) => Err(self.unreachable(e)),
            Ok(Some(Ok(response))) => Ok(response.into_message()),
        }
    }

    /// The records of `rtype` at `name` on the primary.
    async fn read(
        &self,
        client: &Client<TokioRuntimeProvider>,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Vec<RData>, ActuateError> {
        let mut query = Message::query();
        query.add_query(Query::query(name.clone(), rtype));
        query.metadata.recursion_desired = false;
        let answer = self.exchange(client, query).await?;
        match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            code => {
                return Err(ActuateError::Refused {
                    target: format!("DNS server {}", self.server),
                    detail: format!("query for {name} {rtype} answered {code}"),
                })
            }
        }
        Ok(answer.answers.into_iter().filter(|r| r.name == *name && r.record_type() == rtype).map(|r| r.data).collect())
    }

    /// The fencing record's strings, read with a TSIG-signed query whose
    /// answer must be signed with the same key: an answer spoofed on the
    /// way cannot pass for a fence.
    async fn read_fence(&self) -> Result<Vec<String>, ActuateError> {
        use super::signed_query::{query, SignedQueryError};
        let target = || format!("DNS server {}", self.server);
        let server = self.server_address().await?;
        let answer = match query(server, &self.signer, &self.fence, RecordType::TXT, self.timeout).await {
            Ok(answer) => answer.into_message(),
            Err(SignedQueryError::TimedOut(after)) => {
                return Err(ActuateError::TimedOut { what: format!("fence query to {}", self.server), after })
            }
            Err(SignedQueryError::Io(e)) => return Err(self.unreachable(e)),
            Err(e) => return Err(ActuateError::Refused { target: target(), detail: format!("fence query: {e}") }),
        };
        match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            code => {
                return Err(ActuateError::Refused {
                    target: target(),
                    detail: format!("query for {} TXT answered {code}", self.fence),
                })
            }
        }
        Ok(answer
            .answers
            .iter()
            .filter(|r| r.name == self.fence && r.record_type() == RecordType::TXT)
            .filter_map(|r| txt_strings(&r.data))
            .collect())
    }

    /// The records this site wants at each name.
    fn wanted(&self) -> Vec<RData> {
        match &self.pointing {
            Pointing::Cname(target) => vec![RData::CNAME(CNAME(target.clone()))],
            Pointing::Addresses(addresses) => addresses
                .iter()
                .map(|ip| match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                })
                .collect(),
        }
    }

    /// Builds the fenced update: if the fencing record still holds exactly
    /// `expected` (or does not exist when `expected` is empty), replace the
    /// names' records with this site's and the fencing record with `epoch`.
    pub fn update_message(&self, expected: &[String], epoch: u64) -> Message {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone()).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_zone(zone);
        if expected.is_empty() {
            // RFC 2136 2.4.3: RRset does not exist.
            let mut none = Record::update0(self.fence.clone(), 0, RecordType::TXT).into_record_of_rdata();
            none.dns_class = DNSClass::NONE;
            message.add_pre_requisite(none);
        } else {
            // RFC 2136 2.4.2: RRset exists, value dependent.
            for text in expected {
                let mut exact = Record::from_rdata(self.fence.clone(), 0, RData::TXT(TXT::new(vec![text.clone()])));
                exact.dns_class = DNSClass::IN;
                message.add_pre_requisite(exact);
            }
        }
        let delete = |name: &Name, rtype: RecordType| {
            let mut r = Record::update0(name.clone(), 0, rtype).into_record_of_rdata();
            r.dns_class = DNSClass::ANY;
            r
        };
        for name in &self.names {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                message.add_update(delete(name, rtype));
            }
            for data in self.wanted() {
                message.add_update(Record::from_rdata(name.clone(), self.ttl, data));
            }
        }
        message.add_update(delete(&self.fence, RecordType::TXT));
        let fence = RData::TXT(TXT::new(vec![fence_text(epoch, &self.site)]));
        message.add_update(Record::from_rdata(self.fence.clone(), self.ttl, fence));
        message
    }

    /// Sends the fenced update (see [`Self::update_message`]). A fencing
    /// record that changed since it was read gives `Refused` with NXRRSET.
    pub async fn write(&self, expected: &[String], epoch: u64) -> Result<(), ActuateError> {
        let client = self.client().await?;
        self.send_update(&client, expected, epoch).await
    }

    async fn send_update(
        &self,
        client: &Client<TokioRuntimeProvider>,
        expected: &[String],
        epoch: u64,
    ) -> Result<(), ActuateError> {
        let answer = self.exchange(client, self.update_message(expected, epoch)).await?;
        let target = format!("DNS server {}", self.server);
        match answer.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NXRRSet | ResponseCode::YXRRSet => Err(ActuateError::Refused {
                target,
                detail: format!(
                    "{}: the fencing record {} changed since it was read (another site wrote it)",
                    answer.metadata.response_code, self.fence
                ),
            }),
            ResponseCode::NotAuth => Err(ActuateError::Refused {
                target,
                detail: format!(
                    "NOTAUTH: TSIG key {} was not accepted (wrong key or secret?)",
                    self.signer.signer_name()
                ),
            }),
            code => Err(ActuateError::Refused { target, detail: format!("update answered {code}") }),
        }
    }

    /// One pass: read, fence-check, write if anything differs, verify. In
    /// observe mode it reads every name and the fence and reports what it
    /// would write instead of writing.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        // While draining, the names keep pointing here: only the site that
        // takes over knows its own addresses, and it writes them next.
        let Some(epoch) = goal.epoch() else {
            return Ok(Outcome::Converged(Applied { detail: "standby".into(), propagation: None }));
        };
        let current_fence = self.read_fence().await?;
        let client = self.client().await?;
        let mine = fence_text(epoch, &self.site);
        for text in &current_fence {
            let (held, site) = parse_fence(text).map_err(|problem| {
                let fix = format!(
                    "replace it by hand (nsupdate, with the TSIG key: update delete {fence} TXT, then update add \
                     {fence} {ttl} TXT \"{mine}\")",
                    fence = self.fence,
                    ttl = self.ttl
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
        let wanted: BTreeSet<String> = self.wanted().iter().map(|d| d.to_string()).collect();
        let observing = self.actuation == ActuationMode::Observe;
        let typed = |data: &[RData]| -> Vec<observe::Rr> {
            data.iter().map(|d| (d.record_type().to_string(), d.to_string())).collect()
        };
        let wanted_records = typed(&self.wanted());
        let fence_in_place = current_fence == [mine.clone()];
        let mut in_place = fence_in_place;
        // What observe mode reports: what it read, what it would change.
        let (mut read, mut changes) = (Vec::new(), Vec::new());
        for name in &self.names {
            if !in_place && !observing {
                break;
            }
            let mut seen = Vec::new();
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                seen.extend(typed(&self.read(&client, name, rtype).await?));
            }
            let (name, data): (String, BTreeSet<String>) =
                (name.to_string(), seen.iter().map(|(_, d)| d.clone()).collect());
            if data != wanted {
                in_place = false;
                changes.push(observe::would_update(&name, &seen, &wanted_records));
            }
            read.push(observe::read_at(&name, &seen));
        }
        if in_place {
            return Ok(Outcome::Converged(Applied {
                detail: format!("{} name(s) already point here; fence epoch {epoch}", self.names.len()),
                propagation: None,
            }));
        }
        if observing {
            let txt = |texts: &[String]| -> Vec<observe::Rr> {
                texts.iter().map(|t| ("TXT".to_owned(), format!("{t:?}"))).collect()
            };
            let fence = self.fence.to_string();
            if !fence_in_place {
                changes.push(observe::would_update(&fence, &txt(&current_fence), &txt(std::slice::from_ref(&mine))));
            }
            read.push(observe::read_at(&fence, &txt(&current_fence)));
            return Ok(Outcome::WouldChange { read: read.join("; "), changes });
        }
        lease.check()?;
        let written = std::time::Instant::now();
        self.send_update(&client, &current_fence, epoch).await?;
        self.verify(&mine, &wanted).await?;
        let took = written.elapsed();
        Ok(Outcome::Converged(Applied {
            detail: format!(
                "updated {} name(s) and fence to epoch {epoch}; {} verify server(s) answered in {} ms",
                self.names.len(),
                self.verify.len(),
                took.as_millis()
            ),
            propagation: Some(took),
        }))
    }
}

#[cfg(test)]
mod tests;
