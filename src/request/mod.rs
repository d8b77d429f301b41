//! One HTTP call: building the OpenAI request, parsing the SSE stream, stamping times.

pub mod base_url;
pub mod client;
pub mod openai;
pub mod retry;
pub mod sse;
