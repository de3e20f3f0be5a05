//! Every setting, read and checked once at start.
//!
//! Each setting is an environment variable and a `--flag` (clap reads both). Values arrive as
//! strings and are checked here, so that a bad one stops start-up with one line that names the
//! setting and says what is wrong, and never echoes a secret.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by `serve` and the `validate` command: where X is and how long to wait for it.
#[derive(clap::Args, Debug, Clone)]
pub struct TwitterArgs {
    /// Base URL of X's API (tests point it at a fake).
    #[arg(long, env = "TWITTER_API_URL", default_value = "https://api.x.com")]
    pub twitter_api_url: String,
    /// How long a credential check may wait for X: seconds, or a number with `ms`/`s`/`m`.
    #[arg(long, env = "VALIDATE_TIMEOUT", default_value = "10s")]
    pub validate_timeout: String,
}

/// Settings of the HTTP service. No `Debug`: the raw settings hold the secrets (the checked
/// [`Config`] wraps them).
#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on (Tracardi's GUI pre-fills port 20000 for microservices).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:20000")]
    pub listen_addr: String,
    /// Once listening, write the port to this file (replaced atomically), e.g. for
    /// `LISTEN_ADDR=127.0.0.1:0`, where the system picks a free port.
    #[arg(long, env = "PORT_FILE")]
    pub port_file: Option<PathBuf>,
    /// Key that Tracardi exchanges for a token at /api-key/{key}; at least 32 characters.
    /// Generated and kept in DATA_DIR when not given.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Secret that signs the tokens. Generated and kept in DATA_DIR when not given.
    #[arg(long, env = "SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Folder for the service's own state (generated keys, the event store).
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// How long a credential check is answered from memory: seconds, or a number with `ms`/`s`/`m`.
    #[arg(long, env = "VALIDATE_CACHE_TTL", default_value = "300s")]
    pub validate_cache_ttl: String,
    /// How long a whole request may take, the body's upload included; slow clients get 408.
    /// Must be longer than VALIDATE_TIMEOUT.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: String,
    /// How long a client may take to send a request's headers; a connection that stays idle
    /// (no request begun) this long is closed too.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s")]
    pub header_read_timeout: String,
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    pub twitter: TwitterArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Origins allowed to call the service from a browser (Tracardi's GUI), comma separated,
    /// e.g. `http://localhost:8787`; `*` allows any.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*")]
    pub cors_allowed_origins: String,
    /// Send the browser here (303) after an approval instead of showing the built-in page.
    #[arg(long, env = "CALLBACK_SUCCESS_URL")]
    pub callback_success_url: Option<String>,
    /// Send the browser here (303) after a refusal instead of showing the built-in page.
    #[arg(long, env = "CALLBACK_DENIED_URL")]
    pub callback_denied_url: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

/// Where `GET /metrics` (Prometheus' text format) is served, and to whom.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve /metrics on this address and port instead of the main port, without a token (keep
    /// the port inside the cluster), e.g. 0.0.0.0:9100.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// `true`: /metrics on the main port needs no bearer token. `false` (default): it takes the
    /// same token as the other operator routes.
    #[arg(long, env = "METRICS_PUBLIC", default_value = "false")]
    pub metrics_public: String,
}

/// Who may read `/metrics`, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsConfig {
    /// On the main port, with the bearer token.
    MainPortWithToken,
    /// On the main port, open to anyone (`METRICS_PUBLIC=true`).
    MainPortPublic,
    /// On its own listener, open to anyone who reaches it; the main port has no /metrics.
    Separate(SocketAddr),
}

impl MetricsArgs {
    pub fn check(&self, listen_addr: SocketAddr) -> Result<MetricsConfig, ConfigError> {
        let public = match self.metrics_public.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            other => {
                return Err(ConfigError::new(
                    "METRICS_PUBLIC",
                    format!("'{other}' is not true or false"),
                ));
            }
        };
        let Some(addr) = self
            .metrics_addr
            .as_deref()
            .filter(|a| !a.trim().is_empty())
        else {
            return Ok(if public {
                MetricsConfig::MainPortPublic
            } else {
                MetricsConfig::MainPortWithToken
            });
        };
        let addr: SocketAddr = addr.trim().parse().map_err(|_| {
            ConfigError::new(
                "METRICS_ADDR",
                format!("'{addr}' is not an address and port like 0.0.0.0:9100"),
            )
        })?;
        if public {
            // Said rather than ignored: whoever set it may believe the main port serves it.
            return Err(ConfigError::new(
                "METRICS_PUBLIC",
                "has no effect with METRICS_ADDR: /metrics is then served on METRICS_ADDR only, \
                 without a token; unset one of them",
            ));
        }
        if addr.port() != 0 && addr.port() == listen_addr.port() {
            return Err(ConfigError::new(
                "METRICS_ADDR",
                "must use another port than LISTEN_ADDR",
            ));
        }
        Ok(MetricsConfig::Separate(addr))
    }
}

/// X's activity webhook (`/x/webhook`).
#[derive(clap::Args, Clone, Debug)]
pub struct WebhookArgs {
    /// Which secret answers X's challenge-response check: `consumer` (TWITTER_CONSUMER_SECRET,
    /// as X documents it) or `client` (TWITTER_CLIENT_SECRET, for apps whose webhook X checks
    /// with the OAuth 2.0 client secret).
    #[arg(long, env = "X_WEBHOOK_CRC_KEY", default_value = "consumer")]
    pub x_webhook_crc_key: String,
}

/// Which of the app's secrets answers X's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrcKey {
    #[default]
    Consumer,
    Client,
}

impl CrcKey {
    pub fn as_str(self) -> &'static str {
        match self {
            CrcKey::Consumer => "consumer",
            CrcKey::Client => "client",
        }
    }
}

/// The secrets X's webhook is answered and checked with. No secret in `Debug`.
#[derive(Clone, Default)]
pub struct WebhookConfig {
    pub consumer_secret: Option<SecretString>,
    pub client_secret: Option<SecretString>,
    pub crc_key: CrcKey,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("consumer_secret", &self.consumer_secret.is_some())
            .field("client_secret", &self.client_secret.is_some())
            .field("crc_key", &self.crc_key)
            .finish()
    }
}

impl WebhookArgs {
    pub fn check(&self, connect: &ConnectConfig) -> Result<WebhookConfig, ConfigError> {
        let crc_key = match self.x_webhook_crc_key.trim().to_ascii_lowercase().as_str() {
            "consumer" => CrcKey::Consumer,
            "client" => CrcKey::Client,
            other => {
                return Err(ConfigError::new(
                    "X_WEBHOOK_CRC_KEY",
                    format!("'{other}' is not one of: consumer, client"),
                ));
            }
        };
        let consumer_secret = connect
            .oauth1
            .as_ref()
            .map(|app| app.consumer_secret.clone());
        let client_secret = connect
            .oauth2
            .as_ref()
            .and_then(|client| client.client_secret.clone());
        if crc_key == CrcKey::Client && client_secret.is_none() {
            return Err(ConfigError::new(
                "X_WEBHOOK_CRC_KEY",
                "is `client`, which needs TWITTER_CLIENT_ID and TWITTER_CLIENT_SECRET",
            ));
        }
        Ok(WebhookConfig {
            consumer_secret,
            client_secret,
            crc_key,
        })
    }
}

/// The shared store for several replicas (Redis), instead of the SQLite file in DATA_DIR. No
/// `Debug`: the URL may hold a password.
#[derive(clap::Args, Clone)]
pub struct RedisArgs {
    /// Keep events and started authorizations in Redis, shared by every replica:
    /// `redis://[:password@]host:6379/0`, or `rediss://` for TLS. Without it, the SQLite file in
    /// DATA_DIR (one replica).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every key this service writes (a Redis Cluster hash tag keeps them in one slot).
    /// Services that share a Redis and must not share events need different prefixes.
    #[arg(long, env = "REDIS_PREFIX", default_value = "tracardi-twitter")]
    pub redis_prefix: String,
    /// `strict`: refuse to start unless Redis says it fsyncs every write (appendonly yes,
    /// appendfsync always) and evicts nothing (maxmemory-policy noeviction). `relaxed`: warn.
    #[arg(long, env = "REDIS_DURABILITY", default_value = "strict")]
    pub redis_durability: String,
    /// A write is acknowledged only after this many replicas have it (Redis WAIT).
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value = "0")]
    pub redis_wait_replicas: u32,
}

/// What Redis must promise about writes before the service relies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Strict,
    Relaxed,
}

/// The checked Redis settings.
#[derive(Clone)]
pub struct RedisConfig {
    pub url: SecretString,
    pub prefix: String,
    pub durability: Durability,
    pub wait_replicas: u32,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("prefix", &self.prefix)
            .field("durability", &self.durability)
            .field("wait_replicas", &self.wait_replicas)
            .finish_non_exhaustive()
    }
}

impl RedisArgs {
    pub fn check(&self) -> Result<Option<RedisConfig>, ConfigError> {
        let Some(url) = self.redis_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        // Said without the URL itself: it may hold a password.
        match url::Url::parse(url.trim()) {
            Ok(parsed) if matches!(parsed.scheme(), "redis" | "rediss") && parsed.has_host() => {}
            _ => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "must look like redis://host:6379/0 or rediss://host:6379/0 (TLS)",
                ));
            }
        }
        let prefix = self.redis_prefix.trim();
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(ConfigError::new(
                "REDIS_PREFIX",
                "must be 1 to 64 letters, digits, '-', '_', '.' or ':'",
            ));
        }
        let durability = match self.redis_durability.trim().to_ascii_lowercase().as_str() {
            "strict" => Durability::Strict,
            "relaxed" => Durability::Relaxed,
            _ => {
                return Err(ConfigError::new(
                    "REDIS_DURABILITY",
                    "must be strict or relaxed",
                ));
            }
        };
        Ok(Some(RedisConfig {
            url: url.trim().to_owned().into(),
            prefix: prefix.to_owned(),
            durability,
            wait_replicas: self.redis_wait_replicas,
        }))
    }
}

/// What one client, or one request, may ask of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Requests a minute that one client address may make, on average, to the routes open to
    /// anyone (`/callback`, `/authorize`, `/api-key/{key}`); 0 turns the limit off.
    #[arg(long, env = "PUBLIC_RATE_LIMIT", default_value = "120")]
    pub public_rate_limit: u32,
    /// How many of those requests one client may make at once before the average applies.
    #[arg(long, env = "PUBLIC_RATE_BURST", default_value = "30")]
    pub public_rate_burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client, comma separated addresses or
    /// networks (e.g. `10.0.0.0/8, ::1`). Empty: the socket's peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Largest body `/plugin/run` and `/plugin/validate` take: Tracardi sends the whole event,
    /// session and profile (100 KB and more for a rich profile). Bytes, or with KiB or MiB.
    #[arg(long, env = "PLUGIN_BODY_LIMIT", default_value = "16MiB")]
    pub plugin_body_limit: String,
}

/// The checked [`LimitArgs`].
#[derive(Debug, Clone)]
pub struct LimitConfig {
    pub public_rate_limit: u32,
    pub public_rate_burst: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub plugin_body_limit: usize,
}

impl LimitArgs {
    pub fn check(&self) -> Result<LimitConfig, ConfigError> {
        if self.public_rate_limit > 0 && self.public_rate_burst == 0 {
            return Err(ConfigError::new(
                "PUBLIC_RATE_BURST",
                "must be at least 1 while PUBLIC_RATE_LIMIT is on",
            ));
        }
        let trusted_proxies = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(
                            "TRUSTED_PROXIES",
                            format!("'{entry}' is not an address or network like 10.0.0.0/8"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        let plugin_body_limit = parse_size("PLUGIN_BODY_LIMIT", &self.plugin_body_limit)?;
        if plugin_body_limit < crate::http::MAX_BODY_BYTES {
            return Err(ConfigError::new(
                "PLUGIN_BODY_LIMIT",
                "must be at least 64KiB: Tracardi's smallest run is about 7 KB",
            ));
        }
        Ok(LimitConfig {
            public_rate_limit: self.public_rate_limit,
            public_rate_burst: self.public_rate_burst,
            trusted_proxies,
            plugin_body_limit,
        })
    }
}

/// Bytes: a number, or a number with `KiB` or `MiB` (at most 1 GiB).
pub fn parse_size(setting: &'static str, text: &str) -> Result<usize, ConfigError> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let bad = || {
        ConfigError::new(
            setting,
            format!("'{text}' is not a size like 16MiB, 512KiB or 65536"),
        )
    };
    let n: usize = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .filter(|bytes| *bytes <= 1 << 30)
        .ok_or_else(|| ConfigError::new(setting, "must be at most 1024MiB"))
}

/// Where and how stored events are delivered to Tracardi.
#[derive(clap::Args, Debug, Clone)]
pub struct DeliveryArgs {
    /// Tracardi API base URL, e.g. http://localhost:8686 (http://tracardi-api:80 inside Tracardi's
    /// compose network). Without it, callbacks are stored
    /// and wait until it is set.
    #[arg(long, env = "TRACARDI_API_URL")]
    pub tracardi_api_url: Option<String>,
    /// Id of the Tracardi event source (type `rest`) the events go to.
    #[arg(long, env = "TRACARDI_SOURCE_ID")]
    pub tracardi_source_id: Option<String>,
    /// How long one delivery may wait for Tracardi.
    #[arg(long, env = "DELIVERY_TIMEOUT", default_value = "10s")]
    pub delivery_timeout: String,
    /// First retry delay after a failed delivery; it doubles per attempt, with jitter.
    #[arg(long, env = "DELIVERY_RETRY_BASE", default_value = "1s")]
    pub delivery_retry_base: String,
    /// Longest retry delay.
    #[arg(long, env = "DELIVERY_RETRY_CAP", default_value = "5m")]
    pub delivery_retry_cap: String,
    /// While Tracardi is failing, how often the oldest waiting event is tried early to notice
    /// that Tracardi is back.
    #[arg(long, env = "DELIVERY_PROBE_INTERVAL", default_value = "2s")]
    pub delivery_probe_interval: String,
    /// Events per /track request.
    #[arg(long, env = "DELIVERY_BATCH", default_value = "50")]
    pub delivery_batch: String,
}

/// Delivery to Tracardi, when configured.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Without a trailing slash.
    pub api_url: String,
    pub source_id: String,
    pub timeout: Duration,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub probe_interval: Duration,
    pub batch: usize,
}

impl DeliveryArgs {
    pub fn check(&self) -> Result<Option<DeliveryConfig>, ConfigError> {
        let timeout = parse_duration("DELIVERY_TIMEOUT", &self.delivery_timeout)?;
        let retry_base = parse_duration("DELIVERY_RETRY_BASE", &self.delivery_retry_base)?;
        let retry_cap = parse_duration("DELIVERY_RETRY_CAP", &self.delivery_retry_cap)?;
        let probe_interval =
            parse_duration("DELIVERY_PROBE_INTERVAL", &self.delivery_probe_interval)?;
        if retry_cap < retry_base {
            return Err(ConfigError::new(
                "DELIVERY_RETRY_CAP",
                "must not be shorter than DELIVERY_RETRY_BASE",
            ));
        }
        let batch = match self.delivery_batch.trim().parse::<usize>() {
            Ok(n @ 1..=500) => n,
            _ => {
                return Err(ConfigError::new(
                    "DELIVERY_BATCH",
                    "must be a whole number from 1 to 500",
                ));
            }
        };
        let Some(url) = self
            .tracardi_api_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(None);
        };
        let api_url = parse_base_url("TRACARDI_API_URL", url)?;
        let source_id = match self.tracardi_source_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                return Err(ConfigError::new(
                    "TRACARDI_SOURCE_ID",
                    "is required with TRACARDI_API_URL: the id of a Tracardi event source of type rest",
                ));
            }
        };
        Ok(Some(DeliveryConfig {
            api_url,
            source_id,
            timeout,
            retry_base,
            retry_cap,
            probe_interval,
            batch,
        }))
    }
}

/// The "Connect Twitter" flows that this service runs itself (`GET /authorize`). No `Debug`:
/// it holds the apps' secrets as given.
#[derive(clap::Args, Clone)]
pub struct ConnectArgs {
    /// This service's externally visible base URL; the Callback URI registered at X is
    /// `{PUBLIC_URL}/callback`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// OAuth 1.0a: the app's API Key (Consumer Keys).
    #[arg(long, env = "TWITTER_CONSUMER_KEY", hide_env_values = true)]
    pub twitter_consumer_key: Option<String>,
    /// OAuth 1.0a: the app's API Key Secret (Consumer Keys).
    #[arg(long, env = "TWITTER_CONSUMER_SECRET", hide_env_values = true)]
    pub twitter_consumer_secret: Option<String>,
    /// OAuth 2.0: the app's Client ID.
    #[arg(long, env = "TWITTER_CLIENT_ID", hide_env_values = true)]
    pub twitter_client_id: Option<String>,
    /// OAuth 2.0: the Client Secret of a confidential client (Web App, Automated App or bot).
    #[arg(long, env = "TWITTER_CLIENT_SECRET", hide_env_values = true)]
    pub twitter_client_secret: Option<String>,
    /// OAuth 2.0 scopes, space separated.
    #[arg(long, env = "TWITTER_SCOPES", default_value = "tweet.read users.read")]
    pub twitter_scopes: String,
    /// X's OAuth 1.0a authorize page.
    #[arg(
        long,
        env = "TWITTER_AUTHORIZE_URL",
        default_value = "https://api.x.com/oauth/authorize"
    )]
    pub twitter_authorize_url: String,
    /// X's OAuth 2.0 authorize page.
    #[arg(
        long,
        env = "TWITTER_OAUTH2_AUTHORIZE_URL",
        default_value = "https://x.com/i/oauth2/authorize"
    )]
    pub twitter_oauth2_authorize_url: String,
    /// Origins that `return_to` may point at, comma separated, e.g. `https://shop.example`.
    #[arg(long, env = "RETURN_TO_ALLOWLIST", default_value = "")]
    pub return_to_allowlist: String,
    /// How long a started authorization waits for the visitor to come back.
    #[arg(long, env = "AUTHORIZE_TTL", default_value = "10m")]
    pub authorize_ttl: String,
    /// Most connect flows waiting for their visitor at once, from all clients together; past
    /// it `/authorize` answers 503 until some finish or expire (each one is a row on disk).
    #[arg(long, env = "MAX_PENDING_AUTHORIZATIONS", default_value = "10000")]
    pub max_pending_authorizations: u64,
    #[command(flatten)]
    pub activity: ActivityArgs,
}

/// X Activity API subscriptions made for each account that connects through OAuth 2.0
/// (x-activity.md §2). No `Debug`: it holds the app's Bearer token as given.
#[derive(clap::Args, Clone)]
pub struct ActivityArgs {
    /// The app's app-only Bearer token (Keys and tokens → Bearer Token): manages the webhook
    /// (`tracardi-twitter webhook ...`) and finds the webhook's id when X_WEBHOOK_ID is not set.
    #[arg(long, env = "TWITTER_BEARER_TOKEN", hide_env_values = true)]
    pub twitter_bearer_token: Option<String>,
    /// Event types to subscribe for each account that connects through OAuth 2.0, separated by
    /// commas or spaces, e.g. `post.mention.create,like.create,dm.received`. Empty: none.
    #[arg(long, env = "X_ACTIVITY_EVENTS", default_value = "")]
    pub x_activity_events: String,
    /// The id of the webhook registered for `{PUBLIC_URL}/x/webhook` (`tracardi-twitter webhook
    /// register` prints it). Unset: looked up at X with TWITTER_BEARER_TOKEN, once.
    #[arg(long, env = "X_WEBHOOK_ID")]
    pub x_webhook_id: Option<String>,
}

/// The checked [`ActivityArgs`], when `X_ACTIVITY_EVENTS` names event types.
#[derive(Clone)]
pub struct ActivityConfig {
    /// Checked names, each once.
    pub event_types: Vec<String>,
    /// `X_WEBHOOK_ID`; without it the id is looked up by URL with the Bearer token.
    pub webhook_id: Option<String>,
    pub bearer_token: Option<SecretString>,
    /// `{PUBLIC_URL}/x/webhook`.
    pub webhook_url: String,
}

impl std::fmt::Debug for ActivityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityConfig")
            .field("event_types", &self.event_types)
            .field("webhook_id", &self.webhook_id)
            .field("bearer_token", &self.bearer_token.is_some())
            .field("webhook_url", &self.webhook_url)
            .finish()
    }
}

impl ActivityArgs {
    /// Checks the event types, and that what subscribing needs is there: the OAuth 2.0 client,
    /// PUBLIC_URL, the webhook's id (or the Bearer token to find it) and the scopes the types
    /// need in `scopes` (TWITTER_SCOPES).
    pub fn check(
        &self,
        oauth2_configured: bool,
        public_url: Option<&str>,
        scopes: &str,
    ) -> Result<Option<ActivityConfig>, ConfigError> {
        use crate::twitter::activity;
        let event_types = activity::parse_event_types(&self.x_activity_events)
            .map_err(|e| ConfigError::new("X_ACTIVITY_EVENTS", e))?;
        let webhook_id = match non_empty(&self.x_webhook_id) {
            Some(id) if crate::twitter::webhooks::is_webhook_id(id) => Some(id.to_owned()),
            Some(_) => {
                return Err(ConfigError::new(
                    "X_WEBHOOK_ID",
                    "must be the webhook's id, 1 to 19 digits (`tracardi-twitter webhook list` shows it)",
                ));
            }
            None => None,
        };
        let bearer_token = non_empty(&self.twitter_bearer_token).map(SecretString::from);
        if event_types.is_empty() {
            return Ok(None);
        }
        if !oauth2_configured {
            return Err(ConfigError::new(
                "X_ACTIVITY_EVENTS",
                "needs the OAuth 2.0 connect flow (TWITTER_CLIENT_ID): subscriptions are made with the token of the visitor who connects",
            ));
        }
        let Some(public_url) = public_url else {
            return Err(ConfigError::new(
                "X_ACTIVITY_EVENTS",
                "needs PUBLIC_URL: X delivers the events to {PUBLIC_URL}/x/webhook",
            ));
        };
        if webhook_id.is_none() && bearer_token.is_none() {
            return Err(ConfigError::new(
                "X_ACTIVITY_EVENTS",
                "needs X_WEBHOOK_ID, or TWITTER_BEARER_TOKEN to look the webhook up at X",
            ));
        }
        let missing = activity::missing_scopes(&event_types, scopes);
        if !missing.is_empty() {
            return Err(ConfigError::new(
                "TWITTER_SCOPES",
                format!(
                    "lacks {} that X_ACTIVITY_EVENTS needs: add them to TWITTER_SCOPES",
                    activity::describe_missing(&missing)
                ),
            ));
        }
        Ok(Some(ActivityConfig {
            event_types,
            webhook_id,
            bearer_token,
            webhook_url: format!("{public_url}/x/webhook"),
        }))
    }
}

/// OAuth 1.0a app keys for the connect flow.
#[derive(Clone)]
pub struct OAuth1App {
    pub consumer_key: SecretString,
    pub consumer_secret: SecretString,
    pub authorize_url: String,
}

/// OAuth 2.0 client for the connect flow.
#[derive(Clone)]
pub struct OAuth2Client {
    pub client_id: SecretString,
    pub client_secret: Option<SecretString>,
    pub scopes: String,
    pub authorize_url: String,
}

impl std::fmt::Debug for OAuth1App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1App")
            .field("authorize_url", &self.authorize_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Client")
            .field("confidential", &self.client_secret.is_some())
            .field("scopes", &self.scopes)
            .field("authorize_url", &self.authorize_url)
            .finish_non_exhaustive()
    }
}

/// What the connect flows need; a flow whose settings are missing is `None`.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub oauth1: Option<OAuth1App>,
    pub oauth2: Option<OAuth2Client>,
    /// Origins (`scheme://host[:port]`) that `return_to` may point at.
    pub return_to_allowlist: Vec<String>,
    pub ttl: Duration,
    /// `MAX_PENDING_AUTHORIZATIONS`.
    pub max_pending: u64,
    /// Subscriptions made for each account that connects through OAuth 2.0, when
    /// `X_ACTIVITY_EVENTS` names event types.
    pub activity: Option<ActivityConfig>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ConnectArgs {
    pub fn check(&self) -> Result<ConnectConfig, ConfigError> {
        let public_url = match non_empty(&self.public_url) {
            Some(url) => Some(parse_base_url("PUBLIC_URL", url)?),
            None => None,
        };
        let authorize_url = parse_base_url("TWITTER_AUTHORIZE_URL", &self.twitter_authorize_url)?;
        let oauth2_authorize_url = parse_base_url(
            "TWITTER_OAUTH2_AUTHORIZE_URL",
            &self.twitter_oauth2_authorize_url,
        )?;
        let oauth1 = match (
            non_empty(&self.twitter_consumer_key),
            non_empty(&self.twitter_consumer_secret),
        ) {
            (Some(key), Some(secret)) => Some(OAuth1App {
                consumer_key: key.into(),
                consumer_secret: secret.into(),
                authorize_url,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TWITTER_CONSUMER_SECRET",
                    "is required with TWITTER_CONSUMER_KEY",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TWITTER_CONSUMER_KEY",
                    "is required with TWITTER_CONSUMER_SECRET",
                ));
            }
        };
        let scopes = self
            .twitter_scopes
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if scopes.is_empty() {
            return Err(ConfigError::new(
                "TWITTER_SCOPES",
                "must name at least one scope, e.g. tweet.read users.read",
            ));
        }
        let oauth2 = match (
            non_empty(&self.twitter_client_id),
            non_empty(&self.twitter_client_secret),
        ) {
            (Some(id), secret) => Some(OAuth2Client {
                client_id: id.into(),
                client_secret: secret.map(SecretString::from),
                scopes: scopes.clone(),
                authorize_url: oauth2_authorize_url,
            }),
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TWITTER_CLIENT_ID",
                    "is required with TWITTER_CLIENT_SECRET",
                ));
            }
            (None, None) => None,
        };
        let return_to_allowlist = if self.return_to_allowlist.trim().is_empty() {
            Vec::new()
        } else {
            parse_origins(&self.return_to_allowlist)
                .map_err(|e| ConfigError::new("RETURN_TO_ALLOWLIST", e.problem))?
                .ok_or_else(|| {
                    ConfigError::new(
                        "RETURN_TO_ALLOWLIST",
                        "`*` is not allowed: list the origins return_to may point at",
                    )
                })?
        };
        let activity = self
            .activity
            .check(oauth2.is_some(), public_url.as_deref(), &scopes)?;
        Ok(ConnectConfig {
            public_url,
            oauth1,
            oauth2,
            return_to_allowlist,
            ttl: parse_duration("AUTHORIZE_TTL", &self.authorize_ttl)?,
            max_pending: self.max_pending_authorizations,
            activity,
        })
    }
}

/// Where browsers go after a callback, when not to the built-in pages.
#[derive(Debug, Clone, Default)]
pub struct CallbackConfig {
    pub success_url: Option<String>,
    pub denied_url: Option<String>,
}

/// A setting that cannot be used, named as the operator sets it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where X is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct TwitterConfig {
    /// Without a trailing slash.
    pub api_url: String,
    pub timeout: Duration,
}

/// The service's checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// Where to write the port once listening (`PORT_FILE`).
    pub port_file: Option<PathBuf>,
    pub api_key: SecretString,
    pub secret: SecretString,
    pub data_dir: PathBuf,
    pub validate_cache_ttl: Duration,
    pub request_timeout: Duration,
    /// How long a connection may wait for a request's headers (`http::server`).
    pub header_read_timeout: Duration,
    pub log_format: LogFormat,
    pub twitter: TwitterConfig,
    pub delivery: Option<DeliveryConfig>,
    pub callback: CallbackConfig,
    /// None: any origin.
    pub cors_allowed_origins: Option<Vec<String>>,
    pub connect: ConnectConfig,
    pub limits: LimitConfig,
    /// The shared store, when set; otherwise the SQLite file in `data_dir`.
    pub redis: Option<RedisConfig>,
    pub metrics: MetricsConfig,
    pub webhook: WebhookConfig,
}

impl TwitterArgs {
    pub fn check(&self) -> Result<TwitterConfig, ConfigError> {
        Ok(TwitterConfig {
            api_url: parse_base_url("TWITTER_API_URL", &self.twitter_api_url)?,
            timeout: parse_duration("VALIDATE_TIMEOUT", &self.validate_timeout)?,
        })
    }
}

pub use crate::service_keys::KeySource;

impl ServeArgs {
    /// Checks every setting. Reads (or creates) the stored API key and secret when they are not set.
    pub fn check(&self) -> Result<(Config, KeySource), ConfigError> {
        let listen_addr = self.listen_addr.parse().map_err(|_| {
            ConfigError::new(
                "LISTEN_ADDR",
                format!(
                    "'{}' is not an address and port like 0.0.0.0:20000",
                    self.listen_addr
                ),
            )
        })?;
        let log_format = match self.log_format.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("'{other}' is not one of: text, json"),
                ));
            }
        };
        let validate_cache_ttl = parse_duration("VALIDATE_CACHE_TTL", &self.validate_cache_ttl)?;
        let twitter = self.twitter.check()?;
        let request_timeout = parse_duration("REQUEST_TIMEOUT", &self.request_timeout)?;
        if request_timeout <= twitter.timeout {
            return Err(ConfigError::new(
                "REQUEST_TIMEOUT",
                "must be longer than VALIDATE_TIMEOUT, or validations would be cut off",
            ));
        }
        let header_read_timeout = parse_duration("HEADER_READ_TIMEOUT", &self.header_read_timeout)?;
        if header_read_timeout.is_zero() {
            return Err(ConfigError::new(
                "HEADER_READ_TIMEOUT",
                "must be more than zero, or no request could be read",
            ));
        }
        let delivery = self.delivery.check()?;
        let callback = CallbackConfig {
            success_url: optional_url(
                "CALLBACK_SUCCESS_URL",
                self.callback_success_url.as_deref(),
            )?,
            denied_url: optional_url("CALLBACK_DENIED_URL", self.callback_denied_url.as_deref())?,
        };
        let cors_allowed_origins = parse_origins(&self.cors_allowed_origins)?;
        let connect = self.connect.check()?;
        let limits = self.limits.check()?;
        let redis = self.redis.check()?;
        let metrics = self.metrics.check(listen_addr)?;
        let webhook = self.webhook.check(&connect)?;
        let (api_key, secret, source) = self.keys()?;
        Ok((
            Config {
                listen_addr,
                port_file: self.port_file.clone().filter(|p| !p.as_os_str().is_empty()),
                api_key,
                secret,
                data_dir: self.data_dir.clone(),
                validate_cache_ttl,
                request_timeout,
                header_read_timeout,
                log_format,
                twitter,
                delivery,
                callback,
                cors_allowed_origins,
                connect,
                limits,
                redis,
                metrics,
                webhook,
            },
            source,
        ))
    }

    /// The API key and secret in force: given, stored in DATA_DIR, or generated there (see
    /// [`crate::service_keys`]).
    fn keys(&self) -> Result<(SecretString, SecretString, KeySource), ConfigError> {
        let given_key = self.api_key.as_deref().filter(|k| !k.is_empty());
        let given_secret = self.secret.as_deref().filter(|s| !s.is_empty());
        if let Some(key) = given_key {
            check_api_key(key)?;
        }
        let keys = crate::service_keys::resolve(given_key, given_secret, &self.data_dir)?;
        Ok((keys.api_key, keys.secret, keys.source))
    }
}

/// The Tracardi microservice server refuses shorter keys; so do we.
fn check_api_key(key: &str) -> Result<(), ConfigError> {
    let chars = key.chars().count();
    if chars < 32 {
        return Err(ConfigError::new(
            "API_KEY",
            format!("must be at least 32 characters long (it has {chars})"),
        ));
    }
    if key.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(ConfigError::new(
            "API_KEY",
            "must not contain white space or '/' (it is sent in the URL path /api-key/{key})",
        ));
    }
    Ok(())
}

/// `10`, `10s`, `500ms`, `5m`: a duration. Zero is refused: it would disable what it times.
pub fn parse_duration(setting: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    // A bare number is seconds, as the settings have always read it; anything else is
    // humantime's syntax (`500ms`, `10s`, `5m`, `1h 30m`).
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text),
    }
    .map_err(|_| {
        ConfigError::new(
            setting,
            format!("'{text}' is not a duration like 10s, 500ms or 5m"),
        )
    })?;
    if duration.is_zero() {
        return Err(ConfigError::new(setting, "must be greater than zero"));
    }
    Ok(duration)
}

/// `*`, or origins like `http://localhost:8787`, comma separated.
fn parse_origins(text: &str) -> Result<Option<Vec<String>>, ConfigError> {
    if text.trim() == "*" {
        return Ok(None);
    }
    let mut origins = Vec::new();
    for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let url = url::Url::parse(origin)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        match url {
            Some(url) if url.path() == "/" && url.query().is_none() => {
                origins.push(url.origin().ascii_serialization())
            }
            _ => {
                return Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!(
                        "'{origin}' is not an origin like http://localhost:8787 (scheme, host and port only)"
                    ),
                ));
            }
        }
    }
    if origins.is_empty() {
        return Err(ConfigError::new(
            "CORS_ALLOWED_ORIGINS",
            "give `*` or at least one origin",
        ));
    }
    Ok(Some(origins))
}

/// An optional absolute http(s) URL, kept as given (it may carry a query).
fn optional_url(setting: &'static str, text: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(text.to_owned())),
        _ => Err(ConfigError::new(
            setting,
            format!("'{text}' is not an absolute http(s) URL"),
        )),
    }
}

/// An absolute http(s) URL, returned without its trailing slash so paths can be appended.
pub fn parse_base_url(setting: &'static str, text: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(text.trim()).map_err(|_| {
        ConfigError::new(
            setting,
            format!("'{text}' is not an absolute URL like https://api.x.com"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            setting,
            format!("'{text}' must be an http or https URL"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            setting,
            "must not carry a query or a fragment",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;
    use std::path::Path;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(extra: &[&str], data_dir: &Path) -> ServeArgs {
        let mut argv = vec!["x", "--data-dir", data_dir.to_str().unwrap()];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("X", "10").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration("X", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("X", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("X", "1h 30m").unwrap(),
            Duration::from_secs(5400)
        );
        for bad in ["", "ten", "10 parsecs", "-1", "0", "0ms"] {
            let err = parse_duration("VALIDATE_TIMEOUT", bad).unwrap_err();
            assert!(err.to_string().starts_with("VALIDATE_TIMEOUT: "), "{err}");
        }
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        assert_eq!(
            parse_base_url("U", "http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            parse_base_url("U", "https://api.x.com").unwrap(),
            "https://api.x.com"
        );
        assert!(parse_base_url("U", "api.x.com").is_err());
        assert!(parse_base_url("U", "ftp://x.com").is_err());
    }

    #[test]
    fn bad_settings_name_themselves_without_echoing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let err = args(&["--api-key", "short-secret-value"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "API_KEY");
        assert!(!err.to_string().contains("short-secret-value"));
        let err = args(&["--listen-addr", "nowhere"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "LISTEN_ADDR");
        let err = args(&["--log-format", "xml"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "LOG_FORMAT");
    }

    #[test]
    fn delivery_needs_a_source_with_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = args(&[], dir.path()).check().unwrap();
        assert!(config.delivery.is_none());
        let err = args(&["--tracardi-api-url", "http://t:8686"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "TRACARDI_SOURCE_ID");
        let (config, _) = args(
            &[
                "--tracardi-api-url",
                "http://t:8686/",
                "--tracardi-source-id",
                "s",
            ],
            dir.path(),
        )
        .check()
        .unwrap();
        assert_eq!(config.delivery.unwrap().api_url, "http://t:8686");
        let err = args(&["--delivery-batch", "0"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "DELIVERY_BATCH");
        let err = args(&["--callback-success-url", "/relative"], dir.path())
            .check()
            .unwrap_err();
        assert_eq!(err.setting, "CALLBACK_SUCCESS_URL");
    }

    #[test]
    fn given_keys_are_used_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let key = "k".repeat(40);
        let (config, source) = args(&["--api-key", &key, "--secret", "s3"], dir.path())
            .check()
            .unwrap();
        assert_eq!(source.file, None);
        assert_eq!(config.api_key.expose_secret(), key);
        assert!(!dir.path().join(crate::service_keys::KEYS_FILE).exists());
    }

    #[test]
    fn activity_events_need_the_client_the_webhook_and_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let base = [
            "--public-url",
            "https://tt.example/",
            "--twitter-client-id",
            "client",
            "--twitter-scopes",
            "tweet.read users.read dm.read",
        ];
        let check = |extra: &[&str]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            args(&all, dir.path()).check().map(|(config, _)| config)
        };
        let config = check(&[]).unwrap();
        assert!(config.connect.activity.is_none(), "none by default");
        let bearer = "bearer-LEAKCHECK";
        let config = check(&[
            "--x-activity-events",
            "post.mention.create, dm.received",
            "--twitter-bearer-token",
            bearer,
        ])
        .unwrap();
        let activity = config.connect.activity.unwrap();
        assert_eq!(activity.event_types, ["post.mention.create", "dm.received"]);
        assert_eq!(activity.webhook_url, "https://tt.example/x/webhook");
        assert_eq!(activity.webhook_id, None);
        assert!(!format!("{activity:?}").contains("LEAKCHECK"));
        let config = check(&[
            "--x-activity-events",
            "dm.received",
            "--x-webhook-id",
            "1976325569252868099",
        ])
        .unwrap();
        assert_eq!(
            config.connect.activity.unwrap().webhook_id.as_deref(),
            Some("1976325569252868099")
        );
        for (extra, setting, says) in [
            (
                vec![
                    "--x-activity-events",
                    "like.create dm.sent",
                    "--x-webhook-id",
                    "1",
                ],
                "TWITTER_SCOPES",
                "like.read (for like.create)",
            ),
            (
                vec!["--x-activity-events", "mentions", "--x-webhook-id", "1"],
                "X_ACTIVITY_EVENTS",
                "unknown event type 'mentions'",
            ),
            (
                vec!["--x-activity-events", "dm.sent"],
                "X_ACTIVITY_EVENTS",
                "X_WEBHOOK_ID",
            ),
            (
                vec!["--x-activity-events", "dm.sent", "--x-webhook-id", "hook-1"],
                "X_WEBHOOK_ID",
                "digits",
            ),
        ] {
            let error = check(&extra).unwrap_err();
            assert_eq!(error.setting, setting, "{extra:?}: {error}");
            assert!(error.to_string().contains(says), "{extra:?}: {error}");
        }
        let error = args(
            &["--x-activity-events", "dm.sent", "--x-webhook-id", "1"],
            dir.path(),
        )
        .check()
        .unwrap_err();
        assert!(error.to_string().contains("TWITTER_CLIENT_ID"), "{error}");
    }

    fn redis(
        url: &str,
        prefix: &str,
        durability: &str,
    ) -> Result<Option<RedisConfig>, ConfigError> {
        RedisArgs {
            redis_url: Some(url.to_owned()),
            redis_prefix: prefix.to_owned(),
            redis_durability: durability.to_owned(),
            redis_wait_replicas: 0,
        }
        .check()
    }

    #[test]
    fn redis_settings_are_checked_without_echoing_the_url() {
        let config = redis(
            "rediss://:pw-LEAKCHECK@redis.example:6380/1",
            "tt",
            "Relaxed",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (config.prefix.as_str(), config.durability),
            ("tt", Durability::Relaxed)
        );
        assert!(!format!("{config:?}").contains("LEAKCHECK"));
        assert!(
            redis("", "tt", "strict").unwrap().is_none(),
            "unset: SQLite"
        );
        let error = redis("http://:pw-LEAKCHECK@host", "tt", "strict")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("REDIS_URL: ") && !error.contains("LEAKCHECK"),
            "{error}"
        );
        for prefix in ["", "a{b}", "with space"] {
            let error = redis("redis://h", prefix, "strict")
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("REDIS_PREFIX: "), "{error}");
        }
        let error = redis("redis://h", "tt", "lax").unwrap_err().to_string();
        assert!(error.starts_with("REDIS_DURABILITY: "), "{error}");
    }

    #[test]
    fn metrics_are_on_the_main_port_with_the_token_unless_said_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = |extra: &[&str]| args(extra, dir.path()).check().map(|(c, _)| c.metrics);
        assert_eq!(metrics(&[]).unwrap(), MetricsConfig::MainPortWithToken);
        assert_eq!(
            metrics(&["--metrics-public", "true"]).unwrap(),
            MetricsConfig::MainPortPublic
        );
        assert_eq!(
            metrics(&["--metrics-addr", "127.0.0.1:9100"]).unwrap(),
            MetricsConfig::Separate("127.0.0.1:9100".parse().unwrap())
        );
        let setting = |extra: &[&str]| metrics(extra).unwrap_err().setting;
        assert_eq!(setting(&["--metrics-public", "maybe"]), "METRICS_PUBLIC");
        assert_eq!(setting(&["--metrics-addr", "nowhere"]), "METRICS_ADDR");
        assert_eq!(
            setting(&[
                "--metrics-addr",
                "127.0.0.1:9100",
                "--metrics-public",
                "true"
            ]),
            "METRICS_PUBLIC"
        );
        assert_eq!(
            setting(&[
                "--listen-addr",
                "0.0.0.0:20000",
                "--metrics-addr",
                "127.0.0.1:20000"
            ]),
            "METRICS_ADDR"
        );
    }
}
