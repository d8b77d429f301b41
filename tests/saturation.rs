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
    let sim = SimServer::start(SimConfig::default(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.model_name = Some("no-such-model".into());
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
    let why = doc["results"][0]["ended_early"].as_str().unwrap();
    assert!(why.contains("--max-error-rate 50.0%"), "{why}");
}
