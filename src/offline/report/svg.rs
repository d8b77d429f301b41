//! Small line charts as inline SVG, written by hand.
//!
//! Why not a JS chart library: the report must open offline, years later, in any browser, and
//! be checked in tests; static SVG needs no script at all, renders the same everywhere, and the
//! whole chart code is the ~200 lines below. Hovering a point shows its value (SVG `<title>`).

use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 44.0;
/// Space below the plot for the legend, per line of it.
const LEGEND_LINE: f64 = 18.0;
/// A legend character's width at 11 px, a little generous, so that a label laid out by it (in
/// one or two columns, wrapped) fits in any sans-serif font: a two-run report's CDF labels
/// (`<file stem> <step id>`) are too long for two columns.
const LEGEND_CHAR: f64 = 6.6;
/// The line sample and the gap before a legend label.
const LEGEND_SAMPLE: f64 = 30.0;

/// Colors told apart by most color-blind readers (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

/// Line styles, for a second dimension besides color (e.g. percentiles, runs).
pub const DASHES: [&str; 4] = ["", "6 3", "2 3", "10 3 2 3"];

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub dash: &'static str,
    /// Sorted by the caller as the line should be drawn.
    pub points: Vec<(f64, f64)>,
    /// Draw a dot per point (sparse data), or only the line (CDFs).
    pub markers: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// XML text escaping.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// "Nice" tick positions (1, 2, 5 × 10^k) covering `lo..=hi`, about `target` of them.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || target == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut v = first;
    while v <= hi + step * 1e-9 {
        // Snap away float noise (0.30000000000000004).
        out.push((v / step).round() * step);
        v += step;
    }
    out
}

/// The axis range: from 0 (or the data's minimum if negative) to a little above the maximum.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let lo = lo.min(0.0);
    let hi = if hi <= lo { lo + 1.0 } else { hi * 1.05 };
    (lo, hi)
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart as an `<svg class="chart">` element. A chart without data says so in its body
/// instead of drawing empty axes.
pub fn render(chart: &Chart) -> String {
    let (legend_items, legend_lines) = legend_layout(&chart.series);
    let height = HEIGHT + legend_lines as f64 * LEGEND_LINE;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}">"#,
        id = escape(&chart.id),
        t = escape(&chart.title),
    );
    let _ = write!(
        s,
        r#"<text x="{x}" y="20" text-anchor="middle" class="title">{}</text>"#,
        escape(&chart.title),
        x = WIDTH / 2.0
    );
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    if points().next().is_none() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" class="empty">no data</text></svg>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return s;
    }
    let (x0, x1) = range(points().map(|p| p.0));
    let (y0, y1) = range(points().map(|p| p.1));
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
    axes(&mut s, chart, (x0, x1), (y0, y1), &sx, &sy);
    for series in &chart.series {
        draw_series(&mut s, series, &sx, &sy);
    }
    legend(&mut s, chart, &legend_items);
    s.push_str("</svg>");
    s
}

fn axes(
    s: &mut String,
    chart: &Chart,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) {
    let bottom = HEIGHT - BOTTOM;
    for t in ticks(y0, y1, 6) {
        let y = sy(t);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    for t in ticks(x0, x1, 8) {
        let x = sx(t);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom}"/><text x="{x:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            bottom + 16.0,
            label(t)
        );
    }
    let _ = write!(
        s,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{}" height="{}"/>"#,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        bottom + 36.0,
        escape(&chart.x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle" class="axis">{}</text>"#,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(&chart.y_label)
    );
}

fn draw_series(s: &mut String, series: &Series, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
    let pts: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .copied()
        .collect();
    if pts.is_empty() {
        return;
    }
    let mut d = String::new();
    for (i, (x, y)) in pts.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            sx(*x),
            sy(*y)
        );
    }
    let dash = if series.dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{}""#, series.dash)
    };
    let _ = write!(
        s,
        r#"<path class="series" d="{d}" stroke="{}" fill="none" stroke-width="2"{dash}><title>{}</title></path>"#,
        series.color,
        escape(&series.label)
    );
    if series.markers {
        for (x, y) in &pts {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: ({}, {})</title></circle>"#,
                sx(*x),
                sy(*y),
                series.color,
                escape(&series.label),
                label(*x),
                label(*y)
            );
        }
    }
}

/// Where a series' legend entry goes: its top-left corner and its label's lines.
struct LegendItem {
    x: f64,
    y: f64,
    lines: Vec<String>,
}

/// The legend in two columns when every label fits in one, else in one column, each label
/// wrapped to its column's width; and how many lines it takes.
fn legend_layout(series: &[Series]) -> (Vec<LegendItem>, usize) {
    let full = WIDTH - LEFT - RIGHT;
    let chars = |w: f64| ((w - LEGEND_SAMPLE) / LEGEND_CHAR).floor().max(8.0) as usize;
    let columns = if series
        .iter()
        .all(|s| s.label.chars().count() <= chars(full / 2.0))
    {
        2
    } else {
        1
    };
    let column = full / columns as f64;
    let mut items = Vec::new();
    let mut lines = 0;
    for row in series.chunks(columns) {
        let mut tallest = 1;
        for (k, s) in row.iter().enumerate() {
            let wrapped = wrap(&s.label, chars(column));
            tallest = tallest.max(wrapped.len());
            items.push(LegendItem {
                x: LEFT + k as f64 * column,
                y: HEIGHT + lines as f64 * LEGEND_LINE,
                lines: wrapped,
            });
        }
        lines += tallest;
    }
    (items, lines)
}

/// `text` in lines of at most `width` characters: at spaces, and inside a longer word.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            if line.chars().count() == width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    lines.push(line);
    lines
}

fn legend(s: &mut String, chart: &Chart, items: &[LegendItem]) {
    for (series, item) in chart.series.iter().zip(items) {
        let (x, y) = (item.x, item.y);
        let dash = if series.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, series.dash)
        };
        let _ = write!(
            s,
            r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2"{dash}/>"#,
            x + 24.0,
            series.color,
        );
        for (k, line) in item.lines.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" class="legend">{}</text>"#,
                x + LEGEND_SAMPLE,
                y + 4.0 + k as f64 * LEGEND_LINE,
                escape(line)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 0.9, 3), vec![0.0, 0.5]);
        assert_eq!(ticks(1.0, 1.0, 5), vec![1.0]);
    }

    #[test]
    fn a_chart_has_its_series_and_escapes_text() {
        let chart = Chart {
            id: "c".into(),
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "run & co".into(),
                color: PALETTE[0],
                dash: "",
                points: vec![(1.0, 2.0), (2.0, 3.0)],
                markers: true,
            }],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.contains("a &lt; b"));
        assert!(svg.contains("run &amp; co"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"series\"").count(), 1);
    }

    #[test]
    fn legends_fit_the_chart() {
        let series = |labels: &[&str]| -> Vec<Series> {
            labels
                .iter()
                .map(|l| Series {
                    label: l.to_string(),
                    color: PALETTE[0],
                    dash: "",
                    points: vec![(1.0, 1.0)],
                    markers: false,
                })
                .collect()
        };
        let right = |item: &LegendItem| {
            let longest = item.lines.iter().map(|l| l.chars().count()).max().unwrap();
            item.x + LEGEND_SAMPLE + longest as f64 * LEGEND_CHAR
        };
        // Short labels: two columns, as before.
        let (items, lines) = legend_layout(&series(&["a p50", "a p90", "b p50"]));
        assert_eq!(lines, 2);
        assert!(items[1].x > items[0].x && items[1].y == items[0].y);
        // A two-run CDF: `<file stem> <step id>` does not fit half the width: one column, and
        // no label runs past the chart's right edge or into its neighbour.
        let cdf = series(&[
            "run-a_2026-12-08-04-49-10 throughput",
            "run-a_2026-12-08-04-49-10 constant@161.74req/s",
            "run-b_2026-12-08-04-49-33 constant@252.00req/s",
        ]);
        let (items, lines) = legend_layout(&cdf);
        assert_eq!(lines, 3);
        assert!(items.iter().all(|i| i.x == LEFT && i.lines.len() == 1));
        assert!(items.iter().all(|i| right(i) <= WIDTH - RIGHT));
        // Longer than the whole width: wrapped, every character kept, the chart taller.
        let long = format!(
            "{} constant@10.00req/s",
            "meta-llama_Llama-3.1-8B".repeat(4)
        );
        let (items, lines) = legend_layout(&series(&[&long]));
        assert!(
            lines >= 2 && items[0].lines.len() == lines,
            "{:?}",
            items[0].lines
        );
        assert_eq!(
            items[0].lines.concat().replace(' ', ""),
            long.replace(' ', "")
        );
        assert!(right(&items[0]) <= WIDTH - RIGHT);
        let svg = render(&Chart {
            series: series(&[&long]),
            ..Chart::default()
        });
        assert!(svg.contains(&format!(
            "height=\"{}\"",
            HEIGHT + lines as f64 * LEGEND_LINE
        )));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = render(&Chart::default());
        assert!(svg.contains("no data"));
        assert!(!svg.contains("<path"));
    }
}
