//! Sprint use cases, one transaction each: planning (a dry run, saving a planned sprint,
//! starting one with its commitment snapshot), scope changes and re-estimates, analytics, and
//! the retrospective that closes a sprint and carries its unfinished work over.

use std::collections::{BTreeSet, HashMap};

use super::db::{OptionalExtension, Row, Tx, params};
use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::from_millis;
use crate::error::{Error, Result};
use crate::limits::{self, MAX_SCOPE_EDIT, MAX_SPRINT_DAYS, MAX_TRIALS};
use crate::sprint::{
    Accuracy, Capacity, ClosedSprint, Contribution, CutDependency, DraftInput, Finding,
    FindingsInput, Member, Plan, ScopeItem, SprintAttempt, SprintReport, SprintStatus, Velocity,
    Window, WorkWeek, accuracy, capacity, check_window, contributions, draft, findings, focus_for,
    forecast, plan_warnings, removal_warnings, sprint_report, velocity, working_days,
};
pub use crate::sprint::{DEFAULT_FOCUS_FACTOR, FocusSource};
use crate::workflow::{TaskState, check_argument_name};

use super::attempts::attempt_end;
use super::event::{EventKind, NewEvent, append};
use super::refs::{TaskRow, WorkflowRef, WorkflowRow};
use super::sql::{self, UNFINISHED, query};
use super::task::check_length;
use super::workflow::rerank;
use super::{Store, TaskRef, millis};

/// Monte Carlo trials when the caller does not say.
pub const DEFAULT_TRIALS: u32 = 10_000;

/// Closed sprints whose daily throughput feeds a forecast.
const FORECAST_HISTORY_SPRINTS: usize = 3;

/// A member of a sprint as the caller gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSpec {
    /// The agent; it needs a profile.
    pub agent: String,
    /// Share of their time on the sprint, 0 to 1.
    pub availability: f64,
    /// Days they do not work.
    pub days_off: BTreeSet<NaiveDate>,
}

impl MemberSpec {
    /// `agent`, fully available, no days off.
    pub fn new(agent: impl Into<String>) -> MemberSpec {
        MemberSpec {
            agent: agent.into(),
            availability: 1.0,
            days_off: BTreeSet::new(),
        }
    }

    /// With this availability.
    pub fn availability(mut self, availability: f64) -> MemberSpec {
        self.availability = availability;
        self
    }

    /// With these days off.
    pub fn days_off(mut self, days: impl IntoIterator<Item = NaiveDate>) -> MemberSpec {
        self.days_off.extend(days);
        self
    }
}

/// What to plan: a new sprint, or changes to a planned one (fields left out keep their saved
/// values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SprintSpec {
    /// Unique name.
    pub name: String,
    /// What the sprint is for.
    pub goal: Option<String>,
    /// First day; required for a new sprint.
    pub start: Option<NaiveDate>,
    /// Last day (included); required for a new sprint.
    pub end: Option<NaiveDate>,
    /// Working days; Monday to Friday by default.
    pub week: Option<WorkWeek>,
    /// Members; required for a new sprint.
    pub members: Vec<MemberSpec>,
    /// The focus factor; learnt from the last closed sprints when left out.
    pub focus_factor: Option<f64>,
    /// Workflows whose tasks may be chosen; all when empty.
    pub workflows: Vec<WorkflowRef>,
    /// Points to plan to; by default the velocity, or the capacity without history.
    pub commit: Option<f64>,
}

impl SprintSpec {
    /// A sprint `name` from `start` to `end`.
    pub fn new(name: impl Into<String>, start: NaiveDate, end: NaiveDate) -> SprintSpec {
        SprintSpec {
            name: name.into(),
            start: Some(start),
            end: Some(end),
            ..SprintSpec::default()
        }
    }

    /// With this member.
    pub fn member(mut self, member: MemberSpec) -> SprintSpec {
        self.members.push(member);
        self
    }

    /// The planning arguments this spec gives, by their parameter names. A start of a planned
    /// sprint refuses them all: it commits what was saved, and any of them would plan again.
    fn planning_arguments(&self) -> Vec<&'static str> {
        [
            ("start", self.start.is_some()),
            ("end", self.end.is_some()),
            ("work_days", self.week.is_some()),
            ("members", !self.members.is_empty()),
            ("focus_factor", self.focus_factor.is_some()),
            ("workflows", !self.workflows.is_empty()),
            ("commit", self.commit.is_some()),
            ("goal", self.goal.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// A sprint as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintSummary {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub goal: Option<String>,
    /// Where it is in its life.
    pub status: SprintStatus,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// Working days of the week.
    pub week: WorkWeek,
    /// Working days from start to end.
    pub working_days: usize,
    /// Members.
    pub members: Vec<MemberSpec>,
    /// The workflows planning chooses from; all when empty.
    pub workflows: Vec<String>,
    /// The focus factor computed when the sprint was saved as planned; the start keeps it.
    pub focus_factor: Option<f64>,
    /// Capacity in points computed when the sprint was saved as planned; the start keeps it.
    pub capacity: Option<f64>,
    /// The commitment snapshot.
    pub committed: Option<f64>,
    /// Points completed, fixed at the close.
    pub completed: Option<f64>,
    /// Tasks in it now (or when it closed).
    pub tasks: usize,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// A sprint plan: what planning chose and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintPlan {
    /// The sprint as it is after the call (or would be, for a dry run).
    pub sprint: SprintSummary,
    /// Capacity per member and in total.
    pub capacity: Capacity,
    /// Capacity before the focus factor.
    pub raw_capacity: f64,
    /// Where the focus factor came from.
    pub focus: FocusSource,
    /// Velocity of the closed sprints.
    pub velocity: Option<Velocity>,
    /// The commitment velocity recommends (the capacity without history).
    pub recommended: f64,
    /// The points planning filled to; for the start of a planned sprint, which plans nothing
    /// again, the points it committed.
    pub target: f64,
    /// Chosen tasks, allocation and what was left out. After a start, exactly the tasks
    /// committed and their points, in the order they joined the sprint.
    pub plan: Plan,
    /// Over-commitment and other things to look at.
    pub warnings: Vec<String>,
    /// Whether anything was written.
    pub saved: bool,
}

/// The result of adding or removing tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeEdit {
    /// The sprint.
    pub sprint: String,
    /// Tasks that joined or left.
    pub changed: Vec<String>,
    /// Tasks named that were already as asked.
    pub unchanged: Vec<String>,
    /// Their points, summed.
    pub points: f64,
    /// The sprint's scope in points afterwards.
    pub scope: f64,
    /// What to look at: after a removal, each unfinished task still in the sprint that
    /// depends directly on an unfinished task that left it.
    pub warnings: Vec<String>,
}

/// A Monte Carlo forecast of when the sprint's remaining work is done.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintForecast {
    /// Points left.
    pub remaining: f64,
    /// Working days of throughput history sampled.
    pub history_days: usize,
    /// Working days left to the sprint's end, today included.
    pub days_left: u32,
    /// Dates by which 50, 85 and 95 % of the trials finished.
    pub p50: NaiveDate,
    /// 85 %: the date to promise.
    pub p85: NaiveDate,
    /// 95 %.
    pub p95: NaiveDate,
    /// Share of the trials that finished by the sprint's end.
    pub probability_by_end: f64,
    /// Trials run.
    pub trials: u32,
    /// The seed: the same seed and data give the same forecast.
    pub seed: u64,
}

/// How to run a sprint's analytics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyticsOptions {
    /// Monte Carlo trials.
    pub trials: u32,
    /// The seed; derived from the sprint when left out.
    pub seed: Option<u64>,
}

impl Default for AnalyticsOptions {
    fn default() -> Self {
        AnalyticsOptions {
            trials: DEFAULT_TRIALS,
            seed: None,
        }
    }
}

/// A task not finished in the sprint.
#[derive(Debug, Clone, PartialEq)]
pub struct CarryOver {
    /// `workflow/key`.
    pub task: String,
    /// Its points.
    pub points: f64,
    /// Its state.
    pub state: TaskState,
    /// Sprints it was carried out of before this one.
    pub times_carried: u32,
}

/// A task that failed, was cancelled or is blocked.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// `workflow/key`.
    pub task: String,
    /// Its state.
    pub state: TaskState,
    /// Why.
    pub reason: String,
}

/// A sprint's analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintAnalytics {
    /// The sprint.
    pub sprint: SprintSummary,
    /// Burndown, burnup, totals, scope changes and flow.
    pub report: SprintReport,
    /// Completed points of the closed sprints before it, oldest first (at most the last 7).
    pub velocity_history: Vec<(String, f64)>,
    /// Their velocity.
    pub velocity: Option<Velocity>,
    /// Unfinished tasks.
    pub carry_over: Vec<CarryOver>,
    /// When the rest will be done; `None` for a closed sprint, or without history.
    pub forecast: Option<SprintForecast>,
    /// Why there is no forecast.
    pub forecast_note: Option<String>,
}

/// What a retrospective does besides reporting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetrospectiveOptions {
    /// Close the sprint.
    pub close: bool,
    /// Move the unfinished tasks into this sprint (with `close`).
    pub next: Option<String>,
}

/// A sprint's retrospective.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrospective {
    /// The sprint (closed, when the call closed it).
    pub sprint: SprintSummary,
    /// Burndown, burnup, totals, scope changes and flow.
    pub report: SprintReport,
    /// Unfinished tasks.
    pub carry_over: Vec<CarryOver>,
    /// The sprint they moved into.
    pub moved_to: Option<String>,
    /// Estimates against reported effort.
    pub accuracy: Option<Accuracy>,
    /// Per agent, what it completed.
    pub contributions: Vec<Contribution>,
    /// Failed, cancelled and blocked tasks.
    pub problems: Vec<Problem>,
    /// What the numbers say and what to do.
    pub findings: Vec<Finding>,
    /// Velocity of the sprints closed before it.
    pub velocity: Option<Velocity>,
    /// Whether this call closed it.
    pub closed: bool,
}

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

/// Validates `spec` against what is stored and plans it: the dry run that `create` and `start`
/// then save.
fn prepare(
    conn: &Tx<'_>,
    spec: &SprintSpec,
    now: DateTime<Utc>,
    action: &'static str,
) -> Result<SprintPlan> {
    check_argument_name("name", "sprint name", &spec.name)?;
    if let Some(goal) = &spec.goal {
        check_length("goal", goal, limits::MAX_TITLE_LEN * 5)?;
    }
    let existing = SprintRow::find(conn, &spec.name)?;
    if let Some(row) = &existing
        && row.status != SprintStatus::Planned
    {
        return Err(Error::IllegalSprintAction {
            sprint: row.name.clone(),
            status: row.status,
            action,
        });
    }
    let required = |field: &str| Error::InvalidArgument {
        field: field.into(),
        reason: "is required for a new sprint".into(),
    };
    let start = spec
        .start
        .or(existing.as_ref().map(|r| r.start))
        .ok_or_else(|| required("start"))?;
    let end = spec
        .end
        .or(existing.as_ref().map(|r| r.end))
        .ok_or_else(|| required("end"))?;
    let week = spec
        .week
        .or(existing.as_ref().map(|r| r.week))
        .unwrap_or_default();
    check_window(start, end, &week)?;
    let member_specs = if spec.members.is_empty() {
        match &existing {
            Some(row) => load_members(conn, row.id)?,
            None => Vec::new(),
        }
    } else {
        spec.members.clone()
    };
    if member_specs.is_empty() {
        return Err(Error::InvalidArgument {
            field: "members".into(),
            reason: "a sprint needs at least one member".into(),
        });
    }
    let members = check_members(
        conn,
        &member_specs,
        existing.as_ref().map(|r| r.id),
        start,
        end,
    )?;

    let history = closed_sprints(conn)?;
    let closed = learning_history(&history);
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();

    // The backlog's workflows: those given, or those a planned sprint was saved with.
    let chosen: Vec<WorkflowRow> = if spec.workflows.is_empty() {
        existing
            .iter()
            .flat_map(|r| r.workflows.iter())
            .map(|name| WorkflowRow::resolve(conn, &WorkflowRef::Name(name.clone())))
            .collect::<Result<_>>()?
    } else {
        spec.workflows
            .iter()
            .map(|w| WorkflowRow::resolve(conn, w))
            .collect::<Result<_>>()?
    };
    let workflows: Vec<i64> = chosen.iter().map(|w| w.id).collect();
    let backlog = backlog(conn, existing.as_ref().map(|r| r.id), &workflows)?;
    let input = DraftInput {
        start,
        end,
        week,
        members: &members,
        focus_factor: spec.focus_factor,
        commit: spec.commit,
        closed: &closed,
        completed: &completed,
    };
    let draft = draft(&input, &backlog.candidates, &backlog.pinned)?;
    let sprint = SprintSummary {
        name: spec.name.clone(),
        goal: spec
            .goal
            .clone()
            .or_else(|| existing.as_ref().and_then(|r| r.goal.clone())),
        status: SprintStatus::Planned,
        start,
        end,
        week,
        working_days: working_days(start, end, &week, &BTreeSet::new()).len(),
        members: member_specs,
        workflows: chosen.into_iter().map(|w| w.name).collect(),
        focus_factor: None,
        capacity: None,
        committed: None,
        completed: None,
        tasks: draft.plan.selected.len(),
        created_at: existing.as_ref().map_or(now, |r| r.created_at),
        started_at: None,
        closed_at: None,
    };
    Ok(SprintPlan {
        sprint,
        capacity: draft.capacity,
        raw_capacity: draft.raw_capacity,
        focus: draft.focus,
        velocity: draft.velocity,
        recommended: draft.recommended,
        target: draft.target,
        plan: draft.plan,
        warnings: draft.warnings,
        saved: false,
    })
}

/// The closed sprints a focus factor can be learnt from: those that kept both their
/// completed points and their raw capacity.
fn learning_history(history: &[SprintRow]) -> Vec<ClosedSprint> {
    history
        .iter()
        .filter_map(|s| {
            Some(ClosedSprint {
                completed: s.completed?,
                raw_capacity: s.raw_capacity?,
            })
        })
        .collect()
}

fn check_members(
    conn: &Tx<'_>,
    specs: &[MemberSpec],
    sprint: Option<i64>,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<Member>> {
    let mut seen = BTreeSet::new();
    let mut members = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if !seen.insert(spec.agent.as_str()) {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].agent"),
                reason: format!("`{}` is listed twice", spec.agent),
            });
        }
        if !(spec.availability.is_finite() && (0.0..=1.0).contains(&spec.availability)) {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].availability"),
                reason: format!(
                    "{} is not from 0 to 1 (the share of `{}`'s time on the sprint)",
                    spec.availability, spec.agent
                ),
            });
        }
        if spec.days_off.len() > MAX_SPRINT_DAYS as usize {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].days_off"),
                reason: format!("at most {MAX_SPRINT_DAYS} days"),
            });
        }
        let profile = super::agent::registered(conn, &spec.agent)?;
        if profile.status == crate::agent::AgentStatus::Retired {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].agent"),
                reason: format!("`{}` is retired", spec.agent),
            });
        }
        let overlap = conn
            .prepare_cached(
                "SELECT s.name, s.start_date, s.end_date FROM sprint_members m \
                 JOIN sprints s ON s.id = m.sprint \
                 WHERE m.agent = ?1 AND s.status != ?5 AND s.id != ?2 \
                 AND s.start_date <= ?4 AND s.end_date >= ?3 LIMIT 1",
            )?
            .query_row(
                params![
                    spec.agent,
                    sprint.unwrap_or(-1),
                    start.to_string(),
                    end.to_string(),
                    SprintStatus::Closed.as_str()
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        if let Some((other, from, to)) = overlap {
            return Err(Error::SprintOverlap {
                agent: spec.agent.clone(),
                sprint: other,
                start: from.parse().unwrap_or(start),
                end: to.parse().unwrap_or(end),
            });
        }
        members.push(Member {
            agent: spec.agent.clone(),
            availability: spec.availability,
            days_off: spec.days_off.clone(),
            points_per_day: profile.points_per_day,
            skills: profile.capabilities,
        });
    }
    Ok(members)
}

/// What planning may choose from.
struct Backlog {
    candidates: Vec<crate::sprint::BacklogItem>,
    /// Tasks already in the sprint being planned.
    pinned: Vec<String>,
}

/// Unfinished tasks not in another open sprint, of `workflows` (all when empty), with their
/// unfinished dependencies; tasks already in `sprint` are pinned.
fn backlog(conn: &Tx<'_>, sprint: Option<i64>, workflows: &[i64]) -> Result<Backlog> {
    let sql = query!(
        "SELECT t.id, w.name || '/' || t.key, t.estimate, t.priority, t.b_level, t.workflow, \
         (SELECT st.sprint FROM sprint_tasks st WHERE st.task = t.id AND st.current = 1) \
         FROM tasks t JOIN workflows w ON w.id = t.workflow WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    );
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut elsewhere: BTreeSet<i64> = BTreeSet::new();
    let mut candidates = Vec::new();
    let mut pinned = Vec::new();
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let in_sprint: Option<i64> = row.get(6)?;
        let workflow: i64 = row.get(5)?;
        let task: String = row.get(1)?;
        match in_sprint {
            Some(s) if Some(s) == sprint => pinned.push(task.clone()),
            Some(_) => {
                elsewhere.insert(id);
                continue;
            }
            None if !workflows.is_empty() && !workflows.contains(&workflow) => continue,
            None => {}
        }
        index.insert(id, candidates.len());
        candidates.push(crate::sprint::BacklogItem {
            task,
            estimate: row.get(2)?,
            priority: row.get(3)?,
            b_level: row.get(4)?,
            skills: Default::default(),
            depends_on: Vec::new(),
        });
    }
    let mut stmt = conn.prepare_cached(query!(
        "SELECT ts.task, ts.skill, ts.level FROM task_skills ts JOIN tasks t ON t.id = ts.task \
         WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
            candidates[i].skills.insert(row.get(1)?, row.get(2)?);
        }
    }
    // Only unfinished dependencies matter; one planned in another open sprint is taken as
    // scheduled, and one outside the chosen workflows cannot be (dependencies stay within a
    // workflow).
    let mut stmt = conn.prepare_cached(query!(
        "SELECT d.task, d.dep FROM deps d JOIN tasks t ON t.id = d.dep WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (task, dep): (i64, i64) = (row.get(0)?, row.get(1)?);
        if let (Some(&i), Some(&d)) = (index.get(&task), index.get(&dep)) {
            let name = candidates[d].task.clone();
            candidates[i].depends_on.push(name);
        }
    }
    Ok(Backlog { candidates, pinned })
}

/// Saves a planned sprint: the row with the capacity and focus factor planning computed (a
/// start keeps them), its members and the chosen tasks. Returns its id.
fn save(tx: &Tx<'_>, now: DateTime<Utc>, spec: &SprintSpec, planned: &SprintPlan) -> Result<i64> {
    let s = &planned.sprint;
    let id = match SprintRow::find(tx, &spec.name)? {
        Some(row) => {
            tx.prepare_cached(
                "UPDATE sprints SET goal = ?2, start_date = ?3, end_date = ?4, work_week = ?5, \
                 workflows = ?6, focus_factor = ?7, raw_capacity = ?8, capacity = ?9 \
                 WHERE id = ?1",
            )?
            .execute(params![
                row.id,
                s.goal,
                s.start.to_string(),
                s.end.to_string(),
                s.week.bits(),
                s.workflows.join(","),
                planned.capacity.focus_factor,
                planned.raw_capacity,
                planned.capacity.points,
                SprintStatus::Planned.as_str()
            ])?;
            row.id
        }
        None => {
            let id = tx
                .prepare_cached(
                    "INSERT INTO sprints (name, goal, start_date, end_date, work_week, status, \
                 created_at, workflows, focus_factor, raw_capacity, capacity) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?11, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                )?
                .insert(params![
                    s.name,
                    s.goal,
                    s.start.to_string(),
                    s.end.to_string(),
                    s.week.bits(),
                    millis(now),
                    s.workflows.join(","),
                    planned.capacity.focus_factor,
                    planned.raw_capacity,
                    planned.capacity.points,
                    SprintStatus::Planned.as_str()
                ])?;
            append(
                tx,
                now,
                EventKind::SprintStatus,
                NewEvent {
                    sprint: Some(id),
                    detail: Some(SprintStatus::Planned.as_str()),
                    ..NewEvent::default()
                },
            )?;
            id
        }
    };
    tx.prepare_cached("DELETE FROM sprint_members WHERE sprint = ?1")?
        .execute([id])?;
    for member in &s.members {
        let days: Vec<String> = member.days_off.iter().map(|d| d.to_string()).collect();
        tx.prepare_cached(
            "INSERT INTO sprint_members (sprint, agent, availability, days_off) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            id,
            member.agent,
            member.availability,
            days.join(",")
        ])?;
    }
    let allocated: HashMap<&str, &str> = planned
        .plan
        .allocation
        .iter()
        .flat_map(|(agent, (tasks, _))| tasks.iter().map(move |t| (t.as_str(), agent.as_str())))
        .collect();
    for name in &planned.plan.selected {
        let task = TaskRow::resolve(tx, &name.parse()?)?;
        let member = allocated.get(name.as_str()).copied();
        if current_sprint_of(tx, task.id)?.is_none() {
            join(tx, now, id, &task, "added", member)?;
        } else {
            // Already in this sprint (carried over, or chosen earlier): planning may have
            // allocated it afresh.
            tx.prepare_cached(
                "UPDATE sprint_tasks SET planned_for = ?2 WHERE task = ?1 AND current = 1",
            )?
            .execute(params![task.id, member])?;
        }
    }
    Ok(id)
}

/// Takes the commitment snapshot: every task in the sprint now is committed at its estimate
/// now.
fn freeze(tx: &Tx<'_>, now: DateTime<Utc>, sprint: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE sprint_tasks SET in_commitment = 1, added_at = ?2, \
         estimate = (SELECT estimate FROM tasks WHERE id = sprint_tasks.task) \
         WHERE sprint = ?1 AND current = 1",
    )?
    .execute(params![sprint, millis(now)])?;
    Ok(())
}

/// The tasks in the sprint now, in the order they joined, with their points and the members
/// planning allocated them to.
fn committed_plan(conn: &Tx<'_>, sprint: i64) -> Result<Plan> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.name || '/' || t.key, st.estimate, st.planned_for FROM sprint_tasks st \
         JOIN tasks t ON t.id = st.task JOIN workflows w ON w.id = t.workflow \
         WHERE st.sprint = ?1 AND st.current = 1 ORDER BY st.id",
    )?;
    let mut plan = Plan::default();
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        let task: String = row.get(0)?;
        let estimate: f64 = row.get(1)?;
        if let Some(member) = row.get::<_, Option<String>>(2)? {
            let entry = plan.allocation.entry(member).or_default();
            entry.0.push(task.clone());
            entry.1 += estimate;
        }
        plan.points += estimate;
        plan.selected.push(task);
    }
    Ok(plan)
}

/// A planned sprint as it was saved, for its start: the tasks in it now (committed by
/// [`freeze`] before this is called), and the capacity and focus factor computed when it was
/// saved.
fn saved_plan(conn: &Tx<'_>, row: &SprintRow) -> Result<SprintPlan> {
    let mut members = Vec::new();
    for spec in load_members(conn, row.id)? {
        let profile = super::agent::load_profile(conn, &spec.agent)?;
        members.push(Member {
            points_per_day: profile.as_ref().map_or(0.0, |p| p.points_per_day),
            skills: profile.map(|p| p.capabilities).unwrap_or_default(),
            agent: spec.agent,
            availability: spec.availability,
            days_off: spec.days_off,
        });
    }
    let history = closed_sprints(conn)?;
    let mut warnings = Vec::new();
    let (focus_factor, focus) = match row.focus_factor {
        Some(f) => (f, FocusSource::Saved),
        // A sprint saved before plans kept their focus factor learns it now, as planning would.
        None => focus_for(None, &learning_history(&history), &mut warnings)?,
    };
    let mut capacity = capacity(row.start, row.end, &row.week, &members, focus_factor);
    let mut raw_capacity =
        crate::sprint::capacity(row.start, row.end, &row.week, &members, 1.0).points;
    if let (Some(saved), Some(saved_raw)) = (row.capacity, row.raw_capacity) {
        // Members' points per day may have changed since; the sprint keeps the capacity it
        // was planned against, and says so.
        if (saved - capacity.points).abs() > 1e-9 {
            warnings.push(format!(
                "members' points per day changed since the sprint was saved: it keeps the \
                 capacity of {saved:.1} points planned then (their profiles now give {:.1}); \
                 re-plan it with action=create to use them",
                capacity.points
            ));
        }
        capacity.points = saved;
        raw_capacity = saved_raw;
    }
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();
    let velocity = velocity(&completed);
    let plan = committed_plan(conn, row.id)?;
    warnings.extend(plan_warnings(plan.points, plan.points, &capacity, velocity));
    Ok(SprintPlan {
        sprint: summary(conn, row, row.id)?,
        recommended: velocity.map_or(capacity.points, |v| v.mean),
        target: plan.points,
        capacity,
        raw_capacity,
        focus,
        velocity,
        plan,
        warnings,
        saved: false,
    })
}

/// The closed sprints, oldest first.
fn closed_sprints(conn: &Tx<'_>) -> Result<Vec<SprintRow>> {
    let sql = query!(
        "SELECT {SPRINT_COLUMNS} FROM sprints WHERE status = {} ORDER BY end_date, closed_at",
        sql::lit(SprintStatus::Closed.as_str())
    );
    conn.prepare_cached(sql)?
        .query_map([], SprintRow::from_row)?
        .collect::<Result<Vec<_>>>()
}

/// The closed sprints that ended before `row` ended, other than it, oldest first.
fn closed_before(conn: &Tx<'_>, row: &SprintRow) -> Result<Vec<SprintRow>> {
    Ok(closed_sprints(conn)?
        .into_iter()
        .filter(|s| s.id != row.id && s.end <= row.end)
        .collect())
}

fn window(row: &SprintRow, as_of: DateTime<Utc>) -> Window {
    Window {
        start: row.start,
        end: row.end,
        week: row.week,
        started_at: row.started_at,
        as_of,
    }
}

/// Every stay of a task in the sprint, with its estimates over time from the event log: the
/// task ids and the items, in the same order.
fn stays(conn: &Tx<'_>, sprint: i64) -> Result<(Vec<i64>, Vec<ScopeItem>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT st.task, w.name || '/' || t.key, st.added_at, st.removed_at, st.estimate, \
         st.in_commitment, st.carried_over, t.state, t.first_started_at, t.finished_at, \
         t.done_by, t.actual, t.attempt, coalesce(t.error, t.reason), t.unmet \
         FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
         JOIN workflows w ON w.id = t.workflow WHERE st.sprint = ?1 ORDER BY st.id",
    )?;
    let mut ids = Vec::new();
    let mut items = Vec::new();
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        ids.push(row.get::<_, i64>(0)?);
        let state = super::refs::parse_column(&row, 7, |s| s.parse::<TaskState>().ok())?;
        let unmet: i64 = row.get(14)?;
        let problem: Option<String> = row.get(13)?;
        items.push(ScopeItem {
            task: row.get(1)?,
            added_at: from_millis(row.get(2)?),
            removed_at: row.get::<_, Option<i64>>(3)?.map(from_millis),
            estimate_at_add: row.get(4)?,
            estimates: Vec::new(),
            in_commitment: row.get(5)?,
            carried_over: row.get(6)?,
            state,
            started_at: row.get::<_, Option<i64>>(8)?.map(from_millis),
            finished_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
            done_by: row.get(10)?,
            actual: row.get(11)?,
            attempts: row.get(12)?,
            problem: problem.or_else(|| {
                (state == TaskState::Pending && unmet > 0).then(|| {
                    format!(
                        "waiting on {}",
                        crate::text::counted(unmet.max(0) as u64, "unfinished dependency")
                    )
                })
            }),
        });
    }
    let mut by_task: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        by_task.entry(*id).or_default().push(i);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT task, at, value FROM events WHERE sprint = ?1 AND kind = 'estimate_changed' \
         ORDER BY seq",
    )?;
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        let (task, at, value): (i64, i64, f64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let at = from_millis(at);
        for &i in by_task.get(&task).into_iter().flatten() {
            // Only estimates made during this stay count; the stay began with the estimate
            // then.
            let item = &mut items[i];
            if at > item.added_at && item.removed_at.is_none_or(|r| at < r) {
                item.estimates.push((at, value));
            }
        }
    }
    Ok((ids, items))
}

/// Every finished attempt at a task that was ever in the sprint, from the event log, read as
/// agent performance reads attempts.
fn attempts(conn: &Tx<'_>, sprint: i64) -> Result<Vec<SprintAttempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.at, e.agent, w.name || '/' || t.key, e.to_state, e.detail FROM events e \
         JOIN tasks t ON t.id = e.task JOIN workflows w ON w.id = t.workflow \
         WHERE e.kind = ?2 AND e.from_state = ?3 AND e.agent IS NOT NULL \
         AND e.task IN (SELECT task FROM sprint_tasks WHERE sprint = ?1) ORDER BY e.seq",
    )?;
    let mut attempts = Vec::new();
    let mut rows = stmt.query(params![
        sprint,
        EventKind::TaskState.as_str(),
        TaskState::Running.as_str()
    ])?;
    while let Some(row) = rows.next()? {
        let to_state = row.get_ref(3)?.as_str().unwrap_or_default();
        let detail = row.get_ref(4)?.as_str_or_null().ok().flatten();
        if let Some(end) = attempt_end(to_state, detail) {
            attempts.push(SprintAttempt {
                task: row.get(2)?,
                agent: row.get(1)?,
                ended_at: from_millis(row.get(0)?),
                end,
            });
        }
    }
    Ok(attempts)
}

fn carry_over(
    conn: &Tx<'_>,
    sprint: i64,
    ids: &[i64],
    items: &[ScopeItem],
    as_of: DateTime<Utc>,
) -> Result<Vec<CarryOver>> {
    // How often each task was carried out of an earlier sprint before its stay in this one.
    let mut carried: HashMap<i64, u32> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT cur.task, count(*) FROM sprint_tasks cur JOIN sprint_tasks prev \
         ON prev.task = cur.task AND prev.carried_over = 1 AND prev.sprint != cur.sprint \
         AND prev.added_at < cur.added_at WHERE cur.sprint = ?1 GROUP BY cur.task",
    )?;
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        carried.insert(row.get(0)?, row.get(1)?);
    }
    Ok(ids
        .iter()
        .zip(items)
        .filter(|(_, i)| i.in_scope_at(as_of) && !i.done_at(as_of) && !i.state.is_terminal())
        .map(|(id, item)| CarryOver {
            task: item.task.clone(),
            points: item.estimate_at(as_of),
            state: item.state,
            times_carried: carried.get(id).copied().unwrap_or(0),
        })
        .collect())
}

fn sprint_forecast(
    row: &SprintRow,
    report: &SprintReport,
    history: &[SprintRow],
    as_of: DateTime<Utc>,
    options: &AnalyticsOptions,
) -> (Option<SprintForecast>, Option<String>) {
    if row.status == SprintStatus::Closed {
        return (None, Some("the sprint is closed".into()));
    }
    let remaining = report.totals.scope - report.totals.completed;
    // Throughput per working day: the last closed sprints, then the days of this one that are
    // over (today is still going).
    let mut days: Vec<f64> = history
        .iter()
        .rev()
        .take(FORECAST_HISTORY_SPRINTS)
        .rev()
        .flat_map(|s| s.daily_done.iter().copied())
        .collect();
    let today = as_of.date_naive();
    days.extend(
        report
            .days
            .iter()
            .zip(&report.daily_done)
            .filter(|(day, _)| day.date < today)
            .map(|(_, done)| *done),
    );
    let first = if today < row.start { row.start } else { today };
    let days_left = if first > row.end {
        0
    } else {
        working_days(first, row.end, &row.week, &BTreeSet::new()).len() as u32
    };
    let seed = options
        .seed
        .unwrap_or(0x5EED_0000_0000_0000 ^ row.id as u64);
    let Some(result) = forecast(remaining, &days, days_left, options.trials, seed) else {
        return (
            None,
            Some(if days.is_empty() {
                "no throughput history yet: a forecast needs a closed sprint or a finished working day".into()
            } else {
                "nothing was finished on any working day of the history, so no finish can be forecast".into()
            }),
        );
    };
    let date = |n: u32| row.week.nth_working_day(first, n);
    (
        Some(SprintForecast {
            remaining,
            history_days: days.len(),
            days_left,
            p50: date(result.p50),
            p85: date(result.p85),
            p95: date(result.p95),
            probability_by_end: result.probability_by_end,
            trials: result.trials,
            seed,
        }),
        None,
    )
}

fn retrospective(
    tx: &Tx<'_>,
    name: &str,
    now: DateTime<Utc>,
    options: &RetrospectiveOptions,
) -> Result<Retrospective> {
    let mut row = SprintRow::resolve(tx, name)?;
    if options.close && row.status != SprintStatus::Active {
        return Err(Error::IllegalSprintAction {
            sprint: row.name,
            status: row.status,
            action: if row.status == SprintStatus::Closed {
                "be closed again"
            } else {
                "be closed before it starts"
            },
        });
    }
    let next = match &options.next {
        Some(next) if *next == row.name => {
            return Err(Error::InvalidArgument {
                field: "next".into(),
                reason: "unfinished tasks cannot move into the sprint being closed".into(),
            });
        }
        Some(next) => Some(open_sprint(tx, next, "gain tasks")?),
        None => None,
    };
    let as_of = row.as_of(now);
    let (ids, items) = stays(tx, row.id)?;
    let report = sprint_report(&window(&row, as_of), &items);
    let history = closed_before(tx, &row)?;
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();
    let velocity = velocity(&completed);
    let carry_over = carry_over(tx, row.id, &ids, &items, as_of)?;
    let pairs: Vec<(f64, f64)> = items
        .iter()
        .filter(|i| i.in_scope_at(as_of) && i.done_at(as_of))
        .filter_map(|i| Some((i.estimate_at(as_of), i.actual?)))
        .collect();
    let accuracy = accuracy(&pairs);
    let problems: Vec<Problem> = items
        .iter()
        .filter(|i| i.in_scope_at(as_of) && !i.done_at(as_of))
        .filter(|i| {
            (i.state.is_terminal() && i.state != TaskState::Succeeded) || i.problem.is_some()
        })
        .map(|i| Problem {
            task: i.task.clone(),
            state: i.state,
            reason: i.problem.clone().unwrap_or_else(|| i.state.to_string()),
        })
        .collect();
    let failures: Vec<(String, String)> = problems
        .iter()
        .filter(|p| p.state.is_terminal())
        .map(|p| (p.task.clone(), p.reason.clone()))
        .collect();
    let stuck = report.flow.aging.iter().filter(|a| a.over_p85).count();
    let findings = findings(&FindingsInput {
        totals: &report.totals,
        started: row.started_at.is_some(),
        velocity,
        capacity: row.capacity,
        accuracy: accuracy.as_ref(),
        failures: &failures,
        stuck,
    });
    let contributions = contributions(&items, &attempts(tx, row.id)?, as_of);

    let mut moved_to = None;
    if options.close {
        close(tx, now, &row, &report, next.as_ref())?;
        moved_to = next.map(|n| n.name);
        row = SprintRow::resolve(tx, name)?;
    }
    Ok(Retrospective {
        sprint: summary(tx, &row, row.id)?,
        report,
        carry_over,
        moved_to,
        accuracy,
        contributions,
        problems,
        findings,
        velocity,
        closed: options.close,
    })
}

/// Closes the sprint: its completed points and daily throughput are fixed, its rows stop being
/// current, and unfinished tasks are carried over (into `next`, when given).
fn close(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    row: &SprintRow,
    report: &SprintReport,
    next: Option<&SprintRow>,
) -> Result<()> {
    let daily: Vec<String> = report.daily_done.iter().map(|d| format!("{d}")).collect();
    tx.prepare_cached(
        "UPDATE sprints SET status = ?5, closed_at = ?2, completed = ?3, daily_done = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![
        row.id,
        millis(now),
        report.totals.completed,
        daily.join(","),
        SprintStatus::Closed.as_str()
    ])?;
    append(
        tx,
        now,
        EventKind::SprintStatus,
        NewEvent {
            sprint: Some(row.id),
            value: Some(report.totals.completed),
            detail: Some(SprintStatus::Closed.as_str()),
            ..NewEvent::default()
        },
    )?;
    let unfinished: Vec<i64> = {
        let mut stmt = tx.prepare_cached(query!(
            "SELECT st.task FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
             WHERE st.sprint = ?1 AND st.current = 1 AND t.state IN {}",
            sql::states(&UNFINISHED)
        ))?;
        stmt.query_map([row.id], |r| r.get(0))?
            .collect::<Result<_>>()?
    };
    tx.prepare_cached(query!(
        "UPDATE sprint_tasks SET carried_over = 1 WHERE sprint = ?1 AND current = 1 \
         AND task IN (SELECT id FROM tasks WHERE state IN {})",
        sql::states(&UNFINISHED)
    ))?
    .execute([row.id])?;
    tx.prepare_cached("UPDATE sprint_tasks SET current = 0 WHERE sprint = ?1 AND current = 1")?
        .execute([row.id])?;
    for task in unfinished {
        let task = TaskRow::by_id(tx, task)?;
        append(
            tx,
            now,
            EventKind::SprintScope,
            NewEvent {
                sprint: Some(row.id),
                workflow: Some(task.workflow),
                task: Some(task.id),
                value: Some(task.estimate),
                detail: Some("carried_over"),
                ..NewEvent::default()
            },
        )?;
        if let Some(next) = next {
            join(tx, now, next.id, &task, "added", None)?;
        }
    }
    Ok(())
}

/// The part each member has of the active sprint it belongs to: its capacity (with the focus
/// factor fixed at the start), the points planning allocated to it, and those it completed and
/// holds.
pub(crate) fn sprint_loads(
    conn: &Tx<'_>,
    points_per_day: &HashMap<String, f64>,
) -> Result<HashMap<String, crate::sprint::SprintLoad>> {
    let sql = query!(
        "SELECT {SPRINT_COLUMNS} FROM sprints WHERE status = {}",
        sql::lit(SprintStatus::Active.as_str())
    );
    let sprints = conn
        .prepare_cached(sql)?
        .query_map([], SprintRow::from_row)?
        .collect::<Result<Vec<_>>>()?;
    let mut loads = HashMap::new();
    for sprint in sprints {
        for member in load_members(conn, sprint.id)? {
            let spec = Member {
                agent: member.agent.clone(),
                availability: member.availability,
                days_off: member.days_off,
                points_per_day: points_per_day.get(&member.agent).copied().unwrap_or(0.0),
                skills: Default::default(),
            };
            let capacity = capacity(
                sprint.start,
                sprint.end,
                &sprint.week,
                std::slice::from_ref(&spec),
                sprint.focus_factor.unwrap_or(DEFAULT_FOCUS_FACTOR),
            );
            loads.insert(
                member.agent,
                crate::sprint::SprintLoad {
                    sprint: sprint.name.clone(),
                    capacity: capacity.points,
                    allocated: 0.0,
                    done: 0.0,
                    in_flight: 0.0,
                },
            );
        }
        let mut stmt = conn.prepare_cached(
            "SELECT st.planned_for, t.agent, t.done_by, t.state, t.estimate \
             FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
             WHERE st.sprint = ?1 AND st.removed_at IS NULL",
        )?;
        let mut rows = stmt.query([sprint.id])?;
        while let Some(row) = rows.next()? {
            let estimate: f64 = row.get(4)?;
            let state: String = row.get(3)?;
            let mut add =
                |agent: Option<String>, f: fn(&mut crate::sprint::SprintLoad) -> &mut f64| {
                    if let Some(load) = agent.and_then(|a| loads.get_mut(&a))
                        && load.sprint == sprint.name
                    {
                        *f(load) += estimate;
                    }
                };
            add(row.get(0)?, |l| &mut l.allocated);
            if state == "succeeded" {
                add(row.get(2)?, |l| &mut l.done);
            } else {
                add(row.get(1)?, |l| &mut l.in_flight);
            }
        }
    }
    Ok(loads)
}
