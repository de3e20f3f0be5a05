//! `GET /authorize`: starts a "Connect Twitter" flow and sends the visitor to X.

use super::AppState;
use super::callback::{html, protect};
use super::rate_limit::PublicCaller;
use super::schemas::{FlowName, TracardiId};
use crate::callback::{Flow, page, page_with_link};
use crate::connect::{ConnectError, Visitor};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
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
        return html(
            StatusCode::BAD_REQUEST,
            page("Cannot connect", "The address is malformed.", None),
        );
    };
    let flow = match query.flow.as_deref() {
        Some("oauth1") => Flow::OAuth1,
        Some("oauth2") => Flow::OAuth2,
        _ => {
            return html(
                StatusCode::BAD_REQUEST,
                page(
                    "Cannot connect",
                    "The address must say flow=oauth1 or flow=oauth2.",
                    None,
                ),
            );
        }
    };
    let visitor = Visitor {
        profile_id: query.profile_id.filter(|v| !v.is_empty()),
        session_id: query.session_id.filter(|v| !v.is_empty()),
        return_to: query.return_to.filter(|v| !v.is_empty()),
    };
    match state.connect.start(flow, visitor).await {
        Ok(url) => {
            tracing::info!(flow = flow.as_str(), "authorization started");
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(location) = HeaderValue::from_str(&url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            protect(response)
        }
        Err(e) => connect_error_page(e),
    }
}

/// The page a visitor sees when a connect flow cannot go on; the operator's log says why.
pub fn connect_error_page(error: ConnectError) -> Response {
    match error {
        ConnectError::NotConfigured { flow, missing } => {
            tracing::warn!(
                flow,
                "a visitor asked for a connect flow that is not configured: set {missing}"
            );
            html(
                StatusCode::NOT_FOUND,
                page(
                    "Connecting Twitter is not set up",
                    &format!(
                        "This service does not run the {flow} flow yet: its operator must set {missing}."
                    ),
                    None,
                ),
            )
        }
        ConnectError::BadRequest(message) => html(
            StatusCode::BAD_REQUEST,
            page("Cannot connect", &message, None),
        ),
        ConnectError::Stale { restart } => html(
            StatusCode::BAD_REQUEST,
            page_with_link(
                "This link has expired",
                "This Twitter sign-in has expired or was already used, so nothing was connected.",
                "Start again",
                &restart,
            ),
        ),
        ConnectError::Forged => html(
            StatusCode::BAD_REQUEST,
            page(
                "Cannot connect",
                "This answer from Twitter does not belong to a sign-in started here, so nothing was connected.",
                None,
            ),
        ),
        ConnectError::Upstream {
            cause,
            gateway_timeout,
        } => {
            tracing::error!(cause = %cause, "a connect flow failed at X");
            let status = if gateway_timeout {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            html(
                status,
                page(
                    "Twitter did not confirm the connection",
                    "Nothing was connected. Please try again later; if it keeps failing, tell the site's team.",
                    None,
                ),
            )
        }
        ConnectError::Store(cause) => {
            tracing::error!(cause = %cause, "a connect flow could not use the store");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Please try again",
                    "The connection could not be recorded just now. Please start again in a moment.",
                    None,
                ),
            )
        }
        ConnectError::Busy => {
            tracing::warn!(
                "MAX_PENDING_AUTHORIZATIONS connect flows are waiting for their visitors; \
                 new ones are refused until some finish or expire (AUTHORIZE_TTL)"
            );
            let mut response = html(
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Please try again in a few minutes",
                    "Too many people are connecting Twitter right now. Please start again in a few minutes.",
                    None,
                ),
            );
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, RETRY_BUSY_AFTER.into());
            response
        }
    }
}

/// When a refused start (`ConnectError::Busy`) is worth trying again, in seconds.
const RETRY_BUSY_AFTER: u32 = 60;
