//! The embedded outbox: one SQLite file in DATA_DIR, WAL journal, `synchronous=FULL`.
//!
//! One writer thread owns the connection. Requests queue on a channel; the thread takes every
//! request waiting, runs each under its own savepoint inside one transaction and commits once,
//! so concurrent callbacks share one fsync (group commit) instead of paying one each, and a
//! request that fails half-way leaves nothing behind while its neighbours commit. Nobody is
//! answered before the commit that holds their change is on disk.
//!
//! The writer keeps the store's [`StoreHealth`] as it goes (a failed write makes it not
//! writable until a write succeeds) and, every [`StoreOptions::maintenance_every`], checks the
//! schema version, tries a small write while the last one failed, and truncates the WAL so that
//! the space a burst took goes back to the disk. Counts for operators are read on a second,
//! read-only connection: they neither wait behind callbacks nor delay them.

use super::{
    AccountLink, AccountLinks, Appended, Clock, Millis, NewEvent, Outbox, OutboxCounts,
    PendingAuthorizations, Receipt, StoreError, StoreHealth, StoreState, StoredEvent, Taken,
    WebhookMark, WebhookSeen, millis,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The file name inside DATA_DIR.
pub const FILE_NAME: &str = "outbox.sqlite3";

/// At most this many requests share one transaction.
const MAX_GROUP: usize = 512;

/// Account links (and unlinked accounts) kept in memory; past it the least used are dropped.
const LINKS_CACHED: u64 = 100_000;
/// The longest an entry is kept: bounds how stale a link read during its own change can be.
const LINKS_FRESH: Duration = Duration::from_secs(30);

/// How long a statement waits for a lock held by another connection (e.g. `sqlite3` run by hand).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// When the WAL is reset after a checkpoint, it is cut back to this size: a burst does not keep
/// its space forever.
const JOURNAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// The WAL is copied into the database file by the commit that takes it past this many pages,
/// and every request queued behind that commit waits for the copy and its fsync. SQLite's 1000
/// pages (4 MiB) made pauses that set the p99 of stored webhooks at 64 connections (11 ms);
/// 100 pages make pauses a tenth as long, and the p99 6 ms at the same throughput
/// (BENCHMARKS.md, "Meeting the p99").
const WAL_AUTOCHECKPOINT_PAGES: i64 = 100;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file got. Each is
/// written to be run again safely (`IF NOT EXISTS`): a table missing from a file that claims it
/// is created again at start.
const MIGRATIONS: &[&str] = &[
    // 1: the outbox.
    "CREATE TABLE IF NOT EXISTS events (
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
    CREATE INDEX IF NOT EXISTS events_due ON events (state, due_ms, seq);",
    // 2: started "Connect Twitter" authorizations, and what is left of used ones.
    "CREATE TABLE IF NOT EXISTS pending_authorizations (
        key TEXT PRIMARY KEY,
        context_json TEXT NOT NULL,
        secret TEXT,
        expires_ms INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );",
    // 3: one row, rewritten to find out whether the store can write again after a write failed
    // (a full disk) while nothing else is written.
    "CREATE TABLE IF NOT EXISTS write_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        written_ms INTEGER NOT NULL
    );",
    // 4: X accounts connected here and their Tracardi profiles; when X last used the webhook.
    "CREATE TABLE IF NOT EXISTS account_links (
        x_user_id TEXT PRIMARY KEY,
        profile_id TEXT NOT NULL,
        username TEXT,
        subscription_ids_json TEXT NOT NULL DEFAULT '[]',
        linked_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    );
    CREATE TABLE IF NOT EXISTS webhook_marks (
        mark TEXT PRIMARY KEY,
        at_ms INTEGER NOT NULL
    );",
];

/// The tables the migrations create.
const TABLES: &[&str] = &[
    "events",
    "pending_authorizations",
    "write_probe",
    "account_links",
    "webhook_marks",
];

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How the store looks after itself.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How often the writer checks the schema version, tries a write while writes fail, and
    /// truncates the WAL.
    pub maintenance_every: Duration,
    /// What is due, and when leases and authorizations run out.
    pub clock: Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            maintenance_every: Duration::from_secs(5),
            clock: Clock::system(),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// How a command is answered once its transaction's commit succeeded (None) or failed (Some).
type Answer = Box<dyn FnOnce(Option<&str>)>;

/// One request to the writer thread.
enum Command {
    /// The event and its JSON, serialised by the caller: the one writer thread does only SQL;
    /// with a reason, stored as a dead letter.
    Append(NewEvent, String, Option<String>, Reply<Appended>),
    /// Limit and lease length (ms).
    ClaimDue(usize, Millis, Reply<Vec<StoredEvent>>),
    ClaimOldest(Millis, Reply<Option<StoredEvent>>),
    Delivered(Vec<Receipt>, Reply<u64>),
    /// Receipts, the wait (ms) and the error.
    RetryAfter(Vec<Receipt>, Millis, String, Reply<u64>),
    Dead(Receipt, String, Reply<u64>),
    PullForward(Reply<u64>),
    RequeueDead(Reply<u64>),
    NextDue(Reply<Option<Millis>>),
    /// Delivered events older than this (ms) are forgotten.
    Prune(Millis, Reply<u64>),
    /// Key, context, secret, time to live (ms).
    PutPending(String, String, SecretString, Millis, Reply<()>),
    TakePending(String, Reply<Taken>),
    LiveAuthorizations(Reply<u64>),
    PutLink(AccountLink, Reply<()>),
    RevokeLink(String, Reply<Option<AccountLink>>),
    MarkWebhook(WebhookMark, Reply<()>),
    WebhookSeen(Reply<WebhookSeen>),
}

/// What the writer thread receives.
// Nearly every message is a request: boxing them to shrink the rare clock tick would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
enum Message {
    Request(Command),
    /// Time to look after the store (sent by the maintenance clock).
    Maintain,
    /// Tests reach the writer's connection (e.g. to make its disk "full").
    #[cfg(test)]
    Test(Box<dyn FnOnce(&Connection) + Send>, Reply<()>),
}

#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    commands: mpsc::Sender<Message>,
    /// Read-only: counts for operators.
    reader: Arc<Mutex<Connection>>,
    /// Read-only: account links, looked up for every X activity. Not the writer's queue (a read
    /// would wait for the group commit it does not need) nor the counts' connection (a scan).
    link_reader: Arc<Mutex<Connection>>,
    /// Links as last read, unlinked accounts included: most activity comes from accounts that
    /// never connected, and each look-up on the reader costs a hand-off to the blocking pool.
    /// The file has one process and this store is its only writer, which forgets an account's
    /// entry once its link changes; a read that was already under way then may put the old
    /// entry back, so entries also expire after `LINKS_FRESH`.
    links: moka::future::Cache<String, Option<AccountLink>>,
    /// Kept by the writer thread.
    health: Arc<Mutex<StoreHealth>>,
    path: PathBuf,
}

/// Why the file could not be prepared.
enum PrepareError {
    /// Written by a newer version of this service, with this schema version.
    Newer(i64),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for PrepareError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl SqliteOutbox {
    /// Opens (or creates) the store in `data_dir`, migrates its schema, and recovers events
    /// whose delivery was cut off by a crash. Refuses a file whose schema is newer than this
    /// version knows.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, StoreOptions::default())
    }

    pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| backend(format!("creating {}: {e}", data_dir.display())))?;
        let path = data_dir.join(FILE_NAME);
        let mut conn = Connection::open(&path)
            .map_err(|e| backend(format!("opening {}: {e}", path.display())))?;
        owner_only(&path).map_err(|e| backend(format!("restricting {}: {e}", path.display())))?;
        prepare(&mut conn).map_err(|e| match e {
            PrepareError::Newer(version) => backend(format!(
                "{} was written by a newer version of tracardi-twitter (schema version {version}; \
                 this version knows up to {SCHEMA_VERSION}): run that version or a later one, or \
                 give this one a DATA_DIR of its own",
                path.display()
            )),
            PrepareError::Sqlite(e) => backend(format!("preparing {}: {e}", path.display())),
        })?;
        let open_reader = || {
            Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|reader| reader.busy_timeout(BUSY_TIMEOUT).map(|()| reader))
            .map_err(|e| backend(format!("opening {} to read: {e}", path.display())))
        };
        let reader = open_reader()?;
        let link_reader = open_reader()?;
        let health = Arc::new(Mutex::new(StoreHealth::ok()));
        let (commands, queue) = mpsc::channel(4096);
        let writer = Writer {
            conn,
            health: health.clone(),
            clock: options.clock.clone(),
        };
        std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| backend(format!("starting the writer thread: {e}")))?;
        // The clock holds the channel weakly: it stops once the store is dropped.
        let every = options.maintenance_every;
        let clock = commands.downgrade();
        std::thread::Builder::new()
            .name("outbox-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(commands) = clock.upgrade() else {
                        return;
                    };
                    // A full queue means a busy writer: it looks after the store next time.
                    let _ = commands.try_send(Message::Maintain);
                }
            })
            .map_err(|e| backend(format!("starting the maintenance thread: {e}")))?;
        Ok(Self {
            commands,
            reader: Arc::new(Mutex::new(reader)),
            link_reader: Arc::new(Mutex::new(link_reader)),
            links: moka::future::Cache::builder()
                .max_capacity(LINKS_CACHED)
                .time_to_live(LINKS_FRESH)
                .build(),
            health,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        // Bounded: when the writer falls behind, callers wait here (back-pressure).
        self.commands
            .send(Message::Request(make(reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Has the writer look after the store now, and waits until it has.
    #[cfg(test)]
    async fn maintain_now(&self) {
        assert!(self.commands.send(Message::Maintain).await.is_ok());
        // Messages are handled in order: once this one ran, so did the maintenance.
        self.on_writer(|_| {}).await;
    }

    /// Runs `f` on the writer's connection, between groups.
    #[cfg(test)]
    async fn on_writer(&self, f: impl FnOnce(&Connection) + Send + 'static) {
        let (reply, answer) = oneshot::channel();
        let message = Message::Test(Box::new(f), reply);
        assert!(self.commands.send(message).await.is_ok(), "the writer runs");
        answer.await.unwrap().unwrap()
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

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn prepare(conn: &mut Connection) -> Result<(), PrepareError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Before anything is changed: a newer version's file is left as it is.
    let version = schema_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(PrepareError::Newer(version));
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk (WAL fsync'd) before it returns; that is what "done" promises.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    // A file that says it has a table but lacks it (dropped by hand, a partial copy): the table
    // is created again, empty, rather than every request failing on it.
    let missing = missing_tables(conn)?;
    if !missing.is_empty() {
        let tx = conn.transaction()?;
        for migration in MIGRATIONS {
            tx.execute_batch(migration)?;
        }
        tx.commit()?;
        tracing::error!(
            tables = %missing.join(", "),
            "tables were missing from the event store and were created again, empty"
        );
    }
    // Deliveries in flight when the process died: due again now. Their lease's end stays, so
    // that the next lease's receipt differs (see `lease`).
    conn.execute(
        "UPDATE events SET state = 'pending' WHERE state = 'delivering'",
        [],
    )?;
    Ok(())
}

fn missing_tables(conn: &Connection) -> rusqlite::Result<Vec<&'static str>> {
    let mut statement =
        conn.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1")?;
    let mut missing = Vec::new();
    for table in TABLES {
        if statement.query_row([table], |row| row.get::<_, i64>(0))? == 0 {
            missing.push(*table);
        }
    }
    Ok(missing)
}

/// Errors that say the store cannot write (rather than that one request was wrong).
fn is_storage_failure(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DiskFull
                | ReadOnly
                | SystemIoFailure
                | DatabaseBusy
                | DatabaseLocked
                | CannotOpen
                | DatabaseCorrupt
                | NotADatabase
                | OutOfMemory
                | PermissionDenied
                | FileLockingProtocolFailed
        )
    )
}

/// What a group (or a probe) found out about writing.
#[derive(Debug, PartialEq)]
enum Written {
    Something,
    Nothing,
    /// A write failed for a reason of the store's (the disk, a lock), not of the request.
    Failed(String),
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    health: Arc<Mutex<StoreHealth>>,
    clock: Clock,
}

impl Writer {
    /// Group commit of everything queued, and maintenance when the clock asks.
    fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        while let Some(first) = queue.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            let mut maintain = false;
            let mut requests = Vec::with_capacity(group.len());
            #[cfg(test)]
            let mut tests = Vec::new();
            for message in group {
                match message {
                    Message::Request(command) => requests.push(command),
                    Message::Maintain => maintain = true,
                    #[cfg(test)]
                    Message::Test(f, reply) => tests.push((f, reply)),
                }
            }
            if !requests.is_empty() {
                let health = &self.health;
                let now = self.clock.now();
                run_group(&mut self.conn, requests, now, |written| {
                    record(health, written)
                });
            }
            if maintain {
                self.maintain();
            }
            // Last, so that a test that waits for one sees what came before it done.
            #[cfg(test)]
            for (f, reply) in tests {
                f(&self.conn);
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn state(&self) -> StoreState {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).state
    }

    fn record(&self, written: Written) {
        record(&self.health, written);
    }

    fn maintain(&mut self) {
        match schema_version(&self.conn) {
            Ok(version) if version > SCHEMA_VERSION => {
                let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                if health.state != StoreState::NewerSchema {
                    tracing::error!(
                        version,
                        "a newer version of tracardi-twitter changed the event store's schema; this one must stop"
                    );
                }
                health.state = StoreState::NewerSchema;
                health.problem = Some(format!(
                    "the event store's schema is version {version}, newer than this version's \
                     {SCHEMA_VERSION}: a newer tracardi-twitter uses the same DATA_DIR"
                ));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the event store's schema version"),
        }
        if self.state() == StoreState::NotWritable {
            let written = probe(&self.conn, self.clock.now());
            self.record(written);
        }
        // Readers are not waited for (they hold the WAL only while they count): the next
        // maintenance finishes the job.
        let checkpoint = self.conn.busy_timeout(Duration::ZERO).and_then(|()| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        });
        let restored = self.conn.busy_timeout(BUSY_TIMEOUT);
        if let Err(e) = checkpoint.and(restored)
            && self.state() == StoreState::Ok
        {
            tracing::warn!(error = %e, "cannot checkpoint the event store's WAL");
        }
    }
}

/// A small write that succeeds only when the store can write.
fn probe(conn: &Connection, now: Millis) -> Written {
    match conn.execute(
        "INSERT INTO write_probe (id, written_ms) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET written_ms = excluded.written_ms",
        params![now],
    ) {
        Ok(_) => Written::Something,
        Err(e) => Written::Failed(e.to_string()),
    }
}

/// A failed write makes the store not writable until a write succeeds.
fn record(health: &Mutex<StoreHealth>, written: Written) {
    let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
    match written {
        Written::Failed(problem) => {
            if health.state != StoreState::NotWritable {
                tracing::error!(
                    problem = %problem,
                    "the event store cannot write; callbacks get 503 until it can (is the disk full?)"
                );
            }
            if health.state != StoreState::NewerSchema {
                health.state = StoreState::NotWritable;
                health.problem = Some(problem);
            }
        }
        Written::Something if health.state == StoreState::NotWritable => {
            tracing::info!("the event store can write again");
            *health = StoreHealth::ok();
        }
        Written::Something | Written::Nothing => {}
    }
}

/// Runs a group in one transaction, each command under its own savepoint: a command that fails
/// is rolled back alone and answered with its error. Answers go out only after the commit; if
/// the commit fails, every member is told so (none of their changes happened).
///
/// `record` learns what was written before any caller is answered: a caller told "not stored"
/// then finds `/ready` already saying why. `now` is the group's time: one transaction, one now.
fn run_group(
    conn: &mut Connection,
    group: Vec<Command>,
    now: Millis,
    record: impl FnOnce(Written),
) {
    let changes_before = conn.total_changes();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let message = format!("starting a transaction: {e}");
            record(Written::Failed(message.clone()));
            for command in group {
                fail(command, &message);
            }
            return;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut failure = None;
    let mut commands = group.into_iter();
    while let Some(command) = commands.next() {
        match run(&tx, "SAVEPOINT command") {
            Ok(()) => {
                let executed = execute(&tx, command, now);
                if let Some(error) = &executed.error {
                    if is_storage_failure(error) {
                        failure = Some(error.to_string());
                    }
                    // Back to where the command started. If this fails, the transaction is
                    // gone (checked below) and with it the command's changes.
                    let _ =
                        run(&tx, "ROLLBACK TO command").and_then(|()| run(&tx, "RELEASE command"));
                    answers.push(executed.answer);
                } else if let Err(e) = run(&tx, "RELEASE command") {
                    let message = format!("releasing a savepoint: {e}");
                    let _ =
                        run(&tx, "ROLLBACK TO command").and_then(|()| run(&tx, "RELEASE command"));
                    let answer = executed.answer;
                    answers.push(Box::new(move |_| answer(Some(&message))));
                } else {
                    answers.push(executed.answer);
                }
            }
            Err(e) => {
                if is_storage_failure(&e) {
                    failure = Some(e.to_string());
                }
                fail(command, &format!("starting a savepoint: {e}"));
            }
        }
        if tx.is_autocommit() {
            // SQLite rolled the whole transaction back (a full disk, an I/O error): nothing of
            // this group happened, and what follows must not run outside a transaction.
            let message = failure.unwrap_or_else(|| "the transaction was rolled back".to_owned());
            record(Written::Failed(message.clone()));
            for answer in answers {
                answer(Some(&message));
            }
            for command in commands {
                fail(command, &message);
            }
            return;
        }
    }
    let commit_error = tx.commit().err().map(|e| format!("committing: {e}"));
    record(match (&commit_error, failure) {
        (Some(problem), _) => Written::Failed(problem.clone()),
        (None, Some(problem)) => Written::Failed(problem),
        (None, None) if conn.total_changes() > changes_before => Written::Something,
        (None, None) => Written::Nothing,
    });
    for answer in answers {
        answer(commit_error.as_deref());
    }
}

/// Runs a statement without parameters or rows (savepoints), prepared once per connection:
/// two per command, they must cost next to nothing.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// A command run: how to answer it once the commit is known, and its own error if it failed.
struct Executed {
    answer: Answer,
    error: Option<rusqlite::Error>,
}

/// Runs one command and returns how to answer it once the commit is known.
fn execute(conn: &Connection, command: Command, now: Millis) -> Executed {
    fn answer<T: Send + 'static>(reply: Reply<T>, result: rusqlite::Result<T>) -> Executed {
        let (result, error) = match result {
            Ok(value) => (Ok(value), None),
            Err(e) => (Err(e.to_string()), Some(e)),
        };
        Executed {
            answer: Box::new(move |commit_error: Option<&str>| {
                let result = match (result, commit_error) {
                    (Err(e), _) => Err(backend(e)),
                    (Ok(_), Some(commit)) => Err(backend(commit.to_owned())),
                    (Ok(value), None) => Ok(value),
                };
                let _ = reply.send(result);
            }),
            error,
        }
    }
    match command {
        Command::Append(event, json, dead, reply) => {
            answer(reply, append(conn, &event, &json, dead.as_deref()))
        }
        Command::ClaimDue(limit, lease, reply) => {
            answer(reply, claim_due(conn, now, limit, now + lease))
        }
        Command::ClaimOldest(lease, reply) => answer(reply, claim_oldest(conn, now + lease)),
        Command::Delivered(receipts, reply) => answer(reply, settle(conn, &receipts, Settle::Delivered)),
        Command::RetryAfter(receipts, after, error, reply) => answer(
            reply,
            settle(conn, &receipts, Settle::Retry { due: now + after, error: &error }),
        ),
        Command::Dead(receipt, error, reply) => answer(
            reply,
            settle(conn, &[receipt], Settle::Dead { error: &error }),
        ),
        Command::PullForward(reply) => answer(
            reply,
            conn.execute(
                "UPDATE events SET due_ms = ?1 WHERE state = 'pending' AND due_ms > ?1",
                params![now],
            )
            .map(|n| n as u64),
        ),
        Command::RequeueDead(reply) => answer(
            reply,
            conn.execute(
                "UPDATE events SET state = 'pending', due_ms = ?1, attempts = 0 WHERE state = 'dead'",
                params![now],
            )
            .map(|n| n as u64),
        ),
        Command::NextDue(reply) => answer(
            reply,
            conn.query_row(
                "SELECT MIN(due_ms) FROM events WHERE state = 'pending'",
                [],
                |row| row.get::<_, Option<Millis>>(0),
            )
            .map(|due| due.map(|due| (due - now).max(0))),
        ),
        Command::Prune(keep, reply) => answer(reply, prune(conn, now - keep)),
        Command::PutPending(key, context, secret, ttl, reply) => answer(
            reply,
            conn.execute(
                "INSERT OR REPLACE INTO pending_authorizations (key, context_json, secret, expires_ms, used)
                 VALUES (?1, ?2, ?3, ?4, 0)",
                params![key, context, secret.expose_secret(), now + ttl],
            )
            .map(|_| ()),
        ),
        Command::TakePending(key, reply) => answer(reply, take_pending(conn, &key, now)),
        Command::LiveAuthorizations(reply) => answer(
            reply,
            conn.query_row(
                "SELECT COUNT(*) FROM pending_authorizations WHERE used = 0 AND expires_ms > ?1",
                [now],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64),
        ),
        Command::PutLink(link, reply) => answer(reply, put_link(conn, &link, now)),
        Command::RevokeLink(x_user_id, reply) => answer(
            reply,
            conn.execute(
                "UPDATE account_links SET revoked_ms = ?2 WHERE x_user_id = ?1",
                params![x_user_id, now],
            )
            .and_then(|_| find_link(conn, &x_user_id)),
        ),
        Command::MarkWebhook(mark, reply) => answer(
            reply,
            conn.execute(
                "INSERT INTO webhook_marks (mark, at_ms) VALUES (?1, ?2)
                 ON CONFLICT (mark) DO UPDATE SET at_ms = MAX(at_ms, excluded.at_ms)",
                params![mark.as_str(), now],
            )
            .map(|_| ()),
        ),
        Command::WebhookSeen(reply) => answer(reply, webhook_seen(conn)),
    }
}

fn put_link(conn: &Connection, link: &AccountLink, now: Millis) -> rusqlite::Result<()> {
    let subscriptions = serde_json::to_string(&link.subscription_ids)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute(
        "INSERT OR REPLACE INTO account_links
             (x_user_id, profile_id, username, subscription_ids_json, linked_ms, revoked_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
        params![
            link.x_user_id,
            link.profile_id,
            link.username,
            subscriptions,
            now
        ],
    )
    .map(|_| ())
}

fn find_link(conn: &Connection, x_user_id: &str) -> rusqlite::Result<Option<AccountLink>> {
    conn.prepare_cached(
        "SELECT profile_id, username, subscription_ids_json, linked_ms, revoked_ms
         FROM account_links WHERE x_user_id = ?1",
    )?
    .query_row([x_user_id], |row| {
        Ok(AccountLink {
            x_user_id: x_user_id.to_owned(),
            profile_id: row.get(0)?,
            username: row.get(1)?,
            // A list damaged by hand reads as none: the link itself still routes events.
            subscription_ids: serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default(),
            linked: row.get(3)?,
            revoked: row.get(4)?,
        })
    })
    .optional()
}

fn webhook_seen(conn: &Connection) -> rusqlite::Result<WebhookSeen> {
    let at = |mark: WebhookMark| {
        conn.query_row(
            "SELECT at_ms FROM webhook_marks WHERE mark = ?1",
            [mark.as_str()],
            |row| row.get::<_, Millis>(0),
        )
        .optional()
    };
    Ok(WebhookSeen {
        last_delivery: at(WebhookMark::Delivery)?,
        last_crc: at(WebhookMark::Crc)?,
    })
}

/// Delivered events created before `before`, and authorizations that expired before it (used or
/// not: kept that long, a replayed link still offers to start again).
fn prune(conn: &Connection, before: Millis) -> rusqlite::Result<u64> {
    let events = conn.execute(
        "DELETE FROM events WHERE state = 'delivered' AND created_ms < ?1",
        params![before],
    )?;
    let authorizations = conn.execute(
        "DELETE FROM pending_authorizations WHERE expires_ms < ?1",
        params![before],
    )?;
    Ok((events + authorizations) as u64)
}

fn take_pending(conn: &Connection, key: &str, now: Millis) -> rusqlite::Result<Taken> {
    let row = conn
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
    conn.execute(
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
        Command::Append(_, _, _, r) => send(r, message),
        Command::ClaimDue(_, _, r) => send(r, message),
        Command::ClaimOldest(_, r) => send(r, message),
        Command::Delivered(_, r) | Command::RetryAfter(_, _, _, r) | Command::Dead(_, _, r) => {
            send(r, message)
        }
        Command::PullForward(r) | Command::RequeueDead(r) | Command::Prune(_, r) => {
            send(r, message)
        }
        Command::NextDue(r) => send(r, message),
        Command::PutPending(_, _, _, _, r) => send(r, message),
        Command::TakePending(_, r) => send(r, message),
        Command::LiveAuthorizations(r) => send(r, message),
        Command::PutLink(_, r) | Command::MarkWebhook(_, r) => send(r, message),
        Command::RevokeLink(_, r) => send(r, message),
        Command::WebhookSeen(r) => send(r, message),
    }
}

fn append(
    conn: &Connection,
    event: &NewEvent,
    json: &str,
    dead: Option<&str>,
) -> rusqlite::Result<Appended> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events
                 (id, event_type, event_json, profile_id, session_id, created_ms, due_ms, state, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, IIF(?7 IS NULL, 'pending', 'dead'), ?7)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            event.id,
            event.event_type,
            json,
            event.profile_id,
            event.session_id,
            event.created,
            dead
        ])?;
    Ok(if inserted == 1 {
        Appended::New
    } else {
        Appended::AlreadyStored
    })
}

const CLAIM_COLUMNS: &str =
    "seq, id, event_type, event_json, profile_id, session_id, created_ms, attempts";

/// A pending row as read back: its `seq` (an INTEGER PRIMARY KEY, always readable) and the
/// event with its attempts, or why the row cannot be one.
type ReadRow = (i64, Result<(NewEvent, u32), String>);

fn read_row(row: &rusqlite::Row) -> rusqlite::Result<ReadRow> {
    Ok((row.get(0)?, decode(row)))
}

fn decode(row: &rusqlite::Row) -> Result<(NewEvent, u32), String> {
    let column = |e: rusqlite::Error| format!("a stored column cannot be read: {e}");
    let json: String = row.get(3).map_err(column)?;
    let event =
        serde_json::from_str(&json).map_err(|e| format!("stored event is not valid JSON: {e}"))?;
    let new = NewEvent {
        id: row.get(1).map_err(column)?,
        event_type: row.get(2).map_err(column)?,
        event,
        profile_id: row.get(4).map_err(column)?,
        session_id: row.get(5).map_err(column)?,
        created: row.get(6).map_err(column)?,
    };
    Ok((new, row.get(7).map_err(column)?))
}

/// Leases the rows that read back as events, until `lease_until`, and makes the others dead
/// with the reason: left pending, a row that cannot be read would be claimed, and fail, forever.
///
/// The lease's end is its receipt's token. It is kept after the lease ends (whatever the event
/// becomes), and a new lease ends at least a millisecond after the last one of the same row, so
/// no two leases of an event share a token, even if the clock steps back.
fn lease(
    conn: &Connection,
    rows: Vec<ReadRow>,
    lease_until: Millis,
) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut leased = conn.prepare_cached(
        "UPDATE events SET state = 'delivering',
             lease_until_ms = MAX(?2, COALESCE(lease_until_ms, ?2 - 1) + 1)
         WHERE seq = ?1 RETURNING lease_until_ms",
    )?;
    let mut buried =
        conn.prepare_cached("UPDATE events SET state = 'dead', last_error = ?2 WHERE seq = ?1")?;
    let mut events = Vec::with_capacity(rows.len());
    for (seq, row) in rows {
        match row {
            Ok((new, attempts)) => {
                let lease = leased.query_row(params![seq, lease_until], |row| row.get(0))?;
                let receipt = Receipt {
                    id: new.id.clone(),
                    lease,
                };
                events.push(StoredEvent {
                    new,
                    attempts,
                    receipt,
                });
            }
            Err(reason) => {
                tracing::error!(seq, reason = %reason, "a stored event cannot be read; it is kept as a dead letter");
                buried.execute(params![seq, reason])?;
            }
        }
    }
    Ok(events)
}

fn claim_due(
    conn: &Connection,
    now: Millis,
    limit: usize,
    lease_until: Millis,
) -> rusqlite::Result<Vec<StoredEvent>> {
    // Leases that ran out (a delivery that never reported back) count as pending again.
    conn.execute(
        "UPDATE events SET state = 'pending'
         WHERE state = 'delivering' AND lease_until_ms <= ?1",
        params![now],
    )?;
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM events WHERE state = 'pending' AND due_ms <= ?1
             ORDER BY due_ms, seq LIMIT ?2"
        ))?
        .query_map(params![now, limit as i64], read_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    lease(conn, rows, lease_until)
}

fn claim_oldest(conn: &Connection, lease_until: Millis) -> rusqlite::Result<Option<StoredEvent>> {
    // Each unreadable row found first is made dead, so this ends.
    loop {
        let row = conn
            .query_row(
                &format!(
                    "SELECT {CLAIM_COLUMNS} FROM events WHERE state = 'pending' ORDER BY seq LIMIT 1"
                ),
                [],
                read_row,
            )
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        if let Some(event) = lease(conn, vec![row], lease_until)?.pop() {
            return Ok(Some(event));
        }
    }
}

/// How a delivery attempt ends for its events.
#[derive(Clone, Copy)]
enum Settle<'a> {
    Delivered,
    Retry { due: Millis, error: &'a str },
    Dead { error: &'a str },
}

/// Settles the events whose receipts are still current (being delivered, under the same lease);
/// returns how many were.
fn settle(conn: &Connection, receipts: &[Receipt], how: Settle) -> rusqlite::Result<u64> {
    let mut settled = 0;
    for Receipt { id, lease } in receipts {
        let changed = match how {
            Settle::Delivered => conn
                .prepare_cached(
                    "UPDATE events SET state = 'delivered'
                     WHERE id = ?1 AND state = 'delivering' AND lease_until_ms = ?2",
                )?
                .execute(params![id, lease])?,
            Settle::Retry { due, error } => conn
                .prepare_cached(
                    "UPDATE events SET state = 'pending', due_ms = ?3, attempts = attempts + 1,
                         last_error = ?4
                     WHERE id = ?1 AND state = 'delivering' AND lease_until_ms = ?2",
                )?
                .execute(params![id, lease, due, error])?,
            Settle::Dead { error } => conn
                .prepare_cached(
                    "UPDATE events SET state = 'dead', last_error = ?3
                     WHERE id = ?1 AND state = 'delivering' AND lease_until_ms = ?2",
                )?
                .execute(params![id, lease, error])?,
        };
        settled += changed as u64;
    }
    Ok(settled)
}

/// Counts by state, in one read transaction (one snapshot) on the reader connection.
fn counts(conn: &mut Connection) -> rusqlite::Result<OutboxCounts> {
    let tx = conn.transaction()?;
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
    fn health(&self) -> StoreHealth {
        if self.commands.is_closed() {
            return StoreHealth {
                state: StoreState::Closed,
                problem: Some("the event store's writer stopped; restart the service".into()),
            };
        }
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    async fn append_dead(&self, event: NewEvent, reason: String) -> Result<Appended, StoreError> {
        let json = event.event.to_string();
        self.call(|r| Command::Append(event, json, Some(reason), r))
            .await
    }
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let json = event.event.to_string();
        self.call(|r| Command::Append(event, json, None, r)).await
    }
    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.call(|r| Command::ClaimDue(limit, millis(lease), r))
            .await
    }
    async fn claim_oldest(&self, lease: Duration) -> Result<Option<StoredEvent>, StoreError> {
        self.call(|r| Command::ClaimOldest(millis(lease), r)).await
    }
    async fn mark_delivered(&self, receipts: Vec<Receipt>) -> Result<u64, StoreError> {
        self.call(|r| Command::Delivered(receipts, r)).await
    }
    async fn retry_after(
        &self,
        receipts: Vec<Receipt>,
        after: Duration,
        error: String,
    ) -> Result<u64, StoreError> {
        self.call(|r| Command::RetryAfter(receipts, millis(after), error, r))
            .await
    }
    async fn mark_dead(&self, receipt: Receipt, error: String) -> Result<bool, StoreError> {
        Ok(self.call(|r| Command::Dead(receipt, error, r)).await? == 1)
    }
    async fn pull_forward(&self) -> Result<u64, StoreError> {
        self.call(Command::PullForward).await
    }
    async fn requeue_dead(&self) -> Result<u64, StoreError> {
        self.call(Command::RequeueDead).await
    }
    async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        let wait = self.call(Command::NextDue).await?;
        Ok(wait.map(|ms| Duration::from_millis(ms as u64)))
    }
    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
            counts(&mut reader).map_err(|e| backend(e.to_string()))
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
    async fn prune_delivered(&self, keep: Duration) -> Result<u64, StoreError> {
        self.call(|r| Command::Prune(millis(keep), r)).await
    }
}

#[async_trait::async_trait]
impl AccountLinks for SqliteOutbox {
    async fn put_link(&self, link: AccountLink) -> Result<(), StoreError> {
        let x_user_id = link.x_user_id.clone();
        let written = self.call(|r| Command::PutLink(link, r)).await;
        self.links.invalidate(&x_user_id).await;
        written
    }
    async fn find_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError> {
        let key = x_user_id.to_owned();
        let reader = self.link_reader.clone();
        self.links
            .try_get_with(key.clone(), async move {
                tokio::task::spawn_blocking(move || {
                    let reader = reader.lock().unwrap_or_else(|p| p.into_inner());
                    find_link(&reader, &key).map_err(|e| backend(e.to_string()))
                })
                .await
                .map_err(|_| StoreError::Closed)?
            })
            .await
            .map_err(|e| backend(e.to_string()))
    }
    async fn revoke_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError> {
        let key = x_user_id.to_owned();
        let revoked = self.call(|r| Command::RevokeLink(key, r)).await;
        self.links.invalidate(x_user_id).await;
        revoked
    }
    async fn mark_webhook(&self, mark: WebhookMark) -> Result<(), StoreError> {
        self.call(|r| Command::MarkWebhook(mark, r)).await
    }
    async fn webhook_seen(&self) -> Result<WebhookSeen, StoreError> {
        self.call(Command::WebhookSeen).await
    }
}

#[async_trait::async_trait]
impl PendingAuthorizations for SqliteOutbox {
    async fn put(
        &self,
        key: String,
        context: serde_json::Value,
        secret: SecretString,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.call(|r| Command::PutPending(key, context.to_string(), secret, millis(ttl), r))
            .await
    }
    async fn take(&self, key: String) -> Result<Taken, StoreError> {
        self.call(|r| Command::TakePending(key, r)).await
    }
    async fn live(&self) -> Result<u64, StoreError> {
        self.call(Command::LiveAuthorizations).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A store in a fresh directory whose clock moves only when the test says, from 0.
    fn at_zero() -> (SqliteOutbox, Clock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(0);
        let options = StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        };
        let store = SqliteOutbox::open_with(dir.path(), options).unwrap();
        (store, clock, dir)
    }

    fn receipts(events: &[StoredEvent]) -> Vec<Receipt> {
        events.iter().map(|e| e.receipt.clone()).collect()
    }

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
        let (store, clock, _dir) = at_zero();
        assert_eq!(store.append(event("b", 10)).await.unwrap(), Appended::New);
        assert_eq!(store.append(event("a", 20)).await.unwrap(), Appended::New);
        assert_eq!(
            store.append(event("b", 30)).await.unwrap(),
            Appended::AlreadyStored
        );
        clock.set(100);
        let claimed = store.claim_due(10, ms(1000)).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|e| e.new.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(claimed[0].new, event("b", 10));
        // Claimed events are not claimed twice while leased.
        assert!(store.claim_due(10, ms(1000)).await.unwrap().is_empty());
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivering), (0, 2));
        assert_eq!(counts.oldest_pending_created, Some(10));
    }

    #[tokio::test]
    async fn retries_dead_letters_and_leases() {
        let (store, clock, _dir) = at_zero();
        for id in ["a", "b", "c"] {
            store.append(event(id, 0)).await.unwrap();
        }
        let claimed = store.claim_due(3, ms(50)).await.unwrap();
        assert_eq!(claimed.len(), 3);
        let [a, b, c] = [0, 1, 2].map(|i| claimed[i].receipt.clone());
        assert_eq!(store.mark_delivered(vec![a]).await.unwrap(), 1);
        assert_eq!(
            store
                .retry_after(vec![b], ms(500), "HTTP 503".into())
                .await
                .unwrap(),
            1
        );
        assert!(store.mark_dead(c, "HTTP 422".into()).await.unwrap());
        clock.set(100);
        assert!(store.claim_due(10, ms(50)).await.unwrap().is_empty());
        assert_eq!(store.next_due_in().await.unwrap(), Some(ms(400)));
        clock.set(500);
        let b = store.claim_due(10, ms(50)).await.unwrap();
        assert_eq!(b[0].attempts, 1);
        // Its lease runs out: due again.
        clock.set(550);
        assert_eq!(store.claim_due(10, ms(50)).await.unwrap().len(), 1);
        clock.set(600);
        assert_eq!(store.requeue_dead().await.unwrap(), 1);
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
        assert_eq!(store.prune_delivered(ms(599)).await.unwrap(), 1);
    }

    /// A worker whose lease ran out (a slow Tracardi, a paused process) reports late: the event
    /// was claimed again meanwhile, and the late report must not overwrite the new claim.
    #[tokio::test]
    async fn a_stale_receipt_does_not_overwrite_the_new_claim() {
        let (store, clock, _dir) = at_zero();
        store.append(event("a", 0)).await.unwrap();
        let first = store.claim_due(10, ms(50)).await.unwrap().remove(0);
        clock.set(60);
        let second = store.claim_due(10, ms(50)).await.unwrap().remove(0);
        assert_ne!(first.receipt, second.receipt);
        let stale = || vec![first.receipt.clone()];
        assert_eq!(store.mark_delivered(stale()).await.unwrap(), 0);
        assert_eq!(
            store
                .retry_after(stale(), ms(1), "late".into())
                .await
                .unwrap(),
            0
        );
        assert!(
            !store
                .mark_dead(first.receipt.clone(), "late".into())
                .await
                .unwrap()
        );
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.delivering, counts.delivered, counts.dead),
            (1, 0, 0)
        );
        // The second claim's lease still holds, and its receipt settles the event.
        clock.set(100);
        assert!(store.claim_due(10, ms(50)).await.unwrap().is_empty());
        assert_eq!(store.mark_delivered(vec![second.receipt]).await.unwrap(), 1);
        assert_eq!(store.counts().await.unwrap().delivered, 1);
    }

    #[tokio::test]
    async fn a_lease_cut_off_by_a_restart_is_not_settled_by_its_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(0);
        let options = || StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        };
        let store = SqliteOutbox::open_with(dir.path(), options()).unwrap();
        store.append(event("a", 0)).await.unwrap();
        let before = store.claim_due(1, ms(1_000)).await.unwrap().remove(0);
        drop(store);
        // Reopened with the clock stepped back: the new lease would end at the same time.
        let store = SqliteOutbox::open_with(dir.path(), options()).unwrap();
        let after = store.claim_due(1, ms(1_000)).await.unwrap().remove(0);
        assert_ne!(before.receipt, after.receipt);
        assert_eq!(store.mark_delivered(vec![before.receipt]).await.unwrap(), 0);
        assert_eq!(store.mark_delivered(vec![after.receipt]).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn pull_forward_and_recovery_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(0);
        let options = || StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        };
        {
            let store = SqliteOutbox::open_with(dir.path(), options()).unwrap();
            store.append(event("a", 0)).await.unwrap();
            store.append(event("b", 0)).await.unwrap();
            store.claim_due(1, ms(1_000_000)).await.unwrap();
            let b = store.claim_due(1, ms(1_000_000)).await.unwrap();
            store
                .retry_after(receipts(&b), ms(999_999), "down".into())
                .await
                .unwrap();
            clock.set(5);
            assert_eq!(store.pull_forward().await.unwrap(), 1);
            assert_eq!(store.next_due_in().await.unwrap(), Some(Duration::ZERO));
        }
        // "a" was being delivered when the process stopped: it is pending again on reopening.
        let store = SqliteOutbox::open_with(dir.path(), options()).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.pending, counts.delivering), (2, 0));
        clock.set(10);
        assert!(store.claim_oldest(ms(100)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn pending_authorizations_work_once_and_expire() {
        let (store, clock, _dir) = at_zero();
        let context = json!({"flow": "oauth2", "profile_id": "p1"});
        store
            .put(
                "k1".into(),
                context.clone(),
                "verifier".to_owned().into(),
                ms(100),
            )
            .await
            .unwrap();
        store
            .put(
                "k2".into(),
                context.clone(),
                "old".to_owned().into(),
                ms(100),
            )
            .await
            .unwrap();
        clock.set(50);
        assert_eq!(store.live().await.unwrap(), 2);
        match store.take("k1".into()).await.unwrap() {
            Taken::Pending { context: c, secret } => {
                assert_eq!(c, context);
                assert_eq!(secret.expose_secret(), "verifier");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.take("k1".into()).await.unwrap(),
            Taken::Used { .. }
        ));
        assert_eq!(store.live().await.unwrap(), 1);
        clock.set(100);
        assert_eq!(store.live().await.unwrap(), 0);
        assert!(matches!(
            store.take("k2".into()).await.unwrap(),
            Taken::Expired { .. }
        ));
        assert!(matches!(
            store.take("k3".into()).await.unwrap(),
            Taken::Unknown
        ));
        // Kept a while after they expired, then forgotten with the delivered events.
        clock.set(101 + 7);
        assert_eq!(store.prune_delivered(ms(7)).await.unwrap(), 2);
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

    fn quiet() -> StoreOptions {
        StoreOptions {
            maintenance_every: Duration::from_secs(3600),
            ..StoreOptions::default()
        }
    }

    fn file(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join(FILE_NAME)).unwrap()
    }

    #[tokio::test]
    async fn an_unreadable_row_becomes_dead_and_the_others_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        for (id, created) in [("a", 1), ("bad", 2), ("c", 3), ("bad2", 0)] {
            store.append(event(id, created)).await.unwrap();
        }
        // Damaged behind the service's back (a disk error, a hand edit).
        let damage = file(&dir);
        damage
            .execute(
                "UPDATE events SET event_json = '{\"id\": \"bad' WHERE id = 'bad'",
                [],
            )
            .unwrap();
        damage
            .execute(
                "UPDATE events SET event_json = x'00ff' WHERE id = 'bad2'",
                [],
            )
            .unwrap();
        let claimed = store.claim_due(10, ms(1000)).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|e| e.new.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.delivering, counts.dead, counts.pending), (2, 2, 0));
        let reason: String = damage
            .query_row("SELECT last_error FROM events WHERE id = 'bad'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            reason.starts_with("stored event is not valid JSON: "),
            "{reason}"
        );
        let reason: String = damage
            .query_row("SELECT last_error FROM events WHERE id = 'bad2'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(reason.contains("cannot be read"), "{reason}");
        // Re-driven, it is found unreadable again, and the probe's claim skips it too.
        store.requeue_dead().await.unwrap();
        store.append(event("d", 5)).await.unwrap();
        let oldest = store.claim_oldest(ms(1000)).await.unwrap().unwrap();
        assert_eq!(oldest.new.id, "d");
        assert_eq!(store.counts().await.unwrap().dead, 2);
    }

    /// A reply channel and the end that receives its answer.
    fn reply<T>() -> (Reply<T>, oneshot::Receiver<Result<T, StoreError>>) {
        oneshot::channel()
    }

    #[tokio::test]
    async fn a_command_that_fails_half_way_leaves_nothing_and_its_neighbours_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = file(&dir);
        assert!(prepare(&mut conn).is_ok());
        for (id, created) in [("a", 1), ("poison", 2)] {
            let e = event(id, created);
            append(&conn, &e, &e.event.to_string(), None).unwrap();
        }
        // Leasing "poison" fails, after "a" was leased by the same command.
        conn.execute_batch(
            "CREATE TRIGGER poison BEFORE UPDATE OF state ON events
             WHEN NEW.id = 'poison' AND NEW.state = 'delivering'
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        )
        .unwrap();
        let (x, y) = (event("x", 3), event("y", 4));
        let (before, before_answer) = reply();
        let (claim, claim_answer) = reply();
        let (after, after_answer) = reply();
        let group = vec![
            Command::Append(x.clone(), x.event.to_string(), None, before),
            Command::ClaimDue(10, 1000, claim),
            Command::Append(y.clone(), y.event.to_string(), None, after),
        ];
        let mut written = None;
        run_group(&mut conn, group, 10, |w| written = Some(w));
        assert_eq!(written, Some(Written::Something));
        assert_eq!(before_answer.await.unwrap().unwrap(), Appended::New);
        let error = claim_answer.await.unwrap().unwrap_err().to_string();
        assert!(error.contains("poisoned row"), "{error}");
        assert_eq!(after_answer.await.unwrap().unwrap(), Appended::New);
        let states: Vec<(String, String)> = conn
            .prepare("SELECT id, state FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let pending = |id: &str| (id.to_owned(), "pending".to_owned());
        // "a" is not left leased by the claim that failed.
        assert_eq!(
            states,
            [pending("a"), pending("poison"), pending("x"), pending("y")]
        );
    }

    #[tokio::test]
    async fn a_file_of_a_newer_version_is_refused_and_a_missing_table_is_created() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteOutbox::open(dir.path()).unwrap());
        file(&dir)
            .execute_batch("DROP TABLE pending_authorizations;")
            .unwrap();
        let store = SqliteOutbox::open(dir.path()).unwrap();
        store
            .put("k".into(), json!({}), "s".to_owned().into(), ms(10))
            .await
            .unwrap();
        drop(store);

        file(&dir)
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = SqliteOutbox::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("newer version of tracardi-twitter")
                && error.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{error}"
        );
        // Left as it was found.
        let version: i64 = file(&dir)
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION + 1);
    }

    #[tokio::test]
    async fn a_schema_changed_by_a_newer_version_while_running_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open_with(dir.path(), quiet()).unwrap();
        assert_eq!(store.health(), StoreHealth::ok());
        file(&dir)
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        store.maintain_now().await;
        let health = store.health();
        assert_eq!(health.state, StoreState::NewerSchema);
        assert!(
            !health
                .problem
                .unwrap()
                .contains(dir.path().to_str().unwrap())
        );
    }

    #[tokio::test]
    async fn a_full_disk_makes_the_store_unwritable_until_a_write_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open_with(dir.path(), quiet()).unwrap();
        store.append(event("small", 0)).await.unwrap();
        // The file may not grow: as good as a full disk for SQLite.
        store
            .on_writer(|conn| {
                let pages: i64 = conn
                    .pragma_query_value(None, "page_count", |r| r.get(0))
                    .unwrap();
                conn.pragma_update(None, "max_page_count", pages).unwrap();
            })
            .await;
        let mut big = event("big", 1);
        big.event["properties"]["padding"] = json!("p".repeat(200_000));
        let error = store.append(big.clone()).await.unwrap_err().to_string();
        assert!(error.contains("full"), "{error}");
        let health = store.health();
        assert_eq!(health.state, StoreState::NotWritable);
        assert!(health.problem.unwrap().contains("full"));
        // Reads do not make it writable again.
        assert!(store.next_due_in().await.is_ok());
        assert_eq!(store.health().state, StoreState::NotWritable);

        // Space is freed: the maintenance's small write finds out.
        store
            .on_writer(|conn| {
                conn.pragma_update(None, "max_page_count", 1_000_000)
                    .unwrap();
            })
            .await;
        store.maintain_now().await;
        assert_eq!(store.health(), StoreHealth::ok());
        assert_eq!(store.append(big).await.unwrap(), Appended::New);
    }

    fn wal_len(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join(format!("{FILE_NAME}-wal")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn the_wal_gives_its_space_back_after_a_burst() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteOutbox::open_with(dir.path(), quiet()).unwrap());
        let tasks: Vec<_> = (0..1500)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut e = event(&format!("burst-{i}"), i);
                    e.event["properties"]["padding"] = json!("p".repeat(3000));
                    store.append(e).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let claimed = store.claim_due(2000, ms(1000)).await.unwrap();
        assert_eq!(claimed.len(), 1500);
        store.mark_delivered(receipts(&claimed)).await.unwrap();
        assert!(store.prune_delivered(Duration::ZERO).await.unwrap() >= 1500);
        assert!(
            wal_len(&dir) > 1024 * 1024,
            "the burst grew the WAL: {}",
            wal_len(&dir)
        );
        store.maintain_now().await;
        assert_eq!(wal_len(&dir), 0);
    }

    #[tokio::test]
    async fn the_store_looks_after_itself_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutbox::open_with(
            dir.path(),
            StoreOptions {
                maintenance_every: Duration::from_millis(20),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store.append(event("a", 0)).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while wal_len(&dir) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was never truncated"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
