//! Per-request service-level objectives and goodput (pure).
//!
//! `--slo ttft=500ms,itl=50ms,per_token_itl=50ms,e2e=30s` (any subset; `tpot` names `itl`): a
//! successful request is *good* when it meets
//! every objective given. Goodput is good requests (and their output tokens) per second of the
//! step — what the server delivers within the promise, not just what it delivers.

use serde::{Deserialize, Serialize};

use crate::event::RequestFinished;

/// Thresholds in milliseconds; `None`: no objective on that figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    /// On `inter_token_latency_ms` (the original's ITL, vLLM's TPOT).
    pub itl_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    /// On `per_token_itl_ms` (the first chunk's tokens out of the divisor).
    #[serde(default)]
    pub per_token_itl_ms: Option<f64>,
}

/// Requests and tokens that met every objective, over the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    pub slo: Slo,
    pub good_requests: u64,
    pub good_tokens: u64,
    /// Good requests per second of the step's duration.
    pub request_rate: f64,
    /// Output tokens of good requests per second of the step's duration.
    pub token_rate: f64,
}

impl Slo {
    /// Whether a finished request met every objective (failed requests never do). A request
    /// with no first token misses a TTFT objective: it never delivered what was promised. One
    /// with fewer than two tokens has no ITL (nothing to judge) and meets an ITL objective.
    pub fn met_by(&self, r: &RequestFinished) -> bool {
        let within = |limit: Option<f64>, value_ns: Option<u64>, undefined_meets: bool| match (
            limit, value_ns,
        ) {
            (None, _) => true,
            (Some(limit), Some(v)) => v as f64 / 1e6 <= limit,
            (Some(_), None) => undefined_meets,
        };
        r.outcome.is_ok()
            && within(self.ttft_ms, r.ttft_ns(), false)
            && within(self.itl_ms, r.itl_ns(), true)
            && within(self.per_token_itl_ms, r.per_token_itl_ns(), true)
            && within(self.e2e_ms, Some(r.e2e_ns()), true)
    }
}

impl std::str::FromStr for Slo {
    type Err = String;

    /// `ttft=500ms,itl=50ms,e2e=30s,per_token_itl=50ms`: any subset (`tpot` is `itl`); units
    /// `ms` (default), `s`, `us`.
    fn from_str(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("--slo: '{item}' is not key=value"))?;
            let ms = parse_ms(value.trim()).map_err(|e| format!("--slo {key}: {e}"))?;
            let slot = match key.trim() {
                "ttft" => &mut slo.ttft_ms,
                "itl" | "tpot" => &mut slo.itl_ms,
                "per_token_itl" => &mut slo.per_token_itl_ms,
                "e2e" => &mut slo.e2e_ms,
                other => {
                    return Err(format!(
                        "--slo: unknown objective '{other}' (ttft, itl or tpot, per_token_itl, e2e)"
                    ))
                }
            };
            if slot.replace(ms).is_some() {
                return Err(format!("--slo: '{}' is given twice", key.trim()));
            }
        }
        if slo == Slo::default() {
            return Err("--slo: give at least one of ttft=, itl=, per_token_itl=, e2e=".into());
        }
        Ok(slo)
    }
}

fn parse_ms(v: &str) -> Result<f64, String> {
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("us").or_else(|| v.strip_suffix("µs")) {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        (v, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x * scale),
        _ => Err(format!("'{v}' is not a positive duration (e.g. 500ms, 2s)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, TokenSource};

    fn request(ttft_ms: u64, gap_ms: u32, tokens: u32, outcome: Outcome) -> RequestFinished {
        let first_us = (ttft_ms * 1000) as u32;
        let offsets: Vec<u32> = (0..tokens).map(|k| first_us + k * gap_ms * 1000).collect();
        let end = offsets.last().map_or(first_us, |l| *l) as u64 * 1000 + 1_000_000;
        RequestFinished {
            id: "r".into(),
            step: 1,
            scheduled_at: 0,
            sent_at: 0,
            first_token_at: (tokens > 0).then_some(ttft_ms * 1_000_000),
            end_at: end,
            chunk_offsets_us: offsets,
            prompt_tokens: 10,
            requested_output_tokens: Some(tokens as u64),
            output_tokens: tokens as u64,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: Some(tokens as u64),
            server_cached_tokens: None,
            outcome,
            http_status: Some(200),
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    #[test]
    fn parses_any_subset_with_units() {
        let slo: Slo = "ttft=500ms, itl=0.05s,e2e=30s".parse().unwrap();
        assert_eq!(
            slo,
            Slo {
                ttft_ms: Some(500.0),
                itl_ms: Some(50.0),
                e2e_ms: Some(30_000.0),
                per_token_itl_ms: None,
            }
        );
        let slo: Slo = "tpot=5ms,per_token_itl=6ms".parse().unwrap();
        assert_eq!((slo.itl_ms, slo.per_token_itl_ms), (Some(5.0), Some(6.0)));
        assert!(
            "itl=5ms,tpot=5ms".parse::<Slo>().is_err(),
            "the same objective twice"
        );
        let slo: Slo = "itl=800us".parse().unwrap();
        assert_eq!(
            slo,
            Slo {
                itl_ms: Some(0.8),
                ..Slo::default()
            }
        );
        for (bad, needle) in [
            ("", "at least one"),
            ("ttft", "key=value"),
            ("tbt=5ms", "unknown objective"),
            ("ttft=-5ms", "positive"),
            ("ttft=1s,ttft=2s", "twice"),
        ] {
            let e = bad.parse::<Slo>().unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_request_is_good_only_within_every_objective() {
        let slo = Slo {
            ttft_ms: Some(100.0),
            itl_ms: Some(20.0),
            ..Slo::default()
        };
        assert!(
            slo.met_by(&request(100, 20, 10, Outcome::Ok)),
            "limits are inclusive"
        );
        assert!(!slo.met_by(&request(101, 20, 10, Outcome::Ok)));
        assert!(!slo.met_by(&request(50, 21, 10, Outcome::Ok)));
        assert!(
            slo.met_by(&request(50, 500, 1, Outcome::Ok)),
            "one token: no ITL to judge"
        );
        assert!(!slo.met_by(&request(50, 10, 10, Outcome::Http5xx)));
        let e2e = Slo {
            e2e_ms: Some(200.0),
            ..Slo::default()
        };
        assert!(
            !e2e.met_by(&request(50, 20, 10, Outcome::Ok)),
            "e2e is 50 + 180 + 1000 ms"
        );
    }

    #[test]
    fn a_per_token_itl_objective_leaves_the_first_chunk_s_tokens_out() {
        // 20 tokens in 5 chunks 40 ms apart, 4 in the first: 10 ms a token, TPOT 160/19 ms.
        let mut r = request(50, 40, 5, Outcome::Ok);
        r.output_tokens = 20;
        r.reasoning.first_chunk_share = crate::reasoning::share_of(4, 20);
        let tpot: Slo = "tpot=9ms".parse().unwrap();
        let per_token: Slo = "per_token_itl=9ms".parse().unwrap();
        assert!(tpot.met_by(&r));
        assert!(!per_token.met_by(&r));
        assert!("per_token_itl=10ms".parse::<Slo>().unwrap().met_by(&r));
    }

    #[test]
    fn a_ttft_objective_needs_a_first_token() {
        // A successful reply with no token never met a promise about its first one.
        let empty = request(50, 10, 0, Outcome::Ok);
        let ttft = Slo {
            ttft_ms: Some(100.0),
            ..Slo::default()
        };
        assert!(!ttft.met_by(&empty));
        // ITL is undefined below two tokens: nothing to judge, so the objective stands.
        let itl = Slo {
            itl_ms: Some(20.0),
            ..Slo::default()
        };
        assert!(itl.met_by(&empty));
        assert!(itl.met_by(&request(50, 500, 1, Outcome::Ok)));
    }
}
