//! SQL text the store's queries share: the claim order and the names of states.
//!
//! A state's name reaches SQL from its `as_str()`, never typed out, so that renaming a state
//! cannot leave a query behind: bound as a parameter, or spliced into the statement's text by
//! [`query!`], which formats a statement once, on its first use. Splicing is needed wherever a
//! partial index (`tasks_ready_in_workflow`, `tasks_leased`) should serve the query: SQLite
//! uses one only for a statement whose own `WHERE` clause repeats the index's condition with
//! the same constants, and a bound parameter hides them from the planner. Lists of states
//! (`IN (…)`) are spliced too.

use crate::workflow::{TaskState, WorkflowStatus};

#[cfg(test)]
mod tests;

/// A task's own columns, in the order `TaskRow::from_row` reads them; a query follows them
/// with its workflow's name and uuid, from [`WORKFLOW_OF_TASK`] or bound once for many rows.
pub(crate) const TASK_COLUMNS: &str = "t.id, t.uuid, t.workflow, t.key, t.title, \
    t.description, t.estimate, t.priority, t.max_attempts, t.b_level, t.has_skills, t.state, \
    t.reason, t.attempt, t.agent, t.token, t.deadline, t.ready_at, t.started_at, t.finished_at, \
    t.note, t.result, t.error, t.actual, t.kind";

/// The name and uuid of the workflow of the task `t`, the last two columns of a task row.
pub(crate) const WORKFLOW_OF_TASK: &str = "(SELECT name FROM workflows WHERE id = t.workflow), \
    (SELECT uuid FROM workflows WHERE id = t.workflow)";

/// The claim order in SQL: priority first, then b-level, then the longest wait, then creation
/// order. [`crate::workflow::ClaimRank`] orders the same way in Rust (and puts the agent's fit
/// after the priority); `store/sql/tests.rs` checks that the two agree. The claim-order index
/// `tasks_ready_in_workflow` yields rows already in this order.
pub(crate) const CLAIM_ORDER: &str = "priority DESC, b_level DESC, ready_at, id";

/// The states of a task that holds a lease, the condition of the index `tasks_leased`.
pub(crate) const LEASED: [TaskState; 2] = [TaskState::Assigned, TaskState::Running];

/// The states of a task that is not finished.
pub(crate) const UNFINISHED: [TaskState; 6] = [
    TaskState::Pending,
    TaskState::Ready,
    TaskState::AwaitingApproval,
    TaskState::Assigned,
    TaskState::Running,
    TaskState::WaitingRetry,
];

/// A name as an SQL string literal: `'ready'`. Names are snake_case ASCII, so none needs
/// escaping.
pub(crate) fn lit(name: &str) -> String {
    debug_assert!(!name.contains('\''), "names never contain a quote");
    format!("'{name}'")
}

/// A task state as an SQL string literal.
pub(crate) fn state(state: TaskState) -> String {
    lit(state.as_str())
}

/// A workflow status as an SQL string literal.
pub(crate) fn status(status: WorkflowStatus) -> String {
    lit(status.as_str())
}

/// Task states as an SQL list: `('assigned', 'running')`.
pub(crate) fn states(states: &[TaskState]) -> String {
    let names: Vec<String> = states.iter().map(|&s| state(s)).collect();
    format!("({})", names.join(", "))
}

/// The text of one statement, formatted on its first use and kept for the life of the process,
/// so that a hot statement costs no allocation and the statement cache sees the same text.
macro_rules! query {
    ($($format:tt)*) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!($($format)*));
        SQL.as_str()
    }};
}

pub(crate) use query;

// The hot statements, named so that `store/tests.rs` can find them in the statement cache and
// check that they are never re-prepared.

/// One task row by id.
pub(crate) fn task_by_id() -> &'static str {
    query!("SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t WHERE t.id = ?1")
}

/// The ready tasks of a workflow in claim order, as a claim scans them. `INDEXED BY` pins the
/// plan to the claim-order index, which yields the rows already sorted.
pub(crate) fn ready_in_workflow() -> &'static str {
    query!(
        "SELECT id, has_skills, priority, b_level, ready_at FROM tasks \
         INDEXED BY tasks_ready_in_workflow WHERE workflow = ?1 AND state = {} \
         ORDER BY {CLAIM_ORDER}",
        state(TaskState::Ready)
    )
}

/// The ready tasks of every running workflow in claim order, as a claim that names no
/// workflow scans them: the claim-order index over all workflows yields the rows sorted, and
/// the status of each row's workflow is one lookup by primary key. Only a paused workflow
/// keeps ready tasks while it is not running, so few rows are skipped.
pub(crate) fn ready_anywhere() -> &'static str {
    query!(
        "SELECT id, has_skills, priority, b_level, ready_at FROM tasks t \
         INDEXED BY tasks_ready_anywhere WHERE state = {} \
         AND (SELECT status FROM workflows WHERE id = t.workflow) = {} \
         ORDER BY {CLAIM_ORDER}",
        state(TaskState::Ready),
        status(WorkflowStatus::Running)
    )
}

/// The first ready task of a workflow (`?1`) in claim order that no other transaction holds,
/// locked until the commit: how a claim beside other writers takes its task (on PostgreSQL,
/// whose writers alone run beside others). A row another claim has locked is passed over
/// (`SKIP LOCKED`), as if that claim had committed first, and a row is checked again as
/// ready once it is locked.
pub(crate) fn free_ready_in_workflow() -> &'static str {
    query!(
        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t \
         WHERE t.workflow = ?1 AND t.state = {} \
         ORDER BY {CLAIM_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED",
        state(TaskState::Ready)
    )
}

/// As [`free_ready_in_workflow`], over every running workflow.
pub(crate) fn free_ready_anywhere() -> &'static str {
    query!(
        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t WHERE t.state = {} \
         AND (SELECT status FROM workflows WHERE id = t.workflow) = {} \
         ORDER BY {CLAIM_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED",
        state(TaskState::Ready),
        status(WorkflowStatus::Running)
    )
}

/// Whether a workflow (`?1`) has a ready task, locked or not.
pub(crate) fn any_ready_in_workflow() -> &'static str {
    query!(
        "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE workflow = ?1 AND state = {} LIMIT 1) AS ready",
        state(TaskState::Ready)
    )
}

/// Whether any running workflow has a ready task, locked or not.
pub(crate) fn any_ready_anywhere() -> &'static str {
    query!(
        "SELECT count(*) FROM (SELECT 1 FROM tasks t WHERE t.state = {} \
         AND (SELECT status FROM workflows WHERE id = t.workflow) = {} LIMIT 1) AS ready",
        state(TaskState::Ready),
        status(WorkflowStatus::Running)
    )
}

/// The oldest task assigned to an agent (`?1`) in any running workflow.
pub(crate) fn delegated_anywhere() -> &'static str {
    query!(
        "SELECT t.id FROM tasks t WHERE t.state IN {} AND t.agent = ?1 AND t.state = {} \
         AND (SELECT status FROM workflows WHERE id = t.workflow) = {} \
         ORDER BY t.ready_at, t.id LIMIT 1",
        states(&LEASED),
        state(TaskState::Assigned),
        status(WorkflowStatus::Running)
    )
}
