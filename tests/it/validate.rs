//! `POST /validate`: every verdict and problem code, the 422 shapes, the undecided answers
//! (429, 502, 504) and the cache.

use crate::fake_x::{ACCOUNT_ID, FakeX, Keys, NAME, Scenario, USERNAME};
use crate::support::{TestApp, content_type, json};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const READ_WRITE: Scenario = Scenario::Ok {
    access_level: Some("read-write"),
};

/// A service pointed at a fake X that knows `keys` and answers as `scenario` says.
async fn setup(scenario: Scenario, keys: &Keys, extra: &[&str]) -> (TestApp, FakeX) {
    let fake = FakeX::with_keys(scenario, keys).await;
    let mut args = vec!["--twitter-api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    (TestApp::spawn(&args).await, fake)
}

/// Validates `keys` and returns the 200 report.
async fn report(app: &TestApp, keys: &Keys) -> Value {
    let response = app.validate(&keys.json()).await;
    assert_eq!(response.status(), 200, "a verdict");
    json(response).await
}

fn codes(report: &Value) -> Vec<&str> {
    report["problems"]
        .as_array()
        .expect("problems is a list")
        .iter()
        .map(|p| p["code"].as_str().expect("a code"))
        .collect()
}

/// Asserts the report is a refusal with exactly this one error.
fn assert_refused(report: &Value, code: &str) -> Value {
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["account"], Value::Null);
    assert_eq!(report["access_level"], Value::Null);
    assert_eq!(codes(report), [code], "{report}");
    let problem = report["problems"][0].clone();
    assert_eq!(problem["severity"], "error");
    assert!(!problem["message"].as_str().unwrap().is_empty());
    assert!(!problem["fix"].as_str().unwrap().is_empty());
    problem
}

#[tokio::test]
async fn valid_keys_name_the_account_and_its_access_level() {
    let keys = Keys::unique("valid");
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;
    let report = report(&app, &keys).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(
        report["account"],
        json!({"id": ACCOUNT_ID, "username": USERNAME, "name": NAME})
    );
    assert_eq!(report["access_level"], "read-write");
    assert_eq!(report["problems"], json!([]));
    assert_eq!(report["cached"], false);
    let rate_limit = &report["rate_limit"];
    assert_eq!(rate_limit["limit"], 75);
    assert_eq!(rate_limit["remaining"], 74);
    assert!(rate_limit["reset"].as_u64().unwrap() > 1_700_000_000);

    // What reached X: one correctly signed GET /2/users/me with our keys and no query.
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/2/users/me")
    );
    assert_eq!(request.query, None);
    assert!(request.signature_ok);
    let user_agent = request.headers["user-agent"].to_str().unwrap();
    assert!(user_agent.starts_with("tracardi-twitter/"), "{user_agent}");
    assert_eq!(request.oauth["oauth_consumer_key"], keys.api_key);
    assert_eq!(request.oauth["oauth_token"], keys.access_token);
    assert_eq!(request.oauth["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(request.oauth["oauth_version"], "1.0");
    assert!(request.oauth["oauth_nonce"].len() >= 32);
    let timestamp: u64 = request.oauth["oauth_timestamp"].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        timestamp.abs_diff(now) < 120,
        "timestamp {timestamp}, now {now}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn direct_message_access_is_reported() {
    let keys = Keys::unique("dm");
    let (app, _fake) = setup(
        Scenario::Ok {
            access_level: Some("read-write-directmessages"),
        },
        &keys,
        &[],
    )
    .await;
    let report = report(&app, &keys).await;
    assert_eq!(report["valid"], true);
    assert_eq!(report["access_level"], "read-write-directmessages");
    assert_eq!(report["problems"], json!([]));
}

#[tokio::test]
async fn a_read_only_token_is_a_warning_with_the_regeneration_fix() {
    let keys = Keys::unique("ro");
    let (app, _fake) = setup(
        Scenario::Ok {
            access_level: Some("read"),
        },
        &keys,
        &[],
    )
    .await;
    let report = report(&app, &keys).await;
    assert_eq!(
        report["valid"], true,
        "a warning does not invalidate: {report}"
    );
    assert_eq!(report["access_level"], "read");
    assert_eq!(codes(&report), ["read_only_token"]);
    let problem = &report["problems"][0];
    assert_eq!(problem["severity"], "warning");
    assert_eq!(problem["field"], "access_token");
    let fix = problem["fix"].as_str().unwrap();
    assert!(fix.contains("Read and write"), "{fix}");
    assert!(fix.contains("regenerate"), "{fix}");
}

#[tokio::test]
async fn a_401_is_invalid_credentials_with_its_causes() {
    let keys = Keys::unique("u401");
    let (app, _fake) = setup(Scenario::Unauthorized, &keys, &[]).await;
    let report = report(&app, &keys).await;
    let problem = assert_refused(&report, "invalid_credentials");
    let fix = problem["fix"].as_str().unwrap();
    for cause in ["API Key", "regenerated", "revoked", "suspended"] {
        assert!(
            fix.contains(cause),
            "the fix does not mention {cause:?}: {fix}"
        );
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_by_the_fake_and_reported_as_invalid_credentials() {
    // The fake knows other secrets for the same key and token: the signature cannot verify.
    let sent = Keys::unique("badsig");
    let known = Keys {
        api_secret: "the-real-secret".into(),
        ..sent.clone()
    };
    let (app, fake) = setup(READ_WRITE, &known, &[]).await;
    let report = report(&app, &sent).await;
    assert_refused(&report, "invalid_credentials");
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0].signature_ok);
}

#[tokio::test]
async fn a_401_with_a_skewed_clock_is_clock_skew() {
    let keys = Keys::unique("skew");
    let (app, _fake) = setup(Scenario::ClockSkew(Duration::from_secs(600)), &keys, &[]).await;
    let report = report(&app, &keys).await;
    let problem = assert_refused(&report, "clock_skew");
    assert!(
        problem["fix"].as_str().unwrap().contains("NTP"),
        "{problem}"
    );
}

#[tokio::test]
async fn forbidden_answers_name_their_cause() {
    for (scenario, code, field) in [
        (
            Scenario::ClientNotEnrolled,
            "client_not_enrolled",
            Some("api_key"),
        ),
        (Scenario::PlanLacksEndpoint, "plan_lacks_endpoint", None),
        (
            Scenario::UserSuspended,
            "user_suspended",
            Some("access_token"),
        ),
        (Scenario::PaymentRequired, "out_of_credits", None),
    ] {
        let keys = Keys::unique(code);
        let (app, fake) = setup(scenario, &keys, &[]).await;
        let report = report(&app, &keys).await;
        let problem = assert_refused(&report, code);
        match field {
            Some(field) => assert_eq!(problem["field"], field, "{code}"),
            None => assert!(problem.get("field").is_none(), "{code}: {problem}"),
        }
        assert_eq!(fake.count(), 1);
    }
}

#[tokio::test]
async fn the_fix_for_an_unenrolled_app_says_to_attach_it_to_a_project() {
    let keys = Keys::unique("enrol");
    let (app, _fake) = setup(Scenario::ClientNotEnrolled, &keys, &[]).await;
    let problem = assert_refused(&report(&app, &keys).await, "client_not_enrolled");
    assert!(
        problem["fix"].as_str().unwrap().contains("Project"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_oauth2_client_id_is_caught_without_calling_x() {
    let keys = Keys {
        // X's documented Client ID example: base64 of text ending in ":1:ci".
        api_key: "M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ".into(),
        ..Keys::unique("clientid")
    };
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;
    let report = report(&app, &keys).await;
    let problem = assert_refused(&report, "client_id_as_api_key");
    assert_eq!(problem["field"], "api_key");
    assert!(problem["fix"].as_str().unwrap().contains("Consumer Keys"));
    assert_eq!(fake.count(), 0, "X must not be called for a Client ID");
}

#[tokio::test]
async fn pasted_white_space_is_trimmed_with_a_warning() {
    let keys = Keys::unique("ws");
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;
    let mut body = keys.json();
    body["api_key"] = format!("  {}\n", keys.api_key).into();
    body["access_token_secret"] = format!("\t{} ", keys.access_token_secret).into();
    let response = app.validate(&body).await;
    assert_eq!(response.status(), 200);
    let report = json(response).await;
    // The trimmed values signed correctly: X accepted them.
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(codes(&report), ["whitespace_trimmed", "whitespace_trimmed"]);
    let fields: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["field"])
        .collect();
    assert_eq!(fields, [&json!("api_key"), &json!("access_token_secret")]);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["severity"] == "warning")
    );
    assert!(fake.received()[0].signature_ok);
}

#[tokio::test]
async fn a_token_of_another_account_is_a_warning() {
    let keys = Keys {
        access_token: format!("6253282-{}", uuid::Uuid::new_v4().simple()),
        ..Keys::unique("mismatch")
    };
    let (app, _fake) = setup(READ_WRITE, &keys, &[]).await;
    let report = report(&app, &keys).await;
    assert_eq!(report["valid"], true);
    assert_eq!(codes(&report), ["token_account_mismatch"]);
    let problem = &report["problems"][0];
    assert_eq!(problem["severity"], "warning");
    assert_eq!(problem["field"], "access_token");
    let message = problem["message"].as_str().unwrap();
    assert!(
        message.contains("6253282") && message.contains(ACCOUNT_ID),
        "{message}"
    );
}

/// Asserts a 422 in the flat shape Tracardi shows under its form fields.
async fn assert_fields(response: reqwest::Response, expected: &[(&str, &str)]) {
    assert_eq!(response.status(), 422);
    assert!(content_type(&response).starts_with("application/json"));
    let body = json(response).await;
    let object = body.as_object().expect("a flat object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut wanted: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
    wanted.sort_unstable();
    assert_eq!(keys, wanted, "{body}");
    for (field, start) in expected {
        let message = object[*field].as_str().expect("messages are strings");
        assert!(message.starts_with(start), "{field}: {message}");
    }
}

#[tokio::test]
async fn bad_bodies_get_flat_field_errors_without_calling_x() {
    let keys = Keys::unique("fields");
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;

    let mut missing = keys.json();
    missing.as_object_mut().unwrap().remove("api_secret");
    assert_fields(
        app.validate(&missing).await,
        &[("api_secret", "Field required")],
    )
    .await;

    let mut nulls = keys.json();
    nulls["access_token"] = Value::Null;
    assert_fields(
        app.validate(&nulls).await,
        &[("access_token", "Field required")],
    )
    .await;

    let mut empty = keys.json();
    empty["api_key"] = "".into();
    empty["access_token_secret"] = "  \n".into();
    assert_fields(
        app.validate(&empty).await,
        &[
            ("api_key", "Field must not be empty"),
            ("access_token_secret", "Field must not be empty"),
        ],
    )
    .await;

    let mut not_strings = keys.json();
    not_strings["api_key"] = json!(12345);
    not_strings["api_secret"] = json!(["a"]);
    assert_fields(
        app.validate(&not_strings).await,
        &[
            ("api_key", "Input should be a valid string"),
            ("api_secret", "Input should be a valid string"),
        ],
    )
    .await;

    assert_fields(
        app.validate(&json!({})).await,
        &[
            ("api_key", "Field required"),
            ("api_secret", "Field required"),
            ("access_token", "Field required"),
            ("access_token_secret", "Field required"),
        ],
    )
    .await;

    for not_an_object in [json!([keys.api_key]), json!("keys"), json!(42)] {
        assert_fields(
            app.validate(&not_an_object).await,
            &[("body", "Body must be")],
        )
        .await;
    }

    for not_json in ["", "api_key=abc", "{\"api_key\": \"abc\""] {
        let response = app
            .client
            .post(app.url("/validate"))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(not_json)
            .send()
            .await
            .unwrap();
        assert_fields(response, &[("body", "Body must be json")]).await;
    }
    assert_eq!(fake.count(), 0, "X must not be called for a bad body");
}

/// Asserts an `application/problem+json` answer with this status and code.
async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(content_type(&response), "application/problem+json");
    let body = json(response).await;
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["title"].is_string());
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

#[tokio::test]
async fn a_rate_limited_check_is_429_with_retry_after() {
    let keys = Keys::unique("rl");
    let (app, _fake) = setup(Scenario::RateLimited { reset_in: 120 }, &keys, &[]).await;
    let response = app.validate(&keys.json()).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    // X's reset is 120 s away, give or take the second boundaries crossed while testing.
    assert!(
        (100..=121).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body = assert_problem(response, 429, "x_rate_limited").await;
    assert_eq!(body["retry_after"], retry_after);
    assert!(
        body["detail"].as_str().unwrap().contains("rate-limited"),
        "{body}"
    );
}

#[tokio::test]
async fn unexpected_answers_from_x_are_502() {
    for (scenario, status) in [
        (Scenario::ServerError(500), "500"),
        (Scenario::ServerError(503), "503"),
        (Scenario::Garbage, "200"),
    ] {
        let keys = Keys::unique("bad");
        let (app, fake) = setup(scenario, &keys, &[]).await;
        let body =
            assert_problem(app.validate(&keys.json()).await, 502, "x_unexpected_answer").await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(status), "{detail}");
        assert_eq!(fake.count(), 1);
        // No verdict, so nothing is remembered: the next call asks X again.
        let _ = app.validate(&keys.json()).await;
        assert_eq!(fake.count(), 2, "an undecided answer was cached");
    }
}

#[tokio::test]
async fn an_unreachable_x_is_502() {
    let keys = Keys::unique("refused");
    let refusing = FakeX::refusing_url();
    let app = TestApp::spawn(&["--twitter-api-url", &refusing]).await;
    let body = assert_problem(app.validate(&keys.json()).await, 502, "x_unreachable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("TWITTER_API_URL"),
        "{body}"
    );
}

#[tokio::test]
async fn a_slow_x_is_504_after_the_validate_timeout() {
    let keys = Keys::unique("slow");
    let (app, fake) = setup(
        Scenario::Slow(Duration::from_secs(30)),
        &keys,
        &["--validate-timeout", "300ms"],
    )
    .await;
    // The answer comes at the timeout, not when X finally answers (after 30 s).
    let answer = tokio::time::timeout(Duration::from_secs(25), app.validate(&keys.json()))
        .await
        .expect("an answer before X's");
    let body = assert_problem(answer, 504, "x_timeout").await;
    assert!(
        body["detail"].as_str().unwrap().contains("300 ms"),
        "{body}"
    );
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn the_same_keys_are_answered_from_memory_until_refresh() {
    let keys = Keys::unique("cache");
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;
    let first = report(&app, &keys).await;
    assert_eq!(first["cached"], false);
    assert_eq!(fake.count(), 1);

    let second = report(&app, &keys).await;
    assert_eq!(second["cached"], true);
    assert_eq!(fake.count(), 1, "the second call reached X");
    let mut uncached = second.clone();
    uncached["cached"] = false.into();
    assert_eq!(uncached, first, "the remembered report is the same report");

    let refreshed = app
        .validate_at("/validate?refresh=true", &keys.json())
        .await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(json(refreshed).await["cached"], false);
    assert_eq!(fake.count(), 2, "?refresh=true must ask X");

    // Other keys (here: one secret differs) are never answered from the cache.
    let other = Keys {
        access_token_secret: format!("{}x", keys.access_token_secret),
        ..keys.clone()
    };
    fake.accept(&other);
    let report_other = report(&app, &other).await;
    assert_eq!(report_other["cached"], false);
    assert_eq!(fake.count(), 3);

    // Moving characters between fields gives other keys too.
    let shifted = Keys {
        api_key: format!("{}{}", keys.api_key, &keys.api_secret[..1]),
        api_secret: keys.api_secret[1..].to_owned(),
        ..keys.clone()
    };
    fake.accept(&shifted);
    assert_eq!(report(&app, &shifted).await["cached"], false);
    assert_eq!(fake.count(), 4);

    // A refused verdict is remembered too: each check costs quota.
    fake.set(Scenario::Unauthorized);
    let stranger = Keys::unique("stranger");
    fake.accept(&stranger);
    assert_eq!(report(&app, &stranger).await["cached"], false);
    let again = report(&app, &stranger).await;
    assert_eq!(again["cached"], true);
    assert_eq!(codes(&again), ["invalid_credentials"]);
    assert_eq!(fake.count(), 5);
}

#[tokio::test]
async fn whitespace_warnings_are_not_remembered() {
    let keys = Keys::unique("wscache");
    let (app, fake) = setup(READ_WRITE, &keys, &[]).await;
    let mut padded = keys.json();
    padded["api_secret"] = format!("{} ", keys.api_secret).into();
    let first = json(app.validate(&padded).await).await;
    assert_eq!(codes(&first), ["whitespace_trimmed"]);
    // The same keys pasted cleanly: answered from memory, without the warning.
    let clean = report(&app, &keys).await;
    assert_eq!(clean["cached"], true);
    assert_eq!(clean["problems"], json!([]));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn a_remembered_verdict_expires_after_the_cache_ttl() {
    let keys = Keys::unique("ttl");
    let (app, fake) = setup(READ_WRITE, &keys, &["--validate-cache-ttl", "300ms"]).await;
    assert_eq!(report(&app, &keys).await["cached"], false);
    // Poll until the entry has expired; every cached answer must leave X alone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = report(&app, &keys).await;
        if report["cached"] == false {
            break;
        }
        assert_eq!(fake.count(), 1, "a cached answer reached X");
        assert!(Instant::now() < deadline, "the cache never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.count(), 2);
}

/// Concurrent checks of the same keys share one call to X (quota and money): the first check's
/// call is still in flight (X is slow) when the others arrive, and every one gets its verdict.
#[tokio::test]
async fn concurrent_checks_of_the_same_keys_make_one_call() {
    let keys = Keys::unique("single-flight");
    let (app, fake) = setup(Scenario::Slow(Duration::from_secs(2)), &keys, &[]).await;
    let app = std::sync::Arc::new(app);
    let check = |app: std::sync::Arc<TestApp>, body: Value| {
        tokio::spawn(async move { app.validate(&body).await })
    };
    let first = check(app.clone(), keys.json());
    // Once the first call has reached X, the others are misses while it is being answered.
    crate::support::wait_until(Duration::from_secs(10), "the first call to X", || {
        fake.count() == 1
    })
    .await;
    let others: Vec<_> = (0..40).map(|_| check(app.clone(), keys.json())).collect();
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    let first = json(first).await;
    for other in others {
        let response = other.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut report = json(response).await;
        assert_eq!(report["cached"], true, "it waited for the shared call");
        report["cached"] = false.into();
        assert_eq!(report, first);
    }
    assert_eq!(
        fake.count(),
        1,
        "concurrent checks of the same keys each called X"
    );
}

/// An answer from X is read up to a limit, not whole: a body that never ends is cut there and
/// judged at once (502), instead of being read until the timeout.
#[tokio::test]
async fn an_endless_answer_from_x_is_cut_off() {
    let keys = Keys::unique("endless");
    let (app, _fake) = setup(Scenario::Endless, &keys, &["--validate-timeout", "20s"]).await;
    let body = assert_problem(app.validate(&keys.json()).await, 502, "x_unexpected_answer").await;
    assert!(body["detail"].as_str().unwrap().contains("200"), "{body}");
}
