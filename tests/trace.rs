//! Trace replay (`--trace`, Mooncake's JSON Lines format, `--trace-speedup`): the server gets
//! every request of the trace, in order, with its exact input and output lengths, at the
//! recorded times divided by the speedup; requests that shared blocks (`hash_ids`) in the trace
//! share a prompt prefix.

mod common;

use std::time::Duration;

use inference_benchmarker::runtime::exit::RunError;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::tokenizer;

const REQUESTS: u64 = 30;
const GAP_MS: u64 = 50;
const SPEEDUP: f64 = 2.0;

/// (input, output) lengths of line `i`; even lines share blocks 0 and 1.
fn lengths(i: u64) -> (u64, u64) {
    (40 + (i * 37) % 200, 3 + i % 5)
}

fn trace_text() -> String {
    (0..REQUESTS)
        .map(|i| {
            let (input, output) = lengths(i);
            let blocks = if i % 2 == 0 { "[0, 1]" } else { "[]" };
            format!(
                "{{\"timestamp\": {}, \"input_length\": {input}, \"output_length\": {output}, \"hash_ids\": {blocks}}}\n",
                i * GAP_MS
            )
        })
        .collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[test]
fn replays_every_request_in_order_at_its_time_and_length() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(1.0),
            record: true,
            ..SimConfig::default()
        },
        Some(tokenizer::load(None).unwrap().tokenizer),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("trace.jsonl");
    std::fs::write(&file, trace_text()).unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.trace = Some(file);
    cfg.trace_speedup = SPEEDUP;
    cfg.max_vus = 64;
    let summary = inference_benchmarker::run(cfg).expect("the replay completes");
    let mut records = sim.records();
    sim.stop();

    assert_eq!(summary.steps.len(), 1);
    let step = &summary.steps[0];
    assert!(step.id.starts_with("trace@"), "{}", step.id);
    assert_eq!(step.total_requests, REQUESTS);
    assert_eq!(step.successful_requests, REQUESTS);
    assert_eq!(step.dropped_arrivals, 0);
    let doc = common::validated(&summary.results_path);
    assert_eq!(doc["results"].as_array().unwrap().len(), 1);

    records.sort_by_key(|r| r.received_at_unix_nanos);
    assert_eq!(
        records.len() as u64,
        REQUESTS,
        "the server got every request once"
    );
    for (i, r) in records.iter().enumerate() {
        let (input, output) = lengths(i as u64);
        assert_eq!(
            (r.prompt_tokens, r.completion_tokens),
            (input, output),
            "request {i} of the trace"
        );
    }
    // Sent at the trace's times / speedup: 29 gaps of 25 ms.
    let span_ms = (records[records.len() - 1].received_at_unix_nanos as f64
        - records[0].received_at_unix_nanos as f64)
        / 1e6;
    let want = (REQUESTS - 1) as f64 * GAP_MS as f64 / SPEEDUP;
    assert!(
        (span_ms - want).abs() < 20.0,
        "first to last arrival {span_ms:.1} ms, the trace says {want} ms"
    );
    assert!(step.queue_delay_ms.p99 < 20.0, "{:?}", step.queue_delay_ms);

    // Requests that shared blocks share their prompt up to the shorter one's end (these prompts
    // are shorter than a block); others share next to nothing.
    let prompt = |i: usize| records[i].messages[0].1.clone();
    for (a, b) in [(0, 2), (2, 4), (0, 6)] {
        let shorter = prompt(a).len().min(prompt(b).len());
        assert!(shorter > 100);
        assert!(
            common_prefix(&prompt(a), &prompt(b)) + 8 >= shorter,
            "{a} and {b}"
        );
    }
    assert!(common_prefix(&prompt(1), &prompt(3)) < 50);
}

#[test]
fn a_broken_trace_is_a_clear_error_before_any_request() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n{\"timestamp\": 1}\n",
    )
    .unwrap();
    let sim = SimServer::start(SimConfig::default(), None).unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.trace = Some(file);
    cfg.request_timeout = Duration::from_secs(5);
    let err = inference_benchmarker::run(cfg).unwrap_err();
    let received = sim.stats().received;
    sim.stop();
    match err {
        RunError::Config(msg) => assert!(msg.contains("line 2"), "{msg}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert_eq!(received, 0);
}
