//! A host program that serves orchestration's tools and one of its own from one MCP server.
//!
//! `OrchestrationServer::tool_router` is public: the host adds a `project_info` tool to it and
//! serves the result over stdio. `cargo run -p orchestration-mcp --example host_merge -- --demo`
//! instead connects an in-process client and calls both kinds of tools, printing what comes
//! back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use orchestration_core::{CreateOptions, Mode, Store, TaskSpec, WorkflowSpec};
use orchestration_mcp::OrchestrationServer;
use rmcp::ServiceExt;
use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Tool};

type Reply<'a> =
    Pin<Box<dyn Future<Output = Result<CallToolResponse, rmcp::ErrorData>> + Send + 'a>>;

/// The host's own tool: its name and how many workflows the store holds.
fn project_info(context: ToolCallContext<'_, OrchestrationServer>) -> Reply<'_> {
    let store = Arc::clone(context.service.store());
    Box::pin(async move {
        let count = tokio::task::spawn_blocking(move || store.workflows().map(|w| w.len()))
            .await
            .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?;
        let text = format!("project: demo-host; workflows: {count}");
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    })
}

fn server(store: Arc<Store>) -> OrchestrationServer {
    let mut server = OrchestrationServer::new(store);
    let mut schema = serde_json::Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), serde_json::json!({}));
    let tool = Tool::new(
        "project_info",
        "The host project's name and workflow count",
        Arc::new(schema),
    );
    server
        .tool_router
        .add_route(ToolRoute::new_dyn(tool, project_info));
    server
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::args().any(|arg| arg == "--demo");
    let store = Arc::new(if demo {
        Store::open_in_memory()?
    } else {
        Store::open_default()?
    });
    let server = server(Arc::clone(&store));
    if !demo {
        // Serve both kinds of tools to whichever client started this process.
        server
            .serve(rmcp::transport::stdio())
            .await?
            .waiting()
            .await?;
        return Ok(());
    }
    let spec =
        WorkflowSpec::new("demo", Mode::Sequential).task(TaskSpec::new("hello", "Say hello"));
    store.create_workflow(spec, &CreateOptions::default())?;
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = ().serve(client_io).await?;
    let names: Vec<String> = client
        .list_all_tools()
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    println!("tools: {}", names.join(", "));
    for tool in ["project_info", "workflow_status"] {
        let result = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(serde_json::Map::new()))
            .await?;
        let text = result
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        println!("{tool}: {}", text.lines().next().unwrap_or_default());
    }
    client.cancel().await?;
    Ok(())
}
