//! `GET /callback`: browsers coming back from X. Recorded durably, then answered.

use super::AppState;
use super::pages;
use super::rate_limit::PublicCaller;
use super::schemas::CallbackQuery;
use crate::callback::{self, NotRecorded, Outcome, Recorded};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(callback))
}

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
    let recorded = callback::record(
        uri.query(),
        &state.connect,
        state.outbox.as_ref(),
        state.x_webhook.links().as_ref(),
        &state.delivery,
    )
    .await;
    match recorded {
        Ok(Recorded::Stored(redirect)) => {
            let target = match redirect.outcome {
                Outcome::Granted => state.callback.success_url.as_deref(),
                Outcome::Denied => state.callback.denied_url.as_deref(),
            };
            match target {
                Some(url) => pages::redirect(StatusCode::SEE_OTHER, url),
                None => pages::recorded(&redirect),
            }
        }
        Ok(Recorded::Finished(finished)) => pages::finished(&finished),
        Err(NotRecorded::NotARedirect(reason)) => pages::not_a_redirect(&reason),
        Err(NotRecorded::Connect(error)) => error.into_response(),
        Err(NotRecorded::Store(_)) => pages::not_stored(),
    }
}
