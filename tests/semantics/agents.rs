//! Delegation to the best agent, batch assignment within WIP limits, rebalancing, performance rebuilt from the event log, and the team that covers a workflow.

use std::collections::BTreeMap;

use chrono::Duration;
use orchestration_core::store::*;
use orchestration_core::*;

use crate::Backend;
use crate::harness::*;

pub(crate) fn delegation_leases_the_task_to_the_best_agent_who_then_claims_it(db: &dyn Backend) {
    let h = harness(db);
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
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Propose,
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
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Assign,
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
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Assign,
        )
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        "task `del/core` is running: it cannot be assigned"
    );
    let bad = orchestration_core::agent::Weights {
        fit: f64::NAN,
        ..orchestration_core::agent::Weights::default()
    };
    let err = h
        .store
        .delegate(
            &TaskRef::key("del", "other"),
            &bad,
            None,
            DelegationMode::Assign,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid weights: weights must be finite and not negative"
    );
}

pub(crate) fn an_unclaimed_delegation_returns_to_ready_when_its_lease_ends(db: &dyn Backend) {
    let h = harness(db);
    h.store.upsert_agent("ana", &profile(&[], 1)).unwrap();
    h.create("slow", FailurePolicy::default(), vec![task("a", &[])]);
    h.store
        .delegate(
            &TaskRef::key("slow", "a"),
            &orchestration_core::agent::Weights::default(),
            Some(Duration::seconds(30)),
            DelegationMode::Assign,
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

pub(crate) fn batch_delegation_assigns_ready_tasks_within_wip_limits_and_explains_the_rest(
    db: &dyn Backend,
) {
    let h = harness(db);
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
        .delegate_workflow(
            &"batch".into(),
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Propose,
        )
        .unwrap();
    assert_eq!(h.event_count(), events, "a dry run writes nothing");
    let committed = h
        .store
        .delegate_workflow(
            &"batch".into(),
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Assign,
        )
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

pub(crate) fn an_agent_at_its_wip_limit_can_still_start_what_was_delegated_to_it(db: &dyn Backend) {
    let h = harness(db);
    h.store.upsert_agent("solo", &profile(&[], 1)).unwrap();
    h.create(
        "wip",
        FailurePolicy::default(),
        vec![task("a", &[]), task("b", &[])],
    );
    h.store
        .delegate(
            &TaskRef::key("wip", "a"),
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Assign,
        )
        .unwrap();
    assert_eq!(
        h.claim_key("solo"),
        "a",
        "the delegated task starts although solo holds 1 of 1"
    );
    let idle = h.store.claim(&ClaimRequest::new("solo")).unwrap();
    let orchestration_core::ClaimOutcome::Idle(idle) = idle else {
        panic!("solo is full: {idle:?}")
    };
    assert_eq!(
        idle.reason.to_string(),
        "the agent holds 1 task, its WIP limit of 1; complete or release one first"
    );
}

pub(crate) fn rebalancing_moves_delegated_work_off_an_agent_that_went_offline(db: &dyn Backend) {
    let h = harness(db);
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
        .delegate_workflow(
            &"move".into(),
            &orchestration_core::agent::Weights::default(),
            None,
            DelegationMode::Assign,
        )
        .unwrap();
    h.store
        .set_agent_status("leaving", AgentStatus::Offline)
        .unwrap();
    h.store
        .upsert_agent("arriving", &profile(&[("rust", 3)], 1))
        .unwrap();
    let events = h.event_count();
    let proposal = h
        .store
        .workload(&orchestration_core::agent::Weights::default())
        .unwrap();
    assert_eq!(h.event_count(), events, "proposing writes nothing");
    assert_eq!(proposal.overloaded, ["leaving"]);
    assert_eq!(proposal.idle, ["arriving"]);
    assert_eq!(
        proposal.proposals.len(),
        1,
        "arriving has room for one task only"
    );
    let applied = h
        .store
        .rebalance(&orchestration_core::agent::Weights::default(), None)
        .unwrap();
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
    let after = h
        .store
        .workload(&orchestration_core::agent::Weights::default())
        .unwrap();
    let arriving = after.agents.iter().find(|l| l.agent == "arriving").unwrap();
    assert_eq!((arriving.queued, arriving.utilisation), (1, 1.0));
    assert_eq!(
        applied.after, after,
        "a rebalance reports the load after its moves"
    );
    assert!(applied.after.idle.is_empty(), "arriving is no longer idle");
}

pub(crate) fn agent_performance_is_rebuilt_from_the_event_log(db: &dyn Backend) {
    let h = harness(db);
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
    h.update_task(
        &a,
        "ana",
        TaskUpdate::Complete {
            result: None,
            actual: Some(4.0),
        },
    )
    .unwrap();
    let b = h.claim("ana").unwrap();
    h.fail(&b, "ana", FailureKind::Transient);
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
    // Percentiles come from sketches within 1% of the exact value; the bias is summed in
    // billionths.
    let p50 = ana.metrics.cycle_time_p50_hours.unwrap();
    assert!((p50 - 2.0).abs() <= 0.02, "{p50}");
    assert!((ana.metrics.estimate_bias.unwrap() - 2f64.ln()).abs() < 1e-9);
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

pub(crate) fn the_team_covers_the_unfinished_work(db: &dyn Backend) {
    let h = harness(db);
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

/// A window named by its length ends now by the store's clock, unless an end is given, and a
/// length outside 1 to 3650 days is refused by name.
pub(crate) fn a_performance_window_by_days_ends_now_or_at_the_end_given(db: &dyn Backend) {
    let h = harness(db);
    h.create("perf", FailurePolicy::default(), vec![task("a", &[])]);
    let claim = h.claim("ana").unwrap();
    h.clock.advance(Duration::minutes(10));
    h.complete(&claim, "ana");
    let now = h.clock.now();
    let window = h.store.agent_performance_days(1, None, None).unwrap();
    assert_eq!((window.from, window.to), (now - Duration::days(1), now));
    assert_eq!(window.agents[0].metrics.completed, 1);
    let earlier = now - Duration::days(3);
    let window = h
        .store
        .agent_performance_days(1, Some(earlier), None)
        .unwrap();
    assert_eq!(window.to, earlier);
    assert!(window.agents.iter().all(|a| a.metrics.completed == 0));
    for days in [0, 3_651] {
        let error = h
            .store
            .agent_performance_days(days, None, None)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid days: {days} is outside 1 to 3650")
        );
    }
}
