//! How fast the delivery worker drains a backlog into a fast local fake Tracardi.
//!
//! For each batch size given (default: 50, the DELIVERY_BATCH default): open a SqliteOutbox in a
//! fresh temporary directory (on the project's disk: `target/`), append EVENTS (default 10 000)
//! distinct OAuth 1.0a approvals, start a fake Tracardi (axum on 127.0.0.1:0 answering 200 to
//! `POST /track` and counting the ids in each payload's `events`), run the real
//! `delivery::Worker`, and time it from the worker's start until the fake has every event and the
//! store counts every event delivered. It is the drain half of `scripts/bench-drain.sh`.
//!
//! With REDIS_URL set (a durable Redis: appendonly yes, appendfsync always), the store is Redis
//! instead, under a prefix of the run's own (left behind: use a Redis of its own).
//!
//! `WORKERS=2` runs two delivery workers on the one store (as two replicas do on Redis).
//!
//! `cargo run --release --example drain -- 50 1 200`

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::post;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tracardi_twitter::callback::Redirect;
use tracardi_twitter::config::{DeliveryConfig, Durability, RedisConfig};
use tracardi_twitter::delivery::{DeliveryMonitor, Worker};
use tracardi_twitter::store::redis::RedisStore;
use tracardi_twitter::store::sqlite::SqliteOutbox;
use tracardi_twitter::store::{Outbox, now_millis};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the fake Tracardi saw.
#[derive(Default)]
struct Received {
    ids: HashSet<String>,
    events: usize,
    requests: usize,
    /// The worker's TCP connections (client addresses seen).
    peers: HashSet<SocketAddr>,
}

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Received>>,
    expected: usize,
    all_in: Arc<Notify>,
}

async fn track(
    State(fake): State<Fake>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> StatusCode {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let Some(events) = payload["events"].as_array() else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let mut received = fake.received.lock().expect("not poisoned");
    received.requests += 1;
    received.peers.insert(peer);
    received.events += events.len();
    for event in events {
        if let Some(id) = event["id"].as_str() {
            received.ids.insert(id.to_owned());
        }
    }
    if received.ids.len() >= fake.expected {
        fake.all_in.notify_one();
    }
    StatusCode::OK
}

struct Outcome {
    append: Duration,
    received: Duration,
    delivered: Duration,
    requests: usize,
    connections: usize,
    posted: usize,
    distinct: usize,
}

async fn drain(events: usize, batch: usize) -> Result<Outcome, Error> {
    std::fs::create_dir_all("target")?;
    let dir = tempfile::Builder::new()
        .prefix("bench-drain.")
        .tempdir_in("target")?;
    let store: Arc<dyn Outbox> = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let store = RedisStore::open(&RedisConfig {
                url: url.into(),
                prefix: format!("bench-drain-{}-{batch}", std::process::id()),
                durability: Durability::Strict,
                wait_replicas: 0,
            })
            .await?;
            Arc::new(store)
        }
        Err(_) => Arc::new(SqliteOutbox::open(dir.path())?),
    };

    // The backlog, appended concurrently so that appends share commits.
    let started = Instant::now();
    let now = now_millis();
    let mut appends = tokio::task::JoinSet::new();
    for chunk in (0..events).collect::<Vec<_>>().chunks(events.div_ceil(64)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        appends.spawn(async move {
            for i in chunk {
                let query = format!("oauth_token=t{i}&oauth_verifier=v");
                let event = Redirect::parse(Some(&query))?.to_event(now);
                store.append(event).await?;
            }
            Ok::<_, Error>(())
        });
    }
    while let Some(appended) = appends.join_next().await {
        appended??;
    }
    let append = started.elapsed();
    let counts = store.counts().await?;
    assert_eq!(counts.pending as usize, events, "every event is pending");

    let fake = Fake {
        received: Arc::default(),
        expected: events,
        all_in: Arc::new(Notify::new()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/track", post(track))
        .with_state(fake.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let config = DeliveryConfig {
        api_url: format!("http://{address}"),
        source_id: "bench-source".into(),
        timeout: Duration::from_secs(10),
        retry_base: Duration::from_secs(1),
        retry_cap: Duration::from_secs(300),
        probe_interval: Duration::from_secs(2),
        batch,
    };
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    // WORKERS delivery workers on the one store, as WORKERS replicas sharing a Redis run them.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..workers_wanted() {
        workers.spawn(
            Worker::new(store.clone(), config.clone(), DeliveryMonitor::new(true))
                .run(stopped.clone()),
        );
    }
    let all_in = fake.all_in.notified();
    tokio::time::timeout(Duration::from_secs(300), all_in)
        .await
        .map_err(|_| "the fake did not receive every event within 5 minutes")?;
    let received = started.elapsed();
    loop {
        if store.counts().await?.delivered as usize == events {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("the store did not count every event delivered within 5 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivered = started.elapsed();
    let _ = stop.send(true);
    while let Some(worker) = workers.join_next().await {
        worker?;
    }
    server.abort();
    let seen = fake.received.lock().expect("not poisoned");
    Ok(Outcome {
        append,
        received,
        delivered,
        requests: seen.requests,
        connections: seen.peers.len(),
        posted: seen.events,
        distinct: seen.ids.len(),
    })
}

/// `WORKERS` (default 1).
fn workers_wanted() -> usize {
    std::env::var("WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracardi_twitter::install_crypto_provider();
    let events: usize = match std::env::var("EVENTS") {
        Ok(n) => n.parse()?,
        Err(_) => 10_000,
    };
    let mut batches: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    if batches.is_empty() {
        batches.push(50);
    }
    for batch in batches {
        let o = drain(events, batch).await?;
        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        println!(
            "DELIVERY_BATCH={batch:<3}  drained {events} events in {:7.3} s = {:6.0} events/s \
             (fake had all after {:.3} s; {} POSTs on {} connections, {} events posted, {} distinct)  \
             [backlog appended in {:.3} s = {:.0}/s]",
            o.delivered.as_secs_f64(),
            rate(o.delivered),
            o.received.as_secs_f64(),
            o.requests,
            o.connections,
            o.posted,
            o.distinct,
            o.append.as_secs_f64(),
            rate(o.append),
        );
    }
    Ok(())
}
