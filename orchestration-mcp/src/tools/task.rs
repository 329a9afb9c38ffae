//! Task tools: `task_claim`, `task_update` and `task_get`.

use std::collections::BTreeMap;

use chrono::Duration;
use orchestration_core::{
    ClaimOutcome, ClaimRequest, FailureKind, LeaseToken, TaskUpdate, WorkflowRef,
    store::DependencyResult, store::HeldTask, store::IdleReason, store::TaskDetail,
    store::TaskView, text::counted,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::args::Parameters;
use crate::auth::check_acting_as;
use crate::error::ToolFailure;
use crate::output::{Cut, MAX_JSON_BYTES, SHOWN, Structured, clip_json, output_schema};
use crate::server::OrchestrationServer;
use crate::tools::{blocking, need, round, task_arg, task_name, time, unused};
use crate::wait::Wait;

/// The most a task's description weighs in a result; `task_get` reads the rest.
const DESCRIPTION_BYTES: usize = 12 * 1024;

/// The most an error message weighs in a result.
const ERROR_BYTES: usize = 1024;

/// The dependency results a claim carries by default, in bytes, shared between them.
const DEFAULT_RESULT_BYTES: u32 = 8_000;

/// The most dependency results a claim may carry, in bytes: with the largest description it
/// still fits the result budget.
const MAX_RESULT_BYTES: u32 = 16_000;

/// Dependencies listed in a claim at most.
const DEPENDENCIES_SHOWN: usize = 100;

/// The part of a long field one `task_get` returns, in bytes.
const PART_BYTES: usize = 24 * 1024;

/// The most a result weighs in `task_get`'s whole view of a task.
const RESULT_BYTES: usize = 8 * 1024;

/// A task in a tool result: its name (`workflow/key`), what it is and where it stands. A
/// claim and `task_get` add what the work needs (description, skills, dependencies).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskOut {
    /// `workflow/key`, how tools name it
    task: String,
    title: String,
    state: String,
    /// Why it failed or was cancelled
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    attempt: u32,
    max_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// The description's full size in bytes, when it was cut
    #[serde(skip_serializing_if = "Option::is_none")]
    description_bytes: Option<usize>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    skills: BTreeMap<String, u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    /// The agent's last progress note
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl TaskOut {
    /// Where a task stands: enough for lists and for the answer to a report.
    pub(crate) fn brief(view: &TaskView) -> TaskOut {
        TaskOut {
            task: task_name(&view.workflow_name, &view.key),
            title: view.title.clone(),
            state: view.state.to_string(),
            reason: view.reason.map(|r| r.to_string()),
            attempt: view.attempt,
            max_attempts: view.max_attempts,
            agent: view.agent.clone(),
            lease_expires_at: view.lease_expires_at.map(time),
            next_attempt_at: view.next_attempt_at.map(time),
            error: view.error.as_deref().map(|e| clip_json(e, ERROR_BYTES).0),
            id: None,
            estimate: None,
            priority: None,
            description: None,
            description_bytes: None,
            skills: BTreeMap::new(),
            depends_on: Vec::new(),
            note: None,
        }
    }

    /// The brief view and the task's dependencies, for the answer to a dependency edit.
    pub(crate) fn with_dependencies(view: &TaskView, cut: &mut Cut) -> TaskOut {
        TaskOut {
            depends_on: cut.take(
                "task.depends_on",
                view.depends_on
                    .iter()
                    .map(|key| task_name(&view.workflow_name, key)),
                DEPENDENCIES_SHOWN,
            ),
            ..TaskOut::brief(view)
        }
    }

    /// Everything the work needs: the brief view plus id, size, priority, description (cut
    /// to a budget), skills and dependencies.
    pub(crate) fn full(view: &TaskView, cut: &mut Cut) -> TaskOut {
        let (description, description_bytes) = match view.description.as_deref() {
            Some(text) => {
                let (shown, full) = clip_json(text, DESCRIPTION_BYTES);
                (Some(shown), full)
            }
            None => (None, None),
        };
        TaskOut {
            id: Some(view.id.to_string()),
            estimate: Some(view.estimate),
            priority: Some(view.priority),
            description,
            description_bytes,
            skills: view.skills.clone(),
            depends_on: cut.take(
                "task.depends_on",
                view.depends_on
                    .iter()
                    .map(|key| task_name(&view.workflow_name, key)),
                DEPENDENCIES_SHOWN,
            ),
            note: view.note.as_deref().map(|n| clip_json(n, ERROR_BYTES).0),
            ..TaskOut::brief(view)
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimIn {
    agent: String,
    /// Only this workflow
    workflow: Option<String>,
    /// Only this task
    task: Option<String>,
    #[schemars(range(min = 1, max = 86400), extend("default" = 900))]
    lease_seconds: Option<u32>,
    /// For dependency results
    #[schemars(range(max = 16000), extend("default" = 8000))]
    max_result_bytes: Option<u32>,
    // Named plainly enough to go without a description: tools/list has a byte budget.
    #[schemars(range(max = 300))]
    wait_seconds: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DependencyOut {
    task: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    /// The result's full size in bytes, when it was cut: task_get reads it whole
    #[serde(skip_serializing_if = "Option::is_none")]
    result_bytes: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct ClaimOut {
    claimed: bool,
    /// Why nothing was claimed: agent_inactive, at_wip_limit, workflow_not_running,
    /// task_not_ready, unqualified or none_ready
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// When a waiting retry becomes ready
    #[serde(skip_serializing_if = "Option::is_none")]
    next_retry_at: Option<String>,
    /// How long the call waited, when it was asked to
    #[serde(skip_serializing_if = "Option::is_none")]
    waited_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// Pass to every task_update on this lease
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<Vec<DependencyOut>>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

// What to report.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UpdateActionIn {
    Heartbeat,
    Progress,
    Complete,
    Fail,
    Release,
}

impl UpdateActionIn {
    fn name(self) -> &'static str {
        match self {
            UpdateActionIn::Heartbeat => "heartbeat",
            UpdateActionIn::Progress => "progress",
            UpdateActionIn::Complete => "complete",
            UpdateActionIn::Fail => "fail",
            UpdateActionIn::Release => "release",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateIn {
    task: String,
    agent: String,
    /// From task_claim
    token: u64,
    action: UpdateActionIn,
    /// progress
    note: Option<String>,
    /// complete
    result: Option<String>,
    /// complete: points spent
    #[schemars(range(min = 0, max = 10000))]
    actual: Option<f64>,
    /// fail
    error: Option<String>,
    /// fail
    #[schemars(extend("default" = true))]
    retryable: Option<bool>,
    /// heartbeat, progress
    #[schemars(range(min = 1, max = 86400), extend("default" = 900))]
    lease_seconds: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UpdateOut {
    task: TaskOut,
    workflow_status: String,
    /// Tasks that became ready
    unblocked: Vec<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetIn {
    task: Option<String>,
    agent: Option<String>,
    /// Read it in parts
    part: Option<PartIn>,
    /// With part: a next_offset
    offset: Option<u32>,
}

// A long field of a task, read in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PartIn {
    Description,
    Result,
}

#[derive(Debug, Serialize)]
pub(crate) struct HeldOut {
    task: String,
    title: String,
    state: String,
    token: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    /// The lease's end has passed: a report is refused, so drop the task and claim again
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lapsed: bool,
    attempt: u32,
}

#[derive(Debug, Serialize)]
pub(crate) struct AttemptOut {
    number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    /// The state it ended in; absent while it runs
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct NoteOut {
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    text: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct GetOut {
    /// The tasks you hold
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<Vec<HeldOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// Your lease token, when you hold the task
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
    /// What it produced (cut to a budget: read it whole with part=result)
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    /// The result's full size in bytes, when it was cut
    #[serde(skip_serializing_if = "Option::is_none")]
    result_bytes: Option<usize>,
    /// The field read in parts
    #[serde(skip_serializing_if = "Option::is_none")]
    part: Option<&'static str>,
    /// The part of it from offset
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// The field's full size in bytes
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
    /// Pass as offset to read on; absent at the end
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependents: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<Vec<AttemptOut>>,
    /// The latest progress notes
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<Vec<NoteOut>>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

fn lease(seconds: Option<u32>) -> Option<Duration> {
    seconds.map(|s| Duration::seconds(s.into()))
}

/// The name of an idle reason, as results give it.
fn idle_code(reason: &IdleReason) -> &'static str {
    match reason {
        IdleReason::AgentInactive(_) => "agent_inactive",
        IdleReason::AtWipLimit { .. } => "at_wip_limit",
        IdleReason::WorkflowNotRunning { .. } => "workflow_not_running",
        IdleReason::TaskNotReady { .. } => "task_not_ready",
        IdleReason::Unqualified { .. } => "unqualified",
        IdleReason::NoneReady { .. } => "none_ready",
    }
}

/// The dependencies of a claimed task with their results, sharing `budget` bytes: results
/// that fit whole stay whole, and the budget they leave goes to the others.
fn dependencies_out(
    workflow: &str,
    dependencies: Vec<DependencyResult>,
    budget: usize,
    cut: &mut Cut,
) -> Vec<DependencyOut> {
    let shown = cut.take("dependencies", dependencies, DEPENDENCIES_SHOWN);
    let weights: Vec<usize> = shown
        .iter()
        .map(|d| {
            d.result
                .as_deref()
                .map_or(0, |r| clip_json(r, usize::MAX).0.len())
        })
        .collect();
    let shares = fair_shares(&weights, budget);
    shown
        .into_iter()
        .zip(shares)
        .map(|(dependency, share)| {
            let (result, result_bytes) = match dependency.result.as_deref() {
                Some(text) => {
                    let (shown, full) = clip_json(text, share);
                    (Some(shown), full.map(|_| text.len()))
                }
                None => (None, None),
            };
            DependencyOut {
                task: task_name(workflow, &dependency.key),
                state: dependency.state.to_string(),
                result,
                result_bytes,
            }
        })
        .collect()
}

/// Splits `budget` between items of the given weights, max-min fair: an item gets its whole
/// weight when it fits its share, and the rest is shared among the larger ones.
fn fair_shares(weights: &[usize], budget: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| weights[i]);
    let mut shares = vec![0; weights.len()];
    let mut left = budget;
    for (done, &i) in order.iter().enumerate() {
        let share = left / (weights.len() - done);
        shares[i] = weights[i].min(share);
        left -= shares[i];
    }
    shares
}

#[tool_router(router = task_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Claim your best ready task: lease token and dependency results, or claimed=false and why.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn task_claim(
        &self,
        Parameters(input): Parameters<ClaimIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<ClaimOut>, ToolFailure> {
        check_acting_as(&context, &input.agent)?;
        let budget = input.max_result_bytes.unwrap_or(DEFAULT_RESULT_BYTES);
        if budget > MAX_RESULT_BYTES {
            return Err(ToolFailure::invalid(
                "max_result_bytes",
                format!(
                    "{budget} is more than {MAX_RESULT_BYTES}; task_get reads one result whole"
                ),
            ));
        }
        let mut request = ClaimRequest::new(input.agent.clone());
        request.workflow = input.workflow.as_deref().map(WorkflowRef::from);
        request.task = input
            .task
            .as_deref()
            .map(|task| task_arg("task", task, input.workflow.as_deref()))
            .transpose()?;
        request.lease = lease(input.lease_seconds);
        let mut wait = match input.wait_seconds {
            Some(seconds) if seconds > 0 => {
                Some(Wait::start(self.store(), "wait_seconds", seconds, &context).await?)
            }
            _ => None,
        };
        // Each look is its own short transaction; between looks the call holds nothing.
        let outcome = loop {
            let request = request.clone();
            let outcome = blocking(self.store(), move |store| store.claim(&request)).await?;
            let (ClaimOutcome::Idle(idle), Some(wait)) = (&outcome, wait.as_mut()) else {
                break outcome;
            };
            if !idle.reason.others_can_end()
                || !wait
                    .changed(idle.next_retry_at, &idle.reason.to_string())
                    .await?
            {
                break outcome;
            }
        };
        let claim = match outcome {
            ClaimOutcome::Claimed(claim) => claim,
            ClaimOutcome::Idle(idle) => {
                let waited = wait.as_ref().map(|w| round(w.waited().as_secs_f64(), 2));
                let mut summary = match waited {
                    Some(seconds) => {
                        format!("nothing claimed after waiting {seconds} s: {}", idle.reason)
                    }
                    None => format!("nothing claimed: {}", idle.reason),
                };
                if let Some(at) = idle.next_retry_at {
                    summary.push_str(&format!("; a retry is due at {}", time(at)));
                }
                return Ok(Structured::new(
                    summary,
                    ClaimOut {
                        claimed: false,
                        reason: Some(idle_code(&idle.reason).into()),
                        detail: Some(idle.reason.to_string()),
                        next_retry_at: idle.next_retry_at.map(time),
                        waited_seconds: waited,
                        ..ClaimOut::default()
                    },
                ));
            }
        };
        let mut truncated = Cut::default();
        let task = TaskOut::full(&claim.task, &mut truncated);
        // The results get what the caller asked for, but never more than the result budget
        // leaves once the task itself and the rest of the answer are counted: a claim must
        // reach the agent whole, since it cannot be taken back.
        let rest = serde_json::to_vec(&task).map_or(MAX_JSON_BYTES, |b| b.len());
        let per_dependency = 120;
        let room = MAX_JSON_BYTES
            .saturating_sub(rest + 1_024)
            .saturating_sub(per_dependency * claim.dependencies.len().min(DEPENDENCIES_SHOWN));
        let dependencies = dependencies_out(
            &claim.task.workflow_name,
            claim.dependencies,
            (budget as usize).min(room),
            &mut truncated,
        );
        let cut = dependencies
            .iter()
            .filter(|d| d.result_bytes.is_some())
            .count();
        let mut summary = format!(
            "claimed `{}` (attempt {} of {}), token {}, lease until {}",
            task.task,
            claim.task.attempt,
            claim.task.max_attempts,
            claim.token,
            time(claim.lease_expires_at)
        );
        if cut > 0 {
            summary.push_str(&format!(
                "; {} cut to fit: task_get reads one whole",
                counted(cut as u64, "dependency result")
            ));
        }
        Ok(Structured::new(
            summary,
            ClaimOut {
                claimed: true,
                token: Some(claim.token.0),
                lease_expires_at: Some(time(claim.lease_expires_at)),
                dependencies: Some(dependencies),
                task: Some(task),
                truncated,
                ..ClaimOut::default()
            },
        ))
    }

    /// Report on a task you hold: heartbeat, progress, complete, fail or release.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn task_update(
        &self,
        Parameters(input): Parameters<UpdateIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<UpdateOut>, ToolFailure> {
        check_acting_as(&context, &input.agent)?;
        let task = task_arg("task", &input.task, None)?;
        let action = input.action;
        let (note, result, actual, error, retryable, seconds) = (
            input.note.is_some(),
            input.result.is_some(),
            input.actual.is_some(),
            input.error.is_some(),
            input.retryable.is_some(),
            input.lease_seconds.is_some(),
        );
        let report = match action {
            UpdateActionIn::Heartbeat => {
                unused(
                    "heartbeat",
                    &[
                        ("note", note),
                        ("result", result),
                        ("actual", actual),
                        ("error", error),
                        ("retryable", retryable),
                    ],
                )?;
                TaskUpdate::Heartbeat
            }
            UpdateActionIn::Progress => {
                unused(
                    "progress",
                    &[
                        ("result", result),
                        ("actual", actual),
                        ("error", error),
                        ("retryable", retryable),
                    ],
                )?;
                TaskUpdate::Progress {
                    note: need(input.note, "note", "progress")?,
                }
            }
            UpdateActionIn::Complete => {
                unused(
                    "complete",
                    &[
                        ("note", note),
                        ("error", error),
                        ("retryable", retryable),
                        ("lease_seconds", seconds),
                    ],
                )?;
                TaskUpdate::Complete {
                    result: input.result,
                    actual: input.actual,
                }
            }
            UpdateActionIn::Fail => {
                unused(
                    "fail",
                    &[
                        ("note", note),
                        ("result", result),
                        ("actual", actual),
                        ("lease_seconds", seconds),
                    ],
                )?;
                TaskUpdate::Fail {
                    error: need(input.error, "error", "fail")?,
                    kind: if input.retryable.unwrap_or(true) {
                        FailureKind::Transient
                    } else {
                        FailureKind::Permanent
                    },
                }
            }
            UpdateActionIn::Release => {
                unused(
                    "release",
                    &[
                        ("note", note),
                        ("result", result),
                        ("actual", actual),
                        ("error", error),
                        ("retryable", retryable),
                        ("lease_seconds", seconds),
                    ],
                )?;
                TaskUpdate::Release
            }
        };
        let (agent, token, lease) = (
            input.agent,
            LeaseToken(input.token),
            lease(input.lease_seconds),
        );
        let outcome = blocking(self.store(), move |store| {
            store.update_task(&task, &agent, token, &report, lease)
        })
        .await?;
        let view = &outcome.task;
        let name = task_name(&view.workflow_name, &view.key);
        let mut summary = format!("{}: `{name}` is {}", action.name(), view.state);
        if let Some(at) = view.next_attempt_at {
            summary.push_str(&format!(", next attempt at {}", time(at)));
        } else if let Some(at) = view.lease_expires_at {
            summary.push_str(&format!(", lease until {}", time(at)));
        }
        let mut truncated = Cut::default();
        let unblocked = truncated.take(
            "unblocked",
            outcome
                .unblocked
                .iter()
                .map(|key| task_name(&view.workflow_name, key)),
            SHOWN,
        );
        if !unblocked.is_empty() {
            let total = truncated.total("unblocked").unwrap_or(unblocked.len());
            summary.push_str(&format!(
                "; {} now ready: {}{}",
                counted(total as u64, "task"),
                unblocked.join(", "),
                if total > unblocked.len() { ", …" } else { "" }
            ));
        }
        summary.push_str(&format!("; workflow {}", outcome.workflow_status));
        Ok(Structured::new(
            summary,
            UpdateOut {
                task: TaskOut::brief(view),
                workflow_status: outcome.workflow_status.to_string(),
                unblocked,
                truncated,
            },
        ))
    }

    /// After lost context: agent gives what you hold, with tokens; task gives one task whole.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn task_get(
        &self,
        Parameters(input): Parameters<GetIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<GetOut>, ToolFailure> {
        if let Some(agent) = &input.agent {
            check_acting_as(&context, agent)?;
        }
        match (input.task, input.agent) {
            (None, None) => Err(ToolFailure::invalid(
                "arguments",
                "give `agent` (the tasks you hold) or `task` (one task whole)",
            )),
            (None, Some(agent)) => {
                unused(
                    "a list of held tasks",
                    &[
                        ("part", input.part.is_some()),
                        ("offset", input.offset.is_some()),
                    ],
                )?;
                let held = blocking(self.store(), move |store| store.held_tasks(&agent)).await?;
                Ok(held_out(held))
            }
            (Some(task), agent) => {
                let task = task_arg("task", &task, None)?;
                let detail = blocking(self.store(), move |store| store.task_detail(&task)).await?;
                // The token is the holder's secret: shown only to the agent that holds it.
                let token = match (&agent, detail.token) {
                    (Some(agent), Some(token)) if detail.task.agent.as_deref() == Some(agent) => {
                        Some(token.0)
                    }
                    _ => None,
                };
                match input.part {
                    Some(part) => part_out(&detail, part, input.offset.unwrap_or(0) as usize),
                    None => {
                        unused(
                            "a whole task (without part)",
                            &[("offset", input.offset.is_some())],
                        )?;
                        Ok(detail_out(detail, token))
                    }
                }
            }
        }
    }
}

fn held_out(held: Vec<HeldTask>) -> Structured<GetOut> {
    let mut truncated = Cut::default();
    let items: Vec<HeldOut> = truncated.take(
        "held",
        held.iter().map(|h| HeldOut {
            task: task_name(&h.task.workflow_name, &h.task.key),
            title: h.task.title.clone(),
            state: h.task.state.to_string(),
            token: h.token.0,
            lease_expires_at: h.lease_expires_at.map(time),
            lapsed: h.lapsed,
            attempt: h.task.attempt,
        }),
        crate::output::SHOWN_FULL,
    );
    let summary = match items.as_slice() {
        [] => "you hold no task; task_claim gives you one".to_owned(),
        _ => format!(
            "you hold {}: {}",
            counted(held.len() as u64, "task"),
            items
                .iter()
                .map(|h| match h.lapsed {
                    true => format!("`{}` (token {}, lease lapsed: drop it)", h.task, h.token),
                    false => format!("`{}` (token {})", h.task, h.token),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Structured::new(
        summary,
        GetOut {
            held: Some(items),
            truncated,
            ..GetOut::default()
        },
    )
}

/// One long field of a task, from `offset`, in a part that fits the result budget.
fn part_out(
    detail: &TaskDetail,
    part: PartIn,
    offset: usize,
) -> Result<Structured<GetOut>, ToolFailure> {
    let view = &detail.task;
    let (name, text) = match part {
        PartIn::Description => ("description", view.description.as_deref()),
        PartIn::Result => ("result", view.result.as_deref()),
    };
    let text = text.unwrap_or_default();
    if offset > text.len() || !text.is_char_boundary(offset) {
        return Err(ToolFailure::invalid(
            "offset",
            format!(
                "{offset} is not a place in the {name} ({} bytes); pass a next_offset",
                text.len()
            ),
        ));
    }
    let (chunk, full) = clip_json(&text[offset..], PART_BYTES);
    // A cut part ends with `…`; the next part starts where the text shown ends.
    let shown = if full.is_some() {
        chunk.len() - '…'.len_utf8()
    } else {
        chunk.len()
    };
    let next_offset = (offset + shown < text.len()).then_some(offset + shown);
    let task = TaskOut::brief(view);
    let summary = match next_offset {
        Some(next) => format!(
            "the {name} of `{}`, bytes {offset} to {} of {}; offset {next} reads on",
            task.task,
            offset + shown,
            text.len()
        ),
        None => format!(
            "the {name} of `{}`, bytes {offset} to its end ({})",
            task.task,
            text.len()
        ),
    };
    Ok(Structured::new(
        summary,
        GetOut {
            task: Some(task),
            part: Some(name),
            text: Some(chunk),
            bytes: Some(text.len()),
            next_offset,
            ..GetOut::default()
        },
    ))
}

/// A task whole: the work's view of it, its result, attempts, latest notes and who did it;
/// long texts cut to a budget, and read in parts with `part`.
fn detail_out(detail: TaskDetail, token: Option<u64>) -> Structured<GetOut> {
    let view = &detail.task;
    let mut truncated = Cut::default();
    let (result, result_bytes) = match view.result.as_deref() {
        Some(text) => {
            let (shown, full) = clip_json(text, RESULT_BYTES);
            (Some(shown), full.map(|_| text.len()))
        }
        None => (None, None),
    };
    let task = TaskOut::full(view, &mut truncated);
    let dependents = truncated.take(
        "dependents",
        detail
            .dependents
            .iter()
            .map(|key| task_name(&view.workflow_name, key)),
        crate::output::SHOWN_FULL,
    );
    let attempts_total = detail.attempts.len();
    let attempts: Vec<AttemptOut> = detail
        .attempts
        .into_iter()
        .rev()
        .take(SHOWN)
        .rev()
        .map(|a| AttemptOut {
            number: a.number,
            agent: a.agent,
            started_at: time(a.started_at),
            ended_at: a.ended_at.map(time),
            ended_as: a.ended_as.map(|s| s.to_string()),
            detail: a.detail.map(|d| clip_json(&d, 300).0),
        })
        .collect();
    if attempts_total > attempts.len() {
        truncated.note("attempts", attempts_total);
    }
    let notes_shown = detail.notes.len().min(SHOWN);
    if detail.notes_total > notes_shown {
        truncated.note("notes", detail.notes_total);
    }
    let notes: Vec<NoteOut> = detail
        .notes
        .into_iter()
        .rev()
        .take(SHOWN)
        .rev()
        .map(|n| NoteOut {
            at: time(n.at),
            agent: n.agent,
            text: clip_json(&n.text, 300).0,
        })
        .collect();
    let mut summary = format!(
        "`{}` ({}) is {}, attempt {} of {}",
        task.task, view.title, view.state, view.attempt, view.max_attempts
    );
    if let Some(by) = &detail.done_by {
        summary.push_str(&format!(", finished by `{by}`"));
    }
    let cut: Vec<&str> = [
        ("description", task.description_bytes.is_some()),
        ("result", result_bytes.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, cut)| cut.then_some(name))
    .collect();
    if !cut.is_empty() {
        summary.push_str(&format!(
            "; its {} cut to fit: part={} reads it whole",
            cut.join(" and "),
            cut[0]
        ));
    }
    Structured::new(
        summary,
        GetOut {
            task: Some(task),
            token,
            result,
            result_bytes,
            done_by: detail.done_by,
            dependents: Some(dependents),
            attempts: Some(attempts),
            notes: Some(notes),
            truncated,
            ..GetOut::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::fair_shares;

    #[test]
    fn small_results_stay_whole_and_large_ones_share_the_rest() {
        let cases: [(&[usize], usize, &[usize]); 4] = [
            (&[10, 20, 30], 100, &[10, 20, 30]),
            (&[10, 1000, 1000], 110, &[10, 50, 50]),
            (&[0, 500], 100, &[0, 100]),
            (&[], 100, &[]),
        ];
        for (weights, budget, expected) in cases {
            assert_eq!(fair_shares(weights, budget), expected, "{weights:?}");
        }
    }
}
