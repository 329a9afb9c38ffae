//! Tests of the sprint model: Jira's worked velocity example, capacity across weekends and days
//! off, Monte Carlo against the exact answer, and planning that keeps dependencies.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn member(agent: &str, availability: f64, off: &[NaiveDate], skills: &[(&str, u8)]) -> Member {
    Member {
        agent: agent.into(),
        availability,
        days_off: off.iter().copied().collect(),
        points_per_day: 2.0,
        skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
    }
}

#[test]
fn velocity_matches_jiras_worked_example() {
    let v = velocity(&[37.0, 47.0, 50.0, 57.0]).unwrap();
    // Atlassian's docs round (37 + 47 + 50 + 57) / 4 = 47.75 to 48.
    assert_eq!(
        (v.mean, v.mean.round(), v.median, v.sprints),
        (47.75, 48.0, 48.5, 4)
    );
    assert!((v.std_dev - 51.6875f64.sqrt()).abs() < 1e-12);
    // Only the last seven count.
    let v = velocity(&[1000.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]).unwrap();
    assert_eq!((v.mean, v.sprints), (10.0, 7));
    assert_eq!(velocity(&[]), None);
}

#[test]
fn capacity_counts_working_days_availability_and_days_off() {
    // Monday 2 March to Friday 13 March 2026: two working weeks, 10 working days.
    let (start, end) = (date(2026, 3, 2), date(2026, 3, 13));
    assert_eq!(
        working_days(start, end, &WorkWeek::default(), &BTreeSet::new()).len(),
        10
    );
    let members = [
        member("full", 1.0, &[], &[]),
        member("half", 0.5, &[], &[]),
        // A day off on a Wednesday counts; one on a Saturday does not.
        member("away", 1.0, &[date(2026, 3, 4), date(2026, 3, 7)], &[]),
    ];
    let capacity = capacity(start, end, &WorkWeek::default(), &members, 0.8);
    let points: Vec<(String, u32, f64)> = capacity
        .members
        .iter()
        .map(|m| (m.agent.clone(), m.working_days, m.points))
        .collect();
    assert_eq!(
        points,
        [
            ("full".into(), 10, 16.0),
            ("half".into(), 10, 8.0),
            ("away".into(), 9, 14.4)
        ]
    );
    assert_eq!(capacity.available_days, 24.0);
    assert!((capacity.points - 38.4).abs() < 1e-9);
    // A six-day week adds the one Saturday in the range.
    let six = WorkWeek {
        days: [true, true, true, true, true, true, false],
    };
    assert_eq!(working_days(start, end, &six, &BTreeSet::new()).len(), 11);
}

#[test]
fn the_focus_factor_is_learnt_from_the_last_three_sprints() {
    let history = [
        ClosedSprint {
            completed: 100.0,
            raw_capacity: 100.0,
        },
        ClosedSprint {
            completed: 30.0,
            raw_capacity: 60.0,
        },
        ClosedSprint {
            completed: 40.0,
            raw_capacity: 50.0,
        },
        ClosedSprint {
            completed: 60.0,
            raw_capacity: 100.0,
        },
    ];
    let f = learnt_focus_factor(&history).unwrap();
    assert!((f - (0.5 + 0.8 + 0.6) / 3.0).abs() < 1e-12);
    assert_eq!(learnt_focus_factor(&[]), None);
}

#[test]
fn monte_carlo_is_reproducible_and_exact_for_constant_throughput() {
    let constant = forecast(20.0, &[2.0], 12, 1_000, 7).unwrap();
    assert_eq!((constant.p50, constant.p85, constant.p95), (10, 10, 10));
    assert_eq!(constant.probability_by_end, 1.0);
    let short = forecast(20.0, &[2.0], 9, 1_000, 7).unwrap();
    assert_eq!(short.probability_by_end, 0.0);
    let history = [0.0, 1.0, 3.0, 2.0, 0.0, 5.0];
    assert_eq!(
        forecast(40.0, &history, 20, 2_000, 42),
        forecast(40.0, &history, 20, 2_000, 42)
    );
    let noisy = forecast(40.0, &history, 20, 2_000, 42).unwrap();
    assert!(noisy.p50 <= noisy.p85 && noisy.p85 <= noisy.p95);
    assert!(
        (14..=30).contains(&noisy.p50),
        "about 40 / 1.83 days: {noisy:?}"
    );
    assert_eq!(
        forecast(10.0, &[0.0, 0.0], 5, 100, 1),
        None,
        "nothing ever done: no forecast"
    );
}

#[test]
fn the_guideline_runs_from_commitment_to_zero() {
    assert_eq!(guideline(20.0, 4), [20.0, 15.0, 10.0, 5.0, 0.0]);
}

fn candidate(
    task: &str,
    estimate: f64,
    priority: i64,
    skills: &[(&str, u8)],
    deps: &[&str],
) -> BacklogItem {
    BacklogItem {
        task: task.into(),
        estimate,
        priority,
        b_level: estimate,
        skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn planning_takes_dependencies_along_and_explains_what_is_left_out() {
    let members = [
        member("rusty", 1.0, &[], &[("rust", 4)]),
        member("pixel", 1.0, &[], &[("css", 4)]),
    ];
    let capacity = Capacity {
        members: vec![
            MemberCapacity {
                agent: "rusty".into(),
                working_days: 5,
                available_days: 5.0,
                points: 6.0,
            },
            MemberCapacity {
                agent: "pixel".into(),
                working_days: 5,
                available_days: 5.0,
                points: 4.0,
            },
        ],
        focus_factor: 1.0,
        available_days: 10.0,
        points: 10.0,
    };
    let candidates = [
        candidate("w/feature", 3.0, 90, &[("css", 2)], &["w/api"]),
        candidate("w/api", 4.0, 10, &[("rust", 3)], &[]),
        candidate("w/kernel", 2.0, 80, &[("c", 5)], &[]),
        candidate("w/big", 8.0, 70, &[], &[]),
        candidate("w/fix", 2.0, 50, &[("rust", 1)], &[]),
        candidate("w/orphan", 1.0, 40, &[], &["w/missing"]),
        candidate("w/later", 1.0, 30, &[], &[]),
    ];
    let plan = plan(&candidates, &members, &capacity, capacity.points, &[]);
    assert_eq!(
        plan.selected,
        ["w/api", "w/feature", "w/fix", "w/later"],
        "api comes with feature, first"
    );
    assert_eq!(plan.points, 10.0);
    let reasons: BTreeMap<String, String> = plan.left_out.iter().cloned().collect();
    assert_eq!(reasons["w/kernel"], "no member has the skills: c>=5");
    assert_eq!(reasons["w/big"], "needs 8 points; 3.0 are left");
    assert_eq!(
        reasons["w/orphan"],
        "depends on `w/missing`, which is unfinished and not in the backlog"
    );
    assert_eq!(
        plan.allocation["rusty"],
        (vec!["w/api".to_owned(), "w/fix".to_owned()], 6.0)
    );
    assert_eq!(plan.allocation["pixel"].0, ["w/feature", "w/later"]);
}

proptest! {
    #[test]
    fn a_plan_never_chooses_a_task_without_its_unfinished_dependencies(
        n in 1usize..14,
        raw in proptest::collection::vec((0usize..14, 0usize..14), 0..20),
        estimates in proptest::collection::vec(1u8..6, 14),
        capacity_points in 0u8..40,
    ) {
        let edges: BTreeSet<(usize, usize)> = raw.into_iter().map(|(a, b)| (a % n, b % n)).filter(|(a, b)| a < b).collect();
        let candidates: Vec<BacklogItem> = (0..n)
            .map(|i| {
                let deps: Vec<String> = edges.iter().filter(|(_, b)| *b == i).map(|(a, _)| format!("t{a}")).collect();
                let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                candidate(&format!("t{i}"), f64::from(estimates[i]), (i as i64 * 7) % 100, &[], &deps)
            })
            .collect();
        let members = [member("m", 1.0, &[], &[])];
        let capacity = Capacity {
            members: vec![MemberCapacity { agent: "m".into(), working_days: 5, available_days: 5.0, points: f64::from(capacity_points) }],
            focus_factor: 1.0,
            available_days: 5.0,
            points: f64::from(capacity_points),
        };
        let plan = plan(&candidates, &members, &capacity, capacity.points, &[]);
        prop_assert!(plan.points <= f64::from(capacity_points) + 1e-9);
        for (position, task) in plan.selected.iter().enumerate() {
            let candidate = candidates.iter().find(|c| &c.task == task).unwrap();
            for dependency in &candidate.depends_on {
                let at = plan.selected.iter().position(|t| t == dependency);
                prop_assert!(at.is_some_and(|at| at < position), "{task} chosen without {dependency} before it");
            }
        }
        prop_assert_eq!(plan.selected.len() + plan.left_out.len(), n);
    }
}

#[test]
fn the_text_chart_draws_remaining_against_ideal_and_scope_against_done() {
    use chrono::{TimeZone, Utc};

    // Monday to Friday, 10 points: `a` (5) done on Monday, `b` (5) on Wednesday.
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let item = |task: &str, done: u32| ScopeItem {
        task: task.into(),
        added_at: start,
        removed_at: None,
        estimate_at_add: 5.0,
        estimates: Vec::new(),
        in_commitment: true,
        carried_over: false,
        state: crate::TaskState::Succeeded,
        started_at: Some(start),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 3, done, 12, 0, 0).unwrap()),
        done_by: Some("ana".into()),
        actual: None,
        attempts: 1,
        problem: None,
    };
    let window = Window {
        start: date(2026, 3, 2),
        end: date(2026, 3, 6),
        week: WorkWeek::default(),
        started_at: Some(start),
        as_of: Utc.with_ymd_and_hms(2026, 3, 7, 0, 0, 0).unwrap(),
    };
    let report = sprint_report(&window, &[item("a", 2), item("b", 4)]);
    assert_eq!(
        text_chart(&report, 3),
        "burndown (● remaining, · ideal), 10 points at the top\n\
         │●·\n\
         │ ●●·\n\
         │   ●●●\n\
         └──────\n\
         burnup (─ scope, █ completed)\n\
         │───███\n\
         │ █████\n\
         │ █████\n\
         └──────"
    );
    let picture = svg("S <1>", &report);
    assert!(picture.contains("S &lt;1&gt;"), "the title is escaped");
    assert_eq!(picture.matches("<polyline").count(), 4);
}

/// The findings' observations for `totals` (ratios filled in as the report fills them).
#[track_caller]
fn check_findings(mut totals: Totals, started: bool, expected: &[&str]) {
    let of_commitment = |x: f64| (totals.committed > 0.0).then(|| x / totals.committed);
    totals.say_do = of_commitment(totals.completed_committed);
    totals.scope_creep = of_commitment(totals.added);
    totals.churn = of_commitment(totals.added + totals.removed);
    totals.not_completed = totals.scope - totals.completed;
    totals.rollover_rate = (totals.scope > 0.0).then(|| totals.not_completed / totals.scope);
    let findings = findings(&FindingsInput {
        totals: &totals,
        started,
        velocity: None,
        capacity: None,
        accuracy: None,
        failures: &[],
        stuck: 0,
    });
    let observations: Vec<&str> = findings.iter().map(|f| f.observation.as_str()).collect();
    assert_eq!(observations, expected);
}

#[test]
fn findings_agree_with_the_totals_they_are_drawn_from() {
    // The sprint: 45 of 51 committed points done, 52 in all with 7 points added.
    check_findings(
        Totals {
            committed: 51.0,
            added: 7.0,
            scope: 58.0,
            completed: 52.0,
            completed_committed: 45.0,
            ..Totals::default()
        },
        true,
        &[
            "delivered 45.0 of 51.0 committed points (say/do 88%), and the scope changed little \
           after the start (creep 14%, churn 14%)",
        ],
    );
    check_findings(
        Totals {
            added: 4.0,
            scope: 4.0,
            completed: 4.0,
            ..Totals::default()
        },
        true,
        &["nothing was committed at the start: all 4.0 points were added after it"],
    );
    check_findings(
        Totals::default(),
        true,
        &["the sprint started with no tasks and none were added"],
    );
    check_findings(
        Totals {
            scope: 6.0,
            ..Totals::default()
        },
        false,
        &["the sprint has not started: nothing is committed yet (6.0 points planned)"],
    );
}
