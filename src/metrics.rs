//! What an operator alerts on: counters, gauges and histograms in Prometheus' text format
//! (`GET /metrics`, see `http::metrics`), through the `metrics` facade and
//! `metrics-exporter-prometheus`'s recorder.
//!
//! Every name and label is written here, so that the whole list is in one place (the README
//! lists it too). Labels take values from small fixed sets only: route templates, HTTP methods
//! and statuses, X's endpoint paths, problem codes. Never a key, token, user id, event id or raw
//! path: a label value becomes a time series kept for as long as the process lives, and the
//! scrape output is read by more people than the service's secrets are meant for.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder), installed once by
//! [`install`]. Before that every call here is a no-op, so code paths used by the CLI and unit
//! tests need no set-up.
//!
//! Cost on the request path: the access layer keeps, per route, handles registered on first use
//! ([`RouteMetrics`]); a request then costs two atomic loads (the handles), atomic adds (the
//! counter and its generation) and a lock-free push of its latency into the histogram's current
//! block of 64 samples (a block is allocated per 64 requests of a route), with no registry
//! lookup, hashing, lock or string formatting. The samples are folded into buckets at each
//! scrape and every few seconds (`run_upkeep`).

use crate::store::{Outbox, now_millis};
use ::metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const BUILD_INFO: &str = "tracardi_twitter_build_info";
const HTTP_REQUESTS: &str = "tracardi_twitter_http_requests_total";
const HTTP_DURATION: &str = "tracardi_twitter_http_request_duration_seconds";
const VALIDATIONS: &str = "tracardi_twitter_validations_total";
const VALIDATION_PROBLEMS: &str = "tracardi_twitter_validation_problems_total";
const VALIDATION_CACHE: &str = "tracardi_twitter_validation_cache_lookups_total";
const X_REQUESTS: &str = "tracardi_twitter_x_requests_total";
const X_DURATION: &str = "tracardi_twitter_x_request_duration_seconds";
const X_RATE_LIMIT: &str = "tracardi_twitter_x_rate_limit_limit";
const X_RATE_REMAINING: &str = "tracardi_twitter_x_rate_limit_remaining";
const X_RATE_RESET: &str = "tracardi_twitter_x_rate_limit_reset_timestamp_seconds";
const OUTBOX_EVENTS: &str = "tracardi_twitter_outbox_events";
const OUTBOX_OLDEST_AGE: &str = "tracardi_twitter_outbox_oldest_pending_age_seconds";
const OUTBOX_READABLE: &str = "tracardi_twitter_outbox_readable";
const EVENTS_STORED: &str = "tracardi_twitter_events_stored_total";
const DELIVERIES: &str = "tracardi_twitter_deliveries_total";
const DELIVERY_DURATION: &str = "tracardi_twitter_delivery_request_duration_seconds";
const SEND_TWEET_RUNS: &str = "tracardi_twitter_send_tweet_runs_total";
const X_WEBHOOK_EVENTS: &str = "tracardi_twitter_x_webhook_events_total";
const X_WEBHOOK_SIGNATURE_FAILURES: &str = "tracardi_twitter_x_webhook_signature_failures_total";
const X_WEBHOOK_CRC: &str = "tracardi_twitter_x_webhook_crc_checks_total";

/// Histogram buckets, in seconds, for every latency here: from a cached answer (well under a
/// millisecond) to the longest timeouts (X and Tracardi: 10 s by default, requests 30 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The outbox's counts are read from the store at most this often, however many scrapes come
/// (several Prometheus servers, a dashboard refreshing): they scan the events.
pub const OUTBOX_COUNTS_MAX_AGE: Duration = Duration::from_secs(2);

/// A scrape waits this long for the store's counts, then answers with the last ones (and
/// `tracardi_twitter_outbox_readable 0`): a slow store must not make the scrape time out too.
const OUTBOX_COUNTS_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the process-wide recorder, once, and returns the handle that renders it. Later calls
/// return the same handle (tests start several services in one process).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder was installed first: /metrics stays empty"
                );
            }
            describe();
            preregister();
            handle
        })
        .clone()
}

/// HELP and TYPE lines for every metric of this service.
fn describe() {
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the `version` label is this build's version."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route template (`unmatched` for paths the service does not serve), method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its answer's headers, by route template."
    );
    describe_counter!(
        VALIDATIONS,
        "Checks of the four keys, by outcome: valid, invalid (X gave a verdict), or why there was no verdict (x_timeout, x_unreachable, x_rate_limited, x_usage_capped, x_unexpected_answer)."
    );
    describe_counter!(
        VALIDATION_PROBLEMS,
        "Problems found by checks of the four keys, errors and warnings, by problem code."
    );
    describe_counter!(
        VALIDATION_CACHE,
        "Checks answered from the validation cache (hit) or by asking X (miss)."
    );
    describe_counter!(
        X_REQUESTS,
        "Calls to X's API, by endpoint and HTTP status (`timeout` or `unreachable` when no answer came)."
    );
    describe_histogram!(
        X_DURATION,
        Unit::Seconds,
        "Time X took to answer, by endpoint (answers and timeouts)."
    );
    describe_gauge!(
        X_RATE_LIMIT,
        "X's x-rate-limit-limit in the last answer from the endpoint."
    );
    describe_gauge!(
        X_RATE_REMAINING,
        "X's x-rate-limit-remaining in the last answer from the endpoint: calls left in the window of the keys last used."
    );
    describe_gauge!(
        X_RATE_RESET,
        Unit::Seconds,
        "X's x-rate-limit-reset in the last answer from the endpoint: when the window resets, Unix seconds."
    );
    describe_gauge!(
        OUTBOX_EVENTS,
        "Events in the store by state (pending, delivering, dead); with Redis, every replica's."
    );
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest event not yet delivered; 0 when none waits."
    );
    describe_gauge!(
        OUTBOX_READABLE,
        "1 when the outbox counts could be read at the last scrape, 0 when they are stale."
    );
    describe_counter!(
        EVENTS_STORED,
        "Events newly stored for Tracardi, by source (callback, connect, x_webhook); repeats are not counted."
    );
    describe_counter!(
        DELIVERIES,
        "Events whose delivery to Tracardi ended an attempt, by outcome (delivered, retry, dead, misconfigured)."
    );
    describe_histogram!(
        DELIVERY_DURATION,
        Unit::Seconds,
        "Time of one POST /track to Tracardi, by outcome."
    );
    describe_counter!(
        SEND_TWEET_RUNS,
        "Send tweet runs, by port (response, error) and code (ok, or the error's code)."
    );
    describe_counter!(
        X_WEBHOOK_EVENTS,
        "Activities received from X's webhooks, by Tracardi event type (twitter-mention, twitter-like, ..., twitter-activity for the rest)."
    );
    describe_counter!(
        X_WEBHOOK_SIGNATURE_FAILURES,
        "Webhook requests refused because X's signature did not verify."
    );
    describe_counter!(
        X_WEBHOOK_CRC,
        "X's webhook challenge-response checks (CRC) answered."
    );
}

/// Series an alert rule compares against are shown at 0 from the start, so that `increase()`
/// sees their first event.
fn preregister() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for outcome in DeliveryOutcome::ALL {
        counter!(DELIVERIES, "outcome" => outcome.as_str()).absolute(0);
    }
    for source in EventSource::ALL {
        counter!(EVENTS_STORED, "source" => source.as_str()).absolute(0);
    }
    for result in ["hit", "miss"] {
        counter!(VALIDATION_CACHE, "result" => result).absolute(0);
    }
    counter!(X_WEBHOOK_SIGNATURE_FAILURES).absolute(0);
    counter!(X_WEBHOOK_CRC).absolute(0);
}

// ---- HTTP, on every request --------------------------------------------------------------

/// Methods with their own label value; any other (CONNECT, TRACE, extension methods, which
/// anyone can invent) is `other`, so a client cannot mint series.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];
const METHOD_SLOTS: usize = METHODS.len() + 1;

/// Statuses this service answers, each with a handle slot; a status not listed is counted
/// through the registry (a lookup and an allocation, on a path that does not happen).
const STATUSES: [u16; 22] = [
    200, 201, 204, 301, 302, 303, 304, 307, 308, 400, 403, 404, 405, 408, 413, 415, 422, 429, 500,
    502, 503, 504,
];

fn method_slot(method: &Method) -> usize {
    METHODS
        .iter()
        .position(|m| m == method)
        .unwrap_or(METHODS.len())
}

fn method_label(slot: usize) -> &'static str {
    const LABELS: [&str; METHOD_SLOTS] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
    ];
    LABELS[slot]
}

/// One route's request counters and latency histogram, registered on first use (after
/// [`install`], which the service runs before it answers anything).
pub struct RouteMetrics {
    route: String,
    latency: OnceLock<Histogram>,
    requests: [[OnceLock<Counter>; STATUSES.len()]; METHOD_SLOTS],
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// `route` is the template (`/api-key/{api_key}`), or `unmatched`: never a raw path.
    pub fn new(route: &str) -> Self {
        Self {
            route: route.to_owned(),
            latency: OnceLock::new(),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
        }
    }

    /// Counts one answered request and its latency.
    pub fn record(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let method = method_slot(method);
        match STATUSES.binary_search(&status.as_u16()) {
            Ok(slot) => self.requests[method][slot]
                .get_or_init(|| self.requests_counter(method, status.as_u16().to_string()))
                .increment(1),
            Err(_) => self
                .requests_counter(method, status.as_u16().to_string())
                .increment(1),
        }
        self.latency
            .get_or_init(|| histogram!(HTTP_DURATION, "route" => self.route.clone()))
            .record(elapsed.as_secs_f64());
    }

    fn requests_counter(&self, method: usize, status: String) -> Counter {
        counter!(
            HTTP_REQUESTS,
            "route" => self.route.clone(),
            "method" => method_label(method),
            "status" => status
        )
    }
}

// ---- Checking keys and calling X ---------------------------------------------------------

/// A check of the four keys: `valid`, `invalid`, or the code of the answer that gave no verdict
/// (`x_timeout`, ...); and the codes of the problems found.
pub fn validation(outcome: &'static str, problem_codes: impl IntoIterator<Item = &'static str>) {
    counter!(VALIDATIONS, "outcome" => outcome).increment(1);
    for code in problem_codes {
        counter!(VALIDATION_PROBLEMS, "code" => code).increment(1);
    }
}

/// Whether a check was answered from the cache.
pub fn validation_cache(hit: bool) {
    counter!(VALIDATION_CACHE, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

/// What came of a call to X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XOutcome {
    /// X answered with this HTTP status.
    Answered(u16),
    TimedOut,
    Unreachable,
}

/// A call to X's `endpoint` (its path, `/2/users/me`) that took `elapsed`.
pub fn x_request(endpoint: &'static str, outcome: XOutcome, elapsed: Duration) {
    let status = match outcome {
        XOutcome::Answered(status) => status.to_string(),
        XOutcome::TimedOut => "timeout".to_owned(),
        XOutcome::Unreachable => "unreachable".to_owned(),
    };
    counter!(X_REQUESTS, "endpoint" => endpoint, "status" => status).increment(1);
    histogram!(X_DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

/// X's rate-limit headers from an answer of `endpoint`, each when present.
pub fn x_rate_limit(
    endpoint: &'static str,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
) {
    for (name, value) in [
        (X_RATE_LIMIT, limit),
        (X_RATE_REMAINING, remaining),
        (X_RATE_RESET, reset),
    ] {
        if let Some(value) = value {
            gauge!(name, "endpoint" => endpoint).set(value as f64);
        }
    }
}

// ---- Events, delivery, Send tweet, X's webhooks ------------------------------------------

/// Where a stored event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// X's redirect to `GET /callback`, stored as it is.
    Callback,
    /// The end of a "Connect Twitter" flow this service ran.
    Connect,
    /// An activity event from X's webhooks.
    XWebhook,
}

impl EventSource {
    const ALL: [EventSource; 3] = [Self::Callback, Self::Connect, Self::XWebhook];

    fn as_str(self) -> &'static str {
        match self {
            Self::Callback => "callback",
            Self::Connect => "connect",
            Self::XWebhook => "x_webhook",
        }
    }
}

/// An event newly stored for Tracardi (call it when the store says it was new, not a repeat).
pub fn event_stored(source: EventSource) {
    counter!(EVENTS_STORED, "source" => source.as_str()).increment(1);
}

/// What one delivery attempt did for its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Tracardi down, overloaded or silent: tried again later.
    Retry,
    /// Refused for good: a dead letter.
    Dead,
    /// Tracardi refuses this configuration (e.g. an unknown source): kept, retried at the cap.
    Misconfigured,
}

impl DeliveryOutcome {
    const ALL: [DeliveryOutcome; 4] = [
        Self::Delivered,
        Self::Retry,
        Self::Dead,
        Self::Misconfigured,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Dead => "dead",
            Self::Misconfigured => "misconfigured",
        }
    }
}

/// `events` events ended a delivery attempt with `outcome`.
pub fn deliveries(outcome: DeliveryOutcome, events: u64) {
    counter!(DELIVERIES, "outcome" => outcome.as_str()).increment(events);
}

/// One `POST /track` took `elapsed` and came to `outcome`.
pub fn delivery_request(outcome: DeliveryOutcome, elapsed: Duration) {
    histogram!(DELIVERY_DURATION, "outcome" => outcome.as_str()).record(elapsed.as_secs_f64());
}

/// A Send tweet run answered on `port` (`response` or `error`) with `code` (`ok` on success).
/// The codes are this service's own (`microservice.rs`), a fixed set.
pub fn send_tweet_run(port: &'static str, code: &str) {
    counter!(SEND_TWEET_RUNS, "port" => port, "code" => code.to_owned()).increment(1);
}

/// An activity received from X's webhooks. `event_type` is its Tracardi event type, from the
/// fixed list `x_activity::types` (`twitter-mention`, ..., `twitter-activity` for the rest): a
/// label value a sender could choose would mint series.
pub fn x_webhook_delivery(event_type: &'static str) {
    counter!(X_WEBHOOK_EVENTS, "event_type" => event_type).increment(1);
}

/// A webhook request whose signature did not verify.
pub fn x_webhook_signature_failure() {
    counter!(X_WEBHOOK_SIGNATURE_FAILURES).increment(1);
}

/// A CRC challenge from X answered.
pub fn x_webhook_crc() {
    counter!(X_WEBHOOK_CRC).increment(1);
}

// ---- The scrape --------------------------------------------------------------------------

/// Renders `/metrics`: refreshes what is read rather than counted (the outbox's counts, the
/// process's figures), then the recorder's text.
pub struct Scraper {
    handle: PrometheusHandle,
    outbox: Arc<dyn Outbox>,
    process: metrics_process::Collector,
    /// When the outbox counts were last read; a lock held across the read, so that concurrent
    /// scrapes share one.
    counts_read: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper").finish_non_exhaustive()
    }
}

impl Scraper {
    /// Installs the recorder if it is not yet (see [`install`]).
    pub fn new(outbox: Arc<dyn Outbox>) -> Self {
        let process = metrics_process::Collector::default();
        let handle = install();
        process.describe();
        Self {
            handle,
            outbox,
            process,
            counts_read: tokio::sync::Mutex::new(None),
        }
    }

    /// The metrics in Prometheus' text format (version 0.0.4).
    pub async fn render(&self) -> String {
        self.refresh_outbox().await;
        self.process.collect();
        self.handle.render()
    }

    /// Drains the histograms' samples into their buckets: run every few seconds, so that the
    /// samples of a service nobody scrapes do not pile up.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    async fn refresh_outbox(&self) {
        let mut read = self.counts_read.lock().await;
        if read.is_some_and(|at| at.elapsed() < OUTBOX_COUNTS_MAX_AGE) {
            return;
        }
        match tokio::time::timeout(OUTBOX_COUNTS_TIMEOUT, self.outbox.counts()).await {
            Ok(Ok(counts)) => {
                for (state, value) in [
                    ("pending", counts.pending),
                    ("delivering", counts.delivering),
                    ("dead", counts.dead),
                ] {
                    gauge!(OUTBOX_EVENTS, "state" => state).set(value as f64);
                }
                let age = counts.oldest_pending_created.map_or(0.0, |created| {
                    (now_millis() - created).max(0) as f64 / 1000.0
                });
                gauge!(OUTBOX_OLDEST_AGE).set(age);
                gauge!(OUTBOX_READABLE).set(1.0);
                *read = Some(Instant::now());
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: the outbox counts cannot be read");
                gauge!(OUTBOX_READABLE).set(0.0);
            }
            Err(_) => {
                tracing::warn!("metrics: the outbox counts took too long to read");
                gauge!(OUTBOX_READABLE).set(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_for_the_binary_search() {
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]));
    }

    /// Statuses with a handle slot and those without are counted alike, under the route's
    /// template; the latency goes to the route's histogram.
    #[test]
    fn route_metrics_count_every_status_under_the_template() {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            let route = RouteMetrics::new("/api-key/{api_key}");
            let ms = Duration::from_millis(3);
            route.record(&Method::GET, StatusCode::OK, ms);
            route.record(&Method::GET, StatusCode::OK, ms);
            route.record(&Method::GET, StatusCode::IM_A_TEAPOT, ms);
            route.record(
                &Method::from_bytes(b"BREW").unwrap(),
                StatusCode::IM_A_TEAPOT,
                ms,
            );
        });
        let text = handle.render();
        for line in [
            r#"tracardi_twitter_http_requests_total{route="/api-key/{api_key}",method="GET",status="200"} 2"#,
            r#"tracardi_twitter_http_requests_total{route="/api-key/{api_key}",method="GET",status="418"} 1"#,
            r#"tracardi_twitter_http_requests_total{route="/api-key/{api_key}",method="other",status="418"} 1"#,
            r#"tracardi_twitter_http_request_duration_seconds_count{route="/api-key/{api_key}"} 4"#,
            r#"tracardi_twitter_http_request_duration_seconds_bucket{route="/api-key/{api_key}",le="0.005"} 4"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn methods_outside_the_standard_ones_are_other() {
        assert_eq!(method_label(method_slot(&Method::GET)), "GET");
        assert_eq!(method_label(method_slot(&Method::OPTIONS)), "OPTIONS");
        assert_eq!(method_label(method_slot(&Method::TRACE)), "other");
        let invented = Method::from_bytes(b"SECRETVALUE").unwrap();
        assert_eq!(method_label(method_slot(&invented)), "other");
    }
}
