//! Many server processes on one database file: eight copies of the binary, each driven over
//! stdio by its own client, claim and complete one shared workflow. Nothing may be handed out
//! twice, nothing lost, no client may see a busy database, and the event log must tell the
//! same story as the task table.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use orchestration_core::{EventKind, Store, TaskState, WorkflowRef};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::process::Command;

/// A client of one server process.
pub(crate) struct Process {
    pub(crate) client: RunningService<RoleClient, ()>,
    pub(crate) pid: u32,
}

/// Starts the binary on `db` with `extra` arguments and connects a client over its stdio.
pub(crate) async fn spawn(db: &Path, extra: &[&str]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
    command.arg("--db").arg(db).args(extra);
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the server starts");
    let pid = transport.id().expect("a running child has a pid");
    let client = ().serve(transport).await.expect("initialize");
    Process { client, pid }
}

/// What a call returned: the structured content, or the error text (tool or protocol).
pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Result<Value, String> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .map_err(|e| format!("protocol error: {e}"))?;
    if result.is_error == Some(true) {
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        return Err(text.join("\n"));
    }
    Ok(result.structured_content.unwrap_or(Value::Null))
}

/// Tasks in the shared workflow.
const TASKS: usize = 2_000;
/// Server processes, one client each.
const PROCESSES: usize = 8;

/// What one client did.
#[derive(Debug, Default)]
struct Work {
    /// Task and token of every claim it got.
    claims: Vec<(String, u64)>,
    /// Tasks whose completion it saw acknowledged.
    completed: Vec<String>,
    /// Every error it saw.
    errors: Vec<String>,
}

/// Claims and completes until the workflow is finished.
async fn drive(process: Process, agent: String) -> Work {
    let mut work = Work::default();
    // Only registered agents take work.
    call(
        &process.client,
        "agent_profile",
        json!({"action": "upsert", "name": agent}),
    )
    .await
    .unwrap_or_else(|e| panic!("registering {agent}: {e}"));
    loop {
        let claim = call(
            &process.client,
            "task_claim",
            json!({"agent": agent, "workflow": "load"}),
        )
        .await;
        let claim = match claim {
            Ok(claim) => claim,
            Err(error) => {
                work.errors.push(error);
                continue;
            }
        };
        if claim["claimed"] != json!(true) {
            // Nothing ready: either others hold the rest, or the workflow is done.
            let status = call(
                &process.client,
                "workflow_status",
                json!({"workflow": "load"}),
            )
            .await
            .unwrap_or_else(|e| panic!("status failed: {e}"));
            if status["workflow"]["status"] != json!("running") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        let task = claim["task"]["task"].as_str().unwrap().to_owned();
        let token = claim["token"].as_u64().unwrap();
        work.claims.push((task.clone(), token));
        let done = call(
            &process.client,
            "task_update",
            json!({"task": task, "agent": agent, "token": token, "action": "complete",
                   "result": format!("done by {agent}")}),
        )
        .await;
        match done {
            Ok(_) => work.completed.push(task),
            Err(error) => work.errors.push(error),
        }
    }
    process.client.cancel().await.unwrap();
    work
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_processes_on_one_database_complete_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let mut processes = Vec::new();
    for _ in 0..PROCESSES {
        processes.push(spawn(&db, &[]).await);
    }
    // A four-way tree: one root, and each task waits for its parent, so readiness spreads
    // through the run and claims race both for ready tasks and for newly unblocked ones.
    let tasks: Vec<Value> = (0..TASKS)
        .map(|i| {
            let depends_on: Vec<String> = if i == 0 {
                vec![]
            } else {
                vec![format!("t{}", (i - 1) / 4)]
            };
            json!({"key": format!("t{i}"), "title": "work", "depends_on": depends_on})
        })
        .collect();
    call(
        &processes[0].client,
        "workflow_create",
        json!({"name": "load", "tasks": tasks}),
    )
    .await
    .unwrap();

    let started = Instant::now();
    let handles: Vec<_> = processes
        .into_iter()
        .enumerate()
        .map(|(i, process)| tokio::spawn(drive(process, format!("agent-{i}"))))
        .collect();
    let mut works = Vec::new();
    for handle in handles {
        works.push(handle.await.unwrap());
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{PROCESSES} processes completed {TASKS} tasks in {elapsed:.1?}: {:.0} tasks/s",
        TASKS as f64 / elapsed.as_secs_f64()
    );

    let errors: Vec<&String> = works.iter().flat_map(|w| &w.errors).collect();
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
    // Every task completed once, by the agent that claimed it, and no token was seen twice.
    let mut completed_by: HashMap<&str, usize> = HashMap::new();
    for (i, work) in works.iter().enumerate() {
        for task in &work.completed {
            assert!(
                completed_by.insert(task, i).is_none(),
                "{task} was completed twice"
            );
        }
    }
    assert_eq!(completed_by.len(), TASKS, "every task was completed");
    let claims: usize = works.iter().map(|w| w.claims.len()).sum();
    assert_eq!(claims, TASKS, "no task was claimed twice");

    let store = Arc::new(Store::open(&db).unwrap());
    let report = store.workflow_report(&WorkflowRef::from("load")).unwrap();
    assert_eq!(report.summary.status.to_string(), "succeeded");
    for task in &report.tasks {
        let key = format!("load/{}", task.key);
        assert_eq!(task.state, TaskState::Succeeded, "{key}");
        assert_eq!(task.attempt, 1, "{key} took one attempt");
        let agent = completed_by[key.as_str()];
        assert_eq!(
            task.result.as_deref(),
            Some(format!("done by agent-{agent}").as_str()),
            "{key}: the stored result is the acknowledged one"
        );
    }
    check_log_agrees(&store, &report.tasks, &completed_by);
}

/// Replays the event log and checks it against the task table: each task's last state, its
/// attempt count, and the agent that completed it.
fn check_log_agrees(
    store: &Store,
    tasks: &[orchestration_core::store::TaskView],
    completed_by: &HashMap<&str, usize>,
) {
    #[derive(Debug, Default)]
    struct Replayed {
        state: Option<TaskState>,
        attempt: u32,
        completed_by: Option<String>,
        completions: usize,
    }
    let mut replayed: BTreeMap<String, Replayed> = BTreeMap::new();
    let mut after = 0;
    loop {
        let events = store.events_since(after, 5_000).unwrap();
        let Some(last) = events.last() else { break };
        after = last.seq;
        for event in events {
            if event.kind != EventKind::TaskState {
                continue;
            }
            let key = event.task_key.clone().unwrap();
            let entry = replayed.entry(key).or_default();
            // Tasks are created pending without an event; every later event starts where the
            // one before it ended.
            let from = entry.state.unwrap_or(TaskState::Pending);
            assert_eq!(
                event.from,
                Some(from),
                "the events of {:?} chain",
                event.task_key
            );
            entry.state = event.to;
            entry.attempt = event.attempt.unwrap_or(0);
            if event.to == Some(TaskState::Succeeded) {
                entry.completions += 1;
                entry.completed_by = event.agent.clone();
            }
        }
    }
    assert_eq!(replayed.len(), tasks.len());
    for task in tasks {
        let entry = &replayed[&task.key];
        assert_eq!(entry.state, Some(task.state), "{}", task.key);
        assert_eq!(entry.attempt, task.attempt, "{}", task.key);
        assert_eq!(
            entry.completions, 1,
            "{} succeeded once in the log",
            task.key
        );
        let agent = completed_by[format!("load/{}", task.key).as_str()];
        assert_eq!(
            entry.completed_by.as_deref(),
            Some(format!("agent-{agent}").as_str()),
            "{}",
            task.key
        );
    }
}
