//! The append-only event log: every change is recorded in the transaction that makes it, so the
//! analytics can be rebuilt from it at any time.

use std::fmt;

use super::db::{Params, Row, Tx, Value, params};
use chrono::{DateTime, Duration, Utc};

use crate::clock::from_millis;
use crate::error::Result;
use crate::id::{TaskId, WorkflowId};
use crate::workflow::TaskState;

use super::sql::query;
use super::{Store, millis, refs::parse_column};

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A workflow was created with all its tasks pending.
    WorkflowCreated,
    /// A workflow started, paused, resumed, was cancelled, was retried or finished; `detail`
    /// holds the new status.
    WorkflowStatus,
    /// A task changed state.
    TaskState,
    /// An agent reported progress on a task.
    TaskProgress,
    /// A dependency was added (`detail`: the dependency's key).
    DependencyAdded,
    /// A dependency was removed (`detail`: the dependency's key).
    DependencyRemoved,
    /// An agent profile was created or changed.
    AgentProfile,
    /// A message was sent (`detail`: its id and recipient).
    Message,
    /// A sprint was planned, started or closed; `detail` holds the new status, `value` the
    /// commitment (at the start) or the points completed (at the close).
    SprintStatus,
    /// A task joined or left a sprint; `detail` is `added`, `removed` or `carried_over`, `value`
    /// the task's estimate.
    SprintScope,
    /// A task was re-estimated; `value` is the new estimate, `detail` the old one.
    EstimateChanged,
}

impl EventKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::WorkflowCreated => "workflow_created",
            EventKind::WorkflowStatus => "workflow_status",
            EventKind::TaskState => "task_state",
            EventKind::TaskProgress => "task_progress",
            EventKind::DependencyAdded => "dependency_added",
            EventKind::DependencyRemoved => "dependency_removed",
            EventKind::AgentProfile => "agent_profile",
            EventKind::Message => "message",
            EventKind::SprintStatus => "sprint_status",
            EventKind::SprintScope => "sprint_scope",
            EventKind::EstimateChanged => "estimate_changed",
        }
    }

    /// Every kind, in the order of the list above.
    pub const ALL: [EventKind; 11] = [
        EventKind::WorkflowCreated,
        EventKind::WorkflowStatus,
        EventKind::TaskState,
        EventKind::TaskProgress,
        EventKind::DependencyAdded,
        EventKind::DependencyRemoved,
        EventKind::AgentProfile,
        EventKind::Message,
        EventKind::SprintStatus,
        EventKind::SprintScope,
        EventKind::EstimateChanged,
    ];

    fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the log; grows by one per event.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The workflow's id, when it concerns one.
    pub workflow: Option<WorkflowId>,
    /// The workflow's name.
    pub workflow_name: Option<String>,
    /// The sprint's name, when it concerns one.
    pub sprint: Option<String>,
    /// The task's id, when it concerns one.
    pub task: Option<TaskId>,
    /// The task's key.
    pub task_key: Option<String>,
    /// The agent involved.
    pub agent: Option<String>,
    /// The state before a task state change.
    pub from: Option<TaskState>,
    /// The state after a task state change.
    pub to: Option<TaskState>,
    /// The attempt number at the time.
    pub attempt: Option<u32>,
    /// A number: the estimate at creation, the actual effort at completion.
    pub value: Option<f64>,
    /// Free text: a reason, a note, a status.
    pub detail: Option<String>,
}

/// An event about to be written.
#[derive(Debug, Default)]
pub(crate) struct NewEvent<'a> {
    pub(crate) workflow: Option<i64>,
    pub(crate) sprint: Option<i64>,
    pub(crate) task: Option<i64>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) from: Option<TaskState>,
    pub(crate) to: Option<TaskState>,
    pub(crate) attempt: Option<u32>,
    pub(crate) value: Option<f64>,
    pub(crate) detail: Option<&'a str>,
}

/// Appends one event to the log, then runs `then` with the event's position as its first
/// parameter and `then_params` after it: how a row that must name its event (an attempt the
/// event ended) is kept, whichever writers run beside this one.
pub(crate) fn append_then(
    tx: &Tx<'_>,
    at: DateTime<Utc>,
    kind: EventKind,
    event: NewEvent<'_>,
    then: &str,
    then_params: &[Value<'_>],
) -> Result<()> {
    bound(at, kind, &event, |values| {
        tx.append_event_then(APPEND_RETURNING, values, then, then_params)
    })
}

/// Appends one event to the log.
pub(crate) fn append(
    tx: &Tx<'_>,
    at: DateTime<Utc>,
    kind: EventKind,
    event: NewEvent<'_>,
) -> Result<()> {
    bound(at, kind, &event, |values| tx.append_event(APPEND, values))
}

/// Calls `run` with the values of [`APPEND`]'s parameters for `event`, in their order.
fn bound<R>(
    at: DateTime<Utc>,
    kind: EventKind,
    event: &NewEvent<'_>,
    run: impl FnOnce(&[Value<'_>]) -> R,
) -> R {
    params![
        millis(at),
        kind.as_str(),
        event.workflow,
        event.task,
        event.agent,
        event.from.map(TaskState::as_str),
        event.to.map(TaskState::as_str),
        event.attempt,
        event.value,
        event.detail,
        event.sprint,
    ]
    .bind(run)
}

/// The statement that appends one event, followed by `$tail`.
macro_rules! append {
    ($tail:literal) => {
        concat!(
            "INSERT INTO events (at, kind, workflow, task, agent, from_state, to_state, \
             attempt, value, detail, sprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11)",
            $tail
        )
    };
}

/// The statement that appends one event; [`APPEND_COLUMNS`] names its parameters in order.
pub(crate) const APPEND: &str = append!("");

/// [`APPEND`], returning the position the event got.
pub(crate) const APPEND_RETURNING: &str = append!(" RETURNING seq");

/// The columns [`APPEND`] fills, in the order of its parameters.
pub(crate) const APPEND_COLUMNS: &str =
    "at, kind, workflow, task, agent, from_state, to_state, attempt, value, detail, sprint";

impl Store {
    /// The position of the newest event, 0 while the log is empty. Whoever remembers it can
    /// tell, by asking again, whether anything changed since, whichever process changed it.
    pub fn last_event_seq(&self) -> Result<i64> {
        self.read(|tx, _| {
            tx.prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
                .query_row([], |r| r.get(0))
        })
    }

    /// Events after `after_seq` (0 for the start of the log), oldest first, at most `limit`.
    pub fn events_since(&self, after_seq: i64, limit: usize) -> Result<Vec<Event>> {
        self.read(|tx, _| {
            tx.prepare_cached(query!(
                "{EVENT_COLUMNS} WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
            ))?
            .query_map(params![after_seq, limit as i64], event)?
            .collect()
        })
    }

    /// The newest events of the last `within`, by the store's time (the database's on
    /// PostgreSQL), oldest first: at most `limit` of them.
    pub fn recent_events(&self, within: Duration, limit: usize) -> Result<Vec<Event>> {
        self.read(|tx, now| {
            let mut events: Vec<Event> = tx
                .prepare_cached(query!(
                    "{EVENT_COLUMNS} WHERE e.at >= ?1 ORDER BY e.seq DESC LIMIT ?2"
                ))?
                .query_map(params![millis(now - within), limit as i64], event)?
                .collect::<Result<_>>()?;
            events.reverse();
            Ok(events)
        })
    }

    /// The store's time: its clock's, or on PostgreSQL with the system clock, the database's.
    /// What a caller shows as "now" beside what the store reported.
    pub fn now(&self) -> Result<DateTime<Utc>> {
        self.read(|_, now| Ok(now))
    }

    /// How long from now, by the store's time (the database's on PostgreSQL), until `at`;
    /// zero when it has passed. A caller that waits for a time the store named (a retry
    /// falling due) sleeps this long, whatever its own clock says.
    pub fn time_until(&self, at: DateTime<Utc>) -> Result<std::time::Duration> {
        self.read(|_, now| Ok((at - now).to_std().unwrap_or_default()))
    }
}

/// An event row with its workflow, task and sprint names: the query [`event`] reads.
const EVENT_COLUMNS: &str = "SELECT e.seq, e.at, e.kind, w.uuid, w.name, t.uuid, t.key, e.agent, \
    e.from_state, e.to_state, e.attempt, e.value, e.detail, s.name \
    FROM events e LEFT JOIN workflows w ON w.id = e.workflow \
    LEFT JOIN sprints s ON s.id = e.sprint LEFT JOIN tasks t ON t.id = e.task";

fn event(row: &Row<'_>) -> Result<Event> {
    let state = |i: usize| {
        row.get::<_, Option<String>>(i)
            .map(|s| s.and_then(|s| s.parse().ok()))
    };
    Ok(Event {
        seq: row.get(0)?,
        at: from_millis(row.get(1)?),
        kind: parse_column(row, 2, EventKind::parse)?,
        workflow: row
            .get::<_, Option<[u8; 16]>>(3)?
            .map(WorkflowId::from_bytes),
        workflow_name: row.get(4)?,
        sprint: row.get(13)?,
        task: row.get::<_, Option<[u8; 16]>>(5)?.map(TaskId::from_bytes),
        task_key: row.get(6)?,
        agent: row.get(7)?,
        from: state(8)?,
        to: state(9)?,
        attempt: row.get(10)?,
        value: row.get(11)?,
        detail: row.get(12)?,
    })
}
