//! Sprints, the pure part: working days and capacity, velocity and the learnt focus factor,
//! seeded Monte Carlo forecasts, the burndown guideline, and planning that never leaves out an
//! unfinished dependency of a chosen task.
//!
//! Definitions follow the sprint-analytics notes: Jira's commitment and velocity (mean of the
//! completed points of the last 7 closed sprints), Kniberg's focus factor (completed points per
//! available person-day, mean of the last 3 sprints), and throughput-sampling Monte Carlo.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{Datelike, Duration, NaiveDate};

use crate::workflow::TaskState;

mod chart;
mod draft;
mod report;
#[cfg(test)]
mod tests;

pub use chart::{svg, text_chart};
pub use draft::{DEFAULT_FOCUS_FACTOR, FocusSource};
pub(crate) use draft::{DraftInput, check_window, draft, focus_for};
pub use report::{
    Accuracy, Aging, BurnPoint, Contribution, Finding, FindingsInput, Flow, ScopeChange,
    ScopeChangeKind, ScopeItem, SprintAttempt, SprintReport, Totals, Window, accuracy,
    contributions, end_of_day, findings, sprint_report,
};

/// Where a sprint is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SprintStatus {
    /// Saved with members and tasks; nothing committed yet.
    Planned,
    /// Started: the commitment is frozen and scope changes are recorded.
    Active,
    /// Over: its numbers count towards velocity.
    Closed,
}

impl SprintStatus {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SprintStatus::Planned => "planned",
            SprintStatus::Active => "active",
            SprintStatus::Closed => "closed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<SprintStatus> {
        [
            SprintStatus::Planned,
            SprintStatus::Active,
            SprintStatus::Closed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for SprintStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's part of an active sprint: what planning allocated to it against its capacity,
/// and where that stands.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintLoad {
    /// The sprint.
    pub sprint: String,
    /// Its capacity in the sprint, in points.
    pub capacity: f64,
    /// Points of the sprint's tasks planning allocated to it.
    pub allocated: f64,
    /// Points of the sprint's tasks it completed.
    pub done: f64,
    /// Points of the sprint's tasks it holds now.
    pub in_flight: f64,
}

/// Which days of the week are working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkWeek {
    /// Monday first.
    pub days: [bool; 7],
}

impl Default for WorkWeek {
    /// Monday to Friday.
    fn default() -> Self {
        WorkWeek {
            days: [true, true, true, true, true, false, false],
        }
    }
}

impl WorkWeek {
    /// Whether `date` is a working day.
    pub fn works_on(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }

    /// The week as a bit set, Monday = 1.
    pub fn bits(&self) -> u8 {
        self.days
            .iter()
            .enumerate()
            .fold(0, |bits, (i, &works)| bits | (u8::from(works) << i))
    }

    /// The week from a bit set, Monday = 1.
    pub fn from_bits(bits: u8) -> WorkWeek {
        WorkWeek {
            days: std::array::from_fn(|i| bits & (1 << i) != 0),
        }
    }

    /// The `n`-th working day counting `from` itself as the first when it is one; `from` for 0.
    /// A week without working days gives `from`.
    pub fn nth_working_day(&self, from: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 || self.bits() == 0 {
            return from;
        }
        let mut day = from;
        let mut seen = 0;
        loop {
            if self.works_on(day) {
                seen += 1;
                if seen == n {
                    return day;
                }
            }
            day += Duration::days(1);
        }
    }
}

/// The working days from `start` to `end`, both included, without `off`.
pub fn working_days(
    start: NaiveDate,
    end: NaiveDate,
    week: &WorkWeek,
    off: &BTreeSet<NaiveDate>,
) -> Vec<NaiveDate> {
    let mut days = Vec::new();
    let mut day = start;
    while day <= end {
        if week.works_on(day) && !off.contains(&day) {
            days.push(day);
        }
        day += Duration::days(1);
    }
    days
}

/// A member of a sprint as planning sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The agent.
    pub agent: String,
    /// Share of their time on this sprint, 0 to 1.
    pub availability: f64,
    /// Days they do not work.
    pub days_off: BTreeSet<NaiveDate>,
    /// Points they finish on a full working day.
    pub points_per_day: f64,
    /// Their skills, for choosing tasks someone can do.
    pub skills: BTreeMap<String, u8>,
}

/// One member's capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberCapacity {
    /// The agent.
    pub agent: String,
    /// Working days of the sprint they are there.
    pub working_days: u32,
    /// `availability × working_days`.
    pub available_days: f64,
    /// `available_days × points_per_day × focus_factor`.
    pub points: f64,
}

/// The team's capacity for a sprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// Per member.
    pub members: Vec<MemberCapacity>,
    /// The focus factor applied.
    pub focus_factor: f64,
    /// Available person-days in all.
    pub available_days: f64,
    /// Points in all.
    pub points: f64,
}

/// Capacity = Σ availability × working days (weekends and days off excluded) × points per day,
/// times the focus factor.
pub fn capacity(
    start: NaiveDate,
    end: NaiveDate,
    week: &WorkWeek,
    members: &[Member],
    focus_factor: f64,
) -> Capacity {
    let members: Vec<MemberCapacity> = members
        .iter()
        .map(|member| {
            let days = working_days(start, end, week, &member.days_off).len() as u32;
            let available_days = member.availability * f64::from(days);
            MemberCapacity {
                agent: member.agent.clone(),
                working_days: days,
                available_days,
                points: available_days * member.points_per_day * focus_factor,
            }
        })
        .collect();
    Capacity {
        focus_factor,
        available_days: members.iter().map(|m| m.available_days).sum(),
        points: members.iter().map(|m| m.points).sum(),
        members,
    }
}

/// Velocity over closed sprints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Velocity {
    /// Mean completed points.
    pub mean: f64,
    /// Median completed points.
    pub median: f64,
    /// Population standard deviation.
    pub std_dev: f64,
    /// How many sprints it is over.
    pub sprints: usize,
}

/// Sprints Jira's velocity chart looks back over.
pub const VELOCITY_WINDOW: usize = 7;

/// Velocity of the last [`VELOCITY_WINDOW`] of `completed` (oldest first); `None` without any.
pub fn velocity(completed: &[f64]) -> Option<Velocity> {
    let recent = &completed[completed.len().saturating_sub(VELOCITY_WINDOW)..];
    if recent.is_empty() {
        return None;
    }
    let n = recent.len() as f64;
    let mean = recent.iter().sum::<f64>() / n;
    let mut sorted = recent.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let std_dev = (recent.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    Some(Velocity {
        mean,
        median,
        std_dev,
        sprints: recent.len(),
    })
}

/// A closed sprint, for learning the focus factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedSprint {
    /// Points completed.
    pub completed: f64,
    /// The raw capacity it had: available person-days × points per day, before any focus factor.
    pub raw_capacity: f64,
}

/// Sprints the focus factor is learnt from.
pub const FOCUS_WINDOW: usize = 3;

/// The mean of `completed / raw_capacity` over the last [`FOCUS_WINDOW`] closed sprints (oldest
/// first), or `None` when there is no usable sprint.
pub fn learnt_focus_factor(history: &[ClosedSprint]) -> Option<f64> {
    let ratios: Vec<f64> = history
        .iter()
        .filter(|s| s.raw_capacity > 0.0)
        .map(|s| s.completed / s.raw_capacity)
        .collect();
    let recent = &ratios[ratios.len().saturating_sub(FOCUS_WINDOW)..];
    (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
}

/// A Monte Carlo forecast of how many working days the remaining work takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Days by which half the trials finished.
    pub p50: u32,
    /// Days by which 85 % of the trials finished.
    pub p85: u32,
    /// Days by which 95 % of the trials finished.
    pub p95: u32,
    /// Share of the trials that finished within the days left.
    pub probability_by_end: f64,
    /// Trials run.
    pub trials: u32,
}

/// A trial stops after this many days: a history of mostly zero days must not loop forever.
const MAX_FORECAST_DAYS: u32 = 3_650;

/// "When will `remaining` be done?": each trial adds a randomly drawn day of `history` (items or
/// points finished per working day, zero days included) until the work is done. Seeded, so the
/// same inputs give the same forecast. `None` without history or when nothing was ever done.
pub fn forecast(
    remaining: f64,
    history: &[f64],
    days_left: u32,
    trials: u32,
    seed: u64,
) -> Option<Forecast> {
    if history.is_empty() || history.iter().all(|&d| d <= 0.0) || trials == 0 {
        return None;
    }
    let mut rng = SplitMix(seed);
    let mut days: Vec<u32> = (0..trials)
        .map(|_| {
            let (mut done, mut day) = (0.0, 0u32);
            while done < remaining && day < MAX_FORECAST_DAYS {
                done += history[rng.below(history.len())];
                day += 1;
            }
            day
        })
        .collect();
    let within = days.iter().filter(|&&d| d <= days_left).count();
    days.sort_unstable();
    let at = |q: f64| days[((days.len() as f64 * q).ceil() as usize).clamp(1, days.len()) - 1];
    Some(Forecast {
        p50: at(0.50),
        p85: at(0.85),
        p95: at(0.95),
        probability_by_end: within as f64 / f64::from(trials),
        trials,
    })
}

/// A small seeded generator (splitmix64): forecasts must be reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Lemire's multiply-shift: unbiased enough for sampling a history.
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}

/// The ideal burndown: from `committed` on the first working day to 0 after the last.
pub fn guideline(committed: f64, working_days: usize) -> Vec<f64> {
    if working_days == 0 {
        return Vec::new();
    }
    (0..=working_days)
        .map(|d| committed * (1.0 - d as f64 / working_days as f64))
        .collect()
}

/// A task that planning may choose.
#[derive(Debug, Clone, PartialEq)]
pub struct BacklogItem {
    /// Its reference (`workflow/key`).
    pub task: String,
    /// Points.
    pub estimate: f64,
    /// 0 to 100.
    pub priority: i64,
    /// Longest estimate-weighted path to its workflow's end.
    pub b_level: f64,
    /// Skills and levels it needs.
    pub skills: BTreeMap<String, u8>,
    /// Unfinished tasks it depends on (references); finished ones are left out.
    pub depends_on: Vec<String>,
}

/// A sprint plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Chosen tasks, dependencies before dependents.
    pub selected: Vec<String>,
    /// Their points.
    pub points: f64,
    /// Per member: the tasks allocated and their points.
    pub allocation: BTreeMap<String, (Vec<String>, f64)>,
    /// Tasks left out, with why.
    pub left_out: Vec<(String, String)>,
}

/// Chooses tasks by priority (then b-level) up to `budget` points, taking a task only with all
/// its unfinished dependencies (which are then chosen too, if they fit), and only tasks some
/// member can do; then allocates them to the qualified member with the most room left.
///
/// `pinned` tasks (already in the sprint, such as carried-over work) are chosen first whatever
/// the budget, with their unfinished dependencies; the budget then covers what is left.
pub fn plan(
    candidates: &[BacklogItem],
    members: &[Member],
    capacity: &Capacity,
    budget: f64,
    pinned: &[String],
) -> Plan {
    // Tasks are handled by index: a plan walks dependency chains for thousands of candidates,
    // so the walk must not hash or allocate per step.
    let n = candidates.len();
    let index: HashMap<&str, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.task.as_str(), i))
        .collect();
    let can_do: Vec<bool> = candidates
        .iter()
        .map(|c| members.iter().any(|m| qualified(m, c)))
        .collect();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(n);
    let mut missing: Vec<Option<&str>> = Vec::with_capacity(n);
    for candidate in candidates {
        let mut resolved = Vec::with_capacity(candidate.depends_on.len());
        let mut absent = None;
        for dependency in &candidate.depends_on {
            match index.get(dependency.as_str()) {
                Some(&d) => resolved.push(d),
                None => absent = absent.or(Some(dependency.as_str())),
            }
        }
        deps.push(resolved);
        missing.push(absent);
    }
    let mut order: Vec<(usize, bool)> = pinned
        .iter()
        .filter_map(|task| index.get(task.as_str()).map(|&i| (i, true)))
        .collect();
    let mut rest: Vec<usize> = (0..n).collect();
    rest.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        b.priority
            .cmp(&a.priority)
            .then(b.b_level.total_cmp(&a.b_level))
            .then(a.task.cmp(&b.task))
    });
    order.extend(rest.into_iter().map(|i| (i, false)));

    let mut chosen = vec![false; n];
    let mut left: Vec<Option<String>> = vec![None; n];
    // Per-walk marks: a mark equal to the walk's number means "seen in this walk".
    let mut visited = vec![0u32; n];
    let mut in_closure = vec![0u32; n];
    let mut walk = 0u32;
    let mut selected: Vec<String> = Vec::new();
    let mut points = 0.0;
    let mut closure: Vec<usize> = Vec::new();
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for (candidate, forced) in order {
        if chosen[candidate] || left[candidate].is_some() {
            continue;
        }
        // The task and every unfinished dependency not yet chosen, dependencies first.
        walk += 1;
        closure.clear();
        stack.clear();
        stack.push((candidate, false));
        let mut problem = None;
        while let Some((task, expanded)) = stack.pop() {
            if chosen[task] || in_closure[task] == walk {
                continue;
            }
            if expanded {
                in_closure[task] = walk;
                closure.push(task);
                continue;
            }
            if visited[task] == walk {
                continue;
            }
            visited[task] = walk;
            if !can_do[task] {
                problem = Some(if task == candidate {
                    let needs: Vec<String> = candidates[task]
                        .skills
                        .iter()
                        .map(|(s, l)| format!("{s}>={l}"))
                        .collect();
                    format!("no member has the skills: {}", needs.join(", "))
                } else {
                    format!(
                        "depends on `{}`, which no member can do",
                        candidates[task].task
                    )
                });
                break;
            }
            if let Some(dependency) = missing[task] {
                problem = Some(format!(
                    "depends on `{dependency}`, which is unfinished and not in the backlog"
                ));
                break;
            }
            stack.push((task, true));
            stack.extend(deps[task].iter().map(|&d| (d, false)));
        }
        if let Some(reason) = problem {
            left[candidate] = Some(reason);
            continue;
        }
        let extra: f64 = closure.iter().map(|&c| candidates[c].estimate).sum();
        if !forced && points + extra > budget + 1e-9 {
            let room = (budget - points).max(0.0);
            left[candidate] = Some(if closure.len() > 1 {
                format!(
                    "with its {} unfinished dependencies it needs {extra} points; {room:.1} are left",
                    closure.len() - 1,
                )
            } else {
                format!(
                    "needs {} points; {room:.1} are left",
                    candidates[candidate].estimate
                )
            });
            continue;
        }
        for &task in &closure {
            chosen[task] = true;
            selected.push(candidates[task].task.clone());
            points += candidates[task].estimate;
        }
    }
    let mut left_out: Vec<(String, String)> = left
        .into_iter()
        .enumerate()
        .filter_map(|(i, why)| why.map(|why| (candidates[i].task.clone(), why)))
        .collect();
    left_out.sort();
    let by_task: HashMap<&str, &BacklogItem> =
        candidates.iter().map(|c| (c.task.as_str(), c)).collect();

    // Allocation: each chosen task to the qualified member with the most capacity left.
    let mut room: BTreeMap<String, f64> = capacity
        .members
        .iter()
        .map(|m| (m.agent.clone(), m.points))
        .collect();
    let mut allocation: BTreeMap<String, (Vec<String>, f64)> = BTreeMap::new();
    for task in &selected {
        let candidate = by_task[task.as_str()];
        let best = members
            .iter()
            .filter(|m| qualified(m, candidate))
            .max_by(|a, b| {
                room.get(&a.agent)
                    .copied()
                    .unwrap_or(0.0)
                    .total_cmp(&room.get(&b.agent).copied().unwrap_or(0.0))
                    .then(b.agent.cmp(&a.agent))
            });
        if let Some(member) = best {
            *room.entry(member.agent.clone()).or_default() -= candidate.estimate;
            let entry = allocation.entry(member.agent.clone()).or_default();
            entry.0.push(task.clone());
            entry.1 += candidate.estimate;
        }
    }
    Plan {
        selected,
        points,
        allocation,
        left_out,
    }
}

/// What to look at in a sprint's load: more points than the forecast capacity or the
/// velocity, a commitment asked for beyond the capacity, and members without capacity. `points`
/// is what the sprint holds and `target` what was asked for.
pub(crate) fn plan_warnings(
    points: f64,
    target: f64,
    capacity: &Capacity,
    velocity: Option<Velocity>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if capacity.points <= 0.0 {
        warnings.push(format!(
            "the forecast capacity is 0 points; the plan holds {points:.1}"
        ));
    } else if points > capacity.points * 1.1 {
        warnings.push(format!(
            "the plan holds {points:.1} points, {:.0}% of the forecast capacity of {:.1}",
            points / capacity.points * 100.0,
            capacity.points
        ));
    } else if target > capacity.points * 1.1 {
        warnings.push(format!(
            "the commitment asked for ({target:.1} points) exceeds the forecast capacity of {:.1}",
            capacity.points
        ));
    }
    if let Some(v) = velocity
        && points > v.mean * 1.1
    {
        warnings.push(format!(
            "the plan holds {points:.1} points, more than the velocity of {:.1}",
            v.mean
        ));
    }
    for member in &capacity.members {
        if member.points <= 0.0 {
            warnings.push(format!("`{}` has no capacity in this sprint", member.agent));
        }
    }
    warnings
}

/// A dependency that a removal from a sprint cut: a task still in the sprint, and a task it
/// depends on directly that left it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CutDependency {
    /// The task still in the sprint (`workflow/key`).
    pub(crate) dependent: String,
    /// Its state.
    pub(crate) dependent_state: TaskState,
    /// The task it depends on, which left the sprint (`workflow/key`).
    pub(crate) dependency: String,
    /// Its state.
    pub(crate) dependency_state: TaskState,
}

/// Warnings after tasks left a sprint: one for each unfinished task still in it that depends
/// directly on an unfinished task that left, naming those tasks. A finished dependency blocks
/// nothing, and a finished dependent needs nothing more, so neither is warned about.
pub(crate) fn removal_warnings(cut: &[CutDependency]) -> Vec<String> {
    let mut by_dependent: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for link in cut {
        if !link.dependent_state.is_terminal() && !link.dependency_state.is_terminal() {
            by_dependent
                .entry(link.dependent.as_str())
                .or_default()
                .insert(link.dependency.as_str());
        }
    }
    by_dependent
        .into_iter()
        .map(|(dependent, dependencies)| {
            let names: Vec<String> = dependencies.iter().map(|d| format!("`{d}`")).collect();
            let names = names.join(" and ");
            let until = if dependencies.len() == 1 {
                "it finishes"
            } else {
                "they finish"
            };
            format!(
                "`{dependent}` is still in the sprint and depends on {names}, which left it: \
                 `{dependent}` cannot start until {until}; remove it too, or add {names} back"
            )
        })
        .collect()
}

/// Whether `member` has every skill `task` needs at its level.
fn qualified(member: &Member, task: &BacklogItem) -> bool {
    crate::agent::skill_gap(&member.skills, &task.skills).is_none()
}
