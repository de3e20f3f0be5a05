//! The delivery worker: posts stored events to Tracardi's `/track` until Tracardi has them.
//!
//! At-least-once with stable event ids (Tracardi stores events by id, so a repeat is harmless).
//! Transient failures back off exponentially with jitter; when Tracardi answers again, every
//! waiting event is made due at once so the backlog drains in seconds, not at each event's
//! backed-off time. Configuration problems (401: unknown or disabled source) are shown once per
//! change and retried at the cap; payloads Tracardi refuses for good become dead letters.

use crate::config::DeliveryConfig;
use crate::store::{Millis, NewEvent, Outbox, StoredEvent, now_millis};
use crate::tracardi::track::tracker_payload;
use serde::Serialize;
use std::collections::BTreeMap;
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

/// What Tracardi's answer means for the events in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200 or 226: Tracardi has them.
    Delivered,
    /// Down, slow or overloaded: try again later (after `retry_after` when Tracardi said so).
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Tracardi will not take events from this configuration (401: unknown or disabled source,
    /// or an answer that means TRACARDI_API_URL is wrong): keep them and show the problem.
    Misconfigured { error: String },
    /// 400/406/422: Tracardi refuses this payload for good.
    Rejected { error: String },
}

/// Maps an HTTP answer from `/track` to a verdict. Pure.
pub fn verdict(status: u16, retry_after: Option<Duration>, body: &str) -> Verdict {
    let answer = || {
        format!(
            "Tracardi answered HTTP {status}: {}",
            body.chars().take(2000).collect::<String>()
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryStatus {
    pub state: DeliveryState,
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

pub struct Worker {
    store: Arc<dyn Outbox>,
    http: reqwest::Client,
    track_url: String,
    config: DeliveryConfig,
    monitor: DeliveryMonitor,
    last_attempt: Option<tokio::time::Instant>,
    last_prune: Option<tokio::time::Instant>,
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
            track_url: format!("{}/track", config.api_url),
            config,
            monitor,
            last_attempt: None,
            last_prune: None,
        }
    }

    /// Delivers until `shutdown` turns true. A round in progress finishes first (bounded by the
    /// delivery timeout); what is not delivered stays stored.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        // After a restart the backlog is due at once, whatever its backed-off times.
        if let Err(e) = self.store.pull_forward(now_millis()).await {
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
        let now = now_millis();
        let lease = self.lease_ms();
        let due = self.store.claim_due(now, CLAIM_LIMIT, lease).await?;
        if !due.is_empty() {
            self.deliver(due).await?;
            return Ok(Duration::ZERO);
        }
        // Tracardi was failing and nothing is due yet: try the oldest waiting event early, so
        // that its return is noticed within a probe interval rather than a backed-off retry.
        let probe_due = self
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.config.probe_interval);
        if self.monitor.status().state == DeliveryState::Retrying
            && probe_due
            && let Some(event) = self.store.claim_oldest(now, lease).await?
        {
            self.deliver(vec![event]).await?;
            return Ok(Duration::ZERO);
        }
        let until_due = match self.store.next_due().await? {
            Some(due) => Duration::from_millis(due.saturating_sub(now_millis()).max(0) as u64),
            None => MAX_IDLE,
        };
        Ok(until_due.min(MAX_IDLE).max(Duration::from_millis(5)))
    }

    fn lease_ms(&self) -> Millis {
        (self.config.timeout.as_millis() as Millis) * 2 + 5_000
    }

    async fn prune(&mut self) {
        if self
            .last_prune
            .is_some_and(|at| at.elapsed() < Duration::from_secs(3600))
        {
            return;
        }
        self.last_prune = Some(tokio::time::Instant::now());
        let before = now_millis() - KEEP_DELIVERED.as_millis() as Millis;
        if let Err(e) = self.store.prune_delivered(before).await {
            tracing::warn!(error = %e, "cannot prune delivered events");
        }
    }

    /// Posts the events in payloads grouped by profile and session, concurrently, and records
    /// each payload's verdict.
    async fn deliver(&mut self, events: Vec<StoredEvent>) -> Result<(), crate::store::StoreError> {
        self.last_attempt = Some(tokio::time::Instant::now());
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
                let (http, url, source) = (
                    self.http.clone(),
                    self.track_url.clone(),
                    self.config.source_id.clone(),
                );
                posts.spawn(async move {
                    let verdict = post(&http, &url, &source, &chunk).await;
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
            self.store.pull_forward(now_millis()).await?;
        }
        Ok(())
    }

    /// Records a payload's verdict; returns whether anything was delivered.
    async fn settle(
        &mut self,
        chunk: Vec<StoredEvent>,
        verdict: Verdict,
    ) -> Result<bool, crate::store::StoreError> {
        let ids = || chunk.iter().map(|e| e.new.id.clone()).collect::<Vec<_>>();
        match verdict {
            Verdict::Delivered => {
                self.store.mark_delivered(ids()).await?;
                self.monitor.record(DeliveryState::Ok, None);
                Ok(true)
            }
            Verdict::Retry { error, retry_after } => {
                let attempts = chunk.iter().map(|e| e.attempts).max().unwrap_or(0);
                let mut wait = backoff(
                    attempts,
                    self.config.retry_base,
                    self.config.retry_cap,
                    rand::random::<f64>(),
                );
                if let Some(after) = retry_after {
                    wait = wait.max(after.min(MAX_RETRY_AFTER));
                }
                self.store
                    .retry_at(ids(), due_after(wait), error.clone())
                    .await?;
                self.monitor.record(DeliveryState::Retrying, Some(&error));
                Ok(false)
            }
            Verdict::Misconfigured { error } => {
                self.store
                    .retry_at(ids(), due_after(self.config.retry_cap), error.clone())
                    .await?;
                self.monitor
                    .record(DeliveryState::Misconfigured, Some(&error));
                Ok(false)
            }
            Verdict::Rejected { error } if chunk.len() == 1 => {
                let event = &chunk[0].new;
                tracing::warn!(event_id = %event.id, error = %error, "Tracardi refused the event; kept as a dead letter");
                self.store
                    .mark_dead(event.id.clone(), error.clone())
                    .await?;
                // Tracardi answered: the connection works, only this event is bad.
                self.monitor.record(DeliveryState::Ok, Some(&error));
                Ok(false)
            }
            Verdict::Rejected { .. } => {
                // One event spoils the payload: send them one by one to find which.
                let mut any = false;
                for event in chunk {
                    let verdict = post(
                        &self.http,
                        &self.track_url,
                        &self.config.source_id,
                        std::slice::from_ref(&event),
                    )
                    .await;
                    any |= Box::pin(self.settle(vec![event], verdict)).await?;
                }
                Ok(any)
            }
        }
    }
}

fn due_after(wait: Duration) -> Millis {
    now_millis() + wait.as_millis() as Millis
}

/// Query parameters of X's redirects that are one-time secrets.
const SECRET_PROPERTIES: [&str; 4] = ["oauth_verifier", "code", "oauth_token", "state"];

/// Tracardi's error answers may echo what it was sent (FastAPI's 422 has an `input` field).
/// The answer is logged and kept as `last_error`, so the events' one-time secrets are masked.
fn redact(answer: &str, events: &[&NewEvent]) -> String {
    let mut answer = answer.to_owned();
    for event in events {
        for name in SECRET_PROPERTIES {
            if let Some(value) = event.event["properties"][name].as_str()
                && value.len() >= 4
            {
                answer = answer.replace(value, "[redacted]");
            }
        }
    }
    answer
}

/// One POST of a TrackerPayload.
async fn post(
    http: &reqwest::Client,
    url: &str,
    source_id: &str,
    chunk: &[StoredEvent],
) -> Verdict {
    let events: Vec<&NewEvent> = chunk.iter().map(|e| &e.new).collect();
    let payload = tracker_payload(source_id, &events);
    match http.post(url).json(&payload).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.text().await.unwrap_or_default();
            verdict(status, retry_after, &redact(&body, &events))
        }
        Err(e) => Verdict::Retry {
            error: if e.is_timeout() {
                "Tracardi did not answer in time".to_owned()
            } else if e.is_connect() {
                "Tracardi could not be reached (connection failed)".to_owned()
            } else {
                format!("the request to Tracardi failed: {e}")
            },
            retry_after: None,
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
        let masked = redact(answer, &[&event]);
        assert!(
            !masked.contains("ver-456") && !masked.contains("tok-123"),
            "{masked}"
        );
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
