//! What each daemon of a lab is started with: our nodes' TOML, BIND9's and
//! HAProxy's configuration, keepalived's, and the etcd members' and
//! electors' command lines, all at one timer set.
//!
//! Pure text: nothing here starts a process or touches the network.

use std::path::Path;

use crate::lab::VIP;
use crate::shape::{host_addr, is_witness, Shape, A, B, SVC};
use crate::timers::TimerSet;

pub const TOKEN: &str = "bench-token";
const TSIG: &str = "9mSKd6eDzg2GqPBvdxHjlKqFiEoVLhq1p4JpHaz35kU=";

fn millis(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// `named.conf`, its zone and `haproxy.cfg` for the services host, with a
/// server for each site of `shape`: file name and contents.
pub fn services(dir: &Path, shape: Shape) -> [(&'static str, String); 3] {
    let d = dir.display().to_string();
    let servers: String = shape.sites().iter().map(|s| format!("    server {s} {}:8080\n", host_addr(s))).collect();
    [
        (
            "named.conf",
            format!(
                "options {{ directory \"{d}\"; listen-on port 53 {{ {SVC}; }}; listen-on-v6 {{ none; }};\n\
                 pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\"; recursion no; dnssec-validation no; notify no; }};\n\
                 controls {{ }};\nkey \"failover-key\" {{ algorithm hmac-sha256; secret \"{TSIG}\"; }};\n\
                 zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; allow-update {{ key \"failover-key\"; }}; }};\n"
            ),
        ),
        (
            "example.test.zone",
            format!("$TTL 5\n@ IN SOA ns1.example.test. admin.example.test. 1 60 60 600 5\n@ IN NS ns1.example.test.\nns1 IN A {SVC}\n"),
        ),
        (
            "haproxy.cfg",
            format!(
                "global\n    stats socket ipv4@{SVC}:9999 level admin\ndefaults\n    mode http\n    timeout connect 2s\n\
                 \x20   timeout client 10s\n    timeout server 10s\nfrontend fe\n    bind {SVC}:80\n    default_backend app\n\
                 backend app\n{servers}"
            ),
        ),
    ]
}

/// Our node `name`'s config in a cluster of `shape`, its state under `dir`.
pub fn node(dir: &Path, name: &str, timers: TimerSet, shape: Shape) -> String {
    let mut t = format!(
        "[node]\nname = \"{name}\"\nstate_dir = \"{}/state-{name}\"\n[admin]\ntoken = \"{TOKEN}\"\n\
         [cluster]\nname = \"test\"\nallow_unauthenticated_peers = true\nfailover_mode = \"automatic\"\nfailback = \"manual\"\n\
         heartbeat_interval = \"{}\"\nlease = \"{}\"\nelection_jitter = \"{}\"\nactuation_interval = \"10s\"\nfailover_cooldown = \"1s\"\n\n",
        dir.display(),
        millis(timers.heartbeat()),
        millis(timers.lease()),
        millis(timers.election_jitter()),
    );
    for m in shape.sites().iter().chain(shape.witnesses()) {
        let p = shape.priority(m);
        let kind = if p.is_some() { "site" } else { "witness" };
        let pr = p.map(|p| format!("priority = {p}\n")).unwrap_or_default();
        let addr = host_addr(m);
        t.push_str(&format!(
            "[[members]]\nname = \"{m}\"\nkind = \"{kind}\"\n{pr}peer_address = \"{addr}:7400\"\nhttp_address = \"{addr}:8400\"\n\n",
        ));
    }
    if !is_witness(name) {
        let servers: Vec<String> = shape.sites().iter().map(|s| format!("\"{s}\" = \"{s}\"")).collect();
        t.push_str(&format!(
            "[actuators]\naddresses = [\"{}\"]\n[[actuators.dns]]\nname = \"dns\"\nserver = \"{SVC}:53\"\n\
             zone = \"example.test\"\nnames = [\"app.example.test\"]\nttl = \"5s\"\ntsig_key_name = \"failover-key\"\n\
             tsig_secret = \"{TSIG}\"\n[[actuators.haproxy]]\nname = \"haproxy\"\naddress = \"{SVC}:9999\"\n\
             backends = [\"app\"]\nservers = {{ {} }}\n",
            host_addr(name),
            servers.join(", ")
        ));
    }
    t
}

/// keepalived's config for site `name`: VRRP with unicast peers, the
/// higher priority on site-a, default preemption; VRRPv3, which takes an
/// advertisement interval below one second.
pub fn keepalived(name: &str, timers: TimerSet) -> String {
    let (me, peer, priority) = if name == "site-a" { (A, B, 150) } else { (B, A, 100) };
    let advert = timers.keepalived_advert_int();
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  \
         virtual_router_id 51\n  priority {priority}\n  advert_int {advert}\n  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n  \
         virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
    )
}

/// The etcd member on `host`'s arguments, its data under `dir`: one member
/// per site and one at the witness, plain HTTP inside the namespaces,
/// pre-vote on (etcd 3.5's default; 3.4 has it off) so a member cut off
/// and back does not depose a healthy leader.
pub fn etcd_member(dir: &Path, host: &str, timers: TimerSet) -> Vec<String> {
    let (heartbeat, election) = timers.etcd_raft_ms();
    let me = host_addr(host);
    let cluster: Vec<String> =
        ["site-a", "site-b", "witness"].iter().map(|h| format!("{h}=http://{}:2380", host_addr(h))).collect();
    [
        "--name",
        host,
        "--data-dir",
        &format!("{}/etcd-{host}", dir.display()),
        "--listen-peer-urls",
        &format!("http://{me}:2380"),
        "--initial-advertise-peer-urls",
        &format!("http://{me}:2380"),
        "--listen-client-urls",
        &format!("http://{me}:2379"),
        "--advertise-client-urls",
        &format!("http://{me}:2379"),
        "--initial-cluster",
        &cluster.join(","),
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "failover-bench",
        "--heartbeat-interval",
        &heartbeat.to_string(),
        "--election-timeout",
        &election.to_string(),
        "--pre-vote",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The etcd elector on site `name`'s arguments: every member as an
/// endpoint, as a careful user lists them.
pub fn etcd_elector(name: &str, timers: TimerSet) -> Vec<String> {
    let endpoints: Vec<String> =
        ["site-a", "site-b", "witness"].iter().map(|h| format!("{}:2379", host_addr(h))).collect();
    [
        "--name",
        name,
        "--endpoints",
        &endpoints.join(","),
        "--ttl",
        &timers.etcd_ttl_s().to_string(),
        "--listen",
        &format!("{}:8400", host_addr(name)),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_timer_set_reaches_every_systems_config() {
        let dir = Path::new("/tmp/lab");
        let fast = node(dir, "site-a", TimerSet::Fast, Shape::ThreeVoters);
        for line in ["heartbeat_interval = \"100ms\"", "lease = \"600ms\"", "election_jitter = \"60ms\""] {
            assert!(fast.contains(line), "{fast}");
        }
        assert!(node(dir, "witness", TimerSet::Default, Shape::ThreeVoters).contains("lease = \"3000ms\""));
        assert!(!node(dir, "witness", TimerSet::Default, Shape::ThreeVoters).contains("[actuators]"));
        assert!(keepalived("site-b", TimerSet::Fast).contains("advert_int 0.1"));
        assert!(keepalived("site-b", TimerSet::Fast).contains("vrrp_version 3"));
        let member = etcd_member(dir, "witness", TimerSet::Fast).join(" ");
        assert!(member.contains("--heartbeat-interval 50 --election-timeout 500"), "{member}");
        assert!(member.contains("--listen-client-urls http://198.18.0.3:2379"), "{member}");
        let elector = etcd_elector("site-b", TimerSet::Fast).join(" ");
        assert!(elector.contains("--ttl 1 --listen 198.18.0.2:8400"), "{elector}");
        assert!(elector.contains("198.18.0.1:2379,198.18.0.2:2379,198.18.0.3:2379"), "{elector}");
    }

    #[test]
    fn five_voters_reach_every_member_list_and_the_load_balancer() {
        let dir = Path::new("/tmp/lab");
        let three = node(dir, "site-b", TimerSet::Fast, Shape::ThreeVoters);
        assert_eq!(three.matches("[[members]]").count(), 3, "{three}");
        assert!(three.contains("name = \"site-b\"\nkind = \"site\"\npriority = 1\n"), "{three}");
        assert!(three.contains("servers = { \"site-a\" = \"site-a\", \"site-b\" = \"site-b\" }"), "{three}");
        let five = node(dir, "site-c", TimerSet::Fast, Shape::FiveVoters);
        assert_eq!(five.matches("[[members]]").count(), 5, "{five}");
        assert!(five.contains("name = \"site-c\"\nkind = \"site\"\npriority = 1\n"), "{five}");
        assert!(
            five.contains("name = \"witness-2\"\nkind = \"witness\"\npeer_address = \"198.18.0.5:7400\""),
            "{five}"
        );
        assert!(five.contains("addresses = [\"198.18.0.4\"]"), "{five}");
        assert!(five.contains("\"site-c\" = \"site-c\" }"), "{five}");
        assert!(!node(dir, "witness-2", TimerSet::Fast, Shape::FiveVoters).contains("[actuators]"));
        let [_, _, (_, haproxy)] = services(dir, Shape::FiveVoters);
        assert!(haproxy.ends_with("backend app\n    server site-a 198.18.0.1:8080\n    server site-b 198.18.0.2:8080\n    server site-c 198.18.0.4:8080\n"), "{haproxy}");
    }
}
