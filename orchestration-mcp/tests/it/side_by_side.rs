//! Real processes: the binary over stdio driven by rmcp clients, two server instances used at
//! once by one program with no conflict of state, `--toolsets`, and a clean exit on EOF and
//! on signals.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::process::Command;

async fn connect(args: &[&str]) -> RunningService<RoleClient, ()> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
    command.args(args);
    ().serve(TokioChildProcess::new(command).expect("spawn"))
        .await
        .expect("initialize")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> Value {
    let Value::Object(arguments) = arguments else {
        unreachable!()
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    result.structured_content.unwrap()
}

#[tokio::test]
async fn two_servers_on_two_databases_serve_one_program_without_sharing_state() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let first = connect(&["--db", a.to_str().unwrap()]).await;
    let second = connect(&["--db", b.to_str().unwrap()]).await;
    // Same tool names and the same workflow name on both: the client keeps them apart by
    // server, and each server keeps its own state.
    call(
        &first,
        "workflow_create",
        json!({"name": "same", "tasks": [{"key": "only-in-a", "title": "A"}]}),
    )
    .await;
    call(
        &second,
        "workflow_create",
        json!({"name": "same", "tasks": [{"key": "only-in-b", "title": "B"}]}),
    )
    .await;
    for server in [&first, &second] {
        call(
            server,
            "agent_profile",
            json!({"action": "upsert", "name": "x"}),
        )
        .await;
    }
    let claimed_a = call(&first, "task_claim", json!({"agent": "x"})).await;
    let claimed_b = call(&second, "task_claim", json!({"agent": "x"})).await;
    assert_eq!(claimed_a["task"]["task"], json!("same/only-in-a"));
    assert_eq!(claimed_b["task"]["task"], json!("same/only-in-b"));
    let tools_a: Vec<String> = first
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let tools_b: Vec<String> = second
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tools_a, tools_b);
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
}

#[tokio::test]
async fn two_servers_on_one_database_share_it_and_never_hand_out_a_task_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let db = db.to_str().unwrap();
    let first = connect(&["--db", db]).await;
    let second = connect(&["--db", db]).await;
    let tasks: Vec<Value> = (0..20)
        .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
        .collect();
    call(
        &first,
        "workflow_create",
        json!({"name": "shared", "mode": "parallel", "tasks": tasks}),
    )
    .await;
    let mut seen = std::collections::HashSet::new();
    for round in 0..10 {
        for (client, agent) in [(&first, "one"), (&second, "two")] {
            let agent = format!("{agent}-{round}");
            call(
                client,
                "agent_profile",
                json!({"action": "upsert", "name": agent}),
            )
            .await;
            let claim = call(client, "task_claim", json!({"agent": agent})).await;
            let task = claim["task"]["task"].as_str().unwrap().to_owned();
            assert!(seen.insert(task.clone()), "{task} was handed out twice");
        }
    }
    assert_eq!(seen.len(), 20);
    let status = call(&second, "workflow_status", json!({"workflow": "shared"})).await;
    assert_eq!(status["workflow"]["counts"], json!({"running": 20}));
}

#[tokio::test]
async fn toolsets_narrow_the_tools_offered() {
    let client = connect(&["--db", ":memory:", "--toolsets", "task,agent"]).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "agent_collaboration",
            "agent_delegation",
            "agent_performance",
            "agent_profile",
            "agent_workload",
            "task_claim",
            "task_get",
            "task_update"
        ]
    );
}

#[test]
fn the_server_exits_cleanly_on_stdin_eof_and_on_sigterm() {
    use std::io::Write;
    let binary = env!("CARGO_BIN_EXE_orchestration-mcp");
    // EOF right after the handshake.
    let mut child = std::process::Command::new(binary)
        .args(["--db", ":memory:"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    writeln!(child.stdin.as_mut().unwrap(), "{init}").unwrap();
    drop(child.stdin.take());
    let status = wait(&mut child, Duration::from_secs(10)).expect("exits after stdin closes");
    assert!(status.success(), "{status:?}");

    // SIGTERM while the client still holds stdin open.
    let mut child = std::process::Command::new(binary)
        .args(["--db", ":memory:"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.as_mut().unwrap(), "{init}").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status =
        wait(&mut child, Duration::from_secs(10)).expect("exits on SIGTERM with stdin open");
    assert!(status.success(), "{status:?}");
}

fn wait(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}
