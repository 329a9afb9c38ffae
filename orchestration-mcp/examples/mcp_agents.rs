//! Three agents that are real MCP clients work through a workflow in parallel.
//!
//! Each agent is an rmcp client talking to its own `orchestration-mcp` process over stdio, and
//! all processes share one SQLite file: the way agents in separate editor windows work on one
//! project. A coordinator (a fourth client) creates the workflow and prints its status as the
//! agents register, claim, heartbeat, report progress and complete.
//!
//! Run it with `cargo run -p orchestration-mcp --example mcp_agents` (it builds the server binary if needed).

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::process::Command;

type Client = RunningService<RoleClient, ()>;

/// Builds the server with the profile this example was built with, and returns its path.
fn server_binary() -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/mcp_agents -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("unexpected example path")?;
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = StdCommand::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        "orchestration-mcp",
        "--bin",
        "orchestration-mcp",
    ]);
    if release {
        build.arg("--release");
    }
    if !build.status()?.success() {
        return Err("building orchestration-mcp failed".into());
    }
    Ok(profile_dir.join("orchestration-mcp"))
}

async fn connect(
    binary: &PathBuf,
    db: &str,
) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
    let mut command = Command::new(binary);
    command.args(["--db", db]);
    Ok(().serve(TokioChildProcess::new(command)?).await?)
}

/// Calls a tool and returns (summary line, structured content); a tool error becomes an error.
async fn call(
    client: &Client,
    tool: &str,
    arguments: Value,
) -> Result<(String, Value), Box<dyn std::error::Error + Send + Sync>> {
    let Value::Object(arguments) = arguments else {
        return Err("arguments must be an object".into());
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await?;
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    let summary = text.lines().next().unwrap_or_default().to_owned();
    if result.is_error == Some(true) {
        return Err(format!("{tool}: {text}").into());
    }
    Ok((summary, result.structured_content.unwrap_or(Value::Null)))
}

/// One agent's loop: register, then claim, heartbeat, work, complete until nothing is left.
async fn agent(
    binary: PathBuf,
    db: String,
    name: &'static str,
    skills: Value,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let client = connect(&binary, &db).await?;
    call(
        &client,
        "agent_profile",
        json!({"action": "upsert", "name": name, "capabilities": skills, "max_concurrent": 1}),
    )
    .await?;
    let mut done = Vec::new();
    loop {
        let (_, claim) = call(
            &client,
            "task_claim",
            json!({"agent": name, "workflow": "launch"}),
        )
        .await?;
        if claim["claimed"] != json!(true) {
            let (_, status) =
                call(&client, "workflow_status", json!({"workflow": "launch"})).await?;
            if status["progress"] == json!("finished") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let task = claim["task"]["task"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let token = claim["token"].clone();
        let inputs: Vec<String> = claim["dependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter_map(|d| d["result"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        call(
            &client,
            "task_update",
            json!({"task": task, "agent": name, "token": token, "action": "heartbeat"}),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let note = format!("half way, building on {} input(s)", inputs.len());
        call(&client, "task_update", json!({"task": task, "agent": name, "token": token, "action": "progress", "note": note})).await?;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let result = format!("{task} done by {name}");
        call(&client, "task_update", json!({"task": task, "agent": name, "token": token, "action": "complete", "result": result})).await?;
        done.push(task);
    }
    client.cancel().await?;
    Ok(done)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let binary = server_binary()?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("team.db").to_string_lossy().into_owned();
    let coordinator = connect(&binary, &db).await?;
    let tasks = json!([
        {"key": "plan", "title": "Plan the launch", "estimate": 2},
        {"key": "api", "title": "Finish the API", "estimate": 3, "skills": {"rust": 3}, "depends_on": ["plan"]},
        {"key": "cli", "title": "Polish the CLI", "estimate": 2, "skills": {"rust": 2}, "depends_on": ["plan"]},
        {"key": "site", "title": "Build the landing page", "estimate": 3, "skills": {"web": 3}, "depends_on": ["plan"]},
        {"key": "copy", "title": "Write the announcement", "estimate": 1, "skills": {"writing": 2}, "depends_on": ["plan"]},
        {"key": "docs", "title": "Update the docs", "estimate": 2, "skills": {"writing": 3}, "depends_on": ["api", "cli"]},
        {"key": "e2e", "title": "Run the end-to-end tests", "estimate": 2, "skills": {"rust": 2}, "depends_on": ["api", "cli"]},
        {"key": "screens", "title": "Take screenshots", "estimate": 1, "skills": {"web": 2}, "depends_on": ["site", "cli"]},
        {"key": "review", "title": "Review everything", "estimate": 1, "depends_on": ["docs", "e2e", "screens", "copy"]},
        {"key": "ship", "title": "Ship it", "estimate": 1, "depends_on": ["review"]}
    ]);
    let (summary, created) = call(
        &coordinator,
        "workflow_create",
        json!({"name": "launch", "tasks": tasks}),
    )
    .await?;
    println!("{summary}");
    println!("stages: {}", created["stages"]);

    let workers = [
        tokio::spawn(agent(
            binary.clone(),
            db.clone(),
            "rusty",
            json!({"rust": 4, "writing": 2}),
        )),
        tokio::spawn(agent(
            binary.clone(),
            db.clone(),
            "webby",
            json!({"web": 4, "rust": 2}),
        )),
        tokio::spawn(agent(
            binary.clone(),
            db.clone(),
            "scribe",
            json!({"writing": 5}),
        )),
    ];
    let mut last = String::new();
    loop {
        let (line, status) = call(
            &coordinator,
            "workflow_status",
            json!({"workflow": "launch"}),
        )
        .await?;
        let running: Vec<String> = status["running"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|t| {
                        format!(
                            "{}@{}",
                            t["key"].as_str().unwrap_or(""),
                            t["agent"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let line = format!("{line} [{}]", running.join(" "));
        if line != last {
            println!("{line}");
            last = line;
        }
        if status["progress"] == json!("finished") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    for (worker, name) in workers.into_iter().zip(["rusty", "webby", "scribe"]) {
        let done = worker
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        println!("{name} completed {}: {}", done.len(), done.join(", "));
    }
    let (summary, _) = call(&coordinator, "agent_performance", json!({})).await?;
    println!("{summary}");
    coordinator.cancel().await?;
    Ok(())
}
