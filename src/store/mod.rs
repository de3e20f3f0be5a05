//! The durable outbox: events recorded before a browser is told "done", until Tracardi has them.
//!
//! The trait is small on purpose so that more than one backend fits it: the embedded SQLite
//! file (default, one replica) and, later, Redis (several replicas). Every state change is
//! idempotent by event id, so a repeated redirect or a repeated delivery changes nothing.

pub mod redis;
pub mod sqlite;

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the store's clock unit.
pub type Millis = i64;

/// The store's clock: the local one, or in tests one that moves only when told.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that shows `start` until [`Clock::set`] moves it.
    pub fn manual(start: Millis) -> Self {
        Self {
            manual: Some(std::sync::Arc::new(start.into())),
        }
    }

    pub fn set(&self, now: Millis) {
        if let Some(manual) = &self.manual {
            manual.store(now, std::sync::atomic::Ordering::SeqCst);
        }
    }

    pub fn now(&self) -> Millis {
        match &self.manual {
            Some(manual) => manual.load(std::sync::atomic::Ordering::SeqCst),
            None => now_millis(),
        }
    }
}

pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// An event to record. `event` is the Tracardi `EventPayload` JSON (id, type, properties, time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub id: String,
    pub event_type: String,
    pub event: serde_json::Value,
    /// The Tracardi profile and session the event belongs to; none for profile-less events.
    pub profile_id: Option<String>,
    pub session_id: Option<String>,
    pub created: Millis,
}

/// Proof of a claim: which event, under which lease. Settling an event (delivered, retry,
/// dead) takes its receipt, and does nothing when the lease is no longer the event's: a worker
/// whose lease ran out (a slow Tracardi, a paused replica) cannot undo the work of the worker
/// that claimed the event after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    /// The backend's token for this lease; a later claim of the same event gets another.
    pub lease: i64,
}

/// An event claimed for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub new: NewEvent,
    /// Delivery attempts made before this one.
    pub attempts: u32,
    pub receipt: Receipt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New,
    /// The same id was recorded before: a reload or a double click.
    AlreadyStored,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivering: u64,
    pub dead: u64,
    pub delivered: u64,
    /// Creation time of the oldest event not yet delivered (pending or delivering), Unix ms.
    pub oldest_pending_created: Option<Millis>,
}

/// What `take_pending` found under a key. The context (flow, profile, session, return_to) is
/// not secret and is kept after use, so an expired or replayed link can offer to start again.
#[derive(Debug)]
pub enum Taken {
    /// Waiting, now taken: it will not be found again.
    Pending {
        context: serde_json::Value,
        secret: secrecy::SecretString,
    },
    /// Taken before: a replay.
    Used {
        context: serde_json::Value,
    },
    /// Waited longer than its time to live.
    Expired {
        context: serde_json::Value,
    },
    Unknown,
}

/// What stops the store from doing its job, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    Ok,
    /// The last write failed (e.g. the disk is full); callbacks get 503 until a write succeeds.
    /// The store tries a small write every few seconds to notice when it can write again.
    NotWritable,
    /// A newer version of this service changed the file's schema while this one runs.
    NewerSchema,
    /// The store stopped (its writer thread ended): restart the service.
    Closed,
}

/// The store's own account of its health, kept up to date as it works: reading it costs no
/// query, so readiness probes do not queue behind callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoreHealth {
    pub state: StoreState,
    /// Why the state is not `ok` (e.g. "database or disk is full"); never a file path.
    pub problem: Option<String>,
}

impl StoreHealth {
    pub fn ok() -> Self {
        Self {
            state: StoreState::Ok,
            problem: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the event store failed: {0}")]
    Backend(String),
    #[error("the event store is closed")]
    Closed,
}

/// What every event store provides. Times are the backend's own clock (the local clock for the
/// embedded file, the server's for a store shared by several replicas), so that replicas whose
/// clocks disagree still agree on what is due and whose lease ran out.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// The store's health as last seen; cheap (no I/O).
    fn health(&self) -> StoreHealth;

    /// Records an event durably before returning. A second write of the same id changes
    /// nothing and says so.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;

    /// Records an event durably as a dead letter, with why: kept for an operator to look at
    /// and re-drive (`POST /outbox/retry`), not delivered until then. Idempotent like `append`.
    async fn append_dead(&self, event: NewEvent, reason: String) -> Result<Appended, StoreError>;

    /// Claims up to `limit` pending events that are due, oldest first, for `lease`. A claimed
    /// event that is neither settled before its lease ends is due again. An event that cannot
    /// be read back (e.g. its JSON was damaged) becomes dead, with the reason, in the same
    /// claim; the others are claimed as usual.
    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Claims the oldest pending event whatever its due time: a probe of a Tracardi that was down.
    async fn claim_oldest(&self, lease: Duration) -> Result<Option<StoredEvent>, StoreError>;

    /// Tracardi has them. Returns how many receipts were still current (the others' events
    /// were claimed again by someone else and are left to them).
    async fn mark_delivered(&self, receipts: Vec<Receipt>) -> Result<u64, StoreError>;

    /// Back to pending, due `after` from now, with one more attempt counted and the error kept.
    /// Returns how many receipts were still current.
    async fn retry_after(
        &self,
        receipts: Vec<Receipt>,
        after: Duration,
        error: String,
    ) -> Result<u64, StoreError>;

    /// Tracardi refused the event for good: kept, with its answer, until re-driven. Returns
    /// whether the receipt was still current.
    async fn mark_dead(&self, receipt: Receipt, error: String) -> Result<bool, StoreError>;

    /// Makes every pending event due now (Tracardi is back: drain the backlog promptly).
    async fn pull_forward(&self) -> Result<u64, StoreError>;

    /// Dead events back to pending, due now.
    async fn requeue_dead(&self) -> Result<u64, StoreError>;

    /// How long until the next pending event is due (zero when one is due now).
    async fn next_due_in(&self) -> Result<Option<Duration>, StoreError>;

    /// Counts events by state. It scans the events: for operators, not for readiness probes.
    async fn counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Forgets delivered events created more than `keep` ago (they were kept to spot late
    /// repeats). Returns how many records were forgotten.
    async fn prune_delivered(&self, keep: Duration) -> Result<u64, StoreError>;
}

/// Started "Connect Twitter" authorizations waiting for their visitor, kept where every replica
/// finds them (the visitor may come back to another one).
#[async_trait::async_trait]
pub trait PendingAuthorizations: Send + Sync + std::fmt::Debug {
    /// Keeps a started authorization under `key` for `ttl`. `secret` is the request-token
    /// secret or the PKCE verifier.
    async fn put(
        &self,
        key: String,
        context: serde_json::Value,
        secret: secrecy::SecretString,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Takes the authorization under `key`: it works once. The secret is removed before it is
    /// returned, so a second take finds it used.
    async fn take(&self, key: String) -> Result<Taken, StoreError>;

    /// Authorizations started and still waiting for their visitor (not taken, not expired):
    /// what the quota `MAX_PENDING_AUTHORIZATIONS` counts.
    async fn live(&self) -> Result<u64, StoreError>;
}

/// An X account connected through a connect flow, and the Tracardi profile it belongs to: where
/// X's activity for that account (webhooks) is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLink {
    pub x_user_id: String,
    pub profile_id: String,
    pub username: Option<String>,
    /// The X Activity API subscriptions made for the account when it connected.
    pub subscription_ids: Vec<String>,
    /// When it was (last) connected, by the store's clock.
    pub linked: Millis,
    /// When the account revoked the app (`oauth.revoke`), if it did since.
    pub revoked: Option<Millis>,
}

/// What X did to the webhook that an operator wants to see the time of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMark {
    /// A signed delivery was accepted.
    Delivery,
    /// X's challenge-response check was answered.
    Crc,
}

impl WebhookMark {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMark::Delivery => "delivery",
            WebhookMark::Crc => "crc",
        }
    }
}

/// When X last used the webhook, over all replicas (Unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookSeen {
    pub last_delivery: Option<Millis>,
    pub last_crc: Option<Millis>,
}

/// Links from X accounts to Tracardi profiles, and when X last used the webhook: shared by
/// every replica, like the outbox.
#[async_trait::async_trait]
pub trait AccountLinks: Send + Sync + std::fmt::Debug {
    /// Links the account to `link.profile_id` (replacing any earlier link of it), as connected
    /// now; `linked` and `revoked` are the store's to set.
    async fn put_link(&self, link: AccountLink) -> Result<(), StoreError>;

    async fn find_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError>;

    /// The links of several accounts, in the order asked; a store that can look them up
    /// together does.
    async fn find_links(
        &self,
        x_user_ids: &[&str],
    ) -> Result<Vec<Option<AccountLink>>, StoreError> {
        let mut links = Vec::with_capacity(x_user_ids.len());
        for x_user_id in x_user_ids {
            links.push(self.find_link(x_user_id).await?);
        }
        Ok(links)
    }

    /// Marks the account's link revoked now; returns the link, if there is one.
    async fn revoke_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError>;

    /// Notes that X used the webhook now.
    async fn mark_webhook(&self, mark: WebhookMark) -> Result<(), StoreError>;

    async fn webhook_seen(&self) -> Result<WebhookSeen, StoreError>;
}

/// The stores a running service uses; one backend provides them all.
#[derive(Debug, Clone)]
pub struct Stores {
    pub outbox: std::sync::Arc<dyn Outbox>,
    pub pending: std::sync::Arc<dyn PendingAuthorizations>,
    pub links: std::sync::Arc<dyn AccountLinks>,
}

impl Stores {
    /// Every store from one backend.
    pub fn of<S: Outbox + PendingAuthorizations + AccountLinks + 'static>(store: S) -> Self {
        let store = std::sync::Arc::new(store);
        Self {
            outbox: store.clone(),
            pending: store.clone(),
            links: store,
        }
    }
}

/// A duration in the store's clock unit.
pub fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}
