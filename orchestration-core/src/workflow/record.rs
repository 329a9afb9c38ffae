//! The records the use cases decide over: a workflow and a task as a store keeps them. A store
//! loads them, the pure functions of this module's siblings change them, and the store saves
//! them; `id` and `workflow` are the store's own keys, opaque here.

use chrono::{DateTime, Utc};

use crate::id::{LeaseToken, TaskId, WorkflowId};

use super::gate::TaskKind;
use super::lease::LeaseHolder;
use super::order::ClaimRank;
use super::retry::RetryPolicy;
use super::spec::Mode;
use super::state::{FailurePolicy, FailureReason, TaskState, WorkflowStatus};

/// A workflow as stored.
#[derive(Debug, Clone)]
pub(crate) struct WorkflowRecord {
    pub(crate) id: i64,
    pub(crate) uuid: WorkflowId,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) on_failure: FailurePolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) status: WorkflowStatus,
    /// Tasks not in a terminal state; the workflow can only end when this reaches 0.
    pub(crate) open_tasks: u64,
    pub(crate) fail_fast_triggered: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
}

impl WorkflowRecord {
    /// Whether its tasks may become ready: it has started and not finished.
    pub(crate) fn is_started(&self) -> bool {
        matches!(
            self.status,
            WorkflowStatus::Running | WorkflowStatus::Paused
        )
    }
}

/// A task as stored, with its workflow's name and id for messages and views.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    pub(crate) id: i64,
    pub(crate) uuid: TaskId,
    pub(crate) workflow: i64,
    pub(crate) workflow_name: String,
    pub(crate) workflow_uuid: WorkflowId,
    pub(crate) key: String,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) estimate: f64,
    pub(crate) priority: i64,
    pub(crate) max_attempts: u32,
    pub(crate) b_level: f64,
    pub(crate) has_skills: bool,
    /// Who finishes it: an agent, or a person for a gate.
    pub(crate) kind: TaskKind,
    pub(crate) state: TaskState,
    pub(crate) reason: Option<FailureReason>,
    pub(crate) attempt: u32,
    pub(crate) agent: Option<String>,
    pub(crate) token: LeaseToken,
    pub(crate) deadline: Option<DateTime<Utc>>,
    pub(crate) ready_at: Option<DateTime<Utc>>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) note: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) actual: Option<f64>,
}

impl TaskRecord {
    /// `workflow/key`, for messages.
    pub(crate) fn display(&self) -> String {
        format!("{}/{}", self.workflow_name, self.key)
    }

    /// What the lease-holder check needs of the task; `name` is its [`TaskRecord::display`].
    pub(crate) fn lease<'a>(&'a self, name: &'a str) -> LeaseHolder<'a> {
        LeaseHolder {
            task: name,
            state: self.state,
            holder: self.agent.as_deref(),
            token: self.token,
            deadline: self.deadline,
        }
    }

    /// The task's place in the claim order, for an agent whose skills fit it perfectly.
    pub(crate) fn claim_rank(&self) -> ClaimRank {
        ClaimRank {
            priority: self.priority,
            fit: 1.0,
            b_level: self.b_level,
            ready_at: self.ready_at,
            created: self.id,
        }
    }
}
