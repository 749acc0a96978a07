//! A real BIND9 `named` for tests: one primary zone `example.test` on a
//! loopback port, updatable with one TSIG key (HMAC-SHA256), run in the
//! foreground from a scratch directory and killed on drop. Queries and
//! hand edits go through BIND's own `dig` and `nsupdate`, so the test
//! checks the controller with tools it does not share code with.

use std::net::SocketAddr;

use base64::Engine;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

/// The zone every test server serves.
pub const ZONE: &str = "example.test";
/// The TSIG key name.
pub const KEY_NAME: &str = "failover-key";

/// A running `named`.
pub struct Named {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    /// The TSIG secret (base64).
    pub secret: String,
}

fn require(tool: &str) {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        || Path::new("/usr/sbin").join(tool).exists();
    assert!(found, "{tool} is not installed: run scripts/setup.sh as root, or apt-get install bind9 bind9-dnsutils");
}

impl Named {
    /// Starts `named` with `app.example.test` pointing at 192.0.2.99 and
    /// waits until it answers.
    pub fn start() -> Named {
        require("named");
        require("dig");
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let d = dir.path().display();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
             recursion no;\n  dnssec-validation no;\n  notify no;\n}};\ncontrols {{ }};\n\
             key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
             zone \"{ZONE}\" {{ type primary; file \"{d}/{ZONE}.zone\"; allow-update {{ key \"{KEY_NAME}\"; }}; }};\n",
            port = addr.port()
        );
        std::fs::write(dir.path().join("named.conf"), conf).expect("write named.conf");
        let zone = format!(
            "$TTL 60\n@ IN SOA ns1.{ZONE}. admin.{ZONE}. 1 60 60 600 60\n@ IN NS ns1.{ZONE}.\n\
             ns1 IN A 127.0.0.1\napp IN A 192.0.2.99\n"
        );
        std::fs::write(dir.path().join(format!("{ZONE}.zone")), zone).expect("write zone");
        let log = std::fs::File::create(dir.path().join("named.log")).expect("named log");
        let child = Command::new("named")
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        let named = Named { child, dir, addr, secret };
        let deadline = Instant::now() + Duration::from_secs(30);
        while named.dig("app", "A") != ["192.0.2.99"] {
            assert!(Instant::now() < deadline, "named did not start: {}", named.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        named
    }

    /// `dig +short` for `label.example.test` (or the zone itself for `@`),
    /// sorted.
    pub fn dig(&self, label: &str, rtype: &str) -> Vec<String> {
        let name = if label == "@" { ZONE.to_owned() } else { format!("{label}.{ZONE}") };
        let out = Command::new("dig")
            .args(["+short", "+time=2", "+tries=1", "-p", &self.addr.port().to_string()])
            .arg(format!("@{}", self.addr.ip()))
            .args([&name, rtype])
            .output()
            .expect("run dig");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_matches('"').to_owned())
            .filter(|l| !l.is_empty() && !l.starts_with(";;"))
            .collect();
        lines.sort();
        lines
    }

    /// Runs `nsupdate` (signed with the zone's key) on `commands`.
    pub fn nsupdate(&self, commands: &str) {
        let script = format!("server {} {}\nzone {ZONE}\n{commands}\nsend\n", self.addr.ip(), self.addr.port());
        let mut child = Command::new("nsupdate")
            .args(["-y", &format!("hmac-sha256:{KEY_NAME}:{}", self.secret)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsupdate");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write nsupdate script");
        let out = child.wait_with_output().expect("nsupdate");
        assert!(out.status.success(), "nsupdate failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The `[[actuators.dns]]` section for a site, with `secret` as its key.
    pub fn actuator_section(&self, secret: &str) -> String {
        format!(
            "[[actuators.dns]]\nname = \"dns\"\nserver = \"{}\"\nzone = \"{ZONE}\"\n\
             names = [\"app.{ZONE}\", \"www.{ZONE}\"]\nttl = \"5s\"\ntsig_key_name = \"{KEY_NAME}\"\n\
             tsig_secret = \"{secret}\"\ntimeout = \"2s\"\npropagation_timeout = \"10s\"\n\n",
            self.addr
        )
    }

    /// What `named` logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
