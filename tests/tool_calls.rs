//! Tool calls, request by request against the simulated server's record: an agent-like dataset
//! (tools, an expected tool call and its result, a later user turn) runs call → tool result →
//! answer → user turn → call → result → answer. Each request's outcome, tool-call count, time
//! to first token and to first tool-call token (within the accuracy `tests/accuracy.rs` holds)
//! are the server's; every tool result goes back as a `tool` message whose `tool_call_id` is the
//! id of the call the server actually streamed, after the assistant turn carrying that call.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::timing;
use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{MsRange, SimConfig, SimRecord, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;
use serde_json::{json, Value};

const OUTPUT_TOKENS: u64 = 12;
const RESULT: &str = "{\"temp_c\": 21}";

fn dataset() -> Value {
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let entry = |n: usize| {
        json!({"id": n, "tools": tools, "conversations": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": format!("Agent {n}: the weather in Paris?")},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_dataset",
                "type": "function", "function": {"name": "get_weather",
                "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_dataset", "content": RESULT},
            {"role": "assistant", "content": "DATASET ANSWER"},
            {"role": "user", "content": format!("Agent {n}: and tomorrow?")},
        ]})
    };
    Value::Array((0..4).map(entry).collect())
}

#[test]
fn agent_loops_match_the_servers_record() {
    timing::timed("tool calls", measure);
}

fn measure() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.json");
    std::fs::write(&file, dataset().to_string()).unwrap();
    let sim = SimServer::start(
        SimConfig {
            random_ttft_ms: Some(MsRange {
                min: 20.0,
                max: 120.0,
            }),
            random_itl_ms: Some(MsRange {
                min: 2.0,
                max: 12.0,
            }),
            record: true,
            seed: 5,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.dataset = None;
    cfg.dataset_file = Some(file);
    cfg.prompt_options = None;
    cfg.decode_options = Some(TokenizeOptions::fixed(OUTPUT_TOKENS));
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    // 120 requests, beside 60 of the floor's over the same 6 s: a p99 that is not just the
    // one slowest request of a short run against the floor's.
    cfg.duration = Duration::from_secs(6);
    cfg.save_requests = true;
    let floor = timing::start_floor(sim.addr(), 60, OUTPUT_TOKENS as u32);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let floor = floor.join().expect("the floor client ends");
    let records = sim.records();
    sim.stop();

    let by_id = common::by_request_id(&records);
    let lines = common::requests_log(&summary.results_path);
    let mut ttft_errors = Vec::new();
    let (mut calls, mut answers_after_results, mut later_user_turns) = (0u64, 0, 0);
    for l in &lines {
        let server = by_id[l["id"].as_str().unwrap()];
        assert_eq!(l["outcome"], "ok", "{l}");
        assert_eq!(server.status, 200);
        assert_eq!(server.extras.tools, 1, "every turn offers the tools");
        assert_eq!(l["tool_definitions"], 1);
        assert_eq!(l["output_tokens"].as_u64(), Some(OUTPUT_TOKENS));
        let server_first = f64::from(server.token_offsets_us[0]) / 1e3;
        ttft_errors.push(l["ttft_ms"].as_f64().unwrap() - server_first);
        let last_role = server.messages.last().unwrap().0.as_str();
        match &server.tool_call {
            Some(call) => {
                assert_eq!(last_role, "user", "a call answers a user turn");
                assert_eq!(l["tool_calls"], 1);
                assert_eq!(l["finish_reason"], "tool_calls");
                let args: Value = serde_json::from_str(&call.arguments).expect("JSON arguments");
                assert!(args["query"].is_string());
                // The first chunk is the call: both times are the same.
                let ttftc = l["time_to_first_tool_call_ms"].as_f64().unwrap();
                assert_eq!(ttftc, l["ttft_ms"].as_f64().unwrap());
                calls += 1;
            }
            None => {
                assert_eq!(last_role, "tool", "text answers a tool result");
                assert_eq!(l["tool_calls"], 0);
                assert!(l["time_to_first_tool_call_ms"].is_null());
                answers_after_results += 1;
            }
        }
        if server.messages.iter().filter(|(r, _)| r == "user").count() == 2 {
            later_user_turns += 1;
        }
    }
    assert!(calls > 0 && answers_after_results > 0 && later_user_turns > 0);
    let floor_errors = timing::floor_errors(&floor, &by_id);
    // Every call's time to first tool-call token is its TTFT (asserted above), so the TTFT
    // errors of all requests judge both; the calls alone are too few for a p99 of their own.
    timing::within_floor("TTFT error", ttft_errors, &floor_errors)?;
    check_loops(&records);

    let doc = common::validated(&summary.results_path);
    let step = &doc["results"][0];
    let figures = &step["images_and_tools"];
    assert_eq!(figures["requests_with_tools"], step["successful_requests"]);
    assert_eq!(figures["tool_calls"], calls);
    assert_eq!(figures["requests_with_tool_calls"], calls);
    assert_eq!(figures["time_to_first_tool_call_ms"]["count"], calls);
    assert_eq!(figures["images"], 0);
    Ok(())
}

/// Every turn that sends tool results: the assistant turn before them carries the id of the
/// very call the server streamed to the previous turn, the `tool` message answers it by that id
/// with the dataset's result, and it was sent after that answer ended.
fn check_loops(records: &[SimRecord]) {
    let by_call: HashMap<&str, &SimRecord> = records
        .iter()
        .filter_map(|r| Some((r.tool_call.as_ref()?.id.as_str(), r)))
        .collect();
    let mut checked = 0;
    for r in records
        .iter()
        .filter(|r| !r.extras.tool_result_ids.is_empty())
    {
        // Every result answers the call before it, also in the history of later turns.
        assert_eq!(r.extras.tool_result_ids, r.extras.assistant_tool_call_ids);
        if r.messages.last().is_some_and(|(role, _)| role != "tool") {
            continue;
        }
        let id = r.extras.tool_result_ids.last().unwrap();
        let call = by_call
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} is no call the server made"));
        assert!(id.starts_with("call_") && id != "call_dataset");
        let n = r.messages.len();
        assert_eq!(r.messages[n - 1], ("tool".to_string(), RESULT.to_string()));
        assert_eq!(r.messages[n - 2].0, "assistant");
        // The calling request's messages are this one's, up to the call and its result.
        assert_eq!(call.messages.as_slice(), &r.messages[..n - 2]);
        let call_end = call.received_at_unix_nanos + u128::from(call.end_us.unwrap()) * 1000;
        assert!(r.received_at_unix_nanos >= call_end);
        checked += 1;
    }
    assert!(checked > 0, "some tool results were sent back");
}
