//! Shared helpers of the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod engine;
pub mod floor;
pub mod timing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inference_benchmarker::config::RunConfig;
use inference_benchmarker::sim::SimRecord;
use inference_benchmarker::workload::options::TokenizeOptions;

/// The command that sets up every real part the tests use (and then runs the suite).
pub const SETUP_COMMAND: &str = "tests/run.sh";

/// Where the setup caches what it builds or installs (the engine, virtualenvs): `$IB_CACHE`, or
/// `~/.cache/inference-benchmarker`. `tests/run.sh` resolves it the same way.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("IB_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/inference-benchmarker"),
    }
}

/// A real part the test needs is missing. The test fails naming the setup command, unless the
/// quick inner loop was asked for explicitly (`IB_QUICK=1`): then the skip is recorded in
/// `$IB_SKIP_LOG` (which `tests/run.sh` counts and prints at the end) and the caller returns.
pub fn missing(test: &str, what: &str) {
    if !std::env::var("IB_QUICK").is_ok_and(|v| v == "1") {
        panic!("{test}: {what}. Run `{SETUP_COMMAND}`: it sets up every real part the tests use.");
    }
    eprintln!("SKIPPED {test} (IB_QUICK=1): {what}");
    append_to_log("IB_SKIP_LOG", &format!("{test}: {what}"));
}

/// Appends a line to the file `$var` names, if it names one: `tests/run.sh` prints these logs at
/// the end of the suite, where cargo's captured output of passing tests is gone.
pub fn append_to_log(var: &str, line: &str) {
    if let Some(log) = std::env::var_os(var) {
        use std::io::Write;
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    }
}

/// A program on PATH (or in /usr/bin), or `None` after [`missing`] said so.
pub fn tool(test: &str, name: &str, from: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        missing(test, &format!("`{name}` is not installed ({from})"));
    }
    found
}

/// A short run against `url`, writing into `out`.
pub fn config(url: &str, out: &Path) -> RunConfig {
    let mut c = RunConfig::new(url);
    c.warmup = Duration::ZERO;
    c.duration = Duration::from_secs(2);
    c.max_vus = 16;
    c.output_dir = out.to_path_buf();
    // Synthetic prompts: without a dataset the original tool's default is fetched from the hub.
    c.dataset = Some("synthetic".into());
    c.prompt_options = Some(TokenizeOptions::fixed(50));
    c.decode_options = Some(TokenizeOptions::fixed(16));
    c.run_id = "t".into();
    c.workers = 2;
    c.request_timeout = Duration::from_secs(30);
    c.no_console = true;
    c
}

/// Reads a results file and validates it against the schema in the repository.
pub fn validated(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("results are JSON");
    let schema: serde_json::Value = serde_json::from_str(sinks::json::RESULTS_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not validate: {errors:#?}",
        path.display()
    );
    doc
}

/// The only results file in `dir`.
pub fn results_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one results file in {}: {files:?}",
        dir.display()
    );
    files.into_iter().next().unwrap()
}

/// The binary, with the environment variables of its flags cleared so the machine's
/// environment (e.g. a `URL` variable) cannot change a test.
pub fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inference-benchmarker"));
    for var in [
        "TOKENIZER_NAME",
        "MODEL_NAME",
        "MAX_VUS",
        "DURATION",
        "RATES",
        "NUM_RATES",
        "PROFILE",
        "BENCHMARK_KIND",
        "WARMUP",
        "URL",
        "API_KEY",
        "NO_CONSOLE",
        "PROMPT_OPTIONS",
        "DECODE_OPTIONS",
        "DATASET",
        "DATASET_FILE",
        "EXTRA_META",
        "RUN_ID",
        "IB_ENDPOINT",
    ] {
        c.env_remove(var);
    }
    c
}

/// The binary set up for a benchmark run on synthetic prompts (without `--dataset`, the
/// original tool's default dataset is fetched from the hub, which tests must not reach).
pub fn benchmark() -> Command {
    let mut c = binary();
    c.args(["--dataset", "synthetic"]);
    c
}

/// Exact percentile (nearest rank) of a sorted sample, as ground truth.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty());
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The requests log (`--save-requests`) beside a results file: one JSON value per request.
pub fn requests_log(results: &Path) -> Vec<serde_json::Value> {
    engine::read_lines(&sinks::json::requests_log_path(results))
}

/// The simulated server's records by request id (every request in these tests sends one).
pub fn by_request_id(records: &[SimRecord]) -> HashMap<&str, &SimRecord> {
    records
        .iter()
        .map(|r| (r.request_id.as_deref().expect("every request has an id"), r))
        .collect()
}
