//! What a request learns from each streamed event: text or not, usage, finish reason, model,
//! and the in-stream errors that end it.

use std::borrow::Cow;
use std::fmt;

use super::chunk::{Chunk, Timings, WireUsage};
use super::error_message::{collapse_whitespace, truncate, MAX_ERROR_MESSAGE_BYTES};

/// How much of an unparseable event is quoted in its error.
const MAX_QUOTED_DATA_BYTES: usize = 200;

/// What one event's data was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// The chunk carried generated text (content or reasoning): a token time.
    Text,
    /// A well-formed chunk without text (role-only first chunk, finish
    /// reason, usage, keep-alive).
    NoText,
    /// `[DONE]`.
    Done,
}

/// Token counts reported by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`, or llama.cpp's
    /// `timings.cache_n` when the former is absent.
    pub cached_tokens: Option<u64>,
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
    usage: Option<Usage>,
    finish_reason: Option<String>,
    model: Option<String>,
    saw_done: bool,
}

impl StreamState {
    /// `keep_text`: accumulate the generated text (for client-side token
    /// counting or multi-turn chat); otherwise only count text chunks.
    pub fn new(keep_text: bool) -> Self {
        StreamState {
            keep_text,
            text: String::new(),
            text_chunks: 0,
            usage: None,
            finish_reason: None,
            model: None,
            saw_done: false,
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
        match choices.text {
            Some(text) if !text.is_empty() => {
                self.text_chunks += 1;
                if self.keep_text {
                    self.text.push_str(&text);
                }
                Ok(DataKind::Text)
            }
            _ => Ok(DataKind::NoText),
        }
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

    /// How many chunks carried text.
    pub fn text_chunks(&self) -> u64 {
        self.text_chunks
    }

    /// The generated text so far, reasoning included (servers count reasoning
    /// in `completion_tokens`), leaving it empty. Always empty without `keep_text`.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    pub fn saw_done(&self) -> bool {
        self.saw_done
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
        });
    }
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
