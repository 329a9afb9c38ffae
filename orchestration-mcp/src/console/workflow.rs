//! A workflow's view: its DAG drawn by stages as SVG with the remaining critical path
//! highlighted, its tasks (paged), the operator's actions, and the panel of one task.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use maud::{Markup, PreEscaped, html};
use orchestration_core::agent::{Ranking, Weights};
use orchestration_core::store::{
    DelegationMode, Progress, TaskDetail, TaskView, WorkflowAttempt, WorkflowReport,
};
use orchestration_core::workflow::TaskKind;
use orchestration_core::{TaskRef, TaskState, WorkflowAction, WorkflowRef};
use serde::Deserialize;

use super::auth::Viewer;
use super::page::{
    self, Page, Section, layout, maybe_time, points, task_href, time, workflow_href,
};
use super::views::{agent_href, counts_label, progress};
use super::{Console, PageResult, html as page_html, read};

/// Tasks per page of a workflow's task table.
const TASKS_PER_PAGE: usize = 100;

/// The most tasks drawn one by one; a larger workflow is drawn as its stages' counts, so the
/// page stays small and quick however large the workflow.
pub(crate) const MAX_DRAWN: usize = 300;

/// Edges drawn at most; the critical path's are always drawn.
const MAX_EDGES: usize = 1_500;

const NODE_WIDTH: usize = 160;
const NODE_HEIGHT: usize = 26;
const COLUMN: usize = 200;
const ROW: usize = 34;
const MARGIN: usize = 16;
const TOP: usize = 28;

#[derive(Debug, Deserialize)]
pub(crate) struct WorkflowQuery {
    page: Option<usize>,
    task: Option<String>,
}

pub(crate) async fn workflow(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    Query(query): Query<WorkflowQuery>,
) -> PageResult {
    let task = query.task.clone();
    let (seq, report, detail, attempts, now) = read(&console, move |store| {
        let seq = store.last_event_seq()?;
        let report = store.workflow_report(&WorkflowRef::from(name.as_str()))?;
        let detail = match task {
            Some(key) => Some(store.task_detail(&TaskRef::key(report.summary.id, key))?),
            None => None,
        };
        let attempts = store.workflow_attempts(&report.summary.id.into(), TIMELINE_ATTEMPTS)?;
        Ok((seq, report, detail, attempts, store.now()?))
    })
    .await?;
    let title = format!("Workflow {}", report.summary.name);
    Ok(page_html(layout(
        &title,
        Section::Workflows,
        Some(&viewer),
        Some(seq),
        workflow_body(
            &report,
            detail.as_ref(),
            query.page,
            &viewer,
            &attempts,
            now,
        ),
    )))
}

pub(crate) async fn task(
    State(console): State<Arc<Console>>,
    Extension(viewer): Extension<Viewer>,
    Path((name, key)): Path<(String, String)>,
) -> PageResult {
    let (seq, detail, ranking) = read(&console, move |store| {
        let detail = store.task_detail(&TaskRef::key(WorkflowRef::from(name.as_str()), key))?;
        let ranking = ranking(store, &detail);
        Ok((store.last_event_seq()?, detail, ranking))
    })
    .await?;
    let t = &detail.task;
    let title = format!("Task {}/{}", t.workflow_name, t.key);
    let body = html! {
        p { a href=(workflow_href(&t.workflow_name)) { "← Workflow " (t.workflow_name) } }
        (task_panel(&detail, &viewer))
        @if let Some(ranking) = &ranking { (ranking_table(ranking)) }
    };
    Ok(page_html(layout(
        &title,
        Section::Workflows,
        Some(&viewer),
        Some(seq),
        body,
    )))
}

/// How every agent scores for a task an agent could still take: the breakdown behind a
/// delegation. Ranking without assigning changes nothing; on a database opened read-only
/// it cannot run, and the panel goes without it.
fn ranking(store: &orchestration_core::Store, detail: &TaskDetail) -> Option<Ranking> {
    let task = &detail.task;
    if task.kind != TaskKind::Work || task.state.is_terminal() {
        return None;
    }
    store
        .delegate(
            &task.id.into(),
            &Weights::default(),
            None,
            DelegationMode::Propose,
        )
        .ok()
        .map(|delegation| delegation.ranking)
}

fn ranking_table(ranking: &Ranking) -> Markup {
    html! {
        section aria-labelledby="ranking-h" {
            h2 #ranking-h { "Who fits" }
            @if ranking.ranked.is_empty() && ranking.rejected.is_empty() { p.muted { "No agent is registered." } }
            @if !ranking.ranked.is_empty() {
                table {
                    caption.muted { "Each qualified agent's score and its parts, best first" }
                    thead { tr {
                        th scope="col" { "Agent" } th scope="col" class="num" { "Score" } th scope="col" class="num" { "Fit" }
                        th scope="col" class="num" { "Quality" } th scope="col" class="num" { "Speed" } th scope="col" class="num" { "Free capacity" }
                    } }
                    tbody { @for r in ranking.ranked.iter().take(super::page::PAGE_SIZE) {
                        tr {
                            th scope="row" { a href=(agent_href(&r.agent)) { (r.agent) } }
                            td.num { (format!("{:.3}", r.breakdown.score)) }
                            td.num { (format!("{:.2}", r.breakdown.fit)) }
                            td.num { (format!("{:.2}", r.breakdown.quality)) " (" (r.breakdown.observations) ")" }
                            td.num { (format!("{:.2}", r.breakdown.speed)) }
                            td.num { (format!("{:.2}", r.breakdown.free_capacity)) }
                        }
                    } }
                }
            }
            @if !ranking.rejected.is_empty() {
                ul { @for (agent, why) in ranking.rejected.iter().take(super::page::PAGE_SIZE) {
                    li { a href=(agent_href(agent)) { (agent) } ": " span.muted { (why.to_string()) } }
                } }
            }
        }
    }
}

/// The actions an operator can take on a workflow in its status.
fn workflow_actions(report: &WorkflowReport, viewer: &Viewer) -> Markup {
    let status = report.summary.status;
    let actions: Vec<WorkflowAction> = [
        WorkflowAction::Start,
        WorkflowAction::Pause,
        WorkflowAction::Resume,
        WorkflowAction::RetryFailed,
        WorkflowAction::Cancel,
    ]
    .into_iter()
    .filter(|a| a.apply(status).is_some())
    // Retrying is offered only when there is something to retry, as the core requires.
    .filter(|a| *a != WorkflowAction::RetryFailed || has_failures(report))
    .collect();
    let href = format!("{}/action", workflow_href(&report.summary.name));
    html! {
        @if viewer.is_operator() && !actions.is_empty() {
            div.actions role="group" aria-label="Workflow actions" {
                @for action in actions {
                    form method="post" action=(href) {
                        input type="hidden" name="csrf" value=(viewer.nonce());
                        input type="hidden" name="action" value=(action.as_str());
                        button type="submit" class=[(action == WorkflowAction::Cancel).then_some("danger")] {
                            (action_label(action))
                        }
                    }
                }
            }
        }
    }
}

/// Whether some task failed, was cancelled or failed upstream: what a retry puts back.
fn has_failures(report: &WorkflowReport) -> bool {
    report.summary.counts.keys().any(|state| state.is_failure())
}

fn action_label(action: WorkflowAction) -> &'static str {
    match action {
        WorkflowAction::Start => "Start",
        WorkflowAction::Pause => "Pause",
        WorkflowAction::Resume => "Resume",
        WorkflowAction::RetryFailed => "Retry failed tasks",
        WorkflowAction::Cancel => "Cancel workflow",
    }
}

fn workflow_body(
    report: &WorkflowReport,
    detail: Option<&TaskDetail>,
    page_number: Option<usize>,
    viewer: &Viewer,
    attempts: &[WorkflowAttempt],
    now: DateTime<Utc>,
) -> Markup {
    let s = &report.summary;
    let page = Page::of(page_number, report.tasks.len(), TASKS_PER_PAGE);
    let critical: HashSet<&str> = report
        .remaining_critical_path
        .keys
        .iter()
        .map(String::as_str)
        .collect();
    let base = workflow_href(&s.name);
    html! {
        @if let Some(d) = &s.description { p { (d) } }
        dl.facts {
            dt { "Status" } dd { (s.status.as_str()) ", " (progress(&report.progress)) }
            @if let Progress::Stalled(why) = &report.progress { dt { "Why stalled" } dd.warn { (why) } }
            dt { "Tasks" } dd { (s.total_tasks) ": " (counts_label(&s.counts)) }
            dt { "Points" } dd { (points(s.done_points)) " of " (points(s.total_points)) " done" }
            dt { "Remaining critical path" } dd {
                (points(report.remaining_critical_path.length)) " points through "
                (report.remaining_critical_path.keys.len()) " tasks"
            }
            dt { "Forecast finish" } dd { (maybe_time(report.forecast_finish)) }
            dt { "Created" } dd { (time(s.created_at)) }
        }
        (workflow_actions(report, viewer))
        div.split {
            section aria-labelledby="graph-h" {
                h2 #graph-h { "Graph by stages" }
                (legend())
                div.graph {
                    (PreEscaped(graph_svg(report, &critical)))
                }
            }
            @if let Some(detail) = detail {
                section aria-labelledby="panel-h" {
                    h2 #panel-h { "Task " (detail.task.key) }
                    (task_panel(detail, viewer))
                }
            } @else {
                section aria-labelledby="path-h" {
                    h2 #path-h { "Remaining critical path" }
                    @if report.remaining_critical_path.keys.is_empty() { p.muted { "Nothing is left." } }
                    ol { @for key in &report.remaining_critical_path.keys {
                        li { a href=(task_href(&s.name, key)) { (key) } }
                    } }
                }
            }
        }
        section aria-labelledby="timeline-h" {
            h2 #timeline-h { "Attempts by agent" }
            @if attempts.is_empty() {
                p.muted { "No attempt has started yet." }
            } @else {
                div.graph { (PreEscaped(timeline_svg(&s.name, attempts, now))) }
            }
        }
        section aria-labelledby="tasks-h" {
            h2 #tasks-h { "Tasks" }
            table {
                thead { tr {
                    th scope="col" { "Task" } th scope="col" { "State" } th scope="col" class="num" { "Stage" }
                    th scope="col" class="num" { "Points" } th scope="col" { "Agent" } th scope="col" { "Attempt" }
                    th scope="col" { "Note or error" }
                } }
                tbody {
                    @let start = (page.number - 1) * TASKS_PER_PAGE;
                    @for (i, t) in page.slice(&report.tasks, TASKS_PER_PAGE).iter().enumerate() {
                        tr {
                            th scope="row" {
                                a href={ (base) "?task=" (super::auth::encode(&t.key)) "#panel-h" } { (t.key) }
                                @if critical.contains(t.key.as_str()) { " " span.error title="on the remaining critical path" { "●" } }
                                " " span.muted { (t.title) }
                            }
                            td { (page::state(t.state)) @if t.kind == TaskKind::Gate { " " span.badge.gate { "gate" } } }
                            td.num { (report.stages.get(start + i).copied().unwrap_or(0) + 1) }
                            td.num { (points(t.estimate)) }
                            td { @if let Some(a) = &t.agent { a href=(agent_href(a)) { (a) } } }
                            td { (t.attempt) "/" (t.max_attempts) }
                            td { @if let Some(e) = &t.error { span.error { (e) } } @else if let Some(n) = &t.note { (n) } }
                        }
                    }
                }
            }
            (page.nav("Task pages", |n| format!("{base}?page={n}")))
        }
    }
}

fn legend() -> Markup {
    html! {
        p.legend aria-hidden="true" {
            @for state in orchestration_core::TaskState::ALL { (page::state(state)) }
            span.error { "thick red: remaining critical path" }
        }
    }
}

/// The DAG as SVG: one column per stage, one box per task coloured by its state, linking to
/// its panel; edges and boxes of the remaining critical path drawn thick. Past
/// [`MAX_DRAWN`] tasks, each stage is drawn as its counts by state instead.
pub(crate) fn graph_svg(report: &WorkflowReport, critical: &HashSet<&str>) -> String {
    if report.tasks.len() > MAX_DRAWN {
        return stage_svg(report);
    }
    let mut rows: Vec<usize> = Vec::new();
    let mut position: HashMap<&str, (usize, usize)> = HashMap::new();
    for (task, &stage) in report.tasks.iter().zip(&report.stages) {
        let stage = stage as usize;
        if rows.len() <= stage {
            rows.resize(stage + 1, 0);
        }
        position.insert(task.key.as_str(), (stage, rows[stage]));
        rows[stage] += 1;
    }
    let width = MARGIN * 2 + rows.len().max(1) * COLUMN;
    let height = TOP + MARGIN + rows.iter().copied().max().unwrap_or(1) * ROW;
    let mut out = String::with_capacity(report.tasks.len() * 400);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="graph-title"><title id="graph-title">Dependency graph of {}: {} tasks in {} stages</title>"#,
        escape(&report.summary.name),
        report.tasks.len(),
        rows.len()
    );
    for stage in 0..rows.len() {
        let _ = write!(
            out,
            r#"<text class="stage" x="{}" y="18">Stage {}</text>"#,
            MARGIN + stage * COLUMN,
            stage + 1
        );
    }
    let at = |(stage, row): (usize, usize)| (MARGIN + stage * COLUMN, TOP + row * ROW);
    let mut drawn = 0;
    for (from, to) in &report.edges {
        let (Some(&a), Some(&b)) = (position.get(from.as_str()), position.get(to.as_str())) else {
            continue;
        };
        let on_path = critical.contains(from.as_str()) && critical.contains(to.as_str());
        if !on_path && drawn >= MAX_EDGES {
            continue;
        }
        drawn += 1;
        let ((ax, ay), (bx, by)) = (at(a), at(b));
        let (x1, y1) = (ax + NODE_WIDTH, ay + NODE_HEIGHT / 2);
        let (x2, y2) = (bx, by + NODE_HEIGHT / 2);
        let mid = (x1 + x2) / 2;
        let class = if on_path { "edge critical" } else { "edge" };
        let _ = write!(
            out,
            r#"<path class="{class}" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"/>"#
        );
    }
    for task in &report.tasks {
        let Some(&p) = position.get(task.key.as_str()) else {
            continue;
        };
        let (x, y) = at(p);
        let mut class = format!("s-{}", task.state.as_str());
        if critical.contains(task.key.as_str()) {
            class.push_str(" critical");
        }
        if task.kind == TaskKind::Gate {
            class.push_str(" gate");
        }
        let label: String = task.key.chars().take(22).collect();
        let _ = write!(
            out,
            r#"<a href="{href}"><g class="{class}"><title>{key}: {title} ({state}{gate})</title><rect class="node" x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="5"/><text x="{tx}" y="{ty}">{label}</text></g></a>"#,
            href = escape(&format!(
                "{}?task={}#panel-h",
                workflow_href(&report.summary.name),
                super::auth::encode(&task.key)
            )),
            key = escape(&task.key),
            title = escape(&task.title),
            state = task.state.as_str(),
            gate = if task.kind == TaskKind::Gate {
                ", a gate"
            } else {
                ""
            },
            tx = x + 8,
            ty = y + 17,
            label = escape(&label),
        );
    }
    out.push_str("</svg>");
    out
}

/// A large workflow's stages as stacked bars of their tasks' states.
fn stage_svg(report: &WorkflowReport) -> String {
    let mut stages: Vec<Vec<&TaskView>> = Vec::new();
    for (task, &stage) in report.tasks.iter().zip(&report.stages) {
        let stage = stage as usize;
        if stages.len() <= stage {
            stages.resize(stage + 1, Vec::new());
        }
        stages[stage].push(task);
    }
    const BAR: usize = 240;
    let width = MARGIN * 2 + stages.len().max(1) * (48 + 8);
    let height = TOP + BAR + 40;
    let most = stages.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="graph-title"><title id="graph-title">{} tasks in {} stages, drawn as each stage's tasks by state (too many to draw one by one; see the task list)</title>"#,
        report.tasks.len(),
        stages.len()
    );
    for (i, stage) in stages.iter().enumerate() {
        let x = MARGIN + i * 56;
        let mut y = TOP + BAR;
        for state in orchestration_core::TaskState::ALL {
            let n = stage.iter().filter(|t| t.state == state).count();
            if n == 0 {
                continue;
            }
            let h = (n * BAR).div_ceil(most);
            y -= h;
            let _ = write!(
                out,
                r#"<g class="s-{s}"><title>Stage {stage}: {n} {s}</title><rect x="{x}" y="{y}" width="48" height="{h}" fill="currentColor"/></g>"#,
                s = state.as_str(),
                stage = i + 1
            );
        }
        let _ = write!(
            out,
            r#"<text class="stage" x="{x}" y="{}">{}</text><text x="{x}" y="{}">{}</text>"#,
            TOP + BAR + 16,
            i + 1,
            TOP - 8,
            stage.len()
        );
    }
    out.push_str("</svg>");
    out
}

/// Text escaped for SVG markup.
/// The most attempts the timeline draws: the latest by their start.
const TIMELINE_ATTEMPTS: usize = 500;

/// The workflow's attempts as one row per agent along time: a bar from each attempt's start to
/// its end (or to now while it runs), coloured by how it ended, with the task and outcome in
/// its title.
pub(crate) fn timeline_svg(
    workflow: &str,
    attempts: &[WorkflowAttempt],
    now: DateTime<Utc>,
) -> String {
    const LABEL: usize = 120;
    const PLOT: usize = 640;
    const BAR: usize = 14;
    const LINE: usize = 22;
    let mut agents: Vec<&str> = attempts
        .iter()
        .map(|a| a.attempt.agent.as_deref().unwrap_or("(none)"))
        .collect();
    agents.sort_unstable();
    agents.dedup();
    let start = attempts
        .iter()
        .map(|a| a.attempt.started_at)
        .min()
        .unwrap_or(now);
    let end = attempts
        .iter()
        .map(|a| a.attempt.ended_at.unwrap_or(now))
        .max()
        .unwrap_or(now)
        .max(start + chrono::Duration::seconds(1));
    let span = (end - start).num_milliseconds().max(1) as f64;
    let x = |at: DateTime<Utc>| {
        LABEL as f64 + (at - start).num_milliseconds() as f64 / span * PLOT as f64
    };
    let width = LABEL + PLOT + 10;
    let height = 28 + agents.len() * LINE;
    let mut out = String::with_capacity(attempts.len() * 200 + 400);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="timeline-title"><title id="timeline-title">Attempts at the tasks of {}: {} attempts by {} agents, from {} to {}</title>"#,
        escape(workflow),
        attempts.len(),
        agents.len(),
        time_label(start),
        time_label(end)
    );
    let _ = write!(
        out,
        r#"<text class="stage" x="{LABEL}" y="14">{}</text><text class="stage" x="{}" y="14" text-anchor="end">{}</text>"#,
        time_label(start),
        LABEL + PLOT,
        time_label(end)
    );
    for (row, agent) in agents.iter().enumerate() {
        let y = 24 + row * LINE;
        let _ = write!(
            out,
            r#"<text x="0" y="{}">{}</text>"#,
            y + BAR - 3,
            escape(agent)
        );
    }
    for a in attempts {
        let agent = a.attempt.agent.as_deref().unwrap_or("(none)");
        let row = agents.binary_search(&agent).unwrap_or(0);
        let y = 24 + row * LINE;
        let (x1, x2) = (
            x(a.attempt.started_at),
            x(a.attempt.ended_at.unwrap_or(now)),
        );
        let outcome = match a.attempt.ended_as {
            None => "running".to_owned(),
            Some(state) => state.as_str().to_owned(),
        };
        let _ = write!(
            out,
            r#"<g class="s-{outcome}"><title>{}, attempt {}: {} ({} to {})</title><rect class="bar" x="{x1:.1}" y="{y}" width="{:.1}" height="{BAR}" rx="2"/></g>"#,
            escape(&a.task),
            a.attempt.number,
            outcome,
            time_label(a.attempt.started_at),
            a.attempt
                .ended_at
                .map_or_else(|| "now".to_owned(), time_label),
            (x2 - x1).max(2.0)
        );
    }
    out.push_str("</svg>");
    out
}

/// A time as the timeline's labels show it.
fn time_label(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One task: what it is, where it stands, its attempts and notes, and the operator's
/// actions on it.
fn task_panel(detail: &TaskDetail, viewer: &Viewer) -> Markup {
    let t = &detail.task;
    let base = task_href(&t.workflow_name, &t.key);
    html! {
        dl.facts {
            dt { "Title" } dd { (t.title) }
            dt { "State" } dd { (page::state(t.state)) @if let Some(r) = &t.reason { " " span.muted { (r.as_str()) } } }
            dt { "Points" } dd { (points(t.estimate)) @if let Some(a) = t.actual { " (spent " (points(a)) ")" } }
            dt { "Priority" } dd { (t.priority) }
            @if t.kind == TaskKind::Work {
                dt { "Attempt" } dd { (t.attempt) " of " (t.max_attempts) }
                dt { "Agent" } dd { @if let Some(a) = &t.agent { a href=(agent_href(a)) { (a) } } @else { "–" } }
                dt { "Lease ends" } dd { (maybe_time(t.lease_expires_at)) }
            } @else {
                dt { "Kind" } dd { "gate" }
            }
            @if t.next_attempt_at.is_some() { dt { "Next attempt" } dd { (maybe_time(t.next_attempt_at)) } }
            dt { "Depends on" } dd {
                @if t.depends_on.is_empty() { "–" }
                @for (i, d) in t.depends_on.iter().enumerate() { @if i > 0 { ", " } a href=(task_href(&t.workflow_name, d)) { (d) } }
            }
            dt { "Dependents" } dd {
                @if detail.dependents.is_empty() { "–" }
                @for (i, d) in detail.dependents.iter().enumerate() { @if i > 0 { ", " } a href=(task_href(&t.workflow_name, d)) { (d) } }
            }
            @if !t.skills.is_empty() {
                dt { "Skills" } dd { @for (i, (s, l)) in t.skills.iter().enumerate() { @if i > 0 { ", " } (s) " " (l) } }
            }
            @if let Some(by) = &detail.done_by { dt { "Done by" } dd { a href=(agent_href(by)) { (by) } } }
        }
        @if viewer.is_operator() && t.state.is_leased() {
            div.actions {
                form method="post" action={ (base) "/release" } {
                    input type="hidden" name="csrf" value=(viewer.nonce());
                    button type="submit" { "Release the lease" }
                }
            }
        }
        @if t.kind == TaskKind::Gate {
            p { strong { "A gate:" } " a person approves or rejects it once its dependencies are done; no agent claims it." }
        }
        @if viewer.is_operator() && t.state == TaskState::AwaitingApproval {
            form.actions method="post" action={ (base) "/gate" } aria-label="Decide on this gate" {
                input type="hidden" name="csrf" value=(viewer.nonce());
                label { "Note (optional)" input name="note" maxlength="10000"; }
                button type="submit" name="decision" value="approve" { "Approve" }
                button.danger type="submit" name="decision" value="reject" { "Reject" }
            }
        }
        @if let Some(d) = &t.description { h3 { "Description" } pre { (d) } }
        @if let Some(r) = &t.result { h3 { "Result" } pre { (r) } }
        @if let Some(e) = &t.error { h3 { "Error" } pre.error { (e) } }
        h3 { "Attempts" }
        @if detail.attempts.is_empty() { p.muted { "Not attempted yet." } } @else {
            table {
                thead { tr { th scope="col" { "#" } th scope="col" { "Agent" } th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "As" } } }
                tbody { @for a in &detail.attempts {
                    tr {
                        td.num { (a.number) }
                        td { @if let Some(g) = &a.agent { a href=(agent_href(g)) { (g) } } }
                        td { (time(a.started_at)) }
                        td { (maybe_time(a.ended_at)) }
                        td { @if let Some(s) = a.ended_as { (page::state(s)) } @else { "running" } @if let Some(d) = &a.detail { " " span.muted { (d) } } }
                    }
                } }
            }
        }
        h3 { "Notes" }
        @if detail.notes.is_empty() { p.muted { "No progress note." } } @else {
            @if detail.notes_total > detail.notes.len() { p.muted { "The latest " (detail.notes.len()) " of " (detail.notes_total) "." } }
            ul { @for n in &detail.notes { li { (time(n.at)) " " @if let Some(a) = &n.agent { (a) ": " } (n.text) } } }
        }
        p { a href={ "/events?workflow=" (super::auth::encode(&t.workflow_name)) } { "Events of this workflow" } }
    }
}
