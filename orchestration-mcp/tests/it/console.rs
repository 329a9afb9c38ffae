//! The console and `/metrics` of the built binary: beside `/mcp` under `--http`, alone under
//! `console`, with the tool calls an MCP client makes counted and logged as JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_client::Session;

/// A server process and what it wrote to stderr.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args`; the port is read from the first line, on stdout or
/// stderr as `stdout` says, that names an `http://` address.
fn start(args: &[&str], env: &[(&str, &str)], address_on_stdout: bool) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first, other): (Box<dyn Read + Send>, Box<dyn Read + Send>) = if address_on_stdout {
        (Box::new(stdout), Box::new(stderr))
    } else {
        (Box::new(stderr), Box::new(stdout))
    };
    let mut lines = BufReader::new(first).lines();
    let port = loop {
        let line = lines.next().expect("the server names its address").unwrap();
        log.lock().unwrap().push(line.clone());
        let port = line.split("http://").nth(1).and_then(|rest| {
            let address = rest.split(['/', '"', ' ']).next()?;
            address.rsplit(':').next()?.parse().ok()
        });
        if let Some(port) = port {
            break port;
        }
    };
    for reader in [
        Box::new(lines.map_while(Result::ok)) as Box<dyn Iterator<Item = String> + Send>,
        Box::new(BufReader::new(other).lines().map_while(Result::ok)),
    ] {
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in reader {
                kept.lock().unwrap().push(line);
            }
        });
    }
    Server { child, port, log }
}

/// GETs `path` with `headers`: the status and the body.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

const TOKEN: &str = "console-test-token-0123456789";

#[test]
fn the_http_server_serves_the_console_and_metrics_and_logs_tool_calls_as_json() {
    let server = start(
        &[
            "--db",
            ":memory:",
            "--http",
            "127.0.0.1:0",
            "--token",
            TOKEN,
            "--log-format",
            "json",
        ],
        &[("RUST_LOG", "orchestration_mcp=debug,info")],
        false,
    );
    let bearer = format!("Bearer {TOKEN}");
    let mut session = Session::open(server.port, Some(TOKEN)).unwrap();
    session
        .call(
            "workflow_create",
            json!({"name": "seen", "tasks": [{"key": "a", "title": "A"}, {"key": "g", "title": "Gate", "gate": true, "depends_on": ["a"]}]}),
        )
        .unwrap();
    session
        .call("agent_profile", json!({"action": "upsert", "name": "a1"}))
        .unwrap();
    session.call("task_claim", json!({"agent": "a1"})).unwrap();
    let refused = session.call("workflow_status", json!({"workflow": "nope"}));
    assert!(refused.is_err());

    let (status, page) = get(
        server.port,
        "/workflows/seen",
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 200);
    assert!(page.contains("Workflow seen"), "{page}");
    let (status, _) = get(server.port, "/workflows/seen", &[]);
    assert_eq!(status, 303, "a browser without the token is sent to log in");

    let (status, metrics) = get(server.port, "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(status, 200);
    for line in [
        "orchestration_tool_calls_total{tool=\"workflow_create\",outcome=\"ok\"} 1",
        "orchestration_tool_calls_total{tool=\"workflow_status\",outcome=\"tool_error\"} 1",
        "orchestration_tool_call_duration_seconds_count{tool=\"agent_profile\"} 1",
        "orchestration_sessions_open 1",
        "orchestration_workflow_tasks{workflow=\"seen\",state=\"running\"} 1",
        "orchestration_claims_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    drop(session);
    // Every tool call is logged with its tool, agent, duration and outcome; errors at warn.
    let log = server.log.lock().unwrap().clone();
    let calls: Vec<Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "tool call")
        .collect();
    let upsert = calls
        .iter()
        .find(|c| c["fields"]["tool"] == "task_claim")
        .expect("the claim is logged");
    assert_eq!(upsert["level"], "DEBUG");
    assert_eq!(upsert["fields"]["agent"], "a1");
    assert_eq!(upsert["fields"]["outcome"], "ok");
    assert!(upsert["fields"]["duration_ms"].as_f64().is_some());
    let failed = calls
        .iter()
        .find(|c| c["fields"]["tool"] == "workflow_status")
        .expect("the failed call is logged");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["fields"]["outcome"], "tool_error");
}

#[test]
fn the_console_command_serves_the_pages_alone_read_only_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let db = db.to_str().unwrap();
    let server = start(
        &["--db", db, "console", "--listen", "127.0.0.1:0"],
        &[],
        true,
    );
    let (status, page) = get(server.port, "/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("Read-only"), "{page}");
    let (status, page) = get(server.port, "/mcp", &[]);
    assert_eq!(status, 404, "the console command serves no MCP");
    assert!(page.contains(r#"<a href="/">Back to the overview</a>"#));
    let (status, metrics) = get(server.port, "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(metrics.contains("orchestration_gates_waiting 0"));
    assert!(!metrics.contains("orchestration_sessions_open"));
}
