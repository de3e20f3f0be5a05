//! Starting the real service on 127.0.0.1:0, and capturing everything it logs.

use clap::Parser;
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tempfile::TempDir;
use tracardi_twitter::config::{Config, LogFormat, ServeArgs};
use tracardi_twitter::store::Outbox;

/// The service's API key and secret in tests (the key must have at least 32 characters).
pub const API_KEY: &str = "test-api-key-0123456789abcdef-0123456789";
pub const SECRET: &str = "test-secret-fedcba9876543210";

/// Where no X ever answers: tests that do not script a fake must not reach the internet.
const NO_X: &str = "http://127.0.0.1:9";

/// Parses the service's settings exactly as `main` does (flags, with the env fallback).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Everything logged by every test of this binary, in JSON lines.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: OnceLock<()> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once, the service's own JSON log set-up writing into the capture buffer, at
/// `debug` for every crate so that nothing a dependency says escapes the leak test. Every
/// helper that starts something calls it first, so that the environment is set before any
/// test thread reads it.
pub fn init() {
    INIT.get_or_init(|| {
        // SAFETY: this runs once, before any test starts a server, a client or a process (all
        // of them call `init` first and wait on the OnceLock while it runs), so no other thread
        // reads the environment at the same time.
        unsafe { std::env::set_var("RUST_LOG", "debug") };
        assert!(
            tracardi_twitter::telemetry::init(LogFormat::Json, || Capture),
            "another subscriber was installed first"
        );
        tracardi_twitter::install_crypto_provider();
    });
}

/// Everything logged so far, by every test.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A client for talking to local servers: no proxy (a proxy setting must not send tests away).
pub fn client() -> reqwest::Client {
    init();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a test client")
}

/// The running service.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    pub api_key: String,
    pub secret: String,
    /// The bearer token from `GET /api-key/{key}`.
    pub token: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), tracardi_twitter::RunError>>>,
    _data_dir: TempDir,
}

impl TestApp {
    /// Starts the service with these settings added to the test defaults (127.0.0.1:0, a fresh
    /// DATA_DIR, fixed API_KEY and SECRET, an X that refuses connections, JSON logs); a flag
    /// given in `extra_args` replaces its default.
    pub async fn spawn(extra_args: &[&str]) -> TestApp {
        Self::spawn_with_outbox(extra_args, |outbox| outbox).await
    }

    /// [`TestApp::spawn`] with the event store opened as usual, then wrapped by `wrap` (e.g. in
    /// a store that fails on demand).
    pub async fn spawn_with_outbox(
        extra_args: &[&str],
        wrap: impl FnOnce(Arc<dyn Outbox>) -> Arc<dyn Outbox>,
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        Self::start(listener, None, extra_args, wrap).await
    }

    /// [`TestApp::spawn`] on a listener the test bound itself, for settings that must name the
    /// service's own address before it starts (e.g. `PUBLIC_URL`): bind `127.0.0.1:0`, read
    /// `local_addr()`, then start. No port is ever released and picked up again.
    pub async fn spawn_on(listener: tokio::net::TcpListener, extra_args: &[&str]) -> TestApp {
        Self::start(listener, None, extra_args, |outbox| outbox).await
    }

    /// [`TestApp::spawn`] with `METRICS_ADDR` naming `metrics_listener`, which the test bound
    /// itself (on `127.0.0.1:0`) and whose address it knows.
    pub async fn spawn_with_metrics_listener(
        metrics_listener: tokio::net::TcpListener,
        extra_args: &[&str],
    ) -> TestApp {
        let metrics_addr = metrics_listener.local_addr().expect("a bound listener");
        let metrics_addr = metrics_addr.to_string();
        let mut args = vec!["--metrics-addr", metrics_addr.as_str()];
        args.extend_from_slice(extra_args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        Self::start(listener, Some(metrics_listener), &args, |outbox| outbox).await
    }

    async fn start(
        listener: tokio::net::TcpListener,
        metrics_listener: Option<tokio::net::TcpListener>,
        extra_args: &[&str],
        wrap: impl FnOnce(Arc<dyn Outbox>) -> Arc<dyn Outbox>,
    ) -> TestApp {
        init();
        let data_dir = tempfile::tempdir().expect("a temporary DATA_DIR");
        // The settings name the address the service really listens on.
        let listen_addr = listener.local_addr().expect("a bound listener").to_string();
        let mut args = vec!["--listen-addr", listen_addr.as_str()];
        args.extend_from_slice(extra_args);
        let config = config(&args, data_dir.path());
        // SQLite in the fresh DATA_DIR, or Redis when the test gave --redis-url.
        let mut stores = tracardi_twitter::open_stores(&config)
            .await
            .expect("the event store opens");
        stores.outbox = wrap(stores.outbox);
        let state = tracardi_twitter::app_state_with(&config, stores);
        let api_key = config.api_key.expose_secret().to_owned();
        let secret = config.secret.expose_secret().to_owned();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tracardi_twitter::run_with_listeners(
            config,
            state,
            listener,
            metrics_listener,
            async move {
                // A dropped sender (the TestApp went away) stops the server too.
                let _ = stop.await;
            },
        ));

        let client = client();
        let response = client
            .get(format!("{base_url}/api-key/{api_key}"))
            .send()
            .await
            .expect("GET /api-key answers");
        assert_eq!(response.status(), 200, "GET /api-key/{{key}}");
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["access_token"]
            .as_str()
            .expect("access_token in /api-key's answer")
            .to_owned();
        TestApp {
            base_url,
            api_key,
            secret,
            token,
            client,
            shutdown: Some(shutdown),
            server: Some(server),
            _data_dir: data_dir,
        }
    }

    /// `GET path` with the service's token, as an operator asks.
    pub async fn get_with_token(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} answers: {e}"))
    }

    /// `GET /outbox` (200), as JSON.
    pub async fn outbox(&self) -> serde_json::Value {
        let response = self.get_with_token("/outbox").await;
        assert_eq!(response.status(), 200, "GET /outbox");
        json(response).await
    }

    /// Polls `/outbox` until `condition` holds (20 s at most) and returns what it showed.
    pub async fn wait_for_outbox(
        &self,
        what: &str,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.outbox().await;
            if condition(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `POST /validate` with the bearer token and this JSON body.
    pub async fn validate(&self, body: &serde_json::Value) -> reqwest::Response {
        self.validate_at("/validate", body).await
    }

    /// `POST <path>` (e.g. `/validate?refresh=true`) with the bearer token and this JSON body.
    pub async fn validate_at(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST /validate answers")
    }

    /// Asks the server to stop and waits until it has finished its requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let server = self.server.take().expect("not shut down twice");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops within 10 s of being asked")
            .expect("the server task did not panic")
            .expect("the server stopped cleanly");
    }
}

/// The service's checked settings, as `main` would make them from these flags added to the test
/// defaults (see [`TestApp::spawn`]); DATA_DIR is `data_dir` unless a flag gives another.
pub fn config(extra_args: &[&str], data_dir: &Path) -> Config {
    init();
    let data_dir_arg = data_dir.to_str().expect("UTF-8 temp path").to_owned();
    let defaults = [
        ("--listen-addr", "127.0.0.1:0"),
        ("--data-dir", data_dir_arg.as_str()),
        ("--api-key", API_KEY),
        ("--secret", SECRET),
        ("--twitter-api-url", NO_X),
        ("--log-format", "json"),
        // Every test client is 127.0.0.1: tests of the limit turn it on themselves.
        ("--public-rate-limit", "0"),
    ];
    let mut argv = vec!["tracardi-twitter"];
    for (flag, value) in defaults {
        let given = extra_args
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        if !given {
            argv.extend([flag, value]);
        }
    }
    argv.extend_from_slice(extra_args);
    let args = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("test settings {argv:?} do not parse: {e}"))
        .serve;
    let (config, _source) = args
        .check()
        .unwrap_or_else(|e| panic!("test settings {argv:?} are refused: {e}"));
    config
}

/// Reads a JSON body, failing the test with the status and text when it is not JSON.
pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"))
}

/// The response's content type, or "".
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A port on 127.0.0.1 that was free a moment ago, for a peer that is absent (connections to it
/// are refused) and must come up later on the same port. Never for a server the test starts at
/// once: another test may take the port in between; bind port 0 and read the address instead
/// (`TestApp::spawn_on`, the binary's `--port-file`, chromedriver's `--port=0`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a port")
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `condition` holds, checking every 10 ms; panics naming `what` after `limit`.
pub async fn wait_until(limit: std::time::Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Polls `check` every 10 ms until it yields a value, and returns it; panics naming `what`
/// after `limit`. [`wait_until`] for a condition that must be awaited.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The port a `tracardi-twitter` started with `--port-file path` (and port 0 in `LISTEN_ADDR`)
/// writes once it can answer. Polls every 10 ms for up to 30 s; `exited` says why the process
/// ended, if it did, so a service that fails to start fails the test with its status at once.
pub async fn port_from_file(
    path: &std::path::Path,
    mut exited: impl FnMut() -> Option<String>,
) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The file is replaced whole (renamed into place): it is absent or complete.
        if let Ok(text) = std::fs::read_to_string(path) {
            return text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{} holds no port: {text:?}", path.display()));
        }
        if let Some(status) = exited() {
            panic!("the service exited before it wrote its port file: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no port in {} within 30 s",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Settings that deliver to `tracardi_url` (event source `source`) with timeouts and retries
/// shrunk for tests, then `extra` (a flag given there replaces its default here).
pub fn delivery_args<'a>(
    tracardi_url: &'a str,
    source: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "--tracardi-api-url",
        tracardi_url,
        "--tracardi-source-id",
        source,
    ];
    for (flag, default) in [
        ("--delivery-timeout", "2s"),
        ("--delivery-retry-base", "50ms"),
        ("--delivery-retry-cap", "500ms"),
        ("--delivery-probe-interval", "100ms"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    args
}
