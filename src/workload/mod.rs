//! What is sent: tokenizer, prompts (dataset or synthetic), prompt/decode lengths.

pub mod options;
