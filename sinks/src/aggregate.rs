//! Step aggregation: turns a step's `RequestFinished` events into a
//! [`StepResult`]. Pure logic (no actix), bounded memory: seven HDR histograms
//! and a few counters per step, whatever the number of requests.
//!
//! Definitions follow the glossary (DESIGN §4 / README):
//! - latency histograms take SUCCESSFUL requests only; queue delay takes every
//!   sent request (a failed request still waited to be sent);
//! - TTFT = `first_token_at − sent_at`, E2E = `end_at − sent_at`,
//!   queue delay = `sent_at − scheduled_at`, the `_from_schedule` variants are
//!   measured from `scheduled_at`;
//! - ITL is one value per successful request with ≥ 2 output tokens
//!   (`RequestFinished::itl_ns`); inter-chunk latency pools every chunk gap.

use crate::event::{
    ArrivalDropped, ControlEvent, Nanos, Outcome, RequestFinished, StepInfo, StepKind, StepWindow,
    TokenSource,
};
use crate::generator::{GeneratorHealth, GeneratorStats};
use crate::json::results::{OutputTokens, StepConfig, StepHistograms, StepResult};
use crate::paused::Pauses;
use crate::slo::{Goodput, Slo};
use crate::stats::LatencyHistogram;
use crate::steady::SteadyCounter;
use std::collections::BTreeMap;

/// Accumulates one step.
#[derive(Clone, Debug)]
pub struct StepAggregator {
    info: StepInfo,
    hist: Histograms,
    counts: Counters,
    seen: SeenSpan,
    steady: SteadyCounter,
    slo: Option<Slo>,
    /// Requests and output tokens that met every objective of `slo`.
    good: (u64, u64),
    generator: Option<GeneratorStats>,
    server_metrics: Option<crate::server_metrics::MetricsWindow>,
    reasoning: crate::reasoning_step::ReasoningAggregator,
    images_tools: crate::images_tools::ImagesToolsCounter,
    /// Embeddings and rerank steps: their inputs.
    inputs: Option<crate::inputs::InputCounter>,
    /// Live control's pauses: the rates leave them out.
    pauses: Pauses,
}

/// A step's latency histograms; they travel in the results (`StepResult::histograms`) so that
/// shards merge exactly.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histograms {
    pub(crate) ttft: LatencyHistogram,
    pub(crate) itl: LatencyHistogram,
    pub(crate) e2e: LatencyHistogram,
    pub(crate) inter_chunk: LatencyHistogram,
    pub(crate) queue_delay: LatencyHistogram,
    pub(crate) ttft_from_schedule: LatencyHistogram,
    pub(crate) e2e_from_schedule: LatencyHistogram,
}

#[derive(Clone, Debug, Default)]
struct Counters {
    total: u64,
    successful: u64,
    failed: u64,
    /// Indexed like `Outcome::ALL`.
    by_outcome: [u64; Outcome::ALL.len()],
    http_statuses: BTreeMap<u16, u64>,
    dropped: u64,
    queued: u64,
    /// Retried attempts by the class of their failure.
    retried: BTreeMap<String, u64>,
    /// Σ(server prompt tokens − ours) and how many requests it covers.
    prompt_overhead: (i64, u64),
    /// Successful requests that reported `cached_tokens` (their server's prefix cache).
    cached_reported: u64,
    /// Prompt tokens of every sent request, and of the successful ones.
    prompt_tokens_sent: u64,
    prompt_tokens_ok: u64,
    output_tokens: u64,
    tokens: OutputTokens,
    first_error: Option<String>,
}

/// The span of stamps seen, to close a step that never got its `FinishStep`.
#[derive(Clone, Copy, Debug, Default)]
struct SeenSpan {
    first_scheduled: Option<Nanos>,
    last_sent: Option<Nanos>,
    last_end: Option<Nanos>,
}

impl SeenSpan {
    fn scheduled(&mut self, at: Nanos) {
        self.first_scheduled = Some(self.first_scheduled.map_or(at, |t| t.min(at)));
    }

    fn request(&mut self, r: &RequestFinished) {
        self.scheduled(r.scheduled_at);
        self.last_sent = Some(self.last_sent.map_or(r.sent_at, |t| t.max(r.sent_at)));
        self.last_end = Some(self.last_end.map_or(r.end_at, |t| t.max(r.end_at)));
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or_default()
}

impl StepAggregator {
    pub fn new(info: StepInfo) -> Self {
        StepAggregator {
            steady: match info.rate {
                Some(_) => SteadyCounter::new(info.duration_secs),
                None => SteadyCounter::new(info.duration_secs).closed_loop(info.max_vus),
            },
            info,
            hist: Histograms::default(),
            counts: Counters::default(),
            seen: SeenSpan::default(),
            slo: None,
            good: (0, 0),
            generator: None,
            server_metrics: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            inputs: None,
            pauses: Pauses::default(),
        }
    }

    /// Embeddings and rerank: also counts inputs, `batch_size` per successful request.
    pub fn with_inputs(mut self, batch_size: Option<u64>) -> Self {
        self.inputs = batch_size.map(crate::inputs::InputCounter::new);
        self
    }

    /// The generator's own measurements over the step (from the coordinator).
    pub fn generator(&mut self, stats: GeneratorStats) {
        self.generator = Some(stats);
    }

    /// The server's metrics over the step (from the scraper, via the coordinator).
    pub fn server_metrics(&mut self, window: crate::server_metrics::MetricsWindow) {
        self.server_metrics = Some(window);
    }

    /// Also measures goodput against these objectives.
    pub fn with_slo(mut self, slo: Option<Slo>) -> Self {
        self.slo = slo;
        self
    }

    pub fn info(&self) -> &StepInfo {
        &self.info
    }

    /// Sent requests recorded so far.
    pub fn total_requests(&self) -> u64 {
        self.counts.total
    }

    /// Records one request (any outcome). The caller routes by `r.step`; this
    /// does not check it.
    pub fn record(&mut self, r: &RequestFinished) {
        self.seen.request(r);
        self.steady.record(r);
        self.count(r);
        self.images_tools.record(r);
        // Every sent request waited to be sent, whatever happened next.
        self.hist.queue_delay.record_ns(r.queue_delay_ns());
        if r.outcome.is_ok() {
            self.record_latencies(r);
        }
        self.reasoning.record(r);
        if self.slo.is_some_and(|slo| slo.met_by(r)) {
            self.good.0 += 1;
            self.good.1 = self.good.1.saturating_add(r.output_tokens);
        }
    }

    /// A live-control change of this step: its pauses are left out of its rates.
    pub fn control(&mut self, c: &ControlEvent) {
        self.pauses.record(c);
    }

    /// Counts an arrival the scheduler could not start.
    pub fn dropped(&mut self, d: &ArrivalDropped) {
        self.seen.scheduled(d.scheduled_at);
        self.counts.dropped = self.counts.dropped.saturating_add(1);
    }

    /// Counts a failed attempt that was retried (the request's last attempt is recorded as usual).
    pub fn retried(&mut self, outcome: Outcome) {
        *self
            .counts
            .retried
            .entry(outcome.as_str().to_string())
            .or_default() += 1;
    }

    /// Counts an arrival that waited for a free slot (its request is recorded as usual).
    pub fn queued(&mut self) {
        self.counts.queued = self.counts.queued.saturating_add(1);
    }

    fn count(&mut self, r: &RequestFinished) {
        let c = &mut self.counts;
        c.total += 1;
        c.by_outcome[outcome_index(r.outcome)] += 1;
        if let Some(status) = r.http_status {
            *c.http_statuses.entry(status).or_default() += 1;
        }
        c.prompt_tokens_sent = c.prompt_tokens_sent.saturating_add(r.prompt_tokens);
        if !r.outcome.is_ok() {
            c.failed += 1;
            if c.first_error.is_none() {
                c.first_error = Some(describe_failure(r));
            }
            return;
        }
        c.successful += 1;
        if let Some(inputs) = &mut self.inputs {
            inputs.record(r);
        }
        c.prompt_tokens_ok = c.prompt_tokens_ok.saturating_add(r.prompt_tokens);
        c.output_tokens = c.output_tokens.saturating_add(r.output_tokens);
        let t = &mut c.tokens;
        t.requested = t
            .requested
            .saturating_add(r.requested_output_tokens.unwrap_or(0));
        t.server_prompt_tokens = t
            .server_prompt_tokens
            .saturating_add(r.server_prompt_tokens.unwrap_or(0));
        t.server_completion_tokens = t
            .server_completion_tokens
            .saturating_add(r.server_completion_tokens.unwrap_or(0));
        t.server_cached_tokens = t
            .server_cached_tokens
            .saturating_add(r.server_cached_tokens.unwrap_or(0));
        if r.server_cached_tokens.is_some() {
            c.cached_reported += 1;
        }
        if let Some(server) = r.server_prompt_tokens {
            let o = &mut c.prompt_overhead;
            o.0 = o.0.saturating_add(server as i64 - r.prompt_tokens as i64);
            o.1 += 1;
        }
        match r.output_tokens_source {
            TokenSource::Server => t.server_reported_requests += 1,
            TokenSource::Client => t.client_counted_requests += 1,
        }
    }

    fn record_latencies(&mut self, r: &RequestFinished) {
        let h = &mut self.hist;
        if let Some(ttft) = r.ttft_ns() {
            h.ttft.record_ns(ttft);
        }
        if let Some(first) = r.first_token_at {
            h.ttft_from_schedule
                .record_ns(first.saturating_sub(r.scheduled_at));
        }
        if let Some(itl) = r.itl_ns() {
            h.itl.record_ns(itl);
        }
        for gap in r.chunk_gaps_us() {
            h.inter_chunk.record_us(u64::from(gap));
        }
        h.e2e.record_ns(r.e2e_ns());
        h.e2e_from_schedule
            .record_ns(r.end_at.saturating_sub(r.scheduled_at));
    }

    /// The window the recorded events span (earliest schedule, last send, last
    /// end), for a step whose real window never arrived. `None` if nothing was seen.
    pub fn observed_window(&self) -> Option<StepWindow> {
        let start = self.seen.first_scheduled?;
        let send_end = self.seen.last_sent.unwrap_or(start).max(start);
        let end = self.seen.last_end.unwrap_or(send_end).max(send_end);
        Some(StepWindow {
            start,
            send_end,
            end,
        })
    }

    /// The step's results over `window`. Its rates divide by the time it was not paused (a
    /// pause stops the sending: it counts within the sending window).
    pub fn finish(&self, window: StepWindow, ended_early: Option<String>) -> StepResult {
        let c = &self.counts;
        let duration_ns = window.end.saturating_sub(window.start);
        let send_ns = window.send_end.saturating_sub(window.start);
        let paused_ns = self.pauses.within(window.start, window.send_end);
        let duration_s = duration_ns.saturating_sub(paused_ns) as f64 / 1e9;
        let send_s = send_ns.saturating_sub(paused_ns) as f64 / 1e9;
        let sends = self.seen.first_scheduled.zip(self.seen.last_sent);
        let rate = self.info.rate.filter(|r| r.is_finite());
        StepResult {
            id: self.info.id.clone(),
            executor_type: self.info.kind.executor_type().to_string(),
            config: StepConfig {
                max_vus: self.info.max_vus,
                duration_secs: StepConfig::whole_seconds(self.info.duration_secs),
                rate,
            },
            total_requests: c.total,
            total_tokens: c.output_tokens,
            token_throughput_secs: per_second(c.output_tokens, duration_s),
            duration_ms: duration_ns / 1_000_000,
            time_to_first_token_ms: self.hist.ttft.summary(),
            inter_token_latency_ms: self.hist.itl.summary(),
            e2e_latency_ms: self.hist.e2e.summary(),
            failed_requests: c.failed,
            successful_requests: c.successful,
            request_rate: per_second(c.successful, duration_s),
            steady_state: self.steady.finish(window, &self.pauses),
            total_tokens_sent: c.prompt_tokens_ok,
            prompt_tokens_sent: c.prompt_tokens_sent,
            step: self.info.index,
            start_ms: Some(window.start / 1_000_000),
            kind: self.info.kind,
            inter_chunk_latency_ms: self.hist.inter_chunk.summary(),
            queue_delay_ms: self.hist.queue_delay.summary(),
            time_to_first_token_from_schedule_ms: self.hist.ttft_from_schedule.summary(),
            e2e_latency_from_schedule_ms: self.hist.e2e_from_schedule.summary(),
            offered_rate: rate,
            arrival: self.info.arrival().map(str::to_string),
            achieved_rate: achieved_rate(c.total, sends, &self.pauses, send_s),
            send_duration_ms: send_ns / 1_000_000,
            paused_ms: paused_ns / 1_000_000,
            dropped_arrivals: c.dropped,
            queued_arrivals: c.queued,
            retried_attempts: c.retried.clone(),
            errors: self.error_counts(),
            http_statuses: c
                .http_statuses
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            output_tokens: OutputTokens {
                prompt_overhead_per_request: (c.prompt_overhead.1 > 0)
                    .then(|| c.prompt_overhead.0 as f64 / c.prompt_overhead.1 as f64),
                ..c.tokens.clone()
            },
            ended_early,
            first_error: self.counts.first_error.clone(),
            goodput: self.slo.map(|slo| Goodput {
                slo,
                good_requests: self.good.0,
                good_tokens: self.good.1,
                request_rate: per_second(self.good.0, duration_s),
                token_rate: per_second(self.good.1, duration_s),
            }),
            generator: self.generator.map(|g| {
                // Lateness measures the generator only when no arrival waited for a slot.
                let open_loop = self.info.kind == StepKind::Rate && c.queued == 0;
                let late = open_loop.then(|| self.hist.queue_delay.summary().p99);
                GeneratorHealth::judge(g, late)
            }),
            client_prefix_cache_hit_rate: (c.cached_reported > 0)
                .then(|| c.tokens.cached_ratio())
                .flatten(),
            server_metrics: self
                .server_metrics
                .as_ref()
                .map(|w| w.finish(c.output_tokens)),
            histograms: self.hist.encode(),
            reasoning: self.reasoning.finish(),
            shards: None,
            images_and_tools: self.images_tools.finish(duration_s),
            inputs: self.inputs.map(|i| i.finish(duration_s)),
        }
    }

    fn error_counts(&self) -> BTreeMap<String, u64> {
        Outcome::ALL
            .iter()
            .zip(self.counts.by_outcome)
            .filter(|(outcome, n)| !outcome.is_ok() && *n > 0)
            .map(|(outcome, n)| (outcome.as_str().to_string(), n))
            .collect()
    }
}

impl Histograms {
    /// Decodes what [`Self::encode`] wrote; the error names the histogram.
    pub(crate) fn decode(h: &StepHistograms) -> Result<Self, String> {
        let one = |text: &str, name: &str| {
            LatencyHistogram::from_base64(text).map_err(|e| format!("histogram {name}: {e}"))
        };
        Ok(Histograms {
            ttft: one(&h.ttft, "ttft")?,
            itl: one(&h.itl, "itl")?,
            e2e: one(&h.e2e, "e2e")?,
            inter_chunk: one(&h.inter_chunk, "inter_chunk")?,
            queue_delay: one(&h.queue_delay, "queue_delay")?,
            ttft_from_schedule: one(&h.ttft_from_schedule, "ttft_from_schedule")?,
            e2e_from_schedule: one(&h.e2e_from_schedule, "e2e_from_schedule")?,
        })
    }

    /// Adds every value of `other`.
    pub(crate) fn merge(&mut self, other: &Histograms) {
        self.ttft.merge(&other.ttft);
        self.itl.merge(&other.itl);
        self.e2e.merge(&other.e2e);
        self.inter_chunk.merge(&other.inter_chunk);
        self.queue_delay.merge(&other.queue_delay);
        self.ttft_from_schedule.merge(&other.ttft_from_schedule);
        self.e2e_from_schedule.merge(&other.e2e_from_schedule);
    }

    pub(crate) fn encode(&self) -> StepHistograms {
        StepHistograms {
            ttft: encode(&self.ttft, "ttft"),
            itl: encode(&self.itl, "itl"),
            e2e: encode(&self.e2e, "e2e"),
            inter_chunk: encode(&self.inter_chunk, "inter_chunk"),
            queue_delay: encode(&self.queue_delay, "queue_delay"),
            ttft_from_schedule: encode(&self.ttft_from_schedule, "ttft_from_schedule"),
            e2e_from_schedule: encode(&self.e2e_from_schedule, "e2e_from_schedule"),
        }
    }
}

/// Encoding into memory only fails on counts beyond `i64::MAX`; should it ever
/// happen, the summaries are still right and the log says the histogram is missing.
fn encode(h: &LatencyHistogram, name: &str) -> String {
    h.to_base64().unwrap_or_else(|e| {
        log::error!("histogram {name} left out of the results: {e}");
        String::new()
    })
}

/// Requests sent per second: the sends after the first over the time from the first arrival (the
/// step's first scheduled request) to the last send, paused time left out. n sends span n − 1
/// gaps: a constant schedule (k / rate for k = 0.. while before the window's end: ⌈D · rate⌉
/// arrivals) reads its offered rate, where n over the window read up to one arrival high. From
/// the first arrival rather than the first send: a first request sent late (the step's first
/// connection) does not shorten the span. With fewer than two sends, or all at one instant, the
/// sends over the sending window `send_s`.
pub(crate) fn achieved_rate(
    sent: u64,
    sends: Option<(Nanos, Nanos)>,
    pauses: &Pauses,
    send_s: f64,
) -> f64 {
    match sends {
        Some((first, last)) if sent >= 2 => {
            let span = last
                .saturating_sub(first)
                .saturating_sub(pauses.within(first, last));
            if span > 0 {
                return (sent - 1) as f64 / (span as f64 / 1e9);
            }
            per_second(sent, send_s)
        }
        _ => per_second(sent, send_s),
    }
}

/// `n / seconds`, 0 for an empty window (JSON has no NaN or infinity).
pub(crate) fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// `class (HTTP status): message`, the one line a user needs to see why requests fail.
fn describe_failure(r: &RequestFinished) -> String {
    let status = r
        .http_status
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default();
    let message = r.error.as_deref().unwrap_or("no message");
    format!("{}{status}: {message}", r.outcome.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::StepKind;

    const MS: u64 = 1_000_000;

    /// `got` is the exact figure `want` as HDR reports it: within its 0.1 %
    /// resolution (3 significant digits).
    fn assert_ms(got: f64, want: f64) {
        assert!(
            (got - want).abs() <= want * 1e-3,
            "got {got} ms, want {want} ms (± 0.1 %)"
        );
    }

    fn info() -> StepInfo {
        StepInfo {
            index: 1,
            id: "constant@2req/s".into(),
            kind: StepKind::Rate,
            max_vus: 8,
            rate: Some(2.0),
            duration_secs: 10.0,
        }
    }

    /// A successful request: scheduled at `at`, sent 5 ms later, first token
    /// 100 ms after sending, chunks every 20 ms, 5 tokens, ends 10 ms after the last chunk.
    pub(crate) fn ok_request(id: &str, at: u64) -> RequestFinished {
        let sent = at + 5 * MS;
        RequestFinished {
            id: id.into(),
            step: 1,
            scheduled_at: at,
            sent_at: sent,
            first_token_at: Some(sent + 100 * MS),
            end_at: sent + 190 * MS,
            chunk_offsets_us: vec![100_000, 120_000, 140_000, 160_000, 180_000],
            prompt_tokens: 50,
            requested_output_tokens: Some(5),
            output_tokens: 5,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: Some(52),
            server_completion_tokens: Some(5),
            server_cached_tokens: Some(16),
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            finish_reason: Some("length".into()),
            response_model: Some("m".into()),
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn failed_request(id: &str, at: u64, outcome: Outcome, status: Option<u16>) -> RequestFinished {
        RequestFinished {
            id: id.into(),
            step: 1,
            scheduled_at: at,
            sent_at: at + 30 * MS,
            first_token_at: None,
            end_at: at + 5_000 * MS,
            chunk_offsets_us: vec![],
            prompt_tokens: 40,
            requested_output_tokens: Some(5),
            output_tokens: 0,
            output_tokens_source: TokenSource::Client,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome,
            http_status: status,
            error: Some("boom".into()),
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn window() -> StepWindow {
        StepWindow {
            start: 0,
            send_end: 2_000 * MS,
            end: 4_000 * MS,
        }
    }

    #[test]
    fn the_client_prefix_cache_hit_rate_is_cached_over_server_prompt_tokens() {
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 0));
        let mut b = ok_request("b", 100 * MS);
        b.server_cached_tokens = Some(36);
        agg.record(&b);
        // A failure reports no usage: not in the rate.
        agg.record(&failed_request("c", 0, Outcome::Http5xx, Some(500)));
        let r = agg.finish(window(), None);
        assert_eq!(r.client_prefix_cache_hit_rate, Some((16.0 + 36.0) / 104.0));
        // A server that reports usage without `cached_tokens`: no rate, not a rate of 0.
        let mut agg = StepAggregator::new(info());
        let mut d = ok_request("d", 0);
        d.server_cached_tokens = None;
        agg.record(&d);
        assert_eq!(
            agg.finish(window(), None).client_prefix_cache_hit_rate,
            None
        );
        let empty = StepAggregator::new(info()).finish(window(), None);
        assert_eq!(empty.client_prefix_cache_hit_rate, None);
    }

    #[test]
    fn exact_latencies_of_successful_requests() {
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 0));
        agg.record(&ok_request("b", 500 * MS));
        let r = agg.finish(window(), None);

        assert_eq!(r.time_to_first_token_ms.count, 2);
        assert_ms(r.time_to_first_token_ms.p50, 100.0);
        assert_ms(r.time_to_first_token_ms.avg, 100.0);
        assert_ms(r.time_to_first_token_from_schedule_ms.p50, 105.0);
        // ITL: (180 − 100) ms / (5 − 1) tokens = 20 ms, one value per request.
        assert_eq!(r.inter_token_latency_ms.count, 2);
        assert_ms(r.inter_token_latency_ms.p99, 20.0);
        // Inter-chunk: 4 gaps of 20 ms per request, pooled.
        assert_eq!(r.inter_chunk_latency_ms.count, 8);
        assert_ms(r.inter_chunk_latency_ms.max, 20.0);
        assert_ms(r.e2e_latency_ms.p50, 190.0);
        assert_ms(r.e2e_latency_from_schedule_ms.p50, 195.0);
        assert_ms(r.queue_delay_ms.p50, 5.0);
        assert_eq!(r.queue_delay_ms.stddev, 0.0);
    }

    #[test]
    fn failed_requests_are_counted_but_kept_out_of_latencies() {
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 0));
        agg.record(&failed_request("b", 0, Outcome::Http5xx, Some(503)));
        agg.record(&failed_request("c", 0, Outcome::Http5xx, Some(500)));
        agg.record(&failed_request("d", 0, Outcome::Cancelled, None));
        agg.record(&failed_request("e", 0, Outcome::RateLimited, Some(429)));
        let r = agg.finish(window(), None);

        assert_eq!(r.total_requests, 5);
        assert_eq!(r.successful_requests, 1);
        assert_eq!(r.failed_requests, 4);
        assert_eq!(r.e2e_latency_ms.count, 1);
        assert_ms(r.e2e_latency_ms.max, 190.0);
        assert_eq!(r.time_to_first_token_ms.count, 1);
        // Queue delay counts every sent request: 5 ms once, 30 ms four times.
        assert_eq!(r.queue_delay_ms.count, 5);
        assert_ms(r.queue_delay_ms.max, 30.0);
        assert_ms(r.queue_delay_ms.min, 5.0);

        let errors: Vec<(&str, u64)> = r.errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            errors,
            [("cancelled", 1), ("http_5xx", 2), ("rate_limited", 1)]
        );
        let statuses: Vec<(&str, u64)> = r
            .http_statuses
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(statuses, [("200", 1), ("429", 1), ("500", 1), ("503", 1)]);
    }

    #[test]
    fn token_counts_and_throughput_arithmetic() {
        let mut agg = StepAggregator::new(info());
        for i in 0..4 {
            agg.record(&ok_request(&format!("s{i}"), i * 100 * MS));
        }
        let mut client = ok_request("c", 0);
        client.output_tokens = 7;
        client.output_tokens_source = TokenSource::Client;
        client.server_completion_tokens = None;
        client.requested_output_tokens = None;
        agg.record(&client);
        agg.record(&failed_request("f", 0, Outcome::StreamBroken, Some(200)));
        agg.dropped(&ArrivalDropped {
            step: 1,
            scheduled_at: 3 * MS,
        });
        agg.dropped(&ArrivalDropped {
            step: 1,
            scheduled_at: 9 * MS,
        });
        let r = agg.finish(window(), Some("saturated".into()));

        assert_eq!(r.total_tokens, 4 * 5 + 7);
        // The original tool's count is the successful requests' prompts; ours adds the failed.
        assert_eq!(r.total_tokens_sent, 5 * 50);
        assert_eq!(r.prompt_tokens_sent, 5 * 50 + 40);
        assert_eq!(r.duration_ms, 4_000);
        assert_eq!(r.send_duration_ms, 2_000);
        assert_eq!(r.start_ms, Some(0));
        let later = StepWindow {
            start: 7_250 * MS + MS / 2,
            send_end: 9_000 * MS,
            end: 9_500 * MS,
        };
        assert_eq!(agg.finish(later, None).start_ms, Some(7_250), "whole ms");
        assert_eq!(r.token_throughput_secs, 27.0 / 4.0);
        assert_eq!(r.request_rate, 5.0 / 4.0);
        // 6 sends, the first scheduled at 0, the last sent at 305 ms: 5 gaps in 0.305 s.
        assert!(
            (r.achieved_rate - 5.0 / 0.305).abs() < 1e-9,
            "{}",
            r.achieved_rate
        );
        assert_eq!(r.offered_rate, Some(2.0));
        assert_eq!(r.dropped_arrivals, 2);
        assert_eq!(r.ended_early.as_deref(), Some("saturated"));
        assert_eq!(
            r.output_tokens,
            OutputTokens {
                requested: 4 * 5,
                server_reported_requests: 4,
                server_prompt_tokens: 5 * 52,
                server_completion_tokens: 4 * 5,
                server_cached_tokens: 5 * 16,
                client_counted_requests: 1,
                // The server counted 52 prompt tokens where we counted 50: a template of 2.
                prompt_overhead_per_request: Some(2.0),
            }
        );
        assert_eq!(r.config.duration_secs, 10);
        assert_eq!(r.config.max_vus, 8);
        assert_eq!(r.executor_type, "ConstantArrivalRate");
    }

    /// A constant schedule's arrivals: k / rate for k = 0.. while before `secs`.
    fn constant(rate: f64, secs: f64) -> Vec<u64> {
        (0..)
            .map(|k| (k as f64 / rate * 1e9).round() as u64)
            .take_while(|&at| (at as f64) < secs * 1e9)
            .collect()
    }

    fn send_window(secs: f64) -> StepWindow {
        let send_end = (secs * 1e9) as u64;
        StepWindow {
            start: 0,
            send_end,
            end: send_end + 500 * MS,
        }
    }

    #[test]
    fn a_constant_rate_step_achieves_its_offered_rate() {
        // ⌈D · rate⌉ arrivals: 119 in 10 s at 11.85 req/s, 87 in 5.3 s at 16.3 (once read as
        // 11.90 and 16.42: one arrival too many over the window).
        for (rate, secs) in [(11.85, 10.0), (16.3, 5.3), (20.0, 10.0), (0.5, 3.0)] {
            let mut agg = StepAggregator::new(info());
            let arrivals = constant(rate, secs);
            for (i, at) in arrivals.iter().enumerate() {
                let mut r = ok_request(&i.to_string(), *at);
                r.sent_at = *at;
                agg.record(&r);
            }
            let r = agg.finish(send_window(secs), None);
            assert_eq!(r.total_requests, arrivals.len() as u64);
            assert!(
                (r.achieved_rate - rate).abs() < rate * 1e-6,
                "{rate} req/s for {secs} s: achieved {}",
                r.achieved_rate
            );
        }
        // One send has no gap: it is counted over the sending window.
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 0));
        assert_eq!(agg.finish(send_window(2.0), None).achieved_rate, 0.5);
    }

    #[test]
    fn a_paused_step_s_rates_are_over_its_unpaused_time() {
        // 10 req/s from 0 to 6 s, paused from 2 s to 4 s: 40 requests, each 190 ms long.
        let mut agg = StepAggregator::new(info());
        let sends = constant(10.0, 6.0);
        let sends: Vec<u64> = sends
            .into_iter()
            .filter(|at| !(2_000 * MS..4_000 * MS).contains(at))
            .collect();
        for (i, at) in sends.iter().enumerate() {
            let mut r = ok_request(&i.to_string(), *at);
            r.sent_at = *at;
            agg.record(&r);
        }
        for c in crate::paused::pause_and_resume(2_000, 4_000) {
            agg.control(&c);
        }
        let window = StepWindow {
            start: 0,
            send_end: 6_000 * MS,
            end: 6_200 * MS,
        };
        let r = agg.finish(window, None);
        assert_eq!((r.total_requests, r.paused_ms), (40, 2_000));
        assert!((r.achieved_rate - 10.0).abs() < 1e-6, "{}", r.achieved_rate);
        assert!(
            (r.request_rate - 40.0 / 4.2).abs() < 1e-9,
            "{}",
            r.request_rate
        );
        assert!((r.token_throughput_secs - 200.0 / 4.2).abs() < 1e-9);
        let steady = r.steady_state.expect("a steady part");
        assert!((steady.request_rate - 10.0).abs() < 0.6, "{steady:?}");
        // Unpaused, the same requests read a third lower.
        let mut unpaused = agg.clone();
        unpaused.pauses = Pauses::default();
        let u = unpaused.finish(window, None);
        assert_eq!(u.paused_ms, 0);
        assert!((u.request_rate - 40.0 / 6.2).abs() < 1e-9);
    }

    #[test]
    fn a_rate_step_names_its_arrival_process() {
        let mut poisson = info();
        poisson.id = "poisson@2.00req/s".into();
        assert_eq!(
            StepAggregator::new(poisson)
                .finish(window(), None)
                .arrival
                .as_deref(),
            Some("poisson")
        );
        let mut closed = info();
        closed.kind = StepKind::Throughput;
        closed.id = "throughput".into();
        assert_eq!(
            StepAggregator::new(closed).finish(window(), None).arrival,
            None
        );
    }

    #[test]
    fn single_token_request_has_ttft_but_no_itl() {
        let mut agg = StepAggregator::new(info());
        let mut one = ok_request("a", 0);
        one.output_tokens = 1;
        one.chunk_offsets_us = vec![100_000];
        agg.record(&one);
        let r = agg.finish(window(), None);
        assert_eq!(r.time_to_first_token_ms.count, 1);
        assert_eq!(r.inter_token_latency_ms.count, 0);
        assert_eq!(r.inter_chunk_latency_ms.count, 0);
    }

    #[test]
    fn empty_step_and_zero_window_give_zeros_not_nan() {
        let mut closed = info();
        closed.kind = StepKind::Throughput;
        closed.rate = None;
        closed.duration_secs = f64::NAN;
        let agg = StepAggregator::new(closed);
        assert!(agg.observed_window().is_none());
        let r = agg.finish(
            StepWindow {
                start: 5,
                send_end: 5,
                end: 5,
            },
            None,
        );
        assert_eq!(r.total_requests, 0);
        assert_eq!(r.token_throughput_secs, 0.0);
        assert_eq!(r.request_rate, 0.0);
        assert_eq!(r.achieved_rate, 0.0);
        assert_eq!(r.offered_rate, None);
        assert_eq!(r.config.rate, None);
        assert_eq!(r.config.duration_secs, 0);
        assert_eq!(r.executor_type, "ConstantVUs");
        assert!(r.errors.is_empty());
        assert_eq!(r.e2e_latency_ms.count, 0);
    }

    #[test]
    fn histograms_decode_to_the_same_summaries() {
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 0));
        agg.record(&ok_request("b", 7 * MS));
        let r = agg.finish(window(), None);
        let ttft = LatencyHistogram::from_base64(&r.histograms.ttft).unwrap();
        assert_eq!(ttft.summary(), r.time_to_first_token_ms);
        let ic = LatencyHistogram::from_base64(&r.histograms.inter_chunk).unwrap();
        assert_eq!(ic.summary(), r.inter_chunk_latency_ms);
    }

    #[test]
    fn malformed_stamps_do_not_panic() {
        let mut agg = StepAggregator::new(info());
        let mut r = ok_request("a", 0);
        r.chunk_offsets_us = vec![200_000, 100_000, 150_000];
        r.sent_at = r.end_at + 1;
        r.scheduled_at = u64::MAX;
        agg.record(&r);
        let res = agg.finish(window(), None);
        assert_eq!(res.successful_requests, 1);
        assert_eq!(res.e2e_latency_ms.max, 0.0);
        assert_eq!(res.inter_chunk_latency_ms.count, 2);
    }

    #[test]
    fn observed_window_spans_the_events() {
        let mut agg = StepAggregator::new(info());
        agg.record(&ok_request("a", 100 * MS));
        agg.record(&ok_request("b", 300 * MS));
        agg.dropped(&ArrivalDropped {
            step: 1,
            scheduled_at: 50 * MS,
        });
        let w = agg.observed_window().unwrap();
        assert_eq!(w.start, 50 * MS);
        assert_eq!(w.send_end, 305 * MS);
        assert_eq!(w.end, 495 * MS);
    }
}
