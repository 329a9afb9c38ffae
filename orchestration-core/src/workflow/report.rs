//! The report of one workflow, from its record, its tasks, its graph and the skills of the
//! active agents: what is ready, held and blocked and why, whether it can move, the remaining
//! critical path and the forecast finish. Pure: the store loads, this decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::agent::skill_gap;
use crate::id::WorkflowId;
use crate::text::counted_are;

use super::dag::Dag;
use super::record::{TaskRecord, WorkflowRecord};
use super::spec::{CriticalPath, Mode};
use super::state::{FailurePolicy, FailureReason, TaskState, WorkflowStatus};
use super::view::{TaskView, view_with};

/// One line of a workflow list.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSummary {
    /// Id.
    pub id: WorkflowId,
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Status.
    pub status: WorkflowStatus,
    /// How dependencies were given.
    pub mode: Mode,
    /// What a failure does.
    pub on_failure: FailurePolicy,
    /// Tasks by state (only states that occur).
    pub counts: BTreeMap<TaskState, u64>,
    /// Tasks in all.
    pub total_tasks: u64,
    /// Points of all tasks.
    pub total_points: f64,
    /// Points of succeeded tasks.
    pub done_points: f64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A short view of a task in a report.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskBrief {
    /// Key.
    pub key: String,
    /// Title.
    pub title: String,
    /// State.
    pub state: TaskState,
    /// Points.
    pub estimate: f64,
    /// Priority.
    pub priority: i64,
    /// Why it is not moving, for blocked and failed tasks.
    pub reason: Option<String>,
}

/// A task held by an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedTask {
    /// Key.
    pub key: String,
    /// State: assigned or running.
    pub state: TaskState,
    /// The agent holding it.
    pub agent: String,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// True when the lease has run out and the next claim or tick will take the task back.
    pub lease_expired: bool,
    /// The attempt number.
    pub attempt: u32,
    /// The agent's last note.
    pub note: Option<String>,
}

/// Whether a workflow can move.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Created, not started.
    NotStarted,
    /// Tasks are ready, leased or waiting to retry.
    Moving,
    /// Paused by an operator.
    Paused,
    /// Unfinished, but nothing can move without a change: the reason says what.
    Stalled(String),
    /// Finished.
    Finished,
}

/// Everything about one workflow's state.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowReport {
    /// The headline.
    pub summary: WorkflowSummary,
    /// Whether it can move, and if not why.
    pub progress: Progress,
    /// Ready tasks in claim order.
    pub ready: Vec<TaskBrief>,
    /// Tasks held by agents.
    pub leased: Vec<LeasedTask>,
    /// Pending, waiting-to-retry, failed and upstream-failed tasks, and gates waiting for
    /// approval, with the reason.
    pub blocked: Vec<TaskBrief>,
    /// The longest chain of unfinished work.
    pub remaining_critical_path: CriticalPath,
    /// When the remaining critical path should be done at the pace seen so far, once a task
    /// has finished to measure it.
    pub forecast_finish: Option<DateTime<Utc>>,
    /// Every task, in creation order.
    pub tasks: Vec<TaskView>,
    /// Dependency edges as (dependency key, dependent key).
    pub edges: Vec<(String, String)>,
    /// Each task's stage (0 for tasks without dependencies), in the order of `tasks`.
    pub stages: Vec<u32>,
}

/// A workflow's status at a glance: what [`WorkflowReport`] says about it, with each list cut
/// to its first tasks and counted in full, and neither the tasks nor the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOverview {
    /// The headline.
    pub summary: WorkflowSummary,
    /// Whether it can move, and if not why.
    pub progress: Progress,
    /// The first ready tasks in claim order.
    pub ready: Vec<TaskBrief>,
    /// How many tasks are ready.
    pub ready_total: u64,
    /// The first tasks held by agents, in creation order.
    pub leased: Vec<LeasedTask>,
    /// How many tasks are held.
    pub leased_total: u64,
    /// The first blocked tasks in creation order, with the reason.
    pub blocked: Vec<TaskBrief>,
    /// How many tasks are blocked.
    pub blocked_total: u64,
    /// The longest chain of unfinished work.
    pub remaining_critical_path: CriticalPath,
    /// As [`WorkflowReport::forecast_finish`].
    pub forecast_finish: Option<DateTime<Utc>>,
}

/// The states a report lists as blocked.
pub(crate) const BLOCKED: [TaskState; 5] = [
    TaskState::Pending,
    TaskState::WaitingRetry,
    TaskState::Failed,
    TaskState::UpstreamFailed,
    TaskState::AwaitingApproval,
];

/// What a verdict on progress reads of the ready tasks: the first in claim order, each with
/// the skills it needs; how many there are; and whether an active agent can take one of those
/// after `first`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyWork<'a> {
    pub(crate) first: &'a [(String, BTreeMap<String, u8>)],
    pub(crate) total: u64,
    pub(crate) later_taken: bool,
}

/// The report of `workflow` at `now`: `tasks` in creation order, the nodes of `dag`; `skills`
/// the requirements of the tasks that have some; `agents` as [`progress`] takes them.
pub(crate) fn report(
    workflow: &WorkflowRecord,
    summary: WorkflowSummary,
    tasks: &[TaskRecord],
    dag: &Dag,
    skills: &HashMap<i64, BTreeMap<String, u8>>,
    agents: Option<&[BTreeMap<String, u8>]>,
    now: DateTime<Utc>,
) -> WorkflowReport {
    let graph = Graph {
        workflow,
        tasks,
        dag,
    };
    let Sorted {
        ready,
        leased,
        blocked,
    } = graph.sort(now);
    let remaining_critical_path = graph.remaining_critical_path();
    let forecast_finish = forecast(tasks, now, remaining_critical_path.length);
    let mut ready_tasks: Vec<&TaskRecord> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Ready)
        .collect();
    ready_tasks.sort_by(|a, b| a.claim_rank().cmp(&b.claim_rank()));
    let first: Vec<(String, BTreeMap<String, u8>)> = ready_tasks
        .iter()
        .map(|t| {
            (
                t.key.clone(),
                skills.get(&t.id).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let gates: Vec<String> = tasks
        .iter()
        .filter(|t| t.state == TaskState::AwaitingApproval)
        .map(|t| t.key.clone())
        .collect();
    let ready_work = ReadyWork {
        first: &first,
        total: first.len() as u64,
        later_taken: false,
    };
    let progress = progress(
        workflow,
        &summary.counts,
        &ready_work,
        &gates,
        gates.len() as u64,
        agents,
    );
    let views = tasks
        .iter()
        .enumerate()
        .map(|(v, t)| {
            let skills = skills.get(&t.id).cloned().unwrap_or_default();
            view_with(t, skills, graph.keys(dag.predecessors(v as u32)))
        })
        .collect();
    let edges = tasks
        .iter()
        .enumerate()
        .flat_map(|(v, t)| {
            dag.predecessors(v as u32)
                .iter()
                .map(|&p| (graph.key(p), t.key.clone()))
        })
        .collect();
    WorkflowReport {
        summary,
        progress,
        ready,
        leased,
        blocked,
        remaining_critical_path,
        forecast_finish,
        tasks: views,
        edges,
        stages: dag.levels().to_vec(),
    }
}

/// A workflow's tasks over its graph: node `v` is `tasks[v]`.
struct Graph<'a> {
    workflow: &'a WorkflowRecord,
    tasks: &'a [TaskRecord],
    dag: &'a Dag,
}

/// The unfinished tasks of a report by what they wait for.
struct Sorted {
    /// In claim order.
    ready: Vec<TaskBrief>,
    leased: Vec<LeasedTask>,
    /// With the reason each waits.
    blocked: Vec<TaskBrief>,
}

impl Graph<'_> {
    fn key(&self, v: u32) -> String {
        self.tasks[v as usize].key.clone()
    }

    fn keys(&self, nodes: &[u32]) -> Vec<String> {
        nodes.iter().map(|&v| self.key(v)).collect()
    }

    /// Ready tasks in claim order, leased tasks, and blocked tasks with their reasons.
    fn sort(&self, now: DateTime<Utc>) -> Sorted {
        let mut ready: Vec<&TaskRecord> = Vec::new();
        let mut leased = Vec::new();
        let mut blocked = Vec::new();
        for (v, task) in self.tasks.iter().enumerate() {
            match task.state {
                TaskState::Ready => ready.push(task),
                TaskState::Assigned | TaskState::Running => leased.push(self::leased(task, now)),
                _ => {
                    if let Some(reason) = self.blocked_reason(v as u32) {
                        blocked.push(brief(task, Some(reason)));
                    }
                }
            }
        }
        ready.sort_by(|a, b| a.claim_rank().cmp(&b.claim_rank()));
        Sorted {
            ready: ready.into_iter().map(|task| brief(task, None)).collect(),
            leased,
            blocked,
        }
    }

    /// Why the task at `v` is not moving, when it is pending, waiting to retry or failed.
    fn blocked_reason(&self, v: u32) -> Option<String> {
        let dependencies: Vec<(&str, TaskState)> = self
            .dag
            .predecessors(v)
            .iter()
            .map(|&p| {
                let task = &self.tasks[p as usize];
                (task.key.as_str(), task.state)
            })
            .collect();
        blocked_reason(&self.workflow.name, &self.tasks[v as usize], &dependencies)
    }

    /// The longest chain of unfinished work: finished tasks weigh nothing.
    fn remaining_critical_path(&self) -> CriticalPath {
        let durations: Vec<f64> = self
            .tasks
            .iter()
            .map(|t| {
                if t.state.is_terminal() {
                    0.0
                } else {
                    t.estimate
                }
            })
            .collect();
        let schedule = self.dag.schedule(&durations);
        CriticalPath {
            keys: schedule
                .critical_path
                .iter()
                .filter(|&&v| !self.tasks[v as usize].state.is_terminal())
                .map(|&v| self.key(v))
                .collect(),
            length: schedule.makespan,
        }
    }
}

/// Why `task` of `workflow` is not moving, when it is pending, waiting to retry, failed or a
/// gate; `dependencies` are its direct dependencies as (key, state), in the graph's order.
pub(crate) fn blocked_reason(
    workflow: &str,
    task: &TaskRecord,
    dependencies: &[(&str, TaskState)],
) -> Option<String> {
    let error = || task.error.clone().unwrap_or_default();
    let named = |pick: fn(TaskState) -> bool| -> Vec<String> {
        dependencies
            .iter()
            .filter(|(_, state)| pick(*state))
            .map(|(key, _)| format!("{workflow}/{key}"))
            .collect()
    };
    Some(match task.state {
        TaskState::Pending => {
            let waiting = named(|s| !s.is_terminal());
            if waiting.is_empty() {
                "waiting for the workflow to start".to_owned()
            } else {
                format!("waiting on {}", listed(&waiting, 5))
            }
        }
        TaskState::WaitingRetry => {
            let at = task.deadline.map(crate::text::rfc3339).unwrap_or_default();
            format!(
                "attempt {} of {} failed ({}); retry at {at}",
                task.attempt,
                task.max_attempts,
                error()
            )
        }
        TaskState::Failed => {
            let reason = task.reason.map_or("error", FailureReason::as_str);
            format!("failed ({reason}): {}", error())
        }
        TaskState::UpstreamFailed => {
            let failed = named(TaskState::is_failure);
            format!("dependency failed: {}", listed(&failed, 5))
        }
        TaskState::AwaitingApproval => {
            "a gate: waiting for a person to approve or reject it, not work for an agent".to_owned()
        }
        _ => return None,
    })
}

/// The longest chain of unfinished work of `workflow`, whose tasks are `tasks` over `dag`.
pub(crate) fn remaining_critical_path(
    workflow: &WorkflowRecord,
    tasks: &[TaskRecord],
    dag: &Dag,
) -> CriticalPath {
    Graph {
        workflow,
        tasks,
        dag,
    }
    .remaining_critical_path()
}

/// A held task in a report's lists.
pub(crate) fn leased(task: &TaskRecord, now: DateTime<Utc>) -> LeasedTask {
    LeasedTask {
        key: task.key.clone(),
        state: task.state,
        agent: task.agent.clone().unwrap_or_default(),
        lease_expires_at: task.deadline,
        lease_expired: task.deadline.is_some_and(|d| d <= now),
        attempt: task.attempt,
        note: task.note.clone(),
    }
}

/// A task in a report's lists.
pub(crate) fn brief(task: &TaskRecord, reason: Option<String>) -> TaskBrief {
    TaskBrief {
        key: task.key.clone(),
        title: task.title.clone(),
        state: task.state,
        estimate: task.estimate,
        priority: task.priority,
        reason,
    }
}

/// Projects the remaining critical path at the pace of the tasks finished so far: wall time
/// per point of estimate, from start to success.
fn forecast(tasks: &[TaskRecord], now: DateTime<Utc>, remaining: f64) -> Option<DateTime<Utc>> {
    let (mut millis_spent, mut points) = (0i64, 0.0);
    for task in tasks.iter().filter(|t| t.state == TaskState::Succeeded) {
        if let (Some(start), Some(end)) = (task.started_at, task.finished_at) {
            millis_spent += (end - start).num_milliseconds().max(0);
            points += task.estimate;
        }
    }
    forecast_from(millis_spent, points, now, remaining)
}

/// The forecast finish from the pace so far: `millis_spent` from start to success on tasks of
/// `points` in all, and `remaining` points on the remaining critical path.
pub(crate) fn forecast_from(
    millis_spent: i64,
    points: f64,
    now: DateTime<Utc>,
    remaining: f64,
) -> Option<DateTime<Utc>> {
    if points <= 0.0 {
        return None;
    }
    if remaining <= 0.0 {
        return Some(now);
    }
    let per_point = millis_spent as f64 / points;
    Some(now + chrono::Duration::milliseconds((per_point * remaining).round() as i64))
}

/// Whether a workflow can move: its status, then what its tasks and the active agents allow.
/// `counts` are its tasks by state; `gates` the first keys of its gates waiting for a person,
/// `gates_total` how many there are; `agents` holds the skills of each active agent, `None`
/// when no agent is registered at all.
pub(crate) fn progress(
    workflow: &WorkflowRecord,
    counts: &BTreeMap<TaskState, u64>,
    ready: &ReadyWork<'_>,
    gates: &[String],
    gates_total: u64,
    agents: Option<&[BTreeMap<String, u8>]>,
) -> Progress {
    match workflow.status {
        WorkflowStatus::Created => return Progress::NotStarted,
        WorkflowStatus::Paused => return Progress::Paused,
        WorkflowStatus::Succeeded | WorkflowStatus::Failed | WorkflowStatus::Cancelled => {
            return Progress::Finished;
        }
        WorkflowStatus::Running => {}
    }
    let count = |state| counts.get(&state).copied().unwrap_or(0);
    let moving =
        count(TaskState::Assigned) + count(TaskState::Running) + count(TaskState::WaitingRetry);
    if moving > 0 {
        return Progress::Moving;
    }
    if ready.total == 0 && gates_total > 0 {
        let gates: Vec<String> = gates.iter().map(|key| format!("`{key}`")).collect();
        return Progress::Stalled(format!(
            "waiting for a person to approve or reject {}: {}",
            crate::text::counted(gates_total, "gate"),
            listed_of(&gates, gates_total as usize, 5)
        ));
    }
    if ready.total == 0 {
        return Progress::Stalled(format!(
            "{} task(s) are unfinished but none is ready, leased or waiting to retry",
            workflow.open_tasks
        ));
    }
    // Ready work only moves if some registered, active agent can take it.
    let Some(agents) = agents else {
        return Progress::Stalled(format!(
            "{} ready, but no agent is registered to claim them",
            counted_are(ready.total, "task")
        ));
    };
    if agents.is_empty() {
        return Progress::Stalled(format!(
            "{} ready, but no registered agent is active",
            counted_are(ready.total, "task")
        ));
    }
    let mut needs = Vec::new();
    for (key, required) in ready.first {
        if can_take(agents, required) {
            return Progress::Moving;
        }
        let list: Vec<String> = required.iter().map(|(s, l)| format!("{s}>={l}")).collect();
        needs.push(format!(
            "`{}/{key}` needs {}",
            workflow.name,
            list.join(", ")
        ));
    }
    if ready.later_taken {
        return Progress::Moving;
    }
    Progress::Stalled(format!(
        "no active agent has the skills for any ready task: {}",
        listed_of(&needs, ready.total as usize, 3)
    ))
}

/// Whether one of the active `agents` has every skill `required` asks for.
pub(crate) fn can_take(agents: &[BTreeMap<String, u8>], required: &BTreeMap<String, u8>) -> bool {
    agents
        .iter()
        .any(|caps| skill_gap(caps, required).is_none())
}

impl WorkflowReport {
    /// The DAG as a Mermaid flowchart, each task coloured by its state, in at most `max_nodes`
    /// nodes: a larger workflow is drawn as groups of tasks by stage and state (bands of
    /// consecutive stages when there are many), each labelled with its count, so the diagram
    /// stays readable and its size bounded however large the workflow.
    pub fn to_mermaid(&self, max_nodes: usize) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut used: BTreeSet<TaskState> = BTreeSet::new();
        if self.tasks.len() <= max_nodes {
            let id_of: HashMap<&str, usize> = self
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.key.as_str(), i))
                .collect();
            for (i, task) in self.tasks.iter().enumerate() {
                let title = mermaid_text(&task.title);
                out.push_str(&format!(
                    "  t{i}[\"{}: {title}\"]:::{}\n",
                    task.key, task.state
                ));
                used.insert(task.state);
            }
            for (from, to) in &self.edges {
                if let (Some(a), Some(b)) = (id_of.get(from.as_str()), id_of.get(to.as_str())) {
                    out.push_str(&format!("  t{a} --> t{b}\n"));
                }
            }
        } else {
            self.grouped_mermaid(max_nodes.max(10), &mut out, &mut used);
        }
        for state in used {
            out.push_str(&format!("  classDef {state} {}\n", state_style(state)));
        }
        out
    }

    /// The body of a diagram that draws groups of tasks, by band of stages and state.
    fn grouped_mermaid(&self, max_nodes: usize, out: &mut String, used: &mut BTreeSet<TaskState>) {
        let stage_count = self.stages.iter().copied().max().map_or(1, |s| s + 1);
        // The narrowest bands (a power of two of stages) that keep the groups within budget;
        // one band of every stage has at most one group per state, ten in all.
        let mut width = 1u32;
        let groups = loop {
            let mut groups: BTreeMap<(u32, TaskState), usize> = BTreeMap::new();
            for (task, &stage) in self.tasks.iter().zip(&self.stages) {
                *groups.entry((stage / width, task.state)).or_default() += 1;
            }
            if groups.len() <= max_nodes || width >= stage_count {
                break groups;
            }
            width *= 2;
        };
        out.push_str(&format!(
            "  %% {} tasks drawn as {} groups by stage and state\n",
            self.tasks.len(),
            groups.len()
        ));
        let index: HashMap<(u32, TaskState), usize> =
            groups.keys().enumerate().map(|(i, k)| (*k, i)).collect();
        for (&(band, state), &count) in &groups {
            let first = band * width + 1;
            let last = ((band + 1) * width).min(stage_count);
            let stages = if first == last {
                format!("stage {first}")
            } else {
                format!("stages {first}-{last}")
            };
            out.push_str(&format!(
                "  g{}[\"{stages}: {count} {state}\"]:::{state}\n",
                index[&(band, state)]
            ));
            used.insert(state);
        }
        let group_of: HashMap<&str, usize> = self
            .tasks
            .iter()
            .zip(&self.stages)
            .map(|(task, &stage)| (task.key.as_str(), index[&(stage / width, task.state)]))
            .collect();
        let mut links: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (from, to) in &self.edges {
            if let (Some(&a), Some(&b)) = (group_of.get(from.as_str()), group_of.get(to.as_str()))
                && a != b
            {
                links.insert((a, b));
            }
        }
        for (a, b) in links {
            out.push_str(&format!("  g{a} --> g{b}\n"));
        }
    }
}

/// The first `max` of `items` joined for a message, and how many more there are.
fn listed(items: &[String], max: usize) -> String {
    listed_of(items, items.len(), max)
}

/// The first `max` of `first`, the head of `total` items, joined for a message, and how many
/// more there are.
fn listed_of(first: &[String], total: usize, max: usize) -> String {
    let shown = first[..first.len().min(max)].join(", ");
    if total > max {
        format!("{shown} and {} more", total - max)
    } else {
        shown
    }
}

/// Text as a Mermaid label can hold it.
fn mermaid_text(text: &str) -> String {
    text.replace(['"', '[', ']', '<', '>', '`'], "'")
}

/// The colours of a state in diagrams.
fn state_style(state: TaskState) -> &'static str {
    match state {
        TaskState::Pending => "fill:#eeeeee,stroke:#999999",
        TaskState::Ready => "fill:#dbeafe,stroke:#3b82f6",
        TaskState::AwaitingApproval => "fill:#ede9fe,stroke:#7c3aed",
        TaskState::Assigned => "fill:#e0e7ff,stroke:#6366f1",
        TaskState::Running => "fill:#fef3c7,stroke:#f59e0b",
        TaskState::WaitingRetry => "fill:#ffedd5,stroke:#f97316",
        TaskState::Succeeded => "fill:#dcfce7,stroke:#22c55e",
        TaskState::Failed => "fill:#fee2e2,stroke:#ef4444",
        TaskState::UpstreamFailed => "fill:#fce7f3,stroke:#ec4899",
        TaskState::Skipped => "fill:#f5f5f5,stroke:#d4d4d4",
        TaskState::Cancelled => "fill:#e5e7eb,stroke:#6b7280",
    }
}
