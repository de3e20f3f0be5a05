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

use super::{App, AppFuture};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a client may take to send its request headers. A connection with no request in
/// flight on which no request starts for this long is closed: a client that never finishes its
/// headers is cut off after one to two times this, and so is an idle keep-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle or slow connection has to close after it was asked to.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long requests in flight may take to finish after shutdown was asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` until `shutdown` completes; then stops accepting and lets connections finish
/// their requests in flight.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let app = Arc::new(app);
    let builder = Builder::new(TokioExecutor::new());
    // Every connection holds a receiver; shutdown is a send, and the drain is over when every
    // receiver has been dropped (what hyper-util's `GracefulShutdown` does, which cannot be
    // combined with our per-connection timer).
    let (stop, stopping) = watch::channel(());
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
                tokio::spawn(serve_connection(builder.clone(), stream, peer, app.clone(), stopping.clone()));
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
    peer: SocketAddr,
    app: Arc<App>,
    stopping: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let stop_asked = stop_signal(stopping.clone());
    tokio::pin!(stop_asked);
    // Held, not polled, until the connection is done: the server's drain waits for every one.
    let _draining = stopping;
    let activity = Arc::new(Activity::default());
    let service = ConnectionService {
        app,
        activity: activity.clone(),
        peer: ConnectInfo(peer),
    };
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
            () = deadline.as_mut() => {
                let started = activity.started.load(Ordering::Relaxed);
                let busy = activity.in_flight.load(Ordering::Relaxed) > 0;
                if closing {
                    // Still open a moment after the graceful close: hyper waits for the rest of
                    // a first request's headers before it honours one. Nothing is in flight.
                    break;
                } else if started != seen || busy {
                    seen = started;
                    deadline.as_mut().reset(Instant::now() + HEADER_READ_TIMEOUT);
                } else {
                    // No request in flight and none started for a whole period: the connection
                    // is idle or its client is slow with its headers. Graceful: the tail of a
                    // response being written gets a moment to finish.
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                    deadline.as_mut().reset(Instant::now() + CLOSE_GRACE);
                }
            }
            _ = stop_asked.as_mut(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                deadline.as_mut().reset(Instant::now() + DRAIN_TIMEOUT);
            }
        }
    }
}

/// Completes when the server is asked to stop. The connection polls this on every wake-up (every
/// request), so it is a oneshot of its own: a `watch` channel's `changed()` locks the channel's
/// mutex, shared by every connection, each time it is polled. A small task waits on the watch
/// channel instead, and ends with the connection if the connection ends first.
fn stop_signal(mut stopping: watch::Receiver<()>) -> impl Future<Output = ()> {
    let (mut stop, stop_asked) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::select! {
            _ = stopping.changed() => { let _ = stop.send(()); }
            () = stop.closed() => {}
        }
    });
    async move {
        // An error means the server loop and its sender are gone: stopping too.
        let _ = stop_asked.await;
    }
}

/// What a connection's requests report to its timer.
#[derive(Default)]
struct Activity {
    /// Requests started (their headers read) so far.
    started: AtomicU64,
    /// Requests whose handler has not finished.
    in_flight: AtomicU64,
}

/// What hyper calls for each request of one connection: counts it for the connection's timer,
/// then hands it to the app. A hyper service rather than a tower one behind hyper-util's
/// `TowerToHyperService`, which clones the whole stack and drives a `Oneshot` for every request.
struct ConnectionService {
    app: Arc<App>,
    activity: Arc<Activity>,
    /// The client's address, for the limit on anonymous routes (`rate_limit`).
    peer: ConnectInfo<SocketAddr>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Counted<AppFuture>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        self.activity.started.fetch_add(1, Ordering::Relaxed);
        self.activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Counted {
            inner: self.app.handle(request),
            _in_flight: InFlight(self.activity.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's future, counted in flight until it finishes or is dropped.
    struct Counted<F> {
        #[pin]
        inner: F,
        _in_flight: InFlight,
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
