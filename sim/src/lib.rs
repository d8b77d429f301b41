//! The embedded simulated inference server.
//!
//! An OpenAI-compatible server (chat and text completions and the Responses API, streaming and
//! not; embeddings and rerank; `/v1/models`, `/health`) modelled on a continuous-batching engine (`engine.rs`): batch slots with a FIFO
//! queue, prefill cost per uncached prompt token, a prefix cache, and a decode step that grows
//! with the batch. A fixed-timing mode instead gives every request the same TTFT and ITL, and a
//! random-timing mode draws them (TTFT per request, ITL per gap, uniform in a range, seeded).
//!
//! It is the target of `--demo` and of most tests, and a ground truth for our own measurement
//! error: with `record` on it keeps, per request, when each token was handed to the response
//! body (`record.rs`); with `record_file` it also writes those records as JSON Lines when it
//! stops (`benches/timing.py` joins them with the generator's requests log). It also serves
//! vLLM's Prometheus series at `/metrics` and, with `--gpu-metrics`, a DCGM-exporter-like GPU
//! with a power model at `/dcgm/metrics` (`metrics.rs`). Configuration and the model's
//! defaults: `config.rs`.

mod api_error;
mod chat_extras;
mod config;
mod engine;
pub mod fault;
mod image;
mod metrics;
mod openai;
mod prefix_cache;
mod reasoning;
mod record;
mod responses;
mod server;

pub use chat_extras::{ChatExtras, SimToolCall};
pub use config::{MsRange, SimConfig};
pub use image::{image_tokens, png_size, PATCH_PX};
pub use record::{BatchChange, SimRecord, SimStats};
pub use server::{is_config_error, run_cli, SimServer};

#[cfg(test)]
mod tests;
