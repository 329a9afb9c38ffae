//! Real clients: the official Python MCP SDK drives the built binary over stdio, and through
//! one agent's session over streamable HTTP.
//!
//! The SDK is found in `ORCHESTRATION_PYTHON` (a Python with `mcp` installed) or in the
//! workspace's `.venv` (`python3 -m venv .venv && .venv/bin/pip install -r
//! orchestration-mcp/tests/python/requirements.txt`). Without either, the test says so and
//! passes on a developer's machine, and fails under CI, which must run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::http_client::Connection;

fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORCHESTRATION_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

/// The Python with the SDK, or `None` after saying why the test is skipped (which fails under
/// CI).
fn python_or_skip() -> Option<PathBuf> {
    let python = python();
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Python SDK tests: create .venv with orchestration-mcp/tests/python/requirements.txt"
        );
        eprintln!(
            "skipping a Python SDK test: no .venv with the `mcp` package (see this file's docs)"
        );
    }
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs the script `name` against the built binary and checks that it ends with `passed`, its
/// last line on success. Returns what it printed.
fn run_script(name: &str, passed: &str) -> Option<String> {
    let python = python_or_skip()?;
    let output = Command::new(&python)
        .arg(script(name))
        .arg(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the checks of {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(passed), "{stdout}");
    Some(stdout.into_owned())
}

#[test]
fn the_python_sdk_drives_the_server_over_stdio() {
    run_script("smoke.py", "python sdk: all checks passed");
}

/// Three agents, each with its own server process on one database, work a feature workflow
/// through the SDK and make the mistakes agents make: every answer stays within the result
/// budget, and none shows the bugs of the agent's-seat issue (see the script's checks).
#[test]
fn three_agents_in_three_processes_get_bounded_truthful_answers() {
    run_script("agent_seat.py", "agent seat: all checks passed");
}

/// An agent's whole session over HTTP: the SDK sends the token as `bearer` in lower case, and
/// ends the session with a DELETE, which must get a status it accepts (it logs "Session
/// termination failed" for anything but 200 or 204). The session is then gone for good.
#[test]
fn the_python_sdk_ends_an_http_session_without_a_warning() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let token = "s3cret-s3cret";
    let server = crate::http::start(&["--db", ":memory:", "--token", token]);
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let output = Command::new(&python)
        .arg(script("http_session.py"))
        .args([&url, token])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("python sdk over http: all checks passed"),
        "{stdout}"
    );
    assert!(!stderr.contains("Session termination failed"), "{stderr}");
    let id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("session: "))
        .expect("the script prints the session id");
    // A later request in the ended session is refused, as the spec says, with 404.
    let mut connection = Connection::open(server.port).unwrap();
    let authorization = format!("Bearer {token}");
    let response = connection
        .post(
            &[
                ("Mcp-Session-Id", id),
                ("Mcp-Protocol-Version", "2025-11-25"),
                ("Authorization", &authorization),
            ],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .unwrap();
    assert_eq!(response.status, 404, "{}{}", response.head, response.body);
}

/// Waiting instead of polling across two server processes: a claim and an inbox read wake
/// within a second of the other process's change, a wait for nothing ends at its deadline, and
/// a cancelled wait claims nothing afterwards (see the script).
#[test]
fn waiting_calls_wake_on_changes_from_another_process() {
    run_script("waiting.py", "waiting: all checks passed");
}

/// Prompts as slash commands reach them: listed, filled in from the store, their arguments
/// completed from its names, and a wrong call refused with what to pass (see the script).
#[test]
fn prompts_and_completions_through_the_python_sdk() {
    run_script("prompts.py", "prompts: all checks passed");
}

/// Resources listed in pages, read as Markdown and JSON, refused with what exists for a URI
/// that names nothing, and updates of a subscribed resource changed by another process within
/// a second, none after unsubscribing (see the script).
#[test]
fn resources_and_subscriptions_through_the_python_sdk() {
    run_script("resources.py", "resources: all checks passed");
}
