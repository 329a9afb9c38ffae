//! Tests of what is particular to the SQLite backend: schema versions and migrations, prepared
//! statements, the per-agent records, a full disk, and the reader connection of a file. What
//! every backend must do is the semantics suite in the top-level `tests/`.

use chrono::{Duration, TimeZone, Utc};

use crate::{
    AgentUpdate, Claim, ClaimRequest, Clock, CreateOptions, Error, FailureKind, FailurePolicy,
    ManualClock, Mode, SCHEMA_VERSION, Store, TaskRef, TaskSpec, TaskState, TaskUpdate,
    WorkflowRef, WorkflowSpec,
};

struct Harness {
    store: Store,
    clock: ManualClock,
}

fn harness() -> Harness {
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    Harness {
        store: Store::open_in_memory().unwrap().with_clock(clock),
        clock: handle,
    }
}

/// Registers `agents` with the default profile: only registered agents take work.
fn register(store: &Store, agents: &[&str]) {
    for agent in agents {
        store.upsert_agent(agent, &AgentUpdate::default()).unwrap();
    }
}

fn task(key: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec::new(key, format!("do {key}")).after(deps.iter().copied())
}

fn started() -> CreateOptions {
    CreateOptions {
        start: true,
        idempotency_key: None,
    }
}

impl Harness {
    fn create(&self, name: &str, policy: FailurePolicy, tasks: Vec<TaskSpec>) {
        let spec = WorkflowSpec {
            name: name.into(),
            on_failure: policy,
            tasks,
            ..Default::default()
        };
        self.store.create_workflow(spec, &started()).unwrap();
    }

    /// Claims for `agent`, registering it first when nobody has: only registered agents
    /// take work, and most tests are about something else.
    fn claim(&self, agent: &str) -> Option<Claim> {
        self.register(agent);
        self.store
            .claim(&ClaimRequest::new(agent))
            .unwrap()
            .claimed()
    }

    /// Registers `agent` with the default profile unless it has one.
    fn register(&self, agent: &str) {
        if let Err(Error::UnknownAgent { .. }) = self.store.agent(agent) {
            self.store
                .upsert_agent(agent, &AgentUpdate::default())
                .unwrap();
        }
    }

    fn update_task(&self, claim: &Claim, agent: &str, report: TaskUpdate) -> crate::Result<()> {
        self.store
            .update_task(
                &TaskRef::Id(claim.task.id),
                agent,
                claim.token,
                &report,
                None,
            )
            .map(|_| ())
    }

    fn complete(&self, claim: &Claim, agent: &str) {
        self.update_task(
            claim,
            agent,
            TaskUpdate::Complete {
                result: Some(format!("{} done", claim.task.key)),
                actual: None,
            },
        )
        .unwrap();
    }

    fn fail(&self, claim: &Claim, agent: &str, kind: FailureKind) {
        self.update_task(
            claim,
            agent,
            TaskUpdate::Fail {
                error: "boom".into(),
                kind,
            },
        )
        .unwrap();
    }
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the database has schema version 99, newer than the {SCHEMA_VERSION} this build understands; upgrade orchestration"
        )
    );
}

/// A statement SQLite re-prepares on every run costs more than the rest of a claim; the query
/// planner stability guarantee set at open keeps the hot statements prepared once.
#[test]
fn hot_statements_are_prepared_once() {
    let h = harness();
    for name in ["p", "q"] {
        h.create(
            name,
            FailurePolicy::default(),
            (0..30).map(|i| task(&format!("t{i}"), &[])).collect(),
        );
    }
    for i in 0..20 {
        let workflow = if i % 2 == 0 { "p" } else { "q" };
        h.register(&format!("w{i}"));
        let claim = h
            .store
            .claim(&ClaimRequest::new(format!("w{i}")).in_workflow(workflow))
            .unwrap()
            .claimed()
            .unwrap();
        h.complete(&claim, &format!("w{i}"));
        let claim = h.claim(&format!("v{i}")).unwrap();
        h.complete(&claim, &format!("v{i}"));
    }
    let conn = h.store.sqlite().connection();
    let by_id = super::sql::task_by_id();
    let ready = super::sql::ready_in_workflow();
    let anywhere = super::sql::ready_anywhere();
    let delegated = super::sql::delegated_anywhere();
    for sql in [by_id, ready, anywhere, delegated] {
        let stmt = conn.prepare_cached(sql).unwrap();
        let runs = stmt.get_status(rusqlite::StatementStatus::Run);
        assert!(
            runs >= 20,
            "the statement under test ran ({runs} runs): {sql}"
        );
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

fn profile(skills: &[(&str, u8)], max: u32) -> AgentUpdate {
    AgentUpdate {
        capabilities: Some(skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()),
        max_concurrent: Some(max),
        ..AgentUpdate::default()
    }
}

fn record_of(h: &Harness, agent: &str) -> crate::agent::Record {
    let conn = h.store.sqlite().connection();
    super::agent::candidates(&*conn)
        .unwrap()
        .into_iter()
        .find(|c| c.profile.name == agent)
        .map(|c| c.record)
        .unwrap()
}

#[test]
fn agent_records_count_finished_attempts_but_not_releases() {
    let h = harness();
    h.store.upsert_agent("ana", &profile(&[], 5)).unwrap();
    h.create(
        "rec",
        FailurePolicy::default(),
        (0..4)
            .map(|i| task(&format!("t{i}"), &[]).estimate(2.0))
            .collect(),
    );
    let a = h.claim("ana").unwrap();
    h.update_task(
        &a,
        "ana",
        TaskUpdate::Complete {
            result: None,
            actual: Some(4.0),
        },
    )
    .unwrap();
    let b = h.claim("ana").unwrap();
    h.update_task(
        &b,
        "ana",
        TaskUpdate::Complete {
            result: None,
            actual: None,
        },
    )
    .unwrap();
    let c = h.claim("ana").unwrap();
    h.fail(&c, "ana", FailureKind::Transient);
    let d = h.claim("ana").unwrap();
    h.update_task(&d, "ana", TaskUpdate::Release).unwrap();
    let e = h
        .store
        .claim(&ClaimRequest::new("ana").lease(Duration::seconds(5)))
        .unwrap()
        .claimed()
        .unwrap();
    h.clock.advance(Duration::seconds(6));
    h.store.tick().unwrap();
    drop(e);
    let record = record_of(&h, "ana");
    assert_eq!(
        (record.succeeded, record.attempts),
        (2, 4),
        "2 successes, a failure, an expiry"
    );
    assert_eq!(record.log_ratio_count, 1);
    assert!(
        (record.log_ratio_sum - 2f64.ln()).abs() < 1e-12,
        "4 points spent on 2 estimated"
    );
}

#[test]
fn a_version_1_database_is_migrated_and_agent_records_backfilled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::sqlite::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO workflows (uuid, name, mode, on_failure, retry_initial_ms, retry_coefficient, retry_max_ms, status, open_tasks, created_at, fingerprint) \
             VALUES (x'00000000000000000000000000000001', 'old', 'dag', 'block_dependents', 1000, 2, 100000, 'succeeded', 0, 0, 0); \
             INSERT INTO tasks (uuid, workflow, key, title, estimate, priority, max_attempts, b_level, has_skills, is_leaf, unmet, state) \
             VALUES (x'00000000000000000000000000000002', 1, 'a', 'A', 2.0, 50, 3, 2.0, 0, 1, 0, 'succeeded'); \
             INSERT INTO events (at, kind, workflow, task, agent, from_state, to_state, attempt, value) VALUES \
             (1, 'task_state', 1, 1, 'old-agent', 'running', 'waiting_retry', 1, NULL), \
             (2, 'task_state', 1, 1, 'old-agent', 'running', 'succeeded', 2, 8.0); \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    store.upsert_agent("old-agent", &profile(&[], 1)).unwrap();
    let conn = store.sqlite().connection();
    let record = super::agent::candidates(&*conn).unwrap()[0].record;
    assert_eq!(
        (record.succeeded, record.attempts, record.log_ratio_count),
        (1, 2, 1)
    );
    assert!((record.log_ratio_sum - 4f64.ln()).abs() < 1e-12);
    // Version 4 learnt who finished each task from the log.
    let done_by: Option<String> = conn
        .query_row("SELECT done_by FROM tasks", [], |row| row.get(0))
        .unwrap();
    assert_eq!(done_by.as_deref(), Some("old-agent"));
}

#[test]
fn a_full_disk_is_named_changes_nothing_and_reads_still_work() {
    let h = harness();
    h.store
        .create_workflow(
            WorkflowSpec::new("small", Mode::Dag).task(task("a", &[])),
            &started(),
        )
        .unwrap();
    // SQLite reports a database that reached its page limit exactly as a full disk.
    let pages: i64 = h
        .store
        .sqlite()
        .connection()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    h.store
        .sqlite()
        .connection()
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let mut big = WorkflowSpec::new("big", Mode::Parallel);
    for i in 0..2_000 {
        big = big.task(TaskSpec::new(format!("t{i}"), "x".repeat(150)));
    }
    let events = h.store.events_since(0, 10_000).unwrap().len();
    let full = h.store.create_workflow(big, &started());
    assert!(matches!(full, Err(Error::DiskFull)), "{full:?}");
    assert!(full.unwrap_err().to_string().contains("disk"));
    assert_eq!(h.store.events_since(0, 10_000).unwrap().len(), events);
    assert!(h.store.workflow_summary(&WorkflowRef::from("big")).is_err());
    assert_eq!(h.store.workflows().unwrap().len(), 1, "reads still work");
}

/// A file database reads through its own connection; every read still sees each write the
/// moment the write returns, and a second handle on the file sees them too.
#[test]
fn reads_on_a_file_see_every_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.db");
    let store = Store::open(&path).unwrap();
    assert!(
        store.sqlite().reader().is_some(),
        "a file database has a reader"
    );
    store
        .create_workflow(
            WorkflowSpec::new("r", Mode::Dag)
                .task(task("a", &[]))
                .task(task("b", &["a"])),
            &started(),
        )
        .unwrap();
    register(&store, &["w"]);
    let other = Store::open(&path).unwrap();
    let state = |store: &Store, key: &str| {
        store
            .task(&TaskRef::key("r", key))
            .map(|view| view.state)
            .unwrap()
    };
    let claim = store
        .claim(&ClaimRequest::new("w"))
        .unwrap()
        .claimed()
        .unwrap();
    assert_eq!(state(&store, "a"), TaskState::Running);
    assert_eq!(state(&other, "a"), TaskState::Running);
    store
        .update_task(
            &TaskRef::Id(claim.task.id),
            "w",
            claim.token,
            &TaskUpdate::Complete {
                result: None,
                actual: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(
        (state(&store, "a"), state(&store, "b")),
        (TaskState::Succeeded, TaskState::Ready)
    );
    assert_eq!(
        store.events_since(0, 1_000).unwrap().len(),
        other.events_since(0, 1_000).unwrap().len()
    );
    assert!(Store::open_in_memory().unwrap().sqlite().reader().is_none());
}

#[test]
fn locations_are_shown_without_a_password() {
    let check = |location: &str, shown: &str| {
        assert_eq!(Store::shown(std::path::Path::new(location)), shown);
    };
    check(
        "postgres://me:secret@db:5432/orch",
        "postgres://me@db:5432/orch",
    );
    check("postgres://db/orch", "postgres://db/orch");
    check("postgresql://me@db/orch", "postgresql://me@db/orch");
    check("data/orchestration.db", "data/orchestration.db");
}

/// Opening a database whose schema is current writes nothing, so it needs no write lock: it
/// succeeds while another connection holds one, where a write would wait out the busy timeout
/// and fail.
#[test]
fn opening_a_current_database_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("current.db");
    drop(Store::open(&path).unwrap());
    let mut other = rusqlite::Connection::open(&path).unwrap();
    let writing = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.workflows().unwrap(), vec![]);
    writing.rollback().unwrap();
}

/// What a commit costs is mostly the pages it appends to the WAL, one write each, so each
/// page of a hot transaction is accounted for here. A claim writes the task's row, its entries
/// in the indexes of leases and deadlines and in both claim-order indexes, and the event with
/// its entry by task; a completion writes the row, the two lease entries, the agent's
/// aggregates, the workflow's count of open tasks, the event with its entry, the attempt
/// it ended, and the agent's summaries of the hour and the day (one page here, where the
/// table is small; two once the day's row and the hour's are far apart). Each also moves its task in the workflow's counts by state. Pages are counted as
/// the WAL's frames.
#[test]
fn a_claim_writes_eight_pages_and_a_completion_ten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.db");
    let store = Store::open(&path).unwrap();
    let spec = WorkflowSpec {
        name: "pairs".into(),
        mode: Mode::Parallel,
        tasks: (0..500)
            .map(|i| TaskSpec::new(format!("t{i}"), "work"))
            .collect(),
        ..WorkflowSpec::default()
    };
    let options = CreateOptions {
        start: true,
        idempotency_key: None,
    };
    store.create_workflow(spec, &options).unwrap();
    store
        .upsert_agent("agent", &AgentUpdate::default())
        .unwrap();
    let wal = path.with_extension("db-wal");
    let frames = || (std::fs::metadata(&wal).unwrap().len().saturating_sub(32)) / (4096 + 24);
    let done = TaskUpdate::Complete {
        result: None,
        actual: None,
    };
    let (mut claims, mut reports) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let before = frames();
        let claim = store.claim(&ClaimRequest::new("agent")).unwrap();
        let claim = claim.claimed().unwrap();
        let claimed = frames();
        store
            .update_task(
                &TaskRef::Id(claim.task.id),
                "agent",
                claim.token,
                &done,
                None,
            )
            .unwrap();
        claims.push(claimed - before);
        reports.push(frames() - claimed);
    }
    // A page that fills up splits now and then and adds one or two; the usual count is what
    // is pinned here.
    claims.sort_unstable();
    reports.sort_unstable();
    assert_eq!((claims[50], reports[50]), (8, 10), "{claims:?} {reports:?}");
}

/// The time an agent was last active is kept to within a second: later calls in the same
/// second leave it, the first call after it moves it.
#[test]
fn last_activity_is_kept_to_the_second() {
    let h = harness();
    h.create(
        "busy",
        FailurePolicy::default(),
        (0..3).map(|i| task(&format!("t{i}"), &[])).collect(),
    );
    let start = h.clock.now();
    let active = || h.store.agent("ana").unwrap().last_active_at;
    let first = h.claim("ana").unwrap();
    assert_eq!(active(), Some(start));
    h.clock.advance(Duration::milliseconds(999));
    h.complete(&first, "ana");
    assert_eq!(active(), Some(start));
    h.clock.advance(Duration::milliseconds(1));
    h.claim("ana").unwrap();
    assert_eq!(active(), Some(start + Duration::seconds(1)));
}

/// One step of a random history for the attempts property: which agent acts and how.
#[derive(Debug, Clone)]
enum Step {
    Claim(usize),
    Complete(usize, Option<u8>),
    Fail(usize, bool),
    Release(usize),
    /// Every lease runs out: the clock passes them and a tick takes the tasks back.
    Expire,
    Reestimate(usize, u8),
    Advance(u16),
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..4usize).prop_map(Step::Claim),
        3 => (0..4usize, proptest::option::of(1..9u8)).prop_map(|(a, x)| Step::Complete(a, x)),
        2 => (0..4usize, any::<bool>()).prop_map(|(a, r)| Step::Fail(a, r)),
        1 => (0..4usize).prop_map(Step::Release),
        1 => Just(Step::Expire),
        1 => (0..10usize, 0..9u8).prop_map(|(t, e)| Step::Reestimate(t, e)),
        3 => (0..90u16).prop_map(Step::Advance),
    ]
}

/// Plays `steps` on a file database of ten tasks, some with skills, four agents.
fn play(steps: &[Step]) -> (tempfile::TempDir, std::path::PathBuf, ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let store = Store::open(&path).unwrap().with_clock(clock);
    let tasks = (0..10)
        .map(|i| {
            let spec = TaskSpec::new(format!("t{i}"), "work")
                .estimate(f64::from(i % 4))
                .max_attempts(3);
            match i % 3 {
                0 => spec.skill("rust", 1),
                1 => spec.skill("rust", 1).skill("sql", 2),
                _ => spec,
            }
        })
        .collect();
    let mut spec = WorkflowSpec {
        name: "history".into(),
        mode: Mode::Parallel,
        tasks,
        ..WorkflowSpec::default()
    };
    spec.retry.initial_interval = Duration::seconds(1);
    spec.retry.max_interval = Duration::seconds(1);
    store.create_workflow(spec, &started()).unwrap();
    let agents = ["ann", "bob", "cat", "dan"];
    for agent in agents {
        store
            .upsert_agent(agent, &profile(&[("rust", 5), ("sql", 5)], 2))
            .unwrap();
    }
    let mut held: Vec<Vec<Claim>> = vec![Vec::new(); agents.len()];
    for step in steps {
        // Rejected steps (nothing to claim, a terminal task re-estimated) change nothing.
        match *step {
            Step::Claim(a) => {
                if let Ok(outcome) = store.claim(&ClaimRequest::new(agents[a]))
                    && let Some(claim) = outcome.claimed()
                {
                    held[a].push(claim);
                }
            }
            Step::Complete(a, _) | Step::Fail(a, _) | Step::Release(a) if !held[a].is_empty() => {
                let claim = held[a].remove(0);
                let report = match *step {
                    Step::Complete(_, actual) => TaskUpdate::Complete {
                        result: None,
                        actual: actual.map(f64::from),
                    },
                    Step::Fail(_, retryable) => TaskUpdate::Fail {
                        error: "broke".into(),
                        kind: if retryable {
                            FailureKind::Transient
                        } else {
                            FailureKind::Permanent
                        },
                    },
                    _ => TaskUpdate::Release,
                };
                let _ = store.update_task(
                    &TaskRef::Id(claim.task.id),
                    agents[a],
                    claim.token,
                    &report,
                    None,
                );
            }
            Step::Complete(..) | Step::Fail(..) | Step::Release(..) => {}
            Step::Expire => {
                handle.advance(Duration::minutes(16));
                store.tick().unwrap();
                held.iter_mut().for_each(Vec::clear);
            }
            Step::Reestimate(t, points) => {
                let task = TaskRef::Key {
                    workflow: WorkflowRef::from("history"),
                    key: format!("t{t}"),
                };
                let _ = store.reestimate(&task, f64::from(points));
            }
            Step::Advance(minutes) => {
                handle.advance(Duration::minutes(i64::from(minutes)));
                store.tick().unwrap();
            }
        }
    }
    (dir, path, handle)
}

/// Checks that the attempts the store keeps give the event log's attempts and performance,
/// over the whole history and over windows that cut through it.
pub(super) fn check_attempts_match_the_log(
    store: &Store,
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
) {
    let span = (end - start).num_minutes().max(1);
    let windows = [
        (start - Duration::minutes(1), end + Duration::minutes(1)),
        (start + Duration::minutes(span / 3), end),
        (
            start + Duration::minutes(span / 2),
            end - Duration::minutes(span / 4),
        ),
    ];
    for (from, to) in windows {
        if to <= from {
            continue;
        }
        let previous_from = from - (to - from);
        let (kept, logged) = store
            .read(|tx, _| {
                Ok((
                    super::performance::attempts_in(tx, previous_from, to)?,
                    super::performance::attempts_from_log(tx, previous_from, to)?,
                ))
            })
            .unwrap();
        let logged: Vec<_> = logged
            .into_iter()
            .filter(|a| a.ended_at > previous_from)
            .collect();
        assert_eq!(kept, logged, "attempts in ({from}, {to}]");
        assert_eq!(
            crate::agent::performance(&kept, from, to),
            crate::agent::performance(&logged, from, to)
        );
        crate::agent::summary::assert_agrees(
            &store.agent_performance(from, to, None).unwrap(),
            &crate::agent::performance(&logged, from, to),
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// The attempts kept as they end, and those rebuilt from the log by the migration to
    /// schema 8, are the ones the event log tells, with the same performance; the counts by
    /// state it rebuilds are the tasks'.
    #[test]
    fn kept_and_migrated_attempts_match_the_event_log(
        steps in proptest::collection::vec(step_strategy(), 1..80)
    ) {
        let (_dir, path, handle) = play(&steps);
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let end = handle.now();
        let (clock, _) = Clock::manual(end);
        let store = Store::open(&path).unwrap().with_clock(clock);
        check_attempts_match_the_log(&store, start, end);
        drop(store);
        // The same database as version 7 left it, then the migration.
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "DROP TABLE agent_summaries; DROP TABLE attempts; DROP TABLE task_counts; \
                 DROP INDEX tasks_blocked; \
                 PRAGMA user_version = 7;",
            )
            .unwrap();
        }
        let (clock, _) = Clock::manual(end);
        let store = Store::open(&path).unwrap().with_clock(clock);
        check_attempts_match_the_log(&store, start, end);
        // The counts by state were rebuilt from the tasks.
        let counted = store
            .read(|tx, _| {
                let row = super::refs::WorkflowRow::resolve(tx, &WorkflowRef::from("history"))?;
                super::workflow::summary_from_tasks(tx, &row)
            })
            .unwrap();
        let kept = store.workflow_summary(&WorkflowRef::from("history")).unwrap();
        proptest::prop_assert_eq!(kept, counted);
    }
}

/// One step of a random history for the overview property.
#[derive(Debug, Clone)]
enum Move {
    Claim(usize),
    Complete(usize),
    Fail(usize, bool),
    Release(usize),
    Expire,
    Approve(bool),
    Reestimate(usize),
    Action(crate::WorkflowAction),
    Advance(u16),
}

fn move_strategy() -> impl proptest::strategy::Strategy<Value = Move> {
    use crate::WorkflowAction;
    use proptest::prelude::*;
    prop_oneof![
        5 => (0..3usize).prop_map(Move::Claim),
        4 => (0..3usize).prop_map(Move::Complete),
        2 => (0..3usize, any::<bool>()).prop_map(|(a, r)| Move::Fail(a, r)),
        1 => (0..3usize).prop_map(Move::Release),
        1 => Just(Move::Expire),
        1 => any::<bool>().prop_map(Move::Approve),
        1 => (0..12usize).prop_map(Move::Reestimate),
        1 => prop_oneof![
            Just(WorkflowAction::Pause),
            Just(WorkflowAction::Resume),
            Just(WorkflowAction::RetryFailed),
            Just(WorkflowAction::Cancel),
        ]
        .prop_map(Move::Action),
        2 => (0..60u16).prop_map(Move::Advance),
    ]
}

/// A random workflow of twelve tasks (each may wait on earlier ones; some need skills, one is
/// a gate), `moves` played on it, and the overview checked against the whole report after each.
fn check_overview(policy: FailurePolicy, deps: &[u16], start: bool, moves: &[Move]) {
    use crate::WorkflowAction;
    use crate::workflow::GateDecision;
    let (clock, handle) = Clock::manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let store = Store::open_in_memory().unwrap().with_clock(clock);
    let tasks = (0..12)
        .map(|i| {
            let after: Vec<String> = (0..i)
                .filter(|j| deps[i] & (1 << j) != 0)
                .map(|j| format!("t{j}"))
                .collect();
            // Distinct powers of two: every path has its own length, so the critical path is
            // one, and the overview and the report must name the same tasks.
            let spec = TaskSpec::new(format!("t{i}"), "work")
                .estimate(f64::from(1u32 << i))
                .max_attempts(2)
                .after(after);
            match i {
                5 => spec.gate(),
                3 | 7 => spec.skill("rust", 3),
                9 => spec.skill("cobol", 5),
                _ => spec,
            }
        })
        .collect();
    let spec = WorkflowSpec {
        name: "w".into(),
        mode: Mode::Dag,
        on_failure: policy,
        tasks,
        ..WorkflowSpec::default()
    };
    let options = CreateOptions {
        start,
        idempotency_key: None,
    };
    store.create_workflow(spec, &options).unwrap();
    let agents = ["ann", "bob", "cat"];
    for agent in agents {
        store
            .upsert_agent(agent, &profile(&[("rust", 4)], 2))
            .unwrap();
    }
    let workflow = WorkflowRef::from("w");
    let key = |i: usize| TaskRef::Key {
        workflow: WorkflowRef::from("w"),
        key: format!("t{i}"),
    };
    let mut held: Vec<Vec<Claim>> = vec![Vec::new(); agents.len()];
    let mut reestimated = false;
    let check = |reestimated: bool| {
        let report = store.workflow_report(&workflow).unwrap();
        for shown in [3, 50] {
            let glance = store.workflow_overview(&workflow, shown).unwrap();
            let counted = store
                .read(|tx, _| {
                    let row = super::refs::WorkflowRow::resolve(tx, &workflow)?;
                    super::workflow::summary_from_tasks(tx, &row)
                })
                .unwrap();
            assert_eq!(glance.summary, counted, "the counts kept are the tasks'");
            assert_eq!(glance.summary, report.summary);
            assert_eq!(glance.progress, report.progress);
            let head = |n: usize| n.min(shown);
            assert_eq!(glance.ready, report.ready[..head(report.ready.len())]);
            assert_eq!(glance.ready_total, report.ready.len() as u64);
            assert_eq!(glance.leased, report.leased[..head(report.leased.len())]);
            assert_eq!(glance.leased_total, report.leased.len() as u64);
            assert_eq!(glance.blocked, report.blocked[..head(report.blocked.len())]);
            assert_eq!(glance.blocked_total, report.blocked.len() as u64);
            assert_eq!(
                glance.remaining_critical_path.length,
                report.remaining_critical_path.length
            );
            if !reestimated {
                assert_eq!(
                    glance.remaining_critical_path.keys,
                    report.remaining_critical_path.keys
                );
            }
            assert_eq!(glance.forecast_finish, report.forecast_finish);
        }
    };
    check(reestimated);
    for (n, step) in moves.iter().enumerate() {
        // Rejected moves change nothing; the check after each holds either way.
        match *step {
            Move::Claim(a) => {
                let request = ClaimRequest::new(agents[a]);
                if let Ok(outcome) = store.claim(&request)
                    && let Some(claim) = outcome.claimed()
                {
                    held[a].push(claim);
                }
            }
            Move::Complete(a) | Move::Fail(a, _) | Move::Release(a) if !held[a].is_empty() => {
                let claim = held[a].remove(0);
                let report = match *step {
                    Move::Complete(_) => TaskUpdate::Complete {
                        result: None,
                        actual: Some(2.0),
                    },
                    Move::Fail(_, transient) => TaskUpdate::Fail {
                        error: "broke".into(),
                        kind: if transient {
                            FailureKind::Transient
                        } else {
                            FailureKind::Permanent
                        },
                    },
                    _ => TaskUpdate::Release,
                };
                let _ = store.update_task(
                    &TaskRef::Id(claim.task.id),
                    agents[a],
                    claim.token,
                    &report,
                    None,
                );
            }
            Move::Complete(_) | Move::Fail(..) | Move::Release(_) => {}
            Move::Expire => {
                handle.advance(Duration::minutes(16));
                let _ = store.tick();
                held.iter_mut().for_each(Vec::clear);
            }
            Move::Approve(approve) => {
                let decision = if approve {
                    GateDecision::Approve
                } else {
                    GateDecision::Reject
                };
                let _ = store.decide_gate(&key(5), decision, None);
            }
            Move::Reestimate(i) => {
                let points = f64::from(1u32 << (12 + n % 2));
                reestimated |= store.reestimate(&key(i), points).is_ok();
            }
            Move::Action(action) => {
                let _ = store.execute(&workflow, action);
                if action == WorkflowAction::Cancel {
                    held.iter_mut().for_each(Vec::clear);
                }
            }
            Move::Advance(minutes) => {
                handle.advance(Duration::minutes(i64::from(minutes)));
                store.tick().unwrap();
            }
        }
        check(reestimated);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(48))]

    /// The overview, read from the counts and a few index ranges, says what the whole report
    /// says, list heads and totals, path and forecast, through any history.
    #[test]
    fn the_overview_says_what_the_report_says(
        policy in proptest::prop_oneof![
            proptest::strategy::Just(FailurePolicy::BlockDependents),
            proptest::strategy::Just(FailurePolicy::FailFast),
            proptest::strategy::Just(FailurePolicy::Continue),
        ],
        deps in proptest::collection::vec(0..4096u16, 12),
        start in proptest::prelude::any::<bool>(),
        moves in proptest::collection::vec(move_strategy(), 0..60),
    ) {
        check_overview(policy, &deps, start, &moves);
    }
}
