//! `--prompt-options` / `--decode-options`: `num_tokens=,min_tokens=,max_tokens=,variance=`.
//!
//! Format and meaning are the original tool's (v1.1.0), so that its users' commands send the
//! same workload: comma-separated `key=value` pairs, e.g.
//! `num_tokens=200,min_tokens=190,max_tokens=210,variance=10`.
//!
//! - Prompts: with `num_tokens`, every prompt is cut to exactly `num_tokens` tokens (min, max and
//!   variance play no part, as in the original tool; `--draw-prompt-lengths` draws each
//!   prompt's length as decode lengths are drawn instead). Without `num_tokens`, dataset prompts
//!   are sent whole, and only those whose length is within `[min_tokens, max_tokens]`.
//! - Outputs (`max_tokens` of each request): drawn from a normal distribution of mean
//!   `num_tokens` and standard deviation `variance`, truncated to a whole number and clamped to
//!   `[min_tokens, max_tokens]`. `variance` is a standard deviation in tokens, as the original
//!   tool used it (`Normal::new(num_tokens, variance)`), whatever its name says; `stddev=` is
//!   the same thing under its proper name (not both). Without `num_tokens` no `max_tokens` is
//!   sent.
//! - `min_tokens` defaults to [`DEFAULT_MIN_TOKENS`] (1: the original tool refused 0 with
//!   `num_tokens`), `max_tokens` to unbounded ([`UNBOUNDED`], the original's `u64::MAX`),
//!   `variance` to 0. A drawn length is never below 1.
//!
//! Zero `num_tokens` or `max_tokens`, `min_tokens > max_tokens` and a `num_tokens` outside
//! `[min_tokens, max_tokens]` are errors.

use std::fmt;
use std::str::FromStr;

use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// `min_tokens` when the option string does not give it.
pub const DEFAULT_MIN_TOKENS: u64 = 1;
/// `max_tokens` when the option string does not give it: no bound (the original tool's default,
/// written as such in the results).
pub const UNBOUNDED: u64 = u64::MAX;

/// Constraints on a length in tokens: the original tool's `TokenizeOptions`, serialized with its
/// keys and values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenizeOptions {
    pub num_tokens: Option<u64>,
    pub min_tokens: u64,
    pub max_tokens: u64,
    /// The standard deviation of drawn lengths, in tokens (the original tool's meaning).
    pub variance: u64,
}

impl TokenizeOptions {
    /// A fixed length: every sample is exactly `n`.
    pub fn fixed(n: u64) -> Self {
        TokenizeOptions {
            num_tokens: Some(n),
            min_tokens: n,
            max_tokens: n,
            variance: 0,
        }
    }

    /// One drawn length: Normal(mean = `num_tokens`, standard deviation = `variance`), truncated
    /// (as the original tool's `as u64`) and clamped to `[min_tokens, max_tokens]`, at least 1.
    /// `None` when there is no `num_tokens`.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Option<u64> {
        let mean = self.num_tokens?;
        let (lo, hi) = self.bounds();
        if self.variance == 0 {
            return Some(mean.clamp(lo, hi));
        }
        // A finite, positive std-dev cannot fail; fall back to the mean rather than panic.
        let value = match Normal::new(mean as f64, self.variance as f64) {
            Ok(normal) => normal.sample(rng).trunc(),
            Err(_) => mean as f64,
        };
        Some(clamp_f64(value, lo, hi))
    }

    /// A prompt's length: exactly `num_tokens` as the original tool cut prompts, or drawn as
    /// [`sample`](Self::sample) when `draw` (`--draw-prompt-lengths`). `None` without
    /// `num_tokens` (prompts are then kept whole, see [`admits`](Self::admits)).
    pub fn prompt_length(&self, draw: bool, rng: &mut impl rand::Rng) -> Option<u64> {
        if draw {
            self.sample(rng)
        } else {
            self.num_tokens
        }
    }

    /// Without `num_tokens`: whether a whole prompt of `tokens` is kept (the original tool's
    /// filter on `[min_tokens, max_tokens]`).
    pub fn admits(&self, tokens: u64) -> bool {
        (self.min_tokens..=self.max_tokens).contains(&tokens)
    }

    /// `[min, max]` made safe to clamp with even if the fields were set by hand inconsistently.
    fn bounds(&self) -> (u64, u64) {
        let lo = self.min_tokens.max(1);
        (lo, self.max_tokens.max(lo))
    }
}

/// `value` (already whole) as a u64 inside `[lo, hi]`; NaN goes to `lo`.
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
        write!(f, "min_tokens={},", self.min_tokens)?;
        if self.max_tokens != UNBOUNDED {
            write!(f, "max_tokens={},", self.max_tokens)?;
        }
        write!(f, "variance={}", self.variance)
    }
}

impl FromStr for TokenizeOptions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let raw = parse_pairs(s)?;
        let min_tokens = raw.min_tokens.unwrap_or(DEFAULT_MIN_TOKENS);
        let max_tokens = raw.max_tokens.unwrap_or(UNBOUNDED);
        let mut nonzero = vec![("max_tokens", max_tokens)];
        if let Some(n) = raw.num_tokens {
            nonzero.extend([("num_tokens", n), ("min_tokens", min_tokens)]);
        }
        for (key, value) in nonzero {
            if value == 0 {
                return Err(format!("token options '{s}': {key} must be at least 1"));
            }
        }
        if min_tokens > max_tokens {
            return Err(format!(
                "token options '{s}': min_tokens ({min_tokens}) is greater than max_tokens ({max_tokens})"
            ));
        }
        if let Some(n) = raw
            .num_tokens
            .filter(|n| !(min_tokens..=max_tokens).contains(n))
        {
            return Err(format!(
                "token options '{s}': num_tokens ({n}) is outside [min_tokens, max_tokens] = [{min_tokens}, {max_tokens}]"
            ));
        }
        if raw.variance.is_some() && raw.stddev.is_some() {
            return Err(format!(
                "token options '{s}': give variance or stddev, not both (both are the standard deviation)"
            ));
        }
        Ok(TokenizeOptions {
            num_tokens: raw.num_tokens,
            min_tokens,
            max_tokens,
            variance: raw.variance.or(raw.stddev).unwrap_or(0),
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
            }
        );
        // Serialized as the original tool's TokenizeOptions.
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"num_tokens": 200, "min_tokens": 190, "max_tokens": 210, "variance": 10})
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
        assert_eq!(o.max_tokens, UNBOUNDED);
        assert_eq!(o.variance, 0);
        // Without num_tokens, as the original tool: bounds only (a filter on whole prompts).
        let o = parse("min_tokens=0,max_tokens=300").unwrap();
        assert_eq!((o.num_tokens, o.min_tokens, o.max_tokens), (None, 0, 300));
        assert!(o.admits(0) && o.admits(300) && !o.admits(301));
        assert_eq!(parse(&o.to_string()).unwrap(), o);
        let unbounded = parse("num_tokens=10,variance=3").unwrap();
        assert_eq!(
            unbounded.to_string(),
            "num_tokens=10,min_tokens=1,variance=3"
        );
        assert_eq!(parse(&unbounded.to_string()).unwrap(), unbounded);
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
        let o = parse("variance=3,max_tokens=10").unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(o.sample(&mut rng), None);
        assert_eq!(o.prompt_length(false, &mut rng), None);
        assert_eq!(o.prompt_length(true, &mut rng), None);
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
    fn variance_is_the_standard_deviation_as_in_the_original_tool() {
        // variance 10 → std 10 (not sqrt(10)); truncated as the original's `as u64`: mean − ½.
        let o = parse("num_tokens=1000,min_tokens=1,max_tokens=5000,variance=10").unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| o.sample(&mut rng).unwrap() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!((mean - 999.5).abs() < 0.3, "mean {mean}");
        assert!((var.sqrt() - 10.0).abs() < 0.3, "std {}", var.sqrt());
    }

    #[test]
    fn prompts_are_exactly_num_tokens_unless_drawn() {
        let o = parse("num_tokens=4096,min_tokens=3000,max_tokens=6000,variance=1000").unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        assert!((0..200).all(|_| o.prompt_length(false, &mut rng) == Some(4096)));
        let drawn: Vec<u64> = (0..200)
            .filter_map(|_| o.prompt_length(true, &mut rng))
            .collect();
        assert!(drawn.iter().all(|l| (3000..=6000).contains(l)));
        assert!(drawn.iter().any(|&l| l != 4096));
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
            variance: 5,
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
        // Bounds 6 standard deviations away: clamping does not bias the moments; truncation
        // lowers the mean by half a token.
        for (spec, mean, sd) in [
            (
                "num_tokens=500,min_tokens=200,max_tokens=800,variance=50",
                499.5,
                50.0,
            ),
            (
                "num_tokens=500,min_tokens=200,max_tokens=800,stddev=50",
                499.5,
                50.0,
            ),
            (
                "num_tokens=4096,min_tokens=1000,max_tokens=8000,variance=400",
                4095.5,
                400.0,
            ),
            ("num_tokens=200,min_tokens=100,variance=16", 199.5, 16.0),
        ] {
            let o = parse(spec).unwrap();
            for seed in [1, 2, 3] {
                let (m, s, xs) = moments(&o, seed, 10_000);
                assert!(
                    (m - mean).abs() <= 0.02 * f64::max(sd, 10.0),
                    "{spec} seed {seed}: mean {m}"
                );
                assert!((s - sd).abs() <= 0.03 * sd, "{spec} seed {seed}: std {s}");
                assert!(xs.iter().all(|x| (o.min_tokens..=o.max_tokens).contains(x)));
            }
        }
        // The fixed-length and chat profiles' decode lengths: ~800, std 100, clamped to 50..800
        // (the bounds bind often and are never exceeded).
        let o = parse("num_tokens=800,min_tokens=50,max_tokens=800,variance=100").unwrap();
        let (_, _, xs) = moments(&o, 9, 10_000);
        assert!(xs.iter().all(|x| (50..=800).contains(x)));
        assert!(
            xs.iter().filter(|&&x| x == 800).count() > 4000,
            "half the mass is clamped"
        );
    }

    #[test]
    fn stddev_is_variance_under_its_proper_name() {
        let o = parse("num_tokens=100,stddev=7").unwrap();
        assert_eq!(o, parse("num_tokens=100,variance=7").unwrap());
        assert_eq!(parse(&o.to_string()).unwrap(), o);
        let err = parse("num_tokens=100,stddev=7,variance=7").unwrap_err();
        assert!(err.contains("not both"), "{err}");
    }
}
