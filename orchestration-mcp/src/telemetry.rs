//! Metrics in the Prometheus text format, and the log line of every tool call.
//!
//! Two sources: this process's tool calls (latency histograms and counts by tool and outcome,
//! kept here as they happen), and the event log, which every process on the database writes
//! (claims, reports by outcome, lease expiries, retries), read incrementally from where the
//! last scrape stopped. Task counts by state and gates waiting are read from the store at
//! each scrape.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use orchestration_core::{Event, EventKind, Store, TaskState};

/// Upper bounds of the latency buckets, in seconds: from a fast read to a long wait (a wait
/// lasts at most 300 seconds).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// Events read from the log at most per scrape: a first scrape of a huge log catches up over
/// several scrapes rather than holding one for long.
const EVENTS_PER_SCRAPE: usize = 200_000;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// A result.
    Ok,
    /// A result with `isError`: the tool refused the call (bad input, a domain error).
    ToolError,
    /// A protocol error: an unknown tool or a failure of the server.
    ProtocolError,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::ProtocolError => "protocol_error",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Counts per bucket (not cumulative); the last is past every bound.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// One tool's calls: their latencies, and how many ended each way.
type ToolCalls = (Histogram, BTreeMap<Outcome, u64>);

/// What the event log has counted so far.
#[derive(Debug, Default)]
struct LogCounts {
    /// The last event counted.
    seen: i64,
    claims: u64,
    reports: BTreeMap<&'static str, u64>,
    lease_expiries: u64,
    retries: u64,
    gate_decisions: BTreeMap<&'static str, u64>,
}

impl LogCounts {
    fn count(&mut self, event: &Event) {
        self.seen = event.seq;
        if event.kind != EventKind::TaskState {
            return;
        }
        let (Some(from), Some(to)) = (event.from, event.to) else {
            return;
        };
        if event.detail.as_deref() == Some("lease_expired") {
            self.lease_expiries += 1;
            return;
        }
        if to == TaskState::WaitingRetry {
            self.retries += 1;
        }
        let report = match (from, to) {
            (TaskState::Ready | TaskState::Assigned, TaskState::Running) => {
                self.claims += 1;
                None
            }
            (TaskState::Running, TaskState::Succeeded) => Some("complete"),
            (TaskState::Running, TaskState::WaitingRetry | TaskState::Failed) => Some("fail"),
            (TaskState::Running | TaskState::Assigned, TaskState::Ready) => Some("release"),
            (TaskState::AwaitingApproval, TaskState::Succeeded) => {
                *self.gate_decisions.entry("approve").or_default() += 1;
                None
            }
            (TaskState::AwaitingApproval, TaskState::Failed) => {
                *self.gate_decisions.entry("reject").or_default() += 1;
                None
            }
            _ => None,
        };
        if let Some(report) = report {
            *self.reports.entry(report).or_default() += 1;
        }
    }
}

/// The process's metrics. Shared by every MCP session and the `/metrics` route.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    calls: Mutex<BTreeMap<String, ToolCalls>>,
    log: Mutex<LogCounts>,
}

impl Telemetry {
    /// Records one tool call, and logs it: at debug when it succeeded, at warn otherwise.
    pub(crate) fn tool_call(
        &self,
        tool: &str,
        agent: Option<&str>,
        took: Duration,
        outcome: Outcome,
    ) {
        let seconds = took.as_secs_f64();
        {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            let (histogram, outcomes) = calls.entry(tool.to_owned()).or_default();
            histogram.observe(seconds);
            *outcomes.entry(outcome).or_default() += 1;
        }
        let ms = seconds * 1000.0;
        let agent = agent.unwrap_or("-");
        match outcome {
            Outcome::Ok => {
                tracing::debug!(
                    tool,
                    agent,
                    duration_ms = ms,
                    outcome = outcome.as_str(),
                    "tool call"
                )
            }
            Outcome::ToolError | Outcome::ProtocolError => {
                tracing::warn!(
                    tool,
                    agent,
                    duration_ms = ms,
                    outcome = outcome.as_str(),
                    "tool call"
                )
            }
        }
    }

    /// The metrics in the Prometheus text format; `sessions` is the number of open MCP
    /// sessions, when the server serves HTTP.
    pub(crate) fn render(
        &self,
        store: &Store,
        sessions: Option<usize>,
    ) -> orchestration_core::Result<String> {
        let mut out = String::with_capacity(8 * 1024);
        self.render_log(store, &mut out)?;
        render_tasks(store, &mut out)?;
        if let Some(sessions) = sessions {
            metric(
                &mut out,
                "orchestration_sessions_open",
                "gauge",
                "Open MCP sessions.",
            );
            let _ = writeln!(out, "orchestration_sessions_open {sessions}");
        }
        self.render_calls(&mut out);
        Ok(out)
    }

    fn render_log(&self, store: &Store, out: &mut String) -> orchestration_core::Result<()> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut read = 0;
        while read < EVENTS_PER_SCRAPE {
            let batch = store.events_since(log.seen, 5_000)?;
            if batch.is_empty() {
                break;
            }
            read += batch.len();
            for event in &batch {
                log.count(event);
            }
        }
        metric(
            out,
            "orchestration_claims_total",
            "counter",
            "Tasks claimed (started) by agents, from the event log.",
        );
        let _ = writeln!(out, "orchestration_claims_total {}", log.claims);
        metric(
            out,
            "orchestration_reports_total",
            "counter",
            "Agents' reports that ended an attempt, by outcome.",
        );
        for outcome in ["complete", "fail", "release"] {
            let n = log.reports.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "orchestration_reports_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        metric(
            out,
            "orchestration_lease_expiries_total",
            "counter",
            "Leases that ran out before their agent reported.",
        );
        let _ = writeln!(
            out,
            "orchestration_lease_expiries_total {}",
            log.lease_expiries
        );
        metric(
            out,
            "orchestration_retries_total",
            "counter",
            "Failed attempts put back to wait for a retry.",
        );
        let _ = writeln!(out, "orchestration_retries_total {}", log.retries);
        metric(
            out,
            "orchestration_gate_decisions_total",
            "counter",
            "Gates approved or rejected.",
        );
        for decision in ["approve", "reject"] {
            let n = log.gate_decisions.get(decision).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "orchestration_gate_decisions_total{{decision=\"{decision}\"}} {n}"
            );
        }
        metric(
            out,
            "orchestration_events_counted",
            "gauge",
            "The position in the event log the counters above have reached.",
        );
        let _ = writeln!(out, "orchestration_events_counted {}", log.seen);
        Ok(())
    }

    fn render_calls(&self, out: &mut String) {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        metric(
            out,
            "orchestration_tool_calls_total",
            "counter",
            "Tool calls served by this process, by tool and outcome.",
        );
        for (tool, (_, outcomes)) in calls.iter() {
            for (outcome, n) in outcomes {
                let _ = writeln!(
                    out,
                    "orchestration_tool_calls_total{{tool=\"{}\",outcome=\"{}\"}} {n}",
                    label(tool),
                    outcome.as_str()
                );
            }
        }
        metric(
            out,
            "orchestration_tool_call_duration_seconds",
            "histogram",
            "How long tool calls took, by tool.",
        );
        for (tool, (histogram, _)) in calls.iter() {
            let tool = label(tool);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += histogram.buckets[i];
                let _ = writeln!(
                    out,
                    "orchestration_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "orchestration_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "orchestration_tool_call_duration_seconds_sum{{tool=\"{tool}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "orchestration_tool_call_duration_seconds_count{{tool=\"{tool}\"}} {}",
                histogram.count
            );
        }
    }
}

/// Tasks by state of each unfinished workflow (finished ones would only grow the label set),
/// by state across all workflows, and gates waiting for approval.
fn render_tasks(store: &Store, out: &mut String) -> orchestration_core::Result<()> {
    let workflows = store.workflows()?;
    let mut all: BTreeMap<TaskState, u64> = BTreeMap::new();
    metric(
        out,
        "orchestration_workflow_tasks",
        "gauge",
        "Tasks of each unfinished workflow, by state.",
    );
    for workflow in &workflows {
        for (state, n) in &workflow.counts {
            *all.entry(*state).or_default() += n;
            if !workflow.status.is_finished() {
                let _ = writeln!(
                    out,
                    "orchestration_workflow_tasks{{workflow=\"{}\",state=\"{}\"}} {n}",
                    label(&workflow.name),
                    state.as_str()
                );
            }
        }
    }
    metric(
        out,
        "orchestration_tasks",
        "gauge",
        "Tasks of all workflows, by state.",
    );
    for state in TaskState::ALL {
        let n = all.get(&state).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "orchestration_tasks{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    metric(
        out,
        "orchestration_gates_waiting",
        "gauge",
        "Gates waiting for a person's approval.",
    );
    let waiting = all.get(&TaskState::AwaitingApproval).copied().unwrap_or(0);
    let _ = writeln!(out, "orchestration_gates_waiting {waiting}");
    metric(out, "orchestration_workflows", "gauge", "Workflows in all.");
    let _ = writeln!(out, "orchestration_workflows {}", workflows.len());
    Ok(())
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants: backslash, quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Outcome, Telemetry};

    #[test]
    fn tool_calls_fill_cumulative_buckets_by_tool_and_count_outcomes() {
        let telemetry = Telemetry::default();
        telemetry.tool_call(
            "task_claim",
            Some("a1"),
            Duration::from_millis(3),
            Outcome::Ok,
        );
        telemetry.tool_call(
            "task_claim",
            None,
            Duration::from_millis(40),
            Outcome::ToolError,
        );
        telemetry.tool_call("task_claim", None, Duration::from_secs(400), Outcome::Ok);
        let mut out = String::new();
        telemetry.render_calls(&mut out);
        for line in [
            "orchestration_tool_calls_total{tool=\"task_claim\",outcome=\"ok\"} 2",
            "orchestration_tool_calls_total{tool=\"task_claim\",outcome=\"tool_error\"} 1",
            "orchestration_tool_call_duration_seconds_bucket{tool=\"task_claim\",le=\"0.001\"} 0",
            "orchestration_tool_call_duration_seconds_bucket{tool=\"task_claim\",le=\"0.005\"} 1",
            "orchestration_tool_call_duration_seconds_bucket{tool=\"task_claim\",le=\"0.05\"} 2",
            "orchestration_tool_call_duration_seconds_bucket{tool=\"task_claim\",le=\"300\"} 2",
            "orchestration_tool_call_duration_seconds_bucket{tool=\"task_claim\",le=\"+Inf\"} 3",
            "orchestration_tool_call_duration_seconds_count{tool=\"task_claim\"} 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
