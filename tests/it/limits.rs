//! What one client or one request may ask: the per-client limit on the routes open to anyone
//! (429 with Retry-After), and bodies refused by their declared size before they are read.

use crate::support::{TestApp, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET <path>` from a client that says, in `X-Forwarded-For`, that it is `forwarded_for`.
async fn get_as(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

fn callback(n: usize) -> String {
    format!("/callback?oauth_token=limit-{n}&oauth_verifier=v")
}

async fn stored_events(app: &TestApp) -> u64 {
    let outbox = app.outbox().await;
    ["pending", "delivering", "delivered", "dead"]
        .iter()
        .map(|state| outbox[state].as_u64().expect("a count per state"))
        .sum()
}

#[tokio::test]
async fn anonymous_routes_are_limited_per_client() {
    let app = TestApp::spawn(&["--public-rate-limit", "6", "--public-rate-burst", "3"]).await;
    // TestApp took one token from /api-key/{key} (the same bucket) at start.
    for n in 0..2 {
        assert_eq!(get_as(&app, &callback(n), None).await.status(), 200);
    }
    let refused = get_as(&app, &callback(2), None).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "Retry-After: {wait}");
    let problem = json(refused).await;
    assert_eq!(problem["code"], "rate_limited");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("TRUSTED_PROXIES")
    );
    // Nothing was stored for the refused callback.
    assert_eq!(stored_events(&app).await, 2);
    // The other anonymous routes share the client's limit; the rest are not limited.
    assert_eq!(
        get_as(&app, "/authorize?flow=oauth2", None).await.status(),
        429
    );
    assert_eq!(get_as(&app, "/api-key/whatever", None).await.status(), 429);
    assert_eq!(get_as(&app, "/health", None).await.status(), 200);
    // Without TRUSTED_PROXIES a client cannot escape by naming another address.
    let spoofed = get_as(&app, &callback(3), Some("203.0.113.50")).await;
    assert_eq!(spoofed.status(), 429);
    app.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart() {
    let app = TestApp::spawn(&[
        "--public-rate-limit",
        "6",
        "--public-rate-burst",
        "2",
        "--trusted-proxies",
        "127.0.0.0/8",
    ])
    .await;
    let alice = Some("198.51.100.1");
    let bob = Some("203.0.113.7, 198.51.100.2");
    for n in 0..2 {
        assert_eq!(get_as(&app, &callback(n), alice).await.status(), 200);
    }
    assert_eq!(get_as(&app, &callback(2), alice).await.status(), 429);
    // Bob, behind the same proxy, has his own limit (counted by the proxy's view of him).
    assert_eq!(get_as(&app, &callback(3), bob).await.status(), 200);
    assert_eq!(stored_events(&app).await, 3);
    app.shutdown().await;
}

/// Sends the head of a request that declares `length` bytes of body and sends none; returns
/// what the service answered.
async fn declare_body(app: &TestApp, path: &str, length: usize) -> String {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    // REQUEST_TIMEOUT is 30 s here: an answer within 10 s was not a timeout.
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the service answers without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let app = TestApp::spawn(&["--request-timeout", "30s"]).await;
    let answer = declare_body(&app, "/validate", 70_000).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("64 KiB"), "{answer}");
    let run = format!(
        "/plugin/run?service_id={}&action_id={}",
        tracardi_twitter::microservice::SERVICE_ID,
        tracardi_twitter::microservice::SEND_TWEET_ID
    );
    let answer = declare_body(&app, &run, 17 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("16 MiB") && answer.contains("PLUGIN_BODY_LIMIT"),
        "{answer}"
    );
    app.shutdown().await;
}
