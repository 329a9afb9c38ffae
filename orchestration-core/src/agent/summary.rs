//! Agent performance from summaries: what the attempts of one agent (and one skill) in one
//! time bucket add up to, kept as they end so that a window reads a few rows per agent and
//! day instead of every attempt, and merged here into the same metrics [`performance`]
//! computes from the attempts themselves.
//!
//! A [`Summary`] is exact where the metric is a sum ([`Tally`]: counts, points in millionths,
//! log ratios in billionths, so sums that go up and down stay exact) and a [`Sketch`] where
//! it is a percentile (cycle time p50/p85, MdMRE): log-scale bins whose value is within
//! [`RELATIVE_ERROR`] of every value they hold, which merge by adding counts and unmerge by
//! subtracting them. Percentiles read from a sketch are within that relative error of the
//! exact ones.
//!
//! A window `(from, to]` is the whole days inside it, the whole hours inside what is left,
//! and the attempts themselves at the edges ([`cover`]); the store loads those, and
//! [`performance_of`] merges them and computes the metrics.
//!
//! [`performance`]: super::performance

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::AgentPerformance;
use super::performance::{Attempt, AttemptEnd, Metrics, days, finish, rank};

/// The most a percentile read from a sketch differs from the exact one, relative to it.
pub const RELATIVE_ERROR: f64 = 0.01;

/// The ratio of one bin's value to the one before, `(1 + α)²`: bin `i` holds the values from
/// `γ^(i - 1/2)` to `γ^(i + 1/2)` and reads as `γ^i`, within `α` of each, and exactly 1 for 1.
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) * (1.0 + RELATIVE_ERROR);

/// An hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// A day, in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The lengths of the buckets summaries are kept for, longest first.
pub const SPANS: [i64; 2] = [DAY_MS, HOUR_MS];

/// The start of the bucket of length `span` that holds an attempt that ended at `ended_at`
/// (milliseconds since the epoch): buckets are `(start, start + span]`, as windows are.
pub fn bucket(ended_at: i64, span: i64) -> i64 {
    (ended_at - 1).div_euclid(span) * span
}

/// Exact sums over a set of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Attempts that ended.
    pub attempts: i64,
    /// Those that succeeded.
    pub succeeded: i64,
    /// Those that succeeded at the first attempt.
    pub first_pass: i64,
    /// Failures another attempt followed.
    pub retries: i64,
    /// Leases that ran out.
    pub expired: i64,
    /// The estimates of the succeeded, in millionths of a point.
    pub points: i64,
    /// The succeeded that reported an effort, both it and the estimate above zero.
    pub ratios: i64,
    /// The sum of their `ln(actual / estimate)`, in billionths.
    pub log_ratio: i64,
}

impl Tally {
    /// Adds `sign` times `other`.
    pub fn add(&mut self, other: &Tally, sign: i64) {
        self.attempts += sign * other.attempts;
        self.succeeded += sign * other.succeeded;
        self.first_pass += sign * other.first_pass;
        self.retries += sign * other.retries;
        self.expired += sign * other.expired;
        self.points += sign * other.points;
        self.ratios += sign * other.ratios;
        self.log_ratio += sign * other.log_ratio;
    }
}

/// An estimate in millionths of a point.
pub(crate) fn micro(points: f64) -> i64 {
    (points * 1e6).round() as i64
}

/// `ln(actual / estimate)` in billionths.
pub(crate) fn nano_log_ratio(actual: f64, estimate: f64) -> i64 {
    ((actual / estimate).ln() * 1e9).round() as i64
}

/// What one attempt adds to the sums, and its cycle time in hours and relative error of its
/// estimate when it has them.
pub(crate) fn weigh(attempt: &Attempt) -> (Tally, Option<f64>, Option<f64>) {
    let mut tally = Tally {
        attempts: 1,
        retries: i64::from(attempt.end.is_retry()),
        expired: i64::from(attempt.end.is_expired_lease()),
        ..Tally::default()
    };
    if attempt.end != AttemptEnd::Succeeded {
        return (tally, None, None);
    }
    tally.succeeded = 1;
    tally.first_pass = i64::from(attempt.number == 1);
    tally.points = micro(attempt.estimate);
    let cycle = attempt.started_at.map(|s| {
        // A clock that jumped back between start and end would make the time negative; the
        // attempt took no measurable time instead.
        (attempt.ended_at - s).num_milliseconds().max(0) as f64 / 3_600_000.0
    });
    let error = attempt
        .actual
        .filter(|&x| x > 0.0 && attempt.estimate > 0.0)
        .map(|actual| {
            tally.ratios = 1;
            tally.log_ratio = nano_log_ratio(actual, attempt.estimate);
            (actual - attempt.estimate).abs() / actual
        });
    (tally, cycle, error)
}

/// Counts of values in log-scale bins: bin `i` holds the values around `γ^i`, within a factor
/// of `√γ`, and reads as `γ^i`, within [`RELATIVE_ERROR`] of each; zeros have a bin of their
/// own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sketch {
    zeros: i64,
    /// `(bin, count)`, by bin, no count zero.
    bins: Vec<(i32, i64)>,
}

impl Sketch {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.zeros == 0 && self.bins.is_empty()
    }

    /// Adds `sign` times one `value` (at least zero).
    pub fn insert(&mut self, value: f64, sign: i64) {
        if value <= 0.0 || !value.is_finite() {
            self.zeros += sign;
            return;
        }
        let bin = (value.ln() / GAMMA.ln()).round() as i32;
        match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
            Ok(i) => {
                self.bins[i].1 += sign;
                if self.bins[i].1 == 0 {
                    self.bins.remove(i);
                }
            }
            Err(i) => self.bins.insert(i, (bin, sign)),
        }
    }

    /// Adds `sign` times every count of `other`.
    pub fn merge(&mut self, other: &Sketch, sign: i64) {
        self.zeros += sign * other.zeros;
        if other.bins.is_empty() {
            return;
        }
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (mut mine, mut theirs) = (self.bins.iter().peekable(), other.bins.iter().peekable());
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (Some(&&(a, n)), Some(&&(b, m))) if a == b => {
                    mine.next();
                    theirs.next();
                    (a, n + sign * m)
                }
                (Some(&&(a, n)), Some(&&(b, _))) if a < b => {
                    mine.next();
                    (a, n)
                }
                (Some(&&(a, n)), None) => {
                    mine.next();
                    (a, n)
                }
                (_, Some(&&(b, m))) => {
                    theirs.next();
                    (b, sign * m)
                }
                (None, None) => break,
            };
            if next.1 != 0 {
                merged.push(next);
            }
        }
        self.bins = merged;
    }

    fn count(&self) -> i64 {
        self.zeros + self.bins.iter().map(|&(_, n)| n).sum::<i64>()
    }

    /// The value of rank `rank` (from 0) in order.
    fn at(&self, rank: i64) -> f64 {
        if rank < self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for &(bin, n) in &self.bins {
            seen += n;
            if rank < seen {
                return GAMMA.powi(bin);
            }
        }
        self.bins.last().map_or(0.0, |&(bin, _)| GAMMA.powi(bin))
    }

    /// The `q` quantile, interpolated between closest ranks as the exact percentile is.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n <= 0 {
            return None;
        }
        let position = q * (n - 1) as f64;
        let (low, high) = (position.floor(), position.ceil());
        let (a, b) = (self.at(low as i64), self.at(high as i64));
        Some(a + (b - a) * (position - low))
    }

    /// The sketch as bytes: the zeros, then each bin's distance from the one before and its
    /// count, as zigzag varints (a few bytes a bin).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 3 * self.bins.len());
        varint(&mut out, self.zeros);
        let mut last = 0i64;
        for &(bin, n) in &self.bins {
            varint(&mut out, i64::from(bin) - last);
            varint(&mut out, n);
            last = i64::from(bin);
        }
        out
    }

    /// The sketch [`Sketch::encode`] made `bytes` from; `None` for bytes it cannot have made.
    /// Empty bytes are the empty sketch.
    pub fn decode(mut bytes: &[u8]) -> Option<Sketch> {
        let mut sketch = Sketch::default();
        if bytes.is_empty() {
            return Some(sketch);
        }
        sketch.zeros = read_varint(&mut bytes)?;
        let mut last = 0i64;
        while !bytes.is_empty() {
            last += read_varint(&mut bytes)?;
            let n = read_varint(&mut bytes)?;
            sketch.bins.push((i32::try_from(last).ok()?, n));
        }
        Some(sketch)
    }
}

fn varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

/// What a set of attempts adds up to: exact sums and the sketches of its percentiles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// The exact sums.
    pub tally: Tally,
    /// Cycle times of the succeeded with a known start, in hours.
    pub cycle: Sketch,
    /// `|actual - estimate| / actual` of those counted in `tally.ratios`.
    pub errors: Sketch,
}

impl Summary {
    /// What one attempt adds.
    pub fn of(attempt: &Attempt) -> Summary {
        let (tally, cycle, error) = weigh(attempt);
        let mut summary = Summary {
            tally,
            ..Summary::default()
        };
        if let Some(hours) = cycle {
            summary.cycle.insert(hours, 1);
        }
        if let Some(error) = error {
            summary.errors.insert(error, 1);
        }
        summary
    }

    /// Adds `sign` times `other`.
    pub fn add(&mut self, other: &Summary, sign: i64) {
        self.tally.add(&other.tally, sign);
        self.cycle.merge(&other.cycle, sign);
        self.errors.merge(&other.errors, sign);
    }

    /// Whether adding it changes nothing.
    pub fn is_zero(&self) -> bool {
        self.tally == Tally::default() && self.cycle.is_empty() && self.errors.is_empty()
    }

    fn metrics(&self, prior: f64, days: f64) -> Metrics {
        finish(
            &self.tally,
            self.cycle.percentile(0.50),
            self.cycle.percentile(0.85),
            self.errors.percentile(0.5),
            prior,
            days,
        )
    }
}

/// One agent's summary over a window, overall and per skill.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSummary {
    /// Every attempt of the agent.
    pub all: Summary,
    /// The attempts on tasks that require each skill.
    pub skills: BTreeMap<String, Summary>,
}

/// The summaries of every agent over one window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowSummary {
    /// By agent.
    pub agents: BTreeMap<String, AgentSummary>,
}

impl WindowSummary {
    /// Adds `summary`, the summary of `agent`'s attempts (on tasks that require `skill`, or
    /// all of them when `None`).
    pub fn add(&mut self, agent: &str, skill: Option<&str>, summary: &Summary) {
        let slot = match self.agents.get_mut(agent) {
            Some(slot) => slot,
            None => self.agents.entry(agent.to_owned()).or_default(),
        };
        match skill {
            None => slot.all.add(summary, 1),
            Some(skill) => match slot.skills.get_mut(skill) {
                Some(kept) => kept.add(summary, 1),
                None => {
                    slot.skills.insert(skill.to_owned(), summary.clone());
                }
            },
        }
    }

    /// Adds one attempt, overall and under each skill of its task.
    pub fn add_attempt(&mut self, attempt: &Attempt) {
        let summary = Summary::of(attempt);
        self.add(&attempt.agent, None, &summary);
        for skill in &attempt.skills {
            self.add(&attempt.agent, Some(skill), &summary);
        }
    }

    /// The fleet's success rate, the prior of the smoothed rates: 0.8 with no attempts.
    fn fleet_rate(&self) -> f64 {
        let (ok, all) = self.agents.values().fold((0, 0), |(ok, all), a| {
            (ok + a.all.tally.succeeded, all + a.all.tally.attempts)
        });
        if all <= 0 {
            0.8
        } else {
            ok as f64 / all as f64
        }
    }
}

/// The pieces a window `(after, to]` (milliseconds) is read from: whole days, whole hours and
/// the attempts themselves at the edges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cover {
    /// `(span, first bucket, end)`: the buckets of length `span` that start in
    /// `[first, end)`, which together are `(first, end]`.
    pub buckets: Vec<(i64, i64, i64)>,
    /// `(after, to]` ranges read attempt by attempt.
    pub exact: Vec<(i64, i64)>,
}

/// How [`performance_of`] reads the window `(after, to]`: the whole days inside it, then the
/// whole hours inside what is left at each end, then the attempts in what is left of that, at
/// most an hour at each end.
pub fn cover(after: i64, to: i64) -> Cover {
    let mut cover = Cover::default();
    let mut pieces = vec![(after, to)];
    for span in SPANS {
        let mut left = Vec::new();
        for (a, b) in pieces {
            let first = a.div_euclid(span) * span + if a.rem_euclid(span) == 0 { 0 } else { span };
            let end = b.div_euclid(span) * span;
            if first < end {
                cover.buckets.push((span, first, end));
                left.extend([(a, first), (end, b)].into_iter().filter(|(x, y)| x < y));
            } else {
                left.push((a, b));
            }
        }
        pieces = left;
    }
    cover.exact = pieces.into_iter().filter(|(a, b)| a < b).collect();
    cover
}

/// Agent performance over `(from, to]` from the summaries of that window and of the one of
/// the same length before it: what [`performance`](super::performance()) computes from the
/// attempts, the sums exactly, the percentiles within [`RELATIVE_ERROR`].
pub fn performance_of(
    current: &WindowSummary,
    previous: &WindowSummary,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<AgentPerformance> {
    let days = days(from, to);
    let (prior_now, prior_before) = (current.fleet_rate(), previous.fleet_rate());
    let result = current
        .agents
        .iter()
        .filter(|(_, a)| a.all.tally.attempts > 0)
        .map(|(agent, own)| AgentPerformance {
            agent: agent.clone(),
            metrics: own.all.metrics(prior_now, days),
            by_skill: own
                .skills
                .iter()
                .filter(|(_, s)| s.tally.attempts > 0)
                .map(|(skill, s)| (skill.clone(), s.metrics(prior_now, days)))
                .collect(),
            previous: previous
                .agents
                .get(agent)
                .map_or_else(Summary::default, |a| a.all.clone())
                .metrics(prior_before, days),
            rank: 0,
        })
        .collect();
    rank(result)
}

/// Checks that `summarised`, performance read from summaries, says what `exact`, performance
/// from the attempts, says: every field equal but the percentiles, and those within
/// [`RELATIVE_ERROR`] of the exact ones.
#[cfg(test)]
pub(crate) fn assert_agrees(summarised: &[AgentPerformance], exact: &[AgentPerformance]) {
    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= RELATIVE_ERROR * b.abs() * (1.0 + 1e-9) + 1e-12,
            (a, b) => a == b,
        }
    }
    fn same(a: &Metrics, b: &Metrics) -> bool {
        let plain = |m: &Metrics| Metrics {
            cycle_time_p50_hours: None,
            cycle_time_p85_hours: None,
            mdmre: None,
            ..m.clone()
        };
        plain(a) == plain(b)
            && close(a.cycle_time_p50_hours, b.cycle_time_p50_hours)
            && close(a.cycle_time_p85_hours, b.cycle_time_p85_hours)
            && close(a.mdmre, b.mdmre)
    }
    let shown = format!("{summarised:#?}\nexact: {exact:#?}");
    assert_eq!(summarised.len(), exact.len(), "{shown}");
    for (s, e) in summarised.iter().zip(exact) {
        assert_eq!((&s.agent, s.rank), (&e.agent, e.rank), "{shown}");
        assert!(same(&s.metrics, &e.metrics), "{shown}");
        assert!(same(&s.previous, &e.previous), "{shown}");
        assert_eq!(
            s.by_skill.keys().collect::<Vec<_>>(),
            e.by_skill.keys().collect::<Vec<_>>(),
            "{shown}"
        );
        for (a, b) in s.by_skill.values().zip(e.by_skill.values()) {
            assert!(same(a, b), "{shown}");
        }
    }
}
