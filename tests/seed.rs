//! Reproducibility: two runs with the same `--seed` send the same sequence of prompt and output
//! lengths (checked on what the server received); another seed sends another sequence.

mod common;

use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::tokenizer;

/// (prompt tokens, max_tokens) of each request the server received, in sending order.
fn lengths(seed: u64) -> Vec<(u64, u64)> {
    let out = tempfile::tempdir().unwrap();
    let sim = SimServer::start(
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        Some(tokenizer::load(None).unwrap().tokenizer),
    )
    .unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.seed = seed;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    // One user: requests go out one after the other, in the workload's order.
    cfg.max_vus = 1;
    cfg.duration = Duration::from_secs(1);
    // Drawn prompt lengths (without it every prompt is exactly num_tokens); variance is the
    // standard deviation.
    cfg.draw_prompt_lengths = true;
    cfg.prompt_options = Some(
        "num_tokens=60,min_tokens=20,max_tokens=100,variance=20"
            .parse()
            .unwrap(),
    );
    cfg.decode_options = Some(
        "num_tokens=8,min_tokens=2,max_tokens=14,variance=3"
            .parse()
            .unwrap(),
    );
    inference_benchmarker::run(cfg).expect("the run completes");
    let mut records = sim.records();
    sim.stop();
    records.sort_by_key(|r| r.received_at_unix_nanos);
    records
        .iter()
        .map(|r| (r.prompt_tokens, r.completion_tokens))
        .collect()
}

#[test]
fn same_seed_same_lengths() {
    let a = lengths(7);
    let b = lengths(7);
    let c = lengths(8);
    let n = a.len().min(b.len()).min(c.len());
    assert!(n >= 5, "enough requests to compare: {n}");
    assert_eq!(a[..n], b[..n]);
    assert_ne!(a[..n], c[..n]);
    let distinct: std::collections::BTreeSet<_> = a.iter().collect();
    assert!(distinct.len() > 2, "lengths vary: {a:?}");
}
