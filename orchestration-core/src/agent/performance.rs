//! Agent performance over a time window, from the event log: completions, success rates raw and
//! smoothed, first-pass yield, retries, expired leases, cycle times, estimate accuracy,
//! throughput, a breakdown by skill, a ranking, and the trend against the window before.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::summary::{Tally, weigh};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The agent completed the task.
    Succeeded,
    /// The agent reported a failure (retried or final).
    Failed {
        /// Whether another attempt followed.
        retried: bool,
    },
    /// The lease ran out without a report.
    Expired,
}

impl AttemptEnd {
    /// Whether `retries` counts it: a failure that another attempt followed. An expired lease
    /// is not a retry; `expired_leases` counts it.
    pub fn is_retry(self) -> bool {
        self == AttemptEnd::Failed { retried: true }
    }

    /// Whether `expired_leases` counts it: a lease that ran out without a report.
    pub fn is_expired_lease(self) -> bool {
        self == AttemptEnd::Expired
    }
}

/// One finished attempt, as read from the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The agent.
    pub agent: String,
    /// The task's internal identity (any stable key).
    pub task: i64,
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started, when known.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How.
    pub end: AttemptEnd,
    /// The task's estimate, in points.
    pub estimate: f64,
    /// Effort reported on completion, in points.
    pub actual: Option<f64>,
    /// The skills the task requires.
    pub skills: Vec<String>,
}

/// The metrics of one agent (or one agent and skill) over a window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Tasks completed.
    pub completed: u32,
    /// Attempts that ended (completed, failed or expired).
    pub attempts: u32,
    /// `completed / attempts`, when there were attempts.
    pub success_rate: Option<f64>,
    /// Beta-smoothed success rate with the fleet's rate in the window as prior.
    pub smoothed_success_rate: f64,
    /// Share of completions on the first attempt.
    pub first_pass_yield: Option<f64>,
    /// Failed attempts that were retried.
    pub retries: u32,
    /// Leases that ran out.
    pub expired_leases: u32,
    /// Median time from start to completion, in hours.
    pub cycle_time_p50_hours: Option<f64>,
    /// 85th percentile of the same.
    pub cycle_time_p85_hours: Option<f64>,
    /// Mean `ln(actual / estimate)`: above 0 means tasks took more than estimated.
    pub estimate_bias: Option<f64>,
    /// Median of `|actual - estimate| / actual`.
    pub mdmre: Option<f64>,
    /// Completions per day of the window.
    pub throughput_per_day: f64,
    /// Points of the completed tasks.
    pub points_completed: f64,
}

/// One agent's performance.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPerformance {
    /// The agent.
    pub agent: String,
    /// Its metrics in the window.
    pub metrics: Metrics,
    /// The same metrics per skill of the tasks it worked on.
    pub by_skill: BTreeMap<String, Metrics>,
    /// Its metrics in the window of the same length just before.
    pub previous: Metrics,
    /// Its place in the ranking, 1 for the best.
    pub rank: usize,
}

const PRIOR_STRENGTH: f64 = 10.0;

/// Performance of every agent that ended an attempt in `(from, to]` ("the last week up to
/// now" includes now), ranked by smoothed success
/// rate, then completions, then name. `attempts` may include the window before (for the trend);
/// attempts outside both windows are ignored.
pub fn performance(
    attempts: &[Attempt],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<AgentPerformance> {
    let previous_from = from - (to - from);
    let days = days(from, to);
    let current: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.ended_at > from && a.ended_at <= to)
        .collect();
    let earlier: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.ended_at > previous_from && a.ended_at <= from)
        .collect();
    let fleet_rate = |set: &[&Attempt]| {
        let ok = set
            .iter()
            .filter(|a| a.end == AttemptEnd::Succeeded)
            .count();
        if set.is_empty() {
            0.8
        } else {
            ok as f64 / set.len() as f64
        }
    };
    let (prior_now, prior_before) = (fleet_rate(&current), fleet_rate(&earlier));
    let mut by_agent: BTreeMap<&str, Vec<&Attempt>> = BTreeMap::new();
    for attempt in &current {
        by_agent
            .entry(attempt.agent.as_str())
            .or_default()
            .push(attempt);
    }
    let mut before: HashMap<&str, Vec<&Attempt>> = HashMap::new();
    for attempt in &earlier {
        before
            .entry(attempt.agent.as_str())
            .or_default()
            .push(attempt);
    }
    let result: Vec<AgentPerformance> = by_agent
        .into_iter()
        .map(|(agent, own)| {
            let mut skills: BTreeMap<String, Vec<&Attempt>> = BTreeMap::new();
            for attempt in &own {
                for skill in &attempt.skills {
                    skills.entry(skill.clone()).or_default().push(attempt);
                }
            }
            AgentPerformance {
                agent: agent.to_owned(),
                metrics: metrics(&own, prior_now, days),
                by_skill: skills
                    .into_iter()
                    .map(|(s, set)| (s, metrics(&set, prior_now, days)))
                    .collect(),
                previous: metrics(
                    before.get(agent).map_or(&[][..], Vec::as_slice),
                    prior_before,
                    days,
                ),
                rank: 0,
            }
        })
        .collect();
    rank(result)
}

/// The length of the window `(from, to]` in days, never zero.
pub(crate) fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds() as f64 / 86_400_000.0).max(1e-9)
}

/// Ranks agents by smoothed success rate, then completions, then name.
pub(crate) fn rank(mut result: Vec<AgentPerformance>) -> Vec<AgentPerformance> {
    result.sort_by(|a, b| {
        b.metrics
            .smoothed_success_rate
            .total_cmp(&a.metrics.smoothed_success_rate)
            .then(b.metrics.completed.cmp(&a.metrics.completed))
            .then(a.agent.cmp(&b.agent))
    });
    for (i, performance) in result.iter_mut().enumerate() {
        performance.rank = i + 1;
    }
    result
}

fn metrics(attempts: &[&Attempt], prior: f64, days: f64) -> Metrics {
    let mut tally = Tally::default();
    let mut cycle = Vec::new();
    let mut errors = Vec::new();
    for attempt in attempts {
        let (weight, hours, error) = weigh(attempt);
        tally.add(&weight, 1);
        cycle.extend(hours);
        errors.extend(error);
    }
    cycle.sort_by(f64::total_cmp);
    errors.sort_by(f64::total_cmp);
    finish(
        &tally,
        percentile(&cycle, 0.50),
        percentile(&cycle, 0.85),
        percentile(&errors, 0.5),
        prior,
        days,
    )
}

/// The metrics of a set of attempts from its exact sums and its percentiles, however they
/// were found: the one place both the attempts and their summaries become metrics.
pub(crate) fn finish(
    tally: &Tally,
    cycle_p50: Option<f64>,
    cycle_p85: Option<f64>,
    mdmre: Option<f64>,
    prior: f64,
    days: f64,
) -> Metrics {
    let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
    let (completed, total) = (count(tally.succeeded), count(tally.attempts));
    Metrics {
        completed,
        attempts: total,
        success_rate: (total > 0).then(|| f64::from(completed) / f64::from(total)),
        smoothed_success_rate: (f64::from(completed) + PRIOR_STRENGTH * prior)
            / (f64::from(total) + PRIOR_STRENGTH),
        first_pass_yield: (completed > 0).then(|| tally.first_pass as f64 / f64::from(completed)),
        retries: count(tally.retries),
        expired_leases: count(tally.expired),
        cycle_time_p50_hours: cycle_p50,
        cycle_time_p85_hours: cycle_p85,
        // Sums of log ratios in billionths, so the summaries' sums that go up and down with
        // re-estimates stay exact and agree with a sum over the attempts to the last digit.
        estimate_bias: (tally.ratios > 0)
            .then(|| tally.log_ratio as f64 / 1e9 / tally.ratios as f64),
        mdmre,
        throughput_per_day: f64::from(completed) / days,
        points_completed: tally.points as f64 / 1e6,
    }
}

/// The `q` quantile of sorted values by linear interpolation between closest ranks.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    Some(sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64))
}
