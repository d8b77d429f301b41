//! The report's table of image inputs and tool calls per step; empty when no step had any.

use std::fmt::Write as _;

use super::html::{p50_p99, Run};
use super::svg;
use crate::offline::table::MISSING;

/// One row per step that sent images or offered tools, under its own heading.
pub fn table(run: &Run) -> String {
    let steps: Vec<_> = run
        .doc
        .results
        .iter()
        .filter_map(|r| Some((r, r.images_and_tools.as_ref()?)))
        .collect();
    if steps.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<h3>Images and tool calls</h3><table><tr><th>Step</th><th>Images</th><th>Image MB</th>\
         <th>Images/request</th><th>Images/s</th><th>Requests with tools</th><th>Tool calls</th>\
         <th>Time to first tool call p50/p99 (ms)</th></tr>",
    );
    for (r, f) in steps {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            svg::escape(&r.id),
            f.images,
            f.image_bytes as f64 / 1e6,
            f.images_per_request
                .map_or(MISSING.into(), |v| format!("{v:.2}")),
            f.image_throughput,
            f.requests_with_tools,
            f.tool_calls,
            p50_p99(&f.time_to_first_tool_call_ms, 1),
        );
    }
    s.push_str("</table>");
    s
}
