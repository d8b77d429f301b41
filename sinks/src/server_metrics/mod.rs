//! The server's own view of each step (issue 17): its Prometheus endpoint(s), scraped while
//! the benchmark runs, aggregated over the step's window (pure; the scraper actor lives in
//! `scraper.rs`).
//!
//! - [`aliases`]: each engine's names (vLLM, SGLang, TGI, llama.cpp, dcgm-exporter) mapped onto
//!   well-known series, with kind, unit and how label sets combine.
//! - [`parse`]: a text exposition → families of series.
//! - [`window`]: one step's scrapes → [`ServerMetrics`], the step entry's `server_metrics`.
//! - [`live`]: the latest round's requests waiting and KV-cache usage, for the live console.
//! - [`slice_windows`]: the same, cut at the step's time slices (`--slice-duration`).
//! - [`timeseries`]: each scrape's values, a line of `<results stem>.timeseries.jsonl`.

pub mod aliases;
pub mod live;
pub mod parse;
pub mod scraper;
pub mod slice_windows;
pub mod timeseries;
pub mod window;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use window::MetricsWindow;

/// A step's `server_metrics`: no list anywhere in it (a step entry is one pandas row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// The endpoints scraped, joined with ", ".
    pub endpoints: String,
    /// Engines recognized from the series' names (`vllm`, `sglang`, `tgi`, `llamacpp`), joined
    /// with ", "; null when none was.
    pub engine: Option<String>,
    /// Successful scrapes of an endpoint in the step's window.
    pub scrapes: u64,
    /// Scrapes that failed (timeout, refused, not Prometheus, HTTP error).
    pub failed_scrapes: u64,
    /// Well-known series by key (`requests_running`, `generation_tokens`, `ttft_seconds`, ...).
    pub series: BTreeMap<String, SeriesSummary>,
    /// `prefix_cache_hits` increase / `prefix_cache_queries` increase; null without them.
    pub prefix_cache_hit_rate: Option<f64>,
    /// `gpu_energy` increase in joules / the step's output tokens; null without DCGM energy.
    pub joules_per_output_token: Option<f64>,
    /// Series kept by `--server-metrics-filter`, by their own name.
    #[serde(default)]
    pub other: BTreeMap<String, SeriesSummary>,
}

/// One series over a step's window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SeriesSummary {
    /// Over the sending window's scrapes (start to the end of sending).
    Gauge {
        source: String,
        unit: String,
        mean: Option<f64>,
        max: Option<f64>,
        p50: Option<f64>,
        p99: Option<f64>,
        samples: u64,
    },
    /// From the step's first scrape to its last (after its last request ended).
    Counter {
        source: String,
        unit: String,
        increase: f64,
        rate_per_s: Option<f64>,
    },
    /// The window's observations: bucket increases, cumulative, keyed by `le`.
    Histogram {
        source: String,
        unit: String,
        count: f64,
        sum: f64,
        p50: Option<f64>,
        p90: Option<f64>,
        p99: Option<f64>,
        buckets: Buckets,
    },
}

impl SeriesSummary {
    pub fn increase(&self) -> Option<f64> {
        match self {
            SeriesSummary::Counter { increase, .. } => Some(*increase),
            _ => None,
        }
    }

    pub fn mean(&self) -> Option<f64> {
        match self {
            SeriesSummary::Gauge { mean, .. } => *mean,
            _ => None,
        }
    }
}

/// Cumulative counts by upper bound, ascending: written as an object keyed by `le` (`"0.01"`,
/// ..., `"+Inf"`), never a list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

fn le_key(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{le}")
    }
}

impl Serialize for Buckets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (le, v) in &self.0 {
            map.serialize_entry(&le_key(*le), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        let mut v: Vec<(f64, f64)> = map
            .into_iter()
            .filter_map(|(k, v)| k.parse::<f64>().ok().map(|le| (le, v)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Buckets(v))
    }
}

/// `--server-metrics-filter`: a regex over series names.
pub fn compile_filter(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| e.to_string())
}

impl ServerMetrics {
    /// The figures derived from the series: the prefix-cache hit rate, and joules per output
    /// token of `output_tokens` (the step's, or a merged step's).
    pub fn derive(&mut self, output_tokens: u64) {
        let inc = |k: &str| self.series.get(k).and_then(SeriesSummary::increase);
        self.prefix_cache_hit_rate = match (inc("prefix_cache_hits"), inc("prefix_cache_queries")) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q),
            _ => None,
        };
        self.joules_per_output_token = match inc("gpu_energy") {
            Some(mj) if output_tokens > 0 => Some(mj / 1000.0 / output_tokens as f64),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests;
