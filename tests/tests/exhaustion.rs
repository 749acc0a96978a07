//! Descriptor exhaustion from outside: the daemons run at 1,024 open files
//! (soft and hard, so they cannot raise it), and idle TCP connections that
//! never send a byte are held open against the active site's HTTP and gRPC
//! ports, more of them than the daemon has descriptors. A fresh `/active`
//! request must still be answered while they stay open, and the cluster
//! must still fail over afterwards, never with two sites active.
//! A node whose state file cannot be written, which exhausted descriptors
//! can cause, stops loudly rather than vote without persisting.
//! Traffic goes only to 127.0.0.1; every loop is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use failover_tests::cluster::{Spec, TestCluster};
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
/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a fresh `/active` may take to be answered 200 (generous: this
/// is a deadline to wait on, not a figure asserted).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

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

/// Opens up to `count` TCP connections to `addr` that send nothing, in
/// bounded batches, and returns the ones established.
async fn open_idle(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    let mut started = 0;
    while started < count {
        let batch = CONNECT_BATCH.min(count - started);
        started += batch;
        let mut set = JoinSet::new();
        for _ in 0..batch {
            set.spawn(async move { tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await });
        }
        while let Some(done) = set.join_next().await {
            if let Ok(Ok(Ok(stream))) = done {
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
    let mut waiting = 0;
    for stream in &stalled {
        waiting += usize::from(unanswered(stream).await);
    }
    assert_eq!(waiting, stalled.len(), "the stalled requests ended before /active was answered: it waited for them");
}
