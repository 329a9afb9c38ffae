//! Agent summaries (`agent_summaries`, schema 9): per agent, skill (or none) and bucket of
//! time, an hour and a day, what the attempts that ended in it add up to
//! (`agent::summary::Summary`). The transaction that ends an attempt adds it
//! (`attempts::append_with_event`), and a re-estimate moves its attempts' sums to the new
//! estimate, so agent performance reads a few rows per agent and day, and the attempts of at
//! most an hour at each edge of its windows, however many attempts the window holds.
//!
//! A transaction beside other writers (`Sql::pending`) keeps its changes to the summaries to
//! its end, with the counters (`counts::Pending`), and writes them after them in key order:
//! (span, bucket, agent, skill), the one order every such transaction locks them in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::agent::Attempt;
use crate::agent::summary::{Cover, SPANS, Sketch, Summary, Tally, WindowSummary, bucket, cover};
use crate::clock::from_millis;
use crate::error::{Error, Result, StorageError};

use super::attempts::EndedAttempt;
use super::db::{Tx, Value};
use super::millis;
use super::performance::attempts_in;

/// A summary's row: (span, bucket, agent, skill), the skill empty for all of the agent's
/// attempts.
type Key = (i64, i64, String, String);

/// The changes to the summaries a transaction beside others keeps to its end, by key: the
/// order they are written and locked in.
#[derive(Debug, Default)]
pub(crate) struct Kept(BTreeMap<Key, Summary>);

impl Kept {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The skills `task` requires.
pub(super) fn task_skills(tx: &Tx<'_>, task: i64) -> Result<Vec<String>> {
    tx.prepare_cached("SELECT skill FROM task_skills WHERE task = ?1")?
        .query_map([task], |r| r.get(0))?
        .collect()
}

/// Adds the attempt that just ended to its summaries.
pub(crate) fn record(tx: &Tx<'_>, ended: &EndedAttempt<'_>) -> Result<()> {
    let attempt = Attempt {
        agent: ended.agent.to_owned(),
        task: ended.task,
        number: ended.number,
        started_at: ended.started_at,
        ended_at: ended.ended_at,
        end: ended.end,
        estimate: ended.estimate,
        actual: ended.actual,
        skills: if ended.has_skills {
            task_skills(tx, ended.task)?
        } else {
            Vec::new()
        },
    };
    add(tx, &attempt, &Summary::of(&attempt))
}

/// The rows `attempt` counts in: every span's bucket of its end, for the agent and for each
/// skill of its task.
fn keys(attempt: &Attempt) -> impl Iterator<Item = Key> + '_ {
    let at = millis(attempt.ended_at);
    SPANS.into_iter().flat_map(move |span| {
        std::iter::once("")
            .chain(attempt.skills.iter().map(String::as_str))
            .map(move |skill| {
                (
                    span,
                    bucket(at, span),
                    attempt.agent.clone(),
                    skill.to_owned(),
                )
            })
    })
}

/// Adds `change` to the summaries `attempt` counts in.
pub(crate) fn add(tx: &Tx<'_>, attempt: &Attempt, change: &Summary) -> Result<()> {
    for key in keys(attempt) {
        if let Some(pending) = tx.pending() {
            let kept = &mut pending.borrow_mut().summaries.0;
            let slot = kept.entry(key.clone()).or_default();
            slot.add(change, 1);
            if slot.is_zero() {
                kept.remove(&key);
            }
            continue;
        }
        write(tx, &key, change)?;
    }
    Ok(())
}

/// Writes the changes kept to the end, in key order.
pub(crate) fn write_kept(tx: &Tx<'_>, kept: Kept) -> Result<()> {
    for (key, change) in kept.0 {
        write(tx, &key, &change)?;
    }
    Ok(())
}

/// Adds `change` to the row of `key`: the sums in the statement that locks the row, which
/// returns the sketches as they are, then the sketches merged.
fn write(tx: &Tx<'_>, (span, start, agent, skill): &Key, change: &Summary) -> Result<()> {
    let t = change.tally;
    let key = [
        Value::Integer(*span),
        Value::Integer(*start),
        Value::Text(agent),
        Value::Text(skill),
    ];
    let mut values = key.to_vec();
    values.extend(
        [
            t.attempts,
            t.succeeded,
            t.first_pass,
            t.retries,
            t.expired,
            t.points,
            t.ratios,
            t.log_ratio,
        ]
        .map(Value::Integer),
    );
    values.push(Value::Blob(&[]));
    let mut stored = None;
    tx.rows(UPSERT, &values, &mut |row| {
        stored = Some((sketch(row.get_ref(0)?)?, sketch(row.get_ref(1)?)?));
        Ok(false)
    })?;
    if change.cycle.is_empty() && change.errors.is_empty() {
        return Ok(());
    }
    let (mut cycle, mut errors) = stored.unwrap_or_default();
    cycle.merge(&change.cycle, 1);
    errors.merge(&change.errors, 1);
    let (cycle, errors) = (cycle.encode(), errors.encode());
    let mut values = key.to_vec();
    values.extend([Value::Blob(&cycle), Value::Blob(&errors)]);
    tx.run(
        "UPDATE agent_summaries SET cycle = ?5, errors = ?6 \
         WHERE span = ?1 AND bucket = ?2 AND agent = ?3 AND skill = ?4",
        &values,
    )?;
    Ok(())
}

/// The statement that adds a change's sums to its row, returning the row's sketches.
const UPSERT: &str = "INSERT INTO agent_summaries (span, bucket, agent, skill, attempts, \
    succeeded, first_pass, retries, expired, points, ratios, log_ratio, cycle, errors) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13) \
    ON CONFLICT (span, bucket, agent, skill) DO UPDATE SET \
    attempts = agent_summaries.attempts + excluded.attempts, \
    succeeded = agent_summaries.succeeded + excluded.succeeded, \
    first_pass = agent_summaries.first_pass + excluded.first_pass, \
    retries = agent_summaries.retries + excluded.retries, \
    expired = agent_summaries.expired + excluded.expired, \
    points = agent_summaries.points + excluded.points, \
    ratios = agent_summaries.ratios + excluded.ratios, \
    log_ratio = agent_summaries.log_ratio + excluded.log_ratio \
    RETURNING cycle, errors";

fn sketch(value: Value<'_>) -> Result<Sketch> {
    let bytes = match value {
        Value::Blob(b) => b,
        Value::Null => &[],
        _ => return Err(bad_sketch()),
    };
    Sketch::decode(bytes).ok_or_else(bad_sketch)
}

fn bad_sketch() -> Error {
    Error::Storage(StorageError::conversion(
        "a sketch in agent_summaries that no summary encodes".to_owned(),
    ))
}

/// The summary of every agent's attempts that ended in `(after, to]`: the rows of the whole
/// buckets inside it and the attempts at its edges ([`cover`]).
pub(super) fn window(
    tx: &Tx<'_>,
    after: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<WindowSummary> {
    let mut summary = WindowSummary::default();
    let Cover { buckets, exact } = cover(millis(after), millis(to));
    for (span, first, end) in buckets {
        let params = [span, first, end].map(Value::Integer);
        tx.rows(
            "SELECT agent, skill, attempts, succeeded, first_pass, retries, expired, points, \
             ratios, log_ratio, cycle, errors FROM agent_summaries \
             WHERE span = ?1 AND bucket >= ?2 AND bucket < ?3",
            &params,
            &mut |row| {
                let agent = row.get_ref(0)?.as_str_or_null()?.unwrap_or_default();
                let skill = row.get_ref(1)?.as_str_or_null()?.unwrap_or_default();
                let stored = Summary {
                    tally: Tally {
                        attempts: row.get(2)?,
                        succeeded: row.get(3)?,
                        first_pass: row.get(4)?,
                        retries: row.get(5)?,
                        expired: row.get(6)?,
                        points: row.get(7)?,
                        ratios: row.get(8)?,
                        log_ratio: row.get(9)?,
                    },
                    cycle: sketch(row.get_ref(10)?)?,
                    errors: sketch(row.get_ref(11)?)?,
                };
                summary.add(agent, (!skill.is_empty()).then_some(skill), &stored);
                Ok(true)
            },
        )?;
    }
    for (a, b) in exact {
        for attempt in attempts_in(tx, from_millis(a), from_millis(b))? {
            summary.add_attempt(&attempt);
        }
    }
    Ok(summary)
}

/// Rebuilds every summary from the attempts: how schema 9 fills the table.
pub(super) fn rebuild(tx: &Tx<'_>) -> Result<()> {
    tx.run("DELETE FROM agent_summaries", &[])?;
    let mut all: BTreeMap<Key, Summary> = BTreeMap::new();
    let attempts = attempts_in(tx, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC)?;
    for attempt in &attempts {
        let change = Summary::of(attempt);
        for key in keys(attempt) {
            all.entry(key).or_default().add(&change, 1);
        }
    }
    for (key, summary) in all {
        write(tx, &key, &summary)?;
    }
    Ok(())
}
