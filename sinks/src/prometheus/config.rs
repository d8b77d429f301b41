//! What the Prometheus sink is asked to do, and the pure parts of it: constant labels and the
//! Pushgateway URL.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

/// Pushgateway job name of every push.
pub const PUSH_JOB: &str = "inference-benchmarker";

/// Label names our own metrics use, or that Prometheus gives a meaning: an `--extra-meta` key
/// that sanitizes to one of these is left out (it would clash or be renamed on scrape).
const RESERVED: [&str; 12] = [
    "run_id",
    "shard",
    "model",
    "profile",
    "benchmark_kind",
    "outcome",
    "step",
    "kind",
    "phase",
    "worker",
    "job",
    "instance",
];

#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    /// Serve `/metrics` here.
    pub listen: Option<SocketAddr>,
    /// Push to this Pushgateway (base URL, `http://host:port`).
    pub pushgateway: Option<String>,
    pub push_interval: Duration,
    pub run_id: String,
    pub model: String,
    /// `none` when no profile was chosen.
    pub profile: String,
    pub benchmark_kind: String,
    pub extra_meta: BTreeMap<String, String>,
    /// A sharded run's index of this process (`shard` label and Pushgateway grouping key).
    pub shard: Option<u32>,
}

impl PrometheusConfig {
    /// The constant labels every series carries: run id, model, profile, benchmark kind, then
    /// the sanitized `--extra-meta` keys that do not clash with a label of ours.
    pub fn const_labels(&self) -> HashMap<String, String> {
        let mut labels = HashMap::new();
        for (k, v) in &self.extra_meta {
            let name = sanitize_label_name(k);
            if RESERVED.contains(&name.as_str()) || name.starts_with("__") || name == "le" {
                log::warn!(
                    "prometheus: --extra-meta key {k:?} clashes with a label of ours; left out"
                );
                continue;
            }
            labels.insert(name, v.clone());
        }
        labels.insert("run_id".into(), self.run_id.clone());
        labels.insert("model".into(), self.model.clone());
        labels.insert("profile".into(), self.profile.clone());
        labels.insert("benchmark_kind".into(), self.benchmark_kind.clone());
        if let Some(shard) = self.shard {
            labels.insert("shard".into(), shard.to_string());
        }
        labels
    }

    /// Where pushes go: `<gateway>/metrics/job/inference-benchmarker/run_id/<run id>`, plus
    /// `/shard/<index>` for a shard (so shards do not replace each other's group). The run id is
    /// base64url-encoded (`run_id@base64`) so any character is safe in the path.
    pub fn push_url(&self) -> Option<String> {
        let base = self.pushgateway.as_deref()?.trim_end_matches('/');
        let shard = self
            .shard
            .map(|s| format!("/shard/{s}"))
            .unwrap_or_default();
        Some(format!(
            "{base}/metrics/job/{PUSH_JOB}/run_id@base64/{}{shard}",
            base64url(self.run_id.as_bytes())
        ))
    }
}

/// A valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters become `_`.
pub fn sanitize_label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Unpadded base64url, as the Pushgateway's `@base64` label values want. An empty value is
/// `=`, the Pushgateway's spelling of the empty string.
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    if bytes.is_empty() {
        return "=".into();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PrometheusConfig {
        PrometheusConfig {
            listen: None,
            pushgateway: Some("http://127.0.0.1:9091/".into()),
            push_interval: Duration::from_secs(5),
            run_id: "run/1".into(),
            model: "m".into(),
            profile: "none".into(),
            benchmark_kind: "sweep".into(),
            extra_meta: BTreeMap::new(),
            shard: None,
        }
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(sanitize_label_name("gpu.type"), "gpu_type");
        assert_eq!(sanitize_label_name("9lives"), "_9lives");
        assert_eq!(sanitize_label_name(""), "_");
        assert_eq!(sanitize_label_name("ok_Name1"), "ok_Name1");
        assert_eq!(sanitize_label_name("é"), "_");
    }

    #[test]
    fn extra_meta_joins_the_constant_labels_without_clashes() {
        let mut c = config();
        c.extra_meta.insert("gpu-type".into(), "h100".into());
        c.extra_meta.insert("model".into(), "other".into());
        c.extra_meta.insert("__x".into(), "y".into());
        c.extra_meta.insert("job".into(), "y".into());
        let l = c.const_labels();
        assert_eq!(l["gpu_type"], "h100");
        assert_eq!(l["model"], "m", "ours win over a clashing key");
        assert_eq!(l["run_id"], "run/1");
        assert!(!l.contains_key("__x") && !l.contains_key("job"));
        assert_eq!(l.len(), 5);
    }

    #[test]
    fn push_url_encodes_the_run_id() {
        let c = config();
        assert_eq!(
            c.push_url().unwrap(),
            "http://127.0.0.1:9091/metrics/job/inference-benchmarker/run_id@base64/cnVuLzE"
        );
        let mut c = config();
        c.shard = Some(2);
        assert!(c
            .push_url()
            .unwrap()
            .ends_with("/run_id@base64/cnVuLzE/shard/2"));
        assert_eq!(c.const_labels()["shard"], "2");
        c.pushgateway = None;
        assert_eq!(c.push_url(), None);
    }
}
