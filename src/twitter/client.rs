//! HTTP client for X: sends requests signed with OAuth 1.0a and returns the answers as received.

use super::credentials::Credentials;
use super::diagnosis::XAnswer;
use crate::config::TwitterConfig;
use crate::metrics::XOutcome;
use crate::oauth1;
use std::time::Duration;

/// Why no answer came back from X.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("X did not answer within {0:?}")]
    Timeout(Duration),
    #[error("X could not be reached: {0}")]
    Unreachable(String),
}

/// X's endpoints this client calls: their paths, also the `endpoint` label of the metrics.
const USERS_ME: &str = "/2/users/me";
const TWEETS: &str = "/2/tweets";
const REQUEST_TOKEN: &str = "/oauth/request_token";
const ACCESS_TOKEN: &str = "/oauth/access_token";
const OAUTH2_TOKEN: &str = "/2/oauth2/token";

/// The most of an answer from X that is read: X's answers are a few KB.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct XClient {
    pub(super) http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl XClient {
    /// Needs the process's TLS provider installed first ([`crate::install_crypto_provider`],
    /// at start-up).
    pub fn new(config: &TwitterConfig) -> Self {
        let http = reqwest::Client::builder()
            // The signature covers the host: following a redirect would resend it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .user_agent(concat!("tracardi-twitter/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are static and valid");
        Self {
            http,
            base_url: config.api_url.clone(),
            timeout: config.timeout,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET /2/users/me`, signed with the four keys.
    pub async fn users_me(&self, credentials: &Credentials) -> Result<XAnswer, TransportError> {
        let url = self.url(USERS_ME);
        let authorization = signed_header("GET", &url, credentials);
        self.send(
            USERS_ME,
            self.http.get(&url).header("authorization", authorization),
        )
        .await
    }

    /// `POST /2/tweets` with `{"text": …}`, signed (the JSON body is not part of the signature).
    /// Sent once: a timed-out post is reported, never retried, since it may have been posted.
    pub async fn post_tweet(
        &self,
        credentials: &Credentials,
        text: &str,
    ) -> Result<XAnswer, TransportError> {
        let url = self.url(TWEETS);
        let authorization = signed_header("POST", &url, credentials);
        let request = self
            .http
            .post(&url)
            .header("authorization", authorization)
            .json(&serde_json::json!({ "text": text }));
        self.send(TWEETS, request).await
    }

    /// OAuth 1.0a step 1: `POST /oauth/request_token` with `oauth_callback`, signed with the
    /// consumer keys only.
    pub async fn request_token(
        &self,
        keys: oauth1::Keys<'_>,
        callback: &str,
    ) -> Result<XAnswer, TransportError> {
        let url = self.url(REQUEST_TOKEN);
        let authorization = header_for("POST", &url, keys, &[("oauth_callback", callback)]);
        self.send(
            REQUEST_TOKEN,
            self.http.post(&url).header("authorization", authorization),
        )
        .await
    }

    /// OAuth 1.0a step 3: `POST /oauth/access_token` with the verifier, signed with the request
    /// token and its secret.
    pub async fn access_token(
        &self,
        keys: oauth1::Keys<'_>,
        verifier: &str,
    ) -> Result<XAnswer, TransportError> {
        let url = self.url(ACCESS_TOKEN);
        let authorization = header_for("POST", &url, keys, &[("oauth_verifier", verifier)]);
        self.send(
            ACCESS_TOKEN,
            self.http.post(&url).header("authorization", authorization),
        )
        .await
    }

    /// OAuth 2.0: `POST /2/oauth2/token`, exchanging a code and its PKCE verifier. A
    /// confidential client authenticates with Basic; a public one sends `client_id` only.
    pub async fn oauth2_token(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<XAnswer, TransportError> {
        let form = [
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
            ("client_id", client_id),
        ];
        let mut request = self.http.post(self.url(OAUTH2_TOKEN)).form(&form);
        if let Some(secret) = client_secret {
            request = request.basic_auth(client_id, Some(secret));
        }
        self.send(OAUTH2_TOKEN, request).await
    }

    /// `GET /2/users/me` with an OAuth 2.0 user token.
    pub async fn users_me_bearer(&self, token: &str) -> Result<XAnswer, TransportError> {
        self.send(
            USERS_ME,
            self.http.get(self.url(USERS_ME)).bearer_auth(token),
        )
        .await
    }

    /// `GET /2/users/me` signed with OAuth 1.0a keys.
    pub async fn users_me_signed(&self, keys: oauth1::Keys<'_>) -> Result<XAnswer, TransportError> {
        let url = self.url(USERS_ME);
        let authorization = header_for("GET", &url, keys, &[]);
        self.send(
            USERS_ME,
            self.http.get(&url).header("authorization", authorization),
        )
        .await
    }

    /// Sends `request` to X's `endpoint` (its path, the metrics' label), reads the answer up to
    /// [`MAX_ANSWER_BYTES`], and counts the call and X's rate-limit headroom.
    pub(super) async fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<XAnswer, TransportError> {
        let started = std::time::Instant::now();
        let result = self.exchange(request).await;
        let outcome = match &result {
            Ok(answer) => {
                let header = |name| super::diagnosis::header_u64(&answer.headers, name);
                crate::metrics::x_rate_limit(
                    endpoint,
                    header("x-rate-limit-limit"),
                    header("x-rate-limit-remaining"),
                    header("x-rate-limit-reset"),
                );
                XOutcome::Answered(answer.status)
            }
            Err(TransportError::Timeout(_)) => XOutcome::TimedOut,
            Err(TransportError::Unreachable(_)) => XOutcome::Unreachable,
        };
        crate::metrics::x_request(endpoint, outcome, started.elapsed());
        result
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<XAnswer, TransportError> {
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            // Read up to the limit, not whole: what X sends is small, and an answer that goes
            // on (a broken proxy, a hostile endpoint) must cost neither memory nor waiting.
            // Past the limit the answer is cut, and its diagnosis says it made no sense.
            while let Some(chunk) = response.chunk().await? {
                let room = MAX_ANSWER_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() >= room {
                    break;
                }
            }
            Ok::<_, reqwest::Error>(XAnswer {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(TransportError::Timeout(self.timeout)),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) if e.is_timeout() => Err(TransportError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(TransportError::Unreachable(describe(&e))),
        }
    }
}

fn signed_header(method: &str, url: &str, credentials: &Credentials) -> String {
    header_for(method, url, credentials.keys(), &[])
}

pub(super) fn header_for(
    method: &str,
    url: &str,
    keys: oauth1::Keys,
    extra: &[(&str, &str)],
) -> String {
    oauth1::authorization_header(
        &oauth1::Request {
            method,
            url,
            form_body: None,
        },
        keys,
        extra,
    )
    .expect("the configured API URL was checked at start")
}

/// A reqwest error without its URL (which is ours and harmless, but keeps messages short).
fn describe(error: &reqwest::Error) -> String {
    let mut message = if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
