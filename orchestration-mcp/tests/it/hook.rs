//! `orchestration-mcp hook`, the built binary, fed recorded Claude Code hook events on stdin:
//! each case checks the exact answer on stdout and the exit code.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::Duration;
use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskSpec, WorkflowSpec,
    collaboration::LockMode, collaboration::Resource, store::Delivery, store::Recipients,
    text::rfc3339,
};
use serde_json::{Value, json};

const ROOT: &str = "/home/dev/project";

/// A recorded `PreToolUse` event of `tool` on `file`.
fn pre_tool_use(tool: &str, file: &str) -> Value {
    let field = if tool == "NotebookEdit" {
        "notebook_path"
    } else {
        "file_path"
    };
    json!({
        "session_id": "3f1c9a52-7d1e-4b7a-9a43-0c2b1d5e8f10",
        "transcript_path": "/home/dev/.claude/projects/project/3f1c9a52.jsonl",
        "cwd": ROOT,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": { field: file, "old_string": "a", "new_string": "b" },
        "tool_use_id": "toolu_01ABCDEF"
    })
}

fn event(name: &str, extra: Value) -> Value {
    let mut event = json!({
        "session_id": "3f1c9a52-7d1e-4b7a-9a43-0c2b1d5e8f10",
        "transcript_path": "/home/dev/.claude/projects/project/3f1c9a52.jsonl",
        "cwd": ROOT,
        "permission_mode": "default",
        "hook_event_name": name,
    });
    event
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    event
}

/// Runs the hook as Claude Code does: the event on stdin, the agent in the environment.
fn run(db: &Path, agent: Option<&str>, event: &Value) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"));
    command
        .args(["hook", "--db"])
        .arg(db)
        .env("CLAUDE_PROJECT_DIR", ROOT)
        .env_remove("ORCHESTRATION_AGENT")
        .env_remove("ORCHESTRATION_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(agent) = agent {
        command.env("ORCHESTRATION_AGENT", agent);
    }
    let mut child = command.spawn().expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn deny(reason: &str) -> String {
    format!(
        "{}\n",
        json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
            "permissionDecision": "deny", "permissionDecisionReason": reason}})
    )
}

fn warn(message: &str) -> String {
    format!(
        "{}\n",
        json!({"systemMessage": format!("orchestration: {message}")})
    )
}

/// A database where `bo` works on `web/login` holding `src/auth.rs` exclusively and the
/// prefix `docs/` exclusively, `ana` holds `src/main.rs` exclusively and `Cargo.toml` shared,
/// and `ana` has two messages.
struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    auth_until: String,
    docs_until: String,
    ana_token: u64,
    ana_lease: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orchestration.db");
    let store = Store::open(&db).unwrap();
    for agent in ["ana", "bo"] {
        store.upsert_agent(agent, &AgentUpdate::default()).unwrap();
    }
    let spec = WorkflowSpec::new("web", Mode::Dag)
        .task(TaskSpec::new("login", "Add the login form").priority(90))
        .task(TaskSpec::new("home", "Redo the home page").priority(10));
    let start = CreateOptions {
        start: true,
        ..Default::default()
    };
    store.create_workflow(spec, &start).unwrap();
    store
        .claim(&ClaimRequest::new("bo"))
        .unwrap()
        .claimed()
        .unwrap();
    let ana = store
        .claim(&ClaimRequest::new("ana"))
        .unwrap()
        .claimed()
        .unwrap();
    let ttl = Duration::minutes(30);
    let lock = |agent: &str, resource: Resource, mode: LockMode| {
        store.lock(agent, &resource, mode, ttl).unwrap();
    };
    lock(
        "bo",
        Resource::Exact("src/auth.rs".into()),
        LockMode::Exclusive,
    );
    lock("bo", Resource::Prefix("docs/".into()), LockMode::Exclusive);
    lock(
        "ana",
        Resource::Exact("src/main.rs".into()),
        LockMode::Exclusive,
    );
    lock(
        "ana",
        Resource::Exact("Cargo.toml".into()),
        LockMode::Shared,
    );
    store
        .send_message(
            "bo",
            &Recipients::Agent("ana".into()),
            "I am done with the auth module at 12.",
        )
        .unwrap();
    store
        .send_message(
            "bo",
            &Recipients::Agent("ana".into()),
            "Please review web/login.",
        )
        .unwrap();
    let (held, _) = store.locks().unwrap();
    let until = |name: &str| {
        rfc3339(
            held.iter()
                .find(|l| l.resource.name() == name)
                .unwrap()
                .expires_at,
        )
    };
    Setup {
        auth_until: until("src/auth.rs"),
        docs_until: until("docs/"),
        ana_token: ana.token.0,
        ana_lease: rfc3339(ana.lease_expires_at),
        db,
        _dir: dir,
    }
}

#[test]
fn edits_of_files_another_agent_locked_are_denied_and_the_rest_allowed() {
    let s = setup();
    let auth = format!(
        "`src/auth.rs` is locked exclusively by agent `bo`, who is working on `web/login`, until \
         {} unless renewed. Do not edit it: work on something else, or ask `bo` with \
         agent_collaboration (action message).",
        s.auth_until
    );
    let guide = format!(
        "`docs/guide/intro.md` is locked exclusively by agent `bo`, who is working on \
         `web/login` (lock `docs/*` covers it), until {} unless renewed. Do not edit it: work on \
         something else, or ask `bo` with agent_collaboration (action message).",
        s.docs_until
    );
    let unset = "ORCHESTRATION_AGENT is not set, so this session's own locks are unknown; set it \
                 to the agent name this session registered";
    let cases: Vec<(&str, Option<&str>, Value, String)> = vec![
        (
            "locked by another agent",
            Some("ana"),
            pre_tool_use("Edit", "/home/dev/project/src/auth.rs"),
            deny(&auth),
        ),
        (
            "the same file reached through `..`",
            Some("ana"),
            pre_tool_use("Write", "/home/dev/project/tests/../src/auth.rs"),
            deny(&auth),
        ),
        (
            "locked by me",
            Some("ana"),
            pre_tool_use("Edit", "/home/dev/project/src/main.rs"),
            String::new(),
        ),
        (
            "a shared lock of another agent stops nobody",
            Some("bo"),
            pre_tool_use("MultiEdit", "/home/dev/project/Cargo.toml"),
            String::new(),
        ),
        (
            "unlocked",
            Some("ana"),
            pre_tool_use("Write", "/home/dev/project/src/new.rs"),
            String::new(),
        ),
        (
            "a prefix lock",
            Some("ana"),
            pre_tool_use("NotebookEdit", "/home/dev/project/docs/guide/intro.md"),
            deny(&guide),
        ),
        (
            "not an edit",
            Some("ana"),
            pre_tool_use("Read", "/home/dev/project/src/auth.rs"),
            String::new(),
        ),
        (
            "an unregistered agent is not the holder either",
            Some("zoe"),
            pre_tool_use("Edit", "/home/dev/project/src/auth.rs"),
            deny(&auth),
        ),
        (
            "no agent: every exclusive lock counts",
            None,
            pre_tool_use("Edit", "/home/dev/project/src/main.rs"),
            deny(&format!(
                "`src/main.rs` is locked exclusively by agent `ana`, who is working on \
                 `web/home`, until {} unless renewed. Do not edit it: work on something else, \
                 or ask `ana` with agent_collaboration (action message). ORCHESTRATION_AGENT \
                 is not set, so no lock counts as this session's own.",
                rfc3339_of(&s, "src/main.rs")
            )),
        ),
        (
            "no agent and no lock: allowed, with a warning",
            None,
            pre_tool_use("Edit", "/home/dev/project/src/new.rs"),
            warn(unset),
        ),
    ];
    for (what, agent, event, expected) in cases {
        assert_eq!(run(&s.db, agent, &event), (0, expected), "{what}");
    }
}

fn rfc3339_of(s: &Setup, name: &str) -> String {
    let store = Store::open_read_only(&s.db).unwrap();
    let (held, _) = store.locks().unwrap();
    rfc3339(
        held.iter()
            .find(|l| l.resource.name() == name)
            .unwrap()
            .expires_at,
    )
}

#[test]
fn an_unreachable_database_never_blocks_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.db");
    let edit = pre_tool_use("Edit", "/home/dev/project/src/auth.rs");
    let (code, out) = run(&missing, Some("ana"), &edit);
    assert_eq!(
        (code, out),
        (
            0,
            warn(&format!(
                "no database at {}; nothing is checked (set ORCHESTRATION_DB to the file the \
                 server uses)",
                missing.display()
            ))
        )
    );
    assert!(!missing.exists(), "a hook never creates a database");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        "this is not a database, just text that goes on and on",
    )
    .unwrap();
    let (code, out) = run(&garbage, Some("ana"), &edit);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(r#"{"systemMessage":"orchestration: cannot read the database at"#),
        "{out}"
    );
    assert!(out.ends_with("nothing is checked\"}\n"), "{out}");

    let (code, out) = run(&missing, Some("ana"), &json!("not an event"));
    assert_eq!(code, 0);
    assert!(out.contains("the hook event is not valid JSON"), "{out}");
}

#[test]
fn a_session_starts_with_its_held_tasks_and_unread_messages() {
    let s = setup();
    let context = |text: String| {
        format!(
            "{}\n",
            json!({"hookSpecificOutput": {"hookEventName": "SessionStart",
                "additionalContext": text}})
        )
    };
    let start = event("SessionStart", json!({"source": "startup"}));
    let (code, out) = run(&s.db, Some("ana"), &start);
    let expected = format!(
        "You work as agent `ana` in orchestration. You hold 1 task; report on each with \
         task_update (heartbeat to keep the lease):\n- `web/home` (Redo the home page), token {}, \
         lease ends {}\n2 messages unread:\n- #1 from `bo`: I am done with the auth module at \
         12.\n- #2 from `bo`: Please review web/login.\nRead and acknowledge them with \
         agent_collaboration (action inbox).",
        s.ana_token, s.ana_lease
    );
    assert_eq!((code, out), (0, context(expected)));

    // Looking does not acknowledge: the messages are still there for the inbox.
    let store = Store::open(&s.db).unwrap();
    assert_eq!(
        store
            .inbox("ana", 10, usize::MAX, Delivery::Peek)
            .unwrap()
            .0
            .len(),
        2
    );

    let (code, out) = run(&s.db, Some("zoe"), &start);
    assert_eq!(
        (code, out),
        (
            0,
            context(
                "You work as agent `zoe` in orchestration, which is not registered yet: \
                 register with agent_profile (action upsert, name `zoe`) before claiming."
                    .into()
            )
        )
    );
}

#[test]
fn a_stop_while_holding_tasks_is_blocked_once() {
    let s = setup();
    let reason = format!(
        "Agent `ana` still holds 1 task: `web/home` (token {}). Report each with task_update \
         (complete, fail, or release to give it back) before stopping.",
        s.ana_token
    );
    let stop = event("Stop", json!({"stop_hook_active": false}));
    assert_eq!(
        run(&s.db, Some("ana"), &stop),
        (
            0,
            format!("{}\n", json!({"decision": "block", "reason": reason}))
        )
    );
    // Already continued once for this hook: the person is told, the model may stop.
    let again = event("SubagentStop", json!({"stop_hook_active": true}));
    assert_eq!(run(&s.db, Some("ana"), &again), (0, warn(&reason)));
    // Nothing held, or no identity: nothing to say.
    let store = Store::open(&s.db).unwrap();
    store.upsert_agent("cy", &AgentUpdate::default()).unwrap();
    assert_eq!(run(&s.db, Some("cy"), &stop), (0, String::new()));
    assert_eq!(run(&s.db, None, &stop), (0, String::new()));
}
