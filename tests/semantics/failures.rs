//! Retries on the manual clock and the propagation of a final failure under each failure policy, and random workflows run to the end.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Duration;
use orchestration_core::*;
use orchestration_core::{store::*, workflow::*};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::Backend;
use crate::harness::*;

pub(crate) fn retries_wait_for_their_backoff_on_the_manual_clock(db: &dyn Backend) {
    let h = harness(db);
    let spec = WorkflowSpec {
        name: "retry".into(),
        retry: RetryPolicy {
            initial_interval: Duration::seconds(10),
            backoff_coefficient: 3.0,
            max_interval: Duration::seconds(60),
        },
        tasks: vec![task("flaky", &[]).max_attempts(4)],
        ..Default::default()
    };
    h.store.create_workflow(spec, &started()).unwrap();
    let policy = RetryPolicy {
        initial_interval: Duration::seconds(10),
        backoff_coefficient: 3.0,
        max_interval: Duration::seconds(60),
    };
    for (attempt, base) in [(1u32, 10), (2, 30), (3, 60)] {
        let claim = h.claim("w").unwrap();
        assert_eq!(claim.task.attempt, attempt);
        let failed_at = h.clock.now();
        h.fail(&claim, "w", FailureKind::Transient);
        let view = h.store.task(&TaskRef::Id(claim.task.id)).unwrap();
        assert_eq!(view.state, TaskState::WaitingRetry);
        let wait = view.next_attempt_at.unwrap() - failed_at;
        assert_eq!(wait, policy.delay(claim.task.id, attempt));
        assert!(wait >= Duration::seconds(base) && wait <= Duration::seconds(base) * 6 / 5);
        h.clock.advance(wait - Duration::milliseconds(1));
        assert_eq!(h.claim("w"), None, "not before the backoff ends");
        h.clock.advance(Duration::milliseconds(1));
    }
    let last = h.claim("w").unwrap();
    assert_eq!(last.task.attempt, 4);
    h.fail(&last, "w", FailureKind::Transient);
    let view = h.store.task(&TaskRef::Id(last.task.id)).unwrap();
    assert_eq!(
        (view.state, view.reason),
        (TaskState::Failed, Some(FailureReason::Error))
    );
}

pub(crate) fn a_non_retryable_failure_skips_the_retries(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "fatal",
        FailurePolicy::default(),
        vec![task("a", &[]).max_attempts(5)],
    );
    let claim = h.claim("w").unwrap();
    h.fail(&claim, "w", FailureKind::Permanent);
    let view = h.store.task(&TaskRef::Id(claim.task.id)).unwrap();
    assert_eq!(
        (view.state, view.reason),
        (TaskState::Failed, Some(FailureReason::NonRetryable))
    );
}

/// A diamond plus an independent branch: a -> {b, c} -> d, and x -> y.
fn diamond() -> Vec<TaskSpec> {
    vec![
        task("a", &[]).max_attempts(1).priority(90),
        task("b", &["a"]),
        task("c", &["a"]),
        task("d", &["b", "c"]),
        task("x", &[]).priority(10),
        task("y", &["x"]),
    ]
}

pub(crate) fn block_dependents_fails_downstream_at_once_and_lets_other_branches_finish(
    db: &dyn Backend,
) {
    let h = harness(db);
    h.create("block", FailurePolicy::BlockDependents, diamond());
    let a = h.claim("w").unwrap();
    assert_eq!(a.task.key, "a");
    h.fail(&a, "w", FailureKind::Transient);
    check_states(
        &h,
        "block",
        "a=failed b=upstream_failed c=upstream_failed d=upstream_failed x=ready y=pending",
    );
    assert_eq!(h.status("block"), WorkflowStatus::Running);
    for _ in 0..2 {
        let claim = h.claim("w").unwrap();
        h.complete(&claim, "w");
    }
    check_states(
        &h,
        "block",
        "a=failed b=upstream_failed c=upstream_failed d=upstream_failed x=succeeded y=succeeded",
    );
    assert_eq!(h.status("block"), WorkflowStatus::Failed, "leaf d failed");
    let report = h.store.workflow_report(&"block".into()).unwrap();
    assert_eq!(report.progress, Progress::Finished);
    let d = report.blocked.iter().find(|b| b.key == "d").unwrap();
    assert_eq!(
        d.reason.as_deref(),
        Some("dependency failed: block/b, block/c")
    );
}

pub(crate) fn continue_treats_a_failure_as_done(db: &dyn Backend) {
    let h = harness(db);
    h.create("continue", FailurePolicy::Continue, diamond());
    let a = h.claim("w").unwrap();
    h.fail(&a, "w", FailureKind::Transient);
    check_states(
        &h,
        "continue",
        "a=failed b=ready c=ready d=pending x=ready y=pending",
    );
    while let Some(claim) = h.claim("w") {
        h.complete(&claim, "w");
    }
    assert_eq!(
        h.status("continue"),
        WorkflowStatus::Succeeded,
        "every leaf succeeded"
    );
}

pub(crate) fn a_retry_under_continue_makes_waiting_dependents_wait_again(db: &dyn Backend) {
    let h = harness(db);
    h.create("again", FailurePolicy::Continue, diamond());
    let a = h.claim("w").unwrap();
    h.fail(&a, "w", FailureKind::Transient);
    assert!(
        h.store
            .claim(&ClaimRequest::new("w").task(TaskRef::key("again", "b")))
            .unwrap()
            .claimed()
            .is_some()
    );

    // `b` went on without `a` and keeps its lease; `c` had not started, so it waits for the
    // retry of `a` again.
    h.store
        .execute(&"again".into(), WorkflowAction::RetryFailed)
        .unwrap();
    check_states(
        &h,
        "again",
        "a=ready b=running c=pending d=pending x=ready y=pending",
    );

    // The retry's lease runs out and `a` fails for good again (and `b`'s lease goes back in
    // line): every pass over deadlines, and so every claim, still works, and `c` is let
    // through once.
    let a = h
        .store
        .claim(&ClaimRequest::new("w").task(TaskRef::key("again", "a")))
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(a.task.attempt, 1);
    h.clock.advance(Duration::minutes(16));
    assert_eq!(h.store.tick().unwrap().expired, 2, "the leases of a and b");
    check_states(
        &h,
        "again",
        "a=failed b=ready c=ready d=pending x=ready y=pending",
    );
    while let Some(claim) = h.claim("w") {
        h.complete(&claim, "w");
    }
    assert_eq!(h.status("again"), WorkflowStatus::Succeeded);
}

pub(crate) fn fail_fast_cancels_unstarted_work_and_lets_running_work_finish(db: &dyn Backend) {
    let h = harness(db);
    h.create("fast", FailurePolicy::FailFast, diamond());
    let a = h.claim("w1").unwrap();
    let x = h.claim("w2").unwrap();
    assert_eq!((a.task.key.as_str(), x.task.key.as_str()), ("a", "x"));
    h.fail(&a, "w1", FailureKind::Transient);
    check_states(
        &h,
        "fast",
        "a=failed b=cancelled c=cancelled d=cancelled x=running y=cancelled",
    );
    assert_eq!(
        h.status("fast"),
        WorkflowStatus::Running,
        "x is still running"
    );
    assert_eq!(h.claim("w1"), None);
    h.complete(&x, "w2");
    assert_eq!(h.status("fast"), WorkflowStatus::Failed);

    // retry_failed brings back the failed task and everything fail-fast cancelled.
    let outcome = h
        .store
        .execute(&"fast".into(), WorkflowAction::RetryFailed)
        .unwrap();
    assert_eq!(outcome.tasks_changed, 5);
    assert_eq!(outcome.status, WorkflowStatus::Running);
    check_states(
        &h,
        "fast",
        "a=ready b=pending c=pending d=pending x=succeeded y=ready",
    );
    while let Some(claim) = h.claim("w") {
        h.complete(&claim, "w");
    }
    assert_eq!(h.status("fast"), WorkflowStatus::Succeeded);
}

pub(crate) fn retry_failed_resets_failed_and_upstream_failed_tasks(db: &dyn Backend) {
    let h = harness(db);
    h.create("again", FailurePolicy::BlockDependents, diamond());
    let a = h.claim("w").unwrap();
    h.fail(&a, "w", FailureKind::Transient);
    while let Some(claim) = h.claim("w") {
        h.complete(&claim, "w");
    }
    assert_eq!(h.status("again"), WorkflowStatus::Failed);
    let outcome = h
        .store
        .execute(&"again".into(), WorkflowAction::RetryFailed)
        .unwrap();
    assert_eq!(
        (outcome.tasks_changed, outcome.ready.clone()),
        (4, vec!["a".to_owned()])
    );
    let a = h.claim("w").unwrap();
    assert_eq!(a.task.attempt, 1, "a retried task gets fresh attempts");
    h.complete(&a, "w");
    while let Some(claim) = h.claim("w") {
        h.complete(&claim, "w");
    }
    assert_eq!(h.status("again"), WorkflowStatus::Succeeded);
    let err = h
        .store
        .execute(&"again".into(), WorkflowAction::RetryFailed)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow `again` is succeeded: it cannot retry_failed"
    );
}

/// Runs a random workflow named `name` to the end with agents that fail some attempts, then
/// checks what every orchestration must guarantee, including that replaying the event log gives
/// the states the store reports.
fn run_random_workflow(
    h: &Harness,
    name: &str,
    n: usize,
    edges: &[(usize, usize)],
    failures: &[u8],
    policy: FailurePolicy,
) {
    let tasks: Vec<TaskSpec> = (0..n)
        .map(|i| {
            let deps: Vec<String> = edges
                .iter()
                .filter(|(_, b)| *b == i)
                .map(|(a, _)| format!("t{a}"))
                .collect();
            TaskSpec::new(format!("t{i}"), "work")
                .after(deps)
                .max_attempts(2)
        })
        .collect();
    let spec = WorkflowSpec {
        name: name.into(),
        on_failure: policy,
        retry: RetryPolicy {
            initial_interval: Duration::seconds(1),
            backoff_coefficient: 2.0,
            max_interval: Duration::seconds(1),
        },
        tasks,
        ..Default::default()
    };
    h.store.create_workflow(spec, &started()).unwrap();
    let mut finished_at: HashMap<String, usize> = HashMap::new();
    let mut started_at: HashMap<String, Vec<usize>> = HashMap::new();
    let mut succeeded = HashSet::new();
    let mut step = 0;
    for _ in 0..n * 10 {
        let claims: Vec<Claim> = (0..3)
            .filter_map(|i| h.claim(&format!("agent-{i}")))
            .collect();
        if claims.is_empty() {
            if h.status(name).is_finished() {
                break;
            }
            h.clock.advance(Duration::seconds(2));
            continue;
        }
        for claim in claims {
            step += 1;
            let key = claim.task.key.clone();
            let index: usize = key[1..].parse().unwrap();
            // Dependencies that block must have succeeded before the task starts.
            for dep in &claim.dependencies {
                if policy != FailurePolicy::Continue {
                    assert_eq!(
                        dep.state,
                        TaskState::Succeeded,
                        "{key} started before {}",
                        dep.key
                    );
                }
                assert!(finished_at.contains_key(&dep.key));
            }
            started_at.entry(key.clone()).or_default().push(step);
            let agent = claim.task.agent.clone().unwrap();
            if failures[(index + claim.task.attempt as usize) % failures.len()].is_multiple_of(4) {
                h.fail(&claim, &agent, FailureKind::Transient);
            } else {
                h.complete(&claim, &agent);
                assert!(succeeded.insert(key.clone()), "{key} succeeded twice");
            }
            if h.state(name, &key).is_terminal() {
                finished_at.insert(key, step);
            }
        }
    }
    let states = h.states(name);
    for (key, state) in &states {
        assert!(state.is_terminal(), "{key} ended {state}");
        assert!(
            started_at.get(key).map_or(0, Vec::len) <= 2,
            "{key} ran more than max_attempts"
        );
    }
    assert!(h.status(name).is_finished());
    let open = states.values().filter(|s| !s.is_terminal()).count();
    assert_eq!(open, 0);
    // Replaying the log: the last state change of each task is the state the store reports.
    let mut replayed = BTreeMap::new();
    for event in h.store.events_since(0, usize::MAX >> 1).unwrap() {
        if event.kind == EventKind::TaskState && event.workflow_name.as_deref() == Some(name) {
            let (key, to) = (event.task_key.unwrap(), event.to.unwrap());
            let from = replayed
                .insert(key.clone(), to)
                .unwrap_or(TaskState::Pending);
            assert_eq!(Some(from), event.from, "{key}: the log skips a state");
        }
    }
    assert_eq!(replayed, states, "the log replays to the reported states");
}

/// Random workflows on one database, each run to the end under a random failure policy.
pub(crate) fn random_workflows_run_to_a_terminal_state_in_dependency_order(db: &dyn Backend) {
    let h = harness(db);
    let strategy = (
        1usize..18,
        proptest::collection::vec((0usize..18, 0usize..18), 0..30),
        proptest::collection::vec(0u8..8, 1..20),
        prop_oneof![
            Just(FailurePolicy::BlockDependents),
            Just(FailurePolicy::Continue),
            Just(FailurePolicy::FailFast)
        ],
    );
    let runs = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&strategy, |(n, raw_edges, failures, policy)| {
            let mut edges: Vec<(usize, usize)> = raw_edges
                .into_iter()
                .map(|(a, b)| (a % n, b % n))
                .filter(|(a, b)| a < b)
                .collect();
            edges.sort_unstable();
            edges.dedup();
            // Each run gets a workflow of its own: the database is the case's, not the run's.
            runs.set(runs.get() + 1);
            let name = format!("random-{}", runs.get());
            run_random_workflow(&h, &name, n, &edges, &failures, policy);
            Ok(())
        })
        .unwrap();
}
