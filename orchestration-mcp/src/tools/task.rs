//! Task tools: `task_claim` and `task_update`.

use std::collections::BTreeMap;

use chrono::Duration;
use orchestration_core::{ClaimRequest, LeaseToken, Report, TaskRef, TaskView, WorkflowRef};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::check_acting_as;
use crate::error::{ToolFailure, to_mcp};
use crate::output::{Structured, output_schema};
use crate::server::OrchestrationServer;
use crate::tools::{blocking, time};

/// A task in a tool result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskOut {
    id: String,
    /// `workflow/key`, how tools name it
    task: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    state: String,
    estimate: f64,
    priority: i64,
    attempt: u32,
    max_attempts: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    skills: BTreeMap<String, u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    /// Why it failed or was cancelled
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
}

impl TaskOut {
    /// With `with_result` false the result text is left out: lists stay small.
    pub(crate) fn from_view(view: TaskView, with_result: bool) -> TaskOut {
        TaskOut {
            id: view.id.to_string(),
            task: format!("{}/{}", view.workflow_name, view.key),
            title: view.title,
            description: view.description,
            state: view.state.to_string(),
            estimate: view.estimate,
            priority: view.priority,
            attempt: view.attempt,
            max_attempts: view.max_attempts,
            skills: view.skills,
            depends_on: view.depends_on,
            agent: view.agent,
            lease_expires_at: view.lease_expires_at.map(time),
            next_attempt_at: view.next_attempt_at.map(time),
            reason: view.reason.map(|r| r.to_string()),
            error: view.error,
            result: if with_result { view.result } else { None },
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimIn {
    /// Your name
    agent: String,
    /// Only this workflow
    workflow: Option<String>,
    /// `workflow/key` or id
    task: Option<String>,
    /// default 900
    lease_seconds: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DependencyOut {
    key: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ClaimOut {
    /// False when nothing suits you now
    claimed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// Pass to every task_update on this lease
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    /// Results of the task's dependencies
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<Vec<DependencyOut>>,
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateIn {
    /// `workflow/key` or id
    task: String,
    /// Your name
    agent: String,
    /// From task_claim
    token: u64,
    /// heartbeat/progress extend the lease
    action: UpdateActionIn,
    /// progress: note
    note: Option<String>,
    /// complete: output for dependents
    result: Option<String>,
    /// complete: points spent
    actual: Option<f64>,
    /// fail: what went wrong
    error: Option<String>,
    /// fail: default true
    retryable: Option<bool>,
    /// new lease, s
    lease_seconds: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UpdateOut {
    task: TaskOut,
    workflow_status: String,
    /// Tasks that became ready
    unblocked: Vec<String>,
}

fn lease(seconds: Option<u32>) -> Option<Duration> {
    seconds.map(|s| Duration::seconds(s.into()))
}

#[tool_router(router = task_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Claim the best ready task for you (or a named one) with a lease token and dependency results.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<ClaimOut>()
    )]
    async fn task_claim(
        &self,
        Parameters(input): Parameters<ClaimIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<ClaimOut>, ToolFailure> {
        check_acting_as(&context, &input.agent)?;
        let mut request = ClaimRequest::new(input.agent.clone());
        request.workflow = input.workflow.as_deref().map(WorkflowRef::from);
        request.task = input
            .task
            .as_deref()
            .map(str::parse::<TaskRef>)
            .transpose()
            .map_err(to_mcp)?;
        request.lease = lease(input.lease_seconds);
        let claim = blocking(self.store(), move |store| store.claim(&request)).await?;
        let Some(claim) = claim else {
            let summary = "nothing to claim now: no ready task suits you; try again later";
            return Ok(Structured::new(
                summary,
                ClaimOut {
                    claimed: false,
                    task: None,
                    token: None,
                    lease_expires_at: None,
                    dependencies: None,
                },
            ));
        };
        let summary = format!(
            "claimed `{}/{}` (attempt {}), token {}, lease until {}",
            claim.task.workflow_name,
            claim.task.key,
            claim.task.attempt,
            claim.token,
            time(claim.lease_expires_at)
        );
        Ok(Structured::new(
            summary,
            ClaimOut {
                claimed: true,
                token: Some(claim.token.0),
                lease_expires_at: Some(time(claim.lease_expires_at)),
                dependencies: Some(
                    claim
                        .dependencies
                        .into_iter()
                        .map(|d| DependencyOut {
                            key: d.key,
                            state: d.state.to_string(),
                            result: d.result,
                        })
                        .collect(),
                ),
                task: Some(TaskOut::from_view(claim.task, false)),
            },
        ))
    }

    /// Report on a task you hold: heartbeat, progress, complete, fail or release.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<UpdateOut>()
    )]
    async fn task_update(
        &self,
        Parameters(input): Parameters<UpdateIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<UpdateOut>, ToolFailure> {
        check_acting_as(&context, &input.agent)?;
        let task: TaskRef = input.task.parse().map_err(to_mcp)?;
        let report = match input.action {
            UpdateActionIn::Heartbeat => Report::Heartbeat,
            UpdateActionIn::Progress => Report::Progress {
                note: input
                    .note
                    .ok_or_else(|| ToolFailure::invalid("note", "progress needs a note"))?,
            },
            UpdateActionIn::Complete => Report::Complete {
                result: input.result,
                actual: input.actual,
            },
            UpdateActionIn::Fail => Report::Fail {
                error: input
                    .error
                    .ok_or_else(|| ToolFailure::invalid("error", "fail needs an error message"))?,
                retryable: input.retryable.unwrap_or(true),
            },
            UpdateActionIn::Release => Report::Release,
        };
        let (agent, token, lease) = (
            input.agent,
            LeaseToken(input.token),
            lease(input.lease_seconds),
        );
        let outcome = blocking(self.store(), move |store| {
            store.report(&task, &agent, token, &report, lease)
        })
        .await?;
        let view = &outcome.task;
        let mut summary = format!("`{}/{}` is {}", view.workflow_name, view.key, view.state);
        if let Some(at) = view.next_attempt_at {
            summary.push_str(&format!(", next attempt at {}", time(at)));
        } else if let Some(at) = view.lease_expires_at {
            summary.push_str(&format!(", lease until {}", time(at)));
        }
        if !outcome.unblocked.is_empty() {
            summary.push_str(&format!("; unblocked {}", outcome.unblocked.join(", ")));
        }
        summary.push_str(&format!("; workflow {}", outcome.workflow_status));
        Ok(Structured::new(
            summary,
            UpdateOut {
                task: TaskOut::from_view(outcome.task, false),
                workflow_status: outcome.workflow_status.to_string(),
                unblocked: outcome.unblocked,
            },
        ))
    }
}
