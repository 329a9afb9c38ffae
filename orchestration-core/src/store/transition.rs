//! Saving the task state machine's steps: [`apply`] saves one step of a task and what follows
//! from it (the agent's record, the workflow's count of open tasks, the event), [`settle`]
//! carries a task's end to its dependents and to the workflow's outcome. The decisions are the
//! pure `workflow::step` and `workflow::propagation`; this module only loads and saves.
//!
//! Every use case that changes a task's state comes through here, whichever module it lives
//! in, so no two of them depend on each other for it. Nothing here names a database: it works
//! through the storage seam, `storage::TaskStorage`, which SQLite implements on its
//! transaction.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::workflow::{
    CANCELLED_BY_FAIL_FAST, Change, FailureReason, Propagation, TaskEvent, TaskState,
    UpstreamEffect, WorkflowStatus, outcome, step, transition,
};

use super::attempts::{EndedAttempt, ended};
use super::counts::weight;
use super::event::{EventKind, NewEvent};
use super::refs::{TaskRow, WorkflowRow};
use super::storage::TaskStorage;

/// Moves `task` by `event` when the state machine allows it and saves the step: the task's
/// row, its workflow's counts by state, the agent's record and the attempt when an attempt
/// ended, the workflow's count of open tasks, and the event. `task` is updated to the new row values.
pub(crate) fn apply(
    store: &(impl TaskStorage + ?Sized),
    now: DateTime<Utc>,
    task: &mut TaskRow,
    event: TaskEvent,
    change: Change<'_>,
) -> Result<()> {
    let started_at = task.started_at;
    let counted = (task.state, weight(task));
    let stepped = step(task, event, change, now)?;
    store.count(task.workflow, task.id, counted, (task.state, weight(task)))?;
    let done_by = stepped
        .agent
        .as_deref()
        .filter(|_| stepped.to == TaskState::Succeeded);
    store.save_task(task, done_by)?;
    if let (Some(ended), Some(agent)) = (stepped.attempt_ended, stepped.agent.as_deref()) {
        store.record_attempt(agent, ended)?;
    }
    if stepped.opened != 0 {
        store.add_open_tasks(task.workflow, stepped.opened)?;
    }
    let value = match stepped.to {
        TaskState::Succeeded => task.actual,
        _ => None,
    };
    let event = NewEvent {
        workflow: Some(task.workflow),
        task: Some(task.id),
        agent: stepped.agent.as_deref(),
        from: Some(stepped.from),
        to: Some(stepped.to),
        attempt: Some(task.attempt),
        value,
        detail: stepped.detail,
        sprint: None,
    };
    // An attempt that performance counts is kept beside the event that ended it.
    let (Some(end), Some(agent)) = (
        ended(stepped.from, stepped.to, stepped.detail),
        stepped.agent.as_deref(),
    ) else {
        return store.append(now, EventKind::TaskState, event);
    };
    store.append_attempt_end(
        now,
        event,
        &EndedAttempt {
            agent,
            task: task.id,
            number: task.attempt,
            started_at,
            ended_at: now,
            end,
            estimate: task.estimate,
            actual: value,
            has_skills: task.has_skills,
        },
    )
}

/// Moves the dependents of tasks that just reached a terminal state, transitively, then ends
/// the workflow when nothing is left open. `workflow` is the tasks' workflow, loaded once by
/// the caller and kept current here. Returns the keys of tasks that became ready.
pub(crate) fn settle(
    store: &(impl TaskStorage + ?Sized),
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
    mut finished: Vec<(i64, TaskState)>,
) -> Result<Vec<String>> {
    let mut unblocked = Vec::new();
    while let Some((task, state)) = finished.pop() {
        let effect = match crate::workflow::propagation(workflow, state) {
            Propagation::Nothing => continue,
            Propagation::FailFast => {
                store.trigger_fail_fast(workflow.id)?;
                for id in store.tasks_in(workflow.id, &CANCELLED_BY_FAIL_FAST)? {
                    let change = Change {
                        reason: Some(FailureReason::FailFast),
                        ..Change::default()
                    };
                    apply(store, now, &mut store.task(id)?, TaskEvent::Cancel, change)?;
                }
                continue;
            }
            Propagation::Dependents(effect) => effect,
        };
        for id in store.dependents(task)? {
            match effect {
                UpstreamEffect::Satisfied => {
                    let (unmet, state) = store.meet_dependency(id)?;
                    if unmet == 0 && state == TaskState::Pending && workflow.is_started() {
                        let mut dependent = store.task(id)?;
                        let event = TaskEvent::DependenciesMet;
                        apply(store, now, &mut dependent, event, Change::default())?;
                        unblocked.push(dependent.key);
                    }
                }
                UpstreamEffect::Blocked => {
                    let mut dependent = store.task(id)?;
                    if transition(dependent.state, TaskEvent::UpstreamFailed).is_some() {
                        let change = Change {
                            reason: Some(FailureReason::Upstream),
                            ..Change::default()
                        };
                        apply(
                            store,
                            now,
                            &mut dependent,
                            TaskEvent::UpstreamFailed,
                            change,
                        )?;
                        finished.push((dependent.id, dependent.state));
                    }
                }
            }
        }
    }
    finish_if_done(store, now, workflow)?;
    Ok(unblocked)
}

/// Applies the leaf rule once no task of `workflow` is open.
pub(crate) fn finish_if_done(
    store: &(impl TaskStorage + ?Sized),
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
) -> Result<()> {
    // The count is the store's, kept by every `apply` in this transaction; most calls end
    // here, and the leaves are only worth loading once nothing is open.
    workflow.open_tasks = store.open_tasks(workflow.id)?;
    if workflow.open_tasks > 0 || !workflow.is_started() {
        return Ok(());
    }
    let leaves = store.leaf_states(workflow.id)?;
    if let Some(status) = outcome(workflow.open_tasks, workflow.fail_fast_triggered, leaves) {
        set_status(store, now, workflow, status)?;
    }
    Ok(())
}

/// Sets a workflow's status, in the store and in memory, and logs it.
pub(crate) fn set_status(
    store: &(impl TaskStorage + ?Sized),
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
    status: WorkflowStatus,
) -> Result<()> {
    let finished_at = status.is_finished().then_some(now);
    store.save_status(workflow.id, status, finished_at)?;
    workflow.status = status;
    workflow.finished_at = finished_at;
    store.append(
        now,
        EventKind::WorkflowStatus,
        NewEvent {
            workflow: Some(workflow.id),
            detail: Some(status.as_str()),
            ..NewEvent::default()
        },
    )
}
