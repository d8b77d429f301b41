//! A sweep against a simulated server of known capacity stops within one step of the knee and
//! records why; an error-rate limit ends a failing step early.

mod common;

use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;

#[test]
fn a_sweep_stops_at_the_knee_and_says_why() {
    // 4 slots, a 10 ms decode step whatever the batch, 10 tokens a request: each request holds a
    // slot for about 11 steps, so the server completes at most ~36 requests/s.
    let sim = SimServer::start(
        SimConfig {
            slots: 4,
            decode_step_ms: 10.0,
            decode_us_per_seq: 0.0,
            prefill_us_per_token: 0.0,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Sweep;
    cfg.max_vus = 64;
    cfg.duration = Duration::from_secs(6);
    cfg.num_rates = 5;
    cfg.decode_options = Some(TokenizeOptions::fixed(10));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    common::validated(&summary.results_path);

    let max = summary.steps[0].request_rate;
    assert!((25.0..=40.0).contains(&max), "measured capacity {max}");
    let rates: Vec<(f64, Option<String>)> = summary.steps[1..]
        .iter()
        .map(|s| (s.offered_rate.unwrap(), s.ended_early.clone()))
        .collect();
    let knee = rates
        .iter()
        .position(|(_, why)| why.is_some())
        .unwrap_or_else(|| panic!("no step was found saturated: {rates:?}"));
    let (rate, why) = &rates[knee];
    assert!(why.as_deref().unwrap().starts_with("saturated"), "{why:?}");
    assert!(
        *rate >= 0.9 * max,
        "flagged at {rate} req/s, below the knee ({max}): {rates:?}"
    );
    assert_eq!(
        knee,
        rates.len() - 1,
        "no step runs after the saturated one: {rates:?}"
    );
    assert!(
        rates.len() >= 4,
        "the sweep got at least to 0.96 × max: {rates:?}"
    );
    for (r, why) in &rates[..knee] {
        assert!(why.is_none(), "{r} req/s is below the knee: {why:?}");
    }
}

#[test]
fn max_error_rate_ends_a_failing_step_early() {
    let sim = SimServer::start(
        SimConfig {
            faults: vec!["status=503@0.9".into()],
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![50.0]);
    cfg.duration = Duration::from_secs(30);
    cfg.max_error_rate = Some(0.5);
    let started = std::time::Instant::now();
    let err = inference_benchmarker::run(cfg).unwrap_err();
    sim.stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended early: {:?}",
        started.elapsed()
    );
    assert_eq!(err.exit_code(), 4, "{err}");
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
    let why = doc["results"][0]["ended_early"].as_str().unwrap();
    assert!(why.contains("--max-error-rate 50.0%"), "{why}");
}

/// At the in-flight cap an arrival is dropped and counted, or — with `--queue-when-saturated` —
/// waits for a slot, and its wait shows in the from-schedule latencies.
#[test]
fn dropped_and_queued_arrivals_are_counted() {
    // TTFT 50 ms + 9 × 10 ms: ~150 ms a request; 2 in flight → ~13 req/s, offered 40 req/s.
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(50.0),
            fixed_itl_ms: Some(10.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let run = |queue: bool| {
        let out = tempfile::tempdir().unwrap();
        let mut cfg = common::config(&sim.url(), out.path());
        cfg.benchmark_kind = BenchmarkKind::Rate;
        cfg.rates = Some(vec![40.0]);
        cfg.max_vus = 2;
        cfg.duration = Duration::from_secs(2);
        cfg.decode_options = Some(TokenizeOptions::fixed(10));
        cfg.stop_when_saturated = false;
        cfg.queue_when_saturated = queue;
        let summary = inference_benchmarker::run(cfg).expect("the run completes");
        common::validated(&summary.results_path);
        summary.steps[0].clone()
    };

    let dropped = run(false);
    assert_eq!(
        dropped.total_requests + dropped.dropped_arrivals,
        80,
        "every arrival accounted for"
    );
    assert!(
        dropped.dropped_arrivals >= 40,
        "{}",
        dropped.dropped_arrivals
    );
    assert_eq!(dropped.queued_arrivals, 0);
    let sent_late =
        dropped.time_to_first_token_from_schedule_ms.p99 - dropped.time_to_first_token_ms.p99;
    // Queued arrivals wait over 1,000 ms (below); a dropped one waits for nothing but the
    // machine's wake-up latency, which reached 6 ms on a loaded 2-core VM.
    assert!(
        sent_late < 25.0,
        "dropped arrivals never wait: {sent_late} ms"
    );

    let queued = run(true);
    assert_eq!(
        queued.total_requests, 80,
        "every arrival was sent in the end"
    );
    assert_eq!(queued.dropped_arrivals, 0);
    assert!(queued.queued_arrivals >= 40, "{}", queued.queued_arrivals);
    assert_eq!(queued.successful_requests, 80);
    let waited =
        queued.time_to_first_token_from_schedule_ms.p99 - queued.time_to_first_token_ms.p99;
    assert!(
        waited > 1000.0,
        "the queue's wait is in the from-schedule TTFT: {waited} ms"
    );
    assert!(queued.queue_delay_ms.max > 1000.0);
    sim.stop();
}
