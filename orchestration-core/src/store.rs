//! The SQLite store: the only stateful type and the only user of rusqlite.
//!
//! Each public method is one use case and one transaction: read the time once, load what the
//! pure logic needs, call it, save the result and append events, commit. Writes begin with
//! `BEGIN IMMEDIATE`, so two processes never both read a row and then both update it: the second
//! waits for the first to commit (up to the busy timeout) and then sees its result.

mod agent;
mod collaboration;
mod delegation;
mod event;
mod gate;
mod performance;
mod refs;
mod sprint;
mod sql;
mod sqlite;
mod storage;
mod task;
mod transition;
mod view;
mod workflow;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::clock::Clock;
use crate::error::{Error, Result};

pub use crate::workflow::{
    LeasedTask, Progress, TaskBrief, TaskView, WorkflowReport, WorkflowSummary,
};
pub use agent::AgentUpdate;
pub use collaboration::{Handoff, LockOutcome, Message, Recipients, Wait};
pub use delegation::{Assigned, BatchDelegation, Delegation, Rebalanced};
pub use event::{Event, EventKind};
pub use performance::PerformanceWindow;
pub use refs::{TaskRef, WorkflowRef};
pub use sprint::{
    AnalyticsOptions, CarryOver, DEFAULT_FOCUS_FACTOR, DEFAULT_TRIALS, FocusSource, MemberSpec,
    Problem, Retrospective, RetrospectiveOptions, ScopeEdit, SprintAnalytics, SprintForecast,
    SprintPlan, SprintSpec, SprintSummary,
};
pub use task::{
    Claim, ClaimOutcome, ClaimRequest, DEFAULT_LEASE, DependencyResult, HeldTask, Idle, IdleReason,
    NOTES_SHOWN, Note, Report, ReportOutcome, TaskAttempt, TaskDetail, Tick,
};
pub use workflow::{CreateOptions, Created, DependencyEdit, ExecuteOutcome};

/// The default database file, relative to the working directory.
pub const DEFAULT_DB_PATH: &str = ".orchestration/orchestration.db";

/// How long a write waits for another connection's write to finish before giving up.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// How many times a write is retried when SQLite still reports the database as busy.
const BUSY_RETRIES: u32 = 5;

/// The schema's versions: entry `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: [&str; 6] = [
    include_str!("store/schema.sql"),
    include_str!("store/schema_2.sql"),
    include_str!("store/schema_3.sql"),
    include_str!("store/schema_4.sql"),
    include_str!("store/schema_5.sql"),
    include_str!("store/schema_6.sql"),
];
/// The database schema version this build writes and reads (`PRAGMA user_version`): a database
/// of an older version is migrated when opened, one of a newer version is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A handle on one orchestration database. Cheap to share behind an `Arc`: methods take `&self`;
/// writes serialise on one connection, and reads of a file database use a second one, so a long
/// report does not hold up claims. Several processes may open the same file at once.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// The connection reads use, for a file database, opened at the first read so that a
    /// server starts without paying for it. An in-memory database is private to its
    /// connection, so there (and should opening it fail) reads share the writer's.
    reader: OnceLock<Option<Mutex<Connection>>>,
    /// How to open the reader: the flags the writer was opened with.
    flags: OpenFlags,
    clock: Clock,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (and creates, with its directory, when missing) the database at `path`. The path
    /// `:memory:` opens a throwaway in-memory database.
    ///
    /// A database whose file is read-only opens read-only: reads work, writes fail with
    /// [`Error::ReadOnly`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        if path == Path::new(":memory:") {
            return Store::open_in_memory();
        }
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        Store::open_with(path, flags)
    }

    /// Opens an existing database at `path` for reading only, even when the file is writable:
    /// every write fails with [`Error::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path.as_ref(), OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Store> {
        let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Store::connect(path, flags)?;
        let mut store = Store::init(conn, Some(path.to_path_buf()))?;
        store.flags = flags;
        Ok(store)
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
        // Reads through a memory map and a 64 MiB page cache skip most read system calls; a
        // larger WAL between checkpoints means fewer of the fsyncs a checkpoint costs.
        conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)?;
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
        Ok(conn)
    }

    /// Opens [`DEFAULT_DB_PATH`] under the working directory.
    pub fn open_default() -> Result<Store> {
        Store::open(DEFAULT_DB_PATH)
    }

    /// Opens a private in-memory database.
    pub fn open_in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Store> {
        prepare(&mut conn)?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            reader: OnceLock::new(),
            flags: OpenFlags::empty(),
            clock: Clock::System,
            path,
        })
    }

    /// Uses `clock` for every timestamp from now on.
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// The clock the store reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs SQLite's `PRAGMA integrity_check` and returns what it found wrong: an empty list
    /// means the file is sound. Used after crashes to prove that none corrupted the database.
    pub fn integrity_problems(&self) -> Result<Vec<String>> {
        let conn = self.connection();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let found = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(found.into_iter().filter(|line| line != "ok").collect())
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open: rusqlite rolls back on
        // drop. So the connection is still consistent and the poison can be ignored.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`) and commits when it returns `Ok`.
    /// An error rolls everything back, so a rejected call writes nothing.
    fn write<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.connection();
        let mut attempt = 0;
        loop {
            let result = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx, self.clock.now())?;
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Err(Error::Storage(err)) if is_busy(&err) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(StdDuration::from_millis(10 << attempt));
                }
                other => return other,
            }
        }
    }

    /// The reader connection of a file database, opened on first use after the migrations, so
    /// it sees the current schema. In WAL mode it reads the last commit while the writer works.
    fn reader(&self) -> Option<&Mutex<Connection>> {
        self.reader
            .get_or_init(|| {
                let path = self.path.as_deref()?;
                // Should it fail to open, reads share the writer's connection: still correct,
                // only queued behind writes.
                let mut conn = Store::connect(path, self.flags).ok()?;
                prepare(&mut conn).ok()?;
                Some(Mutex::new(conn))
            })
            .as_ref()
    }

    /// Runs `f` in a read transaction, so it sees one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>, DateTime<Utc>) -> Result<T>) -> Result<T> {
        let mut conn = match self.reader() {
            // As with the writer, a panic cannot leave a transaction open.
            Some(reader) => reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            None => self.connection(),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&tx, self.clock.now())?;
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

impl From<rusqlite::Error> for Error {
    /// Names the two storage failures an operator can fix, so callers learn why a write
    /// failed; every other SQLite error stays a storage error.
    fn from(error: rusqlite::Error) -> Error {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ReadOnly) => Error::ReadOnly,
            Some(rusqlite::ErrorCode::DiskFull) => Error::DiskFull,
            _ => Error::Storage(error),
        }
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // A read-only database can be served as it is when its schema is current; an older one
    // would need writing, which fails below with Error::ReadOnly.
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version > SCHEMA_VERSION {
            return Err(Error::IncompatibleSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::IncompatibleSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(migration)?;
        if from == 1 {
            agent::backfill_log_ratios(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}
