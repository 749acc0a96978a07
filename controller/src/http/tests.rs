//! The HTTP API in process: the real router, its calls made without a
//! network, and a stand-in for the protocol loop that answers every command
//! and publishes a scheduled switchover as the active site's loop would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use failover_core::{Member, MemberKind, Node, PendingFailover, ProposalReason, Timers};
use tower::ServiceExt;

use super::*;
use crate::admin_auth::AdminGate;
use crate::snapshot::{Lease, Step};

/// Sites `a` (this node) and `b`, and witness `w`.
fn cluster() -> ClusterConfig {
    let site = |name: &str, priority| Member { name: name.into(), kind: MemberKind::Site { priority }, votes: 1 };
    ClusterConfig {
        members: vec![site("a", 2), site("b", 1), Member::witness("w")],
        timers: Timers::default(),
        policy: Default::default(),
    }
}

/// The router of site `a`, its snapshot, and the commands its stand-in
/// loop was given.
struct Site {
    app: Router,
    snapshot: NodeSnapshot,
    given: mpsc::UnboundedReceiver<Command>,
}

fn site() -> Site {
    site_with_token(None)
}

/// Site `a` whose admin calls need `token` (none: no token at all).
fn site_with_token(token: Option<&str>) -> Site {
    crate::install_crypto_provider();
    let cfg = Arc::new(cluster());
    let node = match Node::new(cfg.clone(), NodeId(0), Default::default(), clock::now(), 1) {
        Ok(node) => node,
        Err(e) => panic!("the test cluster is valid: {e:?}"),
    };
    let snapshot = NodeSnapshot::new(node.status(clock::now()));
    let (commands, mut inbox) = mpsc::channel::<CommandRequest>(4);
    let (given_tx, given) = mpsc::unbounded_channel();
    let published = snapshot.clone();
    tokio::spawn(async move {
        while let Some((command, reply)) = inbox.recv().await {
            if let Command::Switchover { to: Some(to), at: Some(at) } = command {
                let mut status = published.status();
                status.scheduled_switchover = Some((to, at));
                published.publish_step(Step {
                    status,
                    lease: Lease::default(),
                    events: Vec::new(),
                    raised: Vec::new(),
                });
            }
            let _ = given_tx.send(command);
            let _ = reply.send(Ok(()));
        }
    });
    let addresses = ["127.0.0.1:18080", "127.0.0.1:18081", "127.0.0.1:18082"];
    let state = AppState {
        agreement: Arc::new(crate::agreement::Agreement::new(&cfg, "prod")),
        cfg,
        me: NodeId(0),
        http_addresses: Arc::new(addresses.iter().filter_map(|a| a.parse().ok()).collect()),
        unresolved: crate::unresolved::Unresolved::default(),
        snapshot: snapshot.clone(),
        commands,
        admin: Arc::new(AdminGate::new(
            token
                .map(|t| crate::admin_auth::Operator { name: "admin".into(), token: t.into(), read_only: false })
                .into_iter()
                .collect(),
            Duration::from_secs(60),
        )),
        forward_token_over_http: false,
        peer_authentication: "none",
        reload: tokio::sync::mpsc::channel(1).0,
        metrics: Arc::new(Metrics::default()),
        client: tokio::sync::watch::channel(reqwest::Client::new()).1,
        http_scheme: "http",
        notes: Arc::default(),
        history: crate::event_history::History::in_memory("site-a"),
        mongo: None,
    };
    let caller = SocketAddr::from(([127, 0, 0, 1], 40_000));
    Site { app: router(state).layer(MockConnectInfo(caller)), snapshot, given }
}

/// One call: its status and its body as JSON.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = match app.clone().oneshot(request).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("the body is read");
    (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body:?}")))
}

async fn switchover(app: &Router, at: &str) -> (StatusCode, serde_json::Value) {
    let body = json!({ "to": "b", "at": at }).to_string();
    let request = Request::post("/admin/switchover").header("content-type", "application/json").body(Body::from(body));
    call(app, request.expect("a request")).await
}

/// `/status`, which must answer 200 with a document that reads back.
async fn status(app: &Router) -> StatusDoc {
    let (code, doc) = call(app, Request::get("/status").body(Body::empty()).expect("a request")).await;
    assert_eq!(code, StatusCode::OK, "{doc}");
    serde_json::from_value(doc).expect("a status document")
}

#[tokio::test]
async fn the_admin_api_refuses_a_far_future_schedule_and_status_still_answers() {
    let mut site = site();
    let far = "9999-12-31T23:59:59.6Z";
    let (code, answer) = switchover(&site.app, far).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("{far:?}")) && error.contains("limit of 365 days"), "{answer}");
    assert!(site.given.try_recv().is_err(), "the refused schedule reached the loop");
    assert_eq!(status(&site.app).await.scheduled_switchover, None);

    // A year and a day ahead is refused too; ten minutes past as well.
    for refused in [SystemTime::now() + Duration::from_secs(366 * 86_400), SystemTime::now() - Duration::from_secs(600)]
    {
        let at = humantime::format_rfc3339_seconds(refused).to_string();
        let (code, answer) = switchover(&site.app, &at).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{at}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains(&at)), "{answer}");
    }
    assert!(site.given.try_recv().is_err(), "a refused schedule reached the loop");

    // Within the year it is accepted, reaches the loop as a deadline that
    // far ahead, and /status shows it as given.
    let at = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(364 * 86_400)).to_string();
    let (code, answer) = switchover(&site.app, &at).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    match site.given.try_recv() {
        Ok(Command::Switchover { to: Some(NodeId(1)), at: Some(deadline) }) => {
            let ahead = deadline.saturating_since(clock::now());
            assert!(ahead > Duration::from_secs(363 * 86_400) && ahead <= clock::MAX_SCHEDULE_AHEAD, "{ahead:?}");
        }
        other => panic!("the loop was given {other:?}"),
    }
    let shown = status(&site.app).await.scheduled_switchover.map(|s| s.at);
    let near = |text: &str| {
        let (Ok(shown), Ok(given)) = (humantime::parse_rfc3339(text), humantime::parse_rfc3339(&at)) else {
            return false;
        };
        shown.duration_since(given).unwrap_or_else(|e| e.duration()) <= Duration::from_secs(1)
    };
    assert!(shown.as_deref().is_some_and(near), "{shown:?} is not {at}");
}

#[tokio::test]
async fn status_answers_whatever_instant_was_published() {
    let site = site();
    // What a node could hold from before the bound: a schedule and a
    // pending failover at the ends of the protocol clock.
    let mut status_now = site.snapshot.status();
    status_now.scheduled_switchover = Some((NodeId(1), failover_core::Instant::from_millis(u64::MAX)));
    status_now.pending_failover = Some(PendingFailover {
        target: NodeId(1),
        reason: ProposalReason::ManualMode,
        since: failover_core::Instant::from_millis(0),
    });
    site.snapshot.publish_step(Step {
        status: status_now,
        lease: Lease::default(),
        events: Vec::new(),
        raised: Vec::new(),
    });
    let doc = status(&site.app).await;
    let scheduled = doc.scheduled_switchover.expect("the schedule is shown");
    assert!(scheduled.at.starts_with("(no date: ") && scheduled.at.contains("9999"), "{}", scheduled.at);
    let since = doc.pending_failover.expect("the pending failover is shown").since;
    assert!(humantime::parse_rfc3339(&since).is_ok(), "the boot time is a date: {since}");
}

async fn maintenance(app: &Router, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/admin/maintenance")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()));
    call(app, request.expect("a request")).await
}

#[tokio::test]
async fn the_admin_api_checks_a_maintenance_call_before_it_reaches_the_loop() {
    let mut site = site();
    let long = "x".repeat(crate::maintenance_notes::MAX_REASON_CHARS + 1);
    let refused = [
        (json!({ "on": true }), "needs the site"),
        (json!({ "site": "nobody", "on": true }), "unknown site"),
        (json!({ "site": "b" }), "needs on or off"),
        (json!({ "site": "b", "on": true, "reason": "two\nlines" }), "control character"),
        (json!({ "site": "b", "on": true, "reason": "\u{1b}[2J" }), "control character"),
        (json!({ "site": "b", "on": true, "reason": long }), "at most 200"),
    ];
    for (body, why) in refused {
        let (code, answer) = maintenance(&site.app, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains(why)), "{body}: {answer}");
    }
    assert!(site.given.try_recv().is_err(), "a refused call reached the loop");
    let (code, answer) = maintenance(&site.app, json!({ "site": "b", "on": true, "reason": "kernel" })).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["before"]["maintenance"], json!([]), "{answer}");
    match site.given.try_recv() {
        Ok(Command::Maintenance { site: NodeId(1), on: true }) => {}
        other => panic!("the loop was given {other:?}"),
    }
}

const TOKEN: &str = "s3cret-admin-token";

/// `POST /admin/pause` with `body` and the given bearer token (or none).
async fn pause_with(app: &Router, token: Option<&str>, body: impl Into<Body>) -> (StatusCode, serde_json::Value) {
    let mut request = Request::post("/admin/pause").header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    call(app, request.body(body.into()).expect("a request")).await
}

#[tokio::test]
async fn a_bad_or_missing_token_gets_401_whatever_the_body_which_is_never_read() {
    let mut site = site_with_token(Some(TOKEN));
    let oversized = vec![b'{'; crate::limits::HTTP_MAX_BODY * 4];
    let bodies: [Body; 3] = [Body::from("{not json"), Body::from("[1, 2"), Body::from(oversized)];
    for (i, body) in bodies.into_iter().enumerate() {
        let (code, answer) = pause_with(&site.app, Some("wrong"), body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "body {i}: {answer}");
    }
    let (code, answer) = pause_with(&site.app, None, "{not json").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(site.given.try_recv().is_err(), "a refused call reached the loop");
    // With the token, the malformed body is what is wrong.
    let (code, answer) = pause_with(&site.app, Some(TOKEN), "{not json").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("not the JSON expected")), "{answer}");
    assert!(site.given.try_recv().is_err(), "a malformed call reached the loop");
}

#[tokio::test]
async fn an_admin_body_past_64_kib_gets_413_unparsed_and_one_at_the_limit_is_read() {
    let mut site = site_with_token(Some(TOKEN));
    assert_eq!(crate::limits::HTTP_MAX_BODY, 64 * 1024);
    // Not JSON: parsed, it would be a 400; refused unread, it is a 413.
    let over = vec![b'x'; crate::limits::HTTP_MAX_BODY + 1];
    let (code, answer) = pause_with(&site.app, Some(TOKEN), over).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // The same with a body streamed without a length.
    let chunks = (0..(crate::limits::HTTP_MAX_BODY / 1024 + 1)).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    let (code, answer) = pause_with(&site.app, Some(TOKEN), Body::from_stream(futures_stream(chunks))).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(site.given.try_recv().is_err(), "an oversized call reached the loop");
    // A valid body padded to exactly the limit is read and carried out.
    let mut at_limit = b"{}".to_vec();
    at_limit.resize(crate::limits::HTTP_MAX_BODY, b' ');
    let (code, answer) = pause_with(&site.app, Some(TOKEN), at_limit).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert!(matches!(site.given.try_recv(), Ok(Command::Pause)));
}

/// A stream of `items`, for a body sent without a length.
fn futures_stream<I: Iterator + Send + 'static>(items: I) -> impl futures_util::Stream<Item = I::Item> + Send
where
    I::Item: Send,
{
    futures_util::stream::iter(items)
}

#[tokio::test]
async fn every_admin_call_accepted_or_refused_is_in_the_history_with_its_operator() {
    let site = site_with_token(Some(TOKEN));
    assert_eq!(pause_with(&site.app, Some(TOKEN), "{}").await.0, StatusCode::OK);
    // Two bad tokens from one source within the log interval: the first is
    // recorded, the second only counted (as it is only counted in the log).
    assert_eq!(pause_with(&site.app, Some("wrong"), "{}").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(pause_with(&site.app, Some("wrong"), "{}").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(pause_with(&site.app, Some(TOKEN), "{not json").await.0, StatusCode::BAD_REQUEST);
    let (code, answer) = call(&site.app, Request::get("/history").body(Body::empty()).expect("a request")).await;
    assert_eq!(code, StatusCode::OK);
    let doc: HistoryDoc = serde_json::from_value(answer).expect("a history document");
    assert_eq!(doc.node, "a");
    let calls: Vec<(u64, String, String, String, u16)> = doc
        .events
        .iter()
        .filter_map(|e| {
            e.admin.as_ref().map(|a| (e.seq, a.operator.clone(), a.source.clone(), a.command.clone(), a.status))
        })
        .collect();
    let call = |seq, operator: &str, status| {
        (seq, operator.to_owned(), "127.0.0.1:40000".to_owned(), "pause".to_owned(), status)
    };
    assert_eq!(calls, [call(1, "admin", 200), call(2, "unknown", 401), call(3, "admin", 400)]);
    let results: Vec<&str> = doc.events.iter().filter_map(|e| e.admin.as_ref().map(|a| a.result.as_str())).collect();
    assert_eq!(results[0], "ok");
    assert!(results[1].starts_with("401: admin calls need a valid token"), "{results:?}");
    assert!(results[2].starts_with("400: the admin call's body is not the JSON expected"), "{results:?}");
    assert!(doc.events[0].event.starts_with("admin pause by admin from 127.0.0.1:40000: ok"), "{:?}", doc.events[0]);
}

#[test]
fn a_callers_words_are_shown_plain_only_when_short_and_plain() {
    assert_eq!(shown("switchover"), "switchover");
    assert_eq!(shown("site-b"), "site-b");
    assert_eq!(shown("a b\n"), "\"a b\\n\"");
    let long = "x".repeat(65);
    assert_eq!(shown(&long), format!("\"{}\"…", "x".repeat(64)));
    assert_eq!(shown(&"é".repeat(64)), format!("{:?}", "é".repeat(64)));
}
