//! Scale-out: the same open-loop workload as one process and as 3 shards (separate processes,
//! side by side, `--shards 3 --shard-index I`) against the simulated server with fixed timing.
//! `merge` makes one result whose counts are the shards' sums and whose percentiles are exactly
//! those of all the shards' requests together (to the histogram's 0.1 %), and which is the
//! same load as the single process applied.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::workload::tokenizer;
use serde_json::Value;

const RATE: &str = "30";

/// Starts one benchmark process writing into `out`, with `extra` flags.
fn start(url: &str, out: &Path, extra: &[&str]) -> Child {
    let mut cmd: Command = common::benchmark();
    cmd.args(["--url", url, "--run-id", "shardtest"])
        .args(["--benchmark-kind", "rate", "--rates", RATE])
        .args(["--duration", "4s", "--warmup", "0s", "--max-vus", "60"])
        .args([
            "--prompt-options",
            "num_tokens=50,min_tokens=50,max_tokens=50,variance=0",
        ])
        .args([
            "--decode-options",
            "num_tokens=20,min_tokens=4,max_tokens=40,variance=10",
        ])
        .args([
            "--save-requests",
            "--no-console",
            "--no-report",
            "--workers",
            "1",
        ])
        .arg("--output-dir")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().expect("the binary starts")
}

fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Every successful request's `field` (ms) from the requests logs in `dir`, sorted.
fn logged(dir: &Path, field: &str) -> Vec<f64> {
    let mut v: Vec<f64> = files(dir, ".requests.jsonl")
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|r| r["outcome"] == "ok")
        .filter_map(|r| r[field].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn step(doc: &Value) -> &Value {
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "one rate step");
    &results[0]
}

fn count(step: &Value, key: &str) -> u64 {
    step[key].as_u64().unwrap()
}

#[test]
fn three_shards_merge_into_the_whole_run() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(2.0),
            ..SimConfig::default()
        },
        Some(tokenizer::load(None).unwrap().tokenizer),
    )
    .unwrap();
    let url = sim.url();
    let single_dir = tempfile::tempdir().unwrap();
    let shard_dir = tempfile::tempdir().unwrap();

    let single = start(&url, single_dir.path(), &[]);
    finish(single, "the single process");
    // All shards write into one folder, as on a shared volume: their files must not clash.
    let shards: Vec<Child> = (0..3)
        .map(|i| {
            let index = i.to_string();
            start(
                &url,
                shard_dir.path(),
                &["--shards", "3", "--shard-index", &index],
            )
        })
        .collect();
    for (i, child) in shards.into_iter().enumerate() {
        finish(child, &format!("shard {i}"));
    }
    sim.stop();

    let shard_files = files(shard_dir.path(), ".json");
    assert_eq!(
        shard_files.len(),
        3,
        "one results file per shard: {shard_files:?}"
    );
    let merged_path = shard_dir.path().join("merged.out");
    let merge = common::binary()
        .arg("merge")
        .args(&shard_files)
        .arg("-o")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let merged_doc = common::validated(&merged_path);
    let merged = step(&merged_doc);
    let parts: Vec<Value> = shard_files.iter().map(|p| common::validated(p)).collect();
    let single_doc = common::validated(&common::results_file(single_dir.path()));
    let whole = step(&single_doc);

    // Each shard ran a third of the rate with its own seed.
    for (i, doc) in parts.iter().enumerate() {
        assert_eq!(doc["config"]["shard"]["index"], i as u64);
        assert_eq!(step(doc)["offered_rate"], 10.0);
    }
    assert_eq!(merged["offered_rate"], 30.0);
    assert_eq!(merged["shards"], "shard 0, shard 1, shard 2");

    // Counts are the shards' sums, and the same load as the single process applied.
    for key in [
        "total_requests",
        "successful_requests",
        "failed_requests",
        "total_tokens",
        "total_tokens_sent",
        "prompt_tokens_sent",
    ] {
        let sum: u64 = parts.iter().map(|d| count(step(d), key)).sum();
        assert_eq!(count(merged, key), sum, "{key}");
    }
    let (m, w) = (
        count(merged, "total_requests"),
        count(whole, "total_requests"),
    );
    assert!(
        m.abs_diff(w) <= 3,
        "merged {m} requests, single process {w}"
    );
    assert_eq!(count(merged, "failed_requests"), 0);

    // The merged step spans every shard's step, and its rates are its counts over that span
    // (not the shards' rates added up, each over its own window).
    assert!(merged["start_ms"].is_u64(), "{}", merged["start_ms"]);
    let duration = count(merged, "duration_ms");
    assert!(parts
        .iter()
        .all(|d| count(step(d), "duration_ms") <= duration));
    for (rate, n) in [
        ("request_rate", "successful_requests"),
        ("token_throughput_secs", "total_tokens"),
    ] {
        let want = count(merged, n) as f64 / (duration as f64 / 1e3);
        let got = merged[rate].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 1e-12,
            "{rate} {got}, {n} / duration {want}"
        );
    }

    // Request ids stay unique across the shards (they are the x-request-id the server logs).
    let mut ids: Vec<String> = files(shard_dir.path(), ".requests.jsonl")
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "request ids are unique across shards");

    // Percentiles are those of all the shards' requests together, within HDR's 0.1 %.
    for (summary, field) in [
        ("time_to_first_token_ms", "ttft_ms"),
        ("e2e_latency_ms", "e2e_ms"),
        ("inter_token_latency_ms", "itl_ms"),
        ("queue_delay_ms", "queue_delay_ms"),
    ] {
        let truth = logged(shard_dir.path(), field);
        assert!(truth.len() > 50, "{field}: {} values", truth.len());
        for (q, key) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
            let want = common::percentile(&truth, q);
            let got = merged[summary][key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= want * 1e-3 + 1e-3,
                "{summary}.{key}: merged {got} ms, all requests {want} ms"
            );
        }
    }
    // Fixed timing: the sharded run saw what the single process saw.
    let ttft = |s: &Value| s["time_to_first_token_ms"]["p50"].as_f64().unwrap();
    assert!(
        (ttft(merged) - ttft(whole)).abs() < 5.0,
        "p50 TTFT merged {} ms, single {} ms",
        ttft(merged),
        ttft(whole)
    );

    // The merge refuses to write over one of its inputs.
    let clash = common::binary()
        .arg("merge")
        .args(&shard_files)
        .arg("-o")
        .arg(&shard_files[0])
        .output()
        .unwrap();
    assert_eq!(clash.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&clash.stderr).contains("one of the inputs"));

    // The same file twice would double its counts: refused, --force or not.
    let twice = common::binary()
        .arg("merge")
        .args([&shard_files[0], &shard_files[0]])
        .args(["--force", "-o"])
        .arg(shard_dir.path().join("twice.json"))
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("same results"));
}
