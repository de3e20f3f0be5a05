//! X's V2 Webhooks API (`/2/webhooks`) and the X Activity API's subscriptions
//! (`/2/activity/subscriptions`), x-activity.md §1.2 and §2.1. As the rest of the client: no
//! redirect followed, the client's timeout, answers returned as received.
//!
//! Auth, as X's OpenAPI file lists it: the app-only Bearer token everywhere; OAuth 1.0a user
//! context as the alternative for registering, re-validating and deleting a webhook (list and
//! replay are Bearer only); a user's OAuth 2.0 token, or OAuth 1.0a user context, to subscribe.

use super::client::{TransportError, XClient, header_for};
use super::diagnosis::XAnswer;
use crate::oauth1;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// How a call is authenticated.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// A Bearer token: the app's (app-only) or a user's OAuth 2.0 token.
    Bearer(&'a SecretString),
    /// OAuth 1.0a user context: the app's keys and the account's token.
    OAuth1(oauth1::Keys<'a>),
}

impl std::fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Auth::Bearer(..)",
            Auth::OAuth1(_) => "Auth::OAuth1(..)",
        })
    }
}

/// One subscription to create (`POST /2/activity/subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription<'a> {
    pub event_type: &'a str,
    pub user_id: &'a str,
    pub tag: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
}

impl NewSubscription<'_> {
    /// The request body (X refuses properties it does not know: no nulls).
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "event_type": self.event_type,
            "filter": {"user_id": self.user_id},
        });
        if let Some(tag) = self.tag {
            body["tag"] = tag.into();
        }
        if let Some(webhook_id) = self.webhook_id {
            body["webhook_id"] = webhook_id.into();
        }
        body
    }
}

impl XClient {
    /// `endpoint` is the path's template (`/2/webhooks/{id}`): the metrics' label, never an id.
    async fn call(
        &self,
        method: reqwest::Method,
        endpoint: &'static str,
        path: &str,
        auth: Auth<'_>,
        body: Option<serde_json::Value>,
    ) -> Result<XAnswer, TransportError> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), &url);
        request = match auth {
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            // A JSON body is not part of an OAuth 1.0a signature; the query is (and is in `url`).
            Auth::OAuth1(keys) => request.header(
                "authorization",
                header_for(method.as_str(), &url, keys, &[]),
            ),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(endpoint, request).await
    }

    /// `POST /2/webhooks` `{"url"}`: X runs a CRC against the URL before answering.
    pub async fn register_webhook(
        &self,
        auth: Auth<'_>,
        url: &str,
    ) -> Result<XAnswer, TransportError> {
        self.call(
            reqwest::Method::POST,
            "/2/webhooks",
            "/2/webhooks",
            auth,
            Some(json!({ "url": url })),
        )
        .await
    }

    /// `GET /2/webhooks` (Bearer only), with every field.
    pub async fn list_webhooks(&self, bearer: &SecretString) -> Result<XAnswer, TransportError> {
        self.call(
            reqwest::Method::GET,
            "/2/webhooks",
            "/2/webhooks?webhook_config.fields=created_at,id,url,valid",
            Auth::Bearer(bearer),
            None,
        )
        .await
    }

    /// `PUT /2/webhooks/{id}`: X runs a CRC now; a pass re-enables the webhook.
    pub async fn validate_webhook(
        &self,
        auth: Auth<'_>,
        id: &str,
    ) -> Result<XAnswer, TransportError> {
        let path = format!("/2/webhooks/{}", oauth1::encode(id));
        self.call(reqwest::Method::PUT, "/2/webhooks/{id}", &path, auth, None)
            .await
    }

    /// `DELETE /2/webhooks/{id}`.
    pub async fn delete_webhook(
        &self,
        auth: Auth<'_>,
        id: &str,
    ) -> Result<XAnswer, TransportError> {
        let path = format!("/2/webhooks/{}", oauth1::encode(id));
        self.call(
            reqwest::Method::DELETE,
            "/2/webhooks/{id}",
            &path,
            auth,
            None,
        )
        .await
    }

    /// `POST /2/webhooks/replay` (Bearer only): X re-sends what it delivered or tried to deliver
    /// between the two times, `yyyymmddhhmm` in UTC, within the last 24 hours.
    pub async fn replay_webhook(
        &self,
        bearer: &SecretString,
        webhook_id: &str,
        from_date: &str,
        to_date: &str,
    ) -> Result<XAnswer, TransportError> {
        let body = json!({"webhook_id": webhook_id, "from_date": from_date, "to_date": to_date});
        self.call(
            reqwest::Method::POST,
            "/2/webhooks/replay",
            "/2/webhooks/replay",
            Auth::Bearer(bearer),
            Some(body),
        )
        .await
    }

    /// `POST /2/activity/subscriptions`.
    pub async fn create_subscription(
        &self,
        auth: Auth<'_>,
        subscription: &NewSubscription<'_>,
    ) -> Result<XAnswer, TransportError> {
        self.call(
            reqwest::Method::POST,
            "/2/activity/subscriptions",
            "/2/activity/subscriptions",
            auth,
            Some(subscription.body()),
        )
        .await
    }

    /// `DELETE /2/activity/subscriptions/{id}` for one id, `?ids=a,b` for several (1 to 100).
    pub async fn delete_subscriptions(
        &self,
        auth: Auth<'_>,
        ids: &[&str],
    ) -> Result<XAnswer, TransportError> {
        let (endpoint, path) = match ids {
            [one] => (
                "/2/activity/subscriptions/{id}",
                format!("/2/activity/subscriptions/{}", oauth1::encode(one)),
            ),
            many => (
                "/2/activity/subscriptions",
                format!(
                    "/2/activity/subscriptions?ids={}",
                    many.iter()
                        .map(|id| oauth1::encode(id).into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        };
        self.call(reqwest::Method::DELETE, endpoint, &path, auth, None)
            .await
    }
}

/// The id of the webhook registered for `url` in X's answer to `GET /2/webhooks`.
pub fn webhook_id_for(body: &serde_json::Value, url: &str) -> Option<String> {
    body["data"]
        .as_array()?
        .iter()
        .find(|w| w["url"].as_str() == Some(url))
        .and_then(|w| match &w["id"] {
            serde_json::Value::String(id) => Some(id.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// A webhook id as X's OpenAPI file writes it: 1 to 19 digits.
pub fn is_webhook_id(id: &str) -> bool {
    (1..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_bodies_leave_out_what_is_not_given() {
        let full = NewSubscription {
            event_type: "like.create",
            user_id: "42",
            tag: Some("tracardi:profile:p-1"),
            webhook_id: Some("1976325569252868099"),
        };
        assert_eq!(
            full.body(),
            json!({"event_type": "like.create", "filter": {"user_id": "42"},
                   "tag": "tracardi:profile:p-1", "webhook_id": "1976325569252868099"})
        );
        let bare = NewSubscription {
            tag: None,
            webhook_id: None,
            ..full
        };
        assert_eq!(
            bare.body(),
            json!({"event_type": "like.create", "filter": {"user_id": "42"}})
        );
    }

    #[test]
    fn webhook_ids_are_found_by_url() {
        let body = json!({"data": [
            {"id": "1", "url": "https://a.example/x/webhook", "valid": true},
            {"id": "2", "url": "https://b.example/x/webhook", "valid": false}
        ], "meta": {"result_count": 2}});
        assert_eq!(
            webhook_id_for(&body, "https://b.example/x/webhook").as_deref(),
            Some("2")
        );
        assert_eq!(webhook_id_for(&body, "https://c.example/x/webhook"), None);
        assert_eq!(webhook_id_for(&json!({"meta": {}}), "x"), None);
        assert!(is_webhook_id("1976325569252868099"));
        assert!(!is_webhook_id("") && !is_webhook_id("12a") && !is_webhook_id(&"1".repeat(20)));
    }
}
