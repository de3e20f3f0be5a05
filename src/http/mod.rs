//! The HTTP doors: one file per door, all built into one router here.

pub mod access_log;
pub mod auth;
pub mod authorize;
pub mod callback;
pub mod microservice;
pub mod ops;
pub mod outbox;
pub mod pages;
pub mod rate_limit;
pub mod resource;
pub mod schemas;
pub mod server;
pub mod validate;

use crate::auth::Authenticator;
use crate::config::CallbackConfig;
use crate::delivery::DeliveryMonitor;
use crate::error::{ApiError, Detail, FieldErrors, Problem};
use crate::store::Outbox;
use crate::validation::Validator;
use axum::Router;
use axum::extract::FromRef;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
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

/// Every documented route, with its OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(resource::routes())
        .merge(validate::routes())
        .merge(microservice::routes())
        .merge(callback::routes())
        .merge(authorize::routes())
        .merge(outbox::routes())
        .merge(ops::routes())
}

/// The OpenAPI specification, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The whole service as one tower service: the router inside the layers every request goes
/// through (access line, CORS, body limits), ready to serve.
pub type App = access_log::AccessLog<access_log::BodyLimits<Router>>;

/// What [`App`] answers a request from hyper with.
pub type AppFuture = access_log::AccessLogFuture<
    <access_log::BodyLimits<Router> as tower::Service<
        axum::http::Request<hyper::body::Incoming>,
    >>::Future,
>;

/// The service's router inside its layers, ready to serve.
pub fn router(state: AppState) -> App {
    let (routes, spec) = api().split_for_parts();
    let spec_json = Arc::new(spec.to_pretty_json().expect("the specification serialises"));
    let body_limits = access_log::BodyLimitsLayer {
        timeout: state.request_timeout,
        max_body_bytes: MAX_BODY_BYTES,
        large_body_routes: &LARGE_BODY_ROUTES,
        max_large_body_bytes: state.plugin_body_limit,
    };
    let access_log = access_log::AccessLogLayer::new(
        cors(state.cors_allowed_origins.clone()),
        route_names(&spec),
    );
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
    // Around the router, not `Router::layer`: see `access_log`.
    tower::ServiceBuilder::new()
        .layer(access_log)
        .layer(body_limits)
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
