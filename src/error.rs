//! One error type for every handler; its `IntoResponse` is the only place that picks a status.
//!
//! Three shapes, because three kinds of caller read them:
//! - auth failures: 403 `{"detail": "..."}` (Tracardi's GUI logs its user out on a 401);
//! - form errors: 422 `{"<field>": "Message"}` (the GUI shows each under its form field);
//! - everything else: `application/problem+json` (RFC 9457) that says what happened.
//!
//! No variant holds a secret: messages are written by this service, never copied from input.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed or wrong credentials for this service.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Field id → message, as the Tracardi GUI expects them.
    #[error("invalid fields: {0:?}")]
    Fields(BTreeMap<String, String>),
    #[error("{0}")]
    Problem(Problem),
    /// For Tracardi's microservice endpoints: `{"detail": "..."}` with this status, the shape its
    /// GUI shows as a message and its API passes on.
    #[error("{1}")]
    Detail(StatusCode, String),
    /// FastAPI's request-validation shape, `422 {"detail": [{"type", "loc", "msg", "input"}]}`,
    /// which Tracardi's GUI reads for a missing query parameter.
    #[error("request validation failed")]
    RequestValidation(Vec<serde_json::Value>),
}

/// An RFC 9457 problem, with a stable `code` that scripts can match on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable name of the problem, e.g. `x_timeout`.
    pub code: &'static str,
    /// Seconds to wait before trying again, also sent as `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.code, self.detail)
    }
}

/// The 403 body, as FastAPI's `HTTPException` writes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Detail {
    pub detail: String,
}

/// A flat map of form field ids to messages, e.g. `{"api_key": "Field required"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"api_key": "Field required"}))]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Fields(BTreeMap::from([(field.into(), message.into())]))
    }

    fn problem(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Problem(Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            retry_after: None,
        })
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", detail)
    }

    pub fn too_many_requests(
        code: &'static str,
        detail: impl Into<String>,
        retry_after: u64,
    ) -> Self {
        let mut error = Self::problem(StatusCode::TOO_MANY_REQUESTS, code, detail);
        if let ApiError::Problem(p) = &mut error {
            p.retry_after = Some(retry_after);
        }
        error
    }

    pub fn bad_gateway(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::BAD_GATEWAY, code, detail)
    }

    pub fn gateway_timeout(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::GATEWAY_TIMEOUT, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// Required query parameters are missing, as FastAPI reports them: one item each.
    pub fn missing_query(names: &[&str]) -> Self {
        ApiError::RequestValidation(
            names
                .iter()
                .map(|name| {
                    serde_json::json!({
                        "type": "missing",
                        "loc": ["query", name],
                        "msg": "Field required",
                        "input": null,
                    })
                })
                .collect(),
        )
    }

    /// For faults of this service. The detail must not carry input or secrets.
    pub fn internal(code: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::INTERNAL_SERVER_ERROR, code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Forbidden(detail) => (
                StatusCode::FORBIDDEN,
                axum::Json(Detail {
                    detail: detail.to_owned(),
                }),
            )
                .into_response(),
            ApiError::Detail(status, detail) => {
                (status, axum::Json(Detail { detail })).into_response()
            }
            ApiError::RequestValidation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(serde_json::json!({ "detail": errors })),
            )
                .into_response(),
            ApiError::Fields(fields) => {
                (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(fields)).into_response()
            }
            ApiError::Problem(problem) => {
                let status = StatusCode::from_u16(problem.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_server_error() {
                    tracing::warn!(
                        code = problem.code,
                        status = problem.status,
                        "{}",
                        problem.detail
                    );
                }
                let retry_after = problem.retry_after;
                let mut response = (status, axum::Json(problem)).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                );
                if let Some(seconds) = retry_after {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}

/// A connect flow that cannot go on is a page for the visitor (the words in `http::pages`);
/// the status, and what the operator's log says, are decided here.
impl IntoResponse for crate::connect::ConnectError {
    fn into_response(self) -> Response {
        use crate::connect::ConnectError;
        let status = match &self {
            ConnectError::NotConfigured { flow, missing } => {
                tracing::warn!(
                    flow,
                    "a visitor asked for a connect flow that is not configured: set {missing}"
                );
                StatusCode::NOT_FOUND
            }
            ConnectError::BadRequest(_) | ConnectError::Stale { .. } | ConnectError::Forged => {
                StatusCode::BAD_REQUEST
            }
            ConnectError::Upstream {
                cause,
                gateway_timeout,
            } => {
                tracing::error!(cause = %cause, "a connect flow failed at X");
                if *gateway_timeout {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                }
            }
            ConnectError::Store(cause) => {
                tracing::error!(cause = %cause, "a connect flow could not use the store");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ConnectError::Busy => {
                tracing::warn!(
                    "MAX_PENDING_AUTHORIZATIONS connect flows are waiting for their visitors; \
                     new ones are refused until some finish or expire (AUTHORIZE_TTL)"
                );
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut response = crate::http::pages::connect_error(&self).answer(status);
        if matches!(self, ConnectError::Busy) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_BUSY_AFTER));
        }
        response
    }
}

/// When a refused connect flow (`ConnectError::Busy`) is worth trying again, in seconds.
const RETRY_BUSY_AFTER: u32 = 60;

/// A body axum could not read: too large, or cut off.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(
                "The request body is larger than this endpoint takes: 64 KiB, or \
                 PLUGIN_BODY_LIMIT for /plugin/run and /plugin/validate.",
            )
        } else {
            ApiError::bad_request("unreadable_body", "The request body could not be read.")
        }
    }
}

/// X's webhook: what is wrong with a check or a delivery, for X (or whoever sent it).
impl From<crate::x_activity::WebhookError> for ApiError {
    fn from(e: crate::x_activity::WebhookError) -> Self {
        use crate::x_activity::WebhookError;
        let detail = e.to_string();
        match e {
            WebhookError::NotConfigured { missing } => {
                tracing::warn!("X called the webhook, which is not configured: set {missing}");
                Self::not_found("webhook_not_configured", format!("{detail}."))
            }
            WebhookError::NoCrcToken => Self::bad_request(
                "crc_token_missing",
                "Give the challenge as ?crc_token=...; X sends it when it checks the webhook.",
            ),
            WebhookError::CrcTokenTooLong => Self::bad_request("crc_token_too_long", detail),
            WebhookError::Unsigned => Self::problem(
                StatusCode::FORBIDDEN,
                "signature_missing",
                "Deliveries must carry x-twitter-webhooks-signature (or \
                 x-twitter-webhooks-signature-oauth2) over the raw body; nothing was stored.",
            ),
            WebhookError::BadSignature => {
                tracing::warn!("an X webhook delivery with a wrong signature was refused");
                Self::problem(
                    StatusCode::FORBIDDEN,
                    "signature_mismatch",
                    "The signature does not match the body for this app's secret; nothing was \
                     stored.",
                )
            }
            WebhookError::Store(cause) => {
                tracing::error!(cause = %cause, "an X webhook delivery could not be stored");
                Self::unavailable(
                    "store_unavailable",
                    "The delivery could not be stored; nothing was acknowledged. Send it again.",
                )
            }
        }
    }
}
