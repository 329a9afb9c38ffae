//! Task use cases: claims with leases, reports (heartbeat, progress, complete, fail, release),
//! lease expiry and due retries, and the propagation that follows a task's end.
//!
//! Every state change goes through [`apply`], which checks it against the state machine, keeps
//! the workflow's count of open tasks, and appends the event; every end of a task goes through
//! [`settle`], which moves its dependents and decides the workflow's outcome.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::db::{OptionalExtension, Tx, Value, Writers, params};
use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};
use crate::id::LeaseToken;
use crate::limits::{self, CLAIM_SCAN_LIMIT, FIT_SCAN_LIMIT};
use crate::text::{counted, counted_are};
use crate::workflow::FailureKind;
use crate::workflow::{
    AfterFailure, ClaimRank, FailureReason, TaskEvent, TaskState, WorkflowStatus,
    check_argument_name, on_lease_expired,
};

use super::agent::{registered, touch};
use super::event::{EventKind, NewEvent, append};
use super::refs::{TaskRef, TaskRow, WorkflowRef, WorkflowRow, ids, task_skills};
use super::sql::{self, LEASED, query};
use super::transition::{apply, settle};
use super::view::{TaskView, view, view_with};
use super::{Store, millis};
use crate::agent::{AgentProfile, AgentStatus, Needs};
use crate::workflow::Change;

/// The lease a claim gets when the caller does not say: 15 minutes.
pub const DEFAULT_LEASE: Duration = Duration::minutes(15);

/// A request for work.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// The agent asking.
    pub agent: String,
    /// Only tasks of this workflow.
    pub workflow: Option<WorkflowRef>,
    /// Exactly this task.
    pub task: Option<TaskRef>,
    /// Lease length (default 15 minutes, at most a day).
    pub lease: Option<Duration>,
}

impl ClaimRequest {
    /// The best ready task of any running workflow, for `agent`.
    pub fn new(agent: impl Into<String>) -> ClaimRequest {
        ClaimRequest {
            agent: agent.into(),
            workflow: None,
            task: None,
            lease: None,
        }
    }

    /// Only tasks of `workflow`.
    pub fn in_workflow(mut self, workflow: impl Into<WorkflowRef>) -> ClaimRequest {
        self.workflow = Some(workflow.into());
        self
    }

    /// Exactly `task`.
    pub fn task(mut self, task: impl Into<TaskRef>) -> ClaimRequest {
        self.task = Some(task.into());
        self
    }

    /// A lease of `lease`.
    pub fn lease(mut self, lease: Duration) -> ClaimRequest {
        self.lease = Some(lease);
        self
    }
}

/// A task handed to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The task as it is now (running, leased to the agent).
    pub task: TaskView,
    /// The token every report on this lease must carry.
    pub token: LeaseToken,
    /// When the lease runs out unless a heartbeat extends it.
    pub lease_expires_at: DateTime<Utc>,
    /// The task's direct dependencies and what they produced.
    pub dependencies: Vec<DependencyResult>,
}

/// What a claim gave the agent: a task, or nothing now and why.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// A task, leased to the agent.
    Claimed(Box<Claim>),
    /// Nothing to do now; asking again later may find work.
    Idle(Idle),
}

impl ClaimOutcome {
    /// The claim, if a task was handed out.
    pub fn claimed(self) -> Option<Claim> {
        match self {
            ClaimOutcome::Claimed(claim) => Some(*claim),
            ClaimOutcome::Idle(_) => None,
        }
    }
}

/// Why a claim found nothing for the agent now.
#[derive(Debug, Clone, PartialEq)]
pub struct Idle {
    /// Why.
    pub reason: IdleReason,
    /// The soonest time a task in the claim's scope becomes ready again by itself (a retry's
    /// backoff ending), when one is waiting.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// Why a claim found nothing: each a state that may change, unlike the errors a claim
/// returns for requests that can never succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum IdleReason {
    /// The agent is paused, offline or retired.
    AgentInactive(AgentStatus),
    /// The agent holds as many tasks as its WIP limit allows.
    AtWipLimit {
        /// Tasks it holds.
        held: u64,
        /// Its limit.
        limit: u32,
    },
    /// The workflow asked for (or the named task's) is not running.
    WorkflowNotRunning {
        /// Its name.
        workflow: String,
        /// Its status.
        status: WorkflowStatus,
    },
    /// The task asked for is not ready yet.
    TaskNotReady {
        /// `workflow/key`.
        task: String,
        /// Its state: pending (waiting on dependencies) or waiting to retry.
        state: TaskState,
    },
    /// Ready tasks exist, but the agent lacks the skills of every one looked at.
    Unqualified {
        /// Ready tasks looked at.
        ready: u64,
        /// One of them, as `workflow/key`, and what the agent lacks for it.
        example: (String, String),
    },
    /// No task in scope is ready.
    NoneReady {
        /// Gates in scope waiting for a person to approve or reject them: no agent can take
        /// them, so an agent knows that a person, not work, holds the workflow up.
        awaiting_approval: u64,
    },
}

impl IdleReason {
    /// Whether others' work can end this idleness, so that waiting for it makes sense: a task
    /// becoming ready, a workflow resuming, a lease lapsing. An agent at its WIP limit frees a
    /// slot only by its own reports, an inactive agent only when set active, and a workflow
    /// that succeeded or was cancelled never runs again.
    pub fn others_can_end(&self) -> bool {
        match self {
            IdleReason::AgentInactive(_) | IdleReason::AtWipLimit { .. } => false,
            IdleReason::WorkflowNotRunning { status, .. } => !matches!(
                status,
                WorkflowStatus::Succeeded | WorkflowStatus::Cancelled
            ),
            IdleReason::TaskNotReady { state, .. } => !state.is_terminal(),
            IdleReason::Unqualified { .. } | IdleReason::NoneReady { .. } => true,
        }
    }
}

impl fmt::Display for IdleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleReason::AgentInactive(status) => {
                write!(f, "the agent is {status}; set it active to take work")
            }
            IdleReason::AtWipLimit { held, limit } => write!(
                f,
                "the agent holds {}, its WIP limit of {limit}; complete or release one first",
                counted(*held, "task")
            ),
            IdleReason::WorkflowNotRunning { workflow, status } => {
                write!(f, "workflow `{workflow}` is {status}, not running")
            }
            IdleReason::TaskNotReady { task, state } => match state {
                TaskState::Pending => write!(f, "task `{task}` is pending: it waits on its dependencies"),
                _ => write!(f, "task `{task}` is {state}"),
            },
            IdleReason::Unqualified {
                ready,
                example: (task, lacks),
            } => write!(
                f,
                "{} ready, but the agent has the skills for none (for `{task}` it {lacks})",
                counted_are(*ready, "task"),
            ),
            IdleReason::NoneReady {
                awaiting_approval: 0,
            } => f.write_str(
                "no task is ready: the rest waits on dependencies, on other agents' leases or on retries",
            ),
            IdleReason::NoneReady { awaiting_approval } => write!(
                f,
                "no task is ready: {} for a person to approve or reject (no agent can take a \
                 gate), and the rest waits on dependencies, leases or retries",
                counted_wait(*awaiting_approval, "gate")
            ),
        }
    }
}

/// A dependency of a claimed task and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencyResult {
    /// The dependency's key.
    pub key: String,
    /// Its state (succeeded, unless the workflow's policy lets failures through).
    pub state: TaskState,
    /// What it reported on completion.
    pub result: Option<String>,
}

/// What an agent reports on a task it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskUpdate {
    /// Still working: extend the lease.
    Heartbeat,
    /// Still working, with a note: extend the lease and record the note.
    Progress {
        /// What has been done so far.
        note: String,
    },
    /// Done.
    Complete {
        /// What it produced, handed to the dependents' agents.
        result: Option<String>,
        /// Effort actually spent, in points.
        actual: Option<f64>,
    },
    /// This attempt failed.
    Fail {
        /// What went wrong.
        error: String,
        /// Whether another attempt could succeed.
        kind: FailureKind,
    },
    /// Give the task back untouched; the attempt does not count.
    Release,
}

/// The effect of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The task after the report.
    pub task: TaskView,
    /// Its workflow's status after the report.
    pub workflow_status: WorkflowStatus,
    /// Tasks that became ready because of it.
    pub unblocked: Vec<String>,
}

/// What a pass over due deadlines did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    /// Leases that ran out.
    pub expired: usize,
    /// Tasks whose retry backoff ended.
    pub retried: usize,
}

impl Store {
    /// Hands the best ready task to `request.agent`, atomically, with a lease, or says why
    /// there is nothing for it now. Tasks delegated to the agent come first, then ready tasks
    /// by priority, fit, b-level and time ready. The agent must be registered, and gets only
    /// tasks it has the skills for, and nothing while it is not active or is at its WIP limit.
    pub fn claim(&self, request: &ClaimRequest) -> Result<ClaimOutcome> {
        check_argument_name("agent", "agent name", &request.agent)?;
        let lease = check_lease(request.lease)?;
        // A claim for the next task runs beside other claims and reports where the backend
        // can run it so; one for a named task, which may be another agent's to release or
        // held up by a gate, runs alone.
        let writers = match request.task {
            Some(_) => Writers::Alone,
            None => Writers::Beside {
                agent: Some(&request.agent),
            },
        };
        self.write_with(writers, |tx, now| {
            if !tx.beside_others() {
                tick(tx, now)?;
            } else if work_due(tx, now)? {
                // Expiring a lease or ending a backoff changes tasks other writers may hold
                // and, through them, their workflows: left to a claim alone.
                return Err(tx.again_alone());
            }
            let profile = registered(tx, &request.agent)?;
            let found = match &request.task {
                Some(task) => claimable_task(tx, request, task, &profile)?,
                None => next_task(tx, request, &profile)?,
            };
            let mut task = match found {
                Found::Task(task) => *task,
                Found::Idle(reason, workflow) => {
                    return Ok(ClaimOutcome::Idle(Idle {
                        reason,
                        next_retry_at: next_retry(tx, workflow)?,
                    }));
                }
            };
            apply(
                tx,
                now,
                &mut task,
                TaskEvent::Start,
                Change {
                    agent: Some(&request.agent),
                    deadline: Some(now + lease),
                    ..Change::default()
                },
            )?;
            touch(tx, &request.agent, now)?;
            let dependencies = dependency_results(tx, task.id)?;
            let depends_on = dependencies.iter().map(|d| d.key.clone()).collect();
            let skills = if task.has_skills {
                task_skills(tx, task.id)?
            } else {
                BTreeMap::new()
            };
            let lease_expires_at = now + lease;
            Ok(ClaimOutcome::Claimed(Box::new(Claim {
                token: task.token,
                lease_expires_at,
                task: view_with(&task, skills, depends_on),
                dependencies,
            })))
        })
    }

    /// Records a report from the agent holding `task`'s lease `token`. A report from another
    /// agent, with an old token, or after the lease ran out is rejected and changes nothing.
    pub fn update_task(
        &self,
        task: &TaskRef,
        agent: &str,
        token: LeaseToken,
        report: &TaskUpdate,
        lease: Option<Duration>,
    ) -> Result<UpdateOutcome> {
        let lease = check_lease(lease)?;
        check_report(report)?;
        // A failure may cancel the rest of its workflow (fail-fast) or block its dependents,
        // rows other writers may hold: it runs alone. Every other report changes its own
        // task, locked before it is read, what depends on it, each locked in one order, and
        // the counters, locked at the end in one order (see `counts`), and runs beside other
        // claims and reports where the backend can run it so.
        let writers = match report {
            TaskUpdate::Fail { .. } => Writers::Alone,
            _ => Writers::Beside { agent: None },
        };
        self.write_with(writers, |tx, now| {
            let mut row = TaskRow::resolve_for_update(tx, task)?;
            // Only an agent that does not hold the task can be one nobody registered; asking
            // only then keeps the common report to the queries it needs.
            if row.agent.as_deref() != Some(agent) {
                registered(tx, agent)?;
            }
            check_lease_holder(&row, agent, token, report, now)?;
            // Loaded once: the retry policy, the failure policy and the status after the
            // report all come from this one read.
            let mut workflow = WorkflowRow::by_id(tx, row.workflow)?;
            let mut unblocked = Vec::new();
            match report {
                TaskUpdate::Heartbeat | TaskUpdate::Progress { .. } => {
                    let note = match report {
                        TaskUpdate::Progress { note } => Some(note.as_str()),
                        _ => None,
                    };
                    extend_lease(tx, now, &row, now + lease, note)?;
                }
                TaskUpdate::Complete { result, actual } => {
                    let change = Change {
                        result: result.as_deref(),
                        actual: *actual,
                        ..Change::default()
                    };
                    apply(tx, now, &mut row, TaskEvent::Complete, change)?;
                    unblocked = settle(tx, now, &mut workflow, vec![(row.id, row.state)])?;
                }
                TaskUpdate::Fail { error, kind } => {
                    let decision = workflow.retry.after_failure(
                        row.uuid,
                        row.attempt,
                        row.max_attempts,
                        *kind,
                        now,
                    );
                    let (event, change) = match decision {
                        AfterFailure::RetryAt(at) => (
                            TaskEvent::FailAndRetry,
                            Change {
                                deadline: Some(at),
                                error: Some(error),
                                ..Change::default()
                            },
                        ),
                        AfterFailure::GiveUp(reason) => (
                            TaskEvent::Fail,
                            Change {
                                reason: Some(reason),
                                error: Some(error),
                                ..Change::default()
                            },
                        ),
                    };
                    apply(tx, now, &mut row, event, change)?;
                    if row.state.is_terminal() {
                        settle(tx, now, &mut workflow, vec![(row.id, row.state)])?;
                    }
                }
                TaskUpdate::Release => {
                    apply(tx, now, &mut row, TaskEvent::Release, Change::default())?;
                }
            }
            touch(tx, agent, now)?;
            // The row as saved, with the note a progress report left.
            let row = TaskRow::by_id(tx, row.id)?;
            Ok(UpdateOutcome {
                task: view(tx, &row)?,
                workflow_status: workflow.status,
                unblocked,
            })
        })
    }

    /// Cancels one task; its dependents are treated as after a failure.
    pub fn cancel_task(&self, task: &TaskRef) -> Result<TaskView> {
        self.write(|tx, now| {
            let mut row = TaskRow::resolve(tx, task)?;
            apply(
                tx,
                now,
                &mut row,
                TaskEvent::Cancel,
                Change {
                    reason: Some(FailureReason::Cancelled),
                    ..Change::default()
                },
            )?;
            let mut workflow = WorkflowRow::by_id(tx, row.workflow)?;
            settle(tx, now, &mut workflow, vec![(row.id, row.state)])?;
            view(tx, &row)
        })
    }

    /// Expires leases that ran out and makes tasks whose backoff ended ready again. Claims do
    /// this themselves; call it to move time-driven work along when nobody claims.
    pub fn tick(&self) -> Result<Tick> {
        self.write(tick)
    }

    /// One task, by reference.
    pub fn task(&self, task: &TaskRef) -> Result<TaskView> {
        self.read(|tx, _| view(tx, &TaskRow::resolve(tx, task)?))
    }

    /// One task whole, for an agent that lost its context or a person looking into it: the
    /// task, its dependents, every attempt, the latest progress notes and who finished it.
    pub fn task_detail(&self, task: &TaskRef) -> Result<TaskDetail> {
        self.read(|tx, _| {
            let row = TaskRow::resolve(tx, task)?;
            let dependents = tx
                .prepare_cached(
                    "SELECT key FROM tasks WHERE id IN (SELECT task FROM deps WHERE dep = ?1) \
                     ORDER BY id",
                )?
                .query_map([row.id], |r| r.get(0))?
                .collect::<Result<_>>()?;
            let done_by = tx
                .prepare_cached("SELECT done_by FROM tasks WHERE id = ?1")?
                .query_row([row.id], |r| r.get(0))?;
            let (attempts, notes, notes_total) = history(tx, row.id)?;
            Ok(TaskDetail {
                token: row.state.is_leased().then_some(row.token),
                task: view(tx, &row)?,
                dependents,
                attempts,
                notes,
                notes_total,
                done_by,
            })
        })
    }

    /// The tasks `agent` holds (assigned to it or running), oldest lease first, each with the
    /// token its reports must carry: what an agent that lost its context needs to go on.
    pub fn held_tasks(&self, agent: &str) -> Result<Vec<HeldTask>> {
        check_argument_name("agent", "agent name", agent)?;
        self.read(|tx, now| {
            registered(tx, agent)?;
            let ids: Vec<i64> = tx
                .prepare_cached(query!(
                    "SELECT id FROM tasks WHERE state IN {} AND agent = ?1 ORDER BY deadline, id",
                    sql::states(&LEASED)
                ))?
                .query_map([agent], |r| r.get(0))?
                .collect::<Result<_>>()?;
            ids.into_iter()
                .map(|id| {
                    let row = TaskRow::by_id(tx, id)?;
                    Ok(HeldTask {
                        token: row.token,
                        lease_expires_at: row.deadline,
                        lapsed: row.deadline.is_some_and(|end| end <= now),
                        task: view(tx, &row)?,
                    })
                })
                .collect()
        })
    }
}

/// A task an agent holds, with what it needs to report on it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldTask {
    /// The task.
    pub task: TaskView,
    /// The token its reports must carry.
    pub token: LeaseToken,
    /// When the lease runs out unless a heartbeat extends it.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Whether that time has passed: a report is then refused, and the task goes back in line
    /// at the next claim or tick.
    pub lapsed: bool,
}

/// Everything recorded about one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDetail {
    /// The task as it is now.
    pub task: TaskView,
    /// Keys of the tasks that depend on it directly.
    pub dependents: Vec<String>,
    /// Its attempts, first first, across resets.
    pub attempts: Vec<TaskAttempt>,
    /// Its latest progress notes, oldest first: at most [`NOTES_SHOWN`].
    pub notes: Vec<Note>,
    /// Progress notes in all.
    pub notes_total: usize,
    /// The agent whose completion made it succeed.
    pub done_by: Option<String>,
    /// The lease's token while the task is leased: give it only to the lease's holder.
    pub token: Option<LeaseToken>,
}

/// Progress notes a [`TaskDetail`] carries at most: the latest ones.
pub const NOTES_SHOWN: usize = 20;

/// One attempt at a task, as the event log tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAttempt {
    /// 1 for the first attempt (counting restarts after a reset).
    pub number: u32,
    /// The agent that ran it.
    pub agent: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while it runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// The state it ended in: succeeded, waiting_retry or failed (a failure), ready (its lease
    /// expired, or it was released or handed off), cancelled.
    pub ended_as: Option<TaskState>,
    /// Why, when it did not succeed: the error, `lease_expired`, or the handoff.
    pub detail: Option<String>,
}

/// A progress note an agent left on a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub agent: Option<String>,
    /// What it said.
    pub text: String,
}

/// A task's attempts and notes, from its events in the log.
fn history(conn: &Tx<'_>, task: i64) -> Result<(Vec<TaskAttempt>, Vec<Note>, usize)> {
    let mut attempts: Vec<TaskAttempt> = Vec::new();
    let mut notes: std::collections::VecDeque<Note> = std::collections::VecDeque::new();
    let mut notes_total = 0;
    let mut stmt = conn.prepare_cached(
        "SELECT at, kind, agent, from_state, to_state, attempt, detail FROM events \
         WHERE task = ?1 AND kind IN ('task_state', 'task_progress') ORDER BY seq",
    )?;
    let mut rows = stmt.query([task])?;
    while let Some(row) = rows.next()? {
        let at = crate::clock::from_millis(row.get(0)?);
        let agent: Option<String> = row.get(2)?;
        let detail: Option<String> = row.get(6)?;
        if row.get_ref(1)?.as_str().unwrap_or_default() == "task_progress" {
            notes_total += 1;
            if notes.len() == NOTES_SHOWN {
                notes.pop_front();
            }
            notes.push_back(Note {
                at,
                agent,
                text: detail.unwrap_or_default(),
            });
            continue;
        }
        let state = |i: usize| -> Result<Option<TaskState>> {
            Ok(row
                .get::<_, Option<String>>(i)?
                .and_then(|s| s.parse().ok()))
        };
        let (from, to) = (state(3)?, state(4)?);
        let number = row.get::<_, Option<u32>>(5)?.unwrap_or(0);
        pair_attempt(&mut attempts, at, agent, (from, to), number, detail);
    }
    Ok((attempts, notes.into(), notes_total))
}

/// Adds one task state change of a task to its attempts: a start opens an attempt, the next
/// change out of running closes it with its outcome.
fn pair_attempt(
    attempts: &mut Vec<TaskAttempt>,
    at: DateTime<Utc>,
    agent: Option<String>,
    (from, to): (Option<TaskState>, Option<TaskState>),
    number: u32,
    detail: Option<String>,
) {
    if to == Some(TaskState::Running) {
        attempts.push(TaskAttempt {
            number,
            agent,
            started_at: at,
            ended_at: None,
            ended_as: None,
            detail: None,
        });
    } else if from == Some(TaskState::Running)
        && let Some(last) = attempts.last_mut()
    {
        last.ended_at = Some(at);
        last.ended_as = to;
        if to != Some(TaskState::Succeeded) {
            last.detail = detail;
        }
    }
}

/// One attempt at a task of a workflow: what a timeline of the workflow's attempts shows.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowAttempt {
    /// The task's key.
    pub task: String,
    /// The attempt.
    pub attempt: TaskAttempt,
}

impl Store {
    /// The attempts at `workflow`'s tasks, from the event log, the latest `limit` of them by
    /// their start, oldest first.
    pub fn workflow_attempts(
        &self,
        workflow: &WorkflowRef,
        limit: usize,
    ) -> Result<Vec<WorkflowAttempt>> {
        self.read(|tx, _| {
            let workflow = WorkflowRow::resolve(tx, workflow)?;
            let mut by_task: HashMap<String, Vec<TaskAttempt>> = HashMap::new();
            let mut stmt = tx.prepare_cached(query!(
                "SELECT e.at, t.key, e.agent, e.from_state, e.to_state, e.attempt, e.detail \
                 FROM tasks t JOIN events e ON e.task = t.id WHERE t.workflow = ?1 \
                 AND e.kind = {} AND (e.from_state = {} OR e.to_state = {}) ORDER BY e.seq",
                sql::lit(EventKind::TaskState.as_str()),
                sql::state(TaskState::Running),
                sql::state(TaskState::Running)
            ))?;
            let mut rows = stmt.query([workflow.id])?;
            while let Some(row) = rows.next()? {
                let state = |i: usize| -> Result<Option<TaskState>> {
                    Ok(row
                        .get::<_, Option<String>>(i)?
                        .and_then(|s| s.parse().ok()))
                };
                let key: String = row.get(1)?;
                pair_attempt(
                    by_task.entry(key).or_default(),
                    crate::clock::from_millis(row.get(0)?),
                    row.get(2)?,
                    (state(3)?, state(4)?),
                    row.get::<_, Option<u32>>(5)?.unwrap_or(0),
                    row.get(6)?,
                );
            }
            let mut all: Vec<WorkflowAttempt> = by_task
                .into_iter()
                .flat_map(|(task, attempts)| {
                    attempts.into_iter().map(move |attempt| WorkflowAttempt {
                        task: task.clone(),
                        attempt,
                    })
                })
                .collect();
            all.sort_by(|a, b| {
                (a.attempt.started_at, &a.task).cmp(&(b.attempt.started_at, &b.task))
            });
            let skip = all.len().saturating_sub(limit);
            Ok(all.split_off(skip))
        })
    }
}

pub(crate) fn check_lease(lease: Option<Duration>) -> Result<Duration> {
    let lease = lease.unwrap_or(DEFAULT_LEASE);
    if lease < Duration::seconds(1) || lease > Duration::seconds(limits::MAX_LEASE_SECONDS) {
        return Err(Error::InvalidArgument {
            field: "lease_seconds".into(),
            reason: format!(
                "{} s is outside 1 to {} s",
                lease.num_seconds(),
                limits::MAX_LEASE_SECONDS
            ),
        });
    }
    Ok(lease)
}

fn check_report(report: &TaskUpdate) -> Result<()> {
    match report {
        TaskUpdate::Progress { note } => {
            check_length("note", note, limits::MAX_DESCRIPTION_LEN)?;
        }
        TaskUpdate::Complete { result, actual } => {
            check_length(
                "result",
                result.as_deref().unwrap_or_default(),
                limits::MAX_RESULT_LEN,
            )?;
            if let Some(actual) = actual
                && !(actual.is_finite() && (0.0..=limits::MAX_ESTIMATE).contains(actual))
            {
                return Err(Error::InvalidArgument {
                    field: "actual".into(),
                    reason: format!("{actual} is outside 0 to {} points", limits::MAX_ESTIMATE),
                });
            }
        }
        TaskUpdate::Fail { error, .. } => {
            check_length("error", error, limits::MAX_DESCRIPTION_LEN)?;
        }
        TaskUpdate::Heartbeat | TaskUpdate::Release => {}
    }
    Ok(())
}

/// Rejects an argument longer than `max` characters.
pub(crate) fn check_length(field: &str, value: &str, max: usize) -> Result<()> {
    let length = value.chars().count();
    if length > max {
        return Err(Error::InvalidArgument {
            field: field.to_owned(),
            reason: format!("must be at most {max} characters, got {length}"),
        });
    }
    Ok(())
}

/// Refuses a report unless `agent` holds the live lease `token` of the running task.
fn check_lease_holder(
    row: &TaskRow,
    agent: &str,
    token: LeaseToken,
    report: &TaskUpdate,
    now: DateTime<Utc>,
) -> Result<()> {
    let verb = match report {
        TaskUpdate::Complete { .. } => TaskEvent::Complete.verb(),
        TaskUpdate::Fail { .. } => TaskEvent::Fail.verb(),
        TaskUpdate::Release => TaskEvent::Release.verb(),
        TaskUpdate::Heartbeat | TaskUpdate::Progress { .. } => "take a heartbeat",
    };
    row.lease(&row.display()).check(agent, token, verb, now)
}

/// What a claim found: a task to start, or why there is none now (and the workflow it was
/// limited to, if any).
enum Found {
    Task(Box<TaskRow>),
    Idle(IdleReason, Option<i64>),
}

/// Nothing while the agent is not active, or holds as many new tasks as its WIP limit allows.
/// Starting a task already delegated to it does not count: the agent holds that one already.
fn availability(conn: &Tx<'_>, profile: &AgentProfile) -> Result<Option<IdleReason>> {
    if profile.status != AgentStatus::Active {
        return Ok(Some(IdleReason::AgentInactive(profile.status)));
    }
    let held = in_flight(conn, &profile.name)?;
    if held >= u64::from(profile.max_concurrent) {
        return Ok(Some(IdleReason::AtWipLimit {
            held,
            limit: profile.max_concurrent,
        }));
    }
    Ok(None)
}

/// Tasks leased to `agent`.
pub(crate) fn in_flight(conn: &Tx<'_>, agent: &str) -> Result<u64> {
    Ok(conn
        .prepare_cached(query!(
            "SELECT count(*) FROM tasks WHERE state IN {} AND agent = ?1",
            sql::states(&LEASED)
        ))?
        .query_row([agent], |row| row.get::<_, i64>(0))? as u64)
}

/// The soonest end of a retry backoff, in `workflow` or in any running workflow.
fn next_retry(conn: &Tx<'_>, workflow: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    let at: Option<i64> = match workflow {
        Some(workflow) => conn
            .prepare_cached(query!(
                "SELECT min(deadline) FROM tasks WHERE deadline IS NOT NULL \
                 AND state = {} AND workflow = ?1",
                sql::state(TaskState::WaitingRetry)
            ))?
            .query_row([workflow], |row| row.get(0))?,
        None => conn
            .prepare_cached(query!(
                "SELECT min(t.deadline) FROM tasks t WHERE t.deadline IS NOT NULL \
                 AND t.state = {} AND (SELECT status FROM workflows WHERE id = t.workflow) = {}",
                sql::state(TaskState::WaitingRetry),
                sql::status(WorkflowStatus::Running)
            ))?
            .query_row([], |row| row.get(0))?,
    };
    Ok(at.map(crate::clock::from_millis))
}

/// Refuses a claim whose `workflow` is not the named task's own.
fn check_same_workflow(conn: &Tx<'_>, request: &ClaimRequest, task: &TaskRow) -> Result<()> {
    let Some(workflow) = &request.workflow else {
        return Ok(());
    };
    let workflow = WorkflowRow::resolve(conn, workflow)?;
    if workflow.id != task.workflow {
        return Err(Error::InvalidArgument {
            field: "workflow".into(),
            reason: format!(
                "task `{}` belongs to workflow `{}`, not `{}`; name the task alone, or with its own workflow",
                task.display(),
                task.workflow_name,
                workflow.name
            ),
        });
    }
    Ok(())
}

/// The task named in a claim, if the agent may start it now. What may change (a paused
/// workflow, a task not ready yet, the WIP limit) is a reason to come back; what will not (a
/// finished task, another agent's lease, missing skills) is an error.
fn claimable_task(
    tx: &Tx<'_>,
    request: &ClaimRequest,
    task: &TaskRef,
    profile: &AgentProfile,
) -> Result<Found> {
    let row = TaskRow::resolve(tx, task)?;
    check_same_workflow(tx, request, &row)?;
    let agent = profile.name.as_str();
    row.lease(&row.display()).check_not_foreign(agent)?;
    if row.state.is_terminal() || row.state == TaskState::Running {
        return Err(Error::IllegalTransition {
            task: row.display(),
            state: row.state,
            verb: TaskEvent::Start.verb(),
        });
    }
    let workflow = WorkflowRow::by_id(tx, row.workflow)?;
    if workflow.status != WorkflowStatus::Running {
        return Ok(Found::Idle(
            IdleReason::WorkflowNotRunning {
                workflow: workflow.name,
                status: workflow.status,
            },
            Some(row.workflow),
        ));
    }
    if matches!(row.state, TaskState::Pending | TaskState::WaitingRetry) {
        return Ok(Found::Idle(
            IdleReason::TaskNotReady {
                task: row.display(),
                state: row.state,
            },
            Some(row.workflow),
        ));
    }
    if row.state == TaskState::Ready
        && let Some(reason) = availability(tx, profile)?
    {
        return Ok(Found::Idle(reason, Some(row.workflow)));
    }
    if row.has_skills
        && let Some(reason) = profile.unmet_skill(&task_skills(tx, row.id)?)
    {
        return Err(Error::NotQualified {
            agent: agent.to_owned(),
            task: row.display(),
            reason,
        });
    }
    Ok(Found::Task(Box::new(row)))
}

/// The best task for the agent: one delegated to it, else the first ready one it can do.
fn next_task(tx: &Tx<'_>, request: &ClaimRequest, profile: &AgentProfile) -> Result<Found> {
    let workflow = match &request.workflow {
        Some(workflow) => {
            let workflow = WorkflowRow::resolve(tx, workflow)?;
            if workflow.status != WorkflowStatus::Running {
                return Ok(Found::Idle(
                    IdleReason::WorkflowNotRunning {
                        workflow: workflow.name,
                        status: workflow.status,
                    },
                    Some(workflow.id),
                ));
            }
            Some(workflow.id)
        }
        None => None,
    };
    if profile.status != AgentStatus::Active {
        return Ok(Found::Idle(
            IdleReason::AgentInactive(profile.status),
            workflow,
        ));
    }
    let delegated: Option<i64> = match workflow {
        Some(workflow) => tx
            .prepare_cached(query!(
                "SELECT id FROM tasks WHERE state IN {} AND agent = ?1 \
                 AND state = {} AND workflow = ?2 ORDER BY ready_at, id LIMIT 1",
                sql::states(&LEASED),
                sql::state(TaskState::Assigned)
            ))?
            .query_row(params![request.agent, workflow], |row| row.get(0))
            .optional()?,
        None => tx
            .prepare_cached(sql::delegated_anywhere())?
            .query_row(params![request.agent], |row| row.get(0))
            .optional()?,
    };
    if let Some(id) = delegated {
        return TaskRow::by_id_for_update(tx, id).map(|row| Found::Task(Box::new(row)));
    }
    // Beside other writers the agent's lock, taken with the transaction, keeps two claims of
    // one agent from both counting its tasks before either takes one.
    if let Some(reason) = availability(tx, profile)? {
        return Ok(Found::Idle(reason, workflow));
    }
    if tx.beside_others() {
        return free_ready(tx, workflow);
    }

    // One walk down a claim-order index: the named workflow's, or the one over every
    // workflow, which skips the ready tasks of workflows not running. Either way a claim costs
    // a few index steps, however many workflows run.
    let mut scan = Scan {
        budget: CLAIM_SCAN_LIMIT,
        unqualified: 0,
        example: None,
    };
    let best = match workflow {
        Some(id) => best_ready(
            tx,
            sql::ready_in_workflow(),
            &[Value::Integer(id)],
            profile,
            &mut scan,
        )?,
        None => best_ready(tx, sql::ready_anywhere(), &[], profile, &mut scan)?,
    };
    match (best, scan.example) {
        (Some(candidate), _) => {
            TaskRow::by_id(tx, candidate.id).map(|row| Found::Task(Box::new(row)))
        }
        (None, Some(example)) => Ok(Found::Idle(
            IdleReason::Unqualified {
                ready: scan.unqualified,
                example,
            },
            workflow,
        )),
        (None, None) => {
            let awaiting_approval = awaiting_approval(tx, workflow)?;
            Ok(Found::Idle(
                IdleReason::NoneReady { awaiting_approval },
                workflow,
            ))
        }
    }
}

/// The task of a claim beside other writers: the first ready task in claim order that no
/// other transaction holds, locked, when it asks for no skills, since then it is the one a
/// claim alone would take. What needs the whole ranking (a task with skills to fit) or may be
/// held by a claim that will not take it (every ready task locked) is left to a claim alone.
fn free_ready(tx: &Tx<'_>, workflow: Option<i64>) -> Result<Found> {
    let found = match workflow {
        Some(id) => tx
            .prepare_cached(sql::free_ready_in_workflow())?
            .query_row([id], TaskRow::from_row)
            .optional()?,
        None => tx
            .prepare_cached(sql::free_ready_anywhere())?
            .query_row([], TaskRow::from_row)
            .optional()?,
    };
    match found {
        Some(row) if !row.has_skills => Ok(Found::Task(Box::new(row))),
        Some(_) => Err(tx.again_alone()),
        None => {
            let ready: i64 = match workflow {
                Some(id) => tx
                    .prepare_cached(sql::any_ready_in_workflow())?
                    .query_row([id], |r| r.get(0))?,
                None => tx
                    .prepare_cached(sql::any_ready_anywhere())?
                    .query_row([], |r| r.get(0))?,
            };
            if ready > 0 {
                return Err(tx.again_alone());
            }
            let awaiting_approval = awaiting_approval(tx, workflow)?;
            Ok(Found::Idle(
                IdleReason::NoneReady { awaiting_approval },
                workflow,
            ))
        }
    }
}

/// The gates waiting for a person in `workflow`, or in every running workflow.
fn awaiting_approval(tx: &Tx<'_>, workflow: Option<i64>) -> Result<u64> {
    let count: i64 = match workflow {
        Some(workflow) => tx
            .prepare_cached(query!(
                "SELECT count(*) FROM tasks WHERE workflow = ?1 AND state = {}",
                sql::state(TaskState::AwaitingApproval)
            ))?
            .query_row([workflow], |row| row.get(0))?,
        None => tx
            .prepare_cached(query!(
                "SELECT count(*) FROM tasks t WHERE t.state = {} \
                 AND (SELECT status FROM workflows WHERE id = t.workflow) = {}",
                sql::state(TaskState::AwaitingApproval),
                sql::status(WorkflowStatus::Running)
            ))?
            .query_row([], |row| row.get(0))?,
    };
    Ok(count.max(0) as u64)
}

/// "1 gate waits", "2 gates wait".
fn counted_wait(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{} waits", counted(n, noun))
    } else {
        format!("{} wait", counted(n, noun))
    }
}

/// What a claim's scan of ready tasks may still look at, and what it passed over.
struct Scan {
    /// Ready tasks it may still look at.
    budget: usize,
    /// Ready tasks passed over for want of skills.
    unqualified: u64,
    /// The first of those, as `workflow/key`, with what the agent lacks for it.
    example: Option<(String, String)>,
}

/// A ready task and its place in the claim order.
struct ClaimCandidate {
    id: i64,
    rank: ClaimRank,
}

/// The best of the ready tasks that `query` yields in claim order for the agent: the highest
/// priority it has the skills for, and within that priority the best fit for its skills, then
/// the claim order.
fn best_ready(
    tx: &Tx<'_>,
    query: &str,
    params: &[Value<'_>],
    profile: &AgentProfile,
    scan: &mut Scan,
) -> Result<Option<ClaimCandidate>> {
    // `INDEXED BY` pins the plan to a claim-order index, which yields rows already sorted.
    // The rows stream: a claim usually stops at the first one.
    let mut best: Option<ClaimCandidate> = None;
    let mut perfect: Option<ClaimCandidate> = None;
    let mut compared = 0;
    tx.rows(query, params, &mut |row| {
        if scan.budget == 0 {
            return Ok(false);
        }
        scan.budget -= 1;
        let (id, has_skills, priority): (i64, bool, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if let Some(best) = &best
            && (priority < best.rank.priority || compared >= FIT_SCAN_LIMIT)
        {
            return Ok(false);
        }
        let fit = if has_skills {
            let skills = task_skills(tx, id)?;
            if let Some(lacks) = profile.unmet_skill(&skills) {
                scan.unqualified += 1;
                if scan.example.is_none() {
                    let key: String = tx
                        .prepare_cached(
                            "SELECT w.name || '/' || t.key FROM tasks t \
                             JOIN workflows w ON w.id = t.workflow WHERE t.id = ?1",
                        )?
                        .query_row([id], |r| r.get(0))?;
                    scan.example = Some((key, lacks));
                }
                return Ok(true);
            }
            let needs = Needs {
                skills,
                estimate: 0.0,
            };
            crate::agent::fit(profile, &needs)
        } else {
            1.0
        };
        let candidate = ClaimCandidate {
            id,
            rank: ClaimRank {
                priority,
                fit,
                b_level: row.get(3)?,
                ready_at: row.get::<_, Option<i64>>(4)?.map(crate::clock::from_millis),
                created: id,
            },
        };
        // No fit beats a perfect one, and rows come in claim order within a priority: the
        // first perfect fit is the answer, as it is for every task without skills.
        if fit >= 1.0 && best.as_ref().is_none_or(|b| b.rank.priority < priority) {
            perfect = Some(candidate);
            return Ok(false);
        }
        compared += 1;
        if best.as_ref().is_none_or(|b| candidate.rank.before(&b.rank)) {
            best = Some(candidate);
        }
        Ok(true)
    })?;
    Ok(perfect.or(best))
}

fn extend_lease(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    task: &TaskRow,
    until: DateTime<Utc>,
    note: Option<&str>,
) -> Result<()> {
    tx.prepare_cached("UPDATE tasks SET deadline = ?2, note = coalesce(?3, note) WHERE id = ?1")?
        .execute(params![task.id, millis(until), note])?;
    // A bare heartbeat changes nothing but the lease, so it is not logged: the log would
    // otherwise grow with every minute an agent works.
    if let Some(note) = note {
        append(
            tx,
            now,
            EventKind::TaskProgress,
            NewEvent {
                workflow: Some(task.workflow),
                task: Some(task.id),
                agent: task.agent.as_deref(),
                attempt: Some(task.attempt),
                detail: Some(note),
                ..NewEvent::default()
            },
        )?;
    }
    Ok(())
}

/// Whether [`tick`] at `now` would change anything: a deadline passed, or one further off
/// than the longest lease or backoff allows. One look down the index on deadlines.
fn work_due(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<bool> {
    let longest_lease = Duration::seconds(limits::MAX_LEASE_SECONDS);
    let due: i64 = tx
        .prepare_cached(query!(
            "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE deadline <= ?3 \
             OR (deadline > ?1 AND (state IN {leased} OR (state = {retry} AND deadline > ?2))) \
             LIMIT 1) AS due",
            retry = sql::state(TaskState::WaitingRetry),
            leased = sql::states(&LEASED)
        ))?
        .query_row(
            [
                millis(now + longest_lease),
                millis(now + longest_lease * 6 / 5),
                millis(now),
            ],
            |row| row.get(0),
        )?;
    Ok(due > 0)
}

/// Expires run-out leases and ends finished backoffs.
pub(crate) fn tick(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<Tick> {
    let mut done = Tick::default();
    // No lease is ever set to end more than a day ahead, and no backoff more than a day and
    // its jitter of a fifth. A deadline further off means the clock jumped back since it was
    // set; pulling it in to the longest allowed keeps a dead agent's task from waiting for the
    // clock to catch up, however far it jumped.
    // One statement, since every claim runs it: the index on deadlines finds nothing beyond a
    // day ahead unless the clock went back.
    let longest_lease = Duration::seconds(limits::MAX_LEASE_SECONDS);
    tx.prepare_cached(query!(
        "UPDATE tasks SET deadline = CASE state WHEN {retry} THEN ?2 ELSE ?1 END \
         WHERE deadline > ?1 AND (state IN {leased} OR (state = {retry} AND deadline > ?2))",
        retry = sql::state(TaskState::WaitingRetry),
        leased = sql::states(&LEASED)
    ))?
    .execute([
        millis(now + longest_lease),
        millis(now + longest_lease * 6 / 5),
    ])?;
    let due = ids(
        tx,
        "SELECT id FROM tasks WHERE deadline <= ?1 ORDER BY deadline",
        millis(now),
    )?;
    // What an expired lease does depends on its workflow's retry policy; each is read once.
    let mut workflows: HashMap<i64, WorkflowRow> = HashMap::new();
    for id in due {
        let mut task = TaskRow::by_id(tx, id)?;
        match task.state {
            TaskState::WaitingRetry => {
                apply(tx, now, &mut task, TaskEvent::RetryDue, Change::default())?;
                done.retried += 1;
            }
            TaskState::Assigned | TaskState::Running => {
                let workflow = match workflows.entry(task.workflow) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(WorkflowRow::by_id(tx, task.workflow)?),
                };
                let (event, change) = on_lease_expired(&task, workflow, now);
                apply(tx, now, &mut task, event, change)?;
                if task.state.is_terminal() {
                    settle(tx, now, workflow, vec![(task.id, task.state)])?;
                }
                done.expired += 1;
            }
            _ => {}
        }
    }
    Ok(done)
}

fn dependency_results(conn: &Tx<'_>, task: i64) -> Result<Vec<DependencyResult>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, state, result FROM tasks WHERE id IN (SELECT dep FROM deps WHERE task = ?1) \
         ORDER BY id",
    )?;
    let rows = stmt.query_map([task], |row| {
        Ok(DependencyResult {
            key: row.get(0)?,
            state: super::refs::parse_column(row, 1, |s| s.parse().ok())?,
            result: row.get(2)?,
        })
    })?;
    rows.collect::<Result<_>>()
}
