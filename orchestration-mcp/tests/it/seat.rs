//! The agent's seat: what an agent receives must be bounded, consistent and truthful. Each
//! test here is a regression test of a bug seen when agents used the server, through a real
//! MCP client, and the size tests hold every tool to the response budget, whatever the data.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{Harness, Reply, harness};

/// The budget of every tool result, and what a typical one stays under.
const MAX: usize = orchestration_mcp::MAX_RESULT_BYTES;
const TYPICAL: usize = 4 * 1024;

/// Completes `task` for `agent`, claiming it by name.
async fn finish(h: &Harness, agent: &str, task: &str, result: &str) -> Reply {
    let claim = h
        .call("task_claim", json!({"agent": agent, "task": task}))
        .await
        .ok();
    assert_eq!(claim.at("/claimed"), &json!(true), "{}", claim.text);
    let token = claim.at("/token").as_u64().unwrap();
    h.call(
        "task_update",
        json!({"task": task, "agent": agent, "token": token, "action": "complete", "result": result}),
    )
    .await
    .ok()
}

/// Bug 1: a task depending on 60 tasks with 20 KB results each made a 2.37 MB claim. The
/// claim now shares a budget between the results, keeps the small ones whole, says which were
/// cut, and `task_get` reads any one whole, in parts.
#[tokio::test]
async fn a_claim_cuts_large_dependency_results_to_its_budget_and_task_get_reads_them_whole() {
    let h = harness().await;
    h.register(&["ana"]).await;
    let mut tasks: Vec<Value> = (0..60)
        .map(|i| json!({"key": format!("d{i}"), "title": "dependency"}))
        .collect();
    let deps: Vec<String> = (0..60).map(|i| format!("d{i}")).collect();
    tasks.push(json!({"key": "join", "title": "join", "depends_on": deps}));
    h.call("workflow_create", json!({"name": "wide", "tasks": tasks}))
        .await
        .ok();
    let big: String = "result line of twenty bytes\n".repeat(750);
    for i in 0..60 {
        let result = if i == 0 {
            "small".to_owned()
        } else {
            big.clone()
        };
        finish(&h, "ana", &format!("wide/d{i}"), &result).await;
    }
    for budget in [None, Some(16_000), Some(0)] {
        let mut arguments = json!({"agent": "ana", "task": "wide/join"});
        if let Some(budget) = budget {
            arguments["max_result_bytes"] = json!(budget);
        }
        let claim = h.call("task_claim", arguments).await.ok();
        assert!(claim.bytes <= MAX, "a claim of {} bytes", claim.bytes);
        let dependencies = claim.structured["dependencies"].as_array().unwrap();
        assert_eq!(dependencies.len(), 60);
        let results: usize = dependencies
            .iter()
            .map(|d| d["result"].as_str().unwrap_or_default().len())
            .sum();
        assert!(
            results <= budget.unwrap_or(8_000) as usize + 60 * 3,
            "{results} bytes of results"
        );
        if budget != Some(0) {
            assert_eq!(dependencies[0]["result"], json!("small"), "kept whole");
            assert!(dependencies[0].get("result_bytes").is_none());
        }
        assert_eq!(dependencies[1]["result_bytes"], json!(big.len()));
        let cut = if budget == Some(0) { 60 } else { 59 };
        assert!(
            claim
                .text
                .contains(&format!("{cut} dependency results cut to fit")),
            "{}",
            claim.text
        );
        // Give it back for the next budget.
        let token = claim.at("/token").as_u64().unwrap();
        h.call(
            "task_update",
            json!({"task": "wide/join", "agent": "ana", "token": token, "action": "release"}),
        )
        .await
        .ok();
    }
    // Any one result whole, in parts that each fit the budget.
    let mut whole = String::new();
    let mut offset = 0;
    loop {
        let part = h
            .call(
                "task_get",
                json!({"task": "wide/d7", "part": "result", "offset": offset}),
            )
            .await
            .ok();
        assert!(part.bytes <= MAX);
        whole.push_str(part.at("/text").as_str().unwrap().trim_end_matches('…'));
        match part.at("/next_offset").as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(whole, big);
    let over = h
        .call(
            "task_claim",
            json!({"agent": "ana", "task": "wide/join", "max_result_bytes": 20000}),
        )
        .await
        .err();
    assert!(over.contains("max_result_bytes"), "{over}");
}

/// Bug 3: `anna`, a typo of `ana`, claimed work, and unknown names locked and messaged. Only
/// registered agents act now, the error offers the closest names, and nothing is written.
#[tokio::test]
async fn unregistered_agents_are_refused_with_the_closest_names_and_nothing_is_written() {
    let h = harness().await;
    h.register(&["ana", "bo"]).await;
    h.workflow("w", &[("a", &[])]).await;
    let events = h.store.events_since(0, 100_000).unwrap().len();
    let cases = [
        ("task_claim", json!({"agent": "anna"})),
        (
            "agent_collaboration",
            json!({"action": "lock", "agent": "anna", "resource": "src/lib.rs"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "message", "agent": "anna", "to": "bo", "note": "hi"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "message", "agent": "bo", "to": "anna", "note": "hi"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "anna"}),
        ),
        ("task_get", json!({"agent": "anna"})),
        ("agent_performance", json!({"agent": "anna"})),
    ];
    for (tool, arguments) in cases {
        let error = h.call(tool, arguments).await.err();
        assert!(
            error.starts_with("unknown agent `anna`; did you mean `ana`?"),
            "{tool}: {error}"
        );
        assert!(error.contains("agent_profile action=upsert"), "{error}");
    }
    assert_eq!(
        h.store.events_since(0, 100_000).unwrap().len(),
        events,
        "nothing was written"
    );
    let list = h
        .call("agent_profile", json!({"action": "list"}))
        .await
        .ok();
    assert_eq!(list.structured["agents"].as_array().unwrap().len(), 2);
}

/// Bug 6: `task_dependency` took only bare keys and read `w/key` as a key with a slash.
#[tokio::test]
async fn task_dependency_takes_workflow_key_refs_and_refuses_another_workflows() {
    let h = harness().await;
    h.workflow("checkout-v2", &[("build", &[]), ("release", &[])])
        .await;
    h.workflow("other", &[("x", &[])]).await;
    let added = h
        .call(
            "task_dependency",
            json!({"workflow": "checkout-v2", "action": "add",
                   "task": "checkout-v2/release", "depends_on": "checkout-v2/build"}),
        )
        .await
        .ok();
    assert_eq!(added.at("/task/depends_on"), &json!(["checkout-v2/build"]));
    assert_eq!(added.at("/task/task"), &json!("checkout-v2/release"));
    let mixed = h
        .call(
            "task_dependency",
            json!({"workflow": "checkout-v2", "action": "remove",
                   "task": "release", "depends_on": "checkout-v2/build"}),
        )
        .await
        .ok();
    assert_eq!(
        mixed.at("/task/depends_on"),
        &Value::Null,
        "no dependency left"
    );
    let foreign = h
        .call(
            "task_dependency",
            json!({"workflow": "checkout-v2", "action": "add",
                   "task": "other/x", "depends_on": "build"}),
        )
        .await
        .err();
    assert!(
        foreign.contains("`other/x` is a task of workflow `other`, not of `checkout-v2`"),
        "{foreign}"
    );
}

/// Bug 7: errors named the wrong thing. Each now names the argument or state at fault; a
/// paused workflow and a full WIP limit are reasons to come back, not errors.
#[tokio::test]
async fn errors_and_idle_claims_name_what_is_really_wrong() {
    let h = harness().await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "solo", "max_concurrent": 1}),
    )
    .await
    .ok();
    h.workflow("w", &[("a", &[]), ("b", &[])]).await;
    let bad_agent = h
        .call("task_claim", json!({"agent": "bad agent"}))
        .await
        .err();
    assert!(
        bad_agent.starts_with("invalid agent: agent name `bad agent` contains ` `"),
        "{bad_agent}"
    );
    assert!(!bad_agent.contains("workflow spec"), "{bad_agent}");
    let bad_skill = h
        .call(
            "agent_profile",
            json!({"action": "upsert", "name": "x", "capabilities": {"c++": 3}}),
        )
        .await
        .err();
    assert!(
        bad_skill.starts_with("invalid capabilities: skill name `c++` contains `+`"),
        "{bad_skill}"
    );
    assert!(!bad_skill.contains("workflow_create"), "{bad_skill}");

    let (_, _) = h.claim("solo").await;
    let full = h.call("task_claim", json!({"agent": "solo"})).await.ok();
    assert_eq!(full.at("/claimed"), &json!(false));
    assert_eq!(full.at("/reason"), &json!("at_wip_limit"));
    assert_eq!(
        full.at("/detail"),
        &json!("the agent holds 1 task, its WIP limit of 1; complete or release one first")
    );
    assert!(!full.text.contains("`any`"), "{}", full.text);

    h.call(
        "workflow_execute",
        json!({"workflow": "w", "action": "pause"}),
    )
    .await
    .ok();
    h.register(&["other"]).await;
    let paused = h
        .call("task_claim", json!({"agent": "other", "workflow": "w"}))
        .await
        .ok();
    assert_eq!(paused.at("/reason"), &json!("workflow_not_running"));
    assert!(
        paused.text.contains("workflow `w` is paused, not running"),
        "{}",
        paused.text
    );

    h.workflow("done", &[("only", &[])]).await;
    finish(&h, "other", "done/only", "ok").await;
    let late = h
        .call(
            "agent_delegation",
            json!({"task": "done/only", "assign": true}),
        )
        .await
        .err();
    assert!(
        late.starts_with("workflow `done` is succeeded, not running: its tasks cannot be assigned"),
        "{late}"
    );
}

/// Bug 8: a self-handoff revoked the caller's own lease, and a message to oneself reached
/// nobody in silence.
#[tokio::test]
async fn an_agent_cannot_hand_off_to_itself_or_message_itself() {
    let h = harness().await;
    h.workflow("w", &[("a", &[])]).await;
    let (task, token) = h.claim("ana").await;
    let handoff = h
        .call(
            "agent_collaboration",
            json!({"action": "handoff", "agent": "ana", "to": "ana", "task": task,
                   "token": token, "note": "over to me"}),
        )
        .await
        .err();
    assert!(
        handoff.contains("`ana` cannot hand a task to itself"),
        "{handoff}"
    );
    // The lease is intact: the token still works.
    h.call(
        "task_update",
        json!({"task": task, "agent": "ana", "token": token, "action": "heartbeat"}),
    )
    .await
    .ok();
    let message = h
        .call(
            "agent_collaboration",
            json!({"action": "message", "agent": "ana", "to": "ana", "note": "note to self"}),
        )
        .await
        .err();
    assert!(
        message.contains("`ana` cannot send a message to itself"),
        "{message}"
    );
    // A workflow message that reaches nobody says so.
    let nobody = h
        .call(
            "agent_collaboration",
            json!({"action": "message", "agent": "ana", "workflow": "w", "note": "hello"}),
        )
        .await
        .ok();
    assert_eq!(nobody.at("/sent"), &json!(0));
    assert!(nobody.text.starts_with("sent to nobody"), "{}", nobody.text);
}

/// Bug 9: contradictory arguments were accepted and one of them ignored.
#[tokio::test]
async fn contradictory_or_unused_arguments_are_refused_and_change_nothing() {
    let h = harness().await;
    h.workflow("w", &[("a", &[])]).await;
    h.workflow("v", &[("b", &[])]).await;
    h.register(&["ana"]).await;
    let mismatch = h
        .call(
            "task_claim",
            json!({"agent": "ana", "task": "w/a", "workflow": "v"}),
        )
        .await
        .err();
    assert!(
        mismatch.contains("`w/a` is a task of workflow `w`, not of `v`"),
        "{mismatch}"
    );
    let (task, token) = h.claim("ana").await;
    let events = h.store.events_since(0, 100_000).unwrap().len();
    let cases = [
        (
            "task_update",
            json!({"task": task, "agent": "ana", "token": token, "action": "heartbeat",
                   "result": "done?"}),
            "`result` does not apply to heartbeat; leave it out",
        ),
        (
            "task_update",
            json!({"task": task, "agent": "ana", "token": token, "action": "heartbeat",
                   "error": "oops", "note": "n"}),
            "`note`, `error` do not apply to heartbeat; leave them out",
        ),
        (
            "task_update",
            json!({"task": task, "agent": "ana", "token": token, "action": "complete",
                   "error": "oops"}),
            "`error` does not apply to complete",
        ),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "ana", "resource": "x"}),
            "`resource` does not apply to inbox",
        ),
        (
            "sprint_planning",
            json!({"action": "estimate", "tasks": [task], "estimate": 3, "name": "s"}),
            "`name` does not apply to estimate",
        ),
        (
            "workflow_status",
            json!({"diagram": true}),
            "`diagram` does not apply to the list of workflows",
        ),
        (
            "agent_workload",
            json!({"lease_seconds": 60}),
            "`lease_seconds` does not apply to a proposal",
        ),
    ];
    for (tool, arguments, expected) in cases {
        let error = h.call(tool, arguments).await.err();
        assert!(error.contains(expected), "{tool}: {error}");
    }
    assert_eq!(h.store.events_since(0, 100_000).unwrap().len(), events);
    let view = h.store.task(&task.parse().unwrap()).unwrap();
    assert_eq!(view.state.to_string(), "running", "still running");
}

/// Bug 10: the naming rule is ASCII, and the refusal says so, naming the character.
#[tokio::test]
async fn a_name_outside_the_rule_is_refused_with_the_whole_rule() {
    let h = harness().await;
    let error = h
        .call(
            "workflow_create",
            json!({"name": "結帳-v3", "tasks": [{"key": "a", "title": "A"}]}),
        )
        .await
        .err();
    assert!(
        error.contains("workflow name `結帳-v3` is invalid: contains `結`, which is not allowed; names are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
        "{error}"
    );
    let tools = h.client.list_all_tools().await.unwrap();
    let create = tools.iter().find(|t| t.name == "workflow_create").unwrap();
    assert_eq!(
        create.input_schema["properties"]["name"]["pattern"],
        json!(orchestration_core::limits::NAME_PATTERN),
        "the schema states the rule"
    );
}

/// Contract 4: an agent that lost its context finds what it holds and goes on.
#[tokio::test]
async fn an_agent_that_lost_its_context_finds_its_tasks_and_tokens_and_goes_on() {
    let h = harness().await;
    h.workflow("w", &[("a", &[]), ("b", &["a"])]).await;
    let (_, token) = h.claim("ana").await;
    h.call(
        "task_update",
        json!({"task": "w/a", "agent": "ana", "token": token, "action": "progress",
               "note": "schema drafted"}),
    )
    .await
    .ok();
    let held = h.call("task_get", json!({"agent": "ana"})).await.ok();
    assert_eq!(held.at("/held/0/task"), &json!("w/a"));
    assert_eq!(held.at("/held/0/token"), &json!(token));
    assert!(held.at("/held/0/lease_expires_at").is_string());
    assert!(
        held.text.starts_with("you hold 1 task: `w/a`"),
        "{}",
        held.text
    );
    // The token found again works.
    let done = h
        .call(
            "task_update",
            json!({"task": "w/a", "agent": "ana", "token": held.at("/held/0/token"),
                   "action": "complete", "result": "v2 schema"}),
        )
        .await
        .ok();
    assert_eq!(done.at("/task/state"), &json!("succeeded"));
    let whole = h.call("task_get", json!({"task": "w/a"})).await.ok();
    assert_eq!(whole.at("/result"), &json!("v2 schema"));
    assert_eq!(whole.at("/done_by"), &json!("ana"));
    assert_eq!(whole.at("/dependents"), &json!(["w/b"]));
    assert_eq!(whole.at("/attempts/0/ended_as"), &json!("succeeded"));
    assert_eq!(whole.at("/notes/0/text"), &json!("schema drafted"));
    assert!(whole.at("/token").is_null(), "no token for a finished task");
    let none = h.call("task_get", json!({"agent": "ana"})).await.ok();
    assert_eq!(none.at("/held"), &json!([]));
    // Someone else never sees a lease's token.
    let (_, token) = h.claim("bo").await;
    let seen = h
        .call("task_get", json!({"task": "w/b", "agent": "ana"}))
        .await
        .ok();
    assert!(seen.at("/token").is_null());
    let mine = h
        .call("task_get", json!({"task": "w/b", "agent": "bo"}))
        .await
        .ok();
    assert_eq!(mine.at("/token"), &json!(token));
}

/// Contract 2: every task in every output is `workflow/key`, every time RFC 3339 UTC with
/// milliseconds and `Z`; and contract 5: a type error names the field's path.
#[tokio::test]
async fn refs_and_times_have_one_format_and_type_errors_name_the_path() {
    let h = harness().await;
    h.workflow("w", &[("a", &[]), ("b", &["a"]), ("c", &["a"])])
        .await;
    h.register(&["ana", "bo"]).await;
    let (_, token) = h.claim("ana").await;
    let replies = vec![
        h.call(
            "workflow_status",
            json!({"workflow": "w", "detail": "full"}),
        )
        .await
        .ok(),
        h.call("task_get", json!({"agent": "ana"})).await.ok(),
        h.call(
            "task_update",
            json!({"task": "w/a", "agent": "ana", "token": token, "action": "complete"}),
        )
        .await
        .ok(),
        h.call("task_claim", json!({"agent": "bo"})).await.ok(),
        h.call("agent_workload", json!({"detail": "full"}))
            .await
            .ok(),
        h.call(
            "task_dependency",
            json!({"workflow": "w", "action": "list"}),
        )
        .await
        .ok(),
        h.call(
            "task_dependency",
            json!({"workflow": "w", "action": "validate"}),
        )
        .await
        .ok(),
        h.call("task_get", json!({"task": "w/a"})).await.ok(),
    ];
    for reply in &replies {
        check_formats(&reply.structured, "");
    }
    let typo = h
        .call(
            "workflow_create",
            json!({"name": "x", "tasks": [{"key": "a", "title": "A"}, {"key": "b", "title": "B", "estimate": "big"}]}),
        )
        .await
        .err();
    assert!(
        typo.contains("at `tasks[1].estimate`: invalid type: string \"big\""),
        "{typo}"
    );
}

/// Walks a result: task names hold a `/`, times end in `.mmmZ`.
fn check_formats(value: &Value, key: &str) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                check_formats(child, key);
            }
        }
        Value::Array(items) => {
            for item in items {
                check_formats(item, key);
            }
        }
        Value::String(text) => {
            let is_task = matches!(key, "task" | "tasks" | "ready" | "unblocked" | "depends_on");
            if is_task {
                assert!(
                    text.contains('/'),
                    "`{key}` holds `{text}`, not workflow/key"
                );
            }
            if key.ends_with("_at") || key == "at" || key == "since" {
                let parsed = chrono::DateTime::parse_from_rfc3339(text);
                assert!(
                    parsed.is_ok() && text.ends_with('Z') && text.len() == 24,
                    "`{key}` holds `{text}`, not RFC 3339 UTC with milliseconds"
                );
            }
        }
        _ => {}
    }
}

/// The typical calls of a small team on an 18-task workflow stay under 4 KB each.
#[tokio::test]
async fn typical_calls_stay_under_four_kilobytes() {
    let h = harness().await;
    for (name, skills) in [
        ("backend", json!({"rust": 4, "sql": 3})),
        ("frontend", json!({"css": 4, "ts": 4})),
        ("qa", json!({"testing": 4})),
    ] {
        h.call(
            "agent_profile",
            json!({"action": "upsert", "name": name, "capabilities": skills}),
        )
        .await
        .ok();
    }
    let tasks: Vec<Value> = (0..18)
        .map(|i| {
            let skill = ["rust", "css", "testing"][i % 3];
            let deps: Vec<String> = if i >= 3 {
                vec![format!("t{}", i - 3)]
            } else {
                vec![]
            };
            json!({"key": format!("t{i}"), "title": format!("Feature step {i}"),
                   "description": "Implement the step as specified in the design document.",
                   "estimate": 2, "skills": {skill: 3}, "depends_on": deps})
        })
        .collect();
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut note = |tool: &str, reply: &Reply| {
        let size = sizes.entry(tool.to_owned()).or_default();
        *size = (*size).max(reply.bytes);
    };
    let created = h
        .call(
            "workflow_create",
            json!({"name": "feature", "tasks": tasks}),
        )
        .await
        .ok();
    note("workflow_create", &created);
    for agent in ["backend", "frontend", "qa"] {
        let claim = h.call("task_claim", json!({"agent": agent})).await.ok();
        note("task_claim", &claim);
        let task = claim.at("/task/task").clone();
        let token = claim.at("/token").clone();
        for action in [
            json!({"action": "heartbeat"}),
            json!({"action": "progress", "note": "halfway"}),
            json!({"action": "complete", "result": "done, see the pull request"}),
        ] {
            let mut arguments = json!({"task": task, "agent": agent, "token": token});
            arguments
                .as_object_mut()
                .unwrap()
                .extend(action.as_object().unwrap().clone());
            let reply = h.call("task_update", arguments).await.ok();
            note("task_update", &reply);
        }
    }
    let calls = [
        ("workflow_status", json!({"workflow": "feature"})),
        ("workflow_status", json!({})),
        (
            "workflow_execute",
            json!({"workflow": "feature", "action": "pause"}),
        ),
        (
            "workflow_execute",
            json!({"workflow": "feature", "action": "resume"}),
        ),
        (
            "task_dependency",
            json!({"workflow": "feature", "action": "list"}),
        ),
        (
            "task_dependency",
            json!({"workflow": "feature", "action": "validate"}),
        ),
        ("task_get", json!({"task": "feature/t0"})),
        ("task_get", json!({"agent": "backend"})),
        ("agent_profile", json!({"action": "list"})),
        ("agent_profile", json!({"action": "get", "name": "backend"})),
        ("agent_delegation", json!({"task": "feature/t3"})),
        ("agent_delegation", json!({"workflow": "feature"})),
        ("agent_workload", json!({})),
        ("agent_performance", json!({})),
        (
            "agent_collaboration",
            json!({"action": "message", "agent": "qa", "to": "backend", "note": "t6 is flaky"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "backend", "ack": true}),
        ),
        (
            "agent_collaboration",
            json!({"action": "lock", "agent": "backend", "resource": "src/api.rs"}),
        ),
        ("agent_collaboration", json!({"action": "locks"})),
        (
            "agent_collaboration",
            json!({"action": "team", "workflow": "feature"}),
        ),
        (
            "sprint_planning",
            json!({"action": "plan", "name": "s1", "start": "2026-03-02", "end": "2026-03-13",
                   "members": [{"agent": "backend"}, {"agent": "frontend"}, {"agent": "qa"}],
                   "workflows": ["feature"]}),
        ),
        (
            "sprint_planning",
            json!({"action": "start", "name": "s1", "start": "2026-03-02", "end": "2026-03-13",
                   "members": [{"agent": "backend"}, {"agent": "frontend"}, {"agent": "qa"}],
                   "workflows": ["feature"], "focus_factor": 0.8}),
        ),
        ("sprint_analytics", json!({"name": "s1"})),
        ("sprint_analytics", json!({})),
        ("sprint_retrospective", json!({"name": "s1"})),
    ];
    for (tool, arguments) in calls {
        let reply = h.call(tool, arguments).await.ok();
        note(tool, &reply);
    }
    let tools: Vec<String> = h
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        sizes.keys().cloned().collect::<Vec<_>>(),
        tools,
        "every tool is measured"
    );
    eprintln!("typical result sizes (bytes): {sizes:?}");
    for (tool, size) in &sizes {
        assert!(*size <= TYPICAL, "{tool}: a typical result of {size} bytes");
    }
}

/// Every tool, called for as much as it can give on a large project (600 tasks, a task with
/// 60 dependencies holding 20 KB results, 100 agents with 100 skills, long texts of the
/// characters that weigh most), stays within the response budget.
#[tokio::test]
async fn no_tool_result_exceeds_the_budget_whatever_the_data() {
    let h = harness().await;
    let heavy = "結\u{0}".repeat(2_000);
    let description = "結".repeat(9_000) + &"\u{1}".repeat(1_000);
    // 100 agents, each with 100 skills.
    for i in 0..100 {
        let skills: serde_json::Map<String, Value> =
            (0..100).map(|s| (format!("skill-{s}"), json!(3))).collect();
        h.call(
            "agent_profile",
            json!({"action": "upsert", "name": format!("agent-{i:03}"), "capabilities": skills,
                   "max_concurrent": 1000}),
        )
        .await
        .ok();
    }
    // 600 tasks: a chain of 300 (300 stages), 240 roots, and 60 dependencies of one join.
    let mut tasks: Vec<Value> = Vec::new();
    // The longest descriptions on a few tasks only: a request of 600 of them would be over
    // the transport's 16 MiB message limit.
    let described = |i: usize| if i < 3 { description.as_str() } else { "do it" };
    for i in 0..300 {
        let deps: Vec<String> = if i > 0 {
            vec![format!("c{}", i - 1)]
        } else {
            vec![]
        };
        tasks.push(json!({"key": format!("c{i}"), "title": "t".repeat(200),
                          "description": described(i), "skills": {"skill-1": 2},
                          "depends_on": deps}));
    }
    for i in 0..240 {
        tasks.push(json!({"key": format!("r{i}"), "title": "t".repeat(200),
                          "description": described(i)}));
    }
    for i in 0..59 {
        tasks.push(json!({"key": format!("d{i}"), "title": "dependency"}));
    }
    let deps: Vec<String> = (0..59).map(|i| format!("d{i}")).collect();
    tasks.push(
        json!({"key": "join", "title": "join", "description": description,
                      "depends_on": deps}),
    );
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut calls: Vec<(&str, Value)> = vec![(
        "workflow_create",
        json!({"name": "big", "tasks": tasks, "description": description}),
    )];
    let chain: Vec<Value> = (0..600)
        .map(|i| json!({"key": format!("k{i}"), "title": "step"}))
        .collect();
    calls.push((
        "workflow_create",
        json!({"name": "chain", "mode": "sequential", "tasks": chain}),
    ));
    for (tool, arguments) in calls.drain(..) {
        let reply = h.call(tool, arguments).await.ok();
        record(&mut sizes, tool, &reply);
    }
    let result = "r".repeat(20_000);
    for i in 0..59 {
        let reply = finish(&h, "agent-000", &format!("big/d{i}"), &result).await;
        record(&mut sizes, "task_update", &reply);
    }
    // A long result of heavy characters on a root that 299 tasks wait behind.
    let reply = finish(&h, "agent-001", "big/c0", &"結\u{0}".repeat(40_000)).await;
    record(&mut sizes, "task_update", &reply);
    // Every agent holds a few tasks; one holds many.
    for i in 0..100 {
        h.call("task_claim", json!({"agent": format!("agent-{i:03}")}))
            .await
            .ok();
    }
    for _ in 0..100 {
        h.call("task_claim", json!({"agent": "agent-099"}))
            .await
            .ok();
    }
    for i in 0..60 {
        h.call(
            "agent_collaboration",
            json!({"action": "message", "agent": "agent-002", "to": "agent-003", "note": heavy}),
        )
        .await
        .ok();
        h.call(
            "agent_collaboration",
            json!({"action": "lock", "agent": format!("agent-{:03}", i % 100),
                   "resource": format!("{i}-{}", "p".repeat(490))}),
        )
        .await
        .ok();
    }
    let members: Vec<Value> = (0..100)
        .map(|i| json!({"agent": format!("agent-{i:03}")}))
        .collect();
    let tasks: Vec<String> = (0..240).map(|i| format!("big/r{i}")).collect();
    let calls: Vec<(&str, Value)> = vec![
        (
            "task_claim",
            json!({"agent": "agent-004", "task": "big/join", "max_result_bytes": 16000}),
        ),
        (
            "task_claim",
            json!({"agent": "agent-005", "task": "big/c1"}),
        ),
        ("task_get", json!({"task": "big/c0"})),
        ("task_get", json!({"task": "big/c0", "part": "result"})),
        ("task_get", json!({"task": "big/c2", "part": "description"})),
        ("task_get", json!({"agent": "agent-099"})),
        (
            "workflow_status",
            json!({"workflow": "big", "detail": "full", "limit": 500, "diagram": true}),
        ),
        (
            "workflow_status",
            json!({"workflow": "big", "diagram": true}),
        ),
        (
            "workflow_status",
            json!({"workflow": "chain", "diagram": true}),
        ),
        ("workflow_status", json!({"detail": "full", "limit": 500})),
        (
            "workflow_execute",
            json!({"workflow": "big", "action": "pause"}),
        ),
        (
            "workflow_execute",
            json!({"workflow": "big", "action": "resume"}),
        ),
        (
            "task_dependency",
            json!({"workflow": "big", "action": "list", "detail": "full", "limit": 500}),
        ),
        (
            "task_dependency",
            json!({"workflow": "big", "action": "validate"}),
        ),
        (
            "task_dependency",
            json!({"workflow": "chain", "action": "validate"}),
        ),
        (
            "task_dependency",
            json!({"workflow": "chain", "action": "add", "task": "k599", "depends_on": "k0"}),
        ),
        (
            "agent_profile",
            json!({"action": "list", "detail": "full", "limit": 500}),
        ),
        (
            "agent_profile",
            json!({"action": "get", "name": "agent-000"}),
        ),
        ("agent_delegation", json!({"task": "big/r200"})),
        ("agent_delegation", json!({"workflow": "big"})),
        ("agent_workload", json!({"detail": "full", "limit": 500})),
        ("agent_performance", json!({"detail": "full", "limit": 500})),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "agent-003", "limit": 500}),
        ),
        (
            "agent_collaboration",
            json!({"action": "locks", "limit": 500}),
        ),
        (
            "agent_collaboration",
            json!({"action": "team", "workflow": "big"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "lock", "agent": "agent-050", "resource": "0-", "prefix": true}),
        ),
        (
            "sprint_planning",
            json!({"action": "plan", "name": "big", "start": "2026-03-02",
                                   "end": "2027-02-26", "members": members, "workflows": ["big"],
                                   "detail": "full"}),
        ),
        (
            "sprint_planning",
            json!({"action": "create", "name": "big", "start": "2026-03-02",
                                   "end": "2027-02-26", "members": members, "detail": "full",
                                   "workflows": ["chain"], "commit": 10000}),
        ),
        (
            "sprint_planning",
            json!({"action": "add", "name": "big", "tasks": tasks, "detail": "full"}),
        ),
        (
            "sprint_planning",
            json!({"action": "start", "name": "big", "detail": "full"}),
        ),
        (
            "sprint_planning",
            json!({"action": "remove", "name": "big", "tasks": tasks, "detail": "full"}),
        ),
        ("sprint_analytics", json!({"name": "big", "detail": "full"})),
        ("sprint_analytics", json!({"detail": "full", "limit": 500})),
        (
            "sprint_retrospective",
            json!({"name": "big", "detail": "full"}),
        ),
    ];
    for (tool, arguments) in calls {
        let reply = h.call(tool, arguments).await;
        assert!(!reply.is_error, "{tool}: {}", reply.text);
        record(&mut sizes, tool, &reply);
    }
    let tools: Vec<String> = h
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        sizes.keys().cloned().collect::<Vec<_>>(),
        tools,
        "every tool is measured"
    );
    eprintln!("largest result sizes (bytes): {sizes:?}");
}

/// Notes the size of a reply and holds it to the budget.
fn record(sizes: &mut BTreeMap<String, usize>, tool: &str, reply: &Reply) {
    assert!(
        reply.bytes <= MAX,
        "{tool}: a result of {} bytes: {}",
        reply.bytes,
        reply.text.chars().take(300).collect::<String>()
    );
    assert!(
        reply.structured.get("cut").is_none(),
        "{tool}: the last guard had to cut a result; the tool must bound it itself: {}",
        reply.text.chars().take(300).collect::<String>()
    );
    let size = sizes.entry(tool.to_owned()).or_default();
    *size = (*size).max(reply.bytes);
}

/// An agent back from a long pause learns that a lease lapsed, rather than reporting on it and
/// being refused.
#[tokio::test]
async fn held_tasks_say_when_a_lease_lapsed() {
    let h = harness().await;
    h.workflow("w", &[("a", &[])]).await;
    let (_, token) = h.claim("ana").await;
    h.clock.advance(chrono::Duration::minutes(20));
    let held = h.call("task_get", json!({"agent": "ana"})).await.ok();
    assert_eq!(held.at("/held/0/lapsed"), &json!(true), "{}", held.text);
    assert!(
        held.text.starts_with(&format!(
            "you hold 1 task: `w/a` (token {token}, lease lapsed: drop it)\n"
        )),
        "{}",
        held.text
    );
}
