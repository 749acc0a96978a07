//! The daemon's configuration: a TOML file plus `FAILOVER_` environment
//! overrides (through the `config` crate), validated before anything starts.
//! Every error names the file, the key and what is wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_core::{ClusterConfig, FailbackPolicy, FailoverMode, Member, MemberKind, Policy, Timers};
use serde::Deserialize;

mod commands;
mod location;
mod members;
#[cfg(test)]
mod tests;

pub use commands::MAX_DURATION;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Which member this process is.
    pub node: NodeSection,
    /// Cluster-wide protocol settings (the same file section on every node).
    pub cluster: ClusterSection,
    /// Every member, this one included.
    pub members: Vec<MemberSection>,
    /// Admin API settings.
    #[serde(default)]
    pub admin: AdminSection,
    /// Hooks run on role changes (sites only).
    #[serde(default)]
    pub hooks: HooksSection,
    /// Local health checks (sites only).
    #[serde(default)]
    pub checks: Vec<CheckSection>,
    /// Mutual TLS between nodes (all three files, or none).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// What this site does to traffic while it is active (sites only).
    #[serde(default)]
    pub actuators: crate::actuate::ActuatorsSection,
    /// The MongoDB replica set beside the sites (sites only).
    #[serde(default)]
    pub mongodb: Option<crate::mongo::MongoSection>,
}

/// `[tls]`: PEM files; the node's certificate must name the node (DNS SAN).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The cluster CA certificate.
    pub ca_file: PathBuf,
    /// This node's certificate.
    pub cert_file: PathBuf,
    /// This node's private key.
    pub key_file: PathBuf,
}

/// The TLS material, read and checked at start.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca: Vec<u8>,
    /// This node's certificate (PEM).
    pub cert: Vec<u8>,
    /// This node's key (PEM).
    pub key: Vec<u8>,
}

/// `[node]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// This member's name; must be one of `[[members]]`.
    pub name: String,
    /// Where the durable state file lives.
    pub state_dir: PathBuf,
    /// `human` or `json`.
    #[serde(default = "default_log_format")]
    pub log_format: String,
}

fn default_log_format() -> String {
    "human".into()
}

/// `[cluster]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This cluster's name: the same on every node, unlike any other
    /// cluster's, with the characters of a member name. Each node writes it
    /// into its state file and refuses a file that names another cluster.
    pub name: String,
    /// `automatic` or `manual`.
    #[serde(default = "default_mode")]
    pub failover_mode: String,
    /// `automatic` or `manual`.
    #[serde(default = "default_mode_manual")]
    pub failback: String,
    /// Heartbeat interval, e.g. `"200ms"`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Lease, e.g. `"1s"`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Election jitter.
    #[serde(with = "humantime_serde", default = "default_jitter")]
    pub election_jitter: Duration,
    /// Clock drift bound in ppm.
    #[serde(default = "default_drift")]
    pub max_drift_ppm: u32,
    /// Actuator re-assertion interval.
    #[serde(with = "humantime_serde", default = "default_actuation")]
    pub actuation_interval: Duration,
    /// Failback stabilisation delay.
    #[serde(with = "humantime_serde", default = "default_failback_delay")]
    pub failback_delay: Duration,
    /// Cooldown after an automatic failover.
    #[serde(with = "humantime_serde", default = "default_cooldown")]
    pub failover_cooldown: Duration,
    /// Drain time before a planned handoff.
    #[serde(with = "humantime_serde", default)]
    pub drain: Duration,
    /// How long a site that failed `pre_promote` stays out.
    #[serde(with = "humantime_serde", default = "default_declined")]
    pub declined_backoff: Duration,
    /// Must be `true` to run without `[tls]`: then nodes do not
    /// authenticate each other, and anyone who reaches a peer port can vote
    /// and grant leases as any member.
    #[serde(default)]
    pub allow_unauthenticated_peers: bool,
}

fn default_mode() -> String {
    "automatic".into()
}
fn default_mode_manual() -> String {
    "manual".into()
}
fn default_jitter() -> Duration {
    Timers::default().election_jitter
}
fn default_drift() -> u32 {
    Timers::default().max_drift_ppm
}
fn default_actuation() -> Duration {
    Timers::default().actuation_interval
}
fn default_failback_delay() -> Duration {
    Timers::default().failback_delay
}
fn default_cooldown() -> Duration {
    Timers::default().failover_cooldown
}
fn default_declined() -> Duration {
    Timers::default().declined_backoff
}

/// `[[members]]`. The name must be a valid member name
/// ([`crate::member_name`]); the addresses must be ones the other nodes can
/// connect to (no `0.0.0.0`, `[::]` or port 0), each used once in the
/// cluster. The node binds its own two addresses.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    /// Unique name.
    pub name: String,
    /// `site` or `witness`.
    pub kind: String,
    /// Priority 0..=1000 (sites only).
    #[serde(default)]
    pub priority: Option<u16>,
    /// 0 or 1.
    #[serde(default = "one")]
    pub votes: u8,
    /// gRPC address peers use to reach it.
    pub peer_address: SocketAddr,
    /// HTTP address of its status and admin endpoints.
    pub http_address: SocketAddr,
}

fn one() -> u8 {
    1
}

/// `[admin]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// The admin token itself; better set as `FAILOVER_ADMIN__TOKEN` in the
    /// environment than written in the file.
    pub token: Option<String>,
    /// File holding the admin token.
    pub token_file: Option<PathBuf>,
    /// Must be set to `true` to run mutating admin calls without a token.
    #[serde(default)]
    pub allow_without_token: bool,
    /// Refusals of one source are counted over this window; after
    /// [`crate::admin_auth::REFUSALS_ALLOWED`] of them it gets 429 until the
    /// window has passed (above zero, at most [`MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_refusal_window")]
    pub refusal_window: Duration,
    /// Whether a node that cannot carry out an admin call itself may send
    /// it, with the caller's token, over plain HTTP to the node that can.
    /// When false it answers with that node's name and HTTP address
    /// instead, and `failoverctl` calls it there.
    #[serde(default)]
    pub forward_token_over_http: bool,
    /// PEM certificate chain for the HTTP port; with `tls_key_file` the
    /// port speaks only HTTPS ([`crate::http_tls`]).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates trusted, beside the system's, when this node
    /// calls another node's HTTPS port.
    pub tls_ca_file: Option<PathBuf>,
}

fn default_refusal_window() -> Duration {
    crate::admin_auth::DEFAULT_REFUSAL_WINDOW
}

/// A file without `[admin]` gets the same defaults as an empty `[admin]`.
impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            token: None,
            token_file: None,
            allow_without_token: false,
            refusal_window: default_refusal_window(),
            forward_token_over_http: false,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        }
    }
}

/// `[hooks]`: commands run through `sh -c` with only `PATH`,
/// `FAILOVER_EPOCH`, `FAILOVER_SITE`, `FAILOVER_REASON`, `FAILOVER_HOOK` and
/// the variables of `pass_env` in the environment ([`crate::shell`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    /// Runs before taking the active role; non-zero exit declines it.
    pub pre_promote: Option<String>,
    /// Runs after taking the active role.
    pub post_promote: Option<String>,
    /// Runs after leaving the active role.
    pub on_demote: Option<String>,
    /// Time limit for each hook (above zero, at most [`MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_hook_timeout")]
    pub timeout: Duration,
    /// Variables of the daemon's environment passed on to the hooks.
    #[serde(default)]
    pub pass_env: Vec<String>,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A file without `[hooks]` gets the same defaults as an empty `[hooks]`.
impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            pre_promote: None,
            post_promote: None,
            on_demote: None,
            timeout: default_hook_timeout(),
            pass_env: Vec::new(),
        }
    }
}

/// `[[checks]]`: one local health check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// Name shown in status.
    pub name: String,
    /// `http`, `tcp` or `command`.
    pub kind: String,
    /// URL (http), address (tcp) or shell command (command).
    pub target: String,
    /// Expected HTTP status (http only; default 200).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Substring the HTTP body must contain (http only).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// How often it runs (above zero, at most [`MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_check_interval")]
    pub interval: Duration,
    /// Time limit of one run (above zero, at most [`MAX_DURATION`]).
    #[serde(with = "humantime_serde", default = "default_check_timeout")]
    pub timeout: Duration,
    /// Variables of the daemon's environment passed on to the command
    /// (command checks only; see [`crate::shell`]).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Consecutive passes to count as healthy.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures to count as unhealthy.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_check_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// A configuration that cannot be used, with where and why.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read or parsed.
    #[error("{file}: {problem}")]
    Load {
        /// The file.
        file: String,
        /// The parser's message, which names the key (not a source: the
        /// message is the whole of it, and printing a chain would repeat it).
        problem: String,
    },
    /// Several parts of the file are wrong: the first mistake of each.
    #[error("{} problems:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Several(Vec<SettingsError>),
    /// A value is wrong.
    #[error("{file}{}: {key}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        file: String,
        /// The line the key is on, when it is in the file (not set from the
        /// environment).
        line: Option<usize>,
        /// The key.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

/// Why a file without `[tls]` is refused unless it opts in.
pub const UNAUTHENTICATED_PEERS: &str = "no [tls] section: without mutual TLS the nodes do not authenticate each \
     other, and anyone who can reach a peer port can vote and grant leases as any member (and so make a site \
     active, or two). Create certificates with `failoverctl certs init --nodes NAME,NAME,... --out DIR` and add \
     [tls] with ca_file, cert_file and key_file; or, on a network nobody else can reach, set \
     cluster.allow_unauthenticated_peers = true";

/// A validated configuration, ready to run.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The raw settings.
    pub settings: Settings,
    /// The protocol view of the cluster.
    pub cluster: ClusterConfig,
    /// This node's id in `cluster`.
    pub me: failover_core::NodeId,
    /// The admin token, if one is configured.
    pub token: Option<String>,
    /// Mutual TLS material, if configured.
    pub tls: Option<TlsFiles>,
    /// TLS for the HTTP port, if configured.
    pub http_tls: Option<crate::http_tls::HttpTls>,
    /// The actuators, built and checked.
    pub actuators: Vec<crate::actuate::Actuator>,
    /// The MongoDB settings, checked.
    pub mongodb: Option<crate::mongo::MongoLink>,
}

impl Loaded {
    /// This member's own section.
    pub fn my_member(&self) -> &MemberSection {
        &self.settings.members[self.me.index()]
    }
}

/// Reads `path` with `FAILOVER_` environment overrides (`__` separates
/// levels, e.g. `FAILOVER_NODE__STATE_DIR`) and validates it.
pub fn load(path: &Path) -> Result<Loaded, SettingsError> {
    let file = path.display().to_string();
    let raw = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("FAILOVER").prefix_separator("_").separator("__").try_parsing(true),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Settings>())
        .map_err(|e| SettingsError::Load { file: file.clone(), problem: location::dotted(&e.to_string()) })?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    validate(raw, &file).map_err(|e| location::with_lines(e, &text))
}

fn invalid(file: &str, key: impl Into<String>, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { file: file.to_owned(), line: None, key: key.into(), problem: problem.into() }
}

fn validate(settings: Settings, file: &str) -> Result<Loaded, SettingsError> {
    // Each part is checked whatever the others say, so one run of
    // check-config names the first mistake of every part.
    let cluster = cluster_of(&settings, file);
    let rules = node_rules(&settings, file);
    let admin = admin_of(&settings, file);
    let tls = tls_of(&settings, file);
    let targets = match &cluster {
        Ok((cluster, _)) => Some(targets_of(&settings, file, cluster)),
        Err(_) => None,
    };
    let mut errors: Vec<SettingsError> = Vec::new();
    errors.extend(cluster.as_ref().err().cloned());
    errors.extend(rules.err());
    errors.extend(admin.as_ref().err().cloned());
    errors.extend(tls.as_ref().err().cloned());
    errors.extend(targets.as_ref().and_then(|t| t.as_ref().err().cloned()));
    // Last, so that any other mistake in a file is named first.
    if matches!(tls, Ok(None)) && !settings.cluster.allow_unauthenticated_peers {
        errors.push(invalid(file, "tls", UNAUTHENTICATED_PEERS));
    }
    match (cluster, admin, tls, targets) {
        (Ok((cluster, me)), Ok((token, http_tls)), Ok(tls), Some(Ok((actuators, mongodb)))) if errors.is_empty() => {
            Ok(Loaded { settings, cluster, me, token, tls, http_tls, actuators, mongodb })
        }
        _ if errors.len() == 1 => Err(errors.remove(0)),
        _ => Err(SettingsError::Several(errors)),
    }
}

/// `[cluster]` and `[[members]]` as the protocol sees them, and this node's
/// id among them.
fn cluster_of(settings: &Settings, file: &str) -> Result<(ClusterConfig, failover_core::NodeId), SettingsError> {
    let failover_mode = match settings.cluster.failover_mode.as_str() {
        "automatic" => FailoverMode::Automatic,
        "manual" => FailoverMode::Manual,
        other => {
            return Err(invalid(file, "cluster.failover_mode", format!("{other:?}: use \"automatic\" or \"manual\"")))
        }
    };
    let failback = match settings.cluster.failback.as_str() {
        "automatic" => FailbackPolicy::Automatic,
        "manual" => FailbackPolicy::Manual,
        other => return Err(invalid(file, "cluster.failback", format!("{other:?}: use \"automatic\" or \"manual\""))),
    };
    crate::member_name::check(&settings.cluster.name).map_err(|e| invalid(file, "cluster.name", e.to_string()))?;
    members::check(&settings.members).map_err(|(key, problem)| invalid(file, key, problem))?;
    let mut members = Vec::new();
    for (i, m) in settings.members.iter().enumerate() {
        let key = format!("members[{i}] ({})", m.name);
        let kind = match (m.kind.as_str(), m.priority) {
            ("site", Some(priority)) => MemberKind::Site { priority },
            ("site", None) => {
                return Err(invalid(file, format!("{key}.priority"), "a site needs a priority (0 to 1000)"))
            }
            ("witness", None) => MemberKind::Witness,
            ("witness", Some(_)) => {
                return Err(invalid(file, format!("{key}.priority"), "a witness has no priority; remove the key"))
            }
            (other, _) => {
                return Err(invalid(file, format!("{key}.kind"), format!("{other:?}: use \"site\" or \"witness\"")))
            }
        };
        members.push(Member { name: m.name.clone(), kind, votes: m.votes });
    }
    let c = &settings.cluster;
    let cluster = ClusterConfig {
        members,
        timers: Timers {
            heartbeat_interval: c.heartbeat_interval,
            lease_duration: c.lease,
            election_jitter: c.election_jitter,
            max_drift_ppm: c.max_drift_ppm,
            actuation_interval: c.actuation_interval,
            failback_delay: c.failback_delay,
            failover_cooldown: c.failover_cooldown,
            drain: c.drain,
            declined_backoff: c.declined_backoff,
        },
        policy: Policy { failover_mode, failback },
    };
    cluster.validate().map_err(|e| invalid(file, "members / cluster", e.to_string()))?;
    let me = cluster.id_of(&settings.node.name).ok_or_else(|| {
        invalid(
            file,
            "node.name",
            format!("{:?} is not one of the [[members]]; add it or fix the name", settings.node.name),
        )
    })?;
    Ok((cluster, me))
}

/// `[node]`'s log format, `[hooks]` and `[[checks]]`.
fn node_rules(settings: &Settings, file: &str) -> Result<(), SettingsError> {
    if !matches!(settings.node.log_format.as_str(), "human" | "json") {
        return Err(invalid(file, "node.log_format", "use \"human\" or \"json\""));
    }
    commands::check_hooks(&settings.hooks).map_err(|(key, problem)| invalid(file, key, problem))?;
    commands::check_checks(&settings.checks).map_err(|(key, problem)| invalid(file, key, problem))?;
    Ok(())
}

/// The admin token and TLS on the HTTP port.
fn admin_of(
    settings: &Settings,
    file: &str,
) -> Result<(Option<String>, Option<crate::http_tls::HttpTls>), SettingsError> {
    let token = match &settings.admin.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(file, "admin.token_file", format!("cannot read {}: {e}", path.display())))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                return Err(invalid(file, "admin.token_file", format!("{} is empty", path.display())));
            }
            Some(token)
        }
        None => settings.admin.token.clone().filter(|t| !t.is_empty()),
    };
    if token.is_none() && !settings.admin.allow_without_token {
        return Err(invalid(
            file,
            "admin.token_file",
            "no admin token: set admin.token_file or FAILOVER_ADMIN__TOKEN, or admin.allow_without_token = true",
        ));
    }
    commands::duration(settings.admin.refusal_window)
        .map_err(|problem| invalid(file, "admin.refusal_window", problem))?;
    let a = &settings.admin;
    let http_tls = match (&a.tls_cert_file, &a.tls_key_file) {
        (Some(cert), Some(key)) => Some(
            crate::http_tls::load(cert, key, a.tls_ca_file.as_deref())
                .map_err(|(key, problem)| invalid(file, key, problem))?,
        ),
        (None, None) if a.tls_ca_file.is_some() => {
            return Err(invalid(file, "admin.tls_ca_file", "is used only with admin.tls_cert_file and tls_key_file"))
        }
        (None, None) => None,
        (Some(_), None) => return Err(invalid(file, "admin.tls_key_file", "admin.tls_cert_file needs its key")),
        (None, Some(_)) => {
            return Err(invalid(file, "admin.tls_cert_file", "admin.tls_key_file needs its certificate"))
        }
    };
    Ok((token, http_tls))
}

/// Mutual TLS between the nodes, if configured.
fn tls_of(settings: &Settings, file: &str) -> Result<Option<TlsFiles>, SettingsError> {
    let tls = match &settings.tls {
        None => None,
        Some(t) => {
            let read = |key: &str, path: &Path| {
                std::fs::read(path).map_err(|e| invalid(file, key, format!("cannot read {}: {e}", path.display())))
            };
            let files = TlsFiles {
                ca: read("tls.ca_file", &t.ca_file)?,
                cert: read("tls.cert_file", &t.cert_file)?,
                key: read("tls.key_file", &t.key_file)?,
            };
            let names = crate::certs::pem_dns_names(&files.cert);
            if !names.iter().any(|n| n == &settings.node.name) {
                return Err(invalid(
                    file,
                    "tls.cert_file",
                    format!("{} is issued for {names:?}, not for node {:?}", t.cert_file.display(), settings.node.name),
                ));
            }
            Some(files)
        }
    };
    Ok(tls)
}

/// The actuators and the MongoDB link, built for `cluster`.
fn targets_of(
    settings: &Settings,
    file: &str,
    cluster: &ClusterConfig,
) -> Result<(Vec<crate::actuate::Actuator>, Option<crate::mongo::MongoLink>), SettingsError> {
    let mut actuators = crate::actuate::build(&settings.actuators, &settings.node.name, cluster)
        .map_err(|(key, problem)| invalid(file, format!("actuators.{key}"), problem))?;
    let names: Vec<String> = settings.members.iter().map(|m| m.name.clone()).collect();
    let mongodb = match &settings.mongodb {
        Some(section) => {
            let link = crate::mongo::MongoLink::build(section, &names)
                .map_err(|(key, problem)| invalid(file, format!("mongodb.{key}"), problem))?;
            actuators.push(crate::actuate::Actuator::Mongodb(crate::actuate::mongodb::MongoActuator::new(
                link.clone(),
                &settings.node.name,
                names,
            )));
            Some(link)
        }
        None => None,
    };
    Ok((actuators, mongodb))
}
