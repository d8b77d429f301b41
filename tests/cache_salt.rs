//! `--cache-salt`, against the simulated server's prefix cache and record: back-to-back runs
//! with the same `--seed` are not served from each other's cache (each run draws a fresh salt,
//! recorded in its results), their prompts differing only in their first tokens; `none` sends
//! the seed's prompts as before (and the second run is served from the cache); a run given the
//! salt another run recorded sends that run's prompts again.

mod common;

use std::time::Duration;

use inference_benchmarker::config::cache_salt::CacheSalt;
use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::salt::SALT_TOKENS;
use inference_benchmarker::workload::tokenizer;

const PROMPT_TOKENS: u64 = 60;

/// One run's prompts (user text, in sending order), its share of prompt tokens the server
/// served from its prefix cache, and its recorded `config.cache_salt`.
struct Run {
    prompts: Vec<String>,
    cached: f64,
    salt: serde_json::Value,
}

fn run(sim: &SimServer, salt: CacheSalt, id: &str) -> Run {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.run_id = id.into();
    cfg.seed = 5;
    cfg.cache_salt = salt;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    // One user: the prompts go out in the workload's order.
    cfg.max_vus = 1;
    cfg.duration = Duration::from_millis(1500);
    cfg.prompt_options = Some(format!("num_tokens={PROMPT_TOKENS}").parse().unwrap());
    cfg.decode_options = Some("num_tokens=2".parse().unwrap());
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let step = &summary.steps[0];
    let doc = common::validated(&summary.results_path);
    let mut records: Vec<_> = sim
        .records()
        .into_iter()
        .filter(|r| {
            r.request_id
                .as_deref()
                .is_some_and(|i| i.starts_with(&format!("{id}-")) && !i.contains("preflight"))
        })
        .collect();
    records.sort_by_key(|r| r.received_at_unix_nanos);
    Run {
        prompts: records
            .iter()
            .map(|r| r.messages.last().expect("a user message").1.clone())
            .collect(),
        cached: step
            .client_prefix_cache_hit_rate
            .expect("the sim reports cached tokens"),
        salt: doc["config"]["cache_salt"].clone(),
    }
}

#[test]
fn reruns_are_salted_apart_unless_told_otherwise() {
    let tok = tokenizer::load(None).unwrap().tokenizer;
    let sim = SimServer::start(
        // The engine's timing (fixed or random timings bypass its prefix cache).
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        Some(tok.clone()),
    )
    .unwrap();
    let ids = |text: &str| tok.encode_fast(text, false).unwrap().get_ids().to_vec();
    let head = SALT_TOKENS as usize;

    // Default: a fresh salt per run. The second run is no more cached than the first.
    let first = run(&sim, CacheSalt::Fresh, "first");
    let second = run(&sim, CacheSalt::Fresh, "second");
    let n = first.prompts.len().min(second.prompts.len());
    assert!(n >= 5, "enough requests to compare: {n}");
    eprintln!(
        "cached share: first {:.3}, second {:.3} ({n} prompts)",
        first.cached, second.cached
    );
    assert!(first.cached < 0.05, "unique prompts: {}", first.cached);
    assert!(
        (second.cached - first.cached).abs() < 0.05,
        "the second run is served from the first one's cache: {} vs {}",
        second.cached,
        first.cached
    );
    let salt = first.salt.as_str().expect("the run's salt is recorded");
    assert_eq!(salt.len(), 16, "{salt}");
    assert_ne!(first.salt, second.salt);
    for (a, b) in first.prompts.iter().zip(&second.prompts).take(n) {
        let (a, b) = (ids(a), ids(b));
        assert_eq!(
            (a.len(), b.len()),
            (PROMPT_TOKENS as usize, PROMPT_TOKENS as usize)
        );
        assert_ne!(a[..head], b[..head], "the first tokens differ");
        assert_eq!(a[head..], b[head..], "the rest is the seed's");
    }

    // `none`: the seed's prompts alone, which the second run finds in the server's cache.
    let plain = run(&sim, CacheSalt::Off, "plain");
    let again = run(&sim, CacheSalt::Off, "again");
    let m = plain.prompts.len().min(again.prompts.len());
    assert_eq!(plain.prompts[..m], again.prompts[..m]);
    assert!(plain.salt.is_null());
    assert!(
        again.cached > 0.5,
        "served from the cache: {}",
        again.cached
    );
    for p in &plain.prompts {
        assert_eq!(ids(p).len(), PROMPT_TOKENS as usize);
    }

    // The first run's recorded salt, given as a fixed text: its prompts again.
    let replay = run(&sim, CacheSalt::Text(salt.to_string()), "replay");
    let k = replay.prompts.len().min(first.prompts.len());
    assert_eq!(replay.prompts[..k], first.prompts[..k]);
    assert_eq!(replay.salt, first.salt);
    assert!(replay.cached > 0.5, "a shared cache: {}", replay.cached);
    sim.stop();
}
