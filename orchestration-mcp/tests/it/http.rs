//! The binary over streamable HTTP: it answers on loopback, checks Host and Origin, enforces
//! its bearer token, and refuses to listen beyond loopback without one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process on an ephemeral loopback port, killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> HttpServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", ":memory:", "--http", "127.0.0.1:0"])
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
    let port = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    HttpServer { child, port }
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
    let server = start(&[]);
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
    let server = start(&["--token", "s3cret"]);
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
fn listening_beyond_loopback_needs_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", ":memory:", "--http", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --token"), "{stderr}");
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
