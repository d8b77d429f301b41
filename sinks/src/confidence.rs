//! How sure a figure is (pure): the distribution-free confidence interval of a percentile from
//! the order statistics of a sample, and the Wilson interval of a proportion.
//!
//! A percentile objective (`p99(ttft) < 500ms`) judged from a point estimate flips from run to
//! run near its limit; judged from its interval it passes when the whole interval is below the
//! limit, fails when the whole interval is above, and is *uncertain* in between (more samples
//! decide it). The percentile's interval needs no assumption about the latency distribution:
//! the number of samples below the true q-quantile is Binomial(n, q), so the r-th and s-th
//! smallest samples bracket it with probability P(r ≤ B < s) (e.g. Hahn & Meeker, *Statistical
//! Intervals*, ch. 5). The HDR histograms already hold the order statistics, to their bucket.

/// How a figure compares with its limit, given its interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval meets the objective.
    Pass,
    /// The whole interval misses it.
    Fail,
    /// The interval straddles the limit: more samples would tell.
    Uncertain,
}

/// A two-sided interval; `high` is `None` when the sample is too small to bound the figure
/// from above at the confidence asked (a p99 of 50 requests has no upper bound at 95 %).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: Option<f64>,
}

impl Interval {
    /// Judges "the figure < `limit`" (`below`) or "the figure > `limit`" (not `below`); a
    /// figure equal to the limit counts as on the limit's far side (`<=` and `>=` differ from
    /// `<` and `>` only on a set of measure zero for continuous figures).
    pub fn verdict(&self, below: bool, limit: f64) -> Verdict {
        let high = self.high.unwrap_or(f64::INFINITY);
        match below {
            true if high < limit => Verdict::Pass,
            true if self.low >= limit => Verdict::Fail,
            false if self.low > limit => Verdict::Pass,
            false if high <= limit => Verdict::Fail,
            _ => Verdict::Uncertain,
        }
    }
}

/// The z of a two-sided `confidence` (0.95 → 1.96).
pub fn z_for(confidence: f64) -> f64 {
    inverse_normal_cdf(0.5 + confidence.clamp(0.0, 0.999_999) / 2.0)
}

/// The 1-based ranks `(r, s)` of the order statistics of `n` samples that bracket the
/// `q`-quantile with probability at least `confidence`: `r` is `None` when no sample bounds it
/// from below (then 0 does), `s` when none bounds it from above.
pub fn quantile_ranks(n: u64, q: f64, confidence: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 {
        return (None, None);
    }
    let q = q.clamp(0.0, 1.0);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    // X(r) ≤ ξq ⇔ at least r samples are ≤ ξq ⇔ B ≥ r: the largest r with P(B ≤ r − 1) ≤ tail;
    // X(s) ≥ ξq ⇔ B ≤ s − 1: the smallest s with P(B ≤ s − 1) ≥ 1 − tail.
    let cdf = BinomialCdf::new(n, q);
    let mut low = None;
    let mut high = None;
    for k in 0..=n {
        let c = cdf.at(k);
        if c <= tail {
            low = Some(k + 1);
        }
        if c >= 1.0 - tail {
            high = Some(k + 1);
            break;
        }
    }
    (low.filter(|r| *r >= 1), high.filter(|s| *s <= n))
}

/// The Wilson score interval of `successes` out of `n` at `confidence` (`None` when `n` is 0).
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let (k, n) = (successes.min(n) as f64, n as f64);
    let z = z_for(confidence);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (centre - half).max(0.0),
        high: Some((centre + half).min(1.0)),
    })
}

/// P(B ≤ k) for B ~ Binomial(n, q): summed exactly from the probability mass in log space for
/// small variances, the normal approximation with continuity correction beyond (n·q·(1 − q) >
/// 50, where its error is well under the 1/n steps of the ranks it decides).
struct BinomialCdf {
    n: u64,
    q: f64,
    /// Exact: P(B ≤ k) for every k, when the variance is small.
    exact: Option<Vec<f64>>,
}

impl BinomialCdf {
    fn new(n: u64, q: f64) -> Self {
        let var = n as f64 * q * (1.0 - q);
        let exact = (var <= 50.0 && n <= 1_000_000).then(|| {
            let (ln_q, ln_p) = (q.ln(), (1.0 - q).ln());
            let ln_n = ln_gamma(n as f64 + 1.0);
            let mut total = 0.0;
            (0..=n)
                .map(|k| {
                    let kf = k as f64;
                    let ln_pmf = ln_n - ln_gamma(kf + 1.0) - ln_gamma(n as f64 - kf + 1.0)
                        + if k > 0 { kf * ln_q } else { 0.0 }
                        + if k < n { (n as f64 - kf) * ln_p } else { 0.0 };
                    total += ln_pmf.exp();
                    total.min(1.0)
                })
                .collect()
        });
        BinomialCdf { n, q, exact }
    }

    fn at(&self, k: u64) -> f64 {
        if let Some(cdf) = &self.exact {
            return cdf[k.min(self.n) as usize];
        }
        let (n, q) = (self.n as f64, self.q);
        let sd = (n * q * (1.0 - q)).sqrt();
        normal_cdf((k as f64 + 0.5 - n * q) / sd)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return std::f64::consts::PI.ln()
            - (std::f64::consts::PI * x).sin().abs().ln()
            - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The standard normal CDF (erfc by Numerical Recipes' Chebyshev fit: relative error < 1.2e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// The standard normal quantile (Acklam's rational approximation, refined by one Halley step:
/// about 1e-15 relative error).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_of_the_usual_confidences() {
        assert!((z_for(0.95) - 1.959_964).abs() < 1e-5);
        assert!((z_for(0.99) - 2.575_829).abs() < 1e-5);
        assert!((z_for(0.90) - 1.644_854).abs() < 1e-5);
    }

    #[test]
    fn ln_gamma_and_the_normal_cdf_are_right() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(101.0) - 363.739_375_555_563_5).abs() < 1e-9);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    /// The textbook case: the median of 100 samples is bracketed by the 40th and 61st at 95 %.
    #[test]
    fn the_ranks_of_a_median_and_a_p99() {
        assert_eq!(quantile_ranks(100, 0.5, 0.95), (Some(40), Some(61)));
        // A p99 of 50 samples: no sample bounds it from above at 95 %.
        assert_eq!(quantile_ranks(50, 0.99, 0.95).1, None);
        // Of 1,000: the 984th .. the 995th or so.
        let (r, s) = quantile_ranks(1_000, 0.99, 0.95);
        assert!((982..=986).contains(&r.unwrap()) && (994..=997).contains(&s.unwrap()));
        // The normal branch agrees with the exact one where they meet.
        let (r, s) = quantile_ranks(100_000, 0.5, 0.95);
        let half = 1.96 * (100_000f64 * 0.25).sqrt();
        assert!(
            (r.unwrap() as f64 - (50_000.0 - half)).abs() <= 2.0,
            "{r:?}"
        );
        assert!(
            (s.unwrap() as f64 - (50_000.0 + half)).abs() <= 2.0,
            "{s:?}"
        );
    }

    /// Coverage, measured: over 2,000 seeded samples of 200 exponential latencies, the interval
    /// of the p90 contains the true p90 at least 95 % of the time.
    #[test]
    fn the_percentile_interval_covers_the_truth_as_often_as_it_says() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let truth = -(0.1f64).ln(); // p90 of Exp(1)
        let (r, s) = quantile_ranks(200, 0.9, 0.95);
        let (r, s) = (r.unwrap() as usize, s.unwrap() as usize);
        let trials = 2_000;
        let mut covered = 0;
        for _ in 0..trials {
            let mut xs: Vec<f64> = (0..200)
                .map(|_| -(1.0 - rng.random::<f64>()).ln())
                .collect();
            xs.sort_by(f64::total_cmp);
            if xs[r - 1] <= truth && truth <= xs[s - 1] {
                covered += 1;
            }
        }
        let share = covered as f64 / trials as f64;
        assert!((0.945..=0.99).contains(&share), "covered {share}");
    }

    #[test]
    fn wilson_intervals() {
        // 0 of 100: not 0 for sure, at most 3.7 % at 95 %.
        let w = wilson(0, 100, 0.95).unwrap();
        assert_eq!(w.low, 0.0);
        assert!((w.high.unwrap() - 0.037).abs() < 0.001, "{w:?}");
        let w = wilson(50, 100, 0.95).unwrap();
        assert!((w.low - 0.404).abs() < 0.001 && (w.high.unwrap() - 0.596).abs() < 0.001);
        assert_eq!(wilson(1, 0, 0.95), None);
    }

    #[test]
    fn verdicts_need_the_whole_interval() {
        let i = |low, high| Interval { low, high };
        assert_eq!(i(400.0, Some(480.0)).verdict(true, 500.0), Verdict::Pass);
        assert_eq!(
            i(490.0, Some(520.0)).verdict(true, 500.0),
            Verdict::Uncertain
        );
        assert_eq!(i(500.0, Some(520.0)).verdict(true, 500.0), Verdict::Fail);
        assert_eq!(i(400.0, None).verdict(true, 500.0), Verdict::Uncertain);
        assert_eq!(i(0.91, Some(0.95)).verdict(false, 0.9), Verdict::Pass);
        assert_eq!(i(0.8, Some(0.9)).verdict(false, 0.9), Verdict::Fail);
    }
}
