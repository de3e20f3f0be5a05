//! Secrets never leave: not in an answer, not in a log line.
//!
//! Validations with recognisable values go through every path (accepted, 401, 403, 422, 502,
//! 504); every status line, header and body that came back, and everything logged by the whole
//! test binary at `debug`, are searched for the values.

use crate::fake_x::{FakeX, Keys, Scenario};
use crate::support::{TestApp, logs};
use std::time::Duration;

/// Everything an answer showed the caller.
async fn transcript(response: reqwest::Response) -> String {
    let mut text = format!("{}\n", response.status());
    for (name, value) in response.headers() {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str(&response.text().await.unwrap_or_default());
    text.push('\n');
    text
}

fn assert_absent(haystack: &str, secrets: &[(&str, &str)], place: &str) {
    for (name, value) in secrets {
        assert!(!haystack.contains(value), "the {name} appears in {place}");
    }
}

#[tokio::test]
async fn no_secret_reaches_an_answer_or_a_log() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    // The access token starts with the fake's account id so that the accepted path is complete.
    let keys = Keys {
        api_key: format!("LEAKCHECK-apikey-{run}"),
        api_secret: format!("LEAKCHECK-apisecret-{run}"),
        access_token: format!("{}-LEAKCHECK-token-{run}", crate::fake_x::ACCOUNT_ID),
        access_token_secret: format!("LEAKCHECK-tokensecret-{run}"),
    };
    let service_key = format!("LEAKCHECK-serviceapikey-{run}");
    let service_secret = format!("LEAKCHECK-servicesecret-{run}");
    let fake = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read"),
        },
        &keys,
    )
    .await;
    let app = TestApp::spawn(&[
        "--twitter-api-url",
        &fake.url,
        "--api-key",
        &service_key,
        "--secret",
        &service_secret,
        "--validate-timeout",
        "2s",
    ])
    .await;
    let request_id = format!("leakcheck-{run}");
    let mut answers = String::new();
    let call = |path: &'static str, body: String| {
        app.client
            .post(app.url(path))
            .bearer_auth(&app.token)
            .header("x-request-id", &request_id)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let body = keys.json().to_string();

    // Accepted, with a warning that names the account.
    let response = call("/validate", body.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    answers += &transcript(response).await;
    // Pasted with white space: a warning about a field, which must not quote the value.
    let mut padded = keys.json();
    padded["api_secret"] = format!(" {} ", keys.api_secret).into();
    let response = call("/validate?refresh=true", padded.to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    answers += &transcript(response).await;

    for (scenario, status) in [
        (Scenario::Unauthorized, 200),
        (Scenario::ClockSkew(Duration::from_secs(900)), 200),
        (Scenario::UserSuspended, 200),
        (Scenario::ClientNotEnrolled, 200),
        (Scenario::RateLimited { reset_in: 60 }, 429),
        (Scenario::ServerError(500), 502),
        (Scenario::Garbage, 502),
        (Scenario::Slow(Duration::from_secs(60)), 504),
    ] {
        fake.set(scenario.clone());
        let response = call("/validate?refresh=true", body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{scenario:?}");
        answers += &transcript(response).await;
    }
    // A signature X refuses: other secrets for the same key and token.
    let wrong = Keys {
        api_secret: format!("LEAKCHECK-wrongsecret-{run}"),
        ..keys.clone()
    };
    fake.set(Scenario::Ok {
        access_level: Some("read-write"),
    });
    let response = call("/validate?refresh=true", wrong.json().to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    answers += &transcript(response).await;
    // Field errors: one value missing, one not a string, and a body cut short mid-secret.
    let mut partial = keys.json();
    partial.as_object_mut().unwrap().remove("access_token");
    let response = call("/validate", partial.to_string()).await.unwrap();
    assert_eq!(response.status(), 422);
    answers += &transcript(response).await;
    let mut typed = keys.json();
    typed["api_key"] = serde_json::json!([keys.api_key]);
    let response = call("/validate", typed.to_string()).await.unwrap();
    assert_eq!(response.status(), 422);
    answers += &transcript(response).await;
    let cut = &body[..body.len() - 10];
    let response = call("/validate", cut.to_owned()).await.unwrap();
    assert_eq!(response.status(), 422);
    answers += &transcript(response).await;
    // A request with the service's own key in the URL, and a wrong one.
    for (key, status) in [(service_key.as_str(), 200), ("LEAKCHECK-notthekey", 403)] {
        let response = app
            .client
            .get(app.url(&format!("/api-key/{key}")))
            .header("x-request-id", &request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    // Bad tokens, which must not be echoed either.
    let response = app
        .client
        .post(app.url("/validate"))
        .header(
            "authorization",
            format!("Bearer {}", keys.access_token_secret),
        )
        .header("x-request-id", &request_id)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    answers += &transcript(response).await;
    // What the traffic above left in the metrics.
    let response = app.get_with_token("/metrics").await;
    assert_eq!(response.status(), 200);
    let metrics = response.text().await.unwrap();
    assert!(metrics.contains("route=\"/validate\""), "{metrics}");
    answers += &metrics;

    let twitter_secrets = [
        ("API Key", keys.api_key.as_str()),
        ("API Key Secret", keys.api_secret.as_str()),
        ("Access Token", keys.access_token.as_str()),
        ("Access Token Secret", keys.access_token_secret.as_str()),
        ("wrong API Key Secret", wrong.api_secret.as_str()),
    ];
    assert_absent(&answers, &twitter_secrets, "an answer");
    // The one recognisable part of every value, in case a value was cut or re-encoded.
    assert!(
        !answers.contains("LEAKCHECK"),
        "a LEAKCHECK value appears in an answer"
    );

    let logged = logs();
    assert!(
        logged.contains(&request_id),
        "the capture saw none of this test's requests: the test cannot see leaks"
    );
    assert!(logged.contains("\"route\":\"/validate\""));
    assert_eq!(app.secret, service_secret);
    let service_secrets = [
        ("service API key", service_key.as_str()),
        ("service SECRET", app.secret.as_str()),
        ("bearer token", app.token.as_str()),
    ];
    assert_absent(&logged, &twitter_secrets, "the logs");
    assert_absent(&logged, &service_secrets, "the logs");
    assert_absent(&metrics, &service_secrets, "the metrics");
    assert!(
        !metrics.contains("LEAKCHECK"),
        "a LEAKCHECK value in the metrics"
    );
    // The token's signature alone is enough to reuse it.
    let signature = app.token.rsplit('.').next().unwrap();
    assert!(
        !logged.contains(signature),
        "the token's signature appears in the logs"
    );
    let leaked: Vec<&str> = logged.lines().filter(|l| l.contains("LEAKCHECK")).collect();
    assert!(
        leaked.is_empty(),
        "log lines with a LEAKCHECK value: {leaked:#?}"
    );
}

#[test]
fn debug_output_shows_no_secret() {
    use tracardi_twitter::twitter::credentials::Credentials;
    let value = serde_json::json!({
        "api_key": "LEAKCHECK-debug-apikey",
        "api_secret": "LEAKCHECK-debug-apisecret",
        "access_token": "1-LEAKCHECK-debug-token",
        "access_token_secret": "LEAKCHECK-debug-tokensecret",
    });
    let parsed = Credentials::from_json(&value).unwrap();
    let debug = format!(
        "{parsed:?} {:?} {:?}",
        parsed.credentials,
        parsed.credentials.keys()
    );
    assert!(!debug.contains("LEAKCHECK"), "{debug}");

    let auth = tracardi_twitter::auth::Authenticator::new(
        "LEAKCHECK-debug-serviceapikey-0123456789abcdef"
            .to_owned()
            .into(),
        "LEAKCHECK-debug-servicesecret".to_owned().into(),
    );
    assert!(!format!("{auth:?}").contains("LEAKCHECK"));
}

/// Every state struct the service builds, formatted with `{:?}`, shows none of the secrets it
/// was configured with, nor the keys it made itself (the validation cache's and the connect
/// state's MAC keys).
#[test]
fn the_whole_state_debug_prints_no_secret() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: tracardi_twitter::config::ServeArgs,
    }
    crate::support::init();
    let data_dir = tempfile::tempdir().unwrap();
    let cli = Cli::try_parse_from([
        "tracardi-twitter",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--api-key",
        "LEAKCHECK-state-serviceapikey-0123456789abcdef",
        "--secret",
        "LEAKCHECK-state-servicesecret-0123456789abcdef",
        "--public-url",
        "https://twitter-ms.example",
        "--twitter-consumer-key",
        "LEAKCHECK-state-consumerkey",
        "--twitter-consumer-secret",
        "LEAKCHECK-state-consumersecret",
        "--twitter-client-id",
        "LEAKCHECK-state-clientid",
        "--twitter-client-secret",
        "LEAKCHECK-state-clientsecret",
        "--twitter-bearer-token",
        "LEAKCHECK-state-bearertoken",
        "--x-activity-events",
        "post.mention.create",
        "--tracardi-api-url",
        "http://127.0.0.1:9",
        "--tracardi-source-id",
        "source-1",
    ])
    .unwrap();
    let (config, _) = cli.serve.check().unwrap();
    // The Redis URL may carry a password: its settings show none either (not connected here).
    let with_redis = Cli::try_parse_from([
        "tracardi-twitter",
        "--data-dir",
        data_dir.path().to_str().unwrap(),
        "--redis-url",
        "redis://:LEAKCHECK-state-redispassword@127.0.0.1:9/0",
    ])
    .unwrap();
    let (redis_config, _) = with_redis.serve.check().unwrap();
    let redis_debug = format!("{redis_config:?}");
    assert!(redis_debug.contains("RedisConfig"), "{redis_debug}");
    assert!(!redis_debug.contains("LEAKCHECK"), "{redis_debug}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = runtime.block_on(async { tracardi_twitter::app_state(&config).await.unwrap() });
    let debug = format!("{config:?}\n{state:?}\n{:?}", state.validator);
    for secret in ["LEAKCHECK", "cache_key_secret", "state_key"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(
        debug.contains("Validator"),
        "the validator was not shown: {debug}"
    );
    assert!(
        debug.contains("WebhookConfig"),
        "the webhook's settings were not shown: {debug}"
    );
}
