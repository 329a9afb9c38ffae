//! Handoffs, messages acknowledged once (also by concurrent consumers), and resource locks with their conflicts, expiry and deadlock refusal.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use orchestration_core::store::*;
use orchestration_core::*;

use crate::Backend;
use crate::harness::*;

pub(crate) fn a_handoff_moves_the_task_and_its_lease_with_a_note(db: &dyn Backend) {
    let h = harness(db);
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
            "was never issued for task `hand/a`",
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
        .update_task(
            &claim,
            "ana",
            TaskUpdate::Complete {
                result: None,
                actual: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("leased to `bo`"), "{err}");
    let inbox = h
        .store
        .inbox("bo", 10, usize::MAX, Delivery::Peek)
        .unwrap()
        .0;
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

pub(crate) fn messages_reach_agents_workflows_and_everyone_and_are_acknowledged_once(
    db: &dyn Backend,
) {
    let h = harness(db);
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
        .inbox("bo", 10, usize::MAX, Delivery::Peek)
        .unwrap()
        .0
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bo, ["who has talk?", "standup"]);
    let cy = h
        .store
        .inbox("cy", 10, usize::MAX, Delivery::Peek)
        .unwrap()
        .0;
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
    let taken = h
        .store
        .inbox("cy", 10, usize::MAX, Delivery::Acknowledge)
        .unwrap()
        .0;
    assert_eq!(taken.len(), 1);
    assert!(
        h.store
            .inbox("cy", 10, usize::MAX, Delivery::Acknowledge)
            .unwrap()
            .0
            .is_empty(),
        "an acknowledged message is not delivered again"
    );
}

pub(crate) fn concurrent_consumers_receive_each_message_exactly_once(db: &dyn Backend) {
    let store = db.open();
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
            let received = Arc::clone(&received);
            scope.spawn(move || {
                let store = db.open();
                loop {
                    let batch = store
                        .inbox("many", 7, usize::MAX, Delivery::Acknowledge)
                        .unwrap()
                        .0;
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

pub(crate) fn locks_conflict_expire_release_only_by_owner_and_refuse_deadlocks(db: &dyn Backend) {
    use orchestration_core::{collaboration::LockMode, collaboration::Resource};
    let h = harness(db);
    let ttl = Duration::minutes(5);
    let exact = |name: &str| Resource::Exact(name.into());
    let acquired = |outcome: orchestration_core::store::LockOutcome| {
        matches!(outcome, orchestration_core::store::LockOutcome::Acquired(_))
    };
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
        orchestration_core::store::LockOutcome::Blocked(holders) => {
            assert_eq!(holders[0].owner, "ana")
        }
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
