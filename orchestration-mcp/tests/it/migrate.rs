//! `orchestration-mcp migrate`: a populated SQLite database (workflows in every state, agents
//! with skills, a sprint, messages, locks and a lock wait, the event log) copied into a new
//! database, SQLite or PostgreSQL, reads the same through every report; the copy keeps
//! working where the source left off; a target that is not empty is refused and left as it
//! was; a missing source or an unreachable server is a clear error.

use std::path::Path;
use std::process::Output;

use orchestration_core::Store;
use serde_json::json;

use crate::postgres::{Database, off_runtime};
use crate::processes::{call, spawn};

/// Fills the database at `db` through a server, as a team would have.
async fn populate(db: &Path) {
    let process = spawn(db, &[]).await;
    let client = &process.client;
    let ok = |reply: Result<serde_json::Value, String>| reply.unwrap_or_else(|e| panic!("{e}"));
    for (agent, skills) in [
        ("ana", json!({"rust": 3, "docs": 2})),
        ("bo", json!({"rust": 5})),
    ] {
        ok(call(
            client,
            "agent_profile",
            json!({"action": "upsert", "name": agent, "capabilities": skills, "max_concurrent": 5}),
        )
        .await);
    }
    ok(call(
        client,
        "workflow_create",
        json!({"name": "proj", "tasks": [
            {"key": "a", "title": "A", "estimate": 3, "priority": 50, "skills": {"rust": 2}},
            {"key": "b", "title": "B", "estimate": 5, "priority": 60, "depends_on": ["a"]},
            {"key": "c", "title": "C", "estimate": 2.5, "description": "the docs",
             "skills": {"docs": 1}},
            {"key": "d", "title": "D", "estimate": 8, "priority": 80}
        ]}),
    )
    .await);
    ok(call(
        client,
        "sprint_planning",
        json!({"action": "start", "name": "s1", "start": "2026-11-30", "end": "2026-12-11",
               "members": [{"agent": "ana"}, {"agent": "bo", "availability": 0.5}],
               "workflows": ["proj"], "focus_factor": 0.7}),
    )
    .await);
    let tasks: Vec<serde_json::Value> = (0..30)
        .map(|i| json!({"key": format!("t{i}"), "title": "work", "max_attempts": 2}))
        .collect();
    ok(call(
        client,
        "workflow_create",
        json!({"name": "bulk", "mode": "parallel", "tasks": tasks}),
    )
    .await);
    // Completions, a failure that will be retried, and tasks still held.
    for round in 0..12 {
        let agent = if round % 2 == 0 { "ana" } else { "bo" };
        let claim = ok(call(
            client,
            "task_claim",
            json!({"agent": agent, "workflow": "bulk", "lease_seconds": 3600}),
        )
        .await);
        let report = match round {
            0..=7 => json!({"action": "complete", "result": format!("round {round}"),
                            "actual": 1.5}),
            8 => json!({"action": "fail", "error": "broke"}),
            _ => continue,
        };
        let mut arguments =
            json!({"task": claim["task"]["task"], "agent": agent, "token": claim["token"]});
        for (key, value) in report.as_object().unwrap() {
            arguments[key] = value.clone();
        }
        ok(call(client, "task_update", arguments).await);
    }
    let claim = ok(call(
        client,
        "task_claim",
        json!({"agent": "bo", "workflow": "proj"}),
    )
    .await);
    ok(call(
        client,
        "task_update",
        json!({"task": claim["task"]["task"], "agent": "bo", "token": claim["token"],
               "action": "complete", "actual": 4}),
    )
    .await);
    ok(call(
        client,
        "agent_collaboration",
        json!({"action": "message", "agent": "ana", "to": "bo", "note": "read me"}),
    )
    .await);
    ok(call(
        client,
        "agent_collaboration",
        json!({"action": "message", "agent": "bo", "to": "ana", "note": "and me"}),
    )
    .await);
    ok(call(
        client,
        "agent_collaboration",
        json!({"action": "inbox", "agent": "ana", "ack": true}),
    )
    .await);
    ok(call(
        client,
        "agent_collaboration",
        json!({"action": "lock", "agent": "ana", "resource": "src/", "prefix": true}),
    )
    .await);
    let waiting = ok(call(
        client,
        "agent_collaboration",
        json!({"action": "lock", "agent": "bo", "resource": "src/lib.rs", "mode": "shared"}),
    )
    .await);
    assert_eq!(waiting["acquired"], json!(false), "bo waits for ana's lock");
    process.client.cancel().await.unwrap();
}

/// Runs `orchestration-mcp migrate --from FROM --to TO`.
fn migrate(from: &str, to: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["migrate", "--from", from, "--to", to])
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks that `to` reads the same as `from` through every report, and that the copy goes on
/// where the source left off: new rows get new ids, and new events come after the copied ones.
async fn check_copy(from: &Path, to: &str) {
    let last = off_runtime(|| {
        let (source, target) = (Store::open(from).unwrap(), Store::open(to).unwrap());
        let comparison = source.compare(&target).unwrap();
        assert_eq!(comparison.differences, vec![], "{comparison:?}");
        assert_eq!(comparison.workflows, 2);
        assert_eq!(comparison.agents, 2);
        assert_eq!(comparison.sprints, 1);
        assert!(comparison.events > 20, "{comparison:?}");
        let (locks, waits) = target.locks().unwrap();
        assert_eq!((locks.len(), waits.len()), (1, 1), "the lock and the wait");
        assert_eq!(
            target
                .inbox(
                    "bo",
                    100,
                    1 << 20,
                    orchestration_core::store::Delivery::Peek
                )
                .unwrap()
                .0
                .len(),
            1,
            "bo's unread message"
        );
        comparison.last_event_seq
    });
    let process = spawn(Path::new(to), &[]).await;
    call(
        &process.client,
        "workflow_create",
        json!({"name": "after", "tasks": [{"key": "x", "title": "X"}]}),
    )
    .await
    .unwrap();
    let claim = call(
        &process.client,
        "task_claim",
        json!({"agent": "ana", "workflow": "after"}),
    )
    .await
    .unwrap();
    assert_eq!(claim["task"]["task"], json!("after/x"));
    call(
        &process.client,
        "task_update",
        json!({"task": "after/x", "agent": "ana", "token": claim["token"], "action": "complete"}),
    )
    .await
    .unwrap();
    process.client.cancel().await.unwrap();
    off_runtime(|| {
        let target = Store::open(to).unwrap();
        let events = target.events_since(last, 100).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.workflow_name.as_deref() == Some("after")),
            "the new events follow the copied ones: {events:?}"
        );
        assert_eq!(target.workflows().unwrap().len(), 3);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_sqlite_database_migrates_into_a_new_sqlite_file_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from.db"), dir.path().join("to.db"));
    populate(&from).await;
    let output = migrate(from.to_str().unwrap(), to.to_str().unwrap());
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    let tasks_line = format!("  {:<15} {:>9}", "tasks", 34);
    assert!(summary.contains(&tasks_line), "{summary}");
    assert!(
        summary.contains("verified: 2 workflow report(s), 2 agent(s), 1 sprint(s)"),
        "{summary}"
    );
    check_copy(&from, to.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_sqlite_database_migrates_into_postgres_and_reads_the_same() {
    let Some(db) = Database::new("migrate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("from.db");
    populate(&from).await;
    let url = db.url();
    let output = migrate(from.to_str().unwrap(), &url);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("verified:"), "{summary}");
    check_copy(&from, &url).await;
}

/// A second copy into a database that now holds the first is refused, and changes nothing.
fn check_refused(from: &Path, to: &str) {
    let before = off_runtime(|| Store::open(to).unwrap().last_event_seq().unwrap());
    let output = migrate(from.to_str().unwrap(), to);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("the target database is not empty: its table `workflows` has 2 row(s)"),
        "{error}"
    );
    assert!(error.contains("nothing was copied"), "{error}");
    off_runtime(|| {
        let (source, target) = (Store::open(from).unwrap(), Store::open(to).unwrap());
        assert_eq!(target.last_event_seq().unwrap(), before);
        assert_eq!(source.compare(&target).unwrap().differences, vec![]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_not_empty_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from.db"), dir.path().join("to.db"));
    populate(&from).await;
    assert!(
        migrate(from.to_str().unwrap(), to.to_str().unwrap())
            .status
            .success()
    );
    check_refused(&from, to.to_str().unwrap());
    if let Some(db) = Database::new("refused") {
        let url = db.url();
        assert!(migrate(from.to_str().unwrap(), &url).status.success());
        check_refused(&from, &url);
    }
}

#[test]
fn a_missing_source_or_an_unreachable_target_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let output = migrate(
        missing.to_str().unwrap(),
        "postgres://root@127.0.0.1:5432/test",
    );
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("no database at"), "{error}");
    assert!(error.contains("missing.db"), "{error}");
    assert!(!missing.exists(), "no database was created in its place");

    let from = dir.path().join("from.db");
    Store::open(&from).unwrap();
    // Port 1 on loopback: nothing listens there.
    let output = migrate(
        from.to_str().unwrap(),
        "postgres://someone:secret@127.0.0.1:1/nowhere",
    );
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("cannot connect to PostgreSQL at postgres://someone@127.0.0.1:1/nowhere"),
        "{error}"
    );
    assert!(
        !error.contains("secret"),
        "the password is not shown: {error}"
    );

    let output = migrate(from.to_str().unwrap(), "postgres://[oops");
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(error.contains("invalid"), "{error}");

    let output = migrate(from.to_str().unwrap(), from.to_str().unwrap());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the same database"),
        "{}",
        stderr(&output)
    );
}
