//! Agent profiles: what each agent can do and how much it may hold at once. A claim checks the
//! profile when the agent has one.

use std::collections::{BTreeMap, HashMap};

use super::db::{OptionalExtension, Tx, params};
use chrono::{DateTime, Utc};

use crate::agent::{AgentProfile, AgentStatus, Candidate, Record};
use crate::clock::from_millis;
use crate::error::{Error, Result};
use crate::limits;
use crate::text::closest;
use crate::workflow::{TaskState, check_argument_name};

use super::event::{EventKind, NewEvent, append};
use super::refs::parse_column;
use super::sql::{self, LEASED, query};
use super::{Store, millis};

/// A change to a profile; `None` keeps the current value (or the default for a new agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentUpdate {
    /// Skills with levels from 1 to 5; replaces the whole set.
    pub capabilities: Option<BTreeMap<String, u8>>,
    /// WIP limit, 1 to 1,000 (default 3).
    pub max_concurrent: Option<u32>,
    /// Points per working day, 0 to 1,000 (default 5).
    pub points_per_day: Option<f64>,
    /// Status (default active).
    pub status: Option<AgentStatus>,
}

const DEFAULT_MAX_CONCURRENT: u32 = 3;
const DEFAULT_POINTS_PER_DAY: f64 = 5.0;

impl Store {
    /// Creates or updates the profile of `name` and records the change in the event log.
    pub fn upsert_agent(&self, name: &str, update: &AgentUpdate) -> Result<AgentProfile> {
        check_argument_name("name", "agent name", name)?;
        check_update(update)?;
        self.write(|tx, now| {
            let existing = load_profile(tx, name)?;
            let profile = merge(name, existing.as_ref(), update, now);
            save_profile(tx, &profile)?;
            let detail = if existing.is_some() {
                "updated"
            } else {
                "created"
            };
            append(
                tx,
                now,
                EventKind::AgentProfile,
                NewEvent {
                    agent: Some(name),
                    detail: Some(detail),
                    ..NewEvent::default()
                },
            )?;
            Ok(profile)
        })
    }

    /// Sets the status of an existing agent.
    pub fn set_agent_status(&self, name: &str, status: AgentStatus) -> Result<AgentProfile> {
        self.write(|tx, now| {
            let mut profile = registered(tx, name)?;
            profile.status = status;
            profile.updated_at = now;
            save_profile(tx, &profile)?;
            append(
                tx,
                now,
                EventKind::AgentProfile,
                NewEvent {
                    agent: Some(name),
                    detail: Some(status.as_str()),
                    ..NewEvent::default()
                },
            )?;
            Ok(profile)
        })
    }

    /// The profile of `name`.
    pub fn agent(&self, name: &str) -> Result<AgentProfile> {
        self.read(|tx, _| registered(tx, name))
    }

    /// Every profile, by name.
    pub fn agents(&self) -> Result<Vec<AgentProfile>> {
        self.read(|tx, _| {
            let names: Vec<String> = tx
                .prepare_cached("SELECT name FROM agents ORDER BY name")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_>>()?;
            let mut profiles = Vec::with_capacity(names.len());
            for name in &names {
                profiles.extend(load_profile(tx, name)?);
            }
            Ok(profiles)
        })
    }
}

fn check_update(update: &AgentUpdate) -> Result<()> {
    let invalid = |field: &str, reason: String| {
        Err(Error::InvalidArgument {
            field: field.into(),
            reason,
        })
    };
    if let Some(capabilities) = &update.capabilities {
        if capabilities.len() > limits::MAX_CAPABILITIES {
            return invalid(
                "capabilities",
                format!(
                    "at most {} skills, got {}",
                    limits::MAX_CAPABILITIES,
                    capabilities.len()
                ),
            );
        }
        for (skill, &level) in capabilities {
            check_argument_name("capabilities", "skill name", skill)?;
            if !(1..=5).contains(&level) {
                return invalid(
                    "capabilities",
                    format!("skill `{skill}` has level {level}; levels go from 1 to 5"),
                );
            }
        }
    }
    if let Some(max) = update.max_concurrent
        && !(1..=1_000).contains(&max)
    {
        return invalid("max_concurrent", format!("{max} is outside 1 to 1000"));
    }
    if let Some(points) = update.points_per_day
        && !(points.is_finite() && (0.0..=1_000.0).contains(&points))
    {
        return invalid("points_per_day", format!("{points} is outside 0 to 1000"));
    }
    Ok(())
}

fn merge(
    name: &str,
    existing: Option<&AgentProfile>,
    update: &AgentUpdate,
    now: DateTime<Utc>,
) -> AgentProfile {
    AgentProfile {
        name: name.to_owned(),
        capabilities: update
            .capabilities
            .clone()
            .or_else(|| existing.map(|p| p.capabilities.clone()))
            .unwrap_or_default(),
        max_concurrent: update
            .max_concurrent
            .or(existing.map(|p| p.max_concurrent))
            .unwrap_or(DEFAULT_MAX_CONCURRENT),
        points_per_day: update
            .points_per_day
            .or(existing.map(|p| p.points_per_day))
            .unwrap_or(DEFAULT_POINTS_PER_DAY),
        status: update
            .status
            .or(existing.map(|p| p.status))
            .unwrap_or_default(),
        created_at: existing.map_or(now, |p| p.created_at),
        updated_at: now,
        last_active_at: existing.and_then(|p| p.last_active_at),
    }
}

fn save_profile(tx: &Tx<'_>, profile: &AgentProfile) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO agents (name, status, max_concurrent, points_per_day, created_at, updated_at, \
         last_active_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET \
         status = excluded.status, max_concurrent = excluded.max_concurrent, \
         points_per_day = excluded.points_per_day, updated_at = excluded.updated_at",
    )?
    .execute(params![
        profile.name,
        profile.status.as_str(),
        profile.max_concurrent,
        profile.points_per_day,
        millis(profile.created_at),
        millis(profile.updated_at),
        profile.last_active_at.map(millis),
    ])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM agents WHERE name = ?1")?
        .query_row([&profile.name], |r| r.get(0))?;
    tx.prepare_cached("DELETE FROM agent_skills WHERE agent = ?1")?
        .execute([id])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO agent_skills (agent, skill, level) VALUES (?1, ?2, ?3)")?;
    for (skill, level) in &profile.capabilities {
        insert.execute(params![id, skill, level])?;
    }
    Ok(())
}

/// The profile of `name`, if it has one.
pub(crate) fn load_profile(conn: &Tx<'_>, name: &str) -> Result<Option<AgentProfile>> {
    let row = conn
        .prepare_cached(
            "SELECT id, status, max_concurrent, points_per_day, created_at, updated_at, \
             last_active_at FROM agents WHERE name = ?1",
        )?
        .query_row([name], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                parse_column(row, 1, AgentStatus::parse)?,
                row.get::<_, u32>(2)?,
                row.get::<_, f64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, Option<i64>>(6)?,
            ))
        })
        .optional()?;
    let Some((id, status, max_concurrent, points_per_day, created, updated, active)) = row else {
        return Ok(None);
    };
    let capabilities = conn
        .prepare_cached("SELECT skill, level FROM agent_skills WHERE agent = ?1")?
        .query_map([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u8>(1)?))
        })?
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(Some(AgentProfile {
        name: name.to_owned(),
        capabilities,
        max_concurrent,
        points_per_day,
        status,
        created_at: from_millis(created),
        updated_at: from_millis(updated),
        last_active_at: active.map(from_millis),
    }))
}

/// The profile of `name`, which must be registered: acting for an agent nobody registered is
/// refused, with the registered names closest to it, so that a typo never acts as a new agent.
pub(crate) fn registered(conn: &Tx<'_>, name: &str) -> Result<AgentProfile> {
    match load_profile(conn, name)? {
        Some(profile) => Ok(profile),
        None => Err(unknown_agent(conn, name)?),
    }
}

/// The error for an agent nobody registered, with the registered names closest to it.
pub(crate) fn unknown_agent(conn: &Tx<'_>, name: &str) -> Result<Error> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM agents")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_>>()?;
    Ok(Error::UnknownAgent {
        name: name.to_owned(),
        closest: closest(name, names.iter().map(String::as_str)),
    })
}

/// Records that `name` was active at `now`, when it has a profile.
pub(crate) fn touch(tx: &Tx<'_>, name: &str, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached("UPDATE agents SET last_active_at = ?2 WHERE name = ?1")?
        .execute(params![name, millis(now)])?;
    Ok(())
}

/// Adds one finished attempt to `agent`'s aggregates: a success or not, and for a success with
/// reported effort, the log ratio of actual to estimated effort.
pub(crate) fn record_attempt(
    tx: &Tx<'_>,
    agent: &str,
    succeeded: bool,
    log_ratio: Option<f64>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO agent_stats (agent, succeeded, attempts, log_ratio_sum, log_ratio_count) \
         VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (agent) DO UPDATE SET \
         succeeded = agent_stats.succeeded + excluded.succeeded, \
         attempts = agent_stats.attempts + 1, \
         log_ratio_sum = agent_stats.log_ratio_sum + excluded.log_ratio_sum, \
         log_ratio_count = agent_stats.log_ratio_count + excluded.log_ratio_count",
    )?
    .execute(params![
        agent,
        succeeded,
        log_ratio.unwrap_or(0.0),
        log_ratio.is_some()
    ])?;
    Ok(())
}

/// Migration step: the log ratios of completions already in the event log.
pub(crate) fn backfill_log_ratios(tx: &Tx<'_>) -> Result<()> {
    let rows: Vec<(String, f64)> = tx
        .prepare(query!(
            "SELECT e.agent, e.value / t.estimate FROM events e JOIN tasks t ON t.id = e.task \
                 WHERE e.kind = {} AND e.from_state = {} AND e.to_state = {} \
                 AND e.agent IS NOT NULL AND e.value > 0 AND t.estimate > 0",
            sql::lit(EventKind::TaskState.as_str()),
            sql::state(TaskState::Running),
            sql::state(TaskState::Succeeded)
        ))?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_>>()?;
    let mut update = tx.prepare(
        "UPDATE agent_stats SET log_ratio_sum = log_ratio_sum + ?2, \
         log_ratio_count = log_ratio_count + 1 WHERE agent = ?1",
    )?;
    for (agent, ratio) in rows {
        update.execute(params![agent, ratio.ln()])?;
    }
    Ok(())
}

/// Every profiled agent as the scorer sees it: profile, tasks held, record.
pub(crate) fn candidates(conn: &Tx<'_>) -> Result<Vec<Candidate>> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM agents ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_>>()?;
    let mut active: HashMap<String, u32> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(query!(
            "SELECT agent, count(*) FROM tasks WHERE state IN {} \
                 AND agent IS NOT NULL GROUP BY agent",
            sql::states(&LEASED)
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            active.insert(row.get(0)?, row.get(1)?);
        }
    }
    let mut records: HashMap<String, Record> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT agent, succeeded, attempts, log_ratio_sum, log_ratio_count FROM agent_stats",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            records.insert(
                row.get(0)?,
                Record {
                    succeeded: row.get(1)?,
                    attempts: row.get(2)?,
                    log_ratio_sum: row.get(3)?,
                    log_ratio_count: row.get(4)?,
                },
            );
        }
    }
    let mut candidates = Vec::with_capacity(names.len());
    for name in names {
        if let Some(profile) = load_profile(conn, &name)? {
            candidates.push(Candidate {
                active: active.get(&name).copied().unwrap_or(0),
                record: records.get(&name).copied().unwrap_or_default(),
                profile,
            });
        }
    }
    Ok(candidates)
}
