//! `GET /metrics`: read with a Prometheus text-format parser after known traffic. The recorder is
//! process-wide and nextest runs each test in a process of its own; the assertions compare two
//! scrapes all the same, so that what the service did before (its start, `/api-key`) is not
//! counted.

use crate::fake_tracardi::{Answer, FakeTracardi};
use crate::fake_x::{FakeX, Keys, Scenario};
use crate::support::{TestApp, content_type, json};
use prom_text_format_parser::{Scrape, ValueType};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// One series of a parsed scrape: its name (with `_sum` / `_count` for those of histograms),
/// labels and value.
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Series {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A scrape, parsed by a Prometheus text-format parser that refuses what is not valid.
struct Metrics {
    text: String,
    series: Vec<Series>,
}

impl Metrics {
    fn parse(text: String) -> Self {
        let scrape = Scrape::parse(&text)
            .unwrap_or_else(|e| panic!("the scrape is not Prometheus' text format: {e:?}\n{text}"));
        let mut series = Vec::new();
        for metric in scrape.metrics {
            for sample in metric.samples {
                let suffix = match sample.value.value_type {
                    ValueType::Sample => "",
                    ValueType::Sum => "_sum",
                    ValueType::Count => "_count",
                };
                let name = if sample.labels.iter().any(|l| l.key == "le") {
                    format!("{}_bucket", metric.name)
                } else {
                    format!("{}{suffix}", metric.name)
                };
                series.push(Series {
                    name,
                    labels: sample
                        .labels
                        .iter()
                        .map(|l| (l.key.clone(), l.value.clone()))
                        .collect(),
                    value: sample.value.value.as_f64(),
                });
            }
        }
        Metrics { text, series }
    }

    /// The value of the one series `name` with these labels (and maybe others); 0 when there is
    /// none (a counter not yet touched).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Series> = self
            .series
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} names several series");
        found.first().map_or(0.0, |s| s.value)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.series
            .iter()
            .any(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }
}

/// `GET /metrics` on the main port with the token.
async fn scrape(app: &TestApp) -> Metrics {
    let response = app.get_with_token("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        content_type(&response),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Metrics::parse(response.text().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> u16 {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    response.status().as_u16()
}

const REQUESTS: &str = "tracardi_twitter_http_requests_total";

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_never_show_paths_or_secrets() {
    let app = TestApp::spawn(&[]).await;
    let before = scrape(&app).await;
    for _ in 0..3 {
        assert_eq!(get(&app, "/resource").await, 200);
    }
    assert_eq!(get(&app, "/nope/SECRETSEGMENT").await, 404);
    assert_eq!(get(&app, "/nope/OTHERSEGMENT").await, 404);
    assert_eq!(get(&app, "/api-key/SECRETAPIKEYVALUE").await, 403);
    assert_eq!(
        get(
            &app,
            "/callback?oauth_token=SECRETVALUE&oauth_verifier=SECRETVERIFIER"
        )
        .await,
        200
    );
    // A method nobody standardised cannot mint a series of its own.
    let invented = reqwest::Method::from_bytes(b"SECRETMETHOD").unwrap();
    let response = app
        .client
        .request(invented, app.url("/resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let after = scrape(&app).await;

    let delta =
        |labels: &[(&str, &str)]| after.value(REQUESTS, labels) - before.value(REQUESTS, labels);
    let route = |route, method, status| [("route", route), ("method", method), ("status", status)];
    assert_eq!(delta(&route("/resource", "GET", "200")), 3.0);
    assert_eq!(delta(&route("unmatched", "GET", "404")), 2.0);
    assert_eq!(delta(&route("/api-key/{api_key}", "GET", "403")), 1.0);
    assert_eq!(delta(&route("/callback", "GET", "200")), 1.0);
    assert_eq!(delta(&route("/resource", "other", "405")), 1.0);
    // The first scrape, counted once answered.
    assert_eq!(delta(&route("/metrics", "GET", "200")), 1.0);
    // Latency is by route alone: the three GETs and the made-up method.
    let latency = "tracardi_twitter_http_request_duration_seconds_count";
    assert_eq!(
        after.value(latency, &[("route", "/resource")])
            - before.value(latency, &[("route", "/resource")]),
        4.0
    );
    let stored = "tracardi_twitter_events_stored_total";
    let source = [("source", "callback")];
    assert_eq!(
        after.value(stored, &source) - before.value(stored, &source),
        1.0
    );
    assert_eq!(
        after.value(
            "tracardi_twitter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    #[cfg(target_os = "linux")]
    assert!(after.value("process_start_time_seconds", &[]) > 1.7e9);

    // Only route templates, never a path, a query, a method made up by a client or a secret.
    for secret in [
        "SECRETVALUE",
        "SECRETVERIFIER",
        "SECRETAPIKEYVALUE",
        "SECRETMETHOD",
        "/nope",
        "SECRETSEGMENT",
        app.api_key.as_str(),
        app.token.as_str(),
        app.secret.as_str(),
    ] {
        assert!(!after.text.contains(secret), "{secret} in:\n{}", after.text);
    }
    for series in &after.series {
        if let Some(route) = series.label("route") {
            assert!(route == "unmatched" || route.starts_with('/'), "{route}");
            assert!(!route.contains('?'), "{route}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_on_the_main_port_take_the_token_unless_public() {
    let app = TestApp::spawn(&[]).await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["detail"], "Not authenticated");
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    scrape(&app).await;
    app.shutdown().await;

    let public = TestApp::spawn(&["--metrics-public", "true"]).await;
    let response = public
        .client
        .get(public.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Metrics::parse(response.text().await.unwrap());
    public.shutdown().await;
}

#[tokio::test]
async fn metrics_addr_serves_them_on_a_listener_of_their_own_without_a_token() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::spawn_with_metrics_listener(listener, &[]).await;
    assert_eq!(get(&app, "/resource").await, 200);

    let response = app
        .client
        .get(format!("{metrics_url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        content_type(&response),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = Metrics::parse(response.text().await.unwrap());
    assert!(metrics.value(REQUESTS, &[("route", "/resource"), ("status", "200")]) >= 1.0);
    // Not on the main port any more, with or without the token; nothing else on this one.
    let response = app.get_with_token("/metrics").await;
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .get(format!("{metrics_url}/resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.shutdown().await;
    // Both listeners stop with the service.
    assert!(
        app_is_gone(&metrics_url).await,
        "the metrics listener still answers after shutdown"
    );
}

async fn app_is_gone(url: &str) -> bool {
    crate::support::client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .is_err()
}

#[tokio::test]
async fn metrics_count_validations_calls_to_x_and_its_rate_limit() {
    let keys = Keys::unique("metrics");
    let x = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read-write"),
        },
        &keys,
    )
    .await;
    let app = TestApp::spawn(&["--twitter-api-url", x.url.as_str()]).await;
    let before = scrape(&app).await;
    for _ in 0..2 {
        assert_eq!(app.validate(&keys.json()).await.status(), 200);
    }
    x.set(Scenario::Unauthorized);
    let wrong = Keys::unique("wrong");
    assert_eq!(app.validate(&wrong.json()).await.status(), 200);
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    let validations = "tracardi_twitter_validations_total";
    assert_eq!(delta(validations, &[("outcome", "valid")]), 2.0);
    assert_eq!(delta(validations, &[("outcome", "invalid")]), 1.0);
    let problems = "tracardi_twitter_validation_problems_total";
    assert_eq!(delta(problems, &[("code", "invalid_credentials")]), 1.0);
    let cache = "tracardi_twitter_validation_cache_lookups_total";
    assert_eq!(delta(cache, &[("result", "hit")]), 1.0);
    assert_eq!(delta(cache, &[("result", "miss")]), 2.0);
    let calls = "tracardi_twitter_x_requests_total";
    let users_me = ("endpoint", "/2/users/me");
    assert_eq!(delta(calls, &[users_me, ("status", "200")]), 1.0);
    assert_eq!(delta(calls, &[users_me, ("status", "401")]), 1.0);
    let latency = "tracardi_twitter_x_request_duration_seconds_count";
    assert_eq!(delta(latency, &[users_me]), 2.0);
    // The fake's 200 carries X's headers: limit 75, 74 left.
    assert_eq!(
        after.value("tracardi_twitter_x_rate_limit_remaining", &[users_me]),
        74.0
    );
    assert_eq!(
        after.value("tracardi_twitter_x_rate_limit_limit", &[users_me]),
        75.0
    );
    assert!(
        after.value(
            "tracardi_twitter_x_rate_limit_reset_timestamp_seconds",
            &[users_me]
        ) > 1.7e9
    );
    for key in [
        &keys.api_key,
        &keys.access_token,
        &wrong.api_key,
        &wrong.access_token,
    ] {
        assert!(!after.text.contains(key.as_str()));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_show_the_outbox_and_count_deliveries_by_outcome() {
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::ServerError);
    let args = crate::support::delivery_args(&tracardi.url, "metrics-source", &[]);
    let app = TestApp::spawn(&args).await;
    let before = scrape(&app).await;
    for i in 0..2 {
        assert_eq!(
            get(&app, &format!("/callback?denied=metrics-{i}")).await,
            200
        );
    }
    // Tracardi fails: the events wait, and the gauges say so (read at most every 2 s).
    let deadline = tokio::time::Instant::now() + WAIT;
    let failing = loop {
        let now = scrape(&app).await;
        let waiting = now.value("tracardi_twitter_outbox_events", &[("state", "pending")])
            + now.value("tracardi_twitter_outbox_events", &[("state", "delivering")]);
        let retried = now.value("tracardi_twitter_deliveries_total", &[("outcome", "retry")]);
        if waiting == 2.0 && retried >= 1.0 {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backlog shown:\n{}",
            now.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failing.value("tracardi_twitter_outbox_readable", &[]), 1.0);
    assert!(failing.has("tracardi_twitter_outbox_oldest_pending_age_seconds", &[]));
    assert_eq!(
        failing.value("tracardi_twitter_outbox_events", &[("state", "dead")]),
        0.0
    );

    tracardi.answer(Answer::Ok);
    tracardi
        .wait_until(WAIT, "both events delivered", |t| t.id_counts().len() == 2)
        .await;
    let mut delivered = scrape(&app).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while delivered.value(
        "tracardi_twitter_deliveries_total",
        &[("outcome", "delivered")],
    ) - before.value(
        "tracardi_twitter_deliveries_total",
        &[("outcome", "delivered")],
    ) < 2.0
    {
        assert!(tokio::time::Instant::now() < deadline, "{}", delivered.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
        delivered = scrape(&app).await;
    }
    let outcome = |m: &Metrics, o| m.value("tracardi_twitter_deliveries_total", &[("outcome", o)]);
    assert_eq!(
        outcome(&delivered, "delivered") - outcome(&before, "delivered"),
        2.0
    );
    assert_eq!(outcome(&delivered, "dead") - outcome(&before, "dead"), 0.0);
    let requests = "tracardi_twitter_delivery_request_duration_seconds_count";
    assert!(delivered.value(requests, &[("outcome", "delivered")]) >= 1.0);
    assert!(delivered.value(requests, &[("outcome", "retry")]) >= 1.0);
    let stored = "tracardi_twitter_events_stored_total";
    let source = [("source", "callback")];
    assert_eq!(
        delivered.value(stored, &source) - before.value(stored, &source),
        2.0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_count_send_tweet_runs_by_port_and_code() {
    let app = TestApp::spawn(&[]).await;
    let before = scrape(&app).await;
    // A node without a tweet text, twice: refused before X is asked.
    let path = format!(
        "/plugin/run?service_id={}&action_id={}",
        tracardi_twitter::microservice::SERVICE_ID,
        tracardi_twitter::microservice::SEND_TWEET_ID
    );
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&app.token)
            .json(&serde_json::json!({"init": {}, "context": {}, "params": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            json(response).await["result"]["value"]["code"],
            "invalid_config"
        );
    }
    let after = scrape(&app).await;
    let runs = "tracardi_twitter_send_tweet_runs_total";
    let labels = [("port", "error"), ("code", "invalid_config")];
    assert_eq!(
        after.value(runs, &labels) - before.value(runs, &labels),
        2.0
    );
    app.shutdown().await;
}

/// x-activity.md §2.7's like, as X's X Activity API delivers it.
const XAA_LIKE: &str = r#"{"data":{"event_uuid":"-3402274206530057851","event_type":"like.create","tag":"tr:p-42",
 "filter":{"user_id":"1111111111111111111","direction":"inbound"},
 "payload":{"id":"87719f50ee17bdfa06a3089098a2b9ed","liked_tweet_id":"2079814480427442556",
  "liked_tweet_author_id":"1111111111111111111","created_at":"2026-07-24T21:12:45.000Z",
  "timestamp_ms":"1784927565236"}}}"#;

#[tokio::test]
async fn metrics_count_x_webhook_crc_checks_signature_failures_and_activities() {
    let s = crate::connect::setup(&[]).await;
    let sender = crate::fake_x::WebhookSender::new(
        &s.app.url("/x/webhook"),
        crate::connect::CONSUMER_SECRET,
    );
    let before = scrape(&s.app).await;
    let crc = s
        .http
        .get(s.app.url("/x/webhook?crc_token=SECRETCRCTOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(crc.status(), 200);
    let unsigned = sender.post(XAA_LIKE, &[]).await;
    assert_eq!(unsigned.status, 403);
    let forged = sender
        .post(XAA_LIKE, &[("x-twitter-webhooks-signature", "sha256=AAAA")])
        .await;
    assert_eq!(forged.status, 403);
    // Delivered twice (X retries): one activity counted per delivery, one event stored.
    for _ in 0..2 {
        assert_eq!(sender.deliver(XAA_LIKE).await.status, 200);
    }
    let after = scrape(&s.app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(
        delta("tracardi_twitter_x_webhook_crc_checks_total", &[]),
        1.0
    );
    assert_eq!(
        delta("tracardi_twitter_x_webhook_signature_failures_total", &[]),
        2.0
    );
    assert_eq!(
        delta(
            "tracardi_twitter_x_webhook_events_total",
            &[("event_type", "twitter-like")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "tracardi_twitter_events_stored_total",
            &[("source", "x_webhook")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            REQUESTS,
            &[
                ("route", "/x/webhook"),
                ("method", "POST"),
                ("status", "403")
            ]
        ),
        2.0
    );
    assert!(!after.text.contains("SECRETCRCTOKEN"));
}
