//! Agent performance over a window, from the summaries of the attempts agents ended
//! (`store/summaries.rs`), which the transaction that ends each attempt keeps: a window is the
//! rows of its whole days and hours and the attempts of at most an hour at each edge
//! (`store/attempts.rs`), whatever the length of the event log.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};

use crate::agent::summary::performance_of;
use crate::agent::{AgentPerformance, Attempt};
use crate::error::{Error, Result};

use super::Store;
use super::attempts::window;
use super::db::Tx;
#[cfg(test)]
use {
    super::attempts::attempt_end,
    super::event::EventKind,
    super::millis,
    super::sql::{self, query},
    crate::clock::from_millis,
    crate::workflow::TaskState,
};

/// Agent performance over a window named by its length, with the window it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceWindow {
    /// Where the window starts (exclusive).
    pub from: DateTime<Utc>,
    /// Where it ends (inclusive).
    pub to: DateTime<Utc>,
    /// Every agent's performance over it, best first.
    pub agents: Vec<AgentPerformance>,
}

impl Store {
    /// Performance over the `days` days that end at `to`, or now by the store's clock: the
    /// window a caller names by its length. `days` is 1 to
    /// [`MAX_WINDOW_DAYS`](crate::limits::MAX_WINDOW_DAYS).
    pub fn agent_performance_days(
        &self,
        days: u32,
        to: Option<DateTime<Utc>>,
        agent: Option<&str>,
    ) -> Result<PerformanceWindow> {
        if !(1..=crate::limits::MAX_WINDOW_DAYS).contains(&days) {
            return Err(Error::InvalidArgument {
                field: "days".into(),
                reason: format!("{days} is outside 1 to {}", crate::limits::MAX_WINDOW_DAYS),
            });
        }
        let to = to.unwrap_or_else(|| self.clock.now());
        let from = to - chrono::Duration::days(days.into());
        let agents = self.agent_performance(from, to, agent)?;
        Ok(PerformanceWindow { from, to, agents })
    }

    /// The performance of every agent that ended an attempt in `(from, to]`, with the window
    /// of the same length before it as the trend; with `agent`, of that registered agent only
    /// (ranked among all).
    pub fn agent_performance(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        agent: Option<&str>,
    ) -> Result<Vec<AgentPerformance>> {
        if to <= from {
            return Err(Error::InvalidArgument {
                field: "window".into(),
                reason: format!(
                    "it ends ({}) before it starts ({})",
                    crate::text::rfc3339(to),
                    crate::text::rfc3339(from)
                ),
            });
        }
        let previous_from = from - (to - from);
        self.read(|tx, _| {
            if let Some(agent) = agent {
                super::agent::registered(tx, agent)?;
            }
            let current = super::summaries::window(tx, from, to)?;
            let previous = super::summaries::window(tx, previous_from, from)?;
            let mut all = performance_of(&current, &previous, from, to);
            if let Some(agent) = agent {
                all.retain(|p| p.agent == agent);
            }
            Ok(all)
        })
    }
}

/// The attempts that ended in `(after, to]`, with the skills of their tasks: one range of the
/// attempts' index, and a look-up of skills for each task that has some.
pub(super) fn attempts_in(
    tx: &Tx<'_>,
    after: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Attempt>> {
    let mut skills: HashMap<i64, Vec<String>> = HashMap::new();
    let mut stmt = tx.prepare_cached("SELECT skill FROM task_skills WHERE task = ?1")?;
    let mut attempts = Vec::new();
    for stored in window(tx, after, to)? {
        let task_skills = if stored.has_skills {
            match skills.entry(stored.task) {
                Entry::Occupied(known) => known.get().clone(),
                Entry::Vacant(slot) => slot
                    .insert(
                        stmt.query_map([stored.task], |r| r.get(0))?
                            .collect::<Result<Vec<String>>>()?,
                    )
                    .clone(),
            }
        } else {
            Vec::new()
        };
        attempts.push(stored.with_skills(task_skills));
    }
    Ok(attempts)
}

/// The attempts that ended in `[after, to]` as the event log tells them: how performance was
/// read before the attempts had a table of their own, kept so tests can hold the two to the
/// same answer.
#[cfg(test)]
pub(super) fn attempts_from_log(
    tx: &Tx<'_>,
    after: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Attempt>> {
    // Task ids are dense row ids, so per-task facts live in vectors indexed by id.
    let mut estimates: Vec<f64> = Vec::new();
    {
        let mut stmt = tx.prepare_cached("SELECT id, estimate FROM tasks")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id = row.get::<_, i64>(0)?.max(0) as usize;
            if estimates.len() <= id {
                estimates.resize(id + 1, 0.0);
            }
            estimates[id] = row.get(1)?;
        }
    }
    let mut skills: HashMap<i64, Vec<String>> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT task, skill FROM task_skills")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            skills.entry(row.get(0)?).or_default().push(row.get(1)?);
        }
    }
    // The start of each task's latest attempt: (attempt number, time).
    let mut starts: Vec<Option<(u32, i64)>> = vec![None; estimates.len()];
    let mut attempts = Vec::new();
    let mut stmt = tx.prepare_cached(query!(
        "SELECT at, agent, task, from_state, to_state, detail, attempt, value \
             FROM events WHERE kind = {} AND agent IS NOT NULL AND at <= ?1 \
             AND (to_state = {running} OR from_state = {running}) ORDER BY seq",
        sql::lit(EventKind::TaskState.as_str()),
        running = sql::state(TaskState::Running)
    ))?;
    let mut rows = stmt.query([millis(to)])?;
    while let Some(row) = rows.next()? {
        let at_millis: i64 = row.get(0)?;
        let at = from_millis(at_millis);
        let task: i64 = row.get(2)?;
        let slot = usize::try_from(task).unwrap_or(usize::MAX);
        let number: u32 = row.get::<_, Option<u32>>(6)?.unwrap_or(0);
        let from_state = row.get_ref(3)?.as_str().unwrap_or_default();
        let to_state = row.get_ref(4)?.as_str().unwrap_or_default();
        if to_state == "running" {
            if let Some(start) = starts.get_mut(slot) {
                *start = Some((number, at_millis));
            }
            continue;
        }
        if at < after || from_state != "running" {
            continue;
        }
        let detail = row.get_ref(5)?.as_str_or_null().ok().flatten();
        let Some(end) = attempt_end(to_state, detail) else {
            continue;
        };
        let started_at = starts
            .get(slot)
            .copied()
            .flatten()
            .filter(|(n, _)| *n == number)
            .map(|(_, at)| from_millis(at));
        attempts.push(Attempt {
            agent: row.get(1)?,
            task,
            number,
            started_at,
            ended_at: at,
            end,
            estimate: estimates.get(slot).copied().unwrap_or_default(),
            actual: row.get(7)?,
            skills: skills.get(&task).cloned().unwrap_or_default(),
        });
    }
    Ok(attempts)
}
