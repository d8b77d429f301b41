//! Supervision (#16): a request task that panics or is dropped is still counted exactly once (as
//! `internal_error`), a virtual user whose task died is restarted, the step ends on time, and
//! the drain after a cancel is bounded even for requests that ignore the cancel.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use inference_benchmarker::config::{BenchmarkKind, RunConfig, TestHooks};
use inference_benchmarker::runtime::shutdown::{Level, Shutdown};
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::RunError;

const PANIC_EVERY: u64 = 1000;
const DROP_EVERY: u64 = 997;
const STEP: Duration = Duration::from_secs(3);
/// A step's wall time beyond its sending window: its last requests (tens of ms) and the drain.
const LATE_BOUND_MS: u64 = 2_000;

fn fast_sim() -> SimServer {
    SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(2.0),
            fixed_itl_ms: Some(1.0),
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts")
}

fn faulty(url: &str, out: &Path) -> RunConfig {
    let mut cfg = common::config(url, out);
    cfg.duration = STEP;
    cfg.decode_options = Some(inference_benchmarker::workload::options::TokenizeOptions::fixed(8));
    cfg.save_requests = true;
    cfg.stop_when_saturated = false;
    cfg.max_error_rate = None;
    cfg.no_report = true;
    cfg.test_hooks = TestHooks {
        panic_every: Some(PANIC_EVERY),
        drop_every: Some(DROP_EVERY),
        ..TestHooks::default()
    };
    cfg
}

/// The ids in the requests log, checked unique, with their outcomes.
fn logged(results: &Path) -> HashMap<String, serde_json::Value> {
    let log = std::fs::read_to_string(sinks::json::requests_log_path(results)).unwrap();
    let by_id: HashMap<String, serde_json::Value> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(by_id.len(), log.lines().count(), "no request logged twice");
    by_id
}

/// Every request counted once: the log has every id once, the server received exactly those
/// ids (every fault strikes after the server's answer), and the injected faults are the
/// `internal_error`s. Returns the step entry.
fn check_counted_once(sim: &SimServer, results: &Path) -> serde_json::Value {
    let doc = common::validated(results);
    let step = doc["results"][0].clone();
    let total = step["total_requests"].as_u64().unwrap();
    assert!(total >= PANIC_EVERY, "enough requests for a panic: {total}");
    let ours = logged(results);
    assert_eq!(ours.len() as u64, total, "the log holds every request");
    let server: BTreeSet<String> = sim
        .records()
        .into_iter()
        .filter_map(|r| r.request_id)
        .filter(|id| id.starts_with("t-"))
        .collect();
    let our_ids: BTreeSet<String> = ours.keys().cloned().collect();
    let differ: Vec<&String> = our_ids.symmetric_difference(&server).take(10).collect();
    assert!(
        differ.is_empty(),
        "the server received exactly the requests we counted ({} vs {}): {differ:?}",
        our_ids.len(),
        server.len()
    );

    let injected = total / PANIC_EVERY + total / DROP_EVERY;
    assert_eq!(
        step["errors"]["internal_error"].as_u64(),
        Some(injected),
        "every injected fault counted once: {step}"
    );
    let internal: Vec<&serde_json::Value> = ours
        .values()
        .filter(|r| r["outcome"] == "internal_error")
        .collect();
    let panicked = internal
        .iter()
        .filter(|r| {
            let e = r["error"].as_str().unwrap_or("");
            e.starts_with("panicked: injected panic (test hook)")
        })
        .count() as u64;
    assert_eq!(panicked, total / PANIC_EVERY, "the panic's message is kept");
    let ms = step["duration_ms"].as_u64().unwrap();
    assert!(
        ms <= STEP.as_millis() as u64 + LATE_BOUND_MS,
        "the step ends on time: {ms} ms"
    );
    step
}

#[test]
fn closed_loop_counts_panicked_and_dropped_requests_once_and_restarts_users() {
    let sim = fast_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = faulty(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let step = check_counted_once(&sim, &summary.results_path);
    sim.stop();
    // A user whose unit of work died is started again while the step sends (one that died
    // after the window's end is not).
    let injected = step["errors"]["internal_error"].as_u64().unwrap();
    let restarted = step["generator"]["restarted_users"].as_u64().unwrap();
    assert!(
        (1..=injected).contains(&restarted),
        "{restarted} users restarted for {injected} dead tasks"
    );
}

#[test]
fn open_loop_counts_panicked_and_dropped_requests_once() {
    let sim = fast_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = faulty(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![500.0]);
    // Room for a debug build's stalls on a busy 2-core machine (e2e p99 146 ms × 500 req/s
    // passed 64 in a full suite): no arrival dropped now catches gross slot leaks only.
    cfg.max_vus = 256;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let step = check_counted_once(&sim, &summary.results_path);
    sim.stop();
    assert_eq!(step["dropped_arrivals"], 0, "{step}");
    assert_eq!(step["generator"]["restarted_users"], 0);
}

/// A request stalled at the server (it honours the cancel) and requests whose task ignores the
/// cancel (a hook hangs them): after a stop, the run ends within the grace period plus the
/// drain's bounds, and each is counted once, as cancelled.
#[test]
fn the_drain_after_a_cancel_is_bounded() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(2.0),
            fixed_itl_ms: Some(1.0),
            faults: vec!["stall=0:600000@0.2".into()],
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    cfg.duration = Duration::from_secs(60);
    cfg.shutdown_grace = Duration::from_secs(1);
    cfg.save_requests = true;
    cfg.stop_when_saturated = false;
    cfg.max_error_rate = None;
    cfg.no_report = true;
    cfg.test_hooks.hang_every = Some(5);
    let shutdown = Shutdown::new();
    let stopper = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            shutdown.raise(Level::Stop);
            Instant::now()
        })
    };
    let result = inference_benchmarker::run_with(cfg, shutdown, false);
    let stopped_at = stopper.join().unwrap();
    let took = stopped_at.elapsed();
    let Err(RunError::Interrupted {
        results: Some(path),
    }) = result
    else {
        panic!("an interrupted run with results: {result:?}");
    };
    // 1 s grace, 1 s for the cancel, 1 s for the abandoned to report, and the final write.
    assert!(took < Duration::from_secs(6), "bounded drain: {took:?}");
    let doc = common::validated(&path);
    let step = &doc["results"][0];
    let total = step["total_requests"].as_u64().unwrap();
    let ours = logged(&path);
    assert_eq!(ours.len() as u64, total, "every request once");
    let cancelled = step["errors"]["cancelled"].as_u64().unwrap_or(0);
    let abandoned = ours
        .values()
        .filter(|r| r["error"].as_str().is_some_and(|e| e.contains("abandoned")))
        .count() as u64;
    let stalled = ours
        .values()
        .filter(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("cancelled"))
        })
        .count() as u64;
    assert!(abandoned >= 1, "hung tasks were abandoned: {step}");
    assert!(stalled >= 1, "stalled requests were cancelled: {step}");
    assert_eq!(cancelled, abandoned + stalled, "{step}");
    let server: BTreeSet<String> = sim
        .records()
        .into_iter()
        .filter_map(|r| r.request_id)
        .filter(|id| id.starts_with("t-"))
        .collect();
    sim.stop();
    let our_ids: BTreeSet<String> = ours.keys().cloned().collect();
    assert!(
        server.is_subset(&our_ids),
        "every request the server received is counted"
    );
}
