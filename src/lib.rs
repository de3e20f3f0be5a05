//! tracardi-twitter: Twitter (X) as a first-class resource for Tracardi.
//!
//! Doors in (see `http`): Tracardi's GUI and API, operators, browsers coming back from X.
//! Doors out: X's API (requests signed by `oauth1`) and Tracardi's `/track`.

pub mod auth;
pub mod callback;
pub mod cli;
pub mod config;
pub mod connect;
pub mod delivery;
pub mod error;
pub mod files;
pub mod http;
pub mod metrics;
pub mod microservice;
pub mod oauth1;
pub mod random;
pub mod service_keys;
pub mod store;
pub mod telemetry;
pub mod tracardi;
pub mod twitter;
pub mod validation;
pub mod x_activity;
pub mod x_admin;

use crate::config::{Config, KeySource};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use http::{openapi, router};

/// Builds the shared state from a checked configuration, opening the event store.
/// The process's TLS provider must be installed first ([`install_crypto_provider`]).
pub async fn app_state(config: &Config) -> Result<http::AppState, RunError> {
    Ok(app_state_with(config, open_stores(config).await?))
}

/// Opens the configured store: Redis when REDIS_URL is set (several replicas), else the SQLite
/// file in DATA_DIR.
pub async fn open_stores(config: &Config) -> Result<store::Stores, RunError> {
    Ok(match &config.redis {
        Some(redis) => {
            let store = store::redis::RedisStore::open(redis)
                .await
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            tracing::info!(prefix = %redis.prefix, "events and authorizations are kept in Redis");
            store::Stores::of(store)
        }
        None => store::Stores::of(
            store::sqlite::SqliteOutbox::open(&config.data_dir)
                .map_err(|e| format!("DATA_DIR: {e}"))?,
        ),
    })
}

/// Builds the shared state around stores that are already open (any backend).
pub fn app_state_with(config: &Config, stores: store::Stores) -> http::AppState {
    let store::Stores {
        outbox,
        pending,
        links,
    } = stores;
    // Before anything that counts: handles taken before the recorder exists stay no-ops.
    let metrics = Arc::new(crate::metrics::Scraper::new(outbox.clone()));
    let client = twitter::client::XClient::new(&config.twitter);
    let cleanup = config
        .connect
        .activity
        .as_ref()
        .and_then(|activity| activity.bearer_token.clone())
        .map(|bearer| x_activity::SubscriptionCleanup {
            x: client.clone(),
            bearer,
        });
    let x_webhook =
        x_activity::XWebhook::new(config.webhook.clone(), outbox.clone(), links, cleanup);
    let connect = connect::Connect::new(
        client.clone(),
        pending,
        config.connect.clone(),
        &config.secret,
    );
    http::AppState::new(http::Shared {
        connect: Arc::new(connect),
        auth: auth::Authenticator::new(config.api_key.clone(), config.secret.clone()),
        validator: Arc::new(validation::Validator::new(
            client.clone(),
            config.validate_cache_ttl,
        )),
        x: client,
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        outbox,
        delivery: delivery::DeliveryMonitor::new(config.delivery.is_some()),
        callback: config.callback.clone(),
        request_timeout: config.request_timeout,
        rate_limits: http::rate_limit::RateLimits::new(
            config.limits.public_rate_limit,
            config.limits.public_rate_burst,
            config.limits.trusted_proxies.clone(),
        ),
        plugin_body_limit: config.limits.plugin_body_limit,
        metrics,
        metrics_config: config.metrics,
        x_webhook: Arc::new(x_webhook),
    })
}

/// How long in-flight deliveries may take to finish after the server stopped.
const DELIVERY_DRAIN: Duration = Duration::from_secs(5);

/// How often the rate limiter forgets clients it has not heard from lately.
const FORGET_IDLE_CLIENTS: Duration = Duration::from_secs(60);

/// Why the service could not start or keep running.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the whole service on an already bound listener until `shutdown` completes, then
/// finishes in-flight requests. `main` and the integration tests (port 0) both use it.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let state = app_state(&config).await?;
    run_with(config, state, listener, shutdown).await
}

/// [`run`] with shared state built by the caller (e.g. around another event store). With
/// `METRICS_ADDR`, binds the metrics listener first.
pub async fn run_with(
    config: Config,
    state: http::AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics_listener = match config.metrics {
        crate::config::MetricsConfig::Separate(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("METRICS_ADDR: cannot listen on {addr}: {e}"))?,
        ),
        _ => None,
    };
    run_with_listeners(config, state, listener, metrics_listener, shutdown).await
}

/// How often the metrics' histogram samples are folded into their buckets between scrapes.
/// Every second, not every five: the samples wait in a queue until then, and at 35 000 requests
/// a second a five-second queue cost 5 to 9% of `GET /resource`'s throughput, a one-second one
/// nothing measurable (BENCHMARKS.md, "Metrics on every request").
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// [`run_with`] on a metrics listener bound by the caller (tests bind `127.0.0.1:0` and read the
/// port), used when `METRICS_ADDR` is set.
pub async fn run_with_listeners(
    config: Config,
    state: http::AppState,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // Written once the service can answer: a reader of the file may connect at once.
    if let Some(path) = &config.port_file {
        let port = listener.local_addr()?.port();
        files::replace(path, format!("{port}\n").as_bytes(), false)
            .map_err(|e| format!("PORT_FILE: cannot write {}: {e}", path.display()))?;
    }
    // Both servers stop when `shutdown` completes: the main one polls it and, when it is done,
    // drops `stopping`, which ends the metrics server's wait.
    let (stopping, mut stopped) = tokio::sync::watch::channel(());
    let shutdown = async move {
        shutdown.await;
        drop(stopping);
    };
    let metrics_server = match metrics_listener {
        Some(metrics_listener) => {
            if let Ok(addr) = metrics_listener.local_addr() {
                tracing::info!(metrics_addr = %addr, "GET /metrics is served on METRICS_ADDR, without a token");
            }
            Some(tokio::spawn(http::server::serve(
                metrics_listener,
                http::metrics::separate_router(state.metrics.clone()),
                config.header_read_timeout,
                async move {
                    let _ = stopped.changed().await;
                },
            )))
        }
        None => None,
    };
    let upkeep = tokio::spawn({
        let scraper = state.metrics.clone();
        async move {
            let mut every = tokio::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                scraper.run_upkeep();
            }
        }
    });
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    // Supervised: a worker that panics or ends is started again.
    let worker = config.delivery.clone().map(|delivery| {
        tokio::spawn(delivery::supervise(
            state.outbox.clone(),
            delivery,
            state.delivery.clone(),
            worker_stopped,
        ))
    });
    if worker.is_none() {
        tracing::warn!("TRACARDI_API_URL is not set: callbacks are stored and wait until it is");
    }
    let forgetting = tokio::spawn({
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(FORGET_IDLE_CLIENTS);
            loop {
                every.tick().await;
                state.rate_limits.forget_idle_clients();
            }
        }
    });
    http::server::serve(
        listener,
        router(state),
        config.header_read_timeout,
        shutdown,
    )
    .await;
    forgetting.abort();
    upkeep.abort();
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    if let Some(path) = &config.port_file {
        // The port is no longer ours: a file naming it would mislead.
        let _ = std::fs::remove_file(path);
    }
    // No more requests: let deliveries in flight finish; what is left stays stored.
    let _ = stop_worker.send(true);
    if let Some(mut worker) = worker
        && tokio::time::timeout(DELIVERY_DRAIN, &mut worker)
            .await
            .is_err()
    {
        worker.abort();
        tracing::warn!("deliveries still in flight at shutdown were left for the next start");
    }
    Ok(())
}

/// Logs, once, where the API key and secret in force come from (never their values), and, when a
/// given value replaced a different stored one, which one wins.
pub fn log_key_source(source: &KeySource) {
    tracing::info!("{}", source.describe());
    if let Some(conflict) = source.conflict() {
        tracing::warn!("{conflict}");
    }
}

/// A `SECRET` shorter than this is warned about: it signs Tracardi's tokens and keys the MAC
/// of the connect flows' `state`, so it should be as hard to guess as a 128-bit key.
pub const RECOMMENDED_SECRET_LENGTH: usize = 32;

/// Warns, once at start, when `SECRET` is short (never showing it).
pub fn warn_if_secret_is_short(config: &Config) {
    use secrecy::ExposeSecret;
    let length = config.secret.expose_secret().chars().count();
    if length < RECOMMENDED_SECRET_LENGTH {
        tracing::warn!(
            length,
            "SECRET is shorter than {RECOMMENDED_SECRET_LENGTH} characters: it signs Tracardi's tokens \
             and the connect flows' state, so a short one can be guessed; set a random one of at \
             least {RECOMMENDED_SECRET_LENGTH} characters (changing it invalidates the tokens Tracardi holds)"
        );
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: the server may answer `/health` before it polls its shutdown
/// future, and a SIGTERM sent in between must stop it cleanly (logs flushed), not kill it.
/// Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).expect("installing a SIGINT handler"),
            signal(SignalKind::terminate()).expect("installing a SIGTERM handler"),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: no new requests, finishing those in flight");
    }
}

/// TLS for calls to X and Tracardi uses rustls with ring (no OpenSSL): installed once at
/// start-up, before any HTTP client is built. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
