//! `POST /validate`: checks the four keys against X and says what to fix.

use super::AppState;
use super::schemas::NonBlankText;
use crate::auth::Authenticated;
use crate::error::{ApiError, FieldErrors, Problem};
use crate::twitter::credentials::Credentials;
use crate::twitter::report::ValidationReport;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(validate))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// Ask X again even if a recent answer for the same keys is remembered.
    #[serde(default)]
    pub refresh: bool,
}

/// The four keys from the app's "Keys and tokens" tab in X's Developer Console. White space around a key is
/// trimmed (with a warning); a key that is only white space is refused. Other keys are ignored.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documents the body; the handler reads it field by field to report each error.
pub struct CredentialsBody {
    #[schema(inline, value_type = NonBlankText)]
    pub api_key: String,
    #[schema(inline, value_type = NonBlankText)]
    pub api_secret: String,
    #[schema(inline, value_type = NonBlankText)]
    pub access_token: String,
    #[schema(inline, value_type = NonBlankText)]
    pub access_token_secret: String,
}

/// Reads a JSON body, answering a body that is not JSON with a form error Tracardi can show.
pub fn json_body(body: Result<Bytes, BytesRejection>) -> Result<serde_json::Value, ApiError> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|_| {
        ApiError::field("body", "Body must be json: an object with api_key, api_secret, access_token and access_token_secret")
    })
}

/// Check the keys by signing `GET /2/users/me` at X.
#[utoipa::path(
    post,
    path = "/validate",
    tag = "validation",
    params(ValidateQuery),
    request_body = CredentialsBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "X gave a verdict; `problems` says what is wrong and how to fix it", body = ValidationReport),
        (status = 400, description = "`refresh` is not true or false, or the body could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing or wrong bearer token (403, never 401: a 401 logs Tracardi's GUI user out)", body = crate::error::Detail),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT"),
        (status = 413, description = "Body larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, empty or not a string, or the body is not JSON", body = FieldErrors),
        (status = 429, description = "X rate-limited the check; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "X answered something unexpected or could not be reached", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "X did not answer within VALIDATE_TIMEOUT", body = Problem, content_type = "application/problem+json")
    )
)]
async fn validate(
    _: Authenticated,
    State(state): State<AppState>,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ValidationReport>, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::bad_request("bad_query", "refresh must be true or false"))?;
    let parsed = Credentials::from_json(&json_body(body)?).map_err(ApiError::Fields)?;
    let report = state.validator.validate(parsed, query.refresh).await?;
    Ok(Json(report))
}
