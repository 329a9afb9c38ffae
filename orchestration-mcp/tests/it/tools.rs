//! Every tool through a real MCP client in process: each happy path and each error.

use serde_json::{Value, json};

use crate::support::harness;

#[tokio::test]
async fn server_info_names_the_server_and_tells_agents_how_to_work() {
    let h = harness().await;
    let info = h.client.peer_info().unwrap();
    let server = info.server_info.clone().unwrap();
    assert_eq!(server.name, "orchestration");
    let instructions = info.instructions.clone().unwrap();
    for step in ["agent_profile", "task_claim", "heartbeat", "complete"] {
        assert!(instructions.contains(step), "instructions mention {step}");
    }
}

#[tokio::test]
async fn workflow_create_returns_stages_critical_path_and_ready_tasks() {
    let h = harness().await;
    let reply = h
        .call(
            "workflow_create",
            json!({
                "name": "ship",
                "tasks": [
                    {"key": "design", "title": "Design", "estimate": 3},
                    {"key": "build", "title": "Build", "estimate": 5, "depends_on": ["design"]},
                    {"key": "docs", "title": "Docs", "depends_on": ["design"]},
                    {"key": "release", "title": "Release", "depends_on": ["build", "docs"]}
                ]
            }),
        )
        .await
        .ok();
    assert_eq!(
        reply.at("/stages"),
        &json!([
            {"size": 1, "tasks": ["ship/design"]},
            {"size": 2, "tasks": ["ship/build", "ship/docs"]},
            {"size": 1, "tasks": ["ship/release"]}
        ])
    );
    assert_eq!(
        reply.at("/critical_path/tasks"),
        &json!(["ship/design", "ship/build", "ship/release"])
    );
    assert_eq!(reply.at("/critical_path/length"), &json!(9.0));
    assert_eq!(reply.at("/ready"), &json!(["ship/design"]));
    assert_eq!(reply.at("/status"), &json!("running"));
    assert_eq!(reply.at("/truncated"), &Value::Null, "nothing was cut");
    assert!(
        reply
            .text
            .starts_with("created workflow `ship` (running): 4 tasks, 3 stages"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn workflow_create_errors_name_the_problem_and_write_nothing() {
    let h = harness().await;
    let cases = [
        (
            json!({"name": "w", "tasks": []}),
            "invalid workflow spec: a workflow needs at least one task",
        ),
        (
            json!({"name": "w", "tasks": [{"key": "a", "title": "A", "depends_on": ["b"]}, {"key": "b", "title": "B", "depends_on": ["a"]}]}),
            "dependency cycle: a -> b -> a (each task depends on the next)",
        ),
        (
            json!({"name": "w", "tasks": [{"key": "a", "title": "A", "estimate": -2}]}),
            "task `a` has estimate -2",
        ),
        (
            json!({"name": "bad name", "tasks": [{"key": "a", "title": "A"}]}),
            "workflow name `bad name` is invalid",
        ),
        (
            json!({"name": "w", "tasks": [{"key": "a"}]}),
            "missing field `title`",
        ),
        (
            json!({"name": "w", "tasks": "nope"}),
            "invalid type: string \"nope\", expected a sequence",
        ),
        (
            json!({"name": "w", "tasks": [{"key": "a", "title": "A"}], "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"name": "w", "mode": "circular", "tasks": [{"key": "a", "title": "A"}]}),
            "unknown variant `circular`",
        ),
    ];
    for (arguments, expected) in cases {
        let message = h.call("workflow_create", arguments).await.err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    let list = h.call("workflow_status", json!({})).await.ok();
    assert_eq!(list.at("/workflows"), &json!([]), "nothing was written");
}

#[tokio::test]
async fn workflow_create_is_idempotent_with_a_key() {
    let h = harness().await;
    let args =
        json!({"name": "once", "idempotency_key": "k1", "tasks": [{"key": "a", "title": "A"}]});
    let first = h.call("workflow_create", args.clone()).await.ok();
    let second = h.call("workflow_create", args).await.ok();
    assert_eq!(first.at("/id"), second.at("/id"));
    assert_eq!(second.at("/replayed"), &json!(true));
    let taken = h
        .call(
            "workflow_create",
            json!({"name": "once", "tasks": [{"key": "a", "title": "A"}]}),
        )
        .await
        .err();
    assert!(
        taken.contains("a workflow named `once` already exists"),
        "{taken}"
    );
}

#[tokio::test]
async fn claim_heartbeat_complete_and_hand_results_to_dependents() {
    let h = harness().await;
    h.workflow("flow", &[("a", &[]), ("b", &["a"])]).await;
    let (task, token) = h.claim("agent-1").await;
    assert_eq!(task, "flow/a");
    let beat = h
        .call("task_update", json!({"task": task, "agent": "agent-1", "token": token, "action": "heartbeat", "lease_seconds": 600}))
        .await
        .ok();
    assert_eq!(beat.at("/task/state"), &json!("running"));
    let progress = h
        .call("task_update", json!({"task": task, "agent": "agent-1", "token": token, "action": "progress", "note": "half way"}))
        .await
        .ok();
    assert_eq!(progress.at("/task/state"), &json!("running"));
    let done = h
        .call("task_update", json!({"task": task, "agent": "agent-1", "token": token, "action": "complete", "result": "schema v2", "actual": 1.5}))
        .await
        .ok();
    assert_eq!(done.at("/task/state"), &json!("succeeded"));
    assert_eq!(done.at("/unblocked"), &json!(["flow/b"]));
    h.register(&["agent-2"]).await;
    let next = h
        .call(
            "task_claim",
            json!({"agent": "agent-2", "workflow": "flow"}),
        )
        .await
        .ok();
    assert_eq!(next.at("/task/task"), &json!("flow/b"));
    assert_eq!(
        next.at("/dependencies"),
        &json!([{"task": "flow/a", "state": "succeeded", "result": "schema v2"}])
    );
}

#[tokio::test]
async fn task_claim_with_nothing_ready_says_so() {
    let h = harness().await;
    h.register(&["idle"]).await;
    let reply = h.call("task_claim", json!({"agent": "idle"})).await.ok();
    assert_eq!(reply.at("/claimed"), &json!(false));
    assert_eq!(reply.at("/reason"), &json!("none_ready"));
    assert!(
        reply.text.starts_with("nothing claimed: no task is ready"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn task_claim_and_update_errors_are_specific() {
    let h = harness().await;
    h.workflow("errs", &[("a", &[]), ("b", &["a"])]).await;
    let (task, token) = h.claim("owner").await;
    h.register(&["x", "thief"]).await;
    let cases = [
        (
            json!({"agent": "x", "task": "errs/ghost"}),
            "task_claim",
            "unknown task `errs/ghost`",
        ),
        (
            json!({"agent": "x", "workflow": "nope"}),
            "task_claim",
            "unknown workflow `nope`",
        ),
        (
            json!({"agent": "x", "task": "errs/b"}),
            "task_claim",
            "task `errs/b` is pending",
        ),
        (
            json!({"agent": "x", "task": "no-slash"}),
            "task_claim",
            "`no-slash` is neither `workflow/key` nor a task id",
        ),
        (
            json!({"agent": "x", "lease_seconds": 0}),
            "task_claim",
            "invalid lease_seconds: 0 s is outside 1 to 86400 s",
        ),
        (
            json!({"agent": "bad agent"}),
            "task_claim",
            "invalid agent: agent name `bad agent` contains ` `, which is not allowed",
        ),
        (
            json!({"task": task, "agent": "thief", "token": token, "action": "complete"}),
            "task_update",
            "task `errs/a` is leased to `owner`, not to `thief`",
        ),
        (
            json!({"task": task, "agent": "owner", "token": token + 7, "action": "complete"}),
            "task_update",
            // The holder mistyped its token: it is told where the right one is, and not told
            // to give up a task it still holds.
            "was never issued for task `errs/a` (its current token is 1); send the token your \
             claim returned: task_get with your agent lists the tasks you hold and their tokens",
        ),
        (
            json!({"task": task, "agent": "owner", "token": token, "action": "progress"}),
            "task_update",
            "progress needs `note`",
        ),
        (
            json!({"task": task, "agent": "owner", "token": token, "action": "fail"}),
            "task_update",
            "fail needs `error`",
        ),
        (
            json!({"task": task, "agent": "owner", "token": "abc", "action": "complete"}),
            "task_update",
            "invalid type: string \"abc\"",
        ),
        (
            json!({"task": task, "agent": "owner", "token": -1, "action": "complete"}),
            "task_update",
            "invalid value: integer `-1`",
        ),
        (
            json!({"task": task, "agent": "owner", "token": token, "action": "complete", "actual": 1e9}),
            "task_update",
            "invalid actual: 1000000000 is outside 0 to 10000 points",
        ),
    ];
    for (arguments, tool, expected) in cases {
        let reply = h.call(tool, arguments).await;
        // A task not ready yet is no error: the claim says why it got nothing.
        let message = if reply.is_error {
            reply.text
        } else {
            reply.at("/detail").as_str().unwrap_or_default().to_owned()
        };
        assert!(
            message.contains(expected),
            "{tool}: {message:?} should contain {expected:?}"
        );
        assert!(
            !(expected.contains("never issued") && message.contains("do not report")),
            "{message:?} tells the holder to give up its task"
        );
    }
    let status = h
        .call("workflow_status", json!({"workflow": "errs"}))
        .await
        .ok();
    assert_eq!(
        status.at("/running/0/task"),
        &json!("errs/a"),
        "the rejected calls changed nothing"
    );
    assert_eq!(status.at("/running/0/agent"), &json!("owner"));
}

#[tokio::test]
async fn a_lease_that_expires_is_rejected_and_the_task_retried() {
    let h = harness().await;
    h.workflow("lease", &[("a", &[])]).await;
    h.register(&["gone", "other"]).await;
    let reply = h
        .call("task_claim", json!({"agent": "gone", "lease_seconds": 60}))
        .await
        .ok();
    let (task, token) = (
        reply.at("/task/task").clone(),
        reply.at("/token").as_u64().unwrap(),
    );
    h.clock.advance(chrono::Duration::seconds(61));
    let message = h
        .call(
            "task_update",
            json!({"task": task, "agent": "gone", "token": token, "action": "complete"}),
        )
        .await
        .err();
    assert!(message.contains("expired"), "{message}");
    let again = h.call("task_claim", json!({"agent": "other"})).await.ok();
    assert_eq!(again.at("/task/attempt"), &json!(2));
    let stale = h
        .call(
            "task_update",
            json!({"task": task, "agent": "gone", "token": token, "action": "complete"}),
        )
        .await
        .err();
    assert!(stale.contains("leased to `other`"), "{stale}");
}

#[tokio::test]
async fn fail_retries_with_backoff_then_fails_for_good() {
    let h = harness().await;
    h.call(
        "workflow_create",
        json!({"name": "flaky", "retry": {"initial_interval_ms": 1000}, "tasks": [{"key": "a", "title": "A", "max_attempts": 2}, {"key": "b", "title": "B", "depends_on": ["a"]}]}),
    )
    .await
    .ok();
    let (task, token) = h.claim("w").await;
    let first = h
        .call(
            "task_update",
            json!({"task": task, "agent": "w", "token": token, "action": "fail", "error": "boom"}),
        )
        .await
        .ok();
    assert_eq!(first.at("/task/state"), &json!("waiting_retry"));
    assert!(first.at("/task/next_attempt_at").is_string());
    h.clock.advance(chrono::Duration::seconds(2));
    let (task, token) = h.claim("w").await;
    let last = h
        .call("task_update", json!({"task": task, "agent": "w", "token": token, "action": "fail", "error": "boom again"}))
        .await
        .ok();
    assert_eq!(last.at("/task/state"), &json!("failed"));
    assert_eq!(last.at("/workflow_status"), &json!("failed"));
    let status = h
        .call("workflow_status", json!({"workflow": "flaky"}))
        .await
        .ok();
    assert_eq!(
        status.at("/workflow/counts"),
        &json!({"failed": 1, "upstream_failed": 1})
    );
}

#[tokio::test]
async fn release_gives_the_task_back() {
    let h = harness().await;
    h.workflow("rel", &[("a", &[])]).await;
    let (task, token) = h.claim("w").await;
    let reply = h
        .call(
            "task_update",
            json!({"task": task, "agent": "w", "token": token, "action": "release"}),
        )
        .await
        .ok();
    assert_eq!(reply.at("/task/state"), &json!("ready"));
}

#[tokio::test]
async fn workflow_execute_moves_the_workflow_and_rejects_illegal_actions() {
    let h = harness().await;
    h.call(
        "workflow_create",
        json!({"name": "ops", "start": false, "tasks": [{"key": "a", "title": "A"}]}),
    )
    .await
    .ok();
    let cases = [
        ("pause", Err("workflow `ops` is created: it cannot pause")),
        ("start", Ok("running")),
        ("pause", Ok("paused")),
        ("resume", Ok("running")),
        (
            "retry_failed",
            Err("has no failed, upstream-failed or fail-fast-cancelled tasks to retry"),
        ),
        ("cancel", Ok("cancelled")),
        (
            "resume",
            Err("workflow `ops` is cancelled: it cannot resume"),
        ),
    ];
    for (action, expected) in cases {
        let reply = h
            .call(
                "workflow_execute",
                json!({"workflow": "ops", "action": action}),
            )
            .await;
        match expected {
            Ok(status) => assert_eq!(reply.ok().at("/status"), &json!(status), "{action}"),
            Err(message) => {
                let text = reply.err();
                assert!(text.contains(message), "{action}: {text}");
            }
        }
    }
    let unknown = h
        .call(
            "workflow_execute",
            json!({"workflow": "ghost", "action": "start"}),
        )
        .await
        .err();
    assert!(unknown.starts_with("unknown workflow `ghost`"), "{unknown}");
}

#[tokio::test]
async fn task_dependency_adds_removes_lists_validates_and_names_cycles() {
    let h = harness().await;
    h.workflow("deps", &[("a", &[]), ("b", &["a"]), ("c", &["b"])])
        .await;
    let cycle = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "add", "task": "a", "depends_on": "c"}),
        )
        .await
        .err();
    assert!(
        cycle.contains("dependency cycle: a -> c -> b -> a"),
        "{cycle}"
    );
    let added = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "add", "task": "c", "depends_on": "a"}),
        )
        .await
        .ok();
    assert_eq!(added.at("/task/depends_on"), &json!(["deps/a", "deps/b"]));
    let removed = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "remove", "task": "c", "depends_on": "b"}),
        )
        .await
        .ok();
    assert_eq!(removed.at("/task/depends_on"), &json!(["deps/a"]));
    let list = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "list", "limit": 2}),
        )
        .await
        .ok();
    assert_eq!(
        list.at("/dependencies"),
        &json!([{"task": "deps/a", "depends_on": []}, {"task": "deps/b", "depends_on": ["deps/a"]}])
    );
    assert_eq!(list.at("/next_cursor"), &json!("2"));
    let rest = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "list", "cursor": "2"}),
        )
        .await
        .ok();
    assert_eq!(
        rest.at("/dependencies"),
        &json!([{"task": "deps/c", "depends_on": ["deps/a"]}])
    );
    let valid = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "validate"}),
        )
        .await
        .ok();
    assert_eq!(
        valid.at("/stages"),
        &json!([{"size": 1, "tasks": ["deps/a"]}, {"size": 2, "tasks": ["deps/b", "deps/c"]}])
    );
    let missing = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "add", "task": "a"}),
        )
        .await
        .err();
    assert!(
        missing.contains("add needs `task` and `depends_on`"),
        "{missing}"
    );
    let bad_cursor = h
        .call(
            "task_dependency",
            json!({"workflow": "deps", "action": "list", "cursor": "x"}),
        )
        .await
        .err();
    assert!(bad_cursor.contains("invalid cursor"), "{bad_cursor}");
}

#[tokio::test]
async fn workflow_status_reports_one_workflow_lists_all_and_draws_mermaid() {
    let h = harness().await;
    h.workflow("one", &[("a", &[]), ("b", &["a"])]).await;
    h.workflow("two", &[("x", &[])]).await;
    let (task, _) = h.claim("w").await;
    assert_eq!(task, "one/a");
    let all = h.call("workflow_status", json!({"limit": 1})).await.ok();
    assert_eq!(all.at("/workflows/0/name"), &json!("two"), "newest first");
    assert_eq!(all.at("/next_cursor"), &json!("1"));
    let one = h
        .call(
            "workflow_status",
            json!({"workflow": "one", "diagram": true, "detail": "full"}),
        )
        .await
        .ok();
    assert_eq!(one.at("/progress"), &json!("moving"));
    assert_eq!(one.at("/running/0/agent"), &json!("w"));
    assert_eq!(one.at("/blocked/0/reason"), &json!("waiting on one/a"));
    assert_eq!(
        one.at("/remaining_critical_path/tasks"),
        &json!(["one/a", "one/b"])
    );
    assert_eq!(one.at("/tasks/1/depends_on"), &json!(["one/a"]));
    let mermaid = one.at("/mermaid").as_str().unwrap();
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(
        mermaid.contains("t0[\"a: do a\"]:::running") && mermaid.contains("t0 --> t1"),
        "{mermaid}"
    );
    assert!(
        one.text.starts_with(
            "one: running, 0 of 2 tasks done (0 of 2 points), 0 ready, 1 running, 0 failed"
        ),
        "{}",
        one.text
    );
    let unknown = h
        .call("workflow_status", json!({"workflow": "three"}))
        .await
        .err();
    assert!(unknown.starts_with("unknown workflow `three`"));
    let bad_limit = h.call("workflow_status", json!({"limit": 0})).await.err();
    assert!(
        bad_limit.contains("invalid limit: 0 is outside 1 to 500"),
        "{bad_limit}"
    );
}

#[tokio::test]
async fn agent_profile_upserts_gets_lists_and_sets_status() {
    let h = harness().await;
    let saved = h
        .call("agent_profile", json!({"action": "upsert", "name": "rusty", "capabilities": {"rust": 4}, "max_concurrent": 2}))
        .await
        .ok();
    assert_eq!(saved.at("/agent/capabilities"), &json!({"rust": 4}));
    assert_eq!(saved.at("/agent/status"), &json!("active"));
    let got = h
        .call("agent_profile", json!({"action": "get", "name": "rusty"}))
        .await
        .ok();
    assert_eq!(got.at("/agent/max_concurrent"), &json!(2));
    h.call("agent_profile", json!({"action": "upsert", "name": "web"}))
        .await
        .ok();
    let list = h
        .call("agent_profile", json!({"action": "list"}))
        .await
        .ok();
    assert_eq!(list.at("/agents/1/name"), &json!("web"));
    let paused = h
        .call(
            "agent_profile",
            json!({"action": "set_status", "name": "rusty", "status": "paused"}),
        )
        .await
        .ok();
    assert_eq!(paused.at("/agent/status"), &json!("paused"));
    let cases = [
        (
            json!({"action": "get", "name": "nobody"}),
            "unknown agent `nobody`",
        ),
        (
            json!({"action": "set_status", "name": "nobody", "status": "active"}),
            "unknown agent `nobody`",
        ),
        (
            json!({"action": "upsert", "name": "x", "capabilities": {"rust": 9}}),
            "skill `rust` has level 9; levels go from 1 to 5",
        ),
        (
            json!({"action": "upsert", "name": "x", "max_concurrent": 0}),
            "invalid max_concurrent: 0 is outside 1 to 1000",
        ),
        (
            json!({"action": "upsert", "name": "x", "points_per_day": -1}),
            "invalid points_per_day: -1 is outside 0 to 1000",
        ),
        (json!({"action": "get"}), "get needs `name`"),
        (
            json!({"action": "set_status", "name": "rusty"}),
            "set_status needs `status`",
        ),
        (
            json!({"action": "get", "name": "rusty", "max_concurrent": 4}),
            "`max_concurrent` does not apply to get; leave it out",
        ),
        (
            json!({"action": "get", "name": "rsuty"}),
            "unknown agent `rsuty`; did you mean `rusty`?",
        ),
        (
            json!({"action": "dance", "name": "rusty"}),
            "unknown variant `dance`",
        ),
    ];
    for (arguments, expected) in cases {
        let message = h.call("agent_profile", arguments).await.err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    // A paused agent gets no work; claims respect skills of profiled agents.
    h.workflow("skills", &[("plain", &[])]).await;
    let paused_claim = h.call("task_claim", json!({"agent": "rusty"})).await.ok();
    assert_eq!(paused_claim.at("/claimed"), &json!(false));
    assert_eq!(paused_claim.at("/reason"), &json!("agent_inactive"));
    assert!(
        paused_claim.text.contains("the agent is paused"),
        "{}",
        paused_claim.text
    );
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error_and_the_server_keeps_serving() {
    let h = harness().await;
    let arguments = serde_json::Map::new();
    let error = h
        .client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("no_such_tool").with_arguments(arguments),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("tool not found"), "{error}");
    h.call("workflow_status", json!({})).await.ok();
    drop(h.store);
}

/// The tool list is the contract with every client: a schema changes only on purpose. Run with
/// `UPDATE_SNAPSHOTS=1` to accept a change, and review the diff of `tools_list.json`.
#[tokio::test]
async fn tools_list_matches_the_snapshot_and_stays_small() {
    let h = harness().await;
    let tools = h.client.list_all_tools().await.unwrap();
    let listed = serde_json::to_value(&tools).unwrap();
    let compact = serde_json::to_string(&listed).unwrap();
    assert!(
        compact.len() <= 12 * 1024,
        "tools/list is {} bytes; the budget is 12 KB",
        compact.len()
    );
    let pretty = serde_json::to_string_pretty(&listed).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tools_list.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == pretty,
        "tools/list changed; if on purpose, rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
    // Every tool has an output schema and truthful annotations.
    for tool in &tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        let annotations = tool.annotations.as_ref().unwrap();
        let read_only = annotations.read_only_hint == Some(true);
        let reads = [
            "workflow_status",
            "agent_performance",
            "sprint_analytics",
            "task_get",
        ];
        assert_eq!(
            read_only,
            reads.contains(&&*tool.name),
            "{} read_only_hint",
            tool.name
        );
        assert_eq!(annotations.open_world_hint, Some(false), "{}", tool.name);
    }
}

/// A host program can add a tool of its own to the server's public router and serve both.
#[tokio::test]
async fn a_host_can_add_its_own_tool_to_the_router() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use orchestration_mcp::OrchestrationServer;
    use rmcp::ServiceExt;
    use rmcp::handler::server::router::tool::ToolRoute;
    use rmcp::handler::server::tool::ToolCallContext;
    use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, Tool};

    type Reply<'a> =
        Pin<Box<dyn Future<Output = Result<CallToolResponse, rmcp::ErrorData>> + Send + 'a>>;
    let store = Arc::new(orchestration_core::Store::open_in_memory().unwrap());
    let mut server = OrchestrationServer::new(store);
    let schema = serde_json::json!({"type": "object", "properties": {}});
    let serde_json::Value::Object(schema) = schema else {
        unreachable!()
    };
    let tool = Tool::new("project_info", "The host's own tool", Arc::new(schema));
    server.tool_router.add_route(ToolRoute::new_dyn(
        tool,
        |context: ToolCallContext<'_, OrchestrationServer>| -> Reply<'_> {
            let workflows = context
                .service
                .store()
                .workflows()
                .map(|w| w.len())
                .unwrap_or(0);
            Box::pin(async move {
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "host: demo; workflows: {workflows}"
                ))])
                .into())
            })
        },
    ));
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(service) = server.serve(server_io).await {
            let _ = service.waiting().await;
        }
    });
    let client = ().serve(client_io).await.unwrap();
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        names.contains(&"project_info".to_owned()) && names.contains(&"workflow_create".to_owned()),
        "{names:?}"
    );
    let own = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("project_info")
                .with_arguments(serde_json::Map::new()),
        )
        .await
        .unwrap();
    assert_eq!(
        own.content[0].as_text().unwrap().text,
        "host: demo; workflows: 0"
    );
    let ours = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("workflow_status")
                .with_arguments(serde_json::Map::new()),
        )
        .await
        .unwrap();
    assert_eq!(ours.is_error, Some(false));
}

#[tokio::test]
async fn lists_are_short_by_default_and_complete_with_detail_full() {
    let h = harness().await;
    h.workflow("listed", &[("a", &[]), ("b", &["a"])]).await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "ana", "capabilities": {"rust": 3}}),
    )
    .await
    .ok();

    let agents = h
        .call("agent_profile", json!({"action": "list"}))
        .await
        .ok();
    assert_eq!(
        agents.at("/agents/0"),
        &json!({"name": "ana", "status": "active", "max_concurrent": 3})
    );
    let agents = h
        .call("agent_profile", json!({"action": "list", "detail": "full"}))
        .await
        .ok();
    assert_eq!(agents.at("/agents/0/capabilities"), &json!({"rust": 3}));

    let workflows = h.call("workflow_status", json!({})).await.ok();
    assert!(workflows.at("/workflows/0/counts").is_null());
    let workflows = h
        .call("workflow_status", json!({"detail": "full"}))
        .await
        .ok();
    assert_eq!(
        workflows.at("/workflows/0/counts"),
        &json!({"pending": 1, "ready": 1})
    );

    let deps = h
        .call(
            "task_dependency",
            json!({"workflow": "listed", "action": "list"}),
        )
        .await
        .ok();
    assert!(deps.at("/dependencies/1/state").is_null());
    let deps = h
        .call(
            "task_dependency",
            json!({"workflow": "listed", "action": "list", "detail": "full"}),
        )
        .await
        .ok();
    assert_eq!(deps.at("/dependencies/1/state"), &json!("pending"));
}

#[tokio::test]
async fn agent_delegation_ranks_explains_assigns_and_batches() {
    let h = harness().await;
    for (name, skills, max) in [
        ("ana", json!({"rust": 5}), 2),
        ("bo", json!({"rust": 3}), 1),
        ("cy", json!({"css": 4}), 1),
    ] {
        h.call("agent_profile", json!({"action": "upsert", "name": name, "capabilities": skills, "max_concurrent": max}))
            .await
            .ok();
    }
    h.call(
        "workflow_create",
        json!({"name": "team", "tasks": [
            {"key": "api", "title": "API", "skills": {"rust": 3}},
            {"key": "ui", "title": "UI", "skills": {"css": 3}},
            {"key": "infra", "title": "Infra", "skills": {"rust": 4}},
            {"key": "ml", "title": "Model", "skills": {"python": 2}}
        ]}),
    )
    .await
    .ok();
    let ranking = h
        .call("agent_delegation", json!({"task": "team/api"}))
        .await
        .ok();
    assert_eq!(ranking.at("/ranked/0/agent"), &json!("ana"));
    assert_eq!(ranking.at("/ranked/0/fit"), &json!(1.0));
    assert_eq!(ranking.at("/ranked/1/agent"), &json!("bo"));
    assert_eq!(
        ranking.at("/rejected/0"),
        &json!({"name": "cy", "reason": "lacks skill `rust` (level 3 needed)"})
    );
    assert_eq!(ranking.at("/assigned"), &json!([]));
    assert!(
        ranking.text.starts_with("best for `team/api`: `ana`"),
        "{}",
        ranking.text
    );

    let batch = h
        .call(
            "agent_delegation",
            json!({"workflow": "team", "assign": true}),
        )
        .await
        .ok();
    let assigned: Vec<(String, String)> = batch.structured["assigned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["task"].as_str().unwrap().to_owned(),
                a["agent"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(assigned.len(), 3, "{}", batch.text);
    assert!(assigned.contains(&("team/ui".into(), "cy".into())));
    assert!(
        assigned.contains(&("team/infra".into(), "ana".into())),
        "only ana has rust 4"
    );
    assert_eq!(
        batch.at("/rejected"),
        &json!([{"name": "team/ml", "reason": "no active agent has the skills: python>=2"}])
    );
    // Delegated tasks are what the agents' next claims start.
    let claim = h.call("task_claim", json!({"agent": "cy"})).await.ok();
    assert_eq!(claim.at("/task/task"), &json!("team/ui"));

    let cases = [
        (json!({}), "give either `task` or `workflow`"),
        (
            json!({"task": "team/api", "workflow": "team"}),
            "give either `task` or `workflow`",
        ),
        (json!({"task": "team/ghost"}), "unknown task `team/ghost`"),
        (
            json!({"task": "team/ui", "assign": true}),
            "task `team/ui` is running: it cannot be assigned",
        ),
        (
            json!({"task": "team/ml", "weights": {"fit": -1}}),
            "invalid weights: weights must be finite and not negative",
        ),
        (json!({"workflow": "nope"}), "unknown workflow `nope`"),
    ];
    for (arguments, expected) in cases {
        let message = h.call("agent_delegation", arguments).await.err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[tokio::test]
async fn agent_workload_reports_loads_and_rebalances_on_request() {
    let h = harness().await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "old", "capabilities": {"go": 3}, "max_concurrent": 2}),
    )
    .await
    .ok();
    h.call(
        "workflow_create",
        json!({"name": "load", "tasks": [{"key": "a", "title": "A", "skills": {"go": 2}, "estimate": 3}, {"key": "b", "title": "B", "skills": {"go": 2}}]}),
    )
    .await
    .ok();
    h.call(
        "agent_delegation",
        json!({"workflow": "load", "assign": true}),
    )
    .await
    .ok();
    h.call(
        "agent_profile",
        json!({"action": "set_status", "name": "old", "status": "offline"}),
    )
    .await
    .ok();
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "new", "capabilities": {"go": 2}, "max_concurrent": 5}),
    )
    .await
    .ok();
    let report = h
        .call("agent_workload", json!({"detail": "full"}))
        .await
        .ok();
    assert_eq!(report.at("/overloaded"), &json!(["old"]));
    assert_eq!(report.at("/idle"), &json!(["new"]));
    assert_eq!(report.at("/agents/1/agent"), &json!("old"));
    assert_eq!(report.at("/agents/1/points_in_flight"), &json!(4.0));
    assert_eq!(report.at("/agents/1/tasks"), &json!(["load/a", "load/b"]));
    assert_eq!(report.structured["proposals"].as_array().unwrap().len(), 2);
    assert_eq!(
        report.at("/moved"),
        &Value::Null,
        "a proposal moves nothing"
    );
    let applied = h.call("agent_workload", json!({"apply": true})).await.ok();
    assert_eq!(applied.structured["moved"].as_array().unwrap().len(), 2);
    // The answer shows the load after the moves, as a fresh look confirms.
    let after = h.call("agent_workload", json!({})).await.ok();
    for reply in [&applied, &after] {
        assert_eq!(reply.at("/overloaded"), &json!([]));
        assert_eq!(reply.at("/proposals"), &json!([]));
        assert_eq!(
            reply.at("/agents/0"),
            &json!({"agent": "new", "status": "active", "active": 2, "points_in_flight": 4.0, "max_concurrent": 5, "utilisation": 0.4, "queued": 2})
        );
    }
    assert!(
        applied
            .text
            .contains("moved 2 tasks, load shown after the moves"),
        "{}",
        applied.text
    );
    let bad = h
        .call("agent_workload", json!({"weights": {"speed": "fast"}}))
        .await
        .err();
    assert!(bad.contains("invalid type: string \"fast\""), "{bad}");
}

#[tokio::test]
async fn agent_performance_ranks_agents_over_a_window() {
    let h = harness().await;
    h.call(
        "workflow_create",
        json!({"name": "perf", "mode": "parallel", "tasks": [
            {"key": "a", "title": "A", "estimate": 2, "skills": {"rust": 1}},
            {"key": "b", "title": "B"}
        ]}),
    )
    .await
    .ok();
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "ana", "capabilities": {"rust": 5}}),
    )
    .await
    .ok();
    let claim = h
        .call("task_claim", json!({"agent": "ana", "lease_seconds": 7200}))
        .await
        .ok();
    let (task, token) = (claim.at("/task/task").clone(), claim.at("/token").clone());
    h.clock.advance(chrono::Duration::hours(1));
    h.call(
        "task_update",
        json!({"task": task, "agent": "ana", "token": token, "action": "complete", "actual": 2}),
    )
    .await
    .ok();
    let (task, token) = h.claim("bo").await;
    h.call("task_update", json!({"task": task, "agent": "bo", "token": token, "action": "fail", "error": "x", "retryable": false}))
        .await
        .ok();
    let report = h
        .call("agent_performance", json!({"detail": "full"}))
        .await
        .ok();
    assert_eq!(report.at("/agents/0/agent"), &json!("ana"));
    assert_eq!(report.at("/agents/0/completed"), &json!(1));
    // Percentiles come from sketches within 1% of the exact value, shown to two decimals.
    let p50 = report
        .at("/agents/0/cycle_time_p50_hours")
        .as_f64()
        .unwrap();
    assert!((p50 - 1.0).abs() <= 0.015, "{p50}");
    assert_eq!(report.at("/agents/0/estimate_bias"), &json!(0.0));
    assert_eq!(report.at("/agents/0/completed_delta"), &json!(1));
    assert_eq!(report.at("/agents/0/by_skill/rust/completed"), &json!(1));
    assert_eq!(report.at("/agents/1/agent"), &json!("bo"));
    assert_eq!(report.at("/agents/1/success_rate"), &json!(0.0));
    let only = h
        .call("agent_performance", json!({"agent": "bo"}))
        .await
        .ok();
    assert_eq!(only.structured["agents"].as_array().unwrap().len(), 1);
    assert!(only.at("/agents/0/by_skill").is_null());
    let cases = [
        (json!({"days": 0}), "invalid days: 0 is outside 1 to 3650"),
        (
            json!({"to": "yesterday"}),
            "`yesterday` is not an RFC 3339 time",
        ),
    ];
    let cases = cases.into_iter().chain([(
        json!({"agent": "boo"}),
        "unknown agent `boo`; did you mean `bo`?",
    )]);
    for (arguments, expected) in cases {
        let message = h.call("agent_performance", arguments).await.err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[tokio::test]
async fn agent_collaboration_hands_off_messages_locks_and_assembles_teams() {
    let h = harness().await;
    for (name, skills) in [
        ("ana", json!({"rust": 4})),
        ("bo", json!({"rust": 3, "css": 3})),
        ("cy", json!({"css": 5})),
    ] {
        h.call(
            "agent_profile",
            json!({"action": "upsert", "name": name, "capabilities": skills}),
        )
        .await
        .ok();
    }
    h.call(
        "workflow_create",
        json!({"name": "collab", "tasks": [
            {"key": "api", "title": "API", "skills": {"rust": 3}},
            {"key": "ui", "title": "UI", "skills": {"css": 3}}
        ]}),
    )
    .await
    .ok();
    let claim = h
        .call("task_claim", json!({"agent": "ana", "task": "collab/api"}))
        .await
        .ok();
    let token = claim.at("/token").clone();
    let handoff = h
        .call("agent_collaboration", json!({"action": "handoff", "agent": "ana", "task": "collab/api", "token": token, "to": "bo", "note": "spec in api.md"}))
        .await
        .ok();
    assert_eq!(handoff.at("/task/agent"), &json!("bo"));
    assert_eq!(handoff.at("/task/state"), &json!("assigned"));
    let inbox = h
        .call(
            "agent_collaboration",
            json!({"action": "inbox", "agent": "bo"}),
        )
        .await
        .ok();
    assert_eq!(
        inbox.at("/messages/0/body"),
        &json!("handoff of `collab/api` from `ana`: spec in api.md")
    );
    let id = inbox.at("/messages/0/id").clone();
    h.call(
        "agent_collaboration",
        json!({"action": "ack", "agent": "bo", "ids": [id]}),
    )
    .await
    .ok();
    let sent = h
        .call(
            "agent_collaboration",
            json!({"action": "message", "agent": "cy", "broadcast": true, "note": "lunch?"}),
        )
        .await
        .ok();
    assert_eq!(sent.at("/sent"), &json!(2));
    let taken = h
        .call(
            "agent_collaboration",
            json!({"action": "inbox", "agent": "bo", "ack": true}),
        )
        .await
        .ok();
    assert_eq!(taken.at("/messages/0/body"), &json!("lunch?"));
    let empty = h
        .call(
            "agent_collaboration",
            json!({"action": "inbox", "agent": "bo"}),
        )
        .await
        .ok();
    assert_eq!(empty.at("/messages"), &json!([]));

    let locked = h
        .call(
            "agent_collaboration",
            json!({"action": "lock", "agent": "ana", "resource": "src/", "prefix": true}),
        )
        .await
        .ok();
    assert_eq!(locked.at("/acquired"), &json!(true));
    let blocked = h
        .call(
            "agent_collaboration",
            json!({"action": "lock", "agent": "bo", "resource": "src/lib.rs", "mode": "shared"}),
        )
        .await
        .ok();
    assert_eq!(blocked.at("/acquired"), &json!(false));
    assert_eq!(blocked.at("/locks/0/owner"), &json!("ana"));
    h.call(
        "agent_collaboration",
        json!({"action": "lock", "agent": "bo", "resource": "docs/"}),
    )
    .await
    .ok();
    let deadlock = h
        .call(
            "agent_collaboration",
            json!({"action": "lock", "agent": "ana", "resource": "docs/"}),
        )
        .await
        .err();
    assert!(
        deadlock.contains("would deadlock: ana -> bo -> ana"),
        "{deadlock}"
    );
    let locks = h
        .call("agent_collaboration", json!({"action": "locks"}))
        .await
        .ok();
    assert_eq!(locks.structured["locks"].as_array().unwrap().len(), 2);
    assert_eq!(locks.at("/waits/0/waiter"), &json!("bo"));
    let theft = h
        .call(
            "agent_collaboration",
            json!({"action": "unlock", "agent": "bo", "resource": "src/", "prefix": true}),
        )
        .await
        .err();
    assert!(theft.contains("only its owner can release it"), "{theft}");
    h.call(
        "agent_collaboration",
        json!({"action": "unlock", "agent": "ana", "resource": "src/", "prefix": true}),
    )
    .await
    .ok();

    let team = h
        .call(
            "agent_collaboration",
            json!({"action": "team", "workflow": "collab"}),
        )
        .await
        .ok();
    // bo alone has both skills and room for both tasks.
    assert_eq!(team.at("/team"), &json!(["bo"]), "{}", team.text);

    let cases = [
        (
            json!({"action": "handoff", "agent": "bo"}),
            "handoff needs `task`",
        ),
        (
            json!({"action": "message", "agent": "ana", "note": "x"}),
            "give exactly one of `to`, `workflow`, `broadcast: true`",
        ),
        (
            json!({"action": "message", "agent": "ana", "to": "ghost", "note": "x"}),
            "unknown agent `ghost`",
        ),
        (
            json!({"action": "ack", "agent": "cy", "ids": [99999]}),
            "message 99999 is not in `cy`'s inbox",
        ),
        (
            json!({"action": "lock", "agent": "ana"}),
            "lock needs `resource`",
        ),
        (
            json!({"action": "lock", "agent": "ana", "resource": "x", "ttl_seconds": 0}),
            "invalid ttl_seconds",
        ),
        (json!({"action": "team"}), "team needs `workflow`"),
        (
            json!({"action": "handoff", "agent": "bo", "task": "collab/api", "token": 1, "to": "cy"}),
            "task `collab/api` is assigned: it cannot be handed off",
        ),
    ];
    for (arguments, expected) in cases {
        let message = h.call("agent_collaboration", arguments).await.err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[tokio::test]
async fn a_gate_waits_for_approval_through_workflow_execute() {
    let h = harness().await;
    h.call(
        "workflow_create",
        json!({"name": "rel", "tasks": [
            {"key": "build", "title": "Build"},
            {"key": "review", "title": "Review", "gate": true, "depends_on": ["build"]},
            {"key": "ship", "title": "Ship", "depends_on": ["review"]}
        ]}),
    )
    .await
    .ok();
    let (task, token) = h.claim("agent-1").await;
    h.call(
        "task_update",
        json!({"task": task, "agent": "agent-1", "token": token, "action": "complete"}),
    )
    .await
    .ok();
    // The agent finds no work: the gate waits for a person.
    let claim = h.call("task_claim", json!({"agent": "agent-1"})).await.ok();
    assert_eq!(claim.at("/claimed"), &json!(false));
    let status = h
        .call("workflow_status", json!({"workflow": "rel"}))
        .await
        .ok();
    assert_eq!(status.at("/progress"), &json!("stalled"));
    let missing = h
        .call(
            "workflow_execute",
            json!({"workflow": "rel", "action": "approve"}),
        )
        .await
        .err();
    assert!(missing.contains("approve needs `task`"), "{missing}");
    let stray = h
        .call(
            "workflow_execute",
            json!({"workflow": "rel", "action": "pause", "task": "review"}),
        )
        .await
        .err();
    assert!(stray.contains("`task` does not apply to pause"), "{stray}");
    let approved = h
        .call(
            "workflow_execute",
            json!({"workflow": "rel", "action": "approve", "task": "review", "note": "ok"}),
        )
        .await
        .ok();
    assert_eq!(approved.at("/ready"), &json!(["rel/ship"]));
    assert_eq!(approved.at("/status"), &json!("running"));
    let again = h
        .call(
            "workflow_execute",
            json!({"workflow": "rel", "action": "reject", "task": "review"}),
        )
        .await
        .err();
    assert!(again.contains("succeeded"), "{again}");
    let (next, _) = h.claim("agent-1").await;
    assert_eq!(next, "rel/ship");
}
