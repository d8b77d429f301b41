//! Every injected fault ends its request in exactly the documented outcome class, request for
//! request against the simulated server's own record of what it did: nothing lost, nothing
//! double-counted, no panic, the run completes and its JSON validates.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;

/// Each fault and the outcome a correct client reports for it.
const MATRIX: &[(&str, &str)] = &[
    ("status=500", "http_5xx"),
    ("status=502", "http_5xx"),
    ("status=503", "http_5xx"),
    ("status=429", "rate_limited"),
    ("status=400", "http_4xx"),
    ("drop", "stream_broken"),
    ("drop-mid-stream=3", "stream_broken"),
    ("stall=0:2500", "timeout_before_first_token"),
    ("stall=3:2500", "timeout_mid_stream"),
    ("slow-drip", "ok"),
    ("bad-json=2", "protocol_error"),
    ("non-utf8=2", "protocol_error"),
    ("huge-line=2", "protocol_error"),
    ("error-event=2", "protocol_error"),
    ("missing-data=2", "ok"),
    ("wrong-content-type", "protocol_error"),
    ("empty-body", "stream_broken"),
    ("open-after-done", "ok"),
];

#[test]
fn every_fault_maps_to_its_outcome_request_for_request() {
    let share = 1.0 / (MATRIX.len() as f64 + 6.0);
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(2.0),
            record: true,
            seed: 7,
            faults: MATRIX.iter().map(|(f, _)| format!("{f}@{share}")).collect(),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![60.0]);
    cfg.duration = Duration::from_secs(5);
    cfg.max_vus = 400;
    cfg.request_timeout = Duration::from_millis(1000);
    cfg.decode_options = Some(TokenizeOptions::fixed(8));
    cfg.save_requests = true;
    cfg.stop_when_saturated = false;
    // Most requests fail on purpose: no --max-error-rate.
    cfg.max_error_rate = None;
    let summary = inference_benchmarker::run(cfg).expect("the run completes despite every fault");
    // A stalled request's record is complete once its stall is over and the server finds the
    // client gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (sim.records().len() as u64) < sim.stats().received
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let records = sim.records();
    sim.stop();
    common::validated(&summary.results_path);

    let log =
        std::fs::read_to_string(sinks::json::requests_log_path(&summary.results_path)).unwrap();
    let ours: HashMap<String, serde_json::Value> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(ours.len(), log.lines().count(), "no request reported twice");
    let server: HashMap<String, Option<String>> = records
        .iter()
        .map(|r| (r.request_id.clone().unwrap(), r.fault.clone()))
        .collect();
    assert_eq!(server.len(), records.len());
    let our_ids: BTreeSet<&String> = ours.keys().collect();
    let server_ids: BTreeSet<&String> = server.keys().collect();
    assert_eq!(our_ids, server_ids, "the same requests on both sides");

    let expected: HashMap<&str, &str> = MATRIX.iter().copied().collect();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (id, fault) in &server {
        let want = fault.as_deref().map_or("ok", |f| expected[f]);
        let got = ours[id]["outcome"].as_str().unwrap();
        assert_eq!(got, want, "{id} with fault {fault:?}: {}", ours[id]);
        if fault.as_deref() == Some("open-after-done") {
            // Ended at [DONE] (5 + 7 × 2 ms), not when the 1 s timeout gave up on the body.
            let e2e = ours[id]["e2e_ms"].as_f64().unwrap();
            assert!(e2e < 500.0, "{id}: {e2e} ms");
        }
        *seen
            .entry(fault.clone().unwrap_or_else(|| "none".into()))
            .or_default() += 1;
    }
    for (fault, _) in MATRIX {
        assert!(seen.contains_key(*fault), "{fault} never drawn: {seen:?}");
    }

    // The step's counts agree with the lines.
    let step = &summary.steps[0];
    assert_eq!(step.total_requests, ours.len() as u64);
    let failed = ours.values().filter(|v| v["outcome"] != "ok").count() as u64;
    assert_eq!(step.failed_requests, failed);
    assert_eq!(step.errors.values().sum::<u64>(), failed);
}

/// The server dies mid-step and comes back 5 s later: the run goes on, the outage shows as
/// connect errors in that window, and later requests succeed.
#[test]
fn a_server_that_dies_and_comes_back() {
    let timing = SimConfig {
        fixed_ttft_ms: Some(5.0),
        fixed_itl_ms: Some(5.0),
        ..SimConfig::default()
    };
    let sim = SimServer::start(timing.clone(), None).unwrap();
    let port = sim.addr().port();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    cfg.duration = Duration::from_secs(10);
    cfg.request_timeout = Duration::from_secs(2);
    cfg.decode_options = Some(TokenizeOptions::fixed(8));
    cfg.save_requests = true;
    cfg.stop_when_saturated = false;
    // Half the step is an outage on purpose: no --max-error-rate.
    cfg.max_error_rate = None;
    let run = std::thread::spawn(move || inference_benchmarker::run(cfg));

    // Down once the step is well under way (the run prepares its workload first).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sim.stats().received < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sim.stop();
    std::thread::sleep(Duration::from_secs(5));
    let back =
        SimServer::start(SimConfig { port, ..timing }, None).expect("the port is free again");
    let summary = run
        .join()
        .unwrap()
        .expect("the run completes across the outage");
    back.stop();
    common::validated(&summary.results_path);

    let log =
        std::fs::read_to_string(sinks::json::requests_log_path(&summary.results_path)).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        200,
        "20 req/s for 10 s, every one accounted for"
    );
    let mut lines = lines;
    lines.sort_by(|a, b| {
        a["scheduled_ms"]
            .as_f64()
            .partial_cmp(&b["scheduled_ms"].as_f64())
            .unwrap()
    });
    let ok = |l: &serde_json::Value| l["outcome"] == "ok";
    let first_bad = lines.iter().position(|l| !ok(l)).expect("an outage");
    let last_bad = lines.iter().rposition(|l| !ok(l)).unwrap();
    assert!(first_bad >= 35, "ok before the outage: {first_bad}");
    assert!(
        lines.len() - 1 - last_bad >= 20,
        "ok after the restart: {}",
        lines.len() - 1 - last_bad
    );
    let outage = &lines[first_bad..=last_bad];
    let refused: Vec<f64> = outage
        .iter()
        .filter(|l| l["outcome"] == "connect_error")
        .map(|l| l["scheduled_ms"].as_f64().unwrap())
        .collect();
    let span = refused.last().unwrap() - refused.first().unwrap();
    // 5 s down, plus the time the stop and the restart take.
    assert!(
        (4500.0..=7500.0).contains(&span),
        "connect errors over the 5 s outage: {span} ms"
    );
    let expected = span / 1000.0 * 20.0;
    assert!(
        (refused.len() as f64 - expected).abs() <= 3.0,
        "{} connect errors over {span} ms at 20 req/s",
        refused.len()
    );
    assert!(
        outage.len() - refused.len() <= 10,
        "only the cut streams are not connect errors"
    );
    let step = &summary.steps[0];
    assert_eq!(
        step.errors.get("connect_error").copied(),
        Some(refused.len() as u64)
    );
}

/// `--retries`: a 503 is retried under `<id>-r<n>`; each request counts once with its last
/// attempt's outcome, and the retried attempts are counted apart — the server saw both.
#[test]
fn retried_attempts_are_counted_apart() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(2.0),
            record: true,
            seed: 3,
            faults: vec!["status=503@0.3".into()],
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    cfg.duration = Duration::from_secs(2);
    cfg.retries = 3;
    cfg.save_requests = true;
    cfg.decode_options = Some(TokenizeOptions::fixed(4));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let records = sim.records();
    sim.stop();
    common::validated(&summary.results_path);

    let step = &summary.steps[0];
    assert_eq!(step.total_requests, 40, "each request once");
    let retried: u64 = step.retried_attempts.values().sum();
    assert!(retried >= 5, "about 30 % of 40+ attempts: {retried}");
    assert_eq!(
        step.retried_attempts.keys().collect::<Vec<_>>(),
        ["http_5xx"]
    );
    assert_eq!(
        records.len() as u64,
        step.total_requests + retried,
        "the server saw every attempt"
    );
    let injected = records.iter().filter(|r| r.fault.is_some()).count() as u64;
    assert_eq!(
        injected,
        retried + step.failed_requests,
        "each 503 is a retry or a final failure"
    );
    let log =
        std::fs::read_to_string(sinks::json::requests_log_path(&summary.results_path)).unwrap();
    let retried_ids = log.lines().filter(|l| l.contains("-r1\"")).count();
    assert!(
        retried_ids > 0,
        "a retried request carries its last attempt's id"
    );
}
