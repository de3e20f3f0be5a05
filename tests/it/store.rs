//! One suite, two backends: what the delivery worker and the connect flows rely on, run against
//! the SQLite file and against Redis (a server of the test's own, see `redis_server`). Times are
//! the backends' own clocks, so waits are short leases and bounded polling.

use crate::redis_server::RedisServer;
use serde_json::json;
use std::time::Duration;
use tempfile::TempDir;
use tracardi_twitter::config::{Durability, RedisConfig};
use tracardi_twitter::store::redis::RedisStore;
use tracardi_twitter::store::sqlite::SqliteOutbox;
use tracardi_twitter::store::{
    AccountLink, Appended, NewEvent, Receipt, StoredEvent, Stores, Taken, WebhookMark, WebhookSeen,
};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(10);

/// A backend and what must live as long as it.
pub struct Backend {
    pub stores: Stores,
    _sqlite: Option<TempDir>,
    _redis: Option<RedisServer>,
}

impl Backend {
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        Backend {
            stores: Stores::of(store),
            _sqlite: Some(dir),
            _redis: None,
        }
    }

    /// `None` when redis-server is not installed (outside CI: the test is skipped).
    pub async fn redis() -> Option<Backend> {
        let server = RedisServer::start().await?;
        let store = RedisStore::open(&redis_config(&server.url(), Durability::Strict))
            .await
            .expect("the store opens on a durable Redis");
        Some(Backend {
            stores: Stores::of(store),
            _sqlite: None,
            _redis: Some(server),
        })
    }
}

pub fn redis_config(url: &str, durability: Durability) -> RedisConfig {
    RedisConfig {
        url: url.to_owned().into(),
        prefix: "test".into(),
        durability,
        wait_replicas: 0,
    }
}

pub fn event(id: &str, created: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: "twitter-authorization-granted".into(),
        event: json!({"id": id, "type": "twitter-authorization-granted", "properties": {"flow": "oauth1"}}),
        profile_id: Some(format!("profile-{id}")),
        session_id: None,
        created,
    }
}

fn ids(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.new.id.as_str()).collect()
}

fn receipts(events: &[StoredEvent]) -> Vec<Receipt> {
    events.iter().map(|e| e.receipt.clone()).collect()
}

const LONG: Duration = Duration::from_secs(600);

/// Polls `claim_due` until it returns something (bounded).
async fn claim_when_due(stores: &Stores, lease: Duration) -> Vec<StoredEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let claimed = stores.outbox.claim_due(10, lease).await.unwrap();
        if !claimed.is_empty() {
            return claimed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing came due again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn appends_once_and_settles_by_receipt(stores: &Stores) {
    let outbox = &stores.outbox;
    assert_eq!(
        outbox.append(event("a", 1000)).await.unwrap(),
        Appended::New
    );
    assert_eq!(
        outbox.append(event("b", 2000)).await.unwrap(),
        Appended::New
    );
    assert_eq!(
        outbox.append(event("a", 3000)).await.unwrap(),
        Appended::AlreadyStored
    );
    let claimed = outbox.claim_due(10, LONG).await.unwrap();
    assert_eq!(ids(&claimed), ["a", "b"]);
    assert_eq!(claimed[0].new, event("a", 1000));
    assert_eq!(claimed[0].attempts, 0);
    assert!(outbox.claim_due(10, LONG).await.unwrap().is_empty());
    let counts = outbox.counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivering), (0, 2));
    assert_eq!(counts.oldest_pending_created, Some(1000));

    let [a, b] = [0, 1].map(|i| claimed[i].receipt.clone());
    assert_eq!(outbox.mark_delivered(vec![a]).await.unwrap(), 1);
    assert_eq!(
        outbox
            .retry_after(vec![b], Duration::ZERO, "HTTP 503".into())
            .await
            .unwrap(),
        1
    );
    assert_eq!(outbox.next_due_in().await.unwrap(), Some(Duration::ZERO));
    let again = claim_when_due(stores, LONG).await;
    assert_eq!(ids(&again), ["b"]);
    assert_eq!(again[0].attempts, 1);
    assert!(
        outbox
            .mark_dead(again[0].receipt.clone(), "HTTP 422".into())
            .await
            .unwrap()
    );
    let counts = outbox.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.delivering,
            counts.dead,
            counts.delivered
        ),
        (0, 0, 1, 1)
    );
    assert_eq!(counts.oldest_pending_created, None);
    assert_eq!(outbox.next_due_in().await.unwrap(), None);

    assert_eq!(outbox.requeue_dead().await.unwrap(), 1);
    let redriven = outbox.claim_due(10, LONG).await.unwrap();
    assert_eq!((ids(&redriven), redriven[0].attempts), (vec!["b"], 0));
    // Delivered events are kept to recognise repeats, until pruned.
    assert_eq!(outbox.prune_delivered(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(outbox.counts().await.unwrap().delivered, 0);
}

async fn retries_wait_their_backoff_until_pulled_forward(stores: &Stores) {
    let outbox = &stores.outbox;
    outbox.append(event("late", 1)).await.unwrap();
    let claimed = outbox.claim_due(10, LONG).await.unwrap();
    outbox
        .retry_after(receipts(&claimed), Duration::from_secs(60), "down".into())
        .await
        .unwrap();
    assert!(outbox.claim_due(10, LONG).await.unwrap().is_empty());
    let wait = outbox.next_due_in().await.unwrap().unwrap();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // The probe takes the oldest waiting event whatever its due time.
    let probe = outbox.claim_oldest(LONG).await.unwrap().unwrap();
    assert_eq!(probe.new.id, "late");
    outbox
        .retry_after(vec![probe.receipt], Duration::from_secs(60), "down".into())
        .await
        .unwrap();
    assert_eq!(outbox.pull_forward().await.unwrap(), 1);
    assert_eq!(outbox.next_due_in().await.unwrap(), Some(Duration::ZERO));
    assert_eq!(ids(&claim_when_due(stores, LONG).await), ["late"]);
    assert!(outbox.claim_oldest(LONG).await.unwrap().is_none());
}

/// A worker whose lease ran out reports late: the event was claimed again meanwhile, and the
/// late report must not overwrite the new claim.
async fn an_expired_lease_is_due_again_and_its_receipt_is_stale(stores: &Stores) {
    let outbox = &stores.outbox;
    outbox.append(event("slow", 1)).await.unwrap();
    let first = outbox
        .claim_due(10, Duration::from_millis(100))
        .await
        .unwrap()
        .remove(0);
    let second = claim_when_due(stores, LONG).await.remove(0);
    assert_eq!(second.new.id, "slow");
    assert_ne!(first.receipt, second.receipt);
    let stale = || vec![first.receipt.clone()];
    assert_eq!(outbox.mark_delivered(stale()).await.unwrap(), 0);
    assert_eq!(
        outbox
            .retry_after(stale(), Duration::ZERO, "late".into())
            .await
            .unwrap(),
        0
    );
    assert!(
        !outbox
            .mark_dead(first.receipt.clone(), "late".into())
            .await
            .unwrap()
    );
    let counts = outbox.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.delivering,
            counts.delivered,
            counts.dead
        ),
        (0, 1, 0, 0)
    );
    assert_eq!(
        outbox.mark_delivered(vec![second.receipt]).await.unwrap(),
        1
    );
    assert_eq!(outbox.counts().await.unwrap().delivered, 1);
}

async fn concurrent_appends_are_each_stored_once(stores: &Stores) {
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let outbox = stores.outbox.clone();
            tokio::spawn(async move { outbox.append(event(&format!("e{i}"), i)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Appended::New);
    }
    for i in [0, 57, 99] {
        assert_eq!(
            stores
                .outbox
                .append(event(&format!("e{i}"), i))
                .await
                .unwrap(),
            Appended::AlreadyStored
        );
    }
    assert_eq!(stores.outbox.counts().await.unwrap().pending, 100);
    let claimed = stores.outbox.claim_due(1000, LONG).await.unwrap();
    assert_eq!(claimed.len(), 100);
}

async fn authorizations_work_once_and_expire(stores: &Stores) {
    let pending = &stores.pending;
    let context = json!({"flow": "oauth2", "profile_id": "p1"});
    pending
        .put(
            "k1".into(),
            context.clone(),
            "verifier".to_owned().into(),
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(pending.live().await.unwrap(), 1);
    match pending.take("k1".into()).await.unwrap() {
        Taken::Pending { context: c, secret } => {
            assert_eq!(c, context);
            assert_eq!(secrecy::ExposeSecret::expose_secret(&secret), "verifier");
        }
        other => panic!("{other:?}"),
    }
    match pending.take("k1".into()).await.unwrap() {
        Taken::Used { context: c } => assert_eq!(c, context),
        other => panic!("{other:?}"),
    }
    assert_eq!(pending.live().await.unwrap(), 0);

    pending
        .put(
            "k2".into(),
            context.clone(),
            "short".to_owned().into(),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while pending.live().await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match pending.take("k2".into()).await.unwrap() {
        Taken::Expired { context: c } => assert_eq!(c, context),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pending.take("k3".into()).await.unwrap(),
        Taken::Unknown
    ));
}

/// More events than one script run of the Redis store touches (1000): pulled forward, re-driven
/// and pruned all the same.
async fn whole_sets_are_worked_through_past_one_batch(stores: &Stores) {
    const EVENTS: i64 = 1001;
    let outbox = &stores.outbox;
    let appends: Vec<_> = (0..EVENTS)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.append(event(&format!("m{i}"), i)).await.unwrap() })
        })
        .collect();
    for append in appends {
        append.await.unwrap();
    }
    let claimed = outbox.claim_due(2000, LONG).await.unwrap();
    assert_eq!(claimed.len() as i64, EVENTS);
    outbox
        .retry_after(receipts(&claimed), LONG, "down".into())
        .await
        .unwrap();
    assert_eq!(outbox.pull_forward().await.unwrap() as i64, EVENTS);
    let claimed = outbox.claim_due(2000, LONG).await.unwrap();
    assert_eq!(claimed.len() as i64, EVENTS);
    let deaths: Vec<_> = claimed
        .into_iter()
        .map(|e| {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.mark_dead(e.receipt, "422".into()).await.unwrap() })
        })
        .collect();
    for death in deaths {
        assert!(death.await.unwrap());
    }
    assert_eq!(outbox.requeue_dead().await.unwrap() as i64, EVENTS);
    assert_eq!(outbox.counts().await.unwrap().dead, 0);
    let claimed = outbox.claim_due(2000, LONG).await.unwrap();
    assert_eq!(
        outbox.mark_delivered(receipts(&claimed)).await.unwrap() as i64,
        EVENTS
    );
    assert_eq!(
        outbox.prune_delivered(Duration::ZERO).await.unwrap() as i64,
        EVENTS
    );
}

async fn dead_letters_are_kept_until_re_driven(stores: &Stores) {
    let outbox = &stores.outbox;
    let reason = "not understood: no such shape".to_owned();
    assert_eq!(
        outbox
            .append_dead(event("d", 1000), reason.clone())
            .await
            .unwrap(),
        Appended::New
    );
    assert_eq!(
        outbox.append_dead(event("d", 1000), reason).await.unwrap(),
        Appended::AlreadyStored
    );
    // The id is taken: the same event appended as a live one is a repeat.
    assert_eq!(
        outbox.append(event("d", 1000)).await.unwrap(),
        Appended::AlreadyStored
    );
    let counts = outbox.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 1));
    assert!(outbox.claim_due(10, LONG).await.unwrap().is_empty());
    assert_eq!(outbox.requeue_dead().await.unwrap(), 1);
    let claimed = outbox.claim_due(10, LONG).await.unwrap();
    assert_eq!(ids(&claimed), ["d"]);
    assert_eq!(claimed[0].new, event("d", 1000));
}

async fn account_links_route_and_revoke(stores: &Stores) {
    let links = &stores.links;
    assert_eq!(links.find_link("42").await.unwrap(), None);
    assert_eq!(links.revoke_link("42").await.unwrap(), None);
    let link = |profile: &str| AccountLink {
        x_user_id: "42".into(),
        profile_id: profile.into(),
        username: Some("ada".into()),
        subscription_ids: vec!["s1".into(), "s2".into()],
        linked: 0,
        revoked: None,
    };
    links.put_link(link("p1")).await.unwrap();
    let found = links.find_link("42").await.unwrap().unwrap();
    assert_eq!(
        (
            found.profile_id.as_str(),
            found.username.as_deref(),
            found.subscription_ids.len()
        ),
        ("p1", Some("ada"), 2)
    );
    assert!(found.linked > 0 && found.revoked.is_none());
    let revoked = links.revoke_link("42").await.unwrap().unwrap();
    assert!(revoked.revoked.is_some_and(|at| at >= found.linked));
    assert_eq!(revoked.profile_id, "p1");
    // Connected again (by another profile): the new link, not revoked.
    links.put_link(link("p2")).await.unwrap();
    let found = links.find_link("42").await.unwrap().unwrap();
    assert_eq!((found.profile_id.as_str(), found.revoked), ("p2", None));
    // Several at once (an activity's account and actor), in the order asked.
    let profiles = |found: Vec<Option<AccountLink>>| -> Vec<Option<String>> {
        found.into_iter().map(|l| l.map(|l| l.profile_id)).collect()
    };
    let both = links.find_links(&["nobody", "42", "43"]).await.unwrap();
    assert_eq!(profiles(both), [None, Some("p2".into()), None]);

    assert_eq!(links.webhook_seen().await.unwrap(), WebhookSeen::default());
    links.mark_webhook(WebhookMark::Crc).await.unwrap();
    let seen = links.webhook_seen().await.unwrap();
    assert!(seen.last_crc.is_some() && seen.last_delivery.is_none());
    links.mark_webhook(WebhookMark::Delivery).await.unwrap();
    let later = links.webhook_seen().await.unwrap();
    assert!(later.last_delivery.is_some() && later.last_crc == seen.last_crc);
}

/// Each suite function as one test per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let backend = super::Backend::sqlite();
                    super::$name(&backend.stores).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(backend) = super::Backend::redis().await else { return };
                    super::$name(&backend.stores).await;
                }
            )*
        }
    };
}

both_backends!(
    appends_once_and_settles_by_receipt,
    retries_wait_their_backoff_until_pulled_forward,
    an_expired_lease_is_due_again_and_its_receipt_is_stale,
    concurrent_appends_are_each_stored_once,
    authorizations_work_once_and_expire,
    whole_sets_are_worked_through_past_one_batch,
    dead_letters_are_kept_until_re_driven,
    account_links_route_and_revoke,
);
