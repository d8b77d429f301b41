//! Reasoning models and multi-token chunks, request by request (issue 18): when the answer began
//! after the reasoning, how many tokens the reasoning took, the "no answer" outcome, and how many
//! tokens a chunk carried. Pure: figures derived from one `RequestFinished`.

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
}
