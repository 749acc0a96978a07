//! A real HAProxy for tests: one HTTP frontend on loopback, one backend
//! `app` with a server per site, and the runtime API on both a TCP port and
//! a unix socket. Run in the foreground (`-db`) and killed on drop; it can
//! be restarted with chosen servers `disabled`, the way a restart with the
//! wrong defaults would leave it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

/// A running `haproxy`.
pub struct Haproxy {
    child: Option<Child>,
    dir: tempfile::TempDir,
    servers: Vec<(String, SocketAddr)>,
    /// The HTTP frontend.
    pub frontend: SocketAddr,
    /// The runtime API over TCP.
    pub api: SocketAddr,
}

impl Haproxy {
    /// Starts HAProxy with one server per `(site, address)`, those named in
    /// `disabled` starting in maintenance.
    pub fn start(servers: &[(&str, SocketAddr)], disabled: &[&str]) -> Haproxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Haproxy {
            child: None,
            dir,
            servers: servers.iter().map(|(n, a)| ((*n).to_owned(), *a)).collect(),
            frontend: SocketAddr::from(([127, 0, 0, 1], free_port())),
            api: SocketAddr::from(([127, 0, 0, 1], free_port())),
        };
        h.launch(disabled);
        h
    }

    /// The runtime API's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    fn launch(&mut self, disabled: &[&str]) {
        let mut conf = format!(
            "global\n    stats socket ipv4@{api} level admin\n    stats socket {sock} mode 600 level admin\n\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             \x20   retries 3\n    option redispatch\n\n\
             frontend fe\n    bind {fe}\n    default_backend app\n\nbackend app\n",
            api = self.api,
            sock = self.socket().display(),
            fe = self.frontend
        );
        for (name, addr) in &self.servers {
            let off = if disabled.contains(&name.as_str()) { " disabled" } else { "" };
            conf.push_str(&format!("    server {name} {addr}{off}\n"));
        }
        let path = self.dir.path().join("haproxy.cfg");
        std::fs::write(&path, conf).expect("write haproxy.cfg");
        let log = std::fs::File::create(self.dir.path().join("haproxy.log")).expect("haproxy log");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy (apt-get install haproxy, or run .ci/run)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.command("show info").is_none() {
            assert!(Instant::now() < deadline, "haproxy did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops HAProxy and starts it again from its configuration with
    /// `disabled` servers in maintenance (runtime changes are lost).
    pub fn restart(&mut self, disabled: &[&str]) {
        self.stop();
        self.launch(disabled);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One runtime API command over TCP; `None` if it cannot be reached.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// `show servers state app` as server → `ready`, `drain` or `maint`.
    pub fn states(&self) -> BTreeMap<String, String> {
        let text = self.command("show servers state app").unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#') && l.split_whitespace().count() > 6)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let admin: u32 = f[6].parse().ok()?;
                let state = if admin & 0x63 != 0 {
                    "maint"
                } else if admin & 0x18 != 0 {
                    "drain"
                } else {
                    "ready"
                };
                Some((f[3].to_owned(), state.to_owned()))
            })
            .collect()
    }

    /// True when `ready` is ready and every other server is in maintenance.
    pub fn only_ready(&self, ready: &str) -> bool {
        let states = self.states();
        states.len() == self.servers.len()
            && states.iter().all(|(s, st)| if s == ready { st == "ready" } else { st == "maint" })
    }

    /// The `[[actuators.haproxy]]` section for a site, reaching the API at
    /// `address` (the TCP address or the socket path).
    pub fn actuator_section(&self, address: &str) -> String {
        let servers: Vec<String> = self.servers.iter().map(|(n, _)| format!("\"{n}\" = \"{n}\"")).collect();
        format!(
            "[[actuators.haproxy]]\nname = \"haproxy\"\naddress = \"{address}\"\nbackends = [\"app\"]\n\
             servers = {{ {} }}\ntimeout = \"2s\"\n\n",
            servers.join(", ")
        )
    }

    /// What HAProxy logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}
