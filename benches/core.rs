//! Core benchmarks: creating and persisting large workflows, claim+complete throughput on a
//! file database, the graph analysis of 100k nodes and 1M edges, and the status of a
//! 50,000-task workflow under way.
//!
//! Targets on a 2-core machine: a 100k-task workflow created and persisted in <= 1 s; at least
//! 15,000 claim+complete pairs per second on one thread, each its own transaction; stages and
//! critical path of 100k nodes / 1M edges in <= 150 ms; the status summary of a 50,000-task
//! workflow in <= 5 ms.

use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskRef, TaskSpec, TaskUpdate,
    WorkflowSpec, workflow::Dag,
};

/// A small deterministic generator, so every run measures the same graphs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A workflow of `n` tasks where each task depends on about two earlier ones.
fn spec(name: &str, n: usize) -> WorkflowSpec {
    let mut rng = SplitMix(n as u64);
    let tasks = (0..n)
        .map(|i| {
            let mut deps = Vec::new();
            if i > 0 {
                for _ in 0..2 {
                    let dep = format!("t{}", rng.below(i as u64));
                    if !deps.contains(&dep) {
                        deps.push(dep);
                    }
                }
            }
            TaskSpec::new(format!("t{i}"), format!("task number {i}"))
                .estimate((1 + rng.below(8)) as f64)
                .after(deps)
        })
        .collect();
    WorkflowSpec {
        name: name.into(),
        mode: Mode::Dag,
        tasks,
        ..WorkflowSpec::default()
    }
}

fn create_and_persist(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_workflow");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in [1_000, 10_000, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = Store::open(dir.path().join("bench.db")).unwrap();
                    (dir, store, spec("bench", n))
                },
                |(dir, store, spec)| {
                    store
                        .create_workflow(
                            spec,
                            &CreateOptions {
                                start: true,
                                idempotency_key: None,
                            },
                        )
                        .unwrap();
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn claim_and_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("claim_complete");
    group.throughput(Throughput::Elements(1));
    group.bench_function("file_db_one_thread", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("bench.db")).unwrap();
            let tasks = (0..iters)
                .map(|i| TaskSpec::new(format!("t{i}"), "work"))
                .collect();
            let spec = WorkflowSpec {
                name: "pairs".into(),
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
            store
                .upsert_agent("agent", &AgentUpdate::default())
                .unwrap();
            let request = ClaimRequest::new("agent");
            let done = TaskUpdate::Complete {
                result: None,
                actual: None,
            };
            let start = Instant::now();
            for _ in 0..iters {
                let claim = store.claim(&request).unwrap().claimed().unwrap();
                store
                    .update_task(
                        &TaskRef::Id(claim.task.id),
                        "agent",
                        claim.token,
                        &done,
                        None,
                    )
                    .unwrap();
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn analysis(c: &mut Criterion) {
    let (n, m) = (100_000u32, 1_000_000usize);
    let mut rng = SplitMix(42);
    // A random DAG with ids permuted, edges in random order: the worst case for locality.
    let mut perm: Vec<u32> = (0..n).collect();
    for i in (1..n as usize).rev() {
        perm.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let edges: Vec<(u32, u32)> = (0..m)
        .map(|_| {
            let a = rng.below(u64::from(n) - 1) as u32;
            let b = a + 1 + rng.below(u64::from(n - a - 1)) as u32;
            (perm[a as usize], perm[b as usize])
        })
        .collect();
    let durations: Vec<f64> = (0..n).map(|_| (1 + rng.below(8)) as f64).collect();
    let mut group = c.benchmark_group("analysis");
    group.sample_size(20);
    group.bench_function("100k_nodes_1m_edges", |b| {
        b.iter(|| {
            let dag = Dag::new(n as usize, &edges).unwrap();
            let stages = dag.stages();
            let schedule = dag.schedule(&durations);
            (stages.len(), schedule.critical_path.len())
        });
    });
    group.finish();
}

/// The status of a 50,000-task workflow with work done, held and ready, on a file database.
fn status(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    store
        .create_workflow(
            spec("big", 50_000),
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    for i in 0..20 {
        store
            .upsert_agent(&format!("agent-{i}"), &AgentUpdate::default())
            .unwrap();
    }
    let done = TaskUpdate::Complete {
        result: None,
        actual: Some(2.0),
    };
    // 5,000 tasks finished, then 20 held, so every list of the status has members.
    for i in 0..5_020 {
        let agent = format!("agent-{}", i % 20);
        let claim = store
            .claim(&ClaimRequest::new(agent.as_str()))
            .unwrap()
            .claimed()
            .unwrap();
        if i < 5_000 {
            store
                .update_task(
                    &TaskRef::Id(claim.task.id),
                    &agent,
                    claim.token,
                    &done,
                    None,
                )
                .unwrap();
        }
    }
    let workflow = "big".into();
    let mut group = c.benchmark_group("workflow_status");
    group.sample_size(20);
    // The summary `workflow_status` answers by default: counts, progress, the first tasks of
    // each list, the remaining critical path and the forecast.
    group.bench_function("50k_tasks_summary", |b| {
        b.iter(|| store.workflow_overview(&workflow, 5).unwrap().ready_total)
    });
    // Everything: every task and the graph, what `detail=full` pages and the console draws.
    group.bench_function("50k_tasks_report", |b| {
        b.iter(|| store.workflow_report(&workflow).unwrap().ready.len())
    });
    group.finish();
}

criterion_group!(
    benches,
    create_and_persist,
    claim_and_complete,
    analysis,
    status
);
criterion_main!(benches);
