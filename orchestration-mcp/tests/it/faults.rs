//! Faults through the MCP server: an agent that vanishes without heartbeats, reports with a
//! stale token, and a database that cannot be written, which refuses changes as tool errors.

use std::sync::Arc;

use chrono::Duration;
use orchestration_core::{CreateOptions, Mode, Store, TaskSpec, TaskState, WorkflowSpec};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::processes::call;
use crate::support::harness;

/// Succeeded events in the log for `key`.
fn completions(store: &Store, key: &str) -> usize {
    store
        .events_since(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.task_key.as_deref() == Some(key) && e.to == Some(TaskState::Succeeded))
        .count()
}

#[tokio::test]
async fn a_vanished_agents_task_goes_to_another_agent_and_its_late_report_is_rejected() {
    let h = harness().await;
    h.workflow("w", &[("a", &[])]).await;
    h.register(&["ghost", "rescuer"]).await;
    let first = h
        .call("task_claim", json!({"agent": "ghost", "lease_seconds": 60}))
        .await
        .ok();
    let ghost_token = first.at("/token").as_u64().unwrap();
    // The agent vanishes: no heartbeat, and the lease runs out.
    h.clock.advance(Duration::seconds(61));
    let second = h
        .call(
            "task_claim",
            json!({"agent": "rescuer", "lease_seconds": 60}),
        )
        .await
        .ok();
    assert_eq!(second.at("/task/task"), &json!("w/a"));
    assert_eq!(second.at("/task/attempt"), &json!(2));
    let rescuer_token = second.at("/token").as_u64().unwrap();
    assert!(rescuer_token > ghost_token);

    // The vanished agent comes back and reports as if nothing happened: every report fails.
    for action in ["complete", "heartbeat", "release"] {
        let error = h
            .call(
                "task_update",
                json!({"task": "w/a", "agent": "ghost", "token": ghost_token, "action": action}),
            )
            .await
            .err();
        assert!(
            error.contains("rescuer") || error.contains("stale"),
            "{action}: {error}"
        );
    }
    // Even with the rescuer's name, the old token is stale.
    let error = h
        .call(
            "task_update",
            json!({"task": "w/a", "agent": "rescuer", "token": ghost_token, "action": "complete"}),
        )
        .await
        .err();
    assert!(error.contains("stale"), "{error}");
    h.call(
        "task_update",
        json!({"task": "w/a", "agent": "rescuer", "token": rescuer_token, "action": "complete",
               "result": "rescued"}),
    )
    .await
    .ok();
    // A retried late report after the end changes nothing either.
    let error = h
        .call(
            "task_update",
            json!({"task": "w/a", "agent": "ghost", "token": ghost_token, "action": "complete"}),
        )
        .await
        .err();
    assert!(error.contains("succeeded"), "{error}");
    assert_eq!(completions(&h.store, "a"), 1, "completed exactly once");
    let task = h.store.task(&"w/a".parse().unwrap()).unwrap();
    assert_eq!(task.result.as_deref(), Some("rescued"));
}

#[tokio::test]
async fn a_report_after_the_lease_ran_out_is_rejected_before_anyone_reclaims() {
    let h = harness().await;
    h.workflow("w", &[("a", &[])]).await;
    h.register(&["slow", "next"]).await;
    let claim = h
        .call("task_claim", json!({"agent": "slow", "lease_seconds": 30}))
        .await
        .ok();
    let token = claim.at("/token").as_u64().unwrap();
    h.clock.advance(Duration::seconds(31));
    let error = h
        .call(
            "task_update",
            json!({"task": "w/a", "agent": "slow", "token": token, "action": "complete"}),
        )
        .await
        .err();
    assert!(error.contains("expired"), "{error}");
    assert_eq!(completions(&h.store, "a"), 0);
    // The task is offered again with its attempt counted.
    let again = h.call("task_claim", json!({"agent": "next"})).await.ok();
    assert_eq!(again.at("/task/attempt"), &json!(2));
}

/// A database with one started workflow of one task, written and closed.
fn seeded_database(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("ro.db");
    let store = Store::open(&db).unwrap();
    store
        .create_workflow(
            WorkflowSpec::new("w", Mode::Parallel).task(TaskSpec::new("a", "A")),
            &CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .unwrap();
    db
}

/// What the model sees when the read-only database refuses a change.
const READ_ONLY: &str = "the database is read-only, so nothing was changed; reads still work";

/// Reads work; every write is refused with a tool error (`isError`, not a JSON-RPC error)
/// naming the cause; nothing changes; the server logs the refusal, but not as an error.
async fn check_read_only(db: &std::path::Path, extra: &[&str]) {
    let events_before = Store::open_read_only(db)
        .unwrap()
        .events_since(0, 1_000)
        .unwrap()
        .len();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
    command
        .arg("--db")
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "info");
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stderr = stderr.expect("stderr is piped");
    let log = tokio::spawn(async move {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log).await;
        log
    });
    let client = ().serve(transport).await.expect("initialize");
    let status = call(&client, "workflow_status", json!({"workflow": "w"}))
        .await
        .expect("reads work on a read-only database");
    assert_eq!(status["workflow"]["counts"], json!({"ready": 1}));
    let writes = [
        ("task_claim", json!({"agent": "a"})),
        (
            "workflow_create",
            json!({"name": "x", "tasks": [{"key": "k", "title": "K"}]}),
        ),
        (
            "agent_profile",
            json!({"action": "upsert", "name": "a", "capabilities": {"rust": 3}}),
        ),
        (
            "workflow_execute",
            json!({"workflow": "w", "action": "pause"}),
        ),
    ];
    for (tool, arguments) in writes {
        let Value::Object(arguments) = arguments else {
            unreachable!("arguments are objects")
        };
        let result = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
            .await
            .unwrap_or_else(|error| panic!("{tool}: a protocol error, not a tool error: {error}"));
        let text = result.content[0].as_text().map(|t| t.text.as_str());
        assert_eq!(result.is_error, Some(true), "{tool}: {text:?}");
        assert!(
            text.is_some_and(|text| text.starts_with(READ_ONLY)),
            "{tool}: {text:?}"
        );
    }
    // The server is still there and still reads.
    call(&client, "workflow_status", json!({})).await.unwrap();
    client.cancel().await.unwrap();
    let log = log.await.unwrap();
    assert!(
        log.contains("refused a change: the database is read-only"),
        "the refusal is logged: {log}"
    );
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no ERROR line: {errors:#?}");
    let store = Arc::new(Store::open_read_only(db).unwrap());
    assert_eq!(store.events_since(0, 1_000).unwrap().len(), events_before);
}

#[tokio::test]
async fn a_database_opened_read_only_serves_reads_and_refuses_writes_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_database(dir.path());
    check_read_only(&db, &["--read-only"]).await;
}

#[tokio::test]
async fn a_read_only_database_file_serves_reads_and_refuses_writes_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = seeded_database(dir.path());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&db).is_ok() {
        // A superuser writes through file permissions; the read-only flag test above covers
        // the same code path there.
        eprintln!("skipping: this user can write a read-only file");
        return;
    }
    check_read_only(&db, &[]).await;
}
