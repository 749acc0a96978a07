//! Descriptor exhaustion from outside: the daemons run at 1,024 open files
//! (soft and hard, so they cannot raise it), and idle TCP connections that
//! never send a byte are held open against the active site's HTTP and gRPC
//! ports, more of them than the daemon has descriptors. A fresh `/active`
//! request must still be answered while they stay open, and the cluster
//! must still fail over afterwards, never with two sites active.
//! A node whose state file cannot be written, which exhausted descriptors
//! can cause, stops loudly rather than vote without persisting.
//! One host holding every HTTP connection it can keep alive and another
//! streaming silent connections at the witness's peer port must not stop
//! a load balancer's `/active` check or a failover.
//! The members and the harness use 127.0.0.1; hostile hosts use other
//! loopback addresses (127.0.0.2 and up), so a per-source limit tells
//! them apart as it would real hosts. Every loop is bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use failover_controller::limits::{self, ConnectionCaps};
use failover_tests::cluster::{Spec, TestCluster};
use failover_tests::flood::{connect_from, Flood};
use failover_tests::http_client::HttpClient;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The daemons' open-files limit, soft and hard.
const DAEMON_OPEN_FILES: u64 = 1024;
/// Idle connections opened to each of the two ports.
const IDLE_PER_PORT: usize = 1500;
/// Connections being set up at once, so a port that no longer accepts
/// (its backlog full) costs one connect timeout per batch, not per connection.
const CONNECT_BATCH: usize = 250;
/// How long a fresh `/active` may take to be answered 200 (generous: this
/// is a deadline to wait on, not a figure asserted).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// The host that holds connections open (idle, stalled or kept alive).
const HOG: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The load balancer: a fresh client checking `/active`.
const BALANCER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// The host that streams silent connections at the peer port.
const STREAMER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

/// Raises this test process's soft open-files limit to its hard one and
/// returns the soft limit now in force.
fn raise_own_open_files() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            eprintln!("could not raise the open-files limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Opens up to `count` TCP connections from [`HOG`] to `addr` that send
/// nothing, in bounded batches, and returns the ones established.
async fn open_idle(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    let mut started = 0;
    while started < count {
        let batch = CONNECT_BATCH.min(count - started);
        started += batch;
        let mut set = JoinSet::new();
        for _ in 0..batch {
            set.spawn(async move { connect_from(HOG, addr).await });
        }
        while let Some(done) = set.join_next().await {
            if let Ok(Ok(stream)) = done {
                open.push(stream);
            }
        }
    }
    open
}

/// Asks for `/active` on `node` until it answers 200 or `within` passes;
/// returns how long that took, or None.
async fn answered_active(c: &TestCluster, node: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some((200, _)) = c.http_get(node, "/active").await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_beyond_the_descriptor_limit_do_not_silence_the_active_site() {
    let own = raise_own_open_files();
    let needed = 2 * IDLE_PER_PORT as u64 + 1024;
    assert!(own >= needed, "this test needs {needed} open files of its own, its limit is {own}");

    let spec = Spec { open_files_limit: Some(DAEMON_OPEN_FILES), ..Spec::default() };
    let mut c = TestCluster::start(spec).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let prober = c.prober();

    let http = open_idle(c.http_address("site-a"), IDLE_PER_PORT).await;
    let grpc = open_idle(c.peer_address("site-a"), IDLE_PER_PORT).await;
    eprintln!("idle connections established: {} to HTTP, {} to gRPC", http.len(), grpc.len());
    // More than the daemon has descriptors, so the test cannot pass for
    // want of pressure.
    let total = (http.len() + grpc.len()) as u64;
    assert!(total > DAEMON_OPEN_FILES, "only {total} idle connections could be opened");

    let took = answered_active(&c, "site-a", ANSWER_WITHIN).await;
    eprintln!("fresh /active answered 200 after {took:?}, with the idle connections still open");
    assert!(
        took.is_some(),
        "site-a did not answer /active with 200 while {} + {} idle connections were open:\n{}",
        http.len(),
        grpc.len(),
        c.log_tail("site-a")
    );

    // Still open on the test's side until here.
    drop(http);
    drop(grpc);
    c.kill9("site-a");
    assert!(c.wait_active("site-b").await, "site-b did not take over:\n{}", c.log_tail("site-b"));
    prober.stop().await.assert_never_two_active();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_that_cannot_be_written_stops_the_node_loudly() {
    let mut c = TestCluster::start(Spec::default()).await;
    assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
    let prober = c.prober();
    // A directory where site-b writes its state file's temporary copy:
    // every write fails, however often it is tried.
    let state = c.state_dir("site-b").join("state.json");
    std::fs::create_dir(state.with_extension("json.tmp")).expect("block the state file");
    // Losing site-a makes site-b stand for election, which it must persist
    // before asking for a single vote.
    c.kill9("site-a");
    let status = c.wait_exit("site-b", Duration::from_secs(30)).await;
    let log = c.log_tail("site-b");
    let status = status.unwrap_or_else(|| panic!("site-b kept running without its state file:\n{log}"));
    assert!(!status.success(), "site-b stopped with success: {status}\n{log}");
    assert!(log.contains("cannot write the state file"), "no error logged:\n{log}");
    assert!(log.contains(&state.display().to_string()), "the log does not name {}:\n{log}", state.display());
    assert!(log.contains("Is a directory"), "the log does not give the OS error:\n{log}");
    prober.stop().await.assert_never_two_active();
}

/// Requests that hold a place and never finish: an admin call with
/// `token` (none: without one) whose body is announced and never sent,
/// one per connection.
async fn open_stalled_requests(addr: SocketAddr, token: Option<&str>, count: usize) -> Vec<TcpStream> {
    use tokio::io::AsyncWriteExt;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /admin/pause HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    let mut open = Vec::with_capacity(count);
    for mut stream in open_idle(addr, count).await {
        if stream.write_all(head.as_bytes()).await.is_ok() {
            open.push(stream);
        }
    }
    open
}

/// True if `stream` has received nothing yet (its request is unanswered):
/// an answer already there is seen at once; nothing there, after a moment.
async fn unanswered(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(50), stream.peek(&mut byte)).await.is_err()
}

/// More requests that trickle their bodies than the HTTP port handles at
/// once must not hold back a load balancer's `/active`: it is answered
/// while every one of them is still waiting for its body. Only a caller
/// with the admin token gets that far: without it, the call is answered
/// 401 (429 past the refusal allowance) before its body is awaited, and
/// holds no place.
#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_filling_the_request_limit_do_not_hold_back_active() {
    use tokio::io::AsyncReadExt;
    let c = TestCluster::start_with_site_a_active(Spec::default()).await;
    let limit = failover_controller::limits::HTTP_CONCURRENT_REQUESTS;
    let strangers = open_stalled_requests(c.http_address("site-a"), None, limit + 16).await;
    assert_eq!(strangers.len(), limit + 16, "could not open the stalled requests");
    for mut stream in strangers {
        let mut answer = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer)).await;
        assert!(
            matches!(read, Ok(Ok(_))) && (answer.starts_with(b"HTTP/1.1 401") || answer.starts_with(b"HTTP/1.1 429")),
            "a stalled call without the token was not refused before its body: {read:?} {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    let stalled = open_stalled_requests(c.http_address("site-a"), Some(&c.token), limit + 16).await;
    assert_eq!(stalled.len(), limit + 16, "could not open the stalled requests");
    // The limit is full once a /status gets no answer (the harness gives up
    // on a request after 5 s; /status waits for a place until the stalled
    // ones time out).
    let mut full = false;
    for _ in 0..10 {
        if c.http_get("site-a", "/status").await.is_none() {
            full = true;
            break;
        }
    }
    assert!(full, "/status never waited: the stalled requests hold no place");
    let took = answered_active(&c, "site-a", ANSWER_WITHIN).await;
    assert!(took.is_some(), "/active was not answered 200:\n{}", c.log_tail("site-a"));
    // The other load-balancer checks stay outside the limit too: each is
    // answered within the harness's 5 s, where a limited route waits.
    let ready = c.http_get("site-a", "/readyz").await;
    assert!(ready.as_ref().is_some_and(|(code, body)| *code == 200 && body == "ready\n"), "/readyz: {ready:?}");
    let standby = c.http_get("site-a", "/standby").await;
    let not_standby =
        |(code, body): &(u16, String)| *code == 503 && body.starts_with("not standby: this site is active");
    assert!(standby.as_ref().is_some_and(not_standby), "/standby: {standby:?}");
    let mut waiting = 0;
    for stream in &stalled {
        waiting += usize::from(unanswered(stream).await);
    }
    assert_eq!(waiting, stalled.len(), "the stalled requests ended before /active was answered: it waited for them");
}

/// The daemons' open-files limit in the flood test: HTTP cap 4,032, a
/// source's share of it 252, peer cap 256.
const FLOOD_OPEN_FILES: u64 = 8192;
/// Keep-alive clients of the hog: more than the HTTP cap, as reproduced.
const KEEP_ALIVE_CLIENTS: usize = 4300;
/// How often each keep-alive client sends `GET /healthz`.
const REFRESH: Duration = Duration::from_secs(3);
/// One silent connection to the witness's peer port this often (100 a
/// second: with each held until the 5 s TLS handshake timeout, twice the
/// peer cap).
const SILENT_EVERY: Duration = Duration::from_millis(10);
/// What each silent connection sends: the first byte of a TLS record (a
/// handshake), so the witness waits for the rest.
const TLS_HANDSHAKE_START: &[u8] = &[0x16];
/// Fresh connections a member makes to the witness while the stream runs.
const MEMBER_TRIES: usize = 5;
/// The floods end by themselves after this, whatever happens.
const FLOOD_MAX_RUN: Duration = Duration::from_secs(240);
/// How long a load balancer waits for one check's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Checks the load balancer makes while the floods run.
const CHECKS: usize = 10;
/// Consecutive failed checks after which a load balancer marks a server
/// down (HAProxy's `fall` default).
const FALL: usize = 3;
/// Deadline for the floods to build up and for the cluster to settle:
/// generous, waited on, never asserted as a figure.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

/// Waits (every 200 ms, at most `within`) until `cond` holds.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cond()
}

/// The value of the `failover_connections_refused_total` series for
/// `port` and `reason` in `node`'s `/metrics`.
async fn refused(c: &TestCluster, node: &str, port: &str, reason: &str) -> Option<u64> {
    let (_, text) = c.http_get(node, "/metrics").await?;
    let series = format!("failover_connections_refused_total{{port=\"{port}\",reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).and_then(|v| v.trim().parse().ok())
}

/// One connection as `member` makes them (from 127.0.0.1, with its
/// certificate) to the witness's peer port, TLS handshake included,
/// tried once.
async fn member_connects_to_witness(c: &TestCluster, member: &str) -> Result<(), String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let read = |f: String| std::fs::read(c.certs_dir().join(f)).map_err(|e| e.to_string());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem".into())?))
        .identity(Identity::from_pem(read(format!("{member}.pem"))?, read(format!("{member}.key"))?))
        .domain_name("witness");
    let endpoint = Endpoint::from_shared(format!("https://{}", c.peer_address("witness")))
        .map_err(|e| e.to_string())?
        .connect_timeout(CHECK_TIMEOUT)
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    endpoint.connect().await.map(drop).map_err(|e| failover_controller::describe::with_causes(&e))
}

/// Whether the witness hears site-b, by its `/status`.
fn witness_hears_site_b(c: &TestCluster) -> Option<bool> {
    c.status_doc("witness")?.sites.into_iter().find(|s| s.id == "site-b").map(|s| s.reachable)
}

/// One host keeps alive as many HTTP connections to the active site as it
/// can (more clients than the cap, each refreshing with `GET /healthz`
/// every 3 s and reconnecting when closed) while another streams silent
/// connections at the witness's peer port (mutual TLS on): a load
/// balancer's fresh `/active` check, waiting 2 s as a typical one does, is
/// answered; a member's fresh connection to the witness gets through at
/// its first try; a member whose connection to the witness is cut
/// reconnects; and a kill of the active site still fails over, never two
/// sites active.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_holding_all_it_can_and_a_silent_stream_do_not_silence_active_or_stop_a_failover() {
    let own = raise_own_open_files();
    let needed = KEEP_ALIVE_CLIENTS as u64 + 2048;
    assert!(own >= needed, "this test needs {needed} open files of its own, its limit is {own}");
    let caps = ConnectionCaps::for_open_files(FLOOD_OPEN_FILES);
    assert!(KEEP_ALIVE_CLIENTS > caps.http, "the hog must have more clients than the HTTP cap {}", caps.http);
    let share = caps.http_slots().per_source;

    let spec = Spec { tls: true, open_files_limit: Some(FLOOD_OPEN_FILES), ..Spec::default() };
    let mut c = TestCluster::start_with_site_a_active(spec).await;
    let prober = c.prober();
    let hog = Flood::keep_alive(c.http_address("site-a"), HOG, KEEP_ALIVE_CLIENTS, REFRESH, FLOOD_MAX_RUN);
    let stream = Flood::silent(c.peer_address("witness"), STREAMER, TLS_HANDSHAKE_START, SILENT_EVERY, FLOOD_MAX_RUN);

    // Pressure first: the hog holds at least its share, and the stream has
    // opened more connections than the witness has peer slots.
    let built = eventually(SETTLE_WITHIN, || {
        hog.tally().held.load(Relaxed) >= share
            && stream.tally().opened.load(Relaxed) > 2 * limits::PEER_CONNECTIONS_MAX as u64
    })
    .await;
    assert!(built, "the floods did not build up: hog {:?}, stream {:?}", hog.tally(), stream.tally());

    // A member's fresh connection (its address, its certificate) gets
    // through the TLS handshake at its first try, each time.
    for n in 0..MEMBER_TRIES {
        let connected = member_connects_to_witness(&c, "site-b").await;
        assert!(connected.is_ok(), "try {n}: site-b could not connect to the witness: {connected:?}");
    }

    // A member loses its connections to the witness and must make new ones
    // while the stream goes on.
    c.cut("site-b", "witness");
    let lost = c.wait_for(SETTLE_WITHIN, |c| witness_hears_site_b(c) == Some(false)).await;
    assert!(lost, "the witness still hears site-b through a cut link");
    c.heal();

    // The load balancer's checks, each on a fresh connection.
    let balancer = HttpClient::from_source(BALANCER);
    let url = c.active_url("site-a");
    let mut outcomes = Vec::with_capacity(CHECKS);
    for _ in 0..CHECKS {
        let started = Instant::now();
        let answer = balancer.get(&url, CHECK_TIMEOUT).await;
        eprintln!("/active check: {:?} after {:?}", answer.as_ref().map(|r| r.status), started.elapsed());
        outcomes.push(matches!(answer, Ok(ref r) if r.status == 200));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let answered = outcomes.iter().filter(|ok| **ok).count();
    let held = hog.tally().held.load(Relaxed);
    eprintln!("{answered} of {CHECKS} checks answered 200 within {CHECK_TIMEOUT:?}; the hog held {held} connections");
    assert!(
        !outcomes.windows(FALL).any(|w| w.iter().all(|ok| !ok)),
        "{FALL} checks in a row failed ({outcomes:?}), so a load balancer marks site-a down, while the hog held {held} \
         connections:\n{}",
        c.log_tail("site-a")
    );
    assert!(held <= share, "the hog held {held} HTTP connections, more than a source's share {share}");
    let hog_refused = refused(&c, "site-a", "http", "per_source").await;
    assert!(hog_refused.is_some_and(|n| n > 0), "site-a counted no refusal of the hog: {hog_refused:?}");

    // site-b is back in touch with the witness, then the active site dies.
    let reconnected = c.wait_for(SETTLE_WITHIN, |c| witness_hears_site_b(c) == Some(true)).await;
    assert!(reconnected, "site-b never reached the witness again:\n{}", c.log_tail("witness"));
    c.kill9("site-a");
    let took_over = c
        .wait_for(SETTLE_WITHIN, |c| {
            c.role("site-b").as_deref() == Some("active") && c.active_seen_by("witness").as_deref() == Some("site-b")
        })
        .await;
    assert!(took_over, "site-b did not take over:\n{}\n{}", c.log_tail("site-b"), c.log_tail("witness"));
    let stream_refused = refused(&c, "witness", "peer", "per_source").await;
    assert!(stream_refused.is_some_and(|n| n > 0), "the witness counted no refusal of the stream: {stream_refused:?}");

    let hog = hog.stop().await;
    let stream = stream.stop().await;
    eprintln!("hog: {hog:?}\nstream: {stream:?}");
    prober.stop().await.assert_never_two_active();
}
