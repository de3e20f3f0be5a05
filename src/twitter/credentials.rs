//! The four OAuth 1.0a user-context keys, how they are read from a form, and the form itself.

use super::report::{CredentialProblem, Severity};
use crate::oauth1;
use crate::tracardi::form::{Form, FormField, FormGroup};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Field ids, as Tracardi's own Twitter resource names them (tracardi-protocol.md §3).
pub const API_KEY: &str = "api_key";
pub const API_SECRET: &str = "api_secret";
pub const ACCESS_TOKEN: &str = "access_token";
pub const ACCESS_TOKEN_SECRET: &str = "access_token_secret";
pub const FIELDS: [&str; 4] = [API_KEY, API_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET];

/// The four keys. Every value is secret; `Debug` shows none of them.
#[derive(Clone)]
pub struct Credentials {
    pub api_key: SecretString,
    pub api_secret: SecretString,
    pub access_token: SecretString,
    pub access_token_secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// Credentials read from a form, with the warnings the reading raised (e.g. trimmed white space).
#[derive(Debug)]
pub struct ParsedCredentials {
    pub credentials: Credentials,
    pub warnings: Vec<CredentialProblem>,
}

impl Credentials {
    /// The OAuth 1.0a keys for the signer.
    pub fn keys(&self) -> oauth1::Keys<'_> {
        oauth1::Keys {
            consumer_key: self.api_key.expose_secret(),
            consumer_secret: self.api_secret.expose_secret(),
            token: Some(self.access_token.expose_secret()),
            token_secret: Some(self.access_token_secret.expose_secret()),
        }
    }

    /// The user id that X puts before the `-` of an access token (`6253282-eWud…`).
    pub fn token_user_id(&self) -> Option<&str> {
        let (prefix, _) = self.access_token.expose_secret().split_once('-')?;
        (!prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit())).then_some(prefix)
    }

    /// Reads the four keys from a JSON object. Missing, empty or non-string fields are reported
    /// per field, in the flat shape Tracardi's GUI shows under its form fields. Values pasted with
    /// white space around them are trimmed, with a warning.
    pub fn from_json(value: &Value) -> Result<ParsedCredentials, BTreeMap<String, String>> {
        let Some(object) = value.as_object() else {
            return Err(BTreeMap::from([(
                "body".to_owned(),
                "Body must be a json object with api_key, api_secret, access_token and access_token_secret".to_owned(),
            )]));
        };
        let mut errors = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut values: Vec<SecretString> = Vec::with_capacity(4);
        for field in FIELDS {
            match object.get(field) {
                None | Some(Value::Null) => {
                    errors.insert(field.to_owned(), "Field required".to_owned());
                }
                Some(Value::String(raw)) => {
                    let trimmed = raw.trim();
                    if trimmed.is_empty() {
                        errors.insert(
                            field.to_owned(),
                            format!(
                                "Field must not be empty: paste the {} from the app's Keys and tokens tab",
                                label(field)
                            ),
                        );
                    } else {
                        if trimmed.len() != raw.len() {
                            warnings.push(whitespace_trimmed(field));
                        }
                        values.push(trimmed.into());
                    }
                }
                Some(_) => {
                    errors.insert(
                        field.to_owned(),
                        "Input should be a valid string".to_owned(),
                    );
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut values = values.into_iter();
        let mut next = || values.next().expect("four values when there are no errors");
        Ok(ParsedCredentials {
            credentials: Credentials {
                api_key: next(),
                api_secret: next(),
                access_token: next(),
                access_token_secret: next(),
            },
            warnings,
        })
    }

    /// An OAuth 2.0 Client ID pasted as the API Key: X's Client IDs are base64 of text ending in
    /// `:1:ci` (e.g. `M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ`). Such keys can never sign OAuth 1.0a.
    pub fn client_id_as_api_key(&self) -> Option<CredentialProblem> {
        let key = self.api_key.expose_secret();
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let standard = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = engine.decode(key).or_else(|_| standard.decode(key)).ok()?;
        decoded.ends_with(b":1:ci").then(|| CredentialProblem {
            code: "client_id_as_api_key",
            severity: Severity::Error,
            field: Some(API_KEY),
            message: "The API Key is an OAuth 2.0 Client ID, which cannot sign OAuth 1.0a requests.".into(),
            fix: "In X's Developer Console open your app's \"Keys and tokens\" tab and copy the API Key and API Key \
                  Secret from \"Consumer Keys\", not the Client ID and Client Secret from \"OAuth 2.0 Client ID and \
                  Client Secret\"."
                .into(),
        })
    }
}

fn whitespace_trimmed(field: &'static str) -> CredentialProblem {
    CredentialProblem {
        code: "whitespace_trimmed",
        severity: Severity::Warning,
        field: Some(field),
        message: format!(
            "The {} had white space around it, which was removed.",
            label(field)
        ),
        fix: "Paste the value without leading or trailing spaces or line breaks.".into(),
    }
}

/// The name X's Developer Console gives a field.
pub fn label(field: &str) -> &'static str {
    match field {
        API_KEY => "API Key",
        API_SECRET => "API Key Secret",
        ACCESS_TOKEN => "Access Token",
        ACCESS_TOKEN_SECRET => "Access Token Secret",
        _ => "value",
    }
}

/// Where an app's keys are, as X's documentation says today (docs.x.com, "API Key and Secret"),
/// then in a few words where the older developer portal kept them.
pub const WHERE_THE_KEYS_ARE: &str = "In X's Developer Console, open \"Apps\" in the side navigation, then your \
                                      app, then its \"Keys and tokens\" tab (an older app may sit inside a \
                                      Project: Projects & Apps, the Project, the app).";

/// The resource form: the four keys, with where to find each in X's Developer Console.
pub fn resource_form() -> Form {
    let field = |id: &str, kind: &str, where_: &str| {
        FormField::new(
            id,
            label(id),
            &format!("{WHERE_THE_KEYS_ARE} {where_}"),
            kind,
        )
    };
    Form {
        submit: None,
        default: Map::new(),
        title: Some("Twitter (X) app keys".into()),
        groups: vec![
            FormGroup {
                name: Some("Consumer Keys".into()),
                description: Some(
                    "The keys that identify your app. The app must be one X enrolls for API v2 (any app made in \
                     the Developer Console; an older app only inside a Project) and, to post, have \"Read and \
                     write\" permission (User authentication settings → App permissions)."
                        .into(),
                ),
                fields: vec![
                    field(API_KEY, "password", "Under \"Consumer Keys\", copy the API Key (press \"Regenerate\" if you no longer have it)."),
                    field(API_SECRET, "password", "Under \"Consumer Keys\", copy the API Key Secret shown with the API Key."),
                ],
            },
            FormGroup {
                name: Some("Authentication Tokens".into()),
                description: Some(
                    "The tokens of the account that tweets. Generate them after setting \"Read and write\": \
                     tokens keep the permission they were created with."
                        .into(),
                ),
                fields: vec![
                    field(ACCESS_TOKEN, "password", "Under \"Authentication Tokens\", copy the Access Token (it starts with the account's numeric id and a dash)."),
                    field(ACCESS_TOKEN_SECRET, "password", "Under \"Authentication Tokens\", copy the Access Token Secret shown with the Access Token."),
                ],
            },
        ],
    }
}

/// The form's initial values: every field empty.
pub fn resource_init() -> Map<String, Value> {
    FIELDS
        .iter()
        .map(|f| ((*f).to_owned(), Value::String(String::new())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn four(api_key: &str) -> Value {
        json!({"api_key": api_key, "api_secret": "s", "access_token": "12-t", "access_token_secret": "ts"})
    }

    #[test]
    fn reads_and_trims() {
        let parsed = Credentials::from_json(&json!({
            "api_key": " key\n", "api_secret": "s", "access_token": "12-t", "access_token_secret": "ts"
        }))
        .unwrap();
        assert_eq!(parsed.credentials.api_key.expose_secret(), "key");
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].code, "whitespace_trimmed");
        assert_eq!(parsed.warnings[0].field, Some(API_KEY));
        assert_eq!(parsed.credentials.token_user_id(), Some("12"));
    }

    #[test]
    fn reports_every_bad_field() {
        let errors = Credentials::from_json(
            &json!({"api_key": 3, "api_secret": "  ", "access_token": null}),
        )
        .unwrap_err();
        assert_eq!(errors["api_key"], "Input should be a valid string");
        assert!(errors["api_secret"].starts_with("Field must not be empty"));
        assert_eq!(errors["access_token"], "Field required");
        assert_eq!(errors["access_token_secret"], "Field required");
        assert!(
            Credentials::from_json(&json!([1]))
                .unwrap_err()
                .contains_key("body")
        );
    }

    #[test]
    fn spots_an_oauth2_client_id() {
        let parsed = Credentials::from_json(&four("M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ")).unwrap();
        assert_eq!(
            parsed.credentials.client_id_as_api_key().unwrap().code,
            "client_id_as_api_key"
        );
        let parsed = Credentials::from_json(&four("xvz1evFS4wEEPTGEFPHBog")).unwrap();
        assert!(parsed.credentials.client_id_as_api_key().is_none());
    }

    #[test]
    fn debug_shows_no_secret() {
        let parsed = Credentials::from_json(&four("visible-key")).unwrap();
        assert!(!format!("{parsed:?}").contains("visible-key"));
    }

    /// The form names today's path first (Developer Console → Apps → the app → Keys and tokens),
    /// then the older portal's, in every field.
    #[test]
    fn form_speaks_today_s_x() {
        for field in resource_form().groups.iter().flat_map(|g| &g.fields) {
            let text = field.description.as_deref().expect("a description");
            let today = text.find("Developer Console").expect("today's console");
            let apps = text
                .find("\"Apps\" in the side navigation")
                .expect("its Apps");
            let tab = text.find("\"Keys and tokens\"").expect("the tab");
            let older = text.find("Projects & Apps").expect("the older path");
            assert!(today < apps && apps < tab && tab < older, "{text}");
            assert!(!text.contains("developer.x.com"), "{text}");
        }
    }

    #[test]
    fn form_has_the_four_tracardi_fields() {
        let form = resource_form();
        let fields: Vec<_> = form.groups.iter().flat_map(|g| &g.fields).collect();
        let ids: Vec<_> = fields.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, FIELDS);
        for f in &fields {
            // All four are treated as secrets, the API Key included: together they post as the account.
            assert_eq!(f.component.kind, "password", "{} is a secret", f.id);
        }
        assert_eq!(resource_init().len(), 4);
    }
}
