//! Claims, leases and fencing: claim order, hand-over of results, the filter of a profiled agent, expired leases and stale tokens, reports and their validation, and eight threads with their own handles claiming from one database.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use orchestration_core::workflow::*;
use orchestration_core::*;

use crate::Backend;
use crate::harness::*;

pub(crate) fn claims_follow_priority_then_b_level_then_age(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "order",
        FailurePolicy::default(),
        vec![
            task("low", &[]).priority(10),
            task("short", &[]).estimate(1.0),
            task("long", &[]).estimate(1.0),
            task("after-long", &["long"]).estimate(5.0),
            task("urgent", &[]).priority(90),
        ],
    );
    let order: Vec<String> = (0..4).map(|i| h.claim_key(&format!("agent-{i}"))).collect();
    assert_eq!(order, ["urgent", "long", "short", "low"]);
}

pub(crate) fn a_claim_takes_the_best_ready_task_of_all_running_workflows(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "low",
        FailurePolicy::default(),
        vec![task("a", &[]).priority(10)],
    );
    h.create(
        "paused",
        FailurePolicy::default(),
        vec![task("b", &[]).priority(90)],
    );
    h.create(
        "high",
        FailurePolicy::default(),
        vec![task("c", &[]).priority(50)],
    );
    h.create(
        "middle",
        FailurePolicy::default(),
        vec![task("d", &[]).priority(30)],
    );
    h.store
        .execute(&WorkflowRef::from("paused"), WorkflowAction::Pause)
        .unwrap();
    let order: Vec<String> = (0..3)
        .map(|i| {
            let claim = h.claim(&format!("agent-{i}")).unwrap();
            format!("{}/{}", claim.task.workflow_name, claim.task.key)
        })
        .collect();
    // The paused workflow's task, the most urgent of all, is not handed out.
    assert_eq!(order, ["high/c", "middle/d", "low/a"]);
    assert!(h.claim("agent-3").is_none());
    h.store
        .execute(&WorkflowRef::from("paused"), WorkflowAction::Resume)
        .unwrap();
    assert_eq!(h.claim_key("agent-3"), "b");
}

pub(crate) fn a_claim_hands_over_the_results_of_dependencies(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "results",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[]), task("c", &["a", "b"])],
    );
    for _ in 0..2 {
        let claim = h.claim("w").unwrap();
        h.complete(&claim, "w");
    }
    let claim = h.claim("w").unwrap();
    assert_eq!(claim.task.key, "c");
    let results: Vec<(String, Option<String>)> = claim
        .dependencies
        .into_iter()
        .map(|d| (d.key, d.result))
        .collect();
    assert_eq!(
        results,
        [
            ("a".into(), Some("a done".into())),
            ("b".into(), Some("b done".into()))
        ]
    );
}

pub(crate) fn a_claim_respects_skills_status_and_wip_limit_of_a_profiled_agent(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "skills",
        FailurePolicy::default(),
        vec![
            task("rusty", &[]).skill("rust", 4).priority(90),
            task("plain", &[]).priority(10),
            task("plain-2", &[]).priority(5),
        ],
    );
    let profile = |skills: &[(&str, u8)], max: u32| AgentUpdate {
        capabilities: Some(skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()),
        max_concurrent: Some(max),
        ..AgentUpdate::default()
    };
    h.store
        .upsert_agent("junior", &profile(&[("rust", 2)], 1))
        .unwrap();
    assert_eq!(
        h.claim_key("junior"),
        "plain",
        "the junior cannot take the rust task"
    );
    let idle = h.store.claim(&ClaimRequest::new("junior")).unwrap();
    assert_eq!(
        idle,
        orchestration_core::ClaimOutcome::Idle(orchestration_core::store::Idle {
            reason: orchestration_core::store::IdleReason::AtWipLimit { held: 1, limit: 1 },
            next_retry_at: None,
        }),
        "at its WIP limit, an agent is told so, not refused"
    );
    let unknown = h
        .store
        .claim(&ClaimRequest::new("senior").task(TaskRef::key("skills", "rusty")))
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "unknown agent `senior`; did you mean `junior`?",
        "an agent nobody registered takes nothing, and a typo is pointed out"
    );

    h.store
        .upsert_agent(
            "paused",
            &AgentUpdate {
                status: Some(AgentStatus::Paused),
                ..AgentUpdate::default()
            },
        )
        .unwrap();
    let idle = h.store.claim(&ClaimRequest::new("paused")).unwrap();
    let orchestration_core::ClaimOutcome::Idle(idle) = idle else {
        panic!("a paused agent gets no work: {idle:?}")
    };
    assert_eq!(
        idle.reason,
        orchestration_core::store::IdleReason::AgentInactive(AgentStatus::Paused)
    );
    assert_eq!(
        idle.reason.to_string(),
        "the agent is paused; set it active to take work"
    );

    h.store
        .upsert_agent("lead", &profile(&[("rust", 3)], 5))
        .unwrap();
    h.create(
        "skills-2",
        FailurePolicy::default(),
        vec![task("deep", &[]).skill("rust", 5)],
    );
    let err = h
        .store
        .claim(&ClaimRequest::new("lead").task(TaskRef::key("skills-2", "deep")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent `lead` cannot take task `skills-2/deep`: has `rust` at level 3, 5 needed"
    );
}

pub(crate) fn leases_expire_into_failed_attempts_and_stale_tokens_are_rejected(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "lease",
        FailurePolicy::default(),
        vec![task("a", &[]).max_attempts(2)],
    );
    register(&h.store, &["w1", "w2"]);
    let lease = Duration::seconds(60);
    let first = h
        .store
        .claim(&ClaimRequest::new("w1").lease(lease))
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(first.task.attempt, 1);

    // A heartbeat before expiry extends the lease.
    h.clock.advance(Duration::seconds(50));
    h.store
        .update_task(
            &TaskRef::Id(first.task.id),
            "w1",
            first.token,
            &TaskUpdate::Heartbeat,
            Some(lease),
        )
        .unwrap();
    h.clock.advance(Duration::seconds(50));
    assert_eq!(
        h.state("lease", "a"),
        TaskState::Running,
        "the heartbeat kept it alive"
    );

    // Another agent's report is rejected.
    let err = h
        .update_task(&first, "w2", TaskUpdate::Release)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `lease/a` is leased to `w1`, not to `w2`"
    );

    // After expiry the report is rejected and nothing changes.
    h.clock.advance(Duration::seconds(11));
    let events = h.event_count();
    let err = h
        .update_task(
            &first,
            "w1",
            TaskUpdate::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::LeaseExpired { .. }), "{err}");
    assert_eq!(h.event_count(), events);

    // The next claim takes the task back (one attempt used) and hands it out anew.
    let second = h.claim("w2").unwrap();
    assert_eq!(second.task.attempt, 2);
    assert!(second.token > first.token);
    let err = h
        .update_task(
            &first,
            "w1",
            TaskUpdate::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `lease/a` is leased to `w2`, not to `w1`"
    );
    let stale = Claim {
        token: LeaseToken(first.token.0),
        ..second.clone()
    };
    let err = h
        .update_task(
            &stale,
            "w2",
            TaskUpdate::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::StaleLease { .. }), "{err}");
    assert!(err.to_string().contains("the lease was lost"), "{err}");

    // A token never issued is a mistake of the caller's, not a lost lease, and changes nothing.
    let events = h.event_count();
    let mistyped = Claim {
        token: LeaseToken(second.token.0 + 7),
        ..second.clone()
    };
    let err = h
        .update_task(&mistyped, "w2", TaskUpdate::Heartbeat)
        .unwrap_err();
    assert!(matches!(err, Error::StaleLease { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "lease token {} was never issued for task `lease/a` (its current token is {}); send \
             the token your claim returned: task_get with your agent lists the tasks you hold \
             and their tokens",
            second.token.0 + 7,
            second.token.0
        )
    );
    assert_eq!(h.event_count(), events);

    // The last attempt's lease expiring fails the task for good.
    h.clock.advance(Duration::minutes(16));
    assert_eq!(h.store.tick().unwrap().expired, 1);
    let view = h.store.task(&TaskRef::key("lease", "a")).unwrap();
    assert_eq!(
        (view.state, view.reason),
        (TaskState::Failed, Some(FailureReason::LeaseExpired))
    );
    assert_eq!(h.status("lease"), WorkflowStatus::Failed);
    let expired = h
        .store
        .events_since(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.detail.as_deref() == Some("lease_expired"))
        .count();
    assert_eq!(expired, 2, "both expiries are in the log");
}

pub(crate) fn release_gives_a_task_back_without_using_an_attempt(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "rel",
        FailurePolicy::default(),
        vec![task("a", &[]).max_attempts(1)],
    );
    let claim = h.claim("w1").unwrap();
    h.update_task(&claim, "w1", TaskUpdate::Release).unwrap();
    let again = h.claim("w2").unwrap();
    assert_eq!(again.task.attempt, 1);
    h.complete(&again, "w2");
    assert_eq!(h.status("rel"), WorkflowStatus::Succeeded);
}

pub(crate) fn reports_validate_their_arguments_and_change_nothing_when_rejected(db: &dyn Backend) {
    let h = harness(db);
    h.create("args", FailurePolicy::default(), vec![task("a", &[])]);
    let claim = h.claim("w").unwrap();
    let events = h.event_count();
    let cases: Vec<(TaskUpdate, &str)> = vec![
        (
            TaskUpdate::Complete {
                result: None,
                actual: Some(-1.0),
            },
            "invalid actual: -1 is outside 0 to 10000 points",
        ),
        (
            TaskUpdate::Complete {
                result: None,
                actual: Some(f64::NAN),
            },
            "invalid actual: NaN is outside 0 to 10000 points",
        ),
        (
            TaskUpdate::Complete {
                result: Some("r".repeat(100_001)),
                actual: None,
            },
            "invalid result: must be at most 100000 characters, got 100001",
        ),
    ];
    for (report, expected) in cases {
        assert_eq!(
            h.update_task(&claim, "w", report).unwrap_err().to_string(),
            expected
        );
    }
    let err = h
        .store
        .claim(&ClaimRequest::new("w").lease(Duration::seconds(0)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid lease_seconds: 0 s is outside 1 to 86400 s"
    );
    let err = h.store.claim(&ClaimRequest::new("bad name")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid agent: agent name `bad name` contains ` `, which is not allowed"),
        "{err}"
    );
    assert_eq!(h.event_count(), events);
    assert_eq!(h.state("args", "a"), TaskState::Running);
}

pub(crate) fn a_profiled_agent_gets_the_task_its_skills_fit_best_within_the_top_priority(
    db: &dyn Backend,
) {
    let h = harness(db);
    h.store
        .upsert_agent("rustacean", &profile(&[("rust", 5), ("css", 2)], 3))
        .unwrap();
    h.create(
        "fit",
        FailurePolicy::default(),
        vec![
            task("styling", &[]).skill("css", 1),
            task("systems", &[]).skill("rust", 3),
            task("urgent-css", &[]).skill("css", 1).priority(60),
        ],
    );
    let order: Vec<String> = (0..3).map(|_| h.claim_key("rustacean")).collect();
    assert_eq!(
        order,
        ["urgent-css", "systems", "styling"],
        "priority first, then fit"
    );
}

pub(crate) fn a_repeated_completion_says_the_task_is_finished(db: &dyn Backend) {
    let h = harness(db);
    h.create("twice", FailurePolicy::default(), vec![task("a", &[])]);
    let claim = h.claim("w").unwrap();
    h.complete(&claim, "w");
    let err = h
        .update_task(
            &claim,
            "w",
            TaskUpdate::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `twice/a` is succeeded: it cannot be completed"
    );
}

pub(crate) fn eight_threads_with_their_own_connections_run_each_task_exactly_once(
    db: &dyn Backend,
) {
    let tasks: Vec<TaskSpec> = (0..2_000).map(|i| task(&format!("t{i}"), &[])).collect();
    let spec = WorkflowSpec {
        name: "swarm".into(),
        mode: Mode::Parallel,
        tasks,
        ..Default::default()
    };
    let setup = db.open();
    setup.create_workflow(spec, &started()).unwrap();
    let workers: Vec<String> = (0..8).map(|w| format!("worker-{w}")).collect();
    register(
        &setup,
        &workers.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    drop(setup);
    let executed = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let executed = Arc::clone(&executed);
            scope.spawn(move || {
                let store = db.open();
                let agent = format!("worker-{worker}");
                while let Some(claim) = store.claim(&ClaimRequest::new(&agent)).unwrap().claimed() {
                    executed.lock().unwrap().push(claim.task.key.clone());
                    let done = TaskUpdate::Complete {
                        result: None,
                        actual: None,
                    };
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
            });
        }
    });
    let executed = executed.lock().unwrap();
    let unique: HashSet<&String> = executed.iter().collect();
    assert_eq!(executed.len(), 2_000, "no task ran twice");
    assert_eq!(unique.len(), 2_000, "every task ran");
    let store = db.open();
    assert_eq!(
        store.workflow_summary(&"swarm".into()).unwrap().status,
        WorkflowStatus::Succeeded
    );
}

/// Twelve threads, three per agent, each with its own handle, claim and complete a workflow
/// whose completions race to unblock the same dependents: no task is claimed twice, no agent
/// ever holds more tasks than its limit (replayed from the log, in the order the changes
/// committed), every dependent becomes ready once, and the workflow ends once. On a backend
/// whose claims and reports run beside each other, this is what their row locks, the
/// agent's lock and the open-task count must get right.
pub(crate) fn claimers_of_one_agent_never_pass_its_wip_limit_nor_share_a_task(db: &dyn Backend) {
    const AGENTS: usize = 4;
    const LIMIT: u32 = 2;
    let mut tasks: Vec<TaskSpec> = (0..120).map(|i| task(&format!("r{i}"), &[])).collect();
    for join in 0..12 {
        let roots: Vec<String> = (0..10).map(|i| format!("r{}", join * 10 + i)).collect();
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        tasks.push(task(&format!("j{join}"), &roots));
    }
    let joins: Vec<String> = (0..12).map(|join| format!("j{join}")).collect();
    tasks.push(task(
        "end",
        &joins.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let total = tasks.len();
    let setup = db.open();
    setup
        .create_workflow(
            WorkflowSpec {
                name: "contended".into(),
                tasks,
                ..Default::default()
            },
            &started(),
        )
        .unwrap();
    for agent in 0..AGENTS {
        setup
            .upsert_agent(
                &format!("agent-{agent}"),
                &AgentUpdate {
                    max_concurrent: Some(LIMIT),
                    ..AgentUpdate::default()
                },
            )
            .unwrap();
    }
    let claimed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..AGENTS * 3 {
            let claimed = &claimed;
            scope.spawn(move || {
                let store = db.open();
                let agent = format!("agent-{}", thread % AGENTS);
                let workflow = WorkflowRef::from("contended");
                loop {
                    let request = ClaimRequest::new(&agent).in_workflow("contended");
                    match store.claim(&request).unwrap() {
                        ClaimOutcome::Claimed(claim) => {
                            claimed.lock().unwrap().push(claim.task.key.clone());
                            // Held a moment, so that the agent's other threads claim while
                            // it holds this one.
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            let done = TaskUpdate::Complete {
                                result: None,
                                actual: None,
                            };
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
                        ClaimOutcome::Idle(_) => {
                            let status = store.workflow_summary(&workflow).unwrap().status;
                            if status.is_finished() {
                                return;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                    }
                }
            });
        }
    });
    let claimed = claimed.into_inner().unwrap();
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(unique.len(), total, "every task ran");
    assert_eq!(claimed.len(), total, "no task ran twice");
    let store = db.open();
    assert_eq!(
        store.workflow_summary(&"contended".into()).unwrap().status,
        WorkflowStatus::Succeeded
    );
    let events = store.events_since(0, 100_000).unwrap();
    let leased = [TaskState::Assigned, TaskState::Running];
    let mut held: Vec<HashSet<String>> = vec![HashSet::new(); AGENTS];
    let mut became_ready: Vec<String> = Vec::new();
    for event in events.iter().filter(|e| e.kind == EventKind::TaskState) {
        let key = event.task_key.clone().unwrap();
        if event.to == Some(TaskState::Ready) && event.from == Some(TaskState::Pending) {
            became_ready.push(key.clone());
        }
        let Some(agent) = &event.agent else { continue };
        let agent: usize = agent.trim_start_matches("agent-").parse().unwrap();
        let to_leased = event.to.is_some_and(|to| leased.contains(&to));
        let from_leased = event.from.is_some_and(|from| leased.contains(&from));
        if to_leased {
            held[agent].insert(key);
        } else if from_leased {
            held[agent].remove(&key);
        }
        assert!(
            held[agent].len() <= LIMIT as usize,
            "agent-{agent} held {:?} at event {}",
            held[agent],
            event.seq
        );
    }
    let ready: HashSet<&String> = became_ready.iter().collect();
    assert_eq!(
        ready.len(),
        became_ready.len(),
        "no task became ready twice"
    );
    let finished: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::WorkflowStatus && e.detail.as_deref() == Some("succeeded"))
        .collect();
    assert_eq!(finished.len(), 1, "the workflow ended once");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "the log's positions grow"
    );
}

/// An agent that lost its context finds its tasks again, and learns which leases lapsed: a
/// report on those is refused, so it should claim again rather than carry on.
pub(crate) fn held_tasks_say_which_leases_lapsed(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "held",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[])],
    );
    let first = h.claim("w").unwrap();
    h.clock.advance(Duration::minutes(10));
    let second = h.claim("w").unwrap();
    let lapsed = |store: &Store| -> Vec<(String, bool)> {
        store
            .held_tasks("w")
            .unwrap()
            .into_iter()
            .map(|t| (t.task.key, t.lapsed))
            .collect()
    };
    assert_eq!(lapsed(&h.store), [("a".into(), false), ("b".into(), false)]);
    // The first lease (15 minutes) ends before the second.
    h.clock.advance(Duration::minutes(6));
    assert_eq!(lapsed(&h.store), [("a".into(), true), ("b".into(), false)]);
    assert!(
        h.update_task(
            &first,
            "w",
            TaskUpdate::Progress {
                note: "late".into()
            }
        )
        .is_err()
    );
    h.complete(&second, "w");
}
