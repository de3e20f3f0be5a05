//! The resource form Tracardi's GUI shows for this service (`GET /resource`,
//! `GET /service/resource`): the four keys, in Tracardi's `Form` format, each with where to find
//! it in X's Developer Console. What the keys are and where X keeps them is X's side
//! (`twitter::credentials`); the form they are asked for in is Tracardi's.

use crate::tracardi::form::{Form, FormField, FormGroup};
use crate::twitter::credentials::{
    ACCESS_TOKEN, ACCESS_TOKEN_SECRET, API_KEY, API_SECRET, FIELDS, WHERE_THE_KEYS_ARE, label,
};
use serde_json::{Map, Value};

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
