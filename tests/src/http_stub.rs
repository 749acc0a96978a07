//! Small HTTP servers for tests: a site's application behind HAProxy
//! (answers 200 with the site's name), and a webhook endpoint that records
//! each call and answers 200, 500 or never, as told. They listen on
//! 127.0.0.1, or for the benchmark's helpers on the address given inside
//! its network namespaces. They are test servers, not part of the product.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, get};
use axum::Router;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind test server");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Serves `router` on `listen` until the process ends (for the
/// benchmark's helper processes, which run as their own programs).
pub async fn serve_at(listen: SocketAddr, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router).await
}

/// An application server that answers every GET with `name`.
pub async fn app(name: &'static str) -> SocketAddr {
    serve(Router::new().route("/", get(move || async move { name }))).await
}

/// How a webhook endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookReply {
    /// 200.
    Ok,
    /// 500.
    Fail,
    /// Never (holds the request for ten minutes).
    Hang,
}

/// One call received.
#[derive(Clone, Debug)]
pub struct HookCall {
    /// The JSON body.
    pub body: serde_json::Value,
    /// The `Idempotency-Key` header.
    pub key: String,
}

/// A webhook endpoint and the calls it received.
pub struct HookEndpoint {
    /// Its URL.
    pub url: String,
    /// Calls so far.
    pub calls: Arc<Mutex<Vec<HookCall>>>,
}

impl HookEndpoint {
    /// Starts an endpoint at `/hook` that answers as `reply`.
    pub async fn start(reply: HookReply) -> HookEndpoint {
        let calls: Arc<Mutex<Vec<HookCall>>> = Arc::default();
        let seen = calls.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                seen.lock().expect("calls").push(HookCall { body, key });
                match reply {
                    HookReply::Ok => StatusCode::OK,
                    HookReply::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                    HookReply::Hang => {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        StatusCode::OK
                    }
                }
            }
        };
        let addr = serve(Router::new().route("/hook", any(handler))).await;
        HookEndpoint { url: format!("http://{addr}/hook"), calls }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<HookCall> {
        self.calls.lock().expect("calls").clone()
    }
}
