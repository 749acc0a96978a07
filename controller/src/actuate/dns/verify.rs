//! The DNS actuator's last step: asking every verify server, with
//! `hickory-resolver` and no cache, until each answers the new data. It only
//! reads; it must never write to a server.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::Resolver;

use super::{txt_strings, DnsActuator};
use crate::actuate::ActuateError;

impl DnsActuator {
    /// Asks every verify server (each address of a name, resolved now)
    /// until each answers the new data.
    pub(super) async fn verify(&self, fence: &str, wanted: &BTreeSet<String>) -> Result<(), ActuateError> {
        let deadline = tokio::time::Instant::now() + self.propagation_timeout;
        let mut servers = Vec::new();
        for server in &self.verify {
            let unreachable =
                |detail: String| ActuateError::Unreachable { target: format!("verify server {server}"), detail };
            match tokio::time::timeout(self.timeout, server.resolve()).await {
                Ok(Ok(found)) => servers.extend(found),
                Ok(Err(e)) => return Err(unreachable(e.to_string())),
                Err(_) => return Err(unreachable(format!("{server} did not resolve within {:?}", self.timeout))),
            }
        }
        for server in servers {
            let resolver = self.resolver(server)?;
            loop {
                let Err(last) = self.answers(&resolver, fence, wanted).await else { break };
                if tokio::time::Instant::now() >= deadline {
                    return Err(ActuateError::NotConverged(format!(
                        "verify server {server} still answers old data after {:?}: {last}",
                        self.propagation_timeout
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn resolver(&self, server: SocketAddr) -> Result<Resolver<TokioRuntimeProvider>, ActuateError> {
        let mut ns = NameServerConfig::udp_and_tcp(server.ip());
        for c in &mut ns.connections {
            c.port = server.port();
        }
        let mut builder =
            Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), TokioRuntimeProvider::default());
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.recursion_desired = false;
        opts.timeout = self.timeout;
        opts.attempts = 1;
        builder
            .build()
            .map_err(|e| ActuateError::Unreachable { target: format!("verify server {server}"), detail: e.to_string() })
    }

    /// `Ok` when `resolver` answers the fence and every name as wanted.
    async fn answers(
        &self,
        resolver: &Resolver<TokioRuntimeProvider>,
        fence: &str,
        wanted: &BTreeSet<String>,
    ) -> Result<(), String> {
        let texts = lookup(resolver, &self.fence, RecordType::TXT).await?;
        if texts != BTreeSet::from([format!("\"{fence}\"")]) && texts != BTreeSet::from([fence.to_owned()]) {
            return Err(format!("{} is {texts:?}", self.fence));
        }
        for name in &self.names {
            let mut seen = BTreeSet::new();
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                seen.extend(lookup(resolver, name, rtype).await?);
            }
            if seen != *wanted {
                return Err(format!("{name} is {seen:?}"));
            }
        }
        Ok(())
    }
}

async fn lookup(
    resolver: &Resolver<TokioRuntimeProvider>,
    name: &Name,
    rtype: RecordType,
) -> Result<BTreeSet<String>, String> {
    match resolver.lookup(name.clone(), rtype).await {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .filter(|r| r.name == *name && r.record_type() == rtype)
            .map(|r| match txt_strings(&r.data) {
                Some(t) => t,
                None => r.data.to_string(),
            })
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(BTreeSet::new()),
        Err(e) => Err(format!("{name} {rtype}: {e}")),
    }
}
