//! Copying a whole database into another, of either backend, and comparing the two by their
//! reports: how a team moves from its SQLite file to PostgreSQL when one machine is no longer
//! enough.
//!
//! The copy reads one snapshot of the source and writes every row, ids included, in one
//! transaction of the target, so the target holds the whole copy or nothing. It goes through the
//! storage seam like every use case, table by table in the order the rows refer to each other.
//! Values are converted to the column's type on the way (SQLite may keep a whole real as an
//! integer), and on PostgreSQL the identity sequences are moved past the copied ids, so the next
//! row the target creates gets the id SQLite would have given it.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result, StorageError};
use crate::workflow::{WorkflowReport, WorkflowSummary};

use super::db::{Tx, Value};
use super::refs::WorkflowRow;
use super::{Backend, Store};

/// The type of a column, as both backends store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Real,
    Text,
    Blob,
}

use Kind::{Blob, Integer, Real, Text};

/// One table to copy: its name, its columns, and the column its ids are drawn for (`None`
/// when its key is made of other tables' ids or names).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    identity: Option<&'static str>,
}

/// Every table of the schema, in an order in which each row's references come before it.
const TABLES: &[Table] = &[
    Table {
        name: "workflows",
        columns: &[
            ("id", Integer),
            ("uuid", Blob),
            ("name", Text),
            ("description", Text),
            ("mode", Text),
            ("on_failure", Text),
            ("retry_initial_ms", Integer),
            ("retry_coefficient", Real),
            ("retry_max_ms", Integer),
            ("status", Text),
            ("open_tasks", Integer),
            ("fail_fast_triggered", Integer),
            ("created_at", Integer),
            ("started_at", Integer),
            ("finished_at", Integer),
            ("idempotency_key", Text),
            ("fingerprint", Integer),
        ],
        identity: Some("id"),
    },
    Table {
        name: "tasks",
        columns: &[
            ("id", Integer),
            ("uuid", Blob),
            ("workflow", Integer),
            ("key", Text),
            ("title", Text),
            ("description", Text),
            ("estimate", Real),
            ("priority", Integer),
            ("max_attempts", Integer),
            ("b_level", Real),
            ("has_skills", Integer),
            ("is_leaf", Integer),
            ("unmet", Integer),
            ("state", Text),
            ("reason", Text),
            ("attempt", Integer),
            ("agent", Text),
            ("token", Integer),
            ("deadline", Integer),
            ("ready_at", Integer),
            ("started_at", Integer),
            ("finished_at", Integer),
            ("note", Text),
            ("result", Text),
            ("error", Text),
            ("actual", Real),
            ("done_by", Text),
            ("first_started_at", Integer),
            ("kind", Text),
        ],
        identity: Some("id"),
    },
    Table {
        name: "deps",
        columns: &[("task", Integer), ("dep", Integer)],
        identity: None,
    },
    Table {
        name: "task_skills",
        columns: &[("task", Integer), ("skill", Text), ("level", Integer)],
        identity: None,
    },
    Table {
        name: "agents",
        columns: &[
            ("id", Integer),
            ("name", Text),
            ("status", Text),
            ("max_concurrent", Integer),
            ("points_per_day", Real),
            ("created_at", Integer),
            ("updated_at", Integer),
            ("last_active_at", Integer),
        ],
        identity: Some("id"),
    },
    Table {
        name: "agent_skills",
        columns: &[("agent", Integer), ("skill", Text), ("level", Integer)],
        identity: None,
    },
    Table {
        name: "agent_stats",
        columns: &[
            ("agent", Text),
            ("succeeded", Integer),
            ("attempts", Integer),
            ("log_ratio_sum", Real),
            ("log_ratio_count", Integer),
        ],
        identity: None,
    },
    Table {
        name: "sprints",
        columns: &[
            ("id", Integer),
            ("name", Text),
            ("goal", Text),
            ("start_date", Text),
            ("end_date", Text),
            ("work_week", Integer),
            ("workflows", Text),
            ("status", Text),
            ("focus_factor", Real),
            ("raw_capacity", Real),
            ("capacity", Real),
            ("committed", Real),
            ("completed", Real),
            ("daily_done", Text),
            ("created_at", Integer),
            ("started_at", Integer),
            ("closed_at", Integer),
        ],
        identity: Some("id"),
    },
    Table {
        name: "sprint_members",
        columns: &[
            ("sprint", Integer),
            ("agent", Text),
            ("availability", Real),
            ("days_off", Text),
        ],
        identity: None,
    },
    Table {
        name: "sprint_tasks",
        columns: &[
            ("id", Integer),
            ("sprint", Integer),
            ("task", Integer),
            ("added_at", Integer),
            ("removed_at", Integer),
            ("estimate", Real),
            ("in_commitment", Integer),
            ("planned_for", Text),
            ("current", Integer),
            ("carried_over", Integer),
        ],
        identity: Some("id"),
    },
    Table {
        name: "events",
        columns: &[
            ("seq", Integer),
            ("at", Integer),
            ("kind", Text),
            ("workflow", Integer),
            ("task", Integer),
            ("agent", Text),
            ("from_state", Text),
            ("to_state", Text),
            ("attempt", Integer),
            ("value", Real),
            ("detail", Text),
            ("sprint", Integer),
        ],
        identity: Some("seq"),
    },
    Table {
        name: "attempts",
        columns: &[
            ("ended_at", Integer),
            ("seq", Integer),
            ("agent", Text),
            ("task", Integer),
            ("number", Integer),
            ("started_at", Integer),
            ("outcome", Text),
            ("estimate", Real),
            ("actual", Real),
            ("has_skills", Integer),
        ],
        identity: None,
    },
    Table {
        name: "task_counts",
        columns: &[
            ("workflow", Integer),
            ("state", Text),
            ("shard", Integer),
            ("tasks", Integer),
            ("points", Integer),
            ("done_millis", Integer),
            ("done_points", Integer),
        ],
        identity: None,
    },
    Table {
        name: "agent_summaries",
        columns: &[
            ("span", Integer),
            ("bucket", Integer),
            ("agent", Text),
            ("skill", Text),
            ("attempts", Integer),
            ("succeeded", Integer),
            ("first_pass", Integer),
            ("retries", Integer),
            ("expired", Integer),
            ("points", Integer),
            ("ratios", Integer),
            ("log_ratio", Integer),
            ("cycle", Blob),
            ("errors", Blob),
        ],
        identity: None,
    },
    Table {
        name: "messages",
        columns: &[
            ("id", Integer),
            ("at", Integer),
            ("sender", Text),
            ("recipient", Text),
            ("workflow", Integer),
            ("body", Text),
            ("acked_at", Integer),
        ],
        identity: Some("id"),
    },
    Table {
        name: "locks",
        columns: &[
            ("resource", Text),
            ("prefix", Integer),
            ("owner", Text),
            ("mode", Text),
            ("acquired_at", Integer),
            ("expires_at", Integer),
        ],
        identity: None,
    },
    Table {
        name: "lock_waits",
        columns: &[
            ("waiter", Text),
            ("resource", Text),
            ("prefix", Integer),
            ("mode", Text),
            ("since", Integer),
            ("expires_at", Integer),
        ],
        identity: None,
    },
];

/// What a copy moved: the rows of each table, in the order they were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// `(table, rows)` for every table of the schema.
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, rows)| rows).sum()
    }
}

/// A report on which two databases disagree.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// The lists of workflows differ (names, statuses or counts).
    Workflows,
    /// The report of this workflow differs.
    Workflow(String),
    /// The agents' profiles differ.
    Agents,
    /// The sprints differ.
    Sprints,
    /// The event logs differ in length or in their last position: `(events, last seq)` of
    /// each.
    Events {
        /// The first database's count and last position.
        source: (u64, i64),
        /// The second database's count and last position.
        target: (u64, i64),
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Workflows => f.write_str("the lists of workflows differ"),
            Difference::Workflow(name) => write!(f, "the report of workflow `{name}` differs"),
            Difference::Agents => f.write_str("the agents' profiles differ"),
            Difference::Sprints => f.write_str("the sprints differ"),
            Difference::Events { source, target } => write!(
                f,
                "the event logs differ: {} events up to {} against {} up to {}",
                source.0, source.1, target.0, target.1
            ),
        }
    }
}

/// What both databases were compared on, and the first's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Workflows compared, each by its whole report.
    pub workflows: usize,
    /// Agents compared.
    pub agents: usize,
    /// Sprints compared.
    pub sprints: usize,
    /// Events in the first database's log.
    pub events: u64,
    /// The position of its newest event.
    pub last_event_seq: i64,
    /// The reports on which they disagree: empty when the copy is faithful.
    pub differences: Vec<Difference>,
}

/// A value read from the source, owned until it is written.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The value as column `column` of `table`, of type `kind`, stores it.
    fn read(value: Value<'_>, kind: Kind, table: &str, column: &str) -> Result<Cell> {
        let cell = match (value, kind) {
            (Value::Null, _) => Cell::Null,
            (Value::Integer(i), Integer) => Cell::Integer(i),
            (Value::Real(r), Integer) if r.fract() == 0.0 && r.abs() < 9.0e15 => {
                Cell::Integer(r as i64)
            }
            (Value::Integer(i), Real) => Cell::Real(i as f64),
            (Value::Real(r), Real) => Cell::Real(r),
            (Value::Text(t), Text) => Cell::Text(t.to_owned()),
            (Value::Blob(b), Blob) => Cell::Blob(b.to_vec()),
            (other, _) => {
                return Err(Error::Storage(StorageError::conversion(format!(
                    "cannot copy {table}.{column}: the value {other:?} is not of the column's \
                     type ({kind:?})"
                ))));
            }
        };
        Ok(cell)
    }

    fn value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Integer(i) => Value::Integer(*i),
            Cell::Real(r) => Value::Real(*r),
            Cell::Text(t) => Value::Text(t),
            Cell::Blob(b) => Value::Blob(b),
        }
    }
}

impl Store {
    /// Copies every row of this database into `target`, ids included, in one transaction of
    /// the target: afterwards the target holds the same workflows, tasks, agents, sprints,
    /// locks, messages and event log, or, when anything fails, nothing at all.
    ///
    /// The target must be empty (a database just created by [`Store::open`]); one that holds
    /// any row is refused with [`Error::TargetNotEmpty`] and left unchanged. Writers of the
    /// target wait for the copy; the source is read from one snapshot, so writers of the source
    /// may go on, and what they write after the snapshot is not copied.
    pub fn copy_into(&self, target: &Store) -> Result<Copied> {
        self.read(|source, _| {
            target.write(|into, _| {
                for table in TABLES {
                    let rows = count(into, table.name)?;
                    if rows > 0 {
                        return Err(Error::TargetNotEmpty {
                            table: table.name.to_owned(),
                            rows,
                        });
                    }
                }
                let mut copied = Vec::with_capacity(TABLES.len());
                for table in TABLES {
                    copied.push((table.name, copy_table(source, into, table)?));
                }
                #[cfg(feature = "postgres")]
                if let Backend::Postgres(_) = &target.backend {
                    move_sequences_past_copied_ids(into)?;
                }
                Ok(Copied { tables: copied })
            })
        })
    }

    /// Compares this database with `other` by the reports users read: every workflow's
    /// report (at one moment for both, so that what depends on the time agrees), the
    /// list of workflows, the agents' profiles, the sprints, and the event log's length and
    /// last position. Made to check a copy made by [`Store::copy_into`].
    pub fn compare(&self, other: &Store) -> Result<Comparison> {
        let now = self.read(|_, now| Ok(now))?;
        let mine = Reports::read(self, now)?;
        let theirs = Reports::read(other, now)?;
        let mut differences = Vec::new();
        if mine.workflows != theirs.workflows {
            differences.push(Difference::Workflows);
        }
        for (name, report) in &mine.reports {
            let same = theirs
                .reports
                .iter()
                .any(|(other_name, other)| other_name == name && other == report);
            if !same {
                differences.push(Difference::Workflow(name.clone()));
            }
        }
        if mine.agents != theirs.agents {
            differences.push(Difference::Agents);
        }
        if mine.sprints != theirs.sprints {
            differences.push(Difference::Sprints);
        }
        if mine.events != theirs.events {
            differences.push(Difference::Events {
                source: mine.events,
                target: theirs.events,
            });
        }
        Ok(Comparison {
            workflows: mine.reports.len(),
            agents: mine.agents.len(),
            sprints: mine.sprints.len(),
            events: mine.events.0,
            last_event_seq: mine.events.1,
            differences,
        })
    }
}

/// What [`Store::compare`] compares, read from one database.
struct Reports {
    workflows: Vec<WorkflowSummary>,
    reports: Vec<(String, WorkflowReport)>,
    agents: Vec<crate::agent::AgentProfile>,
    sprints: Vec<super::SprintSummary>,
    events: (u64, i64),
}

impl Reports {
    fn read(store: &Store, now: DateTime<Utc>) -> Result<Reports> {
        let workflows = store.workflows()?;
        let reports = store.read(|tx, _| {
            workflows
                .iter()
                .map(|summary| {
                    let row = WorkflowRow::resolve(tx, &summary.name.as_str().into())?;
                    Ok((
                        summary.name.clone(),
                        super::workflow::report(tx, now, &row)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let events = store.read(|tx, _| {
            tx.query_row(
                "SELECT count(*), coalesce(max(seq), 0) FROM events",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })?;
        Ok(Reports {
            workflows,
            reports,
            agents: store.agents()?,
            sprints: store.sprints()?,
            events,
        })
    }
}

fn count(tx: &Tx<'_>, table: &str) -> Result<u64> {
    tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
}

/// Copies the rows of `table` from `source` to `into`, in key order; returns how many.
fn copy_table(source: &Tx<'_>, into: &Tx<'_>, table: &Table) -> Result<u64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        table.name,
        table.identity.unwrap_or(names[0])
    );
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        names.join(", "),
        placeholders.join(", ")
    );
    let mut rows = 0;
    let mut cells: Vec<Cell> = Vec::with_capacity(names.len());
    let mut failure = None;
    source.rows(&select, &[], &mut |row| {
        cells.clear();
        for (i, (column, kind)) in table.columns.iter().enumerate() {
            cells.push(Cell::read(row.get_ref(i)?, *kind, table.name, column)?);
        }
        let values: Vec<Value<'_>> = cells.iter().map(Cell::value).collect();
        match into.run(&insert, &values) {
            Ok(_) => {
                rows += 1;
                Ok(true)
            }
            Err(error) => {
                failure = Some(error);
                Ok(false)
            }
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(rows),
    }
}

/// Moves each identity sequence of a PostgreSQL target past the largest id copied into its
/// table, so that the target's next row does not collide with a copied one.
fn move_sequences_past_copied_ids(into: &Tx<'_>) -> Result<()> {
    for table in TABLES {
        let Some(column) = table.identity else {
            continue;
        };
        into.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{0}', '{column}'), \
                 coalesce(max({column}), 0) + 1, false) FROM {0}",
                table.name
            ),
            [],
            |row| row.get::<_, i64>(0),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_names_every_column_of_every_table_of_the_sqlite_schema() {
        let store = Store::open_in_memory().unwrap();
        let tables: Vec<String> = store
            .read(|tx, _| {
                tx.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |row| row.get(0))?
                .collect()
            })
            .unwrap();
        let mut copied: Vec<String> = TABLES.iter().map(|t| t.name.to_owned()).collect();
        copied.sort();
        assert_eq!(tables, copied, "every table is copied");
        for table in TABLES {
            let columns: Vec<String> = store
                .read(|tx, _| {
                    tx.prepare(&format!(
                        "SELECT name FROM pragma_table_info('{}') ORDER BY name",
                        table.name
                    ))?
                    .query_map([], |row| row.get(0))?
                    .collect()
                })
                .unwrap();
            let mut named: Vec<String> =
                table.columns.iter().map(|(c, _)| (*c).to_owned()).collect();
            named.sort();
            assert_eq!(columns, named, "the columns of {}", table.name);
        }
    }
}
