//! Agent tools: `agent_profile`.

use std::collections::BTreeMap;

use orchestration_core::{AgentProfile, AgentStatus, AgentUpdate, TaskRef, Weights, WorkflowRef};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{check_acting_as, check_operator};
use crate::error::{ToolFailure, to_mcp};
use crate::output::{Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::workflow::DetailIn;
use crate::tools::{blocking, round2, time};

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
    /// Agent name
    name: Option<String>,
    /// {skill: level 1-5}
    capabilities: Option<BTreeMap<String, u8>>,
    /// WIP limit, default 3
    max_concurrent: Option<u32>,
    /// default 5
    points_per_day: Option<f64>,
    status: Option<StatusIn>,
    /// list: full adds skills
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ProfilesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<ProfileOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<ProfileOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
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
    /// Register or update an agent's skills and WIP limit; get, list, set_status.
    #[tool(
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = output_schema::<ProfilesOut>()
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
                "{verb} agent `{}` ({}): {} skill(s), WIP limit {}",
                profile.name,
                profile.status,
                profile.capabilities.len(),
                profile.max_concurrent
            );
            Structured::new(
                summary,
                ProfilesOut {
                    agent: Some(profile_out(profile, true)),
                    agents: None,
                    next_cursor: None,
                },
            )
        };
        let name = || {
            input
                .name
                .clone()
                .ok_or_else(|| ToolFailure::invalid("name", "this action needs the agent's name"))
        };
        match input.action {
            ProfileActionIn::List => {
                let all = blocking(self.store(), |store| store.agents()).await?;
                let full = input.detail.unwrap_or_default() == DetailIn::Full;
                let all: Vec<ProfileOut> = all.into_iter().map(|p| profile_out(p, full)).collect();
                let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
                let summary = format!("{} of {} agents", items.len(), all.len());
                Ok(Structured::new(
                    summary,
                    ProfilesOut {
                        agent: None,
                        agents: Some(items),
                        next_cursor,
                    },
                ))
            }
            ProfileActionIn::Get => {
                let name = name()?;
                let profile = blocking(self.store(), move |store| store.agent(&name)).await?;
                Ok(one(profile, "found"))
            }
            ProfileActionIn::Upsert => {
                let name = name()?;
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
                let new = input
                    .status
                    .ok_or_else(|| ToolFailure::invalid("status", "set_status needs a status"))?;
                let name = name()?;
                let profile = blocking(self.store(), move |store| {
                    store.set_agent_status(&name, status(new))
                })
                .await?;
                Ok(one(profile, "updated"))
            }
        }
    }
}

/// Score weights (default .4/.3/.1/.2)
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
    /// `workflow/key` or id
    task: Option<String>,
    /// Instead of task
    workflow: Option<String>,
    /// Make the assignments (default: propose)
    assign: Option<bool>,
    weights: Option<WeightsIn>,
    /// default 900
    lease_seconds: Option<u32>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReasonOut {
    /// Agent (task ranking) or task (batch)
    name: String,
    reason: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DelegationOut {
    /// Ranked agents, best first, with score breakdowns
    #[serde(skip_serializing_if = "Option::is_none")]
    ranked: Option<Vec<ScoreOut>>,
    /// Agents filtered out, or tasks nobody can take, with why
    rejected: Vec<ReasonOut>,
    /// Assignments made (or proposed when assign is false)
    assigned: Vec<ScoreOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    /// True when the greedy fallback replaced the optimal solver
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    greedy: bool,
}

fn score_out(
    agent: &str,
    breakdown: &orchestration_core::Breakdown,
    task: Option<String>,
) -> ScoreOut {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    ScoreOut {
        agent: agent.to_owned(),
        score: round(breakdown.score),
        fit: round(breakdown.fit),
        quality: round(breakdown.quality),
        speed: round(breakdown.speed),
        free_capacity: round(breakdown.free_capacity),
        observations: breakdown.observations,
        task,
    }
}

#[tool_router(router = delegation_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Rank agents for a task (score breakdowns, rejections); assign=true leases it to the best. With workflow: assign all ready tasks optimally.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<DelegationOut>()
    )]
    async fn agent_delegation(
        &self,
        Parameters(input): Parameters<DelegationIn>,
    ) -> Result<Structured<DelegationOut>, ToolFailure> {
        let weights = weights_from(input.weights);
        let commit = input.assign.unwrap_or(false);
        let lease = input
            .lease_seconds
            .map(|s| chrono::Duration::seconds(s.into()));
        match (input.task, input.workflow) {
            (Some(task), None) => {
                let task: TaskRef = task.parse().map_err(to_mcp)?;
                let result = blocking(self.store(), move |store| {
                    store.delegate(&task, &weights, lease, commit)
                })
                .await?;
                let ranked: Vec<ScoreOut> = result
                    .ranking
                    .ranked
                    .iter()
                    .map(|r| score_out(&r.agent, &r.breakdown, None))
                    .collect();
                let rejected = result
                    .ranking
                    .rejected
                    .iter()
                    .map(|(name, why)| ReasonOut {
                        name: name.clone(),
                        reason: why.to_string(),
                    })
                    .collect();
                let key = format!("{}/{}", result.task.workflow_name, result.task.key);
                let summary = match (&result.assigned, ranked.first()) {
                    (Some(assigned), _) => format!(
                        "assigned `{key}` to `{}` (score {:.3}); {} ranked, {} rejected",
                        assigned.agent,
                        assigned.breakdown.score,
                        ranked.len(),
                        result.ranking.rejected.len()
                    ),
                    (None, Some(best)) => format!(
                        "best for `{key}`: `{}` (score {:.3}); {} ranked, {} rejected",
                        best.agent,
                        best.score,
                        ranked.len(),
                        result.ranking.rejected.len()
                    ),
                    (None, None) => format!(
                        "no agent can take `{key}`: {} rejected; see `rejected` for why",
                        result.ranking.rejected.len()
                    ),
                };
                Ok(Structured::new(
                    summary,
                    DelegationOut {
                        assigned: result
                            .assigned
                            .iter()
                            .map(|a| score_out(&a.agent, &a.breakdown, Some(a.task.clone())))
                            .collect(),
                        lease_expires_at: result.assigned.map(|a| time(a.lease_expires_at)),
                        ranked: Some(ranked),
                        rejected,
                        greedy: false,
                    },
                ))
            }
            (None, Some(workflow)) => {
                let workflow = WorkflowRef::from(workflow.as_str());
                let result = blocking(self.store(), move |store| {
                    store.delegate_workflow(&workflow, &weights, lease, commit)
                })
                .await?;
                let verb = if commit { "assigned" } else { "would assign" };
                let summary = format!(
                    "{verb} {} ready task(s); {} left unassigned{}",
                    result.assigned.len(),
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
                        assigned: result
                            .assigned
                            .iter()
                            .map(|a| score_out(&a.agent, &a.breakdown, Some(a.task.clone())))
                            .collect(),
                        rejected: result
                            .unassigned
                            .into_iter()
                            .map(|(name, reason)| ReasonOut { name, reason })
                            .collect(),
                        greedy: result.greedy,
                    },
                ))
            }
            _ => Err(ToolFailure::invalid(
                "arguments",
                "give either `task` or `workflow`",
            )),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadIn {
    /// Make the moves
    apply: Option<bool>,
    weights: Option<WeightsIn>,
    /// default 900
    lease_seconds: Option<u32>,
    /// full adds task lists
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SprintLoadOut {
    sprint: String,
    capacity: f64,
    allocated: f64,
    done: f64,
    in_flight: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MoveOut {
    task: String,
    from: String,
    to: String,
    score: f64,
    reason: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct WorkloadOut {
    agents: Vec<LoadOut>,
    overloaded: Vec<String>,
    idle: Vec<String>,
    /// Moves of delegated, not started tasks
    proposals: Vec<MoveOut>,
    /// True when the proposals were carried out
    applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
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

#[tool_router(router = workload_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Per agent load vs WIP limit, and sprint allocation vs capacity; overloaded and idle agents; rebalance proposals (apply=true makes them).
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<WorkloadOut>()
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
        }
        let lease = input
            .lease_seconds
            .map(|s| chrono::Duration::seconds(s.into()));
        let result = blocking(self.store(), move |store| {
            store.workload(&weights, lease, apply)
        })
        .await?;
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let all: Vec<LoadOut> = result
            .agents
            .iter()
            .map(|load| LoadOut {
                agent: load.agent.clone(),
                status: load.status.to_string(),
                active: load.tasks.len(),
                points_in_flight: load.points_in_flight,
                max_concurrent: load.max_concurrent,
                utilisation: (load.utilisation * 1_000.0).round() / 1_000.0,
                queued: load.queued,
                tasks: full.then(|| load.tasks.clone()),
                sprint: load.sprint.as_ref().map(|s| SprintLoadOut {
                    sprint: s.sprint.clone(),
                    capacity: round2(s.capacity),
                    allocated: round2(s.allocated),
                    done: round2(s.done),
                    in_flight: round2(s.in_flight),
                }),
            })
            .collect();
        let (agents, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
        let summary = format!(
            "{} agents: {} overloaded, {} idle; {} move(s) {}",
            all.len(),
            result.overloaded.len(),
            result.idle.len(),
            result.proposals.len(),
            if apply { "made" } else { "proposed" }
        );
        Ok(Structured::new(
            summary,
            WorkloadOut {
                agents,
                overloaded: result.overloaded,
                idle: result.idle,
                proposals: result
                    .proposals
                    .into_iter()
                    .map(|m| MoveOut {
                        task: m.task,
                        from: m.from,
                        to: m.to,
                        score: (m.breakdown.score * 10_000.0).round() / 10_000.0,
                        reason: m.reason,
                    })
                    .collect(),
                applied: apply,
                next_cursor,
            },
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PerformanceIn {
    /// Window end, RFC 3339
    to: Option<String>,
    /// Window, default 7
    days: Option<u32>,
    /// Only this agent
    agent: Option<String>,
    /// full adds skills
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PerformanceOut {
    from: String,
    to: String,
    agents: Vec<PerformanceRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn metrics_out(m: &orchestration_core::Metrics) -> MetricsOut {
    let r = |x: f64| (x * 10_000.0).round() / 10_000.0;
    MetricsOut {
        completed: m.completed,
        attempts: m.attempts,
        success_rate: m.success_rate.map(r),
        smoothed_success_rate: r(m.smoothed_success_rate),
        first_pass_yield: m.first_pass_yield.map(r),
        retries: m.retries,
        expired_leases: m.expired_leases,
        cycle_time_p50_hours: m.cycle_time_p50_hours.map(r),
        cycle_time_p85_hours: m.cycle_time_p85_hours.map(r),
        estimate_bias: m.estimate_bias.map(r),
        mdmre: m.mdmre.map(r),
        throughput_per_day: r(m.throughput_per_day),
    }
}

#[tool_router(router = performance_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Per agent over a window: completions, success rates, retries, expiries, cycle times, estimate bias, throughput; ranked, with trend.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<PerformanceOut>()
    )]
    async fn agent_performance(
        &self,
        Parameters(input): Parameters<PerformanceIn>,
    ) -> Result<Structured<PerformanceOut>, ToolFailure> {
        let to = match &input.to {
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ToolFailure::invalid("to", format!("`{text}` is not an RFC 3339 time: {e}"))
                })?
                .with_timezone(&chrono::Utc),
            None => self.store().clock().now(),
        };
        let days = input.days.unwrap_or(7);
        if !(1..=3_650).contains(&days) {
            return Err(ToolFailure::invalid(
                "days",
                format!("{days} is outside 1 to 3650"),
            ));
        }
        let from = to - chrono::Duration::days(days.into());
        let result = blocking(self.store(), move |store| store.agent_performance(from, to)).await?;
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let all: Vec<PerformanceRow> = result
            .iter()
            .filter(|p| input.agent.as_ref().is_none_or(|a| *a == p.agent))
            .map(|p| PerformanceRow {
                agent: p.agent.clone(),
                rank: p.rank,
                metrics: metrics_out(&p.metrics),
                completed_delta: i64::from(p.metrics.completed) - i64::from(p.previous.completed),
                smoothed_success_delta: ((p.metrics.smoothed_success_rate
                    - p.previous.smoothed_success_rate)
                    * 10_000.0)
                    .round()
                    / 10_000.0,
                by_skill: full.then(|| {
                    p.by_skill
                        .iter()
                        .map(|(s, m)| (s.clone(), metrics_out(m)))
                        .collect()
                }),
            })
            .collect();
        let (agents, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
        let summary = match all.first() {
            Some(best) => format!(
                "{} agent(s) over {days} day(s); best: `{}` ({} completed, smoothed success {:.2})",
                all.len(),
                best.agent,
                best.metrics.completed,
                best.metrics.smoothed_success_rate
            ),
            None => format!("no attempts ended in the last {days} day(s)"),
        };
        Ok(Structured::new(
            summary,
            PerformanceOut {
                from: time(from),
                to: time(to),
                agents,
                next_cursor,
            },
        ))
    }
}
