//! How failoverctl reaches the nodes: endpoints (with the default port),
//! the HTTP client, the admin token, and errors that say why a node could
//! not be reached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use failover_controller::reports::HistoryDoc;
use failover_controller::status_doc::StatusDoc;
use serde_json::{json, Value};

/// The HTTP port of an endpoint given without one (`http_address`'s port in
/// the shipped configurations).
pub const DEFAULT_PORT: u16 = 8400;

/// How many times one admin call follows a node's 421 to the node it names.
const MAX_REDIRECTS: usize = 2;

/// An endpoint as given: `HOST`, `HOST:PORT` or `[V6]:PORT`, with or
/// without `http://` or `https://` before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The scheme the endpoint names; `None` when it names none.
    pub scheme: Option<&'static str>,
    /// The authority, with [`DEFAULT_PORT`] when it gives no port, and any
    /// path, without a trailing `/`.
    rest: String,
}

impl Endpoint {
    /// Reads an endpoint; only `http://` and `https://` are schemes.
    pub fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = match endpoint.split_once("://") {
            None => (None, endpoint),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Some("https"), rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Some("http"), rest),
            Some((s, _)) => {
                return Err(format!("endpoint {endpoint:?}: the scheme {s:?} is neither http:// nor https://"))
            }
        };
        let rest = rest.trim_end_matches('/');
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(format!("endpoint {endpoint:?} names no host"));
        }
        // A port follows the host: after the `]` of an IPv6 address.
        let host_end = authority.rfind(']').map_or(0, |i| i + 1);
        let port = if authority[host_end..].contains(':') { String::new() } else { format!(":{DEFAULT_PORT}") };
        let path = if path.is_empty() { String::new() } else { format!("/{path}") };
        Ok(Endpoint { scheme, rest: format!("{authority}{port}{path}") })
    }

    /// The base URL with `scheme`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.rest)
    }

    /// The base URL to try first: the endpoint's own scheme, else `https`.
    pub fn first(&self) -> String {
        self.url(self.scheme.unwrap_or("https"))
    }
}

/// The base URL an endpoint is tried at first (see [`Endpoint::first`]).
#[cfg(test)]
pub fn base(endpoint: &str) -> String {
    Endpoint::parse(endpoint).map(|e| e.first()).unwrap_or_else(|e| e)
}

/// Whether a failure over HTTPS may have come from a node that speaks
/// plain HTTP: not when nothing listens or nothing answers, where plain
/// HTTP would fare no better.
fn may_speak_plain_http(err: &reqwest::Error) -> bool {
    if err.is_timeout() {
        return false;
    }
    let mut cause: Option<&dyn std::error::Error> = Some(err);
    // The chain is finite; the bound only guards against a cycle.
    for _ in 0..32 {
        let Some(c) = cause else { break };
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut) {
                return false;
            }
        }
        cause = c.source();
    }
    true
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
    pub endpoints: Vec<Endpoint>,
    /// The scheme each endpoint without one was read with last (a node
    /// without TLS answers plain HTTP): calls without a token go there.
    plain: std::sync::Mutex<std::collections::HashMap<String, &'static str>>,
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
        let endpoints =
            endpoints.iter().map(|e| Endpoint::parse(e)).collect::<Result<Vec<_>, _>>().map_err(|e| anyhow!(e))?;
        // Never followed: the one answer that names another node (421) is
        // followed by failoverctl itself, with the scheme it chose.
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_secs(15)).redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            for cert in failover_controller::http_tls::read_ca_file(path).map_err(|e| anyhow!("--ca-file: {e}"))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Conn {
            endpoints,
            plain: Default::default(),
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
            match self.read(e, path, None).await {
                Ok((v, _)) => return Ok(v),
                Err(why) => last = anyhow!("{why}"),
            }
        }
        Err(last)
    }

    /// GET `path` on each endpoint in turn until one answers with no
    /// `error` (a witness, say, has no state store to read); otherwise what
    /// each said.
    pub async fn get_answered(&self, path: &str) -> anyhow::Result<Value> {
        let mut said = Vec::new();
        for e in &self.endpoints {
            match self.read(e, path, None).await {
                Ok((v, at)) => match v.get("error").and_then(Value::as_str) {
                    Some(why) => said.push(format!("{at}: {why}")),
                    None => return Ok(v),
                },
                Err(why) => said.push(why),
            }
        }
        if said.is_empty() {
            return Err(Self::none_given());
        }
        Err(anyhow!("{}", said.join("; ")))
    }

    /// GET `path` (a call without a token) at an endpoint: at its own
    /// scheme; without one, over HTTPS, then over plain HTTP if HTTPS got
    /// no answer that plain HTTP could not do better on. The answer, and
    /// the base URL that gave it.
    pub async fn read(&self, e: &Endpoint, path: &str, limit: Option<Duration>) -> Result<(Value, String), String> {
        if e.scheme.is_some() {
            let at = e.first();
            return self.get_at(&at, path, limit).await.map(|v| (v, at));
        }
        let known = self.plain.lock().ok().and_then(|m| m.get(&e.rest).copied());
        let order: [&'static str; 2] = if known == Some("http") { ["http", "https"] } else { ["https", "http"] };
        let first = e.url(order[0]);
        let why = match self.try_get(&first, path, limit).await {
            Ok(v) => return Ok((v, first)),
            Err(Failure::Final(why)) => return Err(why),
            Err(Failure::OtherScheme(why)) => why,
        };
        let second = e.url(order[1]);
        match self.get_at(&second, path, limit).await {
            Ok(v) => {
                if let Ok(mut m) = self.plain.lock() {
                    m.insert(e.rest.clone(), order[1]);
                }
                Ok((v, second))
            }
            Err(other) => Err(format!("{why}; {other}")),
        }
    }

    /// GET at one base URL, saying whether the other scheme may do better.
    async fn try_get(&self, base: &str, path: &str, limit: Option<Duration>) -> Result<Value, Failure> {
        let mut req = self.client.get(format!("{base}{path}"));
        if let Some(limit) = limit {
            req = req.timeout(limit);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) if may_speak_plain_http(&e) => return Err(Failure::OtherScheme(format!("{base}: {}", why(&e)))),
            Err(e) => return Err(Failure::Final(format!("{base}: {}", why(&e)))),
        };
        resp.json().await.with_context(|| format!("{base}: bad JSON")).map_err(|e| Failure::Final(format!("{e:#}")))
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
    ///
    /// The token goes over plain HTTP only to an endpoint written
    /// `http://...` (and to the nodes a 421 from it names). An endpoint
    /// without a scheme is called over HTTPS; if it does not answer HTTPS,
    /// a call with a token stops there, with a message saying how to write
    /// the endpoint, and a call without one is sent over plain HTTP.
    async fn admin_call(
        &self,
        token: Option<&str>,
        endpoint: &Endpoint,
        command: &str,
        body: &Value,
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let mut at = endpoint.first();
        let mut redirects = 0;
        loop {
            let mut req = self.client.post(format!("{at}/admin/{command}")).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = match req.send().await {
                Ok(r) => r,
                Err(e)
                    if redirects == 0
                        && endpoint.scheme.is_none()
                        && at.starts_with("https://")
                        && may_speak_plain_http(&e) =>
                {
                    let https = format!("{at}: {}", why(&e));
                    if token.is_some() {
                        let plain = endpoint.url("http");
                        return Err(format!(
                            "{https}. An endpoint without a scheme is called over HTTPS, and the admin token is \
                             never sent over plain HTTP unless the endpoint says so: if this node serves plain \
                             HTTP, write it as {plain} (the token then crosses the network in clear text); if it \
                             serves HTTPS, write https://... and give its CA with --ca-file"
                        ));
                    }
                    at = endpoint.url("http");
                    continue;
                }
                Err(e) => return Err(format!("{at}: {}", why(&e))),
            };
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(json!({}));
            let next = v.pointer("/carried_out_by/http_address").and_then(Value::as_str);
            match next {
                Some(next) if status == reqwest::StatusCode::MISDIRECTED_REQUEST && redirects < MAX_REDIRECTS => {
                    let node = v.pointer("/carried_out_by/node").and_then(Value::as_str).unwrap_or("?");
                    eprintln!("failoverctl: {at} does not carry out {command}; calling {node} at {next}");
                    // The named node is called with the scheme the first one was.
                    let scheme = if at.starts_with("https://") { "https" } else { "http" };
                    at = format!("{scheme}://{next}");
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

    /// The `/status` of the node at an endpoint, within two seconds, and
    /// the base URL that gave it.
    async fn status_at(&self, e: &Endpoint) -> Result<(StatusDoc, String), String> {
        let (v, base) = self.read(e, "/status", Some(Duration::from_secs(2))).await?;
        status_doc(v).map(|doc| (doc, base.clone())).map_err(|e| format!("{base}: {e:#}"))
    }

    /// The `/status` of the node that acts as active right now, if any
    /// endpoint is one.
    pub async fn active_status(&self) -> Option<StatusDoc> {
        for e in &self.endpoints {
            if let Ok((v, _)) = self.status_at(e).await {
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
            let (v, at) = match self.status_at(e).await {
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
            let own = Endpoint::parse(&format!("{scheme}://{address}"))?;
            match self.status_at(&own).await {
                Ok((own, _)) if own.role == "active" => return Ok(()),
                Ok((own, _)) => {
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

/// The histories `failoverctl history` merges: each node's, and why the
/// others could not be read.
pub struct Histories {
    /// The history of each node that answered.
    pub read: Vec<HistoryDoc>,
    /// The nodes (or endpoints) that did not answer, and why.
    pub unread: Vec<(String, String)>,
}

impl Conn {
    /// The `/history` of every node that answers: each `--endpoint`, and
    /// every member a node's `/status` gives an HTTP address for (called
    /// with the scheme that node answered on), each node once.
    pub async fn histories(&self) -> Histories {
        let limit = Some(Duration::from_secs(5));
        let mut out = Histories { read: Vec::new(), unread: Vec::new() };
        let mut members: Option<(StatusDoc, String)> = None;
        for e in &self.endpoints {
            match self.read(e, "/history", limit).await {
                Ok((v, base)) => match serde_json::from_value::<HistoryDoc>(v) {
                    Ok(doc) if out.read.iter().any(|h| h.node == doc.node) => {}
                    Ok(doc) => out.read.push(doc),
                    Err(why) => out.unread.push((base, format!("bad /history answer: {why}"))),
                },
                Err(why) => out.unread.push((e.rest.clone(), why)),
            }
            if members.is_none() {
                members = self.status_at(e).await.ok();
            }
        }
        let Some((status, base)) = members else { return out };
        let scheme = if base.starts_with("https://") { "https" } else { "http" };
        for site in &status.sites {
            if out.read.iter().any(|h| h.node == site.id) {
                continue;
            }
            let Some(address) = &site.http_address else {
                out.unread.push((site.id.clone(), "no HTTP address known".into()));
                continue;
            };
            let read = self.get_at(&format!("{scheme}://{address}"), "/history", limit).await;
            match read
                .and_then(|v| serde_json::from_value::<HistoryDoc>(v).map_err(|e| format!("bad /history answer: {e}")))
            {
                Ok(doc) => out.read.push(doc),
                Err(why) => out.unread.push((site.id.clone(), why)),
            }
        }
        out
    }
}

/// Why a read failed: for good, or in a way the other scheme may not.
enum Failure {
    Final(String),
    OtherScheme(String),
}

/// A `/status` answer as its typed document.
pub fn status_doc(v: Value) -> anyhow::Result<StatusDoc> {
    serde_json::from_value(v).context("the /status answer cannot be read")
}

#[cfg(test)]
mod tests {
    use super::{base, Endpoint};

    #[test]
    fn an_endpoint_without_a_port_gets_the_default_one_and_without_a_scheme_https_first() {
        assert_eq!(base("127.0.0.12"), "https://127.0.0.12:8400");
        assert_eq!(base("127.0.0.12:8401"), "https://127.0.0.12:8401");
        assert_eq!(base("https://node.example/"), "https://node.example:8400");
        assert_eq!(base("http://node.example:80"), "http://node.example:80");
        assert_eq!(base("HTTP://node.example:80"), "http://node.example:80");
        assert_eq!(base("[::1]"), "https://[::1]:8400");
        assert_eq!(base("[::1]:9000"), "https://[::1]:9000");
        assert_eq!(Endpoint::parse("127.0.0.12").map(|e| e.scheme), Ok(None));
        assert_eq!(Endpoint::parse("http://127.0.0.12").map(|e| e.scheme), Ok(Some("http")));
    }

    #[test]
    fn an_endpoint_with_another_scheme_or_no_host_is_refused_by_name() {
        for bad in ["ftp://node.example", "://node.example", "http://", ""] {
            let why = Endpoint::parse(bad).err().unwrap_or_default();
            assert!(why.contains(&format!("{bad:?}")), "{bad:?}: {why}");
        }
    }
}
