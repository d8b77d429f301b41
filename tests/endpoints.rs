//! `--endpoint responses`, `embeddings` and `rerank` against the simulated server, checked
//! request by request against its records: the Responses API's TTFT, counts and outcomes; a
//! multi-turn run chained by `previous_response_id` as the server's own state shows it; the
//! latency of embeddings and rerank requests against the server's service time, judged against a
//! raw-socket client's beside the run, with their TTFT and ITL null.

mod common;

use common::{floor, timing};

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use inference_benchmarker::config::{BenchmarkKind, Endpoint, RunConfig};
use inference_benchmarker::sim::{MsRange, SimConfig, SimRecord, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;
use inference_benchmarker::workload::tokenizer;
use serde_json::Value;

/// How late the server's own sleep may end on a loaded machine.
const SLEEP_LATENESS_MS: f64 = 25.0;

fn sim(cfg: SimConfig) -> SimServer {
    SimServer::start(
        SimConfig {
            record: true,
            ..cfg
        },
        Some(tokenizer::load(None).unwrap().tokenizer),
    )
    .expect("simulated server starts")
}

/// The requests log of a run, by request id, and the results document (validated).
fn run(cfg: RunConfig) -> (HashMap<String, Value>, Value) {
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let doc = common::validated(&summary.results_path);
    let lines = common::requests_log(&summary.results_path)
        .into_iter()
        .map(|l| (l["id"].as_str().unwrap().to_string(), l))
        .collect();
    (lines, doc)
}

fn config(sim: &SimServer, out: &Path, endpoint: Endpoint) -> RunConfig {
    let mut cfg = common::config(&sim.url(), out);
    cfg.endpoint = endpoint;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 4;
    cfg.save_requests = true;
    cfg
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    common::percentile(&v, q)
}

#[test]
fn the_responses_api_is_measured_request_by_request() {
    timing::timed("responses", responses_api);
}

fn responses_api() -> Result<(), String> {
    let sim = sim(SimConfig {
        random_ttft_ms: Some(MsRange {
            min: 20.0,
            max: 60.0,
        }),
        random_itl_ms: Some(MsRange { min: 2.0, max: 8.0 }),
        seed: 3,
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, out.path(), Endpoint::Responses);
    cfg.duration = Duration::from_secs(3);
    let floor = timing::start_floor(sim.addr(), 30, 16);
    let (ours, doc) = run(cfg);
    let floor = floor.join().expect("the floor client ends");
    let all = sim.records();
    sim.stop();

    let step = &doc["results"][0];
    assert_eq!(
        (all.len() - floor.len()) as u64,
        step["total_requests"].as_u64().unwrap()
    );
    assert!(ours.len() >= 20, "{} requests", ours.len());
    let records = common::by_request_id(&all);
    let mut ttft_errors = Vec::new();
    for (id, line) in &ours {
        let server = records[id.as_str()];
        assert_eq!(server.endpoint, "/v1/responses");
        assert_eq!((server.status, server.stream), (200, true), "{id}");
        assert_eq!(line["outcome"], "ok", "{line}");
        // Counts: the server's usage from response.incomplete (max_output_tokens reached).
        assert_eq!(server.completion_tokens, 16);
        assert_eq!(line["output_tokens"], 16);
        assert_eq!(line["server_completion_tokens"], 16);
        assert_eq!(line["server_prompt_tokens"], server.prompt_tokens);
        assert_eq!(line["chunks"], 16, "one text delta a token");
        assert_eq!(line["finish_reason"], "length");
        assert_eq!(line["response_model"], "simulated");
        // TTFT from the first text delta, against when the server sent it.
        let server_ttft = f64::from(server.ttft_us.unwrap()) / 1e3;
        ttft_errors.push(line["ttft_ms"].as_f64().unwrap() - server_ttft);
    }
    timing::within_floor(
        "TTFT error",
        ttft_errors,
        &timing::floor_errors(&floor, &records),
    )?;
    let ttft = &step["time_to_first_token_ms"];
    assert_eq!(ttft["count"], step["successful_requests"]);
    assert!(step["inter_token_latency_ms"]["p50"].as_f64().unwrap() >= 2.0);
    assert!(step["inputs"].is_null(), "no inputs figure for generation");
    Ok(())
}

/// Tokens of `text` by the built-in tokenizer, as the simulated server counts them.
fn count(text: &str) -> u64 {
    let tok = tokenizer::load(None).unwrap().tokenizer;
    tok.encode(text, false).unwrap().len() as u64
}

fn conversations() -> Value {
    let conv = |n: usize| {
        serde_json::json!({"id": n, "conversations": [
            {"from": "system", "value": "Be terse."},
            {"from": "human", "value": format!("Conversation {n}, first question?")},
            {"from": "gpt", "value": "DATASET ANSWER"},
            {"from": "human", "value": format!("Conversation {n}, second question?")},
            {"from": "gpt", "value": "DATASET ANSWER"},
            {"from": "human", "value": format!("Conversation {n}, third question?")},
        ]})
    };
    Value::Array((0..4).map(conv).collect())
}

#[test]
fn responses_conversations_continue_the_servers_state() {
    let _one = timing::one_timed_run();
    let sim = sim(SimConfig::default());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("chat.json");
    std::fs::write(&file, conversations().to_string()).unwrap();
    let mut cfg = config(&sim, out.path(), Endpoint::Responses);
    cfg.dataset = None;
    cfg.dataset_file = Some(file);
    cfg.prompt_options = None;
    cfg.decode_options = Some(TokenizeOptions::fixed(12));
    cfg.max_vus = 2;
    let (ours, _) = run(cfg);
    let records = sim.records();
    sim.stop();

    // The first turn's prompt is its messages joined by "\n", as the workload cut it, and
    // counted whole; the server counts each message apart: the separator's token is the one
    // difference, kept in every later turn (which adds each new message's own count).
    const FIRST_TURN_SEPARATORS: u64 = 1;
    for n in 0..4 {
        let first = format!("Conversation {n}, first question?");
        assert_eq!(
            count(&format!("Be terse.\n{first}")),
            count("Be terse.") + count(&first) + FIRST_TURN_SEPARATORS
        );
    }
    let by = common::by_request_id(&records);
    let mut turns = [0usize; 4];
    for r in &records {
        assert_eq!(r.status, 200, "{r:?}");
        let id = r.request_id.as_deref().unwrap();
        assert_eq!(ours[id]["outcome"], "ok");
        // Ours count the whole conversation with the server's tokenizer, its answers by their
        // `usage`, as the server counts what it holds (the chat template is counted by neither):
        // its count at every turn, but for the first turn's separators (below).
        assert_eq!(
            ours[id]["prompt_tokens"].as_u64(),
            Some(r.prompt_tokens + FIRST_TURN_SEPARATORS),
            "{r:?}"
        );
        let Some(previous) = &r.previous_response_id else {
            turns[1] += 1;
            continue;
        };
        // The response id is "resp_" + the x-request-id of the request it answered.
        let prev = by[previous.strip_prefix("resp_").expect("a response id")];
        let prev_end = prev.received_at_unix_nanos + u128::from(prev.end_us.unwrap()) * 1000;
        assert!(
            r.received_at_unix_nanos >= prev_end,
            "sent after the previous answer"
        );
        // The server served it as the stored conversation plus only the new input: its input
        // tokens are the previous turn's input and output plus the new user turn ("Conversation
        // n, second question?" and the like: a few tokens, far fewer than the history).
        let depth = 1 + std::iter::successors(Some(prev), |p| {
            p.previous_response_id
                .as_deref()
                .map(|id| by[id.strip_prefix("resp_").unwrap()])
        })
        .count();
        let history = prev.prompt_tokens + prev.completion_tokens;
        let new_input = r.prompt_tokens - history;
        let ordinal = ["", "", "second", "third"][depth];
        let expected: Vec<u64> = (0..4)
            .map(|n| count(&format!("Conversation {n}, {ordinal} question?")))
            .collect();
        assert!(
            expected.contains(&new_input),
            "{r:?} after {prev:?}: {expected:?}"
        );
        turns[depth] += 1;
    }
    assert!(
        turns[1] > 0 && turns[2] > 0 && turns[3] > 0,
        "first, second and third turns: {turns:?}"
    );
}

/// A raw HTTP/1.1 POST: status and body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[test]
fn an_unknown_previous_response_is_refused_and_a_known_one_continues() {
    let _one = timing::one_timed_run();
    let sim = sim(SimConfig::default());
    let body = |previous: &str| {
        format!(
            r#"{{"model":"simulated","input":"Hi there","max_output_tokens":3,"previous_response_id":"{previous}"}}"#
        )
    };
    let (status, text) = post(sim.addr(), "/v1/responses", &body("resp_nope"));
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("Previous response with id 'resp_nope' not found."),
        "{text}"
    );
    let (status, text) = post(
        sim.addr(),
        "/v1/responses",
        r#"{"model":"simulated","input":"Hi there","max_output_tokens":3}"#,
    );
    assert_eq!(status, 200, "{text}");
    let first: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first["status"], "incomplete");
    let id = first["id"].as_str().unwrap();
    let (status, text) = post(sim.addr(), "/v1/responses", &body(id));
    assert_eq!(status, 200, "{text}");
    let second: Value = serde_json::from_str(&text).unwrap();
    let input = |v: &Value| v["usage"]["input_tokens"].as_u64().unwrap();
    assert_eq!(input(&second), input(&first) + 3 + input(&first));
    sim.stop();
}

/// The service time the server recorded for a request (when its answer was produced, after it
/// was received).
fn service_ms(server: &SimRecord) -> f64 {
    f64::from(server.end_us.unwrap()) / 1e3
}

/// The service time of one of our requests, checked against the cost of its input tokens (the
/// floor's are only the reference of its error: how late the server slept does not matter).
fn checked_service_ms(server: &SimRecord, us_per_token: f64) -> Result<f64, String> {
    let service_ms = service_ms(server);
    let cost_ms = server.prompt_tokens as f64 * us_per_token / 1e3;
    assert!(
        service_ms >= cost_ms,
        "service {service_ms} ms for {cost_ms} ms of tokens"
    );
    if service_ms > cost_ms + SLEEP_LATENESS_MS {
        return Err(format!(
            "the server's sleep ended late: service {service_ms} ms for {cost_ms} ms of tokens"
        ));
    }
    Ok(service_ms)
}

/// The floor client's request to a pooling route: four short inputs, in vLLM's shape as ours.
fn floor_body(endpoint: Endpoint) -> Value {
    let texts: Vec<String> = (0..4)
        .map(|i| format!("the machine floor, input {i}"))
        .collect();
    match endpoint {
        Endpoint::Rerank => {
            serde_json::json!({"model": "simulated", "query": "the floor", "documents": texts})
        }
        _ => serde_json::json!({"model": "simulated", "input": texts}),
    }
}

/// Embeddings and rerank: a latency per request equal to the server's service time (its cost
/// per input token × the tokens), within what a raw-socket client beside the run measures of the
/// same server (the floor, as the streaming tests have); no TTFT or ITL, and inputs counted in
/// the step.
fn pooling(endpoint: Endpoint, route: &'static str) -> Result<(), String> {
    const BATCH: u64 = 4;
    const US_PER_TOKEN: f64 = 100.0;
    let sim = sim(SimConfig {
        pooling_us_per_token: US_PER_TOKEN,
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, out.path(), endpoint);
    cfg.batch_size = BATCH;
    // Beside the 2 s step, one request every 50 ms.
    let (addr, body) = (sim.addr(), floor_body(endpoint));
    let floor = std::thread::spawn(move || {
        floor::run_unary(
            addr,
            "floor",
            40,
            Duration::from_millis(50),
            route,
            body,
            Duration::from_secs(30),
        )
    });
    let (ours, doc) = run(cfg);
    let floor = floor.join().expect("the floor client ends");
    let records = sim.records();
    sim.stop();

    let step = &doc["results"][0];
    assert_eq!(
        (records.len() - floor.len()) as u64,
        step["total_requests"].as_u64().unwrap()
    );
    let by = common::by_request_id(&records);
    let mut floor_errors = Vec::new();
    for f in &floor {
        let server = by[f.id.as_str()];
        assert_eq!((server.endpoint.as_str(), server.status), (route, 200));
        floor_errors.push(f.latency_ms - service_ms(server));
    }
    floor_errors.sort_by(f64::total_cmp);
    let mut errors = Vec::new();
    for (id, line) in &ours {
        let server = by[id.as_str()];
        assert_eq!((server.endpoint.as_str(), server.status), (route, 200));
        assert_eq!(server.inputs, BATCH);
        assert_eq!(line["outcome"], "ok", "{line}");
        assert!(
            line["ttft_ms"].is_null() && line["itl_ms"].is_null(),
            "{line}"
        );
        assert_eq!(line["chunks"], 0);
        assert_eq!(line["server_prompt_tokens"], server.prompt_tokens);
        errors.push(line["e2e_ms"].as_f64().unwrap() - checked_service_ms(server, US_PER_TOKEN)?);
    }
    assert!(
        errors.iter().chain(&floor_errors).all(|e| *e > -0.1),
        "we cannot see a byte before the server sent it: {errors:?} {floor_errors:?}"
    );
    for q in [0.5, 0.9, 0.99] {
        eprintln!(
            "latency error p{}: ours {:.3} ms, floor {:.3} ms",
            q * 100.0,
            percentile(errors.clone(), q),
            common::percentile(&floor_errors, q)
        );
    }
    timing::within_floor("latency error", errors, &floor_errors)?;
    let successful = step["successful_requests"].as_u64().unwrap();
    assert_eq!(successful as usize, ours.len());
    for figure in [
        "time_to_first_token_ms",
        "inter_token_latency_ms",
        "inter_chunk_latency_ms",
    ] {
        assert!(step[figure]["p50"].is_null(), "{figure}: {}", step[figure]);
        assert_eq!(step[figure]["count"], 0);
    }
    assert_eq!(step["e2e_latency_ms"]["count"], successful);
    let inputs = &step["inputs"];
    assert_eq!(inputs["batch_size"], BATCH);
    assert_eq!(inputs["inputs"], successful * BATCH);
    let server_tokens: u64 = ours.keys().map(|id| by[id.as_str()].prompt_tokens).sum();
    assert_eq!(inputs["server_input_tokens"], server_tokens);
    let secs = step["duration_ms"].as_f64().unwrap() / 1e3;
    let per_second = inputs["inputs_per_second"].as_f64().unwrap();
    assert!((per_second - (successful * BATCH) as f64 / secs).abs() < 0.01 * per_second);
    assert_eq!(step["total_tokens"], 0);
    Ok(())
}

#[test]
fn embeddings_latency_is_the_servers_service_time() {
    timing::timed("embeddings", || {
        pooling(Endpoint::Embeddings, "/v1/embeddings")
    });
}

#[test]
fn rerank_latency_is_the_servers_service_time() {
    timing::timed("rerank", || pooling(Endpoint::Rerank, "/v1/rerank"));
}
