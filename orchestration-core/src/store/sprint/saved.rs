//! Saving and reading back sprints: the planned row, members and chosen tasks, the
//! commitment frozen at the start, and the history of closed sprints.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::planning::learning_history;
use super::{
    SPRINT_COLUMNS, SprintPlan, SprintRow, SprintSpec, current_sprint_of, join, load_members,
    summary,
};
use crate::error::Result;
use crate::sprint::{
    FocusSource, Member, Plan, SprintStatus, Window, capacity, focus_for, plan_warnings, velocity,
};
use crate::store::db::{Tx, params};
use crate::store::event::{EventKind, NewEvent, append};
use crate::store::millis;
use crate::store::refs::TaskRow;
use crate::store::sql::{self, query};

/// Saves a planned sprint: the row with the capacity and focus factor planning computed (a
/// start keeps them), its members and the chosen tasks. Returns its id.
pub(super) fn save(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    spec: &SprintSpec,
    planned: &SprintPlan,
) -> Result<i64> {
    let s = &planned.sprint;
    let id = match SprintRow::find(tx, &spec.name)? {
        Some(row) => {
            tx.prepare_cached(
                "UPDATE sprints SET goal = ?2, start_date = ?3, end_date = ?4, work_week = ?5, \
                 workflows = ?6, focus_factor = ?7, raw_capacity = ?8, capacity = ?9 \
                 WHERE id = ?1",
            )?
            .execute(params![
                row.id,
                s.goal,
                s.start.to_string(),
                s.end.to_string(),
                s.week.bits(),
                s.workflows.join(","),
                planned.capacity.focus_factor,
                planned.raw_capacity,
                planned.capacity.points,
                SprintStatus::Planned.as_str()
            ])?;
            row.id
        }
        None => {
            let id = tx
                .prepare_cached(
                    "INSERT INTO sprints (name, goal, start_date, end_date, work_week, status, \
                 created_at, workflows, focus_factor, raw_capacity, capacity) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?11, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                )?
                .insert(params![
                    s.name,
                    s.goal,
                    s.start.to_string(),
                    s.end.to_string(),
                    s.week.bits(),
                    millis(now),
                    s.workflows.join(","),
                    planned.capacity.focus_factor,
                    planned.raw_capacity,
                    planned.capacity.points,
                    SprintStatus::Planned.as_str()
                ])?;
            append(
                tx,
                now,
                EventKind::SprintStatus,
                NewEvent {
                    sprint: Some(id),
                    detail: Some(SprintStatus::Planned.as_str()),
                    ..NewEvent::default()
                },
            )?;
            id
        }
    };
    tx.prepare_cached("DELETE FROM sprint_members WHERE sprint = ?1")?
        .execute([id])?;
    for member in &s.members {
        let days: Vec<String> = member.days_off.iter().map(|d| d.to_string()).collect();
        tx.prepare_cached(
            "INSERT INTO sprint_members (sprint, agent, availability, days_off) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            id,
            member.agent,
            member.availability,
            days.join(",")
        ])?;
    }
    let allocated: HashMap<&str, &str> = planned
        .plan
        .allocation
        .iter()
        .flat_map(|(agent, (tasks, _))| tasks.iter().map(move |t| (t.as_str(), agent.as_str())))
        .collect();
    for name in &planned.plan.selected {
        let task = TaskRow::resolve(tx, &name.parse()?)?;
        let member = allocated.get(name.as_str()).copied();
        if current_sprint_of(tx, task.id)?.is_none() {
            join(tx, now, id, &task, "added", member)?;
        } else {
            // Already in this sprint (carried over, or chosen earlier): planning may have
            // allocated it afresh.
            tx.prepare_cached(
                "UPDATE sprint_tasks SET planned_for = ?2 WHERE task = ?1 AND current = 1",
            )?
            .execute(params![task.id, member])?;
        }
    }
    Ok(id)
}

/// Takes the commitment snapshot: every task in the sprint now is committed at its estimate
/// now.
pub(super) fn freeze(tx: &Tx<'_>, now: DateTime<Utc>, sprint: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE sprint_tasks SET in_commitment = 1, added_at = ?2, \
         estimate = (SELECT estimate FROM tasks WHERE id = sprint_tasks.task) \
         WHERE sprint = ?1 AND current = 1",
    )?
    .execute(params![sprint, millis(now)])?;
    Ok(())
}

/// The tasks in the sprint now, in the order they joined, with their points and the members
/// planning allocated them to.
pub(super) fn committed_plan(conn: &Tx<'_>, sprint: i64) -> Result<Plan> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.name || '/' || t.key, st.estimate, st.planned_for FROM sprint_tasks st \
         JOIN tasks t ON t.id = st.task JOIN workflows w ON w.id = t.workflow \
         WHERE st.sprint = ?1 AND st.current = 1 ORDER BY st.id",
    )?;
    let mut plan = Plan::default();
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        let task: String = row.get(0)?;
        let estimate: f64 = row.get(1)?;
        if let Some(member) = row.get::<_, Option<String>>(2)? {
            let entry = plan.allocation.entry(member).or_default();
            entry.0.push(task.clone());
            entry.1 += estimate;
        }
        plan.points += estimate;
        plan.selected.push(task);
    }
    Ok(plan)
}

/// A planned sprint as it was saved, for its start: the tasks in it now (committed by
/// [`freeze`] before this is called), and the capacity and focus factor computed when it was
/// saved.
pub(super) fn saved_plan(conn: &Tx<'_>, row: &SprintRow) -> Result<SprintPlan> {
    let mut members = Vec::new();
    for spec in load_members(conn, row.id)? {
        let profile = crate::store::agent::load_profile(conn, &spec.agent)?;
        members.push(Member {
            points_per_day: profile.as_ref().map_or(0.0, |p| p.points_per_day),
            skills: profile.map(|p| p.capabilities).unwrap_or_default(),
            agent: spec.agent,
            availability: spec.availability,
            days_off: spec.days_off,
        });
    }
    let history = closed_sprints(conn)?;
    let mut warnings = Vec::new();
    let (focus_factor, focus) = match row.focus_factor {
        Some(f) => (f, FocusSource::Saved),
        // A sprint saved before plans kept their focus factor learns it now, as planning would.
        None => focus_for(None, &learning_history(&history), &mut warnings)?,
    };
    let mut capacity = capacity(row.start, row.end, &row.week, &members, focus_factor);
    let mut raw_capacity =
        crate::sprint::capacity(row.start, row.end, &row.week, &members, 1.0).points;
    if let (Some(saved), Some(saved_raw)) = (row.capacity, row.raw_capacity) {
        // Members' points per day may have changed since; the sprint keeps the capacity it
        // was planned against, and says so.
        if (saved - capacity.points).abs() > 1e-9 {
            warnings.push(format!(
                "members' points per day changed since the sprint was saved: it keeps the \
                 capacity of {saved:.1} points planned then (their profiles now give {:.1}); \
                 re-plan it with action=create to use them",
                capacity.points
            ));
        }
        capacity.points = saved;
        raw_capacity = saved_raw;
    }
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();
    let velocity = velocity(&completed);
    let plan = committed_plan(conn, row.id)?;
    warnings.extend(plan_warnings(plan.points, plan.points, &capacity, velocity));
    Ok(SprintPlan {
        sprint: summary(conn, row, row.id)?,
        recommended: velocity.map_or(capacity.points, |v| v.mean),
        target: plan.points,
        capacity,
        raw_capacity,
        focus,
        velocity,
        plan,
        warnings,
        saved: false,
    })
}

/// The closed sprints, oldest first.
pub(super) fn closed_sprints(conn: &Tx<'_>) -> Result<Vec<SprintRow>> {
    let sql = query!(
        "SELECT {SPRINT_COLUMNS} FROM sprints WHERE status = {} ORDER BY end_date, closed_at",
        sql::lit(SprintStatus::Closed.as_str())
    );
    conn.prepare_cached(sql)?
        .query_map([], SprintRow::from_row)?
        .collect::<Result<Vec<_>>>()
}

/// The closed sprints that ended before `row` ended, other than it, oldest first.
pub(super) fn closed_before(conn: &Tx<'_>, row: &SprintRow) -> Result<Vec<SprintRow>> {
    Ok(closed_sprints(conn)?
        .into_iter()
        .filter(|s| s.id != row.id && s.end <= row.end)
        .collect())
}

pub(super) fn window(row: &SprintRow, as_of: DateTime<Utc>) -> Window {
    Window {
        start: row.start,
        end: row.end,
        week: row.week,
        started_at: row.started_at,
        as_of,
    }
}
