//! Faults of time: the clock jumping forward or back under running leases. A jump forward
//! expires leases and rejects late reports; a jump back must neither keep a dead agent's lease
//! alive until the clock catches up, nor produce negative durations.

use chrono::{DateTime, Duration, Utc};
use orchestration_core::{
    AgentUpdate, ClaimRequest, Clock, CreateOptions, Error, LeaseToken, ManualClock, Mode, Store,
    TaskRef, TaskSpec, TaskState, TaskUpdate, WorkflowSpec, collaboration::LockMode,
    collaboration::Resource, limits, store::LockOutcome,
};

fn start() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

/// A store on a manual clock with one started workflow of `n` independent tasks.
fn store(n: usize) -> (Store, ManualClock) {
    let (clock, handle) = Clock::manual(start());
    let store = Store::open_in_memory().unwrap().with_clock(clock);
    let mut spec = WorkflowSpec::new("w", Mode::Parallel);
    for i in 0..n {
        spec = spec.task(TaskSpec::new(format!("t{i}"), "work").max_attempts(5));
    }
    store
        .create_workflow(
            spec,
            &CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .unwrap();
    // Only registered agents act; these may hold many tasks at once.
    let roomy = AgentUpdate {
        max_concurrent: Some(100),
        ..AgentUpdate::default()
    };
    for agent in ["a", "b", "c", "agent-0", "agent-1", "agent-2", "agent-3"] {
        store.upsert_agent(agent, &roomy).unwrap();
    }
    (store, handle)
}

fn claim(store: &Store, agent: &str, lease: Duration) -> (TaskRef, LeaseToken) {
    let claim = store
        .claim(&ClaimRequest::new(agent).lease(lease))
        .unwrap()
        .claimed()
        .expect("a task is ready");
    (claim.task.id.into(), claim.token)
}

fn complete() -> TaskUpdate {
    TaskUpdate::Complete {
        result: None,
        actual: None,
    }
}

#[test]
fn a_jump_forward_expires_the_lease_and_rejects_the_late_report() {
    let (store, clock) = store(1);
    let (task, token) = claim(&store, "a", Duration::minutes(5));
    clock.advance(Duration::hours(3));
    // The late report comes before anything else noticed the expiry.
    let late = store.update_task(&task, "a", token, &complete(), None);
    assert!(matches!(late, Err(Error::LeaseExpired { .. })), "{late:?}");
    let (again, token_b) = claim(&store, "b", Duration::minutes(5));
    assert_eq!(again, task, "the expired task is offered again");
    assert!(token_b > token);
    let view = store.task(&task).unwrap();
    assert_eq!((view.state, view.attempt), (TaskState::Running, 2));
    // The first agent's token is now stale for good, even within the new lease.
    let stale = store.update_task(&task, "a", token, &complete(), None);
    assert!(stale.is_err());
    store
        .update_task(&task, "b", token_b, &complete(), None)
        .unwrap();
    assert_eq!(store.task(&task).unwrap().state, TaskState::Succeeded);
}

#[test]
fn a_jump_back_does_not_keep_a_dead_agents_lease_until_the_clock_catches_up() {
    let (store, clock) = store(2);
    let (task, _) = claim(&store, "a", Duration::minutes(5));
    // The clock goes back a year: the lease's deadline now lies a year and five minutes ahead.
    clock.advance(-Duration::days(365));
    store.tick().unwrap();
    let view = store.task(&task).unwrap();
    let left = view.lease_expires_at.unwrap() - clock.now();
    assert!(
        left <= Duration::seconds(limits::MAX_LEASE_SECONDS),
        "a lease never runs longer than the longest lease from now: {left}"
    );
    assert!(left > Duration::zero(), "nor is it cut to nothing: {left}");
    // The agent died: after at most the longest lease, the task is back for others.
    clock.advance(Duration::seconds(limits::MAX_LEASE_SECONDS));
    let (again, _) = claim(&store, "b", Duration::minutes(5));
    let (other, _) = claim(&store, "c", Duration::minutes(5));
    assert!(again == task || other == task, "the task came back");
}

#[test]
fn a_heartbeat_after_a_jump_back_extends_from_the_new_now() {
    let (store, clock) = store(1);
    let (task, token) = claim(&store, "a", Duration::minutes(5));
    clock.advance(-Duration::hours(2));
    // A live agent keeps working: its heartbeat is accepted and sets the lease from now.
    store
        .update_task(
            &task,
            "a",
            token,
            &TaskUpdate::Heartbeat,
            Some(Duration::minutes(5)),
        )
        .unwrap();
    let view = store.task(&task).unwrap();
    assert_eq!(
        view.lease_expires_at.unwrap(),
        clock.now() + Duration::minutes(5)
    );
    store
        .update_task(&task, "a", token, &complete(), None)
        .unwrap();
    assert_eq!(store.task(&task).unwrap().state, TaskState::Succeeded);
}

#[test]
fn a_jump_back_between_start_and_end_gives_no_negative_cycle_time() {
    let (store, clock) = store(1);
    let (task, token) = claim(&store, "a", Duration::minutes(5));
    clock.advance(-Duration::hours(1));
    store
        .update_task(&task, "a", token, &complete(), None)
        .unwrap();
    let window = (
        clock.now() - Duration::days(7),
        clock.now() + Duration::days(1),
    );
    let performance = store.agent_performance(window.0, window.1, None).unwrap();
    let metrics = &performance.iter().find(|p| p.agent == "a").unwrap().metrics;
    assert_eq!(metrics.completed, 1);
    for p in metrics
        .cycle_time_p50_hours
        .iter()
        .chain(&metrics.cycle_time_p85_hours)
    {
        assert!(*p >= 0.0, "cycle time {p}");
    }
}

#[test]
fn clock_jumps_back_and_forth_never_hand_a_task_to_two_agents() {
    let (store, clock) = store(20);
    let mut held: Vec<(TaskRef, String, LeaseToken)> = Vec::new();
    let jumps = [
        Duration::minutes(-30),
        Duration::minutes(10),
        Duration::hours(-5),
        Duration::hours(30),
        Duration::seconds(-1),
        Duration::minutes(7),
    ];
    for (round, jump) in jumps.iter().cycle().take(60).enumerate() {
        clock.advance(*jump);
        let agent = format!("agent-{}", round % 4);
        if let Some(claim) = store
            .claim(&ClaimRequest::new(&agent).lease(Duration::minutes(5)))
            .unwrap()
            .claimed()
        {
            let task: TaskRef = claim.task.id.into();
            // Whoever held it before lost the lease: only the newest holder may report.
            for (old, other, token) in held.iter().filter(|(t, _, _)| *t == task) {
                assert!(
                    store
                        .update_task(old, other, *token, &complete(), None)
                        .is_err(),
                    "round {round}: an old holder completed a re-claimed task"
                );
            }
            held.push((task, agent, claim.token));
        }
        if round % 3 == 2
            && let Some((task, agent, token)) = held.pop()
        {
            let _ = store.update_task(&task, &agent, token, &complete(), None);
        }
    }
    // However time moved, no task is held by two agents and none succeeded twice.
    let succeeded: Vec<_> = store
        .events_since(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.to == Some(TaskState::Succeeded))
        .map(|e| e.task_key.unwrap())
        .collect();
    let mut unique = succeeded.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), succeeded.len(), "no task succeeded twice");
}

#[test]
fn a_jump_back_does_not_keep_a_dead_agents_lock_until_the_clock_catches_up() {
    let (store, clock) = store(1);
    let file = Resource::Exact("src/main.rs".into());
    let taken = store
        .lock("a", &file, LockMode::Exclusive, Duration::hours(1))
        .unwrap();
    assert!(matches!(taken, LockOutcome::Acquired(_)));
    clock.advance(-Duration::days(365));
    let blocked = store
        .lock("b", &file, LockMode::Exclusive, Duration::hours(1))
        .unwrap();
    assert!(matches!(blocked, LockOutcome::Blocked(_)), "{blocked:?}");
    // The longest lock lasts a day; a day after the jump the dead agent's lock is gone.
    clock.advance(Duration::days(1) + Duration::seconds(1));
    let taken = store
        .lock("b", &file, LockMode::Exclusive, Duration::hours(1))
        .unwrap();
    assert!(matches!(taken, LockOutcome::Acquired(_)), "{taken:?}");
}
