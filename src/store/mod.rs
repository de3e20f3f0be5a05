//! The durable outbox: events recorded before a browser is told "done", until Tracardi has them.
//!
//! The trait is small on purpose so that more than one backend fits it: the embedded SQLite
//! file (default, one replica) and, later, Redis (several replicas). Every state change is
//! idempotent by event id, so a repeated redirect or a repeated delivery changes nothing.

pub mod sqlite;

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the store's clock unit.
pub type Millis = i64;

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

/// An event claimed for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub new: NewEvent,
    /// Delivery attempts made before this one.
    pub attempts: u32,
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

/// What every backend provides.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// The store's health as last seen; cheap (no I/O).
    fn health(&self) -> StoreHealth;

    /// Records an event durably (on disk, fsync'd) before returning. A second write of the same
    /// id changes nothing and says so.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;

    /// Claims up to `limit` pending events due at `now`, oldest first, for `lease_ms`. A claimed
    /// event that is neither delivered nor rescheduled before its lease ends is due again. An
    /// event that cannot be read back (e.g. its JSON was damaged) becomes dead, with the reason,
    /// in the same claim; the others are claimed as usual.
    async fn claim_due(
        &self,
        now: Millis,
        limit: usize,
        lease_ms: Millis,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Claims the oldest pending event whatever its due time: a probe of a Tracardi that was down.
    async fn claim_oldest(
        &self,
        now: Millis,
        lease_ms: Millis,
    ) -> Result<Option<StoredEvent>, StoreError>;

    async fn mark_delivered(&self, ids: Vec<String>) -> Result<(), StoreError>;

    /// Back to pending, due at `due`, with one more attempt counted and the error kept.
    async fn retry_at(
        &self,
        ids: Vec<String>,
        due: Millis,
        error: String,
    ) -> Result<(), StoreError>;

    /// Tracardi refused the event for good: kept, with its answer, until re-driven.
    async fn mark_dead(&self, id: String, error: String) -> Result<(), StoreError>;

    /// Makes every pending event due now (Tracardi is back: drain the backlog promptly).
    async fn pull_forward(&self, now: Millis) -> Result<u64, StoreError>;

    /// Dead events back to pending, due now.
    async fn requeue_dead(&self, now: Millis) -> Result<u64, StoreError>;

    /// When the next pending event is due.
    async fn next_due(&self) -> Result<Option<Millis>, StoreError>;

    /// Counts events by state. It scans the events: for operators, not for readiness probes.
    async fn counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Forgets delivered events created before `before` (they were kept to spot late repeats),
    /// and used or expired authorizations that expired before it.
    async fn prune_delivered(&self, before: Millis) -> Result<u64, StoreError>;

    /// Keeps a started authorization under `key` until `expires`. `secret` is the request-token
    /// secret or the PKCE verifier.
    async fn put_pending(
        &self,
        key: String,
        context: serde_json::Value,
        secret: secrecy::SecretString,
        expires: Millis,
    ) -> Result<(), StoreError>;

    /// Takes the authorization under `key`: it works once. The secret is removed before it is
    /// returned, so a second take finds it used.
    async fn take_pending(&self, key: String, now: Millis) -> Result<Taken, StoreError>;

    /// Authorizations started and still waiting for their visitor at `now` (not taken, not
    /// expired): what the quota `MAX_PENDING_AUTHORIZATIONS` counts.
    async fn live_authorizations(&self, now: Millis) -> Result<u64, StoreError>;
}
