//! The run's configuration, as the command line (or a test) gives it.
//! Pure data: `cli/` builds it, `lib::run` consumes it.

pub mod arrival;
pub mod cache_salt;
pub mod image_options;
pub mod options;
pub mod shard;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::shard::Shard;
use options::TokenizeOptions;

/// How long a request may take before it is abandoned (the original tool had none
/// beyond awc/reqwest defaults; awc's own 5 s default is disabled).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Output tokens asked of every request (`max_tokens`, exactly, with `ignore_eos`) when
/// `--decode-options` is not given: the original tool's profiles' 800. Without a bound, a server
/// that honours `ignore_eos` generates to the model's context limit.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 800;

/// A run stops (exit code 4) when more than this share of a step's requests failed.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.5;

/// After SIGINT/SIGTERM, in-flight requests get this long to finish.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkKind {
    Throughput,
    Rate,
    Sweep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
    /// `/v1/responses` (OpenAI's Responses API, streamed events)
    Responses,
    /// `/v1/embeddings` (not streamed: no token times)
    Embeddings,
    /// `/v1/rerank` (vLLM's, not streamed: no token times)
    Rerank,
}

impl Endpoint {
    /// The `--endpoint` value naming it.
    pub fn flag(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Responses => "responses",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Rerank => "rerank",
        }
    }

    /// Embeddings and rerank answer one JSON body per request: no first token, no ITL.
    pub fn is_pooling(self) -> bool {
        matches!(self, Endpoint::Embeddings | Endpoint::Rerank)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// Base URL; `/v1/...` is appended after any path it has.
    pub url: String,
    /// Never serialized anywhere.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// `None`: the built-in tokenizer.
    pub tokenizer_name: Option<String>,
    /// Sent as `model`; resolved from the server's `/v1/models` when not given.
    pub model_name: Option<String>,
    pub max_vus: u64,
    /// Closed-loop steps start with this many virtual users instead of `max_vus` (live control
    /// scales them up to `max_vus`).
    pub vus: Option<u64>,
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    pub rates: Option<Vec<f64>>,
    pub num_rates: u64,
    pub profile: Option<String>,
    pub benchmark_kind: BenchmarkKind,
    #[serde(with = "humantime_serde_compat")]
    pub warmup: Duration,
    /// `num_tokens`: every prompt is cut to exactly that many tokens, as the original tool did
    /// (unless `draw_prompt_lengths`).
    pub prompt_options: Option<TokenizeOptions>,
    pub decode_options: Option<TokenizeOptions>,
    /// Draw each prompt's length from `prompt_options` (normal, clamped) instead of cutting
    /// every prompt to exactly `num_tokens`.
    pub draw_prompt_lengths: bool,
    /// `--image-options`: synthetic images sent with every request.
    pub image_options: Option<image_options::ImageOptions>,
    /// `None`: the original tool's default hub dataset (see `workload::dataset::resolve`);
    /// `synthetic`: the built-in synthetic prompts.
    pub dataset: Option<String>,
    pub dataset_file: Option<PathBuf>,
    /// `--extra-meta`; the results write it as the original tool's `meta`.
    pub extra_meta: BTreeMap<String, String>,
    /// Any text (the original tool accepted any); sanitized where it becomes a file name or an
    /// HTTP header.
    pub run_id: String,
    /// The run id was given (not drawn): it names the results file.
    #[serde(skip)]
    pub run_id_names_file: bool,
    pub endpoint: Endpoint,
    /// `--batch-size`: inputs per embeddings/rerank request (rerank: documents per query).
    pub batch_size: u64,
    pub ignore_eos: bool,
    /// `--reasoning-effort`: sent as the chat body's `reasoning_effort`, the Responses body's
    /// `reasoning.effort` (low, medium, high).
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    pub workers: usize,
    #[serde(with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    /// After a stop signal, how long in-flight requests may still finish before they are cancelled.
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_grace: Duration,
    pub output_dir: PathBuf,
    pub save_requests: bool,
    pub no_console: bool,
    /// Do not write the HTML report beside the results at the end of the run.
    pub no_report: bool,
    /// Also write one CSV row per step beside the results.
    pub csv: bool,
    /// Seed for prompt and length sampling.
    pub seed: u64,
    /// `--cache-salt`: the first words of every synthetic prompt and the last pixels of every
    /// synthetic image (a fresh one per run by default; `run` draws it before the workload).
    pub cache_salt: cache_salt::CacheSalt,
    /// Multi-turn chat: a turn's messages plus its max_tokens must fit in this many tokens; the
    /// oldest exchanges are dropped (and counted) until they do.
    pub max_context_tokens: Option<u64>,
    /// How open-loop arrivals are spaced (constant by default, as the original tool).
    pub arrival: arrival::Arrival,
    /// End a step, and the run (exit code 4), when more than this share (0..1) of its finished
    /// requests failed; `None` (or 1.0): no limit.
    pub max_error_rate: Option<f64>,
    /// End an open-loop step (and skip higher rates) when the server is saturated.
    pub stop_when_saturated: bool,
    /// Serve Prometheus `/metrics` on this address during the run (loopback unless the user
    /// binds elsewhere).
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Live control over HTTP on this loopback address (off by default).
    pub control_listen: Option<std::net::SocketAddr>,
    /// With `prometheus_listen`: keep serving this long after the run, so the last scrape sees
    /// the final values.
    #[serde(with = "humantime_serde_compat")]
    pub prometheus_linger: Duration,
    /// Push metrics to this Pushgateway. Not serialized: such a URL may carry credentials.
    #[serde(skip)]
    pub prometheus_pushgateway: Option<String>,
    #[serde(with = "humantime_serde_compat")]
    pub prometheus_push_interval: Duration,
    /// Server metrics (issue 17): scrape `<url>/metrics` (unless `no_server_metrics`) and these
    /// endpoints during the run, each step's window in its results' `server_metrics`. Not
    /// serialized: such a URL may carry credentials (each step names its endpoints without them).
    #[serde(skip)]
    pub server_metrics: Vec<String>,
    pub no_server_metrics: bool,
    #[serde(with = "humantime_serde_compat")]
    pub server_metrics_interval: Duration,
    /// Unknown series whose name matches are kept (`server_metrics.other`); none without it.
    pub server_metrics_filter: Option<String>,
    /// Pass/fail gates every measured step must meet (`p99(ttft)<800ms`, `error_rate<1%`).
    pub thresholds: Vec<String>,
    /// Per-request objectives for goodput (`--slo ttft=500ms,itl=50ms,e2e=30s`).
    pub slo: Option<sinks::slo::Slo>,
    /// Open loop at the in-flight cap: queue arrivals (true) or drop them (false, the default).
    pub queue_when_saturated: bool,
    /// Open loop: the rate grows linearly from 0 over this first part of each step.
    #[serde(with = "humantime_serde_compat")]
    pub ramp_up: Duration,
    /// Also summarize each step per slice of this length (`slices` in the results).
    #[serde(serialize_with = "humantime_serde_compat::optional")]
    pub slice_duration: Option<Duration>,
    /// PEM certificates of a private CA, trusted besides the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (self-signed test servers).
    pub insecure: bool,
    /// Attempts after a failed one, for failures another attempt may not meet (0: none).
    pub retries: u32,
    /// OTLP collector base URL for traces (`--otlp-endpoint`); without it the standard
    /// `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` variables turn tracing on. Not serialized: such a
    /// URL may carry credentials.
    #[serde(skip)]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: HTTP/protobuf (default) or gRPC.
    pub otlp_protocol: sinks::otlp::OtlpProtocol,
    /// Share of requests whose spans are exported (decided by trace id), 0..=1.
    pub trace_sample_ratio: f64,
    /// One span event per streamed chunk besides the first token's.
    pub trace_token_events: bool,
    /// This process's part of a sharded run (`--shards`); `None` when it runs the whole load.
    pub shard: Option<Shard>,
    /// Replay this trace (JSON Lines: arrival time, input and output lengths a request) as the
    /// run's one measured step, instead of the benchmark kind's steps.
    pub trace: Option<PathBuf>,
    /// Trace arrivals come this many times faster than recorded.
    pub trace_speedup: f64,
    /// Faults injected into our own request tasks, for the supervision tests only.
    #[doc(hidden)]
    #[serde(skip)]
    pub test_hooks: TestHooks,
    /// Tests only: live sinks started besides the configured ones.
    #[doc(hidden)]
    #[serde(skip)]
    pub extra_sinks: ExtraSinks,
}

/// Starts a live sink in the run's registry (the hook of [`RunConfig::extra_sinks`]).
pub type StartSink = Arc<dyn Fn(&mut sinks::live::SinkRegistry) + Send + Sync>;

/// Live sinks a test adds to a run (e.g. a deliberately slow one).
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct ExtraSinks(pub Vec<StartSink>);

impl std::fmt::Debug for ExtraSinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtraSinks({})", self.0.len())
    }
}

/// Test-only faults in the benchmarker's own request tasks (never set by the command line): the
/// request numbered `k` in its step (from 0) is hit by a hook set to `n` when `(k + 1) % n == 0`,
/// after its response ended and before its record is handed over; the first of the task faults
/// (panic, drop, hang) that hits wins.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// The request's task panics.
    pub panic_every: Option<u64>,
    /// The request's task is dropped by its supervisor.
    pub drop_every: Option<u64>,
    /// The request's task hangs for ever, ignoring the cancel.
    pub hang_every: Option<u64>,
    /// A timing defect planted for the accuracy test to catch: the request's first-token stamp
    /// is recorded late.
    pub late_first_token: Option<LateStamp>,
}

/// Every `every`-th request's first-token stamp is `by` late (as a stamp taken after a delay
/// would be): its `first_token_at`, the first chunk's offset, and the first answer or tool
/// call stamped at the same instant.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LateStamp {
    pub every: u64,
    pub by: Duration,
}

/// Durations serialize as humantime strings ("120s"), as the original tool's config did.
mod humantime_serde_compat {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn optional<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

impl RunConfig {
    /// Options that mean nothing with the chosen endpoint are refused rather than ignored.
    pub fn check_endpoint_options(&self) -> Result<(), String> {
        if self.batch_size != 1 && !self.endpoint.is_pooling() {
            return Err(format!(
                "--batch-size is for --endpoint embeddings or rerank, not {}",
                self.endpoint.flag()
            ));
        }
        if self.endpoint == Endpoint::Responses && self.max_context_tokens.is_some() {
            return Err(
                "--max-context-tokens cannot cut a conversation the server keeps \
                        (--endpoint responses sends previous_response_id): leave it out"
                    .into(),
            );
        }
        Ok(())
    }

    /// The original tool's defaults (the command line's too), against `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RunConfig {
            url: url.into(),
            api_key: None,
            tokenizer_name: None,
            model_name: None,
            max_vus: 128,
            vus: None,
            duration: Duration::from_secs(120),
            rates: None,
            num_rates: 10,
            profile: None,
            benchmark_kind: BenchmarkKind::Sweep,
            warmup: Duration::from_secs(30),
            prompt_options: None,
            decode_options: Some(TokenizeOptions::fixed(DEFAULT_OUTPUT_TOKENS)),
            draw_prompt_lengths: false,
            image_options: None,
            dataset: None,
            dataset_file: None,
            extra_meta: BTreeMap::new(),
            run_id: "run".into(),
            run_id_names_file: false,
            endpoint: Endpoint::Chat,
            batch_size: 1,
            ignore_eos: true,
            reasoning_effort: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            output_dir: PathBuf::from("results"),
            save_requests: false,
            no_console: false,
            no_report: false,
            csv: false,
            seed: 0,
            cache_salt: cache_salt::CacheSalt::Fresh,
            max_context_tokens: None,
            arrival: arrival::Arrival::Constant,
            max_error_rate: Some(DEFAULT_MAX_ERROR_RATE),
            stop_when_saturated: true,
            prometheus_listen: None,
            control_listen: None,
            // Two scrapes at Prometheus's default 15 s interval.
            prometheus_linger: Duration::from_secs(30),
            prometheus_pushgateway: None,
            prometheus_push_interval: Duration::from_secs(5),
            server_metrics: Vec::new(),
            no_server_metrics: false,
            server_metrics_interval: Duration::from_secs(1),
            server_metrics_filter: None,
            thresholds: Vec::new(),
            slo: None,
            queue_when_saturated: false,
            ramp_up: Duration::ZERO,
            slice_duration: None,
            ca_cert: None,
            insecure: false,
            extra_sinks: ExtraSinks::default(),
            retries: 0,
            otlp_endpoint: None,
            otlp_protocol: sinks::otlp::OtlpProtocol::Http,
            trace_sample_ratio: 1.0,
            trace_token_events: false,
            shard: None,
            trace: None,
            trace_speedup: 1.0,
            test_hooks: TestHooks::default(),
        }
    }

    /// The prefix of request ids (`<prefix>-<step>-<n>`): the run id (sanitized: the id travels
    /// as the `x-request-id` header), plus the shard index in a sharded run so that ids stay
    /// unique across its processes.
    pub fn request_id_prefix(&self) -> String {
        let run = sinks::json::sanitize_label(&self.run_id);
        match self.shard {
            Some(s) => format!("{run}-s{}", s.index),
            None => run,
        }
    }
}

impl Shard {
    /// Gives `cfg` this shard's part of the load: virtual users, rates, seed.
    pub fn apply(self, cfg: &mut RunConfig) -> Result<(), String> {
        let vus = self.part(cfg.max_vus);
        if vus == 0 {
            return Err(format!(
                "--max-vus {} cannot be split over --shards {}: every shard needs at least one",
                cfg.max_vus, self.count
            ));
        }
        cfg.max_vus = vus;
        if let Some(rates) = cfg.rates.as_mut() {
            for r in rates.iter_mut() {
                *r /= f64::from(self.count);
            }
        }
        // Distinct prompts and arrival draws per shard, still reproducible from the one seed.
        cfg.seed = cfg.seed.wrapping_add(u64::from(self.index));
        cfg.shard = Some(self);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_splits_the_load() {
        let mut cfg = RunConfig::new("http://x");
        cfg.max_vus = 10;
        cfg.rates = Some(vec![3.0, 30.0]);
        cfg.seed = 7;
        let shard = Shard { index: 2, count: 3 };
        shard.apply(&mut cfg).unwrap();
        assert_eq!(cfg.max_vus, 3);
        assert_eq!(cfg.rates, Some(vec![1.0, 10.0]));
        assert_eq!(cfg.seed, 9);
        assert_eq!(cfg.shard, Some(shard));
        assert_eq!(shard.label(), "shard-2-of-3");

        let mut small = RunConfig::new("http://x");
        small.max_vus = 2;
        assert!(shard
            .apply(&mut small)
            .unwrap_err()
            .contains("at least one"));
    }
}
