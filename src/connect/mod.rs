//! "Connect Twitter": the service runs OAuth 1.0a and OAuth 2.0 (PKCE) itself and records which
//! Twitter account a visitor connected, on the visitor's Tracardi profile and session.
//!
//! One-time secrets (request-token secrets, PKCE verifiers, verifiers, codes, user tokens) stay
//! inside the service: the pending ones in the store (so another replica can finish a flow),
//! the others only in memory for the length of one exchange. User tokens are never stored.

use crate::callback::{Flow, Outcome, Redirect, new_event};
use crate::config::ConnectConfig;
use crate::oauth1;
use crate::store::{NewEvent, PendingAuthorizations, StoreError, Taken, now_millis};
use crate::twitter::client::{TransportError, XClient};
use crate::twitter::diagnosis::XAnswer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

mod oauth1_flow;
mod oauth2_flow;
mod state;
mod subscriptions;

use state::StateKind;
pub use state::pkce_challenge;
pub use subscriptions::{Created, Subscriptions};

pub const CONNECTED: &str = "twitter-account-connected";

/// Fixes the event ids of connect flows: UUIDv5 names under this namespace.
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("6a1c2f0e-4b7d-4e9a-8c35-0d9e2b7f1a42");

/// Who the visitor is in Tracardi, and where to send them back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visitor {
    pub profile_id: Option<String>,
    pub session_id: Option<String>,
    pub return_to: Option<String>,
}

/// Why a connect flow could not go on; each becomes a page for the visitor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// 404: the flow's settings are missing.
    #[error("the {flow} flow is not configured: set {missing}")]
    NotConfigured { flow: &'static str, missing: String },
    /// 400: the request itself is wrong (e.g. `return_to` outside the allowlist).
    #[error("{0}")]
    BadRequest(String),
    /// 400: the link was used already or has expired; the visitor may start again.
    #[error("this authorization has expired or was already used")]
    Stale { restart: String },
    /// 400: a `state` that this service did not make.
    #[error("the state does not come from this service")]
    Forged,
    /// 502/504: X refused or failed; `cause` is for the operator's log, `gateway_timeout` picks 504.
    #[error("{cause}")]
    Upstream {
        cause: String,
        gateway_timeout: bool,
    },
    #[error("{0}")]
    Store(String),
    /// 503: `MAX_PENDING_AUTHORIZATIONS` flows are waiting for their visitors already.
    #[error("too many connect flows are waiting for their visitors")]
    Busy,
}

impl From<StoreError> for ConnectError {
    fn from(e: StoreError) -> Self {
        ConnectError::Store(e.to_string())
    }
}

/// A finished flow: the event to store and where the visitor goes.
#[derive(Debug)]
pub struct Finished {
    pub event: NewEvent,
    pub outcome: Outcome,
    pub username: Option<String>,
    pub return_to: Option<String>,
    /// The connected X account's id (none when the visitor refused).
    pub x_user_id: Option<String>,
    /// The X Activity API subscriptions created for the connected account (`X_ACTIVITY_EVENTS`),
    /// kept with the account's link; empty when none were made.
    pub subscription_ids: Vec<String>,
}

pub struct Connect {
    x: XClient,
    /// Flows waiting for their visitor, where every replica finds them.
    pending: Arc<dyn PendingAuthorizations>,
    config: ConnectConfig,
    state_key: [u8; 32],
    /// `X_WEBHOOK_ID`, or the id looked up at X the first time it was needed.
    webhook_id: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Parses X's form-encoded token answers (`oauth_token=…&oauth_token_secret=…`).
fn form_fields(body: &[u8]) -> Map<String, Value> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A short description of a failed exchange for the operator's log. X's bodies never carry our
/// secrets; we keep at most 300 characters of them.
fn cause(step: &str, answer: &XAnswer) -> String {
    let body = String::from_utf8_lossy(&answer.body);
    let hint = if body.contains("415") || body.contains("Callback URL not approved") {
        " (the callback URL is not registered: add {PUBLIC_URL}/callback to the app's Callback URI list)"
    } else if body.contains("453") {
        " (the app's plan does not include this endpoint)"
    } else if answer.status == 401 {
        " (X rejected the app's keys or the one-time code)"
    } else {
        ""
    };
    format!(
        "{step}: X answered HTTP {}{hint}: {}",
        answer.status,
        body.chars().take(300).collect::<String>()
    )
}

fn transport(step: &str, e: TransportError) -> ConnectError {
    ConnectError::Upstream {
        cause: format!("{step}: {e}"),
        gateway_timeout: matches!(e, TransportError::Timeout(_)),
    }
}

impl Connect {
    pub fn new(
        x: XClient,
        pending: Arc<dyn PendingAuthorizations>,
        config: ConnectConfig,
        secret: &SecretString,
    ) -> Self {
        // The state MAC key is derived from SECRET, so every replica recognises every state.
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("any key length");
        mac.update(b"tracardi-twitter connect state v1");
        let webhook_id = tokio::sync::OnceCell::new_with(
            config
                .activity
                .as_ref()
                .and_then(|activity| activity.webhook_id.clone()),
        );
        Self {
            x,
            pending,
            config,
            state_key: mac.finalize().into_bytes().into(),
            webhook_id,
        }
    }

    fn callback_url(&self) -> Option<String> {
        self.config
            .public_url
            .as_ref()
            .map(|url| format!("{url}/callback"))
    }

    /// Checks the visitor's parameters: ids short and plain, `return_to` on an allowed origin.
    pub fn check_visitor(&self, visitor: Visitor) -> Result<Visitor, ConnectError> {
        for (name, value) in [
            ("profile_id", &visitor.profile_id),
            ("session_id", &visitor.session_id),
        ] {
            if let Some(value) = value
                && (value.is_empty()
                    || value.chars().count() > 128
                    || value.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(ConnectError::BadRequest(format!(
                    "{name} must be 1 to 128 characters without spaces (a Tracardi id)"
                )));
            }
        }
        if let Some(return_to) = &visitor.return_to {
            let origin = url::Url::parse(return_to)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.origin().ascii_serialization());
            let allowed = origin.is_some_and(|o| self.config.return_to_allowlist.contains(&o));
            if !allowed {
                return Err(ConnectError::BadRequest(
                    "return_to must be an absolute URL on an origin listed in RETURN_TO_ALLOWLIST"
                        .into(),
                ));
            }
        }
        Ok(visitor)
    }

    /// Starts a flow: returns the URL of X's authorize page to send the visitor to. A flow that
    /// is not set up says so before anything the visitor sent is judged: the operator has
    /// something to fix, whatever the address holds.
    pub async fn start(&self, flow: Flow, visitor: Visitor) -> Result<String, ConnectError> {
        match flow {
            Flow::OAuth1 => self.start_oauth1(visitor).await,
            Flow::OAuth2 => self.start_oauth2(visitor).await,
        }
    }

    /// Checks the visitor, and that there is room for one more waiting flow: each is a row on
    /// disk until its visitor comes back or it expires, so a flood of starts is bounded
    /// (checked before X is asked for anything).
    async fn admit(&self, visitor: Visitor) -> Result<Visitor, ConnectError> {
        let visitor = self.check_visitor(visitor)?;
        if self.pending.live().await? >= self.config.max_pending {
            return Err(ConnectError::Busy);
        }
        Ok(visitor)
    }

    fn context(flow: Flow, visitor: &Visitor) -> Value {
        json!({
            "flow": flow.as_str(),
            "profile_id": visitor.profile_id,
            "session_id": visitor.session_id,
            "return_to": visitor.return_to,
        })
    }

    /// Finishes a flow this service started. `None`: the redirect belongs to no flow of ours
    /// (it is forwarded to Tracardi as it is).
    pub async fn finish(&self, redirect: &Redirect) -> Option<Result<Finished, ConnectError>> {
        let param = |name: &str| redirect.params.get(name).map(String::as_str);
        let key = match redirect.flow {
            // Without an OAuth 1.0a app this service starts no such flow: nothing to look up
            // (which spares every forwarded callback a round trip to the store).
            Flow::OAuth1 if self.config.oauth1.is_none() => return None,
            Flow::OAuth1 => format!("oauth1:{}", param("oauth_token").or(param("denied"))?),
            Flow::OAuth2 => {
                let state = param("state")?;
                match self.state_kind(state) {
                    StateKind::Foreign => return None,
                    StateKind::Forged => return Some(Err(ConnectError::Forged)),
                    StateKind::Ours => format!("oauth2:{state}"),
                }
            }
        };
        let taken = match self.pending.take(key.clone()).await {
            Ok(taken) => taken,
            Err(e) => return Some(Err(e.into())),
        };
        let (context, secret) = match taken {
            // Not started here: an OAuth 1.0a token of someone else's flow.
            Taken::Unknown if redirect.flow == Flow::OAuth1 => return None,
            // A state of ours that the store no longer knows: it expired and was pruned.
            Taken::Unknown => return Some(Err(self.stale(redirect.flow, &Value::Null))),
            Taken::Used { context } | Taken::Expired { context } => {
                return Some(Err(self.stale(redirect.flow, &context)));
            }
            Taken::Pending { context, secret } => (context, secret),
        };
        let visitor = Visitor {
            profile_id: context["profile_id"].as_str().map(str::to_owned),
            session_id: context["session_id"].as_str().map(str::to_owned),
            return_to: context["return_to"].as_str().map(str::to_owned),
        };
        if redirect.outcome == Outcome::Denied {
            let mut properties = Map::new();
            properties.insert("flow".into(), redirect.flow.as_str().into());
            for name in ["error", "error_description"] {
                if let Some(value) = param(name) {
                    properties.insert(name.into(), value.into());
                }
            }
            return Some(Ok(Finished {
                event: self.event(
                    &key,
                    "denied",
                    crate::callback::DENIED,
                    properties,
                    &visitor,
                ),
                outcome: Outcome::Denied,
                username: None,
                return_to: visitor.return_to,
                x_user_id: None,
                subscription_ids: Vec::new(),
            }));
        }
        let account = match redirect.flow {
            Flow::OAuth1 => {
                self.exchange_oauth1(&key, &secret, param("oauth_verifier")?)
                    .await
            }
            Flow::OAuth2 => {
                self.exchange_oauth2(&secret, param("code")?, visitor.profile_id.as_deref())
                    .await
            }
        };
        Some(account.map(|account| {
            let username = account.username.clone();
            let x_user_id = account.id.clone();
            let mut properties = Map::new();
            properties.insert("flow".into(), redirect.flow.as_str().into());
            properties.insert("user_id".into(), account.id.into());
            properties.insert("username".into(), account.username.into());
            properties.insert("name".into(), account.name.into());
            let subscription_ids = match &account.subscriptions {
                Some(subscriptions) => {
                    properties.insert("activity_subscriptions".into(), subscriptions.to_json());
                    subscriptions.ids()
                }
                None => Vec::new(),
            };
            Finished {
                event: self.event(&key, "connected", CONNECTED, properties, &visitor),
                outcome: Outcome::Granted,
                username: Some(username),
                return_to: visitor.return_to,
                x_user_id: Some(x_user_id),
                subscription_ids,
            }
        }))
    }

    fn stale(&self, flow: Flow, context: &Value) -> ConnectError {
        let mut restart = format!("/authorize?flow={}", flow.as_str());
        for name in ["profile_id", "session_id", "return_to"] {
            if let Some(value) = context[name].as_str() {
                restart.push_str(&format!("&{name}={}", oauth1::encode(value)));
            }
        }
        ConnectError::Stale { restart }
    }

    fn event(
        &self,
        key: &str,
        outcome: &str,
        event_type: &str,
        properties: Map<String, Value>,
        visitor: &Visitor,
    ) -> NewEvent {
        let id =
            uuid::Uuid::new_v5(&ID_NAMESPACE, format!("{outcome}|{key}").as_bytes()).to_string();
        new_event(
            id,
            event_type,
            properties,
            visitor.profile_id.clone(),
            visitor.session_id.clone(),
            now_millis(),
        )
    }
}

struct Account {
    id: String,
    username: String,
    name: String,
    /// What subscribing it to `X_ACTIVITY_EVENTS` gave (OAuth 2.0 flows, when set).
    subscriptions: Option<Subscriptions>,
}

fn account(step: &str, answer: &XAnswer) -> Result<Account, ConnectError> {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let data = &body["data"];
    match (
        answer.status,
        data["id"].as_str(),
        data["username"].as_str(),
    ) {
        (200, Some(id), Some(username)) => Ok(Account {
            id: id.to_owned(),
            username: username.to_owned(),
            name: data["name"].as_str().unwrap_or_default().to_owned(),
            subscriptions: None,
        }),
        _ => Err(ConnectError::Upstream {
            cause: cause(step, answer),
            gateway_timeout: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc_7636_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn connect(allow: &[&str]) -> Connect {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteOutbox::open(dir.path()).unwrap();
        let config = ConnectConfig {
            public_url: Some("https://tt.example".into()),
            oauth1: None,
            oauth2: None,
            return_to_allowlist: allow.iter().map(|s| (*s).to_owned()).collect(),
            ttl: std::time::Duration::from_secs(600),
            max_pending: 10_000,
            activity: None,
        };
        let x = XClient::new(&crate::config::TwitterConfig {
            api_url: "http://127.0.0.1:9".into(),
            timeout: std::time::Duration::from_secs(1),
        });
        Connect::new(x, Arc::new(store), config, &SecretString::from("secret"))
    }

    #[tokio::test]
    async fn states_carry_their_own_mac() {
        let c = connect(&[]);
        let state = c.new_state();
        assert!(matches!(c.state_kind(&state), StateKind::Ours));
        let mut forged = state.clone();
        forged.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
        assert!(matches!(c.state_kind(&forged), StateKind::Forged));
        assert!(matches!(
            c.state_kind("someone-elses-state"),
            StateKind::Foreign
        ));
    }

    #[tokio::test]
    async fn return_to_must_be_allowed() {
        let c = connect(&["https://shop.example"]);
        let visitor = |r: &str| Visitor {
            return_to: Some(r.into()),
            ..Visitor::default()
        };
        assert!(
            c.check_visitor(visitor("https://shop.example/thanks?x=1"))
                .is_ok()
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "javascript:alert(1)",
            "https://shop.example.evil.com/",
            "http://shop.example/",
        ] {
            assert!(c.check_visitor(visitor(bad)).is_err(), "{bad}");
        }
        let long_id = Visitor {
            profile_id: Some("x".repeat(129)),
            ..Visitor::default()
        };
        assert!(c.check_visitor(long_id).is_err());
        // Characters, as the message and the specification say, not bytes.
        let wide_id = Visitor {
            profile_id: Some("é".repeat(128)),
            ..Visitor::default()
        };
        assert!(c.check_visitor(wide_id).is_ok());
    }
}
