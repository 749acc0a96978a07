//! The small servers this binary runs as inside the namespaces: a
//! stand-in application on each site, and for keepalived an agent that
//! answers `/active` by whether this host holds the VIP.
//!
//! They serve through the tests' one HTTP server ([`http_stub`]) and run
//! until killed; they must never do anything but answer.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use axum::http::{StatusCode, Uri};
use axum::Router;
use failover_tests::http_stub;

fn serve(listen: SocketAddr, router: Router) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(http_stub::serve_at(listen, router)).with_context(|| format!("serving on {listen}"))
}

/// A stand-in application: answers every request 200 with its name.
pub fn app(listen: SocketAddr, name: String) -> anyhow::Result<()> {
    serve(listen, Router::new().fallback(move || async move { name }))
}

/// For keepalived: answers /active with 200 while the VIP is assigned in
/// this namespace, 503 otherwise.
pub fn vip_agent(listen: SocketAddr, vip: Ipv4Addr) -> anyhow::Result<()> {
    serve(
        listen,
        Router::new().fallback(move |uri: Uri| async move {
            // The VIP is ours exactly when we can bind to it.
            let held = std::net::UdpSocket::bind((vip, 0)).is_ok();
            if uri.path() == "/active" && held {
                (StatusCode::OK, "active\n")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not active\n")
            }
        }),
    )
}
