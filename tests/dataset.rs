//! A local dataset in the original tool's format goes out as the prompts, and the prompt token
//! counts we report are the ones the server counts with the same tokenizer.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::tokenizer;

#[test]
fn dataset_prompts_reach_the_server_with_the_counts_we_report() {
    let out = tempfile::tempdir().unwrap();
    let dataset = out.path().join("data.json");
    std::fs::write(
        &dataset,
        r#"[
          {"id": "a", "conversations": [{"role": "user", "content": "What is the capital of France?"}]},
          {"conversations": [{"role": "user", "content": "Write a haiku about inference servers and their queues."}]},
          {"conversations": [{"role": "user", "content": "Summarize: the quick brown fox jumps over the lazy dog."},
                             {"role": "assistant", "content": "A fox jumps over a dog."}]}
        ]"#,
    )
    .unwrap();
    let builtin = tokenizer::load(None).unwrap().tokenizer;
    let sim = SimServer::start(
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        Some(builtin),
    )
    .unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.dataset = None;
    cfg.dataset_file = Some(dataset);
    cfg.prompt_options = None;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 3;
    cfg.duration = Duration::from_secs(1);
    cfg.save_requests = true;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let records = sim.records();
    sim.stop();

    let server: HashMap<String, u64> = records
        .iter()
        .map(|r| (r.request_id.clone().unwrap(), r.prompt_tokens))
        .collect();
    let log =
        std::fs::read_to_string(sinks::json::requests_log_path(&summary.results_path)).unwrap();
    let mut distinct = std::collections::BTreeSet::new();
    for line in log.lines() {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = l["id"].as_str().unwrap();
        assert_eq!(l["outcome"], "ok");
        assert_eq!(
            Some(&l["prompt_tokens"].as_u64().unwrap()),
            server.get(id),
            "{id}"
        );
        distinct.insert(l["prompt_tokens"].as_u64().unwrap());
    }
    assert_eq!(
        distinct.len(),
        3,
        "the three prompts were all sent: {distinct:?}"
    );
    assert_eq!(log.lines().count() as u64, summary.steps[0].total_requests);
}
