//! A fake Tracardi API: a real HTTP server on 127.0.0.1 that takes `POST /track` as Tracardi
//! does and answers as told (200, 226, 401, 422, 500, hang), or is absent (its port refuses
//! connections).
//!
//! Like Tracardi (tracardi-protocol.md §4.1) it takes `profile_less` from the query string only,
//! whatever the body says. A profile-less request puts its events on no profile; a request
//! naming a profile puts them on it; any other request gets a new anonymous profile, shared by
//! every event in it. Each processed event is recorded with the profile it got.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok,
    /// 226: stored, with errors in the body.
    Accepted226,
    /// 401 with this `detail` (as for an unknown or disabled source).
    Unauthorized(String),
    Unprocessable,
    ServerError,
    /// Never answers, and processes nothing.
    Hang,
    /// Processes the events (stores them, runs their workflows), then does not answer until
    /// `release`: Tracardi stuck behind its response. Released, it answers 200.
    ProcessThenHang,
}

/// One event Tracardi processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub event_id: String,
    /// The profile Tracardi put the event on; None for a profile-less event.
    pub profile: Option<String>,
}

/// One request as it arrived, whatever the answer.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_ids: Vec<String>,
    /// The query string's `profile_less` (Tracardi's default is false).
    pub profile_less: bool,
}

#[derive(Default)]
struct Inner {
    answer: Option<Answer>,
    payloads: Vec<Value>,
    received: Vec<Received>,
    processed: Vec<Processed>,
    anonymous_profiles: usize,
    in_flight: usize,
    most_in_flight: usize,
}

#[derive(Clone)]
pub struct FakeTracardi {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    /// True once hung requests may answer.
    released: watch::Sender<bool>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Bound but not listening until `come_up`: the port is held (no other test can take it)
    /// while connections to it are refused.
    socket: Arc<Mutex<Option<tokio::net::TcpSocket>>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    released: watch::Receiver<bool>,
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
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("binding 127.0.0.1:0");
        let port = socket.local_addr().expect("its address").port();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            inner: Arc::new(Mutex::new(Inner {
                answer: Some(Answer::Ok),
                ..Inner::default()
            })),
            released: watch::channel(false).0,
            server: Arc::new(Mutex::new(None)),
            socket: Arc::new(Mutex::new(Some(socket))),
        }
    }

    /// Starts listening on the reserved port.
    pub async fn come_up(&self) {
        let socket = self
            .socket
            .lock()
            .unwrap()
            .take()
            .expect("the fake Tracardi comes up once");
        let listener = socket.listen(1024).expect("listening on the reserved port");
        let app = axum::Router::new()
            .route("/track", axum::routing::post(track))
            .with_state(Shared {
                inner: self.inner.clone(),
                released: self.released.subscribe(),
            });
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *self.server.lock().unwrap() = Some(handle);
    }

    pub fn answer(&self, answer: Answer) {
        if answer == Answer::ProcessThenHang {
            self.released.send_replace(false);
        }
        self.inner.lock().unwrap().answer = Some(answer);
    }

    /// Tracardi gets unstuck: hung requests answer 200, and so do the next ones.
    pub fn release(&self) {
        self.inner.lock().unwrap().answer = Some(Answer::Ok);
        self.released.send_replace(true);
    }

    /// Bodies of the requests whose events were processed.
    pub fn payloads(&self) -> Vec<Value> {
        self.inner.lock().unwrap().payloads.clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }

    /// Every request as it arrived, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Every event processed, in order, repeats included, with the profile it got.
    pub fn processed(&self) -> Vec<Processed> {
        self.inner.lock().unwrap().processed.clone()
    }

    /// The most requests that were waiting for an answer at once.
    pub fn most_in_flight(&self) -> usize {
        self.inner.lock().unwrap().most_in_flight
    }

    /// Every event id processed, in order, repeats included.
    pub fn event_ids(&self) -> Vec<String> {
        self.processed().into_iter().map(|p| p.event_id).collect()
    }

    /// Events processed, as sent.
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

    /// Counts how often each id was processed.
    pub fn id_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.event_ids() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    /// Processings beyond the first of each event: workflows that ran again for nothing.
    pub fn duplicates(&self) -> usize {
        self.id_counts().values().map(|n| n - 1).sum()
    }
}

/// FastAPI's reading of a `bool` query parameter.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == name)
        .last()
        .is_some_and(|(_, value)| {
            matches!(
                value.to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes" | "t" | "y"
            )
        })
}

/// Counts a request as waiting for its answer until it is answered or abandoned.
struct InFlight(Arc<Mutex<Inner>>);

impl InFlight {
    fn enter(inner: &Arc<Mutex<Inner>>) -> Self {
        let mut state = inner.lock().unwrap();
        state.in_flight += 1;
        state.most_in_flight = state.most_in_flight.max(state.in_flight);
        Self(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

/// Processes (records) only what Tracardi would store: accepted payloads.
async fn track(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    Json(payload): Json<Value>,
) -> Response {
    let _in_flight = InFlight::enter(&shared.inner);
    // Tracardi overwrites the body's flag with the query's.
    let profile_less = query_flag(query.as_deref(), "profile_less");
    let event_ids: Vec<String> = payload["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let (answer, profile) = {
        let mut inner = shared.inner.lock().unwrap();
        inner.received.push(Received {
            event_ids: event_ids.clone(),
            profile_less,
        });
        let answer = inner.answer.clone().unwrap_or(Answer::Ok);
        let mut profile = None;
        if matches!(
            answer,
            Answer::Ok | Answer::Accepted226 | Answer::ProcessThenHang
        ) {
            profile = match payload["profile"]["id"].as_str() {
                _ if profile_less => None,
                Some(id) => Some(id.to_owned()),
                None => {
                    inner.anonymous_profiles += 1;
                    Some(format!("anonymous-{}", inner.anonymous_profiles))
                }
            };
            for event_id in event_ids {
                inner.processed.push(Processed {
                    event_id,
                    profile: profile.clone(),
                });
            }
            inner.payloads.push(payload);
        }
        (answer, profile)
    };
    let tracked = || {
        Json(json!({"task": "t", "profile": {"id": profile}, "session": {"id": null}, "errors": [], "warnings": [], "ux": [], "response": {}, "events": []}))
            .into_response()
    };
    match answer {
        Answer::Ok => tracked(),
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
        Answer::ProcessThenHang => {
            let mut released = shared.released.clone();
            let _ = released.wait_for(|released| *released).await;
            tracked()
        }
    }
}

/// A Tracardi that answers every request with a 500 whose body never ends: `start` of it is
/// `marker`, then `x`s for as long as the reader reads. Returns its URL.
pub async fn endless_answer(marker: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request's head and body are small: one read takes enough of them.
                let mut request = [0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let first = format!("{:x}\r\n{marker}\r\n", marker.len());
                if socket.write_all(first.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    url
}
