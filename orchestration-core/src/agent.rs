//! Agents: the pure model. Profiles, the hard filter that says why an agent cannot take a task,
//! the explainable score (capability fit, smoothed quality, shrunk speed, free capacity), the
//! ranking with its deterministic tie-breaks, optimal batch assignment over capacity slots
//! (Kuhn-Munkres, with a documented greedy fallback), and team assembly.
//!
//! The formulas follow the agent-scoring notes: quality is a Beta-posterior mean with a fleet
//! prior, so a new agent starts at the fleet mean; speed is a log ratio of actual to estimated
//! effort shrunk toward the fleet mean.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

mod performance;
pub mod summary;
#[cfg(test)]
mod tests;

pub(crate) use performance::percentile;
pub use performance::{AgentPerformance, Attempt, AttemptEnd, Metrics, performance};

/// Whether an agent takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentStatus {
    /// Takes work.
    #[default]
    Active,
    /// Temporarily takes no new work.
    Paused,
    /// Not reachable.
    Offline,
    /// Gone for good.
    Retired,
}

impl AgentStatus {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Paused => "paused",
            AgentStatus::Offline => "offline",
            AgentStatus::Retired => "retired",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<AgentStatus> {
        [
            AgentStatus::Active,
            AgentStatus::Paused,
            AgentStatus::Offline,
            AgentStatus::Retired,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    /// Unique name.
    pub name: String,
    /// Skills with levels from 1 to 5.
    pub capabilities: BTreeMap<String, u8>,
    /// How many tasks it may hold at once (its WIP limit).
    pub max_concurrent: u32,
    /// How many points it finishes on a working day.
    pub points_per_day: f64,
    /// Whether it takes work.
    pub status: AgentStatus,
    /// When the profile was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the agent last claimed or reported, to within a second.
    pub last_active_at: Option<DateTime<Utc>>,
}

impl AgentProfile {
    /// Why this agent cannot take a task needing `skills`, or `None` when it can.
    pub fn unmet_skill(&self, skills: &BTreeMap<String, u8>) -> Option<String> {
        skill_gap(&self.capabilities, skills).map(|gap| gap.to_string())
    }
}

/// The first skill in `required` that `capabilities` lacks or has below the level needed, as
/// a [`Rejection`]; `None` when every requirement is met. The one rule of qualification:
/// claims, handoffs, assignment, teams, sprint plans and workflow reports all ask it.
pub(crate) fn skill_gap(
    capabilities: &BTreeMap<String, u8>,
    required: &BTreeMap<String, u8>,
) -> Option<Rejection> {
    required
        .iter()
        .find_map(|(skill, &needed)| match capabilities.get(skill) {
            None => Some(Rejection::MissingSkill {
                skill: skill.clone(),
                needed,
            }),
            Some(&level) if level < needed => Some(Rejection::LowSkill {
                skill: skill.clone(),
                level,
                needed,
            }),
            Some(_) => None,
        })
}

/// The weights of the four score terms; they are normalised by their sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Capability fit.
    pub fit: f64,
    /// Smoothed success rate.
    pub quality: f64,
    /// Speed relative to estimates.
    pub speed: f64,
    /// Room under the WIP limit.
    pub free_capacity: f64,
}

impl Default for Weights {
    /// 0.40 fit, 0.30 quality, 0.10 speed, 0.20 free capacity.
    fn default() -> Self {
        Weights {
            fit: 0.40,
            quality: 0.30,
            speed: 0.10,
            free_capacity: 0.20,
        }
    }
}

impl Weights {
    /// Rejects negative, non-finite or all-zero weights.
    pub fn check(&self) -> Result<(), String> {
        let all = [self.fit, self.quality, self.speed, self.free_capacity];
        if all.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err("weights must be finite and not negative".into());
        }
        if all.iter().sum::<f64>() <= 0.0 {
            return Err("at least one weight must be positive".into());
        }
        Ok(())
    }
}

/// What an agent's record says about it, from the event log.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Record {
    /// Finished attempts that succeeded.
    pub succeeded: u32,
    /// Finished attempts in all (succeeded, failed, or lost to an expired lease).
    pub attempts: u32,
    /// Sum of `ln(actual / estimate)` over completions that reported their effort.
    pub log_ratio_sum: f64,
    /// How many completions reported their effort.
    pub log_ratio_count: u32,
}

/// The fleet's averages: the prior every agent's record is shrunk toward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fleet {
    /// Success rate over every agent's finished attempts (0.8 before any).
    pub success_rate: f64,
    /// Mean `ln(actual / estimate)` (0 before any).
    pub mean_log_ratio: f64,
}

/// Pseudo-observations of the quality prior.
const QUALITY_PRIOR_STRENGTH: f64 = 10.0;
/// Pseudo-observations of the speed prior.
const SPEED_PRIOR_STRENGTH: f64 = 5.0;
/// The success rate assumed before the fleet has any record.
const DEFAULT_SUCCESS_RATE: f64 = 0.8;

impl Fleet {
    /// The averages over `records`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Fleet {
        let (mut succeeded, mut attempts, mut log_sum, mut log_count) = (0u64, 0u64, 0.0, 0u64);
        for record in records {
            succeeded += u64::from(record.succeeded);
            attempts += u64::from(record.attempts);
            log_sum += record.log_ratio_sum;
            log_count += u64::from(record.log_ratio_count);
        }
        Fleet {
            success_rate: if attempts == 0 {
                DEFAULT_SUCCESS_RATE
            } else {
                succeeded as f64 / attempts as f64
            },
            mean_log_ratio: if log_count == 0 {
                0.0
            } else {
                log_sum / log_count as f64
            },
        }
    }
}

/// An agent as the scorer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The profile.
    pub profile: AgentProfile,
    /// Tasks it holds now (assigned or running).
    pub active: u32,
    /// Its record.
    pub record: Record,
}

/// What a task needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Needs {
    /// Skills and minimum levels.
    pub skills: BTreeMap<String, u8>,
    /// Size in points.
    pub estimate: f64,
}

/// Why an agent was filtered out.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// It is not active.
    NotActive(AgentStatus),
    /// It lacks a required skill.
    MissingSkill {
        /// The skill.
        skill: String,
        /// The level needed.
        needed: u8,
    },
    /// Its level in a skill is too low.
    LowSkill {
        /// The skill.
        skill: String,
        /// Its level.
        level: u8,
        /// The level needed.
        needed: u8,
    },
    /// It holds as many tasks as its WIP limit allows.
    AtCapacity {
        /// Tasks it holds.
        active: u32,
        /// Its WIP limit.
        max: u32,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NotActive(status) => write!(f, "it is {status}"),
            Rejection::MissingSkill { skill, needed } => {
                write!(f, "lacks skill `{skill}` (level {needed} needed)")
            }
            Rejection::LowSkill {
                skill,
                level,
                needed,
            } => {
                write!(f, "has `{skill}` at level {level}, {needed} needed")
            }
            Rejection::AtCapacity { active, max } => {
                write!(f, "holds {active} task(s), its WIP limit of {max}")
            }
        }
    }
}

/// The four terms of a score and their weighted sum, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakdown {
    /// Mean of `level / 5` over the required skills (1 when none are required).
    pub fit: f64,
    /// Beta-posterior mean success rate with the fleet prior.
    pub quality: f64,
    /// `min(1, exp(fleet mean - shrunk own mean))` of `ln(actual / estimate)`.
    pub speed: f64,
    /// `1 - active / max_concurrent`.
    pub free_capacity: f64,
    /// The weighted sum.
    pub score: f64,
    /// Finished attempts behind the quality term.
    pub observations: u32,
}

/// The hard filter: whether `candidate` may take a task with `needs`.
pub fn check(candidate: &Candidate, needs: &Needs) -> Result<(), Rejection> {
    let profile = &candidate.profile;
    if profile.status != AgentStatus::Active {
        return Err(Rejection::NotActive(profile.status));
    }
    if let Some(gap) = skill_gap(&profile.capabilities, &needs.skills) {
        return Err(gap);
    }
    if candidate.active >= profile.max_concurrent {
        return Err(Rejection::AtCapacity {
            active: candidate.active,
            max: profile.max_concurrent,
        });
    }
    Ok(())
}

/// The fit term: the mean of `level / 5` over the skills a task requires (1 when none are).
pub fn fit(profile: &AgentProfile, needs: &Needs) -> f64 {
    if needs.skills.is_empty() {
        return 1.0;
    }
    let sum: f64 = needs
        .skills
        .keys()
        .map(|skill| f64::from(profile.capabilities.get(skill).copied().unwrap_or(0)) / 5.0)
        .sum();
    sum / needs.skills.len() as f64
}

/// Scores `candidate` for a task with `needs`, as if it already held `extra` more tasks (the
/// batch assignment fills an agent's slots one after another).
pub fn score(
    candidate: &Candidate,
    needs: &Needs,
    fleet: &Fleet,
    weights: &Weights,
    extra: u32,
) -> Breakdown {
    let profile = &candidate.profile;
    let fit = fit(profile, needs);
    let record = &candidate.record;
    let quality = (f64::from(record.succeeded) + QUALITY_PRIOR_STRENGTH * fleet.success_rate)
        / (f64::from(record.attempts) + QUALITY_PRIOR_STRENGTH);
    let own = (record.log_ratio_sum + SPEED_PRIOR_STRENGTH * fleet.mean_log_ratio)
        / (f64::from(record.log_ratio_count) + SPEED_PRIOR_STRENGTH);
    let speed = (fleet.mean_log_ratio - own).exp().min(1.0);
    let max = f64::from(profile.max_concurrent.max(1));
    let free_capacity = (1.0 - f64::from(candidate.active + extra) / max).clamp(0.0, 1.0);
    let total = weights.fit + weights.quality + weights.speed + weights.free_capacity;
    let score = (weights.fit * fit
        + weights.quality * quality
        + weights.speed * speed
        + weights.free_capacity * free_capacity)
        / total;
    Breakdown {
        fit,
        quality,
        speed,
        free_capacity,
        score,
        observations: record.attempts,
    }
}

/// One agent's place in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The agent.
    pub agent: String,
    /// Why it scored what it did.
    pub breakdown: Breakdown,
}

/// Every agent, scored or rejected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranking {
    /// Agents that may take the task, best first.
    pub ranked: Vec<Ranked>,
    /// Agents filtered out, with the reason, by name.
    pub rejected: Vec<(String, Rejection)>,
}

/// Orders two candidates with equal scores: the one idle longest first (never active counts
/// as longest), then by name, so the same inputs always give the same order.
fn tie_break(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let idle = |c: &Candidate| c.profile.last_active_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
    idle(a)
        .cmp(&idle(b))
        .then_with(|| a.profile.name.cmp(&b.profile.name))
}

/// Ranks `candidates` for a task with `needs`.
pub fn rank(candidates: &[Candidate], needs: &Needs, weights: &Weights) -> Ranking {
    let fleet = Fleet::from_records(candidates.iter().map(|c| &c.record));
    let mut scored = Vec::new();
    let mut rejected = Vec::new();
    for candidate in candidates {
        match check(candidate, needs) {
            Ok(()) => scored.push((candidate, score(candidate, needs, &fleet, weights, 0))),
            Err(reason) => rejected.push((candidate.profile.name.clone(), reason)),
        }
    }
    scored.sort_by(|(a, x), (b, y)| y.score.total_cmp(&x.score).then_with(|| tie_break(a, b)));
    rejected.sort_by(|a, b| a.0.cmp(&b.0));
    let ranked = scored
        .into_iter()
        .map(|(candidate, breakdown)| Ranked {
            agent: candidate.profile.name.clone(),
            breakdown,
        })
        .collect();
    Ranking { ranked, rejected }
}

/// The result of a batch assignment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assignment {
    /// `(task index, agent name, breakdown)` for every task assigned.
    pub assigned: Vec<(usize, String, Breakdown)>,
    /// `(task index, reason)` for every task nobody could take.
    pub unassigned: Vec<(usize, String)>,
    /// Whether the greedy fallback was used instead of the optimal solver.
    pub greedy: bool,
}

/// Above this many task-slot pairs the batch assignment is greedy: Kuhn-Munkres is O(n³) and
/// takes about 50 ms at 1,000 × 1,000 on the reference machine.
pub const OPTIMAL_LIMIT: usize = 1_000_000;

/// Weight of a pair that must not be matched; far below any sum of real weights, so the solver
/// first maximises how many tasks are assigned, then their total score.
const INFEASIBLE: i64 = -1_000_000_000_000;

/// Assigns tasks to agents' free slots, maximising first the number of tasks assigned and then
/// the total score. An agent with `k` free slots under its WIP limit can take up to `k` tasks;
/// its `j`-th slot is scored as if it already held `j` more tasks, so load spreads.
pub fn assign(tasks: &[Needs], candidates: &[Candidate], weights: &Weights) -> Assignment {
    let fleet = Fleet::from_records(candidates.iter().map(|c| &c.record));
    // Slots: (candidate index, how many tasks it would hold before this one).
    let mut slots = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.profile.status != AgentStatus::Active {
            continue;
        }
        let free = candidate
            .profile
            .max_concurrent
            .saturating_sub(candidate.active);
        for extra in 0..free.min(tasks.len() as u32) {
            slots.push((index, extra));
        }
    }
    let weight = |task: usize, slot: usize| -> Option<(i64, Breakdown)> {
        let (index, extra) = slots[slot];
        let candidate = &candidates[index];
        let shifted = Candidate {
            active: candidate.active + extra,
            ..candidate.clone()
        };
        check(&shifted, &tasks[task]).ok()?;
        let breakdown = score(candidate, &tasks[task], &fleet, weights, extra);
        Some(((breakdown.score * 1e6).round() as i64, breakdown))
    };
    let mut assignment = Assignment::default();
    let pairs: Vec<(usize, usize)> = if tasks.is_empty() || slots.is_empty() {
        Vec::new()
    } else if tasks.len() * slots.len() > OPTIMAL_LIMIT {
        assignment.greedy = true;
        greedy(tasks.len(), slots.len(), |t, s| {
            weight(t, s).map(|(w, _)| w)
        })
    } else {
        optimal(tasks.len(), slots.len(), |t, s| {
            weight(t, s).map(|(w, _)| w)
        })
    };
    let mut taken = vec![false; tasks.len()];
    for (task, slot) in pairs {
        if let Some((_, breakdown)) = weight(task, slot) {
            taken[task] = true;
            assignment.assigned.push((
                task,
                candidates[slots[slot].0].profile.name.clone(),
                breakdown,
            ));
        }
    }
    assignment.assigned.sort_by_key(|(task, _, _)| *task);
    for (task, needs) in tasks.iter().enumerate().filter(|(task, _)| !taken[*task]) {
        assignment
            .unassigned
            .push((task, why_unassigned(needs, candidates)));
    }
    assignment
}

/// Kuhn-Munkres on the task × slot matrix (transposed when tasks outnumber slots, since the
/// solver needs rows ≤ columns). Returns the feasible (task, slot) pairs of the optimum.
fn optimal(
    tasks: usize,
    slots: usize,
    weight: impl Fn(usize, usize) -> Option<i64>,
) -> Vec<(usize, usize)> {
    use pathfinding::kuhn_munkres::kuhn_munkres;
    use pathfinding::matrix::Matrix;
    let feasible = |t, s| weight(t, s).unwrap_or(INFEASIBLE);
    if tasks <= slots {
        let matrix = Matrix::from_fn(tasks, slots, |(t, s)| feasible(t, s));
        let (_, columns) = kuhn_munkres(&matrix);
        columns
            .into_iter()
            .enumerate()
            .filter(|&(t, s)| matrix[(t, s)] > INFEASIBLE)
            .collect()
    } else {
        let matrix = Matrix::from_fn(slots, tasks, |(s, t)| feasible(t, s));
        let (_, columns) = kuhn_munkres(&matrix);
        columns
            .into_iter()
            .enumerate()
            .filter(|&(s, t)| matrix[(s, t)] > INFEASIBLE)
            .map(|(s, t)| (t, s))
            .collect()
    }
}

/// The best remaining pair first, until no feasible pair is left: at least half the optimum's
/// total weight, in O(n log n) over the feasible pairs.
fn greedy(
    tasks: usize,
    slots: usize,
    weight: impl Fn(usize, usize) -> Option<i64>,
) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(i64, usize, usize)> = (0..tasks)
        .flat_map(|t| (0..slots).map(move |s| (t, s)))
        .filter_map(|(t, s)| weight(t, s).map(|w| (w, t, s)))
        .collect();
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut task_done, mut slot_done) = (vec![false; tasks], vec![false; slots]);
    let mut chosen = Vec::new();
    for (_, t, s) in pairs {
        if !task_done[t] && !slot_done[s] {
            task_done[t] = true;
            slot_done[s] = true;
            chosen.push((t, s));
        }
    }
    chosen
}

/// Why no agent took a task: the first filter reason shared by all, or that the qualified ones
/// are full.
fn why_unassigned(needs: &Needs, candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "no agent is registered".into();
    }
    let qualified = candidates.iter().any(|c| {
        matches!(
            check(
                &Candidate {
                    active: 0,
                    ..c.clone()
                },
                needs
            ),
            Ok(())
        )
    });
    if qualified {
        return "every qualified agent's slots went to other tasks or are full".into();
    }
    let needs: Vec<String> = needs
        .skills
        .iter()
        .map(|(s, l)| format!("{s}>={l}"))
        .collect();
    format!("no active agent has the skills: {}", needs.join(", "))
}

/// The smallest team that covers a workflow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Team {
    /// The members, by name.
    pub members: Vec<String>,
    /// Their WIP limits summed.
    pub capacity: u32,
    /// Skill requirements no active agent meets.
    pub uncovered: Vec<String>,
    /// True when the search was exhaustive (small fleets); false when greedy.
    pub minimal: bool,
}

/// Agents above which team assembly is greedy set cover instead of an exhaustive search.
pub const EXHAUSTIVE_TEAM_LIMIT: usize = 16;

/// The smallest set of active agents such that every requirement (a task's skill levels) has a
/// qualified member and their WIP limits sum to at least `capacity_needed`.
pub fn assemble_team(
    requirements: &[BTreeMap<String, u8>],
    candidates: &[Candidate],
    capacity_needed: u32,
) -> Team {
    let active: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.profile.status == AgentStatus::Active)
        .collect();
    let meets = |c: &Candidate, need: &BTreeMap<String, u8>| {
        skill_gap(&c.profile.capabilities, need).is_none()
    };
    let mut distinct: Vec<&BTreeMap<String, u8>> = Vec::new();
    for need in requirements {
        if !distinct.contains(&need) {
            distinct.push(need);
        }
    }
    let (coverable, uncovered): (Vec<_>, Vec<_>) = distinct
        .into_iter()
        .partition(|need| active.iter().any(|c| meets(c, need)));
    let uncovered = uncovered
        .into_iter()
        .map(|need| {
            need.iter()
                .map(|(s, l)| format!("{s}>={l}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let covers = |team: &[&Candidate]| {
        coverable
            .iter()
            .all(|need| team.iter().any(|c| meets(c, need)))
            && team.iter().map(|c| c.profile.max_concurrent).sum::<u32>() >= capacity_needed
    };
    let to_team = |members: Vec<&Candidate>, minimal: bool, uncovered: Vec<String>| {
        let mut names: Vec<String> = members.iter().map(|c| c.profile.name.clone()).collect();
        names.sort();
        Team {
            capacity: members.iter().map(|c| c.profile.max_concurrent).sum(),
            members: names,
            uncovered,
            minimal,
        }
    };
    if active.len() <= EXHAUSTIVE_TEAM_LIMIT {
        // Smallest size first; within a size, the largest capacity, then names, for determinism.
        let n = active.len();
        let mut best: Option<Vec<&Candidate>> = None;
        for size in 0..=n {
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize != size {
                    continue;
                }
                let team: Vec<&Candidate> = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| active[i])
                    .collect();
                if covers(&team) {
                    let capacity = |t: &Vec<&Candidate>| {
                        t.iter().map(|c| c.profile.max_concurrent).sum::<u32>()
                    };
                    if best.as_ref().is_none_or(|b| capacity(&team) > capacity(b)) {
                        best = Some(team);
                    }
                }
            }
            if let Some(team) = best {
                return to_team(team, true, uncovered);
            }
        }
        return to_team(active, true, uncovered);
    }
    // Greedy set cover: repeatedly add the agent covering the most uncovered requirements
    // (then the largest WIP limit), until covered and capacity is met.
    let mut team: Vec<&Candidate> = Vec::new();
    let mut rest = active.clone();
    while !covers(&team) && !rest.is_empty() {
        let gain = |c: &Candidate| {
            coverable
                .iter()
                .filter(|need| !team.iter().any(|m| meets(m, need)) && meets(c, need))
                .count()
        };
        let (index, _) = rest
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                gain(a)
                    .cmp(&gain(b))
                    .then(a.profile.max_concurrent.cmp(&b.profile.max_concurrent))
                    .then(b.profile.name.cmp(&a.profile.name))
            })
            .expect("rest is not empty");
        team.push(rest.remove(index));
    }
    to_team(team, false, uncovered)
}

/// A task an agent holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// `workflow/key`.
    pub task: String,
    /// Assigned (leased, not started) or running.
    pub started: bool,
    /// Priority, 0 to 100.
    pub priority: i64,
    /// What the task needs.
    pub needs: Needs,
}

/// One agent's load.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The agent.
    pub agent: String,
    /// Whether it takes work.
    pub status: AgentStatus,
    /// Tasks it holds, running first.
    pub tasks: Vec<String>,
    /// Points of those tasks.
    pub points_in_flight: f64,
    /// Its WIP limit.
    pub max_concurrent: u32,
    /// Held tasks over the WIP limit (1 is full).
    pub utilisation: f64,
    /// Tasks delegated to it and not started yet.
    pub queued: u32,
    /// Its part of the active sprint it is a member of.
    pub sprint: Option<crate::sprint::SprintLoad>,
}

/// A proposal to move a delegated, not yet started task to another agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// `workflow/key`.
    pub task: String,
    /// Who holds it now.
    pub from: String,
    /// Who should.
    pub to: String,
    /// Why `to`: its score for the task.
    pub breakdown: Breakdown,
    /// Why the task moves.
    pub reason: String,
}

/// The fleet's load, who is over or under, and how to even it out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workload {
    /// Every profiled agent, by name.
    pub agents: Vec<Load>,
    /// Agents holding more than their WIP limit, or holding delegated work while not active.
    pub overloaded: Vec<String>,
    /// Active agents holding nothing.
    pub idle: Vec<String>,
    /// Moves of delegated, not started tasks from overloaded agents to qualified ones with room.
    pub proposals: Vec<Move>,
}

/// Measures each agent's load and proposes moves that relieve overloaded agents without ever
/// breaking a WIP limit or a skill requirement. Only tasks not started move: running work stays
/// with its agent. Greedy: each surplus task goes to the best-scoring qualified agent with a
/// free slot, highest priority first.
pub fn workload(
    candidates: &[Candidate],
    held: &BTreeMap<String, Vec<Held>>,
    weights: &Weights,
) -> Workload {
    let fleet = Fleet::from_records(candidates.iter().map(|c| &c.record));
    let mut result = Workload::default();
    let mut incoming: BTreeMap<&str, u32> = BTreeMap::new();
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
    for candidate in &sorted {
        let profile = &candidate.profile;
        let mut tasks: Vec<&Held> = held
            .get(&profile.name)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        tasks.sort_by(|a, b| b.started.cmp(&a.started).then(a.task.cmp(&b.task)));
        let count = tasks.len() as u32;
        let queued = tasks.iter().filter(|t| !t.started).count() as u32;
        result.agents.push(Load {
            agent: profile.name.clone(),
            status: profile.status,
            tasks: tasks.iter().map(|t| t.task.clone()).collect(),
            points_in_flight: tasks.iter().map(|t| t.needs.estimate).sum(),
            max_concurrent: profile.max_concurrent,
            utilisation: f64::from(count) / f64::from(profile.max_concurrent.max(1)),
            queued,
            sprint: None,
        });
        let inactive = profile.status != AgentStatus::Active;
        if count > profile.max_concurrent || (inactive && queued > 0) {
            result.overloaded.push(profile.name.clone());
        } else if !inactive && count == 0 {
            result.idle.push(profile.name.clone());
        }
    }
    for name in result.overloaded.clone() {
        let Some(candidate) = candidates.iter().find(|c| c.profile.name == name) else {
            continue;
        };
        let inactive = candidate.profile.status != AgentStatus::Active;
        let mut movable: Vec<&Held> = held
            .get(&name)
            .map(|v| v.iter().filter(|t| !t.started).collect())
            .unwrap_or_default();
        movable.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.task.cmp(&b.task)));
        let held_count = held.get(&name).map_or(0, Vec::len) as u32;
        let surplus = if inactive {
            movable.len()
        } else {
            held_count.saturating_sub(candidate.profile.max_concurrent) as usize
        };
        for task in movable.into_iter().take(surplus) {
            let best = candidates
                .iter()
                .filter(|c| c.profile.name != name)
                .filter_map(|c| {
                    let extra = incoming.get(c.profile.name.as_str()).copied().unwrap_or(0);
                    let shifted = Candidate {
                        active: c.active + extra,
                        ..c.clone()
                    };
                    check(&shifted, &task.needs).ok()?;
                    Some((c, score(c, &task.needs, &fleet, weights, extra)))
                })
                .max_by(|(a, x), (b, y)| x.score.total_cmp(&y.score).then_with(|| tie_break(b, a)));
            if let Some((target, breakdown)) = best {
                *incoming.entry(target.profile.name.as_str()).or_default() += 1;
                result.proposals.push(Move {
                    task: task.task.clone(),
                    from: name.clone(),
                    to: target.profile.name.clone(),
                    breakdown,
                    reason: if inactive {
                        format!("`{name}` is {}", candidate.profile.status)
                    } else {
                        format!(
                            "`{name}` holds {held_count} task(s) over a WIP limit of {}",
                            candidate.profile.max_concurrent
                        )
                    },
                });
            }
        }
    }
    result
}
