//! The delivery worker: posts stored events to Tracardi's `/track` until Tracardi has them.
//!
//! At-least-once with stable event ids. Tracardi stores events by id, but runs their workflows
//! again on a repeat, so repeats are kept few: after a request went unanswered (Tracardi may
//! have processed it), and at start, only one event at a time is sent until Tracardi answers.
//! Transient failures back off exponentially with jitter; when Tracardi answers again, every
//! waiting event is made due at once so the backlog drains in seconds, not at each event's
//! backed-off time. Configuration problems (401: unknown or disabled source) are shown once per
//! change and retried at the cap; payloads Tracardi refuses for good become dead letters.
//!
//! [`supervise`] runs the worker and starts it again if it panics or ends.

use crate::config::DeliveryConfig;
use crate::metrics::DeliveryOutcome;
use crate::store::{Millis, NewEvent, Outbox, StoredEvent, now_millis};
use crate::tracardi::track::track_request;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Events claimed per round; they are posted in payloads of `DeliveryConfig::batch` events.
const CLAIM_LIMIT: usize = 500;
/// Idle rounds look at the store at least this often (another replica may have written).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Delivered events are kept this long to recognise late repeats of a redirect.
const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 24 * 3600);
/// Honour a `Retry-After` up to this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Of Tracardi's answer, this much is read: enough for the part shown ([`SHOWN_CHARS`]), and a
/// hostile or broken answer that never ends costs no more.
const ANSWER_READ_LIMIT: usize = 64 * 1024;
/// Of Tracardi's answer, this many characters are kept in `last_error` and the log.
const SHOWN_CHARS: usize = 2000;
/// A worker that panicked or ended is started again after a pause growing from this...
const RESTART_BASE: Duration = Duration::from_millis(500);
/// ...up to this.
const RESTART_CAP: Duration = Duration::from_secs(60);
/// A worker that ran this long before it stopped is restarted as if for the first time.
const RESTART_FORGOTTEN_AFTER: Duration = Duration::from_secs(600);

/// What Tracardi's answer means for the events in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200 or 226: Tracardi has them.
    Delivered,
    /// Down or overloaded: try again later (after `retry_after` when Tracardi said so).
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Sent, but no answer came (a timeout, a connection cut mid-way): Tracardi may have
    /// processed the events, and may be stuck behind its answer. Try again later, one event at
    /// a time until Tracardi answers, so that a stuck Tracardi does not get the backlog twice.
    Unanswered { error: String },
    /// Tracardi will not take events from this configuration (401: unknown or disabled source,
    /// or an answer that means TRACARDI_API_URL is wrong): keep them and show the problem.
    Misconfigured { error: String },
    /// 400/406/422: Tracardi refuses this payload for good.
    Rejected { error: String },
}

impl Verdict {
    /// What the verdict means for its events, as the metrics count it.
    fn outcome(&self) -> DeliveryOutcome {
        match self {
            Verdict::Delivered => DeliveryOutcome::Delivered,
            Verdict::Retry { .. } | Verdict::Unanswered { .. } => DeliveryOutcome::Retry,
            Verdict::Misconfigured { .. } => DeliveryOutcome::Misconfigured,
            Verdict::Rejected { .. } => DeliveryOutcome::Dead,
        }
    }
}

/// Maps an HTTP answer from `/track` to a verdict. Pure.
pub fn verdict(status: u16, retry_after: Option<Duration>, body: &str) -> Verdict {
    let answer = || {
        format!(
            "Tracardi answered HTTP {status}: {}",
            body.chars().take(SHOWN_CHARS).collect::<String>()
        )
    };
    match status {
        200 | 226 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry {
            error: answer(),
            retry_after,
        },
        400 | 406 | 422 => Verdict::Rejected { error: answer() },
        401 => Verdict::Misconfigured {
            error: format!(
                "{}; check that TRACARDI_SOURCE_ID names an enabled event source of type rest",
                answer()
            ),
        },
        _ => Verdict::Misconfigured {
            error: format!("{}; check TRACARDI_API_URL", answer()),
        },
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random. `jitter` in [0, 1).
pub fn backoff(attempt: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let step = base.saturating_mul(1u32 << attempt.min(20)).min(cap);
    step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// The worker's view of Tracardi, for `/ready`, `/outbox` and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// TRACARDI_API_URL is not set: events are stored and wait.
    NotConfigured,
    /// Nothing has failed since the last success (or since start).
    Ok,
    /// Tracardi is unreachable or failing; events wait and are retried.
    Retrying,
    /// Tracardi refuses this configuration (e.g. an unknown source); events wait.
    Misconfigured,
}

/// Whether the delivery worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// TRACARDI_API_URL is not set: there is no worker, and none is needed.
    NotConfigured,
    /// Delivery is configured but the worker has not started, or has stopped at shutdown.
    Stopped,
    Running,
    /// The worker panicked or ended; it is started again shortly (see the log).
    Restarting,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryStatus {
    pub state: DeliveryState,
    pub worker: WorkerState,
    /// The last delivery error, if any since start.
    pub last_error: Option<String>,
    /// When the last error happened, Unix ms.
    pub last_error_at: Option<Millis>,
}

/// Shared between the worker and the handlers.
#[derive(Debug, Clone)]
pub struct DeliveryMonitor {
    status: Arc<Mutex<DeliveryStatus>>,
    wake: Arc<Notify>,
}

impl DeliveryMonitor {
    pub fn new(configured: bool) -> Self {
        Self {
            status: Arc::new(Mutex::new(DeliveryStatus {
                state: if configured {
                    DeliveryState::Ok
                } else {
                    DeliveryState::NotConfigured
                },
                worker: if configured {
                    WorkerState::Stopped
                } else {
                    WorkerState::NotConfigured
                },
                last_error: None,
                last_error_at: None,
            })),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn status(&self) -> DeliveryStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when delivery is configured but no worker runs: events would wait forever.
    pub fn worker_missing(&self) -> bool {
        matches!(
            self.status().worker,
            WorkerState::Stopped | WorkerState::Restarting
        )
    }

    fn set_worker(&self, worker: WorkerState) {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).worker = worker;
    }

    /// Tells the worker a new event is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Records a round's outcome; logs only when the state changes.
    fn record(&self, state: DeliveryState, error: Option<&str>) -> DeliveryState {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let before = status.state;
        if let Some(error) = error {
            status.last_error = Some(error.to_owned());
            status.last_error_at = Some(now_millis());
        }
        status.state = state;
        if before != state {
            match (state, error) {
                (DeliveryState::Ok, _) => tracing::info!("delivery to Tracardi works again"),
                (DeliveryState::Retrying, Some(e)) => tracing::warn!(
                    error = e,
                    "delivery to Tracardi failing; events are kept and retried"
                ),
                (DeliveryState::Misconfigured, Some(e)) => tracing::error!(
                    error = e,
                    "Tracardi refuses this service's events; events are kept until the configuration is fixed"
                ),
                _ => {}
            }
        }
        before
    }
}

/// Runs delivery workers until `shutdown` turns true: one at a time, and a new one (after a
/// pause that grows with each restart, and is logged) whenever one panics or ends on its own.
/// `/ready` says the worker is missing while it is restarted. Dropping the returned future
/// (an abort at shutdown) stops the worker too.
pub fn supervise(
    store: Arc<dyn Outbox>,
    config: DeliveryConfig,
    monitor: DeliveryMonitor,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let worker_monitor = monitor.clone();
    supervise_with(monitor, shutdown, move |stop| {
        Worker::new(store.clone(), config.clone(), worker_monitor.clone()).run(stop)
    })
}

/// [`supervise`] for any worker `start` makes.
pub fn supervise_with<W>(
    monitor: DeliveryMonitor,
    mut shutdown: watch::Receiver<bool>,
    mut start: impl FnMut(watch::Receiver<bool>) -> W + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static
where
    W: Future<Output = ()> + Send + 'static,
{
    // Marked before the first spawn, so that `/ready` never sees a gap at start.
    monitor.set_worker(WorkerState::Running);
    async move {
        let mut restarts = 0u32;
        loop {
            // Dropped with this future: the worker is aborted with its supervisor.
            let mut worker = tokio::task::JoinSet::new();
            worker.spawn(start(shutdown.clone()));
            monitor.set_worker(WorkerState::Running);
            let started = tokio::time::Instant::now();
            let ended = worker.join_next().await.expect("one worker was spawned");
            if *shutdown.borrow() {
                monitor.set_worker(WorkerState::Stopped);
                return;
            }
            monitor.set_worker(WorkerState::Restarting);
            if started.elapsed() >= RESTART_FORGOTTEN_AFTER {
                restarts = 0;
            }
            let pause = backoff(restarts, RESTART_BASE, RESTART_CAP, rand::random::<f64>());
            restarts = restarts.saturating_add(1);
            let restart_in_ms = pause.as_millis() as u64;
            // The panic's message went to stderr through the panic hook; it is not repeated
            // here, where it would reach the structured log.
            match ended {
                Err(e) if e.is_panic() => tracing::error!(
                    restart_in_ms,
                    restarts,
                    "the delivery worker panicked; it is started again, events are kept"
                ),
                _ => tracing::error!(
                    restart_in_ms,
                    restarts,
                    "the delivery worker stopped on its own; it is started again, events are kept"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => {
                    monitor.set_worker(WorkerState::Stopped);
                    return;
                }
            }
            tracing::info!(restarts, "delivery worker started again");
        }
    }
}

pub struct Worker {
    store: Arc<dyn Outbox>,
    http: reqwest::Client,
    config: DeliveryConfig,
    monitor: DeliveryMonitor,
    last_attempt: Option<tokio::time::Instant>,
    last_prune: Option<tokio::time::Instant>,
    /// Until Tracardi answers, the backlog is not sent, only the oldest event, alone: set at
    /// start (whether Tracardi answers is not known yet) and after a request went unanswered. A
    /// Tracardi stuck behind its answers still processes what it gets: sent the backlog, it
    /// would run every event's workflow once per attempt.
    cautious: bool,
}

impl Worker {
    pub fn new(store: Arc<dyn Outbox>, config: DeliveryConfig, monitor: DeliveryMonitor) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tracardi-twitter/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static client settings");
        Self {
            store,
            http,
            config,
            monitor,
            last_attempt: None,
            last_prune: None,
            cautious: true,
        }
    }

    /// Delivers until `shutdown` turns true. A round in progress finishes first (bounded by the
    /// delivery timeout); what is not delivered stays stored.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        // After a restart the backlog is due at once, whatever its backed-off times.
        if let Err(e) = self.store.pull_forward().await {
            tracing::error!(error = %e, "cannot read the outbox");
        }
        let wake = self.monitor.wake.clone();
        while !*shutdown.borrow() {
            let pause = match self.round().await {
                Ok(pause) => pause,
                Err(e) => {
                    tracing::error!(error = %e, "outbox error; retrying in a second");
                    MAX_IDLE
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round: deliver what is due; returns how long to wait before the next.
    async fn round(&mut self) -> Result<Duration, crate::store::StoreError> {
        self.prune().await;
        let lease = self.lease();
        if !self.cautious {
            let due = self.store.claim_due(CLAIM_LIMIT, lease).await?;
            if !due.is_empty() {
                self.deliver(due).await?;
                return Ok(Duration::ZERO);
            }
        }
        // Tracardi is failing (nothing is due yet) or did not answer: try the oldest waiting
        // event alone, so that Tracardi's return is noticed within a probe interval rather than
        // a backed-off retry, and at most that one event is sent again while it is stuck.
        let probing = self.cautious || self.monitor.status().state == DeliveryState::Retrying;
        let since_attempt = self.last_attempt.map(|at| at.elapsed());
        let probe_in = since_attempt.map_or(Duration::ZERO, |since| {
            self.config.probe_interval.saturating_sub(since)
        });
        if probing && probe_in.is_zero() {
            match self.store.claim_oldest(lease).await? {
                Some(event) => {
                    self.deliver(vec![event]).await?;
                    return Ok(Duration::ZERO);
                }
                // Nothing waits: nothing can be sent twice.
                None => self.cautious = false,
            }
        }
        if self.cautious {
            return Ok(probe_in.clamp(Duration::from_millis(5), MAX_IDLE));
        }
        let until_due = self.store.next_due_in().await?.unwrap_or(MAX_IDLE);
        Ok(until_due.min(MAX_IDLE).max(Duration::from_millis(5)))
    }

    /// Long enough for a round's requests to end (each is bounded by the timeout), so that no
    /// other worker claims what this one is still sending.
    fn lease(&self) -> Duration {
        self.config.timeout * 2 + Duration::from_secs(5)
    }

    async fn prune(&mut self) {
        if self
            .last_prune
            .is_some_and(|at| at.elapsed() < Duration::from_secs(3600))
        {
            return;
        }
        self.last_prune = Some(tokio::time::Instant::now());
        if let Err(e) = self.store.prune_delivered(KEEP_DELIVERED).await {
            tracing::warn!(error = %e, "cannot prune delivered events");
        }
    }

    /// Posts the events in payloads grouped by profile and session, concurrently, and records
    /// each payload's verdict.
    async fn deliver(&mut self, events: Vec<StoredEvent>) -> Result<(), crate::store::StoreError> {
        self.last_attempt = Some(tokio::time::Instant::now());
        // Set again by any request of this round that goes unanswered.
        self.cautious = false;
        let mut groups: BTreeMap<(Option<String>, Option<String>), Vec<StoredEvent>> =
            BTreeMap::new();
        for event in events {
            let key = (event.new.profile_id.clone(), event.new.session_id.clone());
            groups.entry(key).or_default().push(event);
        }
        let mut posts = tokio::task::JoinSet::new();
        for group in groups.into_values() {
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let chunk: Vec<StoredEvent> = group.by_ref().take(self.config.batch).collect();
                let (http, api_url, source) = (
                    self.http.clone(),
                    self.config.api_url.clone(),
                    self.config.source_id.clone(),
                );
                posts.spawn(async move {
                    let verdict = post(&http, &api_url, &source, &chunk).await;
                    (chunk, verdict)
                });
            }
        }
        let mut any_delivered = false;
        while let Some(joined) = posts.join_next().await {
            let (chunk, verdict) = joined.expect("delivery tasks do not panic");
            any_delivered |= self.settle(chunk, verdict).await?;
        }
        if any_delivered {
            // Tracardi answers: whatever waits behind a backed-off time is due now.
            self.store.pull_forward().await?;
        }
        Ok(())
    }

    /// Records a payload's verdict; returns whether anything was delivered.
    async fn settle(
        &mut self,
        chunk: Vec<StoredEvent>,
        verdict: Verdict,
    ) -> Result<bool, crate::store::StoreError> {
        let receipts = || chunk.iter().map(|e| e.receipt.clone()).collect::<Vec<_>>();
        let backed_off = |retry_after: Option<Duration>| {
            let attempts = chunk.iter().map(|e| e.attempts).max().unwrap_or(0);
            let wait = backoff(
                attempts,
                self.config.retry_base,
                self.config.retry_cap,
                rand::random::<f64>(),
            );
            match retry_after {
                Some(after) => wait.max(after.min(MAX_RETRY_AFTER)),
                None => wait,
            }
        };
        if !matches!(&verdict, Verdict::Rejected { .. }) || chunk.len() == 1 {
            crate::metrics::deliveries(verdict.outcome(), chunk.len() as u64);
        }
        let (settled, delivered) = match verdict {
            Verdict::Delivered => {
                let settled = self.store.mark_delivered(receipts()).await?;
                self.monitor.record(DeliveryState::Ok, None);
                (settled, true)
            }
            Verdict::Retry { error, retry_after } => {
                let wait = backed_off(retry_after);
                let settled = self
                    .store
                    .retry_after(receipts(), wait, error.clone())
                    .await?;
                self.monitor.record(DeliveryState::Retrying, Some(&error));
                (settled, false)
            }
            Verdict::Unanswered { error } => {
                let wait = backed_off(None);
                let settled = self
                    .store
                    .retry_after(receipts(), wait, error.clone())
                    .await?;
                self.cautious = true;
                self.monitor.record(DeliveryState::Retrying, Some(&error));
                (settled, false)
            }
            Verdict::Misconfigured { error } => {
                let settled = self
                    .store
                    .retry_after(receipts(), self.config.retry_cap, error.clone())
                    .await?;
                self.monitor
                    .record(DeliveryState::Misconfigured, Some(&error));
                (settled, false)
            }
            Verdict::Rejected { error } if chunk.len() == 1 => {
                let event = &chunk[0];
                tracing::warn!(event_id = %event.new.id, error = %error, "Tracardi refused the event; kept as a dead letter");
                let settled = self
                    .store
                    .mark_dead(event.receipt.clone(), error.clone())
                    .await?;
                // Tracardi answered: the connection works, only this event is bad.
                self.monitor.record(DeliveryState::Ok, Some(&error));
                (u64::from(settled), false)
            }
            Verdict::Rejected { .. } => {
                // One event spoils the payload: send them one by one to find which (each is
                // counted by its own verdict).
                let mut any = false;
                for event in chunk {
                    let verdict = post(
                        &self.http,
                        &self.config.api_url,
                        &self.config.source_id,
                        std::slice::from_ref(&event),
                    )
                    .await;
                    any |= Box::pin(self.settle(vec![event], verdict)).await?;
                }
                return Ok(any);
            }
        };
        let stale = (chunk.len() as u64).saturating_sub(settled);
        if stale > 0 {
            // Their leases ran out while Tracardi was asked: another round (or replica) has
            // them now, and its outcome stands.
            tracing::warn!(
                stale,
                "a delivery outcome came after its lease ran out; the events' newer claim decides"
            );
        }
        Ok(delivered)
    }
}

/// Query parameters of X's redirects that are one-time secrets.
const SECRET_PROPERTIES: [&str; 4] = ["oauth_verifier", "code", "oauth_token", "state"];

/// The part of Tracardi's answer that is logged and kept as `last_error`: its first
/// [`SHOWN_CHARS`] characters, with the events' one-time secrets masked (Tracardi's error answers
/// may echo what they were sent: FastAPI's 422 has an `input` field). A secret that starts in the
/// shown part is masked whole, wherever it ends. Linear in the shown part and the secrets.
fn excerpt(answer: &str, events: &[&NewEvent]) -> String {
    let secrets: Vec<&str> = events
        .iter()
        .flat_map(|event| {
            SECRET_PROPERTIES
                .iter()
                .filter_map(|name| event.event["properties"][name].as_str())
        })
        .filter(|value| value.len() >= 4)
        .collect();
    let shown_end = answer
        .char_indices()
        .nth(SHOWN_CHARS)
        .map_or(answer.len(), |(at, _)| at);
    // A secret starting in the shown part may end after it: search that much further.
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut searched_end = (shown_end + longest).min(answer.len());
    while !answer.is_char_boundary(searched_end) {
        searched_end -= 1;
    }
    let searched = &answer[..searched_end];
    let mut masked: Vec<(usize, usize)> = secrets
        .iter()
        .flat_map(|secret| {
            searched
                .match_indices(secret)
                .map(|(start, found)| (start, start + found.len()))
        })
        .filter(|(start, _)| *start < shown_end)
        .collect();
    masked.sort_unstable();
    let mut shown = String::with_capacity(shown_end);
    let mut at = 0;
    for (start, end) in masked {
        if start >= at {
            shown.push_str(&answer[at..start]);
            shown.push_str("[redacted]");
        }
        at = at.max(end);
    }
    if at < shown_end {
        shown.push_str(&answer[at..shown_end]);
    }
    shown
}

/// Reads at most [`ANSWER_READ_LIMIT`] bytes of an answer; the rest is left unread (the
/// connection is then closed rather than reused). A read that fails keeps what came.
async fn read_bounded(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ANSWER_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = ANSWER_READ_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// One POST of a TrackerPayload, timed for the metrics.
async fn post(
    http: &reqwest::Client,
    api_url: &str,
    source_id: &str,
    chunk: &[StoredEvent],
) -> Verdict {
    let started = std::time::Instant::now();
    let verdict = post_untimed(http, api_url, source_id, chunk).await;
    crate::metrics::delivery_request(verdict.outcome(), started.elapsed());
    verdict
}

async fn post_untimed(
    http: &reqwest::Client,
    api_url: &str,
    source_id: &str,
    chunk: &[StoredEvent],
) -> Verdict {
    let events: Vec<&NewEvent> = chunk.iter().map(|e| &e.new).collect();
    let request = track_request(source_id, &events);
    let url = format!("{api_url}{}", request.path_and_query);
    match http.post(url).json(&request.payload).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let answer = read_bounded(response).await;
            verdict(status, retry_after, &excerpt(&answer, &events))
        }
        // Refused: nothing reached Tracardi.
        Err(e) if e.is_connect() => Verdict::Retry {
            error: "Tracardi could not be reached (connection failed)".to_owned(),
            retry_after: None,
        },
        Err(e) => Verdict::Unanswered {
            error: if e.is_timeout() {
                "Tracardi did not answer in time".to_owned()
            } else {
                format!("the request to Tracardi failed: {e}")
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(200, None, ""), Verdict::Delivered);
        assert_eq!(verdict(226, None, "{}"), Verdict::Delivered);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(verdict(status, None, ""), Verdict::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 406, 422] {
            assert!(
                matches!(verdict(status, None, ""), Verdict::Rejected { .. }),
                "{status}"
            );
        }
        match verdict(401, None, r#"{"detail":"Event source disabled."}"#) {
            Verdict::Misconfigured { error } => assert!(
                error.contains("Event source disabled") && error.contains("TRACARDI_SOURCE_ID")
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(404, None, ""),
            Verdict::Misconfigured { .. }
        ));
    }

    #[test]
    fn tracardi_s_echo_of_a_verifier_is_masked() {
        let event =
            crate::callback::Redirect::parse(Some("oauth_token=tok-123&oauth_verifier=ver-456"))
                .unwrap()
                .to_event(0);
        let answer =
            r#"{"detail":[{"input":{"oauth_verifier":"ver-456","oauth_token":"tok-123"}}]}"#;
        let masked = excerpt(answer, &[&event]);
        assert!(
            !masked.contains("ver-456") && !masked.contains("tok-123"),
            "{masked}"
        );
        assert!(masked.contains("[redacted]"), "{masked}");
    }

    #[test]
    fn the_excerpt_is_bounded_and_masks_a_secret_cut_by_its_end() {
        let event = crate::callback::Redirect::parse(Some(
            "oauth_token=tok-123&oauth_verifier=ver-4567890",
        ))
        .unwrap()
        .to_event(0);
        // The verifier starts 4 characters before the end of the shown part.
        let answer = format!(
            "{}ver-4567890{}",
            "é".repeat(SHOWN_CHARS - 4),
            "z".repeat(100_000)
        );
        let shown = excerpt(&answer, &[&event]);
        assert!(
            shown.ends_with("é[redacted]"),
            "{}",
            &shown[shown.len() - 20..]
        );
        assert!(!shown.contains("ver-"));
        assert_eq!(shown.chars().count(), SHOWN_CHARS - 4 + "[redacted]".len());
        // Short answers are kept whole; overlapping secrets are masked once.
        assert_eq!(excerpt("plain", &[&event]), "plain");
        assert_eq!(excerpt("", &[]), "");
    }

    fn monitor() -> DeliveryMonitor {
        DeliveryMonitor::new(true)
    }

    /// Waits (bounded) until the monitor's worker state is `state`.
    async fn wait_for_worker(monitor: &DeliveryMonitor, state: WorkerState) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while monitor.status().worker != state {
            assert!(tokio::time::Instant::now() < deadline, "never {state:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_worker_that_ends_or_panics_is_started_again() {
        let monitor = monitor();
        assert!(monitor.worker_missing(), "configured, not started");
        let (stop, stopped) = watch::channel(false);
        let starts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = starts.clone();
        let supervisor = tokio::spawn(supervise_with(monitor.clone(), stopped, move |mut stop| {
            let start = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match start {
                    0 => {}                      // ends on its own
                    1 => panic!("a worker bug"), // panics
                    _ => {
                        let _ = stop.wait_for(|stop| *stop).await;
                    }
                }
            }
        }));
        assert_eq!(monitor.status().worker, WorkerState::Running);
        wait_for_worker(&monitor, WorkerState::Restarting).await;
        assert!(monitor.worker_missing());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while starts.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not restarted twice"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        wait_for_worker(&monitor, WorkerState::Running).await;
        assert!(!monitor.worker_missing());
        stop.send(true).unwrap();
        supervisor.await.unwrap();
        assert_eq!(monitor.status().worker, WorkerState::Stopped);
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(backoff(0, base, cap, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(0, base, cap, 0.999_999).as_millis(), 999);
        assert_eq!(backoff(3, base, cap, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(30, base, cap, 0.0), Duration::from_secs(150));
        assert!(backoff(30, base, cap, 0.999) <= cap);
    }
}
