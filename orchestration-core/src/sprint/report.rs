//! Sprint reports, the pure part: burndown and burnup per working day, Jira's scope totals
//! (commitment, added, removed, re-estimated, completed, say/do), Linear's progress, flow
//! metrics, estimation accuracy, contributions, and the findings a retrospective draws from them.
//!
//! Everything is computed from [`ScopeItem`]s: one per task that was ever in the sprint, with
//! the times it joined and left, its estimates over time, and when it started and finished. The
//! store builds them from its rows and the event log, so a report can be rebuilt at any time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::agent::{AttemptEnd, percentile};
use crate::text::counted;
use crate::workflow::TaskState;

use super::{Velocity, WorkWeek, guideline, working_days};

/// A task that was in the sprint at some point.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeItem {
    /// `workflow/key`.
    pub task: String,
    /// When it joined the sprint (the start, for committed tasks).
    pub added_at: DateTime<Utc>,
    /// When it left the sprint, if it did before the sprint closed.
    pub removed_at: Option<DateTime<Utc>>,
    /// Its estimate when it joined.
    pub estimate_at_add: f64,
    /// Its estimates after re-estimation while in the sprint, oldest first.
    pub estimates: Vec<(DateTime<Utc>, f64)>,
    /// Part of the commitment snapshot taken at the start.
    pub in_commitment: bool,
    /// Unfinished when the sprint closed.
    pub carried_over: bool,
    /// Its state now.
    pub state: TaskState,
    /// When its first attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent that completed it.
    pub done_by: Option<String>,
    /// The effort the agent reported.
    pub actual: Option<f64>,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed, was cancelled or is blocked.
    pub problem: Option<String>,
}

impl ScopeItem {
    /// Its estimate at `at`.
    pub fn estimate_at(&self, at: DateTime<Utc>) -> f64 {
        self.estimates
            .iter()
            .rev()
            .find(|(when, _)| *when <= at)
            .map_or(self.estimate_at_add, |(_, e)| *e)
    }

    /// Whether it was in the sprint at `at`.
    pub fn in_scope_at(&self, at: DateTime<Utc>) -> bool {
        self.added_at <= at && self.removed_at.is_none_or(|removed| removed > at)
    }

    /// Whether it had succeeded by `at`.
    pub fn done_at(&self, at: DateTime<Utc>) -> bool {
        self.state == TaskState::Succeeded && self.finished_at.is_some_and(|f| f <= at)
    }

    /// Whether it was started and not finished at `at`.
    pub fn in_progress_at(&self, at: DateTime<Utc>) -> bool {
        self.started_at.is_some_and(|s| s <= at) && self.finished_at.is_none_or(|f| f > at)
    }
}

/// The sprint's calendar and the moment a report looks from.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// First day.
    pub start: NaiveDate,
    /// Last day (included).
    pub end: NaiveDate,
    /// Working days of the week.
    pub week: WorkWeek,
    /// When the sprint started (its commitment snapshot), if it did.
    pub started_at: Option<DateTime<Utc>>,
    /// The report's moment: now, or when the sprint closed.
    pub as_of: DateTime<Utc>,
}

/// One working day of a burndown and burnup, at the end of the day (or at the report's moment
/// for today).
#[derive(Debug, Clone, PartialEq)]
pub struct BurnPoint {
    /// The day.
    pub date: NaiveDate,
    /// Points in the sprint.
    pub scope: f64,
    /// Points done.
    pub completed: f64,
    /// Points started and not done.
    pub in_progress: f64,
    /// `scope − completed`: the burndown.
    pub remaining: f64,
    /// The ideal line: the commitment burnt down evenly over the working days.
    pub ideal: f64,
}

/// Jira's sprint totals, in points.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    /// Commitment: the points in the sprint when it started.
    pub committed: f64,
    /// Added after the start.
    pub added: f64,
    /// Removed after the start.
    pub removed: f64,
    /// Net change of estimates after the start, of tasks still in the sprint.
    pub reestimated: f64,
    /// Points in the sprint now: `committed + added − removed + reestimated`.
    pub scope: f64,
    /// Points done, added scope included.
    pub completed: f64,
    /// Points started and not done.
    pub in_progress: f64,
    /// `scope − completed`.
    pub not_completed: f64,
    /// Points of committed tasks that are done, at their committed estimates.
    pub completed_committed: f64,
    /// `completed_committed / committed`: how much of what was promised was delivered.
    pub say_do: Option<f64>,
    /// `added / committed`.
    pub scope_creep: Option<f64>,
    /// `(added + removed) / committed`.
    pub churn: Option<f64>,
    /// `not_completed / scope`.
    pub rollover_rate: Option<f64>,
    /// Linear's `(completed + 0.25 × in_progress) / scope`.
    pub progress: f64,
}

/// What changed the scope after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeChangeKind {
    /// A task joined.
    Added,
    /// A task left.
    Removed,
    /// A task's estimate changed.
    Reestimated,
}

impl ScopeChangeKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeChangeKind::Added => "added",
            ScopeChangeKind::Removed => "removed",
            ScopeChangeKind::Reestimated => "reestimated",
        }
    }
}

/// One change of scope after the start.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeChange {
    /// When.
    pub at: DateTime<Utc>,
    /// Which task.
    pub task: String,
    /// What happened.
    pub kind: ScopeChangeKind,
    /// The change of scope in points (negative for removals and lowered estimates).
    pub points: f64,
}

/// A task in progress, and how long it has been.
#[derive(Debug, Clone, PartialEq)]
pub struct Aging {
    /// The task.
    pub task: String,
    /// Hours since its first attempt started.
    pub age_hours: f64,
    /// Older than the p85 cycle time: likely stuck.
    pub over_p85: bool,
}

/// Flow metrics of the sprint's tasks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flow {
    /// Tasks done.
    pub done: usize,
    /// Tasks done per elapsed working day.
    pub throughput_per_day: f64,
    /// Tasks in progress now.
    pub wip: usize,
    /// Cycle time (first start to done) percentiles, in hours.
    pub cycle_time_p50_hours: Option<f64>,
    /// The 85th percentile: the service level expectation.
    pub cycle_time_p85_hours: Option<f64>,
    /// Tasks in progress, oldest first.
    pub aging: Vec<Aging>,
}

/// A sprint report at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintReport {
    /// Whether the sprint had started by the report's moment. Before that there is no
    /// commitment, so `totals.committed` and `ideal` are 0 and the scope is what is planned.
    pub started: bool,
    /// Working days of the sprint.
    pub working_days: usize,
    /// Working days up to the report's moment, today included.
    pub elapsed_days: usize,
    /// The ideal line at the start and after each working day (`working_days + 1` values).
    pub ideal: Vec<f64>,
    /// Burndown and burnup, one point per elapsed working day.
    pub days: Vec<BurnPoint>,
    /// Points done on each elapsed working day (non-working days fold into the next).
    pub daily_done: Vec<f64>,
    /// The totals.
    pub totals: Totals,
    /// Scope changes after the start, oldest first.
    pub changes: Vec<ScopeChange>,
    /// Flow metrics.
    pub flow: Flow,
}

/// The end of `date`: midnight after it, in UTC.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    (date + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// Builds the report of a sprint from its items, as of `window.as_of`.
pub fn sprint_report(window: &Window, items: &[ScopeItem]) -> SprintReport {
    let days = working_days(window.start, window.end, &window.week, &Default::default());
    let as_of = window.as_of;
    let totals = totals(window.started_at, as_of, items);
    let ideal = guideline(totals.committed, days.len());
    let elapsed: Vec<NaiveDate> = days
        .iter()
        .copied()
        .filter(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc() <= as_of)
        .collect();
    let mut points = Vec::with_capacity(elapsed.len());
    let mut daily_done = Vec::with_capacity(elapsed.len());
    let mut done_before = window
        .started_at
        .map(|started| done_points(items, started.min(as_of)))
        .unwrap_or(0.0);
    for (i, &date) in elapsed.iter().enumerate() {
        let at = end_of_day(date).min(as_of);
        let (mut scope, mut completed, mut in_progress) = (0.0, 0.0, 0.0);
        for item in items.iter().filter(|item| item.in_scope_at(at)) {
            let estimate = item.estimate_at(at);
            scope += estimate;
            if item.done_at(at) {
                completed += estimate;
            } else if item.in_progress_at(at) {
                in_progress += estimate;
            }
        }
        daily_done.push((completed - done_before).max(0.0));
        done_before = completed;
        points.push(BurnPoint {
            date,
            scope,
            completed,
            in_progress,
            remaining: scope - completed,
            ideal: ideal.get(i + 1).copied().unwrap_or(0.0),
        });
    }
    SprintReport {
        started: window.started_at.is_some(),
        working_days: days.len(),
        elapsed_days: elapsed.len(),
        ideal,
        days: points,
        daily_done,
        changes: changes(window.started_at, as_of, items),
        flow: flow(&elapsed, as_of, items),
        totals,
    }
}

/// Points of the tasks in scope at `at` that were done by then.
fn done_points(items: &[ScopeItem], at: DateTime<Utc>) -> f64 {
    items
        .iter()
        .filter(|item| item.in_scope_at(at) && item.done_at(at))
        .map(|item| item.estimate_at(at))
        .sum()
}

fn totals(started_at: Option<DateTime<Utc>>, as_of: DateTime<Utc>, items: &[ScopeItem]) -> Totals {
    let mut t = Totals::default();
    for item in items {
        let in_scope = item.in_scope_at(as_of);
        let estimate = item.estimate_at(as_of);
        let after_start = |at: DateTime<Utc>| started_at.is_some_and(|s| at > s && at <= as_of);
        if item.in_commitment {
            t.committed += item.estimate_at_add;
        } else if after_start(item.added_at) {
            t.added += item.estimate_at_add;
        }
        if let Some(removed) = item.removed_at.filter(|&r| after_start(r)) {
            t.removed += item.estimate_at(removed);
        }
        if in_scope {
            t.reestimated += estimate - item.estimate_at_add;
            t.scope += estimate;
            if item.done_at(as_of) {
                t.completed += estimate;
                if item.in_commitment {
                    t.completed_committed += item.estimate_at_add;
                }
            } else if item.in_progress_at(as_of) {
                t.in_progress += estimate;
            }
        }
    }
    t.not_completed = t.scope - t.completed;
    let of_commitment = |x: f64| (t.committed > 0.0).then(|| x / t.committed);
    t.say_do = of_commitment(t.completed_committed);
    t.scope_creep = of_commitment(t.added);
    t.churn = of_commitment(t.added + t.removed);
    t.rollover_rate = (t.scope > 0.0).then(|| t.not_completed / t.scope);
    t.progress = if t.scope > 0.0 {
        (t.completed + 0.25 * t.in_progress) / t.scope
    } else {
        0.0
    };
    t
}

fn changes(
    started_at: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
    items: &[ScopeItem],
) -> Vec<ScopeChange> {
    let Some(started) = started_at else {
        return Vec::new();
    };
    let within = |at: DateTime<Utc>| at > started && at <= as_of;
    let mut changes = Vec::new();
    for item in items {
        if !item.in_commitment && within(item.added_at) {
            changes.push(ScopeChange {
                at: item.added_at,
                task: item.task.clone(),
                kind: ScopeChangeKind::Added,
                points: item.estimate_at_add,
            });
        }
        let mut before = item.estimate_at_add;
        for &(at, estimate) in &item.estimates {
            if within(at) && item.in_scope_at(at) {
                changes.push(ScopeChange {
                    at,
                    task: item.task.clone(),
                    kind: ScopeChangeKind::Reestimated,
                    points: estimate - before,
                });
            }
            before = estimate;
        }
        if let Some(removed) = item.removed_at.filter(|&r| within(r)) {
            changes.push(ScopeChange {
                at: removed,
                task: item.task.clone(),
                kind: ScopeChangeKind::Removed,
                points: -item.estimate_at(removed),
            });
        }
    }
    changes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.task.cmp(&b.task)));
    changes
}

fn flow(elapsed: &[NaiveDate], as_of: DateTime<Utc>, items: &[ScopeItem]) -> Flow {
    let current: Vec<&ScopeItem> = items.iter().filter(|i| i.in_scope_at(as_of)).collect();
    let mut cycle: Vec<f64> = current
        .iter()
        .filter(|i| i.done_at(as_of))
        // A clock set back between start and end must not give a negative cycle time.
        .filter_map(|i| Some(hours(i.finished_at? - i.started_at?).max(0.0)))
        .collect();
    cycle.sort_by(f64::total_cmp);
    let done = current.iter().filter(|i| i.done_at(as_of)).count();
    let p85 = percentile(&cycle, 0.85);
    let mut aging: Vec<Aging> = current
        .iter()
        .filter(|i| !i.state.is_terminal() && i.in_progress_at(as_of))
        .filter_map(|i| {
            let age_hours = hours(as_of - i.started_at?).max(0.0);
            Some(Aging {
                task: i.task.clone(),
                age_hours,
                over_p85: p85.is_some_and(|p| age_hours > p),
            })
        })
        .collect();
    aging.sort_by(|a, b| b.age_hours.total_cmp(&a.age_hours));
    Flow {
        done,
        throughput_per_day: if elapsed.is_empty() {
            0.0
        } else {
            done as f64 / elapsed.len() as f64
        },
        wip: aging.len(),
        cycle_time_p50_hours: percentile(&cycle, 0.50),
        cycle_time_p85_hours: p85,
        aging,
    }
}

fn hours(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 3_600_000.0
}

/// How well estimates matched the effort reported, over tasks with both.
#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    /// Tasks measured.
    pub tasks: usize,
    /// Mean of `ln(actual / estimate)`: above 0 means underestimation.
    pub bias: f64,
    /// `exp(bias)`: how many times the estimate the work took, typically.
    pub ratio: f64,
    /// Standard deviation of `ln(actual / estimate)`.
    pub spread: f64,
    /// Mean magnitude of relative error `|actual − estimate| / actual`.
    pub mmre: f64,
    /// Its median.
    pub mdmre: f64,
    /// Share of tasks within 25 % of their actual.
    pub pred25: f64,
}

/// Estimation accuracy over `(estimate, actual)` pairs; pairs with a zero on either side are
/// skipped, and `None` comes back when none is left.
pub fn accuracy(pairs: &[(f64, f64)]) -> Option<Accuracy> {
    let usable: Vec<(f64, f64)> = pairs
        .iter()
        .copied()
        .filter(|&(e, a)| e > 0.0 && a > 0.0 && e.is_finite() && a.is_finite())
        .collect();
    if usable.is_empty() {
        return None;
    }
    let n = usable.len() as f64;
    let logs: Vec<f64> = usable.iter().map(|(e, a)| (a / e).ln()).collect();
    let bias = logs.iter().sum::<f64>() / n;
    let spread = (logs.iter().map(|l| (l - bias).powi(2)).sum::<f64>() / n).sqrt();
    let mut mre: Vec<f64> = usable.iter().map(|(e, a)| (a - e).abs() / a).collect();
    mre.sort_by(f64::total_cmp);
    Some(Accuracy {
        tasks: usable.len(),
        bias,
        ratio: bias.exp(),
        spread,
        mmre: mre.iter().sum::<f64>() / n,
        mdmre: percentile(&mre, 0.5).unwrap_or(0.0),
        pred25: mre.iter().filter(|&&m| m <= 0.25).count() as f64 / n,
    })
}

/// One finished attempt at a task of the sprint: who made it, when it ended and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SprintAttempt {
    /// `workflow/key`.
    pub task: String,
    /// The agent that made it.
    pub agent: String,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How it ended.
    pub end: AttemptEnd,
}

/// What one agent did in the sprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The agent.
    pub agent: String,
    /// Tasks it completed.
    pub tasks: usize,
    /// Their points.
    pub points: f64,
    /// Its failed attempts at the sprint's tasks that another attempt followed, counted as
    /// `agent_performance` counts retries.
    pub retries: u32,
    /// Its leases on the sprint's tasks that ran out without a report; apart from the
    /// retries, as in `agent_performance`.
    pub expired_leases: u32,
}

impl Contribution {
    /// `agent`, before anything is counted.
    fn nothing(agent: &str) -> Contribution {
        Contribution {
            agent: agent.to_owned(),
            tasks: 0,
            points: 0.0,
            retries: 0,
            expired_leases: 0,
        }
    }
}

/// Per agent, the tasks in scope at `as_of` that it completed, and the retries and expired
/// leases of its `attempts` that ended by `as_of` while their task was in the sprint; most
/// points first. An agent with retries or expired leases and nothing completed is listed too.
pub fn contributions(
    items: &[ScopeItem],
    attempts: &[SprintAttempt],
    as_of: DateTime<Utc>,
) -> Vec<Contribution> {
    let mut by_agent: BTreeMap<&str, Contribution> = BTreeMap::new();
    for item in items
        .iter()
        .filter(|i| i.in_scope_at(as_of) && i.done_at(as_of))
    {
        let Some(agent) = item.done_by.as_deref() else {
            continue;
        };
        let contribution = by_agent
            .entry(agent)
            .or_insert_with(|| Contribution::nothing(agent));
        contribution.tasks += 1;
        contribution.points += item.estimate_at(as_of);
    }
    let mut stays: HashMap<&str, Vec<&ScopeItem>> = HashMap::new();
    for item in items {
        stays.entry(item.task.as_str()).or_default().push(item);
    }
    for attempt in attempts {
        let in_sprint = attempt.ended_at <= as_of
            && stays
                .get(attempt.task.as_str())
                .is_some_and(|s| s.iter().any(|i| i.in_scope_at(attempt.ended_at)));
        if !in_sprint || !(attempt.end.is_retry() || attempt.end.is_expired_lease()) {
            continue;
        }
        let contribution = by_agent
            .entry(&attempt.agent)
            .or_insert_with(|| Contribution::nothing(&attempt.agent));
        if attempt.end.is_retry() {
            contribution.retries += 1;
        } else {
            contribution.expired_leases += 1;
        }
    }
    let mut list: Vec<Contribution> = by_agent.into_values().collect();
    list.sort_by(|a, b| {
        b.points
            .total_cmp(&a.points)
            .then_with(|| a.agent.cmp(&b.agent))
    });
    list
}

/// A finding of a retrospective and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What the numbers say.
    pub observation: String,
    /// The concrete action it suggests.
    pub action: String,
}

/// What findings are drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingsInput<'a> {
    /// The sprint's totals: the same numbers the retrospective reports, so that the findings
    /// agree with them.
    pub totals: &'a Totals,
    /// Whether the sprint started, so that there is a commitment to judge.
    pub started: bool,
    /// Velocity of the sprints closed before this one.
    pub velocity: Option<Velocity>,
    /// The capacity planned at the start, in points.
    pub capacity: Option<f64>,
    /// Estimation accuracy.
    pub accuracy: Option<&'a Accuracy>,
    /// Tasks that failed, were cancelled or could not run, with their reasons.
    pub failures: &'a [(String, String)],
    /// Tasks in progress for longer than the p85 cycle time.
    pub stuck: usize,
}

/// Say/do below this is a commitment not kept.
const SAY_DO_FLOOR: f64 = 0.8;

/// Scope creep or churn above this is a scope that did not hold.
const SCOPE_CHANGE_LIMIT: f64 = 0.15;

/// Findings with concrete actions, derived from the numbers; a sprint with nothing to change
/// gets one finding that says so.
///
/// Every finding is computed from `input.totals` as it is reported: what was delivered of the
/// commitment is `completed_committed` against `committed` (say/do), never the points done
/// with added scope, and scope change is judged by the reported creep and churn.
pub fn findings(input: &FindingsInput<'_>) -> Vec<Finding> {
    let t = input.totals;
    let mut out = Vec::new();
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let committed = input.started && t.committed > 0.0;
    if !input.started {
        out.push(Finding {
            observation: format!(
                "the sprint has not started: nothing is committed yet ({:.1} points planned)",
                t.scope
            ),
            action: "start it with sprint_planning start to freeze its commitment".into(),
        });
    } else if !committed {
        out.push(Finding {
            observation: if t.added > 0.0 {
                format!(
                    "nothing was committed at the start: all {:.1} points were added after it",
                    t.added
                )
            } else {
                "the sprint started with no tasks and none were added".into()
            },
            action: "plan the next sprint with sprint_planning create before starting it, so \
                     say/do and scope change can be measured"
                .into(),
        });
    }
    if committed
        && let Some(v) = input.velocity
        && v.mean > 0.0
        && t.committed > 1.1 * v.mean
    {
        out.push(Finding {
            observation: format!(
                "commitment was {} of velocity ({:.1} of {:.1} points)",
                pct(t.committed / v.mean),
                t.committed,
                v.mean
            ),
            action: format!(
                "plan at most {} next sprint",
                crate::text::points(v.mean.floor())
            ),
        });
    }
    if committed
        && let Some(say_do) = t.say_do
        && say_do < SAY_DO_FLOOR
    {
        out.push(Finding {
            observation: format!(
                "delivered {} of the commitment ({:.1} of {:.1} committed points)",
                pct(say_do),
                t.completed_committed,
                t.committed
            ),
            action: format!(
                "commit to about {}, what was delivered of this commitment, until say/do is \
                 above {}",
                crate::text::points(t.completed_committed.floor().max(1.0)),
                pct(SAY_DO_FLOOR)
            ),
        });
    }
    if committed && let (Some(creep), Some(churn)) = (t.scope_creep, t.churn) {
        if creep > SCOPE_CHANGE_LIMIT {
            let removed = if t.removed > 0.0 {
                format!(", {:.1} removed: churn {}", t.removed, pct(churn))
            } else {
                String::new()
            };
            out.push(Finding {
                observation: format!(
                    "scope grew by {} after the start ({:.1} points added{removed})",
                    pct(creep),
                    t.added
                ),
                action: format!(
                    "keep a buffer of {:.0}% of capacity for unplanned work, or add work only by removing as much",
                    (creep * 100.0).round()
                ),
            });
        } else if churn > SCOPE_CHANGE_LIMIT {
            out.push(Finding {
                observation: format!(
                    "scope churned by {} after the start ({:.1} points added, {:.1} removed)",
                    pct(churn),
                    t.added,
                    t.removed
                ),
                action: "plan only work that is ready, and settle the scope before the start \
                         rather than after it"
                    .into(),
            });
        }
    }
    if let Some(a) = input.accuracy {
        if a.ratio > 1.25 {
            out.push(Finding {
                observation: format!(
                    "tasks took {:.2}× their estimates (MdMRE {}, PRED(25) {})",
                    a.ratio,
                    pct(a.mdmre),
                    pct(a.pred25)
                ),
                action: format!(
                    "multiply estimates by {:.1}, or split tasks before estimating them",
                    a.ratio
                ),
            });
        } else if a.ratio < 0.8 {
            out.push(Finding {
                observation: format!(
                    "tasks took {:.2}× their estimates: they were overestimated",
                    a.ratio
                ),
                action: format!("multiply estimates by {:.1}", a.ratio),
            });
        }
    }
    if input.started
        && let Some(rate) = t.rollover_rate
        && rate > 0.2
    {
        out.push(Finding {
            observation: format!(
                "{} of the scope was not finished ({:.1} points carried over)",
                pct(rate),
                t.not_completed
            ),
            action: "carry the unfinished tasks over first and commit to less new work".into(),
        });
    }
    if !input.failures.is_empty() {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, reason) in input.failures {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
        let (top, count) = reasons
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(r, c)| (*r, *c))
            .unwrap_or_default();
        out.push(Finding {
            observation: format!(
                "{} failed or could not run; the most common reason ({count}): {top}",
                counted(input.failures.len() as u64, "task")
            ),
            action: "fix the cause, then run workflow_execute retry_failed on their workflows"
                .into(),
        });
    }
    if input.stuck > 0 {
        out.push(Finding {
            observation: format!(
                "{} in progress for longer than the p85 cycle time",
                counted(input.stuck as u64, "task")
            ),
            action: "check on their agents, and split or hand off work that is stuck".into(),
        });
    }
    if committed
        && let Some(capacity) = input.capacity
        && capacity > 0.0
        && t.committed > 1.1 * capacity
    {
        out.push(Finding {
            observation: format!(
                "commitment was {} of the planned capacity ({:.1} points)",
                pct(t.committed / capacity),
                capacity
            ),
            action: format!(
                "commit to at most {}",
                crate::text::points(capacity.floor())
            ),
        });
    }
    if out.is_empty() {
        // Only a started sprint with a commitment gets here, with say/do at the floor or
        // above and creep and churn within the limit.
        out.push(Finding {
            observation: format!(
                "delivered {:.1} of {:.1} committed points (say/do {}), and the scope changed \
                 little after the start (creep {}, churn {})",
                t.completed_committed,
                t.committed,
                t.say_do.map_or_else(|| "-".into(), pct),
                t.scope_creep.map_or_else(|| "-".into(), pct),
                t.churn.map_or_else(|| "-".into(), pct),
            ),
            action: "keep the commitment near velocity".into(),
        });
    }
    out
}
