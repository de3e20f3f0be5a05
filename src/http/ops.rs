//! Operations: liveness, readiness and the OpenAPI specification.

use super::AppState;
use crate::delivery::{DeliveryStatus, WorkerState};
use crate::store::{StoreHealth, StoreState};
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
    /// True when nothing blocks the service: callbacks can be stored and, when delivery is
    /// configured, the delivery worker runs. Trouble at Tracardi's end does not make the service
    /// unready: callbacks are still taken and kept; `delivery` shows the trouble.
    pub ready: bool,
    /// What blocks the service, each in a sentence saying what is wrong; empty when ready.
    pub problems: Vec<String>,
    pub store: StoreHealth,
    pub delivery: DeliveryStatus,
}

/// What blocks the service, from the store's and the worker's own accounts. Pure.
pub fn problems(store: &StoreHealth, delivery: &DeliveryStatus) -> Vec<String> {
    let mut problems = Vec::new();
    let why = || store.problem.as_deref().unwrap_or("unknown");
    match store.state {
        StoreState::Ok => {}
        StoreState::NotWritable => problems.push(format!(
            "the event store cannot write ({}): callbacks are refused until it can; free space in DATA_DIR",
            why()
        )),
        StoreState::NewerSchema | StoreState::Closed => problems.push(why().to_owned()),
    }
    match delivery.worker {
        WorkerState::Running | WorkerState::NotConfigured => {}
        WorkerState::Stopped => problems.push("the delivery worker is not running".to_owned()),
        WorkerState::Restarting => problems.push(
            "the delivery worker is not running: it stopped and is being started again (see the log)"
                .to_owned(),
        ),
    }
    problems
}

/// Readiness: nothing blocks the service; and how delivery to Tracardi fares.
// It reads what the store and the worker keep up to date, and runs no query: probes never wait
// behind callbacks, nor delay them.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Something blocks the service: see `problems`", body = Readiness)
    ))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let store = state.outbox.health();
    let delivery = state.delivery.status();
    let problems = problems(&store, &delivery);
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready: problems.is_empty(),
            problems,
            store,
            delivery,
        }),
    )
}

/// The OpenAPI specification of this service, generated from its code.
pub async fn openapi_json(spec: Arc<String>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.as_str().to_owned(),
    )
}
