//! Hostile input: random and malformed arguments to every tool through an in-process client.
//! Whatever comes in, the server answers (no panic, no hang), a rejected call writes nothing,
//! and every rejection says what was wrong. Free text is stored as plain data, so SQL in it
//! round-trips unchanged.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};

use crate::support::{Harness, harness};

/// Everything a call can change, in a form that compares: the event log's length and last
/// entry, the workflows, the locks and waits, and the agents.
async fn snapshot(h: &Harness) -> String {
    let store = std::sync::Arc::clone(&h.store);
    tokio::task::spawn_blocking(move || {
        let events = store.events_since(0, usize::MAX >> 1).unwrap();
        let workflows = store.workflows().unwrap();
        let locks = store.locks().unwrap();
        let agents = store.agents().unwrap();
        format!(
            "{} {:?} {workflows:?} {locks:?} {agents:?}",
            events.len(),
            events.last()
        )
    })
    .await
    .unwrap()
}

/// What a call came to.
#[derive(Debug)]
enum Outcome {
    Ok,
    ToolError(String),
    ProtocolError(String),
}

async fn raw_call(h: &Harness, tool: &str, arguments: Map<String, Value>) -> Outcome {
    let request = h
        .client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments));
    let result = tokio::time::timeout(Duration::from_secs(60), request)
        .await
        .unwrap_or_else(|_| panic!("{tool}: no answer within a minute"));
    match result {
        Ok(result) if result.is_error == Some(true) => Outcome::ToolError(
            result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Ok(_) => Outcome::Ok,
        Err(error) => Outcome::ProtocolError(error.to_string()),
    }
}

/// Makes the call and checks the rules every call must keep.
async fn check(h: &Harness, tool: &str, arguments: Map<String, Value>) -> Outcome {
    let before = snapshot(h).await;
    let shown: String = Value::Object(arguments.clone())
        .to_string()
        .chars()
        .take(300)
        .collect();
    let outcome = raw_call(h, tool, arguments).await;
    match &outcome {
        Outcome::Ok => {}
        Outcome::ToolError(text) => {
            assert!(!text.trim().is_empty(), "{tool} {shown}: an empty error");
            assert!(
                !text.contains("see the server log"),
                "{tool} {shown}: a generic error: {text}"
            );
            assert_eq!(
                snapshot(h).await,
                before,
                "{tool} {shown}: a rejected call wrote"
            );
        }
        Outcome::ProtocolError(text) => {
            // Arguments that do not decode are invalid params, with serde's reason; a server
            // failure (internal error) is never the answer to bad input.
            assert!(
                !text.contains("-32603") && !text.to_lowercase().contains("internal"),
                "{tool} {shown}: an internal error: {text}"
            );
            assert!(text.len() > 20, "{tool} {shown}: a vague error: {text}");
            assert_eq!(
                snapshot(h).await,
                before,
                "{tool} {shown}: a rejected call wrote"
            );
        }
    }
    outcome
}

/// A workflow, an agent with a claimed task and a lock, so that calls have things to act on.
async fn seeded() -> Harness {
    let h = harness().await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "alice", "capabilities": {"rust": 3}}),
    )
    .await
    .ok();
    h.workflow("w", &[("a", &[]), ("b", &["a"]), ("c", &[])])
        .await;
    h.claim("alice").await;
    h.call(
        "agent_collaboration",
        json!({"action": "lock", "agent": "alice", "resource": "src/lib.rs"}),
    )
    .await
    .ok();
    h
}

/// Strings meant to break things: SQL, odd Unicode, control characters, near-valid names,
/// path tricks, and very long ones.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("w".to_owned()),
        Just("w/a".to_owned()),
        Just("alice".to_owned()),
        Just("'; DROP TABLE tasks; --".to_owned()),
        Just("\" OR 1=1 --".to_owned()),
        Just("w/a'); DELETE FROM events; --".to_owned()),
        Just("\u{0}\u{1}\u{7f}".to_owned()),
        Just("\u{202e}evil\u{200b}\u{feff}".to_owned()),
        Just("🦀🧨👩‍👩‍👧".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("%s%n{}{{}}".to_owned()),
        Just("NaN".to_owned()),
        Just("ａｌｉｃｅ".to_owned()),
        "[a-z0-9]{1,70}",
        "\\PC{0,40}",
        (1usize..200_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Numbers at the edges of every type the tools use.
fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(u32::MAX as u64 + 1)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(5e-324)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
    ]
}

/// Any JSON value, nested a few levels.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The tools and, for each, its argument names and the values its enums allow, read from
/// tools/list so that new tools and fields are fuzzed without editing this test.
async fn tool_fields(h: &Harness) -> Vec<(String, Vec<(String, Vec<Value>)>)> {
    let tools = h.client.list_all_tools().await.unwrap();
    tools
        .into_iter()
        .map(|tool| {
            let properties = tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let fields = properties
                .into_iter()
                .map(|(name, schema)| {
                    let allowed = schema
                        .get("enum")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    (name, allowed)
                })
                .collect();
            (tool.name.to_string(), fields)
        })
        .collect()
}

/// Arguments for one tool: some of its fields, each with an allowed enum value, a plausible or
/// a hostile value; sometimes an unknown field too.
fn arguments(fields: Vec<(String, Vec<Value>)>) -> impl Strategy<Value = Map<String, Value>> {
    let per_field: Vec<_> = fields
        .into_iter()
        .map(|(name, allowed)| {
            let value = if allowed.is_empty() {
                hostile_value().boxed()
            } else {
                prop_oneof![3 => prop::sample::select(allowed), 1 => hostile_value()].boxed()
            };
            (any::<bool>(), value).prop_map(move |(present, value)| (name.clone(), present, value))
        })
        .collect();
    (
        per_field,
        prop::option::weighted(0.2, (hostile_string(), hostile_value())),
    )
        .prop_map(|(fields, unknown)| {
            let mut arguments: Map<String, Value> = fields
                .into_iter()
                .filter(|(_, present, _)| *present)
                .map(|(name, _, value)| (name, value))
                .collect();
            if let Some((name, value)) = unknown {
                arguments.insert(name, value);
            }
            arguments
        })
}

#[test]
fn random_and_malformed_arguments_to_every_tool_are_rejected_cleanly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = runtime.block_on(seeded());
    let tools = runtime.block_on(tool_fields(&h));
    assert!(tools.len() >= 9, "every tool is fuzzed: {tools:?}");
    let strategy =
        prop::sample::select(tools).prop_flat_map(|(tool, fields)| (Just(tool), arguments(fields)));
    let mut runner = TestRunner::new(Config {
        // More with ORCHESTRATION_FUZZ_CASES=100000 for a long run by hand.
        cases: std::env::var("ORCHESTRATION_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_500),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(tool, arguments)| {
            runtime.block_on(check(&h, &tool, arguments));
            Ok(())
        })
        .unwrap();
    // The server still works after all that.
    runtime.block_on(async {
        h.call("workflow_status", json!({"workflow": "w"}))
            .await
            .ok();
    });
}

#[tokio::test]
async fn structurally_hostile_arguments_get_specific_errors() {
    let h = seeded().await;
    // Deep, but within what the JSON parser accepts: the argument decoder must refuse it.
    let deep = (0..100).fold(json!("bottom"), |inner, _| json!([inner]));
    let wide: Vec<Value> = (0..200_000).map(|i| json!(i)).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        // Wrong types.
        ("task_claim", json!({"agent": 7}), "invalid type"),
        ("task_claim", json!({"agent": ["alice"]}), "invalid type"),
        (
            "task_update",
            json!({"task": "w/a", "agent": "alice", "token": -1, "action": "heartbeat"}),
            "invalid value",
        ),
        (
            "task_update",
            json!({"task": "w/a", "agent": "alice", "token": 1.5, "action": "heartbeat"}),
            "invalid type",
        ),
        (
            "task_claim",
            json!({"agent": "alice", "lease_seconds": 1e300}),
            "invalid type",
        ),
        // Unknown fields and actions.
        (
            "task_claim",
            json!({"agent": "alice", "sneaky": true}),
            "unknown field",
        ),
        (
            "agent_collaboration",
            json!({"action": "steal"}),
            "unknown variant",
        ),
        // Nesting far deeper than any argument.
        ("workflow_status", json!({"workflow": deep}), "invalid type"),
        // Huge arrays and strings.
        (
            "agent_collaboration",
            json!({"action": "ack", "agent": "alice", "ids": wide}),
            "at most",
        ),
        (
            "workflow_create",
            json!({"name": "x".repeat(1_000_000), "tasks": [{"key": "a", "title": "A"}]}),
            "at most 64",
        ),
        (
            "task_update",
            json!({"task": "w/a", "agent": "alice", "token": 1, "action": "progress",
                   "note": "n".repeat(2_000_000)}),
            "at most",
        ),
        (
            "agent_profile",
            json!({"action": "upsert", "name": "bob",
                   "capabilities": (0..5_000).map(|i| (format!("s{i}"), json!(1)))
                       .collect::<Map<String, Value>>()}),
            "at most",
        ),
        // Numbers at the edges.
        (
            "task_update",
            json!({"task": "w/a", "agent": "alice", "token": 1, "action": "complete",
                   "actual": -1.0}),
            "outside",
        ),
        (
            "task_update",
            json!({"task": "w/a", "agent": "alice", "token": 1, "action": "complete",
                   "actual": 1e308}),
            "outside",
        ),
        (
            "workflow_create",
            json!({"name": "neg", "tasks": [{"key": "a", "title": "A", "estimate": -5}]}),
            "estimate",
        ),
        // Names that are not names.
        (
            "task_claim",
            json!({"agent": "alice'; DROP TABLE tasks; --"}),
            "invalid",
        ),
        ("task_claim", json!({"agent": "ａｌｉｃｅ"}), "invalid"),
        ("task_claim", json!({"agent": ""}), "must not be empty"),
    ];
    for (tool, arguments, expected) in cases {
        let Value::Object(arguments) = arguments else {
            unreachable!()
        };
        let shown: String = Value::Object(arguments.clone())
            .to_string()
            .chars()
            .take(120)
            .collect();
        match check(&h, tool, arguments).await {
            Outcome::ToolError(text) | Outcome::ProtocolError(text) => {
                assert!(text.contains(expected), "{tool} {shown}: {text}");
            }
            Outcome::Ok => panic!("{tool} {shown}: accepted"),
        }
    }
}

#[tokio::test]
async fn a_workflow_over_the_task_limit_is_refused_whole() {
    let h = seeded().await;
    // One task over the limit; a million tasks cannot even be sent, as a request that large
    // is over the transports' size limits (see the HTTP tests).
    let tasks: Vec<Value> = (0..=orchestration_core::limits::MAX_TASKS)
        .map(|i| json!({"key": format!("t{i}"), "title": "t"}))
        .collect();
    let Value::Object(arguments) = json!({"name": "huge", "mode": "parallel", "tasks": tasks})
    else {
        unreachable!()
    };
    match check(&h, "workflow_create", arguments).await {
        Outcome::ToolError(text) => assert!(text.contains("at most 100000 tasks"), "{text}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_message_nested_beyond_the_parsers_limit_leaves_the_server_serving() {
    let h = seeded().await;
    // rmcp drops a message it cannot parse (serde_json stops at 128 levels) without an
    // answer, as the other MCP SDKs do, since there is no id to answer to. What matters is
    // that the server is unharmed: the call is abandoned and the next one is answered.
    let deep = (0..200).fold(json!("bottom"), |inner, _| json!([inner]));
    let Value::Object(arguments) = json!({"workflow": deep}) else {
        unreachable!()
    };
    let request = h
        .client
        .call_tool(CallToolRequestParams::new("workflow_status").with_arguments(arguments));
    let _ = tokio::time::timeout(Duration::from_secs(2), request).await;
    h.call("workflow_status", json!({"workflow": "w"}))
        .await
        .ok();
}

#[tokio::test]
async fn sql_and_odd_unicode_in_free_text_are_stored_as_plain_data() {
    let h = harness().await;
    h.call(
        "agent_profile",
        json!({"action": "upsert", "name": "reader"}),
    )
    .await
    .ok();
    let texts = [
        "'; DROP TABLE tasks; --",
        "\" OR \"1\"=\"1",
        "Robert'); DELETE FROM events WHERE ('1'='1",
        "\u{0}nul\u{0}inside",
        "🦀 \u{202e}rtl\u{200b} ｆｕｌｌ",
        "%s %n {} {{}} \\x00 \\' \\\"",
    ];
    for (i, text) in texts.iter().enumerate() {
        let workflow = format!("inj{i}");
        h.call(
            "workflow_create",
            json!({"name": workflow, "description": text,
                   "tasks": [{"key": "a", "title": text, "description": text}]}),
        )
        .await
        .ok();
        h.call(
            "agent_profile",
            json!({"action": "upsert", "name": format!("agent{i}")}),
        )
        .await
        .ok();
        let claim = h
            .call(
                "task_claim",
                json!({"agent": format!("agent{i}"), "workflow": workflow}),
            )
            .await
            .ok();
        assert_eq!(claim.at("/task/title"), &json!(text));
        assert_eq!(claim.at("/task/description"), &json!(text));
        let token = claim.at("/token").as_u64().unwrap();
        let task = format!("{workflow}/a");
        h.call(
            "task_update",
            json!({"task": task, "agent": format!("agent{i}"), "token": token,
                   "action": "progress", "note": text}),
        )
        .await
        .ok();
        h.call(
            "agent_collaboration",
            json!({"action": "lock", "agent": format!("agent{i}"), "resource": format!("r{i}-{text}")}),
        )
        .await;
        h.call(
            "agent_collaboration",
            json!({"action": "message", "agent": format!("agent{i}"), "to": "reader",
                   "note": text}),
        )
        .await
        .ok();
        let inbox = h
            .call(
                "agent_collaboration",
                json!({"action": "inbox", "agent": "reader", "ack": true}),
            )
            .await
            .ok();
        assert_eq!(inbox.at("/messages/0/body"), &json!(text));
        h.call(
            "task_update",
            json!({"task": task, "agent": format!("agent{i}"), "token": token,
                   "action": "complete", "result": text}),
        )
        .await
        .ok();
        let view = h.store.task(&task.parse().unwrap()).unwrap();
        assert_eq!(view.title, *text);
        assert_eq!(view.description.as_deref(), Some(*text));
        assert_eq!(view.note.as_deref(), Some(*text));
        assert_eq!(view.result.as_deref(), Some(*text));
    }
    // The tables the injections named are all still there, with everything in them.
    assert_eq!(h.store.workflows().unwrap().len(), texts.len());
    assert!(h.store.events_since(0, 1_000).unwrap().len() > 5 * texts.len());
}
