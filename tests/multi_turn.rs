//! Multi-turn chat, proven from what the server received: turn k+1 carries turn k's exact
//! streamed answer as an `assistant` message, every earlier user turn, and the system prompt as
//! `system`; each turn is sent after the previous answer ended.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimRecord, SimServer};
use inference_benchmarker::workload::options::TokenizeOptions;
use inference_benchmarker::workload::tokenizer;

const SYSTEM: &str = "You are a terse assistant.";

fn dataset() -> serde_json::Value {
    // ShareGPT shape, with the dataset's own answers (never sent: the model's replace them).
    let conv = |n: usize| {
        serde_json::json!({"id": n, "conversations": [
            {"from": "system", "value": SYSTEM},
            {"from": "human", "value": format!("Conversation {n}, first question?")},
            {"from": "gpt", "value": "DATASET ANSWER ONE"},
            {"from": "human", "value": format!("Conversation {n}, second question?")},
            {"from": "gpt", "value": "DATASET ANSWER TWO"},
            {"from": "human", "value": format!("Conversation {n}, third question?")},
        ]})
    };
    serde_json::Value::Array((0..4).map(conv).collect())
}

fn msg(role: &str, content: &str) -> (String, String) {
    (role.to_string(), content.to_string())
}

/// What the server received in a run over the multi-turn dataset.
fn run(kind: BenchmarkKind) -> Vec<SimRecord> {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("chat.json");
    std::fs::write(&file, dataset().to_string()).unwrap();
    let sim = SimServer::start(
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        Some(tokenizer::load(None).unwrap().tokenizer),
    )
    .unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.dataset = None;
    cfg.dataset_file = Some(file);
    cfg.prompt_options = None;
    cfg.decode_options = Some(TokenizeOptions::fixed(12));
    cfg.benchmark_kind = kind;
    cfg.rates = Some(vec![20.0]);
    cfg.max_vus = 2;
    cfg.duration = Duration::from_secs(2);
    inference_benchmarker::run(cfg).expect("the run completes");
    let records: Vec<SimRecord> = sim
        .records()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    sim.stop();
    records
}

/// Closed loop: each virtual user walks a conversation to its end.
#[test]
fn later_turns_carry_the_streamed_answers() {
    check(&run(BenchmarkKind::Throughput));
}

/// Open loop: each arrival sends the next ready turn of a conversation, or starts one.
#[test]
fn open_loop_arrivals_continue_conversations() {
    check(&run(BenchmarkKind::Rate));
}

/// The proof, from the server's records (module docs).
fn check(records: &[SimRecord]) {
    // Every request's messages, to find each turn's predecessor (a conversation is walked
    // again once the pool wraps around, with other answers).
    let mut by_messages: HashMap<&[(String, String)], Vec<&SimRecord>> = HashMap::new();
    for r in records {
        by_messages
            .entry(r.messages.as_slice())
            .or_default()
            .push(r);
    }
    let mut checked = [0usize; 4];
    for r in records {
        let m = &r.messages;
        assert_eq!(m[0], msg("system", SYSTEM), "{m:?}");
        let users = m.iter().filter(|(role, _)| role == "user").count();
        assert!((1..=3).contains(&users), "{m:?}");
        assert!(
            !m.iter().any(|(_, c)| c.starts_with("DATASET ANSWER")),
            "the dataset's answers are never sent: {m:?}"
        );
        assert_eq!(m.last().unwrap().0, "user");
        if users == 1 {
            assert_eq!(m.len(), 2);
            checked[1] += 1;
            continue;
        }
        // ..., user k, assistant k, user k+1: the predecessor is the request without the last two.
        let answer = &m[m.len() - 2];
        assert_eq!(answer.0, "assistant", "{m:?}");
        let earlier = by_messages
            .get(&m[..m.len() - 2])
            .unwrap_or_else(|| panic!("no request sent the earlier turns of {m:?}"));
        // The exact streamed answer of a request with the earlier turns, which ended before
        // this one was received.
        let prev = earlier
            .iter()
            .find(|p| p.output_text == answer.1)
            .unwrap_or_else(|| {
                panic!(
                    "{:?} is no streamed answer to {:?}",
                    answer.1,
                    &m[..m.len() - 2]
                )
            });
        assert_eq!(prev.completion_tokens, 12);
        let prev_end = prev.received_at_unix_nanos + u128::from(prev.end_us.unwrap()) * 1000;
        assert!(r.received_at_unix_nanos >= prev_end);
        let n = m[1].1.split(',').next().unwrap().to_string();
        assert!(m
            .iter()
            .filter(|(role, _)| role == "user")
            .all(|(_, c)| c.starts_with(&n)));
        checked[users] += 1;
    }
    assert!(
        checked[1] > 0 && checked[2] > 0 && checked[3] > 0,
        "first, second and third turns were all sent: {checked:?}"
    );
}
