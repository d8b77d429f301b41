//! The steps of a run (pure): warmup, then throughput / rates / sweep.

use std::sync::Arc;
use std::time::Duration;

use sinks::event::{Nanos, StepInfo, StepKind};

use crate::config::{BenchmarkKind, RunConfig};
use crate::load::schedule::Arrival;

/// Users of the warmup step: one, as the original tool's warmup, so the server's caches and
/// JIT warm up without queueing.
pub const WARMUP_VUS: u64 = 1;

/// The sweep's rates go up to this factor of the measured maximum (the original tool's choice).
pub const SWEEP_MAX_FACTOR: f64 = 1.2;

#[derive(Clone, Debug, PartialEq)]
pub struct StepPlan {
    pub kind: StepKind,
    pub vus: u64,
    pub rate: Option<f64>,
    pub duration: Duration,
    /// How an open-loop step's arrivals are spaced (named in its id).
    pub arrival: Arrival,
    /// Trace replay: the arrival offsets of the step's requests, in order; `None` when the
    /// arrival process makes them.
    pub replay: Option<Arc<[Nanos]>>,
}

impl StepPlan {
    /// The original tool's step ids, with the arrival process named: `constant@2.00req/s` as
    /// the original, `poisson@2.00req/s`, `gamma@2.00req/s`, `trace@…` (the executor type stays
    /// the original's `ConstantArrivalRate` for every open-loop step, as its dashboard needs);
    /// rates below 0.1 req/s with the digits that tell them apart (`sinks::event::rate_step_id`).
    pub fn id(&self) -> String {
        let arrival = if self.replay.is_some() {
            "trace"
        } else {
            self.arrival.name()
        };
        match (self.kind, self.rate) {
            (StepKind::Warmup, _) => "warmup".into(),
            (StepKind::Throughput, _) => "throughput".into(),
            (StepKind::Rate, Some(r)) => sinks::event::rate_step_id(arrival, r),
            (StepKind::Rate, None) => arrival.into(),
        }
    }

    pub fn info(&self, index: u32) -> StepInfo {
        StepInfo {
            index,
            id: self.id(),
            kind: self.kind,
            max_vus: self.vus,
            rate: self.rate,
            duration_secs: self.duration.as_secs_f64(),
        }
    }
}

/// The steps known before the run starts (a sweep adds its rates after the throughput step).
/// With a trace to replay, its one step replaces the benchmark kind's.
pub fn initial_steps(
    cfg: &RunConfig,
    replay: Option<&Arc<[Nanos]>>,
) -> Result<Vec<StepPlan>, String> {
    let mut steps = Vec::new();
    if !cfg.warmup.is_zero() {
        steps.push(StepPlan {
            kind: StepKind::Warmup,
            vus: WARMUP_VUS,
            rate: None,
            duration: cfg.warmup,
            arrival: Arrival::Constant,
            replay: None,
        });
    }
    if let Some(arrivals) = replay {
        steps.push(trace_step(cfg, arrivals.clone()));
        return Ok(steps);
    }
    let throughput = StepPlan {
        kind: StepKind::Throughput,
        // --vus starts fewer users than the most live control may scale to.
        vus: cfg.vus.map_or(cfg.max_vus, |v| v.clamp(1, cfg.max_vus)),
        rate: None,
        duration: cfg.duration,
        arrival: Arrival::Constant,
        replay: None,
    };
    match cfg.benchmark_kind {
        BenchmarkKind::Throughput | BenchmarkKind::Sweep => steps.push(throughput),
        BenchmarkKind::Rate => {
            let rates = cfg
                .rates
                .as_deref()
                .filter(|r| !r.is_empty())
                .ok_or("--benchmark-kind rate needs --rates (e.g. --rates 1,5,10)")?;
            steps.extend(rates.iter().map(|&r| rate_step(cfg, r)));
        }
    }
    Ok(steps)
}

pub fn rate_step(cfg: &RunConfig, rate: f64) -> StepPlan {
    StepPlan {
        kind: StepKind::Rate,
        vus: cfg.max_vus,
        rate: Some(rate),
        duration: cfg.duration,
        arrival: cfg.arrival,
        replay: None,
    }
}

/// The replay of a trace: open loop, up to `max_vus` in flight, lasting until its last arrival;
/// its rate is the trace's mean (requests over that span).
pub fn trace_step(cfg: &RunConfig, arrivals: Arc<[Nanos]>) -> StepPlan {
    let last = arrivals.iter().copied().max().unwrap_or(0);
    // The window ends just after the last arrival (the schedule's end is exclusive).
    let duration = Duration::from_nanos(last) + Duration::from_millis(1);
    StepPlan {
        kind: StepKind::Rate,
        vus: cfg.max_vus,
        rate: Some(arrivals.len() as f64 / duration.as_secs_f64()),
        duration,
        arrival: Arrival::Constant,
        replay: Some(arrivals),
    }
}

/// `num_rates` evenly spaced rates up to `SWEEP_MAX_FACTOR` × the measured maximum.
pub fn sweep_rates(max_rate: f64, num_rates: u64) -> Vec<f64> {
    if max_rate.is_nan() || max_rate <= 0.0 || num_rates == 0 {
        return Vec::new();
    }
    let top = max_rate * SWEEP_MAX_FACTOR;
    (1..=num_rates)
        .map(|i| top * i as f64 / num_rates as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_rates_reach_1_2_times_max() {
        let r = sweep_rates(10.0, 4);
        assert_eq!(r.len(), 4);
        assert!((r[0] - 3.0).abs() < 1e-9);
        assert!((r[3] - 12.0).abs() < 1e-9);
        assert!(sweep_rates(0.0, 4).is_empty());
        assert!(sweep_rates(f64::NAN, 4).is_empty());
    }

    #[test]
    fn step_ids_match_the_original_tool() {
        let p = StepPlan {
            kind: StepKind::Rate,
            vus: 8,
            rate: Some(2.5),
            duration: Duration::from_secs(1),
            arrival: Arrival::Constant,
            replay: None,
        };
        assert_eq!(p.id(), "constant@2.50req/s");
    }

    #[test]
    fn rate_steps_are_named_for_their_arrival_process() {
        let mut cfg = RunConfig::new("http://x");
        assert_eq!(rate_step(&cfg, 2.5).id(), "constant@2.50req/s");
        cfg.arrival = Arrival::Poisson;
        let poisson = rate_step(&cfg, 2.5);
        assert_eq!(poisson.id(), "poisson@2.50req/s");
        assert_eq!(poisson.info(1).arrival(), Some("poisson"));
        cfg.arrival = Arrival::Gamma { burstiness: 0.5 };
        assert_eq!(rate_step(&cfg, 2.5).id(), "gamma@2.50req/s");
        assert_eq!(
            initial_steps(&cfg, None).unwrap()[1].info(1).arrival(),
            None
        );
    }

    #[test]
    fn small_rates_have_ids_that_tell_them_apart() {
        let mut cfg = RunConfig::new("http://x");
        cfg.benchmark_kind = BenchmarkKind::Rate;
        cfg.rates = Some(vec![0.001, 0.002, 10.0]);
        let ids: Vec<String> = initial_steps(&cfg, None).unwrap()[1..]
            .iter()
            .map(StepPlan::id)
            .collect();
        assert_eq!(
            ids,
            [
                "constant@0.001req/s",
                "constant@0.002req/s",
                "constant@10.00req/s"
            ]
        );
        let line = crate::coordinator::step_line::starting(&rate_step(&cfg, 0.001));
        assert!(line.contains("at 0.001 req/s"), "{line}");
    }

    #[test]
    fn a_trace_is_one_step_over_its_span() {
        let mut cfg = RunConfig::new("http://x");
        cfg.max_vus = 7;
        let arrivals: Arc<[Nanos]> = vec![0, 1_000_000_000, 3_999_000_000].into();
        let steps = initial_steps(&cfg, Some(&arrivals)).unwrap();
        assert_eq!(steps.len(), 2, "warmup, then the trace");
        let t = &steps[1];
        assert_eq!(t.duration, Duration::from_secs(4));
        assert_eq!(t.rate, Some(0.75));
        assert_eq!(t.vus, 7);
        assert_eq!(t.id(), "trace@0.75req/s");
    }
}
