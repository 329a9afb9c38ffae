//! Workflow use cases: create (idempotently), start, pause, resume, cancel, retry the failed,
//! edit dependencies on a live workflow, and report status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::id::{TaskId, WorkflowId};
use crate::text::counted_are;
use crate::workflow::FailurePolicy;
use crate::workflow::{
    Analysis, CriticalPath, Dag, FailureReason, Mode, TaskEvent, TaskState, UpstreamEffect,
    ValidatedWorkflow, WorkflowAction, WorkflowSpec, WorkflowStatus, upstream_effect,
};

use super::event::{EventKind, NewEvent, append};
use super::refs::{TaskRef, TaskRow, WORKFLOW_COLUMNS, WorkflowRef, WorkflowRow};
use super::task::{Change, TaskView, apply, ids, settle, view_with, workflow_tasks};
use super::{Store, millis};
use crate::agent::AgentStatus;

/// Options of [`Store::create_workflow`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Start the workflow right away.
    pub start: bool,
    /// A caller's key for this request: a retried create with the same key and spec returns the
    /// first result instead of failing on the taken name.
    pub idempotency_key: Option<String>,
}

/// The result of [`Store::create_workflow`].
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The workflow's id.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// Its status now.
    pub status: WorkflowStatus,
    /// True when this call repeated an earlier one with the same idempotency key.
    pub replayed: bool,
    /// Stages, critical path and warnings.
    pub analysis: Analysis,
    /// Keys of the tasks ready now.
    pub ready: Vec<String>,
}

/// The result of [`Store::execute`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteOutcome {
    /// The workflow's name.
    pub workflow: String,
    /// The workflow's status after the action.
    pub status: WorkflowStatus,
    /// Keys of its ready tasks.
    pub ready: Vec<String>,
    /// How many tasks the action moved.
    pub tasks_changed: usize,
}

/// A change to a live workflow's dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyEdit {
    /// `task` now waits for `depends_on`.
    Add,
    /// `task` no longer waits for `depends_on`.
    Remove,
}

/// One line of a workflow list.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSummary {
    /// Id.
    pub id: WorkflowId,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Status.
    pub status: WorkflowStatus,
    /// How dependencies were given.
    pub mode: Mode,
    /// What a failure does.
    pub on_failure: FailurePolicy,
    /// Tasks by state (only states that occur).
    pub counts: BTreeMap<TaskState, u64>,
    /// Tasks in all.
    pub total_tasks: u64,
    /// Points of all tasks.
    pub total_points: f64,
    /// Points of succeeded tasks.
    pub done_points: f64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A short view of a task in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskBrief {
    /// Key.
    pub key: String,
    /// Title.
    pub title: String,
    /// State.
    pub state: TaskState,
    /// Points.
    pub estimate: f64,
    /// Priority.
    pub priority: i64,
    /// Why it is not moving, for blocked and failed tasks.
    pub reason: Option<String>,
}

/// A task held by an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedTask {
    /// Key.
    pub key: String,
    /// State: assigned or running.
    pub state: TaskState,
    /// The agent holding it.
    pub agent: String,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// True when the lease has run out and the next claim or tick will take the task back.
    pub lease_expired: bool,
    /// The attempt number.
    pub attempt: u32,
    /// The agent's last note.
    pub note: Option<String>,
}

/// Whether a workflow can move.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Created, not started.
    NotStarted,
    /// Tasks are ready, leased or waiting to retry.
    Moving,
    /// Paused by an operator.
    Paused,
    /// Unfinished, but nothing can move without a change: the reason says what.
    Stalled(String),
    /// Finished.
    Finished,
}

/// Everything about one workflow's state.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowReport {
    /// The headline.
    pub summary: WorkflowSummary,
    /// Whether it can move, and if not why.
    pub progress: Progress,
    /// Ready tasks in claim order.
    pub ready: Vec<TaskBrief>,
    /// Tasks held by agents.
    pub leased: Vec<LeasedTask>,
    /// Pending, waiting-to-retry, failed and upstream-failed tasks with the reason.
    pub blocked: Vec<TaskBrief>,
    /// The longest chain of unfinished work.
    pub remaining_critical_path: CriticalPath,
    /// When the remaining critical path should be done at the pace seen so far, once a task
    /// has finished to measure it.
    pub forecast_finish: Option<DateTime<Utc>>,
    /// Every task, in creation order.
    pub tasks: Vec<TaskView>,
    /// Dependency edges as (dependency key, dependent key).
    pub edges: Vec<(String, String)>,
    /// Each task's stage (0 for tasks without dependencies), in the order of `tasks`.
    pub stages: Vec<u32>,
}

impl Store {
    /// Validates `spec` and saves it as a new workflow, all in one transaction. With an
    /// idempotency key that was used before for the same spec, returns the first result.
    pub fn create_workflow(&self, spec: WorkflowSpec, options: &CreateOptions) -> Result<Created> {
        if let Some(key) = &options.idempotency_key {
            super::task::check_length("idempotency_key", key, 200)?;
        }
        let fingerprint = options
            .idempotency_key
            .as_ref()
            .map_or(0, |_| fingerprint(&spec));
        let validated = spec.validate()?;
        self.write(|tx, now| {
            if let Some(key) = &options.idempotency_key
                && let Some((id, stored)) = tx
                    .prepare_cached(
                        "SELECT id, fingerprint FROM workflows WHERE idempotency_key = ?1",
                    )?
                    .query_row([key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?
            {
                if stored != fingerprint {
                    return Err(Error::IdempotencyConflict(key.clone()));
                }
                return replay(tx, id);
            }
            let name = &validated.spec().name;
            let taken: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM workflows WHERE name = ?1)")?
                .query_row([name], |r| r.get(0))?;
            if taken {
                return Err(Error::WorkflowExists(name.clone()));
            }
            let row = insert(
                tx,
                now,
                &validated,
                options.idempotency_key.as_deref(),
                fingerprint,
            )?;
            let ready = if options.start {
                start(tx, now, &row)?
            } else {
                Vec::new()
            };
            let status = WorkflowRow::by_id(tx, row.id)?.status;
            Ok(Created {
                id: row.uuid,
                name: row.name,
                status,
                replayed: false,
                analysis: validated.analysis().clone(),
                ready,
            })
        })
    }

    /// Starts, pauses, resumes, cancels or retries the failed tasks of a workflow.
    pub fn execute(
        &self,
        workflow: &WorkflowRef,
        action: WorkflowAction,
    ) -> Result<ExecuteOutcome> {
        self.write(|tx, now| {
            let row = WorkflowRow::resolve(tx, workflow)?;
            let illegal = || Error::IllegalWorkflowAction {
                workflow: row.name.clone(),
                status: row.status,
                action,
            };
            let to = action.apply(row.status).ok_or_else(illegal)?;
            let tasks_changed = match action {
                WorkflowAction::Start => start(tx, now, &row)?.len(),
                WorkflowAction::Pause | WorkflowAction::Resume => {
                    set_status(tx, now, &row, to)?;
                    0
                }
                WorkflowAction::Cancel => cancel(tx, now, &row)?,
                WorkflowAction::RetryFailed => {
                    let reset = retry_failed(tx, now, &row)?;
                    if reset == 0 {
                        return Err(Error::InvalidArgument {
                            field: "action".into(),
                            reason: format!(
                                "workflow `{}` has no failed, upstream-failed or fail-fast-cancelled tasks to retry",
                                row.name
                            ),
                        });
                    }
                    reset
                }
            };
            let status = WorkflowRow::by_id(tx, row.id)?.status;
            Ok(ExecuteOutcome {
                workflow: row.name.clone(),
                status,
                ready: ready_keys(tx, row.id)?,
                tasks_changed,
            })
        })
    }

    /// Adds or removes the dependency of `task` on `depends_on`, a task of the same workflow.
    /// Only pending and ready tasks can change; an addition that would close a cycle is
    /// rejected with the cycle named. Returns the task afterwards.
    pub fn edit_dependency(
        &self,
        task: &TaskRef,
        depends_on: &TaskRef,
        edit: DependencyEdit,
    ) -> Result<TaskView> {
        self.write(|tx, now| {
            let mut row = TaskRow::resolve(tx, task)?;
            let dependency = resolve_in_workflow(tx, &row, depends_on)?;
            if !matches!(row.state, TaskState::Pending | TaskState::Ready) {
                return Err(Error::DependencyLocked {
                    task: row.display(),
                    state: row.state,
                });
            }
            let workflow = WorkflowRow::by_id(tx, row.workflow)?;
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM deps WHERE task = ?1 AND dep = ?2)")?
                .query_row([row.id, dependency.id], |r| r.get(0))?;
            let invalid = |reason: String| Error::InvalidArgument {
                field: "depends_on".into(),
                reason,
            };
            match edit {
                DependencyEdit::Add => {
                    if dependency.id == row.id {
                        return Err(invalid(format!(
                            "task `{}` cannot depend on itself",
                            row.display()
                        )));
                    }
                    if exists {
                        return Err(invalid(format!(
                            "task `{}` already depends on `{}`",
                            row.display(),
                            dependency.display()
                        )));
                    }
                    let graph = Graph::load(tx, row.workflow)?;
                    if let Some(mut path) = graph
                        .dag
                        .path(graph.index[&row.id], graph.index[&dependency.id])
                    {
                        // `path` runs in execution order from the task to its would-be
                        // dependency; the cycle reads in "depends on" order from the task.
                        path[1..].reverse();
                        let keys = crate::workflow::spec_cycle_keys(&path, |v| {
                            graph.tasks[v as usize].key.clone()
                        });
                        return Err(Error::Cycle(keys));
                    }
                    tx.prepare_cached("INSERT INTO deps (task, dep) VALUES (?1, ?2)")?
                        .execute([row.id, dependency.id])?;
                    tx.prepare_cached("UPDATE tasks SET is_leaf = 0 WHERE id = ?1")?
                        .execute([dependency.id])?;
                    match upstream_effect(workflow.on_failure, dependency.state) {
                        Some(UpstreamEffect::Satisfied) => {}
                        Some(UpstreamEffect::Blocked) => {
                            apply(
                                tx,
                                now,
                                &mut row,
                                TaskEvent::UpstreamFailed,
                                Change {
                                    reason: Some(FailureReason::Upstream),
                                    ..Change::default()
                                },
                            )?;
                            settle(tx, now, row.workflow, vec![(row.id, row.state)])?;
                        }
                        None => {
                            tx.prepare_cached("UPDATE tasks SET unmet = unmet + 1 WHERE id = ?1")?
                                .execute([row.id])?;
                            if row.state == TaskState::Ready {
                                apply(
                                    tx,
                                    now,
                                    &mut row,
                                    TaskEvent::DependencyAdded,
                                    Change::default(),
                                )?;
                            }
                        }
                    }
                }
                DependencyEdit::Remove => {
                    if !exists {
                        return Err(invalid(format!(
                            "task `{}` does not depend on `{}`",
                            row.display(),
                            dependency.display()
                        )));
                    }
                    tx.prepare_cached("DELETE FROM deps WHERE task = ?1 AND dep = ?2")?
                        .execute([row.id, dependency.id])?;
                    tx.prepare_cached(
                        "UPDATE tasks SET is_leaf = NOT EXISTS (SELECT 1 FROM deps WHERE dep = ?1) \
                         WHERE id = ?1",
                    )?
                    .execute([dependency.id])?;
                    if upstream_effect(workflow.on_failure, dependency.state).is_none() {
                        let unmet: u32 = tx
                            .prepare_cached(
                                "UPDATE tasks SET unmet = unmet - 1 WHERE id = ?1 RETURNING unmet",
                            )?
                            .query_row([row.id], |r| r.get(0))?;
                        let started = matches!(
                            workflow.status,
                            WorkflowStatus::Running | WorkflowStatus::Paused
                        );
                        if unmet == 0 && row.state == TaskState::Pending && started {
                            apply(
                                tx,
                                now,
                                &mut row,
                                TaskEvent::DependenciesMet,
                                Change::default(),
                            )?;
                        }
                    }
                }
            }
            let kind = match edit {
                DependencyEdit::Add => EventKind::DependencyAdded,
                DependencyEdit::Remove => EventKind::DependencyRemoved,
            };
            append(
                tx,
                now,
                kind,
                NewEvent {
                    workflow: Some(row.workflow),
                    task: Some(row.id),
                    detail: Some(&dependency.key),
                    ..NewEvent::default()
                },
            )?;
            Graph::load(tx, row.workflow)?.save_ranks(tx)?;
            super::task::view(tx, &TaskRow::by_id(tx, row.id)?)
        })
    }

    /// The current graph's analysis: stages, critical path by estimates, warnings.
    pub fn analyse_workflow(&self, workflow: &WorkflowRef) -> Result<Analysis> {
        self.read(|tx, _| {
            let row = WorkflowRow::resolve(tx, workflow)?;
            Ok(Graph::load(tx, row.id)?.analysis())
        })
    }

    /// Everything about one workflow.
    pub fn workflow_report(&self, workflow: &WorkflowRef) -> Result<WorkflowReport> {
        self.read(|tx, now| {
            let row = WorkflowRow::resolve(tx, workflow)?;
            report(tx, now, &row)
        })
    }

    /// The headline of one workflow.
    pub fn workflow_summary(&self, workflow: &WorkflowRef) -> Result<WorkflowSummary> {
        self.read(|tx, _| {
            let row = WorkflowRow::resolve(tx, workflow)?;
            summary(tx, &row)
        })
    }

    /// Every workflow, newest first.
    pub fn workflows(&self) -> Result<Vec<WorkflowSummary>> {
        self.read(|tx, _| {
            let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows ORDER BY id DESC");
            let rows: Vec<WorkflowRow> = tx
                .prepare_cached(&sql)?
                .query_map([], WorkflowRow::from_row)?
                .collect::<rusqlite::Result<_>>()?;
            rows.iter().map(|row| summary(tx, row)).collect()
        })
    }
}

/// The spec's fingerprint for idempotency: FNV-1a over its debug form, which lists every field
/// in a fixed order.
fn fingerprint(spec: &WorkflowSpec) -> i64 {
    let text = format!("{spec:?}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

fn replay(tx: &Transaction<'_>, id: i64) -> Result<Created> {
    let row = WorkflowRow::by_id(tx, id)?;
    Ok(Created {
        id: row.uuid,
        name: row.name.clone(),
        status: row.status,
        replayed: true,
        analysis: Graph::load(tx, id)?.analysis(),
        ready: ready_keys(tx, id)?,
    })
}

fn insert(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    validated: &ValidatedWorkflow,
    idempotency_key: Option<&str>,
    fingerprint: i64,
) -> Result<WorkflowRow> {
    let spec = validated.spec();
    let dag = validated.dag();
    let uuid = WorkflowId::new();
    tx.prepare_cached(
        "INSERT INTO workflows (uuid, name, description, mode, on_failure, retry_initial_ms, \
         retry_coefficient, retry_max_ms, status, open_tasks, created_at, idempotency_key, \
         fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'created', ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        uuid.as_bytes(),
        spec.name,
        spec.description,
        spec.mode.as_str(),
        spec.on_failure.as_str(),
        spec.retry.initial_interval.num_milliseconds(),
        spec.retry.backoff_coefficient,
        spec.retry.max_interval.num_milliseconds(),
        spec.tasks.len() as i64,
        millis(now),
        idempotency_key,
        fingerprint,
    ])?;
    let workflow = tx.last_insert_rowid();
    let b_levels = &validated.analysis().b_levels;
    let mut ids = Vec::with_capacity(spec.tasks.len());
    {
        let mut insert_task = tx.prepare_cached(
            "INSERT INTO tasks (uuid, workflow, key, title, description, estimate, priority, \
             max_attempts, b_level, has_skills, is_leaf, unmet, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending')",
        )?;
        let mut insert_skill =
            tx.prepare_cached("INSERT INTO task_skills (task, skill, level) VALUES (?1, ?2, ?3)")?;
        let uuids = TaskId::batch(spec.tasks.len());
        for ((position, task), uuid) in spec.tasks.iter().enumerate().zip(uuids) {
            let node = position as u32;
            insert_task.execute(params![
                uuid.as_bytes(),
                workflow,
                task.key,
                task.title,
                task.description,
                task.estimate_or_default(),
                task.priority_or_default(),
                task.max_attempts_or_default(),
                b_levels[position],
                !task.skills.is_empty(),
                dag.successors(node).is_empty(),
                dag.predecessors(node).len() as i64,
            ])?;
            let id = tx.last_insert_rowid();
            for (skill, level) in &task.skills {
                insert_skill.execute(params![id, skill, level])?;
            }
            ids.push(id);
        }
        let mut insert_dep = tx.prepare_cached("INSERT INTO deps (task, dep) VALUES (?1, ?2)")?;
        for (position, id) in ids.iter().enumerate() {
            for &dep in dag.predecessors(position as u32) {
                insert_dep.execute([id, &ids[dep as usize]])?;
            }
        }
    }
    let points: f64 = spec.tasks.iter().map(|t| t.estimate_or_default()).sum();
    let detail = format!("{} tasks", spec.tasks.len());
    append(
        tx,
        now,
        EventKind::WorkflowCreated,
        NewEvent {
            workflow: Some(workflow),
            value: Some(points),
            detail: Some(&detail),
            ..NewEvent::default()
        },
    )?;
    WorkflowRow::by_id(tx, workflow)
}

/// Starts a created workflow: tasks without unmet dependencies become ready.
fn start(tx: &Transaction<'_>, now: DateTime<Utc>, row: &WorkflowRow) -> Result<Vec<String>> {
    tx.prepare_cached("UPDATE workflows SET started_at = ?2 WHERE id = ?1")?
        .execute(params![row.id, millis(now)])?;
    set_status(tx, now, row, WorkflowStatus::Running)?;
    let mut ready = Vec::new();
    for id in ids(
        tx,
        "SELECT id FROM tasks WHERE workflow = ?1 AND state = 'pending' AND unmet = 0",
        row.id,
    )? {
        let mut task = TaskRow::by_id(tx, id)?;
        apply(
            tx,
            now,
            &mut task,
            TaskEvent::DependenciesMet,
            Change::default(),
        )?;
        ready.push(task.key);
    }
    Ok(ready)
}

fn cancel(tx: &Transaction<'_>, now: DateTime<Utc>, row: &WorkflowRow) -> Result<usize> {
    let live = ids(
        tx,
        "SELECT id FROM tasks WHERE workflow = ?1 AND state IN \
         ('pending', 'ready', 'assigned', 'running', 'waiting_retry')",
        row.id,
    )?;
    for &id in &live {
        let mut task = TaskRow::by_id(tx, id)?;
        apply(
            tx,
            now,
            &mut task,
            TaskEvent::Cancel,
            Change {
                reason: Some(FailureReason::Cancelled),
                ..Change::default()
            },
        )?;
    }
    set_status(tx, now, row, WorkflowStatus::Cancelled)?;
    Ok(live.len())
}

/// Puts failed, upstream-failed and fail-fast-cancelled tasks back to pending with fresh
/// attempts, recounts what each waits for, and makes the free ones ready.
fn retry_failed(tx: &Transaction<'_>, now: DateTime<Utc>, row: &WorkflowRow) -> Result<usize> {
    let reset = ids(
        tx,
        "SELECT id FROM tasks WHERE workflow = ?1 AND (state IN ('failed', 'upstream_failed') \
         OR (state = 'cancelled' AND reason = 'fail_fast')) ORDER BY id",
        row.id,
    )?;
    if reset.is_empty() {
        return Ok(0);
    }
    tx.prepare_cached(
        "UPDATE workflows SET fail_fast_triggered = 0, finished_at = NULL WHERE id = ?1",
    )?
    .execute([row.id])?;
    let mut tasks = Vec::with_capacity(reset.len());
    for &id in &reset {
        let mut task = TaskRow::by_id(tx, id)?;
        apply(tx, now, &mut task, TaskEvent::Reset, Change::default())?;
        tasks.push(task);
    }
    if row.status != WorkflowStatus::Running {
        set_status(tx, now, row, WorkflowStatus::Running)?;
    }
    for task in &mut tasks {
        let states: Vec<String> = tx
            .prepare_cached(
                "SELECT state FROM tasks WHERE id IN (SELECT dep FROM deps WHERE task = ?1)",
            )?
            .query_map([task.id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let unmet = states
            .iter()
            .filter_map(|s| s.parse::<TaskState>().ok())
            .filter(|&s| upstream_effect(row.on_failure, s) != Some(UpstreamEffect::Satisfied))
            .count();
        tx.prepare_cached("UPDATE tasks SET unmet = ?2 WHERE id = ?1")?
            .execute(params![task.id, unmet as i64])?;
        if unmet == 0 {
            apply(tx, now, task, TaskEvent::DependenciesMet, Change::default())?;
        }
    }
    Ok(reset.len())
}

/// Sets a workflow's status and logs it.
pub(crate) fn set_status(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    row: &WorkflowRow,
    status: WorkflowStatus,
) -> Result<()> {
    let finished_at = status.is_finished().then(|| millis(now));
    tx.prepare_cached("UPDATE workflows SET status = ?2, finished_at = ?3 WHERE id = ?1")?
        .execute(params![row.id, status.as_str(), finished_at])?;
    append(
        tx,
        now,
        EventKind::WorkflowStatus,
        NewEvent {
            workflow: Some(row.id),
            detail: Some(status.as_str()),
            ..NewEvent::default()
        },
    )?;
    Ok(())
}

fn resolve_in_workflow(
    tx: &Transaction<'_>,
    task: &TaskRow,
    reference: &TaskRef,
) -> Result<TaskRow> {
    let dependency = TaskRow::resolve(tx, reference)?;
    if dependency.workflow != task.workflow {
        return Err(Error::InvalidArgument {
            field: "depends_on".into(),
            reason: format!(
                "`{}` belongs to another workflow; dependencies stay within one workflow",
                dependency.display()
            ),
        });
    }
    Ok(dependency)
}

fn ready_keys(conn: &Connection, workflow: i64) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT key FROM tasks WHERE workflow = ?1 AND state = 'ready' \
             ORDER BY priority DESC, b_level DESC, ready_at, id",
        )?
        .query_map([workflow], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

fn summary(conn: &Connection, row: &WorkflowRow) -> Result<WorkflowSummary> {
    let mut counts = BTreeMap::new();
    let (mut total_tasks, mut total_points, mut done_points) = (0, 0.0, 0.0);
    let mut stmt = conn.prepare_cached(
        "SELECT state, count(*), total(estimate) FROM tasks WHERE workflow = ?1 GROUP BY state",
    )?;
    let mut rows = stmt.query([row.id])?;
    while let Some(r) = rows.next()? {
        let state: TaskState = super::refs::parse_column(r, 0, |s| s.parse().ok())?;
        let (count, points): (u64, f64) = (r.get::<_, i64>(1)? as u64, r.get(2)?);
        counts.insert(state, count);
        total_tasks += count;
        total_points += points;
        if state == TaskState::Succeeded {
            done_points += points;
        }
    }
    Ok(WorkflowSummary {
        id: row.uuid,
        name: row.name.clone(),
        description: row.description.clone(),
        status: row.status,
        mode: row.mode,
        on_failure: row.on_failure,
        counts,
        total_tasks,
        total_points,
        done_points,
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    })
}

fn report(tx: &Transaction<'_>, now: DateTime<Utc>, row: &WorkflowRow) -> Result<WorkflowReport> {
    let graph = Graph::load(tx, row.id)?;
    let tasks = &graph.tasks;
    let mut skills: HashMap<i64, BTreeMap<String, u8>> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT s.task, s.skill, s.level FROM task_skills s JOIN tasks t ON t.id = s.task \
             WHERE t.workflow = ?1",
        )?;
        let mut rows = stmt.query([row.id])?;
        while let Some(r) = rows.next()? {
            skills
                .entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, r.get(2)?);
        }
    }
    let key = |v: u32| tasks[v as usize].key.clone();
    let depends_on = |v: u32| {
        graph
            .dag
            .predecessors(v)
            .iter()
            .map(|&p| key(p))
            .collect::<Vec<_>>()
    };

    let mut ready: Vec<(usize, TaskBrief)> = Vec::new();
    let mut leased = Vec::new();
    let mut blocked = Vec::new();
    for (v, task) in tasks.iter().enumerate() {
        let brief = |reason: Option<String>| TaskBrief {
            key: task.key.clone(),
            title: task.title.clone(),
            state: task.state,
            estimate: task.estimate,
            priority: task.priority,
            reason,
        };
        match task.state {
            TaskState::Ready => ready.push((v, brief(None))),
            TaskState::Assigned | TaskState::Running => leased.push(LeasedTask {
                key: task.key.clone(),
                state: task.state,
                agent: task.agent.clone().unwrap_or_default(),
                lease_expires_at: task.deadline,
                lease_expired: task.deadline.is_some_and(|d| d <= now),
                attempt: task.attempt,
                note: task.note.clone(),
            }),
            TaskState::Pending => {
                let waiting: Vec<String> = graph
                    .dag
                    .predecessors(v as u32)
                    .iter()
                    .filter(|&&p| !tasks[p as usize].state.is_terminal())
                    .map(|&p| format!("{}/{}", row.name, key(p)))
                    .collect();
                let reason = if waiting.is_empty() {
                    "waiting for the workflow to start".to_owned()
                } else {
                    format!("waiting on {}", listed(&waiting, 5))
                };
                blocked.push(brief(Some(reason)));
            }
            TaskState::WaitingRetry => {
                let at = task.deadline.map(crate::text::rfc3339).unwrap_or_default();
                let error = task.error.clone().unwrap_or_default();
                blocked.push(brief(Some(format!(
                    "attempt {} of {} failed ({error}); retry at {at}",
                    task.attempt, task.max_attempts
                ))));
            }
            TaskState::Failed => {
                let reason = task.reason.map_or("error", FailureReason::as_str);
                let error = task.error.clone().unwrap_or_default();
                blocked.push(brief(Some(format!("failed ({reason}): {error}"))));
            }
            TaskState::UpstreamFailed => {
                let failed: Vec<String> = graph
                    .dag
                    .predecessors(v as u32)
                    .iter()
                    .filter(|&&p| tasks[p as usize].state.is_failure())
                    .map(|&p| format!("{}/{}", row.name, key(p)))
                    .collect();
                blocked.push(brief(Some(format!(
                    "dependency failed: {}",
                    listed(&failed, 5)
                ))));
            }
            TaskState::Succeeded | TaskState::Skipped | TaskState::Cancelled => {}
        }
    }
    ready.sort_by(|(a, _), (b, _)| {
        let (a, b) = (&tasks[*a], &tasks[*b]);
        b.priority
            .cmp(&a.priority)
            .then(b.b_level.total_cmp(&a.b_level))
            .then(a.ready_at.cmp(&b.ready_at))
            .then(a.id.cmp(&b.id))
    });
    let ready: Vec<TaskBrief> = ready.into_iter().map(|(_, brief)| brief).collect();

    // The remaining critical path weighs finished tasks as zero.
    let durations: Vec<f64> = tasks
        .iter()
        .map(|t| {
            if t.state.is_terminal() {
                0.0
            } else {
                t.estimate
            }
        })
        .collect();
    let schedule = graph.dag.schedule(&durations);
    let remaining_critical_path = CriticalPath {
        keys: schedule
            .critical_path
            .iter()
            .filter(|&&v| !tasks[v as usize].state.is_terminal())
            .map(|&v| key(v))
            .collect(),
        length: schedule.makespan,
    };
    let forecast_finish = forecast(tasks, now, schedule.makespan);

    let summary = summary(tx, row)?;
    let progress = progress(tx, row, &summary, &ready, tasks, &skills)?;
    let views = tasks
        .iter()
        .enumerate()
        .map(|(v, t)| {
            view_with(
                t,
                skills.get(&t.id).cloned().unwrap_or_default(),
                depends_on(v as u32),
            )
        })
        .collect();
    let edges = tasks
        .iter()
        .enumerate()
        .flat_map(|(v, t)| {
            graph
                .dag
                .predecessors(v as u32)
                .iter()
                .map(|&p| (key(p), t.key.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(WorkflowReport {
        summary,
        progress,
        ready,
        leased,
        blocked,
        remaining_critical_path,
        forecast_finish,
        tasks: views,
        edges,
        stages: graph.dag.levels().to_vec(),
    })
}

/// Projects the remaining critical path at the pace of the tasks finished so far: wall time
/// per point of estimate, from start to success.
fn forecast(tasks: &[TaskRow], now: DateTime<Utc>, remaining: f64) -> Option<DateTime<Utc>> {
    let (mut millis_spent, mut points) = (0i64, 0.0);
    for task in tasks.iter().filter(|t| t.state == TaskState::Succeeded) {
        if let (Some(start), Some(end)) = (task.started_at, task.finished_at) {
            millis_spent += (end - start).num_milliseconds().max(0);
            points += task.estimate;
        }
    }
    if points <= 0.0 {
        return None;
    }
    if remaining <= 0.0 {
        return Some(now);
    }
    let per_point = millis_spent as f64 / points;
    Some(now + chrono::Duration::milliseconds((per_point * remaining).round() as i64))
}

fn progress(
    conn: &Connection,
    row: &WorkflowRow,
    summary: &WorkflowSummary,
    ready: &[TaskBrief],
    tasks: &[TaskRow],
    skills: &HashMap<i64, BTreeMap<String, u8>>,
) -> Result<Progress> {
    match row.status {
        WorkflowStatus::Created => return Ok(Progress::NotStarted),
        WorkflowStatus::Paused => return Ok(Progress::Paused),
        WorkflowStatus::Succeeded | WorkflowStatus::Failed | WorkflowStatus::Cancelled => {
            return Ok(Progress::Finished);
        }
        WorkflowStatus::Running => {}
    }
    let count = |state| summary.counts.get(&state).copied().unwrap_or(0);
    let moving =
        count(TaskState::Assigned) + count(TaskState::Running) + count(TaskState::WaitingRetry);
    if moving > 0 {
        return Ok(Progress::Moving);
    }
    if ready.is_empty() {
        return Ok(Progress::Stalled(format!(
            "{} task(s) are unfinished but none is ready, leased or waiting to retry",
            row.open_tasks
        )));
    }
    // Ready work only moves if some registered, active agent can take it.
    let Some(agents) = active_capabilities(conn)? else {
        return Ok(Progress::Stalled(format!(
            "{} ready, but no agent is registered to claim them",
            counted_are(ready.len() as u64, "task")
        )));
    };
    if agents.is_empty() {
        return Ok(Progress::Stalled(format!(
            "{} ready, but no registered agent is active",
            counted_are(ready.len() as u64, "task")
        )));
    }
    let mut needs = Vec::new();
    for brief in ready {
        let Some(task) = tasks.iter().find(|t| t.key == brief.key) else {
            continue;
        };
        let required = skills.get(&task.id).cloned().unwrap_or_default();
        let qualified = agents.iter().any(|caps| {
            required
                .iter()
                .all(|(skill, level)| caps.get(skill).is_some_and(|l| l >= level))
        });
        if qualified {
            return Ok(Progress::Moving);
        }
        let list: Vec<String> = required.iter().map(|(s, l)| format!("{s}>={l}")).collect();
        needs.push(format!(
            "`{}/{}` needs {}",
            row.name,
            task.key,
            list.join(", ")
        ));
    }
    Ok(Progress::Stalled(format!(
        "no active agent has the skills for any ready task: {}",
        listed(&needs, 3)
    )))
}

/// The capabilities of each active agent, or `None` when no agent is registered at all.
fn active_capabilities(conn: &Connection) -> Result<Option<Vec<BTreeMap<String, u8>>>> {
    let registered: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM agents)")?
        .query_row([], |r| r.get(0))?;
    if !registered {
        return Ok(None);
    }
    let mut by_agent: BTreeMap<i64, BTreeMap<String, u8>> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, s.skill, s.level FROM agents a LEFT JOIN agent_skills s ON s.agent = a.id \
         WHERE a.status = ?1",
    )?;
    let mut rows = stmt.query([AgentStatus::Active.as_str()])?;
    while let Some(r) = rows.next()? {
        let entry = by_agent.entry(r.get(0)?).or_default();
        if let (Some(skill), Some(level)) =
            (r.get::<_, Option<String>>(1)?, r.get::<_, Option<u8>>(2)?)
        {
            entry.insert(skill, level);
        }
    }
    Ok(Some(by_agent.into_values().collect()))
}

/// A workflow's tasks and dependency graph as stored.
struct Graph {
    tasks: Vec<TaskRow>,
    index: HashMap<i64, u32>,
    dag: Dag,
}

/// Recomputes the b-level ranks of `workflow`'s tasks, after an estimate changed.
pub(crate) fn rerank(tx: &Transaction<'_>, workflow: i64) -> Result<()> {
    Graph::load(tx, workflow)?.save_ranks(tx)
}

impl Graph {
    fn load(conn: &Connection, workflow: i64) -> Result<Graph> {
        let tasks = workflow_tasks(conn, workflow)?;
        let index: HashMap<i64, u32> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i as u32))
            .collect();
        let mut edges = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT d.dep, d.task FROM deps d JOIN tasks t ON t.id = d.task WHERE t.workflow = ?1",
        )?;
        let mut rows = stmt.query([workflow])?;
        while let Some(r) = rows.next()? {
            let (dep, task): (i64, i64) = (r.get(0)?, r.get(1)?);
            edges.push((index[&dep], index[&task]));
        }
        // The store only ever saves acyclic graphs; a cycle here means the file was edited by
        // hand, which is reported like any other cycle.
        let dag = Dag::new(tasks.len(), &edges).map_err(|cycle| {
            Error::Cycle(crate::workflow::spec_cycle_keys(&cycle.0, |v| {
                tasks[v as usize].key.clone()
            }))
        })?;
        Ok(Graph { tasks, index, dag })
    }

    fn analysis(&self) -> Analysis {
        let durations: Vec<f64> = self.tasks.iter().map(|t| t.estimate).collect();
        let schedule = self.dag.schedule(&durations);
        crate::workflow::spec_analyse(
            &self.dag,
            &schedule,
            |v| self.tasks[v as usize].key.clone(),
            Vec::new(),
        )
    }

    /// Recomputes the b-level ranks after a dependency edit.
    fn save_ranks(&self, tx: &Transaction<'_>) -> Result<()> {
        let durations: Vec<f64> = self.tasks.iter().map(|t| t.estimate).collect();
        let schedule = self.dag.schedule(&durations);
        let mut update = tx.prepare_cached("UPDATE tasks SET b_level = ?2 WHERE id = ?1")?;
        for (task, &b_level) in self.tasks.iter().zip(&schedule.b_level) {
            if (task.b_level - b_level).abs() > 1e-9 {
                update.execute(params![task.id, b_level])?;
            }
        }
        Ok(())
    }
}

impl WorkflowReport {
    /// The DAG as a Mermaid flowchart, each task coloured by its state, in at most `max_nodes`
    /// nodes: a larger workflow is drawn as groups of tasks by stage and state (bands of
    /// consecutive stages when there are many), each labelled with its count, so the diagram
    /// stays readable and its size bounded however large the workflow.
    pub fn to_mermaid(&self, max_nodes: usize) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut used: BTreeSet<TaskState> = BTreeSet::new();
        if self.tasks.len() <= max_nodes {
            let id_of: HashMap<&str, usize> = self
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.key.as_str(), i))
                .collect();
            for (i, task) in self.tasks.iter().enumerate() {
                let title = mermaid_text(&task.title);
                out.push_str(&format!(
                    "  t{i}[\"{}: {title}\"]:::{}\n",
                    task.key, task.state
                ));
                used.insert(task.state);
            }
            for (from, to) in &self.edges {
                if let (Some(a), Some(b)) = (id_of.get(from.as_str()), id_of.get(to.as_str())) {
                    out.push_str(&format!("  t{a} --> t{b}\n"));
                }
            }
        } else {
            self.grouped_mermaid(max_nodes.max(10), &mut out, &mut used);
        }
        for state in used {
            out.push_str(&format!("  classDef {state} {}\n", state_style(state)));
        }
        out
    }

    /// The body of a diagram that draws groups of tasks, by band of stages and state.
    fn grouped_mermaid(&self, max_nodes: usize, out: &mut String, used: &mut BTreeSet<TaskState>) {
        let stage_count = self.stages.iter().copied().max().map_or(1, |s| s + 1);
        // The narrowest bands (a power of two of stages) that keep the groups within budget;
        // one band of every stage has at most one group per state, ten in all.
        let mut width = 1u32;
        let groups = loop {
            let mut groups: BTreeMap<(u32, TaskState), usize> = BTreeMap::new();
            for (task, &stage) in self.tasks.iter().zip(&self.stages) {
                *groups.entry((stage / width, task.state)).or_default() += 1;
            }
            if groups.len() <= max_nodes || width >= stage_count {
                break groups;
            }
            width *= 2;
        };
        out.push_str(&format!(
            "  %% {} tasks drawn as {} groups by stage and state\n",
            self.tasks.len(),
            groups.len()
        ));
        let index: HashMap<(u32, TaskState), usize> =
            groups.keys().enumerate().map(|(i, k)| (*k, i)).collect();
        for (&(band, state), &count) in &groups {
            let first = band * width + 1;
            let last = ((band + 1) * width).min(stage_count);
            let stages = if first == last {
                format!("stage {first}")
            } else {
                format!("stages {first}-{last}")
            };
            out.push_str(&format!(
                "  g{}[\"{stages}: {count} {state}\"]:::{state}\n",
                index[&(band, state)]
            ));
            used.insert(state);
        }
        let group_of: HashMap<&str, usize> = self
            .tasks
            .iter()
            .zip(&self.stages)
            .map(|(task, &stage)| (task.key.as_str(), index[&(stage / width, task.state)]))
            .collect();
        let mut links: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (from, to) in &self.edges {
            if let (Some(&a), Some(&b)) = (group_of.get(from.as_str()), group_of.get(to.as_str()))
                && a != b
            {
                links.insert((a, b));
            }
        }
        for (a, b) in links {
            out.push_str(&format!("  g{a} --> g{b}\n"));
        }
    }
}

/// The first `max` of `items` joined for a message, and how many more there are.
fn listed(items: &[String], max: usize) -> String {
    let shown = items[..items.len().min(max)].join(", ");
    if items.len() > max {
        format!("{shown} and {} more", items.len() - max)
    } else {
        shown
    }
}

/// Text as a Mermaid label can hold it.
fn mermaid_text(text: &str) -> String {
    text.replace(['"', '[', ']', '<', '>', '`'], "'")
}

/// The colours of a state in diagrams.
fn state_style(state: TaskState) -> &'static str {
    match state {
        TaskState::Pending => "fill:#eeeeee,stroke:#999999",
        TaskState::Ready => "fill:#dbeafe,stroke:#3b82f6",
        TaskState::Assigned => "fill:#e0e7ff,stroke:#6366f1",
        TaskState::Running => "fill:#fef3c7,stroke:#f59e0b",
        TaskState::WaitingRetry => "fill:#ffedd5,stroke:#f97316",
        TaskState::Succeeded => "fill:#dcfce7,stroke:#22c55e",
        TaskState::Failed => "fill:#fee2e2,stroke:#ef4444",
        TaskState::UpstreamFailed => "fill:#fce7f3,stroke:#ec4899",
        TaskState::Skipped => "fill:#f5f5f5,stroke:#d4d4d4",
        TaskState::Cancelled => "fill:#e5e7eb,stroke:#6b7280",
    }
}

/// The analysis of a workflow's graph as stored.
pub(crate) fn analysis_of(conn: &Connection, workflow: i64) -> Result<Analysis> {
    Ok(Graph::load(conn, workflow)?.analysis())
}
