//! A workflow's status at a glance ([`Store::workflow_overview`]), read in a few short ranges
//! of indexes whatever the workflow's size: the counts and the pace kept by `store/counts.rs`,
//! the head of the claim order, the held tasks, the head of each blocked state, and the
//! remaining critical path walked down the stored b-levels. The decisions are the report's
//! own pure functions (`workflow/report.rs`), so the glance says what the full report says.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::workflow::{
    BLOCKED, CriticalPath, FailurePolicy, ReadyWork, TaskState, WorkflowOverview, WorkflowStatus,
    WorkflowSummary, blocked_reason, brief, can_take, forecast_from, leased, progress,
};

use super::Store;
use super::counts::{self, Counts};
use super::db::{Tx, params};
use super::refs::{TaskRow, WorkflowRef, WorkflowRow};
use super::sql::{self, CLAIM_ORDER, TASK_COLUMNS, WORKFLOW_OF_TASK, query};

/// How many ready tasks a verdict on progress reads at a time, looking for one an active agent
/// can take.
const READY_PAGE: usize = 64;

/// The longest remaining critical path walked down the b-levels; a longer one is computed
/// over the whole graph instead.
const PATH_WALK: usize = 1_000;

impl Store {
    /// A workflow's status at a glance: its counts, whether it can move, the first `shown`
    /// ready, held and blocked tasks with how many there are of each, the remaining critical
    /// path and the forecast finish, as [`Store::workflow_report`] has them. It reads a few
    /// rows per list, whatever the number of tasks; only the remaining critical path of a
    /// workflow with failed, cancelled or skipped tasks (or one not started, or under
    /// `continue`), or one longer than a thousand tasks, is computed over the whole graph.
    pub fn workflow_overview(
        &self,
        workflow: &WorkflowRef,
        shown: usize,
    ) -> Result<WorkflowOverview> {
        self.read(|tx, now| {
            let row = WorkflowRow::resolve(tx, workflow)?;
            overview(tx, now, &row, shown)
        })
    }
}

/// The headline of `row` from its counts.
pub(super) fn summary_of(row: &WorkflowRow, counts: &Counts) -> WorkflowSummary {
    WorkflowSummary {
        id: row.uuid,
        name: row.name.clone(),
        description: row.description.clone(),
        status: row.status,
        mode: row.mode,
        on_failure: row.on_failure,
        counts: counts.tasks.clone(),
        total_tasks: counts.tasks.values().sum(),
        total_points: counts.points.values().sum(),
        done_points: counts
            .points
            .get(&TaskState::Succeeded)
            .copied()
            .unwrap_or(0.0),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    }
}

fn overview(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    row: &WorkflowRow,
    shown: usize,
) -> Result<WorkflowOverview> {
    let counts = counts::of(tx, row.id)?;
    let count = |state: TaskState| counts.tasks.get(&state).copied().unwrap_or(0);
    let ready_rows = ready_page(tx, row.id, 0, shown.max(READY_PAGE))?;
    let mut held = leased_rows(tx, row.id)?;
    held.sort_by_key(|t| t.id);
    // Each blocked state's first tasks, merged in creation order.
    let mut blocked_rows = Vec::new();
    let mut gates = Vec::new();
    for state in BLOCKED {
        let rows = blocked_page(tx, row.id, state, shown.max(5))?;
        if state == TaskState::AwaitingApproval {
            gates = rows.iter().take(5).map(|t| t.key.clone()).collect();
        }
        blocked_rows.extend(rows);
    }
    blocked_rows.sort_by_key(|t| t.id);
    blocked_rows.truncate(shown);
    let mut blocked = Vec::with_capacity(blocked_rows.len());
    for task in &blocked_rows {
        let dependencies = dependencies(tx, task.id)?;
        let dependencies: Vec<(&str, TaskState)> =
            dependencies.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        blocked.push(brief(task, blocked_reason(&row.name, task, &dependencies)));
    }
    // Only a running workflow's progress depends on the agents.
    let agents = match row.status {
        WorkflowStatus::Running => super::workflow::active_capabilities(tx)?,
        _ => None,
    };
    let first = with_skills(tx, &ready_rows)?;
    let later_taken = match &agents {
        Some(agents) if !first.iter().any(|(_, required)| can_take(agents, required)) => {
            later_taken(tx, row.id, first.len(), count(TaskState::Ready), agents)?
        }
        _ => false,
    };
    let ready_work = ReadyWork {
        first: &first,
        total: count(TaskState::Ready),
        later_taken,
    };
    let progress = progress(
        row,
        &counts.tasks,
        &ready_work,
        &gates,
        count(TaskState::AwaitingApproval),
        agents.as_deref(),
    );
    let remaining_critical_path = remaining_critical_path(tx, row, &counts)?;
    let forecast_finish = forecast_from(
        counts.done_millis,
        counts.done_points,
        now,
        remaining_critical_path.length,
    );
    Ok(WorkflowOverview {
        summary: summary_of(row, &counts),
        progress,
        ready: ready_rows
            .iter()
            .take(shown)
            .map(|t| brief(t, None))
            .collect(),
        ready_total: count(TaskState::Ready),
        leased: held.iter().take(shown).map(|t| leased(t, now)).collect(),
        leased_total: count(TaskState::Assigned) + count(TaskState::Running),
        blocked,
        blocked_total: BLOCKED.iter().map(|&s| count(s)).sum(),
        remaining_critical_path,
        forecast_finish,
    })
}

/// Ready tasks of `workflow` in claim order, `limit` of them after the first `skip`.
fn ready_page(tx: &Tx<'_>, workflow: i64, skip: usize, limit: usize) -> Result<Vec<TaskRow>> {
    tx.prepare_cached(query!(
        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t INDEXED BY tasks_ready_in_workflow \
         WHERE t.workflow = ?1 AND t.state = {} ORDER BY {CLAIM_ORDER} LIMIT ?2 OFFSET ?3",
        sql::state(TaskState::Ready)
    ))?
    .query_map(
        params![workflow, limit as i64, skip as i64],
        TaskRow::from_row,
    )?
    .collect()
}

/// The held tasks of `workflow`: few, whatever its size, as each agent holds a few.
fn leased_rows(tx: &Tx<'_>, workflow: i64) -> Result<Vec<TaskRow>> {
    tx.prepare_cached(query!(
        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t INDEXED BY tasks_leased \
         WHERE t.state IN {} AND t.workflow = ?1",
        sql::states(&sql::LEASED)
    ))?
    .query_map([workflow], TaskRow::from_row)?
    .collect()
}

/// The first `limit` tasks of `workflow` in `state`, a blocked state, in creation order.
fn blocked_page(
    tx: &Tx<'_>,
    workflow: i64,
    state: TaskState,
    limit: usize,
) -> Result<Vec<TaskRow>> {
    tx.prepare_cached(query!(
        "SELECT {TASK_COLUMNS}, {WORKFLOW_OF_TASK} FROM tasks t INDEXED BY tasks_blocked \
         WHERE t.workflow = ?1 AND t.state IN {} AND t.state = ?2 ORDER BY t.id LIMIT ?3",
        sql::states(&BLOCKED)
    ))?
    .query_map(
        params![workflow, state.as_str(), limit as i64],
        TaskRow::from_row,
    )?
    .collect()
}

/// Every task of `workflow` in `state`, a blocked state, in creation order.
fn blocked_all(tx: &Tx<'_>, workflow: i64, state: TaskState) -> Result<Vec<TaskRow>> {
    blocked_page(tx, workflow, state, i64::MAX as usize)
}

/// The direct dependencies of `task` as (key, state), in the order the report's graph has them.
fn dependencies(tx: &Tx<'_>, task: i64) -> Result<Vec<(String, TaskState)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT t.key, t.state FROM deps d JOIN tasks t ON t.id = d.dep WHERE d.task = ?1 \
         ORDER BY d.dep",
    )?;
    let mut rows = stmt.query([task])?;
    let mut found = Vec::new();
    while let Some(r) = rows.next()? {
        found.push((
            r.get(0)?,
            super::refs::parse_column(&r, 1, |s| s.parse().ok())?,
        ));
    }
    Ok(found)
}

/// `tasks` as (key, the skills each requires).
fn with_skills(tx: &Tx<'_>, tasks: &[TaskRow]) -> Result<Vec<(String, BTreeMap<String, u8>)>> {
    let mut stmt = tx.prepare_cached("SELECT skill, level FROM task_skills WHERE task = ?1")?;
    let mut found = Vec::with_capacity(tasks.len());
    for task in tasks {
        let mut required = BTreeMap::new();
        if task.has_skills {
            let mut rows = stmt.query([task.id])?;
            while let Some(r) = rows.next()? {
                required.insert(r.get(0)?, r.get(1)?);
            }
        }
        found.push((task.key.clone(), required));
    }
    Ok(found)
}

/// Whether an active agent can take one of the ready tasks after the first `skip`, read a page
/// at a time until one is found: only a workflow stalled on skills reads them all.
fn later_taken(
    tx: &Tx<'_>,
    workflow: i64,
    mut skip: usize,
    total: u64,
    agents: &[BTreeMap<String, u8>],
) -> Result<bool> {
    while (skip as u64) < total {
        let page = ready_page(tx, workflow, skip, READY_PAGE)?;
        if page.is_empty() {
            break;
        }
        skip += page.len();
        if with_skills(tx, &page)?
            .iter()
            .any(|(_, required)| can_take(agents, required))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A task on a walk down the b-levels.
#[derive(Debug, Clone)]
struct Node {
    id: i64,
    key: String,
    estimate: f64,
    b_level: f64,
}

impl Node {
    /// The node with the longest b-level, the lowest id among equals.
    fn better(self, other: Option<Node>) -> Node {
        match other {
            Some(o)
                if o.b_level > self.b_level || (o.b_level == self.b_level && o.id < self.id) =>
            {
                o
            }
            _ => self,
        }
    }
}

/// The longest chain of unfinished work of `row`, as the report computes it.
///
/// While every finished task succeeded and failures do not count as done, the unfinished tasks
/// are closed under "depends on": a task can only succeed after all it depends on did. Their
/// longest chain then starts at a task that is ready, held, waiting to retry or waiting for a
/// person (a pending task waits on an unfinished one, whose chain is at least as long), and
/// follows the stored b-levels, which weigh every task, all unfinished on the way down. Other
/// workflows, and chains longer than [`PATH_WALK`], are computed over the whole graph.
fn remaining_critical_path(
    tx: &Tx<'_>,
    row: &WorkflowRow,
    counts: &Counts,
) -> Result<CriticalPath> {
    let count = |state: TaskState| counts.tasks.get(&state).copied().unwrap_or(0);
    let unfinished: u64 = counts
        .tasks
        .iter()
        .filter(|(state, _)| !state.is_terminal())
        .map(|(_, n)| n)
        .sum();
    if unfinished == 0 {
        return Ok(CriticalPath {
            keys: Vec::new(),
            length: 0.0,
        });
    }
    let closed = row.is_started()
        && row.on_failure != FailurePolicy::Continue
        && [
            TaskState::Failed,
            TaskState::UpstreamFailed,
            TaskState::Cancelled,
            TaskState::Skipped,
        ]
        .iter()
        .all(|&s| count(s) == 0);
    if closed && let Some(path) = walk(tx, row.id)? {
        return Ok(path);
    }
    super::workflow::remaining_path_of(tx, row.id)
}

/// The walk down the b-levels from the unfinished task with the longest one that nothing
/// unfinished waits for; `None` when it is longer than [`PATH_WALK`].
fn walk(tx: &Tx<'_>, workflow: i64) -> Result<Option<CriticalPath>> {
    let node = |t: &TaskRow| Node {
        id: t.id,
        key: t.key.clone(),
        estimate: t.estimate,
        b_level: t.b_level,
    };
    let mut start: Option<Node> = None;
    for t in leased_rows(tx, workflow)? {
        start = Some(node(&t).better(start));
    }
    for state in [TaskState::WaitingRetry, TaskState::AwaitingApproval] {
        for t in blocked_all(tx, workflow, state)? {
            start = Some(node(&t).better(start));
        }
    }
    // The head of each priority in the claim order has that priority's longest b-level: one
    // look per priority among the ready tasks, the first at or below the highest there is.
    let mut below = (i64::MAX, true);
    loop {
        let mut stmt = if below.1 {
            tx.prepare_cached(query!(
                "SELECT t.id, t.key, t.estimate, t.b_level, t.priority FROM tasks t \
                 INDEXED BY tasks_ready_in_workflow WHERE t.workflow = ?1 AND t.state = {} \
                 AND t.priority <= ?2 ORDER BY {CLAIM_ORDER} LIMIT 1",
                sql::state(TaskState::Ready)
            ))?
        } else {
            tx.prepare_cached(query!(
                "SELECT t.id, t.key, t.estimate, t.b_level, t.priority FROM tasks t \
                 INDEXED BY tasks_ready_in_workflow WHERE t.workflow = ?1 AND t.state = {} \
                 AND t.priority < ?2 ORDER BY {CLAIM_ORDER} LIMIT 1",
                sql::state(TaskState::Ready)
            ))?
        };
        let mut rows = stmt.query(params![workflow, below.0])?;
        let Some(r) = rows.next()? else {
            break;
        };
        let head = Node {
            id: r.get(0)?,
            key: r.get(1)?,
            estimate: r.get(2)?,
            b_level: r.get(3)?,
        };
        below = (r.get(4)?, false);
        start = Some(head.better(start));
    }
    let mut successors = tx.prepare_cached(
        "SELECT t.id, t.key, t.estimate, t.b_level FROM deps d JOIN tasks t ON t.id = d.task \
         WHERE d.dep = ?1",
    )?;
    let (mut keys, mut length) = (Vec::new(), 0.0);
    let mut current = start;
    while let Some(v) = current {
        if keys.len() == PATH_WALK {
            return Ok(None);
        }
        length += v.estimate;
        keys.push(v.key);
        let mut next: Option<Node> = None;
        let mut rows = successors.query([v.id])?;
        while let Some(r) = rows.next()? {
            let w = Node {
                id: r.get(0)?,
                key: r.get(1)?,
                estimate: r.get(2)?,
                b_level: r.get(3)?,
            };
            next = Some(w.better(next));
        }
        current = next;
    }
    Ok(Some(CriticalPath { keys, length }))
}
