//! Coordinate many AI agents working on one project.
//!
//! Workflows are DAGs of tasks with parallel and sequential steps, cycle-checked dependencies,
//! atomic claims with leases and fencing tokens, retries with backoff, and failure propagation.
//! State lives in SQLite ([`Store`]); every change is appended to an event log in the same
//! transaction.
//!
//! ```
//! use orchestration_core::{
//!     AgentUpdate, ClaimRequest, CreateOptions, Mode, Report, Store, TaskSpec, WorkflowSpec,
//! };
//!
//! let store = Store::open_in_memory()?;
//! // Only registered agents take work.
//! store.upsert_agent("agent-1", &AgentUpdate::default())?;
//! let spec = WorkflowSpec::new("release", Mode::Dag)
//!     .task(TaskSpec::new("build", "Build the binaries"))
//!     .task(TaskSpec::new("test", "Run the tests").after(["build"]));
//! let created = store.create_workflow(spec, &CreateOptions { start: true, ..Default::default() })?;
//! assert_eq!(created.ready, ["build"]);
//!
//! let claim = store.claim(&ClaimRequest::new("agent-1"))?.claimed().expect("build is ready");
//! let done = Report::Complete { result: Some("ok".into()), actual: None };
//! let outcome = store.report(&claim.task.id.into(), "agent-1", claim.token, &done, None)?;
//! assert_eq!(outcome.unblocked, ["test"]);
//! # Ok::<(), orchestration_core::Error>(())
//! ```

mod agent;
mod clock;
mod collaboration;
mod error;
mod id;
pub mod limits;
mod runner;
mod sprint;
mod store;
mod text;
#[cfg(test)]
mod tidy;
mod workflow;

pub use crate::agent::{
    AgentPerformance, AgentProfile, AgentStatus, Assignment, Attempt, AttemptEnd, Breakdown,
    Candidate, EXHAUSTIVE_TEAM_LIMIT, Fleet, Held, Load, Metrics, Move, Needs, OPTIMAL_LIMIT,
    Ranked, Ranking, Record, Rejection, Team, Weights, Workload, assemble_team, assign, check, fit,
    performance, rank, score, workload,
};
pub use crate::clock::{Clock, ManualClock};
pub use crate::collaboration::{Lock, LockMode, Resource, conflicts, deadlock, write_blockers};
pub use crate::error::{Error, Result, SpecError};
pub use crate::id::{LeaseToken, TaskId, WorkflowId};
pub use crate::runner::{Outcome, RunSummary, Runner, TaskFailure, WorkContext};
pub use crate::sprint::{
    Accuracy, Aging, BurnPoint, Capacity, ClosedSprint, Contribution, FOCUS_WINDOW, Finding,
    FindingsInput, Flow, Forecast, Member, MemberCapacity, Plan, ScopeChange, ScopeChangeKind,
    ScopeItem, SprintAttempt, SprintReport, SprintStatus, Totals, VELOCITY_WINDOW, Velocity,
    Window, WorkWeek, accuracy, capacity, contributions, end_of_day, findings, forecast, guideline,
    learnt_focus_factor, plan, sprint_report, svg, text_chart, velocity, working_days,
};
pub use crate::store::SCHEMA_VERSION;
pub use crate::store::{
    AgentUpdate, AnalyticsOptions, Assigned, BatchDelegation, CarryOver, Claim, ClaimOutcome,
    ClaimRequest, CreateOptions, Created, DEFAULT_DB_PATH, DEFAULT_FOCUS_FACTOR, DEFAULT_LEASE,
    DEFAULT_TRIALS, Delegation, DependencyEdit, DependencyResult, Event, EventKind, ExecuteOutcome,
    FocusSource, Handoff, HeldTask, Idle, IdleReason, LeasedTask, LockOutcome, MemberSpec, Message,
    NOTES_SHOWN, Note, PerformanceWindow, Problem, Progress, Rebalanced, Recipients, Report,
    ReportOutcome, Retrospective, RetrospectiveOptions, ScopeEdit, SprintAnalytics, SprintForecast,
    SprintPlan, SprintSpec, SprintSummary, Store, TaskAttempt, TaskBrief, TaskDetail, TaskRef,
    TaskView, Tick, Wait, WorkflowRef, WorkflowReport, WorkflowSummary,
};
pub use crate::text::{counted, points, rfc3339, text_weight};
pub use crate::workflow::{
    AfterFailure, Analysis, CriticalPath, CycleNodes, Dag, FailurePolicy, FailureReason,
    GateDecision, Mode, RetryPolicy, Schedule, TaskEvent, TaskKind, TaskSpec, TaskState,
    ValidatedWorkflow, WorkflowAction, WorkflowSpec, WorkflowStatus, transition,
};
