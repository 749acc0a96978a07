//! Network namespaces for the benchmark: one per host, each with one veth
//! into a bridge that lives in a hub namespace of its own, so every address
//! exists only inside namespaces this process created (nothing is added to
//! the machine's own namespace). Needs root and `ip` (iproute2); faults use
//! `iptables` inside a host's namespace. Dropping the [`Net`] deletes every
//! namespace it made, and with them their links and rules.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;

/// Runs `ip`/`iptables`-style commands and turns a failure into an error
/// that names the command and what it printed.
pub fn sh(program: &str, args: &[&str]) -> io::Result<()> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// The namespaces of one run.
pub struct Net {
    prefix: String,
    hosts: Vec<(String, Ipv4Addr)>,
    /// The network namespace the run was made from (the machine's own).
    home: u64,
}

impl Net {
    /// Creates the hub (a bridge) and one namespace per `(host, address)`,
    /// each address a /24 on the host's `eth0`.
    pub fn create(prefix: &str, hosts: &[(&str, Ipv4Addr)]) -> io::Result<Net> {
        let net = Net { prefix: prefix.to_owned(), hosts: Vec::new(), home: net_namespace_inode(THIS_THREAD)? };
        let hub = net.ns("hub");
        sh("ip", &["netns", "add", &hub])?;
        sh("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        sh("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        sh("ip", &["-n", &hub, "link", "set", "lo", "up"])?;
        let mut net = net;
        for (i, (host, addr)) in hosts.iter().enumerate() {
            let ns = net.ns(host);
            sh("ip", &["netns", "add", &ns])?;
            net.hosts.push(((*host).to_owned(), *addr));
            // Link names are short (15 bytes) and unique per run.
            let (inside, outside) = (format!("{}i{i}", prefix), format!("{}o{i}", prefix));
            sh("ip", &["link", "add", &inside, "type", "veth", "peer", "name", &outside])?;
            sh("ip", &["link", "set", &inside, "netns", &ns])?;
            sh("ip", &["link", "set", &outside, "netns", &hub])?;
            sh("ip", &["-n", &ns, "link", "set", &inside, "name", "eth0"])?;
            sh("ip", &["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            sh("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            sh("ip", &["-n", &hub, "link", "set", &outside, "master", "br0"])?;
            sh("ip", &["-n", &hub, "link", "set", &outside, "up"])?;
        }
        Ok(net)
    }

    /// The namespace name of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// The address of `host`.
    pub fn addr(&self, host: &str) -> Ipv4Addr {
        self.hosts.iter().find(|(h, _)| h == host).map(|(_, a)| *a).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn command(&self, host: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host), program]);
        c
    }

    /// `iptables` inside `host`'s namespace.
    pub fn iptables(&self, host: &str, args: &[&str]) -> io::Result<()> {
        let ns = self.ns(host);
        let mut all = vec!["netns", "exec", &ns, "iptables", "-w"];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Moves the calling thread into `host`'s namespace. Threads it starts
    /// afterwards are in that namespace too. Fails unless the thread is
    /// then in that namespace, and in neither the one it was made from nor
    /// init's: the benchmark sends to its own addresses (198.18.0.0/15,
    /// the range set aside for benchmarks) only from inside namespaces it
    /// made, and never onto a real network.
    pub fn enter(&self, host: &str) -> io::Result<()> {
        let path = format!("/run/netns/{}", self.ns(host));
        let file = std::fs::File::open(&path)?;
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .map_err(io::Error::from)?;
        let now = net_namespace_inode(THIS_THREAD)?;
        // Init's namespace may not be readable (a sandbox): the one this
        // run was made from stands for the machine's then.
        let init = net_namespace_inode("/proc/1/ns/net").ok();
        entered(now, net_namespace_inode(&path)?, self.home, init).map_err(|e| io::Error::other(format!("{path}: {e}")))
    }
}

const THIS_THREAD: &str = "/proc/thread-self/ns/net";

fn net_namespace_inode(path: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).map_err(|e| io::Error::other(format!("{path}: {e}")))
}

/// Whether a thread whose network namespace is `now` is where it should
/// be: in `wanted`, and not in `home` (where the run started) or `init`'s.
fn entered(now: u64, wanted: u64, home: u64, init: Option<u64>) -> Result<(), String> {
    if now == home || Some(now) == init {
        return Err("refusing to send: this thread is still in the machine's own network namespace".into());
    }
    if now != wanted {
        return Err(format!("this thread is in network namespace {now}, not the one entered ({wanted})"));
    }
    Ok(())
}

impl Drop for Net {
    fn drop(&mut self) {
        for (host, _) in &self.hosts {
            let _ = sh("ip", &["netns", "del", &self.ns(host)]);
        }
        let _ = sh("ip", &["netns", "del", &self.ns("hub")]);
    }
}

/// Deletes namespaces left by earlier runs: those named `<prefix><pid>-…`
/// whose process is gone (a run that is still going keeps its own).
pub fn remove_stale(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(pid) = name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()) else { continue };
        let alive = pid.parse::<u32>().is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = sh("ip", &["netns", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::entered;

    #[test]
    fn only_the_entered_namespace_passes_and_the_machine_s_own_never() {
        assert_eq!(entered(7, 7, 1, Some(2)), Ok(()));
        assert_eq!(entered(7, 7, 1, None), Ok(()));
        let home = entered(1, 1, 1, None).expect_err("the run's own namespace");
        assert!(home.contains("machine's own network namespace"), "{home}");
        assert!(entered(2, 2, 1, Some(2)).is_err(), "init's namespace");
        assert_eq!(
            entered(8, 7, 1, Some(2)),
            Err("this thread is in network namespace 8, not the one entered (7)".into())
        );
    }
}
