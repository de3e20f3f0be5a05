//! One log line per request: method, matched route, status, latency and request id; and the
//! limits on requests that carry a body (size and time).
//!
//! The route is the template (`/api-key/{api_key}`), never the raw URI: paths and query strings
//! can carry secrets (the API key, OAuth verifiers and codes).
//!
//! These run on every request, the cheap `GET /resource` included, so they are built for cost
//! (BENCHMARKS.md):
//! - hand-written tower services rather than `axum::middleware::from_fn`, which boxes a future
//!   and the inner service on every request;
//! - wrapped around the router rather than added with `Router::layer`, which wraps every route
//!   in another boxed service that axum clones, and frees, on every request. Outside the router
//!   the matched route is not known yet, so [`RouteNames`] looks it up from the same templates;
//! - the line itself formatted by hand (`telemetry::log_access`), not by `tracing`'s
//!   subscriber: at about 2 µs a line, that cost as much as the rest of the stack.

use crate::telemetry::{self, AccessRecord};
use axum::extract::DefaultBodyLimit;
use axum::http::header::{ORIGIN, VARY};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
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

/// The route templates the router serves, to name a request's route before the router has
/// matched it: the same `matchit` lookup axum does, on the same templates, with the templates
/// that are plain paths (all but one) compared first, which is cheaper.
pub struct RouteNames {
    plain: Vec<String>,
    with_parameters: matchit::Router<String>,
}

impl RouteNames {
    /// Panics on templates that overlap or are malformed (the router itself refuses those too),
    /// and on templates that would need escaping in a log line.
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut names = RouteNames {
            plain: Vec::new(),
            with_parameters: matchit::Router::new(),
        };
        for template in templates {
            assert!(
                telemetry::is_plain(template),
                "route {template:?} needs escaping"
            );
            if template.contains(['{', '}']) {
                names
                    .with_parameters
                    .insert(template, template.to_owned())
                    .unwrap_or_else(|e| panic!("route {template}: {e}"));
            } else {
                names.plain.push(template.to_owned());
            }
        }
        names
    }

    /// The template that `path` matches, if any.
    pub fn lookup(&self, path: &str) -> Option<&str> {
        match self.plain.iter().find(|template| **template == path) {
            Some(template) => Some(template),
            None => self
                .with_parameters
                .at(path)
                .ok()
                .map(|found| &**found.value),
        }
    }
}

/// Wraps the whole router (the fallback included), so it sees every request and logs it.
/// Requests with an `Origin` header (browsers) go through `cors`; the others skip it: a
/// `CorsLayer`'s service is built per request, and building it allocates.
#[derive(Clone)]
pub struct AccessLogLayer(Arc<AccessLogShared>);

struct AccessLogShared {
    cors: CorsLayer,
    routes: &'static RouteNames,
}

impl AccessLogLayer {
    pub fn new(cors: CorsLayer, routes: &'static RouteNames) -> Self {
        Self(Arc::new(AccessLogShared { cors, routes }))
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            shared: self.0.clone(),
        }
    }
}

pub struct AccessLog<S> {
    inner: S,
    shared: Arc<AccessLogShared>,
}

impl<S> AccessLog<S> {
    /// Handles one request. Takes `&self`, as hyper's services do (`server.rs` calls it for each
    /// request): only the inner service is cloned for the call, a handle to the router.
    pub fn handle<B>(&self, request: Request<B>) -> AccessLogFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response, Error = Infallible> + Clone,
    {
        let started = Instant::now();
        let method = request.method().clone();
        let route = self.shared.routes.lookup(request.uri().path());
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(id) if is_safe_request_id(id.as_bytes()) => id.clone(),
            _ => generate_request_id(),
        };
        // The services below are the router and `BodyLimits`, always ready: no `poll_ready`.
        let inner = if request.headers().contains_key(ORIGIN) {
            MaybeCors::Cors {
                inner: self.shared.cors.layer(self.inner.clone()).call(request),
            }
        } else {
            MaybeCors::Plain {
                inner: self.inner.clone().call(request),
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
        route: Option<&'static str>,
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
        response.headers_mut().entry(VARY).or_insert(CORS_VARY);
        let request_id = this.request_id.take().expect("polled after completion");
        telemetry::log_access(&AccessRecord {
            method: this.method.as_str(),
            route: this.route.unwrap_or("(no route)"),
            status: response.status().as_u16(),
            latency: this.started.elapsed(),
            request_id: request_id.to_str().unwrap_or_default(),
        });
        response.headers_mut().insert(REQUEST_ID, request_id);
        Poll::Ready(Ok(response))
    }
}

/// A fresh UUID v4, without a system call and in a few instructions: request ids must be unique,
/// not unguessable, so a per-thread SplitMix64 sequence seeded from the OS does (a collision
/// needs two threads' random starting points to come within a few billion steps of each other
/// in 2^64).
fn generate_request_id() -> HeaderValue {
    thread_local! {
        static SPLITMIX: std::cell::Cell<u64> = std::cell::Cell::new(rand::random());
    }
    let next = || {
        SPLITMIX.with(|state| {
            let seed = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(seed);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let random = (u128::from(next()) << 64 | u128::from(next())).to_le_bytes();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let uuid = uuid::Builder::from_random_bytes(random).into_uuid();
    let text = uuid.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a UUID is visible ASCII")
}

/// Bounds every request in time (408 past `timeout`: a client that uploads slowly, or a handler
/// that hangs) and the ones that carry a body in size: 413 at once when the declared
/// `Content-Length` is over the route's limit, else through axum's extractors when the body
/// streamed so far passes it. The routes in `large_body_routes` take Tracardi's whole context
/// and have a limit of their own.
#[derive(Clone, Copy)]
pub struct BodyLimitsLayer {
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub large_body_routes: &'static [&'static str],
    pub max_large_body_bytes: usize,
}

impl<S> Layer<S> for BodyLimitsLayer {
    type Service = BodyLimits<S>;

    fn layer(&self, inner: S) -> BodyLimits<S> {
        BodyLimits {
            inner,
            limits: *self,
        }
    }
}

#[derive(Clone)]
pub struct BodyLimits<S> {
    inner: S,
    limits: BodyLimitsLayer,
}

impl BodyLimitsLayer {
    /// The largest body the route at `path` takes.
    fn limit_for(&self, path: &str) -> usize {
        if self.large_body_routes.contains(&path) {
            self.max_large_body_bytes
        } else {
            self.max_body_bytes
        }
    }
}

impl<S, B> Service<Request<B>> for BodyLimits<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BodyLimitsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let bodiless = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        // The router is always ready (`poll_ready` above).
        let inner = if bodiless {
            self.inner.call(request)
        } else {
            let limit = self.limits.limit_for(request.uri().path());
            if declared_length(&request).is_some_and(|length| length > limit as u64) {
                // Refused before a byte of the body is read: no waiting for an upload that
                // would be thrown away.
                return BodyLimitsFuture::Refused {
                    response: Some(too_large(limit).into_response()),
                };
            }
            DefaultBodyLimit::max(limit)
                .layer(self.inner.clone())
                .call(request)
        };
        BodyLimitsFuture::Timed {
            inner: tokio::time::timeout(self.limits.timeout, inner),
        }
    }
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The 413 for a body over `limit` bytes.
pub fn too_large(limit: usize) -> crate::error::ApiError {
    let limit = if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit.div_ceil(1 << 10))
    };
    crate::error::ApiError::payload_too_large(format!(
        "The request body is larger than this endpoint takes ({limit}); for /plugin/run and \
         /plugin/validate the limit is the PLUGIN_BODY_LIMIT setting."
    ))
}

pin_project! {
    #[project = BodyLimitsProj]
    pub enum BodyLimitsFuture<F> {
        Timed { #[pin] inner: tokio::time::Timeout<F> },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for BodyLimitsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BodyLimitsProj::Timed { inner } => Poll::Ready(
                ready!(inner.poll(cx))
                    .unwrap_or_else(|_elapsed| Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            ),
            BodyLimitsProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
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
    fn routes_are_named_by_their_templates() {
        let names = super::RouteNames::new(["/resource", "/api-key/{api_key}", "/outbox/retry"]);
        let named = |path| names.lookup(path);
        assert_eq!(named("/resource"), Some("/resource"));
        assert_eq!(named("/api-key/secret-value"), Some("/api-key/{api_key}"));
        assert_eq!(named("/outbox/retry"), Some("/outbox/retry"));
        assert_eq!(named("/outbox"), None);
        assert_eq!(named("/resource/"), None);
        assert_eq!(named("/api-key/a/b"), None);
    }

    /// Every request is bounded in time, one without a body too (a GET whose handler hangs).
    #[tokio::test]
    async fn requests_without_a_body_are_timed_too() {
        use tower::{Layer, Service};
        let layer = super::BodyLimitsLayer {
            timeout: std::time::Duration::from_millis(100),
            max_body_bytes: 1024,
            large_body_routes: &[],
            max_large_body_bytes: 1024,
        };
        let hangs = tower::service_fn(|_: axum::http::Request<()>| {
            std::future::pending::<Result<axum::response::Response, std::convert::Infallible>>()
        });
        let request = axum::http::Request::get("/authorize").body(()).unwrap();
        let response = layer.layer(hangs).call(request).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
    }

    #[test]
    fn generated_request_ids_are_uuids() {
        let id = super::generate_request_id();
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
        let ids: std::collections::HashSet<_> =
            (0..10_000).map(|_| super::generate_request_id()).collect();
        assert_eq!(ids.len(), 10_000, "request ids repeat");
        assert!(!ids.contains(&id));
        let version_4 = ids.iter().all(|id| {
            uuid::Uuid::parse_str(id.to_str().unwrap())
                .unwrap()
                .get_version_num()
                == 4
        });
        assert!(version_4);
    }
}
