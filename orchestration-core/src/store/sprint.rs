//! Sprint use cases, one transaction each: planning (a dry run, saving a planned sprint,
//! starting one with its commitment snapshot), scope changes and re-estimates, analytics, and
//! the retrospective that closes a sprint and carries its unfinished work over.

use std::collections::BTreeSet;

use super::db::{OptionalExtension, Row, Tx, params};
use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::from_millis;
use crate::error::{Error, Result};
use crate::limits::{self, MAX_SCOPE_EDIT, MAX_TRIALS};
use crate::sprint::{
    CutDependency, SprintStatus, WorkWeek, removal_warnings, sprint_report, velocity, working_days,
};
pub use crate::sprint::{DEFAULT_FOCUS_FACTOR, FocusSource};
use crate::workflow::{TaskState, check_argument_name};

use super::event::{EventKind, NewEvent, append};
use super::refs::TaskRow;
use super::workflow::rerank;
use super::{Store, TaskRef, millis};

/// Monte Carlo trials when the caller does not say.
pub const DEFAULT_TRIALS: u32 = 10_000;

/// Closed sprints whose daily throughput feeds a forecast.
const FORECAST_HISTORY_SPRINTS: usize = 3;

mod planning;
mod saved;
mod specs;
mod tracking;

use planning::prepare;
use saved::{closed_before, committed_plan, freeze, save, saved_plan, window};
pub use specs::{
    AnalyticsOptions, CarryOver, MemberSpec, Problem, Retrospective, RetrospectiveOptions,
    ScopeEdit, SprintAnalytics, SprintForecast, SprintPlan, SprintSpec, SprintSummary,
};
pub(crate) use tracking::sprint_loads;
use tracking::{carry_over, retrospective, sprint_forecast, stays};

/// A row of `sprints`.
#[derive(Debug, Clone)]
struct SprintRow {
    id: i64,
    name: String,
    goal: Option<String>,
    start: NaiveDate,
    end: NaiveDate,
    week: WorkWeek,
    workflows: Vec<String>,
    status: SprintStatus,
    focus_factor: Option<f64>,
    raw_capacity: Option<f64>,
    capacity: Option<f64>,
    committed: Option<f64>,
    completed: Option<f64>,
    daily_done: Vec<f64>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
}

const SPRINT_COLUMNS: &str = "id, name, goal, start_date, end_date, work_week, status, \
    focus_factor, raw_capacity, capacity, committed, completed, daily_done, created_at, \
    started_at, closed_at, workflows";

impl SprintRow {
    fn from_row(row: &Row<'_>) -> Result<SprintRow> {
        let date = |i: usize| super::refs::parse_column(row, i, |s| s.parse::<NaiveDate>().ok());
        let daily: Option<String> = row.get(12)?;
        Ok(SprintRow {
            id: row.get(0)?,
            name: row.get(1)?,
            goal: row.get(2)?,
            start: date(3)?,
            end: date(4)?,
            week: WorkWeek::from_bits(row.get(5)?),
            status: super::refs::parse_column(row, 6, SprintStatus::parse)?,
            focus_factor: row.get(7)?,
            raw_capacity: row.get(8)?,
            capacity: row.get(9)?,
            committed: row.get(10)?,
            completed: row.get(11)?,
            daily_done: daily
                .unwrap_or_default()
                .split(',')
                .filter_map(|v| v.parse().ok())
                .collect(),
            created_at: from_millis(row.get(13)?),
            started_at: row.get::<_, Option<i64>>(14)?.map(from_millis),
            closed_at: row.get::<_, Option<i64>>(15)?.map(from_millis),
            workflows: row
                .get::<_, String>(16)?
                .split(',')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    fn find(conn: &Tx<'_>, name: &str) -> Result<Option<SprintRow>> {
        let sql = format!("SELECT {SPRINT_COLUMNS} FROM sprints WHERE name = ?1");
        conn.prepare_cached(&sql)?
            .query_row([name], SprintRow::from_row)
            .optional()
    }

    fn resolve(conn: &Tx<'_>, name: &str) -> Result<SprintRow> {
        match SprintRow::find(conn, name)? {
            Some(row) => Ok(row),
            None => {
                let names: Vec<String> = conn
                    .prepare_cached("SELECT name FROM sprints")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_>>()?;
                Err(Error::UnknownSprint {
                    name: name.to_owned(),
                    closest: crate::text::closest(name, names.iter().map(String::as_str)),
                })
            }
        }
    }

    /// The moment its reports look from: its close, or now.
    fn as_of(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.closed_at.unwrap_or(now)
    }
}

impl Store {
    /// Plans a sprint without writing anything: capacity, the commitment velocity recommends,
    /// the tasks chosen and their allocation, what was left out and why.
    pub fn plan_sprint(&self, spec: &SprintSpec) -> Result<SprintPlan> {
        self.read(|tx, now| prepare(tx, spec, now, "be planned again"))
    }

    /// Plans a sprint and saves it as planned, with its members, chosen tasks, capacity and
    /// focus factor: what its start will commit. Planning a planned sprint again keeps its
    /// tasks and adds to them.
    pub fn create_sprint(&self, spec: &SprintSpec) -> Result<SprintPlan> {
        self.write(|tx, now| {
            let mut planned = prepare(tx, spec, now, "be planned again")?;
            let id = save(tx, now, spec, &planned)?;
            planned.sprint = summary(tx, &SprintRow::resolve(tx, &spec.name)?, id)?;
            planned.saved = true;
            Ok(planned)
        })
    }

    /// Starts a sprint: the commitment is frozen, and from now on scope changes are recorded
    /// as such.
    ///
    /// A sprint saved as planned starts with exactly what was saved: its tasks (as `add` and
    /// `remove` changed them since) and the capacity and focus factor computed when it was
    /// saved. Nothing is planned again, so `spec` names it and nothing else; any planning
    /// argument is refused. A sprint that does not exist yet is planned from `spec`, saved and
    /// started in one call.
    pub fn start_sprint(&self, spec: &SprintSpec) -> Result<SprintPlan> {
        check_argument_name("name", "sprint name", &spec.name)?;
        self.write(|tx, now| {
            let (id, mut started) = match SprintRow::find(tx, &spec.name)? {
                Some(row) if row.status == SprintStatus::Planned => {
                    let given = spec.planning_arguments();
                    if !given.is_empty() {
                        return Err(Error::InvalidArgument {
                            field: given.join(", "),
                            reason: format!(
                                "sprint `{}` is planned, and start commits what was saved for it \
                                 without planning again; start it with its name alone, re-plan it \
                                 first with action=create, or change its tasks with add/remove",
                                row.name
                            ),
                        });
                    }
                    freeze(tx, now, row.id)?;
                    (row.id, saved_plan(tx, &row)?)
                }
                Some(row) => {
                    return Err(Error::IllegalSprintAction {
                        sprint: row.name,
                        status: row.status,
                        action: "start",
                    });
                }
                None if spec.start.is_none() && spec.end.is_none() => {
                    return Err(Error::InvalidArgument {
                        field: "name".into(),
                        reason: format!(
                            "unknown sprint `{}`; to plan and start a new sprint in one call give \
                             start, end and members, or save it first with action=create",
                            spec.name
                        ),
                    });
                }
                None => {
                    let mut planned = prepare(tx, spec, now, "start")?;
                    let id = save(tx, now, spec, &planned)?;
                    freeze(tx, now, id)?;
                    // What was saved is what planning chose; reading it back makes the result
                    // report exactly what was committed.
                    let committed = committed_plan(tx, id)?;
                    planned.plan.selected = committed.selected;
                    planned.plan.points = committed.points;
                    planned.plan.allocation = committed.allocation;
                    (id, planned)
                }
            };
            tx.prepare_cached(
                "UPDATE sprints SET status = ?7, started_at = ?2, focus_factor = ?3, \
                 raw_capacity = ?4, capacity = ?5, committed = ?6 WHERE id = ?1",
            )?
            .execute(params![
                id,
                millis(now),
                started.capacity.focus_factor,
                started.raw_capacity,
                started.capacity.points,
                started.plan.points,
                SprintStatus::Active.as_str()
            ])?;
            append(
                tx,
                now,
                EventKind::SprintStatus,
                NewEvent {
                    sprint: Some(id),
                    value: Some(started.plan.points),
                    detail: Some(SprintStatus::Active.as_str()),
                    ..NewEvent::default()
                },
            )?;
            started.sprint = summary(tx, &SprintRow::resolve(tx, &spec.name)?, id)?;
            started.saved = true;
            Ok(started)
        })
    }

    /// Adds unfinished tasks to a sprint that is not closed. After the start they count as
    /// added scope.
    pub fn add_to_sprint(&self, sprint: &str, tasks: &[TaskRef]) -> Result<ScopeEdit> {
        check_scope_edit(tasks)?;
        self.write(|tx, now| {
            let row = open_sprint(tx, sprint, "gain tasks")?;
            let mut edit = ScopeEdit::new(&row.name);
            for task in tasks {
                let task = TaskRow::resolve(tx, task)?;
                if task.state.is_terminal() {
                    return Err(Error::InvalidArgument {
                        field: "tasks".into(),
                        reason: format!(
                            "task `{}` is {}: only unfinished tasks can join a sprint",
                            task.display(),
                            task.state
                        ),
                    });
                }
                match current_sprint_of(tx, task.id)? {
                    Some((id, _)) if id == row.id => {
                        edit.unchanged.push(task.display());
                        continue;
                    }
                    Some((_, other)) => {
                        return Err(Error::TaskInSprint {
                            task: task.display(),
                            sprint: other,
                        });
                    }
                    None => {}
                }
                join(tx, now, row.id, &task, "added", None)?;
                edit.points += task.estimate;
                edit.changed.push(task.display());
            }
            edit.scope = scope(tx, row.id)?;
            Ok(edit)
        })
    }

    /// Takes tasks out of a sprint that is not closed. After the start they count as removed
    /// scope; before it they simply leave. The result warns of each unfinished task left in
    /// the sprint that depends directly on an unfinished task taken out.
    pub fn remove_from_sprint(&self, sprint: &str, tasks: &[TaskRef]) -> Result<ScopeEdit> {
        check_scope_edit(tasks)?;
        self.write(|tx, now| {
            let row = open_sprint(tx, sprint, "lose tasks")?;
            let mut edit = ScopeEdit::new(&row.name);
            let mut removed = Vec::with_capacity(tasks.len());
            for task in tasks {
                let task = TaskRow::resolve(tx, task)?;
                match current_sprint_of(tx, task.id)? {
                    Some((id, _)) if id == row.id => {}
                    _ => {
                        return Err(Error::InvalidArgument {
                            field: "tasks".into(),
                            reason: format!(
                                "task `{}` is not in sprint `{}`",
                                task.display(),
                                row.name
                            ),
                        });
                    }
                }
                if row.status == SprintStatus::Planned {
                    tx.prepare_cached("DELETE FROM sprint_tasks WHERE task = ?1 AND current = 1")?
                        .execute([task.id])?;
                } else {
                    tx.prepare_cached(
                        "UPDATE sprint_tasks SET removed_at = ?2, current = 0 \
                         WHERE task = ?1 AND current = 1",
                    )?
                    .execute(params![task.id, millis(now)])?;
                }
                append(
                    tx,
                    now,
                    EventKind::SprintScope,
                    NewEvent {
                        sprint: Some(row.id),
                        workflow: Some(task.workflow),
                        task: Some(task.id),
                        value: Some(task.estimate),
                        detail: Some("removed"),
                        ..NewEvent::default()
                    },
                )?;
                edit.points += task.estimate;
                edit.changed.push(task.display());
                removed.push(task);
            }
            // Looked up once all are out, so tasks removed together do not warn of each other.
            let mut cut = Vec::new();
            for task in &removed {
                cut.extend(dependents_in_sprint(tx, row.id, task)?);
            }
            edit.warnings = removal_warnings(&cut);
            edit.scope = scope(tx, row.id)?;
            Ok(edit)
        })
    }

    /// Changes an unfinished task's estimate; in an active sprint it counts as a scope change.
    /// Returns the old estimate.
    pub fn reestimate(&self, task: &TaskRef, estimate: f64) -> Result<f64> {
        if !(estimate.is_finite() && (0.0..=limits::MAX_ESTIMATE).contains(&estimate)) {
            return Err(Error::InvalidArgument {
                field: "estimate".into(),
                reason: format!(
                    "{estimate} is not a finite number of points from 0 to {}",
                    limits::MAX_ESTIMATE
                ),
            });
        }
        self.write(|tx, now| {
            let task = TaskRow::resolve(tx, task)?;
            if task.state.is_terminal() {
                return Err(Error::IllegalTransition {
                    task: task.display(),
                    state: task.state,
                    verb: "be re-estimated",
                });
            }
            tx.prepare_cached("UPDATE tasks SET estimate = ?2 WHERE id = ?1")?
                .execute(params![task.id, estimate])?;
            super::attempts::reestimate(tx, task.id, estimate)?;
            super::counts::reestimate(tx, &task, estimate)?;
            rerank(tx, task.workflow)?;
            let old = task.estimate.to_string();
            append(
                tx,
                now,
                EventKind::EstimateChanged,
                NewEvent {
                    sprint: current_sprint_of(tx, task.id)?.map(|(id, _)| id),
                    workflow: Some(task.workflow),
                    task: Some(task.id),
                    value: Some(estimate),
                    detail: Some(&old),
                    ..NewEvent::default()
                },
            )?;
            Ok(task.estimate)
        })
    }

    /// One sprint as stored.
    pub fn sprint(&self, name: &str) -> Result<SprintSummary> {
        self.read(|tx, _| {
            let row = SprintRow::resolve(tx, name)?;
            summary(tx, &row, row.id)
        })
    }

    /// Every sprint, by start date.
    pub fn sprints(&self) -> Result<Vec<SprintSummary>> {
        self.read(|tx, _| {
            let sql = format!("SELECT {SPRINT_COLUMNS} FROM sprints ORDER BY start_date, id");
            let rows = tx
                .prepare(&sql)?
                .query_map([], SprintRow::from_row)?
                .collect::<Result<Vec<_>>>()?;
            rows.iter().map(|row| summary(tx, row, row.id)).collect()
        })
    }

    /// Burndown and burnup, scope changes, progress, velocity, carry-over, flow metrics, and a
    /// seeded Monte Carlo forecast of the finish.
    pub fn sprint_analytics(
        &self,
        name: &str,
        options: &AnalyticsOptions,
    ) -> Result<SprintAnalytics> {
        if !(1..=MAX_TRIALS).contains(&options.trials) {
            return Err(Error::InvalidArgument {
                field: "trials".into(),
                reason: format!("{} is not from 1 to {MAX_TRIALS}", options.trials),
            });
        }
        self.read(|tx, now| {
            let row = SprintRow::resolve(tx, name)?;
            let as_of = row.as_of(now);
            let (ids, items) = stays(tx, row.id)?;
            let report = sprint_report(&window(&row, as_of), &items);
            let history = closed_before(tx, &row)?;
            let velocity_history: Vec<(String, f64)> = history
                .iter()
                .rev()
                .take(crate::sprint::VELOCITY_WINDOW)
                .rev()
                .map(|s| (s.name.clone(), s.completed.unwrap_or(0.0)))
                .collect();
            let completed: Vec<f64> = velocity_history.iter().map(|(_, c)| *c).collect();
            let (forecast, forecast_note) =
                sprint_forecast(&row, &report, &history, as_of, options);
            Ok(SprintAnalytics {
                sprint: summary(tx, &row, row.id)?,
                carry_over: carry_over(tx, row.id, &ids, &items, as_of)?,
                velocity: velocity(&completed),
                velocity_history,
                report,
                forecast,
                forecast_note,
            })
        })
    }

    /// The retrospective of a sprint: committed against completed, say/do, scope creep and
    /// churn, carry-over, estimation accuracy, cycle times, contributions, problems, and
    /// findings with actions. With `close`, it also closes the sprint and carries its
    /// unfinished tasks over (into `next`, when named).
    pub fn sprint_retrospective(
        &self,
        name: &str,
        options: &RetrospectiveOptions,
    ) -> Result<Retrospective> {
        if options.next.is_some() && !options.close {
            return Err(Error::InvalidArgument {
                field: "next".into(),
                reason: "unfinished tasks move to the next sprint only when closing: pass close"
                    .into(),
            });
        }
        if options.close {
            self.write(|tx, now| retrospective(tx, name, now, options))
        } else {
            self.read(|tx, now| retrospective(tx, name, now, options))
        }
    }
}

impl ScopeEdit {
    fn new(sprint: &str) -> ScopeEdit {
        ScopeEdit {
            sprint: sprint.to_owned(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            points: 0.0,
            scope: 0.0,
            warnings: Vec::new(),
        }
    }
}

fn check_scope_edit(tasks: &[TaskRef]) -> Result<()> {
    if tasks.is_empty() || tasks.len() > MAX_SCOPE_EDIT {
        return Err(Error::InvalidArgument {
            field: "tasks".into(),
            reason: format!("name from 1 to {MAX_SCOPE_EDIT} tasks, got {}", tasks.len()),
        });
    }
    Ok(())
}

fn open_sprint(conn: &Tx<'_>, name: &str, action: &'static str) -> Result<SprintRow> {
    let row = SprintRow::resolve(conn, name)?;
    if row.status == SprintStatus::Closed {
        return Err(Error::IllegalSprintAction {
            sprint: row.name,
            status: row.status,
            action,
        });
    }
    Ok(row)
}

/// The open sprint a task is in: its id and name.
fn current_sprint_of(conn: &Tx<'_>, task: i64) -> Result<Option<(i64, String)>> {
    conn.prepare_cached(
        "SELECT s.id, s.name FROM sprint_tasks st JOIN sprints s ON s.id = st.sprint \
             WHERE st.task = ?1 AND st.current = 1",
    )?
    .query_row([task], |row| Ok((row.get(0)?, row.get(1)?)))
    .optional()
}

fn join(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    sprint: i64,
    task: &TaskRow,
    why: &str,
    planned_for: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sprint_tasks (sprint, task, added_at, estimate, planned_for) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        sprint,
        task.id,
        millis(now),
        task.estimate,
        planned_for
    ])?;
    append(
        tx,
        now,
        EventKind::SprintScope,
        NewEvent {
            sprint: Some(sprint),
            workflow: Some(task.workflow),
            task: Some(task.id),
            value: Some(task.estimate),
            detail: Some(why),
            ..NewEvent::default()
        },
    )
}

/// The tasks in the sprint now that depend directly on `dependency`.
fn dependents_in_sprint(
    conn: &Tx<'_>,
    sprint: i64,
    dependency: &TaskRow,
) -> Result<Vec<CutDependency>> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.name || '/' || t.key, t.state FROM deps d JOIN tasks t ON t.id = d.task \
         JOIN workflows w ON w.id = t.workflow \
         JOIN sprint_tasks st ON st.task = t.id AND st.current = 1 AND st.sprint = ?2 \
         WHERE d.dep = ?1 ORDER BY t.id",
    )?;
    let rows = stmt.query_map(params![dependency.id, sprint], |row| {
        Ok(CutDependency {
            dependent: row.get(0)?,
            dependent_state: super::refs::parse_column(row, 1, |s| s.parse::<TaskState>().ok())?,
            dependency: dependency.display(),
            dependency_state: dependency.state,
        })
    })?;
    rows.collect::<Result<_>>()
}

/// Points in the sprint now.
fn scope(conn: &Tx<'_>, sprint: i64) -> Result<f64> {
    conn.query_row(
        "SELECT coalesce(sum(t.estimate), 0) FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
         WHERE st.sprint = ?1 AND st.current = 1",
        [sprint],
        |row| row.get(0),
    )
}

fn summary(conn: &Tx<'_>, row: &SprintRow, id: i64) -> Result<SprintSummary> {
    let members = load_members(conn, id)?;
    let tasks: i64 = conn.query_row(
        "SELECT count(*) FROM sprint_tasks WHERE sprint = ?1 AND removed_at IS NULL",
        [id],
        |r| r.get(0),
    )?;
    Ok(SprintSummary {
        name: row.name.clone(),
        goal: row.goal.clone(),
        status: row.status,
        start: row.start,
        end: row.end,
        week: row.week,
        working_days: working_days(row.start, row.end, &row.week, &BTreeSet::new()).len(),
        members,
        workflows: row.workflows.clone(),
        focus_factor: row.focus_factor,
        capacity: row.capacity,
        committed: row.committed,
        completed: row.completed,
        tasks: tasks as usize,
        created_at: row.created_at,
        started_at: row.started_at,
        closed_at: row.closed_at,
    })
}

fn load_members(conn: &Tx<'_>, sprint: i64) -> Result<Vec<MemberSpec>> {
    let mut stmt = conn.prepare_cached(
        "SELECT agent, availability, days_off FROM sprint_members WHERE sprint = ?1 ORDER BY agent",
    )?;
    let rows = stmt.query_map([sprint], |row| {
        let days: String = row.get(2)?;
        Ok(MemberSpec {
            agent: row.get(0)?,
            availability: row.get(1)?,
            days_off: days.split(',').filter_map(|d| d.parse().ok()).collect(),
        })
    })?;
    rows.collect::<Result<Vec<_>>>()
}
