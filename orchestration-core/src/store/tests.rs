//! Tests of the store's use cases: claims, leases, reports, retries on the manual clock,
//! propagation under each failure policy, dependency edits, persistence, real concurrency and
//! a property test that runs random workflows to the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use crate::{
    AgentStatus, AgentUpdate, Claim, ClaimRequest, Clock, CreateOptions, DependencyEdit, Error,
    EventKind, FailurePolicy, FailureReason, LeaseToken, ManualClock, Mode, Progress, Recipients,
    Report, RetryPolicy, Store, TaskRef, TaskSpec, TaskState, WorkflowAction, WorkflowRef,
    WorkflowSpec, WorkflowStatus,
};

struct Harness {
    store: Store,
    clock: ManualClock,
}

fn harness() -> Harness {
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    Harness {
        store: Store::open_in_memory().unwrap().with_clock(clock),
        clock: handle,
    }
}

/// Registers `agents` with the default profile: only registered agents take work.
fn register(store: &Store, agents: &[&str]) {
    for agent in agents {
        store.upsert_agent(agent, &AgentUpdate::default()).unwrap();
    }
}

fn task(key: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec::new(key, format!("do {key}")).after(deps.iter().copied())
}

fn started() -> CreateOptions {
    CreateOptions {
        start: true,
        idempotency_key: None,
    }
}

impl Harness {
    fn create(&self, name: &str, policy: FailurePolicy, tasks: Vec<TaskSpec>) {
        let spec = WorkflowSpec {
            name: name.into(),
            on_failure: policy,
            tasks,
            ..Default::default()
        };
        self.store.create_workflow(spec, &started()).unwrap();
    }

    /// Claims for `agent`, registering it first when nobody has: only registered agents
    /// take work, and most tests are about something else.
    fn claim(&self, agent: &str) -> Option<Claim> {
        self.register(agent);
        self.store
            .claim(&ClaimRequest::new(agent))
            .unwrap()
            .claimed()
    }

    /// Registers `agent` with the default profile unless it has one.
    fn register(&self, agent: &str) {
        if let Err(Error::UnknownAgent { .. }) = self.store.agent(agent) {
            self.store
                .upsert_agent(agent, &AgentUpdate::default())
                .unwrap();
        }
    }

    fn claim_key(&self, agent: &str) -> String {
        self.claim(agent).map(|c| c.task.key).unwrap_or_default()
    }

    fn report(&self, claim: &Claim, agent: &str, report: Report) -> crate::Result<()> {
        self.store
            .report(
                &TaskRef::Id(claim.task.id),
                agent,
                claim.token,
                &report,
                None,
            )
            .map(|_| ())
    }

    fn complete(&self, claim: &Claim, agent: &str) {
        self.report(
            claim,
            agent,
            Report::Complete {
                result: Some(format!("{} done", claim.task.key)),
                actual: None,
            },
        )
        .unwrap();
    }

    fn fail(&self, claim: &Claim, agent: &str, retryable: bool) {
        self.report(
            claim,
            agent,
            Report::Fail {
                error: "boom".into(),
                retryable,
            },
        )
        .unwrap();
    }

    /// Every task's state, by key.
    fn states(&self, workflow: &str) -> BTreeMap<String, TaskState> {
        let report = self
            .store
            .workflow_report(&WorkflowRef::from(workflow))
            .unwrap();
        report.tasks.into_iter().map(|t| (t.key, t.state)).collect()
    }

    fn state(&self, workflow: &str, key: &str) -> TaskState {
        self.states(workflow)[key]
    }

    fn status(&self, workflow: &str) -> WorkflowStatus {
        self.store
            .workflow_summary(&WorkflowRef::from(workflow))
            .unwrap()
            .status
    }

    fn event_count(&self) -> usize {
        self.store.events_since(0, usize::MAX >> 1).unwrap().len()
    }
}

/// Compares the states of a workflow's tasks with `expected`, written `key=state` with spaces.
#[track_caller]
fn check_states(h: &Harness, workflow: &str, expected: &str) {
    let actual: Vec<String> = h
        .states(workflow)
        .into_iter()
        .map(|(k, s)| format!("{k}={s}"))
        .collect();
    assert_eq!(actual.join(" "), expected);
}

#[test]
fn creating_and_starting_makes_the_free_tasks_ready() {
    let h = harness();
    let spec = WorkflowSpec::new("ship", Mode::Dag)
        .task(task("a", &[]))
        .task(task("b", &["a"]))
        .task(task("c", &[]));
    let created = h
        .store
        .create_workflow(spec, &CreateOptions::default())
        .unwrap();
    assert_eq!(created.status, WorkflowStatus::Created);
    assert!(created.ready.is_empty());
    check_states(&h, "ship", "a=pending b=pending c=pending");
    assert_eq!(h.claim("x"), None, "a created workflow hands out nothing");

    let outcome = h
        .store
        .execute(&"ship".into(), WorkflowAction::Start)
        .unwrap();
    assert_eq!(outcome.status, WorkflowStatus::Running);
    assert_eq!(outcome.ready, ["a", "c"]);
    check_states(&h, "ship", "a=ready b=pending c=ready");
}

#[test]
fn a_rejected_spec_or_duplicate_name_writes_nothing() {
    let h = harness();
    h.create("one", FailurePolicy::default(), vec![task("a", &[])]);
    let events = h.event_count();
    let bad = WorkflowSpec::new("two", Mode::Dag).task(task("a", &["missing"]));
    assert!(matches!(
        h.store.create_workflow(bad, &started()),
        Err(Error::InvalidSpec(_))
    ));
    let taken = WorkflowSpec::new("one", Mode::Dag).task(task("z", &[]));
    let err = h.store.create_workflow(taken, &started()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a workflow named `one` already exists; choose another name or pass the same idempotency_key to get the first result"
    );
    assert_eq!(h.store.workflows().unwrap().len(), 1);
    assert_eq!(h.event_count(), events);
}

#[test]
fn a_retried_create_with_the_same_idempotency_key_returns_the_first_result() {
    let h = harness();
    let spec = || {
        WorkflowSpec::new("idem", Mode::Dag)
            .task(task("a", &[]))
            .task(task("b", &["a"]))
    };
    let options = CreateOptions {
        start: true,
        idempotency_key: Some("req-1".into()),
    };
    let first = h.store.create_workflow(spec(), &options).unwrap();
    let again = h.store.create_workflow(spec(), &options).unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(first.id, again.id);
    assert_eq!(first.analysis.stages, again.analysis.stages);
    let other = WorkflowSpec::new("idem", Mode::Dag).task(task("x", &[]));
    let err = h.store.create_workflow(other, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "idempotency key `req-1` was already used for a different workflow spec"
    );
    assert_eq!(h.store.workflows().unwrap().len(), 1);
}

#[test]
fn claims_follow_priority_then_b_level_then_age() {
    let h = harness();
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

#[test]
fn a_claim_hands_over_the_results_of_dependencies() {
    let h = harness();
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

#[test]
fn a_claim_respects_skills_status_and_wip_limit_of_a_profiled_agent() {
    let h = harness();
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
        crate::ClaimOutcome::Idle(crate::Idle {
            reason: crate::IdleReason::AtWipLimit { held: 1, limit: 1 },
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
    let crate::ClaimOutcome::Idle(idle) = idle else {
        panic!("a paused agent gets no work: {idle:?}")
    };
    assert_eq!(
        idle.reason,
        crate::IdleReason::AgentInactive(AgentStatus::Paused)
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

#[test]
fn leases_expire_into_failed_attempts_and_stale_tokens_are_rejected() {
    let h = harness();
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
        .report(
            &TaskRef::Id(first.task.id),
            "w1",
            first.token,
            &Report::Heartbeat,
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
    let err = h.report(&first, "w2", Report::Release).unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `lease/a` is leased to `w1`, not to `w2`"
    );

    // After expiry the report is rejected and nothing changes.
    h.clock.advance(Duration::seconds(11));
    let events = h.event_count();
    let err = h
        .report(
            &first,
            "w1",
            Report::Complete {
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
        .report(
            &first,
            "w1",
            Report::Complete {
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
        .report(
            &stale,
            "w2",
            Report::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::StaleLease { .. }), "{err}");

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

#[test]
fn retries_wait_for_their_backoff_on_the_manual_clock() {
    let h = harness();
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
        h.fail(&claim, "w", true);
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
    h.fail(&last, "w", true);
    let view = h.store.task(&TaskRef::Id(last.task.id)).unwrap();
    assert_eq!(
        (view.state, view.reason),
        (TaskState::Failed, Some(FailureReason::Error))
    );
}

#[test]
fn a_non_retryable_failure_skips_the_retries() {
    let h = harness();
    h.create(
        "fatal",
        FailurePolicy::default(),
        vec![task("a", &[]).max_attempts(5)],
    );
    let claim = h.claim("w").unwrap();
    h.fail(&claim, "w", false);
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

#[test]
fn block_dependents_fails_downstream_at_once_and_lets_other_branches_finish() {
    let h = harness();
    h.create("block", FailurePolicy::BlockDependents, diamond());
    let a = h.claim("w").unwrap();
    assert_eq!(a.task.key, "a");
    h.fail(&a, "w", true);
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

#[test]
fn continue_treats_a_failure_as_done() {
    let h = harness();
    h.create("continue", FailurePolicy::Continue, diamond());
    let a = h.claim("w").unwrap();
    h.fail(&a, "w", true);
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

#[test]
fn fail_fast_cancels_unstarted_work_and_lets_running_work_finish() {
    let h = harness();
    h.create("fast", FailurePolicy::FailFast, diamond());
    let a = h.claim("w1").unwrap();
    let x = h.claim("w2").unwrap();
    assert_eq!((a.task.key.as_str(), x.task.key.as_str()), ("a", "x"));
    h.fail(&a, "w1", true);
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

#[test]
fn retry_failed_resets_failed_and_upstream_failed_tasks() {
    let h = harness();
    h.create("again", FailurePolicy::BlockDependents, diamond());
    let a = h.claim("w").unwrap();
    h.fail(&a, "w", true);
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

#[test]
fn pause_stops_handing_out_work_and_cancel_ends_everything() {
    let h = harness();
    h.create(
        "pausable",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[])],
    );
    let a = h.claim("w").unwrap();
    h.store
        .execute(&"pausable".into(), WorkflowAction::Pause)
        .unwrap();
    assert_eq!(h.claim("w"), None, "paused: nothing new");
    h.complete(&a, "w");
    assert_eq!(
        h.store
            .workflow_report(&"pausable".into())
            .unwrap()
            .progress,
        Progress::Paused
    );
    let err = h
        .store
        .execute(&"pausable".into(), WorkflowAction::Pause)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow `pausable` is paused: it cannot pause"
    );
    h.store
        .execute(&"pausable".into(), WorkflowAction::Resume)
        .unwrap();
    let b = h.claim("w").unwrap();
    let outcome = h
        .store
        .execute(&"pausable".into(), WorkflowAction::Cancel)
        .unwrap();
    assert_eq!(outcome.status, WorkflowStatus::Cancelled);
    check_states(&h, "pausable", "a=succeeded b=cancelled");
    let err = h
        .report(
            &b,
            "w",
            Report::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "task `pausable/b` is cancelled: it cannot be completed"
    );
}

#[test]
fn release_gives_a_task_back_without_using_an_attempt() {
    let h = harness();
    h.create(
        "rel",
        FailurePolicy::default(),
        vec![task("a", &[]).max_attempts(1)],
    );
    let claim = h.claim("w1").unwrap();
    h.report(&claim, "w1", Report::Release).unwrap();
    let again = h.claim("w2").unwrap();
    assert_eq!(again.task.attempt, 1);
    h.complete(&again, "w2");
    assert_eq!(h.status("rel"), WorkflowStatus::Succeeded);
}

#[test]
fn dependency_edits_check_cycles_and_states() {
    let h = harness();
    h.create(
        "edit",
        FailurePolicy::default(),
        vec![
            task("a", &[]),
            task("b", &["a"]),
            task("c", &["b"]),
            task("d", &[]),
        ],
    );
    let edit = |key: &str, dep: &str, kind| {
        h.store
            .edit_dependency(&TaskRef::key("edit", key), &TaskRef::key("edit", dep), kind)
    };

    let err = edit("a", "c", DependencyEdit::Add).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: a -> c -> b -> a (each task depends on the next)"
    );
    let err = edit("a", "a", DependencyEdit::Add).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid depends_on: task `edit/a` cannot depend on itself"
    );
    let err = edit("b", "a", DependencyEdit::Add).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid depends_on: task `edit/b` already depends on `edit/a`"
    );
    let err = edit("b", "nope", DependencyEdit::Add).unwrap_err();
    assert_eq!(err.to_string(), "unknown task `edit/nope`");

    // A ready task that gains an unfinished dependency waits again.
    let view = edit("d", "c", DependencyEdit::Add).unwrap();
    assert_eq!(
        (view.state, view.depends_on.clone()),
        (TaskState::Pending, vec!["c".to_owned()])
    );
    // Removing it makes d ready again.
    assert_eq!(
        edit("d", "c", DependencyEdit::Remove).unwrap().state,
        TaskState::Ready
    );
    let err = edit("d", "c", DependencyEdit::Remove).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid depends_on: task `edit/d` does not depend on `edit/c`"
    );

    // A running task's dependencies are frozen.
    let claim = h.claim("w").unwrap();
    assert_eq!(claim.task.key, "a");
    let err = edit("a", "d", DependencyEdit::Add).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot change the dependencies of task `edit/a`: it is running; only pending and ready tasks can gain or lose dependencies"
    );
    // Removing b's only dependency makes it ready even though a still runs.
    assert_eq!(
        edit("b", "a", DependencyEdit::Remove).unwrap().state,
        TaskState::Ready
    );
    // The edits moved the ranks: c now hangs off b alone, d is free.
    let analysis = h.store.analyse_workflow(&"edit".into()).unwrap();
    assert_eq!(analysis.stages, vec![vec!["a", "b", "d"], vec!["c"]]);
}

#[test]
fn reports_validate_their_arguments_and_change_nothing_when_rejected() {
    let h = harness();
    h.create("args", FailurePolicy::default(), vec![task("a", &[])]);
    let claim = h.claim("w").unwrap();
    let events = h.event_count();
    let cases: Vec<(Report, &str)> = vec![
        (
            Report::Complete {
                result: None,
                actual: Some(-1.0),
            },
            "invalid actual: -1 is outside 0 to 10000 points",
        ),
        (
            Report::Complete {
                result: None,
                actual: Some(f64::NAN),
            },
            "invalid actual: NaN is outside 0 to 10000 points",
        ),
        (
            Report::Complete {
                result: Some("r".repeat(100_001)),
                actual: None,
            },
            "invalid result: must be at most 100000 characters, got 100001",
        ),
    ];
    for (report, expected) in cases {
        assert_eq!(
            h.report(&claim, "w", report).unwrap_err().to_string(),
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

#[test]
fn status_reports_leases_blockers_critical_path_and_forecast() {
    let h = harness();
    h.create(
        "report",
        FailurePolicy::default(),
        vec![
            task("a", &[]).estimate(2.0),
            task("b", &["a"]).estimate(3.0),
            task("c", &["b"]).estimate(1.0),
            task("side", &[]).estimate(1.0),
        ],
    );
    register(&h.store, &["w"]);
    let a = h
        .store
        .claim(&ClaimRequest::new("w").lease(Duration::hours(5)))
        .unwrap()
        .claimed()
        .unwrap();
    h.clock.advance(Duration::hours(4));
    h.complete(&a, "w");
    let b = h.claim("w").unwrap();
    let report = h.store.workflow_report(&"report".into()).unwrap();
    assert_eq!(report.summary.done_points, 2.0);
    assert_eq!(report.summary.total_points, 7.0);
    assert_eq!(report.leased.len(), 1);
    assert_eq!(
        (
            report.leased[0].key.as_str(),
            report.leased[0].agent.as_str()
        ),
        ("b", "w")
    );
    assert_eq!(
        report
            .ready
            .iter()
            .map(|t| t.key.as_str())
            .collect::<Vec<_>>(),
        ["side"]
    );
    assert_eq!(
        report.blocked[0].reason.as_deref(),
        Some("waiting on report/b")
    );
    assert_eq!(report.remaining_critical_path.keys, ["b", "c"]);
    assert_eq!(report.remaining_critical_path.length, 4.0);
    // 2 points took 4 hours: the 4 remaining critical points take 8 more.
    assert_eq!(
        report.forecast_finish,
        Some(h.clock.now() + Duration::hours(8))
    );
    assert_eq!(report.progress, Progress::Moving);
    drop(b);
}

#[test]
fn a_workflow_nobody_can_work_on_is_reported_as_stalled() {
    let h = harness();
    h.store
        .upsert_agent(
            "web",
            &AgentUpdate {
                capabilities: Some([("css".to_owned(), 3)].into()),
                ..AgentUpdate::default()
            },
        )
        .unwrap();
    h.create(
        "stuck",
        FailurePolicy::default(),
        vec![task("kernel", &[]).skill("c", 5)],
    );
    let report = h.store.workflow_report(&"stuck".into()).unwrap();
    assert_eq!(
        report.progress,
        Progress::Stalled(
            "no active agent has the skills for any ready task: `stuck/kernel` needs c>=5".into()
        )
    );
}

#[test]
fn every_state_change_is_in_the_event_log() {
    let h = harness();
    h.create(
        "log",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &["a"])],
    );
    let a = h.claim("w").unwrap();
    h.complete(&a, "w");
    let b = h.claim("w").unwrap();
    h.complete(&b, "w");
    let transitions: Vec<String> = h
        .store
        .events_since(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::TaskState)
        .map(|e| {
            format!(
                "{}:{}->{}",
                e.task_key.unwrap(),
                e.from.unwrap(),
                e.to.unwrap()
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            "a:pending->ready",
            "a:ready->running",
            "a:running->succeeded",
            "b:pending->ready",
            "b:ready->running",
            "b:running->succeeded",
        ]
    );
}

#[test]
fn state_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state.db");
    let token;
    {
        let store = Store::open(&path).unwrap();
        let spec = WorkflowSpec::new("durable", Mode::Sequential)
            .task(task("a", &[]))
            .task(task("b", &[]));
        store.create_workflow(spec, &started()).unwrap();
        register(&store, &["w"]);
        let claim = store
            .claim(&ClaimRequest::new("w"))
            .unwrap()
            .claimed()
            .unwrap();
        token = claim.token;
    }
    let store = Store::open(&path).unwrap();
    let report = store.workflow_report(&"durable".into()).unwrap();
    assert_eq!(report.leased[0].agent, "w");
    store
        .report(
            &TaskRef::key("durable", "a"),
            "w",
            token,
            &Report::Complete {
                result: None,
                actual: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(
        store
            .claim(&ClaimRequest::new("w"))
            .unwrap()
            .claimed()
            .unwrap()
            .task
            .key,
        "b"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the database has schema version 99, newer than the 5 this build understands; upgrade orchestration"
    );
}

#[test]
fn eight_threads_with_their_own_connections_run_each_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let tasks: Vec<TaskSpec> = (0..2_000).map(|i| task(&format!("t{i}"), &[])).collect();
    let spec = WorkflowSpec {
        name: "swarm".into(),
        mode: Mode::Parallel,
        tasks,
        ..Default::default()
    };
    let setup = Store::open(&path).unwrap();
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
            let (path, executed) = (path.clone(), Arc::clone(&executed));
            scope.spawn(move || {
                let store = Store::open(&path).unwrap();
                let agent = format!("worker-{worker}");
                while let Some(claim) = store.claim(&ClaimRequest::new(&agent)).unwrap().claimed() {
                    executed.lock().unwrap().push(claim.task.key.clone());
                    let done = Report::Complete {
                        result: None,
                        actual: None,
                    };
                    store
                        .report(
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
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.workflow_summary(&"swarm".into()).unwrap().status,
        WorkflowStatus::Succeeded
    );
}

/// Runs a random workflow to the end with agents that fail some attempts, then checks what
/// every orchestration must guarantee.
fn run_random_workflow(n: usize, edges: &[(usize, usize)], failures: &[u8], policy: FailurePolicy) {
    let h = harness();
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
        name: "random".into(),
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
            if h.status("random").is_finished() {
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
                h.fail(&claim, &agent, true);
            } else {
                h.complete(&claim, &agent);
                assert!(succeeded.insert(key.clone()), "{key} succeeded twice");
            }
            if h.state("random", &key).is_terminal() {
                finished_at.insert(key, step);
            }
        }
    }
    let states = h.states("random");
    for (key, state) in &states {
        assert!(state.is_terminal(), "{key} ended {state}");
        assert!(
            started_at.get(key).map_or(0, Vec::len) <= 2,
            "{key} ran more than max_attempts"
        );
    }
    assert!(h.status("random").is_finished());
    let open = states.values().filter(|s| !s.is_terminal()).count();
    assert_eq!(open, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_workflows_run_to_a_terminal_state_in_dependency_order(
        n in 1usize..18,
        raw_edges in proptest::collection::vec((0usize..18, 0usize..18), 0..30),
        failures in proptest::collection::vec(0u8..8, 1..20),
        policy in prop_oneof![
            Just(FailurePolicy::BlockDependents),
            Just(FailurePolicy::Continue),
            Just(FailurePolicy::FailFast)
        ],
    ) {
        let mut edges: Vec<(usize, usize)> = raw_edges
            .into_iter()
            .map(|(a, b)| (a % n, b % n))
            .filter(|(a, b)| a < b)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        run_random_workflow(n, &edges, &failures, policy);
    }
}

/// A statement SQLite re-prepares on every run costs more than the rest of a claim; the query
/// planner stability guarantee set at open keeps the hot statements prepared once.
#[test]
fn hot_statements_are_prepared_once() {
    let h = harness();
    for name in ["p", "q"] {
        h.create(
            name,
            FailurePolicy::default(),
            (0..30).map(|i| task(&format!("t{i}"), &[])).collect(),
        );
    }
    for i in 0..20 {
        let workflow = if i % 2 == 0 { "p" } else { "q" };
        h.register(&format!("w{i}"));
        let claim = h
            .store
            .claim(&ClaimRequest::new(format!("w{i}")).in_workflow(workflow))
            .unwrap()
            .claimed()
            .unwrap();
        h.complete(&claim, &format!("w{i}"));
        let claim = h.claim(&format!("v{i}")).unwrap();
        h.complete(&claim, &format!("v{i}"));
    }
    let conn = h.store.connection();
    let by_id = super::sql::task_by_id();
    let ready = super::sql::ready_in_workflow();
    let delegated = super::sql::delegated_anywhere();
    for sql in [by_id, ready, delegated] {
        let stmt = conn.prepare_cached(sql).unwrap();
        let runs = stmt.get_status(rusqlite::StatementStatus::Run);
        assert!(
            runs >= 20,
            "the statement under test ran ({runs} runs): {sql}"
        );
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

fn profile(skills: &[(&str, u8)], max: u32) -> AgentUpdate {
    AgentUpdate {
        capabilities: Some(skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()),
        max_concurrent: Some(max),
        ..AgentUpdate::default()
    }
}

fn record_of(h: &Harness, agent: &str) -> crate::Record {
    let conn = h.store.connection();
    super::agent::candidates(&conn)
        .unwrap()
        .into_iter()
        .find(|c| c.profile.name == agent)
        .map(|c| c.record)
        .unwrap()
}

#[test]
fn agent_records_count_finished_attempts_but_not_releases() {
    let h = harness();
    h.store.upsert_agent("ana", &profile(&[], 5)).unwrap();
    h.create(
        "rec",
        FailurePolicy::default(),
        (0..4)
            .map(|i| task(&format!("t{i}"), &[]).estimate(2.0))
            .collect(),
    );
    let a = h.claim("ana").unwrap();
    h.report(
        &a,
        "ana",
        Report::Complete {
            result: None,
            actual: Some(4.0),
        },
    )
    .unwrap();
    let b = h.claim("ana").unwrap();
    h.report(
        &b,
        "ana",
        Report::Complete {
            result: None,
            actual: None,
        },
    )
    .unwrap();
    let c = h.claim("ana").unwrap();
    h.fail(&c, "ana", true);
    let d = h.claim("ana").unwrap();
    h.report(&d, "ana", Report::Release).unwrap();
    let e = h
        .store
        .claim(&ClaimRequest::new("ana").lease(Duration::seconds(5)))
        .unwrap()
        .claimed()
        .unwrap();
    h.clock.advance(Duration::seconds(6));
    h.store.tick().unwrap();
    drop(e);
    let record = record_of(&h, "ana");
    assert_eq!(
        (record.succeeded, record.attempts),
        (2, 4),
        "2 successes, a failure, an expiry"
    );
    assert_eq!(record.log_ratio_count, 1);
    assert!(
        (record.log_ratio_sum - 2f64.ln()).abs() < 1e-12,
        "4 points spent on 2 estimated"
    );
}

#[test]
fn delegation_leases_the_task_to_the_best_agent_who_then_claims_it() {
    let h = harness();
    h.store
        .upsert_agent("expert", &profile(&[("rust", 5)], 2))
        .unwrap();
    h.store
        .upsert_agent("novice", &profile(&[("rust", 3)], 2))
        .unwrap();
    h.store
        .upsert_agent("designer", &profile(&[("css", 5)], 2))
        .unwrap();
    h.create(
        "del",
        FailurePolicy::default(),
        vec![
            task("core", &[]).skill("rust", 3).priority(10),
            task("other", &[]).priority(90),
        ],
    );
    let events = h.event_count();
    let dry = h
        .store
        .delegate(
            &TaskRef::key("del", "core"),
            &crate::Weights::default(),
            None,
            false,
        )
        .unwrap();
    assert_eq!(dry.assigned, None);
    assert_eq!(h.event_count(), events, "ranking alone writes nothing");
    let ranked: Vec<&str> = dry
        .ranking
        .ranked
        .iter()
        .map(|r| r.agent.as_str())
        .collect();
    assert_eq!(ranked, ["expert", "novice"]);
    assert_eq!(dry.ranking.rejected[0].0, "designer");

    let done = h
        .store
        .delegate(
            &TaskRef::key("del", "core"),
            &crate::Weights::default(),
            None,
            true,
        )
        .unwrap();
    assert_eq!(
        done.assigned.as_ref().map(|a| a.agent.as_str()),
        Some("expert")
    );
    assert_eq!(
        (done.task.state, done.task.agent.as_deref()),
        (TaskState::Assigned, Some("expert"))
    );
    // The delegated task comes before the higher-priority ready one.
    assert_eq!(h.claim_key("expert"), "core");
    let again = h
        .store
        .delegate(
            &TaskRef::key("del", "core"),
            &crate::Weights::default(),
            None,
            true,
        )
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        "task `del/core` is running: it cannot be assigned"
    );
    let bad = crate::Weights {
        fit: f64::NAN,
        ..crate::Weights::default()
    };
    let err = h
        .store
        .delegate(&TaskRef::key("del", "other"), &bad, None, true)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid weights: weights must be finite and not negative"
    );
}

#[test]
fn an_unclaimed_delegation_returns_to_ready_when_its_lease_ends() {
    let h = harness();
    h.store.upsert_agent("ana", &profile(&[], 1)).unwrap();
    h.create("slow", FailurePolicy::default(), vec![task("a", &[])]);
    h.store
        .delegate(
            &TaskRef::key("slow", "a"),
            &crate::Weights::default(),
            Some(Duration::seconds(30)),
            true,
        )
        .unwrap();
    h.clock.advance(Duration::seconds(31));
    assert_eq!(
        h.claim_key("bob"),
        "a",
        "the lease ended, so anyone may claim it"
    );
    let view = h.store.task(&TaskRef::key("slow", "a")).unwrap();
    assert_eq!(
        view.attempt, 1,
        "an assignment never started is not a failed attempt"
    );
}

#[test]
fn batch_delegation_assigns_ready_tasks_within_wip_limits_and_explains_the_rest() {
    let h = harness();
    h.store
        .upsert_agent("back", &profile(&[("rust", 4)], 2))
        .unwrap();
    h.store
        .upsert_agent("front", &profile(&[("css", 4)], 1))
        .unwrap();
    h.create(
        "batch",
        FailurePolicy::default(),
        vec![
            task("r1", &[]).skill("rust", 3),
            task("r2", &[]).skill("rust", 3),
            task("r3", &[]).skill("rust", 3),
            task("c1", &[]).skill("css", 2),
            task("go", &[]).skill("go", 1),
            task("later", &["r1"]),
        ],
    );
    let events = h.event_count();
    let proposal = h
        .store
        .delegate_workflow(&"batch".into(), &crate::Weights::default(), None, false)
        .unwrap();
    assert_eq!(h.event_count(), events, "a dry run writes nothing");
    let committed = h
        .store
        .delegate_workflow(&"batch".into(), &crate::Weights::default(), None, true)
        .unwrap();
    assert_eq!(
        proposal.assigned, committed.assigned,
        "the dry run proposes what the commit does"
    );
    let mut pairs: Vec<(String, String)> = committed
        .assigned
        .iter()
        .map(|a| (a.task.clone(), a.agent.clone()))
        .collect();
    pairs.sort();
    assert_eq!(pairs.len(), 3);
    assert!(pairs.contains(&("batch/c1".into(), "front".into())));
    assert_eq!(
        pairs.iter().filter(|(_, agent)| agent == "back").count(),
        2,
        "back's WIP limit is 2"
    );
    let reasons: BTreeMap<String, String> = committed.unassigned.into_iter().collect();
    assert_eq!(reasons["batch/go"], "no active agent has the skills: go>=1");
    assert_eq!(
        reasons.len(),
        2,
        "one rust task waits for a free slot: {reasons:?}"
    );
    let states = h.states("batch");
    assert_eq!(
        states
            .values()
            .filter(|s| **s == TaskState::Assigned)
            .count(),
        3
    );
}

#[test]
fn a_version_1_database_is_migrated_and_agent_records_backfilled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO workflows (uuid, name, mode, on_failure, retry_initial_ms, retry_coefficient, retry_max_ms, status, open_tasks, created_at, fingerprint) \
             VALUES (x'00000000000000000000000000000001', 'old', 'dag', 'block_dependents', 1000, 2, 100000, 'succeeded', 0, 0, 0); \
             INSERT INTO tasks (uuid, workflow, key, title, estimate, priority, max_attempts, b_level, has_skills, is_leaf, unmet, state) \
             VALUES (x'00000000000000000000000000000002', 1, 'a', 'A', 2.0, 50, 3, 2.0, 0, 1, 0, 'succeeded'); \
             INSERT INTO events (at, kind, workflow, task, agent, from_state, to_state, attempt, value) VALUES \
             (1, 'task_state', 1, 1, 'old-agent', 'running', 'waiting_retry', 1, NULL), \
             (2, 'task_state', 1, 1, 'old-agent', 'running', 'succeeded', 2, 8.0); \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    store.upsert_agent("old-agent", &profile(&[], 1)).unwrap();
    let conn = store.connection();
    let record = super::agent::candidates(&conn).unwrap()[0].record;
    assert_eq!(
        (record.succeeded, record.attempts, record.log_ratio_count),
        (1, 2, 1)
    );
    assert!((record.log_ratio_sum - 4f64.ln()).abs() < 1e-12);
    // Version 4 learnt who finished each task from the log.
    let done_by: Option<String> = conn
        .query_row("SELECT done_by FROM tasks", [], |row| row.get(0))
        .unwrap();
    assert_eq!(done_by.as_deref(), Some("old-agent"));
}

#[test]
fn an_agent_at_its_wip_limit_can_still_start_what_was_delegated_to_it() {
    let h = harness();
    h.store.upsert_agent("solo", &profile(&[], 1)).unwrap();
    h.create(
        "wip",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[])],
    );
    h.store
        .delegate(
            &TaskRef::key("wip", "a"),
            &crate::Weights::default(),
            None,
            true,
        )
        .unwrap();
    assert_eq!(
        h.claim_key("solo"),
        "a",
        "the delegated task starts although solo holds 1 of 1"
    );
    let idle = h.store.claim(&ClaimRequest::new("solo")).unwrap();
    let crate::ClaimOutcome::Idle(idle) = idle else {
        panic!("solo is full: {idle:?}")
    };
    assert_eq!(
        idle.reason.to_string(),
        "the agent holds 1 task, its WIP limit of 1; complete or release one first"
    );
}

#[test]
fn rebalancing_moves_delegated_work_off_an_agent_that_went_offline() {
    let h = harness();
    h.store
        .upsert_agent("leaving", &profile(&[("rust", 4)], 3))
        .unwrap();
    h.create(
        "move",
        FailurePolicy::default(),
        vec![
            task("a", &[]).skill("rust", 3),
            task("b", &[]).skill("rust", 3),
        ],
    );
    h.store
        .delegate_workflow(&"move".into(), &crate::Weights::default(), None, true)
        .unwrap();
    h.store
        .set_agent_status("leaving", AgentStatus::Offline)
        .unwrap();
    h.store
        .upsert_agent("arriving", &profile(&[("rust", 3)], 1))
        .unwrap();
    let events = h.event_count();
    let proposal = h.store.workload(&crate::Weights::default()).unwrap();
    assert_eq!(h.event_count(), events, "proposing writes nothing");
    assert_eq!(proposal.overloaded, ["leaving"]);
    assert_eq!(proposal.idle, ["arriving"]);
    assert_eq!(
        proposal.proposals.len(),
        1,
        "arriving has room for one task only"
    );
    let applied = h.store.rebalance(&crate::Weights::default(), None).unwrap();
    assert_eq!(
        applied.moved, proposal.proposals,
        "the moves made are those proposed"
    );
    let moved = &applied.moved[0];
    let view = h.store.task(&moved.task.parse().unwrap()).unwrap();
    assert_eq!(
        (view.state, view.agent.as_deref(), view.attempt),
        (TaskState::Assigned, Some("arriving"), 0)
    );
    let after = h.store.workload(&crate::Weights::default()).unwrap();
    let arriving = after.agents.iter().find(|l| l.agent == "arriving").unwrap();
    assert_eq!((arriving.queued, arriving.utilisation), (1, 1.0));
    assert_eq!(
        applied.after, after,
        "a rebalance reports the load after its moves"
    );
    assert!(applied.after.idle.is_empty(), "arriving is no longer idle");
}

#[test]
fn agent_performance_is_rebuilt_from_the_event_log() {
    let h = harness();
    let start = h.clock.now();
    h.create(
        "perf",
        FailurePolicy::default(),
        vec![
            task("a", &[]).estimate(2.0).skill("rust", 1),
            task("b", &[]).estimate(1.0).max_attempts(3),
            task("c", &[]).estimate(1.0),
        ],
    );
    h.store
        .upsert_agent("ana", &profile(&[("rust", 5)], 3))
        .unwrap();
    register(&h.store, &["bo"]);
    let long = |agent: &str| {
        h.store
            .claim(&ClaimRequest::new(agent).lease(Duration::hours(3)))
            .unwrap()
            .claimed()
            .unwrap()
    };
    let a = long("ana");
    h.clock.advance(Duration::hours(2));
    h.report(
        &a,
        "ana",
        Report::Complete {
            result: None,
            actual: Some(4.0),
        },
    )
    .unwrap();
    let b = h.claim("ana").unwrap();
    h.fail(&b, "ana", true);
    h.clock.advance(Duration::seconds(5));
    let b = long("bo");
    h.clock.advance(Duration::hours(1));
    h.complete(&b, "bo");
    let c = h
        .store
        .claim(&ClaimRequest::new("ana").lease(Duration::minutes(1)))
        .unwrap()
        .claimed()
        .unwrap();
    h.clock.advance(Duration::minutes(2));
    h.store.tick().unwrap();
    drop(c);
    let result = h
        .store
        .agent_performance(start, start + Duration::days(1), None)
        .unwrap();
    let ana = result.iter().find(|p| p.agent == "ana").unwrap();
    assert_eq!(
        (
            ana.metrics.completed,
            ana.metrics.attempts,
            ana.metrics.retries,
            ana.metrics.expired_leases
        ),
        (1, 3, 1, 1)
    );
    assert_eq!(ana.metrics.cycle_time_p50_hours, Some(2.0));
    assert!((ana.metrics.estimate_bias.unwrap() - 2f64.ln()).abs() < 1e-12);
    assert_eq!(ana.by_skill["rust"].completed, 1);
    let bo = result.iter().find(|p| p.agent == "bo").unwrap();
    // c had waited longer than the retried b, so bo got c, and finished it on the first try.
    assert_eq!(
        (bo.metrics.completed, bo.metrics.first_pass_yield),
        (1, Some(1.0))
    );
    assert_eq!(bo.rank, 1);
    let err = h.store.agent_performance(start, start, None).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid window: it ends"),
        "{err}"
    );
}

#[test]
fn a_handoff_moves_the_task_and_its_lease_with_a_note() {
    let h = harness();
    h.store
        .upsert_agent("ana", &profile(&[("rust", 4)], 2))
        .unwrap();
    h.store
        .upsert_agent("bo", &profile(&[("rust", 3)], 2))
        .unwrap();
    h.store
        .upsert_agent("web", &profile(&[("css", 5)], 2))
        .unwrap();
    h.store
        .upsert_agent(
            "gone",
            &AgentUpdate {
                status: Some(AgentStatus::Retired),
                ..profile(&[("rust", 5)], 2)
            },
        )
        .unwrap();
    h.create(
        "hand",
        FailurePolicy::default(),
        vec![task("a", &[]).skill("rust", 3)],
    );
    let claim = h.claim("ana").unwrap();
    let key = TaskRef::key("hand", "a");
    let events = h.event_count();
    let cases: Vec<(&str, &str, LeaseToken, &str)> = vec![
        (
            "ana",
            "web",
            claim.token,
            "agent `web` cannot take task `hand/a`: lacks skill `rust` (level 3 needed)",
        ),
        (
            "ana",
            "gone",
            claim.token,
            "agent `gone` cannot take task `hand/a`: it is retired",
        ),
        ("ana", "nobody", claim.token, "unknown agent `nobody`"),
        (
            "bo",
            "web",
            claim.token,
            "task `hand/a` is leased to `ana`, not to `bo`",
        ),
        (
            "ana",
            "bo",
            LeaseToken(claim.token.0 + 5),
            "stale lease token",
        ),
    ];
    for (from, to, token, expected) in cases {
        let err = h
            .store
            .handoff(&key, from, token, to, "context")
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert_eq!(h.event_count(), events, "rejected handoffs write nothing");
    let done = h
        .store
        .handoff(&key, "ana", claim.token, "bo", "schema is in a.sql")
        .unwrap();
    assert_eq!(
        (done.task.state, done.task.agent.as_deref()),
        (TaskState::Assigned, Some("bo"))
    );
    assert_eq!(done.task.note.as_deref(), Some("schema is in a.sql"));
    let err = h
        .report(
            &claim,
            "ana",
            Report::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("leased to `bo`"), "{err}");
    let inbox = h.store.inbox("bo", 10, usize::MAX, false).unwrap().0;
    assert_eq!(
        inbox[0].body,
        "handoff of `hand/a` from `ana`: schema is in a.sql"
    );
    let resumed = h.claim("bo").unwrap();
    assert_eq!(
        (resumed.task.key.as_str(), resumed.task.attempt),
        ("a", 1),
        "the handed-off attempt is not counted twice"
    );
}

#[test]
fn messages_reach_agents_workflows_and_everyone_and_are_acknowledged_once() {
    let h = harness();
    for name in ["ana", "bo", "cy"] {
        h.store.upsert_agent(name, &profile(&[], 2)).unwrap();
    }
    h.create(
        "talk",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[])],
    );
    h.claim("bo").unwrap();
    assert_eq!(
        h.store
            .send_message("ana", &Recipients::Agent("cy".into()), "hi cy")
            .unwrap(),
        1
    );
    assert_eq!(
        h.store
            .send_message("ana", &Recipients::Workflow("talk".into()), "who has talk?")
            .unwrap(),
        1
    );
    assert_eq!(
        h.store
            .send_message("ana", &Recipients::Broadcast, "standup")
            .unwrap(),
        2,
        "not to the sender"
    );
    let cases = [
        (
            h.store
                .send_message("ana", &Recipients::Agent("zed".into()), "x")
                .unwrap_err(),
            "unknown agent `zed`",
        ),
        (
            h.store
                .send_message("ana", &Recipients::Agent("cy".into()), "  ")
                .unwrap_err(),
            "invalid body: must not be empty",
        ),
        (
            h.store
                .send_message("ana", &Recipients::Workflow("nope".into()), "x")
                .unwrap_err(),
            "unknown workflow `nope`",
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(err.to_string(), expected);
    }
    let bo: Vec<String> = h
        .store
        .inbox("bo", 10, usize::MAX, false)
        .unwrap()
        .0
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bo, ["who has talk?", "standup"]);
    let cy = h.store.inbox("cy", 10, usize::MAX, false).unwrap().0;
    let err = h.store.ack("bo", &[cy[0].id]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("message {} is not in `bo`'s inbox", cy[0].id)
    );
    assert_eq!(h.store.ack("cy", &[cy[0].id]).unwrap(), 1);
    let err = h.store.ack("cy", &[cy[0].id]).unwrap_err();
    assert!(
        err.to_string().contains("is not in `cy`'s inbox"),
        "acknowledged once only"
    );
    let taken = h.store.inbox("cy", 10, usize::MAX, true).unwrap().0;
    assert_eq!(taken.len(), 1);
    assert!(
        h.store
            .inbox("cy", 10, usize::MAX, true)
            .unwrap()
            .0
            .is_empty(),
        "an acknowledged message is not delivered again"
    );
}

#[test]
fn concurrent_consumers_receive_each_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let store = Store::open(&path).unwrap();
    store.upsert_agent("many", &profile(&[], 1)).unwrap();
    register(&store, &["sender"]);
    for i in 0..300 {
        store
            .send_message(
                "sender",
                &Recipients::Agent("many".into()),
                &format!("m{i}"),
            )
            .unwrap();
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (path, received) = (path.clone(), Arc::clone(&received));
            scope.spawn(move || {
                let store = Store::open(&path).unwrap();
                loop {
                    let batch = store.inbox("many", 7, usize::MAX, true).unwrap().0;
                    if batch.is_empty() {
                        break;
                    }
                    received
                        .lock()
                        .unwrap()
                        .extend(batch.into_iter().map(|m| m.body));
                }
            });
        }
    });
    let received = received.lock().unwrap();
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(
        (received.len(), unique.len()),
        (300, 300),
        "none lost, none twice"
    );
}

#[test]
fn locks_conflict_expire_release_only_by_owner_and_refuse_deadlocks() {
    use crate::{LockMode, Resource};
    let h = harness();
    let ttl = Duration::minutes(5);
    let exact = |name: &str| Resource::Exact(name.into());
    let acquired = |outcome: crate::LockOutcome| matches!(outcome, crate::LockOutcome::Acquired(_));
    register(&h.store, &["ana", "bo", "cy"]);
    assert!(acquired(
        h.store
            .lock("ana", &exact("src/a.rs"), LockMode::Exclusive, ttl)
            .unwrap()
    ));
    match h
        .store
        .lock(
            "bo",
            &Resource::Prefix("src/".into()),
            LockMode::Shared,
            ttl,
        )
        .unwrap()
    {
        crate::LockOutcome::Blocked(holders) => assert_eq!(holders[0].owner, "ana"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(acquired(
        h.store
            .lock("bo", &exact("docs/x.md"), LockMode::Shared, ttl)
            .unwrap()
    ));
    assert!(
        acquired(
            h.store
                .lock("cy", &exact("docs/x.md"), LockMode::Shared, ttl)
                .unwrap()
        ),
        "shared locks share"
    );
    // ana now wants what bo holds, while bo waits for ana: a cycle.
    let err = h
        .store
        .lock("ana", &exact("docs/x.md"), LockMode::Exclusive, ttl)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "waiting for `docs/x.md` would deadlock: ana -> bo -> ana (each waits for the next); release one of your locks or try later"
    );
    let err = h.store.unlock("bo", &exact("src/a.rs")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent `bo` holds no lock on `src/a.rs`; it belongs to `ana`, and only its owner can release it"
    );
    let (held, waits) = h.store.locks().unwrap();
    assert_eq!(held.len(), 3);
    assert_eq!(
        waits.iter().map(|w| w.waiter.as_str()).collect::<Vec<_>>(),
        ["bo"]
    );
    // Expired locks are reclaimed: after the TTL, bo gets the prefix.
    h.clock.advance(ttl + Duration::seconds(1));
    assert!(acquired(
        h.store
            .lock(
                "bo",
                &Resource::Prefix("src/".into()),
                LockMode::Shared,
                ttl
            )
            .unwrap()
    ));
    h.store
        .unlock("bo", &Resource::Prefix("src/".into()))
        .unwrap();
    let err = h
        .store
        .lock("bo", &exact(""), LockMode::Shared, ttl)
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid resource"), "{err}");
}

#[test]
fn the_team_covers_the_unfinished_work() {
    let h = harness();
    h.store
        .upsert_agent("full", &profile(&[("rust", 4), ("css", 4)], 1))
        .unwrap();
    h.store
        .upsert_agent("rusty", &profile(&[("rust", 5)], 3))
        .unwrap();
    h.store
        .upsert_agent("pixel", &profile(&[("css", 5)], 3))
        .unwrap();
    h.create(
        "squad",
        FailurePolicy::default(),
        vec![
            task("api", &[]).skill("rust", 3),
            task("ui", &[]).skill("css", 3),
            task("ship", &["api", "ui"]),
        ],
    );
    let team = h.store.team(&"squad".into()).unwrap();
    // Two tasks can run at once; one agent with a WIP limit of 1 is not enough.
    assert_eq!(team.members.len(), 2, "{team:?}");
    assert!(team.minimal);
    assert!(team.capacity >= 2);
}

#[test]
fn a_profiled_agent_gets_the_task_its_skills_fit_best_within_the_top_priority() {
    let h = harness();
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

#[test]
fn a_repeated_completion_says_the_task_is_finished() {
    let h = harness();
    h.create("twice", FailurePolicy::default(), vec![task("a", &[])]);
    let claim = h.claim("w").unwrap();
    h.complete(&claim, "w");
    let err = h
        .report(
            &claim,
            "w",
            Report::Complete {
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

#[test]
fn a_full_disk_is_named_changes_nothing_and_reads_still_work() {
    let h = harness();
    h.store
        .create_workflow(
            WorkflowSpec::new("small", Mode::Dag).task(task("a", &[])),
            &started(),
        )
        .unwrap();
    // SQLite reports a database that reached its page limit exactly as a full disk.
    let pages: i64 = h
        .store
        .connection()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    h.store
        .connection()
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let mut big = WorkflowSpec::new("big", Mode::Parallel);
    for i in 0..2_000 {
        big = big.task(TaskSpec::new(format!("t{i}"), "x".repeat(150)));
    }
    let events = h.store.events_since(0, 10_000).unwrap().len();
    let full = h.store.create_workflow(big, &started());
    assert!(matches!(full, Err(Error::DiskFull)), "{full:?}");
    assert!(full.unwrap_err().to_string().contains("disk"));
    assert_eq!(h.store.events_since(0, 10_000).unwrap().len(), events);
    assert!(h.store.workflow_summary(&WorkflowRef::from("big")).is_err());
    assert_eq!(h.store.workflows().unwrap().len(), 1, "reads still work");
}

/// A file database reads through its own connection; every read still sees each write the
/// moment the write returns, and a second handle on the file sees them too.
#[test]
fn reads_on_a_file_see_every_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.db");
    let store = Store::open(&path).unwrap();
    assert!(store.reader().is_some(), "a file database has a reader");
    store
        .create_workflow(
            WorkflowSpec::new("r", Mode::Dag)
                .task(task("a", &[]))
                .task(task("b", &["a"])),
            &started(),
        )
        .unwrap();
    register(&store, &["w"]);
    let other = Store::open(&path).unwrap();
    let state = |store: &Store, key: &str| {
        store
            .task(&TaskRef::key("r", key))
            .map(|view| view.state)
            .unwrap()
    };
    let claim = store
        .claim(&ClaimRequest::new("w"))
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(state(&store, "a"), TaskState::Running);
    assert_eq!(state(&other, "a"), TaskState::Running);
    store
        .report(
            &TaskRef::Id(claim.task.id),
            "w",
            claim.token,
            &Report::Complete {
                result: None,
                actual: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(
        (state(&store, "a"), state(&store, "b")),
        (TaskState::Succeeded, TaskState::Ready)
    );
    assert_eq!(
        store.events_since(0, 1_000).unwrap().len(),
        other.events_since(0, 1_000).unwrap().len()
    );
    assert!(Store::open_in_memory().unwrap().reader().is_none());
}
