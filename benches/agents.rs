//! Agent benchmarks: ranking 1,000 agents for one task, batch-assigning 500 ready tasks to 100
//! agents with 5 slots each, and agent performance over 100,000 events.
//!
//! Targets on a 2-core machine: rank in <= 1 ms; batch in <= 100 ms; performance in <= 5 ms.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use orchestration_core::{
    AgentProfile, AgentStatus, AgentUpdate, ClaimRequest, Clock, CreateOptions, FailureKind, Mode,
    Store, TaskRef, TaskSpec, TaskUpdate, WorkflowSpec, agent::Candidate, agent::Needs,
    agent::Record, agent::Weights, agent::assign, agent::rank,
};

const SKILLS: [&str; 8] = [
    "rust", "go", "sql", "css", "python", "k8s", "docs", "security",
];

fn fleet(n: usize) -> Vec<Candidate> {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| Candidate {
            profile: AgentProfile {
                name: format!("agent-{i:04}"),
                capabilities: (0..3)
                    .map(|k| {
                        (
                            SKILLS[(i + k * 3) % SKILLS.len()].to_owned(),
                            (1 + (i + k) % 5) as u8,
                        )
                    })
                    .collect(),
                max_concurrent: 5,
                points_per_day: 5.0,
                status: AgentStatus::Active,
                created_at: at,
                updated_at: at,
                last_active_at: Some(at + Duration::minutes((i % 97) as i64)),
            },
            active: (i % 3) as u32,
            record: Record {
                succeeded: (i % 17) as u32,
                attempts: (i % 17 + i % 5) as u32,
                log_ratio_sum: ((i % 7) as f64 - 3.0) * 0.1,
                log_ratio_count: (i % 4) as u32,
            },
        })
        .collect()
}

fn task(i: usize) -> Needs {
    let mut skills = BTreeMap::new();
    skills.insert(SKILLS[i % SKILLS.len()].to_owned(), (1 + i % 3) as u8);
    Needs {
        skills,
        estimate: (1 + i % 5) as f64,
    }
}

fn ranking(c: &mut Criterion) {
    let agents = fleet(1_000);
    let needs = task(0);
    c.bench_function("rank_1000_agents", |b| {
        b.iter(|| rank(&agents, &needs, &Weights::default()).ranked.len())
    });
}

fn batch(c: &mut Criterion) {
    let agents: Vec<Candidate> = fleet(100)
        .into_iter()
        .map(|c| Candidate { active: 0, ..c })
        .collect();
    let tasks: Vec<Needs> = (0..500).map(task).collect();
    let mut group = c.benchmark_group("batch_assign");
    group.sample_size(20);
    group.bench_function("500_tasks_100_agents_x5", |b| {
        b.iter(|| assign(&tasks, &agents, &Weights::default()).assigned.len())
    });
    group.finish();
}

fn performance(c: &mut Criterion) {
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let store = Store::open_in_memory().unwrap().with_clock(clock);
    // 3 events per task (ready, running, succeeded or failed): 34,000 tasks make 100k+.
    let tasks = (0..34_000)
        .map(|i| TaskSpec::new(format!("t{i}"), "work").estimate((1 + i % 5) as f64))
        .collect();
    let spec = WorkflowSpec {
        name: "history".into(),
        mode: Mode::Parallel,
        tasks,
        ..WorkflowSpec::default()
    };
    store
        .create_workflow(
            spec,
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    // Only registered agents take work.
    for i in 0..50 {
        store
            .upsert_agent(&format!("agent-{i}"), &AgentUpdate::default())
            .unwrap();
    }
    let mut i = 0usize;
    while let Some(claim) = store
        .claim(&ClaimRequest::new(format!("agent-{}", i % 50)))
        .unwrap()
        .claimed()
    {
        handle.advance(Duration::minutes(1));
        let agent = claim.task.agent.clone().unwrap();
        let report = if i.is_multiple_of(11) {
            TaskUpdate::Fail {
                error: "no".into(),
                kind: FailureKind::Permanent,
            }
        } else {
            TaskUpdate::Complete {
                result: None,
                actual: Some((1 + i % 7) as f64),
            }
        };
        store
            .update_task(
                &TaskRef::Id(claim.task.id),
                &agent,
                claim.token,
                &report,
                None,
            )
            .unwrap();
        i += 1;
    }
    let events = store.events_since(0, usize::MAX >> 1).unwrap().len();
    assert!(events >= 100_000, "{events} events");
    let to = handle.now();
    let from = to - Duration::days(30);
    let mut group = c.benchmark_group("agent_performance");
    group.sample_size(20);
    group.bench_function("100k_events", |b| {
        b.iter(|| store.agent_performance(from, to, None).unwrap().len())
    });
    group.finish();
}

criterion_group!(benches, ranking, batch, performance);
criterion_main!(benches);
