//! Agent performance over a time window, from the event log: completions, success rates raw and
//! smoothed, first-pass yield, retries, expired leases, cycle times, estimate accuracy,
//! throughput, a breakdown by skill, a ranking, and the trend against the window before.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

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
    let length = to - from;
    let previous_from = from - length;
    let days = (length.num_milliseconds() as f64 / 86_400_000.0).max(1e-9);
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
    let mut result: Vec<AgentPerformance> = by_agent
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
    let succeeded: Vec<&&Attempt> = attempts
        .iter()
        .filter(|a| a.end == AttemptEnd::Succeeded)
        .collect();
    let completed = succeeded.len() as u32;
    let total = attempts.len() as u32;
    let mut cycle: Vec<f64> = succeeded
        .iter()
        .filter_map(|a| {
            a.started_at
                // A clock that jumped back between start and end would make the time
                // negative; the attempt took no measurable time instead.
                .map(|s| (a.ended_at - s).num_milliseconds().max(0) as f64 / 3_600_000.0)
        })
        .collect();
    cycle.sort_by(f64::total_cmp);
    let ratios: Vec<(f64, f64)> = succeeded
        .iter()
        .filter_map(|a| {
            a.actual
                .filter(|&x| x > 0.0 && a.estimate > 0.0)
                .map(|x| (x, a.estimate))
        })
        .collect();
    let mut errors: Vec<f64> = ratios.iter().map(|(a, e)| (a - e).abs() / a).collect();
    errors.sort_by(f64::total_cmp);
    Metrics {
        completed,
        attempts: total,
        success_rate: (total > 0).then(|| f64::from(completed) / f64::from(total)),
        smoothed_success_rate: (f64::from(completed) + PRIOR_STRENGTH * prior)
            / (f64::from(total) + PRIOR_STRENGTH),
        first_pass_yield: (completed > 0).then(|| {
            succeeded.iter().filter(|a| a.number == 1).count() as f64 / f64::from(completed)
        }),
        retries: attempts.iter().filter(|a| a.end.is_retry()).count() as u32,
        expired_leases: attempts.iter().filter(|a| a.end.is_expired_lease()).count() as u32,
        cycle_time_p50_hours: percentile(&cycle, 0.50),
        cycle_time_p85_hours: percentile(&cycle, 0.85),
        estimate_bias: (!ratios.is_empty())
            .then(|| ratios.iter().map(|(a, e)| (a / e).ln()).sum::<f64>() / ratios.len() as f64),
        mdmre: percentile(&errors, 0.5),
        throughput_per_day: f64::from(completed) / days,
        points_completed: succeeded.iter().map(|a| a.estimate).sum(),
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
