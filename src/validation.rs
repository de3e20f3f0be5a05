//! Credential validation: one signed call to X, diagnosed, and remembered for a while.
//!
//! Each call to X counts against a small quota and may cost money, so a verdict is kept for
//! `VALIDATE_CACHE_TTL` under a keyed hash of the four keys (never the keys themselves), and
//! concurrent checks of the same keys share one call (moka's single-flight `try_get_with`).

use crate::error::ApiError;
use crate::twitter::client::{TransportError, XClient};
use crate::twitter::credentials::{Credentials, ParsedCredentials};
pub use crate::twitter::diagnosis::Undecided;
use crate::twitter::diagnosis::diagnose_users_me;
use crate::twitter::report::ValidationReport;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use std::time::{Duration, SystemTime};

/// More entries than any operator produces; bounds memory against a flood of distinct keys
/// (past it, the least used verdicts are evicted, not all of them).
const MAX_CACHE_ENTRIES: u64 = 10_000;

type CacheKey = [u8; 32];

pub struct Validator {
    client: XClient,
    /// Random per process: the cache key cannot be recomputed from the keys by anyone else.
    cache_key_secret: SecretBox<[u8; 32]>,
    cache: moka::future::Cache<CacheKey, ValidationReport>,
}

/// Shows the settings, never the cache key's secret nor the cached entries.
impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("client", &self.client)
            .field("ttl", &self.cache.policy().time_to_live())
            .field("cached_verdicts", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// The problem code of an answer that gave no verdict, as the API error names it.
fn undecided_code(undecided: &Undecided) -> &'static str {
    match undecided {
        Undecided::RateLimited {
            usage_capped: true, ..
        } => "x_usage_capped",
        Undecided::RateLimited { .. } => "x_rate_limited",
        Undecided::Unexpected { .. } => "x_unexpected_answer",
        Undecided::Timeout(_) => "x_timeout",
        Undecided::Unreachable(_) => "x_unreachable",
    }
}

impl From<Undecided> for ApiError {
    fn from(undecided: Undecided) -> Self {
        let code = undecided_code(&undecided);
        match undecided {
            Undecided::RateLimited {
                retry_after,
                usage_capped: true,
            } => ApiError::too_many_requests(
                code,
                format!(
                    "X's usage cap for this app is reached; the check can be repeated in {retry_after} seconds \
                     or after raising the cap in X's Developer Console."
                ),
                retry_after,
            ),
            Undecided::RateLimited { retry_after, .. } => ApiError::too_many_requests(
                code,
                format!("X rate-limited the check; try again in {retry_after} seconds."),
                retry_after,
            ),
            Undecided::Unexpected { status, summary } => ApiError::bad_gateway(
                code,
                format!(
                    "X answered HTTP {status} with {summary}; the keys could not be judged. Try again later."
                ),
            ),
            Undecided::Timeout(after) => ApiError::gateway_timeout(
                code,
                format!(
                    "X did not answer within {} ms; try again later.",
                    after.as_millis()
                ),
            ),
            Undecided::Unreachable(cause) => ApiError::bad_gateway(
                code,
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
            cache_key_secret: SecretBox::new(Box::new(crate::random::bytes::<32>())),
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_CACHE_ENTRIES)
                .time_to_live(ttl)
                .build(),
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
        let decided = match credentials.client_id_as_api_key() {
            // Decided without asking X: such a key can never sign.
            Some(problem) => Ok(ValidationReport::invalid(problem)),
            None => self.ask_x(&credentials, refresh).await,
        };
        let mut report = match decided {
            Ok(report) => report,
            Err(undecided) => {
                crate::metrics::validation(undecided_code(&undecided), []);
                return Err(undecided);
            }
        };
        // Reading warnings depend on how the keys were pasted this time, so they are never cached.
        report.problems.splice(0..0, warnings);
        crate::metrics::validation(
            if report.valid { "valid" } else { "invalid" },
            report.problems.iter().map(|problem| problem.code),
        );
        Ok(report)
    }

    /// A remembered verdict, or one call to X shared by every concurrent check of these keys.
    /// Only verdicts are remembered: a timeout or an outage is asked again next time.
    async fn ask_x(
        &self,
        credentials: &Credentials,
        refresh: bool,
    ) -> Result<ValidationReport, Undecided> {
        let key = self.cache_key(credentials);
        if refresh {
            self.cache.invalidate(&key).await;
        }
        let mut fresh = false;
        let report = self
            .cache
            .try_get_with(key, async {
                fresh = true;
                self.call_x(credentials).await
            })
            .await;
        crate::metrics::validation_cache(!fresh);
        let report = report.map_err(|shared| Undecided::clone(&shared))?;
        Ok(ValidationReport {
            cached: !fresh,
            ..report
        })
    }

    async fn call_x(&self, credentials: &Credentials) -> Result<ValidationReport, Undecided> {
        let answer = self
            .client
            .users_me(credentials)
            .await
            .map_err(|e| match e {
                TransportError::Timeout(after) => Undecided::Timeout(after),
                TransportError::Unreachable(cause) => Undecided::Unreachable(cause),
            })?;
        diagnose_users_me(&answer, credentials.token_user_id(), SystemTime::now())
    }

    fn cache_key(&self, credentials: &Credentials) -> CacheKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.cache_key_secret.expose_secret())
            .expect("any key length");
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
}
