//! What the results file says about the run before any step: its name and its `config` object.
//! Pure logic.
//!
//! `config` carries the original tool's keys with its names, types and values, because its
//! dashboard and its users' scripts read them (`meta`, `model_name`, `run_id`, ...); where one
//! of our settings has the same name and another meaning, the original's wins and ours goes
//! under another key. Ours sit beside them.

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::{BenchmarkKind, RunConfig};

/// What the run resolved before it started, for the results' configuration.
pub struct Resolved<'a> {
    /// The model the requests name (given, or the server's first).
    pub model: &'a str,
    /// The tokenizer as the workload names it (`builtin` for the built-in one).
    pub tokenizer: &'a str,
    /// Whether pooled connections are reused (see `coordinator::keep_alive`).
    pub keep_alive: bool,
    /// Where the prompts came from ("synthetic", a dataset path or a trace path).
    pub source: &'a str,
    /// `Workload::describe`.
    pub workload: Value,
}

/// The results' `config`: our settings as given, what was resolved, and the original tool's
/// keys over them.
pub fn config(cfg: &RunConfig, resolved: Resolved<'_>) -> Value {
    let mut value = serde_json::to_value(cfg).unwrap_or_default();
    let Some(obj) = value.as_object_mut() else {
        return value;
    };
    // The original tool names it `meta` (below); its dashboard reads it there.
    obj.remove("extra_meta");
    obj.insert("keep_alive".into(), resolved.keep_alive.into());
    obj.insert("dataset_source".into(), resolved.source.into());
    obj.insert("workload".into(), resolved.workload.clone());
    obj.extend(original_keys(cfg, resolved.model, resolved.tokenizer));
    value
}

/// The keys of the original tool's `BenchmarkConfig`, as it wrote them.
pub fn original_keys(cfg: &RunConfig, model: &str, tokenizer: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("max_vus", cfg.max_vus.into());
    put("duration_secs", whole_seconds(cfg.duration).into());
    put("benchmark_kind", original_kind(cfg.benchmark_kind).into());
    put("warmup_duration_secs", whole_seconds(cfg.warmup).into());
    put(
        "rates",
        serde_json::to_value(&cfg.rates).unwrap_or_default(),
    );
    put("num_rates", cfg.num_rates.into());
    put(
        "prompt_options",
        serde_json::to_value(&cfg.prompt_options).unwrap_or_default(),
    );
    put(
        "decode_options",
        serde_json::to_value(&cfg.decode_options).unwrap_or_default(),
    );
    put("tokenizer", tokenizer.into());
    put("model_name", model.into());
    put(
        "profile",
        serde_json::to_value(&cfg.profile).unwrap_or_default(),
    );
    // `Option<HashMap<String, String>>` there: null when not given.
    let meta = (!cfg.extra_meta.is_empty())
        .then(|| serde_json::to_value(&cfg.extra_meta).unwrap_or_default());
    put("meta", meta.unwrap_or(Value::Null));
    put("run_id", cfg.run_id.clone().into());
    m
}

/// The original tool's spelling of the benchmark kind (its enum's variant names).
pub fn original_kind(kind: BenchmarkKind) -> &'static str {
    match kind {
        BenchmarkKind::Throughput => "Throughput",
        BenchmarkKind::Rate => "Rate",
        BenchmarkKind::Sweep => "Sweep",
    }
}

/// Whole seconds, rounded to the nearest, as the original tool serialized its durations.
fn whole_seconds(d: std::time::Duration) -> u64 {
    sinks::json::StepConfig::whole_seconds(d.as_secs_f64())
}

/// What names the results file (`<label>_<time>.json`, sanitized by the recorder): the run id
/// when it was given; a hub tokenizer's id, as the original tool named its files; otherwise
/// (a local tokenizer file or the built-in one) the model's name, short — never a local path
/// with its slashes escaped. A shard adds its `shard-I-of-N`.
pub fn file_label(cfg: &RunConfig, model: &str) -> String {
    let base = if cfg.run_id_names_file {
        cfg.run_id.clone()
    } else {
        match cfg.tokenizer_name.as_deref() {
            Some(t) if !Path::new(t).exists() => t.to_string(),
            local => short_model_name(model)
                .or_else(|| local.and_then(tokenizer_folder))
                .unwrap_or_default(),
        }
    };
    match cfg.shard {
        Some(shard) => format!("{base}_{}", shard.label()),
        None => base,
    }
}

/// A model name fit for a file name: a hub-style `org/name` stays whole (as the original tool's
/// names), a served path (`vllm serve /models/llama`) gives its last part.
fn short_model_name(model: &str) -> Option<String> {
    let model = model.trim();
    let path_like = model.starts_with('/') || model.starts_with('.') || model.contains('\\');
    let name = if path_like {
        model
            .rsplit(['/', '\\'])
            .find(|p| !p.is_empty() && *p != ".")?
    } else {
        model
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// The folder a local tokenizer file is in (or the folder given), by its name.
fn tokenizer_folder(path: &str) -> Option<String> {
    let p = Path::new(path);
    let dir = if p.is_dir() { p } else { p.parent()? };
    let dir = dir.canonicalize().ok()?;
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::options::TokenizeOptions;
    use std::time::Duration;

    fn resolved<'a>() -> Resolved<'a> {
        Resolved {
            model: "org/model",
            tokenizer: "builtin",
            keep_alive: true,
            source: "synthetic",
            workload: serde_json::json!({"prompts": 3}),
        }
    }

    #[test]
    fn original_keys_have_the_original_names_types_and_values() {
        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        cfg.duration = Duration::from_millis(90_600);
        cfg.warmup = Duration::from_secs(30);
        cfg.extra_meta = [("engine", "vllm"), ("tp", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cfg.decode_options = Some(
            "num_tokens=800,min_tokens=50,max_tokens=800,variance=100"
                .parse()
                .unwrap(),
        );
        let c = config(&cfg, resolved());
        assert_eq!(c["duration_secs"], 91);
        assert_eq!(c["warmup_duration_secs"], 30);
        assert_eq!(c["benchmark_kind"], "Sweep");
        assert_eq!(c["meta"], serde_json::json!({"engine": "vllm", "tp": "2"}));
        assert!(c.get("extra_meta").is_none(), "moved to meta");
        assert_eq!(c["model_name"], "org/model");
        assert_eq!(c["tokenizer"], "builtin");
        assert_eq!(c["run_id"], "run");
        assert_eq!(c["rates"], Value::Null);
        assert_eq!(c["prompt_options"], Value::Null);
        assert_eq!(
            c["decode_options"],
            serde_json::json!({"num_tokens": 800, "min_tokens": 50, "max_tokens": 800, "variance": 100})
        );
        // Ours beside them.
        assert_eq!(c["keep_alive"], true);
        assert_eq!(c["workload"]["prompts"], 3);
        assert_eq!(c["url"], "http://127.0.0.1:1");
        let schema: Value = serde_json::from_str(sinks::json::RESULTS_SCHEMA).unwrap();
        let config_schema = &schema["properties"]["config"];
        for key in config_schema["required"].as_array().unwrap() {
            assert!(c.get(key.as_str().unwrap()).is_some(), "{key}");
        }

        cfg.extra_meta.clear();
        cfg.benchmark_kind = BenchmarkKind::Rate;
        cfg.prompt_options = Some(TokenizeOptions::fixed(7));
        let c = config(&cfg, resolved());
        assert_eq!(c["meta"], Value::Null);
        assert_eq!(c["benchmark_kind"], "Rate");
        assert_eq!(c["prompt_options"]["num_tokens"], 7);
    }

    #[test]
    fn file_labels_are_short_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let tok_dir = dir.path().join("llama3-tok");
        std::fs::create_dir(&tok_dir).unwrap();
        let tok_file = tok_dir.join("llama3-tokenizer.json");
        std::fs::write(&tok_file, "{}").unwrap();

        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        // The built-in tokenizer, or a local file: the model's name.
        assert_eq!(
            file_label(&cfg, "meta-llama/Llama-3.1-8B"),
            "meta-llama/Llama-3.1-8B"
        );
        cfg.tokenizer_name = Some(tok_file.display().to_string());
        assert_eq!(file_label(&cfg, "/models/Llama-3.1-8B/"), "Llama-3.1-8B");
        assert_eq!(file_label(&cfg, "./llama"), "llama");
        // No model name to go by: the tokenizer's folder.
        assert_eq!(file_label(&cfg, ""), "llama3-tok");
        cfg.tokenizer_name = Some(tok_dir.display().to_string());
        assert_eq!(file_label(&cfg, " "), "llama3-tok");
        // A hub tokenizer: its id, as the original tool named its files.
        cfg.tokenizer_name = Some("org/tok".into());
        assert_eq!(file_label(&cfg, "served"), "org/tok");
        // A given run id names the file; a shard adds its part.
        cfg.run_id = "nightly 7".into();
        cfg.run_id_names_file = true;
        cfg.shard = crate::config::shard::Shard::new(3, 1).unwrap();
        assert_eq!(file_label(&cfg, "served"), "nightly 7_shard-1-of-3");
        assert_eq!(
            sinks::json::results_file_name(&file_label(&cfg, "served"), 0),
            "nightly_7_shard-1-of-3_1970-01-01-00-00-00.json"
        );
    }
}
