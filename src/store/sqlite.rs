//! The embedded outbox: one SQLite file in DATA_DIR, WAL journal, `synchronous=FULL`.
//!
//! One writer thread owns the connection. Requests queue on a channel; the thread takes every
//! request waiting, runs them in one transaction and commits once, so concurrent callbacks
//! share one fsync (group commit) instead of paying one each. Nobody is answered before the
//! commit that holds their change is on disk.

use super::{Appended, Millis, NewEvent, Outbox, OutboxCounts, StoreError, StoredEvent, Taken};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// The file name inside DATA_DIR.
pub const FILE_NAME: &str = "outbox.sqlite3";

/// At most this many requests share one transaction.
const MAX_GROUP: usize = 512;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file got.
const MIGRATIONS: &[&str] = &[
    // 1: the outbox.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        event_json TEXT NOT NULL,
        profile_id TEXT,
        session_id TEXT,
        created_ms INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_ms INTEGER NOT NULL,
        lease_until_ms INTEGER,
        last_error TEXT
    );
    CREATE INDEX events_due ON events (state, due_ms, seq);",
    // 2: started "Connect Twitter" authorizations, and what is left of used ones.
    "CREATE TABLE pending_authorizations (
        key TEXT PRIMARY KEY,
        context_json TEXT NOT NULL,
        secret TEXT,
        expires_ms INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );",
];

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// How a command is answered once its transaction's commit succeeded (None) or failed (Some).
type Answer = Box<dyn FnOnce(Option<&str>)>;

/// One request to the writer thread.
enum Command {
    /// The event and its JSON, serialised by the caller: the one writer thread does only SQL.
    Append(NewEvent, String, Reply<Appended>),
    ClaimDue(Millis, usize, Millis, Reply<Vec<StoredEvent>>),
    ClaimOldest(Millis, Millis, Reply<Option<StoredEvent>>),
    Delivered(Vec<String>, Reply<()>),
    RetryAt(Vec<String>, Millis, String, Reply<()>),
    Dead(String, String, Reply<()>),
    PullForward(Millis, Reply<u64>),
    RequeueDead(Millis, Reply<u64>),
    NextDue(Reply<Option<Millis>>),
    Counts(Reply<OutboxCounts>),
    Prune(Millis, Reply<u64>),
    PutPending(String, String, SecretString, Millis, Reply<()>),
    TakePending(String, Millis, Reply<Taken>),
    LiveAuthorizations(Millis, Reply<u64>),
}

#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    commands: mpsc::Sender<Command>,
    path: PathBuf,
}

impl SqliteOutbox {
    /// Opens (or creates) the store in `data_dir`, migrates its schema, and recovers events
    /// whose delivery was cut off by a crash.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| backend(format!("creating {}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let mut conn = Connection::open(&path)
            .map_err(|e| backend(format!("opening {}: {e}", path.display())))?;
        owner_only(&path).map_err(|e| backend(format!("restricting {}: {e}", path.display())))?;
        prepare(&mut conn).map_err(|e| backend(format!("preparing {}: {e}", path.display())))?;
        let (commands, queue) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer(conn, queue))
            .map_err(|e| backend(format!("starting the writer thread: {e}")))?;
        Ok(Self { commands, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        // Bounded: when the writer falls behind, callers wait here (back-pressure).
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The file holds one-time secrets of started authorizations: readable by its owner only.
/// SQLite gives its -wal and -shm files the database file's permissions.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn backend(message: String) -> StoreError {
    StoreError::Backend(message)
}

fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk (WAL fsync'd) before it returns; that is what "done" promises.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    // Deliveries in flight when the process died: due again now.
    conn.execute(
        "UPDATE events SET state = 'pending', lease_until_ms = NULL WHERE state = 'delivering'",
        [],
    )?;
    Ok(())
}

/// The writer thread: group commit of everything queued.
fn writer(mut conn: Connection, mut queue: mpsc::Receiver<Command>) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        run_group(&mut conn, group);
    }
}

/// Runs a group in one transaction. Answers go out only after the commit; if the commit fails,
/// every member is told so (none of their changes happened).
fn run_group(conn: &mut Connection, group: Vec<Command>) {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let message = format!("starting a transaction: {e}");
            for command in group {
                fail(command, &message);
            }
            return;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    for command in group {
        answers.push(execute(&tx, command));
    }
    let commit_error = tx.commit().err().map(|e| format!("committing: {e}"));
    for answer in answers {
        answer(commit_error.as_deref());
    }
}

/// Runs one command inside the transaction and returns how to answer it once the commit is known.
fn execute(tx: &Transaction, command: Command) -> Answer {
    fn answer<T: Send + 'static>(reply: Reply<T>, result: rusqlite::Result<T>) -> Answer {
        Box::new(move |commit_error: Option<&str>| {
            let result = match (result, commit_error) {
                (Err(e), _) => Err(backend(e.to_string())),
                (Ok(_), Some(commit)) => Err(backend(commit.to_owned())),
                (Ok(value), None) => Ok(value),
            };
            let _ = reply.send(result);
        })
    }
    match command {
        Command::Append(event, json, reply) => answer(reply, append(tx, &event, &json)),
        Command::ClaimDue(now, limit, lease, reply) => answer(reply, claim_due(tx, now, limit, lease)),
        Command::ClaimOldest(now, lease, reply) => {
            answer(reply, claim_oldest(tx, now, lease))
        }
        Command::Delivered(ids, reply) => answer(reply, set_state(tx, &ids, "delivered", None, None)),
        Command::RetryAt(ids, due, error, reply) => answer(reply, retry_at(tx, &ids, due, &error)),
        Command::Dead(id, error, reply) => answer(reply, set_state(tx, &[id], "dead", None, Some(&error))),
        Command::PullForward(now, reply) => answer(
            reply,
            tx.execute(
                "UPDATE events SET due_ms = ?1 WHERE state = 'pending' AND due_ms > ?1",
                params![now],
            )
            .map(|n| n as u64),
        ),
        Command::RequeueDead(now, reply) => answer(
            reply,
            tx.execute(
                "UPDATE events SET state = 'pending', due_ms = ?1, attempts = 0 WHERE state = 'dead'",
                params![now],
            )
            .map(|n| n as u64),
        ),
        Command::NextDue(reply) => answer(
            reply,
            tx.query_row(
                "SELECT MIN(due_ms) FROM events WHERE state = 'pending'",
                [],
                |row| row.get::<_, Option<Millis>>(0),
            ),
        ),
        Command::Counts(reply) => answer(reply, counts(tx)),
        Command::Prune(before, reply) => answer(reply, prune(tx, before)),
        Command::PutPending(key, context, secret, expires, reply) => answer(
            reply,
            tx.execute(
                "INSERT OR REPLACE INTO pending_authorizations (key, context_json, secret, expires_ms, used)
                 VALUES (?1, ?2, ?3, ?4, 0)",
                params![key, context, secret.expose_secret(), expires],
            )
            .map(|_| ()),
        ),
        Command::TakePending(key, now, reply) => answer(reply, take_pending(tx, &key, now)),
        Command::LiveAuthorizations(now, reply) => answer(
            reply,
            tx.query_row(
                "SELECT COUNT(*) FROM pending_authorizations WHERE used = 0 AND expires_ms > ?1",
                [now],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64),
        ),
    }
}

fn prune(tx: &Transaction, before: Millis) -> rusqlite::Result<u64> {
    let events = tx.execute(
        "DELETE FROM events WHERE state = 'delivered' AND created_ms < ?1",
        params![before],
    )?;
    let authorizations = tx.execute(
        "DELETE FROM pending_authorizations WHERE expires_ms < ?1",
        params![before],
    )?;
    Ok((events + authorizations) as u64)
}

fn take_pending(tx: &Transaction, key: &str, now: Millis) -> rusqlite::Result<Taken> {
    let row = tx
        .query_row(
            "SELECT context_json, secret, expires_ms, used FROM pending_authorizations WHERE key = ?1",
            params![key],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Millis>(2)?,
                    row.get::<_, bool>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((context, secret, expires, used)) = row else {
        return Ok(Taken::Unknown);
    };
    let context = serde_json::from_str(&context).unwrap_or(serde_json::Value::Null);
    if used {
        return Ok(Taken::Used { context });
    }
    // Removed before it is used: whatever happens next, it cannot be used twice.
    tx.execute(
        "UPDATE pending_authorizations SET used = 1, secret = NULL WHERE key = ?1",
        params![key],
    )?;
    Ok(match secret {
        Some(secret) if expires > now => Taken::Pending {
            context,
            secret: secret.into(),
        },
        _ => Taken::Expired { context },
    })
}

fn fail(command: Command, message: &str) {
    fn send<T>(reply: Reply<T>, message: &str) {
        let _ = reply.send(Err(backend(message.to_owned())));
    }
    match command {
        Command::Append(_, _, r) => send(r, message),
        Command::ClaimDue(_, _, _, r) => send(r, message),
        Command::ClaimOldest(_, _, r) => send(r, message),
        Command::Delivered(_, r) | Command::RetryAt(_, _, _, r) | Command::Dead(_, _, r) => {
            send(r, message)
        }
        Command::PullForward(_, r) | Command::RequeueDead(_, r) | Command::Prune(_, r) => {
            send(r, message)
        }
        Command::NextDue(r) => send(r, message),
        Command::PutPending(_, _, _, _, r) => send(r, message),
        Command::TakePending(_, _, r) => send(r, message),
        Command::LiveAuthorizations(_, r) => send(r, message),
        Command::Counts(r) => send(r, message),
    }
}

fn append(tx: &Transaction, event: &NewEvent, json: &str) -> rusqlite::Result<Appended> {
    let inserted = tx.prepare_cached(
        "INSERT INTO events (id, event_type, event_json, profile_id, session_id, created_ms, due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![
            event.id,
            event.event_type,
            json,
            event.profile_id,
            event.session_id,
            event.created
    ])?;
    Ok(if inserted == 1 {
        Appended::New
    } else {
        Appended::AlreadyStored
    })
}

const CLAIM_COLUMNS: &str =
    "id, event_type, event_json, profile_id, session_id, created_ms, attempts";

fn read_event(row: &rusqlite::Row) -> rusqlite::Result<StoredEvent> {
    let json: String = row.get(2)?;
    let event = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(StoredEvent {
        new: NewEvent {
            id: row.get(0)?,
            event_type: row.get(1)?,
            event,
            profile_id: row.get(3)?,
            session_id: row.get(4)?,
            created: row.get(5)?,
        },
        attempts: row.get(6)?,
    })
}

fn claim_due(
    tx: &Transaction,
    now: Millis,
    limit: usize,
    lease: Millis,
) -> rusqlite::Result<Vec<StoredEvent>> {
    // Leases that ran out (a delivery that never reported back) count as pending again.
    tx.execute(
        "UPDATE events SET state = 'pending', lease_until_ms = NULL
         WHERE state = 'delivering' AND lease_until_ms <= ?1",
        params![now],
    )?;
    let events = {
        let mut statement = tx.prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM events WHERE state = 'pending' AND due_ms <= ?1
             ORDER BY due_ms, seq LIMIT ?2"
        ))?;
        statement
            .query_map(params![now, limit as i64], read_event)?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let ids: Vec<String> = events.iter().map(|e| e.new.id.clone()).collect();
    set_state(tx, &ids, "delivering", Some(now + lease), None)?;
    Ok(events)
}

fn claim_oldest(
    tx: &Transaction,
    now: Millis,
    lease: Millis,
) -> rusqlite::Result<Option<StoredEvent>> {
    let event = tx
        .query_row(
            &format!(
                "SELECT {CLAIM_COLUMNS} FROM events WHERE state = 'pending' ORDER BY seq LIMIT 1"
            ),
            [],
            read_event,
        )
        .optional()?;
    if let Some(event) = &event {
        set_state(
            tx,
            std::slice::from_ref(&event.new.id),
            "delivering",
            Some(now + lease),
            None,
        )?;
    }
    Ok(event)
}

fn set_state(
    tx: &Transaction,
    ids: &[String],
    state: &str,
    lease_until: Option<Millis>,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "UPDATE events SET state = ?2, lease_until_ms = ?3, last_error = COALESCE(?4, last_error) WHERE id = ?1",
    )?;
    for id in ids {
        statement.execute(params![id, state, lease_until, error])?;
    }
    Ok(())
}

fn retry_at(tx: &Transaction, ids: &[String], due: Millis, error: &str) -> rusqlite::Result<()> {
    let mut statement = tx.prepare_cached(
        "UPDATE events SET state = 'pending', lease_until_ms = NULL, due_ms = ?2,
         attempts = attempts + 1, last_error = ?3 WHERE id = ?1 AND state = 'delivering'",
    )?;
    for id in ids {
        statement.execute(params![id, due, error])?;
    }
    Ok(())
}

fn counts(tx: &Transaction) -> rusqlite::Result<OutboxCounts> {
    let mut counts = OutboxCounts::default();
    {
        let mut statement =
            tx.prepare_cached("SELECT state, COUNT(*) FROM events GROUP BY state")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            let n = n as u64;
            match state.as_str() {
                "pending" => counts.pending = n,
                "delivering" => counts.delivering = n,
                "delivered" => counts.delivered = n,
                "dead" => counts.dead = n,
                _ => {}
            }
        }
    }
    counts.oldest_pending_created = tx.query_row(
        "SELECT MIN(created_ms) FROM events WHERE state IN ('pending', 'delivering')",
        [],
        |row| row.get(0),
    )?;
    Ok(counts)
}

#[async_trait::async_trait]
impl Outbox for SqliteOutbox {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let json = event.event.to_string();
        self.call(|r| Command::Append(event, json, r)).await
    }
    async fn claim_due(
        &self,
        now: Millis,
        limit: usize,
        lease_ms: Millis,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.call(|r| Command::ClaimDue(now, limit, lease_ms, r))
            .await
    }
    async fn claim_oldest(
        &self,
        now: Millis,
        lease_ms: Millis,
    ) -> Result<Option<StoredEvent>, StoreError> {
        self.call(|r| Command::ClaimOldest(now, lease_ms, r)).await
    }
    async fn mark_delivered(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.call(|r| Command::Delivered(ids, r)).await
    }
    async fn retry_at(
        &self,
        ids: Vec<String>,
        due: Millis,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(|r| Command::RetryAt(ids, due, error, r)).await
    }
    async fn mark_dead(&self, id: String, error: String) -> Result<(), StoreError> {
        self.call(|r| Command::Dead(id, error, r)).await
    }
    async fn pull_forward(&self, now: Millis) -> Result<u64, StoreError> {
        self.call(|r| Command::PullForward(now, r)).await
    }
    async fn requeue_dead(&self, now: Millis) -> Result<u64, StoreError> {
        self.call(|r| Command::RequeueDead(now, r)).await
    }
    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.call(Command::NextDue).await
    }
    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        self.call(Command::Counts).await
    }
    async fn prune_delivered(&self, before: Millis) -> Result<u64, StoreError> {
        self.call(|r| Command::Prune(before, r)).await
    }
    async fn put_pending(
        &self,
        key: String,
        context: serde_json::Value,
        secret: SecretString,
        expires: Millis,
    ) -> Result<(), StoreError> {
        self.call(|r| Command::PutPending(key, context.to_string(), secret, expires, r))
            .await
    }
    async fn take_pending(&self, key: String, now: Millis) -> Result<Taken, StoreError> {
        self.call(|r| Command::TakePending(key, now, r)).await
    }
    async fn live_authorizations(&self, now: Millis) -> Result<u64, StoreError> {
        self.call(|r| Command::LiveAuthorizations(now, r)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, created: Millis) -> NewEvent {
        NewEvent {
            id: id.into(),
            event_type: "twitter-authorization-granted".into(),
            event: json!({"id": id, "type": "twitter-authorization-granted", "properties": {"flow": "oauth1"}}),
            profile_id: None,
            session_id: None,
            created,
        }
    }

    #[tokio::test]
    async fn appends_once_and_claims_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        assert_eq!(store.append(event("b", 10)).await.unwrap(), Appended::New);
        assert_eq!(store.append(event("a", 20)).await.unwrap(), Appended::New);
        assert_eq!(
            store.append(event("b", 30)).await.unwrap(),
            Appended::AlreadyStored
        );
        let claimed = store.claim_due(100, 10, 1000).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|e| e.new.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(claimed[0].new, event("b", 10));
        // Claimed events are not claimed twice while leased.
        assert!(store.claim_due(100, 10, 1000).await.unwrap().is_empty());
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivering), (0, 2));
        assert_eq!(counts.oldest_pending_created, Some(10));
    }

    #[tokio::test]
    async fn retries_dead_letters_and_leases() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        for id in ["a", "b", "c"] {
            store.append(event(id, 0)).await.unwrap();
        }
        let claimed = store.claim_due(0, 3, 50).await.unwrap();
        assert_eq!(claimed.len(), 3);
        store.mark_delivered(vec!["a".into()]).await.unwrap();
        store
            .retry_at(vec!["b".into()], 500, "HTTP 503".into())
            .await
            .unwrap();
        store
            .mark_dead("c".into(), "HTTP 422".into())
            .await
            .unwrap();
        assert!(store.claim_due(100, 10, 50).await.unwrap().is_empty());
        assert_eq!(store.next_due().await.unwrap(), Some(500));
        let b = store.claim_due(500, 10, 50).await.unwrap();
        assert_eq!(b[0].attempts, 1);
        // Its lease runs out: due again.
        assert_eq!(store.claim_due(550, 10, 50).await.unwrap().len(), 1);
        assert_eq!(store.requeue_dead(600).await.unwrap(), 1);
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (
                counts.pending,
                counts.delivering,
                counts.dead,
                counts.delivered
            ),
            (1, 1, 0, 1)
        );
        assert_eq!(store.prune_delivered(1).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn pull_forward_and_recovery_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteOutbox::open(dir.path()).unwrap();
            store.append(event("a", 0)).await.unwrap();
            store.append(event("b", 0)).await.unwrap();
            store.claim_due(0, 1, 1_000_000).await.unwrap();
            store.claim_due(0, 1, 1_000_000).await.unwrap();
            store
                .retry_at(vec!["b".into()], 999_999, "down".into())
                .await
                .unwrap();
            assert_eq!(store.pull_forward(5).await.unwrap(), 1);
            assert_eq!(store.next_due().await.unwrap(), Some(5));
        }
        // "a" was being delivered when the process stopped: it is pending again on reopening.
        let store = SqliteOutbox::open(dir.path()).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivering), (2, 0));
        assert!(store.claim_oldest(10, 100).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn pending_authorizations_work_once_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        let context = json!({"flow": "oauth2", "profile_id": "p1"});
        store
            .put_pending(
                "k1".into(),
                context.clone(),
                "verifier".to_owned().into(),
                100,
            )
            .await
            .unwrap();
        store
            .put_pending("k2".into(), context.clone(), "old".to_owned().into(), 100)
            .await
            .unwrap();
        match store.take_pending("k1".into(), 50).await.unwrap() {
            Taken::Pending { context: c, secret } => {
                assert_eq!(c, context);
                assert_eq!(secret.expose_secret(), "verifier");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.take_pending("k1".into(), 50).await.unwrap(),
            Taken::Used { .. }
        ));
        assert!(matches!(
            store.take_pending("k2".into(), 100).await.unwrap(),
            Taken::Expired { .. }
        ));
        assert!(matches!(
            store.take_pending("k3".into(), 0).await.unwrap(),
            Taken::Unknown
        ));
        assert_eq!(store.prune_delivered(101).await.unwrap(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the store holds secrets");
        }
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteOutbox::open(dir.path()).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.append(event(&format!("e{i}"), i)).await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Appended::New);
        }
        assert_eq!(store.counts().await.unwrap().pending, 200);
    }
}
