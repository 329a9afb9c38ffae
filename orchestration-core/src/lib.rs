//! Coordinate many AI agents working on one project.
//!
//! Workflows are DAGs of tasks with parallel and sequential steps, cycle-checked dependencies,
//! atomic claims with leases and fencing tokens, retries with backoff, and failure propagation.
//! State lives in SQLite ([`Store`]); every change is appended to an event log in the same
//! transaction.
//!
//! ```
//! use orchestration_core::{
//!     AgentUpdate, ClaimRequest, CreateOptions, Mode, TaskUpdate, Store, TaskSpec, WorkflowSpec,
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
//! let done = TaskUpdate::Complete { result: Some("ok".into()), actual: None };
//! let outcome = store.update_task(&claim.task.id.into(), "agent-1", claim.token, &done, None)?;
//! assert_eq!(outcome.unblocked, ["test"]);
//! # Ok::<(), orchestration_core::Error>(())
//! ```

pub mod agent;
mod clock;
pub mod collaboration;
mod error;
mod id;
pub mod limits;
mod runner;
pub mod sprint;
pub mod store;
pub mod text;
#[cfg(test)]
mod tidy;
pub mod workflow;

// The names most programs need are here; the rest live in their modules: `workflow` (the DAG,
// its analysis and the state machine), `agent` (profiles, scoring, assignment, workload),
// `sprint` (capacity, velocity, planning, forecasts, reports), `collaboration` (locks and
// deadlocks), `store` (what the store's use cases take and return) and `text`.
pub use crate::agent::{AgentProfile, AgentStatus};
pub use crate::clock::{Clock, ManualClock};
pub use crate::error::{Error, Result, SpecError, StorageError, StorageFault};
pub use crate::id::{LeaseToken, TaskId, WorkflowId};
pub use crate::runner::{Outcome, RunSummary, Runner, TaskFailure, WorkContext};
pub use crate::store::{
    AgentUpdate, Claim, ClaimOutcome, ClaimRequest, CreateOptions, Created, DEFAULT_DB_PATH, Event,
    EventKind, SCHEMA_VERSION, Store, TaskRef, TaskUpdate, UpdateOutcome, WorkflowRef,
};
pub use crate::workflow::{
    FailureKind, FailurePolicy, Mode, RetryPolicy, TaskSpec, TaskState, WorkflowAction,
    WorkflowSpec, WorkflowStatus,
};
