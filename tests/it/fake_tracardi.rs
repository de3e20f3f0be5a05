//! A fake Tracardi API: a real HTTP server on 127.0.0.1 that records every `POST /track` and
//! answers as told (200, 226, 401, 422, 500, hang), or is absent (its port refuses connections).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok,
    /// 226: stored, with errors in the body.
    Accepted226,
    /// 401 with this `detail` (as for an unknown or disabled source).
    Unauthorized(String),
    Unprocessable,
    ServerError,
    /// Never answers.
    Hang,
}

#[derive(Default)]
struct Inner {
    answer: Option<Answer>,
    payloads: Vec<Value>,
    requests: usize,
}

#[derive(Clone)]
pub struct FakeTracardi {
    pub url: String,
    port: u16,
    inner: Arc<Mutex<Inner>>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl FakeTracardi {
    /// A running fake answering 200.
    pub async fn start() -> Self {
        let fake = Self::absent();
        fake.come_up().await;
        fake
    }

    /// A fake whose port is reserved but closed: connections are refused until `come_up`.
    pub fn absent() -> Self {
        let port = crate::support::free_port();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            inner: Arc::new(Mutex::new(Inner {
                answer: Some(Answer::Ok),
                ..Inner::default()
            })),
            server: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts listening on the reserved port.
    pub async fn come_up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the fake Tracardi's port is free again");
        let app = axum::Router::new()
            .route("/track", axum::routing::post(track))
            .with_state(self.inner.clone());
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *self.server.lock().unwrap() = Some(handle);
    }

    pub fn answer(&self, answer: Answer) {
        self.inner.lock().unwrap().answer = Some(answer);
    }

    pub fn payloads(&self) -> Vec<Value> {
        self.inner.lock().unwrap().payloads.clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }

    /// Every event id received, in order, repeats included.
    pub fn event_ids(&self) -> Vec<String> {
        self.payloads()
            .iter()
            .flat_map(|p| p["events"].as_array().cloned().unwrap_or_default())
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Events received with an accepting answer, by id.
    pub fn events(&self) -> Vec<Value> {
        self.payloads()
            .iter()
            .flat_map(|p| p["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits until `condition` holds, failing the test after `limit`.
    pub async fn wait_until(&self, limit: Duration, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !condition(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for: {what} (received ids: {:?})",
                self.event_ids()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Counts how often each id arrived.
    pub fn id_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.event_ids() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }
}

/// Records accepted payloads only (as Tracardi stores only what it accepted).
async fn track(State(inner): State<Arc<Mutex<Inner>>>, Json(payload): Json<Value>) -> Response {
    let answer = {
        let mut inner = inner.lock().unwrap();
        inner.requests += 1;
        let answer = inner.answer.clone().unwrap_or(Answer::Ok);
        if matches!(answer, Answer::Ok | Answer::Accepted226) {
            inner.payloads.push(payload);
        }
        answer
    };
    match answer {
        Answer::Ok => Json(json!({"task": "t", "profile": {"id": null}, "session": {"id": null}, "errors": [], "warnings": [], "ux": [], "response": {}, "events": []})).into_response(),
        Answer::Accepted226 => (StatusCode::IM_USED, Json(json!({"errors": ["a workflow failed"]}))).into_response(),
        Answer::Unauthorized(detail) => (StatusCode::UNAUTHORIZED, Json(json!({"detail": detail}))).into_response(),
        Answer::Unprocessable => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{"type": "missing", "loc": ["body", "source"], "msg": "Field required"}]})),
        )
            .into_response(),
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": "boom"}))).into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}
