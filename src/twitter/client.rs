//! HTTP client for X: sends requests signed with OAuth 1.0a and returns the answers as received.

use super::credentials::Credentials;
use super::diagnosis::XAnswer;
use crate::config::TwitterConfig;
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

#[derive(Clone, Debug)]
pub struct XClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl XClient {
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
        let url = self.url("/2/users/me");
        let authorization = signed_header("GET", &url, credentials);
        self.send(self.http.get(&url).header("authorization", authorization))
            .await
    }

    /// `POST /2/tweets` with `{"text": …}`, signed (the JSON body is not part of the signature).
    /// Sent once: a timed-out post is reported, never retried, since it may have been posted.
    pub async fn post_tweet(
        &self,
        credentials: &Credentials,
        text: &str,
    ) -> Result<XAnswer, TransportError> {
        let url = self.url("/2/tweets");
        let authorization = signed_header("POST", &url, credentials);
        let request = self
            .http
            .post(&url)
            .header("authorization", authorization)
            .json(&serde_json::json!({ "text": text }));
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<XAnswer, TransportError> {
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
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
    oauth1::authorization_header(
        &oauth1::Request {
            method,
            url,
            form_body: None,
        },
        credentials.keys(),
        &[],
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
