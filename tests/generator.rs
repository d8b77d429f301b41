//! The generator measures itself: a step it could not keep up with is flagged generator-bound,
//! and a comfortable one is not.

mod common;

use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;

fn run(rate: f64, duration: Duration) -> sinks::json::StepResult {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(0.0),
            fixed_itl_ms: Some(0.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![rate]);
    cfg.duration = duration;
    // Enough for the one worker to fall behind, and for the client's and the in-process server's
    // sockets to fit the open-file limit (20,000 on CI's machines) with room for the results.
    cfg.max_vus = 4_000;
    cfg.workers = 1;
    cfg.stop_when_saturated = false;
    cfg.decode_options = Some(TokenizeOptions::fixed(1));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    common::validated(&summary.results_path);
    summary.steps[0].clone()
}

#[test]
fn an_overloaded_generator_is_flagged_and_a_comfortable_one_is_not() {
    // Far more arrivals than one worker thread can start on time (in a debug build, with the
    // simulated server in the same process).
    let overloaded = run(20_000.0, Duration::from_millis(700));
    let g = overloaded.generator.as_ref().expect("measured");
    assert!(g.bound, "{g:?}");
    assert!(
        g.reasons.iter().any(|r| r.contains("late")),
        "{:?}",
        g.reasons
    );
    assert!(g.schedule_lateness_ms_p99.unwrap() > 5.0);
    assert!(g.cpu_seconds > 0.0);

    // 200 arrivals, so that the p99 is not just the slowest one (the first after start-up).
    let comfortable = run(50.0, Duration::from_secs(4));
    let g = comfortable.generator.as_ref().expect("measured");
    assert!(!g.bound, "{g:?}");
    assert!(g.schedule_lateness_ms_p99.unwrap() < 5.0);
}
