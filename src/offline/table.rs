//! The summary table printed at the end of a run (the original tool's columns). Dropped
//! arrivals count in the error rate and the successful/arrivals column.

use sinks::event::StepKind;
use sinks::json::StepResult;
use sinks::Summary;

const HEADERS: [&str; 10] = [
    "Benchmark",
    "QPS",
    "E2E Latency (avg)",
    "TTFT (avg)",
    "ITL (avg)",
    "Throughput",
    "Error Rate",
    "Successful Requests",
    "Prompt tokens per req (avg)",
    "Decoded tokens per req (avg)",
];

fn row(r: &StepResult) -> [String; 10] {
    let per_ok = |v: u64| {
        if r.successful_requests == 0 {
            0.0
        } else {
            v as f64 / r.successful_requests as f64
        }
    };
    // An arrival dropped at the in-flight cap was never served either: it counts against the
    // step beside the failed requests, so a step that dropped a third of its load does not
    // read as 0 % errors.
    let arrivals = r.total_requests + r.dropped_arrivals;
    let error_rate = 100.0 * crate::offline::thresholds::error_rate(r);
    let mut notes = Vec::new();
    if r.dropped_arrivals > 0 {
        notes.push(format!("{} dropped", r.dropped_arrivals));
    }
    // Successes on the wire that reasoned until max_tokens: no answer was measured.
    if r.reasoning.no_answer_requests > 0 {
        notes.push(format!("{} no answer", r.reasoning.no_answer_requests));
    }
    let served = if r.dropped_arrivals > 0 {
        arrivals
    } else {
        r.total_requests
    };
    let mut ok = format!("{}/{served}", r.successful_requests);
    if !notes.is_empty() {
        ok += &format!(" ({})", notes.join(", "));
    }
    [
        // Its rates are over the time it was not paused.
        match r.paused_ms {
            0 => r.id.clone(),
            ms => format!("{} (paused {:.1} s)", r.id, ms as f64 / 1e3),
        },
        // A closed loop at the rate it sustained (steady), as the report plots it.
        match r.kind {
            StepKind::Throughput => format!("{:.2} req/s", r.sustained_request_rate()),
            _ => format!("{:.2} req/s", r.request_rate),
        },
        seconds_or_ms(&r.e2e_latency_ms),
        avg(&r.time_to_first_token_ms, 1.0, "ms"),
        itl(r),
        // Embeddings and rerank have no output tokens: their throughput is in inputs.
        match &r.inputs {
            Some(i) => format!("{:.2} inputs/sec", i.inputs_per_second),
            None => format!("{:.2} tokens/sec", r.token_throughput_secs),
        },
        format!("{error_rate:.2}%"),
        ok,
        // The original tool's figure: the successful requests' prompts, per successful request.
        format!("{:.2}", per_ok(r.total_tokens_sent)),
        format!("{:.2}", per_ok(r.total_tokens)),
    ]
}

/// The binary's account of a run on stdout: the summary table and where the results are
/// (also when a `--threshold` failed: the run itself completed).
pub fn print_outcome(outcome: &Result<crate::RunSummary, crate::RunError>) {
    let summary = match outcome {
        Ok(s) => s,
        Err(crate::RunError::ThresholdsFailed { summary, .. }) => summary,
        Err(_) => return,
    };
    println!("{}", render(&summary.steps));
    println!("results: {}", summary.results_path.display());
}

/// A summary's mean in `unit` (ms divided by `per_ms`), or "–" when nothing was measured.
fn avg(s: &Summary, per_ms: f64, unit: &str) -> String {
    s.known(s.avg)
        .map_or_else(|| MISSING.into(), |v| format!("{:.2} {unit}", v / per_ms))
}

/// The original's seconds for a latency of a second or more, milliseconds below (an embeddings
/// request's 12 ms is not "0.01 sec").
fn seconds_or_ms(s: &Summary) -> String {
    match s.known(s.avg) {
        Some(ms) if ms < 1000.0 => avg(s, 1.0, "ms"),
        _ => avg(s, 1000.0, "sec"),
    }
}

/// The original's ITL (vLLM's TPOT) and, when the first chunks held several tokens, the per-token
/// ITL beside it: `8.42 ms (10.00 per token)`.
fn itl(r: &StepResult) -> String {
    let cell = avg(&r.inter_token_latency_ms, 1.0, "ms");
    let (tpot, per_token) = (&r.inter_token_latency_ms, &r.reasoning.per_token_itl_ms);
    match per_token_differs(tpot.known(tpot.avg), per_token.known(per_token.avg)) {
        Some(v) => format!("{cell} ({v:.2} per token)"),
        None => cell,
    }
}

/// The per-token figure when it differs from the TPOT by more than 1 % (several tokens in first
/// chunks); with one token a chunk they are the same figure, shown once.
pub fn per_token_differs(tpot: Option<f64>, per_token: Option<f64>) -> Option<f64> {
    let (a, b) = (tpot?, per_token?);
    ((b - a).abs() > 0.01 * a.abs()).then_some(b)
}

/// What a figure that was not measured shows (never 0).
pub const MISSING: &str = "–";

/// A Markdown-style table, readable in a terminal and pasteable into a document.
pub fn render(results: &[StepResult]) -> String {
    let rows: Vec<[String; 10]> = results.iter().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells
            .zip(widths.iter())
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|", cells.join("|"))
    };
    let mut out = vec![line(&mut HEADERS.iter().copied())];
    out.push(format!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    for r in &rows {
        out.push(line(&mut r.iter().map(String::as_str)));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::test_fixtures::step;

    #[test]
    fn dropped_arrivals_count_in_the_error_and_ok_columns() {
        let cells = row(&step(81, 0, 39));
        assert_eq!(cells[6], "32.50%", "39 of 120 arrivals were not served");
        assert_eq!(cells[7], "81/120 (39 dropped)");
        let cells = row(&step(9, 1, 0));
        assert_eq!((cells[6].as_str(), cells[7].as_str()), ("10.00%", "9/10"));
    }

    #[test]
    fn latencies_below_a_second_are_in_ms() {
        let mut r = step(4, 0, 0);
        assert_eq!(row(&r)[2], "200.00 ms", "the fixture's 200 ms requests");
        r.e2e_latency_ms.avg = 12.3;
        assert_eq!(row(&r)[2], "12.30 ms", "an embeddings request");
        r.e2e_latency_ms.avg = 2_500.0;
        assert_eq!(row(&r)[2], "2.50 sec", "the original's seconds");
    }

    #[test]
    fn a_closed_loop_step_is_at_its_steady_rate() {
        let mut r = crate::offline::test_fixtures::throughput_step();
        assert_eq!(row(&r)[1], "20.00 req/s");
        r.steady_state = None;
        assert_eq!(
            row(&r)[1],
            "19.20 req/s",
            "no steady window: the whole step's"
        );
        // An open loop keeps the original's figure.
        let open = step(4, 0, 0);
        assert_eq!(row(&open)[1], format!("{:.2} req/s", open.request_rate));
    }

    #[test]
    fn the_per_token_itl_stands_beside_the_itl_when_they_differ() {
        let mut r = step(2, 0, 0);
        assert_eq!(row(&r)[4], "20.01 ms", "one token a chunk: one figure");
        r.reasoning.per_token_itl_ms.avg = 25.0;
        assert_eq!(row(&r)[4], "20.01 ms (25.00 per token)");
    }

    #[test]
    fn a_paused_step_says_for_how_long() {
        let mut r = step(2, 0, 0);
        assert_eq!(row(&r)[0], "constant@12.00req/s");
        r.paused_ms = 2_040;
        assert_eq!(row(&r)[0], "constant@12.00req/s (paused 2.0 s)");
    }

    #[test]
    fn requests_without_an_answer_are_named_in_the_ok_column() {
        let mut r = step(8, 0, 2);
        r.reasoning.no_answer_requests = 8;
        assert_eq!(row(&r)[7], "8/10 (2 dropped, 8 no answer)");
    }

    #[test]
    fn missing_latencies_are_a_dash_not_zero() {
        let cells = row(&step(0, 5, 0));
        assert_eq!(cells[2..5], ["–", "–", "–"], "no request succeeded");
        let cells = row(&step(2, 0, 0));
        assert_eq!(cells[3], "100.00 ms");
    }
}
