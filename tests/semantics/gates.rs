//! Gates: tasks a person approves or rejects. No agent claims one; approval lets its
//! dependents move, rejection fails it under the workflow's failure policy.

use orchestration_core::store::Progress;
use orchestration_core::workflow::{FailureReason, GateDecision, TaskKind};
use orchestration_core::*;

use crate::Backend;
use crate::harness::*;

fn gated(h: &Harness, name: &str, policy: FailurePolicy) {
    h.create(
        name,
        policy,
        vec![
            task("build", &[]),
            task("review", &["build"]).gate(),
            task("ship", &["review"]),
        ],
    );
}

fn gate_of(workflow: &str) -> TaskRef {
    TaskRef::key(WorkflowRef::from(workflow), "review")
}

pub(crate) fn a_gate_waits_for_approval_and_no_agent_claims_it(db: &dyn Backend) {
    let h = harness(db);
    gated(&h, "release", FailurePolicy::default());
    // Approving before the gate's dependencies are done is refused and changes nothing.
    let early = h
        .store
        .decide_gate(&gate_of("release"), GateDecision::Approve, None);
    assert!(matches!(
        early,
        Err(Error::IllegalTransition {
            state: TaskState::Pending,
            ..
        })
    ));
    let build = h.claim("a1").unwrap();
    h.complete(&build, "a1");
    assert_eq!(h.state("release", "review"), TaskState::AwaitingApproval);
    assert_eq!(h.claim("a1"), None, "a gate is never work for an agent");
    // The agent hears that a person holds the workflow up, in its scope or across all.
    for request in [
        ClaimRequest::new("a1"),
        ClaimRequest::new("a1").in_workflow(WorkflowRef::from("release")),
    ] {
        let ClaimOutcome::Idle(idle) = h.store.claim(&request).unwrap() else {
            panic!("nothing is claimable while the gate waits");
        };
        assert_eq!(
            idle.reason,
            orchestration_core::store::IdleReason::NoneReady {
                awaiting_approval: 1
            }
        );
        assert!(
            idle.reason
                .to_string()
                .contains("1 gate waits for a person to approve or reject"),
            "{}",
            idle.reason
        );
    }
    let report = h
        .store
        .workflow_report(&WorkflowRef::from("release"))
        .unwrap();
    assert!(report.ready.is_empty());
    let waiting = report.blocked.iter().find(|b| b.key == "review").unwrap();
    assert!(waiting.reason.as_deref().unwrap().contains("approve"));
    assert!(matches!(&report.progress, Progress::Stalled(why) if why.contains("`review`")));
    assert_eq!(
        h.store.task(&gate_of("release")).unwrap().kind,
        TaskKind::Gate
    );

    let events = h.event_count();
    let outcome = h
        .store
        .decide_gate(&gate_of("release"), GateDecision::Approve, Some("checked"))
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Succeeded);
    assert_eq!(outcome.task.result.as_deref(), Some("checked"));
    assert_eq!(outcome.unblocked, ["ship"]);
    assert_eq!(h.event_count(), events + 2, "the gate's and ship's changes");
    // A second decision is a replay: refused, nothing changes.
    let again = h
        .store
        .decide_gate(&gate_of("release"), GateDecision::Reject, None);
    assert!(again.is_err());
    assert_eq!(h.state("release", "review"), TaskState::Succeeded);
    let ship = h.claim("a1").unwrap();
    assert_eq!(ship.task.key, "ship");
    h.complete(&ship, "a1");
    assert_eq!(h.status("release"), WorkflowStatus::Succeeded);
    // Work is not a gate, and cannot be decided on.
    let work = h.store.decide_gate(
        &TaskRef::key(WorkflowRef::from("release"), "build"),
        GateDecision::Approve,
        None,
    );
    assert!(matches!(work, Err(Error::InvalidArgument { .. })));
}

pub(crate) fn a_rejected_gate_fails_under_the_failure_policy(db: &dyn Backend) {
    let h = harness(db);
    gated(&h, "blocked", FailurePolicy::BlockDependents);
    gated(&h, "carried", FailurePolicy::Continue);
    for _ in 0..2 {
        let build = h.claim("a1").unwrap();
        h.complete(&build, "a1");
    }
    let rejected = h
        .store
        .decide_gate(&gate_of("blocked"), GateDecision::Reject, Some("not yet"))
        .unwrap();
    assert_eq!(rejected.task.state, TaskState::Failed);
    assert_eq!(rejected.task.reason, Some(FailureReason::Rejected));
    assert_eq!(rejected.task.error.as_deref(), Some("not yet"));
    assert_eq!(h.state("blocked", "ship"), TaskState::UpstreamFailed);
    assert_eq!(h.status("blocked"), WorkflowStatus::Failed);
    // Under `continue`, a rejected gate counts as done and its dependents run.
    let carried = h
        .store
        .decide_gate(&gate_of("carried"), GateDecision::Reject, None)
        .unwrap();
    assert_eq!(carried.unblocked, ["ship"]);
    // Retrying the failed puts the gate back: it waits for approval again.
    h.store
        .execute(&WorkflowRef::from("blocked"), WorkflowAction::RetryFailed)
        .unwrap();
    assert_eq!(h.state("blocked", "review"), TaskState::AwaitingApproval);
    assert_eq!(h.state("blocked", "ship"), TaskState::Pending);
}
