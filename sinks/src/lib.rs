//! The event contract every sink consumes, and the sinks.
//!
//! - [`event`]: what the load generator tells every sink (the contract).
//! - [`stats`]: HDR latency histograms and their summaries (pure).
//! - [`aggregate`]: one step's events → [`StepResult`] (pure); [`images_tools`]: image inputs
//!   and tool calls, per request and per step (pure).
//! - [`json`]: the results document, its JSON Schema, the requests log.
//! - [`recorder`]: the `Recorder` actor that ties them together on a sink arbiter.
//! - [`handover`]: how a request hands its record to the Recorder without waiting for it.
//! - [`live`]: the live sink contract ([`live::Sink`]), their buffers and registry.
//! - [`testing`]: the contract as a test every sink's tests call.

pub mod aggregate;
pub mod confidence;
pub mod event;
pub mod generator;
pub mod handover;
pub mod images_tools;
pub mod inputs;
pub mod json;
pub mod live;
pub mod otlp;
pub mod paused;
pub mod prometheus;
pub mod reasoning;
pub mod reasoning_step;
pub mod recorder;
pub mod server_metrics;
pub mod slices;
pub mod slo;
pub mod stats;
pub mod steady;
pub mod testing;

pub use aggregate::StepAggregator;
pub use json::{
    results_file_name, ResultsDocument, RunStatus, StepResult, SystemInfo, RESULTS_SCHEMA,
};
pub use recorder::{
    FinishStep, Flush, HandOver, RecordDropped, RecordRequest, Recorder, RecorderConfig, StartStep,
    TokenCounter,
};
pub use stats::{LatencyHistogram, Summary};
