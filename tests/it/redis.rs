//! The service on Redis (REDIS_URL): what it refuses at start, what callbacks are told while
//! Redis is down, several replicas sharing one Redis, and `kill -9` of Redis.

use crate::fake_tracardi::FakeTracardi;
use crate::redis_server::RedisServer;
use crate::store::{event, redis_config};
use crate::support::{TestApp, eventually};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracardi_twitter::config::Durability;
use tracardi_twitter::store::redis::RedisStore;
use tracardi_twitter::store::{AccountLink, AccountLinks, Outbox};

const WAIT: Duration = Duration::from_secs(30);

/// Delivery to `tracardi_url` through the Redis at `redis_url`, retries shrunk for tests.
fn args<'a>(redis_url: &'a str, tracardi_url: &'a str) -> Vec<&'a str> {
    vec![
        "--redis-url",
        redis_url,
        "--tracardi-api-url",
        tracardi_url,
        "--tracardi-source-id",
        "redis-test-source",
        "--delivery-timeout",
        "2s",
        "--delivery-retry-base",
        "50ms",
        "--delivery-retry-cap",
        "500ms",
        "--delivery-probe-interval",
        "100ms",
        "--public-rate-limit",
        "0",
    ]
}

async fn callback_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url(&format!(
            "/callback?oauth_token={token}&oauth_verifier=v-{token}"
        )))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn ready(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn token_of(event: &serde_json::Value) -> String {
    event["properties"]["oauth_token"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn strict_durability_refuses_a_redis_that_may_lose_writes() {
    let Some(server) = RedisServer::start_with(&[
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "allkeys-lru",
    ])
    .await
    else {
        return;
    };
    let error = RedisStore::open(&redis_config(&server.url(), Durability::Strict))
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "appendfsync everysec",
        "maxmemory-policy allkeys-lru",
        "REDIS_DURABILITY=relaxed",
    ] {
        assert!(error.contains(expected), "{expected} not in: {error}");
    }
    RedisStore::open(&redis_config(&server.url(), Durability::Relaxed))
        .await
        .expect("relaxed starts anyway");
}

#[tokio::test]
async fn while_redis_is_down_callbacks_get_503_and_work_again_when_it_is_back() {
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    let tracardi = FakeTracardi::absent();
    let url = server.url();
    let app = TestApp::spawn(&args(&url, &tracardi.url)).await;
    assert_eq!(callback_status(&app, "before").await, 200);
    assert_eq!(ready(&app).await.0, 200);

    server.kill();
    assert_eq!(callback_status(&app, "during").await, 503);
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    let problems = body["problems"].to_string();
    assert!(problems.contains("Redis"), "{problems}");
    assert!(
        !problems.contains(&url),
        "the URL may hold a password: {problems}"
    );

    // Back, with what it had acknowledged (append-only file, fsync'd per write).
    server.restart().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while ready(&app).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready never noticed Redis was back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(callback_status(&app, "after").await, 200);
    tracardi.come_up().await;
    tracardi
        .wait_until(WAIT, "both acknowledged callbacks", |t| {
            let tokens: HashSet<String> = t.events().iter().map(token_of).collect();
            tokens.contains("before") && tokens.contains("after")
        })
        .await;
    assert!(
        !tracardi.events().iter().any(|e| token_of(e) == "during"),
        "a callback told 503 was not stored"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_redis_and_tracardi_gets_each_event_once() {
    const CALLBACKS: usize = 60;
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let tracardi = FakeTracardi::start().await;
    let url = server.url();
    let replicas = [
        TestApp::spawn(&args(&url, &tracardi.url)).await,
        TestApp::spawn(&args(&url, &tracardi.url)).await,
    ];
    for i in 0..CALLBACKS {
        let replica = &replicas[i % 2];
        assert_eq!(callback_status(replica, &format!("r{i}")).await, 200);
        // The same redirect again, at the other replica: a repeat, not a second event.
        if i % 10 == 0 {
            assert_eq!(
                callback_status(&replicas[(i + 1) % 2], &format!("r{i}")).await,
                200
            );
        }
    }
    tracardi
        .wait_until(WAIT, "every event", |t| t.id_counts().len() >= CALLBACKS)
        .await;
    // Both replicas' workers claimed from the same store; leases kept them apart.
    let counts = tracardi.id_counts();
    assert_eq!(counts.len(), CALLBACKS);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    for replica in replicas {
        replica.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_acknowledged_before_redis_is_killed_survive_it() {
    const CALLBACKS: usize = 200;
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    let tracardi = FakeTracardi::absent();
    let url = server.url();
    let app = Arc::new(TestApp::spawn(&args(&url, &tracardi.url)).await);
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (app, acknowledged) = (app.clone(), acknowledged.clone());
        senders.spawn(async move {
            for i in (worker..CALLBACKS).step_by(8) {
                let token = format!("k{i}");
                if callback_status(&app, &token).await == 200 {
                    acknowledged.lock().unwrap().insert(token);
                }
            }
        });
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while acknowledged.lock().unwrap().len() < CALLBACKS / 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "callbacks are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill(); // SIGKILL: Redis has no chance to flush anything.
    while senders.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    server.restart().await;
    tracardi.come_up().await;
    tracardi
        .wait_until(WAIT, "every acknowledged callback", |t| {
            let received: HashSet<String> = t.events().iter().map(token_of).collect();
            acknowledged.is_subset(&received)
        })
        .await;
    Arc::try_unwrap(app)
        .ok()
        .expect("the senders are done")
        .shutdown()
        .await;
}

#[tokio::test]
async fn an_unreadable_event_in_redis_becomes_dead_and_the_others_are_claimed() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let store = RedisStore::open(&redis_config(&server.url(), Durability::Strict))
        .await
        .unwrap();
    for (id, created) in [("a", 1), ("bad", 2), ("c", 3)] {
        store.append(event(id, created)).await.unwrap();
    }
    // Damaged behind the service's back (a hand edit).
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = "{test}:event:bad";
    redis::cmd("HSET")
        .arg(key)
        .arg("event")
        .arg(r#"{"id": "bad"#)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let claimed = store.claim_due(10, WAIT).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|e| e.new.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.delivering, counts.dead, counts.pending), (2, 1, 0));
    let reason: String = redis::cmd("HGET")
        .arg(key)
        .arg("last_error")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        reason.starts_with("stored event is not valid JSON: "),
        "{reason}"
    );
}

/// Replicas share pending authorizations: a "Connect Twitter" flow started at replica A is
/// finished at replica B (the load balancer sent the visitor's return there), and the same
/// answer from X replayed at replica C is refused as used, with nothing exchanged twice and one
/// event on the visitor's profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_started_on_one_replica_is_finished_on_another_once() {
    use crate::fake_x::{self, FakeX, Scenario};
    const CLIENT_ID: &str = "cmVwbGljYS1jbGllbnQ6MTpjaQ";
    const CLIENT_SECRET: &str = "replica-client-secret";
    // What the visitor's browser is sent back to: the load balancer in front of the replicas.
    const PUBLIC: &str = "http://replicas.example";
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let tracardi = FakeTracardi::start().await;
    let x = FakeX::start(Scenario::Ok {
        access_level: Some("read-write"),
    })
    .await;
    x.oauth2_client(CLIENT_ID, Some(CLIENT_SECRET));
    x.approve_callbacks(&[&format!("{PUBLIC}/callback")]);
    let (url, authorize) = (server.url(), x.oauth2_authorize_url());
    let mut settings = args(&url, &tracardi.url);
    settings.extend([
        "--public-url",
        PUBLIC,
        "--twitter-api-url",
        x.url.as_str(),
        "--twitter-client-id",
        CLIENT_ID,
        "--twitter-client-secret",
        CLIENT_SECRET,
        "--twitter-oauth2-authorize-url",
        authorize.as_str(),
    ]);
    let [a, b, c] = [
        TestApp::spawn(&settings).await,
        TestApp::spawn(&settings).await,
        TestApp::spawn(&settings).await,
    ];
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let started = no_redirects
        .get(a.url("/authorize?flow=oauth2&profile_id=replica-visitor"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 302);
    let x_page = started.headers()["location"].to_str().unwrap().to_owned();
    let back = fake_x::link(&x_page, "approve").await;
    assert!(back.starts_with(PUBLIC), "{back}");
    // The balancer sends the visitor's return to B, and a replay of it to C.
    let at = |replica: &TestApp| back.replacen(PUBLIC, &replica.base_url, 1);
    let finished = no_redirects.get(at(&b)).send().await.unwrap();
    assert_eq!(finished.status(), 200, "finished at B");
    assert!(finished.text().await.unwrap().contains("connected"));
    let replayed = no_redirects.get(at(&c)).send().await.unwrap();
    assert_eq!(replayed.status(), 400, "a replay at C");
    assert!(
        replayed
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    assert_eq!(x.exchange_count(), 1, "the code was exchanged once");
    tracardi
        .wait_until(WAIT, "the connected event", |t| {
            t.events()
                .iter()
                .any(|e| e["type"] == "twitter-account-connected")
        })
        .await;
    let connected: Vec<_> = tracardi
        .payloads()
        .into_iter()
        .filter(|p| p["events"][0]["type"] == "twitter-account-connected")
        .collect();
    assert_eq!(connected.len(), 1, "{connected:?}");
    assert_eq!(connected[0]["profile"]["id"], "replica-visitor");
    for replica in [a, b, c] {
        replica.shutdown().await;
    }
}

/// `rediss://`: the store talks TLS (rustls) to a Redis serving a certificate of a private CA,
/// trusted through `SSL_CERT_FILE` as operators of a managed Redis do; a callback is stored and
/// delivered through it. The certificates are test-only (tests/fixtures/tls, valid until 2126).
#[tokio::test]
async fn rediss_talks_tls_to_redis() {
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let (ca, cert, key) = (
        format!("{tls}/ca.pem"),
        format!("{tls}/redis.pem"),
        format!("{tls}/redis.key"),
    );
    let tls_port = crate::support::free_port().to_string();
    let Some(_server) = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ])
    .await
    else {
        return;
    };
    // SAFETY: nextest runs each test in a process of its own, and nothing of this test reads
    // the environment on another thread yet (the service starts below).
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca) };
    let tracardi = FakeTracardi::start().await;
    let url = format!("rediss://localhost:{tls_port}/0");
    let app = TestApp::spawn(&args(&url, &tracardi.url)).await;
    assert!(
        !crate::support::logs().contains(NO_LINK_CACHE),
        "the links' cache works over TLS too"
    );
    assert_eq!(callback_status(&app, "tls-1").await, 200);
    tracardi
        .wait_until(WAIT, "the callback stored over TLS", |t| t.requests() == 1)
        .await;
    assert_eq!(ready(&app).await.0, 200);

    // A certificate the service does not trust: it refuses to start, saying so.
    unsafe { std::env::set_var("SSL_CERT_FILE", &cert) };
    let config =
        crate::support::config(&["--redis-url", &url], tempfile::tempdir().unwrap().path());
    let error = tracardi_twitter::open_stores(&config).await.unwrap_err();
    let error = error.to_string();
    assert!(
        error.contains("REDIS_URL") && error.contains("certificate"),
        "{error}"
    );
}

/// What the store logs when Redis refuses the links' client-side cache.
const NO_LINK_CACHE: &str = "account links are read from Redis without a client-side cache";

/// How many HGETALL (account link reads) Redis has run since it started.
async fn link_reads(server: &RedisServer) -> u64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_hgetall:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// The account `x_user_id` linked to the profile `p<x_user_id>`.
fn link_to_profile(x_user_id: &str) -> AccountLink {
    AccountLink {
        x_user_id: x_user_id.into(),
        profile_id: format!("p{x_user_id}"),
        username: None,
        subscription_ids: vec![],
        linked: 0,
        revoked: None,
    }
}

/// Every replica keeps the account links it read (redis-rs' server-assisted client-side
/// cache): read again, a link costs no round trip; written by another replica, it is dropped
/// from the cache by Redis's invalidation, long before the cache's own expiry (300 s).
#[tokio::test]
async fn account_links_are_read_once_and_a_change_on_another_replica_reaches_the_cache() {
    let Some(server) = RedisServer::start().await else {
        return;
    };
    let config = redis_config(&server.url(), Durability::Strict);
    crate::support::init();
    let a = RedisStore::open(&config).await.unwrap();
    let b = RedisStore::open(&config).await.unwrap();
    assert!(!crate::support::logs().contains(NO_LINK_CACHE));
    assert_eq!(b.find_link("77").await.unwrap(), None);
    let reads = link_reads(&server).await;
    assert_eq!(b.find_links(&["77", "77"]).await.unwrap(), [None, None]);
    assert_eq!(link_reads(&server).await, reads, "read from the cache");

    a.put_link(link_to_profile("77")).await.unwrap();
    // The invalidation reaches B's connection as a push, moments after A's write.
    let found = eventually(WAIT, "B to see A's link", || async {
        b.find_link("77").await.unwrap()
    })
    .await;
    assert_eq!(found.profile_id, "p77");

    a.revoke_link("77").await.unwrap();
    eventually(WAIT, "B to see the revocation", || async {
        b.find_link("77").await.unwrap().unwrap().revoked
    })
    .await;
}

/// A Redis that refuses CLIENT TRACKING (here, CLIENT is renamed away, as some managed Redis
/// services restrict it): the store opens all the same and reads links on every look-up.
#[tokio::test]
async fn without_client_tracking_links_are_read_each_time() {
    let Some(server) = RedisServer::start_with(&["--rename-command", "CLIENT", ""]).await else {
        return;
    };
    crate::support::init();
    let store = RedisStore::open(&redis_config(&server.url(), Durability::Strict))
        .await
        .expect("opens without the cache");
    assert!(
        crate::support::logs().contains(NO_LINK_CACHE),
        "the operator is told"
    );
    assert_eq!(store.find_link("78").await.unwrap(), None);
    let reads = link_reads(&server).await;
    store.put_link(link_to_profile("78")).await.unwrap();
    for _ in 0..2 {
        let found = store.find_link("78").await.unwrap().unwrap();
        assert_eq!(found.profile_id, "p78");
    }
    assert_eq!(
        link_reads(&server).await,
        reads + 2,
        "no cache: each look-up is a read"
    );
}
