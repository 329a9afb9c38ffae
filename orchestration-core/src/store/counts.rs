//! Each workflow's tasks by state (`task_counts`), kept by the transactions that create tasks,
//! change their state (`transition::apply`) or their estimate, so that a workflow's summary
//! and the pace of its forecast are a few rows whatever the number of tasks.
//!
//! A state's count is split over [`SHARDS`] rows by task id, so that writers moving two tasks
//! of one workflow rarely meet on one row (on PostgreSQL a row written by one transaction waits
//! for it to end before another can write it); a read adds the shards up.
//!
//! A transaction beside other writers (`Sql::pending`) keeps its changes to the counters
//! (these rows and each workflow's count of open tasks) to its end and writes them then, in
//! one order every such transaction shares: the shards by workflow, state and shard, then the
//! workflows by id, then the agents' summaries by key (`summaries`). Written as they happened, a completion that readied a dependent locked its
//! workflow's row and then a shard another completion held while waiting for that row, and
//! under load PostgreSQL broke such cycles about twice a second only for the retries to renew
//! them. Locked last and in one order, the counters close no cycle.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::workflow::{TaskRecord, TaskState};

use super::db::{Tx, Value, params};
use super::refs::parse_column;

/// Rows per workflow and state.
const SHARDS: i64 = 8;

/// Shards one statement writes at most when the kept changes are written.
const SHARDS_PER_STATEMENT: usize = 32;

/// The changes to the counters a transaction keeps to its end (see the module's docs).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// What to add to each shard, by (workflow, state, shard): the order they are locked in.
    shards: BTreeMap<(i64, TaskState, i64), Weight>,
    /// What to add to each workflow's count of open tasks, by workflow id.
    open: BTreeMap<i64, i64>,
    /// What to add to the agents' summaries (`summaries`), written after the counters.
    pub(super) summaries: super::summaries::Kept,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.shards.is_empty() && self.open.is_empty() && self.summaries.is_empty()
    }
}

/// What one task adds to its state's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Weight {
    tasks: i64,
    /// Millionths of a point.
    points: i64,
    done_millis: i64,
    done_points: i64,
}

impl Weight {
    /// Adds `sign` times `other`.
    fn add(&mut self, other: Weight, sign: i64) {
        self.tasks += sign * other.tasks;
        self.points += sign * other.points;
        self.done_millis += sign * other.done_millis;
        self.done_points += sign * other.done_points;
    }
}

/// The counts of one workflow's tasks.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Counts {
    /// Tasks by state, only the states that occur.
    pub(crate) tasks: BTreeMap<TaskState, u64>,
    /// Points by state, for the same states.
    pub(crate) points: BTreeMap<TaskState, f64>,
    /// Time from start to finish of the succeeded tasks that have both times, in ms.
    pub(crate) done_millis: i64,
    /// The points of those tasks.
    pub(crate) done_points: f64,
}

/// An estimate in millionths of a point: sums of them stay exact however often they move.
pub(crate) fn micro(points: f64) -> i64 {
    (points * 1e6).round() as i64
}

fn points(micro: i64) -> f64 {
    micro as f64 / 1e6
}

/// What `task` as it is adds to the row of its state.
pub(crate) fn weight(task: &TaskRecord) -> Weight {
    weigh(task.state, task.estimate, task.started_at, task.finished_at)
}

fn weigh(
    state: TaskState,
    estimate: f64,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
) -> Weight {
    let points = micro(estimate);
    let (done_millis, done_points) = match (state, started_at, finished_at) {
        (TaskState::Succeeded, Some(start), Some(end)) => {
            ((end - start).num_milliseconds().max(0), points)
        }
        _ => (0, 0),
    };
    Weight {
        tasks: 1,
        points,
        done_millis,
        done_points,
    }
}

/// Moves one task of `workflow` from what it added to its old state's row to what it adds to
/// its new one; nothing when neither changed.
pub(crate) fn shift(
    tx: &Tx<'_>,
    workflow: i64,
    task: i64,
    from: (TaskState, Weight),
    to: (TaskState, Weight),
) -> Result<()> {
    if from == to {
        return Ok(());
    }
    // The two rows in one order whatever the direction of the move, so that two writers
    // moving tasks of one shard in opposite directions (a claim and a release) cannot each
    // hold the row the other waits for.
    let (first, second) = ((from.0, from.1, -1), (to.0, to.1, 1));
    let (first, second) = if first.0.as_str() <= second.0.as_str() {
        (first, second)
    } else {
        (second, first)
    };
    add(tx, workflow, task, first.0, first.1, first.2)?;
    add(tx, workflow, task, second.0, second.1, second.2)
}

/// Gives a task that stays in `state` its new estimate in the counts.
pub(crate) fn reestimate(tx: &Tx<'_>, task: &TaskRecord, estimate: f64) -> Result<()> {
    let old = weight(task);
    let new = weigh(task.state, estimate, task.started_at, task.finished_at);
    shift(
        tx,
        task.workflow,
        task.id,
        (task.state, old),
        (task.state, new),
    )
}

/// Counts the new tasks of a workflow: `tasks` as (id, estimate), all pending.
pub(crate) fn created(tx: &Tx<'_>, workflow: i64, tasks: &[(i64, f64)]) -> Result<()> {
    let mut shards: BTreeMap<i64, Weight> = BTreeMap::new();
    for &(id, estimate) in tasks {
        let shard = shards.entry(id.rem_euclid(SHARDS)).or_default();
        shard.tasks += 1;
        shard.points += micro(estimate);
    }
    for (shard, weight) in shards {
        add(tx, workflow, shard, TaskState::Pending, weight, 1)?;
    }
    Ok(())
}

/// Adds `sign` times `weight` to the row of `state` that `task` falls in, or keeps it to the
/// transaction's end when it runs beside others.
fn add(
    tx: &Tx<'_>,
    workflow: i64,
    task: i64,
    state: TaskState,
    weight: Weight,
    sign: i64,
) -> Result<()> {
    let shard = task.rem_euclid(SHARDS);
    if let Some(pending) = tx.pending() {
        let mut pending = pending.borrow_mut();
        let kept = pending.shards.entry((workflow, state, shard)).or_default();
        kept.add(weight, sign);
        if *kept == Weight::default() {
            pending.shards.remove(&(workflow, state, shard));
        }
        return Ok(());
    }
    tx.prepare_cached(UPSERT)?.execute(params![
        workflow,
        state.as_str(),
        shard,
        sign * weight.tasks,
        sign * weight.points,
        sign * weight.done_millis,
        sign * weight.done_points,
    ])?;
    Ok(())
}

/// Adds `delta` to `workflow`'s count of open tasks, or keeps it to the transaction's end
/// when it runs beside others.
pub(crate) fn add_open(tx: &Tx<'_>, workflow: i64, delta: i64) -> Result<()> {
    if let Some(pending) = tx.pending() {
        let mut pending = pending.borrow_mut();
        let kept = pending.open.entry(workflow).or_default();
        *kept += delta;
        if *kept == 0 {
            pending.open.remove(&workflow);
        }
        return Ok(());
    }
    tx.prepare_cached("UPDATE workflows SET open_tasks = open_tasks + ?2 WHERE id = ?1")?
        .execute(params![workflow, delta])?;
    Ok(())
}

/// Writes the changes to the counters kept so far, in the one order of the module's docs;
/// nothing on a transaction that keeps none. Run before the commit, and before a read of a
/// counter the transaction changed.
pub(crate) fn write_pending(tx: &Tx<'_>) -> Result<()> {
    let Some(pending) = tx.pending() else {
        return Ok(());
    };
    let pending = std::mem::take(&mut *pending.borrow_mut());
    if pending.is_empty() {
        return Ok(());
    }
    let shards: Vec<_> = pending.shards.into_iter().collect();
    for chunk in shards.chunks(SHARDS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 7);
        for &((workflow, state, shard), w) in chunk {
            params.extend([
                Value::Integer(workflow),
                Value::Text(state.as_str()),
                Value::Integer(shard),
                Value::Integer(w.tasks),
                Value::Integer(w.points),
                Value::Integer(w.done_millis),
                Value::Integer(w.done_points),
            ]);
        }
        // One statement upserts its rows in the order of its `VALUES` list.
        tx.run(&upsert_rows(chunk.len()), &params)?;
    }
    for (workflow, delta) in pending.open {
        tx.run(
            "UPDATE workflows SET open_tasks = open_tasks + ?2 WHERE id = ?1",
            &[Value::Integer(workflow), Value::Integer(delta)],
        )?;
    }
    super::summaries::write_kept(tx, pending.summaries)
}

/// The statement that adds one row's values to its shard.
const UPSERT: &str = "INSERT INTO task_counts (workflow, state, shard, tasks, points, \
    done_millis, done_points) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (workflow, state, \
    shard) DO UPDATE SET tasks = task_counts.tasks + excluded.tasks, \
    points = task_counts.points + excluded.points, \
    done_millis = task_counts.done_millis + excluded.done_millis, \
    done_points = task_counts.done_points + excluded.done_points";

/// [`UPSERT`] for `n` rows of values, each shard at most once.
fn upsert_rows(n: usize) -> String {
    if n == 1 {
        return UPSERT.to_owned();
    }
    let values: Vec<String> = (0..n)
        .map(|i| {
            let p = i * 7;
            format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            )
        })
        .collect();
    UPSERT.replace("(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &values.join(", "))
}

/// The counts of `workflow`'s tasks.
pub(crate) fn of(conn: &Tx<'_>, workflow: i64) -> Result<Counts> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, CAST(sum(tasks) AS BIGINT), CAST(sum(points) AS BIGINT), \
         CAST(sum(done_millis) AS BIGINT), CAST(sum(done_points) AS BIGINT) \
         FROM task_counts WHERE workflow = ?1 GROUP BY state",
    )?;
    let mut rows = stmt.query([workflow])?;
    let mut counts = Counts::default();
    while let Some(r) = rows.next()? {
        let state: TaskState = parse_column(&r, 0, |s| s.parse().ok())?;
        let tasks: i64 = r.get(1)?;
        counts.done_millis += r.get::<_, i64>(3)?;
        counts.done_points += points(r.get(4)?);
        if tasks > 0 {
            counts.tasks.insert(state, tasks as u64);
            counts.points.insert(state, points(r.get(2)?));
        }
    }
    Ok(counts)
}
