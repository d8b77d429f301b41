//! What a request learns from each streamed event: text or not, usage, finish reason, model,
//! and the in-stream errors that end it.

use std::borrow::Cow;
use std::fmt;

use super::chunk::{Chunk, Timings, ToolCallDelta, WireUsage};
use super::error_message::{collapse_whitespace, truncate, MAX_ERROR_MESSAGE_BYTES};
use super::extras::ToolCall;

/// How much of an unparseable event is quoted in its error.
const MAX_QUOTED_DATA_BYTES: usize = 200;

/// How far past the calls seen a tool call's `index` may jump (servers count up from 0).
const MAX_NEW_TOOL_CALLS: usize = 16;

/// What one event's data was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// The chunk carried answer text (content; reasoning too, maybe): a token time.
    Text,
    /// The chunk carried reasoning text only: a token time, before the answer.
    Reasoning,
    /// A well-formed chunk without text (role-only first chunk, finish
    /// reason, usage, keep-alive).
    NoText,
    /// `[DONE]`.
    Done,
    /// The chunk carried a piece of a tool call (its name or arguments): a token time too, the
    /// first one the time to first tool-call token.
    ToolCall,
}

/// Token counts reported by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`, or llama.cpp's
    /// `timings.cache_n` when the former is absent.
    pub cached_tokens: Option<u64>,
    /// `usage.completion_tokens_details.reasoning_tokens` (part of `completion_tokens`).
    pub reasoning_tokens: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolErrorKind {
    /// The data was neither JSON nor `[DONE]`.
    InvalidJson,
    /// The server reported an error inside the stream (`{"error": ...}`).
    ServerError,
    /// JSON, but not shaped like a chunk (e.g. `content` is a number).
    UnexpectedShape,
}

impl ProtocolErrorKind {
    /// Stable snake_case name, e.g. for logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolErrorKind::InvalidJson => "invalid_json",
            ProtocolErrorKind::ServerError => "server_error",
            ProtocolErrorKind::UnexpectedShape => "unexpected_shape",
        }
    }
}

/// A streamed event that ends the request as a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub kind: ProtocolErrorKind,
    /// At most [`MAX_ERROR_MESSAGE_BYTES`].
    pub message: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ProtocolErrorKind::InvalidJson => "invalid JSON in stream",
            ProtocolErrorKind::ServerError => "server error in stream",
            ProtocolErrorKind::UnexpectedShape => "unexpected chunk in stream",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// What a request learnt from its stream so far.
#[derive(Debug)]
pub struct StreamState {
    keep_text: bool,
    text: String,
    text_chunks: u64,
    /// Reasoning apart from the answer: counted on its own, never sent back in a conversation.
    reasoning: String,
    reasoning_chunks: u64,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    model: Option<String>,
    saw_done: bool,
    /// The tool calls streamed so far, by their index.
    tool_calls: Vec<ToolCall>,
    first_chunk: FirstChunk,
}

/// What the first text chunk held of the output, for the per-token ITL: its bytes of the
/// streamed text (names and arguments of tool calls included), or its exact token count when
/// the server reported usage in that chunk (vLLM's `continuous_usage_stats`). Two integers a
/// request, nothing tokenized.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstChunk {
    /// Bytes of every text chunk so far.
    text_bytes: u64,
    /// The first text chunk's bytes, and the `completion_tokens` its own usage reported.
    first: Option<(u64, Option<u64>)>,
}

impl FirstChunk {
    /// One chunk that carried `bytes` of text, with the `completion_tokens` it reported.
    pub fn text_chunk(&mut self, bytes: usize, reported_tokens: Option<u64>) {
        self.text_bytes = self.text_bytes.saturating_add(bytes as u64);
        self.first.get_or_insert((bytes as u64, reported_tokens));
    }

    /// The first chunk's share of `output_tokens`, in millionths (0: no chunk).
    pub fn share(&self, output_tokens: u64) -> u32 {
        match self.first {
            Some((_, Some(tokens))) if output_tokens > 0 => {
                sinks::reasoning::share_of(tokens, output_tokens)
            }
            Some((bytes, _)) => sinks::reasoning::share_of(bytes, self.text_bytes),
            None => 0,
        }
    }
}

impl StreamState {
    /// `keep_text`: accumulate the generated text (for client-side token
    /// counting or multi-turn chat); otherwise only count text chunks.
    pub fn new(keep_text: bool) -> Self {
        StreamState {
            keep_text,
            text: String::new(),
            text_chunks: 0,
            reasoning: String::new(),
            reasoning_chunks: 0,
            usage: None,
            finish_reason: None,
            model: None,
            saw_done: false,
            tool_calls: Vec::new(),
            first_chunk: FirstChunk::default(),
        }
    }

    /// Consumes one SSE event's data.
    pub fn on_data(&mut self, data: &str) -> Result<DataKind, ProtocolError> {
        let trimmed = data.trim_ascii();
        if trimmed == "[DONE]" {
            self.saw_done = true;
            return Ok(DataKind::Done);
        }
        // An empty event is a keep-alive some proxies send, not a broken chunk.
        if trimmed.is_empty() {
            return Ok(DataKind::NoText);
        }
        let chunk: Chunk<'_> = serde_json::from_str(data).map_err(|e| parse_error(&e, data))?;
        if let Some(message) = chunk.server_error() {
            return Err(server_error(message, data));
        }
        if self.model.is_none() {
            if let Some(model) = chunk.model.filter(|m| !m.0.is_empty()) {
                self.model = Some(model.0.into_owned());
            }
        }
        if let Some(wire) = &chunk.usage {
            self.merge_usage(wire, chunk.timings.as_ref());
        }
        let Some(choices) = chunk.choices else {
            return Ok(DataKind::NoText);
        };
        if let Some(reason) = choices.finish_reason {
            set_string(&mut self.finish_reason, &reason);
        }
        let bytes = |t: &Option<Cow<'_, str>>| t.as_ref().map_or(0, |t| t.len());
        let mut chunk_bytes = bytes(&choices.reasoning) + bytes(&choices.text);
        let tool_call = !choices.tool_calls.is_empty() && {
            chunk_bytes += tool_call_bytes(&choices.tool_calls);
            self.absorb(choices.tool_calls)
        };
        let reasoned = keep(&mut self.reasoning, self.keep_text, choices.reasoning);
        let answered = keep(&mut self.text, self.keep_text, choices.text);
        if reasoned {
            self.reasoning_chunks += 1;
        }
        if !(reasoned || answered || tool_call) {
            return Ok(DataKind::NoText);
        }
        self.text_chunks += 1;
        let reported = chunk.usage.as_ref().and_then(|u| u.completion_tokens);
        self.first_chunk.text_chunk(chunk_bytes, reported);
        Ok(if tool_call {
            DataKind::ToolCall
        } else if answered {
            DataKind::Text
        } else {
            DataKind::Reasoning
        })
    }

    /// Adds tool-call pieces to their calls; whether any carried a name or arguments.
    fn absorb(&mut self, deltas: Vec<ToolCallDelta<'_>>) -> bool {
        let mut generated = false;
        for d in deltas {
            let index = d.index.unwrap_or(0);
            if index >= self.tool_calls.len() {
                // A bad index from a server must not allocate without bound.
                if index > self.tool_calls.len() + MAX_NEW_TOOL_CALLS {
                    continue;
                }
                self.tool_calls.resize_with(index + 1, ToolCall::default);
            }
            let call = &mut self.tool_calls[index];
            if let Some(id) = d.id {
                set_in_place(&mut call.id, &id.0);
            }
            let Some(function) = d.function else { continue };
            if let Some(name) = function.name.filter(|n| !n.0.is_empty()) {
                set_in_place(&mut call.name, &name.0);
                generated = true;
            }
            if let Some(arguments) = function.arguments.filter(|a| !a.0.is_empty()) {
                call.arguments.push_str(&arguments.0);
                generated = true;
            }
        }
        generated
    }

    /// The tool calls streamed (empty for a text answer).
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.tool_calls
    }

    /// The streamed tool calls, leaving none.
    pub fn take_tool_calls(&mut self) -> Vec<ToolCall> {
        std::mem::take(&mut self.tool_calls)
    }

    /// The server's token counts, from any chunk that carried `usage`.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The last `finish_reason` seen (`stop`, `length`, ...).
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// The model name the server answered with.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// How many chunks carried text (answer or reasoning).
    pub fn text_chunks(&self) -> u64 {
        self.text_chunks
    }

    /// How many chunks carried reasoning text.
    pub fn reasoning_chunks(&self) -> u64 {
        self.reasoning_chunks
    }

    /// The answer's text so far (reasoning apart: [`Self::take_reasoning`]), leaving it empty.
    /// Always empty without `keep_text`.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    /// The reasoning text so far, leaving it empty. Always empty without `keep_text`.
    pub fn take_reasoning(&mut self) -> String {
        std::mem::take(&mut self.reasoning)
    }

    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// What the first text chunk held.
    pub fn first_chunk(&self) -> FirstChunk {
        self.first_chunk
    }

    /// Later chunks win field by field, so a partial usage (some servers report
    /// counts on every chunk) never erases a count seen before.
    fn merge_usage(&mut self, wire: &WireUsage, timings: Option<&Timings>) {
        let old = self.usage.unwrap_or_default();
        let cached = wire
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or_else(|| timings.and_then(|t| t.cache_n));
        self.usage = Some(Usage {
            prompt_tokens: wire.prompt_tokens.or(old.prompt_tokens),
            completion_tokens: wire.completion_tokens.or(old.completion_tokens),
            cached_tokens: cached.or(old.cached_tokens),
            reasoning_tokens: wire
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .or(old.reasoning_tokens),
        });
    }
}

/// Appends a chunk's piece of one kind; whether it had any text.
fn keep(to: &mut String, keep_text: bool, piece: Option<Cow<'_, str>>) -> bool {
    match piece {
        Some(text) if !text.is_empty() => {
            if keep_text {
                to.push_str(&text);
            }
            true
        }
        _ => false,
    }
}

/// Bytes of generated text in a chunk's tool-call pieces (names and arguments).
fn tool_call_bytes(deltas: &[ToolCallDelta<'_>]) -> usize {
    deltas
        .iter()
        .filter_map(|d| d.function.as_ref())
        .map(|f| {
            f.name.as_ref().map_or(0, |n| n.0.len()) + f.arguments.as_ref().map_or(0, |a| a.0.len())
        })
        .sum()
}

fn set_in_place(slot: &mut String, value: &str) {
    slot.clear();
    slot.push_str(value);
}

/// Overwrites in place: the finish reason usually comes once, but reusing the
/// allocation costs nothing when a server repeats it.
fn set_string(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

pub(super) fn parse_error(err: &serde_json::Error, data: &str) -> ProtocolError {
    let kind = match err.classify() {
        serde_json::error::Category::Data => ProtocolErrorKind::UnexpectedShape,
        _ => ProtocolErrorKind::InvalidJson,
    };
    let quoted = truncate(data.to_owned(), MAX_QUOTED_DATA_BYTES);
    ProtocolError {
        kind,
        message: truncate(format!("{err}; data: {quoted}"), MAX_ERROR_MESSAGE_BYTES),
    }
}

pub(super) fn server_error(message: Option<Cow<'_, str>>, data: &str) -> ProtocolError {
    let message = match message {
        Some(m) if !m.trim().is_empty() => collapse_whitespace(&m),
        // No usable message: the event itself says the most.
        _ => collapse_whitespace(data),
    };
    ProtocolError {
        kind: ProtocolErrorKind::ServerError,
        message: truncate(message, MAX_ERROR_MESSAGE_BYTES),
    }
}
