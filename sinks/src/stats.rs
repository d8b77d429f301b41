//! Latency statistics: HDR histograms recorded in microseconds, summarized in
//! milliseconds.
//!
//! Pure logic, no actix. Histograms have bounded memory whatever the run length,
//! and merge exactly (across steps, and across machines through
//! [`LatencyHistogram::to_base64`] / [`LatencyHistogram::from_base64`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::confidence::{quantile_ranks, Interval};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Lowest value told apart from zero: 1 µs. Sub-microsecond latencies record as 0.
pub const LOWEST_US: u64 = 1;

/// Highest trackable value: one hour, in microseconds. Larger values are
/// saturated to it (see [`LatencyHistogram::saturated`]).
pub const HIGHEST_US: u64 = 3_600_000_000;

/// Three significant digits keep every recorded value within 0.1 % of the truth,
/// finer than the jitter of any network measurement. Over 1 µs .. 1 h that is
/// 23 552 u64 counters (184 KiB) per histogram; four digits would need 163 840
/// (1.25 MiB), seven times as much for every one of the seven histograms a step
/// keeps, and buy nothing measurable.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// An HDR histogram of latencies in microseconds with fixed bounds
/// ([`LOWEST_US`] .. [`HIGHEST_US`], [`SIGNIFICANT_DIGITS`]).
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // The bounds are constants that satisfy HDR's rules (low ≥ 1, high ≥ 2·low,
        // sigfig ≤ 5), so creation cannot fail.
        let hist = Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        LatencyHistogram { hist }
    }

    /// Records a latency given in nanoseconds, rounded to the nearest microsecond.
    pub fn record_ns(&mut self, ns: u64) {
        self.record_us(ns.saturating_add(500) / 1000);
    }

    /// Records a latency in microseconds; values above one hour are saturated.
    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us);
    }

    /// Adds every value of `other` to this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Both sides have the same bounds, so no value of `other` can fall out of range.
        if let Err(e) = self.hist.add(&other.hist) {
            log::error!("merging latency histograms failed: {e}");
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// How many values sit in the top bucket, i.e. were at or above one hour
    /// (within HDR resolution) and therefore saturated. Derived from the counts,
    /// so it survives merging and serialization.
    pub fn saturated(&self) -> u64 {
        self.hist.count_at(HIGHEST_US)
    }

    /// The latency in milliseconds at `quantile` (0 ..= 1, clamped); 0 when empty. For CDFs.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        us_to_ms(self.hist.value_at_quantile(quantile.clamp(0.0, 1.0)))
    }

    /// The `confidence` interval of the `quantile`, in milliseconds: distribution-free, from the
    /// order statistics that bracket it (`confidence.rs`), the low edge of the r-th smallest
    /// value's bucket and the high edge of the s-th's (so never narrower than the truth's).
    /// `None` when empty.
    pub fn quantile_interval_ms(&self, quantile: f64, confidence: f64) -> Option<Interval> {
        let h = &self.hist;
        if h.is_empty() {
            return None;
        }
        let (r, s) = quantile_ranks(h.len(), quantile, confidence);
        // The highest equivalent value of the bucket that holds the rank-th smallest value.
        let at_rank = |rank: u64| {
            let mut seen = 0;
            h.iter_recorded()
                .find(|v| {
                    seen += v.count_at_value();
                    seen >= rank
                })
                .map_or(h.max(), |v| v.value_iterated_to())
        };
        Some(Interval {
            low: r.map_or(0.0, |r| us_to_ms(h.lowest_equivalent(at_rank(r)))),
            high: s.map(|s| us_to_ms(h.highest_equivalent(at_rank(s)))),
        })
    }

    /// Percentiles, extremes, mean and standard deviation in milliseconds.
    /// An empty histogram gives `count == 0` (and zeros, never to be shown: see `known`).
    pub fn summary(&self) -> Summary {
        let h = &self.hist;
        if h.is_empty() {
            return Summary::default();
        }
        let q = |quantile: f64| us_to_ms(h.value_at_quantile(quantile));
        Summary {
            p50: q(0.50),
            p60: q(0.60),
            p70: q(0.70),
            p80: q(0.80),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            avg: h.mean() / 1000.0,
            p99_9: q(0.999),
            // `min()` is the lowest equivalent of the smallest value and `max()` the
            // highest equivalent of the largest, while quantiles report highest
            // equivalents: so min ≤ every percentile ≤ max always holds.
            min: us_to_ms(h.min()),
            max: us_to_ms(h.max()),
            stddev: h.stdev() / 1000.0,
            count: h.len(),
        }
    }

    /// HdrHistogram's V2 + deflate encoding, as standard base64: the exact counts,
    /// portable to any HdrHistogram implementation.
    pub fn to_base64(&self) -> Result<String, HistogramCodecError> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .map_err(|e| HistogramCodecError(format!("serialize: {e}")))?;
        Ok(BASE64.encode(bytes))
    }

    /// Decodes [`Self::to_base64`]'s output (or any V2 histogram whose values fit
    /// in 1 µs .. 1 h) into a histogram with our bounds.
    pub fn from_base64(text: &str) -> Result<Self, HistogramCodecError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| HistogramCodecError(format!("base64: {e}")))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramCodecError(format!("deserialize: {e:?}")))?;
        // Re-home the counts into a histogram with our own bounds, so that
        // everything we hand out merges with everything else.
        let mut out = LatencyHistogram::new();
        out.hist
            .add(&decoded)
            .map_err(|e| HistogramCodecError(format!("values out of range: {e}")))?;
        Ok(out)
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A latency distribution in milliseconds. The original tool's keys come first
/// (`p50` .. `p99`, `avg`), then ours. An empty one (`count == 0`: e.g. a step where no request
/// succeeded) has no figures: they are `null` in JSON, and whatever prints one asks
/// [`Summary::known`] first — a missing figure is never shown as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "SummaryJson", into = "SummaryJson")]
pub struct Summary {
    pub p50: f64,
    pub p60: f64,
    pub p70: f64,
    pub p80: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    /// Mean.
    pub avg: f64,
    pub p99_9: f64,
    pub min: f64,
    pub max: f64,
    /// Population standard deviation.
    pub stddev: f64,
    /// Number of values the summary is made of.
    pub count: u64,
}

impl Summary {
    /// No value was recorded: every figure is missing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `figure` (one of this summary's), or `None` when the summary is empty.
    pub fn known(&self, figure: f64) -> Option<f64> {
        (!self.is_empty()).then_some(figure)
    }
}

/// The JSON form of [`Summary`]: figures are `null` when nothing was recorded.
#[derive(Serialize, Deserialize)]
struct SummaryJson {
    p50: Option<f64>,
    p60: Option<f64>,
    p70: Option<f64>,
    p80: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    avg: Option<f64>,
    p99_9: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    stddev: Option<f64>,
    count: u64,
}

impl From<Summary> for SummaryJson {
    fn from(s: Summary) -> Self {
        let k = |v: f64| s.known(v);
        SummaryJson {
            p50: k(s.p50),
            p60: k(s.p60),
            p70: k(s.p70),
            p80: k(s.p80),
            p90: k(s.p90),
            p95: k(s.p95),
            p99: k(s.p99),
            avg: k(s.avg),
            p99_9: k(s.p99_9),
            min: k(s.min),
            max: k(s.max),
            stddev: k(s.stddev),
            count: s.count,
        }
    }
}

impl From<SummaryJson> for Summary {
    fn from(j: SummaryJson) -> Self {
        // A file written before figures could be null has zeros with count 0: the same.
        let v = |x: Option<f64>| x.unwrap_or(0.0);
        Summary {
            p50: v(j.p50),
            p60: v(j.p60),
            p70: v(j.p70),
            p80: v(j.p80),
            p90: v(j.p90),
            p95: v(j.p95),
            p99: v(j.p99),
            avg: v(j.avg),
            p99_9: v(j.p99_9),
            min: v(j.min),
            max: v(j.max),
            stddev: v(j.stddev),
            count: j.count,
        }
    }
}

/// A histogram could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramCodecError(pub String);

impl fmt::Display for HistogramCodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "histogram codec: {}", self.0)
    }
}

impl std::error::Error for HistogramCodecError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error HDR guarantees at 3 significant digits.
    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected.abs() * 1e-3 + 1e-9
    }

    fn one_to_thousand_ms() -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for ms in 1..=1000u64 {
            h.record_us(ms * 1000);
        }
        h
    }

    #[test]
    fn percentiles_of_known_data_within_hdr_precision() {
        let s = one_to_thousand_ms().summary();
        assert_eq!(s.count, 1000);
        for (got, want) in [
            (s.p50, 500.0),
            (s.p60, 600.0),
            (s.p70, 700.0),
            (s.p80, 800.0),
            (s.p90, 900.0),
            (s.p95, 950.0),
            (s.p99, 990.0),
            (s.p99_9, 999.0),
            (s.min, 1.0),
            (s.max, 1000.0),
            (s.avg, 500.5),
        ] {
            assert!(close(got, want), "got {got}, want {want}");
        }
        // Population stddev of 1..=1000 is sqrt((1000² − 1) / 12) ≈ 288.675.
        assert!((s.stddev - 288.675).abs() < 0.5, "stddev {}", s.stddev);
        assert!(s.min <= s.p50 && s.p50 <= s.p99_9 && s.p99_9 <= s.max);
    }

    /// What the glossary says of every percentile: the nearest-rank value (the ⌈q·n⌉-th
    /// smallest), reported at the top of its HDR bucket: never below it, at most 0.1 % above.
    #[test]
    fn percentiles_are_nearest_rank_at_the_top_of_their_bucket() {
        for n in [1u64, 2, 3, 7, 10, 20, 99, 101, 1000, 4321] {
            // Spread over five decades, from 1 µs to about 100 ms, not in order.
            let values: Vec<u64> = (0..n)
                .map(|i| 1 + (i * 7919 % n) * 97_531 / n.max(1))
                .collect();
            let mut h = LatencyHistogram::new();
            values.iter().for_each(|&v| h.record_us(v));
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let s = h.summary();
            for (q, got) in [
                (0.5, s.p50),
                (0.6, s.p60),
                (0.7, s.p70),
                (0.8, s.p80),
                (0.9, s.p90),
                (0.95, s.p95),
                (0.99, s.p99),
                (0.999, s.p99_9),
            ] {
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n as usize);
                let truth = sorted[rank - 1] as f64 / 1000.0;
                assert!(
                    got >= truth && got <= truth * 1.001,
                    "n {n}, p{}: got {got} ms, nearest rank {truth} ms",
                    q * 100.0
                );
            }
        }
    }

    #[test]
    fn nanoseconds_round_to_nearest_microsecond() {
        let mut h = LatencyHistogram::new();
        h.record_ns(1_499);
        h.record_ns(1_500);
        let s = h.summary();
        assert_eq!(s.min, 0.001);
        assert_eq!(s.max, 0.002);
    }

    #[test]
    fn empty_histogram_summarizes_to_zeros() {
        let h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.summary(), Summary::default());
        assert_eq!(h.summary().count, 0);
    }

    #[test]
    fn an_empty_summary_is_null_in_json_never_zero() {
        let json = serde_json::to_value(LatencyHistogram::new().summary()).unwrap();
        assert_eq!(json["count"], 0);
        for key in ["p50", "p99", "p99_9", "avg", "min", "max", "stddev"] {
            assert!(json[key].is_null(), "{key}: {json}");
        }
        let back: Summary = serde_json::from_value(json).unwrap();
        assert!(back.is_empty());
        assert_eq!(back.known(back.p50), None);
        let full = one_to_thousand_ms().summary();
        let back: Summary = serde_json::from_value(serde_json::to_value(full).unwrap()).unwrap();
        assert_eq!(back, full);
        assert_eq!(full.known(full.p50), Some(full.p50));
    }

    #[test]
    fn values_above_one_hour_are_saturated_and_counted() {
        let mut h = LatencyHistogram::new();
        h.record_us(10);
        h.record_us(HIGHEST_US * 5);
        h.record_ns(u64::MAX);
        assert_eq!(h.len(), 3);
        assert_eq!(h.saturated(), 2);
        assert!(close(h.summary().max, 3_600_000.0));
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for us in 1..=500u64 {
            a.record_us(us * 1000);
        }
        for us in 501..=1000u64 {
            b.record_us(us * 1000);
        }
        a.merge(&b);
        assert_eq!(a.summary(), one_to_thousand_ms().summary());
    }

    #[test]
    fn a_percentile_interval_brackets_it_by_order_statistics() {
        let mut h = LatencyHistogram::new();
        for us in 1..=100 {
            h.record_us(us * 1000); // 1 .. 100 ms
        }
        // The median of 100 values: between the 40th and the 61st at 95 %.
        let i = h.quantile_interval_ms(0.5, 0.95).unwrap();
        assert!(
            (i.low - 40.0).abs() < 0.05 && (i.high.unwrap() - 61.0).abs() < 0.1,
            "{i:?}"
        );
        // A p99 of 100 values cannot be bounded above at 95 %.
        assert_eq!(h.quantile_interval_ms(0.99, 0.95).unwrap().high, None);
        assert_eq!(
            LatencyHistogram::new().quantile_interval_ms(0.5, 0.95),
            None
        );
    }

    #[test]
    fn base64_round_trip_is_exact() {
        let mut h = one_to_thousand_ms();
        h.record_us(HIGHEST_US + 1);
        let text = h.to_base64().unwrap();
        let back = LatencyHistogram::from_base64(&text).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.summary(), h.summary());
        assert_eq!(back.saturated(), 1);

        let empty = LatencyHistogram::new().to_base64().unwrap();
        assert!(LatencyHistogram::from_base64(&empty).unwrap().is_empty());
    }

    #[test]
    fn bad_base64_is_an_error_not_a_panic() {
        assert!(LatencyHistogram::from_base64("not base64 !").is_err());
        assert!(LatencyHistogram::from_base64("AAAA").is_err());
        assert!(LatencyHistogram::from_base64("").is_err());
    }

    #[test]
    fn foreign_histogram_out_of_range_is_rejected() {
        let mut wide: Histogram<u64> = Histogram::new_with_bounds(1, HIGHEST_US * 100, 3).unwrap();
        wide.record(HIGHEST_US * 50).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&wide, &mut bytes)
            .unwrap();
        assert!(LatencyHistogram::from_base64(&BASE64.encode(bytes)).is_err());
    }
}
