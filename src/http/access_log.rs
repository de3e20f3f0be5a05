//! The layers every request goes through: one access event per request (method, matched route,
//! status, latency and request id), the request id, CORS for browsers, the request timeout and
//! the body limits. All but the access event are tower-http's layers, configured here.
//!
//! The route is the template (`/api-key/{api_key}`), never the raw URI: paths and query strings
//! can carry secrets (the API key, OAuth verifiers and codes).
//!
//! The access event is a small tower service rather than `axum::middleware::from_fn` (which boxes
//! a future and the inner service on every request) or tower-http's `TraceLayer` (a span per
//! request, and the route and request id are not known to its `on_response`). It wraps the
//! router rather than being added with `Router::layer`, which wraps every route in another boxed
//! service that axum clones, and frees, on every request; outside the router `MatchedPath` is not
//! known yet, so [`RouteNames`] looks the route up from the same templates.

use axum::body::Body;
use axum::http::header::{ORIGIN, VARY};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

/// The header tower-http's request-id layers read and set (`SetRequestIdLayer::x_request_id`).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What browsers' CORS answers vary on; set on answers to requests without `Origin` too, so that
/// a cache never hands such an answer to a browser.
const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// The route templates the router serves, to name a request's route before the router has
/// matched it: the same `matchit` lookup axum does, on the same templates, with the templates
/// that are plain paths (all but one) compared first, which is cheaper. Each route carries its
/// metrics handles, so that counting a request needs no second lookup.
pub struct RouteNames {
    plain: Vec<Route>,
    with_parameters: matchit::Router<Route>,
    /// Requests whose path matches no route: one series for all of them, never their paths.
    unmatched: Route,
}

/// A route template and the handles of its metrics. The handles (about 3 KB: one slot per
/// method and status) live behind a box, so that the routes searched for every request stay a
/// few cache lines, as the templates alone were.
pub struct Route {
    template: Option<String>,
    metrics: Box<crate::metrics::RouteMetrics>,
}

impl Route {
    fn new(template: Option<&str>) -> Self {
        Route {
            template: template.map(str::to_owned),
            metrics: Box::new(crate::metrics::RouteMetrics::new(
                template.unwrap_or("unmatched"),
            )),
        }
    }

    /// The template, None for a path no route matches.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }
}

impl RouteNames {
    /// Panics on templates that overlap or are malformed (the router itself refuses those too).
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut names = RouteNames {
            plain: Vec::new(),
            with_parameters: matchit::Router::new(),
            unmatched: Route::new(None),
        };
        for template in templates {
            if template.contains(['{', '}']) {
                names
                    .with_parameters
                    .insert(template, Route::new(Some(template)))
                    .unwrap_or_else(|e| panic!("route {template}: {e}"));
            } else {
                names.plain.push(Route::new(Some(template)));
            }
        }
        names
    }

    /// The template that `path` matches, if any.
    pub fn lookup(&self, path: &str) -> Option<&str> {
        self.route(path).template()
    }

    /// The route that `path` matches, or the one of unmatched paths.
    pub fn route(&self, path: &str) -> &Route {
        match self
            .plain
            .iter()
            .find(|route| route.template.as_deref() == Some(path))
        {
            Some(route) => route,
            None => self
                .with_parameters
                .at(path)
                .map_or(&self.unmatched, |found| found.value),
        }
    }
}

/// Logs one event per request, the fallback's included, once its answer is ready. Requests
/// with an `Origin` header (browsers) go through `cors`; the others skip it: tower-http's
/// `CorsLayer` builds and merges its headers on every request it sees (BENCHMARKS.md).
/// Expects the request id to be set already (`SetRequestIdLayer` outside it).
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

#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    shared: Arc<AccessLogShared>,
}

impl<S, B> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = self.shared.routes.route(request.uri().path());
        let request_id = request.headers().get(X_REQUEST_ID).cloned();
        let inner = if request.headers().contains_key(ORIGIN) {
            // The inner service was made ready by `poll_ready`; the CORS service wraps a clone
            // of it, and tower-http's CORS service is ready when its inner one is.
            let inner = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, inner);
            MaybeCors::Cors {
                inner: self.shared.cors.layer(inner).call(request),
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
            request_id,
        }
    }
}

pin_project! {
    #[project = MaybeCorsProj]
    pub enum MaybeCors<F> {
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
        route: &'static Route,
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
        let elapsed = this.started.elapsed();
        this.route
            .metrics
            .record(this.method, response.status(), elapsed);
        let latency_ms = elapsed.as_micros() as f64 / 1000.0;
        // The text values as `Display` (`%`): `Debug` would quote and escape them character by
        // character, the costliest part of the line (BENCHMARKS.md), and they are plain ASCII
        // by where they come from: HTTP method tokens, our own route templates, request ids
        // checked by `drop_unsafe_request_id` or made by us. The JSON format escapes anyway.
        tracing::info!(
            method = %this.method,
            route = %this.route.template().unwrap_or("(no route)"),
            status = response.status().as_u16(),
            latency_ms,
            request_id = %this
                .request_id
                .as_ref()
                .and_then(|id| id.to_str().ok())
                .unwrap_or_default(),
            "request"
        );
        Poll::Ready(Ok(response))
    }
}

/// Removes a caller's `x-request-id` that is not short and plain, so that `SetRequestIdLayer`
/// replaces it with a fresh one: the id ends up in our logs and in our answer.
pub fn drop_unsafe_request_id<B>(mut request: Request<B>) -> Request<B> {
    if let Some(id) = request.headers().get(X_REQUEST_ID)
        && !is_safe_request_id(id.as_bytes())
    {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

/// A caller's request id is echoed only if it is short and plain (it ends up in our logs).
fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// `routes` with a body limit, tower-http's `RequestBodyLimitLayer`: a declared `Content-Length`
/// over `limit` is refused at once (413, before a byte of the body is read), a streamed body when
/// it passes `limit`. axum's own default limit (2 MiB) is lifted, so `limit` is the only one; the
/// 413 names `limit` in a problem body (tower-http's is plain text). One `layer` call: each adds
/// a boxed service to every route, cloned per request.
pub fn with_body_limit<S>(
    routes: utoipa_axum::router::OpenApiRouter<S>,
    limit: usize,
) -> utoipa_axum::router::OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes.layer(
        tower::ServiceBuilder::new()
            .map_response(
                move |response: Response<tower_http::limit::ResponseBody<Body>>| {
                    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large(limit).into_response()
                    } else {
                        response.into_response()
                    }
                },
            )
            .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
            .layer(axum::extract::DefaultBodyLimit::disable()),
    )
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
    fn unsafe_request_ids_are_dropped_safe_ones_kept() {
        let with_id = |id: &str| {
            axum::http::Request::get("/health")
                .header("x-request-id", id)
                .body(())
                .unwrap()
        };
        let kept = super::drop_unsafe_request_id(with_id("abc-123"));
        assert_eq!(kept.headers()["x-request-id"], "abc-123");
        let dropped = super::drop_unsafe_request_id(with_id("a b \"quoted\""));
        assert!(!dropped.headers().contains_key("x-request-id"));
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

    #[test]
    fn the_limit_is_named_in_binary_units() {
        let detail = |limit| match super::too_large(limit) {
            crate::error::ApiError::Problem(p) => p.detail,
            other => panic!("{other:?}"),
        };
        assert!(detail(64 * 1024).contains("(64 KiB)"));
        assert!(detail(16 << 20).contains("(16 MiB)"));
    }
}
