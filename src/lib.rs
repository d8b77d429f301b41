//! inference-benchmarker: a load generator for OpenAI-compatible LLM inference servers.

pub mod config;
pub mod coordinator;
pub mod load;
pub mod request;
pub mod sim;
pub mod workload;
