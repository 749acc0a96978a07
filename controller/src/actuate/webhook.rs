//! Webhook actuator: an HTTP call (reqwest with rustls) for DNS or load
//! balancer APIs that have no actuator of their own.
//!
//! The body is a template (minijinja, every value JSON-escaped) over
//! `site`, `epoch`, `state`, `addresses` and `reason`; headers come from the
//! config. Calls are idempotent by epoch: each carries an
//! `Idempotency-Key` of site, epoch and state, is retried until the
//! endpoint answers 2xx, and is not repeated once it has for that epoch and
//! state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minijinja::{AutoEscape, Environment};
use serde::Deserialize;

use super::{ActuateError, Applied, Goal, LeaseGuard};
use crate::redact;

/// `[[actuators.webhook]]`: one endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
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
    pub fn build(s: &WebhookSection, me: &str, addresses: &[IpAddr]) -> Result<Self, (String, String)> {
        let err = |k: &str, p: String| (k.to_owned(), p);
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
        let client = reqwest::Client::builder()
            .timeout(s.timeout)
            .build()
            .map_err(|e| err("url", format!("cannot build an HTTP client: {e}")))?;
        Ok(WebhookActuator {
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

    /// One pass: call once per epoch and goal, until it answers 2xx.
    pub async fn apply(&self, goal: &Goal, lease: &LeaseGuard) -> Result<Applied, ActuateError> {
        let Some(epoch) = goal.epoch() else { return Ok(Applied { detail: "standby".into(), propagation: None }) };
        let state = goal.state_name();
        if !self.events.iter().any(|e| e == state) {
            return Ok(Applied { detail: format!("not called while {state}"), propagation: None });
        }
        if *self.delivered.lock().map_err(|_| ActuateError::NotConverged("state lock poisoned".into()))?
            == Some((epoch, state))
        {
            return Ok(Applied { detail: format!("delivered for epoch {epoch} ({state})"), propagation: None });
        }
        let reason = match goal {
            Goal::Active { reason, .. } => reason.clone(),
            Goal::Draining { to, .. } => format!("draining towards {to}"),
            Goal::Standby => String::new(),
        };
        let body = render(&self.body, &self.site, epoch, state, &self.addresses, &reason)
            .map_err(|p| ActuateError::NotConverged(format!("body: {p}")))?;
        lease.check()?;
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
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            tracing::warn!(actuator = %self.name, url = %self.url, %status, body = %text, "webhook answered with a failure");
            return Err(ActuateError::Refused { target, detail: format!("HTTP {status}") });
        }
        if let Ok(mut d) = self.delivered.lock() {
            *d = Some((epoch, state));
        }
        Ok(Applied { detail: format!("called for epoch {epoch} ({state}): HTTP {status}"), propagation: None })
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
        };
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().0, "body");
        s.body = Some("epoch {{ epoch }}".into());
        assert!(WebhookActuator::build(&s, "a", &[]).unwrap_err().1.contains("not JSON"));
        s.body = None;
        s.url = "ftp://x".into();
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().0, "url");
        s.url = "http://127.0.0.1:9/hook".into();
        s.events = vec!["standby".into()];
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap_err().0, "events");
        s.events = default_events();
        assert_eq!(WebhookActuator::build(&s, "a", &[]).unwrap().name, "webhook:127.0.0.1");
    }
}
