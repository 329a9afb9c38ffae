//! Sprint tools: `sprint_planning`, `sprint_analytics` and `sprint_retrospective`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use orchestration_core::{
    TaskRef, limits, sprint::SprintReport, sprint::Velocity, sprint::WorkWeek, sprint::text_chart,
    store::AnalyticsOptions, store::FocusSource, store::MemberSpec, store::RetrospectiveOptions,
    store::SprintPlan, store::SprintSpec, store::SprintSummary, text::counted,
};
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::args::Parameters;
use crate::auth::check_operator;
use crate::error::ToolFailure;
use crate::output::{Cut, SHOWN, SHOWN_FULL, Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::workflow::DetailIn;
use crate::tools::{blocking, need, round, task_arg, time, unused};

/// Days of a burndown shown at most: a longer series is sampled evenly, first and last day
/// kept.
const DAYS_SHOWN: usize = 60;

/// Rows of the text charts in summaries.
const CHART_HEIGHT: usize = 6;

// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PlanningActionIn {
    Plan,
    Create,
    Start,
    Add,
    Remove,
    Estimate,
}

// A day of the week.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WeekdayIn {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberIn {
    agent: String,
    #[schemars(range(min = 0, max = 1), extend("default" = 1))]
    availability: Option<f64>,
    days_off: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanningIn {
    action: PlanningActionIn,
    #[schemars(pattern(limits::NAME_PATTERN))]
    name: Option<String>,
    /// YYYY-MM-DD
    start: Option<String>,
    end: Option<String>,
    goal: Option<String>,
    members: Option<Vec<MemberIn>>,
    /// Default mon-fri
    work_days: Option<Vec<WeekdayIn>>,
    /// Default learnt
    #[schemars(range(min = 0.01, max = 5))]
    focus_factor: Option<f64>,
    /// Backlog, default all
    workflows: Option<Vec<String>>,
    /// Points, default velocity
    #[schemars(range(min = 0))]
    commit: Option<f64>,
    tasks: Option<Vec<String>>,
    #[schemars(range(min = 0, max = 10000))]
    estimate: Option<f64>,
    detail: Option<DetailIn>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemberOut {
    agent: String,
    availability: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    days_off: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SprintOut {
    name: String,
    status: String,
    start: String,
    end: String,
    working_days: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<String>,
    /// In planning's answers; elsewhere their count
    #[serde(skip_serializing_if = "Vec::is_empty")]
    members: Vec<MemberOut>,
    member_count: usize,
    /// Backlog; empty for all
    #[serde(skip_serializing_if = "Vec::is_empty")]
    workflows: Vec<String>,
    tasks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    committed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    focus_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<String>,
}

impl SprintOut {
    /// The sprint with its members and backlog, for planning's answers.
    fn with_members(s: &SprintSummary, cut: &mut Cut) -> SprintOut {
        SprintOut {
            members: cut.take(
                "sprint.members",
                s.members.iter().map(|m| MemberOut {
                    agent: m.agent.clone(),
                    availability: m.availability,
                    days_off: m.days_off.iter().map(|d| d.to_string()).collect(),
                }),
                SHOWN_FULL,
            ),
            workflows: cut.take("sprint.workflows", s.workflows.iter().cloned(), SHOWN),
            ..SprintOut::from_summary(s)
        }
    }

    /// The sprint's headline: dates, status, numbers; members only counted.
    fn from_summary(s: &SprintSummary) -> SprintOut {
        SprintOut {
            name: s.name.clone(),
            status: s.status.to_string(),
            start: s.start.to_string(),
            end: s.end.to_string(),
            working_days: s.working_days,
            goal: s
                .goal
                .as_deref()
                .map(|g| crate::output::clip_json(g, 500).0),
            members: Vec::new(),
            member_count: s.members.len(),
            workflows: Vec::new(),
            tasks: s.tasks,
            committed: s.committed.map(|x| round(x, 2)),
            completed: s.completed.map(|x| round(x, 2)),
            capacity: s.capacity.map(|x| round(x, 2)),
            focus_factor: s.focus_factor.map(|x| round(x, 2)),
            started_at: s.started_at.map(time),
            closed_at: s.closed_at.map(time),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CapacityOut {
    agent: String,
    working_days: u32,
    available_days: f64,
    points: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VelocityOut {
    mean: f64,
    median: f64,
    std_dev: f64,
    sprints: usize,
}

impl From<Velocity> for VelocityOut {
    fn from(v: Velocity) -> Self {
        VelocityOut {
            mean: round(v.mean, 2),
            median: round(v.median, 2),
            std_dev: round(v.std_dev, 2),
            sprints: v.sprints,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AllocationOut {
    points: f64,
    tasks_total: usize,
    tasks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeftOutOut {
    task: String,
    reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanOut {
    capacity: f64,
    raw_capacity: f64,
    focus_factor: f64,
    /// given, learnt, default, or saved (a start keeps the plan's)
    focus_source: String,
    members: Vec<CapacityOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    velocity: Option<VelocityOut>,
    recommended: f64,
    target: f64,
    points: f64,
    selected: Vec<String>,
    allocation: BTreeMap<String, AllocationOut>,
    left_out: Vec<LeftOutOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    saved: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EditOut {
    changed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unchanged: Vec<String>,
    points: f64,
    scope: f64,
    /// remove: tasks left in the sprint that depend on a removed one
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EstimateOut {
    task: String,
    old: f64,
    new: f64,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct PlanningOut {
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
    #[serde(skip_serializing_if = "Option::is_none")]
    sprint: Option<SprintOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edit: Option<EditOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate: Option<EstimateOut>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalyticsIn {
    /// Omit to list all
    name: Option<String>,
    #[schemars(range(min = 1, max = 100000), extend("default" = 10000))]
    trials: Option<u32>,
    seed: Option<u64>,
    detail: Option<DetailIn>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The burndown and burnup, one column per series and one row per working day: the same
/// numbers as a list of days, in half the bytes.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct DaysOut {
    date: Vec<String>,
    scope: Vec<f64>,
    completed: Vec<f64>,
    in_progress: Vec<f64>,
    remaining: Vec<f64>,
    ideal: Vec<f64>,
}

impl DaysOut {
    fn from_points(days: &[&orchestration_core::sprint::BurnPoint]) -> DaysOut {
        let mut out = DaysOut::default();
        for d in days {
            out.date.push(d.date.to_string());
            out.scope.push(round(d.scope, 2));
            out.completed.push(round(d.completed, 2));
            out.in_progress.push(round(d.in_progress, 2));
            out.remaining.push(round(d.remaining, 2));
            out.ideal.push(round(d.ideal, 2));
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TotalsOut {
    committed: f64,
    added: f64,
    removed: f64,
    reestimated: f64,
    scope: f64,
    completed: f64,
    in_progress: f64,
    not_completed: f64,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    say_do: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope_creep: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    churn: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollover_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChangeOut {
    at: String,
    task: String,
    kind: String,
    points: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CarryOut {
    task: String,
    points: f64,
    state: String,
    times_carried: u32,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ForecastOut {
    remaining: f64,
    p50: String,
    p85: String,
    p95: String,
    probability_by_end: f64,
    days_left: u32,
    history_days: usize,
    trials: u32,
    seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgingOut {
    task: String,
    age_hours: f64,
    over_p85: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlowOut {
    done: usize,
    throughput_per_day: f64,
    wip: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p50_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p85_hours: Option<f64>,
    aging: Vec<AgingOut>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct AnalyticsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    sprint: Option<SprintOut>,
    /// Without `name`
    #[serde(skip_serializing_if = "Option::is_none")]
    sprints: Option<Vec<SprintOut>>,
    /// Burndown and burnup by working day, in columns
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<DaysOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totals: Option<TotalsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<ChangeOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    velocity: Option<VelocityOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    velocity_history: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carry_over: Option<Vec<CarryOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast: Option<ForecastOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrospectiveIn {
    name: String,
    close: Option<bool>,
    /// close: carry the rest into
    next: Option<String>,
    detail: Option<DetailIn>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccuracyOut {
    tasks: usize,
    /// mean ln(actual/estimate)
    bias: f64,
    ratio: f64,
    spread: f64,
    mmre: f64,
    mdmre: f64,
    pred25: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ContributionOut {
    agent: String,
    tasks: usize,
    points: f64,
    retries: u32,
    expired_leases: u32,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProblemOut {
    task: String,
    state: String,
    reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingOut {
    observation: String,
    action: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct RetrospectiveOut {
    sprint: SprintOut,
    totals: TotalsOut,
    carry_over: Vec<CarryOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    moved_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<AccuracyOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p50_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p85_hours: Option<f64>,
    contributions: Vec<ContributionOut>,
    problems: Vec<ProblemOut>,
    findings: Vec<FindingOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    velocity: Option<VelocityOut>,
    closed: bool,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

fn date(field: &str, value: &str) -> Result<NaiveDate, ToolFailure> {
    value
        .parse()
        .map_err(|_| ToolFailure::invalid(field, format!("`{value}` is not a YYYY-MM-DD date")))
}

fn tasks(refs: Option<Vec<String>>, action: &str) -> Result<Vec<TaskRef>, ToolFailure> {
    need(refs, "tasks", action)?
        .iter()
        .enumerate()
        .map(|(i, t)| task_arg(&format!("tasks[{i}]"), t, None))
        .collect()
}

/// The first few items of a list at `detail=summary` (a sprint's answers hold many lists),
/// more at `full`; a cut list is noted.
fn shown<T>(
    cut: &mut Cut,
    field: &'static str,
    items: impl IntoIterator<Item = T>,
    full: bool,
) -> Vec<T> {
    cut.take(field, items, if full { SHOWN_FULL } else { SHOWN / 2 })
}

/// At most [`DAYS_SHOWN`] days, evenly spaced, the first and the last always among them.
fn sampled<T: Clone>(cut: &mut Cut, days: &[T]) -> Vec<T> {
    if days.len() <= DAYS_SHOWN {
        return days.to_vec();
    }
    cut.note("days", days.len());
    let last = days.len() - 1;
    (0..DAYS_SHOWN)
        .map(|i| days[i * last / (DAYS_SHOWN - 1)].clone())
        .collect()
}

fn spec(input: &mut PlanningIn, name: String) -> Result<SprintSpec, ToolFailure> {
    let members = input
        .members
        .take()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let days_off = m
                .days_off
                .unwrap_or_default()
                .iter()
                .map(|d| date(&format!("members[{i}].days_off"), d))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(MemberSpec::new(m.agent)
                .availability(m.availability.unwrap_or(1.0))
                .days_off(days_off))
        })
        .collect::<Result<Vec<_>, ToolFailure>>()?;
    let week = input.work_days.as_ref().map(|days| {
        let mut week = WorkWeek { days: [false; 7] };
        for day in days {
            week.days[*day as usize] = true;
        }
        week
    });
    Ok(SprintSpec {
        name,
        goal: input.goal.take(),
        start: input
            .start
            .as_deref()
            .map(|d| date("start", d))
            .transpose()?,
        end: input.end.as_deref().map(|d| date("end", d)).transpose()?,
        week,
        members,
        focus_factor: input.focus_factor,
        workflows: input
            .workflows
            .take()
            .unwrap_or_default()
            .iter()
            .map(|w| w.as_str().into())
            .collect(),
        commit: input.commit,
    })
}

fn plan_out(plan: &SprintPlan, full: bool, cut: &mut Cut) -> PlanOut {
    let allocation = shown(
        cut,
        "plan.allocation",
        plan.plan.allocation.iter().map(|(agent, (tasks, points))| {
            let shown_tasks: Vec<String> = tasks
                .iter()
                .take(if full { SHOWN_FULL } else { SHOWN })
                .cloned()
                .collect();
            (
                agent.clone(),
                AllocationOut {
                    points: round(*points, 2),
                    tasks_total: tasks.len(),
                    tasks: shown_tasks,
                },
            )
        }),
        full,
    )
    .into_iter()
    .collect();
    PlanOut {
        capacity: round(plan.capacity.points, 2),
        raw_capacity: round(plan.raw_capacity, 2),
        focus_factor: round(plan.capacity.focus_factor, 2),
        focus_source: match plan.focus {
            FocusSource::Given => "given".into(),
            FocusSource::Learnt(n) => format!("learnt from {}", counted(n as u64, "sprint")),
            FocusSource::Default => "default".into(),
            FocusSource::Saved => "saved".into(),
        },
        members: shown(
            cut,
            "plan.members",
            plan.capacity.members.iter().map(|m| CapacityOut {
                agent: m.agent.clone(),
                working_days: m.working_days,
                available_days: round(m.available_days, 2),
                points: round(m.points, 2),
            }),
            full,
        ),
        velocity: plan.velocity.map(VelocityOut::from),
        recommended: round(plan.recommended, 2),
        target: round(plan.target, 2),
        points: round(plan.plan.points, 2),
        selected: shown(
            cut,
            "plan.selected",
            plan.plan.selected.iter().cloned(),
            full,
        ),
        allocation,
        left_out: shown(
            cut,
            "plan.left_out",
            plan.plan.left_out.iter().map(|(task, reason)| LeftOutOut {
                task: task.clone(),
                reason: reason.clone(),
            }),
            full,
        ),
        warnings: cut.take("plan.warnings", plan.warnings.iter().cloned(), SHOWN),
        saved: plan.saved,
    }
}

fn totals_out(report: &SprintReport) -> TotalsOut {
    let t = &report.totals;
    TotalsOut {
        committed: round(t.committed, 2),
        added: round(t.added, 2),
        removed: round(t.removed, 2),
        reestimated: round(t.reestimated, 2),
        scope: round(t.scope, 2),
        completed: round(t.completed, 2),
        in_progress: round(t.in_progress, 2),
        not_completed: round(t.not_completed, 2),
        progress: round(t.progress, 2),
        say_do: t.say_do.map(|x| round(x, 2)),
        scope_creep: t.scope_creep.map(|x| round(x, 2)),
        churn: t.churn.map(|x| round(x, 2)),
        rollover_rate: t.rollover_rate.map(|x| round(x, 2)),
    }
}

fn carry_out(
    cut: &mut Cut,
    carry: &[orchestration_core::store::CarryOver],
    full: bool,
) -> Vec<CarryOut> {
    shown(cut, "carry_over", carry.iter().map(carry_one), full)
}

fn carry_one(c: &orchestration_core::store::CarryOver) -> CarryOut {
    CarryOut {
        task: c.task.clone(),
        points: round(c.points, 2),
        state: c.state.to_string(),
        times_carried: c.times_carried,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0))
}

/// Refuses the fields the planning action does not use.
fn check_planning_fields(input: &PlanningIn) -> Result<(), ToolFailure> {
    let fields = [
        ("name", input.name.is_some()),
        ("start", input.start.is_some()),
        ("end", input.end.is_some()),
        ("goal", input.goal.is_some()),
        ("members", input.members.is_some()),
        ("work_days", input.work_days.is_some()),
        ("focus_factor", input.focus_factor.is_some()),
        ("workflows", input.workflows.is_some()),
        ("commit", input.commit.is_some()),
        ("tasks", input.tasks.is_some()),
        ("estimate", input.estimate.is_some()),
        ("detail", input.detail.is_some()),
    ];
    let (action, allowed): (&str, &[&str]) = match input.action {
        PlanningActionIn::Plan | PlanningActionIn::Create | PlanningActionIn::Start => (
            match input.action {
                PlanningActionIn::Plan => "plan",
                PlanningActionIn::Create => "create",
                _ => "start",
            },
            &[
                "name",
                "start",
                "end",
                "goal",
                "members",
                "work_days",
                "focus_factor",
                "workflows",
                "commit",
                "detail",
            ],
        ),
        PlanningActionIn::Add => ("add", &["name", "tasks", "detail"]),
        PlanningActionIn::Remove => ("remove", &["name", "tasks", "detail"]),
        PlanningActionIn::Estimate => ("estimate", &["tasks", "estimate"]),
    };
    let extra: Vec<(&str, bool)> = fields
        .into_iter()
        .filter(|(field, _)| !allowed.contains(field))
        .collect();
    unused(action, &extra)
}

#[tool_router(router = sprint_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Sprints: plan (dry run), create, start (freezes the commitment), add, remove, estimate.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn sprint_planning(
        &self,
        Parameters(mut input): Parameters<PlanningIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<PlanningOut>, ToolFailure> {
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let action = input.action;
        // Sprints commit the whole team's work: with per-agent tokens, only the shared token
        // changes them. A dry run changes nothing.
        if !matches!(action, PlanningActionIn::Plan) {
            check_operator(&context, "change sprints")?;
        }
        check_planning_fields(&input)?;
        match action {
            PlanningActionIn::Plan | PlanningActionIn::Create | PlanningActionIn::Start => {
                let name = need(input.name.take(), "name", "planning")?;
                let spec = spec(&mut input, name)?;
                let plan = blocking(self.store(), move |store| match action {
                    PlanningActionIn::Create => store.create_sprint(&spec),
                    PlanningActionIn::Start => store.start_sprint(&spec),
                    _ => store.plan_sprint(&spec),
                })
                .await?;
                let verb = match action {
                    PlanningActionIn::Create => "saved as planned",
                    PlanningActionIn::Start => "started",
                    _ => "dry run, nothing saved",
                };
                let mut summary = format!(
                    "sprint `{}` ({verb}): {}, {:.1} points of {:.1} capacity ({}, focus {:.2}); {} left out",
                    plan.sprint.name,
                    counted(plan.plan.selected.len() as u64, "task"),
                    plan.plan.points,
                    plan.capacity.points,
                    counted(plan.sprint.working_days as u64, "working day"),
                    plan.capacity.focus_factor,
                    plan.plan.left_out.len()
                );
                for warning in plan.warnings.iter().take(3) {
                    summary.push_str("; warning: ");
                    summary.push_str(warning);
                }
                let mut truncated = Cut::default();
                Ok(Structured::new(
                    summary,
                    PlanningOut {
                        sprint: Some(SprintOut::with_members(&plan.sprint, &mut truncated)),
                        plan: Some(plan_out(&plan, full, &mut truncated)),
                        truncated,
                        ..Default::default()
                    },
                ))
            }
            PlanningActionIn::Add | PlanningActionIn::Remove => {
                let label = if matches!(action, PlanningActionIn::Add) {
                    "add"
                } else {
                    "remove"
                };
                let name = need(input.name, "name", label)?;
                let tasks = tasks(input.tasks, label)?;
                let edit = blocking(self.store(), move |store| match action {
                    PlanningActionIn::Add => store.add_to_sprint(&name, &tasks),
                    _ => store.remove_from_sprint(&name, &tasks),
                })
                .await?;
                let mut summary = format!(
                    "{} {} ({:.1} points) {} sprint `{}`; its scope is {:.1} points",
                    if label == "add" { "added" } else { "removed" },
                    counted(edit.changed.len() as u64, "task"),
                    edit.points,
                    if label == "add" { "to" } else { "from" },
                    edit.sprint,
                    edit.scope
                );
                for warning in edit.warnings.iter().take(3) {
                    summary.push_str("; warning: ");
                    summary.push_str(warning);
                }
                let mut cut = Cut::default();
                Ok(Structured::new(
                    summary,
                    PlanningOut {
                        edit: Some(EditOut {
                            changed: shown(&mut cut, "edit.changed", edit.changed, full),
                            unchanged: shown(&mut cut, "edit.unchanged", edit.unchanged, full),
                            points: round(edit.points, 2),
                            scope: round(edit.scope, 2),
                            warnings: cut.take("edit.warnings", edit.warnings, SHOWN),
                        }),
                        truncated: cut,
                        ..Default::default()
                    },
                ))
            }
            PlanningActionIn::Estimate => {
                let mut refs = need(input.tasks, "tasks", "estimate")?;
                if refs.len() != 1 {
                    return Err(ToolFailure::invalid(
                        "tasks",
                        "estimate takes exactly one task",
                    ));
                }
                let task_name = refs.remove(0);
                let task: TaskRef = task_arg("tasks[0]", &task_name, None)?;
                let estimate = need(input.estimate, "estimate", "estimate")?;
                let old =
                    blocking(self.store(), move |store| store.reestimate(&task, estimate)).await?;
                Ok(Structured::new(
                    format!(
                        "`{task_name}` re-estimated from {} to {}",
                        orchestration_core::text::points(old),
                        orchestration_core::text::points(estimate)
                    ),
                    PlanningOut {
                        estimate: Some(EstimateOut {
                            task: task_name,
                            old,
                            new: estimate,
                        }),
                        ..Default::default()
                    },
                ))
            }
        }
    }

    /// A sprint's burndown, burnup, scope changes, say/do, velocity, carry-over, flow, forecast; or all.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn sprint_analytics(
        &self,
        Parameters(input): Parameters<AnalyticsIn>,
    ) -> Result<Structured<AnalyticsOut>, ToolFailure> {
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let Some(name) = input.name else {
            unused(
                "the list of sprints",
                &[
                    ("trials", input.trials.is_some()),
                    ("seed", input.seed.is_some()),
                ],
            )?;
            let sprints = blocking(self.store(), |store| store.sprints()).await?;
            let all: Vec<SprintOut> = sprints.iter().map(SprintOut::from_summary).collect();
            let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
            let mut truncated = Cut::default();
            if items.len() < all.len() {
                truncated.note("sprints", all.len());
            }
            let summary = format!("{} of {}", items.len(), counted(all.len() as u64, "sprint"));
            return Ok(Structured::new(
                summary,
                AnalyticsOut {
                    sprints: Some(items),
                    next_cursor,
                    truncated,
                    ..Default::default()
                },
            ));
        };
        unused(
            "one sprint's analytics",
            &[
                ("limit", input.limit.is_some()),
                ("cursor", input.cursor.is_some()),
            ],
        )?;
        let options = AnalyticsOptions {
            trials: input
                .trials
                .unwrap_or(orchestration_core::store::DEFAULT_TRIALS),
            seed: input.seed,
        };
        let a = blocking(self.store(), move |store| {
            store.sprint_analytics(&name, &options)
        })
        .await?;
        let r = &a.report;
        let t = &r.totals;
        let mut summary = format!(
            "sprint `{}` ({}): {:.1} of {:.1} points done, progress {}, say/do {}, day {} of {}",
            a.sprint.name,
            a.sprint.status,
            t.completed,
            t.scope,
            pct(Some(t.progress)),
            pct(t.say_do),
            r.elapsed_days,
            r.working_days
        );
        if let Some(f) = &a.forecast {
            summary.push_str(&format!(
                "; finish p85 {} ({} by the end)",
                f.p85,
                pct(Some(f.probability_by_end))
            ));
        }
        summary.push('\n');
        summary.push_str(&text_chart(r, CHART_HEIGHT));
        let mut cut = Cut::default();
        // The latest scope changes matter most.
        let mut changes: Vec<ChangeOut> = shown(
            &mut cut,
            "changes",
            r.changes.iter().rev().map(|c| ChangeOut {
                at: time(c.at),
                task: c.task.clone(),
                kind: c.kind.as_str().into(),
                points: round(c.points, 2),
            }),
            full,
        );
        changes.reverse();
        let points: Vec<&orchestration_core::sprint::BurnPoint> = r.days.iter().collect();
        let days = DaysOut::from_points(&sampled(&mut cut, &points));
        let carry_over = carry_out(&mut cut, &a.carry_over, full);
        let aging = shown(
            &mut cut,
            "aging",
            r.flow.aging.iter().map(|a| AgingOut {
                task: a.task.clone(),
                age_hours: round(a.age_hours, 2),
                over_p85: a.over_p85,
            }),
            full,
        );
        Ok(Structured::new(
            summary,
            AnalyticsOut {
                sprint: Some(SprintOut::from_summary(&a.sprint)),
                days: Some(days),
                totals: Some(totals_out(r)),
                changes: Some(changes),
                velocity: a.velocity.map(VelocityOut::from),
                velocity_history: Some(
                    a.velocity_history
                        .iter()
                        .map(|(name, done)| (name.clone(), round(*done, 2)))
                        .collect(),
                ),
                carry_over: Some(carry_over),
                forecast: a.forecast.as_ref().map(|f| ForecastOut {
                    remaining: round(f.remaining, 2),
                    p50: f.p50.to_string(),
                    p85: f.p85.to_string(),
                    p95: f.p95.to_string(),
                    probability_by_end: round(f.probability_by_end, 2),
                    days_left: f.days_left,
                    history_days: f.history_days,
                    trials: f.trials,
                    seed: f.seed,
                }),
                forecast_note: a.forecast_note.clone(),
                flow: Some(FlowOut {
                    done: r.flow.done,
                    throughput_per_day: round(r.flow.throughput_per_day, 2),
                    wip: r.flow.wip,
                    cycle_time_p50_hours: r.flow.cycle_time_p50_hours.map(|x| round(x, 2)),
                    cycle_time_p85_hours: r.flow.cycle_time_p85_hours.map(|x| round(x, 2)),
                    aging,
                }),
                sprints: None,
                next_cursor: None,
                truncated: cut,
            },
        ))
    }

    /// Retrospective: commitment vs done, scope creep, carry-over, estimate accuracy, failures, findings; close.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn sprint_retrospective(
        &self,
        Parameters(input): Parameters<RetrospectiveIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<RetrospectiveOut>, ToolFailure> {
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        if input.close.unwrap_or(false) {
            check_operator(&context, "close sprints")?;
        }
        let options = RetrospectiveOptions {
            close: input.close.unwrap_or(false),
            next: input.next,
        };
        let name = input.name;
        let retro = blocking(self.store(), move |store| {
            store.sprint_retrospective(&name, &options)
        })
        .await?;
        let t = &retro.report.totals;
        let mut summary = format!(
            "sprint `{}`{}: {:.1} of {:.1} committed points done ({:.1} in all), say/do {}, scope creep {}, churn {}, {} carried over{}",
            retro.sprint.name,
            if retro.closed { " closed" } else { "" },
            t.completed_committed,
            t.committed,
            t.completed,
            pct(t.say_do),
            pct(t.scope_creep),
            pct(t.churn),
            retro.carry_over.len(),
            retro
                .moved_to
                .as_ref()
                .map(|n| format!(" into `{n}`"))
                .unwrap_or_default()
        );
        // The findings are what a retrospective is for; the chart is sprint_analytics'.
        for finding in retro.findings.iter().take(3) {
            summary.push_str(&format!("\n- {}: {}", finding.observation, finding.action));
        }
        let mut cut = Cut::default();
        Ok(Structured::new(
            summary,
            RetrospectiveOut {
                sprint: SprintOut::from_summary(&retro.sprint),
                totals: totals_out(&retro.report),
                carry_over: carry_out(&mut cut, &retro.carry_over, full),
                moved_to: retro.moved_to.clone(),
                accuracy: retro.accuracy.as_ref().map(|a| AccuracyOut {
                    tasks: a.tasks,
                    bias: round(a.bias, 2),
                    ratio: round(a.ratio, 2),
                    spread: round(a.spread, 2),
                    mmre: round(a.mmre, 2),
                    mdmre: round(a.mdmre, 2),
                    pred25: round(a.pred25, 2),
                }),
                cycle_time_p50_hours: retro.report.flow.cycle_time_p50_hours.map(|x| round(x, 2)),
                cycle_time_p85_hours: retro.report.flow.cycle_time_p85_hours.map(|x| round(x, 2)),
                contributions: shown(
                    &mut cut,
                    "contributions",
                    retro.contributions.iter().map(|c| ContributionOut {
                        agent: c.agent.clone(),
                        tasks: c.tasks,
                        points: round(c.points, 2),
                        retries: c.retries,
                        expired_leases: c.expired_leases,
                    }),
                    true,
                ),
                problems: shown(
                    &mut cut,
                    "problems",
                    retro.problems.iter().map(|p| ProblemOut {
                        task: p.task.clone(),
                        state: p.state.to_string(),
                        reason: crate::output::clip_json(&p.reason, 300).0,
                    }),
                    full,
                ),
                findings: shown(
                    &mut cut,
                    "findings",
                    retro.findings.iter().map(|f| FindingOut {
                        observation: f.observation.clone(),
                        action: f.action.clone(),
                    }),
                    full,
                ),
                velocity: retro.velocity.map(VelocityOut::from),
                closed: retro.closed,
                truncated: cut,
            },
        ))
    }
}
