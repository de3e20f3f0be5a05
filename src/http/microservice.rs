//! Tracardi's microservice protocol (tracardi-protocol.md §1): the GUI registers the service,
//! renders its resource form and validates the keys; the API installs the node type; the
//! workflow engine runs "Send tweet".
//!
//! Where the Python server answers an unknown id with `{}` or a 500, this service answers a
//! 404 `{"detail": ...}` that Tracardi passes on as a readable error (README lists each case).

use super::AppState;
use super::resource::ResourceForm;
use super::schemas::{
    PluginRunBody, PluginValidateBody, RequestErrors, SendTweetConfig, Unprocessable,
};
use super::validate::json_body;
use crate::auth::Authenticated;
use crate::error::{ApiError, Detail};
use crate::microservice::{
    self, SEND_TWEET_ID, SEND_TWEET_NAME, SERVICE_ID, SERVICE_NAME, is_send_tweet, is_service,
};
use crate::tracardi::form::Form;
use crate::tracardi::plugin::{RunResponse, registry_entry};
use crate::twitter::credentials::Credentials;
use crate::validation::Undecided;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(services))
        .routes(routes!(actions))
        .routes(routes!(service_resource))
        .routes(routes!(validate_resource))
        .routes(routes!(plugin_registry))
        .routes(routes!(plugin_form))
}

/// The routes that take Tracardi's whole context in their body ([`super::LARGE_BODY_ROUTES`]),
/// apart: they have a body limit of their own.
pub fn large_body_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plugin_validate))
        .routes(routes!(plugin_run))
}

type Params = Query<HashMap<String, String>>;

/// Every route here but `/api-key` needs the token.
const FORBIDDEN: &str = "Missing or wrong bearer token: 403 as Tracardi's microservice answers it, never 401 (a 401 \
                         logs Tracardi's GUI user out)";

/// The query of the routes that name the service (documentation: handlers read a map).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ServiceQuery {
    /// The service's id, as `GET /services` lists it.
    #[param(example = json!(SERVICE_ID))]
    service_id: String,
}

/// The query of the routes that name the service and its action.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ActionQuery {
    /// The service's id, as `GET /services` lists it.
    #[param(example = json!(SERVICE_ID))]
    service_id: String,
    /// The action's id, as `GET /actions` lists it.
    #[param(example = json!(SEND_TWEET_ID))]
    action_id: String,
}

/// Required query parameters, or FastAPI's 422 naming every one that is missing.
fn required<'a, const N: usize>(
    params: &'a HashMap<String, String>,
    names: [&str; N],
) -> Result<[&'a str; N], ApiError> {
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|name| !params.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::missing_query(&missing));
    }
    Ok(names.map(|name| params[name].as_str()))
}

fn unknown_service(id: &str) -> ApiError {
    ApiError::Detail(
        StatusCode::NOT_FOUND,
        format!(
            "Unknown service id '{id}'. GET /services lists this microservice's only service: {SERVICE_ID} ({SERVICE_NAME})."
        ),
    )
}

fn known_action(params: &HashMap<String, String>) -> Result<(), ApiError> {
    let [service, action] = required(params, ["service_id", "action_id"])?;
    if !is_service(service) {
        return Err(unknown_service(service));
    }
    if !is_send_tweet(action) {
        return Err(ApiError::Detail(
            StatusCode::NOT_FOUND,
            format!(
                "Unknown action id '{action}'. GET /actions lists the service's only action: {SEND_TWEET_ID} ({SEND_TWEET_NAME})."
            ),
        ));
    }
    Ok(())
}

/// `{"total": n, "result": {id: name}}`
#[derive(Serialize, utoipa::ToSchema)]
pub struct Listing {
    pub total: usize,
    #[schema(value_type = Object)]
    pub result: BTreeMap<&'static str, &'static str>,
}

/// The services this microservice offers: one, "Twitter".
#[utoipa::path(get, path = "/services", tag = "tracardi", security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 403, description = FORBIDDEN, body = Detail)))]
async fn services(_: Authenticated) -> Json<Listing> {
    Json(Listing {
        total: 1,
        result: BTreeMap::from([(SERVICE_ID, SERVICE_NAME)]),
    })
}

/// The actions of a service: "Send tweet". An unknown service has none (as Tracardi expects).
#[utoipa::path(get, path = "/actions", tag = "tracardi", security(("bearer" = [])),
    params(ServiceQuery),
    responses((status = 200, body = Listing), (status = 403, description = FORBIDDEN, body = Detail),
        (status = 422, description = "service_id missing", body = RequestErrors)))]
async fn actions(_: Authenticated, Query(params): Params) -> Result<Json<Listing>, ApiError> {
    let [service] = required(&params, ["service_id"])?;
    let listing = if is_service(service) {
        Listing {
            total: 1,
            result: BTreeMap::from([(SEND_TWEET_ID, SEND_TWEET_NAME)]),
        }
    } else {
        Listing {
            total: 0,
            result: BTreeMap::new(),
        }
    };
    Ok(Json(listing))
}

/// The resource form of a service (the same as `GET /resource`); `null` for an unknown service,
/// as Tracardi's GUI expects.
#[utoipa::path(get, path = "/service/resource", tag = "tracardi", security(("bearer" = [])),
    params(ServiceQuery),
    responses((status = 200, body = Option<ResourceForm>), (status = 403, description = FORBIDDEN, body = Detail),
        (status = 422, description = "service_id missing", body = RequestErrors)))]
async fn service_resource(
    _: Authenticated,
    Query(params): Params,
) -> Result<Json<Option<ResourceForm>>, ApiError> {
    let [service] = required(&params, ["service_id"])?;
    Ok(Json(is_service(service).then(ResourceForm::twitter)))
}

/// Validate the four keys for Tracardi's GUI: `true`, or 422 with a message on the field each
/// problem points to. A read-only token fails here: "Send tweet" needs write access.
#[utoipa::path(post, path = "/service/resource/validate", tag = "tracardi", security(("bearer" = [])),
    params(ServiceQuery),
    request_body = super::validate::CredentialsBody,
    responses(
        (status = 200, description = "The keys work and can post", body = bool),
        (status = 403, description = FORBIDDEN, body = Detail),
        (status = 404, description = "Unknown service id", body = Detail),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT"),
        (status = 413, description = "Body larger than 64 KiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Field → message for each key that is missing, blank or refused by X; or service_id missing", body = Unprocessable),
        (status = 429, description = "X rate-limited the check", body = Detail),
        (status = 502, description = "X answered something unexpected or is unreachable", body = Detail),
        (status = 504, description = "X did not answer in time", body = Detail)
    ))]
async fn validate_resource(
    _: Authenticated,
    State(state): State<AppState>,
    Query(params): Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<bool>, ApiError> {
    let [service] = required(&params, ["service_id"])?;
    if !is_service(service) {
        return Err(unknown_service(service));
    }
    let parsed = Credentials::from_json(&json_body(body)?).map_err(ApiError::Fields)?;
    let report = state
        .validator
        .validate(parsed, false)
        .await
        .map_err(as_detail)?;
    let fields = microservice::send_tweet_blockers(&report);
    if fields.is_empty() {
        Ok(Json(true))
    } else {
        Err(ApiError::Fields(fields))
    }
}

/// X could not judge the keys: a `{"detail"}` the GUI shows as a message (never a 401).
fn as_detail(undecided: Undecided) -> ApiError {
    match ApiError::from(undecided) {
        ApiError::Problem(p) => ApiError::Detail(
            StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY),
            p.detail,
        ),
        other => other,
    }
}

/// The node type Tracardi installs for this service (a `Plugin`, tracardi-protocol.md §2.1).
#[utoipa::path(get, path = "/plugin/registry", tag = "tracardi", security(("bearer" = [])),
    params(ServiceQuery),
    responses((status = 200, description = "Tracardi's Plugin model", body = Object), (status = 403, description = FORBIDDEN, body = Detail),
        (status = 404, description = "Unknown service id", body = Detail), (status = 422, description = "service_id missing", body = RequestErrors)))]
async fn plugin_registry(_: Authenticated, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let [service] = required(&params, ["service_id"])?;
    if !is_service(service) {
        return Err(unknown_service(service));
    }
    Ok(Json(registry_entry(
        "Twitter",
        "Posts tweets on X with your app's keys (API v2).",
        &["twitter", "x", "tweet", "post"],
        json!({"payload": {"desc": "Any object; its data can be inserted in the tweet with {{payload@path}}."}}),
        json!({
            "response": {"desc": "The posted tweet: {\"tweet_id\", \"text\"}."},
            "error": {"desc": "Why nothing was posted: {\"message\", \"code\"}, e.g. too_long, duplicate, read_only_token, rate_limited, missing_path."}
        }),
    )))
}

/// `{"init", "form"}` of an action.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionForm {
    #[schema(value_type = Object)]
    pub init: Value,
    pub form: Option<Form>,
}

/// The configuration form of "Send tweet": one textarea, `tweet`.
#[utoipa::path(get, path = "/plugin/form", tag = "tracardi", security(("bearer" = [])),
    params(ActionQuery),
    responses((status = 200, body = ActionForm), (status = 403, description = FORBIDDEN, body = Detail),
        (status = 422, description = "A parameter is missing", body = RequestErrors)))]
async fn plugin_form(
    _: Authenticated,
    Query(params): Params,
) -> Result<Json<ActionForm>, ApiError> {
    let [service, action] = required(&params, ["service_id", "action_id"])?;
    let known = is_service(service) && is_send_tweet(action);
    // Unknown ids: `{"init": {}, "form": null}`, as Tracardi's GUI expects.
    Ok(Json(if known {
        ActionForm {
            init: microservice::send_tweet_init(),
            form: Some(microservice::send_tweet_form()),
        }
    } else {
        ActionForm {
            init: json!({}),
            form: None,
        }
    }))
}

/// Validate a node's configuration; the answer becomes the node's `init`.
#[utoipa::path(post, path = "/plugin/validate", tag = "tracardi", security(("bearer" = [])),
    params(ActionQuery),
    request_body = PluginValidateBody,
    responses(
        (status = 200, description = "The cleaned config", body = SendTweetConfig),
        (status = 403, description = FORBIDDEN, body = Detail),
        (status = 404, description = "Unknown ids", body = Detail),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT"),
        (status = 413, description = "Body larger than PLUGIN_BODY_LIMIT (16 MiB by default)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`{\"tweet\": \"Message\"}` (or `config`) for a bad configuration; FastAPI's shape for a missing parameter or a body, config or credentials of the wrong type", body = Unprocessable)
    ))]
async fn plugin_validate(
    _: Authenticated,
    Query(params): Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    known_action(&params)?;
    let config = with_body(body?, |body| {
        let config = body
            .get("config")
            .ok_or_else(|| ApiError::field("config", "Field required"))?;
        // Not read, but Tracardi's microservice types it (`credentials: dict = None`) and refuses
        // anything else; so does this one, rather than ignore a caller's mistake.
        if body
            .get("credentials")
            .is_some_and(|c| !c.is_object() && !c.is_null())
        {
            return Err(ApiError::RequestValidation(vec![json!({
                "type": "dict_type",
                "loc": ["body", "credentials"],
                "msg": "Input should be a valid dictionary",
                "input": null,
            })]));
        }
        microservice::validate_config(config).map_err(ApiError::Fields)
    })
    .await?;
    Ok(Json(config))
}

/// Run "Send tweet": render the template, check the length, post it once.
#[utoipa::path(post, path = "/plugin/run", tag = "tracardi", security(("bearer" = [])),
    params(ActionQuery),
    request_body = PluginRunBody,
    responses(
        (status = 200, description = "The port (`response` or `error`), its value, an unchanged context and the console", body = RunResponse),
        (status = 403, description = FORBIDDEN, body = Detail),
        (status = 404, description = "Unknown ids", body = Detail),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT"),
        (status = 413, description = "Body larger than PLUGIN_BODY_LIMIT (16 MiB by default)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter missing, or init, context or params missing or not an object", body = RequestErrors)
    ))]
async fn plugin_run(
    _: Authenticated,
    State(state): State<AppState>,
    Query(params): Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RunResponse>, ApiError> {
    known_action(&params)?;
    let run = with_body(body?, |body| {
        let missing: Vec<Value> = ["init", "context", "params"]
            .into_iter()
            .filter(|key| !body.get(*key).is_some_and(Value::is_object))
            .map(|key| {
                json!({"type": "missing", "loc": ["body", key], "msg": "Field required: an object", "input": null})
            })
            .collect();
        if missing.is_empty() {
            Ok(body)
        } else {
            Err(ApiError::RequestValidation(missing))
        }
    })
    .await?;
    Ok(Json(microservice::send_tweet(&state.x, run).await))
}

/// Bodies up to this size are parsed where they arrive. Larger ones (a run carries Tracardi's
/// whole event, session and profile, up to PLUGIN_BODY_LIMIT) are parsed, checked and freed on
/// the blocking pool: a document of megabytes takes milliseconds to parse and to free, which
/// must not hold up the other requests of an async worker.
const PARSE_INLINE_UP_TO: usize = 64 * 1024;

/// Parses `body` as a JSON object (FastAPI's 422 shape for anything else) and hands it to
/// `work`, off the async workers when the body is large.
async fn with_body<T: Send + 'static>(
    body: Bytes,
    work: impl FnOnce(Value) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let small = body.len() <= PARSE_INLINE_UP_TO;
    let parse_and_work = move || parse_body(&body).and_then(work);
    if small {
        return parse_and_work();
    }
    tokio::task::spawn_blocking(parse_and_work)
        .await
        .map_err(|failed| {
            tracing::error!(error = %failed, "reading a large body failed");
            ApiError::internal(
                "internal_error",
                "The body could not be read (an internal error, logged).",
            )
        })?
}

/// A JSON object body, or FastAPI's 422 shape for anything else.
fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(ApiError::RequestValidation(vec![json!({
            "type": "json_invalid",
            "loc": ["body"],
            "msg": "The body must be a JSON object",
            "input": null,
        })])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of megabytes is parsed and handled on the blocking pool: the first poll of the
    /// handler's work returns at once, while the work itself is still waiting. (Run inline, the
    /// first poll would only return once the work gave up waiting.)
    #[test]
    fn large_bodies_are_parsed_off_the_async_workers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let large = Bytes::from(format!(
            r#"{{"pad": "{}"}}"#,
            "x".repeat(PARSE_INLINE_UP_TO)
        ));
        let (release, released) = std::sync::mpsc::channel::<()>();
        runtime.block_on(async {
            let mut work = std::pin::pin!(with_body(large, move |body| {
                let waited = released.recv_timeout(std::time::Duration::from_secs(5));
                Ok((waited.is_ok(), body["pad"].as_str().map(str::len)))
            }));
            let first = futures_poll_once(work.as_mut()).await;
            assert!(
                first.is_none(),
                "the large body was handled on the async worker"
            );
            release.send(()).unwrap();
            let (released_in_time, pad) = work.await.unwrap();
            assert!(released_in_time);
            assert_eq!(pad, Some(PARSE_INLINE_UP_TO));
        });
        // A small body is handled where it arrives.
        let small = Bytes::from_static(br#"{"a": 1}"#);
        let answer = runtime.block_on(with_body(small, |body| Ok(body["a"].clone())));
        assert_eq!(answer.unwrap(), json!(1));
        let not_an_object = runtime.block_on(with_body(Bytes::from_static(b"[1]"), Ok));
        assert!(matches!(not_an_object, Err(ApiError::RequestValidation(_))));
    }

    /// Polls `future` once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
