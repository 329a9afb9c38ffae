//! Sprint benchmarks: the analytics of a sprint of 5,000 tasks over a log of 50,000 events, a
//! Monte Carlo forecast of 10,000 trials for 1,000 items, and planning from a backlog of
//! 10,000 tasks.
//!
//! Targets on a 2-core machine: analytics in <= 20 ms; Monte Carlo in <= 50 ms; planning in
//! <= 100 ms.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use orchestration_core::{
    AgentUpdate, ClaimRequest, Clock, CreateOptions, Mode, Store, TaskRef, TaskSpec, TaskUpdate,
    WorkflowSpec, sprint::forecast, store::AnalyticsOptions, store::MemberSpec, store::SprintSpec,
};

const SKILLS: [&str; 4] = ["rust", "web", "docs", "sql"];

fn team(store: &Store, members: usize) -> Vec<MemberSpec> {
    (0..members)
        .map(|i| {
            let name = format!("agent-{i}");
            store
                .upsert_agent(
                    &name,
                    &AgentUpdate {
                        capabilities: Some(
                            SKILLS
                                .iter()
                                .enumerate()
                                .map(|(k, s)| (s.to_string(), (1 + (i + k) % 5) as u8))
                                .collect(),
                        ),
                        points_per_day: Some(40.0),
                        max_concurrent: Some(1_000),
                        ..AgentUpdate::default()
                    },
                )
                .unwrap();
            MemberSpec::new(name)
        })
        .collect()
}

fn started() -> CreateOptions {
    CreateOptions {
        start: true,
        idempotency_key: None,
    }
}

fn analytics(c: &mut Criterion) {
    let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let (clock, time) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap());
    let store = Store::open_in_memory().unwrap().with_clock(clock);
    let members = team(&store, 10);
    let tasks = (0..5_000)
        .map(|i| TaskSpec::new(format!("t{i}"), "story").estimate((1 + i % 5) as f64))
        .collect();
    store
        .create_workflow(
            WorkflowSpec {
                name: "big".into(),
                mode: Mode::Parallel,
                tasks,
                ..WorkflowSpec::default()
            },
            &started(),
        )
        .unwrap();
    let mut spec = SprintSpec::new("big-sprint", monday, monday + Duration::days(11));
    spec.members = members;
    spec.commit = Some(1e6);
    spec.focus_factor = Some(1.0);
    store.start_sprint(&spec).unwrap();

    // Seven working days: 500 tasks done a day, each after ten progress notes, and 150
    // re-estimates a day.
    let mut day = 0;
    let mut done = 0;
    while done < 3_500 {
        time.set(Utc.with_ymd_and_hms(2026, 3, 2 + day, 9, 0, 0).unwrap());
        for i in 0..500 {
            let agent = format!("agent-{}", i % 10);
            let request = ClaimRequest::new(&agent).task(TaskRef::key("big", format!("t{done}")));
            let claim = store.claim(&request).unwrap().claimed().unwrap();
            time.advance(Duration::seconds(30));
            let task = TaskRef::Id(claim.task.id);
            for note in 0..10 {
                store
                    .update_task(
                        &task,
                        &agent,
                        claim.token,
                        &TaskUpdate::Progress {
                            note: format!("step {note}"),
                        },
                        None,
                    )
                    .unwrap();
            }
            store
                .update_task(
                    &task,
                    &agent,
                    claim.token,
                    &TaskUpdate::Complete {
                        result: None,
                        actual: Some((1 + i % 7) as f64),
                    },
                    None,
                )
                .unwrap();
            done += 1;
        }
        for i in 0..150 {
            let key = format!("t{}", 3_500 + (day as usize * 150 + i) % 1_500);
            store
                .reestimate(&TaskRef::key("big", key), (1 + i % 8) as f64)
                .unwrap();
        }
        day += if day % 7 == 4 { 3 } else { 1 };
    }
    let events = store.events_since(0, usize::MAX >> 1).unwrap().len();
    assert!(events >= 50_000, "{events} events");
    let mut group = c.benchmark_group("sprint_analytics");
    group.sample_size(20);
    group.bench_function("5000_tasks_50k_events", |b| {
        b.iter(|| {
            store
                .sprint_analytics("big-sprint", &AnalyticsOptions::default())
                .unwrap()
                .report
                .days
                .len()
        })
    });
    group.finish();
}

fn monte_carlo(c: &mut Criterion) {
    // Thirty working days of history, zero days included, about 1.4 items a day.
    let history: Vec<f64> = (0..30).map(|i| [0.0, 1.0, 2.0, 3.0, 1.0][i % 5]).collect();
    let mut group = c.benchmark_group("monte_carlo");
    group.sample_size(20);
    group.bench_function("10000_trials_1000_items", |b| {
        b.iter(|| forecast(1_000.0, &history, 400, 10_000, 7).unwrap().p85)
    });
    group.finish();
}

fn planning(c: &mut Criterion) {
    let (clock, _) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap());
    let store = Store::open_in_memory().unwrap().with_clock(clock);
    let members = team(&store, 8);
    // Ten workflows of 1,000 tasks; each task depends on one of the ten before it.
    for w in 0..10 {
        let tasks = (0..1_000)
            .map(|i: usize| {
                let task = TaskSpec::new(format!("t{i}"), "story")
                    .estimate((1 + i % 8) as f64)
                    .priority((i * 7 % 101) as i64)
                    .skill(SKILLS[i % SKILLS.len()], (1 + i % 4) as u8);
                if i >= 10 {
                    task.after([format!("t{}", i - 1 - i % 10)])
                } else {
                    task
                }
            })
            .collect();
        store
            .create_workflow(
                WorkflowSpec {
                    name: format!("backlog-{w}"),
                    mode: Mode::Dag,
                    tasks,
                    ..WorkflowSpec::default()
                },
                &started(),
            )
            .unwrap();
    }
    let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let mut spec = SprintSpec::new("next", monday, monday + Duration::days(11));
    spec.members = members;
    spec.focus_factor = Some(0.7);
    let plan = store.plan_sprint(&spec).unwrap();
    assert!(!plan.plan.selected.is_empty() && !plan.plan.left_out.is_empty());
    let mut group = c.benchmark_group("sprint_planning");
    group.sample_size(20);
    group.bench_function("10000_task_backlog", |b| {
        b.iter(|| store.plan_sprint(&spec).unwrap().plan.selected.len())
    });
    group.finish();
}

criterion_group!(benches, analytics, monte_carlo, planning);
criterion_main!(benches);
