//! One step's window of scrapes → its `server_metrics` (pure).
//!
//! Memory is bounded by the number of series, not the length of the step: gauges keep running
//! sums and at most [`RESERVOIR`] samples for their quantiles, counters and histograms only their
//! last value and the increase so far.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

use super::aliases::{self, Combine, Kind};
use super::parse::{Family, Scrape, Value};
use super::{Buckets, SeriesSummary, ServerMetrics};

/// Gauge samples kept for the quantiles: beyond this (34 minutes at 1 s) a uniform sample of
/// them (reservoir sampling).
pub const RESERVOIR: usize = 2048;

/// How `other` series (kept by `--server-metrics-filter`) combine across label sets.
const OTHER_COMBINE: Combine = Combine::Sum;

#[derive(Clone, Debug)]
struct GaugeAgg {
    sum: f64,
    n: u64,
    max: f64,
    kept: Vec<f64>,
    rng: u64,
}

impl GaugeAgg {
    fn new() -> Self {
        GaugeAgg {
            sum: 0.0,
            n: 0,
            max: f64::NEG_INFINITY,
            kept: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn record(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
        self.max = self.max.max(v);
        if self.kept.len() < RESERVOIR {
            self.kept.push(v);
            return;
        }
        // xorshift64: a uniform slot in 0..n; kept when it falls in the reservoir.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = (self.rng % self.n) as usize;
        if slot < RESERVOIR {
            self.kept[slot] = v;
        }
    }
}

/// The increase of one monotonic series so far, resets included.
#[derive(Clone, Debug, Default)]
struct CounterTrack {
    last: f64,
    increase: f64,
}

impl CounterTrack {
    /// A drop means the counter restarted from 0: the new value is all increase.
    fn update(&mut self, v: f64) {
        self.increase += if v >= self.last { v - self.last } else { v };
        self.last = v;
    }
}

#[derive(Clone, Debug, Default)]
struct HistTrack {
    last: Vec<(f64, f64)>,
    last_count: f64,
    last_sum: f64,
    /// Cumulative bucket increases by `le` (its bits: ordered for non-negative bounds).
    delta: BTreeMap<u64, f64>,
    count: f64,
    sum: f64,
}

impl HistTrack {
    fn update(&mut self, buckets: &[(f64, f64)], count: f64, sum: f64) {
        let reset = count < self.last_count;
        for &(le, v) in buckets {
            let before = if reset {
                0.0
            } else {
                self.last
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |(_, c)| *c)
            };
            *self.delta.entry(le.max(0.0).to_bits()).or_default() += (v - before).max(0.0);
        }
        let (c0, s0) = if reset {
            (0.0, 0.0)
        } else {
            (self.last_count, self.last_sum)
        };
        self.count += (count - c0).max(0.0);
        self.sum += sum - s0;
        self.last = buckets.to_vec();
        self.last_count = count;
        self.last_sum = sum;
    }
}

#[derive(Clone, Debug)]
enum Agg {
    Gauge(GaugeAgg),
    Counter(HashMap<(usize, String), CounterTrack>),
    Histogram(HashMap<(usize, String), HistTrack>),
}

#[derive(Clone, Debug)]
struct Track {
    known: bool,
    source: BTreeSet<String>,
    unit: &'static str,
    combine: Combine,
    agg: Agg,
}

/// One step's scrapes of every endpoint, aggregated as they come.
#[derive(Clone, Debug)]
pub struct MetricsWindow {
    endpoints: Vec<String>,
    filter: Option<Regex>,
    /// Endpoints answered at least once in this window: a series first seen later was born in
    /// the window and counts from 0; at an endpoint's first answer every value is the baseline.
    seen: Vec<bool>,
    gauges_open: bool,
    scrapes: u64,
    failed: u64,
    engines: BTreeSet<&'static str>,
    span: Option<(f64, f64)>,
    tracks: BTreeMap<String, Track>,
}

impl MetricsWindow {
    pub fn new(endpoints: Vec<String>, filter: Option<Regex>) -> Self {
        MetricsWindow {
            seen: vec![false; endpoints.len()],
            endpoints,
            filter,
            gauges_open: true,
            scrapes: 0,
            failed: 0,
            engines: BTreeSet::new(),
            span: None,
            tracks: BTreeMap::new(),
        }
    }

    /// Gauges are the sending window's: scrapes after this one feed counters and histograms only.
    pub fn close_gauges(&mut self) {
        self.gauges_open = false;
    }

    /// One round: every endpoint scraped at about `t` seconds, `None` for each that failed.
    pub fn observe(&mut self, t: f64, round: &[(usize, Option<&Scrape>)]) {
        self.observe_round(t, round, true);
    }

    /// The step's first round, taken before its first request: the counters' baseline, not a
    /// gauge sample (the load has not started).
    pub fn observe_baseline(&mut self, t: f64, round: &[(usize, Option<&Scrape>)]) {
        self.observe_round(t, round, false);
    }

    fn observe_round(&mut self, t: f64, round: &[(usize, Option<&Scrape>)], sample: bool) {
        let mut gauges: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut answered = false;
        for &(e, scrape) in round {
            let Some(scrape) = scrape else {
                self.failed += 1;
                continue;
            };
            answered = true;
            self.scrapes += 1;
            let baseline = !std::mem::replace(&mut self.seen[e], true);
            self.observe_endpoint(e, scrape, baseline, &mut gauges);
        }
        if answered {
            let (first, _) = self.span.unwrap_or((t, t));
            self.span = Some((first, t));
        }
        if !(self.gauges_open && sample) {
            return;
        }
        for (key, values) in gauges {
            let Some(track) = self.tracks.get_mut(&key) else {
                continue;
            };
            let (Agg::Gauge(g), false) = (&mut track.agg, values.is_empty()) else {
                continue;
            };
            let total: f64 = values.iter().sum();
            g.record(match track.combine {
                Combine::Sum => total,
                Combine::Mean => total / values.len() as f64,
            });
        }
    }

    fn observe_endpoint(
        &mut self,
        e: usize,
        scrape: &Scrape,
        baseline: bool,
        gauges: &mut BTreeMap<String, Vec<f64>>,
    ) {
        let by_name: HashMap<&str, &Family> = scrape
            .families
            .iter()
            .map(|f| (f.name.as_str(), f))
            .collect();
        for family in &scrape.families {
            if let Some(engine) = aliases::engine_of(&family.name) {
                self.engines.insert(engine);
            }
        }
        for a in aliases::ALIASES {
            if let Some((source, families)) = a.pick(&by_name) {
                let track = self.track(a.key, true, a.unit, a.combine, a.kind);
                if !track.source.contains(source) {
                    track.source.insert(source.to_string());
                }
                for f in families {
                    Self::feed(track, a.key, e, f, baseline, gauges);
                }
            }
        }
        let Some(filter) = self.filter.clone() else {
            return;
        };
        for f in &scrape.families {
            if aliases::alias_of(&f.name).is_none() && filter.is_match(&f.name) {
                let track = self.track(&f.name, false, "", OTHER_COMBINE, f.kind);
                if track.source.is_empty() {
                    track.source.insert(f.name.clone());
                }
                Self::feed(track, &f.name, e, f, baseline, gauges);
            }
        }
    }

    fn track(
        &mut self,
        key: &str,
        known: bool,
        unit: &'static str,
        combine: Combine,
        kind: Kind,
    ) -> &mut Track {
        self.tracks.entry(key.to_string()).or_insert_with(|| Track {
            known,
            source: BTreeSet::new(),
            unit,
            combine,
            agg: match kind {
                Kind::Gauge => Agg::Gauge(GaugeAgg::new()),
                Kind::Counter => Agg::Counter(HashMap::new()),
                Kind::Histogram => Agg::Histogram(HashMap::new()),
            },
        })
    }

    /// One family's series into its track. Counters and histograms are followed per endpoint,
    /// family and label set; gauges gathered for the round's combined sample.
    fn feed(
        track: &mut Track,
        key: &str,
        e: usize,
        family: &Family,
        baseline: bool,
        gauges: &mut BTreeMap<String, Vec<f64>>,
    ) {
        for s in &family.series {
            let id = || (e, format!("{}{{{}}}", family.name, s.labels));
            match (&mut track.agg, &s.value) {
                (Agg::Gauge(_), Value::Scalar(v)) if v.is_finite() => {
                    gauges.entry(key.to_string()).or_default().push(*v);
                }
                (Agg::Counter(per), Value::Scalar(v)) if v.is_finite() => {
                    let born = !per.contains_key(&id());
                    let c = per.entry(id()).or_default();
                    if born && baseline {
                        c.last = *v;
                    } else {
                        c.update(*v);
                    }
                }
                (
                    Agg::Histogram(per),
                    Value::Histogram {
                        buckets,
                        count,
                        sum,
                    },
                ) => {
                    let born = !per.contains_key(&id());
                    let h = per.entry(id()).or_default();
                    if born && baseline {
                        h.last = buckets.clone();
                        h.last_count = *count;
                        h.last_sum = *sum;
                    } else {
                        h.update(buckets, *count, *sum);
                    }
                }
                _ => {}
            }
        }
    }

    /// The window's summary; `output_tokens` (the step's) gives `joules_per_output_token`.
    pub fn finish(&self, output_tokens: u64) -> ServerMetrics {
        let seconds = self.span.map_or(0.0, |(a, b)| b - a);
        let mut series = BTreeMap::new();
        let mut other = BTreeMap::new();
        for (key, track) in &self.tracks {
            let Some(summary) = summarize(track, seconds) else {
                continue;
            };
            if track.known {
                series.insert(key.clone(), summary);
            } else {
                other.insert(key.clone(), summary);
            }
        }
        let mut m = ServerMetrics {
            endpoints: self.endpoints.join(", "),
            engine: (!self.engines.is_empty())
                .then(|| self.engines.iter().copied().collect::<Vec<_>>().join(", ")),
            scrapes: self.scrapes,
            failed_scrapes: self.failed,
            series,
            prefix_cache_hit_rate: None,
            joules_per_output_token: None,
            other,
        };
        m.derive(output_tokens);
        m
    }
}

fn summarize(track: &Track, seconds: f64) -> Option<SeriesSummary> {
    let source = track.source.iter().cloned().collect::<Vec<_>>().join(", ");
    let unit = track.unit.to_string();
    Some(match &track.agg {
        Agg::Gauge(g) => {
            let mut kept = g.kept.clone();
            kept.sort_by(f64::total_cmp);
            SeriesSummary::Gauge {
                source,
                unit,
                mean: (g.n > 0).then(|| g.sum / g.n as f64),
                max: (g.n > 0).then_some(g.max),
                p50: nearest_rank(&kept, 0.50),
                p99: nearest_rank(&kept, 0.99),
                samples: g.n,
            }
        }
        Agg::Counter(per) => {
            let increase: f64 = per.values().map(|c| c.increase).sum();
            SeriesSummary::Counter {
                source,
                unit,
                increase,
                rate_per_s: (seconds > 0.0).then(|| increase / seconds),
            }
        }
        Agg::Histogram(per) => {
            let mut cumulative: BTreeMap<u64, f64> = BTreeMap::new();
            let (mut count, mut sum) = (0.0, 0.0);
            for h in per.values() {
                for (le, v) in &h.delta {
                    *cumulative.entry(*le).or_default() += v;
                }
                count += h.count;
                sum += h.sum;
            }
            let bounds: Vec<(f64, f64)> = cumulative
                .into_iter()
                .map(|(le, v)| (f64::from_bits(le), v))
                .collect();
            SeriesSummary::Histogram {
                source,
                unit,
                count,
                sum,
                p50: histogram_quantile(&bounds, 0.50),
                p90: histogram_quantile(&bounds, 0.90),
                p99: histogram_quantile(&bounds, 0.99),
                buckets: Buckets(bounds),
            }
        }
    })
}

/// The `q` quantile of sorted values (nearest rank); None without values.
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Prometheus' `histogram_quantile` over cumulative buckets (ascending `le`, `+Inf` last):
/// linear within the bucket holding the rank, from the previous bound (0 for the first); a rank
/// in the `+Inf` bucket is the highest finite bound. None when the buckets count nothing.
pub fn histogram_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, cum) in buckets {
        if cum >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = cum - below;
            return Some(if inside > 0.0 {
                lower + (le - lower) * (rank - below) / inside
            } else {
                le
            });
        }
        lower = le;
        below = cum;
    }
    Some(lower)
}
