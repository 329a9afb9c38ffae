//! Tracking a sprint from its rows and the event log: every stay of a task, the attempts,
//! the forecast, the retrospective that closes it and carries work over, and each member's
//! load for delegation.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::saved::{closed_before, window};
use super::{
    AnalyticsOptions, CarryOver, FORECAST_HISTORY_SPRINTS, Problem, Retrospective,
    RetrospectiveOptions, SPRINT_COLUMNS, SprintForecast, SprintRow, join, load_members,
    open_sprint, summary,
};
use crate::clock::from_millis;
use crate::error::{Error, Result};
use crate::sprint::{
    DEFAULT_FOCUS_FACTOR, FindingsInput, Member, ScopeItem, SprintAttempt, SprintReport,
    SprintStatus, accuracy, capacity, contributions, findings, forecast, sprint_report, velocity,
    working_days,
};
use crate::store::attempts::attempt_end;
use crate::store::db::{Tx, params};
use crate::store::event::{EventKind, NewEvent, append};
use crate::store::millis;
use crate::store::refs::TaskRow;
use crate::store::sql::{self, UNFINISHED, query};
use crate::workflow::TaskState;

/// Every stay of a task in the sprint, with its estimates over time from the event log: the
/// task ids and the items, in the same order.
pub(super) fn stays(conn: &Tx<'_>, sprint: i64) -> Result<(Vec<i64>, Vec<ScopeItem>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT st.task, w.name || '/' || t.key, st.added_at, st.removed_at, st.estimate, \
         st.in_commitment, st.carried_over, t.state, t.first_started_at, t.finished_at, \
         t.done_by, t.actual, t.attempt, coalesce(t.error, t.reason), t.unmet \
         FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
         JOIN workflows w ON w.id = t.workflow WHERE st.sprint = ?1 ORDER BY st.id",
    )?;
    let mut ids = Vec::new();
    let mut items = Vec::new();
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        ids.push(row.get::<_, i64>(0)?);
        let state = crate::store::refs::parse_column(&row, 7, |s| s.parse::<TaskState>().ok())?;
        let unmet: i64 = row.get(14)?;
        let problem: Option<String> = row.get(13)?;
        items.push(ScopeItem {
            task: row.get(1)?,
            added_at: from_millis(row.get(2)?),
            removed_at: row.get::<_, Option<i64>>(3)?.map(from_millis),
            estimate_at_add: row.get(4)?,
            estimates: Vec::new(),
            in_commitment: row.get(5)?,
            carried_over: row.get(6)?,
            state,
            started_at: row.get::<_, Option<i64>>(8)?.map(from_millis),
            finished_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
            done_by: row.get(10)?,
            actual: row.get(11)?,
            attempts: row.get(12)?,
            problem: problem.or_else(|| {
                (state == TaskState::Pending && unmet > 0).then(|| {
                    format!(
                        "waiting on {}",
                        crate::text::counted(unmet.max(0) as u64, "unfinished dependency")
                    )
                })
            }),
        });
    }
    let mut by_task: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        by_task.entry(*id).or_default().push(i);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT task, at, value FROM events WHERE sprint = ?1 AND kind = 'estimate_changed' \
         ORDER BY seq",
    )?;
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        let (task, at, value): (i64, i64, f64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let at = from_millis(at);
        for &i in by_task.get(&task).into_iter().flatten() {
            // Only estimates made during this stay count; the stay began with the estimate
            // then.
            let item = &mut items[i];
            if at > item.added_at && item.removed_at.is_none_or(|r| at < r) {
                item.estimates.push((at, value));
            }
        }
    }
    Ok((ids, items))
}

/// Every finished attempt at a task that was ever in the sprint, from the event log, read as
/// agent performance reads attempts.
pub(super) fn attempts(conn: &Tx<'_>, sprint: i64) -> Result<Vec<SprintAttempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.at, e.agent, w.name || '/' || t.key, e.to_state, e.detail FROM events e \
         JOIN tasks t ON t.id = e.task JOIN workflows w ON w.id = t.workflow \
         WHERE e.kind = ?2 AND e.from_state = ?3 AND e.agent IS NOT NULL \
         AND e.task IN (SELECT task FROM sprint_tasks WHERE sprint = ?1) ORDER BY e.seq",
    )?;
    let mut attempts = Vec::new();
    let mut rows = stmt.query(params![
        sprint,
        EventKind::TaskState.as_str(),
        TaskState::Running.as_str()
    ])?;
    while let Some(row) = rows.next()? {
        let to_state = row.get_ref(3)?.as_str().unwrap_or_default();
        let detail = row.get_ref(4)?.as_str_or_null().ok().flatten();
        if let Some(end) = attempt_end(to_state, detail) {
            attempts.push(SprintAttempt {
                task: row.get(2)?,
                agent: row.get(1)?,
                ended_at: from_millis(row.get(0)?),
                end,
            });
        }
    }
    Ok(attempts)
}

pub(super) fn carry_over(
    conn: &Tx<'_>,
    sprint: i64,
    ids: &[i64],
    items: &[ScopeItem],
    as_of: DateTime<Utc>,
) -> Result<Vec<CarryOver>> {
    // How often each task was carried out of an earlier sprint before its stay in this one.
    let mut carried: HashMap<i64, u32> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT cur.task, count(*) FROM sprint_tasks cur JOIN sprint_tasks prev \
         ON prev.task = cur.task AND prev.carried_over = 1 AND prev.sprint != cur.sprint \
         AND prev.added_at < cur.added_at WHERE cur.sprint = ?1 GROUP BY cur.task",
    )?;
    let mut rows = stmt.query([sprint])?;
    while let Some(row) = rows.next()? {
        carried.insert(row.get(0)?, row.get(1)?);
    }
    Ok(ids
        .iter()
        .zip(items)
        .filter(|(_, i)| i.in_scope_at(as_of) && !i.done_at(as_of) && !i.state.is_terminal())
        .map(|(id, item)| CarryOver {
            task: item.task.clone(),
            points: item.estimate_at(as_of),
            state: item.state,
            times_carried: carried.get(id).copied().unwrap_or(0),
        })
        .collect())
}

pub(super) fn sprint_forecast(
    row: &SprintRow,
    report: &SprintReport,
    history: &[SprintRow],
    as_of: DateTime<Utc>,
    options: &AnalyticsOptions,
) -> (Option<SprintForecast>, Option<String>) {
    if row.status == SprintStatus::Closed {
        return (None, Some("the sprint is closed".into()));
    }
    let remaining = report.totals.scope - report.totals.completed;
    // Throughput per working day: the last closed sprints, then the days of this one that are
    // over (today is still going).
    let mut days: Vec<f64> = history
        .iter()
        .rev()
        .take(FORECAST_HISTORY_SPRINTS)
        .rev()
        .flat_map(|s| s.daily_done.iter().copied())
        .collect();
    let today = as_of.date_naive();
    days.extend(
        report
            .days
            .iter()
            .zip(&report.daily_done)
            .filter(|(day, _)| day.date < today)
            .map(|(_, done)| *done),
    );
    let first = if today < row.start { row.start } else { today };
    let days_left = if first > row.end {
        0
    } else {
        working_days(first, row.end, &row.week, &BTreeSet::new()).len() as u32
    };
    let seed = options
        .seed
        .unwrap_or(0x5EED_0000_0000_0000 ^ row.id as u64);
    let Some(result) = forecast(remaining, &days, days_left, options.trials, seed) else {
        return (
            None,
            Some(if days.is_empty() {
                "no throughput history yet: a forecast needs a closed sprint or a finished working day".into()
            } else {
                "nothing was finished on any working day of the history, so no finish can be forecast".into()
            }),
        );
    };
    let date = |n: u32| row.week.nth_working_day(first, n);
    (
        Some(SprintForecast {
            remaining,
            history_days: days.len(),
            days_left,
            p50: date(result.p50),
            p85: date(result.p85),
            p95: date(result.p95),
            probability_by_end: result.probability_by_end,
            trials: result.trials,
            seed,
        }),
        None,
    )
}

pub(super) fn retrospective(
    tx: &Tx<'_>,
    name: &str,
    now: DateTime<Utc>,
    options: &RetrospectiveOptions,
) -> Result<Retrospective> {
    let mut row = SprintRow::resolve(tx, name)?;
    if options.close && row.status != SprintStatus::Active {
        return Err(Error::IllegalSprintAction {
            sprint: row.name,
            status: row.status,
            action: if row.status == SprintStatus::Closed {
                "be closed again"
            } else {
                "be closed before it starts"
            },
        });
    }
    let next = match &options.next {
        Some(next) if *next == row.name => {
            return Err(Error::InvalidArgument {
                field: "next".into(),
                reason: "unfinished tasks cannot move into the sprint being closed".into(),
            });
        }
        Some(next) => Some(open_sprint(tx, next, "gain tasks")?),
        None => None,
    };
    let as_of = row.as_of(now);
    let (ids, items) = stays(tx, row.id)?;
    let report = sprint_report(&window(&row, as_of), &items);
    let history = closed_before(tx, &row)?;
    let completed: Vec<f64> = history.iter().filter_map(|s| s.completed).collect();
    let velocity = velocity(&completed);
    let carry_over = carry_over(tx, row.id, &ids, &items, as_of)?;
    let pairs: Vec<(f64, f64)> = items
        .iter()
        .filter(|i| i.in_scope_at(as_of) && i.done_at(as_of))
        .filter_map(|i| Some((i.estimate_at(as_of), i.actual?)))
        .collect();
    let accuracy = accuracy(&pairs);
    let problems: Vec<Problem> = items
        .iter()
        .filter(|i| i.in_scope_at(as_of) && !i.done_at(as_of))
        .filter(|i| {
            (i.state.is_terminal() && i.state != TaskState::Succeeded) || i.problem.is_some()
        })
        .map(|i| Problem {
            task: i.task.clone(),
            state: i.state,
            reason: i.problem.clone().unwrap_or_else(|| i.state.to_string()),
        })
        .collect();
    let failures: Vec<(String, String)> = problems
        .iter()
        .filter(|p| p.state.is_terminal())
        .map(|p| (p.task.clone(), p.reason.clone()))
        .collect();
    let stuck = report.flow.aging.iter().filter(|a| a.over_p85).count();
    let findings = findings(&FindingsInput {
        totals: &report.totals,
        started: row.started_at.is_some(),
        velocity,
        capacity: row.capacity,
        accuracy: accuracy.as_ref(),
        failures: &failures,
        stuck,
    });
    let contributions = contributions(&items, &attempts(tx, row.id)?, as_of);

    let mut moved_to = None;
    if options.close {
        close(tx, now, &row, &report, next.as_ref())?;
        moved_to = next.map(|n| n.name);
        row = SprintRow::resolve(tx, name)?;
    }
    Ok(Retrospective {
        sprint: summary(tx, &row, row.id)?,
        report,
        carry_over,
        moved_to,
        accuracy,
        contributions,
        problems,
        findings,
        velocity,
        closed: options.close,
    })
}

/// Closes the sprint: its completed points and daily throughput are fixed, its rows stop being
/// current, and unfinished tasks are carried over (into `next`, when given).
pub(super) fn close(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    row: &SprintRow,
    report: &SprintReport,
    next: Option<&SprintRow>,
) -> Result<()> {
    let daily: Vec<String> = report.daily_done.iter().map(|d| format!("{d}")).collect();
    tx.prepare_cached(
        "UPDATE sprints SET status = ?5, closed_at = ?2, completed = ?3, daily_done = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![
        row.id,
        millis(now),
        report.totals.completed,
        daily.join(","),
        SprintStatus::Closed.as_str()
    ])?;
    append(
        tx,
        now,
        EventKind::SprintStatus,
        NewEvent {
            sprint: Some(row.id),
            value: Some(report.totals.completed),
            detail: Some(SprintStatus::Closed.as_str()),
            ..NewEvent::default()
        },
    )?;
    let unfinished: Vec<i64> = {
        let mut stmt = tx.prepare_cached(query!(
            "SELECT st.task FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
             WHERE st.sprint = ?1 AND st.current = 1 AND t.state IN {}",
            sql::states(&UNFINISHED)
        ))?;
        stmt.query_map([row.id], |r| r.get(0))?
            .collect::<Result<_>>()?
    };
    tx.prepare_cached(query!(
        "UPDATE sprint_tasks SET carried_over = 1 WHERE sprint = ?1 AND current = 1 \
         AND task IN (SELECT id FROM tasks WHERE state IN {})",
        sql::states(&UNFINISHED)
    ))?
    .execute([row.id])?;
    tx.prepare_cached("UPDATE sprint_tasks SET current = 0 WHERE sprint = ?1 AND current = 1")?
        .execute([row.id])?;
    for task in unfinished {
        let task = TaskRow::by_id(tx, task)?;
        append(
            tx,
            now,
            EventKind::SprintScope,
            NewEvent {
                sprint: Some(row.id),
                workflow: Some(task.workflow),
                task: Some(task.id),
                value: Some(task.estimate),
                detail: Some("carried_over"),
                ..NewEvent::default()
            },
        )?;
        if let Some(next) = next {
            join(tx, now, next.id, &task, "added", None)?;
        }
    }
    Ok(())
}

/// The part each member has of the active sprint it belongs to: its capacity (with the focus
/// factor fixed at the start), the points planning allocated to it, and those it completed and
/// holds.
pub(crate) fn sprint_loads(
    conn: &Tx<'_>,
    points_per_day: &HashMap<String, f64>,
) -> Result<HashMap<String, crate::sprint::SprintLoad>> {
    let sql = query!(
        "SELECT {SPRINT_COLUMNS} FROM sprints WHERE status = {}",
        sql::lit(SprintStatus::Active.as_str())
    );
    let sprints = conn
        .prepare_cached(sql)?
        .query_map([], SprintRow::from_row)?
        .collect::<Result<Vec<_>>>()?;
    let mut loads = HashMap::new();
    for sprint in sprints {
        for member in load_members(conn, sprint.id)? {
            let spec = Member {
                agent: member.agent.clone(),
                availability: member.availability,
                days_off: member.days_off,
                points_per_day: points_per_day.get(&member.agent).copied().unwrap_or(0.0),
                skills: Default::default(),
            };
            let capacity = capacity(
                sprint.start,
                sprint.end,
                &sprint.week,
                std::slice::from_ref(&spec),
                sprint.focus_factor.unwrap_or(DEFAULT_FOCUS_FACTOR),
            );
            loads.insert(
                member.agent,
                crate::sprint::SprintLoad {
                    sprint: sprint.name.clone(),
                    capacity: capacity.points,
                    allocated: 0.0,
                    done: 0.0,
                    in_flight: 0.0,
                },
            );
        }
        let mut stmt = conn.prepare_cached(
            "SELECT st.planned_for, t.agent, t.done_by, t.state, t.estimate \
             FROM sprint_tasks st JOIN tasks t ON t.id = st.task \
             WHERE st.sprint = ?1 AND st.removed_at IS NULL",
        )?;
        let mut rows = stmt.query([sprint.id])?;
        while let Some(row) = rows.next()? {
            let estimate: f64 = row.get(4)?;
            let state: String = row.get(3)?;
            let mut add =
                |agent: Option<String>, f: fn(&mut crate::sprint::SprintLoad) -> &mut f64| {
                    if let Some(load) = agent.and_then(|a| loads.get_mut(&a))
                        && load.sprint == sprint.name
                    {
                        *f(load) += estimate;
                    }
                };
            add(row.get(0)?, |l| &mut l.allocated);
            if state == TaskState::Succeeded.as_str() {
                add(row.get(2)?, |l| &mut l.done);
            } else {
                add(row.get(1)?, |l| &mut l.in_flight);
            }
        }
    }
    Ok(loads)
}
