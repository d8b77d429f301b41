//! What is sent: tokenizer, prompts (dataset or synthetic), prompt/decode lengths.
//!
//! [`prepare`] builds the whole workload before the run: every prompt is tokenized once, in
//! parallel (`encode_batch`), so nothing is tokenized while requests are timed.
//!
//! - `requests`: `prepare` itself (synthetic, trace or dataset requests); `from_dataset`: dataset
//!   prompts whole or cut on a message boundary, later turns, parallel tokenizing.
//! - `tokenizer`: loading (`None` → the project's built-in byte-level BPE), token counting.
//!   The built-in tokenizer is regenerated reproducibly with
//!   `cargo test -p inference-benchmarker --lib -- --ignored regenerate_builtin_tokenizer`.
//! - `synthetic`: seeded English-like text and prompts of an exact token length.
//! - `salt`: the cache salt, the first words of every synthetic prompt.
//! - `images`, `salted_png`: image inputs; synthetic PNGs as salted variants of a few bases.
//! - `dataset`: conversation datasets (the original tool's JSON or ShareGPT) from a local file or
//!   the hub; without `--dataset`, the original tool's default hub dataset.
//! - `options`: `--prompt-options` / `--decode-options` parsing and sampling.
//! - `profiles`: `fixed-length`, `chat`, `code-generation`, `classification`.

mod cut;
pub mod dataset;
mod entry_extras;
mod from_dataset;
pub mod hub;
pub mod images;
/// Length options are configuration (`config/options.rs`); kept here under their old path.
pub use crate::config::options;
pub mod profiles;
mod progress;
mod requests;
pub mod salt;
mod salted_png;
pub mod synthetic;
pub mod tokenizer;
pub mod trace;
mod words;

use std::path::PathBuf;
use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::config::RunConfig;
use options::TokenizeOptions;

/// Synthetic prompts made when no dataset is given.
pub const DEFAULT_SYNTHETIC_PROMPTS: usize = 1000;
/// Length of synthetic prompts without `--prompt-options`.
pub const DEFAULT_PROMPT_TOKENS: u64 = 200;

/// The chat message type the requests send (one type for the whole crate).
pub use crate::request::openai::Message;
pub use requests::prepare;

/// A request ready to send: nothing about it is computed during the run.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedRequest {
    pub messages: Vec<Message>,
    /// The messages' contents joined with "\n", for /v1/completions.
    pub prompt: String,
    /// Our tokenizer over `prompt` (the contents joined with "\n"), no special tokens, no chat
    /// template: what the server counts will differ by its template.
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    /// Multi-turn chat: the conversation's later user turns, sent one after the other, each
    /// after the model's answer to the previous one (see `load::conversation`). Empty for a
    /// single-turn request.
    pub later_turns: Vec<UserTurn>,
    /// The tools every turn offers, and the results that answer the model's tool calls.
    pub tools: Option<Arc<ToolScript>>,
}

impl PreparedRequest {
    /// Whether it is sent as a conversation: later user turns, or tools whose calls are
    /// answered (call, result, answer).
    pub fn is_conversation(&self) -> bool {
        !self.later_turns.is_empty() || self.tools.is_some()
    }
}

/// An agent-like conversation's tools (a dataset entry's `tools` and `tool` turns).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolScript {
    /// OpenAI function-tool definitions, sent as they are with every turn.
    pub definitions: serde_json::Value,
    /// The dataset's tool results, in order: the k-th answers the model's k-th tool call (the
    /// last one answers any later call). Never empty.
    pub results: Vec<UserTurn>,
}

impl ToolScript {
    /// The result that answers the model's `k`-th tool call of the conversation.
    pub fn result(&self, k: usize) -> &UserTurn {
        &self.results[k.min(self.results.len() - 1)]
    }
}

/// A later user turn of a conversation, tokenized before the run.
#[derive(Clone, Debug, PartialEq)]
pub struct UserTurn {
    pub content: String,
    /// Our tokenizer over `content`, no special tokens.
    pub tokens: u64,
    pub max_tokens: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    pub tokenizer_name: Option<String>,
    pub dataset: Option<String>,
    pub dataset_file: Option<PathBuf>,
    pub prompt_options: Option<TokenizeOptions>,
    pub decode_options: Option<TokenizeOptions>,
    /// Draw each prompt's length from `prompt_options` instead of exactly `num_tokens`.
    pub draw_prompt_lengths: bool,
    /// `--image-options`: synthetic images added to every request's user turn.
    pub image_options: Option<crate::config::image_options::ImageOptions>,
    pub seed: u64,
    /// How many prompts to make when there is no dataset.
    pub synthetic_prompts: usize,
    /// Where the Hugging Face hub is, its cache and token.
    pub hub: hub::HubEnv,
    /// `--profile`, for error messages that say how to run it without network.
    pub profile: Option<String>,
    /// `--trace`: the requests (lengths, shared prefixes) and their arrival times come from it.
    pub trace: Option<TraceSource>,
    /// `--cache-salt`, resolved: the first words of every synthetic prompt and the last pixels
    /// of every synthetic image are drawn from it (`salt.rs`); `None`: the seed's alone.
    pub cache_salt: Option<String>,
}

/// A trace to replay, and this process's part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSource {
    pub path: PathBuf,
    /// `--trace-speedup`: arrivals come this many times faster than recorded.
    pub speedup: f64,
    /// A shard replays every `count`-th request of the trace, from its `index`.
    pub shard: Option<crate::config::shard::Shard>,
}

impl WorkloadConfig {
    /// The workload part of a run's configuration, with [`DEFAULT_SYNTHETIC_PROMPTS`].
    pub fn from_run_config(cfg: &RunConfig) -> Self {
        WorkloadConfig {
            tokenizer_name: cfg.tokenizer_name.clone(),
            dataset: cfg.dataset.clone(),
            dataset_file: cfg.dataset_file.clone(),
            prompt_options: cfg.prompt_options.clone(),
            decode_options: cfg.decode_options.clone(),
            draw_prompt_lengths: cfg.draw_prompt_lengths,
            image_options: cfg.image_options,
            seed: cfg.seed,
            synthetic_prompts: DEFAULT_SYNTHETIC_PROMPTS,
            hub: hub::HubEnv::from_env(),
            profile: cfg.profile.clone(),
            trace: cfg.trace.as_ref().map(|path| TraceSource {
                path: path.clone(),
                speedup: cfg.trace_speedup,
                shard: cfg.shard,
            }),
            cache_salt: cfg.cache_salt.text().map(str::to_string),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub tokenizer: Arc<Tokenizer>,
    pub tokenizer_label: String,
    /// "synthetic" or the dataset path.
    pub source: String,
    pub requests: Vec<Arc<PreparedRequest>>,
    /// Trace replay: request `k` is sent at `arrivals[k]` from the step's start (`requests` in
    /// the same order).
    pub arrivals: Option<Arc<[sinks::event::Nanos]>>,
    /// Wall time of [`prepare`]: loading, downloading, tokenizing.
    pub prepare_seconds: f64,
}

impl Workload {
    /// For the results' configuration: what was sent, and what preparing it cost.
    pub fn describe(&self) -> serde_json::Value {
        let conversations = self
            .requests
            .iter()
            .filter(|r| !r.later_turns.is_empty())
            .count();
        let images: u64 = self
            .requests
            .iter()
            .map(|r| {
                u64::from(crate::request::openai::input_figures(&r.messages, None).image_count)
            })
            .sum();
        let with_tools = self.requests.iter().filter(|r| r.tools.is_some()).count();
        serde_json::json!({
            "tokenizer": self.tokenizer_label,
            "tokenizer_builtin": self.tokenizer_label == tokenizer::BUILTIN_LABEL,
            "source": self.source,
            "prompts": self.requests.len(),
            "multi_turn_conversations": conversations,
            "images": images,
            "prompts_with_tools": with_tools,
            "prepare_seconds": self.prepare_seconds,
        })
    }
}

#[cfg(test)]
mod tests;
