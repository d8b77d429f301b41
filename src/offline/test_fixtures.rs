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
        reasoning: Default::default(),
        images_tools: Default::default(),
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

/// The demo's throughput (closed-loop) step: 24 sent per second (the users' first burst
/// included), 19.2 successful over the step, 20 steady.
pub fn throughput_step() -> StepResult {
    let mut r = step(5, 0, 0);
    r.kind = StepKind::Throughput;
    r.offered_rate = None;
    r.achieved_rate = 24.0;
    r.request_rate = 19.2;
    r.steady_state = Some(sinks::steady::SteadyState {
        start_ms: 500,
        duration_ms: 9_000,
        request_rate: 20.0,
        token_throughput_secs: 100.0,
    });
    r
}

/// A step's `server_metrics` as vLLM's would read: requests waiting and KV-cache usage (gauge
/// means), a prefix-cache hit rate, and a TTFT histogram whose p50 is `ttft_p50_s`.
pub fn server_metrics(
    waiting: f64,
    kv: f64,
    hit_rate: f64,
    ttft_p50_s: f64,
) -> sinks::server_metrics::ServerMetrics {
    use sinks::server_metrics::{Buckets, SeriesSummary, ServerMetrics};
    let gauge = |mean: f64| SeriesSummary::Gauge {
        source: "vllm:x".into(),
        unit: "requests".into(),
        mean: Some(mean),
        max: Some(mean * 1.5),
        p50: Some(mean),
        p99: Some(mean * 1.5),
        samples: 10,
    };
    let mut series = std::collections::BTreeMap::new();
    series.insert("requests_running".into(), gauge(8.0));
    series.insert("requests_waiting".into(), gauge(waiting));
    series.insert("kv_cache_usage".into(), gauge(kv));
    series.insert(
        "ttft_seconds".into(),
        SeriesSummary::Histogram {
            source: "vllm:time_to_first_token_seconds".into(),
            unit: "seconds".into(),
            count: 100.0,
            sum: 100.0 * ttft_p50_s,
            p50: Some(ttft_p50_s),
            p90: Some(ttft_p50_s * 1.5),
            p99: Some(ttft_p50_s * 2.0),
            buckets: Buckets(vec![(ttft_p50_s * 2.0, 100.0), (f64::INFINITY, 100.0)]),
        },
    );
    ServerMetrics {
        endpoints: "http://sim/metrics".into(),
        engine: Some("vllm".into()),
        scrapes: 10,
        failed_scrapes: 0,
        series,
        prefix_cache_hit_rate: Some(hit_rate),
        joules_per_output_token: None,
        other: Default::default(),
    }
}
