//! A real three-node cluster for end-to-end tests: the `failover-controller`
//! and `failover-witness` binaries as separate processes on 127.0.0.1, each
//! directed peer link through its own [`FaultProxy`] so a test can cut any
//! link one way or both, and `failoverctl` for every operator action.
//!
//! It must never leave processes behind: dropping the cluster kills them.
//! It talks only to 127.0.0.1.

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::http_client::HttpClient;
use failover_controller::status_doc::StatusDoc;

mod config_text;

use crate::prober::Prober;
use crate::proxy::FaultProxy;

/// The members, in configuration order.
pub const NODES: [&str; 3] = ["site-a", "site-b", "witness"];

/// How the cluster is configured.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    /// `manual` instead of `automatic` failover.
    pub manual: bool,
    /// A `pre_promote` hook for site-a.
    pub site_a_pre_promote: Option<String>,
    /// Give each site a command health check that fails while the file
    /// `<dir>/<site>.unhealthy` exists.
    pub file_health_checks: bool,
    /// Mutual TLS between nodes, with certificates from `failoverctl certs
    /// init` (plus one for a node called `intruder` that is not a member).
    pub tls: bool,
    /// TLS on every node's HTTP port, with the node's certificate from
    /// `failoverctl certs init` (issued for 127.0.0.1 too); `ctl` and so
    /// `status` call it over HTTPS with the CA as `--ca-file`.
    pub https: bool,
    /// `--days` of `failoverctl certs init` for the node certificates
    /// (its default when unset).
    pub cert_days: Option<u32>,
    /// `cluster.drain`, e.g. `"1s"` (none when unset).
    pub drain: Option<&'static str>,
    /// Text appended to a node's config (e.g. its `[actuators]`).
    pub extra: Vec<(&'static str, String)>,
    /// Text replaced in one node's config, as an operator editing only that
    /// file would: (node, what, with what). Each must occur.
    pub edits: Vec<(&'static str, &'static str, &'static str)>,
    /// Start every daemon with this many open files as both its soft and
    /// hard limit (through `prlimit`), so it cannot raise the soft one.
    pub open_files_limit: Option<u64>,
    /// Environment variables set for one node's process: (node, name,
    /// value), e.g. a `FAILOVER_*` override.
    pub env: Vec<(&'static str, &'static str, String)>,
    /// Replacements as in `edits`, with text known only at run time.
    pub owned_edits: Vec<(&'static str, String, String)>,
    /// Run one node's daemon as another user: (node, uid, gid). Its state
    /// directory is made that user's and the scratch directory may be
    /// passed through (mode 0711). The test must run as root.
    pub daemon_user: Option<(&'static str, u32, u32)>,
    /// Every member address written as `localhost:PORT` (a host name),
    /// each node binding its own ports on 127.0.0.1 through
    /// `node.listen_peer_address` and `node.listen_http_address`.
    pub host_names: bool,
    /// Run every daemon in a mount namespace of its own whose `/etc/hosts`
    /// is this file, bind-mounted: a test that rewrites the file in place
    /// changes what the daemons' next lookups find. Needs root.
    pub hosts_file: Option<PathBuf>,
}

/// The directory holding the built binaries (next to the test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory").to_path_buf();
    for b in ["failover-controller", "failover-witness", "failoverctl"] {
        assert!(
            dir.join(b).exists(),
            "{} is missing: build it first (cargo build --release -p failover-controller -p failover-witness)",
            dir.join(b).display()
        );
    }
    dir
}

/// A port for a node to bind. Taken below Linux's ephemeral range
/// (32768 and up), where the proxies' and clients' own ports come from, so a
/// port checked free here is not handed to someone else before the node
/// binds it; a process-wide counter keeps parallel tests apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    for _ in 0..2000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (base - 20_000 + offset) % 12_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000 on 127.0.0.1")
}

/// A running test cluster.
pub struct TestCluster {
    /// Scratch directory: configs, state, logs.
    pub dir: tempfile::TempDir,
    bins: PathBuf,
    spec: Spec,
    peer: HashMap<&'static str, SocketAddr>,
    http: HashMap<&'static str, SocketAddr>,
    proxies: HashMap<(&'static str, &'static str), FaultProxy>,
    procs: HashMap<&'static str, Child>,
    /// The admin token.
    pub token: String,
}

impl TestCluster {
    /// Writes the configs, starts the proxies and all three processes.
    pub async fn start(spec: Spec) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = TestCluster {
            dir,
            bins: bin_dir(),
            spec,
            peer: HashMap::new(),
            http: HashMap::new(),
            proxies: HashMap::new(),
            procs: HashMap::new(),
            token: "e2e-test-token".into(),
        };
        for n in NODES {
            c.peer.insert(n, SocketAddr::from(([127, 0, 0, 1], free_port())));
            c.http.insert(n, SocketAddr::from(([127, 0, 0, 1], free_port())));
        }
        for from in NODES {
            for to in NODES {
                if from != to {
                    let proxy = FaultProxy::start("127.0.0.1:0".parse().expect("addr"), c.peer[to])
                        .await
                        .expect("proxy starts");
                    c.proxies.insert((from, to), proxy);
                }
            }
        }
        if c.spec.tls || c.spec.https {
            let out = Command::new(c.bins.join("failoverctl"))
                .args(["certs", "init", "--nodes", "site-a,site-b,witness,intruder", "--out"])
                .arg(c.certs_dir())
                .args(NODES.iter().flat_map(|n| ["--http-name".to_owned(), format!("{n}=127.0.0.1")]))
                .args(c.spec.cert_days.iter().flat_map(|d| ["--days".to_owned(), d.to_string()]))
                .output()
                .expect("run failoverctl certs init");
            assert!(out.status.success(), "certs init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        for n in NODES {
            fs::write(c.config_path(n), c.config_text(n)).expect("write config");
            c.init(n);
            c.spawn(n);
        }
        c
    }

    /// Starts the cluster and waits until site-a is active by its own and the
    /// witness's account (the usual start of an end-to-end test).
    pub async fn start_with_site_a_active(spec: Spec) -> TestCluster {
        let c = TestCluster::start(spec).await;
        assert!(c.wait_active("site-a").await, "site-a never became active:\n{}", c.log_tail("site-a"));
        c
    }

    /// Where `failoverctl certs init` wrote the certificates.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The real gRPC address of `node` (not through a proxy).
    pub fn peer_address(&self, node: &str) -> SocketAddr {
        self.peer[node]
    }

    /// The HTTP address of `node` (status page, `/status`, admin API).
    pub fn http_address(&self, node: &str) -> SocketAddr {
        self.http[node]
    }

    /// Path of `node`'s config file.
    pub fn config_path(&self, node: &str) -> PathBuf {
        self.dir.path().join(format!("{node}.toml"))
    }

    /// Starts `node`'s process (again).
    pub fn spawn(&mut self, node: &'static str) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{node}.log")))
            .expect("log file");
        let child = self
            .daemon_command(node, "run", self.spec.open_files_limit)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        self.procs.insert(node, child);
    }

    /// The explicit first start of `node`: writes its initial state (as
    /// the user it runs as), so it starts as a node of a new cluster.
    pub fn init(&self, node: &'static str) {
        let out = self.daemon_command(node, "init", None).output().expect("run init");
        assert!(out.status.success(), "init of {node} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `<daemon> <subcommand> --config <node's file>`, as `node`'s user,
    /// with its environment and, if given, an open-files limit.
    fn daemon_command(&self, node: &'static str, subcommand: &str, open_files: Option<u64>) -> Command {
        let bin = if node == "witness" { "failover-witness" } else { "failover-controller" };
        // `prlimit` sets the limit on itself and then executes the daemon, so
        // the child's id is the daemon's and `kill9` still reaches it.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(n) = open_files {
            argv.extend(["prlimit".into(), format!("--nofile={n}:{n}").into()]);
        }
        // `unshare` and `sh` execute what follows in place, so the child's
        // id is still the daemon's.
        if let Some(hosts) = &self.spec.hosts_file {
            let mount = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"];
            argv.extend(mount.map(Into::into));
            argv.extend(["mount --bind \"$0\" /etc/hosts && exec \"$@\"".into(), hosts.into()]);
        }
        argv.push(self.bins.join(bin).into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        for (_, name, value) in self.spec.env.iter().filter(|(n, _, _)| *n == node) {
            cmd.env(name, value);
        }
        if let Some((_, uid, gid)) = self.spec.daemon_user.filter(|(n, _, _)| *n == node) {
            use std::os::unix::fs::PermissionsExt;
            use std::os::unix::process::CommandExt;
            fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o711)).expect("open the scratch dir");
            let state = self.state_dir(node);
            fs::create_dir_all(&state).expect("state dir");
            std::os::unix::fs::chown(&state, Some(uid), Some(gid)).expect("give the state dir to the user");
            cmd.uid(uid).gid(gid);
        }
        cmd.arg(subcommand).arg("--config").arg(self.config_path(node));
        cmd
    }

    /// kill -9.
    pub fn kill9(&mut self, node: &'static str) {
        if let Some(mut child) = self.procs.remove(node) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (a name `kill` takes, e.g. `HUP`) to `node`'s process;
    /// whether it was delivered.
    pub fn signal(&self, node: &str, signal: &str) -> bool {
        let Some(child) = self.procs.get(node) else { return false };
        Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().is_ok_and(|s| s.success())
    }

    /// SIGTERM, then wait (bounded) for the process to exit; returns its
    /// exit success.
    pub fn sigterm(&mut self, node: &'static str) -> bool {
        let Some(mut child) = self.procs.remove(node) else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Waits (bounded by `within`) for `node`'s process to exit by itself;
    /// its exit status, or None if it is still running (or not started).
    pub async fn wait_exit(&mut self, node: &'static str, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.procs.get_mut(node)?;
            if let Ok(Some(status)) = child.try_wait() {
                self.procs.remove(node);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where `node` keeps its state file.
    pub fn state_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(format!("state-{node}"))
    }

    /// Cuts messages from `from` to `to` (one way).
    pub fn cut_one_way(&self, from: &'static str, to: &'static str) {
        self.proxies[&(from, to)].cut_both();
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: &'static str, b: &'static str) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Cuts `node` off from both peers.
    pub fn isolate(&self, node: &'static str) {
        for other in NODES {
            if other != node {
                self.cut(node, other);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for p in self.proxies.values() {
            p.heal();
        }
    }

    /// Marks a site's health check as failing (or passing again).
    pub fn set_unhealthy(&self, node: &str, unhealthy: bool) {
        let flag = self.dir.path().join(format!("{node}.unhealthy"));
        if unhealthy {
            fs::write(flag, b"").expect("flag");
        } else {
            let _ = fs::remove_file(flag);
        }
    }

    /// The `/active` URLs of both sites, for the prober.
    pub fn active_urls(&self) -> Vec<String> {
        ["site-a", "site-b"].iter().map(|n| self.active_url(n)).collect()
    }

    /// The `/active` URL of one node.
    pub fn active_url(&self, node: &str) -> String {
        format!("http://{}/active", self.http[node])
    }

    /// Starts a split-brain prober over both sites (every 10 ms).
    pub fn prober(&self) -> Prober {
        Prober::start(self.active_urls(), Duration::from_millis(10))
    }

    /// Runs `failoverctl` against `node` with the token.
    pub fn ctl(&self, node: &str, args: &[&str]) -> Output {
        self.ctl_with_token(node, Some(&self.token), args)
    }

    /// Runs `failoverctl` against `node` with the given token (or none).
    pub fn ctl_with_token(&self, node: &str, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = self.ctl_command(node, token, args);
        // Inside a test's runtime, tell it this thread blocks, so the
        // proxies' tasks move to another worker and links stay timely.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| cmd.output()).expect("run failoverctl")
        } else {
            cmd.output().expect("run failoverctl")
        }
    }

    /// The `failoverctl` command against `node` with the given token (or
    /// none), not started.
    pub fn ctl_command(&self, node: &str, token: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bins.join("failoverctl"));
        if self.spec.https {
            cmd.arg("--endpoint").arg(format!("https://{}", self.http[node]));
            cmd.arg("--ca-file").arg(self.certs_dir().join("ca.pem"));
        } else {
            // Written http://: the token goes over plain HTTP only then.
            cmd.arg("--endpoint").arg(format!("http://{}", self.http[node]));
        }
        cmd.args(args)
            .env_remove("FAILOVERCTL_TOKEN")
            .env_remove("FAILOVERCTL_TOKEN_FILE")
            .env_remove("FAILOVERCTL_CA_FILE")
            .env_remove("FAILOVERCTL_ENDPOINTS");
        if let Some(t) = token {
            cmd.env("FAILOVERCTL_TOKEN", t);
        }
        cmd
    }

    /// `/status` of `node` as JSON (through `failoverctl status --json`).
    pub fn status(&self, node: &str) -> Option<serde_json::Value> {
        let out = self.ctl(node, &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `/status` of `node` as its typed document.
    pub fn status_doc(&self, node: &str) -> Option<StatusDoc> {
        serde_json::from_value(self.status(node)?).ok()
    }

    /// The active site as `node` reports it.
    pub fn active_seen_by(&self, node: &str) -> Option<String> {
        self.status_doc(node)?.active_site
    }

    /// The role `node` reports.
    pub fn role(&self, node: &str) -> Option<String> {
        Some(self.status_doc(node)?.role)
    }

    /// The epoch `node` reports.
    pub fn epoch(&self, node: &str) -> Option<u64> {
        self.status_doc(node)?.epoch
    }

    /// Polls `cond` every 50 ms until it holds or `within` passes.
    pub async fn wait_for(&self, within: Duration, mut cond: impl FnMut(&TestCluster) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if cond(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cond(self)
    }

    /// Waits until `site` is the active site by its own account and the
    /// witness (when running) agrees.
    pub async fn wait_active(&self, site: &str) -> bool {
        self.wait_for(Duration::from_secs(30), |c| {
            c.role(site).as_deref() == Some("active")
                && (!c.procs.contains_key("witness") || c.active_seen_by("witness").as_deref() == Some(site))
        })
        .await
    }

    /// Kills site-a (the active site) with kill -9 and asserts that site-b
    /// takes over with a newer epoch and that no two sites were ever seen
    /// active meanwhile.
    pub async fn assert_kill9_of_site_a_fails_over_to_site_b(&mut self) {
        let prober = self.prober();
        let epoch = self.epoch("site-b").expect("epoch");
        self.kill9("site-a");
        assert!(self.wait_active("site-b").await, "site-b did not take over:\n{}", self.log_tail("site-b"));
        assert!(self.epoch("site-b").expect("epoch") > epoch);
        prober.stop().await.assert_never_two_active();
    }

    /// GET `path` on `node`'s HTTP endpoint: (status, body).
    pub async fn http_get(&self, node: &str, path: &str) -> Option<(u16, String)> {
        let url = format!("http://{}{path}", self.http[node]);
        let r = HttpClient::new().get(&url, Duration::from_secs(5)).await.ok()?;
        Some((r.status, r.body))
    }

    /// POST `path` on `node`'s HTTP endpoint with a JSON body and, when
    /// given, a bearer token: (status, body).
    pub async fn http_post(&self, node: &str, path: &str, token: Option<&str>, json: &str) -> Option<(u16, String)> {
        let url = format!("http://{}{path}", self.http[node]);
        let r = HttpClient::new().post_json(&url, token, json, Duration::from_secs(20)).await.ok()?;
        Some((r.status, r.body))
    }

    /// `node`'s whole log.
    pub fn log(&self, node: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("{node}.log"))).unwrap_or_default()
    }

    /// The last lines of `node`'s log, for failure messages.
    pub fn log_tail(&self, node: &str) -> String {
        let text = self.log(node);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for (_, mut child) in self.procs.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `cmd` with its stdout a pipe whose reading end is already closed,
/// as `failoverctl ... | head -1` leaves it once `head` has exited.
pub fn into_closed_pipe(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().expect("run the command")
}

/// A minimal valid site-a configuration (three members, no token, no TLS),
/// for tests that append a section and check how it is refused.
pub const MINIMAL_SITE_A: &str = "[node]\nname = \"site-a\"\nstate_dir = \"/tmp/x\"\n[admin]\nallow_without_token = true\n\
    [cluster]\nname = \"test\"\nallow_unauthenticated_peers = true\nheartbeat_interval = \"100ms\"\nlease = \"1s\"\n\
    [[members]]\nname = \"site-a\"\nkind = \"site\"\npriority = 2\npeer_address = \"127.0.0.1:1\"\nhttp_address = \"127.0.0.1:2\"\n\
    [[members]]\nname = \"site-b\"\nkind = \"site\"\npriority = 1\npeer_address = \"127.0.0.1:5\"\nhttp_address = \"127.0.0.1:6\"\n\
    [[members]]\nname = \"witness\"\nkind = \"witness\"\npeer_address = \"127.0.0.1:3\"\nhttp_address = \"127.0.0.1:4\"\n";

/// Runs `<bin> check-config` on each case's text (written under `dir`) and
/// asserts that it is refused with a non-zero exit and an error that starts
/// with the binary's name and contains the case's expected words.
pub fn assert_configs_refused(bin: &str, dir: &Path, cases: &[(&str, String, &str)]) {
    let path = dir.join("refused.toml");
    for (what, text, expect) in cases {
        fs::write(&path, text).expect("write config");
        let out = Command::new(bin_dir().join(bin))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run check-config");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(err.contains(expect), "{what}: error does not name the problem ({expect:?}): {err}");
        assert!(err.starts_with(&format!("{bin}: ")), "{what}: {err}");
    }
}
