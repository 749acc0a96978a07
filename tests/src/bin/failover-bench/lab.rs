//! The hosts of one system under test, at one timer set, on network
//! namespaces: their addresses, daemons and helper processes, and the
//! faults a scenario puts on them (kill -9, iptables partitions).
//!
//! A lab must never outlive its run: dropping it kills every process it
//! started, and its namespaces go with its [`Net`]. Faults only ever drop
//! packets between the hosts, never the prober's.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use failover_tests::http_client::HttpClient;
use failover_tests::netns::{self, Net};
use failover_tests::status::NodeStatus;

use crate::configs::{self, TOKEN};
use crate::shape::{host_addr, is_witness, Shape, PROBE};
use crate::timers::TimerSet;

/// keepalived's virtual address.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// Our controller and witness.
    Failover,
    /// keepalived's VRRP, for comparison.
    Keepalived,
    /// A leader election on etcd (`etcd-elector`), for comparison.
    Etcd,
}

impl System {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::Failover => "failover",
            System::Keepalived => "keepalived",
            System::Etcd => "etcd",
        }
    }

    /// Its daemons on a lab of `shape`, in the order they start: ours are
    /// the voters; keepalived and etcd run on three voters only. An etcd
    /// site runs two: the elector (named for the site) and its etcd member
    /// (`etcd@site`); the witness runs an etcd member.
    pub fn daemons(self, shape: Shape) -> Vec<&'static str> {
        match self {
            System::Failover => shape.voters().collect(),
            System::Keepalived => vec!["site-a", "site-b"],
            System::Etcd => vec!["witness", "etcd@site-a", "etcd@site-b", "site-a", "site-b"],
        }
    }

    /// The system called `name`.
    pub fn from_name(name: &str) -> Option<System> {
        [System::Failover, System::Keepalived, System::Etcd].into_iter().find(|s| s.name() == name)
    }
}

impl serde::Serialize for System {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for System {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::report::by_name(d, "system", System::from_name)
    }
}

/// One system under test on the namespaces.
pub struct Lab {
    pub net: Net,
    /// Configs, state and every process's log (kept after the run).
    dir: PathBuf,
    bins: PathBuf,
    pub system: System,
    pub timers: TimerSet,
    pub shape: Shape,
    procs: BTreeMap<&'static str, Child>,
    helpers: Vec<Child>,
    /// When a daemon was last (re)started: a restarted voter grants nothing
    /// for one lease, so trials start only after that has passed.
    pub last_start: Instant,
    /// Runs the lab's own HTTP calls on the calling thread.
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
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
    /// Sets up the namespaces and services of `shape` for `system` at
    /// `timers` and starts its daemons, logging under `logs`. `tag` (at
    /// most two characters) sets apart labs that exist at the same time.
    pub fn create(
        system: System,
        timers: TimerSet,
        shape: Shape,
        bins: &Path,
        logs: &Path,
        tag: &str,
    ) -> anyhow::Result<Lab> {
        let prefix = format!("fbn{}{tag}", std::process::id());
        let net =
            Net::create(&prefix, &shape.hosts()).context("creating network namespaces (root and iproute2 needed)")?;
        let dir = match shape {
            Shape::ThreeVoters => logs.join(format!("{}-{}", system.name(), timers.name())),
            Shape::FiveVoters => logs.join(format!("{}-{}-{}", system.name(), timers.name(), shape.name())),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            net,
            // Absolute: named and the daemons resolve paths from their own cwd.
            dir: std::fs::canonicalize(&dir)?,
            bins: bins.to_path_buf(),
            system,
            timers,
            shape,
            procs: BTreeMap::new(),
            helpers: Vec::new(),
            last_start: Instant::now(),
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build()?,
            client: HttpClient::new(),
        };
        let me = bins.join("failover-bench").display().to_string();
        for site in shape.sites() {
            let (listen, log) = (format!("{}:8080", host_addr(site)), site.replace("site", "app"));
            lab.helper(site, &me, &["app", "--listen", &listen, "--name", site], &log)?;
            if system == System::Keepalived {
                let listen = format!("{}:8400", host_addr(site));
                lab.helper(site, &me, &["vip-agent", "--listen", &listen, "--vip", &VIP.to_string()], "vip")?;
            }
        }
        if system != System::Failover {
            for host in system.daemons(shape) {
                lab.start(host)?;
            }
            return Ok(lab);
        }
        for (file, text) in configs::services(&lab.dir, shape) {
            std::fs::write(lab.dir.join(file), text)?;
        }
        let d = lab.dir.as_path().display().to_string();
        let conf = format!("{d}/named.conf");
        lab.helper("svc", "named", &["-g", "-4", "-n", "1", "-c", &conf], "named")?;
        let cfg = format!("{d}/haproxy.cfg");
        lab.helper("svc", "haproxy", &["-db", "-f", &cfg], "haproxy")?;
        for host in shape.voters() {
            lab.init(host)?;
            lab.start(host)?;
        }
        Ok(lab)
    }

    /// The explicit first start of `host`'s daemon in a new cluster: writes
    /// its config and its initial state.
    fn init(&mut self, host: &'static str) -> anyhow::Result<()> {
        let conf = self.dir.join(format!("{host}.toml"));
        std::fs::write(&conf, configs::node(&self.dir, host, self.timers, self.shape))?;
        let bin = if is_witness(host) { "failover-witness" } else { "failover-controller" };
        let out = std::process::Command::new(self.bins.join(bin)).arg("init").arg("--config").arg(&conf).output()?;
        anyhow::ensure!(out.status.success(), "init of {host}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

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

    /// Its daemons, in the order they start.
    pub fn daemons(&self) -> Vec<&'static str> {
        self.system.daemons(self.shape)
    }

    /// Every host but the prober: the voters and the services host, the
    /// hosts a fault or a loss rule goes on.
    pub fn hosts_but_prober(&self) -> impl Iterator<Item = &'static str> {
        self.shape.voters().chain(["svc"])
    }

    /// Starts (or restarts) the daemon `host` (one of [`Lab::daemons`]).
    pub fn start(&mut self, host: &'static str) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let child = if self.system == System::Etcd {
            let ns_host = host.strip_prefix("etcd@").unwrap_or(host);
            let (program, args, log) = if host == ns_host && host != "witness" {
                let elector = self.bins.join("etcd-elector").display().to_string();
                (elector, configs::etcd_elector(host, self.timers), host.to_owned())
            } else {
                ("etcd".to_owned(), configs::etcd_member(&dir, ns_host, self.timers), format!("etcd-{ns_host}"))
            };
            self.net
                .command(ns_host, &program)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(log_file(&dir, &log)?)
                .spawn()
                .with_context(|| format!("starting {program} in {ns_host}"))?
        } else if self.system == System::Keepalived {
            let conf = dir.join(format!("{host}.keepalived.conf"));
            std::fs::write(&conf, configs::keepalived(host, self.timers))?;
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
            std::fs::write(&conf, configs::node(&dir, host, self.timers, self.shape))?;
            let bin = if is_witness(host) { "failover-witness" } else { "failover-controller" };
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

    pub fn kill9(&mut self, host: &'static str) {
        if let Some(mut c) = self.procs.remove(host) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// kill -9 of everything site `site` runs: its daemon, and for etcd its
    /// member too.
    pub fn kill_site(&mut self, site: &'static str) {
        self.kill9(site);
        if self.system == System::Etcd {
            self.kill9(if site == "site-a" { "etcd@site-a" } else { "etcd@site-b" });
        }
    }

    /// kill -9 of `host`'s daemon, then a start `delay` after everything it
    /// ran has exited, as systemd restarts a crashed unit (`KillMode=
    /// control-group`: the unit's leftover processes are stopped first,
    /// then `RestartSec` runs). Our daemons run nothing else; keepalived's
    /// VRRP child outlives its parent briefly (it sends priority 0 on the
    /// way out), and a keepalived started while it lives refuses to run.
    pub fn kill_and_restart(&mut self, host: &'static str, delay: Duration) -> anyhow::Result<()> {
        self.kill9(host);
        if self.system == System::Keepalived {
            let children: Vec<u32> = ["vrrp", "checkers"]
                .iter()
                .filter_map(|k| std::fs::read_to_string(self.dir.join(format!("{host}.{k}.pid"))).ok())
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            // Alive: a keepalived process that is not a zombie.
            let alive = |pid: &u32| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                    st.contains("(keepalived)")
                        && st.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z")
                })
            };
            let since = Instant::now();
            let deadline = since + Duration::from_secs(10);
            while children.iter().any(alive) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            eprintln!("{host}: keepalived's children gone {} ms after the kill", since.elapsed().as_millis());
        }
        std::thread::sleep(delay);
        self.start(host)
    }

    pub fn is_running(&self, host: &str) -> bool {
        self.procs.contains_key(host)
    }

    pub fn pid(&self, host: &str) -> Option<u32> {
        self.procs.get(host).map(Child::id)
    }

    /// `host`'s `/status`, from the calling thread's namespace.
    pub fn status(&self, host: &str) -> Option<NodeStatus> {
        let url = format!("http://{}/status", SocketAddr::from((self.net.addr(host), 8400)));
        let response = self.runtime.block_on(self.client.get(&url, Duration::from_secs(2))).ok()?;
        NodeStatus::parse(&response.body)
    }

    /// The body of `GET url` (an address inside the namespaces), if it
    /// answered 200, from the calling thread's namespace.
    pub fn get_ok(&self, url: &str) -> Option<String> {
        let response = self.runtime.block_on(self.client.get(url, Duration::from_secs(2))).ok()?;
        (response.status == 200).then_some(response.body)
    }

    /// Whether every etcd member answers healthy (it has a leader and a
    /// quorum read goes through) and is connected to both others, and each
    /// elector holds a session: the leader answers `/active` 200, the other
    /// `standby` (a 503 whose body says it campaigns, not that it has no
    /// session). Members reconnect to each other seconds after a partition
    /// heals, while already healthy; a fault in that window is a second
    /// fault, not the scenario.
    pub fn etcd_steady(&self) -> bool {
        const MEMBERS: [&str; 3] = ["site-a", "site-b", "witness"];
        let healthy = MEMBERS.iter().all(|h| {
            self.get_ok(&format!("http://{}:2379/health", host_addr(h)))
                .is_some_and(|b| b.contains("\"health\":\"true\""))
        });
        let connected = || {
            MEMBERS.iter().all(|h| {
                self.get_ok(&format!("http://{}:2379/metrics", host_addr(h)))
                    .is_some_and(|m| active_etcd_peers(&m) == 2.0) // both other members
            })
        };
        healthy
            && connected()
            && ["site-a", "site-b"].iter().all(|s| {
                let url = format!("http://{}/active", SocketAddr::from((host_addr(s), 8400)));
                self.runtime
                    .block_on(self.client.get(&url, Duration::from_secs(2)))
                    .is_ok_and(|r| r.status == 200 || r.body.starts_with("standby"))
            })
    }

    /// Asks `from` to hand over to `to`; the status code, or None. The etcd
    /// elector resigns (the other site, campaigning, then wins).
    pub fn switchover(&self, from: &str, to: &str) -> Option<u16> {
        if self.system == System::Etcd {
            let url = format!("http://{}/resign", SocketAddr::from((host_addr(from), 8400)));
            return self
                .runtime
                .block_on(self.client.post_json(&url, None, "", Duration::from_secs(10)))
                .ok()
                .map(|r| r.status);
        }
        let url = format!("http://{}/admin/switchover", SocketAddr::from((host_addr(from), 8400)));
        let body = format!("{{\"to\":\"{to}\"}}");
        let post = self.client.post_json(&url, Some(TOKEN), &body, Duration::from_secs(10));
        self.runtime.block_on(post).ok().map(|r| r.status)
    }

    /// Isolates `host` from every peer, the prober excepted. Packets are
    /// dropped on arrival (INPUT rules on both sides), as a real partition
    /// loses them, so no sender gets an error it could act on.
    pub fn isolate(&self, host: &str) -> anyhow::Result<()> {
        let probe = PROBE.to_string();
        self.net.iptables(host, &["-I", "INPUT", "-i", "eth0", "-j", "DROP"])?;
        self.net.iptables(host, &["-I", "INPUT", "-i", "eth0", "-s", &probe, "-j", "ACCEPT"])?;
        let me = self.net.addr(host).to_string();
        for other in self.hosts_but_prober() {
            if other != host {
                self.net.iptables(other, &["-I", "INPUT", "-s", &me, "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    /// Cuts the link between `host` and `other`, both ways, by dropping on
    /// arrival at each end.
    pub fn cut(&self, host: &str, other: &str) -> anyhow::Result<()> {
        let (h, o) = (self.net.addr(host).to_string(), self.net.addr(other).to_string());
        self.net.iptables(host, &["-I", "INPUT", "-s", &o, "-j", "DROP"])?;
        self.net.iptables(other, &["-I", "INPUT", "-s", &h, "-j", "DROP"])?;
        Ok(())
    }

    pub fn heal(&self) -> anyhow::Result<()> {
        for h in self.hosts_but_prober() {
            self.net.iptables(h, &["-F"])?;
        }
        Ok(())
    }
}

/// How many peers an etcd member's `/metrics` text says it is connected to
/// (`etcd_network_active_peers`, a gauge per peer, 1 while connected).
fn active_etcd_peers(metrics: &str) -> f64 {
    failover_tests::metrics_text::family_sum(metrics, "etcd_network_active_peers").unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::active_etcd_peers;

    #[test]
    fn an_etcd_member_counts_only_the_peers_it_is_connected_to() {
        let metrics = "# HELP etcd_network_active_peers The current number of active peer connections.\n\
            # TYPE etcd_network_active_peers gauge\n\
            etcd_network_active_peers{Local=\"6adc\",Remote=\"113d\"} 1\n\
            etcd_network_active_peers{Local=\"6adc\",Remote=\"5a72\"} 0\n\
            etcd_network_disconnected_peers_total{Local=\"6adc\",Remote=\"5a72\"} 15\n";
        assert_eq!(active_etcd_peers(metrics), 1.0);
        assert_eq!(active_etcd_peers(&metrics.replace("} 0", "} 1")), 2.0);
        assert_eq!(active_etcd_peers(""), 0.0);
    }
}
