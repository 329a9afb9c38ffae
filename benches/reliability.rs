//! The MCP server over streamable HTTP under 32 concurrent sessions: criterion's time per
//! call at that concurrency (the inverse of throughput), then p50 and p99 latency per tool,
//! measured with every session busy, printed as a table.
//!
//! The release binary serves a file database on an ephemeral loopback port; each session has
//! its own keep-alive connection and runs a mix of claim and complete, status, inbox and
//! profile reads.

#[path = "../orchestration-mcp/tests/it/http_client.rs"]
#[allow(dead_code, reason = "shared with the tests, which use the rest of it")]
mod http_client;

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

use http_client::Session;
use support::percentile;

/// Concurrent sessions.
const SESSIONS: usize = 32;

/// A server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &std::path::Path, db: &std::path::Path) -> Server {
    let (child, port) = support::spawn_http(binary, db.to_str().unwrap());
    Server { child, port }
}

/// One round of a session's mix; each call's tool and latency go to `timings`.
fn round(session: &mut Session, agent: &str, timings: &mut Vec<(&'static str, Duration)>) {
    let mut timed = |tool: &'static str, arguments: Value| {
        let start = Instant::now();
        let result = session.call(tool, arguments);
        timings.push((tool, start.elapsed()));
        result.unwrap_or_else(|e| panic!("{tool}: {e}"))
    };
    let claim = timed("task_claim", json!({"agent": agent, "workflow": "load"}));
    if claim["claimed"] == json!(true) {
        timed(
            "task_update",
            json!({"task": claim["task"]["task"], "agent": agent, "token": claim["token"],
                   "action": "complete", "result": "ok"}),
        );
    }
    // The status of the 50,000-task workflow the sessions work on: the read that once held
    // every other read of the process up.
    timed("workflow_status", json!({"workflow": "load"}));
    timed(
        "agent_collaboration",
        json!({"action": "inbox", "agent": agent}),
    );
    timed("agent_profile", json!({"action": "get", "name": agent}));
}

/// Runs `rounds` rounds on every session at once; returns the wall time and every timing.
fn concurrently(
    sessions: &mut [(Session, String)],
    rounds: usize,
) -> (Duration, Vec<(&'static str, Duration)>) {
    let start = Instant::now();
    let timings = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter_mut()
            .map(|(session, agent)| {
                scope.spawn(move || {
                    let mut timings = Vec::new();
                    for _ in 0..rounds {
                        round(session, agent, &mut timings);
                    }
                    timings
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    (start.elapsed(), timings)
}

fn benches(c: &mut Criterion) {
    let binary = support::binary();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&binary, &dir.path().join("bench.db"));
    let mut sessions: Vec<(Session, String)> = (0..SESSIONS)
        .map(|i| {
            let mut session = Session::open(server.port, None).unwrap();
            let agent = format!("agent-{i}");
            session
                .call("agent_profile", json!({"action": "upsert", "name": agent}))
                .unwrap();
            (session, agent)
        })
        .collect();
    let tasks: Vec<Value> = (0..50_000)
        .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
        .collect();
    sessions[0]
        .0
        .call(
            "workflow_create",
            json!({"name": "load", "mode": "parallel", "tasks": tasks}),
        )
        .unwrap();

    let mut group = c.benchmark_group("http_32_sessions");
    group.sample_size(10);
    // Criterion's figure is wall time per round of the mix (four or five calls) with all 32
    // sessions running rounds at once.
    group.bench_function("mixed_round", |b| {
        b.iter_custom(|iters| {
            let rounds = (iters as usize).div_ceil(SESSIONS).max(1);
            let (wall, _) = concurrently(&mut sessions, rounds);
            wall.mul_f64(iters as f64 / (rounds * SESSIONS) as f64)
        })
    });
    group.finish();

    // One session alone first: the time each call takes without waiting for others.
    let (wall, timings) = concurrently(&mut sessions[..1], 200);
    table("1 session", wall, &timings);
    let (wall, timings) = concurrently(&mut sessions, 50);
    table(&format!("{SESSIONS} concurrent sessions"), wall, &timings);
}

/// Prints p50 and p99 per tool and over all calls.
fn table(title: &str, wall: Duration, timings: &[(&'static str, Duration)]) {
    let mut by_tool: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for (tool, took) in timings {
        by_tool.entry(tool).or_default().push(*took);
    }
    let all: Vec<Duration> = timings.iter().map(|(_, t)| *t).collect();
    println!(
        "\nMCP over HTTP, {title}, file database with a 50,000-task workflow: {} calls in \
         {:.2?} ({:.0} calls/s)",
        all.len(),
        wall,
        all.len() as f64 / wall.as_secs_f64()
    );
    println!("{:<22} {:>8} {:>10} {:>10}", "tool", "calls", "p50", "p99");
    let mut rows: Vec<(&str, Vec<Duration>)> = by_tool.into_iter().collect();
    rows.push(("all", all));
    for (tool, mut samples) in rows {
        let p50 = percentile(&mut samples, 0.50);
        let p99 = percentile(&mut samples, 0.99);
        println!(
            "{tool:<22} {:>8} {:>8.3}ms {:>8.3}ms",
            samples.len(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!();
}

criterion_group!(reliability, benches);
criterion_main!(reliability);
