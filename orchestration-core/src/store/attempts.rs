//! The attempts agents ended, one row each in `attempts`, written by `transition::apply` in
//! the transaction that ends the attempt, keyed by when it ended and the event that ended it:
//! what agent performance reads at the edges of its windows, as ranges of that key, beside the
//! summaries of the whole hours and days between (`summaries`), which the same transaction
//! keeps.
//!
//! The table holds what the log holds about each end (the log stays the source, and schema 8
//! rebuilt the table from it), plus the task's estimate, which a re-estimate keeps current, so
//! a window reads no other table but the skills of the tasks that have some.

use chrono::{DateTime, Utc};

use crate::agent::summary::Summary;
use crate::agent::{Attempt, AttemptEnd};
use crate::clock::from_millis;
use crate::error::Result;
use crate::workflow::TaskState;

use super::db::{Params, Row, Tx, params};
use super::event::{EventKind, NewEvent};
use super::millis;

/// An attempt that just ended, as `attempts` keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EndedAttempt<'a> {
    pub(crate) agent: &'a str,
    pub(crate) task: i64,
    pub(crate) number: u32,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) ended_at: DateTime<Utc>,
    pub(crate) end: AttemptEnd,
    pub(crate) estimate: f64,
    pub(crate) actual: Option<f64>,
    pub(crate) has_skills: bool,
}

/// An attempt read back for a window, in the order the attempts ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredAttempt {
    pub(super) agent: String,
    pub(super) task: i64,
    pub(super) number: u32,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) ended_at: DateTime<Utc>,
    pub(super) end: AttemptEnd,
    pub(super) estimate: f64,
    pub(super) actual: Option<f64>,
    pub(super) has_skills: bool,
}

impl StoredAttempt {
    /// The columns every read of `attempts` selects, in this order, to decode with
    /// [`StoredAttempt::decode`].
    const COLUMNS: &str =
        "agent, task, number, started_at, ended_at, outcome, estimate, actual, has_skills";

    /// The attempt in [`StoredAttempt::COLUMNS`] from column `first` of `row` on; `None` for an
    /// outcome this build does not know, which counts for nothing.
    fn decode(row: &Row<'_>, first: usize) -> Result<Option<StoredAttempt>> {
        let Some(end) = parse_outcome(row.get_ref(first + 5)?.as_str().unwrap_or_default()) else {
            return Ok(None);
        };
        Ok(Some(StoredAttempt {
            agent: row.get(first)?,
            task: row.get(first + 1)?,
            number: row.get(first + 2)?,
            started_at: row.get::<_, Option<i64>>(first + 3)?.map(from_millis),
            ended_at: from_millis(row.get(first + 4)?),
            end,
            estimate: row.get(first + 6)?,
            actual: row.get(first + 7)?,
            has_skills: row.get(first + 8)?,
        }))
    }

    /// The attempt as performance reads it, with its task's `skills`.
    pub(super) fn with_skills(self, skills: Vec<String>) -> Attempt {
        Attempt {
            agent: self.agent,
            task: self.task,
            number: self.number,
            started_at: self.started_at,
            ended_at: self.ended_at,
            end: self.end,
            estimate: self.estimate,
            actual: self.actual,
            skills,
        }
    }
}

/// How an attempt ended, from the state its task left `running` for and the event's detail;
/// `None` for an end that is not the agent's doing. Agent performance and sprint
/// contributions both read attempts through it, so they count retries and expired leases alike.
pub(crate) fn attempt_end(to_state: &str, detail: Option<&str>) -> Option<AttemptEnd> {
    let expired = detail == Some("lease_expired");
    Some(match to_state {
        "succeeded" => AttemptEnd::Succeeded,
        "waiting_retry" => AttemptEnd::Failed { retried: true },
        "failed" if expired => AttemptEnd::Expired,
        "failed" => AttemptEnd::Failed { retried: false },
        "ready" if expired => AttemptEnd::Expired,
        // Releases, cancellations and rebalancing are not the agent's doing.
        _ => return None,
    })
}

/// The attempt a step from `from` to `to` ended, if it ended one that performance counts: the
/// same rule as [`attempt_end`] over the event the step logs.
pub(crate) fn ended(from: TaskState, to: TaskState, detail: Option<&str>) -> Option<AttemptEnd> {
    if from != TaskState::Running {
        return None;
    }
    attempt_end(to.as_str(), detail)
}

/// The name of an end in `attempts.outcome`.
fn outcome(end: AttemptEnd) -> &'static str {
    match end {
        AttemptEnd::Succeeded => "succeeded",
        AttemptEnd::Failed { retried: true } => "retried",
        AttemptEnd::Failed { retried: false } => "failed",
        AttemptEnd::Expired => "expired",
    }
}

/// The end named `name` in `attempts.outcome`.
fn parse_outcome(name: &str) -> Option<AttemptEnd> {
    Some(match name {
        "succeeded" => AttemptEnd::Succeeded,
        "retried" => AttemptEnd::Failed { retried: true },
        "failed" => AttemptEnd::Failed { retried: false },
        "expired" => AttemptEnd::Expired,
        _ => return None,
    })
}

/// Appends `event`, the event that ended `attempt`, to the log and keeps the attempt under
/// the event's position, in the transaction that ends it. Beside other writers the position
/// is known only at the commit, and the attempt is kept then (`Sql::append_event_then`).
pub(crate) fn append_with_event(
    tx: &Tx<'_>,
    at: DateTime<Utc>,
    event: NewEvent<'_>,
    attempt: &EndedAttempt<'_>,
) -> Result<()> {
    params![
        attempt.agent,
        attempt.task,
        attempt.number,
        attempt.started_at.map(millis),
        millis(attempt.ended_at),
        outcome(attempt.end),
        attempt.estimate,
        attempt.actual,
        attempt.has_skills,
    ]
    .bind(|values| {
        super::event::append_then(
            tx,
            at,
            EventKind::TaskState,
            event,
            "INSERT INTO attempts (seq, agent, task, number, started_at, ended_at, outcome, \
             estimate, actual, has_skills) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            values,
        )
    })?;
    super::summaries::record(tx, attempt)
}

/// Gives `task`'s past attempts its new estimate: performance weighs every attempt by the
/// task's estimate as it is now, as it did when it read the estimates beside the log.
pub(crate) fn reestimate(tx: &Tx<'_>, task: i64, estimate: f64) -> Result<()> {
    // The summaries the attempts count in move from their old estimate to the new one.
    let skills = super::summaries::task_skills(tx, task)?;
    let sql = format!(
        "SELECT {} FROM attempts WHERE task = ?1",
        StoredAttempt::COLUMNS
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query([task])?;
    while let Some(row) = rows.next()? {
        let Some(stored) = StoredAttempt::decode(&row, 0)? else {
            continue;
        };
        let old = stored.with_skills(skills.clone());
        let mut change = Summary::of(&Attempt {
            estimate,
            ..old.clone()
        });
        change.add(&Summary::of(&old), -1);
        if !change.is_zero() {
            super::summaries::add(tx, &old, &change)?;
        }
    }
    tx.prepare_cached("UPDATE attempts SET estimate = ?2 WHERE task = ?1")?
        .execute(params![task, estimate])?;
    Ok(())
}

/// The attempts that ended in `(after, to]`, in the order they ended.
pub(super) fn window(
    conn: &Tx<'_>,
    after: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StoredAttempt>> {
    let sql = format!(
        "SELECT seq, {} FROM attempts WHERE ended_at > ?1 AND ended_at <= ?2",
        StoredAttempt::COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![millis(after), millis(to)])?;
    let mut read: Vec<(i64, StoredAttempt)> = Vec::new();
    while let Some(row) = rows.next()? {
        if let Some(attempt) = StoredAttempt::decode(&row, 1)? {
            read.push((row.get(0)?, attempt));
        }
    }
    // The key orders by the time of the end; the log's order is that of the events that
    // ended them, which equal times and a clock set back keep. The rows come nearly sorted,
    // which the sort notices.
    read.sort_by_key(|(seq, _)| *seq);
    Ok(read.into_iter().map(|(_, attempt)| attempt).collect())
}
