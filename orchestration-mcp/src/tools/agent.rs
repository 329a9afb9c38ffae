//! Agent tools: `agent_profile`, `agent_delegation`, `agent_workload` and
//! `agent_performance`.

use std::collections::BTreeMap;

use orchestration_core::{
    AgentProfile, AgentStatus, AgentUpdate, WorkflowRef, agent::Breakdown, agent::Load,
    agent::Metrics, agent::Move, agent::Weights, limits, store::Assigned, store::DelegationMode,
    text::counted,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::args::Parameters;
use crate::auth::{check_acting_as, check_operator};
use crate::error::ToolFailure;
use crate::output::{Cut, SHOWN, Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::workflow::{DetailIn, skills_schema};
use crate::tools::{blocking, need, round, task_arg, time, unused};

// What to do with profiles.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProfileActionIn {
    Upsert,
    Get,
    List,
    SetStatus,
}

// Whether an agent takes work.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusIn {
    Active,
    Paused,
    Offline,
    Retired,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileIn {
    action: ProfileActionIn,
    #[schemars(pattern(limits::NAME_PATTERN))]
    name: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "skills_schema")]
    capabilities: Option<BTreeMap<String, u8>>,
    /// WIP limit
    #[schemars(range(min = 1, max = 1000), extend("default" = 3))]
    max_concurrent: Option<u32>,
    #[schemars(range(min = 0, max = 1000), extend("default" = 5))]
    points_per_day: Option<f64>,
    status: Option<StatusIn>,
    detail: Option<DetailIn>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProfileOut {
    name: String,
    status: String,
    max_concurrent: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<BTreeMap<String, u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    points_per_day: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_active_at: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct ProfilesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<ProfileOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<ProfileOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

/// A profile; `full` adds skills, pace and last activity.
fn profile_out(profile: AgentProfile, full: bool) -> ProfileOut {
    ProfileOut {
        name: profile.name,
        status: profile.status.to_string(),
        max_concurrent: profile.max_concurrent,
        capabilities: full.then_some(profile.capabilities),
        points_per_day: full.then_some(profile.points_per_day),
        last_active_at: if full {
            profile.last_active_at.map(time)
        } else {
            None
        },
    }
}

fn status(status: StatusIn) -> AgentStatus {
    match status {
        StatusIn::Active => AgentStatus::Active,
        StatusIn::Paused => AgentStatus::Paused,
        StatusIn::Offline => AgentStatus::Offline,
        StatusIn::Retired => AgentStatus::Retired,
    }
}

#[tool_router(router = agent_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Register an agent (only registered ones act) or update its skills, WIP limit; get, list, set_status.
    #[tool(
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn agent_profile(
        &self,
        Parameters(input): Parameters<ProfileIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<ProfilesOut>, ToolFailure> {
        // An agent may change its own profile only: another's status decides whether that one
        // gets work.
        if matches!(
            input.action,
            ProfileActionIn::Upsert | ProfileActionIn::SetStatus
        ) && let Some(name) = &input.name
        {
            check_acting_as(&context, name)?;
        }
        let one = |profile: AgentProfile, verb: &str| {
            let summary = format!(
                "{verb} agent `{}` ({}): {}, WIP limit {}",
                profile.name,
                profile.status,
                counted(profile.capabilities.len() as u64, "skill"),
                profile.max_concurrent
            );
            Structured::new(
                summary,
                ProfilesOut {
                    agent: Some(profile_out(profile, true)),
                    ..ProfilesOut::default()
                },
            )
        };
        let edits = [
            ("capabilities", input.capabilities.is_some()),
            ("max_concurrent", input.max_concurrent.is_some()),
            ("points_per_day", input.points_per_day.is_some()),
        ];
        let paging = [
            ("detail", input.detail.is_some()),
            ("limit", input.limit.is_some()),
            ("cursor", input.cursor.is_some()),
        ];
        match input.action {
            ProfileActionIn::List => {
                unused("list", &edits)?;
                unused(
                    "list",
                    &[
                        ("name", input.name.is_some()),
                        ("status", input.status.is_some()),
                    ],
                )?;
                let all = blocking(self.store(), |store| store.agents()).await?;
                let full = input.detail.unwrap_or_default() == DetailIn::Full;
                let all: Vec<ProfileOut> = all.into_iter().map(|p| profile_out(p, full)).collect();
                let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
                let mut truncated = Cut::default();
                if items.len() < all.len() {
                    truncated.note("agents", all.len());
                }
                let summary = format!("{} of {}", items.len(), counted(all.len() as u64, "agent"));
                Ok(Structured::new(
                    summary,
                    ProfilesOut {
                        agents: Some(items),
                        next_cursor,
                        truncated,
                        ..ProfilesOut::default()
                    },
                ))
            }
            ProfileActionIn::Get => {
                unused("get", &edits)?;
                unused("get", &paging)?;
                unused("get", &[("status", input.status.is_some())])?;
                let name = need(input.name, "name", "get")?;
                let profile = blocking(self.store(), move |store| store.agent(&name)).await?;
                Ok(one(profile, "found"))
            }
            ProfileActionIn::Upsert => {
                unused("upsert", &paging)?;
                let name = need(input.name, "name", "upsert")?;
                let update = AgentUpdate {
                    capabilities: input.capabilities,
                    max_concurrent: input.max_concurrent,
                    points_per_day: input.points_per_day,
                    status: input.status.map(status),
                };
                let profile = blocking(self.store(), move |store| {
                    store.upsert_agent(&name, &update)
                })
                .await?;
                Ok(one(profile, "saved"))
            }
            ProfileActionIn::SetStatus => {
                unused("set_status", &edits)?;
                unused("set_status", &paging)?;
                let new = need(input.status, "status", "set_status")?;
                let name = need(input.name, "name", "set_status")?;
                let profile = blocking(self.store(), move |store| {
                    store.set_agent_status(&name, status(new))
                })
                .await?;
                Ok(one(profile, "updated"))
            }
        }
    }
}

/// Default .4/.3/.1/.2
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeightsIn {
    fit: Option<f64>,
    quality: Option<f64>,
    speed: Option<f64>,
    free_capacity: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegationIn {
    task: Option<String>,
    /// Instead of task
    workflow: Option<String>,
    assign: Option<bool>,
    weights: Option<WeightsIn>,
    #[schemars(range(min = 1, max = 86400), extend("default" = 900))]
    lease_seconds: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScoreOut {
    agent: String,
    score: f64,
    fit: f64,
    quality: f64,
    speed: f64,
    free_capacity: f64,
    observations: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReasonOut {
    /// Agent (task ranking) or task (batch)
    name: String,
    reason: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct DelegationOut {
    /// Best first, with score breakdowns
    #[serde(skip_serializing_if = "Option::is_none")]
    ranked: Option<Vec<ScoreOut>>,
    /// Agents filtered out, or tasks nobody can take, and why
    rejected: Vec<ReasonOut>,
    /// Made, or proposed when assign is false
    assigned: Vec<ScoreOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    /// The greedy fallback replaced the optimal solver
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    greedy: bool,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

fn score_out(agent: &str, breakdown: &Breakdown, task: Option<String>) -> ScoreOut {
    ScoreOut {
        agent: agent.to_owned(),
        score: round(breakdown.score, 4),
        fit: round(breakdown.fit, 4),
        quality: round(breakdown.quality, 4),
        speed: round(breakdown.speed, 4),
        free_capacity: round(breakdown.free_capacity, 4),
        observations: breakdown.observations,
        task,
    }
}

fn assigned_out(assigned: &Assigned) -> ScoreOut {
    score_out(
        &assigned.agent,
        &assigned.breakdown,
        Some(assigned.task.clone()),
    )
}

#[tool_router(router = delegation_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Rank agents for a task (score breakdowns, rejections); assign leases it to the best; workflow assigns all ready.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn agent_delegation(
        &self,
        Parameters(input): Parameters<DelegationIn>,
    ) -> Result<Structured<DelegationOut>, ToolFailure> {
        let weights = weights_from(input.weights);
        let mode = if input.assign.unwrap_or(false) {
            DelegationMode::Assign
        } else {
            DelegationMode::Propose
        };
        if mode == DelegationMode::Propose {
            unused(
                "a proposal (assign is false)",
                &[("lease_seconds", input.lease_seconds.is_some())],
            )?;
        }
        let lease = input
            .lease_seconds
            .map(|s| chrono::Duration::seconds(s.into()));
        let mut truncated = Cut::default();
        match (input.task, input.workflow) {
            (Some(task), None) => {
                let task = task_arg("task", &task, None)?;
                let result = blocking(self.store(), move |store| {
                    store.delegate(&task, &weights, lease, mode)
                })
                .await?;
                let ranking = &result.ranking;
                let ranked = truncated.take(
                    "ranked",
                    ranking
                        .ranked
                        .iter()
                        .map(|r| score_out(&r.agent, &r.breakdown, None)),
                    SHOWN,
                );
                let rejected = truncated.take(
                    "rejected",
                    ranking.rejected.iter().map(|(name, why)| ReasonOut {
                        name: name.clone(),
                        reason: why.to_string(),
                    }),
                    SHOWN,
                );
                let key = format!("{}/{}", result.task.workflow_name, result.task.key);
                let (ranked_n, rejected_n) = (ranking.ranked.len(), ranking.rejected.len());
                let summary = match (&result.assigned, ranked.first()) {
                    (Some(assigned), _) => format!(
                        "assigned `{key}` to `{}` (score {:.3}); {} ranked, {} rejected",
                        assigned.agent, assigned.breakdown.score, ranked_n, rejected_n
                    ),
                    (None, Some(best)) => format!(
                        "best for `{key}`: `{}` (score {:.3}); {} ranked, {} rejected",
                        best.agent, best.score, ranked_n, rejected_n
                    ),
                    (None, None) => format!(
                        "no agent can take `{key}`: {} rejected; see `rejected` for why",
                        rejected_n
                    ),
                };
                Ok(Structured::new(
                    summary,
                    DelegationOut {
                        assigned: result.assigned.iter().map(assigned_out).collect(),
                        lease_expires_at: result.assigned.map(|a| time(a.lease_expires_at)),
                        ranked: Some(ranked),
                        rejected,
                        greedy: false,
                        truncated,
                    },
                ))
            }
            (None, Some(workflow)) => {
                let workflow = WorkflowRef::from(workflow.as_str());
                let result = blocking(self.store(), move |store| {
                    store.delegate_workflow(&workflow, &weights, lease, mode)
                })
                .await?;
                let verb = match mode {
                    DelegationMode::Assign => "assigned",
                    DelegationMode::Propose => "would assign",
                };
                let summary = format!(
                    "{verb} {}; {} left unassigned{}",
                    counted(result.assigned.len() as u64, "ready task"),
                    result.unassigned.len(),
                    if result.greedy {
                        " (greedy: too large for the optimal solver)"
                    } else {
                        ""
                    }
                );
                Ok(Structured::new(
                    summary,
                    DelegationOut {
                        ranked: None,
                        lease_expires_at: result.assigned.first().map(|a| time(a.lease_expires_at)),
                        assigned: truncated.take(
                            "assigned",
                            result.assigned.iter().map(assigned_out),
                            SHOWN * 2,
                        ),
                        rejected: truncated.take(
                            "rejected",
                            result
                                .unassigned
                                .into_iter()
                                .map(|(name, reason)| ReasonOut { name, reason }),
                            SHOWN,
                        ),
                        greedy: result.greedy,
                        truncated,
                    },
                ))
            }
            _ => Err(ToolFailure::invalid(
                "arguments",
                "give either `task` or `workflow`, not both",
            )),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadIn {
    apply: Option<bool>,
    weights: Option<WeightsIn>,
    #[schemars(range(min = 1, max = 86400), extend("default" = 900))]
    lease_seconds: Option<u32>,
    detail: Option<DetailIn>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadOut {
    agent: String,
    status: String,
    active: usize,
    points_in_flight: f64,
    max_concurrent: u32,
    utilisation: f64,
    /// Delegated, not started
    queued: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<String>>,
    /// Its active sprint: allocation vs capacity
    #[serde(skip_serializing_if = "Option::is_none")]
    sprint: Option<SprintLoadOut>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SprintLoadOut {
    sprint: String,
    capacity: f64,
    allocated: f64,
    done: f64,
    in_flight: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MoveOut {
    task: String,
    from: String,
    to: String,
    score: f64,
    reason: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct WorkloadOut {
    /// After the moves, when applied
    agents: Vec<LoadOut>,
    overloaded: Vec<String>,
    idle: Vec<String>,
    /// Moves of delegated, not started tasks that would relieve the overloaded
    proposals: Vec<MoveOut>,
    /// apply: the moves made
    #[serde(skip_serializing_if = "Option::is_none")]
    moved: Option<Vec<MoveOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

fn weights_from(input: Option<WeightsIn>) -> Weights {
    let defaults = Weights::default();
    input.map_or(defaults, |w| Weights {
        fit: w.fit.unwrap_or(defaults.fit),
        quality: w.quality.unwrap_or(defaults.quality),
        speed: w.speed.unwrap_or(defaults.speed),
        free_capacity: w.free_capacity.unwrap_or(defaults.free_capacity),
    })
}

fn load_out(load: &Load, full: bool) -> LoadOut {
    LoadOut {
        agent: load.agent.clone(),
        status: load.status.to_string(),
        active: load.tasks.len(),
        points_in_flight: round(load.points_in_flight, 2),
        max_concurrent: load.max_concurrent,
        utilisation: round(load.utilisation, 3),
        queued: load.queued,
        tasks: full.then(|| load.tasks.iter().take(SHOWN).cloned().collect()),
        sprint: load.sprint.as_ref().map(|s| SprintLoadOut {
            sprint: s.sprint.clone(),
            capacity: round(s.capacity, 2),
            allocated: round(s.allocated, 2),
            done: round(s.done, 2),
            in_flight: round(s.in_flight, 2),
        }),
    }
}

fn move_out(m: &Move) -> MoveOut {
    MoveOut {
        task: m.task.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        score: round(m.breakdown.score, 4),
        reason: m.reason.clone(),
    }
}

#[tool_router(router = workload_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Each agent's load vs WIP limit and sprint capacity; overloaded, idle; rebalancing moves (apply makes them).
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn agent_workload(
        &self,
        Parameters(input): Parameters<WorkloadIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<WorkloadOut>, ToolFailure> {
        let weights = weights_from(input.weights);
        let apply = input.apply.unwrap_or(false);
        if apply {
            check_operator(&context, "move other agents' tasks")?;
        } else {
            unused(
                "a proposal (apply is false)",
                &[("lease_seconds", input.lease_seconds.is_some())],
            )?;
        }
        let lease = input
            .lease_seconds
            .map(|s| chrono::Duration::seconds(s.into()));
        let (workload, moved) = if apply {
            let done =
                blocking(self.store(), move |store| store.rebalance(&weights, lease)).await?;
            (done.after, Some(done.moved))
        } else {
            let workload = blocking(self.store(), move |store| store.workload(&weights)).await?;
            (workload, None)
        };
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let all: Vec<LoadOut> = workload.agents.iter().map(|l| load_out(l, full)).collect();
        let (agents, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
        let mut truncated = Cut::default();
        if agents.len() < all.len() {
            truncated.note("agents", all.len());
        }
        let mut summary = format!(
            "{}: {} overloaded, {} idle",
            counted(all.len() as u64, "agent"),
            workload.overloaded.len(),
            workload.idle.len(),
        );
        match &moved {
            Some(moved) => summary.push_str(&format!(
                "; moved {}, load shown after the moves",
                counted(moved.len() as u64, "task")
            )),
            None => summary.push_str(&format!(
                "; {} proposed (apply=true makes them)",
                counted(workload.proposals.len() as u64, "move")
            )),
        }
        Ok(Structured::new(
            summary,
            WorkloadOut {
                agents,
                overloaded: truncated.take("overloaded", workload.overloaded, SHOWN * 2),
                idle: truncated.take("idle", workload.idle, SHOWN * 2),
                proposals: truncated.take(
                    "proposals",
                    workload.proposals.iter().map(move_out),
                    SHOWN * 2,
                ),
                moved: moved
                    .map(|moved| truncated.take("moved", moved.iter().map(move_out), SHOWN * 2)),
                next_cursor,
                truncated,
            },
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PerformanceIn {
    /// Window end, default now
    to: Option<String>,
    #[schemars(range(min = 1, max = 3650), extend("default" = 7))]
    days: Option<u32>,
    agent: Option<String>,
    detail: Option<DetailIn>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MetricsOut {
    completed: u32,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_rate: Option<f64>,
    smoothed_success_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_pass_yield: Option<f64>,
    retries: u32,
    expired_leases: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p50_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_time_p85_hours: Option<f64>,
    /// Mean ln(actual/estimate); > 0: takes longer than estimated
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate_bias: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mdmre: Option<f64>,
    throughput_per_day: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PerformanceRow {
    agent: String,
    rank: usize,
    #[serde(flatten)]
    metrics: MetricsOut,
    /// Change in completions against the window before
    completed_delta: i64,
    /// Change in smoothed success rate against the window before
    smoothed_success_delta: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_skill: Option<BTreeMap<String, MetricsOut>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PerformanceOut {
    from: String,
    to: String,
    agents: Vec<PerformanceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

fn metrics_out(m: &Metrics) -> MetricsOut {
    MetricsOut {
        completed: m.completed,
        attempts: m.attempts,
        success_rate: m.success_rate.map(|x| round(x, 4)),
        smoothed_success_rate: round(m.smoothed_success_rate, 4),
        first_pass_yield: m.first_pass_yield.map(|x| round(x, 4)),
        retries: m.retries,
        expired_leases: m.expired_leases,
        cycle_time_p50_hours: m.cycle_time_p50_hours.map(|x| round(x, 4)),
        cycle_time_p85_hours: m.cycle_time_p85_hours.map(|x| round(x, 4)),
        estimate_bias: m.estimate_bias.map(|x| round(x, 4)),
        mdmre: m.mdmre.map(|x| round(x, 4)),
        throughput_per_day: round(m.throughput_per_day, 4),
    }
}

#[tool_router(router = performance_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Agents ranked over a window: completions, success, retries, lapsed leases, cycle times, bias, trend.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn agent_performance(
        &self,
        Parameters(input): Parameters<PerformanceIn>,
    ) -> Result<Structured<PerformanceOut>, ToolFailure> {
        let to = match &input.to {
            Some(text) => Some(
                chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|e| {
                        ToolFailure::invalid("to", format!("`{text}` is not an RFC 3339 time: {e}"))
                    })?
                    .with_timezone(&chrono::Utc),
            ),
            None => None,
        };
        let days = input.days.unwrap_or(7);
        let agent = input.agent.clone();
        let window = blocking(self.store(), move |store| {
            store.agent_performance_days(days, to, agent.as_deref())
        })
        .await?;
        let (from, to, result) = (window.from, window.to, window.agents);
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let all: Vec<PerformanceRow> = result
            .iter()
            .map(|p| PerformanceRow {
                agent: p.agent.clone(),
                rank: p.rank,
                metrics: metrics_out(&p.metrics),
                completed_delta: i64::from(p.metrics.completed) - i64::from(p.previous.completed),
                smoothed_success_delta: round(
                    p.metrics.smoothed_success_rate - p.previous.smoothed_success_rate,
                    4,
                ),
                by_skill: full.then(|| {
                    p.by_skill
                        .iter()
                        .take(SHOWN * 2)
                        .map(|(s, m)| (s.clone(), metrics_out(m)))
                        .collect()
                }),
            })
            .collect();
        let (agents, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
        let mut truncated = Cut::default();
        if agents.len() < all.len() {
            truncated.note("agents", all.len());
        }
        let window = counted(u64::from(days), "day");
        let summary = match (all.first(), &input.agent) {
            (Some(best), None) => format!(
                "{} over {window}; best: `{}` ({} completed, smoothed success {:.2})",
                counted(all.len() as u64, "agent"),
                best.agent,
                best.metrics.completed,
                best.metrics.smoothed_success_rate
            ),
            (Some(row), Some(_)) => format!(
                "`{}` over {window}: rank {}, {} completed of {}, smoothed success {:.2}",
                row.agent,
                row.rank,
                row.metrics.completed,
                counted(u64::from(row.metrics.attempts), "attempt"),
                row.metrics.smoothed_success_rate
            ),
            (None, Some(agent)) => format!("`{agent}` ended no attempt in the last {window}"),
            (None, None) => format!("no attempt ended in the last {window}"),
        };
        Ok(Structured::new(
            summary,
            PerformanceOut {
                from: time(from),
                to: time(to),
                agents,
                next_cursor,
                truncated,
            },
        ))
    }
}
