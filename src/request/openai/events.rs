//! The streamed answer's parser for the run's endpoint: chat and completions chunks, or the
//! Responses API's events. One `match` per event; both give the same outcome.

use super::extras::ToolCall;
use super::responses_stream::ResponsesState;
use super::stream::{DataKind, FirstChunk, ProtocolError, StreamState, Usage};

#[derive(Debug)]
pub enum EventParser {
    /// `/v1/chat/completions`, `/v1/completions`.
    Chunks(StreamState),
    /// `/v1/responses`.
    Responses(ResponsesState),
}

impl EventParser {
    pub fn new(responses: bool, keep_text: bool) -> Self {
        if responses {
            EventParser::Responses(ResponsesState::new(keep_text))
        } else {
            EventParser::Chunks(StreamState::new(keep_text))
        }
    }

    pub fn on_data(&mut self, data: &str) -> Result<DataKind, ProtocolError> {
        match self {
            EventParser::Chunks(s) => s.on_data(data),
            EventParser::Responses(s) => s.on_data(data),
        }
    }

    pub fn usage(&self) -> Option<&Usage> {
        match self {
            EventParser::Chunks(s) => s.usage(),
            EventParser::Responses(s) => s.usage(),
        }
    }

    pub fn finish_reason(&self) -> Option<&str> {
        match self {
            EventParser::Chunks(s) => s.finish_reason(),
            EventParser::Responses(s) => s.finish_reason(),
        }
    }

    pub fn model(&self) -> Option<&str> {
        match self {
            EventParser::Chunks(s) => s.model(),
            EventParser::Responses(s) => s.model(),
        }
    }

    pub fn text_chunks(&self) -> u64 {
        match self {
            EventParser::Chunks(s) => s.text_chunks(),
            EventParser::Responses(s) => s.text_chunks(),
        }
    }

    pub fn take_text(&mut self) -> String {
        match self {
            EventParser::Chunks(s) => s.take_text(),
            EventParser::Responses(s) => s.take_text(),
        }
    }

    /// Events that carried reasoning (text that is not answer).
    pub fn reasoning_chunks(&self) -> u64 {
        match self {
            EventParser::Chunks(s) => s.reasoning_chunks(),
            EventParser::Responses(s) => s.reasoning_chunks(),
        }
    }

    /// The reasoning text so far, leaving it empty.
    pub fn take_reasoning(&mut self) -> String {
        match self {
            EventParser::Chunks(s) => s.take_reasoning(),
            EventParser::Responses(s) => s.take_reasoning(),
        }
    }

    /// The tool calls streamed (chat only: the Responses API's function calls are not read).
    pub fn tool_calls(&self) -> &[ToolCall] {
        match self {
            EventParser::Chunks(s) => s.tool_calls(),
            EventParser::Responses(_) => &[],
        }
    }

    pub fn take_tool_calls(&mut self) -> Vec<ToolCall> {
        match self {
            EventParser::Chunks(s) => s.take_tool_calls(),
            EventParser::Responses(_) => Vec::new(),
        }
    }

    /// What the first text chunk held, for the per-token ITL.
    pub fn first_chunk(&self) -> FirstChunk {
        match self {
            EventParser::Chunks(s) => s.first_chunk(),
            EventParser::Responses(s) => s.first_chunk(),
        }
    }

    pub fn saw_done(&self) -> bool {
        match self {
            EventParser::Chunks(s) => s.saw_done(),
            EventParser::Responses(s) => s.saw_done(),
        }
    }

    /// The Responses API's response id; `None` for chunks.
    pub fn response_id(&self) -> Option<&str> {
        match self {
            EventParser::Chunks(_) => None,
            EventParser::Responses(s) => s.response_id(),
        }
    }
}
