//! Waiting calls in process: what ends a wait besides another process's change (that is
//! `tests/python/waiting.py`): a retry falling due, and reasons no wait can end.

use serde_json::json;

use crate::support::harness;

#[tokio::test]
async fn a_waiting_claim_wakes_when_a_retry_falls_due_without_any_event() {
    let h = harness().await;
    h.call(
        "workflow_create",
        json!({"name": "flaky", "retry": {"initial_interval_ms": 1000},
               "tasks": [{"key": "a", "title": "A", "max_attempts": 2}]}),
    )
    .await
    .ok();
    let (task, token) = h.claim("w").await;
    h.call(
        "task_update",
        json!({"task": task, "agent": "w", "token": token, "action": "fail", "error": "flaky"}),
    )
    .await
    .ok();
    // The store's clock passes the retry's time while the claim waits; no event marks it.
    let clock = h.clock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        clock.advance(chrono::Duration::seconds(2));
    });
    let claim = h
        .call("task_claim", json!({"agent": "w", "wait_seconds": 30}))
        .await
        .ok();
    assert_eq!(claim.at("/claimed"), &json!(true), "{}", claim.text);
    assert_eq!(claim.at("/task/attempt"), &json!(2), "{}", claim.text);
}

#[tokio::test]
async fn a_claim_no_one_else_can_unblock_does_not_wait() {
    let h = harness().await;
    h.workflow("w", &[("a", &[]), ("b", &[])]).await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "solo", "max_concurrent": 1}),
    )
    .await
    .ok();
    h.call("task_claim", json!({"agent": "solo"})).await.ok();
    let idle = h
        .call("task_claim", json!({"agent": "solo", "wait_seconds": 300}))
        .await
        .ok();
    assert_eq!(idle.at("/claimed"), &json!(false));
    assert_eq!(idle.at("/reason"), &json!("at_wip_limit"));
    // Only the agent's own report frees a slot, so the call answered instead of waiting.
    let waited = idle.at("/waited_seconds").as_f64().unwrap();
    assert!(waited < 60.0, "waited {waited} s");
    assert!(
        idle.text.starts_with("nothing claimed after waiting"),
        "{}",
        idle.text
    );
}

#[tokio::test]
async fn wait_seconds_is_checked_like_any_argument() {
    let h = harness().await;
    h.register(&["w"]).await;
    let cases = [
        (
            "task_claim",
            json!({"agent": "w", "wait_seconds": 301}),
            "wait_seconds",
        ),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "w", "wait_seconds": 1000}),
            "wait_seconds",
        ),
        (
            "agent_collaboration",
            json!({"action": "lock", "agent": "w", "resource": "a", "wait_seconds": 5}),
            "wait_seconds",
        ),
    ];
    for (tool, args, field) in cases {
        let error = h.call(tool, args.clone()).await.err();
        assert!(error.contains(field), "{tool} {args}: {error}");
    }
}
