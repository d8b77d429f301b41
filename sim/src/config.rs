//! Configuration of the simulated server: every knob is a flag of the `sim` subcommand, with its
//! default held in a named constant so `SimConfig::default()` and the CLI agree.
//!
//! The defaults describe a small engine that saturates at a few tens of requests per second with
//! ~150-token prompts and ~48 output tokens: 32 slots, a decode step of 8 ms + 0.5 ms per running
//! sequence (24 ms with a full batch, i.e. ~1,300 tokens/s) and 20 µs of prefill per uncached
//! prompt token. A rate sweep against it shows the knee within a few seconds per step, even on a
//! 2-core machine shared with the load generator.

use std::time::Duration;

/// Default listening address.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port of the `sim` subcommand (`SimConfig::default()` uses 0: any free port).
pub const DEFAULT_PORT: u16 = 8000;
/// Default number of actix worker threads.
pub const DEFAULT_WORKERS: usize = 1;
/// Default served model name (`/v1/models`; other names get 404).
pub const DEFAULT_MODEL_NAME: &str = "simulated";
/// Default number of batch slots (sequences decoded together).
pub const DEFAULT_SLOTS: usize = 32;
/// Default prefill cost per uncached prompt token, in microseconds.
pub const DEFAULT_PREFILL_US_PER_TOKEN: f64 = 20.0;
/// Default decode step time with an empty batch, in milliseconds.
pub const DEFAULT_DECODE_STEP_MS: f64 = 8.0;
/// Default growth of the decode step per running sequence, in microseconds.
pub const DEFAULT_DECODE_US_PER_SEQ: f64 = 500.0;
/// Default prefix-cache capacity, in blocks (0 disables the cache).
pub const DEFAULT_PREFIX_CACHE_BLOCKS: usize = 4096;
/// Default prefix-cache block size in prompt bytes (64 bytes ≈ 16 tokens, vLLM's block size).
pub const DEFAULT_BLOCK_SIZE_BYTES: usize = 64;
/// Default waiting-queue bound: 0 = unbounded, like vLLM.
pub const DEFAULT_MAX_QUEUE: usize = 0;
/// Default `max_tokens` when a request does not give one.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// Default mean output length when the sequence may stop at EOS (`ignore_eos` false).
pub const DEFAULT_MEAN_OUTPUT_TOKENS: f64 = 64.0;
/// Default context length: prompt + max_tokens beyond it is a 400, as in vLLM.
pub const DEFAULT_MAX_MODEL_LEN: u64 = 32_768;
/// Default cap on kept per-request records (beyond it they are counted, not kept).
pub const DEFAULT_RECORD_CAP: usize = 1_000_000;
/// Default KV cache capacity in tokens (`vllm:kv_cache_usage_perc`): 32 slots × 4,096 tokens, so
/// a full batch of ordinary requests stays well below 1.
pub const DEFAULT_KV_CACHE_TOKENS: u64 = 131_072;
/// Default power of the simulated GPU when idle, in watts (`--gpu-metrics`).
pub const DEFAULT_GPU_IDLE_WATTS: f64 = 60.0;
/// Default power of the simulated GPU at full utilization, in watts (`--gpu-metrics`).
pub const DEFAULT_GPU_MAX_WATTS: f64 = 400.0;
/// Default cost of an embeddings or rerank request per input token, in microseconds.
pub const DEFAULT_POOLING_US_PER_TOKEN: f64 = 5.0;
/// Default RNG seed (output lengths, ids): runs are reproducible unless told otherwise.
pub const DEFAULT_SEED: u64 = 0;

/// Parameters of the simulated inference server.
///
/// Two timing modes:
/// - engine mode (default): a continuous-batching engine model (see `engine.rs`): `--slots`
///   sequences run together, a FIFO queue holds the rest, each step takes
///   `decode-step + decode-us-per-seq × batch + prefill-us-per-token × new uncached prompt tokens`
///   and gives one token to every running sequence;
/// - fixed-timing mode (`--fixed-ttft-ms` and/or `--fixed-itl-ms`): requests are independent;
///   the first token is due at receipt + TTFT and token k at first + k × ITL (absolute times).
///   A missing one of the two is 0;
/// - random-timing mode (`--random-ttft-ms MIN:MAX` and/or `--random-itl-ms MIN:MAX`, exclusive
///   with the fixed flags): requests are independent; each request draws its TTFT and each gap
///   between two tokens its ITL, uniformly in the range, from an RNG seeded by `--seed` (draws
///   follow arrival order). Token k is due at receipt + TTFT + the sum of its k gaps (absolute
///   times: lateness of one token does not shift the next). A missing one of the two is 0.
///
/// `--max-queue` defaults to unbounded, as in vLLM: past the knee the queue (and TTFT) grows,
/// which is what a benchmark of a real engine shows; the generator's own concurrency cap bounds
/// it. A positive bound sheds load instead, answering 503 when the waiting queue is full.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_HOST)]
    pub host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// HTTP worker threads.
    #[arg(long, default_value_t = DEFAULT_WORKERS, value_parser = clap::value_parser!(usize))]
    pub workers: usize,
    /// Model name served (requests naming another model get 404).
    #[arg(long, default_value = DEFAULT_MODEL_NAME)]
    pub model_name: String,
    /// Batch slots: sequences decoded together; more requests wait in a FIFO queue.
    #[arg(long, default_value_t = DEFAULT_SLOTS)]
    pub slots: usize,
    /// Prefill time per uncached prompt token, in microseconds.
    #[arg(long, default_value_t = DEFAULT_PREFILL_US_PER_TOKEN)]
    pub prefill_us_per_token: f64,
    /// Decode step time with an empty batch, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_DECODE_STEP_MS)]
    pub decode_step_ms: f64,
    /// Decode step growth per running sequence, in microseconds.
    #[arg(long, default_value_t = DEFAULT_DECODE_US_PER_SEQ)]
    pub decode_us_per_seq: f64,
    /// Prefix cache capacity in blocks (LRU; 0 disables it).
    #[arg(long, default_value_t = DEFAULT_PREFIX_CACHE_BLOCKS)]
    pub prefix_cache_blocks: usize,
    /// Prefix cache block size, in prompt bytes.
    #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE_BYTES)]
    pub block_size_bytes: usize,
    /// Waiting-queue bound; when full, new requests get 503 (0: unbounded).
    #[arg(long, default_value_t = DEFAULT_MAX_QUEUE)]
    pub max_queue: usize,
    /// `max_tokens` used when the request gives none.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub default_max_tokens: u32,
    /// Mean output length when EOS may stop the sequence (geometric), capped by max_tokens.
    #[arg(long, default_value_t = DEFAULT_MEAN_OUTPUT_TOKENS)]
    pub mean_output_tokens: f64,
    /// Context length: requests with prompt + max_tokens above it get 400.
    #[arg(long, default_value_t = DEFAULT_MAX_MODEL_LEN)]
    pub max_model_len: u64,
    /// Fixed-timing mode: time to first token, in milliseconds, for every request.
    #[arg(long)]
    pub fixed_ttft_ms: Option<f64>,
    /// Fixed-timing mode: time between tokens, in milliseconds, for every request.
    #[arg(long)]
    pub fixed_itl_ms: Option<f64>,
    /// Random-timing mode: each request's time to first token, drawn uniformly in MIN:MAX
    /// milliseconds (seeded by --seed; not with --fixed-*).
    #[arg(long, value_name = "MIN:MAX", conflicts_with_all = ["fixed_ttft_ms", "fixed_itl_ms"])]
    pub random_ttft_ms: Option<MsRange>,
    /// Random-timing mode: each gap between two tokens, drawn uniformly in MIN:MAX milliseconds
    /// (seeded by --seed; not with --fixed-*).
    #[arg(long, value_name = "MIN:MAX", conflicts_with_all = ["fixed_ttft_ms", "fixed_itl_ms"])]
    pub random_itl_ms: Option<MsRange>,
    /// A reasoning model (chat): each request's first N tokens are reasoning, streamed as
    /// reasoning deltas before the answer; they count toward max_tokens (a short max_tokens gives
    /// no answer) and are reported as usage.completion_tokens_details.reasoning_tokens. A
    /// request's own `x-sim-reasoning-tokens: N` header overrides it
    #[arg(long, default_value_t = 0)]
    pub reasoning_tokens: u32,
    /// The delta field reasoning is streamed in: reasoning_content (vLLM, SGLang, DeepSeek) or
    /// reasoning (newer vLLM, OpenRouter)
    #[arg(long, default_value = "reasoning_content", value_parser = ["reasoning_content", "reasoning"])]
    pub reasoning_field: String,
    /// Tokens per streamed chunk (as speculative decoding or some parsers stream): each event
    /// carries N tokens, handed to the body when the N-th is due (the last chunk may be shorter)
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// Keep a record of every request (token send times) for in-process inspection.
    #[arg(long)]
    pub record: bool,
    /// Keep records (as --record) and write them to PATH as JSON Lines, one request a line,
    /// when the server stops (SIGINT/SIGTERM); written to PATH.tmp, then renamed.
    #[arg(long, value_name = "PATH")]
    pub record_file: Option<std::path::PathBuf>,
    /// At most this many records are kept; the rest are only counted.
    #[arg(long, default_value_t = DEFAULT_RECORD_CAP)]
    pub record_cap: usize,
    /// Seed of the random choices (output lengths, ids, random-timing draws).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Inject a fault into a share of requests: SPEC[@SHARE], e.g. status=503@0.1 (repeatable;
    /// each request draws against the shares, the first match wins; a request's own
    /// `x-sim-fault: SPEC` header does the same). SPEC: status=CODE (4xx/5xx with an OpenAI
    /// error body), drop (headers, then the connection is cut), drop-mid-stream=N,
    /// stall=N:MS, slow-drip (each event in three pieces), bad-json=N, non-utf8=N, huge-line=N
    /// (a 10 MB line), error-event=N, missing-data=N, wrong-content-type, empty-body,
    /// open-after-done (the body never ends after [DONE]); N counts the tokens sent before the
    /// fault
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Answer the first N pre-flight probes of benchmarkers (requests with the
    /// `x-inference-benchmarker-probe` header) with 503, as a server still warming up or a
    /// flaky replica behind a balancer would: `--fault` rules with a share below 1 leave probes
    /// alone
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub fail_probes: u32,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// KV cache capacity in tokens, for `vllm:kv_cache_usage_perc` on /metrics: the tokens the
    /// running sequences hold (prompt + generated so far) over this, at most 1 (no preemption
    /// is modelled)
    #[arg(long, default_value_t = DEFAULT_KV_CACHE_TOKENS)]
    pub kv_cache_tokens: u64,
    /// Serve GET /dcgm/metrics like NVIDIA's dcgm-exporter, one simulated GPU (gpu="0",
    /// UUID="GPU-sim-0"): DCGM_FI_DEV_GPU_UTIL (%) = the batch of the engine step in progress
    /// over --slots (0 when idle; timing modes: requests being produced over --slots, at most
    /// 100), DCGM_FI_DEV_POWER_USAGE (W) = idle + (max − idle) × utilization,
    /// DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ since start) = the exact integral of that power,
    /// DCGM_FI_DEV_FB_USED (MiB) = a 16 GiB model footprint + 128 KiB per KV cache token in use
    #[arg(long)]
    pub gpu_metrics: bool,
    /// --gpu-metrics: power of the idle GPU, in watts
    #[arg(long, default_value_t = DEFAULT_GPU_IDLE_WATTS)]
    pub gpu_idle_watts: f64,
    /// --gpu-metrics: power at full utilization, in watts
    #[arg(long, default_value_t = DEFAULT_GPU_MAX_WATTS)]
    pub gpu_max_watts: f64,
    /// Embeddings and rerank: service time per input token, in microseconds (each request on
    /// its own, no batching).
    #[arg(long, default_value_t = DEFAULT_POOLING_US_PER_TOKEN)]
    pub pooling_us_per_token: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            host: DEFAULT_HOST.to_string(),
            port: 0,
            workers: DEFAULT_WORKERS,
            model_name: DEFAULT_MODEL_NAME.to_string(),
            slots: DEFAULT_SLOTS,
            prefill_us_per_token: DEFAULT_PREFILL_US_PER_TOKEN,
            decode_step_ms: DEFAULT_DECODE_STEP_MS,
            decode_us_per_seq: DEFAULT_DECODE_US_PER_SEQ,
            prefix_cache_blocks: DEFAULT_PREFIX_CACHE_BLOCKS,
            block_size_bytes: DEFAULT_BLOCK_SIZE_BYTES,
            max_queue: DEFAULT_MAX_QUEUE,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            mean_output_tokens: DEFAULT_MEAN_OUTPUT_TOKENS,
            max_model_len: DEFAULT_MAX_MODEL_LEN,
            fixed_ttft_ms: None,
            fixed_itl_ms: None,
            random_ttft_ms: None,
            random_itl_ms: None,
            reasoning_tokens: 0,
            reasoning_field: "reasoning_content".to_string(),
            tokens_per_chunk: 1,
            record: false,
            record_file: None,
            record_cap: DEFAULT_RECORD_CAP,
            seed: DEFAULT_SEED,
            faults: Vec::new(),
            fail_probes: 0,
            tls_cert: None,
            tls_key: None,
            kv_cache_tokens: DEFAULT_KV_CACHE_TOKENS,
            gpu_metrics: false,
            gpu_idle_watts: DEFAULT_GPU_IDLE_WATTS,
            gpu_max_watts: DEFAULT_GPU_MAX_WATTS,
            pooling_us_per_token: DEFAULT_POOLING_US_PER_TOKEN,
        }
    }
}

/// Fixed per-request timing (fixed-timing mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedTiming {
    pub ttft: Duration,
    pub itl: Duration,
}

/// A range of milliseconds, `MIN:MAX` on the command line (random-timing mode).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MsRange {
    pub min: f64,
    pub max: f64,
}

impl MsRange {
    /// Both ends finite, within 0..=1e9, and `min ≤ max`.
    fn check(&self) -> Result<(), String> {
        for value in [self.min, self.max] {
            if !(value.is_finite() && (0.0..=1e9).contains(&value)) {
                return Err(format!(
                    "{self}: both ends must be numbers of milliseconds between 0 and 1e9"
                ));
            }
        }
        if self.min > self.max {
            return Err(format!("{self}: MIN must not be above MAX"));
        }
        Ok(())
    }

    /// As durations (validated).
    fn durations(&self) -> DurationRange {
        DurationRange {
            min: ms(self.min),
            max: ms(self.max),
        }
    }
}

impl std::fmt::Display for MsRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.min, self.max)
    }
}

impl std::str::FromStr for MsRange {
    type Err = String;

    /// `MIN:MAX` in milliseconds, e.g. `5:50` or `0.5:2.5`.
    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("expected MIN:MAX in milliseconds (e.g. 5:50), got {text:?}");
        let (min, max) = text.split_once(':').ok_or_else(expected)?;
        let number = |part: &str| part.trim().parse::<f64>().map_err(|_| expected());
        let range = MsRange {
            min: number(min)?,
            max: number(max)?,
        };
        range.check()?;
        Ok(range)
    }
}

/// A closed range of durations to draw from uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    /// A uniform draw in `min..=max`, to the nanosecond.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        let (lo, hi) = (self.min.as_nanos(), self.max.as_nanos());
        if lo >= hi {
            return self.min;
        }
        // Validated ranges stay below 1e9 ms = 1e15 ns: u64 holds them.
        let (lo, hi) = (lo as u64, hi as u64);
        Duration::from_nanos(rng.random_range(lo..=hi))
    }
}

/// Per-request random timing (random-timing mode): TTFT drawn once per request, ITL once per
/// gap between two tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomTiming {
    pub ttft: DurationRange,
    pub itl: DurationRange,
}

impl SimConfig {
    /// The `--fault` rules, parsed.
    pub fn fault_rules(&self) -> Result<Vec<super::fault::FaultRule>, String> {
        self.faults.iter().map(|f| f.parse()).collect()
    }

    /// Checks every value; the message names the offending flag.
    pub fn validate(&self) -> Result<(), String> {
        self.fault_rules()?;
        positive_int("--workers", self.workers)?;
        positive_int("--slots", self.slots)?;
        positive_int("--block-size-bytes", self.block_size_bytes)?;
        positive_int("--tokens-per-chunk", self.tokens_per_chunk as usize)?;
        if !["reasoning_content", "reasoning"].contains(&self.reasoning_field.as_str()) {
            return Err(format!(
                "--reasoning-field must be reasoning_content or reasoning, got {:?}",
                self.reasoning_field
            ));
        }
        positive_int("--default-max-tokens", self.default_max_tokens as usize)?;
        if self.kv_cache_tokens == 0 {
            return Err("--kv-cache-tokens must be at least 1".into());
        }
        non_negative("--gpu-idle-watts", self.gpu_idle_watts)?;
        non_negative("--gpu-max-watts", self.gpu_max_watts)?;
        if self.gpu_idle_watts > self.gpu_max_watts {
            return Err(format!(
                "--gpu-idle-watts ({}) must not be above --gpu-max-watts ({})",
                self.gpu_idle_watts, self.gpu_max_watts
            ));
        }
        if self.model_name.is_empty() {
            return Err("--model-name must not be empty".into());
        }
        non_negative("--prefill-us-per-token", self.prefill_us_per_token)?;
        non_negative("--decode-step-ms", self.decode_step_ms)?;
        non_negative("--decode-us-per-seq", self.decode_us_per_seq)?;
        non_negative("--pooling-us-per-token", self.pooling_us_per_token)?;
        non_negative("--fixed-ttft-ms", self.fixed_ttft_ms.unwrap_or(0.0))?;
        non_negative("--fixed-itl-ms", self.fixed_itl_ms.unwrap_or(0.0))?;
        let random = [
            ("--random-ttft-ms", self.random_ttft_ms),
            ("--random-itl-ms", self.random_itl_ms),
        ];
        for (flag, range) in random {
            if let Some(range) = range {
                range.check().map_err(|e| format!("{flag} {e}"))?;
            }
        }
        let fixed = self.fixed_ttft_ms.is_some() || self.fixed_itl_ms.is_some();
        let randomized = self.random_ttft_ms.is_some() || self.random_itl_ms.is_some();
        if fixed && randomized {
            return Err(
                "--random-ttft-ms/--random-itl-ms cannot be combined with --fixed-ttft-ms/--fixed-itl-ms"
                    .into(),
            );
        }
        if self
            .record_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("--record-file must not be empty".into());
        }
        if !(self.mean_output_tokens.is_finite() && self.mean_output_tokens >= 1.0) {
            return Err(format!(
                "--mean-output-tokens must be at least 1, got {}",
                self.mean_output_tokens
            ));
        }
        if u64::from(self.default_max_tokens) >= self.max_model_len {
            return Err(format!(
                "--default-max-tokens ({}) must be below --max-model-len ({})",
                self.default_max_tokens, self.max_model_len
            ));
        }
        Ok(())
    }

    /// Some(timing) in fixed-timing mode. Call after `validate`.
    pub fn fixed_timing(&self) -> Option<FixedTiming> {
        if self.fixed_ttft_ms.is_none() && self.fixed_itl_ms.is_none() {
            return None;
        }
        Some(FixedTiming {
            ttft: ms(self.fixed_ttft_ms.unwrap_or(0.0)),
            itl: ms(self.fixed_itl_ms.unwrap_or(0.0)),
        })
    }

    /// Some(timing) in random-timing mode. Call after `validate`.
    pub fn random_timing(&self) -> Option<RandomTiming> {
        if self.random_ttft_ms.is_none() && self.random_itl_ms.is_none() {
            return None;
        }
        let zero = MsRange { min: 0.0, max: 0.0 };
        Some(RandomTiming {
            ttft: self.random_ttft_ms.unwrap_or(zero).durations(),
            itl: self.random_itl_ms.unwrap_or(zero).durations(),
        })
    }

    /// Whether per-request records are kept (`--record`, or `--record-file`).
    pub fn keeps_records(&self) -> bool {
        self.record || self.record_file.is_some()
    }

    /// The `--gpu-metrics` power model.
    pub fn power_model(&self) -> crate::metrics::PowerModel {
        crate::metrics::PowerModel {
            idle_watts: self.gpu_idle_watts,
            max_watts: self.gpu_max_watts,
        }
    }

    /// Bound of the waiting queue (None: unbounded).
    pub fn queue_bound(&self) -> Option<usize> {
        (self.max_queue > 0).then_some(self.max_queue)
    }
}

/// Milliseconds (validated: finite, non-negative) to a Duration.
pub(crate) fn ms(value: f64) -> Duration {
    Duration::from_secs_f64(value / 1e3)
}

/// Microseconds (validated: finite, non-negative) to a Duration.
pub(crate) fn us(value: f64) -> Duration {
    Duration::from_secs_f64(value / 1e6)
}

fn positive_int(flag: &str, value: usize) -> Result<(), String> {
    if value == 0 {
        return Err(format!("{flag} must be at least 1"));
    }
    Ok(())
}

fn non_negative(flag: &str, value: f64) -> Result<(), String> {
    // An upper bound keeps Duration::from_secs_f64 from panicking on absurd values.
    if !(value.is_finite() && (0.0..=1e9).contains(&value)) {
        return Err(format!(
            "{flag} must be a number between 0 and 1e9, got {value}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimConfig,
    }

    #[test]
    fn flag_defaults_match_default_except_port() {
        let parsed = Cli::parse_from(["sim"]).sim;
        assert_eq!(parsed.port, DEFAULT_PORT);
        let mut default = SimConfig::default();
        assert_eq!(default.port, 0);
        default.port = DEFAULT_PORT;
        assert_eq!(parsed, default);
        assert!(parsed.validate().is_ok());
        assert_eq!(parsed.fixed_timing(), None);
        assert_eq!(parsed.queue_bound(), None);
    }

    #[test]
    fn fixed_timing_mode_from_either_flag() {
        let cfg = Cli::parse_from(["sim", "--fixed-itl-ms", "20"]).sim;
        let timing = cfg.fixed_timing().expect("fixed mode");
        assert_eq!(timing.ttft, Duration::ZERO);
        assert_eq!(timing.itl, Duration::from_millis(20));
    }

    #[test]
    fn random_timing_mode_from_either_flag() {
        let cfg = Cli::parse_from([
            "sim",
            "--random-ttft-ms",
            "10:100",
            "--random-itl-ms",
            " 0.5 : 2.5",
        ])
        .sim;
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.fixed_timing(), None);
        let timing = cfg.random_timing().expect("random mode");
        assert_eq!(
            timing.ttft,
            DurationRange {
                min: Duration::from_millis(10),
                max: Duration::from_millis(100)
            }
        );
        assert_eq!(
            timing.itl,
            DurationRange {
                min: Duration::from_micros(500),
                max: Duration::from_micros(2500)
            }
        );

        // A missing one of the two is 0; a one-point range is allowed.
        let cfg = Cli::parse_from(["sim", "--random-itl-ms", "3:3"]).sim;
        let timing = cfg.random_timing().expect("random mode");
        assert_eq!(timing.ttft.max, Duration::ZERO);
        assert_eq!(timing.itl.min, Duration::from_millis(3));
        assert_eq!(
            timing.itl.sample(&mut rand::rng()),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn random_timing_ranges_are_checked_with_clear_messages() {
        for (arg, wants) in [
            ("5", "expected MIN:MAX"),
            ("a:b", "expected MIN:MAX"),
            ("1:2:3", "expected MIN:MAX"),
            ("", "expected MIN:MAX"),
            ("5:1", "MIN must not be above MAX"),
            ("-1:2", "between 0 and 1e9"),
            ("nan:1", "between 0 and 1e9"),
            ("1:inf", "between 0 and 1e9"),
            ("0:1e10", "between 0 and 1e9"),
        ] {
            let err =
                match Cli::try_parse_from(["sim".to_string(), format!("--random-itl-ms={arg}")]) {
                    Ok(_) => panic!("{arg:?} accepted"),
                    Err(e) => e.to_string(),
                };
            assert!(
                err.contains("--random-itl-ms") && err.contains(wants),
                "{arg:?}: {err}"
            );
        }

        // With the fixed flags: refused by the parser, and by `validate` for a built config.
        let err = Cli::try_parse_from(["sim", "--random-ttft-ms", "1:2", "--fixed-itl-ms", "5"])
            .err()
            .expect("conflict");
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        let mixed = SimConfig {
            random_itl_ms: Some(MsRange { min: 1.0, max: 2.0 }),
            fixed_ttft_ms: Some(5.0),
            ..Default::default()
        };
        assert!(mixed.validate().unwrap_err().contains("cannot be combined"));
        let reversed = SimConfig {
            random_ttft_ms: Some(MsRange { min: 5.0, max: 1.0 }),
            ..Default::default()
        };
        let err = reversed.validate().unwrap_err();
        assert!(
            err.contains("--random-ttft-ms 5:1") && err.contains("MIN must not be above MAX"),
            "{err}"
        );
    }

    #[test]
    fn uniform_draws_stay_in_range_and_follow_the_seed() {
        use rand::SeedableRng;
        let range = DurationRange {
            min: Duration::from_millis(5),
            max: Duration::from_millis(25),
        };
        let draws = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (0..10_000)
                .map(|_| range.sample(&mut rng))
                .collect::<Vec<_>>()
        };
        let a = draws(1);
        assert_eq!(a, draws(1), "same seed, same draws");
        assert_ne!(a, draws(2));
        assert!(a.iter().all(|d| (range.min..=range.max).contains(d)));
        let mean_ms = a.iter().map(Duration::as_secs_f64).sum::<f64>() / a.len() as f64 * 1e3;
        assert!((14.5..15.5).contains(&mean_ms), "mean {mean_ms} ms");
        // Spread over the range, not stuck at the ends: each fifth of it gets about 20 %.
        for fifth in 0..5u32 {
            let lo = range.min + Duration::from_millis(4) * fifth;
            let share = a
                .iter()
                .filter(|&&d| d >= lo && d < lo + Duration::from_millis(4))
                .count();
            assert!((1_700..2_300).contains(&share), "fifth {fifth}: {share}");
        }
    }

    #[test]
    fn record_file_keeps_records() {
        let cfg = Cli::parse_from(["sim", "--record-file", "out/records.jsonl"]).sim;
        assert!(!cfg.record);
        assert!(cfg.keeps_records());
        assert!(cfg.validate().is_ok());
        assert!(SimConfig::default().validate().is_ok());
        assert!(!SimConfig::default().keeps_records());
        let empty = SimConfig {
            record_file: Some(std::path::PathBuf::new()),
            ..Default::default()
        };
        assert!(empty.validate().unwrap_err().contains("--record-file"));
    }

    #[test]
    fn invalid_values_are_rejected() {
        let bad = [
            SimConfig {
                slots: 0,
                ..Default::default()
            },
            SimConfig {
                decode_step_ms: -1.0,
                ..Default::default()
            },
            SimConfig {
                prefill_us_per_token: f64::NAN,
                ..Default::default()
            },
            SimConfig {
                mean_output_tokens: 0.5,
                ..Default::default()
            },
            SimConfig {
                fixed_itl_ms: Some(f64::INFINITY),
                ..Default::default()
            },
            SimConfig {
                default_max_tokens: 100,
                max_model_len: 50,
                ..Default::default()
            },
            SimConfig {
                kv_cache_tokens: 0,
                ..Default::default()
            },
            SimConfig {
                gpu_idle_watts: 500.0,
                ..Default::default()
            },
            SimConfig {
                gpu_max_watts: f64::NAN,
                ..Default::default()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
