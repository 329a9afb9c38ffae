//! The sprint tools end to end: plan, start, work, scope changes, analytics with the text
//! chart and forecast, a retrospective that closes the sprint and carries work over, and a
//! specific error, with nothing written, for each kind of bad input.

use serde_json::{Value, json};

use crate::support::{Harness, harness};

async fn team(h: &Harness) {
    for (name, skills, ppd) in [
        ("ana", json!({"rust": 3}), 2.0),
        ("bo", json!({"docs": 3}), 1.0),
    ] {
        h.call(
            "agent_profile",
            json!({"action": "upsert", "name": name, "capabilities": skills, "points_per_day": ppd, "max_concurrent": 5}),
        )
        .await
        .ok();
    }
    h.call(
        "workflow_create",
        json!({"name": "proj", "tasks": [
            {"key": "a", "title": "A", "estimate": 3, "priority": 50, "skills": {"rust": 2}},
            {"key": "b", "title": "B", "estimate": 5, "priority": 60, "skills": {"rust": 2}, "depends_on": ["a"]},
            {"key": "c", "title": "C", "estimate": 2, "priority": 40, "skills": {"docs": 1}},
            {"key": "d", "title": "D", "estimate": 8, "priority": 80, "skills": {"rust": 5}},
            {"key": "g", "title": "G", "estimate": 2, "priority": 10}
        ]}),
    )
    .await
    .ok();
}

fn s1() -> Value {
    json!({
        "name": "s1", "start": "2026-03-02", "end": "2026-03-13", "focus_factor": 0.5,
        "commit": 10,
        "members": [{"agent": "ana"}, {"agent": "bo", "availability": 0.5, "days_off": ["2026-03-04"]}]
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

async fn complete(h: &Harness, agent: &str, task: &str, actual: f64) {
    let claim = h
        .call("task_claim", json!({"agent": agent, "task": task}))
        .await
        .ok();
    let token = claim.at("/token").as_u64().unwrap();
    h.clock.advance(chrono::Duration::minutes(10));
    h.call(
        "task_update",
        json!({"task": task, "agent": agent, "token": token, "action": "complete", "actual": actual}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn a_sprint_is_planned_started_tracked_and_closed_through_the_tools() {
    let h = harness().await;
    team(&h).await;

    let plan = h
        .call("sprint_planning", with(s1(), json!({"action": "plan"})))
        .await
        .ok();
    assert!(
        plan.text.starts_with("sprint `s1` (dry run, nothing saved): 3 tasks, 10.0 points of 12.2 capacity (10 working days, focus 0.50); 2 left out"),
        "{}",
        plan.text
    );
    assert_eq!(plan.at("/plan/capacity"), &json!(12.25));
    assert_eq!(
        plan.at("/plan/selected"),
        &json!(["proj/a", "proj/b", "proj/c"])
    );
    assert_eq!(plan.at("/plan/allocation/bo/tasks"), &json!(["proj/c"]));
    assert_eq!(plan.at("/plan/left_out/0/task"), &json!("proj/d"));
    assert_eq!(plan.at("/plan/saved"), &json!(false));
    let listed = h.call("sprint_analytics", json!({})).await.ok();
    assert_eq!(listed.at("/sprints"), &json!([]), "a dry run saves nothing");

    let started = h
        .call("sprint_planning", with(s1(), json!({"action": "start"})))
        .await
        .ok();
    assert_eq!(started.at("/sprint/status"), &json!("active"));
    assert_eq!(started.at("/sprint/committed"), &json!(10.0));
    let workload = h.call("agent_workload", json!({})).await.ok();
    assert_eq!(
        workload.at("/agents/0/sprint"),
        &json!({"sprint": "s1", "capacity": 10.0, "allocated": 8.0, "done": 0.0, "in_flight": 0.0})
    );

    complete(&h, "ana", "proj/a", 4.0).await;
    h.clock.advance(chrono::Duration::days(1));
    let added = h
        .call(
            "sprint_planning",
            json!({"action": "add", "name": "s1", "tasks": ["proj/g"]}),
        )
        .await
        .ok();
    assert_eq!(added.at("/edit/scope"), &json!(12.0));
    h.clock.advance(chrono::Duration::minutes(1));
    let estimated = h
        .call(
            "sprint_planning",
            json!({"action": "estimate", "tasks": ["proj/b"], "estimate": 8}),
        )
        .await
        .ok();
    assert_eq!(estimated.at("/estimate/old"), &json!(5.0));
    complete(&h, "ana", "proj/b", 9.0).await;
    h.clock.advance(chrono::Duration::days(1));

    let analytics = h
        .call("sprint_analytics", json!({"name": "s1", "seed": 42}))
        .await
        .ok();
    assert_eq!(analytics.at("/totals/committed"), &json!(10.0));
    assert_eq!(analytics.at("/totals/added"), &json!(2.0));
    assert_eq!(analytics.at("/totals/reestimated"), &json!(3.0));
    assert_eq!(analytics.at("/totals/scope"), &json!(15.0));
    assert_eq!(analytics.at("/totals/completed"), &json!(11.0));
    let days = analytics.at("/days/date").as_array().unwrap();
    assert_eq!(days.len(), 3, "Monday to Wednesday so far");
    assert_eq!(analytics.at("/days/remaining/0"), &json!(7.0));
    assert_eq!(analytics.at("/changes/0/kind"), &json!("added"));
    assert!(
        analytics.at("/forecast/p85").is_string(),
        "{}",
        analytics.text
    );
    assert!(analytics.text.contains("burndown (● remaining, · ideal)"));
    assert!(analytics.text.contains("burnup (─ scope, █ completed)"));
    let again = h
        .call("sprint_analytics", json!({"name": "s1", "seed": 42}))
        .await
        .ok();
    assert_eq!(again.at("/forecast"), analytics.at("/forecast"));

    let s2 = h.call(
        "sprint_planning",
        json!({"action": "create", "name": "s2", "start": "2026-03-16", "end": "2026-03-27", "members": [{"agent": "bo"}], "workflows": ["proj"]}),
    )
    .await
    .ok();
    assert_eq!(s2.at("/sprint/workflows"), &json!(["proj"]));
    assert_eq!(s2.at("/sprint/status"), &json!("planned"));
    let retro = h
        .call(
            "sprint_retrospective",
            json!({"name": "s1", "close": true, "next": "s2"}),
        )
        .await
        .ok();
    assert_eq!(retro.at("/closed"), &json!(true));
    assert_eq!(retro.at("/sprint/status"), &json!("closed"));
    assert_eq!(retro.at("/moved_to"), &json!("s2"));
    assert_eq!(retro.at("/carry_over/0/task"), &json!("proj/c"));
    assert_eq!(retro.at("/contributions/0/agent"), &json!("ana"));
    assert_eq!(retro.at("/accuracy/tasks"), &json!(2));
    assert!(
        retro.text.contains("\n- scope grew by 20% after the start"),
        "{}",
        retro.text
    );
    let s2 = h.call("sprint_analytics", json!({"name": "s2"})).await.ok();
    assert_eq!(s2.at("/carry_over/0/task"), &json!("proj/c"));
    assert_eq!(s2.at("/velocity/mean"), &json!(11.0));
}

#[tokio::test]
async fn sprint_errors_name_the_problem_and_write_nothing() {
    let h = harness().await;
    team(&h).await;
    h.call("sprint_planning", with(s1(), json!({"action": "start"})))
        .await
        .ok();
    h.call(
        "sprint_planning",
        json!({"action": "create", "name": "later", "start": "2026-04-06", "end": "2026-04-17", "members": [{"agent": "bo"}], "focus_factor": 1}),
    )
    .await
    .ok();
    let cases = [
        (
            json!({"action": "plan", "name": "x", "start": "2026-05-10", "end": "2026-05-01", "members": [{"agent": "ana"}]}),
            "invalid end: the sprint ends (2026-05-01) before it starts (2026-05-10)",
        ),
        (
            json!({"action": "create", "name": "x", "start": "2026-05-04", "end": "2026-05-15", "members": [{"agent": "ghost"}]}),
            "unknown agent `ghost`",
        ),
        (
            json!({"action": "create", "name": "x", "start": "2026-05-04", "end": "2026-05-15", "members": [{"agent": "ana", "availability": 1.5}]}),
            "invalid members[0].availability: 1.5 is not from 0 to 1",
        ),
        (
            json!({"action": "start", "name": "x", "start": "2026-03-09", "end": "2026-03-20", "members": [{"agent": "ana"}]}),
            "agent `ana` is a member of sprint `s1` (2026-03-02 to 2026-03-13), which overlaps these dates",
        ),
        (
            json!({"action": "add", "name": "later", "tasks": ["proj/a"]}),
            "task `proj/a` is already in sprint `s1`",
        ),
        (
            json!({"action": "plan", "name": "x", "start": "March", "end": "2026-05-15", "members": [{"agent": "ana"}]}),
            "invalid start: `March` is not a YYYY-MM-DD date",
        ),
        (
            json!({"action": "estimate", "tasks": ["proj/a"]}),
            "invalid estimate: estimate needs `estimate`",
        ),
        (
            json!({"action": "add", "name": "nope", "tasks": ["proj/g"]}),
            "unknown sprint `nope`",
        ),
    ];
    let events = || h.store.events_since(0, usize::MAX >> 1).unwrap().len();
    for (arguments, expected) in cases {
        let before = events();
        let text = h.call("sprint_planning", arguments.clone()).await.err();
        assert!(text.contains(expected), "{arguments}: {text}");
        assert_eq!(events(), before, "{arguments} wrote something");
    }
    let not_started = h
        .call(
            "sprint_retrospective",
            json!({"name": "later", "close": true}),
        )
        .await
        .err();
    assert!(
        not_started.contains("sprint `later` is planned: it cannot be closed before it starts"),
        "{not_started}"
    );
    h.call("sprint_retrospective", json!({"name": "s1", "close": true}))
        .await
        .ok();
    let twice = h
        .call("sprint_retrospective", json!({"name": "s1", "close": true}))
        .await
        .err();
    assert!(
        twice.contains("sprint `s1` is closed: it cannot be closed again"),
        "{twice}"
    );
}

/// A database file in `dir` holding the active sprint `now` (5 points, 3 done by `ana`),
/// written and closed, for the command-line tests.
pub(crate) fn database_with_a_sprint(dir: &std::path::Path) -> std::path::PathBuf {
    use orchestration_core::{
        AgentUpdate, ClaimRequest, CreateOptions, Mode, Store, TaskSpec, TaskUpdate, WorkflowSpec,
        store::MemberSpec, store::SprintSpec,
    };

    let db = dir.join("sprints.db");
    let store = Store::open(&db).unwrap();
    store.upsert_agent("ana", &AgentUpdate::default()).unwrap();
    store
        .create_workflow(
            WorkflowSpec::new("site", Mode::Parallel)
                .task(TaskSpec::new("home", "Home page").estimate(3.0))
                .task(TaskSpec::new("blog", "Blog").estimate(2.0)),
            &CreateOptions {
                start: true,
                idempotency_key: None,
            },
        )
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    store
        .start_sprint(
            &SprintSpec::new("now", today, today + chrono::Duration::days(13))
                .member(MemberSpec::new("ana")),
        )
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new("ana"))
        .unwrap()
        .claimed()
        .unwrap();
    store
        .update_task(
            &claim.task.id.into(),
            "ana",
            claim.token,
            &TaskUpdate::Complete {
                result: None,
                actual: None,
            },
            None,
        )
        .unwrap();
    db
}

/// `orchestration-mcp sprint burndown NAME --svg FILE` prints the text chart and writes an SVG.
#[test]
fn the_command_line_draws_a_burndown_as_text_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_with_a_sprint(dir.path());
    let svg = dir.path().join("burndown.svg");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["sprint", "burndown", "now", "--svg"])
        .arg(&svg)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("burndown (● remaining, · ideal)"),
        "{stdout}"
    );
    assert!(stdout.contains("of 5.0 points done"), "{stdout}");
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(drawing.matches("<polyline").count(), 4, "{drawing}");
    assert!(drawing.contains("Sprint now: burndown and burnup"));

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_orchestration-mcp"))
        .args(["sprint", "burndown", "nope", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unknown sprint `nope`"));
}

/// The number of events in the log: a rejected call must not grow it.
fn events(h: &Harness) -> usize {
    h.store.events_since(0, usize::MAX >> 1).unwrap().len()
}

/// Bug 2: `start` of a sprint saved with `create` commits what was saved (with explicit
/// add/remove), not a new plan with new workflows and a relearnt focus factor.
#[tokio::test]
async fn start_commits_what_create_saved_and_plans_nothing_again() {
    let h = harness().await;
    team(&h).await;
    let saved = h
        .call(
            "sprint_planning",
            with(s1(), json!({"action": "create", "commit": 3})),
        )
        .await
        .ok();
    assert_eq!(saved.at("/plan/selected"), &json!(["proj/a"]));
    assert_eq!(saved.at("/sprint/capacity"), &json!(12.25));
    // A workflow created after planning, with work that would fit.
    h.call(
        "workflow_create",
        json!({"name": "late", "tasks": [{"key": "z", "title": "Z", "estimate": 1, "priority": 99}]}),
    )
    .await
    .ok();
    h.call(
        "sprint_planning",
        json!({"action": "add", "name": "s1", "tasks": ["proj/g"]}),
    )
    .await
    .ok();

    let started = h
        .call("sprint_planning", json!({"action": "start", "name": "s1"}))
        .await
        .ok();
    assert!(
        started.text.starts_with(
            "sprint `s1` (started): 2 tasks, 5.0 points of 12.2 capacity (10 working days, focus 0.50); 0 left out"
        ),
        "{}",
        started.text
    );
    assert_eq!(started.at("/plan/selected"), &json!(["proj/a", "proj/g"]));
    assert_eq!(started.at("/plan/truncated"), &serde_json::Value::Null);
    assert_eq!(started.at("/plan/points"), &json!(5.0));
    assert_eq!(started.at("/plan/focus_source"), &json!("saved"));
    assert_eq!(started.at("/sprint/committed"), &json!(5.0));
    assert_eq!(started.at("/sprint/capacity"), &json!(12.25));
    assert_eq!(started.at("/sprint/tasks"), &json!(2));
    let analytics = h.call("sprint_analytics", json!({"name": "s1"})).await.ok();
    assert_eq!(analytics.at("/totals/committed"), &json!(5.0));
}

/// Bug 2 (refusals) and bug 7: a start that would plan again is refused and says how to
/// re-plan; a start of an unknown sprint by name alone says the sprint is unknown and how to
/// create it. Neither writes anything.
#[tokio::test]
async fn start_refuses_to_plan_again_and_names_an_unknown_sprint() {
    let h = harness().await;
    team(&h).await;
    h.call("sprint_planning", with(s1(), json!({"action": "create"})))
        .await
        .ok();
    let cases = [
        (
            json!({"action": "start", "name": "s1", "commit": 40}),
            "invalid commit: sprint `s1` is planned, and start commits what was saved for it without planning again; start it with its name alone, re-plan it first with action=create, or change its tasks with add/remove",
        ),
        (
            with(s1(), json!({"action": "start", "goal": "ship"})),
            "invalid start, end, members, focus_factor, commit, goal: sprint `s1` is planned",
        ),
        (
            json!({"action": "start", "name": "s1", "work_days": ["mon", "tue"]}),
            "invalid work_days: sprint `s1` is planned",
        ),
        (
            json!({"action": "start", "name": "nope"}),
            "invalid name: unknown sprint `nope`; to plan and start a new sprint in one call give start, end and members, or save it first with action=create",
        ),
    ];
    for (arguments, expected) in cases {
        let before = events(&h);
        let text = h.call("sprint_planning", arguments.clone()).await.err();
        assert!(text.contains(expected), "{arguments}: {text}");
        assert_eq!(events(&h), before, "{arguments} wrote something");
    }
    let s1 = h.call("sprint_analytics", json!({"name": "s1"})).await.ok();
    assert_eq!(s1.at("/sprint/status"), &json!("planned"));
    let all = h.call("sprint_analytics", json!({})).await.ok();
    assert_eq!(all.at("/sprints").as_array().unwrap().len(), 1);
}

/// Bug 15: removing a task that another task of the sprint depends on says so, in the
/// warnings and in the summary.
#[tokio::test]
async fn removing_a_task_others_in_the_sprint_depend_on_warns_of_them() {
    let h = harness().await;
    team(&h).await;
    h.call("sprint_planning", with(s1(), json!({"action": "start"})))
        .await
        .ok();
    let warning = "`proj/b` is still in the sprint and depends on `proj/a`, which left it: `proj/b` cannot start until it finishes; remove it too, or add `proj/a` back";
    let removed = h
        .call(
            "sprint_planning",
            json!({"action": "remove", "name": "s1", "tasks": ["proj/a"]}),
        )
        .await
        .ok();
    assert_eq!(
        removed.text.lines().next().unwrap(),
        format!(
            "removed 1 task (3.0 points) from sprint `s1`; its scope is 7.0 points; warning: {warning}"
        )
    );
    assert_eq!(removed.at("/edit/warnings"), &json!([warning]));

    // A removal that cuts no dependency has no warnings.
    let quiet = h
        .call(
            "sprint_planning",
            json!({"action": "remove", "name": "s1", "tasks": ["proj/b", "proj/c"]}),
        )
        .await
        .ok();
    assert_eq!(
        quiet.text.lines().next().unwrap(),
        "removed 2 tasks (7.0 points) from sprint `s1`; its scope is 0.0 points"
    );
    assert_eq!(quiet.at("/edit/warnings"), &Value::Null);

    // A task not in the sprint is an error that changes nothing.
    let before = events(&h);
    let text = h
        .call(
            "sprint_planning",
            json!({"action": "remove", "name": "s1", "tasks": ["proj/a"]}),
        )
        .await
        .err();
    assert!(
        text.contains("invalid tasks: task `proj/a` is not in sprint `s1`"),
        "{text}"
    );
    assert_eq!(events(&h), before);
}

/// Bug 5: the retrospective's findings use the numbers of its headline (what was delivered of
/// the commitment, say/do, creep and churn), and its contributions count an expired lease
/// apart from retries, as agent_performance does.
#[tokio::test]
async fn the_retrospective_agrees_with_itself_and_with_agent_performance() {
    let h = harness().await;
    team(&h).await;
    h.call("sprint_planning", with(s1(), json!({"action": "start"})))
        .await
        .ok();
    // One point added after the start: creep and churn of 10%.
    h.clock.advance(chrono::Duration::minutes(1));
    h.call(
        "sprint_planning",
        json!({"action": "estimate", "tasks": ["proj/g"], "estimate": 1}),
    )
    .await
    .ok();
    h.call(
        "sprint_planning",
        json!({"action": "add", "name": "s1", "tasks": ["proj/g"]}),
    )
    .await
    .ok();
    // ana's first attempt at `a` fails and is retried.
    let claim = h
        .call("task_claim", json!({"agent": "ana", "task": "proj/a"}))
        .await
        .ok();
    let token = claim.at("/token").as_u64().unwrap();
    h.call(
        "task_update",
        json!({"task": "proj/a", "agent": "ana", "token": token, "action": "fail", "error": "flaky", "retryable": true}),
    )
    .await
    .ok();
    h.clock.advance(chrono::Duration::hours(1));
    complete(&h, "ana", "proj/a", 3.0).await;
    complete(&h, "ana", "proj/b", 5.0).await;
    complete(&h, "ana", "proj/g", 1.0).await;
    // bo's lease on `c` runs out.
    h.call(
        "task_claim",
        json!({"agent": "bo", "task": "proj/c", "lease_seconds": 60}),
    )
    .await
    .ok();
    h.clock.advance(chrono::Duration::minutes(2));
    // A claim (ana has no work she can do) expires the lease.
    let none = h.call("task_claim", json!({"agent": "ana"})).await.ok();
    assert_eq!(none.at("/claimed"), &json!(false));

    let retro = h
        .call("sprint_retrospective", json!({"name": "s1"}))
        .await
        .ok();
    assert_eq!(
        retro.at("/findings"),
        &json!([{
            "observation": "delivered 8.0 of 10.0 committed points (say/do 80%), and the scope changed little after the start (creep 10%, churn 10%)",
            "action": "keep the commitment near velocity"
        }])
    );
    assert_eq!(
        retro.at("/contributions"),
        &json!([
            {"agent": "ana", "tasks": 3, "points": 9.0, "retries": 1, "expired_leases": 0},
            {"agent": "bo", "tasks": 0, "points": 0.0, "retries": 0, "expired_leases": 1}
        ])
    );
    // The headline shows the numbers the findings are drawn from.
    let mut lines = retro.text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sprint `s1`: 8.0 of 10.0 committed points done (9.0 in all), say/do 80%, scope creep 10%, churn 10%, 1 carried over"
    );
    assert_eq!(
        lines.next().unwrap(),
        "- delivered 8.0 of 10.0 committed points (say/do 80%), and the scope changed little after the start (creep 10%, churn 10%): keep the commitment near velocity"
    );
    let performance = h
        .call("agent_performance", json!({"detail": "full"}))
        .await
        .ok();
    for (agent, retries, expired) in [("ana", 1, 0), ("bo", 0, 1)] {
        let row = performance
            .at("/agents")
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent"] == agent)
            .unwrap_or_else(|| panic!("{agent}: {}", performance.text));
        assert_eq!(
            (&row["retries"], &row["expired_leases"]),
            (&json!(retries), &json!(expired)),
            "{agent}: {row}"
        );
    }
}

/// The value axis of an SVG chart, bottom first, and the points of its scope line.
fn svg_axis(svg: &str) -> (Vec<String>, Vec<String>) {
    let ticks = svg
        .split(r##"text-anchor="end" fill="#555">"##)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect();
    let scope = svg
        .split(r#"class="scope""#)
        .nth(1)
        .and_then(|rest| rest.split(r#"points=""#).nth(1))
        .and_then(|points| points.split('"').next())
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    (ticks, scope)
}

/// Bug 12: the charts of a planned sprint scale to its planned scope, with a label that agrees
/// with its number, distinct ticks and a scope line; an empty sprint says it is empty.
#[tokio::test]
async fn a_planned_sprint_is_charted_against_its_planned_scope() {
    let h = harness().await;
    team(&h).await;
    h.call(
        "sprint_planning",
        json!({"action": "estimate", "tasks": ["proj/g"], "estimate": 1}),
    )
    .await
    .ok();
    // Planned for the fortnight after this one: no day of it has begun.
    let saved = h
        .call(
            "sprint_planning",
            with(
                s1(),
                json!({"action": "create", "commit": 6, "start": "2026-03-16", "end": "2026-03-27", "members": [{"agent": "ana"}, {"agent": "bo"}]}),
            ),
        )
        .await
        .ok();
    assert_eq!(saved.at("/plan/points"), &json!(6.0));

    let analytics = h.call("sprint_analytics", json!({"name": "s1"})).await.ok();
    let lines: Vec<&str> = analytics.text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("burndown"))
        .unwrap_or_else(|| panic!("{}", analytics.text));
    assert_eq!(
        lines[header],
        "burndown (● remaining, · ideal), 6 points at the top; not started: the ideal is that of the scope planned"
    );
    // Remaining starts at the top with the 6 points planned; the scope holds across the
    // sprint's 10 working days and the start.
    assert!(lines[header + 1].starts_with("│●"), "{}", analytics.text);
    let burnup = lines.iter().position(|l| l.starts_with("burnup")).unwrap();
    assert_eq!(lines[burnup + 1], format!("│{}", "─".repeat(11)));

    let report = h
        .store
        .sprint_analytics(
            "s1",
            &orchestration_core::store::AnalyticsOptions::default(),
        )
        .unwrap()
        .report;
    let (ticks, scope) = svg_axis(&orchestration_core::sprint::svg("s1", &report));
    assert_eq!(ticks, ["0", "2", "4", "6"]);
    // x = 56 at the start, y = 40 at the top tick: the scope line starts at 6 points.
    assert_eq!((scope[0].as_str(), scope.len()), ("56.0,40.0", 11));

    h.call(
        "sprint_planning",
        json!({"action": "create", "name": "empty", "start": "2026-04-06", "end": "2026-04-17", "members": [{"agent": "bo"}], "commit": 0}),
    )
    .await
    .ok();
    let empty = h
        .call("sprint_analytics", json!({"name": "empty"}))
        .await
        .ok();
    assert!(
        empty
            .text
            .contains("\nburndown (● remaining, · ideal), no points in the sprint; not started"),
        "{}",
        empty.text
    );
}
