//! The draft of a sprint plan: from the sprint's window, its members, the closed sprints before
//! it and the backlog, the focus factor to plan with, the capacity, the velocity, the
//! commitment to aim for, the plan and its warnings. Pure: the store loads the members, the
//! history and the backlog, and saves the plan it is given.

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::limits::MAX_SPRINT_DAYS;

use super::{
    BacklogItem, Capacity, ClosedSprint, FOCUS_WINDOW, Member, Plan, Velocity, WorkWeek, capacity,
    learnt_focus_factor, plan, plan_warnings, velocity,
};

/// The focus factor assumed before any sprint has closed: Kniberg's usual starting point.
pub const DEFAULT_FOCUS_FACTOR: f64 = 0.7;

/// Where the focus factor came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FocusSource {
    /// The caller gave it.
    Given,
    /// Learnt from this many closed sprints.
    Learnt(usize),
    /// [`DEFAULT_FOCUS_FACTOR`], for lack of history.
    Default,
    /// Fixed when the sprint was saved as planned: a start keeps it.
    Saved,
}

/// What planning a sprint needs besides its backlog.
#[derive(Debug, Clone)]
pub(crate) struct DraftInput<'a> {
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
    pub(crate) week: WorkWeek,
    pub(crate) members: &'a [Member],
    /// The focus factor the caller gave, if any.
    pub(crate) focus_factor: Option<f64>,
    /// The points the caller wants committed, if it says.
    pub(crate) commit: Option<f64>,
    /// The closed sprints with both their completed points and their raw capacity, oldest
    /// first: what the focus factor is learnt from.
    pub(crate) closed: &'a [ClosedSprint],
    /// The completed points of every closed sprint, oldest first: the velocity's history.
    pub(crate) completed: &'a [f64],
}

/// A sprint plan's numbers, its tasks and its warnings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub(crate) capacity: Capacity,
    /// The capacity at a focus factor of 1.
    pub(crate) raw_capacity: f64,
    pub(crate) focus: FocusSource,
    pub(crate) velocity: Option<Velocity>,
    /// The commitment the history recommends: the velocity, else the capacity.
    pub(crate) recommended: f64,
    /// The commitment planned for.
    pub(crate) target: f64,
    pub(crate) plan: Plan,
    pub(crate) warnings: Vec<String>,
}

/// Refuses a sprint window that ends before it starts, lasts too long, or has no working day.
pub(crate) fn check_window(start: NaiveDate, end: NaiveDate, week: &WorkWeek) -> Result<()> {
    if end < start {
        return Err(Error::InvalidArgument {
            field: "end".into(),
            reason: format!("the sprint ends ({end}) before it starts ({start})"),
        });
    }
    if (end - start).num_days() >= MAX_SPRINT_DAYS {
        return Err(Error::InvalidArgument {
            field: "end".into(),
            reason: format!("a sprint lasts at most {MAX_SPRINT_DAYS} days"),
        });
    }
    if week.bits() == 0 {
        return Err(Error::InvalidArgument {
            field: "work_days".into(),
            reason: "a sprint needs at least one working day in the week".into(),
        });
    }
    Ok(())
}

/// Plans the sprint `input` describes over the backlog `candidates`, keeping `pinned` (tasks
/// already in it) in the plan.
pub(crate) fn draft(
    input: &DraftInput<'_>,
    candidates: &[BacklogItem],
    pinned: &[String],
) -> Result<Draft> {
    let mut warnings = Vec::new();
    let (focus_factor, focus) = focus_for(input.focus_factor, input.closed, &mut warnings)?;
    let (start, end, week) = (input.start, input.end, &input.week);
    // The raw capacity is the one at a focus factor of 1: what the members could do at most.
    let raw_capacity = capacity(start, end, week, input.members, 1.0).points;
    let capacity = capacity(start, end, week, input.members, focus_factor);
    let velocity = velocity(input.completed);
    let recommended = velocity.map_or(capacity.points, |v| v.mean);
    if let Some(commit) = input.commit
        && !(commit.is_finite() && (0.0..=1e9).contains(&commit))
    {
        return Err(Error::InvalidArgument {
            field: "commit".into(),
            reason: format!("{commit} is not a finite number of points from 0"),
        });
    }
    let target = input
        .commit
        .unwrap_or_else(|| recommended.min(capacity.points));
    let plan = plan(candidates, input.members, &capacity, target, pinned);
    warnings.extend(plan_warnings(plan.points, target, &capacity, velocity));
    Ok(Draft {
        capacity,
        raw_capacity,
        focus,
        velocity,
        recommended,
        target,
        plan,
        warnings,
    })
}

/// The focus factor to plan with: the one `given`, or the one learnt from the `closed`
/// sprints, or [`DEFAULT_FOCUS_FACTOR`] (with a warning) for lack of them.
pub(crate) fn focus_for(
    given: Option<f64>,
    closed: &[ClosedSprint],
    warnings: &mut Vec<String>,
) -> Result<(f64, FocusSource)> {
    match given {
        Some(f) if !(f.is_finite() && f > 0.0 && f <= 5.0) => Err(Error::InvalidArgument {
            field: "focus_factor".into(),
            reason: format!("{f} is not a number above 0 and at most 5"),
        }),
        Some(f) => Ok((f, FocusSource::Given)),
        None => Ok(match learnt_focus_factor(closed) {
            Some(f) => (f, FocusSource::Learnt(closed.len().min(FOCUS_WINDOW))),
            None => {
                warnings.push(format!(
                    "no closed sprint to learn the focus factor from: {DEFAULT_FOCUS_FACTOR} assumed"
                ));
                (DEFAULT_FOCUS_FACTOR, FocusSource::Default)
            }
        }),
    }
}
