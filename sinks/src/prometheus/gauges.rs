//! Live values no event carries (requests in flight, virtual users, the run's phase, event-loop
//! lag per worker arbiter): the request path and the coordinator write them into atomics, the
//! Prometheus sink reads them when it is scraped or pushes. Writing costs one relaxed atomic op.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

/// Where the run is. Exported as a state set: one series per phase, 1 for the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the first step and after the last one.
    Idle,
    /// Step 0: requests that never enter the results.
    Warmup,
    /// A measured step's sending window.
    Step,
    /// Sending has stopped; the step's in-flight requests are finishing.
    Drain,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Idle, Phase::Warmup, Phase::Step, Phase::Drain];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Warmup => "warmup",
            Phase::Step => "step",
            Phase::Drain => "drain",
        }
    }

    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Warmup,
            2 => Phase::Step,
            3 => Phase::Drain,
            _ => Phase::Idle,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Phase::Idle => 0,
            Phase::Warmup => 1,
            Phase::Step => 2,
            Phase::Drain => 3,
        }
    }
}

/// Shared by the coordinator, the load models, the worker arbiters and the sink.
#[derive(Debug)]
pub struct LiveGauges {
    in_flight: AtomicI64,
    virtual_users: AtomicI64,
    phase: AtomicU8,
    /// Latest event-loop lag of each worker arbiter, in nanoseconds.
    lag_ns: Box<[AtomicU64]>,
    /// Worst lag of any worker since the last [`LiveGauges::take_worst_lag`]: the generator's
    /// health is judged on it, as a sampler reading the latest value would miss spikes.
    worst_lag_ns: AtomicU64,
    /// The trace sink's span counters, when traces are on.
    traces: std::sync::OnceLock<std::sync::Arc<crate::otlp::OtlpStats>>,
    /// The server's requests waiting and KV-cache usage at the scraper's latest round (`f64`
    /// bits; NaN: not known), for the live console.
    server_waiting: AtomicU64,
    server_kv_cache: AtomicU64,
}

impl LiveGauges {
    /// `workers`: how many worker arbiters report their lag.
    pub fn new(workers: usize) -> LiveGauges {
        LiveGauges {
            in_flight: AtomicI64::new(0),
            virtual_users: AtomicI64::new(0),
            phase: AtomicU8::new(Phase::Idle.to_u8()),
            lag_ns: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            worst_lag_ns: AtomicU64::new(0),
            traces: std::sync::OnceLock::new(),
            server_waiting: AtomicU64::new(f64::NAN.to_bits()),
            server_kv_cache: AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    /// The scraper's latest round: requests waiting and KV-cache usage (0..1), None when the
    /// round did not have them. Two stores: never waits.
    pub fn set_server(&self, waiting: Option<f64>, kv_cache: Option<f64>) {
        let bits = |v: Option<f64>| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN).to_bits();
        self.server_waiting.store(bits(waiting), Ordering::Relaxed);
        self.server_kv_cache
            .store(bits(kv_cache), Ordering::Relaxed);
    }

    /// The server's requests waiting at the latest scrape, if known.
    pub fn server_waiting(&self) -> Option<f64> {
        let v = f64::from_bits(self.server_waiting.load(Ordering::Relaxed));
        (!v.is_nan()).then_some(v)
    }

    /// The server's KV-cache usage (0..1) at the latest scrape, if known.
    pub fn server_kv_cache(&self) -> Option<f64> {
        let v = f64::from_bits(self.server_kv_cache.load(Ordering::Relaxed));
        (!v.is_nan()).then_some(v)
    }

    /// The trace sink's counters, exported as `trace_spans_total{result}`.
    pub fn attach_traces(&self, stats: std::sync::Arc<crate::otlp::OtlpStats>) {
        let _ = self.traces.set(stats);
    }

    /// Spans exported, dropped (queue full) and failed to export so far; zeros without traces.
    pub fn trace_spans(&self) -> [u64; 3] {
        self.traces.get().map_or([0; 3], |s| {
            [
                s.exported.load(Ordering::Relaxed),
                s.dropped.load(Ordering::Relaxed),
                s.failed.load(Ordering::Relaxed),
            ]
        })
    }

    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn user_started(&self) {
        self.virtual_users.fetch_add(1, Ordering::Relaxed);
    }

    pub fn user_ended(&self) {
        self.virtual_users.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase.to_u8(), Ordering::Relaxed);
    }

    /// Records worker `worker`'s latest lag; an unknown worker index is ignored.
    pub fn set_lag(&self, worker: usize, lag: Duration) {
        if let Some(slot) = self.lag_ns.get(worker) {
            let ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
            slot.store(ns, Ordering::Relaxed);
            self.worst_lag_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    /// The worst lag any worker reported since the previous call, in seconds; starts a new
    /// window.
    pub fn take_worst_lag(&self) -> f64 {
        self.worst_lag_ns.swap(0, Ordering::Relaxed) as f64 / 1e9
    }

    /// Requests being executed now (never negative, even if a reader races a decrement).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn virtual_users(&self) -> u64 {
        self.virtual_users.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub fn workers(&self) -> usize {
        self.lag_ns.len()
    }

    /// Lag of `worker` in seconds (0 for an unknown worker).
    pub fn lag_seconds(&self, worker: usize) -> f64 {
        self.lag_ns
            .get(worker)
            .map_or(0.0, |s| s.load(Ordering::Relaxed) as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_and_down() {
        let g = LiveGauges::new(2);
        g.request_started();
        g.request_started();
        g.request_ended();
        g.user_started();
        assert_eq!(g.in_flight(), 1);
        assert_eq!(g.virtual_users(), 1);
        g.user_ended();
        g.user_ended();
        assert_eq!(g.virtual_users(), 0, "a reader never sees a negative count");
    }

    #[test]
    fn server_figures_are_known_or_not() {
        let g = LiveGauges::new(1);
        assert_eq!((g.server_waiting(), g.server_kv_cache()), (None, None));
        g.set_server(Some(3.0), Some(0.5));
        assert_eq!(
            (g.server_waiting(), g.server_kv_cache()),
            (Some(3.0), Some(0.5))
        );
        g.set_server(None, Some(f64::NAN));
        assert_eq!((g.server_waiting(), g.server_kv_cache()), (None, None));
    }

    #[test]
    fn phase_round_trips() {
        let g = LiveGauges::new(0);
        assert_eq!(g.phase(), Phase::Idle);
        for p in Phase::ALL {
            g.set_phase(p);
            assert_eq!(g.phase(), p);
        }
    }

    #[test]
    fn lag_per_worker() {
        let g = LiveGauges::new(2);
        g.set_lag(1, Duration::from_millis(3));
        g.set_lag(7, Duration::from_secs(1));
        assert_eq!(g.lag_seconds(0), 0.0);
        assert!((g.lag_seconds(1) - 0.003).abs() < 1e-12);
        assert_eq!(g.lag_seconds(7), 0.0);
    }

    #[test]
    fn the_worst_lag_of_a_window_is_kept_until_taken() {
        let g = LiveGauges::new(2);
        g.set_lag(0, Duration::from_millis(40));
        g.set_lag(0, Duration::from_millis(1));
        g.set_lag(1, Duration::from_millis(2));
        assert!(
            (g.lag_seconds(0) - 0.001).abs() < 1e-12,
            "the gauge is the latest"
        );
        assert!(
            (g.take_worst_lag() - 0.040).abs() < 1e-12,
            "the spike is not missed"
        );
        assert_eq!(g.take_worst_lag(), 0.0, "a new window");
        assert_eq!(g.workers(), 2);
    }
}
