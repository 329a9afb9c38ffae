//! Workflow tools: `workflow_create`, `workflow_execute`, `task_dependency`, `workflow_status`.

use std::collections::BTreeMap;

use orchestration_core::{
    Analysis, CreateOptions, DependencyEdit, FailurePolicy, Mode, Progress, RetryPolicy, TaskRef,
    TaskSpec, TaskState, WorkflowAction, WorkflowRef, WorkflowReport, WorkflowSpec,
    WorkflowSummary,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolFailure;
use crate::output::{Structured, output_schema, page};
use crate::server::OrchestrationServer;
use crate::tools::task::TaskOut;
use crate::tools::{blocking, time};

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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskIn {
    /// Unique in the workflow
    key: String,
    title: String,
    description: Option<String>,
    /// Points, default 1
    estimate: Option<f64>,
    /// 0-100, default 50
    priority: Option<i64>,
    /// {skill: min level 1-5}
    skills: Option<BTreeMap<String, u8>>,
    /// Keys to finish first
    depends_on: Option<Vec<String>>,
    /// Incl. the first, default 3
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryIn {
    /// default 1000
    initial_interval_ms: Option<u32>,
    /// default 2
    backoff_coefficient: Option<f64>,
    /// default 100000
    max_interval_ms: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateIn {
    /// Unique
    name: String,
    description: Option<String>,
    /// dag (default, uses depends_on), sequential, parallel
    mode: Option<ModeIn>,
    /// default block_dependents
    on_failure: Option<OnFailureIn>,
    retry: Option<RetryIn>,
    tasks: Vec<TaskIn>,
    /// default true
    start: Option<bool>,
    /// A retry with it returns the first result
    idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PathOut {
    keys: Vec<String>,
    /// Sum of estimates
    length: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CreatedOut {
    id: String,
    name: String,
    status: String,
    /// True when an earlier call with this idempotency_key made it
    replayed: bool,
    /// Task keys by parallel stage
    stages: Vec<Vec<String>>,
    critical_path: PathOut,
    ready: Vec<String>,
    warnings: Vec<String>,
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
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteIn {
    /// Name or id
    workflow: String,
    action: ActionIn,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExecuteOut {
    status: String,
    ready: Vec<String>,
    tasks_changed: usize,
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
    /// Task key (add, remove)
    task: Option<String>,
    /// Key the task waits for (add, remove)
    depends_on: Option<String>,
    /// list: full adds states
    detail: Option<DetailIn>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DependenciesOut {
    task: String,
    depends_on: Vec<String>,
    /// detail=full
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DependencyOut {
    /// The task after add or remove
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskOut>,
    /// list: each task's dependencies
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<Vec<DependenciesOut>>,
    /// validate: the graph's stages
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    critical_path: Option<PathOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
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
    /// Omit to list all
    workflow: Option<String>,
    /// full adds every task
    detail: Option<DetailIn>,
    /// Add a Mermaid diagram
    diagram: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
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

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct BriefOut {
    key: String,
    state: String,
    estimate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct LeasedOut {
    key: String,
    state: String,
    agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    lease_expired: bool,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StatusOut {
    /// The workflow list (without `workflow`)
    #[serde(skip_serializing_if = "Option::is_none")]
    workflows: Option<Vec<SummaryOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<SummaryOut>,
    /// moving, not_started, paused, stalled or finished
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<String>,
    /// Why it is stalled
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
    /// detail=full: tasks, paginated
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<TaskOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mermaid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Items shown per list at `detail=summary` in a single workflow's status.
const SUMMARY_ITEMS: usize = 10;

#[tool_router(router = workflow_router, vis = "pub(crate)")]
impl OrchestrationServer {
    /// Create a workflow (a DAG of tasks). Returns stages, critical path, ready tasks, warnings.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<CreatedOut>()
    )]
    async fn workflow_create(
        &self,
        Parameters(input): Parameters<CreateIn>,
    ) -> Result<Structured<CreatedOut>, ToolFailure> {
        let spec = spec_from(
            input.name,
            input.description,
            input.mode,
            input.on_failure,
            input.retry,
            input.tasks,
        )?;
        let options = CreateOptions {
            start: input.start.unwrap_or(true),
            idempotency_key: input.idempotency_key,
        };
        let created = blocking(self.store(), move |store| {
            store.create_workflow(spec, &options)
        })
        .await?;
        let analysis = &created.analysis;
        let summary = format!(
            "{} workflow `{}` ({}): {} stages, critical path {} points, {} ready",
            if created.replayed {
                "already created"
            } else {
                "created"
            },
            created.name,
            created.status,
            analysis.stages.len(),
            analysis.critical_path.length,
            created.ready.len(),
        );
        Ok(Structured::new(
            summary,
            CreatedOut {
                id: created.id.to_string(),
                name: created.name,
                status: created.status.to_string(),
                replayed: created.replayed,
                stages: analysis.stages.clone(),
                critical_path: path(analysis),
                ready: created.ready,
                warnings: analysis.warnings.clone(),
            },
        ))
    }

    /// Start, pause, resume, cancel a workflow, or retry its failed tasks.
    #[tool(
        annotations(destructive_hint = true, open_world_hint = false),
        output_schema = output_schema::<ExecuteOut>()
    )]
    async fn workflow_execute(
        &self,
        Parameters(input): Parameters<ExecuteIn>,
    ) -> Result<Structured<ExecuteOut>, ToolFailure> {
        let action = match input.action {
            ActionIn::Start => WorkflowAction::Start,
            ActionIn::Pause => WorkflowAction::Pause,
            ActionIn::Resume => WorkflowAction::Resume,
            ActionIn::Cancel => WorkflowAction::Cancel,
            ActionIn::RetryFailed => WorkflowAction::RetryFailed,
        };
        let workflow = WorkflowRef::from(input.workflow.as_str());
        let outcome = blocking(self.store(), move |store| store.execute(&workflow, action)).await?;
        let summary = format!(
            "{action}: workflow `{}` is {}; {} task(s) changed, {} ready",
            input.workflow,
            outcome.status,
            outcome.tasks_changed,
            outcome.ready.len()
        );
        Ok(Structured::new(
            summary,
            ExecuteOut {
                status: outcome.status.to_string(),
                ready: outcome.ready,
                tasks_changed: outcome.tasks_changed,
            },
        ))
    }

    /// Add, remove, list or validate dependencies. add rejects a cycle and names it.
    #[tool(
        annotations(destructive_hint = false, open_world_hint = false),
        output_schema = output_schema::<DependencyOut>()
    )]
    async fn task_dependency(
        &self,
        Parameters(input): Parameters<DependencyIn>,
    ) -> Result<Structured<DependencyOut>, ToolFailure> {
        let workflow = WorkflowRef::from(input.workflow.as_str());
        let empty = DependencyOut {
            task: None,
            dependencies: None,
            stages: None,
            critical_path: None,
            warnings: None,
            next_cursor: None,
        };
        match input.action {
            DependencyActionIn::Add | DependencyActionIn::Remove => {
                let (Some(task), Some(depends_on)) = (input.task, input.depends_on) else {
                    return Err(ToolFailure::invalid(
                        "arguments",
                        "add and remove need `task` and `depends_on`",
                    ));
                };
                let edit = match input.action {
                    DependencyActionIn::Add => DependencyEdit::Add,
                    _ => DependencyEdit::Remove,
                };
                let task_ref = TaskRef::key(workflow, task.clone());
                let dep = depends_on.clone();
                let view = blocking(self.store(), move |store| {
                    store.edit_dependency(&task_ref, &dep, edit)
                })
                .await?;
                let verb = if edit == DependencyEdit::Add {
                    "now depends on"
                } else {
                    "no longer depends on"
                };
                let summary = format!("`{task}` {verb} `{depends_on}`; it is {}", view.state);
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        task: Some(TaskOut::from_view(view, false)),
                        ..empty
                    },
                ))
            }
            DependencyActionIn::List => {
                let report =
                    blocking(self.store(), move |store| store.workflow_report(&workflow)).await?;
                let full = input.detail.unwrap_or_default() == DetailIn::Full;
                let all: Vec<DependenciesOut> = report
                    .tasks
                    .iter()
                    .map(|t| DependenciesOut {
                        task: t.key.clone(),
                        depends_on: t.depends_on.clone(),
                        state: full.then(|| t.state.to_string()),
                    })
                    .collect();
                let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
                let summary = format!(
                    "{} of {} tasks with their dependencies",
                    items.len(),
                    all.len()
                );
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        dependencies: Some(items),
                        next_cursor,
                        ..empty
                    },
                ))
            }
            DependencyActionIn::Validate => {
                let analysis =
                    blocking(self.store(), move |store| store.analyse_workflow(&workflow)).await?;
                let summary = format!(
                    "acyclic: {} stages, critical path {} points",
                    analysis.stages.len(),
                    analysis.critical_path.length
                );
                Ok(Structured::new(
                    summary,
                    DependencyOut {
                        critical_path: Some(path(&analysis)),
                        stages: Some(analysis.stages),
                        warnings: Some(analysis.warnings),
                        ..empty
                    },
                ))
            }
        }
    }

    /// One workflow's progress, ready/running/blocked tasks, critical path and forecast; or all workflows.
    #[tool(
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = output_schema::<StatusOut>()
    )]
    async fn workflow_status(
        &self,
        Parameters(input): Parameters<StatusIn>,
    ) -> Result<Structured<StatusOut>, ToolFailure> {
        let empty = StatusOut {
            workflows: None,
            workflow: None,
            progress: None,
            stalled_reason: None,
            ready: None,
            running: None,
            blocked: None,
            remaining_critical_path: None,
            forecast_finish: None,
            tasks: None,
            mermaid: None,
            next_cursor: None,
        };
        let full = input.detail.unwrap_or_default() == DetailIn::Full;
        let Some(name) = input.workflow else {
            let all = blocking(self.store(), |store| store.workflows()).await?;
            let all: Vec<SummaryOut> = all.into_iter().map(|w| summary_out(w, full)).collect();
            let (items, next_cursor) = page(&all, input.limit, input.cursor.as_deref())?;
            let summary = format!("{} of {} workflows", items.len(), all.len());
            return Ok(Structured::new(
                summary,
                StatusOut {
                    workflows: Some(items),
                    next_cursor,
                    ..empty
                },
            ));
        };
        let workflow = WorkflowRef::from(name.as_str());
        let report = blocking(self.store(), move |store| store.workflow_report(&workflow)).await?;
        let mermaid = input.diagram.unwrap_or(false).then(|| report.to_mermaid());
        let (progress, stalled_reason) = match &report.progress {
            Progress::NotStarted => ("not_started", None),
            Progress::Moving => ("moving", None),
            Progress::Paused => ("paused", None),
            Progress::Stalled(reason) => ("stalled", Some(reason.clone())),
            Progress::Finished => ("finished", None),
        };
        let limit = if full { usize::MAX } else { SUMMARY_ITEMS };
        let (tasks, next_cursor) = if full {
            let all: Vec<TaskOut> = report
                .tasks
                .iter()
                .cloned()
                .map(|t| TaskOut::from_view(t, false))
                .collect();
            let (items, next) = page(&all, input.limit, input.cursor.as_deref())?;
            (Some(items), next)
        } else {
            (None, None)
        };
        let summary = status_line(&report);
        Ok(Structured::new(
            summary,
            StatusOut {
                workflow: Some(summary_out(report.summary.clone(), true)),
                progress: Some(progress.into()),
                stalled_reason,
                ready: Some(report.ready.iter().take(limit).map(brief_out).collect()),
                running: Some(report.leased.iter().take(limit).map(leased_out).collect()),
                blocked: Some(report.blocked.iter().take(limit).map(brief_out).collect()),
                remaining_critical_path: Some(PathOut {
                    keys: report.remaining_critical_path.keys.clone(),
                    length: report.remaining_critical_path.length,
                }),
                forecast_finish: report.forecast_finish.map(time),
                tasks,
                mermaid,
                next_cursor,
                ..empty
            },
        ))
    }
}

fn spec_from(
    name: String,
    description: Option<String>,
    mode: Option<ModeIn>,
    on_failure: Option<OnFailureIn>,
    retry: Option<RetryIn>,
    tasks: Vec<TaskIn>,
) -> Result<WorkflowSpec, ToolFailure> {
    let defaults = RetryPolicy::default();
    let retry = match retry {
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
    Ok(WorkflowSpec {
        name,
        description,
        mode: match mode.unwrap_or(ModeIn::Dag) {
            ModeIn::Dag => Mode::Dag,
            ModeIn::Sequential => Mode::Sequential,
            ModeIn::Parallel => Mode::Parallel,
        },
        on_failure: match on_failure.unwrap_or(OnFailureIn::BlockDependents) {
            OnFailureIn::BlockDependents => FailurePolicy::BlockDependents,
            OnFailureIn::Continue => FailurePolicy::Continue,
            OnFailureIn::FailFast => FailurePolicy::FailFast,
        },
        retry,
        tasks: tasks
            .into_iter()
            .map(|t| TaskSpec {
                key: t.key,
                title: t.title,
                description: t.description,
                estimate: t.estimate,
                priority: t.priority,
                skills: t.skills.unwrap_or_default(),
                depends_on: t.depends_on.unwrap_or_default(),
                max_attempts: t.max_attempts,
            })
            .collect(),
    })
}

fn path(analysis: &Analysis) -> PathOut {
    PathOut {
        keys: analysis.critical_path.keys.clone(),
        length: analysis.critical_path.length,
    }
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
        description: if full { summary.description } else { None },
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

fn brief_out(brief: &orchestration_core::TaskBrief) -> BriefOut {
    BriefOut {
        key: brief.key.clone(),
        state: brief.state.to_string(),
        estimate: brief.estimate,
        reason: brief.reason.clone(),
    }
}

fn leased_out(leased: &orchestration_core::LeasedTask) -> LeasedOut {
    LeasedOut {
        key: leased.key.clone(),
        state: leased.state.to_string(),
        agent: leased.agent.clone(),
        lease_expires_at: leased.lease_expires_at.map(time),
        lease_expired: leased.lease_expired,
        attempt: leased.attempt,
        note: leased.note.clone(),
    }
}

/// "release: running, 4/9 done (10/18 points), 2 ready, 1 running, 0 failed"
fn status_line(report: &WorkflowReport) -> String {
    let summary = &report.summary;
    let count = |state| summary.counts.get(&state).copied().unwrap_or(0);
    let failed = count(TaskState::Failed) + count(TaskState::UpstreamFailed);
    let mut line = format!(
        "{}: {}, {}/{} done ({}/{} points), {} ready, {} running, {} failed",
        summary.name,
        summary.status,
        count(TaskState::Succeeded),
        summary.total_tasks,
        summary.done_points,
        summary.total_points,
        report.ready.len(),
        report.leased.len(),
        failed,
    );
    if let Progress::Stalled(reason) = &report.progress {
        line.push_str(&format!("; stalled: {reason}"));
    }
    line
}
