//! The sink contract end to end: a live sink that cannot keep up (it sleeps on every event) with
//! a small `DropNewest` buffer drops and counts, while the run's requests, its results and its
//! requests log stay complete and its timing is that of a run without it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use inference_benchmarker::config::{BenchmarkKind, ExtraSinks};
use inference_benchmarker::sim::{SimConfig, SimServer};
use serde_json::Value;
use sinks::event::Event;
use sinks::json::report::RunStatus;
use sinks::live::{flushed, BufferConfig, FlushFuture, Sink, SinkContext, SinkRegistry};

const RATE: f64 = 20.0;
const TTFT_MS: f64 = 20.0;

/// Breaks the contract on purpose: every event blocks its arbiter for a while.
struct Slow(Duration);

impl Sink for Slow {
    const NAME: &'static str = "slow";

    fn on_event(&mut self, _: &Event, _: &mut SinkContext<Self>) {
        std::thread::sleep(self.0);
    }

    fn flush(&mut self, _: RunStatus, _: &mut SinkContext<Self>) -> FlushFuture<Self> {
        flushed(Ok(()))
    }
}

fn run(sim: &SimServer, out: &Path, slow: bool) -> Value {
    let mut cfg = common::config(&sim.url(), out);
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![RATE]);
    cfg.save_requests = true;
    if slow {
        cfg.extra_sinks = ExtraSinks(vec![Arc::new(|r: &mut SinkRegistry| {
            let buffer = BufferConfig::drop_newest().with_capacity(2);
            r.start(buffer, || Slow(Duration::from_millis(100)));
        })]);
    }
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let doc = common::validated(&summary.results_path);
    let log = summary.results_path.with_extension("requests.jsonl");
    let lines = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .lines()
        .count() as u64;
    let step = &doc["results"][0];
    assert_eq!(step["total_requests"].as_u64(), Some(lines), "requests log");
    assert_eq!(step["successful_requests"], step["total_requests"]);
    assert_eq!(
        doc["sinks"]["results"]["handover_waits"], 0,
        "no request waited for the recorder"
    );
    doc
}

fn ttft_p50(doc: &Value) -> f64 {
    doc["results"][0]["time_to_first_token_ms"]["p50"]
        .as_f64()
        .expect("a TTFT p50")
}

#[test]
fn a_slow_sink_drops_and_counts_without_touching_the_run() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(TTFT_MS),
            fixed_itl_ms: Some(2.0),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = run(&sim, a.path(), false);
    let slowed = run(&sim, b.path(), true);

    let requests = |d: &Value| d["results"][0]["total_requests"].as_u64().unwrap();
    let expected = (RATE * 2.0) as u64;
    assert!(
        requests(&plain).abs_diff(expected) <= 1,
        "{}",
        requests(&plain)
    );
    assert_eq!(
        requests(&slowed),
        requests(&plain),
        "every arrival was sent"
    );

    let report = &slowed["sinks"]["slow"];
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    };
    assert_eq!(report["buffer_policy"], "drop_newest");
    assert!(n("dropped_events") > 0, "{report}");
    // RunStarted, StepStarted, every request, StepFinished: delivered or counted, none unseen.
    let dropped_arrivals = slowed["results"][0]["dropped_arrivals"].as_u64().unwrap();
    assert_eq!(
        n("events_delivered") + n("dropped_events"),
        3 + requests(&slowed) + dropped_arrivals,
        "{report}"
    );
    assert!(plain["sinks"].get("slow").is_none());

    // The sink sleeps 100 ms per event on its own arbiter: the requests' timing does not move
    // (the bound is above scheduling noise, far below one of its sleeps).
    let (p, s) = (ttft_p50(&plain), ttft_p50(&slowed));
    assert!(
        (s - p).abs() < 5.0,
        "TTFT p50 {p} ms without the sink, {s} ms with it"
    );
    assert!(
        (p - TTFT_MS).abs() < 5.0,
        "TTFT p50 {p} ms against a fixed {TTFT_MS} ms"
    );
    sim.stop();
}
