//! The HTML report: one self-contained file (inline CSS and SVG, the results embedded as JSON
//! data, no script, no network) built from one or more results documents, which overlay.

use std::fmt::Write as _;

use sinks::json::{ResultsDocument, StepResult};
use sinks::stats::{LatencyHistogram, Summary};

use super::svg::{self, Chart, Series, DASHES, PALETTE};

/// One run of the report: a label (the file name) and its document.
pub struct Run {
    pub label: String,
    pub doc: ResultsDocument,
}

/// The x axis of "vs rate" charts.
pub(super) const RATE_AXIS: &str = "offered rate (req/s; throughput step: steady rate)";

/// The x of a step on "vs rate" charts: the offered rate (open loop), else the rate the closed
/// loop sustained (steady, else whole-step: the one the sweep scales its rates from). Not
/// `achieved_rate`: that counts the users' first burst of sends and lands where the sweep's
/// next rate step is.
pub(super) fn rate_of(r: &StepResult) -> f64 {
    r.offered_rate.unwrap_or_else(|| r.sustained_request_rate())
}

fn sorted_by_rate(doc: &ResultsDocument) -> Vec<&StepResult> {
    let mut steps: Vec<&StepResult> = doc.results.iter().collect();
    steps.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)));
    steps
}

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn throughput_chart(runs: &[Run]) -> Chart {
    Chart {
        id: "throughput-vs-rate".into(),
        title: "Output throughput vs offered rate".into(),
        x_label: RATE_AXIS.into(),
        y_label: "output tokens/s".into(),
        series: runs
            .iter()
            .enumerate()
            .map(|(i, run)| Series {
                label: run.label.clone(),
                color: color(i),
                dash: "",
                points: sorted_by_rate(&run.doc)
                    .iter()
                    .map(|r| (rate_of(r), r.token_throughput_secs))
                    .collect(),
                markers: true,
            })
            .collect(),
    }
}

type Pick = fn(&StepResult) -> &Summary;
type Percentile = (&'static str, fn(&Summary) -> f64);

fn latency_vs_rate_chart(runs: &[Run], id: &str, name: &str, pick: Pick) -> Chart {
    let percentiles: [Percentile; 3] = [("p50", |s| s.p50), ("p90", |s| s.p90), ("p99", |s| s.p99)];
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        for (j, (p, value)) in percentiles.iter().enumerate() {
            series.push(Series {
                label: format!("{} {p}", run.label),
                color: color(i),
                dash: DASHES[j % DASHES.len()],
                points: sorted_by_rate(&run.doc)
                    .iter()
                    .filter_map(|r| pick(r).known(value(pick(r))).map(|v| (rate_of(r), v)))
                    .collect(),
                markers: true,
            });
        }
    }
    Chart {
        id: id.into(),
        title: format!("{name} percentiles vs offered rate"),
        x_label: RATE_AXIS.into(),
        y_label: format!("{name} (ms)"),
        series,
    }
}

/// The latency–throughput trade-off: median E2E latency against output throughput, per step.
fn tradeoff_chart(runs: &[Run]) -> Chart {
    Chart {
        id: "latency-throughput".into(),
        title: "Latency–throughput trade-off (median E2E latency)".into(),
        x_label: "output tokens/s".into(),
        y_label: "E2E latency p50 (ms)".into(),
        series: runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let mut points: Vec<(f64, f64)> = run
                    .doc
                    .results
                    .iter()
                    .filter_map(|r| {
                        let e2e = &r.e2e_latency_ms;
                        e2e.known(e2e.p50).map(|v| (r.token_throughput_secs, v))
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    label: run.label.clone(),
                    color: color(i),
                    dash: "",
                    points,
                    markers: true,
                }
            })
            .collect(),
    }
}

/// Quantiles sampled for a CDF: every percent, then the tail in finer steps.
fn cdf_quantiles() -> Vec<f64> {
    let mut q: Vec<f64> = (0..100).map(|p| p as f64 / 100.0).collect();
    q.extend([0.995, 0.999, 0.9999, 1.0]);
    q
}

/// CDF points (latency ms, cumulative %) of a serialized histogram; empty if it cannot be read.
pub fn cdf_points(encoded: &str) -> Vec<(f64, f64)> {
    let Ok(h) = LatencyHistogram::from_base64(encoded) else {
        return Vec::new();
    };
    if h.is_empty() {
        return Vec::new();
    }
    cdf_quantiles()
        .into_iter()
        .map(|q| (h.quantile_ms(q), q * 100.0))
        .collect()
}

fn cdf_chart(runs: &[Run], id: &str, name: &str, pick: fn(&StepResult) -> &str) -> Chart {
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        for (j, r) in run.doc.results.iter().enumerate() {
            let label = if runs.len() > 1 {
                format!("{} {}", run.label, r.id)
            } else {
                r.id.clone()
            };
            series.push(Series {
                label,
                // One run: a color per step; several: a color per run, a dash per step.
                color: if runs.len() > 1 { color(i) } else { color(j) },
                dash: if runs.len() > 1 {
                    DASHES[j % DASHES.len()]
                } else {
                    ""
                },
                points: cdf_points(pick(r)),
                markers: false,
            });
        }
    }
    Chart {
        id: id.into(),
        title: format!("{name} CDF per step"),
        x_label: format!("{name} (ms)"),
        y_label: "requests (%)".into(),
        series,
    }
}

/// Every chart of the report, in order.
pub fn charts(runs: &[Run]) -> Vec<Chart> {
    vec![
        throughput_chart(runs),
        latency_vs_rate_chart(runs, "ttft-vs-rate", "TTFT", |r| &r.time_to_first_token_ms),
        latency_vs_rate_chart(runs, "itl-vs-rate", "ITL", |r| &r.inter_token_latency_ms),
        latency_vs_rate_chart(runs, "e2e-vs-rate", "E2E latency", |r| &r.e2e_latency_ms),
        tradeoff_chart(runs),
        cdf_chart(runs, "ttft-cdf", "TTFT", |r| &r.histograms.ttft),
        cdf_chart(runs, "itl-cdf", "ITL", |r| &r.histograms.itl),
        cdf_chart(runs, "e2e-cdf", "E2E latency", |r| &r.histograms.e2e),
    ]
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1340px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #e3e3e3}
svg .title{font-size:14px;font-weight:600}svg .tick,svg .legend{font-size:11px;fill:#444}
svg .axis{font-size:12px;fill:#222}svg .empty{font-size:14px;fill:#888}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
"#;

fn summary_table(run: &Run) -> String {
    let mut s = String::from(
        "<table><tr><th>Step</th><th>Offered req/s</th><th>Achieved req/s</th><th>Successful req/s</th>\
         <th>Output tok/s</th><th>TTFT p50/p99 (ms)</th><th>ITL p50/p99 (ms)</th><th>E2E p50/p99 (ms)</th>\
         <th>OK/Total</th><th>Dropped</th><th>Ended early</th></tr>",
    );
    for r in &run.doc.results {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
            svg::escape(&r.id),
            r.offered_rate.map_or("–".into(), |v| format!("{v:.2}")),
            r.achieved_rate,
            r.request_rate,
            r.token_throughput_secs,
            p50_p99(&r.time_to_first_token_ms, 1),
            p50_p99(&r.inter_token_latency_ms, 2),
            p50_p99(&r.e2e_latency_ms, 0),
            r.successful_requests,
            r.total_requests,
            r.dropped_arrivals,
            svg::escape(r.ended_early.as_deref().unwrap_or("")),
        );
    }
    s.push_str("</table>");
    s
}

/// Embeddings and rerank steps: their inputs per second (nothing for generation runs).
fn inputs_table(run: &Run) -> String {
    let rows: Vec<(&StepResult, &sinks::inputs::InputThroughput)> = run
        .doc
        .results
        .iter()
        .filter_map(|r| Some((r, r.inputs.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<h3>Inputs (embeddings, rerank: no first token, latency is E2E)</h3><table><tr><th>Step</th>\
         <th>Batch size</th><th>Inputs/s</th><th>Input tok/s</th><th>Server input tok/s</th></tr>",
    );
    for (r, i) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            svg::escape(&r.id),
            i.batch_size,
            i.inputs_per_second,
            i.input_tokens_per_second,
            i.server_input_tokens_per_second,
        );
    }
    s.push_str("</table>");
    s
}

/// `p50 / p99` of a summary, or "–" when nothing was measured.
pub(super) fn p50_p99(s: &Summary, digits: usize) -> String {
    match s.known(s.p50) {
        Some(p50) => format!("{p50:.digits$} / {:.digits$}", s.p99),
        None => crate::offline::table::MISSING.into(),
    }
}

fn errors_table(run: &Run) -> String {
    let failing: Vec<&StepResult> = run
        .doc
        .results
        .iter()
        .filter(|r| r.failed_requests > 0 || r.dropped_arrivals > 0)
        .collect();
    if failing.is_empty() {
        return "<p>No failed requests and no dropped arrivals.</p>".into();
    }
    let mut s = String::from(
        "<table><tr><th>Step</th><th>Failed</th><th>By class</th><th>HTTP statuses</th><th>Dropped arrivals</th><th>First error</th></tr>",
    );
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in failing {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            svg::escape(&r.id),
            r.failed_requests,
            svg::escape(&join(&r.errors)),
            svg::escape(&join(&r.http_statuses)),
            r.dropped_arrivals,
            svg::escape(r.first_error.as_deref().unwrap_or("")),
        );
    }
    s.push_str("</table>");
    s
}

fn pretty(v: &impl serde::Serialize) -> String {
    svg::escape(&serde_json::to_string_pretty(v).unwrap_or_default())
}

/// The results as JSON inside `<script type="application/json">`: data, never executed;
/// `</` is escaped so no string in it can close the element.
fn embedded_data(runs: &[Run]) -> String {
    let docs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| serde_json::json!({"label": r.label, "results": r.doc}))
        .collect();
    serde_json::to_string(&docs)
        .unwrap_or_else(|_| "[]".into())
        .replace("</", "<\\/")
}

/// The whole report.
pub fn render(runs: &[Run]) -> String {
    let title = match runs {
        [one] => format!("Benchmark report — {}", one.label),
        _ => format!("Benchmark report — {} runs", runs.len()),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>",
        t = svg::escape(&title)
    );
    s.push_str("<table><tr><th>Run</th><th>Run id</th><th>Status</th><th>Start</th><th>End</th><th>Model</th><th>Version</th></tr>");
    for run in runs {
        let d = &run.doc;
        let model = d
            .config
            .get("model_name")
            .and_then(|m| m.as_str())
            .unwrap_or("");
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            svg::escape(&run.label),
            svg::escape(&d.run_id),
            svg::escape(&format!("{:?}", d.status).to_lowercase()),
            svg::escape(&d.start_time),
            svg::escape(&d.end_time),
            svg::escape(model),
            svg::escape(&d.version)
        );
    }
    s.push_str("</table><h2>Charts</h2><div class=\"charts\">");
    for chart in charts(runs) {
        s.push_str(&svg::render(&chart));
    }
    s.push_str("</div>");
    s.push_str(&super::server::section(runs));
    for run in runs {
        let _ = write!(s, "<h2>Steps — {}</h2>", svg::escape(&run.label));
        s.push_str(&summary_table(run));
        s.push_str(&super::reasoning::table(run));
        s.push_str(&inputs_table(run));
        s.push_str("<h3>Errors</h3>");
        s.push_str(&errors_table(run));
        s.push_str(&super::images_tools::table(run));
        let _ = write!(
            s,
            "<details><summary>Configuration</summary><pre>{}</pre></details>\
             <details><summary>System</summary><pre>{}</pre></details>",
            pretty(&run.doc.config),
            pretty(&run.doc.system)
        );
    }
    let _ = writeln!(
        s,
        "<script type=\"application/json\" id=\"results-data\">{}</script></body></html>",
        embedded_data(runs)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's throughput step: 24 sent per second (the users' first burst included), 19.2
    /// successful over the step, 20 steady; the sweep's 1.2 × 20 step is at x = 24.
    #[test]
    fn a_closed_loop_step_is_plotted_at_its_steady_rate() {
        let mut closed = crate::offline::test_fixtures::throughput_step();
        let mut doc = ResultsDocument::new(
            serde_json::json!({}),
            "r".into(),
            "0".into(),
            0,
            sinks::json::SystemInfo::from_sources(&Default::default()),
        );
        doc.results = vec![closed.clone()];
        let run = Run {
            label: "a".into(),
            doc,
        };
        let chart = throughput_chart(std::slice::from_ref(&run));
        assert_eq!(chart.series[0].points[0].0, 20.0);
        assert!(chart.x_label.contains("steady"), "{}", chart.x_label);
        // No steady window: the whole step's successful rate, still not the achieved one.
        closed.steady_state = None;
        assert_eq!(rate_of(&closed), 19.2);
    }
}
