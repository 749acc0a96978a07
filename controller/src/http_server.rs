//! Serves the HTTP endpoints ([`crate::http::router`]) with bounded
//! resources: connections admitted by [`crate::listen`] (a cap, a share of
//! it for each source, and a few seconds to send the first byte), hyper's HTTP/1 header-read timeout
//! (which also closes a kept-alive connection left idle), a request
//! timeout and (in [`crate::http::router`]) a limit of requests handled at
//! once, which `/active`, `/standby`, `/readyz` and `/healthz` stay out of. The figures are in
//! [`crate::limits`]. Every request carries its connection's remote address
//! as [`axum::extract::ConnectInfo`], for the handlers that log or limit by
//! source. With TLS ([`crate::http_tls`]) each connection first completes
//! its handshake within [`limits::HTTP_TLS_HANDSHAKE_TIMEOUT`], with the
//! certificate of the latest reload.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

use crate::limits;
use crate::listen::{self, Admission};
use crate::slots::ConnectionSlots;

/// Serves `router` on `listener`, each connection holding one of `slots`,
/// until `shutdown` resolves; then lets open connections finish for
/// up to [`limits::HTTP_SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio::sync::watch::Receiver<crate::http_tls::HttpTls>>,
    slots: ConnectionSlots,
    shutdown: impl std::future::Future<Output = ()>,
) {
    // Every request ends within the request timeout, waiting for a place
    // under the router's limit included, so each place is freed in bounded
    // time.
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits::HTTP_REQUEST_TIMEOUT))
        .service(router);
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits::HTTP_HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_buf_size(limits::HTTP_MAX_BUFFER);
    let admission = Admission { slots, first_byte_within: limits::FIRST_BYTE_WITHIN };
    let mut incoming = listen::admit(listener, admission, "http");
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let admitted = tokio::select! {
            () = &mut shutdown => break,
            admitted = incoming.recv() => admitted,
        };
        let Some(conn) = admitted else { break };
        // A socket whose peer is already gone gets the unspecified address;
        // its requests fail on the closed socket anyway.
        let remote = conn.peer_addr().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let with_remote = ServiceBuilder::new()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            })
            .service(service.clone());
        // The files of the latest reload, for this connection.
        let acceptor = tls.as_ref().map(|t| t.borrow().acceptor.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let service = TowerToHyperService::new(with_remote);
            let served = match acceptor {
                None => watcher.watch(builder.serve_connection(TokioIo::new(conn), service).into_owned()).await,
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(limits::HTTP_TLS_HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => return tracing::debug!(error = %e, %remote, "TLS handshake failed"),
                            Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
                        };
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    // Stops accepting: the listening socket closes.
    drop(incoming);
    if tokio::time::timeout(limits::HTTP_SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!(grace = ?limits::HTTP_SHUTDOWN_GRACE, "HTTP connections still open at shutdown were cut");
    }
}
