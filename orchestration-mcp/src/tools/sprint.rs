//! Sprint tools: `sprint_planning`, `sprint_analytics` and `sprint_retrospective`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use orchestration_core::{
    AnalyticsOptions, FocusSource, MemberSpec, RetrospectiveOptions, SprintPlan, SprintReport,
    SprintSpec, SprintSummary, TaskRef, Velocity, WorkWeek, counted, text_chart,
};
use rmcp::RoleServer;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::check_operator;
use crate::error::{ToolFailure, to_mcp};
use crate::output::{Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::workflow::DetailIn;
use crate::tools::{blocking, need, round2, time};

/// Items shown per list at `detail=summary`.
const SUMMARY_ITEMS: usize = 20;

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
    /// 0-1, default 1
    availability: Option<f64>,
    /// YYYY-MM-DD
    days_off: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanningIn {
    action: PlanningActionIn,
    /// Sprint
    name: Option<String>,
    /// YYYY-MM-DD
    start: Option<String>,
    /// YYYY-MM-DD, included
    end: Option<String>,
    goal: Option<String>,
    members: Option<Vec<MemberIn>>,
    /// Default mon-fri
    work_days: Option<Vec<WeekdayIn>>,
    /// Default: learnt
    focus_factor: Option<f64>,
    /// Backlog; default all
    workflows: Option<Vec<String>>,
    /// Points to plan to; default velocity
    commit: Option<f64>,
    /// add/remove/estimate: `workflow/key`
    tasks: Option<Vec<String>>,
    /// estimate: new points
    estimate: Option<f64>,
    detail: Option<DetailIn>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MemberOut {
    agent: String,
    availability: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    days_off: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SprintOut {
    name: String,
    status: String,
    start: String,
    end: String,
    working_days: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<String>,
    members: Vec<MemberOut>,
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
    fn from_summary(s: &SprintSummary) -> SprintOut {
        SprintOut {
            name: s.name.clone(),
            status: s.status.to_string(),
            start: s.start.to_string(),
            end: s.end.to_string(),
            working_days: s.working_days,
            goal: s.goal.clone(),
            members: s
                .members
                .iter()
                .map(|m| MemberOut {
                    agent: m.agent.clone(),
                    availability: m.availability,
                    days_off: m.days_off.iter().map(|d| d.to_string()).collect(),
                })
                .collect(),
            workflows: s.workflows.clone(),
            tasks: s.tasks,
            committed: s.committed.map(round2),
            completed: s.completed.map(round2),
            capacity: s.capacity.map(round2),
            focus_factor: s.focus_factor.map(round2),
            started_at: s.started_at.map(time),
            closed_at: s.closed_at.map(time),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CapacityOut {
    agent: String,
    working_days: u32,
    available_days: f64,
    points: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct VelocityOut {
    mean: f64,
    median: f64,
    std_dev: f64,
    sprints: usize,
}

impl From<Velocity> for VelocityOut {
    fn from(v: Velocity) -> Self {
        VelocityOut {
            mean: round2(v.mean),
            median: round2(v.median),
            std_dev: round2(v.std_dev),
            sprints: v.sprints,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AllocationOut {
    points: f64,
    tasks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct LeftOutOut {
    task: String,
    reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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
    selected_count: usize,
    selected: Vec<String>,
    allocation: BTreeMap<String, AllocationOut>,
    left_out_count: usize,
    left_out: Vec<LeftOutOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    saved: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct EstimateOut {
    task: String,
    old: f64,
    new: f64,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct PlanningOut {
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
    /// Sprint; omit to list all
    name: Option<String>,
    /// Monte Carlo, default 10000
    trials: Option<u32>,
    seed: Option<u64>,
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DayOut {
    date: String,
    scope: f64,
    completed: f64,
    in_progress: f64,
    remaining: f64,
    ideal: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ChangeOut {
    at: String,
    task: String,
    kind: String,
    points: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CarryOut {
    task: String,
    points: f64,
    state: String,
    times_carried: u32,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct AgingOut {
    task: String,
    age_hours: f64,
    over_p85: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct AnalyticsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    sprint: Option<SprintOut>,
    /// Without `name`
    #[serde(skip_serializing_if = "Option::is_none")]
    sprints: Option<Vec<SprintOut>>,
    /// Burndown/burnup per working day
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<Vec<DayOut>>,
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
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrospectiveIn {
    name: String,
    /// Close the sprint
    close: Option<bool>,
    /// With close: move unfinished tasks here
    next: Option<String>,
    detail: Option<DetailIn>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ContributionOut {
    agent: String,
    tasks: usize,
    points: f64,
    retries: u32,
    expired_leases: u32,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProblemOut {
    task: String,
    state: String,
    reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct FindingOut {
    observation: String,
    action: String,
}

#[derive(Debug, Serialize, JsonSchema)]
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
}

fn date(field: &str, value: &str) -> Result<NaiveDate, ToolFailure> {
    value
        .parse()
        .map_err(|_| ToolFailure::invalid(field, format!("`{value}` is not a YYYY-MM-DD date")))
}

fn tasks(refs: Option<Vec<String>>, action: &str) -> Result<Vec<TaskRef>, ToolFailure> {
    need(refs, "tasks", action)?
        .iter()
        .map(|t| t.parse().map_err(to_mcp))
        .collect()
}

/// At `detail=summary`, the first few items of a list.
fn shown<T>(items: impl IntoIterator<Item = T>, full: bool) -> Vec<T> {
    items
        .into_iter()
        .take(if full { usize::MAX } else { SUMMARY_ITEMS })
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

fn plan_out(plan: &SprintPlan, full: bool) -> PlanOut {
    PlanOut {
        capacity: round2(plan.capacity.points),
        raw_capacity: round2(plan.raw_capacity),
        focus_factor: round2(plan.capacity.focus_factor),
        focus_source: match plan.focus {
            FocusSource::Given => "given".into(),
            FocusSource::Learnt(n) => format!("learnt from {n} sprints"),
            FocusSource::Default => "default".into(),
            FocusSource::Saved => "saved".into(),
        },
        members: plan
            .capacity
            .members
            .iter()
            .map(|m| CapacityOut {
                agent: m.agent.clone(),
                working_days: m.working_days,
                available_days: round2(m.available_days),
                points: round2(m.points),
            })
            .collect(),
        velocity: plan.velocity.map(VelocityOut::from),
        recommended: round2(plan.recommended),
        target: round2(plan.target),
        points: round2(plan.plan.points),
        selected_count: plan.plan.selected.len(),
        selected: shown(plan.plan.selected.iter().cloned(), full),
        allocation: plan
            .plan
            .allocation
            .iter()
            .map(|(agent, (tasks, points))| {
                (
                    agent.clone(),
                    AllocationOut {
                        points: round2(*points),
                        tasks: shown(tasks.iter().cloned(), full),
                    },
                )
            })
            .collect(),
        left_out_count: plan.plan.left_out.len(),
        left_out: shown(
            plan.plan.left_out.iter().map(|(task, reason)| LeftOutOut {
                task: task.clone(),
                reason: reason.clone(),
            }),
            full,
        ),
        warnings: plan.warnings.clone(),
        saved: plan.saved,
    }
}

fn totals_out(report: &SprintReport) -> TotalsOut {
    let t = &report.totals;
    TotalsOut {
        committed: round2(t.committed),
        added: round2(t.added),
        removed: round2(t.removed),
        reestimated: round2(t.reestimated),
        scope: round2(t.scope),
        completed: round2(t.completed),
        in_progress: round2(t.in_progress),
        not_completed: round2(t.not_completed),
        progress: round2(t.progress),
        say_do: t.say_do.map(round2),
        scope_creep: t.scope_creep.map(round2),
        churn: t.churn.map(round2),
        rollover_rate: t.rollover_rate.map(round2),
    }
}

fn carry_out(carry: &[orchestration_core::CarryOver], full: bool) -> Vec<CarryOut> {
    shown(
        carry.iter().map(|c| CarryOut {
            task: c.task.clone(),
            points: round2(c.points),
            state: c.state.to_string(),
            times_carried: c.times_carried,
        }),
        full,
    )
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0))
}

#[tool_router(router = sprint_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Plan a sprint (dry run), create it as planned, or start it (freezes the commitment; a created sprint starts with what was saved): capacity per member, velocity, chosen tasks with allocation, left out and why. add/remove tasks; estimate re-estimates a task.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<PlanningOut>()
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
                for warning in &plan.warnings {
                    summary.push_str("; warning: ");
                    summary.push_str(warning);
                }
                Ok(Structured::new(
                    summary,
                    PlanningOut {
                        sprint: Some(SprintOut::from_summary(&plan.sprint)),
                        plan: Some(plan_out(&plan, full)),
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
                for warning in &edit.warnings {
                    summary.push_str("; warning: ");
                    summary.push_str(warning);
                }
                Ok(Structured::new(
                    summary,
                    PlanningOut {
                        edit: Some(EditOut {
                            changed: edit.changed,
                            unchanged: edit.unchanged,
                            points: round2(edit.points),
                            scope: round2(edit.scope),
                            warnings: edit.warnings,
                        }),
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
                let task: TaskRef = task_name.parse().map_err(to_mcp)?;
                let estimate = need(input.estimate, "estimate", "estimate")?;
                let old =
                    blocking(self.store(), move |store| store.reestimate(&task, estimate)).await?;
                Ok(Structured::new(
                    format!("`{task_name}` re-estimated from {old} to {estimate} points"),
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

    /// A sprint's burndown and burnup per working day, scope changes, progress, say/do, velocity, carry-over, flow metrics and a seeded Monte Carlo finish forecast (p50/p85/p95). Without name: all sprints.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<AnalyticsOut>()
    )]
    async fn sprint_analytics(
        &self,
        Parameters(input): Parameters<AnalyticsIn>,
    ) -> Result<Structured<AnalyticsOut>, ToolFailure> {
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let Some(name) = input.name else {
            let sprints = blocking(self.store(), |store| store.sprints()).await?;
            let all: Vec<SprintOut> = sprints.iter().map(SprintOut::from_summary).collect();
            let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
            let summary = format!("{} sprints", all.len());
            return Ok(Structured::new(
                summary,
                AnalyticsOut {
                    sprints: Some(items),
                    next_cursor,
                    ..Default::default()
                },
            ));
        };
        let options = AnalyticsOptions {
            trials: input.trials.unwrap_or(orchestration_core::DEFAULT_TRIALS),
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
        let changes: Vec<ChangeOut> = r
            .changes
            .iter()
            .rev()
            .take(if full { usize::MAX } else { SUMMARY_ITEMS })
            .rev()
            .map(|c| ChangeOut {
                at: time(c.at),
                task: c.task.clone(),
                kind: c.kind.as_str().into(),
                points: round2(c.points),
            })
            .collect();
        Ok(Structured::new(
            summary,
            AnalyticsOut {
                sprint: Some(SprintOut::from_summary(&a.sprint)),
                days: Some(
                    r.days
                        .iter()
                        .map(|d| DayOut {
                            date: d.date.to_string(),
                            scope: round2(d.scope),
                            completed: round2(d.completed),
                            in_progress: round2(d.in_progress),
                            remaining: round2(d.remaining),
                            ideal: round2(d.ideal),
                        })
                        .collect(),
                ),
                totals: Some(totals_out(r)),
                changes: Some(changes),
                velocity: a.velocity.map(VelocityOut::from),
                velocity_history: Some(
                    a.velocity_history
                        .iter()
                        .map(|(name, done)| (name.clone(), round2(*done)))
                        .collect(),
                ),
                carry_over: Some(carry_out(&a.carry_over, full)),
                forecast: a.forecast.as_ref().map(|f| ForecastOut {
                    remaining: round2(f.remaining),
                    p50: f.p50.to_string(),
                    p85: f.p85.to_string(),
                    p95: f.p95.to_string(),
                    probability_by_end: round2(f.probability_by_end),
                    days_left: f.days_left,
                    history_days: f.history_days,
                    trials: f.trials,
                    seed: f.seed,
                }),
                forecast_note: a.forecast_note.clone(),
                flow: Some(FlowOut {
                    done: r.flow.done,
                    throughput_per_day: round2(r.flow.throughput_per_day),
                    wip: r.flow.wip,
                    cycle_time_p50_hours: r.flow.cycle_time_p50_hours.map(round2),
                    cycle_time_p85_hours: r.flow.cycle_time_p85_hours.map(round2),
                    aging: shown(
                        r.flow.aging.iter().map(|a| AgingOut {
                            task: a.task.clone(),
                            age_hours: round2(a.age_hours),
                            over_p85: a.over_p85,
                        }),
                        full,
                    ),
                }),
                sprints: None,
                next_cursor: None,
            },
        ))
    }

    /// Sprint retrospective: committed vs completed, say/do, scope creep and churn, carry-over, estimate accuracy, cycle times, contributions, failures and blockers, findings with actions. close: true closes it; next: move unfinished work there.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<RetrospectiveOut>()
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
        for finding in &retro.findings {
            summary.push_str(&format!("\n- {}: {}", finding.observation, finding.action));
        }
        summary.push('\n');
        summary.push_str(&text_chart(&retro.report, CHART_HEIGHT));
        Ok(Structured::new(
            summary,
            RetrospectiveOut {
                sprint: SprintOut::from_summary(&retro.sprint),
                totals: totals_out(&retro.report),
                carry_over: carry_out(&retro.carry_over, full),
                moved_to: retro.moved_to.clone(),
                accuracy: retro.accuracy.as_ref().map(|a| AccuracyOut {
                    tasks: a.tasks,
                    bias: round2(a.bias),
                    ratio: round2(a.ratio),
                    spread: round2(a.spread),
                    mmre: round2(a.mmre),
                    mdmre: round2(a.mdmre),
                    pred25: round2(a.pred25),
                }),
                cycle_time_p50_hours: retro.report.flow.cycle_time_p50_hours.map(round2),
                cycle_time_p85_hours: retro.report.flow.cycle_time_p85_hours.map(round2),
                contributions: retro
                    .contributions
                    .iter()
                    .map(|c| ContributionOut {
                        agent: c.agent.clone(),
                        tasks: c.tasks,
                        points: round2(c.points),
                        retries: c.retries,
                        expired_leases: c.expired_leases,
                    })
                    .collect(),
                problems: shown(
                    retro.problems.iter().map(|p| ProblemOut {
                        task: p.task.clone(),
                        state: p.state.to_string(),
                        reason: p.reason.clone(),
                    }),
                    full,
                ),
                findings: retro
                    .findings
                    .iter()
                    .map(|f| FindingOut {
                        observation: f.observation.clone(),
                        action: f.action.clone(),
                    })
                    .collect(),
                velocity: retro.velocity.map(VelocityOut::from),
                closed: retro.closed,
            },
        ))
    }
}
