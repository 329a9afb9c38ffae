//! The frame every console page shares (navigation, the operator's login state, the live
//! region), the embedded stylesheet and script, and small pieces of markup the views reuse:
//! state badges, times, pagers.

use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use orchestration_core::TaskState;

use super::auth::Viewer;

/// The stylesheet, embedded so the console works offline.
const STYLESHEET: &str = include_str!("console.css");

/// The script: follows the event log and refreshes the page. The pages work without it.
const SCRIPT: &str = include_str!("console.js");

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

/// Which section of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Workflows,
    Agents,
    Collaboration,
    Sprints,
    Events,
    None,
}

const SECTIONS: [(Section, &str, &str); 5] = [
    (Section::Overview, "/", "Overview"),
    (Section::Agents, "/agents", "Agents"),
    (Section::Collaboration, "/collaboration", "Collaboration"),
    (Section::Sprints, "/sprints", "Sprints"),
    (Section::Events, "/events", "Events"),
];

/// A whole page: `title`, in `section`, following the log from `seq` when given.
pub(crate) fn layout(
    title: &str,
    section: Section,
    viewer: Option<&Viewer>,
    seq: Option<i64>,
    body: Markup,
) -> Markup {
    let current =
        |s: Section| s == section || (section == Section::Workflows && s == Section::Overview);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · orchestration console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body data-seq=[seq] {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Sections" {
                        span.brand { "orchestration" }
                        ul {
                            @for (s, href, label) in SECTIONS {
                                li {
                                    a href=(href) aria-current=[current(s).then_some("page")] { (label) }
                                }
                            }
                        }
                    }
                    @if let Some(viewer) = viewer { (who(viewer)) }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    p #live-status role="status" aria-live="polite" {
                        @if seq.is_some() { "Live updates need JavaScript; reload to see changes." }
                    }
                }
            }
        }
    }
}

/// The caller's role, and the login or logout control.
fn who(viewer: &Viewer) -> Markup {
    html! {
        div.who {
            @if viewer.is_operator() {
                span.role { "Operator" }
                @if viewer.by_cookie {
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(viewer.nonce());
                        button type="submit" { "Log out" }
                    }
                }
            } @else if viewer.operators_exist {
                span.role { "Read-only" }
                a href="/login" { "Log in to act" }
            } @else {
                span.role title="Start the server with --token to act from the console" { "Read-only" }
            }
        }
    }
}

/// The page for an error: what went wrong and a way back.
pub(crate) fn error_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        Section::None,
        None,
        None,
        html! {
            p.error { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

/// A task state as a badge.
pub(crate) fn state(state: TaskState) -> Markup {
    html! { span class={ "badge s-" (state.as_str()) } { (state.as_str()) } }
}

/// A time, machine-readable and short.
pub(crate) fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(orchestration_core::text::rfc3339(at)) { (at.format("%Y-%m-%d %H:%M:%S")) }
    }
}

/// An optional time, or a dash.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { "–" },
    }
}

/// Rows per page of every list.
pub(crate) const PAGE_SIZE: usize = 50;

/// One page of a list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    /// 1 for the first.
    pub(crate) number: usize,
    /// Pages in all, at least 1.
    pub(crate) pages: usize,
    /// Rows in all.
    pub(crate) total: usize,
}

impl Page {
    /// Page `number` (1 when missing or past the end) of `total` rows.
    pub(crate) fn of(number: Option<usize>, total: usize, size: usize) -> Page {
        let pages = total.div_ceil(size).max(1);
        Page {
            number: number.unwrap_or(1).clamp(1, pages),
            pages,
            total,
        }
    }

    /// The rows of this page.
    pub(crate) fn slice<'a, T>(&self, rows: &'a [T], size: usize) -> &'a [T] {
        let start = ((self.number - 1) * size).min(rows.len());
        let end = (start + size).min(rows.len());
        &rows[start..end]
    }

    /// Links to the pages before and after; `href` makes the link of a page number.
    pub(crate) fn nav(&self, label: &str, href: impl Fn(usize) -> String) -> Markup {
        html! {
            @if self.pages > 1 {
                nav.pager aria-label=(label) {
                    @if self.number > 1 {
                        a href=(href(self.number - 1)) rel="prev" { "← Previous" }
                    }
                    span { "Page " (self.number) " of " (self.pages) " (" (self.total) ")" }
                    @if self.number < self.pages {
                        a href=(href(self.number + 1)) rel="next" { "Next →" }
                    }
                }
            }
        }
    }
}

/// A number of points, to two decimals at most and without trailing zeros.
pub(crate) fn points(x: f64) -> String {
    let text = format!("{:.2}", (x * 100.0).round() / 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A share as a percentage.
pub(crate) fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// A link to a workflow.
pub(crate) fn workflow_href(name: &str) -> String {
    format!("/workflows/{}", super::auth::encode(name))
}

/// A link to a task's panel.
pub(crate) fn task_href(workflow: &str, key: &str) -> String {
    format!(
        "/workflows/{}/tasks/{}",
        super::auth::encode(workflow),
        super::auth::encode(key)
    )
}
