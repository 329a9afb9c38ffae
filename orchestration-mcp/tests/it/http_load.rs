//! HTTP under load: 32 concurrent sessions against one server process make mixed tool calls
//! for a few seconds. None may fail, and the server's memory must stay flat once warm.
//! Latency under the same load is measured by the `reliability` benchmark, not here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::start;
use crate::http_client::Session;

/// Concurrent sessions.
const SESSIONS: usize = 32;

/// The server's resident memory, from /proc.
pub(crate) fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

/// One session's mix: claim and complete, status, messages, profiles, workload.
fn mixed_call(session: &mut Session, agent: &str, round: usize) -> Result<(), String> {
    match round % 5 {
        0 => {
            let claim = session.call("task_claim", json!({"agent": agent, "workflow": "load"}))?;
            if claim["claimed"] == json!(true) {
                session.call(
                    "task_update",
                    json!({"task": claim["task"]["task"], "agent": agent,
                           "token": claim["token"], "action": "complete", "result": "ok"}),
                )?;
            }
        }
        1 => {
            session.call("workflow_status", json!({"workflow": "load"}))?;
        }
        2 => {
            // Another agent's inbox: an agent does not message itself.
            let to = if agent == "agent-0" {
                "agent-1"
            } else {
                "agent-0"
            };
            session.call(
                "agent_collaboration",
                json!({"action": "message", "agent": agent, "to": to, "note": "hello"}),
            )?;
            session.call(
                "agent_collaboration",
                json!({"action": "inbox", "agent": agent, "ack": true}),
            )?;
        }
        3 => {
            session.call("agent_profile", json!({"action": "list"}))?;
        }
        _ => {
            session.call("agent_workload", json!({}))?;
        }
    }
    Ok(())
}

/// Runs every session's mix until `stop`; returns the calls made and the errors seen.
fn run(
    sessions: Vec<(Session, String)>,
    stop: &Arc<AtomicBool>,
    calls: &Arc<AtomicUsize>,
) -> std::thread::Result<Vec<(Session, String, Vec<String>)>> {
    let handles: Vec<_> = sessions
        .into_iter()
        .map(|(mut session, agent)| {
            let (stop, calls) = (Arc::clone(stop), Arc::clone(calls));
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(error) = mixed_call(&mut session, &agent, round) {
                        errors.push(error);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    round += 1;
                }
                (session, agent, errors)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join()).collect()
}

#[test]
fn thirty_two_sessions_make_mixed_calls_without_errors_or_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("load.db");
    // Thirty-two sessions calling as fast as they can from one address are far past an agent's
    // pace, and this test is about memory under load, not about the rate limit.
    let server = start(&["--db", db.to_str().unwrap(), "--rate-limit", "off"]);
    let pid = server.child.id();
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let mut session = Session::open(server.port, None).unwrap();
        let agent = format!("agent-{i}");
        session
            .call(
                "agent_profile",
                json!({"action": "upsert", "name": agent, "max_concurrent": 1000}),
            )
            .unwrap();
        sessions.push((session, agent));
    }
    let tasks: Vec<Value> = (0..3_000)
        .map(|i| json!({"key": format!("t{i}"), "title": "work"}))
        .collect();
    sessions[0]
        .0
        .call(
            "workflow_create",
            json!({"name": "load", "mode": "parallel", "tasks": tasks}),
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    // Warm-up: caches fill, the allocator settles, every code path has run.
    let timer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let warmed = run(sessions, &stop, &calls).unwrap();
    timer.join().unwrap();
    let warm_rss = resident_bytes(pid);
    let warm_calls = calls.load(Ordering::Relaxed);

    stop.store(false, Ordering::Relaxed);
    let timer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let warm_errors: Vec<String> = warmed.iter().flat_map(|(_, _, e)| e.clone()).collect();
    assert!(warm_errors.is_empty(), "warm-up errors: {warm_errors:?}");
    let sessions = warmed.into_iter().map(|(s, a, _)| (s, a)).collect();
    let finished = run(sessions, &stop, &calls).unwrap();
    timer.join().unwrap();
    let end_rss = resident_bytes(pid);
    let total = calls.load(Ordering::Relaxed);

    let errors: Vec<&String> = finished.iter().flat_map(|(_, _, e)| e).collect();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(total > warm_calls, "the load phase made calls");
    let growth = end_rss.saturating_sub(warm_rss);
    eprintln!(
        "{SESSIONS} sessions: {warm_calls} warm-up calls, {} measured calls; resident memory \
         {:.1} MB after warm-up, {:.1} MB at the end ({:+.1} MB)",
        total - warm_calls,
        warm_rss as f64 / 1e6,
        end_rss as f64 / 1e6,
        growth as f64 / 1e6
    );
    assert!(
        growth < 30 * 1024 * 1024 || end_rss < warm_rss * 3 / 2,
        "memory grew from {warm_rss} to {end_rss} bytes"
    );
}
