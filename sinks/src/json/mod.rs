//! The JSON sink: the results document (the original tool's schema plus ours),
//! its JSON Schema, and the optional per-request JSON Lines log.

pub mod merge;
pub mod report;
pub mod requests_log;
pub mod results;

pub use report::{
    results_file_name, sanitize_label, write_atomically, MergedInput, ResultsDocument, RunStatus,
    SystemInfo, WarmupSummary,
};
pub use requests_log::{requests_log_path, RequestLogLine, RequestsLog};
pub use results::{OutputTokens, StepConfig, StepHistograms, StepResult};

/// JSON Schema (draft 2020-12) of the results document. Tests validate real
/// documents against it.
pub const RESULTS_SCHEMA: &str = include_str!("results.schema.json");

/// A results `config` with the original tool's keys, for the crate's tests (`extra` adds ours).
#[cfg(test)]
pub(crate) fn example_config(extra: serde_json::Value) -> serde_json::Value {
    let mut config = serde_json::json!({
        "max_vus": 16, "duration_secs": 30, "benchmark_kind": "Rate", "warmup_duration_secs": 0,
        "rates": [1.5, 3.0], "num_rates": 10,
        "prompt_options": {"num_tokens": 100, "min_tokens": 1, "max_tokens": 200, "variance": 0},
        "decode_options": null, "tokenizer": "builtin", "model_name": "m", "profile": null,
        "meta": {"engine": "vllm"}, "run_id": "run-42"
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::StepAggregator;
    use crate::event::{Outcome, RequestFinished, StepInfo, StepKind, StepWindow, TokenSource};
    use serde_json::Value;

    const MS: u64 = 1_000_000;

    fn request(id: &str, at: u64, outcome: Outcome) -> RequestFinished {
        RequestFinished {
            id: id.into(),
            step: 1,
            scheduled_at: at,
            sent_at: at + 2 * MS,
            first_token_at: outcome.is_ok().then_some(at + 80 * MS),
            end_at: at + 300 * MS,
            chunk_offsets_us: if outcome.is_ok() {
                vec![78_000, 120_000, 200_000, 298_000]
            } else {
                vec![]
            },
            prompt_tokens: 100,
            requested_output_tokens: Some(4),
            output_tokens: if outcome.is_ok() { 4 } else { 0 },
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: Some(100),
            server_completion_tokens: Some(4),
            server_cached_tokens: Some(0),
            outcome,
            http_status: Some(if outcome.is_ok() { 200 } else { 500 }),
            error: (!outcome.is_ok()).then(|| "internal".into()),
            finish_reason: Some("length".into()),
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn step(index: u32, kind: StepKind, rate: Option<f64>) -> StepInfo {
        StepInfo {
            index,
            id: match rate {
                Some(r) => format!("constant@{r}req/s"),
                None => "throughput".into(),
            },
            kind,
            max_vus: 16,
            rate,
            duration_secs: 30.0,
        }
    }

    fn document() -> Value {
        let mut doc = ResultsDocument::new(
            example_config(serde_json::json!({"api_key": null})),
            "run-42".into(),
            "0.1.0".into(),
            1_700_000_000_123_456_789,
            SystemInfo::collect(),
        );
        for (index, kind, rate) in [
            (1, StepKind::Throughput, None),
            (2, StepKind::Rate, Some(1.5)),
        ] {
            let mut agg = StepAggregator::new(step(index, kind, rate));
            for i in 0..20u64 {
                let outcome = if i % 7 == 3 {
                    Outcome::Http5xx
                } else {
                    Outcome::Ok
                };
                agg.record(&request(&format!("r{i}"), i * 50 * MS, outcome));
            }
            let window = StepWindow {
                start: 0,
                send_end: 1_000 * MS,
                end: 1_300 * MS,
            };
            let ended = (index == 2).then(|| "saturated".to_string());
            doc.results.push(agg.finish(window, ended));
        }
        doc.warmup = WarmupSummary {
            requests: 3,
            successful: 3,
        };
        doc.status = RunStatus::Completed;
        serde_json::to_value(&doc).unwrap()
    }

    fn errors(instance: &Value) -> Vec<String> {
        let schema: Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        validator
            .iter_errors(instance)
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_real_document_validates() {
        let doc = document();
        assert_eq!(errors(&doc), Vec::<String>::new());
        let step = &doc["results"][1];
        assert_eq!(step["config"]["duration_secs"], 30);
        assert_eq!(step["config"]["rate"], 1.5);
        assert_eq!(doc["results"][0]["config"]["rate"], Value::Null);
        assert_eq!(doc["start_time"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn missing_required_key_fails() {
        let mut doc = document();
        doc["results"][0]
            .as_object_mut()
            .unwrap()
            .remove("time_to_first_token_ms");
        assert!(!errors(&doc).is_empty());

        let mut doc = document();
        doc.as_object_mut().unwrap().remove("status");
        assert!(!errors(&doc).is_empty());
    }

    #[test]
    fn unknown_keys_and_wrong_types_fail() {
        let mut doc = document();
        doc["results"][0]["surprise"] = Value::from(1);
        assert!(!errors(&doc).is_empty());

        let mut doc = document();
        doc["results"][0]["errors"]["ok"] = Value::from(3);
        assert!(!errors(&doc).is_empty());

        let mut doc = document();
        doc["results"][0]["e2e_latency_ms"]["p50"] = Value::from("fast");
        assert!(!errors(&doc).is_empty());
    }

    /// Whether `schema` (following `$ref`s into `$defs`) admits an array anywhere.
    fn admits_array(schema: &Value, defs: &Value) -> bool {
        match schema {
            Value::Object(m) => {
                let typed = |t: &Value| {
                    t == "array" || t.as_array().is_some_and(|a| a.contains(&"array".into()))
                };
                if m.get("type").is_some_and(typed) {
                    return true;
                }
                if let Some(name) = m
                    .get("$ref")
                    .and_then(|r| r.as_str()?.strip_prefix("#/$defs/"))
                {
                    return admits_array(&defs[name], defs);
                }
                m.values().any(|v| admits_array(v, defs))
            }
            Value::Array(items) => items.iter().any(|v| admits_array(v, defs)),
            _ => false,
        }
    }

    #[test]
    fn no_list_inside_a_step_entry() {
        // The original tool's dashboard makes each step entry a one-row pandas frame: a list
        // in it fails.
        let schema: Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
        let defs = &schema["$defs"];
        assert!(!admits_array(&defs["step_result"], defs));
        assert!(
            admits_array(&schema["properties"]["system"], defs),
            "the check finds lists"
        );
    }

    #[test]
    fn document_round_trips_through_serde() {
        let doc = document();
        let back: ResultsDocument = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), doc);
    }
}
