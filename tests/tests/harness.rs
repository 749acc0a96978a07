//! Tests of the end-to-end harness pieces themselves, against tiny real
//! servers on 127.0.0.1: the fault-injecting proxy (forwarding, latency,
//! one-way and full cuts, refused connections, heal, stop, no leaked tasks)
//! and the split-brain prober (both-active rounds seen when, and only when,
//! two sites answer 200; its loop ends by itself at its cap).
//!
//! These tests must never assert an upper bound on elapsed time, nor sleep and
//! then assert: they wait on conditions with generous deadlines. The only
//! fixed waits are the short windows in which *nothing* must arrive, which can
//! only pass, never fail, when the code is right. They send traffic only to
//! 127.0.0.1.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use failover_tests::prober::{Outcome, ProbeReport, Prober};
use failover_tests::proxy::{Direction, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

/// Generous deadline for anything that should happen.
const DEADLINE: Duration = Duration::from_secs(10);
/// Window in which something that must not happen is given its chance.
const QUIET: Duration = Duration::from_millis(300);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A TCP echo server on 127.0.0.1; the task is aborted when the test ends.
async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(loopback()).await.expect("bind echo server on 127.0.0.1");
    let addr = listener.local_addr().expect("echo server address");
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            connections.spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, task)
}

/// Polls `condition` every 10 ms until it holds; panics after [`DEADLINE`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(DEADLINE, TcpStream::connect(addr)).await.expect("connect timed out").expect("connect to proxy")
}

/// Reads exactly `n` bytes, within [`DEADLINE`].
async fn read_n(stream: &mut TcpStream, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(DEADLINE, stream.read_exact(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("timed out reading {what}"))
        .unwrap_or_else(|e| panic!("reading {what}: {e}"));
    buf
}

/// Writes `bytes` and reads them back, within [`DEADLINE`].
async fn echo_round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).await.expect("write to proxy");
    read_n(stream, bytes.len(), "the echo").await
}

/// Asserts that nothing arrives on `stream` within [`QUIET`].
async fn assert_nothing_arrives(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match timeout(QUIET, stream.read(&mut buf)).await {
        Err(_) => {}
        Ok(Ok(0)) => panic!("{what}: connection closed, expected it held open"),
        Ok(Ok(n)) => panic!("{what}: {n} bytes arrived through a cut: {:?}", &buf[..n]),
        Ok(Err(e)) => panic!("{what}: connection failed, expected it held open: {e}"),
    }
}

/// Asserts that `stream` is closed or reset by the other end within
/// [`DEADLINE`] and that no byte comes through first.
async fn assert_closed(stream: &mut TcpStream, what: &str) {
    // The write may fail already (reset); only the read decides.
    let _ = stream.write_all(b"anyone there?").await;
    let mut buf = [0u8; 64];
    match timeout(DEADLINE, stream.read(&mut buf)).await {
        Err(_) => panic!("{what}: still open after {DEADLINE:?}"),
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{what}: expected closed, got {n} bytes: {:?}", &buf[..n]),
    }
}

#[tokio::test]
async fn proxy_forwards_both_ways() {
    let (upstream, _server) = echo_server().await;
    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    assert!(proxy.local_addr().ip().is_loopback());
    assert_ne!(proxy.local_addr().port(), 0);

    let mut client = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut client, b"hello").await, b"hello");
    // Larger than one chunk, to cross chunk boundaries in order.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = client.split();
    let send = async {
        w.write_all(&big).await.expect("write big payload");
    };
    let receive = async {
        let mut back = vec![0u8; big.len()];
        timeout(DEADLINE, r.read_exact(&mut back)).await.expect("big echo timed out").expect("read big echo");
        back
    };
    let ((), back) = tokio::join!(send, receive);
    assert!(back == big, "payload came back altered");
    wait_until("the proxy counts the connection", || proxy.connections() == 1).await;

    drop(client);
    wait_until("the proxy sees the connection closed", || proxy.connections() == 0).await;
}

#[tokio::test]
async fn proxy_adds_latency_in_each_direction() {
    let (upstream, _server) = echo_server().await;
    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    let mut client = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut client, b"warm").await, b"warm");

    let latency = Duration::from_millis(150);
    proxy.set_latency(latency);
    assert_eq!(proxy.faults().latency, latency);
    let sent = Instant::now();
    assert_eq!(echo_round_trip(&mut client, b"slow").await, b"slow");
    let round_trip = sent.elapsed();
    // Paid once on the way there and once on the way back; lower bound only.
    assert!(round_trip >= 2 * latency, "round trip {round_trip:?} is shorter than twice the latency {latency:?}");

    // New connections pay it too.
    let mut second = connect(proxy.local_addr()).await;
    let sent = Instant::now();
    assert_eq!(echo_round_trip(&mut second, b"new").await, b"new");
    assert!(sent.elapsed() >= 2 * latency, "a new connection skipped the latency");
}

#[tokio::test]
async fn proxy_cut_client_to_server_holds_only_that_direction() {
    let upstream = TcpListener::bind(loopback()).await.expect("bind upstream");
    let proxy =
        FaultProxy::start(loopback(), upstream.local_addr().expect("upstream address")).await.expect("start proxy");
    let mut client = connect(proxy.local_addr()).await;
    let (mut server, _) = timeout(DEADLINE, upstream.accept()).await.expect("accept timed out").expect("accept");

    proxy.cut(Direction::ClientToServer);
    client.write_all(b"ping").await.expect("client write");
    assert_nothing_arrives(&mut server, "server side during a client-to-server cut").await;

    server.write_all(b"pong").await.expect("server write");
    assert_eq!(read_n(&mut client, 4, "server-to-client bytes during the cut").await, b"pong");

    proxy.heal();
    // The held bytes arrive intact once healed.
    assert_eq!(read_n(&mut server, 4, "held client bytes after heal").await, b"ping");
    client.write_all(b"more").await.expect("client write after heal");
    assert_eq!(read_n(&mut server, 4, "client bytes after heal").await, b"more");
}

#[tokio::test]
async fn proxy_cut_server_to_client_holds_only_that_direction() {
    let upstream = TcpListener::bind(loopback()).await.expect("bind upstream");
    let proxy =
        FaultProxy::start(loopback(), upstream.local_addr().expect("upstream address")).await.expect("start proxy");
    let mut client = connect(proxy.local_addr()).await;
    let (mut server, _) = timeout(DEADLINE, upstream.accept()).await.expect("accept timed out").expect("accept");

    proxy.cut(Direction::ServerToClient);
    assert!(proxy.faults().cut_server_to_client && !proxy.faults().cut_client_to_server);
    server.write_all(b"pong").await.expect("server write");
    assert_nothing_arrives(&mut client, "client side during a server-to-client cut").await;

    client.write_all(b"ping").await.expect("client write");
    assert_eq!(read_n(&mut server, 4, "client-to-server bytes during the cut").await, b"ping");

    proxy.heal();
    assert_eq!(read_n(&mut client, 4, "held server bytes after heal").await, b"pong");
}

#[tokio::test]
async fn proxy_full_cut_closes_and_refuses_until_healed() {
    let (upstream, _server) = echo_server().await;
    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    let mut before = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut before, b"up").await, b"up");

    proxy.cut_both();
    assert_closed(&mut before, "a connection open at the cut").await;
    wait_until("the proxy has no connection left", || proxy.connections() == 0).await;
    // The port is still bound, so connect may succeed; the proxy resets it.
    if let Ok(Ok(mut during)) = timeout(DEADLINE, TcpStream::connect(proxy.local_addr())).await {
        assert_closed(&mut during, "a connection made during the cut").await;
    }
    assert_eq!(proxy.connections(), 0, "a connection was let through during a full cut");

    proxy.heal();
    let mut after = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut after, b"back").await, b"back");
}

#[tokio::test]
async fn proxy_drop_rate_refuses_new_connections_only() {
    let (upstream, _server) = echo_server().await;
    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    let mut existing = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut existing, b"one").await, b"one");

    proxy.set_drop_rate(1.0);
    for _ in 0..3 {
        let mut refused = connect(proxy.local_addr()).await;
        assert_closed(&mut refused, "a new connection at drop rate 1").await;
    }
    assert_eq!(echo_round_trip(&mut existing, b"two").await, b"two", "an existing connection was affected");

    proxy.set_drop_rate(f64::NAN);
    assert_eq!(proxy.faults().drop_rate, 0.0);
    let mut fresh = connect(proxy.local_addr()).await;
    assert_eq!(echo_round_trip(&mut fresh, b"three").await, b"three");
}

#[tokio::test]
async fn proxy_stop_closes_listener_and_connections() {
    let (upstream, _server) = echo_server().await;
    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    let addr = proxy.local_addr();
    let mut client = connect(addr).await;
    assert_eq!(echo_round_trip(&mut client, b"hi").await, b"hi");

    timeout(DEADLINE, proxy.stop()).await.expect("stop timed out");
    assert_closed(&mut client, "a connection open at stop").await;
    assert!(TcpStream::connect(addr).await.is_err(), "the listener still accepts after stop");
}

#[tokio::test]
async fn proxy_drop_ends_every_task() {
    let (upstream, _server) = echo_server().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();

    let proxy = FaultProxy::start(loopback(), upstream).await.expect("start proxy");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(proxy.local_addr()).await;
        assert_eq!(echo_round_trip(&mut client, b"x").await, b"x");
        clients.push(client);
    }
    // One direction held, so some work is pending when the proxy goes away.
    proxy.cut(Direction::ServerToClient);
    clients[0].write_all(b"pending").await.expect("write");
    assert!(metrics.num_alive_tasks() > baseline, "the proxy spawned no task");

    drop(proxy);
    wait_until("every proxy task has ended", || metrics.num_alive_tasks() <= baseline).await;
    for (i, client) in clients.iter_mut().enumerate() {
        assert_closed(client, &format!("client {i} after the proxy was dropped")).await;
    }
}

/// A tiny HTTP server whose `GET /active` answers 200 while `active` is set,
/// 503 otherwise.
async fn site(active: bool) -> (String, Arc<AtomicBool>, JoinHandle<()>) {
    let flag = Arc::new(AtomicBool::new(active));
    let app = Router::new()
        .route(
            "/active",
            get(|State(flag): State<Arc<AtomicBool>>| async move {
                if flag.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }),
        )
        .with_state(Arc::clone(&flag));
    let listener = TcpListener::bind(loopback()).await.expect("bind site on 127.0.0.1");
    let addr = listener.local_addr().expect("site address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/active"), flag, task)
}

fn rounds_where(report: &ProbeReport, active: &[&str]) -> usize {
    report.rounds.iter().filter(|r| r.active() == active).count()
}

#[tokio::test]
async fn prober_reports_both_active_only_when_two_answer_200() {
    let (url_a, _a, _server_a) = site(true).await;
    let (url_b, b, _server_b) = site(false).await;
    let prober = Prober::start(vec![url_a.clone(), url_b.clone()], Duration::from_millis(20));

    wait_until("five rounds see only A active", || rounds_where(&prober.snapshot(), &[url_a.as_str()]) >= 5).await;
    let one_active = prober.snapshot();
    assert!(one_active.both_active_rounds.is_empty(), "both-active rounds with only A up: {one_active:?}");
    one_active.assert_never_two_active();
    let b_answer = &one_active.rounds[0].probes[1];
    assert_eq!(b_answer.url, url_b);
    assert!(matches!(b_answer.outcome, Outcome::Status(503) | Outcome::Timeout), "B answered {:?}", b_answer.outcome);

    b.store(true, Ordering::SeqCst);
    wait_until("a round sees A and B active", || !prober.snapshot().both_active_rounds.is_empty()).await;
    let report = timeout(DEADLINE, prober.stop()).await.expect("stop timed out");
    assert!(!report.hit_cap);
    let first = &report.both_active_rounds[0];
    assert_eq!(first.active(), vec![url_a.as_str(), url_b.as_str()]);
    assert!(first.since_start > Duration::ZERO && first.at > std::time::UNIX_EPOCH);

    let failure = catch_unwind(AssertUnwindSafe(|| report.assert_never_two_active()))
        .expect_err("assert_never_two_active passed over a both-active round");
    let message = failure.downcast_ref::<String>().expect("panic message is a String");
    assert!(message.contains("split brain") && message.contains(&url_b), "unclear message: {message}");
}

#[test]
fn prober_check_over_no_round_is_not_a_pass() {
    let report = ProbeReport {
        urls: vec!["http://127.0.0.1:1/active".into()],
        rounds: Vec::new(),
        both_active_rounds: Vec::new(),
        hit_cap: false,
    };
    let failure = catch_unwind(AssertUnwindSafe(|| report.assert_never_two_active()));
    assert!(failure.is_err(), "an empty report passed the split-brain check");
}

#[tokio::test]
async fn prober_stops_by_itself_at_its_cap() {
    let (url, _flag, _server) = site(true).await;
    let prober = Prober::start_with(vec![url], Duration::from_millis(10), Duration::from_millis(200), QUIET);
    wait_until("the sampling loop ends at its cap", || prober.is_finished()).await;
    let report = prober.stop().await;
    assert!(report.hit_cap, "the loop ended, but not at its cap");
    assert!(!report.rounds.is_empty());
    report.assert_never_two_active();
}

#[tokio::test]
async fn prober_through_proxy_sees_a_cut_site_go_inactive_and_come_back() {
    let (url_a, _a, _server_a) = site(true).await;
    let (direct_b, _b, _server_b) = site(true).await;
    let b_addr: SocketAddr =
        direct_b.trim_start_matches("http://").trim_end_matches("/active").parse().expect("site B address");
    let proxy = FaultProxy::start(loopback(), b_addr).await.expect("start proxy");
    let url_b = format!("http://{}/active", proxy.local_addr());

    proxy.cut_both();
    let prober = Prober::start(vec![url_a.clone(), url_b.clone()], Duration::from_millis(20));
    wait_until("five rounds see only A, B being cut off", || rounds_where(&prober.snapshot(), &[url_a.as_str()]) >= 5)
        .await;
    assert!(prober.snapshot().both_active_rounds.is_empty());

    proxy.heal();
    wait_until("a round sees B again through the healed proxy", || !prober.snapshot().both_active_rounds.is_empty())
        .await;
    let report = prober.stop().await;
    assert!(report.both_active_rounds.iter().all(|r| r.active() == vec![url_a.as_str(), url_b.as_str()]));
}
