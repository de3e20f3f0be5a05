//! Tracardi-compatible auth (tracardi-protocol.md §1.2): every failure is 403 `{"detail"}`.

use crate::fake_x::{FakeX, Keys, Scenario};
use crate::support::{TestApp, json};
use serde_json::json;

/// The vector of tracardi-protocol.md §1.2 (values from the Python server's README).
const VECTOR_API_KEY: &str =
    "983d32f6-4cd1-4ec1-b20c-f99f3eb8277b-db3e32536f658b6960aaad407c1a169cd02d7fd3";
const VECTOR_SECRET: &str = "c1d44724c7543f19dc834d8bd8c86a92";
const VECTOR_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJwYXlsb2FkIjoiMzI3NDhiMjk5Y2VhNmM4NmVkODczYjY1NzA1MDQwZWUifQ.sRbL0uk512ZRksw3uksLXBO3SB1HNqIGvWcdwqm_N9Y";

async fn assert_forbidden(response: reqwest::Response, detail: &str) {
    assert_eq!(response.status(), 403, "auth failures are 403, never 401");
    assert!(
        crate::support::content_type(&response).starts_with("application/json"),
        "{response:?}"
    );
    assert_eq!(json(response).await, json!({ "detail": detail }));
}

#[tokio::test]
async fn the_tracardi_jwt_vector_round_trips() {
    let app = TestApp::spawn(&["--api-key", VECTOR_API_KEY, "--secret", VECTOR_SECRET]).await;
    let response = app
        .client
        .get(app.url(&format!("/api-key/{VECTOR_API_KEY}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let issued = json(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(issued, app.token);
    // The issued token carries the vector's claim (its header may list its keys in another
    // order than PyJWT's, which Tracardi, holding the token as an opaque string, never reads).
    let claims = |token: &str| {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    assert_eq!(claims(&issued), claims(VECTOR_TOKEN));

    // Both are accepted: the token Tracardi holds from the Python server (the vector) and the
    // one issued here. An empty body gets past auth to the field check.
    for token in [VECTOR_TOKEN, issued.as_str()] {
        let response = app
            .client
            .post(app.url("/validate"))
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_same_keys_give_the_same_token_across_restarts() {
    let first = TestApp::spawn(&[]).await;
    let second = TestApp::spawn(&[]).await;
    assert_eq!(first.token, second.token);
    // A token from this service is refused by one with another SECRET.
    let other = TestApp::spawn(&["--secret", "another-secret-entirely"]).await;
    assert_ne!(other.token, first.token);
    let response = other
        .client
        .post(other.url("/validate"))
        .bearer_auth(&first.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_forbidden(response, "Invalid token.").await;
}

#[tokio::test]
async fn a_wrong_api_key_gets_no_token() {
    let app = TestApp::spawn(&[]).await;
    for wrong in [
        "wrong".to_owned(),
        format!("{}x", app.api_key),
        app.api_key[..app.api_key.len() - 1].to_owned(),
        app.api_key.to_uppercase(),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api-key/{wrong}")))
            .send()
            .await
            .unwrap();
        assert_forbidden(response, "Wrong Api Key").await;
    }
}

#[tokio::test]
async fn validate_refuses_every_bad_authorization_with_403() {
    let keys = Keys::unique("auth");
    let fake = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read-write"),
        },
        &keys,
    )
    .await;
    let app = TestApp::spawn(&["--twitter-api-url", &fake.url]).await;
    let foreign = {
        let other = TestApp::spawn(&["--secret", "a-different-secret-value"]).await;
        other.token.clone()
    };
    let token = app.token.clone();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "Not authenticated"),
        (
            Some(format!("Basic {token}")),
            "Invalid authentication credentials",
        ),
        (Some(token.clone()), "Invalid authentication credentials"),
        (
            Some(format!("bearer {token}")),
            "Invalid authentication scheme.",
        ),
        (
            Some(format!("BEARER {token}")),
            "Invalid authentication scheme.",
        ),
        (Some("Bearer nonsense".into()), "Invalid token."),
        (Some(format!("Bearer {token}x")), "Invalid token."),
        (Some(format!("Bearer {foreign}")), "Invalid token."),
        (Some(format!("Bearer {}", app.api_key)), "Invalid token."),
    ];
    for (authorization, detail) in cases {
        let mut request = app.client.post(app.url("/validate")).json(&keys.json());
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_forbidden(response, detail).await;
    }
    // Auth comes before reading the body: a bad body without a token is still a 403.
    let response = app
        .client
        .post(app.url("/validate"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_forbidden(response, "Not authenticated").await;
    assert_eq!(
        fake.count(),
        0,
        "X was called for an unauthenticated request"
    );

    // And the right token works.
    let response = app.validate(&keys.json()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn open_endpoints_need_no_token() {
    let app = TestApp::spawn(&[]).await;
    for path in ["/resource", "/health", "/ready", "/openapi.json"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
