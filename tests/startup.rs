//! Startup cost of a dataset: loading, parsing and tokenizing everything once before the run.
//! Ignored by default (it is a measurement, not a check); run it with
//! `IB_STARTUP_ENTRIES=10000 cargo test -p inference-benchmarker --test startup -- --ignored --nocapture`
//! (add `--release` for figures of an optimized build).

mod common;

use std::time::Instant;

use inference_benchmarker::workload::hub::HubEnv;
use inference_benchmarker::workload::{prepare, synthetic, WorkloadConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A ShareGPT-shaped file of `n` conversations (1–4 user turns of 20–300 words, with answers).
fn sharegpt_like(n: usize) -> String {
    let mut rng = StdRng::seed_from_u64(42);
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut turns = Vec::new();
            for _ in 0..rng.random_range(1..=4) {
                let (qw, aw) = (rng.random_range(20..=300), rng.random_range(20..=300));
                let q = synthetic::text(&mut rng, qw);
                let a = synthetic::text(&mut rng, aw);
                turns.push(serde_json::json!({"from": "human", "value": q}));
                turns.push(serde_json::json!({"from": "gpt", "value": a}));
            }
            serde_json::json!({"id": i, "conversations": turns})
        })
        .collect();
    serde_json::Value::Array(entries).to_string()
}

#[test]
#[ignore]
fn startup_time_of_a_sharegpt_sized_dataset() {
    let n: usize = std::env::var("IB_STARTUP_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sharegpt.json");
    std::fs::write(&file, sharegpt_like(n)).unwrap();
    let bytes = std::fs::metadata(&file).unwrap().len();
    let tokenizer = common::llama3_tokenizer("startup");
    let cfg = WorkloadConfig {
        tokenizer_name: tokenizer.clone(),
        dataset: None,
        dataset_file: Some(file),
        prompt_options: None,
        decode_options: None,
        seed: 0,
        synthetic_prompts: 1,
        hub: HubEnv::offline_at(dir.path().join("hub")),
        profile: None,
        trace: None,
    };
    let started = Instant::now();
    let w = prepare(&cfg).unwrap();
    let took = started.elapsed();
    let turns: usize = w.requests.iter().map(|r| 1 + r.later_turns.len()).sum();
    let tokens: u64 = w
        .requests
        .iter()
        .map(|r| r.prompt_tokens + r.later_turns.iter().map(|t| t.tokens).sum::<u64>())
        .sum();
    println!(
        "startup: {n} conversations ({} MB, {turns} user turns, {tokens} tokens, tokenizer {}) prepared in {:.2} s on {} cores",
        bytes / 1_000_000,
        w.tokenizer_label,
        took.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    assert_eq!(w.requests.len(), n);
}
