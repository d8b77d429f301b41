//! `--endpoint responses` and `--endpoint embeddings` against the real llama.cpp llama-server
//! (tests/engine): its Responses API streams one `response.output_text.delta` per token and ends
//! with `response.completed` and its usage; `llama-server --embeddings` answers batches of inputs
//! with as many vectors; `llama-server --reranking` scores documents against a query (the tiny
//! model's scores mean nothing, the route and its counts are what is checked). llama.cpp refuses
//! `previous_response_id`: multi-turn Responses runs are tested against the simulated server
//! only.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::engine::{read_lines, start_engine, start_engine_with};
use inference_benchmarker::config::{BenchmarkKind, Endpoint, RunConfig};
use inference_benchmarker::workload::options::TokenizeOptions;

const OUTPUT_TOKENS: u64 = 24;
const PROMPT_TOKENS: u64 = 32;

fn config(port: u16, out: &std::path::Path, endpoint: Endpoint) -> RunConfig {
    let mut cfg = common::config(&format!("http://127.0.0.1:{port}"), out);
    cfg.endpoint = endpoint;
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![4.0]);
    cfg.duration = Duration::from_secs(3);
    cfg.prompt_options = Some(TokenizeOptions::fixed(PROMPT_TOKENS));
    cfg.decode_options = Some(TokenizeOptions::fixed(OUTPUT_TOKENS));
    cfg.save_requests = true;
    cfg
}

#[test]
fn llama_cpp_serves_the_responses_api() {
    let Some((_engine, port)) = start_engine("llama_cpp_serves_the_responses_api") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let summary = inference_benchmarker::run(config(port, out.path(), Endpoint::Responses))
        .expect("the run against llama.cpp completes");
    common::validated(&summary.results_path);
    let step = &summary.steps[0];
    assert_eq!(step.total_requests, 12, "4 req/s for 3 s");
    assert_eq!(step.successful_requests, 12, "{:?}", step.first_error);
    assert_eq!(step.total_tokens, 12 * OUTPUT_TOKENS);
    let lines = read_lines(&sinks::json::requests_log_path(&summary.results_path));
    assert_eq!(lines.len(), 12);
    let mut overheads = BTreeSet::new();
    for l in &lines {
        assert_eq!(l["outcome"], "ok", "{l}");
        assert_eq!(l["chunks"], OUTPUT_TOKENS, "one text delta per token: {l}");
        assert_eq!(l["server_completion_tokens"], OUTPUT_TOKENS, "{l}");
        assert!(l["ttft_ms"].as_f64().unwrap() > 0.0, "{l}");
        assert!(l["itl_ms"].as_f64().unwrap() > 0.0, "{l}");
        // The Responses input goes through the chat template, as chat messages do.
        overheads.insert(l["server_prompt_tokens"].as_u64().unwrap() - PROMPT_TOKENS);
    }
    assert_eq!(
        overheads.len(),
        1,
        "a constant template overhead: {overheads:?}"
    );
    assert_eq!(step.time_to_first_token_ms.count, 12);
}

#[test]
fn llama_cpp_embeds_batches() {
    const BATCH: u64 = 4;
    let Some((_engine, port)) = start_engine_with(
        "llama_cpp_embeds_batches",
        &["--embeddings", "--pooling", "mean"],
    ) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(port, out.path(), Endpoint::Embeddings);
    cfg.batch_size = BATCH;
    let summary = inference_benchmarker::run(cfg).expect("the run against llama.cpp completes");
    let doc = common::validated(&summary.results_path);
    let step = &summary.steps[0];
    assert_eq!(step.total_requests, 12, "4 req/s for 3 s");
    assert_eq!(step.successful_requests, 12, "{:?}", step.first_error);
    let lines = read_lines(&sinks::json::requests_log_path(&summary.results_path));
    let mut overheads = BTreeSet::new();
    for l in &lines {
        assert_eq!(l["outcome"], "ok", "{l}");
        assert!(l["ttft_ms"].is_null() && l["itl_ms"].is_null(), "{l}");
        assert_eq!(l["prompt_tokens"], BATCH * PROMPT_TOKENS);
        // The server tokenizes each input as we do, plus its special tokens.
        overheads.insert(l["server_prompt_tokens"].as_u64().unwrap() - BATCH * PROMPT_TOKENS);
    }
    assert_eq!(overheads.len(), 1, "{overheads:?}");
    assert!(*overheads.first().unwrap() <= 2 * BATCH, "{overheads:?}");
    assert_eq!(step.time_to_first_token_ms.count, 0);
    let inputs = &doc["results"][0]["inputs"];
    assert_eq!(inputs["inputs"], 12 * BATCH);
    assert_eq!(inputs["input_tokens"], 12 * BATCH * PROMPT_TOKENS);
}

#[test]
fn llama_cpp_reranks_batches() {
    const BATCH: u64 = 4;
    let Some((_engine, port)) = start_engine_with("llama_cpp_reranks_batches", &["--reranking"])
    else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(port, out.path(), Endpoint::Rerank);
    cfg.batch_size = BATCH;
    let summary = inference_benchmarker::run(cfg).expect("the run against llama.cpp completes");
    let doc = common::validated(&summary.results_path);
    let step = &summary.steps[0];
    assert_eq!(step.successful_requests, 12, "{:?}", step.first_error);
    for l in &read_lines(&sinks::json::requests_log_path(&summary.results_path)) {
        assert_eq!(l["outcome"], "ok", "{l}");
        assert!(l["ttft_ms"].is_null(), "{l}");
        // Ours: the query once and the documents; the server scores each (query, document) pair.
        assert_eq!(l["prompt_tokens"], (BATCH + 1) * PROMPT_TOKENS);
        assert!(
            l["server_prompt_tokens"].as_u64().unwrap() >= 2 * BATCH * PROMPT_TOKENS,
            "{l}"
        );
    }
    assert_eq!(doc["results"][0]["inputs"]["inputs"], 12 * BATCH);
}
