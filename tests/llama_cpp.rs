//! A real engine: llama.cpp's llama-server serving a tiny random-weight model with the Llama-3
//! vocabulary (../shared/engines). Every request must stream exactly the tokens it asked for,
//! and our token counts must agree with the server's `usage`.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use inference_benchmarker::config::{BenchmarkKind, Endpoint};
use inference_benchmarker::workload::options::TokenizeOptions;

const OUTPUT_TOKENS: u64 = 24;

/// Stops the server however the test ends.
struct Engine(u32);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

fn start_engine() -> Option<(Engine, u16)> {
    let script = common::shared_dir()?.join("engines/llama-server.sh");
    if !script.is_file() {
        common::skip("llama_cpp", "../shared/engines/llama-server.sh is missing");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("bash")
        .arg(&script)
        .args(["start", &port.to_string()])
        .output()
        .expect("llama-server.sh runs");
    assert!(
        out.status.success(),
        "llama-server did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a PID");
    Some((Engine(pid), port))
}

fn read_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn llama_cpp_streams_the_requested_tokens_and_counts_agree() {
    let Some(tokenizer) = common::llama3_tokenizer("llama_cpp") else {
        return;
    };
    let Some((_engine, port)) = start_engine() else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}");

    for endpoint in [Endpoint::Chat, Endpoint::Completions] {
        let out = tempfile::tempdir().unwrap();
        let mut cfg = common::config(&url, out.path());
        cfg.tokenizer_name = Some(tokenizer.clone());
        cfg.endpoint = endpoint;
        cfg.benchmark_kind = BenchmarkKind::Rate;
        cfg.rates = Some(vec![4.0]);
        cfg.duration = Duration::from_secs(3);
        cfg.prompt_options = Some(TokenizeOptions::fixed(32));
        cfg.decode_options = Some(TokenizeOptions::fixed(OUTPUT_TOKENS));
        cfg.save_requests = true;
        let summary = inference_benchmarker::run(cfg).expect("the run against llama.cpp completes");
        common::validated(&summary.results_path);

        let step = &summary.steps[0];
        assert_eq!(step.total_requests, 12, "{endpoint:?}: 4 req/s for 3 s");
        assert_eq!(
            step.successful_requests, 12,
            "{endpoint:?}: {:?}",
            step.first_error
        );
        assert_eq!(step.total_tokens, 12 * OUTPUT_TOKENS);
        assert_eq!(step.output_tokens.server_reported_requests, 12);

        let log = sinks::json::requests_log_path(&summary.results_path);
        let lines = read_lines(&log);
        assert_eq!(lines.len(), 12);
        for l in &lines {
            assert_eq!(l["outcome"], "ok");
            assert_eq!(
                l["chunks"], OUTPUT_TOKENS,
                "one streamed chunk per token: {l}"
            );
            assert_eq!(l["server_completion_tokens"], OUTPUT_TOKENS, "{l}");
            assert_eq!(l["output_tokens"], OUTPUT_TOKENS, "{l}");
            assert_eq!(l["prompt_tokens"], 32, "{l}");
            if endpoint == Endpoint::Completions {
                // The raw prompt, tokenized by the server with BOS added: ours + 1.
                assert_eq!(l["server_prompt_tokens"], 32 + 1, "{l}");
            }
        }
        if endpoint == Endpoint::Chat {
            // The chat template adds the same number of tokens to every request (BOS, role
            // headers, end-of-turn), so the server's count is ours plus a constant.
            let overheads: std::collections::BTreeSet<u64> = lines
                .iter()
                .map(|l| l["server_prompt_tokens"].as_u64().unwrap() - 32)
                .collect();
            assert_eq!(
                overheads.len(),
                1,
                "a constant template overhead: {overheads:?}"
            );
            let overhead = *overheads.first().unwrap();
            assert!((1..64).contains(&overhead), "{overhead}");
            // The results report it: server-counted prompt tokens minus the ones we sent.
            let doc = common::validated(&summary.results_path);
            let r = &doc["results"][0];
            let reported = r["output_tokens"]["server_prompt_tokens"].as_u64().unwrap()
                - r["total_tokens_sent"].as_u64().unwrap();
            assert_eq!(reported, 12 * overhead, "{r}");
            // ... and as its own figure.
            assert_eq!(
                step.output_tokens.prompt_overhead_per_request,
                Some(overhead as f64)
            );
            eprintln!("llama.cpp chat template overhead: {overhead} tokens per request");
        } else {
            assert_eq!(
                step.output_tokens.prompt_overhead_per_request,
                Some(1.0),
                "BOS"
            );
        }
    }
}

/// Multi-turn chat against the real server: its chat template accepts the growing message
/// lists (system, user, assistant, user, …), and each later turn's prompt, as the server counts
/// it, holds the previous turn's prompt plus the answer and the new user turn.
#[test]
fn llama_cpp_multi_turn_prompts_grow_with_the_answers() {
    let Some(tokenizer) = common::llama3_tokenizer("llama_cpp_multi_turn") else {
        return;
    };
    let Some((_engine, port)) = start_engine() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dataset = out.path().join("chat.jsonl");
    let line = |n: u32| {
        serde_json::json!({"conversations": [
            {"from": "system", "value": "You answer in one short sentence."},
            {"from": "human", "value": format!("Question {n}: what is a tokenizer?")},
            {"from": "gpt", "value": "unused"},
            {"from": "human", "value": "And what is a chat template?"},
            {"from": "human", "value": "Why does the prompt grow each turn?"},
        ]})
        .to_string()
    };
    std::fs::write(&dataset, format!("{}\n{}\n", line(1), line(2))).unwrap();
    let mut cfg = common::config(&format!("http://127.0.0.1:{port}"), out.path());
    cfg.tokenizer_name = Some(tokenizer);
    cfg.dataset = None;
    cfg.dataset_file = Some(dataset);
    cfg.prompt_options = None;
    cfg.decode_options = Some(TokenizeOptions::fixed(OUTPUT_TOKENS));
    // Open loop: an arrival sends the next turn of a conversation whose answer has ended, or
    // starts one. (A closed loop against llama-server currently sees awc connect errors on
    // reused connections, single-turn too: reported, not this test's subject.)
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![3.0]);
    cfg.duration = Duration::from_secs(4);
    cfg.save_requests = true;
    let summary = inference_benchmarker::run(cfg).expect("the run against llama.cpp completes");
    let lines = read_lines(&sinks::json::requests_log_path(&summary.results_path));
    assert_eq!(lines.len(), 12, "3 req/s for 4 s");
    // (our prompt tokens, the server's), per request. Our count of a later turn adds the
    // answer and the new user turn to the previous prompt; the server's must grow with it.
    let mut counts: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["outcome"], "ok", "{l}");
            assert_eq!(l["server_completion_tokens"], OUTPUT_TOKENS, "{l}");
            (
                l["prompt_tokens"].as_u64().unwrap(),
                l["server_prompt_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    let levels: std::collections::BTreeSet<u64> = counts.iter().map(|c| c.0).collect();
    assert!(levels.len() >= 3, "turns 1, 2 and 3 were sent: {counts:?}");
    for pair in counts.windows(2) {
        if pair[1].0 > pair[0].0 + OUTPUT_TOKENS {
            assert!(pair[1].1 > pair[0].1 + OUTPUT_TOKENS, "{counts:?}");
        }
    }
    let (first, last) = (counts[0], counts[counts.len() - 1]);
    assert!(
        last.1 > first.1 + 2 * OUTPUT_TOKENS,
        "a third turn holds two answers: {counts:?}"
    );
}

/// llama-server closes the connection after every streamed response while advertising
/// keep-alive; a closed-loop user reusing it at once would race the close and lose requests.
/// The pre-flight finds this and gives each request its own connection: no failure.
#[test]
fn llama_cpp_closed_loop_loses_no_request_to_closed_connections() {
    let Some(tokenizer) = common::llama3_tokenizer("llama_cpp closed loop") else {
        return;
    };
    let Some((_engine, port)) = start_engine() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&format!("http://127.0.0.1:{port}"), out.path());
    cfg.tokenizer_name = Some(tokenizer);
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 4;
    cfg.duration = Duration::from_secs(3);
    cfg.prompt_options = Some(TokenizeOptions::fixed(16));
    cfg.decode_options = Some(TokenizeOptions::fixed(8));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let doc = common::validated(&summary.results_path);
    assert_eq!(
        doc["config"]["keep_alive"], false,
        "the pre-flight saw the server close"
    );
    let step = &summary.steps[0];
    assert!(step.total_requests >= 20, "{}", step.total_requests);
    assert_eq!(
        step.failed_requests, 0,
        "{:?} {:?}",
        step.errors, step.first_error
    );
}
