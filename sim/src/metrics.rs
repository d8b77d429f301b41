//! The server's own account of what it did, for a scraper: vLLM's `/metrics` series (Prometheus
//! text format 0.0.4, vLLM V1 names) and, with `--gpu-metrics`, a DCGM-exporter-like GPU at
//! `/dcgm/metrics` driven by a power model.
//!
//! Where each number comes from:
//! - counters are atomics updated where the event happens: prompt tokens and prefix-cache
//!   lookups at admission (the engine step that admits the sequence; at receipt in the timing
//!   modes, which have no queue and no cache), generation tokens when a token is handed to the
//!   response body (so they equal what clients received), `request_success_total` when the last
//!   token is;
//! - histograms are observed when tokens are sent: TTFT at a request's first token (from the
//!   handler's entry), TPOT once per request with at least two tokens (first to last token over
//!   tokens − 1), E2E when the last token is sent. A non-streaming response sends every token at
//!   once, when its body is produced (as the per-request record does), so its TPOT is 0;
//! - gauges are read at scrape time: the engine's running batch (the sequences the step in
//!   progress computes, one finishing in it included: the true concurrency, which the
//!   `--record` batch log holds over time) and waiting queue (timing modes: the
//!   requests being produced, none waiting), and the KV cache as the tokens the running
//!   sequences hold (prompt + generated so far) over `--kv-cache-tokens`, at most 1 (the model
//!   does not preempt, so `vllm:num_preemptions_total` stays 0).
//!
//! Every request the server serves counts, the benchmarker's pre-flight probes included (as on a
//! real server; only the per-request records leave probes out). A request cut short counts the
//! tokens it sent but no success and no E2E.
//!
//! The GPU: utilization is the batch of the step in progress over `--slots` (0 when the engine
//! is idle; timing modes: requests being produced over `--slots`, at most 1) — a load measure,
//! not DCGM's "a kernel was running" fraction, which saturates much earlier. Power is
//! `idle + (max − idle) × utilization`; energy integrates that power exactly: utilization is
//! piecewise constant and every change (and every scrape) first adds power × the time since the
//! last one. Memory is a fixed model footprint plus the KV cache in use.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::engine::{FinishReason, Step};

/// Content type of both exposition pages.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// vLLM V1's buckets of `vllm:time_to_first_token_seconds`.
pub const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM V1's buckets of `vllm:time_per_output_token_seconds`.
pub const TPOT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM V1's buckets of `vllm:e2e_request_latency_seconds`.
pub const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Framebuffer the model's weights and the runtime take, in MiB (an 8B model in bf16).
pub const MODEL_FOOTPRINT_MIB: f64 = 16_384.0;
/// KV cache bytes per token (Llama-3-8B: 2 × 32 layers × 8 KV heads × 128 × 2 bytes).
pub const KV_BYTES_PER_TOKEN: f64 = 131_072.0;

/// The GPU's power as a function of its utilization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerModel {
    pub idle_watts: f64,
    pub max_watts: f64,
}

impl PowerModel {
    /// `idle + (max − idle) × utilization`, utilization in 0..=1 (clamped).
    pub fn watts(&self, utilization: f64) -> f64 {
        let u = utilization.clamp(0.0, 1.0);
        self.idle_watts + (self.max_watts - self.idle_watts) * u
    }
}

/// The integral of the power model over time: utilization is piecewise constant, and each change
/// first adds the energy of the interval since the last update.
#[derive(Debug)]
pub struct EnergyMeter {
    model: PowerModel,
    since: Instant,
    utilization: f64,
    millijoules: f64,
}

impl EnergyMeter {
    pub fn new(model: PowerModel, start: Instant) -> Self {
        EnergyMeter {
            model,
            since: start,
            utilization: 0.0,
            millijoules: 0.0,
        }
    }

    /// Adds the energy up to `now` at the current utilization.
    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        self.millijoules += self.model.watts(self.utilization) * dt * 1e3;
        self.since = self.since.max(now);
    }

    /// The utilization changes at `now`.
    pub fn set_utilization(&mut self, now: Instant, utilization: f64) {
        self.advance(now);
        self.utilization = utilization.clamp(0.0, 1.0);
    }

    /// (utilization, watts, millijoules since start) at `now`.
    pub fn read(&mut self, now: Instant) -> (f64, f64, f64) {
        self.advance(now);
        let u = self.utilization;
        (u, self.model.watts(u), self.millijoules)
    }
}

/// A histogram of durations; one lock keeps buckets, count and sum consistent with each other.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<HistogramState>,
}

#[derive(Clone, Debug, Default)]
struct HistogramState {
    /// Per bucket (not cumulative), the last one for +Inf.
    counts: Vec<u64>,
    count: u64,
    sum_nanos: u128,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            inner: Mutex::new(HistogramState {
                counts: vec![0; bounds.len() + 1],
                ..Default::default()
            }),
        }
    }

    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = self.bounds.partition_point(|&le| le < secs);
        let mut inner = self.inner.lock();
        inner.counts[bucket] += 1;
        inner.count += 1;
        inner.sum_nanos += value.as_nanos();
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let state = self.inner.lock().clone();
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, count) in state.counts.iter().enumerate() {
            cumulative += count;
            let le = match self.bounds.get(i) {
                Some(bound) => format!("{bound:?}"),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = state.sum_nanos as f64 / 1e9;
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", state.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum:?}");
    }
}

/// The gauges, read from the engine (or the timing modes' producers) at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    pub running: u64,
    pub waiting: u64,
    /// Tokens the running sequences hold in the KV cache.
    pub kv_tokens: u64,
}

/// Every series the server exposes; shared by the workers and the engine loop.
#[derive(Debug)]
pub struct Metrics {
    model_label: String,
    kv_capacity_tokens: u64,
    slots: usize,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
    cache_queries: AtomicU64,
    cache_hits: AtomicU64,
    success_length: AtomicU64,
    success_stop: AtomicU64,
    pub ttft: Histogram,
    pub tpot: Histogram,
    pub e2e: Histogram,
    /// Timing modes: requests being produced, and the tokens they hold.
    producing: AtomicU64,
    producing_kv_tokens: AtomicU64,
    energy: Mutex<EnergyMeter>,
}

impl Metrics {
    pub fn new(model_name: &str, kv_capacity_tokens: u64, slots: usize, power: PowerModel) -> Self {
        Metrics {
            model_label: format!("model_name=\"{}\"", escape_label(model_name)),
            kv_capacity_tokens: kv_capacity_tokens.max(1),
            slots: slots.max(1),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            cache_queries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            success_length: AtomicU64::new(0),
            success_stop: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            tpot: Histogram::new(TPOT_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
            producing: AtomicU64::new(0),
            producing_kv_tokens: AtomicU64::new(0),
            energy: Mutex::new(EnergyMeter::new(power, Instant::now())),
        }
    }

    /// An engine step starts: its admissions, and the GPU busy with its batch.
    pub fn on_step_start(&self, step: &Step, now: Instant) {
        self.prompt_tokens
            .fetch_add(step.admitted_prompt_tokens, Relaxed);
        self.cache_queries
            .fetch_add(step.cache_queried_tokens, Relaxed);
        self.cache_hits.fetch_add(step.cache_hit_tokens, Relaxed);
        self.set_utilization(now, step.batch as f64 / self.slots as f64);
    }

    /// The engine has nothing to step.
    pub fn on_engine_idle(&self, now: Instant) {
        self.set_utilization(now, 0.0);
    }

    fn set_utilization(&self, now: Instant, utilization: f64) {
        self.energy.lock().set_utilization(now, utilization);
    }

    /// Timing modes: a request starts being produced (admitted at once).
    pub fn start_producing(self: &Arc<Self>, prompt_tokens: u64) -> Producing {
        self.prompt_tokens.fetch_add(prompt_tokens, Relaxed);
        self.producing_kv_tokens.fetch_add(prompt_tokens, Relaxed);
        self.change_producing(1, true);
        Producing {
            metrics: self.clone(),
            kv_tokens: prompt_tokens,
        }
    }

    fn change_producing(&self, by: u64, up: bool) {
        // Under the energy lock, so utilization changes are applied in order.
        let mut energy = self.energy.lock();
        let now = Instant::now();
        let producing = if up {
            self.producing.fetch_add(by, Relaxed) + by
        } else {
            self.producing.fetch_sub(by, Relaxed) - by
        };
        energy.set_utilization(now, producing as f64 / self.slots as f64);
    }

    /// Timing modes' gauges.
    pub fn producing_gauges(&self) -> Gauges {
        Gauges {
            running: self.producing.load(Relaxed),
            waiting: 0,
            kv_tokens: self.producing_kv_tokens.load(Relaxed),
        }
    }

    /// The tracker of one request's sent tokens, from its handler's entry.
    pub fn track(self: &Arc<Self>, received: Instant) -> RequestTracker {
        RequestTracker {
            metrics: self.clone(),
            received,
            first: None,
            tokens: 0,
        }
    }

    /// The vLLM page.
    pub fn render_vllm(&self, gauges: Gauges) -> String {
        let l = &self.model_label;
        let mut out = String::with_capacity(8 * 1024);
        let kv = (gauges.kv_tokens as f64 / self.kv_capacity_tokens as f64).min(1.0);
        let gauge_lines = [
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                gauges.running as f64,
            ),
            (
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                gauges.waiting as f64,
            ),
            (
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                kv,
            ),
        ];
        for (name, help, value) in gauge_lines {
            header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name}{{{l}}} {value:?}");
        }
        let counters = [
            (
                "vllm:num_preemptions_total",
                "Cumulative number of preemption from the engine.",
                0,
            ),
            (
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
                self.prompt_tokens.load(Relaxed),
            ),
            (
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                self.generation_tokens.load(Relaxed),
            ),
            (
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
                self.cache_queries.load(Relaxed),
            ),
            (
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
                self.cache_hits.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name}{{{l}}} {value}");
        }
        let name = "vllm:request_success_total";
        header(
            &mut out,
            name,
            "Count of successfully processed requests.",
            "counter",
        );
        for (reason, counter) in [
            (FinishReason::Length, &self.success_length),
            (FinishReason::Stop, &self.success_stop),
        ] {
            let value = counter.load(Relaxed);
            let reason = reason.as_str();
            let _ = writeln!(out, "{name}{{{l},finished_reason=\"{reason}\"}} {value}");
        }
        self.ttft.render(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            l,
        );
        self.tpot.render(
            &mut out,
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            l,
        );
        self.e2e.render(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            l,
        );
        out
    }

    /// The DCGM-exporter page of the one simulated GPU; `kv_tokens` as in [`Gauges`].
    pub fn render_dcgm(&self, hostname: &str, kv_tokens: u64) -> String {
        let (utilization, watts, millijoules) = self.energy.lock().read(Instant::now());
        let fb_used_mib = MODEL_FOOTPRINT_MIB + kv_tokens as f64 * KV_BYTES_PER_TOKEN / 1048576.0;
        let labels = format!(
            "gpu=\"0\",UUID=\"GPU-sim-0\",device=\"nvidia0\",modelName=\"Simulated GPU\",Hostname=\"{}\"",
            escape_label(hostname)
        );
        let mut out = String::with_capacity(1024);
        let series = [
            (
                "DCGM_FI_DEV_GPU_UTIL",
                "GPU utilization (in %).",
                "gauge",
                utilization * 100.0,
            ),
            (
                "DCGM_FI_DEV_FB_USED",
                "Framebuffer memory used (in MiB).",
                "gauge",
                fb_used_mib.round(),
            ),
            (
                "DCGM_FI_DEV_POWER_USAGE",
                "Power draw (in W).",
                "gauge",
                watts,
            ),
            (
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                "Total energy consumption since boot (in mJ).",
                "counter",
                millijoules,
            ),
        ];
        for (name, help, kind, value) in series {
            header(&mut out, name, help, kind);
            let _ = writeln!(out, "{name}{{{labels}}} {value:?}");
        }
        out
    }
}

/// A request being produced in a timing mode (running, holding KV tokens) until dropped.
#[derive(Debug)]
pub struct Producing {
    metrics: Arc<Metrics>,
    kv_tokens: u64,
}

impl Producing {
    /// One more token generated: held in the KV cache.
    pub fn token(&mut self) {
        self.kv_tokens += 1;
        self.metrics.producing_kv_tokens.fetch_add(1, Relaxed);
    }
}

impl Drop for Producing {
    fn drop(&mut self) {
        self.metrics
            .producing_kv_tokens
            .fetch_sub(self.kv_tokens, Relaxed);
        self.metrics.change_producing(1, false);
    }
}

/// One request's tokens as they are handed to its response body.
#[derive(Debug)]
pub struct RequestTracker {
    metrics: Arc<Metrics>,
    received: Instant,
    first: Option<Instant>,
    tokens: u64,
}

impl RequestTracker {
    /// `count` tokens handed to the response body at `at`.
    pub fn tokens_sent(&mut self, count: u64, at: Instant) {
        if count == 0 {
            return;
        }
        self.metrics.generation_tokens.fetch_add(count, Relaxed);
        if self.first.is_none() {
            self.first = Some(at);
            self.metrics
                .ttft
                .observe(at.saturating_duration_since(self.received));
        }
        self.tokens += count;
    }

    /// The last token (sent at `at`) ended the request with `reason`.
    pub fn finished(&mut self, reason: FinishReason, at: Instant) {
        let metrics = &self.metrics;
        match reason {
            FinishReason::Length => &metrics.success_length,
            FinishReason::Stop => &metrics.success_stop,
        }
        .fetch_add(1, Relaxed);
        metrics
            .e2e
            .observe(at.saturating_duration_since(self.received));
        if let (Some(first), true) = (self.first, self.tokens >= 2) {
            let decode = at.saturating_duration_since(first).as_secs_f64();
            let per_token = decode / (self.tokens - 1) as f64;
            metrics.tpot.observe(Duration::from_secs_f64(per_token));
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// This machine's name, for DCGM's `Hostname` label.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    /// One sample of a text exposition.
    #[derive(Clone, Debug, PartialEq)]
    pub(crate) struct Sample {
        pub name: String,
        pub labels: BTreeMap<String, String>,
        pub value: f64,
    }

    fn valid_name(name: &str, colons: bool) -> bool {
        let mut chars = name.chars();
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
        chars.next().is_some_and(ok_first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
    }

    /// `{a="x",b="y"}` → labels; the rest of the line after the closing brace.
    fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
        let mut labels = BTreeMap::new();
        let mut rest = text;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                return Ok((labels, after));
            }
            let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
            if !valid_name(name, false) {
                return Err(format!("bad label name {name:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            if labels.insert(name.to_string(), value).is_some() {
                return Err(format!("label {name} twice"));
            }
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }

    fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
        for suffix in ["_bucket", "_count", "_sum"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if types.get(base).is_some_and(|t| t == "histogram") {
                    return base;
                }
            }
        }
        name
    }

    /// Parses a Prometheus text exposition (format 0.0.4) strictly: HELP/TYPE before their
    /// samples and once, valid names, labels and values, each family in one group, counters
    /// non-negative, histogram buckets cumulative with `+Inf` equal to `_count`.
    pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helps: HashMap<String, ()> = HashMap::new();
        let mut done: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
            if let Some(comment) = line.strip_prefix("# ") {
                let mut parts = comment.splitn(3, ' ');
                let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let rest = parts.next().unwrap_or("");
                if !valid_name(name, true) {
                    return Err(err("bad metric name".into()));
                }
                if done.iter().any(|d| d == name) || current.as_deref() == Some(name) {
                    return Err(err("metadata after the family's samples".into()));
                }
                match keyword {
                    "HELP" if helps.insert(name.into(), ()).is_none() => {}
                    "TYPE" => {
                        let kinds = ["counter", "gauge", "histogram", "summary", "untyped"];
                        if !kinds.contains(&rest)
                            || types.insert(name.into(), rest.into()).is_some()
                        {
                            return Err(err("bad or repeated TYPE".into()));
                        }
                    }
                    _ => return Err(err("bad or repeated comment".into())),
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| err("no value".into()))?;
            let name = &line[..name_end];
            if !valid_name(name, true) {
                return Err(err("bad metric name".into()));
            }
            let (labels, rest) = match line[name_end..].strip_prefix('{') {
                Some(after) => parse_labels(after).map_err(err)?,
                None => (BTreeMap::new(), &line[name_end..]),
            };
            let mut fields = rest
                .strip_prefix(' ')
                .ok_or_else(|| err("no space before value".into()))?
                .split(' ');
            let value: f64 = match fields.next().unwrap_or("") {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| err("bad value".into()))?,
            };
            if let Some(ts) = fields.next() {
                ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
            }
            let family = family_of(name, &types).to_string();
            if current.as_deref() != Some(family.as_str()) {
                if done.contains(&family) {
                    return Err(err("family split in two groups".into()));
                }
                if let Some(previous) = current.replace(family.clone()) {
                    done.push(previous);
                }
            }
            let kind = types.get(&family).map(String::as_str);
            if kind == Some("counter") && (value.is_nan() || value < 0.0) {
                return Err(err("negative counter".into()));
            }
            if kind == Some("histogram") && name.ends_with("_bucket") && !labels.contains_key("le")
            {
                return Err(err("bucket without le".into()));
            }
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        check_histograms(&samples, &types)?;
        Ok(samples)
    }

    fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) -> Result<(), String> {
        for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
            let buckets: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
                .collect();
            let count = samples.iter().find(|s| s.name == format!("{family}_count"));
            let (Some(last), Some(count)) = (buckets.last(), count) else {
                return Err(format!("{family}: no buckets or no _count"));
            };
            let bounds: Vec<f64> = buckets
                .iter()
                .map(|b| match b.labels["le"].as_str() {
                    "+Inf" => Ok(f64::INFINITY),
                    le => le.parse().map_err(|_| format!("{family}: le={le}")),
                })
                .collect::<Result<_, _>>()?;
            let sorted = bounds.windows(2).all(|w| w[0] < w[1]);
            let cumulative = buckets.windows(2).all(|w| w[0].value <= w[1].value);
            if !sorted || !cumulative || last.labels["le"] != "+Inf" || last.value != count.value {
                return Err(format!(
                    "{family}: buckets not cumulative up to +Inf = _count"
                ));
            }
        }
        Ok(())
    }

    /// The value of the sample `name` whose labels include `labels`.
    pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
            .value
    }

    const MODEL: PowerModel = PowerModel {
        idle_watts: 60.0,
        max_watts: 400.0,
    };

    #[test]
    fn power_is_linear_in_utilization() {
        assert_eq!(MODEL.watts(0.0), 60.0);
        assert_eq!(MODEL.watts(1.0), 400.0);
        assert_eq!(MODEL.watts(0.25), 145.0);
        assert_eq!(MODEL.watts(-1.0), 60.0);
        assert_eq!(MODEL.watts(3.0), 400.0);
    }

    #[test]
    fn energy_is_the_exact_integral_of_power() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut meter = EnergyMeter::new(MODEL, t0);
        meter.set_utilization(at(1000), 0.5); // 1 s idle: 60 J
        meter.set_utilization(at(3000), 1.0); // 2 s at 230 W: 460 J
        let (u, w, mj) = meter.read(at(3500)); // 0.5 s at 400 W: 200 J
        assert_eq!((u, w), (1.0, 400.0));
        assert!((mj - 720_000.0).abs() < 1e-6, "{mj}");
        // Reading is idempotent at the same instant, and time never runs backwards.
        assert_eq!(meter.read(at(3500)).2, mj);
        assert_eq!(meter.read(at(3400)).2, mj);
        meter.set_utilization(at(4500), 0.0); // 1 s at 400 W
        assert!((meter.read(at(4500)).2 - 1_120_000.0).abs() < 1e-6);
    }

    #[test]
    fn histogram_buckets_follow_le() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        for ms in [5, 10, 11, 100, 2000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help", "model_name=\"m\"");
        let samples = parse_exposition(&out).unwrap();
        let bucket = |le| value(&samples, "x_seconds_bucket", &[("le", le)]);
        // le is inclusive: 10 ms falls in le="0.01".
        assert_eq!(
            [bucket("0.01"), bucket("0.1"), bucket("1.0"), bucket("+Inf")],
            [2.0, 4.0, 4.0, 5.0]
        );
        assert_eq!(value(&samples, "x_seconds_count", &[]), 5.0);
        assert!((value(&samples, "x_seconds_sum", &[]) - 2.126).abs() < 1e-9);
    }

    #[test]
    fn vllm_and_dcgm_pages_parse() {
        let metrics = Arc::new(Metrics::new("we\"ird\\name", 1000, 4, MODEL));
        let t0 = Instant::now();
        let mut tracker = metrics.track(t0);
        tracker.tokens_sent(1, t0 + Duration::from_millis(20));
        tracker.tokens_sent(2, t0 + Duration::from_millis(40));
        tracker.finished(FinishReason::Stop, t0 + Duration::from_millis(40));
        let gauges = Gauges {
            running: 3,
            waiting: 2,
            kv_tokens: 250,
        };
        let text = metrics.render_vllm(gauges);
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let model = [("model_name", "we\"ird\\name")];
        assert!(samples.iter().all(|s| s.labels["model_name"] == model[0].1));
        assert_eq!(value(&samples, "vllm:num_requests_running", &model), 3.0);
        assert_eq!(value(&samples, "vllm:num_requests_waiting", &model), 2.0);
        assert_eq!(value(&samples, "vllm:kv_cache_usage_perc", &model), 0.25);
        assert_eq!(value(&samples, "vllm:generation_tokens_total", &model), 3.0);
        assert_eq!(value(&samples, "vllm:num_preemptions_total", &model), 0.0);
        let stop = [("finished_reason", "stop")];
        assert_eq!(value(&samples, "vllm:request_success_total", &stop), 1.0);
        let length = [("finished_reason", "length")];
        assert_eq!(value(&samples, "vllm:request_success_total", &length), 0.0);
        let tpot = value(&samples, "vllm:time_per_output_token_seconds_sum", &model);
        assert!((tpot - 0.01).abs() < 1e-9, "{tpot}"); // 20 ms over 2 gaps
        let ttft = value(&samples, "vllm:time_to_first_token_seconds_sum", &model);
        assert!((ttft - 0.02).abs() < 1e-9, "{ttft}");
        for name in [
            "time_to_first_token",
            "time_per_output_token",
            "e2e_request_latency",
        ] {
            let count = format!("vllm:{name}_seconds_count");
            assert_eq!(value(&samples, &count, &model), 1.0);
        }
        // The KV gauge saturates at 1.
        let full = metrics.render_vllm(Gauges {
            kv_tokens: 5000,
            ..gauges
        });
        let full = parse_exposition(&full).unwrap();
        assert_eq!(value(&full, "vllm:kv_cache_usage_perc", &model), 1.0);

        let text = metrics.render_dcgm("host-1", 8192);
        let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let gpu = [("gpu", "0"), ("UUID", "GPU-sim-0"), ("Hostname", "host-1")];
        assert_eq!(value(&samples, "DCGM_FI_DEV_GPU_UTIL", &gpu), 0.0);
        assert_eq!(value(&samples, "DCGM_FI_DEV_POWER_USAGE", &gpu), 60.0);
        assert_eq!(
            value(&samples, "DCGM_FI_DEV_FB_USED", &gpu),
            16_384.0 + 1024.0
        );
        assert!(value(&samples, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", &gpu) >= 0.0);
        assert!(text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
    }

    #[test]
    fn the_parser_rejects_malformed_pages() {
        let bad = [
            "x 1",                             // no final newline
            "x{a=\"1} 1\n",                    // unterminated
            "x{1a=\"1\"} 1\n",                 // bad label name
            "x one\n",                         // bad value
            "# TYPE x counter\nx -1\n",        // negative counter
            "# TYPE x gauge\nx 1\ny 1\nx 2\n", // split family
            "x 1\n# TYPE x gauge\n",           // metadata after samples
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", // +Inf != count
        ];
        for text in bad {
            assert!(parse_exposition(text).is_err(), "{text:?} accepted");
        }
        assert!(parse_exposition("# HELP x a b c\n# TYPE x gauge\nx{a=\"\\n\"} 1.5 123\n").is_ok());
    }

    #[test]
    fn timing_modes_count_the_requests_being_produced() {
        let metrics = Arc::new(Metrics::new("m", 1000, 4, MODEL));
        let mut a = metrics.start_producing(10);
        let b = metrics.start_producing(5);
        a.token();
        let gauges = metrics.producing_gauges();
        assert_eq!(
            (gauges.running, gauges.waiting, gauges.kv_tokens),
            (2, 0, 16)
        );
        assert_eq!(metrics.energy.lock().read(Instant::now()).0, 0.5);
        drop(a);
        assert_eq!(metrics.producing_gauges().kv_tokens, 5);
        drop(b);
        assert_eq!(metrics.producing_gauges(), Gauges::default());
        let samples = parse_exposition(&metrics.render_vllm(Gauges::default())).unwrap();
        assert_eq!(value(&samples, "vllm:prompt_tokens_total", &[]), 15.0);
    }
}
