//! Tests of the pure workflow model: validation messages, cycle naming, stages, critical path,
//! the transition table, retry timing and properties of random graphs.

use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::error::Error;
use crate::id::LeaseToken;
use crate::id::TaskId;
use crate::limits;

fn spec(tasks: Vec<TaskSpec>) -> WorkflowSpec {
    WorkflowSpec {
        name: "wf".into(),
        tasks,
        ..WorkflowSpec::default()
    }
}

fn task(key: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec::new(key, format!("do {key}")).after(deps.iter().copied())
}

/// Validates `spec` and compares the error message (or "ok").
#[track_caller]
fn check(spec: WorkflowSpec, expected: &str) {
    let actual = match spec.validate() {
        Ok(_) => "ok".to_owned(),
        Err(err) => err.to_string(),
    };
    assert_eq!(actual, expected);
}

#[test]
fn validation_errors_name_the_field_and_the_reason() {
    let long = "x".repeat(65);
    let cases: Vec<(WorkflowSpec, String)> = vec![
        (spec(vec![task("a", &[])]), "ok".into()),
        (
            WorkflowSpec { name: String::new(), ..spec(vec![task("a", &[])]) },
            "invalid workflow spec: workflow name `` is invalid: must not be empty; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (
            WorkflowSpec { name: "has space".into(), ..spec(vec![task("a", &[])]) },
            "invalid workflow spec: workflow name `has space` is invalid: contains ` `, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (
            WorkflowSpec { name: "-lead".into(), ..spec(vec![task("a", &[])]) },
            "invalid workflow spec: workflow name `-lead` is invalid: must start with a letter or digit; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (
            WorkflowSpec { name: long.clone(), ..spec(vec![task("a", &[])]) },
            format!("invalid workflow spec: workflow name `{long}` is invalid: must be at most 64 characters, not 65; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
        ),
        (
            WorkflowSpec { name: "結帳-v3".into(), ..spec(vec![task("a", &[])]) },
            "invalid workflow spec: workflow name `結帳-v3` is invalid: contains `結`, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (spec(vec![]), "invalid workflow spec: a workflow needs at least one task".into()),
        (
            spec(vec![task("a/b", &[])]),
            "invalid workflow spec: task key `a/b` is invalid: contains `/`, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (
            spec(vec![task("a", &[]), task("b", &[]), task("a", &[])]),
            "invalid workflow spec: task key `a` is used twice (tasks 0 and 2); keys must be unique within a workflow".into(),
        ),
        (
            spec(vec![task("a", &["ghost"])]),
            "invalid workflow spec: task `a` depends on `ghost`, which is not a task of this workflow".into(),
        ),
        (spec(vec![task("a", &["a"])]), "invalid workflow spec: task `a` depends on itself".into()),
        (
            spec(vec![TaskSpec::new("a", "  ")]),
            "invalid workflow spec: title of task `a` is invalid: must not be empty".into(),
        ),
        (
            spec(vec![TaskSpec::new("a", "t".repeat(201))]),
            "invalid workflow spec: title of task `a` is invalid: must be at most 200 characters, got 201".into(),
        ),
        (
            spec(vec![task("a", &[]).estimate(-1.0)]),
            "invalid workflow spec: task `a` has estimate -1; estimates are finite numbers from 0 to 10000 points".into(),
        ),
        (
            spec(vec![task("a", &[]).estimate(f64::NAN)]),
            "invalid workflow spec: task `a` has estimate NaN; estimates are finite numbers from 0 to 10000 points".into(),
        ),
        (
            spec(vec![task("a", &[]).estimate(f64::INFINITY)]),
            "invalid workflow spec: task `a` has estimate inf; estimates are finite numbers from 0 to 10000 points".into(),
        ),
        (
            spec(vec![task("a", &[]).priority(101)]),
            "invalid workflow spec: task `a` has priority 101; priorities go from 0 (lowest) to 100 (highest)".into(),
        ),
        (
            spec(vec![task("a", &[]).max_attempts(0)]),
            "invalid workflow spec: task `a` has max_attempts 0; it must be from 1 to 100 (it counts the first attempt)".into(),
        ),
        (
            spec(vec![task("a", &[]).skill("rust", 6)]),
            "invalid workflow spec: task `a` requires skill `rust` at level 6; levels go from 1 to 5".into(),
        ),
        (
            spec(vec![task("a", &[]).skill("no spaces", 2)]),
            "invalid workflow spec: skill name `no spaces` is invalid: contains ` `, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit".into(),
        ),
        (
            WorkflowSpec { mode: Mode::Sequential, ..spec(vec![task("a", &[]), task("b", &["a"])]) },
            "invalid workflow spec: task `b` lists depends_on, but mode `sequential` derives dependencies itself; use mode `dag` for explicit dependencies".into(),
        ),
        (
            WorkflowSpec {
                retry: RetryPolicy { backoff_coefficient: 0.5, ..RetryPolicy::default() },
                ..spec(vec![task("a", &[])])
            },
            "invalid workflow spec: retry policy is invalid: backoff_coefficient must be from 1 to 100".into(),
        ),
        (
            WorkflowSpec {
                retry: RetryPolicy {
                    max_interval: Duration::milliseconds(10),
                    ..RetryPolicy::default()
                },
                ..spec(vec![task("a", &[])])
            },
            "invalid workflow spec: retry policy is invalid: max_interval must be at least initial_interval".into(),
        ),
        (
            WorkflowSpec { description: Some("d".repeat(10_001)), ..spec(vec![task("a", &[])]) },
            "invalid workflow spec: description is invalid: must be at most 10000 characters, got 10001".into(),
        ),
        (
            spec(vec![task("a", &["b"]), task("b", &["c"]), task("c", &["a"])]),
            "dependency cycle: a -> b -> c -> a (each task depends on the next)".into(),
        ),
    ];
    for (spec, expected) in cases {
        check(spec, &expected);
    }
}

#[test]
fn too_many_tasks_and_dependencies_are_rejected() {
    let many: Vec<TaskSpec> = (0..=limits::MAX_TASKS)
        .map(|i| task(&format!("t{i}"), &[]))
        .collect();
    check(
        spec(many),
        "invalid workflow spec: a workflow may have at most 100000 tasks, this one has 100001",
    );
    let deps: Vec<String> = (0..=limits::MAX_DEPENDENCIES)
        .map(|i| format!("t{i}"))
        .collect();
    let mut tasks: Vec<TaskSpec> = deps.iter().map(|k| task(k, &[])).collect();
    tasks.push(TaskSpec::new("sink", "sink").after(deps.iter().cloned()));
    check(
        spec(tasks),
        "invalid workflow spec: task `sink` has 1001 dependencies; at most 1000 are allowed",
    );
}

#[test]
fn cycles_are_named_in_execution_order() {
    // Named in "depends on" order, from the first task listed.
    let cases = [
        (
            vec![task("a", &["b"]), task("b", &["c"]), task("c", &["a"])],
            "a -> b -> c -> a",
        ),
        (
            vec![
                task("x", &[]),
                task("a", &["c"]),
                task("b", &["a"]),
                task("c", &["b"]),
            ],
            "a -> c -> b -> a",
        ),
        (vec![task("p", &["q"]), task("q", &["p"])], "p -> q -> p"),
    ];
    for (tasks, expected) in cases {
        match spec(tasks).validate() {
            Err(crate::Error::Cycle(keys)) => assert_eq!(keys.join(" -> "), expected),
            other => panic!("expected a cycle, got {other:?}"),
        }
    }
}

#[test]
fn a_named_cycle_follows_real_edges() {
    let tasks = vec![
        task("a", &["c"]),
        task("b", &["a"]),
        task("c", &["b"]),
        task("d", &["a"]),
    ];
    let spec = spec(tasks.clone());
    let Err(crate::Error::Cycle(keys)) = spec.validate() else {
        panic!("expected a cycle")
    };
    for pair in keys.windows(2) {
        let dependent = tasks.iter().find(|t| t.key == pair[0]).unwrap();
        assert!(
            dependent.depends_on.contains(&pair[1]),
            "{} does not depend on {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn stages_and_critical_path_match_a_hand_computed_example() {
    // design(3) -> api(5) -> integrate(2) -> release(1)
    //          \-> ui(2) ---/
    // docs(1), independent.
    let tasks = vec![
        task("design", &[]).estimate(3.0),
        task("api", &["design"]).estimate(5.0),
        task("ui", &["design"]).estimate(2.0),
        task("integrate", &["api", "ui"]).estimate(2.0),
        task("release", &["integrate"]).estimate(1.0),
        task("docs", &[]).estimate(1.0),
    ];
    let validated = spec(tasks).validate().unwrap();
    let analysis = validated.analysis();
    assert_eq!(
        analysis.stages,
        vec![
            vec!["design", "docs"],
            vec!["api", "ui"],
            vec!["integrate"],
            vec!["release"]
        ]
    );
    assert_eq!(
        analysis.critical_path.keys,
        ["design", "api", "integrate", "release"]
    );
    assert_eq!(analysis.critical_path.length, 11.0);
    // b-levels: release 1, integrate 3, api 8, ui 5, design 11, docs 1.
    assert_eq!(analysis.b_levels, vec![11.0, 8.0, 5.0, 3.0, 1.0, 1.0]);
    let schedule = validated.dag().schedule(&[3.0, 5.0, 2.0, 2.0, 1.0, 1.0]);
    // ui can slip 3 (finishes at 5, integrate starts at 8); docs can slip 10.
    assert_eq!(schedule.total_float, vec![0.0, 0.0, 3.0, 0.0, 0.0, 10.0]);
    assert_eq!(schedule.earliest_start, vec![0.0, 3.0, 3.0, 8.0, 10.0, 0.0]);
    assert_eq!(
        analysis.warnings,
        ["1 task(s) neither depend on nor are needed by any other: docs"]
    );
}

#[test]
fn modes_derive_their_dependencies() {
    let tasks = || vec![task("a", &[]), task("b", &[]), task("c", &[])];
    let sequential = WorkflowSpec {
        mode: Mode::Sequential,
        ..spec(tasks())
    }
    .validate()
    .unwrap();
    assert_eq!(
        sequential.analysis().stages,
        vec![vec!["a"], vec!["b"], vec!["c"]]
    );
    assert_eq!(sequential.spec().tasks[2].depends_on, ["b"]);
    let parallel = WorkflowSpec {
        mode: Mode::Parallel,
        ..spec(tasks())
    }
    .validate()
    .unwrap();
    assert_eq!(parallel.analysis().stages, vec![vec!["a", "b", "c"]]);
    assert!(parallel.analysis().warnings.is_empty());
}

#[test]
fn duplicate_dependencies_are_merged_with_a_warning() {
    let validated = spec(vec![task("a", &[]), task("b", &["a", "a"])])
        .validate()
        .unwrap();
    assert_eq!(validated.spec().tasks[1].depends_on, ["a"]);
    assert_eq!(
        validated.analysis().warnings,
        ["task `b` lists a dependency twice"]
    );
}

#[test]
fn a_100k_chain_validates_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let n = 100_000;
            let tasks: Vec<TaskSpec> = (0..n)
                .map(|i| {
                    let t = TaskSpec::new(format!("t{i}"), "step");
                    if i == 0 {
                        t
                    } else {
                        t.after([format!("t{}", i - 1)])
                    }
                })
                .collect();
            let validated = spec(tasks).validate().unwrap();
            (
                validated.analysis().stages.len(),
                validated.analysis().critical_path.keys.len(),
            )
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), (100_000, 100_000));
}

#[test]
fn a_100k_reverse_chain_cycle_is_found_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let n = 100_000u32;
            let mut edges: Vec<(u32, u32)> = (1..n).map(|i| (i, i - 1)).collect();
            edges.push((0, n - 1));
            Dag::new(n as usize, &edges).unwrap_err().0.len()
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), 100_000);
}

#[test]
fn every_transition_in_the_table_is_allowed_and_every_other_rejected() {
    use TaskEvent as E;
    use TaskState as S;
    let allowed: BTreeSet<(S, &str, S)> = [
        (S::Pending, E::DependenciesMet, S::Ready),
        (S::Pending, E::UpstreamFailed, S::UpstreamFailed),
        (S::Ready, E::DependencyAdded, S::Pending),
        (S::Ready, E::UpstreamFailed, S::UpstreamFailed),
        (S::Ready, E::Assign, S::Assigned),
        (S::Ready, E::Start, S::Running),
        (S::Assigned, E::Start, S::Running),
        (S::Assigned, E::Release, S::Ready),
        (S::Running, E::Release, S::Ready),
        (S::Assigned, E::LeaseExpired, S::Ready),
        (S::Running, E::LeaseExpired, S::Ready),
        (S::Running, E::Complete, S::Succeeded),
        (S::Running, E::FailAndRetry, S::WaitingRetry),
        (S::Running, E::Fail, S::Failed),
        (S::WaitingRetry, E::RetryDue, S::Ready),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::Ready, E::Cancel, S::Cancelled),
        (S::Assigned, E::Cancel, S::Cancelled),
        (S::Running, E::Cancel, S::Cancelled),
        (S::WaitingRetry, E::Cancel, S::Cancelled),
        (S::Failed, E::Reset, S::Pending),
        (S::UpstreamFailed, E::Reset, S::Pending),
        (S::Cancelled, E::Reset, S::Pending),
        (S::Skipped, E::Reset, S::Pending),
        (S::AwaitingApproval, E::DependencyAdded, S::Pending),
        (S::AwaitingApproval, E::UpstreamFailed, S::UpstreamFailed),
        (S::AwaitingApproval, E::Approve, S::Succeeded),
        (S::AwaitingApproval, E::Reject, S::Failed),
        (S::AwaitingApproval, E::Cancel, S::Cancelled),
    ]
    .into_iter()
    .map(|(from, event, to)| (from, event_name(event), to))
    .collect();
    let events = [
        E::DependenciesMet,
        E::UpstreamFailed,
        E::DependencyAdded,
        E::Assign,
        E::Start,
        E::Release,
        E::LeaseExpired,
        E::Complete,
        E::FailAndRetry,
        E::Fail,
        E::RetryDue,
        E::Cancel,
        E::Reset,
        E::Approve,
        E::Reject,
    ];
    let mut seen = BTreeSet::new();
    for from in TaskState::ALL {
        for event in events {
            match transition(from, event) {
                Some(to) => {
                    assert!(
                        allowed.contains(&(from, event_name(event), to)),
                        "{from} --{event:?}--> {to} is not in the table"
                    );
                    seen.insert((from, event_name(event), to));
                }
                None => assert!(
                    !allowed
                        .iter()
                        .any(|(f, e, _)| *f == from && *e == event_name(event)),
                    "{from} --{event:?} should be allowed"
                ),
            }
        }
    }
    assert_eq!(seen, allowed);
    // Terminal states are absorbing but for an explicit reset.
    for from in TaskState::ALL.into_iter().filter(|s| s.is_terminal()) {
        for event in events.into_iter().filter(|e| *e != E::Reset) {
            assert_eq!(
                transition(from, event),
                None,
                "{from} must absorb {event:?}"
            );
        }
    }
}

fn event_name(event: TaskEvent) -> &'static str {
    // Debug names are stable enough for a set key in a test.
    match event {
        TaskEvent::DependenciesMet => "dependencies_met",
        TaskEvent::UpstreamFailed => "upstream_failed",
        TaskEvent::DependencyAdded => "dependency_added",
        TaskEvent::Assign => "assign",
        TaskEvent::Start => "start",
        TaskEvent::Release => "release",
        TaskEvent::LeaseExpired => "lease_expired",
        TaskEvent::Complete => "complete",
        TaskEvent::FailAndRetry => "fail_and_retry",
        TaskEvent::Fail => "fail",
        TaskEvent::RetryDue => "retry_due",
        TaskEvent::Cancel => "cancel",
        TaskEvent::Reset => "reset",
        TaskEvent::Approve => "approve",
        TaskEvent::Reject => "reject",
    }
}

#[test]
fn state_names_round_trip() {
    for state in TaskState::ALL {
        assert_eq!(state.as_str().parse::<TaskState>(), Ok(state));
    }
    assert_eq!(
        "bogus".parse::<TaskState>(),
        Err("unknown task state `bogus`".to_owned())
    );
}

#[test]
fn retry_delays_grow_exponentially_with_bounded_deterministic_jitter() {
    let policy = RetryPolicy {
        initial_interval: Duration::seconds(1),
        backoff_coefficient: 2.0,
        max_interval: Duration::seconds(10),
    };
    let task = TaskId::new();
    for (attempt, base_ms) in [
        (1, 1_000),
        (2, 2_000),
        (3, 4_000),
        (4, 8_000),
        (5, 10_000),
        (9, 10_000),
    ] {
        let delay = policy.delay(task, attempt).num_milliseconds();
        assert!(
            delay >= base_ms && delay <= base_ms + base_ms / 5,
            "attempt {attempt}: {delay} ms"
        );
        assert_eq!(
            policy.delay(task, attempt),
            policy.delay(task, attempt),
            "deterministic"
        );
    }
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        policy.after_failure(task, 3, 3, FailureKind::Transient, now),
        AfterFailure::GiveUp(FailureReason::Error)
    );
    assert_eq!(
        policy.after_failure(task, 1, 3, FailureKind::Permanent, now),
        AfterFailure::GiveUp(FailureReason::NonRetryable)
    );
    assert_eq!(
        policy.after_failure(task, 1, 3, FailureKind::Transient, now),
        AfterFailure::RetryAt(now + policy.delay(task, 1))
    );
    // Different tasks failing together come back at different times.
    let spread: BTreeSet<i64> = (0..20)
        .map(|_| policy.delay(TaskId::new(), 2).num_milliseconds())
        .collect();
    assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
}

#[test]
fn workflow_actions_follow_the_status_table() {
    use WorkflowAction as A;
    use WorkflowStatus as W;
    let cases = [
        (A::Start, W::Created, Some(W::Running)),
        (A::Start, W::Running, None),
        (A::Pause, W::Running, Some(W::Paused)),
        (A::Pause, W::Created, None),
        (A::Resume, W::Paused, Some(W::Running)),
        (A::Resume, W::Running, None),
        (A::Cancel, W::Paused, Some(W::Cancelled)),
        (A::Cancel, W::Succeeded, None),
        (A::RetryFailed, W::Failed, Some(W::Running)),
        (A::RetryFailed, W::Succeeded, None),
        (A::RetryFailed, W::Cancelled, None),
    ];
    for (action, from, expected) in cases {
        assert_eq!(action.apply(from), expected, "{action} from {from}");
    }
}

#[test]
fn the_leaf_rule_decides_the_outcome() {
    use TaskState as S;
    assert_eq!(outcome(1, false, [S::Succeeded]), None);
    assert_eq!(
        outcome(0, false, [S::Succeeded, S::Skipped]),
        Some(WorkflowStatus::Succeeded)
    );
    assert_eq!(
        outcome(0, false, [S::Succeeded, S::UpstreamFailed]),
        Some(WorkflowStatus::Failed)
    );
    assert_eq!(
        outcome(0, false, [S::Cancelled]),
        Some(WorkflowStatus::Failed)
    );
    assert_eq!(
        outcome(0, true, [S::Succeeded]),
        Some(WorkflowStatus::Failed)
    );
}

/// A random DAG over `n` nodes: edges only go from lower to higher index, then the indices are
/// shuffled by `perm` so the order is not given away.
fn random_dag() -> impl Strategy<Value = (usize, Vec<(u32, u32)>)> {
    (2usize..40).prop_flat_map(|n| {
        let edges = proptest::collection::vec((0..n as u32, 0..n as u32), 0..n * 3);
        (
            Just(n),
            edges,
            Just(()).prop_perturb(move |_, mut rng| {
                let mut perm: Vec<u32> = (0..n as u32).collect();
                for i in (1..n).rev() {
                    perm.swap(i, rng.random_range(0..=i));
                }
                perm
            }),
        )
            .prop_map(|(n, edges, perm)| {
                let edges = edges
                    .into_iter()
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| (a.min(b), a.max(b)))
                    .map(|(a, b)| (perm[a as usize], perm[b as usize]))
                    .collect();
                (n, edges)
            })
    })
}

proptest! {
    #[test]
    fn topological_order_and_levels_respect_every_edge((n, edges) in random_dag()) {
        let dag = Dag::new(n, &edges).unwrap();
        let mut position = vec![0; n];
        for (i, &v) in dag.topological_order().iter().enumerate() {
            position[v as usize] = i;
        }
        prop_assert_eq!(dag.topological_order().len(), n);
        for &(a, b) in &edges {
            prop_assert!(position[a as usize] < position[b as usize]);
            prop_assert!(dag.levels()[a as usize] < dag.levels()[b as usize]);
        }
    }

    #[test]
    fn critical_path_is_a_longest_path((n, edges) in random_dag(), weights in proptest::collection::vec(0u8..10, 40)) {
        let dag = Dag::new(n, &edges).unwrap();
        let durations: Vec<f64> = (0..n).map(|i| f64::from(weights[i])).collect();
        let schedule = dag.schedule(&durations);
        // The path follows edges and its length is the makespan.
        for pair in schedule.critical_path.windows(2) {
            prop_assert!(dag.successors(pair[0]).contains(&pair[1]));
        }
        let length: f64 = schedule.critical_path.iter().map(|&v| durations[v as usize]).sum();
        prop_assert!((length - schedule.makespan).abs() < 1e-9);
        // Nothing finishes later than the makespan, and every float is non-negative.
        for (v, duration) in durations.iter().enumerate() {
            prop_assert!(schedule.earliest_start[v] + duration <= schedule.makespan + 1e-9);
            prop_assert!(schedule.total_float[v] >= 0.0);
        }
    }

    #[test]
    fn an_added_back_edge_is_reported_as_a_real_cycle((n, edges) in random_dag()) {
        prop_assume!(!edges.is_empty());
        let dag = Dag::new(n, &edges).unwrap();
        let (a, b) = edges[0];
        let path = dag.path(a, b).unwrap();
        let mut cyclic = edges.clone();
        cyclic.push((b, a));
        let cycle = Dag::new(n, &cyclic).unwrap_err().0;
        prop_assert!(cycle.len() >= 2);
        let all: BTreeSet<(u32, u32)> = cyclic.iter().copied().collect();
        for i in 0..cycle.len() {
            let (dependent, dependency) = (cycle[i], cycle[(i + 1) % cycle.len()]);
            prop_assert!(all.contains(&(dependency, dependent)), "{dependency} -> {dependent} is not an edge");
        }
        prop_assert_eq!(path.first(), Some(&a));
        prop_assert_eq!(path.last(), Some(&b));
    }

    #[test]
    fn adding_an_edge_to_a_live_graph_keeps_it_acyclic((n, edges) in random_dag(), pick in any::<(u32, u32)>()) {
        let mut dag = Dag::new(n, &edges).unwrap();
        let (from, to) = (pick.0 % n as u32, pick.1 % n as u32);
        let before = (dag.edge_count(), dag.topological_order().to_vec());
        let mut with = edges.clone();
        with.push((from, to));
        match (dag.add_edge(from, to), Dag::new(n, &with)) {
            (Ok(()), Ok(rebuilt)) => {
                prop_assert!(dag.successors(from).contains(&to));
                prop_assert_eq!(dag.topological_order(), rebuilt.topological_order());
                prop_assert_eq!(dag.levels(), rebuilt.levels());
            }
            (Err(cycle), Err(_)) => {
                // The graph is unchanged, and the cycle starts at `to`, each node depending on
                // the next along real edges or the refused one.
                prop_assert_eq!((dag.edge_count(), dag.topological_order().to_vec()), before);
                let cycle = cycle.0;
                prop_assert_eq!(cycle.first(), Some(&to));
                let all: BTreeSet<(u32, u32)> = with.iter().copied().collect();
                for i in 0..cycle.len() {
                    let (dependent, dependency) = (cycle[i], cycle[(i + 1) % cycle.len()]);
                    prop_assert!(all.contains(&(dependency, dependent)), "{dependency} -> {dependent} is not an edge");
                }
            }
            (added, rebuilt) => prop_assert!(false, "add_edge said {added:?}, Dag::new said {:?}", rebuilt.err()),
        }
    }
}

#[test]
fn batched_task_ids_are_distinct_increasing_version_7_uuids() {
    let ids: Vec<TaskId> = TaskId::batch(10_000).collect();
    // The counter could wrap in its 62 bits (about once in 10^14 batches); distinctness is the
    // property that matters.
    let unique: BTreeSet<TaskId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 10_000);
    for id in &ids {
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(id.as_uuid().get_variant(), uuid::Variant::RFC4122);
    }
    let other: BTreeSet<TaskId> = TaskId::batch(10_000).collect();
    assert!(unique.is_disjoint(&other), "two batches do not collide");
}

#[test]
fn the_lease_holder_check_refuses_in_a_fixed_order() {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let held = lease::LeaseHolder {
        task: "w/a",
        state: TaskState::Running,
        holder: Some("ana"),
        token: LeaseToken(4),
        deadline: Some(at + Duration::minutes(5)),
    };
    let check = |lease: &lease::LeaseHolder<'_>, agent: &str, token: u64, now| {
        lease.check(agent, LeaseToken(token), "be completed", now)
    };
    assert!(check(&held, "ana", 4, at).is_ok());
    // Another agent's lease comes first, even with a wrong token after the deadline.
    let late = at + Duration::hours(1);
    assert!(matches!(
        check(&held, "bo", 1, late),
        Err(Error::NotLeaseHolder { holder, .. }) if holder == "ana"
    ));
    assert!(matches!(
        check(&held, "ana", 3, late),
        Err(Error::StaleLease {
            presented: 3,
            current: 4,
            ..
        })
    ));
    assert!(matches!(
        check(&held, "ana", 4, late),
        Err(Error::LeaseExpired { expired_at, .. }) if expired_at == at + Duration::minutes(5)
    ));
    // A task that went back in line is stale to an old token; a finished one says it is done.
    let ready = lease::LeaseHolder {
        state: TaskState::Ready,
        holder: None,
        token: LeaseToken(5),
        deadline: None,
        ..held
    };
    assert!(matches!(
        check(&ready, "ana", 4, at),
        Err(Error::StaleLease { .. })
    ));
    let done = lease::LeaseHolder {
        state: TaskState::Succeeded,
        ..ready
    };
    assert!(matches!(
        check(&done, "ana", 4, at),
        Err(Error::IllegalTransition {
            state: TaskState::Succeeded,
            verb: "be completed",
            ..
        })
    ));
}

fn record(state: TaskState) -> TaskRecord {
    TaskRecord {
        id: 1,
        uuid: TaskId::new(),
        workflow: 1,
        workflow_name: "w".into(),
        workflow_uuid: crate::id::WorkflowId::new(),
        key: "a".into(),
        title: "A".into(),
        description: None,
        estimate: 2.0,
        priority: 50,
        max_attempts: 2,
        b_level: 2.0,
        has_skills: false,
        kind: TaskKind::Work,
        state,
        reason: None,
        attempt: 0,
        agent: None,
        token: LeaseToken(0),
        deadline: None,
        ready_at: None,
        started_at: None,
        finished_at: None,
        note: None,
        result: None,
        error: None,
        actual: None,
    }
}

#[test]
fn a_step_moves_the_token_the_attempt_and_the_lease_and_says_what_follows() {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let mut task = record(TaskState::Ready);
    let start = Change {
        agent: Some("ana"),
        deadline: Some(at + Duration::minutes(15)),
        ..Change::default()
    };
    let started = step(&mut task, TaskEvent::Start, start, at).unwrap();
    assert_eq!(
        (task.state, task.attempt, task.token),
        (TaskState::Running, 1, LeaseToken(1))
    );
    assert_eq!(task.agent.as_deref(), Some("ana"));
    assert_eq!(task.deadline, Some(at + Duration::minutes(15)));
    assert_eq!((started.opened, started.attempt_ended), (0, None));

    let done = Change {
        actual: Some(4.0),
        result: Some("ok"),
        ..Change::default()
    };
    let later = at + Duration::minutes(3);
    let completed = step(&mut task, TaskEvent::Complete, done, later).unwrap();
    assert_eq!(
        (task.state, task.token, task.deadline),
        (TaskState::Succeeded, LeaseToken(2), None)
    );
    assert_eq!((task.agent.clone(), task.finished_at), (None, Some(later)));
    assert_eq!(completed.agent.as_deref(), Some("ana"));
    assert_eq!(completed.opened, -1);
    let ended = completed.attempt_ended.unwrap();
    assert!(ended.succeeded);
    assert!((ended.log_ratio.unwrap() - 2f64.ln()).abs() < 1e-12);

    // An illegal event changes nothing.
    let before = (task.state, task.token, task.attempt);
    assert!(matches!(
        step(&mut task, TaskEvent::Start, Change::default(), later),
        Err(Error::IllegalTransition { .. })
    ));
    assert_eq!((task.state, task.token, task.attempt), before);
}

#[test]
fn a_release_gives_the_attempt_back_and_an_expired_lease_fails_only_the_last_attempt() {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let workflow = WorkflowRecord {
        id: 1,
        uuid: crate::id::WorkflowId::new(),
        name: "w".into(),
        description: None,
        mode: Mode::Dag,
        on_failure: FailurePolicy::BlockDependents,
        retry: RetryPolicy::default(),
        status: WorkflowStatus::Running,
        open_tasks: 1,
        fail_fast_triggered: false,
        created_at: at,
        started_at: Some(at),
        finished_at: None,
    };
    let mut task = record(TaskState::Ready);
    let claim = || Change {
        agent: Some("ana"),
        deadline: Some(at),
        ..Change::default()
    };
    step(&mut task, TaskEvent::Start, claim(), at).unwrap();
    let released = step(&mut task, TaskEvent::Release, Change::default(), at).unwrap();
    assert_eq!((task.state, task.attempt), (TaskState::Ready, 0));
    assert_eq!(
        released.attempt_ended, None,
        "a release is not the agent's failure"
    );

    step(&mut task, TaskEvent::Start, claim(), at).unwrap();
    let (event, change) = on_lease_expired(&task, &workflow, at);
    assert_eq!((event, change.reason), (TaskEvent::LeaseExpired, None));
    step(&mut task, event, change, at).unwrap();
    assert_eq!(task.state, TaskState::Ready);

    step(&mut task, TaskEvent::Start, claim(), at).unwrap();
    assert_eq!(task.attempt, task.max_attempts);
    let (event, change) = on_lease_expired(&task, &workflow, at);
    assert_eq!(
        (event, change.reason),
        (TaskEvent::Fail, Some(FailureReason::LeaseExpired))
    );
    let failed = step(&mut task, event, change, at).unwrap();
    assert_eq!(task.state, TaskState::Failed);
    assert_eq!(failed.attempt_ended.map(|e| e.succeeded), Some(false));
}

#[test]
fn a_gate_that_could_run_waits_for_approval_and_only_a_decision_ends_it() {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let mut gate = TaskRecord {
        kind: TaskKind::Gate,
        ..record(TaskState::Pending)
    };
    let stepped = step(&mut gate, TaskEvent::DependenciesMet, Change::default(), at).unwrap();
    assert_eq!(stepped.to, TaskState::AwaitingApproval);
    assert_eq!(gate.ready_at, Some(at));
    // No agent can claim or be handed a gate.
    for event in [TaskEvent::Start, TaskEvent::Assign, TaskEvent::Complete] {
        assert!(step(&mut gate.clone(), event, Change::default(), at).is_err());
    }
    let (event, change) = decide_gate(&gate, GateDecision::Approve, Some("looks right")).unwrap();
    let mut approved = gate.clone();
    step(&mut approved, event, change, at).unwrap();
    assert_eq!(approved.state, TaskState::Succeeded);
    assert_eq!(approved.result.as_deref(), Some("looks right"));
    let (event, change) = decide_gate(&gate, GateDecision::Reject, None).unwrap();
    let mut rejected = gate.clone();
    step(&mut rejected, event, change, at).unwrap();
    assert_eq!(rejected.state, TaskState::Failed);
    assert_eq!(rejected.reason, Some(FailureReason::Rejected));
    assert_eq!(rejected.error.as_deref(), Some("rejected"));
    // A decision on a decided gate, or on work, is refused.
    assert!(matches!(
        decide_gate(&approved, GateDecision::Reject, None),
        Err(Error::IllegalTransition {
            state: TaskState::Succeeded,
            verb: "be rejected",
            ..
        })
    ));
    let work = record(TaskState::Ready);
    assert!(matches!(
        decide_gate(&work, GateDecision::Approve, None),
        Err(Error::InvalidArgument { .. })
    ));
    // Work that could run is simply ready.
    let mut work = record(TaskState::Pending);
    step(&mut work, TaskEvent::DependenciesMet, Change::default(), at).unwrap();
    assert_eq!(work.state, TaskState::Ready);
}
