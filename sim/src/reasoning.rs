//! A reasoning model and multi-token chunks (issue 18): how many of a request's tokens are
//! reasoning (`--reasoning-tokens`, or its `x-sim-reasoning-tokens` header), how they stretch
//! the sequence, and the event of one chunk of reasoning and/or answer tokens.

use serde::Serialize;

use crate::engine::{FinishReason, LengthRequest};
use crate::openai::ResponseFormat;

/// Reasoning tokens of one request: its header's when it has one, else the flag's.
pub fn reasoning_tokens(flag: u32, header: Option<&str>) -> Result<u32, String> {
    match header {
        None => Ok(flag),
        Some(h) => h
            .trim()
            .parse()
            .map_err(|_| format!("not a token count: {h:?}")),
    }
}

/// The reasoning comes first and counts toward `max_tokens`: EOS cannot come before it is over
/// (so the answer gets at least one token when `max_tokens` leaves room), and a `max_tokens` at
/// or below it ends the sequence without an answer.
pub fn think_first(length: &mut LengthRequest, reasoning: u32) {
    length.min_tokens = length
        .min_tokens
        .max(reasoning.min(length.max_tokens.saturating_sub(1)));
}

/// Which delta field carries reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningField {
    ReasoningContent,
    Reasoning,
}

impl ReasoningField {
    /// From `--reasoning-field` (validated).
    pub fn from_flag(flag: &str) -> Self {
        if flag == "reasoning" {
            ReasoningField::Reasoning
        } else {
            ReasoningField::ReasoningContent
        }
    }
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// A chat chunk of reasoning and/or answer text (either may be empty, not both), as vLLM's
/// reasoning parsers stream it: the reasoning in its own delta field (the Responses API: a
/// reasoning delta event, then an answer delta event).
pub fn chunk_event(
    format: &ResponseFormat,
    field: ReasoningField,
    reasoning: &str,
    answer: &str,
    finish: Option<FinishReason>,
) -> String {
    if let Some(event) = format.responses_reasoning_event(reasoning, answer, finish) {
        return event;
    }
    let reasoning = (!reasoning.is_empty()).then_some(reasoning);
    let choice = Choice {
        index: 0,
        delta: Delta {
            reasoning_content: reasoning.filter(|_| field == ReasoningField::ReasoningContent),
            reasoning: reasoning.filter(|_| field == ReasoningField::Reasoning),
            content: (!answer.is_empty()).then_some(answer),
        },
        logprobs: (),
        finish_reason: finish.map(FinishReason::as_str),
    };
    format.event([choice], None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Endpoint;
    use serde_json::{json, Value};

    #[test]
    fn the_header_overrides_the_flag() {
        assert_eq!(reasoning_tokens(5, None), Ok(5));
        assert_eq!(reasoning_tokens(5, Some(" 12")), Ok(12));
        assert!(reasoning_tokens(5, Some("many")).is_err());
    }

    #[test]
    fn reasoning_delays_eos_within_max_tokens() {
        let mut length = LengthRequest {
            max_tokens: 20,
            min_tokens: 2,
            ignore_eos: false,
        };
        think_first(&mut length, 8);
        assert_eq!(length.min_tokens, 8);
        think_first(&mut length, 50);
        assert_eq!(length.min_tokens, 19, "never above max_tokens");
    }

    #[test]
    fn chunks_carry_reasoning_in_the_chosen_field() {
        let f = ResponseFormat::new(Endpoint::Chat, "1", 1, "sim");
        let parse = |e: String| -> Value {
            serde_json::from_str(e.strip_prefix("data: ").unwrap().trim_end()).unwrap()
        };
        let both = parse(chunk_event(
            &f,
            ReasoningField::ReasoningContent,
            " a b",
            " c",
            Some(FinishReason::Length),
        ));
        assert_eq!(
            both["choices"][0]["delta"],
            json!({"reasoning_content": " a b", "content": " c"})
        );
        assert_eq!(both["choices"][0]["finish_reason"], "length");
        let only = parse(chunk_event(&f, ReasoningField::Reasoning, " a", "", None));
        assert_eq!(only["choices"][0]["delta"], json!({"reasoning": " a"}));
    }
}
