//! `GET /x/webhook` (X's challenge-response check) and `POST /x/webhook` (X's signed
//! deliveries of account activity), both on the one URL X is given.

use super::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(crc, deliver))
}

/// Read leniently (a missing token is this service's own 400, not axum's), documented as X
/// sends it.
#[derive(Deserialize)]
pub struct CrcQuery {
    crc_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CrcAnswer {
    /// `sha256=` + base64(HMAC-SHA256(the app's consumer secret, crc_token)).
    #[schema(example = "sha256=S/mG8E9n5SjoGuCqHguvP8K8uuu5ogCPF0dOpIdyZlk=")]
    response_token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryReceipt {
    /// Events stored now, to be delivered to Tracardi.
    stored: usize,
    /// Events of this delivery stored before (X retried or replayed it): not stored again.
    repeats: usize,
    /// The body was not understood; it is kept as a dead letter for an operator.
    dead_letter: bool,
}

/// Answer X's challenge-response check (CRC).
///
/// X sends it when the webhook is registered, when it is re-validated, and periodically; a
/// webhook whose check fails gets no events. Register `{PUBLIC_URL}/x/webhook` with
/// `tracardi-twitter webhook register`.
#[utoipa::path(
    get,
    path = "/x/webhook",
    tag = "x-activity",
    params(("crc_token" = String, Query, min_length = 1, max_length = 1024,
        description = "X's challenge; a new one each time")),
    responses(
        (status = 200, body = CrcAnswer),
        (status = 400, description = "No crc_token, or one that is too long", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The app's secret is not set (TWITTER_CONSUMER_SECRET, or TWITTER_CLIENT_SECRET with X_WEBHOOK_CRC_KEY=client)", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn crc(
    State(state): State<AppState>,
    Query(query): Query<CrcQuery>,
) -> Result<Json<CrcAnswer>, ApiError> {
    let response_token = state.x_webhook.answer_crc(query.crc_token.as_deref())?;
    Ok(Json(CrcAnswer { response_token }))
}

/// Receive X's account activity (X Activity API or Account Activity API).
///
/// The body is checked against `x-twitter-webhooks-signature` (or
/// `x-twitter-webhooks-signature-oauth2`) before it is read; each activity is stored durably
/// before the 200 and delivered to Tracardi as an event on the profile linked to the account
/// (see README, "X activity"). A repeat is recognised for 7 days and stored once.
#[utoipa::path(
    post,
    path = "/x/webhook",
    tag = "x-activity",
    request_body(content = String, description = "X's JSON body, exactly as sent (the signature covers its bytes)", content_type = "application/json"),
    params(
        ("x-twitter-webhooks-signature" = Option<String>, Header, description = "sha256= + base64(HMAC-SHA256(consumer secret, body))"),
        ("x-twitter-webhooks-signature-oauth2" = Option<String>, Header, description = "The same with the OAuth 2.0 client secret")
    ),
    responses(
        (status = 200, description = "Stored (or stored before); a body not understood is kept as a dead letter", body = DeliveryReceipt),
        (status = 403, description = "No signature, or one that does not match; nothing stored", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No app secret is set to check signatures with", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body took longer than REQUEST_TIMEOUT to arrive", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Could not be stored; X will send it again", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn deliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<DeliveryReceipt>, ApiError> {
    let body = body?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signatures = crate::x_activity::Signatures {
        legacy: header("x-twitter-webhooks-signature"),
        oauth2: header("x-twitter-webhooks-signature-oauth2"),
    };
    let received = state
        .x_webhook
        .receive(body, signatures, &state.delivery)
        .await?;
    Ok(Json(DeliveryReceipt {
        stored: received.stored,
        repeats: received.repeats,
        dead_letter: received.dead_letter,
    }))
}
