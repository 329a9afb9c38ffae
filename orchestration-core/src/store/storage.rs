//! The storage seam of the task state machine: what `transition` needs from a backend to save
//! a step and carry a task's end through its workflow, inside one transaction the caller
//! opened. SQLite implements it on its transaction (`store/sqlite.rs`); a PostgreSQL backend
//! implements the same methods on its own, with the row locks it needs (a task is loaded for
//! update, `FOR UPDATE`, before it is stepped; the workflow row likewise before its count or
//! status changes) and the server's time read once per transaction by the caller.
//!
//! The methods are small on purpose: each is one statement in SQLite, and each names what the
//! core decided rather than how to store it.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::workflow::{AttemptEnded, TaskRecord, TaskState, WorkflowStatus};

use super::event::{EventKind, NewEvent};

/// A transaction of a backend, as the state machine sees it.
pub(crate) trait TaskStorage {
    /// The task with the store's id `id`.
    fn task(&self, id: i64) -> Result<TaskRecord>;

    /// Saves a stepped task: every field a step changes, and `done_by`, the agent whose
    /// completion made it succeed.
    fn save_task(&self, task: &TaskRecord, done_by: Option<&str>) -> Result<()>;

    /// Adds one attempt that ended to `agent`'s record.
    fn record_attempt(&self, agent: &str, ended: AttemptEnded) -> Result<()>;

    /// Changes `workflow`'s count of open tasks by `delta`.
    fn add_open_tasks(&self, workflow: i64, delta: i64) -> Result<()>;

    /// `workflow`'s count of open tasks, as this transaction has left it.
    fn open_tasks(&self, workflow: i64) -> Result<u64>;

    /// Appends one event to the log.
    fn append(&self, at: DateTime<Utc>, kind: EventKind, event: NewEvent<'_>) -> Result<()>;

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
