//! A sweep against a simulated server of known capacity stops within one step of the knee and
//! records why; an error-rate limit ends a failing step early.

mod common;

use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;

/// The runs whose saturation is judged, one at a time: two loaded runs on a 2-core machine would
/// slow each other's server into a real queue.
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_run() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_sweep_stops_at_the_knee_and_says_why() {
    let _one = one_run();
    let sim = four_slots();
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
    let _one = one_run();
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

/// A step at `rates` (Poisson arrivals, `secs` each) against `sim`: each step's `ended_early`.
fn ended_early(sim: &SimServer, rates: &[f64], secs: u64, seed: u64) -> Vec<(f64, Option<String>)> {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(rates.to_vec());
    cfg.arrival = inference_benchmarker::config::arrival::Arrival::Poisson;
    cfg.seed = seed;
    cfg.max_vus = 256;
    cfg.duration = Duration::from_secs(secs);
    cfg.decode_options = Some(TokenizeOptions::fixed(10));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    summary
        .steps
        .iter()
        .map(|s| (s.offered_rate.unwrap(), s.ended_early.clone()))
        .collect()
}

/// 4 slots, a 10 ms decode step whatever the batch, 10 tokens a request: each request holds a
/// slot for about 11 steps, so the server completes at most 4 / 0.11 ≈ 36 requests/s.
fn four_slots() -> SimServer {
    SimServer::start(
        SimConfig {
            slots: 4,
            decode_step_ms: 10.0,
            decode_us_per_seq: 0.0,
            prefill_us_per_token: 0.0,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap()
}

/// Short steps below the capacity are never taken for saturated (a filling pipeline is no
/// queue); twice the capacity is.
#[test]
fn short_steps_are_judged_by_their_queue() {
    let _one = one_run();
    let capacity = 4.0 / 0.11;
    let sim = four_slots();
    for seed in [1, 2] {
        let below = [0.5, 0.8, 0.9].map(|x| x * capacity);
        for (rate, why) in ended_early(&sim, &below, 5, seed) {
            assert_eq!(why, None, "{rate:.1} req/s of {capacity:.1} (seed {seed})");
        }
    }
    let over = ended_early(&sim, &[2.0 * capacity], 5, 1);
    sim.stop();
    let why = over[0]
        .1
        .as_deref()
        .unwrap_or_else(|| panic!("not stopped: {over:?}"));
    assert!(
        why.starts_with("saturated") && why.contains("first token"),
        "{why}"
    );
}

/// A server with no capacity limit and a random time to first token (0–200 ms): requests in
/// flight wander up and down at low rates, which is no queue.
#[test]
fn random_latency_at_low_rates_is_not_saturation() {
    let _one = one_run();
    let sim = SimServer::start(
        SimConfig {
            random_ttft_ms: Some("0:200".parse().unwrap()),
            random_itl_ms: Some("5:15".parse().unwrap()),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    for seed in [1, 2] {
        for (rate, why) in ended_early(&sim, &[5.0, 10.0, 20.0], 5, seed) {
            assert_eq!(why, None, "{rate} req/s (seed {seed})");
        }
    }
    sim.stop();
}

/// The case a new user met: a 10 s step at 10.81 req/s on the simulated server with the demo's
/// lengths (200-token prompts, 64-token answers; it sustains about 17–19 req/s) was stopped as
/// saturated while its batch filled. It runs to its end now.
#[test]
fn a_ten_second_step_below_capacity_runs_to_its_end() {
    let _one = one_run();
    let sim = SimServer::start(SimConfig::default(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![10.81]);
    cfg.max_vus = 64;
    cfg.duration = Duration::from_secs(10);
    cfg.prompt_options = Some(TokenizeOptions::fixed(200));
    cfg.decode_options = Some(TokenizeOptions::fixed(64));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let step = &summary.steps[0];
    assert_eq!(step.ended_early, None, "{:?}", step.ended_early);
    assert_eq!(step.failed_requests, 0);
}
