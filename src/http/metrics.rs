//! `GET /metrics`: counters, gauges and histograms in Prometheus' text format (`crate::metrics`),
//! on the main port (with the bearer token unless `METRICS_PUBLIC=true`) or on a listener of its
//! own (`METRICS_ADDR`, no token: the port is kept inside the cluster).

use super::AppState;
use crate::config::MetricsConfig;
use crate::error::ApiError;
use crate::metrics::Scraper;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Prometheus' text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The router of the separate listener (`METRICS_ADDR`): `/metrics` alone, without a token.
pub fn separate_router(scraper: Arc<Scraper>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(scraper): State<Arc<Scraper>>| async move {
                scrape(&scraper).await
            }),
        )
        .fallback(|| async {
            ApiError::not_found("no_such_route", "This port serves GET /metrics only.")
        })
        .with_state(scraper)
}

/// Metrics for Prometheus, in its text format. Takes the bearer token unless the service runs
/// with `METRICS_PUBLIC=true`; with `METRICS_ADDR` it is served there instead, and this route
/// answers 404.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The metrics (the README lists them)", body = String, content_type = "text/plain"),
        (status = 403, body = crate::error::Detail),
        (status = 404, description = "Served on METRICS_ADDR instead", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    match state.metrics_config {
        MetricsConfig::MainPortPublic => {}
        MetricsConfig::MainPortWithToken => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or(""));
            state.auth.check_header(authorization)?;
        }
        MetricsConfig::Separate(_) => {
            return Err(ApiError::not_found(
                "no_such_route",
                "/metrics is served on the port of METRICS_ADDR, not this one.",
            ));
        }
    }
    Ok(scrape(&state.metrics).await)
}

async fn scrape(scraper: &Scraper) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        scraper.render().await,
    )
}
