//! Agent profiles: what each agent can do and how much it may hold at once. A claim checks the
//! profile when the agent has one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::agent::{AgentProfile, AgentStatus};
use crate::clock::from_millis;
use crate::error::{Error, Result};
use crate::workflow::check_name;

use super::event::{EventKind, NewEvent, append};
use super::refs::parse_column;
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
        check_name("agent name", name)?;
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
            let mut profile =
                load_profile(tx, name)?.ok_or_else(|| Error::UnknownAgent(name.into()))?;
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
        self.read(|tx, _| load_profile(tx, name)?.ok_or_else(|| Error::UnknownAgent(name.into())))
    }

    /// Every profile, by name.
    pub fn agents(&self) -> Result<Vec<AgentProfile>> {
        self.read(|tx, _| {
            let names: Vec<String> = tx
                .prepare_cached("SELECT name FROM agents ORDER BY name")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
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
        for (skill, &level) in capabilities {
            check_name("skill name", skill)?;
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

fn save_profile(tx: &Transaction<'_>, profile: &AgentProfile) -> Result<()> {
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
pub(crate) fn load_profile(conn: &Connection, name: &str) -> Result<Option<AgentProfile>> {
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
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
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

/// Records that `name` was active at `now`, when it has a profile.
pub(crate) fn touch(tx: &Transaction<'_>, name: &str, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached("UPDATE agents SET last_active_at = ?2 WHERE name = ?1")?
        .execute(params![name, millis(now)])?;
    Ok(())
}
