//! Operations: liveness, readiness and the OpenAPI specification.

use super::AppState;
use crate::delivery::DeliveryStatus;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
    pub version: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// True when callbacks can be stored. Delivery trouble does not make the service unready:
    /// callbacks are still taken and kept; `delivery` shows the trouble.
    pub ready: bool,
    /// `ok`, or why the event store cannot be used.
    pub store: String,
    pub delivery: DeliveryStatus,
}

/// Readiness: the event store works; and how delivery to Tracardi fares.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The event store cannot be used", body = Readiness)
    ))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let delivery = state.delivery.status();
    match state.outbox.counts().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Readiness {
                ready: true,
                store: "ok".into(),
                delivery,
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                store: e.to_string(),
                delivery,
            }),
        ),
    }
}

/// The OpenAPI specification of this service, generated from its code.
pub async fn openapi_json(spec: Arc<String>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.as_str().to_owned(),
    )
}
