//! The summary table printed at the end of a run (the original tool's columns).

use sinks::json::StepResult;

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
    let error_rate = if r.total_requests == 0 {
        0.0
    } else {
        100.0 * r.failed_requests as f64 / r.total_requests as f64
    };
    [
        r.id.clone(),
        format!("{:.2} req/s", r.request_rate),
        format!("{:.2} sec", r.e2e_latency_ms.avg / 1000.0),
        format!("{:.2} ms", r.time_to_first_token_ms.avg),
        format!("{:.2} ms", r.inter_token_latency_ms.avg),
        format!("{:.2} tokens/sec", r.token_throughput_secs),
        format!("{error_rate:.2}%"),
        format!("{}/{}", r.successful_requests, r.total_requests),
        // The original tool's figure: the successful requests' prompts, per successful request.
        format!("{:.2}", per_ok(r.total_tokens_sent)),
        format!("{:.2}", per_ok(r.total_tokens)),
    ]
}

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
