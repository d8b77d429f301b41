//! One frame of the live console, drawn from a snapshot (pure: no terminal, no thread).
//!
//! Any terminal size is read whole: on a wide, tall one the steps and the live figures sit side
//! by side; otherwise the sections are stacked and get rows in order of importance (the header,
//! the current step's live figures, the step table with the current step, its progress, the
//! log, the chart); a section without room is left out. Within a section a column, figure or
//! word that does not fit is left out (least important first), never cut (`fit.rs`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

use super::fit::{self, Need};
use super::state::{Snapshot, StepSnapshot};
use crate::runtime::shutdown::Level;

/// What a frame shows.
pub struct View<'a> {
    pub title: &'a str,
    pub snap: &'a Snapshot,
    pub in_flight: u64,
    pub server: ServerNow,
    pub level: Level,
}

/// The server's own figures at its latest scrape (server metrics), each when known.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerNow {
    /// Requests waiting in the server's queue.
    pub waiting: Option<f64>,
    /// KV-cache usage, 0..1.
    pub kv_cache: Option<f64>,
}

impl ServerNow {
    fn known(&self) -> bool {
        self.waiting.is_some() || self.kv_cache.is_some()
    }
}

/// Side by side from this size on: the step table needs ~66 columns with every figure, the live
/// figures ~50, and the right column 17 rows.
const WIDE: (u16, u16) = (110, 30);
/// Rows of the live figures: seven lines in a border (eight with the server's line).
const FIGURES_ROWS: u16 = 9;
/// Rows of the progress gauge (one in a border).
const PROGRESS_ROWS: u16 = 3;
/// The log pane in the side-by-side layout.
const LOG_ROWS: u16 = 7;
/// Cells of the live figures' labels ("Throughput     ").
const LABEL_WIDTH: usize = 15;
/// The short forms of the status, for a narrow header: what the long ones abbreviate.
pub const SHORT_STATUS: [&str; 3] = ["q: stop", "stopping, q: cancel", "cancelling"];

pub fn draw(f: &mut Frame, v: &View) {
    let area = f.area();
    if area.width >= WIDE.0 && area.height >= WIDE.1 {
        draw_wide(f, v, area);
    } else {
        draw_stacked(f, v, area);
    }
}

fn draw_wide(f: &mut Frame, v: &View, area: Rect) {
    let [header, body, log] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(FIGURES_ROWS + 8),
        Constraint::Length(LOG_ROWS),
    ])
    .areas(area);
    draw_header(f, v, header);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    let [steps, progress] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(PROGRESS_ROWS)]).areas(left);
    draw_steps(f, v.snap, steps);
    draw_progress(f, v.snap.current(), progress);
    let [figures, chart] =
        Layout::vertical([Constraint::Length(figures_rows(v)), Constraint::Min(8)]).areas(right);
    draw_figures(f, v, figures);
    draw_chart(f, v.snap, chart);
    draw_log(f, v.snap, log);
}

/// The live figures' rows: one more when the server's figures are known, one more for the time
/// to first answer token once the step's requests reason.
fn figures_rows(v: &View) -> u16 {
    let reasoning = v.snap.current().is_some_and(|s| s.ttfa.is_some());
    FIGURES_ROWS + u16::from(v.server.known()) + u16::from(reasoning)
}

/// The sections of the stacked layout, top to bottom.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Header,
    Steps,
    Progress,
    Figures,
    Chart,
    Log,
}

fn draw_stacked(f: &mut Frame, v: &View, area: Rect) {
    use Section::*;
    let steps = u16::try_from(v.snap.steps.len()).unwrap_or(u16::MAX);
    // In order of importance; a border takes two rows. The step table first shows the current
    // step (border, header, one row), later the earlier ones; the log takes what is left.
    let needs = [
        (Header, Need { min: 1, want: 1 }),
        (
            Figures,
            Need {
                min: figures_rows(v),
                want: figures_rows(v),
            },
        ),
        (Steps, Need { min: 4, want: 4 }),
        (
            Progress,
            Need {
                min: PROGRESS_ROWS,
                want: PROGRESS_ROWS,
            },
        ),
        (Log, Need { min: 4, want: 4 }),
        (
            Steps,
            Need {
                min: 0,
                want: steps.saturating_sub(1),
            },
        ),
        (Chart, Need { min: 8, want: 16 }),
        (
            Log,
            Need {
                min: 0,
                want: u16::MAX,
            },
        ),
    ];
    let rows = fit::plan(area.height, &needs.map(|(_, n)| n));
    let height = |s: Section| -> u16 {
        let mut of_s = needs.iter().zip(&rows).filter(|((k, _), _)| *k == s);
        // A section's later rows only count when it got its first ones.
        match of_s.next() {
            Some((_, 0)) | None => 0,
            Some((_, first)) => first + of_s.map(|(_, r)| r).sum::<u16>(),
        }
    };
    let order = [Header, Steps, Progress, Figures, Chart, Log];
    let areas = Layout::vertical(order.map(|s| Constraint::Length(height(s)))).split(area);
    for (s, a) in order.iter().zip(areas.iter()) {
        if a.height == 0 {
            continue;
        }
        match s {
            Header => draw_header(f, v, *a),
            Steps => draw_steps(f, v.snap, *a),
            Progress => draw_progress(f, v.snap.current(), *a),
            Figures => draw_figures(f, v, *a),
            Chart => draw_chart(f, v.snap, *a),
            Log => draw_log(f, v.snap, *a),
        }
    }
}

/// A bordered block whose title is left out when it does not fit.
fn block(title: &str, area: Rect) -> Block<'static> {
    let b = Block::bordered();
    if fit::width(title) + 2 <= usize::from(area.width) {
        b.title(title.to_string())
    } else {
        b
    }
}

fn inner_width(area: Rect) -> usize {
    usize::from(area.width.saturating_sub(2))
}

fn draw_header(f: &mut Frame, v: &View, area: Rect) {
    let (status, short, color) = match v.level {
        Level::Running => (
            "q / Ctrl-C: stop the run · p: pause · +/-: load · e: end step",
            SHORT_STATUS[0],
            Color::DarkGray,
        ),
        Level::Stop => (
            "stopping: in-flight requests finish (q again: cancel them)",
            SHORT_STATUS[1],
            Color::Yellow,
        ),
        Level::Cancel => ("cancelling in-flight requests", SHORT_STATUS[2], Color::Red),
    };
    let room = usize::from(area.width);
    // One cell is the line's leading blank.
    let status = if fit::width(status) < room {
        status
    } else {
        short
    };
    let parts = [
        (
            v.title.to_string(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        (format!("run {}", v.snap.run_id), Style::default()),
        (status.to_string(), Style::default().fg(color)),
    ];
    let widths = parts.each_ref().map(|(t, _)| fit::width(t));
    // The status says what a key does now: it goes last; the run id first.
    let keep = fit::keep_fitting(&widths, &[1, 2, 0], 2, room.saturating_sub(1));
    let mut spans = Vec::new();
    for ((text, style), _) in parts.into_iter().zip(keep).filter(|(_, k)| *k) {
        spans.push(Span::raw(if spans.is_empty() { " " } else { "  " }));
        spans.push(Span::styled(text, style));
    }
    if fit::width(&Line::from(spans.clone()).to_string()) > room {
        spans.clear(); // not even the status fits
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The step table's columns: header, how to show a step, and rank (0 never dropped).
type Column = (&'static str, fn(&StepSnapshot) -> String, usize);

const COLUMNS: [Column; 6] = [
    (
        "Step",
        |s| format!("{} {}", if s.finished { "✓" } else { "▶" }, s.id),
        0,
    ),
    ("tok/s", |s| format!("{:.1}", s.token_rate), 1),
    ("req/s", |s| format!("{:.2}", s.request_rate), 3),
    ("TTFT50", |s| s.ttft.show(s.ttft.p50, 0), 4),
    ("ITL50", |s| s.itl.show(s.itl.p50, 1), 5),
    (
        "err/all",
        |s| format!("{}/{}", s.failed, s.ok + s.failed),
        2,
    ),
];

fn draw_steps(f: &mut Frame, snap: &Snapshot, area: Rect) {
    // Rows for the newest steps (the current one is the last): border and header take three.
    let fits = usize::from(area.height.saturating_sub(3));
    let shown = &snap.steps[snap.steps.len().saturating_sub(fits)..];
    let room = inner_width(area);
    let cells: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            COLUMNS
                .iter()
                .map(|(_, show, _)| show(s))
                .collect::<Vec<_>>()
        })
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| {
            cells
                .iter()
                .map(|r| fit::width(&r[i]))
                .chain([fit::width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let ranks = COLUMNS.map(|(_, _, rank)| rank);
    let keep = fit::keep_fitting(&widths, &ranks, 1, room);
    let kept = |row: Vec<String>| {
        row.into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            // Only the step's name can be wider than the table: it is ellipsized.
            .map(|(c, _)| fit::ellipsize(&c, room))
            .collect::<Vec<_>>()
    };
    let header = kept(COLUMNS.iter().map(|(n, _, _)| n.to_string()).collect());
    let rows: Vec<Row> = cells.into_iter().map(|r| Row::new(kept(r))).collect();
    let constraints: Vec<Constraint> = widths
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(w, _)| Constraint::Length(u16::try_from((*w).min(room)).unwrap_or(u16::MAX)))
        .collect();
    let title = if shown.len() < snap.steps.len() {
        format!(" Steps (last {} of {}) ", shown.len(), snap.steps.len())
    } else {
        " Steps ".into()
    };
    let title = if fit::width(&title) + 2 <= usize::from(area.width) {
        title
    } else {
        " Steps ".into()
    };
    let table = Table::new(rows, constraints)
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(block(&title, area));
    f.render_widget(table, area);
}

fn draw_progress(f: &mut Frame, step: Option<&StepSnapshot>, area: Rect) {
    // (text, rank): the share done matters most, the elapsed seconds least.
    let (ratio, parts) = match step {
        Some(s) => (
            s.progress.clamp(0.0, 1.0),
            vec![
                (s.id.clone(), 1),
                (format!("{:.0}%", s.progress * 100.0), 0),
                (format!("{:.0}s", s.elapsed_secs), 2),
            ],
        ),
        None => (0.0, vec![("starting".to_string(), 0)]),
    };
    let widths: Vec<usize> = parts.iter().map(|(t, _)| fit::width(t)).collect();
    let ranks: Vec<usize> = parts.iter().map(|(_, r)| *r).collect();
    let keep = fit::keep_fitting(&widths, &ranks, 2, inner_width(area));
    let label: Vec<String> = parts
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|((t, _), _)| t)
        .collect();
    f.render_widget(
        Gauge::default()
            .block(block(" Progress ", area))
            .gauge_style(Style::default().fg(Color::Cyan))
            .ratio(ratio)
            .label(fit::leading(&label, 2, inner_width(area), false)),
        area,
    );
}

/// A live figure: its label, then its parts (the first are the most important).
fn figure(label: &str, parts: Vec<String>, room: usize, more: bool) -> Option<Line<'static>> {
    let label_width = if fit::width(label) < LABEL_WIDTH
        && parts
            .first()
            .is_none_or(|p| LABEL_WIDTH + fit::width(p) <= room)
    {
        LABEL_WIDTH
    } else {
        fit::width(label) + 1
    };
    let rest = fit::leading(&parts, 2, room.saturating_sub(label_width), more);
    (!rest.is_empty()).then(|| Line::from(format!("{label:<label_width$}{rest}")))
}

/// The server's queue and KV cache at its latest scrape, those known.
fn server_figure(server: &ServerNow, room: usize) -> Option<Line<'static>> {
    let parts: Vec<String> = [
        server.waiting.map(|w| format!("waiting {w:.0}")),
        server
            .kv_cache
            .map(|k| format!("KV cache {:.0}%", k * 100.0)),
    ]
    .into_iter()
    .flatten()
    .collect();
    figure("Server", parts, room, false)
}

fn draw_figures(f: &mut Frame, v: &View, area: Rect) {
    let room = inner_width(area);
    let lines: Vec<Line> = match v.snap.current() {
        Some(s) => {
            let errors: Vec<String> = if s.errors.is_empty() {
                vec!["none".into()]
            } else {
                s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect()
            };
            let percentiles = |p: &super::state::Percentiles, digits| {
                vec![
                    format!("p50 {}", p.show(p.p50, digits)),
                    format!("p90 {}", p.show(p.p90, digits)),
                    format!("p99 {}", p.show(p.p99, digits)),
                ]
            };
            let offered = s.offered_rate.map_or("closed loop".into(), |r| {
                format!("{} req/s", sinks::event::rate_digits(r))
            });
            [
                figure("Offered rate", vec![offered], room, false),
                figure(
                    "Throughput",
                    vec![
                        format!("{:.1} tok/s", s.token_rate),
                        format!("{:.2} req/s", s.request_rate),
                    ],
                    room,
                    false,
                ),
                figure(
                    "In flight",
                    vec![
                        v.in_flight.to_string(),
                        format!("dropped arrivals {}", s.dropped),
                    ],
                    room,
                    false,
                ),
                v.server
                    .known()
                    .then(|| server_figure(&v.server, room))
                    .flatten(),
                figure("TTFT ms", percentiles(&s.ttft, 1), room, false),
                s.ttfa
                    .and_then(|p| figure("TTFA ms", percentiles(&p, 1), room, false)),
                figure("ITL ms", percentiles(&s.itl, 2), room, false),
                figure(
                    "Requests",
                    vec![format!("{} ok", s.ok), format!("{} failed", s.failed)],
                    room,
                    false,
                ),
                figure("Errors", errors, room, true),
            ]
            .into_iter()
            .flatten()
            .collect()
        }
        None => vec![Line::from(fit::leading(
            &["waiting for the first step".to_string()],
            0,
            room,
            false,
        ))],
    };
    let title = match v.snap.current() {
        Some(s) if s.warmup => " Live (warmup) ".to_string(),
        Some(s) => format!(" Live — {} ", s.id),
        None => " Live ".into(),
    };
    let title = if fit::width(&title) + 2 <= usize::from(area.width) {
        title
    } else {
        " Live ".into()
    };
    f.render_widget(Paragraph::new(lines).block(block(&title, area)), area);
}

fn draw_chart(f: &mut Frame, snap: &Snapshot, area: Rect) {
    let points = snap.throughput_points();
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let max_y = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let data = [Dataset::default()
        .name("tok/s")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(Color::Cyan))
        .data(&points)];
    let chart = Chart::new(data.to_vec())
        .block(block(" Throughput vs rate ", area))
        .x_axis(
            Axis::default()
                .title("req/s")
                .bounds([0.0, max_x])
                .labels(vec![Span::raw("0"), Span::raw(format!("{max_x:.1}"))]),
        )
        .y_axis(
            Axis::default()
                .title("tok/s")
                .bounds([0.0, max_y])
                .labels(vec![Span::raw("0"), Span::raw(format!("{max_y:.0}"))]),
        );
    f.render_widget(chart, area);
}

/// The newest log lines, wrapped at words (the newest at the bottom).
fn draw_log(f: &mut Frame, snap: &Snapshot, area: Rect) {
    let fits = usize::from(area.height.saturating_sub(2));
    let room = inner_width(area);
    let mut lines: Vec<String> = Vec::new();
    for entry in snap.log.iter().rev() {
        if lines.len() >= fits {
            break;
        }
        let mut wrapped = fit::wrap(entry, room);
        // An entry taller than what is left shows its end.
        let start = wrapped.len().saturating_sub(fits - lines.len());
        wrapped.drain(..start);
        lines.splice(0..0, wrapped);
    }
    f.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(block(" Log ", area)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::state::Percentiles;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::collections::BTreeSet;

    fn step(index: u32, id: &str, finished: bool) -> StepSnapshot {
        let pct = |base: f64| Percentiles {
            p50: base + 0.25,
            p90: base * 2.0 + 0.5,
            p99: base * 3.0 + 0.75,
            count: 40,
        };
        StepSnapshot {
            index,
            id: id.into(),
            warmup: index == 0,
            offered_rate: id.starts_with("constant").then_some(10.0 * index as f64),
            finished,
            progress: if finished { 1.0 } else { 0.4375 },
            elapsed_secs: 52.5,
            ok: 12_345 + u64::from(index),
            failed: 67,
            dropped: 8,
            request_rate: 21.75 + f64::from(index),
            token_rate: 4_321.5 + f64::from(index),
            errors: vec![("http_5xx", 40), ("timeout", 20), ("connection", 7)],
            ttft: pct(123.0 + f64::from(index)),
            itl: pct(17.0 + f64::from(index)),
            ttfa: None,
        }
    }

    /// A sweep well under way: more steps than an 80×24 screen has rows for.
    fn sweep() -> Snapshot {
        let mut steps = vec![step(0, "warmup", true), step(1, "throughput", true)];
        for i in 2..12 {
            steps.push(step(i, &format!("constant@{}.00req/s", 10 * i), i < 11));
        }
        Snapshot {
            run_id: "5f3a9c1".into(),
            steps,
            // Three kinds of lines, so any few of the newest have every word of the log.
            log: (0..30)
                .map(|i| {
                    [
                        "[5f3a9c1] step finished: 4321.5 tok/s, 0 errors, ended early: saturated",
                        "warning: the server's /metrics could not be read",
                        "[5f3a9c1] step starts: constant@110.00req/s",
                    ][i % 3]
                        .to_string()
                })
                .collect(),
        }
    }

    /// The screen as text lines (trailing blanks trimmed).
    fn render(width: u16, height: u16, snap: &Snapshot, level: Level) -> Vec<String> {
        render_with(width, height, snap, level, ServerNow::default())
    }

    fn render_with(
        width: u16,
        height: u16,
        snap: &Snapshot,
        level: Level,
        server: ServerNow,
    ) -> Vec<String> {
        let mut term = Terminal::new(TestBackend::new(width, height)).unwrap();
        let view = View {
            title: "inference-benchmarker → simulated",
            snap,
            in_flight: 12,
            server,
            level,
        };
        term.draw(|f| draw(f, &view)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    /// The words of a screen: drawing characters (borders, gauge blocks, braille plot dots) are
    /// blanks, so what is left are the texts the view wrote.
    fn words(lines: &[String]) -> Vec<String> {
        let drawing = |c: char| matches!(c as u32, 0x2500..=0x259F | 0x2800..=0x28FF);
        lines
            .iter()
            .flat_map(|l| {
                l.chars()
                    .map(|c| if drawing(c) { ' ' } else { c })
                    .collect::<String>()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// At each size the screen fits, and every word on it is a whole word of the same view drawn
    /// on a screen large enough for everything: a column, label or number that does not fit is
    /// left out, never cut into a fragment.
    #[test]
    fn every_size_shows_whole_words_only() {
        let snap = sweep();
        let known = ServerNow {
            waiting: Some(3.0),
            kv_cache: Some(0.87),
        };
        for (level, server) in [
            (Level::Running, ServerNow::default()),
            (Level::Stop, ServerNow::default()),
            (Level::Running, known),
        ] {
            let mut whole: BTreeSet<String> = words(&render_with(300, 80, &snap, level, server))
                .into_iter()
                .collect();
            // What a small screen may show besides: the short status, how many steps it shows,
            // how many error classes it leaves out.
            let n = snap.steps.len();
            let extra = SHORT_STATUS
                .iter()
                .map(|s| s.to_string())
                .chain((1..=n).map(|k| format!("(last {k} of {n})")))
                .chain((1..=3).map(|k| format!("+{k} more")));
            whole.extend(extra.flat_map(|e| words(&[e])));
            for (w, h) in [(80, 24), (60, 20), (120, 40), (100, 30), (40, 12)] {
                let screen = render_with(w, h, &snap, level, server);
                let text = screen.join("\n");
                assert!(screen.len() <= usize::from(h), "{w}×{h}:\n{text}");
                for line in &screen {
                    assert!(
                        Span::raw(line.as_str()).width() <= usize::from(w),
                        "{w}×{h}: {line}"
                    );
                }
                for word in words(&screen) {
                    assert!(
                        whole.contains(&word),
                        "{w}×{h}: {word:?} is a fragment:\n{text}"
                    );
                }
            }
        }
    }

    /// 80×24: the current step, its live figures and the step table's header are there whole,
    /// and every figure in the current step's row parses.
    #[test]
    fn eighty_by_twenty_four_keeps_the_current_step_and_its_figures() {
        let snap = sweep();
        let screen = render(80, 24, &snap, Level::Running);
        let text = screen.join("\n");
        let current = snap.current().unwrap();
        let row = screen
            .iter()
            .find(|l| l.contains(&format!("▶ {}", current.id)))
            .unwrap_or_else(|| panic!("no row of the current step:\n{text}"));
        let cells: Vec<&str> = row
            .split(|c: char| c == '│' || c.is_whitespace())
            .filter(|c| !c.is_empty())
            .skip(2)
            .collect();
        assert!(cells.len() >= 2, "{row}");
        for cell in cells {
            let number = |s: &str| s.parse::<f64>().is_ok();
            let ok = number(cell)
                || cell
                    .split_once('/')
                    .is_some_and(|(a, b)| number(a) && number(b))
                || cell == crate::offline::table::MISSING;
            assert!(ok, "{cell:?} in {row:?} is not a whole figure:\n{text}");
        }
        let header = screen
            .iter()
            .find(|l| l.contains("Step "))
            .unwrap_or_else(|| panic!("no table header:\n{text}"));
        for label in words(std::slice::from_ref(header)) {
            assert!(
                ["Step", "tok/s", "req/s", "TTFT50", "ITL50", "err/all"].contains(&label.as_str()),
                "{label:?} in {header:?}"
            );
        }
        let rate = format!("{:.1} tok/s", current.token_rate);
        for needle in ["Throughput", "TTFT ms", "p50", &rate, "q / Ctrl-C"] {
            assert!(
                text.contains(needle),
                "{needle:?} missing at 80×24:\n{text}"
            );
        }
    }

    /// The server's queue and KV cache (server metrics) on their own line when known: at 80×24
    /// beside everything the screen showed before; without them, no such line.
    #[test]
    fn the_time_to_first_answer_token_shows_once_requests_reason() {
        let mut snap = sweep();
        let plain = render(80, 24, &snap, Level::Running).join("\n");
        assert!(!plain.contains("TTFA"), "{plain}");
        let last = snap.steps.len() - 1;
        snap.steps[last].ttfa = Some(Percentiles {
            p50: 456.25,
            p90: 789.5,
            p99: 999.75,
            count: 40,
        });
        for (w, h) in [(80, 24), (120, 40)] {
            let screen = render(w, h, &snap, Level::Running);
            let text = screen.join("\n");
            let line = screen
                .iter()
                .find(|l| l.contains("TTFA ms"))
                .unwrap_or_else(|| panic!("no TTFA line at {w}x{h}:\n{text}"));
            assert!(line.contains("p50 456.2"), "{line}");
            assert!(
                text.contains("TTFT ms") && text.contains("ITL ms"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_servers_queue_and_kv_cache_show_when_known() {
        let snap = sweep();
        let plain = render(80, 24, &snap, Level::Running).join("\n");
        assert!(!plain.contains("Server "), "{plain}");
        let server = ServerNow {
            waiting: Some(3.0),
            kv_cache: Some(0.87),
        };
        let screen = render_with(80, 24, &snap, Level::Running, server);
        let text = screen.join("\n");
        let line = screen
            .iter()
            .find(|l| l.contains("Server "))
            .unwrap_or_else(|| panic!("no server line:\n{text}"));
        assert!(
            line.contains("waiting 3") && line.contains("KV cache 87%"),
            "{line}"
        );
        let current = snap.current().unwrap();
        for needle in [
            format!("▶ {}", current.id),
            "TTFT ms".into(),
            "In flight".into(),
            "Step ".into(),
        ] {
            assert!(text.contains(&needle), "{needle:?} missing:\n{text}");
        }
        // Only the KV cache known (an engine without a queue gauge): it alone.
        let kv_only = ServerNow {
            waiting: None,
            kv_cache: Some(0.5),
        };
        let text = render_with(80, 24, &snap, Level::Running, kv_only).join("\n");
        assert!(
            text.contains("KV cache 50%") && !text.contains("waiting"),
            "{text}"
        );
    }
}
