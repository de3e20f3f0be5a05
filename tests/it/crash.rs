//! The crash test: callbacks acknowledged to browsers survive `kill -9` and arrive exactly once.

use crate::fake_tracardi::FakeTracardi;
use crate::support::{API_KEY, SECRET, client, port_from_file};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CALLBACKS: usize = 300;

/// Starts the real binary with a clean environment (only what this test sets, and REDIS_URL
/// when given) on 127.0.0.1:0, and returns it with the base URL of the port it picked.
async fn start_service(
    data_dir: &std::path::Path,
    tracardi_url: &str,
    redis_url: Option<&str>,
) -> (Child, String) {
    let port_dir = tempfile::tempdir().unwrap();
    let port_file = port_dir.path().join("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracardi-twitter"));
    command.env_clear();
    if let Some(url) = redis_url {
        // A restarted replica cannot tell a dead replica's lease from a live one's: what the
        // killed process had claimed waits for its lease (twice the timeout + 5 s) to run out.
        command.env("REDIS_URL", url).env("DELIVERY_TIMEOUT", "2s");
    }
    let mut service = command
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("PORT_FILE", &port_file)
        .env("DATA_DIR", data_dir)
        .env("API_KEY", API_KEY)
        .env("SECRET", SECRET)
        .env("TWITTER_API_URL", "http://127.0.0.1:9")
        .env("TRACARDI_API_URL", tracardi_url)
        .env("TRACARDI_SOURCE_ID", "crash-test-source")
        .env("DELIVERY_RETRY_BASE", "50ms")
        .env("DELIVERY_RETRY_CAP", "500ms")
        .env("DELIVERY_PROBE_INTERVAL", "100ms")
        .env("LOG_FORMAT", "json")
        // Every callback comes from 127.0.0.1: the per-client limit would refuse most of them.
        .env("PUBLIC_RATE_LIMIT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service binary starts");
    let port = port_from_file(&port_file, || {
        service.try_wait().unwrap().map(|status| status.to_string())
    })
    .await;
    (service, format!("http://127.0.0.1:{port}"))
}

/// The OAuth token of a callback's event: the test's name for it.
fn token_of(event: &serde_json::Value) -> String {
    event["properties"]["oauth_token"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Waits until Tracardi has every callback in `acknowledged` (a minute at most).
async fn wait_for_every_one(tracardi: &FakeTracardi, acknowledged: &HashSet<String>) {
    tracardi
        .wait_until(
            Duration::from_secs(60),
            "every acknowledged callback",
            |t| {
                let received: HashSet<String> = t.events().iter().map(token_of).collect();
                acknowledged.is_subset(&received)
            },
        )
        .await;
}

async fn wait_healthy(base: &str) {
    let client = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{base}/health")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service did not come up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_callbacks_survive_kill_9_and_arrive_exactly_once() {
    survive_kill_9(None).await;
}

/// The same with the events in Redis: the process dies, Redis keeps what it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_acknowledged_callbacks_survive_kill_9_and_arrive_exactly_once() {
    let Some(redis) = crate::redis_server::RedisServer::start().await else {
        return;
    };
    survive_kill_9(Some(&redis.url())).await;
}

async fn survive_kill_9(redis_url: Option<&str>) {
    let data_dir = tempfile::tempdir().unwrap();
    let tracardi = FakeTracardi::absent();
    let (mut service, base) = start_service(data_dir.path(), &tracardi.url, redis_url).await;
    wait_healthy(&base).await;

    // Browsers arrive concurrently; the process is killed while they still do.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let http = client();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (http, base, acknowledged) = (http.clone(), base.clone(), acknowledged.clone());
        senders.spawn(async move {
            for i in (worker..CALLBACKS).step_by(16) {
                let token = format!("crash-{i}");
                let url = format!("{base}/callback?oauth_token={token}&oauth_verifier=v{i}");
                match http.get(url).send().await {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().insert(token);
                    }
                    // Not acknowledged (the process is gone): the browser was told nothing.
                    _ => {}
                }
            }
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < CALLBACKS / 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "callbacks are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    service.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no chance to flush anything.
    service.wait().unwrap();
    while senders.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= CALLBACKS / 2);

    // Tracardi appears; the service starts again on the same DATA_DIR.
    tracardi.come_up().await;
    // (On whatever port it is given now: the browsers are gone; Tracardi is what waits.)
    let (mut service, base) = start_service(data_dir.path(), &tracardi.url, redis_url).await;
    wait_healthy(&base).await;
    wait_for_every_one(&tracardi, &acknowledged).await;

    // Wait until nothing is left to deliver, then count: each event arrived once.
    let bearer = tracardi_twitter::auth::issue_token(API_KEY, SECRET);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: serde_json::Value = http
            .get(format!("{base}/outbox"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["pending"] == 0 && status["delivering"] == 0 {
            assert_eq!(status["dead"], 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox never drained: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = HashSet::new();
    for event in tracardi.events() {
        assert!(
            seen.insert(token_of(&event)),
            "{} arrived twice",
            token_of(&event)
        );
    }
    service.kill().unwrap();
    service.wait().unwrap();
}

/// Three replicas of the real binary on one Redis, callbacks spread over them, one replica
/// `kill -9`'d while the others (and it) deliver: every acknowledged callback reaches Tracardi.
/// Repeats can only come from the batch the killed replica had in flight (its outcome unknown,
/// it is sent again once its lease ends); their number is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_redis_lose_nothing_when_one_is_killed() {
    let Some(redis) = crate::redis_server::RedisServer::start().await else {
        return;
    };
    let tracardi = FakeTracardi::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = Vec::new();
    for dir in &dirs {
        let (child, base) = start_service(dir.path(), &tracardi.url, Some(&redis.url())).await;
        wait_healthy(&base).await;
        replicas.push((child, base));
    }
    let bases: Vec<String> = replicas.iter().map(|(_, base)| base.clone()).collect();
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let http = client();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..12 {
        let (http, bases, acknowledged) = (http.clone(), bases.clone(), acknowledged.clone());
        senders.spawn(async move {
            for i in (worker..CALLBACKS).step_by(12) {
                let token = format!("replica-{i}");
                let base = &bases[i % bases.len()];
                let url = format!("{base}/callback?oauth_token={token}&oauth_verifier=v{i}");
                if let Ok(response) = http.get(url).send().await
                    && response.status() == 200
                {
                    acknowledged.lock().unwrap().insert(token);
                }
            }
        });
    }
    // Kill the first replica once deliveries are under way.
    tracardi
        .wait_until(Duration::from_secs(60), "deliveries under way", |t| {
            t.events().len() >= CALLBACKS / 4
        })
        .await;
    let (killed, _) = &mut replicas[0];
    killed.kill().expect("SIGKILL");
    killed.wait().unwrap();
    while senders.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= CALLBACKS * 2 / 3,
        "{}",
        acknowledged.len()
    );
    wait_for_every_one(&tracardi, &acknowledged).await;
    let events = tracardi.events();
    let distinct: HashSet<String> = events.iter().map(token_of).collect();
    let repeats = events.len() - distinct.len();
    eprintln!(
        "three replicas, one killed: {} acknowledged, {} events received, {repeats} repeats",
        acknowledged.len(),
        events.len()
    );
    // At most the killed replica's batches in flight (DELIVERY_BATCH is 50, one per worker round).
    assert!(repeats <= 100, "{repeats} repeats");
    for (mut child, _) in replicas.into_iter().skip(1) {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
