//! What a request learns from each event of a streamed Responses API answer (`POST
//! /v1/responses`): the same outcome the chat parser gives (text or not, usage, finish reason,
//! model, in-stream errors), plus the response's id for `previous_response_id`.
//!
//! Every event's data carries its `type`, so the SSE `event:` line is not needed. Answer text
//! comes in `response.output_text.delta`; reasoning in `response.reasoning_text.delta` and
//! `response.reasoning_summary_text.delta` is a token time too (`DataKind::Reasoning`, as in
//! chat) but is not answer: it is counted apart ([`TextKind`]) and never sent back. The stream ends
//! with `response.completed` (or `response.incomplete`, e.g. at `max_output_tokens`), carrying
//! `usage`; `response.failed` and `error` end it as a server error.

use serde::Deserialize;

use super::chunk::Str;
use super::stream::{parse_error, server_error, DataKind, ProtocolError, Usage};

/// Which text a delta carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Answer,
    /// Reasoning text or a reasoning summary: text that is not answer.
    Reasoning,
}

impl TextKind {
    fn of(event_type: &str) -> Option<TextKind> {
        match event_type {
            "response.output_text.delta" => Some(TextKind::Answer),
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                Some(TextKind::Reasoning)
            }
            _ => None,
        }
    }
}

/// One event; every other field is skipped unread.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    delta: Option<Str<'a>>,
    #[serde(borrow)]
    response: Option<WireResponse<'a>>,
    /// The `error` event's own message.
    #[serde(borrow)]
    message: Option<Str<'a>>,
    /// A chat-style `{"error": {...}}` event (a proxy or a server's generic error path).
    #[serde(borrow)]
    error: Option<WireError<'a>>,
}

#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    model: Option<Str<'a>>,
    usage: Option<WireUsage>,
    #[serde(borrow)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(borrow)]
    error: Option<WireError<'a>>,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<InputDetails>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(borrow)]
    reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct WireError<'a> {
    #[serde(borrow)]
    message: Option<Str<'a>>,
}

/// What a Responses request learnt from its stream so far.
#[derive(Debug, Default)]
pub struct ResponsesState {
    keep_text: bool,
    answer: String,
    reasoning: String,
    answer_chunks: u64,
    reasoning_chunks: u64,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    model: Option<String>,
    response_id: Option<String>,
    saw_done: bool,
    first_chunk: super::stream::FirstChunk,
}

impl ResponsesState {
    /// `keep_text`: accumulate the answer text (client-side counting).
    pub fn new(keep_text: bool) -> Self {
        ResponsesState {
            keep_text,
            ..ResponsesState::default()
        }
    }

    /// Consumes one SSE event's data.
    pub fn on_data(&mut self, data: &str) -> Result<DataKind, ProtocolError> {
        let trimmed = data.trim_ascii();
        // Not the Responses API's, but a proxy or a lenient server may end with it.
        if trimmed == "[DONE]" {
            self.saw_done = true;
            return Ok(DataKind::Done);
        }
        if trimmed.is_empty() {
            return Ok(DataKind::NoText);
        }
        let event: Event<'_> = serde_json::from_str(data).map_err(|e| parse_error(&e, data))?;
        if let Some(error) = event.error {
            return Err(server_error(error.message.map(|m| m.0), data));
        }
        let kind = event.kind.as_ref().map_or("", |k| &k.0);
        if let Some(text_kind) = TextKind::of(kind) {
            return Ok(self.on_delta(text_kind, event.delta.as_ref().map_or("", |d| &d.0)));
        }
        if let Some(response) = &event.response {
            self.on_response(response);
        }
        match kind {
            "response.completed" | "response.incomplete" => {
                let reason = match event
                    .response
                    .as_ref()
                    .and_then(|r| r.incomplete_details.as_ref())
                {
                    // OpenAI's name for running out of max_output_tokens, as chat's "length".
                    Some(i)
                        if i.reason
                            .as_ref()
                            .is_some_and(|r| r.0 == "max_output_tokens") =>
                    {
                        "length".to_string()
                    }
                    Some(i) => i
                        .reason
                        .as_ref()
                        .map_or("incomplete".into(), |r| r.0.to_string()),
                    None => "stop".to_string(),
                };
                self.finish_reason = Some(reason);
                self.saw_done = true;
                Ok(DataKind::Done)
            }
            "response.failed" => {
                let message = event
                    .response
                    .and_then(|r| r.error)
                    .and_then(|e| e.message)
                    .map(|m| m.0);
                Err(server_error(message, data))
            }
            "error" => Err(server_error(event.message.map(|m| m.0), data)),
            _ => Ok(DataKind::NoText),
        }
    }

    fn on_delta(&mut self, kind: TextKind, delta: &str) -> DataKind {
        if delta.is_empty() {
            return DataKind::NoText;
        }
        // Usage comes only with the final event: the first delta's share is of the bytes.
        self.first_chunk.text_chunk(delta.len(), None);
        match kind {
            TextKind::Answer => {
                self.answer_chunks += 1;
                if self.keep_text {
                    self.answer.push_str(delta);
                }
            }
            TextKind::Reasoning => {
                self.reasoning_chunks += 1;
                if self.keep_text {
                    self.reasoning.push_str(delta);
                }
                return DataKind::Reasoning;
            }
        }
        DataKind::Text
    }

    fn on_response(&mut self, response: &WireResponse<'_>) {
        if let Some(id) = response.id.as_ref().filter(|i| !i.0.is_empty()) {
            self.response_id.get_or_insert_with(|| id.0.to_string());
        }
        if let Some(model) = response.model.as_ref().filter(|m| !m.0.is_empty()) {
            self.model.get_or_insert_with(|| model.0.to_string());
        }
        if let Some(u) = &response.usage {
            self.usage = Some(Usage {
                prompt_tokens: u.input_tokens,
                completion_tokens: u.output_tokens,
                cached_tokens: u
                    .input_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens),
                reasoning_tokens: u
                    .output_tokens_details
                    .as_ref()
                    .and_then(|d| d.reasoning_tokens),
            });
        }
    }

    /// `usage` of the final event: input_tokens as prompt, output_tokens as completion.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// `usage.output_tokens_details.reasoning_tokens`, when reported.
    pub fn reasoning_tokens(&self) -> Option<u64> {
        self.usage.and_then(|u| u.reasoning_tokens)
    }

    /// `stop`, `length` (max_output_tokens reached) or the server's incomplete reason.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The response's id (`resp_…`): a later turn sends it as `previous_response_id`.
    pub fn response_id(&self) -> Option<&str> {
        self.response_id.as_deref()
    }

    /// What the first text event held.
    pub fn first_chunk(&self) -> super::stream::FirstChunk {
        self.first_chunk
    }

    /// Events that carried text, answer and reasoning alike (each is a token time).
    pub fn text_chunks(&self) -> u64 {
        self.answer_chunks + self.reasoning_chunks
    }

    /// Events that carried reasoning (text that is not answer).
    pub fn reasoning_chunks(&self) -> u64 {
        self.reasoning_chunks
    }

    /// The answer text so far, leaving it empty (reasoning apart: [`Self::take_reasoning`]).
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.answer)
    }

    /// The reasoning text so far, leaving it empty (counted when the usage has no figure).
    pub fn take_reasoning(&mut self) -> String {
        std::mem::take(&mut self.reasoning)
    }

    pub fn saw_done(&self) -> bool {
        self.saw_done
    }
}
