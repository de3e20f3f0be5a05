//! The shared store: events and started authorizations in Redis, for several replicas.
//!
//! Every change that touches more than one key is one Lua script (`redis::Script`), so it is
//! atomic, and every script takes its time from Redis (`TIME`): replicas whose clocks disagree
//! still agree on what is due and whose lease ran out. Every key starts with the hash tag
//! `{REDIS_PREFIX}`, so a Redis Cluster keeps them in one slot (the scripts build the names of
//! the events' keys they touch, which a cluster allows only within one slot).
//!
//! Keys, for prefix `p`:
//! - `{p}:event:<id>`: a hash: the event (JSON), state, attempts, due, lease token, last error.
//! - `{p}:pending` (due), `{p}:leased` (end of lease), `{p}:undelivered` (created: pending and
//!   leased), `{p}:delivered` (created), `{p}:dead` (created): sorted sets of event ids.
//! - `{p}:auth:<key>`: a started authorization's context; `{p}:auth-secret:<key>` its secret,
//!   which Redis forgets when the authorization expires; `{p}:auth-live` (expiry) what waits.
//!
//! Durable before acknowledged: at start the service checks that Redis fsyncs every write
//! (`appendonly yes`, `appendfsync always`) and evicts nothing (`maxmemory-policy noeviction`),
//! and with `REDIS_WAIT_REPLICAS` a write is acknowledged only once that many replicas have it.
//! While Redis cannot be reached, the store's health says so (callbacks get 503, `/ready` says
//! why) and a small write every [`PROBE_EVERY`] notices when it can be reached again.

use super::{
    AccountLink, AccountLinks, Appended, Millis, NewEvent, Outbox, OutboxCounts,
    PendingAuthorizations, Receipt, StoreError, StoreHealth, StoreState, StoredEvent, Taken,
    WebhookMark, WebhookSeen, millis,
};
use crate::config::{Durability, RedisConfig};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::caching::CacheConfig;
use redis::{ProtocolVersion, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// While Redis cannot be reached, a small write is tried this often.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis's answer before the callback is told "not stored".
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a write waits for REDIS_WAIT_REPLICAS replicas to confirm it.
const WAIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Account links (and accounts without one) kept in each replica's client-side cache.
const LINKS_CACHED: std::num::NonZeroUsize = std::num::NonZeroUsize::new(100_000).unwrap();
/// The longest an entry is kept without Redis saying it changed: Redis does say, so this only
/// bounds what a lost invalidation (none is known) could cost.
const LINKS_FRESH: Duration = Duration::from_secs(300);
/// Used and expired authorizations are remembered this long after they expired, so that a
/// replayed link still offers to start again (the secret itself is gone at expiry).
const AUTHORIZATION_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Events one script run touches at most when it works through a whole set (prune, pull
/// forward, requeue, expired leases): a long backlog does not block Redis, the caller (or the
/// next claim) goes on with the rest.
const BATCH: usize = 1000;

/// Redis's clock in ms, in every script.
const NOW: &str = "local function now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

// KEYS of the event scripts: 1 pending, 2 leased, 3 undelivered, 4 delivered, 5 dead.
// ARGV[1]: the prefix of the events' keys.

/// ARGV[5]: empty, or why the event is stored as a dead letter.
const APPEND: &str = "
local key = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', key) == 1 then return 0 end
local t = now()
if ARGV[5] ~= '' then
    redis.call('HSET', key, 'event', ARGV[3], 'created', ARGV[4], 'state', 'dead',
        'attempts', 0, 'due', t, 'lease', 0, 'last_error', ARGV[5])
    redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
    return 1
end
redis.call('HSET', key, 'event', ARGV[3], 'created', ARGV[4], 'state', 'pending',
    'attempts', 0, 'due', t, 'lease', 0)
redis.call('ZADD', KEYS[1], t, ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
";

/// ARGV[2]: `due` (up to ARGV[3] events due now) or `oldest` (the first pending, due or not);
/// ARGV[4]: the lease in ms; ARGV[5]: at most this many expired leases are made pending first. Returns id, lease token, event JSON, attempts for each event; an
/// event whose hash vanished has token -1.
const CLAIM: &str = "
local t = now()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t, 'LIMIT', 0, tonumber(ARGV[5]))) do
    redis.call('ZREM', KEYS[2], id)
    local key = ARGV[1] .. id
    local due = redis.call('HGET', key, 'due')
    if due then
        redis.call('HSET', key, 'state', 'pending')
        redis.call('ZADD', KEYS[1], due, id)
    end
end
local ids
if ARGV[2] == 'due' then
    ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t, 'LIMIT', 0, tonumber(ARGV[3]))
else
    ids = redis.call('ZRANGE', KEYS[1], 0, 0)
end
local out = {}
for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    local key = ARGV[1] .. id
    if redis.call('EXISTS', key) == 0 then
        redis.call('ZREM', KEYS[3], id)
        for _, v in ipairs({id, '-1', '', '0'}) do table.insert(out, v) end
    else
        local lease = redis.call('HINCRBY', key, 'lease', 1)
        redis.call('HSET', key, 'state', 'delivering')
        redis.call('ZADD', KEYS[2], t + tonumber(ARGV[4]), id)
        local f = redis.call('HMGET', key, 'event', 'attempts')
        for _, v in ipairs({id, tostring(lease), f[1] or '', f[2] or '0'}) do
            table.insert(out, v)
        end
    end
end
return out
";

/// ARGV[2]: delivered, retry or dead; ARGV[3]: the wait before a retry (ms); ARGV[4]: the
/// error; then pairs of id and lease token. Settles the events whose lease is still the one
/// named; returns how many.
const SETTLE: &str = "
local t = now()
local settled = 0
for i = 5, #ARGV, 2 do
    local id = ARGV[i]
    local key = ARGV[1] .. id
    local cur = redis.call('HMGET', key, 'state', 'lease', 'created')
    if cur[1] == 'delivering' and cur[2] == ARGV[i + 1] then
        redis.call('ZREM', KEYS[2], id)
        if ARGV[2] == 'delivered' then
            redis.call('HSET', key, 'state', 'delivered')
            redis.call('ZREM', KEYS[3], id)
            redis.call('ZADD', KEYS[4], cur[3], id)
        elseif ARGV[2] == 'retry' then
            local due = t + tonumber(ARGV[3])
            redis.call('HSET', key, 'state', 'pending', 'due', due, 'last_error', ARGV[4])
            redis.call('HINCRBY', key, 'attempts', 1)
            redis.call('ZADD', KEYS[1], due, id)
        else
            redis.call('HSET', key, 'state', 'dead', 'last_error', ARGV[4])
            redis.call('ZREM', KEYS[3], id)
            redis.call('ZADD', KEYS[5], cur[3], id)
        end
        settled = settled + 1
    end
end
return settled
";

/// ARGV[2]: at most this many.
const PULL_FORWARD: &str = "
local t = now()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. t, '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[1], t, id)
    redis.call('HSET', ARGV[1] .. id, 'due', t)
end
return #ids
";

/// ARGV[2]: at most this many. Returns how many were looked at and how many are pending again.
const REQUEUE_DEAD: &str = "
local t = now()
local ids = redis.call('ZRANGE', KEYS[5], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local n = 0
for i = 1, #ids, 2 do
    local id = ids[i]
    local key = ARGV[1] .. id
    redis.call('ZREM', KEYS[5], id)
    if redis.call('EXISTS', key) == 1 then
        redis.call('HSET', key, 'state', 'pending', 'attempts', 0, 'due', t)
        redis.call('ZADD', KEYS[1], t, id)
        redis.call('ZADD', KEYS[3], ids[i + 1], id)
        n = n + 1
    end
end
return {#ids / 2, n}
";

/// -1: nothing pending.
const NEXT_DUE: &str = "
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return -1 end
return math.max(0, tonumber(first[2]) - now())
";

const COUNTS: &str = "
local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[5]),
    redis.call('ZCARD', KEYS[4]), oldest[2] or '-1'}
";

/// ARGV[2]: keep (ms); ARGV[3]: at most this many.
const PRUNE: &str = "
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now() - tonumber(ARGV[2])),
    'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
    redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[4], id)
end
return #ids
";

// KEYS of the authorization scripts: 1 the context, 2 the secret, 3 what waits.

/// ARGV: key, context, secret, ttl (ms), kept after expiry (ms). Set once: 0 when the key
/// exists already.
const PUT_AUTHORIZATION: &str = "
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[4])
local expires = now() + ttl
redis.call('HSET', KEYS[1], 'context', ARGV[2], 'expires', expires, 'used', 0)
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[5]))
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
redis.call('ZADD', KEYS[3], expires, ARGV[1])
return 1
";

const TAKE_AUTHORIZATION: &str = "
local f = redis.call('HMGET', KEYS[1], 'context', 'expires', 'used')
if not f[1] then return {'unknown'} end
if f[3] == '1' then return {'used', f[1]} end
local secret = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'used', 1)
redis.call('ZREM', KEYS[3], ARGV[1])
if secret and tonumber(f[2]) > now() then return {'pending', f[1], secret} end
return {'expired', f[1]}
";

const LIVE_AUTHORIZATIONS: &str = "
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now())
return redis.call('ZCARD', KEYS[3])
";

// Account links: one hash per X account; KEYS[1] the link, ARGV the fields.

const PUT_LINK: &str = "
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'profile_id', ARGV[1], 'username', ARGV[2],
    'subscription_ids', ARGV[3], 'linked', now())
return 1
";

const REVOKE_LINK: &str = "
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', now())
return 1
";

/// KEYS[1] the marks' hash; ARGV[1] the mark. Keeps the latest time.
const MARK_WEBHOOK: &str = "
local t = now()
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if t > before then redis.call('HSET', KEYS[1], ARGV[1], t) end
return 1
";

/// The scripts, each with the clock in front.
struct Scripts {
    append: Script,
    claim: Script,
    settle: Script,
    pull_forward: Script,
    requeue_dead: Script,
    next_due: Script,
    counts: Script,
    prune: Script,
    put_authorization: Script,
    take_authorization: Script,
    live_authorizations: Script,
    put_link: Script,
    revoke_link: Script,
    mark_webhook: Script,
}

impl Scripts {
    fn new() -> Self {
        let script = |body: &str| Script::new(&format!("{NOW}{body}"));
        Self {
            append: script(APPEND),
            claim: script(CLAIM),
            settle: script(SETTLE),
            pull_forward: script(PULL_FORWARD),
            requeue_dead: script(REQUEUE_DEAD),
            next_due: script(NEXT_DUE),
            counts: script(COUNTS),
            prune: script(PRUNE),
            put_authorization: script(PUT_AUTHORIZATION),
            take_authorization: script(TAKE_AUTHORIZATION),
            live_authorizations: script(LIVE_AUTHORIZATIONS),
            put_link: script(PUT_LINK),
            revoke_link: script(REVOKE_LINK),
            mark_webhook: script(MARK_WEBHOOK),
        }
    }
}

/// Key names under one hash tag.
#[derive(Debug, Clone)]
struct Keys {
    tag: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            tag: format!("{{{prefix}}}"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.tag)
    }

    fn event_prefix(&self) -> String {
        self.key("event:")
    }

    /// The sorted sets every event script takes, in the order the scripts expect.
    fn event_sets(&self) -> [String; 5] {
        ["pending", "leased", "undelivered", "delivered", "dead"].map(|name| self.key(name))
    }

    fn link(&self, x_user_id: &str) -> String {
        self.key(&format!("link:{x_user_id}"))
    }

    fn authorization(&self, key: &str) -> [String; 3] {
        [
            self.key(&format!("auth:{key}")),
            self.key(&format!("auth-secret:{key}")),
            self.key("auth-live"),
        ]
    }
}

struct Inner {
    conn: ConnectionManager,
    /// Account links only, read through redis-rs' server-assisted client-side cache (RESP3,
    /// `CLIENT TRACKING`): a look-up is a round trip only the first time, and a link changed
    /// by any replica is dropped from every replica's cache by Redis itself. With
    /// `appendfsync always` every round trip waits for an fsync, so the two look-ups of each
    /// X activity doubled its latency.
    links_conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    health: Mutex<StoreHealth>,
    wait_replicas: u32,
}

/// The Redis store; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.inner.keys.tag)
            .finish_non_exhaustive()
    }
}

fn backend(message: impl Into<String>) -> StoreError {
    StoreError::Backend(message.into())
}

/// Errors that say Redis cannot take writes now (rather than that one request was wrong).
fn is_unavailable(e: &RedisError) -> bool {
    // An error Redis itself answered carries a code; only these codes mean it cannot take
    // writes. An error without a code never came from Redis: the connection failed, dropped,
    // timed out or is being re-established, however the client names it.
    match e.code() {
        None => true,
        Some(code) => matches!(
            code,
            "OOM" | "READONLY" | "LOADING" | "MASTERDOWN" | "MISCONF" | "NOREPLICAS"
        ),
    }
}

/// What Redis said, without anything of the URL (it may hold a password).
fn describe(e: &RedisError) -> String {
    format!("Redis: {e}")
}

impl RedisStore {
    /// Connects, and checks that Redis keeps what it is told as `durability` asks.
    pub async fn open(config: &RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.expose_secret())
            .map_err(|e| backend(format!("REDIS_URL cannot be used: {e}")))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let links_client = redis::Client::open(info.set_redis_settings(resp3))
            .map_err(|e| backend(format!("REDIS_URL cannot be used: {e}")))?;
        let links_cache = CacheConfig::new()
            .set_size(LINKS_CACHED)
            .set_default_client_ttl(LINKS_FRESH);
        let conn = ConnectionManager::new_with_config(client, settings.clone())
            .await
            .map_err(|e| backend(format!("cannot connect to Redis at REDIS_URL: {e}")))?;
        let links_conn =
            ConnectionManager::new_with_config(links_client, settings.set_cache_config(links_cache))
                .await
                .unwrap_or_else(|e| {
                    // A Redis before 6, or one that refuses RESP3 or CLIENT TRACKING: correct,
                    // one round trip more per X activity.
                    tracing::warn!(error = %describe(&e), "account links are read from Redis without a client-side cache");
                    conn.clone()
                });
        let store = Self {
            inner: Arc::new(Inner {
                conn,
                links_conn,
                keys: Keys::new(&config.prefix),
                scripts: Scripts::new(),
                health: Mutex::new(StoreHealth::ok()),
                wait_replicas: config.wait_replicas,
            }),
        };
        store.check_durability(config.durability).await?;
        tokio::spawn(watch(Arc::downgrade(&store.inner)));
        Ok(store)
    }

    /// `appendonly yes` + `appendfsync always`: a write is on disk before Redis answers, as
    /// "done" promises; `noeviction`: nothing stored is dropped to make room.
    async fn check_durability(&self, durability: Durability) -> Result<(), StoreError> {
        let mut conn = self.inner.conn.clone();
        let mut settings = HashMap::new();
        let mut refused = None;
        for name in ["appendonly", "appendfsync", "maxmemory-policy"] {
            match redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<HashMap<String, String>>(&mut conn)
                .await
            {
                Ok(values) => settings.extend(values),
                Err(e) => refused = Some(e),
            }
        }
        let mut problems = Vec::new();
        if let Some(e) = refused {
            problems.push(format!(
                "Redis refused CONFIG GET ({e}), so its durability cannot be checked"
            ));
        } else {
            let setting = |name: &str| settings.get(name).map_or("", String::as_str);
            if setting("appendonly") != "yes" || setting("appendfsync") != "always" {
                problems.push(format!(
                    "Redis does not fsync every write (appendonly {}, appendfsync {}): a crash \
                     of Redis loses events browsers were told were stored; set appendonly yes \
                     and appendfsync always",
                    setting("appendonly"),
                    setting("appendfsync")
                ));
            }
            if setting("maxmemory-policy") != "noeviction" {
                problems.push(format!(
                    "Redis may evict keys when full (maxmemory-policy {}); set noeviction",
                    setting("maxmemory-policy")
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        match durability {
            Durability::Strict => Err(backend(format!(
                "{}; or set REDIS_DURABILITY=relaxed to accept the risk",
                problems.join("; ")
            ))),
            Durability::Relaxed => {
                for problem in problems {
                    tracing::warn!(problem = %problem, "REDIS_DURABILITY=relaxed: starting anyway");
                }
                Ok(())
            }
        }
    }

    fn record(&self, result: &Result<(), &RedisError>, wrote: bool) {
        record(&self.inner.health, result, wrote);
    }

    /// Runs a script, keeping the health up to date: a failure to reach Redis makes the store
    /// not writable until a write succeeds.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        wrote: bool,
    ) -> Result<T, StoreError> {
        self.run_on(&self.inner.conn, invocation, wrote).await
    }

    /// [`RedisStore::run`] on one of the two connections.
    async fn run_on<T: redis::FromRedisValue>(
        &self,
        conn: &ConnectionManager,
        invocation: &redis::ScriptInvocation<'_>,
        wrote: bool,
    ) -> Result<T, StoreError> {
        let mut conn = conn.clone();
        let result = invocation.invoke_async::<T>(&mut conn).await;
        self.record(&result.as_ref().map(|_| ()), wrote);
        result.map_err(|e| backend(describe(&e)))
    }

    /// With REDIS_WAIT_REPLICAS, waits until that many replicas have every write so far.
    async fn replicated(&self) -> Result<(), StoreError> {
        self.replicated_on(&self.inner.conn).await
    }

    /// [`RedisStore::replicated`] for the writes made on `conn` (WAIT counts its own
    /// connection's).
    async fn replicated_on(&self, conn: &ConnectionManager) -> Result<(), StoreError> {
        let wanted = self.inner.wait_replicas;
        if wanted == 0 {
            return Ok(());
        }
        let mut conn = conn.clone();
        let result = redis::cmd("WAIT")
            .arg(wanted)
            .arg(millis(WAIT_TIMEOUT))
            .query_async::<u32>(&mut conn)
            .await;
        self.record(&result.as_ref().map(|_| ()), false);
        match result {
            Ok(confirmed) if confirmed >= wanted => Ok(()),
            Ok(confirmed) => Err(backend(format!(
                "only {confirmed} of the {wanted} Redis replicas (REDIS_WAIT_REPLICAS) confirmed the write within {WAIT_TIMEOUT:?}"
            ))),
            Err(e) => Err(backend(describe(&e))),
        }
    }

    /// Appends an event as pending (`dead` empty) or as a dead letter with that reason.
    async fn append_as(&self, event: NewEvent, dead: &str) -> Result<Appended, StoreError> {
        let json = serde_json::to_string(&event).map_err(|e| backend(e.to_string()))?;
        let mut invocation = self.event_script(&self.inner.scripts.append);
        invocation
            .arg(&event.id)
            .arg(json)
            .arg(event.created)
            .arg(dead);
        let new: i64 = self.run(&invocation, true).await?;
        // A repeat is waited for too: the first write may not have reached the replicas yet.
        self.replicated().await?;
        Ok(if new == 1 {
            Appended::New
        } else {
            Appended::AlreadyStored
        })
    }

    fn event_script<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.inner.keys.event_sets() {
            invocation.key(key);
        }
        invocation.arg(self.inner.keys.event_prefix());
        invocation
    }

    /// Claims events (`mode` as the script says); returns how many were taken off the pending
    /// set and those that read back as events (the others are made dead, with the reason).
    async fn claim(
        &self,
        mode: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<(usize, Vec<StoredEvent>), StoreError> {
        let mut invocation = self.event_script(&self.inner.scripts.claim);
        invocation
            .arg(mode)
            .arg(limit)
            .arg(millis(lease))
            .arg(BATCH);
        let flat: Vec<String> = self.run(&invocation, true).await?;
        let found = flat.len() / 4;
        let mut events = Vec::with_capacity(flat.len() / 4);
        for claimed in flat.chunks_exact(4) {
            let [id, lease, json, attempts] = claimed else {
                unreachable!("chunks of four")
            };
            let lease: i64 = lease.parse().unwrap_or(-1);
            if lease < 0 {
                tracing::error!(event_id = %id, "a pending event's record is missing from Redis (evicted? deleted by hand?)");
                continue;
            }
            let receipt = Receipt {
                id: id.clone(),
                lease,
            };
            match serde_json::from_str::<NewEvent>(json) {
                Ok(new) => events.push(StoredEvent {
                    new,
                    attempts: attempts.parse().unwrap_or(0),
                    receipt,
                }),
                Err(e) => {
                    let reason = format!("stored event is not valid JSON: {e}");
                    tracing::error!(event_id = %id, reason = %reason, "a stored event cannot be read; it is kept as a dead letter");
                    self.settle("dead", vec![receipt], Duration::ZERO, reason)
                        .await?;
                }
            }
        }
        Ok((found, events))
    }

    async fn settle(
        &self,
        how: &str,
        receipts: Vec<Receipt>,
        after: Duration,
        error: String,
    ) -> Result<u64, StoreError> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.event_script(&self.inner.scripts.settle);
        invocation.arg(how).arg(millis(after)).arg(error);
        for receipt in receipts {
            invocation.arg(receipt.id).arg(receipt.lease);
        }
        self.run(&invocation, true).await
    }
}

/// A failure to reach Redis makes the store not writable; a write that succeeds makes it
/// writable again.
fn record(health: &Mutex<StoreHealth>, result: &Result<(), &RedisError>, wrote: bool) {
    let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Err(e) if is_unavailable(e) => {
            if health.state != StoreState::NotWritable {
                tracing::error!(problem = %describe(e), "Redis cannot take writes; callbacks get 503 until it can");
            }
            health.state = StoreState::NotWritable;
            health.problem = Some(describe(e));
        }
        Ok(()) if wrote && health.state == StoreState::NotWritable => {
            tracing::info!("Redis takes writes again");
            *health = StoreHealth::ok();
        }
        _ => {}
    }
}

/// While the store is not writable, tries a small write every [`PROBE_EVERY`] to notice that
/// Redis is back even when nothing else is written. Ends with the store.
async fn watch(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.health.lock().unwrap_or_else(|p| p.into_inner()).state == StoreState::Ok {
            continue;
        }
        let mut conn = inner.conn.clone();
        let result = redis::cmd("SET")
            .arg(inner.keys.key("probe"))
            .arg(super::now_millis())
            .query_async::<()>(&mut conn)
            .await;
        record(&inner.health, &result.as_ref().map(|_| ()), true);
    }
}

#[async_trait::async_trait]
impl Outbox for RedisStore {
    fn health(&self) -> StoreHealth {
        self.inner
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        self.append_as(event, "").await
    }
    async fn append_dead(&self, event: NewEvent, reason: String) -> Result<Appended, StoreError> {
        // Never empty: an empty reason stores the event as pending.
        let reason = if reason.is_empty() {
            "dead".into()
        } else {
            reason
        };
        self.append_as(event, &reason).await
    }
    async fn claim_due(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.claim("due", limit, lease).await?.1)
    }
    async fn claim_oldest(&self, lease: Duration) -> Result<Option<StoredEvent>, StoreError> {
        // An unreadable event found first is made dead, so this ends.
        loop {
            let (found, mut events) = self.claim("oldest", 1, lease).await?;
            if found == 0 {
                return Ok(None);
            }
            if let Some(event) = events.pop() {
                return Ok(Some(event));
            }
        }
    }
    async fn mark_delivered(&self, receipts: Vec<Receipt>) -> Result<u64, StoreError> {
        self.settle("delivered", receipts, Duration::ZERO, String::new())
            .await
    }
    async fn retry_after(
        &self,
        receipts: Vec<Receipt>,
        after: Duration,
        error: String,
    ) -> Result<u64, StoreError> {
        self.settle("retry", receipts, after, error).await
    }
    async fn mark_dead(&self, receipt: Receipt, error: String) -> Result<bool, StoreError> {
        Ok(self
            .settle("dead", vec![receipt], Duration::ZERO, error)
            .await?
            == 1)
    }
    async fn pull_forward(&self) -> Result<u64, StoreError> {
        let mut moved = 0;
        loop {
            let mut invocation = self.event_script(&self.inner.scripts.pull_forward);
            invocation.arg(BATCH);
            let n: u64 = self.run(&invocation, true).await?;
            moved += n;
            if n < BATCH as u64 {
                return Ok(moved);
            }
        }
    }
    async fn requeue_dead(&self) -> Result<u64, StoreError> {
        let mut requeued = 0;
        loop {
            let mut invocation = self.event_script(&self.inner.scripts.requeue_dead);
            invocation.arg(BATCH);
            let (looked_at, n): (u64, u64) = self.run(&invocation, true).await?;
            requeued += n;
            if looked_at < BATCH as u64 {
                return Ok(requeued);
            }
        }
    }
    async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        let invocation = self.event_script(&self.inner.scripts.next_due);
        let wait: i64 = self.run(&invocation, false).await?;
        Ok(u64::try_from(wait).ok().map(Duration::from_millis))
    }
    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let invocation = self.event_script(&self.inner.scripts.counts);
        let (pending, delivering, dead, delivered, oldest): (u64, u64, u64, u64, String) =
            self.run(&invocation, false).await?;
        Ok(OutboxCounts {
            pending,
            delivering,
            dead,
            delivered,
            oldest_pending_created: oldest.parse().ok().filter(|created| *created >= 0),
        })
    }
    async fn prune_delivered(&self, keep: Duration) -> Result<u64, StoreError> {
        let mut pruned = 0;
        loop {
            let mut invocation = self.event_script(&self.inner.scripts.prune);
            invocation.arg(millis(keep)).arg(BATCH);
            let n: u64 = self.run(&invocation, true).await?;
            pruned += n;
            if n < BATCH as u64 {
                return Ok(pruned);
            }
        }
    }
}

/// A link as its hash holds it; an empty hash (no key) is no link.
fn link_of(x_user_id: &str, fields: &HashMap<String, String>) -> Option<AccountLink> {
    let profile_id = fields.get("profile_id")?;
    let number = |name: &str| fields.get(name).and_then(|v| v.parse::<Millis>().ok());
    Some(AccountLink {
        x_user_id: x_user_id.to_owned(),
        profile_id: profile_id.clone(),
        username: fields.get("username").filter(|u| !u.is_empty()).cloned(),
        subscription_ids: fields
            .get("subscription_ids")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        linked: number("linked").unwrap_or(0),
        revoked: number("revoked"),
    })
}

impl RedisStore {
    /// A plain command (no script), keeping the health up to date.
    async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
        wrote: bool,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        let result = command.query_async::<T>(&mut conn).await;
        self.record(&result.as_ref().map(|_| ()), wrote);
        result.map_err(|e| backend(describe(&e)))
    }
}

#[async_trait::async_trait]
impl AccountLinks for RedisStore {
    async fn put_link(&self, link: AccountLink) -> Result<(), StoreError> {
        let subscriptions =
            serde_json::to_string(&link.subscription_ids).map_err(|e| backend(e.to_string()))?;
        let mut invocation = self.inner.scripts.put_link.prepare_invoke();
        invocation
            .key(self.inner.keys.link(&link.x_user_id))
            .arg(&link.profile_id)
            .arg(link.username.as_deref().unwrap_or(""))
            .arg(subscriptions);
        // On the links' connection: Redis's invalidation of this replica's cached entry comes
        // back on it before the answer, so this replica reads its own write.
        let links_conn = &self.inner.links_conn;
        let _: i64 = self.run_on(links_conn, &invocation, true).await?;
        self.replicated_on(links_conn).await
    }
    async fn find_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError> {
        Ok(self.find_links(&[x_user_id]).await?.pop().flatten())
    }
    /// One pipeline: the activity's account and actor cost one round trip, not two.
    async fn find_links(
        &self,
        x_user_ids: &[&str],
    ) -> Result<Vec<Option<AccountLink>>, StoreError> {
        let mut pipeline = redis::pipe();
        for x_user_id in x_user_ids {
            pipeline.hgetall(self.inner.keys.link(x_user_id));
        }
        let mut conn = self.inner.links_conn.clone();
        let result = pipeline
            .query_async::<Vec<HashMap<String, String>>>(&mut conn)
            .await;
        self.record(&result.as_ref().map(|_| ()), false);
        let found = result.map_err(|e| backend(describe(&e)))?;
        Ok(x_user_ids
            .iter()
            .zip(found)
            .map(|(x_user_id, fields)| link_of(x_user_id, &fields))
            .collect())
    }
    async fn revoke_link(&self, x_user_id: &str) -> Result<Option<AccountLink>, StoreError> {
        let mut invocation = self.inner.scripts.revoke_link.prepare_invoke();
        invocation.key(self.inner.keys.link(x_user_id));
        // As in `put_link`.
        let links_conn = &self.inner.links_conn;
        let _: i64 = self.run_on(links_conn, &invocation, true).await?;
        self.replicated_on(links_conn).await?;
        self.find_link(x_user_id).await
    }
    async fn mark_webhook(&self, mark: WebhookMark) -> Result<(), StoreError> {
        let mut invocation = self.inner.scripts.mark_webhook.prepare_invoke();
        invocation
            .key(self.inner.keys.key("webhook"))
            .arg(mark.as_str());
        let _: i64 = self.run(&invocation, true).await?;
        Ok(())
    }
    async fn webhook_seen(&self) -> Result<WebhookSeen, StoreError> {
        let (delivery, crc): (Option<Millis>, Option<Millis>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.inner.keys.key("webhook"))
                    .arg(WebhookMark::Delivery.as_str())
                    .arg(WebhookMark::Crc.as_str()),
                false,
            )
            .await?;
        Ok(WebhookSeen {
            last_delivery: delivery,
            last_crc: crc,
        })
    }
}

#[async_trait::async_trait]
impl PendingAuthorizations for RedisStore {
    async fn put(
        &self,
        key: String,
        context: serde_json::Value,
        secret: SecretString,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut invocation = self.inner.scripts.put_authorization.prepare_invoke();
        for name in self.inner.keys.authorization(&key) {
            invocation.key(name);
        }
        invocation
            .arg(&key)
            .arg(context.to_string())
            .arg(secret.expose_secret())
            .arg(millis(ttl).max(1))
            .arg(millis(AUTHORIZATION_KEPT));
        let set: i64 = self.run(&invocation, true).await?;
        if set == 0 {
            return Err(backend(
                "an authorization with this key was started already",
            ));
        }
        self.replicated().await
    }
    async fn take(&self, key: String) -> Result<Taken, StoreError> {
        let mut invocation = self.inner.scripts.take_authorization.prepare_invoke();
        for name in self.inner.keys.authorization(&key) {
            invocation.key(name);
        }
        invocation.arg(&key);
        let found: Vec<String> = self.run(&invocation, true).await?;
        let context = |i: usize| {
            found
                .get(i)
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        Ok(match found.first().map(String::as_str) {
            Some("pending") => Taken::Pending {
                context: context(1),
                secret: found.get(2).cloned().unwrap_or_default().into(),
            },
            Some("used") => Taken::Used {
                context: context(1),
            },
            Some("expired") => Taken::Expired {
                context: context(1),
            },
            _ => Taken::Unknown,
        })
    }
    async fn live(&self) -> Result<u64, StoreError> {
        let mut invocation = self.inner.scripts.live_authorizations.prepare_invoke();
        for name in self.inner.keys.authorization("") {
            invocation.key(name);
        }
        self.run(&invocation, false).await
    }
}
