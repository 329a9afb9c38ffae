//! Operator console benchmarks: the release binary's `console` serves a database holding a
//! workflow of 1,000 tasks (a binary tree, 10 stages, some of it done, some running) beside a
//! small one, a sprint and agents; each view is fetched over one keep-alive connection. Prints
//! each view's weight in bytes (the HTML; the stylesheet and script are fetched once and
//! cached) and p50/p99 of the full page fetch, after criterion's means.
//!
//! Target on a 2-core machine: the 1,000-task workflow page in well under a second (the issue
//! asks for under one second).

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use orchestration_core::store::{MemberSpec, SprintSpec};
use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskSpec, TaskUpdate, WorkflowSpec,
};
use support::percentile;

const VIEWS: [&str; 10] = [
    "/",
    "/workflows/big",
    "/workflows/big?task=t500",
    "/workflows/small",
    "/workflows/small/tasks/b",
    "/agents",
    "/agents/a1",
    "/collaboration",
    "/sprints/s1",
    "/events",
];

/// A database with the workflows, agents and sprint the views show.
fn populate(path: &std::path::Path) {
    let store = Store::open(path).unwrap();
    for agent in ["a1", "a2", "a3"] {
        store.upsert_agent(agent, &AgentUpdate::default()).unwrap();
    }
    let mut big = WorkflowSpec::new("big", Mode::Dag);
    for i in 0..1_000 {
        let task = TaskSpec::new(format!("t{i}"), format!("Task number {i}")).estimate(2.0);
        big = if i == 0 {
            big.task(task)
        } else {
            big.task(task.after([format!("t{}", (i - 1) / 2)]))
        };
    }
    let start = CreateOptions {
        start: true,
        ..CreateOptions::default()
    };
    store.create_workflow(big, &start).unwrap();
    let small = WorkflowSpec::new("small", Mode::Dag)
        .task(TaskSpec::new("a", "First"))
        .task(TaskSpec::new("b", "Second").after(["a"]))
        .task(TaskSpec::new("c", "Check").after(["b"]).gate());
    store.create_workflow(small, &start).unwrap();
    let sprint = SprintSpec::new(
        "s1",
        NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        NaiveDate::from_ymd_opt(2026, 1, 16).unwrap(),
    )
    .member(MemberSpec::new("a1"));
    store.create_sprint(&sprint).unwrap();
    // Some of the big workflow done, and a task of it running for each agent.
    for _ in 0..200 {
        let claim = store
            .claim(&ClaimRequest::new("a1"))
            .unwrap()
            .claimed()
            .unwrap();
        let done = TaskUpdate::Complete {
            result: Some("done".into()),
            actual: None,
        };
        store
            .update_task(&claim.task.id.into(), "a1", claim.token, &done, None)
            .unwrap();
    }
    for agent in ["a2", "a3"] {
        store.claim(&ClaimRequest::new(agent)).unwrap();
    }
}

struct Console {
    child: Child,
    port: u16,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &std::path::Path) -> Console {
    let mut child = Command::new(support::binary())
        .args([
            "--db",
            db.to_str().unwrap(),
            "console",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--rate-limit", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the console starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Console { child, port }
}

/// GETs `path` on a keep-alive connection: the body's length.
fn fetch(reader: &mut BufReader<TcpStream>, port: u16, path: &str) -> usize {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    reader.get_mut().write_all(request.as_bytes()).unwrap();
    let mut length = None;
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{path}: {status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
    let length = length.expect("pages are sent with their length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    length
}

fn console(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("console.db");
    populate(&db);
    let server = start(&db);
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream);
    let mut rows = Vec::new();
    for view in VIEWS {
        let bytes = fetch(&mut reader, server.port, view);
        let mut samples: Vec<Duration> = (0..30)
            .map(|_| {
                let started = Instant::now();
                fetch(&mut reader, server.port, view);
                started.elapsed()
            })
            .collect();
        rows.push((
            view,
            bytes,
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        ));
    }
    let assets: usize = ["/assets/console.css", "/assets/console.js"]
        .iter()
        .map(|path| fetch(&mut reader, server.port, path))
        .sum();
    let mut group = c.benchmark_group("console");
    group.sample_size(20);
    group.bench_function("workflow page, 1,000 tasks", |b| {
        b.iter(|| fetch(&mut reader, server.port, "/workflows/big"))
    });
    group.bench_function("overview", |b| {
        b.iter(|| fetch(&mut reader, server.port, "/"))
    });
    group.finish();
    println!(
        "\n{:<28} {:>9} {:>10} {:>10}",
        "view", "bytes", "p50", "p99"
    );
    for (view, bytes, p50, p99) in rows {
        println!("{view:<28} {bytes:>9} {p50:>10.2?} {p99:>10.2?}");
    }
    println!("stylesheet and script, once: {assets} bytes");
}

criterion_group!(benches, console);
criterion_main!(benches);
