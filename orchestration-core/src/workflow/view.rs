//! The public view of a task: its record with its skills and dependencies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::id::{TaskId, WorkflowId};

use super::gate::TaskKind;
use super::record::TaskRecord;
use super::state::{FailureReason, TaskState};

/// A task and everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// Id.
    pub id: TaskId,
    /// Its workflow's id.
    pub workflow: WorkflowId,
    /// Its workflow's name.
    pub workflow_name: String,
    /// Key within the workflow.
    pub key: String,
    /// Title.
    pub title: String,
    /// What to do.
    pub description: Option<String>,
    /// Size in points.
    pub estimate: f64,
    /// 0 to 100.
    pub priority: i64,
    /// Required skills and minimum levels.
    pub skills: BTreeMap<String, u8>,
    /// Keys of its direct dependencies.
    pub depends_on: Vec<String>,
    /// Who finishes it: an agent, or a person for a gate.
    pub kind: TaskKind,
    /// State.
    pub state: TaskState,
    /// Why it failed or was cancelled.
    pub reason: Option<FailureReason>,
    /// Attempts started in this run of the task.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The agent holding its lease.
    pub agent: Option<String>,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the next attempt may start.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it last became ready.
    pub ready_at: Option<DateTime<Utc>>,
    /// When its current or last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent's last progress note.
    pub note: Option<String>,
    /// What it produced.
    pub result: Option<String>,
    /// The last failure's message.
    pub error: Option<String>,
    /// Effort actually spent, in points, as reported.
    pub actual: Option<f64>,
    /// Its rank for the claim order: the longest estimate-weighted path to the end.
    pub b_level: f64,
}

/// The view of `row`, which requires `skills` and depends on the tasks keyed `depends_on`.
pub(crate) fn view_with(
    row: &TaskRecord,
    skills: BTreeMap<String, u8>,
    depends_on: Vec<String>,
) -> TaskView {
    let (lease_expires_at, next_attempt_at) = match row.state {
        TaskState::WaitingRetry => (None, row.deadline),
        _ => (row.deadline, None),
    };
    TaskView {
        id: row.uuid,
        workflow: row.workflow_uuid,
        workflow_name: row.workflow_name.clone(),
        key: row.key.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        estimate: row.estimate,
        priority: row.priority,
        skills,
        depends_on,
        kind: row.kind,
        state: row.state,
        reason: row.reason,
        attempt: row.attempt,
        max_attempts: row.max_attempts,
        agent: row.agent.clone(),
        lease_expires_at,
        next_attempt_at,
        ready_at: row.ready_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        note: row.note.clone(),
        result: row.result.clone(),
        error: row.error.clone(),
        actual: row.actual,
        b_level: row.b_level,
    }
}
