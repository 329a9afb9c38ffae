//! MCP server benchmarks over stdio, with raw JSON-RPC lines on pipes so that only the server
//! is measured: process spawn to the `initialize` response (on a new and on an existing file
//! database), `tools/list`, and `workflow_create` (100 tasks), `task_claim` and `task_update`
//! round trips, whose p50 and p99 are printed as a table after criterion's means, with the
//! byte size of `tools/list`.
//!
//! The server's own time per call is measured by pipelining: a batch of requests is written
//! at once and the time until the last answer arrives, divided by the batch's size, is the
//! time the server spends on each, the client's round trip taken out.
//!
//! Targets on a 2-core machine: start <= 3 ms on an existing database; tools/list <= 1 ms;
//! claim and update <= 1 ms per round trip and <= 0.25 ms of the server's own time at p50;
//! tools/list at most 16 KB.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use support::percentile;

/// A server process and its pipes.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#;

/// Requests written at once when the server's own time is measured.
const BATCH: usize = 25;

impl Server {
    fn spawn(binary: &PathBuf, db: &Path) -> (Server, Duration) {
        let start = Instant::now();
        let mut child = Command::new(binary)
            .args(["--db", db.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        writeln!(stdin, "{INITIALIZE}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let elapsed = start.elapsed();
        assert!(line.contains("\"serverInfo\""), "{line}");
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        (
            Server {
                child,
                stdin,
                stdout,
                next_id: 1,
            },
            elapsed,
        )
    }

    /// One request's line, with the next id.
    fn line(&mut self, method: &str, params: Value) -> String {
        self.next_id += 1;
        let message =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        serde_json::to_string(&message).unwrap()
    }

    /// Sends one request and returns the parsed response and the round-trip time.
    fn request(&mut self, method: &str, params: Value) -> (Value, Duration) {
        let text = self.line(method, params);
        let start = Instant::now();
        writeln!(self.stdin, "{text}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let elapsed = start.elapsed();
        (serde_json::from_str(&line).unwrap(), elapsed)
    }

    fn call(&mut self, tool: &str, arguments: Value) -> (Value, Duration) {
        let (response, elapsed) =
            self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        assert_eq!(response["result"]["isError"], json!(false), "{response}");
        (response["result"]["structuredContent"].clone(), elapsed)
    }

    /// Writes every call at once, then reads their answers: the structured results in the
    /// order of the calls, and the time from the first write to the last answer.
    fn pipelined(&mut self, calls: Vec<(&str, Value)>) -> (Vec<Value>, Duration) {
        let first = self.next_id + 1;
        let mut text = String::new();
        for (tool, arguments) in calls {
            text.push_str(&self.line("tools/call", json!({"name": tool, "arguments": arguments})));
            text.push('\n');
        }
        let count = (self.next_id + 1 - first) as usize;
        let start = Instant::now();
        self.stdin.write_all(text.as_bytes()).unwrap();
        let mut results = vec![Value::Null; count];
        let mut line = String::new();
        for _ in 0..count {
            line.clear();
            self.stdout.read_line(&mut line).unwrap();
            let response: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(response["result"]["isError"], json!(false), "{response}");
            let at = response["id"].as_u64().unwrap() - first;
            results[at as usize] = response["result"]["structuredContent"].clone();
        }
        (results, start.elapsed())
    }

    /// Registers `agent` with room for `wip` tasks at once.
    fn register(&mut self, agent: &str, wip: u32) {
        self.call(
            "agent_profile",
            json!({"action": "upsert", "name": agent, "max_concurrent": wip}),
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workflow(name: &str, tasks: usize) -> Value {
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| {
            let deps: Vec<String> = if i > 0 {
                vec![format!("t{}", i / 2)]
            } else {
                vec![]
            };
            json!({"key": format!("t{i}"), "title": format!("task {i}"), "depends_on": deps})
        })
        .collect();
    json!({"name": name, "tasks": tasks})
}

/// A workflow of `tasks` independent tasks, all ready at once.
fn parallel(name: &str, tasks: usize) -> Value {
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| json!({"key": format!("t{i}"), "title": format!("task {i}")}))
        .collect();
    json!({"name": name, "mode": "parallel", "tasks": tasks})
}

/// A database file at the current schema, written once by a server that then exits.
fn existing_db(binary: &PathBuf, dir: &Path) -> PathBuf {
    let db = dir.join("existing.db");
    let (mut server, _) = Server::spawn(binary, &db);
    server.register("agent", 3);
    drop(server);
    db
}

/// The server's own time per claim and per complete, one sample per batch of [`BATCH`]
/// pipelined calls: claims of a batch first, then the reports of what they claimed.
fn server_time(server: &mut Server, batches: usize) -> (Vec<Duration>, Vec<Duration>) {
    let agent = "pipelined";
    server.register(agent, BATCH as u32);
    server.call("workflow_create", parallel("pipelined", batches * BATCH));
    let (mut claims, mut updates) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        let (claimed, took) =
            server.pipelined(vec![("task_claim", json!({"agent": agent})); BATCH]);
        claims.push(took / BATCH as u32);
        let reports = claimed
            .iter()
            .map(|claim| {
                (
                    "task_update",
                    json!({"task": claim["task"]["task"], "agent": agent, "token": claim["token"],
                           "action": "complete", "result": "ok"}),
                )
            })
            .collect();
        let (_, took) = server.pipelined(reports);
        updates.push(took / BATCH as u32);
    }
    (claims, updates)
}

fn benches(c: &mut Criterion) {
    let binary = support::binary();
    let dir = tempfile::tempdir().unwrap();
    let existing = existing_db(&binary, dir.path());

    let mut group = c.benchmark_group("mcp_stdio");
    group.sample_size(30);
    group.bench_function("spawn_to_initialize_file_db", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let (server, elapsed) =
                    Server::spawn(&binary, &dir.path().join(format!("start-{i}.db")));
                total += elapsed;
                drop(server);
            }
            total
        })
    });
    group.bench_function("spawn_to_initialize_existing_db", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| Server::spawn(&binary, &existing).1)
                .sum()
        })
    });
    let (mut server, _) = Server::spawn(&binary, &dir.path().join("warm.db"));
    group.bench_function("tools_list", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| server.request("tools/list", json!({})))
                .map(|(_, t)| t)
                .sum()
        })
    });
    group.finish();

    // Percentiles, which criterion's means do not show.
    let (listed, _) = server.request("tools/list", json!({}));
    let tools_list_bytes = serde_json::to_string(&listed["result"]).unwrap().len();
    let mut starts: Vec<Duration> = (0..30)
        .map(|i| Server::spawn(&binary, &dir.path().join(format!("p-{i}.db"))).1)
        .collect();
    let mut existing_starts: Vec<Duration> = (0..30)
        .map(|_| Server::spawn(&binary, &existing).1)
        .collect();
    let mut lists: Vec<Duration> = (0..2_000)
        .map(|_| server.request("tools/list", json!({})).1)
        .collect();
    let mut creates: Vec<Duration> = (0..200)
        .map(|i| {
            server
                .call("workflow_create", workflow(&format!("w{i}"), 100))
                .1
        })
        .collect();
    for i in 0..8 {
        server.register(&format!("agent-{i}"), 3);
    }
    let mut claims = Vec::new();
    let mut updates = Vec::new();
    for i in 0..2_000 {
        let agent = format!("agent-{}", i % 8);
        let (claim, took) = server.call("task_claim", json!({"agent": agent}));
        claims.push(took);
        let task = claim["task"]["task"].clone();
        let token = claim["token"].clone();
        let (_, took) = server.call(
            "task_update",
            json!({"task": task, "agent": agent, "token": token, "action": "complete", "result": "ok"}),
        );
        updates.push(took);
    }
    let (mut own_claims, mut own_updates) = server_time(&mut server, 80);
    println!(
        "\nMCP over stdio, file database ({} samples each; start: 30, create: 200; server's own \
         time: {} batches of {BATCH}):",
        claims.len(),
        own_claims.len()
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "operation", "p50", "p99", "target"
    );
    let rows: [(&str, &mut Vec<Duration>, &str); 8] = [
        ("spawn -> initialize (new database)", &mut starts, "-"),
        (
            "spawn -> initialize (existing database)",
            &mut existing_starts,
            "3 ms p50",
        ),
        ("tools/list", &mut lists, "1 ms"),
        ("workflow_create (100 tasks)", &mut creates, "-"),
        ("task_claim round trip", &mut claims, "1 ms p50"),
        (
            "task_update (complete) round trip",
            &mut updates,
            "1 ms p50",
        ),
        (
            "task_claim, server's own time",
            &mut own_claims,
            "0.25 ms p50",
        ),
        (
            "task_update, server's own time",
            &mut own_updates,
            "0.25 ms p50",
        ),
    ];
    for (name, samples, target) in rows {
        let p50 = percentile(samples, 0.50);
        let p99 = percentile(samples, 0.99);
        println!(
            "{name:<40} {:>8.3}ms {:>8.3}ms {target:>12}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!("tools/list result: {tools_list_bytes} bytes (target at most 16384)\n");
}

criterion_group!(mcp, benches);
criterion_main!(mcp);
