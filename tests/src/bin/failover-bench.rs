//! `failover-bench`: failover time, switchover time and split-brain
//! exposure of the real binaries, side by side with keepalived, on a
//! network of namespaces this process creates (and deletes when done).
//!
//! Each host (site-a, site-b, witness, a services host with BIND9 and
//! HAProxy, and the prober) gets its own network namespace with one veth
//! into a bridge; the benchmark itself moves into the prober's namespace,
//! so every request it makes goes to an address inside those namespaces.
//! Faults are kill -9 and iptables rules inside a host's namespace (which
//! spare the prober, so it keeps seeing both sides). Every loop is bounded
//! in count and time. Must run as root with `ip`, `iptables`, `named`,
//! `haproxy` and `keepalived` installed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use failover_tests::netns::{self, Net};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "failover-bench", about = "Failover benchmark and chaos harness (needs root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every scenario for each system and write the report.
    Run {
        /// Trials per scenario and system.
        #[arg(long, default_value_t = 30)]
        trials: usize,
        /// Where results.json, README tables and the chart go.
        #[arg(long, default_value = "docs/benchmarks")]
        out: PathBuf,
        /// Systems to run: failover, keepalived.
        #[arg(long, value_delimiter = ',', default_value = "failover,keepalived")]
        systems: Vec<String>,
        /// Scenarios to run (default: all of them).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Directory of the built binaries (default: next to this one).
        #[arg(long)]
        bins: Option<PathBuf>,
        /// Exit non-zero unless our system completed every trial, never
        /// showed two active sites, moved exactly when it should, and lost
        /// no client request in planned switchovers (for CI).
        #[arg(long)]
        strict: bool,
    },
    /// (internal) A stand-in application: answers 200 with its name.
    #[command(hide = true)]
    App {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        name: String,
    },
    /// (internal) For keepalived: answers /active with 200 while the VIP is
    /// assigned in this namespace, 503 otherwise.
    #[command(hide = true)]
    VipAgent {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        vip: Ipv4Addr,
    },
}

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const W: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
const PROBE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
const SVC: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 20);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const TOKEN: &str = "bench-token";
const TSIG: &str = "9mSKd6eDzg2GqPBvdxHjlKqFiEoVLhq1p4JpHaz35kU=";
/// Production-like timers, the same for both systems.
const HEARTBEAT: &str = "1s";
const LEASE: &str = "3s";
/// Longest wait for any one condition.
const PATIENCE: Duration = Duration::from_secs(40);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::App { listen, name } => serve(listen, move |_| (200, name.clone())),
        Cmd::VipAgent { listen, vip } => serve(listen, move |path| {
            // The VIP is ours exactly when we can bind to it.
            let held = std::net::UdpSocket::bind((vip, 0)).is_ok();
            match (path, held) {
                ("/active", true) => (200, "active\n".into()),
                _ => (503, "not active\n".into()),
            }
        }),
        Cmd::Run { trials, out, systems, scenarios, bins, strict } => {
            run(trials, &out, &systems, &scenarios, bins, strict)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A minimal HTTP/1.0 server (one request per connection) for the helper
/// processes; runs until killed.
fn serve(listen: SocketAddr, answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let answer = Arc::new(answer);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let answer = answer.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the whole head before answering: closing with unread
            // bytes would reset the connection under the client.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (code, body) = answer(path);
            let reason = if code == 200 { "OK" } else { "Service Unavailable" };
            let response = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- probing

/// One HTTP GET with a time limit; the status code, or None.
fn http_get(addr: SocketAddr, path: &str, limit: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = Vec::new();
    s.take(1 << 20).read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((code, body))
}

fn http_post(addr: SocketAddr, path: &str, body: &str) -> Option<u16> {
    let limit = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

/// What the prober saw, as time-stamped changes.
#[derive(Default)]
struct Seen {
    /// (when, site-a answers 200, site-b answers 200) on each change.
    active: Vec<(Instant, bool, bool)>,
    /// (when, DNS answer for app.example.test) on each change.
    dns: Vec<(Instant, String)>,
    /// (when, HAProxy's ready servers) on each change.
    haproxy: Vec<(Instant, String)>,
    /// When a client request through HAProxy failed.
    client_failures: Vec<Instant>,
    /// Client requests that succeeded.
    client_ok: u64,
    /// Sampling rounds of /active.
    rounds: u64,
}

type Shared = Arc<Mutex<Seen>>;

fn push_change<T: PartialEq + Clone>(log: &mut Vec<(Instant, T)>, at: Instant, v: T) {
    if log.last().is_none_or(|(_, last)| *last != v) {
        log.push((at, v));
    }
}

/// Starts the samplers: /active of both sites every 10 ms; DNS, HAProxy
/// and a client request through HAProxy every 20 ms. They stop when
/// `stop` is set or after `cap`.
fn start_probes(seen: Shared, stop: Arc<std::sync::atomic::AtomicBool>, with_services: bool, cap: Duration) {
    use std::sync::atomic::Ordering;
    let until = Instant::now() + cap;
    let (s, st) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        let a = SocketAddr::from((A, 8400));
        let b = SocketAddr::from((B, 8400));
        let limit = Duration::from_millis(200);
        while !st.load(Ordering::Relaxed) && Instant::now() < until {
            let tick = Instant::now();
            let hb = std::thread::spawn(move || http_get(b, "/active", limit).is_some_and(|(c, _)| c == 200));
            let ra = http_get(a, "/active", limit).is_some_and(|(c, _)| c == 200);
            let rb = hb.join().unwrap_or(false);
            if let Ok(mut seen) = s.lock() {
                seen.rounds += 1;
                if seen.active.last().is_none_or(|&(_, la, lb)| (la, lb) != (ra, rb)) {
                    seen.active.push((tick, ra, rb));
                }
            }
            std::thread::sleep(Duration::from_millis(10).saturating_sub(tick.elapsed()));
        }
    });
    if !with_services {
        return;
    }
    let (s, st) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let resolver = dns_resolver();
            while !st.load(Ordering::Relaxed) && Instant::now() < until {
                let tick = Instant::now();
                let answer = match resolver.lookup("app.example.test.", hickory_proto::rr::RecordType::A).await {
                    Ok(l) => l.answers().iter().map(|r| r.data.to_string()).collect::<Vec<_>>().join(","),
                    Err(_) => String::new(),
                };
                let ready = haproxy_ready();
                if let Ok(mut seen) = s.lock() {
                    push_change(&mut seen.dns, tick, answer);
                    if let Some(r) = ready {
                        push_change(&mut seen.haproxy, tick, r);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20).saturating_sub(tick.elapsed())).await;
            }
        });
    });
    let (s, st) = (seen, stop);
    std::thread::spawn(move || {
        let front = SocketAddr::from((SVC, 80));
        while !st.load(Ordering::Relaxed) && Instant::now() < until {
            let tick = Instant::now();
            let ok = http_get(front, "/", Duration::from_secs(2)).is_some_and(|(c, _)| c == 200);
            if let Ok(mut seen) = s.lock() {
                if ok {
                    seen.client_ok += 1;
                } else {
                    seen.client_failures.push(tick);
                }
            }
            std::thread::sleep(Duration::from_millis(20).saturating_sub(tick.elapsed()));
        }
    });
}

fn dns_resolver() -> hickory_resolver::Resolver<hickory_net::runtime::TokioRuntimeProvider> {
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
    builder.build().expect("resolver")
}

/// HAProxy's servers in `ready` state, comma-separated.
fn haproxy_ready() -> Option<String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((SVC, 9999)), Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"show servers state app\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let ready: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let admin: u32 = f.get(6)?.parse().ok()?;
            (admin & 0x7b == 0).then_some(*f.get(3)?)
        })
        .collect();
    Some(ready.join(","))
}

// -------------------------------------------------------------- the hosts

/// One system under test on the namespaces.
struct Lab {
    net: Net,
    /// Configs, state and every process's log (kept after the run).
    dir: PathBuf,
    bins: PathBuf,
    system: String,
    procs: BTreeMap<&'static str, Child>,
    helpers: Vec<Child>,
    /// When a daemon was last (re)started: a restarted voter grants nothing
    /// for one lease, so trials start only after that has passed.
    last_start: Instant,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in self.procs.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for c in &mut self.helpers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn log_file(dir: &Path, name: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))
}

impl Lab {
    fn helper(&mut self, host: &str, program: &str, args: &[&str], log: &str) -> anyhow::Result<()> {
        let child = self
            .net
            .command(host, program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log_file(self.dir.as_path(), log)?)
            .spawn()
            .with_context(|| format!("starting {program} in {host}"))?;
        self.helpers.push(child);
        Ok(())
    }

    fn site_config(&self, name: &str) -> String {
        let addr = |h: &str| match h {
            "site-a" => A,
            "site-b" => B,
            _ => W,
        };
        let mut t = format!(
            "[node]\nname = \"{name}\"\nstate_dir = \"{}/state-{name}\"\n[admin]\ntoken = \"{TOKEN}\"\n\
             [cluster]\nname = \"test\"\nallow_unauthenticated_peers = true\nfailover_mode = \"automatic\"\nfailback = \"manual\"\nheartbeat_interval = \"{HEARTBEAT}\"\n\
             lease = \"{LEASE}\"\nactuation_interval = \"10s\"\nfailover_cooldown = \"1s\"\n\n",
            self.dir.as_path().display()
        );
        for (m, p) in [("site-a", Some(2)), ("site-b", Some(1)), ("witness", None)] {
            let kind = if p.is_some() { "site" } else { "witness" };
            let pr = p.map(|p| format!("priority = {p}\n")).unwrap_or_default();
            t.push_str(&format!(
                "[[members]]\nname = \"{m}\"\nkind = \"{kind}\"\n{pr}peer_address = \"{}:7400\"\nhttp_address = \"{}:8400\"\n\n",
                addr(m),
                addr(m)
            ));
        }
        if name != "witness" {
            t.push_str(&format!(
                "[actuators]\naddresses = [\"{}\"]\n[[actuators.dns]]\nname = \"dns\"\nserver = \"{SVC}:53\"\n\
                 zone = \"example.test\"\nnames = [\"app.example.test\"]\nttl = \"5s\"\ntsig_key_name = \"failover-key\"\n\
                 tsig_secret = \"{TSIG}\"\n[[actuators.haproxy]]\nname = \"haproxy\"\naddress = \"{SVC}:9999\"\n\
                 backends = [\"app\"]\nservers = {{ \"site-a\" = \"site-a\", \"site-b\" = \"site-b\" }}\n",
                addr(name)
            ));
        }
        t
    }

    fn keepalived_config(&self, name: &str) -> String {
        let (me, peer, priority) = if name == "site-a" { (A, B, 150) } else { (B, A, 100) };
        format!(
            "global_defs {{\n  router_id {name}\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  \
             virtual_router_id 51\n  priority {priority}\n  advert_int 1\n  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n  \
             virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
        )
    }

    /// Starts (or restarts) the daemon of `host`.
    fn start(&mut self, host: &'static str) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let child = if self.system == "keepalived" {
            let conf = dir.join(format!("{host}.keepalived.conf"));
            std::fs::write(&conf, self.keepalived_config(host))?;
            let _ = netns::sh("ip", &["-n", &self.net.ns(host), "addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
            let pid = |k: &str| dir.join(format!("{host}.{k}.pid")).display().to_string();
            self.net
                .command(host, "keepalived")
                .args(["-n", "-l", "-D", "-P", "-f"])
                .arg(&conf)
                .args(["-p", &pid("main"), "-r", &pid("vrrp"), "-c", &pid("checkers")])
                .stdout(Stdio::null())
                .stderr(log_file(&dir, host)?)
                .spawn()?
        } else {
            let conf = dir.join(format!("{host}.toml"));
            std::fs::write(&conf, self.site_config(host))?;
            let bin = if host == "witness" { "failover-witness" } else { "failover-controller" };
            self.net
                .command(host, &self.bins.join(bin).display().to_string())
                .args(["run", "--config"])
                .arg(&conf)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log_file(&dir, host)?)
                .spawn()?
        };
        self.procs.insert(host, child);
        self.last_start = Instant::now();
        Ok(())
    }

    fn kill9(&mut self, host: &'static str) {
        if let Some(mut c) = self.procs.remove(host) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self, host: &str) -> Option<u32> {
        self.procs.get(host).map(Child::id)
    }

    fn status(&self, host: &str) -> Option<Value> {
        let addr = SocketAddr::from((self.net.addr(host), 8400));
        let (_, body) = http_get(addr, "/status", Duration::from_secs(2))?;
        serde_json::from_str(&body).ok()
    }

    /// Isolates `host` from every peer, the prober excepted. Packets are
    /// dropped on arrival (INPUT rules on both sides), as a real partition
    /// loses them, so no sender gets an error it could act on.
    fn isolate(&self, host: &str) -> anyhow::Result<()> {
        let probe = PROBE.to_string();
        self.net.iptables(host, &["-I", "INPUT", "-i", "eth0", "-j", "DROP"])?;
        self.net.iptables(host, &["-I", "INPUT", "-i", "eth0", "-s", &probe, "-j", "ACCEPT"])?;
        let me = self.net.addr(host).to_string();
        for other in ["site-a", "site-b", "witness", "svc"] {
            if other != host {
                self.net.iptables(other, &["-I", "INPUT", "-s", &me, "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    /// Cuts the link between `host` and `other`, both ways, by dropping on
    /// arrival at each end.
    fn cut(&self, host: &str, other: &str) -> anyhow::Result<()> {
        let (h, o) = (self.net.addr(host).to_string(), self.net.addr(other).to_string());
        self.net.iptables(host, &["-I", "INPUT", "-s", &o, "-j", "DROP"])?;
        self.net.iptables(other, &["-I", "INPUT", "-s", &h, "-j", "DROP"])?;
        Ok(())
    }

    fn heal(&self) -> anyhow::Result<()> {
        for h in ["site-a", "site-b", "witness", "svc"] {
            self.net.iptables(h, &["-F"])?;
        }
        Ok(())
    }
}

/// Sets up the namespaces and services for `system` and starts its daemons.
fn lab(system: &str, bins: &Path, logs: &Path) -> anyhow::Result<Lab> {
    let prefix = format!("fbn{}", std::process::id());
    let net = Net::create(&prefix, &[("site-a", A), ("site-b", B), ("witness", W), ("probe", PROBE), ("svc", SVC)])
        .context("creating network namespaces (root and iproute2 needed)")?;
    let dir = logs.join(system);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    // Absolute: named and the daemons resolve paths from their own cwd.
    let dir = std::fs::canonicalize(&dir)?;
    let mut lab = Lab {
        net,
        dir,
        bins: bins.to_path_buf(),
        system: system.into(),
        procs: BTreeMap::new(),
        helpers: Vec::new(),
        last_start: Instant::now(),
    };
    let me = bins.join("failover-bench").display().to_string();
    lab.helper("site-a", &me, &["app", "--listen", &format!("{A}:8080"), "--name", "site-a"], "app-a")?;
    lab.helper("site-b", &me, &["app", "--listen", &format!("{B}:8080"), "--name", "site-b"], "app-b")?;
    if system == "keepalived" {
        for (host, addr) in [("site-a", A), ("site-b", B)] {
            let listen = format!("{addr}:8400");
            lab.helper(host, &me, &["vip-agent", "--listen", &listen, "--vip", &VIP.to_string()], "vip")?;
            lab.start(host)?;
        }
        return Ok(lab);
    }
    let d = lab.dir.as_path().display().to_string();
    std::fs::write(
        lab.dir.as_path().join("named.conf"),
        format!(
            "options {{ directory \"{d}\"; listen-on port 53 {{ {SVC}; }}; listen-on-v6 {{ none; }};\n\
             pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\"; recursion no; dnssec-validation no; notify no; }};\n\
             controls {{ }};\nkey \"failover-key\" {{ algorithm hmac-sha256; secret \"{TSIG}\"; }};\n\
             zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; allow-update {{ key \"failover-key\"; }}; }};\n"
        ),
    )?;
    std::fs::write(
        lab.dir.as_path().join("example.test.zone"),
        "$TTL 5\n@ IN SOA ns1.example.test. admin.example.test. 1 60 60 600 5\n@ IN NS ns1.example.test.\nns1 IN A 10.77.0.20\n",
    )?;
    std::fs::write(
        lab.dir.as_path().join("haproxy.cfg"),
        format!(
            "global\n    stats socket ipv4@{SVC}:9999 level admin\ndefaults\n    mode http\n    timeout connect 2s\n\
             \x20   timeout client 10s\n    timeout server 10s\nfrontend fe\n    bind {SVC}:80\n    default_backend app\n\
             backend app\n    server site-a {A}:8080\n    server site-b {B}:8080\n"
        ),
    )?;
    let conf = format!("{d}/named.conf");
    lab.helper("svc", "named", &["-g", "-4", "-n", "1", "-c", &conf], "named")?;
    let cfg = format!("{d}/haproxy.cfg");
    lab.helper("svc", "haproxy", &["-db", "-f", &cfg], "haproxy")?;
    for host in ["witness", "site-a", "site-b"] {
        lab.start(host)?;
    }
    Ok(lab)
}

// ------------------------------------------------------------ the trials

/// The measurements of one trial.
#[derive(Clone, Debug, Default)]
struct Trial {
    /// Fault to the new site answering 200 on /active.
    failover_ms: Option<f64>,
    /// Fault to DNS answering the new site.
    dns_ms: Option<f64>,
    /// Fault to HAProxy with only the new site ready.
    haproxy_ms: Option<f64>,
    /// Longest stretch with both sites answering 200.
    split_brain_ms: f64,
    /// Client requests through HAProxy that failed during the trial.
    client_failures: usize,
    /// Whether the active site changed.
    moved: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Which site answers 200 now, by the prober's last round.
fn active_now(seen: &Shared) -> Option<&'static str> {
    let s = seen.lock().ok()?;
    match s.active.last() {
        Some((_, true, false)) => Some("site-a"),
        Some((_, false, true)) => Some("site-b"),
        _ => None,
    }
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if cond() {
        Ok(())
    } else {
        bail!("timed out after {within:?} waiting for {what}")
    }
}

fn addr_of(site: &str) -> Ipv4Addr {
    if site == "site-a" {
        A
    } else {
        B
    }
}

/// Waits until exactly one site is active, every member is back, and (for
/// our system) DNS and HAProxy point at it; returns the active site.
fn settle(lab: &Lab, seen: &Shared) -> anyhow::Result<&'static str> {
    // Steady state: one lease and a heartbeat past the last restart.
    let steady = lab.last_start + Duration::from_secs(4);
    std::thread::sleep(steady.saturating_duration_since(Instant::now()));
    wait_until("one active site", PATIENCE, || active_now(seen).is_some())?;
    let active = active_now(seen).context("no active site")?;
    if lab.system == "keepalived" {
        // keepalived preempts: wait until the higher priority holds the VIP.
        wait_until("site-a to hold the VIP", PATIENCE, || active_now(seen) == Some("site-a"))?;
        std::thread::sleep(Duration::from_secs(3));
        return Ok("site-a");
    }
    // Every link carries traffic again, both ways: each node heard from
    // every other within the last heartbeat and a half. Right after a heal
    // a connection attempt made during the partition may still be waiting
    // on a lost SYN; a fault then is a second fault, not this scenario.
    wait_until("every member to hear every other", PATIENCE, || {
        ["site-a", "site-b", "witness"].iter().all(|host| {
            lab.status(host).is_some_and(|s| {
                s["sites"].as_array().is_some_and(|v| {
                    v.iter().all(|p| p["reachable"] == true && p["last_seen_ms"].as_u64().is_some_and(|ms| ms <= 1500))
                })
            })
        })
    })?;
    let want = addr_of(active).to_string();
    wait_until("DNS and HAProxy to point at the active site", PATIENCE, || {
        let s = seen.lock().expect("seen");
        s.dns.last().is_some_and(|(_, a)| *a == want) && s.haproxy.last().is_some_and(|(_, r)| r == active)
    })?;
    Ok(active)
}

/// Reads the trial's numbers from what the prober saw after `t0`.
fn measure(seen: &Shared, t0: Instant, end: Instant, old: &str, new: &str) -> Trial {
    let s = seen.lock().expect("seen");
    let want_new = |a: bool, b: bool| if new == "site-a" { a } else { b };
    let mut t = Trial::default();
    // State at t0 and each change after it.
    let before = s.active.iter().rev().find(|(at, _, _)| *at <= t0).map(|&(_, a, b)| (a, b)).unwrap_or((false, false));
    let mut changes: Vec<(Instant, bool, bool)> = vec![(t0, before.0, before.1)];
    changes.extend(s.active.iter().filter(|(at, _, _)| *at > t0 && *at <= end).copied());
    for (i, &(at, a, b)) in changes.iter().enumerate() {
        if want_new(a, b) && t.failover_ms.is_none() && (at > t0 || before != (a, b)) {
            t.failover_ms = Some(ms(at - t0));
        }
        if a && b {
            let until = changes.get(i + 1).map_or(end, |c| c.0);
            t.split_brain_ms = t.split_brain_ms.max(ms(until - at));
        }
    }
    t.moved = t.failover_ms.is_some() && old != new;
    let new_addr = addr_of(new).to_string();
    t.dns_ms = s.dns.iter().find(|(at, v)| *at > t0 && *at <= end && *v == new_addr).map(|(at, _)| ms(*at - t0));
    t.haproxy_ms = s.haproxy.iter().find(|(at, v)| *at > t0 && *at <= end && v == new).map(|(at, _)| ms(*at - t0));
    t.client_failures = s.client_failures.iter().filter(|at| **at > t0 && **at <= end).count();
    t
}

/// The scenarios, in order: (name, for keepalived too).
const SCENARIOS: [(&str, bool); 6] = [
    ("kill-active", true),
    ("isolate-active", true),
    ("cut-a-b", true),
    ("kill-witness", false),
    ("kill-witness-then-active", false),
    ("planned-switchover", false),
];

/// Runs one trial of `scenario`; returns its numbers.
fn trial(lab: &mut Lab, seen: &Shared, scenario: &str) -> anyhow::Result<Trial> {
    let old = settle(lab, seen)?;
    let new: &'static str = if old == "site-a" { "site-b" } else { "site-a" };
    let t0 = Instant::now();
    let expect_move = !matches!(scenario, "cut-a-b" | "kill-witness" | "kill-witness-then-active")
        || (lab.system == "keepalived" && scenario == "cut-a-b");
    match scenario {
        "kill-active" => lab.kill9(old),
        "isolate-active" => lab.isolate(old)?,
        "cut-a-b" => lab.cut(old, new)?,
        "kill-witness" => lab.kill9("witness"),
        "kill-witness-then-active" => {
            lab.kill9("witness");
            std::thread::sleep(Duration::from_secs(2));
            lab.kill9(old);
        }
        "planned-switchover" => {
            let body = format!("{{\"to\":\"{new}\"}}");
            let code = http_post(SocketAddr::from((addr_of(old), 8400)), "/admin/switchover", &body);
            if code != Some(200) {
                bail!("switchover refused: {code:?}");
            }
        }
        other => bail!("unknown scenario {other}"),
    }
    // The new site answering 200 is the event, whether or not the old one
    // still does (that is split brain, measured apart).
    let want_new = |seen: &Shared| {
        seen.lock().ok().and_then(|s| s.active.last().map(|&(_, a, b)| if new == "site-a" { a } else { b }))
            == Some(true)
    };
    if expect_move {
        wait_until(&format!("{new} to become active ({scenario})"), PATIENCE, || want_new(seen))?;
        if lab.system != "keepalived" {
            let want = addr_of(new).to_string();
            let _ = wait_until("DNS and HAProxy to follow", PATIENCE, || {
                let s = seen.lock().expect("seen");
                s.dns.last().is_some_and(|(_, a)| *a == want) && s.haproxy.last().is_some_and(|(_, r)| r == new)
            });
        }
    }
    // Watch a further two leases (and, where nothing should move, that long
    // in all) for any split brain or late move.
    std::thread::sleep(Duration::from_secs(if expect_move { 2 } else { 8 }));
    let end = Instant::now();
    let t = measure(seen, t0, end, old, new);
    // Restore.
    lab.heal()?;
    for host in ["site-a", "site-b", "witness"] {
        if !lab.procs.contains_key(host) && (lab.system != "keepalived" || host != "witness") {
            lab.start(host)?;
        }
    }
    Ok(t)
}

// --------------------------------------------------------------- results

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn summary(values: &[f64]) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let round = |x: Option<f64>| x.map(|x| (x * 10.0).round() / 10.0);
    json!({ "n": v.len(), "p50": round(percentile(&v, 50.0)), "p99": round(percentile(&v, 99.0)), "max": round(v.last().copied()), "values": v })
}

/// Reads CPU time (ms) and RSS (KiB) of `pid` from /proc.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks * 10.0, rss))
}

/// CPU (% of one core) and RSS of each daemon over `window`.
fn usage(lab: &Lab, window: Duration) -> Value {
    let hosts = ["site-a", "site-b", "witness"];
    let before: Vec<_> = hosts.iter().map(|h| lab.pid(h).and_then(proc_usage)).collect();
    std::thread::sleep(window);
    let mut out = serde_json::Map::new();
    for (h, b) in hosts.iter().zip(before) {
        if let (Some((c0, _)), Some((c1, rss))) = (b, lab.pid(h).and_then(proc_usage)) {
            let cpu = (c1 - c0) / ms(window) * 100.0;
            out.insert((*h).into(), json!({ "cpu_percent": (cpu * 100.0).round() / 100.0, "rss_kib": rss }));
        }
    }
    Value::Object(out)
}

fn run(
    trials: usize,
    out: &Path,
    systems: &[String],
    scenarios: &[String],
    bins: Option<PathBuf>,
    strict: bool,
) -> anyhow::Result<()> {
    if let Some(unknown) = scenarios.iter().find(|s| !SCENARIOS.iter().any(|(n, _)| n == s)) {
        bail!("unknown scenario {unknown:?}; known: {:?}", SCENARIOS.map(|(n, _)| n));
    }
    if !rustix::process::geteuid().is_root() {
        bail!("needs root (network namespaces and iptables)");
    }
    let bins = match bins {
        Some(b) => b,
        None => std::env::current_exe()?.parent().context("binary directory")?.to_path_buf(),
    };
    for b in ["failover-controller", "failover-witness"] {
        if !bins.join(b).exists() {
            bail!("{} is missing: cargo build --release --bins", bins.join(b).display());
        }
    }
    netns::remove_stale("fbn");
    // Freeze the binaries under test (and this one, which the helpers run):
    // a rebuild during a long run must not change what is measured.
    let frozen = out.join("logs").join("bin");
    std::fs::create_dir_all(&frozen)?;
    let frozen = std::fs::canonicalize(&frozen)?;
    for (from, name) in [
        (bins.join("failover-controller"), "failover-controller"),
        (bins.join("failover-witness"), "failover-witness"),
        (std::env::current_exe()?, "failover-bench"),
    ] {
        std::fs::copy(&from, frozen.join(name)).with_context(|| format!("copying {}", from.display()))?;
    }
    let bins = frozen;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut results = Vec::new();
    let mut resources = serde_json::Map::new();
    for system in systems {
        if !matches!(system.as_str(), "failover" | "keepalived") {
            bail!("unknown system {system:?}: use failover and/or keepalived");
        }
        eprintln!("== {system}");
        let mut lab = lab(system, &bins, &out.join("logs"))?;
        // From here on this thread (and threads it starts) is the prober,
        // inside the prober's namespace.
        lab.net.enter("probe").context("entering the prober's namespace")?;
        let seen: Shared = Arc::default();
        let services = system == "failover";
        let cap = Duration::from_secs(6 * 3600);
        let mut stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        start_probes(seen.clone(), stop.clone(), services, cap);
        settle(&lab, &seen).context("the cluster never settled")?;
        if system == "failover" {
            // Idle: heartbeats only, the probes stopped meanwhile.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(500));
            resources.insert("idle (heartbeats only)".into(), usage(&lab, Duration::from_secs(10)));
            stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            start_probes(seen.clone(), stop.clone(), services, cap);
        }
        for (scenario, both) in SCENARIOS {
            if (system == "keepalived" && !both) || (!scenarios.is_empty() && !scenarios.iter().any(|s| s == scenario))
            {
                continue;
            }
            let busy_before = (system == "failover" && scenario == "planned-switchover")
                .then(|| ["site-a", "site-b", "witness"].map(|h| lab.pid(h).and_then(proc_usage)));
            let t_start = Instant::now();
            let mut got = Vec::new();
            for i in 0..trials {
                match trial(&mut lab, &seen, scenario) {
                    Ok(t) => {
                        eprintln!(
                            "{system} {scenario} #{i}: failover {:?} ms, dns {:?}, haproxy {:?}, split {} ms, client failures {}",
                            t.failover_ms.map(|x| x.round()),
                            t.dns_ms.map(|x| x.round()),
                            t.haproxy_ms.map(|x| x.round()),
                            t.split_brain_ms.round(),
                            t.client_failures
                        );
                        got.push(t);
                    }
                    Err(e) => {
                        eprintln!("{system} {scenario} #{i}: {e:#}");
                        let _ = lab.heal();
                    }
                }
            }
            if let Some(before) = busy_before {
                let secs = t_start.elapsed();
                let mut busy = serde_json::Map::new();
                for (h, b) in ["site-a", "site-b", "witness"].iter().zip(before) {
                    if let (Some((c0, _)), Some((c1, rss))) = (b, lab.pid(h).and_then(proc_usage)) {
                        let cpu = (c1 - c0) / ms(secs) * 100.0;
                        busy.insert(
                            (*h).into(),
                            json!({ "cpu_percent": (cpu * 100.0).round() / 100.0, "rss_kib": rss }),
                        );
                    }
                }
                resources.insert(
                    "busy (planned switchovers back to back, client loop, 100 Hz prober)".into(),
                    Value::Object(busy),
                );
            }
            let pick = |f: fn(&Trial) -> Option<f64>| got.iter().filter_map(f).collect::<Vec<f64>>();
            results.push(json!({
                "system": system,
                "scenario": scenario,
                "trials": trials,
                "completed": got.len(),
                "moved": got.iter().filter(|t| t.moved).count(),
                "failover_ms": summary(&pick(|t| t.failover_ms)),
                "dns_ms": summary(&pick(|t| t.dns_ms)),
                "haproxy_ms": summary(&pick(|t| t.haproxy_ms)),
                "split_brain_ms": summary(&got.iter().map(|t| t.split_brain_ms).collect::<Vec<_>>()),
                "trials_with_split_brain": got.iter().filter(|t| t.split_brain_ms > 0.0).count(),
                "client_failures": got.iter().map(|t| t.client_failures).sum::<usize>(),
            }));
            write_report(out, &command, &started, &results, &resources)?;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rounds = seen.lock().map(|s| s.rounds).unwrap_or(0);
        eprintln!("{system}: {rounds} prober rounds");
        drop(lab);
    }
    let report = write_report(out, &command, &started, &results, &resources)?;
    eprintln!("wrote {}/results.json, results.md and failover-times.svg", out.display());
    let problems = if strict { violations(&report) } else { Vec::new() };
    if !problems.is_empty() {
        bail!("the failover system broke its promises:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// Writes results.json, results.md and the chart with what is done so far.
fn write_report(
    out: &Path,
    command: &str,
    started: &str,
    results: &[Value],
    resources: &serde_json::Map<String, Value>,
) -> anyhow::Result<Value> {
    let report = json!({
        "command": command,
        "started": started,
        "machine": machine(),
        "timers": { "heartbeat": HEARTBEAT, "lease": LEASE, "keepalived_advert_int": "1s" },
        "results": results,
        "resources": resources,
    });
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(out.join("results.md"), markdown(&report))?;
    std::fs::write(out.join("failover-times.svg"), chart(&report))?;
    Ok(report)
}

/// What our system must always do, whatever the timing: finish every trial,
/// never show two active sites, move exactly when a majority is left and
/// the active site is lost or asked to move, lose no request in a planned
/// switchover.
fn violations(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in report["results"].as_array().into_iter().flatten().filter(|r| r["system"] == "failover") {
        let scenario = r["scenario"].as_str().unwrap_or("?");
        let (trials, completed, moved) = (r["trials"].as_u64(), r["completed"].as_u64(), r["moved"].as_u64());
        if completed != trials {
            out.push(format!("{scenario}: {completed:?} of {trials:?} trials completed"));
        }
        if r["trials_with_split_brain"].as_u64() != Some(0) {
            out.push(format!("{scenario}: two sites answered 200 at once (max {} ms)", r["split_brain_ms"]["max"]));
        }
        let should_move = matches!(scenario, "kill-active" | "isolate-active" | "planned-switchover");
        let expected = if should_move { completed } else { Some(0) };
        if moved != expected {
            out.push(format!("{scenario}: moved in {moved:?} trials, expected {expected:?}"));
        }
        if scenario == "planned-switchover" && r["client_failures"].as_u64() != Some(0) {
            out.push(format!("planned-switchover: {} client requests failed", r["client_failures"]));
        }
    }
    out
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = read("/proc/meminfo").lines().next().map(str::to_owned);
    json!({ "cpu": cpu, "cores": cores, "memory": mem, "kernel": read("/proc/sys/kernel/osrelease").trim() })
}

fn fmt(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.0}"),
        None => "–".into(),
    }
}

fn markdown(report: &Value) -> String {
    let mut t = String::from(
        "| system | scenario | trials | moved | to new active p50 / p99 / max (ms) | DNS p50 / p99 / max | HAProxy p50 / p99 / max | longest split brain (ms) | trials with split brain | client failures |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in report["results"].as_array().into_iter().flatten() {
        let three = |k: &str| format!("{} / {} / {}", fmt(&r[k]["p50"]), fmt(&r[k]["p99"]), fmt(&r[k]["max"]));
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["system"].as_str().unwrap_or(""),
            r["scenario"].as_str().unwrap_or(""),
            r["completed"],
            r["moved"],
            three("failover_ms"),
            three("dns_ms"),
            three("haproxy_ms"),
            fmt(&r["split_brain_ms"]["max"]),
            r["trials_with_split_brain"],
            r["client_failures"],
        ));
    }
    t.push_str(
        "\nResources (CPU in % of one core, RSS in KiB):\n\n| load | node | CPU % | RSS KiB |\n|---|---|---|---|\n",
    );
    for (load, nodes) in report["resources"].as_object().into_iter().flatten() {
        for (node, v) in nodes.as_object().into_iter().flatten() {
            t.push_str(&format!("| {load} | {node} | {} | {} |\n", v["cpu_percent"], v["rss_kib"]));
        }
    }
    t
}

/// A strip chart: one row per (system, scenario) that moved, every trial's
/// time to the new active site as a dot, p50 and p99 as ticks.
fn chart(report: &Value) -> String {
    let rows: Vec<&Value> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["failover_ms"]["n"].as_u64().unwrap_or(0) > 0)
        .collect();
    let max = rows.iter().filter_map(|r| r["failover_ms"]["max"].as_f64()).fold(1000.0, f64::max);
    let scale = 10_000f64.max((max / 1000.0).ceil() * 1000.0);
    let (left, width, row_h) = (300.0, 600.0, 34.0);
    let height = 60.0 + row_h * rows.len() as f64;
    let x = |v: f64| left + v / scale * width;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Time from fault to the new site answering 200 (ms); dot per trial, | p50, ¦ p99</text>\n",
        left + width + 40.0
    );
    let mut tick = 0.0;
    while tick <= scale {
        let tx = x(tick);
        svg.push_str(&format!(
            "<line x1=\"{tx}\" y1=\"30\" x2=\"{tx}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{tick:.0}</text>\n",
            height - 20.0,
            height - 6.0
        ));
        tick += scale / 10.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = 45.0 + row_h * i as f64;
        let color = if r["system"] == "failover" { "#0969da" } else { "#cf222e" };
        svg.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{} · {}</text>\n",
            y + 4.0,
            r["system"].as_str().unwrap_or(""),
            r["scenario"].as_str().unwrap_or("")
        ));
        for v in r["failover_ms"]["values"].as_array().into_iter().flatten().filter_map(Value::as_f64) {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"{color}\" fill-opacity=\"0.5\"/>\n",
                x(v)
            ));
        }
        for (k, dash) in [("p50", ""), ("p99", " stroke-dasharray=\"2,2\"")] {
            if let Some(v) = r["failover_ms"][k].as_f64() {
                let px = x(v);
                svg.push_str(&format!(
                    "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"black\" stroke-width=\"2\"{dash}/>\n",
                    y - 10.0,
                    y + 10.0
                ));
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}
