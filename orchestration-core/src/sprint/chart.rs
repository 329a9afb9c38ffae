//! Pictures of a sprint: a compact text chart of the burndown and burnup for summaries and
//! terminals, and a standalone SVG for people.

use std::fmt::Write;

use super::report::SprintReport;

/// The burndown (remaining `●` against the ideal `·`) and the burnup (scope `─`, completed `█`)
/// as two small text charts, one column per working day after a first column for the start.
pub fn text_chart(report: &SprintReport, height: usize) -> String {
    let height = height.max(2);
    let columns = report.working_days + 1;
    let start_scope = report.ideal.first().copied().unwrap_or(0.0);
    let mut remaining = vec![None; columns];
    let mut scope = vec![None; columns];
    let mut completed = vec![None; columns];
    remaining[0] = Some(start_scope);
    scope[0] = Some(start_scope);
    completed[0] = Some(0.0);
    for (i, day) in report.days.iter().enumerate() {
        remaining[i + 1] = Some(day.remaining);
        scope[i + 1] = Some(day.scope);
        completed[i + 1] = Some(day.completed);
    }
    let top = peak(report);
    let level = |v: f64| ((v / top) * (height - 1) as f64).round() as usize;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "burndown (● remaining, · ideal), {top:.0} points at the top"
    );
    for row in (0..height).rev() {
        let line: String = (0..columns)
            .map(|c| {
                if remaining[c].is_some_and(|v| level(v) == row) {
                    '●'
                } else if report.ideal.get(c).is_some_and(|&v| level(v) == row) {
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
            .map(|c| match (scope[c], completed[c]) {
                (_, Some(done)) if level(done) >= row && done > 0.0 => '█',
                (Some(s), _) if level(s) == row => '─',
                _ => ' ',
            })
            .collect();
        let _ = writeln!(out, "│{}", line.trim_end());
    }
    let _ = write!(out, "└{}", "─".repeat(columns));
    out
}

/// The burndown and burnup as an SVG document: remaining work against the ideal line, with the
/// scope and completed lines of the burnup behind them.
pub fn svg(title: &str, report: &SprintReport) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 360.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 48.0;
    let columns = report.working_days.max(1);
    let start_scope = report.ideal.first().copied().unwrap_or(0.0);
    let top = peak(report) * 1.1;
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
    let series = |f: fn(&super::report::BurnPoint) -> f64, first: f64| {
        std::iter::once(first)
            .chain(report.days.iter().map(f))
            .collect::<Vec<f64>>()
    };
    let remaining = series(|d| d.remaining, start_scope);
    let scope = series(|d| d.scope, start_scope);
    let completed = series(|d| d.completed, 0.0);

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
    for step in 0..=4 {
        let v = top * f64::from(step) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{v:.0}</text>"##,
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0
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
    let line = |points: String, colour: &str, extra: &str| {
        format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" {extra} points="{points}"/>"#
        )
    };
    let _ = writeln!(out, "{}", line(path(&scope), "#9ecae1", ""));
    let _ = writeln!(out, "{}", line(path(&completed), "#74c476", ""));
    let _ = writeln!(
        out,
        "{}",
        line(path(&report.ideal), "#999999", r#"stroke-dasharray="6 4""#)
    );
    let _ = writeln!(out, "{}", line(path(&remaining), "#d62728", ""));
    for (i, (label, colour)) in [
        ("remaining", "#d62728"),
        ("ideal", "#999999"),
        ("scope", "#9ecae1"),
        ("completed", "#74c476"),
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

/// The highest value either chart shows, at least 1 so that an empty sprint still has a scale.
fn peak(report: &SprintReport) -> f64 {
    report
        .days
        .iter()
        .map(|d| d.scope.max(d.remaining))
        .chain(report.ideal.first().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
