//! Schemas that live only in the specification: what the hand-read inputs may hold, and the
//! error shapes the handlers build by hand.
//!
//! Each says exactly what the service accepts, no more and no less: CI runs schemathesis against
//! `/openapi.json` (scripts/schemathesis.sh), which sends what a schema allows and expects it
//! taken, and what it forbids and expects it refused.

use crate::error::FieldErrors;
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// The characters `str::trim` removes (Unicode White_Space), as inclusive ranges.
const WHITE_SPACE: [(char, char); 10] = [
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// The control characters (Unicode Cc), as inclusive ranges.
const CONTROL: [(char, char); 2] = [('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// A regular-expression class body for `ranges`, with `\uXXXX` escapes (ECMA-262 and Python
/// read them alike).
fn class(ranges: &[(char, char)]) -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    ranges
        .iter()
        .map(|&(from, to)| {
            if from == to {
                escape(from)
            } else {
                format!("{}-{}", escape(from), escape(to))
            }
        })
        .collect()
}

fn schema(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema object")
}

/// A text with something in it besides white space: the service trims what is pasted and
/// refuses what is left empty.
pub struct NonBlankText;

impl PartialSchema for NonBlankText {
    fn schema() -> RefOr<Schema> {
        schema(json!({
            "type": "string",
            "minLength": 1,
            "pattern": format!("[^{}]", class(&WHITE_SPACE)),
        }))
    }
}

impl ToSchema for NonBlankText {}

/// A Tracardi profile or session id: up to 128 characters, none of them white space or control
/// characters. Empty counts as not given.
pub struct TracardiId;

impl PartialSchema for TracardiId {
    fn schema() -> RefOr<Schema> {
        let mut forbidden = WHITE_SPACE.to_vec();
        forbidden.extend(CONTROL);
        schema(json!({
            "type": "string",
            "maxLength": 128,
            "pattern": format!("^[^{}]*$", class(&forbidden)),
        }))
    }
}

impl ToSchema for TracardiId {}

/// The connect flows `/authorize` runs.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FlowName {
    OAuth1,
    OAuth2,
}

/// FastAPI's 422 for a request it could not parse, which Tracardi's GUI reads: a required query
/// parameter missing, or a body that is not the object expected. Tracardi's own microservice
/// answers these so; so does this one.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Documents `ApiError::RequestValidation`, which builds the JSON by hand.
pub struct RequestErrors {
    pub detail: Vec<RequestError>,
}

/// One problem with the request, as pydantic reports it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RequestError {
    /// e.g. `missing`, `json_invalid`, `dict_type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["query", "service_id"]`, `["body", "context"]`.
    pub loc: Vec<String>,
    pub msg: String,
    /// What was refused; null here, as the input may hold secrets.
    pub input: serde_json::Value,
}

/// A 422 from a route of Tracardi's protocol: the flat `{field: message}` its GUI shows under
/// the form's fields, or FastAPI's `{"detail": [...]}` for a missing query parameter or a body
/// that is not an object.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum Unprocessable {
    Fields(FieldErrors),
    Request(RequestErrors),
}

/// The body of `POST /plugin/validate` (tracardi-protocol.md §1.5): the node's configuration and
/// the service credentials stored with the node. Other keys are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the body; the handler reads it as JSON.
pub struct PluginValidateBody {
    pub config: SendTweetConfig,
    /// The four keys as Tracardi stores them with the node (`spec.microservice.plugin.resource`),
    /// or null. Not read: the configuration is checked on its own.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<()>,
}

/// The configuration of a "Send tweet" node: `tweet`, the text to post. Without a
/// `{{source@path}}` reference it must fit in 280 characters as X counts them; references must be
/// well formed. Other keys are dropped from the answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendTweetConfig {
    // No doc comment: utoipa would wrap the schema in an `allOf` with an object type.
    #[schema(inline, value_type = NonBlankText)]
    pub tweet: String,
}

/// The body of `POST /plugin/run`, as Tracardi's workflow engine sends it (tracardi-protocol.md
/// §1.8). Each part is read for what "Send tweet" needs; anything missing there or of the wrong
/// kind is answered on the `error` port, as a node failure Tracardi shows, never as an HTTP error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PluginRunBody {
    /// The node's configuration, e.g. `{"tweet": "Hi {{profile@data.pii.firstname}}", "__debug__": false}`.
    #[schema(value_type = Object)]
    pub init: (),
    /// The workflow context: `event`, `session`, `profile`, `memory` (data for the references) and
    /// `node`, whose `microservice.plugin.resource` holds the four keys.
    #[schema(value_type = Object)]
    pub context: (),
    /// The node's input: `payload` (data for `{{payload@...}}` references) and `in_edge`.
    #[schema(value_type = Object)]
    pub params: (),
}

/// The query of X's redirect to `/callback`: one of its four answers (twitter-api.md §3), and
/// any other parameter, which is stored with the event. At most 32 parameters, 8 KiB in all, none
/// repeated.
pub struct CallbackQuery;

impl PartialSchema for CallbackQuery {
    fn schema() -> RefOr<Schema> {
        let parameters = [
            (
                "oauth_token",
                "OAuth 1.0a: the request token the person approved",
            ),
            (
                "oauth_verifier",
                "OAuth 1.0a: the verifier that goes with oauth_token",
            ),
            ("denied", "OAuth 1.0a: the request token the person refused"),
            ("code", "OAuth 2.0: the authorization code"),
            ("state", "OAuth 2.0: the state the flow was started with"),
            (
                "error",
                "OAuth 2.0: why there is no code, e.g. access_denied",
            ),
        ];
        // One branch per answer: its parameters present and not empty. Exactly one must match,
        // as `Redirect::parse` refuses an address that mixes two answers.
        let answer = |title: &str, required: &[&str]| {
            let properties: serde_json::Map<_, _> = parameters
                .iter()
                .map(|&(name, description)| {
                    let mut property = json!({"type": "string", "description": description});
                    if required.contains(&name) {
                        property["minLength"] = json!(1);
                    }
                    (name.to_owned(), property)
                })
                .collect();
            json!({
                "title": title,
                "type": "object",
                "required": required,
                "properties": properties,
                "additionalProperties": {"type": "string"},
                "maxProperties": crate::callback::MAX_PARAMETERS,
            })
        };
        let one_of: utoipa::openapi::schema::OneOf = serde_json::from_value(json!({
            "type": "object",
            "oneOf": [
                answer("OAuth 1.0a approval", &["oauth_token", "oauth_verifier"]),
                answer("OAuth 1.0a refusal", &["denied"]),
                answer("OAuth 2.0 approval", &["code", "state"]),
                answer("OAuth 2.0 refusal", &["error"]),
            ],
        }))
        .expect("a valid oneOf");
        RefOr::T(Schema::OneOf(one_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(ranges: &[(char, char)], c: char) -> bool {
        ranges.iter().any(|&(from, to)| (from..=to).contains(&c))
    }

    /// The patterns forbid exactly what the service refuses.
    #[test]
    fn the_character_classes_are_the_ones_the_service_uses() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(within(&WHITE_SPACE, c), c.is_whitespace(), "{c:?}");
            assert_eq!(within(&CONTROL, c), c.is_control(), "{c:?}");
        }
        assert_eq!(class(&WHITE_SPACE[..2]), "\\u0009-\\u000d\\u0020");
    }
}
