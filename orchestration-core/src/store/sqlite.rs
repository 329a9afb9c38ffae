//! The SQLite backend: connections, transactions, migrations, and the storage seam
//! ([`Sql`]) on a rusqlite connection. The only file that names rusqlite, with the SQLite
//! backend's own tests.
//!
//! A file database has two connections: the writer, whose transactions begin with
//! `BEGIN IMMEDIATE` (so two processes never both read a row and then both update it), and a
//! reader opened at the first read, which in WAL mode reads the last commit while the writer
//! works. An in-memory database is private to its connection, so there reads share the
//! writer's.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::clock::Clock;
use crate::error::{Error, Result, StorageError, StorageFault};

use super::db::{RawRow, Row, Sql, Tx, Value};

/// How long a write waits for another connection's write to finish before giving up.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// How many times a write is retried when SQLite still reports the database as busy.
const BUSY_RETRIES: u32 = 5;

/// The page cache of each connection, in KiB (SQLite's own default size). A file database
/// has two connections, so its caches hold at most 4 MiB.
const CACHE_KIB: i64 = 2 * 1024;

/// The schema's versions: entry `i` takes a database from version `i` to `i + 1`. The version
/// is kept in `PRAGMA user_version`.
pub(super) const MIGRATIONS: [&str; 9] = [
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
    include_str!("schema_9.sql"),
];

/// An SQLite database, file or memory.
#[derive(Debug)]
pub(super) struct Sqlite {
    conn: Mutex<Connection>,
    /// The connection reads use, for a file database, opened at the first read so that a
    /// server starts without paying for it. An in-memory database is private to its
    /// connection, so there (and should opening it fail) reads share the writer's.
    reader: OnceLock<Option<Mutex<Connection>>>,
    /// How to open the reader: the flags the writer was opened with.
    flags: OpenFlags,
    path: Option<PathBuf>,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite> {
        if path == Path::new(":memory:") {
            return Sqlite::open_in_memory();
        }
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        Sqlite::open_with(path, flags)
    }

    pub(super) fn open_read_only(path: &Path) -> Result<Sqlite> {
        Sqlite::open_with(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    pub(super) fn open_in_memory() -> Result<Sqlite> {
        Sqlite::init(Connection::open_in_memory()?, None, OpenFlags::empty())
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Sqlite> {
        let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Sqlite::connect(path, flags)?;
        Sqlite::init(conn, Some(path.to_path_buf()), flags)
    }

    /// One connection to the file at `path`, with the settings every connection here uses.
    fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers run beside the one writer; NORMAL syncs at checkpoints only, which
        // survives a crash of the process (not of the machine) without losing commits. A
        // read-only connection cannot change the journal mode, and does not need to.
        if !conn.is_readonly(rusqlite::MAIN_DB)? {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // No memory map, and a small page cache: the pages a claim or a report works on are
        // few and stay cached, while a report on a large workflow reads the rest through the
        // operating system's file cache. A memory map would count every page a report ever
        // read in the server's resident set, and a large cache would keep them there: with a
        // 256 MiB map and a 64 MiB cache per connection, one report on 50,000 tasks left a
        // server idle at about 90 MB instead of about 12.
        conn.pragma_update(None, "mmap_size", 0)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        // A larger WAL between checkpoints means fewer of the fsyncs a checkpoint costs.
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
        Ok(conn)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>, flags: OpenFlags) -> Result<Sqlite> {
        prepare(&mut conn)?;
        migrate(&mut conn)?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            reader: OnceLock::new(),
            flags,
            path,
        })
    }

    pub(super) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(super) fn integrity_problems(&self) -> Result<Vec<String>> {
        let conn = self.connection();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let found = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(found.into_iter().filter(|line| line != "ok").collect())
    }

    pub(super) fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open: rusqlite rolls back on
        // drop. So the connection is still consistent and the poison can be ignored.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) and commits when it returns `Ok`;
    /// retries a few times while another process still holds the database after the busy
    /// timeout.
    pub(super) fn write<T>(
        &self,
        clock: &Clock,
        mut f: impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.connection();
        let mut attempt = 0;
        loop {
            let result = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&*tx, clock.now())?;
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Err(Error::Storage(err))
                    if err.fault() == StorageFault::Busy && attempt < BUSY_RETRIES =>
                {
                    attempt += 1;
                    std::thread::sleep(StdDuration::from_millis(10 << attempt));
                }
                other => return other,
            }
        }
    }

    /// The reader connection of a file database, opened on first use after the migrations, so
    /// it sees the current schema.
    pub(super) fn reader(&self) -> Option<&Mutex<Connection>> {
        self.reader
            .get_or_init(|| {
                let path = self.path.as_deref()?;
                // Should it fail to open, reads share the writer's connection: still correct,
                // only queued behind writes.
                let mut conn = Sqlite::connect(path, self.flags).ok()?;
                prepare(&mut conn).ok()?;
                Some(Mutex::new(conn))
            })
            .as_ref()
    }

    /// Runs `f` in a read transaction, so it sees one consistent snapshot.
    pub(super) fn read<T>(
        &self,
        clock: &Clock,
        f: impl FnOnce(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = match self.reader() {
            // As with the writer, a panic cannot leave a transaction open.
            Some(reader) => reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            None => self.connection(),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&*tx, clock.now())?;
        tx.commit()?;
        Ok(value)
    }
}

/// Settings of every connection, file or memory.
fn prepare(conn: &mut Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    // The query planner stability guarantee: without it, SQLite (built with STAT4) lets the
    // values bound to a statement's parameters change its plan, and so re-prepares the
    // statement on every run whose plan could depend on them. That cost more than the rest of
    // a claim. The plans here are fixed by the schema's indexes anyway.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // The version is read before any write, so opening a database whose schema is current
    // writes nothing: even a write transaction that changes nothing appends to the WAL, and
    // the first frame of a new WAL is synced to disk, an fsync of several milliseconds on
    // every start. A read-only database at an older version fails below with ReadOnly.
    if schema_version(conn)? == super::SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated in between.
    let version = schema_version(&tx)?;
    if version == super::SCHEMA_VERSION {
        return Ok(());
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(migration)?;
        if from == 1 {
            super::agent::backfill_log_ratios(&*tx)?;
        }
        // The sketches are encoded by the code, so the summaries are filled by it.
        if from == 8 {
            super::summaries::rebuild(&*tx)?;
        }
    }
    tx.pragma_update(None, "user_version", super::SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The schema version of the open database, refused when it is newer than this build's.
fn schema_version(conn: &Connection) -> Result<i64> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > super::SCHEMA_VERSION {
        return Err(Error::IncompatibleSchema {
            found: version,
            supported: super::SCHEMA_VERSION,
        });
    }
    Ok(version)
}

impl From<rusqlite::Error> for Error {
    /// Names the two storage failures an operator can fix, so callers learn why a write
    /// failed; every other SQLite error stays a storage error.
    fn from(error: rusqlite::Error) -> Error {
        let fault = match error.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => return Error::ReadOnly,
            Some(ErrorCode::DiskFull) => return Error::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageFault::Busy,
            _ if matches!(error, rusqlite::Error::QueryReturnedNoRows) => StorageFault::NoRows,
            _ => StorageFault::Engine,
        };
        Error::Storage(StorageError::new(fault, error))
    }
}

impl Sql for Connection {
    fn run(&self, sql: &str, params: &[Value<'_>]) -> Result<usize> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(Bind)))?)
    }

    fn rows(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(Bind)))?;
        while let Some(row) = rows.next()? {
            if !each(&Row(&SqliteRow(row)))? {
                break;
            }
        }
        Ok(())
    }
}

/// A value bound as SQLite's own, borrowed.
struct Bind<'a, 'v>(&'a Value<'v>);

impl rusqlite::ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match *self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(i),
            Value::Real(r) => ValueRef::Real(r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

struct SqliteRow<'a, 'r>(&'a rusqlite::Row<'r>);

impl RawRow for SqliteRow<'_, '_> {
    fn value(&self, i: usize) -> Result<Value<'_>> {
        Ok(match self.0.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(
                std::str::from_utf8(t)
                    .map_err(|e| Error::Storage(StorageError::new(StorageFault::Conversion, e)))?,
            ),
            ValueRef::Blob(b) => Value::Blob(b),
        })
    }

    fn width(&self) -> usize {
        self.0.as_ref().column_count()
    }
}
