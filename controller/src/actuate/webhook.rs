//! Webhook actuator: an HTTP call (reqwest with rustls) for DNS or load
//! balancer APIs that have no actuator of their own.
//!
//! `https` certificates are checked against the system's roots, or, with
//! `ca_file`, against that file's certificates only. Redirects are never
//! followed (a 3xx answer is a failure), so the configured headers go to
//! the configured host and nowhere else.
//!
//! The body is a template (minijinja, every value JSON-escaped) over
//! `site`, `epoch`, `state`, `addresses` and `reason`; headers come from the
//! config. Calls are idempotent by epoch: each carries an
//! `Idempotency-Key` of site, epoch and state, is retried until the
//! endpoint answers 2xx, and is not repeated once it has for that epoch and
//! state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minijinja::{AutoEscape, Environment};
use serde::Deserialize;

use super::{ActuateError, Applied, Goal, LeaseGuard, Outcome};
use crate::actuation_mode::ActuationMode;
use crate::redact;

/// `[[actuators.webhook]]`: one endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// `act` or `observe` (default: `[actuators].actuation`, else `act`).
    #[serde(default)]
    pub actuation: Option<crate::settings::Choice<ActuationMode>>,
    /// Name in status and metrics (default `webhook:<host>`).
    pub name: Option<String>,
    /// The endpoint (`http://` or `https://`).
    pub url: String,
    /// HTTP method (default `POST`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template (default: every field as one JSON object).
    pub body: Option<String>,
    /// Time limit of one call.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Goals that trigger a call: `active`, `draining` (default `["active"]`).
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// PEM file of the CA certificate(s) that issued the endpoint's
    /// certificate; when set, only these are trusted (not the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_events() -> Vec<String> {
    vec!["active".into()]
}

/// The body used when none is configured.
pub const DEFAULT_BODY: &str = r#"{"site": {{ site }}, "epoch": {{ epoch }}, "state": {{ state }}, "addresses": {{ addresses }}, "reason": {{ reason }}}"#;

/// A configured, checked webhook.
#[derive(Clone, Debug)]
pub struct WebhookActuator {
    /// `act`, or `observe`: read the target, report, change nothing.
    pub actuation: ActuationMode,
    /// Unique name.
    pub name: String,
    url: reqwest::Url,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    body: String,
    events: Vec<String>,
    site: String,
    addresses: Vec<String>,
    /// Time limit of one call.
    pub timeout: Duration,
    client: reqwest::Client,
    delivered: Arc<Mutex<Option<(u64, &'static str)>>>,
}

/// Renders `template` with every value JSON-escaped, and checks the result
/// is JSON.
pub fn render(
    template: &str,
    site: &str,
    epoch: u64,
    state: &str,
    addresses: &[String],
    reason: &str,
) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let addresses: Vec<minijinja::Value> = addresses.iter().map(|a| minijinja::Value::from(a.as_str())).collect();
    let ctx = minijinja::context! { site, epoch, state, addresses, reason };
    let text = env.render_str(template, ctx).map_err(|e| format!("template: {e}"))?;
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("the body is not JSON ({e}): {text}"))?;
    Ok(text)
}

impl WebhookActuator {
    /// Checks a section for site `me`.
    pub fn build(s: &WebhookSection, me: &str, addresses: &[IpAddr]) -> Result<Self, crate::settings::BadSetting> {
        let err = |k: &str, p: String| crate::settings::BadSetting::new(k, p);
        let url = reqwest::Url::parse(&s.url).map_err(|e| err("url", format!("{:?}: {e}", s.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("url", "use an http:// or https:// URL".into()));
        }
        let method = reqwest::Method::from_bytes(s.method.as_bytes())
            .map_err(|_| err("method", format!("{:?} is not an HTTP method", s.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &s.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| err("headers", format!("{k:?} is not a header name")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| err("headers", format!("the value of {k:?} is not a valid header value")))?;
            headers.insert(name, value);
        }
        if let Some(e) = s.events.iter().find(|e| !matches!(e.as_str(), "active" | "draining")) {
            return Err(err("events", format!("{e:?}: use \"active\" and/or \"draining\"")));
        }
        let body = s.body.clone().unwrap_or_else(|| DEFAULT_BODY.to_owned());
        let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        render(&body, me, 1, "active", &addresses, "check").map_err(|p| err("body", p))?;
        if s.timeout.is_zero() {
            return Err(err("timeout", "must be above zero".into()));
        }
        let mut client = reqwest::Client::builder().timeout(s.timeout).redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &s.ca_file {
            client = client.tls_built_in_root_certs(false);
            for cert in crate::http_tls::read_ca_file(path).map_err(|p| err("ca_file", p))? {
                client = client.add_root_certificate(cert);
            }
        }
        let client = client.build().map_err(|e| err("url", format!("cannot build an HTTP client: {e}")))?;
        Ok(WebhookActuator {
            actuation: ActuationMode::Act,
            name: s.name.clone().unwrap_or_else(|| format!("webhook:{}", url.host_str().unwrap_or("?"))),
            url,
            method,
            headers,
            body,
            events: s.events.clone(),
            site: me.to_owned(),
            addresses,
            timeout: s.timeout,
            client,
            delivered: Arc::new(Mutex::new(None)),
        })
    }

    /// One pass: call once per epoch and goal, until it answers 2xx. In
    /// observe mode there is nothing to read: the pass reports the call it
    /// would make (the body left out: a template may hold a secret) and
    /// makes none.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Outcome, ActuateError> {
        let converged = |detail: String| Ok(Outcome::Converged(Applied { detail, propagation: None }));
        let Some(epoch) = goal.epoch() else { return converged("standby".into()) };
        let state = goal.state_name();
        if !self.events.iter().any(|e| e == state) {
            return converged(format!("not called while {state}"));
        }
        if *self.delivered.lock().map_err(|_| ActuateError::NotConverged("state lock poisoned".into()))?
            == Some((epoch, state))
        {
            return converged(format!("delivered for epoch {epoch} ({state})"));
        }
        let reason = match goal {
            Goal::Active { reason, .. } => reason.clone(),
            Goal::Draining { to, .. } => format!("draining towards {to}"),
            Goal::Standby => String::new(),
        };
        let body = render(&self.body, &self.site, epoch, state, &self.addresses, &reason)
            .map_err(|p| ActuateError::NotConverged(format!("body: {p}")))?;
        if self.actuation == ActuationMode::Observe {
            let call = format!(
                "would call {} {} for epoch {epoch} ({state}) with a body of {} bytes",
                self.method,
                redact::url_for_display(&self.url),
                body.len()
            );
            let read = "nothing (a webhook endpoint has no state to read)".to_owned();
            return Ok(Outcome::WouldChange { read, changes: vec![call] });
        }
        lease.check()?;
        let status = self.call(epoch, state, body).await?;
        if let Ok(mut d) = self.delivered.lock() {
            *d = Some((epoch, state));
        }
        converged(format!("called for epoch {epoch} ({state}): HTTP {status}"))
    }

    /// One call; `Ok` with a 2xx status, else why not.
    async fn call(&self, epoch: u64, state: &str, body: String) -> Result<reqwest::StatusCode, ActuateError> {
        // Errors name the host only; the full URL, the cause and the
        // answer's body go to the log (see `crate::redact`).
        let target = format!("webhook {}", redact::url_for_display(&self.url));
        let response = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", format!("{}-{epoch}-{state}", self.site))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(actuator = %self.name, url = %self.url, error = %redact::error_chain(&e), "webhook call failed");
                if e.is_timeout() {
                    ActuateError::TimedOut { what: target.clone(), after: self.timeout }
                } else {
                    ActuateError::Unreachable { target: target.clone(), detail: redact::http_error(e) }
                }
            })?;
        let status = response.status();
        if status.is_redirection() {
            let to = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("");
            tracing::warn!(actuator = %self.name, url = %self.url, %status, location = %to, "webhook answered with a redirect, which is not followed");
            return Err(ActuateError::Refused {
                target,
                detail: format!("HTTP {status} (redirects are not followed)"),
            });
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            tracing::warn!(actuator = %self.name, url = %self.url, %status, body = %text, "webhook answered with a failure");
            return Err(ActuateError::Refused { target, detail: format!("HTTP {status}") });
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_escapes_every_value_as_json() {
        let body = render(DEFAULT_BODY, "site-\"a", 7, "active", &["192.0.2.1".into()], "x\ny").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["site"], "site-\"a");
        assert_eq!(v["epoch"], 7);
        assert_eq!(v["addresses"][0], "192.0.2.1");
        assert_eq!(v["reason"], "x\ny");
    }

    #[test]
    fn bad_templates_and_urls_name_the_key() {
        let mut s = WebhookSection {
            name: None,
            url: "http://127.0.0.1:9/hook".into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: Some("{\"epoch\": {{ epoch }}, \"nope\": {{ missing }}}".into()),
            timeout: Duration::from_secs(1),
            events: default_events(),
            ca_file: None,
            actuation: None,
        };
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().key, "body");
        s.body = Some("epoch {{ epoch }}".into());
        assert!(WebhookActuator::build(&s, "a", &[]).unwrap_err().problem.contains("not JSON"));
        s.body = None;
        s.url = "ftp://x".into();
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().key, "url");
        s.url = "http://127.0.0.1:9/hook".into();
        s.events = vec!["standby".into()];
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().key, "events");
        s.events = default_events();
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap().name, "webhook:127.0.0.1");
    }

    /// A server on 127.0.0.1 that answers each request (read up to its
    /// blank line) with `answer`, over TLS with `tls`; counts the requests
    /// it read. It serves at most 64 connections.
    async fn canned_server(
        answer: String,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
        async fn answer_one(mut io: impl AsyncRead + AsyncWrite + Unpin, answer: &str) -> bool {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = io.write_all(answer.as_bytes()).await;
            let _ = io.shutdown().await;
            true
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            for _ in 0..64 {
                let Ok((stream, _)) = listener.accept().await else { return };
                let read = match &tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => answer_one(stream, &answer).await,
                        Err(_) => false,
                    },
                    None => answer_one(stream, &answer).await,
                };
                if read {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        (addr, count)
    }

    /// A private CA's certificate (PEM) and a TLS acceptor whose
    /// certificate, for 127.0.0.1, that CA issued.
    fn private_ca_and_acceptor() -> (String, tokio_rustls::TlsAcceptor) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name.push(DnType::CommonName, "webhook test private CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca_params.self_signed(&ca_key).expect("ca cert").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, "webhook test endpoint");
        let cert = params.signed_by(&key, &issuer).expect("cert");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        (ca_pem, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    fn section(url: String, ca_file: Option<PathBuf>) -> WebhookSection {
        WebhookSection {
            name: Some("hook".into()),
            url,
            method: "POST".into(),
            headers: BTreeMap::from([("Authorization".to_owned(), "Bearer hook-secret".to_owned())]),
            body: None,
            timeout: Duration::from_secs(30),
            events: default_events(),
            ca_file,
            actuation: None,
        }
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn a_private_ca_is_trusted_through_ca_file_and_not_otherwise() {
        let (ca_pem, acceptor) = private_ca_and_acceptor();
        let (addr, count) = canned_server(OK.into(), Some(acceptor)).await;
        let url = format!("https://{addr}/hook");

        let without = WebhookActuator::build(&section(url.clone(), None), "a", &[]).expect("build");
        match without.call(1, "active", "{}".into()).await {
            Err(ActuateError::Unreachable { detail, .. }) => assert!(detail.contains("UnknownIssuer"), "{detail}"),
            other => panic!("trusted a certificate of an unknown CA: {other:?}"),
        }
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);

        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write ca");
        let with = WebhookActuator::build(&section(url, Some(ca_file)), "a", &[]).expect("build");
        let status = with.call(1, "active", "{}".into()).await.expect("call with the private CA");
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_bad_ca_file_is_refused_at_load_naming_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = "https://127.0.0.1:9/hook".to_owned();
        let missing = dir.path().join("missing.pem");
        let err = WebhookActuator::build(&section(url.clone(), Some(missing)), "a", &[]).unwrap_err();
        assert_eq!(err.key, "ca_file", "{err:?}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = WebhookActuator::build(&section(url.clone(), Some(empty)), "a", &[]).unwrap_err();
        assert!(err.key == "ca_file" && err.problem.contains("no PEM certificate"), "{err:?}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("write");
        let err = WebhookActuator::build(&section(url, Some(junk)), "a", &[]).unwrap_err();
        assert!(err.key == "ca_file" && err.problem.contains("X.509"), "{err:?}");
    }

    #[tokio::test]
    async fn a_redirect_is_reported_as_a_failure_and_not_followed() {
        let (elsewhere, elsewhere_count) = canned_server(OK.into(), None).await;
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: http://{elsewhere}/stolen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (addr, count) = canned_server(redirect, None).await;
        let hook = WebhookActuator::build(&section(format!("http://{addr}/hook"), None), "a", &[]).expect("build");
        match hook.call(1, "active", "{}".into()).await {
            Err(ActuateError::Refused { detail, .. }) => assert!(detail.contains("302"), "{detail}"),
            other => panic!("a redirect was not reported as a failure: {other:?}"),
        }
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(elsewhere_count.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect was followed");
    }
}
