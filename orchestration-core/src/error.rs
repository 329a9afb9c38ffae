//! The core's one error type.
//!
//! Every variant names what was wrong (the field, key, task, agent or workflow) and why, so an
//! agent reading the message can fix its call without guessing. Messages are lowercase without
//! a trailing period.

use crate::workflow::{TaskState, WorkflowAction, WorkflowStatus};

/// A shorthand for results with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A workflow spec broke a rule; nothing was written.
    #[error("invalid workflow spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// The dependencies would form a cycle; each task named depends on the next.
    #[error("dependency cycle: {} (each task depends on the next)", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// An argument of a call broke a rule.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No workflow has this name or id.
    #[error("unknown workflow `{name}`{}", did_you_mean(.closest))]
    UnknownWorkflow {
        /// The name or id given.
        name: String,
        /// The existing names closest to it, best first.
        closest: Vec<String>,
    },
    /// No task has this reference (`workflow/key` or id).
    #[error("unknown task `{task}`{}", did_you_mean(.closest))]
    UnknownTask {
        /// The reference given.
        task: String,
        /// The closest tasks of the same workflow, as `workflow/key`, best first.
        closest: Vec<String>,
    },
    /// No agent is registered under this name.
    #[error("unknown agent `{name}`{}", did_you_mean(.closest))]
    UnknownAgent {
        /// The name given.
        name: String,
        /// The registered names closest to it, best first.
        closest: Vec<String>,
    },
    /// The workflow name is taken.
    #[error(
        "a workflow named `{0}` already exists; choose another name or pass the same idempotency_key to get the first result"
    )]
    WorkflowExists(String),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key `{0}` was already used for a different workflow spec")]
    IdempotencyConflict(String),
    /// The task's state does not allow this.
    #[error("task `{task}` is {state}: it cannot {verb}")]
    IllegalTransition {
        /// `workflow/key` of the task.
        task: String,
        /// Its state now.
        state: TaskState,
        /// What was attempted, as a verb phrase.
        verb: &'static str,
    },
    /// The workflow's status does not allow this action.
    #[error("workflow `{workflow}` is {status}: it cannot {action}")]
    IllegalWorkflowAction {
        /// The workflow's name.
        workflow: String,
        /// Its status now.
        status: WorkflowStatus,
        /// The action attempted.
        action: WorkflowAction,
    },
    /// The workflow is not running, so its tasks cannot be handed out.
    #[error("workflow `{workflow}` is {status}, not running: its tasks cannot {verb}")]
    WorkflowNotRunning {
        /// The workflow's name.
        workflow: String,
        /// Its status now.
        status: WorkflowStatus,
        /// What was attempted on its tasks, as a verb phrase.
        verb: &'static str,
    },
    /// A report carried a lease token that is not the task's current one: an older one (the
    /// lease was lost and the task claimed again) or one never issued (a mistyped token).
    #[error("{}", stale_lease_message(task, *presented, *current))]
    StaleLease {
        /// `workflow/key` of the task.
        task: String,
        /// The token in the report.
        presented: u64,
        /// The task's current token.
        current: u64,
    },
    /// The lease ran out before the report arrived.
    #[error(
        "the lease on task `{task}` expired at {}; the task goes back in line: claim it again", crate::text::rfc3339(*.expired_at)
    )]
    LeaseExpired {
        /// `workflow/key` of the task.
        task: String,
        /// When the lease ended.
        expired_at: chrono::DateTime<chrono::Utc>,
    },
    /// A report came from an agent that does not hold the task's lease.
    #[error("task `{task}` is leased to `{holder}`, not to `{agent}`")]
    NotLeaseHolder {
        /// `workflow/key` of the task.
        task: String,
        /// The agent that reported.
        agent: String,
        /// The agent that holds the lease.
        holder: String,
    },
    /// The task cannot take this dependency edit.
    #[error(
        "cannot change the dependencies of task `{task}`: it is {state}; only pending and ready tasks can gain or lose dependencies"
    )]
    DependencyLocked {
        /// `workflow/key` of the task.
        task: String,
        /// Its state now.
        state: TaskState,
    },
    /// The agent cannot take this task.
    #[error("agent `{agent}` cannot take task `{task}`: {reason}")]
    NotQualified {
        /// The agent's name.
        agent: String,
        /// `workflow/key` of the task.
        task: String,
        /// Why not.
        reason: String,
    },
    /// Waiting for a lock would close a cycle of agents waiting for each other.
    #[error("waiting for `{resource}` would deadlock: {} (each waits for the next); release one of your locks or try later", .cycle.join(" -> "))]
    Deadlock {
        /// The resource asked for.
        resource: String,
        /// The agents in the cycle, first and last the one asking.
        cycle: Vec<String>,
    },
    /// A lock that the agent does not hold.
    #[error("agent `{agent}` holds no lock on `{resource}`{}", .owner.as_ref().map(|o| format!("; it belongs to `{o}`, and only its owner can release it")).unwrap_or_default())]
    LockNotHeld {
        /// The resource.
        resource: String,
        /// The agent that tried to release it.
        agent: String,
        /// Who holds it, if someone else does.
        owner: Option<String>,
    },
    /// A message id that is not in the agent's inbox.
    #[error("message {id} is not in `{agent}`'s inbox")]
    UnknownMessage {
        /// The message id.
        id: i64,
        /// The agent acknowledging.
        agent: String,
    },
    /// No sprint has this name.
    #[error("unknown sprint `{name}`{}", did_you_mean(.closest))]
    UnknownSprint {
        /// The name given.
        name: String,
        /// The existing names closest to it, best first.
        closest: Vec<String>,
    },
    /// The sprint's status does not allow this.
    #[error("sprint `{sprint}` is {status}: it cannot {action}")]
    IllegalSprintAction {
        /// The sprint's name.
        sprint: String,
        /// Its status now.
        status: crate::sprint::SprintStatus,
        /// What was attempted, as a verb phrase.
        action: &'static str,
    },
    /// The task is already in a sprint that is not closed.
    #[error(
        "task `{task}` is already in sprint `{sprint}`; a task belongs to at most one open sprint: remove it there first"
    )]
    TaskInSprint {
        /// `workflow/key` of the task.
        task: String,
        /// The sprint it is in.
        sprint: String,
    },
    /// An agent would be a member of two open sprints whose dates overlap.
    #[error(
        "agent `{agent}` is a member of sprint `{sprint}` ({start} to {end}), which overlaps these dates"
    )]
    SprintOverlap {
        /// The agent.
        agent: String,
        /// The other sprint.
        sprint: String,
        /// Its first day.
        start: chrono::NaiveDate,
        /// Its last day.
        end: chrono::NaiveDate,
    },
    /// The database was written by a newer version of this library.
    #[error(
        "the database has schema version {found}, newer than the {supported} this build understands; upgrade orchestration"
    )]
    IncompatibleSchema {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The database file's directory could not be created.
    #[error("cannot create the database directory: {0}")]
    Io(#[from] std::io::Error),
    /// The database cannot be written: its file is read-only or it was opened read-only.
    #[error("the database is read-only, so nothing was changed; reads still work")]
    ReadOnly,
    /// A copy was asked into a database that already holds rows; nothing was copied.
    #[error(
        "the target database is not empty: its table `{table}` has {rows} row(s), and a copy goes only into a new, empty database; nothing was copied"
    )]
    TargetNotEmpty {
        /// The first table found with rows.
        table: String,
        /// How many rows it has.
        rows: u64,
    },
    /// The disk holding the database is full.
    #[error("the disk holding the database is full, so nothing was changed; reads still work")]
    DiskFull,
    /// The database failed: its engine reported an error, a value did not have the type the
    /// schema gives it, or the connection was lost.
    #[error("storage error: {0}")]
    Storage(StorageError),
}

/// An older token means the lease was lost; a newer one was never issued, so the caller
/// mistyped it and should not be told to claim again.
fn stale_lease_message(task: &str, presented: u64, current: u64) -> String {
    if presented > current {
        format!(
            "lease token {presented} was never issued for task `{task}` (its current token is \
             {current}); send the token your claim returned: task_get with your agent lists the \
             tasks you hold and their tokens"
        )
    } else {
        format!(
            "stale lease token {presented} for task `{task}`: the lease was lost (the current \
             token is {current}); claim the task again"
        )
    }
}

/// A failure of the database under the store, with the engine's own message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    fault: StorageFault,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of storage failure it was: what the store may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFault {
    /// A query expected a row and found none.
    NoRows,
    /// Another writer holds the database; the transaction may be retried.
    Busy,
    /// Concurrent transactions conflicted (a serialization failure or a deadlock); the
    /// transaction was rolled back and may be retried.
    Conflict,
    /// The connection to the database server was lost or refused.
    Connection,
    /// A value read did not have the type the schema gives it.
    Conversion,
    /// Any other error of the engine.
    Engine,
}

impl StorageError {
    /// A failure of the engine, kept as the error's source.
    pub fn new(
        fault: StorageFault,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageError {
        StorageError {
            fault,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A failure described by the store itself.
    pub fn message(fault: StorageFault, message: impl Into<String>) -> StorageError {
        StorageError {
            fault,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn no_rows() -> StorageError {
        StorageError::message(StorageFault::NoRows, "the query returned no rows")
    }

    pub(crate) fn conversion(message: String) -> StorageError {
        StorageError::message(StorageFault::Conversion, message)
    }

    /// What kind of failure it was.
    pub fn fault(&self) -> StorageFault {
        self.fault
    }

    pub(crate) fn is_no_rows(&self) -> bool {
        self.fault == StorageFault::NoRows
    }
}

/// "; did you mean `a` or `b`?" when there is something to suggest.
fn did_you_mean(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", crate::text::either(closest))
    }
}

/// A rule a workflow spec broke.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A name or key broke the naming rule.
    #[error("{what} `{value}` is invalid: {reason}")]
    InvalidName {
        /// Which name: "workflow name", "task key", "skill name".
        what: &'static str,
        /// The value given (shortened when long).
        value: String,
        /// The rule it broke.
        reason: String,
    },
    /// A text field broke its length rule.
    #[error("{field} is invalid: {reason}")]
    InvalidText {
        /// The field, with the task key when it belongs to a task.
        field: String,
        /// The rule it broke.
        reason: String,
    },
    /// The spec has no tasks.
    #[error("a workflow needs at least one task")]
    NoTasks,
    /// The spec has more tasks than the limit.
    #[error("a workflow may have at most {max} tasks, this one has {count}")]
    TooManyTasks {
        /// Tasks in the spec.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two tasks share a key.
    #[error(
        "task key `{key}` is used twice (tasks {first} and {second}); keys must be unique within a workflow"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// Zero-based position of the first task with it.
        first: usize,
        /// Zero-based position of the second.
        second: usize,
    },
    /// A dependency names no task of the spec.
    #[error("task `{task}` depends on `{dependency}`, which is not a task of this workflow")]
    UnknownDependency {
        /// The dependent task.
        task: String,
        /// The unknown key.
        dependency: String,
    },
    /// A task depends on itself.
    #[error("task `{0}` depends on itself")]
    SelfDependency(String),
    /// A task has more dependencies than the limit.
    #[error("task `{task}` has {count} dependencies; at most {max} are allowed")]
    TooManyDependencies {
        /// The task.
        task: String,
        /// Its dependency count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `depends_on` in a mode that derives the dependencies itself.
    #[error(
        "task `{task}` lists depends_on, but mode `{mode}` derives dependencies itself; use mode `dag` for explicit dependencies"
    )]
    DependenciesNotAllowed {
        /// The task.
        task: String,
        /// The workflow's mode.
        mode: &'static str,
    },
    /// An estimate outside the allowed range.
    #[error(
        "task `{task}` has estimate {value}; estimates are finite numbers from 0 to {max} points"
    )]
    InvalidEstimate {
        /// The task.
        task: String,
        /// The value given.
        value: f64,
        /// The largest estimate allowed.
        max: f64,
    },
    /// A priority outside the allowed range.
    #[error("task `{task}` has priority {value}; priorities go from 0 (lowest) to 100 (highest)")]
    InvalidPriority {
        /// The task.
        task: String,
        /// The value given.
        value: i64,
    },
    /// `max_attempts` outside the allowed range.
    #[error(
        "task `{task}` has max_attempts {value}; it must be from 1 to {max} (it counts the first attempt)"
    )]
    InvalidMaxAttempts {
        /// The task.
        task: String,
        /// The value given.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// A skill level outside 1 to 5.
    #[error("task `{task}` requires skill `{skill}` at level {level}; levels go from 1 to 5")]
    InvalidSkillLevel {
        /// The task.
        task: String,
        /// The skill.
        skill: String,
        /// The level given.
        level: u8,
    },
    /// A retry policy with impossible values.
    #[error("retry policy is invalid: {0}")]
    InvalidRetryPolicy(String),
}
