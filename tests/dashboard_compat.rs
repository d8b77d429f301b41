//! The original tool's dashboard reads our results: `tests/dashboard_compat/parse.py` does to a
//! folder what its `parse_results.py` and `app.py` (v1.1.0) do — pandas `json_normalize` of each
//! step into a one-row frame, `config.meta` / `model_name` / `run_id`, `error_rate`,
//! `prompt_tokens`, `decoded_tokens`, the rate steps' rows and summary table — on a sweep with
//! injected failures and on a file merged from 3 shards, beside a file in the original's shape.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inference_benchmarker::config::shard::Shard;
use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use serde_json::Value;

const PROMPT_TOKENS: f64 = 50.0;
const OUTPUT_TOKENS: f64 = 16.0;
const META: &str = "engine=vllm,tp=2,device=H100,version=0.6.3";

/// The virtualenv's python with pandas (`tests/run.sh` makes it), or `None` after
/// `common::missing` said so.
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("IB_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("py-venv"));
    let python = venv.join("bin/python");
    let has_pandas = Command::new(&python)
        .args(["-c", "import pandas"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_pandas {
        common::missing(
            "dashboard_compat",
            &format!("no python with pandas in {}", venv.display()),
        );
        return None;
    }
    Some(python)
}

/// What the dashboard made of the folder.
fn dashboard(python: &Path, folder: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard_compat/parse.py");
    let out = Command::new(python)
        .arg(script)
        .arg(folder)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the dashboard's parsing failed on our results:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parse.py prints JSON")
}

/// A simulated server failing a share of requests: before any token, and mid-stream.
fn failing_server() -> SimServer {
    SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(2.0),
            faults: vec!["status=500@0.15".into(), "drop-mid-stream=3@0.1".into()],
            ..SimConfig::default()
        },
        None,
    )
    .expect("the simulated server starts")
}

fn meta_config(
    sim: &SimServer,
    out: &Path,
    run_id: &str,
) -> inference_benchmarker::config::RunConfig {
    let mut cfg = common::config(&sim.url(), out);
    cfg.run_id = run_id.into();
    cfg.extra_meta = inference_benchmarker::cli::parse_key_values(META).unwrap();
    cfg.stop_when_saturated = false;
    cfg
}

/// A sweep (throughput step, then 2 rates) into `out`.
fn sweep(sim: &SimServer, out: &Path) -> Value {
    let mut cfg = meta_config(sim, out, "sweep run");
    cfg.benchmark_kind = BenchmarkKind::Sweep;
    cfg.num_rates = 2;
    let summary = inference_benchmarker::run(cfg).expect("the sweep completes");
    common::validated(&summary.results_path)
}

/// Three shards of a 2-rate run, merged into `out/merged.json`.
fn merged(sim: &SimServer, work: &Path, out: &Path) -> Value {
    let mut files = Vec::new();
    for index in 0..3 {
        let mut cfg = meta_config(sim, &work.join(format!("s{index}")), "sharded");
        cfg.benchmark_kind = BenchmarkKind::Rate;
        cfg.rates = Some(vec![15.0, 30.0]);
        Shard::new(3, index)
            .unwrap()
            .unwrap()
            .apply(&mut cfg)
            .unwrap();
        files.push(
            inference_benchmarker::run(cfg)
                .expect("a shard completes")
                .results_path,
        );
    }
    std::fs::create_dir_all(out).unwrap();
    let path = out.join("merged.json");
    inference_benchmarker::offline::merge::merge_files(&files, &path, false).expect("merge");
    common::validated(&path)
}

/// No list anywhere inside a step entry (pandas cannot make a one-row frame of one).
fn assert_no_list(v: &Value, at: &str) {
    match v {
        Value::Array(_) => panic!("a list at {at}: the dashboard cannot read it"),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| assert_no_list(v, &format!("{at}.{k}"))),
        _ => {}
    }
}

fn num(row: &Value, key: &str) -> f64 {
    row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {row}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The same value, numbers compared as numbers (pandas turns counts into floats when it
/// averages, and prints 10 significant decimals).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => close(x, y),
        _ => a == b,
    }
}

/// Every row of `doc` as the dashboard saw it: one per step, figures with the original's
/// meanings, the meta columns.
fn check_rows(dash: &Value, doc: &Value, file: &str) {
    let run_id = doc["config"]["run_id"].as_str().unwrap();
    let rows: Vec<&Value> = dash["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == run_id)
        .collect();
    let steps = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), steps.len(), "{file}: one row per step");
    let mut failures = 0.0;
    for (row, step) in rows.iter().zip(steps) {
        assert_no_list(step, &format!("{file} step {}", step["id"]));
        assert_eq!(row["id"], step["id"]);
        assert_eq!(row["model"], "simulated");
        for (k, v) in [
            ("engine", "vllm"),
            ("tp", "2"),
            ("device", "H100"),
            ("version", "0.6.3"),
        ] {
            assert_eq!(row[k], v, "{file}: meta column {k}");
        }
        // `rate` is the step's offered rate (null for the throughput step).
        assert!(same(&row["rate"], &step["config"]["rate"]), "{file}: rate");
        assert!(same(
            &row["duration_secs"],
            &step["config"]["duration_secs"]
        ));
        let (failed, ok) = (num(row, "failed_requests"), num(row, "successful_requests"));
        assert!(ok > 0.0, "{file} {}: no successful request", row["id"]);
        failures += failed;
        assert!(close(
            num(row, "error_rate"),
            failed / (failed + ok) * 100.0
        ));
        assert_eq!(failed + ok, num(row, "total_requests"));
        // The original's meanings: the successful requests' prompts and outputs, per success.
        assert!(close(num(row, "prompt_tokens"), PROMPT_TOKENS), "{row}");
        assert!(close(num(row, "decoded_tokens"), OUTPUT_TOKENS), "{row}");
        assert!(num(row, "prompt_tokens_sent") > num(row, "total_tokens_sent") || failed == 0.0);
    }
    assert!(
        failures > 0.0,
        "{file}: the injected faults failed requests"
    );
}

/// The app's view: the rate steps, plotted and summarized by (model, run_id, rate).
fn check_plotted(dash: &Value, doc: &Value, file: &str) {
    let run_id = doc["config"]["run_id"].as_str().unwrap();
    let rate_steps: Vec<&Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["executor_type"] == "ConstantArrivalRate")
        .collect();
    assert_eq!(rate_steps.len(), 2, "{file}: two rate steps");
    let plotted: Vec<&Value> = dash["plotted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == run_id)
        .collect();
    let summary: Vec<&Value> = dash["summary"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == run_id)
        .collect();
    assert_eq!(plotted.len(), 2, "{file}: the rate steps are plotted");
    assert_eq!(summary.len(), 2, "{file}: one summary row per rate");
    for ((p, s), step) in plotted.iter().zip(&summary).zip(&rate_steps) {
        assert!(same(&p["rate"], &step["config"]["rate"]), "{file}: rate");
        assert!(same(&s["rate"], &step["config"]["rate"]), "{file}: rate");
        for metric in [
            "time_to_first_token_ms",
            "inter_token_latency_ms",
            "e2e_latency_ms",
        ] {
            for p_ in ["p50", "p60", "p70", "p80", "p90", "p95", "p99", "avg"] {
                let key = format!("{metric}_{p_}");
                assert!(same(&p[&key], &step[metric][p_]), "{file}: {key}");
            }
        }
        let key = "token_throughput_secs";
        assert!(same(&p[key], &step[key]), "{file}: {key}");
        let key = "successful_requests";
        assert!(same(&s[key], &step[key]), "{file}: {key}");
    }
}

#[test]
fn the_original_dashboard_reads_a_sweep_with_failures_and_a_merged_file() {
    let Some(python) = python() else { return };
    let sim = failing_server();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("results");
    // As users lay it out: one folder per run, read together.
    let sweep_doc = sweep(&sim, &root.join("sweep"));
    let merged_doc = merged(&sim, &work.path().join("shards"), &root.join("merged"));
    let original = root.join("original");
    std::fs::create_dir_all(&original).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard_compat/original_v1.1.0.json"),
        original.join("original_v1.1.0.json"),
    )
    .unwrap();
    sim.stop();

    let dash = dashboard(&python, &root);
    // Every step's columns are distinct after the dashboard's renaming (pandas would refuse to
    // concatenate them otherwise) and each holds one kind of value (its parquet file needs it).
    let columns: Vec<&str> = dash["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = columns.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        columns.len(),
        "duplicate columns: {columns:?}"
    );
    assert_eq!(dash["mixed_columns"], serde_json::json!([]));

    check_rows(&dash, &sweep_doc, "sweep");
    check_plotted(&dash, &sweep_doc, "sweep");
    check_rows(&dash, &merged_doc, "merged");
    check_plotted(&dash, &merged_doc, "merged");
    assert_eq!(merged_doc["config"]["run_id"], "sharded");
    // The merged file's rows are the whole run's: the rates given, not a shard's third.
    let merged_rates: Vec<&Value> = merged_doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["config"]["rate"])
        .collect();
    assert_eq!(merged_rates, [&Value::from(15.0), &Value::from(30.0)]);

    // Every column the original tool's file gives the dashboard, ours give too, with values of
    // the same kind.
    let original_row = dash["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == "a1b2c3d" && r["id"] == "constant@1.00req/s")
        .expect("the original's file was read");
    for file in [&sweep_doc, &merged_doc] {
        let run_id = &file["config"]["run_id"];
        let ours = dash["plotted"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| &r["run_id"] == run_id)
            .unwrap();
        // (The original's row also shows our columns, empty: its own are the non-null ones.)
        for (key, value) in original_row
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
        {
            let kind = |v: &Value| match v {
                Value::Number(_) => "number",
                Value::String(_) => "string",
                other => panic!("{key}: unexpected {other}"),
            };
            assert_eq!(
                kind(&ours[key]),
                kind(value),
                "{key}: {} vs {value}",
                ours[key]
            );
        }
    }
}

#[test]
fn results_config_has_the_original_keys() {
    let sim = SimServer::start(SimConfig::default(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = meta_config(&sim, out.path(), "cfg");
    cfg.warmup = Duration::from_millis(1400);
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.duration = Duration::from_secs(1);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let doc = common::validated(&summary.results_path);
    let c = &doc["config"];
    assert_eq!(c["benchmark_kind"], "Throughput");
    assert_eq!(c["duration_secs"], 1);
    assert_eq!(c["warmup_duration_secs"], 1);
    assert_eq!(c["model_name"], "simulated");
    assert_eq!(c["run_id"], "cfg");
    assert_eq!(
        c["meta"],
        serde_json::json!({"engine": "vllm", "tp": "2", "device": "H100", "version": "0.6.3"})
    );
    assert_eq!(
        c["prompt_options"],
        serde_json::json!({"num_tokens": 50, "min_tokens": 50, "max_tokens": 50, "variance": 0})
    );
    assert_eq!(doc["results"][0]["config"]["duration_secs"], 1);
}
