//! The PostgreSQL backend: a small pool of connections, transactions, migrations, and the
//! storage seam ([`Sql`]) on a `postgres` transaction. The only file that names the
//! `postgres` crate.
//!
//! The client is the synchronous `postgres` crate (a blocking wrapper over tokio-postgres):
//! the core is synchronous, and the MCP adapter already calls the store on its blocking pool.
//!
//! **Writers are serialised per database**, as SQLite's `BEGIN IMMEDIATE` serialises them: a
//! write transaction first takes a transaction-level advisory lock keyed by the schema, then
//! reads, decides and writes, and the lock goes with the commit. So every use case written for
//! SQLite keeps its meaning unchanged across hosts: a claim's read of the ready tasks and its
//! update cannot interleave with another host's, an agent's work-in-progress limit is checked
//! and taken in one step, and reports are fenced by task, agent and token in the same
//! statement as before. Because the lock is released only after the commit is visible,
//! sequence values (the event log's `seq`) are handed out in commit order, and a reader tailing
//! the log by `seq >` never skips a row that commits late. Reads take no lock: each runs in a
//! read-only `REPEATABLE READ` transaction, a snapshot, beside the writers.
//!
//! **Time** comes from the database (`clock_timestamp()` read after the lock, so it grows with
//! the commit order across hosts) unless the store was given a manual clock, which then
//! supplies every time; the two are never mixed in one store.
//!
//! **Faults.** A write that fails because the connection broke before its commit was sent is
//! rolled back by the server; it is retried once on a new connection. A break during the commit
//! itself cannot tell whether the commit landed, so it is reported, never retried.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, IsolationLevel, NoTls};

use crate::clock::{Clock, from_millis};
use crate::error::{Error, Result, StorageError, StorageFault};

use super::db::{RawRow, Row, Sql, Tx, Value};

/// The schema's versions on PostgreSQL: `(version, script)`, each taking a database to
/// `version`. The first brings an empty schema to SQLite's version 7 in one step (no PostgreSQL
/// database predates it); later entries follow SQLite's own, one for one.
const MIGRATIONS: [(i64, &str); 2] = [
    (7, include_str!("postgres/schema.sql")),
    (8, include_str!("postgres/schema_8.sql")),
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
/// same database are unlikely to collide with it.
const LOCK_CLASS: i32 = 0x6f72_6368;

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
        };
        let mut conn = db.connect()?;
        db.migrate(&mut conn)?;
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
        let mut tx = conn.client.transaction().map_err(from_pg)?;
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
        tx.commit().map_err(from_pg)?;
        Ok(())
    }

    pub(super) fn write<T>(
        &self,
        clock: &Clock,
        mut f: impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let mut attempt = 0;
        loop {
            let mut conn = self.take()?;
            let result = write_once(&mut conn, clock, &mut f);
            self.give_back(conn);
            match result {
                Ok(value) => return Ok(value),
                Err(Failure::BeforeCommit(Error::Storage(e)))
                    if matches!(e.fault(), StorageFault::Conflict | StorageFault::Connection)
                        && attempt < RETRIES =>
                {
                    attempt += 1;
                    std::thread::sleep(StdDuration::from_millis(5 << attempt));
                }
                Err(Failure::BeforeCommit(e) | Failure::AtCommit(e)) => return Err(e),
            }
        }
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
            let pg = PgTx {
                tx: RefCell::new(tx),
                statements: RefCell::new(statements),
            };
            let now = match clock {
                Clock::System => database_now(&pg)?,
                Clock::Manual(manual) => manual.now(),
            };
            let value = f(&pg, now)?;
            pg.tx.into_inner().commit().map_err(from_pg)?;
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

/// How a write failed: before its commit was sent (nothing was applied) or during the commit
/// (it may have been).
enum Failure {
    BeforeCommit(Error),
    AtCommit(Error),
}

fn write_once<T>(
    conn: &mut Connection,
    clock: &Clock,
    f: &mut impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
) -> std::result::Result<T, Failure> {
    let Connection { client, statements } = conn;
    let tx = client
        .transaction()
        .map_err(|e| Failure::BeforeCommit(from_pg(e)))?;
    let pg = PgTx {
        tx: RefCell::new(tx),
        statements: RefCell::new(statements),
    };
    // The writers' lock and the time, in one round trip: the time is read once the lock is
    // held, so it grows with the order of the commits.
    let locked_at: i64 = (&pg as &Tx<'_>)
        .query_row(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
             FROM (SELECT pg_advisory_xact_lock(CAST(?1 AS INTEGER), \
             hashtext(current_schema()))) AS locked",
            [i64::from(LOCK_CLASS)],
            |row| row.get(0),
        )
        .map_err(Failure::BeforeCommit)?;
    let now = match clock {
        Clock::System => from_millis(locked_at),
        Clock::Manual(manual) => manual.now(),
    };
    let value = f(&pg, now).map_err(Failure::BeforeCommit)?;
    pg.tx
        .into_inner()
        .commit()
        .map_err(|e| Failure::AtCommit(from_pg(e)))?;
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
