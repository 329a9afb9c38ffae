//! The server's memory: its resident set (`VmRSS`, with the peak `VmHWM`, read from
//! `/proc/<pid>/status`) idle on a new and on an existing file database, around the report of a
//! 50,000-task workflow, and under 32 HTTP sessions of claims, completions and status reads,
//! sampled every 10 s for ten minutes. Prints each figure, the series and the verdict against
//! the target: at most 30 MB, and flat under load.
//!
//! Not a criterion benchmark, since what it measures is memory over minutes rather than time
//! per call: `cargo bench -p orchestration-benches --bench memory`. `MEMORY_BENCH_SECONDS`
//! sets the length of the loaded run (600 unless set), so that a change can be tried on a
//! shorter one first. Linux only, as it reads `/proc`.

#[path = "../orchestration-mcp/tests/it/http_client.rs"]
#[allow(dead_code, reason = "shared with the tests, which use the rest of it")]
mod http_client;

#[path = "support/mod.rs"]
#[allow(dead_code, reason = "shared with the benches that measure latency")]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use http_client::Session;

/// The target: the resident set stays at or under 30 MB (decimal), idle and under load.
const TARGET_BYTES: u64 = 30_000_000;

/// How much the highest sample of the loaded run's second half may exceed that of its first
/// half and still count as flat: 5 % of the target. A leak, or a cache that grows with the
/// calls served, shows as a second half higher than the first.
const FLAT_TOLERANCE_BYTES: u64 = TARGET_BYTES / 20;

/// Concurrent sessions in the loaded run.
const SESSIONS: usize = 32;

/// Tasks of the large workflow whose report is measured.
const BIG_WORKFLOW: usize = 50_000;

/// Tasks of each workflow the loaded run works through; the next is created when one runs dry.
const LOAD_WORKFLOW: usize = 5_000;

/// How often the loaded run is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// How long the server is left alone before an idle figure is read: longer than the
/// allocator's decay of unused pages (10 s, spread over a few more), so idle means settled.
const SETTLE: Duration = Duration::from_secs(20);

/// A server process, killed on drop.
struct Server {
    child: Child,
    port: Option<u16>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server over HTTP on an ephemeral loopback port, without a rate limit: 32 sessions
    /// from one address calling as fast as they can are far past the pace of agents.
    fn http(binary: &Path, db: &Path) -> Server {
        let (child, port) = support::spawn_http(binary, db.to_str().unwrap());
        Server {
            child,
            port: Some(port),
        }
    }

    /// The server over stdio, initialized, with its stdin kept open so that it stays up.
    fn stdio(binary: &Path, db: &Path) -> (Server, std::process::ChildStdin) {
        let mut child = Command::new(binary)
            .args(["--db", db.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        writeln!(stdin, "{}", http_client::INITIALIZE).unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"serverInfo\""), "{line}");
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        (Server { child, port: None }, stdin)
    }

    fn port(&self) -> u16 {
        self.port.expect("an HTTP server")
    }

    fn memory(&self) -> Memory {
        Memory::of(self.child.id())
    }
}

/// The resident set of a process now and at its peak, in bytes.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("/proc/<pid>/status is readable (Linux only)");
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in /proc/<pid>/status"));
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a number in `{line}`"));
            kib * 1024
        };
        Memory {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "OVER" }
}

/// One figure: what was measured, printed at once against the target.
fn report(what: &str, memory: Memory) -> bool {
    let ok = memory.rss <= TARGET_BYTES;
    println!(
        "{what:<58} rss {:>9}  peak {:>9}  {}",
        mb(memory.rss),
        mb(memory.hwm),
        verdict(ok)
    );
    ok
}

fn tasks(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
        .collect()
}

fn main() {
    let seconds: u64 = std::env::var("MEMORY_BENCH_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("MEMORY_BENCH_SECONDS is a number of seconds")
        })
        .unwrap_or(600);
    let binary = support::binary();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let mut all_ok = true;
    println!(
        "\nResident set of orchestration-mcp (target {})",
        mb(TARGET_BYTES)
    );

    {
        let (server, _stdin) = Server::stdio(&binary, &dir.path().join("stdio.db"));
        std::thread::sleep(SETTLE);
        all_ok &= report("stdio, new database, idle", server.memory());
    }
    {
        let server = Server::http(&binary, &db);
        let mut session = Session::open(server.port(), None).unwrap();
        std::thread::sleep(SETTLE);
        all_ok &= report("HTTP, new database, one session, idle", server.memory());
        session
            .call(
                "workflow_create",
                json!({"name": "big", "mode": "parallel", "tasks": tasks(BIG_WORKFLOW)}),
            )
            .unwrap();
        report(
            &format!("HTTP, just after creating a {BIG_WORKFLOW}-task workflow"),
            server.memory(),
        );
        std::thread::sleep(SETTLE);
        all_ok &= report("HTTP, idle after that", server.memory());
    }
    {
        let (server, _stdin) = Server::stdio(&binary, &db);
        std::thread::sleep(SETTLE);
        all_ok &= report(
            &format!("stdio, existing database ({BIG_WORKFLOW} tasks), idle"),
            server.memory(),
        );
    }
    let server = Server::http(&binary, &db);
    let mut session = Session::open(server.port(), None).unwrap();
    std::thread::sleep(SETTLE);
    all_ok &= report(
        &format!("HTTP, existing database ({BIG_WORKFLOW} tasks), idle"),
        server.memory(),
    );
    for detail in ["summary", "full"] {
        let start = Instant::now();
        session
            .call(
                "workflow_status",
                json!({"workflow": "big", "detail": detail}),
            )
            .unwrap();
        let took = start.elapsed();
        report(
            &format!("HTTP, just after workflow_status {detail} ({took:.0?})"),
            server.memory(),
        );
    }
    std::thread::sleep(SETTLE);
    all_ok &= report("HTTP, idle after those reports", server.memory());
    drop(session);

    all_ok &= under_load(&server, Duration::from_secs(seconds));
    println!(
        "\nverdict: {}",
        if all_ok {
            "within the target"
        } else {
            "over the target"
        }
    );
}

/// What the sessions of the loaded run share: the workflow they work on now, and the calls
/// they made.
struct Load {
    /// The number of the `load-N` workflow being worked on.
    current: Mutex<u64>,
    calls: AtomicU64,
    stop: AtomicBool,
}

/// Runs 32 sessions of claim, complete and status for `length`, sampling the server every
/// 10 s; prints the series and whether it stayed within the target and flat.
fn under_load(server: &Server, length: Duration) -> bool {
    println!(
        "\n{SESSIONS} HTTP sessions of task_claim, task_update complete and workflow_status \
         for {length:.0?}, sampled every {SAMPLE_EVERY:.0?}:"
    );
    let port = server.port();
    let mut first = Session::open(port, None).unwrap();
    first
        .call(
            "workflow_create",
            json!({"name": "load-0", "mode": "parallel", "tasks": tasks(LOAD_WORKFLOW)}),
        )
        .unwrap();
    let load = Load {
        current: Mutex::new(0),
        calls: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let mut sessions: Vec<(Session, String)> = (0..SESSIONS)
        .map(|i| {
            let mut session = Session::open(port, None).unwrap();
            let agent = format!("agent-{i}");
            session
                .call("agent_profile", json!({"action": "upsert", "name": agent}))
                .unwrap();
            (session, agent)
        })
        .collect();
    let start = Instant::now();
    let samples = std::thread::scope(|scope| {
        for (session, agent) in &mut sessions {
            let load = &load;
            scope.spawn(move || work(session, agent, load));
        }
        let mut samples: Vec<(Duration, Memory, u64)> = Vec::new();
        while start.elapsed() < length {
            let next = SAMPLE_EVERY * (samples.len() as u32 + 1);
            std::thread::sleep(next.saturating_sub(start.elapsed()));
            let sample = (
                start.elapsed(),
                server.memory(),
                load.calls.load(Ordering::Relaxed),
            );
            println!(
                "  {:>5.0?}  rss {:>9}  peak {:>9}  {:>9} calls",
                sample.0,
                mb(sample.1.rss),
                mb(sample.1.hwm),
                sample.2
            );
            samples.push(sample);
        }
        load.stop.store(true, Ordering::Relaxed);
        samples
    });
    let rss: Vec<u64> = samples.iter().map(|(_, m, _)| m.rss).collect();
    let half = rss.len() / 2;
    let max = rss.iter().copied().max().unwrap_or(0);
    let first_half = rss[..half.max(1)].iter().copied().max().unwrap_or(0);
    let second_half = rss[half..].iter().copied().max().unwrap_or(0);
    let growth = second_half.saturating_sub(first_half);
    let calls = samples.last().map_or(0, |s| s.2);
    let within = max <= TARGET_BYTES;
    let flat = growth <= FLAT_TOLERANCE_BYTES;
    println!(
        "series: start {}, max {}, end {}; highest of the second half {} over the first \
         (flat within {}); {calls} calls, {:.0} calls/s",
        mb(rss.first().copied().unwrap_or(0)),
        mb(max),
        mb(rss.last().copied().unwrap_or(0)),
        mb(growth),
        mb(FLAT_TOLERANCE_BYTES),
        calls as f64 / start.elapsed().as_secs_f64()
    );
    println!(
        "under load: max {} ({}), {}",
        mb(max),
        verdict(within),
        if flat { "flat" } else { "GROWING" }
    );
    within && flat
}

/// One session's loop: claim a task of the current workflow, complete it, read the
/// workflow's status. When the workflow runs dry, the first session to see it creates the
/// next one.
fn work(session: &mut Session, agent: &str, load: &Load) {
    while !load.stop.load(Ordering::Relaxed) {
        let number = *load.current.lock().unwrap();
        let workflow = format!("load-{number}");
        let claim = session
            .call("task_claim", json!({"agent": agent, "workflow": workflow}))
            .unwrap_or_else(|e| panic!("task_claim: {e}"));
        load.calls.fetch_add(1, Ordering::Relaxed);
        if claim["claimed"] != json!(true) {
            let mut current = load.current.lock().unwrap();
            if *current == number {
                session
                    .call(
                        "workflow_create",
                        json!({"name": format!("load-{}", number + 1), "mode": "parallel",
                               "tasks": tasks(LOAD_WORKFLOW)}),
                    )
                    .unwrap_or_else(|e| panic!("workflow_create: {e}"));
                *current = number + 1;
            }
            continue;
        }
        session
            .call(
                "task_update",
                json!({"task": claim["task"]["task"], "agent": agent, "token": claim["token"],
                       "action": "complete", "result": "ok"}),
            )
            .unwrap_or_else(|e| panic!("task_update: {e}"));
        session
            .call("workflow_status", json!({"workflow": workflow}))
            .unwrap_or_else(|e| panic!("workflow_status: {e}"));
        load.calls.fetch_add(2, Ordering::Relaxed);
    }
}
