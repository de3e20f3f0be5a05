//! Receiving: the CRC answer, and a signed delivery checked, read, routed to its profiles and
//! stored ([`XWebhook::receive`]) before X is answered.

use super::activity::{Activity, Body, read_body, types};
use super::signature::{crc_response_token, signature_matches};
use crate::callback::new_event;
use crate::config::{CrcKey, WebhookConfig};
use crate::delivery::DeliveryMonitor;
use crate::metrics::EventSource;
use crate::store::{
    AccountLinks, Appended, Millis, NewEvent, Outbox, StoreError, WebhookMark, now_millis,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// X's bodies are a few KB; this leaves room for a DM with many entities or a batch.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1 << 20;

/// Bodies larger than this are checked and read on the blocking pool: an HMAC and a JSON parse
/// of a megabyte take milliseconds that an async worker owes to other requests.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// The longest `crc_token` answered; X's are a few dozen characters.
pub const MAX_CRC_TOKEN_BYTES: usize = 1024;

/// How often, at most, one replica writes "X used the webhook" to the store.
const MARK_EVERY_MS: Millis = 10_000;

/// Fixes the event ids of X activity: UUIDv5 names under this namespace.
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("3c7d9a61-5e2b-4f08-b1a4-8e6f0c2d7b95");

/// The two signature headers (x-activity.md §1.5, §7.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Signatures<'a> {
    /// `x-twitter-webhooks-signature`.
    pub legacy: Option<&'a str>,
    /// `x-twitter-webhooks-signature-oauth2`.
    pub oauth2: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No secret to answer or check with: the webhook is not set up here.
    #[error("the X webhook is not configured: set {missing}")]
    NotConfigured { missing: &'static str },
    #[error("the crc_token is missing or empty")]
    NoCrcToken,
    #[error("the crc_token is longer than {MAX_CRC_TOKEN_BYTES} bytes")]
    CrcTokenTooLong,
    #[error("the request carries no X webhook signature")]
    Unsigned,
    #[error("the X webhook signature does not match the body")]
    BadSignature,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What became of a delivery.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// Events stored now.
    pub stored: usize,
    /// Events stored before (a retry, a replay, the same post through the other API).
    pub repeats: usize,
    /// The body was not understood and is kept as a dead letter.
    pub dead_letter: bool,
    /// The body was X's notice that a replay job ended.
    pub replay_notice: bool,
}

/// Deletes the X Activity API subscriptions of an account that revoked the app, with the app's
/// Bearer token (`TWITTER_BEARER_TOKEN`).
#[derive(Clone)]
pub struct SubscriptionCleanup {
    pub x: crate::twitter::client::XClient,
    pub bearer: secrecy::SecretString,
}

impl std::fmt::Debug for SubscriptionCleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionCleanup(..)")
    }
}

/// The receiving end of X's webhook.
#[derive(Debug)]
pub struct XWebhook {
    config: WebhookConfig,
    outbox: Arc<dyn Outbox>,
    links: Arc<dyn AccountLinks>,
    cleanup: Option<SubscriptionCleanup>,
    /// When this replica last wrote each mark (Unix ms), to write at most every few seconds.
    marked: [AtomicI64; 2],
}

/// A signed body, read: what it says, or (not JSON) its text.
enum Read {
    Activities(Vec<Activity>),
    ReplayNotice(Value),
    /// Not a shape this service knows, or not JSON: kept whole as a dead letter, under an id
    /// made from the raw bytes (a repeat is the same letter).
    DeadLetter {
        body: Value,
        reason: String,
        id: String,
    },
}

impl XWebhook {
    pub fn new(
        config: WebhookConfig,
        outbox: Arc<dyn Outbox>,
        links: Arc<dyn AccountLinks>,
        cleanup: Option<SubscriptionCleanup>,
    ) -> Self {
        Self {
            config,
            outbox,
            links,
            cleanup,
            marked: [AtomicI64::new(0), AtomicI64::new(0)],
        }
    }

    pub fn links(&self) -> &Arc<dyn AccountLinks> {
        &self.links
    }

    /// The `response_token` for X's challenge (x-activity.md §1.4).
    pub fn answer_crc(&self, crc_token: Option<&str>) -> Result<String, WebhookError> {
        let token = crc_token
            .filter(|t| !t.is_empty())
            .ok_or(WebhookError::NoCrcToken)?;
        if token.len() > MAX_CRC_TOKEN_BYTES {
            return Err(WebhookError::CrcTokenTooLong);
        }
        let key = match self.config.crc_key {
            CrcKey::Consumer => {
                self.config
                    .consumer_secret
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured {
                        missing: "TWITTER_CONSUMER_SECRET",
                    })?
            }
            CrcKey::Client => {
                self.config
                    .client_secret
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured {
                        missing: "TWITTER_CLIENT_SECRET",
                    })?
            }
        };
        let answer = crc_response_token(key.expose_secret().as_bytes(), token);
        tracing::info!(
            crc_key = self.config.crc_key.as_str(),
            "answered X's webhook CRC"
        );
        self.mark(WebhookMark::Crc);
        crate::metrics::x_webhook_crc();
        Ok(answer)
    }

    /// Whether a signature header proves the body is X's: each header present is checked with
    /// the app's secrets, its own first (the OAuth 2.0 client secret for `-oauth2`, the
    /// consumer secret for the other); one match is enough. X's documents disagree on which
    /// secret signs (x-activity.md §7.1); both are ours, so either proves the sender.
    fn check_signature(&self, body: &[u8], signatures: Signatures<'_>) -> Result<(), WebhookError> {
        let consumer = self.config.consumer_secret.as_ref();
        let client = self.config.client_secret.as_ref();
        if consumer.is_none() && client.is_none() {
            return Err(WebhookError::NotConfigured {
                missing: "TWITTER_CONSUMER_SECRET (or TWITTER_CLIENT_SECRET)",
            });
        }
        if signatures.legacy.is_none() && signatures.oauth2.is_none() {
            crate::metrics::x_webhook_signature_failure();
            return Err(WebhookError::Unsigned);
        }
        let checks = [
            (signatures.oauth2, [client, consumer]),
            (signatures.legacy, [consumer, client]),
        ];
        for (header, keys) in checks {
            let Some(header) = header else { continue };
            for key in keys.into_iter().flatten() {
                if signature_matches(key.expose_secret().as_bytes(), body, header) {
                    return Ok(());
                }
            }
        }
        crate::metrics::x_webhook_signature_failure();
        Err(WebhookError::BadSignature)
    }

    fn check_and_read(&self, raw: &[u8], signatures: Signatures<'_>) -> Result<Read, WebhookError> {
        self.check_signature(raw, signatures)?;
        let dead_letter = |body: Value, reason: String| {
            // Hashed here, with the parse: on the blocking pool for a large body.
            let digest = <sha2::Sha256 as sha2::Digest>::digest(raw);
            let id = event_id(&format!("unknown|{}", URL_SAFE_NO_PAD.encode(digest)));
            Read::DeadLetter { body, reason, id }
        };
        Ok(match serde_json::from_slice::<Value>(raw) {
            Ok(json) => match read_body(&json) {
                Body::Activities(activities) => Read::Activities(activities),
                Body::ReplayNotice(notice) => Read::ReplayNotice(notice),
                Body::Unknown { reason } => dead_letter(json, reason),
            },
            Err(_) => dead_letter(
                Value::String(String::from_utf8_lossy(raw).into_owned()),
                "the body is not JSON".into(),
            ),
        })
    }

    /// A delivery from X: nothing is stored unless a signature matches; then every activity in
    /// it is stored as an event (a body not understood, as a dead letter) before this returns.
    pub async fn receive(
        self: &Arc<Self>,
        body: axum::body::Bytes,
        signatures: Signatures<'_>,
        delivery: &DeliveryMonitor,
    ) -> Result<Received, WebhookError> {
        let read = if body.len() <= INLINE_BODY_BYTES {
            self.check_and_read(&body, signatures)?
        } else {
            let (this, legacy, oauth2) = (
                self.clone(),
                signatures.legacy.map(str::to_owned),
                signatures.oauth2.map(str::to_owned),
            );
            tokio::task::spawn_blocking(move || {
                let signatures = Signatures {
                    legacy: legacy.as_deref(),
                    oauth2: oauth2.as_deref(),
                };
                this.check_and_read(&body, signatures)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("reading the delivery stopped: {e}")))??
        };
        let now = now_millis();
        let mut received = Received::default();
        match read {
            Read::ReplayNotice(notice) => {
                tracing::info!(
                    job_id = %notice["job_id"],
                    job_state = %notice["job_state"],
                    description = %notice["job_state_description"],
                    "X finished a webhook replay job"
                );
                received.replay_notice = true;
            }
            Read::DeadLetter { body, reason, id } => {
                self.store_dead_letter(id, body, &reason, now, &mut received)
                    .await?;
            }
            Read::Activities(activities) => {
                for activity in activities {
                    let event_type = activity.event_type;
                    crate::metrics::x_webhook_delivery(event_type);
                    let event = self.event(activity, now).await?;
                    match self.outbox.append(event).await? {
                        Appended::New => {
                            crate::metrics::event_stored(EventSource::XWebhook);
                            received.stored += 1;
                        }
                        Appended::AlreadyStored => received.repeats += 1,
                    }
                }
                if received.stored > 0 {
                    delivery.wake();
                }
            }
        }
        tracing::info!(
            stored = received.stored,
            repeats = received.repeats,
            dead_letter = received.dead_letter,
            "X webhook delivery recorded"
        );
        self.mark(WebhookMark::Delivery);
        Ok(received)
    }

    async fn store_dead_letter(
        &self,
        id: String,
        body: Value,
        reason: &str,
        now: Millis,
        received: &mut Received,
    ) -> Result<(), WebhookError> {
        let mut properties = Map::new();
        properties.insert("x_event_type".into(), "unknown".into());
        properties.insert("reason".into(), reason.into());
        properties.insert("x_payload".into(), body);
        let event = new_event(id, types::OTHER, properties, None, None, now);
        tracing::warn!(event_id = %event.id, %reason, "X webhook body kept as a dead letter");
        self.outbox
            .append_dead(
                event,
                format!("not understood: {reason}; kept as X sent it"),
            )
            .await?;
        received.dead_letter = true;
        Ok(())
    }

    /// The activity's event, on its profile: the one its subscription was made for (`tag`),
    /// else the one linked to the subscribed account, else the one linked to whoever acted,
    /// else none (profile-less, with the X ids in its properties).
    async fn event(&self, mut activity: Activity, now: Millis) -> Result<NewEvent, StoreError> {
        let mut profile = activity.tagged_profile.clone();
        if let Some(user) = &activity.revokes
            && let Some(link) = self.links.revoke_link(user).await?
        {
            tracing::info!(x_user_id = %user, "the account revoked the app: its link is marked revoked");
            self.delete_subscriptions(link.subscription_ids);
            profile.get_or_insert(link.profile_id);
        }
        let needs_username = !activity.properties.contains_key("account_username");
        let account = activity
            .account_id
            .as_deref()
            .filter(|_| profile.is_none() || needs_username);
        let actor = activity.actor_id.as_deref().filter(|_| profile.is_none());
        // Looked up together (one round trip to Redis), the actor's even when the account's
        // link makes it unnecessary.
        let wanted: Vec<&str> = account.into_iter().chain(actor).collect();
        let mut found = if wanted.is_empty() {
            Vec::new().into_iter()
        } else {
            self.links.find_links(&wanted).await?.into_iter()
        };
        let account_link = account.and_then(|_| found.next()).flatten();
        let actor_link = actor.and_then(|_| found.next()).flatten();
        if let Some(link) = account_link {
            if let (true, Some(username)) = (needs_username, link.username) {
                activity
                    .properties
                    .insert("account_username".into(), username.into());
            }
            profile.get_or_insert(link.profile_id);
        }
        if profile.is_none() {
            profile = actor_link.map(|link| link.profile_id);
        }
        Ok(new_event(
            event_id(&activity.key),
            activity.event_type,
            activity.properties,
            profile,
            None,
            now,
        ))
    }

    /// The subscriptions of an account that revoked the app are of no use any more (X sends
    /// nothing for a revoked token): deleted off the request's path, as X's documents advise.
    fn delete_subscriptions(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let Some(cleanup) = self.cleanup.clone() else {
            tracing::info!(
                subscriptions = ids.len(),
                "a revoked account's X Activity API subscriptions stay: set TWITTER_BEARER_TOKEN to delete them"
            );
            return;
        };
        tokio::spawn(async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let auth = crate::twitter::webhooks::Auth::Bearer(&cleanup.bearer);
            match cleanup.x.delete_subscriptions(auth, &ids).await {
                Ok(answer) if answer.status == 200 => {
                    tracing::info!(
                        subscriptions = ids.len(),
                        "a revoked account's subscriptions were deleted"
                    )
                }
                Ok(answer) => tracing::warn!(
                    status = answer.status,
                    "X refused to delete a revoked account's subscriptions"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "a revoked account's subscriptions could not be deleted")
                }
            }
        });
    }

    /// Notes in the store, at most every few seconds per replica and off the request's path,
    /// that X used the webhook: `/outbox` shows it for every replica.
    fn mark(&self, mark: WebhookMark) {
        let now = now_millis();
        let last = &self.marked[mark as usize];
        let before = last.load(Ordering::Relaxed);
        if now - before < MARK_EVERY_MS
            || last
                .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let links = self.links.clone();
        tokio::spawn(async move {
            if let Err(e) = links.mark_webhook(mark).await {
                tracing::warn!(error = %e, mark = mark.as_str(), "could not note the webhook's use");
            }
        });
    }
}

/// The event id of an activity key.
pub fn event_id(key: &str) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes()).to_string()
}

/// What `/outbox` shows of X's webhook, over every replica.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookStatus {
    /// When X's last signed delivery was accepted (RFC 3339), if ever.
    pub last_delivery: Option<String>,
    /// When X's last challenge-response check was answered (RFC 3339), if ever.
    pub last_crc: Option<String>,
    /// Set when X has not checked the webhook for a day: it may have marked it invalid.
    pub warning: Option<String>,
}

impl WebhookStatus {
    pub fn of(seen: &crate::store::WebhookSeen, now: Millis) -> Self {
        const DAY_MS: Millis = 24 * 3600 * 1000;
        let iso = |at: Option<Millis>| at.map(crate::callback::rfc3339);
        Self {
            last_delivery: iso(seen.last_delivery),
            last_crc: iso(seen.last_crc),
            warning: seen.last_crc.filter(|crc| now - crc > DAY_MS).map(|crc| {
                format!(
                    "X has not checked the webhook since {}: X marks a webhook invalid after 28 \
                     hours without a passed check and then sends nothing; see `tracardi-twitter \
                     webhook list`",
                    crate::callback::rfc3339(crc)
                )
            }),
        }
    }
}
