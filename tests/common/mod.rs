//! Shared helpers of the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inference_benchmarker::config::RunConfig;
use inference_benchmarker::workload::options::TokenizeOptions;

/// `../shared` beside the project: CI always has it, a fresh clone does not.
pub fn shared_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    p.is_dir().then_some(p)
}

/// The Llama-3 tokenizer fixture, or `None` after saying plainly why the test checks nothing.
pub fn llama3_tokenizer(test: &str) -> Option<String> {
    let p = shared_dir()?.join("fixtures/tokenizers/llama3-tokenizer.json");
    if p.is_file() {
        Some(p.to_string_lossy().into_owned())
    } else {
        skip(
            test,
            "../shared/fixtures/tokenizers/llama3-tokenizer.json is missing",
        );
        None
    }
}

pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why} (it is present in CI; a fresh clone does not have ../shared)");
}

/// A short run against `url`, writing into `out`.
pub fn config(url: &str, out: &Path) -> RunConfig {
    let mut c = RunConfig::new(url);
    c.warmup = Duration::ZERO;
    c.duration = Duration::from_secs(2);
    c.max_vus = 16;
    c.output_dir = out.to_path_buf();
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

/// Exact percentile (nearest rank) of a sorted sample, as ground truth.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty());
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
