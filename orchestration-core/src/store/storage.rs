//! The storage seam of the task state machine: what `transition` needs from a backend to save
//! a step and carry a task's end through its workflow, inside one transaction the caller
//! opened. A write transaction alone has the database to itself, so a row loaded here is still
//! the row when it is saved; one beside other writers (PostgreSQL's claims and reports) holds
//! a lock on every row it loads to change, taken before or by the statement that reads it.
//!
//! The methods are small on purpose: each is one statement, and each names what the core
//! decided rather than how to store it. They are written once, on the seam's transaction
//! ([`Tx`]), in the SQL every backend accepts.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result, StorageError};
use crate::workflow::{AttemptEnded, FailureReason, TaskRecord, TaskState, WorkflowStatus};

use super::attempts::EndedAttempt;
use super::counts::Weight;
use super::db::{Tx, params};
use super::event::{EventKind, NewEvent, append};
use super::millis;
use super::refs::{TaskRow, ids};
use super::sql;

/// A transaction of a backend, as the state machine sees it.
pub(crate) trait TaskStorage {
    /// The task with the store's id `id`.
    fn task(&self, id: i64) -> Result<TaskRecord>;

    /// Saves a stepped task: every field a step changes, and `done_by`, the agent whose
    /// completion made it succeed.
    fn save_task(&self, task: &TaskRecord, done_by: Option<&str>) -> Result<()>;

    /// Adds one attempt that ended to `agent`'s record.
    fn record_attempt(&self, agent: &str, ended: AttemptEnded) -> Result<()>;

    /// Moves a task of `workflow` in its counts by state, from what it added as it was to
    /// what it adds now.
    fn count(
        &self,
        workflow: i64,
        task: i64,
        from: (TaskState, Weight),
        to: (TaskState, Weight),
    ) -> Result<()>;

    /// Changes `workflow`'s count of open tasks by `delta`.
    fn add_open_tasks(&self, workflow: i64, delta: i64) -> Result<()>;

    /// `workflow`'s count of open tasks, as this transaction has left it.
    fn open_tasks(&self, workflow: i64) -> Result<u64>;

    /// Appends one event to the log.
    fn append(&self, at: DateTime<Utc>, kind: EventKind, event: NewEvent<'_>) -> Result<()>;

    /// Appends the task state event that ended `attempt` to the log, and keeps the attempt
    /// for agent performance under the event's position.
    fn append_attempt_end(
        &self,
        at: DateTime<Utc>,
        event: NewEvent<'_>,
        attempt: &EndedAttempt<'_>,
    ) -> Result<()>;

    /// The tasks of `workflow` in one of `states`.
    fn tasks_in(&self, workflow: i64, states: &[TaskState]) -> Result<Vec<i64>>;

    /// The tasks that depend directly on `task`.
    fn dependents(&self, task: i64) -> Result<Vec<i64>>;

    /// Counts one more of `task`'s dependencies as met; returns how many remain unmet and the
    /// task's state.
    fn meet_dependency(&self, task: i64) -> Result<(u32, TaskState)>;

    /// Marks `workflow` as having triggered fail-fast.
    fn trigger_fail_fast(&self, workflow: i64) -> Result<()>;

    /// The states of `workflow`'s leaves: the tasks nothing depends on.
    fn leaf_states(&self, workflow: i64) -> Result<Vec<TaskState>>;

    /// Saves `workflow`'s status and when it finished (`None` while it has not).
    fn save_status(
        &self,
        workflow: i64,
        status: WorkflowStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
}

/// The seam written once for every backend, in the SQL both engines accept.
impl TaskStorage for Tx<'_> {
    fn task(&self, id: i64) -> Result<TaskRecord> {
        TaskRow::by_id(self, id)
    }

    fn save_task(&self, task: &TaskRecord, done_by: Option<&str>) -> Result<()> {
        self.prepare_cached(
            "UPDATE tasks SET state = ?2, reason = ?3, attempt = ?4, agent = ?5, token = ?6, \
             deadline = ?7, ready_at = ?8, started_at = ?9, finished_at = ?10, result = ?11, \
             error = ?12, actual = ?13, first_started_at = coalesce(first_started_at, ?9), \
             done_by = ?14 WHERE id = ?1",
        )?
        .execute(params![
            task.id,
            task.state.as_str(),
            task.reason.map(FailureReason::as_str),
            task.attempt,
            task.agent,
            task.token.0 as i64,
            task.deadline.map(millis),
            task.ready_at.map(millis),
            task.started_at.map(millis),
            task.finished_at.map(millis),
            task.result,
            task.error,
            task.actual,
            done_by,
        ])?;
        Ok(())
    }

    fn record_attempt(&self, agent: &str, ended: AttemptEnded) -> Result<()> {
        super::agent::record_attempt(self, agent, ended.succeeded, ended.log_ratio)
    }

    fn count(
        &self,
        workflow: i64,
        task: i64,
        from: (TaskState, Weight),
        to: (TaskState, Weight),
    ) -> Result<()> {
        super::counts::shift(self, workflow, task, from, to)
    }

    fn add_open_tasks(&self, workflow: i64, delta: i64) -> Result<()> {
        super::counts::add_open(self, workflow, delta)
    }

    fn open_tasks(&self, workflow: i64) -> Result<u64> {
        // The changes kept to the end are written first: the count read must be this
        // transaction's, and the row stays locked from then to the commit, so no other
        // writer's change can come between the read and what is decided from it.
        super::counts::write_pending(self)?;
        let open: i64 = self
            .prepare_cached("SELECT open_tasks FROM workflows WHERE id = ?1")?
            .query_row([workflow], |r| r.get(0))?;
        Ok(open.max(0) as u64)
    }

    fn append(&self, at: DateTime<Utc>, kind: EventKind, event: NewEvent<'_>) -> Result<()> {
        append(self, at, kind, event)
    }

    fn append_attempt_end(
        &self,
        at: DateTime<Utc>,
        event: NewEvent<'_>,
        attempt: &EndedAttempt<'_>,
    ) -> Result<()> {
        super::attempts::append_with_event(self, at, event, attempt)
    }

    fn tasks_in(&self, workflow: i64, states: &[TaskState]) -> Result<Vec<i64>> {
        // Rare (fail-fast, cancellation) and of few shapes: formatted here, then cached by
        // its text like any other statement.
        let query = format!(
            "SELECT id FROM tasks WHERE workflow = ?1 AND state IN {}",
            sql::states(states)
        );
        ids(self, &query, workflow)
    }

    fn dependents(&self, task: i64) -> Result<Vec<i64>> {
        // In one order, so two writers beside each other that meet dependents they share lock
        // them in the same order.
        ids(
            self,
            "SELECT task FROM deps WHERE dep = ?1 ORDER BY task",
            task,
        )
    }

    fn meet_dependency(&self, task: i64) -> Result<(u32, TaskState)> {
        let (unmet, state): (u32, String) = self
            .prepare_cached(
                // Never below zero: a dependent that went on without this dependency (under
                // `continue`, before a retry of the failed reset it) has nothing left to count.
                "UPDATE tasks SET unmet = CASE WHEN unmet > 0 THEN unmet - 1 ELSE 0 END \
                 WHERE id = ?1 RETURNING unmet, state",
            )?
            .query_row([task], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let state = state.parse().map_err(|_| {
            Error::Storage(StorageError::conversion(format!(
                "column 1: unexpected task state `{state}`"
            )))
        })?;
        Ok((unmet, state))
    }

    fn trigger_fail_fast(&self, workflow: i64) -> Result<()> {
        self.prepare_cached("UPDATE workflows SET fail_fast_triggered = 1 WHERE id = ?1")?
            .execute([workflow])?;
        Ok(())
    }

    fn leaf_states(&self, workflow: i64) -> Result<Vec<TaskState>> {
        Ok(self
            .prepare_cached("SELECT state FROM tasks WHERE workflow = ?1 AND is_leaf = 1")?
            .query_map([workflow], |r| r.get::<_, String>(0))?
            .filter_map(|state| state.ok().and_then(|s| s.parse().ok()))
            .collect())
    }

    fn save_status(
        &self,
        workflow: i64,
        status: WorkflowStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.prepare_cached("UPDATE workflows SET status = ?2, finished_at = ?3 WHERE id = ?1")?
            .execute(params![workflow, status.as_str(), finished_at.map(millis)])?;
        Ok(())
    }
}
