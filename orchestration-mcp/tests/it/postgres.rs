//! Real processes on one PostgreSQL database: HTTP servers on different ports and stdio
//! processes finish one workflow together with every task done exactly once; a task claimed
//! through one server is reported through another; servers killed with SIGKILL at random
//! moments lose no acknowledged change; and connections cut by the database server mid-work
//! (`pg_terminate_backend`) make calls retry or fail cleanly, never half-apply them.
//!
//! The database is named by `ORCHESTRATION_TEST_POSTGRES` (a URL such as
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in a schema of its own. Without
//! the variable the tests are skipped, except under `CI=true`, where they fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestration_core::{EventKind, Store, TaskState, WorkflowRef};
use serde_json::{Value, json};

use crate::crash::{self, Acknowledged, Rng};
use crate::http::{HttpServer, start};
use crate::http_client::Session;
use crate::processes::{Process, call, check_log_agrees, spawn};

/// The environment variable that names the PostgreSQL database the tests may use.
const POSTGRES_URL: &str = "ORCHESTRATION_TEST_POSTGRES";

/// Runs `f` on a thread of its own: the synchronous PostgreSQL client (under the tests' side
/// connections and the store) runs a runtime of its own, which cannot start on a thread that
/// drives the test's.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A schema of its own for one test, dropped when the test ends.
pub(crate) struct Database {
    base: String,
    schema: String,
}

impl Database {
    /// A fresh schema named after `test`, or `None` when no database is configured (a
    /// failure under CI).
    pub(crate) fn new(test: &str) -> Option<Database> {
        let base = match std::env::var(POSTGRES_URL) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("{POSTGRES_URL} must name a PostgreSQL database under CI")
            }
            _ => {
                eprintln!("skipping: set {POSTGRES_URL} to run the PostgreSQL tests");
                return None;
            }
        };
        let database = Database {
            base,
            schema: format!("it_{test}_{}", std::process::id()),
        };
        off_runtime(|| {
            database
                .client()
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
                    database.schema
                ))
                .expect("a schema for the test");
        });
        Some(database)
    }

    /// The URL the servers open: the schema first on the search path, and an application
    /// name by which the test finds the servers' connections and only theirs.
    pub(crate) fn url(&self) -> String {
        let joiner = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{joiner}options=-csearch_path%3D{}&application_name={}",
            self.base,
            self.schema,
            self.application_name()
        )
    }

    fn application_name(&self) -> String {
        self.schema.clone()
    }

    /// A side connection of the test's own.
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL}={} is unreachable: {e}", self.base))
    }
}

/// Ends every connection opened under `application_name`, through the side connection
/// `client`; returns how many it ended.
fn terminate_connections(client: &mut postgres::Client, application_name: &str) -> usize {
    let ended: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()) AS ended",
            &[&application_name],
        )
        .expect("terminating the servers' connections")
        .get(0);
    ended as usize
}

impl Drop for Database {
    fn drop(&mut self) {
        let (base, schema) = (&self.base, &self.schema);
        off_runtime(|| {
            if let Ok(mut client) = postgres::Client::connect(base, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        });
    }
}

/// A client of one server, whichever transport it speaks.
enum Client {
    Stdio(Process),
    Http(Session),
}

impl Client {
    /// Calls `tool`: the structured result, or the text of a tool or protocol error.
    async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, String> {
        match self {
            Client::Stdio(process) => call(&process.client, tool, arguments).await,
            // The HTTP client is blocking; the runtime has threads to spare for it.
            Client::Http(session) => tokio::task::block_in_place(|| session.call(tool, arguments)),
        }
    }

    async fn close(self) {
        if let Client::Stdio(process) = self {
            let _ = process.client.cancel().await;
        }
    }
}

/// Starts an HTTP server on the database at `url`, on an ephemeral port, without the rate
/// limit (many sessions of one address call as fast as they can).
fn http_server(url: &str) -> HttpServer {
    start(&["--db", url, "--rate-limit", "off"])
}

/// The log lines of `server` that report an error.
fn error_lines(server: &HttpServer) -> Vec<String> {
    server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("ERROR"))
        .cloned()
        .collect()
}

/// Tasks in the shared workflow of the load test.
const TASKS: usize = 2_000;
/// HTTP servers, each on its own port.
const HTTP_SERVERS: usize = 3;
/// Sessions on each HTTP server, one agent each.
const SESSIONS_PER_SERVER: usize = 2;
/// Stdio server processes, one client each.
const STDIO_PROCESSES: usize = 8;

/// What one client did.
#[derive(Debug, Default)]
struct Work {
    claims: Vec<(String, u64)>,
    completed: Vec<String>,
    errors: Vec<String>,
}

/// Claims and completes as `agent` until the workflow `load` is finished.
async fn drive(mut client: Client, agent: String) -> Work {
    let mut work = Work::default();
    client
        .call("agent_profile", json!({"action": "upsert", "name": agent}))
        .await
        .unwrap_or_else(|e| panic!("registering {agent}: {e}"));
    loop {
        let claim = match client
            .call("task_claim", json!({"agent": agent, "workflow": "load"}))
            .await
        {
            Ok(claim) => claim,
            Err(error) => {
                work.errors.push(error);
                continue;
            }
        };
        if claim["claimed"] != json!(true) {
            let status = client
                .call("workflow_status", json!({"workflow": "load"}))
                .await
                .unwrap_or_else(|e| panic!("status failed: {e}"));
            if status["workflow"]["status"] != json!("running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let task = claim["task"]["task"].as_str().unwrap().to_owned();
        let token = claim["token"].as_u64().unwrap();
        work.claims.push((task.clone(), token));
        let done = client
            .call(
                "task_update",
                json!({"task": task, "agent": agent, "token": token, "action": "complete",
                       "result": format!("done by {agent}")}),
            )
            .await;
        match done {
            Ok(_) => work.completed.push(task),
            Err(error) => work.errors.push(error),
        }
    }
    client.close().await;
    work
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_servers_and_stdio_processes_on_one_postgres_database_complete_every_task_once() {
    let Some(db) = Database::new("load") else {
        return;
    };
    let url = db.url();
    let servers: Vec<HttpServer> = (0..HTTP_SERVERS).map(|_| http_server(&url)).collect();
    let ports: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    assert_eq!(
        ports.len(),
        HTTP_SERVERS,
        "each server has a port of its own"
    );
    let mut clients = Vec::new();
    for server in &servers {
        for _ in 0..SESSIONS_PER_SERVER {
            clients.push(Client::Http(Session::open(server.port, None).unwrap()));
        }
    }
    for _ in 0..STDIO_PROCESSES {
        clients.push(Client::Stdio(spawn(Path::new(&url), &[]).await));
    }
    // The four-way tree of the SQLite test: readiness spreads through the run, so claims race
    // for ready tasks and for tasks another host's completion has just unblocked.
    let tasks: Vec<Value> = (0..TASKS)
        .map(|i| {
            let depends_on: Vec<String> = if i == 0 {
                vec![]
            } else {
                vec![format!("t{}", (i - 1) / 4)]
            };
            json!({"key": format!("t{i}"), "title": "work", "depends_on": depends_on})
        })
        .collect();
    clients[0]
        .call("workflow_create", json!({"name": "load", "tasks": tasks}))
        .await
        .unwrap();

    let started = Instant::now();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| tokio::spawn(drive(client, format!("agent-{i}"))))
        .collect();
    let mut works = Vec::new();
    for handle in handles {
        works.push(handle.await.unwrap());
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{HTTP_SERVERS} HTTP servers and {STDIO_PROCESSES} stdio processes completed {TASKS} \
         tasks on PostgreSQL in {elapsed:.1?}: {:.0} tasks/s",
        TASKS as f64 / elapsed.as_secs_f64()
    );

    let errors: Vec<&String> = works.iter().flat_map(|w| &w.errors).collect();
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
    for server in &servers {
        assert_eq!(
            error_lines(server),
            Vec::<String>::new(),
            "no server logged an error"
        );
    }
    let mut completed_by: HashMap<&str, usize> = HashMap::new();
    for (i, work) in works.iter().enumerate() {
        for task in &work.completed {
            assert!(
                completed_by.insert(task, i).is_none(),
                "{task} was completed twice"
            );
        }
    }
    assert_eq!(completed_by.len(), TASKS, "every task was completed");
    let claims: usize = works.iter().map(|w| w.claims.len()).sum();
    assert_eq!(claims, TASKS, "no task was claimed twice");
    // Every kind of client did a share of the work.
    assert!(
        works.iter().all(|w| !w.completed.is_empty()),
        "every client completed tasks: {:?}",
        works.iter().map(|w| w.completed.len()).collect::<Vec<_>>()
    );

    off_runtime(|| {
        let store = Store::open(&url).unwrap();
        let report = store.workflow_report(&WorkflowRef::from("load")).unwrap();
        assert_eq!(report.summary.status.to_string(), "succeeded");
        for task in &report.tasks {
            let key = format!("load/{}", task.key);
            assert_eq!(task.state, TaskState::Succeeded, "{key}");
            assert_eq!(task.attempt, 1, "{key} took one attempt");
            assert_eq!(
                task.result.as_deref(),
                Some(format!("done by agent-{}", completed_by[key.as_str()]).as_str()),
                "{key}: the stored result is the acknowledged one"
            );
        }
        check_log_agrees(&store, &report.tasks, &completed_by);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_claimed_through_one_server_is_reported_through_another() {
    let Some(db) = Database::new("across") else {
        return;
    };
    let url = db.url();
    let (first, second) = (http_server(&url), http_server(&url));
    let mut a = Client::Http(Session::open(first.port, None).unwrap());
    let mut b = Client::Http(Session::open(second.port, None).unwrap());
    let mut c = Client::Stdio(spawn(Path::new(&url), &[]).await);
    b.call(
        "workflow_create",
        json!({"name": "w", "tasks": [
            {"key": "first", "title": "First"},
            {"key": "second", "title": "Second", "depends_on": ["first"]}]}),
    )
    .await
    .unwrap();
    for agent in ["ann", "bob"] {
        c.call("agent_profile", json!({"action": "upsert", "name": agent}))
            .await
            .unwrap();
    }

    // Claimed through the first server, kept alive through the second, completed over stdio.
    let claim = a
        .call("task_claim", json!({"agent": "ann", "lease_seconds": 60}))
        .await
        .unwrap();
    assert_eq!(claim["task"]["task"], json!("w/first"));
    let token = claim["token"].clone();
    b.call(
        "task_update",
        json!({"task": "w/first", "agent": "ann", "token": token, "action": "heartbeat"}),
    )
    .await
    .unwrap();
    // Another agent cannot report on it anywhere, and a wrong token is refused everywhere.
    let error = c
        .call(
            "task_update",
            json!({"task": "w/first", "agent": "bob", "token": token, "action": "complete"}),
        )
        .await
        .unwrap_err();
    assert!(error.contains("is leased to `ann`"), "{error}");
    let error = b
        .call(
            "task_update",
            json!({"task": "w/first", "agent": "ann", "token": token.as_u64().unwrap() + 7,
                   "action": "complete"}),
        )
        .await
        .unwrap_err();
    assert!(
        error.contains("was never issued for task `w/first`"),
        "{error}"
    );
    c.call(
        "task_update",
        json!({"task": "w/first", "agent": "ann", "token": token, "action": "complete",
               "result": "done over stdio"}),
    )
    .await
    .unwrap();

    // The first server sees the completion and the task it unblocked at once.
    let status = a
        .call("workflow_status", json!({"workflow": "w"}))
        .await
        .unwrap();
    assert_eq!(
        status["workflow"]["counts"],
        json!({"ready": 1, "succeeded": 1}),
        "{status}"
    );
    // A late duplicate report through the first server changes nothing.
    let error = a
        .call(
            "task_update",
            json!({"task": "w/first", "agent": "ann", "token": token, "action": "complete"}),
        )
        .await
        .unwrap_err();
    assert!(error.contains("succeeded"), "{error}");

    // The unblocked task: claimed over stdio, completed through the second server.
    let claim = c.call("task_claim", json!({"agent": "bob"})).await.unwrap();
    assert_eq!(claim["task"]["task"], json!("w/second"));
    b.call(
        "task_update",
        json!({"task": "w/second", "agent": "bob", "token": claim["token"],
               "action": "complete", "result": "done over HTTP"}),
    )
    .await
    .unwrap();
    let status = a
        .call("workflow_status", json!({"workflow": "w"}))
        .await
        .unwrap();
    assert_eq!(status["workflow"]["status"], json!("succeeded"), "{status}");
    c.close().await;

    off_runtime(|| {
        let store = Store::open(&url).unwrap();
        let first_task = store.task(&"w/first".parse().unwrap()).unwrap();
        assert_eq!(first_task.result.as_deref(), Some("done over stdio"));
        let succeeded: Vec<String> = store
            .events_since(0, 1_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::TaskState && e.to == Some(TaskState::Succeeded))
            .filter_map(|e| e.task_key)
            .collect();
        assert_eq!(succeeded, ["first", "second"], "each task succeeded once");
    });
}

/// Kill-and-restart cycles of the PostgreSQL crash test.
const CRASH_CYCLES: usize = 6;
/// Servers running at once in each cycle, killed one after another.
const CRASH_SERVERS: usize = 3;
/// Claim-complete loops on each server.
const CRASH_LOOPS: usize = 2;
/// Tasks of the crash workflow: more than the cycles finish, so every kill lands mid-work.
const CRASH_TASKS: usize = 1_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_killed_at_random_moments_lose_no_acknowledged_change_on_postgres() {
    let Some(db) = Database::new("crash") else {
        return;
    };
    let url = db.url();
    let seed = std::env::var("ORCHESTRATION_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e5_u64);
    eprintln!("crash test seed {seed} (set ORCHESTRATION_CRASH_SEED to repeat another)");
    let mut rng = Rng(seed);
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let tasks: Vec<Value> = (0..CRASH_TASKS)
        .map(|i| json!({"key": format!("t{i}"), "title": "work", "max_attempts": 100}))
        .collect();
    let first = spawn(Path::new(&url), &[]).await;
    call(
        &first.client,
        "workflow_create",
        json!({"name": "crash", "mode": "parallel", "tasks": tasks}),
    )
    .await
    .unwrap();
    drop(first);

    for cycle in 0..CRASH_CYCLES {
        let mut servers = Vec::new();
        let mut loops = Vec::new();
        for s in 0..CRASH_SERVERS {
            let process = Arc::new(spawn(Path::new(&url), &[]).await);
            for l in 0..CRASH_LOOPS {
                loops.push(tokio::spawn(crash::work(
                    Arc::clone(&process),
                    format!("c{cycle}-s{s}-l{l}"),
                    Arc::clone(&acknowledged),
                )));
            }
            servers.push(process);
        }
        // Each server dies after a random amount of the cluster's work, and a random few
        // milliseconds more, so the kills land anywhere within a call, while the others work on.
        while !servers.is_empty() {
            let victim = servers.swap_remove(rng.below(servers.len() as u64) as usize);
            let started_with = acknowledged.lock().unwrap().completions.len();
            let target = 5 + rng.below(40) as usize;
            while acknowledged.lock().unwrap().completions.len() < started_with + target
                && !loops.iter().all(|l| l.is_finished())
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_micros(rng.below(5_000))).await;
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &victim.pid.to_string()])
                .status()
                .unwrap();
            assert!(killed.success(), "cycle {cycle}: the server was killed");
        }
        for handle in loops {
            handle.await.unwrap();
        }
        let tasks = off_runtime(|| crash::check(Path::new(&url), &acknowledged.lock().unwrap()));
        if cycle == CRASH_CYCLES - 1 {
            let open = tasks
                .iter()
                .filter(|t| t.state != TaskState::Succeeded)
                .count();
            assert!(open > 0, "work was left when the last kill came");
        }
    }

    // A last pair of servers, never killed, finish the work once the dead servers' leases
    // run out.
    let mut loops = Vec::new();
    for s in 0..2 {
        let process = Arc::new(spawn(Path::new(&url), &[]).await);
        for l in 0..CRASH_LOOPS {
            loops.push(tokio::spawn(crash::work(
                Arc::clone(&process),
                format!("final-s{s}-l{l}"),
                Arc::clone(&acknowledged),
            )));
        }
    }
    for handle in loops {
        handle.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap();
    assert_eq!(acknowledged.unexpected, Vec::<String>::new());
    let tasks = off_runtime(|| crash::check(Path::new(&url), &acknowledged));
    assert!(
        tasks.iter().all(|t| t.state == TaskState::Succeeded),
        "every task finished after the crashes"
    );
    eprintln!(
        "{} kills; {} task(s) were retried after a kill",
        CRASH_CYCLES * CRASH_SERVERS,
        tasks.iter().filter(|t| t.attempt > 1).count()
    );
}

/// Tasks of the lost-connection test.
const FAULT_TASKS: usize = 600;
/// Sessions on the HTTP server of the lost-connection test.
const FAULT_SESSIONS: usize = 3;
/// Stdio processes of the lost-connection test.
const FAULT_PROCESSES: usize = 2;
/// Completions acknowledged while connections are being cut; the rest run undisturbed.
const FAULT_COMPLETIONS: usize = 350;

/// Whether `error` is the clean failure of a call whose database connection was lost: a
/// JSON-RPC internal error that names no detail (the detail goes to the server's log).
fn is_clean_internal_error(error: &str) -> bool {
    error.contains("-32603") && error.contains("could not read or write its database")
}

/// What the clients of the lost-connection test saw.
#[derive(Debug, Default)]
struct Outcomes {
    /// Completions acknowledged, by task: the agent that reported.
    completed: HashMap<String, String>,
    /// Calls that failed with a clean internal error.
    clean_failures: usize,
    /// A complete that failed cleanly and whose retry found the task already succeeded: the
    /// first one landed, and was not applied again.
    landed_before_retry: Vec<String>,
    /// Anything else.
    unexpected: Vec<String>,
}

/// Claims and completes as `agent` until the workflow `cut` is finished; a complete that
/// failed cleanly is sent again, as a careful client would.
async fn drive_through_faults(mut client: Client, agent: String, outcomes: Arc<Mutex<Outcomes>>) {
    // Registering may itself meet a cut connection.
    loop {
        match client
            .call(
                "agent_profile",
                json!({"action": "upsert", "name": agent, "max_concurrent": 100}),
            )
            .await
        {
            Ok(_) => break,
            Err(e) if is_clean_internal_error(&e) => outcomes.lock().unwrap().clean_failures += 1,
            Err(e) => panic!("registering {agent}: {e}"),
        }
    }
    loop {
        let claim = client
            .call(
                "task_claim",
                json!({"agent": agent, "workflow": "cut", "lease_seconds": 2}),
            )
            .await;
        let claim = match claim {
            Ok(claim) => claim,
            Err(e) if is_clean_internal_error(&e) => {
                outcomes.lock().unwrap().clean_failures += 1;
                continue;
            }
            Err(e) => {
                outcomes.lock().unwrap().unexpected.push(e);
                continue;
            }
        };
        if claim["claimed"] != json!(true) {
            match client
                .call("workflow_status", json!({"workflow": "cut"}))
                .await
            {
                Ok(status) if status["workflow"]["status"] != json!("running") => break,
                Ok(_) => {}
                Err(e) if is_clean_internal_error(&e) => {
                    outcomes.lock().unwrap().clean_failures += 1;
                }
                Err(e) => outcomes.lock().unwrap().unexpected.push(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let task = claim["task"]["task"].as_str().unwrap().to_owned();
        let report = json!({"task": task, "agent": agent, "token": claim["token"],
                            "action": "complete", "result": agent});
        let mut failed_before = false;
        loop {
            match client.call("task_update", report.clone()).await {
                Ok(_) => {
                    let previous = outcomes
                        .lock()
                        .unwrap()
                        .completed
                        .insert(task.clone(), agent.clone());
                    assert!(previous.is_none(), "{task} was acknowledged twice");
                    break;
                }
                Err(e) if is_clean_internal_error(&e) => {
                    outcomes.lock().unwrap().clean_failures += 1;
                    failed_before = true;
                }
                Err(e) if failed_before && e.contains("succeeded") => {
                    outcomes
                        .lock()
                        .unwrap()
                        .landed_before_retry
                        .push(task.clone());
                    break;
                }
                // The two-second lease ran out on a slow machine and maybe another agent
                // took the task: the report is refused, which is the fence working.
                Err(e)
                    if e.contains("expired") || e.contains("stale") || e.contains("leased to") =>
                {
                    break;
                }
                Err(e) => {
                    outcomes.lock().unwrap().unexpected.push(e);
                    break;
                }
            }
        }
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_cut_mid_work_are_retried_or_fail_cleanly_and_never_half_apply() {
    let Some(db) = Database::new("cut") else {
        return;
    };
    let url = db.url();
    let server = http_server(&url);
    let mut clients = Vec::new();
    for _ in 0..FAULT_SESSIONS {
        clients.push(Client::Http(Session::open(server.port, None).unwrap()));
    }
    for _ in 0..FAULT_PROCESSES {
        clients.push(Client::Stdio(spawn(Path::new(&url), &[]).await));
    }
    let tasks: Vec<Value> = (0..FAULT_TASKS)
        .map(|i| json!({"key": format!("t{i}"), "title": "work", "max_attempts": 100}))
        .collect();
    // Nothing cuts connections yet.
    clients[0]
        .call(
            "workflow_create",
            json!({"name": "cut", "mode": "parallel", "tasks": tasks}),
        )
        .await
        .unwrap();

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(drive_through_faults(
                client,
                format!("agent-{i}"),
                Arc::clone(&outcomes),
            ))
        })
        .collect();
    // A side connection cuts the servers' connections at seeded random moments until enough
    // work has been acknowledged meanwhile; then the rest runs undisturbed.
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicUsize::new(0));
    let cutter = {
        let (stop, terminated) = (Arc::clone(&stop), Arc::clone(&terminated));
        let (base, application_name) = (db.base.clone(), db.application_name());
        std::thread::spawn(move || {
            let mut side = postgres::Client::connect(&base, postgres::NoTls).unwrap();
            let mut rng = Rng(0xc07);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5 + rng.below(40)));
                let ended = terminate_connections(&mut side, &application_name);
                terminated.fetch_add(ended, Ordering::Relaxed);
            }
        })
    };
    while outcomes.lock().unwrap().completed.len() < FAULT_COMPLETIONS
        && !handles.iter().all(|h| h.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    cutter.join().unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    let terminated = terminated.load(Ordering::Relaxed);
    eprintln!(
        "{terminated} connections cut; {} calls failed cleanly; {} completion(s) landed before \
         a retry",
        outcomes.clean_failures,
        outcomes.landed_before_retry.len()
    );
    assert!(terminated > 0, "connections were cut during the work");
    assert_eq!(outcomes.unexpected, Vec::<String>::new());

    // Nothing half-applied: every task succeeded once, the log agrees with the table, and
    // every acknowledged result is the stored one.
    off_runtime(|| {
        let store = Store::open(&url).unwrap();
        let report = store.workflow_report(&WorkflowRef::from("cut")).unwrap();
        assert_eq!(report.summary.status.to_string(), "succeeded");
        let mut replayed: BTreeMap<String, (TaskState, u32, usize, Option<String>)> =
            BTreeMap::new();
        let mut after = 0;
        loop {
            let events = store.events_since(after, 5_000).unwrap();
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in events
                .into_iter()
                .filter(|e| e.kind == EventKind::TaskState)
            {
                let key = event.task_key.clone().unwrap();
                let entry = replayed
                    .entry(key.clone())
                    .or_insert((TaskState::Pending, 0, 0, None));
                assert_eq!(event.from, Some(entry.0), "the events of {key} chain");
                entry.0 = event.to.unwrap();
                entry.1 = event.attempt.unwrap_or(0);
                if event.to == Some(TaskState::Succeeded) {
                    entry.2 += 1;
                    entry.3 = event.agent.clone();
                }
            }
        }
        assert_eq!(replayed.len(), FAULT_TASKS);
        for task in &report.tasks {
            let (state, attempt, successes, agent) = &replayed[&task.key];
            assert_eq!(*state, task.state, "{}", task.key);
            assert_eq!(*attempt, task.attempt, "{}", task.key);
            assert_eq!(*successes, 1, "{} succeeded once in the log", task.key);
            assert_eq!(agent.as_deref(), task.result.as_deref(), "{}", task.key);
            if let Some(acknowledged) = outcomes.completed.get(&format!("cut/{}", task.key)) {
                assert_eq!(
                    task.result.as_deref(),
                    Some(acknowledged.as_str()),
                    "{}",
                    task.key
                );
            }
        }
        for task in &outcomes.landed_before_retry {
            assert!(
                !outcomes.completed.contains_key(task),
                "{task} was acknowledged and also found done before its retry"
            );
        }
        // The store's counters agree with the rows they count.
        let counts = &report.summary.counts;
        assert_eq!(
            counts.get(&TaskState::Succeeded).copied(),
            Some(FAULT_TASKS as u64)
        );
    });
}

/// A stdio server on PostgreSQL that reaches the end of its input exits cleanly: its store,
/// dropped on the thread that drove the server, closes its connections without panicking.
#[test]
fn a_stdio_server_on_postgres_exits_cleanly_at_the_end_of_its_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let Some(db) = Database::new("clean_exit") else {
        return;
    };
    let mut server = Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["--db", &db.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"agent_profile","arguments":{"action":"upsert","name":"ana"}}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"task_claim","arguments":{"agent":"ana"}}}"#,
    ];
    {
        let mut stdin = server.stdin.take().expect("stdin");
        for request in requests {
            writeln!(stdin, "{request}").expect("the server reads");
        }
    }
    let out = server.wait_with_output().expect("the server ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}; stderr:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
    // Every request was answered before the end.
    assert_eq!(stdout.lines().count(), 3, "stdout:\n{stdout}");
}
