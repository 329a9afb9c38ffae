//! The library and the server together on one database file: what an embedding program does
//! through `Store` and what an agent does through the MCP tools are the same changes, seen
//! from both sides, fenced by the same tokens and recorded in one event log.

use std::path::Path;
use std::sync::Arc;

use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, EventKind, Mode, Store, TaskRef, TaskSpec, TaskState,
    TaskUpdate, WorkflowRef, WorkflowSpec, WorkflowStatus,
};
use orchestration_mcp::OrchestrationServer;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// A client connected to a server that opened the database at `path` itself, as a separate
/// server process would.
async fn agent_side(path: &Path) -> RunningService<RoleClient, ()> {
    let server = OrchestrationServer::new(Arc::new(Store::open(path).unwrap()));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(service) = server.serve(server_io).await {
            let _ = service.waiting().await;
        }
    });
    ().serve(client_io).await.expect("the client connects")
}

/// Calls `tool`; returns whether it was an error, its text and its structured content.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> (bool, String, Value) {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    (
        result.is_error.unwrap_or(false),
        text,
        result.structured_content.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_and_an_agent_share_one_orchestration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");

    // The program sets up the work and the team through the library.
    let program = Store::open(&path).unwrap();
    for agent in ["ana", "bo"] {
        program
            .upsert_agent(agent, &AgentUpdate::default())
            .unwrap();
    }
    let spec = WorkflowSpec::new("release", Mode::Dag)
        .task(TaskSpec::new("build", "Build the binaries").priority(90))
        .task(TaskSpec::new("docs", "Write the notes").priority(10))
        .task(TaskSpec::new("ship", "Publish").after(["build", "docs"]));
    let options = CreateOptions {
        start: true,
        ..Default::default()
    };
    program.create_workflow(spec, &options).unwrap();

    // An agent claims through the server and gets the task of highest priority.
    let client = agent_side(&path).await;
    let (error, text, claim) = call(&client, "task_claim", json!({"agent": "ana"})).await;
    assert!(!error, "{text}");
    assert_eq!(claim["task"]["task"], json!("release/build"), "{text}");
    let ana_token = claim["token"].as_u64().unwrap();

    // The program sees the lease at once, and claims the other ready task for bo.
    let build = TaskRef::key("release", "build");
    let view = program.task(&build).unwrap();
    assert_eq!(
        (view.state, view.agent.as_deref()),
        (TaskState::Running, Some("ana"))
    );
    let bo = program
        .claim(&ClaimRequest::new("bo"))
        .unwrap()
        .claimed()
        .expect("docs is ready");
    assert_eq!(bo.task.key, "docs");

    // The agent's server sees bo's lease too, and the tokens fence both ways: ana cannot
    // report on bo's task with her token, and the library refuses bo's token for ana's task.
    let (error, text, held) = call(&client, "task_get", json!({"agent": "bo"})).await;
    assert!(!error, "{text}");
    assert_eq!(held["held"][0]["task"], json!("release/docs"), "{text}");
    let (error, text, _) = call(
        &client,
        "task_update",
        json!({"task": "release/docs", "agent": "ana", "token": ana_token, "action": "complete"}),
    )
    .await;
    assert!(
        error,
        "a report on another agent's lease is refused: {text}"
    );
    let done = TaskUpdate::Complete {
        result: None,
        actual: None,
    };
    assert!(
        program
            .update_task(&build, "bo", bo.token, &done, None)
            .is_err()
    );
    assert_eq!(program.task(&build).unwrap().state, TaskState::Running);

    // Both finish their work, each through their own side.
    let (error, text, _) = call(
        &client,
        "task_update",
        json!({"task": "release/build", "agent": "ana", "token": ana_token,
               "action": "complete", "result": "binaries in dist/"}),
    )
    .await;
    assert!(!error, "{text}");
    let outcome = program
        .update_task(&TaskRef::Id(bo.task.id), "bo", bo.token, &done, None)
        .unwrap();
    assert_eq!(outcome.unblocked, ["ship"]);

    // The last task, claimed by the agent, carries the result the server recorded.
    let (error, text, claim) = call(&client, "task_claim", json!({"agent": "ana"})).await;
    assert!(!error, "{text}");
    assert_eq!(claim["task"]["task"], json!("release/ship"), "{text}");
    assert!(
        text.contains("binaries in dist/"),
        "the dependency's result is handed over: {text}"
    );
    let token = claim["token"].as_u64().unwrap();
    let (error, text, _) = call(
        &client,
        "task_update",
        json!({"task": "release/ship", "agent": "ana", "token": token, "action": "complete"}),
    )
    .await;
    assert!(!error, "{text}");

    // One history, in order, whoever made each change.
    let summary = program
        .workflow_summary(&WorkflowRef::from("release"))
        .unwrap();
    assert_eq!(summary.status, WorkflowStatus::Succeeded);
    let events = program.events_since(0, 1_000).unwrap();
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let finished: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == EventKind::TaskState && e.to == Some(TaskState::Succeeded))
        .map(|e| (e.task_key.clone().unwrap(), e.agent.clone().unwrap()))
        .collect();
    assert_eq!(
        finished,
        [
            ("build".to_owned(), "ana".to_owned()),
            ("docs".to_owned(), "bo".to_owned()),
            ("ship".to_owned(), "ana".to_owned()),
        ]
    );
    client.cancel().await.unwrap();
}
