//! The store, [`Store`]: the only stateful type, and the types its use cases take and return.
//!
//! A store opens an SQLite file (the default, for the processes of one machine) or a
//! PostgreSQL database (for many hosts), and behaves the same on both. Each method is one use
//! case and one transaction: read the time once, load what the pure logic needs, call it, save
//! the result and append events, commit. Write transactions of one database never interleave,
//! so two processes never both read a row and then both update it: the second waits for the
//! first to commit and then sees its result.
//!
//! Inside, the use cases are written once against a small storage seam (run a statement, read
//! rows); each backend implements it in a file of its own.

mod agent;
mod attempts;
mod collaboration;
mod copy;
mod counts;
pub(crate) mod db;
mod delegation;
mod event;
mod gate;
mod performance;
#[cfg(feature = "postgres")]
mod postgres;
mod refs;
mod sprint;
mod sql;
mod sqlite;
mod status;
mod storage;
mod summaries;
mod task;
mod transition;
mod view;
mod workflow;

#[cfg(test)]
mod tests;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::Result;

use db::{Tx, Writers};

pub use crate::workflow::{
    LeasedTask, Progress, TaskBrief, TaskView, WorkflowOverview, WorkflowReport, WorkflowSummary,
};
pub use agent::AgentUpdate;
pub use collaboration::{Delivery, Handoff, LockOutcome, Message, Recipients, Wait};
pub use copy::{Comparison, Copied, Difference};
pub use delegation::{Assigned, BatchDelegation, Delegation, DelegationMode, Rebalanced};
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
    NOTES_SHOWN, Note, TaskAttempt, TaskDetail, TaskUpdate, Tick, UpdateOutcome, WorkflowAttempt,
};
pub use workflow::{CreateOptions, Created, DependencyEdit, ExecuteOutcome};

/// The default database file, relative to the working directory.
pub const DEFAULT_DB_PATH: &str = ".orchestration/orchestration.db";

/// The database schema version this build writes and reads: a database of an older version is
/// migrated when opened, one of a newer version is refused.
pub const SCHEMA_VERSION: i64 = sqlite::MIGRATIONS.len() as i64;

/// A handle on one orchestration database. Cheap to share behind an `Arc`: methods take `&self`;
/// writes serialise on one connection, and reads of a file database use a second one, so a long
/// report does not hold up claims. Several processes may open the same file at once.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    clock: Clock,
}

/// The engine under a store.
#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens the database at `location`, bringing its schema to [`SCHEMA_VERSION`]:
    /// - a `postgres://` (or `postgresql://`) URL opens that PostgreSQL database, whose
    ///   server and database must exist (the tables are created in the URL's schema, the
    ///   first of its `search_path`);
    /// - `:memory:` opens a throwaway in-memory SQLite database;
    /// - anything else is the path of an SQLite file, created with its directory when missing.
    ///   A file that is read-only opens read-only: reads work, writes fail with
    ///   [`crate::Error::ReadOnly`].
    pub fn open(location: impl AsRef<Path>) -> Result<Store> {
        let location = location.as_ref();
        if let Some(url) = Store::server_url(location) {
            return Store::open_server(url, false);
        }
        Ok(Store::on(Backend::Sqlite(sqlite::Sqlite::open(location)?)))
    }

    /// The URL of a database server when `location` is one (`postgres://…` or
    /// `postgresql://…`), `None` for an SQLite file or `:memory:`.
    pub fn server_url(location: &Path) -> Option<&str> {
        location
            .to_str()
            .filter(|l| l.starts_with("postgres://") || l.starts_with("postgresql://"))
    }

    /// `location` as messages show it: a server's URL without its password, a path as it is.
    pub fn shown(location: &Path) -> String {
        let Some(url) = Store::server_url(location) else {
            return location.display().to_string();
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        match rest.split_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_owned(),
        }
    }

    #[cfg(feature = "postgres")]
    fn open_server(url: &str, read_only: bool) -> Result<Store> {
        Ok(Store::on(Backend::Postgres(postgres::Postgres::open(
            url, read_only,
        )?)))
    }

    #[cfg(not(feature = "postgres"))]
    fn open_server(_: &str, _: bool) -> Result<Store> {
        Err(crate::Error::InvalidArgument {
            field: "database".into(),
            reason: "this build has no PostgreSQL backend (the `postgres` feature is off)".into(),
        })
    }

    /// Opens an existing database for reading only, even when it is writable: every write
    /// fails with [`crate::Error::ReadOnly`]. `location` is as for [`Store::open`], except
    /// that nothing is created.
    pub fn open_read_only(location: impl AsRef<Path>) -> Result<Store> {
        let location = location.as_ref();
        if let Some(url) = Store::server_url(location) {
            return Store::open_server(url, true);
        }
        Ok(Store::on(Backend::Sqlite(sqlite::Sqlite::open_read_only(
            location,
        )?)))
    }

    /// Opens [`DEFAULT_DB_PATH`] under the working directory.
    pub fn open_default() -> Result<Store> {
        Store::open(DEFAULT_DB_PATH)
    }

    /// Opens a private in-memory database.
    pub fn open_in_memory() -> Result<Store> {
        Ok(Store::on(
            Backend::Sqlite(sqlite::Sqlite::open_in_memory()?),
        ))
    }

    fn on(backend: Backend) -> Store {
        Store {
            backend,
            clock: Clock::System,
        }
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

    /// The database file, or `None` in memory or on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(db) => db.path(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// Checks the database's own structures (SQLite's `PRAGMA integrity_check`) and returns
    /// what it found wrong: an empty list means the file is sound. Used after crashes to prove
    /// that none corrupted the database.
    pub fn integrity_problems(&self) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Sqlite(db) => db.integrity_problems(),
            // PostgreSQL checks its own pages and keeps its own write-ahead log: a crash of a
            // client cannot corrupt them.
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Ok(Vec::new()),
        }
    }

    /// Runs `f` in a write transaction and commits when it returns `Ok`. An error rolls
    /// everything back, so a rejected call writes nothing. `f` may run more than once when the
    /// backend retries a transaction that lost a race, so it changes nothing outside it.
    fn write<T>(&self, f: impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>) -> Result<T> {
        self.write_with(Writers::Alone, f)
    }

    /// As [`Store::write`], beside the `writers` the backend may run at the same time: only
    /// PostgreSQL runs any beside others; SQLite runs every writer alone.
    fn write_with<T>(
        &self,
        writers: Writers<'_>,
        f: impl FnMut(&Tx<'_>, DateTime<Utc>) -> Result<T>,
    ) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let _ = writers;
                db.write(&self.clock, f)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.write(&self.clock, writers, f),
        }
    }

    /// Runs `f` in a read transaction, so it sees one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Tx<'_>, DateTime<Utc>) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(db) => db.read(&self.clock, f),
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.read(&self.clock, f),
        }
    }

    /// A count that moves when the database server tells of a change by any process
    /// (PostgreSQL's notifications), so that a caller waiting for changes can look at the log
    /// only when it moved: compare it with the count of the last look. `None` when the
    /// backend sends no notifications (SQLite) or is not listening now: then look at
    /// [`Store::last_event_seq`] instead. Only a hint: a caller still looks at the log now and
    /// then, in case a notification was lost.
    pub fn change_notices(&self) -> Option<u64> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => db.change_notices(),
        }
    }

    /// The SQLite backend, for the tests of what is particular to it.
    #[cfg(test)]
    fn sqlite(&self) -> &sqlite::Sqlite {
        match &self.backend {
            Backend::Sqlite(db) => db,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => panic!("this test is about the SQLite backend"),
        }
    }
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}
