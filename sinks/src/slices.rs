//! Time slices of a step (`--slice-duration`), for long soaks (pure).
//!
//! A request belongs to the slice in which it ended (as the step's throughput counts it); the
//! step's planned duration makes its slices (a 10-minute step in 1m slices has 10), and what ends
//! after the last one's nominal end (the drain) counts in the last, which ends with the step. A slice
//! is summarized — counts, throughput, TTFT / ITL / E2E percentiles — and its histograms dropped
//! as soon as a request ends two slices after it (records arrive in about end order: a request
//! that ends in slice k is handed over within milliseconds), or when the step finishes. So a
//! six-hour step holds two or three open slices at any time, and one small record per slice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Nanos, RequestFinished};
use crate::server_metrics::ServerMetrics;
use crate::stats::{LatencyHistogram, Summary};

/// Slices a document keeps: one small record each (a week at 1m); beyond, a warning.
pub const MAX_SLICES: usize = 10_080;

/// One slice of a step, in the results' top-level `slices` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceRecord {
    /// The step's `index`.
    pub step: u32,
    /// The slice's number within its step, from 0.
    pub slice: u64,
    /// Its window, in ms since the run's start (the last slice ends with its step).
    pub start_ms: f64,
    pub end_ms: f64,
    /// Requests that ended in the slice.
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    /// Output tokens of the successful requests that ended in the slice.
    pub output_tokens: u64,
    /// Successful requests per second over the slice.
    pub request_rate: f64,
    /// Output tokens per second over the slice.
    pub token_throughput_secs: f64,
    pub time_to_first_token_ms: Summary,
    pub inter_token_latency_ms: Summary,
    pub e2e_latency_ms: Summary,
    /// The server's metrics over the slice (as a step's `server_metrics`); null without
    /// scraping.
    #[serde(default)]
    pub server_metrics: Option<ServerMetrics>,
}

/// The server's metrics of a step's slices, until their slice records are complete: the
/// scraper hands them over at the step's end, when most slices are already in the document
/// and the last ones are not yet.
#[derive(Default)]
pub struct SliceServerMetrics(BTreeMap<(u32, u64), ServerMetrics>);

impl SliceServerMetrics {
    /// Gives each slice already `kept` its metrics and holds the rest.
    pub fn add(&mut self, step: u32, slices: Vec<(u64, ServerMetrics)>, kept: &mut [SliceRecord]) {
        self.0
            .extend(slices.into_iter().map(|(k, m)| ((step, k), m)));
        for s in kept.iter_mut().filter(|s| s.step == step) {
            self.attach(s);
        }
    }

    /// `s` gets its metrics, with joules per token of its own output tokens.
    pub fn attach(&mut self, s: &mut SliceRecord) {
        if let Some(mut m) = self.0.remove(&(s.step, s.slice)) {
            m.derive(s.output_tokens);
            s.server_metrics = Some(m);
        }
    }

    /// The step is over: slices of it that got no request keep no metrics.
    pub fn forget(&mut self, step: u32) {
        self.0.retain(|(s, _), _| *s != step);
    }
}

#[derive(Default)]
struct Open {
    total: u64,
    successful: u64,
    output_tokens: u64,
    ttft: LatencyHistogram,
    itl: LatencyHistogram,
    e2e: LatencyHistogram,
}

/// The slices of one step.
pub struct Slicer {
    step: u32,
    start: Nanos,
    width: Nanos,
    /// The last slice's number: what ends after it counts in it.
    last: u64,
    open: BTreeMap<u64, Open>,
}

impl Slicer {
    /// Slices of `width` (above 0) from the step's `start`, over its `planned` sending time.
    pub fn new(step: u32, start: Nanos, width: Nanos, planned: Nanos) -> Self {
        let width = width.max(1);
        Slicer {
            step,
            start,
            width,
            last: planned.div_ceil(width).max(1) - 1,
            open: BTreeMap::new(),
        }
    }

    /// Counts `r` into its slice; returns the slices that are complete now.
    pub fn record(&mut self, r: &RequestFinished) -> Vec<SliceRecord> {
        let k = (r.end_at.saturating_sub(self.start) / self.width).min(self.last);
        let s = self.open.entry(k).or_default();
        s.total += 1;
        if r.outcome.is_ok() {
            s.successful += 1;
            s.output_tokens += r.output_tokens;
            if let Some(t) = r.ttft_ns() {
                s.ttft.record_ns(t);
            }
            if let Some(t) = r.itl_ns() {
                s.itl.record_ns(t);
            }
            s.e2e.record_ns(r.e2e_ns());
        }
        let done: Vec<u64> = self
            .open
            .range(..k.saturating_sub(1))
            .map(|(&i, _)| i)
            .collect();
        done.into_iter()
            .filter_map(|i| self.close(i, None))
            .collect()
    }

    /// The step is over at `end`: every slice still open, the last one cut at `end`.
    pub fn finish(&mut self, end: Nanos) -> Vec<SliceRecord> {
        let all: Vec<u64> = self.open.keys().copied().collect();
        all.into_iter()
            .filter_map(|i| self.close(i, Some(end)))
            .collect()
    }

    fn close(&mut self, k: u64, step_end: Option<Nanos>) -> Option<SliceRecord> {
        let s = self.open.remove(&k)?;
        let from = self.start + k * self.width;
        let mut to = from + self.width;
        if let Some(end) = step_end {
            // The last slice ends with the step (its drain included); one of an early end, there.
            to = if k == self.last { end } else { to.min(end) }.max(from + 1);
        }
        let secs = (to - from) as f64 / 1e9;
        Some(SliceRecord {
            step: self.step,
            slice: k,
            start_ms: from as f64 / 1e6,
            end_ms: to as f64 / 1e6,
            total_requests: s.total,
            successful_requests: s.successful,
            failed_requests: s.total - s.successful,
            output_tokens: s.output_tokens,
            request_rate: s.successful as f64 / secs,
            token_throughput_secs: s.output_tokens as f64 / secs,
            time_to_first_token_ms: s.ttft.summary(),
            inter_token_latency_ms: s.itl.summary(),
            e2e_latency_ms: s.e2e.summary(),
            server_metrics: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::tests::ok_request;
    use crate::event::Outcome;

    const S: Nanos = 1_000_000_000;

    fn ended_at(end: Nanos, ok: bool) -> RequestFinished {
        let mut r = ok_request("r", end.saturating_sub(S / 2));
        r.end_at = end;
        if !ok {
            r.outcome = Outcome::RateLimited;
        }
        r
    }

    #[test]
    fn requests_go_to_the_slice_they_ended_in_and_slices_close_behind() {
        let mut s = Slicer::new(1, 10 * S, 2 * S, 6 * S);
        assert!(s.record(&ended_at(11 * S, true)).is_empty());
        assert!(s.record(&ended_at(13 * S, false)).is_empty());
        // Slice 2 (14..16 s) opens: slice 0 is complete, slice 1 may still get a late record.
        let done = s.record(&ended_at(15 * S, true));
        assert_eq!(done.len(), 1);
        let first = &done[0];
        assert_eq!(
            (first.slice, first.total_requests, first.successful_requests),
            (0, 1, 1)
        );
        assert_eq!((first.start_ms, first.end_ms), (10_000.0, 12_000.0));
        assert_eq!(first.output_tokens, 5);
        assert_eq!(first.token_throughput_secs, 2.5);
        assert_eq!(first.time_to_first_token_ms.count, 1);
        // The drain: a request ending after the planned 6 s counts in the last slice.
        assert!(s.record(&ended_at(17 * S, true)).is_empty());
        let rest = s.finish(17 * S + S / 2);
        assert_eq!(rest.len(), 2);
        assert_eq!((rest[0].slice, rest[0].failed_requests), (1, 1));
        assert!(
            rest[0].time_to_first_token_ms.is_empty(),
            "no success: no figures"
        );
        assert_eq!((rest[1].slice, rest[1].total_requests), (2, 2));
        assert_eq!(
            rest[1].end_ms, 17_500.0,
            "the last slice ends with its step"
        );
        assert_eq!(rest[1].request_rate, 2.0 / 3.5);
    }

    #[test]
    fn a_long_step_keeps_few_slices_open() {
        let mut s = Slicer::new(1, 0, S, 1_000 * S);
        let mut closed = 0;
        for i in 0..10_000u64 {
            closed += s.record(&ended_at(i * S / 10, true)).len();
            assert!(s.open.len() <= 3, "{} open", s.open.len());
        }
        closed += s.finish(1_000 * S).len();
        assert_eq!(closed, 1_000);
    }
}
