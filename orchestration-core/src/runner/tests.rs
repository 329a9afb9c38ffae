//! Tests of the in-process runner: exactly-once execution on many threads, retries, panics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;

use super::*;
use crate::{CreateOptions, Mode, RetryPolicy, TaskSpec, WorkflowSpec};

fn start(store: &Store, spec: WorkflowSpec) -> WorkflowRef {
    let created = store
        .create_workflow(
            spec,
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    WorkflowRef::Id(created.id)
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::milliseconds(1),
        backoff_coefficient: 1.0,
        max_interval: Duration::milliseconds(1),
    }
}

#[test]
fn eight_workers_run_every_task_of_a_2000_task_workflow_exactly_once() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let tasks = (0..2_000)
        .map(|i| TaskSpec::new(format!("t{i}"), "work"))
        .collect();
    let workflow = start(
        &store,
        WorkflowSpec {
            name: "many".into(),
            mode: Mode::Parallel,
            tasks,
            ..Default::default()
        },
    );
    let runs: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let summary = Runner::new(Arc::clone(&store))
        .workers(8)
        .poll_interval(StdDuration::from_millis(1))
        .run(&workflow, |work| {
            *runs
                .lock()
                .unwrap()
                .entry(work.claim.task.key.clone())
                .or_default() += 1;
            Ok(Outcome::default())
        })
        .unwrap();
    assert_eq!(summary.status, WorkflowStatus::Succeeded);
    let runs = runs.into_inner().unwrap();
    assert_eq!(runs.len(), 2_000);
    assert!(runs.values().all(|&n| n == 1), "a task ran twice");
    assert_eq!(summary.attempts_by_worker.iter().sum::<usize>(), 2_000);
    assert_eq!(summary.attempts_by_worker.len(), 8);
}

#[test]
fn failures_are_retried_and_panics_count_as_failures() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let spec = WorkflowSpec {
        name: "flaky".into(),
        mode: Mode::Sequential,
        retry: quick_retries(),
        tasks: vec![
            TaskSpec::new("flaky", "fails once"),
            TaskSpec::new("panics", "panics once"),
            TaskSpec::new("last", "uses results"),
        ],
        ..Default::default()
    };
    let workflow = start(&store, spec);
    let seen_result = Mutex::new(None);
    let summary = Runner::new(Arc::clone(&store))
        .workers(2)
        .poll_interval(StdDuration::from_millis(1))
        .run(&workflow, |work| {
            let task = &work.claim.task;
            match (task.key.as_str(), task.attempt) {
                ("flaky", 1) => Err(TaskFailure::retryable("transient")),
                ("panics", 1) => panic!("boom"),
                ("last", _) => {
                    *seen_result.lock().unwrap() = work.claim.dependencies[0].result.clone();
                    Ok(Outcome::default())
                }
                (key, _) => Ok(Outcome {
                    result: Some(format!("{key} ok")),
                    actual: None,
                }),
            }
        })
        .unwrap();
    assert_eq!(summary.status, WorkflowStatus::Succeeded);
    assert_eq!(summary.attempts_by_worker.iter().sum::<usize>(), 5);
    assert_eq!(
        seen_result.into_inner().unwrap().as_deref(),
        Some("panics ok")
    );
    let panicked = store.task(&crate::TaskRef::key("flaky", "panics")).unwrap();
    assert_eq!(panicked.attempt, 2);
}

#[test]
fn a_permanent_failure_ends_the_run_with_a_failed_workflow() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let spec = WorkflowSpec {
        name: "doomed".into(),
        mode: Mode::Sequential,
        tasks: vec![
            TaskSpec::new("a", "fails"),
            TaskSpec::new("b", "never runs"),
        ],
        ..Default::default()
    };
    let workflow = start(&store, spec);
    let calls = AtomicUsize::new(0);
    let summary = Runner::new(Arc::clone(&store))
        .workers(3)
        .run(&workflow, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(TaskFailure::permanent("no such file"))
        })
        .unwrap();
    assert_eq!(summary.status, WorkflowStatus::Failed);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a permanent failure is not retried"
    );
}

#[test]
fn heartbeats_from_the_closure_keep_a_short_lease_alive() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let workflow = start(
        &store,
        WorkflowSpec::new("long", Mode::Dag).task(TaskSpec::new("slow", "takes a while")),
    );
    let summary = Runner::new(Arc::clone(&store))
        .workers(1)
        .lease(Duration::seconds(1))
        .run(&workflow, |work| {
            for _ in 0..3 {
                std::thread::sleep(StdDuration::from_millis(400));
                work.heartbeat()
                    .map_err(|e| TaskFailure::retryable(e.to_string()))?;
            }
            Ok(Outcome::default())
        })
        .unwrap();
    assert_eq!(summary.status, WorkflowStatus::Succeeded);
    assert_eq!(summary.attempts_by_worker, [1], "the lease never ran out");
}
