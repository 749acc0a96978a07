//! SecantusDB, an independent MongoDB-wire-compatible server (the PyPI
//! package `secantusdb`), as a real process for tests: a one-member replica
//! set named `secantus` on a loopback port with its own data directory,
//! started from the virtualenv that `scripts/setup.sh` installs, and stopped,
//! killed or restarted (same port, same data) by the test. It is not
//! MongoDB. Dropping it kills the process.
//!
//! The virtualenv is `$SECANTUS_VENV`, by default `secantus-venv` in the
//! cargo target directory. Without it the test fails, saying how to
//! install it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

/// The environment variable naming the virtualenv.
pub const VENV_VAR: &str = "SECANTUS_VENV";
/// The version `scripts/setup.sh` installs.
pub const VERSION: &str = "0.7.0b3";
/// The replica set name the server advertises.
pub const SET_NAME: &str = "secantus";

/// The virtualenv holding `secantusd-py`.
pub fn venv() -> PathBuf {
    crate::venv::locate(VENV_VAR, "secantus-venv")
}

fn daemon() -> PathBuf {
    let bin = venv().join("bin").join("secantusd-py");
    assert!(
        bin.exists(),
        "SecantusDB (an independent MongoDB-wire-compatible server) is not installed: {} is missing. \
         Run scripts/setup.sh as root, or: python3 -m venv {v} && {v}/bin/pip install secantusdb=={VERSION} \
         (or set {VENV_VAR} to a virtualenv that has it)",
        bin.display(),
        v = venv().display(),
    );
    bin
}

/// A running SecantusDB server.
pub struct Secantus {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Secantus {
    /// Starts a server on a free loopback port with an empty data
    /// directory and waits until it accepts connections.
    pub fn start() -> Secantus {
        let dir = tempfile::tempdir().expect("tempdir");
        // An empty config file of its own: the server would otherwise read
        // one from the working or home directory.
        std::fs::write(dir.path().join("secantusd.toml"), "").expect("write config");
        let mut s = Secantus { child: None, dir, addr: SocketAddr::from(([127, 0, 0, 1], free_port())) };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = Command::new(daemon())
            .arg("--config")
            .arg(self.dir.path().join("secantusd.toml"))
            .args(["--host", "127.0.0.1", "--port", &self.addr.port().to_string(), "--storage-path"])
            .arg(self.dir.path().join("data"))
            .arg("--sync-on-commit")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start secantusd-py");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)).is_err() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "secantusd-py exited ({exited:?}):\n{}", self.log());
            assert!(Instant::now() < deadline, "secantusd-py never listened on {}:\n{}", self.addr, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `host:port` as the server names itself.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// A connection string for the replica set it advertises.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?replicaSet={SET_NAME}", self.addr)
    }

    /// A connection string straight to the server (commands reach it even
    /// when it is not primary).
    pub fn direct_uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.addr)
    }

    /// kill -9 (no chance to flush anything not yet committed).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then a bounded wait, then kill -9.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts it again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.kill();
    }
}
