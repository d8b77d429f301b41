//! Reasoning models and multi-token chunks (issue 18), request by request against the simulated
//! server's own record: time to first token and to first answer token, reasoning and answer
//! token counts, the "no answer" outcome; and with several tokens a chunk, ITL per token and
//! inter-chunk latency per chunk, each as the glossary defines it.
//!
//! Timing is judged as tests/accuracy.rs judges it: our error against the server's record may
//! exceed the machine's floor (measured in the same run by a raw-socket client) by at most 1 ms
//! at p50 and p90, and 2.5 ms at p99 (`common::timing`).

mod common;

use std::time::Duration;

use common::timing::{self, timed, within_floor};
use inference_benchmarker::config::{BenchmarkKind, Endpoint};
use inference_benchmarker::sim::{SimConfig, SimRecord, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;
use serde_json::Value;

/// When each chunk was handed to the body, ms after the server received the request: the time
/// of the chunk's last token.
fn server_chunk_times_ms(r: &SimRecord) -> Vec<f64> {
    let mut end = 0usize;
    r.chunk_tokens
        .iter()
        .map(|&n| {
            end += n as usize;
            f64::from(r.token_offsets_us[end - 1]) / 1000.0
        })
        .collect()
}

/// When the first answer chunk went out (None: no answer).
fn server_first_answer_ms(r: &SimRecord) -> Option<f64> {
    let mut end = 0u64;
    r.chunk_tokens.iter().find_map(|&n| {
        end += u64::from(n);
        (end > r.reasoning_tokens).then(|| f64::from(r.token_offsets_us[end as usize - 1]) / 1000.0)
    })
}

fn offsets(line: &Value) -> Vec<f64> {
    line["chunk_offsets_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Runs the benchmark (and the floor client beside it) against `sim`; returns the requests log,
/// the step and the floor's first-chunk errors.
fn run(
    sim: &SimServer,
    endpoint: Endpoint,
    decode: TokenizeOptions,
    floor_tokens: u32,
) -> (Vec<Value>, Value, Vec<f64>) {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.endpoint = endpoint;
    // Passed through (the simulated server ignores it): the body stays one the server accepts.
    cfg.reasoning_effort = Some("low".into());
    cfg.tokenizer_name = None;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 4;
    // 4 s beside 40 floor requests: p99s that are not one request each.
    cfg.duration = Duration::from_secs(4);
    cfg.decode_options = Some(decode);
    cfg.save_requests = true;
    let floor = timing::start_floor(sim.addr(), 40, floor_tokens);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let floor_requests = floor.join().expect("the floor client ends");
    let doc = common::validated(&summary.results_path);
    let lines = common::requests_log(&summary.results_path);
    let records = sim.records();
    let by_id = common::by_request_id(&records);
    let floor_errors = sorted(
        floor_requests
            .iter()
            // The floor client stamps answer chunks only.
            .map(|f| {
                let answer = server_first_answer_ms(by_id[f.id.as_str()]).expect("an answer");
                f.chunk_offsets_ms[0] - answer
            })
            .collect(),
    );
    assert_eq!(doc["results"].as_array().unwrap().len(), 1);
    (lines, doc["results"][0].clone(), floor_errors)
}

#[test]
fn reasoning_and_answer_match_the_servers_record_request_by_request() {
    timed("reasoning", || reasoning_and_answer(Endpoint::Chat));
}

/// The Responses API streams reasoning as `response.reasoning_text.delta` events: the same
/// figures, from its own event parser.
#[test]
fn responses_reasoning_and_answer_match_the_servers_record_request_by_request() {
    timed("responses reasoning", || {
        reasoning_and_answer(Endpoint::Responses)
    });
}

fn reasoning_and_answer(endpoint: Endpoint) -> Result<(), String> {
    const REASONING: u64 = 12;
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(30.0),
            fixed_itl_ms: Some(4.0),
            reasoning_tokens: REASONING as u32,
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    // max_tokens drawn in 4..=24 (with ignore_eos): at or below 12 the reasoning uses them all.
    let decode = TokenizeOptions {
        num_tokens: Some(14),
        min_tokens: 4,
        max_tokens: 24,
        variance: 8,
    };
    let (lines, step, floor) = run(&sim, endpoint, decode, 16);
    let records = sim.records();
    sim.stop();
    let by_id = common::by_request_id(&records);

    let (mut ttft_errors, mut ttfa_errors) = (Vec::new(), Vec::new());
    let mut no_answer = 0;
    for l in &lines {
        let server = by_id[l["id"].as_str().unwrap()];
        assert_eq!(l["outcome"], "ok", "{l}");
        // Token counts: the server's usage, reasoning included, and the reasoning apart.
        assert_eq!(l["output_tokens"], server.completion_tokens, "{l}");
        assert_eq!(
            server.reasoning_tokens,
            REASONING.min(server.completion_tokens)
        );
        assert_eq!(l["reasoning_tokens"], server.reasoning_tokens, "{l}");
        assert_eq!(l["reasoning_tokens_source"], "server", "{l}");
        assert_eq!(
            l["answer_tokens"],
            server.completion_tokens - server.reasoning_tokens,
            "{l}"
        );
        assert_eq!(l["reasoning_chunks"], server.reasoning_tokens, "{l}");
        // TTFT is the first token of any kind: the first reasoning token.
        let chunks = server_chunk_times_ms(server);
        ttft_errors.push(l["ttft_ms"].as_f64().unwrap() - chunks[0]);
        match server_first_answer_ms(server) {
            Some(answer) => {
                assert_eq!(l["no_answer"], false, "{l}");
                ttfa_errors.push(l["ttfa_ms"].as_f64().unwrap() - answer);
                let ttfa = l["ttfa_ms"].as_f64().unwrap();
                let first_answer_chunk = offsets(l)[server.reasoning_tokens as usize];
                assert!((ttfa - first_answer_chunk).abs() < 0.002, "{l}");
            }
            None => {
                // A success on the wire without an answer: reasoning used up max_tokens.
                assert_eq!(l["no_answer"], true, "{l}");
                assert!(l["ttfa_ms"].is_null(), "{l}");
                assert_eq!(l["finish_reason"], "length", "{l}");
                assert_eq!(server.completion_tokens, l["requested_output_tokens"]);
                no_answer += 1;
            }
        }
    }
    within_floor("TTFT error", ttft_errors, &floor)?;
    within_floor("time to first answer token error", ttfa_errors, &floor)?;

    // The step: no-answer requests stay successes; every request reasoned.
    let total = lines.len() as u64;
    assert!(no_answer > 0 && no_answer < total, "{no_answer} of {total}");
    assert_eq!(step["successful_requests"], total);
    assert_eq!(step["failed_requests"], 0);
    assert_eq!(step["no_answer_requests"], no_answer);
    assert_eq!(step["reasoning_requests"], total);
    assert_eq!(step["reasoning_tokens"]["count"], total);
    assert_eq!(
        step["time_to_first_answer_token_ms"]["count"],
        total - no_answer
    );
    let max_reasoning = step["reasoning_tokens"]["max"].as_f64().unwrap();
    assert!((max_reasoning - REASONING as f64).abs() < 0.02, "{step}");
    // The answer starts after the reasoning: 12 tokens 4 ms apart after the first.
    let (ttft, ttfa) = (
        step["time_to_first_token_ms"]["p50"].as_f64().unwrap(),
        step["time_to_first_answer_token_ms"]["p50"]
            .as_f64()
            .unwrap(),
    );
    assert!(ttfa - ttft > 40.0, "TTFT p50 {ttft} ms, TTFA p50 {ttfa} ms");
    Ok(())
}

#[test]
fn itl_is_per_token_and_inter_chunk_latency_per_chunk_with_multi_token_chunks() {
    timed("multi-token chunks", multi_token_chunks);
}

fn multi_token_chunks() -> Result<(), String> {
    const TOKENS: u64 = 22;
    const PER_CHUNK: u32 = 4;
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(6.0),
            tokens_per_chunk: PER_CHUNK,
            reasoning_field: "reasoning".into(),
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let (lines, step, floor) = run(
        &sim,
        Endpoint::Chat,
        TokenizeOptions::fixed(TOKENS),
        TOKENS as u32,
    );
    let records = sim.records();
    sim.stop();
    let by_id = common::by_request_id(&records);

    let (mut itl_errors, mut gap_errors) = (Vec::new(), Vec::new());
    for l in &lines {
        let server = by_id[l["id"].as_str().unwrap()];
        assert_eq!(server.chunk_tokens, vec![4, 4, 4, 4, 4, 2]);
        let ours = offsets(l);
        let truth = server_chunk_times_ms(server);
        assert_eq!(ours.len(), truth.len(), "one offset a chunk: {l}");
        assert_eq!(l["output_tokens"], TOKENS);
        let per_chunk = l["tokens_per_chunk"].as_f64().unwrap();
        assert!((per_chunk - TOKENS as f64 / 6.0).abs() < 1e-9, "{l}");
        // The original's ITL (vLLM's TPOT) = (last chunk − first chunk) / (output tokens − 1).
        let server_itl = (truth[5] - truth[0]) / (TOKENS - 1) as f64;
        itl_errors.push(l["itl_ms"].as_f64().unwrap() - server_itl);
        // Inter-chunk latency = the gaps between chunks, each against the server's.
        for k in 1..truth.len() {
            gap_errors.push((ours[k] - ours[k - 1]) - (truth[k] - truth[k - 1]));
        }
    }
    within_floor("ITL error", itl_errors, &floor)?;
    // A gap is the difference of two arrivals: its error is within twice the machine's.
    let doubled: Vec<f64> = floor.iter().map(|e| 2.0 * e.abs()).collect();
    within_floor("inter-chunk gap error", gap_errors, &sorted(doubled))?;

    // The step: ITL per token (6 ms, less the shorter last chunk), gaps per chunk (24 ms).
    let itl = step["inter_token_latency_ms"]["p50"].as_f64().unwrap();
    let gap = step["inter_chunk_latency_ms"]["p50"].as_f64().unwrap();
    assert!((itl - 108.0 / 21.0).abs() < 1.0, "ITL p50 {itl} ms");
    // The per-token ITL leaves the first chunk's 4 tokens out: 6 ms a token.
    let per_token = step["per_token_itl_ms"]["p50"].as_f64().unwrap();
    assert!(
        (per_token - 6.0).abs() < 1.0,
        "per-token ITL p50 {per_token} ms"
    );
    assert!((gap - 24.0).abs() < 2.0, "inter-chunk p50 {gap} ms");
    let tpc = &step["tokens_per_chunk"];
    for figure in ["avg", "p99"] {
        let v = tpc[figure].as_f64().unwrap();
        assert!(
            (v - TOKENS as f64 / 6.0).abs() < 0.01,
            "tokens per chunk {figure}: {v}"
        );
    }
    assert_eq!(step["reasoning_requests"], 0);
    assert_eq!(step["no_answer_requests"], 0);
    Ok(())
}

/// 4 tokens a chunk at 10 ms a token (issue 23, item 13): the per-token ITL reads 10 ms, for
/// 5-token requests (one chunk of 4, then the fifth token 10 ms later) and for long ones; the
/// original's ITL (vLLM's TPOT) reads low, dividing by every token but the first.
#[test]
fn the_per_token_itl_is_the_per_token_time_with_four_token_chunks() {
    timed("per-token ITL", per_token_itl_with_four_token_chunks);
}

fn per_token_itl_with_four_token_chunks() -> Result<(), String> {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(10.0),
            tokens_per_chunk: 4,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let mut problems = Vec::new();
    // Chunks go out with tokens 3, 7, ...: 10 ms after the first, 5 tokens span 10 ms (TPOT
    // 10/4); 41 tokens span 370 ms (TPOT 370/40).
    for (tokens, tpot) in [(5u64, 10.0 / 4.0), (41, 370.0 / 40.0)] {
        let out = tempfile::tempdir().unwrap();
        let mut cfg = common::config(&sim.url(), out.path());
        cfg.benchmark_kind = BenchmarkKind::Throughput;
        cfg.max_vus = 4;
        cfg.duration = Duration::from_secs(2);
        cfg.decode_options = Some(TokenizeOptions::fixed(tokens));
        let summary = inference_benchmarker::run(cfg).expect("the run completes");
        let doc = common::validated(&summary.results_path);
        let step = &doc["results"][0];
        let figure = |key: &str, at: &str| step[key][at].as_f64().unwrap_or(f64::NAN);
        // The mean of 5-token requests also carries the few whose first chunk's share of the
        // bytes was misread as 3 tokens of 5 (short words first: 5 ms for them), about 9.6 ms.
        let judged: &[&str] = if tokens < 10 {
            &["p50"]
        } else {
            &["p50", "avg"]
        };
        for &at in judged {
            let per_token = figure("per_token_itl_ms", at);
            // Missing (NaN) fails too.
            if per_token.is_nan() || (per_token - 10.0).abs() > 0.5 {
                problems.push(format!(
                    "{tokens} tokens: per-token ITL {at} {per_token} ms"
                ));
            }
        }
        // Checked loosely: it is not the figure under test, only shown to differ.
        let itl = figure("inter_token_latency_ms", "p50");
        eprintln!(
            "{tokens} tokens: per-token ITL p50 {} avg {} ms; ITL (TPOT) p50 {itl} ms",
            figure("per_token_itl_ms", "p50"),
            figure("per_token_itl_ms", "avg")
        );
        assert!(
            (itl - tpot).abs() < tpot * 0.2,
            "{tokens} tokens: ITL (TPOT) p50 {itl} ms, expected about {tpot}"
        );
    }
    sim.stop();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
