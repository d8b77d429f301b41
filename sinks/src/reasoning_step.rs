//! A step's figures for reasoning models and multi-token chunks (issue 18): time to the first
//! answer token, reasoning and answer tokens, "no answer" requests, tokens per chunk, per-token
//! ITL. Pure logic, bounded memory (five HDR histograms), merged exactly across shards like the
//! step's own.
//!
//! Token counts and tokens per chunk ride in [`LatencyHistogram`]s as thousandths ("µs"), so
//! their summaries (read in "ms") are the counts themselves, at the same 0.1 % resolution.

use crate::event::RequestFinished;
use crate::stats::{LatencyHistogram, Summary};
use serde::{Deserialize, Serialize};

/// Accumulates one step's successful requests.
#[derive(Clone, Debug, Default)]
pub struct ReasoningAggregator {
    hist: Hists,
    reasoning_requests: u64,
    no_answer_requests: u64,
}

#[derive(Clone, Debug, Default)]
struct Hists {
    ttfa: LatencyHistogram,
    reasoning_tokens: LatencyHistogram,
    answer_tokens: LatencyHistogram,
    tokens_per_chunk: LatencyHistogram,
    per_token_itl: LatencyHistogram,
}

/// The step's figures, written among the step's keys (flattened into `StepResult`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReasoningFigures {
    /// `first_answer_at − sent_at` of the successful requests that answered, ms.
    pub time_to_first_answer_token_ms: Summary,
    /// Successful requests that reasoned.
    pub reasoning_requests: u64,
    /// Successful requests that reasoned and never answered (a success for the error rate).
    pub no_answer_requests: u64,
    /// Reasoning tokens of the requests that reasoned (a count, not ms).
    pub reasoning_tokens: Summary,
    /// Answer tokens (output − reasoning) of the requests that reasoned (a count, not ms).
    pub answer_tokens: Summary,
    /// Output tokens per text chunk of every successful request with a chunk (not ms).
    pub tokens_per_chunk: Summary,
    /// Per-token ITL of the successful requests ([`RequestFinished::per_token_itl_ns`]), ms:
    /// `inter_token_latency_ms` (the original tool's, vLLM's TPOT) without the first chunk's
    /// tokens in its divisor.
    pub per_token_itl_ms: Summary,
    pub reasoning_histograms: ReasoningHistograms,
}

/// The histograms behind [`ReasoningFigures`], HdrHistogram V2 + deflate, base64.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReasoningHistograms {
    pub ttfa: String,
    pub reasoning_tokens: String,
    pub answer_tokens: String,
    pub tokens_per_chunk: String,
    pub per_token_itl: String,
}

/// A count or ratio as thousandths.
fn milli(value: f64) -> u64 {
    (value * 1000.0).round() as u64
}

impl ReasoningAggregator {
    /// Records one request; only successful ones count.
    pub fn record(&mut self, r: &RequestFinished) {
        if !r.outcome.is_ok() {
            return;
        }
        let h = &mut self.hist;
        if let Some(ttfa) = r.ttfa_ns() {
            h.ttfa.record_ns(ttfa);
        }
        if let Some(per_chunk) = r.tokens_per_chunk() {
            h.tokens_per_chunk.record_us(milli(per_chunk));
        }
        if let Some(itl) = r.per_token_itl_ns() {
            h.per_token_itl.record_ns(itl);
        }
        if r.reasoned() {
            self.reasoning_requests += 1;
            h.reasoning_tokens
                .record_us(r.reasoning_tokens().saturating_mul(1000));
            h.answer_tokens
                .record_us(r.answer_tokens().saturating_mul(1000));
        }
        if r.no_answer() {
            self.no_answer_requests += 1;
        }
    }

    pub fn finish(&self) -> ReasoningFigures {
        let h = &self.hist;
        ReasoningFigures {
            time_to_first_answer_token_ms: h.ttfa.summary(),
            reasoning_requests: self.reasoning_requests,
            no_answer_requests: self.no_answer_requests,
            reasoning_tokens: h.reasoning_tokens.summary(),
            answer_tokens: h.answer_tokens.summary(),
            tokens_per_chunk: h.tokens_per_chunk.summary(),
            per_token_itl_ms: h.per_token_itl.summary(),
            reasoning_histograms: ReasoningHistograms {
                ttfa: encode(&h.ttfa),
                reasoning_tokens: encode(&h.reasoning_tokens),
                answer_tokens: encode(&h.answer_tokens),
                tokens_per_chunk: encode(&h.tokens_per_chunk),
                per_token_itl: encode(&h.per_token_itl),
            },
        }
    }

    /// The union of several shards' figures for one step (`merge`): exact, from their
    /// histograms. A file written before these figures has none: it adds nothing.
    pub fn merged<'a>(
        parts: impl IntoIterator<Item = &'a ReasoningFigures>,
    ) -> Result<ReasoningFigures, String> {
        let mut out = ReasoningAggregator::default();
        for part in parts {
            let h = &part.reasoning_histograms;
            for (into, text, name) in [
                (&mut out.hist.ttfa, &h.ttfa, "ttfa"),
                (
                    &mut out.hist.reasoning_tokens,
                    &h.reasoning_tokens,
                    "reasoning_tokens",
                ),
                (
                    &mut out.hist.answer_tokens,
                    &h.answer_tokens,
                    "answer_tokens",
                ),
                (
                    &mut out.hist.tokens_per_chunk,
                    &h.tokens_per_chunk,
                    "tokens_per_chunk",
                ),
                (
                    &mut out.hist.per_token_itl,
                    &h.per_token_itl,
                    "per_token_itl",
                ),
            ] {
                if !text.is_empty() {
                    let decoded = LatencyHistogram::from_base64(text)
                        .map_err(|e| format!("histogram {name}: {e}"))?;
                    into.merge(&decoded);
                }
            }
            out.reasoning_requests += part.reasoning_requests;
            out.no_answer_requests += part.no_answer_requests;
        }
        Ok(out.finish())
    }
}

fn encode(h: &LatencyHistogram) -> String {
    h.to_base64().unwrap_or_else(|e| {
        log::error!("a reasoning histogram left out of the results: {e}");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::tests::ok_request;
    use crate::event::Outcome;

    /// 5 tokens in 5 chunks; with `reasoning` of them reasoning, the answer starting at
    /// chunk `reasoning` (none when all are).
    fn request(reasoning: u64) -> RequestFinished {
        let mut r = ok_request("r", 0);
        r.reasoning.chunks = reasoning;
        r.reasoning.tokens = (reasoning > 0).then_some(reasoning);
        r.reasoning.first_answer_at = (reasoning < 5)
            .then(|| r.sent_at + u64::from(r.chunk_offsets_us[reasoning as usize]) * 1000);
        r
    }

    #[test]
    fn figures_of_a_step() {
        let mut agg = ReasoningAggregator::default();
        agg.record(&request(0));
        agg.record(&request(2));
        agg.record(&request(5));
        let mut failed = request(5);
        failed.outcome = Outcome::StreamBroken;
        agg.record(&failed);
        let f = agg.finish();
        assert_eq!((f.reasoning_requests, f.no_answer_requests), (2, 1));
        // Answers at 100 ms (no reasoning) and 140 ms (after two 20 ms chunks).
        assert_eq!(f.time_to_first_answer_token_ms.count, 2);
        assert!((f.time_to_first_answer_token_ms.min - 100.0).abs() < 0.1);
        assert!((f.time_to_first_answer_token_ms.max - 140.0).abs() < 0.2);
        assert_eq!(f.reasoning_tokens.count, 2);
        assert!((f.reasoning_tokens.min - 2.0).abs() < 0.01);
        assert!((f.reasoning_tokens.max - 5.0).abs() < 0.01);
        assert!((f.answer_tokens.min - 0.0).abs() < 0.01);
        assert!((f.answer_tokens.max - 3.0).abs() < 0.01);
        assert_eq!(f.tokens_per_chunk.count, 3);
        assert!((f.tokens_per_chunk.avg - 1.0).abs() < 0.01);
        // One token a chunk: the per-token ITL is the TPOT, 20 ms.
        assert_eq!(f.per_token_itl_ms.count, 3);
        assert!((f.per_token_itl_ms.avg - 20.0).abs() < 0.03);
    }

    #[test]
    fn shards_merge_exactly_and_old_files_add_nothing() {
        let (mut a, mut b, mut whole) = (
            ReasoningAggregator::default(),
            ReasoningAggregator::default(),
            ReasoningAggregator::default(),
        );
        for (i, n) in [0, 1, 2, 3, 4, 5, 5].into_iter().enumerate() {
            let r = request(n);
            if i % 2 == 0 { &mut a } else { &mut b }.record(&r);
            whole.record(&r);
        }
        let merged =
            ReasoningAggregator::merged([&a.finish(), &b.finish(), &Default::default()]).unwrap();
        assert_eq!(merged, whole.finish());
        let mut broken = a.finish();
        broken.reasoning_histograms.ttfa = "not base64!".into();
        let err = ReasoningAggregator::merged([&broken]).unwrap_err();
        assert!(err.contains("ttfa"), "{err}");
    }
}
