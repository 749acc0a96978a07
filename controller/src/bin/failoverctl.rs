//! `failoverctl`: the operator CLI. Talks to any node's HTTP API; a request
//! the node cannot carry out goes to the one that can: the node forwards it,
//! or (when it would not send the token on over plain HTTP) answers 421 with
//! that node's HTTP address, and failoverctl calls it there.
//! Exit status 0 on success, non-zero with a one-line reason otherwise.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "failoverctl", version, about = "Operate a failover cluster")]
struct Cli {
    /// Node HTTP endpoint, e.g. 127.0.0.1:8401 (repeatable; the first that
    /// answers is used).
    #[arg(long = "endpoint", short = 'e', env = "FAILOVERCTL_ENDPOINTS", value_delimiter = ',', global = true)]
    endpoints: Vec<String>,
    /// Admin token for mutating calls.
    #[arg(long, env = "FAILOVERCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
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
        /// When (RFC 3339, e.g. 2026-11-22T03:00:00Z).
        #[arg(long)]
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
    /// Recent events.
    History,
    /// Wait until a condition holds (for scripts and runbooks); exits
    /// non-zero if it does not within --timeout.
    Wait {
        /// Until this site is the active site (seen by the node that holds
        /// the lease).
        #[arg(long, conflicts_with = "ready")]
        active: Option<String>,
        /// Until the active site has, for one whole lease, judged that it
        /// would accept a switchover to this site: reachable, healthy,
        /// caught up and in touch with a majority.
        #[arg(long, required_unless_present = "active")]
        ready: Option<String>,
        /// How long to wait, e.g. 30s or 2m.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
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

fn parse_http_name(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((node, name)) if !node.is_empty() && !name.is_empty() => Ok((node.to_owned(), name.to_owned())),
        _ => Err(format!("{text:?}: give NODE=NAME, e.g. site-a=10.1.0.10")),
    }
}

fn client(cli: &Cli) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(15));
    if let Some(path) = &cli.ca_file {
        for cert in failover_controller::http_tls::read_ca_file(path).map_err(|e| anyhow!("--ca-file: {e}"))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

fn base(endpoint: &str) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.trim_end_matches('/').to_string()
    } else {
        format!("http://{endpoint}")
    }
}

async fn get(cli: &Cli, path: &str) -> anyhow::Result<Value> {
    let c = client(cli)?;
    let mut last = anyhow!("no --endpoint given (or FAILOVERCTL_ENDPOINTS)");
    for e in &cli.endpoints {
        match c.get(format!("{}{path}", base(e))).send().await {
            Ok(r) => return r.json().await.with_context(|| format!("{e}: bad JSON")),
            Err(err) => last = anyhow!("{e}: {err}"),
        }
    }
    Err(last)
}

/// How many times one admin call follows a node's 421 to the node it names.
const MAX_REDIRECTS: usize = 2;

/// Sends an admin call to `endpoint`; on 421 Misdirected Request, calls the
/// node the answer names (`carried_out_by.http_address`), at most
/// [`MAX_REDIRECTS`] times, and says so on stderr.
async fn admin_call(
    c: &reqwest::Client,
    cli: &Cli,
    endpoint: &str,
    command: &str,
    body: &Value,
) -> reqwest::Result<(reqwest::StatusCode, Value)> {
    let mut endpoint = endpoint.to_owned();
    let mut redirects = 0;
    loop {
        let mut req = c.post(format!("{}/admin/{command}", base(&endpoint))).json(body);
        if let Some(t) = &cli.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(json!({}));
        let next = v.pointer("/carried_out_by/http_address").and_then(Value::as_str);
        match next {
            Some(next) if status == reqwest::StatusCode::MISDIRECTED_REQUEST && redirects < MAX_REDIRECTS => {
                let node = v.pointer("/carried_out_by/node").and_then(Value::as_str).unwrap_or("?");
                eprintln!("failoverctl: {endpoint} does not carry out {command}; calling {node} at {next}");
                // The named node is called with the scheme the first one was.
                let scheme = if base(&endpoint).starts_with("https://") { "https" } else { "http" };
                endpoint = format!("{scheme}://{next}");
                redirects += 1;
            }
            _ => return Ok((status, v)),
        }
    }
}

async fn admin(cli: &Cli, command: &str, body: Value) -> anyhow::Result<()> {
    let c = client(cli)?;
    let mut last = anyhow!("no --endpoint given (or FAILOVERCTL_ENDPOINTS)");
    for e in &cli.endpoints {
        match admin_call(&c, cli, e, command, &body).await {
            Ok((status, v)) => {
                if status.is_success() {
                    return Ok(());
                }
                let why = v.get("error").and_then(Value::as_str).unwrap_or("refused").to_owned();
                // 503: this node cannot carry it out or forward it (it does
                // not know the active site yet); the next endpoint may.
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    last = anyhow!("{why}");
                    continue;
                }
                bail!("{why}");
            }
            Err(err) => last = anyhow!("{e}: {err}"),
        }
    }
    Err(last)
}

/// The `/status` of the node that acts as active right now, if any endpoint
/// is one.
async fn active_status(cli: &Cli) -> Option<Value> {
    let c = client(cli).ok()?;
    for e in &cli.endpoints {
        let Ok(resp) = c.get(format!("{}/status", base(e))).timeout(Duration::from_secs(2)).send().await else {
            continue;
        };
        if let Ok(v) = resp.json::<Value>().await {
            if v.get("role").and_then(Value::as_str) == Some("active") {
                return Some(v);
            }
        }
    }
    None
}

async fn wait(cli: &Cli, active: Option<&str>, ready: Option<&str>, timeout: Duration) -> anyhow::Result<()> {
    if active.is_none() && ready.is_none() {
        bail!("give --active SITE or --ready SITE");
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no endpoint answered as the active site");
    // Since when the active site has judged the site ready, without a break.
    let mut ready_since: Option<tokio::time::Instant> = None;
    while tokio::time::Instant::now() < deadline {
        let now = tokio::time::Instant::now();
        let Some(v) = active_status(cli).await else {
            ready_since = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let node = v.get("node").and_then(Value::as_str).unwrap_or("?").to_owned();
        if let Some(site) = active {
            if node == site {
                return Ok(());
            }
            last = format!("the active site is {node}");
        }
        if let Some(site) = ready {
            // Ready means what the switchover command will check: the active
            // site's own verdict on that site, not a guess from its fields,
            // and for one whole lease: a site that has just restarted is
            // still judged by its last report before the restart until its
            // first message arrives, and that one may say it does not yet
            // reach a majority.
            let entry = v
                .get("sites")
                .and_then(Value::as_array)
                .and_then(|sites| sites.iter().find(|s| s.get("id").and_then(Value::as_str) == Some(site)));
            let lease = Duration::from_millis(v.pointer("/timers/lease_ms").and_then(Value::as_u64).unwrap_or(1000));
            if entry.and_then(|s| s.get("switchover_target")).and_then(Value::as_bool) == Some(true) {
                if now.duration_since(*ready_since.get_or_insert(now)) >= lease {
                    return Ok(());
                }
            } else {
                ready_since = None;
            }
            last = match entry.and_then(|s| s.get("switchover_refused_because")).and_then(Value::as_str) {
                Some(why) => format!("the active site {node} says: {why}"),
                None => format!("the active site {node} has not judged {site} ready for a whole lease"),
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("not within {}: {last}", humantime::format_duration(timeout))
}

fn print_status(v: &Value) {
    let s = |k: &str| v.get(k).map_or("-".to_string(), |x| x.as_str().map_or(x.to_string(), str::to_string));
    println!(
        "active: {}   epoch: {}   term: {}   mode: {}   paused: {}",
        s("active_site"),
        s("epoch"),
        s("term"),
        s("mode"),
        s("paused")
    );
    println!("answered by: {} ({})", s("node"), s("role"));
    if v.get("peer_authentication").and_then(Value::as_str) == Some("none") {
        println!(
            "PEERS UNAUTHENTICATED: {} runs without mutual TLS; anyone who reaches a peer port can vote and grant \
             leases as any member (set up [tls] with failoverctl certs init)",
            s("node")
        );
    }
    if let Some(p) = v.get("pending_failover").filter(|p| !p.is_null()) {
        let target = p.get("target").and_then(Value::as_str).unwrap_or("?");
        println!(
            "PENDING FAILOVER to {target}: {} (since {})",
            p.get("reason").and_then(Value::as_str).unwrap_or("?"),
            p.get("since").and_then(Value::as_str).unwrap_or("?")
        );
        println!("  approve with: failoverctl approve --to {target}");
    }
    if let Some(stored) = v.get("fence_ahead").and_then(Value::as_u64) {
        println!(
            "FENCE ALARM: a target holds epoch {stored}, which {} (epoch {}) was not elected with: forged, or left by a \
             forced promotion; {} stays active and writes nothing over that target until it is corrected",
            s("node"),
            s("epoch"),
            s("node")
        );
    }
    for m in v.get("config_mismatches").and_then(Value::as_array).into_iter().flatten() {
        let peer = m.get("peer").and_then(Value::as_str).unwrap_or("?");
        match m.get("theirs").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(theirs) => println!(
                "CONFIG MISMATCH: {peer}'s members, votes or priorities differ from {}'s (fingerprint {theirs} there, {} \
                 here): messages both ways are refused until [[members]] is the same on every node",
                s("node"),
                s("cluster_fingerprint")
            ),
            None => println!("UNVERIFIED CONFIG: {peer} sends no cluster fingerprint (an older build)"),
        }
    }
    println!("{:<12} {:<8} {:>8} {:>8} {:>10} {:>12}", "SITE", "KIND", "PRIORITY", "HEALTHY", "REACHABLE", "LAST SEEN");
    for site in v.get("sites").and_then(Value::as_array).into_iter().flatten() {
        let f = |k: &str| site.get(k).map_or("-".to_string(), |x| x.as_str().map_or(x.to_string(), str::to_string));
        println!(
            "{:<12} {:<8} {:>8} {:>8} {:>10} {:>10}ms",
            f("id"),
            f("kind"),
            f("priority"),
            f("healthy"),
            f("reachable"),
            f("last_seen_ms")
        );
    }
    let actuators = v.get("actuators").and_then(Value::as_array).filter(|a| !a.is_empty());
    if let Some(actuators) = actuators {
        println!("actuators of {}:", s("node"));
        println!("  {:<20} {:<8} {:<10} {:>6}  DETAIL", "NAME", "KIND", "STATE", "EPOCH");
        for a in actuators {
            let f = |k: &str| a.get(k).map_or("-".to_string(), |x| x.as_str().map_or(x.to_string(), str::to_string));
            println!("  {:<20} {:<8} {:<10} {:>6}  {}", f("name"), f("kind"), f("state"), f("epoch"), f("detail"));
        }
    }
    if let Some(m) = v.get("mongodb").filter(|m| !m.is_null()) {
        print_mongodb(m, &s("node"));
    }
}

/// The replica set as the answering node sees it.
fn print_mongodb(m: &Value, node: &str) {
    let f = |v: &Value, k: &str| v.get(k).map_or("-".to_string(), |x| x.as_str().map_or(x.to_string(), str::to_string));
    let view = m.get("view").filter(|v| !v.is_null());
    match view {
        Some(view) => println!(
            "MongoDB replica set {} as {node} sees it: shape {}, primary {} ({}), majority writes {}, state store {}",
            f(view, "set"),
            f(view, "shape"),
            f(view, "primary"),
            f(view, "primary_site"),
            if view.get("majority_writes_available") == Some(&Value::Bool(true)) { "available" } else { "UNAVAILABLE" },
            f(m, "state_store"),
        ),
        None => println!("MongoDB replica set: not read yet (state store {})", f(m, "state_store")),
    }
    if view.and_then(|v| v.get("majority_needs_every_data_member")) == Some(&Value::Bool(true)) {
        println!("  losing one data member stops majority writes (primary-secondary-arbiter)");
    }
    if let Some(e) = m.get("error").and_then(Value::as_str) {
        println!("  cannot read the set: {e}");
    }
    if let Some(e) = m.get("placement_disabled").and_then(Value::as_str) {
        println!("  {e}");
    }
    match m.get("not_caught_up_because").and_then(Value::as_str) {
        Some(why) => println!("  {node} is NOT eligible for automatic failover: {why}"),
        None => println!("  {node}'s data is caught up"),
    }
    println!(
        "  {:<24} {:<10} {:<26} {:>7} {:>8} {:>5} {:>10}",
        "MEMBER", "SITE", "STATE", "HEALTHY", "PRIORITY", "VOTES", "LAG"
    );
    for member in view.and_then(|v| v.get("members")).and_then(Value::as_array).into_iter().flatten() {
        let lag = member.get("lag_ms").and_then(Value::as_u64).map_or("-".to_string(), |ms| format!("{ms}ms"));
        println!(
            "  {:<24} {:<10} {:<26} {:>7} {:>8} {:>5} {:>10}",
            f(member, "host"),
            f(member, "site"),
            f(member, "state"),
            f(member, "healthy"),
            f(member, "priority"),
            f(member, "votes"),
            lag
        );
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Cmd::Status { json } => {
            let v = get(cli, "/status").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
        Cmd::Switchover { cancel: true, .. } => admin(cli, "cancel-switchover", json!({})).await?,
        Cmd::Switchover { to, at, .. } => admin(cli, "switchover", json!({ "to": to, "at": at })).await?,
        Cmd::Approve { to } => admin(cli, "approve", json!({ "to": to })).await?,
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
            let status = get(cli, "/status").await?;
            let sites = status.get("sites").and_then(Value::as_array).cloned().unwrap_or_default();
            if !sites.iter().any(|s| s.get("id").and_then(Value::as_str) == Some(to)) {
                bail!("unknown site {to:?}");
            }
            admin(cli, "force-promote", json!({ "to": to })).await?;
        }
        Cmd::Pause => admin(cli, "pause", json!({})).await?,
        Cmd::Resume => admin(cli, "resume", json!({})).await?,
        Cmd::Wait { active, ready, timeout } => wait(cli, active.as_deref(), ready.as_deref(), *timeout).await?,
        Cmd::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "failoverctl", &mut std::io::stdout());
        }
        Cmd::Man => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Cmd::Certs { command } => {
            let written = match command {
                CertsCmd::Init { out, issued } => failover_controller::certs::init(issued.request(), out)?,
                CertsCmd::Issue { ca_dir, out, issued } => {
                    failover_controller::certs::issue(issued.request(), ca_dir, out)?
                }
            };
            for file in written {
                println!("wrote {}", file.display());
            }
        }
        Cmd::History => {
            let v = get(cli, "/history").await?;
            for e in v.get("events").and_then(Value::as_array).into_iter().flatten() {
                println!(
                    "{}  {}",
                    e.get("at").and_then(Value::as_str).unwrap_or(""),
                    e.get("event").and_then(Value::as_str).unwrap_or("")
                );
            }
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
