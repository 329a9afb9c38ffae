//! Workflow use cases: create (idempotently), start, pause, resume, cancel, retry the failed,
//! edit dependencies on a live workflow, and report status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::db::{OptionalExtension, Tx, params};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::{TaskId, WorkflowId};
use crate::workflow::{
    Analysis, Dag, FailureReason, TaskEvent, TaskState, UpstreamEffect, ValidatedWorkflow,
    WorkflowAction, WorkflowSpec, WorkflowStatus, upstream_effect,
};

use super::event::{EventKind, NewEvent, append};
use super::refs::{TaskRef, TaskRow, WORKFLOW_COLUMNS, WorkflowRef, WorkflowRow};
use super::refs::{ids, workflow_tasks};
use super::sql::{self, CLAIM_ORDER, UNFINISHED, query};
use super::transition::{apply, set_status, settle};
use super::view::{TaskView, view};
use super::{Store, millis};
use crate::agent::AgentStatus;
use crate::workflow::{Change, FailurePolicy};
use crate::workflow::{CriticalPath, WorkflowReport, WorkflowSummary};

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

impl Store {
    /// Validates `spec` and saves it as a new workflow, all in one transaction. With an
    /// idempotency key that was used before for the same spec, returns the first result.
    pub fn create_workflow(&self, spec: WorkflowSpec, options: &CreateOptions) -> Result<Created> {
        if let Some(key) = &options.idempotency_key {
            super::task::check_length(
                "idempotency_key",
                key,
                crate::limits::MAX_IDEMPOTENCY_KEY_LEN,
            )?;
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
            let mut row = insert(
                tx,
                now,
                &validated,
                options.idempotency_key.as_deref(),
                fingerprint,
            )?;
            let ready = if options.start {
                start(tx, now, &mut row)?
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
            let mut row = WorkflowRow::resolve(tx, workflow)?;
            let illegal = || Error::IllegalWorkflowAction {
                workflow: row.name.clone(),
                status: row.status,
                action,
            };
            let to = action.apply(row.status).ok_or_else(illegal)?;
            let tasks_changed = match action {
                WorkflowAction::Start => start(tx, now, &mut row)?.len(),
                WorkflowAction::Pause | WorkflowAction::Resume => {
                    set_status(tx, now, &mut row, to)?;
                    0
                }
                WorkflowAction::Cancel => cancel(tx, now, &mut row)?,
                WorkflowAction::RetryFailed => {
                    let reset = retry_failed(tx, now, &mut row)?;
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
            let mut workflow = WorkflowRow::by_id(tx, row.workflow)?;
            let exists: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM deps WHERE task = ?1 AND dep = ?2)")?
                .query_row([row.id, dependency.id], |r| r.get(0))?;
            match edit {
                DependencyEdit::Add => {
                    add_dependency(tx, now, &mut workflow, &mut row, &dependency, exists)?
                }
                DependencyEdit::Remove => {
                    remove_dependency(tx, now, &workflow, &mut row, &dependency, exists)?
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
            view(tx, &TaskRow::by_id(tx, row.id)?)
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
                .collect::<Result<_>>()?;
            rows.iter().map(|row| summary(tx, row)).collect()
        })
    }
}

/// The error for a dependency edit that makes no sense.
fn invalid_dependency(reason: String) -> Error {
    Error::InvalidArgument {
        field: "depends_on".into(),
        reason,
    }
}

/// Makes `row` depend on `dependency` unless that would close a cycle, and moves `row` as the
/// dependency's state says: blocked by a failed one, back to pending behind an unfinished one.
fn add_dependency(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    workflow: &mut WorkflowRow,
    row: &mut TaskRow,
    dependency: &TaskRow,
    exists: bool,
) -> Result<()> {
    if dependency.id == row.id {
        return Err(invalid_dependency(format!(
            "task `{}` cannot depend on itself",
            row.display()
        )));
    }
    if exists {
        return Err(invalid_dependency(format!(
            "task `{}` already depends on `{}`",
            row.display(),
            dependency.display()
        )));
    }
    let mut graph = Graph::load(tx, row.workflow)?;
    let (from, to) = (graph.index[&dependency.id], graph.index[&row.id]);
    if let Err(cycle) = graph.dag.add_edge(from, to) {
        return Err(Error::Cycle(crate::workflow::spec_cycle_keys(
            &cycle.0,
            |v| graph.tasks[v as usize].key.clone(),
        )));
    }
    tx.prepare_cached("INSERT INTO deps (task, dep) VALUES (?1, ?2)")?
        .execute([row.id, dependency.id])?;
    tx.prepare_cached("UPDATE tasks SET is_leaf = 0 WHERE id = ?1")?
        .execute([dependency.id])?;
    match upstream_effect(workflow.on_failure, dependency.state) {
        Some(UpstreamEffect::Satisfied) => {}
        Some(UpstreamEffect::Blocked) => {
            let change = Change {
                reason: Some(FailureReason::Upstream),
                ..Change::default()
            };
            apply(tx, now, row, TaskEvent::UpstreamFailed, change)?;
            settle(tx, now, workflow, vec![(row.id, row.state)])?;
        }
        None => {
            tx.prepare_cached("UPDATE tasks SET unmet = unmet + 1 WHERE id = ?1")?
                .execute([row.id])?;
            if row.state == TaskState::Ready {
                apply(tx, now, row, TaskEvent::DependencyAdded, Change::default())?;
            }
        }
    }
    Ok(())
}

/// Drops the dependency of `row` on `dependency`; `row` becomes ready when it was the last
/// unfinished one of a started workflow.
fn remove_dependency(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    workflow: &WorkflowRow,
    row: &mut TaskRow,
    dependency: &TaskRow,
    exists: bool,
) -> Result<()> {
    if !exists {
        return Err(invalid_dependency(format!(
            "task `{}` does not depend on `{}`",
            row.display(),
            dependency.display()
        )));
    }
    tx.prepare_cached("DELETE FROM deps WHERE task = ?1 AND dep = ?2")?
        .execute([row.id, dependency.id])?;
    tx.prepare_cached(
        "UPDATE tasks SET is_leaf = CASE WHEN EXISTS (SELECT 1 FROM deps WHERE dep = ?1) \
         THEN 0 ELSE 1 END WHERE id = ?1",
    )?
    .execute([dependency.id])?;
    if upstream_effect(workflow.on_failure, dependency.state).is_none() {
        let unmet: u32 = tx
            .prepare_cached("UPDATE tasks SET unmet = unmet - 1 WHERE id = ?1 RETURNING unmet")?
            .query_row([row.id], |r| r.get(0))?;
        if unmet == 0 && row.state == TaskState::Pending && workflow.is_started() {
            apply(tx, now, row, TaskEvent::DependenciesMet, Change::default())?;
        }
    }
    Ok(())
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

fn replay(tx: &Tx<'_>, id: i64) -> Result<Created> {
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
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    validated: &ValidatedWorkflow,
    idempotency_key: Option<&str>,
    fingerprint: i64,
) -> Result<WorkflowRow> {
    let spec = validated.spec();
    let dag = validated.dag();
    let uuid = WorkflowId::new();
    let workflow = tx
        .prepare_cached(
            "INSERT INTO workflows (uuid, name, description, mode, on_failure, retry_initial_ms, \
         retry_coefficient, retry_max_ms, status, open_tasks, created_at, idempotency_key, \
         fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?13, ?9, ?10, ?11, ?12) RETURNING id",
        )?
        .insert(params![
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
            WorkflowStatus::Created.as_str(),
        ])?;
    let b_levels = &validated.analysis().b_levels;
    let mut ids = Vec::with_capacity(spec.tasks.len());
    {
        let mut insert_task = tx.prepare_cached(
            "INSERT INTO tasks (uuid, workflow, key, title, description, estimate, priority, \
             max_attempts, b_level, has_skills, is_leaf, unmet, state, kind) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING id",
        )?;
        let mut insert_skill =
            tx.prepare_cached("INSERT INTO task_skills (task, skill, level) VALUES (?1, ?2, ?3)")?;
        let uuids = TaskId::batch(spec.tasks.len());
        for ((position, task), uuid) in spec.tasks.iter().enumerate().zip(uuids) {
            let node = position as u32;
            let id = insert_task.insert(params![
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
                TaskState::Pending.as_str(),
                task.kind.as_str(),
            ])?;
            for (skill, level) in &task.skills {
                insert_skill.execute(params![id, skill, level])?;
            }
            ids.push(id);
        }
        let counted: Vec<(i64, f64)> = ids
            .iter()
            .zip(&spec.tasks)
            .map(|(&id, task)| (id, task.estimate_or_default()))
            .collect();
        super::counts::created(tx, workflow, &counted)?;
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
fn start(tx: &Tx<'_>, now: DateTime<Utc>, row: &mut WorkflowRow) -> Result<Vec<String>> {
    tx.prepare_cached("UPDATE workflows SET started_at = ?2 WHERE id = ?1")?
        .execute(params![row.id, millis(now)])?;
    set_status(tx, now, row, WorkflowStatus::Running)?;
    let mut ready = Vec::new();
    for id in ids(
        tx,
        query!(
            "SELECT id FROM tasks WHERE workflow = ?1 AND state = {} AND unmet = 0",
            sql::state(TaskState::Pending)
        ),
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

fn cancel(tx: &Tx<'_>, now: DateTime<Utc>, row: &mut WorkflowRow) -> Result<usize> {
    let live = ids(
        tx,
        query!(
            "SELECT id FROM tasks WHERE workflow = ?1 AND state IN {}",
            sql::states(&UNFINISHED)
        ),
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
fn retry_failed(tx: &Tx<'_>, now: DateTime<Utc>, row: &mut WorkflowRow) -> Result<usize> {
    let reset = ids(
        tx,
        query!(
            "SELECT id FROM tasks WHERE workflow = ?1 AND (state IN {} \
             OR (state = {} AND reason = {})) ORDER BY id",
            sql::states(&[TaskState::Failed, TaskState::UpstreamFailed]),
            sql::state(TaskState::Cancelled),
            sql::lit(FailureReason::FailFast.as_str())
        ),
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
    // A waiting dependent of a reset task counted it as met when its failure let work through
    // (under `continue`): it waits for the retry now, or the retry's end would count it twice.
    let reset_ids: BTreeSet<i64> = reset.iter().copied().collect();
    let mut waiting = BTreeSet::new();
    for &id in &reset {
        for dependent in ids(tx, "SELECT task FROM deps WHERE dep = ?1", id)? {
            if !reset_ids.contains(&dependent) {
                waiting.insert(dependent);
            }
        }
    }
    for id in waiting {
        // One past waiting (running or finished) keeps its count: it decides nothing now.
        let task = TaskRow::by_id(tx, id)?;
        if matches!(task.state, TaskState::Pending | TaskState::Ready) {
            tasks.push(task);
        }
    }
    for task in &mut tasks {
        let unmet = unmet_dependencies(tx, row.on_failure, task.id)?;
        tx.prepare_cached("UPDATE tasks SET unmet = ?2 WHERE id = ?1")?
            .execute(params![task.id, unmet as i64])?;
        match (task.state, unmet) {
            (TaskState::Pending, 0) => {
                apply(tx, now, task, TaskEvent::DependenciesMet, Change::default())?
            }
            (TaskState::Ready, 1..) => {
                apply(tx, now, task, TaskEvent::DependencyAdded, Change::default())?
            }
            _ => {}
        }
    }
    Ok(reset.len())
}

/// How many of `task`'s dependencies it still waits for under `policy`.
fn unmet_dependencies(tx: &Tx<'_>, policy: FailurePolicy, task: i64) -> Result<usize> {
    let states: Vec<String> = tx
        .prepare_cached(
            "SELECT state FROM tasks WHERE id IN (SELECT dep FROM deps WHERE task = ?1)",
        )?
        .query_map([task], |r| r.get(0))?
        .collect::<Result<_>>()?;
    Ok(states
        .iter()
        .filter_map(|s| s.parse::<TaskState>().ok())
        .filter(|&s| upstream_effect(policy, s) != Some(UpstreamEffect::Satisfied))
        .count())
}

fn resolve_in_workflow(tx: &Tx<'_>, task: &TaskRow, reference: &TaskRef) -> Result<TaskRow> {
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

fn ready_keys(conn: &Tx<'_>, workflow: i64) -> Result<Vec<String>> {
    conn.prepare_cached(query!(
        "SELECT key FROM tasks WHERE workflow = ?1 AND state = {} ORDER BY {CLAIM_ORDER}",
        sql::state(TaskState::Ready)
    ))?
    .query_map([workflow], |r| r.get(0))?
    .collect::<Result<_>>()
}

pub(super) fn summary(conn: &Tx<'_>, row: &WorkflowRow) -> Result<WorkflowSummary> {
    Ok(super::status::summary_of(
        row,
        &super::counts::of(conn, row.id)?,
    ))
}

/// The remaining critical path of `workflow` over its whole graph, as the report computes it.
pub(super) fn remaining_path_of(conn: &Tx<'_>, workflow: i64) -> Result<CriticalPath> {
    let row = WorkflowRow::by_id(conn, workflow)?;
    let graph = Graph::load(conn, workflow)?;
    Ok(crate::workflow::remaining_critical_path(
        &row,
        &graph.tasks,
        &graph.dag,
    ))
}

/// The headline of `row` counted over its tasks, as the counts kept in `task_counts` must say.
#[cfg(test)]
pub(super) fn summary_from_tasks(conn: &Tx<'_>, row: &WorkflowRow) -> Result<WorkflowSummary> {
    let mut counts = BTreeMap::new();
    let (mut total_tasks, mut total_points, mut done_points) = (0, 0.0, 0.0);
    let mut stmt = conn.prepare_cached(
        "SELECT state, count(*), coalesce(sum(estimate), 0.0) FROM tasks WHERE workflow = ?1 GROUP BY state",
    )?;
    let mut rows = stmt.query([row.id])?;
    while let Some(r) = rows.next()? {
        let state: TaskState = super::refs::parse_column(&r, 0, |s| s.parse().ok())?;
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

pub(super) fn report(tx: &Tx<'_>, now: DateTime<Utc>, row: &WorkflowRow) -> Result<WorkflowReport> {
    let graph = Graph::load(tx, row.id)?;
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
    // Only a running workflow's progress depends on the agents.
    let agents = match row.status {
        WorkflowStatus::Running => active_capabilities(tx)?,
        _ => None,
    };
    Ok(crate::workflow::report(
        row,
        summary(tx, row)?,
        &graph.tasks,
        &graph.dag,
        &skills,
        agents.as_deref(),
        now,
    ))
}

/// The capabilities of each active agent, or `None` when no agent is registered at all.
pub(super) fn active_capabilities(conn: &Tx<'_>) -> Result<Option<Vec<BTreeMap<String, u8>>>> {
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
pub(crate) fn rerank(tx: &Tx<'_>, workflow: i64) -> Result<()> {
    Graph::load(tx, workflow)?.save_ranks(tx)
}

impl Graph {
    fn load(conn: &Tx<'_>, workflow: i64) -> Result<Graph> {
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
    fn save_ranks(&self, tx: &Tx<'_>) -> Result<()> {
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

/// The analysis of a workflow's graph as stored.
pub(crate) fn analysis_of(conn: &Tx<'_>, workflow: i64) -> Result<Analysis> {
    Ok(Graph::load(conn, workflow)?.analysis())
}
