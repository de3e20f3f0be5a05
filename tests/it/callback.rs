//! `GET /callback`: recognised redirects become events, stored before the browser is answered,
//! and delivered to a fake Tracardi whatever it does.

use crate::fake_tracardi::{Answer, FakeTracardi};
use crate::support::{TestApp, json};
use std::time::Duration;

const SOURCE: &str = "b3c1d2e4-0000-4000-8000-00000000abcd";
const WAIT: Duration = Duration::from_secs(15);

/// Delivery settings shrunk for tests, unless a test gives its own.
async fn app_with(tracardi: &FakeTracardi, extra: &[&str]) -> TestApp {
    TestApp::spawn(&crate::support::delivery_args(&tracardi.url, SOURCE, extra)).await
}

async fn get(app: &TestApp, path_and_query: &str) -> reqwest::Response {
    app.client
        .get(app.url(path_and_query))
        .send()
        .await
        .expect("the service answers")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn each_redirect_becomes_its_event_in_tracardi() {
    let tracardi = FakeTracardi::start().await;
    let app = app_with(&tracardi, &[]).await;
    let cases = [
        (
            "oauth_token=rt1&oauth_verifier=ver1&tracardi_session=s-9",
            "twitter-authorization-granted",
            "oauth1",
        ),
        ("denied=rt2", "twitter-authorization-denied", "oauth1"),
        (
            "code=c0de&state=st4te",
            "twitter-authorization-granted",
            "oauth2",
        ),
        (
            "error=access_denied&error_description=User+said+no&state=st5",
            "twitter-authorization-denied",
            "oauth2",
        ),
    ];
    for (query, event_type, flow) in cases {
        let response = get(&app, &format!("/callback?{query}")).await;
        assert_eq!(response.status(), 200, "{query}");
        assert!(header(&response, "content-type").starts_with("text/html"));
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert!(header(&response, "content-security-policy").contains("default-src 'none'"));
        let page = response.text().await.unwrap();
        assert!(
            page.contains("You can close this window")
                || page.contains("you can close this window")
                || page.contains("close this window"),
            "{page}"
        );
        tracardi
            .wait_until(WAIT, event_type, |t| {
                t.events()
                    .iter()
                    .any(|e| e["type"] == event_type && e["properties"]["flow"] == flow)
            })
            .await;
    }
    // Every parameter travels as a string property; the payload is profile-less, for our source.
    let payloads = tracardi.payloads();
    for payload in &payloads {
        assert_eq!(payload["source"]["id"], SOURCE);
        assert_eq!(payload["profile_less"], true);
        assert_eq!(payload["options"], serde_json::json!({}));
    }
    let events = tracardi.events();
    let granted = events
        .iter()
        .find(|e| e["properties"]["oauth_token"] == "rt1")
        .unwrap();
    assert_eq!(granted["properties"]["oauth_verifier"], "ver1");
    assert_eq!(granted["properties"]["tracardi_session"], "s-9");
    assert!(granted["time"]["create"].as_str().unwrap().ends_with('Z'));
    assert!(uuid::Uuid::parse_str(granted["id"].as_str().unwrap()).is_ok());
    let refused = events
        .iter()
        .find(|e| e["properties"]["error"] == "access_denied")
        .unwrap();
    assert_eq!(refused["properties"]["error_description"], "User said no");
    let status = app
        .wait_for_outbox("all delivered", |s| s["delivered"] == 4)
        .await;
    assert_eq!(status["pending"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn profile_less_events_land_on_no_profile() {
    // Tracardi is away while visitors come back from X: their events go out together.
    let tracardi = FakeTracardi::absent();
    let app = app_with(&tracardi, &["--delivery-probe-interval", "50ms"]).await;
    let queries = [
        "oauth_token=visitor-1&oauth_verifier=v1",
        "denied=visitor-2",
        "code=visitor-3&state=s3",
        "error=access_denied&state=visitor-4",
    ];
    for query in queries {
        assert_eq!(get(&app, &format!("/callback?{query}")).await.status(), 200);
    }
    tracardi.come_up().await;
    tracardi
        .wait_until(WAIT, "four events", |t| t.id_counts().len() == 4)
        .await;
    let processed = tracardi.processed();
    for event in &processed {
        assert_eq!(
            event.profile, None,
            "event {} was put on a profile shared with unrelated visitors: {processed:?}",
            event.event_id
        );
    }
    let requests = tracardi.received();
    assert!(
        requests.iter().any(|r| r.event_ids.len() > 1),
        "{requests:?}"
    );
    assert!(requests.iter().all(|r| r.profile_less), "{requests:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn what_is_not_a_redirect_gets_400_and_stores_nothing() {
    let app = TestApp::spawn(&[]).await;
    let many: String = (0..33).map(|i| format!("p{i}=1&")).collect();
    let long = format!("denied={}", "x".repeat(9000));
    for query in [
        "",
        "?hello=world",
        "?oauth_token=only-the-token",
        "?code=c&state=s&denied=t",
        "?denied=%FF%FE",
        "?denied=a&denied=b",
        &format!("?{many}denied=t"),
        &format!("?{long}"),
    ] {
        let response = get(&app, &format!("/callback{query}")).await;
        assert_eq!(response.status(), 400, "{}", &query[..query.len().min(60)]);
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("not a Twitter redirect")
        );
    }
    let status = app.outbox().await;
    assert_eq!(
        (status["pending"].as_u64(), status["delivered"].as_u64()),
        (Some(0), Some(0))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_script_in_a_parameter_is_shown_escaped() {
    let app = TestApp::spawn(&[]).await;
    let response = get(
        &app,
        "/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E",
    )
    .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{page}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn configured_pages_get_a_303() {
    let app = TestApp::spawn(&[
        "--callback-success-url",
        "https://shop.example/connected?ok=1",
        "--callback-denied-url",
        "https://shop.example/refused",
    ])
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let granted = client
        .get(app.url("/callback?oauth_token=t&oauth_verifier=v"))
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 303);
    assert_eq!(
        header(&granted, "location"),
        "https://shop.example/connected?ok=1"
    );
    assert_eq!(header(&granted, "referrer-policy"), "no-referrer");
    let denied = client
        .get(app.url("/callback?denied=t"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&denied, "location"), "https://shop.example/refused");
    app.shutdown().await;
}

#[tokio::test]
async fn a_repeated_redirect_is_one_event() {
    let tracardi = FakeTracardi::start().await;
    let app = app_with(&tracardi, &[]).await;
    for _ in 0..3 {
        assert_eq!(
            get(&app, "/callback?oauth_token=same&oauth_verifier=same")
                .await
                .status(),
            200
        );
    }
    tracardi
        .wait_until(WAIT, "the event", |t| !t.event_ids().is_empty())
        .await;
    let status = app
        .wait_for_outbox("delivered", |s| s["delivered"] == 1)
        .await;
    assert_eq!(status["pending"], 0);
    assert_eq!(tracardi.event_ids().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn the_backlog_drains_promptly_when_tracardi_comes_back() {
    // Retries are backed off by a minute: only the probe and the pull-forward can make the
    // events arrive within seconds of Tracardi's return.
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::ServerError);
    let app = app_with(
        &tracardi,
        &["--delivery-retry-base", "60s", "--delivery-retry-cap", "5m"],
    )
    .await;
    for i in 0..5 {
        assert_eq!(
            get(&app, &format!("/callback?denied=outage-{i}"))
                .await
                .status(),
            200
        );
    }
    app.wait_for_outbox("failures recorded", |s| {
        s["delivery"]["state"] == "retrying"
            && s["last_error"].as_str().is_some_and(|e| e.contains("500"))
    })
    .await;
    tracardi.answer(Answer::Ok);
    tracardi
        .wait_until(WAIT, "all five events", |t| t.id_counts().len() == 5)
        .await;
    let status = app
        .wait_for_outbox("state ok", |s| {
            s["delivery"]["state"] == "ok" && s["delivered"] == 5
        })
        .await;
    assert_eq!(status["pending"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn events_wait_for_an_absent_tracardi() {
    let tracardi = FakeTracardi::absent();
    let app = app_with(
        &tracardi,
        &["--delivery-retry-base", "30s", "--delivery-retry-cap", "5m"],
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            get(&app, &format!("/callback?code=c{i}&state=s{i}"))
                .await
                .status(),
            200
        );
    }
    let status = app
        .wait_for_outbox("connection failures", |s| {
            s["delivery"]["state"] == "retrying"
        })
        .await;
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{status}"
    );
    assert!(status["oldest_pending_age_seconds"].is_u64());
    tracardi.come_up().await;
    tracardi
        .wait_until(WAIT, "three events", |t| t.id_counts().len() == 3)
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn refused_payloads_become_dead_letters_and_can_be_redriven() {
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::Unprocessable);
    let app = app_with(&tracardi, &[]).await;
    assert_eq!(get(&app, "/callback?denied=dead-one").await.status(), 200);
    let status = app
        .wait_for_outbox("a dead letter", |s| s["dead"] == 1)
        .await;
    assert!(
        status["last_error"].as_str().unwrap().contains("422"),
        "{status}"
    );
    assert_eq!(status["pending"], 0);

    let unauthorised = app
        .client
        .post(app.url("/outbox/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 403);
    tracardi.answer(Answer::Accepted226);
    let response = app
        .client
        .post(app.url("/outbox/retry"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(json(response).await["requeued"], 1);
    app.wait_for_outbox("re-driven", |s| s["delivered"] == 1 && s["dead"] == 0)
        .await;
    assert_eq!(tracardi.event_ids().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_source_is_shown_once_and_events_are_kept() {
    let marker = format!("Invalid event source `{}`", uuid::Uuid::new_v4());
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::Unauthorized(marker.clone()));
    let app = app_with(&tracardi, &["--delivery-retry-cap", "100ms"]).await;
    assert_eq!(get(&app, "/callback?denied=kept").await.status(), 200);
    // Several attempts at the (shrunk) cap...
    tracardi
        .wait_until(WAIT, "three attempts", |t| t.requests() >= 3)
        .await;
    let status = app.outbox().await;
    assert_eq!(status["delivery"]["state"], "misconfigured");
    assert_eq!(status["dead"], 0);
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("TRACARDI_SOURCE_ID")
    );
    let ready = json(get(&app, "/ready").await).await;
    assert_eq!(ready["delivery"]["state"], "misconfigured");
    // ...and one log line about it.
    let logged = crate::support::logs()
        .lines()
        .filter(|l| l.contains(&marker))
        .count();
    assert_eq!(
        logged, 1,
        "the problem is logged once per change, not per attempt"
    );
    // Fixed in Tracardi: the kept event arrives.
    tracardi.answer(Answer::Ok);
    tracardi
        .wait_until(WAIT, "the kept event", |t| t.event_ids().len() == 1)
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn callbacks_wait_until_delivery_is_configured() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let app = TestApp::spawn(&["--data-dir", dir]).await;
    assert_eq!(get(&app, "/callback?denied=later").await.status(), 200);
    let status = app.outbox().await;
    assert_eq!(
        (
            status["pending"].as_u64(),
            status["delivery"]["state"].as_str()
        ),
        (Some(1), Some("not_configured"))
    );
    app.shutdown().await;

    let tracardi = FakeTracardi::start().await;
    let app = app_with(&tracardi, &["--data-dir", dir]).await;
    tracardi
        .wait_until(WAIT, "the stored event", |t| t.event_ids().len() == 1)
        .await;
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_undelivered_events_stored() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::Hang);
    let app = app_with(&tracardi, &["--data-dir", dir, "--delivery-timeout", "30s"]).await;
    for i in 0..3 {
        assert_eq!(
            get(&app, &format!("/callback?denied=pending-{i}"))
                .await
                .status(),
            200
        );
    }
    tracardi
        .wait_until(WAIT, "a delivery in flight", |t| t.requests() >= 1)
        .await;
    // The hanging delivery does not hold the shutdown beyond its grace period.
    app.shutdown().await;

    tracardi.answer(Answer::Ok);
    let app = app_with(&tracardi, &["--data-dir", dir]).await;
    tracardi
        .wait_until(WAIT, "all three after the restart", |t| {
            t.id_counts().len() == 3
        })
        .await;
    app.shutdown().await;
}
