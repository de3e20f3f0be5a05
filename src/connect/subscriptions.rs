//! X Activity API subscriptions for an account that connects through OAuth 2.0
//! (`X_ACTIVITY_EVENTS`): one per event type, made with the visitor's token, tagged with the
//! visitor's Tracardi profile, delivered to the service's webhook. A failed subscription never
//! fails the connection: it is reported on the event and in the log.

use super::*;
use crate::config::ActivityConfig;
use crate::twitter::activity;
use crate::twitter::webhooks::{Auth, NewSubscription, webhook_id_for};

/// What subscribing a connected account gave, per event type, in `X_ACTIVITY_EVENTS`' order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    pub created: Vec<Created>,
    /// Event type and why it failed (X's answer in one line, or why X was not reached).
    pub failed: Vec<(String, String)>,
}

/// A subscription X has for the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub event_type: String,
    /// `None`: X answered that the subscription exists already (its id is not in that answer).
    pub subscription_id: Option<String>,
}

impl Subscriptions {
    /// The ids of the subscriptions created now.
    pub fn ids(&self) -> Vec<String> {
        self.created
            .iter()
            .filter_map(|c| c.subscription_id.clone())
            .collect()
    }

    /// The `activity_subscriptions` property of the `twitter-account-connected` event.
    pub fn to_json(&self) -> Value {
        let created: Vec<Value> = self
            .created
            .iter()
            .map(|c| {
                let mut item = json!({
                    "event_type": c.event_type,
                    "subscription_id": c.subscription_id,
                });
                if c.subscription_id.is_none() {
                    item["already_subscribed"] = true.into();
                }
                item
            })
            .collect();
        let failed: Vec<Value> = self
            .failed
            .iter()
            .map(|(event_type, error)| json!({"event_type": event_type, "error": error}))
            .collect();
        json!({"created": created, "failed": failed})
    }
}

/// How one `POST /2/activity/subscriptions` ended.
fn outcome(
    event_type: &str,
    answer: Result<XAnswer, TransportError>,
) -> Result<Option<String>, String> {
    let answer = answer.map_err(|e| e.to_string())?;
    if (200..300).contains(&answer.status) {
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        return activity::created_subscription_id(&body)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "X answered HTTP {} without a subscription id for {event_type}",
                    answer.status
                )
            });
    }
    if activity::is_duplicate_subscription(answer.status, &answer.body) {
        return Ok(None);
    }
    Err(format!(
        "X answered HTTP {}: {}",
        answer.status,
        activity::error_summary(&answer.body)
    ))
}

impl Connect {
    /// `X_WEBHOOK_ID`, or the id X lists for `{PUBLIC_URL}/x/webhook` (asked once with the
    /// Bearer token, then kept; a failed look-up is tried again at the next connection).
    async fn webhook_id(&self, activity: &ActivityConfig) -> Result<String, String> {
        self.webhook_id
            .get_or_try_init(|| async {
                let Some(bearer) = &activity.bearer_token else {
                    return Err(
                        "X_WEBHOOK_ID is not set and there is no TWITTER_BEARER_TOKEN to look it up"
                            .to_owned(),
                    );
                };
                let step = "looking up the webhook's id (GET /2/webhooks)";
                let answer = self
                    .x
                    .list_webhooks(bearer)
                    .await
                    .map_err(|e| format!("{step}: {e}"))?;
                if answer.status != 200 {
                    return Err(format!(
                        "{step}: X answered HTTP {}: {}",
                        answer.status,
                        activity::error_summary(&answer.body)
                    ));
                }
                let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                webhook_id_for(&body, &activity.webhook_url).ok_or_else(|| {
                    format!(
                        "{step}: no webhook is registered for {}: run `tracardi-twitter webhook register`",
                        activity.webhook_url
                    )
                })
            })
            .await
            .cloned()
    }

    /// Subscribes the account that just connected to every type of `X_ACTIVITY_EVENTS`, at
    /// once, each call bounded by the client's timeout. `None` when no types are set.
    pub(super) async fn subscribe(
        &self,
        token: &SecretString,
        user_id: &str,
        profile_id: Option<&str>,
    ) -> Option<Subscriptions> {
        let activity = self.config.activity.as_ref()?;
        let mut report = Subscriptions::default();
        let webhook_id = match self.webhook_id(activity).await {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(
                    user_id,
                    error = %error,
                    "no activity subscription was made for the connected account"
                );
                report.failed = activity
                    .event_types
                    .iter()
                    .map(|t| (t.clone(), error.clone()))
                    .collect();
                return Some(report);
            }
        };
        let tag = profile_id.map(activity::profile_tag);
        let mut calls = tokio::task::JoinSet::new();
        for (index, event_type) in activity.event_types.iter().enumerate() {
            let (x, token, event_type) = (self.x.clone(), token.clone(), event_type.clone());
            let (user_id, tag, webhook_id) = (user_id.to_owned(), tag.clone(), webhook_id.clone());
            calls.spawn(async move {
                let subscription = NewSubscription {
                    event_type: &event_type,
                    user_id: &user_id,
                    tag: tag.as_deref(),
                    webhook_id: Some(&webhook_id),
                };
                let answer = x
                    .create_subscription(Auth::Bearer(&token), &subscription)
                    .await;
                (index, outcome(&event_type, answer))
            });
        }
        let mut outcomes: Vec<(usize, Result<Option<String>, String>)> =
            Vec::with_capacity(activity.event_types.len());
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(done) => outcomes.push(done),
                Err(e) => tracing::error!(error = %e, "an activity subscription call panicked"),
            }
        }
        outcomes.sort_by_key(|(index, _)| *index);
        for (index, result) in outcomes {
            let event_type = activity.event_types[index].clone();
            match result {
                Ok(subscription_id) => report.created.push(Created {
                    event_type,
                    subscription_id,
                }),
                Err(error) => {
                    tracing::warn!(
                        user_id,
                        event_type = %event_type,
                        error = %error,
                        "X refused an activity subscription for the connected account; it is retried when the account connects again"
                    );
                    report.failed.push((event_type, error));
                }
            }
        }
        tracing::info!(
            user_id,
            created = report.created.len(),
            failed = report.failed.len(),
            "activity subscriptions for the connected account"
        );
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn answer(status: u16, body: &str) -> Result<XAnswer, TransportError> {
        Ok(XAnswer {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn outcomes_of_a_create() {
        assert_eq!(
            outcome(
                "like.create",
                answer(200, r#"{"data":{"subscription_id":"9"}}"#)
            ),
            Ok(Some("9".into()))
        );
        assert_eq!(
            outcome(
                "like.create",
                answer(
                    409,
                    r#"{"title":"Conflict","detail":"Duplicate subscription"}"#
                )
            ),
            Ok(None)
        );
        let error = outcome(
            "dm.received",
            answer(
                403,
                r#"{"title":"Forbidden","detail":"Missing scope dm.read","status":403}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(
            error,
            "X answered HTTP 403: Forbidden: Missing scope dm.read"
        );
        let error = outcome("dm.received", answer(200, "{}")).unwrap_err();
        assert!(error.contains("without a subscription id"), "{error}");
        let error = outcome(
            "dm.received",
            Err(TransportError::Timeout(std::time::Duration::from_secs(2))),
        )
        .unwrap_err();
        assert!(error.contains("did not answer"), "{error}");
    }

    #[test]
    fn the_event_property_lists_created_and_failed() {
        let report = Subscriptions {
            created: vec![
                Created {
                    event_type: "like.create".into(),
                    subscription_id: Some("9".into()),
                },
                Created {
                    event_type: "post.mention.create".into(),
                    subscription_id: None,
                },
            ],
            failed: vec![("dm.received".into(), "X answered HTTP 500: oops".into())],
        };
        assert_eq!(report.ids(), ["9"]);
        assert_eq!(
            report.to_json(),
            json!({
                "created": [
                    {"event_type": "like.create", "subscription_id": "9"},
                    {"event_type": "post.mention.create", "subscription_id": null, "already_subscribed": true}
                ],
                "failed": [{"event_type": "dm.received", "error": "X answered HTTP 500: oops"}]
            })
        );
    }
}
