//! The X Activity API's subscriptions as the fake plays them (x-activity.md §2.1-§2.3):
//! `POST /2/activity/subscriptions` checks who asks (a user's OAuth 2.0 token and its scopes,
//! OAuth 1.0a user context, or the app's Bearer token for public events only), the filtered user
//! (private events only for the token's own user), the webhook, and duplicates; `DELETE` by id or
//! `?ids=`. Created subscriptions are answered in the three shapes X's documents show, in turn
//! (OpenAPI `data.subscription`, quickstart `data` and `data[]`), so that the service parses
//! each. [`FakeX::fail_subscriptions`] scripts failures per event type.

use super::webhooks::{Call, Caller, caller};
use super::*;

/// A subscription as the fake created it.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub event_type: String,
    pub user_id: String,
    pub tag: Option<String>,
    pub webhook_id: Option<String>,
    /// Who created it: `oauth2:<token>`, `oauth1:<access token>` or `app:<consumer key>`.
    pub created_by: String,
    pub deleted: bool,
}

/// How `POST /2/activity/subscriptions` fails for an event type, set with
/// [`FakeX::fail_subscriptions`].
#[derive(Clone, Debug)]
pub enum SubscriptionFailure {
    /// 503 with X's problem body.
    ServerError,
    /// 429 (the app's 15-minute window is used up).
    RateLimited,
}

impl FakeX {
    /// From now on, subscribing to `event_type` fails this way (`None`: works again).
    pub fn fail_subscriptions(&self, event_type: &str, failure: Option<SubscriptionFailure>) {
        let mut admin = self.shared.admin.lock().unwrap();
        match failure {
            Some(failure) => {
                admin
                    .subscription_failures
                    .insert(event_type.to_owned(), failure);
            }
            None => {
                admin.subscription_failures.remove(event_type);
            }
        }
    }

    /// Every subscription created, deleted ones included.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.admin.lock().unwrap().subscriptions.clone()
    }
}

fn forbidden(detail: &str) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        &serde_json::json!({"title": "Forbidden", "detail": detail, "type": "about:blank",
            "status": 403})
        .to_string(),
    )
}

fn invalid_request(detail: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"errors": [{"message": detail}], "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"})
        .to_string(),
    )
}

/// Answers the `/2/activity/subscriptions` routes; `None` for any other path.
pub(super) async fn answer(shared: &Shared, call: &Call<'_>) -> Option<Response> {
    use axum::http::Method;
    let (method, query, body) = (call.method, call.query, call.body);
    let rest = call.path.strip_prefix("/2/activity/subscriptions")?;
    let Some(caller) = caller(shared, call.authorization, call.signature_ok, call.oauth) else {
        return Some(problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED));
    };
    Some(match (method, rest) {
        (&Method::POST, "") => create(shared, &caller, body).await,
        (&Method::DELETE, "") => {
            let ids = form_param(query, "ids").unwrap_or_default();
            let ids: Vec<&str> = ids.split(',').filter(|i| !i.is_empty()).collect();
            if ids.is_empty() || ids.len() > 100 {
                return Some(invalid_request("ids must name 1 to 100 subscriptions"));
            }
            let mut admin = shared.admin.lock().unwrap();
            let mut data = Vec::new();
            for id in ids {
                let found = admin
                    .subscriptions
                    .iter_mut()
                    .find(|s| s.id == id && !s.deleted);
                let deleted = found.is_some();
                if let Some(found) = found {
                    found.deleted = true;
                }
                data.push(serde_json::json!({"subscription_id": id, "deleted": deleted}));
            }
            let total = admin.subscriptions.iter().filter(|s| !s.deleted).count();
            with_type(
                StatusCode::OK,
                JSON,
                &serde_json::json!({"data": data, "meta": {"total_subscriptions": total}})
                    .to_string(),
            )
        }
        (&Method::DELETE, id) if id.starts_with('/') => {
            let mut admin = shared.admin.lock().unwrap();
            let Some(found) = admin
                .subscriptions
                .iter_mut()
                .find(|s| s.id == id[1..] && !s.deleted)
            else {
                return Some(invalid_request(
                    "SubscriptionIdInvalid: no such subscription",
                ));
            };
            found.deleted = true;
            let total = admin.subscriptions.iter().filter(|s| !s.deleted).count();
            with_type(
                StatusCode::OK,
                JSON,
                &serde_json::json!({"data": {"deleted": true},
                    "meta": {"total_subscriptions": total}})
                .to_string(),
            )
        }
        _ => return None,
    })
}

async fn create(shared: &Shared, caller: &Caller, body: &str) -> Response {
    let request: serde_json::Value = match serde_json::from_str(body) {
        Ok(request) => request,
        Err(_) => return invalid_request("The body is not JSON"),
    };
    let event_type = request["event_type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user_id = request["filter"]["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !tracardi_twitter::twitter::activity::EVENT_TYPES.contains(&event_type.as_str()) {
        return invalid_request(&format!("event_type '{event_type}' is not valid"));
    }
    if user_id.is_empty() {
        return invalid_request("filter.user_id is required");
    }
    let tag = request["tag"].as_str().map(str::to_owned);
    if tag.as_ref().is_some_and(|t| t.is_empty() || t.len() > 200) {
        return invalid_request("tag must have 1 to 200 characters");
    }
    let webhook_id = request["webhook_id"].as_str().map(str::to_owned);
    let private = !tracardi_twitter::twitter::activity::is_public(&event_type);
    let scope = tracardi_twitter::twitter::activity::scope_for(&event_type);
    // Who asks, and whether X lets them subscribe this user to this type.
    let created_by = match caller {
        Caller::App(app) => {
            if private {
                return forbidden(&format!(
                    "{event_type} is a private event: it needs the filtered user's own OAuth 2.0 token"
                ));
            }
            format!("app:{}", app.consumer_key)
        }
        Caller::OAuth2User {
            token,
            scope: granted,
        } => {
            if !granted.split_whitespace().any(|s| s == scope) {
                return forbidden(&format!(
                    "Missing required OAuth 2.0 scope(s): {scope} (needed for {event_type})"
                ));
            }
            // Every token of the fake's connect flow belongs to its one account.
            if private && user_id != ACCOUNT_ID {
                return forbidden(
                    "filter.user_id must be the authenticated user for private events",
                );
            }
            format!("oauth2:{token}")
        }
        Caller::OAuth1User {
            user_id: own,
            access_token,
            ..
        } => {
            if private && &user_id != own {
                return forbidden(
                    "filter.user_id must be the authenticated user for private events",
                );
            }
            format!("oauth1:{access_token}")
        }
    };
    let failure = shared
        .admin
        .lock()
        .unwrap()
        .subscription_failures
        .get(&event_type)
        .cloned();
    match failure {
        Some(SubscriptionFailure::ServerError) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}"#,
            );
        }
        Some(SubscriptionFailure::RateLimited) => {
            return problem(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS);
        }
        None => {}
    }
    let mut admin = shared.admin.lock().unwrap();
    if let Some(id) = &webhook_id
        && !admin.webhooks.iter().any(|w| &w.id == id)
    {
        return invalid_request(&format!("WebhookIdInvalid: no webhook {id}"));
    }
    let duplicate = admin.subscriptions.iter().any(|s| {
        !s.deleted
            && s.event_type == event_type
            && s.user_id == user_id
            && s.webhook_id == webhook_id
    });
    if duplicate {
        return problem(
            StatusCode::CONFLICT,
            r#"{"title":"Conflict","detail":"DuplicateSubscriptionFailed: a subscription with this event_type and filter exists","type":"about:blank","status":409}"#,
        );
    }
    let subscription = Subscription {
        id: admin.next_id("1990000000000"),
        event_type,
        user_id,
        tag,
        webhook_id,
        created_by,
        deleted: false,
    };
    admin.subscriptions.push(subscription.clone());
    let total = admin.subscriptions.iter().filter(|s| !s.deleted).count();
    let item = serde_json::json!({
        "subscription_id": subscription.id,
        "event_type": subscription.event_type,
        "filter": {"user_id": subscription.user_id},
        "tag": subscription.tag,
        "webhook_id": subscription.webhook_id,
        "created_at": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    });
    // The three documented shapes, in turn.
    let body = match admin.subscriptions.len() % 3 {
        1 => serde_json::json!({"data": {"subscription": item}}),
        2 => serde_json::json!({"data": item}),
        _ => serde_json::json!({"data": [item], "meta": {"total_subscriptions": total}}),
    };
    with_type(StatusCode::OK, JSON, &body.to_string())
}
