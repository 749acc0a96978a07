//! The one HTTP client of the tests and the benchmark: plain HTTP/1.1,
//! a fresh connection for every request (no pooling, so a cut link shows
//! at once), every request bounded by a time limit.
//!
//! It must never retry and never follow redirects: each call is exactly
//! one request, and what it answered (or that it did not) is the result.
//! It is for the tests' own hosts only (loopback, or a network namespace a
//! test created).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {detail}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Nothing came back within the limit.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The request failed (refused, reset, ...): the error and its causes.
    #[error("{0}")]
    Failed(String),
}

/// A status code and the whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, as text (invalid UTF-8 replaced).
    pub body: String,
}

/// An HTTP client. Cheap to clone; clones share nothing but configuration.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient { inner: Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http() }
    }
}

impl HttpClient {
    /// A client that opens a new connection for every request.
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    /// A client like [`HttpClient::new`] whose connections come from
    /// `source` (a loopback address of the test's own, e.g. 127.0.0.3).
    pub fn from_source(source: std::net::IpAddr) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(source));
        HttpClient { inner: Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector) }
    }

    /// GET `url`, reading only the status (the body is dropped unread).
    pub async fn status(&self, url: &Uri, limit: Duration) -> Result<u16, HttpError> {
        let request = Request::get(url.clone()).body(Full::default()).map_err(|e| failed(&e))?;
        let response = tokio::time::timeout(limit, self.inner.request(request))
            .await
            .map_err(|_| HttpError::TimedOut(limit))?
            .map_err(|e| failed(&e))?;
        Ok(response.status().as_u16())
    }

    /// GET `url`: status and body, all within `limit`.
    pub async fn get(&self, url: &str, limit: Duration) -> Result<Response, HttpError> {
        let request = Request::get(parse(url)?).body(Full::default()).map_err(|e| failed(&e))?;
        self.send(request, limit).await
    }

    /// POST `json` to `url`, with `token` as bearer token when given:
    /// status and body, all within `limit`.
    pub async fn post_json(
        &self,
        url: &str,
        token: Option<&str>,
        json: &str,
        limit: Duration,
    ) -> Result<Response, HttpError> {
        let mut request = Request::post(parse(url)?).header("content-type", "application/json");
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request.body(Full::new(Bytes::from(json.to_owned()))).map_err(|e| failed(&e))?;
        self.send(request, limit).await
    }

    async fn send(&self, request: Request<Full<Bytes>>, limit: Duration) -> Result<Response, HttpError> {
        let exchange = async {
            let response = self.inner.request(request).await.map_err(|e| failed(&e))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| failed(&e))?.to_bytes();
            Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
        };
        tokio::time::timeout(limit, exchange).await.map_err(|_| HttpError::TimedOut(limit))?
    }
}

/// Parses `url` into a request target.
pub fn parse(url: &str) -> Result<Uri, HttpError> {
    url.parse()
        .map_err(|e: hyper::http::uri::InvalidUri| HttpError::InvalidUrl { url: url.to_owned(), detail: e.to_string() })
}

/// An error and its sources, e.g. "client error (Connect): tcp connect error:
/// Connection refused (os error 111)".
fn failed(error: &dyn std::error::Error) -> HttpError {
    HttpError::Failed(failover_controller::describe::with_causes(error))
}
