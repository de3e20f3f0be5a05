//! Tracardi's form model (tracardi-protocol.md §2.1, `register.py`): what its GUI renders.
//!
//! Every field is serialised, defaults included, as pydantic's `model_dump()` would write them.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Form {
    pub submit: Option<String>,
    #[schema(value_type = Object)]
    pub default: Map<String, Value>,
    pub title: Option<String>,
    pub groups: Vec<FormGroup>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct FormGroup {
    pub name: Option<String>,
    pub description: Option<String>,
    pub fields: Vec<FormField>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct FormField {
    /// Dot path into the form's values, e.g. `api_key`.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub component: FormComponent,
    pub validation: Option<FormFieldValidation>,
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct FormComponent {
    /// `text`, `password`, `textarea`, ... (§2.3).
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub props: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct FormFieldValidation {
    pub regex: String,
    pub message: String,
}

impl FormField {
    /// A field rendered by `kind` with a label; required, as all of ours are.
    pub fn new(id: &str, name: &str, description: &str, kind: &str) -> Self {
        let mut props = Map::new();
        props.insert("label".into(), Value::String(name.into()));
        Self {
            id: id.into(),
            name: name.into(),
            description: Some(description.into()),
            component: FormComponent {
                kind: kind.into(),
                props,
            },
            validation: None,
            required: true,
        }
    }
}
