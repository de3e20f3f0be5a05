//! The HTTP server loop: hyper-util's `auto::Builder` (HTTP/1.1 and HTTP/2) with hyper's
//! `header_read_timeout` and hyper-util's `GracefulShutdown`.
//!
//! Why not `axum::serve`: it sets no header-read timeout, so a client that sends its headers
//! slowly (or opens a connection and sends nothing) would hold a connection forever. hyper's
//! HTTP/1 `header_read_timeout` runs while hyper waits for a request's head, the first one and
//! each one after on a kept-alive connection: a client that never finishes its headers and an
//! idle connection are both closed after `header_read_timeout`. hyper does not start it before
//! `auto::Builder` has seen the first bytes (it reads them to tell HTTP/1 from HTTP/2), so a
//! connection that sends nothing at all is given the same time here, by one timer per
//! connection. HTTP/2 connections (prior knowledge only; no known client of this service uses
//! them) are bounded by HTTP/2 keep-alive pings instead.
//!
//! hyper arms a timer (a boxed `Sleep`) for every request's head; that costs about 1 µs per
//! request on this machine (BENCHMARKS.md): paid for being the maintained implementation.

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;
use tower_http::add_extension::AddExtensionLayer;

/// How long requests in flight may take to finish after shutdown was asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` until `shutdown` completes; then stops accepting and lets connections finish
/// their requests in flight. A connection may wait `header_read_timeout` for each request's
/// headers.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_read_timeout)
        .keep_alive_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // E.g. out of file descriptors: wait a moment rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // The client's address, for the limit on anonymous routes (`rate_limit`).
                let service = TowerToHyperService::new(
                    AddExtensionLayer::new(ConnectInfo(peer)).layer(app.clone()),
                );
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    if !first_bytes_within(&stream, header_read_timeout).await {
                        return;
                    }
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    // Errors are the client's (reset, malformed, too slow): nothing to log.
                    let _ = watcher.watch(connection).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?} were cut off");
    }
}

/// Whether the client sent anything within `limit` (see the module's note); false also when
/// it closed the connection.
async fn first_bytes_within(stream: &TcpStream, limit: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, stream.peek(&mut first)).await,
        Ok(Ok(1..))
    )
}
