//! Starts a node: state file, protocol loop, peer gRPC, HTTP endpoints,
//! health checks, signal handling. Shared by `failover-controller` and
//! `failover-witness`.

use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use failover_code_pages::{StartUpMappings, TrimError};
use failover_core::{Command, MemberKind, Node};
use tokio::sync::{mpsc, oneshot, watch};

use crate::build::Targets;
use crate::health::HealthChecks;
use crate::http::{self, AppState};
use crate::http_server;
use crate::limits;
use crate::listen::Admission;
use crate::logging::LogControl;
use crate::metrics::Metrics;
use crate::peer::{self, Senders};
use crate::persist::StateFile;
use crate::reload::{LiveParts, Reloader};
use crate::reports::ReloadReport;
use crate::runtime::Runtime;
use crate::settings::{Loaded, OnStop};
use crate::slots::ConnectionSlots;
use crate::snapshot::NodeSnapshot;
use crate::{clock, settings};

/// Which binary is starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `failover-controller`: a site.
    Site,
    /// `failover-witness`: votes only.
    Witness,
}

/// Why a node could not start or stopped unexpectedly, as its operator
/// reads it.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    /// The configuration is for the other daemon, or asks it for something
    /// it does not do.
    #[error("{file}: {problem}")]
    NotForThisDaemon {
        /// The configuration file.
        file: String,
        /// What does not fit and what to do.
        problem: String,
    },
    /// The state file cannot be read or written.
    #[error(transparent)]
    State(#[from] crate::persist::PersistError),
    #[error(transparent)]
    Init(#[from] crate::persist::InitError),
    /// `repair-ceiling` could not do its work.
    #[error(transparent)]
    Repair(#[from] crate::repair::RepairCommandError),
    /// The protocol refused to start.
    #[error("starting the protocol")]
    Protocol(#[source] failover_core::StartError),
    /// An address could not be bound.
    #[error("binding {what} {address}")]
    Bind {
        /// `peer address` or `HTTP address`.
        what: &'static str,
        /// The address (with the name it was resolved from, if any).
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer transport could not be set up.
    #[error(transparent)]
    PeerTransport(#[from] tonic::transport::Error),
    /// The client for calls to other nodes could not be built.
    #[error("building the HTTP client for calls to other nodes")]
    HttpClient(#[source] reqwest::Error),
    /// The async runtime or a signal handler could not be set up.
    #[error(transparent)]
    Setup(std::io::Error),
    /// The protocol loop panicked.
    #[error("protocol loop panicked")]
    LoopPanicked(#[source] tokio::task::JoinError),
    /// The protocol loop returned while the node was running.
    #[error("protocol loop ended unexpectedly")]
    LoopEnded,
}

/// Loads and validates `path` for `kind` and builds what it describes,
/// with errors fit for an operator.
pub fn load(path: &std::path::Path, kind: Kind) -> Result<(Loaded, Targets), DaemonError> {
    let loaded = settings::load(path)?;
    let targets = crate::build::targets(&loaded)?;
    let member = &loaded.cluster.members[loaded.me.index()];
    let refuse = |problem: String| Err(DaemonError::NotForThisDaemon { file: path.display().to_string(), problem });
    let hooks: Vec<String> = loaded.settings.hooks.configured().map(|h| format!("hooks.{}", h.name())).collect();
    match (kind, member.kind) {
        (Kind::Site, MemberKind::Witness) => {
            refuse(format!("node.name {:?} is a witness; run failover-witness for it", member.name))
        }
        (Kind::Witness, MemberKind::Site { .. }) => {
            refuse(format!("node.name {:?} is a site; run failover-controller for it", member.name))
        }
        (Kind::Witness, _) if !loaded.settings.checks.is_empty() => {
            refuse("a witness runs no health checks; remove [[checks]]".into())
        }
        (Kind::Witness, _) if !hooks.is_empty() => {
            refuse(format!("a witness runs no hooks; remove {} ([hooks] is for sites)", hooks.join(", ")))
        }
        (Kind::Witness, _) if targets.mongodb.is_some() => {
            refuse("a witness does not coordinate MongoDB; remove [mongodb] (map the arbiter to the witness in the sites' files)".into())
        }
        (Kind::Witness, _) if !targets.actuators.is_empty() => {
            refuse("a witness never touches traffic; remove [actuators]".into())
        }
        _ => Ok((loaded, targets)),
    }
}

/// Runs the node until SIGTERM or SIGINT (what an active site does then is
/// `node.on_stop`); SIGHUP and `failoverctl reload` reload the file.
pub async fn run(
    loaded: Loaded,
    targets: Targets,
    kind: Kind,
    log: LogControl,
    start_up: Result<StartUpMappings, TrimError>,
) -> Result<(), DaemonError> {
    let files = limits::raise_open_files();
    let caps = limits::ConnectionCaps::for_open_files(files.soft);
    tracing::info!(
        open_files = files.soft,
        open_files_was = files.was,
        open_files_hard = files.hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string()),
        http_connections = caps.http,
        http_connections_per_source = caps.http_slots().per_source,
        peer_connections = caps.peer,
        "open-files limit and connection caps"
    );
    let http_slots = ConnectionSlots::new(&caps.http_slots());
    let unresolved = crate::unresolved::Unresolved::default();
    let peer_policy = caps.peer_slots(member_ips(&loaded, &unresolved).await);
    tracing::info!(
        member_addresses = ?peer_policy.reserved,
        peer_connections_per_member = peer_policy.per_reserved,
        peer_connections_per_source = peer_policy.per_source,
        "peer connections reserved for the members' addresses"
    );
    let peer_slots = ConnectionSlots::new(&peer_policy);
    let cfg = Arc::new(loaded.cluster.clone());
    let me = loaded.me;
    let my = loaded.my_member().clone();
    let (names, owner) = state_owner(&loaded);
    let state = StateFile::open(&loaded.settings.node.state_dir, names, owner)?;
    let stored = state.load()?;
    // Opened under the state directory's lock, like the state file.
    let history = crate::event_history::History::open(&loaded.settings.node.state_dir, &my.name);
    let pinned = crate::repair::at_ceiling(&stored.state, state.notebook().current().version);
    if !pinned.is_empty() {
        tracing::error!(
            counters = ?pinned,
            "a counter of the state file is at the ceiling (2^48): this node runs no election, or the pause or \
             maintenance setting can no longer change; stop every node and repair each with this daemon's \
             repair-ceiling (docs/operations.md, \"Counters at the ceiling\")"
        );
    }
    if stored.state.recovering {
        tracing::warn!(
            state = %state.path().display(),
            existed = stored.existed,
            "this node lost its state file (or never had one: the first start of a new cluster's node is `init`): \
             it votes only once every other electable site and a majority of votes have told it the cluster's term \
             and last chosen site; /status shows whom it still waits for"
        );
    }
    if let Some(before) = &stored.config_changed_from {
        tracing::info!(
            before = %before,
            now = %crate::agreement::fingerprint(&cfg),
            "the shared configuration (members, votes, priorities) changed since this node last ran"
        );
    }
    let durable = stored.state;
    let seed = u64::from(std::process::id()) ^ clock::now().as_millis().rotate_left(17);
    let mut node = Node::new(cfg.clone(), me, durable, clock::now(), seed).map_err(DaemonError::Protocol)?;
    // With checks configured the site starts unhealthy until they pass;
    // a site taking its role back in place counts as healthy until a check
    // actually fails (it was healthy and active a moment ago, and its checks
    // have not run yet: handing over for that would undo the restart).
    // With MongoDB configured, data counts as lagging until first read.
    let resuming = node.status(clock::now()).role == failover_core::RoleName::Resuming;
    let local = failover_core::LocalHealth {
        healthy: loaded.checks.is_empty() || resuming,
        caught_up: targets.mongodb.is_none(),
    };
    node.set_health(clock::now(), local);
    tracing::info!(node = %my.name, term = durable.term.0, state = %state.path().display(), "starting");
    if loaded.tls.is_none() {
        tracing::warn!(
            "PEERS UNAUTHENTICATED: no [tls] (cluster.allow_unauthenticated_peers = true): anyone who can reach \
             this node's peer port {} can vote and grant leases as any member. Use mutual TLS \
             (failoverctl certs init, then [tls]) unless nobody else can reach this network",
            my.peer_address
        );
    }

    let listen = &loaded.settings.node;
    let peer_listener = bind("peer address", listen.listen_peer_address, &my.peer_address).await?;
    let http_listener = bind("HTTP address", listen.listen_http_address, &my.http_address).await?;

    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let (command_tx, command_rx) = mpsc::channel(16);
    let (health_tx, health_rx) = mpsc::channel(16);
    let peers = loaded
        .settings
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me.index())
        .filter_map(|(i, m)| u8::try_from(i).ok().map(|i| (failover_core::NodeId(i), m.peer_address.clone())))
        .collect();
    let rpc_timeout = cfg.timers.heartbeat_interval.max(Duration::from_millis(200));
    let agreement = Arc::new(crate::agreement::Agreement::new(&cfg, &loaded.settings.cluster.name));
    tracing::info!(fingerprint = %agreement.ours(), "cluster config fingerprint (members, votes, priorities)");
    let notes = state.notebook();
    // What a reload replaces: each user reads the latest value.
    let peer_tls = loaded.tls.clone().map(|files| watch::channel(files).0);
    let http_tls = loaded.http_tls.clone().map(|tls| watch::channel(tls).0);
    let mongo_links = targets.mongodb.clone().map(|link| watch::channel(link).0);
    let senders = Senders::start(
        cfg.clone(),
        me,
        peers,
        rpc_timeout,
        peer_tls.as_ref().map(watch::Sender::subscribe),
        agreement.clone(),
        unresolved.clone(),
    )?
    .with_notes(notes.clone());
    let snapshot = NodeSnapshot::new(node.status(clock::now()));
    crate::cert_expiry::publish(&loaded, &snapshot);
    let mut event_log = None;
    if let Some(links) = &mongo_links {
        crate::mongo::monitor::spawn(links.subscribe(), my.name.clone(), snapshot.clone(), health_tx.clone());
        if links.borrow().state_store == crate::mongo::StateStoreKind::Mongodb {
            event_log = Some(crate::mongo::store::spawn_event_log(links.subscribe(), my.name.clone()));
        }
    }
    let health = Arc::new(HealthChecks::start(loaded.checks.clone(), resuming, snapshot.clone(), health_tx));
    let (hooks_tx, hooks_rx) = mpsc::channel(1);
    let (fenced_tx, fenced_rx) = mpsc::channel(4);
    let actuation = crate::actuate::Actuation::start(targets.actuators, snapshot.clone(), fenced_tx);
    let actuators = actuation.running();
    let (probe_tx, probe_rx) = mpsc::channel(1);
    let runtime = Runtime {
        node,
        cfg: cfg.clone(),
        state,
        senders,
        inbound: inbound_rx,
        commands: command_rx,
        health: health_rx,
        local,
        fenced: fenced_rx,
        event_log,
        history: history.clone(),
        hooks: loaded.settings.hooks.clone(),
        hook_updates: hooks_rx,
        snapshot: snapshot.clone(),
        actuation,
        probes: probe_rx,
        recorded: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let peer_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.changed().await;
        }
    };
    let peer_admission = Admission { slots: peer_slots.clone(), first_byte_within: limits::FIRST_BYTE_WITHIN };
    let receiver = peer::Receiver {
        cfg: cfg.clone(),
        me,
        inbound: inbound_tx,
        agreement: agreement.clone(),
        notes: notes.clone(),
    };
    let peer_task = tokio::spawn(peer::serve(
        peer_listener,
        peer_admission,
        receiver,
        peer_tls.as_ref().map(watch::Sender::subscribe),
        peer_stop,
    ));
    let admin =
        Arc::new(crate::admin_auth::AdminGate::new(loaded.operators.clone(), loaded.settings.admin.refusal_window));
    let (reload_tx, mut reload_rx) = mpsc::channel::<oneshot::Sender<ReloadReport>>(4);
    let node_client =
        watch::channel(crate::http_tls::node_client(loaded.http_tls.as_ref()).map_err(DaemonError::HttpClient)?).0;
    let app = AppState {
        cfg: cfg.clone(),
        me,
        http_addresses: Arc::new(loaded.settings.members.iter().map(|m| m.http_address.clone()).collect()),
        unresolved,
        snapshot: snapshot.clone(),
        commands: command_tx.clone(),
        admin: admin.clone(),
        reload: reload_tx,
        forward_token_over_http: loaded.settings.admin.forward_token_over_http,
        peer_authentication: if loaded.tls.is_some() { "mutual_tls" } else { "none" },
        metrics: Arc::new(
            Metrics::default().with_ports(vec![("http", http_slots.clone()), ("peer", peer_slots.clone())]),
        ),
        client: node_client.subscribe(),
        http_scheme: if loaded.http_tls.is_some() { "https" } else { "http" },
        agreement,
        notes,
        history: history.clone(),
        mongo: mongo_links.as_ref().map(watch::Sender::subscribe),
    };
    let http_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.changed().await;
        }
    };
    let http_task = tokio::spawn(http_server::serve(
        http_listener,
        http::router(app),
        http_tls.as_ref().map(watch::Sender::subscribe),
        http_slots.clone(),
        http_stop,
    ));
    let mut loop_task = tokio::spawn(runtime.run());
    crate::systemd::ready(&cfg, &snapshot);
    crate::systemd::spawn_watchdog(probe_tx, cfg.clone(), snapshot.clone());
    crate::code_trim::spawn(start_up, snapshot.clone());

    let live = LiveParts {
        admin,
        hooks: hooks_tx,
        checks: health,
        log,
        snapshot: snapshot.clone(),
        actuators,
        peer_tls,
        http_tls,
        node_client,
        mongo_links,
    };
    let validate: crate::reload::Validate =
        Box::new(move |path| load(path, kind).map_err(|e| crate::describe::with_causes(&e)));
    let mut reloader = Reloader::new(loaded, live, validate);

    let signal = |kind| tokio::signal::unix::signal(kind).map_err(DaemonError::Setup);
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        let reply = tokio::select! {
            _ = term.recv() => break tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => break tracing::info!("SIGINT: stopping"),
            _ = hup.recv() => None,
            Some(reply) = reload_rx.recv() => Some(reply),
            result = &mut loop_task => {
                let _ = stop_tx.send(true);
                result.map_err(DaemonError::LoopPanicked)??;
                return Err(DaemonError::LoopEnded);
            }
        };
        crate::systemd::reloading();
        let report = reloader.reload().await;
        crate::systemd::ready(&cfg, &snapshot);
        if let Some(reply) = reply {
            let _ = reply.send(report);
        }
    }
    let on_stop = reloader.running().on_stop;
    crate::systemd::stopping();
    tracing::info!(?on_stop, "stopping");
    match on_stop {
        // The role stays with this site; a process back within the lease
        // takes it back in place (the state file records it).
        OnStop::KeepRole if snapshot.active_or_handing_over() => {
            tracing::info!(
                "keeping the active role (node.on_stop = \"keep_role\"): a restart within the lease takes it back"
            )
        }
        OnStop::KeepRole => {}
        OnStop::HandOver => {
            // Ask the core to hand over (it does nothing while paused), then
            // wait (bounded) until this node no longer acts as active and
            // the handoff had time to finish.
            let (tx, rx) = oneshot::channel();
            if command_tx.send((Command::Shutdown, tx)).await.is_ok() {
                let _ = rx.await;
            }
            let limit = cfg.timers.lease_duration * 2 + cfg.timers.drain;
            let deadline = tokio::time::Instant::now() + limit;
            while tokio::time::Instant::now() < deadline {
                // Paused, the core keeps the role: nothing to wait for.
                if !snapshot.active_or_handing_over() || snapshot.status().paused {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Give the TimeoutNow a moment to leave before the sockets close.
    tokio::time::sleep(cfg.timers.heartbeat_interval.min(Duration::from_millis(200))).await;
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    let _ = peer_task.await;
    loop_task.abort();
    let synced = tokio::task::spawn_blocking(move || history.sync(Duration::from_secs(5))).await;
    if !matches!(synced, Ok(true)) {
        tracing::warn!("the newest events may not have reached the history file");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The IP addresses of every member's peer address, for the slots the peer
/// port reserves: each name resolved now, every address it has (a name
/// with several reserves slots for each). A name that does not resolve
/// reserves nothing; its members' connections share the pool like any
/// other source until the daemon restarts.
async fn member_ips(loaded: &Loaded, unresolved: &crate::unresolved::Unresolved) -> Vec<std::net::IpAddr> {
    let mut ips = Vec::new();
    for m in &loaded.settings.members {
        match m.peer_address.resolve().await {
            Ok(found) => ips.extend(found.iter().map(std::net::SocketAddr::ip)),
            Err(e) => {
                tracing::warn!(member = %m.name, "peer-address {e}; no peer connections are reserved for it");
                unresolved.record(&m.name, Err(&e));
            }
        }
    }
    ips
}

/// Binds `listen` when given, else the first address `own` resolves to
/// (an IP literal: itself).
async fn bind(
    what: &'static str,
    listen: Option<std::net::SocketAddr>,
    own: &crate::host_port::HostPort,
) -> Result<tokio::net::TcpListener, DaemonError> {
    let address = match listen {
        Some(address) => address,
        None => match own.resolve().await {
            Ok(found) => found[0],
            Err(e) => {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string());
                return Err(DaemonError::Bind { what, address: own.to_string(), source });
            }
        },
    };
    let shown =
        if listen.is_some() || own.ip_literal().is_some() { address.to_string() } else { format!("{address} ({own})") };
    tokio::net::TcpListener::bind(address).await.map_err(|source| DaemonError::Bind { what, address: shown, source })
}

#[derive(Parser)]
struct DaemonCli {
    #[command(subcommand)]
    command: DaemonCommand,
}

#[derive(Subcommand)]
enum DaemonCommand {
    /// Run the daemon.
    Run {
        /// Configuration file (TOML); FAILOVER_* variables override it.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The first start of a node of a new cluster: write its initial state
    /// (term 0, no vote) into node.state_dir. Refused when a state file is
    /// there. Without it a node with no state file counts as one that lost
    /// it, and votes only once it has caught up with the other members.
    Init {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and exit.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// With the node stopped, show the counters of its state file at the
    /// ceiling (2^48) and, with --to, set them to that value
    /// (docs/operations.md, "Counters at the ceiling").
    RepairCeiling {
        /// Configuration file (TOML): its node.state_dir is repaired.
        #[arg(long, short)]
        config: PathBuf,
        /// The new value: below the ceiling and above every counter below
        /// it on every node of the cluster. Without it nothing is written.
        #[arg(long)]
        to: Option<u64>,
        /// Treat counters at or over this value as hostile too (default:
        /// the ceiling): for a message a little below 2^48.
        #[arg(long)]
        from: Option<u64>,
    },
}

/// The member names, in order, and the owner written into the state file.
fn state_owner(loaded: &Loaded) -> (Vec<String>, crate::persist::Owner) {
    let names: Vec<String> = loaded.cluster.members.iter().map(|m| m.name.clone()).collect();
    let owner = crate::persist::Owner {
        cluster: loaded.settings.cluster.name.clone(),
        node: loaded.my_member().name.clone(),
        config_fingerprint: crate::agreement::fingerprint(&loaded.cluster),
    };
    (names, owner)
}

/// The tokio runtime a node runs on. The witness runs on one worker
/// thread: it only votes and answers status and metrics, and every further
/// worker (one per core by default) costs it a thread stack and possibly its own
/// malloc arena, on the smallest VM it is meant for. It stays a multi-thread
/// runtime so that the state file's fsync can leave the worker
/// (`block_in_place`), as on a site.
fn tokio_runtime(kind: Kind) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if kind == Kind::Witness {
        builder.worker_threads(1);
    }
    builder.enable_all().build()
}

/// The whole `main` of `failover-controller` and `failover-witness`:
/// `run`, `init`, `check-config` or `repair-ceiling`, each with
/// `--config F`; errors are printed as one
/// chain with the binary's name and give a non-zero exit.
pub fn cli_main(kind: Kind) -> ExitCode {
    // First, before anything could open a library: what may be unmapped
    // once the daemon has started.
    let start_up = StartUpMappings::record();
    crate::install_crypto_provider();
    let (name, about, role) = match kind {
        Kind::Site => ("failover-controller", "Site controller of the failover cluster", "site"),
        Kind::Witness => ("failover-witness", "Witness (voter only) of the failover cluster", "witness"),
    };
    let matches = DaemonCli::command().name(name).bin_name(name).about(about).get_matches();
    let cli = match DaemonCli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        DaemonCommand::CheckConfig { config } => load(&config, kind).map(|(l, targets)| {
            for bad in l.unresolved_addresses() {
                eprintln!("{name}: warning: {} (the daemon resolves it again at each connection)", l.refusal(bad));
            }
            let observing = |a: &crate::actuate::Actuator| a.actuation() == crate::actuation_mode::ActuationMode::Observe;
            let actuators: Vec<String> = targets
                .actuators
                .iter()
                .map(|a| if observing(a) { format!("{} (observe)", a.name()) } else { a.name().to_owned() })
                .collect();
            let actuators = if actuators.is_empty() { "none".to_owned() } else { actuators.join(", ") };
            println!("{}: ok ({} as {role}; actuators: {actuators})", config.display(), l.my_member().name)
        }),
        DaemonCommand::Init { config } => load(&config, kind).and_then(|(loaded, _)| {
            let (names, owner) = state_owner(&loaded);
            let file = crate::persist::StateFile::open(&loaded.settings.node.state_dir, names, owner)?;
            file.init()?;
            println!("{}: initial state of {} written", file.path().display(), loaded.my_member().name);
            Ok(())
        }),
        DaemonCommand::RepairCeiling { config, to, from } => load(&config, kind).and_then(|(loaded, _)| {
            let (names, owner) = state_owner(&loaded);
            let report = crate::repair::repair_state_dir(&loaded.settings.node.state_dir, names, owner, to, from)?;
            print!("{report}");
            Ok(())
        }),
        DaemonCommand::Run { config } => load(&config, kind).and_then(|(loaded, targets)| {
            let log = crate::logging::init(loaded.log_format, loaded.settings.node.log_level.as_deref());
            // Before any hook or check can start: closes this process's
            // environment (FAILOVER_ADMIN__TOKEN) and memory to them.
            if let Err(e) = crate::shell::hide_from_same_user() {
                tracing::warn!(error = %e, "could not make the daemon non-dumpable; hooks of its user may read its environment");
            }
            let runtime = tokio_runtime(kind).map_err(DaemonError::Setup)?;
            runtime.block_on(run(loaded, targets, kind, log, start_up))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {}", crate::describe::with_causes(&e));
            ExitCode::FAILURE
        }
    }
}
