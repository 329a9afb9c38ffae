//! Saving the task state machine's steps: [`apply`] saves one step of a task and what follows
//! from it (the agent's record, the workflow's count of open tasks, the event), [`settle`]
//! carries a task's end to its dependents and to the workflow's outcome. The decisions are the
//! pure `workflow::step` and `workflow::propagation`; this module only loads and saves.
//!
//! Every use case that changes a task's state comes through here, whichever module it lives
//! in, so no two of them depend on each other for it.

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::workflow::{
    CANCELLED_BY_FAIL_FAST, Change, FailureReason, Propagation, TaskEvent, TaskState,
    UpstreamEffect, WorkflowStatus, outcome, step, transition,
};

use super::event::{EventKind, NewEvent, append};
use super::millis;
use super::refs::{TaskRow, WorkflowRow, ids};
use super::sql::{self, query};

/// Moves `task` by `event` when the state machine allows it and saves the step: the task's
/// row, the agent's record when an attempt ended, the workflow's count of open tasks, and the
/// event. `task` is updated to the new row values.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    task: &mut TaskRow,
    event: TaskEvent,
    change: Change<'_>,
) -> Result<()> {
    let stepped = step(task, event, change, now)?;
    let done_by = stepped
        .agent
        .as_deref()
        .filter(|_| stepped.to == TaskState::Succeeded);
    tx.prepare_cached(
        "UPDATE tasks SET state = ?2, reason = ?3, attempt = ?4, agent = ?5, token = ?6, \
         deadline = ?7, ready_at = ?8, started_at = ?9, finished_at = ?10, result = ?11, \
         error = ?12, actual = ?13, first_started_at = coalesce(first_started_at, ?9), \
         done_by = ?14 WHERE id = ?1",
    )?
    .execute(params![
        task.id,
        stepped.to.as_str(),
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
    if let (Some(ended), Some(agent)) = (stepped.attempt_ended, stepped.agent.as_deref()) {
        super::agent::record_attempt(tx, agent, ended.succeeded, ended.log_ratio)?;
    }
    if stepped.opened != 0 {
        tx.prepare_cached("UPDATE workflows SET open_tasks = open_tasks + ?2 WHERE id = ?1")?
            .execute(params![task.workflow, stepped.opened])?;
    }
    append(
        tx,
        now,
        EventKind::TaskState,
        NewEvent {
            workflow: Some(task.workflow),
            task: Some(task.id),
            agent: stepped.agent.as_deref(),
            from: Some(stepped.from),
            to: Some(stepped.to),
            attempt: Some(task.attempt),
            value: match stepped.to {
                TaskState::Succeeded => task.actual,
                _ => None,
            },
            detail: stepped.detail,
            sprint: None,
        },
    )?;
    Ok(())
}

/// Moves the dependents of tasks that just reached a terminal state, transitively, then ends
/// the workflow when nothing is left open. `workflow` is the tasks' workflow, loaded once by
/// the caller and kept current here. Returns the keys of tasks that became ready.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
    mut finished: Vec<(i64, TaskState)>,
) -> Result<Vec<String>> {
    let mut unblocked = Vec::new();
    while let Some((task, state)) = finished.pop() {
        let effect = match crate::workflow::propagation(workflow, state) {
            Propagation::Nothing => continue,
            Propagation::FailFast => {
                tx.prepare_cached("UPDATE workflows SET fail_fast_triggered = 1 WHERE id = ?1")?
                    .execute([workflow.id])?;
                let cancelled = ids(
                    tx,
                    query!(
                        "SELECT id FROM tasks WHERE workflow = ?1 AND state IN {}",
                        sql::states(&CANCELLED_BY_FAIL_FAST)
                    ),
                    workflow.id,
                )?;
                for id in cancelled {
                    let change = Change {
                        reason: Some(FailureReason::FailFast),
                        ..Change::default()
                    };
                    apply(
                        tx,
                        now,
                        &mut TaskRow::by_id(tx, id)?,
                        TaskEvent::Cancel,
                        change,
                    )?;
                }
                continue;
            }
            Propagation::Dependents(effect) => effect,
        };
        for id in ids(tx, "SELECT task FROM deps WHERE dep = ?1", task)? {
            match effect {
                UpstreamEffect::Satisfied => {
                    let (unmet, state): (u32, String) = tx
                        .prepare_cached(
                            "UPDATE tasks SET unmet = unmet - 1 WHERE id = ?1 \
                             RETURNING unmet, state",
                        )?
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    if unmet == 0 && state == TaskState::Pending.as_str() && workflow.is_started() {
                        let mut dependent = TaskRow::by_id(tx, id)?;
                        let event = TaskEvent::DependenciesMet;
                        apply(tx, now, &mut dependent, event, Change::default())?;
                        unblocked.push(dependent.key);
                    }
                }
                UpstreamEffect::Blocked => {
                    let mut dependent = TaskRow::by_id(tx, id)?;
                    if transition(dependent.state, TaskEvent::UpstreamFailed).is_some() {
                        let change = Change {
                            reason: Some(FailureReason::Upstream),
                            ..Change::default()
                        };
                        apply(tx, now, &mut dependent, TaskEvent::UpstreamFailed, change)?;
                        finished.push((dependent.id, dependent.state));
                    }
                }
            }
        }
    }
    finish_if_done(tx, now, workflow)?;
    Ok(unblocked)
}

/// Applies the leaf rule once no task of `workflow` is open.
pub(crate) fn finish_if_done(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
) -> Result<()> {
    // The count is the database's, kept by every `apply` in this transaction; most calls end
    // here, and the leaves are only worth loading once nothing is open.
    let open: i64 = tx
        .prepare_cached("SELECT open_tasks FROM workflows WHERE id = ?1")?
        .query_row([workflow.id], |r| r.get(0))?;
    workflow.open_tasks = open.max(0) as u64;
    if open > 0 || !workflow.is_started() {
        return Ok(());
    }
    let leaves: Vec<TaskState> = tx
        .prepare_cached("SELECT state FROM tasks WHERE workflow = ?1 AND is_leaf = 1")?
        .query_map([workflow.id], |r| r.get::<_, String>(0))?
        .filter_map(|state| state.ok().and_then(|s| s.parse().ok()))
        .collect();
    if let Some(status) = outcome(workflow.open_tasks, workflow.fail_fast_triggered, leaves) {
        set_status(tx, now, workflow, status)?;
    }
    Ok(())
}

/// Sets a workflow's status, in the row and in memory, and logs it.
pub(crate) fn set_status(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
    status: WorkflowStatus,
) -> Result<()> {
    let finished_at = status.is_finished().then_some(now);
    tx.prepare_cached("UPDATE workflows SET status = ?2, finished_at = ?3 WHERE id = ?1")?
        .execute(params![
            workflow.id,
            status.as_str(),
            finished_at.map(millis)
        ])?;
    workflow.status = status;
    workflow.finished_at = finished_at;
    append(
        tx,
        now,
        EventKind::WorkflowStatus,
        NewEvent {
            workflow: Some(workflow.id),
            detail: Some(status.as_str()),
            ..NewEvent::default()
        },
    )?;
    Ok(())
}
