//! The report's table for reasoning models and multi-token chunks (issue 18): time to the first
//! answer token beside TTFT, reasoning and answer tokens, no-answer requests, tokens per chunk.
//! Shown only for a run with a step that reasoned or streamed several tokens a chunk.

use std::fmt::Write as _;

use sinks::json::StepResult;

use super::html::{p50_p99, Run};
use super::svg;

/// Whether the step has anything for this table.
fn relevant(r: &StepResult) -> bool {
    let per_chunk = &r.reasoning.tokens_per_chunk;
    r.reasoning.reasoning_requests > 0 || per_chunk.known(per_chunk.max).is_some_and(|m| m > 1.01)
}

/// The table, or "" when no step of the run has reasoning or multi-token chunks.
pub(super) fn table(run: &Run) -> String {
    if !run.doc.results.iter().any(relevant) {
        return String::new();
    }
    let mut s = String::from(
        "<h3>Reasoning and chunks</h3><table><tr><th>Step</th><th>TTFT p50/p99 (ms)</th>\
         <th>Time to first answer p50/p99 (ms)</th><th>Reasoning requests</th><th>No answer</th>\
         <th>Reasoning tokens p50/p99</th><th>Answer tokens p50/p99</th>\
         <th>Tokens per chunk mean/p99</th></tr>",
    );
    for r in &run.doc.results {
        let f = &r.reasoning;
        let per_chunk = match f.tokens_per_chunk.known(f.tokens_per_chunk.avg) {
            Some(mean) => format!("{mean:.2} / {:.2}", f.tokens_per_chunk.p99),
            None => crate::offline::table::MISSING.into(),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            svg::escape(&r.id),
            p50_p99(&r.time_to_first_token_ms, 1),
            p50_p99(&f.time_to_first_answer_token_ms, 1),
            f.reasoning_requests,
            f.no_answer_requests,
            p50_p99(&f.reasoning_tokens, 0),
            p50_p99(&f.answer_tokens, 0),
            per_chunk,
        );
    }
    s.push_str("</table>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(step: StepResult) -> Run {
        let mut doc = sinks::json::ResultsDocument::new(
            serde_json::json!({}),
            "r".into(),
            "0".into(),
            0,
            sinks::json::SystemInfo::from_sources(&Default::default()),
        );
        doc.results = vec![step];
        Run {
            label: "a.json".into(),
            doc,
        }
    }

    #[test]
    fn only_for_runs_that_reasoned() {
        let plain = crate::offline::test_fixtures::step(5, 0, 0);
        assert_eq!(table(&run(plain.clone())), "");

        let mut agg = sinks::reasoning_step::ReasoningAggregator::default();
        let mut r = crate::offline::test_fixtures::request(true, 0);
        r.reasoning.chunks = 5;
        r.reasoning.tokens = Some(5);
        agg.record(&r);
        let mut step = plain;
        step.reasoning = agg.finish();
        let html = table(&run(step));
        assert!(html.contains("Time to first answer"), "{html}");
        // One request reasoned, and never answered; no answer, so no time to it.
        assert!(html.contains("<td>1</td><td>1</td>"), "{html}");
        assert!(html.contains("<td>5 / 5</td><td>0 / 0</td>"), "{html}");
    }
}
