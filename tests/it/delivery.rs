//! The delivery worker against a Tracardi that hangs, answers without end, or finds a damaged
//! row in the store; and its supervisor against a worker that panics.

use crate::fake_tracardi::{Answer, FakeTracardi, endless_answer};
use crate::support::{TestApp, json};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracardi_twitter::store::{
    Appended, NewEvent, Outbox, OutboxCounts, Receipt, StoreError, StoreHealth, StoredEvent,
};

const SOURCE: &str = "delivery-test-source";
const WAIT: Duration = Duration::from_secs(20);

/// Delivery to `tracardi_url` with retries shrunk for tests, unless `extra` gives its own.
fn args<'a>(tracardi_url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    crate::support::delivery_args(tracardi_url, SOURCE, extra)
}

async fn callback(app: &TestApp, query: &str) {
    let response = app
        .client
        .get(app.url(&format!("/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
}

/// `GET /ready`: its status and body.
async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

/// Waits until Tracardi has processed `n` distinct events.
async fn wait_for_ids(tracardi: &FakeTracardi, n: usize) {
    tracardi
        .wait_until(WAIT, &format!("{n} distinct events"), |t| {
            t.id_counts().len() >= n
        })
        .await;
}

#[tokio::test]
async fn after_a_timeout_one_event_alone_is_sent_until_tracardi_answers() {
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::ProcessThenHang);
    let app = TestApp::spawn(&args(&tracardi.url, &["--delivery-timeout", "300ms"])).await;
    callback(&app, "denied=first").await;
    wait_for_ids(&tracardi, 1).await;
    let first = tracardi.event_ids()[0].clone();
    // Callbacks keep coming while Tracardi is stuck behind its answers.
    for i in 0..4 {
        callback(&app, &format!("denied=later-{i}")).await;
    }
    tracardi
        .wait_until(WAIT, "three probes after the first request", |t| {
            t.requests() >= 4
        })
        .await;
    let while_stuck = tracardi.received();
    tracardi.release();
    wait_for_ids(&tracardi, 5).await;
    app.wait_for_outbox("all delivered", |s| s["delivered"] == 5)
        .await;

    for request in &while_stuck {
        assert_eq!(
            request.event_ids,
            std::slice::from_ref(&first),
            "while Tracardi did not answer, only the oldest event was to be sent, alone: {while_stuck:?}"
        );
    }
    assert_eq!(
        tracardi.most_in_flight(),
        1,
        "one request at a time while Tracardi does not answer"
    );
    // The events that waited were processed once each.
    for (id, count) in tracardi.id_counts() {
        if id != first {
            assert_eq!(count, 1, "{id} was processed {count} times");
        }
    }
    app.shutdown().await;
}

/// Callbacks of the duplicate measurements.
const MEASURED_EVENTS: usize = 100;

/// The measurement behind BENCHMARKS.md ("Duplicate deliveries when Tracardi hangs"): Tracardi
/// hangs (it processes what it gets, and answers nothing) for 3 s, then resumes; the delivery
/// timeout is 1 s (the 30 s and 10 s, scaled down tenfold), every other setting is the
/// default. With `backlog`, the 100 callbacks were stored before (delivery was not configured);
/// without, they arrive during the hang, one every 25 ms. Prints how often events were
/// processed again.
async fn measure_duplicates(backlog: bool) {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let queries: Vec<String> = (0..MEASURED_EVENTS)
        .map(|i| format!("denied=hang-{i}"))
        .collect();
    if backlog {
        let app = TestApp::spawn(&["--data-dir", dir]).await;
        for query in &queries {
            callback(&app, query).await;
        }
        app.shutdown().await;
    }
    let tracardi = FakeTracardi::start().await;
    tracardi.answer(Answer::ProcessThenHang);
    let app = TestApp::spawn(&[
        "--data-dir",
        dir,
        "--tracardi-api-url",
        &tracardi.url,
        "--tracardi-source-id",
        SOURCE,
        "--delivery-timeout",
        "1s",
    ])
    .await;
    let hang = tokio::time::Instant::now();
    if !backlog {
        for query in &queries {
            callback(&app, query).await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    tokio::time::sleep_until(hang + Duration::from_secs(3)).await;
    tracardi.release();
    tracardi
        .wait_until(Duration::from_secs(120), "every event", |t| {
            t.id_counts().len() == MEASURED_EVENTS
        })
        .await;
    app.wait_for_outbox("all delivered", |s| s["delivered"] == MEASURED_EVENTS)
        .await;
    let counts = tracardi.id_counts();
    let repeated = counts.values().filter(|n| **n > 1).count();
    println!(
        "backlog {backlog}: events {MEASURED_EVENTS}, processings {}, duplicate processings {}, \
         events processed more than once {repeated}, requests {}",
        tracardi.event_ids().len(),
        tracardi.duplicates(),
        tracardi.requests()
    );
    app.shutdown().await;
}

#[tokio::test]
#[ignore = "a measurement, not a test: see BENCHMARKS.md"]
async fn duplicates_when_tracardi_hangs_as_callbacks_arrive() {
    measure_duplicates(false).await;
}

#[tokio::test]
#[ignore = "a measurement, not a test: see BENCHMARKS.md"]
async fn duplicates_when_tracardi_hangs_with_a_backlog() {
    measure_duplicates(true).await;
}

#[tokio::test]
async fn an_answer_that_never_ends_is_read_only_in_part() {
    const MARKER: &str = "endless-answer-start";
    let url = endless_answer(MARKER).await;
    let app = TestApp::spawn(&args(&url, &["--delivery-timeout", "60s"])).await;
    callback(&app, "denied=endless").await;
    // Read until the timeout, the answer would be lost; read in part, it is shown at once.
    let status = app
        .wait_for_outbox("the answer's start in last_error", |s| {
            s["last_error"].as_str().is_some_and(|e| e.contains(MARKER))
        })
        .await;
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(error.len() < 10_000, "{} bytes kept", error.len());
    app.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_stored_event_becomes_dead_and_the_others_are_delivered() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    // Stored while delivery is not configured...
    let app = TestApp::spawn(&["--data-dir", dir]).await;
    for i in 0..3 {
        callback(&app, &format!("denied=stored-{i}")).await;
    }
    app.shutdown().await;
    // ...one is damaged behind the service's back...
    let file = rusqlite::Connection::open(data_dir.path().join("outbox.sqlite3")).unwrap();
    let damaged: String = file
        .query_row(
            "UPDATE events SET event_json = '{not json' WHERE seq = 2 RETURNING id",
            [],
            |row| row.get(0),
        )
        .unwrap();
    // ...and the others still reach Tracardi.
    let tracardi = FakeTracardi::start().await;
    let app = TestApp::spawn(&args(&tracardi.url, &["--data-dir", dir])).await;
    let status = app
        .wait_for_outbox("two delivered, one dead", |s| {
            s["delivered"] == 2 && s["dead"] == 1
        })
        .await;
    assert_eq!(status["pending"], 0);
    assert!(!tracardi.event_ids().contains(&damaged));
    let reason: String = file
        .query_row(
            "SELECT last_error FROM events WHERE id = ?1",
            [&damaged],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        reason.starts_with("stored event is not valid JSON"),
        "{reason}"
    );
    assert_eq!(ready(&app).await.0, 200);
    app.shutdown().await;
}

/// The real store, except that `claim_due` panics while `panic` is set.
#[derive(Debug)]
struct PanickingOutbox {
    inner: Arc<dyn Outbox>,
    panic: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Outbox for PanickingOutbox {
    fn health(&self) -> StoreHealth {
        self.inner.health()
    }
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        self.inner.append(event).await
    }
    async fn append_dead(&self, event: NewEvent, reason: String) -> Result<Appended, StoreError> {
        self.inner.append_dead(event, reason).await
    }
    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        assert!(
            !self.panic.load(Ordering::SeqCst),
            "a bug in the delivery worker"
        );
        self.inner.claim_due(limit, lease).await
    }
    async fn claim_oldest(&self, lease: Duration) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.claim_oldest(lease).await
    }
    async fn mark_delivered(&self, receipts: Vec<Receipt>) -> Result<u64, StoreError> {
        self.inner.mark_delivered(receipts).await
    }
    async fn retry_after(
        &self,
        receipts: Vec<Receipt>,
        after: Duration,
        error: String,
    ) -> Result<u64, StoreError> {
        self.inner.retry_after(receipts, after, error).await
    }
    async fn mark_dead(&self, receipt: Receipt, error: String) -> Result<bool, StoreError> {
        self.inner.mark_dead(receipt, error).await
    }
    async fn pull_forward(&self) -> Result<u64, StoreError> {
        self.inner.pull_forward().await
    }
    async fn requeue_dead(&self) -> Result<u64, StoreError> {
        self.inner.requeue_dead().await
    }
    async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        self.inner.next_due_in().await
    }
    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        self.inner.counts().await
    }
    async fn prune_delivered(&self, keep: Duration) -> Result<u64, StoreError> {
        self.inner.prune_delivered(keep).await
    }
}

#[tokio::test]
async fn a_worker_that_panics_is_started_again_and_ready_says_so_meanwhile() {
    let tracardi = FakeTracardi::start().await;
    let panic = Arc::new(AtomicBool::new(true));
    let switch = panic.clone();
    let app = TestApp::spawn_with_outbox(&args(&tracardi.url, &[]), move |inner| {
        Arc::new(PanickingOutbox {
            inner,
            panic: switch,
        })
    })
    .await;
    callback(&app, "denied=kept-through-a-panic").await;
    // The worker panics on every claim until the test has seen /ready say so.
    let deadline = tokio::time::Instant::now() + WAIT;
    let unready = loop {
        let (status, body) = ready(&app).await;
        if status == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready never reported the missing worker: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(unready["ready"], false);
    assert_eq!(unready["delivery"]["worker"], "restarting");
    let problems = unready["problems"].to_string();
    assert!(
        problems.contains("delivery worker is not running"),
        "{problems}"
    );
    panic.store(false, Ordering::SeqCst);

    wait_for_ids(&tracardi, 1).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = ready(&app).await;
        if status == 200 {
            assert_eq!(body["delivery"]["worker"], "running");
            assert_eq!(body["problems"], serde_json::json!([]));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        crate::support::logs().contains("the delivery worker panicked"),
        "the restart is logged"
    );
    app.shutdown().await;
}
