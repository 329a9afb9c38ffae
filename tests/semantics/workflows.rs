//! Creating workflows, their actions (pause, resume, cancel, retry), dependency edits with cycle checks, status reports and the event log.

use chrono::Duration;
use orchestration_core::store::*;
use orchestration_core::*;

use crate::Backend;
use crate::harness::*;

pub(crate) fn creating_and_starting_makes_the_free_tasks_ready(db: &dyn Backend) {
    let h = harness(db);
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

pub(crate) fn a_rejected_spec_or_duplicate_name_writes_nothing(db: &dyn Backend) {
    let h = harness(db);
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

pub(crate) fn a_retried_create_with_the_same_idempotency_key_returns_the_first_result(
    db: &dyn Backend,
) {
    let h = harness(db);
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

pub(crate) fn pause_stops_handing_out_work_and_cancel_ends_everything(db: &dyn Backend) {
    let h = harness(db);
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
        .update_task(
            &b,
            "w",
            TaskUpdate::Complete {
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

pub(crate) fn dependency_edits_check_cycles_and_states(db: &dyn Backend) {
    let h = harness(db);
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

pub(crate) fn status_reports_leases_blockers_critical_path_and_forecast(db: &dyn Backend) {
    let h = harness(db);
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

pub(crate) fn a_workflow_nobody_can_work_on_is_reported_as_stalled(db: &dyn Backend) {
    let h = harness(db);
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

pub(crate) fn every_state_change_is_in_the_event_log(db: &dyn Backend) {
    let h = harness(db);
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

/// Closing every handle and opening a new one loses nothing: the lease and its token stay
/// valid.
pub(crate) fn state_survives_closing_and_reopening(db: &dyn Backend) {
    let token;
    {
        let store = db.open();
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
    let store = db.open();
    let report = store.workflow_report(&"durable".into()).unwrap();
    assert_eq!(report.leased[0].agent, "w");
    store
        .update_task(
            &TaskRef::key("durable", "a"),
            "w",
            token,
            &TaskUpdate::Complete {
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

pub(crate) fn recent_events_and_waits_are_measured_by_the_stores_time(db: &dyn Backend) {
    let h = harness(db);
    h.create("early", FailurePolicy::default(), vec![task("a", &[])]);
    h.clock.advance(Duration::hours(3));
    h.create("late", FailurePolicy::default(), vec![task("b", &[])]);
    let workflows_of = |events: Vec<Event>| -> Vec<String> {
        let mut names: Vec<String> = events.into_iter().filter_map(|e| e.workflow_name).collect();
        names.dedup();
        names
    };
    // The last two hours hold only what happened after the clock moved; the last four hold both,
    // oldest first, and a limit keeps the newest.
    let recent = h.store.recent_events(Duration::hours(2), 100).unwrap();
    assert_eq!(workflows_of(recent), ["late"]);
    let all = h.store.recent_events(Duration::hours(4), 100).unwrap();
    assert_eq!(workflows_of(all.clone()), ["early", "late"]);
    let newest = h.store.recent_events(Duration::hours(4), 1).unwrap();
    assert_eq!(newest, all[all.len() - 1..].to_vec());
    // The store's now is its clock's, and a wait for a time is measured from it.
    let now = h.store.now().unwrap();
    assert_eq!(now, h.clock.now());
    assert_eq!(
        h.store.time_until(now + Duration::seconds(90)).unwrap(),
        std::time::Duration::from_secs(90)
    );
    assert_eq!(
        h.store.time_until(now - Duration::seconds(1)).unwrap(),
        std::time::Duration::ZERO
    );
}

/// An attempt as the timeline case compares it: task, number, agent, outcome, ended.
type Seen = (String, u32, Option<String>, Option<TaskState>, bool);

pub(crate) fn a_workflows_attempts_are_read_back_from_the_log_per_task_and_agent(db: &dyn Backend) {
    let h = harness(db);
    h.create(
        "timeline",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &["a"])],
    );
    let first = h.claim("ana").unwrap();
    h.clock.advance(Duration::minutes(5));
    h.fail(&first, "ana", FailureKind::Transient);
    // The retry waits for its backoff; then bo takes it and finishes, and b after it.
    h.clock.advance(Duration::hours(1));
    let second = h.claim("bo").unwrap();
    h.clock.advance(Duration::minutes(2));
    h.complete(&second, "bo");
    let third = h.claim("bo").unwrap();
    let attempts = h
        .store
        .workflow_attempts(&WorkflowRef::from("timeline"), 100)
        .unwrap();
    let seen: Vec<Seen> = attempts
        .iter()
        .map(|a| {
            (
                a.task.clone(),
                a.attempt.number,
                a.attempt.agent.clone(),
                a.attempt.ended_as,
                a.attempt.ended_at.is_some(),
            )
        })
        .collect();
    let owned =
        |t: &str, n, agent: &str, end, ended| (t.to_owned(), n, Some(agent.to_owned()), end, ended);
    assert_eq!(
        seen,
        [
            owned("a", 1, "ana", Some(TaskState::WaitingRetry), true),
            owned("a", 2, "bo", Some(TaskState::Succeeded), true),
            owned("b", 1, "bo", None, false),
        ]
    );
    assert_eq!(
        attempts[0].attempt.ended_at.unwrap() - attempts[0].attempt.started_at,
        Duration::minutes(5)
    );
    // A limit keeps the latest by start; an unknown workflow is named as such.
    let latest = h
        .store
        .workflow_attempts(&WorkflowRef::from("timeline"), 1)
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].task, "b");
    assert_eq!(third.task.key, "b");
    assert!(matches!(
        h.store.workflow_attempts(&WorkflowRef::from("timelin"), 10),
        Err(Error::UnknownWorkflow { .. })
    ));
}
