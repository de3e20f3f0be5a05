//! `GET /api-key/{api_key}`: Tracardi exchanges the API key for a bearer token.

use super::AppState;
use super::rate_limit::PublicCaller;
use crate::error::{ApiError, Detail};
use axum::Json;
use axum::extract::{Path, State};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token_for_api_key))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    /// HS256 JWT to send as `Authorization: Bearer <token>`. It does not expire.
    pub access_token: String,
}

/// Exchange the API key for a token, as Tracardi's GUI does when you press "Get Secret".
#[utoipa::path(
    get,
    path = "/api-key/{api_key}",
    tag = "tracardi",
    params(("api_key" = String, Path, description = "The service's API_KEY")),
    responses(
        (status = 200, description = "The key is right", body = AccessToken),
        (status = 403, description = "Wrong key: `{\"detail\": \"Wrong Api Key\"}`", body = Detail),
        (status = 429, description = "Too many requests from this client (PUBLIC_RATE_LIMIT); `Retry-After` says when to try again", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn token_for_api_key(
    _: PublicCaller,
    State(state): State<AppState>,
    Path(api_key): Path<String>,
) -> Result<Json<AccessToken>, ApiError> {
    let token = state.auth.exchange(&api_key)?;
    Ok(Json(AccessToken {
        access_token: token.expose_secret().to_owned(),
    }))
}
