//! The watchers, from inside the prober's namespace: the split-brain
//! prober over every site's `/active` (every 10 ms), BIND9's answer and
//! HAProxy's ready servers (every 20 ms), and a client loop through
//! HAProxy (a request every 20 ms). They keep only time-stamped changes
//! (and the client's failures), so a run of hours stays small.
//!
//! Every watcher must stop when told or at its cap, and must only ever
//! look: it sends nothing that could change the system under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use failover_controller::actuate::haproxy::ServerState;
use failover_tests::haproxy::servers_state;
use failover_tests::http_client::HttpClient;
use failover_tests::prober::{Outcome, Prober};

use crate::shape::{host_addr, SITES, SVC};

/// Which sites answered 200 on `/active` in one round, indexed as
/// [`SITES`]; a site the lab does not have never answers.
pub type Answers = [bool; SITES.len()];

/// The sites answering in `answers`.
pub fn answering(answers: &Answers) -> impl Iterator<Item = &'static str> + '_ {
    SITES.iter().zip(answers).filter(|(_, a)| **a).map(|(s, _)| *s)
}

/// The one site answering in `answers`, if exactly one does.
pub fn only_one(answers: &Answers) -> Option<&'static str> {
    let mut sites = answering(answers);
    sites.next().filter(|_| sites.next().is_none())
}

/// Whether `site` answers in `answers`.
pub fn is_answering(answers: &Answers, site: &str) -> bool {
    SITES.iter().position(|s| *s == site).is_some_and(|i| answers[i])
}

/// What the watchers saw, as time-stamped changes.
#[derive(Default)]
pub struct Seen {
    /// (when, which sites answer 200) on each change.
    pub active: Vec<(Instant, Answers)>,
    /// (when, DNS answer for app.example.test) on each change.
    pub dns: Vec<(Instant, String)>,
    /// (when, HAProxy's ready servers) on each change.
    pub haproxy: Vec<(Instant, String)>,
    /// When a client request through HAProxy failed.
    pub client_failures: Vec<Instant>,
    /// Client requests that succeeded.
    pub client_ok: u64,
    /// Sampling rounds of /active.
    pub rounds: u64,
    /// When the last round of /active started.
    pub last_round: Option<Instant>,
    /// (start of one round, start of the next) where they were more than
    /// [`STALL`] apart: the prober saw nothing in between.
    pub stalls: Vec<(Instant, Instant)>,
}

/// Rounds of /active start every 10 ms; further apart than this is a stall.
pub const STALL: Duration = Duration::from_millis(50);

/// What the watchers saw, shared with them.
pub type Shared = Arc<Mutex<Seen>>;

fn push_change<T: PartialEq + Clone>(log: &mut Vec<(Instant, T)>, at: Instant, v: T) {
    if log.last().is_none_or(|(_, last)| *last != v) {
        log.push((at, v));
    }
}

/// Milliseconds, as the report counts them.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Seen {
    /// The one site that answered 200 in the prober's last round, if only
    /// one did.
    pub fn active_site(&self) -> Option<&'static str> {
        self.active.last().and_then(|(_, a)| only_one(a))
    }

    /// A site other than `site` that answered 200 in the prober's last
    /// round (the one of highest priority, if several did).
    pub fn other_active(&self, site: &str) -> Option<&'static str> {
        self.active.last().and_then(|(_, a)| answering(a).find(|s| *s != site))
    }

    /// Whether DNS answers `site`'s address and HAProxy has only `site` ready.
    pub fn services_point_at(&self, site: &str) -> bool {
        let want = host_addr(site).to_string();
        self.dns.last().is_some_and(|(_, a)| *a == want) && self.haproxy.last().is_some_and(|(_, r)| r == site)
    }
}

/// Running watchers; they stop when this is stopped or dropped.
pub struct Watchers {
    stop: Arc<AtomicBool>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Watchers {
    /// Starts the prober over `sites` (some of [`SITES`]) and,
    /// `with_services`, the DNS, HAProxy and client watchers, each on its
    /// own thread (inheriting this thread's network namespace). They stop
    /// after `cap` at the latest.
    pub fn start(seen: &Shared, sites: &'static [&'static str], with_services: bool, cap: Duration) -> Watchers {
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + cap;
        spawn_on_runtime(active_prober(seen.clone(), sites, stop.clone(), cap));
        if with_services {
            spawn_on_runtime(service_watcher(seen.clone(), stop.clone(), until));
            spawn_on_runtime(client_loop(seen.clone(), stop.clone(), until));
        }
        Watchers { stop }
    }
}

/// Runs `task` on a single-threaded runtime of a new thread, so every
/// socket it opens is opened in this thread's network namespace.
fn spawn_on_runtime(task: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(task),
        Err(e) => eprintln!("failover-bench: a watcher has no runtime: {e}"),
    });
}

async fn active_prober(seen: Shared, sites: &'static [&'static str], stop: Arc<AtomicBool>, cap: Duration) {
    let urls = sites.iter().map(|s| format!("http://{}/active", SocketAddr::from((host_addr(s), 8400)))).collect();
    let origin = Instant::now();
    let prober = Prober::watch(urls, Duration::from_millis(10), Duration::from_millis(200), cap, {
        let seen = seen.clone();
        move |round| {
            let tick = origin + round.since_start;
            let answered = |site: &str| {
                let probe = sites.iter().position(|s| *s == site).and_then(|i| round.probes.get(i));
                probe.is_some_and(|p| p.outcome == Outcome::Active)
            };
            let now: Answers = SITES.map(answered);
            if let Ok(mut seen) = seen.lock() {
                seen.rounds += 1;
                if let Some(last) = seen.last_round.filter(|last| tick.saturating_duration_since(*last) > STALL) {
                    seen.stalls.push((last, tick));
                }
                seen.last_round = Some(tick);
                if seen.active.last().is_none_or(|(_, last)| *last != now) {
                    seen.active.push((tick, now));
                }
            }
        }
    });
    while !stop.load(Ordering::Relaxed) && !prober.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    prober.stop().await;
}

async fn service_watcher(seen: Shared, stop: Arc<AtomicBool>, until: Instant) {
    let resolver = match dns_resolver() {
        Ok(r) => r,
        Err(e) => return eprintln!("failover-bench: no DNS resolver: {e}"),
    };
    let api = SocketAddr::from((SVC, 9999));
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let tick = Instant::now();
        let answer = match resolver.lookup("app.example.test.", hickory_proto::rr::RecordType::A).await {
            Ok(l) => l.answers().iter().map(|r| r.data.to_string()).collect::<Vec<_>>().join(","),
            Err(_) => String::new(),
        };
        // HAProxy's servers in `ready` state, comma-separated. A blocking
        // call: nothing else runs on this watcher's runtime.
        let ready = servers_state(api, "app", Duration::from_millis(200), Duration::from_millis(500)).map(|states| {
            let ready: Vec<String> =
                states.into_iter().filter(|(_, s)| *s == ServerState::Ready).map(|(name, _)| name).collect();
            ready.join(",")
        });
        if let Ok(mut seen) = seen.lock() {
            push_change(&mut seen.dns, tick, answer);
            if let Some(r) = ready {
                push_change(&mut seen.haproxy, tick, r);
            }
        }
        tokio::time::sleep(Duration::from_millis(20).saturating_sub(tick.elapsed())).await;
    }
}

async fn client_loop(seen: Shared, stop: Arc<AtomicBool>, until: Instant) {
    let client = HttpClient::new();
    let front = format!("http://{}/", SocketAddr::from((SVC, 80)));
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let tick = Instant::now();
        let ok = client.get(&front, Duration::from_secs(2)).await.is_ok_and(|r| r.status == 200);
        if let Ok(mut seen) = seen.lock() {
            if ok {
                seen.client_ok += 1;
            } else {
                seen.client_failures.push(tick);
            }
        }
        tokio::time::sleep(Duration::from_millis(20).saturating_sub(tick.elapsed())).await;
    }
}

fn dns_resolver() -> Result<hickory_resolver::Resolver<hickory_net::runtime::TokioRuntimeProvider>, String> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    let mut ns = NameServerConfig::udp(std::net::IpAddr::V4(SVC));
    for c in &mut ns.connections {
        c.port = 53;
    }
    let mut builder = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        hickory_net::runtime::TokioRuntimeProvider::default(),
    );
    let o = builder.options_mut();
    o.cache_size = 0;
    o.recursion_desired = false;
    o.timeout = Duration::from_millis(200);
    o.attempts = 1;
    builder.build().map_err(|e| e.to_string())
}
