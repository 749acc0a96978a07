//! HTTP endpoints on every node: `/` (a status page for people), `/status`
//! (JSON), `/active` (200 only on the site holding a valid lease, for load
//! balancer checks), `/standby` (200 on a standby that may take read
//! traffic) and `/readyz` (200 when the node can serve its role), both
//! decided by [`crate::serving`], `/healthz` (liveness), `/metrics`
//! (Prometheus), `/history`,
//! `/actuators` (this node's) and `/actuators/active` (the active site's),
//! and the admin calls under `/admin/` that `failoverctl` uses. An admin call that this node cannot
//! carry out is forwarded to the node that can, unless it carries a token
//! and `admin.forward_token_over_http` is off: then the answer is 421 with
//! that node's name and HTTP address, for the caller to call it there.
//! Who may make admin calls is [`crate::admin_auth`]'s to say. Every admin
//! call, accepted or refused, is logged and recorded in the node's event
//! history ([`crate::event_history`]) with its operator, source, command,
//! target and result (refusals of bad tokens at most once per source per
//! [`crate::admin_auth::LOG_EVERY`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use failover_core::{ClusterConfig, Command, CommandError, NodeId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::admin_auth::{AdminGate, Caller, Refusal, Refused};
use crate::command_channel::CommandRequest;
use crate::describe;
use crate::event_history::History;
use crate::host_port::HostPort;
use crate::http_status::StatusInputs;
use crate::maintenance_notes::{Notebook, SiteNote};
use crate::member_name::of as name;
use crate::metrics::Metrics;
use crate::reports::{AdminCall, HistoryDoc, UNKNOWN_OPERATOR};
use crate::snapshot::NodeSnapshot;
use crate::status_doc::StatusDoc;
use crate::unresolved::Unresolved;
use crate::{clock, http_status, serving};

/// The status page for people: one self-contained file (no external assets)
/// that reads `/status` and `/actuators/active` every second.
const STATUS_PAGE: &str = include_str!("page.html");

/// Header that counts forwarding hops.
const HOPS: &str = "x-failover-hops";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The cluster.
    pub cfg: Arc<ClusterConfig>,
    /// This node.
    pub me: NodeId,
    /// HTTP address of every member, by id.
    pub http_addresses: Arc<Vec<HostPort>>,
    /// Which peers' addresses do not resolve.
    pub unresolved: Unresolved,
    /// What the node publishes.
    pub snapshot: NodeSnapshot,
    /// Commands to the loop.
    pub commands: mpsc::Sender<CommandRequest>,
    /// The admin token check and the limit on refused attempts.
    pub admin: Arc<AdminGate>,
    /// Whether an admin call carrying a token may be forwarded over plain
    /// HTTP (`admin.forward_token_over_http`).
    pub forward_token_over_http: bool,
    /// How peers are authenticated: `mutual_tls` or `none`.
    pub peer_authentication: &'static str,
    /// Asks the daemon to reload its file; the outcome comes back.
    pub reload: mpsc::Sender<oneshot::Sender<crate::reports::ReloadReport>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Client for calls to the other nodes' HTTP ports (a reload replaces
    /// it when `admin.tls_ca_file` changes).
    pub client: tokio::sync::watch::Receiver<reqwest::Client>,
    /// `https` when the HTTP ports speak TLS ([`crate::http_tls`]), else
    /// `http`: this node calls the others with its own scheme.
    pub http_scheme: &'static str,
    /// Whether the peers' configs agree with this node's.
    pub agreement: Arc<crate::agreement::Agreement>,
    /// Who put each site in maintenance, when and why.
    pub notes: Arc<Notebook>,
    /// The node's event history, admin calls included.
    pub history: History,
    /// The `[mongodb]` section in use, if any: `/history/store` reads the
    /// state store's event log with it.
    pub mongo: Option<tokio::sync::watch::Receiver<crate::mongo::MongoLink>>,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    // Every route but two shares one limit of requests in progress; a
    // request beyond it waits (within the request timeout) for a place.
    let limited = Router::new()
        .route("/", get(|| async { axum::response::Html(STATUS_PAGE) }))
        .route("/actuators", get(actuators))
        .route("/actuators/active", get(active_actuators))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/history", get(history))
        .route("/history/store", get(stored_history))
        .route("/admin/{command}", post(admin))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(crate::limits::HTTP_CONCURRENT_REQUESTS));
    // `/active`, `/standby`, `/readyz` and `/healthz` stay outside it: a
    // load balancer's health check must never wait behind slow requests (a
    // client trickling a body holds its place until the request timeout),
    // and they read a few values.
    Router::new()
        .route("/active", get(active))
        .route("/standby", get(standby))
        .route("/readyz", get(readyz))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(limited)
        // Bodies are read only by admin calls, after the token check, and
        // never past this (413), instead of axum's 2 MB.
        .layer(DefaultBodyLimit::max(crate::limits::HTTP_MAX_BODY))
        .with_state(state)
}

async fn active(State(s): State<AppState>) -> Response {
    // Judged against the clock now, not when the loop last ran: a stalled
    // loop can never stretch the lease.
    if s.snapshot.lease_valid_now() {
        (StatusCode::OK, "active\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not active\n").into_response()
    }
}

/// 200 on a standby a load balancer may send traffic to, else 503 with the
/// reason ([`serving::standby`]).
async fn standby(State(s): State<AppState>) -> Response {
    match s.snapshot.read(|p| serving::standby(&s.cfg, &p.status)) {
        Ok(()) => (StatusCode::OK, "standby\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not standby: {why}\n")).into_response(),
    }
}

/// 200 when this node can serve its role, else 503 with the reason
/// ([`serving::readiness`]).
async fn readyz(State(s): State<AppState>) -> Response {
    let verdict = s.snapshot.read(|p| serving::readiness(&s.cfg, &p.status, p.lease.valid_at(clock::now())));
    match verdict {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}

/// The `/status` document.
pub async fn status_doc(s: &AppState) -> StatusDoc {
    s.snapshot.read(|published| {
        http_status::build(StatusInputs {
            cfg: &s.cfg,
            http_addresses: &s.http_addresses,
            unresolved: &s.unresolved,
            published,
            checks: published.checks.clone(),
            fingerprint: s.agreement.ours(),
            cluster_name: s.agreement.cluster(),
            mismatches: s.agreement.mismatches(),
            peer_authentication: s.peer_authentication,
            now: clock::now(),
            wall_now: std::time::SystemTime::now(),
            maintenance_notes: s.notes.current(),
        })
    })
}

async fn status(State(s): State<AppState>) -> Json<StatusDoc> {
    Json(status_doc(&s).await)
}

/// This node's actuators.
async fn actuators(State(s): State<AppState>) -> Json<serde_json::Value> {
    let list = s.snapshot.actuators();
    Json(json!({ "node": name(&s.cfg, s.me), "actuators": list }))
}

/// The active site's actuators, fetched from it when it is another node.
async fn active_actuators(State(s): State<AppState>) -> Response {
    let active = s.snapshot.read(|p| p.status.active_site);
    let Some(site) = active.filter(|a| *a != s.me) else { return actuators(State(s)).await.into_response() };
    let Some(addr) = s.http_addresses.get(site.index()) else {
        return error(StatusCode::BAD_GATEWAY, "no address for the active site");
    };
    let client = s.client.borrow().clone();
    let answer =
        client.get(format!("{}://{addr}/actuators", s.http_scheme)).timeout(Duration::from_secs(2)).send().await;
    match answer {
        Ok(resp) if resp.status().is_success() => match resp.json::<serde_json::Value>().await {
            Ok(v) => Json(v).into_response(),
            Err(e) => error(StatusCode::BAD_GATEWAY, format!("{}: {e}", name(&s.cfg, site))),
        },
        Ok(resp) => error(StatusCode::BAD_GATEWAY, format!("{} answered {}", name(&s.cfg, site), resp.status())),
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("{} cannot be reached: {e}", name(&s.cfg, site))),
    }
}

/// The node's history, oldest first.
async fn history(State(s): State<AppState>) -> Json<HistoryDoc> {
    Json(HistoryDoc { node: name(&s.cfg, s.me), events: s.history.events() })
}

/// How many of the newest events of the state store's log `/history/store`
/// answers with.
const STORED_EVENTS_SHOWN: u16 = 200;

/// The MongoDB state store's event log (`<database>.events`), newest first:
/// every site's events, written as they happened, kept by the database
/// beyond any node's own history.
async fn stored_history(State(s): State<AppState>) -> Response {
    let link = s.mongo.as_ref().map(|links| links.borrow().clone());
    let Some(link) = link.filter(|l| l.state_store == crate::mongo::StateStoreKind::Mongodb) else {
        let why = format!(
            "{} keeps no event log in MongoDB: its [mongodb] section is absent or state_store is not \"mongodb\"",
            name(&s.cfg, s.me)
        );
        return error(StatusCode::NOT_FOUND, why);
    };
    match crate::mongo::store::read_event_log(&link, STORED_EVENTS_SHOWN).await {
        Ok(events) => {
            let answer = json!({ "node": name(&s.cfg, s.me), "database": link.section.database, "events": events });
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(e) => {
            let why = link.scrub(&e.to_string());
            error(StatusCode::SERVICE_UNAVAILABLE, format!("the MongoDB state store cannot be read: {why}"))
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let body = s.snapshot.read(|published| {
        let active = published.lease.valid_at(clock::now());
        s.metrics.observe(&s.cfg, &published.status, active);
        s.metrics.observe_agreement(&s.cfg, s.me, &s.agreement.mismatches());
        s.metrics.observe_actuators(&published.actuators);
        s.metrics.observe_reloads(published.reload.as_ref());
        s.metrics.observe_connections();
        s.metrics.observe_counts(&published.counts);
        s.metrics.observe_certificates(&published.certificates, std::time::SystemTime::now());
        if let Some(m) = &published.mongodb {
            s.metrics.observe_mongodb(m);
        }
        s.metrics.encode()
    });
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// Body of admin calls.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AdminBody {
    /// Target site name.
    #[serde(default)]
    pub to: Option<String>,
    /// Scheduled time (RFC 3339), switchover only.
    #[serde(default)]
    pub at: Option<String>,
    /// The site to put in maintenance or take out of it (maintenance only).
    #[serde(default)]
    pub site: Option<String>,
    /// `maintenance`: true to put the site in maintenance, false to end it.
    #[serde(default)]
    pub on: Option<bool>,
    /// `maintenance`: the operator's reason, shown with the setting.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of an admin call whose token was accepted: at most
/// [`crate::limits::HTTP_MAX_BODY`] bytes (413 beyond), JSON of an
/// [`AdminBody`] (400 otherwise).
async fn admin_body(request: Request, s: &AppState) -> Result<AdminBody, Response> {
    let bytes = Bytes::from_request(request, s).await.map_err(|rejection| {
        let status = rejection.status();
        error(status, format!("the admin call's body cannot be read: {}", rejection.body_text()))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the admin call's body is not the JSON expected: {e}")))
}

/// What an answer says went wrong, for the history: carried beside the
/// response, never sent.
#[derive(Clone, Debug)]
struct Outcome(String);

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let mut response = (status, Json(json!({ "ok": false, "error": message.clone() }))).into_response();
    response.extensions_mut().insert(Outcome(message));
    response
}

/// The 401 or 429 of a call without a valid token.
fn refusal(refusal: Refusal, peer: SocketAddr) -> Response {
    match refusal {
        Refusal::BadToken => {
            error(StatusCode::UNAUTHORIZED, "admin calls need a valid token (--token or FAILOVERCTL_TOKEN)")
        }
        Refusal::TooMany { retry_after } => {
            // Whole seconds, rounded up, so a client that waits that long
            // finds the window over.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let mut refused = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many refused admin calls from {}; try again in {secs} s", peer.ip()),
            );
            refused.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
            refused
        }
    }
}

/// A caller's word (the command in the path, a target in the body) as the
/// log and the history show it: as it is when it is short and plain, else
/// quoted, escaped and cut, so a stranger's path cannot fill either.
fn shown(word: &str) -> String {
    const MAX: usize = 64;
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if word.len() <= MAX && word.chars().all(plain) {
        return word.to_owned();
    }
    let cut: String = word.chars().take(MAX).collect();
    if cut.len() < word.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Logs an admin call (unless the gate has: `gate_logged` is then the
/// number of refusals from its source it did not log before it) and
/// records it in the history, with what `response` says came of it.
fn audit(s: &AppState, call: (&str, SocketAddr, &str, Option<&str>), response: &Response, gate_logged: Option<u32>) {
    let (operator, peer, command, target) = call;
    let (command, target) = (shown(command), target.map(shown));
    let status = response.status();
    let mut result = match response.extensions().get::<Outcome>() {
        Some(Outcome(why)) => format!("{}: {why}", status.as_u16()),
        None if status.is_success() => "ok".to_owned(),
        None => status.to_string(),
    };
    match gate_logged {
        None if status.is_success() => {
            tracing::info!(operator, source = %peer, command, target = ?target, "admin call: {result}")
        }
        None => tracing::warn!(operator, source = %peer, command, target = ?target, "admin call refused: {result}"),
        Some(0) => {}
        Some(unrecorded) => result.push_str(&format!(" ({unrecorded} more refused from this address, not recorded)")),
    }
    let to = target.as_deref().map_or_else(String::new, |t| format!(" {t}"));
    let text = format!("admin {command}{to} by {operator} from {peer}: {result}");
    let call = AdminCall {
        operator: operator.to_owned(),
        source: peer.to_string(),
        command,
        target,
        status: status.as_u16(),
        result,
    };
    s.snapshot.publish_event(s.history.record(text, Some(call)));
}

async fn admin(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(command): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    // The token first: a caller without it gets 401 (or 429) whatever it
    // sent, and its body is never read.
    let caller = match s.admin.check(&headers, peer, &command) {
        Ok(caller) => caller,
        Err(Refused { refusal: why, record }) => {
            let response = refusal(why, peer);
            if record.is_some() {
                audit(&s, (UNKNOWN_OPERATOR, peer, &command, None), &response, record);
            }
            return response;
        }
    };
    let (target, response) = match admin_body(request, &s).await {
        Ok(body) => {
            let target = body.to.clone().or_else(|| body.site.clone());
            let response = match caller.forbidden(&command) {
                Some(why) => error(StatusCode::FORBIDDEN, why),
                None => carry_out(&s, &caller, &command, &headers, &body).await,
            };
            (target, response)
        }
        Err(refused) => (None, refused),
    };
    audit(&s, (&caller.operator, peer, &command, target.as_deref()), &response, None);
    response
}

/// Carries out an admin call `caller` may make, or sends it on.
async fn carry_out(s: &AppState, caller: &Caller, command: &str, headers: &HeaderMap, body: &AdminBody) -> Response {
    if command == "whoami" {
        let answer = json!({
            "ok": true, "node": name(&s.cfg, s.me), "operator": caller.operator, "read_only": caller.read_only,
        });
        return (StatusCode::OK, Json(answer)).into_response();
    }
    let to = match &body.to {
        None => None,
        Some(n) => match s.cfg.id_of(n) {
            Some(id) => Some(id),
            None => return error(StatusCode::BAD_REQUEST, format!("unknown site {n:?}")),
        },
    };
    let cmd = match command {
        // Each node reloads its own file: go to the named node.
        "reload" => match to {
            Some(t) if t != s.me => return forward(s, t, command, headers, body).await,
            _ => return reload(s).await,
        },
        "switchover" => {
            // The operator's wall-clock time becomes a deadline on this
            // node's monotonic clock; wall time never enters the protocol.
            // Bounded here, so any client is: at most a year ahead, at most
            // a second past.
            let at = match body.at.as_deref().map(|text| clock::schedule_wait(text, std::time::SystemTime::now())) {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(wait))) => Some(clock::now() + wait),
                Some(Err(refused)) => return error(StatusCode::BAD_REQUEST, refused.to_string()),
            };
            Command::Switchover { to, at }
        }
        "cancel-switchover" => Command::CancelSwitchover,
        "approve" => Command::Approve { to },
        // Forced promotion acts on the node that runs it: go to the named site.
        "force-promote" => match to {
            Some(t) if t != s.me => return forward(s, t, command, headers, body).await,
            _ => Command::ForcePromote,
        },
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        // Any node carries it out; the setting spreads with heartbeats.
        "maintenance" => {
            let Some(site) = body.site.as_deref() else {
                return error(StatusCode::BAD_REQUEST, "maintenance needs the site (\"site\")");
            };
            let Some(site) = s.cfg.id_of(site) else {
                return error(StatusCode::BAD_REQUEST, format!("unknown site {site:?}"));
            };
            let Some(on) = body.on else {
                return error(StatusCode::BAD_REQUEST, "maintenance needs on or off (\"on\": true or false)");
            };
            let reason = body.reason.clone().unwrap_or_default();
            if let Err(refused) = crate::maintenance_notes::check_reason(&reason) {
                return error(StatusCode::BAD_REQUEST, refused.to_string());
            }
            let since_unix_ms = clock::unix_ms(std::time::SystemTime::now());
            s.notes.stage(on, SiteNote { site, by: s.me, reason, since_unix_ms });
            Command::Maintenance { site, on }
        }
        other => return error(StatusCode::NOT_FOUND, format!("unknown admin command {other:?}")),
    };
    let before = before_command(s);
    let (tx, rx) = oneshot::channel();
    if s.commands.send((cmd, tx)).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the protocol loop is not running");
    }
    let result = match rx.await {
        Ok(r) => r,
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "the protocol loop stopped"),
    };
    if matches!(cmd, Command::Maintenance { .. }) && result.is_err() {
        s.notes.unstage();
    }
    let mongo = s.snapshot.read(|p| p.mongodb.clone());
    let refusal = |e: &CommandError| describe::refusal(&s.cfg, e, &describe::data_cause_of(&s.cfg, mongo.as_ref()));
    let forward_to = match result {
        Ok(()) => {
            let answer = json!({ "ok": true, "node": name(&s.cfg, s.me), "before": before });
            return (StatusCode::OK, Json(answer)).into_response();
        }
        Err(CommandError::NotActive { active: Some(n) }) | Err(CommandError::HeldElsewhere { target: n }) => n,
        // This node cannot tell where to forward (it restarted a moment
        // ago, or is cut off): another node may know, so say "unavailable
        // here" rather than "refused".
        Err(e @ CommandError::NotActive { active: None }) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, refusal(&e))
        }
        Err(e) => return error(StatusCode::CONFLICT, refusal(&e)),
    };
    forward(s, forward_to, command, headers, body).await
}

/// Reloads this node's configuration file: 200 with what changed, or 409
/// with every problem (the node keeps running the old file).
async fn reload(s: &AppState) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    let Ok(report) = rx.await else { return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping") };
    let node = name(&s.cfg, s.me);
    if report.applied {
        return (StatusCode::OK, Json(json!({ "ok": true, "node": node, "reload": report }))).into_response();
    }
    let why = format!("{node} keeps running its previous file: {}", report.problems.join("; "));
    (StatusCode::CONFLICT, Json(json!({ "ok": false, "error": why, "node": node, "reload": report }))).into_response()
}

/// What an admin call's success answer tells of the state it changed, as
/// this node saw it just before: whether automatic actions were paused, the
/// switchover that was scheduled and the failover that awaited approval.
fn before_command(s: &AppState) -> serde_json::Value {
    let st = s.snapshot.status();
    json!({
        "paused": st.paused,
        "maintenance": s.cfg.ids().filter(|&id| st.maintenance.contains(id)).map(|id| name(&s.cfg, id)).collect::<Vec<_>>(),
        "scheduled_switchover": st.scheduled_switchover.map(|(to, _)| name(&s.cfg, to)),
        "pending_failover": st.pending_failover.map(|p| name(&s.cfg, p.target)),
    })
}

/// Sends an admin call on to the node that can carry it out (at most two
/// hops), with the caller's token, and relays its answer. A call with a
/// token is not sent on over plain HTTP unless `admin.forward_token_over_http`
/// allows it: the answer is then 421 Misdirected Request naming the node and
/// its HTTP address (`carried_out_by`), which `failoverctl` calls itself.
async fn forward(s: &AppState, forward_to: NodeId, command: &str, headers: &HeaderMap, body: &AdminBody) -> Response {
    let hops: u32 = headers.get(HOPS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    if hops >= 2 {
        return error(StatusCode::CONFLICT, "forwarded twice without finding a node that can carry it out");
    }
    let Some(addr) = s.http_addresses.get(forward_to.index()) else {
        return error(StatusCode::CONFLICT, "no address for the node to forward to");
    };
    if headers.contains_key("authorization") && s.http_scheme == "http" && !s.forward_token_over_http {
        let node = name(&s.cfg, forward_to);
        let message = format!(
            "{} cannot carry out {command:?}: {node} can, at http://{addr}; call it there (failoverctl does so \
             itself). This node does not send your token on over plain HTTP (admin.forward_token_over_http = false)",
            name(&s.cfg, s.me)
        );
        let answer = json!({
            "ok": false,
            "error": message,
            "carried_out_by": { "node": node, "http_address": addr.to_string() },
        });
        let mut misdirected = (StatusCode::MISDIRECTED_REQUEST, Json(answer)).into_response();
        misdirected.extensions_mut().insert(Outcome(format!("to be called at {node}")));
        return misdirected;
    }
    let client = s.client.borrow().clone();
    let mut req = client
        .post(format!("{}://{addr}/admin/{command}", s.http_scheme))
        .header(HOPS, (hops + 1).to_string())
        .timeout(Duration::from_secs(10))
        .json(body);
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        req = req.header("authorization", auth);
    }
    match req.send().await {
        Ok(resp) => {
            let code = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let value =
                resp.json::<serde_json::Value>().await.unwrap_or_else(|e| json!({"ok": false, "error": e.to_string()}));
            let node = name(&s.cfg, forward_to);
            let outcome = match value.get("error").and_then(serde_json::Value::as_str) {
                Some(why) => format!("sent on to {node}, which answered: {why}"),
                None => format!("sent on to {node}"),
            };
            let mut relayed = (code, Json(value)).into_response();
            relayed.extensions_mut().insert(Outcome(outcome));
            relayed
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("forwarding to {}: {e}", name(&s.cfg, forward_to))),
    }
}

#[cfg(test)]
mod tests;
