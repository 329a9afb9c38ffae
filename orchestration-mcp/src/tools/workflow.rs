//! Workflow tools: `workflow_create`, `workflow_execute`, `task_dependency`, `workflow_status`.

use std::collections::BTreeMap;

use orchestration_core::{
    CreateOptions, FailurePolicy, Mode, RetryPolicy, TaskSpec, TaskState, WorkflowAction,
    WorkflowRef, WorkflowSpec, limits, store::DependencyEdit, store::Progress,
    store::WorkflowOverview, store::WorkflowReport, store::WorkflowSummary, text::counted,
    workflow::Analysis, workflow::CriticalPath, workflow::GateDecision, workflow::TaskKind,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::args::Parameters;
use crate::error::ToolFailure;
use crate::output::{
    Cut, MAX_JSON_BYTES, PAGE_BYTES, SHOWN, SHOWN_FULL, Structured, output_schema, page,
    page_within,
};
use crate::server::OrchestrationServer;
use crate::tools::task::TaskOut;
use crate::tools::{blocking, task_arg, task_name, time, unused};

/// Nodes a Mermaid diagram holds at most; a larger workflow is drawn in groups.
const DIAGRAM_NODES: usize = 60;

/// Stages listed at most, and tasks listed in each.
const STAGES_SHOWN: usize = 10;

// How task dependencies are given.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModeIn {
    Dag,
    Sequential,
    Parallel,
}

// What a task's final failure does to the rest.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnFailureIn {
    BlockDependents,
    Continue,
    FailFast,
}

/// A JSON schema for `{skill: level}` maps: skill names by the naming rule, levels 1 to 5.
pub(crate) fn skills_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": {"pattern": limits::NAME_PATTERN},
        "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 5}
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskIn {
    #[schemars(pattern(limits::NAME_PATTERN))]
    key: String,
    #[schemars(length(max = 200))]
    title: String,
    description: Option<String>,
    /// Points
    #[schemars(range(min = 0, max = 10000), extend("default" = 1))]
    estimate: Option<f64>,
    #[schemars(range(min = 0, max = 100), extend("default" = 50))]
    priority: Option<u8>,
    /// Minimum levels
    #[serde(default)]
    #[schemars(schema_with = "skills_schema")]
    skills: Option<BTreeMap<String, u8>>,
    depends_on: Option<Vec<String>>,
    /// Counts the first
    #[schemars(range(min = 1, max = 100), extend("default" = 3))]
    max_attempts: Option<u32>,
    /// Approved by a person
    gate: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryIn {
    #[schemars(range(min = 1), extend("default" = 1000))]
    initial_interval_ms: Option<u32>,
    #[schemars(range(min = 1, max = 100), extend("default" = 2))]
    backoff_coefficient: Option<f64>,
    #[schemars(range(min = 1, max = 86400000), extend("default" = 100000))]
    max_interval_ms: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateIn {
    #[schemars(pattern(limits::NAME_PATTERN))]
    name: String,
    description: Option<String>,
    /// dag uses depends_on
    #[schemars(extend("default" = "dag"))]
    mode: Option<ModeIn>,
    #[schemars(extend("default" = "block_dependents"))]
    on_failure: Option<OnFailureIn>,
    retry: Option<RetryIn>,
    tasks: Vec<TaskIn>,
    #[schemars(extend("default" = true))]
    start: Option<bool>,
    /// Repeats return the first result
    idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct StageOut {
    size: usize,
    tasks: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PathOut {
    tasks: Vec<String>,
    /// Sum of estimates
    length: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreatedOut {
    id: String,
    name: String,
    status: String,
    /// True when an earlier call with this idempotency_key made it
    replayed: bool,
    tasks: usize,
    /// Tasks by parallel stage
    stages: Vec<StageOut>,
    critical_path: PathOut,
    ready: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

// An operator's action on a workflow.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActionIn {
    Start,
    Pause,
    Resume,
    Cancel,
    RetryFailed,
    Approve,
    Reject,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteIn {
    workflow: String,
    action: ActionIn,
    /// The gate
    task: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ExecuteOut {
    status: String,
    tasks_changed: usize,
    ready: Vec<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

// What to do with dependencies.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DependencyActionIn {
    Add,
    Remove,
    List,
    Validate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DependencyIn {
    workflow: String,
    action: DependencyActionIn,
    /// add, remove
    task: Option<String>,
    /// add, remove
    depends_on: Option<String>,
    /// list: full adds states
    detail: Option<DetailIn>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DependenciesOut {
    task: String,
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct DependencyOut {
    /// add/remove: the task after
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// list
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<Vec<DependenciesOut>>,
    /// validate
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    critical_path: Option<PathOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

// How much a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DetailIn {
    #[default]
    Summary,
    Full,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusIn {
    workflow: Option<String>,
    /// full: every task, paged
    detail: Option<DetailIn>,
    /// Mermaid
    diagram: Option<bool>,
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SummaryOut {
    name: String,
    status: String,
    total_tasks: u64,
    total_points: f64,
    done_points: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Tasks by state
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BriefOut {
    task: String,
    state: String,
    estimate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeasedOut {
    task: String,
    state: String,
    agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lease_expired: bool,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct StatusOut {
    /// Without `workflow`: the list
    #[serde(skip_serializing_if = "Option::is_none")]
    workflows: Option<Vec<SummaryOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<SummaryOut>,
    /// moving, not_started, paused, stalled or finished
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stalled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<Vec<BriefOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<Vec<LeasedOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<Vec<BriefOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_critical_path: Option<PathOut>,
    /// At the pace of finished tasks
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast_finish: Option<String>,
    /// detail=full: every task, paged
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<TaskOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mermaid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Cut::is_empty")]
    truncated: Cut,
}

#[tool_router(router = workflow_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Create a workflow (a task DAG): stages, critical path, ready tasks, warnings.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn workflow_create(
        &self,
        Parameters(input): Parameters<CreateIn>,
    ) -> Result<Structured<CreatedOut>, ToolFailure> {
        let options = CreateOptions {
            start: input.start.unwrap_or(true),
            idempotency_key: input.idempotency_key.clone(),
        };
        let spec = spec_from(input);
        let tasks = spec.tasks.len();
        let created = blocking(self.store(), move |store| {
            store.create_workflow(spec, &options)
        })
        .await?;
        let analysis = &created.analysis;
        let mut truncated = Cut::default();
        let name = &created.name;
        let ready = truncated.take(
            "ready",
            created.ready.iter().map(|key| task_name(name, key)),
            SHOWN,
        );
        let summary = format!(
            "{} workflow `{name}` ({}): {}, {}, critical path {} points, {} ready",
            if created.replayed {
                "already created"
            } else {
                "created"
            },
            created.status,
            counted(tasks as u64, "task"),
            counted(analysis.stages.len() as u64, "stage"),
            analysis.critical_path.length,
            created.ready.len(),
        );
        Ok(Structured::new(
            summary,
            CreatedOut {
                id: created.id.to_string(),
                name: name.clone(),
                status: created.status.to_string(),
                replayed: created.replayed,
                tasks,
                stages: stages_out(name, analysis, &mut truncated),
                critical_path: path_out(name, &analysis.critical_path, &mut truncated),
                ready,
                warnings: truncated.take("warnings", analysis.warnings.iter().cloned(), SHOWN),
                truncated,
            },
        ))
    }

    /// start, pause, resume, cancel, retry_failed; approve or reject a gate.
    #[tool(
        annotations(destructive_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn workflow_execute(
        &self,
        Parameters(input): Parameters<ExecuteIn>,
        context: RequestContext<RoleServer>,
    ) -> Result<Structured<ExecuteOut>, ToolFailure> {
        let action = match input.action {
            ActionIn::Start => WorkflowAction::Start,
            ActionIn::Pause => WorkflowAction::Pause,
            ActionIn::Resume => WorkflowAction::Resume,
            ActionIn::Cancel => WorkflowAction::Cancel,
            ActionIn::RetryFailed => WorkflowAction::RetryFailed,
            ActionIn::Approve => return self.decide(input, GateDecision::Approve, &context).await,
            ActionIn::Reject => return self.decide(input, GateDecision::Reject, &context).await,
        };
        let action_name = action.as_str();
        unused(
            action_name,
            &[
                ("task", input.task.is_some()),
                ("note", input.note.is_some()),
            ],
        )?;
        let workflow = WorkflowRef::from(input.workflow.as_str());
        let outcome = blocking(self.store(), move |store| store.execute(&workflow, action)).await?;
        let mut truncated = Cut::default();
        let ready = truncated.take(
            "ready",
            outcome
                .ready
                .iter()
                .map(|key| task_name(&outcome.workflow, key)),
            SHOWN,
        );
        let summary = format!(
            "{action}: workflow `{}` is {}; {} changed, {} ready",
            outcome.workflow,
            outcome.status,
            counted(outcome.tasks_changed as u64, "task"),
            outcome.ready.len()
        );
        Ok(Structured::new(
            summary,
            ExecuteOut {
                status: outcome.status.to_string(),
                tasks_changed: outcome.tasks_changed,
                ready,
                truncated,
            },
        ))
    }

    /// Add, remove, list or validate dependencies; add refuses a cycle, naming it.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn task_dependency(
        &self,
        Parameters(input): Parameters<DependencyIn>,
    ) -> Result<Structured<DependencyOut>, ToolFailure> {
        let workflow = WorkflowRef::from(input.workflow.as_str());
        let paging = [
            ("detail", input.detail.is_some()),
            ("limit", input.limit.is_some()),
            ("cursor", input.cursor.is_some()),
        ];
        let edges = [
            ("task", input.task.is_some()),
            ("depends_on", input.depends_on.is_some()),
        ];
        match input.action {
            DependencyActionIn::Add | DependencyActionIn::Remove => {
                let (edit, verb) = match input.action {
                    DependencyActionIn::Add => (DependencyEdit::Add, "add"),
                    _ => (DependencyEdit::Remove, "remove"),
                };
                unused(verb, &paging)?;
                let (Some(task), Some(depends_on)) = (input.task, input.depends_on) else {
                    return Err(ToolFailure::invalid(
                        "arguments",
                        format!("{verb} needs `task` and `depends_on`"),
                    ));
                };
                let task_ref = task_arg("task", &task, Some(&input.workflow))?;
                let dependency = task_arg("depends_on", &depends_on, Some(&input.workflow))?;
                let view = blocking(self.store(), move |store| {
                    store.edit_dependency(&task_ref, &dependency, edit)
                })
                .await?;
                let mut truncated = Cut::default();
                let out = TaskOut::with_dependencies(&view, &mut truncated);
                let dependency = match depends_on.split_once('/') {
                    Some(_) => depends_on,
                    None => task_name(&view.workflow_name, &depends_on),
                };
                let relation = if edit == DependencyEdit::Add {
                    "now depends on"
                } else {
                    "no longer depends on"
                };
                let summary = format!(
                    "`{}` {relation} `{dependency}`; it is {}",
                    out_name(&view),
                    view.state
                );
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        task: Some(out),
                        truncated,
                        ..DependencyOut::default()
                    },
                ))
            }
            DependencyActionIn::List => {
                unused("list", &edges)?;
                let report =
                    blocking(self.store(), move |store| store.workflow_report(&workflow)).await?;
                let name = &report.summary.name;
                let full = input.detail.unwrap_or_default() == DetailIn::Full;
                let all: Vec<DependenciesOut> = report
                    .tasks
                    .iter()
                    .map(|t| DependenciesOut {
                        task: task_name(name, &t.key),
                        depends_on: t.depends_on.iter().map(|k| task_name(name, k)).collect(),
                        state: full.then(|| t.state.to_string()),
                    })
                    .collect();
                let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
                let mut truncated = Cut::default();
                if items.len() < all.len() {
                    truncated.note("dependencies", all.len());
                }
                let summary = format!(
                    "{} of {} with their dependencies",
                    items.len(),
                    counted(all.len() as u64, "task")
                );
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        dependencies: Some(items),
                        next_cursor,
                        truncated,
                        ..DependencyOut::default()
                    },
                ))
            }
            DependencyActionIn::Validate => {
                unused("validate", &edges)?;
                unused("validate", &paging)?;
                let name = input.workflow.clone();
                let analysis =
                    blocking(self.store(), move |store| store.analyse_workflow(&workflow)).await?;
                let summary = format!(
                    "acyclic: {}, critical path {} points",
                    counted(analysis.stages.len() as u64, "stage"),
                    analysis.critical_path.length
                );
                let mut truncated = Cut::default();
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        stages: Some(stages_out(&name, &analysis, &mut truncated)),
                        critical_path: Some(path_out(
                            &name,
                            &analysis.critical_path,
                            &mut truncated,
                        )),
                        warnings: Some(truncated.take(
                            "warnings",
                            analysis.warnings.iter().cloned(),
                            SHOWN,
                        )),
                        truncated,
                        ..DependencyOut::default()
                    },
                ))
            }
        }
    }

    /// A workflow's progress, ready, running, blocked tasks, critical path left, forecast; or all.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema()
    )]
    async fn workflow_status(
        &self,
        Parameters(input): Parameters<StatusIn>,
    ) -> Result<Structured<StatusOut>, ToolFailure> {
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let Some(name) = input.workflow else {
            unused(
                "the list of workflows",
                &[("diagram", input.diagram.is_some())],
            )?;
            let all = blocking(self.store(), |store| store.workflows()).await?;
            let all: Vec<SummaryOut> = all.into_iter().map(|w| summary_out(w, full)).collect();
            let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
            let mut truncated = Cut::default();
            if items.len() < all.len() {
                truncated.note("workflows", all.len());
            }
            let summary = format!(
                "{} of {}",
                items.len(),
                counted(all.len() as u64, "workflow")
            );
            return Ok(Structured::new(
                summary,
                StatusOut {
                    workflows: Some(items),
                    next_cursor,
                    truncated,
                    ..StatusOut::default()
                },
            ));
        };
        if !full {
            unused(
                "a status at detail=summary (detail=full pages the tasks)",
                &[
                    ("limit", input.limit.is_some()),
                    ("cursor", input.cursor.is_some()),
                ],
            )?;
        }
        let workflow = WorkflowRef::from(name.as_str());
        if !full && !input.diagram.unwrap_or(false) {
            // The summary reads a few rows per list, whatever the workflow's size.
            let glance = blocking(self.store(), move |store| {
                store.workflow_overview(&workflow, SHOWN / 2)
            })
            .await?;
            return Ok(overview_out(glance));
        }
        let report = blocking(self.store(), move |store| store.workflow_report(&workflow)).await?;
        let mut out = StatusOut::default();
        let mut truncated = Cut::default();
        let name = report.summary.name.clone();
        // A later page of the tasks carries the tasks alone: the headline and the lists came
        // with the first.
        let later_page = input.cursor.is_some();
        if !later_page {
            let shown = if full { SHOWN_FULL } else { SHOWN / 2 };
            let (progress, stalled_reason) = progress_out(&report.progress);
            out.workflow = Some(summary_out(report.summary.clone(), true));
            out.progress = Some(progress.into());
            out.stalled_reason = stalled_reason;
            out.ready = Some(truncated.take(
                "ready",
                report.ready.iter().map(|b| brief_out(&name, b)),
                shown,
            ));
            out.running = Some(truncated.take(
                "running",
                report.leased.iter().map(|l| leased_out(&name, l)),
                shown,
            ));
            out.blocked = Some(truncated.take(
                "blocked",
                report.blocked.iter().map(|b| brief_out(&name, b)),
                shown,
            ));
            out.remaining_critical_path = Some(path_out(
                &name,
                &report.remaining_critical_path,
                &mut truncated,
            ));
            out.forecast_finish = report.forecast_finish.map(time);
            out.mermaid = input
                .diagram
                .unwrap_or(false)
                .then(|| report.to_mermaid(DIAGRAM_NODES));
        }
        if full {
            let mut dependencies = Cut::default();
            let all: Vec<TaskOut> = report
                .tasks
                .iter()
                .map(|t| TaskOut::with_dependencies(t, &mut dependencies))
                .collect();
            // The page gets what the first page's lists leave of the result budget.
            let rest = serde_json::to_vec(&out).map_or(MAX_JSON_BYTES, |b| b.len());
            let room = MAX_JSON_BYTES.saturating_sub(rest + 1_024).min(PAGE_BYTES);
            let (items, next) = page_within(&all, input.limit, input.cursor.as_deref(), room)?;
            if items.len() < all.len() {
                truncated.note("tasks", all.len());
            }
            out.tasks = Some(items);
            out.next_cursor = next;
        }
        out.truncated = truncated;
        Ok(Structured::new(status_line(&report), out))
    }
}

impl OrchestrationServer {
    /// `workflow_execute` approve or reject: an operator's decision on a gate. A caller
    /// authenticated as an agent is refused: a gate is a person's check on the agents' work.
    async fn decide(
        &self,
        input: ExecuteIn,
        decision: GateDecision,
        context: &RequestContext<RoleServer>,
    ) -> Result<Structured<ExecuteOut>, ToolFailure> {
        crate::auth::check_operator(context, "approve or reject a gate")?;
        let action = decision.as_str();
        let key = crate::tools::need(input.task, "task", action)?;
        let task = task_arg("task", &key, Some(&input.workflow))?;
        let note = input.note;
        let outcome = blocking(self.store(), move |store| {
            store.decide_gate(&task, decision, note.as_deref())
        })
        .await?;
        let workflow = outcome.task.workflow_name.clone();
        let mut truncated = Cut::default();
        let ready = truncated.take(
            "ready",
            outcome
                .unblocked
                .iter()
                .map(|key| task_name(&workflow, key)),
            SHOWN,
        );
        let summary = format!(
            "{action}: gate `{}` is {}; workflow `{workflow}` is {}, {} ready",
            task_name(&workflow, &outcome.task.key),
            outcome.task.state,
            outcome.workflow_status,
            outcome.unblocked.len()
        );
        Ok(Structured::new(
            summary,
            ExecuteOut {
                status: outcome.workflow_status.to_string(),
                tasks_changed: 1 + outcome.unblocked.len(),
                ready,
                truncated,
            },
        ))
    }
}

fn spec_from(input: CreateIn) -> WorkflowSpec {
    let defaults = RetryPolicy::default();
    let retry = match input.retry {
        None => defaults,
        Some(retry) => RetryPolicy {
            initial_interval: retry
                .initial_interval_ms
                .map_or(defaults.initial_interval, |ms| {
                    chrono::Duration::milliseconds(ms.into())
                }),
            backoff_coefficient: retry
                .backoff_coefficient
                .unwrap_or(defaults.backoff_coefficient),
            max_interval: retry.max_interval_ms.map_or(defaults.max_interval, |ms| {
                chrono::Duration::milliseconds(ms.into())
            }),
        },
    };
    WorkflowSpec {
        name: input.name,
        description: input.description,
        mode: match input.mode.unwrap_or(ModeIn::Dag) {
            ModeIn::Dag => Mode::Dag,
            ModeIn::Sequential => Mode::Sequential,
            ModeIn::Parallel => Mode::Parallel,
        },
        on_failure: match input.on_failure.unwrap_or(OnFailureIn::BlockDependents) {
            OnFailureIn::BlockDependents => FailurePolicy::BlockDependents,
            OnFailureIn::Continue => FailurePolicy::Continue,
            OnFailureIn::FailFast => FailurePolicy::FailFast,
        },
        retry,
        tasks: input
            .tasks
            .into_iter()
            .map(|t| TaskSpec {
                key: t.key,
                title: t.title,
                description: t.description,
                estimate: t.estimate,
                priority: t.priority.map(i64::from),
                skills: t.skills.unwrap_or_default(),
                depends_on: t.depends_on.unwrap_or_default(),
                max_attempts: t.max_attempts,
                kind: if t.gate == Some(true) {
                    TaskKind::Gate
                } else {
                    TaskKind::Work
                },
            })
            .collect(),
    }
}

/// The stages of an analysis, at most [`STAGES_SHOWN`] with at most as many tasks each; every
/// stage says how many tasks it has.
fn stages_out(workflow: &str, analysis: &Analysis, cut: &mut Cut) -> Vec<StageOut> {
    cut.take(
        "stages",
        analysis.stages.iter().map(|stage| StageOut {
            size: stage.len(),
            tasks: stage
                .iter()
                .take(STAGES_SHOWN)
                .map(|key| task_name(workflow, key))
                .collect(),
        }),
        STAGES_SHOWN,
    )
}

/// A critical path: its first tasks, and its length.
fn path_out(workflow: &str, path: &CriticalPath, cut: &mut Cut) -> PathOut {
    PathOut {
        tasks: cut.take(
            "critical_path",
            path.keys.iter().map(|key| task_name(workflow, key)),
            SHOWN,
        ),
        length: path.length,
    }
}

fn out_name(view: &orchestration_core::store::TaskView) -> String {
    task_name(&view.workflow_name, &view.key)
}

/// A workflow's headline; `full` adds its id, description, counts by state and times.
fn summary_out(summary: WorkflowSummary, full: bool) -> SummaryOut {
    SummaryOut {
        name: summary.name,
        status: summary.status.to_string(),
        total_tasks: summary.total_tasks,
        total_points: summary.total_points,
        done_points: summary.done_points,
        id: full.then(|| summary.id.to_string()),
        description: if full {
            summary
                .description
                .map(|d| crate::output::clip_json(&d, 2_000).0)
        } else {
            None
        },
        counts: full.then(|| {
            summary
                .counts
                .into_iter()
                .map(|(state, n)| (state.to_string(), n))
                .collect()
        }),
        created_at: full.then(|| time(summary.created_at)),
        finished_at: if full {
            summary.finished_at.map(time)
        } else {
            None
        },
    }
}

fn brief_out(workflow: &str, brief: &orchestration_core::store::TaskBrief) -> BriefOut {
    BriefOut {
        task: task_name(workflow, &brief.key),
        state: brief.state.to_string(),
        estimate: brief.estimate,
        reason: brief
            .reason
            .as_deref()
            .map(|r| crate::output::clip_json(r, 300).0),
    }
}

fn leased_out(workflow: &str, leased: &orchestration_core::store::LeasedTask) -> LeasedOut {
    LeasedOut {
        task: task_name(workflow, &leased.key),
        state: leased.state.to_string(),
        agent: leased.agent.clone(),
        lease_expires_at: leased.lease_expires_at.map(time),
        lease_expired: leased.lease_expired,
        attempt: leased.attempt,
        note: leased
            .note
            .as_deref()
            .map(|n| crate::output::clip_json(n, 300).0),
    }
}

/// The summary status, from the overview: the lists' heads, and their totals where cut.
fn overview_out(glance: WorkflowOverview) -> Structured<StatusOut> {
    let name = glance.summary.name.clone();
    let mut truncated = Cut::default();
    let ready: Vec<BriefOut> = glance.ready.iter().map(|b| brief_out(&name, b)).collect();
    let running: Vec<LeasedOut> = glance.leased.iter().map(|l| leased_out(&name, l)).collect();
    let blocked: Vec<BriefOut> = glance.blocked.iter().map(|b| brief_out(&name, b)).collect();
    for (field, shown, total) in [
        ("ready", ready.len(), glance.ready_total),
        ("running", running.len(), glance.leased_total),
        ("blocked", blocked.len(), glance.blocked_total),
    ] {
        if total as usize > shown {
            truncated.note(field, total as usize);
        }
    }
    let line = line(
        &glance.summary,
        glance.ready_total,
        glance.leased_total,
        &glance.progress,
    );
    let (progress, stalled_reason) = progress_out(&glance.progress);
    let out = StatusOut {
        workflow: Some(summary_out(glance.summary, true)),
        progress: Some(progress.into()),
        stalled_reason,
        ready: Some(ready),
        running: Some(running),
        blocked: Some(blocked),
        remaining_critical_path: Some(path_out(
            &name,
            &glance.remaining_critical_path,
            &mut truncated,
        )),
        forecast_finish: glance.forecast_finish.map(time),
        truncated,
        ..StatusOut::default()
    };
    Structured::new(line, out)
}

/// A verdict on progress as the output names it, with the reason it is stalled.
fn progress_out(progress: &Progress) -> (&'static str, Option<String>) {
    match progress {
        Progress::NotStarted => ("not_started", None),
        Progress::Moving => ("moving", None),
        Progress::Paused => ("paused", None),
        Progress::Stalled(reason) => ("stalled", Some(reason.clone())),
        Progress::Finished => ("finished", None),
    }
}

/// "release: running, 4 of 9 tasks done (10 of 18 points), 2 ready, 1 running, 0 failed"
fn status_line(report: &WorkflowReport) -> String {
    line(
        &report.summary,
        report.ready.len() as u64,
        report.leased.len() as u64,
        &report.progress,
    )
}

fn line(summary: &WorkflowSummary, ready: u64, leased: u64, progress: &Progress) -> String {
    let count = |state| summary.counts.get(&state).copied().unwrap_or(0);
    let failed = count(TaskState::Failed) + count(TaskState::UpstreamFailed);
    let mut line = format!(
        "{}: {}, {} of {} done ({} of {} points), {} ready, {} running, {} failed",
        summary.name,
        summary.status,
        count(TaskState::Succeeded),
        counted(summary.total_tasks, "task"),
        summary.done_points,
        summary.total_points,
        ready,
        leased,
        failed,
    );
    if let Progress::Stalled(reason) = progress {
        line.push_str(&format!("; stalled: {reason}"));
    }
    line
}
