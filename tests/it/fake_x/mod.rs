//! A fake X API on 127.0.0.1:0 that checks every request's OAuth 1.0a signature on its own.
//!
//! The verification below is written separately from `tracardi_twitter::oauth1` (its own
//! header parser, percent-decoder and percent-encoder; only the HMAC, SHA-1 and base64 crates are
//! shared), so a mistake in the signer cannot be mirrored here. A request whose signature does
//! not verify with the credentials the fake was told about gets X's 401, whatever the scenario.
//!
//! Each test scripts the fake with a [`Scenario`] and reads back what it received.
//!
//! The fake also plays X's side of the two sign-in flows (twitter-api.md §3) on the same server:
//! OAuth 1.0a 3-legged (`POST /oauth/request_token`, the approval page `GET /oauth/authorize`,
//! `POST /oauth/access_token`) and OAuth 2.0 with PKCE (the approval page
//! `GET /i/oauth2/authorize`, `POST /2/oauth2/token`), after which `GET /2/users/me` answers
//! for the new user token (signed) or bearer token, as the [`Scenario`] says. Configure it with
//! [`FakeX::oauth1_app`] and [`FakeX::oauth2_client`]; script X's refusals with
//! [`FakeX::set_flow_failure`]. The approval pages have two plain links, `#approve` and
//! `#refuse`, that a browser clicks, or that [`link`] reads for a test over plain HTTP.

mod activity;
mod flows;
mod signature;
mod subscriptions;
mod webhooks;

pub use activity::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
pub use flows::*;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
pub use signature::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
pub use subscriptions::{Subscription, SubscriptionFailure};

/// The account `/2/users/me` answers with (X's documentation example).
pub const ACCOUNT_ID: &str = "2244994945";
pub const USERNAME: &str = "XDevelopers";
pub const NAME: &str = "X Developers";

/// X's exact v2 body for a rejected signature (twitter-api.md §2.4 row 2).
pub const UNAUTHORIZED: &str =
    r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#;
/// Row 8.
pub const CLIENT_NOT_ENROLLED: &str = r#"{"client_id":"29755042","detail":"When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.","registration_url":"https://developer.twitter.com/en/docs/projects/overview","title":"Client Forbidden","required_enrollment":"Appropriate Level of API Access","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}"#;
/// Row 6.
pub const PLAN_LACKS_ENDPOINT: &str = r#"{"errors":[{"message":"You currently have access to a subset of Twitter API v2 endpoints and limited v1.1 endpoints (e.g. media post, oauth) only. If you need access to this endpoint, you may need a different access level. You can learn more here: https://developer.twitter.com/en/portal/product","code":453}]}"#;
/// Row 12.
pub const USER_SUSPENDED: &str = r#"{"detail":"The user used for authentication is suspended","title":"Forbidden","status":403,"type":"https://api.twitter.com/2/problems/user-suspended"}"#;
/// Row 14.
pub const TOO_MANY_REQUESTS: &str = r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#;
/// Row 16: X's body is not captured; a plausible problem of the documented size class.
pub const PAYMENT_REQUIRED: &str = r#"{"title":"CreditsDepleted","detail":"Your enrolled account does not have any credits to fulfill this request.","type":"https://api.twitter.com/2/problems/credits","status":402}"#;

const PROBLEM_JSON: &str = "application/problem+json";
const JSON: &str = "application/json; charset=utf-8";

/// How the fake answers a correctly signed `GET /2/users/me`.
#[derive(Clone, Debug)]
pub enum Scenario {
    /// 200 with the account and `x-access-level` (`read`, `read-write`, ...; `None` leaves it out).
    Ok {
        access_level: Option<&'static str>,
    },
    /// 401 as X sends it when the keys are wrong, revoked or regenerated.
    Unauthorized,
    /// 401 with a `Date` header this far ahead of the real time.
    ClockSkew(Duration),
    ClientNotEnrolled,
    PlanLacksEndpoint,
    UserSuspended,
    /// 429 whose `x-rate-limit-reset` is this many seconds from now.
    RateLimited {
        reset_in: u64,
    },
    PaymentRequired,
    /// This status with X's problem body for it.
    ServerError(u16),
    /// 200 with a body that is not X's JSON.
    Garbage,
    /// Answers 200 only after this long.
    Slow(Duration),
    /// 200 whose body never ends (white space, streamed for as long as it is read).
    Endless,
}

/// The four keys as the fake knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub api_key: String,
    pub api_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
}

impl Keys {
    /// Fresh, unique keys whose access token names the fake's account.
    pub fn unique(tag: &str) -> Self {
        let id = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            api_key: format!("{tag}key{}", id()),
            api_secret: format!("{tag}secret{}", id()),
            access_token: format!("{ACCOUNT_ID}-{tag}token{}", id()),
            access_token_secret: format!("{tag}tokensecret{}", id()),
        }
    }

    /// The body of `POST /validate`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "access_token": self.access_token,
            "access_token_secret": self.access_token_secret,
        })
    }
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The decoded `oauth_*` parameters of the `Authorization` header.
    pub oauth: BTreeMap<String, String>,
    /// Whether the signature verified with known credentials.
    pub signature_ok: bool,
    pub body: String,
}

/// How `POST /2/tweets` answers.
#[derive(Clone, Debug, Default)]
pub enum TweetScenario {
    /// 201 with the posted text and a new id.
    #[default]
    Created,
    Duplicate,
    /// 403 `oauth1-permissions`: the token is read-only.
    ReadOnly,
    PlanLacksEndpoint,
    /// 429 whose `x-rate-limit-reset` is this many seconds from now.
    RateLimited {
        reset_in: u64,
    },
    /// Answers 201 only after this long.
    Slow(Duration),
}

#[derive(Default)]
struct Shared {
    scenario: Mutex<Option<Scenario>>,
    known: Mutex<Vec<Keys>>,
    received: Mutex<Vec<Received>>,
    tweets: Mutex<TweetScenario>,
    flows: Mutex<Flows>,
    admin: Mutex<webhooks::Admin>,
}

pub struct FakeX {
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeX {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeX {
    /// Starts the fake, answering signed requests as `scenario` says.
    pub async fn start(scenario: Scenario) -> Self {
        crate::support::init();
        let shared = Arc::new(Shared::default());
        *shared.scenario.lock().unwrap() = Some(scenario);
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake X");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake X serves");
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// Starts the fake and tells it about `keys`.
    pub async fn with_keys(scenario: Scenario, keys: &Keys) -> Self {
        let fake = Self::start(scenario).await;
        fake.accept(keys);
        fake
    }

    /// Credentials whose signatures the fake accepts.
    pub fn accept(&self, keys: &Keys) {
        self.shared.known.lock().unwrap().push(keys.clone());
    }

    pub fn set_tweets(&self, scenario: TweetScenario) {
        *self.shared.tweets.lock().unwrap() = scenario;
    }

    /// The `POST /2/tweets` requests that arrived.
    pub fn tweets(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/2/tweets")
            .collect()
    }

    pub fn set(&self, scenario: Scenario) {
        *self.shared.scenario.lock().unwrap() = Some(scenario);
    }

    /// How many requests arrived, signed or not.
    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The OAuth 1.0a app (API Key and Secret) whose `oauth/request_token` and
    /// `oauth/access_token` calls the fake accepts. Several apps may be known.
    pub fn oauth1_app(&self, consumer_key: &str, consumer_secret: &str) {
        let mut flows = self.shared.flows.lock().unwrap();
        flows
            .apps
            .push((consumer_key.to_owned(), consumer_secret.to_owned()));
    }

    /// The callback URLs registered in the app settings at X: from now on `oauth/request_token`
    /// refuses any other `oauth_callback` (exact match, as X compares them) with the 403/415 of
    /// §2.4 row 18. Without this call every callback is approved.
    pub fn approve_callbacks(&self, callbacks: &[&str]) {
        self.shared.flows.lock().unwrap().callbacks =
            Some(callbacks.iter().map(|c| (*c).to_owned()).collect());
    }

    /// An OAuth 2.0 client: with a secret it is confidential (the token call must carry
    /// `Authorization: Basic`), without one it is public (`client_id` in the body).
    pub fn oauth2_client(&self, client_id: &str, client_secret: Option<&str>) {
        let mut flows = self.shared.flows.lock().unwrap();
        flows
            .clients
            .push((client_id.to_owned(), client_secret.map(str::to_owned)));
    }

    /// How X refuses a step of the flows, from now on; `None` lets the flows succeed again.
    pub fn set_flow_failure(&self, failure: Option<FlowFailure>) {
        self.shared.flows.lock().unwrap().failure = failure;
    }

    /// `TWITTER_AUTHORIZE_URL` for the service: the fake's OAuth 1.0a approval page.
    pub fn oauth1_authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.url)
    }

    /// `TWITTER_OAUTH2_AUTHORIZE_URL` for the service: the fake's OAuth 2.0 approval page.
    pub fn oauth2_authorize_url(&self) -> String {
        format!("{}/i/oauth2/authorize", self.url)
    }

    /// The requests with this method and path (no query), in the order they arrived.
    pub fn calls(&self, method: &str, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// `POST /oauth/request_token` calls, accepted or not.
    pub fn request_token_calls(&self) -> Vec<Received> {
        self.calls("POST", "/oauth/request_token")
    }

    /// `POST /oauth/access_token` calls (the OAuth 1.0a exchange), accepted or not.
    pub fn access_token_calls(&self) -> Vec<Received> {
        self.calls("POST", "/oauth/access_token")
    }

    /// `POST /2/oauth2/token` calls (the OAuth 2.0 exchange), accepted or not.
    pub fn oauth2_token_calls(&self) -> Vec<Received> {
        self.calls("POST", "/2/oauth2/token")
    }

    /// Every exchange of either flow: `oauth/access_token` and `/2/oauth2/token` calls.
    pub fn exchange_count(&self) -> usize {
        self.access_token_calls().len() + self.oauth2_token_calls().len()
    }

    /// The request tokens handed out, with their verifiers once the approval page was shown.
    pub fn request_tokens(&self) -> Vec<RequestToken> {
        self.shared.flows.lock().unwrap().request_tokens.clone()
    }

    /// The OAuth 2.0 authorization codes handed out by the approval page.
    pub fn authorization_codes(&self) -> Vec<AuthorizationCode> {
        self.shared.flows.lock().unwrap().codes.clone()
    }

    /// The OAuth 1.0a user tokens handed out by `oauth/access_token` (also accepted as [`Keys`]),
    /// so that a test can check they went nowhere.
    pub fn user_keys(&self) -> Vec<Keys> {
        self.shared.flows.lock().unwrap().user_keys.clone()
    }

    /// The OAuth 2.0 access tokens handed out by `/2/oauth2/token`.
    pub fn bearer_tokens(&self) -> Vec<BearerToken> {
        self.shared.flows.lock().unwrap().bearers.clone()
    }

    /// A URL on 127.0.0.1 where nothing listens: connections are refused.
    pub fn refusing_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // Only a form body is part of the signature (RFC 5849 §3.4.1.3.1); a JSON one is not.
    let form = is_form(&parts.headers).then_some(body.as_str());
    let route = Route::of(&parts.method, &path);
    let base_uri = base_string_uri("http", &host, &path);
    let verdict = {
        let known = shared.known.lock().unwrap();
        let flows = shared.flows.lock().unwrap();
        verify(
            parts.method.as_str(),
            &base_uri,
            query.as_deref(),
            form,
            authorization,
            |consumer_key, token| match route {
                // Client credentials only: the key is `enc(consumer_secret)&`.
                Route::RequestToken => match token {
                    None => flows.app_secret(consumer_key).map(|s| (s, String::new())),
                    Some(_) => None,
                },
                // The temporary credentials: `enc(consumer_secret)&enc(request_token_secret)`.
                Route::AccessToken => {
                    let issued = flows.request_token(consumer_key, token?)?;
                    Some((flows.app_secret(consumer_key)?, issued.secret.clone()))
                }
                _ => known
                    .iter()
                    .find(|k| k.api_key == consumer_key && Some(k.access_token.as_str()) == token)
                    .map(|k| (k.api_secret.clone(), k.access_token_secret.clone())),
            },
        )
    };
    let oauth: BTreeMap<String, String> = parse_authorization(authorization)
        .unwrap_or_default()
        .into_iter()
        .collect();
    shared.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        oauth: oauth.clone(),
        signature_ok: verdict.is_ok(),
        body: body.clone(),
    });
    match route {
        Route::RequestToken => return request_token(&shared, verdict, &oauth).await,
        Route::AccessToken => {
            return access_token(&shared, verdict, &oauth, form, query.as_deref()).await;
        }
        Route::Oauth1Page => return oauth1_page(&shared, query.as_deref()),
        Route::Oauth2Page => return oauth2_page(&shared, query.as_deref()),
        Route::Oauth2Token => return oauth2_token(&shared, &parts.headers, &body).await,
        Route::UsersMe | Route::Other => {}
    }
    let call = webhooks::Call {
        method: &parts.method,
        path: &path,
        query: query.as_deref(),
        body: &body,
        authorization,
        signature_ok: verdict.is_ok(),
        oauth: &oauth,
    };
    if let Some(response) = webhooks::answer(&shared, &call).await {
        return response;
    }
    if let Some(response) = subscriptions::answer(&shared, &call).await {
        return response;
    }
    if let Some(token) = bearer(authorization)
        && route == Route::UsersMe
    {
        let known = shared
            .flows
            .lock()
            .unwrap()
            .bearers
            .iter()
            .any(|b| b.token == token);
        if !known {
            return problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
        }
        return users_me_scenario(&shared).await;
    }
    if verdict.is_err() {
        return problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    if parts.method == axum::http::Method::POST && path == "/2/tweets" {
        let scenario = shared.tweets.lock().unwrap().clone();
        let n = shared.received.lock().unwrap().len();
        return post_tweet(scenario, &body, n).await;
    }
    if route != Route::UsersMe {
        return problem(
            StatusCode::NOT_FOUND,
            r#"{"title":"Not Found Error","detail":"Sorry, that page does not exist.","type":"https://api.twitter.com/2/problems/resource-not-found","status":404}"#,
        );
    }
    users_me_scenario(&shared).await
}

/// How `GET /2/users/me` answers an accepted caller (signed, or with a bearer token X issued).
async fn users_me_scenario(shared: &Shared) -> Response {
    let scenario = shared.scenario.lock().unwrap().clone();
    match scenario.expect("a scenario is always set") {
        Scenario::Ok { access_level } => users_me(access_level),
        Scenario::Unauthorized => problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED),
        Scenario::ClockSkew(ahead) => {
            let mut response = problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
            let date = httpdate::fmt_http_date(SystemTime::now() + ahead);
            response
                .headers_mut()
                .insert(header::DATE, HeaderValue::from_str(&date).unwrap());
            response
        }
        Scenario::ClientNotEnrolled => problem(StatusCode::FORBIDDEN, CLIENT_NOT_ENROLLED),
        // A v1.1-style envelope: X sends it as plain JSON.
        Scenario::PlanLacksEndpoint => with_type(StatusCode::FORBIDDEN, JSON, PLAN_LACKS_ENDPOINT),
        Scenario::UserSuspended => problem(StatusCode::FORBIDDEN, USER_SUSPENDED),
        Scenario::RateLimited { reset_in } => {
            let mut response = problem(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS);
            let headers = response.headers_mut();
            headers.insert("x-rate-limit-limit", HeaderValue::from(75));
            headers.insert("x-rate-limit-remaining", HeaderValue::from(0));
            headers.insert(
                "x-rate-limit-reset",
                HeaderValue::from(unix_now() + reset_in),
            );
            response
        }
        Scenario::PaymentRequired => problem(StatusCode::PAYMENT_REQUIRED, PAYMENT_REQUIRED),
        Scenario::ServerError(status) => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            let reason = status.canonical_reason().unwrap_or("Error");
            let body = format!(
                r#"{{"title":"{reason}","detail":"{reason}","type":"about:blank","status":{}}}"#,
                status.as_u16()
            );
            problem(status, &body)
        }
        Scenario::Garbage => with_type(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body>Something went wrong, but don't fret</body></html>",
        ),
        Scenario::Slow(delay) => {
            tokio::time::sleep(delay).await;
            users_me(Some("read-write"))
        }
        Scenario::Endless => {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let spaces = futures_util::stream::repeat_with(move || {
                Ok::<_, std::convert::Infallible>(chunk.clone())
            });
            let mut response = axum::body::Body::from_stream(spaces).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

async fn post_tweet(scenario: TweetScenario, body: &str, n: usize) -> Response {
    let created = |body: &str| {
        let text = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|b| b["text"].as_str().map(str::to_owned));
        match text {
            Some(text) => with_type(
                StatusCode::CREATED,
                JSON,
                &serde_json::json!({"data": {"id": format!("18000000000000{n:05}"), "text": text, "edit_history_tweet_ids": [format!("18000000000000{n:05}")]}}).to_string(),
            ),
            None => problem(
                StatusCode::BAD_REQUEST,
                r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#,
            ),
        }
    };
    match scenario {
        TweetScenario::Created => created(body),
        TweetScenario::Duplicate => problem(
            StatusCode::FORBIDDEN,
            r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#,
        ),
        TweetScenario::ReadOnly => problem(
            StatusCode::FORBIDDEN,
            r#"{"title":"Forbidden","status":403,"detail":"Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.","type":"https://api.twitter.com/2/problems/oauth1-permissions"}"#,
        ),
        TweetScenario::PlanLacksEndpoint => {
            with_type(StatusCode::FORBIDDEN, JSON, PLAN_LACKS_ENDPOINT)
        }
        TweetScenario::RateLimited { reset_in } => {
            let mut response = problem(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS);
            response.headers_mut().insert(
                "x-rate-limit-reset",
                HeaderValue::from(unix_now() + reset_in),
            );
            response
        }
        TweetScenario::Slow(delay) => {
            tokio::time::sleep(delay).await;
            created(body)
        }
    }
}

fn users_me(access_level: Option<&'static str>) -> Response {
    let body =
        format!(r#"{{"data":{{"id":"{ACCOUNT_ID}","name":"{NAME}","username":"{USERNAME}"}}}}"#);
    let mut response = with_type(StatusCode::OK, JSON, &body);
    let headers = response.headers_mut();
    if let Some(level) = access_level {
        headers.insert("x-access-level", HeaderValue::from_static(level));
    }
    headers.insert("x-rate-limit-limit", HeaderValue::from(75));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(74));
    headers.insert("x-rate-limit-reset", HeaderValue::from(unix_now() + 900));
    response
}

fn problem(status: StatusCode, body: &str) -> Response {
    with_type(status, PROBLEM_JSON, body)
}

fn with_type(status: StatusCode, content_type: &'static str, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from(body.to_owned()),
    )
        .into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<serde_json::Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/oauth1.json");
        let text = std::fs::read_to_string(path).expect("tests/vectors/oauth1.json");
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        file["vectors"].as_array().unwrap().clone()
    }

    fn s(v: &serde_json::Value, name: &str) -> String {
        v[name].as_str().unwrap_or("").to_owned()
    }

    /// Checks a vector's header against its URL, as the fake would on the wire.
    fn check(v: &serde_json::Value, header: &str) -> Result<(), Rejection> {
        let url = url::Url::parse(&s(v, "url")).unwrap();
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap()),
            None => url.host_str().unwrap().to_owned(),
        };
        let base = base_string_uri(url.scheme(), &host, url.path());
        let (consumer_secret, token_secret) = (s(v, "consumer_secret"), s(v, "token_secret"));
        let (consumer_key, token) = (s(v, "consumer_key"), v["token"].as_str().map(str::to_owned));
        let form = (v["content_type"] == "application/x-www-form-urlencoded")
            .then(|| v["body"].as_str())
            .flatten();
        verify(&s(v, "method"), &base, url.query(), form, header, |k, t| {
            (k == consumer_key && t.map(str::to_owned) == token)
                .then(|| (consumer_secret.clone(), token_secret.clone()))
        })
    }

    #[test]
    fn accepts_the_users_me_vector_and_rejects_it_tampered() {
        let vectors = vectors();
        let v7a = vectors
            .iter()
            .find(|v| v["name"] == "users-me")
            .expect("vector users-me (V7a)");
        let header = s(&v7a["expected"], "authorization_header");
        assert_eq!(check(v7a, &header), Ok(()));

        // Another signature, another timestamp, another secret, another host: all refused.
        let tampered = header.replace(
            "s6npKHEFSxFN4Kn7jGHKfpcDUOI%3D",
            "s6npKHEFSxFN4Kn7jGHKfpcDUOJ%3D",
        );
        assert_eq!(check(v7a, &tampered), Err(Rejection::BadSignature));
        let retimed = header.replace("1318622958", "1318622959");
        assert_eq!(check(v7a, &retimed), Err(Rejection::BadSignature));
        let mut other_secret = v7a.clone();
        other_secret["token_secret"] = "not-the-secret".into();
        assert_eq!(check(&other_secret, &header), Err(Rejection::BadSignature));
        let mut other_host = v7a.clone();
        other_host["url"] = "https://api.twitter.com/2/users/me".into();
        assert_eq!(check(&other_host, &header), Err(Rejection::BadSignature));
        let mut other_key = v7a.clone();
        other_key["consumer_key"] = "someone-else".into();
        assert_eq!(
            check(&other_key, &header),
            Err(Rejection::UnknownCredentials)
        );
        assert_eq!(check(v7a, "Bearer abc"), Err(Rejection::NoOAuthHeader));
    }

    /// Every vector verifies, form bodies included, which shows the independent code agrees
    /// with the published values on sorting, encoding, base URIs and signed bodies.
    #[test]
    fn accepts_every_vector() {
        let mut checked = 0;
        let mut with_form = 0;
        for v in vectors() {
            let header = s(&v["expected"], "authorization_header");
            assert_eq!(check(&v, &header), Ok(()), "{}", v["name"]);
            checked += 1;
            if v["content_type"] == "application/x-www-form-urlencoded" {
                with_form += 1;
                // The body is signed: another body does not verify.
                let mut other = v.clone();
                other["body"] = "status=something%20else".into();
                assert_eq!(
                    check(&other, &header),
                    Err(Rejection::BadSignature),
                    "{}",
                    v["name"]
                );
            }
        }
        assert!(checked >= 15, "only {checked} vectors checked");
        assert!(with_form >= 4, "only {with_form} vectors with a form body");
    }

    #[test]
    fn encodes_and_decodes() {
        assert_eq!(enc("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
        assert_eq!(enc("☃~-._*"), "%E2%98%83~-._%2A");
        assert_eq!(form_decode("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(pct_decode("a+b").unwrap(), "a+b");
        assert_eq!(pct_decode("%zz"), None);
        assert_eq!(
            base_string_uri("HTTP", "Example.COM:80", "/r%20v/X"),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_string_uri("http", "127.0.0.1:8080", ""),
            "http://127.0.0.1:8080/"
        );
    }

    /// RFC 7636 Appendix B, computed here with the sha2 and base64 crates (not the service's code).
    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        assert!(is_code_verifier(verifier));
        assert!(is_s256_challenge(challenge));
        assert_ne!(s256_challenge(&verifier.replace('d', "e")), challenge);
        assert!(!is_code_verifier("too-short"));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", &verifier[1..])));
        assert!(!is_s256_challenge(&format!("{challenge}=")));
    }

    /// twitter-api.md §3.2: `Aladdin:open sesame` → `QWxhZGRpbjpvcGVuIHNlc2FtZQ==`.
    #[test]
    fn reads_basic_authentication() {
        assert_eq!(
            parse_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Some(("Aladdin".to_owned(), "open sesame".to_owned()))
        );
        assert_eq!(parse_basic("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), None);
        assert_eq!(parse_basic("Basic not base64!"), None);
        assert!(credential_matches("open%20sesame", "open sesame"));
        assert!(credential_matches("open sesame", "open sesame"));
        assert!(!credential_matches("open", "open sesame"));
    }

    #[test]
    fn finds_and_unescapes_links() {
        let html = "<p><a id=\"approve\" href=\"http://h/cb?a=1&amp;b=%22\">Authorize app</a></p>";
        assert_eq!(
            find_link(html, "approve").as_deref(),
            Some("http://h/cb?a=1&b=%22")
        );
        assert_eq!(find_link(html, "refuse"), None);
        assert_eq!(
            with_query("http://h/cb", &[("state", "a b&c"), ("code", "x")]),
            "http://h/cb?state=a+b%26c&code=x"
        );
        assert_eq!(
            with_query("http://h/cb?src=x", &[("denied", "t")]),
            "http://h/cb?src=x&denied=t"
        );
    }

    // --- The flows, driven over HTTP with the service's signer (two implementations meet). ---

    const CALLBACK: &str = "http://127.0.0.1:9/callback";

    async fn signed_post(
        url: &str,
        keys: tracardi_twitter::oauth1::Keys<'_>,
        extra: &[(&str, &str)],
        form: Option<&str>,
    ) -> reqwest::Response {
        let request = tracardi_twitter::oauth1::Request {
            method: "POST",
            url,
            form_body: form,
        };
        let header = tracardi_twitter::oauth1::authorization_header(&request, keys, extra).unwrap();
        let mut call = crate::support::client()
            .post(url)
            .header(header::AUTHORIZATION, header);
        if let Some(form) = form {
            call = call
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.to_owned());
        }
        call.send().await.unwrap()
    }

    fn app_keys<'a>(
        key: &'a str,
        secret: &'a str,
        token: Option<(&'a str, &'a str)>,
    ) -> tracardi_twitter::oauth1::Keys<'a> {
        tracardi_twitter::oauth1::Keys {
            consumer_key: key,
            consumer_secret: secret,
            token: token.map(|t| t.0),
            token_secret: token.map(|t| t.1),
        }
    }

    fn form(body: &str) -> BTreeMap<String, String> {
        form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    /// `POST /oauth/request_token` → (token, secret).
    async fn get_request_token(fake: &FakeX, key: &str, secret: &str) -> (String, String) {
        let url = format!("{}/oauth/request_token", fake.url);
        let response = signed_post(
            &url,
            app_keys(key, secret, None),
            &[("oauth_callback", CALLBACK)],
            None,
        )
        .await;
        assert_eq!(response.status(), 200);
        let body = form(&response.text().await.unwrap());
        assert_eq!(body["oauth_callback_confirmed"], "true");
        (
            body["oauth_token"].clone(),
            body["oauth_token_secret"].clone(),
        )
    }

    #[tokio::test]
    async fn runs_the_oauth1_flow_once_per_token() {
        let fake = FakeX::start(Scenario::Ok {
            access_level: Some("read-write"),
        })
        .await;
        let (key, secret) = ("flowkey", "flowsecret");
        fake.oauth1_app(key, secret);
        let (token, token_secret) = get_request_token(&fake, key, secret).await;

        // The approval page: approve carries a verifier, refuse says denied.
        let page = format!("{}?oauth_token={token}", fake.oauth1_authorize_url());
        let approve = link(&page, "approve").await;
        let refuse = link(&page, "refuse").await;
        assert_eq!(refuse, format!("{CALLBACK}?denied={token}"));
        let approved = url::Url::parse(&approve).unwrap();
        let params: BTreeMap<String, String> = approved.query_pairs().into_owned().collect();
        assert!(approve.starts_with(&format!("{CALLBACK}?oauth_token={token}&oauth_verifier=")));
        let verifier = params["oauth_verifier"].clone();
        assert_eq!(
            fake.request_tokens()[0].verifier.as_deref(),
            Some(&*verifier)
        );

        // A wrong token secret does not verify; the token is not spent by it.
        let url = format!("{}/oauth/access_token", fake.url);
        let verifier_param = [("oauth_verifier", verifier.as_str())];
        let wrong = app_keys(key, secret, Some((&token, "not-the-secret")));
        let response = signed_post(&url, wrong, &verifier_param, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), COULD_NOT_AUTHENTICATE);

        // The exchange, verifier in the header.
        let keys = app_keys(key, secret, Some((&token, &token_secret)));
        let response = signed_post(&url, keys, &verifier_param, None).await;
        assert_eq!(response.status(), 200);
        let body = form(&response.text().await.unwrap());
        assert_eq!(body["user_id"], ACCOUNT_ID);
        assert_eq!(body["screen_name"], USERNAME);
        assert!(body["oauth_token"].starts_with(&format!("{ACCOUNT_ID}-")));
        let user = &fake.user_keys()[0];
        assert_eq!(user.access_token, body["oauth_token"]);
        assert_eq!(user.access_token_secret, body["oauth_token_secret"]);

        // Once only.
        let response = signed_post(&url, keys, &verifier_param, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), INVALID_OR_EXPIRED_TOKEN);
        assert_eq!(fake.access_token_calls().len(), 3);
        assert_eq!(fake.exchange_count(), 3);
        let gone = crate::support::client().get(&page).send().await.unwrap();
        assert_eq!(gone.status(), 404, "the approval page of a used token");

        // The user token reads the account, signed as any other keys.
        let me = format!("{}/2/users/me", fake.url);
        let request = tracardi_twitter::oauth1::Request {
            method: "GET",
            url: &me,
            form_body: None,
        };
        let user_keys = app_keys(
            key,
            secret,
            Some((&user.access_token, &user.access_token_secret)),
        );
        let header =
            tracardi_twitter::oauth1::authorization_header(&request, user_keys, &[]).unwrap();
        let response = crate::support::client()
            .get(&me)
            .header(header::AUTHORIZATION, header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["data"]["username"], USERNAME);
    }

    #[tokio::test]
    async fn takes_the_oauth1_verifier_from_a_form_body_and_checks_it() {
        let fake = FakeX::start(Scenario::Ok { access_level: None }).await;
        let (key, secret) = ("formkey", "formsecret");
        fake.oauth1_app(key, secret);
        let url = format!("{}/oauth/access_token", fake.url);

        // Verifier in the (signed) form body.
        let (token, token_secret) = get_request_token(&fake, key, secret).await;
        let page = format!("{}?oauth_token={token}", fake.oauth1_authorize_url());
        let approve = link(&page, "approve").await;
        let verifier = approve.split("oauth_verifier=").nth(1).unwrap().to_owned();
        let keys = app_keys(key, secret, Some((&token, &token_secret)));
        let body = format!("oauth_verifier={verifier}");
        let response = signed_post(&url, keys, &[], Some(&body)).await;
        assert_eq!(response.status(), 200);

        // A wrong verifier spends the token.
        let (token, token_secret) = get_request_token(&fake, key, secret).await;
        let page = format!("{}?oauth_token={token}", fake.oauth1_authorize_url());
        link(&page, "approve").await;
        let keys = app_keys(key, secret, Some((&token, &token_secret)));
        let wrong = [("oauth_verifier", "guessed")];
        let response = signed_post(&url, keys, &wrong, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), INVALID_VERIFIER);
        let response = signed_post(&url, keys, &wrong, None).await;
        assert_eq!(response.text().await.unwrap(), INVALID_OR_EXPIRED_TOKEN);

        // An unknown token has no page.
        let unknown = format!("{}?oauth_token=nothing", fake.oauth1_authorize_url());
        let response = crate::support::client().get(&unknown).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn scripts_the_oauth1_failures() {
        let fake = FakeX::start(Scenario::Ok { access_level: None }).await;
        let (key, secret) = ("failkey", "failsecret");
        fake.oauth1_app(key, secret);
        let request_token = format!("{}/oauth/request_token", fake.url);
        let callback = [("oauth_callback", CALLBACK)];
        let client_only = app_keys(key, secret, None);

        // No callback: refused.
        let response = signed_post(&request_token, client_only, &[], None).await;
        assert_eq!(response.status(), 400);
        // A bad signature (another secret).
        let response = signed_post(&request_token, app_keys(key, "x", None), &callback, None).await;
        assert_eq!(response.status(), 401);
        // Signed with a token: not a request-token call.
        let with_token = app_keys(key, secret, Some(("t", "s")));
        let response = signed_post(&request_token, with_token, &callback, None).await;
        assert_eq!(response.status(), 401);

        fake.set_flow_failure(Some(FlowFailure::CallbackNotApproved));
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 403);
        assert_eq!(response.text().await.unwrap(), CALLBACK_NOT_APPROVED);

        fake.set_flow_failure(Some(FlowFailure::CallbackNotConfirmed));
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 200);
        let body = form(&response.text().await.unwrap());
        assert_eq!(body["oauth_callback_confirmed"], "false");

        fake.set_flow_failure(Some(FlowFailure::AppSuspended));
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), APP_SUSPENDED);

        fake.set_flow_failure(Some(FlowFailure::DesktopAppOobOnly));
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.text().await.unwrap(), OOB_ONLY);

        let delay = Duration::from_millis(300);
        fake.set_flow_failure(Some(FlowFailure::RequestTokenSlow(delay)));
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(fake.request_token_calls().len(), 8);

        fake.set_flow_failure(None);
        fake.approve_callbacks(&["https://elsewhere.example/callback"]);
        let response = signed_post(&request_token, client_only, &callback, None).await;
        assert_eq!(response.status(), 403);
        fake.approve_callbacks(&[CALLBACK]);

        // The exchange refused on the Essential plan: the token is spent.
        let (token, token_secret) = get_request_token(&fake, key, secret).await;
        let page = format!("{}?oauth_token={token}", fake.oauth1_authorize_url());
        let approve = link(&page, "approve").await;
        let verifier = approve.split("oauth_verifier=").nth(1).unwrap().to_owned();
        let keys = app_keys(key, secret, Some((&token, &token_secret)));
        let access_token = format!("{}/oauth/access_token", fake.url);
        let with_verifier = [("oauth_verifier", verifier.as_str())];
        fake.set_flow_failure(Some(FlowFailure::ExchangeEssentialPlan));
        let response = signed_post(&access_token, keys, &with_verifier, None).await;
        assert_eq!(response.status(), 403);
        assert_eq!(response.text().await.unwrap(), ESSENTIAL_ACCESS);
        fake.set_flow_failure(None);
        let response = signed_post(&access_token, keys, &with_verifier, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(fake.access_token_calls().len(), 2);
        assert!(fake.user_keys().is_empty());
    }

    /// `GET /i/oauth2/authorize` with these parameters replaced or removed (`None`).
    fn authorize_url(fake: &FakeX, changes: &[(&str, Option<&str>)]) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "client-1"),
            ("redirect_uri", CALLBACK),
            ("scope", "tweet.read users.read"),
            ("state", "state-1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in changes {
            params.retain(|(n, _)| n != name);
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        with_query(&fake.oauth2_authorize_url(), &params)
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    /// The code of the approve link of a fresh approval page.
    async fn approved_code(fake: &FakeX, changes: &[(&str, Option<&str>)]) -> String {
        let approve = link(&authorize_url(fake, changes), "approve").await;
        let url = url::Url::parse(&approve).unwrap();
        let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        params["code"].clone()
    }

    async fn token_call(
        fake: &FakeX,
        basic: Option<(&str, &str)>,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let mut call = crate::support::client()
            .post(format!("{}/2/oauth2/token", fake.url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(with_query("", fields)[1..].to_owned());
        if let Some((id, secret)) = basic {
            call = call.basic_auth(id, Some(secret));
        }
        let response = call.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn runs_the_oauth2_flow_with_pkce_once_per_code() {
        let fake = FakeX::start(Scenario::Ok { access_level: None }).await;
        fake.oauth2_client("client-1", Some("client-secret"));

        let page = authorize_url(&fake, &[]);
        assert_eq!(
            link(&page, "refuse").await,
            format!("{CALLBACK}?error=access_denied&state=state-1")
        );
        let approve = link(&page, "approve").await;
        assert!(approve.starts_with(&format!("{CALLBACK}?state=state-1&code=")));
        let code = approve.split("code=").nth(1).unwrap().to_owned();
        let fields = [
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", "client-1"),
        ];
        let basic = Some(("client-1", "client-secret"));

        // A confidential client without Basic, or with a wrong secret: 401, the code stays.
        assert_eq!(
            token_call(&fake, None, &fields).await,
            (401, MISSING_AUTHORIZATION.to_owned())
        );
        let wrong = Some(("client-1", "guess"));
        assert_eq!(token_call(&fake, wrong, &fields).await.0, 401);
        assert_eq!(
            token_call(&fake, basic, &fields[1..]).await,
            (400, INVALID_CODE.to_owned())
        );

        let delay = Duration::from_millis(300);
        fake.set_flow_failure(Some(FlowFailure::ExchangeSlow(delay)));
        let (status, body) = token_call(&fake, basic, &fields).await;
        assert_eq!(status, 200, "{body}");
        fake.set_flow_failure(None);
        // Each showing of the page handed out a code (here: the refuse and approve links).
        let codes = fake.authorization_codes();
        assert_eq!(codes.len(), 2);
        let used: Vec<_> = codes.iter().filter(|c| c.used).collect();
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].code, code);
        assert_eq!(used[0].client_id, "client-1");
        assert_eq!(used[0].state, "state-1");
        assert_eq!(used[0].code_challenge, s256_challenge(VERIFIER));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 7200);
        assert_eq!(body["scope"], "tweet.read users.read");
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(fake.bearer_tokens()[0].token, token);
        assert_eq!(fake.bearer_tokens()[0].client_id, "client-1");

        // Once only.
        assert_eq!(
            token_call(&fake, basic, &fields).await,
            (400, INVALID_CODE.to_owned())
        );
        assert_eq!(fake.oauth2_token_calls().len(), 5);

        // The bearer token reads the account; another one does not.
        let me = format!("{}/2/users/me", fake.url);
        let client = crate::support::client();
        let response = client.get(&me).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["data"]["id"], ACCOUNT_ID);
        let response = client.get(&me).bearer_auth("forged").send().await.unwrap();
        assert_eq!(response.status(), 401);
    }

    /// A public client's token call.
    fn token_fields(code: &str) -> Vec<(&str, &str)> {
        vec![
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", "client-1"),
        ]
    }

    #[tokio::test]
    async fn checks_the_oauth2_verifier_redirect_uri_and_client() {
        let fake = FakeX::start(Scenario::Ok { access_level: None }).await;
        fake.oauth2_client("client-1", None);
        fake.oauth2_client("client-2", None);
        // A public client: client_id in the body, no Basic.
        let code = approved_code(&fake, &[]).await;
        assert_eq!(token_call(&fake, None, &token_fields(&code)).await.0, 200);

        // Another verifier, another redirect URI, another client, another grant type: refused.
        let code = approved_code(&fake, &[]).await;
        let mut wrong = token_fields(&code);
        wrong[3].1 = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert_eq!(
            token_call(&fake, None, &wrong).await,
            (400, INVALID_CODE.to_owned())
        );
        assert_eq!(
            token_call(&fake, None, &token_fields(&code)).await.0,
            400,
            "spent"
        );
        let code = approved_code(&fake, &[]).await;
        let mut wrong = token_fields(&code);
        wrong[2].1 = "http://127.0.0.1:9/other";
        assert_eq!(token_call(&fake, None, &wrong).await.0, 400);
        let code = approved_code(&fake, &[]).await;
        let mut wrong = token_fields(&code);
        wrong[4].1 = "client-2";
        assert_eq!(token_call(&fake, None, &wrong).await.0, 400);
        let code = approved_code(&fake, &[]).await;
        let mut wrong = token_fields(&code);
        wrong.remove(1);
        assert_eq!(
            token_call(&fake, None, &wrong).await,
            (400, MISSING_GRANT_TYPE.to_owned())
        );

        // The exchange refused by script: the code is spent.
        let code = approved_code(&fake, &[]).await;
        fake.set_flow_failure(Some(FlowFailure::ExchangeUnauthorized));
        assert_eq!(token_call(&fake, None, &token_fields(&code)).await.0, 401);
        fake.set_flow_failure(None);
        assert_eq!(token_call(&fake, None, &token_fields(&code)).await.0, 400);

        // The approval page checks the authorization request.
        let client = crate::support::client();
        for changes in [
            vec![("response_type", Some("token"))],
            vec![("client_id", Some("unknown"))],
            vec![("code_challenge_method", Some("plain"))],
            vec![("code_challenge", Some("short"))],
            vec![("state", None)],
            vec![("redirect_uri", Some("/relative"))],
            vec![("scope", None)],
        ] {
            let response = client
                .get(authorize_url(&fake, &changes))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{changes:?}");
        }
    }
}
