//! The HTTP doors: one file per door, all built into one router here.

pub mod access_log;
pub mod auth;
pub mod authorize;
pub mod callback;
pub mod metrics;
pub mod microservice;
pub mod ops;
pub mod outbox;
pub mod pages;
pub mod rate_limit;
pub mod resource;
pub mod schemas;
pub mod server;
pub mod validate;
pub mod x_webhook;

use crate::auth::Authenticator;
use crate::config::CallbackConfig;
use crate::delivery::DeliveryMonitor;
use crate::error::{ApiError, Detail, FieldErrors, Problem};
use crate::store::Outbox;
use crate::validation::Validator;
use axum::extract::FromRef;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// Request bodies larger than this get 413: the largest real one (four keys) is far smaller.
/// The routes that take Tracardi's whole context ([`LARGE_BODY_ROUTES`]) have their own limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Routes whose bodies carry Tracardi's event, session, profile and node (tracardi-protocol.md
/// §1.8): 6.6 KB bare, 100 KB and more for a rich profile. Their limit is `PLUGIN_BODY_LIMIT`.
pub const LARGE_BODY_ROUTES: [&str; 2] = ["/plugin/run", "/plugin/validate"];

/// Everything the handlers share. axum clones the state for every request a handler answers (the
/// cheap `GET /resource` included), so it is one `Arc`: a deep copy cost about 1 µs per request
/// (the keys' `SecretString`s are copied and zeroised, the origins and URLs copied).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`]. Its `Debug` shows no secret: every field that holds one
/// redacts it (tests/it/leak.rs checks).
#[derive(Debug)]
pub struct Shared {
    pub auth: Authenticator,
    pub validator: Arc<Validator>,
    pub outbox: Arc<dyn Outbox>,
    pub connect: Arc<crate::connect::Connect>,
    pub delivery: DeliveryMonitor,
    pub callback: CallbackConfig,
    /// Browser origins allowed by CORS; None: any.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Sends tweets (the validator has its own client for checks).
    pub x: crate::twitter::client::XClient,
    /// How long a whole request may take, reading the body included; slow clients get 408.
    pub request_timeout: Duration,
    /// The limit on anonymous routes, per client.
    pub rate_limits: rate_limit::RateLimits,
    /// Largest body of [`LARGE_BODY_ROUTES`].
    pub plugin_body_limit: usize,
    /// Renders `/metrics`, here or on the separate listener.
    pub metrics: Arc<crate::metrics::Scraper>,
    /// Where `/metrics` is served and whether it takes the token.
    pub metrics_config: crate::config::MetricsConfig,
    /// X's activity webhook, and the links from X accounts to profiles.
    pub x_webhook: Arc<crate::x_activity::XWebhook>,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<Validator> {
    fn from_ref(state: &AppState) -> Self {
        state.validator.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tracardi-twitter",
        description = "Twitter (X) as a first-class resource for Tracardi: the resource form, credential \
                       validation against X, Tracardi-compatible authentication, and OAuth callbacks stored \
                       durably and delivered to Tracardi as events.",
        license(name = "MIT")
    ),
    components(schemas(Problem, Detail, FieldErrors, schemas::RequestErrors, schemas::Unprocessable)),
    modifiers(&BearerToken),
    tags(
        (name = "tracardi", description = "Tracardi's microservice protocol"),
        (name = "validation", description = "Checking the four keys against X"),
        (name = "callback", description = "X's browser redirects, stored and delivered to Tracardi"),
        (name = "connect", description = "\"Connect Twitter\" flows run by this service"),
        (name = "x-activity", description = "X's activity webhook: mentions, replies, likes, follows, DMs and more, delivered to Tracardi as events"),
        (name = "operations", description = "Health, readiness and this specification")
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some("The token from GET /api-key/{api_key}.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every documented route, with its OpenAPI description and its body limit.
fn api(plugin_body_limit: usize) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(resource::routes())
        .merge(validate::routes())
        .merge(microservice::routes())
        .merge(callback::routes())
        .merge(authorize::routes())
        .merge(outbox::routes())
        .merge(ops::routes())
        .merge(metrics::routes());
    access_log::with_body_limit(routes, MAX_BODY_BYTES)
        .merge(access_log::with_body_limit(
            microservice::large_body_routes(),
            plugin_body_limit,
        ))
        .merge(access_log::with_body_limit(
            x_webhook::routes(),
            crate::x_activity::MAX_WEBHOOK_BODY_BYTES,
        ))
}

/// The OpenAPI specification, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api(MAX_BODY_BYTES).split_for_parts().1
}

/// The service's router inside its layers, ready to serve (`server::serve`).
pub fn router(
    state: AppState,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let (routes, spec) = api(state.plugin_body_limit).split_for_parts();
    let spec_json = Arc::new(spec.to_pretty_json().expect("the specification serialises"));
    let timeout = state.request_timeout;
    let cors = cors(state.cors_allowed_origins.clone());
    let router = routes
        .route(
            OPENAPI_JSON,
            axum::routing::get(move || ops::openapi_json(spec_json.clone())),
        )
        .fallback(|| async {
            ApiError::not_found(
                "no_such_route",
                "There is no such endpoint; GET /openapi.json lists them all.",
            )
        })
        .with_state(state);
    request_layers(router, timeout, cors, route_names(&spec))
}

/// The layers around the router that every request goes through, the fallback's included
/// (outermost first): the caller's request id kept if it is plain, else a fresh UUID v4; the
/// id echoed in the answer; the access event (and CORS for browsers); the request timeout (408).
/// Around the router, not `Router::layer`: see `access_log`.
fn request_layers<S, B>(
    router: S,
    timeout: Duration,
    cors: CorsLayer,
    routes: &'static access_log::RouteNames,
) -> impl tower::Service<
    axum::http::Request<B>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static
where
    S: tower::Service<
            axum::http::Request<B>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static,
    B: Send + 'static,
{
    tower::ServiceBuilder::new()
        .map_request(access_log::drop_unsafe_request_id::<B>)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(access_log::AccessLogLayer::new(cors, routes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .service(router)
}

/// Where the specification is served.
const OPENAPI_JSON: &str = "/openapi.json";

/// The templates the access line names requests by: every route the router serves, i.e. every
/// path of its specification. The same for every router this binary builds, so worked out once.
fn route_names(spec: &utoipa::openapi::OpenApi) -> &'static access_log::RouteNames {
    static NAMES: std::sync::OnceLock<access_log::RouteNames> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let templates = spec.paths.paths.keys().map(String::as_str);
        access_log::RouteNames::new(templates.chain([OPENAPI_JSON]))
    })
}

/// Tracardi's GUI calls the service from the browser with `Authorization`, `x-client`,
/// `x-context` and `content-type`; the preflight must pass from its origin.
fn cors(origins: Option<Vec<String>>) -> CorsLayer {
    let allow_origin = match origins {
        None => AllowOrigin::any(),
        Some(origins) => AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| axum::http::HeaderValue::from_str(o).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(AllowMethods::any())
        // Mirrored rather than `*`: browsers never let a wildcard cover `Authorization`.
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use tower::{Service, ServiceExt};

    /// Exactly the routes of [`super::LARGE_BODY_ROUTES`] get `PLUGIN_BODY_LIMIT`.
    #[test]
    fn the_large_body_routes_are_the_plugin_routes() {
        let (_, spec) = super::microservice::large_body_routes().split_for_parts();
        let mut paths: Vec<&str> = spec.paths.paths.keys().map(String::as_str).collect();
        paths.sort_unstable();
        let mut expected = super::LARGE_BODY_ROUTES;
        expected.sort_unstable();
        assert_eq!(paths, expected);
    }

    /// Every request is bounded in time, one without a body too (a GET whose handler hangs), and
    /// its answer carries a request id.
    #[tokio::test]
    async fn requests_without_a_body_are_timed_too() {
        let hangs = tower::service_fn(|_: axum::http::Request<()>| {
            std::future::pending::<Result<axum::response::Response, std::convert::Infallible>>()
        });
        let names: &'static _ =
            Box::leak(Box::new(super::access_log::RouteNames::new(["/authorize"])));
        let mut stack = super::request_layers(
            hangs,
            std::time::Duration::from_millis(100),
            super::cors(None),
            names,
        );
        let request = axum::http::Request::get("/authorize").body(()).unwrap();
        let response = stack.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    }

    /// Every documented route, with its parameters filled in, is named by its own template in
    /// the access line; paths the router does not serve are not named.
    #[test]
    fn the_access_line_names_every_route() {
        let spec = super::openapi();
        let names = super::route_names(&spec);
        assert!(spec.paths.paths.len() >= 15, "the routes went missing");
        for template in spec.paths.paths.keys() {
            let path: String = template
                .split('/')
                .map(|part| {
                    if part.starts_with('{') {
                        "some-value"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(names.lookup(&path), Some(template.as_str()), "{path}");
        }
        assert_eq!(names.lookup(super::OPENAPI_JSON), Some(super::OPENAPI_JSON));
        for unknown in ["/", "/nope", "/resource/extra", "/api-key"] {
            assert_eq!(names.lookup(unknown), None, "{unknown}");
        }
    }
}
