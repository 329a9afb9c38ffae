//! Planning a sprint inside its transaction: the checks against what is stored, the backlog
//! of the sprint's workflows, and the learnt focus factor, handed to the pure planner.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::saved::closed_sprints;
use super::{MemberSpec, SprintPlan, SprintRow, SprintSpec, SprintSummary, load_members};
use crate::error::{Error, Result};
use crate::limits::{self, MAX_SPRINT_DAYS};
use crate::sprint::{
    ClosedSprint, DraftInput, Member, SprintStatus, check_window, draft, working_days,
};
use crate::store::db::{OptionalExtension, Tx, params};
use crate::store::refs::{WorkflowRef, WorkflowRow};
use crate::store::sql::{self, UNFINISHED, query};
use crate::store::task::check_length;
use crate::workflow::check_argument_name;

/// Validates `spec` against what is stored and plans it: the dry run that `create` and `start`
/// then save.
pub(super) fn prepare(
    conn: &Tx<'_>,
    spec: &SprintSpec,
    now: DateTime<Utc>,
    action: &'static str,
) -> Result<SprintPlan> {
    check_argument_name("name", "sprint name", &spec.name)?;
    if let Some(goal) = &spec.goal {
        check_length("goal", goal, limits::MAX_TITLE_LEN * 5)?;
    }
    let existing = SprintRow::find(conn, &spec.name)?;
    if let Some(row) = &existing
        && row.status != SprintStatus::Planned
    {
        return Err(Error::IllegalSprintAction {
            sprint: row.name.clone(),
            status: row.status,
            action,
        });
    }
    let required = |field: &str| Error::InvalidArgument {
        field: field.into(),
        reason: "is required for a new sprint".into(),
    };
    let start = spec
        .start
        .or(existing.as_ref().map(|r| r.start))
        .ok_or_else(|| required("start"))?;
    let end = spec
        .end
        .or(existing.as_ref().map(|r| r.end))
        .ok_or_else(|| required("end"))?;
    let week = spec
        .week
        .or(existing.as_ref().map(|r| r.week))
        .unwrap_or_default();
    check_window(start, end, &week)?;
    let member_specs = if spec.members.is_empty() {
        match &existing {
            Some(row) => load_members(conn, row.id)?,
            None => Vec::new(),
        }
    } else {
        spec.members.clone()
    };
    if member_specs.is_empty() {
        return Err(Error::InvalidArgument {
            field: "members".into(),
            reason: "a sprint needs at least one member".into(),
        });
    }
    let members = check_members(
        conn,
        &member_specs,
        existing.as_ref().map(|r| r.id),
        start,
        end,
    )?;

    let history = closed_sprints(conn)?;
    let closed = learning_history(&history);
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();

    // The backlog's workflows: those given, or those a planned sprint was saved with.
    let chosen: Vec<WorkflowRow> = if spec.workflows.is_empty() {
        existing
            .iter()
            .flat_map(|r| r.workflows.iter())
            .map(|name| WorkflowRow::resolve(conn, &WorkflowRef::Name(name.clone())))
            .collect::<Result<_>>()?
    } else {
        spec.workflows
            .iter()
            .map(|w| WorkflowRow::resolve(conn, w))
            .collect::<Result<_>>()?
    };
    let workflows: Vec<i64> = chosen.iter().map(|w| w.id).collect();
    let backlog = backlog(conn, existing.as_ref().map(|r| r.id), &workflows)?;
    let input = DraftInput {
        start,
        end,
        week,
        members: &members,
        focus_factor: spec.focus_factor,
        commit: spec.commit,
        closed: &closed,
        completed: &completed,
    };
    let draft = draft(&input, &backlog.candidates, &backlog.pinned)?;
    let sprint = SprintSummary {
        name: spec.name.clone(),
        goal: spec
            .goal
            .clone()
            .or_else(|| existing.as_ref().and_then(|r| r.goal.clone())),
        status: SprintStatus::Planned,
        start,
        end,
        week,
        working_days: working_days(start, end, &week, &BTreeSet::new()).len(),
        members: member_specs,
        workflows: chosen.into_iter().map(|w| w.name).collect(),
        focus_factor: None,
        capacity: None,
        committed: None,
        completed: None,
        tasks: draft.plan.selected.len(),
        created_at: existing.as_ref().map_or(now, |r| r.created_at),
        started_at: None,
        closed_at: None,
    };
    Ok(SprintPlan {
        sprint,
        capacity: draft.capacity,
        raw_capacity: draft.raw_capacity,
        focus: draft.focus,
        velocity: draft.velocity,
        recommended: draft.recommended,
        target: draft.target,
        plan: draft.plan,
        warnings: draft.warnings,
        saved: false,
    })
}

/// The closed sprints a focus factor can be learnt from: those that kept both their
/// completed points and their raw capacity.
pub(super) fn learning_history(history: &[SprintRow]) -> Vec<ClosedSprint> {
    history
        .iter()
        .filter_map(|s| {
            Some(ClosedSprint {
                completed: s.completed?,
                raw_capacity: s.raw_capacity?,
            })
        })
        .collect()
}

pub(super) fn check_members(
    conn: &Tx<'_>,
    specs: &[MemberSpec],
    sprint: Option<i64>,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<Member>> {
    let mut seen = BTreeSet::new();
    let mut members = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if !seen.insert(spec.agent.as_str()) {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].agent"),
                reason: format!("`{}` is listed twice", spec.agent),
            });
        }
        if !(spec.availability.is_finite() && (0.0..=1.0).contains(&spec.availability)) {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].availability"),
                reason: format!(
                    "{} is not from 0 to 1 (the share of `{}`'s time on the sprint)",
                    spec.availability, spec.agent
                ),
            });
        }
        if spec.days_off.len() > MAX_SPRINT_DAYS as usize {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].days_off"),
                reason: format!("at most {MAX_SPRINT_DAYS} days"),
            });
        }
        let profile = crate::store::agent::registered(conn, &spec.agent)?;
        if profile.status == crate::agent::AgentStatus::Retired {
            return Err(Error::InvalidArgument {
                field: format!("members[{i}].agent"),
                reason: format!("`{}` is retired", spec.agent),
            });
        }
        let overlap = conn
            .prepare_cached(
                "SELECT s.name, s.start_date, s.end_date FROM sprint_members m \
                 JOIN sprints s ON s.id = m.sprint \
                 WHERE m.agent = ?1 AND s.status != ?5 AND s.id != ?2 \
                 AND s.start_date <= ?4 AND s.end_date >= ?3 LIMIT 1",
            )?
            .query_row(
                params![
                    spec.agent,
                    sprint.unwrap_or(-1),
                    start.to_string(),
                    end.to_string(),
                    SprintStatus::Closed.as_str()
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        if let Some((other, from, to)) = overlap {
            return Err(Error::SprintOverlap {
                agent: spec.agent.clone(),
                sprint: other,
                start: from.parse().unwrap_or(start),
                end: to.parse().unwrap_or(end),
            });
        }
        members.push(Member {
            agent: spec.agent.clone(),
            availability: spec.availability,
            days_off: spec.days_off.clone(),
            points_per_day: profile.points_per_day,
            skills: profile.capabilities,
        });
    }
    Ok(members)
}

/// What planning may choose from.
pub(super) struct Backlog {
    candidates: Vec<crate::sprint::BacklogItem>,
    /// Tasks already in the sprint being planned.
    pinned: Vec<String>,
}

/// Unfinished tasks not in another open sprint, of `workflows` (all when empty), with their
/// unfinished dependencies; tasks already in `sprint` are pinned.
pub(super) fn backlog(conn: &Tx<'_>, sprint: Option<i64>, workflows: &[i64]) -> Result<Backlog> {
    let sql = query!(
        "SELECT t.id, w.name || '/' || t.key, t.estimate, t.priority, t.b_level, t.workflow, \
         (SELECT st.sprint FROM sprint_tasks st WHERE st.task = t.id AND st.current = 1) \
         FROM tasks t JOIN workflows w ON w.id = t.workflow WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    );
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut elsewhere: BTreeSet<i64> = BTreeSet::new();
    let mut candidates = Vec::new();
    let mut pinned = Vec::new();
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let in_sprint: Option<i64> = row.get(6)?;
        let workflow: i64 = row.get(5)?;
        let task: String = row.get(1)?;
        match in_sprint {
            Some(s) if Some(s) == sprint => pinned.push(task.clone()),
            Some(_) => {
                elsewhere.insert(id);
                continue;
            }
            None if !workflows.is_empty() && !workflows.contains(&workflow) => continue,
            None => {}
        }
        index.insert(id, candidates.len());
        candidates.push(crate::sprint::BacklogItem {
            task,
            estimate: row.get(2)?,
            priority: row.get(3)?,
            b_level: row.get(4)?,
            skills: Default::default(),
            depends_on: Vec::new(),
        });
    }
    let mut stmt = conn.prepare_cached(query!(
        "SELECT ts.task, ts.skill, ts.level FROM task_skills ts JOIN tasks t ON t.id = ts.task \
         WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(&i) = index.get(&row.get::<_, i64>(0)?) {
            candidates[i].skills.insert(row.get(1)?, row.get(2)?);
        }
    }
    // Only unfinished dependencies matter; one planned in another open sprint is taken as
    // scheduled, and one outside the chosen workflows cannot be (dependencies stay within a
    // workflow).
    let mut stmt = conn.prepare_cached(query!(
        "SELECT d.task, d.dep FROM deps d JOIN tasks t ON t.id = d.dep WHERE t.state IN {}",
        sql::states(&UNFINISHED)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (task, dep): (i64, i64) = (row.get(0)?, row.get(1)?);
        if let (Some(&i), Some(&d)) = (index.get(&task), index.get(&dep)) {
            let name = candidates[d].task.clone();
            candidates[i].depends_on.push(name);
        }
    }
    Ok(Backlog { candidates, pinned })
}
