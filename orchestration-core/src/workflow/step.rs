//! One step of the task state machine over a record: a task, an event and the time give the
//! task's new record and what else must follow (the attempt that ended, the change in the
//! workflow's count of open tasks, what the event log says). Also the decisions that come
//! after a step: what a finished task does to the rest of its workflow, and what an expired
//! lease does to a running task.
//!
//! The store applies what a step returns; it decides nothing itself.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::LeaseToken;

use super::record::{TaskRecord, WorkflowRecord};
use super::retry::AfterFailure;
use super::retry::FailureKind;
use super::state::{
    FailurePolicy, FailureReason, TaskEvent, TaskState, UpstreamEffect, transition, upstream_effect,
};

/// What an event sets besides the state; the rest follows from the states involved.
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    pub(crate) reason: Option<FailureReason>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) deadline: Option<DateTime<Utc>>,
    pub(crate) result: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) actual: Option<f64>,
    pub(crate) detail: Option<&'a str>,
}

/// What a step did besides changing the record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stepped<'a> {
    pub(crate) from: TaskState,
    pub(crate) to: TaskState,
    /// The agent the event is about: the one named by the change, else the task's holder.
    pub(crate) agent: Option<String>,
    /// How the workflow's count of open tasks changes: +1, -1 or 0.
    pub(crate) opened: i64,
    /// An attempt that ended by the agent's doing, for its record.
    pub(crate) attempt_ended: Option<AttemptEnded>,
    /// The event's detail: the change's detail, else the reason, else the error.
    pub(crate) detail: Option<&'a str>,
}

/// An attempt that ended, as an agent's record counts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AttemptEnded {
    pub(crate) succeeded: bool,
    /// `ln(actual / estimate)` of a completion that reported its effort.
    pub(crate) log_ratio: Option<f64>,
}

/// Moves `task` by `event` at `now`, when the state machine allows it: the fencing token, the
/// attempt count, the lease, the times and the outcome fields all follow.
pub(crate) fn step<'a>(
    task: &mut TaskRecord,
    event: TaskEvent,
    change: Change<'a>,
    now: DateTime<Utc>,
) -> Result<Stepped<'a>> {
    let from = task.state;
    let Some(to) = transition(from, event) else {
        return Err(Error::IllegalTransition {
            task: task.display(),
            state: from,
            verb: event.verb(),
        });
    };
    let to = task.kind.arrive(to);
    let agent = change
        .agent
        .map(str::to_owned)
        .or_else(|| task.agent.clone());
    // Any lease that starts or ends moves the fencing token, so reports on an old lease fail.
    if from.is_leased() || to.is_leased() {
        task.token = LeaseToken(task.token.0 + 1);
    }
    match event {
        TaskEvent::Start => {
            task.attempt += 1;
            task.started_at = Some(now);
        }
        // Giving back a started task does not use up an attempt; an assignment never
        // started had not counted one.
        TaskEvent::Release if from == TaskState::Running => {
            task.attempt = task.attempt.saturating_sub(1)
        }
        TaskEvent::Reset => task.attempt = 0,
        _ => {}
    }
    task.agent = if to.is_leased() {
        change.agent.map(str::to_owned).or(task.agent.take())
    } else {
        None
    };
    task.deadline = match to {
        TaskState::Assigned | TaskState::Running | TaskState::WaitingRetry => change.deadline,
        _ => None,
    };
    if matches!(to, TaskState::Ready | TaskState::AwaitingApproval) {
        task.ready_at = Some(now);
    }
    if to.is_terminal() {
        task.finished_at = Some(now);
        task.reason = change.reason;
    } else {
        task.finished_at = None;
        task.reason = None;
    }
    if to == TaskState::Pending {
        task.ready_at = None;
        task.started_at = None;
        task.result = None;
        task.actual = None;
    }
    if let Some(result) = change.result {
        task.result = Some(result.to_owned());
    }
    if let Some(error) = change.error {
        task.error = Some(error.to_owned());
    }
    if change.actual.is_some() {
        task.actual = change.actual;
    }
    task.state = to;
    Ok(Stepped {
        from,
        to,
        attempt_ended: attempt_ended(task, from, event, agent.is_some()),
        agent,
        opened: i64::from(from.is_terminal()) - i64::from(to.is_terminal()),
        detail: change
            .detail
            .or(change.reason.map(FailureReason::as_str))
            .or(change.error),
    })
}

/// The attempt `event` ended, if it ended one by the agent's doing: releases and
/// cancellations are not, so they do not count.
fn attempt_ended(
    task: &TaskRecord,
    from: TaskState,
    event: TaskEvent,
    has_agent: bool,
) -> Option<AttemptEnded> {
    if from != TaskState::Running || !has_agent {
        return None;
    }
    let succeeded = match event {
        TaskEvent::Complete => true,
        TaskEvent::Fail | TaskEvent::FailAndRetry | TaskEvent::LeaseExpired => false,
        _ => return None,
    };
    let log_ratio = match (succeeded, task.actual) {
        (true, Some(actual)) if actual > 0.0 && task.estimate > 0.0 => {
            Some((actual / task.estimate).ln())
        }
        _ => None,
    };
    Some(AttemptEnded {
        succeeded,
        log_ratio,
    })
}

/// What a task that just reached a terminal state does to the rest of its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// The first failure under fail-fast: every task not running is cancelled.
    FailFast,
    /// Its dependents count it as satisfied, or are blocked by it.
    Dependents(UpstreamEffect),
    /// Nothing follows.
    Nothing,
}

/// The tasks fail-fast cancels: a running task finishes its attempt.
pub(crate) const CANCELLED_BY_FAIL_FAST: [TaskState; 5] = [
    TaskState::Pending,
    TaskState::Ready,
    TaskState::AwaitingApproval,
    TaskState::Assigned,
    TaskState::WaitingRetry,
];

/// What the end of a task in `state` does in `workflow`. Triggering fail-fast marks the
/// workflow, so only the first failure does.
pub(crate) fn propagation(workflow: &mut WorkflowRecord, state: TaskState) -> Propagation {
    if state == TaskState::Failed
        && workflow.on_failure == FailurePolicy::FailFast
        && !workflow.fail_fast_triggered
    {
        workflow.fail_fast_triggered = true;
        return Propagation::FailFast;
    }
    match upstream_effect(workflow.on_failure, state) {
        Some(effect) => Propagation::Dependents(effect),
        None => Propagation::Nothing,
    }
}

/// The message a task failed for good by an expired lease carries.
pub(crate) const LEASE_EXPIRED_ERROR: &str = "the lease expired without a report";

/// What a lease that ran out at `now` does to `task`: an assigned task goes back in line; a
/// running one too while the retry policy allows another attempt, else it fails for good.
/// The time is its lease's end, not a backoff: the agent is gone, not the work at fault.
pub(crate) fn on_lease_expired(
    task: &TaskRecord,
    workflow: &WorkflowRecord,
    now: DateTime<Utc>,
) -> (TaskEvent, Change<'static>) {
    let lost = Change {
        detail: Some("lease_expired"),
        ..Change::default()
    };
    if task.state != TaskState::Running {
        return (TaskEvent::LeaseExpired, lost);
    }
    let decision = workflow.retry.after_failure(
        task.uuid,
        task.attempt,
        task.max_attempts,
        FailureKind::Transient,
        now,
    );
    match decision {
        AfterFailure::RetryAt(_) => (
            TaskEvent::LeaseExpired,
            Change {
                error: Some(LEASE_EXPIRED_ERROR),
                ..lost
            },
        ),
        AfterFailure::GiveUp(_) => (
            TaskEvent::Fail,
            Change {
                reason: Some(FailureReason::LeaseExpired),
                error: Some(LEASE_EXPIRED_ERROR),
                ..Change::default()
            },
        ),
    }
}
