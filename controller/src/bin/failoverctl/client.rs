//! How failoverctl reaches the nodes: endpoints (with the default port),
//! the HTTP client, the admin token, and errors that say why a node could
//! not be reached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use failover_controller::status_doc::StatusDoc;
use serde_json::{json, Value};

/// The HTTP port of an endpoint given without one (`http_address`'s port in
/// the shipped configurations).
pub const DEFAULT_PORT: u16 = 8400;

/// How many times one admin call follows a node's 421 to the node it names.
const MAX_REDIRECTS: usize = 2;

/// The base URL of an endpoint: `HOST`, `HOST:PORT`, `[V6]:PORT` or the
/// same after `http://` or `https://`; without a port, [`DEFAULT_PORT`].
pub fn base(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("http", endpoint));
    let rest = rest.trim_end_matches('/');
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // A port follows the host: after the `]` of an IPv6 address.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let port = if authority[host_end..].contains(':') { String::new() } else { format!(":{DEFAULT_PORT}") };
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    format!("{scheme}://{authority}{port}{path}")
}

/// Why a request failed, in words: the kind of failure and the innermost
/// cause (refused, timed out, certificate, name lookup), which reqwest's own
/// message leaves out.
pub fn why(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    // The chain is finite; the bound only guards against a cycle.
    for _ in 0..32 {
        match cause.source() {
            Some(next) => cause = next,
            None => break,
        }
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_decode() {
        "bad answer"
    } else {
        "request failed"
    };
    format!("{kind}: {cause}")
}

/// The nodes to talk to and how.
pub struct Conn {
    /// `--endpoint`s, in order.
    pub endpoints: Vec<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    client: reqwest::Client,
}

impl Conn {
    /// A connection as the command line says.
    pub fn new(
        endpoints: &[String],
        token: Option<&str>,
        token_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Conn> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(15));
        if let Some(path) = ca_file {
            for cert in failover_controller::http_tls::read_ca_file(path).map_err(|e| anyhow!("--ca-file: {e}"))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Conn {
            endpoints: endpoints.to_vec(),
            token: token.map(str::to_owned),
            token_file: token_file.map(Path::to_path_buf),
            client: builder.build()?,
        })
    }

    fn none_given() -> anyhow::Error {
        anyhow!("no --endpoint given (or FAILOVERCTL_ENDPOINTS)")
    }

    /// The admin token: `--token`, or the trimmed contents of `--token-file`.
    fn token(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.token_file else { return Ok(self.token.clone()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("--token-file {}: cannot read it: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            bail!("--token-file {}: the file is empty", path.display());
        }
        Ok(Some(token.to_owned()))
    }

    /// GET `path` on the first endpoint that answers.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut last = Self::none_given();
        for e in &self.endpoints {
            match self.get_at(&base(e), path, None).await {
                Ok(v) => return Ok(v),
                Err(why) => last = anyhow!("{why}"),
            }
        }
        Err(last)
    }

    /// GET `path` at one base URL (within `limit`, or the client's own).
    pub async fn get_at(&self, base: &str, path: &str, limit: Option<Duration>) -> Result<Value, String> {
        let mut req = self.client.get(format!("{base}{path}"));
        if let Some(limit) = limit {
            req = req.timeout(limit);
        }
        let resp = req.send().await.map_err(|e| format!("{base}: {}", why(&e)))?;
        resp.json().await.with_context(|| format!("{base}: bad JSON")).map_err(|e| format!("{e:#}"))
    }

    /// Sends an admin call to `endpoint`; on 421 Misdirected Request, calls
    /// the node the answer names (`carried_out_by.http_address`), at most
    /// [`MAX_REDIRECTS`] times, and says so on stderr.
    async fn admin_call(
        &self,
        token: Option<&str>,
        endpoint: &str,
        command: &str,
        body: &Value,
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let mut endpoint = base(endpoint);
        let mut redirects = 0;
        loop {
            let mut req = self.client.post(format!("{endpoint}/admin/{command}")).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.map_err(|e| format!("{endpoint}: {}", why(&e)))?;
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(json!({}));
            let next = v.pointer("/carried_out_by/http_address").and_then(Value::as_str);
            match next {
                Some(next) if status == reqwest::StatusCode::MISDIRECTED_REQUEST && redirects < MAX_REDIRECTS => {
                    let node = v.pointer("/carried_out_by/node").and_then(Value::as_str).unwrap_or("?");
                    eprintln!("failoverctl: {endpoint} does not carry out {command}; calling {node} at {next}");
                    // The named node is called with the scheme the first one was.
                    let scheme = if endpoint.starts_with("https://") { "https" } else { "http" };
                    endpoint = format!("{scheme}://{next}");
                    redirects += 1;
                }
                _ => return Ok((status, v)),
            }
        }
    }

    /// An admin call, to the first endpoint that can carry it out; the
    /// node's success answer.
    pub async fn admin(&self, command: &str, body: Value) -> anyhow::Result<Value> {
        let token = self.token()?;
        let mut last = Self::none_given();
        for e in &self.endpoints {
            match self.admin_call(token.as_deref(), e, command, &body).await {
                Ok((status, v)) => {
                    if status.is_success() {
                        return Ok(v);
                    }
                    let why = v.get("error").and_then(Value::as_str).unwrap_or("refused").to_owned();
                    // 503: this node cannot carry it out or forward it (it
                    // does not know the active site yet); the next may.
                    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        last = anyhow!("{why}");
                        continue;
                    }
                    bail!("{why}");
                }
                Err(why) => last = anyhow!("{why}"),
            }
        }
        Err(last)
    }

    /// The `/status` of the node at one base URL, within two seconds.
    async fn status_at(&self, base: &str) -> Result<StatusDoc, String> {
        let v = self.get_at(base, "/status", Some(Duration::from_secs(2))).await?;
        status_doc(v).map_err(|e| format!("{base}: {e:#}"))
    }

    /// The `/status` of the node that acts as active right now, if any
    /// endpoint is one.
    pub async fn active_status(&self) -> Option<StatusDoc> {
        for e in &self.endpoints {
            if let Ok(v) = self.status_at(&base(e)).await {
                if v.role == "active" {
                    return Some(v);
                }
            }
        }
        None
    }

    /// `Ok` when `site` is the active site: a node that answers says so and
    /// the site itself, asked at its `http_address` from that node's
    /// `/status`, agrees (when it can be reached from here); else what was
    /// seen instead.
    pub async fn site_is_active(&self, site: &str) -> Result<(), String> {
        let mut last = "no endpoint answered".to_owned();
        for e in &self.endpoints {
            let at = base(e);
            let v = match self.status_at(&at).await {
                Ok(v) => v,
                Err(why) => {
                    last = why;
                    continue;
                }
            };
            let (node, role) = (&v.node, &v.role);
            if node == site {
                if role == "active" {
                    return Ok(());
                }
                last = format!("{site} says it is {role}");
                continue;
            }
            match v.active_site.as_deref() {
                Some(a) if a == site => {}
                other => {
                    last = format!("{node} sees {} as the active site", other.unwrap_or("no site"));
                    continue;
                }
            }
            // A node from before `http_address` was shown: its word.
            let Some(address) = v.site(site).and_then(|s| s.http_address.as_deref()) else { return Ok(()) };
            let scheme = if at.starts_with("https://") { "https" } else { "http" };
            match self.status_at(&format!("{scheme}://{address}")).await {
                Ok(own) if own.role == "active" => return Ok(()),
                Ok(own) => {
                    let own_role = own.role;
                    last = format!("{node} sees {site} as the active site, but {site} says it is {own_role}");
                }
                // Not reachable from here: the answering node's word.
                Err(_) => return Ok(()),
            }
        }
        Err(last)
    }
}

/// A `/status` answer as its typed document.
pub fn status_doc(v: Value) -> anyhow::Result<StatusDoc> {
    serde_json::from_value(v).context("the /status answer cannot be read")
}

#[cfg(test)]
mod tests {
    use super::base;

    #[test]
    fn an_endpoint_without_a_port_gets_the_default_one() {
        assert_eq!(base("127.0.0.12"), "http://127.0.0.12:8400");
        assert_eq!(base("127.0.0.12:8401"), "http://127.0.0.12:8401");
        assert_eq!(base("https://node.example/"), "https://node.example:8400");
        assert_eq!(base("http://node.example:80"), "http://node.example:80");
        assert_eq!(base("[::1]"), "http://[::1]:8400");
        assert_eq!(base("[::1]:9000"), "http://[::1]:9000");
    }
}
