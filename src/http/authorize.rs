//! `GET /authorize`: starts a "Connect Twitter" flow and sends the visitor to X.

use super::AppState;
use super::pages;
use super::rate_limit::PublicCaller;
use super::schemas::{FlowName, TracardiId};
use crate::callback::Flow;
use crate::connect::Visitor;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(authorize))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// `oauth1` (OAuth 1.0a, the app's API Key and Secret) or `oauth2` (OAuth 2.0 with PKCE).
    #[param(required = true, inline, value_type = FlowName)]
    pub flow: Option<String>,
    /// The visitor's Tracardi profile id; the connected account is recorded on it.
    #[param(required = false, inline, value_type = TracardiId)]
    pub profile_id: Option<String>,
    /// The visitor's Tracardi session id.
    #[param(required = false, inline, value_type = TracardiId)]
    pub session_id: Option<String>,
    /// Where to send the visitor afterwards: an absolute http(s) URL whose origin is in
    /// RETURN_TO_ALLOWLIST.
    #[param(required = false, value_type = String)]
    pub return_to: Option<String>,
}

/// Start connecting the visitor's Twitter account: redirects to X's authorize page.
#[utoipa::path(
    get,
    path = "/authorize",
    tag = "connect",
    params(AuthorizeQuery),
    responses(
        (status = 302, description = "To X's authorize page"),
        (status = 400, description = "A bad flow, id or return_to", content_type = "text/html"),
        (status = 404, description = "The flow's settings are missing; the page names them (whatever else the address holds)", content_type = "text/html"),
        (status = 502, description = "X refused to start the flow; the log names the cause", content_type = "text/html"),
        (status = 503, description = "MAX_PENDING_AUTHORIZATIONS flows are waiting already (with Retry-After), or the flow could not be recorded; the visitor is asked to start again", content_type = "text/html"),
        (status = 504, description = "X did not answer in time", content_type = "text/html"),
        (status = 429, description = "Too many requests from this client (PUBLIC_RATE_LIMIT); `Retry-After` says when to try again", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn authorize(
    _: PublicCaller,
    State(state): State<AppState>,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return pages::cannot_connect("The address is malformed.");
    };
    let flow = match query.flow.as_deref() {
        Some("oauth1") => Flow::OAuth1,
        Some("oauth2") => Flow::OAuth2,
        _ => return pages::cannot_connect("The address must say flow=oauth1 or flow=oauth2."),
    };
    let visitor = Visitor {
        profile_id: query.profile_id.filter(|v| !v.is_empty()),
        session_id: query.session_id.filter(|v| !v.is_empty()),
        return_to: query.return_to.filter(|v| !v.is_empty()),
    };
    match state.connect.start(flow, visitor).await {
        Ok(url) => {
            tracing::info!(flow = flow.as_str(), "authorization started");
            pages::redirect(StatusCode::FOUND, &url)
        }
        Err(e) => e.into_response(),
    }
}
