//! The binary over streamable HTTP: it answers on loopback, checks Host and Origin, enforces
//! its bearer token (the scheme in any case) and per-agent tokens, ends a session on DELETE
//! with 204, limits request sizes, and refuses to listen beyond loopback without a token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http_client::Session;

/// A server process on an ephemeral loopback port, killed on drop.
pub(crate) struct HttpServer {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// Every line the server has logged so far.
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(extra: &[&str]) -> HttpServer {
    spawn(Command::new(env!("CARGO_BIN_EXE_orchestration-mcp")), extra)
}

/// Starts the server with `command` (the binary, or a wrapper that execs it with the
/// arguments appended) and `extra` arguments, on an ephemeral port unless `--http` is given.
pub(crate) fn spawn(mut command: Command, extra: &[&str]) -> HttpServer {
    let mut child = command
        .args(if extra.contains(&"--http") {
            &[][..]
        } else {
            &["--http", "127.0.0.1:0"][..]
        })
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    // The server logs its address once it listens; that is how a test learns the port.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        let port = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split("/mcp").next())
            .map(|address| address.rsplit(':').next().unwrap().parse().unwrap());
        log.lock().unwrap().push(line);
        if let Some(port) = port {
            break port;
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    HttpServer { child, port, log }
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// POSTs `body` to /mcp with extra headers; returns the status code and the body.
fn post(port: u16, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn http_serves_loopback_and_checks_host_and_origin() {
    let server = start(&["--db", ":memory:"]);
    let (status, body) = post(server.port, &[], INITIALIZE);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"orchestration\""), "{body}");
    let (status, _) = post(server.port, &[("Host", "evil.example")], INITIALIZE);
    assert_eq!(status, 403, "a foreign Host is refused (DNS rebinding)");
    let (status, _) = post(
        server.port,
        &[("Origin", "http://evil.example")],
        INITIALIZE,
    );
    assert_eq!(status, 403, "a foreign Origin is refused");
    let (status, _) = post(
        server.port,
        &[("Origin", &format!("http://localhost:{}", server.port))],
        INITIALIZE,
    );
    assert_eq!(status, 200, "a loopback Origin is accepted");
}

#[test]
fn http_with_a_token_rejects_missing_and_wrong_tokens() {
    let server = start(&["--db", ":memory:", "--token", "s3cret"]);
    let (status, body) = post(server.port, &[], INITIALIZE);
    assert_eq!(status, 401, "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{body}"
    );
    let (status, _) = post(
        server.port,
        &[("Authorization", "Bearer wrong")],
        INITIALIZE,
    );
    assert_eq!(status, 401);
    let (status, body) = post(
        server.port,
        &[("Authorization", "Bearer s3cret")],
        INITIALIZE,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case_and_the_token_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice={ALICE}\n")).unwrap();
    let server = start(&[
        "--db",
        ":memory:",
        "--token",
        "s3cret",
        "--agent-tokens",
        tokens.to_str().unwrap(),
    ]);
    let alice = format!("bearer {ALICE}");
    let cases: [(&str, u16); 16] = [
        ("Bearer s3cret", 200),
        ("bearer s3cret", 200),
        ("BEARER s3cret", 200),
        ("bEaReR s3cret", 200),
        ("Bearer    s3cret", 200),
        ("bearer\ts3cret", 200),
        ("bearer \t s3cret", 200),
        (&alice, 200),
        // The token itself is compared exactly.
        ("bearer wrong", 401),
        ("bearer S3CRET", 401),
        ("BEARER s3cre", 401),
        ("bearer s3cret-and-more", 401),
        // Another scheme, no separator, or no token at all.
        ("Basic s3cret", 401),
        ("Bearers3cret", 401),
        ("bearer", 401),
        ("s3cret", 401),
    ];
    for (authorization, expected) in cases {
        let (status, body) = post(server.port, &[("Authorization", authorization)], INITIALIZE);
        assert_eq!(status, expected, "{authorization:?}: {body}");
    }
}

#[test]
fn deleting_a_session_answers_204_and_the_session_is_gone() {
    let server = start(&["--db", ":memory:", "--token", "s3cret"]);
    let mut session = Session::open(server.port, Some("s3cret")).unwrap();
    session.call("workflow_status", json!({})).unwrap();
    // The layer that answers DELETE leaves rmcp's 202 to a POSTed notification alone.
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = session.exchange("POST", &notification.to_string()).unwrap();
    assert_eq!(response.status, 202, "{}", response.head);
    let response = session.exchange("DELETE", "").unwrap();
    assert_eq!(response.status, 204, "{}", response.head);
    assert!(response.body.is_empty());
    // The session really ended: the spec says a request naming it gets 404.
    let error = session.call("workflow_status", json!({})).unwrap_err();
    assert!(error.starts_with("HTTP 404"), "{error}");
    let response = session.exchange("GET", "").unwrap();
    assert_eq!(response.status, 404, "{}", response.head);
    // Ending a session needs the token like any other request.
    let mut other = Session::open(server.port, Some("s3cret")).unwrap();
    for authorization in [None, Some("bearer wrong")] {
        let (status, response) = delete(server.port, other.id(), authorization);
        assert_eq!(status, 401, "{authorization:?}: {response}");
    }
    other.call("workflow_status", json!({})).unwrap();
}

/// DELETEs the session `id` on a connection of its own, with `authorization` when given.
fn delete(port: u16, id: &str, authorization: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nMcp-Session-Id: {id}\r\n\
         Mcp-Protocol-Version: 2025-11-25\r\nConnection: close\r\n"
    );
    if let Some(authorization) = authorization {
        request.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", ":memory:", "--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --token"), "{stderr}");
    // A bind address that is not an address at all is refused by the argument parser.
    let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", ":memory:", "--http", "example.com:80"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn beyond_loopback_the_named_hosts_are_accepted_and_others_refused() {
    let server = start(&[
        "--db",
        ":memory:",
        "--http",
        "0.0.0.0:0",
        "--token",
        "s3cret-s3cret",
        "--allowed-hosts",
        "orchestration.test",
    ]);
    let auth = ("Authorization", "Bearer s3cret-s3cret");
    let named = format!("orchestration.test:{}", server.port);
    let (status, body) = post(server.port, &[("Host", &named), auth], INITIALIZE);
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        server.port,
        &[("Host", &format!("other.test:{}", server.port)), auth],
        INITIALIZE,
    );
    assert_eq!(status, 403);
    let (status, _) = post(server.port, &[("Host", &named)], INITIALIZE);
    assert_eq!(status, 401, "the token is still needed");
}

#[test]
fn an_unknown_toolset_is_a_clear_startup_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", ":memory:", "--toolsets", "workflow,bogus"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown toolset `bogus`"), "{stderr}");
}

/// Sends one request on a connection of its own, which the server closes after the reply;
/// returns the status, the response head and the body.
fn exchange(port: u16, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "POST /mcp HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    // A server refusing a body may answer and close before reading all of it, so a failed
    // write is not an error here: the answer is read all the same.
    let _ = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()));
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";
const OPERATOR: &str = "operator-token-0123456789";

fn with_agent_tokens(dir: &std::path::Path) -> HttpServer {
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        format!("# agent=token\nalice={ALICE}\n\nbob = {BOB}\n"),
    )
    .unwrap();
    start(&[
        "--db",
        ":memory:",
        "--token",
        OPERATOR,
        "--agent-tokens",
        tokens.to_str().unwrap(),
    ])
}

#[test]
fn an_agent_token_lets_its_holder_act_only_as_that_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_agent_tokens(dir.path());
    let mut alice = Session::open(server.port, Some(ALICE)).unwrap();
    let mut bob = Session::open(server.port, Some(BOB)).unwrap();
    let mut operator = Session::open(server.port, Some(OPERATOR)).unwrap();
    assert!(Session::open(server.port, Some("not-a-known-token-at-all")).is_err());
    assert!(Session::open(server.port, None).is_err());

    for (session, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        session
            .call(
                "agent_profile",
                json!({"action": "upsert", "name": name, "capabilities": {"rust": 3}}),
            )
            .unwrap();
    }
    alice
        .call(
            "workflow_create",
            json!({"name": "w", "mode": "parallel",
                   "tasks": [{"key": "a", "title": "A"}, {"key": "b", "title": "B"}]}),
        )
        .unwrap();
    let claim = bob.call("task_claim", json!({"agent": "bob"})).unwrap();
    let (task, token) = (
        claim["task"]["task"].as_str().unwrap().to_owned(),
        claim["token"].as_u64().unwrap(),
    );
    bob.call(
        "agent_collaboration",
        json!({"action": "lock", "agent": "bob", "resource": "src/lib.rs"}),
    )
    .unwrap();
    alice
        .call(
            "agent_collaboration",
            json!({"action": "message", "agent": "alice", "to": "bob", "note": "hi"}),
        )
        .unwrap();

    // Alice, holding bob's task id and token, can do nothing as bob.
    let as_bob = [
        ("task_claim", json!({"agent": "bob"})),
        (
            "task_update",
            json!({"task": task, "agent": "bob", "token": token, "action": "complete"}),
        ),
        (
            "task_update",
            json!({"task": task, "agent": "bob", "token": token, "action": "release"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "handoff", "agent": "bob", "task": task, "token": token, "to": "alice"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "unlock", "agent": "bob", "resource": "src/lib.rs"}),
        ),
        (
            "agent_collaboration",
            json!({"action": "inbox", "agent": "bob", "ack": true}),
        ),
        (
            "agent_collaboration",
            json!({"action": "ack", "agent": "bob", "ids": [1]}),
        ),
        (
            "agent_collaboration",
            json!({"action": "message", "agent": "bob", "to": "alice", "note": "forged"}),
        ),
        (
            "agent_profile",
            json!({"action": "set_status", "name": "bob", "status": "paused"}),
        ),
        ("agent_workload", json!({"apply": true})),
        // Sprints commit the whole team's work: only the shared token changes them.
        (
            "sprint_planning",
            json!({"action": "start", "name": "s", "start": "2026-03-02", "end": "2026-03-13",
                   "members": [{"agent": "alice"}]}),
        ),
        ("sprint_retrospective", json!({"name": "s", "close": true})),
    ];
    for (tool, arguments) in as_bob {
        let error = alice.call(tool, arguments.clone()).unwrap_err();
        assert!(
            error.contains("not authorised"),
            "{tool} {arguments}: {error}"
        );
    }
    // Nothing changed: bob still holds his task, his lock and his unread message.
    let status = operator
        .call("workflow_status", json!({"workflow": "w"}))
        .unwrap();
    assert_eq!(status["running"][0]["agent"], json!("bob"), "{status}");
    let locks = operator
        .call("agent_collaboration", json!({"action": "locks"}))
        .unwrap();
    assert_eq!(locks["locks"][0]["owner"], json!("bob"));
    let inbox = bob
        .call(
            "agent_collaboration",
            json!({"action": "inbox", "agent": "bob"}),
        )
        .unwrap();
    assert_eq!(inbox["messages"].as_array().unwrap().len(), 1);

    // A dry run of a plan changes nothing, so an agent may make one.
    alice
        .call(
            "sprint_planning",
            json!({"action": "plan", "name": "s", "start": "2026-03-02", "end": "2026-03-13",
                   "members": [{"agent": "alice"}]}),
        )
        .unwrap();

    // Each acts as itself; the operator's shared token may act for anyone.
    alice.call("task_claim", json!({"agent": "alice"})).unwrap();
    bob.call(
        "task_update",
        json!({"task": task, "agent": "bob", "token": token, "action": "complete"}),
    )
    .unwrap();
    operator
        .call(
            "agent_collaboration",
            json!({"action": "unlock", "agent": "bob", "resource": "src/lib.rs"}),
        )
        .unwrap();
}

#[test]
fn a_bad_agent_token_file_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("alice\n", "expected `agent=token`"),
        ("alice=short\n", "shorter than 16"),
        (
            "alice=aaaaaaaaaaaaaaaaaaaa\nbob=aaaaaaaaaaaaaaaaaaaa\n",
            "already another agent's",
        ),
    ] {
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
            .args([
                "--db",
                ":memory:",
                "--http",
                "127.0.0.1:0",
                "--agent-tokens",
            ])
            .arg(&tokens)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}

#[test]
fn an_oversized_request_is_refused_and_the_server_keeps_serving() {
    let server = start(&["--db", ":memory:"]);
    let mut session = Session::open(server.port, None).unwrap();
    // A workflow of a million tasks is far over the limit, and so is refused unread.
    let tasks: Vec<Value> = (0..1_000_000)
        .map(|i| json!({"key": format!("t{i}"), "title": "t"}))
        .collect();
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "workflow_create", "arguments": {"name": "huge", "tasks": tasks}}})
    .to_string();
    assert!(body.len() > orchestration_mcp::MAX_REQUEST_BYTES);
    let (status, _, _) = exchange(
        server.port,
        &[
            ("Mcp-Session-Id", session.id()),
            ("Mcp-Protocol-Version", "2025-11-25"),
        ],
        &body,
    );
    assert_eq!(status, 413, "a body over the limit is refused");
    session.call("workflow_status", json!({})).unwrap();
}
