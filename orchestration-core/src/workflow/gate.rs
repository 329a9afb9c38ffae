//! Gates: tasks that a person, not an agent, finishes. A gate whose dependencies are done
//! waits for approval instead of being offered to agents; approving it succeeds it (its
//! dependents move), rejecting it fails it for good, under the workflow's failure policy.

use std::fmt;

use crate::error::{Error, Result};

use super::record::TaskRecord;
use super::state::{FailureReason, TaskEvent, TaskState};
use super::step::Change;

/// Who finishes a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskKind {
    /// An agent claims it and reports on it.
    #[default]
    Work,
    /// A person approves or rejects it; no agent ever claims it.
    Gate,
}

impl TaskKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Work => "work",
            TaskKind::Gate => "gate",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<TaskKind> {
        [TaskKind::Work, TaskKind::Gate]
            .into_iter()
            .find(|kind| kind.as_str() == s)
    }

    /// The state a task of this kind takes where the state machine says `to`: a gate that
    /// could run waits for approval instead of an agent.
    pub(crate) fn arrive(self, to: TaskState) -> TaskState {
        match (self, to) {
            (TaskKind::Gate, TaskState::Ready) => TaskState::AwaitingApproval,
            _ => to,
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's decision on a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateDecision {
    /// The gate succeeds and its dependents move.
    Approve,
    /// The gate fails for good, under the workflow's failure policy.
    Reject,
}

impl GateDecision {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GateDecision::Approve => "approve",
            GateDecision::Reject => "reject",
        }
    }
}

impl fmt::Display for GateDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step that `decision` makes of `task`, with `note` (why) kept as the result of an
/// approval or the error of a rejection: refused unless the task is a gate waiting for
/// approval.
pub(crate) fn decide<'a>(
    task: &TaskRecord,
    decision: GateDecision,
    note: Option<&'a str>,
) -> Result<(TaskEvent, Change<'a>)> {
    if task.kind != TaskKind::Gate {
        return Err(Error::InvalidArgument {
            field: "task".into(),
            reason: format!(
                "`{}` is not a gate: an agent finishes it by reporting",
                task.display()
            ),
        });
    }
    if task.state != TaskState::AwaitingApproval {
        return Err(Error::IllegalTransition {
            task: task.display(),
            state: task.state,
            verb: match decision {
                GateDecision::Approve => TaskEvent::Approve.verb(),
                GateDecision::Reject => TaskEvent::Reject.verb(),
            },
        });
    }
    Ok(match decision {
        GateDecision::Approve => (
            TaskEvent::Approve,
            Change {
                result: note,
                detail: Some("approved"),
                ..Change::default()
            },
        ),
        GateDecision::Reject => (
            TaskEvent::Reject,
            Change {
                reason: Some(FailureReason::Rejected),
                error: Some(note.unwrap_or("rejected")),
                ..Change::default()
            },
        ),
    })
}
