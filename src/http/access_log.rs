//! One log line per request: method, matched route, status, latency and request id.
//!
//! The route is the template (`/api-key/{api_key}`), never the raw URI: paths and query strings
//! can carry secrets (the API key, OAuth verifiers and codes).

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// The matched route, carried out on the response for the outer logging layer.
#[derive(Clone)]
struct Route(String);

/// Runs inside the router, where the matched route is known.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Wraps everything: sees every request, including ones no route matched.
pub async fn log_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_safe_request_id(id))
        .map(str::to_owned)
        // From the thread-local generator: no system call per request (ids need not be secret).
        .unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string()
        });
    let header = HeaderValue::from_str(&request_id).expect("checked or generated as visible ASCII");
    request.headers_mut().insert(REQUEST_ID, header.clone());

    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span.clone()).await;
    response.headers_mut().insert(REQUEST_ID, header);

    let route = response
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str())
        .unwrap_or("(no route)");
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(%method, route, status, latency_ms = format!("{latency_ms:.2}"), "request")
    });
    response
}

/// Bodies are read inside handlers, so a client that uploads slowly is cut off by this timeout
/// (408). Requests without a body skip it: arming a timer costs every cheap GET.
pub async fn request_timeout(
    axum::extract::State(timeout): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// A caller's request id is echoed only if it is short and plain (it ends up in our logs).
fn is_safe_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_checked() {
        assert!(super::is_safe_request_id("9b1d-4f.x_y:1"));
        assert!(!super::is_safe_request_id(""));
        assert!(!super::is_safe_request_id("a b"));
        assert!(!super::is_safe_request_id("x\ny"));
        assert!(!super::is_safe_request_id(&"a".repeat(129)));
    }
}
