//! The config file each node of the [`TestCluster`] runs with: short
//! timers, its own real addresses and the proxies of its links, and what
//! the test's [`super::Spec`] adds. It only renders text; it must never
//! start or touch a process.

use super::{TestCluster, NODES};

impl TestCluster {
    /// `node`'s config: its own real addresses, and for every other member
    /// the proxy of the link from `node` to it.
    pub fn config_text(&self, node: &'static str) -> String {
        let mode = if self.spec.manual { "manual" } else { "automatic" };
        let dir = self.dir.path().display();
        let mut text = format!(
            "[node]\nname = \"{node}\"\nstate_dir = \"{dir}/state-{node}\"\n\n[admin]\ntoken = \"{}\"\n\n\
             [cluster]\nname = \"test\"\nfailover_mode = \"{mode}\"\nfailback = \"manual\"\nheartbeat_interval = \"150ms\"\n\
             lease = \"1500ms\"\nelection_jitter = \"50ms\"\nactuation_interval = \"2s\"\nfailover_cooldown = \"1s\"\n\
             declined_backoff = \"3s\"\n\n",
            self.token
        );
        if self.spec.host_names {
            let listen = format!(
                "listen_peer_address = \"{}\"\nlisten_http_address = \"{}\"\n\n[admin]\n",
                self.peer[node], self.http[node]
            );
            text = text.replace("\n[admin]\n", &listen);
        }
        if let Some(drain) = self.spec.drain {
            text = text.replace("[cluster]\n", &format!("[cluster]\ndrain = \"{drain}\"\n"));
        }
        if !self.spec.tls {
            text = text.replace("[cluster]\n", "[cluster]\nallow_unauthenticated_peers = true\n");
        }
        if self.spec.tls {
            let certs = self.certs_dir();
            let certs = certs.display();
            text.push_str(&format!(
                "[tls]\nca_file = \"{certs}/ca.pem\"\ncert_file = \"{certs}/{node}.pem\"\nkey_file = \"{certs}/{node}.key\"\n\n"
            ));
        }
        if self.spec.https {
            let certs = self.certs_dir();
            let certs = certs.display();
            text = text.replace(
                "[admin]\n",
                &format!(
                    "[admin]\ntls_cert_file = \"{certs}/{node}.pem\"\ntls_key_file = \"{certs}/{node}.key\"\n\
                     tls_ca_file = \"{certs}/ca.pem\"\n"
                ),
            );
        }
        if node == "site-a" {
            if let Some(hook) = &self.spec.site_a_pre_promote {
                text.push_str(&format!("[hooks]\npre_promote = {hook:?}\ntimeout = \"5s\"\n\n"));
            }
        }
        if self.spec.file_health_checks && node != "witness" {
            let flag = self.dir.path().join(format!("{node}.unhealthy"));
            text.push_str(&format!(
                "[[checks]]\nname = \"flag-file\"\nkind = \"command\"\ntarget = \"test ! -e {}\"\n\
                 interval = \"100ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\n\n",
                flag.display()
            ));
        }
        for (n, extra) in &self.spec.extra {
            if *n == node {
                text.push_str(extra);
                text.push('\n');
            }
        }
        for m in NODES {
            let (kind, priority) = match m {
                "site-a" => ("site", "priority = 2\n"),
                "site-b" => ("site", "priority = 1\n"),
                _ => ("witness", ""),
            };
            let peer = if m == node { self.peer[m] } else { self.proxies[&(node, m)].local_addr() };
            let http = self.http[m];
            let (peer, http) = if self.spec.host_names {
                (format!("localhost:{}", peer.port()), format!("localhost:{}", http.port()))
            } else {
                (peer.to_string(), http.to_string())
            };
            text.push_str(&format!(
                "[[members]]\nname = \"{m}\"\nkind = \"{kind}\"\n{priority}peer_address = \"{peer}\"\nhttp_address = \"{http}\"\n\n"
            ));
        }
        let owned = self.spec.owned_edits.iter().map(|(n, from, to)| (*n, from.as_str(), to.as_str()));
        for (n, from, to) in self.spec.edits.iter().copied().chain(owned) {
            if n == node {
                assert!(text.contains(from), "{node}'s config has no {from:?} to edit");
                text = text.replace(from, to);
            }
        }
        text
    }
}
