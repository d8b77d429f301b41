//! One HTTP call: building the OpenAI request, parsing the SSE stream (or the one JSON answer of
//! embeddings and rerank), stamping times.

pub mod base_url;
pub mod client;
pub mod openai;
pub mod retry;
pub mod sse;
mod unary;
