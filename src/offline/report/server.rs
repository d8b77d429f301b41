//! The report's server panels: the server's own view of each step (`server_metrics`) against
//! the offered rate, its TTFT beside ours, and — with `--slice-duration` — our figures per time
//! slice. Every panel is drawn only when the results hold its data: a file without
//! `server_metrics` or `slices` renders as before.

use std::fmt::Write as _;

use sinks::json::{ResultsDocument, StepResult};
use sinks::server_metrics::{SeriesSummary, ServerMetrics};
use sinks::slices::SliceRecord;

use super::html::{rate_of, Run, RATE_AXIS};
use super::svg::{self, Chart, Series, DASHES, PALETTE};

/// The server's TTFT p50 differs from ours beyond what the network explains when the two are
/// more than this share of ours apart...
pub const TTFT_GAP_SHARE: f64 = 0.10;
/// ...and more than this many milliseconds.
pub const TTFT_GAP_MS: f64 = 5.0;

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn steps_with_metrics(doc: &ResultsDocument) -> Vec<(&StepResult, &ServerMetrics)> {
    let mut steps: Vec<(&StepResult, &ServerMetrics)> = doc
        .results
        .iter()
        .filter_map(|r| r.server_metrics.as_ref().map(|m| (r, m)))
        .collect();
    steps.sort_by(|a, b| rate_of(a.0).total_cmp(&rate_of(b.0)));
    steps
}

/// A gauge's figure (mean, max) of a well-known series.
fn gauge(m: &ServerMetrics, key: &str, pick: fn(&SeriesSummary) -> Option<f64>) -> Option<f64> {
    m.series.get(key).and_then(pick)
}

fn gauge_max(s: &SeriesSummary) -> Option<f64> {
    match s {
        SeriesSummary::Gauge { max, .. } => *max,
        _ => None,
    }
}

/// The server's own prefix-cache hit rate: vLLM's hits over queries, else SGLang's gauge mean.
pub fn prefix_hit_rate(m: &ServerMetrics) -> Option<f64> {
    m.prefix_cache_hit_rate
        .or_else(|| gauge(m, "prefix_cache_hit_rate_gauge", SeriesSummary::mean))
}

/// A histogram's quantile of a well-known series, in milliseconds (its unit is seconds).
pub fn histogram_ms(m: &ServerMetrics, key: &str, q: Quantile) -> Option<f64> {
    match m.series.get(key)? {
        SeriesSummary::Histogram { p50, p90, p99, .. } => match q {
            Quantile::P50 => *p50,
            Quantile::P90 => *p90,
            Quantile::P99 => *p99,
        }
        .map(|s| s * 1000.0),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Quantile {
    P50,
    P90,
    P99,
}

type StepFigure = fn(&StepResult, &ServerMetrics) -> Option<f64>;

/// The line of run `i`'s figure `j` (none without points): colored by run when several runs
/// overlay, else by figure; dashed by figure.
fn line(
    runs: usize,
    (i, run): (usize, &str),
    (j, name): (usize, &str),
    points: Vec<(f64, f64)>,
) -> Option<Series> {
    if points.is_empty() {
        return None;
    }
    Some(Series {
        label: if runs > 1 {
            format!("{run} {name}")
        } else {
            name.to_string()
        },
        color: if runs > 1 { color(i) } else { color(j) },
        dash: DASHES[j % DASHES.len()],
        points,
        markers: true,
    })
}

/// One line per run and figure, against the offered rate.
fn per_step_chart(
    runs: &[Run],
    id: &str,
    title: &str,
    y_label: &str,
    figures: &[(&str, StepFigure)],
) -> Chart {
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let steps = steps_with_metrics(&run.doc);
        for (j, (name, figure)) in figures.iter().enumerate() {
            let points: Vec<(f64, f64)> = steps
                .iter()
                .filter_map(|(r, m)| figure(r, m).map(|v| (rate_of(r), v)))
                .collect();
            series.extend(line(runs.len(), (i, &run.label), (j, name), points));
        }
    }
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: RATE_AXIS.into(),
        y_label: y_label.into(),
        series,
    }
}

/// The server panels against the offered rate, those with data only.
pub fn step_charts(runs: &[Run]) -> Vec<Chart> {
    let charts = [
        per_step_chart(
            runs,
            "server-requests-vs-rate",
            "Server: requests running and waiting (mean) vs offered rate",
            "requests",
            &[
                ("running", |_, m| {
                    gauge(m, "requests_running", SeriesSummary::mean)
                }),
                ("waiting", |_, m| {
                    gauge(m, "requests_waiting", SeriesSummary::mean)
                }),
            ],
        ),
        per_step_chart(
            runs,
            "server-kv-cache-vs-rate",
            "Server: KV-cache usage vs offered rate",
            "KV-cache usage (%)",
            &[
                ("mean", |_, m| {
                    gauge(m, "kv_cache_usage", SeriesSummary::mean).map(|v| v * 100.0)
                }),
                ("max", |_, m| {
                    gauge(m, "kv_cache_usage", gauge_max).map(|v| v * 100.0)
                }),
            ],
        ),
        per_step_chart(
            runs,
            "server-prefix-cache-vs-rate",
            "Server: prefix-cache hit rate vs offered rate",
            "prefix-cache hit rate (%)",
            &[("hit rate", |_, m| prefix_hit_rate(m).map(|v| v * 100.0))],
        ),
        per_step_chart(
            runs,
            "server-ttft-vs-rate",
            "TTFT: the server's own vs ours",
            "TTFT (ms)",
            &[
                ("server p50", |_, m| {
                    histogram_ms(m, "ttft_seconds", Quantile::P50)
                }),
                ("server p99", |_, m| {
                    histogram_ms(m, "ttft_seconds", Quantile::P99)
                }),
                ("ours p50", |r, _| {
                    let s = &r.time_to_first_token_ms;
                    s.known(s.p50)
                }),
                ("ours p99", |r, _| {
                    let s = &r.time_to_first_token_ms;
                    s.known(s.p99)
                }),
            ],
        ),
    ];
    charts
        .into_iter()
        .filter(|c| !c.series.is_empty())
        .collect()
}

type SliceFigure = fn(&SliceRecord) -> Option<f64>;

fn slice_chart(
    runs: &[Run],
    id: &str,
    title: &str,
    y_label: &str,
    figures: &[(&str, SliceFigure)],
) -> Chart {
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut slices: Vec<&SliceRecord> = run.doc.slices.iter().collect();
        slices.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        for (j, (name, figure)) in figures.iter().enumerate() {
            let points: Vec<(f64, f64)> = slices
                .iter()
                .filter_map(|s| figure(s).map(|v| (s.start_ms / 1000.0, v)))
                .collect();
            series.extend(line(runs.len(), (i, &run.label), (j, name), points));
        }
    }
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: "slice start (s since the run's start)".into(),
        y_label: y_label.into(),
        series,
    }
}

/// A gauge's mean over a slice, when the server's metrics were scraped.
fn slice_gauge(s: &SliceRecord, key: &str) -> Option<f64> {
    gauge(s.server_metrics.as_ref()?, key, SeriesSummary::mean)
}

/// Our figures, and the server's, per time slice (`--slice-duration`), those with data only.
pub fn slice_charts(runs: &[Run]) -> Vec<Chart> {
    let charts = [
        slice_chart(
            runs,
            "slices-ttft",
            "TTFT per time slice",
            "TTFT (ms)",
            &[
                ("p50", |s| {
                    let t = &s.time_to_first_token_ms;
                    t.known(t.p50)
                }),
                ("p99", |s| {
                    let t = &s.time_to_first_token_ms;
                    t.known(t.p99)
                }),
            ],
        ),
        slice_chart(
            runs,
            "slices-itl",
            "ITL per time slice",
            "ITL (ms)",
            &[
                ("p50", |s| {
                    let t = &s.inter_token_latency_ms;
                    t.known(t.p50)
                }),
                ("p99", |s| {
                    let t = &s.inter_token_latency_ms;
                    t.known(t.p99)
                }),
            ],
        ),
        slice_chart(
            runs,
            "slices-throughput",
            "Output throughput per time slice",
            "output tokens/s",
            &[("throughput", |s| Some(s.token_throughput_secs))],
        ),
        slice_chart(
            runs,
            "slices-server-queue",
            "Server: requests running and waiting per time slice",
            "requests (mean)",
            &[
                ("running", |s| slice_gauge(s, "requests_running")),
                ("waiting", |s| slice_gauge(s, "requests_waiting")),
            ],
        ),
        slice_chart(
            runs,
            "slices-server-kv-cache",
            "Server: KV-cache usage per time slice",
            "KV-cache usage (%)",
            &[("mean", |s| {
                slice_gauge(s, "kv_cache_usage").map(|v| v * 100.0)
            })],
        ),
    ];
    charts
        .into_iter()
        .filter(|c| !c.series.is_empty())
        .collect()
}

/// A step whose server TTFT p50 and ours are further apart than the network explains.
#[derive(Clone, Debug, PartialEq)]
pub struct TtftGap {
    pub step: String,
    pub ours_ms: f64,
    pub server_ms: f64,
}

/// Whether two TTFT p50s differ beyond the network: more than [`TTFT_GAP_SHARE`] of ours and
/// more than [`TTFT_GAP_MS`] apart.
pub fn ttft_differs(ours_ms: f64, server_ms: f64) -> bool {
    let gap = (ours_ms - server_ms).abs();
    gap > TTFT_GAP_MS && gap > TTFT_GAP_SHARE * ours_ms
}

/// The steps of a document whose server TTFT p50 differs from ours (see [`ttft_differs`]).
pub fn ttft_gaps(doc: &ResultsDocument) -> Vec<TtftGap> {
    doc.results
        .iter()
        .filter_map(|r| {
            let m = r.server_metrics.as_ref()?;
            let server_ms = histogram_ms(m, "ttft_seconds", Quantile::P50)?;
            let ours = &r.time_to_first_token_ms;
            let ours_ms = ours.known(ours.p50)?;
            ttft_differs(ours_ms, server_ms).then(|| TtftGap {
                step: r.id.clone(),
                ours_ms,
                server_ms,
            })
        })
        .collect()
}

/// The server section of the report: its panels and the TTFT note; empty when no run has
/// server metrics or slices.
pub fn section(runs: &[Run]) -> String {
    let step = step_charts(runs);
    let slices = slice_charts(runs);
    let mut s = String::new();
    if !step.is_empty() {
        s.push_str("<h2>Server metrics</h2>");
        s.push_str(
            "<p>The server's own view of each step, scraped from its Prometheus endpoint: gauges \
             over the sending window, its TTFT histogram's quantiles interpolated within its \
             buckets.</p><div class=\"charts\">",
        );
        for c in &step {
            s.push_str(&svg::render(c));
        }
        s.push_str("</div>");
        s.push_str(&ttft_note(runs));
    }
    if !slices.is_empty() {
        s.push_str("<h2>Over time (slices)</h2><div class=\"charts\">");
        for c in &slices {
            s.push_str(&svg::render(c));
        }
        s.push_str("</div>");
    }
    s
}

fn ttft_note(runs: &[Run]) -> String {
    let compared = runs.iter().any(|run| {
        run.doc.results.iter().any(|r| {
            r.server_metrics
                .as_ref()
                .and_then(|m| histogram_ms(m, "ttft_seconds", Quantile::P50))
                .is_some()
        })
    });
    if !compared {
        return String::new();
    }
    let rule = format!(
        "Rule: the server's TTFT p50 and ours differ beyond what the network explains when they \
         are more than {:.0} % of ours and more than {TTFT_GAP_MS:.0} ms apart (ours runs from \
         our send to the first token we read, so it also holds the request's and the token's \
         way over the network; the server's is interpolated within its histogram buckets, so \
         a coarse bucket widens it too).",
        TTFT_GAP_SHARE * 100.0
    );
    let mut s = String::from("<div class=\"ttft-note\" id=\"server-ttft-note\">");
    let mut any = false;
    for run in runs {
        for g in ttft_gaps(&run.doc) {
            if !any {
                s.push_str("<p><strong>The server's TTFT differs from ours:</strong></p><ul>");
                any = true;
            }
            let _ = write!(
                s,
                "<li>{}{}: ours p50 {:.1} ms, the server's {:.1} ms ({:+.1} ms)</li>",
                if runs.len() > 1 {
                    format!("{} ", svg::escape(&run.label))
                } else {
                    String::new()
                },
                svg::escape(&g.step),
                g.ours_ms,
                g.server_ms,
                g.ours_ms - g.server_ms
            );
        }
    }
    if any {
        s.push_str("</ul>");
    } else {
        s.push_str("<p>The server's TTFT p50 agrees with ours in every step.</p>");
    }
    let _ = write!(s, "<p>{}</p></div>", svg::escape(&rule));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttft_rule_needs_both_the_share_and_the_milliseconds() {
        assert!(!ttft_differs(20.0, 16.0), "20 % but 4 ms");
        assert!(!ttft_differs(200.0, 190.0), "10 ms but 5 %");
        assert!(ttft_differs(200.0, 170.0), "30 ms and 15 %");
        assert!(
            ttft_differs(100.0, 250.0),
            "the server above ours counts too"
        );
    }

    fn run(metrics: bool) -> Run {
        let mut doc = ResultsDocument::new(
            serde_json::json!({}),
            "r".into(),
            "0".into(),
            0,
            sinks::json::SystemInfo::from_sources(&Default::default()),
        );
        let mut step = crate::offline::test_fixtures::step(20, 0, 0);
        if metrics {
            // Ours is 100 ms (the fixture's requests); the server says 40 ms.
            step.server_metrics = Some(crate::offline::test_fixtures::server_metrics(
                2.0, 0.5, 0.3, 0.040,
            ));
        }
        doc.results.push(step);
        Run {
            label: "run".into(),
            doc,
        }
    }

    #[test]
    fn panels_only_with_server_metrics_and_the_ttft_gap_is_said() {
        assert_eq!(
            section(&[run(false)]),
            "",
            "an older file renders as before"
        );
        let with = section(&[run(true)]);
        for id in [
            "server-requests-vs-rate",
            "server-kv-cache-vs-rate",
            "server-prefix-cache-vs-rate",
            "server-ttft-vs-rate",
            "server-ttft-note",
        ] {
            assert!(with.contains(&format!("id=\"{id}\"")), "{id}: {with}");
        }
        assert!(!with.contains("slices-ttft"), "no slices, no slice panels");
        let gaps = ttft_gaps(&run(true).doc);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!((gaps[0].server_ms - 40.0).abs() < 1e-9);
        assert!(with.contains("differs from ours"), "{with}");
        assert!(with.contains("more than 10 % of ours and more than 5 ms"));
    }
}
