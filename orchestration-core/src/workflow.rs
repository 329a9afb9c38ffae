//! Workflows: the pure model. Specs and their validation, the dependency graph and its analysis,
//! the task state machine, retry decisions, failure propagation and the workflow outcome.
//!
//! Nothing here reads the clock or touches the database: the store's use cases load state, call
//! these functions with the time they read once, and save what comes back.

mod dag;
mod gate;
mod lease;
mod order;
mod record;
mod report;
mod retry;
mod spec;
mod state;
mod step;
mod view;

#[cfg(test)]
mod tests;

pub use dag::{CycleNodes, Dag, Schedule};
pub(crate) use gate::decide as decide_gate;
pub use gate::{GateDecision, TaskKind};
pub(crate) use order::ClaimRank;
pub(crate) use record::{TaskRecord, WorkflowRecord};
pub(crate) use report::{
    BLOCKED, ReadyWork, blocked_reason, brief, can_take, forecast_from, leased, progress,
    remaining_critical_path, report,
};
pub use report::{
    LeasedTask, Progress, TaskBrief, WorkflowOverview, WorkflowReport, WorkflowSummary,
};
pub use retry::{AfterFailure, FailureKind, RetryPolicy};
pub use spec::{Analysis, CriticalPath, Mode, TaskSpec, ValidatedWorkflow, WorkflowSpec};
pub(crate) use spec::{
    analyse as spec_analyse, check_argument_name, cycle_keys as spec_cycle_keys,
};
pub use state::{
    FailurePolicy, FailureReason, TaskEvent, TaskState, WorkflowAction, WorkflowStatus, transition,
};
pub(crate) use state::{UpstreamEffect, outcome, upstream_effect};
pub(crate) use step::{
    AttemptEnded, CANCELLED_BY_FAIL_FAST, Change, Propagation, on_lease_expired, propagation, step,
};
pub use view::TaskView;
pub(crate) use view::view_with;
