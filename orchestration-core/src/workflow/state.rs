//! The task state machine (DESIGN.md section 3) and the rules that decide what a dependent does
//! when a dependency finishes, and how a workflow ends.

use std::fmt;
use std::str::FromStr;

/// The state of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Waiting on dependencies.
    Pending,
    /// Dependencies allow it to run; waiting for an agent.
    Ready,
    /// A gate whose dependencies are done, waiting for a person to approve or reject it.
    /// Never offered to an agent.
    AwaitingApproval,
    /// Leased to an agent that has not started it.
    Assigned,
    /// An agent holds a lease and works on it.
    Running,
    /// An attempt failed; the next one may start at `next_attempt_at`.
    WaitingRetry,
    /// Done. Terminal.
    Succeeded,
    /// Failed for good. Terminal.
    Failed,
    /// A dependency failed, so this task will not run. Terminal.
    UpstreamFailed,
    /// Not run because nothing needs it. Terminal.
    Skipped,
    /// Cancelled by an operator or by the workflow's failure policy. Terminal.
    Cancelled,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 11] = [
        TaskState::Pending,
        TaskState::Ready,
        TaskState::AwaitingApproval,
        TaskState::Assigned,
        TaskState::Running,
        TaskState::WaitingRetry,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::UpstreamFailed,
        TaskState::Skipped,
        TaskState::Cancelled,
    ];

    /// Terminal states are absorbing: only an explicit retry leaves them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded
                | TaskState::Failed
                | TaskState::UpstreamFailed
                | TaskState::Skipped
                | TaskState::Cancelled
        )
    }

    /// Leased to an agent: assigned or running.
    pub fn is_leased(self) -> bool {
        matches!(self, TaskState::Assigned | TaskState::Running)
    }

    /// Counts as a failure for the leaf rule and for dependents.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            TaskState::Failed | TaskState::UpstreamFailed | TaskState::Cancelled
        )
    }

    /// The stable snake_case name used in the database, the event log and the MCP tools.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Ready => "ready",
            TaskState::Assigned => "assigned",
            TaskState::Running => "running",
            TaskState::WaitingRetry => "waiting_retry",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Skipped => "skipped",
            TaskState::Cancelled => "cancelled",
            TaskState::AwaitingApproval => "awaiting_approval",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown task state `{s}`"))
    }
}

/// What happens to a task; the input of [`transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEvent {
    /// Every dependency allows the task to run.
    DependenciesMet,
    /// A dependency failed and the failure policy blocks dependents.
    UpstreamFailed,
    /// A dependency was added that is not satisfied yet.
    DependencyAdded,
    /// Leased to an agent without starting (delegation).
    Assign,
    /// Claimed and started by an agent: its lease begins, the attempt counter grows.
    Start,
    /// The agent gives the task back without it counting as a failed attempt.
    Release,
    /// The lease ran out before the agent reported; the attempt counts as failed and may retry.
    LeaseExpired,
    /// The agent reports success.
    Complete,
    /// An attempt failed and another one is allowed.
    FailAndRetry,
    /// An attempt failed for good.
    Fail,
    /// The backoff after a failed attempt is over.
    RetryDue,
    /// An operator or the failure policy cancels the task.
    Cancel,
    /// An explicit retry of a finished workflow puts the task back in line.
    Reset,
    /// A person approved a gate: it succeeds.
    Approve,
    /// A person rejected a gate: it fails for good.
    Reject,
}

impl TaskEvent {
    /// The verb used in error messages: "cannot complete".
    pub fn verb(self) -> &'static str {
        match self {
            TaskEvent::DependenciesMet => "become ready",
            TaskEvent::UpstreamFailed => "be marked upstream_failed",
            TaskEvent::DependencyAdded => "gain a dependency",
            TaskEvent::Assign => "be assigned",
            TaskEvent::Start => "be claimed",
            TaskEvent::Release => "be released",
            TaskEvent::LeaseExpired => "expire its lease",
            TaskEvent::Complete => "be completed",
            TaskEvent::FailAndRetry | TaskEvent::Fail => "be failed",
            TaskEvent::RetryDue => "be retried",
            TaskEvent::Cancel => "be cancelled",
            TaskEvent::Reset => "be reset",
            TaskEvent::Approve => "be approved",
            TaskEvent::Reject => "be rejected",
        }
    }
}

/// The transition table of the task state machine. Every pair not listed is illegal.
///
/// A task that expires its lease goes back to `ready` when attempts remain: its agent is gone,
/// so there is nothing to back off from. When no attempts remain it fails instead.
pub fn transition(from: TaskState, event: TaskEvent) -> Option<TaskState> {
    use TaskEvent as E;
    use TaskState as S;
    let to = match (from, event) {
        (S::Pending, E::DependenciesMet) => S::Ready,
        (S::Pending, E::UpstreamFailed) => S::UpstreamFailed,
        (S::Ready | S::AwaitingApproval, E::DependencyAdded) => S::Pending,
        (S::Ready | S::AwaitingApproval, E::UpstreamFailed) => S::UpstreamFailed,
        (S::AwaitingApproval, E::Approve) => S::Succeeded,
        (S::AwaitingApproval, E::Reject) => S::Failed,
        (S::Ready, E::Assign) => S::Assigned,
        (S::Ready | S::Assigned, E::Start) => S::Running,
        (S::Assigned | S::Running, E::Release) => S::Ready,
        (S::Assigned, E::LeaseExpired) => S::Ready,
        (S::Running, E::LeaseExpired) => S::Ready,
        (S::Running, E::Complete) => S::Succeeded,
        (S::Running, E::FailAndRetry) => S::WaitingRetry,
        (S::Running, E::Fail) => S::Failed,
        (S::WaitingRetry, E::RetryDue) => S::Ready,
        (
            S::Pending
            | S::Ready
            | S::AwaitingApproval
            | S::Assigned
            | S::Running
            | S::WaitingRetry,
            E::Cancel,
        ) => S::Cancelled,
        (S::Failed | S::UpstreamFailed | S::Cancelled | S::Skipped, E::Reset) => S::Pending,
        _ => return None,
    };
    Some(to)
}

/// Why a task failed or was cancelled; kept with the task and in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The agent reported a failure and no attempts are left.
    Error,
    /// The agent reported a failure that retrying cannot fix.
    NonRetryable,
    /// The agent stopped sending heartbeats and no attempts are left.
    LeaseExpired,
    /// A dependency failed.
    Upstream,
    /// An operator cancelled the task or its workflow.
    Cancelled,
    /// Another task failed in a `fail_fast` workflow, so this one was not started.
    FailFast,
    /// A person rejected the gate.
    Rejected,
}

impl FailureReason {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Error => "error",
            FailureReason::NonRetryable => "non_retryable",
            FailureReason::LeaseExpired => "lease_expired",
            FailureReason::Upstream => "upstream",
            FailureReason::Cancelled => "cancelled",
            FailureReason::FailFast => "fail_fast",
            FailureReason::Rejected => "rejected",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<FailureReason> {
        [
            FailureReason::Error,
            FailureReason::NonRetryable,
            FailureReason::LeaseExpired,
            FailureReason::Upstream,
            FailureReason::Cancelled,
            FailureReason::FailFast,
            FailureReason::Rejected,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == s)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a workflow does when one of its tasks fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Dependents of the failed task become `upstream_failed` at once, transitively;
    /// independent branches keep running.
    #[default]
    BlockDependents,
    /// A failed task counts as done: its dependents run anyway.
    Continue,
    /// No new task starts: every task not yet started is cancelled; running ones may finish.
    FailFast,
}

impl FailurePolicy {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::BlockDependents => "block_dependents",
            FailurePolicy::Continue => "continue",
            FailurePolicy::FailFast => "fail_fast",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<FailurePolicy> {
        [
            FailurePolicy::BlockDependents,
            FailurePolicy::Continue,
            FailurePolicy::FailFast,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == s)
    }
}

/// What a dependent does when one of its dependencies reaches a terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamEffect {
    /// The dependency counts as done.
    Satisfied,
    /// The dependent can never run: it becomes `upstream_failed`.
    Blocked,
}

/// The trigger rule: `all_success` by default, `all_done` under [`FailurePolicy::Continue`].
pub(crate) fn upstream_effect(
    policy: FailurePolicy,
    upstream: TaskState,
) -> Option<UpstreamEffect> {
    match upstream {
        TaskState::Succeeded | TaskState::Skipped => Some(UpstreamEffect::Satisfied),
        TaskState::Failed | TaskState::UpstreamFailed | TaskState::Cancelled => match policy {
            FailurePolicy::Continue => Some(UpstreamEffect::Satisfied),
            FailurePolicy::BlockDependents | FailurePolicy::FailFast => {
                Some(UpstreamEffect::Blocked)
            }
        },
        TaskState::Pending
        | TaskState::Ready
        | TaskState::AwaitingApproval
        | TaskState::Assigned
        | TaskState::Running
        | TaskState::WaitingRetry => None,
    }
}

/// The lifecycle of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    /// Created; no task is offered to agents until it starts.
    Created,
    /// Tasks are offered to agents.
    Running,
    /// No new task is handed out; leased tasks may still report.
    Paused,
    /// Every task finished and every leaf succeeded or was skipped.
    Succeeded,
    /// Every task finished and some leaf failed (or a `fail_fast` failure stopped it).
    Failed,
    /// Cancelled by an operator.
    Cancelled,
}

impl WorkflowStatus {
    /// Succeeded, failed or cancelled.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            WorkflowStatus::Succeeded | WorkflowStatus::Failed | WorkflowStatus::Cancelled
        )
    }

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Created => "created",
            WorkflowStatus::Running => "running",
            WorkflowStatus::Paused => "paused",
            WorkflowStatus::Succeeded => "succeeded",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<WorkflowStatus> {
        [
            WorkflowStatus::Created,
            WorkflowStatus::Running,
            WorkflowStatus::Paused,
            WorkflowStatus::Succeeded,
            WorkflowStatus::Failed,
            WorkflowStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's action on a whole workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowAction {
    /// Offer its tasks to agents.
    Start,
    /// Stop handing out tasks.
    Pause,
    /// Hand out tasks again.
    Resume,
    /// Cancel every unfinished task.
    Cancel,
    /// Put failed, upstream-failed and fail-fast-cancelled tasks back in line.
    RetryFailed,
}

impl WorkflowAction {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowAction::Start => "start",
            WorkflowAction::Pause => "pause",
            WorkflowAction::Resume => "resume",
            WorkflowAction::Cancel => "cancel",
            WorkflowAction::RetryFailed => "retry_failed",
        }
    }

    /// The status this action moves a workflow in `from` to, or `None` when it does not apply.
    pub fn apply(self, from: WorkflowStatus) -> Option<WorkflowStatus> {
        use WorkflowStatus as W;
        match (self, from) {
            (WorkflowAction::Start, W::Created) => Some(W::Running),
            (WorkflowAction::Pause, W::Running) => Some(W::Paused),
            (WorkflowAction::Resume, W::Paused) => Some(W::Running),
            (WorkflowAction::Cancel, W::Created | W::Running | W::Paused) => Some(W::Cancelled),
            (WorkflowAction::RetryFailed, W::Failed | W::Running | W::Paused) => Some(W::Running),
            _ => None,
        }
    }
}

impl fmt::Display for WorkflowAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The leaf rule (Airflow's): once no task is unfinished, a workflow succeeds when every leaf
/// succeeded or was skipped, and fails otherwise. A `fail_fast` stop fails it whatever the
/// leaves say. Returns `None` while tasks are unfinished.
pub(crate) fn outcome(
    open_tasks: u64,
    fail_fast_triggered: bool,
    leaves: impl IntoIterator<Item = TaskState>,
) -> Option<WorkflowStatus> {
    if open_tasks > 0 {
        return None;
    }
    if fail_fast_triggered {
        return Some(WorkflowStatus::Failed);
    }
    let failed = leaves.into_iter().any(TaskState::is_failure);
    Some(if failed {
        WorkflowStatus::Failed
    } else {
        WorkflowStatus::Succeeded
    })
}
