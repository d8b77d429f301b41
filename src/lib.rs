//! inference-benchmarker: a load generator for OpenAI-compatible LLM inference servers.

pub mod clock;
pub mod config;
pub mod coordinator;
pub mod exit;
pub mod load;
pub mod request;
pub mod shutdown;
pub mod sim;
pub mod table;
pub mod workers;
pub mod workload;
