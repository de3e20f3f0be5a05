//! `GET /callback`: browsers coming back from X. Recorded durably, then answered.

use super::AppState;
use super::rate_limit::PublicCaller;
use super::schemas::CallbackQuery;
use crate::callback::{NotARedirect, Outcome, Redirect, connected_page, page, recorded_page};
use crate::connect::Finished;
use crate::store::{Appended, now_millis};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(callback))
}

/// No script, no outside resource, no framing: the page shows text and nothing else.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Receive X's redirect after a user approves or refuses the app.
///
/// Register `{public URL of this service}/callback` as the app's Callback URI. Recognised:
/// `?oauth_token=&oauth_verifier=` and `?denied=` (OAuth 1.0a), `?code=&state=` and `?error=`
/// (OAuth 2.0). The redirect is stored durably before the browser gets its answer, then
/// delivered to Tracardi as a `twitter-authorization-granted` or `twitter-authorization-denied`
/// event with every query parameter as a property.
#[utoipa::path(
    get,
    path = "/callback",
    tag = "callback",
    params(("redirect" = inline(CallbackQuery), Query, style = Form, explode,
        description = "X's answer, one of four; any other parameter is kept as a property of the event")),
    responses(
        (status = 200, description = "Recorded; a page telling the person they can close the window", content_type = "text/html"),
        (status = 303, description = "Recorded; sent on to CALLBACK_SUCCESS_URL or CALLBACK_DENIED_URL, or to the return_to of a flow started at /authorize"),
        (status = 400, description = "Not a Twitter redirect, or an expired or forged answer to a flow started here; nothing stored", content_type = "text/html"),
        (status = 404, description = "A flow started here is no longer set up; the page names the missing settings", content_type = "text/html"),
        (status = 502, description = "X refused to finish a flow started here", content_type = "text/html"),
        (status = 503, description = "Could not be stored; the person is asked to reload", content_type = "text/html"),
        (status = 504, description = "X did not answer in time while finishing a flow started here", content_type = "text/html"),
        (status = 429, description = "Too many requests from this client (PUBLIC_RATE_LIMIT); nothing stored, `Retry-After` says when to try again", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
async fn callback(_: PublicCaller, State(state): State<AppState>, uri: Uri) -> Response {
    let redirect = match Redirect::parse(uri.query()) {
        Ok(redirect) => redirect,
        Err(reason) => return not_a_redirect(&reason),
    };
    // A flow this service started itself: exchange, and record the account.
    if let Some(finished) = state.connect.finish(&redirect).await {
        return match finished {
            Ok(finished) => record_connected(&state, finished).await,
            Err(e) => super::authorize::connect_error_page(e),
        };
    }
    let event = redirect.to_event(now_millis());
    let event_id = event.id.clone();
    match state.outbox.append(event).await {
        Ok(appended) => {
            state.delivery.wake();
            tracing::info!(
                %event_id,
                event_type = redirect.event_type(),
                repeat = appended == Appended::AlreadyStored,
                "callback recorded"
            );
            answer_recorded(&state, &redirect)
        }
        Err(e) => {
            tracing::error!(%event_id, error = %e, "callback could not be stored");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Please try again",
                    "Your answer could not be recorded just now. Reload this page in a moment to send it again.",
                    None,
                ),
            )
        }
    }
}

async fn record_connected(state: &AppState, finished: Finished) -> Response {
    let event_id = finished.event.id.clone();
    let event_type = finished.event.event_type.clone();
    if let Err(e) = state.outbox.append(finished.event).await {
        tracing::error!(%event_id, error = %e, "connect event could not be stored");
        return super::authorize::connect_error_page(crate::connect::ConnectError::Store(
            e.to_string(),
        ));
    }
    state.delivery.wake();
    tracing::info!(%event_id, %event_type, "connect flow finished");
    let (word, page) = match (&finished.outcome, &finished.username) {
        (Outcome::Granted, Some(username)) => ("connected", connected_page(username)),
        (Outcome::Granted, None) => ("connected", connected_page("?")),
        (Outcome::Denied, _) => (
            "denied",
            page(
                "Authorization refused",
                "You refused the app access to your Twitter account; nothing was connected. You can close this window.",
                None,
            ),
        ),
    };
    match finished
        .return_to
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    {
        Some(mut target) => {
            // The site learns the outcome without a secret: `twitter=connected` or `denied`.
            target.query_pairs_mut().append_pair("twitter", word);
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(target.as_str()) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            protect(response)
        }
        None => html(StatusCode::OK, page),
    }
}

fn answer_recorded(state: &AppState, redirect: &Redirect) -> Response {
    let target = match redirect.outcome {
        Outcome::Granted => state.callback.success_url.as_deref(),
        Outcome::Denied => state.callback.denied_url.as_deref(),
    };
    match target {
        Some(url) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            protect(response)
        }
        None => html(StatusCode::OK, recorded_page(redirect)),
    }
}

fn not_a_redirect(reason: &NotARedirect) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        page(
            "This is not a Twitter redirect",
            "This address receives people sent back by Twitter after they approve or refuse an app; this request \
             is not one of those, so nothing was recorded.",
            Some(&format!("Reason: {reason}.")),
        ),
    )
}

pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(response)
}

/// A verifier or code in this URL must not leak through a cache, a Referer header or a frame.
pub fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
