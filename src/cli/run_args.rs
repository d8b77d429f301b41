//! The run command's flags: the original tool's (same names, short forms, env vars, defaults)
//! plus ours. `into_config.rs` turns them into a `RunConfig`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::values::{parse_duration, parse_listen, parse_positive_duration, parse_share};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Tokenizer: a Hugging Face hub model id (org/name: its tokenizer.json is downloaded and
    /// cached; HF_TOKEN for gated models), a local tokenizer.json, or a folder holding one
    /// (default: the built-in tokenizer)
    #[arg(short, long, env)]
    pub tokenizer_name: Option<String>,
    /// Model to request (default: the first model the server lists on /v1/models)
    #[arg(long, env)]
    pub model_name: Option<String>,
    /// Virtual users (throughput step) and the cap on requests in flight (rate steps)
    #[arg(short, long, env, default_value = "128")]
    pub max_vus: u64,
    /// Start the throughput step with this many virtual users instead of --max-vus (live
    /// control can scale them up to --max-vus)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub vus: Option<u64>,
    /// Duration of each benchmark step (e.g. 120s, 2m)
    #[arg(short, long, env, default_value = "120s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub duration: Duration,
    /// Request rates per second: --rates 1,5 or --rates 1 --rates 5; without --benchmark-kind
    /// they run as the rate benchmark
    #[arg(short, long, env, value_delimiter = ',', allow_negative_numbers = true)]
    pub rates: Option<Vec<f64>>,
    /// Number of rates of the sweep, evenly spaced up to 1.2 × the measured maximum
    #[arg(long, env, default_value = "10")]
    pub num_rates: u64,
    /// A benchmark profile: fixed-length, chat, code-generation, classification
    #[arg(long, env)]
    pub profile: Option<String>,
    /// throughput (--max-vus users in a closed loop), rate (open loop at each --rates), sweep (a
    /// throughput step, then --num-rates rates up to 1.2 × its maximum)
    #[arg(short, long, env, default_value = "sweep", value_parser = ["throughput", "rate", "sweep"], ignore_case = true)]
    pub benchmark_kind: String,
    /// Warmup before the benchmark, never part of the results (0s: none)
    #[arg(short, long, env, default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub warmup: Duration,
    /// Base URL of the OpenAI-compatible server; /v1/... is appended to any path it has
    #[arg(short, long, env, default_value = "http://localhost:8000")]
    pub url: String,
    /// API key, sent as "Authorization: Bearer KEY" (never written anywhere)
    #[arg(short, long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Read the API key from this file (keeps it out of shell history and process listings)
    #[arg(long, conflicts_with = "api_key")]
    pub api_key_file: Option<PathBuf>,
    /// No interactive console: line-based progress only
    #[arg(short, long, env)]
    pub no_console: bool,
    /// Prompt length in tokens, as the original tool: num_tokens=N cuts every prompt to exactly
    /// N; min_tokens=N,max_tokens=N without num_tokens keep only the dataset prompts within
    /// them; variance=N (a standard deviation) only counts with --draw-prompt-lengths
    /// [default: a dataset's prompts as they are; --dataset synthetic: exactly 200 tokens]
    #[arg(long, env)]
    pub prompt_options: Option<String>,
    /// Output length (sent as max_tokens, with ignore_eos), drawn per request: num_tokens=N
    /// (mean), min_tokens=N,max_tokens=N (bounds), variance=N (the standard deviation, as the
    /// original tool used it; stddev=N is the same) [default: exactly 800 tokens]
    #[arg(long, env)]
    pub decode_options: Option<String>,
    /// Draw each prompt's length from --prompt-options (normal: mean num_tokens, standard
    /// deviation variance, within min_tokens..max_tokens) instead of exactly num_tokens
    #[arg(long)]
    pub draw_prompt_lengths: bool,
    /// Synthetic images with every request, as OpenAI image_url content parts (PNG data URIs
    /// made once before the run, seeded by --seed): width=W,height=H[,count=N] (count 1 by
    /// default)
    #[arg(long, env)]
    pub image_options: Option<String>,
    /// Dataset: a Hugging Face hub dataset id (org/name: its --dataset-file is downloaded and
    /// cached), a local file, a local folder holding --dataset-file, or "synthetic" (built-in
    /// prompts of exact token lengths, no files) [default: hlarcher/inference-benchmarker, the
    /// original tool's]
    #[arg(long, env)]
    pub dataset: Option<String>,
    /// The file in the hub dataset or the folder, or a local file [default:
    /// share_gpt_filtered_small.json]. A JSON array or JSON Lines of conversations, in the
    /// original tool's shape {"conversations": [{"role", "content"}], "id"} or ShareGPT's
    /// {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
    #[arg(long, env)]
    pub dataset_file: Option<PathBuf>,
    /// Extra metadata, written as the results' config.meta: key=value,key=value (e.g.
    /// engine=vllm,tp=2,device=H100, which the original tool's dashboard reads)
    #[arg(long, env)]
    pub extra_meta: Option<String>,
    /// Run identifier, any text (default: 7 random hex digits); when given it also names the
    /// results file
    #[arg(long, env)]
    pub run_id: Option<String>,

    /// API endpoint: chat (/v1/chat/completions), completions (/v1/completions), responses
    /// (/v1/responses), embeddings (/v1/embeddings) or rerank (/v1/rerank)
    #[arg(long, env = "IB_ENDPOINT", default_value = "chat", value_parser = ["chat", "completions", "responses", "embeddings", "rerank"])]
    pub endpoint: String,
    /// Embeddings and rerank: inputs per request (rerank: documents per query)
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch_size: u64,
    /// Do not send "ignore_eos": true (for servers that reject unknown fields)
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Sent as "reasoning_effort" in the chat body ("reasoning": {"effort"} with --endpoint responses), for reasoning models (not sent unless given)
    #[arg(long, env = "IB_REASONING_EFFORT", value_parser = ["low", "medium", "high"])]
    pub reasoning_effort: Option<String>,
    /// Worker threads running requests (default: one per core)
    #[arg(long)]
    pub workers: Option<usize>,
    /// Time a request may take before it ends as a timeout
    #[arg(long, default_value = "10m", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub request_timeout: Duration,
    /// After SIGINT/SIGTERM, time in-flight requests get to finish before they are cancelled
    #[arg(long, default_value = "10s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub shutdown_grace: Duration,
    /// Folder for the results
    #[arg(long, default_value = "results")]
    pub output_dir: PathBuf,
    /// Also write one JSON line per request to <results>.requests.jsonl
    #[arg(long)]
    pub save_requests: bool,
    /// Seed for prompt and length sampling
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Cache salt of synthetic prompts and images: their first words (last pixels) are drawn
    /// from it, so a rerun with the same --seed is not served from the server's prefix cache;
    /// `none` turns it off (prompts from --seed alone), a fixed TEXT shares a cache on purpose
    /// [default: a fresh random salt per run, recorded as config.cache_salt]
    #[arg(long, value_name = "none|TEXT")]
    pub cache_salt: Option<String>,
    /// Multi-turn chat: drop the oldest exchanges of a conversation so that its messages plus
    /// max_tokens fit in this many tokens (the server's context); cuts are counted and reported
    #[arg(long)]
    pub max_context_tokens: Option<u64>,
    /// Open-loop arrivals: constant (the original tool's spacing), poisson, or gamma (with
    /// --burstiness)
    #[arg(long, default_value = "constant", value_parser = ["constant", "poisson", "gamma"])]
    pub arrival: String,
    /// Shape of gamma arrivals, as vLLM's --burstiness: 1 = Poisson, < 1 burstier, > 1 steadier
    #[arg(long, default_value = "1.0")]
    pub burstiness: f64,
    /// Stop the run (exit code 4) when more than this share of a step's finished requests
    /// failed (e.g. 0.5 or 50%; 1.0 turns it off)
    #[arg(long, default_value = "50%", value_parser = parse_share)]
    pub max_error_rate: f64,
    /// Run every rate step to its end, even when the server is saturated
    #[arg(long)]
    pub no_saturation_stop: bool,
    /// A gate every measured step must pass, e.g. 'p99(ttft)<800ms' or 'error_rate<1%' (repeatable);
    /// a failure exits with code 5 after the results are written
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Per-request objectives for goodput: ttft=500ms,itl=50ms,e2e=30s (any subset)
    #[arg(long)]
    pub slo: Option<String>,
    /// Open loop: an arrival that finds --max-vus requests in flight waits for a free slot
    /// (its wait counts into its from-schedule latencies) instead of being dropped
    #[arg(long)]
    pub queue_when_saturated: bool,
    /// Open loop: grow the rate linearly from 0 over this first part of each step (e.g. 30s)
    #[arg(long, default_value = "0s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub ramp_up: Duration,
    /// Also summarize each step per slice of this length (e.g. 1m), for long soaks: latency
    /// percentiles, throughput and errors per slice in the results' `slices`
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub slice_duration: Option<Duration>,
    /// https://: also trust the CA certificates in this PEM file (private CAs)
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// https://: accept any server certificate (self-signed test servers; never in production)
    #[arg(long)]
    pub insecure: bool,
    /// Retry a request up to N times after a connection error, 429, 5xx or a connection broken
    /// before any output (backoff 100 ms, doubling); retried attempts are counted apart
    #[arg(long, default_value = "0")]
    pub retries: u32,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics during the run, e.g. 127.0.0.1:9464
    /// or localhost:9464 (a host name is resolved once: its first IPv4 address, else its first)
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Accept live-control commands on http://HOST:PORT (loopback only, e.g. 127.0.0.1:9470):
    /// POST /pause, /resume, /users, /rate, /end-step; GET /status. Off by default
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub control_listen: Option<std::net::SocketAddr>,
    /// With --prometheus-listen: keep serving this long after the run so the last scrape sees the
    /// final values (Ctrl-C ends it at once)
    #[arg(long, default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub prometheus_linger: Duration,
    /// Push metrics to this Prometheus Pushgateway (http://host:port) while the run goes and at its end
    #[arg(long, value_name = "URL")]
    pub prometheus_pushgateway: Option<String>,
    /// How often to push to the Pushgateway
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub prometheus_push_interval: Duration,
    /// Also scrape this Prometheus endpoint during the run (repeatable): a separate
    /// prefill/decode worker, a DCGM exporter, a node exporter. `<url>/metrics` is scraped by
    /// default; each step's window goes into its results' `server_metrics`
    #[arg(long, value_name = "URL")]
    pub server_metrics: Vec<String>,
    /// Scrape no server metrics (each step's `server_metrics` is null)
    #[arg(long)]
    pub no_server_metrics: bool,
    /// How often to scrape the server's metrics
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub server_metrics_interval: Duration,
    /// Also keep the server's series whose name matches this regex (unknown series are dropped
    /// by default), in `server_metrics.other`
    #[arg(long, value_name = "REGEX")]
    pub server_metrics_filter: Option<String>,
    /// Export one OTLP span per request to this collector (base URL, e.g. http://127.0.0.1:4318)
    /// and send a W3C traceparent header with each request; OTEL_EXPORTER_OTLP_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT also turn this on
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: http (HTTP/protobuf, port 4318) or grpc (port 4317)
    #[arg(long, default_value = "http", value_parser = ["http", "grpc"])]
    pub otlp_protocol: String,
    /// Share of requests traced (0..1), decided by trace id
    #[arg(long, default_value_t = 1.0)]
    pub trace_sample_ratio: f64,
    /// Add one span event per streamed chunk (large spans)
    #[arg(long)]
    pub trace_token_events: bool,
    /// Do not write the HTML report (<results>.html) at the end of the run
    #[arg(long)]
    pub no_report: bool,
    /// Also write one CSV row per step (every figure) to <results>.csv
    #[arg(long)]
    pub csv: bool,
    /// Scale-out: this process runs 1/N of the load (virtual users and rates), with its own seed
    /// and a `shard` label; `merge` joins the shards' results
    #[arg(long, env = "IB_SHARDS", default_value = "1")]
    pub shards: u32,
    /// With --shards: which part this process is, 0..N-1 (an Indexed Job's JOB_COMPLETION_INDEX)
    #[arg(long, env = "JOB_COMPLETION_INDEX", default_value = "0")]
    pub shard_index: u32,
    /// Replay a trace instead of the benchmark kind's steps: JSON Lines with each request's
    /// arrival time and input/output lengths, e.g. Mooncake's
    /// {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["dataset", "dataset_file", "rates"])]
    pub trace: Option<PathBuf>,
    /// With --trace: replay this many times faster (2 = twice the recorded rate)
    #[arg(long, default_value = "1.0")]
    pub trace_speedup: f64,
    /// Benchmark the built-in simulated server, in-process, offline: a short sweep
    #[arg(long, conflicts_with = "url")]
    pub demo: bool,
}
