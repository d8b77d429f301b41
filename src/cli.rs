//! The command line: the original tool's flags (same names, short forms, env vars, defaults)
//! plus ours, turned into a `RunConfig`. Parse errors are messages with exit code 2, never panics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{BenchmarkKind, Endpoint, RunConfig};
use crate::exit::RunError;
use crate::load::schedule::Arrival;
use crate::shutdown::Shutdown;
use crate::sim::{SimConfig, SimServer};
use crate::workload::options::TokenizeOptions;

#[derive(Parser, Debug)]
#[command(
    name = "inference-benchmarker",
    version,
    about = "Benchmark an OpenAI-compatible inference server: maximum throughput, rate sweeps, exact TTFT / inter-token / end-to-end latencies.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the built-in simulated inference server (OpenAI-compatible) until SIGINT/SIGTERM.
    // Boxed: the simulated server's flags are many, the other variants small.
    Sim(Box<SimArgs>),
    /// Render results files as one self-contained HTML report (several files overlay).
    Report(ReportArgs),
    /// Compare two results files step by step; regressions beyond --tolerance are marked.
    Compare(CompareArgs),
    /// Merge the results files of a sharded run (--shards) into one: exact percentiles from the
    /// union of the histograms, counts added up, rates over the window the shards covered.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Results files (JSON) of the shards
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the merged results
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also merge files that are not shards of one run (other run ids or settings): runs that
    /// loaded one server at the same time. The same results twice are refused even so
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results files (JSON) written by runs
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the report
    #[arg(short, long, default_value = "report.html")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The reference results file
    pub base: PathBuf,
    /// The results file to judge against it
    pub new: PathBuf,
    /// A figure worse than the base by more than this share is a regression (0.1 or 10%)
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    pub tolerance: f64,
    /// Exit with code 5 when any figure regressed (for CI)
    #[arg(long)]
    pub fail_on_regression: bool,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(flatten)]
    pub config: SimConfig,
    /// tokenizer.json (or a folder holding one) to count prompt tokens; default: the built-in one.
    #[arg(long)]
    pub tokenizer: Option<String>,
}

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

    /// API endpoint: chat (/v1/chat/completions) or completions (/v1/completions)
    #[arg(long, env = "IB_ENDPOINT", default_value = "chat", value_parser = ["chat", "completions"])]
    pub endpoint: String,
    /// Do not send "ignore_eos": true (for servers that reject unknown fields)
    #[arg(long)]
    pub no_ignore_eos: bool,
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

/// The demo's settings where the command line left the defaults: a whole sweep well under
/// two minutes.
const DEMO_WARMUP: Duration = Duration::from_secs(3);
const DEMO_DURATION: Duration = Duration::from_secs(8);
const DEMO_NUM_RATES: u64 = 5;
const DEMO_MAX_VUS: u64 = 64;
const DEMO_PROMPT: &str = "num_tokens=200,min_tokens=200,max_tokens=200,variance=0";
const DEMO_DECODE: &str = "num_tokens=64,min_tokens=64,max_tokens=64,variance=0";

/// A duration of 0 or more. The flags taking one accept a leading hyphen, so that `-d -5s`
/// reaches this message instead of being read as an unknown flag `-5`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if negative(s) {
        return Err(format!(
            "'{s}' is negative: a duration is 0s or more; e.g. 30s, 2m, 1h"
        ));
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration ({e}); e.g. 30s, 2m, 1h"))
}

/// A duration above 0 (a step, a timeout, an interval).
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = if negative(s) {
        Duration::ZERO
    } else {
        parse_duration(s)?
    };
    if d.is_zero() {
        return Err(format!(
            "'{s}': the duration must be positive; e.g. 30s, 2m, 1h"
        ));
    }
    Ok(d)
}

/// A duration with a minus sign, e.g. `-5s`.
fn negative(s: &str) -> bool {
    s.trim()
        .strip_prefix('-')
        .is_some_and(|m| humantime::parse_duration(m.trim()).is_ok())
}

/// `IP:PORT` or `HOST:PORT`, a host name resolved now (IPv4 first: what `localhost` scrapes
/// usually reach).
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let t = s.trim();
    if let Ok(addr) = t.parse() {
        return Ok(addr);
    }
    if t.rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "'{s}' is not HOST:PORT or IP:PORT; e.g. 127.0.0.1:9464"
        ));
    }
    let addrs: Vec<std::net::SocketAddr> = t
        .to_socket_addrs()
        .map_err(|e| format!("'{s}': cannot resolve the host ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{s}': the host has no address"))
}

/// A secret from a file: trimmed, never echoed in an error.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--api-key-file {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!(
            "--api-key-file {}: the file is empty",
            path.display()
        ));
    }
    Ok(key.to_string())
}

/// A share: `0.25` or `25%`, between 0 and 1.
fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a share (e.g. 0.5 or 50%)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("'{s}' must be between 0 and 1 (or 0% and 100%)"))
    }
}

fn parse_kind(s: &str) -> Result<BenchmarkKind, String> {
    match s.to_ascii_lowercase().as_str() {
        "throughput" => Ok(BenchmarkKind::Throughput),
        "rate" => Ok(BenchmarkKind::Rate),
        "sweep" => Ok(BenchmarkKind::Sweep),
        _ => Err(format!(
            "unknown --benchmark-kind '{s}': use throughput, rate or sweep"
        )),
    }
}

fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    match s {
        "chat" => Ok(Endpoint::Chat),
        "completions" => Ok(Endpoint::Completions),
        _ => Err(format!("unknown --endpoint '{s}': use chat or completions")),
    }
}

/// `key=value,key=value`; keys and values trimmed, empty keys refused.
pub fn parse_key_values(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' in --extra-meta is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("'{item}' in --extra-meta has an empty key"));
        }
        map.insert(k.to_string(), v.trim().to_string());
    }
    Ok(map)
}

fn parse_length(flag: &str, s: Option<&str>) -> Result<Option<TokenizeOptions>, String> {
    s.map(|s| s.parse().map_err(|e| format!("--{flag}: {e}")))
        .transpose()
}

fn random_run_id() -> String {
    format!("{:07x}", rand::random::<u32>() & 0x0fff_ffff)
}

fn is_default(m: &ArgMatches, id: &str) -> bool {
    !matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
    )
}

impl RunArgs {
    /// Checks every value and builds the run's configuration.
    pub fn into_config(self, m: &ArgMatches) -> Result<RunConfig, String> {
        let mut cfg = RunConfig {
            url: self.url,
            api_key: match &self.api_key_file {
                Some(path) => Some(read_secret(path)?),
                None => self.api_key.filter(|k| !k.is_empty()),
            },
            tokenizer_name: self.tokenizer_name,
            model_name: self.model_name,
            max_vus: self.max_vus,
            vus: self.vus,
            duration: self.duration,
            rates: self.rates,
            num_rates: self.num_rates,
            profile: None,
            benchmark_kind: parse_kind(&self.benchmark_kind)?,
            warmup: self.warmup,
            prompt_options: parse_length("prompt-options", self.prompt_options.as_deref())?,
            decode_options: parse_length("decode-options", self.decode_options.as_deref())?
                .or_else(|| Some(TokenizeOptions::fixed(crate::config::DEFAULT_OUTPUT_TOKENS))),
            draw_prompt_lengths: self.draw_prompt_lengths,
            dataset: self.dataset,
            dataset_file: self.dataset_file,
            extra_meta: self
                .extra_meta
                .as_deref()
                .map(parse_key_values)
                .transpose()?
                .unwrap_or_default(),
            run_id_names_file: self.run_id.is_some(),
            run_id: self.run_id.unwrap_or_else(random_run_id),
            endpoint: parse_endpoint(&self.endpoint)?,
            ignore_eos: !self.no_ignore_eos,
            workers: self
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            output_dir: self.output_dir,
            save_requests: self.save_requests,
            no_console: self.no_console,
            no_report: self.no_report,
            csv: self.csv,
            seed: self.seed,
            max_context_tokens: self.max_context_tokens,
            arrival: Arrival::parse(&self.arrival, self.burstiness)?,
            max_error_rate: (self.max_error_rate < 1.0).then_some(self.max_error_rate),
            stop_when_saturated: !self.no_saturation_stop,
            prometheus_listen: self.prometheus_listen,
            control_listen: self.control_listen,
            prometheus_linger: self.prometheus_linger,
            prometheus_pushgateway: self.prometheus_pushgateway,
            prometheus_push_interval: self.prometheus_push_interval,
            thresholds: self.thresholds,
            slo: self.slo.as_deref().map(str::parse).transpose()?,
            queue_when_saturated: self.queue_when_saturated,
            ramp_up: self.ramp_up,
            ca_cert: self.ca_cert,
            insecure: self.insecure,
            retries: self.retries,
            otlp_endpoint: self.otlp_endpoint,
            otlp_protocol: match self.otlp_protocol.as_str() {
                "grpc" => sinks::otlp::OtlpProtocol::Grpc,
                _ => sinks::otlp::OtlpProtocol::Http,
            },
            trace_sample_ratio: sinks::otlp::TraceSampler::new(self.trace_sample_ratio)
                .map_err(|e| format!("--trace-sample-ratio: {e}"))?
                .ratio(),
            trace_token_events: self.trace_token_events,
            shard: None,
            trace: self.trace,
            trace_speedup: self.trace_speedup,
            extra_sinks: Default::default(),
            test_hooks: Default::default(),
        };
        if let Some(profile) = self.profile {
            apply_profile_keeping_flags(&profile, &mut cfg, m)?;
        }
        // The original tool's users give `-r 2,4` without `-b rate`: the rates they give run.
        if cfg.rates.is_some() && is_default(m, "benchmark_kind") {
            cfg.benchmark_kind = BenchmarkKind::Rate;
        }
        if self.demo {
            apply_demo_defaults(&mut cfg, m)?;
        }
        if let Some(shard) = crate::shard::Shard::new(self.shards, self.shard_index)? {
            shard.apply(&mut cfg)?;
        }
        validate(&cfg)?;
        Ok(cfg)
    }
}

/// A profile sets its values; flags given explicitly on the command line still win.
fn apply_profile_keeping_flags(
    profile: &str,
    cfg: &mut RunConfig,
    m: &ArgMatches,
) -> Result<(), String> {
    let explicit = cfg.clone();
    crate::workload::profiles::apply_profile(profile, cfg)?;
    cfg.profile = Some(profile.to_string());
    macro_rules! keep {
        ($($field:ident => $id:literal),*) => {
            $(if !is_default(m, $id) { cfg.$field = explicit.$field.clone(); })*
        };
    }
    keep!(max_vus => "max_vus", duration => "duration", rates => "rates", num_rates => "num_rates",
          benchmark_kind => "benchmark_kind", warmup => "warmup", prompt_options => "prompt_options",
          decode_options => "decode_options", dataset => "dataset", dataset_file => "dataset_file");
    Ok(())
}

fn apply_demo_defaults(cfg: &mut RunConfig, m: &ArgMatches) -> Result<(), String> {
    if is_default(m, "warmup") {
        cfg.warmup = DEMO_WARMUP;
    }
    if is_default(m, "duration") {
        cfg.duration = DEMO_DURATION;
    }
    if is_default(m, "num_rates") {
        cfg.num_rates = DEMO_NUM_RATES;
    }
    if is_default(m, "max_vus") {
        cfg.max_vus = DEMO_MAX_VUS;
    }
    // Synthetic prompts unless a dataset is given: the demo needs no network and no files.
    if cfg.dataset.is_none() && cfg.dataset_file.is_none() {
        cfg.dataset = Some(crate::workload::dataset::SYNTHETIC.into());
        if cfg.prompt_options.is_none() {
            cfg.prompt_options = parse_length("prompt-options", Some(DEMO_PROMPT))?;
        }
    }
    if is_default(m, "decode_options") {
        cfg.decode_options = parse_length("decode-options", Some(DEMO_DECODE))?;
    }
    Ok(())
}

pub fn validate(cfg: &RunConfig) -> Result<(), String> {
    if cfg.max_vus == 0 {
        return Err("--max-vus must be at least 1".into());
    }
    if cfg.duration.is_zero() {
        return Err("--duration must be more than 0s".into());
    }
    if cfg.num_rates == 0 && cfg.benchmark_kind == BenchmarkKind::Sweep {
        return Err("--num-rates must be at least 1 for a sweep".into());
    }
    if let Some(r) = cfg
        .rates
        .iter()
        .flatten()
        .find(|r| !(r.is_finite() && **r > 0.0))
    {
        return Err(format!("--rates must be positive numbers, got {r}"));
    }
    if cfg.benchmark_kind == BenchmarkKind::Rate && cfg.rates.as_ref().is_none_or(|r| r.is_empty())
    {
        return Err("--benchmark-kind rate needs --rates (e.g. --rates 1,5,10)".into());
    }
    if cfg.rates.is_some() && cfg.benchmark_kind != BenchmarkKind::Rate {
        return Err(format!(
            "--rates runs rate steps, but --benchmark-kind is {}: give -b rate, or leave -b out",
            crate::results_file::original_kind(cfg.benchmark_kind).to_ascii_lowercase()
        ));
    }
    if cfg.insecure {
        eprintln!("warning: --insecure: the server's TLS certificate is not verified");
    }
    if !cfg.ramp_up.is_zero() && cfg.ramp_up >= cfg.duration {
        return Err("--ramp-up must be shorter than --duration".into());
    }
    for t in &cfg.thresholds {
        t.parse::<crate::thresholds::Threshold>()?;
    }
    if cfg.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if !(cfg.trace_speedup.is_finite() && cfg.trace_speedup > 0.0) {
        return Err(format!(
            "--trace-speedup must be a positive number, got {}",
            cfg.trace_speedup
        ));
    }
    if cfg.request_timeout.is_zero() {
        return Err("--request-timeout must be more than 0s".into());
    }
    Ok(())
}

/// The binary's whole life: parse, run, report. Returns the process exit code.
pub fn main() -> i32 {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    init_logging();
    match cli.command {
        Some(Command::Sim(args)) => run_sim(*args),
        Some(Command::Report(args)) => run_report(args),
        Some(Command::Compare(args)) => run_compare(args),
        Some(Command::Merge(args)) => run_merge(args),
        None => run_benchmark(cli.run, &matches),
    }
}

fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .try_init();
}

fn run_sim(args: SimArgs) -> i32 {
    let tokenizer = match crate::workload::tokenizer::load(args.tokenizer.as_deref()) {
        Ok(t) => t.tokenizer,
        Err(e) => return fail(&RunError::Config(e)),
    };
    match crate::sim::run_cli(args.config, Some(tokenizer)) {
        Ok(()) => 0,
        Err(e) if crate::sim::is_config_error(&e) => fail(&RunError::Config(e.to_string())),
        Err(e) => fail(&RunError::Internal(format!("simulated server: {e}"))),
    }
}

fn run_report(args: ReportArgs) -> i32 {
    match crate::report::write_report(&args.results, &args.output) {
        Ok(()) => {
            println!("report: {}", args.output.display());
            0
        }
        Err(e) => fail(&RunError::Config(e)),
    }
}

/// Exit code of `compare --fail-on-regression` when a figure regressed: the same as a failed
/// `--threshold` gate.
const REGRESSION_EXIT: i32 = 5;

fn run_compare(args: CompareArgs) -> i32 {
    let docs = crate::compare::load(&args.base)
        .and_then(|b| crate::compare::load(&args.new).map(|n| (b, n)));
    let (base, new) = match docs {
        Ok(d) => d,
        Err(e) => return fail(&RunError::Config(e)),
    };
    let cmp = crate::compare::compare(&base, &new, args.tolerance);
    print!("{}", crate::compare::render(&cmp));
    if args.fail_on_regression && cmp.regressions() > 0 {
        REGRESSION_EXIT
    } else {
        0
    }
}

fn run_merge(args: MergeArgs) -> i32 {
    match crate::merge::merge_files(&args.results, &args.output, args.force) {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => fail(&RunError::Config(e)),
    }
}

fn run_benchmark(args: RunArgs, matches: &ArgMatches) -> i32 {
    let demo = args.demo;
    let mut cfg = match args.into_config(matches) {
        Ok(c) => c,
        Err(e) => return fail(&RunError::Config(e)),
    };
    let sim = if demo {
        match start_demo_server() {
            Ok(s) => {
                cfg.url = s.url();
                eprintln!("demo: simulated server on {}", cfg.url);
                Some(s)
            }
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    let result = crate::run_with(cfg, Shutdown::new(), true);
    if let Some(s) = sim {
        s.stop();
    }
    // The summary table was printed when the run ended (before any Prometheus linger).
    match result {
        Ok(_) => 0,
        Err(e) => fail(&e),
    }
}

fn start_demo_server() -> Result<SimServer, RunError> {
    let tokenizer = crate::workload::tokenizer::load(None).map_err(RunError::Config)?;
    SimServer::start(SimConfig::default(), Some(tokenizer.tokenizer))
        .map_err(|e| RunError::Internal(format!("cannot start the simulated server: {e}")))
}

fn fail(e: &RunError) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunConfig, String> {
        let mut full = vec!["inference-benchmarker"];
        full.extend_from_slice(args);
        let m = Cli::command()
            .try_get_matches_from(full)
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&m).map_err(|e| e.to_string())?;
        cli.run.into_config(&m)
    }

    #[test]
    fn defaults_are_the_original_tools() {
        let c = parse(&[]).unwrap();
        let lib = RunConfig::new("http://localhost:8000");
        assert_eq!(
            serde_json::to_value(RunConfig {
                run_id: lib.run_id.clone(),
                ..c.clone()
            })
            .unwrap(),
            serde_json::to_value(&lib).unwrap(),
            "the command line's defaults are RunConfig::new's"
        );
        assert_eq!(c.max_vus, 128);
        assert_eq!(c.duration, Duration::from_secs(120));
        assert_eq!(c.warmup, Duration::from_secs(30));
        assert_eq!(c.num_rates, 10);
        assert_eq!(c.benchmark_kind, BenchmarkKind::Sweep);
        assert_eq!(c.url, "http://localhost:8000");
        assert!(c.ignore_eos);
        assert_eq!(
            c.decode_options,
            Some(TokenizeOptions::fixed(800)),
            "bounded outputs"
        );
        assert_eq!(c.max_error_rate, Some(0.5));
        assert_eq!(
            parse(&["--max-error-rate", "1"]).unwrap().max_error_rate,
            None
        );
        assert_eq!(c.request_timeout, crate::config::DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.shutdown_grace, crate::config::DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.run_id.len(), 7);
    }

    #[test]
    fn short_forms_and_rates() {
        let c = parse(&[
            "-m",
            "8",
            "-d",
            "5s",
            "-b",
            "rate",
            "-r",
            "1,2.5",
            "-r",
            "4",
            "-w",
            "0s",
            "-u",
            "http://h:1/p",
            "-n",
        ])
        .unwrap();
        assert_eq!(c.max_vus, 8);
        assert_eq!(c.duration, Duration::from_secs(5));
        assert_eq!(c.rates, Some(vec![1.0, 2.5, 4.0]));
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        assert!(c.warmup.is_zero());
        assert!(c.no_console);
        assert_eq!(c.url, "http://h:1/p");
    }

    #[test]
    fn bad_values_are_messages() {
        for (args, needle) in [
            (vec!["-b", "optimum"], "benchmark-kind"),
            (vec!["-d", "soon"], "not a duration"),
            (vec!["-m", "0"], "max-vus"),
            (vec!["-b", "rate"], "needs --rates"),
            (vec!["-b", "rate", "-r", "-1"], "positive"),
            (vec!["--extra-meta", "novalue"], "key=value"),
            (vec!["--decode-options", "num_tokens=x"], "decode-options"),
            (
                vec!["-b", "sweep", "-r", "2,4"],
                "give -b rate, or leave -b out",
            ),
            (
                vec!["-b", "throughput", "-r", "2"],
                "--benchmark-kind is throughput",
            ),
            (vec!["--arrival", "uniform"], "--arrival"),
            (vec!["--max-error-rate", "150%"], "between 0 and 1"),
            (vec!["--threshold", "p97(ttft)<1"], "unknown aggregation"),
            (vec!["--slo", "tpot=5ms"], "--slo: unknown objective"),
            (vec!["-d", "10s", "--ramp-up", "10s"], "--ramp-up"),
            (
                vec!["--arrival", "gamma", "--burstiness", "0"],
                "--burstiness",
            ),
        ] {
            let err = parse(&args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn durations_are_positive_where_zero_means_nothing() {
        for (args, needle) in [
            (vec!["-d", "-5s"], "the duration must be positive"),
            (vec!["-d", "0s"], "the duration must be positive"),
            (vec!["--request-timeout", "0s"], "must be positive"),
            (
                vec!["--prometheus-push-interval", "-1s"],
                "must be positive",
            ),
            (vec!["-w", "-1s"], "negative"),
            (vec!["--shutdown-grace", "-1s"], "negative"),
            (vec!["-d", "--rates"], "not a duration"),
        ] {
            let err = parse(&args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        let c = parse(&[
            "-w",
            "0s",
            "--shutdown-grace",
            "0s",
            "--prometheus-linger",
            "0s",
        ]);
        let c = c.unwrap();
        assert!(c.warmup.is_zero() && c.shutdown_grace.is_zero());
    }

    #[test]
    fn listen_addresses_take_host_names() {
        let c = parse(&["--prometheus-listen", "localhost:9464"]).unwrap();
        let addr = c.prometheus_listen.unwrap();
        assert!(addr.ip().is_loopback() && addr.port() == 9464, "{addr}");
        let c = parse(&["--prometheus-listen", "[::1]:9464"]).unwrap();
        assert_eq!(c.prometheus_listen.unwrap().to_string(), "[::1]:9464");
        for bad in ["localhost", "9464", ":9464", "localhost:x"] {
            let err = parse(&["--prometheus-listen", bad]).unwrap_err();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn rates_alone_run_as_the_rate_benchmark() {
        let c = parse(&["-r", "2,4"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        assert_eq!(c.rates, Some(vec![2.0, 4.0]));
        // The original tool's spelling is accepted too, in any case.
        let c = parse(&["-b", "Rate", "-r", "1"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        // With a profile (its sweep is the default kind, not an explicit one).
        let c = parse(&["--profile", "chat", "-r", "3"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
    }

    #[test]
    fn run_id_is_any_text_and_names_the_file_when_given() {
        let c = parse(&["--run-id", "llama 8B / tp=2"]).unwrap();
        assert_eq!(c.run_id, "llama 8B / tp=2");
        assert!(c.run_id_names_file);
        assert_eq!(c.request_id_prefix(), "llama_8B___tp_2");
        assert!(!parse(&[]).unwrap().run_id_names_file);
    }

    #[test]
    fn no_dataset_is_the_original_default_and_the_demo_is_synthetic() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.dataset.as_deref(), c.dataset_file.as_deref()),
            (None, None)
        );
        let c = parse(&["--demo"]).unwrap();
        assert_eq!(c.dataset.as_deref(), Some("synthetic"));
        let c = parse(&["--demo", "--dataset-file", "d.json"]).unwrap();
        assert_eq!(c.dataset, None);
        assert!(c.prompt_options.is_none());
    }

    #[test]
    fn help_says_what_the_tool_does() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for needle in [
            "Hugging Face hub model id",
            "Hugging Face hub dataset id",
            "JSON Lines",
            "ShareGPT",
            "[possible values: throughput, rate, sweep]",
            "[possible values: constant, poisson, gamma]",
            "[possible values: chat, completions]",
            "--draw-prompt-lengths",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}");
        }
        let sim = cmd
            .find_subcommand_mut("sim")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(sim.contains("drop-mid-stream=N") && sim.contains("empty-body"));
        for h in [help, sim] {
            assert!(!h.contains(".rs"), "help points into the source: {h}");
        }
    }

    #[test]
    fn extra_meta_and_api_key() {
        let c = parse(&["--extra-meta", "gpu=h100, engine=vllm", "-a", "sk-x"]).unwrap();
        assert_eq!(c.extra_meta.get("engine").map(String::as_str), Some("vllm"));
        assert_eq!(c.api_key.as_deref(), Some("sk-x"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("sk-x"),
            "the API key must never be serialized"
        );
    }

    #[test]
    fn api_key_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(
            parse(&["--api-key-file", p]).unwrap().api_key.as_deref(),
            Some("sk-from-file")
        );
        std::fs::write(&path, "  \n").unwrap();
        assert!(parse(&["--api-key-file", p]).unwrap_err().contains("empty"));
        let missing = dir.path().join("none");
        let err = parse(&["--api-key-file", missing.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("--api-key-file"), "{err}");
        assert!(
            parse(&["--api-key-file", p, "-a", "x"]).is_err(),
            "one or the other"
        );
    }

    #[test]
    fn profile_values_yield_to_explicit_flags() {
        let c = parse(&["--profile", "fixed-length", "-d", "7s"]).unwrap();
        assert_eq!(c.duration, Duration::from_secs(7));
        assert_eq!(
            c.prompt_options.as_ref().and_then(|p| p.num_tokens),
            Some(200)
        );
        assert_eq!(c.profile.as_deref(), Some("fixed-length"));
    }
}
