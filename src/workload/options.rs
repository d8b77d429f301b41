//! `--prompt-options` / `--decode-options`: `num_tokens=,min_tokens=,max_tokens=,variance=`.

use serde::Serialize;

/// Constraints on a length in tokens, as the original tool's `TokenizeOptions`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenizeOptions {
    pub num_tokens: Option<u64>,
    pub min_tokens: u64,
    pub max_tokens: u64,
    pub variance: u64,
}
