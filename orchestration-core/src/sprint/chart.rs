//! Pictures of a sprint: a compact text chart of the burndown and burnup for summaries and
//! terminals, and a standalone SVG for people.
//!
//! Both draw the same series on the same scale ([`Series`]): the start column holds the
//! commitment, or for a sprint not started yet the scope planned, so that a planned sprint is
//! drawn against what it holds rather than against an empty commitment.

use std::fmt::Write;

use crate::text::points;

use super::guideline;
use super::report::{BurnPoint, SprintReport};

/// The burndown (remaining `●` against the ideal `·`) and the burnup (scope `─`, completed `█`)
/// as two small text charts, one column per working day after a first column for the start.
pub fn text_chart(report: &SprintReport, height: usize) -> String {
    let height = height.max(2);
    let series = Series::of(report);
    let columns = report.working_days + 1;
    let column = |values: &[f64], c: usize| values.get(c).copied();
    let top = series.scale();
    let level = |v: f64| ((v / top) * (height - 1) as f64).round() as usize;
    let mut out = String::new();
    let _ = write!(out, "burndown (● remaining, · ideal), ");
    if series.peak > 0.0 {
        let _ = write!(out, "{} at the top", points(series.peak));
    } else {
        let _ = write!(out, "no points in the sprint");
    }
    if !report.started {
        let _ = write!(out, "; not started: the ideal is that of the scope planned");
    }
    out.push('\n');
    for row in (0..height).rev() {
        let line: String = (0..columns)
            .map(|c| {
                if column(&series.remaining, c).is_some_and(|v| level(v) == row) {
                    '●'
                } else if column(&series.ideal, c).is_some_and(|v| level(v) == row) {
                    '·'
                } else {
                    ' '
                }
            })
            .collect();
        let _ = writeln!(out, "│{}", line.trim_end());
    }
    let _ = writeln!(out, "└{}", "─".repeat(columns));
    let _ = writeln!(out, "burnup (─ scope, █ completed)");
    for row in (0..height).rev() {
        let line: String = (0..columns)
            .map(
                |c| match (column(&series.scope, c), column(&series.completed, c)) {
                    (_, Some(done)) if level(done) >= row && done > 0.0 => '█',
                    (Some(s), _) if level(s) == row => '─',
                    _ => ' ',
                },
            )
            .collect();
        let _ = writeln!(out, "│{}", line.trim_end());
    }
    let _ = write!(out, "└{}", "─".repeat(columns));
    out
}

/// The burndown and burnup as an SVG document: remaining work against the ideal line, with the
/// scope and completed lines of the burnup behind them. Each line is a `polyline` whose class
/// names its series.
pub fn svg(title: &str, report: &SprintReport) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 360.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 48.0;
    let series = Series::of(report);
    let columns = report.working_days.max(1);
    let ticks = ticks(series.peak);
    let top = ticks.values.last().copied().unwrap_or(1.0);
    let x = |i: usize| LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / columns as f64;
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v / top);
    let path = |values: &[f64]| {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    );
    // Horizontal grid lines with their values.
    for &v in &ticks.values {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{v:.decimals$}</text>"##,
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            decimals = ticks.decimals
        );
    }
    for (i, day) in report.days.iter().enumerate() {
        if report.working_days <= 15 || i % 5 == 0 {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                x(i + 1),
                HEIGHT - BOTTOM + 16.0,
                day.date.format("%m-%d")
            );
        }
    }
    let line = |name: &str, values: &[f64], colour: &str, extra: &str| {
        format!(
            r#"<polyline class="{name}" fill="none" stroke="{colour}" stroke-width="2" {extra}points="{}"/>"#,
            path(values)
        )
    };
    let _ = writeln!(out, "{}", line("scope", &series.scope, SCOPE, ""));
    let _ = writeln!(
        out,
        "{}",
        line("completed", &series.completed, COMPLETED, "")
    );
    let _ = writeln!(
        out,
        "{}",
        line("ideal", &series.ideal, IDEAL, r#"stroke-dasharray="6 4" "#)
    );
    let _ = writeln!(
        out,
        "{}",
        line("remaining", &series.remaining, REMAINING, "")
    );
    for (i, (label, colour)) in [
        ("remaining", REMAINING),
        ("ideal", IDEAL),
        ("scope", SCOPE),
        ("completed", COMPLETED),
    ]
    .iter()
    .enumerate()
    {
        let lx = LEFT + 110.0 * i as f64;
        let ly = HEIGHT - 12.0;
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{ly}">{label}</text>"#,
            ly - 5.0,
            lx + 16.0
        );
    }
    out.push_str("</svg>\n");
    out
}

const REMAINING: &str = "#d62728";
const IDEAL: &str = "#999999";
const SCOPE: &str = "#9ecae1";
const COMPLETED: &str = "#74c476";

/// What the charts draw: one value per column, the start first, then one per elapsed working
/// day (the ideal has one per working day of the sprint), and the highest value of any of them.
struct Series {
    remaining: Vec<f64>,
    ideal: Vec<f64>,
    scope: Vec<f64>,
    completed: Vec<f64>,
    peak: f64,
}

impl Series {
    fn of(report: &SprintReport) -> Series {
        // A started sprint begins at its commitment. One not started has no commitment yet:
        // it begins at the scope planned, and its ideal is that scope burnt down evenly, the
        // line it would get if it started now.
        let (start, ideal) = if report.started {
            (
                report.ideal.first().copied().unwrap_or(0.0),
                report.ideal.clone(),
            )
        } else {
            (
                report.totals.scope,
                guideline(report.totals.scope, report.working_days),
            )
        };
        let column = |first: f64, f: fn(&BurnPoint) -> f64| {
            std::iter::once(first)
                .chain(report.days.iter().map(f))
                .collect::<Vec<f64>>()
        };
        let remaining = column(start, |d| d.remaining);
        let mut scope = column(start, |d| d.scope);
        if !report.started {
            // Until it starts, a plan holds its scope for the whole sprint: drawn across every
            // day, it is the line the burnup will start from, even before the first day.
            scope.resize(report.working_days + 1, report.totals.scope);
        }
        let peak = remaining
            .iter()
            .chain(&scope)
            .chain(&ideal)
            .copied()
            .fold(0.0_f64, f64::max);
        Series {
            completed: column(0.0, |d| d.completed),
            remaining,
            ideal,
            scope,
            peak,
        }
    }

    /// The value at the top of the text chart: the peak, or 1 so that an empty sprint still
    /// has a scale.
    fn scale(&self) -> f64 {
        if self.peak > 0.0 { self.peak } else { 1.0 }
    }
}

/// The values of an axis's grid lines and the decimals their labels need.
#[derive(Debug, PartialEq)]
struct Ticks {
    values: Vec<f64>,
    decimals: usize,
}

/// Grid lines from 0 to at least `peak` (1 for an empty sprint) in a round step of 1, 2 or 5
/// times a power of ten, at most five steps: every label distinct and exact.
fn ticks(peak: f64) -> Ticks {
    let peak = if peak > 0.0 { peak } else { 1.0 };
    let rough = peak / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let steps = (peak / step - 1e-9).ceil().max(1.0) as usize;
    // The decimals of the step itself: 0 for 1 and up, 1 for 0.5, 2 for 0.05. The nudge keeps
    // a logarithm a hair below a whole number from costing a decimal.
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    Ticks {
        values: (0..=steps).map(|i| step * i as f64).collect(),
        decimals,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_distinct_and_cover_the_peak() {
        let cases: [(f64, &[f64], usize); 9] = [
            (0.0, &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0], 1),
            (0.3, &[0.0, 0.1, 0.2, 0.3], 1),
            (1.0, &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0], 1),
            (6.0, &[0.0, 2.0, 4.0, 6.0], 0),
            (10.0, &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0], 0),
            (12.25, &[0.0, 5.0, 10.0, 15.0], 0),
            (51.0, &[0.0, 20.0, 40.0, 60.0], 0),
            (100.0, &[0.0, 20.0, 40.0, 60.0, 80.0, 100.0], 0),
            (3.0, &[0.0, 1.0, 2.0, 3.0], 0),
        ];
        for (peak, values, decimals) in cases {
            let ticks = ticks(peak);
            let rounded: Vec<f64> = ticks
                .values
                .iter()
                .map(|v| (v * 1e9).round() / 1e9)
                .collect();
            assert_eq!(
                (rounded.as_slice(), ticks.decimals),
                (values, decimals),
                "{peak}"
            );
        }
    }
}
