//! A reasoning model and multi-token chunks on a real `SimServer`: the reasoning streamed first
//! in its delta field, counted toward max_tokens and in usage; chunks of N tokens; the record and
//! `/metrics` counting every token.

use serde_json::{json, Value};

use super::{fast_engine, post, request};
use crate::{SimConfig, SimServer};

fn chat(max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": "think"}], "max_tokens": max_tokens,
           "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}})
}

#[test]
fn reasoning_comes_first_in_chunks_and_every_token_is_counted() {
    let server = SimServer::start(
        SimConfig {
            reasoning_tokens: 5,
            reasoning_field: "reasoning".into(),
            tokens_per_chunk: 3,
            record: true,
            ..fast_engine()
        },
        None,
    )
    .unwrap();
    let addr = server.addr();
    let mut sent = 0;
    for max_tokens in [4, 11] {
        let resp = post(addr, "/v1/chat/completions", chat(max_tokens));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let events: Vec<Value> = resp
            .events()
            .iter()
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let deltas: Vec<&Value> = events
            .iter()
            .filter_map(|e| e["choices"].get(0).map(|c| &c["delta"]))
            .filter(|d| d.get("role").is_none())
            .collect();
        let words = |field: &str| -> usize {
            deltas
                .iter()
                .filter_map(|d| d[field].as_str())
                .map(|t| t.split_whitespace().count())
                .sum()
        };
        let reasoning = 5.min(max_tokens as usize);
        assert_eq!(words("reasoning"), reasoning, "{deltas:?}");
        assert_eq!(words("content"), max_tokens as usize - reasoning);
        assert!(deltas.iter().all(|d| d.get("reasoning_content").is_none()));
        assert_eq!(
            deltas.len(),
            (max_tokens as usize).div_ceil(3),
            "{deltas:?}"
        );
        let usage = &events.last().unwrap()["usage"];
        assert_eq!(usage["completion_tokens"], max_tokens);
        assert_eq!(
            usage["completion_tokens_details"]["reasoning_tokens"],
            reasoning
        );
        sent += u64::from(max_tokens);
    }
    // A request's header overrides the flag; a bad one is a 400.
    let header = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[("x-sim-reasoning-tokens", "0")],
        &chat(3).to_string(),
    );
    assert!(!header.body.contains("\"reasoning\""), "{}", header.body);
    let bad = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &[("x-sim-reasoning-tokens", "lots")],
        &chat(3).to_string(),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    sent += 3;

    let records = server.records();
    let ok: Vec<_> = records.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        ok.iter()
            .map(|r| (r.reasoning_tokens, r.chunk_tokens.clone()))
            .collect::<Vec<_>>(),
        vec![(4, vec![3, 1]), (5, vec![3, 3, 3, 2]), (0, vec![3])]
    );
    assert_eq!(server.stats().tokens_sent, sent);
    let metrics = request(addr, "GET", "/metrics", &[], "").body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("vllm:generation_tokens_total"))
        .unwrap();
    let total: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(total, sent as f64);
    server.stop();
}
