//! How callers name workflows and tasks, and the rows those names resolve to.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::db::{OptionalExtension, Row, Tx, params};
use chrono::Duration;

use super::sql::{TASK_COLUMNS, WORKFLOW_OF_TASK, query};
use crate::clock::from_millis;
use crate::error::{Error, Result, StorageError};
use crate::id::{LeaseToken, TaskId, WorkflowId};
use crate::text::closest;
use crate::workflow::{FailurePolicy, FailureReason, Mode, RetryPolicy, TaskKind, WorkflowStatus};

/// A row of `tasks`, with its workflow's name and id: the pure record.
pub(crate) use crate::workflow::TaskRecord as TaskRow;
/// A row of `workflows`: the pure record.
pub(crate) use crate::workflow::WorkflowRecord as WorkflowRow;

/// A workflow, by name or by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkflowRef {
    /// By id.
    Id(WorkflowId),
    /// By its unique name.
    Name(String),
}

impl FromStr for WorkflowRef {
    type Err = Error;

    /// A UUID is an id; anything else a name.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.parse::<WorkflowId>() {
            Ok(id) => WorkflowRef::Id(id),
            Err(_) => WorkflowRef::Name(s.to_owned()),
        })
    }
}

impl From<WorkflowId> for WorkflowRef {
    fn from(id: WorkflowId) -> Self {
        WorkflowRef::Id(id)
    }
}

impl From<&str> for WorkflowRef {
    fn from(name: &str) -> Self {
        name.parse()
            .unwrap_or_else(|_| WorkflowRef::Name(name.to_owned()))
    }
}

impl fmt::Display for WorkflowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowRef::Id(id) => write!(f, "{id}"),
            WorkflowRef::Name(name) => f.write_str(name),
        }
    }
}

/// A task, as `workflow/key` or by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskRef {
    /// By id.
    Id(TaskId),
    /// By workflow and key.
    Key {
        /// The workflow.
        workflow: WorkflowRef,
        /// The task's key in it.
        key: String,
    },
}

impl TaskRef {
    /// The task `key` of `workflow`.
    pub fn key(workflow: impl Into<WorkflowRef>, key: impl Into<String>) -> TaskRef {
        TaskRef::Key {
            workflow: workflow.into(),
            key: key.into(),
        }
    }
}

impl FromStr for TaskRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some((workflow, key)) = s.split_once('/') {
            return Ok(TaskRef::key(workflow.parse::<WorkflowRef>()?, key));
        }
        s.parse::<TaskId>()
            .map(TaskRef::Id)
            .map_err(|_| Error::InvalidArgument {
                field: "task".into(),
                reason: format!("`{s}` is neither `workflow/key` nor a task id"),
            })
    }
}

impl From<TaskId> for TaskRef {
    fn from(id: TaskId) -> Self {
        TaskRef::Id(id)
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskRef::Id(id) => write!(f, "{id}"),
            TaskRef::Key { workflow, key } => write!(f, "{workflow}/{key}"),
        }
    }
}

pub(crate) const WORKFLOW_COLUMNS: &str = "id, uuid, name, description, mode, on_failure, \
    retry_initial_ms, retry_coefficient, retry_max_ms, status, open_tasks, fail_fast_triggered, \
    created_at, started_at, finished_at";

impl WorkflowRow {
    pub(crate) fn from_row(row: &Row<'_>) -> Result<WorkflowRow> {
        Ok(WorkflowRow {
            id: row.get(0)?,
            uuid: WorkflowId::from_bytes(row.get(1)?),
            name: row.get(2)?,
            description: row.get(3)?,
            mode: parse_column(row, 4, Mode::parse)?,
            on_failure: parse_column(row, 5, FailurePolicy::parse)?,
            retry: RetryPolicy {
                initial_interval: Duration::milliseconds(row.get(6)?),
                backoff_coefficient: row.get(7)?,
                max_interval: Duration::milliseconds(row.get(8)?),
            },
            status: parse_column(row, 9, WorkflowStatus::parse)?,
            open_tasks: row.get::<_, i64>(10)? as u64,
            fail_fast_triggered: row.get(11)?,
            created_at: from_millis(row.get(12)?),
            started_at: row.get::<_, Option<i64>>(13)?.map(from_millis),
            finished_at: row.get::<_, Option<i64>>(14)?.map(from_millis),
        })
    }

    pub(crate) fn by_id(conn: &Tx<'_>, id: i64) -> Result<WorkflowRow> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = ?1");
        conn.prepare_cached(&sql)?
            .query_row([id], WorkflowRow::from_row)
    }

    pub(crate) fn resolve(conn: &Tx<'_>, workflow: &WorkflowRef) -> Result<WorkflowRow> {
        let row = match workflow {
            WorkflowRef::Id(id) => {
                let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE uuid = ?1");
                conn.prepare_cached(&sql)?
                    .query_row([id.as_bytes()], WorkflowRow::from_row)
                    .optional()?
            }
            WorkflowRef::Name(name) => {
                let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE name = ?1");
                conn.prepare_cached(&sql)?
                    .query_row([name], WorkflowRow::from_row)
                    .optional()?
            }
        };
        match row {
            Some(row) => Ok(row),
            None => Err(unknown_workflow(conn, workflow)?),
        }
    }
}

impl TaskRow {
    pub(crate) fn from_row(row: &Row<'_>) -> Result<TaskRow> {
        let millis = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.map(from_millis));
        Ok(TaskRow {
            id: row.get(0)?,
            uuid: TaskId::from_bytes(row.get(1)?),
            workflow: row.get(2)?,
            key: row.get(3)?,
            title: row.get(4)?,
            description: row.get(5)?,
            estimate: row.get(6)?,
            priority: row.get(7)?,
            max_attempts: row.get(8)?,
            b_level: row.get(9)?,
            has_skills: row.get(10)?,
            state: parse_column(row, 11, |s| s.parse().ok())?,
            reason: row
                .get::<_, Option<String>>(12)?
                .and_then(|s| FailureReason::parse(&s)),
            attempt: row.get(13)?,
            agent: row.get(14)?,
            token: LeaseToken(row.get::<_, i64>(15)? as u64),
            deadline: millis(16)?,
            ready_at: millis(17)?,
            started_at: millis(18)?,
            finished_at: millis(19)?,
            note: row.get(20)?,
            result: row.get(21)?,
            error: row.get(22)?,
            actual: row.get(23)?,
            kind: parse_column(row, 24, TaskKind::parse)?,
            workflow_name: row.get(25)?,
            workflow_uuid: WorkflowId::from_bytes(row.get(26)?),
        })
    }

    pub(crate) fn by_id(conn: &Tx<'_>, id: i64) -> Result<TaskRow> {
        conn.prepare_cached(super::sql::task_by_id())?
            .query_row([id], TaskRow::from_row)
    }

    /// As [`TaskRow::by_id`], locking the row as [`TaskRow::resolve_for_update`] does.
    pub(crate) fn by_id_for_update(conn: &Tx<'_>, id: i64) -> Result<TaskRow> {
        if !conn.beside_others() {
            return TaskRow::by_id(conn, id);
        }
        let sql = query!(
            "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t WHERE t.id = ?1 FOR UPDATE"
        );
        conn.prepare_cached(sql)?.query_row([id], TaskRow::from_row)
    }

    pub(crate) fn resolve(conn: &Tx<'_>, task: &TaskRef) -> Result<TaskRow> {
        TaskRow::resolve_in(conn, task, false)
    }

    /// As [`TaskRow::resolve`], and when other writers run beside this transaction, locks
    /// the row against them until the commit: a use case that changes a task it was named
    /// loads it so, and then sees the row as the last writer left it.
    pub(crate) fn resolve_for_update(conn: &Tx<'_>, task: &TaskRef) -> Result<TaskRow> {
        TaskRow::resolve_in(conn, task, conn.beside_others())
    }

    fn resolve_in(conn: &Tx<'_>, task: &TaskRef, lock: bool) -> Result<TaskRow> {
        let row = match task {
            TaskRef::Id(id) => {
                let sql = if lock {
                    query!(
                        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t \
                         WHERE t.uuid = ?1 FOR UPDATE"
                    )
                } else {
                    query!(
                        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t WHERE t.uuid = ?1"
                    )
                };
                conn.prepare_cached(sql)?
                    .query_row([id.as_bytes()], TaskRow::from_row)
                    .optional()?
            }
            TaskRef::Key { workflow, key } => {
                let workflow = WorkflowRow::resolve(conn, workflow)?;
                let sql = if lock {
                    query!(
                        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t \
                         WHERE t.workflow = ?1 AND t.key = ?2 FOR UPDATE"
                    )
                } else {
                    query!(
                        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t \
                         WHERE t.workflow = ?1 AND t.key = ?2"
                    )
                };
                conn.prepare_cached(sql)?
                    .query_row(params![workflow.id, key], TaskRow::from_row)
                    .optional()?
            }
        };
        match row {
            Some(row) => Ok(row),
            None => Err(unknown_task(conn, task)?),
        }
    }
}

/// The error for a workflow nobody has, with the names closest to the one asked for.
fn unknown_workflow(conn: &Tx<'_>, workflow: &WorkflowRef) -> Result<Error> {
    let closest = match workflow {
        WorkflowRef::Id(_) => Vec::new(),
        WorkflowRef::Name(name) => {
            let names: Vec<String> = conn
                .prepare_cached("SELECT name FROM workflows")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_>>()?;
            closest(name, names.iter().map(String::as_str))
        }
    };
    Ok(Error::UnknownWorkflow {
        name: workflow.to_string(),
        closest,
    })
}

/// The error for a task nobody has: the workflow's keys closest to the one asked for.
fn unknown_task(conn: &Tx<'_>, task: &TaskRef) -> Result<Error> {
    let closest = match task {
        TaskRef::Id(_) => Vec::new(),
        TaskRef::Key { workflow, key } => {
            let workflow = WorkflowRow::resolve(conn, workflow)?;
            let keys: Vec<String> = conn
                .prepare_cached("SELECT key FROM tasks WHERE workflow = ?1")?
                .query_map([workflow.id], |r| r.get(0))?
                .collect::<Result<_>>()?;
            closest(key, keys.iter().map(String::as_str))
                .into_iter()
                .map(|key| format!("{}/{key}", workflow.name))
                .collect()
        }
    };
    Ok(Error::UnknownTask {
        task: task.to_string(),
        closest,
    })
}

/// Reads a text column through `parse`, turning an unknown value into a conversion error rather
/// than a panic: a database edited by hand must not crash the server.
pub(crate) fn parse_column<T>(
    row: &Row<'_>,
    index: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        Error::Storage(StorageError::conversion(format!(
            "column {index}: unexpected value `{text}`"
        )))
    })
}

/// The integer ids a one-parameter query returns.
pub(crate) fn ids(conn: &Tx<'_>, sql: &str, param: i64) -> Result<Vec<i64>> {
    conn.prepare_cached(sql)?
        .query_map([param], |row| row.get(0))?
        .collect::<Result<_>>()
}

pub(crate) fn task_skills(conn: &Tx<'_>, task: i64) -> Result<BTreeMap<String, u8>> {
    conn.prepare_cached("SELECT skill, level FROM task_skills WHERE task = ?1")?
        .query_map([task], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_>>()
}

/// All task rows of a workflow, in creation order.
pub(crate) fn workflow_tasks(conn: &Tx<'_>, workflow: i64) -> Result<Vec<TaskRow>> {
    // Reading the workflow's id range of the table in id order needs neither a sort nor an
    // index lookup per task, and the workflow's name and id are bound once rather than looked
    // up for every row: most of the cost of a status report on a large workflow.
    let Some((first, last)) = task_range(conn, workflow)? else {
        return Ok(Vec::new());
    };
    let (name, uuid): (String, [u8; 16]) = conn
        .prepare_cached("SELECT name, uuid FROM workflows WHERE id = ?1")?
        .query_row([workflow], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let sql = query!(
        "SELECT {TASK_COLUMNS}, ?4, ?5 FROM tasks t NOT INDEXED \
         WHERE t.id BETWEEN ?2 AND ?3 AND t.workflow = ?1 ORDER BY t.id"
    );
    conn.prepare_cached(sql)?
        .query_map(
            params![workflow, first, last, name, uuid],
            TaskRow::from_row,
        )?
        .collect::<Result<_>>()
}

/// The first and last task ids of a workflow. A workflow's tasks are inserted together, in one
/// transaction, so its ids form one range and no other workflow's task falls inside it.
pub(crate) fn task_range(conn: &Tx<'_>, workflow: i64) -> Result<Option<(i64, i64)>> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT min(id), max(id) FROM tasks WHERE workflow = ?1")?
        .query_row([workflow], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(first.zip(last))
}
