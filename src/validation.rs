//! Credential validation: one signed call to X, diagnosed, and remembered for a while.
//!
//! Each call to X counts against a small quota and may cost money, so a verdict is kept for
//! `VALIDATE_CACHE_TTL` under a keyed hash of the four keys (never the keys themselves).

use crate::error::ApiError;
use crate::twitter::client::{TransportError, XClient};
use crate::twitter::credentials::{Credentials, ParsedCredentials};
pub use crate::twitter::diagnosis::Undecided;
use crate::twitter::diagnosis::diagnose_users_me;
use crate::twitter::report::ValidationReport;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// More entries than any operator produces; bounds memory against a flood of distinct keys.
const MAX_CACHE_ENTRIES: usize = 10_000;

type CacheKey = [u8; 32];

#[derive(Debug)]
pub struct Validator {
    client: XClient,
    ttl: Duration,
    /// Random per process: the cache key cannot be recomputed from the keys by anyone else.
    cache_key_secret: [u8; 32],
    cache: Mutex<HashMap<CacheKey, (Instant, ValidationReport)>>,
}

impl From<Undecided> for ApiError {
    fn from(undecided: Undecided) -> Self {
        match undecided {
            Undecided::RateLimited {
                retry_after,
                usage_capped: true,
            } => ApiError::too_many_requests(
                "x_usage_capped",
                format!(
                    "X's usage cap for this app is reached; the check can be repeated in {retry_after} seconds \
                     or after raising the cap in the developer portal."
                ),
                retry_after,
            ),
            Undecided::RateLimited { retry_after, .. } => ApiError::too_many_requests(
                "x_rate_limited",
                format!("X rate-limited the check; try again in {retry_after} seconds."),
                retry_after,
            ),
            Undecided::Unexpected { status, summary } => ApiError::bad_gateway(
                "x_unexpected_answer",
                format!(
                    "X answered HTTP {status} with {summary}; the keys could not be judged. Try again later."
                ),
            ),
            Undecided::Timeout(after) => ApiError::gateway_timeout(
                "x_timeout",
                format!(
                    "X did not answer within {} ms; try again later.",
                    after.as_millis()
                ),
            ),
            Undecided::Unreachable(cause) => ApiError::bad_gateway(
                "x_unreachable",
                format!(
                    "X could not be reached ({cause}); check this server's network and TWITTER_API_URL."
                ),
            ),
        }
    }
}

impl Validator {
    pub fn new(client: XClient, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache_key_secret: crate::random::bytes::<32>(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the keys. With `refresh`, ignores what is remembered and asks X again.
    pub async fn validate(
        &self,
        parsed: ParsedCredentials,
        refresh: bool,
    ) -> Result<ValidationReport, Undecided> {
        let ParsedCredentials {
            credentials,
            warnings,
        } = parsed;
        let mut report = match credentials.client_id_as_api_key() {
            // Decided without asking X: such a key can never sign.
            Some(problem) => ValidationReport::invalid(problem),
            None => self.ask_x(&credentials, refresh).await?,
        };
        // Reading warnings depend on how the keys were pasted this time, so they are never cached.
        report.problems.splice(0..0, warnings);
        Ok(report)
    }

    async fn ask_x(
        &self,
        credentials: &Credentials,
        refresh: bool,
    ) -> Result<ValidationReport, Undecided> {
        let key = self.cache_key(credentials);
        if !refresh && let Some(report) = self.cached(&key) {
            return Ok(report);
        }
        let answer = self
            .client
            .users_me(credentials)
            .await
            .map_err(|e| match e {
                TransportError::Timeout(after) => Undecided::Timeout(after),
                TransportError::Unreachable(cause) => Undecided::Unreachable(cause),
            })?;
        let report = diagnose_users_me(&answer, credentials.token_user_id(), SystemTime::now())?;
        self.remember(key, report.clone());
        Ok(report)
    }

    fn cache_key(&self, credentials: &Credentials) -> CacheKey {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.cache_key_secret).expect("any key length");
        for value in [
            &credentials.api_key,
            &credentials.api_secret,
            &credentials.access_token,
            &credentials.access_token_secret,
        ] {
            // Length-prefixed, so that moving characters between fields changes the key.
            mac.update(&(value.expose_secret().len() as u64).to_be_bytes());
            mac.update(value.expose_secret().as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    fn cached(&self, key: &CacheKey) -> Option<ValidationReport> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (expires, report) = cache.get(key)?;
        (Instant::now() < *expires).then(|| ValidationReport {
            cached: true,
            ..report.clone()
        })
    }

    fn remember(&self, key: CacheKey, report: ValidationReport) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.retain(|_, (expires, _)| *expires > now);
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (now + self.ttl, report));
    }
}
