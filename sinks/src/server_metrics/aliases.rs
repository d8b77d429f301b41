//! One table: each engine's series names, across versions, mapped onto well-known series.
//!
//! A well-known series takes the first of its sources that an endpoint exposes (so a server
//! that exposes an old and a new name is not counted twice); across label sets and endpoints
//! its values combine as [`Combine`] says. Names marked "uncertain" below were taken from the
//! engines' documentation and code as known at the time of writing, not from a running server.

/// What a series measures over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// How the values of several label sets (or endpoints) become one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Counts, tokens, memory, power: they add up.
    Sum,
    /// Ratios and utilizations: the mean of the GPUs/engines.
    Mean,
}

/// One well-known series.
#[derive(Debug)]
pub struct Alias {
    /// Its key in `server_metrics.series`.
    pub key: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub combine: Combine,
    /// Exposition family names, preferred first (a histogram's name without `_bucket`). A
    /// source `"a + b"` is the sum of two counter families, read only when both are exposed.
    pub sources: &'static [&'static str],
}

use std::collections::HashMap;

use super::parse::Family;
use Combine::{Mean, Sum};
use Kind::{Counter, Gauge, Histogram};

const fn a(
    key: &'static str,
    kind: Kind,
    unit: &'static str,
    combine: Combine,
    sources: &'static [&'static str],
) -> Alias {
    Alias {
        key,
        kind,
        unit,
        combine,
        sources,
    }
}

/// llama-server's prompt tokens: computed + reused from the cache.
const LLAMACPP_PROMPT: &str = "llamacpp:prompt_tokens_total + llamacpp:prompt_tokens_cached_total";

impl Alias {
    /// The first of its sources an exposition holds (every part, of this alias' kind), and its
    /// families: an endpoint that exposes an old and a new name is read once.
    pub fn pick<'a>(
        &self,
        by_name: &HashMap<&str, &'a Family>,
    ) -> Option<(&'static str, Vec<&'a Family>)> {
        self.sources.iter().find_map(|s| {
            parts(s)
                .map(|p| by_name.get(p).copied().filter(|f| f.kind == self.kind))
                .collect::<Option<Vec<&Family>>>()
                .map(|families| (*s, families))
        })
    }
}

/// The families a source adds up: one, or those of an `"a + b"` source.
pub fn parts(source: &'static str) -> impl Iterator<Item = &'static str> {
    source.split(" + ")
}

/// Every well-known series. The README's "Server metrics" table is this table.
pub const ALIASES: &[Alias] = &[
    a(
        "requests_running",
        Gauge,
        "requests",
        Sum,
        &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "tgi_batch_current_size",
            "llamacpp:requests_processing",
        ],
    ),
    a(
        "requests_waiting",
        Gauge,
        "requests",
        Sum,
        &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "tgi_queue_size",
            "llamacpp:requests_deferred",
        ],
    ),
    // vLLM's `_perc` is a fraction (0..1) despite its name, as are SGLang's and llama.cpp's.
    a(
        "kv_cache_usage",
        Gauge,
        "ratio",
        Mean,
        &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            // Older llama-server only (gone from its exposition by late 2025).
            "llamacpp:kv_cache_usage_ratio",
        ],
    ),
    // TGI: the batch's token budget in use, in tokens (not a ratio, so a key of its own).
    a(
        "batch_max_tokens",
        Gauge,
        "tokens",
        Sum,
        &["tgi_batch_current_max_tokens"],
    ),
    // SGLang: retracted requests are its preemptions (uncertain across versions).
    a(
        "preemptions",
        Counter,
        "preemptions",
        Sum,
        &[
            "vllm:num_preemptions_total",
            "sglang:num_retracted_reqs_total",
        ],
    ),
    // Every prompt token, cached or computed. llama-server's `prompt_tokens_total` leaves out
    // the tokens it reused from a slot's cache, which it counts apart: the two add up.
    a(
        "prompt_tokens",
        Counter,
        "tokens",
        Sum,
        &[
            "vllm:prompt_tokens_total",
            "sglang:prompt_tokens_total",
            LLAMACPP_PROMPT,
        ],
    ),
    a(
        "generation_tokens",
        Counter,
        "tokens",
        Sum,
        &[
            "vllm:generation_tokens_total",
            "sglang:generation_tokens_total",
            "llamacpp:tokens_predicted_total",
        ],
    ),
    a(
        "requests_finished",
        Counter,
        "requests",
        Sum,
        &["vllm:request_success_total", "sglang:num_requests_total"],
    ),
    // vLLM V1 (older V1 releases: `gpu_prefix_cache_*`). Tokens looked up and tokens found.
    // llama-server: every prompt token is looked up in its slot's cache.
    a(
        "prefix_cache_queries",
        Counter,
        "tokens",
        Sum,
        &[
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
            LLAMACPP_PROMPT,
        ],
    ),
    a(
        "prefix_cache_hits",
        Counter,
        "tokens",
        Sum,
        &[
            "vllm:prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits_total",
            "llamacpp:prompt_tokens_cached_total",
        ],
    ),
    // SGLang exposes only its own running hit rate.
    a(
        "prefix_cache_hit_rate_gauge",
        Gauge,
        "ratio",
        Mean,
        &["sglang:cache_hit_rate"],
    ),
    a(
        "ttft_seconds",
        Histogram,
        "seconds",
        Sum,
        &[
            "vllm:time_to_first_token_seconds",
            "sglang:time_to_first_token_seconds",
        ],
    ),
    // vLLM renamed its TPOT histogram `inter_token_latency_seconds` (2025); SGLang likewise.
    // TGI's mean time per token of each request is the closest it has.
    a(
        "tpot_seconds",
        Histogram,
        "seconds",
        Sum,
        &[
            "vllm:time_per_output_token_seconds",
            "vllm:inter_token_latency_seconds",
            "sglang:time_per_output_token_seconds",
            "sglang:inter_token_latency_seconds",
            "tgi_request_mean_time_per_token_duration",
        ],
    ),
    a(
        "e2e_seconds",
        Histogram,
        "seconds",
        Sum,
        &[
            "vllm:e2e_request_latency_seconds",
            "sglang:e2e_request_latency_seconds",
            "tgi_request_duration",
        ],
    ),
    a(
        "queue_seconds",
        Histogram,
        "seconds",
        Sum,
        &[
            "vllm:request_queue_time_seconds",
            "sglang:queue_time_seconds",
            "tgi_request_queue_duration",
        ],
    ),
    // dcgm-exporter (NVIDIA DCGM field names).
    a(
        "gpu_utilization",
        Gauge,
        "percent",
        Mean,
        &["DCGM_FI_DEV_GPU_UTIL"],
    ),
    a(
        "gpu_memory_used",
        Gauge,
        "MiB",
        Sum,
        &["DCGM_FI_DEV_FB_USED"],
    ),
    a("gpu_power", Gauge, "W", Sum, &["DCGM_FI_DEV_POWER_USAGE"]),
    a(
        "gpu_energy",
        Counter,
        "mJ",
        Sum,
        &["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"],
    ),
];

/// The (first) well-known series a family name is a source, or part of a source, of.
pub fn alias_of(family: &str) -> Option<&'static Alias> {
    ALIASES
        .iter()
        .find(|a| a.sources.iter().any(|s| parts(s).any(|p| p == family)))
}

/// The engine a family name belongs to (`vllm`, `sglang`, `tgi`, `llamacpp`), if any; the
/// DCGM exporter is not an engine.
pub fn engine_of(family: &str) -> Option<&'static str> {
    [
        ("vllm:", "vllm"),
        ("sglang:", "sglang"),
        ("tgi_", "tgi"),
        ("llamacpp:", "llamacpp"),
    ]
    .into_iter()
    .find(|(prefix, _)| family.starts_with(prefix))
    .map(|(_, engine)| engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_source_belongs_to_one_key_and_keys_are_unique() {
        let mut keys = std::collections::HashSet::new();
        let mut sources = std::collections::HashSet::new();
        for a in ALIASES {
            assert!(keys.insert(a.key), "{} twice", a.key);
            assert!(!a.sources.is_empty());
            for s in a.sources {
                if s.contains(" + ") {
                    // Sums are of counters (a sum of gauges would need its own combine).
                    assert_eq!(a.kind, Kind::Counter, "{s}");
                    assert_eq!(parts(s).count(), 2, "{s}");
                } else {
                    assert!(sources.insert(*s), "{s} twice");
                }
            }
        }
    }

    #[test]
    fn names_map_to_their_key_and_engine() {
        assert_eq!(
            alias_of("vllm:gpu_cache_usage_perc").unwrap().key,
            "kv_cache_usage"
        );
        assert_eq!(
            alias_of("sglang:token_usage").unwrap().combine,
            Combine::Mean
        );
        assert_eq!(
            alias_of("llamacpp:tokens_predicted_total").unwrap().key,
            "generation_tokens"
        );
        assert_eq!(
            alias_of("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
                .unwrap()
                .kind,
            Kind::Counter
        );
        assert_eq!(
            alias_of("llamacpp:prompt_tokens_total").unwrap().key,
            "prompt_tokens"
        );
        assert!(alias_of("llamacpp:prompt_tokens_cached_total").is_some());
        assert!(alias_of("vllm:cache_config_info").is_none());
        assert_eq!(engine_of("llamacpp:requests_processing"), Some("llamacpp"));
        assert_eq!(engine_of("DCGM_FI_DEV_GPU_UTIL"), None);
    }
}
