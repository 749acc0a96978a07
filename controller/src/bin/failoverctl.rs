//! `failoverctl`: the operator CLI. Talks to any node's HTTP API; a request
//! the node cannot carry out goes to the one that can: the node forwards it,
//! or (when it would not send the token on over plain HTTP) answers 421 with
//! that node's HTTP address, and failoverctl calls it there.
//! Exit status 0 on success, non-zero with a one-line reason otherwise.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;

/// `println!` through [`output::line`]: a closed stdout ends the program
/// quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}

#[path = "failoverctl/client.rs"]
mod client;
#[path = "failoverctl/output.rs"]
mod output;

use client::Conn;
use failover_controller::status_doc::{SiteDoc, StatusDoc};

#[derive(Parser)]
#[command(name = "failoverctl", version, about = "Operate a failover cluster")]
struct Cli {
    /// Node HTTP endpoint: HOST[:PORT], https://HOST[:PORT] or
    /// http://HOST[:PORT], e.g. http://127.0.0.1:8401; without a port, 8400
    /// (repeatable or comma-separated; the first that answers is used).
    /// Without a scheme, HTTPS is tried first; the admin token goes over
    /// plain HTTP only to an endpoint written http://.
    #[arg(long = "endpoint", short = 'e', env = "FAILOVERCTL_ENDPOINTS", value_delimiter = ',', global = true)]
    endpoints: Vec<String>,
    /// Admin token for mutating calls.
    #[arg(long, env = "FAILOVERCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin token (surrounding white space ignored),
    /// instead of --token.
    #[arg(long, env = "FAILOVERCTL_TOKEN_FILE", global = true, conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// PEM CA certificates to trust, beside the system's, for endpoints
    /// given as https://HOST:PORT (nodes with admin.tls_cert_file).
    #[arg(long, env = "FAILOVERCTL_CA_FILE", global = true)]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the cluster: sites, roles, lease, epoch, pending approval.
    Status {
        /// Print the raw JSON of /status.
        #[arg(long)]
        json: bool,
    },
    /// Planned switchover to a site (now, or at a time).
    Switchover {
        /// Target site.
        #[arg(long, required_unless_present = "cancel")]
        to: Option<String>,
        /// When (RFC 3339, e.g. 2026-11-22T03:00:00Z), at most 365 days
        /// ahead.
        #[arg(long, value_parser = parse_at)]
        at: Option<String>,
        /// Cancel a scheduled switchover.
        #[arg(long, conflicts_with_all = ["to", "at"])]
        cancel: bool,
    },
    /// Approve the pending failover (or a failover to a named site).
    Approve {
        /// Target site (default: the pending proposal's).
        #[arg(long)]
        to: Option<String>,
    },
    /// Disaster recovery: make a site active without a majority.
    Failover {
        /// The site to force active.
        #[arg(long)]
        to: String,
        /// Required: this bypasses the majority.
        #[arg(long)]
        force: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Suspend automatic actions cluster-wide.
    Pause,
    /// Resume automatic actions.
    Resume,
    /// Reload the configuration file on one node, or on every node: each
    /// reads, validates and applies its own file without a restart, or
    /// keeps the one it runs and says why (exit non-zero).
    Reload {
        /// The node (default: every member).
        #[arg(long)]
        node: Option<String>,
    },
    /// Put a site in maintenance (no failover, approved failover or
    /// switchover goes to it; a forced promotion still does), or end it.
    /// Refused for the active site: switch over to another site first.
    Maintenance {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// The site.
        #[arg(long)]
        site: String,
        /// Why, shown with the setting (one line, at most 200 characters).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Who did what: the events and admin calls of every node that
    /// answers (the endpoints and the members they name), newest first,
    /// each once.
    History {
        /// Print one JSON document: {"events": [...], "nodes": [...],
        /// "unreachable": [{"node", "error"}]} (with --store: {"node",
        /// "database", "events": [{"at", "node", "event"}]}).
        #[arg(long)]
        json: bool,
        /// Read the MongoDB state store's event log instead (the newest
        /// 200 events of every site, kept by the database), through the
        /// first site that uses that store.
        #[arg(long)]
        store: bool,
    },
    /// Which operator the token names, and whether it is read-only.
    Whoami,
    /// Wait until a condition holds (for scripts and runbooks); exits
    /// non-zero if it does not within --timeout.
    #[command(group(clap::ArgGroup::new("until").required(true).multiple(false)))]
    Wait {
        /// Until this site is the active site: a node that answers says so,
        /// and the site itself agrees when it can be reached from here.
        #[arg(long, group = "until")]
        active: Option<String>,
        /// Until the active site has, for one whole lease, judged that it
        /// would accept a switchover to this site: reachable, healthy,
        /// caught up and in touch with a majority.
        #[arg(long, group = "until")]
        ready: Option<String>,
        /// Until the active site has heard this member (any node, the
        /// witness too), its certificate and config accepted, for one whole
        /// lease: after restarting a node, before the next one.
        #[arg(long, group = "until")]
        reachable: Option<String>,
        /// Until a failover waits for approval (`failoverctl approve`): in
        /// manual mode, while paused, or when the target lags or the cooldown
        /// runs.
        #[arg(long, group = "until")]
        pending: bool,
        /// How long to wait, e.g. 30s or 2m.
        #[arg(long, default_value = "60s", value_parser = parse_timeout)]
        timeout: Duration,
    },
    /// Certificates for mutual TLS between nodes.
    Certs {
        #[command(subcommand)]
        command: CertsCmd,
    },
    /// Print a shell completion script (e.g. `failoverctl completions bash
    /// > /etc/bash_completion.d/failoverctl`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `failoverctl man > failoverctl.1`.
    Man,
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Create a private CA and one certificate per node (named after it).
    Init {
        /// Directory for ca.pem, ca.key, <node>.pem and <node>.key.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        issued: IssuedArgs,
    },
    /// Issue new node certificates from an existing CA (renewal before they
    /// expire, or a new node); the CA stays, so no other node changes.
    Issue {
        /// Directory holding the CA's ca.pem and ca.key.
        #[arg(long)]
        ca_dir: std::path::PathBuf,
        /// Directory for <node>.pem and <node>.key (must not hold them).
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        issued: IssuedArgs,
    },
}

#[derive(clap::Args)]
struct IssuedArgs {
    /// Node names, comma-separated (as in [[members]]).
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// NODE=NAME: also issue NODE's certificate for NAME, a host name or
    /// IP address its HTTP port is reached by, so the certificate can
    /// serve that port over TLS too (repeatable).
    #[arg(long = "http-name", value_parser = parse_http_name)]
    http_names: Vec<(String, String)>,
    /// Days each node certificate is valid, from today.
    #[arg(long, default_value_t = failover_controller::certs::NODE_DAYS)]
    days: u32,
}

impl IssuedArgs {
    fn request(&self) -> failover_controller::certs::Request<'_> {
        failover_controller::certs::Request { nodes: &self.nodes, http_names: &self.http_names, days: self.days }
    }
}

/// `--at`, checked early against this machine's clock: not a time, or more
/// than a year ahead, is refused here. A time in the past is left to the
/// node, whose clock decides (this machine's may be a little off); the node
/// checks all of it again, for any client.
fn parse_at(text: &str) -> Result<String, String> {
    match failover_controller::clock::schedule_wait(text, std::time::SystemTime::now()) {
        Ok(_) | Err(failover_controller::clock::ScheduleError::Past { .. }) => Ok(text.to_owned()),
        Err(refused) => Err(refused.to_string()),
    }
}

/// The longest `wait --timeout`: a year.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `wait --timeout`: a duration of at most [`MAX_WAIT`].
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_WAIT {
        return Err(format!("{text:?} is more than the limit of {} days", MAX_WAIT.as_secs() / 86_400));
    }
    Ok(d)
}

fn parse_http_name(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((node, name)) if !node.is_empty() && !name.is_empty() => Ok((node.to_owned(), name.to_owned())),
        _ => Err(format!("{text:?}: give NODE=NAME, e.g. site-a=10.1.0.10")),
    }
}

/// The connection the command line describes.
fn conn(cli: &Cli) -> anyhow::Result<Conn> {
    Conn::new(&cli.endpoints, cli.token.as_deref(), cli.token_file.as_deref(), cli.ca_file.as_deref())
}

/// What `failoverctl wait` waits for.
enum Until<'a> {
    Active(&'a str),
    Ready(&'a str),
    Reachable(&'a str),
    Pending,
}

async fn wait(conn: &Conn, until: Until<'_>, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no endpoint answered");
    // Since when the active site's verdict has held, without a break.
    let mut held_since: Option<tokio::time::Instant> = None;
    while tokio::time::Instant::now() < deadline {
        let now = tokio::time::Instant::now();
        let for_a_lease = |verdict: Result<Duration, String>, held_since: &mut Option<_>, what: &str| match verdict {
            Ok(lease) if now.duration_since(*held_since.get_or_insert(now)) >= lease => Ok(()),
            Ok(_) => Err(format!("the active site has not yet judged {what} for a whole lease")),
            Err(why) => {
                *held_since = None;
                Err(why)
            }
        };
        let verdict = match until {
            Until::Active(site) => conn.site_is_active(site).await,
            Until::Ready(site) => for_a_lease(ready_for(conn, site).await, &mut held_since, &format!("{site} ready")),
            Until::Reachable(node) => {
                for_a_lease(reachable(conn, node).await, &mut held_since, &format!("{node} reachable"))
            }
            Until::Pending => match conn.get("/status").await.and_then(client::status_doc) {
                Ok(v) if v.pending_failover.is_some() => Ok(()),
                Ok(_) => Err("no failover waits for approval".to_string()),
                Err(e) => Err(format!("{e:#}")),
            },
        };
        match verdict {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("not within {}: {last}", humantime::format_duration(timeout))
}

/// `Ok(lease)` when the active site would accept a switchover to `site`
/// now: its own verdict, the check the switchover command makes. The caller
/// waits for that verdict to hold for one whole lease: a site that has just
/// restarted is still judged by its last report before the restart until
/// its first message arrives, and that one may say it does not yet reach a
/// majority.
async fn ready_for(conn: &Conn, site: &str) -> Result<Duration, String> {
    let Some(v) = conn.active_status().await else { return Err("no endpoint answered as the active site".into()) };
    let verdict = v.site(site).and_then(|s| s.switchover.as_ref());
    if verdict.is_some_and(|s| s.switchover_target) {
        return Ok(lease_of(&v));
    }
    Err(match verdict.and_then(|s| s.switchover_refused_because.as_deref()) {
        Some(why) => format!("the active site {} says: {why}", v.node),
        None => format!("the active site is {}", v.node),
    })
}

/// `Ok(lease)` when the active site hears `node` now (or is `node`).
async fn reachable(conn: &Conn, node: &str) -> Result<Duration, String> {
    let Some(v) = conn.active_status().await else { return Err("no endpoint answered as the active site".into()) };
    match v.site(node).map(|s| s.reachable) {
        Some(true) => Ok(lease_of(&v)),
        Some(false) => Err(format!("the active site {} does not hear {node}", v.node)),
        None => Err(format!("{node} is not a member")),
    }
}

/// The lease of the node whose `/status` this is.
fn lease_of(status: &StatusDoc) -> Duration {
    Duration::from_millis(status.timers.map_or(1000, |t| t.lease_ms))
}

/// Reloads `node`'s file, or every member's; one line per node, and an
/// error naming every node that did not reload.
async fn reload(cli: &Cli, node: Option<&str>) -> anyhow::Result<()> {
    let conn = conn(cli)?;
    let nodes: Vec<String> = match node {
        Some(n) => vec![n.to_owned()],
        None => client::status_doc(conn.get("/status").await?)?.sites.into_iter().map(|s| s.id).collect(),
    };
    let mut failed = Vec::new();
    for n in &nodes {
        match conn.admin("reload", json!({ "to": n })).await {
            Ok(answer) => {
                let changed: Vec<String> = answer["reload"]["changed"]
                    .as_array()
                    .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                if changed.is_empty() {
                    say!("reloaded {n}: nothing changed");
                } else {
                    say!("reloaded {n}: {}", changed.join(", "));
                }
            }
            Err(e) => {
                eprintln!("failoverctl: {n} did not reload: {e:#}");
                failed.push(n.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("not reloaded: {} (each keeps running its previous file)", failed.join(", "))
    }
}

/// An admin call, and one line saying what it did.
async fn admin(cli: &Cli, command: &str, to: Option<&str>, at: Option<&str>) -> anyhow::Result<()> {
    let answer = conn(cli)?.admin(command, json!({ "to": to, "at": at })).await?;
    say!("{}", output::done(command, to, at, &answer));
    Ok(())
}

/// `pause` and `resume` hold cluster-wide only once the other nodes have
/// the switch: until then a site that has not heard of a pause can still
/// fail over (the node that took it may fail the next moment). So the
/// command answers once every member a node reaches has echoed the switch
/// in its heartbeats (a node persists it before it sends one), naming those
/// it cannot reach, and fails if that takes longer than a few heartbeats.
async fn pause_switch(cli: &Cli, paused: bool) -> anyhow::Result<()> {
    let command = if paused { "pause" } else { "resume" };
    let conn = conn(cli)?;
    let answer = conn.admin(command, json!({})).await?;
    let done = output::done(command, None, None, &answer);
    confirm_cluster_wide(&conn, &done, |v| pause_held(v, paused)).await
}

/// `maintenance on|off`: like `pause`, it answers once every member a node
/// reaches has echoed the setting in its heartbeats, and the node holds the
/// site as asked (a concurrent change of another site through another node
/// could have replaced it: then it says so).
async fn maintenance(cli: &Cli, site: &str, on: bool, reason: Option<&str>) -> anyhow::Result<()> {
    let conn = conn(cli)?;
    let answer = conn.admin("maintenance", json!({ "site": site, "on": on, "reason": reason })).await?;
    let done = output::maintenance_done(site, on, &answer);
    confirm_cluster_wide(&conn, &done, |v| maintenance_held(v, site, on)).await
}

/// Says `done` once `held` accepts a node's `/status` (naming the members
/// it cannot reach), or fails after [`PAUSE_CONFIRMATION`] with why not.
async fn confirm_cluster_wide(
    conn: &client::Conn,
    done: &str,
    held: impl Fn(&StatusDoc) -> Result<Vec<String>, String>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + PAUSE_CONFIRMATION;
    loop {
        let status = conn.get("/status").await.and_then(client::status_doc);
        match status.as_ref().map_err(|e| format!("{e:#}")).and_then(&held) {
            Ok(unreachable) if unreachable.is_empty() => break say!("{done}"),
            Ok(unreachable) => {
                break say!("{done}; {} cannot be reached and will have it once back", unreachable.join(", "))
            }
            Err(why) if tokio::time::Instant::now() >= deadline => bail!(
                "{done}, but not yet confirmed cluster-wide within {}: {why}; until it is, a site that has not \
                 heard of it may still act on the previous setting",
                humantime::format_duration(PAUSE_CONFIRMATION)
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Ok(())
}

/// From one node's `/status`: `Ok(members it cannot reach)` when it holds
/// `site` in maintenance as asked and every member it reaches has echoed
/// its setting.
fn maintenance_held(status: &StatusDoc, site: &str, on: bool) -> Result<Vec<String>, String> {
    let node = &status.node;
    if status.maintenance.iter().any(|m| m.site == site) != on {
        return Err(format!("{node} does not hold {site} {} maintenance", if on { "in" } else { "out of" }));
    }
    echoed(status, |member| member.maintenance_agrees)
}

/// `Ok(members it cannot reach)` when every member `status`'s node reaches
/// has echoed a cluster-wide setting to it (`agrees`) and it reaches a
/// majority.
fn echoed(status: &StatusDoc, agrees: impl Fn(&SiteDoc) -> Option<bool>) -> Result<Vec<String>, String> {
    let node = &status.node;
    let mut unreachable = Vec::new();
    let mut lagging = Vec::new();
    for member in status.sites.iter().filter(|s| &s.id != node) {
        if !member.reachable {
            unreachable.push(member.id.clone());
        } else if agrees(member) == Some(false) {
            lagging.push(member.id.as_str());
        }
    }
    let members = status.sites.len();
    let reached = members - unreachable.len();
    if !lagging.is_empty() {
        Err(format!("{} has not echoed it to {node} yet", lagging.join(", ")))
    } else if reached * 2 <= members {
        Err(format!("{node} reaches only {reached} of {members} members"))
    } else {
        Ok(unreachable)
    }
}

/// How long `pause` and `resume` wait for the other nodes to hold the switch.
const PAUSE_CONFIRMATION: Duration = Duration::from_secs(10);

/// From one node's `/status`: `Ok(members it cannot reach)` when it holds
/// the pause switch `paused` and every member it reaches has echoed it.
fn pause_held(status: &StatusDoc, paused: bool) -> Result<Vec<String>, String> {
    if status.paused != paused {
        return Err(format!("{} does not have it yet", status.node));
    }
    echoed(status, |site| site.pause_agrees)
}

/// `failoverctl history`: every reachable node's history merged, newest
/// first, as a table or one JSON document; the nodes not read are named on
/// stderr (and in the document), and none read at all is an error.
async fn history(cli: &Cli, json: bool) -> anyhow::Result<()> {
    let histories = conn(cli)?.histories().await;
    if histories.read.is_empty() {
        let why: Vec<String> = histories.unread.iter().map(|(n, why)| format!("{n}: {why}")).collect();
        bail!(
            "no node's history could be read: {}",
            if why.is_empty() { "no --endpoint given".into() } else { why.join("; ") }
        );
    }
    let nodes: Vec<String> = histories.read.iter().map(|h| h.node.clone()).collect();
    let events = failover_controller::reports::merge_histories(histories.read.into_iter().map(|h| h.events));
    if json {
        let unreachable: Vec<_> = histories.unread.iter().map(|(n, why)| json!({ "node": n, "error": why })).collect();
        let doc = json!({ "events": events, "nodes": nodes, "unreachable": unreachable });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    for (node, why) in &histories.unread {
        eprintln!("failoverctl: the history of {node} is not included: {why}");
    }
    output::print_history(&events);
    Ok(())
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Cmd::Status { json } => {
            let conn = conn(cli)?;
            let v = conn.get("/status").await?;
            if *json {
                // What the node answered, as it answered it.
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let v = client::status_doc(v)?;
                let active_view = if v.role == "active" { None } else { conn.active_status().await };
                output::print_status(&v, active_view.as_ref());
            }
        }
        Cmd::Switchover { cancel: true, .. } => admin(cli, "cancel-switchover", None, None).await?,
        Cmd::Switchover { to, at, .. } => admin(cli, "switchover", to.as_deref(), at.as_deref()).await?,
        Cmd::Approve { to } => admin(cli, "approve", to.as_deref(), None).await?,
        Cmd::Failover { to, force, yes } => {
            if !force {
                bail!("failover without a majority needs --force; for a normal move use switchover or approve");
            }
            if !yes {
                eprint!("Force {to} active WITHOUT a majority? If the old active site is alive this risks two active sites. Type the site name to confirm: ");
                std::io::stderr().flush()?;
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if line.trim() != to {
                    bail!("not confirmed");
                }
            }
            // Sent to the named site itself: forced promotion is local.
            let status = client::status_doc(conn(cli)?.get("/status").await?)?;
            if status.site(to).is_none() {
                bail!("unknown site {to:?}");
            }
            admin(cli, "force-promote", Some(to.as_str()), None).await?;
        }
        Cmd::Reload { node } => reload(cli, node.as_deref()).await?,
        Cmd::Pause => pause_switch(cli, true).await?,
        Cmd::Resume => pause_switch(cli, false).await?,
        Cmd::Maintenance { state, site, reason } => maintenance(cli, site, state == "on", reason.as_deref()).await?,
        Cmd::Wait { active, ready, reachable, pending, timeout } => {
            let until = match (active, ready, reachable) {
                (Some(site), _, _) => Until::Active(site),
                (_, Some(site), _) => Until::Ready(site),
                (_, _, Some(node)) => Until::Reachable(node),
                _ if *pending => Until::Pending,
                _ => bail!("give --active SITE, --ready SITE, --reachable NODE or --pending"),
            };
            wait(&conn(cli)?, until, *timeout).await?;
        }
        Cmd::Completions { shell } => {
            // Written whole, so a closed pipe is handled as for every line.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "failoverctl", &mut script);
            output::bytes(&script);
        }
        Cmd::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            output::bytes(&page);
        }
        Cmd::Certs { command } => {
            let written = match command {
                CertsCmd::Init { out, issued } => failover_controller::certs::init(issued.request(), out)?,
                CertsCmd::Issue { ca_dir, out, issued } => {
                    failover_controller::certs::issue(issued.request(), ca_dir, out)?
                }
            };
            for file in written {
                say!("wrote {}", file.display());
            }
        }
        Cmd::History { json, store: false } => history(cli, *json).await?,
        Cmd::History { json, store: true } => {
            let answer = conn(cli)?.get_answered("/history/store").await?;
            if *json {
                say!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                output::print_stored_history(&answer)?;
            }
        }
        Cmd::Whoami => {
            let answer = conn(cli)?.admin("whoami", json!({})).await?;
            say!("{}", output::whoami(&answer));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    failover_controller::install_crypto_provider();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failoverctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failoverctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_too_far_ahead_is_refused_before_calling_and_a_past_time_is_left_to_the_node() {
        let far = "9999-12-31T23:59:59.6Z";
        let refused = parse_at(far).expect_err("the year 9999 was let through");
        assert!(refused.contains(&format!("{far:?}")) && refused.contains("limit of 365 days"), "{refused}");
        assert!(parse_at("tomorrow").is_err_and(|e| e.contains("is not a time")));
        let soon = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(3600));
        assert_eq!(parse_at(&soon.to_string()), Ok(soon.to_string()));
        let past = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(600));
        assert_eq!(parse_at(&past.to_string()), Ok(past.to_string()));
    }

    #[test]
    fn a_peer_of_another_cluster_is_shown_with_both_names() {
        use failover_controller::agreement::Mismatch;
        let doc = json!({
            "node": "site-a", "role": "active", "active_site": "site-a", "epoch": 3, "last_known_epoch": 3,
            "term": 4, "mode": "automatic", "paused": false, "pending_failover": null,
            "lease_remaining_ms": 1000, "fence_ahead": null, "cluster_fingerprint": "0123456789abcdef",
            "cluster_name": "prod", "timers": null, "scheduled_switchover": null, "mongodb": null,
        });
        let v: StatusDoc = serde_json::from_value(doc).expect("a status document");
        let seen = |theirs: &str, cluster: &str| Mismatch {
            peer: "site-b".into(),
            theirs: theirs.into(),
            cluster: cluster.into(),
            refused: true,
        };
        let line = output::mismatch(&v, &seen("0123456789abcdef", "staging"));
        assert!(
            line.starts_with("ANOTHER CLUSTER: site-b") && line.contains("\"staging\"") && line.contains("\"prod\"")
        );
        let line = output::mismatch(&v, &seen("fedcba9876543210", "prod"));
        assert!(line.starts_with("CONFIG MISMATCH: site-b") && line.contains("fedcba9876543210"), "{line}");
        assert!(output::mismatch(&v, &seen("0123456789abcdef", "")).starts_with("UNVERIFIED CLUSTER: site-b"));
        assert!(output::mismatch(&v, &seen("", "")).starts_with("UNVERIFIED CONFIG: site-b"));
        // From a node of a build that shows no cluster name: the fingerprint decides.
        let older = StatusDoc { cluster_name: String::new(), ..v };
        assert!(output::mismatch(&older, &seen("fedcba9876543210", "staging")).starts_with("CONFIG MISMATCH"));
    }

    #[test]
    fn a_wait_longer_than_a_year_is_refused() {
        assert_eq!(parse_timeout("365days"), Ok(MAX_WAIT));
        assert!(parse_timeout("366days").is_err_and(|e| e.contains("\"366days\"") && e.contains("365 days")));
        assert!(parse_timeout("18446744073709551615s").is_err());
    }
}
