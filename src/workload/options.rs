//! `--prompt-options` / `--decode-options`: `num_tokens=,min_tokens=,max_tokens=,variance=`.
//!
//! Format (the original tool's): comma-separated `key=value` pairs, e.g.
//! `num_tokens=200,min_tokens=190,max_tokens=210,variance=10`.
//!
//! - `num_tokens` is required: options without a target length would sample nothing, so an
//!   option string without it is almost certainly a mistake.
//! - `min_tokens` defaults to [`DEFAULT_MIN_TOKENS`] (1).
//! - `max_tokens` defaults to `2 × num_tokens`, so that the default bounds are roughly symmetric
//!   around the mean and only guard against absurd samples instead of cutting the distribution.
//! - `variance` defaults to 0 (every sample is exactly `num_tokens`). It is a variance in
//!   tokens²: the standard deviation is `sqrt(variance)`. The original tool (v1.1.0) passed its
//!   `variance` straight to `Normal::new(mean, variance)`, i.e. used it as a standard
//!   deviation, by mistake, and only for decode lengths. To reproduce one of its runs, give
//!   the same number as `stddev=` instead (`variance=100` there = `stddev=100` here).
//! - `stddev` (ours): the standard deviation in tokens, instead of `variance` (not both).
//!
//! Zero token counts, `min_tokens > max_tokens` and a `num_tokens` outside
//! `[min_tokens, max_tokens]` are errors.

use std::fmt;
use std::str::FromStr;

use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// `min_tokens` when the option string does not give it.
pub const DEFAULT_MIN_TOKENS: u64 = 1;

/// Constraints on a length in tokens, as the original tool's `TokenizeOptions`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenizeOptions {
    pub num_tokens: Option<u64>,
    pub min_tokens: u64,
    pub max_tokens: u64,
    pub variance: u64,
    /// The standard deviation, when given as `stddev=` (then `variance` is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stddev: Option<u64>,
}

impl TokenizeOptions {
    /// A fixed length: every sample is exactly `n`.
    pub fn fixed(n: u64) -> Self {
        TokenizeOptions {
            num_tokens: Some(n),
            min_tokens: n,
            max_tokens: n,
            variance: 0,
            stddev: None,
        }
    }

    /// The standard deviation of the samples, in tokens.
    pub fn std_dev(&self) -> f64 {
        match self.stddev {
            Some(sd) => sd as f64,
            None => (self.variance as f64).sqrt(),
        }
    }

    /// One length: Normal(mean = `num_tokens`, std = sqrt(`variance`)), rounded and clamped to
    /// `[min_tokens, max_tokens]`. `None` when there is no `num_tokens`.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Option<u64> {
        let mean = self.num_tokens?;
        let (lo, hi) = self.bounds();
        let std_dev = self.std_dev();
        if std_dev == 0.0 {
            return Some(mean.clamp(lo, hi));
        }
        // A finite, non-negative std-dev cannot fail; fall back to the mean rather than panic.
        let value = match Normal::new(mean as f64, std_dev) {
            Ok(normal) => normal.sample(rng).round(),
            Err(_) => mean as f64,
        };
        Some(clamp_f64(value, lo, hi))
    }

    /// `[min, max]` made safe to clamp with even if the fields were set by hand inconsistently.
    fn bounds(&self) -> (u64, u64) {
        let lo = self.min_tokens.max(1);
        (lo, self.max_tokens.max(lo))
    }
}

/// `value` (already rounded) as a u64 inside `[lo, hi]`; NaN goes to `lo`.
fn clamp_f64(value: f64, lo: u64, hi: u64) -> u64 {
    if value.is_nan() || value <= lo as f64 {
        lo
    } else if value >= hi as f64 {
        hi
    } else {
        value as u64
    }
}

impl fmt::Display for TokenizeOptions {
    /// The same `key=value` format `from_str` reads, so options round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.num_tokens {
            write!(f, "num_tokens={n},")?;
        }
        write!(
            f,
            "min_tokens={},max_tokens={},",
            self.min_tokens, self.max_tokens
        )?;
        match self.stddev {
            Some(sd) => write!(f, "stddev={sd}"),
            None => write!(f, "variance={}", self.variance),
        }
    }
}

impl FromStr for TokenizeOptions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let raw = parse_pairs(s)?;
        let num_tokens = raw.num_tokens.ok_or_else(|| {
            format!("token options '{s}': num_tokens is required (e.g. num_tokens=200)")
        })?;
        let min_tokens = raw.min_tokens.unwrap_or(DEFAULT_MIN_TOKENS);
        let max_tokens = raw.max_tokens.unwrap_or(num_tokens.saturating_mul(2));
        for (key, value) in [
            ("num_tokens", num_tokens),
            ("min_tokens", min_tokens),
            ("max_tokens", max_tokens),
        ] {
            if value == 0 {
                return Err(format!("token options '{s}': {key} must be at least 1"));
            }
        }
        if min_tokens > max_tokens {
            return Err(format!(
                "token options '{s}': min_tokens ({min_tokens}) is greater than max_tokens ({max_tokens})"
            ));
        }
        if !(min_tokens..=max_tokens).contains(&num_tokens) {
            return Err(format!(
                "token options '{s}': num_tokens ({num_tokens}) is outside [min_tokens, max_tokens] = [{min_tokens}, {max_tokens}]"
            ));
        }
        if raw.variance.is_some() && raw.stddev.is_some() {
            return Err(format!(
                "token options '{s}': give variance or stddev, not both (stddev = sqrt(variance))"
            ));
        }
        Ok(TokenizeOptions {
            num_tokens: Some(num_tokens),
            min_tokens,
            max_tokens,
            variance: raw.variance.unwrap_or(0),
            stddev: raw.stddev,
        })
    }
}

/// The keys as given, before defaults and cross-checks.
#[derive(Default)]
struct RawOptions {
    num_tokens: Option<u64>,
    min_tokens: Option<u64>,
    max_tokens: Option<u64>,
    variance: Option<u64>,
    stddev: Option<u64>,
}

fn parse_pairs(s: &str) -> Result<RawOptions, String> {
    if s.trim().is_empty() {
        return Err("token options are empty: expected e.g. num_tokens=200,min_tokens=190,max_tokens=210,variance=10".into());
    }
    let mut raw = RawOptions::default();
    for item in s.split(',').map(str::trim) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("token options '{s}': '{item}' is not key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        let number: u64 = value.parse().map_err(|_| {
            format!("token options '{s}': {key}='{value}' is not a non-negative whole number")
        })?;
        let slot = match key {
            "num_tokens" => &mut raw.num_tokens,
            "min_tokens" => &mut raw.min_tokens,
            "max_tokens" => &mut raw.max_tokens,
            "variance" => &mut raw.variance,
            "stddev" => &mut raw.stddev,
            _ => {
                return Err(format!(
                    "token options '{s}': unknown key '{key}' (known: num_tokens, min_tokens, max_tokens, variance, stddev)"
                ))
            }
        };
        if slot.replace(number).is_some() {
            return Err(format!("token options '{s}': {key} is given twice"));
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn parse(s: &str) -> Result<TokenizeOptions, String> {
        s.parse()
    }

    #[test]
    fn parses_the_original_format() {
        let o = parse("num_tokens=200,min_tokens=190,max_tokens=210,variance=10").unwrap();
        assert_eq!(
            o,
            TokenizeOptions {
                num_tokens: Some(200),
                min_tokens: 190,
                max_tokens: 210,
                variance: 10,
                stddev: None,
            }
        );
    }

    #[test]
    fn keys_in_any_order_with_spaces() {
        let o = parse(" variance = 4 , num_tokens=50 ").unwrap();
        assert_eq!(o.num_tokens, Some(50));
        assert_eq!(o.variance, 4);
    }

    #[test]
    fn defaults_for_absent_keys() {
        let o = parse("num_tokens=100").unwrap();
        assert_eq!(o.min_tokens, DEFAULT_MIN_TOKENS);
        assert_eq!(o.max_tokens, 200);
        assert_eq!(o.variance, 0);
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("", "empty"),
            ("num_tokens=10,foo=3", "unknown key 'foo'"),
            ("num_tokens=ten", "num_tokens='ten'"),
            ("num_tokens=-5", "num_tokens='-5'"),
            ("num_tokens=10,,variance=1", "'' is not key=value"),
            ("num_tokens", "'num_tokens' is not key=value"),
            (
                "num_tokens=10,min_tokens=20,max_tokens=15",
                "min_tokens (20) is greater",
            ),
            ("num_tokens=0", "num_tokens must be at least 1"),
            ("num_tokens=5,min_tokens=0", "min_tokens must be at least 1"),
            ("num_tokens=5,max_tokens=0", "max_tokens must be at least 1"),
            ("variance=3", "num_tokens is required"),
            ("num_tokens=5,num_tokens=6", "num_tokens is given twice"),
            ("num_tokens=500,max_tokens=100", "outside"),
        ];
        for (input, needle) in cases {
            let err = parse(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        let o = parse("num_tokens=800,min_tokens=50,max_tokens=800,variance=100").unwrap();
        assert_eq!(parse(&o.to_string()).unwrap(), o);
    }

    #[test]
    fn no_num_tokens_samples_none() {
        let o = TokenizeOptions {
            num_tokens: None,
            min_tokens: 1,
            max_tokens: 10,
            variance: 0,
            stddev: None,
        };
        assert_eq!(o.sample(&mut StdRng::seed_from_u64(1)), None);
    }

    #[test]
    fn zero_variance_is_exact() {
        let o = TokenizeOptions::fixed(200);
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..100).all(|_| o.sample(&mut rng) == Some(200)));
    }

    #[test]
    fn samples_stay_within_bounds() {
        let o = parse("num_tokens=50,min_tokens=30,max_tokens=80,variance=10000").unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let samples: Vec<u64> = (0..2000).map(|_| o.sample(&mut rng).unwrap()).collect();
        assert!(samples.iter().all(|v| (30..=80).contains(v)));
        // With std 100 the clamps bind often on both sides.
        assert!(samples.contains(&30) && samples.contains(&80));
    }

    #[test]
    fn variance_is_a_variance_not_a_std_dev() {
        // variance 100 → std 10: the sample std must be near 10, not near 100.
        let o = parse("num_tokens=1000,min_tokens=1,max_tokens=5000,variance=100").unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| o.sample(&mut rng).unwrap() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!((mean - 1000.0).abs() < 0.5, "mean {mean}");
        assert!((var.sqrt() - 10.0).abs() < 0.5, "std {}", var.sqrt());
    }

    #[test]
    fn sampling_is_seeded() {
        let o = parse("num_tokens=100,variance=400").unwrap();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| o.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn inconsistent_hand_made_bounds_do_not_panic() {
        let o = TokenizeOptions {
            num_tokens: Some(10),
            min_tokens: 0,
            max_tokens: 0,
            variance: 25,
            stddev: None,
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(o.sample(&mut rng), Some(1));
    }

    /// Mean and standard deviation of `n` samples.
    fn moments(o: &TokenizeOptions, seed: u64, n: usize) -> (f64, f64, Vec<u64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let xs: Vec<u64> = (0..n).map(|_| o.sample(&mut rng).unwrap()).collect();
        let mean = xs.iter().sum::<u64>() as f64 / n as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt(), xs)
    }

    #[test]
    fn sampling_statistics_over_10000_samples() {
        // Bounds 6 standard deviations away: clamping does not bias the moments.
        for (spec, mean, sd) in [
            (
                "num_tokens=500,min_tokens=200,max_tokens=800,variance=2500",
                500.0,
                50.0,
            ),
            (
                "num_tokens=500,min_tokens=200,max_tokens=800,stddev=50",
                500.0,
                50.0,
            ),
            (
                "num_tokens=4096,min_tokens=1000,max_tokens=8000,stddev=400",
                4096.0,
                400.0,
            ),
            (
                "num_tokens=200,min_tokens=100,max_tokens=300,variance=256",
                200.0,
                16.0,
            ),
        ] {
            let o = parse(spec).unwrap();
            for seed in [1, 2, 3] {
                let (m, s, xs) = moments(&o, seed, 10_000);
                assert!(
                    (m - mean).abs() <= 0.02 * mean,
                    "{spec} seed {seed}: mean {m}"
                );
                assert!((s - sd).abs() <= 0.02 * sd, "{spec} seed {seed}: std {s}");
                assert!(xs.iter().all(|x| (o.min_tokens..=o.max_tokens).contains(x)));
            }
        }
        // Tight bounds bind often and are never exceeded.
        let o = parse("num_tokens=800,min_tokens=50,max_tokens=800,variance=10000").unwrap();
        let (_, _, xs) = moments(&o, 9, 10_000);
        assert!(xs.iter().all(|x| (50..=800).contains(x)));
        assert!(
            xs.iter().filter(|&&x| x == 800).count() > 4000,
            "half the mass is clamped"
        );
    }

    #[test]
    fn stddev_is_an_alternative_to_variance() {
        let o = parse("num_tokens=100,stddev=7").unwrap();
        assert_eq!((o.stddev, o.variance), (Some(7), 0));
        assert_eq!(o.std_dev(), 7.0);
        assert_eq!(parse(&o.to_string()).unwrap(), o);
        assert_eq!(parse("num_tokens=100,variance=49").unwrap().std_dev(), 7.0);
        let err = parse("num_tokens=100,stddev=7,variance=49").unwrap_err();
        assert!(err.contains("not both"), "{err}");
    }
}
