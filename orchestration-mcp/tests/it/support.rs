//! Helpers: an in-process client connected to a server over a duplex pipe, and a data-driven
//! `call` that returns what the model would see.

use std::sync::Arc;

use orchestration_core::{Clock, ManualClock, Store};
use orchestration_mcp::OrchestrationServer;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// A server on an in-memory store with a manual clock, and a client talking to it.
pub(crate) struct Harness {
    pub(crate) client: RunningService<RoleClient, ()>,
    pub(crate) clock: ManualClock,
    pub(crate) store: Arc<Store>,
}

/// What a tool call returned.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) is_error: bool,
    pub(crate) text: String,
    pub(crate) structured: Value,
    /// The size of the whole result as it goes on the wire, in bytes.
    pub(crate) bytes: usize,
}

impl Reply {
    /// The structured field at a JSON pointer, e.g. `/task/state`.
    pub(crate) fn at(&self, pointer: &str) -> &Value {
        self.structured.pointer(pointer).unwrap_or(&Value::Null)
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Reply {
        assert!(!self.is_error, "expected success, got: {}", self.text);
        self
    }

    #[track_caller]
    pub(crate) fn err(self) -> String {
        assert!(self.is_error, "expected an error, got: {}", self.text);
        self.text
    }
}

pub(crate) async fn harness() -> Harness {
    let (clock, handle) = Clock::manual(
        chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .into(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap().with_clock(clock));
    let server = OrchestrationServer::new(Arc::clone(&store));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(service) = server.serve(server_io).await {
            let _ = service.waiting().await;
        }
    });
    let client = ().serve(client_io).await.expect("client connects");
    Harness {
        client,
        clock: handle,
        store,
    }
}

impl Harness {
    /// Calls `tool` with `arguments` (a JSON object).
    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> Reply {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        let result = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
        let bytes = serde_json::to_vec(&result).unwrap().len();
        let text = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        Reply {
            is_error: result.is_error.unwrap_or(false),
            text,
            structured: result.structured_content.unwrap_or(Value::Null),
            bytes,
        }
    }

    /// Creates and starts a workflow from `(key, depends_on)` pairs.
    pub(crate) async fn workflow(&self, name: &str, tasks: &[(&str, &[&str])]) -> Reply {
        let tasks: Vec<Value> = tasks
            .iter()
            .map(
                |(key, deps)| json!({"key": key, "title": format!("do {key}"), "depends_on": deps}),
            )
            .collect();
        self.call("workflow_create", json!({"name": name, "tasks": tasks}))
            .await
            .ok()
    }

    /// Registers `agents` with default profiles: only registered agents act.
    pub(crate) async fn register(&self, agents: &[&str]) {
        for agent in agents {
            self.call("agent_profile", json!({"action": "upsert", "name": agent}))
                .await
                .ok();
        }
    }

    /// Registers `agent` (most tests are about something else) and claims for it; returns
    /// (task, token).
    pub(crate) async fn claim(&self, agent: &str) -> (String, u64) {
        self.register(&[agent]).await;
        let reply = self.call("task_claim", json!({"agent": agent})).await.ok();
        assert_eq!(reply.at("/claimed"), &json!(true), "{}", reply.text);
        (
            reply.at("/task/task").as_str().unwrap().to_owned(),
            reply.at("/token").as_u64().unwrap(),
        )
    }
}
