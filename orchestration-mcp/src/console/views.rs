//! The console's views other than a workflow's: the overview, agents, collaboration, sprints
//! and the event log. Each reads the store through its public API and renders HTML.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, PreEscaped, html};
use orchestration_core::agent::{Weights, Workload};
use orchestration_core::collaboration::{Lock, conflicts};
use orchestration_core::store::{
    HeldTask, LeasedTask, PerformanceWindow, Progress, Retrospective, RetrospectiveOptions,
    SprintAnalytics, SprintSummary, TaskView, Wait, WorkflowReport,
};
use orchestration_core::{AgentProfile, Event, EventKind, Store, TaskState};
use serde::Deserialize;

use super::auth::{Viewer, encode};
use super::page::{
    self, PAGE_SIZE, Page, Section, layout, maybe_time, percent, points, task_href, time,
    workflow_href,
};
use super::{Console, PageError, PageResult, html as page_html, read};

/// Leases ending within this long are listed as expiring soon.
const EXPIRING_SOON: i64 = 5 * 60;

/// Workflows per page of the overview: each needs its report.
const WORKFLOWS_PER_PAGE: usize = 20;

/// How far back the collaboration view looks for messages and handoffs.
const RECENT_EVENTS: i64 = 2_000;

/// The most events the event view reads for one page while filtering.
const MAX_SCAN: i64 = 20_000;

#[derive(Debug, Deserialize)]
pub(crate) struct Paged {
    page: Option<usize>,
}

/// What the overview shows.
struct Overview {
    seq: i64,
    now: DateTime<Utc>,
    reports: Vec<WorkflowReport>,
    page: Page,
    workload: Workload,
}

pub(crate) async fn overview(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(paged): Query<Paged>,
) -> PageResult {
    let data = read(&console, move |store| {
        let seq = store.last_event_seq()?;
        let summaries = store.workflows()?;
        let page = Page::of(paged.page, summaries.len(), WORKFLOWS_PER_PAGE);
        let reports = page
            .slice(&summaries, WORKFLOWS_PER_PAGE)
            .iter()
            .map(|s| store.workflow_report(&s.id.into()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Overview {
            seq,
            now: store.now()?,
            reports,
            page,
            workload: store.workload(&Weights::default())?,
        })
    })
    .await?;
    Ok(page_html(layout(
        "Overview",
        Section::Overview,
        Some(&viewer),
        Some(data.seq),
        overview_body(&data),
    )))
}

fn overview_body(data: &Overview) -> Markup {
    let soon = data.now + Duration::seconds(EXPIRING_SOON);
    let expiring: Vec<(&str, &LeasedTask)> = data
        .reports
        .iter()
        .flat_map(|r| r.leased.iter().map(move |l| (r.summary.name.as_str(), l)))
        .filter(|(_, l)| l.lease_expired || l.lease_expires_at.is_some_and(|at| at <= soon))
        .collect();
    let stalled: Vec<(&str, &str)> = data
        .reports
        .iter()
        .filter_map(|r| match &r.progress {
            Progress::Stalled(why) => Some((r.summary.name.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    let gates: Vec<(&str, &TaskView)> = data
        .reports
        .iter()
        .flat_map(|r| {
            r.tasks
                .iter()
                .filter(|t| t.state == TaskState::AwaitingApproval)
                .map(move |t| (r.summary.name.as_str(), t))
        })
        .collect();
    html! {
        section aria-labelledby="workflows-h" {
            h2 #workflows-h { "Workflows" }
            @if data.reports.is_empty() {
                p.muted { "No workflows yet. An agent creates one with workflow_create." }
            } @else {
                table {
                    caption.muted { "Each workflow's tasks by state and its progress" }
                    thead { tr {
                        th scope="col" { "Workflow" } th scope="col" { "Status" }
                        th scope="col" { "Progress" } th scope="col" { "Tasks by state" }
                        th scope="col" class="num" { "Points done" }
                    } }
                    tbody {
                        @for r in &data.reports {
                            (workflow_row(r))
                        }
                    }
                }
                (data.page.nav("Workflow pages", |n| format!("/?page={n}")))
            }
        }
        div.cards {
            section.card aria-labelledby="stalled-h" {
                h2 #stalled-h { "Stalled" }
                @if stalled.is_empty() { p.muted { "Nothing is stalled." } }
                ul { @for (name, why) in &stalled {
                    li { a href=(workflow_href(name)) { (name) } ": " (why) }
                } }
            }
            section.card aria-labelledby="gates-h" {
                h2 #gates-h { "Gates waiting for approval" }
                @if gates.is_empty() { p.muted { "No gate is waiting." } }
                ul { @for (name, task) in &gates {
                    li { a href=(task_href(name, &task.key)) { (name) "/" (task.key) } ": " (task.title) }
                } }
            }
            section.card aria-labelledby="expiring-h" {
                h2 #expiring-h { "Leases expiring soon" }
                @if expiring.is_empty() { p.muted { "No lease ends in the next 5 minutes." } }
                ul { @for (name, lease) in &expiring {
                    li {
                        a href=(task_href(name, &lease.key)) { (name) "/" (lease.key) }
                        " held by " a href=(agent_href(&lease.agent)) { (lease.agent) }
                        @if lease.lease_expired { ", " span.warn { "lapsed" } } @else { ", ends " (maybe_time(lease.lease_expires_at)) }
                    }
                } }
            }
            section.card aria-labelledby="agents-h" {
                h2 #agents-h { "Agents" }
                p { "Overloaded: "
                    @if data.workload.overloaded.is_empty() { span.muted { "none" } }
                    @for (i, a) in data.workload.overloaded.iter().enumerate() {
                        @if i > 0 { ", " } a.warn href=(agent_href(a)) { (a) }
                    }
                }
                p { "Idle: "
                    @if data.workload.idle.is_empty() { span.muted { "none" } }
                    @for (i, a) in data.workload.idle.iter().enumerate() {
                        @if i > 0 { ", " } a href=(agent_href(a)) { (a) }
                    }
                }
            }
        }
    }
}

fn workflow_row(r: &WorkflowReport) -> Markup {
    let s = &r.summary;
    let total = s.total_tasks.max(1) as f64;
    html! {
        tr {
            th scope="row" { a href=(workflow_href(&s.name)) { (s.name) } }
            td { (s.status.as_str()) }
            td { (progress(&r.progress)) }
            td {
                div.bar role="img" aria-label=(counts_label(&s.counts)) {
                    @for (state, n) in &s.counts {
                        span class={ "s-" (state.as_str()) } style={ "width:" (format!("{:.2}", *n as f64 / total * 100.0)) "%" } {}
                    }
                }
                span.muted { (counts_label(&s.counts)) }
            }
            td.num { (points(s.done_points)) " / " (points(s.total_points)) }
        }
    }
}

/// A workflow's progress in words.
pub(crate) fn progress(progress: &Progress) -> Markup {
    match progress {
        Progress::NotStarted => html! { "not started" },
        Progress::Moving => html! { "moving" },
        Progress::Paused => html! { "paused" },
        Progress::Stalled(why) => html! { span.warn title=(why) { "stalled" } },
        Progress::Finished => html! { "finished" },
    }
}

/// Task counts by state, in words.
pub(crate) fn counts_label(counts: &BTreeMap<TaskState, u64>) -> String {
    counts
        .iter()
        .map(|(state, n)| format!("{n} {}", state.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn agent_href(name: &str) -> String {
    format!("/agents/{}", encode(name))
}

struct Agents {
    seq: i64,
    profiles: Vec<AgentProfile>,
    workload: Workload,
    performance: PerformanceWindow,
}

pub(crate) async fn agents(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(paged): Query<Paged>,
) -> PageResult {
    let data = read(&console, |store| {
        Ok(Agents {
            seq: store.last_event_seq()?,
            profiles: store.agents()?,
            workload: store.workload(&Weights::default())?,
            performance: store.agent_performance_days(7, None, None)?,
        })
    })
    .await?;
    let page = Page::of(paged.page, data.profiles.len(), PAGE_SIZE);
    let body = html! {
        @if data.profiles.is_empty() {
            p.muted { "No agent has registered. An agent registers with agent_profile upsert." }
        } @else {
            table {
                caption.muted { "Work in progress against each agent's limit; performance over the last 7 days" }
                thead { tr {
                    th scope="col" { "Agent" } th scope="col" { "Status" }
                    th scope="col" { "WIP" } th scope="col" class="num" { "Utilisation" }
                    th scope="col" class="num" { "Completed (7 d)" } th scope="col" class="num" { "Success" }
                    th scope="col" { "Last active" }
                } }
                tbody {
                    @for profile in page.slice(&data.profiles, PAGE_SIZE) {
                        @let load = data.workload.agents.iter().find(|l| l.agent == profile.name);
                        @let perf = data.performance.agents.iter().find(|p| p.agent == profile.name);
                        tr {
                            th scope="row" { a href=(agent_href(&profile.name)) { (profile.name) } }
                            td { (profile.status.as_str()) }
                            td { (load.map_or(0, |l| l.tasks.len())) " of " (profile.max_concurrent) }
                            td.num { (load.map_or("0%".to_owned(), |l| percent(l.utilisation))) }
                            td.num { (perf.map_or(0, |p| p.metrics.completed)) }
                            td.num { (perf.and_then(|p| p.metrics.success_rate).map_or("–".to_owned(), percent)) }
                            td { (maybe_time(profile.last_active_at)) }
                        }
                    }
                }
            }
            (page.nav("Agent pages", |n| format!("/agents?page={n}")))
        }
    };
    Ok(page_html(layout(
        "Agents",
        Section::Agents,
        Some(&viewer),
        Some(data.seq),
        body,
    )))
}

struct AgentData {
    seq: i64,
    profile: AgentProfile,
    held: Vec<HeldTask>,
    workload: Workload,
    performance: PerformanceWindow,
}

pub(crate) async fn agent(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> PageResult {
    let data = read(&console, move |store| {
        Ok(AgentData {
            seq: store.last_event_seq()?,
            profile: store.agent(&name)?,
            held: store.held_tasks(&name)?,
            workload: store.workload(&Weights::default())?,
            performance: store.agent_performance_days(7, None, Some(&name))?,
        })
    })
    .await?;
    let p = &data.profile;
    let load = data.workload.agents.iter().find(|l| l.agent == p.name);
    let perf = data.performance.agents.first();
    let body = html! {
        p { a href="/agents" { "← All agents" } }
        div.split {
            section aria-labelledby="profile-h" {
                h2 #profile-h { "Profile" }
                dl.facts {
                    dt { "Status" } dd { (p.status.as_str()) }
                    dt { "WIP limit" } dd { (p.max_concurrent) }
                    dt { "Holds" } dd { (data.held.len()) @if let Some(l) = load { " (" (percent(l.utilisation)) " of its limit, " (l.queued) " delegated and not started)" } }
                    dt { "Points a day" } dd { (points(p.points_per_day)) }
                    dt { "Skills" } dd {
                        @if p.capabilities.is_empty() { span.muted { "none declared" } }
                        @for (i, (skill, level)) in p.capabilities.iter().enumerate() {
                            @if i > 0 { ", " } (skill) " " (level)
                        }
                    }
                    dt { "Registered" } dd { (time(p.created_at)) }
                    dt { "Last active" } dd { (maybe_time(p.last_active_at)) }
                }
            }
            section aria-labelledby="perf-h" {
                h2 #perf-h { "Performance, last 7 days" }
                @match perf {
                    None => p.muted { "No attempt ended in the window." },
                    Some(perf) => dl.facts {
                        dt { "Rank" } dd { (perf.rank) }
                        dt { "Completed" } dd { (perf.metrics.completed) " of " (perf.metrics.attempts) " attempts (before: " (perf.previous.completed) ")" }
                        dt { "Success rate" } dd { (perf.metrics.success_rate.map_or("–".to_owned(), percent)) " (smoothed " (percent(perf.metrics.smoothed_success_rate)) ")" }
                        dt { "First-pass yield" } dd { (perf.metrics.first_pass_yield.map_or("–".to_owned(), percent)) }
                        dt { "Retries" } dd { (perf.metrics.retries) }
                        dt { "Expired leases" } dd { (perf.metrics.expired_leases) }
                        dt { "Cycle time p50" } dd { (perf.metrics.cycle_time_p50_hours.map_or("–".to_owned(), |h| format!("{h:.2} h"))) }
                    },
                }
            }
        }
        section aria-labelledby="leases-h" {
            h2 #leases-h { "Current leases" }
            @if data.held.is_empty() { p.muted { "It holds no task." } } @else {
                table {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "State" } th scope="col" { "Lease ends" } th scope="col" { "Attempt" } } }
                    tbody { @for h in &data.held {
                        tr {
                            th scope="row" { a href=(task_href(&h.task.workflow_name, &h.task.key)) { (h.task.workflow_name) "/" (h.task.key) } " " span.muted { (h.task.title) } }
                            td { (page::state(h.task.state)) }
                            td { (maybe_time(h.lease_expires_at)) @if h.lapsed { " " span.warn { "lapsed" } } }
                            td.num { (h.task.attempt) " of " (h.task.max_attempts) }
                        }
                    } }
                }
            }
        }
    };
    Ok(page_html(layout(
        &format!("Agent {}", p.name),
        Section::Agents,
        Some(&viewer),
        Some(data.seq),
        body,
    )))
}

struct Collaboration {
    seq: i64,
    locks: Vec<Lock>,
    waits: Vec<Wait>,
    recent: Vec<Event>,
}

pub(crate) async fn collaboration(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult {
    let data = read(&console, |store| {
        let seq = store.last_event_seq()?;
        let (locks, waits) = store.locks()?;
        let recent = recent_events(store, seq, RECENT_EVENTS, |e| {
            e.kind == EventKind::Message
                || e.detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("handoff"))
        })?;
        Ok(Collaboration {
            seq,
            locks,
            waits,
            recent,
        })
    })
    .await?;
    let edges: Vec<(&Wait, &Lock)> = data
        .waits
        .iter()
        .flat_map(|w| {
            data.locks
                .iter()
                .filter(move |l| conflicts(&w.waiter, &w.resource, w.mode, l))
                .map(move |l| (w, l))
        })
        .collect();
    let messages: Vec<&Event> = data
        .recent
        .iter()
        .filter(|e| e.kind == EventKind::Message)
        .collect();
    let handoffs: Vec<&Event> = data
        .recent
        .iter()
        .filter(|e| e.kind != EventKind::Message)
        .collect();
    let body = html! {
        section aria-labelledby="locks-h" {
            h2 #locks-h { "Locks held" }
            @if data.locks.is_empty() { p.muted { "No lock is held." } } @else {
                table {
                    thead { tr { th scope="col" { "Resource" } th scope="col" { "Holder" } th scope="col" { "Mode" } th scope="col" { "Lapses" } } }
                    tbody { @for l in data.locks.iter().take(PAGE_SIZE * 4) {
                        tr { td { code { (l.resource.to_string()) } } td { a href=(agent_href(&l.owner)) { (l.owner) } } td { (l.mode.as_str()) } td { (time(l.expires_at)) } }
                    } }
                }
            }
        }
        section aria-labelledby="waits-h" {
            h2 #waits-h { "Wait-for graph" }
            @if edges.is_empty() { p.muted { "Nobody waits for a lock." } } @else {
                p.muted { "Each row is an edge: the waiter waits for the holder. A cycle here is a deadlock, which the store refuses when it would form." }
                table {
                    thead { tr { th scope="col" { "Waiter" } th scope="col" { "Waits for" } th scope="col" { "On" } th scope="col" { "Since" } } }
                    tbody { @for (w, l) in &edges {
                        tr { td { a href=(agent_href(&w.waiter)) { (w.waiter) } } td { a href=(agent_href(&l.owner)) { (l.owner) } } td { code { (w.resource.to_string()) } " (" (w.mode.as_str()) ")" } td { (time(w.since)) } }
                    } }
                }
            }
        }
        div.split {
            section aria-labelledby="messages-h" {
                h2 #messages-h { "Recent messages" }
                (event_list(&messages, "No message in the recent log."))
            }
            section aria-labelledby="handoffs-h" {
                h2 #handoffs-h { "Recent handoffs" }
                (event_list(&handoffs, "No handoff in the recent log."))
            }
        }
    };
    Ok(page_html(layout(
        "Collaboration",
        Section::Collaboration,
        Some(&viewer),
        Some(data.seq),
        body,
    )))
}

fn event_list(events: &[&Event], empty: &str) -> Markup {
    html! {
        @if events.is_empty() { p.muted { (empty) } } @else {
            ul { @for e in events.iter().take(PAGE_SIZE) {
                li {
                    (time(e.at)) " "
                    @if let Some(agent) = &e.agent { a href=(agent_href(agent)) { (agent) } " " }
                    @if let (Some(w), Some(k)) = (&e.workflow_name, &e.task_key) { a href=(task_href(w, k)) { (w) "/" (k) } " " }
                    @if let Some(d) = &e.detail { span.muted { (d) } }
                }
            } }
        }
    }
}

/// The newest events matching `keep` among the last `window` before `head`, newest first.
fn recent_events(
    store: &Store,
    head: i64,
    window: i64,
    keep: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, PageError> {
    let from = (head - window).max(0);
    let mut events: Vec<Event> = store
        .events_since(from, window as usize)?
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    events.reverse();
    Ok(events)
}

pub(crate) async fn sprints(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(paged): Query<Paged>,
) -> PageResult {
    let (seq, list) = read(&console, |store| {
        Ok((store.last_event_seq()?, store.sprints()?))
    })
    .await?;
    let page = Page::of(paged.page, list.len(), PAGE_SIZE);
    let body = html! {
        @if list.is_empty() { p.muted { "No sprint yet. One is planned with sprint_planning." } } @else {
            table {
                thead { tr {
                    th scope="col" { "Sprint" } th scope="col" { "Status" } th scope="col" { "Dates" }
                    th scope="col" class="num" { "Committed" } th scope="col" class="num" { "Completed" } th scope="col" class="num" { "Tasks" }
                } }
                tbody { @for s in page.slice(&list, PAGE_SIZE) { (sprint_row(s)) } }
            }
            (page.nav("Sprint pages", |n| format!("/sprints?page={n}")))
        }
    };
    Ok(page_html(layout(
        "Sprints",
        Section::Sprints,
        Some(&viewer),
        Some(seq),
        body,
    )))
}

fn sprint_row(s: &SprintSummary) -> Markup {
    html! {
        tr {
            th scope="row" { a href={ "/sprints/" (encode(&s.name)) } { (s.name) } }
            td { (s.status.as_str()) }
            td { (s.start) " to " (s.end) }
            td.num { (s.committed.map_or("–".to_owned(), points)) }
            td.num { (s.completed.map_or("–".to_owned(), points)) }
            td.num { (s.tasks) }
        }
    }
}

pub(crate) async fn sprint(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> PageResult {
    let (seq, analytics, retro) = read(&console, move |store| {
        let analytics = store.sprint_analytics(&name, &Default::default())?;
        let retro = store.sprint_retrospective(&name, &RetrospectiveOptions::default())?;
        Ok((store.last_event_seq()?, analytics, retro))
    })
    .await?;
    let title = format!("Sprint {}", analytics.sprint.name);
    Ok(page_html(layout(
        &title,
        Section::Sprints,
        Some(&viewer),
        Some(seq),
        sprint_body(&analytics, &retro),
    )))
}

fn sprint_body(a: &SprintAnalytics, retro: &Retrospective) -> Markup {
    let s = &a.sprint;
    let t = &a.report.totals;
    let chart = orchestration_core::sprint::svg(
        &format!("Sprint {}: burndown and burnup", s.name),
        &a.report,
    );
    html! {
        p { a href="/sprints" { "← All sprints" } }
        @if let Some(goal) = &s.goal { p { "Goal: " (goal) } }
        div.split {
            figure.chart {
                (PreEscaped(chart))
                figcaption.muted { "Burndown (points left) and burnup (points done, scope) by working day; the ideal line runs from the commitment to zero." }
            }
            section aria-labelledby="totals-h" {
                h2 #totals-h { "Commitment and done" }
                dl.facts {
                    dt { "Status" } dd { (s.status.as_str()) ", " (s.start) " to " (s.end) }
                    dt { "Committed" } dd { (points(t.committed)) }
                    dt { "Scope now" } dd { (points(t.scope)) " (+" (points(t.added)) " / −" (points(t.removed)) ")" }
                    dt { "Done" } dd { (points(t.completed)) }
                    dt { "Say/do" } dd { (t.say_do.map_or("–".to_owned(), percent)) }
                    dt { "Days" } dd { (a.report.elapsed_days) " of " (a.report.working_days) " working days" }
                }
                h2 { "Forecast" }
                @match &a.forecast {
                    Some(f) => dl.facts {
                        dt { "Left" } dd { (points(f.remaining)) " points, " (f.days_left) " working days" }
                        dt { "Done by" } dd { (f.p50) " (50%), " (f.p85) " (85%), " (f.p95) " (95%)" }
                        dt { "Chance by the end" } dd { strong { (percent(f.probability_by_end)) } }
                    },
                    None => p.muted { (a.forecast_note.as_deref().unwrap_or("No forecast.")) },
                }
                h2 { "Velocity" }
                @match &a.velocity {
                    Some(v) => p { "Mean " (points(v.mean)) ", median " (points(v.median)) " over " (v.sprints) " sprints" },
                    None => p.muted { "No closed sprint yet." },
                }
                @if !a.velocity_history.is_empty() {
                    ul { @for (name, done) in &a.velocity_history { li { (name) ": " (points(*done)) } } }
                }
            }
        }
        section aria-labelledby="findings-h" {
            h2 #findings-h { "Retrospective findings" }
            @if retro.findings.is_empty() { p.muted { "Nothing stands out yet." } }
            ul { @for f in &retro.findings { li { (f.observation) " " strong { "Action: " } (f.action) } } }
        }
        section aria-labelledby="carry-h" {
            h2 #carry-h { "Not finished" }
            @if a.carry_over.is_empty() { p.muted { "Every task is done." } } @else {
                table {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "State" } th scope="col" class="num" { "Points" } } }
                    tbody { @for c in a.carry_over.iter().take(PAGE_SIZE * 2) {
                        tr {
                            th scope="row" { @if let Some((w, k)) = c.task.split_once('/') { a href=(task_href(w, k)) { (c.task) } } @else { (c.task) } }
                            td { (page::state(c.state)) } td.num { (points(c.points)) }
                        }
                    } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventFilter {
    workflow: Option<String>,
    agent: Option<String>,
    kind: Option<String>,
    /// Show events before this position; the newest when missing.
    before: Option<i64>,
}

const KINDS: [EventKind; 11] = EventKind::ALL;

pub(crate) async fn events(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<EventFilter>,
) -> PageResult {
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let workflow = blank(&filter.workflow);
    let agent = blank(&filter.agent);
    let kind = match blank(&filter.kind) {
        None => None,
        Some(k) => Some(
            KINDS
                .into_iter()
                .find(|kind| kind.as_str() == k)
                .ok_or_else(|| PageError::BadRequest(format!("`{k}` is not a kind of event")))?,
        ),
    };
    let (w, a) = (workflow.clone(), agent.clone());
    let before = filter.before;
    let (head, shown, scanned_to) = read(&console, move |store| {
        let head = store.last_event_seq()?;
        let mut upper = before.unwrap_or(head + 1).min(head + 1);
        let floor = (upper - MAX_SCAN).max(0);
        let mut shown: Vec<Event> = Vec::new();
        while shown.len() < PAGE_SIZE && upper - 1 > floor {
            let from = (upper - 1 - 500).max(floor);
            let mut batch: Vec<Event> = store
                .events_since(from, (upper - 1 - from) as usize)?
                .into_iter()
                .filter(|e| e.seq < upper)
                .filter(|e| {
                    w.as_deref()
                        .is_none_or(|w| e.workflow_name.as_deref() == Some(w))
                })
                .filter(|e| a.as_deref().is_none_or(|a| e.agent.as_deref() == Some(a)))
                .filter(|e| kind.is_none_or(|k| e.kind == k))
                .collect();
            batch.reverse();
            shown.extend(batch);
            upper = from + 1;
        }
        shown.truncate(PAGE_SIZE);
        let next = match shown.last() {
            Some(last) if shown.len() == PAGE_SIZE => Some(last.seq),
            _ if upper - 1 > 0 => Some(upper),
            _ => None,
        };
        Ok((head, shown, next))
    })
    .await?;
    let query = |before: Option<i64>| {
        let mut parts = Vec::new();
        if let Some(w) = &workflow {
            parts.push(format!("workflow={}", encode(w)));
        }
        if let Some(a) = &agent {
            parts.push(format!("agent={}", encode(a)));
        }
        if let Some(k) = kind {
            parts.push(format!("kind={}", k.as_str()));
        }
        if let Some(b) = before {
            parts.push(format!("before={b}"));
        }
        format!("/events?{}", parts.join("&"))
    };
    let body = html! {
        form.filters method="get" action="/events" role="search" aria-label="Filter events" {
            label { "Workflow" input name="workflow" value=[workflow.as_deref()]; }
            label { "Agent" input name="agent" value=[agent.as_deref()]; }
            label { "Kind" select name="kind" {
                option value="" { "any" }
                @for k in KINDS { option value=(k.as_str()) selected[kind == Some(k)] { (k.as_str()) } }
            } }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() { p.muted { "No event matches." } } @else {
            table {
                caption.muted { "Newest first" }
                thead { tr {
                    th scope="col" class="num" { "#" } th scope="col" { "When" } th scope="col" { "Kind" }
                    th scope="col" { "Workflow / task" } th scope="col" { "Agent" } th scope="col" { "Change" }
                } }
                tbody { @for e in &shown {
                    tr {
                        td.num { (e.seq) }
                        td { (time(e.at)) }
                        td { (e.kind.as_str()) }
                        td {
                            @match (&e.workflow_name, &e.task_key) {
                                (Some(w), Some(k)) => a href=(task_href(w, k)) { (w) "/" (k) },
                                (Some(w), None) => a href=(workflow_href(w)) { (w) },
                                _ => { @if let Some(s) = &e.sprint { "sprint " (s) } }
                            }
                        }
                        td { @if let Some(a) = &e.agent { a href=(agent_href(a)) { (a) } } }
                        td {
                            @if let (Some(from), Some(to)) = (e.from, e.to) { (page::state(from)) " → " (page::state(to)) " " }
                            @if let Some(d) = &e.detail { span.muted { (d) } }
                        }
                    }
                } }
            }
        }
        nav.pager aria-label="Event pages" {
            @if before.is_some() { a href=(query(None)) { "Newest" } }
            @if let Some(next) = scanned_to { a href=(query(Some(next))) rel="next" { "Older →" } }
        }
    };
    Ok(page_html(layout(
        "Events",
        Section::Events,
        Some(&viewer),
        Some(head),
        body,
    )))
}
