//! Task use cases: claims with leases, reports (heartbeat, progress, complete, fail, release),
//! lease expiry and due retries, and the propagation that follows a task's end.
//!
//! Every state change goes through [`apply`], which checks it against the state machine, keeps
//! the workflow's count of open tasks, and appends the event; every end of a task goes through
//! [`settle`], which moves its dependents and decides the workflow's outcome.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::id::{LeaseToken, TaskId, WorkflowId};
use crate::text::{counted, counted_are};
use crate::workflow::{
    AfterFailure, FailurePolicy, FailureReason, TaskEvent, TaskState, UpstreamEffect,
    WorkflowStatus, check_argument_name, limits, outcome, transition, upstream_effect,
};

use super::agent::{registered, touch};
use super::event::{EventKind, NewEvent, append};
use super::refs::{TASK_COLUMNS, TaskRef, TaskRow, WorkflowRef, WorkflowRow};
use super::{Store, millis};
use crate::agent::{AgentProfile, AgentStatus, Needs};

/// The lease a claim gets when the caller does not say: 15 minutes.
pub const DEFAULT_LEASE: Duration = Duration::minutes(15);

/// Ready tasks looked at, at most, for one claim, before giving up on finding one the agent
/// has the skills for.
const CLAIM_SCAN_LIMIT: usize = 10_000;

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
    NoneReady,
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
            IdleReason::Unqualified { .. } | IdleReason::NoneReady => true,
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
            IdleReason::NoneReady => f.write_str(
                "no task is ready: the rest waits on dependencies, on other agents' leases or on retries",
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

/// A task and everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// Id.
    pub id: TaskId,
    /// Its workflow's id.
    pub workflow: WorkflowId,
    /// Its workflow's name.
    pub workflow_name: String,
    /// Key within the workflow.
    pub key: String,
    /// Title.
    pub title: String,
    /// What to do.
    pub description: Option<String>,
    /// Size in points.
    pub estimate: f64,
    /// 0 to 100.
    pub priority: i64,
    /// Required skills and minimum levels.
    pub skills: BTreeMap<String, u8>,
    /// Keys of its direct dependencies.
    pub depends_on: Vec<String>,
    /// State.
    pub state: TaskState,
    /// Why it failed or was cancelled.
    pub reason: Option<FailureReason>,
    /// Attempts started in this run of the task.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The agent holding its lease.
    pub agent: Option<String>,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the next attempt may start.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it last became ready.
    pub ready_at: Option<DateTime<Utc>>,
    /// When its current or last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent's last progress note.
    pub note: Option<String>,
    /// What it produced.
    pub result: Option<String>,
    /// The last failure's message.
    pub error: Option<String>,
    /// Effort actually spent, in points, as reported.
    pub actual: Option<f64>,
    /// Its rank for the claim order: the longest estimate-weighted path to the end.
    pub b_level: f64,
}

/// What an agent reports on a task it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
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
        retryable: bool,
    },
    /// Give the task back untouched; the attempt does not count.
    Release,
}

/// The effect of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOutcome {
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
        self.write(|tx, now| {
            tick(tx, now)?;
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
    pub fn report(
        &self,
        task: &TaskRef,
        agent: &str,
        token: LeaseToken,
        report: &Report,
        lease: Option<Duration>,
    ) -> Result<ReportOutcome> {
        let lease = check_lease(lease)?;
        check_report(report)?;
        self.write(|tx, now| {
            let mut row = TaskRow::resolve(tx, task)?;
            // Only an agent that does not hold the task can be one nobody registered; asking
            // only then keeps the common report to the queries it needs.
            if row.agent.as_deref() != Some(agent) {
                registered(tx, agent)?;
            }
            check_lease_holder(&row, agent, token, report, now)?;
            let mut unblocked = Vec::new();
            match report {
                Report::Heartbeat | Report::Progress { .. } => {
                    let note = match report {
                        Report::Progress { note } => Some(note.as_str()),
                        _ => None,
                    };
                    extend_lease(tx, now, &row, now + lease, note)?;
                }
                Report::Complete { result, actual } => {
                    apply(
                        tx,
                        now,
                        &mut row,
                        TaskEvent::Complete,
                        Change {
                            result: result.as_deref(),
                            actual: *actual,
                            ..Change::default()
                        },
                    )?;
                    unblocked = settle(tx, now, row.workflow, vec![(row.id, row.state)])?;
                }
                Report::Fail { error, retryable } => {
                    let workflow = WorkflowRow::by_id(tx, row.workflow)?;
                    let decision = workflow.retry.after_failure(
                        row.uuid,
                        row.attempt,
                        row.max_attempts,
                        *retryable,
                        now,
                    );
                    match decision {
                        AfterFailure::RetryAt(at) => {
                            apply(
                                tx,
                                now,
                                &mut row,
                                TaskEvent::FailAndRetry,
                                Change {
                                    deadline: Some(at),
                                    error: Some(error),
                                    ..Change::default()
                                },
                            )?;
                        }
                        AfterFailure::GiveUp(reason) => {
                            apply(
                                tx,
                                now,
                                &mut row,
                                TaskEvent::Fail,
                                Change {
                                    reason: Some(reason),
                                    error: Some(error),
                                    ..Change::default()
                                },
                            )?;
                            settle(tx, now, row.workflow, vec![(row.id, row.state)])?;
                        }
                    }
                }
                Report::Release => {
                    apply(tx, now, &mut row, TaskEvent::Release, Change::default())?;
                }
            }
            touch(tx, agent, now)?;
            let row = TaskRow::by_id(tx, row.id)?;
            let workflow_status = WorkflowRow::by_id(tx, row.workflow)?.status;
            Ok(ReportOutcome {
                task: view(tx, &row)?,
                workflow_status,
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
            settle(tx, now, row.workflow, vec![(row.id, row.state)])?;
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
                .collect::<rusqlite::Result<_>>()?;
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
                .prepare_cached(
                    "SELECT id FROM tasks WHERE state IN ('assigned', 'running') AND agent = ?1 \
                     ORDER BY deadline, id",
                )?
                .query_map([agent], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
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
fn history(conn: &Connection, task: i64) -> Result<(Vec<TaskAttempt>, Vec<Note>, usize)> {
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
        let state = |i: usize| -> rusqlite::Result<Option<TaskState>> {
            Ok(row
                .get::<_, Option<String>>(i)?
                .and_then(|s| s.parse().ok()))
        };
        let (from, to) = (state(3)?, state(4)?);
        if to == Some(TaskState::Running) {
            attempts.push(TaskAttempt {
                number: row.get::<_, Option<u32>>(5)?.unwrap_or(0),
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
    Ok((attempts, notes.into(), notes_total))
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

fn check_report(report: &Report) -> Result<()> {
    match report {
        Report::Progress { note } => {
            check_length("note", note, limits::MAX_DESCRIPTION_LEN)?;
        }
        Report::Complete { result, actual } => {
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
        Report::Fail { error, .. } => {
            check_length("error", error, limits::MAX_DESCRIPTION_LEN)?;
        }
        Report::Heartbeat | Report::Release => {}
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

fn check_lease_holder(
    row: &TaskRow,
    agent: &str,
    token: LeaseToken,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(holder) = &row.agent
        && holder != agent
    {
        return Err(Error::NotLeaseHolder {
            task: row.display(),
            agent: agent.to_owned(),
            holder: holder.clone(),
        });
    }
    if row.state != TaskState::Running {
        let event = match report {
            Report::Complete { .. } => TaskEvent::Complete,
            Report::Fail { .. } => TaskEvent::Fail,
            Report::Release => TaskEvent::Release,
            Report::Heartbeat | Report::Progress { .. } => TaskEvent::LeaseExpired,
        };
        // A finished task says so: "stale lease" would send a caller that retried its own
        // completion off to claim it again.
        if token < row.token && !row.state.is_terminal() {
            return Err(Error::StaleLease {
                task: row.display(),
                presented: token.0,
                current: row.token.0,
            });
        }
        return Err(Error::IllegalTransition {
            task: row.display(),
            state: row.state,
            verb: match report {
                Report::Heartbeat | Report::Progress { .. } => "take a heartbeat",
                _ => event.verb(),
            },
        });
    }
    if token != row.token {
        return Err(Error::StaleLease {
            task: row.display(),
            presented: token.0,
            current: row.token.0,
        });
    }
    if let Some(deadline) = row.deadline
        && deadline <= now
    {
        return Err(Error::LeaseExpired {
            task: row.display(),
            expired_at: deadline,
        });
    }
    Ok(())
}

/// What a claim found: a task to start, or why there is none now (and the workflow it was
/// limited to, if any).
enum Found {
    Task(Box<TaskRow>),
    Idle(IdleReason, Option<i64>),
}

/// Nothing while the agent is not active, or holds as many new tasks as its WIP limit allows.
/// Starting a task already delegated to it does not count: the agent holds that one already.
fn availability(conn: &Connection, profile: &AgentProfile) -> Result<Option<IdleReason>> {
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
pub(crate) fn in_flight(conn: &Connection, agent: &str) -> Result<u64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM tasks WHERE state IN ('assigned', 'running') AND agent = ?1",
        )?
        .query_row([agent], |row| row.get::<_, i64>(0))? as u64)
}

/// The soonest end of a retry backoff, in `workflow` or in any running workflow.
fn next_retry(conn: &Connection, workflow: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    let at: Option<i64> = match workflow {
        Some(workflow) => conn
            .prepare_cached(
                "SELECT min(deadline) FROM tasks WHERE deadline IS NOT NULL \
                 AND state = 'waiting_retry' AND workflow = ?1",
            )?
            .query_row([workflow], |row| row.get(0))?,
        None => conn
            .prepare_cached(
                "SELECT min(t.deadline) FROM tasks t WHERE t.deadline IS NOT NULL \
                 AND t.state = 'waiting_retry' \
                 AND (SELECT status FROM workflows WHERE id = t.workflow) = 'running'",
            )?
            .query_row([], |row| row.get(0))?,
    };
    Ok(at.map(crate::clock::from_millis))
}

/// Refuses a claim whose `workflow` is not the named task's own.
fn check_same_workflow(conn: &Connection, request: &ClaimRequest, task: &TaskRow) -> Result<()> {
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
    tx: &Transaction<'_>,
    request: &ClaimRequest,
    task: &TaskRef,
    profile: &AgentProfile,
) -> Result<Found> {
    let row = TaskRow::resolve(tx, task)?;
    check_same_workflow(tx, request, &row)?;
    let agent = profile.name.as_str();
    if let Some(holder) = &row.agent
        && holder != agent
    {
        return Err(Error::NotLeaseHolder {
            task: row.display(),
            agent: agent.to_owned(),
            holder: holder.clone(),
        });
    }
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
fn next_task(
    tx: &Transaction<'_>,
    request: &ClaimRequest,
    profile: &AgentProfile,
) -> Result<Found> {
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
            .prepare_cached(
                "SELECT id FROM tasks WHERE state IN ('assigned', 'running') AND agent = ?1 \
                 AND state = 'assigned' AND workflow = ?2 ORDER BY ready_at, id LIMIT 1",
            )?
            .query_row(params![request.agent, workflow], |row| row.get(0))
            .optional()?,
        None => tx
            .prepare_cached(
                "SELECT t.id FROM tasks t WHERE t.state IN ('assigned', 'running') \
                 AND t.agent = ?1 AND t.state = 'assigned' \
                 AND (SELECT status FROM workflows WHERE id = t.workflow) = 'running' \
                 ORDER BY t.ready_at, t.id LIMIT 1",
            )?
            .query_row(params![request.agent], |row| row.get(0))
            .optional()?,
    };
    if let Some(id) = delegated {
        return TaskRow::by_id(tx, id).map(|row| Found::Task(Box::new(row)));
    }
    if let Some(reason) = availability(tx, profile)? {
        return Ok(Found::Idle(reason, workflow));
    }

    let workflows = match workflow {
        Some(id) => vec![id],
        None => tx
            .prepare_cached("SELECT id FROM workflows WHERE status = 'running' ORDER BY id")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    // Each running workflow offers its best suitable task; the best of those wins. One index
    // per workflow keeps every claim and report to a few pages of writes, and there are few
    // running workflows at a time.
    let mut best: Option<Candidate> = None;
    let mut scan = Scan {
        budget: CLAIM_SCAN_LIMIT,
        unqualified: 0,
        example: None,
    };
    for workflow in workflows {
        if let Some(candidate) = best_in_workflow(tx, workflow, profile, &mut scan)?
            && best
                .as_ref()
                .is_none_or(|best| candidate.ranks_before(best))
        {
            best = Some(candidate);
        }
    }
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
        (None, None) => Ok(Found::Idle(IdleReason::NoneReady, workflow)),
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
struct Candidate {
    id: i64,
    priority: i64,
    /// How well the agent's skills fit the task (the score's fit term; 1 without a profile).
    fit: f64,
    b_level: f64,
    ready_at: i64,
}

impl Candidate {
    /// Priority first, then the agent's fit, then b-level, then the longest wait, then
    /// creation order.
    fn ranks_before(&self, other: &Candidate) -> bool {
        other
            .priority
            .cmp(&self.priority)
            .then(other.fit.total_cmp(&self.fit))
            .then(other.b_level.total_cmp(&self.b_level))
            .then(self.ready_at.cmp(&other.ready_at))
            .then(self.id.cmp(&other.id))
            .is_lt()
    }
}

/// Tasks of one priority looked at, at most, for the best fit: among tasks of equal priority,
/// an agent with a profile gets the one its skills fit best.
const FIT_SCAN_LIMIT: usize = 200;

/// The best ready task of `workflow` for the agent: the highest priority it has the skills for,
/// and within that priority the best fit for its skills, then the claim order.
fn best_in_workflow(
    tx: &Transaction<'_>,
    workflow: i64,
    profile: &AgentProfile,
    scan: &mut Scan,
) -> Result<Option<Candidate>> {
    // `INDEXED BY` pins the plan to the claim-order index, which yields rows already sorted.
    let mut stmt = tx.prepare_cached(
        "SELECT id, has_skills, priority, b_level, ready_at FROM tasks \
         INDEXED BY tasks_ready_in_workflow WHERE workflow = ?1 AND state = 'ready' \
         ORDER BY priority DESC, b_level DESC, ready_at, id",
    )?;
    let mut rows = stmt.query([workflow])?;
    let mut best: Option<Candidate> = None;
    let mut compared = 0;
    while let Some(row) = rows.next()? {
        if scan.budget == 0 {
            break;
        }
        scan.budget -= 1;
        let (id, has_skills, priority): (i64, bool, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if let Some(best) = &best
            && (priority < best.priority || compared >= FIT_SCAN_LIMIT)
        {
            break;
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
                continue;
            }
            let needs = Needs {
                skills,
                estimate: 0.0,
            };
            crate::agent::fit(profile, &needs)
        } else {
            1.0
        };
        let candidate = Candidate {
            id,
            priority,
            fit,
            b_level: row.get(3)?,
            ready_at: row.get::<_, Option<i64>>(4)?.unwrap_or_default(),
        };
        // No fit beats a perfect one, and rows come in claim order within a priority: the
        // first perfect fit is the answer, as it is for every task without skills.
        if candidate.fit >= 1.0 && best.as_ref().is_none_or(|b| b.priority < priority) {
            return Ok(Some(candidate));
        }
        compared += 1;
        if best.as_ref().is_none_or(|b| candidate.ranks_before(b)) {
            best = Some(candidate);
        }
    }
    Ok(best)
}

/// Columns a transition sets besides the state; the rest follow from the states involved.
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    pub(crate) reason: Option<FailureReason>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) deadline: Option<DateTime<Utc>>,
    pub(crate) result: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) actual: Option<f64>,
    pub(crate) detail: Option<&'a str>,
}

/// Moves `task` by `event` when the state machine allows it, keeps the workflow's count of
/// open tasks, and appends the event. `task` is updated to the new row values.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    task: &mut TaskRow,
    event: TaskEvent,
    change: Change<'_>,
) -> Result<()> {
    let from = task.state;
    let Some(to) = transition(from, event) else {
        return Err(Error::IllegalTransition {
            task: task.display(),
            state: from,
            verb: event.verb(),
        });
    };
    let event_agent = change
        .agent
        .map(str::to_owned)
        .or_else(|| task.agent.clone());
    // Any lease that starts or ends moves the fencing token, so reports on an old lease fail.
    if from.is_leased() || to.is_leased() {
        task.token = LeaseToken(task.token.0 + 1);
    }
    match event {
        TaskEvent::Start => {
            task.attempt += 1;
            task.started_at = Some(now);
        }
        // Giving back a started task does not use up an attempt; an assignment never
        // started had not counted one.
        TaskEvent::Release if from == TaskState::Running => {
            task.attempt = task.attempt.saturating_sub(1)
        }
        TaskEvent::Reset => task.attempt = 0,
        _ => {}
    }
    task.agent = if to.is_leased() {
        change.agent.map(str::to_owned).or(task.agent.take())
    } else {
        None
    };
    task.deadline = match to {
        TaskState::Assigned | TaskState::Running | TaskState::WaitingRetry => change.deadline,
        _ => None,
    };
    if to == TaskState::Ready {
        task.ready_at = Some(now);
    }
    if to.is_terminal() {
        task.finished_at = Some(now);
        task.reason = change.reason;
    } else {
        task.finished_at = None;
        task.reason = None;
    }
    if to == TaskState::Pending {
        task.ready_at = None;
        task.started_at = None;
        task.result = None;
        task.actual = None;
    }
    if let Some(result) = change.result {
        task.result = Some(result.to_owned());
    }
    if let Some(error) = change.error {
        task.error = Some(error.to_owned());
    }
    if change.actual.is_some() {
        task.actual = change.actual;
    }
    task.state = to;
    tx.prepare_cached(
        "UPDATE tasks SET state = ?2, reason = ?3, attempt = ?4, agent = ?5, token = ?6, \
         deadline = ?7, ready_at = ?8, started_at = ?9, finished_at = ?10, result = ?11, \
         error = ?12, actual = ?13, first_started_at = coalesce(first_started_at, ?9), \
         done_by = CASE WHEN ?2 = 'succeeded' THEN ?14 END WHERE id = ?1",
    )?
    .execute(params![
        task.id,
        to.as_str(),
        task.reason.map(FailureReason::as_str),
        task.attempt,
        task.agent,
        task.token.0 as i64,
        task.deadline.map(millis),
        task.ready_at.map(millis),
        task.started_at.map(millis),
        task.finished_at.map(millis),
        task.result,
        task.error,
        task.actual,
        event_agent,
    ])?;
    // An attempt ended: the agent's record grows. Releases and cancellations are not the
    // agent's doing, so they do not count.
    if from == TaskState::Running
        && let Some(agent) = event_agent.as_deref()
    {
        let ended = match event {
            TaskEvent::Complete => Some(true),
            TaskEvent::Fail | TaskEvent::FailAndRetry | TaskEvent::LeaseExpired => Some(false),
            _ => None,
        };
        if let Some(succeeded) = ended {
            let log_ratio = match (succeeded, task.actual) {
                (true, Some(actual)) if actual > 0.0 && task.estimate > 0.0 => {
                    Some((actual / task.estimate).ln())
                }
                _ => None,
            };
            super::agent::record_attempt(tx, agent, succeeded, log_ratio)?;
        }
    }
    let opened = i64::from(from.is_terminal()) - i64::from(to.is_terminal());
    if opened != 0 {
        tx.prepare_cached("UPDATE workflows SET open_tasks = open_tasks + ?2 WHERE id = ?1")?
            .execute(params![task.workflow, opened])?;
    }
    let detail = change
        .detail
        .or(change.reason.map(FailureReason::as_str))
        .or(change.error);
    append(
        tx,
        now,
        EventKind::TaskState,
        NewEvent {
            workflow: Some(task.workflow),
            task: Some(task.id),
            agent: event_agent.as_deref(),
            from: Some(from),
            to: Some(to),
            attempt: Some(task.attempt),
            value: match to {
                TaskState::Succeeded => task.actual,
                _ => None,
            },
            detail,
            sprint: None,
        },
    )?;
    Ok(())
}

fn extend_lease(
    tx: &Transaction<'_>,
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

/// Moves the dependents of tasks that just reached a terminal state, transitively, then ends
/// the workflow when nothing is left open. Returns the keys of tasks that became ready.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    workflow: i64,
    mut finished: Vec<(i64, TaskState)>,
) -> Result<Vec<String>> {
    let mut row = WorkflowRow::by_id(tx, workflow)?;
    let mut unblocked = Vec::new();
    while let Some((task, state)) = finished.pop() {
        if state == TaskState::Failed
            && row.on_failure == FailurePolicy::FailFast
            && !row.fail_fast_triggered
        {
            row.fail_fast_triggered = true;
            tx.prepare_cached("UPDATE workflows SET fail_fast_triggered = 1 WHERE id = ?1")?
                .execute([workflow])?;
            for id in ids(
                tx,
                "SELECT id FROM tasks WHERE workflow = ?1 AND state IN \
                ('pending', 'ready', 'assigned', 'waiting_retry')",
                workflow,
            )? {
                let mut dependent = TaskRow::by_id(tx, id)?;
                apply(
                    tx,
                    now,
                    &mut dependent,
                    TaskEvent::Cancel,
                    Change {
                        reason: Some(FailureReason::FailFast),
                        ..Change::default()
                    },
                )?;
            }
            continue;
        }
        let Some(effect) = upstream_effect(row.on_failure, state) else {
            continue;
        };
        for id in ids(tx, "SELECT task FROM deps WHERE dep = ?1", task)? {
            match effect {
                UpstreamEffect::Satisfied => {
                    let (unmet, state): (u32, String) = tx
                        .prepare_cached(
                            "UPDATE tasks SET unmet = unmet - 1 WHERE id = ?1 \
                             RETURNING unmet, state",
                        )?
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    let startable =
                        matches!(row.status, WorkflowStatus::Running | WorkflowStatus::Paused);
                    if unmet == 0 && state == TaskState::Pending.as_str() && startable {
                        let mut dependent = TaskRow::by_id(tx, id)?;
                        apply(
                            tx,
                            now,
                            &mut dependent,
                            TaskEvent::DependenciesMet,
                            Change::default(),
                        )?;
                        unblocked.push(dependent.key);
                    }
                }
                UpstreamEffect::Blocked => {
                    let mut dependent = TaskRow::by_id(tx, id)?;
                    if transition(dependent.state, TaskEvent::UpstreamFailed).is_some() {
                        apply(
                            tx,
                            now,
                            &mut dependent,
                            TaskEvent::UpstreamFailed,
                            Change {
                                reason: Some(FailureReason::Upstream),
                                ..Change::default()
                            },
                        )?;
                        finished.push((dependent.id, dependent.state));
                    }
                }
            }
        }
    }
    finish_if_done(tx, now, workflow)?;
    Ok(unblocked)
}

/// Applies the leaf rule once no task is open.
pub(crate) fn finish_if_done(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    workflow: i64,
) -> Result<()> {
    // Most calls end here: the whole row and the leaves are only worth loading once nothing
    // is open.
    let open: i64 = tx
        .prepare_cached("SELECT open_tasks FROM workflows WHERE id = ?1")?
        .query_row([workflow], |r| r.get(0))?;
    if open > 0 {
        return Ok(());
    }
    let row = WorkflowRow::by_id(tx, workflow)?;
    if !matches!(row.status, WorkflowStatus::Running | WorkflowStatus::Paused) {
        return Ok(());
    }
    let leaves: Vec<TaskState> = tx
        .prepare_cached("SELECT state FROM tasks WHERE workflow = ?1 AND is_leaf = 1")?
        .query_map([workflow], |r| r.get::<_, String>(0))?
        .filter_map(|state| state.ok().and_then(|s| s.parse().ok()))
        .collect();
    if let Some(status) = outcome(row.open_tasks, row.fail_fast_triggered, leaves) {
        super::workflow::set_status(tx, now, &row, status)?;
    }
    Ok(())
}

/// Expires run-out leases and ends finished backoffs.
pub(crate) fn tick(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<Tick> {
    let mut done = Tick::default();
    // No lease is ever set to end more than a day ahead, and no backoff more than a day and
    // its jitter of a fifth. A deadline further off means the clock jumped back since it was
    // set; pulling it in to the longest allowed keeps a dead agent's task from waiting for the
    // clock to catch up, however far it jumped.
    // One statement, since every claim runs it: the index on deadlines finds nothing beyond a
    // day ahead unless the clock went back.
    let longest_lease = Duration::seconds(limits::MAX_LEASE_SECONDS);
    tx.prepare_cached(
        "UPDATE tasks SET deadline = CASE state WHEN 'waiting_retry' THEN ?2 ELSE ?1 END \
         WHERE deadline > ?1 AND (state IN ('assigned', 'running') \
         OR (state = 'waiting_retry' AND deadline > ?2))",
    )?
    .execute([
        millis(now + longest_lease),
        millis(now + longest_lease * 6 / 5),
    ])?;
    let due = ids(
        tx,
        "SELECT id FROM tasks WHERE deadline <= ?1 ORDER BY deadline",
        millis(now),
    )?;
    for id in due {
        let mut task = TaskRow::by_id(tx, id)?;
        match task.state {
            TaskState::WaitingRetry => {
                apply(tx, now, &mut task, TaskEvent::RetryDue, Change::default())?;
                done.retried += 1;
            }
            TaskState::Assigned => {
                apply(
                    tx,
                    now,
                    &mut task,
                    TaskEvent::LeaseExpired,
                    Change {
                        detail: Some("lease_expired"),
                        ..Change::default()
                    },
                )?;
                done.expired += 1;
            }
            TaskState::Running if task.attempt >= task.max_attempts => {
                apply(
                    tx,
                    now,
                    &mut task,
                    TaskEvent::Fail,
                    Change {
                        reason: Some(FailureReason::LeaseExpired),
                        error: Some("the lease expired without a report"),
                        ..Change::default()
                    },
                )?;
                settle(tx, now, task.workflow, vec![(task.id, task.state)])?;
                done.expired += 1;
            }
            TaskState::Running => {
                apply(
                    tx,
                    now,
                    &mut task,
                    TaskEvent::LeaseExpired,
                    Change {
                        error: Some("the lease expired without a report"),
                        detail: Some("lease_expired"),
                        ..Change::default()
                    },
                )?;
                done.expired += 1;
            }
            _ => {}
        }
    }
    Ok(done)
}

/// The integer ids a one-parameter query returns.
pub(crate) fn ids(conn: &Connection, sql: &str, param: i64) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map([param], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn task_skills(conn: &Connection, task: i64) -> Result<BTreeMap<String, u8>> {
    Ok(conn
        .prepare_cached("SELECT skill, level FROM task_skills WHERE task = ?1")?
        .query_map([task], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

fn dependency_results(conn: &Connection, task: i64) -> Result<Vec<DependencyResult>> {
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
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The public view of a task row.
pub(crate) fn view(conn: &Connection, row: &TaskRow) -> Result<TaskView> {
    let depends_on = conn
        .prepare_cached(
            "SELECT key FROM tasks WHERE id IN (SELECT dep FROM deps WHERE task = ?1) ORDER BY id",
        )?
        .query_map([row.id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let skills = if row.has_skills {
        task_skills(conn, row.id)?
    } else {
        BTreeMap::new()
    };
    Ok(view_with(row, skills, depends_on))
}

pub(crate) fn view_with(
    row: &TaskRow,
    skills: BTreeMap<String, u8>,
    depends_on: Vec<String>,
) -> TaskView {
    let (lease_expires_at, next_attempt_at) = match row.state {
        TaskState::WaitingRetry => (None, row.deadline),
        _ => (row.deadline, None),
    };
    TaskView {
        id: row.uuid,
        workflow: row.workflow_uuid,
        workflow_name: row.workflow_name.clone(),
        key: row.key.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        estimate: row.estimate,
        priority: row.priority,
        skills,
        depends_on,
        state: row.state,
        reason: row.reason,
        attempt: row.attempt,
        max_attempts: row.max_attempts,
        agent: row.agent.clone(),
        lease_expires_at,
        next_attempt_at,
        ready_at: row.ready_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        note: row.note.clone(),
        result: row.result.clone(),
        error: row.error.clone(),
        actual: row.actual,
        b_level: row.b_level,
    }
}

/// All task rows of a workflow, in creation order.
pub(crate) fn workflow_tasks(conn: &Connection, workflow: i64) -> Result<Vec<TaskRow>> {
    // Reading the workflow's id range of the table in id order needs neither a sort nor an
    // index lookup per task, and the workflow's name and id are bound once rather than looked
    // up for every row: most of the cost of a status report on a large workflow.
    let Some((first, last)) = task_range(conn, workflow)? else {
        return Ok(Vec::new());
    };
    let (name, uuid): (String, [u8; 16]) = conn
        .prepare_cached("SELECT name, uuid FROM workflows WHERE id = ?1")?
        .query_row([workflow], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let columns = TASK_COLUMNS
        .replace("(SELECT name FROM workflows WHERE id = t.workflow)", "?4")
        .replace("(SELECT uuid FROM workflows WHERE id = t.workflow)", "?5");
    let sql = format!(
        "SELECT {columns} FROM tasks t NOT INDEXED \
         WHERE t.id BETWEEN ?2 AND ?3 AND t.workflow = ?1 ORDER BY t.id"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(
            rusqlite::params![workflow, first, last, name, uuid],
            TaskRow::from_row,
        )?
        .collect::<rusqlite::Result<_>>()?)
}

/// The first and last task ids of a workflow. A workflow's tasks are inserted together, in one
/// transaction, so its ids form one range and no other workflow's task falls inside it.
pub(crate) fn task_range(conn: &Connection, workflow: i64) -> Result<Option<(i64, i64)>> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT min(id), max(id) FROM tasks WHERE workflow = ?1")?
        .query_row([workflow], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(first.zip(last))
}
