//! The daemon's configuration: a TOML file plus `FAILOVER_` environment
//! overrides (through the `config` crate), validated before anything starts.
//! Every error names the file, the key and what is wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use failover_core::{ClusterConfig, FailbackPolicy, FailoverMode, Member, MemberKind, Policy, Timers};
use serde::Deserialize;

use crate::host_port::HostPort;

mod bad_setting;
mod choice;
mod commands;
mod location;
mod members;
mod operators;
#[cfg(test)]
mod tests;

pub use bad_setting::BadSetting;
pub use choice::Choice;
pub use commands::MAX_DURATION;
pub use operators::{TokenSection, SINGLE_TOKEN_OPERATOR};

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
    pub hooks: crate::hooks::HooksSection,
    /// Local health checks (sites only).
    #[serde(default)]
    pub checks: Vec<crate::health::CheckSection>,
    /// Mutual TLS between nodes (all three files, or none).
    #[serde(default)]
    pub tls: Option<crate::peer_tls::TlsSection>,
    /// What this site does to traffic while it is active (sites only).
    #[serde(default)]
    pub actuators: crate::actuate::ActuatorsSection,
    /// The MongoDB replica set beside the sites (sites only).
    #[serde(default)]
    pub mongodb: Option<crate::mongo::MongoSection>,
}

/// `[node]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// This member's name; must be one of `[[members]]`.
    pub name: String,
    /// Where the durable state file lives.
    pub state_dir: PathBuf,
    /// How the log is written.
    #[serde(default = "default_log_format")]
    pub log_format: Choice<LogFormat>,
    /// What a stop (SIGTERM, SIGINT) of the active site's daemon does.
    #[serde(default = "default_on_stop")]
    pub on_stop: Choice<OnStop>,
    /// Which log lines are written: a level (`info`, `debug`...) or
    /// `tracing` directives (`info,failover_controller::actuate=debug`).
    /// Without it, `RUST_LOG` (else `info`).
    #[serde(default)]
    pub log_level: Option<String>,
    /// Where this node binds its gRPC port, `ip:port` (e.g. `0.0.0.0:7400`).
    /// Without it: the address its own `peer_address` resolves to (the
    /// first, when a name resolves to several).
    #[serde(default)]
    pub listen_peer_address: Option<SocketAddr>,
    /// Where this node binds its HTTP port, `ip:port`. Without it: the
    /// address its own `http_address` resolves to (the first, when several).
    #[serde(default)]
    pub listen_http_address: Option<SocketAddr>,
}

fn default_log_format() -> Choice<LogFormat> {
    LogFormat::Human.into()
}

fn default_on_stop() -> Choice<OnStop> {
    OnStop::KeepRole.into()
}

/// `node.on_stop`: what SIGTERM (`systemctl stop` or `restart`) does while
/// this site is active. systemd sends the same signal for a stop and for a
/// restart, so the daemon cannot tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStop {
    /// Exit holding the role: a process back within the lease takes it back
    /// in place (same epoch, nothing moves); one that stays away is failed
    /// over from one lease later, as after a crash. The default: a restart
    /// or an upgrade moves nothing. Switch over first to stop for longer.
    KeepRole,
    /// Hand over to the best eligible site first (drain, then a graceful
    /// handoff), as keepalived and Patroni do on stop. Never while paused.
    HandOver,
}

/// `node.log_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object a line.
    Json,
}

/// `cluster.failover_mode` and `cluster.failback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutomaticOrManual {
    /// The protocol moves by itself.
    Automatic,
    /// An operator decides.
    Manual,
}

impl From<AutomaticOrManual> for FailoverMode {
    fn from(setting: AutomaticOrManual) -> Self {
        match setting {
            AutomaticOrManual::Automatic => FailoverMode::Automatic,
            AutomaticOrManual::Manual => FailoverMode::Manual,
        }
    }
}

impl From<AutomaticOrManual> for FailbackPolicy {
    fn from(setting: AutomaticOrManual) -> Self {
        match setting {
            AutomaticOrManual::Automatic => FailbackPolicy::Automatic,
            AutomaticOrManual::Manual => FailbackPolicy::Manual,
        }
    }
}

/// `members[i].kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKindName {
    /// Runs the service and can be active.
    Site,
    /// Votes only.
    Witness,
}

/// `[cluster]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This cluster's name: the same on every node, unlike any other
    /// cluster's, with the characters of a member name. Each node writes it
    /// into its state file and refuses a file that names another cluster.
    pub name: String,
    /// Whether an unplanned failover happens by itself.
    #[serde(default = "default_mode")]
    pub failover_mode: Choice<AutomaticOrManual>,
    /// Whether a preferred site takes back over by itself.
    #[serde(default = "default_mode_manual")]
    pub failback: Choice<AutomaticOrManual>,
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

fn default_mode() -> Choice<AutomaticOrManual> {
    AutomaticOrManual::Automatic.into()
}
fn default_mode_manual() -> Choice<AutomaticOrManual> {
    AutomaticOrManual::Manual.into()
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
/// cluster. An address is `host:port` ([`HostPort`]): a host name is
/// resolved each time a connection is made. The node binds its own two
/// addresses (what they resolve to) unless `[node]` gives listen addresses.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    /// Unique name.
    pub name: String,
    /// A site or a witness.
    pub kind: Choice<MemberKindName>,
    /// Priority 0..=1000 (sites only).
    #[serde(default)]
    pub priority: Option<u16>,
    /// 0 or 1.
    #[serde(default = "one")]
    pub votes: u8,
    /// gRPC address peers use to reach it.
    pub peer_address: HostPort,
    /// HTTP address of its status and admin endpoints.
    pub http_address: HostPort,
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
    /// Named operators, each with a token file of their own.
    #[serde(default)]
    pub tokens: Vec<TokenSection>,
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
            tokens: Vec::new(),
            allow_without_token: false,
            refusal_window: default_refusal_window(),
            forward_token_over_http: false,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        }
    }
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

/// A validated configuration, ready to build ([`crate::build`]) and run.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The raw settings.
    pub settings: Settings,
    /// The file they were read from.
    pub path: PathBuf,
    /// The protocol view of the cluster.
    pub cluster: ClusterConfig,
    /// This node's id in `cluster`.
    pub me: failover_core::NodeId,
    /// How the log is written.
    pub log_format: LogFormat,
    /// What a stop does while this site is active.
    pub on_stop: OnStop,
    /// The local health checks, checked.
    pub checks: Vec<crate::health::Check>,
    /// The operators and their tokens (none: admin calls need no token).
    pub operators: Vec<crate::admin_auth::Operator>,
    /// Mutual TLS material, if configured.
    pub tls: Option<crate::peer_tls::TlsFiles>,
    /// TLS for the HTTP port, if configured.
    pub http_tls: Option<crate::http_tls::HttpTls>,
}

impl Loaded {
    /// This member's own section.
    pub fn my_member(&self) -> &MemberSection {
        &self.settings.members[self.me.index()]
    }

    /// The members' addresses whose names do not resolve now, each with its
    /// key: for `check-config` to warn of (not refuse: DNS may be down at
    /// install time, and the daemon resolves them again at each connection).
    pub fn unresolved_addresses(&self) -> Vec<BadSetting> {
        let mut found = Vec::new();
        for (i, m) in self.settings.members.iter().enumerate() {
            for (field, address) in [("peer_address", &m.peer_address), ("http_address", &m.http_address)] {
                if let Err(e) = address.resolve_blocking() {
                    found.push(BadSetting::new(format!("members[{i}] ({}).{field}", m.name), e.to_string()));
                }
            }
        }
        found
    }

    /// `bad` as check-config reports it: the file, and the line of the key
    /// when the file has it.
    pub fn refusal(&self, bad: BadSetting) -> SettingsError {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        location::with_lines(invalid(&self.path.display().to_string(), bad.key, bad.problem), &text)
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
    validate(raw, path).map_err(|e| location::with_lines(e, &text))
}

fn invalid(file: &str, key: impl Into<String>, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { file: file.to_owned(), line: None, key: key.into(), problem: problem.into() }
}

fn refused(file: &str) -> impl Fn(BadSetting) -> SettingsError + '_ {
    move |bad| invalid(file, bad.key, bad.problem)
}

fn validate(settings: Settings, path: &Path) -> Result<Loaded, SettingsError> {
    let file = &path.display().to_string();
    // Each part is checked whatever the others say, so one run of
    // check-config names the first mistake of every part.
    let cluster = cluster_of(&settings, file);
    let rules = node_rules(&settings).map_err(refused(file));
    let admin = admin_of(&settings, file);
    let tls = settings.tls.as_ref().map(|t| t.read(&settings.node.name)).transpose().map_err(refused(file));
    let mut errors: Vec<SettingsError> = Vec::new();
    errors.extend(cluster.as_ref().err().cloned());
    errors.extend(rules.as_ref().err().cloned());
    errors.extend(admin.as_ref().err().cloned());
    errors.extend(tls.as_ref().err().cloned());
    // Last, so that any other mistake in a file is named first.
    if matches!(tls, Ok(None)) && !settings.cluster.allow_unauthenticated_peers {
        errors.push(invalid(file, "tls", UNAUTHENTICATED_PEERS));
    }
    match (cluster, rules, admin, tls) {
        (Ok((cluster, me)), Ok((log_format, on_stop, checks, run_as)), Ok((admin_operators, http_tls)), Ok(tls))
            if errors.is_empty() =>
        {
            let mut settings = settings;
            settings.hooks.run_as_user = run_as;
            Ok(Loaded {
                settings,
                path: path.to_owned(),
                cluster,
                me,
                log_format,
                on_stop,
                checks,
                operators: admin_operators,
                tls,
                http_tls,
            })
        }
        _ if errors.len() == 1 => Err(errors.remove(0)),
        _ => Err(SettingsError::Several(errors)),
    }
}

/// `[cluster]` and `[[members]]` as the protocol sees them, and this node's
/// id among them.
fn cluster_of(settings: &Settings, file: &str) -> Result<(ClusterConfig, failover_core::NodeId), SettingsError> {
    let c = &settings.cluster;
    let failover_mode = c.failover_mode.checked().map_err(|p| invalid(file, "cluster.failover_mode", p))?.into();
    let failback = c.failback.checked().map_err(|p| invalid(file, "cluster.failback", p))?.into();
    crate::member_name::check(&settings.cluster.name).map_err(|e| invalid(file, "cluster.name", e.to_string()))?;
    members::check(&settings.members).map_err(refused(file))?;
    members::check_listen(&settings.node).map_err(refused(file))?;
    let mut members = Vec::new();
    for (i, m) in settings.members.iter().enumerate() {
        let key = format!("members[{i}] ({})", m.name);
        let kind_name = m.kind.checked().map_err(|p| invalid(file, format!("{key}.kind"), p))?;
        let kind = match (kind_name, m.priority) {
            (MemberKindName::Site, Some(priority)) => MemberKind::Site { priority },
            (MemberKindName::Site, None) => {
                return Err(invalid(file, format!("{key}.priority"), "a site needs a priority (0 to 1000)"))
            }
            (MemberKindName::Witness, None) => MemberKind::Witness,
            (MemberKindName::Witness, Some(_)) => {
                return Err(invalid(file, format!("{key}.priority"), "a witness has no priority; remove the key"))
            }
        };
        members.push(Member { name: m.name.clone(), kind, votes: m.votes });
    }
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

/// `[node]`'s log format, `[hooks]` and `[[checks]]`, and the user of
/// `hooks.run_as`.
type NodeRules = (LogFormat, OnStop, Vec<crate::health::Check>, Option<crate::shell::RunAs>);

fn node_rules(settings: &Settings) -> Result<NodeRules, BadSetting> {
    let log_format = settings.node.log_format.checked().map_err(|p| BadSetting::new("node.log_format", p))?;
    let on_stop = settings.node.on_stop.checked().map_err(|p| BadSetting::new("node.on_stop", p))?;
    if let Some(level) = &settings.node.log_level {
        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
            BadSetting::new("node.log_level", format!("{level:?} is no level nor tracing directive: {e}"))
        })?;
    }
    let run_as = commands::check_hooks(&settings.hooks)?;
    let checks = commands::check_checks(&settings.checks, run_as.as_ref())?;
    Ok((log_format, on_stop, checks, run_as))
}

/// The operators and TLS on the HTTP port.
type AdminRules = (Vec<crate::admin_auth::Operator>, Option<crate::http_tls::HttpTls>);

fn admin_of(settings: &Settings, file: &str) -> Result<AdminRules, SettingsError> {
    let single = match &settings.admin.token_file {
        Some(path) => Some(operators::token_of(path, "admin.token_file").map_err(refused(file))?),
        None => settings.admin.token.clone().filter(|t| !t.is_empty()),
    };
    let operators = operators::operators(single, &settings.admin.tokens).map_err(refused(file))?;
    if operators.is_empty() && !settings.admin.allow_without_token {
        return Err(invalid(
            file,
            "admin.token_file",
            "no admin token: set admin.token_file, [[admin.tokens]] or FAILOVER_ADMIN__TOKEN, or \
             admin.allow_without_token = true",
        ));
    }
    commands::duration(settings.admin.refusal_window)
        .map_err(|problem| invalid(file, "admin.refusal_window", problem))?;
    let a = &settings.admin;
    let http_tls = match (&a.tls_cert_file, &a.tls_key_file) {
        (Some(cert), Some(key)) => {
            Some(crate::http_tls::load(cert, key, a.tls_ca_file.as_deref()).map_err(refused(file))?)
        }
        (None, None) if a.tls_ca_file.is_some() => {
            return Err(invalid(file, "admin.tls_ca_file", "is used only with admin.tls_cert_file and tls_key_file"))
        }
        (None, None) => None,
        (Some(_), None) => return Err(invalid(file, "admin.tls_key_file", "admin.tls_cert_file needs its key")),
        (None, Some(_)) => {
            return Err(invalid(file, "admin.tls_cert_file", "admin.tls_key_file needs its certificate"))
        }
    };
    Ok((operators, http_tls))
}
