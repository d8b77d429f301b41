//! Step results built through the real aggregator, for the unit tests of what prints them.

use sinks::event::TokenSource;
use sinks::event::{ArrivalDropped, Outcome, RequestFinished, StepInfo, StepKind, StepWindow};
use sinks::json::StepResult;
use sinks::StepAggregator;

const MS: u64 = 1_000_000;

/// A request of step 1: TTFT 100 ms, 5 tokens 20 ms apart, or a 503 with no output.
pub fn request(ok: bool, at: u64) -> RequestFinished {
    RequestFinished {
        id: format!("r{at}"),
        step: 1,
        scheduled_at: at,
        sent_at: at,
        first_token_at: ok.then_some(at + 100 * MS),
        end_at: at + 200 * MS,
        chunk_offsets_us: if ok {
            vec![100_000, 120_000, 140_000, 160_000, 180_000]
        } else {
            Vec::new()
        },
        prompt_tokens: 50,
        requested_output_tokens: Some(5),
        output_tokens: if ok { 5 } else { 0 },
        output_tokens_source: TokenSource::Server,
        server_prompt_tokens: None,
        server_completion_tokens: ok.then_some(5),
        server_cached_tokens: None,
        outcome: if ok { Outcome::Ok } else { Outcome::Http5xx },
        http_status: Some(if ok { 200 } else { 503 }),
        error: (!ok).then(|| "overloaded".into()),
        finish_reason: None,
        response_model: None,
        output_text: None,
        trace: None,
    }
}

/// A 10 s open-loop step at 12 req/s: `ok` successes, `failed` 503s, `dropped` arrivals.
pub fn step(ok: u64, failed: u64, dropped: u64) -> StepResult {
    let mut agg = StepAggregator::new(StepInfo {
        index: 1,
        id: "constant@12.00req/s".into(),
        kind: StepKind::Rate,
        max_vus: 8,
        rate: Some(12.0),
        duration_secs: 10.0,
    });
    for i in 0..ok {
        agg.record(&request(true, i * 10 * MS));
    }
    for i in 0..failed {
        agg.record(&request(false, i * 10 * MS));
    }
    for i in 0..dropped {
        agg.dropped(&ArrivalDropped {
            step: 1,
            scheduled_at: i * MS,
        });
    }
    let window = StepWindow {
        start: 0,
        send_end: 10_000 * MS,
        end: 10_500 * MS,
    };
    agg.finish(window, None)
}
