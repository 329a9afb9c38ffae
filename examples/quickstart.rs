//! Quick start: a nine-task feature workflow run by three in-process agents on the default
//! SQLite file (`.orchestration/orchestration.db` under the working directory).
//!
//! Run it with `cargo run --release --example quickstart`. It prints the stages and the
//! critical path, one line per state change as the agents work, and the outcome. One task fails
//! on its first attempt and succeeds on the retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use orchestration::{
    CreateOptions, EventKind, Mode, Outcome, RetryPolicy, Runner, Store, TaskFailure, TaskSpec,
    WorkflowRef, WorkflowSpec,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(Store::open_default()?);
    let name = format!("quickstart-{}", Utc::now().format("%Y%m%d-%H%M%S%3f"));
    let spec = WorkflowSpec {
        name: name.clone(),
        description: Some("Ship the search feature".into()),
        mode: Mode::Dag,
        // A short backoff so the retry shows up within the demo.
        retry: RetryPolicy {
            initial_interval: Duration::milliseconds(200),
            backoff_coefficient: 2.0,
            max_interval: Duration::seconds(5),
        },
        tasks: vec![
            TaskSpec::new("spec", "Write the design spec")
                .estimate(2.0)
                .priority(80),
            TaskSpec::new("api-schema", "Define the search API schema")
                .estimate(1.0)
                .after(["spec"]),
            TaskSpec::new("migrations", "Add the search index migration")
                .estimate(2.0)
                .after(["spec"]),
            TaskSpec::new("backend", "Implement the search endpoint")
                .estimate(5.0)
                .after(["api-schema"]),
            TaskSpec::new("frontend", "Build the search page")
                .estimate(3.0)
                .after(["api-schema"]),
            TaskSpec::new("docs", "Document the API")
                .estimate(1.0)
                .after(["api-schema"]),
            TaskSpec::new("security-review", "Review input handling")
                .estimate(1.0)
                .after(["backend"]),
            TaskSpec::new("integration-tests", "Run the end-to-end suite")
                .estimate(2.0)
                .after(["backend", "frontend", "migrations"]),
            TaskSpec::new("release", "Tag and publish")
                .estimate(1.0)
                .after(["integration-tests", "docs", "security-review"]),
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

    println!("workflow {} ({})", created.name, created.id);
    println!(
        "database {}",
        store
            .path()
            .map_or("(memory)".into(), |p| p.display().to_string())
    );
    println!("stages:");
    for (i, stage) in created.analysis.stages.iter().enumerate() {
        println!("  {}: {}", i + 1, stage.join(", "));
    }
    let path = &created.analysis.critical_path;
    println!(
        "critical path ({} points): {}",
        path.length,
        path.keys.join(" -> ")
    );
    println!();

    let workflow = WorkflowRef::Id(created.id);
    let last_seq = store
        .events_since(0, usize::MAX >> 1)?
        .last()
        .map_or(0, |e| e.seq);
    let done = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let summary = std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            let result = Runner::new(Arc::clone(&store))
                .workers(3)
                .agent_prefix("agent")
                .run(&workflow, |work| {
                    let task = &work.claim.task;
                    // Simulated work: 40 ms per point.
                    std::thread::sleep(StdDuration::from_millis((task.estimate * 40.0) as u64));
                    if task.key == "integration-tests" && task.attempt == 1 {
                        return Err(TaskFailure::retryable("flaky test: connection reset"));
                    }
                    Ok(Outcome {
                        result: Some(format!("{} done", task.key)),
                        actual: Some(task.estimate),
                    })
                });
            done.store(true, Ordering::SeqCst);
            result
        });
        print_events(&store, created.id, last_seq, &done, started);
        runner.join().expect("the runner thread does not panic")
    })?;

    let report = store.workflow_report(&workflow)?;
    println!();
    println!(
        "outcome: {} in {:.1} s; {} of {} points done; attempts per agent: {:?}",
        summary.status,
        started.elapsed().as_secs_f64(),
        report.summary.done_points,
        report.summary.total_points,
        summary.attempts_by_worker,
    );
    Ok(())
}

/// Prints each task state change of the workflow as it lands in the event log.
fn print_events(
    store: &Store,
    workflow: orchestration::WorkflowId,
    mut after: i64,
    done: &AtomicBool,
    started: std::time::Instant,
) {
    loop {
        let finished = done.load(Ordering::SeqCst);
        for event in store.events_since(after, 1_000).unwrap_or_default() {
            after = event.seq;
            if event.workflow != Some(workflow) {
                continue;
            }
            let at = started.elapsed().as_millis();
            match event.kind {
                EventKind::TaskState => println!(
                    "{at:>6} ms  {:<18} {:>13} -> {:<15} {}{}",
                    event.task_key.unwrap_or_default(),
                    event.from.map_or("", |s| s.as_str()),
                    event.to.map_or("", |s| s.as_str()),
                    event.agent.map(|a| format!("[{a}] ")).unwrap_or_default(),
                    event.detail.unwrap_or_default(),
                ),
                EventKind::WorkflowStatus => {
                    println!(
                        "{at:>6} ms  workflow is {}",
                        event.detail.unwrap_or_default()
                    )
                }
                _ => {}
            }
        }
        if finished {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
}
