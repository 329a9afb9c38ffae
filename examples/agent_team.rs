//! A team of agents with different skills and reliabilities works through a workflow, in
//! process, on a simulated clock. Every round the ready tasks are delegated optimally; each
//! delegation is printed with its score breakdown, and at the end the performance table.
//!
//! Run it with `cargo run --example agent_team`.

use chrono::{Duration, TimeZone, Utc};
use orchestration::{
    AgentUpdate, ClaimRequest, Clock, CreateOptions, FailureKind, Mode, RetryPolicy, Store,
    TaskRef, TaskSpec, TaskUpdate, WorkflowRef, WorkflowSpec, agent::Weights,
    store::DelegationMode,
};

/// An agent of the simulation: its skills, how often it succeeds, how fast it works.
struct Member {
    name: &'static str,
    skills: &'static [(&'static str, u8)],
    reliability: f64,
    /// Effort spent relative to the estimate.
    pace: f64,
}

const TEAM: [Member; 4] = [
    Member {
        name: "ana",
        skills: &[("rust", 5), ("sql", 3)],
        reliability: 0.95,
        pace: 0.9,
    },
    Member {
        name: "bo",
        skills: &[("rust", 3), ("css", 3)],
        reliability: 0.7,
        pace: 1.4,
    },
    Member {
        name: "cy",
        skills: &[("css", 5), ("python", 4)],
        reliability: 0.9,
        pace: 1.0,
    },
    Member {
        name: "dee",
        skills: &[("python", 3), ("docs", 4), ("sql", 4)],
        reliability: 0.8,
        pace: 1.2,
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let (clock, time) = Clock::manual(start);
    let store = Store::open_in_memory()?.with_clock(clock);
    for member in &TEAM {
        let capabilities = member
            .skills
            .iter()
            .map(|(s, l)| (s.to_string(), *l))
            .collect();
        store.upsert_agent(
            member.name,
            &AgentUpdate {
                capabilities: Some(capabilities),
                max_concurrent: Some(2),
                ..AgentUpdate::default()
            },
        )?;
    }
    let task = |key: &str, title: &str, points: f64, skill: &str, level: u8| {
        TaskSpec::new(key, title)
            .estimate(points)
            .skill(skill, level)
            .max_attempts(4)
    };
    let spec = WorkflowSpec {
        name: "analytics-dashboard".into(),
        mode: Mode::Dag,
        retry: RetryPolicy {
            initial_interval: Duration::minutes(10),
            backoff_coefficient: 2.0,
            max_interval: Duration::hours(2),
        },
        tasks: vec![
            task("schema", "Design the event schema", 3.0, "sql", 3),
            task("ingest", "Write the ingestion service", 5.0, "rust", 4).after(["schema"]),
            task("queries", "Write the aggregate queries", 3.0, "sql", 3).after(["schema"]),
            task("api", "Expose the metrics API", 3.0, "rust", 3).after(["ingest", "queries"]),
            task("model", "Fit the forecasting model", 5.0, "python", 3).after(["queries"]),
            task("charts", "Build the chart components", 3.0, "css", 3),
            task("layout", "Lay out the dashboard", 2.0, "css", 4).after(["charts"]),
            task("wire-up", "Connect the dashboard to the API", 2.0, "css", 3)
                .after(["api", "layout"]),
            task("forecast-view", "Show the forecast", 2.0, "python", 3).after(["model", "layout"]),
            task("docs", "Document the metrics", 2.0, "docs", 3).after(["api"]),
            task("release", "Release", 1.0, "rust", 3).after(["wire-up", "forecast-view", "docs"]),
        ],
        ..WorkflowSpec::default()
    };
    let created = store.create_workflow(
        spec,
        &CreateOptions {
            start: true,
            idempotency_key: None,
        },
    )?;
    let workflow = WorkflowRef::Id(created.id);
    println!(
        "workflow {}: critical path {}",
        created.name,
        created.analysis.critical_path.keys.join(" -> ")
    );

    let mut round = 0;
    while !store.workflow_summary(&workflow)?.status.is_finished() {
        round += 1;
        let batch = store.delegate_workflow(
            &workflow,
            &Weights::default(),
            Some(Duration::hours(8)),
            DelegationMode::Assign,
        )?;
        for assigned in &batch.assigned {
            let b = assigned.breakdown;
            println!(
                "round {round:>2}: {:<34} -> {:<4} score {:.3} = fit {:.2} quality {:.2} speed {:.2} free {:.2} (n={})",
                assigned.task,
                assigned.agent,
                b.score,
                b.fit,
                b.quality,
                b.speed,
                b.free_capacity,
                b.observations
            );
        }
        for (task, why) in &batch.unassigned {
            println!("round {round:>2}: {task:<34} waits: {why}");
        }
        // Each agent starts what was delegated to it and finishes it (or not).
        for assigned in &batch.assigned {
            let member = TEAM
                .iter()
                .find(|m| m.name == assigned.agent)
                .expect("a team member");
            let request = ClaimRequest::new(member.name)
                .task(assigned.task.parse::<TaskRef>()?)
                .lease(Duration::hours(8));
            if let Some(claim) = store.claim(&request)?.claimed() {
                let task = TaskRef::Id(claim.task.id);
                let roll = unit(&claim.task.key, claim.task.attempt, member.name);
                let report = if roll < member.reliability {
                    TaskUpdate::Complete {
                        result: Some(format!("{} by {}", claim.task.key, member.name)),
                        actual: Some(claim.task.estimate * member.pace),
                    }
                } else {
                    TaskUpdate::Fail {
                        error: "tests failed".into(),
                        kind: FailureKind::Transient,
                    }
                };
                time.advance(Duration::minutes(
                    (claim.task.estimate * member.pace * 60.0) as i64,
                ));
                store.update_task(&task, member.name, claim.token, &report, None)?;
            }
        }
        // Let retry backoffs run out.
        time.advance(Duration::minutes(30));
        if round > 50 {
            break;
        }
    }
    let summary = store.workflow_summary(&workflow)?;
    println!(
        "\nworkflow {} after {round} rounds: {}/{} points done",
        summary.status, summary.done_points, summary.total_points
    );

    println!(
        "\n{:<5} {:>4} {:>9} {:>8} {:>8} {:>6} {:>10} {:>8}",
        "agent", "rank", "completed", "attempts", "success", "smooth", "cycle p50", "bias"
    );
    for p in store.agent_performance(start - Duration::days(1), time.now(), None)? {
        let m = &p.metrics;
        println!(
            "{:<5} {:>4} {:>9} {:>8} {:>8} {:>6.2} {:>9.1}h {:>8}",
            p.agent,
            p.rank,
            m.completed,
            m.attempts,
            m.success_rate
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
            m.smoothed_success_rate,
            m.cycle_time_p50_hours.unwrap_or(0.0),
            m.estimate_bias.map_or("-".into(), |b| format!("{b:+.2}")),
        );
    }
    Ok(())
}

/// A number in [0, 1) from the task, the attempt and the agent: the same run every time.
fn unit(key: &str, attempt: u32, agent: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key
        .bytes()
        .chain(agent.bytes())
        .chain(attempt.to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}
