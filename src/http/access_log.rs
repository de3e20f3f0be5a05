//! One log line per request: method, matched route, status, latency and request id; and the
//! request timeout for requests that carry a body.
//!
//! The route is the template (`/api-key/{api_key}`), never the raw URI: paths and query strings
//! can carry secrets (the API key, OAuth verifiers and codes).
//!
//! Both are hand-written tower services rather than `axum::middleware::from_fn`: `from_fn` boxes
//! a future and the inner service on every request, and this runs on every request, the cheap
//! `GET /resource` included (see BENCHMARKS.md).

use axum::extract::{MatchedPath, Request};
use axum::http::header::{ORIGIN, VARY};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What browsers' CORS answers vary on; set on answers to requests without `Origin` too, so that
/// a cache never hands such an answer to a browser.
const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// Wraps every route and the fallback (`Router::layer` runs after routing, so the matched route is
/// already known): sees every request, including ones no route matched, and logs it. Requests
/// with an `Origin` header (browsers) go through `cors`; the others skip it: axum clones the
/// whole per-route service stack for every request, and a `CorsLayer` clone allocates.
#[derive(Clone)]
pub struct AccessLogLayer {
    pub cors: Arc<CorsLayer>,
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            cors: self.cors.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    cors: Arc<CorsLayer>,
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        // A shared `Arc<str>`: copying it costs no allocation.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(id) if is_safe_request_id(id.as_bytes()) => id.clone(),
            _ => generate_request_id(),
        };
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let inner = if request.headers().contains_key(ORIGIN) {
            // The services below are axum's handler stacks, always ready (`poll_ready` above).
            MaybeCors::Cors {
                inner: self.cors.layer(self.inner.clone()).call(request),
            }
        } else {
            MaybeCors::Plain {
                inner: self.inner.call(request),
            }
        };
        AccessLogFuture {
            inner,
            started,
            method,
            route,
            request_id: Some(request_id),
        }
    }
}

pin_project! {
    #[project = MaybeCorsProj]
    enum MaybeCors<F> {
        Plain { #[pin] inner: F },
        Cors { #[pin] inner: tower_http::cors::ResponseFuture<F> },
    }
}

pin_project! {
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: MaybeCors<F>,
        started: Instant,
        method: Method,
        route: Option<MatchedPath>,
        request_id: Option<HeaderValue>,
    }
}

impl<F> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(match this.inner.project() {
            MaybeCorsProj::Plain { inner } => inner.poll(cx),
            MaybeCorsProj::Cors { inner } => inner.poll(cx),
        });
        if !response.headers().contains_key(VARY) {
            response.headers_mut().insert(VARY, CORS_VARY);
        }
        let request_id = this.request_id.take().expect("polled after completion");
        let route = this.route.as_ref().map_or("(no route)", |r| r.as_str());
        let latency_ms = this.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            method = %this.method,
            route,
            status = response.status().as_u16(),
            latency_ms = %format_args!("{latency_ms:.2}"),
            request_id = request_id.to_str().unwrap_or_default(),
            "request"
        );
        response.headers_mut().insert(REQUEST_ID, request_id);
        Poll::Ready(Ok(response))
    }
}

/// A fresh UUID v4 from the thread-local generator: no system call per request (request ids need
/// not be secret), formatted on the stack.
fn generate_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let text = uuid.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a UUID is visible ASCII")
}

/// Bounds requests that carry a body by the request timeout: a client that uploads slowly gets
/// 408. Requests without a body skip the timer: arming one costs every cheap GET.
#[derive(Clone, Copy)]
pub struct RequestTimeoutLayer {
    pub timeout: Duration,
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> RequestTimeout<S> {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<Request> for RequestTimeout<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestTimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let bodiless = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let inner = self.inner.call(request);
        if bodiless {
            RequestTimeoutFuture::Untimed { inner }
        } else {
            RequestTimeoutFuture::Timed {
                inner: tokio::time::timeout(self.timeout, inner),
            }
        }
    }
}

pin_project! {
    #[project = RequestTimeoutProj]
    pub enum RequestTimeoutFuture<F> {
        Untimed { #[pin] inner: F },
        Timed { #[pin] inner: tokio::time::Timeout<F> },
    }
}

impl<F> Future for RequestTimeoutFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RequestTimeoutProj::Untimed { inner } => inner.poll(cx),
            RequestTimeoutProj::Timed { inner } => Poll::Ready(
                ready!(inner.poll(cx))
                    .unwrap_or_else(|_elapsed| Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            ),
        }
    }
}

/// A caller's request id is echoed only if it is short and plain (it ends up in our logs).
fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_checked() {
        assert!(super::is_safe_request_id(b"9b1d-4f.x_y:1"));
        assert!(!super::is_safe_request_id(b""));
        assert!(!super::is_safe_request_id(b"a b"));
        assert!(!super::is_safe_request_id(b"x\ny"));
        assert!(!super::is_safe_request_id("a".repeat(129).as_bytes()));
    }

    #[test]
    fn generated_request_ids_are_uuids() {
        let id = super::generate_request_id();
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
        assert_ne!(id, super::generate_request_id());
    }
}
