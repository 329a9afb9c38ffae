//! Tests of the agent model: hand-computed score breakdowns, rejections, tie-breaks, batch
//! assignment against brute force, and team assembly.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn agent(name: &str, skills: &[(&str, u8)], max: u32, active: u32, record: Record) -> Candidate {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Candidate {
        profile: AgentProfile {
            name: name.into(),
            capabilities: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
            max_concurrent: max,
            points_per_day: 5.0,
            status: AgentStatus::Active,
            created_at: at,
            updated_at: at,
            last_active_at: None,
        },
        active,
        record,
    }
}

fn record(succeeded: u32, attempts: u32, log_ratios: &[f64]) -> Record {
    Record {
        succeeded,
        attempts,
        log_ratio_sum: log_ratios.iter().sum(),
        log_ratio_count: log_ratios.len() as u32,
    }
}

fn needs(skills: &[(&str, u8)]) -> Needs {
    Needs {
        skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
        estimate: 1.0,
    }
}

/// Renders a ranking as lines `agent score fit quality speed free` (4 decimals), then the
/// rejections, and compares with `expected`.
#[track_caller]
fn check_ranking(candidates: &[Candidate], needs: &Needs, expected: &str) {
    let ranking = rank(candidates, needs, &Weights::default());
    let mut lines: Vec<String> = ranking
        .ranked
        .iter()
        .map(|r| {
            let b = r.breakdown;
            format!(
                "{} {:.4} F{:.4} Q{:.4} S{:.4} U{:.4} n{}",
                r.agent, b.score, b.fit, b.quality, b.speed, b.free_capacity, b.observations
            )
        })
        .collect();
    lines.extend(
        ranking
            .rejected
            .iter()
            .map(|(name, why)| format!("{name} rejected: {why}")),
    );
    assert_eq!(lines.join("\n"), expected.trim());
}

#[test]
fn scores_match_a_hand_computed_example() {
    let ln2 = 2f64.ln();
    // Fleet: 16 of 20 attempts succeeded (p0 = 0.8); mean log ratio ln2/2 over 4 completions.
    let candidates = vec![
        // F = (5/5 + 3/5)/2 = 0.8; Q = (9 + 8)/20 = 0.85; own = (2 ln2 + 5 ln2/2)/7, so
        // S = exp(ln2/2 - own) = 0.9057; U = 1 - 1/4 = 0.75.
        agent(
            "ada",
            &[("rust", 5), ("sql", 3)],
            4,
            1,
            record(9, 10, &[ln2, ln2]),
        ),
        // F = (0.6 + 0.8)/2 = 0.7; Q = (7 + 8)/20 = 0.75; faster than the fleet: S = 1; U = 1.
        agent(
            "cy",
            &[("rust", 3), ("sql", 4)],
            2,
            0,
            record(7, 10, &[0.0, 0.0]),
        ),
        // A newcomer starts at the fleet mean: Q = 0.8, S = 1.
        agent("new", &[("rust", 4), ("sql", 3)], 3, 0, Record::default()),
        agent("full", &[("rust", 5), ("sql", 5)], 2, 2, Record::default()),
        agent("frontend", &[("css", 5)], 3, 0, Record::default()),
        agent(
            "junior",
            &[("rust", 2), ("sql", 5)],
            3,
            0,
            Record::default(),
        ),
    ];
    let mut paused = agent(
        "paused",
        &[("rust", 5), ("sql", 5)],
        3,
        0,
        Record::default(),
    );
    paused.profile.status = AgentStatus::Paused;
    let mut all = candidates;
    all.push(paused);
    check_ranking(
        &all,
        &needs(&[("rust", 3), ("sql", 2)]),
        "
new 0.8200 F0.7000 Q0.8000 S1.0000 U1.0000 n0
ada 0.8156 F0.8000 Q0.8500 S0.9057 U0.7500 n10
cy 0.8050 F0.7000 Q0.7500 S1.0000 U1.0000 n10
frontend rejected: lacks skill `rust` (level 3 needed)
full rejected: holds 2 task(s), its WIP limit of 2
junior rejected: has `rust` at level 2, 3 needed
paused rejected: it is paused
",
    );
}

#[test]
fn equal_scores_go_to_the_longest_idle_then_by_name() {
    let mut recent = agent("a-recent", &[], 3, 0, Record::default());
    recent.profile.last_active_at = Some(Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap());
    let mut earlier = agent("z-earlier", &[], 3, 0, Record::default());
    earlier.profile.last_active_at = Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let never_b = agent("b-never", &[], 3, 0, Record::default());
    let never_a = agent("a-never", &[], 3, 0, Record::default());
    let ranking = rank(
        &[recent, earlier, never_b, never_a],
        &needs(&[]),
        &Weights::default(),
    );
    let order: Vec<&str> = ranking.ranked.iter().map(|r| r.agent.as_str()).collect();
    assert_eq!(order, ["a-never", "b-never", "z-earlier", "a-recent"]);
}

#[test]
fn weights_change_the_order_and_bad_weights_are_rejected() {
    let strong = agent("strong", &[("go", 5)], 1, 0, record(2, 10, &[]));
    let reliable = agent("reliable", &[("go", 3)], 1, 0, record(10, 10, &[]));
    let quality_only = Weights {
        fit: 0.0,
        quality: 1.0,
        speed: 0.0,
        free_capacity: 0.0,
    };
    let fit_only = Weights {
        fit: 1.0,
        quality: 0.0,
        speed: 0.0,
        free_capacity: 0.0,
    };
    let task = needs(&[("go", 3)]);
    let first = |w: &Weights| {
        rank(&[strong.clone(), reliable.clone()], &task, w).ranked[0]
            .agent
            .clone()
    };
    assert_eq!(first(&quality_only), "reliable");
    assert_eq!(first(&fit_only), "strong");
    let zero = Weights {
        fit: 0.0,
        quality: 0.0,
        speed: 0.0,
        free_capacity: 0.0,
    };
    assert_eq!(
        zero.check(),
        Err("at least one weight must be positive".into())
    );
    let negative = Weights {
        fit: -1.0,
        ..Weights::default()
    };
    assert_eq!(
        negative.check(),
        Err("weights must be finite and not negative".into())
    );
}

#[test]
fn batch_assignment_spreads_load_and_explains_what_is_left() {
    let candidates = vec![
        agent("rust-1", &[("rust", 4)], 2, 0, Record::default()),
        agent("rust-2", &[("rust", 4)], 2, 1, Record::default()),
        agent("web", &[("css", 3)], 1, 0, Record::default()),
    ];
    let tasks = vec![
        needs(&[("rust", 3)]),
        needs(&[("rust", 3)]),
        needs(&[("rust", 3)]),
        needs(&[("rust", 3)]),
        needs(&[("css", 2)]),
        needs(&[("haskell", 1)]),
    ];
    let result = assign(&tasks, &candidates, &Weights::default());
    assert!(!result.greedy);
    let by_agent = |name: &str| result.assigned.iter().filter(|(_, a, _)| a == name).count();
    assert_eq!(
        (by_agent("rust-1"), by_agent("rust-2"), by_agent("web")),
        (2, 1, 1),
        "slots are respected"
    );
    let unassigned: Vec<(usize, &str)> = result
        .unassigned
        .iter()
        .map(|(t, why)| (*t, why.as_str()))
        .collect();
    assert_eq!(unassigned.len(), 2);
    assert!(unassigned.contains(&(5, "no active agent has the skills: haskell>=1")));
    assert!(unassigned.iter().any(|(_, why)| *why == "every qualified agent's slots went to other tasks or are full"));
}

/// The best total weight over every way to give tasks distinct feasible slots, maximising the
/// number of tasks first.
fn brute_force(weights: &[Vec<Option<i64>>], task: usize, used: &mut Vec<bool>) -> (usize, i64) {
    if task == weights.len() {
        return (0, 0);
    }
    let mut best = brute_force(weights, task + 1, used);
    for slot in 0..used.len() {
        if let (false, Some(w)) = (used[slot], weights[task][slot]) {
            used[slot] = true;
            let (count, total) = brute_force(weights, task + 1, used);
            used[slot] = false;
            if (count + 1, total + w) > best {
                best = (count + 1, total + w);
            }
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn optimal_assignment_equals_brute_force(
        matrix in (1usize..6, 1usize..6).prop_flat_map(|(t, s)| {
            proptest::collection::vec(proptest::collection::vec(proptest::option::weighted(0.7, 0i64..1_000), s), t)
        })
    ) {
        let tasks = matrix.len();
        let slots = matrix[0].len();
        let pairs = optimal(tasks, slots, |t, s| matrix[t][s]);
        let count = pairs.len();
        let total: i64 = pairs.iter().map(|&(t, s)| matrix[t][s].unwrap()).sum();
        let mut seen_tasks = std::collections::HashSet::new();
        let mut seen_slots = std::collections::HashSet::new();
        for &(t, s) in &pairs {
            prop_assert!(seen_tasks.insert(t) && seen_slots.insert(s), "a task or slot was used twice");
        }
        let expected = brute_force(&matrix, 0, &mut vec![false; slots]);
        prop_assert_eq!((count, total), expected);
        let greedy_pairs = greedy(tasks, slots, |t, s| matrix[t][s]);
        let greedy_total: i64 = greedy_pairs.iter().map(|&(t, s)| matrix[t][s].unwrap()).sum();
        prop_assert!(2 * greedy_total >= expected.1 || greedy_pairs.len() < expected.0, "greedy keeps half");
    }

    #[test]
    fn assignment_never_breaks_a_wip_limit_or_a_skill(
        agents in proptest::collection::vec((0u8..6, 1u32..4, 0u32..3), 1..6),
        tasks in proptest::collection::vec(0u8..6, 0..12),
    ) {
        let candidates: Vec<Candidate> = agents
            .iter()
            .enumerate()
            .map(|(i, &(level, max, active))| {
                let skills: Vec<(&str, u8)> = if level == 0 { vec![] } else { vec![("rust", level)] };
                agent(&format!("a{i}"), &skills, max, active.min(max), Record::default())
            })
            .collect();
        let needs_list: Vec<Needs> =
            tasks.iter().map(|&l| if l == 0 { needs(&[]) } else { needs(&[("rust", l)]) }).collect();
        let result = assign(&needs_list, &candidates, &Weights::default());
        prop_assert_eq!(result.assigned.len() + result.unassigned.len(), needs_list.len());
        let mut load: BTreeMap<String, u32> = BTreeMap::new();
        for (task, name, _) in &result.assigned {
            let candidate = candidates.iter().find(|c| &c.profile.name == name).unwrap();
            let fresh = Candidate { active: 0, ..candidate.clone() };
            prop_assert!(check(&fresh, &needs_list[*task]).is_ok(), "{} lacks the skills", name);
            *load.entry(name.clone()).or_default() += 1;
        }
        for candidate in &candidates {
            let extra = load.get(&candidate.profile.name).copied().unwrap_or(0);
            prop_assert!(candidate.active + extra <= candidate.profile.max_concurrent);
        }
    }
}

#[test]
fn the_smallest_team_covers_every_skill_with_enough_capacity() {
    let candidates = vec![
        agent(
            "full-stack",
            &[("rust", 4), ("css", 3)],
            2,
            0,
            Record::default(),
        ),
        agent("rust-only", &[("rust", 5)], 3, 0, Record::default()),
        agent("css-only", &[("css", 4)], 3, 0, Record::default()),
        agent("sql", &[("sql", 3)], 1, 0, Record::default()),
    ];
    let requirements: Vec<BTreeMap<String, u8>> = vec![
        [("rust".to_owned(), 4)].into(),
        [("css".to_owned(), 3)].into(),
        [("rust".to_owned(), 4), ("css".to_owned(), 3)].into(),
    ];
    let team = assemble_team(&requirements, &candidates, 2);
    assert_eq!(
        (team.members.clone(), team.capacity, team.minimal),
        (vec!["full-stack".to_owned()], 2, true)
    );
    // More parallel work than one agent can hold needs a second member.
    let team = assemble_team(&requirements, &candidates, 4);
    assert_eq!(team.members, ["full-stack", "rust-only"]);
    // A skill nobody has is reported, and the rest still covered.
    let mut with_go = requirements.clone();
    with_go.push([("go".to_owned(), 1)].into());
    let team = assemble_team(&with_go, &candidates, 1);
    assert_eq!(team.uncovered, ["go>=1"]);
    assert_eq!(team.members, ["full-stack"]);
}

fn held(task: &str, started: bool, priority: i64, skills: &[(&str, u8)]) -> Held {
    Held {
        task: task.into(),
        started,
        priority,
        needs: Needs {
            estimate: 2.0,
            ..needs(skills)
        },
    }
}

#[test]
fn workload_finds_overloaded_and_idle_agents_and_proposes_legal_moves() {
    let mut away = agent("away", &[("rust", 5)], 3, 2, Record::default());
    away.profile.status = AgentStatus::Offline;
    let candidates = vec![
        // Its limit was lowered to 1 while it held 3: two must go, not the running one.
        agent("busy", &[("rust", 5)], 1, 3, Record::default()),
        away,
        agent("free-rust", &[("rust", 4)], 2, 0, Record::default()),
        agent("free-css", &[("css", 4)], 2, 0, Record::default()),
    ];
    let mut tasks = BTreeMap::new();
    tasks.insert(
        "busy".to_owned(),
        vec![
            held("w/run", true, 50, &[("rust", 3)]),
            held("w/q-high", false, 90, &[("rust", 3)]),
            held("w/q-low", false, 10, &[("rust", 3)]),
        ],
    );
    tasks.insert(
        "away".to_owned(),
        vec![
            held("w/css", false, 50, &[("css", 2)]),
            held("w/deep", false, 50, &[("rust", 5)]),
        ],
    );
    let result = workload(&candidates, &tasks, &Weights::default());
    assert_eq!(result.overloaded, ["away", "busy"]);
    assert_eq!(result.idle, ["free-css", "free-rust"]);
    let busy = result.agents.iter().find(|l| l.agent == "busy").unwrap();
    assert_eq!(
        (busy.utilisation, busy.queued, busy.points_in_flight),
        (3.0, 2, 6.0)
    );
    assert_eq!(busy.tasks[0], "w/run", "running work is listed first");
    let moves: Vec<(&str, &str, &str)> = result
        .proposals
        .iter()
        .map(|m| (m.task.as_str(), m.from.as_str(), m.to.as_str()))
        .collect();
    // w/deep needs rust 5: nobody active with room qualifies, so it stays and is not proposed.
    assert_eq!(
        moves,
        [
            ("w/css", "away", "free-css"),
            ("w/q-high", "busy", "free-rust"),
            ("w/q-low", "busy", "free-rust")
        ]
    );
    assert_eq!(result.proposals[0].reason, "`away` is offline");
    assert_eq!(
        result.proposals[1].reason,
        "`busy` holds 3 task(s) over a WIP limit of 1"
    );
}

proptest! {
    #[test]
    fn rebalancing_never_breaks_a_wip_limit_or_a_skill(
        agents in proptest::collection::vec((1u8..6, 1u32..3, proptest::bool::ANY), 2..6),
        loads in proptest::collection::vec((0usize..6, 1u8..6, proptest::bool::ANY), 0..14),
    ) {
        let mut candidates: Vec<Candidate> = agents
            .iter()
            .enumerate()
            .map(|(i, &(level, max, active))| {
                let mut c = agent(&format!("a{i}"), &[("rust", level)], max, 0, Record::default());
                if !active {
                    c.profile.status = AgentStatus::Paused;
                }
                c
            })
            .collect();
        let mut tasks: BTreeMap<String, Vec<Held>> = BTreeMap::new();
        for (n, &(owner, level, started)) in loads.iter().enumerate() {
            let owner = owner % candidates.len();
            let name = candidates[owner].profile.name.clone();
            tasks.entry(name).or_default().push(held(&format!("w/t{n}"), started, 50, &[("rust", level)]));
            candidates[owner].active += 1;
        }
        let result = workload(&candidates, &tasks, &Weights::default());
        let mut incoming: BTreeMap<String, u32> = BTreeMap::new();
        for proposal in &result.proposals {
            let task = tasks[&proposal.from].iter().find(|t| t.task == proposal.task).unwrap();
            prop_assert!(!task.started, "running work never moves");
            let target = candidates.iter().find(|c| c.profile.name == proposal.to).unwrap();
            let fresh = Candidate { active: 0, ..target.clone() };
            prop_assert!(check(&fresh, &task.needs).is_ok(), "{} is not qualified", proposal.to);
            *incoming.entry(proposal.to.clone()).or_default() += 1;
        }
        for candidate in &candidates {
            let extra = incoming.get(&candidate.profile.name).copied().unwrap_or(0);
            if extra > 0 {
                prop_assert!(candidate.active + extra <= candidate.profile.max_concurrent);
            }
        }
    }
}

#[test]
fn performance_metrics_match_a_hand_computed_window() {
    let day = |d: i64, h: i64| {
        Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
            + chrono::Duration::days(d)
            + chrono::Duration::hours(h)
    };
    let attempt = |agent: &str,
                   task: i64,
                   number: u32,
                   start: Option<DateTime<Utc>>,
                   end: DateTime<Utc>,
                   how: AttemptEnd,
                   estimate: f64,
                   actual: Option<f64>,
                   skills: &[&str]| Attempt {
        agent: agent.into(),
        task,
        number,
        started_at: start,
        ended_at: end,
        end: how,
        estimate,
        actual,
        skills: skills.iter().map(|s| s.to_string()).collect(),
    };
    let attempts = vec![
        attempt(
            "ana",
            0,
            1,
            Some(day(-1, 0)),
            day(-1, 3),
            AttemptEnd::Succeeded,
            1.0,
            None,
            &["rust"],
        ),
        attempt(
            "ana",
            1,
            1,
            Some(day(0, 0)),
            day(0, 2),
            AttemptEnd::Succeeded,
            2.0,
            Some(4.0),
            &["rust"],
        ),
        attempt(
            "ana",
            2,
            1,
            Some(day(0, 3)),
            day(0, 4),
            AttemptEnd::Failed { retried: true },
            1.0,
            None,
            &["sql"],
        ),
        attempt(
            "ana",
            2,
            2,
            Some(day(0, 5)),
            day(0, 6),
            AttemptEnd::Succeeded,
            1.0,
            Some(1.0),
            &["sql"],
        ),
        attempt(
            "ana",
            3,
            1,
            Some(day(1, 0)),
            day(1, 1),
            AttemptEnd::Expired,
            3.0,
            None,
            &[],
        ),
        attempt(
            "bo",
            4,
            1,
            Some(day(1, 0)),
            day(1, 5),
            AttemptEnd::Succeeded,
            1.0,
            None,
            &[],
        ),
        attempt(
            "late",
            5,
            1,
            None,
            day(2, 1),
            AttemptEnd::Succeeded,
            1.0,
            None,
            &[],
        ),
    ];
    let result = performance(&attempts, day(0, 0), day(2, 0));
    let names: Vec<(&str, usize)> = result.iter().map(|p| (p.agent.as_str(), p.rank)).collect();
    assert_eq!(
        names,
        [("bo", 1), ("ana", 2)],
        "`late` ended outside the window"
    );
    let ana = &result[1].metrics;
    let round = |x: Option<f64>| x.map(|v| (v * 10_000.0).round() / 10_000.0);
    assert_eq!(
        (ana.completed, ana.attempts, ana.retries, ana.expired_leases),
        (2, 4, 1, 1)
    );
    assert_eq!(ana.success_rate, Some(0.5));
    // Fleet: 3 successes in 5 attempts; (2 + 10 * 0.6) / (4 + 10).
    assert_eq!(round(Some(ana.smoothed_success_rate)), Some(0.5714));
    assert_eq!(ana.first_pass_yield, Some(0.5));
    assert_eq!(round(ana.cycle_time_p50_hours), Some(1.5));
    assert_eq!(round(ana.cycle_time_p85_hours), Some(1.85));
    assert_eq!(
        round(ana.estimate_bias),
        Some(0.3466),
        "mean of ln 2 and ln 1"
    );
    assert_eq!(ana.mdmre, Some(0.25), "median of 0.5 and 0");
    assert_eq!(ana.throughput_per_day, 1.0);
    assert_eq!(ana.points_completed, 3.0);
    assert_eq!(result[1].by_skill["sql"].completed, 1);
    assert_eq!(result[1].by_skill["sql"].attempts, 2);
    assert_eq!(result[1].by_skill["rust"].completed, 1);
    assert_eq!(
        result[1].previous.completed, 1,
        "the trend compares with the day before"
    );
}

/// An attempt of a random history for the summaries' property: (agent, task, number, start
/// offset before its end in minutes or none, end in minutes from the start, outcome, estimate,
/// actual, skills).
type Drawn = (u8, u8, u32, Option<u16>, u32, u8, u8, Option<u8>, u8);

fn drawn(
    start: DateTime<Utc>,
    (agent, task, number, took, end, outcome, estimate, actual, skills): Drawn,
) -> Attempt {
    let ended_at =
        start + Duration::minutes(i64::from(end)) + Duration::seconds(i64::from(end % 7));
    Attempt {
        agent: format!("a{agent}"),
        task: i64::from(task),
        number,
        started_at: took.map(|m| ended_at - Duration::seconds(i64::from(m) * 37)),
        ended_at,
        end: match outcome {
            0 | 1 => AttemptEnd::Succeeded,
            2 => AttemptEnd::Failed { retried: true },
            3 => AttemptEnd::Failed { retried: false },
            _ => AttemptEnd::Expired,
        },
        estimate: f64::from(estimate) * 0.5,
        actual: actual.map(|a| f64::from(a) * 0.75),
        skills: ["rust", "go", "sql"]
            .iter()
            .enumerate()
            .filter(|(i, _)| skills & (1 << i) != 0)
            .map(|(_, s)| (*s).to_owned())
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Performance merged from summaries of hours and days, the attempts at the edges and
    /// re-estimates applied to the summaries as changes, says what performance from the
    /// attempts themselves says: the sums exactly, the percentiles within the sketches' error.
    #[test]
    fn summaries_agree_with_the_attempts(
        drawn_attempts in proptest::collection::vec(
            (0u8..4, 0u8..12, 1u32..4, proptest::option::weighted(0.8, 0u16..2_000),
             0u32..6_000, 0u8..5, 0u8..9, proptest::option::weighted(0.8, 0u8..12), 0u8..8),
            0..80,
        ),
        reestimates in proptest::collection::vec((0u8..12, 0u8..9), 0..6),
        window in (0i64..7_000, 1i64..4_000),
    ) {
        use crate::agent::summary::{
            SPANS, Summary, WindowSummary, assert_agrees, bucket, cover, performance_of,
        };
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 22, 17, 0).unwrap();
        let mut attempts: Vec<Attempt> =
            drawn_attempts.into_iter().map(|d| drawn(start, d)).collect();
        // The summaries by (span, bucket, agent, skill), as the store keeps them.
        let mut kept: BTreeMap<(i64, i64, String, Option<String>), Summary> = BTreeMap::new();
        let mut keep = |attempt: &Attempt, change: &Summary| {
            let at = attempt.ended_at.timestamp_millis();
            for span in SPANS {
                for skill in std::iter::once(None).chain(attempt.skills.iter().cloned().map(Some)) {
                    kept.entry((span, bucket(at, span), attempt.agent.clone(), skill))
                        .or_default()
                        .add(change, 1);
                }
            }
        };
        for attempt in &attempts {
            keep(attempt, &Summary::of(attempt));
        }
        for (task, estimate) in reestimates {
            for attempt in attempts.iter_mut().filter(|a| a.task == i64::from(task)) {
                let old = attempt.clone();
                attempt.estimate = f64::from(estimate) * 0.25;
                let mut change = Summary::of(attempt);
                change.add(&Summary::of(&old), -1);
                keep(&old, &change);
            }
        }
        let from = start + Duration::minutes(window.0);
        let to = from + Duration::minutes(window.1) + Duration::seconds(window.1 % 11);
        let read = |after: DateTime<Utc>, to: DateTime<Utc>| {
            let mut summary = WindowSummary::default();
            let pieces = cover(after.timestamp_millis(), to.timestamp_millis());
            for (span, first, end) in pieces.buckets {
                for ((s, b, agent, skill), kept) in &kept {
                    if *s == span && (first..end).contains(b) {
                        summary.add(agent, skill.as_deref(), kept);
                    }
                }
            }
            for (a, b) in pieces.exact {
                for attempt in &attempts {
                    let at = attempt.ended_at.timestamp_millis();
                    if at > a && at <= b {
                        summary.add_attempt(attempt);
                    }
                }
            }
            summary
        };
        let previous_from = from - (to - from);
        let summarised = performance_of(&read(from, to), &read(previous_from, from), from, to);
        assert_agrees(&summarised, &performance(&attempts, from, to));
    }

    /// The pieces of a window are whole buckets and ranges that together are the window,
    /// each point in exactly one, and what is read attempt by attempt is under an hour at each
    /// end.
    #[test]
    fn a_cover_is_the_window(after in -200_000_000i64..200_000_000, length in 1i64..900_000_000) {
        use crate::agent::summary::{HOUR_MS, cover};
        let to = after + length;
        let pieces = cover(after, to);
        let mut ranges: Vec<(i64, i64)> = pieces.exact.clone();
        for &(span, first, end) in &pieces.buckets {
            prop_assert_eq!(first.rem_euclid(span), 0);
            prop_assert_eq!(end.rem_euclid(span), 0);
            ranges.push((first, end));
        }
        ranges.sort_unstable();
        let mut at = after;
        for (a, b) in ranges {
            prop_assert_eq!(a, at);
            prop_assert!(b > a);
            at = b;
        }
        prop_assert_eq!(at, to);
        let exact: i64 = pieces.exact.iter().map(|(a, b)| b - a).sum();
        prop_assert!(exact < 2 * HOUR_MS);
    }
}
