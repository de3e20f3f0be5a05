//! The HTTP server loop: hyper with a header-read timeout and graceful shutdown.
//!
//! `axum::serve` sets no timer, so a client that sends its headers slowly would hold a
//! connection forever. Here a connection on which no request starts for `HEADER_READ_TIMEOUT`
//! is closed; the whole request then runs under the router's request timeout (408).
//!
//! hyper has a `header_read_timeout` of its own, but it arms a fresh timer (a boxed `Sleep`,
//! registered in and removed from tokio's timer wheel) for every request and re-polls the socket
//! after each response: about 1 µs per request, a sixth of what a bare handler costs in total
//! (BENCHMARKS.md). Here each connection has one timer, which fires at most once per
//! `HEADER_READ_TIMEOUT`; requests only bump a counter.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a client may take to send its request headers. A connection on which no request
/// starts within this time (counted from the start of its previous request, or from the
/// connection) is closed gracefully: after between one and two times this, a client that never
/// finishes its headers is cut off, and an idle keep-alive connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish after shutdown was asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` until `shutdown` completes; then stops accepting and lets connections finish
/// their requests in flight.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let builder = Builder::new(TokioExecutor::new());
    // Every connection holds a receiver; shutdown is a send, and the drain is over when every
    // receiver has been dropped (what hyper-util's `GracefulShutdown` does, which cannot be
    // combined with our per-connection timer).
    let (stop, stopping) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // E.g. out of file descriptors: wait a moment rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                tokio::spawn(serve_connection(builder.clone(), stream, router.clone(), stopping.clone()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(stopping);
    stop.send_replace(());
    if tokio::time::timeout(DRAIN_TIMEOUT, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?} were cut off");
    }
}

/// Serves one connection until it closes, is idle for too long, or the server stops.
async fn serve_connection(
    builder: Builder<TokioExecutor>,
    stream: TcpStream,
    router: Router,
    mut stopping: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let started = Arc::new(AtomicU64::new(0));
    let service = TowerToHyperService::new(CountRequests {
        inner: router,
        started: started.clone(),
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let deadline = tokio::time::sleep(HEADER_READ_TIMEOUT);
    tokio::pin!(deadline);
    let mut seen = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            _ = connection.as_mut() => break,
            () = deadline.as_mut(), if !closing => {
                let now = started.load(Ordering::Relaxed);
                if now == seen {
                    // Graceful: a response being written is finished first; a connection waiting
                    // for (the rest of) a request's headers is closed at once.
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    seen = now;
                    deadline.as_mut().reset(Instant::now() + HEADER_READ_TIMEOUT);
                }
            }
            _ = stopping.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Counts the requests that start on a connection (their headers have been read).
#[derive(Clone)]
struct CountRequests<S> {
    inner: S,
    started: Arc<AtomicU64>,
}

impl<S, R> tower::Service<R> for CountRequests<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}
