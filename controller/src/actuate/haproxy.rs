//! HAProxy actuator: the runtime API (the `stats socket` with `level
//! admin`), over TCP or a unix socket.
//!
//! While active, this site's server is `ready` and every other site's server
//! `maint` in each configured backend; while draining towards a site, that
//! site's server is made `ready` first and this site's put in `drain`, so new
//! requests move before old ones finish. Commands that turn a server ready
//! are sent before those that take one away, so a pass never leaves a
//! backend with no server. Each pass reads `show servers state` and only
//! changes what differs, then reads again to confirm.
//!
//! HAProxy has no compare-and-set, so the fence is the lease check before
//! every write plus the epoch kept in a process variable (`set var`, in
//! the runtime API's experimental mode): a pass never writes when HAProxy
//! holds a newer epoch. A restarted HAProxy forgets the variable, and the
//! next pass of the active site writes it again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use failover_core::{ClusterConfig, MemberKind};
use serde::Deserialize;

use crate::host_port::HostPort;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::fence::{self, FenceValueError};
use super::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
use crate::actuation_mode::ActuationMode;

/// `[[actuators.haproxy]]`: one HAProxy instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxySection {
    /// `act` or `observe` (default: `[actuators].actuation`, else `act`).
    #[serde(default)]
    pub actuation: Option<crate::settings::Choice<ActuationMode>>,
    /// Name in status and metrics (default `haproxy:<address>`).
    pub name: Option<String>,
    /// Runtime API: `host:port` (a name is resolved at each connection) or
    /// the absolute path of a unix socket.
    pub address: String,
    /// Backends whose servers are switched.
    pub backends: Vec<String>,
    /// The server of each site in those backends, by member name.
    pub servers: BTreeMap<String, String>,
    /// Time limit of each runtime API command.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Process variable that holds the epoch: `proc.` and a name of ASCII
    /// letters, digits, `_` and `.` (`""` turns the check off).
    #[serde(default = "default_epoch_variable")]
    pub epoch_variable: String,
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_epoch_variable() -> String {
    "proc.failover_epoch".into()
}

/// Where the runtime API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeApi {
    /// `stats socket ipv4@...`
    Tcp(HostPort),
    /// `stats socket /path`
    Unix(PathBuf),
}

impl std::fmt::Display for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeApi::Tcp(a) => write!(f, "{a}"),
            RuntimeApi::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A server's administrative state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerState {
    /// Takes traffic.
    Ready,
    /// Finishes what it has, takes nothing new.
    Drain,
    /// Takes nothing.
    Maint,
}

impl ServerState {
    /// The word the runtime API uses for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Ready => "ready",
            ServerState::Drain => "drain",
            ServerState::Maint => "maint",
        }
    }
}

/// A configured, checked HAProxy actuator.
#[derive(Clone, Debug)]
pub struct HaproxyActuator {
    /// `act`, or `observe`: read the target, report, change nothing.
    pub actuation: ActuationMode,
    /// Unique name.
    pub name: String,
    api: RuntimeApi,
    backends: Vec<String>,
    /// Server name by site name.
    servers: BTreeMap<String, String>,
    site: String,
    /// Time limit of each command.
    pub timeout: Duration,
    epoch_variable: Option<String>,
}

/// The columns of `show servers state` format version 1, in order. The
/// answer repeats them in its `#` header line; a column is found by its
/// name there, and here when the header is missing.
const VERSION_1_COLUMNS: [&str; 7] =
    ["be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state"];
/// The column holding a server's name.
const SERVER_NAME: &str = "srv_name";
/// The column holding a server's administrative flags.
const ADMIN_STATE: &str = "srv_admin_state";

/// A server's `srv_admin_state`: HAProxy's `SRV_ADMF_*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminFlags(pub u32);

impl AdminFlags {
    /// Put in maintenance by the runtime API or the stats page.
    pub const FORCED_MAINT: u32 = 0x01;
    /// In maintenance because the server it tracks is.
    pub const INHERITED_MAINT: u32 = 0x02;
    /// The configuration said `disabled`; only a record of that, not a state.
    pub const CONFIG_MAINT: u32 = 0x04;
    /// Put in drain by the runtime API or the stats page.
    pub const FORCED_DRAIN: u32 = 0x08;
    /// In drain because the server it tracks is.
    pub const INHERITED_DRAIN: u32 = 0x10;
    /// In maintenance because its name did not resolve.
    pub const RESOLVE_MAINT: u32 = 0x20;
    /// In maintenance because its hostname was unset.
    pub const HOSTNAME_MAINT: u32 = 0x40;

    const MAINT: u32 = Self::FORCED_MAINT | Self::INHERITED_MAINT | Self::RESOLVE_MAINT | Self::HOSTNAME_MAINT;
    const DRAIN: u32 = Self::FORCED_DRAIN | Self::INHERITED_DRAIN;

    /// The administrative state these flags make.
    pub fn state(self) -> ServerState {
        if self.0 & Self::MAINT != 0 {
            ServerState::Maint
        } else if self.0 & Self::DRAIN != 0 {
            ServerState::Drain
        } else {
            ServerState::Ready
        }
    }
}

/// Parses `show servers state` output into server name → state.
pub fn parse_servers_state(text: &str) -> Result<BTreeMap<String, ServerState>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some("1") => {}
        Some(other) => return Err(format!("expected format version 1, got {other:?}")),
        None => return Err("empty answer".into()),
    }
    let mut columns: Vec<&str> = VERSION_1_COLUMNS.to_vec();
    let mut out = BTreeMap::new();
    for line in lines {
        if let Some(comment) = line.strip_prefix('#') {
            let named: Vec<&str> = comment.split_whitespace().collect();
            if named.contains(&SERVER_NAME) && named.contains(&ADMIN_STATE) {
                columns = named;
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| columns.iter().position(|c| *c == name).and_then(|i| fields.get(i).copied());
        let (Some(name), Some(admin)) = (field(SERVER_NAME), field(ADMIN_STATE)) else {
            return Err(format!("short line {line:?}"));
        };
        let admin: u32 = admin.parse().map_err(|_| format!("{ADMIN_STATE} {admin:?} is not a number"))?;
        out.insert(name.to_owned(), AdminFlags(admin).state());
    }
    Ok(out)
}

/// `Ok` if `name` is a process-wide HAProxy variable name: `proc.`
/// followed by ASCII letters, digits, `_` and `.` (the only scope the
/// runtime API's `set var` accepts). It is written into runtime API
/// commands, so nothing else may pass.
pub fn check_epoch_variable(name: &str) -> Result<(), String> {
    let rest = name.strip_prefix("proc.").unwrap_or_default();
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')) {
        return Err(format!(
            "{name:?} is not a process variable name: write \"proc.\" and then ASCII letters, digits, '_' or '.' \
             (e.g. \"proc.failover_epoch\"), or \"\" to turn the epoch check off"
        ));
    }
    Ok(())
}

/// `Ok` if `name` is a valid HAProxy backend or server name: ASCII
/// letters, digits, `-`, `_`, `.` and `:` (HAProxy's own rule for names).
/// Names are written into runtime API commands, so nothing else may pass.
pub fn check_proxy_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')) {
        return Err(format!("{name:?} is not an HAProxy name: use ASCII letters, digits, '-', '_', '.' and ':'"));
    }
    Ok(())
}

/// What `get var` says of the epoch variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochVariable {
    /// Not set (a fresh or restarted HAProxy).
    Unset,
    /// An epoch.
    Holds(u64),
    /// A value this cluster never writes (`int(-1)`, `str(+7)`, past
    /// 2^48): the fence alarm.
    Unreadable(FenceValueError),
}

/// Reads `get var` output (`proc.v: type=sint value=<42>`); an answer
/// that is not of that form at all is an error.
pub fn parse_epoch_variable(text: &str) -> Result<EpochVariable, String> {
    let text = text.trim();
    if text.contains("not found") || text.is_empty() {
        return Ok(EpochVariable::Unset);
    }
    let value = text
        .split_once("value=<")
        .and_then(|(_, rest)| rest.rsplit_once('>'))
        .map(|(v, _)| v)
        .ok_or_else(|| format!("unexpected answer {text:?}"))?;
    Ok(match fence::parse_epoch(value) {
        Ok(epoch) => EpochVariable::Holds(epoch),
        Err(problem) => EpochVariable::Unreadable(problem),
    })
}

impl HaproxyActuator {
    /// Checks a section for site `me`.
    pub fn build(s: &HaproxySection, me: &str, cluster: &ClusterConfig) -> Result<Self, crate::settings::BadSetting> {
        let err = |k: &str, p: String| crate::settings::BadSetting::new(k, p);
        let api = if s.address.starts_with('/') {
            RuntimeApi::Unix(PathBuf::from(&s.address))
        } else {
            RuntimeApi::Tcp(
                s.address
                    .parse()
                    .map_err(|e| err("address", format!("neither host:port nor an absolute socket path: {e}")))?,
            )
        };
        if s.backends.is_empty() {
            return Err(err("backends", "list at least one backend".into()));
        }
        for site in s.servers.keys() {
            match cluster.id_of(site).and_then(|id| cluster.member(id)).map(|m| m.kind) {
                Some(MemberKind::Site { .. }) => {}
                _ => return Err(err("servers", format!("{site:?} is not a site of [[members]]"))),
            }
        }
        if !s.servers.contains_key(me) {
            return Err(err("servers", format!("name this site's server: {me} = \"<server name>\"")));
        }
        for backend in &s.backends {
            check_proxy_name(backend).map_err(|p| err("backends", p))?;
        }
        for server in s.servers.values() {
            check_proxy_name(server).map_err(|p| err("servers", p))?;
        }
        if !s.epoch_variable.is_empty() {
            check_epoch_variable(&s.epoch_variable).map_err(|p| err("epoch_variable", p))?;
        }
        if s.timeout.is_zero() {
            return Err(err("timeout", "must be above zero".into()));
        }
        Ok(HaproxyActuator {
            actuation: ActuationMode::Act,
            name: s.name.clone().unwrap_or_else(|| format!("haproxy:{}", s.address)),
            api,
            backends: s.backends.clone(),
            servers: s.servers.clone(),
            site: me.to_owned(),
            timeout: s.timeout,
            epoch_variable: Some(s.epoch_variable.clone()).filter(|v| !v.is_empty()),
        })
    }

    /// Sends one runtime API command and returns the whole answer.
    pub async fn command(&self, line: &str) -> Result<String, ActuateError> {
        let limit = self.timeout;
        let target = format!("HAProxy runtime API {}", self.api);
        let run = async {
            match &self.api {
                RuntimeApi::Tcp(a) => {
                    let found = a.resolve().await.map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))?;
                    exchange(tokio::net::TcpStream::connect(&found[..]).await?, line).await
                }
                RuntimeApi::Unix(p) => exchange(tokio::net::UnixStream::connect(p).await?, line).await,
            }
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(ActuateError::Unreachable { target, detail: e.to_string() }),
            Err(_) => Err(ActuateError::TimedOut { what: format!("{target}: {line:?}"), after: limit }),
        }
    }

    fn bad_answer(&self, detail: String) -> ActuateError {
        ActuateError::BadAnswer { target: format!("HAProxy {}", self.api), detail }
    }

    async fn states(&self, backend: &str) -> Result<BTreeMap<String, ServerState>, ActuateError> {
        let answer = self.command(&format!("show servers state {backend}")).await?;
        let states = parse_servers_state(&answer).map_err(|p| self.bad_answer(format!("backend {backend}: {p}")))?;
        if let Some(missing) = self.servers.values().find(|s| !states.contains_key(*s)) {
            return Err(self.bad_answer(format!("backend {backend} has no server {missing:?}")));
        }
        Ok(states)
    }

    /// The epoch `variable` holds (`None`: unset); a value this cluster
    /// never writes is the fence alarm, with the command that clears it.
    async fn held_epoch(&self, variable: &str, epoch: u64) -> Result<Option<u64>, ActuateError> {
        let answer = self.command(&format!("experimental-mode on; get var {variable}")).await?;
        match parse_epoch_variable(&answer).map_err(|p| self.bad_answer(format!("{variable}: {p}")))? {
            EpochVariable::Unset => Ok(None),
            EpochVariable::Holds(held) => Ok(Some(held)),
            EpochVariable::Unreadable(problem) => {
                let socket = match &self.api {
                    RuntimeApi::Tcp(a) => format!("TCP:{a}"),
                    RuntimeApi::Unix(p) => format!("UNIX-CONNECT:{}", p.display()),
                };
                let fix = format!(
                    "set it to this site's epoch by hand: echo 'experimental-mode on; set var {variable} \
                     int({epoch})' | socat stdio {socket}"
                );
                Err(fence::unreadable(&format!("HAProxy {} variable {variable}", self.api), &problem, &fix))
            }
        }
    }

    /// The state each server should have for `goal`, in the order to apply.
    fn wanted(&self, goal: &Goal) -> Vec<(String, ServerState)> {
        let mut out: Vec<(String, ServerState)> = self
            .servers
            .iter()
            .map(|(site, server)| {
                let state = match goal {
                    Goal::Draining { to, .. } if site == to => ServerState::Ready,
                    Goal::Draining { .. } if *site == self.site => ServerState::Drain,
                    Goal::Active { .. } if *site == self.site => ServerState::Ready,
                    _ => ServerState::Maint,
                };
                (server.clone(), state)
            })
            .collect();
        out.sort_by_key(|(_, state)| *state);
        out
    }

    /// One pass: fence-check, read, change what differs, confirm. In
    /// observe mode it reports what differs instead of changing it.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        let Some(epoch) = goal.epoch() else {
            return Ok(Outcome::Converged(Applied { detail: "standby".into(), propagation: None }));
        };
        let observing = self.actuation == ActuationMode::Observe;
        // What observe mode reports: what it read, what it would change.
        let (mut read, mut would) = (Vec::new(), Vec::new());
        let held = match &self.epoch_variable {
            Some(v) => self.held_epoch(v, epoch).await?,
            None => None,
        };
        if let Some(held) = held.filter(|h| *h > epoch) {
            return Err(ActuateError::Fenced {
                by: Some(held),
                detail: format!("HAProxy {} holds epoch {held}, newer than {epoch}", self.api),
            });
        }
        let wanted = self.wanted(goal);
        let mut changes = 0;
        for backend in &self.backends {
            let states = self.states(backend).await?;
            let shown: Vec<String> = wanted
                .iter()
                .map(|(s, _)| format!("{s} {}", states.get(s).map_or("absent", |st| st.as_str())))
                .collect();
            read.push(format!("{backend}: {}", shown.join(", ")));
            for (server, state) in &wanted {
                if states.get(server) == Some(state) {
                    continue;
                }
                if observing {
                    let from = states.get(server).map_or("absent", |s| s.as_str());
                    would.push(format!("would set {backend}/{server} {from} -> {}", state.as_str()));
                    continue;
                }
                lease.check()?;
                let answer = self.command(&format!("set server {backend}/{server} state {}", state.as_str())).await?;
                if !answer.trim().is_empty() {
                    return Err(ActuateError::Refused {
                        target: format!("HAProxy {}", self.api),
                        detail: format!("set server {backend}/{server}: {}", answer.trim()),
                    });
                }
                tracing::info!(
                    actuator = %self.name,
                    epoch,
                    "HAProxy {}: set {backend}/{server} from {} to {}",
                    self.api,
                    states.get(server).map_or("absent", |s| s.as_str()),
                    state.as_str()
                );
                changes += 1;
            }
        }
        let was = held.map_or_else(|| "unset".to_owned(), |h| h.to_string());
        if let Some(v) = &self.epoch_variable {
            read.push(format!("{v} {was}"));
        }
        if observing {
            if let Some(v) = self.epoch_variable.as_ref().filter(|_| held != Some(epoch)) {
                would.push(format!("would set {v} {was} -> {epoch}"));
            }
            if !would.is_empty() {
                let read = format!("HAProxy {}: {}", self.api, read.join("; "));
                return Ok(Outcome::WouldChange { read, changes: would });
            }
        }
        if let Some(v) = self.epoch_variable.as_ref().filter(|_| held != Some(epoch)) {
            lease.check()?;
            let answer = self.command(&format!("experimental-mode on; set var {v} int({epoch})")).await?;
            if !answer.trim().is_empty() {
                return Err(self.bad_answer(format!("set var {v}: {}", answer.trim())));
            }
            tracing::info!(actuator = %self.name, epoch, "HAProxy {}: set {v} from {was} to {epoch}", self.api);
        }
        for backend in &self.backends {
            let states = self.states(backend).await?;
            if let Some((server, state)) = wanted.iter().find(|(s, w)| states.get(s) != Some(w)) {
                return Err(ActuateError::NotConverged(format!(
                    "{backend}/{server} is {:?} after setting {}",
                    states.get(server),
                    state.as_str()
                )));
            }
        }
        let summary: Vec<String> = wanted.iter().map(|(s, w)| format!("{s} {}", w.as_str())).collect();
        Ok(Outcome::Converged(Applied {
            detail: format!(
                "{} ({}): {} with epoch {epoch}; {changes} change(s)",
                self.backends.join(", "),
                self.api,
                summary.join(", ")
            ),
            propagation: None,
        }))
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, line: &str) -> std::io::Result<String> {
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = Vec::new();
    // The API closes the connection after one (non-interactive) command.
    (&mut stream).take(1 << 20).read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
        3 app 1 site-a 127.0.0.1 2 0 1 1 1\n3 app 2 site-b 127.0.0.1 0 5 1 1 1\n3 app 3 site-c 127.0.0.1 2 12 1 1 1\n";

    #[test]
    fn servers_state_is_read_by_admin_flags() {
        let s = parse_servers_state(STATE).unwrap();
        assert_eq!(s["site-a"], ServerState::Ready);
        assert_eq!(s["site-b"], ServerState::Maint);
        assert_eq!(s["site-c"], ServerState::Drain);
        assert!(parse_servers_state("Can't find backend.\n").is_err());
        assert!(parse_servers_state("1\n3 app 1\n").unwrap_err().contains("short"));
        assert!(parse_servers_state("1\n3 app 1 site-a 127.0.0.1 2 x\n").unwrap_err().contains("srv_admin_state"));
    }

    #[test]
    fn servers_state_columns_are_found_by_the_header_names() {
        let reordered = "1\n# srv_admin_state srv_name\n# a comment\n8 site-a\n0 site-b\n";
        let s = parse_servers_state(reordered).unwrap();
        assert_eq!(s["site-a"], ServerState::Drain);
        assert_eq!(s["site-b"], ServerState::Ready);
        let without_header = parse_servers_state("1\n3 app 1 site-a 127.0.0.1 2 1\n").unwrap();
        assert_eq!(without_header["site-a"], ServerState::Maint);
    }

    #[test]
    fn configured_disabled_alone_is_ready() {
        assert_eq!(AdminFlags(AdminFlags::CONFIG_MAINT).state(), ServerState::Ready);
        assert_eq!(AdminFlags(AdminFlags::RESOLVE_MAINT | AdminFlags::FORCED_DRAIN).state(), ServerState::Maint);
    }

    #[test]
    fn only_process_variable_names_pass_as_epoch_variable() {
        for good in ["proc.failover_epoch", "proc.a", "proc.Site_A.epoch2"] {
            assert_eq!(check_epoch_variable(good), Ok(()), "{good}");
        }
        for bad in
            ["proc.", "failover_epoch", "txn.epoch", "proc.x; shutdown sessions", "proc.a b", "proc.a\nx", "proc.é"]
        {
            let problem = check_epoch_variable(bad).expect_err(bad);
            assert!(problem.contains(&format!("{bad:?}")), "{problem}");
        }
    }

    #[test]
    fn only_haproxy_names_pass_as_backend_or_server() {
        for good in ["app", "be_app-1.v2", "srv:1"] {
            assert_eq!(check_proxy_name(good), Ok(()), "{good}");
        }
        for bad in ["", "app;shutdown", "a b", "a/b", "a\nb", "a#b", "ä"] {
            let problem = check_proxy_name(bad).expect_err(bad);
            assert!(problem.contains(&format!("{bad:?}")), "{problem}");
        }
    }

    #[test]
    fn epoch_variable_answers() {
        assert_eq!(parse_epoch_variable("proc.failover_epoch: type=sint value=<42>\n"), Ok(EpochVariable::Holds(42)));
        assert_eq!(parse_epoch_variable("Variable not found.\n"), Ok(EpochVariable::Unset));
        assert!(parse_epoch_variable("Unknown command").is_err());
    }

    #[test]
    fn an_epoch_variable_reads_only_as_the_cluster_writes_it() {
        let answer = |value: &str| format!("proc.failover_epoch: type=sint value=<{value}>\n");
        for (value, epoch) in [("0", 0), ("7", 7), ("281474976710656", 1u64 << 48)] {
            assert_eq!(parse_epoch_variable(&answer(value)), Ok(EpochVariable::Holds(epoch)), "{value}");
        }
        // What `set var` with str(...) shows reads the same way.
        assert_eq!(parse_epoch_variable("proc.failover_epoch: type=str value=<9>"), Ok(EpochVariable::Holds(9)));
        for value in ["-1", "+7", "07", " 7", "7 ", "7.5", "", "seven", "7>8", "-9223372036854775808"] {
            match parse_epoch_variable(&answer(value)) {
                Ok(EpochVariable::Unreadable(FenceValueError::Malformed { found })) => {
                    assert_eq!(found, format!("{value:?}"))
                }
                other => panic!("{value:?}: {other:?}"),
            }
        }
        for value in ["281474976710657", "9223372036854775807", "18446744073709551617"] {
            assert_eq!(
                parse_epoch_variable(&answer(value)),
                Ok(EpochVariable::Unreadable(FenceValueError::OutOfRange { found: value.to_owned() })),
                "{value}"
            );
        }
    }
}
