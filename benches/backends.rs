//! SQLite and PostgreSQL side by side, in one run: claim+complete pairs per second with 1, 8
//! and 32 agents working at once (a thread each, each with its own store handle, as agents on
//! separate hosts would have), then claim and report latency (p50, p99) over HTTP with 32
//! sessions on the release server, and what a PostgreSQL commit costs on its own, which bounds
//! the throughput of serialised writers. The tables at the end compare each figure with its
//! target.
//!
//! PostgreSQL is the database `ORCHESTRATION_BENCH_POSTGRES` names (or, failing that,
//! `ORCHESTRATION_TEST_POSTGRES`), for example `postgres://postgres@127.0.0.1:5432/test`; each
//! measurement works in a schema of its own, dropped afterwards. Without either variable only
//! SQLite is measured.

#[path = "../orchestration-mcp/tests/it/http_client.rs"]
#[allow(dead_code, reason = "shared with the tests, which use the rest of it")]
mod http_client;

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestration_core::{
    AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskRef, TaskSpec, TaskUpdate,
    WorkflowSpec,
};
use serde_json::{Value, json};

use http_client::Session;
use support::percentile;

/// Concurrent agents of the pair benchmarks.
const AGENTS: [usize; 3] = [1, 8, 32];
/// Pairs of each fixed run behind the summary table.
const PAIRS: usize = 1_000;
/// Concurrent HTTP sessions.
const SESSIONS: usize = 32;
/// Claim-and-report rounds of each HTTP session.
const ROUNDS: usize = 40;

/// The engine under a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
    /// PostgreSQL with `synchronous_commit = off`: a commit returns before its WAL is flushed.
    /// Never how the store runs (an acknowledged change must be durable); measured only to
    /// show how much of a pair's time is the flush.
    PostgresWithoutFlushWait,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::PostgresWithoutFlushWait => "postgres*",
        }
    }
}

/// The PostgreSQL database the benchmarks may use, if any.
fn postgres_url() -> Option<String> {
    [
        "ORCHESTRATION_BENCH_POSTGRES",
        "ORCHESTRATION_TEST_POSTGRES",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
}

fn engines() -> Vec<Engine> {
    let mut engines = vec![Engine::Sqlite];
    if postgres_url().is_some() {
        engines.push(Engine::Postgres);
    } else {
        eprintln!("PostgreSQL is not measured: set ORCHESTRATION_BENCH_POSTGRES to a database URL");
    }
    engines
}

/// A fresh database of one engine: an SQLite file in a directory of its own, or a schema of
/// its own in the PostgreSQL database. Removed on drop.
struct Database {
    location: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl Database {
    fn new(engine: Engine) -> Database {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let location = dir.path().join("bench.db").to_str().unwrap().to_owned();
                Database {
                    location,
                    _dir: Some(dir),
                    schema: None,
                }
            }
            Engine::Postgres | Engine::PostgresWithoutFlushWait => {
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let base = postgres_url().expect("PostgreSQL is configured");
                let schema = format!(
                    "bench_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                side_connection(&base)
                    .batch_execute(&format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                    ))
                    .unwrap();
                let joiner = if base.contains('?') { '&' } else { '?' };
                let extra = if engine == Engine::PostgresWithoutFlushWait {
                    "%20-csynchronous_commit%3Doff"
                } else {
                    ""
                };
                Database {
                    location: format!("{base}{joiner}options=-csearch_path%3D{schema}{extra}"),
                    _dir: None,
                    schema: Some((base, schema)),
                }
            }
        }
    }

    fn open(&self) -> Store {
        Store::open(&self.location).expect("the database opens")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.schema {
            let _ = side_connection(base).batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

fn side_connection(base: &str) -> postgres::Client {
    postgres::Client::connect(base, postgres::NoTls).expect("PostgreSQL is reachable")
}

/// `agents` agents, each with a store handle of its own, on one database.
struct Team {
    // The handles close before their database is removed: fields drop in this order.
    stores: Vec<Store>,
    names: Vec<String>,
    workflows: usize,
    _database: Database,
}

impl Team {
    fn new(engine: Engine, agents: usize) -> Team {
        let database = Database::new(engine);
        let stores: Vec<Store> = (0..agents).map(|_| database.open()).collect();
        let names: Vec<String> = (0..agents).map(|i| format!("agent-{i}")).collect();
        for name in &names {
            stores[0]
                .upsert_agent(
                    name,
                    &AgentUpdate {
                        max_concurrent: Some(1_000),
                        ..AgentUpdate::default()
                    },
                )
                .unwrap();
        }
        Team {
            stores,
            names,
            workflows: 0,
            _database: database,
        }
    }

    /// A started workflow of `tasks` independent tasks; returns its name.
    fn workflow(&mut self, tasks: usize) -> String {
        self.workflows += 1;
        let name = format!("w{}", self.workflows);
        let spec = (0..tasks).fold(WorkflowSpec::new(&name, Mode::Parallel), |spec, i| {
            spec.task(TaskSpec::new(format!("t{i}"), "work"))
        });
        self.stores[0]
            .create_workflow(
                spec,
                &CreateOptions {
                    start: true,
                    idempotency_key: None,
                },
            )
            .unwrap();
        name
    }

    /// Every agent claims and completes tasks of `workflow` until none is left; returns the
    /// wall time and how many pairs were done.
    fn drain(&self, workflow: &str) -> (Duration, usize) {
        let start = Instant::now();
        let done: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .stores
                .iter()
                .zip(&self.names)
                .map(|(store, agent)| {
                    scope.spawn(move || {
                        let mut done = 0;
                        let request = ClaimRequest::new(agent.as_str()).in_workflow(workflow);
                        while let Some(claim) = store.claim(&request).unwrap().claimed() {
                            store
                                .update_task(
                                    &TaskRef::Id(claim.task.id),
                                    agent,
                                    claim.token,
                                    &TaskUpdate::Complete {
                                        result: None,
                                        actual: None,
                                    },
                                    None,
                                )
                                .unwrap();
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        (start.elapsed(), done)
    }
}

fn pairs(c: &mut Criterion) {
    let engines = engines();
    let mut group = c.benchmark_group("claim_complete_pairs");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let mut rows = Vec::new();
    for &agents in &AGENTS {
        for &engine in &engines {
            let mut team = Team::new(engine, agents);
            // Criterion's figure: time per pair with `agents` agents at once, so its
            // throughput is pairs per second. Each sample drains a workflow of its own size.
            group.bench_with_input(BenchmarkId::new(engine.name(), agents), &agents, |b, _| {
                b.iter_custom(|iters| {
                    let workflow = team.workflow(iters as usize);
                    let (wall, done) = team.drain(&workflow);
                    assert_eq!(done, iters as usize, "every task was done once");
                    wall
                })
            });
            let workflow = team.workflow(PAIRS);
            let (wall, done) = team.drain(&workflow);
            rows.push((engine, agents, done as f64 / wall.as_secs_f64()));
            drop(team);
        }
    }
    group.finish();
    if engines.contains(&Engine::Postgres) {
        let mut team = Team::new(Engine::PostgresWithoutFlushWait, 8);
        let workflow = team.workflow(PAIRS);
        let (wall, done) = team.drain(&workflow);
        rows.push((
            Engine::PostgresWithoutFlushWait,
            8,
            done as f64 / wall.as_secs_f64(),
        ));
    }

    println!("\nclaim+complete pairs per second (store API, {PAIRS} pairs per run)");
    println!(
        "{:<10} {:>7} {:>12} {:>22}",
        "backend", "agents", "pairs/s", "vs 1,000/s (8 agents)"
    );
    for (engine, agents, rate) in &rows {
        let target = if *agents == 8 {
            format!("{:.2}x", rate / 1_000.0)
        } else {
            String::new()
        };
        println!(
            "{:<10} {:>7} {:>12.0} {:>22}",
            engine.name(),
            agents,
            rate,
            target
        );
    }
    if engines.contains(&Engine::Postgres) {
        println!(
            "(postgres*: synchronous_commit = off, a diagnosis only: commits return before \
             their WAL is flushed)"
        );
        commit_latency();
    }
}

/// What one write transaction costs PostgreSQL here, apart from the store: the advisory lock
/// every writer takes, an insert, and the durable commit. Writers are serialised, so the sum of
/// a claim's and a report's transactions bounds the pairs per second of any number of agents.
fn commit_latency() {
    let database = Database::new(Engine::Postgres);
    let (base, schema) = database.schema.as_ref().unwrap();
    let mut client = side_connection(base);
    client
        .batch_execute(&format!(
            "SET search_path TO {schema}; CREATE TABLE scratch (id BIGINT)"
        ))
        .unwrap();
    let mut measure = |statements: &str| {
        let mut samples = Vec::new();
        for i in 0..500 {
            let start = Instant::now();
            client
                .batch_execute(&statements.replace("$i", &i.to_string()))
                .unwrap();
            samples.push(start.elapsed());
        }
        (
            percentile(&mut samples, 0.50),
            percentile(&mut samples, 0.99),
        )
    };
    let empty = measure("BEGIN; COMMIT");
    let write = measure(
        "BEGIN; SELECT pg_advisory_xact_lock(1, 2); INSERT INTO scratch VALUES ($i); COMMIT",
    );
    let unlogged = measure(
        "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(1, 2); \
         INSERT INTO scratch VALUES ($i); COMMIT",
    );
    let concurrent: Vec<(&str, f64)> = [
        ("8 connections, durable commits, no shared lock", false),
        ("8 connections, durable commits, one advisory lock", true),
    ]
    .into_iter()
    .map(|(what, shared)| (what, commits_per_second(base, schema, 8, shared)))
    .collect();
    println!("\nPostgreSQL transactions alone (500 each, one connection)");
    println!("{:<52} {:>9} {:>9}", "transaction", "p50", "p99");
    for (what, (p50, p99)) in [
        ("empty (BEGIN; COMMIT)", empty),
        ("advisory lock + insert + durable commit", write),
        ("the same without waiting for the WAL flush", unlogged),
    ] {
        println!(
            "{what:<52} {:>7.3}ms {:>7.3}ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    for (what, rate) in concurrent {
        println!("{what:<52} {rate:>7.0} commits/s");
    }
}

/// Durable commits per second of `connections` connections inserting at once, each commit
/// under one shared advisory lock when `shared_lock`, as the store's writers are. Without
/// the lock PostgreSQL flushes the WAL of several commits at once (group commit); with it the
/// commits, and their flushes, come one at a time.
fn commits_per_second(base: &str, schema: &str, connections: usize, shared_lock: bool) -> f64 {
    const EACH: usize = 100;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let mut client = side_connection(base);
                client
                    .batch_execute(&format!("SET search_path TO {schema}"))
                    .unwrap();
                let lock = if shared_lock {
                    "SELECT pg_advisory_xact_lock(1, 2);"
                } else {
                    ""
                };
                for i in 0..EACH {
                    client
                        .batch_execute(&format!(
                            "BEGIN; {lock} INSERT INTO scratch VALUES ({i}); COMMIT"
                        ))
                        .unwrap();
                }
            });
        }
    });
    (connections * EACH) as f64 / start.elapsed().as_secs_f64()
}

/// A release server process on `db`, killed on drop.
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

fn serve(binary: &Path, db: &str) -> Server {
    let (child, port) = support::spawn_http(binary, db);
    Server { child, port }
}

/// Claim and report latencies of 32 sessions working at once on `engine`, and the wall time.
fn http_latencies(binary: &Path, engine: Engine) -> (Vec<Duration>, Vec<Duration>, Duration) {
    let database = Database::new(engine);
    let server = serve(binary, &database.location);
    let mut sessions: Vec<(Session, String)> = (0..SESSIONS)
        .map(|i| {
            let mut session = Session::open(server.port, None).unwrap();
            let agent = format!("agent-{i}");
            session
                .call(
                    "agent_profile",
                    json!({"action": "upsert", "name": agent, "max_concurrent": 1000}),
                )
                .unwrap();
            (session, agent)
        })
        .collect();
    let tasks: Vec<Value> = (0..SESSIONS * ROUNDS)
        .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
        .collect();
    sessions[0]
        .0
        .call(
            "workflow_create",
            json!({"name": "load", "mode": "parallel", "tasks": tasks}),
        )
        .unwrap();
    let start = Instant::now();
    let timings: Vec<(Duration, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter_mut()
            .map(|(session, agent)| {
                scope.spawn(move || {
                    let mut timings = Vec::new();
                    for _ in 0..ROUNDS {
                        let started = Instant::now();
                        let claim = session
                            .call("task_claim", json!({"agent": agent, "workflow": "load"}))
                            .unwrap();
                        let claimed = started.elapsed();
                        assert_eq!(claim["claimed"], json!(true), "{claim}");
                        let started = Instant::now();
                        session
                            .call(
                                "task_update",
                                json!({"task": claim["task"]["task"], "agent": agent,
                                       "token": claim["token"], "action": "complete"}),
                            )
                            .unwrap();
                        timings.push((claimed, started.elapsed()));
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
    let wall = start.elapsed();
    drop(server);
    let (claims, reports) = timings.into_iter().unzip();
    (claims, reports, wall)
}

fn http(_: &mut Criterion) {
    let binary = support::binary();
    println!(
        "\nclaim and report over HTTP, {SESSIONS} sessions at once, {} pairs (release server)",
        SESSIONS * ROUNDS
    );
    println!(
        "{:<10} {:>9} {:>9} {:>10} {:>10} {:>9} {:>12}",
        "backend", "claim p50", "claim p99", "report p50", "report p99", "pairs/s", "vs 2/15 ms"
    );
    for engine in engines() {
        let (mut claims, mut reports, wall) = http_latencies(&binary, engine);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (c50, c99) = (percentile(&mut claims, 0.50), percentile(&mut claims, 0.99));
        let (r50, r99) = (
            percentile(&mut reports, 0.50),
            percentile(&mut reports, 0.99),
        );
        println!(
            "{:<10} {:>7.2}ms {:>7.2}ms {:>8.2}ms {:>8.2}ms {:>9.0} {:>5.2}x/{:.2}x",
            engine.name(),
            ms(c50),
            ms(c99),
            ms(r50),
            ms(r99),
            claims.len() as f64 / wall.as_secs_f64(),
            ms(c50) / 2.0,
            ms(c99) / 15.0
        );
    }
    println!("(the last column: claim p50 / 2 ms and claim p99 / 15 ms; at most 1 meets them)");
}

criterion_group!(backends, pairs, http);
criterion_main!(backends);
