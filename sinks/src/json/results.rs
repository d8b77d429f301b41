//! One measured step's results, as written in the results document.
//!
//! The original tool's keys come first with the same meanings; ours follow.
//! Every field is described (with units) in `results.schema.json`.

use crate::event::StepKind;
use crate::stats::Summary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The results of one measured step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    // --- the original tool's keys ---
    /// The original tool's step id: `throughput`, `constant@{rate}req/s`.
    pub id: String,
    /// `ConstantVUs` (closed loop) or `ConstantArrivalRate` (open loop).
    pub executor_type: String,
    pub config: StepConfig,
    /// Every request sent in the step: successful + failed (cancelled included).
    pub total_requests: u64,
    /// Output tokens of the successful requests.
    pub total_tokens: u64,
    /// `total_tokens` per second of step duration.
    pub token_throughput_secs: f64,
    /// From the step's start to the end of its last request, in whole milliseconds.
    pub duration_ms: u64,
    pub time_to_first_token_ms: Summary,
    pub inter_token_latency_ms: Summary,
    pub e2e_latency_ms: Summary,
    pub failed_requests: u64,
    pub successful_requests: u64,
    /// Successful requests per second of step duration.
    pub request_rate: f64,
    /// Requests and output tokens per second while the load was steady (from the first
    /// request's end to the end of the sending window, without the drain tail: see
    /// [`crate::steady`]); null when the step had no such part.
    #[serde(default)]
    pub steady_state: Option<crate::steady::SteadyState>,
    /// Prompt tokens (our tokenizer) of the successful requests, as the original tool counted
    /// them: its dashboard divides this by `successful_requests`.
    pub total_tokens_sent: u64,

    // --- ours ---
    /// Prompt tokens (our tokenizer) of every sent request, failed ones included.
    pub prompt_tokens_sent: u64,
    /// `StepInfo::index`: measured steps count from 1.
    pub step: u32,
    /// When the step started, whole milliseconds after the document's `start_time`: with
    /// `duration_ms`, it places the step on the wall clock, so that a merge finds the window
    /// its shards covered together. Null only in a file merged from results that lacked it.
    #[serde(default)]
    pub start_ms: Option<u64>,
    pub kind: StepKind,
    pub inter_chunk_latency_ms: Summary,
    pub queue_delay_ms: Summary,
    pub time_to_first_token_from_schedule_ms: Summary,
    pub e2e_latency_from_schedule_ms: Summary,
    /// The arrival rate asked for (open loop), requests per second.
    pub offered_rate: Option<f64>,
    /// How the open loop spaced its arrivals: `constant`, `poisson`, `gamma` or `trace`; null
    /// for the closed loop.
    #[serde(default)]
    pub arrival: Option<String>,
    /// Requests sent per second: sends after the first over the time from the first arrival to
    /// the last send, paused time left out (see [`crate::aggregate`]).
    pub achieved_rate: f64,
    /// The sending window (step start to when the scheduler stopped), whole milliseconds.
    pub send_duration_ms: u64,
    /// How long live control kept the step paused within its sending window, whole
    /// milliseconds; its rates divide by the time it was not. 0 when never paused.
    #[serde(default)]
    pub paused_ms: u64,
    pub dropped_arrivals: u64,
    /// Arrivals that found the in-flight cap full and waited for a slot (`--queue-when-saturated`).
    #[serde(default)]
    pub queued_arrivals: u64,
    /// Failed attempts that were retried (`--retries`), by class; not in `total_requests`.
    #[serde(default)]
    pub retried_attempts: BTreeMap<String, u64>,
    /// Failed requests by outcome class (`Outcome::as_str`), only classes seen.
    pub errors: BTreeMap<String, u64>,
    /// Responses by HTTP status code (as a string key).
    pub http_statuses: BTreeMap<String, u64>,
    pub output_tokens: OutputTokens,
    /// Why the step ended before its planned duration, if it did.
    pub ended_early: Option<String>,
    /// The first failure of the step, as `class (HTTP status): message`.
    pub first_error: Option<String>,
    /// Requests and tokens per second that met every `--slo` objective; null without `--slo`.
    #[serde(default)]
    pub goodput: Option<crate::slo::Goodput>,
    /// The generator's own CPU, event-loop lag and schedule lateness, and whether it limited the step.
    #[serde(default)]
    pub generator: Option<crate::generator::GeneratorHealth>,
    /// The prefix-cache hit rate the server reported request by request: `server_cached_tokens`
    /// / `server_prompt_tokens` (`usage.prompt_tokens_details.cached_tokens` over
    /// `usage.prompt_tokens`), beside the one from its metrics
    /// (`server_metrics.prefix_cache_hit_rate`); null when no request reported `cached_tokens`.
    #[serde(default)]
    pub client_prefix_cache_hit_rate: Option<f64>,
    /// The server's own view of the step, scraped from its Prometheus endpoint(s); null when
    /// scraping is off (and in files written before it existed).
    #[serde(default)]
    pub server_metrics: Option<crate::server_metrics::ServerMetrics>,
    pub histograms: StepHistograms,
    /// Reasoning models and multi-token chunks (issue 18), among the step's keys; absent (all
    /// empty) in files written before them.
    #[serde(flatten)]
    pub reasoning: crate::reasoning_step::ReasoningFigures,
    /// A merged step (`merge`): the inputs that had it, joined with ", " (a string: a step
    /// entry holds no list); absent in a single run's results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<String>,
    /// Images sent and tool calls streamed; absent when no request of the step sent an image or
    /// offered a tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_and_tools: Option<crate::images_tools::ImagesToolsStep>,
    /// Embeddings and rerank: inputs and input tokens per second; null for generation.
    #[serde(default)]
    pub inputs: Option<crate::inputs::InputThroughput>,
}

impl StepResult {
    /// The request rate the server sustained: the steady one when the step had a steady part,
    /// else the whole step's (which the drain tail dilutes). The sweep scales its rates from it.
    pub fn sustained_request_rate(&self) -> f64 {
        self.steady_state
            .map_or(self.request_rate, |s| s.request_rate)
    }
}

/// The step's load settings, as the original tool wrote them (its `ExecutorConfig`). Its
/// dashboard strips `config.` from these column names, so no key here may repeat a step key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepConfig {
    pub max_vus: u64,
    /// Planned duration of the sending window, in whole seconds (rounded to the nearest).
    pub duration_secs: u64,
    /// Offered arrival rate (requests/s); `None` for the closed loop.
    pub rate: Option<f64>,
}

impl StepConfig {
    /// `duration_secs` as the original tool wrote it: whole seconds, rounded to the nearest.
    pub fn whole_seconds(duration_secs: f64) -> u64 {
        if duration_secs.is_finite() && duration_secs > 0.0 {
            duration_secs.round() as u64
        } else {
            0
        }
    }
}

/// Output token accounting over the successful requests of a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokens {
    /// Sum of `max_tokens` asked for, over successful requests that asked for a length.
    pub requested: u64,
    /// Successful requests whose output count is the server's `usage.completion_tokens`.
    pub server_reported_requests: u64,
    pub server_prompt_tokens: u64,
    pub server_completion_tokens: u64,
    pub server_cached_tokens: u64,
    /// Successful requests whose output count is our tokenizer's (no usage reported).
    pub client_counted_requests: u64,
    /// Mean of (server `usage.prompt_tokens` − our prompt tokens) over successful requests that
    /// reported it: the chat template (and BOS) the server adds. None when none reported it.
    #[serde(default)]
    pub prompt_overhead_per_request: Option<f64>,
}

impl OutputTokens {
    /// `server_cached_tokens` / `server_prompt_tokens`; None without prompt tokens.
    pub fn cached_ratio(&self) -> Option<f64> {
        (self.server_prompt_tokens > 0)
            .then(|| self.server_cached_tokens as f64 / self.server_prompt_tokens as f64)
    }
}

/// The step's histograms, HdrHistogram V2 + deflate, base64: merge shards exactly
/// with `LatencyHistogram::from_base64`. Values in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepHistograms {
    pub ttft: String,
    pub itl: String,
    pub e2e: String,
    pub inter_chunk: String,
    pub queue_delay: String,
    pub ttft_from_schedule: String,
    pub e2e_from_schedule: String,
}
