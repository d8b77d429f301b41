//! Embeddings and rerank steps: inputs and input tokens per second (pure).
//!
//! A request of these endpoints carries `batch_size` inputs (texts embedded, documents scored)
//! and answers once: there is no first token and no output. Its throughput is counted in
//! requests (`request_rate`), inputs and input tokens, over the same step duration as the
//! original tool's `request_rate`.

use serde::{Deserialize, Serialize};

use crate::event::RequestFinished;

/// A step's input throughput (`inputs` in a step entry); null for generation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputThroughput {
    /// `--batch-size`: inputs per request.
    pub batch_size: u64,
    /// Inputs of the successful requests.
    pub inputs: u64,
    /// `inputs` per second of step duration.
    pub inputs_per_second: f64,
    /// Input tokens (our tokenizer; rerank: the query once and every document) of the
    /// successful requests.
    pub input_tokens: u64,
    /// `input_tokens` per second of step duration.
    pub input_tokens_per_second: f64,
    /// `usage.prompt_tokens` summed over the successful requests that reported it (rerank
    /// servers count the query once per document).
    pub server_input_tokens: u64,
    /// `server_input_tokens` per second of step duration.
    pub server_input_tokens_per_second: f64,
}

/// Counts a step's successful requests' inputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct InputCounter {
    batch_size: u64,
    requests: u64,
    tokens: u64,
    server_tokens: u64,
}

impl InputCounter {
    pub fn new(batch_size: u64) -> Self {
        InputCounter {
            batch_size,
            ..InputCounter::default()
        }
    }

    /// A successful request.
    pub fn record(&mut self, r: &RequestFinished) {
        self.requests += 1;
        self.tokens = self.tokens.saturating_add(r.prompt_tokens);
        self.server_tokens = self
            .server_tokens
            .saturating_add(r.server_prompt_tokens.unwrap_or(0));
    }

    /// The figures over a step of `duration_s` seconds.
    pub fn finish(&self, duration_s: f64) -> InputThroughput {
        let inputs = self.requests.saturating_mul(self.batch_size);
        InputThroughput::new(
            self.batch_size,
            inputs,
            self.tokens,
            self.server_tokens,
            duration_s,
        )
    }
}

impl InputThroughput {
    pub fn new(
        batch_size: u64,
        inputs: u64,
        input_tokens: u64,
        server_input_tokens: u64,
        duration_s: f64,
    ) -> Self {
        let rate = |n| crate::aggregate::per_second(n, duration_s);
        InputThroughput {
            batch_size,
            inputs,
            inputs_per_second: rate(inputs),
            input_tokens,
            input_tokens_per_second: rate(input_tokens),
            server_input_tokens,
            server_input_tokens_per_second: rate(server_input_tokens),
        }
    }

    /// Shards' figures summed over the merged step's duration; `None` when none had any.
    pub fn merge<'a>(
        parts: impl Iterator<Item = Option<&'a InputThroughput>>,
        duration_s: f64,
    ) -> Option<InputThroughput> {
        let parts: Vec<&InputThroughput> = parts.flatten().collect();
        let first = parts.first()?;
        let sum = |f: fn(&InputThroughput) -> u64| parts.iter().map(|p| f(p)).sum::<u64>();
        Some(InputThroughput::new(
            first.batch_size,
            sum(|p| p.inputs),
            sum(|p| p.input_tokens),
            sum(|p| p.server_input_tokens),
            duration_s,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_requests_times_the_batch() {
        let mut c = InputCounter::new(4);
        let mut r = crate::aggregate::tests::ok_request("a", 0);
        r.prompt_tokens = 100;
        r.server_prompt_tokens = Some(104);
        c.record(&r);
        c.record(&r);
        let t = c.finish(2.0);
        assert_eq!(
            (t.inputs, t.input_tokens, t.server_input_tokens),
            (8, 200, 208)
        );
        assert_eq!(t.inputs_per_second, 4.0);
        assert_eq!(t.input_tokens_per_second, 100.0);
        assert_eq!(t.server_input_tokens_per_second, 104.0);
        let merged = InputThroughput::merge([Some(&t), None, Some(&t)].into_iter(), 4.0).unwrap();
        assert_eq!((merged.inputs, merged.inputs_per_second), (16, 4.0));
        assert!(InputThroughput::merge([None].into_iter(), 1.0).is_none());
    }
}
