//! Arrival times of the open loop (pure).
//!
//! Every arrival is an absolute time from the step's start: constant spacing is `start + k/rate`
//! computed for each k; random processes add seeded gaps to an exact running offset (integer
//! nanoseconds). Nothing here sleeps, so a late wake-up of the ticker never shifts later
//! arrivals: lateness shows up as queue delay, never as drift.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp, Gamma};
use sinks::event::Nanos;

pub use crate::config::arrival::Arrival;

/// Gaps between arrivals in units of expected arrivals (mean 1), before the rate is applied.
enum Gaps {
    Constant,
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
}

/// The arrivals of one step, in order.
///
/// Arrivals are generated in "operational time" — expected arrivals, where every process has
/// mean gap 1 — and mapped to seconds by inverting the cumulative rate Λ(t): without a ramp
/// Λ(t) = rate·t; with a ramp of T seconds the rate grows linearly from 0 to `rate`, so
/// Λ(t) = rate·t²/(2T) for t < T and rate·T/2 + rate·(t − T) after (time rescaling keeps the
/// process's shape: Poisson stays Poisson with the ramped intensity).
pub struct Schedule {
    start: Nanos,
    end: Nanos,
    rate: f64,
    ramp_secs: f64,
    gaps: Gaps,
    rng: StdRng,
    /// Operational time of the next arrival (expected arrivals since the start).
    next_op: f64,
    /// Trace replay: the arrivals' offsets from the start, and how many were handed out.
    replay: Option<(Arc<[Nanos]>, usize)>,
    /// Live control changed the pace: from `t0` seconds after the start, operational time goes
    /// on from `op0` at `rate` (the ramp, if any, is over).
    segment: Option<(f64, f64)>,
    /// Operational time of the arrival handed out last (not sent yet when the pace changes).
    pending_op: f64,
}

impl Schedule {
    /// Arrivals at `rate` per second from `start` until `end` (exclusive). A non-positive or
    /// non-finite rate has none. `seed` makes random processes reproducible.
    pub fn new(arrival: Arrival, start: Nanos, end: Nanos, rate: f64, seed: u64) -> Self {
        let valid = rate.is_finite() && rate > 0.0;
        let gaps = match arrival {
            Arrival::Constant => Gaps::Constant,
            Arrival::Poisson => Exp::new(1.0).map_or(Gaps::Constant, Gaps::Exp),
            Arrival::Gamma { burstiness } => {
                Gamma::new(burstiness, 1.0 / burstiness).map_or(Gaps::Constant, Gaps::Gamma)
            }
        };
        Schedule {
            start,
            end: if valid { end } else { start },
            rate,
            ramp_secs: 0.0,
            gaps,
            rng: StdRng::seed_from_u64(seed),
            next_op: 0.0,
            replay: None,
            segment: None,
            pending_op: 0.0,
        }
    }

    /// Arrivals at `start + offsets[k]` (a trace, in time order) until `end` (exclusive).
    pub fn replay(start: Nanos, end: Nanos, offsets: Arc<[Nanos]>) -> Self {
        Schedule {
            replay: Some((offsets, 0)),
            ..Schedule::new(Arrival::Constant, start, end, 1.0, 0)
        }
    }

    /// The rate grows linearly from 0 to its target over the first `ramp` of the step.
    pub fn with_ramp(mut self, ramp: std::time::Duration) -> Self {
        self.ramp_secs = ramp.as_secs_f64();
        self
    }

    /// When sending ends (exclusive).
    pub fn end(&self) -> Nanos {
        self.end
    }

    /// The arrival rate now, per second (after the ramp).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Expected arrivals from the start until `now`: Λ(now).
    pub fn op_at(&self, now: Nanos) -> f64 {
        let t = now.saturating_sub(self.start) as f64 / 1e9;
        if let Some((t0, op0)) = self.segment {
            if t >= t0 {
                return op0 + self.rate * (t - t0);
            }
        }
        if t < self.ramp_secs {
            self.rate * t * t / (2.0 * self.ramp_secs)
        } else {
            self.rate * self.ramp_secs / 2.0 + self.rate * (t - self.ramp_secs)
        }
    }

    /// Live control: from `now` on, arrivals go on from operational time `op` at `rate` per
    /// second (a rate change continues from Λ(now); a resume from where the pause left it, so
    /// the paused time sends nothing and is not made up). Returns the arrival handed out last,
    /// not sent yet, at its new time (None if that is past the end).
    pub fn continue_at(&mut self, now: Nanos, op: f64, rate: f64) -> Option<Nanos> {
        if !(rate.is_finite() && rate > 0.0) || self.replay.is_some() {
            return None;
        }
        self.rate = rate;
        self.segment = Some((now.saturating_sub(self.start) as f64 / 1e9, op));
        let at = self.start as f64 + (self.seconds_at(self.pending_op.max(op)) * 1e9).round();
        (at < self.end as f64).then_some(at as Nanos)
    }

    /// Seconds after the start at which `op` arrivals are expected: Λ⁻¹(op).
    fn seconds_at(&self, op: f64) -> f64 {
        if let Some((t0, op0)) = self.segment {
            if op >= op0 {
                return t0 + (op - op0) / self.rate;
            }
        }
        let ramp_arrivals = self.rate * self.ramp_secs / 2.0;
        if op < ramp_arrivals {
            (2.0 * self.ramp_secs * op / self.rate).sqrt()
        } else {
            self.ramp_secs + (op - ramp_arrivals) / self.rate
        }
    }

    /// The next arrival, or `None` once past the end.
    pub fn next_arrival(&mut self) -> Option<Nanos> {
        if self.end <= self.start {
            return None;
        }
        if let Some((offsets, next)) = &mut self.replay {
            let at = self.start.saturating_add(*offsets.get(*next)?);
            *next += 1;
            return (at < self.end).then_some(at);
        }
        let at = self.start as f64 + (self.seconds_at(self.next_op) * 1e9).round();
        if at >= self.end as f64 {
            return None;
        }
        // Constant spacing steps by exactly 1 (k arrivals at exactly k/rate: no accumulated
        // rounding); random processes draw their gap. The first arrival is at the start.
        self.pending_op = self.next_op;
        self.next_op += match &self.gaps {
            Gaps::Constant => 1.0,
            Gaps::Exp(d) => d.sample(&mut self.rng),
            Gaps::Gamma(d) => d.sample(&mut self.rng),
        };
        Some(at as Nanos)
    }
}

impl Iterator for Schedule {
    type Item = Nanos;

    fn next(&mut self) -> Option<Nanos> {
        self.next_arrival()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Nanos = 3_600_000_000_000;
    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn a_rate_change_continues_from_now_at_the_new_rate() {
        // 10/s from 0: arrivals at 0, 0.1, ... ; at 1.05 s the rate becomes 20/s.
        let mut s = Schedule::new(Arrival::Constant, 0, 10 * SEC, 10.0, 1);
        let mut last = 0;
        while last < SEC + SEC / 20 {
            last = s.next_arrival().unwrap();
        }
        assert_eq!(last, SEC + SEC / 10, "the arrival due at 1.1 s is pending");
        let now = SEC + SEC / 20;
        let op = s.op_at(now);
        assert!((op - 10.5).abs() < 1e-9, "{op}");
        // The pending arrival (op 11) comes 0.5 expected arrivals after now, at 20/s: 25 ms.
        assert_eq!(s.continue_at(now, op, 20.0), Some(now + SEC / 40));
        assert_eq!(s.next_arrival(), Some(now + SEC / 40 + SEC / 20));
    }

    #[test]
    fn a_pause_sends_nothing_and_makes_nothing_up() {
        let mut s = Schedule::new(Arrival::Constant, 0, 10 * SEC, 10.0, 1);
        for _ in 0..3 {
            s.next_arrival(); // 0, 0.1 and 0.2 s
        }
        // Paused at 0.15 s (op 1.5), resumed at 5.15 s: the arrival due at 0.2 s comes 50 ms
        // after the resume, then every 100 ms again.
        let op = s.op_at(SEC * 15 / 100);
        let resume = SEC * 515 / 100;
        assert_eq!(s.continue_at(resume, op, 10.0), Some(resume + SEC / 20));
        assert_eq!(s.next_arrival(), Some(resume + SEC / 20 + SEC / 10));
        assert_eq!(
            s.continue_at(10 * SEC, s.op_at(10 * SEC), 10.0),
            None,
            "past the end"
        );
    }

    fn gaps_secs(arrival: Arrival, rate: f64, n: usize) -> Vec<f64> {
        let times: Vec<Nanos> = Schedule::new(arrival, 0, HOUR * 1000, rate, 42)
            .take(n + 1)
            .collect();
        times
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 / 1e9)
            .collect()
    }

    /// Kolmogorov–Smirnov statistic of a sample against a CDF.
    fn ks(mut sample: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        sample.sort_by(f64::total_cmp);
        let n = sample.len() as f64;
        sample
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max)
    }

    /// Critical value of the KS test at α = 0.01.
    fn ks_critical(n: usize) -> f64 {
        1.628 / (n as f64).sqrt()
    }

    /// Regularized lower incomplete gamma P(a, x) (series / continued fraction).
    fn gamma_p(a: f64, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let ln_pre = a * x.ln() - x - ln_gamma(a);
        if x < a + 1.0 {
            let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
            for _ in 0..10_000 {
                ap += 1.0;
                term *= x / ap;
                sum += term;
                if term.abs() < sum.abs() * 1e-15 {
                    break;
                }
            }
            sum * ln_pre.exp()
        } else {
            // Lentz's continued fraction for Q(a, x).
            let tiny = 1e-300;
            let mut b = x + 1.0 - a;
            let mut c = 1.0 / tiny;
            let mut d = 1.0 / b;
            let mut h = d;
            for i in 1..10_000 {
                let an = -(i as f64) * (i as f64 - a);
                b += 2.0;
                d = an * d + b;
                if d.abs() < tiny {
                    d = tiny;
                }
                c = b + an / c;
                if c.abs() < tiny {
                    c = tiny;
                }
                d = 1.0 / d;
                let delta = d * c;
                h *= delta;
                if (delta - 1.0).abs() < 1e-15 {
                    break;
                }
            }
            1.0 - ln_pre.exp() * h
        }
    }

    /// Lanczos approximation of ln Γ(x).
    fn ln_gamma(x: f64) -> f64 {
        const G: [f64; 6] = [
            76.180_091_729_471_46,
            -86.505_320_329_416_77,
            24.014_098_240_830_91,
            -1.231_739_572_450_155,
            0.001_208_650_973_866_179,
            -0.000_005_395_239_384_953,
        ];
        let mut y = x;
        let tmp = x + 5.5;
        let tmp = tmp - (x + 0.5) * tmp.ln();
        let mut ser = 1.000_000_000_190_015;
        for g in G {
            y += 1.0;
            ser += g / y;
        }
        -tmp + (2.506_628_274_631_000_5 * ser / x).ln()
    }

    #[test]
    fn replay_sends_at_the_traces_offsets_until_the_end() {
        let offsets: Arc<[Nanos]> = vec![0, 5, 5, 40, 100].into();
        let times: Vec<Nanos> = Schedule::replay(1_000, 1_100, offsets).collect();
        assert_eq!(times, [1_000, 1_005, 1_005, 1_040]);
    }

    #[test]
    fn constant_arrivals_are_exact_and_do_not_drift() {
        let mut s = Schedule::new(Arrival::Constant, 5_000, 5_000 + HOUR, 300.0, 0);
        assert_eq!(s.next_arrival(), Some(5_000));
        // After a million arrivals the k-th is still exactly k/rate after the start.
        let k = 1_000_000;
        let kth = s.nth(k - 1);
        assert_eq!(kth, Some(5_000 + 3_333_333_333_333));
    }

    #[test]
    fn constant_count_matches_rate_times_duration() {
        let s: Vec<Nanos> = Schedule::new(Arrival::Constant, 0, 10_000_000_000, 20.0, 0).collect();
        assert_eq!(s.len(), 200);
        assert_eq!(s[199], 9_950_000_000);
    }

    #[test]
    fn zero_or_invalid_rate_has_no_arrivals() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            for a in [
                Arrival::Constant,
                Arrival::Poisson,
                Arrival::Gamma { burstiness: 0.5 },
            ] {
                assert_eq!(
                    Schedule::new(a, 0, HOUR, rate, 1).count(),
                    0,
                    "{a:?} {rate}"
                );
            }
        }
    }

    #[test]
    fn poisson_gaps_are_exponential() {
        let rate = 50.0;
        let gaps = gaps_secs(Arrival::Poisson, rate, 100_000);
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean * rate - 1.0).abs() < 0.01, "mean gap {mean}");
        let d = ks(gaps, |x| 1.0 - (-rate * x).exp());
        assert!(d < ks_critical(100_000), "KS D = {d}");
    }

    #[test]
    fn gamma_gaps_follow_the_burstiness_shape() {
        let rate = 20.0;
        for shape in [0.25, 0.5, 1.0, 4.0] {
            let gaps = gaps_secs(Arrival::Gamma { burstiness: shape }, rate, 100_000);
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
            // Gamma(k, θ = 1/(rate k)): mean 1/rate, coefficient of variation 1/√k.
            assert!(
                (mean * rate - 1.0).abs() < 0.02,
                "shape {shape}: mean {mean}"
            );
            let cv = var.sqrt() / mean;
            assert!(
                (cv * shape.sqrt() - 1.0).abs() < 0.03,
                "shape {shape}: cv {cv}"
            );
            if shape < 0.5 {
                // ~1 % of Gamma(0.25) gaps are under a nanosecond and come out as 0 or 1 ns: the
                // integer clock, not the process, would dominate the KS statistic.
                continue;
            }
            let theta = 1.0 / (rate * shape);
            let d = ks(gaps, |x| gamma_p(shape, x / theta));
            assert!(d < ks_critical(100_000), "shape {shape}: KS D = {d}");
        }
    }

    #[test]
    fn the_ks_test_rejects_the_wrong_distribution() {
        // Guards the test itself: constant gaps are not exponential.
        let gaps = gaps_secs(Arrival::Constant, 50.0, 10_000);
        assert!(ks(gaps, |x| 1.0 - (-50.0 * x).exp()) > ks_critical(10_000));
        assert!((gamma_p(1.0, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!((gamma_p(3.0, 10.0) - 0.997_230_604_284_488_6).abs() < 1e-9);
    }

    #[test]
    fn seeded_schedules_repeat_and_differ_by_seed() {
        let a: Vec<Nanos> = Schedule::new(Arrival::Poisson, 0, HOUR, 10.0, 7)
            .take(100)
            .collect();
        let b: Vec<Nanos> = Schedule::new(Arrival::Poisson, 0, HOUR, 10.0, 7)
            .take(100)
            .collect();
        let c: Vec<Nanos> = Schedule::new(Arrival::Poisson, 0, HOUR, 10.0, 8)
            .take(100)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0], 0, "the first arrival is at the step's start");
    }

    #[test]
    fn a_ramp_grows_the_rate_linearly_then_holds_it() {
        let secs = 1_000_000_000;
        let ramp = std::time::Duration::from_secs(10);
        let times: Vec<Nanos> = Schedule::new(Arrival::Constant, 0, 20 * secs, 10.0, 0)
            .with_ramp(ramp)
            .collect();
        // Λ(10 s) = 10 × 10 / 2 = 50 arrivals during the ramp, then 10 per second.
        assert_eq!(times.iter().filter(|&&t| t < 10 * secs).count(), 50);
        assert_eq!(times.len(), 150);
        let in_second = |s: u64| times.iter().filter(|&&t| t / secs == s).count();
        assert!(
            in_second(1) < in_second(5) && in_second(5) < in_second(9),
            "rising"
        );
        assert_eq!(in_second(15), 10);
        // The k-th ramp arrival is at sqrt(2 T k / rate): k = 2 at 2 s, k = 32 at 8 s.
        assert_eq!(times[2], 2 * secs);
        assert_eq!(times[32], 8 * secs);
    }

    #[test]
    fn a_ramped_poisson_process_has_the_ramped_count() {
        let secs = 1_000_000_000;
        let n: usize = (0..20)
            .map(|seed| {
                Schedule::new(Arrival::Poisson, 0, 10 * secs, 100.0, seed)
                    .with_ramp(std::time::Duration::from_secs(10))
                    .count()
            })
            .sum();
        // 20 runs × Λ(10 s) = 500 expected each: within 2 % of 10,000.
        assert!((n as f64 / 10_000.0 - 1.0).abs() < 0.02, "{n}");
    }

    #[test]
    fn arrival_parsing() {
        assert_eq!(Arrival::parse("poisson", 1.0), Ok(Arrival::Poisson));
        assert_eq!(
            Arrival::parse("gamma", 0.5),
            Ok(Arrival::Gamma { burstiness: 0.5 })
        );
        assert!(Arrival::parse("gamma", 0.0)
            .unwrap_err()
            .contains("burstiness"));
        assert!(Arrival::parse("uniform", 1.0)
            .unwrap_err()
            .contains("constant, poisson or gamma"));
    }
}
