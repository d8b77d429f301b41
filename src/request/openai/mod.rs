//! The OpenAI wire format: endpoint URLs, request bodies, and the data of
//! each streamed event (chat, completions, responses), as vLLM, TGI, SGLang, llama.cpp
//! and OpenAI itself send them; embeddings and rerank bodies and answers (`pooling`).
//!
//! Pure: no I/O, no actix. [`StreamState::on_data`] runs for every streamed
//! chunk, so chunks are parsed into borrowed structs (strings stay slices of
//! the event's data unless they carry JSON escapes) and `choices` is folded
//! while it is read instead of being collected into a `Vec`.

mod body;
mod chunk;
mod error_message;
mod events;
mod extras;
pub mod pooling;
mod responses_input;
mod responses_stream;
mod stream;
mod url;

pub use body::{chat_body, chat_body_with_tools, completions_body, responses_body, Message};
pub use error_message::{error_message, MAX_ERROR_MESSAGE_BYTES};
pub use events::EventParser;
pub use extras::{input_figures, sent_figures, ImageInput, MessageExtras, ToolCall};
pub use responses_stream::{ResponsesState, TextKind};
pub use stream::{DataKind, ProtocolError, ProtocolErrorKind, StreamState, Usage};
pub use url::{endpoint_url, models_url};

#[cfg(test)]
mod responses_stream_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tool_call_tests;
