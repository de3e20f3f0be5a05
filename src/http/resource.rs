//! `GET /resource`: the form for the four keys, in Tracardi's form format.

use super::AppState;
use crate::tracardi::form::Form;
use crate::twitter::credentials::{resource_form, resource_init};
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::LazyLock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(resource))
}

/// A Tracardi resource form and its initial values.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResourceForm {
    pub form: Form,
    /// `{"api_key": "", "api_secret": "", "access_token": "", "access_token_secret": ""}`
    #[schema(value_type = Object)]
    pub init: Map<String, Value>,
}

impl ResourceForm {
    pub fn twitter() -> Self {
        Self {
            form: resource_form(),
            init: resource_init(),
        }
    }
}

/// The form for the Twitter app's four keys, with where to find each in X's Developer Console.
#[utoipa::path(
    get,
    path = "/resource",
    tag = "tracardi",
    responses((status = 200, description = "The form and its empty initial values", body = ResourceForm))
)]
async fn resource() -> impl IntoResponse {
    // The form never changes: serialised once, served as shared bytes.
    static BODY: LazyLock<Bytes> = LazyLock::new(|| {
        Bytes::from(serde_json::to_vec(&ResourceForm::twitter()).expect("the form serialises"))
    });
    ([(header::CONTENT_TYPE, "application/json")], BODY.clone())
}
