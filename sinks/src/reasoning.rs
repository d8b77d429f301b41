//! Reasoning models and multi-token chunks, request by request (issue 18): when the answer began
//! after the reasoning, how many tokens the reasoning took, the "no answer" outcome, and how many
//! tokens a chunk carried, and the per-token ITL that follows. Pure: figures derived from one
//! `RequestFinished`.

use crate::event::{Nanos, RequestFinished, TokenSource};
use serde::{Deserialize, Serialize};

/// What a request's stream said about its reasoning (all empty for a model that does not reason).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningRecord {
    /// First chunk carrying answer text (a chat delta's `content`, a completion's `text`); the
    /// first token of any kind is `RequestFinished::first_token_at`.
    pub first_answer_at: Option<Nanos>,
    /// Chunks that carried reasoning text (`reasoning_content` or `reasoning`).
    pub chunks: u64,
    /// Reasoning tokens (part of `output_tokens`): the server's
    /// `usage.completion_tokens_details.reasoning_tokens`, else ours over the reasoning text;
    /// `None` when the server reported none and no reasoning was streamed.
    pub tokens: Option<u64>,
    pub tokens_source: Option<TokenSource>,
    /// The reasoning text, set only while its count is pending: the Recorder counts it with the
    /// client tokenizer (off the request arbiters), as it does `output_text`. Never serialized.
    #[serde(skip)]
    pub text: Option<String>,
    /// The first text chunk's share of the output, in millionths (0: unknown): exact when the
    /// server reported usage in that chunk, else its share of the streamed text's bytes (no
    /// tokenizing on the request arbiters). What the first chunk held is not waited for.
    #[serde(default)]
    pub first_chunk_share: u32,
}

/// [`ReasoningRecord::first_chunk_share`]'s unit: millionths.
pub const SHARE_UNIT: u64 = 1_000_000;

/// `part` of `whole` in millionths (at most [`SHARE_UNIT`]); 0 for an empty whole.
pub fn share_of(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    let part = part.min(whole) as u128;
    ((part * SHARE_UNIT as u128 + whole as u128 / 2) / whole as u128) as u32
}

impl ReasoningRecord {
    /// The reasoning's count is ours: keeps the text for the Recorder to count, with the chunk
    /// count meanwhile.
    pub fn pending(&mut self, text: String) {
        self.tokens = Some(self.chunks);
        self.tokens_source = Some(TokenSource::Client);
        self.text = Some(text);
    }

    /// Counts a pending reasoning text with `count`, then drops it.
    pub fn complete(&mut self, count: impl FnOnce(&str) -> u64) {
        if let Some(text) = self.text.take() {
            self.tokens = Some(count(&text));
        }
    }
}

impl RequestFinished {
    /// Time to the first answer token: `first_answer_at − sent_at`. Equals TTFT for a model that
    /// does not reason; `None` when no answer text came.
    pub fn ttfa_ns(&self) -> Option<u64> {
        self.reasoning
            .first_answer_at
            .map(|t| t.saturating_sub(self.sent_at))
    }

    /// Whether the request reasoned: reasoning text was streamed or the server counted
    /// reasoning tokens.
    pub fn reasoned(&self) -> bool {
        self.reasoning.chunks > 0 || self.reasoning.tokens.is_some_and(|n| n > 0)
    }

    /// Reasoning tokens, 0 when none.
    pub fn reasoning_tokens(&self) -> u64 {
        self.reasoning.tokens.unwrap_or(0)
    }

    /// Answer tokens: output tokens less the reasoning's.
    pub fn answer_tokens(&self) -> u64 {
        self.output_tokens.saturating_sub(self.reasoning_tokens())
    }

    /// A success on the wire that reasoned and never answered (typically its reasoning used up
    /// `max_tokens`: `finish_reason` "length"). Still a success for the error rate.
    pub fn no_answer(&self) -> bool {
        self.outcome.is_ok() && self.reasoned() && self.reasoning.first_answer_at.is_none()
    }

    /// Output tokens per text chunk; above 1 when a server streams several tokens a chunk
    /// (speculative decoding, some parsers). `None` without a text chunk.
    pub fn tokens_per_chunk(&self) -> Option<f64> {
        let chunks = self.chunk_offsets_us.len();
        (chunks > 0).then(|| self.output_tokens as f64 / chunks as f64)
    }

    /// Output tokens the first text chunk held: its share of `output_tokens`, rounded, at least 1
    /// and leaving at least one token to each later chunk (so with one token a chunk it is 1
    /// exactly). 1 when the share is unknown.
    pub fn first_chunk_tokens(&self) -> u64 {
        let later_chunks = self.chunk_offsets_us.len().saturating_sub(1) as u64;
        let most = self.output_tokens.saturating_sub(later_chunks).max(1);
        let share = u64::from(self.reasoning.first_chunk_share);
        let estimate = (u128::from(self.output_tokens) * u128::from(share)
            + u128::from(SHARE_UNIT / 2))
            / u128::from(SHARE_UNIT);
        (estimate as u64).clamp(1, most)
    }

    /// Per-token inter-token latency: what a reader waits for each token after the first chunk,
    /// `(last chunk − first chunk) / (output tokens − tokens of the first chunk)`. Equals
    /// [`RequestFinished::itl_ns`] (vLLM's TPOT) with one token a chunk; above it when the first
    /// chunk held several. `None` without a later chunk or a token after the first chunk.
    pub fn per_token_itl_ns(&self) -> Option<u64> {
        let first = *self.chunk_offsets_us.first()?;
        let last = *self.chunk_offsets_us.last()?;
        if self.chunk_offsets_us.len() < 2 {
            return None;
        }
        let after_first = self.output_tokens.checked_sub(self.first_chunk_tokens())?;
        (after_first > 0).then(|| u64::from(last.saturating_sub(first)) * 1000 / after_first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;

    fn request(output: u64, chunks: u32) -> RequestFinished {
        let mut r = crate::aggregate::tests::ok_request("r", 0);
        r.output_tokens = output;
        r.chunk_offsets_us = (0..chunks).map(|k| 1000 + k * 10).collect();
        r
    }

    #[test]
    fn a_request_without_reasoning_answers_at_its_first_token() {
        let mut r = request(8, 4);
        r.reasoning.first_answer_at = r.first_token_at;
        assert!(!r.reasoned() && !r.no_answer());
        assert_eq!(r.ttfa_ns(), r.ttft_ns());
        assert_eq!((r.reasoning_tokens(), r.answer_tokens()), (0, 8));
        assert_eq!(r.tokens_per_chunk(), Some(2.0));
        // The server may say 0 reasoning tokens for a model that does not reason.
        r.reasoning.tokens = Some(0);
        assert!(!r.reasoned());
    }

    #[test]
    fn reasoning_without_an_answer_is_a_success_without_answer() {
        let mut r = request(6, 6);
        r.reasoning.chunks = 6;
        r.reasoning.pending("a b c d e f g".into());
        assert_eq!(
            r.reasoning_tokens(),
            6,
            "the chunk count until it is counted"
        );
        r.reasoning.complete(|t| t.split(' ').count() as u64);
        assert_eq!((r.reasoning_tokens(), r.answer_tokens()), (7, 0));
        assert_eq!(r.reasoning.tokens_source, Some(TokenSource::Client));
        assert!(r.reasoning.text.is_none());
        assert!(r.no_answer() && r.ttfa_ns().is_none());
        r.outcome = Outcome::StreamBroken;
        assert!(!r.no_answer(), "a failure is a failure");
    }
    /// 4 tokens a chunk at 10 ms a token: a chunk every 40 ms, the last one shorter.
    fn four_a_chunk(tokens: u64) -> RequestFinished {
        let mut r = ok_request_with(tokens);
        let chunks = tokens.div_ceil(4) as u32;
        // Each chunk goes out when its last token is due (token k at 10 ms · k).
        r.chunk_offsets_us = (0..chunks)
            .map(|c| 10_000 * (4 * c + 3).min(tokens as u32 - 1))
            .collect();
        r.reasoning.first_chunk_share = share_of(4, tokens);
        r
    }

    fn ok_request_with(tokens: u64) -> RequestFinished {
        let mut r = crate::aggregate::tests::ok_request("r", 0);
        r.output_tokens = tokens;
        r
    }

    #[test]
    fn per_token_itl_divides_by_the_tokens_after_the_first_chunk() {
        // 20 tokens: chunks at 30, 70, .. 190 ms; 16 tokens came after the first chunk.
        let long = four_a_chunk(20);
        assert_eq!(long.first_chunk_tokens(), 4);
        assert_eq!(long.per_token_itl_ns(), Some(10_000_000));
        assert_eq!(
            long.itl_ns(),
            Some(160_000_000 / 19),
            "vLLM's TPOT reads low"
        );
        // 5 tokens: 4 in the first chunk, the fifth 10 ms later.
        let short = four_a_chunk(5);
        assert_eq!(short.chunk_offsets_us, [30_000, 40_000]);
        assert_eq!(short.per_token_itl_ns(), Some(10_000_000));
        assert_eq!(short.itl_ns(), Some(2_500_000));
        // One chunk: nothing after it.
        assert_eq!(four_a_chunk(3).per_token_itl_ns(), None);
    }

    #[test]
    fn with_one_token_a_chunk_the_per_token_itl_is_the_tpot() {
        let mut r = crate::aggregate::tests::ok_request("r", 0);
        assert_eq!(r.first_chunk_tokens(), 1, "share unknown");
        assert_eq!(r.per_token_itl_ns(), r.itl_ns());
        // A long first word's share of the bytes cannot make it more than one token: every
        // later chunk holds one.
        r.reasoning.first_chunk_share = share_of(2, 5);
        assert_eq!(r.first_chunk_tokens(), 1);
        assert_eq!(r.per_token_itl_ns(), r.itl_ns());
    }

    #[test]
    fn shares_are_millionths() {
        assert_eq!(share_of(1, 4), 250_000);
        assert_eq!(share_of(5, 4), 1_000_000, "at most the whole");
        assert_eq!(share_of(3, 0), 0);
        assert_eq!(share_of(u64::MAX, u64::MAX), 1_000_000);
    }
}
