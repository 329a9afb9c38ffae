//! The PostgreSQL backend: a small pool of connections, transactions, migrations, and the
//! storage seam ([`Sql`]) on a `postgres` transaction. The only file that names the
//! `postgres` crate.
//!
//! The client is the synchronous `postgres` crate (a blocking wrapper over tokio-postgres):
//! the core is synchronous, and the MCP adapter already calls the store on its blocking pool.
//!
//! **Writers alone, and beside each other.** Every writer of a schema first takes a
//! transaction-level advisory lock keyed by the schema. Most take it exclusively
//! ([`Writers::Alone`]): they read, decide and write with the database to themselves, as
//! SQLite's `BEGIN IMMEDIATE` writers do, so every use case written for SQLite keeps its
//! meaning across hosts. The hot use cases, a claim of the next task and a report other than a
//! failure, take it shared ([`Writers::Beside`]) and run beside each other, made safe by row
//! locks: a claim takes the first ready task in claim order `FOR UPDATE SKIP LOCKED` (rechecked
//! as ready once locked), and checks the agent's limit of tasks under an advisory lock of the
//! agent, taken with the schema's; a report locks its task `FOR UPDATE` before it reads it;
//! what a completion changes beyond its task (a dependent's count of unmet dependencies, the
//! workflow's count of open tasks, the agent's record) it changes by an `UPDATE` that locks
//! the row and reads it back. Two such writers must lock the rows they share in one order, or
//! each waits for the other: dependents are visited in id order, and the counters (the count
//! shards by state, each workflow's open tasks, and the agents' summaries) are summed in the
//! transaction and written at its end, or just before the open count is read, in key order
//! (`counts::Pending`).
//! Whatever such a transaction cannot settle with row locks (a lease
//! or backoff due, a task with skills to rank, every ready task held by others) it leaves to a
//! run alone: the backend rolls it back and runs it again with the lock exclusive.
//!
//! **The event log** is read by position (`seq`) by readers that tail it, so positions must be
//! handed out in commit order, or a reader could pass a position whose row commits later. A
//! writer alone has that for free (the next writer starts after its commit). A writer beside
//! others holds its events back to its commit and appends them then, in one statement, under an
//! exclusive advisory lock of the log that the commit releases.
//!
//! **Commits and their flush.** A write's commit returns once its record is written
//! (`synchronous_commit = off` for that transaction), so the locks it holds go before the WAL
//! flush and the flushes of many commits are one; before the write returns, a statement of its
//! own durable transaction waits for the flush, and with it of every commit before. So no
//! write is acknowledged before it is durable, and the locks are held for the statements only.
//! Another reader may see a change a moment before it is durable, as SQLite's readers may.
//! Reads take no lock: each runs in a read-only `REPEATABLE READ` transaction, a snapshot,
//! beside the writers.
//!
//! **Time** comes from the database (`clock_timestamp()` read after the lock, so a writer
//! alone reads a time after every commit before it) unless the store was given a manual clock,
//! which then supplies every time; the two are never mixed in one store.
//!
//! **Faults.** A write that fails because the connection broke before its commit was sent is
//! rolled back by the server; it is retried once on a new connection. A break during the commit
//! itself cannot tell whether the commit landed, so it is reported, never retried.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, IsolationLevel, NoTls};

use crate::clock::{Clock, from_millis};
use crate::error::{Error, Result, StorageError, StorageFault};

use super::counts::{self, Pending};
use super::db::{self, Owned, RawRow, Row, Sql, Tx, Value, Writers};
use super::event::{APPEND, APPEND_COLUMNS, APPEND_RETURNING};

/// The schema's versions on PostgreSQL: `(version, script)`, each taking a database to
/// `version`. The first brings an empty schema to SQLite's version 7 in one step (no PostgreSQL
/// database predates it); later entries follow SQLite's own, one for one.
const MIGRATIONS: [(i64, &str); 3] = [
    (7, include_str!("postgres/schema.sql")),
    (8, include_str!("postgres/schema_8.sql")),
    (9, include_str!("postgres/schema_9.sql")),
];

/// How many connections a store keeps open at most. Writers are serialised anyway; the others
/// serve reads beside them.
const POOL_SIZE: usize = 8;

/// How long opening a connection may take before the store gives up.
const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// How many times a write is retried after a serialization failure, a deadlock or a connection
/// lost before the commit.
const RETRIES: u32 = 3;

/// The advisory lock's first key: "orch" in ASCII, so that other users of advisory locks on the
/// same database are unlikely to collide with it. The schema's writers' lock is
/// `(LOCK_CLASS, hashtext(schema))`.
const LOCK_CLASS: i32 = 0x6f72_6368;

/// The first key of an agent's lock, `(AGENT_LOCK_CLASS, hashtext(schema || ' ' || agent))`:
/// held by a claim beside other writers while it checks and takes the agent's limit of tasks.
const AGENT_LOCK_CLASS: i32 = LOCK_CLASS + 1;

/// The first key of the event log's lock, `(LOG_LOCK_CLASS, hashtext(schema))`: held by a
/// transaction beside other writers from the moment it appends its events to its commit, so
/// that positions in the log are handed out in commit order.
const LOG_LOCK_CLASS: i32 = LOCK_CLASS + 2;

/// How the first statement of a write sets its commit's `synchronous_commit`: to its
/// parameter, `off` when the flush is waited for apart ([`FLUSH`]), or, when it is null, to
/// what the session has.
const SYNCHRONOUS: &str = "set_config('synchronous_commit', \
    coalesce(CAST(?2 AS TEXT), current_setting('synchronous_commit')), true)";

/// The first statement of a write alone: the writers' lock, exclusive, then the time.
static LOCK_ALONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
         FROM (SELECT pg_advisory_xact_lock(CAST(?1 AS INTEGER), hashtext(current_schema())), \
         {SYNCHRONOUS}) AS locked"
    )
});

/// The first statement of a write beside others: the writers' lock, shared, then the time.
static LOCK_BESIDE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
         FROM (SELECT pg_advisory_xact_lock_shared(CAST(?1 AS INTEGER), \
         hashtext(current_schema())), {SYNCHRONOUS}) AS locked"
    )
});

/// The first statement of a write beside others for an agent: the writers' lock, shared, then
/// the agent's, then the time. The subqueries nest so that the locks are always taken in this
/// order (PostgreSQL does not flatten a subquery that calls a volatile function), which keeps
/// two such writers from waiting on each other in a cycle.
static LOCK_BESIDE_FOR_AGENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
         FROM (SELECT pg_advisory_xact_lock(CAST(?3 AS INTEGER), \
         hashtext(current_schema() || ' ' || CAST(?4 AS TEXT))) AS agent \
         FROM (SELECT pg_advisory_xact_lock_shared(CAST(?1 AS INTEGER), \
         hashtext(current_schema())), {SYNCHRONOUS}) AS schema) AS locked"
    )
});

/// Said once a write has committed, when commits do not wait for their flush: a statement of
/// its own transaction that writes to the WAL and so flushes it, with it every commit before,
/// before it returns. It writes nothing to any table (a logical decoding message no consumer
/// here reads).
const FLUSH: &str = "SELECT pg_logical_emit_message(true, 'orchestration', '')";

/// How many held-back events one statement appends.
const EVENTS_PER_APPEND: usize = 8;

/// The type of each of [`APPEND`]'s parameters, in order, for the statement that appends held
/// events, whose parameters only casts can type.
const APPEND_TYPES: [&str; 11] = [
    "BIGINT",
    "TEXT",
    "BIGINT",
    "BIGINT",
    "TEXT",
    "TEXT",
    "TEXT",
    "BIGINT",
    "DOUBLE PRECISION",
    "TEXT",
    "BIGINT",
];

/// A PostgreSQL database: a URL and a pool of connections to it.
pub(super) struct Postgres {
    config: Config,
    /// Where the database is, for messages: the URL without its password.
    shown: String,
    pool: Mutex<Vec<Connection>>,
    read_only: bool,
    /// The schema the tables are in: the payload of this database's notifications.
    schema: String,
    /// The listener of change notifications, started by the first caller that asks.
    listener: OnceLock<Arc<Listener>>,
    /// Whether a write commits without waiting for its WAL flush, and then waits for it with
    /// [`FLUSH`], outside the writers' locks. Off when the server does not let this user
    /// emit the flushing message.
    flush_apart: bool,
    /// Writes that lost a race (a deadlock PostgreSQL broke, a serialization failure) and ran
    /// again: none while the writers beside each other lock in the orders they share.
    conflicts: AtomicU64,
}

/// What the listening thread shares with the store: how many notifications of this schema
/// arrived, whether it is listening now, and whether the store is gone.
#[derive(Debug, Default)]
struct Listener {
    notices: AtomicU64,
    listening: AtomicBool,
    stop: AtomicBool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("database", &self.shown)
            .field("read_only", &self.read_only)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// One connection and the statements prepared on it, by their text.
struct Connection {
    client: Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Postgres {
    /// Connects to the database at `url` and brings its schema to the current version.
    pub(super) fn open(url: &str, read_only: bool) -> Result<Postgres> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| {
            let cause = e
                .source()
                .map_or_else(|| e.to_string(), ToString::to_string);
            connection_error(format!(
                "the PostgreSQL URL {} is invalid: {cause}; expected \
                 postgres://user@host:port/database",
                super::Store::shown(Path::new(url))
            ))
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let shown = super::Store::shown(Path::new(url));
        let mut db = Postgres {
            config,
            shown,
            pool: Mutex::new(Vec::new()),
            read_only,
            schema: String::new(),
            listener: OnceLock::new(),
            flush_apart: false,
            conflicts: AtomicU64::new(0),
        };
        let mut conn = db.connect()?;
        db.migrate(&mut conn)?;
        db.flush_apart = !read_only && conn.client.batch_execute(FLUSH).is_ok();
        db.schema = conn
            .client
            .query_one("SELECT current_schema()", &[])
            .map_err(from_pg)?
            .get(0);
        db.give_back(conn);
        Ok(db)
    }

    /// How many change notifications of this database arrived since the listener started,
    /// or `None` while it is not listening (it starts on the first call, and reconnects after
    /// losing its connection), when callers must look at the log themselves.
    pub(super) fn change_notices(&self) -> Option<u64> {
        let listener = self.listener.get_or_init(|| {
            let listener = Arc::new(Listener::default());
            let config = self.config.clone();
            let schema = self.schema.clone();
            let shared = Arc::clone(&listener);
            let spawned = std::thread::Builder::new()
                .name("orchestration-listen".into())
                .spawn(move || listen(&config, &schema, &shared));
            if spawned.is_err() {
                listener.stop.store(true, Ordering::SeqCst);
            }
            listener
        });
        listener
            .listening
            .load(Ordering::SeqCst)
            .then(|| listener.notices.load(Ordering::SeqCst))
    }

    fn connect(&self) -> Result<Connection> {
        let client = self.config.connect(NoTls).map_err(|e| {
            let cause = e
                .source()
                .map_or_else(|| e.to_string(), |source| source.to_string());
            let hint = match e.code() {
                Some(&SqlState::INVALID_CATALOG_NAME) => {
                    "; create the database first (createdb), or name one that exists"
                }
                Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                | Some(&SqlState::INVALID_PASSWORD) => "; check the user and password in the URL",
                _ if e.code().is_none() => "; is the server running and reachable?",
                _ => "",
            };
            connection_error(format!(
                "cannot connect to PostgreSQL at {}: {cause}{hint}",
                self.shown
            ))
        })?;
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }

    fn take(&self) -> Result<Connection> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) if !conn.client.is_closed() => Ok(conn),
            _ => self.connect(),
        }
    }

    fn give_back(&self, conn: Connection) {
        if conn.client.is_closed() {
            return;
        }
        let mut pool = self
            .pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(conn);
        }
    }

    /// Brings the schema to [`super::SCHEMA_VERSION`] in one transaction, under the writers'
    /// lock, so that two processes opening a new database at once migrate it once. A database
    /// of a newer version is refused; one at the current version is only read.
    fn migrate(&self, conn: &mut Connection) -> Result<()> {
        let version = schema_version(&mut conn.client)?;
        if version == super::SCHEMA_VERSION {
            return Ok(());
        }
        if version > super::SCHEMA_VERSION {
            return Err(Error::IncompatibleSchema {
                found: version,
                supported: super::SCHEMA_VERSION,
            });
        }
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let Connection { client, statements } = conn;
        let mut tx = client.transaction().map_err(from_pg)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
            &[&LOCK_CLASS],
        )
        .map_err(from_pg)?;
        // Another process may have migrated while this one waited for the lock.
        let version = schema_version_in(&mut tx)?;
        for (to, script) in MIGRATIONS {
            if version < to {
                tx.batch_execute(script).map_err(from_pg)?;
            }
        }
        tx.execute(
            "UPDATE orchestration_schema SET version = $1",
            &[&super::SCHEMA_VERSION],
        )
        .map_err(from_pg)?;
        let pg = PgTx::new(tx, statements, false);
        // The sketches are encoded by the code, so the summaries are filled by it.
        if version < 9 {
            super::summaries::rebuild(&pg)?;
        }
        pg.commit().map_err(from_pg)?;
        Ok(())
    }

    /// Runs `f` in a write transaction beside `writers`, and again alone when it asks.
    pub(super) fn write<T>(
        &self,
        clock: &Clock,
        mut writers: Writers<'_>,
        mut f: impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let mut attempt = 0;
        loop {
            let mut conn = self.take()?;
            let result = write_once(&mut conn, clock, writers, self.flush_apart, &mut f);
            self.give_back(conn);
            match result {
                Ok(value) => return Ok(value),
                Err(Failure::Alone) => writers = Writers::Alone,
                Err(Failure::BeforeCommit(Error::Storage(e)))
                    if matches!(e.fault(), StorageFault::Conflict | StorageFault::Connection)
                        && attempt < RETRIES =>
                {
                    if e.fault() == StorageFault::Conflict {
                        self.conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    attempt += 1;
                    std::thread::sleep(StdDuration::from_millis(5 << attempt));
                }
                Err(Failure::BeforeCommit(e) | Failure::AtCommit(e)) => return Err(e),
            }
        }
    }

    /// How many writes lost a race and ran again since the store opened.
    #[cfg(test)]
    pub(super) fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    pub(super) fn read<T>(
        &self,
        clock: &Clock,
        f: impl FnOnce(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.take()?;
        let result = (|| {
            let Connection { client, statements } = &mut conn;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(from_pg)?;
            let pg = PgTx::new(tx, statements, false);
            let now = match clock {
                Clock::System => database_now(&pg)?,
                Clock::Manual(manual) => manual.now(),
            };
            let value = f(&pg, now)?;
            pg.commit().map_err(from_pg)?;
            Ok(value)
        })();
        self.give_back(conn);
        result
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.stop.store(true, Ordering::SeqCst);
        }
        // A client closes its connection by blocking on a runtime of its own, which panics on
        // a thread that drives an async runtime, as a server's does when it drops its store
        // at exit. So the connections are closed on a thread of their own.
        let pool = std::mem::take(
            self.pool
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if !pool.is_empty() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// The listening thread: `LISTEN orchestration` on a connection of its own, counting the
/// notifications whose payload is this store's schema, until the store is dropped. A lost
/// connection is retried every second; meanwhile callers fall back to looking at the log.
fn listen(config: &Config, schema: &str, listener: &Listener) {
    const TICK: StdDuration = StdDuration::from_millis(500);
    while !listener.stop.load(Ordering::SeqCst) {
        let Ok(mut client) = config.connect(NoTls) else {
            std::thread::sleep(StdDuration::from_secs(1));
            continue;
        };
        if client.batch_execute("LISTEN orchestration").is_err() {
            std::thread::sleep(StdDuration::from_secs(1));
            continue;
        }
        // Counted before the flag is raised: a change made in between is seen by a caller
        // that looks at the log when the count moves or when it falls back.
        listener.notices.fetch_add(1, Ordering::SeqCst);
        listener.listening.store(true, Ordering::SeqCst);
        while !listener.stop.load(Ordering::SeqCst) {
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(notification)) => {
                    if notification.payload() == schema {
                        listener.notices.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
                Err(_) => break,
            }
        }
        listener.listening.store(false, Ordering::SeqCst);
    }
}

/// How a write failed: before its commit was sent (nothing was applied), during the commit
/// (it may have been), or not at all: it asked to run again alone.
enum Failure {
    BeforeCommit(Error),
    AtCommit(Error),
    Alone,
}

fn write_once<T>(
    conn: &mut Connection,
    clock: &Clock,
    writers: Writers<'_>,
    flush_apart: bool,
    f: &mut impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
) -> std::result::Result<T, Failure> {
    let Connection { client, statements } = conn;
    let tx = client
        .transaction()
        .map_err(|e| Failure::BeforeCommit(from_pg(e)))?;
    let pg = PgTx::new(tx, statements, matches!(writers, Writers::Beside { .. }));
    // The writers' lock, the time and how the commit waits, in one round trip: the time is
    // read once the lock is held, so it grows with the order of the commits. With the flush
    // apart the commit returns once its record is written, not flushed, so that the locks it
    // holds (the writers', the log's, a row's) go before the flush and the flushes of many
    // commits are one; the flush is waited for after the commit, with `FLUSH`, before the
    // write returns. No write is acknowledged before it is durable.
    let class = Value::Integer(i64::from(LOCK_CLASS));
    let synchronous = if flush_apart {
        Value::Text("off")
    } else {
        Value::Null
    };
    let mut locked_at = None;
    let mut read = |row: &Row<'_>| {
        locked_at = Some(row.get::<_, i64>(0)?);
        Ok(false)
    };
    match writers {
        Writers::Alone => pg.rows(&LOCK_ALONE, &[class, synchronous], &mut read),
        Writers::Beside { agent: None } => pg.rows(&LOCK_BESIDE, &[class, synchronous], &mut read),
        Writers::Beside { agent: Some(agent) } => pg.rows(
            &LOCK_BESIDE_FOR_AGENT,
            &[
                class,
                synchronous,
                Value::Integer(i64::from(AGENT_LOCK_CLASS)),
                Value::Text(agent),
            ],
            &mut read,
        ),
    }
    .map_err(Failure::BeforeCommit)?;
    let locked_at =
        locked_at.ok_or_else(|| Failure::BeforeCommit(Error::Storage(StorageError::no_rows())))?;
    let now = match clock {
        Clock::System => from_millis(locked_at),
        Clock::Manual(manual) => manual.now(),
    };
    let value = match f(&pg, now) {
        Ok(value) => value,
        Err(_) if pg.alone.get() => return Err(Failure::Alone),
        Err(e) => return Err(Failure::BeforeCommit(e)),
    };
    // The counters last but for the log: locked in the one order every writer beside others
    // shares, they close no cycle of waits.
    counts::write_pending(&pg).map_err(Failure::BeforeCommit)?;
    pg.append_held().map_err(Failure::BeforeCommit)?;
    pg.commit().map_err(|e| Failure::AtCommit(from_pg(e)))?;
    if flush_apart {
        client
            .batch_execute(FLUSH)
            .map_err(|e| Failure::AtCommit(from_pg(e)))?;
    }
    Ok(value)
}

/// The database's time, in the milliseconds the store keeps.
fn database_now(tx: &Tx<'_>) -> Result<DateTime<Utc>> {
    let millis: i64 = tx.query_row(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        [],
        |row| row.get(0),
    )?;
    Ok(from_millis(millis))
}

/// The schema version of a database, 0 when it has none of the store's tables.
fn schema_version(client: &mut Client) -> Result<i64> {
    let mut tx = client.transaction().map_err(from_pg)?;
    let version = schema_version_in(&mut tx)?;
    tx.commit().map_err(from_pg)?;
    Ok(version)
}

fn schema_version_in(tx: &mut postgres::Transaction<'_>) -> Result<i64> {
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('orchestration_schema') IS NOT NULL",
            &[],
        )
        .map_err(from_pg)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = tx
        .query_opt("SELECT version FROM orchestration_schema", &[])
        .map_err(from_pg)?;
    Ok(row.map_or(0, |row| row.get(0)))
}

fn connection_error(message: String) -> Error {
    Error::Storage(StorageError::message(StorageFault::Connection, message))
}

/// Names the failures an operator or the store can act on.
fn from_pg(error: postgres::Error) -> Error {
    let fault = match error.code() {
        Some(&SqlState::READ_ONLY_SQL_TRANSACTION) => return Error::ReadOnly,
        Some(&SqlState::DISK_FULL) => return Error::DiskFull,
        Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED) => {
            StorageFault::Conflict
        }
        Some(&SqlState::ADMIN_SHUTDOWN | &SqlState::CRASH_SHUTDOWN) => StorageFault::Connection,
        Some(code) if code.code().starts_with("08") => StorageFault::Connection,
        Some(_) => StorageFault::Engine,
        None if error.is_closed() => StorageFault::Connection,
        None => StorageFault::Connection,
    };
    match error.as_db_error() {
        // The server's own words: what failed, and where.
        Some(db) => {
            let mut message = format!("PostgreSQL: {}", db.message());
            if let Some(detail) = db.detail() {
                message = format!("{message} ({detail})");
            }
            Error::Storage(StorageError::message(fault, message))
        }
        None => Error::Storage(StorageError::new(fault, error)),
    }
}

/// A transaction of this backend, as the seam sees it.
struct PgTx<'c, 's> {
    tx: RefCell<postgres::Transaction<'c>>,
    statements: RefCell<&'s mut HashMap<String, postgres::Statement>>,
    /// Whether it runs beside other writers ([`Writers::Beside`]).
    beside: bool,
    /// Whether it asked to run again alone.
    alone: Cell<bool>,
    /// The events it appended, held back to its commit when it runs beside others.
    held: RefCell<Vec<Held>>,
    /// The changes to the counters it keeps to its commit when it runs beside others.
    pending: RefCell<Pending>,
}

/// An event held back to the commit, with the statement that keeps a row under its position
/// (an attempt the event ended), run once the position is known.
struct Held {
    event: Vec<Owned>,
    then: Option<(String, Vec<Owned>)>,
}

impl<'c, 's> PgTx<'c, 's> {
    fn new(
        tx: postgres::Transaction<'c>,
        statements: &'s mut HashMap<String, postgres::Statement>,
        beside: bool,
    ) -> PgTx<'c, 's> {
        PgTx {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
            beside,
            alone: Cell::new(false),
            held: RefCell::new(Vec::new()),
            pending: RefCell::new(Pending::default()),
        }
    }

    fn commit(self) -> std::result::Result<(), postgres::Error> {
        self.tx.into_inner().commit()
    }

    /// Appends the events held back, under the event log's lock, which the commit releases:
    /// so the positions they get come after those of every transaction that committed
    /// before, and before those of every one that commits after. A reader tailing the log by
    /// position never skips a row that commits late.
    ///
    /// The positions a chunk gets are handed out in the order of its rows (one `VALUES` list,
    /// read in order), so the `n`-th smallest position returned is the `n`-th event's, which
    /// is the one a held row about that event is kept under.
    fn append_held(&self) -> Result<()> {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        for chunk in held.chunks(EVENTS_PER_APPEND) {
            let (sql, returning) = held_append(chunk.len());
            let mut params = vec![Value::Integer(i64::from(LOG_LOCK_CLASS))];
            params.extend(chunk.iter().flat_map(|h| &h.event).map(Owned::value));
            if chunk.iter().all(|h| h.then.is_none()) {
                self.run(sql, &params)?;
                continue;
            }
            let mut seqs: Vec<i64> = Vec::with_capacity(chunk.len());
            self.rows(returning, &params, &mut |row| {
                seqs.push(row.get(0)?);
                Ok(true)
            })?;
            seqs.sort_unstable();
            for (held, seq) in chunk.iter().zip(seqs) {
                if let Some((then, rest)) = &held.then {
                    let mut params = vec![Value::Integer(seq)];
                    params.extend(rest.iter().map(Owned::value));
                    self.run(then, &params)?;
                }
            }
        }
        Ok(())
    }
}

/// The statement that appends `n` held events under the event log's lock, and the same
/// returning the positions they got.
fn held_append(n: usize) -> (&'static str, &'static str) {
    static SQL: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=EVENTS_PER_APPEND)
            .map(|n| {
                let rows: Vec<String> = (0..n)
                    .map(|row| {
                        let values: Vec<String> = APPEND_TYPES
                            .iter()
                            .enumerate()
                            .map(|(i, ty)| {
                                format!("CAST(?{} AS {ty})", 2 + row * APPEND_TYPES.len() + i)
                            })
                            .collect();
                        format!("({})", values.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO events ({APPEND_COLUMNS}) SELECT v.* FROM \
                     (SELECT pg_advisory_xact_lock(CAST(?1 AS INTEGER), \
                     hashtext(current_schema()))) AS locked, (VALUES {}) AS v",
                    rows.join(", ")
                );
                let returning = format!("{sql} RETURNING seq");
                (sql, returning)
            })
            .collect()
    });
    let (sql, returning) = &all[n - 1];
    (sql, returning)
}

impl PgTx<'_, '_> {
    /// The statement for `sql`, prepared once per connection. Its parameters are typed by the
    /// values of its first run (a null leaves the server to infer the type from the context),
    /// so that a value the context does not type, such as a selected parameter, keeps its own.
    fn statement(&self, sql: &str, params: &[Value<'_>]) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let types: Vec<Type> = params
            .iter()
            .map(|value| match value {
                Value::Null => Type::UNKNOWN,
                Value::Integer(_) => Type::INT8,
                Value::Real(_) => Type::FLOAT8,
                Value::Text(_) => Type::TEXT,
                Value::Blob(_) => Type::BYTEA,
            })
            .collect();
        let statement = self
            .tx
            .borrow_mut()
            .prepare_typed(&dialect(sql), &types)
            .map_err(|e| match from_pg(e) {
                // A statement the server cannot prepare is a bug of the store: name it.
                Error::Storage(e) if e.fault() == StorageFault::Engine => Error::Storage(
                    StorageError::message(StorageFault::Engine, format!("{e}, preparing `{sql}`")),
                ),
                other => other,
            })?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Sql for PgTx<'_, '_> {
    fn beside_others(&self) -> bool {
        self.beside
    }

    fn again_alone(&self) -> Error {
        if self.beside {
            self.alone.set(true);
        }
        Error::Storage(StorageError::message(
            StorageFault::Conflict,
            "this transaction must run alone",
        ))
    }

    fn pending(&self) -> Option<&RefCell<Pending>> {
        self.beside.then_some(&self.pending)
    }

    fn append_event(&self, sql: &str, params: &[Value<'_>]) -> Result<()> {
        if !self.beside {
            return self.run(sql, params).map(|_| ());
        }
        debug_assert_eq!(sql, APPEND, "only events are held back");
        debug_assert_eq!(params.len(), APPEND_TYPES.len());
        self.held.borrow_mut().push(Held {
            event: params.iter().map(|&v| Owned::from(v)).collect(),
            then: None,
        });
        Ok(())
    }

    fn append_event_then(
        &self,
        returning: &str,
        params: &[Value<'_>],
        then: &str,
        then_params: &[Value<'_>],
    ) -> Result<()> {
        if !self.beside {
            return db::append_event_then_now(self, returning, params, then, then_params);
        }
        debug_assert_eq!(returning, APPEND_RETURNING, "only events are held back");
        debug_assert_eq!(params.len(), APPEND_TYPES.len());
        self.held.borrow_mut().push(Held {
            event: params.iter().map(|&v| Owned::from(v)).collect(),
            then: Some((
                then.to_owned(),
                then_params.iter().map(|&v| Owned::from(v)).collect(),
            )),
        });
        Ok(())
    }

    fn run(&self, sql: &str, params: &[Value<'_>]) -> Result<usize> {
        let statement = self.statement(sql, params)?;
        let bound: Vec<Bind<'_>> = params.iter().map(|&v| Bind(v)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as _).collect();
        let changed = self
            .tx
            .borrow_mut()
            .execute(&statement, &refs)
            .map_err(from_pg)?;
        Ok(changed as usize)
    }

    fn rows(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        let statement = self.statement(sql, params)?;
        let bound: Vec<Bind<'_>> = params.iter().map(|&v| Bind(v)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as _).collect();
        // Read whole, then walk: `each` may run statements of its own on this transaction.
        let rows = self
            .tx
            .borrow_mut()
            .query(&statement, &refs)
            .map_err(from_pg)?;
        for row in &rows {
            if !each(&Row(&PgRow(row)))? {
                break;
            }
        }
        Ok(())
    }
}

/// The store's SQL in PostgreSQL's dialect: `$1` for `?1`, and no SQLite index hints (the
/// planner picks PostgreSQL's indexes itself).
fn dialect(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    while let Some(start) = out.find("NOT INDEXED ") {
        out.replace_range(start..start + "NOT INDEXED ".len(), "");
    }
    while let Some(start) = out.find("INDEXED BY ") {
        let name_end = out[start + 11..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(out.len(), |end| start + 11 + end);
        let end = out[name_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(out.len(), |skip| name_end + skip);
        out.replace_range(start..end, "");
    }
    out
}

/// A value bound to a parameter, converted to whatever type PostgreSQL inferred for it.
#[derive(Debug)]
struct Bind<'a>(Value<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::FLOAT4 => (i as f32).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(ty, out),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT4 => (r as f32).to_sql(ty, out),
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::INT8 if r.fract() == 0.0 => (r as i64).to_sql(ty, out),
                _ => Err(format!("cannot bind the real {r} as {ty}").into()),
            },
            Value::Text(t) => t.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct PgRow<'a>(&'a postgres::Row);

impl RawRow for PgRow<'_> {
    fn value(&self, i: usize) -> Result<Value<'_>> {
        let row = self.0;
        let column = row.columns().get(i).ok_or_else(|| {
            Error::Storage(StorageError::conversion(format!(
                "column {i} is past the end of the row"
            )))
        })?;
        let value = match *column.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map(|v| v.map(Value::Integer)),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Value::Integer(v.into()))),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Value::Integer(v.into()))),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|v| Value::Integer(v.into()))),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map(|v| v.map(|v| Value::Real(v.into()))),
            Type::NUMERIC => row
                .try_get::<_, Option<Numeric>>(i)
                .map(|v| v.map(|v| Value::Real(v.0))),
            Type::BYTEA => row
                .try_get::<_, Option<&[u8]>>(i)
                .map(|v| v.map(Value::Blob)),
            Type::VOID => Ok(None),
            _ => row
                .try_get::<_, Option<&str>>(i)
                .map(|v| v.map(Value::Text)),
        };
        value
            .map(|v| v.unwrap_or(Value::Null))
            .map_err(|e| Error::Storage(StorageError::new(StorageFault::Conversion, e)))
    }

    fn width(&self) -> usize {
        self.0.len()
    }
}

/// A `numeric` read as a float: what `sum` and `avg` of integers return in PostgreSQL.
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Numeric, Box<dyn StdError + Sync + Send>> {
        // The binary form: digit count, weight of the first digit (in powers of 10,000), sign,
        // display scale, then the digits in base 10,000.
        let word = |at: usize| -> std::result::Result<u16, Box<dyn StdError + Sync + Send>> {
            raw.get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a numeric value was cut short".into())
        };
        let digits = word(0)? as usize;
        let weight = word(2)? as i16;
        let sign = word(4)?;
        if sign == 0xC000 {
            return Ok(Numeric(f64::NAN));
        }
        let mut value = 0.0;
        for d in 0..digits {
            let digit = f64::from(word(8 + 2 * d)?);
            value += digit * 10_000f64.powi(i32::from(weight) - d as i32);
        }
        Ok(Numeric(if sign == 0x4000 { -value } else { value }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc;

    use crate::{
        AgentUpdate, ClaimRequest, CreateOptions, TaskRef, TaskSpec, TaskUpdate, WorkflowSpec,
        WorkflowStatus,
    };

    use crate::store::event::{EventKind, NewEvent, append, append_then};
    use crate::store::{Created, Store};

    /// A store on a schema of its own in the database `ORCHESTRATION_TEST_POSTGRES` names;
    /// `None` without it, except under `CI=true`, where it must be there.
    fn store() -> Option<Store> {
        let base = match std::env::var("ORCHESTRATION_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("ORCHESTRATION_TEST_POSTGRES must name a PostgreSQL database under CI")
            }
            _ => return None,
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "backend_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = Client::connect(&base, NoTls).expect("PostgreSQL is reachable");
        // Stores outlive nothing here, but a run that failed leaves its schemas: the first
        // test of the next run drops those of other processes.
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            let mine = format!("backend_{}_", std::process::id());
            let stale: Vec<String> = client
                .query(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'backend\\_%'",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .filter(|name: &String| !name.starts_with(&mine))
                .collect();
            for name in stale {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        });
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .unwrap();
        let joiner = if base.contains('?') { '&' } else { '?' };
        Some(Store::open(format!("{base}{joiner}options=-csearch_path%3D{schema}")).unwrap())
    }

    fn note(tx: &Tx<'_>, now: DateTime<Utc>, detail: &str) -> Result<()> {
        append(
            tx,
            now,
            EventKind::Message,
            NewEvent {
                detail: Some(detail),
                ..NewEvent::default()
            },
        )
    }

    /// Creates and starts the workflow `name` of `tasks`.
    fn started(store: &Store, name: &str, tasks: Vec<TaskSpec>) -> Created {
        let spec = WorkflowSpec {
            name: name.into(),
            tasks,
            ..Default::default()
        };
        let options = CreateOptions {
            start: true,
            idempotency_key: None,
        };
        store.create_workflow(spec, &options).unwrap()
    }

    /// Eight agents, each on a thread of its own, claim and complete tasks until `total` are
    /// done (or they find nothing for a long while), agent `a` reporting `actual(a)` as its
    /// effort; returns how many they completed.
    fn drain_with_eight_agents(
        store: &Store,
        total: usize,
        actual: impl Fn(usize) -> Option<f64> + Sync,
    ) -> usize {
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for a in 0..8 {
                let (done, actual) = (&done, &actual);
                scope.spawn(move || {
                    let agent = format!("agent-{a}");
                    store.upsert_agent(&agent, &AgentUpdate::default()).unwrap();
                    let mut idle = 0;
                    while done.load(Ordering::SeqCst) < total && idle < 10_000 {
                        let Some(claim) =
                            store.claim(&ClaimRequest::new(&agent)).unwrap().claimed()
                        else {
                            idle += 1;
                            std::thread::yield_now();
                            continue;
                        };
                        let update = TaskUpdate::Complete {
                            result: None,
                            actual: actual(a),
                        };
                        let id = TaskRef::Id(claim.task.id);
                        store
                            .update_task(&id, &agent, claim.token, &update, None)
                            .unwrap();
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        done.load(Ordering::SeqCst)
    }

    /// Two transactions beside each other append events; the one that appended first
    /// commits last. A reader tailing the log by position, which read the other's event
    /// before, must still get the late one: had positions been handed out when the events
    /// were appended, the late event's would be below the reader's cursor, and skipped.
    #[test]
    fn a_reader_tailing_the_log_never_skips_an_event_that_commits_late() {
        let Some(store) = store() else { return };
        let beside = Writers::Beside { agent: None };
        let (appended, wait_appended) = mpsc::channel();
        let (go_on, wait_go_on) = mpsc::channel::<()>();
        let store = &store;
        std::thread::scope(|scope| {
            let early = scope.spawn(move || {
                store.write_with(beside, |tx, now| {
                    note(tx, now, "appended first")?;
                    appended.send(()).unwrap();
                    wait_go_on.recv().unwrap();
                    Ok(())
                })
            });
            wait_appended.recv().unwrap();
            store
                .write_with(beside, |tx, now| note(tx, now, "committed first"))
                .unwrap();
            let seen = store.events_since(0, 100).unwrap();
            let details: Vec<_> = seen.iter().map(|e| e.detail.as_deref()).collect();
            assert_eq!(details, [Some("committed first")]);
            let cursor = seen[0].seq;
            go_on.send(()).unwrap();
            early.join().unwrap().unwrap();
            let late = store.events_since(cursor, 100).unwrap();
            let details: Vec<_> = late.iter().map(|e| e.detail.as_deref()).collect();
            assert_eq!(
                details,
                [Some("appended first")],
                "the late commit is not skipped"
            );
            assert!(late[0].seq > cursor);
        });
    }

    /// Transactions beside each other do not wait for each other: one commits while another
    /// is open, and the log has their events in the order they committed.
    #[test]
    fn a_transaction_beside_others_waits_for_none_of_them_but_the_log() {
        let Some(store) = store() else { return };
        let (appended, wait_appended) = mpsc::channel();
        let (go_on, wait_go_on) = mpsc::channel::<()>();
        let shared = &store;
        std::thread::scope(|scope| {
            let holding = scope.spawn(move || {
                shared.write_with(Writers::Beside { agent: None }, |tx, now| {
                    note(tx, now, "holding")?;
                    appended.send(()).unwrap();
                    wait_go_on.recv().unwrap();
                    Ok(())
                })
            });
            wait_appended.recv().unwrap();
            // Beside the holding transaction, another commits while it is open: only the
            // writers' lock taken alone would wait for it.
            store
                .write_with(
                    Writers::Beside {
                        agent: Some("someone"),
                    },
                    |tx, now| note(tx, now, "beside"),
                )
                .unwrap();
            go_on.send(()).unwrap();
            holding.join().unwrap().unwrap();
        });
        let details: Vec<_> = store
            .events_since(0, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect();
        assert_eq!(
            details,
            [Some("beside".to_owned()), Some("holding".to_owned())]
        );
    }

    /// A transaction beside others holds back its events and the rows kept about them (an
    /// attempt under the event that ended it) to its commit, more of them than one statement
    /// appends: each row gets the position its own event got.
    #[test]
    fn a_row_about_an_event_held_back_gets_that_events_position() {
        let Some(store) = store() else { return };
        store
            .write_with(Writers::Alone, |tx, _| {
                tx.run("CREATE TABLE about (seq BIGINT, n BIGINT)", &[])
                    .map(|_| ())
            })
            .unwrap();
        store
            .write_with(Writers::Beside { agent: None }, |tx, now| {
                for n in 0..(3 * EVENTS_PER_APPEND as i64) {
                    let detail = format!("event {n}");
                    let event = NewEvent {
                        detail: Some(&detail),
                        ..NewEvent::default()
                    };
                    if n % 3 == 0 {
                        note(tx, now, &detail)?;
                    } else {
                        append_then(
                            tx,
                            now,
                            EventKind::Message,
                            event,
                            "INSERT INTO about (seq, n) VALUES (?1, ?2)",
                            &[Value::Integer(n)],
                        )?;
                    }
                }
                Ok(())
            })
            .unwrap();
        let pairs: Vec<(i64, Option<String>)> = store
            .read(|tx, _| {
                tx.prepare_cached(
                    "SELECT a.n, e.detail FROM about a LEFT JOIN events e ON e.seq = a.seq \
                     ORDER BY a.n",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
            })
            .unwrap();
        assert_eq!(pairs.len(), 2 * EVENTS_PER_APPEND, "every row kept");
        for (n, detail) in pairs {
            assert_eq!(detail, Some(format!("event {n}")));
        }
    }

    /// Eight agents complete a chained workflow at once, and the attempts they end are kept
    /// under the events that ended them: the kept attempts and performance agree with the
    /// log's.
    #[test]
    fn concurrent_completions_keep_their_attempts_as_the_log_tells_them() {
        let Some(store) = store() else { return };
        let start = Utc::now() - chrono::Duration::minutes(1);
        const TASKS: usize = 60;
        let tasks = (0..TASKS)
            .map(|i| {
                let spec = TaskSpec::new(format!("t{i}"), format!("do {i}"));
                if i >= 10 {
                    spec.after([format!("t{}", i - 10)])
                } else {
                    spec
                }
            })
            .collect();
        started(&store, "beside", tasks);
        let done = drain_with_eight_agents(&store, TASKS, |a| Some(1.0 + (a % 3) as f64));
        assert_eq!(done, TASKS);
        // Each attempt is kept under the event that ended it: that of its task and attempt,
        // from `running`.
        let unmatched: i64 = store
            .read(|tx, _| {
                tx.query_row(
                    "SELECT count(*) FROM attempts a LEFT JOIN events e ON e.seq = a.seq \
                     AND e.task = a.task AND e.attempt = a.number AND e.from_state = ?1 \
                     WHERE e.seq IS NULL",
                    [crate::workflow::TaskState::Running.as_str()],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(unmatched, 0, "attempts kept under another event");
        let end = Utc::now() + chrono::Duration::minutes(1);
        crate::store::tests::check_attempts_match_the_log(&store, start, end);
    }

    /// Eight agents complete a lattice of tasks at once, each task after two of the layer
    /// before, so that completions beside each other meet on the dependents they share, on
    /// the count shards and on the workflow's count of open tasks: none of them deadlocks or
    /// runs again, and the counts kept say what the tasks say.
    #[test]
    fn completions_that_share_dependents_and_counters_wait_for_each_other_without_a_cycle() {
        let Some(store) = store() else { return };
        const WIDTH: usize = 16;
        const LAYERS: usize = 25;
        let key = |layer: usize, i: usize| format!("l{layer}-{i}");
        let tasks = (0..LAYERS)
            .flat_map(|layer| (0..WIDTH).map(move |i| (layer, i)))
            .map(|(layer, i)| {
                let spec = TaskSpec::new(key(layer, i), format!("do {layer}/{i}"));
                match layer {
                    0 => spec,
                    _ => spec.after([key(layer - 1, i), key(layer - 1, (i + 1) % WIDTH)]),
                }
            })
            .collect();
        let workflow = started(&store, "lattice", tasks);
        let done = drain_with_eight_agents(&store, WIDTH * LAYERS, |_| None);
        assert_eq!(done, WIDTH * LAYERS);
        let crate::store::Backend::Postgres(db) = &store.backend else {
            unreachable!("a PostgreSQL store")
        };
        assert_eq!(db.conflicts(), 0, "writes that deadlocked and ran again");
        let (kept, counted) = store
            .read(|tx, _| {
                let id = crate::WorkflowRef::Id(workflow.id);
                let row = crate::store::refs::WorkflowRow::resolve(tx, &id)?;
                Ok((
                    crate::store::workflow::summary(tx, &row)?,
                    crate::store::workflow::summary_from_tasks(tx, &row)?,
                ))
            })
            .unwrap();
        assert_eq!(kept.counts, counted.counts);
        assert_eq!(kept.status, WorkflowStatus::Succeeded);
    }

    #[test]
    fn the_last_migration_reaches_the_schema_version_sqlite_has() {
        assert_eq!(
            MIGRATIONS.last().map(|m| m.0),
            Some(super::super::SCHEMA_VERSION)
        );
    }

    #[test]
    fn the_dialect_numbers_parameters_and_drops_index_hints() {
        let check = |sqlite: &str, postgres: &str| assert_eq!(dialect(sqlite), postgres);
        check(
            "SELECT id FROM tasks INDEXED BY tasks_ready WHERE workflow = ?1 AND x = ?12",
            "SELECT id FROM tasks WHERE workflow = $1 AND x = $12",
        );
        check("SELECT '?1' || ?2", "SELECT '?1' || $2");
        check(
            "SELECT id FROM tasks t NOT INDEXED WHERE t.id = ?1",
            "SELECT id FROM tasks t WHERE t.id = $1",
        );
        check("SELECT 1", "SELECT 1");
    }
}
