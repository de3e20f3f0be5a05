//! `GET /outbox` and `POST /outbox/retry`: what waits for Tracardi, and re-driving dead letters.

use super::AppState;
use crate::auth::Authenticated;
use crate::delivery::DeliveryStatus;
use crate::error::ApiError;
use crate::store::{OutboxCounts, StoreError, now_millis};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(outbox_status))
        .routes(routes!(retry_dead))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutboxStatus {
    #[serde(flatten)]
    pub counts: OutboxCounts,
    /// Age of the oldest event not yet delivered, in seconds.
    pub oldest_pending_age_seconds: Option<u64>,
    /// The last delivery error since start.
    pub last_error: Option<String>,
    pub delivery: DeliveryStatus,
    /// X's activity webhook: when X last delivered and last checked it.
    pub x_webhook: crate::x_activity::WebhookStatus,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Requeued {
    /// How many dead events are pending again.
    pub requeued: u64,
}

pub fn store_unavailable(e: StoreError) -> ApiError {
    ApiError::unavailable(
        "store_unavailable",
        format!("The event store cannot be read: {e}"),
    )
}

/// Counts of pending, delivering, dead and delivered events, and the delivery state.
#[utoipa::path(
    get,
    path = "/outbox",
    tag = "callback",
    security(("bearer" = [])),
    responses(
        (status = 200, body = OutboxStatus),
        (status = 403, body = crate::error::Detail),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn outbox_status(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<OutboxStatus>, ApiError> {
    let counts = state.outbox.counts().await.map_err(store_unavailable)?;
    let delivery = state.delivery.status();
    let seen = state
        .x_webhook
        .links()
        .webhook_seen()
        .await
        .map_err(store_unavailable)?;
    let now = now_millis();
    let x_webhook = crate::x_activity::WebhookStatus::of(&seen, now);
    if let Some(warning) = &x_webhook.warning {
        tracing::warn!("{warning}");
    }
    Ok(Json(OutboxStatus {
        x_webhook,
        oldest_pending_age_seconds: counts
            .oldest_pending_created
            .map(|created| (now - created).max(0) as u64 / 1000),
        last_error: delivery.last_error.clone(),
        counts,
        delivery,
    }))
}

/// Re-queue every dead event: they are delivered again, now.
#[utoipa::path(
    post,
    path = "/outbox/retry",
    tag = "callback",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Requeued),
        (status = 403, body = crate::error::Detail),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn retry_dead(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<Requeued>, ApiError> {
    let requeued = state
        .outbox
        .requeue_dead()
        .await
        .map_err(store_unavailable)?;
    state.delivery.wake();
    Ok(Json(Requeued { requeued }))
}
