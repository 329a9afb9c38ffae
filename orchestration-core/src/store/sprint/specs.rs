//! What callers give and get back from the sprint use cases: sprint and member specs,
//! summaries, plans, scope edits, forecasts, analytics and retrospectives.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::sprint::{
    Accuracy, Capacity, Contribution, Finding, FocusSource, Plan, SprintReport, SprintStatus,
    Velocity, WorkWeek,
};
use crate::store::refs::WorkflowRef;

use super::DEFAULT_TRIALS;
use crate::workflow::TaskState;

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
    pub(super) fn planning_arguments(&self) -> Vec<&'static str> {
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
