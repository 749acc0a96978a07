//! A real HAProxy for tests: one HTTP frontend on loopback, one backend
//! `app` with a server per site, and the runtime API on both a TCP port and
//! a unix socket. Run in the foreground (`-db`) and killed on drop; it can
//! be restarted with chosen servers `disabled`, the way a restart with the
//! wrong defaults would leave it. Its runtime API client and server-state
//! reader are shared with the benchmark; the state is read by the
//! controller's own parser, never by one of its own.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use failover_controller::actuate::haproxy::{parse_servers_state, ServerState};

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
            .expect("start haproxy (apt-get install haproxy, or run scripts/setup.sh as root)");
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
        runtime_command(self.api, line, Duration::from_secs(2), Duration::from_secs(5))
    }

    /// `show servers state app` as server → state.
    pub fn states(&self) -> BTreeMap<String, ServerState> {
        servers_state(self.api, "app", Duration::from_secs(2), Duration::from_secs(5)).unwrap_or_default()
    }

    /// True when `ready` is ready and every other server is in maintenance.
    pub fn only_ready(&self, ready: &str) -> bool {
        let states = self.states();
        states.len() == self.servers.len()
            && states.iter().all(|(s, st)| *st == if s == ready { ServerState::Ready } else { ServerState::Maint })
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

/// Sends one command to a runtime API over TCP and reads the whole answer
/// (the API closes the connection after it); `None` if it cannot be
/// reached within `connect` or does not answer within `read`.
pub fn runtime_command(api: SocketAddr, line: &str, connect: Duration, read: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&api, connect).ok()?;
    s.set_read_timeout(Some(read)).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `show servers state <backend>` through the runtime API at `api`, read
/// by the controller's own parser; `None` if unreachable or unreadable.
pub fn servers_state(
    api: SocketAddr,
    backend: &str,
    connect: Duration,
    read: Duration,
) -> Option<BTreeMap<String, ServerState>> {
    let text = runtime_command(api, &format!("show servers state {backend}"), connect, read)?;
    parse_servers_state(&text).ok()
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}
