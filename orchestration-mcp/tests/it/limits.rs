//! Attacks on a real server process over loopback, each against the limit built for it:
//! abandoned sessions, half-open connections under a small file limit, a client flooding
//! requests, and a client that stops reading. Each must fail to take the server from a
//! well-behaved client; memory is read from the server's /proc status, and the numbers are
//! printed (run with `--nocapture` to see them).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{HttpServer, spawn, start};
use crate::http_client::{Connection, INITIALIZE, Session};
use crate::http_load::resident_bytes;

const MB: f64 = 1024.0 * 1024.0;

fn mb(bytes: u64) -> f64 {
    bytes as f64 / MB
}

/// Latencies of a well-behaved client, in milliseconds.
#[derive(Debug, Default)]
struct Latencies(Vec<f64>);

impl Latencies {
    fn record(&mut self, since: Instant) {
        self.0.push(since.elapsed().as_secs_f64() * 1000.0);
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }

    fn summary(&self) -> String {
        format!(
            "{} calls, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.0.len(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.max()
        )
    }
}

/// A well-behaved client in its own thread, calling a cheap tool on its session every 20 ms
/// until told to finish.
struct Bystander {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Latencies, String>>,
}

impl Bystander {
    fn start(port: u16) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut session = Session::open(port, None)?;
            let mut latencies = Latencies::default();
            while !stopped.load(Ordering::Relaxed) {
                let start = Instant::now();
                session.call("agent_profile", json!({"action": "list"}))?;
                latencies.record(start);
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(latencies)
        });
        Bystander { stop, thread }
    }

    /// Its latencies, or the first error it saw.
    fn finish(self) -> Result<Latencies, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Sums a `key=N` field over the server's log lines that contain `message`.
fn logged_total(server: &HttpServer, message: &str, key: &str) -> usize {
    let prefix = format!("{key}=");
    server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(message))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix(&prefix)?.parse::<usize>().ok())
        })
        .sum()
}

/// Waits until `condition` holds, for at most `limit`; whether it did.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

const ABANDONED: usize = 20_000;

#[test]
fn abandoned_sessions_expire_and_give_their_memory_back() {
    let server = start(&[
        "--db",
        ":memory:",
        "--session-idle",
        "3s",
        "--max-sessions",
        "25000",
        "--rate-limit",
        "off",
    ]);
    let pid = server.child.id();
    // Warm the server up with a few whole sessions, so that "before" is a server in use.
    for _ in 0..20 {
        let mut session = Session::open(server.port, None).unwrap();
        session
            .call("agent_profile", json!({"action": "list"}))
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(4));
    let before = resident_bytes(pid);

    let client = Bystander::start(server.port);
    let started = Instant::now();
    let threads = 4;
    let attackers: Vec<_> = (0..threads)
        .map(|_| {
            let port = server.port;
            std::thread::spawn(move || {
                let mut connection = Connection::open(port).unwrap();
                let mut ids = Vec::new();
                for _ in 0..ABANDONED / threads {
                    let response = connection.post(&[], INITIALIZE).unwrap();
                    assert_eq!(response.status, 200, "{}", response.body);
                    ids.push(header(&response.head, "mcp-session-id").unwrap().to_owned());
                }
                ids
            })
        })
        .collect();
    let ids: Vec<String> = attackers
        .into_iter()
        .flat_map(|a| a.join().unwrap())
        .collect();
    let attack_secs = started.elapsed().as_secs_f64();
    let during = resident_bytes(pid);
    assert_eq!(ids.len(), ABANDONED);

    // They expire 3 s after their last request, checked every 0.75 s.
    let expired = wait_for(Duration::from_secs(60), || {
        logged_total(&server, "closed idle MCP sessions", "closed") >= ABANDONED
    });
    assert!(
        expired,
        "only {} of {ABANDONED} abandoned sessions were closed",
        logged_total(&server, "closed idle MCP sessions", "closed")
    );
    // The allocator hands freed memory back to the system over some seconds.
    std::thread::sleep(Duration::from_secs(12));
    let mut after = resident_bytes(pid);
    wait_for(Duration::from_secs(20), || {
        after = resident_bytes(pid);
        after < before + 50 * 1024 * 1024
    });
    let latencies = client
        .finish()
        .expect("the well-behaved client, calling all along, kept its session");
    eprintln!(
        "{ABANDONED} abandoned sessions in {attack_secs:.1} s: resident memory {:.1} MB before, \
         {:.1} MB with them open, {:.1} MB after they expired; well-behaved client: {}",
        mb(before),
        mb(during),
        mb(after),
        latencies.summary()
    );
    assert!(
        after < before + 50 * 1024 * 1024,
        "memory went from {:.1} MB to {:.1} MB with the sessions open and stayed at {:.1} MB",
        mb(before),
        mb(during),
        mb(after)
    );
    // An expired session is gone: its id is refused like any unknown one.
    let mut connection = Connection::open(server.port).unwrap();
    let response = connection
        .post(
            &[
                ("Mcp-Session-Id", &ids[0]),
                ("Mcp-Protocol-Version", "2025-11-25"),
            ],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .unwrap();
    assert_eq!(response.status, 404, "{}", response.body);
}

#[test]
fn at_the_session_cap_initialize_gets_503_until_sessions_end_or_expire() {
    let server = start(&[
        "--db",
        ":memory:",
        "--max-sessions",
        "3",
        "--session-idle",
        "2s",
    ]);
    let mut sessions: Vec<Session> = (0..3)
        .map(|_| Session::open(server.port, None).unwrap())
        .collect();
    let mut connection = Connection::open(server.port).unwrap();
    let refused = connection.post(&[], INITIALIZE).unwrap();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(header(&refused.head, "retry-after"), Some("60"));
    assert!(
        refused.body.contains("maximum of 3 open MCP sessions"),
        "{}",
        refused.body
    );
    // The open sessions are untouched by the refusal.
    sessions[0]
        .call("agent_profile", json!({"action": "list"}))
        .unwrap();
    // A request that needs no session (the stateless 2026-07-28 protocol) is still served.
    let discover = connection
        .post(
            &[
                ("Mcp-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "server/discover"),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"0"}}}}"#,
        )
        .unwrap();
    assert_eq!(discover.status, 200, "{}", discover.body);

    // Ending a session makes room at once.
    let ended = sessions.pop().unwrap();
    let deleted = Connection::open(server.port)
        .unwrap()
        .request(
            "DELETE",
            &[
                ("Mcp-Session-Id", ended.id()),
                ("Mcp-Protocol-Version", "2025-11-25"),
            ],
            "",
        )
        .unwrap();
    assert_eq!(deleted.status, 204);
    let again = connection.post(&[], INITIALIZE).unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(connection.post(&[], INITIALIZE).unwrap().status, 503);

    // Idle sessions expiring make room too.
    let room = wait_for(Duration::from_secs(10), || {
        Connection::open(server.port)
            .unwrap()
            .post(&[], INITIALIZE)
            .unwrap()
            .status
            == 200
    });
    assert!(room, "the idle sessions never expired");
}

#[test]
fn an_open_stream_keeps_its_session_alive_while_an_idle_one_expires() {
    let server = start(&["--db", ":memory:", "--session-idle", "1s"]);
    let mut listening = Session::open(server.port, None).unwrap();
    let mut idle = Session::open(server.port, None).unwrap();
    // The notification stream: a GET on its own connection, left open and unread.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        stream,
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {}\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n",
        server.port,
        listening.id()
    )
    .unwrap();
    let mut head = [0; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    std::thread::sleep(Duration::from_secs(4));
    let gone = idle
        .exchange("POST", r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#)
        .unwrap();
    assert_eq!(gone.status, 404, "the idle session expired: {}", gone.body);
    listening
        .call("agent_profile", json!({"action": "list"}))
        .expect("the session with an open stream is alive");
    drop(stream);
}

/// Half-open connections the attack holds at once.
const HALF_OPEN: usize = 2_000;

#[test]
fn half_open_connections_under_a_small_file_limit_leave_others_served() {
    // The test itself holds every connection it opens.
    let own = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        own > HALF_OPEN as u64 + 200,
        "this test needs a file limit above {}; it has {own}",
        HALF_OPEN + 200
    );
    // Both limits at 1,024 for the server, set by the shell it is exec'd from.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "ulimit -n 1024 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_orchestration-mcp"),
    ]);
    let server = spawn(command, &["--db", ":memory:", "--header-timeout", "3s"]);
    let pid = server.child.id();
    let limits = server.log.lock().unwrap().clone();
    assert!(
        limits
            .iter()
            .any(|l| l.contains("HTTP limits") && l.contains("open_files=1024")),
        "the server runs under a 1,024 file limit: {limits:?}"
    );
    let mut session = Session::open(server.port, None).unwrap();
    session
        .call("agent_profile", json!({"action": "list"}))
        .unwrap();
    let before = resident_bytes(pid);

    // Each sends a request line and one header, and then nothing.
    let mut half_open = Vec::new();
    for _ in 0..HALF_OPEN {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        half_open.push(stream);
    }
    let during = resident_bytes(pid);

    // A newcomer is served at once, again and again, while the attack holds on.
    let mut latencies = Latencies::default();
    for _ in 0..10 {
        let start = Instant::now();
        let mut newcomer = Session::open(server.port, None).unwrap();
        newcomer
            .call("agent_profile", json!({"action": "list"}))
            .unwrap();
        latencies.record(start);
        // The attacker keeps opening connections in between.
        for _ in 0..50 {
            let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            stream
                .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            half_open.push(stream);
        }
    }
    // The server closed the oldest of them to make room, and the rest once their header
    // timeout ran out: every one ends.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closed = 0;
    for stream in &mut half_open {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut [0; 64]) {
            Ok(_) => closed += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    let after = resident_bytes(pid);
    eprintln!(
        "{} half-open connections under a 1,024 file limit: resident memory {:.1} MB before, \
         {:.1} MB during, {:.1} MB after; {closed} closed by the server; a newcomer's connect, \
         initialize and call: {}",
        half_open.len(),
        mb(before),
        mb(during),
        mb(after),
        latencies.summary()
    );
    assert_eq!(
        closed,
        half_open.len(),
        "every half-open connection was closed"
    );
    assert!(
        latencies.max() < 1000.0,
        "a newcomer waited {:.0} ms",
        latencies.max()
    );
    // And the server is none the worse for it.
    session
        .call("agent_profile", json!({"action": "list"}))
        .unwrap_or_else(|_| {
            // The old connection idled past its timeout; a new session is as good.
            Session::open(server.port, None)
                .unwrap()
                .call("agent_profile", json!({"action": "list"}))
                .unwrap()
        });
}

/// Agents working through the workflow while the flood runs.
const AGENTS: usize = 8;

/// One agent's loop until no task is left: claim, heartbeat, report. Its latencies, or the
/// first error.
fn work(session: &mut Session, agent: &str, workflow: &str) -> Result<Latencies, String> {
    let mut latencies = Latencies::default();
    loop {
        let start = Instant::now();
        let claim = session.call("task_claim", json!({"agent": agent, "workflow": workflow}))?;
        latencies.record(start);
        if claim["claimed"] != json!(true) {
            return Ok(latencies);
        }
        let (task, token) = (&claim["task"]["task"], &claim["token"]);
        for update in [
            json!({"action": "heartbeat"}),
            json!({"action": "complete", "result": "done"}),
        ] {
            let mut arguments = json!({"task": task, "agent": agent, "token": token});
            arguments
                .as_object_mut()
                .unwrap()
                .extend(update.as_object().unwrap().clone());
            let start = Instant::now();
            session.call("task_update", arguments)?;
            latencies.record(start);
        }
    }
}

/// Runs the agents through `workflow`; their latencies, together.
fn run_agents(port: u16, tokens: &[String], workflow: &str) -> Latencies {
    let handles: Vec<_> = tokens[..AGENTS]
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let (token, workflow) = (token.clone(), workflow.to_owned());
            std::thread::spawn(move || {
                let mut session = Session::open(port, Some(&token))?;
                work(&mut session, &format!("agent-{i}"), &workflow)
            })
        })
        .collect();
    let mut all = Latencies::default();
    for handle in handles {
        let latencies = handle
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("a well-behaved agent saw an error: {e}"));
        all.0.extend(latencies.0);
    }
    all
}

#[test]
fn a_flooding_client_gets_429_while_eight_agents_finish_their_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = (0..=AGENTS).map(|i| format!("token-{i:0>16}")).collect();
    let mut file = String::new();
    for (i, token) in tokens[..AGENTS].iter().enumerate() {
        file.push_str(&format!("agent-{i}={token}\n"));
    }
    file.push_str(&format!("flood={}\n", tokens[AGENTS]));
    let path = dir.path().join("agent-tokens");
    std::fs::write(&path, file).unwrap();
    let db = dir.path().join("flood.db");
    // The default rate limit: what protects the agents is what a server gets out of the box.
    let server = start(&[
        "--db",
        db.to_str().unwrap(),
        "--token",
        "operator-token-0123456789",
        "--agent-tokens",
        path.to_str().unwrap(),
    ]);
    let pid = server.child.id();
    let mut operator = Session::open(server.port, Some("operator-token-0123456789")).unwrap();
    for i in 0..AGENTS {
        operator
            .call(
                "agent_profile",
                json!({"action": "upsert", "name": format!("agent-{i}"), "max_concurrent": 1}),
            )
            .unwrap();
    }
    for name in ["calm", "flooded"] {
        let tasks: Vec<Value> = (0..200)
            .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
            .collect();
        operator
            .call(
                "workflow_create",
                json!({"name": name, "mode": "parallel", "tasks": tasks}),
            )
            .unwrap();
    }
    let calm = run_agents(server.port, &tokens, "calm");
    let before = resident_bytes(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, limited) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&limited));
            let (port, token) = (server.port, tokens[AGENTS].clone());
            std::thread::spawn(move || {
                let mut session = Session::open(port, Some(&token)).unwrap();
                // The cheapest request there is: the flood is about numbers, not work.
                let body = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
                let mut retry_after = None;
                while !stop.load(Ordering::Relaxed) {
                    let response = session.exchange("POST", body).unwrap();
                    match response.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => {
                            retry_after = header(&response.head, "retry-after").map(str::to_owned);
                            limited.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("the flood got {other}: {}", response.body),
                    };
                }
                retry_after
            })
        })
        .collect();
    // Long enough for the flood to spend its burst: from then on it is held to the limit.
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let flooded = run_agents(server.port, &tokens, "flooded");
    let flooded_secs = started.elapsed().as_secs_f64();
    let during = resident_bytes(pid);
    stop.store(true, Ordering::Relaxed);
    let retry_after: Vec<Option<String>> = flood.into_iter().map(|f| f.join().unwrap()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let after = resident_bytes(pid);

    let status = operator
        .call("workflow_status", json!({"workflow": "flooded"}))
        .unwrap();
    let (ok, limited) = (ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
    eprintln!(
        "flood: {ok} requests served and {limited} refused with 429 while {AGENTS} agents ran \
         200 tasks in {flooded_secs:.1} s; resident memory {:.1} MB before, {:.1} MB during, \
         {:.1} MB after; agents without the flood: {}; with it: {}",
        mb(before),
        mb(during),
        mb(after),
        calm.summary(),
        flooded.summary()
    );
    assert_eq!(
        status["workflow"]["status"],
        json!("succeeded"),
        "the agents finished the workflow: {status}"
    );
    assert!(limited > 0, "the flood was never refused");
    assert!(
        retry_after.iter().flatten().all(|s| s == "1"),
        "429 says when to retry: {retry_after:?}"
    );
    assert!(retry_after.iter().any(Option::is_some));
}

#[test]
fn a_client_that_stops_reading_is_cut_off_without_growing_memory() {
    let server = start(&[
        "--db",
        ":memory:",
        "--write-timeout",
        "2s",
        "--rate-limit",
        "off",
    ]);
    let pid = server.child.id();
    let mut setup = Session::open(server.port, None).unwrap();
    let tasks: Vec<Value> = (0..2_000)
        .map(|i| json!({"key": format!("t{i}"), "title": "a task with a title long enough"}))
        .collect();
    setup
        .call("workflow_create", json!({"name": "big", "tasks": tasks}))
        .unwrap();
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"workflow_status","arguments":{"workflow":"big","detail":"full","limit":500}}}"#;
    let reply = setup.exchange("POST", body).unwrap();
    assert_eq!(reply.status, 200);
    let reply_bytes = reply.head.len() + reply.body.len();
    let before = resident_bytes(pid);

    // The slow reader asks for the big status over and over on one connection, with a small
    // receive buffer, and reads none of it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], server.port)).into())
        .unwrap();
    let mut reader: TcpStream = socket.into();
    reader
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n\
         Mcp-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n\r\n{body}",
        server.port,
        setup.id(),
        body.len()
    );
    let mut sent = 0;
    while sent < 1_000 && reader.write_all(request.as_bytes()).is_ok() {
        sent += 1;
    }

    let client = Bystander::start(server.port);
    // Long enough for the server's buffers to fill and its write timeout (2 s) to run out.
    let mut during = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        during = during.max(resident_bytes(pid));
    }
    let latencies = client.finish().unwrap();

    // What the kernel's buffers held still arrives; then the connection ends. The wait is
    // generous because a loaded machine can take seconds to run the server's write timeout;
    // what is asserted is that the connection ends, not how fast.
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut received = 0usize;
    let mut buffer = vec![0; 1 << 16];
    let ended = loop {
        match reader.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let after = resident_bytes(pid);
    eprintln!(
        "slow reader: {sent} requests sent for replies of {reply_bytes} bytes; {:.1} MB \
         received before the server cut it off; resident memory {:.1} MB before, {:.1} MB \
         at most during, {:.1} MB after; well-behaved client: {}",
        received as f64 / MB,
        mb(before),
        mb(during),
        mb(after),
        latencies.summary()
    );
    assert!(
        ended,
        "the server closed the connection of the client that stopped reading"
    );
    assert!(
        received < sent * reply_bytes / 2,
        "the server stopped answering the client that stopped reading"
    );
    assert!(
        during < before + 50 * 1024 * 1024,
        "memory grew from {:.1} MB to {:.1} MB",
        mb(before),
        mb(during)
    );
}

#[test]
fn bad_limits_stop_the_server_at_start_with_a_clear_message() {
    let cases: [(&[&str], &str); 6] = [
        (&["--session-idle", "0s"], "a duration of zero"),
        (&["--session-idle", "30"], "`30` has no unit"),
        (&["--header-timeout", "5 weeks"], "not a unit of time"),
        (
            &["--rate-limit", "fast"],
            "not a number of requests per second, nor `off`",
        ),
        (&["--max-sessions", "0"], "must be at least 1"),
        (
            &["--max-connections", "100000000"],
            "is more than the open-file limit",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
            .args(["--db", ":memory:", "--http", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
